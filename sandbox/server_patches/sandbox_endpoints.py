"""A WSGI wrapper adding the loopback-only /_sandbox/ endpoints: S3 request counts by type and seeding many
objects in one call (for the benchmark), moving an object to an Intelligent-Tiering archive tier and
forgetting the objects a test run stored (for the tests).
"""

import hashlib
import json
import threading
from typing import Any
from urllib.parse import parse_qsl, unquote

from .answers import ARCHIVE_ACCESS_TIERS


S3_REQUEST_TYPES = ("LIST", "GET", "PUT", "POST", "HEAD", "DELETE", "OTHER")
"""How the benchmark reports S3 requests: LIST is ListObjects(V2); PUT is PutObject and UploadPart; POST is
CreateMultipartUpload, CompleteMultipartUpload and DeleteObjects; OTHER is bucket sub-resources."""


LIST_PARAMETERS = frozenset(
    ("list-type", "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after",
     "encoding-type", "fetch-owner")
)


def classify_s3_request(method: str, path: str, query: str) -> str:
    """Sort one path-style S3 request (/bucket or /bucket/key...) into S3_REQUEST_TYPES."""
    on_bucket = len(path.strip("/").split("/")) == 1
    if method == "GET":
        if not on_bucket:
            return "GET"
        # A bare GET on a bucket lists it; sub-resources such as ?location or ?versioning do not.
        names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        return "LIST" if names <= LIST_PARAMETERS else "OTHER"
    if method == "PUT":
        return "OTHER" if on_bucket else "PUT"
    return method if method in ("POST", "HEAD", "DELETE") else "OTHER"


def is_s3_request(environ: dict[str, Any]) -> bool:
    """SigV4 names the service in the credential scope, in the Authorization header or a presigned query."""
    scope = environ.get("HTTP_AUTHORIZATION") or unquote(environ.get("QUERY_STRING", ""))
    return "/s3/aws4_request" in scope


