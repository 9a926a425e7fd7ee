"""The index under hostile conditions: symlinked, hand-broken in ways Python's json lets
through, restored by git while an archive runs."""

from __future__ import annotations

import json
import os
import threading

import pytest

from conftest import run_script
from gitutil import git, init_repo
from log_archiver.index.merge import merge_index_files
from log_archiver.util.samples import write_sample_logs

INDEX = "logs/.archive-index.json"


@pytest.fixture
def archived(workspace, run_cli):
    """The index after archiving issues 30 and 7 (the working directory's logs dir)."""
    for issue in (30, 7):
        write_sample_logs(workspace / "logs", issue, seed=issue)
        assert run_cli("archive", issue, "--no-commit", "-q").exit_code == 0
    return workspace / INDEX


# -- 11: a symlinked index is written through the link ---------------------------------

def test_a_symlinked_index_is_written_through_the_link(workspace, run_cli, tmp_path):
    shared = tmp_path / "shared" / "team-index.json"
    shared.parent.mkdir()
    link = workspace / INDEX
    link.symlink_to(shared)
    write_sample_logs(workspace / "logs", 30)
    assert run_cli("archive", "30", "--no-commit", "-q").exit_code == 0
    other = tmp_path / "other-clone" / "logs"  # a second logs dir sharing the same index
    other.mkdir(parents=True)
    (other / ".archive-index.json").symlink_to(shared)
    write_sample_logs(other, 7)
    assert run_cli("archive", "7", "--no-commit", "-q", "--logs-dir", other).exit_code == 0
    assert link.is_symlink() and (other / ".archive-index.json").is_symlink()
    assert [e["issue_number"] for e in json.loads(shared.read_text())["archives"]] == [30, 7]
    assert (shared.parent / "team-index.json.valid").exists()  # keyed to the file, not a link
    assert not [p.name for p in (workspace / "logs").iterdir()
                if p.name.startswith(".archive-index.json.")]
    result = run_cli("validate-index", link)
    assert result.exit_code == 0 and result.json["violations"] == []
    shared.write_text(shared.read_text().replace('"total_logs": 4', '"total_logs": 5', 1))
    broken = run_cli("validate-index", link)
    assert broken.exit_code == 1
    assert [v["rule"] for v in broken.json["violations"]] == ["totals"]
    assert run_cli("archive", "30", "--no-commit").json["errors"][0]["type"] == "index_corrupt"


# -- 12: one parser and one set of rules ------------------------------------------------

def _first_ratio(raw: bytes, token: bytes) -> bytes:
    at = raw.index(b'"compression_ratio": ') + len(b'"compression_ratio": ')
    return raw[:at] + token + raw[raw.index(b",", at):]


def _title(token: bytes):
    return lambda raw: raw.replace(b'"issue_title": null', b'"issue_title": ' + token, 1)


HOSTILE = {
    "bom": lambda raw: b"\xef\xbb\xbf" + raw,
    "nan": lambda raw: _first_ratio(raw, b"NaN"),
    "infinity": lambda raw: _first_ratio(raw, b"Infinity"),
    "duplicate_key": lambda raw: raw.replace(
        b'"archive_reason": "manual",', b'"archive_reason": "retention",\n      '
        b'"archive_reason": "manual",', 1),
    "escaped_lone_surrogate": _title(b'"\\ud800"'),
    "encoded_lone_surrogate": _title(b'"\xed\xa0\x80"'),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_reader_refuses_what_python_json_lets_through(archived, workspace, run_cli,
                                                           tmp_path, case):
    raw = HOSTILE[case](archived.read_bytes())
    assert raw != archived.read_bytes()
    archived.write_bytes(raw)
    checked = run_cli("validate-index", archived)
    assert checked.exit_code == 1, checked.stdout
    [problem] = checked.json["violations"]
    assert (problem["path"], problem["rule"]) == ("$", "json")
    write_sample_logs(workspace / "logs", 99)
    result = run_cli("archive", "99", "--no-commit")
    assert result.exit_code == 1, result.stdout
    [error] = result.json["errors"]
    assert error["type"] == "index_corrupt" and "not valid JSON" in error["message"]
    assert problem["message"] in error["message"]  # the same verdict, in the same words
    assert archived.read_bytes() == raw
    assert (workspace / "logs/sessions/session-99-2025-01-15.md").exists()
    base = tmp_path / "base"
    base.write_bytes(b"")
    theirs = tmp_path / "theirs"
    theirs.write_text('{"schema_version": 1, "last_updated": "2025-01-01T00:00:00Z", '
                      '"archives": []}')
    report: list = []
    assert merge_index_files(base, archived, theirs, report=report) is False
    assert problem["message"] in report[0].reason and archived.read_bytes() == raw


def _restore_at(place, root, kind: str, nth: int):
    """Restore the committed index (git checkout) when the ``nth`` ``kind`` request of
    issue 123 reaches the store."""
    seen, done = [0], threading.Event()

    def hook(number, request):
        if request.startswith(f"{kind} ") and "/123/" in request and not done.is_set():
            seen[0] += 1
            if seen[0] == nth:
                git(root, "checkout", "--", INDEX)
                done.set()

    place.proxy.before_request = hook
    return done


@pytest.fixture
def own_bucket(s3_workspace):
    """The workspace's bucket, removed afterwards: the test server has room for a limited
    number of buckets, and the suite's later tests need theirs."""
    yield s3_workspace
    client = s3_workspace.server.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_workspace.bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=s3_workspace.bucket, Key=item["Key"])
    client.delete_bucket(Bucket=s3_workspace.bucket)


