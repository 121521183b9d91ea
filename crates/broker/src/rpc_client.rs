//! The client side of Gregor's inter-node traffic: Kafka's wire protocol from this broker to
//! other brokers and to controllers (BrokerRegistration, BrokerHeartbeat, AlterPartition,
//! AllocateProducerIds and forwarded admin requests to the active controller, Fetch from
//! partition leaders, WriteTxnMarkers), plus Gregor-private RPCs (raft) in Kafka framing.
//!
//! - [`NodeChannel`]: one logical channel to one node address. It connects lazily and keeps one
//!   TCP connection that any number of concurrent callers share (**pipelining**): every request
//!   gets a correlation id, a writer task puts whole frames on the socket, and a reader task
//!   hands each response to the caller waiting for that correlation id, in whatever order the
//!   responses come. When the connection is lost every call in flight fails with
//!   [`RpcError::Disconnected`]; the next call reconnects (after a short, growing backoff).
//! - On connect, ApiVersions is negotiated (v3, falling back as Kafka's `NetworkClient` does) and
//!   the peer's ranges are cached with the connection as [`ApiVersions`].
//! - Calls: [`NodeChannel::call`] (typed, given version), [`NodeChannel::call_auto`] (typed,
//!   highest common version), [`NodeChannel::call_raw`] (an encoded body, for relaying a client's
//!   request unchanged and for private API keys).
//! - [`ChannelPool`]: channels by node id, replaced when a node's address changes.
//! - A secured peer listener ([`ClientSecurity`]): TLS handshake (rustls) before anything, SASL
//!   (SaslHandshake v1, then SaslAuthenticate: PLAIN, or SCRAM with `gregor_auth`'s client)
//!   after ApiVersions, as Kafka's clients do.
//!
//! Header versions ([`header_versions`]): a Kafka API uses the request/response header versions
//! its message definition gives for the request version (v2/v1 for flexible versions, v1/v0
//! before; ApiVersions responses always v0) — the same `kafka-protocol` functions
//! `gregor_protocol` decodes requests and encodes responses with. API keys that `kafka-protocol`
//! does not define are Gregor-private: request header v2, response header v1, and no
//! ApiVersions entry is needed to send them. (Keys Kafka 4 removed, such as ControlledShutdown
//! (7), count as private too: give private APIs keys far above Kafka's, so that a
//! `kafka-protocol` upgrade cannot claim them.)
//!
//! Safety against a hostile or broken peer: response frames over
//! [`ChannelConfig::max_frame_bytes`] close the connection as soon as their size prefix is read
//! (nothing is allocated for them); nothing read off the network is unwrapped. Requests over the
//! same limit are refused before they are sent, as is a version the peer did not advertise (a
//! peer closes the connection on those, which would fail every other call sharing it).
//!
//! A call's timeout covers everything: waiting for a connection (backoff, connect, ApiVersions)
//! and the round trip. A response that arrives after its caller gave up is dropped by the
//! reader; the connection stays up. Each call runs in a debug span `rpc` (api, version, node,
//! addr, correlation id).
//!
//! This module is a leaf: it uses no other module of the broker.

#![warn(missing_docs)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::frame::{self, FrameError};
use gregor_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use gregor_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use gregor_protocol::ErrorCode;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

#[cfg(test)]
mod tests;

/// Request header version of Gregor-private API keys (flexible: client id and tagged fields).
pub const PRIVATE_REQUEST_HEADER_VERSION: i16 = 2;

/// Response header version of Gregor-private API keys (flexible: tagged fields).
pub const PRIVATE_RESPONSE_HEADER_VERSION: i16 = 1;

/// The ApiVersions version asked for first (the first flexible one, Kafka 2.4+).
const API_VERSIONS_FIRST: i16 = 3;

/// Frames queued for the writer task of one connection before callers wait.
const WRITE_QUEUE: usize = 256;

/// Bytes of the correlation id that starts every response header.
const CORRELATION_ID_LEN: usize = 4;

/// Offset of the correlation id in a request frame: size (4), api key (2), api version (2).
const CORRELATION_ID_OFFSET: usize = 8;

/// Whether `api_key` is a Gregor-private API (one that Kafka does not define).
pub fn is_private_api(api_key: i16) -> bool {
    ApiKey::try_from(api_key).is_err()
}

/// The `(request, response)` header versions for `api_key` at `version`.
///
/// Kafka APIs: as their message definitions say (what `gregor_protocol` decodes requests and
/// encodes responses with). Private APIs: [`PRIVATE_REQUEST_HEADER_VERSION`] and
/// [`PRIVATE_RESPONSE_HEADER_VERSION`].
pub fn header_versions(api_key: i16, version: i16) -> (i16, i16) {
    match ApiKey::try_from(api_key) {
        Ok(api) => (
            api.request_header_version(version),
            api.response_header_version(version),
        ),
        Err(()) => (
            PRIVATE_REQUEST_HEADER_VERSION,
            PRIVATE_RESPONSE_HEADER_VERSION,
        ),
    }
}

/// The highest version in both `theirs` and `ours` (inclusive `(min, max)` ranges), if any.
pub fn highest_common_version(theirs: (i16, i16), ours: (i16, i16)) -> Option<i16> {
    let max = theirs.1.min(ours.1);
    (max >= theirs.0.max(ours.0)).then_some(max)
}

/// A readable name for an API key: Kafka's name, or `private API <key>`.
fn api_label(api_key: &i16) -> String {
    match ApiKey::try_from(*api_key) {
        Ok(api) => format!("{api:?}"),
        Err(()) => format!("private API {api_key}"),
    }
}

