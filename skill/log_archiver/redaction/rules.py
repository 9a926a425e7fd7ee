"""What counts as a secret: the built-in rules, and the ones a user adds in config.

High-confidence provider formats come first (a fixed prefix no other text carries:
``ghp_``, ``AKIA``, ``xoxb-``...); generic ``password=``/``token:`` assignments only in
context and only with a high-entropy value, so git commit hashes, UUIDs, digests,
version strings and timestamps are never taken for secrets.

Each rule is a bytes regular expression whose group ``secret`` (or the whole match) is
what gets replaced, with:

- ``keywords``: literals (matched without case) one of which every match contains; the
  cheap prefilter looks for them and the regex only runs near a hit;
- ``hint``: a regex every match also matches, for the multi-pattern engine (hyperscan),
  which must compile it; the precise regex then runs near each of its matches;
- ``prefilter``: for a rule whose keywords are common words (``token``), a regex run on
  the lower-cased text in their place by the keyword engine, so it stops only where a
  keyword is followed by an assignment;
- ``max_len``: no match is longer, so a window of that size around a hit holds it and
  chunks overlapping by the longest rule miss nothing;
- ``check``: a last test on the secret's text (entropy, placeholders).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from log_archiver.errors import ConfigError

RULE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
USER_MAX_LEN = 1024  # a user rule's matches longer than this may be missed at a chunk edge


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    keywords: tuple[bytes, ...]
    hint: bytes | None
    max_len: int
    check: Callable[[bytes], bool] | None = None
    lead: int | None = None  # how far before a keyword a match may start (None: max_len)
    prefilter: re.Pattern | None = None  # run on the lower-cased text instead of keywords

    @property
    def keyword_reach(self) -> int:
        return self.max_len if self.lead is None else self.lead

    def secret_span(self, match: re.Match) -> tuple[int, int]:
        if "secret" in self.pattern.groupindex and match.start("secret") >= 0:
            return match.span("secret")
        return match.span()


def entropy(value: bytes) -> float:
    """Shannon entropy in bits per byte."""
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


_PLACEHOLDER = re.compile(
    rb"^(?:\[REDACTED|\$\{|\$\(|\{\{|<|%\(|\*{3}|x{6}|X{6}|\.{3}|(?i:changeme|example|"
    rb"redacted|placeholder|dummy|your[_-]|null|none|true|false|undefined|secret|"
    rb"password|token))")
_HEX_RUN = re.compile(rb"^[0-9a-fA-F]+$")
_DIGITS_AND_PUNCT = re.compile(rb"^[0-9\W_]+$")


def high_entropy(value: bytes) -> bool:
    """A value that looks generated, not a word, a number, a path or a placeholder."""
    value = value.strip(b"\"'`")
    if len(value) < 8 or _PLACEHOLDER.match(value) or _DIGITS_AND_PUNCT.match(value):
        return False
    if value.startswith((b"/", b"./", b"http:", b"https:", b"file:")):
        return False
    if _HEX_RUN.match(value):  # a digest or id; hex secrets carry less per byte
        return len(value) >= 16 and entropy(value) >= 3.0
    return entropy(value) >= 3.2


def not_placeholder(value: bytes) -> bool:
    return not _PLACEHOLDER.match(value) and len(set(value)) > 2


def _rule(name, pattern, keywords, max_len, *, hint=None, check=None, lead=8,
          prefilter=None) -> Rule:
    compiled = re.compile(pattern)
    return Rule(name, compiled, tuple(k.lower() for k in keywords), hint, max_len, check, lead,
                re.compile(prefilter) if prefilter else None)


_END = rb"(?![A-Za-z0-9_])"  # precise regexes only; hints leave it out
_START = rb"(?<![A-Za-z0-9_])"
_B64 = rb"A-Za-z0-9+/"
_KEY_WORDS = (rb"pass(?:word|wd|phrase)?|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|"
              rb"auth[_.-]?key|private[_.-]?key|client[_.-]?secret|credentials?|"
              rb"auth[_.-]?token")
_ASSIGN = rb"(?:\\?[\"'])?[ \t]{0,4}(?::=|=>|[=:])[ \t]{0,4}(?:\\?[\"'`])?"
_VALUE = rb"[^\s\"'`,;\\\[\]{}()<>|&]{8,200}"

BUILTIN: tuple[Rule, ...] = (
    _rule("private-key",
          rb"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"
          rb"(?:[\s\S]{16,16000}?-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"
          rb"|(?:(?:\s|\\[rn])*[" + _B64 + rb"=]{16,}){1,300})",
          (b"PRIVATE KEY",), 16_400, lead=48,
          hint=rb"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY"),
    _rule("aws-access-key-id",
          _START + rb"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}" + _END,
          (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T"), 20,
          hint=rb"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{4}"),
    _rule("aws-secret-access-key",
          rb"(?i:aws[_.-]?(?:secret[_.-]?(?:access[_.-]?)?key|sk))" + _ASSIGN +
          rb"(?P<secret>[" + _B64 + rb"]{40})(?![" + _B64 + rb"=])",
          (b"aws",), 80, lead=0,
          hint=rb"(?i)aws[_.-]?(?:secret|sk)",
          check=high_entropy),
    _rule("github-token",
          _START + rb"(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,251}"
          rb"|github_pat_[A-Za-z0-9_]{22,244})" + _END,
          (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"), 255,
          hint=rb"(?:gh[pousr]_[A-Za-z0-9]{8}|github_pat_)"),
    _rule("gitlab-token",
          _START + rb"(?:glpat|gldt|glrt|glptt|glcbt|glsoat|glft|glimt|glagent|gloas)"
          rb"-[A-Za-z0-9_-]{20,64}" + _END,
          (b"glpat-", b"gldt-", b"glrt-", b"glptt-", b"glcbt-", b"glsoat-", b"glft-",
           b"glimt-", b"glagent-", b"gloas-"), 80,
          hint=rb"gl[a-z]{2,6}-[A-Za-z0-9_-]{8}"),
    _rule("slack-token",
          _START + rb"(?:xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-[0-9]-[A-Za-z0-9-]{10,250})" + _END,
          (b"xox", b"xapp-"), 260,
          hint=rb"(?:xox[abposre]|xapp-[0-9])-[A-Za-z0-9-]{10}"),
    _rule("slack-webhook",
          rb"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/+-]{20,200})",
          (b"hooks.slack.com",), 240, lead=0, hint=rb"hooks\.slack\.com/"),
    _rule("stripe-live-key",
          _START + rb"(?:sk|rk)_live_[A-Za-z0-9]{20,247}" + _END,
          (b"sk_live_", b"rk_live_"), 255, hint=rb"[sr]k_live_[A-Za-z0-9]{20}"),
    _rule("google-api-key",
          _START + rb"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])",
          (b"AIza",), 39, hint=rb"AIza[0-9A-Za-z_-]{8}"),
    _rule("anthropic-api-key",
          _START + rb"sk-ant-(?:api|admin|oat|ort)[0-9]{2}-[A-Za-z0-9_-]{32,200}"
          rb"(?![A-Za-z0-9_-])",
          (b"sk-ant-",), 220, hint=rb"sk-ant-[a-z]{3,5}[0-9]{2}-"),
    _rule("openai-api-key",
          _START + rb"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,250}"
          rb"|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})(?![A-Za-z0-9_-])",
          (b"sk-",), 270,
          hint=rb"sk-(?:proj-|svcacct-|admin-|[A-Za-z0-9]{20})"),
    _rule("npm-token",
          _START + rb"npm_[A-Za-z0-9]{36}" + _END, (b"npm_",), 40, hint=rb"npm_[A-Za-z0-9]{8}"),
    _rule("pypi-token",
          _START + rb"pypi-AgE[A-Za-z0-9_-]{50,1000}" + rb"(?![A-Za-z0-9_-])",
          (b"pypi-AgE",), 1010, hint=rb"pypi-AgE"),
    _rule("jwt",
          _START + rb"eyJ[A-Za-z0-9_-]{8,2000}\.eyJ[A-Za-z0-9_-]{8,4000}\.[A-Za-z0-9_-]{10,2000}"
          + rb"(?![A-Za-z0-9_-])",
          (b"eyJ",), 8010, hint=rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ"),
    _rule("url-password",
          rb"[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:@/\"'<>\\]{1,100}:"
          rb"(?P<secret>[^\s:@/\"'<>\\]{1,200})@[A-Za-z0-9\[]",
          (b"://",), 330, lead=24, hint=rb"://[^\s:@/\"'<>\\]{1,100}:[^\s:@/\"'<>\\]{1,200}@",
          check=not_placeholder),
    _rule("authorization-header",
          rb"(?i:authorization|proxy-authorization)(?:\\?[\"'])?[ \t]{0,4}[=:][ \t]{0,4}"
          rb"(?:\\?[\"'])?"
          rb"(?i:bearer|token|basic)[ \t]{1,4}(?P<secret>[A-Za-z0-9._~+/-]{16,1000}=*)",
          (b"authorization",), 1100, hint=rb"(?i)authorization(?:\\?[\"'])?[ \t]{0,4}[=:]",
          check=high_entropy),
    _rule("generic-secret",
          rb"(?:(?<![A-Za-z0-9])|(?<=[a-z0-9])(?=[A-Z]))(?i:" + _KEY_WORDS + rb")" + _ASSIGN
          + rb"(?P<secret>" + _VALUE + rb")",
          (b"pass", b"pwd", b"secret", b"token", b"api", b"access", b"auth", b"private",
           b"client", b"credential"), 270, lead=0,
          prefilter=rb"(?:" + _KEY_WORDS + rb")(?:\\?[\"'])?[ \t]{0,4}[=:]",
          hint=rb"(?i)(?:pass(?:word|wd|phrase)?|pwd|secret|token|key|credentials?)"
               rb"(?:\\?[\"'])?[ \t]{0,4}[=:]",
          check=high_entropy),
)


@dataclass(frozen=True)
class RuleSet:
    """The rules in force and the allowlist: secrets matching any allowlist pattern stay."""

    rules: tuple[Rule, ...]
    allowlist: tuple[re.Pattern, ...] = ()

    @property
    def overlap(self) -> int:
        """How far chunks overlap: the longest match plus context on both sides."""
        return max(rule.max_len for rule in self.rules) + 2 * CONTEXT

    def allowed(self, secret: bytes) -> bool:
        return any(pattern.search(secret) for pattern in self.allowlist)


CONTEXT = 256  # bytes a regex may look at around its match (lookarounds, anchors)


def user_rules(rules: list | None, allowlist: list | None) -> RuleSet:
    """The built-in rules plus the config's ``redaction.rules``, with its allowlist;
    a bad regex is a :class:`ConfigError` naming it."""
    extra = []
    for spec in rules or ():
        name = spec.get("name", "")
        if not RULE_NAME.match(name) or any(r.name == name for r in (*BUILTIN, *extra)):
            raise ConfigError(f"redaction rule name {name!r} is not a new lower-case name "
                              "(letters, digits and '-')",
                              "give each rule in redaction.rules a name of its own")
        pattern = _compile(spec.get("regex", ""), f"redaction rule {name!r}")
        keywords = tuple(k.encode().lower() for k in spec.get("keywords", ()))
        extra.append(Rule(name, pattern, keywords, None, USER_MAX_LEN))
    allowed = tuple(_compile(text, "redaction allowlist entry") for text in allowlist or ())
    return RuleSet((*BUILTIN, *extra), allowed)


def _compile(text: str, what: str) -> re.Pattern:
    try:
        pattern = re.compile(text.encode("utf-8"))
    except (re.error, UnicodeError) as error:
        raise ConfigError(f"{what} has a bad regular expression {text!r}: {error}",
                          "fix the regex in redaction (Python re syntax) in "
                          ".log-archiver.json") from None
    if pattern.search(b""):
        raise ConfigError(f"{what} regex {text!r} matches the empty string",
                          "write a regex that needs at least one character")
    return pattern
