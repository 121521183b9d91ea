//! [`ReplicaManager`]: the only owner of this broker's partitions (Kafka's `ReplicaManager` and
//! `Partition`).
//!
//! A [`Partition`] is a log plus its replication state ([`PartitionState`]: leader, leader epoch,
//! partition epoch, replicas, ISR) and a stored high watermark. The replica manager learns the
//! state from metadata images ([`MetadataListener`]): it opens the logs of partitions assigned to
//! this broker, deletes the logs of removed topics, re-applies configuration changes, and tells
//! [`LeadershipListener`]s (the group and transaction coordinators) when it becomes or stops
//! being the leader of a partition of their internal topic.
//!
//! Nothing outside asks a log directly whether it is the leader: handlers resolve partitions with
//! [`ReplicaManager::leader_partition`], which answers NOT_LEADER_OR_FOLLOWER and the leader-epoch
//! errors as Kafka does. Appends go through [`ReplicaManager::append_as_leader`] (blocking; callers
//! on the async workers use `spawn_blocking`), which stamps the partition's leader epoch and
//! advances the high watermark when the ISR allows it; [`ReplicaManager::wait_for_commit`] is the
//! acks=all wait (Kafka's delayed produce) on the high watermark. Consumers read up to the high
//! watermark; long polls are woken when it advances ([`Partition::hw_advanced`]).
//!
//! The high watermarks are checkpointed to `replication-offset-checkpoint` in the log directory
//! (Kafka's format) every `replica.high.watermark.checkpoint.interval.ms` and at shutdown, and
//! restored when the logs are opened.
//!
//! **Replication** (Kafka's ISR protocol, the decisions in the pure `gregor-replication` crate):
//! a partition this broker leads has a `LeaderState` (follower progress, ISR changes in
//! flight, the high-watermark rule, min ISR); one it follows has a `FollowerState` and sits in
//! the [`fetcher`] of its leader's broker, which fetches with the Fetch API as a replica
//! (`ReplicaState`), appends what it gets as a follower, truncates on `DivergingEpoch`, and
//! follows the leader's high watermark. ISR changes go to the controller through the
//! [`alter`] manager (AlterPartition, one request in flight). The metadata log decides roles:
//! a new leader epoch makes this broker leader or follower.
//!
//! Locks: the topic map (`RwLock`, held briefly); per partition its metadata state (`RwLock`),
//! its replication role (`Mutex`, taken before the log's) and its log (`Mutex`, held for one
//! storage call). Nothing here holds a lock across an `.await`.

pub mod alter;
pub mod fetcher;

use crate::config::Config;
use crate::configs::BrokerView;
pub use crate::metadata_cache::PartitionState;
use crate::metadata_cache::{partition_state, MetadataListener};
use crate::topic_config::{log_config, ProduceSettings};
use gregor_controller::{ClusterState, TopicMeta};
use gregor_protocol::ErrorCode;
use gregor_replication::{
    AlterPartitionOutcome, AlterPartitionRequest, BrokerEligibility, FollowerFetch,
    FollowerFetchOutcome, FollowerLogView, FollowerState, LeaderAndIsr, LeaderConfig,
    LeaderLogView, LeaderState, MetadataOutcome,
};
use gregor_storage::offset_checkpoint::{self, TopicPartition};
use gregor_storage::{AppendInfo, Clock, Log, StorageError};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// Name of the high-watermark checkpoint file in the log directory (Kafka's).
pub const HW_CHECKPOINT_FILE: &str = offset_checkpoint::REPLICATION_OFFSET_CHECKPOINT;

/// One partition hosted by this broker.
#[derive(Debug)]
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    state: RwLock<PartitionState>,
    /// The replication role: leader or follower state (taken before `log`).
    role: Mutex<Role>,
    /// `None` once the partition was deleted.
    log: Mutex<Option<Log>>,
    hw_advanced: Notify,
    appended: Notify,
}

/// A hosted partition's replication role.
#[derive(Debug)]
enum Role {
    /// Neither (just opened, or no leader yet).
    None,
    /// This broker leads it.
    Leader(Box<LeaderState>),
    /// This broker follows `FollowerState::leader_id`.
    Follower(Box<FollowerState>),
}

/// What a follower's Fetch gets from the leader for one partition.
#[derive(Debug)]
pub struct FollowerRead {
    /// Error (NONE on success).
    pub error: ErrorCode,
    /// The leader's offsets, captured before the read.
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
    /// `DivergingEpoch`: the follower must truncate.
    pub diverging_epoch: Option<(i32, i64)>,
    /// The records, up to the log end offset.
    pub region: Option<gregor_storage::FileRegion>,
}

impl FollowerRead {
    fn error(code: ErrorCode) -> FollowerRead {
        FollowerRead {
            error: code,
            high_watermark: -1,
            log_start_offset: -1,
            log_end_offset: -1,
            diverging_epoch: None,
            region: None,
        }
    }
}

fn leader_view(log: &Log) -> LeaderLogView {
    LeaderLogView {
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
    }
}

