//! [`GroupCoordinatorService`]: the group coordinator of this broker (Kafka's
//! `GroupCoordinatorService`). Each partition of `__consumer_offsets` this broker leads is a
//! shard — a pure `gregor_group_coordinator::GroupCoordinator` holding the groups that hash to
//! that partition (`abs(javaHashCode(group)) % partitions`, as Kafka) — run by the generic
//! [`CoordinatorRuntime`], which loads it when this broker becomes the partition's leader and
//! makes every record durable before the answer goes out.
//!
//! This module adds what is specific to groups:
//! - creating `__consumer_offsets` on the first FindCoordinator (`offsets.topic.num.partitions`,
//!   `cleanup.policy=compact`);
//! - routing a request to the shard of its group (NOT_COORDINATOR when this broker does not
//!   lead it), and fanning multi-group requests out over the shards;
//! - deferred answers (JoinGroup and SyncGroup wait for the other members): handlers take a
//!   [`RequestId`] and may answer earlier requests; the answers are routed to the waiting
//!   connections once the records that go with them are durable;
//! - the timer loop (initial rebalance delay, session expiry, offset retention);
//! - settling transactional offset commits when a transaction marker lands in a partition.

use crate::controller::ControllerChannel;
use crate::coordinator_runtime::{
    CoordinatorError, CoordinatorRuntime, CoordinatorShard, InternalTopic, Writes,
};
use crate::metadata_cache::{ImageTopics, MetadataCache};
use crate::replica_manager::ReplicaManager;
use gregor_controller::state::CreateTopic;
use gregor_group_coordinator::{
    partition_for, GroupConfig, GroupCoordinator, Output, Record, RequestId, Response, TopicView,
};
use gregor_protocol::{Record as BatchRecord, RecordBatch};
use gregor_storage::Clock;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Name of the internal offsets topic.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A shard of the group coordinator: the groups of one `__consumer_offsets` partition.
impl CoordinatorShard for GroupCoordinator {
    fn replay(&mut self, batch: &RecordBatch, records: &[BatchRecord]) {
        if batch.is_control() {
            // Transaction marker: key [version i16, type i16] (0 ABORT, 1 COMMIT).
            if let Some(key) = records.first().and_then(|r| r.key.as_ref()) {
                if key.len() >= 4 {
                    let commit = i16::from_be_bytes([key[2], key[3]]) == 1;
                    self.replay_txn_marker(batch.producer_id(), commit);
                }
            }
            return;
        }
        let txn_producer = batch.is_transactional().then(|| batch.producer_id());
        for r in records {
            let Some(key) = &r.key else { continue };
            let result = match txn_producer {
                Some(pid) => self.replay_txn_record(pid, key, r.value.as_deref()),
                None => GroupCoordinator::replay(self, key, r.value.as_deref()),
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "skipping unreadable __consumer_offsets record");
            }
        }
    }

    fn loaded(&mut self, now_ms: i64) {
        self.finish_replay(now_ms);
    }

    fn next_deadline(&self) -> Option<i64> {
        GroupCoordinator::next_deadline(self)
    }
}

fn writes(records: Vec<Record>) -> Writes {
    Writes::records(records.into_iter().map(|r| (r.key, r.value)).collect())
}

/// The group coordinator service.
pub struct GroupCoordinatorService {
    runtime: Arc<CoordinatorRuntime<GroupCoordinator>>,
    metadata: Arc<MetadataCache>,
    controller: Arc<ControllerChannel>,
    /// `offsets.topic.num.partitions`: the partition count when this broker creates the topic.
    internal_topic: InternalTopic,
    pending: Mutex<HashMap<RequestId, (i32, oneshot::Sender<Response>)>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for GroupCoordinatorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinatorService")
            .field("shards", &self.runtime.partitions())
            .finish()
    }
}

