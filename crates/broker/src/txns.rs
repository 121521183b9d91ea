//! The I/O side of the transaction coordinator. `gregor-txn-coordinator` is a pure state
//! machine; this module owns it behind one mutex and:
//! - creates the internal `__transaction_state` topic on the first transactional request
//!   (`transaction.state.log.num.partitions`, `cleanup.policy=compact`) and replays it at
//!   start-up (re-writing the markers of transactions caught between Prepare* and Complete*);
//! - persists the records every call returns into the transactional id's partition
//!   (`abs(javaHashCode(id)) % partitions`, as Kafka) while still holding the lock;
//! - writes the transaction markers (COMMIT/ABORT control batches, `Log::append_control`) into
//!   every partition of an ending transaction, then reports them written so the transaction
//!   completes — Kafka's `TransactionMarkerChannelManager` for a single node;
//! - runs the timer that aborts timed-out transactions and expires idle transactional ids
//!   (every `transaction.abort.timed.out.transaction.cleanup.interval.ms`).

use crate::broker::{Broker, LEADER_EPOCH};
use crate::groups::now_ms;
use gregor_controller::state::CreateTopic;
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use gregor_txn_coordinator::{MarkerRequest, Output, Record, TxnConfig, TxnCoordinator};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Name of the internal transaction log topic.
pub const TXN_TOPIC: &str = "__transaction_state";

/// Why a transactional request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum TxnsError {
    /// `__transaction_state` could not be created or loaded (COORDINATOR_NOT_AVAILABLE).
    #[error("transaction coordinator not available: {0}")]
    NotAvailable(String),
}

/// Where transaction markers go (the broker's partition logs).
pub trait MarkerWriter {
    /// Appends one COMMIT/ABORT control batch to `topic`-`partition`. A missing partition
    /// (deleted topic) is not an error: there is nothing left to mark.
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<(), String>;
}

impl MarkerWriter for Broker {
    fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<(), String> {
        let Some(part) = self.partition(topic, partition) else {
            return Ok(());
        };
        let mut guard = part.log.lock();
        let Some(log) = guard.as_mut() else {
            return Ok(());
        };
        let result = log
            .append_control(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                LEADER_EPOCH,
                now_ms(),
            )
            .map(|_| ())
            .map_err(|e| e.to_string());
        drop(guard);
        part.appended.notify_waiters();
        if result.is_ok() && topic == crate::groups::OFFSETS_TOPIC {
            // Settle the transaction's offset commits (TxnOffsetCommit).
            self.groups.complete_txn(producer_id, commit);
        }
        result
    }
}

/// The coordinator and its persistence.
pub struct Txns {
    coordinator: Mutex<Option<TxnCoordinator>>,
    config: TxnConfig,
    partitions: i32,
    cleanup_interval: Duration,
    loading: tokio::sync::Mutex<()>,
    loaded: AtomicBool,
}

