"""S3 answers that moto 5.2.1 builds incompletely or unlike S3, amended before they are serialized.

SSE-KMS ETags that are not MD5s, RestoreStatus in listings, EventBridgeConfiguration in the bucket's
notification configuration, Intelligent-Tiering archive tiers, and multipart uploads' real creation times.
"""

import hashlib
import os
from typing import Any
from urllib.parse import unquote


def answer_with(response: Any, handler: Any, amend: Any) -> Any:
    """Run a moto S3Response handler with `amend` applied to its result (the dict it builds) before that
    result is serialized, for answers moto builds incompletely."""
    serialize = response.serialized

    def amended(result: Any) -> Any:
        return serialize(amend(result))

    response.serialized = amended
    try:
        return handler(response)
    finally:
        del response.serialized


def kms_etags_are_not_md5() -> None:
    """Give SSE-KMS objects and parts an ETag that is not the MD5 of their bytes, as S3 does.

    Each upload gets its own (random) ETag, stable for the object's life, so If-Match still pins it; a
    multipart object's ETag is still built from its parts' ETags, which are then not MD5s either. moto
    encrypts a multipart upload's parts only when CreateMultipartUpload names SSE-KMS; S3 also applies the
    bucket's default encryption to them, so the default is applied here too.
    """
    from moto.s3.models import FakeKey, S3Backend

    create_upload = S3Backend.create_multipart_upload

    def create_multipart_upload(self: S3Backend, bucket_name: str, *args: Any, **kwargs: Any) -> Any:
        upload = create_upload(self, bucket_name, *args, **kwargs)
        default = (self.get_bucket(bucket_name).encryption or {}).get("Rule", {})
        by_default = default.get("ApplyServerSideEncryptionByDefault", {})
        if upload.sse_encryption is None and by_default.get("SSEAlgorithm", "").startswith("aws:kms"):
            upload.sse_encryption = by_default["SSEAlgorithm"]
            upload.kms_key_id = by_default.get("KMSMasterKeyID")
        return upload

    S3Backend.create_multipart_upload = create_multipart_upload  # type: ignore[method-assign]

    plain = FakeKey.etag.fget

    def etag(self: FakeKey) -> str:
        encrypted = (getattr(self, "encryption", None) or "").startswith("aws:kms")
        if encrypted and self._etag is None:
            self._etag = hashlib.md5(b"sse-kms" + os.urandom(16)).hexdigest()
        return plain(self)

    FakeKey.etag = property(etag)  # type: ignore[method-assign, assignment]


def restore_status_in_listings() -> None:
    """Answer ListObjectsV2's x-amz-optional-object-attributes: RestoreStatus as S3 does: each object with a
    restore requested gets RestoreStatus (IsRestoreInProgress, and RestoreExpiryDate once restored)."""
    from moto.s3.responses import S3Response

    list_objects = S3Response.list_objects_v2

    def list_objects_v2(self: S3Response) -> Any:
        asked = self.headers.get("x-amz-optional-object-attributes", "")
        if "RestoreStatus" not in asked:
            return list_objects(self)
        def with_restore_status(result: Any) -> Any:
            url_encoded = result.result.get("EncodingType") == "url"
            for item in result.result.get("Contents", []):
                name = unquote(item["Key"]) if url_encoded else item["Key"]
                key = self.backend.get_object(self.bucket_name, name)
                if key is None or getattr(key, "_expiry", None) is None:
                    continue
                if key.status == "IN_PROGRESS":
                    item["RestoreStatus"] = {"IsRestoreInProgress": True}
                else:
                    item["RestoreStatus"] = {"IsRestoreInProgress": False, "RestoreExpiryDate": key._expiry}
            return result

        return answer_with(self, list_objects, with_restore_status)

    S3Response.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]


def event_bridge_in_notifications() -> None:
    """Answer GetBucketNotificationConfiguration with EventBridgeConfiguration when the bucket has it."""
    from moto.s3.responses import S3Response

    get_notification = S3Response.get_bucket_notification

    def get_bucket_notification(self: S3Response) -> Any:
        stored = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if stored is None or stored.event_bridge is None:
            return get_notification(self)

        def with_event_bridge(result: Any) -> Any:
            result.result["EventBridgeConfiguration"] = {}
            return result

        return answer_with(self, get_notification, with_event_bridge)

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


ARCHIVE_ACCESS_TIERS = ("ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS")


def intelligent_tiering_archives() -> None:
    """An object moved to an Intelligent-Tiering archive tier (sandbox_archive_tier, set by
    /_sandbox/archive-object) is refused on GET with 403 InvalidObjectState, and HEAD names the tier in
    x-amz-archive-status, as S3 does; its listing still says INTELLIGENT_TIERING."""
    from moto.s3.exceptions import InvalidObjectState
    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    headers = FakeKey.response_dict.fget

    def response_dict(self: FakeKey) -> Any:
        answer = headers(self)
        tier = getattr(self, "sandbox_archive_tier", None)
        if tier:
            answer["x-amz-archive-status"] = tier
        return answer

    get_object = S3Response.get_object

    def refuse_archived(self: S3Response) -> Any:
        key = self.backend.get_object(self.bucket_name, self.parse_key_name())
        if key is not None and getattr(key, "sandbox_archive_tier", None):
            raise InvalidObjectState(storage_class=key.storage_class)
        return get_object(self)

    FakeKey.response_dict = property(response_dict)  # type: ignore[method-assign, assignment]
    S3Response.get_object = refuse_archived  # type: ignore[method-assign]


def real_upload_times() -> None:
    from datetime import datetime, timezone

    from moto.s3.models import FakeMultipart
    from moto.s3.responses import S3Response

    create = FakeMultipart.__init__

    def __init__(self: FakeMultipart, *args: Any, **kwargs: Any) -> None:
        create(self, *args, **kwargs)
        self.sandbox_initiated = datetime.now(timezone.utc).isoformat(timespec="milliseconds")

    list_uploads = S3Response.list_multipart_uploads

    def list_multipart_uploads(self: S3Response) -> Any:
        initiated = {
            upload.id: getattr(upload, "sandbox_initiated", None)
            for upload in self.backend.list_multipart_uploads(self.bucket_name).values()
        }
        def with_times(result: Any) -> Any:
            for upload in result.result.get("Uploads", []):
                upload["Initiated"] = initiated.get(upload["UploadId"]) or upload["Initiated"]
            return result

        return answer_with(self, list_uploads, with_times)

    FakeMultipart.__init__ = __init__  # type: ignore[method-assign]
    S3Response.list_multipart_uploads = list_multipart_uploads  # type: ignore[method-assign]
