"""Hand-written frames (secwire.py) against the SASL and TLS listeners: the SASL state machine before, during and after
authentication, oversized frames, and the wrong protocol on a port. After every bad input the broker must still be
alive and serve a normal client (shelpers.assert_serving)."""

import socket
import ssl
import struct

import pytest

import secwire as w
import shelpers as h
from secnode import MECHANISMS

PLAIN_FAIL = "Authentication failed: Invalid username or password"
SCRAM_FAIL = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"
SASL_MAX_RECEIVE = 524288  # sasl.server.max.receive.size default


def conn(node, listener="SASL_PLAINTEXT"):
    return w.RawConn("127.0.0.1", node.port(listener), timeout=10)


def assert_closed(c, timeout=10, allow_tls_alert=False):
    """The peer closes the connection (EOF or RST) without sending a Kafka response. allow_tls_alert: a TLS alert
    record (content type 0x15) may precede the close."""
    how, extra = c.outcome(timeout=timeout)
    assert how in ("eof", "reset"), f"connection not closed within {timeout}s ({how}); received {extra[:64]!r}"
    if allow_tls_alert and extra:
        assert extra[0] == 0x15, f"expected nothing or a TLS alert before the close, got {extra[:64]!r}"
    else:
        assert extra == b"", f"expected a close without a response, got {extra[:64]!r}"
    return how, extra


def handshake(c, mechanism, corr=1):
    return w.parse_sasl_handshake_v1(c.roundtrip(w.sasl_handshake_v1(mechanism, corr=corr), corr))


def authenticate(c, token, corr=2):
    return w.parse_sasl_authenticate_v1(c.roundtrip(w.sasl_authenticate_v1(token, corr=corr), corr))


# --------------------------------------------------------------------------------------------- the SASL state machine


def test_metadata_before_handshake_closes(node):
    with conn(node) as c:
        c.send(w.metadata_v1(corr=5))
        assert_closed(c)
    h.assert_serving(node)


def test_api_versions_allowed_once_before_handshake(node):
    """ApiVersions is answered before authentication (full API list); a second ApiVersions, or any other API after
    it, closes the connection."""
    with conn(node) as c:
        av = w.parse_api_versions_v0(c.roundtrip(w.api_versions_v0(corr=1), 1))
        assert av["error_code"] == 0
        for key in (w.API_METADATA, w.API_SASL_HANDSHAKE, w.API_SASL_AUTHENTICATE, w.API_API_VERSIONS):
            assert key in av["api_keys"], av
        c.send(w.metadata_v1(corr=2))
        assert_closed(c)
    with conn(node) as c:
        c.roundtrip(w.api_versions_v0(corr=1), 1)
        c.send(w.api_versions_v0(corr=2))
        assert_closed(c)
    with conn(node) as c:  # ApiVersions, then the normal handshake still works
        c.roundtrip(w.api_versions_v0(corr=1), 1)
        assert handshake(c, "PLAIN", corr=2)["error_code"] == 0
        assert authenticate(c, w.plain_token("alice", "alice-secret"), corr=3)["error_code"] == 0
        md = w.parse_metadata_v1(c.roundtrip(w.metadata_v1(corr=4), 4))
        assert md["brokers"] == {1: ("127.0.0.1", node.port("SASL_PLAINTEXT"))}, md
    h.assert_serving(node)


def test_authenticate_before_handshake_closes(node):
    with conn(node) as c:
        c.send(w.sasl_authenticate_v1(w.plain_token("alice", "alice-secret"), corr=3))
        assert_closed(c)
    h.assert_serving(node)


