//! The network: the caller's [`Transport`], the private RPC encoding, and openraft's
//! [`RaftNetworkFactory`] on top of them.
//!
//! # RPC format
//! A request is `WIRE_VERSION (1 byte) | postcard(RpcRequest)`, where the envelope carries the
//! cluster name, the sender's id, the target's id and one of openraft's three RPCs
//! (AppendEntries, Vote, InstallSnapshot chunk) as openraft serializes them. A reply is
//! `WIRE_VERSION | postcard(RpcReply)`.
//!
//! Why postcard: it is a compact, serde-based binary format with a documented wire format that
//! is stable since 1.0, and it needs no schema beyond the serde derives openraft already has.
//! Heartbeats stay at a few dozen bytes and entries near their payload size, where serde_json
//! would write every payload byte as a decimal number in an array (about 3.5 times larger, and
//! slower). bincode, the other usual choice, is unmaintained (its final 3.0.0 release is only a
//! notice saying so). The encoding is private: both ends must run the same `gregor-quorum` (and
//! openraft) version; the version byte turns a mismatch into a clear error.

use crate::error::{QuorumError, TransportError};
use crate::log_store::{LogShared, NO_INDEX};
use crate::types::{NodeId, TypeConfig};
use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The version byte in front of every request and reply.
pub(crate) const WIRE_VERSION: u8 = 1;

