//! [`Quorum`]: one running member of the controller quorum, and its [`QuorumStatus`].

use crate::config::QuorumConfig;
use crate::error::{ProposeError, QuorumError};
use crate::log_store::{LogShared, LogStore, WriterHandle, NO_INDEX};
use crate::network::{
    decode, encode, unix_ms, NetFactory, PeerClock, RpcBody, RpcReply, RpcRequest,
};
use crate::state_machine::{SmShared, SmStore, StateMachine};
use crate::types::{NodeId, Raft, Vote};
use crate::Transport;
use bytes::Bytes;
use openraft::error::{ClientWriteError, Fatal, InitializeError, InstallSnapshotError, RaftError};
use openraft::{BasicNode, RaftMetrics, ServerState};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The largest entry [`Quorum::propose`] accepts (the log's frames are read back with a 64 MiB
/// limit; this leaves room for the entry's envelope).
pub const MAX_ENTRY_BYTES: usize = 32 * 1024 * 1024;

/// The outcome of a committed proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposed {
    /// The entry's log index (the `index` passed to [`StateMachine::apply`]).
    pub index: u64,
    /// What [`StateMachine::apply`] returned on this node (the leader).
    pub reply: Vec<u8>,
}

/// This node's role in the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The leader: accepts proposals.
    Leader,
    /// A follower of the leader (or waiting for one).
    Follower,
    /// Campaigning in an election.
    Candidate,
    /// Not a voter (only before the voter set is known).
    Learner,
    /// Shut down.
    Shutdown,
}

/// One voter as this node sees it. The timestamps are Unix milliseconds.
///
/// Kafka's DescribeQuorum (answered by the leader) maps as: `ReplicaId` = `id`, `LogEndOffset` =
/// [`VoterStatus::log_end_offset`], `LastFetchTimestamp` = `last_ack_unix_ms`,
/// `LastCaughtUpTimestamp` = `last_caught_up_unix_ms` (use -1 for `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterStatus {
    /// The voter's id.
    pub id: NodeId,
    /// Its configured address.
    pub addr: String,
    /// On the leader: the last log index known to be on that voter's disk (for the leader itself,
    /// its last log index). On a follower: only its own entry is filled (its last log index).
    pub matched_index: Option<u64>,
    /// On the leader: when the voter last acknowledged an AppendEntries (now, for the leader
    /// itself). On a follower: for the leader's entry, when this node last heard from it.
    pub last_ack_unix_ms: Option<u64>,
    /// On the leader: the send time of the last AppendEntries the voter acknowledged that covered
    /// the leader's whole log (now, for the leader itself).
    pub last_caught_up_unix_ms: Option<u64>,
    /// Milliseconds between `last_ack_unix_ms` and when this status was built.
    pub last_ack_ms_ago: Option<u64>,
}

impl VoterStatus {
    /// Kafka's `LogEndOffset` for this voter: `matched_index + 1`, or -1 when unknown.
    pub fn log_end_offset(&self) -> i64 {
        self.matched_index.map(|i| i as i64 + 1).unwrap_or(-1)
    }
}

/// A summary of the quorum as this node sees it: enough for Kafka's DescribeQuorum, which the
/// leader answers with `LeaderId` = `leader`, `LeaderEpoch` = `leader_epoch`, `HighWatermark` =
/// [`QuorumStatus::high_watermark`] and one [`VoterStatus`] per voter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// This node's id.
    pub node_id: NodeId,
    /// This node's role.
    pub role: Role,
    /// The current leader, when known.
    pub leader: Option<NodeId>,
    /// The current raft term (of this node's vote). Two leaders can share a term (see the crate
    /// docs); use `leader_epoch` for Kafka's `LeaderEpoch`.
    pub term: u64,
    /// Kafka's `LeaderEpoch`: `term × number of voters + rank of the voted-for node among the
    /// voters` (ranks from 0 in id order). It identifies a leadership uniquely and only grows,
    /// because openraft orders votes by `(term, node id)`; it has gaps. Valid while the voter set
    /// is static.
    pub leader_epoch: u64,
    /// The last index in this node's log.
    pub last_log_index: Option<u64>,
    /// The last index this node knows to be committed (Kafka's `HighWatermark` is this + 1, see
    /// [`QuorumStatus::high_watermark`]).
    pub committed: Option<u64>,
    /// The last index applied to the state machine here.
    pub applied: Option<u64>,
    /// The last index included in this node's snapshot.
    pub snapshot_index: Option<u64>,
    /// The last index removed from this node's log (entries up to it exist only in the snapshot).
    pub purged_index: Option<u64>,
    /// Every voter, in id order.
    pub voters: Vec<VoterStatus>,
    /// When this status was built (Unix milliseconds).
    pub as_of_unix_ms: u64,
}

