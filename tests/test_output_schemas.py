"""The output schemas are a strict contract: a field the code prints and the schema does not
describe fails validation, and every command has its schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from log_archiver import errors
from log_archiver.util.schemas import violations

OUTPUT_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "output"
SCHEMA_FILES = sorted(OUTPUT_SCHEMAS.glob("*.json"))
COMMAND_SCHEMAS = [path for path in SCHEMA_FILES if path.name != "common.json"]
SUBSCHEMA_KEYS = ("if", "then", "else", "not", "items", "additionalProperties")
BRANCH_KEYS = ("allOf", "anyOf", "oneOf")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def subschemas(node: dict, known: frozenset[str]):
    """(schema, property names it may require) for ``node`` and every schema inside it.

    A branch (if/then/else, allOf, ...) may require the properties of the object it
    constrains as well as its own."""
    names = known | set(node.get("properties", {}))
    yield node, names
    children = [(value, frozenset()) for value in node.get("properties", {}).values()]
    children += [(value, frozenset()) for value in node.get("$defs", {}).values()]
    children += [(node[key], names) for key in SUBSCHEMA_KEYS
                 if isinstance(node.get(key), dict)]
    children += [(branch, names) for key in BRANCH_KEYS for branch in node.get(key, [])]
    for child, inherited in children:
        yield from subschemas(child, frozenset(inherited))


@pytest.mark.parametrize("path", COMMAND_SCHEMAS, ids=[p.stem for p in COMMAND_SCHEMAS])
def test_every_command_schema_is_strict_at_the_top(path):
    schema = load(path)
    assert schema.get("additionalProperties") is False, path.name
    assert {"$ref": "common.json"} in schema["allOf"], path.name
    envelope = set(load(OUTPUT_SCHEMAS / "common.json")["properties"])
    missing = envelope - set(schema["properties"])
    assert not missing, f"{path.name} does not name the envelope's {sorted(missing)}"
    assert schema["properties"]["command"] == {"const": path.stem}


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_every_required_name_is_a_property(path):
    wrong = [f"{name} (required by {json.dumps(node)[:60]}...)"
             for node, names in subschemas(load(path), frozenset())
             for name in node.get("required", []) if name not in names]
    assert not wrong, f"{path.name}: " + "; ".join(wrong)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=[p.stem for p in SCHEMA_FILES])
def test_every_object_with_known_keys_is_closed(path):
    schema = load(path)
    # common.json's own top is the envelope every command schema extends and closes
    open_objects = [json.dumps(node)[:80] for node, _ in subschemas(schema, frozenset())
                    if node is not schema or path.name != "common.json"
                    if node.get("type") == "object" and "properties" in node
                    and node.get("additionalProperties") is not False]
    assert not open_objects, f"{path.name}: " + "; ".join(open_objects)


def test_every_cli_command_has_a_schema_named_after_it():
    from log_archiver.cli import COMMANDS

    names = set(COMMANDS) | {"log-archiver"}  # its usage errors
    schemas = {path.stem for path in COMMAND_SCHEMAS}
    assert names == schemas, f"no schema: {sorted(names - schemas)}; " \
                             f"no command: {sorted(schemas - names)}"


def test_every_error_type_the_library_raises_is_in_the_schema():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    raised = {errors.ArchiveError.type} | {cls.type for cls in subclasses(errors.ArchiveError)}
    listed = set(load(OUTPUT_SCHEMAS / "common.json")["$defs"]["error"]["properties"]["type"]
                 ["enum"])
    assert raised <= listed, f"error types missing from common.json: {sorted(raised - listed)}"


def envelope(command: str, **fields) -> dict:
    return {"schema_version": 1, "command": command, "status": "ok", "dry_run": False,
            **fields, "errors": []}


def test_a_field_the_schema_does_not_name_fails_validation():
    document = envelope("commit", issue_number=7,
                        commit={"status": "noop", "reason": "no git repository"})
    assert violations("output/commit.json", document) == []
    for extra in ({"surprise": 1}, {"commit": {**document["commit"], "surprise": 1}}):
        found = violations("output/commit.json", {**document, **extra})
        assert any("surprise" in message for _, message in found), found


def test_the_cleanup_modes_keep_to_their_own_fields():
    kept = {"local_path": "builds/7-build.log", "reason": "upload status is pending"}
    issue_mode = envelope("cleanup-local", issue_number=7, deleted=[], kept=[kept], failed=[],
                          freed_bytes=0)
    assert violations("output/cleanup-local.json", issue_mode) == []
    orphan_kept = {"path": "builds/7-build.log.gz", "kind": "compressed", "reason": "named"}
    assert violations("output/cleanup-local.json", {**issue_mode, "kept": [orphan_kept]})
    orphans = envelope("cleanup-local", mode="orphans", logs_dir="/logs", orphans=[],
                       kept=[orphan_kept], failed=[], freed_bytes=0)
    assert violations("output/cleanup-local.json", orphans) == []
    assert violations("output/cleanup-local.json", {**orphans, "issue_number": 7})
    assert violations("output/cleanup-local.json", {**orphans, "kept": [kept]})
