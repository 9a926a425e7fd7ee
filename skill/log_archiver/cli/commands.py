"""The commands of log-archiver, by name: where each one is defined.

Read without importing click or any command's module, so a console script loads only the
command it runs.
"""

from __future__ import annotations

import importlib

# name -> "module:attribute" of this package
COMMANDS = {
    "archive": "steps:archive_command",
    "collect-logs": "steps:collect_logs_command",
    "compress-logs": "steps:compress_logs_command",
    "prepare-upload": "steps:prepare_upload_command",
    "file-manager": "steps:file_manager_group",
    "update-index": "recovery:update_index_command",
    "update-file-status": "recovery:update_file_status_command",
    "mark-partial-archive": "recovery:mark_partial_archive_command",
    "retry-failed-uploads": "recovery:retry_failed_uploads_command",
    "cleanup-local": "recovery:cleanup_local_command",
    "init": "admin:init_command",
    "validate-index": "admin:validate_index_command",
    "commit": "admin:commit_command",
    "merge-index": "admin:merge_index_command",
    "enqueue": "queue:enqueue_command",
    "worker": "queue:worker_command",
    "queue": "queue:queue_group",
    "gc": "lifecycle:gc_command",
    "hold": "lifecycle:hold_command",
    "release": "lifecycle:release_command",
    "read": "retrieve:read_command",
    "list": "retrieve:list_command",
    "restore": "retrieve:restore_command",
    "scan": "redaction:scan_command",
    "search": "search:search_command",
    "verify": "integrity:verify_command",
    "audit": "integrity:audit_command",
    "metrics": "integrity:metrics_command",
}


def load_command(spec: str):
    """The click command ``"module:attribute"`` names (a module of this package)."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(f"log_archiver.cli.{module}"), attribute)
