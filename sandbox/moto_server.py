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

Where each lives: the patches and wrappers are defined in server_patches/, one module per purpose (see its
__init__.py); `serve` below applies them in order and serves.
"""

import argparse
import logging
import os
import signal
import sys
from typing import Any

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
from server_patches.region_redirects import region_redirects
from server_patches.sandbox_endpoints import sandbox_endpoints
from server_patches.speed import list_backends_once, parse_timestamps_quickly, profiled, read_only_the_range


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
