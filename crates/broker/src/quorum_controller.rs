//! [`QuorumController`]: the controller of a KRaft-style cluster on this node (Kafka's
//! `QuorumController`). Every controller runs one: a member of the `gregor-quorum` raft group
//! whose state machine is the metadata log ([`MetadataLog`]). The quorum leader is the **active
//! controller**; it alone runs commands:
//!
//! 1. a command is validated against the applied metadata (`ClusterState`, pure commands of
//!    `gregor-controller`) under one write lock, so each command sees the previous one's
//!    records — no speculative state;
//! 2. its records are proposed as one raft entry; the entry's index is their offset;
//! 3. the answer goes out once the entry is committed and applied here.
//!
//! The active controller also owns the leader-local, non-replicated broker sessions
//! (`BrokerHeartbeatManager`): BrokerRegistration and BrokerHeartbeat go through it, and a
//! background task fences brokers whose session expired. A controller that becomes active
//! starts every session afresh, as Kafka does. On its first command the active controller
//! bootstraps the cluster id (once per cluster), and a single node imports the metadata log of
//! a pre-cluster data directory.
//!
//! Non-leaders answer NOT_CONTROLLER; callers find the leader with [`QuorumController::leader`].

use crate::metadata_log::{encode_records, MetadataLog, MetadataStateMachine};
use crate::rpc_client::{ChannelConfig, ChannelPool, RpcError};
use bytes::Bytes;
use gregor_controller::command::{Command, Reply};
use gregor_controller::heartbeat::{
    BrokerHeartbeatManager, BrokerHeartbeatRequest, BrokerRegistrationRequest, HeartbeatReply,
};
use gregor_controller::replication::CommandResult;
use gregor_controller::{ClusterState, ControllerError, MetadataRecord};
use gregor_protocol::ErrorCode;
use gregor_quorum::{
    ProposeError, Quorum, QuorumConfig, QuorumError, QuorumStatus, Transport, TransportError,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one raft RPC may take over the network before the transport gives up (the quorum
/// bounds its own RPCs more tightly).
const RAFT_RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Raft messages over Kafka framing on the controller listener (Gregor's private `RAFT` API).
pub struct RaftTransport {
    pool: ChannelPool,
}

impl std::fmt::Debug for RaftTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftTransport").finish_non_exhaustive()
    }
}

impl RaftTransport {
    /// A transport whose connections identify as `node-<id>`.
    pub fn new(node_id: i32) -> RaftTransport {
        RaftTransport {
            pool: ChannelPool::new(ChannelConfig::new(format!("gregor-controller-{node_id}"))),
        }
    }
}

impl Transport for RaftTransport {
    async fn call(&self, target: u64, addr: &str, request: Bytes) -> Result<Bytes, TransportError> {
        let channel = self.pool.channel(target as i32, addr);
        channel
            .call_raw(
                gregor_protocol::internal::RAFT,
                0,
                request,
                RAFT_RPC_TIMEOUT,
            )
            .await
            .map_err(|e| match e {
                RpcError::Timeout { .. } => TransportError::Timeout,
                RpcError::Decode { message, .. } => TransportError::Remote(message),
                other => TransportError::Unreachable(other.to_string()),
            })
    }
}

/// What a controller needs to start.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    /// This node's id.
    pub node_id: i32,
    /// The voters: id → `host:port` of their controller listeners. A single entry for this node
    /// is the embedded single-node quorum.
    pub voters: BTreeMap<i32, String>,
    /// The quorum's directory (`<log.dirs>/__cluster_metadata-0`).
    pub dir: PathBuf,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    /// `broker.session.timeout.ms`.
    pub session_timeout_ms: i64,
    /// The cluster id of this node's `meta.properties`, if it has one: the cluster id the
    /// first active controller records.
    pub cluster_id: Option<String>,
    /// Records of a pre-cluster single-node metadata log to import into an empty quorum.
    pub legacy_records: Vec<MetadataRecord>,
    /// The incarnation id of this node's broker (combined nodes): a registration of this node
    /// id with another incarnation is from a previous process, so its session is over.
    pub local_incarnation: Option<uuid::Uuid>,
    /// Preferred leader elections every this long (`auto.leader.rebalance.enable`,
    /// `leader.imbalance.check.interval.seconds`); `None`: never.
    pub leader_balance_interval: Option<Duration>,
    /// Unclean elections of leaderless partitions every this long
    /// (`unclean.leader.election.interval.ms`, for topics that enable them).
    pub unclean_election_interval: Duration,
}

