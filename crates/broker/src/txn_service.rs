//! [`TxnCoordinatorService`]: the transaction coordinator of this broker (Kafka's
//! `TransactionCoordinator` + `TransactionStateManager` + `TransactionMarkerChannelManager`).
//! Each partition of `__transaction_state` this broker leads is a shard — a pure
//! `gregor_txn_coordinator::TxnCoordinator` holding the transactional ids that hash to it, with
//! the partition's leader epoch as its coordinator epoch — run by the generic
//! [`CoordinatorRuntime`] (loaded on leadership, records durable before answers).
//!
//! This module adds what is specific to transactions:
//! - creating `__transaction_state` on the first transactional FindCoordinator;
//! - ending transactions: after the PrepareCommit/PrepareAbort record is durable, the markers
//!   are written to every partition of the transaction ([`MarkerWriter`]), then the
//!   CompleteCommit/CompleteAbort record; the client is answered after all of it (so a
//!   read_committed consumer sees the transaction the moment EndTxn returns);
//! - after a shard loads, finishing the transactions that were between Prepare* and Complete*
//!   when the previous leader stopped;
//! - the timer that aborts timed-out transactions and expires idle transactional ids
//!   (`transaction.abort.timed.out.transaction.cleanup.interval.ms`);
//! - verifying, for a partition leader's Produce, that a transactional batch's partition is in
//!   the producer's ongoing transaction ([`TxnCoordinatorService::verify_partition`]: locally
//!   when this broker is the coordinator, else AddPartitionsToTxn v4+ `verify_only` to the
//!   coordinator, as Kafka's `AddPartitionsToTxnManager`).

use crate::controller::ControllerChannel;
use crate::coordinator_runtime::{
    CoordinatorError, CoordinatorRuntime, CoordinatorShard, InternalTopic, Writes,
};
use crate::markers::{Marker, MarkerWriter};
use crate::metadata_cache::MetadataCache;
use crate::producer_ids::ProducerIdManager;
use crate::replica_manager::ReplicaManager;
use crate::rpc_client::ChannelPool;
use gregor_controller::state::CreateTopic;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::messages::{ProducerId, TopicName, TransactionalId};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use gregor_protocol::{Record as BatchRecord, RecordBatch};
use gregor_storage::Clock;
use gregor_txn_coordinator::{MarkerRequest, Output, Record, TxnConfig, TxnCoordinator};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a partition leader waits for the coordinator's answer to a verification.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the internal transaction log topic.
pub const TXN_TOPIC: &str = "__transaction_state";

/// A shard of the transaction coordinator: the transactional ids of one partition.
#[derive(Debug)]
pub struct TxnShard {
    coordinator: TxnCoordinator,
    /// Transactions found between Prepare* and Complete* at load: their markers are rewritten.
    recovered: Vec<MarkerRequest>,
}

impl CoordinatorShard for TxnShard {
    fn replay(&mut self, batch: &RecordBatch, records: &[BatchRecord]) {
        if batch.is_control() {
            return;
        }
        for r in records {
            let Some(key) = &r.key else { continue };
            if let Err(e) = self.coordinator.replay(key, r.value.as_deref()) {
                tracing::warn!(error = %e, "skipping unreadable __transaction_state record");
            }
        }
    }

    fn loaded(&mut self, _now_ms: i64) {
        self.recovered = self.coordinator.finish_replay();
    }

    fn next_deadline(&self) -> Option<i64> {
        None
    }
}

fn writes(records: Vec<Record>) -> Writes {
    Writes::records(records.into_iter().map(|r| (r.key, r.value)).collect())
}

/// The transaction coordinator service.
pub struct TxnCoordinatorService {
    runtime: Arc<CoordinatorRuntime<TxnShard>>,
    replicas: Arc<ReplicaManager>,
    verify_pool: OnceLock<ChannelPool>,
    metadata: Arc<MetadataCache>,
    controller: Arc<ControllerChannel>,
    markers: MarkerWriter,
    producer_ids: Arc<ProducerIdManager>,
    internal_topic: InternalTopic,
    cleanup_interval: Duration,
}

impl std::fmt::Debug for TxnCoordinatorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnCoordinatorService")
            .field("shards", &self.runtime.partitions())
            .finish()
    }
}

