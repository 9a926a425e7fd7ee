"""Queries: what a matching line must contain (for the index) and how a line is tested.

A query becomes a :class:`Query`: a test for one line of text, and ``needs``, the grams a
chunk must hold for any of its lines to pass. ``needs`` is a list of clauses that must all
hold; a clause is a list of alternatives of which one must hold; an alternative is a list
of positions, each a set of grams of which one must be present. An empty ``needs`` means
the index cannot narrow the query: every chunk in scope is read.

For ``--ignore-case`` a gram stands for its ASCII case variants; a window holding a
non-ASCII byte, or one of ``i s k`` (which Python also matches with ``İ ı ſ K``), adds no
condition. Regular expressions are Python's; the literals every match must contain are
read from the parsed pattern (``re._parser``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from log_archiver.errors import UsageError
from log_archiver.search.grams import gram_of

try:  # the parser's name since Python 3.11
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

MAX_QUERY_CHARS = 1000
MIN_PLAIN_CHARS = 3
_UNCASED_UNSAFE = frozenset(b"iIsSkK")

Position = frozenset  # of grams
Alternative = list  # of positions
Clause = list  # of alternatives


@dataclass
class Query:
    text: str
    mode: str                   # "plain", "ignore-case" or "regex"
    needs: list = field(default_factory=list)
    literal: bytes = b""        # plain: the bytes to find
    pattern: object = None      # ignore-case and regex: a compiled ``regex`` pattern
    many_lines: object = None   # the same with ^ and $ at every line, for runs of lines
    line_safe: bool = True      # a match found in a run of lines lies in one line of it


def build_query(text: str, *, regex: bool = False, ignore_case: bool = False) -> Query:
    if not isinstance(text, str) or not text:
        raise UsageError("the search query is empty", "give a word or phrase to find")
    if len(text) > MAX_QUERY_CHARS:
        raise UsageError(f"the search query is {len(text)} characters long (at most "
                         f"{MAX_QUERY_CHARS})", "search for a shorter, distinctive part")
    if "\n" in text or "\r" in text:
        raise UsageError(f"the search query {text[:60]!r} holds a line break",
                         "matches are single lines: search for one line's text")
    if "\x00" in text:
        raise UsageError("the search query holds a NUL character", "remove it")
    if regex:
        return _regex_query(text, ignore_case)
    if len(text) < MIN_PLAIN_CHARS:
        raise UsageError(f"the search query {text!r} is shorter than {MIN_PLAIN_CHARS} "
                         "characters", "search for a longer word, or use --regex")
    if ignore_case:
        import regex as engine

        pattern = engine.compile(engine.escape(text), engine.IGNORECASE)
        return Query(text, "ignore-case", [[_alternative(text.encode(), True)]],
                     pattern=pattern, many_lines=pattern)
    return Query(text, "plain", [[_alternative(text.encode(), False)]],
                 literal=text.encode())


def _alternative(data: bytes, ignore_case: bool) -> list:
    positions = []
    for i in range(len(data) - 2):
        window = data[i:i + 3]
        if not ignore_case:
            positions.append(frozenset({gram_of(window)}))
            continue
        if any(b >= 0x80 or b in _UNCASED_UNSAFE for b in window):
            continue
        variants = [{b, b ^ 0x20} if chr(b).isalpha() else {b} for b in window]
        positions.append(frozenset(gram_of(bytes(combo))
                                   for combo in itertools.product(*variants)))
    return positions


def _regex_query(text: str, ignore_case: bool) -> Query:
    import regex as engine

    flags = re.IGNORECASE if ignore_case else 0
    try:
        parsed = sre_parse.parse(text, flags)
        re.compile(text, flags)
        folding = engine.IGNORECASE if ignore_case else 0
        pattern = engine.compile(text, folding)
        many_lines = engine.compile(text, folding | engine.MULTILINE)
    except (re.error, engine.error, OverflowError, RecursionError) as error:
        raise UsageError(f"the regular expression {text[:200]!r} is not valid: {error}",
                         "check the pattern (Python's re syntax), or search without "
                         "--regex for the text as it is") from error
    icase = bool(parsed.state.flags & re.IGNORECASE)
    clauses = []
    for clause in _required(parsed, icase):
        alternatives = [_alternative(s.encode(), folded) for s, folded in clause]
        if alternatives and all(alternatives):  # an alternative that says nothing
            clauses.append(alternatives)
    return Query(text, "regex", clauses, pattern=pattern, many_lines=many_lines,
                 line_safe=_line_safe(parsed))


_REPEATS = {name for name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")}
_UNSAFE_AT = {"AT_BEGINNING_STRING", "AT_END_STRING"}


def _required(seq, icase: bool) -> list[list[tuple[str, bool]]]:
    """Clauses of literals (each a list of ``(text, ignore_case)`` alternatives) every
    match of the parsed ``seq`` contains."""
    clauses, run = [], []

    def flush():
        if len(run) >= MIN_PLAIN_CHARS:
            clauses.append([("".join(run), icase)])
        run.clear()

    for op, av in seq:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(av))
            continue
        flush()
        if name == "SUBPATTERN":
            _group, add, delete, inner = av
            folded = (icase or bool(add & re.IGNORECASE)) and not delete & re.IGNORECASE
            clauses += _required(inner, folded)
        elif name == "ATOMIC_GROUP":
            clauses += _required(av, icase)
        elif name in _REPEATS:
            low, _high, item = av
            if low >= 1:
                clauses += _required(item, icase)
        elif name == "BRANCH":
            merged = []
            for branch in av[1]:
                inner = _required(branch, icase)
                if not inner:
                    merged = None
                    break
                merged += max(inner, key=lambda c: min(len(s) for s, _ in c))
            if merged:
                clauses.append(merged)
    flush()
    return clauses


def _line_safe(seq) -> bool:
    """Whether a search over many lines at once finds every line that a search of each
    line alone finds (no lookaround, no \\A or \\Z)."""
    for op, av in seq:
        name = str(op)
        if name in ("ASSERT", "ASSERT_NOT"):
            return False
        if name == "AT" and str(av) in _UNSAFE_AT:
            return False
        if name == "SUBPATTERN" and not _line_safe(av[3]):
            return False
        if name == "ATOMIC_GROUP" and not _line_safe(av):
            return False
        if name in _REPEATS and not _line_safe(av[2]):
            return False
        if name == "BRANCH" and not all(_line_safe(b) for b in av[1]):
            return False
        if name == "GROUPREF_EXISTS":
            return False
    return True
