"""CopyObject and UploadPartCopy as S3 treats them: the copy source is authorized (across accounts by its
bucket's policy too), its If-Match and the destination's conditions are evaluated, and tags are copied
and read from the bucket owner's store.
"""

from typing import Any
from urllib.parse import unquote


def copy_sources_as_s3_does() -> None:
    """CopyObject and UploadPartCopy as S3 treats them, where moto 5.2.1 does not:
    - the caller must be allowed s3:GetObject on the copy source (and s3:GetObjectTagging when the tags are
      copied), by its identity policy and, across accounts, by the source bucket's policy; moto authorizes
      only the destination write;
    - x-amz-copy-source-if-match is evaluated (412 when the source's ETag differs); moto ignores it;
    - If-None-Match: * and If-Match on the destination of a CopyObject are evaluated, as on PutObject.
    - TaggingDirective COPY (the default) copies the source's tags; moto copies none.
    - GetObjectTagging across accounts reads the caller's account's tag store, so another account's
      object looks untagged; tags are kept with the bucket's owner.
    x-amz-copy-source-range moto already honours (a test checks the bytes).
    """
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import S3IAMRequest
    from moto.s3.exceptions import MissingKey, PreconditionFailed
    from moto.s3.models import s3_backends
    from moto.s3.responses import S3Response

    from moto import settings

    def owner_backend(bucket: str) -> Any:
        partition, account = s3_backends.bucket_accounts[bucket]
        return s3_backends[account][partition]

    from moto.s3.models import S3Backend

    original_get_tagging = S3Backend.get_object_tagging

    def get_object_tagging(self: S3Backend, key: Any) -> Any:
        owner = owner_backend(key.bucket_name) if key.bucket_name in s3_backends.bucket_accounts else self
        return original_get_tagging(owner, key)

    S3Backend.get_object_tagging = get_object_tagging  # type: ignore[method-assign]

    original = S3Response._key_response_put

    def key_response_put(self: S3Response, query: dict[str, Any], key_name: str) -> Any:
        copy_source = self.headers.get("x-amz-copy-source")
        if not copy_source or "tagging" in query or "acl" in query:
            return original(self, query, key_name)
        if isinstance(copy_source, bytes):
            copy_source = copy_source.decode("utf-8")
        source_bucket, source_key = unquote(copy_source.split("?", 1)[0]).lstrip("/").split("/", 1)
        if ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT:
            actions = ["GetObject"]
            part_copy = bool(query.get("uploadId"))
            if not part_copy and self.headers.get("x-amz-tagging-directive") == "COPY":
                actions.append("GetObjectTagging")
            for action in actions:
                S3IAMRequest(
                    account_id=self.current_account,
                    method=self.method,
                    path=self.path,
                    data=self.data,
                    body=self.raw_body,
                    headers=self.headers,
                    action=action,
                ).check_action_permitted(f"arn:aws:s3:::{source_bucket}/{source_key}")
        source = self.backend.get_object(source_bucket, source_key)
        pinned = self.headers.get("x-amz-copy-source-if-match")
        if source is not None and pinned and pinned.strip('"') != source.etag.strip('"'):
            raise PreconditionFailed("x-amz-copy-source-If-Match")
        if not query.get("uploadId"):
            existing = self.backend.get_object(self.bucket_name, key_name)
            if_match = self.headers.get("If-Match")
            if if_match and existing is None:
                raise MissingKey(key=key_name)
            if if_match and existing is not None and if_match.strip('"') != existing.etag.strip('"'):
                raise PreconditionFailed("If-Match")
            if self.headers.get("If-None-Match") == "*" and existing is not None:
                raise PreconditionFailed("If-None-Match")
        response = original(self, query, key_name)
        if source is not None and not query.get("uploadId") and self.headers.get("x-amz-tagging-directive") != "REPLACE":
            tags = owner_backend(source_bucket).get_object_tagging(source)["Tags"]
            destination = owner_backend(self.bucket_name)
            copied = destination.get_object(self.bucket_name, key_name)
            destination.put_object_tagging(copied, {tag["Key"]: tag["Value"] for tag in tags})
        return response

    S3Response._key_response_put = key_response_put  # type: ignore[method-assign]
