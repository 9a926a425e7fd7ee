"""The archive comment posted on an issue (workflow spec, step 7).

The comment says where each log went, how big it is, how long each session ran, when
the archive was made and how to read or search it. It carries a hidden marker,
``<!-- log-archiver:archive issue=N -->``, so a later run finds the same comment and
edits it instead of posting a second one.

Session durations are read from the session log itself when it is planned for upload
and kept in its record (``duration_seconds``), so a re-archive after cleanup still
shows them; only the log's first and last :data:`PEEK_BYTES` are read. Two forms are
recognised, the first that matches wins:

1. Header lines, anywhere in those two windows: ``Started: <timestamp>`` and
   ``Ended: <timestamp>`` (also ``Start:``/``End:``, ``Finished:``, any case, optionally
   in bold or as a list item, e.g. ``**Started**: 2025-01-15T09:00:00Z``).
2. Otherwise, the first line of the file that begins with a timestamp and the last such
   line (a timestamp may be wrapped in ``[...]``), as in most timestamped logs.

A timestamp is ISO 8601: ``2025-01-15T09:00:00Z``, ``2025-01-15 09:00:00``, optional
fraction and ``+02:00``-style offset; without an offset it is taken as UTC. When neither
form is found, the duration is simply left out.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from log_archiver.model.states import STORED as STORED_STATES

MARKER = "<!-- log-archiver:archive issue={issue} -->"
PEEK_BYTES = 4096
MAX_LIST_CHARS = 55_000  # GitHub refuses comment bodies over 65,536 characters

GROUPS = (
    ("session", "Sessions"),
    ("build", "Build Logs"),
    ("deployment", "Deployment Logs"),
    ("debug", "Debug Logs"),
)

_MARKER_RE = re.compile(r"<!--\s*log-archiver:archive\s+issue=(\d+)\s*-->")
_TS = (r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
       r"(?:Z|[+-]\d{2}:?\d{2})?)")
_START_RE = re.compile(r"^[\s>*_#-]*(?:started|start)(?:[*_]*)\s*(?:at)?\s*:[*_]*\s*`?" + _TS,
                       re.IGNORECASE | re.MULTILINE)
_END_RE = re.compile(r"^[\s>*_#-]*(?:ended|end|finished)(?:[*_]*)\s*(?:at)?\s*:[*_]*\s*`?" + _TS,
                     re.IGNORECASE | re.MULTILINE)
_LEADING_TS_RE = re.compile(r"^\s*\[?" + _TS, re.MULTILINE)


def marker(issue: int) -> str:
    """The hidden marker that identifies the archive comment of ``issue``."""
    return MARKER.format(issue=int(issue))


def find_marker(body: str | None, issue: int) -> bool:
    """True when ``body`` carries the archive marker of exactly this issue (12 is not 123)."""
    return any(int(found) == int(issue) for found in _MARKER_RE.findall(body or ""))


def human_size(num_bytes: int) -> str:
    """Decimal units as in the spec's example: 45600 -> ``45.6 KB``."""
    value = float(num_bytes)
    if value < 1000:
        return f"{int(value)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.95 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def human_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    hours, rest = divmod(seconds // 60, 60)
    if hours == 0:
        return f"{rest}m"
    return f"{hours}h {rest}m" if rest else f"{hours}h"


