"""PutObject and UploadPart refuse a body whose Content-MD5 or x-amz-checksum-* does not fit it, as S3 does.

moto 5.2.1 stores the body anyway; the sync relies on S3's refusal to keep a corrupted read from becoming
the destination's object.
"""

import hashlib
import re
from typing import Any


CHECKSUM_ALGORITHMS = {"crc32": "CRC32", "crc32c": "CRC32C", "crc64nvme": "CRC64NVME", "sha1": "SHA1", "sha256": "SHA256"}


def checksum_computable(algorithm: str) -> bool:
    """moto's compute_checksum silently falls back to CRC32 when crc32c or awscrt is missing; a value it
    cannot compute faithfully is not checked, rather than refused on a false mismatch."""
    if algorithm == "CRC32C":
        try:
            import crc32c  # noqa: F401
        except ImportError:
            return False
    if algorithm == "CRC64NVME":
        try:
            import awscrt  # noqa: F401
        except ImportError:
            return False
    return True


def digest_problem(headers: Any, body: bytes, raw_body: bytes) -> tuple[str, str] | None:
    """The (code, message) S3 answers a PutObject or UploadPart whose stated digests do not fit its body.

    Content-MD5 that is not base64 of 16 bytes: 400 InvalidDigest; one that differs: 400 BadDigest. An
    x-amz-checksum-<algorithm> value, as a header or as an aws-chunked trailer, that is not base64 of the
    right length: 400 InvalidRequest; one that differs: 400 BadDigest (S3's codes and wording).
    """
    import base64
    import binascii

    from moto.s3.utils import compute_checksum

    content_md5 = headers.get("Content-MD5")
    if content_md5 is not None:
        try:
            stated = base64.b64decode(content_md5, validate=True)
        except (binascii.Error, ValueError):
            stated = b""
        if len(stated) != 16:
            return "InvalidDigest", "The Content-MD5 you specified was invalid."
        if stated != hashlib.md5(body).digest():
            return "BadDigest", "The Content-MD5 you specified did not match what we received."

    stated_checksums: dict[str, str] = {}
    for name, algorithm in CHECKSUM_ALGORITHMS.items():
        value = headers.get(f"x-amz-checksum-{name}")
        if value:
            stated_checksums[algorithm] = value
    if headers.get("x-amz-trailer") and raw_body:
        for match in re.finditer(rb"x-amz-checksum-(\w+):([A-Za-z0-9+/=]*)", raw_body[-512:]):
            algorithm = CHECKSUM_ALGORITHMS.get(match.group(1).decode().lower())
            if algorithm:
                stated_checksums[algorithm] = match.group(2).decode()
    for algorithm, value in stated_checksums.items():
        if not checksum_computable(algorithm):
            continue
        expected = compute_checksum(body, algorithm=algorithm)
        expected_text = expected.decode() if isinstance(expected, bytes) else str(expected)
        try:
            well_formed = len(base64.b64decode(value, validate=True)) == len(base64.b64decode(expected_text))
        except (binascii.Error, ValueError):
            well_formed = False
        if not well_formed:
            return "InvalidRequest", f"Value for x-amz-checksum-{algorithm.lower()} header is invalid."
        if value != expected_text:
            return "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
    return None


def refuse_wrong_digests() -> None:
    """Check Content-MD5 and x-amz-checksum-* on PutObject and UploadPart before storing, as S3 does."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    class DigestRefused(S3ClientError):
        code = 400

    def checked(original: Any) -> Any:
        def handler(self: S3Response) -> Any:
            problem = digest_problem(self.headers, self.body or b"", self.raw_body or b"")
            if problem:
                raise DigestRefused(*problem)
            return original(self)

        return handler

    S3Response.put_object = checked(S3Response.put_object)  # type: ignore[method-assign]
    S3Response.upload_part = checked(S3Response.upload_part)  # type: ignore[method-assign]
