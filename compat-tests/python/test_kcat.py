"""(h) kcat from Debian (librdkafka 2.0.2, an old client): metadata, produce, consume, JSON output."""

import json
import shutil
import subprocess

import pytest

from helpers import consume_confluent, create_topic, unique

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed (run compat-tests/setup.sh)")


def kcat(*args, input=None, timeout=30):
    cmd = ["kcat", *args]
    try:
        p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"kcat timed out: {cmd}\nstderr: {e.stderr}") from None
    assert p.returncode == 0, f"kcat exited {p.returncode}: {cmd}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"
    return p.stdout


LINES = [b"alpha:one", b"beta:two", b"gamma:", b":empty-key", b"k:v:with:colons", b"nokey-line"]
# -K: splits at the first ':'; a line without the delimiter becomes a null key.
EXPECTED = [(b"alpha", b"one"), (b"beta", b"two"), (b"gamma", b""), (b"", b"empty-key"),
            (b"k", b"v:with:colons"), (None, b"nokey-line")]


def test_kcat_metadata(broker):
    topic = create_topic(broker.bootstrap, unique("kcat-md"), partitions=3)
    out = kcat("-b", broker.bootstrap, "-L", "-m", "15").decode()
    assert f'topic "{topic}" with 3 partitions:' in out
    host, port = broker.bootstrap.split(":")
    assert f"at {host}:{port}" in out
    md = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", topic, "-m", "15"))
    (t,) = md["topics"]
    assert t["topic"] == topic
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == md["brokers"][0]["id"] for p in t["partitions"])


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume(broker, codec):
    topic = create_topic(broker.bootstrap, unique(f"kcat-{codec}"), partitions=2)
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec, "-H", "hk=hv",
         input=b"\n".join(LINES) + b"\n")
    # Plain consume with key delimiter, exits at end of partition.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-K:", "-q")
    assert out.splitlines() == [(k or b"") + b":" + v for k, v in EXPECTED]
    # Custom format with offsets and headers.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
               "-f", "%o|%k|%s|%h\n")
    assert out.splitlines() == [b"%d|%s|%s|hk=hv" % (i, k or b"", v) for i, (k, v) in enumerate(EXPECTED)]
    # JSON output keeps null keys apart from empty ones.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-J")
    recs = [json.loads(line) for line in out.splitlines()]
    assert [(r["offset"], r["partition"], r["key"], r["payload"]) for r in recs] == \
        [(i, 0, None if k is None else k.decode(), v.decode()) for i, (k, v) in enumerate(EXPECTED)]
    # Offset from the middle.
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "3", "-e", "-q", "-f", "%o:%s\n")
    assert out.splitlines() == [b"%d:%s" % (i, v) for i, (_, v) in enumerate(EXPECTED) if i >= 3]
    # Another client sees the same records.
    msgs = consume_confluent(broker.bootstrap, topic, 0, len(EXPECTED))
    assert [(m.key(), m.value(), m.headers()) for m in msgs] == [(k, v, [("hk", b"hv")]) for k, v in EXPECTED]


def test_kcat_end_offsets_and_tail(broker):
    """-o -2 (relative from end) and -o end with -e: reads exactly the last records / nothing."""
    topic = create_topic(broker.bootstrap, unique("kcat-tail"), partitions=1)
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", input=b"".join(b"m%d\n" % i for i in range(10)))
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "-2", "-e", "-q")
    assert out.splitlines() == [b"m8", b"m9"]
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "end", "-e", "-q")
    assert out == b""
