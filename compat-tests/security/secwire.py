"""Hand-written Kafka frames for the raw-socket security tests (no client library involved).

Only non-flexible versions are used, so every request has header v1 (ApiKey int16, ApiVersion int16,
CorrelationId int32, ClientId nullable string) and every response header v0 (CorrelationId int32):

  * ApiVersions v0 (18): empty body; response ErrorCode, ApiKeys[ApiKey, MinVersion, MaxVersion].
  * Metadata v1 (3): Topics array (null = all topics); response Brokers[NodeId, Host, Port, Rack], ControllerId,
    Topics[...] (only the brokers are decoded).
  * SaslHandshake v1 (17): Mechanism string; response ErrorCode, Mechanisms[string].
  * SaslAuthenticate v1 (36): AuthBytes bytes; response ErrorCode, ErrorMessage nullable string, AuthBytes bytes,
    SessionLifetimeMs int64.

`ScramClient` is the client side of a SCRAM-SHA-256/512 exchange (client-first, client-final with the proof, the
server signature check) for complete logins with raw frames.

A frame is int32 size + payload. `RawConn.outcome()` tells what the peer did after a request: a response frame,
EOF (orderly close), RST, or nothing within the timeout.
"""

import base64
import hashlib
import hmac
import os
import socket
import struct

API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_API_VERSIONS = 18
API_SASL_AUTHENTICATE = 36

ERRORS = {
    0: "NONE",
    33: "UNSUPPORTED_SASL_MECHANISM",
    34: "ILLEGAL_SASL_STATE",
    35: "UNSUPPORTED_VERSION",
    58: "SASL_AUTHENTICATION_FAILED",
}


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def bytes_field(b):
    return i32(len(b)) + b


def request(api_key, version, correlation_id, body=b"", client_id="gregor-security-tests"):
    """A complete frame (size prefix included) with request header v1."""
    payload = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id) + body
    return i32(len(payload)) + payload


def api_versions_v0(corr=1):
    return request(API_API_VERSIONS, 0, corr)


def metadata_v1(corr=1, topics=None):
    if topics is None:
        body = i32(-1)
    else:
        body = i32(len(topics)) + b"".join(string(t) for t in topics)
    return request(API_METADATA, 1, corr, body)


def sasl_handshake_v1(mechanism, corr=1):
    return request(API_SASL_HANDSHAKE, 1, corr, string(mechanism))


def sasl_authenticate_v1(auth_bytes, corr=1):
    return request(API_SASL_AUTHENTICATE, 1, corr, bytes_field(auth_bytes))


def plain_token(user, password, authzid=""):
    return f"{authzid}\0{user}\0{password}".encode()


class ScramClient:
    """The client side of SCRAM-SHA-256/512 (RFC 5802, as Kafka's ScramSaslClient): first() -> client-first,
    final(server_first) -> client-final with the proof, verify(server_final) checks the server signature."""

    def __init__(self, mechanism, user, password, nonce=None):
        self.hash = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}[mechanism]
        self.user, self.password = user, password
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user},r={self.nonce}"
        self.salted = self.auth_message = None

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hash).digest()

    def first(self):
        return f"n,,{self.first_bare}".encode()

    def final(self, server_first):
        sf = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in sf.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ValueError(f"server nonce {attrs['r']!r} does not extend {self.nonce!r}")
        self.salted = hashlib.pbkdf2_hmac(self.hash().name, self.password.encode(), base64.b64decode(attrs["s"]),
                                          int(attrs["i"]))
        without_proof = f"c=biws,r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{sf},{without_proof}".encode()
        client_key = self._hmac(self.salted, b"Client Key")
        signature = self._hmac(self.hash(client_key).digest(), self.auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final):
        expected = self._hmac(self._hmac(self.salted, b"Server Key"), self.auth_message)
        return server_final.decode() == f"v={base64.b64encode(expected).decode()}"


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated: need {n} bytes at {self.pos} of {len(self.data)}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, dec):
        n = self.i32()
        return None if n < 0 else [dec(self) for _ in range(n)]


def parse_api_versions_v0(body):
    r = Reader(body)
    err = r.i16()
    keys = r.array(lambda r: (r.i16(), r.i16(), r.i16()))
    return {"error_code": err, "api_keys": {k: (lo, hi) for k, lo, hi in keys or []}}


def parse_metadata_v1(body):
    r = Reader(body)
    brokers = r.array(lambda r: (r.i32(), r.string(), r.i32(), r.string()))
    controller = r.i32()
    return {"brokers": {b[0]: (b[1], b[2]) for b in brokers}, "controller_id": controller}


def parse_sasl_handshake_v1(body):
    r = Reader(body)
    err = r.i16()
    mechs = r.array(lambda r: r.string())
    return {"error_code": err, "mechanisms": mechs}


def parse_sasl_authenticate_v1(body):
    r = Reader(body)
    return {"error_code": r.i16(), "error_message": r.string(), "auth_bytes": r.bytes(),
            "session_lifetime_ms": r.i64()}


class Closed(Exception):
    """The peer closed the connection (how: 'eof' or 'reset') before a complete frame arrived."""

    def __init__(self, how, partial=b""):
        super().__init__(f"connection closed by peer ({how}) after {len(partial)} bytes")
        self.how = how
        self.partial = partial


class RawConn:
    def __init__(self, host, port, timeout=10.0, sock=None):
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.received = b""  # everything read so far (for reports)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                raise Closed("reset", buf) from None
            if not chunk:
                raise Closed("eof", buf)
            buf += chunk
            self.received += chunk
        return buf

    def recv_frame(self):
        size = struct.unpack(">i", self._recv_exact(4))[0]
        return self._recv_exact(size)

    def recv_response(self, expect_corr=None):
        """Response header v0 + body; returns (correlation_id, body)."""
        frame = self.recv_frame()
        corr = struct.unpack(">i", frame[:4])[0]
        if expect_corr is not None and corr != expect_corr:
            raise ValueError(f"correlation id {corr}, expected {expect_corr}")
        return corr, frame[4:]

    def roundtrip(self, frame, corr):
        self.send(frame)
        return self.recv_response(corr)[1]

    def outcome(self, timeout=10.0):
        """What the peer does next: ('eof', extra_bytes) | ('reset', extra_bytes) | ('timeout', extra_bytes).
        Bytes the peer sends before closing are collected (a response here means the peer did not just close)."""
        self.sock.settimeout(timeout)
        extra = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return "reset", extra
            except socket.timeout:
                return "timeout", extra
            if not chunk:
                return "eof", extra
            extra += chunk
            self.received += chunk


def plaintext_metadata(host, port, timeout=5.0):
    with RawConn(host, port, timeout=timeout) as c:
        return parse_metadata_v1(c.roundtrip(metadata_v1(corr=7), 7))


def plaintext_api_versions(host, port, timeout=5.0):
    with RawConn(host, port, timeout=timeout) as c:
        return parse_api_versions_v0(c.roundtrip(api_versions_v0(corr=3), 3))