fn unsupported_message(
    addr: &str,
    api_key: &i16,
    wanted: &(i16, i16),
    remote: &Option<(i16, i16)>,
) -> String {
    let api = api_label(api_key);
    let wanted = if wanted.0 == wanted.1 {
        format!("v{}", wanted.0)
    } else {
        format!("a version in {}..={}", wanted.0, wanted.1)
    };
    match remote {
        Some((min, max)) => {
            format!("{addr} supports {api} v{min}..=v{max}, not {wanted}")
        }
        None => format!("{addr} does not advertise {api} (wanted {wanted})"),
    }
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// No connection could be established: TCP connect failed or timed out, or the ApiVersions
    /// handshake failed. Nothing was sent.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Address of the node.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The call did not complete within its timeout (the request may have been processed).
    #[error("{} v{version} to {addr} timed out after {timeout:?}", api_label(.api_key))]
    Timeout {
        /// Address of the node.
        addr: String,
        /// API of the call.
        api_key: i16,
        /// Version of the call (`-1` if none had been chosen yet: still connecting).
        version: i16,
        /// The call's timeout.
        timeout: Duration,
    },
    /// The connection was lost while the call was in flight (the request may have been
    /// processed). The next call reconnects.
    #[error("connection to {addr} lost: {reason}")]
    Disconnected {
        /// Address of the node.
        addr: String,
        /// Why the connection ended.
        #[source]
        reason: DisconnectReason,
    },
    /// The peer does not support the API, or not in the version(s) asked for. Nothing was sent.
    #[error("{}", unsupported_message(.addr, .api_key, .wanted, .remote))]
    UnsupportedVersion {
        /// Address of the node.
        addr: String,
        /// API of the call.
        api_key: i16,
        /// The version (or range of versions) the caller can use.
        wanted: (i16, i16),
        /// The range the peer advertised, if it advertised the API at all.
        remote: Option<(i16, i16)>,
    },
    /// The response could not be decoded. The connection stays up.
    #[error("cannot decode {} v{version} response from {addr}: {message}", api_label(.api_key))]
    Decode {
        /// Address of the node.
        addr: String,
        /// API of the call.
        api_key: i16,
        /// Version of the call.
        version: i16,
        /// What went wrong.
        message: String,
    },
    /// The request could not be encoded in the chosen version (a field the version lacks is
    /// set). Nothing was sent.
    #[error("cannot encode {} v{version} request: {message}", api_label(.api_key))]
    Encode {
        /// API of the call.
        api_key: i16,
        /// Version of the call.
        version: i16,
        /// What went wrong.
        message: String,
    },
    /// The request frame exceeds [`ChannelConfig::max_frame_bytes`]. Nothing was sent.
    #[error(
        "{} v{version} request of {size} bytes exceeds the {max}-byte frame limit",
        api_label(.api_key)
    )]
    FrameTooLarge {
        /// API of the call.
        api_key: i16,
        /// Version of the call.
        version: i16,
        /// Size of the frame (without the size prefix).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The channel was closed ([`NodeChannel::close`]) or replaced in its [`ChannelPool`].
    #[error("channel to {addr} is closed")]
    Closed {
        /// Address of the node.
        addr: String,
    },
}

impl RpcError {
    /// Whether trying again (on a new connection) may succeed: connect failures, timeouts and
    /// lost connections.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            RpcError::Connect { .. } | RpcError::Timeout { .. } | RpcError::Disconnected { .. }
        )
    }
}

/// Why a connection ended; every call in flight on it fails with
/// [`RpcError::Disconnected`] carrying this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The peer closed the connection.
    #[error("the remote closed the connection")]
    RemoteClosed,
    /// The peer announced a response frame over the limit (nothing was allocated for it).
    #[error("the remote sent a frame of {size} bytes, over the {max}-byte limit")]
    FrameTooLarge {
        /// Announced size.
        size: usize,
        /// The limit ([`ChannelConfig::max_frame_bytes`]).
        max: usize,
    },
    /// The peer sent something that is not a response frame.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(String),
    /// Closed by this side after [`ChannelConfig::idle_timeout`] without calls.
    #[error("closed after being idle")]
    Idle,
    /// Closed by this side ([`NodeChannel::close`], or the channel was dropped).
    #[error("closed locally")]
    Closed,
}

/// Settings of a [`NodeChannel`] (shared by the channels of a [`ChannelPool`]).
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// The `client_id` of every request header.
    pub client_id: String,
    /// Limit for opening a connection: TCP connect, then the ApiVersions exchange (each).
    pub connect_timeout: Duration,
    /// Wait before reconnecting, counted from the previous connection attempt (Kafka's
    /// `reconnect.backoff.ms`); doubles with each consecutive failure.
    pub reconnect_backoff: Duration,
    /// Cap of the doubling backoff (Kafka's `reconnect.backoff.max.ms`).
    pub reconnect_backoff_max: Duration,
    /// Largest frame accepted from the peer and sent to it (size prefix excluded).
    pub max_frame_bytes: usize,
    /// Close a connection that had no call in flight and read nothing for this long (Kafka
    /// clients: `connections.max.idle.ms`, 9 minutes, under the brokers' 10). `None`: never.
    pub idle_timeout: Option<Duration>,
    /// `client_software_name` sent in ApiVersions v3+ (letters, digits, `-` and `.`).
    pub software_name: String,
    /// `client_software_version` sent in ApiVersions v3+.
    pub software_version: String,
    /// TLS and SASL of the peer's listener (`None`: PLAINTEXT).
    pub security: Option<Arc<ClientSecurity>>,
}

