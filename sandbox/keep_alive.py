"""A werkzeug request handler that keeps HTTP/1.1 connections alive, as S3 does.

werkzeug 3's development server sends `Connection: close` on every response, whatever its protocol version,
because Python's http.server cannot tell where an unread request body ends and the next request begins. So
each request to moto paid a new TCP connect, which was the largest CPU entry of every tool the benchmark
measures (ours, the raw-SDK ceiling, rclone), although real S3 keeps connections alive.

This handler frames each request body itself: the application reads at most the body (Content-Length, or
the chunked encoding werkzeug decodes), whatever it leaves unread is read and dropped after the response,
and only then is the next request line read from the connection. werkzeug's own after-response drain, which
reads whatever the socket holds (the next request included), is given an empty stream instead.

An idle connection is closed after IDLE_SECONDS, and each response says so (`Keep-Alive: timeout=...`)
with a margin, so a client stops reusing it first rather than racing the close.
"""

import io
from typing import Any

from werkzeug.serving import WSGIRequestHandler

IDLE_SECONDS = 30  # how long a connection may wait for its next request; frees the thread that holds it
HINTED_IDLE_SECONDS = 20  # what clients are told, well below IDLE_SECONDS: Node stops reusing 1 s before it


class BodyReader(io.RawIOBase):
    """The `length` bytes of one request body from the connection's stream, and not a byte more."""

    def __init__(self, stream: Any, length: int) -> None:
        self.stream, self.remaining = stream, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.remaining <= 0:
            return 0
        data = self.stream.read(min(len(buffer), self.remaining))
        if not data:  # the client went away mid-body
            self.remaining = 0
            return 0
        buffer[: len(data)] = data
        self.remaining -= len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        # The default RawIOBase.read(-1) would ask for DEFAULT_BUFFER_SIZE at a time; one read suffices.
        if size is None or size < 0:
            size = self.remaining
        if size == 0 or self.remaining <= 0:
            return b""
        data = self.stream.read(min(size, self.remaining))
        self.remaining = 0 if not data else self.remaining - len(data)
        return data

    def discard_rest(self) -> bool:
        """Read what the application left; False when the client closed before the body ended."""
        while self.remaining > 0:
            if not self.read(1 << 20):
                return False
        return True


class KeepAliveRequestHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one_request(self) -> None:
        self.connection.settimeout(IDLE_SECONDS)  # only while waiting for a request line, see make_environ
        self.connection_stream = self.rfile
        self.body: Any = None  # set once a request has been parsed and handed to werkzeug
        try:
            super().handle_one_request()  # ends an idle connection on TimeoutError, see log_error
        finally:
            self.rfile = self.connection_stream
        if not self.close_connection and self.body is not None:
            try:
                self.close_connection = not discard_unread(self.body)
            except (ConnectionError, OSError):
                self.close_connection = True

    def make_environ(self) -> Any:
        self.connection.settimeout(None)  # a request arrived: body reads wait as long as they did before
        environ = super().make_environ()
        if environ.get("wsgi.input_terminated"):  # chunked: werkzeug's DechunkedInput stops at the last chunk
            self.body = environ["wsgi.input"]
        else:
            self.body = BodyReader(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = self.body
        # werkzeug drains self.rfile after the response; the real stream is restored in handle_one_request.
        self.rfile = io.BytesIO(b"")
        return environ

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):  # an idle keep-alive connection ended: nothing went wrong
            return
        super().log_error(format, *args)

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug's unconditional close of a response is dropped; http.server's own (a malformed request, no
        # body handed to werkzeug yet) and one the client asked for (close_connection already set) stand.
        werkzeugs_close = keyword.lower() == "connection" and value.lower() == "close" and self.body is not None
        if werkzeugs_close and not self.close_connection:
            self.send_header("Keep-Alive", f"timeout={HINTED_IDLE_SECONDS}")
            return
        super().send_header(keyword, value)


def discard_unread(body: Any) -> bool:
    """Read and drop the rest of a request body; False when the connection cannot carry another request."""
    if isinstance(body, BodyReader):
        return body.discard_rest()
    try:
        while body.read(1 << 20):
            pass
    except (OSError, ValueError):  # a malformed chunk: the stream's position is unknown
        return False
    return True

