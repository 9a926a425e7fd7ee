"""The archive comment: groups, links, sizes, durations, totals, marker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from log_archiver.integrations.comment import (
    MARKER,
    PEEK_BYTES,
    find_marker,
    human_duration,
    human_size,
    marker,
    render_comment,
    session_duration,
)
from log_archiver.model.records import recompute_entry


def make_log(issue: int, name: str, *, kind: str = "session", folder: str = "sessions",
             size: int = 45600, original: int | None = None, status: str = "verified",
             public: bool = True, cloud: str | None = "s3", created="2025-01-15T09:00:00Z"):
    key = f"archive/logs/2025/01/{issue}/{name}"
    return {
        "type": kind, "filename": name, "local_path": f"{folder}/{name}", "stored_path":
        f"{folder}/{name}", "remote_path": key,
        "cloud_url": f"s3://bucket/{key}" if cloud == "s3" else cloud,
        "public_url": f"https://storage.example.com/{key}" if public else None,
        "size_bytes": size, "original_size_bytes": original or size,
        "compressed": bool(original and original > size),
        "compression": "gzip" if original and original > size else None,
        "checksum": "sha256:" + "a" * 64, "original_checksum": "sha256:" + "b" * 64,
        "created": created, "archived": "2025-01-15T14:00:00Z", "upload_status": status,
        "upload_timestamp": "2025-01-15T14:00:00Z", "upload_attempt": 1, "last_error": None,
    }


def make_entry(issue: int, logs: list[dict], archived_at="2025-01-15T14:00:00Z") -> dict:
    entry = {
        "issue_number": issue, "issue_url": f"https://github.com/o/r/issues/{issue}",
        "issue_title": "Implement user authentication", "archived_at": archived_at,
        "archive_reason": "issue_closed", "logs": logs, "total_size_bytes": 0,
        "total_original_size_bytes": 0, "total_logs": 0, "compression_ratio": None,
        "partial_archive": False, "upload_complete": True, "retry_count": 0,
        "storage_url": "s3://bucket", "partial_reason": None,
    }
    return recompute_entry(entry)


def spec_entry() -> dict:
    return make_entry(123, [
        make_log(123, "session-123-2025-01-16.md", size=32100, created="2025-01-16T09:00:00Z"),
        make_log(123, "session-123-2025-01-15.md.gz", size=45600, original=128000),
        make_log(123, "123-build.log.gz", kind="build", folder="builds", size=45000),
    ])


def test_groups_links_sizes_total_time_and_commands():
    body = render_comment(spec_entry())
    lines = body.splitlines()
    assert lines[0] == "<!-- log-archiver:archive issue=123 -->"
    assert lines.index("**Sessions**:") < lines.index("**Build Logs**:")
    assert "**Deployment Logs**:" not in body and "**Debug Logs**:" not in body
    sessions = lines[lines.index("**Sessions**:") + 1: lines.index("**Sessions**:") + 3]
    assert sessions == [  # oldest session first, public links, stored sizes
        "- [session-123-2025-01-15.md.gz](https://storage.example.com/archive/logs/2025/01/123/"
        "session-123-2025-01-15.md.gz) (45.6 KB)",
        "- [session-123-2025-01-16.md](https://storage.example.com/archive/logs/2025/01/123/"
        "session-123-2025-01-16.md) (32.1 KB)",
    ]
    assert "**Total**: 3 logs, 122.7 KB stored (205.1 KB before compression)" in lines
    assert "Archived: 2025-01-15 14:00 UTC" in lines
    # the commands the comment names are the ones that read the logs back
    assert ("- `log-archiver read 123` (or `/log-archiver:read 123`) shows this issue's "
            "record; `log-archiver read 123 FILE [--lines A:B]` prints a log, checked against "
            "its checksum") in lines
    assert "- `log-archiver restore 123` writes the logs back, verified" in lines
    assert ('- `log-archiver search "<query>"` (or `/log-archiver:search`) finds matching '
            "lines inside the archived logs") in lines
    assert "searchable" not in body
    assert "⚠️" not in body


def test_link_falls_back_to_cloud_url_then_remote_path():
    web = make_log(7, "7-deploy.log", kind="deployment", folder="deployments", public=False,
                   cloud="https://bucket.example.com/x/7-deploy.log")
    s3 = make_log(7, "7-debug.log", kind="debug", folder="debug", public=False)
    bare = make_log(7, "7-build.log", kind="build", folder="builds", public=False, cloud=None)
    body = render_comment(make_entry(7, [web, s3, bare]))
    assert "- [7-deploy.log](https://bucket.example.com/x/7-deploy.log) (45.6 KB)" in body
    # GitHub drops s3:// links, so the location is shown as code instead of a dead link
    assert "- `7-debug.log`: `s3://bucket/archive/logs/2025/01/7/7-debug.log` (45.6 KB)" in body
    assert "- `7-build.log`: `archive/logs/2025/01/7/7-build.log` (45.6 KB)" in body


def test_awkward_names_and_urls_stay_valid_markdown():
    log = make_log(8, "8-[odd]_name.log", kind="build", folder="builds", public=False,
                   cloud="https://h.example.com/a b (1).log")
    body = render_comment(make_entry(8, [log]))
    assert r"[8-\[odd\]\_name.log](<https://h.example.com/a b (1).log>)" in body


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (45600, "45.6 KB"),
    (999_960, "1.0 MB"), (1_500_000, "1.5 MB"), (3_200_000_000, "3.2 GB"),
])
def test_human_size(size, text):
    assert human_size(size) == text


def test_human_duration():
    assert human_duration(datetime(2025, 1, 1, 11, 30) - datetime(2025, 1, 1, 9)) == "2h 30m"
    assert human_duration(datetime(2025, 1, 1, 9, 45) - datetime(2025, 1, 1, 9)) == "45m"
    assert human_duration(datetime(2025, 1, 1, 11) - datetime(2025, 1, 1, 9)) == "2h"
    assert human_duration(datetime(2025, 1, 1, 9, 0, 40) - datetime(2025, 1, 1, 9)) == "40s"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_duration_from_started_and_ended_headers(tmp_path):
    write(tmp_path / "sessions" / "session-123-2025-01-15.md.gz",
          "# Session 123\n\n**Started**: 2025-01-15T09:00:00Z\n\nwork...\n\n"
          "- Ended: 2025-01-15T11:30:00Z\n")
    write(tmp_path / "sessions" / "session-123-2025-01-16.md",
          "Started: 2025-01-16 09:00:00+01:00\nEnded: 2025-01-16T09:15:00Z\n")
    body = render_comment(spec_entry(), logs_dir=tmp_path)
    assert "session-123-2025-01-15.md.gz) (45.6 KB, 2h 30m)" in body
    assert "session-123-2025-01-16.md) (32.1 KB, 1h 15m)" in body  # offset honoured
    assert "123-build.log.gz) (45.0 KB)" in body  # never a duration for builds


def test_duration_from_first_and_last_timestamped_lines_reads_only_the_ends(tmp_path):
    filler = "x" * 100 + "\n"
    text = ("[2025-01-15 09:00:00] session start\n"
            + filler * (PEEK_BYTES // len(filler) + 5)
            + "Ended: 2030-01-01T00:00:00Z\n"  # in the unread middle: must not count
            + filler * (PEEK_BYTES // len(filler) + 5)
            + "2025-01-15T10:15:00Z agent: done\n")
    path = write(tmp_path / "s.log", text)
    assert session_duration(path).total_seconds() == 75 * 60


def test_no_duration_when_unstated_missing_or_outside_logs_dir(tmp_path):
    assert session_duration(write(tmp_path / "plain.md", "no stamps here\n")) is None
    assert session_duration(tmp_path / "gone.md") is None
    assert session_duration(write(tmp_path / "back.md",
                                  "Started: 2025-01-15T10:00:00Z\nEnded: 2025-01-15T09:00:00Z\n")
                            ) is None
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    write(tmp_path / "secret.md", "Started: 2025-01-15T09:00:00Z\nEnded: 2025-01-15T10:00:00Z\n")
    log = make_log(5, "secret.md")
    log["local_path"] = "../secret.md"
    body = render_comment(make_entry(5, [log]), logs_dir=logs_dir)
    assert "(45.6 KB)" in body and "1h" not in body


def test_no_logs_entry_says_so_and_keeps_marker():
    body = render_comment(make_entry(42, []))
    assert find_marker(body, 42)
    assert "No logs were found" in body
    assert "**Total**" not in body and "**Sessions**" not in body
    assert "Archived: 2025-01-15 14:00 UTC" in body


def test_partial_archive_names_the_missing_upload_and_the_retry():
    logs = [make_log(9, "9-build.log", kind="build", folder="builds"),
            make_log(9, "9-debug.log", kind="debug", folder="debug", status="failed")]
    body = render_comment(make_entry(9, logs))
    assert "9-debug.log](" in body and "(45.6 KB, upload failed)" in body
    assert "1 of 2 logs are not in storage yet" in body
    assert "`log-archiver archive 9 --retry`" in body


def test_archive_time_falls_back_to_now_and_converts_to_utc():
    entry = make_entry(3, [])
    entry["archived_at"] = None
    now = datetime(2025, 2, 3, 4, 5, tzinfo=UTC)
    assert "Archived: 2025-02-03 04:05 UTC" in render_comment(entry, now=now)


def test_huge_entries_stay_under_githubs_comment_limit():
    logs = [make_log(77, f"77-{n:05d}-" + "y" * 60 + ".log", kind="debug", folder="debug")
            for n in range(3000)]
    body = render_comment(make_entry(77, logs))
    assert len(body) < 65536
    assert "more (`/log-archiver:read 77` lists them all)" in body
    assert "**Total**: 3000 logs" in body


def test_marker_matches_only_its_own_issue():
    assert marker(12) == MARKER.format(issue=12) == "<!-- log-archiver:archive issue=12 -->"
    body = "text\n" + marker(123) + "\nmore"
    assert find_marker(body, 123)
    assert not find_marker(body, 12)
    assert not find_marker(body, 1234)
    assert find_marker("<!--log-archiver:archive  issue=5-->", 5)
    assert not find_marker(None, 5)


def test_durations_survive_cleanup_in_the_index(workspace, run_cli):
    from log_archiver.integrations.comment import human_duration, session_duration
    from log_archiver.util.samples import write_sample_logs

    session = write_sample_logs(workspace / "logs", 77)[0]
    expected = human_duration(session_duration(session))
    first = run_cli("archive", "77", "--no-commit")
    assert first.exit_code == 0 and expected in first.json["comment"]["body"]
    index = json.loads((workspace / "logs" / ".archive-index.json").read_text())
    records = {log["local_path"]: log for log in index["archives"][0]["logs"]}
    assert records["sessions/session-77-2025-01-15.md"]["duration_seconds"] > 0
    assert records["builds/77-build.log"]["duration_seconds"] is None
    assert not session.exists()  # cleaned: only the index remembers the duration now
    (workspace / "logs" / "debug").mkdir()
    (workspace / "logs" / "debug" / "77-late.log").write_text("found later\n")
    again = run_cli("archive", "77", "--force", "--no-commit")
    assert again.exit_code == 0 and expected in again.json["comment"]["body"]


HOSTILE = ["a\n# Heading", "@octocat", "<img src=x>", "x`y``z", "`edge`", "[x](http://e)",
           "**bold** _it_ ~~s~~", "a\r\n\n- item", "cc @org/team #1 &lt;b&gt;", "\u202egol.exe"]


def rendered(body: str):
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return md.parse(body)


def inline_tokens(tokens):
    for token in tokens:
        yield token
        yield from token.children or []


@pytest.mark.parametrize("link", ["public", "s3"])
def test_hostile_file_names_render_as_plain_names(link):
    def body_for(names):
        return render_comment(make_entry(60, [
            make_log(60, name, kind="build", folder="builds", public=link == "public",
                     cloud="s3") for name in names]))

    body = body_for(HOSTILE)
    tokens = list(inline_tokens(rendered(body)))
    plain = list(inline_tokens(rendered(body_for([f"60-{n}.log" for n in range(len(HOSTILE))]))))

    # the same markdown structure as with ordinary names: no heading, list item, emphasis,
    # image, link or HTML came from a name
    assert [t.type for t in tokens] == [t.type for t in plain]
    kinds = {t.type for t in tokens}
    assert "heading_open" not in kinds and "image" not in kinds and "html_inline" not in kinds
    [html] = [t for t in tokens if t.type == "html_block"]  # our hidden marker, nothing else
    assert html.content.strip() == marker(60)
    links = [t.attrGet("href") for t in tokens if t.type == "link_open"]
    if link == "public":  # one link per log, to its own object
        assert len(links) == len(HOSTILE)
        for href in links:
            assert href.startswith("https://storage.example.com/archive/logs/2025/01/60/")
            assert not set(href) & set("\n\r<>` \u202e"), href
    else:
        assert links == []
    # a mention is linked in text, not in code or a link's address
    text = "".join(t.content for t in tokens if t.type == "text")
    assert "@octocat" not in text and "@org" not in text
    assert "\u202e" not in body
    shown = "".join(t.content for t in tokens if t.type in ("text", "code_inline"))
    for name in ("<img src=x>", "[x](http://e)", "x`y``z", "`edge`", "**bold** _it_ ~~s~~"):
        assert name in shown.replace("\u200b", ""), name  # the name itself, as text
    assert "a\\n# Heading" in shown and "\\u202egol.exe" in shown  # newlines made visible
