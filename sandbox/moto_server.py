"""moto (S3, STS, IAM, EventBridge, SQS) on loopback, patched so that with auth enforced it refuses what AWS refuses.

    python3 moto_server.py --port 5000   # serve until stdin closes or SIGTERM
    python3 moto_server.py --check       # import everything the server needs, print moto's version

Gaps in moto 5.2.1, each fixed below with a small monkeypatch:
- Cross-account trust policies are not evaluated: IAMRequest._check_role_trust_relationship looks the role
  up in the *caller's* IAM backend and skips the check when it is not there, so every cross-account
  AssumeRole succeeds, whatever the ExternalId or caller. The sandbox exists to exercise that path
  (ExternalId and aws:PrincipalArn conditions included).
- Signatures are recomputed over the decoded URI, so requests with / or non-ASCII in the query or key fail.
- EventBridge PutEvents is authorized against resource "*", so a policy naming the event bus (as the
  template's does) denies every PutEvents; and the denial is an XML body the JSON protocol cannot parse.
- Identity-policy denials omit the resource and reason AWS gives ("... on resource: R because no
  identity-based policy allows the A action"), which `doctor` reads to tell a missing caller permission
  from a trust policy that refuses.
- CompleteMultipartUpload ignores If-Match (it honours only If-None-Match: *), so a conditional completion
  could replace an object the writer had not seen; S3 refuses it (412, or 404 when the key is gone).
- ListMultipartUploads reports every upload as initiated on 2010-11-10; the sync matches an upload whose
  run died before recording its id by key and Initiated time, so uploads get their real creation time.
- An SSE-KMS object's ETag is the MD5 of its bytes; S3's is not (it documents that only SSE-S3 and
  unencrypted single-part objects have MD5 ETags), and a copier that takes it for one refuses good bytes.
- A request signed for another region than the bucket's is served (moto has one endpoint for all regions);
  S3 answers it 301 PermanentRedirect with x-amz-bucket-region, which SDKs follow (see region_redirects).
- ListObjectsV2 ignores x-amz-optional-object-attributes: RestoreStatus, so a restored Glacier object
  looks like one still archived (restore_status_in_listings).
- GetBucketNotificationConfiguration leaves out EventBridgeConfiguration, which PutBucketNotification-
  Configuration stored (and moto acts on), so a read-modify-write of the configuration would drop it and
  `doctor` could not tell whether the bucket sends events (event_bridge_in_notifications).
- Intelligent-Tiering's archive tiers do not exist: an object there is refused on GET (InvalidObjectState)
  and HEAD says x-amz-archive-status. POST /_sandbox/archive-object moves an object there
  (intelligent_tiering_archives).
- PutObject and UploadPart accept a wrong Content-MD5 and wrong x-amz-checksum-* values (header or
  aws-chunked trailer) and store the body anyway; S3 refuses them, and the sync relies on that refusal to
  keep a corrupted read from becoming the destination's object.

- A request from another account than the bucket's is allowed by the caller's identity policy alone; S3
  also needs the bucket's policy to grant it (enforce_cross_account_bucket_policies).
- A conditional write (If-None-Match / If-Match on PutObject, CopyObject, CompleteMultipartUpload) is
  checked and then written in two steps, so racing writes of one key may all pass the check
  (conditional_writes_one_at_a_time).
- Every S3 EventBridge event carries one constant `sequencer`, so an overwrite or a delete looks like the
  change before it; S3's grow with each change of a key (real_sequencers).
- CopyObject and UploadPartCopy authorize only the destination write, ignore x-amz-copy-source-if-match,
  a CopyObject's If-None-Match / If-Match and TaggingDirective COPY, and a cross-account GetObjectTagging
  reads the caller's tag store (copy_sources_as_s3_does).

Connections are kept alive (HTTP/1.1), as S3 keeps them: werkzeug's server closes each after one request,
so every request paid a TCP connect (keep_alive.py).

Two costs of moto's server, not of S3, are cut so that benchmarks measure the tools rather than moto:
- Each request lists moto's package directory, under a lock all request threads share (list_backends_once).
- Each ranged GET reads the whole object (read_only_the_range).
- Each listed timestamp goes through dateutil's general parser (parse_timestamps_quickly).

SANDBOX_MOTO_PROFILE=<file> profiles every request with cProfile (see `profiled`).

Loopback-only endpoints (see `sandbox_endpoints`): S3 request counts by type and seeding many objects in
one call, for the benchmark; moving an object to an Intelligent-Tiering archive tier, for the tests.
"""

import argparse
import hashlib
import json
import logging
import os
import re
import signal
import sys
import threading
from typing import Any
from urllib.parse import parse_qsl, unquote

from keep_alive import KeepAliveRequestHandler
from parent_watch import exit_when_stdin_closes
from server_patches.access import (
    authorize_put_events_on_the_bus,
    enforce_cross_account_bucket_policies,
    enforce_cross_account_trust,
    identity_denials_say_why,
    sign_check_raw_uri,
)
from server_patches.answers import (
    ARCHIVE_ACCESS_TIERS,
    event_bridge_in_notifications,
    intelligent_tiering_archives,
    kms_etags_are_not_md5,
    real_upload_times,
    restore_status_in_listings,
)
from server_patches.conditional_writes import (
    complete_only_if_match,
    conditional_writes_one_at_a_time,
    one_completion_at_a_time,
)
from server_patches.copy_sources import copy_sources_as_s3_does
from server_patches.digests import refuse_wrong_digests
from server_patches.event_sequencers import real_sequencers
from server_patches.speed import list_backends_once, parse_timestamps_quickly, profiled, read_only_the_range


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


