//! The I/O side of the group coordinator. `gregor-group-coordinator` is a pure state machine;
//! this module owns it behind one mutex and:
//! - creates the internal `__consumer_offsets` topic on first use (`offsets.topic.num.partitions`,
//!   `cleanup.policy=compact`) and replays it into the coordinator at start-up;
//! - persists the records every handler returns into the group's `__consumer_offsets` partition
//!   (`abs(javaHashCode(group)) % partitions`, as Kafka), while still holding the lock, so the
//!   log order is the order the state changed in — and before any response is sent;
//! - routes deferred JoinGroup/SyncGroup responses to the waiting connections;
//! - runs the coordinator's timers (initial rebalance delay, session expiry, ...).

use crate::broker::{Broker, LEADER_EPOCH};
use gregor_controller::state::CreateTopic;
use gregor_group_coordinator::{
    partition_for, GroupConfig, GroupCoordinator, Output, Record, RequestId, Response, TopicView,
};
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Notify};
use uuid::Uuid;

/// Name of the internal offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The broker's topics as the coordinator sees them.
pub struct BrokerTopics<'a>(pub &'a Broker);

impl TopicView for BrokerTopics<'_> {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.0.topic_meta(topic).map(|t| t.partitions)
    }
    fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.0.topic_meta(topic).map(|t| t.id)
    }
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.0.topic_name(id)
    }
    fn all_topics(&self) -> Vec<(String, Uuid, i32)> {
        self.0
            .all_topics()
            .into_iter()
            .map(|t| (t.name, t.id, t.partitions))
            .collect()
    }
}

/// Why a group request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    /// `__consumer_offsets` could not be created or loaded (COORDINATOR_NOT_AVAILABLE).
    #[error("group coordinator not available: {0}")]
    NotAvailable(String),
    /// The broker is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

/// The coordinator, its persistence and its pending responses.
pub struct Groups {
    coordinator: Mutex<Option<GroupCoordinator>>,
    config: GroupConfig,
    partitions: i32,
    pending: Mutex<HashMap<RequestId, oneshot::Sender<Response>>>,
    next_id: AtomicU64,
    timers_changed: Notify,
    loading: tokio::sync::Mutex<()>,
    loaded: AtomicBool,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl Groups {
    /// A coordinator that loads `__consumer_offsets` on first use.
    pub fn new(config: GroupConfig, partitions: i32) -> Groups {
        Groups {
            coordinator: Mutex::new(None),
            config,
            partitions: partitions.max(1),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            timers_changed: Notify::new(),
            loading: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(false),
        }
    }

    /// Partition of `__consumer_offsets` that holds a group.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.partitions)
    }

    /// Makes sure `__consumer_offsets` exists and has been replayed.
    pub async fn ensure_loaded(&self, broker: &Arc<Broker>) -> Result<(), GroupsError> {
        if self.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let _guard = self.loading.lock().await;
        if self.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let b = broker.clone();
        let config = self.config.clone();
        let partitions = self.partitions;
        let coordinator = tokio::task::spawn_blocking(move || load(&b, config, partitions))
            .await
            .map_err(|e| GroupsError::NotAvailable(e.to_string()))??;
        *self.coordinator.lock() = Some(coordinator);
        self.loaded.store(true, Ordering::Release);
        self.timers_changed.notify_one();
        Ok(())
    }

    /// Loads at start-up if the offsets topic already exists (so timers and groups resume).
    pub async fn load_if_present(&self, broker: &Arc<Broker>) -> Result<(), GroupsError> {
        if broker.topic_meta(OFFSETS_TOPIC).is_some() {
            self.ensure_loaded(broker).await
        } else {
            Ok(())
        }
    }

    /// Runs `f` against the loaded coordinator, persisting the records it returns before
    /// releasing the lock.
    pub fn with<T>(
        &self,
        broker: &Broker,
        f: impl FnOnce(&mut GroupCoordinator, &dyn TopicView) -> (Vec<Record>, T),
    ) -> Result<T, GroupsError> {
        let mut guard = self.coordinator.lock();
        let c = guard
            .as_mut()
            .ok_or_else(|| GroupsError::NotAvailable("not loaded".into()))?;
        let topics = BrokerTopics(broker);
        let (records, value) = f(c, &topics);
        self.persist(broker, &records, None);
        drop(guard);
        self.timers_changed.notify_one();
        Ok(value)
    }