/// The controller of this node (see the module docs).
pub struct QuorumController {
    node_id: i32,
    quorum: Quorum,
    log: Arc<MetadataLog>,
    write: tokio::sync::Mutex<()>,
    /// The broker sessions, with the leader epoch they were activated in.
    sessions: Mutex<Option<(u64, BrokerHeartbeatManager)>>,
    session_timeout_ms: i64,
    started: Instant,
    cluster_id_hint: Option<String>,
    legacy_records: Mutex<Vec<MetadataRecord>>,
    local_incarnation: Option<uuid::Uuid>,
    leader_balance_interval: Option<Duration>,
    unclean_election_interval: Duration,
}

impl std::fmt::Debug for QuorumController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuorumController")
            .field("node_id", &self.node_id)
            .field("offset", &self.log.last_offset())
            .finish()
    }
}

fn not_controller(leader: Option<(i32, String)>) -> ControllerError {
    ControllerError::new(
        ErrorCode::NotController,
        match leader {
            Some((id, _)) => format!("This is not the correct controller for this cluster; the active controller is {id}."),
            None => "This is not the correct controller for this cluster; no controller is active right now.".into(),
        },
    )
}

impl QuorumController {
    /// Opens the quorum (a single voter leads within milliseconds; a member of a larger quorum
    /// joins its elections in the background).
    pub async fn open(
        settings: QuorumSettings,
        transport: impl Transport,
    ) -> Result<Arc<QuorumController>, QuorumError> {
        let voters: BTreeMap<u64, String> = settings
            .voters
            .iter()
            .map(|(id, addr)| (*id as u64, addr.clone()))
            .collect();
        let mut config = QuorumConfig::new(settings.node_id as u64, voters, &settings.dir);
        config.cluster_name = "gregor".into();
        let min = Duration::from_millis(settings.election_timeout_ms.max(20));
        config.election_timeout_min = min;
        config.election_timeout_max = min * 2;
        config.heartbeat_interval = (min / 10).max(Duration::from_millis(5));
        let log = Arc::new(MetadataLog::default());
        let quorum = Quorum::open(config, MetadataStateMachine(log.clone()), transport).await?;
        Ok(Arc::new(QuorumController {
            node_id: settings.node_id,
            quorum,
            log,
            write: tokio::sync::Mutex::new(()),
            sessions: Mutex::new(None),
            session_timeout_ms: settings.session_timeout_ms,
            started: Instant::now(),
            cluster_id_hint: settings.cluster_id,
            legacy_records: Mutex::new(settings.legacy_records),
            local_incarnation: settings.local_incarnation,
            leader_balance_interval: settings.leader_balance_interval,
            unclean_election_interval: settings.unclean_election_interval,
        }))
    }

    /// The metadata this controller has applied.
    pub fn log(&self) -> &Arc<MetadataLog> {
        &self.log
    }

    /// The raft group, for its RPCs and status.
    pub fn quorum(&self) -> &Quorum {
        &self.quorum
    }

    /// The quorum status (DescribeQuorum).
    pub fn status(&self) -> QuorumStatus {
        self.quorum.status()
    }

    /// The active controller (quorum leader) and its controller-listener address, if known.
    pub fn leader(&self) -> Option<(i32, String)> {
        self.quorum.leader().map(|(id, addr)| (id as i32, addr))
    }