def signed_region(environ: dict[str, Any]) -> str | None:
    """The region in a SigV4 credential scope: <key>/<date>/<region>/s3/aws4_request."""
    scope = environ.get("HTTP_AUTHORIZATION") or unquote(environ.get("QUERY_STRING", ""))
    match = re.search(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/s3/aws4_request", scope)
    return match.group(1) if match else None


def region_redirects(app: Any) -> Any:
    """Answer a request for a bucket in another region than the request was signed for as S3 answers one
    sent to the wrong regional endpoint: 301 PermanentRedirect, naming the bucket's region in
    x-amz-bucket-region (on HEAD too, without a body). Locally every region shares one endpoint, so the
    signing region stands for the endpoint. CreateBucket and GetBucketLocation are answered in any region,
    as S3 answers them."""
    from moto.s3.models import s3_backends

    def bucket_region(name: str) -> str | None:
        owner = s3_backends.bucket_accounts.get(name)
        if owner is None:
            return None
        partition, account_id = owner
        bucket = s3_backends[account_id][partition].buckets.get(name)
        return bucket.region_name if bucket is not None else None

    def handle(environ: dict[str, Any], start_response: Any) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        parts = path.lstrip("/").split("/", 1)
        query = environ.get("QUERY_STRING", "")
        on_bucket = len(parts) == 1 or parts[1] == ""
        names = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
        answered_anywhere = on_bucket and ((method == "PUT" and not query) or "location" in names)
        signed = signed_region(environ) if parts[0] and not parts[0].startswith("_") else None
        actual = bucket_region(unquote(parts[0])) if signed and not answered_anywhere else None
        if actual is None or actual == signed:
            if actual is None or method != "HEAD" or not on_bucket:
                return app(environ, start_response)

            # HeadBucket names the bucket's region whatever the answer (a refusal too), as S3's does; moto names it on 200 only.
            def with_region(status: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
                named = any(name.lower() == "x-amz-bucket-region" for name, _ in headers)
                return start_response(status, headers if named else [*headers, ("x-amz-bucket-region", actual)], *rest)

            return app(environ, with_region)
        # Read the body the client is sending, so it sees the answer rather than a connection reset.
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        while remaining > 0:
            chunk = environ["wsgi.input"].read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
        body = (
            b"" if method == "HEAD" else
            ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you '
             "are attempting to access must be addressed using the specified endpoint. Please send all future "
             f"requests to this endpoint.</Message><Endpoint>s3.{actual}.amazonaws.com</Endpoint>"
             f"<Bucket>{parts[0]}</Bucket><RequestId>sandbox</RequestId><HostId>sandbox</HostId></Error>").encode()
        )
        start_response(
            "301 Moved Permanently",
            [("Content-Type", "application/xml"), ("x-amz-bucket-region", actual), ("Content-Length", str(len(body)))],
        )
        return [body]

    return handle


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


def serve(port: int) -> None:
    from moto import __version__
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    enforce_cross_account_trust()
    sign_check_raw_uri()
    identity_denials_say_why()
    authorize_put_events_on_the_bus()
    real_sequencers()
    refuse_wrong_digests()
    kms_etags_are_not_md5()
    restore_status_in_listings()
    event_bridge_in_notifications()
    intelligent_tiering_archives()
    real_upload_times()
    complete_only_if_match()
    one_completion_at_a_time()
    enforce_cross_account_bucket_policies()
    copy_sources_as_s3_does()
    conditional_writes_one_at_a_time()
    list_backends_once()
    read_only_the_range()
    parse_timestamps_quickly()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request drowns errors
    app: Any = sandbox_endpoints(region_redirects(DomainDispatcherApplication(create_backend_app)))
    profile_file = os.environ.get("SANDBOX_MOTO_PROFILE")
    if profile_file:
        app = profiled(app, profile_file)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=KeepAliveRequestHandler)
    exit_when_stdin_closes()
    # os._exit: sys.exit would wait for request threads still holding keep-alive connections
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"moto {__version__} listening on 127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


def check() -> None:
    import flask  # noqa: F401  the server's web framework
    import flask_cors  # noqa: F401  moto.server imports it
    from moto import __version__
    from moto.iam import responses as _iam  # noqa: F401  each service pulls in its own extras
    from moto.moto_server.werkzeug_app import create_backend_app  # noqa: F401
    from moto.s3 import responses as _s3  # noqa: F401
    from moto.sts.responses import TokenResponse

    if not hasattr(TokenResponse, "assume_role"):
        sys.exit(f"moto {__version__} has no TokenResponse.assume_role to patch; the sandbox needs moto 5.x")
    print(__version__)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--port", type=int)
    group.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        check()
    else:
        serve(args.port)
