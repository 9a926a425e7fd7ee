"""Settings: defaults that work offline, then ``.log-archiver.json``, then the
``LOG_ARCHIVER_*`` environment, then flags (the caller applies them with
:meth:`Config.with_overrides`).

One set of bounds holds wherever a value comes from: ``schemas/config.schema.json``.
The file is validated against it, each environment variable is validated against the
part of it that variable sets, and :func:`check_config` validates the final settings
(flags included) against it again, with the rules a schema cannot say (a file store is
never ``/``, the logs dir or a folder holding it).

``LOG_ARCHIVER_RETRY_DELAY_SCALE`` (see :mod:`.retry`) is read by the retry policy itself;
it is checked here too, so a bad value stops a command before it starts any work.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from log_archiver.errors import ConfigError, UsageError
from log_archiver.util.urls import URL_CHECKS

CONFIG_NAME = ".log-archiver.json"
MIB = 1 << 20
MAX_WORKERS = 32  # the schema's bound too: more threads add memory, not speed


def default_store_url() -> str:
    """The store when none is configured: a folder in this user's data dir, resolved at
    run time (never written into the shared config). A relative ``XDG_DATA_HOME`` is
    ignored, as the XDG spec says."""
    base = os.environ.get("XDG_DATA_HOME") or ""
    if not os.path.isabs(base):
        base = str(Path.home() / ".local" / "share")
    return f"file://{Path(base) / 'log-archiver' / 'store'}"


class _Computed:
    """A default worked out when a Config is made (it depends on the machine or the
    environment of that moment)."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


# setting -> default; root and logs_dir have none
_DEFAULTS = {
    "storage": _Computed(default_store_url),
    "compression": "gzip",
    # 5: on real logs (git diffs, package logs, test output) a copy 1% larger than at 6
    # for 30% less compressing time
    "compression_level": 5,
    "compress_threshold_bytes": MIB,
    "workers": _Computed(lambda: min(os.cpu_count() or 1, MAX_WORKERS)),
    "upload_concurrency": 4,
    "multipart_threshold_bytes": 64 * MIB,
    "multipart_chunk_bytes": 16 * MIB,
    "endpoint_url": None,
    "region": None,
    "profile": None,
    "addressing_style": None,
    "r2_account_id": None,
    "public": False,
    "public_base_url": None,
    "github_repository": None,
    "commit": True,
    "untrack_cleaned_logs": True,
    "breaker_failures": 3,
    "breaker_cooldown_seconds": 300.0,
    "queue_url": None,  # None: default_queue_url(), resolved at run time
    "queue_max_pending": 1000,
    "queue_lease_seconds": 60,
    "redact": True,
    "redaction_rules": None,
    "redaction_allowlist": None,
    "config_path": None,
    # ``retention`` of the config file as written (checked by :func:`check_retention`);
    # None: nothing ever expires. ``log_archiver.lifecycle.policy`` reads it.
    "retention": None,
}
_FIELDS = ("root", "logs_dir", *_DEFAULTS)


class Config:
    """The settings of a run, frozen. A plain class rather than a dataclass: importing
    ``dataclasses`` (and the ``inspect`` it loads) is a fifth of what ``enqueue``, the
    command a webhook waits for, may take."""

    __slots__ = _FIELDS

    def __init__(self, root: Path, logs_dir: Path, **values):
        unknown = sorted(set(values) - set(_DEFAULTS))
        if unknown:
            raise TypeError(f"Config has no setting {unknown[0]!r}")
        put = object.__setattr__
        put(self, "root", root)
        put(self, "logs_dir", logs_dir)
        for name, default in _DEFAULTS.items():
            if name in values:
                put(self, name, values[name])
            else:
                put(self, name, default.make() if isinstance(default, _Computed) else default)

    def __setattr__(self, name, value):
        raise AttributeError(f"Config is frozen: make another with with_overrides({name}=...)")

    def __delattr__(self, name):
        raise AttributeError("Config is frozen")

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS
                   if name != "retention")

    __hash__ = None  # (lists among the settings)

    def __reduce__(self):  # (frozen slots: pickle cannot set them one by one)
        return _config_of, ({name: getattr(self, name) for name in _FIELDS},)

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS) + ")"

    @property
    def index_path(self) -> Path:
        return self.logs_dir / ".archive-index.json"

    def with_overrides(self, **values) -> Config:
        current = {name: getattr(self, name) for name in _FIELDS}
        current.update({k: v for k, v in values.items() if v is not None})
        return Config(**current)


