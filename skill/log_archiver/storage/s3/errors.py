"""What each boto3 / botocore failure means for the archive: the error to raise.

Throttling and 5xx are transient (retried by :class:`log_archiver.util.retry.RetryPolicy`),
bad credentials and access denied are permanent, a missing bucket is not-found, and a
wrong checksum is a mismatch. Messages name the object and the endpoint, never a secret.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from log_archiver.errors import (
    ArchiveError,
    ChecksumMismatchError,
    ClockSkewError,
    StorageError,
    StorageNotFoundError,
    StoragePermissionError,
    StorageThrottledError,
    StorageTimeoutError,
    StorageTransientError,
)

THROTTLE_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestThrottled",
                  "RequestLimitExceeded", "TooManyRequests", "TooManyRequestsException",
                  "BandwidthLimitExceeded", "ServiceUnavailable"}
PERMISSION_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AccountProblem",
                    "AllAccessDisabled", "InvalidSecurity"}
# What a refused signature may be called (a HEAD's answer has no body, so no code at all)
SIGNATURE_CODES = {"SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId", ""}
SKEW_SECONDS = 5 * 60  # S3 refuses requests signed 15 minutes off; less is noticed too
CHECKSUM_CODES = {"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest", "InvalidChecksum"}


def code_of(error: Exception) -> str:
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


def status_of(error: Exception) -> int:
    meta = (getattr(error, "response", None) or {}).get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode") or 0)


def clock_skew(error: Exception, now: float | None = None) -> float | None:
    """Seconds the server's clock is ahead of ours, from the reply's ``Date`` header."""
    from email.utils import parsedate_to_datetime

    meta = (getattr(error, "response", None) or {}).get("ResponseMetadata", {})
    date = (meta.get("HTTPHeaders") or {}).get("date")
    try:
        server = parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return server - (time.time() if now is None else now)


def _amount(seconds: float) -> str:
    seconds = int(round(abs(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes or hours:
        parts.append(f"{minutes} min")
    if not hours:
        parts.append(f"{secs} s")
    return " ".join(parts)


def is_412(error: Exception) -> bool:
    return code_of(error) == "PreconditionFailed" or status_of(error) == 412


def translate(error: Exception, *, action: str, where: str, endpoint_url: str | None,
              profile: str | None, bucket: str, secrets: tuple[str, ...] = ()) -> ArchiveError:
    """The library error for a boto3/botocore error (secrets masked); the caller chains it."""
    from botocore import exceptions as bx

    parts = urlsplit(endpoint_url or "")  # never show user:password@ of a URL
    endpoint = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl() \
        if endpoint_url else "the default AWS endpoint"
    head = f"cannot {action} {where} at {endpoint}"
    text = str(error)
    for secret in secrets:
        text = text.replace(secret, "***")
    if isinstance(error, (bx.ReadTimeoutError, bx.ConnectTimeoutError)):
        return StorageTimeoutError(f"{head}: {type(error).__name__}",
                                   f"check that {endpoint} is reachable; the call is "
                                   "retried with a longer timeout")
    if isinstance(error, bx.SSLError):
        return StorageError(f"{head}: TLS failed: {text}",
                            "check the endpoint URL (https or http) and its certificate")
    if isinstance(error, (bx.ConnectionError, bx.HTTPClientError)):
        return StorageTransientError(f"{head}: {type(error).__name__}",
                                     f"check that {endpoint} is up and reachable; the "
                                     "call is retried with the network backoff")
    if isinstance(error, (bx.FlexibleChecksumError, bx.ChecksumError)):
        return ChecksumMismatchError(f"{head}: {text}", "download it again; if it "
                                     "persists the stored object is damaged")
    if isinstance(error, (bx.NoCredentialsError, bx.PartialCredentialsError,
                          bx.CredentialRetrievalError)):
        return StoragePermissionError(
            f"{head}: no usable AWS credentials ({type(error).__name__})",
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or s3.profile, "
            "or run where an IAM role is available")
    if not isinstance(error, bx.ClientError):
        return StorageError(f"{head}: {text}",
                            "check the storage settings (endpoint, region, bucket)")
    code, status = code_of(error), status_of(error)
    message = error.response.get("Error", {}).get("Message") or ""
    for secret in secrets:
        message = message.replace(secret, "***")
    said = f"HTTP {status}" if code in ("", str(status)) else f"{code} (HTTP {status})"
    detail = f"{head}: {said}" + (f": {message}" if message else "")
    if code in THROTTLE_CODES or status in (429, 503):
        return StorageThrottledError(detail, "the server asks to slow down; the call is "
                                     "retried with the throttle backoff (or lower the "
                                     "upload concurrency)")
    if code in CHECKSUM_CODES:
        return ChecksumMismatchError(detail, "the server got bytes that do not match the "
                                     "SHA-256; if the local file changed, run "
                                     "prepare-upload again, else retry")
    skew = clock_skew(error)
    if code == "RequestTimeTooSkewed" or (
            status in (401, 403) and (code in SIGNATURE_CODES or code == str(status))
            and skew is not None
            and abs(skew) >= SKEW_SECONDS):
        return ClockSkewError(
            f"{head}: the local clock is off: {said}"
            + (f"; this machine's clock is {_amount(skew)} {'behind' if skew > 0 else 'ahead of'}"
               " the server's (its reply's Date header)" if skew is not None else ""),
            "sync the clock with NTP (e.g. `sudo timedatectl set-ntp true`, or "
            "`sudo chronyc makestep`), then run the command again; the credentials are "
            "not the problem")
    if code in PERMISSION_CODES or status in (401, 403):
        return StoragePermissionError(
            detail, f"check the AWS credentials (profile {profile!r}) and that they "
            f"may {action} objects in bucket {bucket!r}; retrying will not help")
    if code == "NoSuchBucket":
        return StorageNotFoundError(
            f"{head}: bucket {bucket!r} does not exist",
            f"create it (aws s3 mb s3://{bucket} --endpoint-url {endpoint}) or fix "
            "the bucket in the storage URL")
    if code in ("NoSuchKey", "NotFound") or status == 404:
        return StorageNotFoundError(f"no stored object {where} ({said})",
                                    "check the key with `log-archiver read`")
    if code == "RequestTimeout" or status == 408:
        return StorageTimeoutError(detail, "the call is retried with a longer timeout")
    if code in ("ConditionalRequestConflict", "OperationAborted") or status >= 500:
        return StorageTransientError(detail, "a server-side error; the call is retried "
                                     "with the network backoff")
    return StorageError(detail, "check the storage settings and the bucket; retrying "
                                "will not help")