/// How connections authenticate to a secured listener (SSL, SASL_PLAINTEXT, SASL_SSL), as a
/// Kafka client does: TLS handshake first, then ApiVersions, SaslHandshake (v1) and
/// SaslAuthenticate rounds.
pub struct ClientSecurity {
    /// TLS client configuration (trusted CAs, client certificate).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL mechanism (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`), username and password.
    pub sasl: Option<(String, String, String)>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|(m, u, _)| (m, u)))
            .finish()
    }
}

impl ChannelConfig {
    /// Defaults with the given client id.
    pub fn new(client_id: impl Into<String>) -> ChannelConfig {
        ChannelConfig {
            client_id: client_id.into(),
            connect_timeout: Duration::from_secs(10),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            max_frame_bytes: frame::DEFAULT_MAX_REQUEST_BYTES,
            idle_timeout: Some(Duration::from_secs(9 * 60)),
            security: None,
            software_name: "gregor".to_string(),
            software_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl Default for ChannelConfig {
    fn default() -> ChannelConfig {
        ChannelConfig::new("gregor")
    }
}

/// The API version ranges a peer advertised in ApiVersions, cached per connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersions {
    ranges: HashMap<i16, (i16, i16)>,
    version: i16,
}

impl ApiVersions {
    /// Ranges from an ApiVersions response decoded at `version`.
    pub fn from_response(resp: &ApiVersionsResponse, version: i16) -> ApiVersions {
        ApiVersions {
            ranges: resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
            version,
        }
    }

    /// The ApiVersions version the peer answered.
    pub fn version(&self) -> i16 {
        self.version
    }

    /// The peer's `(min, max)` for `api_key`, if it advertised it.
    pub fn range(&self, api_key: i16) -> Option<(i16, i16)> {
        self.ranges.get(&api_key).copied()
    }

    /// The highest version of `api_key` both the peer and `ours` (`(min, max)`) support.
    pub fn version_for(&self, api_key: i16, ours: (i16, i16)) -> Option<i16> {
        highest_common_version(self.range(api_key)?, ours)
    }

    /// Every advertised `(api_key, (min, max))`, by key.
    pub fn iter(&self) -> impl Iterator<Item = (i16, (i16, i16))> + '_ {
        let mut v: Vec<_> = self.ranges.iter().map(|(k, r)| (*k, *r)).collect();
        v.sort_unstable();
        v.into_iter()
    }
}

// ---------------------------------------------------------------------------------------------
// One TCP connection: pending calls by correlation id, a writer task and a reader task.
// ---------------------------------------------------------------------------------------------

/// What a waiting caller gets: the response frame (correlation id first), or why the
/// connection ended.
type Delivery = Result<Bytes, DisconnectReason>;

/// State shared by a connection's handle and its two tasks.
struct Shared {
    state: Mutex<ConnState>,
    next_correlation: AtomicI32,
    /// Set to `true` once, when the connection closes; both tasks stop on it.
    closed: watch::Sender<bool>,
}

struct ConnState {
    calls: HashMap<i32, oneshot::Sender<Delivery>>,
    closed: Option<DisconnectReason>,
}

impl Shared {
    /// Closes the connection (first reason wins) and fails every call in flight.
    fn close(&self, reason: DisconnectReason) {
        let calls = {
            let mut st = self.state.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason.clone());
            std::mem::take(&mut st.calls)
        };
        if !calls.is_empty() {
            tracing::debug!(in_flight = calls.len(), %reason, "connection closed with calls in flight");
        }
        for (_, tx) in calls {
            let _ = tx.send(Err(reason.clone()));
        }
        self.closed.send_replace(true);
    }

    fn closed_reason(&self) -> Option<DisconnectReason> {
        self.state.lock().closed.clone()
    }

    /// A fresh correlation id and the receiver of its response, unless the connection closed.
    fn register(&self) -> Result<(i32, oneshot::Receiver<Delivery>), DisconnectReason> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.state.lock();
        if let Some(reason) = &st.closed {
            return Err(reason.clone());
        }
        loop {
            let id = self.next_correlation.fetch_add(1, Ordering::Relaxed);
            // After a wrap-around, skip ids still waiting for an answer.
            if let std::collections::hash_map::Entry::Vacant(e) = st.calls.entry(id) {
                e.insert(tx);
                return Ok((id, rx));
            }
        }
    }

    fn forget(&self, id: i32) {
        self.state.lock().calls.remove(&id);
    }

    /// Hands `frame` to the caller of `id`; false if nobody waits for it.
    fn deliver(&self, id: i32, frame: Bytes) -> bool {
        let tx = self.state.lock().calls.remove(&id);
        tx.is_some_and(|tx| tx.send(Ok(frame)).is_ok())
    }

    fn no_calls(&self) -> bool {
        self.state.lock().calls.is_empty()
    }
}

/// Removes a call's entry when the caller stops waiting (timeout, cancellation), so that a late
/// response is discarded.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: i32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.forget(self.id);
    }
}

/// Why a round trip failed, as the retry logic needs it.
enum TripError {
    /// The connection had closed before the frame was handed to the writer: nothing was sent,
    /// so the call may go to a new connection.
    NotSent(DisconnectReason),
    /// The connection was lost while the call was in flight.
    Lost(DisconnectReason),
    /// The response header could not be decoded.
    Header(String),
}

/// The I/O side of a connection. Dropping it closes the connection.
struct Wire {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bytes>,
}