impl std::fmt::Debug for Txns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txns")
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl Txns {
    /// A coordinator that loads `__transaction_state` on first use.
    pub fn new(config: TxnConfig, partitions: i32, cleanup_interval_ms: u64) -> Txns {
        Txns {
            coordinator: Mutex::new(None),
            config,
            partitions: partitions.max(1),
            cleanup_interval: Duration::from_millis(cleanup_interval_ms.max(1)),
            loading: tokio::sync::Mutex::new(()),
            loaded: AtomicBool::new(false),
        }
    }

    /// Partition of `__transaction_state` that holds a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        gregor_group_coordinator::partition_for(transactional_id, self.partitions)
    }

    /// Makes sure `__transaction_state` exists and has been replayed.
    pub async fn ensure_loaded(&self, broker: &Arc<Broker>) -> Result<(), TxnsError> {
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
        let mut coordinator = tokio::task::spawn_blocking(move || load(&b, config, partitions))
            .await
            .map_err(|e| TxnsError::NotAvailable(e.to_string()))??;
        // Transactions that were completing when the broker stopped: write their markers.
        let markers = coordinator.finish_replay();
        let mut guard = self.coordinator.lock();
        let c = guard.insert(coordinator);
        let records = self.write_markers(broker.as_ref(), c, &markers);
        self.persist(broker, &records);
        drop(guard);
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Loads at start-up if the transaction log already exists (so timeouts resume).
    pub async fn load_if_present(&self, broker: &Arc<Broker>) -> Result<(), TxnsError> {
        if broker.topic_meta(TXN_TOPIC).is_some() {
            self.ensure_loaded(broker).await
        } else {
            Ok(())
        }
    }

    /// Runs `f` against the loaded coordinator; persists its records, writes its markers and
    /// persists the completions, all before releasing the lock.
    pub fn with<T>(
        &self,
        broker: &Broker,
        f: impl FnOnce(&mut TxnCoordinator) -> Output<T>,
    ) -> Result<T, TxnsError> {
        let mut guard = self.coordinator.lock();
        let c = guard
            .as_mut()
            .ok_or_else(|| TxnsError::NotAvailable("not loaded".into()))?;
        let out = f(c);
        self.persist(broker, &out.records);
        let completions = self.write_markers(broker, c, &out.markers);
        self.persist(broker, &completions);
        Ok(out.response)
    }

    /// Read-only access to the loaded coordinator.
    pub fn read<T>(&self, f: impl FnOnce(&TxnCoordinator) -> T) -> Result<T, TxnsError> {
        let guard = self.coordinator.lock();
        let c = guard
            .as_ref()
            .ok_or_else(|| TxnsError::NotAvailable("not loaded".into()))?;
        Ok(f(c))
    }

    /// Writes the markers and returns the records that complete their transactions.
    fn write_markers(
        &self,
        writer: &dyn MarkerWriter,
        c: &mut TxnCoordinator,
        markers: &[MarkerRequest],
    ) -> Vec<Record> {
        let mut records = Vec::new();
        for m in markers {
            for (topic, partition) in &m.partitions {
                if let Err(e) = writer.write_marker(
                    topic,
                    *partition,
                    m.producer_id,
                    m.producer_epoch,
                    m.commit,
                    m.coordinator_epoch,
                ) {
                    // Kafka retries until the partition accepts; a local log that refuses a
                    // marker (fenced epoch, I/O error) will not accept it later either.
                    tracing::error!(
                        transactional_id = %m.transactional_id,
                        %topic,
                        partition,
                        error = %e,
                        "cannot write transaction marker"
                    );
                }
            }
            records.extend(c.markers_written(
                &m.transactional_id,
                m.producer_id,
                m.producer_epoch,
                now_ms(),
            ));
        }
        records
    }

    /// Appends records to their `__transaction_state` partitions (one batch per partition).
    fn persist(&self, broker: &Broker, records: &[Record]) {
        if records.is_empty() {
            return;
        }
        let now = now_ms();
        let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
        for r in records {
            by_partition
                .entry(self.partition_for(&r.transactional_id))
                .or_default()
                .push(r);
        }
        for (p, recs) in by_partition {
            let Some(part) = broker.partition(TXN_TOPIC, p) else {
                tracing::error!(
                    partition = p,
                    "__transaction_state partition missing; transaction records lost"
                );
                continue;
            };
            let mut builder = RecordBatchBuilder::new(Compression::None, now);
            for r in &recs {
                builder.push(now, Some(&r.key), r.value.as_deref(), &[]);
            }
            let batch = match builder.build() {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot build __transaction_state batch");
                    continue;
                }
            };
            let mut bytes = batch.to_vec();
            let mut guard = part.log.lock();
            if let Some(log) = guard.as_mut() {
                if let Err(e) = log.append(&mut bytes, LEADER_EPOCH) {
                    tracing::error!(partition = p, error = %e, "cannot append to __transaction_state");
                }
            }
            drop(guard);
            part.appended.notify_waiters();
        }
    }

    /// The timer loop: aborts timed-out transactions and expires transactional ids every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` until shutdown.
    pub async fn run_timers(
        self: Arc<Self>,
        broker: Arc<Broker>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.cleanup_interval) => {}
                _ = shutdown.changed() => return,
            }
            if !self.loaded.load(Ordering::Acquire) {
                continue;
            }
            let now = now_ms();
            let _ = self.with(&broker, |c| c.tick(now));
        }
    }
}