impl QuorumStatus {
    /// Kafka's `HighWatermark`: the offset after the last committed entry (0 when none).
    pub fn high_watermark(&self) -> i64 {
        self.committed.map(|c| c as i64 + 1).unwrap_or(0)
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// The status without its clock-driven fields, to tell real changes from time passing.
    fn stable(&self) -> QuorumStatus {
        let mut s = self.clone();
        s.as_of_unix_ms = 0;
        for v in &mut s.voters {
            v.last_ack_ms_ago = None;
            if s.role == Role::Leader && v.id == s.node_id {
                v.last_ack_unix_ms = None;
                v.last_caught_up_unix_ms = None;
            }
        }
        s
    }
}

/// A running member of the controller quorum. Cheap to clone (all clones are the same member).
#[derive(Clone)]
pub struct Quorum {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    cluster: String,
    voters: Arc<BTreeMap<NodeId, String>>,
    raft: Raft,
    log: Arc<LogShared>,
    sm: Arc<SmShared>,
    clock: Arc<PeerClock>,
    status_tx: watch::Sender<QuorumStatus>,
    propose_timeout: Duration,
    shut: AtomicBool,
    teardown: Mutex<Option<Teardown>>,
}

struct Teardown {
    writer: Option<WriterHandle>,
    status_task: tokio::task::JoinHandle<()>,
}

fn opt(i: u64) -> Option<u64> {
    (i != NO_INDEX).then_some(i)
}

fn raft_err(e: impl std::fmt::Display) -> QuorumError {
    QuorumError::Raft(e.to_string())
}

impl Quorum {
    /// Opens the storage under `config.dir` (creating it), starts openraft, and on a fresh
    /// directory forms the quorum with `config.voters`.
    ///
    /// Forming: each voter that starts on an empty directory writes the same first log entry
    /// (index 0, term 0: the voter set) and campaigns. openraft documents this as safe when every
    /// node uses the same voter set (its `Raft::initialize`): all of them write an identical
    /// entry 0, and the normal election rules pick one leader; a node that has already heard from
    /// a peer is not pristine and skips the step. Different voter sets on different nodes would
    /// form different quorums (split brain), so the voter set must come from one shared config.
    /// A directory formed with another voter set is refused ([`QuorumError::VoterSetMismatch`]).
    ///
    /// A single voter returns only once it leads (a few milliseconds: it votes for itself
    /// without waiting for an election timeout, or resumes its committed leadership on restart).
    /// Several voters return at once; the leader is elected in the background.
    ///
    /// `state_machine` must be in its initial state; see [`StateMachine`].
    pub async fn open<S: StateMachine, T: Transport>(
        config: QuorumConfig,
        state_machine: S,
        transport: T,
    ) -> Result<Quorum, QuorumError> {
        let started = Instant::now();
        let raft_config = Arc::new(config.to_openraft()?);
        let node_id = config.node_id;
        let voters = Arc::new(config.voters.clone());
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| QuorumError::io(&dir, e))?;
        let segment_entries = config.segment_entries;
        let user: Box<dyn StateMachine> = Box::new(state_machine);
        let (mut log_store, sm_store) = tokio::task::spawn_blocking(move || {
            let log = LogStore::open(&dir, segment_entries)?;
            let sm = SmStore::open(&dir, user)?;
            Ok::<_, QuorumError>((log, sm))
        })
        .await
        .map_err(raft_err)??;
        let writer = log_store.writer_handle();
        let log = log_store.shared();
        let sm = sm_store.shared();
        let clock = Arc::new(PeerClock::default());
        let network = NetFactory {
            node_id,
            cluster: config.cluster_name.clone(),
            voters: voters.clone(),
            transport: Arc::new(transport),
            clock: clock.clone(),
            log: log.clone(),
            backoff: (config.heartbeat_interval * 3).max(Duration::from_millis(10)),
        };
        let raft = Raft::new(node_id, raft_config, network, log_store, sm_store)
            .await
            .map_err(raft_err)?;

