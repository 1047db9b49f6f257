"""A WSGI wrapper answering a request signed for another region than its bucket's as S3 answers one sent
to the wrong regional endpoint (301 PermanentRedirect with x-amz-bucket-region), which SDKs follow.
"""

import re
from typing import Any
from urllib.parse import parse_qsl, unquote


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