impl Wire {
    /// Starts the reader and writer tasks on `stream`.
    fn start<S: AsyncRead + AsyncWrite + Send + 'static>(
        stream: S,
        config: &ChannelConfig,
    ) -> Wire {
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(ConnState {
                calls: HashMap::new(),
                closed: None,
            }),
            next_correlation: AtomicI32::new(1),
            closed,
        });
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        let span = tracing::Span::current();
        tokio::spawn(
            write_loop(shared.clone(), write, rx, shared.closed.subscribe())
                .instrument(span.clone()),
        );
        tokio::spawn(
            read_loop(
                shared.clone(),
                read,
                config.max_frame_bytes,
                config.idle_timeout,
                shared.closed.subscribe(),
            )
            .instrument(span),
        );
        Wire { shared, tx }
    }

    fn is_open(&self) -> bool {
        self.shared.closed_reason().is_none()
    }

    /// Sends `frame` (built by [`encode_frame`], correlation id not yet set) and waits for the
    /// response; returns the body after a response header of version `response_header`.
    async fn round_trip(
        &self,
        mut frame: BytesMut,
        response_header: i16,
    ) -> Result<Bytes, TripError> {
        let (id, rx) = self.shared.register().map_err(TripError::NotSent)?;
        let _guard = PendingGuard {
            shared: &self.shared,
            id,
        };
        tracing::Span::current().record("correlation_id", id);
        frame[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 4].copy_from_slice(&id.to_be_bytes());
        if self.tx.send(frame.freeze()).await.is_err() {
            let reason = self
                .shared
                .closed_reason()
                .unwrap_or(DisconnectReason::Closed);
            return Err(TripError::NotSent(reason));
        }
        tracing::trace!("request queued");
        let mut response = match rx.await {
            Ok(Ok(frame)) => frame,
            Ok(Err(reason)) => return Err(TripError::Lost(reason)),
            Err(_) => return Err(TripError::Lost(DisconnectReason::Closed)),
        };
        let header = ResponseHeader::decode(&mut response, response_header)
            .map_err(|e| TripError::Header(format!("response header v{response_header}: {e:#}")))?;
        if header.correlation_id != id {
            return Err(TripError::Header(format!(
                "correlation id {} in the response to {id}",
                header.correlation_id
            )));
        }
        Ok(response)
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.shared.close(DisconnectReason::Closed);
    }
}

/// Writes queued frames, coalescing what is queued into one flush, until the connection closes.
async fn write_loop<W: AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    write: W,
    mut rx: mpsc::Receiver<Bytes>,
    mut closed: watch::Receiver<bool>,
) {
    let mut out = BufWriter::with_capacity(64 * 1024, write);
    loop {
        let first = tokio::select! {
            f = rx.recv() => match f {
                Some(f) => f,
                None => break,
            },
            _ = closed.wait_for(|c| *c) => break,
        };
        let write = async {
            out.write_all(&first).await?;
            while let Ok(f) = rx.try_recv() {
                out.write_all(&f).await?;
            }
            out.flush().await
        };
        let result = tokio::select! {
            r = write => r,
            _ = closed.wait_for(|c| *c) => break,
        };
        if let Err(e) = result {
            shared.close(DisconnectReason::Io(format!("writing: {e}")));
            break;
        }
    }
    // Dropping the half shuts the socket down for writing without waiting: a flush here could
    // block forever on a peer that stopped reading.
}

/// Reads response frames and routes each to the caller of its correlation id, until the
/// connection closes; then closes it with the reason.
async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    mut read: R,
    max: usize,
    idle: Option<Duration>,
    mut closed: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let reason = loop {
        match frame::check(&buf, max) {
            Ok(Some(size)) => {
                let mut response = buf.split_to(frame::LENGTH_PREFIX + size).freeze();
                response.advance(frame::LENGTH_PREFIX);
                if response.len() < CORRELATION_ID_LEN {
                    break DisconnectReason::Malformed(format!(
                        "a response of {} bytes has no correlation id",
                        response.len()
                    ));
                }
                let id = i32::from_be_bytes([response[0], response[1], response[2], response[3]]);
                if !shared.deliver(id, response) {
                    tracing::debug!(
                        correlation_id = id,
                        "discarding a response nobody waits for (the call timed out or was cancelled)"
                    );
                }
                continue;
            }
            Ok(None) => {
                if buf.len() >= frame::LENGTH_PREFIX {
                    // The size is known (and checked): room for the whole frame at once.
                    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    let need = frame::LENGTH_PREFIX + size;
                    if buf.capacity() < need {
                        buf.reserve(need - buf.len());
                    }
                } else if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(16 * 1024);
                }
            }
            Err(FrameError::TooLarge { size, max }) => {
                break DisconnectReason::FrameTooLarge { size, max }
            }
            Err(e) => break DisconnectReason::Malformed(e.to_string()),
        }
        let idle_wait = async {
            match idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = read.read_buf(&mut buf) => match r {
                Ok(0) => break DisconnectReason::RemoteClosed,
                Ok(_) => {}
                Err(e) => break DisconnectReason::Io(format!("reading: {e}")),
            },
            _ = closed.wait_for(|c| *c) => return,
            _ = idle_wait => {
                if shared.no_calls() {
                    break DisconnectReason::Idle;
                }
            }
        }
    };
    tracing::debug!(%reason, "connection closed");
    shared.close(reason);
}

