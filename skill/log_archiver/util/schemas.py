"""JSON Schemas: where they live and how data is checked against them.

Hot paths (every index read and write, every config read) use fastjsonschema, which
compiles a schema to Python once per process and then checks a 10,000-entry index in a
fraction of the time pure-Python jsonschema takes. Reports that list every violation with
its JSON path use jsonschema itself; a test keeps the two in agreement.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

FAST_VALIDATED = {
    "index": "archive-index.schema.json",
    "entry": "archive-entry.schema.json",
    "config": "config.schema.json",
}


class SchemaViolation(ValueError):
    def __init__(self, message: str, path: str = "$"):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message


def schema_dir() -> Path:
    packaged = Path(__file__).parent.parent / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "schemas"


@cache
def load_schema(name: str) -> dict:
    """A schema by file name (``archive-index.schema.json``, ``output/archive.json``)."""
    return json.loads((schema_dir() / name).read_text(encoding="utf-8"))


def validate(kind: str, data) -> None:
    """Raise :class:`SchemaViolation` when ``data`` breaks the ``kind`` schema."""
    try:
        _fast_validator(kind)(data)
    except _Rejected as failure:
        raise SchemaViolation(failure.message, _json_path(failure.name or "data")) from None


class _Rejected(ValueError):
    """What the generated validators raise (in place of fastjsonschema's own exceptions, so
    a cached validator runs without importing fastjsonschema)."""

    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message, self.value, self.name, self.rule = message, value, name, rule


_GENERATED_IMPORT = "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException"


@cache
def _fast_validator(kind: str):
    """The compiled validator of ``kind``.

    Generating and compiling the code costs more than the rest of a typical archive, so
    the compiled code is kept in the user's cache folder under a name that hashes the
    schema and Python's bytecode version (a failing cache only makes it slower).
    """
    import importlib.util
    import marshal
    import os
    import types
    import zlib  # (hashlib would cost enqueue more than the rest of its configuration)

    from log_archiver.util.fsutil import write_bytes_atomic

    schema = _resolved(FAST_VALIDATED[kind])
    text = json.dumps(schema, sort_keys=True).encode() + importlib.util.MAGIC_NUMBER
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = (Path(base) / "log-archiver" / "validators"
            / f"{kind}-{zlib.crc32(text):08x}{zlib.adler32(text):08x}{len(text):x}.bytecode")
    try:
        code = marshal.loads(path.read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        code = None
    if not isinstance(code, types.CodeType):
        import fastjsonschema

        source = fastjsonschema.compile_to_code(schema)
        if _GENERATED_IMPORT not in source:
            raise RuntimeError(f"fastjsonschema {fastjsonschema.VERSION} generates code this "
                               "project does not know; pin the version that works")
        code = compile(source.replace(_GENERATED_IMPORT, ""), str(path), "exec")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, marshal.dumps(code), durable=False)
        except OSError:
            pass
    namespace: dict = {"__name__": f"log_archiver_validate_{kind}",
                       "JsonSchemaValueException": _Rejected,
                       "JsonSchemaValuesException": _Rejected}
    exec(code, namespace)
    return namespace["validate"]


def _json_path(name: str) -> str:
    return "$" + name[len("data"):] if name.startswith("data") else name


def violations(schema_name: str, data) -> list[tuple[str, str]]:
    """Every violation of the named schema as (JSON path, message), by jsonschema."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema(schema_name), registry=_registry())
    found = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        found.append((error.json_path, error.message))
    return found


@lru_cache(maxsize=1)
def _registry():
    from referencing import Registry, Resource

    resources = []
    for path in sorted(schema_dir().rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resource = Resource.from_contents(schema)
        resources.append((schema.get("$id", path.name), resource))
        resources.append((path.relative_to(schema_dir()).as_posix(), resource))
    return Registry().with_resources(resources)


def _resolved(schema_name: str) -> dict:
    """The schema with a cross-file ``$ref`` inlined, for code generation."""
    schema = dict(load_schema(schema_name))
    schema.pop("$id", None)  # fastjsonschema would fetch refs relative to it over the network
    ref = schema.get("$ref", "")
    if ref and not ref.startswith("#"):
        target_file, pointer = ref.split("#", 1)
        target = load_schema(target_file)
        schema["$ref"] = "#" + pointer
        schema["$defs"] = target["$defs"]
    return schema