@pytest.mark.parametrize("moment, kind, nth", [
    ("upload", "PUT", 1),      # the first object being stored
    ("cleanup", "HEAD", 9),    # 4 checks before the puts, 4 verifications, then cleanup's
])
def test_restoring_the_index_while_it_archives(own_bucket, isolated_git, moment, kind, nth):
    place, root = own_bucket, own_bucket.root
    init_repo(root)
    write_sample_logs(root / "logs", 5)
    env = dict(os.environ)
    assert run_script("log-archiver", "archive", "5", "-q", cwd=root, env=env).exit_code == 0
    committed = git(root, "show", f"HEAD:{INDEX}")
    files = {f: f.read_bytes() for f in write_sample_logs(root / "logs", 123)}
    restored = _restore_at(place, root, kind, nth)
    result = run_script("log-archiver", "archive", "123", cwd=root, env=env)
    assert restored.is_set()
    assert result.exit_code == 1, result.stdout
    [error] = result.json["errors"]
    assert error["type"] == "not_archived" and "restored" in error["message"]
    assert "log-archiver archive 123" in error["hint"]
    assert (root / INDEX).read_text() == committed  # the restore stands
    for path, data in files.items():  # nothing deleted: the index no longer records it
        assert path.read_bytes() == data
    place.proxy.before_request = None
    rerun = run_script("log-archiver", "archive", "123", "-q", cwd=root, env=env)
    assert rerun.exit_code == 0, rerun.stdout
    entry = json.loads((root / INDEX).read_text())["archives"][0]
    assert entry["issue_number"] == 123 and entry["total_logs"] == len(files)
    assert {log["upload_status"] for log in entry["logs"]} == {"cleaned"}
    assert not any(path.exists() for path in files)
    assert len([key for key in place.objects() if "/123/" in key]) == len(files)


# -- 17: hand-fed plans and metadata ----------------------------------------------------

HOSTILE_NUMBERS = [b"1e400", b"123.7", b"5.0", b"5e0", b"-5", b"0", b"true", b"false", b"null",
                   b"NaN", b"Infinity", b"-Infinity", b"123456789012345678901234567890",
                   b"18446744073709551616", b"2147483648"]
HOSTILE_OTHERS = [b'"abc"', b'"5abc"', b'""', b'"5.0"', b'"\\ud800"', b"[]", b"{}",
                  b'{"n": 5}', b"[5]", b'"5; rm -rf /"', b'"../5"']


def _one_usage_error(result) -> dict:
    assert result.exit_code == 2, result.stdout
    document = json.loads(result.stdout)  # exactly one JSON object, nothing around it
    [error] = document["errors"]
    assert document["status"] == "error" and error["type"] == "usage"
    return error


@pytest.fixture
def plan(workspace, run_cli):
    write_sample_logs(workspace / "logs", 5)
    result = run_cli("prepare-upload", "5")
    assert result.exit_code == 0, result.stdout
    return result.stdout


@pytest.mark.parametrize("token", HOSTILE_NUMBERS + HOSTILE_OTHERS,
                         ids=lambda token: token.decode())
def test_a_plan_with_a_hostile_issue_number_is_a_usage_error(workspace, run_cli, plan, token):
    index = workspace / INDEX
    before = index.read_bytes()
    text = plan.encode().replace(b'"issue_number": 5', b'"issue_number": ' + token, 1)
    assert text != plan.encode()
    (workspace / "plan.json").write_bytes(text)
    error = _one_usage_error(run_cli("file-manager", "upload", workspace / "plan.json"))
    if token in HOSTILE_NUMBERS:
        try:
            shown = json.dumps(json.loads(token), allow_nan=False)
        except ValueError:  # NaN, Infinity, out of range: named as written
            shown = token.decode()
        assert shown in error["message"], error["message"]
    assert "prepare-upload" in error["hint"]
    assert index.read_bytes() == before
    assert not (workspace.parent / "store").exists()


@pytest.mark.parametrize("files", [b"5", b"null", b'"all"', b"[5]", b'[{"local_path": {}}]',
                                   b'[{"local_path": ["a"]}]', b"[{}]", b'{"a": 1}'])
