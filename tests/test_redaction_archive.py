"""Redaction in the archive: no secret reaches the store, the index, the comment or the
output; logs without one are stored exactly as before; cleanup still proves the local
file is the one stored before deleting it."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from log_archiver.archive.cleanup import cleanup_local
from log_archiver.archive.collect import collect
from log_archiver.archive.compress import BLOCK_SIZE, gzip_many
from log_archiver.archive.prepare import changed_since_archived, prepare
from log_archiver.archive.upload import upload_records
from log_archiver.config import load_config
from log_archiver.repository import Repository
from log_archiver.util.samples import log_text
from redaction_corpus import Corpus, every_secret, private_key_bodies
from test_redaction import EXPECTED

ISSUE = 14
NAMES = {"transcript.jsonl": "sessions/session-14-transcript.jsonl",
         "trace.log": "builds/14-trace.log", "stack.log": "debug/14-stack.log",
         "env.log": "deployments/14-env.log"}


@pytest.fixture
def planted(workspace):
    """The corpus written as the issue's logs, plus a big log with a secret across the
    first block edge, look-alikes and logs with nothing to redact."""
    corpus = Corpus(7)
    secrets = corpus.secrets()
    logs = {}
    for name, text in corpus.documents(secrets).items():
        logs[NAMES[name]] = text.encode()
    edge_secret = secrets["github-token"][0]
    head = log_text(BLOCK_SIZE - len(edge_secret) // 2 - 6, 1)
    logs["builds/14-big.log"] = head + f"\ntok {edge_secret} ok\n".encode() + log_text(600_000, 2)
    logs["builds/14-lookalikes.log"] = corpus.look_alikes().encode()
    logs["builds/14-clean-big.log"] = log_text(2_500_000, 3)
    logs["debug/14-clean-small.log"] = log_text(30_000, 4)
    for name, data in logs.items():
        path = workspace / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    expected = Counter(EXPECTED)
    expected["github-token"] += 1
    return {"logs": logs, "secrets": every_secret(secrets) + private_key_bodies(secrets),
            "expected": dict(expected)}


REDACTED = {*NAMES.values(), "builds/14-big.log"}
UNCHANGED = {"builds/14-lookalikes.log", "builds/14-clean-big.log", "debug/14-clean-small.log"}


def index_of(workspace) -> tuple[str, dict]:
    text = (workspace / "logs/.archive-index.json").read_text()
    entry = json.loads(text)["archives"][0]
    return text, {log["local_path"]: log for log in entry["logs"]}


def unpacked(name: str, data: bytes) -> bytes:
    return gzip.decompress(data) if name.endswith(".gz") else data


def assert_no_secret(texts: dict[str, bytes], secrets: list[str]) -> None:
    for where, data in texts.items():
        for secret in secrets:
            assert secret.encode() not in data, (where, secret[:8])


def check_archive(workspace, planted, result, objects: dict[str, bytes]) -> None:
    """What must hold whatever the store: ``objects`` maps key -> stored bytes."""
    assert result.exit_code == 0, result.stdout
    doc = result.json
    index_text, records = index_of(workspace)
    texts = {key: unpacked(key, data) for key, data in objects.items()}
    texts |= {"stdout": result.stdout.encode(), "stderr": result.stderr.encode(),
              "index": index_text.encode(), "comment": doc["comment"]["body"].encode()}
    assert_no_secret(texts, planted["secrets"])
    # every rule counted, in the index and in the output
    counted = Counter()
    for log in records.values():
        counted.update(log["redaction"]["findings"])
    assert dict(counted) == planted["expected"]
    assert doc["redaction"]["secrets"] == sum(planted["expected"].values())
    assert {log["local_path"] for log in doc["redaction"]["logs"]} == REDACTED
    assert "Secrets redacted:" in result.stderr
    by_name = {key.rsplit("/", 1)[1]: data for key, data in texts.items() if "/" in key}
    for name in REDACTED:
        record = records[name]
        stored = by_name[record["remote_path"].rsplit("/", 1)[1]]
        raw = planted["logs"][name]
        assert record["redaction"]["redacted"] is True and record["compressed"]
        assert b"[REDACTED:" in stored
        # the checksums are of the redacted bytes, never of the original
        assert record["original_checksum"] == "sha256:" + hashlib.sha256(stored).hexdigest()
        assert hashlib.sha256(raw).hexdigest() not in index_text
        assert record["original_size_bytes"] == len(raw)
        assert record["upload_status"] == "cleaned"  # cleanup proved it and deleted it
        assert not (workspace / "logs" / name).exists()
    for name in UNCHANGED:
        record = records[name]
        stored = by_name[record["remote_path"].rsplit("/", 1)[1]]
        assert stored == planted["logs"][name]
        assert record["redaction"] == {"redacted": False, "findings": {}}
        assert record["original_checksum"] == \
            "sha256:" + hashlib.sha256(planted["logs"][name]).hexdigest()


def test_archive_to_a_folder_stores_no_secret(workspace, planted, run_cli, tmp_path):
    result = run_cli("archive", str(ISSUE), "--no-commit")
    store = workspace.parent / "store"
    objects = {path.relative_to(store).as_posix(): path.read_bytes()
               for path in store.rglob("*") if path.is_file()}
    check_archive(workspace, planted, result, objects)
    _, records = index_of(workspace)
    # a log with nothing to redact compresses to the very bytes it did without redaction
    copy = tmp_path / "copy" / "14-clean-big.log"
    copy.parent.mkdir()
    copy.write_bytes(planted["logs"]["builds/14-clean-big.log"])
    with ThreadPoolExecutor(2) as pool:
        [(_, plain)] = list(gzip_many([copy], load_config().compression_level, pool))
    key = records["builds/14-clean-big.log"]["remote_path"]
    assert (store / key).read_bytes() == plain.path.read_bytes()
    small = records["debug/14-clean-small.log"]
    assert not small["compressed"]  # stored as it is, as before


def test_archive_to_s3_stores_no_secret(s3_workspace, planted, run_cli):
    place = s3_workspace
    result = run_cli("archive", str(ISSUE), "--no-commit")
    objects = {key: place.read(key) for key in place.objects()}
    assert any(key.endswith("14-big.log.gz") for key in objects)
    check_archive(place.root, planted, result, objects)


def test_scan_lists_what_would_be_redacted_and_changes_nothing(workspace, planted, run_cli):
    before = {p: p.read_bytes() for p in (workspace / "logs").rglob("*") if p.is_file()}
    result = run_cli("scan", str(ISSUE))
    assert result.exit_code == 0, result.stdout
    report = result.json["redaction"]
    assert report["secrets"] == sum(planted["expected"].values())
    assert Counter(f["rule"] for f in report["findings"]) == Counter(planted["expected"])
    edge = [f for f in report["findings"] if f["file"] == "builds/14-big.log"]
    assert [(f["rule"], f["preview"]) for f in edge] == [("github-token", "ghp_****...")]
    assert edge[0]["line"] == planted["logs"]["builds/14-big.log"].count(b"\n", 0, BLOCK_SIZE) + 1
    env = {f["line"]: f["rule"] for f in report["findings"] if f["file"] == NAMES["env.log"]}
    assert env[2] == "generic-secret" and env[5] == "github-token"
    assert_no_secret({"stdout": result.stdout.encode(), "stderr": result.stderr.encode()},
                     planted["secrets"])
    assert "github-token" in result.stderr
    after = {p: p.read_bytes() for p in (workspace / "logs").rglob("*") if p.is_file()}
    assert after == before  # no index, no copy, nothing changed


def test_dry_run_shows_the_findings_too(workspace, planted, run_cli):
    result = run_cli("archive", str(ISSUE), "--dry-run")
    assert result.exit_code == 0
    assert result.json["redaction"]["secrets"] == sum(planted["expected"].values())
    assert "Secrets would be redacted" in result.stderr
    assert not (workspace / "logs/.archive-index.json").exists()
    assert_no_secret({"stdout": result.stdout.encode(), "stderr": result.stderr.encode()},
                     planted["secrets"])


def test_no_redact_stores_the_logs_as_they_are(workspace, planted, run_cli):
    result = run_cli("archive", str(ISSUE), "--no-commit", "--no-redact")
    assert result.exit_code == 0
    assert result.json["redaction"] == {"enabled": False, "secrets": 0, "logs": [],
                                        "binary": []}
    _, records = index_of(workspace)
    assert all("redaction" not in log for log in records.values())
    env = records[NAMES["env.log"]]
    stored = (workspace.parent / "store" / env["remote_path"]).read_bytes()
    assert stored == planted["logs"][NAMES["env.log"]]


def repository() -> Repository:
    return Repository(config=load_config())


def test_cleanup_proves_a_redacted_log_and_keeps_one_that_changed(workspace, planted):
    repo = repository()
    prepare(repo, ISSUE)
    upload_records(repo, ISSUE)
    env = workspace / "logs" / NAMES["env.log"]
    stack = workspace / "logs" / NAMES["stack.log"]
    found, _ = collect(repo, ISSUE)
    _, records = index_of(workspace)
    assert changed_since_archived({"logs": list(records.values())}, found, repo.config) == []
    # same size, one byte of a secret changed: redacted again it differs
    data = bytearray(env.read_bytes())
    data[data.index(b"DB_PASSWORD=") + 13] ^= 1
    env.write_bytes(bytes(data))
    assert changed_since_archived({"logs": list(records.values())}, found, repo.config) \
        == [NAMES["env.log"]]
    report = cleanup_local(repo, ISSUE)
    assert NAMES["stack.log"] in report.deleted and not stack.exists()
    assert env.exists() and NAMES["env.log"] not in report.deleted
    kept = {item["local_path"]: item["reason"] for item in report.kept}
    assert "changed since it was archived" in kept[NAMES["env.log"]]


def test_cleanup_proves_a_redacted_log_even_with_redaction_off(workspace, planted,
                                                                monkeypatch):
    repo = repository()
    prepare(repo, ISSUE)
    upload_records(repo, ISSUE)
    off = Repository(config=repo.config.with_overrides(redact=False))
    report = cleanup_local(off, ISSUE)
    assert set(report.deleted) >= REDACTED
    assert not any((workspace / "logs" / name).exists() for name in REDACTED)


def test_a_user_rule_and_an_allowlist_entry_from_config(workspace, planted, run_cli):
    corpus = Corpus(99)
    ticket = "TKT-" + corpus.text(12, "0123456789ABCDEF")
    allowed = "ghp_" + corpus.text(36)
    other = "ghp_" + corpus.text(36)
    (workspace / "logs/debug/14-user.log").write_text(
        f"ticket {ticket}\nfixture token {allowed}\nreal {other}\n")
    (workspace / ".log-archiver.json").write_text(json.dumps({"logs_dir": "logs", "redaction": {
        "rules": [{"name": "ticket-key", "regex": r"TKT-[0-9A-F]{12}", "keywords": ["tkt-"]}],
        "allowlist": [allowed]}}))
    result = run_cli("archive", str(ISSUE), "--no-commit")
    assert result.exit_code == 0, result.stdout
    _, records = index_of(workspace)
    log = records["debug/14-user.log"]
    assert log["redaction"]["findings"] == {"ticket-key": 1, "github-token": 1}
    stored = gzip.decompress((workspace.parent / "store" / log["remote_path"]).read_bytes())
    assert stored == (f"ticket [REDACTED:ticket-key]\nfixture token {allowed}\n"
                      "real [REDACTED:github-token]\n").encode()


def test_reindex_rebuilds_a_redacted_record_from_the_store(workspace, planted, run_cli):
    repo = repository()
    prepare(repo, ISSUE)
    upload_records(repo, ISSUE)
    _, before = index_of(workspace)
    index = workspace / "logs/.archive-index.json"
    index.unlink()
    result = run_cli("archive", str(ISSUE), "--reindex-only")
    assert result.exit_code == 0, result.stdout
    _, after = index_of(workspace)
    for name in REDACTED:
        assert after[name]["upload_status"] == "verified"
        assert after[name]["original_checksum"] == before[name]["original_checksum"]
        assert after[name]["original_size_bytes"] == len(planted["logs"][name])
        assert after[name]["redaction"] == before[name]["redaction"]
    report = cleanup_local(repository(), ISSUE)
    assert set(report.deleted) >= REDACTED


def test_redaction_speaks_in_the_compress_logs_output(workspace, planted, run_cli):
    path = workspace / "logs" / NAMES["trace.log"]
    result = run_cli("compress-logs", str(path))
    assert result.exit_code == 0, result.stdout
    [item] = result.json["files"]
    assert item["redaction"]["redacted"] and item["compressed"]
    assert Path(item["path"]).name == ".14-trace.log.la.gz"
    assert_no_secret({"out": gzip.decompress(Path(item["path"]).read_bytes())},
                     planted["secrets"])
    shutil.rmtree(workspace / "logs")