fn follower_view(log: &Log) -> FollowerLogView {
    FollowerLogView {
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        latest_epoch: log.latest_epoch(),
    }
}

/// The replication crate's view of a partition registration.
fn repl_state(s: &PartitionState) -> gregor_replication::PartitionState {
    gregor_replication::PartitionState {
        leader: s.leader,
        leader_epoch: s.leader_epoch,
        partition_epoch: s.partition_epoch,
        replicas: s.replicas.clone(),
        isr: s.isr.clone(),
        adding_replicas: s.adding_replicas.clone(),
        removing_replicas: s.removing_replicas.clone(),
        leader_recovery_state: if s.leader_recovery_state
            == gregor_controller::LeaderRecoveryState::Recovering
        {
            gregor_replication::LeaderRecoveryState::Recovering
        } else {
            gregor_replication::LeaderRecoveryState::Recovered
        },
    }
}

/// Why an append was refused before storage saw it, or failed in storage.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The partition was deleted meanwhile.
    #[error("this partition was deleted")]
    Deleted,
    /// This broker is not (or no longer) the leader.
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    /// The storage refused or failed the append.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl AppendError {
    /// The Kafka error a client (or a peer broker) gets for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppendError::Deleted => ErrorCode::UnknownTopicOrPartition,
            AppendError::NotLeader => ErrorCode::NotLeaderOrFollower,
            AppendError::Storage(e) => crate::errors::storage_code(e),
        }
    }
}

impl Partition {
    /// `topic-index`, as Kafka names partitions in logs.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }

    /// The current replication state.
    pub fn state(&self) -> PartitionState {
        self.state.read().clone()
    }

    /// The current leader (-1: none).
    pub fn leader(&self) -> i32 {
        self.state.read().leader
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.state.read().leader_epoch
    }

    /// Whether the partition was deleted.
    pub fn is_deleted(&self) -> bool {
        self.log.lock().is_none()
    }

    /// Runs `f` on the log (`None` if the partition was deleted). Holds the log lock for the
    /// duration of `f`: keep it to one storage call.
    pub fn with_log<T>(&self, f: impl FnOnce(&Log) -> T) -> Option<T> {
        self.log.lock().as_ref().map(f)
    }

    /// Runs `f` on the log mutably (`None` if the partition was deleted).
    pub fn with_log_mut<T>(&self, f: impl FnOnce(&mut Log) -> T) -> Option<T> {
        self.log.lock().as_mut().map(f)
    }

    /// The high watermark (`None` if deleted).
    pub fn high_watermark(&self) -> Option<i64> {
        self.with_log(Log::high_watermark)
    }

    /// Notified when the high watermark advances or the partition is deleted (long polls and
    /// acks=all waiters register with `notified()` + `enable()` before checking).
    pub fn hw_advanced(&self) -> &Notify {
        &self.hw_advanced
    }

    /// Checks a client's `current_leader_epoch` (-1: not given) against the partition's, as
    /// Kafka does: newer than ours is UNKNOWN_LEADER_EPOCH, older is FENCED_LEADER_EPOCH.
    pub fn check_leader_epoch(&self, current: i32) -> Result<(), ErrorCode> {
        use std::cmp::Ordering::*;
        if current < 0 {
            return Ok(());
        }
        match current.cmp(&self.leader_epoch()) {
            Equal => Ok(()),
            Greater => Err(ErrorCode::UnknownLeaderEpoch),
            Less => Err(ErrorCode::FencedLeaderEpoch),
        }
    }

    /// Notified after every append here (followers' fetch long polls).
    pub fn appended(&self) -> &Notify {
        &self.appended
    }

    /// Stores a high watermark the leader state computed; wakes waiters when it moved.
    fn store_hw(&self, log: &mut Log, hw: Option<i64>) {
        if let Some(hw) = hw {
            if log.maybe_increment_high_watermark(hw).is_some() {
                self.hw_advanced.notify_waiters();
            }
        }
    }

    /// The follower's next fetch for this partition, if it follows `leader` and is fetching:
    /// (the request fields, this partition's topic id).
    pub fn next_fetch(&self, leader: i32) -> Option<gregor_replication::FetchPartitionRequest> {
        let role = self.role.lock();
        let Role::Follower(f) = &*role else {
            return None;
        };
        if f.leader_id() != leader {
            return None;
        }
        let log_start = self.with_log(|l| l.log_start_offset())?;
        f.next_fetch(log_start)
    }
}

/// The partitions of one topic this broker hosts (is a replica of).
#[derive(Debug, Clone)]
struct TopicPartitions {
    id: Uuid,
    partitions: BTreeMap<i32, Arc<Partition>>,
    settings: ProduceSettings,
}

