"""The compiled validators that guard every index write agree with jsonschema, survive a
broken cache, and the schemas ship inside the wheel."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO
from log_archiver.util import schemas
from log_archiver.util.samples import write_sample_logs
from log_archiver.util.schemas import SchemaViolation, validate, violations

BAD_VALUES = [None, -1, 1.5, "", "x" * 3, [], {}, True]


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    """A real entry, written by the workflow."""
    root = tmp_path_factory.mktemp("entry")
    logs = root / "logs"
    write_sample_logs(logs, 5)
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith(("LOG_ARCHIVER_", "GITHUB_", "GH_"))}
    env.update(LOG_ARCHIVER_LOGS_DIR=str(logs), LOG_ARCHIVER_STORAGE=f"file://{root}/store",
               HOME=str(root))
    done = subprocess.run([sys.executable, "-m", "log_archiver", "archive", "5", "-q",
                           "--no-commit"], env=env, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((logs / ".archive-index.json").read_text())["archives"][0]


def mutations(entry: dict):
    """Every field of the entry and of a log record, removed or set to each bad value."""
    for key in entry:
        yield f"entry.{key} removed", lambda e, k=key: e.pop(k)
        for value in BAD_VALUES:
            yield f"entry.{key}={value!r}", lambda e, k=key, v=value: e.__setitem__(k, v)
    for key in entry["logs"][0]:
        yield f"log.{key} removed", lambda e, k=key: e["logs"][0].pop(k)
        for value in BAD_VALUES:
            yield (f"log.{key}={value!r}",
                   lambda e, k=key, v=value: e["logs"][0].__setitem__(k, v))
    yield "extra field", lambda e: e.__setitem__("surprise", 1)
    yield "log extra field", lambda e: e["logs"][0].__setitem__("surprise", 1)


def compiled_accepts(kind: str, data) -> bool:
    try:
        validate(kind, data)
    except SchemaViolation:
        return False
    return True


def test_compiled_and_reference_validators_agree(entry):
    """fastjsonschema (every write) and jsonschema (every report) judge the same way."""
    checked = rejected = 0
    for label, change in mutations(entry):
        data = copy.deepcopy(entry)
        change(data)
        document = {"schema_version": 1, "last_updated": "2025-01-15T09:00:00Z",
                    "archives": [data]}
        reference_ok = not violations("archive-index.schema.json", document)
        assert compiled_accepts("index", document) == reference_ok, label
        assert compiled_accepts("entry", data) == reference_ok, label
        checked += 1
        rejected += not reference_ok
    assert checked > 200 and rejected > checked // 2


def test_a_broken_validator_cache_is_rebuilt(tmp_path, monkeypatch, entry):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    schemas._fast_validator.cache_clear()
    try:
        validate("entry", entry)
        cached = list((tmp_path / "log-archiver" / "validators").glob("entry-*.bytecode"))
        assert len(cached) == 1
        cached[0].write_bytes(b"not bytecode")
        schemas._fast_validator.cache_clear()
        bad = dict(entry, total_logs="four")
        with pytest.raises(SchemaViolation, match="total_logs"):
            validate("entry", bad)
        validate("entry", entry)
        assert cached[0].read_bytes() != b"not bytecode"
    finally:
        schemas._fast_validator.cache_clear()


def test_an_unwritable_cache_still_validates(tmp_path, monkeypatch, entry):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    schemas._fast_validator.cache_clear()
    try:
        with pytest.raises(SchemaViolation, match="archive_reason"):
            validate("entry", dict(entry, archive_reason="bored"))
    finally:
        schemas._fast_validator.cache_clear()


def test_the_wheel_ships_every_schema(tmp_path):
    """`pip install .` (not only -e) must find the schemas: build the wheel, install it
    alone into a folder, and validate with the schemas it brought."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(dist), str(REPO)], check=True)
    wheel = next(dist.glob("log_archiver-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO / "schemas").as_posix()
               for p in (REPO / "schemas").rglob("*.json")}
    assert shipped and {f"log_archiver/schemas/{n}" for n in shipped} <= names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    probe = ("import log_archiver.util.schemas as s; print(s.schema_dir()); "
             "print(len(s.violations('output/archive.json', {})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                          cwd=tmp_path, check=True)
    folder, count = done.stdout.split()
    assert folder.startswith(str(target)) and int(count) > 0
