"""The compiled hyperscan database kept between runs: used when it is ours and intact,
ignored and rebuilt when it is corrupt, forged, another rule set's, or lies in a folder
someone else may write to; redaction finds the same secrets every time."""

from __future__ import annotations

import hashlib
import os

import pytest

hyperscan = pytest.importorskip("hyperscan")

from log_archiver.redaction import hs_cache  # noqa: E402
from log_archiver.redaction.engine import Scanner  # noqa: E402
from log_archiver.redaction.rules import RuleSet, user_rules  # noqa: E402

SECRET = b"ghp_" + b"a1B2" * 9
TEXT = (b"export GITHUB_TOKEN=" + SECRET
        + b"\nand a commit 0123456789abcdef0123456789abcdef01234567\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "log-archiver" / "hyperscan"


def found(scanner: Scanner) -> list[bytes]:
    return [TEXT[m.start:m.end] for m in scanner.matches(TEXT, 0, len(TEXT))]


def only_file(cache):
    [path] = list(cache.glob("*.db"))
    return path


def test_the_second_scanner_loads_what_the_first_compiled(cache, monkeypatch):
    assert found(Scanner(user_rules(None, None), engine="hyperscan")) == [SECRET]
    path = only_file(cache)
    assert (os.stat(cache).st_mode & 0o777, os.stat(path).st_mode & 0o777) == (0o700, 0o600)

    class NoCompiling:
        def __init__(self, *args, **kwargs):
            raise AssertionError("compiled again although the cache was intact")

    monkeypatch.setattr(hyperscan, "Database", NoCompiling)
    assert found(Scanner(user_rules(None, None), engine="hyperscan")) == [SECRET]


@pytest.mark.parametrize("damage", ["flipped byte", "cut short", "empty", "forged checksum",
                                    "another key"])
def test_a_damaged_or_forged_cache_is_ignored_and_rebuilt(cache, damage):
    Scanner(user_rules(None, None), engine="hyperscan")
    path = only_file(cache)
    data = path.read_bytes()
    head_end = data.index(b"\n", len(hs_cache.MAGIC)) + 1
    payload_at = head_end + 65
    if damage == "flipped byte":
        data = data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:]
    elif damage == "cut short":
        data = data[:len(data) // 2]
    elif damage == "empty":
        data = b""
    elif damage == "forged checksum":  # garbage whose SHA-256 is right: hyperscan refuses it
        garbage = os.urandom(len(data) - payload_at)
        data = data[:head_end] + hashlib.sha256(garbage).hexdigest().encode() + b"\n" + garbage
    else:  # a valid file of another rule set, put under this one's name
        data = data.replace(data[len(hs_cache.MAGIC):head_end - 1], b"0" * 64, 1)
    path.write_bytes(data)
    assert found(Scanner(user_rules(None, None), engine="hyperscan")) == [SECRET]
    rebuilt = path.read_bytes()
    assert rebuilt != data and hs_cache.load(hyperscan, path.stem) is not None


def test_a_cache_folder_others_may_write_to_is_never_read(cache):
    Scanner(user_rules(None, None), engine="hyperscan")
    path = only_file(cache)
    os.chmod(cache, 0o777)
    assert hs_cache.load(hyperscan, path.stem) is None
    assert found(Scanner(user_rules(None, None), engine="hyperscan")) == [SECRET]
    os.chmod(cache, 0o700)
    os.chmod(path, 0o666)
    assert hs_cache.load(hyperscan, path.stem) is None


def test_a_symlinked_cache_file_is_not_followed(cache, tmp_path):
    Scanner(user_rules(None, None), engine="hyperscan")
    path = only_file(cache)
    elsewhere = tmp_path / "elsewhere.db"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert hs_cache.load(hyperscan, path.stem) is None


def test_another_rule_set_gets_a_database_of_its_own(cache):
    everything = user_rules(None, None)
    Scanner(everything, engine="hyperscan")
    github = [rule for rule in everything.rules if rule.name == "github-token"]
    fewer = Scanner(RuleSet(tuple(github), ()), engine="hyperscan")
    assert len(list(cache.glob("*.db"))) == 2
    assert found(fewer) == [SECRET]
    assert found(Scanner(everything, engine="hyperscan")) == [SECRET]