/// Told when this broker becomes or stops being the leader of a partition of `topic()` (the
/// coordinators load and unload their shards).
pub trait LeadershipListener: Send + Sync {
    /// The internal topic this listener follows.
    fn topic(&self) -> &str;
    /// This broker now leads `partition` in `leader_epoch`.
    fn on_become_leader(&self, partition: i32, leader_epoch: i32);
    /// This broker no longer leads `partition` (or it was deleted).
    fn on_resign(&self, partition: i32);
}

/// Start-up and apply failures of a partition log.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// An I/O problem with the log directory.
    #[error("log directory {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A partition log could not be opened.
    #[error("cannot open partition log {path}: {source}")]
    Log {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: StorageError,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReplicaError + '_ {
    move |source| ReplicaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `partition.metadata` ties a partition directory to its topic id (as Kafka does), so that a
/// directory left behind by a deleted topic is never mistaken for a new topic of the same name.
fn check_partition_metadata(dir: &Path, topic_id: Uuid) -> Result<(), ReplicaError> {
    let path = dir.join("partition.metadata");
    let expected = gregor_controller::uuid_to_base64(topic_id);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stored = text
                .lines()
                .find_map(|l| l.strip_prefix("topic_id:").map(|v| v.trim().to_string()));
            if stored.as_deref() != Some(expected.as_str()) {
                tracing::warn!(
                    dir = %dir.display(),
                    stored = ?stored,
                    expected = %expected,
                    "partition directory belongs to another (deleted) topic id; removing it"
                );
                std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
                std::fs::create_dir_all(dir).map_err(io_err(dir))?;
                write_partition_metadata(dir, &expected)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            write_partition_metadata(dir, &expected)
        }
        Err(e) => Err(ReplicaError::Io { path, source: e }),
    }
}

fn write_partition_metadata(dir: &Path, id_b64: &str) -> Result<(), ReplicaError> {
    let path = dir.join("partition.metadata");
    std::fs::write(&path, format!("version: 0\ntopic_id: {id_b64}\n")).map_err(io_err(&path))
}

/// Owner of every partition this broker hosts.
pub struct ReplicaManager {
    node_id: i32,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    clean_start: bool,
    topics: RwLock<HashMap<String, TopicPartitions>>,
    listeners: RwLock<Vec<Arc<dyn LeadershipListener>>>,
    /// High watermarks read from the checkpoint at start-up, consumed as partitions open.
    restored_hw: Mutex<BTreeMap<TopicPartition, i64>>,
    /// Serializes checkpoint writes.
    checkpointing: Mutex<()>,
    /// The latest metadata image (brokers' eligibility and endpoints).
    image: RwLock<Arc<ClusterState>>,
    /// The replica fetchers, one per leader broker.
    fetchers: fetcher::FetcherManager,
    /// ISR changes on their way to the controller.
    alter: alter::AlterPartitionManager,
    /// `replica.lag.time.max.ms`.
    lag_max_ms: i64,
    /// TLS / SASL towards the other brokers' inter-broker listener (`None`: PLAINTEXT).
    client_security: RwLock<Option<Arc<crate::rpc_client::ClientSecurity>>>,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("node_id", &self.node_id)
            .field("topics", &self.topics.read().len())
            .finish()
    }
}

impl ReplicaManager {
    /// A replica manager over `config.log_dir`; restores the checkpointed high watermarks.
    /// `clean_start`: the previous shutdown was clean (logs need no recovery scan). Its
    /// fetchers and AlterPartition sender run on the current tokio runtime.
    pub fn new(
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        clean_start: bool,
    ) -> Arc<ReplicaManager> {
        let path = config.log_dir.join(HW_CHECKPOINT_FILE);
        let restored = match offset_checkpoint::read(&path) {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable high-watermark checkpoint");
                BTreeMap::new()
            }
        };
        let lag_max_ms = config
            .values
            .get("replica.lag.time.max.ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(gregor_replication::DEFAULT_REPLICA_LAG_TIME_MAX_MS);
        Arc::new_cyclic(|me: &Weak<ReplicaManager>| ReplicaManager {
            node_id: config.node_id,
            fetchers: fetcher::FetcherManager::new(me.clone(), &config),
            alter: alter::AlterPartitionManager::new(me.clone()),
            config,
            clock,
            clean_start,
            topics: RwLock::new(HashMap::new()),
            listeners: RwLock::new(Vec::new()),
            restored_hw: Mutex::new(restored),
            checkpointing: Mutex::new(()),
            image: RwLock::new(Arc::new(ClusterState::default())),
            lag_max_ms,
            client_security: RwLock::new(None),
        })
    }

    /// Installs how this broker authenticates to the others' inter-broker listener (the
    /// composition root does, once, before any connection to another broker).
    pub fn set_client_security(&self, security: Option<Arc<crate::rpc_client::ClientSecurity>>) {
        *self.client_security.write() = security;
    }

    /// A channel configuration for connections to other brokers' inter-broker listener
    /// (replica fetchers, transaction markers, transaction verification).
    pub fn inter_broker_channel(&self, client_id: String) -> crate::rpc_client::ChannelConfig {
        let mut c = crate::rpc_client::ChannelConfig::new(client_id);
        c.security = self.client_security.read().clone();
        c
    }