def test_a_plan_with_hostile_files_is_a_usage_error(workspace, run_cli, plan, files):
    doc = json.loads(plan)
    text = json.dumps({**doc, "files": "FILES"}).encode().replace(b'"FILES"', files)
    (workspace / "plan.json").write_bytes(text)
    error = _one_usage_error(run_cli("file-manager", "upload", workspace / "plan.json"))
    assert "files" in error["message"]


METADATA_CASES = [
    ("cloud_url", b'"STORE/"'), ("cloud_url", b'"STORE/archive/logs/"'),
    ("cloud_url", b'"STORE"'), ("cloud_url", b"1e400"), ("cloud_url", b"{}"),
    ("cloud_url", b"true"), ("local_path", b"{}"), ("local_path", b"[]"),
    ("local_path", b"5"), ("local_path", b'""'), ("local_path", b'"/"'),
    ("size_bytes", b"1e400"), ("size_bytes", b"NaN"), ("size_bytes", b"12.5"),
    ("size_bytes", b"-1"), ("size_bytes", b"123456789012345678901234567890"),
    ("size_bytes", b"true"), ("compressed", b'"yes"'), ("compressed", b"1"),
    ("checksum", b"5"), ("upload_status", b"{}"), ("upload_status", b"[]"),
    ("remote_path", b"{}"), ("remote_path", b'"archive/logs/"'), ("stored_path", b"[]"),
    ("stored_path", b'"/"'), ("created", b"Infinity"), ("type", b"null"),
]


@pytest.mark.parametrize("field, token", METADATA_CASES,
                         ids=[f"{f}={t.decode()}" for f, t in METADATA_CASES])
@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "plain"])
def test_hostile_metadata_is_a_usage_error(workspace, run_cli, plan, field, token, compressed):
    index = workspace / INDEX
    before = index.read_bytes()
    records = json.loads(plan)["files"]
    record = next(r for r in records if r["compressed"] is compressed)
    record["upload_status"] = "uploaded"
    if field == "cloud_url":  # the spec's shape: the URL gives the key and the stored name
        del record["remote_path"], record["stored_path"]
    record[field] = "HOSTILE"
    store = f"file://{workspace.parent / 'store'}"
    text = json.dumps(records).encode().replace(
        b'"HOSTILE"', token.replace(b"STORE", store.encode()))
    (workspace / "meta.json").write_bytes(text)
    error = _one_usage_error(run_cli("update-index", "5", workspace / "meta.json"))
    named = [field, "JSON"] + (["remote_path"] if field == "cloud_url" else [])
    assert any(word in error["message"] for word in named), error["message"]
    assert index.read_bytes() == before


@pytest.mark.parametrize("token", HOSTILE_NUMBERS + HOSTILE_OTHERS,
                         ids=lambda token: token.decode())
def test_metadata_with_a_hostile_issue_number_is_a_usage_error(workspace, run_cli, plan, token):
    index = workspace / INDEX
    before = index.read_bytes()
    text = b'{"issue_number": ' + token + b', "logs": ' + json.dumps(
        json.loads(plan)["files"]).encode() + b"}"
    (workspace / "meta.json").write_bytes(text)
    _one_usage_error(run_cli("update-index", "5", workspace / "meta.json"))
    assert index.read_bytes() == before


def test_metadata_breaking_a_rule_of_the_index_is_a_usage_error(workspace, run_cli, plan):
    """update-index checks the rules validate-index checks: objects in their issue's folder."""
    (workspace / "meta.json").write_text(json.dumps(json.loads(plan)["files"]))
    error = _one_usage_error(run_cli("update-index", "6", workspace / "meta.json"))
    assert "remote_path" in error["message"] and "not of issue 6" in error["message"]
    assert json.loads((workspace / INDEX).read_text())["archives"][0]["issue_number"] == 5


@pytest.mark.parametrize("command", ["file-manager", "update-index"])
@pytest.mark.parametrize("raw", [b'{"issue_number": 5, "files": [{"local_path": "\xff"}]}',
                                 b"\xef\xbb\xbf" + b'{"issue_number": 5, "files": []}',
                                 b'{"issue_number": 5, "issue_number": 6, "files": []}'],
                         ids=["latin-1", "bom", "duplicate"])
def test_input_that_is_not_strict_json_is_a_usage_error(workspace, run_cli, plan, command,
                                                        raw):
    before = (workspace / INDEX).read_bytes()
    (workspace / "input.json").write_bytes(raw)
    args = (["file-manager", "upload"] if command == "file-manager" else ["update-index", "5"])
    error = _one_usage_error(run_cli(*args, workspace / "input.json"))
    assert "not valid JSON" in error["message"]
    assert (workspace / INDEX).read_bytes() == before
