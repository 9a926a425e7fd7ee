"""The kinds of log, the folder under the logs dir each lives in, and how a file name in
that folder is matched to an issue."""

from __future__ import annotations

from log_archiver.model.issues import prefixed_matches, session_matches

LOG_TYPES = {
    "sessions": ("session", session_matches),
    "builds": ("build", prefixed_matches),
    "deployments": ("deployment", prefixed_matches),
    "debug": ("debug", prefixed_matches),
}
FOLDERS = {log_type: folder for folder, (log_type, _match) in LOG_TYPES.items()}