    /// Installs how ISR changes reach the active controller (the composition root does, once).
    pub fn set_controller_link(&self, link: Arc<dyn alter::ControllerLink>) {
        self.alter.set_link(link);
    }

    /// This broker's epoch (its registration's offset; -1 before it registered).
    pub fn broker_epoch(&self) -> i64 {
        self.image
            .read()
            .broker(self.node_id)
            .map_or(-1, |b| b.epoch)
    }

    /// Whether a broker may be in an ISR (Kafka's `isReplicaIsrEligible` inputs).
    fn eligibility(&self, id: i32) -> BrokerEligibility {
        match self.image.read().broker(id) {
            Some(b) => BrokerEligibility {
                registered_epoch: Some(b.epoch),
                fenced: b.fenced,
                in_controlled_shutdown: b.in_controlled_shutdown,
            },
            None => BrokerEligibility {
                registered_epoch: None,
                fenced: true,
                in_controlled_shutdown: false,
            },
        }
    }

    /// The leader configuration of a partition of `topic`.
    fn leader_config(&self, topic: &str) -> LeaderConfig {
        LeaderConfig {
            broker_id: self.node_id,
            broker_epoch: self.broker_epoch(),
            min_insync_replicas: self.produce_settings(topic).min_insync_replicas,
            replica_lag_time_max_ms: self.lag_max_ms,
        }
    }

    /// The inter-broker endpoint (`host:port`) of a broker, from the metadata.
    pub fn inter_broker_address(&self, id: i32) -> Option<String> {
        let listener = &self.config.cluster.inter_broker_listener;
        let image = self.image.read();
        let b = image.broker(id)?;
        let e = b.endpoint(listener).or_else(|| b.endpoints.first())?;
        Some(format!("{}:{}", e.host, e.port))
    }

    /// The leader of `topic`-`index` per the latest metadata image: `None` when the partition
    /// does not exist (any more), `Some(-1)` while it has no leader.
    pub fn partition_leader(&self, topic: &str, index: i32) -> Option<i32> {
        let image = self.image.read();
        let meta = image.topic(topic)?;
        partition_state(&image, meta, index).map(|s| s.leader)
    }