        let stored: BTreeSet<NodeId> = raft
            .with_raft_state(|st| {
                st.membership_state
                    .effective()
                    .membership()
                    .voter_ids()
                    .collect()
            })
            .await
            .map_err(raft_err)?;
        let configured: BTreeSet<NodeId> = voters.keys().copied().collect();
        if stored.is_empty() {
            if !raft.is_initialized().await.map_err(raft_err)? {
                let nodes: BTreeMap<NodeId, BasicNode> = voters
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr)))
                    .collect();
                match raft.initialize(nodes).await {
                    Ok(()) => tracing::info!(node_id, voters = ?configured, "formed the quorum"),
                    Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                        tracing::info!(node_id, reason = %e, "quorum already formed")
                    }
                    Err(e) => {
                        stop(&raft, writer).await;
                        return Err(raft_err(e));
                    }
                }
            }
        } else if stored != configured {
            stop(&raft, writer).await;
            return Err(QuorumError::VoterSetMismatch {
                configured: configured.into_iter().collect(),
                stored: stored.into_iter().collect(),
            });
        }

        let (status_tx, _) = watch::channel(QuorumStatus {
            node_id,
            role: Role::Follower,
            leader: None,
            term: 0,
            leader_epoch: 0,
            last_log_index: None,
            committed: None,
            applied: None,
            snapshot_index: None,
            purged_index: None,
            voters: Vec::new(),
            as_of_unix_ms: unix_ms(),
        });
        let inner = Arc::new(Inner {
            node_id,
            cluster: config.cluster_name.clone(),
            voters: voters.clone(),
            raft: raft.clone(),
            log,
            sm,
            clock,
            status_tx,
            propose_timeout: config.propose_timeout,
            shut: AtomicBool::new(false),
            teardown: Mutex::new(None),
        });
        inner.publish(&raft.metrics().borrow().clone());
        let status_task = tokio::spawn(status_loop(
            Arc::downgrade(&inner),
            raft.metrics(),
            config.heartbeat_interval,
        ));
        *inner.teardown.lock() = Some(Teardown {
            writer,
            status_task,
        });
        let quorum = Quorum { inner };

        if voters.len() == 1 {
            // A single voter needs nobody's vote: campaign now instead of after an election
            // timeout (a no-op when it already resumed its leadership).
            let wait = (config.election_timeout_max * 4).max(Duration::from_secs(5));
            let led = match raft.trigger().elect().await {
                Ok(()) => quorum.wait_for_leader(wait).await.map(|_| ()),
                Err(e) => Err(raft_err(e)),
            };
            if let Err(e) = led {
                quorum.shutdown().await;
                return Err(e);
            }
            tracing::info!(
                node_id,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "single-voter quorum is leader"
            );
        }
        Ok(quorum)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The voter set (id → address).
    pub fn voters(&self) -> &BTreeMap<NodeId, String> {
        &self.inner.voters
    }

    /// The current leader and its address, when known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let id = self.inner.raft.metrics().borrow().current_leader?;
        Some((id, self.inner.voters.get(&id).cloned().unwrap_or_default()))
    }

    /// Whether this node is the leader right now. It may learn otherwise a moment later: in
    /// particular a former leader that restarts resumes its old term's leadership until a peer
    /// with a newer term answers it (within a heartbeat). Treat [`ProposeError::NotLeader`] as the
    /// authority.
    pub fn is_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.node_id)
    }

    /// Waits until some node is known as leader and returns it.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, QuorumError> {
        let mut rx = self.inner.raft.metrics();
        let fut = async {
            loop {
                {
                    let m = rx.borrow_and_update();
                    if let Some(l) = m.current_leader {
                        // On the leader itself, wait until it has taken office.
                        if l != self.inner.node_id || m.state == ServerState::Leader {
                            return Ok(l);
                        }
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(QuorumError::ShutDown);
                }
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| QuorumError::Raft(format!("no leader elected within {timeout:?}")))?
    }

    /// Appends `data` to the replicated log, waits until it is committed and applied on this node
    /// (the leader), and returns its index and the state machine's reply.
    ///
    /// On a follower, returns [`ProposeError::NotLeader`] with the leader to forward to.
    pub async fn propose(&self, data: Vec<u8>) -> Result<Proposed, ProposeError> {
        if self.inner.shut.load(Ordering::Acquire) {
            return Err(ProposeError::ShutDown);
        }
        if data.len() > MAX_ENTRY_BYTES {
            return Err(ProposeError::TooLarge {
                size: data.len(),
                max: MAX_ENTRY_BYTES,
            });
        }
        let timeout = self.inner.propose_timeout;
        let res = match tokio::time::timeout(timeout, self.inner.raft.client_write(data)).await {
            Ok(r) => r,
            Err(_) => return Err(ProposeError::Timeout(timeout)),
        };
        match res {
            Ok(resp) => Ok(Proposed {
                index: resp.log_id.index,
                reply: resp.data,
            }),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let leader = f.leader_id.map(|id| {
                    let addr = self
                        .inner
                        .voters
                        .get(&id)
                        .cloned()
                        .or(f.leader_node.map(|n| n.addr))
                        .unwrap_or_default();
                    (id, addr)
                });
                Err(ProposeError::NotLeader { leader })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ProposeError::Fatal(e.to_string()))
            }
            Err(RaftError::Fatal(Fatal::Stopped)) => Err(ProposeError::ShutDown),
            Err(RaftError::Fatal(f)) => Err(ProposeError::Fatal(f.to_string())),
        }
    }

    /// Handles one raft RPC from a peer (a frame the broker read from its controller listener)
    /// and returns the reply frame to send back.
    ///
    /// Rejected, with nothing changed: frames that do not decode, frames for another cluster or
    /// another node id, and frames from a node that is not a voter or whose sender id differs from
    /// the candidate/leader id inside the RPC. (This guards against misconfiguration, not against
    /// an attacker: the transport must authenticate peers if that matters.) On `Err`, send back
    /// [`QuorumError::to_reply`] so the sender sees the reason.
    pub async fn handle_rpc(&self, request: Bytes) -> Result<Bytes, QuorumError> {
        let inner = &self.inner;
        if inner.shut.load(Ordering::Acquire) {
            return Err(QuorumError::ShutDown);
        }
        let req: RpcRequest = decode(&request).map_err(QuorumError::BadRequest)?;
        if req.cluster != inner.cluster {
            return Err(QuorumError::BadRequest(format!(
                "the RPC is for cluster {:?}, this node is in {:?}",
                req.cluster, inner.cluster
            )));
        }
        if !inner.voters.contains_key(&req.from) {
            tracing::warn!(from = req.from, "rejected a raft RPC from a non-voter");
            return Err(QuorumError::NotAVoter {
                from: req.from,
                voters: inner.voters.keys().copied().collect(),
            });
        }
        if req.to != inner.node_id {
            return Err(QuorumError::BadRequest(format!(
                "the RPC is addressed to node {}, this is node {}",
                req.to, inner.node_id
            )));
        }
        if req.from == inner.node_id {
            return Err(QuorumError::BadRequest(format!(
                "the RPC claims to come from this node ({})",
                inner.node_id
            )));
        }
        let claimed = match &req.body {
            RpcBody::AppendEntries(r) => r.vote.leader_id().voted_for(),
            RpcBody::Vote(r) => r.vote.leader_id().voted_for(),
            RpcBody::InstallSnapshot(r) => r.vote.leader_id().voted_for(),
        };
        if claimed != Some(req.from) {
            return Err(QuorumError::BadRequest(format!(
                "sender {} carries the vote of {claimed:?}",
                req.from
            )));
        }
        let fatal = |e: Fatal<NodeId>| match e {
            Fatal::Stopped => QuorumError::ShutDown,
            other => raft_err(other),
        };
        let reply = match req.body {
            RpcBody::AppendEntries(r) => match inner.raft.append_entries(r).await {
                Ok(resp) => {
                    if !matches!(resp, openraft::raft::AppendEntriesResponse::HigherVote(_)) {
                        inner.clock.heard_from(req.from);
                    }
                    RpcReply::AppendEntries(resp)
                }
                Err(RaftError::Fatal(f)) => return Err(fatal(f)),
                Err(RaftError::APIError(never)) => match never {},
            },
            RpcBody::Vote(r) => match inner.raft.vote(r).await {
                Ok(resp) => RpcReply::Vote(resp),
                Err(RaftError::Fatal(f)) => return Err(fatal(f)),
                Err(RaftError::APIError(never)) => match never {},
            },
            RpcBody::InstallSnapshot(r) => match inner.raft.install_snapshot(r).await {
                Ok(resp) => {
                    inner.clock.heard_from(req.from);
                    RpcReply::InstallSnapshot(resp)
                }
                Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(m))) => {
                    RpcReply::SnapshotMismatch(m)
                }
                Err(RaftError::Fatal(f)) => return Err(fatal(f)),
            },
        };
        Ok(encode(&reply))
    }

    /// The current status, built now.
    pub fn status(&self) -> QuorumStatus {
        self.inner
            .build_status(&self.inner.raft.metrics().borrow().clone())
    }

    /// A watch of the status: it changes when the leader, term, indexes or acknowledgement times
    /// change (checked on every raft event and every heartbeat interval).
    pub fn subscribe(&self) -> watch::Receiver<QuorumStatus> {
        self.inner.status_tx.subscribe()
    }

    /// Asks openraft to build a snapshot now (besides the `snapshot_every` policy).
    pub async fn trigger_snapshot(&self) -> Result<(), QuorumError> {
        self.inner.raft.trigger().snapshot().await.map_err(raft_err)
    }

    /// Stops raft, flushes and closes the storage. Later calls on any clone return
    /// [`QuorumError::ShutDown`] / [`ProposeError::ShutDown`]. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shut.swap(true, Ordering::AcqRel) {
            return;
        }
        let teardown = self.inner.teardown.lock().take();
        if let Some(t) = teardown {
            t.status_task.abort();
            stop(&self.inner.raft, t.writer).await;
        }
        let mut last = self.status();
        last.role = Role::Shutdown;
        last.leader = None;
        self.inner.status_tx.send_replace(last);
        tracing::info!(node_id = self.inner.node_id, "quorum member shut down");
    }
}

