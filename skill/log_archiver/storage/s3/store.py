"""``s3://bucket/prefix`` and ``r2://bucket/prefix``: objects in S3-compatible storage.

AWS S3, Cloudflare R2, MinIO and SeaweedFS through boto3, imported only when a store is
first used (the CLI's cold start stays fast).

- Credentials come only from the standard AWS chain (environment, the profile named in
  the config, an instance or task role); nothing secret is read from the config.
- Every upload sends its SHA-256 for the server to check: ``ChecksumSHA256`` on a single
  PUT, one SHA-256 per part on a multipart upload (above ``multipart_threshold_bytes``).
  The full-object digest also goes into ``x-amz-meta-sha256``: a multipart checksum is a
  checksum of checksums. That metadata describes the object; it proves nothing (see
  :mod:`log_archiver.storage.verify`): ``head`` says which SHA-256 the server computed.
  The caller's metadata (what log the object holds, see
  :mod:`log_archiver.model.object_metadata`) goes beside it as ``x-amz-meta-*``.
- Writes are conditional (``If-None-Match: *`` on PUT and on CompleteMultipartUpload):
  a different object at the key is never replaced unless ``overwrite`` is asked for.
  AWS S3, R2, MinIO and SeaweedFS 4.x answer 412; the HEAD before each upload handles
  the common case, the 412 a writer that raced us.
- botocore's own retries are off (:class:`log_archiver.storage.wrappers.RetryingStore`
  retries) and every botocore error becomes a :mod:`log_archiver.errors` error with
  ``__cause__`` set (:mod:`.errors`); a retry after a timeout gets a longer one
  (:meth:`with_timeout`).
- A multipart upload a killed process or a dead server left incomplete still holds its
  parts: a later successful upload of the key aborts the ones started before it, and
  ``cleanup-local --orphans`` aborts old ones anywhere under the prefix
  (:meth:`abandoned_uploads`, :meth:`discard`).
- Secrets never reach a message, and are masked in the AWS libraries' logs
  (:mod:`.log_masking`).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from log_archiver.errors import (
    ArchiveError,
    ChecksumMismatchError,
    ConfigError,
    LocalFileError,
    StorageConflictError,
    StorageTransientError,
    UsageError,
)
from log_archiver.storage.base import (
    AbandonedUpload,
    Capabilities,
    ObjectInfo,
    PutOutcome,
    check_folder_prefix,
    clean_metadata,
)
from log_archiver.storage.s3.errors import is_412, status_of
from log_archiver.storage.s3.files import BLOCK_SIZE, check_local
from log_archiver.storage.s3.object_lock import ObjectLock
from log_archiver.storage.s3.transfer import server_sha256, sha256_of

if TYPE_CHECKING:
    from log_archiver.config import Config

MIB, MIN_PART_BYTES = 1 << 20, 5 << 20  # S3's smallest part (all parts but the last)
_HEX64 = re.compile(r"[0-9a-f]{64}")


class S3Store(ObjectLock):
    """A bucket (and optional prefix) as the store; keys are relative to the prefix."""

    capabilities = Capabilities(server_checksums=True, conditional_writes=True,
                                abandoned_uploads=True, adjustable_timeouts=True, object_lock=True)

    def __init__(self, bucket: str, prefix: str = "", *, scheme: str = "s3",
                 endpoint_url: str | None = None, region: str | None = None,
                 profile: str | None = None, addressing_style: str | None = None,
                 public: bool = False, public_base_url: str | None = None,
                 multipart_threshold_bytes: int = 64 * MIB,
                 multipart_chunk_bytes: int = 16 * MIB, upload_concurrency: int = 4,
                 connect_timeout: float = 10.0, read_timeout: float = 60.0):
        self.scheme, self.bucket, self.prefix = scheme, bucket, prefix.strip("/")
        self.url = f"{scheme}://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.endpoint_url, self.region, self.profile = endpoint_url, region, profile
        self.addressing_style = addressing_style
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.multipart_threshold = max(1, multipart_threshold_bytes)
        self.multipart_chunk = max(MIN_PART_BYTES, multipart_chunk_bytes)
        self.concurrency = max(1, upload_concurrency)
        self.timeouts = (connect_timeout, read_timeout)
        self.list_page_size = 1000
        # R2 has no object ACLs (public access is a bucket setting); elsewhere objects
        # are private by default, so only a public store sends an ACL.
        self._acl = {"ACL": "public-read"} if public and scheme == "s3" else {}
        self._client_obj: Any = None
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._twins: dict[float, S3Store] = {}

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint_url={self.endpoint_url!r})"

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> S3Store:
        parts = urlsplit(url)
        if parts.scheme not in ("s3", "r2") or not parts.netloc:
            raise UsageError(f"storage URL {url!r} is not an s3:// or r2:// URL with a bucket",
                             "use s3://bucket/optional/prefix or r2://bucket/optional/prefix")

        from log_archiver.config import Config

        settings = config if config is not None else Config(root=Path("."),
                                                             logs_dir=Path("logs"))
        endpoint, region = settings.endpoint_url, settings.region
        if parts.scheme == "r2":
            region, account = region or "auto", settings.r2_account_id
            if not endpoint and account:
                endpoint = f"https://{account}.r2.cloudflarestorage.com"
            if not (endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL")):
                raise ConfigError(
                    f"storage URL {url!r} is on R2 but no R2 account or endpoint is set",
                    "set s3.r2_account_id (or s3.endpoint_url) in .log-archiver.json, or "
                    "AWS_ENDPOINT_URL=https://ACCOUNT.r2.cloudflarestorage.com")
        sizes = {} if config is None else dict(
            multipart_threshold_bytes=config.multipart_threshold_bytes,
            multipart_chunk_bytes=config.multipart_chunk_bytes,
            upload_concurrency=config.upload_concurrency)
        return cls(parts.netloc, parts.path, scheme=parts.scheme, endpoint_url=endpoint,
                   region=region, profile=settings.profile,
                   addressing_style=settings.addressing_style, public=bool(settings.public),
                   public_base_url=settings.public_base_url, **sizes)

    @property
    def read_timeout(self) -> float:
        """Where a retry's timeout starts (``capabilities.adjustable_timeouts``)."""
        return self.timeouts[1]

    def with_timeout(self, read_timeout: float) -> S3Store:
        """The same store with another read timeout (for ``RetryPolicy.run(call(timeout))``).

        One twin per timeout, kept: retries do not build a new client each time.
        """
        if read_timeout == self.timeouts[1]:
            return self
        with self._lock:
            twin = self._twins.get(read_timeout)
            if twin is None:
                twin = copy.copy(self)
                twin.timeouts = (self.timeouts[0], read_timeout)
                twin._client_obj, twin._lock, twin._twins = None, threading.Lock(), {}
                self._twins[read_timeout] = twin
            return twin

    @property
    def _client(self) -> Any:
        with self._lock:
            if self._client_obj is None:
                self._client_obj = self._make_client()
            return self._client_obj

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import ConfigParseError, ProfileNotFound

        try:
            session = boto3.Session(profile_name=self.profile)
        except (ProfileNotFound, ConfigParseError) as error:
            raise ConfigError(f"AWS profile {self.profile!r} cannot be loaded: {error}",
                              "fix s3.profile in .log-archiver.json or AWS_PROFILE, or the "
                              "~/.aws/config file") from error
        credentials = session.get_credentials()  # errors are translated by the caller
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            self._secrets = tuple(v for v in (frozen.secret_key, frozen.token) if v)
        config = BotoConfig(
            region_name=self.region_name(session),
            retries={"mode": "standard", "total_max_attempts": 1},  # RetryPolicy retries
            connect_timeout=self.timeouts[0], read_timeout=self.timeouts[1],
            max_pool_connections=max(10, 4 * self.concurrency), tcp_keepalive=True,
            s3={"addressing_style": self.addressing_style} if self.addressing_style else None,
            # We send ChecksumSHA256 ourselves; no extra CRC32 trailers for other servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_supported")
        client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        self.endpoint_url = client.meta.endpoint_url
        from log_archiver.storage.s3.log_masking import hide_in_logs

        hide_in_logs(self._secrets)
        return client

    def region_name(self, session: Any) -> str:
        """The config's region, else ``AWS_REGION`` (which boto3 itself ignores), else
        boto3's chain (``AWS_DEFAULT_REGION``, the profile), else us-east-1."""
        return (self.region or os.environ.get("AWS_REGION") or session.region_name
                or "us-east-1")

    def _key(self, key: str) -> str:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise UsageError(f"storage key {key!r} is not a clean relative path",
                             "use keys like archive/logs/2025/01/123/build.log")
        return f"{self.prefix}/{key}" if self.prefix else key

    def url_for(self, key: str) -> str:
        return f"{self.url}/{key}"

    def public_url_for(self, key: str) -> str | None:
        """``public_base_url`` is the public address of the store root (bucket + prefix)."""
        return f"{self.public_base_url}/{quote(key)}" if self.public_base_url else None

    # -- primitives ------------------------------------------------------------------

    def put(self, key: str, path: Path, *, sha256: str, size: int, overwrite: bool = False,
            metadata: Mapping[str, str] | None = None) -> PutOutcome:
        full, sha256, path = self._key(key), sha256.lower(), Path(path)
        if not _HEX64.fullmatch(sha256):
            raise UsageError(f"sha256 {sha256!r} is not a 64-digit hex digest",
                             "pass the bare hex digest of the file (sha256sum FILE)")
        extra = clean_metadata(metadata)
        check_local(path, size, sha256)
        existing = self.head(key)
        if existing is not None:
            if (existing.size, existing.sha256) == (size, sha256):
                return "exists"
            if not overwrite:
                raise self._conflict(key, existing, sha256, size)
        with self._errors("upload", key):
            try:
                self._upload(full, path, sha256, size, conditional=existing is None,
                             metadata=extra)
            except Exception as error:
                if existing is not None or not is_412(error):
                    raise
                now = self.head(key)  # another writer got there between HEAD and PUT
                if now is not None and (now.size, now.sha256) == (size, sha256):
                    return "exists"
                if now is None:
                    raise StorageTransientError(
                        f"{self.url_for(key)} changed while uploading (412, then gone)",
                        "another writer is using this key; try again") from error
                if not overwrite:
                    raise self._conflict(key, now, sha256, size) from error
                self._upload(full, path, sha256, size, conditional=False, metadata=extra)
                return "replaced"
        return "created" if existing is None else "replaced"

    def head(self, key: str) -> ObjectInfo | None:
        full = self._key(key)
        with self._errors("inspect", key):
            try:
                reply = self._client.head_object(Bucket=self.bucket, Key=full,
                                                 ChecksumMode="ENABLED")
            except Exception as error:
                if status_of(error) == 404:
                    return None
                raise
        modified = reply.get("LastModified")
        server = server_sha256(reply)
        return ObjectInfo(key, int(reply["ContentLength"]), server or sha256_of(reply),
                          metadata=dict(reply.get("Metadata") or {}),
                          modified=modified.timestamp() if modified else None,
                          sha256_by_server=server is not None,
                          composite=self._composite(full, key, reply))

    def _composite(self, full: str, key: str, reply: dict) -> tuple[str, int, int] | None:
        """A multipart object's composite SHA-256 with its part count and part size (one
        more HEAD, of part 1: only large objects have parts)."""
        value = reply.get("ChecksumSHA256") or ""
        digest, dash, count = value.rpartition("-")
        if not (dash and count.isdigit() and int(count) > 0) \
                or reply.get("ChecksumType") not in (None, "COMPOSITE"):
            return None
        with self._errors("inspect", key):
            first = self._client.head_object(Bucket=self.bucket, Key=full, PartNumber=1)
        if first.get("ETag") != reply.get("ETag"):
            return None  # replaced between the two HEADs
        return digest, int(count), int(first["ContentLength"])

    def get(self, key: str, dest: Path) -> None:
        dest = Path(dest)
        # Not named after dest: a name of 255 bytes leaves no room for a suffix.
        temp = dest.with_name(f".la-get-{os.getpid()}-{os.urandom(4).hex()}.part")
        try:
            self._read(key, temp)
            os.replace(temp, dest)
        except ArchiveError:
            raise
        except OSError as error:
            raise LocalFileError(f"cannot write {dest}: {error.strerror or error}",
                                 f"make {dest.parent} writable and free space") from error
        finally:
            temp.unlink(missing_ok=True)

    def digest(self, key: str) -> tuple[int, str]:
        return self._read(key, None, check=False)
    from log_archiver.storage.s3.ranged import get_range  # a method: one ranged GET

    def _read(self, key: str, dest: Path | None, check: bool = True) -> tuple[int, str]:
        """Stream the object (to ``dest``, if given), hashing it; with ``check``, the
        bytes must have the SHA-256 the store has for the object (the server's own, else
        the one recorded when it was written)."""
        full = self._key(key)
        # botocore errors (some are OSErrors too) are translated here, local ones above
        with self._errors("download", key):
            reply = self._client.get_object(Bucket=self.bucket, Key=full,
                                            ChecksumMode="ENABLED")
            expected = server_sha256(reply) or sha256_of(reply)
            length = int(reply["ContentLength"])
            digest, written = hashlib.sha256(), 0
            out = open(dest, "wb") if dest is not None else None  # noqa: SIM115
            try:
                for chunk in reply["Body"].iter_chunks(BLOCK_SIZE):
                    if out is not None:
                        out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                if out is not None:
                    out.flush()
                    os.fsync(out.fileno())
            finally:
                if out is not None:
                    out.close()
        if written != length or (check and expected and digest.hexdigest() != expected):
            raise ChecksumMismatchError(
                f"downloaded {self.url_for(key)} is {written} bytes sha256 "
                f"{digest.hexdigest()}, the store says {length} bytes sha256 {expected}",
                "download it again; if it keeps failing the stored object is damaged")
        return written, digest.hexdigest()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        cut = len(self.prefix) + 1 if self.prefix else 0
        with self._errors("list", prefix or None):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full_prefix,
                PaginationConfig={"PageSize": self.list_page_size})
            for page in pages:
                for item in page.get("Contents", []):
                    modified = item.get("LastModified")
                    yield ObjectInfo(item["Key"][cut:], int(item["Size"]), None,
                                     modified=modified.timestamp() if modified else None)

    def list_folders(self, prefix: str) -> list[str]:
        check_folder_prefix(prefix)
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        names = []
        with self._errors("list", prefix or None):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full_prefix, Delimiter="/",
                PaginationConfig={"PageSize": self.list_page_size})
            for page in pages:
                for item in page.get("CommonPrefixes", []):
                    name = item["Prefix"][len(full_prefix):-1]
                    if name:
                        names.append(name)
        return sorted(names)

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors("delete", key):
            try:
                self._client.delete_object(Bucket=self.bucket, Key=full)
            except Exception as error:
                if status_of(error) != 404:
                    raise

    def abandoned_uploads(self) -> list[AbandonedUpload]:
        """Every incomplete multipart upload under the prefix (see :mod:`.s3multipart`)."""
        from log_archiver.storage.s3.multipart import incomplete_uploads

        with self._errors("list uploads", None):
            return incomplete_uploads(self._client, self.bucket, self.prefix, self.url)

    def discard(self, abandoned: AbandonedUpload) -> None:
        """Abort one incomplete multipart upload (gone already is not an error)."""
        from log_archiver.storage.s3.multipart import abort

        with self._errors("abort upload", None):
            abort(self._client, self.bucket, abandoned)

    # -- uploads (:mod:`.transfer`) ---------------------------------------------------

    def _upload(self, full: str, path: Path, sha256: str, size: int, *,
                conditional: bool, metadata: Mapping[str, str] | None = None) -> None:
        from log_archiver.storage.s3.transfer import upload

        upload(self, full, path, sha256, size, conditional=conditional, metadata=metadata)

    def _conflict(self, key: str, existing: ObjectInfo, sha256: str,
                  size: int) -> StorageConflictError:
        return StorageConflictError(
            f"{self.url_for(key)} already holds a different object (size {existing.size}, "
            f"sha256 {existing.sha256 or 'unknown'}); the upload has size {size}, "
            f"sha256 {sha256}",
            "nothing was overwritten; inspect the stored object, then re-archive with "
            "--force to replace it")

    # -- errors ----------------------------------------------------------------------

    @contextmanager
    def _errors(self, action: str, key: str | None) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError) as error:
            raise self._translate(error, action, key) from error

    def _translate(self, error: Exception, action: str, key: str | None) -> ArchiveError:
        from log_archiver.storage.s3.errors import translate

        return translate(error, action=action, where=self.url_for(key) if key else self.url,
                         endpoint_url=self.endpoint_url, profile=self.profile,
                         bucket=self.bucket, secrets=self._secrets)