    /// The current time of the replica manager's clock.
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// This broker's id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Registers a leadership listener and tells it about the partitions of its topic this
    /// broker already leads.
    pub fn add_leadership_listener(&self, listener: Arc<dyn LeadershipListener>) {
        let led: Vec<(i32, i32)> = self
            .topics
            .read()
            .get(listener.topic())
            .map(|t| {
                t.partitions
                    .values()
                    .filter_map(|p| {
                        let s = p.state.read();
                        (s.leader == self.node_id).then_some((p.index, s.leader_epoch))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (p, epoch) in led {
            listener.on_become_leader(p, epoch);
        }
        self.listeners.write().push(listener);
    }

    /// A partition by topic name and index, whatever its role.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        if index < 0 {
            return None;
        }
        self.topics
            .read()
            .get(topic)
            .and_then(|t| t.partitions.get(&index).cloned())
    }

    /// A partition this broker leads, checked as Kafka's `getPartitionOrError` +
    /// `localLogWithEpochOrThrow`: UNKNOWN_TOPIC_OR_PARTITION when it is not hosted here,
    /// NOT_LEADER_OR_FOLLOWER when another broker leads it, FENCED_LEADER_EPOCH /
    /// UNKNOWN_LEADER_EPOCH when `current_leader_epoch` (-1: unchecked) differs.
    pub fn leader_partition(
        &self,
        topic: &str,
        index: i32,
        current_leader_epoch: i32,
    ) -> Result<Arc<Partition>, ErrorCode> {
        let part = self
            .partition(topic, index)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if part.state.read().leader != self.node_id {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        part.check_leader_epoch(current_leader_epoch)?;
        Ok(part)
    }

    /// A topic's produce-time settings.
    pub fn produce_settings(&self, topic: &str) -> ProduceSettings {
        self.topics
            .read()
            .get(topic)
            .map(|t| t.settings)
            .unwrap_or_else(|| ProduceSettings::defaults(&self.config))
    }

    /// Every hosted partition.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.values().cloned())
            .collect()
    }

    /// Appends a batch (already validated) to a partition this broker leads, stamping the leader
    /// epoch and assigning offsets, then advances the high watermark if the ISR allows it.
    /// Blocking (disk I/O): call it from a blocking thread.
    pub fn append_as_leader(
        &self,
        part: &Partition,
        batch: &mut [u8],
    ) -> Result<AppendInfo, AppendError> {
        self.append_with(part, |log, epoch| log.append(batch, epoch))
    }

    /// Appends a COMMIT/ABORT transaction marker to a partition this broker leads (the
    /// WriteTxnMarkers path). Blocking.
    pub fn append_marker(
        &self,
        part: &Partition,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo, AppendError> {
        let now = self.now();
        self.append_with(part, |log, epoch| {
            log.append_control(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                epoch,
                now,
            )
        })
    }

    /// Runs an append as the leader (leader epoch given to `f`), then Kafka's
    /// `maybeIncrementLeaderHW` and the followers' wake-up.
    fn append_with(
        &self,
        part: &Partition,
        f: impl FnOnce(&mut Log, i32) -> Result<AppendInfo, StorageError>,
    ) -> Result<AppendInfo, AppendError> {
        let epoch = part.leader_epoch();
        let role = part.role.lock();
        let Role::Leader(leader) = &*role else {
            return Err(AppendError::NotLeader);
        };
        let mut guard = part.log.lock();
        let log = guard.as_mut().ok_or(AppendError::Deleted)?;
        let info = f(log, epoch)?;
        if !info.duplicate {
            let hw =
                leader.on_leader_append(leader_view(log), self.now(), |id| self.eligibility(id));
            part.store_hw(log, hw);
            part.appended.notify_waiters();
        }
        Ok(info)
    }

    /// The in-sync replica check before an acks=all append (Kafka's `appendRecordsToLeader`):
    /// NOT_ENOUGH_REPLICAS when the ISR is smaller than `min.insync.replicas`, capped at the
    /// replication factor as Kafka's effective min ISR.
    pub fn check_min_isr(&self, part: &Partition) -> Result<(), String> {
        let role = part.role.lock();
        let Role::Leader(leader) = &*role else {
            return Ok(()); // the append itself answers NOT_LEADER_OR_FOLLOWER
        };
        leader.check_min_isr_before_append().map_err(|_| {
            format!(
                "The size of the current ISR {:?} is insufficient to satisfy the min.isr requirement of {} for partition {}",
                leader.isr(),
                leader.effective_min_isr(),
                part.name()
            )
        })
    }

    /// The acks=all wait (Kafka's `DelayedProduce`): until the high watermark reaches
    /// `required_offset` (one past the appended batch) — then NONE, or
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank under the minimum meanwhile — or the
    /// partition is deleted or loses its leadership (NOT_LEADER_OR_FOLLOWER), or `timeout`
    /// passes (REQUEST_TIMED_OUT). The future owns what it needs.
    pub fn wait_for_commit(
        &self,
        part: &Arc<Partition>,
        required_offset: i64,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<(), ErrorCode>> + Send + 'static {
        let part = part.clone();
        let node_id = self.node_id;
        async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let notified = part.hw_advanced.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if part.leader() != node_id {
                    return Err(ErrorCode::NotLeaderOrFollower);
                }
                let Some(hw) = part.high_watermark() else {
                    return Err(ErrorCode::NotLeaderOrFollower);
                };
                let verdict = match &*part.role.lock() {
                    Role::Leader(l) => l.check_enough_replicas(required_offset, hw),
                    _ => Some(ErrorCode::NotLeaderOrFollower),
                };
                match verdict {
                    Some(ErrorCode::None) => return Ok(()),
                    Some(code) => return Err(code),
                    None => {}
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(ErrorCode::RequestTimedOut);
                }
            }
        }
    }

    /// A follower's fetch of a partition this broker leads (Kafka's `Partition.fetchRecords`
    /// for a replica): checks, divergence detection, the follower's progress, ISR expansion
    /// and the high watermark, then the records from `fetch.fetch_offset` up to the log end.
    /// The offsets answered are captured before the read, as Kafka does.
    pub fn read_for_follower(
        &self,
        part: &Partition,
        fetch: &FollowerFetch,
        max_bytes: usize,
    ) -> FollowerRead {
        let mut role = part.role.lock();
        let Role::Leader(leader) = &mut *role else {
            return FollowerRead::error(ErrorCode::NotLeaderOrFollower);
        };
        let mut guard = part.log.lock();
        let Some(log) = guard.as_mut() else {
            return FollowerRead::error(ErrorCode::UnknownTopicOrPartition);
        };
        let view = leader_view(log);
        let outcome = {
            let log_ref: &Log = log;
            leader.on_follower_fetch(
                fetch,
                self.now(),
                view,
                |e| log_ref.end_offset_for_epoch(e),
                |id| self.eligibility(id),
            )
        };
        let mut read = FollowerRead {
            error: ErrorCode::None,
            high_watermark: view.high_watermark,
            log_start_offset: view.log_start_offset,
            log_end_offset: view.log_end_offset,
            diverging_epoch: None,
            region: None,
        };
        match outcome {
            Err(code) => FollowerRead::error(code),
            Ok(FollowerFetchOutcome::Diverging(eo)) => {
                read.diverging_epoch = Some((eo.epoch, eo.end_offset));
                read
            }
            Ok(FollowerFetchOutcome::Read {
                alter_partition,
                high_watermark,
            }) => {
                match log.read(fetch.fetch_offset, max_bytes, true) {
                    Ok(r) => read.region = r.region,
                    Err(StorageError::OffsetOutOfRange { .. }) => {
                        return FollowerRead::error(ErrorCode::OffsetOutOfRange)
                    }
                    Err(e) => {
                        tracing::error!(partition = %part.name(), error = %e, "follower read failed");
                        return FollowerRead::error(ErrorCode::KafkaStorageError);
                    }
                }
                part.store_hw(log, high_watermark);
                if let Some(req) = alter_partition {
                    self.alter.send(part, req);
                }
                read
            }
        }
    }

    /// How often [`maybe_shrink_isrs`](Self::maybe_shrink_isrs) runs: half of
    /// `replica.lag.time.max.ms`, as Kafka's `isr-expiration` task.
    pub fn isr_expiration_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis((self.lag_max_ms / 2).max(1) as u64)
    }