/// Stops the raft core (which drops the log store) and waits for the log writer to drain.
async fn stop(raft: &Raft, writer: Option<WriterHandle>) {
    if let Err(e) = raft.shutdown().await {
        tracing::warn!(error = %e, "raft core ended with an error");
    }
    if let Some(w) = writer {
        let join = tokio::task::spawn_blocking(move || w.join());
        if tokio::time::timeout(Duration::from_secs(10), join)
            .await
            .is_err()
        {
            tracing::error!("the quorum log writer did not stop within 10 s");
        }
    }
}

impl Inner {
    /// See [`QuorumStatus::leader_epoch`].
    fn leader_epoch(&self, vote: &Vote) -> u64 {
        let id = vote.leader_id();
        let rank = id
            .voted_for()
            .and_then(|n| self.voters.keys().position(|v| *v == n))
            .unwrap_or(0) as u64;
        id.term * self.voters.len() as u64 + rank
    }

    fn build_status(&self, m: &RaftMetrics<NodeId, BasicNode>) -> QuorumStatus {
        let now = unix_ms();
        let role = if self.shut.load(Ordering::Acquire) {
            Role::Shutdown
        } else {
            match m.state {
                ServerState::Leader => Role::Leader,
                ServerState::Follower => Role::Follower,
                ServerState::Candidate => Role::Candidate,
                ServerState::Learner => Role::Learner,
                ServerState::Shutdown => Role::Shutdown,
            }
        };
        let last_log_index = opt(self.log.last_index.load(Ordering::Acquire));
        let clocks = self.clock.snapshot();
        let voters = self
            .voters
            .iter()
            .map(|(&id, addr)| {
                let times = clocks.get(&id).copied().unwrap_or_default();
                let (matched_index, last_ack, caught_up) = if id == self.node_id {
                    if role == Role::Leader {
                        (last_log_index, Some(now), Some(now))
                    } else {
                        (last_log_index, None, None)
                    }
                } else if role == Role::Leader {
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).copied().flatten())
                        .map(|l| l.index);
                    (matched, times.last_ack, times.last_caught_up)
                } else if m.current_leader == Some(id) {
                    (None, times.last_ack, None)
                } else {
                    (None, None, None)
                };
                VoterStatus {
                    id,
                    addr: addr.clone(),
                    matched_index,
                    last_ack_unix_ms: last_ack,
                    last_caught_up_unix_ms: caught_up,
                    last_ack_ms_ago: last_ack.map(|t| now.saturating_sub(t)),
                }
            })
            .collect();
        QuorumStatus {
            node_id: self.node_id,
            role,
            leader: m.current_leader,
            term: m.vote.leader_id().term,
            leader_epoch: self.leader_epoch(&m.vote),
            last_log_index,
            committed: opt(self.log.committed.load(Ordering::Acquire)),
            applied: opt(self.sm.applied.load(Ordering::Acquire)),
            snapshot_index: opt(self.sm.snapshot_index.load(Ordering::Acquire)),
            purged_index: m.purged.map(|p| p.index),
            voters,
            as_of_unix_ms: now,
        }
    }

    fn publish(&self, m: &RaftMetrics<NodeId, BasicNode>) {
        let new = self.build_status(m);
        self.status_tx.send_if_modified(|old| {
            if old.stable() != new.stable() {
                *old = new;
                true
            } else {
                false
            }
        });
    }
}