/// Encodes a request frame: size prefix, header (correlation id 0, set when sent), body.
fn encode_frame(
    api_key: i16,
    version: i16,
    client_id: &StrBytes,
    body: impl FnOnce(&mut BytesMut) -> Result<(), RpcError>,
) -> Result<BytesMut, RpcError> {
    let (request_header, _) = header_versions(api_key, version);
    let encode_error = |message: String| RpcError::Encode {
        api_key,
        version,
        message,
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(client_id.clone()))
        .encode(&mut buf, request_header)
        .map_err(|e| encode_error(format!("header v{request_header}: {e:#}")))?;
    body(&mut buf)?;
    let size = buf.len() - frame::LENGTH_PREFIX;
    let size = i32::try_from(size).map_err(|_| RpcError::FrameTooLarge {
        api_key,
        version,
        size,
        max: i32::MAX as usize,
    })?;
    buf[..frame::LENGTH_PREFIX].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// A connection after its ApiVersions handshake.
struct Connection {
    wire: Wire,
    versions: Arc<ApiVersions>,
}

impl Connection {
    /// Connects to `addr` and negotiates API versions, each within `connect_timeout`.
    async fn open(
        addr: &str,
        config: &ChannelConfig,
        client_id: &StrBytes,
    ) -> Result<Connection, RpcError> {
        let fail = |reason: String| RpcError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| fail(format!("timed out after {:?}", config.connect_timeout)))?
            .map_err(|e| fail(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let security = config.security.as_deref();
        let wire = match security.and_then(|s| s.tls.clone()) {
            None => Wire::start(stream, config),
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| fail(format!("TLS server name {host}: {e}")))?;
                let connector = tokio_rustls::TlsConnector::from(tls);
                let tls_stream =
                    tokio::time::timeout(config.connect_timeout, connector.connect(name, stream))
                        .await
                        .map_err(|_| fail("TLS handshake timed out".into()))?
                        .map_err(|e| fail(format!("TLS handshake: {e}")))?;
                Wire::start(tls_stream, config)
            }
        };
        let versions =
            tokio::time::timeout(config.connect_timeout, negotiate(&wire, config, client_id))
                .await
                .map_err(|_| {
                    fail(format!(
                        "ApiVersions timed out after {:?}",
                        config.connect_timeout
                    ))
                })?
                .map_err(|e| fail(format!("ApiVersions: {e}")))?;
        if let Some((mechanism, user, password)) = security.and_then(|s| s.sasl.as_ref()) {
            tokio::time::timeout(
                config.connect_timeout,
                sasl_authenticate(&wire, &versions, client_id, mechanism, user, password),
            )
            .await
            .map_err(|_| fail("SASL authentication timed out".into()))?
            .map_err(|e| fail(format!("SASL {mechanism} as {user}: {e}")))?;
        }
        tracing::debug!(
            api_versions_version = versions.version(),
            apis = versions.ranges.len(),
            "connected"
        );
        Ok(Connection {
            wire,
            versions: Arc::new(versions),
        })
    }
}

/// ApiVersions, as Kafka's `NetworkClient` does it: ask in v3; a peer that does not know v3
/// answers UNSUPPORTED_VERSION with a v0 body listing its ranges, so ask again in the highest
/// ApiVersions version it lists (v0 if it lists none).
async fn negotiate(
    wire: &Wire,
    config: &ChannelConfig,
    client_id: &StrBytes,
) -> Result<ApiVersions, String> {
    let api_key = ApiKey::ApiVersions as i16;
    let mut version = API_VERSIONS_FIRST;
    loop {
        let mut request = ApiVersionsRequest::default();
        if version >= 3 {
            request = request
                .with_client_software_name(StrBytes::from_string(config.software_name.clone()))
                .with_client_software_version(StrBytes::from_string(
                    config.software_version.clone(),
                ));
        }
        let frame = encode_frame(api_key, version, client_id, |buf| {
            encode_body(api_key, version, &request, buf)
        })
        .map_err(|e| e.to_string())?;
        let (_, response_header) = header_versions(api_key, version);
        let body = wire
            .round_trip(frame, response_header)
            .await
            .map_err(|e| match e {
                TripError::NotSent(r) | TripError::Lost(r) => r.to_string(),
                TripError::Header(m) => m,
            })?;
        if body.len() < 2 {
            return Err(format!("a response of {} bytes", body.len()));
        }
        let code = i16::from_be_bytes([body[0], body[1]]);
        if code == ErrorCode::UnsupportedVersion.code() && version > 0 {
            let resp = ApiVersionsResponse::decode(&mut body.clone(), 0)
                .map_err(|e| format!("decoding the v0 error response: {e:#}"))?;
            let next = resp
                .api_keys
                .iter()
                .find(|k| k.api_key == api_key)
                .map_or(0, |k| k.max_version)
                .clamp(0, version - 1);
            tracing::debug!(
                tried = version,
                next,
                "peer does not support ApiVersions v{version}"
            );
            version = next;
            continue;
        }
        let resp = ApiVersionsResponse::decode(&mut body.clone(), version)
            .map_err(|e| format!("decoding v{version}: {e:#}"))?;
        if resp.error_code != 0 {
            let name = ErrorCode::from_code(resp.error_code).map_or_else(
                || format!("error code {}", resp.error_code),
                |c| c.name().to_string(),
            );
            return Err(format!("v{version} answered {name}"));
        }
        return Ok(ApiVersions::from_response(&resp, version));
    }
}