def _parse_ts(text: str) -> datetime | None:
    text = text.replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _peek(path: Path) -> tuple[str, str] | None:
    """The first and the last :data:`PEEK_BYTES` of a file as text, or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(PEEK_BYTES)
            handle.seek(0, 2)
            size = handle.tell()
            if size <= PEEK_BYTES:
                tail = head
            else:
                handle.seek(max(size - PEEK_BYTES, PEEK_BYTES))
                tail = handle.read()
    except OSError:
        return None
    tail_text = tail.decode("utf-8", errors="replace")
    if size > PEEK_BYTES and "\n" in tail_text:
        tail_text = tail_text.split("\n", 1)[1]  # drop a line cut in the middle
    return head.decode("utf-8", errors="replace"), tail_text


def session_duration(path: Path) -> timedelta | None:
    """How long a session ran, from its own start and end stamps (see module notes)."""
    peeked = _peek(path)
    if peeked is None:
        return None
    head, tail = peeked
    start_hit = _START_RE.search(head) or _START_RE.search(tail)
    end_hits = _END_RE.findall(tail) or _END_RE.findall(head)
    if start_hit and end_hits:
        start, end = _parse_ts(start_hit.group(1)), _parse_ts(end_hits[-1])
    else:
        firsts, lasts = _LEADING_TS_RE.findall(head), _LEADING_TS_RE.findall(tail)
        if not firsts or not lasts:
            return None
        start, end = _parse_ts(firsts[0]), _parse_ts(lasts[-1])
    if start is None or end is None or end <= start:
        return None
    return end - start


def _session_path(logs_dir: Path | None, local_path: str | None) -> Path | None:
    if logs_dir is None or not local_path:
        return None
    base = Path(logs_dir).resolve()
    candidate = (base / local_path).resolve()
    if candidate != base and base not in candidate.parents:
        return None  # never read outside the logs dir
    return candidate


def _link_target(log: dict) -> str:
    from log_archiver.util.urls import strip_userinfo

    target = log.get("public_url") or log.get("cloud_url") or log.get("remote_path") or ""
    return strip_userinfo(target) if isinstance(target, str) else ""


def _visible(text: str) -> str:
    """``text`` on one line: control, format and line-separator characters (newlines,
    bidi overrides) are shown as escapes (``\\n``, ``\\u202e``) instead."""
    out = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch)
                       or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"))
        else:
            out.append(ch)
    return "".join(out)


def _escape_text(text: str) -> str:
    """A file name as plain link text: no markdown, no HTML, no mention, one line."""
    escaped = re.sub(r"([\\`*_\[\]<>|~&])", r"\\\1", _visible(text))
    return escaped.replace("@", "@\u200b")  # GitHub does not link "@\u200bname"


def _code(text: str) -> str:
    """``text`` as a code span, whatever backticks it holds (nothing in it is markdown)."""
    text = _visible(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _url(target: str) -> str:
    """A link destination: characters that would end it or the line are percent-encoded."""
    target = "".join(ch if ch.isprintable() and ch not in "<>\\`" else quote(ch, safe="")
                     for ch in target)
    return f"<{target}>" if re.search(r"[\s()]", target) else target


def _log_line(log: dict, logs_dir: Path | None) -> str:
    name = str(log.get("filename") or "log")
    target = _link_target(log)
    if target.startswith(("https://", "http://")):
        item = f"[{_escape_text(name)}]({_url(target)})"
    else:  # GitHub strips s3://, r2:// and file:// links: show the location instead
        item = f"{_code(name)}: {_code(target) if target else 'no location recorded'}"
    details = [human_size(int(log.get("size_bytes") or 0))]
    if log.get("type") == "session":
        if log.get("duration_seconds") is not None:
            duration = timedelta(seconds=log["duration_seconds"])
        else:  # recorded before durations were kept: read the log if it is still there
            path = _session_path(logs_dir, log.get("local_path"))
            duration = session_duration(path) if path is not None else None
        if duration is not None:
            details.append(human_duration(duration))
    status = log.get("upload_status")
    if status and status not in STORED_STATES:
        details.append(f"upload {_escape_text(str(status))}")
    return f"- {item} ({', '.join(details)})"


def _archived_at(entry: dict, now: datetime | None) -> datetime:
    parsed = _parse_ts(entry.get("archived_at") or "") if entry.get("archived_at") else None
    if parsed is None:
        parsed = now or datetime.now(UTC)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def render_comment(entry: dict, *, logs_dir: Path | None = None, now=None) -> str:
    """The markdown body of the archive comment for one index entry.

    ``now`` (a datetime) is used for the archive time only when the entry has no
    ``archived_at``. ``logs_dir`` lets session durations be read from the logs still on
    disk; without it durations are left out.
    """
    issue = int(entry["issue_number"])
    logs = list(entry.get("logs") or [])
    lines = [marker(issue), "📦 **Logs archived**", ""]
    if not logs:
        lines += ["No logs were found for this issue, so there was nothing to upload. "
                  "The archive index records that it was checked.", ""]
    else:
        lines += ["The session and operational logs of this issue were archived to durable "
                  "storage.", ""]
        budget = MAX_LIST_CHARS
        for kind, title in GROUPS:
            group = sorted((log for log in logs if log.get("type") == kind),
                           key=lambda log: (log.get("created") or "", log.get("filename") or ""))
            if not group:
                continue
            lines.append(f"**{title}**:")
            for shown, log in enumerate(group):
                line = _log_line(log, logs_dir)
                budget -= len(line) + 1
                if budget < 0:
                    lines.append(f"- … and {len(group) - shown} more (`/log-archiver:read {issue}` "
                                 "lists them all)")
                    break
                lines.append(line)
            lines.append("")
        stored = sum(int(log.get("size_bytes") or 0) for log in logs)
        original = sum(int(log.get("original_size_bytes") or 0) for log in logs)
        count = f"{len(logs)} log" + ("" if len(logs) == 1 else "s")
        total = f"**Total**: {count}, {human_size(stored)} stored"
        if original > stored:
            total += f" ({human_size(original)} before compression)"
        lines += [total, ""]
        missing = [log for log in logs if log.get("upload_status") not in STORED_STATES]
        if missing:
            lines += [f"⚠️ {len(missing)} of {len(logs)} logs are not in storage yet; "
                      f"they stay on disk until `log-archiver archive {issue} --retry` "
                      "uploads them.", ""]
    moment = _archived_at(entry, now)
    lines += [f"Archived: {moment.strftime('%Y-%m-%d %H:%M')} UTC", ""]
    lines += ["The repository's archive index records where each log is stored; from any "
              "clone with access to the store:",
              f"- `log-archiver read {issue}` (or `/log-archiver:read {issue}`) shows this "
              f"issue's record; `log-archiver read {issue} FILE [--lines A:B]` prints a log, "
              "checked against its checksum",
              f"- `log-archiver restore {issue}` writes the logs back, verified",
              '- `log-archiver search "<query>"` (or `/log-archiver:search`) finds matching '
              "lines inside the archived logs"]
    return "\n".join(lines) + "\n"