async fn status_loop(
    inner: std::sync::Weak<Inner>,
    mut metrics: watch::Receiver<RaftMetrics<NodeId, BasicNode>>,
    every: Duration,
) {
    let every = every.max(Duration::from_millis(10));
    loop {
        let changed = tokio::select! {
            r = metrics.changed() => r.is_ok(),
            _ = tokio::time::sleep(every) => true,
        };
        let Some(inner) = inner.upgrade() else { return };
        if !changed || inner.shut.load(Ordering::Acquire) {
            return;
        }
        let m = metrics.borrow_and_update().clone();
        inner.publish(&m);
    }
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum")
            .field("node_id", &self.inner.node_id)
            .field("voters", &self.inner.voters)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_store::peek;
    use crate::types::{LogId, Vote};
    use crate::MemNetwork;
    use openraft::raft::{AppendEntriesRequest, VoteRequest, VoteResponse};

    /// A state machine that ignores everything.
    struct Nop;
    impl StateMachine for Nop {
        fn apply(&mut self, _: u64, _: &[u8]) -> Vec<u8> {
            Vec::new()
        }
        fn snapshot(&self) -> Vec<u8> {
            Vec::new()
        }
        fn restore(&mut self, _: u64, _: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }

    /// Node 1 of a 3-voter quorum whose peers never answer, with timers so long that it does
    /// nothing on its own after its first campaign: RPCs in the test are the only events.
    fn lonely_config(dir: &std::path::Path) -> QuorumConfig {
        let voters = (1..=3).map(|i| (i, format!("mem://{i}"))).collect();
        let mut c = QuorumConfig::new(1, voters, dir.join("n1"));
        c.heartbeat_interval = Duration::from_secs(5);
        c.election_timeout_min = Duration::from_secs(60);
        c.election_timeout_max = Duration::from_secs(120);
        c
    }

    fn request(from: NodeId, to: NodeId, body: RpcBody) -> Bytes {
        encode(&RpcRequest {
            cluster: "gregor".into(),
            from,
            to,
            body,
        })
    }

    fn vote_req(term: u64, candidate: NodeId) -> RpcBody {
        RpcBody::Vote(VoteRequest {
            vote: Vote::new(term, candidate),
            // The candidate has the formation entry (index 0, term 0), like node 1.
            last_log_id: Some(LogId::default()),
        })
    }

    async fn ask_vote(q: &Quorum, term: u64, candidate: NodeId) -> VoteResponse<NodeId> {
        let reply = q
            .handle_rpc(request(candidate, 1, vote_req(term, candidate)))
            .await
            .unwrap();
        match decode::<RpcReply>(&reply).unwrap() {
            RpcReply::Vote(v) => v,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_vote_survives_a_restart_no_double_vote() {
        // openraft orders votes by (term, node id): within a term a voter may move to a higher
        // node id, never back to a lower one. Losing the vote on restart would let node 1 vote
        // for node 2 in term 5 after it voted for node 3 in term 5: two votes in one term.
        let dir = tempfile::tempdir().unwrap();
        let net = MemNetwork::new();
        let cfg = lonely_config(dir.path());
        let q = Quorum::open(cfg.clone(), Nop, net.transport(1))
            .await
            .unwrap();
        // Node 1 campaigned once at formation (term 1); node 3 asks for term 5 and gets it.
        let r = ask_vote(&q, 5, 3).await;
        assert!(r.vote_granted, "{r:?}");
        q.shutdown().await;
        let (vote, last) = peek(&cfg.dir).unwrap();
        assert_eq!(vote, Some(Vote::new(5, 3)), "the vote is on disk");
        assert_eq!(
            last,
            Some(LogId::default()),
            "the formation entry is on disk"
        );

        let q = Quorum::open(cfg.clone(), Nop, net.transport(1))
            .await
            .unwrap();
        assert_eq!(q.status().term, 5);
        // Node 2 in the same term is refused: the restart forgot nothing.
        let r = ask_vote(&q, 5, 2).await;
        assert!(
            !r.vote_granted,
            "double vote in term 5 after a restart: {r:?}"
        );
        assert_eq!(r.vote, Vote::new(5, 3));
        // So is an older term; the same candidate again is fine, and a later term is a new vote.
        assert!(!ask_vote(&q, 4, 2).await.vote_granted);
        assert!(ask_vote(&q, 5, 3).await.vote_granted);
        assert!(ask_vote(&q, 6, 2).await.vote_granted);
        q.shutdown().await;
        assert_eq!(peek(&cfg.dir).unwrap().0, Some(Vote::new(6, 2)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rpcs_from_non_voters_and_malformed_rpcs_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let net = MemNetwork::new();
        let cfg = lonely_config(dir.path());
        let q = Quorum::open(cfg.clone(), Nop, net.transport(1))
            .await
            .unwrap();
        // Let the formation campaign (term 1, voting for itself) settle first.
        let mut m = q.inner.raft.metrics();
        let settled = m.wait_for(|m| m.vote.leader_id().term == 1);
        tokio::time::timeout(Duration::from_secs(5), settled)
            .await
            .unwrap()
            .unwrap();
        drop(m);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = q.status();
        let before_vote = q.inner.raft.metrics().borrow().vote;

        // A vote request from node 9, which is not a voter, for a much higher term.
        let err = q
            .handle_rpc(request(9, 1, vote_req(100, 9)))
            .await
            .unwrap_err();
        assert!(
            matches!(err, QuorumError::NotAVoter { from: 9, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not a voter"), "{err}");
        // An AppendEntries from node 9 claiming leadership of term 100.
        let mut vote = Vote::new(100, 9);
        vote.commit();
        let ae = RpcBody::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: Some(LogId::default()),
            entries: Vec::new(),
            leader_commit: Some(LogId::default()),
        });
        let err = q.handle_rpc(request(9, 1, ae)).await.unwrap_err();
        assert!(
            matches!(err, QuorumError::NotAVoter { from: 9, .. }),
            "{err}"
        );
        // A voter's id carrying a non-voter's vote.
        let err = q
            .handle_rpc(request(2, 1, vote_req(100, 9)))
            .await
            .unwrap_err();
        assert!(matches!(err, QuorumError::BadRequest(_)), "{err}");
        // Misaddressed, other cluster, undecodable, unknown version.
        let err = q
            .handle_rpc(request(2, 3, vote_req(100, 2)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("addressed to node 3"), "{err}");
        let other = encode(&RpcRequest {
            cluster: "other".into(),
            from: 2,
            to: 1,
            body: vote_req(100, 2),
        });
        let err = q.handle_rpc(other).await.unwrap_err();
        assert!(err.to_string().contains("cluster"), "{err}");
        let err = q
            .handle_rpc(Bytes::from_static(b"\x01garbage"))
            .await
            .unwrap_err();
        assert!(matches!(err, QuorumError::BadRequest(_)), "{err}");
        let err = q.handle_rpc(Bytes::from_static(b"\x09")).await.unwrap_err();
        assert!(err.to_string().contains("wire version"), "{err}");
        // The sender of a rejected RPC gets the reason as a reply frame.
        match decode::<RpcReply>(&err.to_reply()).unwrap() {
            RpcReply::Rejected(msg) => assert!(msg.contains("wire version"), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }

        // Nothing changed: same term, same vote, same log.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = q.status();
        assert_eq!(after.term, before.term);
        assert_eq!(after.last_log_index, before.last_log_index);
        assert_eq!(q.inner.raft.metrics().borrow().vote, before_vote);
        q.shutdown().await;
        assert_eq!(peek(&cfg.dir).unwrap().0, Some(before_vote));
        let err = q
            .handle_rpc(request(2, 1, vote_req(7, 2)))
            .await
            .unwrap_err();
        assert!(matches!(err, QuorumError::ShutDown), "{err}");
    }
}