def test_unsupported_mechanism_raw(node):
    """SaslHandshake with a mechanism that is not enabled: UNSUPPORTED_SASL_MECHANISM (33) + the enabled list, then
    the broker closes the connection."""
    with conn(node) as c:
        r = handshake(c, "GSSAPI")
        assert r["error_code"] == 33, r
        assert sorted(r["mechanisms"]) == sorted(MECHANISMS), r
        assert_closed(c)
    h.assert_serving(node)


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_plain_success_then_state_errors(node, listener):
    """PLAIN over SaslHandshake v1 + SaslAuthenticate v1: success (empty auth bytes, session lifetime 0 since
    connections.max.reauth.ms is 0), Metadata then works; a second SaslAuthenticate or SaslHandshake on the
    authenticated connection gets ILLEGAL_SASL_STATE (34) and the connection stays usable."""
    if listener == "SASL_SSL":
        ctx = ssl.create_default_context(cafile=node.certs.path("ca.pem"))
        raw = socket.create_connection(("127.0.0.1", node.port(listener)), timeout=10)
        c = w.RawConn(None, None, timeout=10, sock=ctx.wrap_socket(raw, server_hostname="127.0.0.1"))
    else:
        c = conn(node, listener)
    with c:
        r = handshake(c, "PLAIN")
        assert r["error_code"] == 0 and sorted(r["mechanisms"]) == sorted(MECHANISMS), r
        r = authenticate(c, w.plain_token("alice", "alice-secret"))
        assert r["error_code"] == 0 and r["auth_bytes"] == b"" and r["session_lifetime_ms"] == 0, r
        md = w.parse_metadata_v1(c.roundtrip(w.metadata_v1(corr=3), 3))
        assert md["brokers"] == {1: ("127.0.0.1", node.port(listener))}, md
        r = authenticate(c, w.plain_token("alice", "alice-secret"), corr=4)
        assert r["error_code"] == 34, r
        assert r["error_message"] == "SaslAuthenticate request received after successful authentication", r
        r = handshake(c, "PLAIN", corr=5)
        assert r["error_code"] == 34 and r["mechanisms"] == [], r
        md = w.parse_metadata_v1(c.roundtrip(w.metadata_v1(corr=6), 6))
        assert 1 in md["brokers"], md


def test_plain_wrong_password_raw(node):
    """SASL_AUTHENTICATION_FAILED (58) with PlainSaslServer's message, then the connection is closed (after
    connection.failed.authentication.delay.ms)."""
    with conn(node) as c:
        assert handshake(c, "PLAIN")["error_code"] == 0
        r = authenticate(c, w.plain_token("alice", "wrong"))
        assert r["error_code"] == 58 and r["error_message"] == PLAIN_FAIL, r
        assert_closed(c)
    with conn(node) as c:  # authorization id different from the user name
        assert handshake(c, "PLAIN")["error_code"] == 0
        r = authenticate(c, w.plain_token("alice", "alice-secret", authzid="admin"))
        assert r["error_code"] == 58, r
        assert r["error_message"] == ("Authentication failed: Client requested an authorization id that is "
                                      "different from username"), r
        assert_closed(c)
    h.assert_serving(node)


