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
//! Locks: the topic map (`RwLock`, held briefly), each partition's state (`RwLock`) and log
//! (`Mutex`, held for one storage call). Nothing here holds a lock across an `.await`.

use crate::config::Config;
use crate::configs::BrokerView;
pub use crate::metadata_cache::PartitionState;
use crate::metadata_cache::{partition_state, MetadataListener};
use crate::topic_config::{log_config, ProduceSettings};
use gregor_controller::{ClusterState, TopicMeta};
use gregor_protocol::ErrorCode;
use gregor_storage::offset_checkpoint::{self, TopicPartition};
use gregor_storage::{AppendInfo, Clock, Log, StorageError};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// `None` once the partition was deleted.
    log: Mutex<Option<Log>>,
    hw_advanced: Notify,
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

    /// Advances the high watermark of a leader to the end of what the ISR holds. With no
    /// followers (ISR = {leader}) that is the log end offset. Wakes waiters when it moved.
    fn maybe_increment_hw(&self, log: &mut Log, node_id: i32) {
        let state = self.state.read();
        if state.leader != node_id || state.isr.iter().any(|r| *r != node_id) {
            return;
        }
        drop(state);
        let leo = log.log_end_offset();
        if log.maybe_increment_high_watermark(leo).is_some() {
            self.hw_advanced.notify_waiters();
        }
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
    /// `clean_start`: the previous shutdown was clean (logs need no recovery scan).
    pub fn new(config: Arc<Config>, clock: Arc<dyn Clock>, clean_start: bool) -> ReplicaManager {
        let path = config.log_dir.join(HW_CHECKPOINT_FILE);
        let restored = match offset_checkpoint::read(&path) {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable high-watermark checkpoint");
                BTreeMap::new()
            }
        };
        ReplicaManager {
            node_id: config.node_id,
            config,
            clock,
            clean_start,
            topics: RwLock::new(HashMap::new()),
            listeners: RwLock::new(Vec::new()),
            restored_hw: Mutex::new(restored),
            checkpointing: Mutex::new(()),
        }
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
        let epoch = {
            let s = part.state.read();
            if s.leader != self.node_id {
                return Err(AppendError::NotLeader);
            }
            s.leader_epoch
        };
        let mut guard = part.log.lock();
        let log = guard.as_mut().ok_or(AppendError::Deleted)?;
        let info = log.append(batch, epoch)?;
        if !info.duplicate {
            part.maybe_increment_hw(log, self.node_id);
        }
        Ok(info)
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
        let epoch = {
            let s = part.state.read();
            if s.leader != self.node_id {
                return Err(AppendError::NotLeader);
            }
            s.leader_epoch
        };
        let mut guard = part.log.lock();
        let log = guard.as_mut().ok_or(AppendError::Deleted)?;
        let info = log.append_control(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            epoch,
            self.clock.now_ms(),
        )?;
        part.maybe_increment_hw(log, self.node_id);
        Ok(info)
    }

    /// The in-sync replica check before an acks=all append (Kafka's `appendRecordsToLeader`):
    /// NOT_ENOUGH_REPLICAS when the ISR is smaller than `min.insync.replicas`, capped at the
    /// replication factor as Kafka's effective min ISR.
    pub fn check_min_isr(&self, part: &Partition, min_insync_replicas: i32) -> Result<(), String> {
        let s = part.state.read();
        let effective = (min_insync_replicas.max(1) as usize).min(s.replicas.len().max(1));
        if s.isr.len() < effective {
            return Err(format!(
                "The size of the current ISR {:?} is insufficient to satisfy the min.isr requirement of {} for partition {}",
                s.isr,
                min_insync_replicas,
                part.name()
            ));
        }
        Ok(())
    }

    /// The acks=all wait (Kafka's `DelayedProduce`): until the high watermark reaches
    /// `required_offset` (one past the appended batch), the partition is deleted or loses its
    /// leadership, or `timeout` passes (REQUEST_TIMED_OUT). The future owns what it needs.
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
                match part.high_watermark() {
                    None => return Err(ErrorCode::NotLeaderOrFollower),
                    Some(hw) if hw >= required_offset => return Ok(()),
                    Some(_) => {}
                }
                if part.leader() != node_id {
                    return Err(ErrorCode::NotLeaderOrFollower);
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Err(ErrorCode::RequestTimedOut);
                }
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
        if state.leader == self.node_id {
            // Kafka's makeLeader: the new epoch starts at the log end offset.
            let leo = log.log_end_offset();
            if let Err(e) = log.assign_epoch_start(state.leader_epoch, leo) {
                tracing::error!(partition = %format!("{}-{index}", meta.name), error = %e, "cannot record the leader epoch start");
            }
        }
        let part = Partition {
            topic: meta.name.clone(),
            topic_id: meta.id,
            index,
            state: RwLock::new(state),
            log: Mutex::new(None),
            hw_advanced: Notify::new(),
        };
        part.maybe_increment_hw(&mut log, self.node_id);
        *part.log.lock() = Some(log);
        Ok(Arc::new(part))
    }

    /// Stops hosting a partition (its topic was deleted, or a reassignment moved it away):
    /// wakes its waiters, tells the leadership listeners, deletes the log.
    fn remove_partition(&self, p: &Partition) {
        let log = p.log.lock().take();
        p.hw_advanced.notify_waiters();
        if p.state.read().leader == self.node_id {
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

    /// Applies a new replication state to a hosted partition (Kafka's `makeLeader` /
    /// `makeFollower`): a new leader epoch led here records the epoch start and (re)loads the
    /// coordinators; leadership moving away unloads them; an ISR change may advance the high
    /// watermark.
    fn update_partition(&self, p: &Partition, state: PartitionState) {
        let old = p.state.read().clone();
        if old == state {
            return;
        }
        let was_leader = old.leader == self.node_id;
        let is_leader = state.leader == self.node_id;
        let new_epoch = state.leader_epoch != old.leader_epoch;
        *p.state.write() = state.clone();
        if is_leader && (new_epoch || !was_leader) {
            p.with_log_mut(|log| {
                let leo = log.log_end_offset();
                if let Err(e) = log.assign_epoch_start(state.leader_epoch, leo) {
                    tracing::error!(partition = %p.name(), error = %e, "cannot record the leader epoch start");
                }
            });
            tracing::info!(partition = %p.name(), leader_epoch = state.leader_epoch, isr = ?state.isr, "became the leader");
            self.tell_listeners(&p.topic, |l| {
                l.on_become_leader(p.index, state.leader_epoch)
            });
        } else if was_leader && !is_leader {
            tracing::info!(partition = %p.name(), leader = state.leader, leader_epoch = state.leader_epoch, "no longer the leader");
            self.tell_listeners(&p.topic, |l| l.on_resign(p.index));
        }
        p.with_log_mut(|log| p.maybe_increment_hw(log, self.node_id));
        // Waiters re-check leadership (fetches and acks=all answer NOT_LEADER_OR_FOLLOWER).
        p.hw_advanced.notify_waiters();
    }

    /// Makes the hosted partitions match `image`. Blocking (opens and deletes logs).
    fn apply_image(&self, image: &ClusterState) {
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
                if state.leader == self.node_id {
                    self.tell_listeners(&p.topic, |l| {
                        l.on_become_leader(p.index, state.leader_epoch)
                    });
                }
            }
        }
    }
}

impl MetadataListener for ReplicaManager {
    fn on_metadata(&self, image: &Arc<ClusterState>) {
        self.apply_image(image);
    }
}