    /// As [`Groups::with`], for TxnOffsetCommit: the records are appended as a transactional
    /// batch of (`producer_id`, `producer_epoch`), so the transaction's marker settles them.
    pub fn with_txn<T>(
        &self,
        broker: &Broker,
        producer_id: i64,
        producer_epoch: i16,
        f: impl FnOnce(&mut GroupCoordinator, &dyn TopicView) -> (Vec<Record>, T),
    ) -> Result<T, GroupsError> {
        let mut guard = self.coordinator.lock();
        let c = guard
            .as_mut()
            .ok_or_else(|| GroupsError::NotAvailable("not loaded".into()))?;
        let topics = BrokerTopics(broker);
        let (records, value) = f(c, &topics);
        self.persist(broker, &records, Some((producer_id, producer_epoch)));
        Ok(value)
    }

    /// A transaction marker reached `__consumer_offsets`: settles the producer's pending
    /// transactional offsets (no-op before the coordinator is loaded: replay will do it).
    pub fn complete_txn(&self, producer_id: i64, commit: bool) {
        if let Some(c) = self.coordinator.lock().as_mut() {
            c.complete_txn(producer_id, commit);
        }
    }

    /// Read-only access to the loaded coordinator.
    pub fn read<T>(
        &self,
        broker: &Broker,
        f: impl FnOnce(&GroupCoordinator, &dyn TopicView) -> T,
    ) -> Result<T, GroupsError> {
        let guard = self.coordinator.lock();
        let c = guard
            .as_ref()
            .ok_or_else(|| GroupsError::NotAvailable("not loaded".into()))?;
        Ok(f(c, &BrokerTopics(broker)))
    }

    /// Runs a handler whose response may be deferred (JoinGroup, SyncGroup, Heartbeat,
    /// LeaveGroup) and waits for its response.
    pub async fn call(
        &self,
        broker: &Broker,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        f: impl FnOnce(&mut GroupCoordinator, RequestId, &dyn TopicView) -> Output,
    ) -> Result<Response, GroupsError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let out = self.with(broker, |c, topics| {
            let out = f(c, id, topics);
            (out.records, out.responses)
        });
        let responses = match out {
            Ok(r) => r,
            Err(e) => {
                self.pending.lock().remove(&id);
                return Err(e);
            }
        };
        self.dispatch(responses);
        // A deferred answer (JoinGroup waiting for the rebalance) is waiting, not work.
        crate::metrics::waiting(async {
            tokio::select! {
                r = rx => r.map_err(|_| GroupsError::NotAvailable("request dropped".into())),
                _ = shutdown.changed() => {
                    self.pending.lock().remove(&id);
                    Err(GroupsError::ShuttingDown)
                }
            }
        })
        .await
    }

    fn dispatch(&self, responses: Vec<(RequestId, Response)>) {
        if responses.is_empty() {
            return;
        }
        let mut pending = self.pending.lock();
        for (id, resp) in responses {
            if let Some(tx) = pending.remove(&id) {
                let _ = tx.send(resp);
            }
        }
    }

    /// Appends records to their `__consumer_offsets` partitions (one batch per partition;
    /// transactional batches of the given producer for TxnOffsetCommit).
    fn persist(&self, broker: &Broker, records: &[Record], txn: Option<(i64, i16)>) {
        if records.is_empty() {
            return;
        }
        let now = now_ms();
        let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
        for r in records {
            by_partition
                .entry(self.partition_for(&r.group_id))
                .or_default()
                .push(r);
        }
        for (p, recs) in by_partition {
            let Some(part) = broker.partition(OFFSETS_TOPIC, p) else {
                tracing::error!(
                    partition = p,
                    "__consumer_offsets partition missing; group records lost"
                );
                continue;
            };
            let mut guard = part.log.lock();
            let mut builder = RecordBatchBuilder::new(Compression::None, now);
            if let (Some((pid, epoch)), Some(log)) = (txn, guard.as_ref()) {
                // The next sequence of this producer in this partition.
                let seq = match log.producer_entry(pid) {
                    Some(e) if e.epoch == epoch && e.last_sequence >= 0 => {
                        e.last_sequence.wrapping_add(1).max(0)
                    }
                    _ => 0,
                };
                builder = builder.producer(pid, epoch, seq).transactional(true);
            }
            for r in &recs {
                builder.push(now, Some(&r.key), r.value.as_deref(), &[]);
            }
            let batch = match builder.build() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build __consumer_offsets batch");
                    continue;
                }
            };
            let mut bytes = batch.to_vec();
            if let Some(log) = guard.as_mut() {
                if let Err(e) = log.append(&mut bytes, LEADER_EPOCH) {
                    tracing::error!(partition = p, error = %e, "cannot append to __consumer_offsets");
                }
            }
            drop(guard);
            part.appended.notify_waiters();
        }
    }

    /// The timer loop: fires the coordinator's deadlines until shutdown.
    pub async fn run_timers(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let next = {
                let guard = self.coordinator.lock();
                guard.as_ref().and_then(|c| c.next_deadline())
            };
            let wait = match next {
                Some(d) => Duration::from_millis((d - now_ms()).clamp(0, 1000) as u64),
                None => Duration::from_millis(1000),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.timers_changed.notified() => continue,
                _ = shutdown.changed() => return,
            }
            let now = now_ms();
            let out = self.with(&broker, |c, _| {
                let out = c.tick(now);
                (out.records, out.responses)
            });
            if let Ok(responses) = out {
                self.dispatch(responses);
            }
        }
    }
}