def seed_body(name: str, size: int) -> bytes:
    """The bytes /_sandbox/seed-objects stores as <prefix><name>: the SHA-256 of the name, repeated (as
    bench/lib/seed.ts's seedBody), so one name holds the same bytes under every prefix."""
    pattern = hashlib.sha256(name.encode("utf-8")).digest()
    return (pattern * (size // len(pattern) + 1))[:size]


def sandbox_endpoints(app: Any) -> Any:
    """Wrap the WSGI app with the benchmark's endpoints, under /_sandbox/ (no bucket name starts with _):

    - GET /_sandbox/s3-requests: S3 requests by type since the last reset, counted here so that no proxy
      has to sit between the tools and moto; DELETE returns the same and resets.
    - POST /_sandbox/archive-object {"account", "bucket", "key", "tier"}: moves an INTELLIGENT_TIERING object
      to the archive tier `tier` (ARCHIVE_ACCESS or DEEP_ARCHIVE_ACCESS), see intelligent_tiering_archives.
    - POST /_sandbox/seed-objects {"account", "bucket", "prefix", "count", "size"}: stores `count` objects
      `<prefix>obj-000000`... of `size` bytes (seed_body of the name) straight into the backend, for
      workloads that need tens of thousands of objects whose upload is not what is measured.
    - POST /_sandbox/forget-objects {"since": <epoch ms>}: drops every object version, delete marker and
      multipart upload created at or after `since`, in every bucket of every account, and closes their
      bodies. moto keeps each body in a temporary file for the server's life and each model in a list it
      never prunes, so a long session of tests (mutation testing re-puts 26 MiB objects for hours) would
      fill the disk. Only for a test run that owns the sandbox and has nothing in flight.
    """
    from datetime import datetime, timezone

    from moto.s3.models import FakeKey, s3_backends

    lock = threading.Lock()
    counts = dict.fromkeys(S3_REQUEST_TYPES, 0)

    def reply(start_response: Any, status: str, body: Any) -> list[bytes]:
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def seed_objects(environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
        backend = s3_backends[spec["account"]]["aws"]
        for index in range(int(spec["count"])):
            name = f"obj-{index:06d}"
            backend.put_object(spec["bucket"], spec["prefix"] + name, seed_body(name, int(spec["size"])))
        return {"seeded": int(spec["count"])}

    def archive_object(environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if spec["tier"] not in ARCHIVE_ACCESS_TIERS:
            raise ValueError(f"tier must be one of {ARCHIVE_ACCESS_TIERS}")
        key = s3_backends[spec["account"]]["aws"].get_object(spec["bucket"], spec["key"])
        if key is None or key.storage_class != "INTELLIGENT_TIERING":
            raise ValueError("no INTELLIGENT_TIERING object at that key")
        key.sandbox_archive_tier = spec["tier"]
        return {"archived": spec["key"], "tier": spec["tier"]}

    def created_since(model: Any, since: float) -> bool:
        initiated = getattr(model, "sandbox_initiated", None)  # an upload, see real_upload_times
        if initiated is not None:
            return datetime.fromisoformat(initiated).timestamp() >= since
        return model.last_modified.replace(tzinfo=timezone.utc).timestamp() >= since

    def buckets() -> Any:
        for account in list(s3_backends.keys()):
            yield from s3_backends[account]["aws"].buckets.values()

    def forget_objects(environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        since = float(json.loads(environ["wsgi.input"].read(length) or b"{}")["since"]) / 1000
        versions = uploads = 0
        for bucket in buckets():
            for name in list(bucket.keys.keys()):
                stored = bucket.keys.getlist(name, [])
                kept = [version for version in stored if not created_since(version, since)]
                for version in stored:
                    if version not in kept and hasattr(version, "dispose"):  # delete markers have none
                        version.dispose()
                versions += len(stored) - len(kept)
                # dict's own methods: moto's pop would call dispose on delete markers too
                if kept:
                    dict.__setitem__(bucket.keys, name, kept)
                else:
                    dict.__delitem__(bucket.keys, name)
            for upload_id, upload in list(bucket.multiparts.items()):
                if created_since(upload, since):
                    del bucket.multiparts[upload_id]  # MultipartDict disposes its parts
                    uploads += 1
        # Bodies that no bucket or upload holds any more stay open through moto's model list (some
        # request leaves them there; which one, moto does not say): close those stored since too.
        held = {id(version) for bucket in buckets() for name in bucket.keys for version in bucket.keys.getlist(name)}
        held |= {id(part) for bucket in buckets() for mp in bucket.multiparts.values() for part in mp.parts.values()}
        orphans = 0
        for key in FakeKey.instances_tracked:
            if not key.disposed and id(key) not in held and created_since(key, since):
                key.dispose()
                orphans += 1
        FakeKey.instances_tracked[:] = [key for key in FakeKey.instances_tracked if not key.disposed]
        return {"versions": versions, "uploads": uploads, "orphans": orphans}

    def handle(environ: dict[str, Any], start_response: Any) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/_sandbox/forget-objects" and method == "POST":
            try:
                return reply(start_response, "200 OK", forget_objects(environ))
            except Exception as error:  # no `since`: say so
                return reply(start_response, "400 Bad Request", {"error": f"{type(error).__name__}: {error}"})
        if path == "/_sandbox/archive-object" and method == "POST":
            try:
                return reply(start_response, "200 OK", archive_object(environ))
            except Exception as error:  # a bad spec or a missing object: say which
                return reply(start_response, "400 Bad Request", {"error": f"{type(error).__name__}: {error}"})
        if path == "/_sandbox/s3-requests" and method in ("GET", "DELETE"):
            with lock:
                snapshot = dict(counts)
                if method == "DELETE":
                    counts.update(dict.fromkeys(S3_REQUEST_TYPES, 0))
            return reply(start_response, "200 OK", snapshot)
        if path == "/_sandbox/seed-objects" and method == "POST":
            try:
                return reply(start_response, "200 OK", seed_objects(environ))
            except Exception as error:  # a bad spec or a missing bucket: say which
                return reply(start_response, "400 Bad Request", {"error": f"{type(error).__name__}: {error}"})
        if is_s3_request(environ):
            kind = classify_s3_request(method, path, environ.get("QUERY_STRING", ""))
            with lock:
                counts[kind] += 1
        return app(environ, start_response)

    return handle
