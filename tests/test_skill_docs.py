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
        group = group.get_command(None, name)
    return set(group.list_commands(None)) if isinstance(group, click.Group) else set()


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
    assert done.stdout.startswith(f"Usage: {name} "), done.stdout


@pytest.mark.parametrize("name", sorted(console_scripts()))
def test_every_console_script_names_itself_in_its_usage(name):
    """`archive-issue-logs --help` says `Usage: archive-issue-logs`, not the command's name."""
    done = subprocess.run([*script(name), "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"Usage: {name} "), done.stdout
    wrong = subprocess.run([*script(name), "--no-such-option"], capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2
    assert f"`{name}" in json.loads(wrong.stdout)["errors"][0]["hint"], wrong.stdout


def test_the_skill_names_every_script():
    text = SKILL.read_text(encoding="utf-8")
    missing = [name for name in console_scripts()
               if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)]
    assert not missing, f"SKILL.md never names the scripts {missing}"


def test_the_docs_state_the_issue_number_rule_the_code_keeps():
    from log_archiver.errors import UsageError
    from log_archiver.model.issues import parse_issue

    assert parse_issue("#123") == parse_issue("123") == 123
    with pytest.raises(UsageError) as refused:
        parse_issue("0123")
    assert "write it as 123" in f"{refused.value.message}; {refused.value.hint}"
    for doc in (SKILL, REPO / "README.md"):
        paragraph = next(block for block in doc.read_text(encoding="utf-8").split("\n\n")
                         if re.search(r"issue numbers", block, re.IGNORECASE)
                         and "`#123`" in block)
        assert "`0123` is refused" in paragraph and "`123`" in paragraph, doc.name
        assert "leading zero" in paragraph, doc.name


def test_every_command_has_help_and_is_documented():
    from log_archiver.cli import cli

    documented = "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS
                           if doc.name != "cli.md")
    for name in cli.list_commands(None):
        command = cli.get_command(None, name)
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
    sources = [*DOCS, REPO / "skill" / "log_archiver" / "integrations" / "comment.py"]
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


# --- flags and output fields the docs name -----------------------------------------
#
# Two checks keep the docs true to the commands they describe:
#
# * every `--flag` the docs write next to one of our commands (in the same backticked
#   span or code-block line, after `${CLAUDE_PLUGIN_ROOT}/scripts/<name> [sub]`,
#   `scripts/<name>`, `<name> ARGS` or `log-archiver <sub>`), and every flag of a slash
#   command's `argument-hint`, is an option the command's real --help lists;
# * every output field the docs tell the reader to look at is in that command's output
#   schema (`schemas/output/<command>.json`, walked through properties, required,
#   items, $ref and the allOf/anyOf/if/then/else branches).
#
# How a field is tied to a command: the docs are cut into blocks (a paragraph, a list
# item, a code-block line) under headings (a `#` line or a bold `**Lead.**` paragraph).
# A block's command is the one whose command line opens it (or a code-block line), else
# the command of the block before it under the same heading; BLOCK_COMMAND names the
# few blocks the text cannot tell. Fields are backticked: `a.b`, `a[]`, `a[0].b` are
# paths from the top of the output; a plain `name` counts as a field when some schema
# has a property of that name and none uses it as a value (`failed` is also a status).
# A plain name must be a top-level field, an `errors[]` field, or a field of a path or
# of the `lead`: of a list item named earlier in the same block, as in "`kept[]`
# (`local_path`, `reason`)". `cleanup-local` prints different fields with --orphans:
# MODE_EXCLUDES keeps each mode to its own, and a field read after a command line that
# may run either mode (`cleanup-local $ARGUMENTS`) must be printed by both.

SCHEMAS = REPO / "schemas"
OUTPUT_SCHEMAS = SCHEMAS / "output"
FIELD = re.compile(r"([a-z_][a-z0-9_]*(?:\[\d*\])?(?:\.[a-z_][a-z0-9_]*(?:\[\d*\])?)*)(?:: \S+)?")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
LIST_ITEM = re.compile(r"\s*(?:[-*]|\d+\.)\s")
LEAD = re.compile(r"\s*(?:[-*]|\d+\.)\s+`([a-z_]+(?:\[\])?)`:")
BOLD_LEAD = re.compile(r"\*\*[^*]+\*\*")
SENTENCE_END = re.compile(r"(?<=[.;!?])\s+(?=[A-Z`(])")
OPENS_WITHIN = 60  # a command line this close to a block's start is the block's command
SCRIPT_COMMAND = {"archive-issue-logs": "archive", "read-logs": "read", "list-archives": "list",
                  "restore-logs": "restore", "search-logs": "search"}
ORPHANS = "cleanup-local --orphans"
EITHER_MODE = "cleanup-local $ARGUMENTS"  # a slash command passing on issue or --orphans
MODE_EXCLUDES = {
    ORPHANS: {"deleted", "issue_number", "kept[].local_path"},
    "cleanup-local": {"orphans", "mode", "logs_dir", "kept[].path", "kept[].kind"},
}
# (doc, start of a block) -> the command whose output it describes, or None: none.
BLOCK_COMMAND = {
    ("SKILL.md", "stdout is exactly one JSON object"): None,
    ("SKILL.md", "For each entry of `errors[]`"): None,
    ("cleanup.md", "**An issue number.**"): "cleanup-local",
    ("cleanup.md", "**`--orphans`.**"): ORPHANS,
    ("log-manager.md", "**Report**"): "archive",
    ("log-manager.md", "Upload: hand the plan file"): "file-manager",
    ("log-manager.md", "Each failed file"): None,  # names the lists of two commands
    ("recovery.md", "Recognise: `archive-issue-logs`, `file-manager"): None,  # the same
    ("recovery.md", "Fix by `rule`"): None,  # what to change in the index
    ("recovery.md", "FILE may be the"): None,  # fields of the index
    ("recovery.md", "Recognise: the store holds"): None,
    ("recovery.md", "If that cannot be done now"): "mark-partial-archive",
    ("recovery.md", "`metadata.json` (or"): None,  # the input of update-index
    ("search.md", "Grep the file at `path`"): None,
}
def load_schema(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def resolve(node: dict, base: Path) -> list[tuple[dict, Path]]:
    """``node`` and every schema it stands for through $ref and combinators."""
    found, todo = [], [(node, base)]
    while todo:
        node, base = todo.pop()
        if not isinstance(node, dict):
            continue
        found.append((node, base))
        if "$ref" in node:
            target, _, pointer = node["$ref"].partition("#")
            path = (base.parent / target).resolve() if target else base
            doc = load_schema(path)
            for part in filter(None, pointer.split("/")):
                doc = doc[part]
            todo.append((doc, path))
        for key in ("allOf", "anyOf", "oneOf"):
            todo.extend((branch, base) for branch in node.get(key, []))
        for key in ("if", "then", "else"):
            if key in node:
                todo.append((node[key], base))
    return found


def lookup(nodes: list[tuple[dict, Path]], path: str) -> list[tuple[dict, Path]] | None:
    """The schemas at ``path`` (`a.b[].c`) below ``nodes``; None when it is not there."""
    for part in path.split("."):
        name, is_list = re.sub(r"\[\d*\]$", "", part), part.endswith("]")
        found, named = [], False
        for node, base in nodes:
            if name in node.get("properties", {}):
                named = True
                found.extend(resolve(node["properties"][name], base))
            elif name in node.get("required", []):
                named = True
        if not named:
            return None
        nodes = [item for node, base in found if "items" in node
                 for item in resolve(node["items"], base)] if is_list else found
    return nodes


@cache
def output_schema(command: str) -> tuple[tuple[dict, Path], ...]:
    path = OUTPUT_SCHEMAS / f"{command.split()[0]}.json"
    assert path.is_file(), f"no output schema for {command}"
    return tuple(resolve(load_schema(path), path))


@cache
def schema_vocabulary() -> tuple[frozenset, frozenset]:
    """(every property name, every enum value) of the output and index schemas."""
    names, values = set(), set()

    def walk(node):
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            names.update(n for n in node.get("required", []) if isinstance(n, str))
            values.update(v for v in node.get("enum", []) if isinstance(v, str))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in [*OUTPUT_SCHEMAS.glob("*.json"), *SCHEMAS.glob("*.json")]:
        walk(load_schema(path))
    return frozenset(names), frozenset(values)


def command_of(words: list[str]) -> tuple[str, list[str]] | None:
    """(command, its arguments) when ``words`` run one of our commands, else None.

    A bare name counts only with arguments: "`prepare-upload` prints" names a command,
    it does not run one."""
    if not words:
        return None
    first = re.sub(r"^(?:\$\{CLAUDE_PLUGIN_ROOT\}/)?scripts/", "", words[0])
    if first not in console_scripts() or (first == words[0] and len(words) == 1):
        return None
    rest = words[1:]
    if first == "log-archiver":
        if rest and rest[0] in cli_commands():
            return rest[0], rest[1:]
        return "log-archiver", rest
    if first == "file-manager" and rest and rest[0] in cli_commands(("file-manager",)):
        rest = rest[1:]
    command = SCRIPT_COMMAND.get(first, first)
    if command == "cleanup-local" and "--orphans" in rest:
        command = ORPHANS
    elif command == "cleanup-local" and "$ARGUMENTS" in rest:
        command = EITHER_MODE
    return command, rest


def command_lines(text: str) -> list[tuple[int, str, list[str]]]:
    """(offset, command, arguments) of each command line of ours the text shows."""
    found = []
    for match in BACKTICKED.finditer(text):
        command = command_of(match.group(1).split())
        if command:
            found.append((match.start(), *command))
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
        elif in_block and (command := command_of(line.split())):
            found.append((0, *command))
    return sorted(found, key=lambda item: item[0])


@cache
def help_options(command: str) -> frozenset[str]:
    """The long options the real --help of ``command`` lists."""
    from log_archiver.cli import cli

    command = command.split()[0]
    path = ("file-manager", "upload") if command == "file-manager" else (
        () if command == "log-archiver" else (command,))
    target = cli
    for name in path:
        target = target.get_command(None, name)
    context = click.Context(target, info_name=" ".join(("log-archiver", *path)))
    return frozenset(FLAG.findall(target.get_help(context)))


def doc_body(doc: Path) -> str:
    text = doc.read_text(encoding="utf-8")
    return frontmatter(doc)[1] if text.startswith("---\n") else text


DOC_TEXTS = [(doc.name, doc_body(doc)) for doc in DOCS if doc.name != "cli.md"]


def test_every_flag_shown_with_a_command_is_in_its_help():
    wrong = [f"{name}: {command} {flag}" for name, text in DOC_TEXTS
             for _, command, args in command_lines(text)
             for flag in FLAG.findall(" ".join(args)) if flag not in help_options(command)]
    assert not wrong, "flags the commands do not have: " + ", ".join(wrong)


NO_FLAG = re.compile(r"(?:takes|has|accepts) no `(--[a-z][a-z-]*)`")


def wrong_absent_flags(text: str) -> list[str]:
    """Claims that a command has no flag its --help lists ("it takes no `--pr`")."""
    wrong = []
    for _, block, _ in blocks(text):
        commands = command_lines(block)
        for claim in NO_FLAG.finditer(block):
            before = [command for offset, command, _ in commands if offset < claim.start()]
            if before and claim.group(1) in help_options(before[-1]):
                wrong.append(f"{before[-1]} {claim.group(0)}")
    return wrong


def test_no_doc_says_a_command_lacks_a_flag_it_has():
    wrong = [f"{name}: {claim}" for name, text in DOC_TEXTS
             for claim in wrong_absent_flags(text)]
    assert not wrong, "the commands do have these flags: " + "; ".join(wrong)


def test_the_absent_flag_check_catches_a_wrong_claim():
    claim = ("2. Prepare: `${CLAUDE_PLUGIN_ROOT}/scripts/prepare-upload ISSUE --reason R`; "
             "it takes no `--pr`.\n")
    assert wrong_absent_flags(claim) == ["prepare-upload takes no `--pr`"]
    assert not wrong_absent_flags(claim.replace("--pr", "--retry"))


@pytest.mark.parametrize("path", COMMANDS, ids=[p.stem for p in COMMANDS])
def test_every_flag_of_an_argument_hint_is_in_the_help(path):
    meta, _ = frontmatter(path)
    options = set()
    for entry in meta["allowed-tools"].split(", "):
        if allowed := allowed_scripts(entry.strip()):
            options |= help_options(command_of([f"scripts/{allowed[0]}",
                                                *filter(None, [allowed[1]])])[0])
    missing = set(FLAG.findall(meta["argument-hint"])) - options
    assert not missing, f"{path.name} argument-hint shows {sorted(missing)}, not in --help"


def blocks(text: str) -> list[tuple[int, str, bool]]:
    """(section number, block text, is code) for each paragraph, list item, code line."""
    found, section, current, in_code = [], 0, [], False

    def close():
        if current:
            found.append((section, " ".join(line.strip() for line in current), False))
            current.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            close()
            in_code = not in_code
        elif in_code:
            if line.strip():
                found.append((section, line.strip(), True))
        elif line.startswith("#") or (BOLD_LEAD.match(line) and not current):
            close()
            section += 1
            if not line.startswith("#"):
                current.append(line)
        elif not line.strip() or line.startswith("|"):
            close()
        elif LIST_ITEM.match(line):
            close()
            current.append(line)
        else:
            current.append(line)
    close()
    return found


def field_refs(block: str) -> list[tuple[str, list[str]]]:
    """Each field the block names, with the other fields of the block it may belong to."""
    names, values = schema_vocabulary()
    lead = LEAD.match(block)
    lead = lead.group(1) if lead and bare(lead.group(1)) in names else None
    # a name that is also a value (`compressed` is a kind, `config` an error type) is not
    # checked as a field, but the fields after it may belong to it
    fields, holders = [], []
    if lead:
        (holders if bare(lead) in values else fields).append(lead)
    for span in BACKTICKED.findall(block):
        match = FIELD.fullmatch(span)
        if not match:
            continue
        field = match.group(1).replace("[0]", "[]")
        if "." in field or field.endswith("]"):
            if re.sub(r"[.\[].*", "", field) in names:  # not a file name (`metadata.json`)
                fields.append(field)
        elif field in names:
            (holders if field in values else fields).append(field)
    # a field may belong to the block's lead, or to another field of the block
    parents = [*fields, *holders, *(f"{lead}.{field}" for field in fields if lead
                                    and field != lead)]
    return [(field, [other for other in parents if other != field]) for field in fields]


def documented_fields(name: str, text: str) -> list[tuple[str, str, list[str], str]]:
    # a path such as `deleted[]` in "- `cleanup`: `deleted[]`" is read below its lead
    """(command, field, parents, block) for every output field the text tells to read."""
    found, section, command = [], None, None
    for number, block, is_code in blocks(text):
        if number != section:
            section, command = number, None
        override = [value for (doc, start), value in BLOCK_COMMAND.items()
                    if doc == name and re.sub(r"^[-*\d.\s]+", "", block).startswith(start)]
        opening = [cmd for offset, cmd, _ in command_lines(f"`{block}`" if is_code else block)
                   if offset < OPENS_WITHIN and cmd != "log-archiver"]
        if override:
            command = block_command = override[0]
        else:
            command = opening[0] if opening else command
            block_command = command
        if block_command and not is_code:
            found.extend((block_command, field, parents, block)
                         for field, parents in field_refs(block))
    return found


def bare(path: str) -> str:
    return path.replace("[]", "")


def field_exists(command: str, field: str, parents: list[str]) -> bool:
    if command == EITHER_MODE:
        return all(field_exists(mode, field, parents) for mode in ("cleanup-local", ORPHANS))
    excluded = {bare(path) for path in MODE_EXCLUDES.get(command, set())}

    def at(path: str) -> bool:
        if bare(path) in excluded:
            return False
        return lookup(output_schema(command), path) is not None

    if at(field):
        return True
    if "." in field or field.endswith("]"):  # a path: from the top, or below a lead
        return any(at(f"{parent}.{field}") for parent in parents if "." not in parent
                   and not parent.endswith("]"))
    return any(at(f"{parent}.{field}") for parent in [*parents, "errors[]"])


def wrong_fields(name: str, text: str) -> list[str]:
    return sorted({f"{name}: {command} prints no `{field}` (in: {block[:80]}...)"
                   for command, field, parents, block in documented_fields(name, text)
                   if not field_exists(command, field, parents)})


def test_every_field_the_docs_name_is_in_the_commands_output_schema():
    found = [item for name, text in DOC_TEXTS for item in documented_fields(name, text)]
    commands = {command for command, *_ in found}
    assert {"archive", "prepare-upload", "file-manager", "retry-failed-uploads", "commit",
            "cleanup-local", ORPHANS, "validate-index", "collect-logs"} <= commands, commands
    wrong = [line for name, text in DOC_TEXTS for line in wrong_fields(name, text)]
    assert not wrong, "\n".join(wrong)


def test_the_field_check_catches_fields_in_the_wrong_place():
    # cleanup-local --orphans prints `orphans[]`, not `deleted[]`; its kept files have no
    # `local_path`
    orphans = ("```\n${CLAUDE_PLUGIN_ROOT}/scripts/cleanup-local --orphans --dry-run\n```\n\n"
               "Report `deleted[]` (what would be deleted), `kept[]` with each `reason`.\n")
    assert [line for line in wrong_fields("x.md", orphans) if "`deleted[]`" in line]
    assert not wrong_fields("x.md", orphans.replace("deleted[]", "orphans[]"))
    either = orphans.replace("--orphans --dry-run", "$ARGUMENTS")
    assert [line for line in wrong_fields("x.md", either) if "`deleted[]`" in line]
    assert not wrong_fields("x.md", either.replace("`deleted[]` (what would be deleted), ", ""))
    kept = "- `${CLAUDE_PLUGIN_ROOT}/scripts/cleanup-local --orphans`: `kept[]` (`local_path`)\n"
    assert wrong_fields("x.md", kept)
    # the commit command's reason is `commit.reason`, not a top-level `reason`
    commit = ("- `${CLAUDE_PLUGIN_ROOT}/scripts/log-archiver commit 123`: commit the index,"
              " when an archive's `commit.status` was `error`. `noop` with a `reason`.\n")
    assert [line for line in wrong_fields("x.md", commit) if "`reason`" in line]
    assert not wrong_fields("x.md", commit.replace("a `reason`", "`commit.reason`"))
    assert wrong_fields("x.md", "`${CLAUDE_PLUGIN_ROOT}/scripts/collect-logs 1` -> `note`\n")