/// One request/response of the SASL exchange on a connection still being opened.
async fn sasl_round<Req: Encodable, Resp: Decodable>(
    wire: &Wire,
    client_id: &StrBytes,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp, String> {
    let key = api as i16;
    let frame = encode_frame(key, version, client_id, |buf| {
        encode_body(key, version, request, buf)
    })
    .map_err(|e| e.to_string())?;
    let (_, response_header) = header_versions(key, version);
    let mut body = wire
        .round_trip(frame, response_header)
        .await
        .map_err(|e| match e {
            TripError::NotSent(r) | TripError::Lost(r) => r.to_string(),
            TripError::Header(m) => m,
        })?;
    Resp::decode(&mut body, version).map_err(|e| format!("decoding {api:?} v{version}: {e:#}"))
}

/// Authenticates a new connection as a Kafka client does: SaslHandshake v1 naming the
/// mechanism, then SaslAuthenticate rounds (one for PLAIN, two for SCRAM).
async fn sasl_authenticate(
    wire: &Wire,
    versions: &ApiVersions,
    client_id: &StrBytes,
    mechanism: &str,
    user: &str,
    password: &str,
) -> Result<(), String> {
    use gregor_auth::scram::{ScramClient, ScramMechanism};
    use gregor_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    };
    let handshake: SaslHandshakeResponse = sasl_round(
        wire,
        client_id,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into())),
    )
    .await?;
    if handshake.error_code != 0 {
        return Err(format!(
            "SaslHandshake answered {} (enabled: {:?})",
            ErrorCode::from_code(handshake.error_code).map_or_else(
                || handshake.error_code.to_string(),
                |c| c.name().to_string()
            ),
            handshake
                .mechanisms
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
        ));
    }
    let version = versions
        .version_for(ApiKey::SaslAuthenticate as i16, (1, 2))
        .unwrap_or(1);
    let round = |bytes: Vec<u8>| async move {
        let resp: SaslAuthenticateResponse = sasl_round(
            wire,
            client_id,
            ApiKey::SaslAuthenticate,
            version,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
        )
        .await?;
        if resp.error_code != 0 {
            return Err(resp.error_message.map_or_else(
                || format!("SaslAuthenticate error code {}", resp.error_code),
                |m| m.to_string(),
            ));
        }
        Ok(resp.auth_bytes.to_vec())
    };
    if mechanism == "PLAIN" {
        round(format!("\0{user}\0{password}").into_bytes()).await?;
        return Ok(());
    }
    let m = ScramMechanism::from_name(mechanism)
        .ok_or_else(|| format!("unsupported SASL mechanism {mechanism}"))?;
    let mut scram = ScramClient::new(m, user, password);
    let server_first = round(scram.client_first()).await?;
    let client_final = scram
        .client_final(&server_first)
        .map_err(|e| e.to_string())?;
    let server_final = round(client_final).await?;
    scram
        .verify_server_final(&server_final)
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// NodeChannel
// ---------------------------------------------------------------------------------------------

/// A logical channel to one node: lazily connected, pipelined, reconnecting. Cheap to clone;
/// clones share the connection.
#[derive(Clone)]
pub struct NodeChannel {
    inner: Arc<ChannelInner>,
}

impl std::fmt::Debug for NodeChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeChannel")
            .field("node_id", &self.inner.node_id)
            .field("addr", &self.inner.addr)
            .field("connected", &self.is_connected())
            .finish()
    }
}

struct ChannelInner {
    node_id: Option<i32>,
    addr: String,
    config: Arc<ChannelConfig>,
    client_id: StrBytes,
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so that concurrent callers wait for one attempt.
    connecting: tokio::sync::Mutex<Backoff>,
    closed: AtomicBool,
    connections_opened: AtomicU64,
}

/// Reconnect pacing.
#[derive(Default)]
struct Backoff {
    /// Consecutive failed attempts.
    failures: u32,
    /// When the last attempt started.
    last_attempt: Option<Instant>,
}

impl Backoff {
    /// How long to wait before the next attempt.
    fn delay(&self, config: &ChannelConfig, now: Instant) -> Option<Duration> {
        let last = self.last_attempt?;
        let base = config.reconnect_backoff;
        let wait = match self.failures {
            0 => base,
            n => base
                .saturating_mul(1u32 << (n - 1).min(16))
                .min(config.reconnect_backoff_max.max(base)),
        };
        (last + wait)
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
    }
}

impl NodeChannel {
    /// A channel to `addr` (`host:port`). Connects on the first call.
    pub fn new(addr: impl Into<String>, config: ChannelConfig) -> NodeChannel {
        NodeChannel::build(None, addr.into(), Arc::new(config))
    }

    /// A channel to node `node_id` at `addr` (the node id shows in spans and logs).
    pub fn for_node(node_id: i32, addr: impl Into<String>, config: ChannelConfig) -> NodeChannel {
        NodeChannel::build(Some(node_id), addr.into(), Arc::new(config))
    }

    fn build(node_id: Option<i32>, addr: String, config: Arc<ChannelConfig>) -> NodeChannel {
        NodeChannel {
            inner: Arc::new(ChannelInner {
                node_id,
                addr,
                client_id: StrBytes::from_string(config.client_id.clone()),
                config,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(Backoff::default()),
                closed: AtomicBool::new(false),
                connections_opened: AtomicU64::new(0),
            }),
        }
    }

    /// The node's address.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The node id, for channels made by [`NodeChannel::for_node`] or a [`ChannelPool`].
    pub fn node_id(&self) -> Option<i32> {
        self.inner.node_id
    }

