"""The broker under the job queue: huey, on SQLite (embedded, the default) or Redis.

huey carries the messages (its queue, its schedule for delayed retries) and keeps the job
records in its key/value store; :mod:`.leases` adds the per-issue holds and
:mod:`.jobs` the job records. Messages are JSON, never pickle: a broker shared between
machines must not be able to run code in the worker that reads it.

Importing huey imports the redis client when it is installed (about 150 ms, more than
the whole ``enqueue`` budget); a SQLite broker does without it, so huey is imported with
redis hidden on that path.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from log_archiver.config import Config
from log_archiver.errors import ConfigError, UsageError
from log_archiver.util.paths import UnsafePath, confined
from log_archiver.util.urls import check_queue_url

QUEUE_NAME = "log_archiver"
TASK_NAME = "log_archiver.archive_issue"
RECORD_PREFIX = "job:"
PASSWORD_ENV = "LOG_ARCHIVER_REDIS_PASSWORD"


class QueueTarget:
    """Where the queue lives (a plain class: ``enqueue`` imports no dataclasses)."""

    __slots__ = ("kind", "location")

    def __init__(self, kind: str, location: str):
        self.kind = kind  # "sqlite" or "redis"
        self.location = location  # the database file, or the redis URL (no credentials)

    def __eq__(self, other):
        if not isinstance(other, QueueTarget):
            return NotImplemented
        return (self.kind, self.location) == (other.kind, other.location)

    def __hash__(self):
        return hash((self.kind, self.location))

    def __repr__(self) -> str:
        return f"QueueTarget({self.kind!r}, {self.location!r})"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.location}" if self.kind == "sqlite" else self.location


FALLBACK_QUEUE_NAME = ".log-archiver-queue.sqlite3"


def default_queue_path(config: Config) -> Path:
    """Inside the repository's own .git folder (never committed, never collected as a
    log); beside the index when ``.git`` is no folder: no git checkout, or a linked
    worktree or submodule, whose ``.git`` is a file (``init`` git-ignores it there)."""
    git_dir = config.root / ".git"
    if git_dir.is_dir():
        return git_dir / "log-archiver" / "queue.sqlite3"
    return config.logs_dir / FALLBACK_QUEUE_NAME


def queue_files_to_ignore(config: Config) -> list[Path]:
    """The SQLite queue files a clone of this repository may make in its work tree: the
    fallback beside the index (every worktree of the repository shares the .gitignore,
    whatever this one's ``.git`` is) and a configured ``sqlite:///`` file."""
    found = [config.logs_dir / FALLBACK_QUEUE_NAME]
    try:
        target = queue_target(config)
    except UsageError:  # a bad queue.url: the command that uses the queue says so
        return found
    if target.kind == "sqlite" and Path(target.location) not in found:
        found.append(Path(target.location))
    return found


def queue_target(config: Config) -> QueueTarget:
    """Where the queue lives, from ``queue.url`` (checked: it is hostile until then)."""
    url = config.queue_url
    if url is None:
        return QueueTarget("sqlite", str(default_queue_path(config)))
    check_queue_url(url)
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite":
        return QueueTarget("redis", url)
    path = rest[1:]
    if path.startswith("/"):
        return QueueTarget("sqlite", path)
    try:
        return QueueTarget("sqlite", str(confined(config.root, path)))
    except UnsafePath as error:
        raise UsageError(f"queue URL {url!r}: the path {error.reason}",
                         "give a path inside the repository, or an absolute one "
                         "(sqlite:////var/lib/log-archiver/queue.sqlite3)") from None


def _import_huey(need_redis: bool):
    if "huey" not in sys.modules and not need_redis and "redis" not in sys.modules:
        sys.modules["redis"] = None  # type: ignore[assignment]  # huey: "no redis here"
        try:
            import huey  # noqa: F401
        finally:
            del sys.modules["redis"]
    import huey
    import huey.storage

    if need_redis and huey.storage.Redis is None:  # huey came in on the SQLite path
        import redis
        import redis.exceptions

        huey.storage.Redis, huey.storage.ConnectionPool = redis.Redis, redis.ConnectionPool
        huey.storage.ConnectionError = redis.exceptions.ConnectionError
        huey.storage.TimeoutError = redis.exceptions.TimeoutError
        huey.storage.RedisStorage.redis_client = redis.Redis
    return huey


def _json_serializer(huey):
    """huey's serializer with JSON for pickle: only our one kind of message is read."""
    from datetime import datetime

    from huey.registry import Message
    from huey.serializer import Serializer

    class JsonSerializer(Serializer):
        expected = None  # the registered task's name, set once it is registered

        def _serialize(self, message) -> bytes:
            fields = message._asdict()
            if fields.get("eta") is not None:
                fields["eta"] = fields["eta"].isoformat()
            return json.dumps(fields).encode()

        def _deserialize(self, data) -> Message:
            fields = json.loads(bytes(data))
            if not isinstance(fields, dict) or fields.get("name") != self.expected \
                    or set(fields) - set(Message._fields) or not _job_args(fields.get("args")):
                raise ValueError("not a log-archiver job message")
            fields["args"] = tuple(fields["args"])
            for key in ("on_complete", "on_error", "chord_config"):
                fields[key] = None
            if fields.get("eta"):
                fields["eta"] = datetime.fromisoformat(fields["eta"])
            return Message(**fields)

    return JsonSerializer()


class Broker:
    """One queue: huey's messages and key/value store, and the leases beside them;
    ``max_pending``: the bound on waiting jobs that adding jobs again respects."""

    def __init__(self, target: QueueTarget, max_pending: int | None = None):
        self.target = target
        self.max_pending = max_pending
        huey_module = _import_huey(target.kind == "redis")
        serializer = _json_serializer(huey_module)
        if target.kind == "sqlite":
            path = Path(target.location)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise ConfigError(f"cannot create the queue folder {path.parent}: {error}",
                                  "set queue.url to a place this user can write") from None
            # fsync on every commit: an enqueued job survives a power cut
            self.huey = huey_module.SqliteHuey(QUEUE_NAME, filename=str(path), fsync=True,
                                               results=False, serializer=serializer,
                                               timeout=30)
        else:
            from redis import ConnectionPool

            pool = ConnectionPool.from_url(target.url, socket_timeout=10,
                                           socket_connect_timeout=5,
                                           password=os.environ.get(PASSWORD_ENV) or None)
            self.huey = huey_module.RedisHuey(QUEUE_NAME, connection_pool=pool, results=False,
                                              serializer=serializer, blocking=False)
        self.storage = self.huey.storage
        self.task = self.huey.task(name=TASK_NAME)(_never_called)
        serializer.expected = self.huey._registry.task_to_string(self.task.task_class)
        from log_archiver.queue.sqlite_enqueue import TASK_STRING

        if serializer.expected != TASK_STRING:  # the bytes sqlite_enqueue writes
            raise ConfigError(f"huey {huey_module.__version__} names the job task "
                              f"{serializer.expected!r}, not {TASK_STRING!r}",
                              "install the huey version pyproject.toml names")
        from log_archiver.queue.leases import leases_for

        self.leases = leases_for(self)

    # messages
    def new_message(self, job_id: str, issue: int, reason: str):
        return self.task.task_class(args=(job_id, issue, reason), id=job_id)

    def send(self, message) -> None:
        self.huey.storage.enqueue(self.huey.serialize_task(message), None)

    def send_later(self, message, seconds: float) -> None:
        import datetime

        from huey.utils import utcnow

        message.eta = utcnow() + datetime.timedelta(seconds=seconds)
        self.huey.add_schedule(message)

    def take(self):
        """The next message (a due retry first moved to the queue), or None."""
        for due in self.huey.read_schedule():
            self.send(due)
        data = self.storage.dequeue()
        if data is None:
            return None
        try:
            return self.huey.deserialize_task(data)
        except (ValueError, TypeError, KeyError) as error:
            return UnreadableMessage(bytes(data)[:200], error)

    def waiting(self) -> int:
        """Messages waiting: in the queue and scheduled for a retry."""
        return self.storage.queue_size() + self.storage.schedule_size()

    def scheduled(self) -> int:
        return self.storage.schedule_size()

    # job records (huey's key/value store)
    def put_record(self, record: dict) -> None:
        self.storage.put_data(RECORD_PREFIX + record["id"], json.dumps(record).encode())

    def get_record(self, job_id: str) -> dict | None:
        from huey.constants import EmptyData

        data = self.storage.peek_data(RECORD_PREFIX + job_id)
        return None if data is EmptyData else _record(data)

    def records(self) -> list[dict]:
        return self.records_and_ignored()[0]

    def records_and_ignored(self) -> tuple[list[dict], int]:
        """The job records, and how many records under the job prefix are none (left
        out everywhere: written by someone else, or damaged)."""
        found, ignored = [], 0
        for key, data in self.storage.result_items().items():
            key = key.decode() if isinstance(key, bytes) else key
            if not key.startswith(RECORD_PREFIX):
                continue
            if (record := _record(data)) is not None:
                found.append(record)
            else:
                ignored += 1
        return found, ignored

    def delete_record(self, job_id: str) -> None:
        self.storage.delete_data(RECORD_PREFIX + job_id)

    def close(self) -> None:
        close = getattr(self.storage, "close", None)
        if close is not None and self.target.kind == "sqlite":
            close()


class UnreadableMessage:
    """A message that is not one of ours (or was tampered with): recorded, never run."""

    def __init__(self, head: bytes, error: Exception):
        self.head, self.error = head, error


def _record(data) -> dict | None:
    """A job record as stored, or None when it is not one (see :mod:`.records`)."""
    from log_archiver.queue.records import checked_record

    try:
        return checked_record(json.loads(bytes(data)))
    except (ValueError, RecursionError):
        return None


def _job_args(args) -> bool:
    from log_archiver.queue.records import valid_job

    return isinstance(args, list) and len(args) == 3 and valid_job(*args)


def _never_called(job_id, issue, reason):  # the worker runs jobs itself (see worker.py)
    raise RuntimeError("log-archiver jobs are run by `log-archiver worker`")


def open_broker(config: Config) -> Broker:
    return Broker(queue_target(config), config.queue_max_pending)
