"""Which events are changes to the archive, and the audit line each becomes.

Subscribed to a command's :class:`~log_archiver.events.Events` when its repository is
built (not in a dry run, which changes nothing). Events that describe work in progress
(``stage``, ``files.planned``, ``file.compressed``...) leave no line.
"""

from __future__ import annotations

from log_archiver.audit.trail import AuditTrail
from log_archiver.events import Event

# event name -> audit operation
OPERATIONS = {
    "file.uploaded": "upload",
    "file.deleted": "delete_local",
    "object.deleted": "delete_object",
    "entry.held": "hold",
    "entry.released": "release",
    "file.restored": "restore",
    "index.repaired": "repair",          # the op field says which repair
    "issue.archived": "archive",
    "archive.verified": "verify",
    "gc.finished": "gc",
}
# fields that are the line's own columns, not details
_COLUMNS = ("checksum", "outcome")


def line_of(event: Event) -> dict | None:
    """The audit line's fields for ``event`` (``op``, ``issue``, ...), or None."""
    fields = dict(event.fields)
    if event.name == "file.failed":
        if fields.get("step") != "upload":
            return None  # a log that could not be compressed changed nothing
        op, outcome = "upload", "failed"
    elif event.name in OPERATIONS:
        op = OPERATIONS[event.name]
        outcome = fields.pop("outcome", None) or fields.pop("status", None) or "ok"
        if event.name == "index.repaired":
            op = fields.pop("op", None) or op
    else:
        return None
    fields.pop("outcome", None)
    return {"op": op, "issue": event.issue, "file": event.path,
            "bytes": event.bytes, "checksum": fields.pop("checksum", None),
            "outcome": str(outcome), **{k: v for k, v in fields.items() if k not in _COLUMNS}}


class AuditListener:
    """Writes the line of every event that changes the archive to ``trail``."""

    describes = "the audit trail (a line of what changed was not written)"

    def __init__(self, trail: AuditTrail):
        self.trail = trail

    def __call__(self, event: Event) -> None:
        line = line_of(event)
        if line is not None:
            self.trail.record(line.pop("op"), **line)