impl GroupCoordinatorService {
    /// The service; registers its runtime with the replica manager, which loads the shards of
    /// the `__consumer_offsets` partitions this broker already leads.
    pub fn new(
        config: GroupConfig,
        internal_topic: InternalTopic,
        replicas: Arc<ReplicaManager>,
        metadata: Arc<MetadataCache>,
        controller: Arc<ControllerChannel>,
        clock: Arc<dyn Clock>,
    ) -> Arc<GroupCoordinatorService> {
        let runtime =
            CoordinatorRuntime::new(OFFSETS_TOPIC, replicas.clone(), clock, move |_, _| {
                GroupCoordinator::new(config.clone(), gregor_group_coordinator::RandomIds)
            });
        let service = Arc::new(GroupCoordinatorService {
            runtime: runtime.clone(),
            metadata,
            controller,
            internal_topic: InternalTopic {
                partitions: internal_topic.partitions.max(1),
                ..internal_topic
            },
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        let weak = Arc::downgrade(&service);
        runtime.set_unload_hook(move |partition| {
            if let Some(s) = weak.upgrade() {
                s.fail_pending(partition);
            }
        });
        replicas.add_leadership_listener(Arc::new(runtime));
        service
    }

    /// Number of `__consumer_offsets` partitions (the topic's, else the configured count).
    pub fn partitions(&self) -> i32 {
        self.metadata
            .topic(OFFSETS_TOPIC)
            .map_or(self.internal_topic.partitions, |t| t.partitions)
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.partitions())
    }

    /// The partitions whose shards this broker runs.
    pub fn shards(&self) -> Vec<i32> {
        self.runtime.partitions()
    }

    /// Creates `__consumer_offsets` if it does not exist yet (the first FindCoordinator).
    pub async fn ensure_topic(&self) -> Result<(), CoordinatorError> {
        if self.metadata.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let req = CreateTopic {
            name: OFFSETS_TOPIC.to_string(),
            partitions: self.internal_topic.partitions,
            replication_factor: self.internal_topic.replication_factor,
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "producer".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]),
        };
        match self.controller.create_topic(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == gregor_protocol::ErrorCode::TopicAlreadyExists => Ok(()),
            Err(e) => Err(CoordinatorError::NotAvailable(e.to_string())),
        }
    }

    /// FindCoordinator for a group: creates the topic if needed and waits until the group's
    /// shard is loaded here.
    pub async fn find_coordinator(
        &self,
        group_id: &str,
        me: i32,
    ) -> Result<Option<i32>, CoordinatorError> {
        self.ensure_topic().await?;
        let partition = self.partition_for(group_id);
        let leader = self
            .metadata
            .topic(OFFSETS_TOPIC)
            .and_then(|t| self.metadata.partition_state(&t, partition))
            .map_or(-1, |s| s.leader);
        self.runtime.locate(partition, leader, me).await
    }

    fn topics(&self) -> ImageTopics {
        ImageTopics(self.metadata.image())
    }

    /// Runs a group operation that answers at once and may write records.
    pub async fn write<T>(
        &self,
        group_id: &str,
        op: impl FnOnce(&mut GroupCoordinator, &dyn TopicView, i64) -> (Vec<Record>, T),
    ) -> Result<T, CoordinatorError> {
        let topics = self.topics();
        self.runtime
            .write(self.partition_for(group_id), |c, now| {
                let (records, value) = op(c, &topics, now);
                (writes(records), value)
            })
            .await
    }

    /// As [`GroupCoordinatorService::write`] for TxnOffsetCommit: the records are appended as
    /// a transactional batch of (`producer_id`, `producer_epoch`), settled by the marker.
    pub async fn write_txn<T>(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        op: impl FnOnce(&mut GroupCoordinator, &dyn TopicView, i64) -> (Vec<Record>, T),
    ) -> Result<T, CoordinatorError> {
        let topics = self.topics();
        self.runtime
            .write(self.partition_for(group_id), |c, now| {
                let (records, value) = op(c, &topics, now);
                let mut w = writes(records);
                w.txn = Some((producer_id, producer_epoch));
                (w, value)
            })
            .await
    }

    /// Runs a read-only operation against the shard of a group.
    pub async fn read<T>(
        &self,
        group_id: &str,
        op: impl FnOnce(&GroupCoordinator, &dyn TopicView, i64) -> T,
    ) -> Result<T, CoordinatorError> {
        self.read_shard(self.partition_for(group_id), op).await
    }

    /// Runs a read-only operation against one shard.
    pub async fn read_shard<T>(
        &self,
        partition: i32,
        op: impl FnOnce(&GroupCoordinator, &dyn TopicView, i64) -> T,
    ) -> Result<T, CoordinatorError> {
        let topics = self.topics();
        let now = self.runtime.now_ms();
        self.runtime.read(partition, |c| op(c, &topics, now)).await
    }

    /// Runs a write operation against one shard (multi-group requests split per shard).
    pub async fn write_shard<T>(
        &self,
        partition: i32,
        op: impl FnOnce(&mut GroupCoordinator, &dyn TopicView, i64) -> (Vec<Record>, T),
    ) -> Result<T, CoordinatorError> {
        let topics = self.topics();
        self.runtime
            .write(partition, |c, now| {
                let (records, value) = op(c, &topics, now);
                (writes(records), value)
            })
            .await
    }

    /// Groups the indexes of `group_ids` by the shard that owns them (request order kept
    /// within a shard), for fanning a multi-group request out.
    pub fn by_shard<'a>(
        &self,
        group_ids: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<i32, Vec<usize>> {
        let n = self.partitions();
        let mut out: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, g) in group_ids.into_iter().enumerate() {
            out.entry(partition_for(g, n)).or_default().push(i);
        }
        out
    }

    /// Runs a group operation whose answer may be deferred (JoinGroup, SyncGroup, Heartbeat,
    /// LeaveGroup) and waits for the answer; `shutdown` ends the wait.
    pub async fn call(
        &self,
        group_id: &str,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
        op: impl FnOnce(&mut GroupCoordinator, RequestId, i64) -> Output,
    ) -> Result<Response, CallError> {
        let partition = self.partition_for(group_id);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, (partition, tx));
        let answered = self
            .runtime
            .write(partition, |c, now| {
                let out = op(c, id, now);
                (writes(out.records), out.responses)
            })
            .await;
        match answered {
            Ok(responses) => self.dispatch(responses),
            Err(e) => {
                self.pending.lock().remove(&id);
                return Err(CallError::Coordinator(e));
            }
        }
        // A deferred answer (JoinGroup waiting for the rebalance) is waiting, not work.
        crate::metrics::waiting(async {
            tokio::select! {
                r = rx => r.map_err(|_| CallError::Coordinator(CoordinatorError::NotCoordinator(partition))),
                _ = shutdown.changed() => {
                    self.pending.lock().remove(&id);
                    Err(CallError::ShuttingDown)
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
            if let Some((_, tx)) = pending.remove(&id) {
                let _ = tx.send(resp);
            }
        }
    }

    /// Drops the waiters of an unloaded shard (their connections get NOT_COORDINATOR).
    fn fail_pending(&self, partition: i32) {
        self.pending.lock().retain(|_, (p, _)| *p != partition);
    }

    /// A transaction marker was appended to `__consumer_offsets`-`partition`: settles the
    /// producer's pending transactional offsets in that shard (a shard that is loading will
    /// replay the marker instead).
    pub async fn complete_txn(&self, partition: i32, producer_id: i64, commit: bool) {
        let r = self
            .runtime
            .write(partition, |c, _| {
                c.complete_txn(producer_id, commit);
                (Writes::none(), ())
            })
            .await;
        if let Err(e) = r {
            tracing::debug!(partition, error = %e, "transaction marker not applied to a group shard");
        }
    }

    /// Committed offsets of every loaded shard, for the metrics snapshot:
    /// (group, topic, partition, offset).
    pub async fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let mut out = Vec::new();
        for p in self.shards() {
            if let Ok(mut v) = self
                .runtime
                .read(p, |c| {
                    let store = c.offsets();
                    store
                        .group_ids()
                        .filter_map(|g| store.group(g).map(|offsets| (g, offsets)))
                        .flat_map(|(g, offsets)| {
                            offsets.iter().flat_map(move |(topic, parts)| {
                                parts
                                    .iter()
                                    .map(move |(p, o)| (g.clone(), topic.clone(), *p, o.offset))
                            })
                        })
                        .collect::<Vec<_>>()
                })
                .await
            {
                out.append(&mut v);
            }
        }
        out
    }

    /// The timer loop: fires due shards' timers until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let now = self.runtime.now_ms();
            let wait = match self.runtime.next_deadline() {
                Some(d) => Duration::from_millis((d - now).clamp(0, 1000) as u64),
                None => Duration::from_millis(1000),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.runtime.timers_changed().notified() => continue,
                _ = shutdown.changed() => return,
            }
            let now = self.runtime.now_ms();
            for p in self.runtime.due(now) {
                let out = self
                    .runtime
                    .write(p, |c, now| {
                        let out = c.tick(now);
                        (writes(out.records), out.responses)
                    })
                    .await;
                match out {
                    Ok(responses) => self.dispatch(responses),
                    Err(e) => tracing::warn!(partition = p, error = %e, "group timers failed"),
                }
            }
        }
    }
}

/// Why a deferred group call ended without an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The coordinator could not serve it.
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    /// The broker is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}
