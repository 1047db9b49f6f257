"""Conditional writes and multipart completions as S3 decides them.

CompleteMultipartUpload honours If-Match, one completion of an upload runs at a time (a retried one gets
S3's answers), and the conditional writes of one key check and write one at a time, so of racing
If-None-Match: * writes exactly one wins.
"""

import threading
from typing import Any


def complete_only_if_match() -> None:
    """Evaluate If-Match on CompleteMultipartUpload, as S3 does (moto checks only If-None-Match: *)."""
    from moto.s3.exceptions import MissingKey, PreconditionFailed
    from moto.s3.responses import S3Response

    original = S3Response._key_response_post

    def key_response_post(
        self: S3Response, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str
    ) -> Any:
        if_match = request.headers.get("If-Match")
        if query.get("uploadId") and if_match:
            existing = self.backend.get_object(bucket_name, key_name)
            same_upload = existing is not None and existing.multipart and existing.multipart.id == query["uploadId"][0]
            if existing is None:
                raise MissingKey(key=key_name)
            if not same_upload and existing.etag.strip('"') != if_match.strip('"'):
                raise PreconditionFailed("If-Match")
        return original(self, request, body, bucket_name, query, key_name)

    S3Response._key_response_post = key_response_post  # type: ignore[method-assign]


def one_completion_at_a_time() -> None:
    """Complete each multipart upload once, as S3 does.

    moto runs two CompleteMultipartUpload requests of one upload side by side (an SDK retry after its idle
    timeout, while moto still joins a 1 GiB upload): the first disposes the parts the second is reading,
    which then fails with a 500 ("seek of closed file"), and later ones with a KeyError. S3 answers a
    completion of an upload it has just completed with that object again (moto too, but only when the first
    has finished before the retry arrives), and one of an upload that is gone otherwise with NoSuchUpload.
    Here completions take turns, and a later one gets those answers.
    """
    from moto.s3.exceptions import NoSuchUpload
    from moto.s3.models import S3Backend

    original = S3Backend.complete_multipart_upload
    turn = threading.Lock()

    def complete_multipart_upload(self: S3Backend, bucket_name: str, multipart_id: str, body: Any) -> Any:
        with turn:
            bucket = self.get_bucket(bucket_name)
            if multipart_id not in bucket.multiparts:
                for key in bucket.keys.values():
                    if getattr(key, "multipart", None) is not None and key.multipart.id == multipart_id:
                        return key
                raise NoSuchUpload(upload_id=multipart_id)
            return original(self, bucket_name, multipart_id, body)

    S3Backend.complete_multipart_upload = complete_multipart_upload  # type: ignore[method-assign]


def conditional_writes_one_at_a_time() -> None:
    """Let one conditional write of a key decide at a time, as S3 does: of many If-None-Match: * writes
    of one key exactly one succeeds and the others get 412.

    moto checks a PutObject's, CopyObject's or CompleteMultipartUpload's If-None-Match / If-Match and then
    writes in a separate step, on its threaded server: requests that all checked before any wrote all
    succeed. A completion waits for its turn (one_completion_at_a_time) after its check, so racing
    completions of one key's uploads, as two deliveries of one copy task make, every one of them won. Here
    each conditional write of a key checks and writes under that key's lock; other keys and unconditional
    writes are not held up. Applied last, over the other patches of the same handlers, so their checks
    (complete_only_if_match, copy_sources_as_s3_does) are inside the lock too.
    """
    from moto.s3.responses import S3Response

    # A fixed set of locks, by the key's hash: memory stays bounded however many keys a session writes.
    stripes = [threading.Lock() for _ in range(256)]

    def lock_of(bucket_name: str, key_name: str) -> Any:
        return stripes[hash((bucket_name, key_name)) % len(stripes)]

    def conditional(headers: Any) -> bool:
        return bool(headers.get("If-None-Match") or headers.get("If-Match"))

    original_put = S3Response._key_response_put
    original_post = S3Response._key_response_post

    def key_response_put(self: S3Response, query: dict[str, Any], key_name: str) -> Any:
        is_part = bool(query.get("uploadId"))
        if is_part or not conditional(self.headers):
            return original_put(self, query, key_name)
        with lock_of(self.bucket_name, key_name):
            return original_put(self, query, key_name)

    def key_response_post(
        self: S3Response, request: Any, body: bytes, bucket_name: str, query: dict[str, Any], key_name: str
    ) -> Any:
        if not query.get("uploadId") or not conditional(request.headers):
            return original_post(self, request, body, bucket_name, query, key_name)
        with lock_of(bucket_name, key_name):
            return original_post(self, request, body, bucket_name, query, key_name)

    S3Response._key_response_put = key_response_put  # type: ignore[method-assign]
    S3Response._key_response_post = key_response_post  # type: ignore[method-assign]
