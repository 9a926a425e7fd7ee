"""Keep credentials out of logs: botocore's debug log prints request headers, and with
them a session token (``X-Amz-Security-Token``).

The library configures no logging itself; an application that turns on DEBUG for
botocore would still write the token to its logs. Every logger of boto3, botocore,
s3transfer and urllib3 gets a filter that replaces each known secret with ``***`` before
any handler sees the record.
"""

from __future__ import annotations

import logging
import threading

LIBRARIES = ("boto3", "botocore", "s3transfer", "urllib3")
MASK = "***"


class SecretFilter(logging.Filter):
    """Rewrites a record's message with every registered secret masked."""

    def __init__(self) -> None:
        super().__init__("log-archiver-secrets")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the handler's problem
            return True
        masked = text
        for secret in self.secrets:
            masked = masked.replace(secret, MASK)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_FILTER = SecretFilter()
_LOCK = threading.Lock()


def hide_in_logs(secrets) -> None:
    """Mask ``secrets`` in every record the AWS libraries log from now on."""
    with _LOCK:
        _FILTER.secrets.update(s for s in secrets if s and len(s) >= 8)
        names = [name for name in list(logging.root.manager.loggerDict)
                 if name.split(".", 1)[0] in LIBRARIES]
        for name in (*LIBRARIES, *names):
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
