//! The coordinator runtime (Kafka's `CoordinatorRuntime`): one generic engine that runs a
//! coordinator's state machine as **shards**, one per partition of its internal topic
//! (`__consumer_offsets` for groups, `__transaction_state` for transactions).
//!
//! - **Load and unload follow leadership.** The runtime is a [`LeadershipListener`]: when this
//!   broker becomes the leader of partition *p* it creates shard *p* and replays the partition's
//!   log into it on a blocking thread ([`CoordinatorShard::replay`], then
//!   [`CoordinatorShard::loaded`]); requests for *p* wait for the load. When it stops leading
//!   *p* the shard is dropped and requests for it get NOT_COORDINATOR.
//! - **Writes are durable before they are answered.** [`CoordinatorRuntime::write`] runs an
//!   operation against the shard under the shard's lock, appends the records it returns to the
//!   shard's partition as one batch (on a blocking thread, through the replica manager, stamped
//!   with the leader epoch), releases the lock and waits until the high watermark passes the
//!   batch (acks=all for the internal topics) before returning the operation's answer. If the
//!   append fails the in-memory state is ahead of the log: the shard is reloaded from its log
//!   (the durable truth) and the caller gets the error, never a success.
//! - **Reads** ([`CoordinatorRuntime::read`]) run under the same lock.
//! - **Timers**: every operation records the shard's next deadline; the services' timer loops
//!   ask for the [`due`](CoordinatorRuntime::due) shards and run their tick as a write.
//!
//! The state machines themselves stay pure (no I/O, time passed in); the runtime owns all of it.

use crate::limits::MAX_DECOMPRESSED_BATCH;
use crate::replica_manager::{AppendError, LeadershipListener, ReplicaManager};
use gregor_protocol::{Compression, ErrorCode, Record, RecordBatch, RecordBatchBuilder};
use gregor_storage::Clock;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// How long a request waits for a shard that is loading before COORDINATOR_LOAD_IN_PROGRESS.
const LOAD_WAIT: Duration = Duration::from_secs(30);
/// How long a write waits for the high watermark to pass its records.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// "No deadline" in a shard's deadline slot.
const NO_DEADLINE: i64 = i64::MAX;

/// A coordinator state machine for one partition of its internal topic.
pub trait CoordinatorShard: Send + 'static {
    /// Applies one batch read back from the partition while loading (`records` decoded).
    fn replay(&mut self, batch: &RecordBatch, records: &[Record]);
    /// Called once the whole partition was replayed.
    fn loaded(&mut self, now_ms: i64);
    /// Earliest time the shard's timers are due, if any.
    fn next_deadline(&self) -> Option<i64>;
}

/// Records an operation wants appended to its shard's partition, as one batch.
#[derive(Debug, Default)]
pub struct Writes {
    /// (key, value) records; a `None` value is a tombstone.
    pub records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Append as a transactional batch of this (producer id, epoch) (TxnOffsetCommit).
    pub txn: Option<(i64, i16)>,
}

impl Writes {
    /// No records.
    pub fn none() -> Writes {
        Writes::default()
    }

    /// These records, non-transactional.
    pub fn records(records: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Writes {
        Writes { records, txn: None }
    }
}

/// How a coordinator creates its internal topic (`offsets.topic.*`,
/// `transaction.state.log.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InternalTopic {
    /// Partition count.
    pub partitions: i32,
    /// Replication factor (1 on a single node).
    pub replication_factor: i16,
    /// `min.insync.replicas` of the topic, when the coordinator sets it.
    pub min_insync_replicas: Option<i32>,
}

