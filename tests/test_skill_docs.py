"""The skill, the agents, the slash commands and the plugin around them tell the truth.

Every script they name exists and answers --help; the frontmatter follows the rules a
skill, an agent and a command must follow; the plugin manifest points where the plugin
loader looks; the generated CLI reference is current; the pre-commit hook and the example
CI workflow run a real script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

import click
import pytest
import yaml

from conftest import script

REPO = Path(__file__).resolve().parents[1]
SKILL = REPO / "SKILL.md"
AGENTS = sorted((REPO / "agents").glob("*.md"))
COMMANDS = sorted((REPO / "commands").glob("*.md"))
REFERENCES = REPO / "skill" / "references"
DOCS = [SKILL, *AGENTS, *COMMANDS, *sorted(REFERENCES.glob("*.md"))]

KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PLUGIN_SCRIPT = re.compile(
    r"\$\{CLAUDE_PLUGIN_ROOT\}/scripts/([a-z][a-z0-9-]*)(?:\s+([a-z][a-z-]*))?")
BARE_SCRIPT = re.compile(r"(?<![\w}/])scripts/([a-z][a-z0-9-]*)(?:\s+([a-z][a-z-]*))?")
PLUGIN_PATH = re.compile(r"\$\{CLAUDE_PLUGIN_ROOT\}/([A-Za-z0-9_./-]+[A-Za-z0-9_])")
BACKTICKED = re.compile(r"`([^`\n]+)`")
# Programs other than ours that the docs may show as command lines.
OTHER_PROGRAMS = {"pre-commit"}
READ_ONLY_TOOLS = {"Read", "Grep", "Glob"}


def frontmatter(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{path.name} does not start with YAML frontmatter"
    end = text.index("\n---\n", 4)
    data = yaml.safe_load(text[4:end])
    assert isinstance(data, dict), f"{path.name}: frontmatter is not a mapping"
    return data, text[end + 5:]


@cache
def console_scripts() -> dict[str, str]:
    found = {point.name: point.value for point in entry_points(group="console_scripts")
             if point.value.startswith("log_archiver.cli:")}
    assert found, "the package is not installed (run `make venv`)"
    return found


def cli_commands(path: tuple[str, ...] = ()) -> set[str]:
    from log_archiver.cli import cli

    group = cli
    for name in path:
        group = group.commands[name]
    return set(group.commands) if isinstance(group, click.Group) else set()


def command_mentions(text: str) -> set[tuple[str, str | None]]:
    """(script, subcommand or None) for every command line of ours the text shows."""
    found: set[tuple[str, str | None]] = set()
    for pattern in (PLUGIN_SCRIPT, BARE_SCRIPT):
        for match in pattern.finditer(text):
            found.add((match.group(1), match.group(2)))
    spans = BACKTICKED.findall(text)
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
        elif in_block:
            spans.append(line)
    for span in spans:
        words = span.split()
        if len(words) > 1 and KEBAB.fullmatch(words[0]) and "-" in words[0] \
                and words[0] not in OTHER_PROGRAMS:
            found.add((words[0], words[1] if KEBAB.fullmatch(words[1]) else None))
    # a word after a script is a subcommand only where the script has subcommands
    result = set()
    for name, word in found:
        subcommands = cli_commands() if name == "log-archiver" else (
            cli_commands((name,)) if name in cli_commands() else set())
        result.add((name, word if subcommands else None))
    return result


def all_mentions() -> list[tuple[str, str | None]]:
    found = set()
    for doc in DOCS:
        if doc == REFERENCES / "cli.md":
            continue  # generated from the real --help, checked by test_cli_reference_is_current
        found |= command_mentions(doc.read_text(encoding="utf-8"))
    return sorted(found, key=lambda item: (item[0], item[1] or ""))


# --- the skill ---------------------------------------------------------------------


def test_skill_frontmatter_follows_the_rules():
    meta, body = frontmatter(SKILL)
    name, description = meta["name"], meta["description"]
    assert KEBAB.fullmatch(name) and len(name) <= 64, name
    assert isinstance(description, str) and 0 < len(description) <= 1024, len(description)
    assert "<" not in description and ">" not in description
    assert "Use it when" in description and "Do not use" in description
    assert len(SKILL.read_text(encoding="utf-8").splitlines()) < 300
    assert body.lstrip().startswith("# ")


def test_every_reference_is_named_in_the_skill_and_exists():
    text = SKILL.read_text(encoding="utf-8")
    named = set(re.findall(r"skill/references/([A-Za-z0-9_.-]+\.md)", text))
    present = {path.name for path in REFERENCES.glob("*.md")}
    assert named == present, f"named {sorted(named)}, present {sorted(present)}"
    for name in named:  # each is pointed to with when to read it
        pointer = rf"`skill/references/{re.escape(name)}`: read (when|for)"
        assert re.search(pointer, text), f"SKILL.md does not say when to read {name}"


def test_every_plugin_path_in_the_docs_exists():
    for doc in DOCS:
        for relative in PLUGIN_PATH.findall(doc.read_text(encoding="utf-8")):
            assert (REPO / relative).exists(), f"{doc.name} names a missing {relative}"


MENTIONS = all_mentions()


def test_the_docs_name_the_workflow_scripts():
    names = {name for name, _ in MENTIONS}
    assert {"archive-issue-logs", "collect-logs", "prepare-upload", "file-manager",
            "retry-failed-uploads", "cleanup-local", "validate-index", "update-file-status",
            "mark-partial-archive", "update-index", "log-archiver"} <= names


@pytest.mark.parametrize("name, subcommand", MENTIONS,
                         ids=[" ".join(filter(None, m)) for m in MENTIONS])
def test_every_named_script_exists_and_answers_help(name, subcommand):
    launcher = REPO / "scripts" / name
    assert launcher.is_file() and os.access(launcher, os.X_OK), f"scripts/{name} is missing"
    assert name in console_scripts(), f"{name} is not a [project.scripts] entry"
    args = [sys.executable, str(launcher), *([subcommand] if subcommand else []), "--help"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Usage: "), done.stdout


def test_every_command_has_help_and_is_documented():
    from log_archiver.cli import cli

    documented = "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS
                           if doc.name != "cli.md")
    for name, command in cli.commands.items():
        assert (command.help or "").strip(), f"{name} has no help text"
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", documented), \
            f"command {name} is not mentioned in SKILL.md, the agents, commands or references"


def test_cli_reference_is_current():
    from log_archiver.cli.reference import render_reference

    checked_in = (REFERENCES / "cli.md").read_text(encoding="utf-8")
    assert checked_in == render_reference(), (
        "skill/references/cli.md is out of date with the commands' --help; "
        "run `make cli-reference` and commit it")


def test_cli_reference_check_flag_catches_drift(tmp_path):
    stale = tmp_path / "cli.md"
    stale.write_text("# stale\n")
    check = [sys.executable, "-m", "log_archiver.cli.reference", "--output", str(stale)]
    done = subprocess.run([*check, "--check"], capture_output=True, text=True)
    assert done.returncode == 1 and "make cli-reference" in done.stderr
    assert subprocess.run(check, capture_output=True).returncode == 0
    assert subprocess.run([*check, "--check"], capture_output=True).returncode == 0
    assert "## log-archiver validate-index" in stale.read_text()


# --- the agents --------------------------------------------------------------------


def test_both_agents_exist():
    assert {path.stem for path in AGENTS} == {"log-manager", "file-manager"}


@pytest.mark.parametrize("path", AGENTS, ids=[p.stem for p in AGENTS])
def test_agent_frontmatter(path):
    meta, body = frontmatter(path)
    assert meta["name"] == path.stem and KEBAB.fullmatch(meta["name"])
    description = meta["description"]
    assert description.startswith("Use this agent when")
    assert description.count("<example>") == description.count("</example>") >= 2
    tools = [tool.strip() for tool in meta["tools"].split(",")]
    assert "Bash" in tools and set(tools) <= {"Bash"} | READ_ONLY_TOOLS, tools
    assert meta.get("model") == "inherit"
    assert "${CLAUDE_PLUGIN_ROOT}/scripts/" in body


def test_file_manager_agent_only_runs_the_file_manager_script():
    meta, body = frontmatter(REPO / "agents" / "file-manager.md")
    assert meta["tools"] == "Bash"
    assert {name for name, _ in PLUGIN_SCRIPT.findall(body)} == {"file-manager"}


# --- the slash commands ------------------------------------------------------------


def allowed_scripts(entry: str) -> tuple[str, str | None] | None:
    """``Bash(${CLAUDE_PLUGIN_ROOT}/scripts/NAME[ SUB]:*)`` -> (NAME, SUB); tools -> None."""
    if entry in READ_ONLY_TOOLS:
        return None
    match = re.fullmatch(r"Bash\(\$\{CLAUDE_PLUGIN_ROOT\}/scripts/([a-z0-9-]+)(?: ([a-z-]+))?:\*\)",
                         entry)
    assert match, f"allowed-tools entry {entry!r} is neither one script nor a read-only tool"
    return match.group(1), match.group(2)


@pytest.mark.parametrize("path", COMMANDS, ids=[p.stem for p in COMMANDS])
def test_command_frontmatter_and_allowed_tools(path):
    meta, body = frontmatter(path)
    description = meta["description"]
    assert description and description[0].isupper() and not description.endswith(".")
    assert len(description) <= 120, description
    assert meta.get("argument-hint")
    entries = [entry.strip() for entry in meta["allowed-tools"].split(", ")]
    allowed = {allowed_scripts(entry) for entry in entries} - {None}
    assert allowed, f"{path.name} allows no script"
    for name, subcommand in allowed:
        assert (REPO / "scripts" / name).is_file() and name in console_scripts(), name
        if subcommand:
            assert subcommand in cli_commands(), subcommand
    used = set(PLUGIN_SCRIPT.findall(body))
    assert used, f"{path.name} runs no script"
    for name, word in used:
        assert (name, None) in allowed or (name, word) in allowed, \
            f"{path.name} runs {name} {word} but allowed-tools does not allow it"
    assert not BARE_SCRIPT.search(body), f"{path.name} runs a script not under the plugin root"


def test_every_slash_command_the_project_mentions_exists():
    sources = [*DOCS, REPO / "skill" / "log_archiver" / "comment.py"]
    named = set()
    for source in sources:
        text = source.read_text(encoding="utf-8")
        named |= set(re.findall(r"/log-archiver:([a-z][a-z-]*)", text))
    present = {path.stem for path in COMMANDS}
    assert {"read", "search"} <= named  # the archive comment tells users to run them
    assert named <= present, f"missing commands: {sorted(named - present)}"
    assert {"archive", "retry", "cleanup", "validate", "init"} <= present


# --- the plugin --------------------------------------------------------------------


def manifest_paths(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_plugin_manifest_and_layout():
    manifest = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text())
    assert KEBAB.fullmatch(manifest["name"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["description"] and manifest["author"]["name"]
    for field in ("skills", "commands", "agents"):
        for relative in manifest_paths(manifest.get(field, [])):
            assert relative.startswith("./") and ".." not in relative.split("/"), relative
            assert (REPO / relative).exists(), f"{field} path {relative} does not exist"
    # commands and agents come from the default folders (a manifest entry would replace them)
    assert "commands" not in manifest and "agents" not in manifest
    assert COMMANDS and AGENTS
    # skills: the default skills/ folder (<name>/SKILL.md), plus every path the manifest
    # names: a folder holding SKILL.md itself (its frontmatter name counts) or skill folders
    found: dict[str, Path] = {}

    def add(skill_md: Path) -> None:
        name = frontmatter(skill_md)[0]["name"]
        assert name not in found, f"skill {name} is found twice ({found.get(name)}, {skill_md})"
        found[name] = skill_md

    listed = [REPO / relative for relative in manifest_paths(manifest.get("skills", []))]
    for folder in [REPO / "skills", *listed]:
        if (folder / "SKILL.md").is_file() and folder != REPO / "skills":
            add(folder / "SKILL.md")
        elif folder.is_dir():
            for skill_md in sorted(folder.glob("*/SKILL.md")):
                add(skill_md)
    skill_name = frontmatter(SKILL)[0]["name"]
    assert found == {skill_name: SKILL}
    # the skill's relative references resolve from the folder the loader found it in
    base = found[skill_name].parent
    for relative in re.findall(r"`(skill/references/[A-Za-z0-9_.-]+\.md)`", SKILL.read_text()):
        assert (base / relative).is_file(), relative


def test_marketplace_lists_the_plugin_at_the_repository_root():
    market = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text())
    manifest = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text())
    assert KEBAB.fullmatch(market["name"]) and market["owner"]["name"]
    [entry] = market["plugins"]
    assert entry["name"] == manifest["name"] and entry["source"] == "./"
    assert (REPO / entry["source"] / ".claude-plugin" / "plugin.json").is_file()
    assert "skills" not in entry  # at the marketplace root it would replace the skill scan


# --- CI: pre-commit and the example workflow ---------------------------------------

EMPTY_INDEX = {"schema_version": 1, "last_updated": "2025-01-15T14:00:00Z", "archives": []}
BROKEN_INDEX = {**EMPTY_INDEX, "archives": [{"issue_number": "12"}]}


def test_pre_commit_hook_runs_validate_index(tmp_path):
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    [hook] = hooks
    assert hook["id"] == "validate-archive-index" and hook["language"] == "python"
    entry = hook["entry"].split()
    assert entry[0] in console_scripts() and console_scripts()[entry[0]].endswith(
        ":validate_index_main")
    files = re.compile(hook["files"])
    assert files.search(".archive-index.json") and files.search("logs/.archive-index.json")
    assert not files.search("logs/archive-index.json.backup")
    assert not files.search("logs/my.archive-index.json")
    assert hook.get("pass_filenames", True) is True
    good, bad = tmp_path / "a" / ".archive-index.json", tmp_path / "b" / ".archive-index.json"
    for path, doc in ((good, EMPTY_INDEX), (bad, BROKEN_INDEX)):
        path.parent.mkdir()
        path.write_text(json.dumps(doc))
    run = [*script(entry[0]), *entry[1:]]
    assert subprocess.run([*run, str(good)], capture_output=True).returncode == 0
    failed = subprocess.run([*run, str(good), str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert "$.archives[0].issue_number" in failed.stderr


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    *args], cwd=cwd, check=True, capture_output=True)


def test_example_workflow_validates_every_tracked_index(tmp_path):
    path = REPO / "examples" / "github-actions" / "validate-archive-index.yml"
    workflow = yaml.safe_load(path.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    for event in ("push", "pull_request"):
        assert "**/.archive-index.json" in triggers[event]["paths"]
    [job] = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert any("pip install" in run for run in runs)
    [check] = [run for run in runs if "validate-index" in run]
    # run the step's script in a repository of our own, with the installed package on PATH
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    repo = tmp_path / "repo"
    (repo / "logs").mkdir(parents=True)
    git("init", "-q", ".", cwd=repo)

    def step():
        return subprocess.run(["bash", "-e", "-c", check], cwd=repo, env=env,
                              capture_output=True, text=True)

    nothing = step()
    assert nothing.returncode == 1 and "no .archive-index.json" in nothing.stdout
    index = repo / "logs" / ".archive-index.json"
    index.write_text(json.dumps(EMPTY_INDEX))
    git("add", ".", cwd=repo)
    assert step().returncode == 0
    index.write_text(json.dumps(BROKEN_INDEX))
    broken = step()
    assert broken.returncode == 1 and "$.archives[0].issue_number" in broken.stderr
