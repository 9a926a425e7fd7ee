"""The kinds of log, the folder under the logs dir each lives in, and how a file name in
that folder is matched to an issue."""

from __future__ import annotations

from log_archiver.model.issues import session_matches


def numbered_matches(name: str, issue: int) -> bool:
    """Build, deployment and debug logs: ``N-*`` and also ``N_*``, ``N.*`` or ``N``."""
    number = str(issue)
    if not name.startswith(number):
        return False
    rest = name[len(number):]  # every name prefixed_matches accepts is accepted here too
    return not rest or (len(rest) > 1 and rest[0] in "-_.")


LOG_TYPES = {
    "sessions": ("session", session_matches),
    "builds": ("build", numbered_matches),
    "deployments": ("deployment", numbered_matches),
    "debug": ("debug", numbered_matches),
}
FOLDERS = {log_type: folder for folder, (log_type, _match) in LOG_TYPES.items()}
