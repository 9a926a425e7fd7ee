"""The redaction a run applies, from its settings: the rule set (built once per set of
user rules) and the scanner over it, or None when redaction is off."""

from __future__ import annotations

import json
from functools import lru_cache

from log_archiver.redaction.engine import Scanner
from log_archiver.redaction.rules import RuleSet, user_rules


def ruleset_of(config) -> RuleSet:
    """The built-in rules plus ``redaction.rules``, with ``redaction.allowlist``
    (a :class:`ConfigError` names a bad one)."""
    return _ruleset(json.dumps(config.redaction_rules), json.dumps(config.redaction_allowlist))


def scanner_of(config) -> Scanner | None:
    """The scanner a run redacts with; None with ``redaction.enabled`` false or
    ``--no-redact``."""
    if not config.redact:
        return None
    return _scanner(json.dumps(config.redaction_rules), json.dumps(config.redaction_allowlist))


@lru_cache(maxsize=8)
def _ruleset(rules: str, allowlist: str) -> RuleSet:
    return user_rules(json.loads(rules), json.loads(allowlist))


@lru_cache(maxsize=8)
def _scanner(rules: str, allowlist: str) -> Scanner:
    return Scanner(_ruleset(rules, allowlist))
