"""The stores around every store: retries for each primitive, and dry runs that write
nothing. Against SeaweedFS through the fault proxy, and the file:// store."""

from __future__ import annotations

import hashlib
import json

import pytest

from log_archiver.config import load_config
from log_archiver.errors import StorageTimeoutError, StorageTransientError
from log_archiver.repository import Repository
from log_archiver.storage.local import LocalStore
from log_archiver.storage.wrappers import DryRunRefused, DryRunStore, RetryingStore, retry_tally
from log_archiver.util.retry import RetryPolicy
from log_archiver.util.samples import write_sample_logs

KEY = "archive/logs/2025/01/123/build.log"


@pytest.fixture
def payload(tmp_path):
    data = b"build output\n" * 300
    path = tmp_path / "build.log"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


PRIMITIVES = {
    "put": lambda store, payload, tmp: store.put(
        "archive/logs/2025/01/123/other.log", payload[0], sha256=payload[1], size=payload[2]),
    "head": lambda store, payload, tmp: store.head(KEY).sha256,
    "get": lambda store, payload, tmp: store.get(KEY, tmp / "copy"),
    "digest": lambda store, payload, tmp: store.digest(KEY),
    "list": lambda store, payload, tmp: [info.key for info in store.list("archive/")],
    "delete": lambda store, payload, tmp: store.delete(KEY),
}


@pytest.mark.parametrize("primitive", sorted(PRIMITIVES))
def test_every_primitive_is_retried(proxied_store, fault_proxy, payload, tmp_path, primitive):
    path, sha, size = payload
    proxied_store.put(KEY, path, sha256=sha, size=size)
    store = RetryingStore(proxied_store, RetryPolicy.immediate())
    fault_proxy.fail_next(1, "internal")
    with retry_tally() as tally:
        PRIMITIVES[primitive](store, payload, tmp_path)
    assert tally.retries == 1
    assert fault_proxy.pending_faults() == 0 and fault_proxy.count("-> internal") == 1
    if primitive == "delete":
        assert proxied_store.head(KEY) is None
    elif primitive == "get":
        assert (tmp_path / "copy").read_bytes() == path.read_bytes()


def test_giving_up_says_how_many_retries_it_took(proxied_store, fault_proxy, payload):
    path, sha, size = payload
    proxied_store.put(KEY, path, sha256=sha, size=size)
    store = RetryingStore(proxied_store, RetryPolicy.immediate())
    fault_proxy.fail_next(4, "internal")
    with pytest.raises(StorageTransientError) as caught, retry_tally() as tally:
        store.head(KEY)
    assert caught.value.retries == 3 == tally.retries  # the spec's 3 retries, then stop
    assert fault_proxy.count("-> internal") == 4


def test_a_timeout_is_retried_with_a_longer_one(proxied_store, fault_proxy, payload):
    path, sha, size = payload
    proxied_store.put(KEY, path, sha256=sha, size=size)
    fault_proxy.delay = 0.65  # past 0.5 s, well inside 1 s on a loaded machine
    fault_proxy.fail_next(1, "slow")
    with pytest.raises(StorageTimeoutError):  # unwrapped, 0.5 s is too short
        proxied_store.with_timeout(0.5).head(KEY)
    fault_proxy.fail_next(2, "slow")  # 0.5 s times out, 1 s is enough
    store = RetryingStore(proxied_store.with_timeout(0.5), RetryPolicy.immediate())
    with retry_tally() as tally:
        assert store.head(KEY).sha256 == sha
    assert tally.retries == 1


def test_a_failed_listing_is_retried_in_a_reindex(s3_workspace, logs_of_123, run_cli,
                                                  monkeypatch):
    """A rebuild lists and reads the store: those calls are retried like uploads."""
    place = s3_workspace
    monkeypatch.setenv("LOG_ARCHIVER_RETRY_DELAY_SCALE", "0")
    assert run_cli("archive", "123").exit_code == 0
    index = place.root / "logs/.archive-index.json"
    truth = json.loads(index.read_text())["archives"][0]
    index.unlink()
    place.proxy.fail_matching(r"^GET /[^?]*\?list-type=2", "internal", times=1)
    place.proxy.fail_matching(r"^HEAD ", "slowdown", times=1)
    result = run_cli("archive", "123", "--reindex-only")
    assert result.exit_code == 0, result.stdout
    assert place.proxy.count(r"list-type=2.* -> internal") == 1
    assert place.proxy.count(r"^HEAD .* -> slowdown") == 1
    rebuilt = json.loads(index.read_text())["archives"][0]
    assert sorted(log["checksum"] for log in rebuilt["logs"]) == \
        sorted(log["checksum"] for log in truth["logs"])


@pytest.fixture
def logs_of_123(workspace):
    return write_sample_logs(workspace / "logs", 123)


def test_a_dry_run_store_reads_but_never_writes(tmp_path, payload):
    path, sha, size = payload
    inner = LocalStore(tmp_path / "store")
    inner.put(KEY, path, sha256=sha, size=size)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "store").rglob("*"))
    store = DryRunStore(inner)
    assert store.head(KEY).sha256 == sha and store.digest(KEY) == (size, sha)
    assert [info.key for info in store.list("")] == [KEY]
    store.get(KEY, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == path.read_bytes()
    with pytest.raises(DryRunRefused) as caught:
        store.put("archive/logs/2025/01/123/new.log", path, sha256=sha, size=size)
    assert "dry run" in caught.value.message and "--dry-run" in caught.value.hint
    with pytest.raises(DryRunRefused):
        store.delete(KEY)
    assert [action for action, _ in store.refused] == ["put", "delete"]
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "store").rglob("*")) == before


def test_the_repository_wraps_its_store(workspace):
    config = load_config()
    plain, dry = Repository(config).store, Repository(config, dry_run=True).store
    assert isinstance(plain, RetryingStore) and isinstance(plain.inner, LocalStore)
    assert isinstance(dry, DryRunStore) and isinstance(dry.inner, RetryingStore)
    assert plain.url == dry.url == plain.inner.url
    assert plain.capabilities == LocalStore.capabilities
