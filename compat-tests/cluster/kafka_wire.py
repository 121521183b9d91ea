"""Minimal Kafka wire-protocol client for the few requests no Python client sends.

Encodes/decodes exactly the fields of the message schemas in apache/kafka
`clients/src/main/resources/common/message/*.json` (as generated in the vendored kafka-protocol 0.18 crate,
`vendor/kafka-protocol/src/messages/*.rs`):

  * ApiVersions v3 (api key 18): request ClientSoftwareName/Version; response ErrorCode, ApiKeys[ApiKey, MinVersion,
    MaxVersion], ThrottleTimeMs, tagged SupportedFeatures (tag 0), FinalizedFeaturesEpoch (1), FinalizedFeatures (2).
    Its response header is always v0 (no tagged fields), whatever the request version.
  * Metadata v9-v13 (api key 3), flexible: only the brokers, cluster id and controller id are decoded.
  * BrokerRegistration v0-v4 (api key 62, flexible from v0): BrokerId, ClusterId, IncarnationId, Listeners[Name, Host,
    Port(uint16), SecurityProtocol], Features[Name, MinSupportedVersion, MaxSupportedVersion], Rack (nullable),
    IsMigratingZkBroker (v1+), LogDirs[uuid] (v2+), PreviousBrokerEpoch (v3+, default -1); response ThrottleTimeMs,
    ErrorCode, BrokerEpoch.
  * BrokerHeartbeat v0-v1 (api key 63, flexible from v0): BrokerId, BrokerEpoch, CurrentMetadataOffset, WantFence,
    WantShutDown, tagged OfflineLogDirs (v1+, tag 0, omitted here); response ThrottleTimeMs, ErrorCode, IsCaughtUp,
    IsFenced, ShouldShutDown.

Flexible requests use request header v2 (ApiKey, ApiVersion, CorrelationId, ClientId as a *non-compact* nullable
string, tagged fields) and response header v1 (CorrelationId, tagged fields).
"""

import socket
import struct
import uuid

API_METADATA = 3
API_API_VERSIONS = 18
API_BROKER_REGISTRATION = 62
API_BROKER_HEARTBEAT = 63

# Error codes (org.apache.kafka.common.protocol.Errors) used by the cluster tests.
ERROR_NAMES = {
    0: "NONE",
    35: "UNSUPPORTED_VERSION",
    41: "NOT_CONTROLLER",
    42: "INVALID_REQUEST",
    77: "STALE_BROKER_EPOCH",
    101: "DUPLICATE_BROKER_REGISTRATION",
    102: "BROKER_ID_NOT_REGISTERED",
    104: "INCONSISTENT_CLUSTER_ID",
}


def error_name(code):
    return f"{ERROR_NAMES.get(code, 'UNKNOWN')}({code})"


