"""What a command line imports before it runs: only its own command (and ``enqueue``, what
a webhook waits for, not even click), with the same output either way."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from log_archiver.cli.commands import COMMANDS
from log_archiver.cli.enqueue import plain_enqueue

MODULES_AFTER = """
import json, sys
from log_archiver.cli import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(sys.modules), out)
"""


def imported(tmp_path, *words: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """The modules loaded by the end of the command line, and what it printed."""
    record = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.json"
    done = subprocess.run([sys.executable, "-c", MODULES_AFTER, str(record), *words],
                          capture_output=True, text=True)
    names = set(json.loads(record.read_text()))
    assert "log_archiver.cli" in names, done.stderr[-2000:]
    return names, done


def command_modules(names: set[str]) -> set[str]:
    ours = {f"log_archiver.cli.{spec.partition(':')[0]}" for spec in COMMANDS.values()}
    return names & ours


def test_every_command_is_where_the_table_says():
    from log_archiver.cli import cli

    assert len(COMMANDS) == len(cli.list_commands(None)) > 20
    for name in COMMANDS:
        assert cli.get_command(None, name).name == name


def test_the_version_loads_no_command_module(workspace, tmp_path):
    names, done = imported(tmp_path, "--version")
    assert done.returncode == 0 and "log-archiver, version" in done.stdout
    assert "click" in names and not command_modules(names), sorted(command_modules(names))


def test_a_command_loads_its_own_module_only(workspace, tmp_path):
    names, done = imported(tmp_path, "list", "-q")
    assert json.loads(done.stdout)["command"] == "list", done.stdout
    assert command_modules(names) == {"log_archiver.cli.retrieve"}


def test_the_top_level_help_still_lists_every_command(workspace):
    done = subprocess.run([sys.executable, "-m", "log_archiver", "--help"],
                          capture_output=True, text=True, check=True)
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == set(COMMANDS)


def test_plain_enqueue_runs_without_click_and_answers_as_the_click_command(workspace, tmp_path):
    plain_names, plain = imported(tmp_path, "enqueue", "5", "#6", "--reason", "pr_merged", "-q")
    # `--` is not a plain word: the click command reads this line
    click_names, clicked = imported(tmp_path, "enqueue", "--reason=pr_merged", "-q", "--",
                                    "5", "#6")
    assert "click" not in plain_names and "click" in click_names
    first, second = json.loads(plain.stdout), json.loads(clicked.stdout)
    for document in (first, second):
        assert [job["issue"] for job in document.pop("jobs")] == [5, 6]
    assert second.pop("waiting") == first.pop("waiting") + 2
    assert first == second and first["status"] == "ok" and first["reason"] == "pr_merged"
    assert plain.returncode == clicked.returncode == 0 and plain.stderr.count("Queued") == 0


@pytest.mark.parametrize("words", [
    ["--help"], ["5", "--help"], [], ["-q"], ["5", "--reason"], ["5", "--reason", "later"],
    ["5", "--reason=later"], ["0x5"], ["05"], ["-5"], ["5", "--", "6"], ["5", "-qv"],
    ["5", "--quiet=yes"], ["5", "--storage", "file:///tmp"],
])
def test_anything_but_plain_words_is_left_to_click(words):
    assert plain_enqueue(words) is None


def test_plain_words_are_read_as_click_reads_them():
    assert plain_enqueue(["5", "#6", "5"]) == ([5, 6, 5], "manual", False)
    assert plain_enqueue(["--reason=retention", "7", "--quiet"]) == ([7], "retention", True)
    assert plain_enqueue(["-q", "--reason", "manual", "--reason", "issue_closed", "8"]) == (
        [8], "issue_closed", True)


@pytest.mark.parametrize("words,expected", [
    (["enqueue", "0x5"], "'0x5'"), (["enqueue", "5", "--reason", "later"], "'later'"),
    (["enqueue"], "Missing argument"),
])
def test_a_bad_enqueue_line_is_a_usage_error_from_click(workspace, run_cli, words, expected):
    result = run_cli(*words)
    assert result.exit_code == 2 and result.json["command"] == "enqueue"
    assert expected in result.json["errors"][0]["message"]


def test_search_loads_no_compressor_or_redaction_engine(workspace, tmp_path):
    names, done = imported(tmp_path, "search", "ERROR", "-q")
    assert json.loads(done.stdout)["command"] == "search", done.stdout
    assert "log_archiver.search.query" in names
    assert not names & {"log_archiver.archive.compress", "log_archiver.redaction.engine",
                        "hyperscan", "deflate", "zlib_ng"}
