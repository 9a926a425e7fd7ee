"""Finding secrets in a buffer: a fast pass for where they could be, the rules' regexes
only there.

The fast pass is hyperscan when it is installed (every rule's hint in one database, one
scan of the buffer at several GB/s), else a search for each rule's keywords with
``bytes.find`` over the lower-cased buffer. Either way it only says where to look: the
precise regexes (Python ``re``) decide, so both engines redact the same bytes. A buffer
with no hit costs one scan and nothing more, the common case.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from log_archiver.redaction.rules import CONTEXT, Rule, RuleSet

try:  # optional: the keyword engine below does the same work, slower
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None


@dataclass(frozen=True, order=True)
class Match:
    start: int  # of the secret, in the buffer
    end: int
    priority: int  # the rule's place in the rule set: earlier wins a tie
    rule: str


class KeywordFinder:
    """Where each rule's keywords occur (``bytes.find``), the portable engine."""

    name = "keywords"

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        self.by_keyword: dict[bytes, list[int]] = {}
        self.everywhere = [i for i, rule in enumerate(rules)
                           if not rule.keywords and rule.prefilter is None]
        self.filtered = [i for i, rule in enumerate(rules) if rule.prefilter is not None]
        for i, rule in enumerate(rules):
            if rule.prefilter is not None:
                continue
            for keyword in rule.keywords:
                self.by_keyword.setdefault(keyword, []).append(i)

    def anchors(self, buf: bytes, start: int) -> dict[int, list[int]]:
        """rule index -> positions a match of it must start at or before (within
        :meth:`reach`); -1 means anywhere."""
        lowered = buf.lower()
        found: dict[int, list[int]] = {i: [-1] for i in self.everywhere}
        find = lowered.find
        for keyword, owners in self.by_keyword.items():
            at = find(keyword, start)
            if at < 0:
                continue
            positions = []
            while at >= 0:
                positions.append(at)
                at = find(keyword, at + 1)
            for i in owners:
                found.setdefault(i, []).extend(positions)
        for i in self.filtered:
            positions = [hit.start() for hit in self.rules[i].prefilter.finditer(lowered, start)]
            if positions:
                found[i] = positions
        return found

    def reach(self, i: int) -> int:
        return self.rules[i].keyword_reach


class HyperscanFinder:
    """Every rule's hint in one hyperscan database; rules without one fall back to
    their keywords."""

    name = "hyperscan"

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        hinted = [i for i, rule in enumerate(rules) if rule.hint is not None]
        self.rest = KeywordFinder(tuple(r if i not in hinted else _silent(r)
                                        for i, r in enumerate(rules)))
        self.rest.everywhere = [i for i in self.rest.everywhere if i not in hinted]
        self.has_rest = bool(self.rest.by_keyword or self.rest.everywhere)
        from log_archiver.redaction.hs_cache import compiled

        self.database = compiled(hyperscan, [rules[i].hint for i in hinted], hinted,
                                 [hyperscan.HS_FLAG_DOTALL] * len(hinted))
        self._local = threading.local()  # a scratch space is for one thread at a time

    def anchors(self, buf: bytes, start: int) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}

        def on_match(rule_id, _from, to, _flags, _context):
            found.setdefault(rule_id, []).append(to)

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self.database)
        self.database.scan(buf, match_event_handler=on_match, scratch=scratch)
        if self.has_rest:
            found.update(self.rest.anchors(buf, start))
        return found

    def reach(self, i: int) -> int:
        return self.rules[i].max_len if self.rules[i].hint is not None \
            else self.rules[i].keyword_reach


def _silent(rule: Rule) -> Rule:
    """A rule the keyword pass must not look for (hyperscan does)."""
    return Rule(rule.name, rule.pattern, (), rule.hint, rule.max_len, rule.check, rule.lead)


def make_finder(rules: tuple[Rule, ...], engine: str = "auto"):
    if engine in ("auto", "hyperscan") and hyperscan is not None:
        try:
            return HyperscanFinder(rules)
        except hyperscan.error:  # pragma: no cover - a hint it cannot compile
            if engine == "hyperscan":
                raise
    if engine == "hyperscan":
        raise RuntimeError("hyperscan is not installed")
    return KeywordFinder(rules)


class Scanner:
    """The matches of a rule set in a buffer, chosen so they never overlap."""

    def __init__(self, ruleset: RuleSet, engine: str = "auto"):
        self.ruleset = ruleset
        self.rules = ruleset.rules
        self.finder = make_finder(self.rules, engine)

    def matches(self, buf: bytes, start: int, stop: int) -> list[Match]:
        """Secrets whose match starts in ``[start, stop)``; the regexes may look at
        ``CONTEXT`` bytes before ``start`` and up to the end of ``buf``."""
        candidates: list[Match] = []
        for i, positions in self.finder.anchors(buf, start).items():
            rule = self.rules[i]
            for low, high in _ranges(positions, self.finder.reach(i), start, stop):
                candidates.extend(_search(rule, i, buf, low, high, self.ruleset))
        if not candidates:
            return candidates
        candidates.sort()
        chosen, reach = [], -1
        for match in candidates:
            if match.start >= reach:
                chosen.append(match)
                reach = match.end
        return chosen


def _ranges(positions: list[int], reach: int, start: int, stop: int):
    """Merged ranges of match starts the anchors allow, clipped to ``[start, stop)``."""
    if positions and positions[0] == -1:
        yield start, stop
        return
    positions.sort()
    low = high = None
    for at in positions:
        a, b = max(at - reach, start), min(at, stop - 1)
        if a > b:
            continue
        if low is not None and a <= high + 1:
            high = max(high, b)
            continue
        if low is not None:
            yield low, high + 1
        low, high = a, b
    if low is not None:
        yield low, high + 1


def _search(rule: Rule, priority: int, buf: bytes, low: int, high: int,
            ruleset: RuleSet) -> list[Match]:
    """Matches of ``rule`` starting in ``[low, high)``, as a scan of the whole text
    would find them (the regex sees ``max_len`` and context past ``high``)."""
    found = []
    pos, endpos = low, min(len(buf), high + rule.max_len + CONTEXT)
    search = rule.pattern.match if high - low == 1 else rule.pattern.search
    while pos < high:
        match = search(buf, pos, endpos)
        if match is None or match.start() >= high:
            break
        pos = match.end() if match.end() > match.start() else match.start() + 1
        a, b = rule.secret_span(match)
        if b <= a:
            continue
        secret = buf[a:b]
        if rule.check is not None and not rule.check(secret):
            continue
        if ruleset.allowed(secret):
            continue
        found.append(Match(a, b, priority, rule.name))
    return found


_PROVIDER_PREFIX = re.compile(
    rb"^(?:-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----|github_pat_|"
    rb"(?:sk|rk)_live_|sk-ant-[a-z]{3,5}[0-9]{2}-|sk-(?:proj|svcacct|admin)-|sk-|"
    rb"gh[pousr]_|gl[a-z]{2,6}-|xox[a-z]-|xapp-|AKIA|ASIA|ABIA|ACCA|AIza|npm_|pypi-|eyJ)")


def masked(secret: bytes) -> str:
    """What a report may show of a secret: a provider's fixed prefix, never a byte of
    the part that is secret (``ghp_****...``)."""
    known = _PROVIDER_PREFIX.match(secret)
    shown = known.group(0).decode("ascii") if known else ""
    return f"{shown}****..."
