"""The redactor itself: every rule found in realistic contexts, look-alikes left alone,
the same output whatever the chunk size, binary logs passed through, config rules."""

from __future__ import annotations

import io
import json
import re
from collections import Counter

import pytest

from log_archiver.config import load_config
from log_archiver.errors import ConfigError
from log_archiver.redaction.engine import Scanner, masked
from log_archiver.redaction.rules import BUILTIN, user_rules
from log_archiver.redaction.stream import RedactingReader
from redaction_corpus import Corpus, every_secret, private_key_bodies

ENGINES = ("hyperscan", "keywords")


def redact(data: bytes, scanner: Scanner, **sizes) -> tuple[bytes, RedactingReader]:
    reader = RedactingReader(io.BytesIO(data), scanner, **sizes)
    return b"".join(reader), reader


@pytest.fixture(scope="module")
def corpus():
    planted = Corpus(14)
    secrets = planted.secrets()
    return secrets, planted.documents(secrets), planted.look_alikes()


@pytest.fixture(scope="module", params=ENGINES)
def scanner(request):
    return Scanner(user_rules(None, None), request.param)


EXPECTED = {  # findings per rule in the four documents of the corpus
    "private-key": 2, "aws-access-key-id": 1, "aws-secret-access-key": 1, "github-token": 6,
    "gitlab-token": 1, "slack-token": 1, "slack-webhook": 1, "stripe-live-key": 1,
    "google-api-key": 1, "anthropic-api-key": 1, "openai-api-key": 2, "npm-token": 1,
    "pypi-token": 1, "jwt": 1, "url-password": 1, "authorization-header": 1,
    "generic-secret": 3,
}


def test_every_rule_is_found_in_realistic_contexts(corpus, scanner):
    secrets, documents, _ = corpus
    assert set(EXPECTED) == {rule.name for rule in BUILTIN}  # every built-in rule is planted
    total = Counter()
    for name, text in documents.items():
        out, reader = redact(text.encode(), scanner)
        total += reader.outcome.findings
        for secret in every_secret(secrets) + private_key_bodies(secrets):
            assert secret.encode() not in out, (name, secret[:8])
        for rule in reader.outcome.findings:
            assert f"[REDACTED:{rule}]".encode() in out
    assert dict(total) == EXPECTED


def test_the_rest_of_each_line_is_kept(corpus, scanner):
    _, documents, _ = corpus
    out, _ = redact(documents["trace.log"].encode(), scanner)
    lines = out.decode().splitlines()
    assert lines[1] == "+ export AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key-id]"
    assert lines[3] == ("+ git push https://x-access-token:[REDACTED:github-token]"
                        "@github.com/org/repo.git")
    out, _ = redact(documents["stack.log"].encode(), scanner)
    assert b"postgresql://app_user:[REDACTED:url-password]@db.internal:5432/app" in out
    jsonl, _ = redact(documents["transcript.jsonl"].encode(), scanner)
    for line in jsonl.decode().splitlines():
        json.loads(line)  # still one JSON object a line


def test_look_alikes_are_left_byte_for_byte(corpus, scanner):
    _, _, look_alikes = corpus
    data = look_alikes.encode()
    out, reader = redact(data, scanner)
    assert reader.outcome.findings == Counter()
    assert out == data


@pytest.mark.parametrize("read_size", [997, 4096, 65_536, 1 << 20])
def test_output_does_not_depend_on_the_read_size(corpus, scanner, read_size):
    secrets, documents, look_alikes = corpus
    data = ("".join(documents.values()) + look_alikes).encode() * 40  # ~1.5 MB
    reference, first = redact(data, scanner)
    out, reader = redact(data, scanner, read_size=read_size)
    assert out == reference
    assert reader.outcome.findings == first.outcome.findings
    assert sum(first.outcome.findings.values()) == 40 * sum(EXPECTED.values())


@pytest.mark.parametrize("block_size", [1000, 65_536])
def test_blocks_have_the_size_asked_for(corpus, scanner, block_size):
    _, documents, _ = corpus
    data = documents["env.log"].encode() * 100
    blocks = list(RedactingReader(io.BytesIO(data), scanner, block_size))
    assert all(len(b) == block_size for b in blocks[:-1]) and 0 < len(blocks[-1]) <= block_size


@pytest.mark.parametrize(("block_size", "read_size"), [(1000, 997), (1000, 4096),
                                                     (4096, 1000), (65_536, 65_536)])
def test_blocks_cut_the_text_at_the_same_places_whatever_the_pieces(corpus, scanner,
                                                                  block_size, read_size):
    _, documents, look_alikes = corpus
    data = ("".join(documents.values()) + look_alikes).encode() * 7
    whole, _ = redact(data, scanner)
    blocks = list(RedactingReader(io.BytesIO(data), scanner, block_size,
                                  read_size=read_size))
    assert b"".join(blocks) == whole
    assert all(len(b) == block_size for b in blocks[:-1]) and 0 < len(blocks[-1]) <= block_size
    assert all(isinstance(b, bytes) for b in blocks)


