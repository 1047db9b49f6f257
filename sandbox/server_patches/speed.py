"""Costs of moto's server, not of S3, cut so that benchmarks measure the tools rather than moto.

moto's module list is read once, a ranged GET reads only its range, listed timestamps are parsed with
fromisoformat; and `profiled` (SANDBOX_MOTO_PROFILE=<file>) shows where the remaining time goes.
"""

import threading
from typing import Any


def list_backends_once() -> None:
    """Read moto's list of service modules once, not on every request.

    moto 5.2.1's server dispatches each request by checking the Host against `list_of_moto_modules()`,
    which lists moto's package directory and stats each of its ~180 entries, inside a lock that every
    request thread shares. Under load that serializes the server on the file system: profiled over the
    benchmark's many-small workload, it was the largest cost after the request bodies' MD5.
    """
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]


def read_only_the_range() -> None:
    """Serve a ranged GetObject by reading the range, not the whole object.

    moto 5.2.1 reads an object's entire value for every GET and slices the range out afterwards, so a
    client fetching a 1 GiB object in 128 ranges of 8 MiB (the AWS CLI, any parallel downloader) makes it
    read 128 GiB. Here, while a GET with a Range header is handled, FakeKey.value hands out a lazy view that
    knows the object's length and reads only the slice that moto's range handling asks for.
    """

    from moto.s3.models import FakeKey
    from moto.s3.responses import S3Response

    ranged = threading.local()
    whole_value = FakeKey.value

    class LazyValue:
        def __init__(self, key: FakeKey) -> None:
            self.key = key

        def __len__(self) -> int:
            return self.key.size

        def __getitem__(self, window: slice) -> bytes:
            start, stop, step = window.indices(self.key.size)
            if step != 1:
                return self.read_all()[window]
            with self.key.lock:
                self.key._value_buffer.seek(start)
                return self.key._value_buffer.read(max(0, stop - start))

        def read_all(self) -> bytes:
            return whole_value.fget(self.key)  # type: ignore[no-any-return]

    def value(self: FakeKey) -> Any:
        return LazyValue(self) if getattr(ranged, "active", False) else whole_value.fget(self)

    original_key_response = S3Response.key_response

    def key_response(self: S3Response, request: Any, *args: Any, **kwargs: Any) -> Any:
        wants_range = request.method == "GET" and "," not in (request.headers.get("range") or ",")
        ranged.active = wants_range and "partNumber" not in (getattr(request, "args", None) or {})
        try:
            status, headers, body = original_key_response(self, request, *args, **kwargs)
        finally:
            ranged.active = False
        if isinstance(body, LazyValue):  # moto decided to answer with the whole object after all
            body = body.read_all()
        return status, headers, body

    FakeKey.value = property(value, whole_value.fset)  # type: ignore[method-assign]
    S3Response.key_response = key_response  # type: ignore[method-assign]


def parse_timestamps_quickly() -> None:
    """Read the ISO 8601 timestamps moto serializes with datetime.fromisoformat, not dateutil.

    moto 5.2.1 turns every LastModified it lists from its own ISO string back into a datetime with
    dateutil's general parser: about a third of the time of a 1,000-key ListObjectsV2 page. Anything
    fromisoformat cannot read still goes to moto's own conversion.
    """
    from datetime import datetime, timezone

    from moto.core.serialize import TimestampSerializer

    original = TimestampSerializer._convert_timestamp_to_str

    def convert(self: TimestampSerializer, value: Any, timestamp_format: str) -> Any:
        if not isinstance(value, str):
            return original(self, value, timestamp_format)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return original(self, value, timestamp_format)
        if parsed.tzinfo is None:  # as botocore's parse_to_aware_datetime: naive means UTC
            parsed = parsed.replace(tzinfo=timezone.utc)
        return getattr(self, f"_timestamp_{timestamp_format.lower()}")(parsed)

    TimestampSerializer._convert_timestamp_to_str = convert  # type: ignore[method-assign]


def profiled(app: Any, profile_file: str) -> Any:
    """Wrap the WSGI app so each request runs under cProfile; after each, the sum goes to profile_file.

    For finding where moto spends its time under a benchmark (SANDBOX_MOTO_PROFILE=/tmp/moto.prof; then
    `python3 -m pstats /tmp/moto.prof`). Times are per request thread, so waits on the GIL count too.
    """
    import cProfile
    import pstats

    lock = threading.Lock()
    total: list[pstats.Stats] = []

    def app_under_profile(environ: Any, start_response: Any) -> Any:
        profile = cProfile.Profile()
        profile.enable()
        try:
            return list(app(environ, start_response))
        finally:
            profile.disable()
            profile.create_stats()
            with lock:
                if total:
                    total[0].add(profile)
                else:
                    total.append(pstats.Stats(profile))
                total[0].dump_stats(profile_file)  # a few ms: fine for finding hot spots

    return app_under_profile