/// Creates `__consumer_offsets` if needed and replays every partition into a new coordinator.
fn load(
    broker: &Broker,
    config: GroupConfig,
    partitions: i32,
) -> Result<GroupCoordinator, GroupsError> {
    if broker.topic_meta(OFFSETS_TOPIC).is_none() {
        let req = CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            partitions,
            replication_factor: 1,
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "producer".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]),
        };
        match broker.create_topic(&req) {
            Ok(_) | Err(gregor_controller::ControllerError::TopicAlreadyExists(_)) => {}
            Err(e) => return Err(GroupsError::NotAvailable(e.to_string())),
        }
    }
    let started = std::time::Instant::now();
    let mut coordinator = GroupCoordinator::new(config, gregor_group_coordinator::RandomIds);
    let meta = broker
        .topic_meta(OFFSETS_TOPIC)
        .ok_or_else(|| GroupsError::NotAvailable("__consumer_offsets vanished".into()))?;
    let mut replayed = 0u64;
    for p in 0..meta.partitions {
        let Some(part) = broker.partition(OFFSETS_TOPIC, p) else {
            continue;
        };
        let guard = part.log.lock();
        let Some(log) = guard.as_ref() else { continue };
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            let read = log
                .read(offset, 4 * 1024 * 1024, true)
                .map_err(|e| GroupsError::NotAvailable(e.to_string()))?;
            let Some(region) = read.region else { break };
            let bytes = region
                .read_to_vec()
                .map_err(|e| GroupsError::NotAvailable(e.to_string()))?;
            let batches = RecordBatch::split(bytes::Bytes::from(bytes))
                .map_err(|e| GroupsError::NotAvailable(format!("__consumer_offsets-{p}: {e}")))?;
            let mut next = offset;
            for batch in batches {
                next = batch.last_offset() + 1;
                let records = batch
                    .records(crate::handlers::produce::MAX_DECOMPRESSED_BATCH)
                    .map_err(|e| {
                        GroupsError::NotAvailable(format!("__consumer_offsets-{p}: {e}"))
                    })?;
                if batch.is_control() {
                    // Transaction marker: key [version i16, type i16] (0 ABORT, 1 COMMIT).
                    if let Some(key) = records.first().and_then(|r| r.key.as_ref()) {
                        if key.len() >= 4 {
                            let commit = i16::from_be_bytes([key[2], key[3]]) == 1;
                            coordinator.replay_txn_marker(batch.producer_id(), commit);
                        }
                    }
                    continue;
                }
                let txn_producer = batch.is_transactional().then(|| batch.producer_id());
                for r in records {
                    let Some(key) = r.key else { continue };
                    let result = match txn_producer {
                        Some(pid) => coordinator.replay_txn_record(pid, &key, r.value.as_deref()),
                        None => coordinator.replay(&key, r.value.as_deref()),
                    };
                    if let Err(e) = result {
                        tracing::warn!(partition = p, error = %e, "skipping unreadable __consumer_offsets record");
                    }
                    replayed += 1;
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
    }
    coordinator.finish_replay(now_ms());
    tracing::info!(
        records = replayed,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "group coordinator loaded __consumer_offsets"
    );
    Ok(coordinator)
}