    /// Whether this node is the active controller.
    pub fn is_active(&self) -> bool {
        self.quorum.is_leader()
    }

    /// Monotonic milliseconds (the broker sessions' clock).
    fn now(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Proposes `records` as one entry; returns its offset once applied here.
    async fn propose(&self, records: &[MetadataRecord]) -> Result<i64, ControllerError> {
        let proposed = self
            .quorum
            .propose(encode_records(records))
            .await
            .map_err(|e| match e {
                ProposeError::NotLeader { leader } => {
                    not_controller(leader.map(|(id, addr)| (id as i32, addr)))
                }
                ProposeError::Timeout(_) => ControllerError::new(
                    ErrorCode::RequestTimedOut,
                    "the metadata change was not committed in time; its outcome is unknown",
                ),
                other => ControllerError::new(ErrorCode::UnknownServerError, other.to_string()),
            })?;
        if !proposed.reply.is_empty() {
            return Err(ControllerError::new(
                ErrorCode::UnknownServerError,
                String::from_utf8_lossy(&proposed.reply).into_owned(),
            ));
        }
        Ok(proposed.index as i64)
    }

    /// Runs a command on the active controller: validate against the applied state (with the
    /// broker sessions), commit its records, answer with the reply and the records' offset (the
    /// current offset when there were none).
    pub async fn execute<T>(
        &self,
        f: impl FnOnce(&ClusterState, &mut BrokerHeartbeatManager, i64) -> CommandResult<T>,
    ) -> Result<(T, i64), ControllerError> {
        let _one_at_a_time = self.write.lock().await;
        let status = self.quorum.status();
        if !self.quorum.is_leader() {
            return Err(not_controller(self.leader()));
        }
        self.bootstrap_locked().await?;
        let now = self.now();
        let (records, reply) = {
            let mut sessions = self.sessions.lock();
            let fresh = !matches!(&*sessions, Some((epoch, _)) if *epoch == status.leader_epoch);
            if fresh {
                let mut hb = BrokerHeartbeatManager::new(self.session_timeout_ms);
                self.log.read(|s| {
                    hb.activate(s, now);
                    if let (Some(b), Some(mine)) = (s.broker(self.node_id), self.local_incarnation)
                    {
                        if b.incarnation_id != mine {
                            hb.end_session(b.node_id, b.epoch);
                        }
                    }
                });
                *sessions = Some((status.leader_epoch, hb));
            }
            let Some((_, hb)) = sessions.as_mut() else {
                return Err(ControllerError::new(
                    ErrorCode::UnknownServerError,
                    "no sessions",
                ));
            };
            self.log.read(|s| f(s, hb, now))?
        };
        if records.is_empty() {
            return Ok((reply, self.log.last_offset()));
        }
        let offset = self.propose(&records).await?;
        Ok((reply, offset))
    }

    /// Records the cluster id (once per cluster) and imports a pre-cluster metadata log (once).
    async fn bootstrap_locked(&self) -> Result<(), ControllerError> {
        if self.log.read(|s| s.cluster_id().is_some()) {
            return Ok(());
        }
        let cluster_id = self.cluster_id_hint.clone().unwrap_or_else(|| {
            gregor_controller::uuid_to_base64(gregor_controller::random_kafka_uuid())
        });
        let (mut records, ()) = self.log.read(|s| s.bootstrap(&cluster_id))?;
        let legacy = std::mem::take(&mut *self.legacy_records.lock());
        if !legacy.is_empty() && self.log.last_offset() < 0 {
            tracing::info!(
                records = legacy.len(),
                "importing the single-node metadata log into the quorum"
            );
            records.extend(legacy);
        }
        self.propose(&records).await?;
        tracing::info!(%cluster_id, "cluster id recorded in the metadata log");
        Ok(())
    }

    /// Runs a forwarded command.
    pub async fn run_command(&self, command: &Command) -> Result<(Reply, i64), ControllerError> {
        self.execute(|s, _, _| s.run_command(command, gregor_controller::random_kafka_uuid()))
            .await
    }

    /// BrokerRegistration: the broker epoch.
    pub async fn register_broker(
        &self,
        req: &BrokerRegistrationRequest,
    ) -> Result<i64, ControllerError> {
        let (reply, offset) = self
            .execute(|s, hb, now| hb.register_broker(s, req, now))
            .await?;
        Ok(reply.broker_epoch.unwrap_or(offset))
    }

    /// BrokerHeartbeat.
    pub async fn heartbeat(
        &self,
        req: &BrokerHeartbeatRequest,
    ) -> Result<HeartbeatReply, ControllerError> {
        self.execute(|s, hb, now| hb.heartbeat(s, req, now))
            .await
            .map(|(reply, _)| reply)
    }

    /// Preferred leader election for every partition whose preferred replica is in the ISR
    /// and unfenced but does not lead.
    async fn balance_partition_leaders(&self) {
        let elected = self
            .execute(|s, _, _| s.elect_leaders(gregor_controller::ElectionType::Preferred, None))
            .await;
        match elected {
            Ok((results, _)) => {
                let moved = results.iter().filter(|r| r.error.is_none()).count();
                if moved > 0 {
                    tracing::info!(
                        partitions = moved,
                        "moved leadership back to preferred replicas"
                    );
                }
            }
            Err(e) => tracing::debug!(error = %e, "leader balance check skipped"),
        }
    }

    /// The active controller's background work until `shutdown`: fence brokers whose session
    /// expired (one per command, as Kafka's `maybeFenceOneStaleBroker`), move leadership back
    /// to preferred replicas (Kafka's `maybeBalancePartitionLeaders`) and elect leaders for
    /// leaderless partitions of topics that allow unclean elections
    /// (`maybeElectUncleanLeaders`), each on its interval.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let start = tokio::time::Instant::now();
        let mut next_balance = self.leader_balance_interval.map(|i| start + i);
        let mut next_unclean = start + self.unclean_election_interval;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.changed() => return,
            }
            if !self.quorum.is_leader() {
                continue;
            }
            let now = tokio::time::Instant::now();
            if let (Some(at), Some(every)) = (next_balance, self.leader_balance_interval) {
                if now >= at {
                    next_balance = Some(now + every);
                    self.balance_partition_leaders().await;
                }
            }
            if now >= next_unclean {
                next_unclean = now + self.unclean_election_interval;
                for _ in 0..100 {
                    match self.execute(|s, _, _| s.elect_unclean_leaders(1000)).await {
                        Ok((true, _)) => continue,
                        Ok((false, _)) => break,
                        Err(e) => {
                            tracing::debug!(error = %e, "unclean election check skipped");
                            break;
                        }
                    }
                }
            }
            for _ in 0..100 {
                let fenced = self
                    .execute(|s, hb, now| Ok(hb.fence_expired(s, now)))
                    .await;
                match fenced {
                    Ok((Some(id), _)) => {
                        tracing::info!(broker = id, "fenced a broker whose session expired");
                    }
                    Ok((None, _)) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "session expiry check skipped");
                        break;
                    }
                }
            }
        }
    }

    /// Closes the quorum.
    pub async fn shutdown(&self) {
        self.quorum.shutdown().await;
    }
}

/// Reads the records of a pre-cluster single-node metadata log (`gregor-metadata/metadata.log`).
pub fn read_legacy_log(path: &std::path::Path) -> std::io::Result<Vec<MetadataRecord>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let (_, records) = gregor_controller::MetadataLog::open(path)?;
    Ok(records)
}

/// Decodes a forwarded command's body.
pub fn decode_command(body: &[u8]) -> Result<Command, String> {
    serde_json::from_slice(body).map_err(|e| format!("undecodable controller command: {e}"))
}