/// Why a coordinator operation was not served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoordinatorError {
    /// This broker does not lead the shard's partition (NOT_COORDINATOR).
    #[error("this broker is not the coordinator of partition {0}")]
    NotCoordinator(i32),
    /// The shard is still loading (COORDINATOR_LOAD_IN_PROGRESS).
    #[error("partition {0} is still loading")]
    LoadInProgress(i32),
    /// The shard could not be loaded, or the internal topic does not exist
    /// (COORDINATOR_NOT_AVAILABLE).
    #[error("coordinator not available: {0}")]
    NotAvailable(String),
    /// The records could not be written or did not commit in time; the operation did not
    /// happen (the shard was reloaded from its log).
    #[error("cannot write to {partition}: {message}")]
    Write {
        /// Partition name.
        partition: String,
        /// Kafka error of the append or of the commit wait.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
}

impl CoordinatorError {
    /// The error a client gets, as Kafka's coordinators normalize append errors: storage
    /// trouble and replication shortfalls are COORDINATOR_NOT_AVAILABLE (retry), a lost
    /// leadership is NOT_COORDINATOR (find the coordinator again), oversize records are
    /// UNKNOWN_SERVER_ERROR.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoordinatorError::NotCoordinator(_) => ErrorCode::NotCoordinator,
            CoordinatorError::LoadInProgress(_) => ErrorCode::CoordinatorLoadInProgress,
            CoordinatorError::NotAvailable(_) => ErrorCode::CoordinatorNotAvailable,
            CoordinatorError::Write { code, .. } => match code {
                ErrorCode::NotLeaderOrFollower
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::FencedLeaderEpoch => ErrorCode::NotCoordinator,
                ErrorCode::MessageTooLarge
                | ErrorCode::RecordListTooLarge
                | ErrorCode::InvalidFetchSize => ErrorCode::UnknownServerError,
                _ => ErrorCode::CoordinatorNotAvailable,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LoadState {
    Loading,
    Loaded,
    Failed(String),
}

struct Slot<S> {
    epoch: i32,
    shard: tokio::sync::Mutex<Option<S>>,
    load: watch::Sender<LoadState>,
    deadline: AtomicI64,
}

type UnloadHook = Box<dyn Fn(i32) + Send + Sync>;
type LoadedHook = Box<dyn Fn(i32) + Send + Sync>;

/// The runtime of one coordinator (see the module docs).
pub struct CoordinatorRuntime<S: CoordinatorShard> {
    topic: &'static str,
    replicas: Arc<ReplicaManager>,
    clock: Arc<dyn Clock>,
    new_shard: Box<dyn Fn(i32, i32) -> S + Send + Sync>,
    slots: RwLock<HashMap<i32, Arc<Slot<S>>>>,
    timers_changed: Notify,
    on_unload: RwLock<Option<UnloadHook>>,
    on_loaded: RwLock<Option<LoadedHook>>,
}

impl<S: CoordinatorShard> std::fmt::Debug for CoordinatorRuntime<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorRuntime")
            .field("topic", &self.topic)
            .field("shards", &self.slots.read().len())
            .finish()
    }
}

impl<S: CoordinatorShard> CoordinatorRuntime<S> {
    /// A runtime for `topic`; `new_shard(partition, leader_epoch)` builds an empty shard.
    pub fn new(
        topic: &'static str,
        replicas: Arc<ReplicaManager>,
        clock: Arc<dyn Clock>,
        new_shard: impl Fn(i32, i32) -> S + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(CoordinatorRuntime {
            topic,
            replicas,
            clock,
            new_shard: Box::new(new_shard),
            slots: RwLock::new(HashMap::new()),
            timers_changed: Notify::new(),
            on_unload: RwLock::new(None),
            on_loaded: RwLock::new(None),
        })
    }

    /// Registers the hook run after a shard was unloaded (fail its pending requests).
    pub fn set_unload_hook(&self, hook: impl Fn(i32) + Send + Sync + 'static) {
        *self.on_unload.write() = Some(Box::new(hook));
    }

    /// Registers the hook run after a shard finished loading (follow-up work).
    pub fn set_loaded_hook(&self, hook: impl Fn(i32) + Send + Sync + 'static) {
        *self.on_loaded.write() = Some(Box::new(hook));
    }

