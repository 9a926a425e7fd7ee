"""S3 Object Lock: legal holds on the objects of an entry on hold (``hold``/``release``).

A bucket created with Object Lock enabled lets a legal hold be put on each object version:
while it is ON, no client (not even this tool) can delete that version. Whether a bucket
has it is asked with ``GetObjectLockConfiguration``; a bucket without it answers
``ObjectLockConfigurationNotFoundError`` (AWS, MinIO, SeaweedFS). Putting a legal hold needs
``s3:PutObjectLegalHold`` (and reading the setting ``s3:GetBucketObjectLockConfiguration``).

Mixed into :class:`log_archiver.storage.s3.store.S3Store`, which declares
``Capabilities.object_lock``.
"""

from __future__ import annotations

from log_archiver.storage.s3.errors import status_of

_NOT_CONFIGURED = ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration",
                   "NotImplemented", "MethodNotAllowed")


class ObjectLock:
    bucket: str

    def object_lock_status(self) -> tuple[bool, str]:
        """Whether the bucket has Object Lock enabled, and that in words."""
        from botocore.exceptions import ClientError

        with self._errors("read the Object Lock configuration of", None):
            try:
                reply = self._client.get_object_lock_configuration(Bucket=self.bucket)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code")
                if code in _NOT_CONFIGURED or status_of(error) == 501:
                    return False, (f"bucket {self.bucket} has no Object Lock (it must be "
                                   "created with Object Lock enabled)")
                raise
        enabled = (reply.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled")
        if enabled == "Enabled":
            return True, f"bucket {self.bucket} has Object Lock enabled"
        return False, f"bucket {self.bucket} has Object Lock configured but not enabled"

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put (``on``) or lift the S3 legal hold of the current version of ``key``."""
        with self._errors("set the legal hold of", key):
            self._client.put_object_legal_hold(
                Bucket=self.bucket, Key=self._key(key),
                LegalHold={"Status": "ON" if on else "OFF"})