    /// ISR shrink (Kafka's `isr-expiration` task): every leader drops followers that have not
    /// caught up within `replica.lag.time.max.ms`. Run every half of it.
    pub fn maybe_shrink_isrs(&self) {
        let now = self.now();
        for p in self.all_partitions() {
            let mut role = p.role.lock();
            let Role::Leader(leader) = &mut *role else {
                continue;
            };
            let Some(leo) = p.with_log(|l| l.log_end_offset()) else {
                continue;
            };
            if let Some(req) = leader.maybe_shrink_isr(now, leo) {
                tracing::info!(partition = %p.name(), isr = ?leader.isr(), new_isr = ?req.isr_ids(), "shrinking the ISR");
                self.alter.send(&p, req);
            }
        }
    }

    /// The AlterPartition request still pending for a partition, if `sent` is still it (a lost
    /// request is resent only then).
    fn pending_alter(&self, part: &Partition) -> Option<AlterPartitionRequest> {
        match &*part.role.lock() {
            Role::Leader(l) => l.pending_alter_partition().cloned(),
            _ => None,
        }
    }

    /// The controller answered an AlterPartition request for `part`.
    fn on_alter_partition_response(
        &self,
        part: &Partition,
        sent: &AlterPartitionRequest,
        result: Result<LeaderAndIsr, ErrorCode>,
    ) -> Option<AlterPartitionRequest> {
        let mut role = part.role.lock();
        let Role::Leader(leader) = &mut *role else {
            return None;
        };
        let mut guard = part.log.lock();
        let log = guard.as_mut()?;
        let outcome =
            leader.on_alter_partition_response(sent, result, leader_view(log), self.now(), |id| {
                self.eligibility(id)
            });
        match outcome {
            AlterPartitionOutcome::Committed { high_watermark } => {
                tracing::info!(partition = %part.name(), isr = ?leader.isr(), "ISR updated");
                part.store_hw(log, high_watermark);
                None
            }
            AlterPartitionOutcome::Retry(req) => Some(req),
            other => {
                tracing::debug!(partition = %part.name(), outcome = ?other, "AlterPartition answer");
                None
            }
        }
    }

    /// fsyncs logs that have unflushed records (`log.flush.interval.ms`). Blocking.
    pub fn flush_all(&self) {
        for p in self.all_partitions() {
            let flushed = p.with_log_mut(|log| {
                if log.unflushed_messages() > 0 {
                    log.flush()
                } else {
                    Ok(())
                }
            });
            if let Some(Err(e)) = flushed {
                tracing::error!(partition = %p.name(), error = %e, "flush failed");
            }
        }
    }

    /// Writes every partition's high watermark to `replication-offset-checkpoint`. Blocking.
    pub fn checkpoint_high_watermarks(&self) -> Result<(), StorageError> {
        let _one_at_a_time = self.checkpointing.lock();
        let mut entries: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for p in self.all_partitions() {
            if let Some(hw) = p.high_watermark() {
                entries.insert(TopicPartition::new(p.topic.clone(), p.index), hw);
            }
        }
        offset_checkpoint::write(&self.config.log_dir.join(HW_CHECKPOINT_FILE), &entries)
    }

    /// Closes every log (flush, producer snapshots), checkpoints the high watermarks and
    /// writes the clean-shutdown marker when all of that succeeded. Blocking.
    pub fn shutdown(&self) {
        self.fetchers.shutdown();
        let mut ok = true;
        if let Err(e) = self.checkpoint_high_watermarks() {
            ok = false;
            tracing::error!(error = %e, "cannot checkpoint high watermarks");
        }
        for p in self.all_partitions() {
            let log = p.log.lock().take();
            p.hw_advanced.notify_waiters();
            if let Some(log) = log {
                if let Err(e) = log.close() {
                    ok = false;
                    tracing::error!(partition = %p.name(), error = %e, "cannot close partition log");
                }
            }
        }
        if ok {
            if let Err(e) = gregor_storage::clean_shutdown::mark(&self.config.log_dir) {
                tracing::error!(error = %e, "cannot write the clean-shutdown marker");
            }
        }
    }