/// Creates `__transaction_state` if needed and replays every partition into a coordinator.
fn load(broker: &Broker, config: TxnConfig, partitions: i32) -> Result<TxnCoordinator, TxnsError> {
    if broker.topic_meta(TXN_TOPIC).is_none() {
        let req = CreateTopic {
            name: TXN_TOPIC.to_string(),
            partitions,
            replication_factor: 1,
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("compression.type".to_string(), "uncompressed".to_string()),
                ("min.insync.replicas".to_string(), "1".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
                (
                    "unclean.leader.election.enable".to_string(),
                    "false".to_string(),
                ),
            ]),
        };
        match broker.create_topic(&req) {
            Ok(_) | Err(gregor_controller::ControllerError::TopicAlreadyExists(_)) => {}
            Err(e) => return Err(TxnsError::NotAvailable(e.to_string())),
        }
    }
    let started = std::time::Instant::now();
    let mut coordinator = TxnCoordinator::new(config);
    let meta = broker
        .topic_meta(TXN_TOPIC)
        .ok_or_else(|| TxnsError::NotAvailable("__transaction_state vanished".into()))?;
    let mut replayed = 0u64;
    for p in 0..meta.partitions {
        let Some(part) = broker.partition(TXN_TOPIC, p) else {
            continue;
        };
        let guard = part.log.lock();
        let Some(log) = guard.as_ref() else { continue };
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            let read = log
                .read(offset, 4 * 1024 * 1024, true)
                .map_err(|e| TxnsError::NotAvailable(e.to_string()))?;
            let Some(region) = read.region else { break };
            let bytes = region
                .read_to_vec()
                .map_err(|e| TxnsError::NotAvailable(e.to_string()))?;
            let batches = RecordBatch::split(bytes::Bytes::from(bytes))
                .map_err(|e| TxnsError::NotAvailable(format!("{TXN_TOPIC}-{p}: {e}")))?;
            let mut next = offset;
            for batch in batches {
                next = batch.last_offset() + 1;
                if batch.is_control() {
                    continue;
                }
                let records = batch
                    .records(crate::handlers::produce::MAX_DECOMPRESSED_BATCH)
                    .map_err(|e| TxnsError::NotAvailable(format!("{TXN_TOPIC}-{p}: {e}")))?;
                for r in records {
                    let Some(key) = r.key else { continue };
                    if let Err(e) = coordinator.replay(&key, r.value.as_deref()) {
                        tracing::warn!(partition = p, error = %e, "skipping unreadable __transaction_state record");
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
    tracing::info!(
        records = replayed,
        transactional_ids = coordinator.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "transaction coordinator loaded __transaction_state"
    );
    Ok(coordinator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// (topic, partition, producer id, epoch, commit, coordinator epoch).
    type Marker = (String, i32, i64, i16, bool, i32);

    #[derive(Default)]
    struct Recorded(RefCell<Vec<Marker>>);

    impl MarkerWriter for Recorded {
        fn write_marker(
            &self,
            topic: &str,
            partition: i32,
            producer_id: i64,
            producer_epoch: i16,
            commit: bool,
            coordinator_epoch: i32,
        ) -> Result<(), String> {
            self.0.borrow_mut().push((
                topic.to_string(),
                partition,
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
            ));
            if topic == "broken" {
                return Err("refused".into());
            }
            Ok(())
        }
    }

    #[test]
    fn markers_are_written_to_every_partition_then_completed() {
        let txns = Txns::new(TxnConfig::default(), 50, 10_000);
        let mut c = TxnCoordinator::new(TxnConfig::default());
        let mut next = 40;
        let mut alloc = || {
            next += 1;
            Ok(next)
        };
        c.init_producer_id("t", 1000, None, &mut alloc, 0);
        let parts = [("a".to_string(), 0), ("broken".to_string(), 2)];
        c.add_partitions("t", 41, 0, &parts, 1);
        let out = c.end_txn("t", 41, 0, true, false, &mut alloc, 2);
        let writer = Recorded::default();
        let records = txns.write_markers(&writer, &mut c, &out.markers);
        assert_eq!(
            *writer.0.borrow(),
            vec![
                ("a".to_string(), 0, 41, 0, true, 0),
                ("broken".to_string(), 2, 41, 0, true, 0)
            ]
        );
        // A refused marker is logged; the transaction completes all the same.
        assert_eq!(records.len(), 1);
        assert_eq!(
            c.get("t").unwrap().state,
            gregor_txn_coordinator::TxnState::CompleteCommit
        );
        assert_eq!(
            txns.partition_for("t"),
            gregor_group_coordinator::partition_for("t", 50)
        );
    }
}