# ----------------------------------------------------------------------------- encoding


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def u16(v):
    return struct.pack(">H", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def compact_string(s):
    """COMPACT_NULLABLE_STRING when s is None."""
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_array(items, enc):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(enc(x) for x in items)


def uuid_bytes(u):
    return u.bytes if isinstance(u, uuid.UUID) else bytes(u)


NO_TAGS = uvarint(0)


# ----------------------------------------------------------------------------- decoding


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated response: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def boolean(self):
        return self.take(1) != b"\x00"

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = 0
        v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 35:
                raise ValueError("varint too long")

    def compact_string(self):
        n = self.uvarint()
        if n == 0:
            return None
        return self.take(n - 1).decode()

    def uuid(self):
        return uuid.UUID(bytes=self.take(16))

    def compact_array(self, dec):
        n = self.uvarint()
        if n == 0:
            return None
        return [dec(self) for _ in range(n - 1)]

    def tagged_fields(self, handlers=None):
        """Reads a tagged-field section; handlers: {tag: fn(Reader)}; unknown tags are skipped."""
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            raw = self.take(size)
            if handlers and tag in handlers:
                out[tag] = handlers[tag](Reader(raw))
        return out


# ----------------------------------------------------------------------------- connection


class KafkaConnection:
    """One TCP connection; request() sends a framed request and returns the response body."""

    def __init__(self, host, port, timeout=10.0, client_id="gregor-cluster-tests"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self.correlation = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, payload):
        self.sock.sendall(i32(len(payload)) + payload)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"connection closed by the server after {len(buf)}/{n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self):
        size = struct.unpack(">i", self._recv_exact(4))[0]
        return self._recv_exact(size)

    def header(self, api_key, version, flexible):
        self.correlation += 1
        cid = self.client_id.encode()
        h = i16(api_key) + i16(version) + i32(self.correlation) + i16(len(cid)) + cid
        return h + (NO_TAGS if flexible else b"")

    def request(self, api_key, version, body, flexible=True, response_header_flexible=None):
        if response_header_flexible is None:
            response_header_flexible = flexible and api_key != API_API_VERSIONS
        self.send_raw(self.header(api_key, version, flexible) + body)
        r = Reader(self.recv_frame())
        corr = r.i32()
        if corr != self.correlation:
            raise ValueError(f"correlation id {corr} != {self.correlation}")
        if response_header_flexible:
            r.tagged_fields()
        return r

    # ------------------------------------------------------------------ ApiVersions v3

    def api_versions(self):
        """Returns {'api_keys': {key: (min, max)}, 'supported_features': {name: (min, max)},
        'finalized_features': {name: (min, max)}, 'finalized_epoch': int}."""
        body = compact_string("gregor-cluster-tests") + compact_string("1.0") + NO_TAGS
        r = self.request(API_API_VERSIONS, 3, body)
        err = r.i16()
        if err != 0:
            raise ValueError(f"ApiVersions v3 error {error_name(err)}")

        def key(rr):
            k, lo, hi = rr.i16(), rr.i16(), rr.i16()
            rr.tagged_fields()
            return k, (lo, hi)

        keys = dict(r.compact_array(key) or [])
        r.i32()  # throttle

        def feature(rr):
            name, a, b = rr.compact_string(), rr.i16(), rr.i16()
            rr.tagged_fields()
            return name, (a, b)

        tags = r.tagged_fields({
            0: lambda rr: dict(rr.compact_array(feature) or []),
            1: lambda rr: rr.i64(),
            2: lambda rr: {k: (lo, hi) for k, (hi, lo) in (rr.compact_array(feature) or [])},
        })
        return {
            "api_keys": keys,
            "supported_features": tags.get(0, {}),
            "finalized_epoch": tags.get(1, -1),
            # FinalizedFeatures fields are Name, MaxVersionLevel, MinVersionLevel (in that order).
            "finalized_features": tags.get(2, {}),
        }

    # ------------------------------------------------------------------ Metadata v9..v13

    def metadata(self, version):
        """Metadata for no topics: {'brokers': {id: (host, port, rack)}, 'cluster_id', 'controller_id'}."""
        if not 9 <= version <= 13:
            raise ValueError(f"Metadata v{version} not implemented here (need a flexible version 9..13)")
        body = uvarint(1)  # Topics: empty array = no topics
        body += boolean(False)  # AllowAutoTopicCreation
        if version <= 10:
            body += boolean(False)  # IncludeClusterAuthorizedOperations (v8-10)
        body += boolean(False)  # IncludeTopicAuthorizedOperations
        body += NO_TAGS
        r = self.request(API_METADATA, version, body)
        r.i32()  # throttle

        def broker(rr):
            node, host, port, rack = rr.i32(), rr.compact_string(), rr.i32(), rr.compact_string()
            rr.tagged_fields()
            return node, (host, port, rack)

        brokers = dict(r.compact_array(broker) or [])
        cluster_id = r.compact_string()
        controller_id = r.i32()
        return {"brokers": brokers, "cluster_id": cluster_id, "controller_id": controller_id}

    # ------------------------------------------------------------------ BrokerRegistration v0..v4

    def broker_registration(self, version, broker_id, cluster_id, incarnation_id, listeners, features,
                            rack=None, log_dirs=(), previous_broker_epoch=-1):
        """listeners: [(name, host, port, security_protocol)]; features: {name: (min, max)}.
        Returns (error_code, broker_epoch)."""
        if not 0 <= version <= 4:
            raise ValueError(f"BrokerRegistration v{version} not implemented here")
        body = i32(broker_id) + compact_string(cluster_id) + uuid_bytes(incarnation_id)
        body += compact_array(listeners, lambda l: compact_string(l[0]) + compact_string(l[1]) + u16(l[2])
                              + i16(l[3]) + NO_TAGS)
        body += compact_array(sorted(features.items()),
                              lambda f: compact_string(f[0]) + i16(f[1][0]) + i16(f[1][1]) + NO_TAGS)
        body += compact_string(rack)
        if version >= 1:
            body += boolean(False)  # IsMigratingZkBroker
        if version >= 2:
            body += compact_array(list(log_dirs), uuid_bytes)
        if version >= 3:
            body += i64(previous_broker_epoch)
        body += NO_TAGS
        r = self.request(API_BROKER_REGISTRATION, version, body)
        r.i32()  # throttle
        err = r.i16()
        epoch = r.i64()
        return err, epoch

    # ------------------------------------------------------------------ BrokerHeartbeat v0..v1

    def broker_heartbeat(self, version, broker_id, broker_epoch, current_metadata_offset=0,
                         want_fence=True, want_shut_down=False):
        """Returns {'error_code', 'is_caught_up', 'is_fenced', 'should_shut_down'}."""
        if not 0 <= version <= 1:
            raise ValueError(f"BrokerHeartbeat v{version} not implemented here")
        body = (i32(broker_id) + i64(broker_epoch) + i64(current_metadata_offset) + boolean(want_fence)
                + boolean(want_shut_down) + NO_TAGS)
        r = self.request(API_BROKER_HEARTBEAT, version, body)
        r.i32()  # throttle
        return {
            "error_code": r.i16(),
            "is_caught_up": r.boolean(),
            "is_fenced": r.boolean(),
            "should_shut_down": r.boolean(),
        }


def pick_version(api_keys, key, lo, hi):
    """Highest version in [lo, hi] that the server supports, or None."""
    if key not in api_keys:
        return None
    smin, smax = api_keys[key]
    v = min(hi, smax)
    return v if v >= max(lo, smin) else None


def node_metadata(host, port, timeout=5.0):
    """Metadata (no topics) from exactly this broker, at the highest flexible version both sides support."""
    with KafkaConnection(host, port, timeout=timeout) as c:
        v = pick_version(c.api_versions()["api_keys"], API_METADATA, 9, 13)
        if v is None:
            raise ValueError(f"{host}:{port} supports no Metadata version in 9..13")
        return c.metadata(v)