    /// Opens (creating if needed) one partition's log and makes it the leader or a follower.
    fn open_partition(
        &self,
        meta: &TopicMeta,
        index: i32,
        state: PartitionState,
        log_config: gregor_storage::LogConfig,
    ) -> Result<Arc<Partition>, ReplicaError> {
        let dir = self.config.log_dir.join(format!("{}-{index}", meta.name));
        check_partition_metadata(&dir, meta.id)?;
        let (mut log, report) = Log::open(&dir, log_config, self.clean_start, self.clock.clone())
            .map_err(|source| ReplicaError::Log {
            path: dir.clone(),
            source,
        })?;
        if report.truncated_bytes > 0 || report.rebuilt_indexes > 0 {
            tracing::warn!(
                partition = %format!("{}-{index}", meta.name),
                truncated_bytes = report.truncated_bytes,
                truncated_at_offset = ?report.truncated_at_offset,
                rebuilt_indexes = report.rebuilt_indexes,
                "recovered partition log"
            );
        }
        if let Some(hw) = self
            .restored_hw
            .lock()
            .remove(&TopicPartition::new(meta.name.clone(), index))
        {
            log.update_high_watermark(hw);
        }
        let part = Arc::new(Partition {
            topic: meta.name.clone(),
            topic_id: meta.id,
            index,
            state: RwLock::new(state.clone()),
            role: Mutex::new(Role::None),
            log: Mutex::new(Some(log)),
            hw_advanced: Notify::new(),
            appended: Notify::new(),
        });
        Ok(part)
    }

    /// Stops hosting a partition (its topic was deleted, or a reassignment moved it away):
    /// wakes its waiters, tells the leadership listeners, deletes the log.
    fn remove_partition(&self, p: &Partition) {
        self.fetchers.remove(&p.topic, p.index);
        let was_leader = matches!(
            std::mem::replace(&mut *p.role.lock(), Role::None),
            Role::Leader(_)
        );
        let log = p.log.lock().take();
        p.hw_advanced.notify_waiters();
        p.appended.notify_waiters();
        if was_leader {
            self.tell_listeners(&p.topic, |l| l.on_resign(p.index));
        }
        if let Some(log) = log {
            if let Err(e) = log.delete() {
                tracing::error!(partition = %p.name(), error = %e, "cannot delete partition log");
            }
        }
    }

    fn tell_listeners(&self, topic: &str, f: impl Fn(&Arc<dyn LeadershipListener>)) {
        let listeners: Vec<_> = self
            .listeners
            .read()
            .iter()
            .filter(|l| l.topic() == topic)
            .cloned()
            .collect();
        for l in &listeners {
            f(l);
        }
    }

    /// Applies a new replication state to a hosted partition.
    fn update_partition(&self, p: &Partition, state: PartitionState) {
        let old = p.state.read().clone();
        if old == state {
            return;
        }
        *p.state.write() = state.clone();
        self.become_leader_or_follower(p, &state, false);
        // Waiters re-check leadership (fetches and acks=all answer NOT_LEADER_OR_FOLLOWER).
        p.hw_advanced.notify_waiters();
        p.appended.notify_waiters();
    }

    /// Kafka's `makeLeader` / `makeFollower` for a partition whose metadata state is `state`:
    /// a new leader epoch led here records the epoch start, builds the leader state and
    /// (re)loads the coordinators; a state change of the same leadership goes to the leader
    /// state (ISR, partition epoch); leadership elsewhere makes this broker a follower of it
    /// (truncated to its high watermark when its log has no epoch) in that broker's fetcher,
    /// and unloads the coordinators.
    fn become_leader_or_follower(&self, p: &Partition, state: &PartitionState, opened: bool) {
        let now = self.now();
        let mut role = p.role.lock();
        let mut guard = p.log.lock();
        let Some(log) = guard.as_mut() else {
            return;
        };
        let repl = repl_state(state);
        if state.leader == self.node_id {
            let mut new_epoch = None;
            if let Role::Leader(leader) = &mut *role {
                match leader.on_metadata(&repl, leader_view(log), now, |id| self.eligibility(id)) {
                    MetadataOutcome::Stale => {}
                    MetadataOutcome::Updated { high_watermark } => p.store_hw(log, high_watermark),
                    MetadataOutcome::NewLeaderEpoch {
                        epoch_start_offset,
                        high_watermark,
                    } => {
                        if let Err(e) =
                            log.assign_epoch_start(state.leader_epoch, epoch_start_offset)
                        {
                            tracing::error!(partition = %p.name(), error = %e, "cannot record the leader epoch start");
                        }
                        p.store_hw(log, high_watermark);
                        new_epoch = Some(state.leader_epoch);
                    }
                    MetadataOutcome::NotLeader => {}
                }
            } else {
                // makeLeader: the new epoch starts at the log end offset.
                let leo = log.log_end_offset();
                if let Err(e) = log.assign_epoch_start(state.leader_epoch, leo) {
                    tracing::error!(partition = %p.name(), error = %e, "cannot record the leader epoch start");
                }
                let leader =
                    LeaderState::new(self.leader_config(&p.topic), &repl, leader_view(log), now);
                let hw = leader.maybe_increment_high_watermark(leader_view(log), now, |id| {
                    self.eligibility(id)
                });
                p.store_hw(log, hw);
                *role = Role::Leader(Box::new(leader));
                new_epoch = Some(state.leader_epoch);
            }
            drop(guard);
            drop(role);
            if let Some(epoch) = new_epoch {
                self.fetchers.remove(&p.topic, p.index);
                if !opened {
                    tracing::info!(partition = %p.name(), leader_epoch = epoch, isr = ?state.isr, "became the leader");
                }
                self.tell_listeners(&p.topic, |l| l.on_become_leader(p.index, epoch));
            }
            return;
        }
        let was_leader = matches!(&*role, Role::Leader(_));
        let same = matches!(&*role, Role::Follower(f)
            if f.leader_id() == state.leader && f.current_leader_epoch() == state.leader_epoch);
        if !same {
            let mut follower =
                FollowerState::new(state.leader, state.leader_epoch, &follower_view(log));
            if let Some(t) = follower.truncation_to_high_watermark() {
                if let Err(e) = log.truncate_to(t.offset) {
                    tracing::error!(partition = %p.name(), error = %e, "cannot truncate to the high watermark");
                }
                follower.on_truncated(&follower_view(log));
            }
            *role = Role::Follower(Box::new(follower));
        }
        drop(guard);
        drop(role);
        if was_leader {
            tracing::info!(partition = %p.name(), leader = state.leader, leader_epoch = state.leader_epoch, "no longer the leader");
            self.tell_listeners(&p.topic, |l| l.on_resign(p.index));
        }
        if !same {
            self.fetchers.remove(&p.topic, p.index);
            if state.leader >= 0 {
                self.fetchers.add(state.leader, &p.topic, p.index);
            }
        }
    }