# file section/key -> Config field
_FILE_KEYS = {
    ("logs_dir",): "logs_dir",
    ("storage",): "storage",
    ("public_base_url",): "public_base_url",
    ("compression", "algorithm"): "compression",
    ("compression", "level"): "compression_level",
    ("compression", "threshold_bytes"): "compress_threshold_bytes",
    ("workers",): "workers",
    ("upload", "concurrency"): "upload_concurrency",
    ("upload", "multipart_threshold_bytes"): "multipart_threshold_bytes",
    ("upload", "multipart_chunk_bytes"): "multipart_chunk_bytes",
    ("s3", "endpoint_url"): "endpoint_url",
    ("s3", "region"): "region",
    ("s3", "profile"): "profile",
    ("s3", "addressing_style"): "addressing_style",
    ("s3", "r2_account_id"): "r2_account_id",
    ("s3", "public"): "public",
    ("github", "repository"): "github_repository",
    ("git", "commit"): "commit",
    ("git", "untrack_cleaned_logs"): "untrack_cleaned_logs",
    ("queue", "breaker_failures"): "breaker_failures",
    ("queue", "breaker_cooldown_seconds"): "breaker_cooldown_seconds",
    ("queue", "url"): "queue_url",
    ("queue", "max_pending"): "queue_max_pending",
    ("queue", "lease_seconds"): "queue_lease_seconds",
    ("redaction", "enabled"): "redact",
    ("redaction", "rules"): "redaction_rules",
    ("redaction", "allowlist"): "redaction_allowlist",
    ("retention",): "retention",
}

_ENV_KEYS = {
    "LOG_ARCHIVER_LOGS_DIR": ("logs_dir", str),
    "LOG_ARCHIVER_STORAGE": ("storage", str),
    "LOG_ARCHIVER_COMPRESSION": ("compression", str),
    "LOG_ARCHIVER_COMPRESSION_LEVEL": ("compression_level", int),
    "LOG_ARCHIVER_THRESHOLD_BYTES": ("compress_threshold_bytes", int),
    "LOG_ARCHIVER_WORKERS": ("workers", int),
    "LOG_ARCHIVER_UPLOAD_CONCURRENCY": ("upload_concurrency", int),
    "LOG_ARCHIVER_PUBLIC_BASE_URL": ("public_base_url", str),
    "LOG_ARCHIVER_QUEUE_URL": ("queue_url", str),
    "LOG_ARCHIVER_QUEUE_MAX_PENDING": ("queue_max_pending", int),
}


def _config_of(values: dict) -> Config:
    return Config(**values)


