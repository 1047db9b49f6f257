"""Tie a sandbox process's life to its Node parent.

The parent holds the write end of our stdin. When the parent exits, however it exits (even SIGKILL),
the kernel closes that pipe and we read EOF. That is the one signal that cannot be missed, so every
sandbox process watches for it instead of relying on the parent to clean up.

Run as a script, it wraps a command (DynamoDB Local's JVM) the same way:
    python3 parent_watch.py -- java -jar DynamoDBLocal.jar ...
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

CHILD_GRACE_SECONDS = 5  # DynamoDB Local in-memory shuts down in well under a second


def exit_when_stdin_closes(before_exit: Callable[[], None] = lambda: None) -> None:
    """Start a daemon thread that calls before_exit and ends the process once stdin reaches EOF."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            before_exit()
            # os._exit, not sys.exit: a non-main thread cannot end the process any other way, and a
            # werkzeug serve_forever loop in the main thread would never notice.
            os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_child(command: list[str]) -> int:
    """Run command until it exits, or until the parent goes away or asks us to stop."""
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def stop_child(*_: object) -> None:
        # Only signal: the main thread sits in child.wait() and reaps the child. Waiting here as well
        # would spin on Popen's internal lock until the timeout.
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGTERM)

    def stop_child_then_kill() -> None:
        stop_child()
        time.sleep(CHILD_GRACE_SECONDS)  # the main thread exits first if the child complies
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop_child)
    signal.signal(signal.SIGINT, stop_child)
    exit_when_stdin_closes(stop_child_then_kill)
    return child.wait()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: parent_watch.py -- <command> [args...]")
    code = run_child(args)
    # os._exit: a normal shutdown aborts on the stdin lock the watcher thread still holds.
    os._exit(code if code >= 0 else 128 - code)
