"""S3 EventBridge events with a sequencer of their own that grows with each change, as S3's do per key;
moto 5.2.1 gives every event one constant value.
"""

import threading
from typing import Any


MOTO_SEQUENCER = "617f08299329d189"


def real_sequencers() -> None:
    """Give each S3 EventBridge event a sequencer of its own that grows with time, as S3's do per key.

    moto builds the event with its constant and hands the same dict to every rule of the bucket owner's
    buses; the first rule's call replaces the constant in place, so every rule (and the bus it forwards to)
    sees one value per event. 18 hexadecimal digits with leading zeros, as S3 writes them.
    """
    import time

    from moto.events.models import Rule

    lock = threading.Lock()
    last = [0]
    original = Rule.send_to_targets

    def next_sequencer() -> str:
        with lock:
            last[0] = max(last[0] + 1, time.time_ns())
            return f"{last[0]:018X}"

    def send_to_targets(self: Rule, event: Any, transform_input: bool = True) -> None:
        detail_object = event.get("detail", {}).get("object", {}) if event.get("source") == "aws.s3" else {}
        if detail_object.get("sequencer") == MOTO_SEQUENCER:
            detail_object["sequencer"] = next_sequencer()
        original(self, event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]
