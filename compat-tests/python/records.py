"""The record set every produce/consume round-trip test writes and expects back."""

import os
import time

# Base timestamp (ms) one hour in the past, so it is clearly the producer's CreateTime and not the
# broker's clock, yet well inside the default 7-day retention.ms (older records would be deleted by
# the retention check while a test runs, by Kafka as by gregor).
BASE_TS = (int(time.time()) - 3600) * 1000


def sample_records(n_extra=40):
    """List of dicts: key (bytes|None), value (bytes|None), headers (list of (str, bytes|None)), ts (ms)."""
    recs = [
        {"key": b"k0", "value": b"hello", "headers": [("h1", b"v1"), ("h2", b"v2")]},
        {"key": None, "value": b"keyless value", "headers": [("only", b"x")]},
        {"key": b"tomb", "value": None, "headers": []},  # tombstone-style null value
        {"key": b"", "value": b"", "headers": []},  # empty (not null) key and value
        # duplicate header keys, order must be preserved; empty header value
        {"key": b"dup", "value": b"dup-headers", "headers": [("a", b"1"), ("b", b"2"), ("a", b"3"), ("e", b"")]},
        {"key": bytes(range(256)), "value": bytes(range(255, -1, -1)), "headers": [("bin", bytes(range(32)))]},
        {"key": "ünïcødé".encode(), "value": "värde ✓".encode(), "headers": [("ключ", "значение".encode())]},
        # compressible large value and an incompressible one
        {"key": b"big", "value": b"abcdefghij" * 10_000, "headers": []},
        {"key": b"rand", "value": os.urandom(20_000), "headers": [("r", os.urandom(16))]},
    ]
    for i in range(n_extra):
        recs.append({"key": f"key-{i}".encode() if i % 3 else None,
                     "value": f"value-{i}-".encode() * (i + 1),
                     "headers": [("i", str(i).encode())] if i % 2 else []})
    for i, r in enumerate(recs):
        r["ts"] = BASE_TS + i * 7
    return recs