    /// Whether a connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.open_connection().is_some()
    }

    /// How many connections this channel has opened (ApiVersions done) so far.
    pub fn connections_opened(&self) -> u64 {
        self.inner.connections_opened.load(Ordering::Relaxed)
    }

    /// Whether `self` and `other` are handles of the same channel.
    pub fn same_channel(&self, other: &NodeChannel) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Closes the channel: calls in flight fail with [`RpcError::Disconnected`] (reason
    /// [`DisconnectReason::Closed`]), later calls with [`RpcError::Closed`].
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        if let Some(conn) = self.inner.current.lock().take() {
            conn.wire.shared.close(DisconnectReason::Closed);
        }
    }

    /// Stops new calls ([`RpcError::Closed`]) but lets calls in flight finish; the connection
    /// closes after the last one.
    fn retire(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.current.lock().take();
    }

    /// The peer's API version ranges (connecting first if needed, within `timeout`).
    pub async fn api_versions(&self, timeout: Duration) -> Result<Arc<ApiVersions>, RpcError> {
        let api_key = ApiKey::ApiVersions as i16;
        match tokio::time::timeout(timeout, self.connection()).await {
            Ok(conn) => Ok(conn?.versions.clone()),
            Err(_) => Err(self.timeout_error(api_key, -1, timeout)),
        }
    }

    /// Sends `request` in `version` and returns the decoded response.
    ///
    /// `version` must be in `R::VERSIONS` and in the range the peer advertised, else
    /// [`RpcError::UnsupportedVersion`] (nothing is sent).
    pub async fn call<R: Request>(
        &self,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response, RpcError> {
        let ours = (R::VERSIONS.min, R::VERSIONS.max);
        if version < ours.0 || version > ours.1 {
            return Err(RpcError::UnsupportedVersion {
                addr: self.inner.addr.clone(),
                api_key: R::KEY,
                wanted: (version, version),
                remote: None,
            });
        }
        let (version, mut body) = self
            .exchange(
                R::KEY,
                timeout,
                |versions| self.check_advertised(versions, R::KEY, version),
                |version, buf| encode_body(R::KEY, version, request, buf),
            )
            .instrument(self.span(R::KEY))
            .await?;
        self.decode::<R>(version, &mut body)
    }

    /// Sends the request `build` makes for the highest version that `supported` (`(min, max)`,
    /// clipped to `R::VERSIONS`) and the peer have in common; returns that version and the
    /// decoded response. [`RpcError::UnsupportedVersion`] if there is none (nothing is sent).
    ///
    /// `build` may be called again if the connection had to be replaced before sending.
    pub async fn call_auto<R: Request>(
        &self,
        supported: (i16, i16),
        timeout: Duration,
        mut build: impl FnMut(i16) -> R,
    ) -> Result<(i16, R::Response), RpcError> {
        let ours = (
            supported.0.max(R::VERSIONS.min),
            supported.1.min(R::VERSIONS.max),
        );
        let (version, mut body) = self
            .exchange(
                R::KEY,
                timeout,
                |versions| {
                    versions
                        .version_for(R::KEY, ours)
                        .ok_or_else(|| RpcError::UnsupportedVersion {
                            addr: self.inner.addr.clone(),
                            api_key: R::KEY,
                            wanted: supported,
                            remote: versions.range(R::KEY),
                        })
                },
                |version, buf| encode_body(R::KEY, version, &build(version), buf),
            )
            .instrument(self.span(R::KEY))
            .await?;
        Ok((version, self.decode::<R>(version, &mut body)?))
    }

    /// Sends an already encoded request `body` of `api_key` in `version` and returns the
    /// response body (after the response header), undecoded.
    ///
    /// For relaying a client's request unchanged (the broker forwarding CreateTopics to the
    /// controller) and for Gregor-private API keys ([`is_private_api`]). A Kafka API must be in
    /// the peer's advertised range ([`RpcError::UnsupportedVersion`] otherwise); a private one
    /// needs no ApiVersions entry. Header versions: [`header_versions`].
    pub async fn call_raw(
        &self,
        api_key: i16,
        version: i16,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RpcError> {
        let (_, response) = self
            .exchange(
                api_key,
                timeout,
                |versions| {
                    if is_private_api(api_key) {
                        Ok(version)
                    } else {
                        self.check_advertised(versions, api_key, version)
                    }
                },
                |_, buf| {
                    buf.put_slice(&body);
                    Ok(())
                },
            )
            .instrument(self.span(api_key))
            .await?;
        Ok(response)
    }

    fn span(&self, api_key: i16) -> tracing::Span {
        tracing::debug_span!(
            "rpc",
            api = %api_label(&api_key),
            version = tracing::field::Empty,
            node = self.inner.node_id.unwrap_or(-1),
            addr = %self.inner.addr,
            correlation_id = tracing::field::Empty,
        )
    }

    /// `version` if the peer advertised it for `api_key`.
    fn check_advertised(
        &self,
        versions: &ApiVersions,
        api_key: i16,
        version: i16,
    ) -> Result<i16, RpcError> {
        match versions.range(api_key) {
            Some((min, max)) if (min..=max).contains(&version) => Ok(version),
            remote => Err(RpcError::UnsupportedVersion {
                addr: self.inner.addr.clone(),
                api_key,
                wanted: (version, version),
                remote,
            }),
        }
    }

    fn decode<R: Request>(&self, version: i16, body: &mut Bytes) -> Result<R::Response, RpcError> {
        R::Response::decode(body, version).map_err(|e| RpcError::Decode {
            addr: self.inner.addr.clone(),
            api_key: R::KEY,
            version,
            message: format!("{e:#}"),
        })
    }

    fn timeout_error(&self, api_key: i16, version: i16, timeout: Duration) -> RpcError {
        RpcError::Timeout {
            addr: self.inner.addr.clone(),
            api_key,
            version,
            timeout,
        }
    }

    /// One request/response exchange within `timeout`. `pick` checks or chooses the version
    /// against the connection's ranges, `encode` appends the body in that version. Both run
    /// again if the connection turned out closed before the frame could be sent (nothing was
    /// sent, so a new connection gets it).
    async fn exchange(
        &self,
        api_key: i16,
        timeout: Duration,
        pick: impl Fn(&ApiVersions) -> Result<i16, RpcError>,
        mut encode: impl FnMut(i16, &mut BytesMut) -> Result<(), RpcError>,
    ) -> Result<(i16, Bytes), RpcError> {
        let chosen = AtomicI16::new(-1);
        let max = self.inner.config.max_frame_bytes;
        let work = async {
            loop {
                let conn = self.connection().await?;
                let version = pick(&conn.versions)?;
                chosen.store(version, Ordering::Relaxed);
                tracing::Span::current().record("version", version);
                let frame = encode_frame(api_key, version, &self.inner.client_id, |buf| {
                    encode(version, buf)
                })?;
                let size = frame.len() - frame::LENGTH_PREFIX;
                if size > max {
                    return Err(RpcError::FrameTooLarge {
                        api_key,
                        version,
                        size,
                        max,
                    });
                }
                let (_, response_header) = header_versions(api_key, version);
                match conn.wire.round_trip(frame, response_header).await {
                    Ok(body) => {
                        tracing::debug!(bytes = body.len(), "response");
                        return Ok((version, body));
                    }
                    Err(TripError::NotSent(reason)) => {
                        tracing::debug!(%reason, "connection closed before sending; using a new one");
                        continue;
                    }
                    Err(TripError::Lost(reason)) => {
                        return Err(RpcError::Disconnected {
                            addr: self.inner.addr.clone(),
                            reason,
                        })
                    }
                    Err(TripError::Header(message)) => {
                        return Err(RpcError::Decode {
                            addr: self.inner.addr.clone(),
                            api_key,
                            version,
                            message,
                        })
                    }
                }
            }
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout_error(api_key, chosen.load(Ordering::Relaxed), timeout)),
        };
        if let Err(e) = &result {
            tracing::debug!(error = %e, "call failed");
        }
        result
    }

    fn open_connection(&self) -> Option<Arc<Connection>> {
        let current = self.inner.current.lock();
        current.as_ref().filter(|c| c.wire.is_open()).cloned()
    }

    /// The open connection, connecting (after the backoff) if there is none.
    async fn connection(&self) -> Result<Arc<Connection>, RpcError> {
        let closed = || RpcError::Closed {
            addr: self.inner.addr.clone(),
        };
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        if let Some(conn) = self.open_connection() {
            return Ok(conn);
        }
        let mut backoff = self.inner.connecting.lock().await;
        // Another caller may have connected while this one waited for the lock.
        if let Some(conn) = self.open_connection() {
            return Ok(conn);
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(closed());
        }
        if let Some(wait) = backoff.delay(&self.inner.config, Instant::now()) {
            tracing::debug!(wait_ms = wait.as_millis() as u64, "reconnect backoff");
            tokio::time::sleep(wait).await;
        }
        backoff.last_attempt = Some(Instant::now());
        // A root span: the connection's tasks outlive the call that opened it.
        let span = tracing::debug_span!(
            parent: None,
            "rpc_connection",
            node = self.inner.node_id.unwrap_or(-1),
            addr = %self.inner.addr,
        );
        let opened = Connection::open(&self.inner.addr, &self.inner.config, &self.inner.client_id)
            .instrument(span)
            .await;
        match opened {
            Ok(conn) => {
                backoff.failures = 0;
                self.inner
                    .connections_opened
                    .fetch_add(1, Ordering::Relaxed);
                let conn = Arc::new(conn);
                if self.inner.closed.load(Ordering::SeqCst) {
                    return Err(closed());
                }
                *self.inner.current.lock() = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                tracing::debug!(error = %e, failures = backoff.failures, "connect failed");
                Err(e)
            }
        }
    }
}