    /// The internal topic.
    pub fn topic(&self) -> &'static str {
        self.topic
    }

    /// The current time of the runtime's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Partitions whose shard is loaded or loading here.
    pub fn partitions(&self) -> Vec<i32> {
        let mut p: Vec<i32> = self.slots.read().keys().copied().collect();
        p.sort_unstable();
        p
    }

    /// The leader epoch the shard of `partition` was loaded in (the coordinator epoch).
    pub fn epoch(&self, partition: i32) -> Option<i32> {
        self.slots.read().get(&partition).map(|s| s.epoch)
    }

    /// Notified when a shard's deadline may have moved earlier.
    pub fn timers_changed(&self) -> &Notify {
        &self.timers_changed
    }

    /// The earliest deadline over the loaded shards.
    pub fn next_deadline(&self) -> Option<i64> {
        self.slots
            .read()
            .values()
            .map(|s| s.deadline.load(Ordering::Acquire))
            .filter(|d| *d != NO_DEADLINE)
            .min()
    }

    /// Shards whose deadline is at or before `now_ms`.
    pub fn due(&self, now_ms: i64) -> Vec<i32> {
        self.slots
            .read()
            .iter()
            .filter(|(_, s)| s.deadline.load(Ordering::Acquire) <= now_ms)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Waits until the shard of `partition` is loaded and returns its slot.
    async fn ready(&self, partition: i32) -> Result<Arc<Slot<S>>, CoordinatorError> {
        let slot = self
            .slots
            .read()
            .get(&partition)
            .cloned()
            .ok_or(CoordinatorError::NotCoordinator(partition))?;
        let mut rx = slot.load.subscribe();
        let state = tokio::time::timeout(LOAD_WAIT, rx.wait_for(|s| *s != LoadState::Loading))
            .await
            .map_err(|_| CoordinatorError::LoadInProgress(partition))?
            .map_err(|_| CoordinatorError::NotCoordinator(partition))?
            .clone();
        match state {
            LoadState::Failed(e) => Err(CoordinatorError::NotAvailable(e)),
            _ => Ok(slot),
        }
    }

    /// FindCoordinator for the shard of `partition`, whose leader per the metadata is
    /// `leader`: this broker (`Ok(None)`) once the shard is loaded here, another broker
    /// (`Ok(Some(id))`) when it leads the partition, COORDINATOR_NOT_AVAILABLE while the
    /// partition has no leader or this broker has not taken it over yet.
    pub async fn locate(
        &self,
        partition: i32,
        leader: i32,
        me: i32,
    ) -> Result<Option<i32>, CoordinatorError> {
        if leader == me || self.slots.read().contains_key(&partition) {
            return match self.read(partition, |_| ()).await {
                Ok(()) => Ok(None),
                Err(CoordinatorError::NotCoordinator(_)) => Err(CoordinatorError::NotAvailable(
                    format!("{}-{partition} is not loaded yet", self.topic),
                )),
                Err(e) => Err(e),
            };
        }
        if leader < 0 {
            return Err(CoordinatorError::NotAvailable(format!(
                "{}-{partition} has no leader",
                self.topic
            )));
        }
        Ok(Some(leader))
    }

    /// Runs a read-only operation against the shard of `partition`.
    pub async fn read<T>(
        &self,
        partition: i32,
        op: impl FnOnce(&S) -> T,
    ) -> Result<T, CoordinatorError> {
        let slot = self.ready(partition).await?;
        let guard = slot.shard.lock().await;
        let shard = guard
            .as_ref()
            .ok_or(CoordinatorError::NotCoordinator(partition))?;
        Ok(op(shard))
    }

    /// Runs an operation against the shard of `partition` and makes its records durable
    /// before returning its answer (see the module docs). `op` gets the shard and the time.
    pub async fn write<T>(
        self: &Arc<Self>,
        partition: i32,
        op: impl FnOnce(&mut S, i64) -> (Writes, T),
    ) -> Result<T, CoordinatorError> {
        let slot = self.ready(partition).await?;
        let mut guard = slot.shard.lock().await;
        let shard = guard
            .as_mut()
            .ok_or(CoordinatorError::NotCoordinator(partition))?;
        let now = self.clock.now_ms();
        let (writes, value) = op(shard, now);
        let deadline = shard.next_deadline().unwrap_or(NO_DEADLINE);
        if slot.deadline.swap(deadline, Ordering::AcqRel) != deadline {
            self.timers_changed.notify_one();
        }
        if writes.records.is_empty() {
            return Ok(value);
        }
        let part = self.replicas.partition(self.topic, partition);
        let Some(part) = part else {
            *guard = None;
            drop(guard);
            return Err(CoordinatorError::NotCoordinator(partition));
        };
        let replicas = self.replicas.clone();
        let p = part.clone();
        let appended = tokio::task::spawn_blocking(move || append(&replicas, &p, writes, now))
            .await
            .unwrap_or_else(|e| Err((ErrorCode::UnknownServerError, format!("append task: {e}"))));
        let info = match appended {
            Ok(info) => info,
            Err((code, message)) => {
                // The state machine moved ahead of its log: rebuild it from the log.
                tracing::error!(partition = %part.name(), error = %message, "coordinator write failed; reloading the shard");
                *guard = None;
                drop(guard);
                self.reload(partition, &slot);
                return Err(CoordinatorError::Write {
                    partition: part.name(),
                    code,
                    message,
                });
            }
        };
        drop(guard);
        self.replicas
            .wait_for_commit(&part, info.last_offset + 1, COMMIT_TIMEOUT)
            .await
            .map_err(|code| CoordinatorError::Write {
                partition: part.name(),
                code,
                message: format!("records at offset {} did not commit", info.base_offset),
            })?;
        Ok(value)
    }

    /// Replaces a failed shard by a fresh one loaded from the log (if `slot` is still current).
    fn reload(self: &Arc<Self>, partition: i32, slot: &Arc<Slot<S>>) {
        let current = self.slots.read().get(&partition).cloned();
        if current.is_some_and(|c| Arc::ptr_eq(&c, slot)) {
            self.on_become_leader(partition, slot.epoch);
        }
    }

    /// Loads the shard of `slot` (blocking: reads the whole partition).
    fn load_blocking(&self, partition: i32, epoch: i32) -> Result<S, String> {
        let started = std::time::Instant::now();
        let mut shard = (self.new_shard)(partition, epoch);
        let part = self
            .replicas
            .partition(self.topic, partition)
            .ok_or_else(|| format!("{}-{partition} is not hosted here", self.topic))?;
        let mut offset = part
            .with_log(|l| l.log_start_offset())
            .ok_or("partition deleted")?;
        let mut batches = 0u64;
        loop {
            let read = part
                .with_log(|log| {
                    let end = log.log_end_offset();
                    if offset >= end {
                        return Ok(None);
                    }
                    log.read(offset, 4 * 1024 * 1024, true).map(|r| r.region)
                })
                .ok_or("partition deleted")?
                .map_err(|e| e.to_string())?;
            let Some(region) = read else { break };
            let bytes = region.read_to_vec().map_err(|e| e.to_string())?;
            let split = RecordBatch::split(bytes::Bytes::from(bytes))
                .map_err(|e| format!("{}: {e}", part.name()))?;
            let mut next = offset;
            for batch in split {
                next = batch.base_offset() + i64::from(batch.last_offset_delta()) + 1;
                let records = batch
                    .records(MAX_DECOMPRESSED_BATCH)
                    .map_err(|e| format!("{}: {e}", part.name()))?;
                shard.replay(&batch, &records);
                batches += 1;
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        shard.loaded(self.clock.now_ms());
        tracing::info!(
            partition = %part.name(),
            epoch,
            batches,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "coordinator shard loaded"
        );
        Ok(shard)
    }

    fn finish_load(&self, partition: i32, slot: &Arc<Slot<S>>, result: Result<S, String>) {
        let current = self.slots.read().get(&partition).cloned();
        if !current.is_some_and(|c| Arc::ptr_eq(&c, slot)) {
            return; // resigned (or re-elected) meanwhile
        }
        match result {
            Ok(shard) => {
                let deadline = shard.next_deadline().unwrap_or(NO_DEADLINE);
                // The slot is new and nobody holds its lock before it is marked loaded.
                if let Ok(mut guard) = slot.shard.try_lock() {
                    *guard = Some(shard);
                }
                slot.deadline.store(deadline, Ordering::Release);
                slot.load.send_replace(LoadState::Loaded);
                self.timers_changed.notify_one();
                if let Some(hook) = self.on_loaded.read().as_ref() {
                    hook(partition);
                }
            }
            Err(e) => {
                tracing::error!(topic = self.topic, partition, error = %e, "cannot load coordinator shard");
                slot.load.send_replace(LoadState::Failed(e));
            }
        }
    }
}

/// Builds the batch of `writes` and appends it as the leader. Blocking.
fn append(
    replicas: &ReplicaManager,
    part: &crate::replica_manager::Partition,
    writes: Writes,
    now_ms: i64,
) -> Result<gregor_storage::AppendInfo, (ErrorCode, String)> {
    let mut builder = RecordBatchBuilder::new(Compression::None, now_ms);
    if let Some((pid, epoch)) = writes.txn {
        // The next sequence of this producer in this partition.
        let seq = part
            .with_log(|log| match log.producer_entry(pid) {
                Some(e) if e.epoch == epoch && e.last_sequence >= 0 => {
                    e.last_sequence.wrapping_add(1).max(0)
                }
                _ => 0,
            })
            .unwrap_or(0);
        builder = builder.producer(pid, epoch, seq).transactional(true);
    }
    for (key, value) in &writes.records {
        builder.push(now_ms, Some(key), value.as_deref(), &[]);
    }
    let mut bytes = builder
        .build()
        .map_err(|e| (ErrorCode::UnknownServerError, e.to_string()))?
        .to_vec();
    replicas
        .append_as_leader(part, &mut bytes)
        .map_err(|e| match &e {
            AppendError::Deleted => (ErrorCode::NotLeaderOrFollower, e.to_string()),
            AppendError::NotLeader => (ErrorCode::NotLeaderOrFollower, e.to_string()),
            AppendError::Storage(s) => (crate::errors::storage_code(s), e.to_string()),
        })
}

impl<S: CoordinatorShard> LeadershipListener for Arc<CoordinatorRuntime<S>> {
    fn topic(&self) -> &str {
        self.topic
    }

    fn on_become_leader(&self, partition: i32, leader_epoch: i32) {
        let (tx, _) = watch::channel(LoadState::Loading);
        let slot = Arc::new(Slot {
            epoch: leader_epoch,
            shard: tokio::sync::Mutex::new(None),
            load: tx,
            deadline: AtomicI64::new(NO_DEADLINE),
        });
        self.slots.write().insert(partition, slot.clone());
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    let t = this.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        t.load_blocking(partition, leader_epoch)
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("load task: {e}")));
                    this.finish_load(partition, &slot, result);
                });
            }
            Err(_) => {
                let result = this.load_blocking(partition, leader_epoch);
                this.finish_load(partition, &slot, result);
            }
        }
    }

    fn on_resign(&self, partition: i32) {
        let removed = self.slots.write().remove(&partition);
        if let Some(slot) = removed {
            slot.load.send_replace(LoadState::Failed("unloaded".into()));
            if let Some(hook) = self.on_unload.read().as_ref() {
                hook(partition);
            }
            tracing::info!(topic = self.topic, partition, "coordinator shard unloaded");
        }
    }
}