/// How raft RPCs leave this node. Implemented by the broker over its controller listener
/// connections (length-prefixed frames on its own port); by [`MemNetwork`](crate::MemNetwork)
/// in tests.
///
/// Implementations may write `async fn call(..)` in their `impl` block; the returned future must
/// be `Send`.
///
/// Frames are as large as what they carry: an AppendEntries holds up to 300 entries (openraft's
/// `max_payload_entries`), each at most [`MAX_ENTRY_BYTES`](crate::quorum::MAX_ENTRY_BYTES), and
/// a snapshot chunk up to [`QuorumConfig::snapshot_chunk_bytes`](crate::QuorumConfig). Size the
/// listener's frame limit for the entries Gregor actually proposes (metadata records are small).
pub trait Transport: Send + Sync + 'static {
    /// Sends one serialized raft RPC to `target` (address from the voter set) and returns the
    /// serialized reply, which the remote produced with
    /// [`Quorum::handle_rpc`](crate::Quorum::handle_rpc) (or, when that failed,
    /// [`QuorumError::to_reply`](crate::QuorumError::to_reply)). The quorum bounds every call with
    /// its own timeout, so the transport needs none of its own.
    fn call(
        &self,
        target: NodeId,
        addr: &str,
        request: Bytes,
    ) -> impl Future<Output = Result<Bytes, TransportError>> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Transport`] made object safe, so that `Quorum` is not generic.
pub(crate) trait DynTransport: Send + Sync + 'static {
    fn call_boxed<'a>(
        &'a self,
        target: NodeId,
        addr: &'a str,
        request: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, TransportError>>;
}

impl<T: Transport> DynTransport for T {
    fn call_boxed<'a>(
        &'a self,
        target: NodeId,
        addr: &'a str,
        request: Bytes,
    ) -> BoxFuture<'a, Result<Bytes, TransportError>> {
        Box::pin(self.call(target, addr, request))
    }
}

/// The request envelope.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RpcRequest {
    pub(crate) cluster: String,
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) body: RpcBody,
}

/// One of openraft's RPCs.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcBody {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The reply envelope.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcReply {
    AppendEntries(AppendEntriesResponse<NodeId>),
    Vote(VoteResponse<NodeId>),
    InstallSnapshot(InstallSnapshotResponse<NodeId>),
    /// The receiver lost track of a chunked snapshot stream; the sender restarts it.
    SnapshotMismatch(openraft::error::SnapshotMismatch),
    /// The request was not handled (not a voter, wrong cluster, shut down, raft failed).
    Rejected(String),
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Bytes {
    let mut out = vec![WIRE_VERSION];
    // Serializing these plain data types into a Vec cannot fail.
    let body = postcard::to_stdvec(v).expect("postcard serialization of an RPC");
    out.extend_from_slice(&body);
    Bytes::from(out)
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, String> {
    match b.split_first() {
        Some((&WIRE_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| e.to_string()),
        Some((v, _)) => Err(format!(
            "unsupported raft RPC wire version {v} (this node speaks {WIRE_VERSION})"
        )),
        None => Err("empty raft RPC frame".into()),
    }
}

impl QuorumError {
    /// The reply frame to send back when [`Quorum::handle_rpc`](crate::Quorum::handle_rpc)
    /// returned this error: the sender then sees a clear [`TransportError::Remote`] instead of a
    /// broken connection.
    pub fn to_reply(&self) -> Bytes {
        encode(&RpcReply::Rejected(self.to_string()))
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What this node last heard from each peer (for DescribeQuorum's timestamps).
#[derive(Debug, Default)]
pub(crate) struct PeerClock {
    inner: Mutex<BTreeMap<NodeId, PeerTimes>>,
}

/// Unix-millisecond timestamps about one peer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerTimes {
    /// As leader: the last successful AppendEntries reply from it. As follower: the last
    /// AppendEntries received from it (it being the leader).
    pub(crate) last_ack: Option<u64>,
    /// As leader: the send time of the last AppendEntries that it acknowledged and that
    /// covered the leader's whole log at that time (Kafka's LastCaughtUpTimestamp).
    pub(crate) last_caught_up: Option<u64>,
}

impl PeerClock {
    pub(crate) fn snapshot(&self) -> BTreeMap<NodeId, PeerTimes> {
        self.inner.lock().clone()
    }

    pub(crate) fn heard_from(&self, id: NodeId) {
        self.inner.lock().entry(id).or_default().last_ack = Some(unix_ms());
    }

    fn acked(&self, id: NodeId, caught_up_at: Option<u64>) {
        let mut m = self.inner.lock();
        let t = m.entry(id).or_default();
        t.last_ack = Some(unix_ms());
        if caught_up_at.is_some() {
            t.last_caught_up = caught_up_at.max(t.last_caught_up);
        }
    }
}

/// Builds one [`NetClient`] per target for openraft.
pub(crate) struct NetFactory {
    pub(crate) node_id: NodeId,
    pub(crate) cluster: String,
    pub(crate) voters: Arc<BTreeMap<NodeId, String>>,
    pub(crate) transport: Arc<dyn DynTransport>,
    pub(crate) clock: Arc<PeerClock>,
    pub(crate) log: Arc<LogShared>,
    pub(crate) backoff: Duration,
}

impl RaftNetworkFactory<TypeConfig> for NetFactory {
    type Network = NetClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> NetClient {
        // The configured address wins over the one recorded in the membership, so that a voter
        // can move to another address without a membership change.
        let addr = self
            .voters
            .get(&target)
            .cloned()
            .unwrap_or_else(|| node.addr.clone());
        NetClient {
            from: self.node_id,
            cluster: self.cluster.clone(),
            target,
            addr,
            transport: self.transport.clone(),
            clock: self.clock.clone(),
            log: self.log.clone(),
            backoff: self.backoff,
        }
    }
}

/// openraft's connection to one target.
pub(crate) struct NetClient {
    from: NodeId,
    cluster: String,
    target: NodeId,
    addr: String,
    transport: Arc<dyn DynTransport>,
    clock: Arc<PeerClock>,
    log: Arc<LogShared>,
    backoff: Duration,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl NetClient {
    /// Sends `body` and decodes the reply. Every failure is "unreachable" to openraft, which
    /// then backs off for [`NetClient::backoff`] before retrying.
    async fn send(&self, body: RpcBody, timeout: Duration) -> Result<RpcReply, Unreachable> {
        let req = encode(&RpcRequest {
            cluster: self.cluster.clone(),
            from: self.from,
            to: self.target,
            body,
        });
        let call = self.transport.call_boxed(self.target, &self.addr, req);
        let bytes = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(Unreachable::new(&e)),
            Err(_) => return Err(Unreachable::new(&TransportError::Timeout)),
        };
        let reply: RpcReply = decode(&bytes).map_err(|e| {
            Unreachable::new(&TransportError::Remote(format!("undecodable reply: {e}")))
        })?;
        if let RpcReply::Rejected(msg) = reply {
            tracing::warn!(target = self.target, %msg, "raft RPC rejected by the peer");
            return Err(Unreachable::new(&TransportError::Remote(msg)));
        }
        Ok(reply)
    }

    fn unexpected(&self, what: &str) -> Unreachable {
        Unreachable::new(&TransportError::Remote(format!(
            "node {} answered a {what} with another reply type",
            self.target
        )))
    }
}

impl RaftNetwork<TypeConfig> for NetClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let sent_at = unix_ms();
        let leader_end = self.log.last_index.load(Ordering::Acquire);
        let covers = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|l| l.index))
            .unwrap_or(NO_INDEX);
        let caught_up = leader_end == NO_INDEX || (covers != NO_INDEX && covers >= leader_end);
        // openraft bounds an AppendEntries by the heartbeat interval, a Vote by the minimum
        // election timeout and a snapshot chunk by `snapshot_chunk_timeout`.
        match self
            .send(RpcBody::AppendEntries(rpc), option.hard_ttl())
            .await?
        {
            RpcReply::AppendEntries(resp) => {
                if resp.is_success() {
                    self.clock.acked(self.target, caught_up.then_some(sent_at));
                } else if !matches!(resp, AppendEntriesResponse::HigherVote(_)) {
                    self.clock.acked(self.target, None);
                }
                Ok(resp)
            }
            _ => Err(self.unexpected("AppendEntries").into()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self
            .send(RpcBody::InstallSnapshot(rpc), option.hard_ttl())
            .await?
        {
            RpcReply::InstallSnapshot(resp) => {
                self.clock.acked(self.target, None);
                Ok(resp)
            }
            RpcReply::SnapshotMismatch(m) => Err(RPCError::RemoteError(RemoteError::new(
                self.target,
                RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m)),
            ))),
            _ => Err(self.unexpected("InstallSnapshot").into()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        match self.send(RpcBody::Vote(rpc), option.hard_ttl()).await? {
            RpcReply::Vote(resp) => Ok(resp),
            _ => Err(self.unexpected("Vote").into()),
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(self.backoff))
    }
}