def find_config_file(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def find_root(start: Path) -> Path:
    """The repository root: the nearest folder holding ``.git``, else ``start``."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def load_config(cwd: Path | None = None, environ: dict | None = None) -> Config:
    cwd = (cwd or Path.cwd()).absolute()
    environ = os.environ if environ is None else environ
    explicit = environ.get("LOG_ARCHIVER_CONFIG")
    path = Path(explicit).absolute() if explicit else find_config_file(cwd)
    values: dict = {}
    root = find_root(cwd)
    if path is not None:
        root = path.parent
        values.update(_read_file(path))
    for name, (field_name, kind) in _ENV_KEYS.items():
        raw = environ.get(name)
        if raw:
            values[field_name] = _from_environment(name, raw, field_name, kind)
    from log_archiver.util.retry_scale import delay_scale_from_environment

    delay_scale_from_environment(environ)
    logs_dir = Path(values.pop("logs_dir", "logs")).expanduser()
    config = Config(root=root, logs_dir=(root / logs_dir).absolute(), config_path=path, **values)
    check_config(config)
    return config


def _from_environment(name: str, raw: str, field_name: str, kind: type):
    """The value of one ``LOG_ARCHIVER_*`` variable, within the bounds the file has."""
    if field_name in URL_CHECKS:
        URL_CHECKS[field_name](raw)  # first: no message may repeat a secret in the URL
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number",
                          f"set {name} to a whole number ({describe_bounds(field_name)})"
                          ) from None
    problem = settings_problem({field_name: value})
    if problem is not None:
        raise ConfigError(f"{name}={raw!r} is out of bounds: {problem}",
                          f"set {name} to a value {describe_bounds(field_name)}, or unset it")
    return value


def _read_file(path: Path) -> dict:
    from log_archiver.util.strict_json import loads

    try:
        data = loads(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist",
                          "unset LOG_ARCHIVER_CONFIG or run `log-archiver init`") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"config file {path} is not readable JSON: {error}",
                          f"fix {path} or write a new one: `log-archiver init --force`") from None
    from log_archiver.util.schemas import SchemaViolation, validate

    for name, check in URL_CHECKS.items():  # before any message could repeat a secret
        if isinstance(data, dict) and isinstance(data.get(name), str):
            check(data[name])
    if isinstance(data, dict) and isinstance(data.get("retention"), dict):
        check_retention(data["retention"], path)  # first: a clearer message than the schema's
    try:
        validate("config", data)
    except SchemaViolation as violation:
        raise ConfigError(f"config file {path} is invalid: {violation}",
                          "compare it with schemas/config.schema.json") from None
    values = {}
    for keys, field_name in _FILE_KEYS.items():
        node = data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            values[field_name] = node
    return values


_KEYS_OF = {field_name: keys for keys, field_name in _FILE_KEYS.items()}


def check_retention(retention: dict, path: Path | str = CONFIG_NAME) -> None:
    """Every duration of a ``retention`` block parses, or a :class:`ConfigError` names the
    first bad one and where it is."""
    from log_archiver.util.durations import RETENTION_FORMS, parse_retention

    places = [("retention.default", retention.get("default"))] if "default" in retention else []
    known = {"by_type": ("session", "build", "deployment", "debug"),
             "by_reason": ("issue_closed", "pr_merged", "manual", "retention")}
    for group in ("by_type", "by_reason", "by_label"):
        rules = retention.get(group)
        if not isinstance(rules, dict):
            continue
        for name in rules:
            if group in known and name not in known[group]:
                raise ConfigError(f"config file {path}: retention.{group} names {name!r}, "
                                  f"which is not one of {', '.join(known[group])}",
                                  f"use one of {', '.join(known[group])}")
        places += [(f"retention.{group}.{name}", value) for name, value in rules.items()]
    for where, value in places:
        if parse_retention(value) is None:
            raise ConfigError(f"config file {path}: {where} is {value!r}, not a duration",
                              f"write it as {RETENTION_FORMS}")


def settings_document(values: dict) -> dict:
    """Settings (Config field -> value) in the shape of the config file."""
    document: dict = {}
    for field_name, value in values.items():
        keys = _KEYS_OF.get(field_name)
        if keys is None or value is None or field_name == "logs_dir":
            continue
        node = document
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return document


def settings_problem(values: dict) -> str | None:
    """What breaks the config schema in ``values`` (Config field -> value), or None."""
    from log_archiver.util.schemas import SchemaViolation, validate

    try:
        validate("config", settings_document(values))
    except SchemaViolation as violation:
        setting = violation.path.removeprefix("$").removeprefix(".") or "settings"
        field_name = _FILE_KEYS.get(tuple(setting.split(".")), setting)
        return (f"{setting} is {values.get(field_name)!r}; it must be "
                f"{describe_bounds(field_name)}")
    return None


def describe_bounds(field_name: str) -> str:
    """The schema's rule for one setting, in words (``from 1 to 32``)."""
    from log_archiver.util.schemas import load_schema

    node = load_schema("config.schema.json")
    for key in _KEYS_OF.get(field_name, (field_name,)):
        node = node.get("properties", {}).get(key, {})
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f"at least {low}"
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"] if v is not None)
    return node.get("description", "as schemas/config.schema.json says")


def check_config(config: Config) -> None:
    """The final settings, flags included, against the one set of bounds."""
    for name, check in URL_CHECKS.items():  # first: no later message may repeat a secret
        if getattr(config, name) is not None:
            check(getattr(config, name))
    if config.compression not in ("gzip", "zstd"):
        raise ConfigError(f"compression {config.compression!r} is not supported",
                          "use gzip or zstd")
    if not config.storage.startswith(("file:///", "s3://", "r2://")):
        raise UsageError(f"storage {config.storage!r} is not a file:///, s3:// or r2:// URL",
                         "set LOG_ARCHIVER_STORAGE=file:///absolute/path or s3://bucket/prefix")
    problem = settings_problem({name: getattr(config, name) for name in _KEYS_OF})
    if problem is not None:
        raise ConfigError(f"setting {problem}",
                          "fix it in .log-archiver.json, the LOG_ARCHIVER_* environment or "
                          "the flags (schemas/config.schema.json gives every bound)")
    top = 22 if config.compression == "zstd" else 9
    if not 1 <= config.compression_level <= top:
        raise ConfigError(f"compression level {config.compression_level} is out of range for "
                          f"{config.compression}", f"use a level from 1 to {top}")
    if config.redaction_rules or config.redaction_allowlist:
        from log_archiver.redaction.policy import ruleset_of

        ruleset_of(config)  # a bad rule or allowlist regex stops the command here, named
    _check_store_place(config)


def _check_store_place(config: Config) -> None:
    """A file store is a folder of its own: never ``/``, the logs dir or a folder above it
    (every walk of the store would cross the whole disk, or the logs)."""
    parts = urlsplit(config.storage)
    if parts.scheme != "file":
        return
    folder = Path(os.path.realpath(unquote(parts.path) or "/"))
    logs = Path(os.path.realpath(config.logs_dir))
    if folder.parent == folder:
        reason = "the filesystem root"
    elif logs == folder:
        reason = "the logs dir"
    elif logs.is_relative_to(folder):
        reason = f"a folder holding the logs dir {logs}"
    else:
        return
    raise UsageError(f"storage {config.storage!r} is {reason}",
                     "point LOG_ARCHIVER_STORAGE (or storage in .log-archiver.json, or "
                     "--storage) at a folder of its own, e.g. file:///var/lib/log-archiver/"
                     "store")


def config_template(storage: str | None = None, logs_dir: str = "logs") -> dict:
    """The config ``init`` writes for the repository. Without ``storage`` it names no
    store: the default (:func:`default_store_url`) is this user's own folder, so it is
    resolved on each machine at run time rather than written into a shared file."""
    template = {
        "logs_dir": logs_dir,
        "storage": storage,
        "public_base_url": None,
        "compression": {"algorithm": "gzip", "level": 5, "threshold_bytes": MIB},
        "upload": {"concurrency": 4, "multipart_threshold_bytes": 64 * MIB,
                   "multipart_chunk_bytes": 16 * MIB},
        "s3": {"endpoint_url": None, "region": None, "profile": None,
               "addressing_style": None, "public": False},
        "git": {"commit": True, "untrack_cleaned_logs": True},
    }
    if storage is None:
        del template["storage"]
    return template