/// Services the transaction coordinator uses.
#[derive(Debug, Clone)]
pub struct TxnDeps {
    /// Partitions (markers, the transaction log).
    pub replicas: Arc<ReplicaManager>,
    /// Metadata (partition count of the topic).
    pub metadata: Arc<MetadataCache>,
    /// Topic creation.
    pub controller: Arc<ControllerChannel>,
    /// Marker writes.
    pub markers: MarkerWriter,
    /// Producer ids.
    pub producer_ids: Arc<ProducerIdManager>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl TxnCoordinatorService {
    /// The service; registers its runtime with the replica manager.
    pub fn new(
        config: TxnConfig,
        internal_topic: InternalTopic,
        cleanup_interval_ms: u64,
        deps: TxnDeps,
    ) -> Arc<TxnCoordinatorService> {
        let runtime = CoordinatorRuntime::new(
            TXN_TOPIC,
            deps.replicas.clone(),
            deps.clock,
            move |_, leader_epoch| TxnShard {
                coordinator: TxnCoordinator::new(TxnConfig {
                    coordinator_epoch: leader_epoch,
                    ..config.clone()
                }),
                recovered: Vec::new(),
            },
        );
        let service = Arc::new(TxnCoordinatorService {
            runtime: runtime.clone(),
            replicas: deps.replicas.clone(),
            verify_pool: OnceLock::new(),
            metadata: deps.metadata,
            controller: deps.controller,
            markers: deps.markers,
            producer_ids: deps.producer_ids,
            internal_topic: InternalTopic {
                partitions: internal_topic.partitions.max(1),
                ..internal_topic
            },
            cleanup_interval: Duration::from_millis(cleanup_interval_ms.max(1)),
        });
        let weak = Arc::downgrade(&service);
        runtime.set_loaded_hook(move |partition| {
            if let Some(s) = weak.upgrade() {
                tokio::spawn(async move { s.finish_recovered(partition).await });
            }
        });
        deps.replicas.add_leadership_listener(Arc::new(runtime));
        service
    }

    /// The marker writer (the WriteTxnMarkers handler writes through it).
    pub fn markers(&self) -> &MarkerWriter {
        &self.markers
    }

    /// Number of `__transaction_state` partitions.
    pub fn partitions(&self) -> i32 {
        self.metadata
            .topic(TXN_TOPIC)
            .map_or(self.internal_topic.partitions, |t| t.partitions)
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        gregor_group_coordinator::partition_for(transactional_id, self.partitions())
    }

    /// The partitions whose shards this broker runs.
    pub fn shards(&self) -> Vec<i32> {
        self.runtime.partitions()
    }

    /// Producer ids for idempotent producers and new transactional ids.
    pub fn producer_ids(&self) -> &ProducerIdManager {
        &self.producer_ids
    }

    /// Creates `__transaction_state` if it does not exist yet.
    pub async fn ensure_topic(&self) -> Result<(), CoordinatorError> {
        if self.metadata.topic(TXN_TOPIC).is_some() {
            return Ok(());
        }
        let req = CreateTopic {
            name: TXN_TOPIC.to_string(),
            partitions: self.internal_topic.partitions,
            replication_factor: self.internal_topic.replication_factor,
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "uncompressed".to_string()),
                (
                    "min.insync.replicas".to_string(),
                    self.internal_topic
                        .min_insync_replicas
                        .unwrap_or(1)
                        .to_string(),
                ),
                ("segment.bytes".to_string(), "104857600".to_string()),
                (
                    "unclean.leader.election.enable".to_string(),
                    "false".to_string(),
                ),
            ]),
        };
        match self.controller.create_topic(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == gregor_protocol::ErrorCode::TopicAlreadyExists => Ok(()),
            Err(e) => Err(CoordinatorError::NotAvailable(e.to_string())),
        }
    }

    /// FindCoordinator for a transactional id: creates the topic if needed and waits until
    /// the id's shard is loaded here.
    pub async fn find_coordinator(
        &self,
        transactional_id: &str,
        me: i32,
    ) -> Result<Option<i32>, CoordinatorError> {
        self.ensure_topic().await?;
        let partition = self.partition_for(transactional_id);
        let leader = self
            .metadata
            .topic(TXN_TOPIC)
            .and_then(|t| self.metadata.partition_state(&t, partition))
            .map_or(-1, |s| s.leader);
        self.runtime.locate(partition, leader, me).await
    }

    /// Runs an operation for `transactional_id`: persists its records, writes its markers and
    /// persists the completions, then returns its answer. Producer ids the operation allocates
    /// come from [`ProducerIdManager::next_or_retriable`] (a block is fetched beforehand).
    pub async fn write<T>(
        &self,
        transactional_id: &str,
        op: impl FnOnce(&mut TxnCoordinator, i64) -> Output<T>,
    ) -> Result<T, CoordinatorError> {
        if let Err(code) = self.producer_ids.ensure_available().await {
            return Err(CoordinatorError::NotAvailable(format!(
                "no producer ids: {code:?}"
            )));
        }
        let partition = self.partition_for(transactional_id);
        let (markers, response) = self
            .runtime
            .write(partition, |s, now| {
                let out = op(&mut s.coordinator, now);
                (writes(out.records), (out.markers, out.response))
            })
            .await?;
        self.complete(partition, markers).await?;
        Ok(response)
    }

    /// Whether `topic`-`partition` is part of the ongoing transaction of `transactional_id`
    /// (producer id and epoch of the batch), asked by the partition's leader before it appends
    /// a transactional batch. Errors are those Kafka's leader answers the Produce with: the
    /// coordinator's verdict (INVALID_TXN_STATE, INVALID_PRODUCER_EPOCH for a fenced producer)
    /// or NOT_ENOUGH_REPLICAS (retriable) when the coordinator cannot answer now.
    pub async fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ErrorCode> {
        match self
            .check_partition(
                transactional_id,
                producer_id,
                producer_epoch,
                topic,
                partition,
            )
            .await
        {
            ErrorCode::None => Ok(()),
            ErrorCode::ProducerFenced => Err(ErrorCode::InvalidProducerEpoch),
            ErrorCode::CoordinatorNotAvailable => Err(ErrorCode::NotEnoughReplicas),
            _ => Err(ErrorCode::InvalidTxnState),
        }
    }

    /// The transaction coordinator's verdict on `topic`-`partition` for this producer (NONE
    /// when it is part of the ongoing transaction), asked locally when this broker is the
    /// coordinator, else over the inter-broker listener. COORDINATOR_NOT_AVAILABLE when the
    /// coordinator cannot answer now (loading, moving, unreachable).
    pub async fn check_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> ErrorCode {
        let local = self
            .read(transactional_id, |c| {
                c.verify_partitions(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    &[(topic.to_string(), partition)],
                )
            })
            .await;
        let code = match local {
            Ok(codes) => codes
                .first()
                .copied()
                .unwrap_or(ErrorCode::UnknownServerError),
            Err(CoordinatorError::NotCoordinator(_)) => self
                .verify_remote(
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    topic,
                    partition,
                )
                .await
                .unwrap_or(ErrorCode::CoordinatorNotAvailable),
            Err(_) => ErrorCode::CoordinatorNotAvailable,
        };
        match code {
            ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::NotEnoughReplicas => ErrorCode::CoordinatorNotAvailable,
            c => c,
        }
    }

    /// Asks the coordinator of `transactional_id` (the leader of its `__transaction_state`
    /// partition) with AddPartitionsToTxn `verify_only`; returns the partition's error code.
    async fn verify_remote(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<ErrorCode, ErrorCode> {
        let txn_partition = self.partition_for(transactional_id);
        let leader = match self.replicas.partition_leader(TXN_TOPIC, txn_partition) {
            Some(l) if l >= 0 && l != self.replicas.node_id() => l,
            _ => return Err(ErrorCode::CoordinatorNotAvailable),
        };
        let Some(addr) = self.replicas.inter_broker_address(leader) else {
            return Err(ErrorCode::CoordinatorNotAvailable);
        };
        let pool = self.verify_pool.get_or_init(|| {
            ChannelPool::new(
                self.replicas
                    .inter_broker_channel(format!("gregor-txn-verify-{}", self.replicas.node_id())),
            )
        });
        let txn = AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_string(),
            )))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(true)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![partition])]);
        let (_, resp) = pool
            .channel(leader, &addr)
            .call_auto((4, 5), VERIFY_TIMEOUT, |_| {
                AddPartitionsToTxnRequest::default().with_transactions(vec![txn.clone()])
            })
            .await
            .map_err(|e| {
                tracing::debug!(leader, error = %e, "transaction verification not answered");
                ErrorCode::CoordinatorNotAvailable
            })?;
        let top = ErrorCode::from_code(resp.error_code).unwrap_or(ErrorCode::UnknownServerError);
        if top != ErrorCode::None {
            return Ok(top);
        }
        Ok(resp
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .filter(|t| t.name.as_str() == topic)
            .flat_map(|t| &t.results_by_partition)
            .find(|p| p.partition_index == partition)
            .and_then(|p| ErrorCode::from_code(p.partition_error_code))
            .unwrap_or(ErrorCode::UnknownServerError))
    }

    /// Runs a read-only operation against the shard of `transactional_id`.
    pub async fn read<T>(
        &self,
        transactional_id: &str,
        op: impl FnOnce(&TxnCoordinator) -> T,
    ) -> Result<T, CoordinatorError> {
        self.runtime
            .read(self.partition_for(transactional_id), |s| op(&s.coordinator))
            .await
    }

    /// Runs a read-only operation against one shard (ListTransactions fans out).
    pub async fn read_shard<T>(
        &self,
        partition: i32,
        op: impl FnOnce(&TxnCoordinator, i64) -> T,
    ) -> Result<T, CoordinatorError> {
        let now = self.runtime.now_ms();
        self.runtime
            .read(partition, |s| op(&s.coordinator, now))
            .await
    }

    /// Writes the markers of ending transactions, then persists their completion.
    async fn complete(
        &self,
        partition: i32,
        markers: Vec<MarkerRequest>,
    ) -> Result<(), CoordinatorError> {
        for m in markers {
            for (topic, p) in &m.partitions {
                if let Err(e) = self
                    .markers
                    .write_marker(
                        topic,
                        *p,
                        Marker {
                            producer_id: m.producer_id,
                            producer_epoch: m.producer_epoch,
                            commit: m.commit,
                            coordinator_epoch: m.coordinator_epoch,
                        },
                    )
                    .await
                {
                    // Retriable failures were retried (MARKER_RETRY_LIMIT); a partition that
                    // refuses a marker (fenced epoch, I/O error) will not accept it later.
                    tracing::error!(
                        transactional_id = %m.transactional_id,
                        %topic,
                        partition = p,
                        error = %e,
                        "cannot write transaction marker"
                    );
                }
            }
            self.runtime
                .write(partition, |s, now| {
                    let records = s.coordinator.markers_written(
                        &m.transactional_id,
                        m.producer_id,
                        m.producer_epoch,
                        now,
                    );
                    (writes(records), ())
                })
                .await?;
        }
        Ok(())
    }

    /// After a load: completes the transactions the previous leader left between Prepare* and
    /// Complete*.
    async fn finish_recovered(&self, partition: i32) {
        let recovered = self
            .runtime
            .write(partition, |s, _| {
                (Writes::none(), std::mem::take(&mut s.recovered))
            })
            .await;
        match recovered {
            Ok(markers) if !markers.is_empty() => {
                tracing::info!(
                    partition,
                    transactions = markers.len(),
                    "completing transactions found in the log"
                );
                if let Err(e) = self.complete(partition, markers).await {
                    tracing::error!(partition, error = %e, "cannot complete recovered transactions");
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(partition, error = %e, "cannot complete recovered transactions")
            }
        }
    }

    /// The timer loop: aborts timed-out transactions and expires transactional ids every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` until shutdown.
    pub async fn run_timers(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cleanup_interval) => {}
                _ = shutdown.changed() => return,
            }
            if self.producer_ids.ensure_available().await.is_err() {
                continue;
            }
            for p in self.runtime.partitions() {
                let ticked = self
                    .runtime
                    .write(p, |s, now| {
                        let out = s.coordinator.tick(now);
                        (writes(out.records), out.markers)
                    })
                    .await;
                match ticked {
                    Ok(markers) => {
                        if let Err(e) = self.complete(p, markers).await {
                            tracing::warn!(partition = p, error = %e, "cannot complete timed-out transactions");
                        }
                    }
                    Err(e) => {
                        tracing::debug!(partition = p, error = %e, "transaction timers skipped")
                    }
                }
            }
        }
    }
}
