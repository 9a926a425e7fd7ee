"""Retention as a pure function: for each log of an entry, whether its stored object is due
for deletion, and if not, why it is kept (restic's ``forget`` reports the same way).

The rules come from ``retention`` in ``.log-archiver.json``::

    "retention": {"default": "1y",
                  "by_type": {"debug": "30d"},
                  "by_reason": {"pr_merged": "6m"},
                  "by_label": {"compliance": "audit: 7y", "security": "forever"}}

Every rule that matches a log applies (the default, its type, the entry's archive reason,
each of the entry's labels) and the longest wins; between equally long ones the more
specific (label, then type, then reason, then default). A rule is named in reports by the
name the config gives it (``audit``), else by where it is (``label:compliance``). Time counts
from the entry's ``archived_at``. No retention configured, or no rule matching: kept forever.

Kept, whatever the rules say: every log of an entry on legal hold (``held``), of an entry
that is partial or still uploading (``incomplete``), and a log only ``uploaded``, whose
stored copy was never checked, so its local file may be the only good copy
(``unverified``). Otherwise a log is ``due``, or kept as ``not_due`` or ``forever`` or
``no_rule``. Tombstones are already expired and are not decided again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from log_archiver.model import states
from log_archiver.model.holds import is_held
from log_archiver.util.clock import iso
from log_archiver.util.durations import Retention, parse_retention

DUE = "due"
KEEP_REASONS = ("held", "incomplete", "unverified", "not_due", "forever", "no_rule")
_GROUPS = (("by_label", "label"), ("by_type", "type"), ("by_reason", "reason"))
_SPECIFICITY = {"by_label": 3, "by_type": 2, "by_reason": 1, "default": 0}


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str             # where the config has it: default, by_type, by_reason, by_label
    retention: Retention

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "keep": self.retention.text}


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy says of one log: ``verdict`` is ``due`` or a keep reason."""

    issue: int
    local_path: str
    verdict: str
    rule: str | None = None
    expires_at: str | None = None

    def as_kept(self) -> dict:
        return {"issue_number": self.issue, "local_paths": [self.local_path],
                "reason": self.verdict, "rule": self.rule, "expires_at": self.expires_at}


class Policy:
    """The retention rules of one configuration."""

    def __init__(self, retention: dict | None):
        self.configured = bool(retention)
        self.default: Rule | None = None
        self.by: dict[str, dict[str, Rule]] = {"label": {}, "type": {}, "reason": {}}
        self._memo: dict[tuple, Rule | None] = {}
        retention = retention or {}
        if retention.get("default") is not None:
            self.default = _rule(retention["default"], "default", "default")
        for group, kind in _GROUPS:
            for value, text in (retention.get(group) or {}).items():
                self.by[kind][value] = _rule(text, group, f"{kind}:{value}")

    def rules(self) -> list[Rule]:
        every = [self.default] if self.default else []
        return every + [rule for kind in ("type", "reason", "label")
                        for rule in self.by[kind].values()]

    def rule_for(self, entry: dict, log: dict) -> Rule | None:
        """The longest rule that matches ``log`` of ``entry`` (None: none matches)."""
        key = (log["type"], entry["archive_reason"], tuple(entry.get("labels") or ()))
        if key not in self._memo:
            self._memo[key] = self._longest(entry, log)
        return self._memo[key]

    def _longest(self, entry: dict, log: dict) -> Rule | None:
        found = [self.default] if self.default else []
        if (rule := self.by["type"].get(log["type"])) is not None:
            found.append(rule)
        if (rule := self.by["reason"].get(entry["archive_reason"])) is not None:
            found.append(rule)
        for label in entry.get("labels") or ():
            if (rule := self.by["label"].get(label)) is not None:
                found.append(rule)
        if not found:
            return None
        return max(found, key=lambda r: (r.retention.sort_key(), _SPECIFICITY[r.kind]))

    def decide(self, entry: dict, now: datetime) -> list[Decision]:
        """A decision for every log of ``entry`` that is not a tombstone."""
        issue = entry["issue_number"]
        logs = [log for log in entry["logs"] if log["upload_status"] != states.EXPIRED]
        if is_held(entry):
            return [Decision(issue, log["local_path"], "held") for log in logs]
        if not entry["upload_complete"] or entry["partial_archive"]:
            return [Decision(issue, log["local_path"], "incomplete") for log in logs]
        stamp = entry["archived_at"]
        decisions = []
        for log in logs:
            rule = self.rule_for(entry, log)
            if log["upload_status"] not in states.EXPIRABLE:
                verdict, name, until_text = "unverified", rule and rule.name, None
            elif rule is None:
                verdict, name, until_text = "no_rule", None, None
            else:
                name, (until, until_text) = rule.name, _until(rule.retention, stamp)
                verdict = "forever" if until is None else DUE if until <= now else "not_due"
            decisions.append(Decision(issue, log["local_path"], verdict, name,
                                      until_text))
        return decisions


@lru_cache(maxsize=8192)
def _until(retention: Retention, stamp: str) -> tuple[datetime | None, str | None]:
    """When a log archived at ``stamp`` is due under ``retention`` (and that as text);
    many entries share a day, and strptime and strftime cost more than the decision."""
    until = retention.until(datetime.fromisoformat(stamp[:19]).replace(tzinfo=UTC))
    return until, None if until is None else iso(until)


def _rule(text: str, kind: str, where: str) -> Rule:
    retention = parse_retention(text)
    if retention is None:  # the config was checked when read; a Config built by hand not
        from log_archiver.errors import ConfigError
        from log_archiver.util.durations import RETENTION_FORMS

        raise ConfigError(f"retention rule {where} is {text!r}, not a duration",
                          f"write it as {RETENTION_FORMS}")
    return Rule(retention.name or where, kind, retention)
