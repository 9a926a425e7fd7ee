"""Retention as a pure function: longest rule wins, named rules, label/type/reason, forever,
and the reasons a log is kept whatever the rules say."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from log_archiver.config import load_config
from log_archiver.errors import ConfigError
from log_archiver.lifecycle.policy import Policy
from log_archiver.util.durations import add_months, parse_grace, parse_retention

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def log(path="builds/1-build.log", kind="build", status="cleaned"):
    return {"local_path": path, "type": kind, "upload_status": status}


def entry(*logs, archived="2025-01-01T00:00:00Z", reason="issue_closed", labels=None,
          hold=None, complete=True, partial=False, issue=7):
    found = {"issue_number": issue, "archived_at": archived, "archive_reason": reason,
             "logs": list(logs) or [log()], "upload_complete": complete,
             "partial_archive": partial, "hold": hold}
    if labels is not None:
        found["labels"] = labels
    return found


def decide(retention, item):
    return [(d.verdict, d.rule, d.expires_at) for d in Policy(retention).decide(item, NOW)]


def test_durations_parse_and_reject():
    assert parse_retention("30d").days == 30
    assert parse_retention("2w").days == 14
    assert parse_retention("6m").months == 6
    assert parse_retention("7y").months == 84
    assert parse_retention("forever").forever
    named = parse_retention("audit: 7y")
    assert (named.name, named.text) == ("audit", "7y")
    for bad in ("7x", "0d", "-1y", "", "y", "audit:", "1.5y", "forever!", 7):
        assert parse_retention(bad) is None, bad
    assert parse_grace("24h") == 86_400 and parse_grace("0s") == 0 and parse_grace("90m") == 5400
    assert parse_grace("1y") is None and parse_grace("-1h") is None


def test_calendar_months_clamp_to_the_month_end():
    start = datetime(2025, 1, 31, tzinfo=UTC)
    assert add_months(start, 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert add_months(start, 12) == datetime(2026, 1, 31, tzinfo=UTC)


def test_default_rule_makes_a_log_due_or_not_yet():
    assert decide({"default": "1y"}, entry()) == [("due", "default", "2026-01-01T00:00:00Z")]
    assert decide({"default": "2y"}, entry()) == [("not_due", "default",
                                                   "2027-01-01T00:00:00Z")]


def test_longest_matching_rule_wins_across_type_reason_and_label():
    retention = {"default": "30d", "by_type": {"build": "6m"},
                 "by_reason": {"issue_closed": "1y"},
                 "by_label": {"compliance": "audit: 7y", "noise": "30d"}}
    assert decide(retention, entry(labels=["noise"])) == [("due", "reason:issue_closed",
                                                           "2026-01-01T00:00:00Z")]
    assert decide(retention, entry(labels=["noise", "compliance"])) == [
        ("not_due", "audit", "2032-01-01T00:00:00Z")]
    # a shorter label rule never shortens a longer one
    assert decide({"default": "2y", "by_label": {"noise": "30d"}},
                  entry(labels=["noise"]))[0][:2] == ("not_due", "default")


def test_rules_by_type_apply_per_log():
    retention = {"default": "30d", "by_type": {"session": "forever"}}
    item = entry(log(), log("sessions/s.md", "session"))
    assert decide(retention, item) == [("due", "default", "2025-01-31T00:00:00Z"),
                                       ("forever", "type:session", None)]


def test_no_retention_or_no_matching_rule_keeps_forever():
    assert decide(None, entry()) == [("no_rule", None, None)]
    assert not Policy(None).configured
    assert decide({"by_type": {"debug": "30d"}}, entry()) == [("no_rule", None, None)]


def test_held_incomplete_and_unverified_are_kept_whatever_the_rules():
    rules = {"default": "1d"}
    hold = {"reason": "court", "by": "a", "at": "2026-01-01T00:00:00Z"}
    assert decide(rules, entry(hold=hold))[0][0] == "held"
    assert decide(rules, entry(complete=False))[0][0] == "incomplete"
    assert decide(rules, entry(partial=True))[0][0] == "incomplete"
    assert decide(rules, entry(log(status="uploaded")))[0][0] == "unverified"
    assert decide(rules, entry(log(status="verified")))[0][0] == "due"
    assert decide(rules, entry(log(status="expired"))) == []  # a tombstone is settled


def write_config(root, retention):
    (root / ".log-archiver.json").write_text(json.dumps({"logs_dir": "logs",
                                                        "retention": retention}))


def test_config_names_a_bad_duration(workspace):
    write_config(workspace, {"default": "1y", "by_label": {"security": "7 years"}})
    with pytest.raises(ConfigError) as caught:
        load_config(workspace)
    assert "retention.by_label.security is '7 years'" in caught.value.message
    assert "30d" in caught.value.hint


def test_config_rejects_an_unknown_log_type(workspace):
    write_config(workspace, {"by_type": {"bogus": "1y"}})
    with pytest.raises(ConfigError) as caught:
        load_config(workspace)
    assert "bogus" in caught.value.message


def test_config_keeps_the_retention_block(workspace):
    retention = {"default": "1y", "by_reason": {"manual": "audit: 7y"}}
    write_config(workspace, retention)
    assert load_config(workspace).retention == retention


def test_gc_reports_a_bad_duration_as_a_config_error(workspace, run_cli):
    write_config(workspace, {"default": "soon"})
    result = run_cli("gc", "--dry-run")
    assert result.exit_code == 1
    assert result.json["errors"][0]["type"] == "config"
    assert "'soon'" in result.json["errors"][0]["message"]
