"""Leases: a named hold that one owner has until it lets go or stops renewing it.

A worker holds ``issue:N`` while it archives issue N, so two workers (two processes, or
two machines on one Redis) never archive the same issue at once; the index lock only
covers one machine. A lease ends by itself ``ttl`` seconds after its last renewal (a
worker on another machine that died frees its issues), and at once when its owner is a
process of this machine (same boot, same PID namespace) that no longer runs (a worker
killed with SIGKILL).

huey's ``lock_task`` does not fit: its SQLite lock has no expiry, so a killed worker
would hold an issue for ever. On Redis this is ``SET NX PX`` with compare-and-renew
scripts; on SQLite a table beside huey's, in its database.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import uuid

UNKNOWN_NAMESPACE = "?"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()[:36]
    except OSError:
        return ""


def _pid_namespace() -> str:
    """This process's PID namespace: containers on one kernel share the boot id (and may
    share the host name) but not their PIDs, so a PID means something only within it."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:  # unknown on Linux (then no PID is judged); none elsewhere
        return UNKNOWN_NAMESPACE if sys.platform.startswith("linux") else "-"


HOST = f"{socket.gethostname()}/{_boot_id()}/{_pid_namespace()}"


def new_owner() -> str:
    """An owner name: this machine (host, boot and PID namespace), this process, and a
    random tag."""
    return f"{HOST}|{os.getpid()}|{uuid.uuid4().hex[:12]}"


def owner_gone(owner: str) -> bool:
    """The owner is a process of this machine's current boot, in this PID namespace, that
    no longer runs (another namespace's, or one whose namespace is unknown, is judged by
    its lease's expiry alone)."""
    host, _, rest = str(owner).partition("|")
    pid_text = rest.partition("|")[0]
    if host != HOST or HOST.endswith(f"/{UNKNOWN_NAMESPACE}") or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


class SqliteLeases:
    DDL = ("create table if not exists lease (queue text not null, name text not null, "
           "owner text not null, expires real not null, primary key (queue, name))")

    def __init__(self, storage):
        self.storage = storage
        with storage.db(commit=True) as cursor:
            cursor.execute(self.DDL)

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self.storage.db(commit=True) as cursor:
            cursor.execute("select owner, expires from lease where queue = ? and name = ?",
                           (self.storage.name, name))
            row = cursor.fetchone()
            if row is not None and row[0] != owner and row[1] > now \
                    and not owner_gone(row[0]):
                return False
            cursor.execute("insert or replace into lease (queue, name, owner, expires) "
                           "values (?, ?, ?, ?)", (self.storage.name, name, owner, now + ttl))
            return True

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        with self.storage.db(commit=True) as cursor:
            cursor.execute("update lease set expires = ? where queue = ? and name = ? "
                           "and owner = ?", (time.time() + ttl, self.storage.name, name, owner))
            return cursor.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        with self.storage.db(commit=True) as cursor:
            cursor.execute("delete from lease where queue = ? and name = ? and owner = ?",
                           (self.storage.name, name, owner))

    def holder(self, name: str) -> str | None:
        """Who holds ``name`` now (a lease past its time, or of a gone owner, is free)."""
        rows = self.storage.sql("select owner, expires from lease where queue = ? and name = ?",
                                (self.storage.name, name), results=True)
        if not rows or rows[0][1] <= time.time() or owner_gone(rows[0][0]):
            return None
        return rows[0][0]


_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


class RedisLeases:
    def __init__(self, storage):
        self.conn = storage.conn
        self.prefix = f"huey.lease.{storage.name}."
        self._renew = self.conn.register_script(_RENEW)
        self._release = self.conn.register_script(_RELEASE)
        self._take_over = self.conn.register_script(_TAKE_OVER)

    def acquire(self, name: str, owner: str, ttl: float) -> bool:
        key, ms = self.prefix + name, max(int(ttl * 1000), 1)
        if self.conn.set(key, owner, nx=True, px=ms):
            return True
        current = self.conn.get(key)
        current = current.decode() if isinstance(current, bytes) else current
        if current == owner:
            return bool(self._renew(keys=[key], args=[owner, ms]))
        if current is not None and owner_gone(current):
            return bool(self._take_over(keys=[key], args=[current, owner, ms]))
        return current is None and bool(self.conn.set(key, owner, nx=True, px=ms))

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        return bool(self._renew(keys=[self.prefix + name],
                                args=[owner, max(int(ttl * 1000), 1)]))

    def release(self, name: str, owner: str) -> None:
        self._release(keys=[self.prefix + name], args=[owner])

    def holder(self, name: str) -> str | None:
        current = self.conn.get(self.prefix + name)
        current = current.decode() if isinstance(current, bytes) else current
        return None if current is None or owner_gone(current) else current


def leases_for(broker):
    if broker.target.kind == "sqlite":
        return SqliteLeases(broker.storage)
    return RedisLeases(broker.storage)