def test_scram_unknown_user_fails_on_first_message(node):
    """SCRAM client-first for a user without credentials: the first SaslAuthenticate already fails (no
    server-first) with the generic SCRAM message, then close."""
    with conn(node) as c:
        assert handshake(c, "SCRAM-SHA-256")["error_code"] == 0
        r = authenticate(c, b"n,,n=nobody,r=fyko+d2lbbFgONRv9qkxdawL")
        assert r["error_code"] == 58 and r["error_message"] == SCRAM_FAIL.format("SCRAM-SHA-256"), r
        assert_closed(c)
    with conn(node) as c:  # known user: the first message gets a server-first (r=<client nonce+server nonce>,s=,i=)
        assert handshake(c, "SCRAM-SHA-256")["error_code"] == 0
        r = authenticate(c, b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL")
        assert r["error_code"] == 0, r
        sf = dict(kv.split("=", 1) for kv in r["auth_bytes"].decode().split(","))
        assert sf["r"].startswith("fyko+d2lbbFgONRv9qkxdawL") and len(sf["r"]) > len("fyko+d2lbbFgONRv9qkxdawL"), sf
        assert sf["i"] == "8192" and sf["s"], sf
    h.assert_serving(node)


def test_other_request_during_authentication(node):
    """After SaslHandshake, a non-SaslAuthenticate request gets that API's error response (ILLEGAL_SASL_STATE;
    Metadata v1 has no error field, so Kafka's 'error response' is an empty Metadata: no brokers, controller -1,
    no topics) and then the connection is closed."""
    with conn(node) as c:
        assert handshake(c, "PLAIN")["error_code"] == 0
        c.send(w.metadata_v1(corr=5))
        corr, body = c.recv_response()
        assert corr == 5
        md = w.parse_metadata_v1(body)
        assert md == {"brokers": {}, "controller_id": -1}, md
        assert_closed(c)
    h.assert_serving(node)


def test_legacy_handshake_v0_raw_token(node):
    """SaslHandshake v0: the SASL tokens follow as raw size-prefixed frames (no SaslAuthenticate); PLAIN success is
    answered by an empty frame, and Kafka requests work afterwards."""
    with conn(node) as c:
        r = w.parse_sasl_handshake_v1(c.roundtrip(w.request(w.API_SASL_HANDSHAKE, 0, 4, w.string("PLAIN")), 4))
        assert r["error_code"] == 0, r
        tok = w.plain_token("alice", "alice-secret")
        c.send(struct.pack(">i", len(tok)) + tok)
        assert c.recv_frame() == b""
        md = w.parse_metadata_v1(c.roundtrip(w.metadata_v1(corr=6), 6))
        assert md["brokers"] == {1: ("127.0.0.1", node.port("SASL_PLAINTEXT"))}, md


# --------------------------------------------------------------------------------------------- oversized input


GIANT = 100_000_000  # a 100 MB claim


@pytest.mark.parametrize("where", ["before-handshake", "after-handshake-v1", "after-handshake-v0",
                                   "inside-sasl-authenticate"])
def test_giant_sasl_token_closes(node, where):
    """A size prefix (or SaslAuthenticate auth_bytes length) claiming 100 MB on an unauthenticated SASL connection is
    refused by closing the connection, without the broker allocating or waiting for the bytes."""
    with conn(node) as c:
        if where == "before-handshake":
            c.send(struct.pack(">i", GIANT) + b"\0" * 64)
        elif where == "after-handshake-v1":
            assert handshake(c, "PLAIN")["error_code"] == 0
            c.send(struct.pack(">i", GIANT) + b"\0" * 64)
        elif where == "after-handshake-v0":
            r = w.parse_sasl_handshake_v1(c.roundtrip(w.request(w.API_SASL_HANDSHAKE, 0, 4, w.string("PLAIN")), 4))
            assert r["error_code"] == 0
            c.send(struct.pack(">i", GIANT) + b"\0" * 64)
        else:
            assert handshake(c, "PLAIN")["error_code"] == 0
            # a small, complete SaslAuthenticate v1 frame whose auth_bytes length claims 100 MB
            body = struct.pack(">hhi", w.API_SASL_AUTHENTICATE, 1, 5) + w.string("x") + struct.pack(">i", GIANT)
            c.send(struct.pack(">i", len(body)) + body)
        assert_closed(c)
    h.assert_serving(node)


def test_sasl_max_receive_size_boundary(node):
    """Before authentication the frame limit is sasl.server.max.receive.size (524288): a 524289-byte claim closes
    at once, a 524288-byte claim is accepted (the broker waits for the payload)."""
    with conn(node) as c:
        c.send(struct.pack(">i", SASL_MAX_RECEIVE + 1) + b"\0" * 16)
        assert_closed(c)
    with conn(node) as c:
        c.send(struct.pack(">i", SASL_MAX_RECEIVE) + b"\0" * 16)
        how, extra = c.outcome(timeout=1.5)
        assert how == "timeout" and extra == b"", (how, extra)
    h.assert_serving(node)


# --------------------------------------------------------------------------------------------- wrong protocol


def client_hello():
    """The bytes of a real TLS ClientHello (Python's ssl over memory BIOs)."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    data = out.read()
    assert data[0] == 0x16, data[:8]  # handshake record
    return data


@pytest.mark.parametrize("listener", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_tls_client_hello_on_plaintext_port(node, listener):
    """The first 4 bytes of a ClientHello (16 03 01 xx) read as a frame size of ~369 MB: above
    socket.request.max.bytes (PLAINTEXT) / sasl.server.max.receive.size (SASL_PLAINTEXT), so the connection is
    closed without a byte sent back; a real TLS client sees an unexpected EOF."""
    with conn(node, listener) as c:
        c.send(client_hello())
        assert_closed(c)
    raw = socket.create_connection(("127.0.0.1", node.port(listener)), timeout=10)
    ctx = ssl.create_default_context(cafile=node.certs.path("ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        ctx.wrap_socket(raw, server_hostname="localhost").close()
    raw.close()
    h.assert_serving(node)


@pytest.mark.parametrize("listener", ["SSL", "SASL_SSL"])
def test_plaintext_kafka_request_on_tls_port(node, listener):
    """A plaintext ApiVersions request on a TLS listener: no Kafka response; the broker closes the connection (Kafka
    sends a fatal TLS alert first)."""
    with conn(node, listener) as c:
        c.send(w.api_versions_v0(corr=1))
        assert_closed(c, allow_tls_alert=True)
    h.assert_serving(node)


def test_mtls_raw_handshake_without_certificate(node):
    """A TLS client without a certificate on the ssl.client.auth=required listener never gets a Kafka response: the
    handshake (or the first read, TLS 1.3) fails with a TLS alert / close."""
    ctx = ssl.create_default_context(cafile=node.certs.path("ca.pem"))
    raw = socket.create_connection(("127.0.0.1", node.port("SSL")), timeout=10)
    got = None
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError, w.Closed)):
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        c = w.RawConn(None, None, timeout=10, sock=s)
        c.send(w.api_versions_v0(corr=1))
        got = c.recv_response(1)
    assert got is None
    raw.close()
    h.assert_serving(node)