    /// Makes the hosted partitions match `image`. Blocking (opens and deletes logs).
    fn apply_image(&self, image: &Arc<ClusterState>) {
        *self.image.write() = image.clone();
        let view = BrokerView::new(
            &self.config,
            image.broker_configs(&self.node_id.to_string()),
            image.broker_configs(""),
        );
        // Removed topics, and topics recreated under the same name with a new id.
        let removed: Vec<TopicPartitions> = {
            let mut topics = self.topics.write();
            let gone: Vec<String> = topics
                .iter()
                .filter(|(name, t)| image.topic(name).is_none_or(|m| m.id != t.id))
                .map(|(name, _)| name.clone())
                .collect();
            gone.into_iter().filter_map(|n| topics.remove(&n)).collect()
        };
        for t in removed {
            for p in t.partitions.values() {
                self.remove_partition(p);
            }
        }
        for meta in image.topics() {
            let settings = ProduceSettings::resolve(&self.config, &view, &meta.configs);
            let log_config = log_config(&self.config, &view, &meta.configs);
            let existing: BTreeMap<i32, Arc<Partition>> = self
                .topics
                .read()
                .get(&meta.name)
                .map(|t| t.partitions.clone())
                .unwrap_or_default();
            let mut opened = Vec::new();
            let mut dropped = Vec::new();
            for index in 0..meta.partitions {
                let state = partition_state(image, meta, index)
                    .filter(|s| s.replicas.contains(&self.node_id));
                match (existing.get(&index), state) {
                    (Some(p), Some(state)) => {
                        p.with_log_mut(|log| {
                            if log.config() != &log_config {
                                log.set_config(log_config.clone());
                            }
                        });
                        self.update_partition(p, state);
                    }
                    (Some(p), None) => dropped.push(p.clone()),
                    (None, Some(state)) => {
                        match self.open_partition(meta, index, state.clone(), log_config.clone()) {
                            Ok(p) => opened.push((p, state)),
                            Err(e) => {
                                // The partition stays unavailable rather than half-open; the
                                // error is the operator's to fix.
                                tracing::error!(topic = %meta.name, partition = index, error = %e, "cannot open partition log");
                            }
                        }
                    }
                    (None, None) => {}
                }
            }
            {
                let mut topics = self.topics.write();
                let entry = topics
                    .entry(meta.name.clone())
                    .or_insert_with(|| TopicPartitions {
                        id: meta.id,
                        partitions: BTreeMap::new(),
                        settings,
                    });
                entry.settings = settings;
                for p in &dropped {
                    entry.partitions.remove(&p.index);
                }
                for (p, _) in &opened {
                    entry.partitions.insert(p.index, p.clone());
                }
                if entry.partitions.is_empty() {
                    topics.remove(&meta.name);
                }
            }
            for p in dropped {
                tracing::info!(partition = %p.name(), "no longer a replica: deleting the local log");
                self.remove_partition(&p);
            }
            for (p, state) in opened {
                self.become_leader_or_follower(&p, &state, true);
            }
        }
    }
}

impl MetadataListener for ReplicaManager {
    fn on_metadata(&self, image: &Arc<ClusterState>) {
        self.apply_image(image);
    }
}