def test_a_secret_split_by_a_read_is_found_whole(corpus, scanner):
    secrets, _, _ = corpus
    read_size = 40_000
    for rule, values in secrets.items():
        for secret in values:
            if rule in ("url-password", "authorization-header", "generic-secret",
                        "aws-secret-access-key", "slack-webhook"):
                continue  # these need their context: covered in the documents
            filler = "x " * ((read_size - len(secret) // 2) // 2)
            data = f"{filler}\nsecret {secret} here\n".encode() * 3
            out, reader = redact(data, scanner, read_size=read_size)
            assert secret.encode() not in out, rule
            assert reader.outcome.findings == Counter({rule: 3}), rule


def test_a_private_key_over_many_lines_goes_whole(corpus, scanner):
    secrets, _, _ = corpus
    text = f"before\n{secrets['private-key'][0]}\nafter\n".encode()
    out, reader = redact(text, scanner)
    assert out == b"before\n[REDACTED:private-key]\nafter\n"
    truncated = secrets["private-key"][0].rsplit("\n", 3)[0]  # no END line: cut off
    out, reader = redact(f"dump:\n{truncated}\n(truncated)\n".encode(), scanner)
    assert not any(line.encode() in out for line in private_key_bodies(secrets)[:20])
    assert reader.outcome.findings == Counter({"private-key": 1})


def test_redacting_again_changes_nothing(corpus, scanner):
    _, documents, _ = corpus
    once, _ = redact("".join(documents.values()).encode(), scanner)
    twice, reader = redact(once, scanner)
    assert twice == once and not reader.outcome.findings


def test_both_engines_redact_the_same_bytes(corpus):
    secrets, documents, look_alikes = corpus
    data = ("".join(documents.values()) + look_alikes).encode()
    outs = {redact(data, Scanner(user_rules(None, None), engine))[0] for engine in ENGINES}
    assert len(outs) == 1


def test_a_binary_log_is_left_as_it_is_and_said(corpus, scanner):
    secrets, _, _ = corpus
    data = b"\x7fELF\x02\x01\x01\x00" + secrets["github-token"][0].encode() + bytes(range(256))
    out, reader = redact(data, scanner)
    assert out == data
    assert reader.outcome.binary and reader.outcome.record() == {
        "redacted": False, "findings": {}, "binary": True}


def test_an_empty_log_gives_one_empty_block(scanner):
    assert list(RedactingReader(io.BytesIO(b""), scanner)) == [b""]


def test_previews_never_show_the_secret(corpus):
    secrets, _, _ = corpus
    assert masked(secrets["github-token"][0].encode()) == "ghp_****..."
    for value in every_secret(secrets):
        preview = masked(value.encode())
        assert preview.endswith("****...")
        shown = preview[:-len("****...")]
        assert len(shown) <= 40 and value.startswith(shown)
        random_part = value[len(shown):]
        assert random_part[:6] not in preview


def test_user_rule_and_allowlist_take_effect(corpus):
    secrets, _, _ = corpus
    kept = secrets["github-token"][0]
    ruleset = user_rules([{"name": "ticket-key", "regex": r"TKT-(?P<secret>[0-9A-F]{12})",
                           "keywords": ["TKT-"]}], [re.escape(kept)])
    for engine in ENGINES:
        text = f"key TKT-0123456789AB and {kept} and {secrets['github-token'][1]}\n".encode()
        out, reader = redact(text, Scanner(ruleset, engine))
        assert b"TKT-[REDACTED:ticket-key]" in out
        assert kept.encode() in out and secrets["github-token"][1].encode() not in out
        assert reader.outcome.findings == Counter({"ticket-key": 1, "github-token": 1})


def write_config(root, redaction: dict):
    (root / ".log-archiver.json").write_text(json.dumps({"logs_dir": "logs",
                                                         "redaction": redaction}))


def test_a_bad_regex_in_config_is_a_config_error_naming_it(workspace, run_cli):
    write_config(workspace, {"rules": [{"name": "broken-rule", "regex": "ab(c"}]})
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert "broken-rule" in raised.value.message and "ab(c" in raised.value.message
    result = run_cli("scan", "5")
    assert result.exit_code == 1
    assert result.json["errors"][0]["type"] == "config"
    assert "broken-rule" in result.json["errors"][0]["message"]
    write_config(workspace, {"allowlist": ["[unclosed"]})
    with pytest.raises(ConfigError, match=r"allowlist.*\[unclosed"):
        load_config()
    write_config(workspace, {"rules": [{"name": "Bad Name", "regex": "x"}]})
    with pytest.raises(ConfigError):
        load_config()
    write_config(workspace, {"rules": [{"name": "github-token", "regex": "x+"}]})
    with pytest.raises(ConfigError, match="github-token"):
        load_config()


def test_redaction_is_on_by_default_and_the_config_turns_it_off(workspace):
    assert load_config().redact is True
    write_config(workspace, {"enabled": False})
    assert load_config().redact is False