/// Appends `request` encoded in `version` to `buf`.
fn encode_body<R: Encodable>(
    api_key: i16,
    version: i16,
    request: &R,
    buf: &mut BytesMut,
) -> Result<(), RpcError> {
    request.encode(buf, version).map_err(|e| RpcError::Encode {
        api_key,
        version,
        message: format!("{e:#}"),
    })
}

// ---------------------------------------------------------------------------------------------
// ChannelPool
// ---------------------------------------------------------------------------------------------

/// Channels by node id. Asking for a node at a new address replaces its channel: the old one
/// takes no new calls and closes after its calls in flight.
pub struct ChannelPool {
    config: Arc<ChannelConfig>,
    channels: Mutex<HashMap<i32, NodeChannel>>,
}

impl ChannelPool {
    /// An empty pool whose channels use `config`.
    pub fn new(config: ChannelConfig) -> ChannelPool {
        ChannelPool {
            config: Arc::new(config),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// The channel to `node_id` at `addr`: the existing one if the address is unchanged, else a
    /// new one (replacing and retiring the old).
    pub fn channel(&self, node_id: i32, addr: &str) -> NodeChannel {
        let mut channels = self.channels.lock();
        if let Some(ch) = channels.get(&node_id) {
            if ch.addr() == addr {
                return ch.clone();
            }
        }
        let ch = NodeChannel::build(Some(node_id), addr.to_string(), self.config.clone());
        if let Some(old) = channels.insert(node_id, ch.clone()) {
            tracing::info!(
                node = node_id,
                old = old.addr(),
                new = addr,
                "node address changed; replacing its channel"
            );
            old.retire();
        }
        ch
    }

    /// The channel to `node_id`, if the pool has one.
    pub fn get(&self, node_id: i32) -> Option<NodeChannel> {
        self.channels.lock().get(&node_id).cloned()
    }

    /// Removes the channel to `node_id` (a node that left); it closes after its calls in flight.
    pub fn remove(&self, node_id: i32) -> Option<NodeChannel> {
        let ch = self.channels.lock().remove(&node_id);
        if let Some(ch) = &ch {
            ch.retire();
        }
        ch
    }

    /// The node ids the pool has channels to, sorted.
    pub fn node_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.channels.lock().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Closes every channel (shutdown): calls in flight fail, later calls get
    /// [`RpcError::Closed`].
    pub fn close_all(&self) {
        let channels: Vec<NodeChannel> = self.channels.lock().drain().map(|(_, ch)| ch).collect();
        for ch in channels {
            ch.close();
        }
    }
}
