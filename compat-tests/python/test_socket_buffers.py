"""socket.send.buffer.bytes / socket.receive.buffer.bytes take effect on client connections, as in
Kafka (SocketServer: SO_SNDBUF on each accepted socket, SO_RCVBUF on the listening socket; -1 keeps
the OS default). Read back from the kernel with `ss -tm` on the broker's side of a real TCP
connection (Linux reports twice the value set, for bookkeeping overhead).

Runs against gregor (own_broker) and, with COMPAT_DURABILITY_REFERENCE=1, against Apache Kafka.
"""

import re
import shutil
import socket
import subprocess
import time

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")


def broker_side_buffers(port, timeout=10, expect=None):
    """(rb, tb) of the broker's end of established connections on `port`, once one exists (and,
    with `expect`, once every one of them satisfies it: the kernel lists a connection as soon as
    the handshake completes, before the broker has accepted it and set SO_SNDBUF)."""
    end = time.monotonic() + timeout
    found = []
    while time.monotonic() < end:
        out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
        found = [(int(rb), int(tb)) for rb, tb in re.findall(r"rb(\d+),t\d+,tb(\d+)", out)]
        if found and (expect is None or all(expect(x) for x in found)):
            return found
        time.sleep(0.05)
    if found:
        return found
    raise AssertionError(f"no established connection on port {port}")


def port_of(broker):
    return int(broker.bootstrap.rsplit(":", 1)[1])


def test_kafka_default_socket_buffers(own_broker):
    b = own_broker()
    port = port_of(b)
    # A real client works over such a connection ...
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert md.brokers
    # ... and a connection we hold open shows Kafka's default 102400-byte buffers.
    with socket.create_connection(("127.0.0.1", port)):
        want = (204800, 204800)
        assert all(x == want for x in broker_side_buffers(port, expect=lambda x: x == want))


def test_configured_socket_buffers(own_broker):
    b = own_broker(overrides={"socket.send.buffer.bytes": "65536", "socket.receive.buffer.bytes": "150000"})
    port = port_of(b)
    with socket.create_connection(("127.0.0.1", port)):
        want = (300000, 131072)
        assert all(x == want for x in broker_side_buffers(port, expect=lambda x: x == want))


def test_os_default_socket_buffers(own_broker):
    b = own_broker(overrides={"socket.send.buffer.bytes": "-1", "socket.receive.buffer.bytes": "-1"})
    port = port_of(b)
    with socket.create_connection(("127.0.0.1", port)):
        for rb, tb in broker_side_buffers(port):
            # Not set: the kernel's autotuned defaults (net.ipv4.tcp_rmem / tcp_wmem), not Kafka's.
            assert rb != 204800 and tb != 204800
