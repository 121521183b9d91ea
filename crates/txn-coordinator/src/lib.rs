//! # gregor-txn-coordinator
//!
//! Transactions (KIP-98) as a pure state machine, in the style of Apache Kafka's
//! `TransactionCoordinator`/`TransactionStateManager`/`TransactionMetadata`: every handler
//! takes the request and the current time (`now_ms`, injected by the caller) and returns an
//! [`Output`]:
//! - `records` to persist in `__transaction_state` (Kafka's exact key/value bytes, see
//!   [`records`]) — durable before the response is sent;
//! - `markers` to write: a [`MarkerRequest`] per transaction end, i.e. a COMMIT or ABORT control
//!   batch for every partition of the transaction. The caller writes them (after persisting the
//!   records) and then calls [`TxnCoordinator::markers_written`], which completes the
//!   transaction (PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort) and returns the
//!   record for that;
//! - `response`: the answer (plain values; the broker builds the protocol message). Errors are
//!   [`gregor_protocol::ErrorCode`]s; the broker writes `.code()` into the message.
//!
//! No sockets, no threads, no clock: the broker owns the I/O (`crates/broker/src/txns.rs`).
//! [`TxnCoordinator::replay`] rebuilds the state from `__transaction_state` at start;
//! [`TxnCoordinator::finish_replay`] then re-issues the markers of transactions that were
//! between Prepare* and Complete* when the broker stopped.
//!
//! States and ids are Kafka's (`TransactionState`): Empty 0, Ongoing 1, PrepareCommit 2,
//! PrepareAbort 3, CompleteCommit 4, CompleteAbort 5, Dead 6, PrepareEpochFence 7. Epoch
//! handling follows Kafka 4.x: InitProducerId bumps the epoch (KIP-360 recovery with an
//! expected producer id/epoch; a new producer id once the epoch is exhausted), fences an
//! ongoing transaction by aborting it with a bumped epoch (answering CONCURRENT_TRANSACTIONS so
//! the client retries), and [`TxnCoordinator::tick`] aborts timed-out transactions the same way
//! and expires idle transactional ids (`transactional.id.expiration.ms`). EndTxn v5+
//! (transaction version 2, KIP-890) bumps the epoch on every transaction end.
//!
//! # One instance is one shard
//!
//! A [`TxnCoordinator`] holds the transactional ids of one `__transaction_state` partition
//! (Kafka's hash, `gregor_group_coordinator::partition_for(transactional_id, n)`): the broker
//! makes one per partition it leads, replays that partition into it and calls
//! [`TxnCoordinator::finish_replay`]; on losing the partition it drops the instance (nothing is
//! parked in it: the next leader's `finish_replay` re-issues the markers of transactions left
//! in Prepare*). Nothing is keyed across transactional ids, and producer ids are never made up
//! here: `allocate` hands out ids from the cluster-wide blocks, so shards cannot collide. The
//! caller:
//! - builds each shard's [`TxnConfig`] with that partition's leader epoch as
//!   `coordinator_epoch` (it goes into the shard's markers);
//! - routes per transactional id: InitProducerId, AddPartitionsToTxn (v4+ batches: each
//!   transaction to its shard), AddOffsetsToTxn, EndTxn, the TxnOffsetCommit and Produce
//!   verifications ([`TxnCoordinator::verify_partitions`]), DescribeTransactions (each id to its
//!   shard), and [`TxnCoordinator::markers_written`] to the shard that returned the
//!   [`MarkerRequest`];
//! - fans ListTransactions out to every loaded shard and combines the answers with
//!   [`ListResult::merge`]; with no shard loaded, `TxnCoordinator::default().list(..)` gives
//!   the answer that depends on the filter alone (unknown state filters, a bad regex);
//! - hands each COMMIT/ABORT marker written to a `__consumer_offsets` partition to that
//!   partition's group coordinator shard (`GroupCoordinator::complete_txn`);
//! - fires each shard's [`TxnCoordinator::tick`].

#![warn(missing_docs)]

pub mod records;

use gregor_protocol::ErrorCode;
use records::{TxnLogValue, TxnPartitions};
use std::collections::{BTreeMap, BTreeSet};

/// Producer epoch meaning "none" (`RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Producer id meaning "none".
pub const NO_PRODUCER_ID: i64 = -1;

/// Kafka's `TransactionMetadata.isEpochExhausted`: the last epoch a producer may use.
pub fn is_epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// A record that could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot replay __transaction_state record: {0}")]
pub struct ReplayError(pub String);

/// Kafka's `TransactionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction in progress.
    Empty,
    /// Partitions have been added.
    Ongoing,
    /// EndTxn(commit) accepted; markers being written.
    PrepareCommit,
    /// EndTxn(abort), fencing or timeout; markers being written.
    PrepareAbort,
    /// Committed.
    CompleteCommit,
    /// Aborted.
    CompleteAbort,
    /// Expired.
    Dead,
    /// Transient: fencing an ongoing transaction.
    PrepareEpochFence,
}

impl TxnState {
    /// Kafka's id (the `TransactionStatus` byte).
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// State of an id.
    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.iter().copied().find(|s| s.id() == id)
    }

    /// Every state.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// Kafka's state name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// State of a name.
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// Coordinator settings (Kafka's broker config names in the docs of each field).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000).
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000).
    pub transactional_id_expiration_ms: i64,
    /// Coordinator epoch written into markers (the `__transaction_state` leader epoch).
    pub coordinator_epoch: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 604_800_000,
            coordinator_epoch: 0,
        }
    }
}

/// A `__transaction_state` record with the transactional id that decides its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Transactional id (partition = abs(java hashCode) % partitions).
    pub transactional_id: String,
    /// Serialized key.
    pub key: Vec<u8>,
    /// Serialized value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Transaction markers to write: one control batch per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerRequest {
    /// Transaction.
    pub transactional_id: String,
    /// Producer id of the marker batches.
    pub producer_id: i64,
    /// Producer epoch of the marker batches.
    pub producer_epoch: i16,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
    /// Coordinator epoch.
    pub coordinator_epoch: i32,
    /// Partitions, sorted.
    pub partitions: Vec<(String, i32)>,
}

/// What a call produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Output<T> {
    /// Records to persist (in order) before answering.
    pub records: Vec<Record>,
    /// Markers to write after persisting; report with [`TxnCoordinator::markers_written`].
    pub markers: Vec<MarkerRequest>,
    /// The answer.
    pub response: T,
}

impl<T> Output<T> {
    fn just(response: T) -> Self {
        Output {
            records: Vec::new(),
            markers: Vec::new(),
            response,
        }
    }
}

/// InitProducerId / EndTxn v5 answer: error and the producer id/epoch to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    /// Error ([`ErrorCode::None`] on success).
    pub error: ErrorCode,
    /// Producer id (-1 on error).
    pub producer_id: i64,
    /// Producer epoch (-1 on error).
    pub producer_epoch: i16,
}

impl ProducerIdAndEpoch {
    fn error(error: ErrorCode) -> Self {
        ProducerIdAndEpoch {
            error,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
        }
    }
}

/// DescribeTransactions answer for one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnDescription {
    /// State name.
    pub state: &'static str,
    /// Timeout.
    pub timeout_ms: i32,
    /// Start of the current transaction (-1 if none).
    pub start_time_ms: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Partitions by topic.
    pub topics: BTreeMap<String, Vec<i32>>,
}

/// ListTransactions filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// State names (empty = all).
    pub states: Vec<String>,
    /// Producer ids (empty = all).
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this (-1 = no filter; v1+).
    pub duration_ms: i64,
    /// Transactional id regular expression (v2+).
    pub pattern: Option<String>,
}

/// ListTransactions answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListResult {
    /// Error ([`ErrorCode::None`] or INVALID_REGULAR_EXPRESSION).
    pub error: ErrorCode,
    /// State filters that name no state.
    pub unknown_state_filters: Vec<String>,
    /// (transactional id, producer id, state name), sorted by id.
    pub transactions: Vec<(String, i64, &'static str)>,
}

impl ListResult {
    /// Combines the answers of several shards to one ListTransactions (the caller asks every
    /// `__transaction_state` partition it leads): the transactions of all, sorted by id (an id
    /// lives in one shard only). The error and the unknown state filters depend on the filter
    /// alone, so every shard answers them alike and they are kept once.
    pub fn merge(mut self, other: ListResult) -> ListResult {
        if self.error == ErrorCode::None {
            self.error = other.error;
        }
        if self.unknown_state_filters.is_empty() {
            self.unknown_state_filters = other.unknown_state_filters;
        }
        self.transactions.extend(other.transactions);
        self.transactions.sort();
        self
    }
}

/// One transactional id's metadata (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// Producer id.
    pub producer_id: i64,
    /// Producer id before the last rotation (-1 if none).
    pub prev_producer_id: i64,
    /// Producer id to switch to when the current transaction completes (TV2 epoch overflow).
    pub next_producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// Epoch before the last bump (-1 if none; not persisted).
    pub last_producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions of the current transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// Start time of the current transaction (-1 if none).
    pub start_ms: i64,
    /// Last change.
    pub last_update_ms: i64,
    /// Client transaction version (0 or 2).
    pub client_txn_version: i16,
}

impl TxnMetadata {
    fn to_value(&self) -> TxnLogValue {
        let partitions = if self.state == TxnState::Empty {
            None
        } else {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in &self.partitions {
                by_topic.entry(t).or_default().push(*p);
            }
            Some(
                by_topic
                    .into_iter()
                    .map(|(t, ids)| TxnPartitions {
                        topic: t.to_string(),
                        partition_ids: ids,
                    })
                    .collect(),
            )
        };
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.prev_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_timestamp_ms: self.last_update_ms,
            start_timestamp_ms: self.start_ms,
            client_transaction_version: self.client_txn_version,
        }
    }

    fn from_value(v: TxnLogValue) -> TxnMetadata {
        let mut partitions = BTreeSet::new();
        if v.state != TxnState::Empty {
            for p in v.partitions.unwrap_or_default() {
                for id in p.partition_ids {
                    partitions.insert((p.topic.clone(), id));
                }
            }
        }
        TxnMetadata {
            producer_id: v.producer_id,
            prev_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            producer_epoch: v.producer_epoch,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions,
            start_ms: v.start_timestamp_ms,
            last_update_ms: v.last_update_timestamp_ms,
            client_txn_version: v.client_transaction_version,
        }
    }
}

/// The transaction coordinator.
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    config: TxnConfig,
    txns: BTreeMap<String, TxnMetadata>,
}

impl TxnCoordinator {
    /// An empty coordinator.
    pub fn new(config: TxnConfig) -> Self {
        TxnCoordinator {
            config,
            txns: BTreeMap::new(),
        }
    }

    /// The metadata of a transactional id.
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// Number of transactional ids.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// True if no transactional id is known.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    fn record(&self, id: &str) -> Record {
        let value = self
            .txns
            .get(id)
            .map(|m| records::encode_value(&m.to_value(), records::TRANSACTION_LOG_VALUE_VERSION));
        Record {
            transactional_id: id.to_string(),
            key: records::encode_key(id),
            value,
        }
    }

    fn markers_for(&self, id: &str) -> Option<MarkerRequest> {
        let m = self.txns.get(id)?;
        let commit = match m.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return None,
        };
        Some(MarkerRequest {
            transactional_id: id.to_string(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit,
            coordinator_epoch: self.config.coordinator_epoch,
            partitions: m.partitions.iter().cloned().collect(),
        })
    }

    /// InitProducerId with a transactional id. `expected` is the (producer id, epoch) of a
    /// KIP-360 recovering producer (v3+); `allocate` hands out a new producer id (or an error
    /// code).
    pub fn init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        allocate: &mut dyn FnMut() -> Result<i64, ErrorCode>,
        now_ms: i64,
    ) -> Output<ProducerIdAndEpoch> {
        if transactional_id.is_empty() {
            return Output::just(ProducerIdAndEpoch::error(ErrorCode::InvalidRequest));
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Output::just(ProducerIdAndEpoch::error(
                ErrorCode::InvalidTransactionTimeout,
            ));
        }
        if !self.txns.contains_key(transactional_id) {
            let pid = match allocate() {
                Ok(p) => p,
                Err(code) => return Output::just(ProducerIdAndEpoch::error(code)),
            };
            self.txns.insert(
                transactional_id.to_string(),
                TxnMetadata {
                    producer_id: pid,
                    prev_producer_id: NO_PRODUCER_ID,
                    next_producer_id: NO_PRODUCER_ID,
                    producer_epoch: NO_PRODUCER_EPOCH,
                    last_producer_epoch: NO_PRODUCER_EPOCH,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now_ms,
                    client_txn_version: 0,
                },
            );
        }
        let Some(m) = self.txns.get_mut(transactional_id) else {
            return Output::just(ProducerIdAndEpoch::error(ErrorCode::UnknownServerError));
        };
        if let Some((pid, epoch)) = expected {
            // Kafka's isValidProducerId.
            let valid = m.producer_epoch == NO_PRODUCER_EPOCH
                || pid == m.producer_id
                || (pid == m.prev_producer_id && is_epoch_exhausted(epoch));
            if !valid {
                return Output::just(ProducerIdAndEpoch::error(ErrorCode::ProducerFenced));
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Output::just(ProducerIdAndEpoch::error(ErrorCode::ConcurrentTransactions))
            }
            TxnState::Dead => {
                Output::just(ProducerIdAndEpoch::error(ErrorCode::ConcurrentTransactions))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let exhausted = is_epoch_exhausted(m.producer_epoch)
                    && expected.is_none_or(|(_, e)| e == m.producer_epoch);
                if exhausted {
                    let pid = match allocate() {
                        Ok(p) => p,
                        Err(code) => return Output::just(ProducerIdAndEpoch::error(code)),
                    };
                    m.last_producer_epoch = if expected.is_some() {
                        m.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    m.prev_producer_id = m.producer_id;
                    m.producer_id = pid;
                    m.producer_epoch = 0;
                } else {
                    let bumped = m.producer_epoch.wrapping_add(1);
                    let (epoch, last) = match expected {
                        None => (bumped, NO_PRODUCER_EPOCH),
                        Some((_, e))
                            if m.producer_epoch == NO_PRODUCER_EPOCH || e == m.producer_epoch =>
                        {
                            (bumped, m.producer_epoch)
                        }
                        Some((_, e)) if e == m.last_producer_epoch => {
                            (m.producer_epoch, m.last_producer_epoch)
                        }
                        Some(_) => {
                            return Output::just(ProducerIdAndEpoch::error(
                                ErrorCode::ProducerFenced,
                            ))
                        }
                    };
                    m.producer_epoch = epoch;
                    m.last_producer_epoch = last;
                }
                m.next_producer_id = NO_PRODUCER_ID;
                m.timeout_ms = timeout_ms;
                m.state = TxnState::Empty;
                m.partitions.clear();
                m.start_ms = -1;
                m.last_update_ms = now_ms;
                m.client_txn_version = 0;
                let resp = ProducerIdAndEpoch {
                    error: ErrorCode::None,
                    producer_id: m.producer_id,
                    producer_epoch: m.producer_epoch,
                };
                Output {
                    records: vec![self.record(transactional_id)],
                    markers: Vec::new(),
                    response: resp,
                }
            }
            TxnState::Ongoing => {
                // Fence the current producer: abort its transaction with a bumped epoch; the
                // client retries (CONCURRENT_TRANSACTIONS) and gets a new epoch once complete.
                self.fence_and_abort(transactional_id, now_ms);
                Output {
                    records: vec![self.record(transactional_id)],
                    markers: self.markers_for(transactional_id).into_iter().collect(),
                    response: ProducerIdAndEpoch::error(ErrorCode::ConcurrentTransactions),
                }
            }
        }
    }

    /// Kafka's prepareFenceProducerEpoch + endTransaction(ABORT, isFromClient = false).
    fn fence_and_abort(&mut self, id: &str, now_ms: i64) {
        if let Some(m) = self.txns.get_mut(id) {
            if !is_epoch_exhausted(m.producer_epoch) {
                m.producer_epoch += 1;
            }
            m.last_producer_epoch = NO_PRODUCER_EPOCH;
            m.state = TxnState::PrepareAbort;
            m.last_update_ms = now_ms;
        }
    }

    fn check_producer(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&TxnMetadata, ErrorCode> {
        if id.is_empty() {
            return Err(ErrorCode::InvalidRequest);
        }
        let m = self
            .txns
            .get(id)
            .ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if m.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if m.producer_epoch != epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds partitions to the transaction (starting it).
    /// Returns one error code for all the partitions.
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Output<ErrorCode> {
        let m = match self.check_producer(transactional_id, producer_id, producer_epoch) {
            Ok(m) => m,
            Err(code) => return Output::just(code),
        };
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Output::just(ErrorCode::ConcurrentTransactions)
            }
            TxnState::Dead => return Output::just(ErrorCode::InvalidTxnState),
            TxnState::Ongoing if partitions.iter().all(|p| m.partitions.contains(p)) => {
                return Output::just(ErrorCode::None)
            }
            _ => {}
        }
        let Some(m) = self.txns.get_mut(transactional_id) else {
            return Output::just(ErrorCode::UnknownServerError);
        };
        if m.state != TxnState::Ongoing {
            m.start_ms = now_ms;
            m.partitions.clear();
        }
        m.partitions.extend(partitions.iter().cloned());
        m.state = TxnState::Ongoing;
        m.last_update_ms = now_ms;
        Output {
            records: vec![self.record(transactional_id)],
            markers: Vec::new(),
            response: ErrorCode::None,
        }
    }

    /// AddPartitionsToTxn v4+ `verify_only`: an error per partition (NONE if it is part of the
    /// ongoing transaction).
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<ErrorCode> {
        match self.check_producer(transactional_id, producer_id, producer_epoch) {
            Err(code) => vec![code; partitions.len()],
            Ok(m) => partitions
                .iter()
                .map(|p| {
                    if m.state == TxnState::Ongoing && m.partitions.contains(p) {
                        ErrorCode::None
                    } else {
                        ErrorCode::InvalidTxnState
                    }
                })
                .collect(),
        }
    }

    /// EndTxn. `bump_epoch` is transaction version 2 (EndTxn v5+): the epoch is bumped at
    /// every transaction end and returned. `allocate` is used when that bump exhausts the
    /// epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        bump_epoch: bool,
        allocate: &mut dyn FnMut() -> Result<i64, ErrorCode>,
        now_ms: i64,
    ) -> Output<ProducerIdAndEpoch> {
        if transactional_id.is_empty() {
            return Output::just(ProducerIdAndEpoch::error(ErrorCode::InvalidRequest));
        }
        let Some(m) = self.txns.get(transactional_id) else {
            return Output::just(ProducerIdAndEpoch::error(
                ErrorCode::InvalidProducerIdMapping,
            ));
        };
        let ok = |m: &TxnMetadata| ProducerIdAndEpoch {
            error: ErrorCode::None,
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
        };
        // TV2: a retry of an end that already bumped the epoch.
        let is_retry = bump_epoch
            && m.last_producer_epoch != NO_PRODUCER_EPOCH
            && producer_epoch == m.last_producer_epoch
            && (producer_id == m.producer_id || producer_id == m.prev_producer_id);
        if producer_id != m.producer_id && !is_retry {
            return Output::just(ProducerIdAndEpoch::error(
                ErrorCode::InvalidProducerIdMapping,
            ));
        }
        if !is_retry && producer_epoch != m.producer_epoch {
            return Output::just(ProducerIdAndEpoch::error(ErrorCode::ProducerFenced));
        }
        let code = match (m.state, commit) {
            (TxnState::Ongoing, _) if !is_retry => None,
            // TV2: aborting with nothing ongoing is allowed (and bumps the epoch).
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
                if bump_epoch && !is_retry =>
            {
                None
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false)
                if is_retry || !bump_epoch =>
            {
                return Output::just(ok(m));
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Some(ErrorCode::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => Some(ErrorCode::ConcurrentTransactions),
            _ => Some(ErrorCode::InvalidTxnState),
        };
        if let Some(code) = code {
            return Output::just(ProducerIdAndEpoch::error(code));
        }
        let mut next_pid = NO_PRODUCER_ID;
        if bump_epoch && is_epoch_exhausted(m.producer_epoch.saturating_add(1)) {
            next_pid = match allocate() {
                Ok(p) => p,
                Err(code) => return Output::just(ProducerIdAndEpoch::error(code)),
            };
        }
        let Some(m) = self.txns.get_mut(transactional_id) else {
            return Output::just(ProducerIdAndEpoch::error(ErrorCode::UnknownServerError));
        };
        if bump_epoch {
            m.last_producer_epoch = m.producer_epoch;
            m.producer_epoch = m.producer_epoch.saturating_add(1);
            m.next_producer_id = next_pid;
            m.client_txn_version = 2;
            if m.state != TxnState::Ongoing {
                m.start_ms = now_ms;
                m.partitions.clear();
            }
        }
        m.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        m.last_update_ms = now_ms;
        let mut records = vec![self.record(transactional_id)];
        let markers: Vec<MarkerRequest> = self.markers_for(transactional_id).into_iter().collect();
        let Some(m) = self.txns.get(transactional_id) else {
            return Output::just(ProducerIdAndEpoch::error(ErrorCode::UnknownServerError));
        };
        let mut response = ok(m);
        if m.partitions.is_empty() {
            // Nothing to mark: complete at once.
            let (pid, epoch) = (m.producer_id, m.producer_epoch);
            records.extend(self.markers_written(transactional_id, pid, epoch, now_ms));
            if let Some(m) = self.txns.get(transactional_id) {
                response = ok(m);
            }
            return Output {
                records,
                markers: Vec::new(),
                response,
            };
        }
        if next_pid != NO_PRODUCER_ID {
            response.producer_id = next_pid;
            response.producer_epoch = 0;
        }
        Output {
            records,
            markers,
            response,
        }
    }

    /// The markers of a transaction end have been written: completes the transaction.
    pub fn markers_written(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        now_ms: i64,
    ) -> Vec<Record> {
        let Some(m) = self.txns.get_mut(transactional_id) else {
            return Vec::new();
        };
        if m.producer_id != producer_id || m.producer_epoch != producer_epoch {
            return Vec::new();
        }
        m.state = match m.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return Vec::new(),
        };
        if m.next_producer_id != NO_PRODUCER_ID {
            m.prev_producer_id = m.producer_id;
            m.producer_id = m.next_producer_id;
            m.next_producer_id = NO_PRODUCER_ID;
            m.producer_epoch = 0;
            m.last_producer_epoch = NO_PRODUCER_EPOCH;
        }
        m.partitions.clear();
        m.last_update_ms = now_ms;
        vec![self.record(transactional_id)]
    }

    /// Timers: aborts transactions that ran longer than their timeout (fencing the producer
    /// with a bumped epoch, as Kafka) and expires transactional ids idle for
    /// `transactional.id.expiration.ms` (tombstones).
    pub fn tick(&mut self, now_ms: i64) -> Output<()> {
        let mut out = Output::just(());
        let timed_out: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, m)| {
                m.state == TxnState::Ongoing
                    && m.start_ms.saturating_add(i64::from(m.timeout_ms)) < now_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in timed_out {
            self.fence_and_abort(&id, now_ms);
            out.records.push(self.record(&id));
            out.markers.extend(self.markers_for(&id));
        }
        let expired: Vec<String> = self
            .txns
            .iter()
            .filter(|(_, m)| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && m
                    .last_update_ms
                    .saturating_add(self.config.transactional_id_expiration_ms)
                    <= now_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.txns.remove(&id);
            out.records.push(self.record(&id));
        }
        out
    }

    /// DescribeTransactions for one id (TRANSACTIONAL_ID_NOT_FOUND if unknown).
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, ErrorCode> {
        let m = self
            .txns
            .get(transactional_id)
            .filter(|m| m.state != TxnState::Dead)
            .ok_or(ErrorCode::TransactionalIdNotFound)?;
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &m.partitions {
            topics.entry(t.clone()).or_default().push(*p);
        }
        Ok(TxnDescription {
            state: m.state.name(),
            timeout_ms: m.timeout_ms,
            start_time_ms: m.start_ms,
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            topics,
        })
    }

    /// ListTransactions.
    pub fn list(&self, filter: &ListFilter, now_ms: i64) -> ListResult {
        let mut result = ListResult::default();
        let mut states = BTreeSet::new();
        for s in &filter.states {
            match TxnState::from_name(s) {
                Some(st) => {
                    states.insert(st);
                }
                None => result.unknown_state_filters.push(s.clone()),
            }
        }
        if !filter.states.is_empty() && states.is_empty() {
            return result;
        }
        let pattern = match filter.pattern.as_deref().filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
                Ok(r) => Some(r),
                Err(_) => {
                    result.error = ErrorCode::InvalidRegularExpression;
                    return result;
                }
            },
        };
        for (id, m) in &self.txns {
            if m.state == TxnState::Dead {
                continue;
            }
            if !states.is_empty() && !states.contains(&m.state) {
                continue;
            }
            if !filter.producer_ids.is_empty() && !filter.producer_ids.contains(&m.producer_id) {
                continue;
            }
            if filter.duration_ms >= 0
                && (m.state != TxnState::Ongoing
                    || now_ms.saturating_sub(m.start_ms) <= filter.duration_ms)
            {
                continue;
            }
            if let Some(r) = &pattern {
                if !r.is_match(id) {
                    continue;
                }
            }
            result
                .transactions
                .push((id.clone(), m.producer_id, m.state.name()));
        }
        result
    }

    /// Applies one `__transaction_state` record (key, value; `None` = tombstone).
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), ReplayError> {
        let Some(id) = records::decode_key(key)? else {
            return Ok(());
        };
        match value {
            None => {
                self.txns.remove(&id);
            }
            Some(v) => {
                let v = records::decode_value(v)?;
                if v.state == TxnState::Dead {
                    self.txns.remove(&id);
                } else {
                    self.txns.insert(id, TxnMetadata::from_value(v));
                }
            }
        }
        Ok(())
    }

    /// After replay: the markers of transactions caught between Prepare* and Complete*, to
    /// write again (as Kafka's coordinator does when it loads a partition).
    pub fn finish_replay(&mut self) -> Vec<MarkerRequest> {
        let ids: Vec<String> = self.txns.keys().cloned().collect();
        ids.iter().filter_map(|id| self.markers_for(id)).collect()
    }
}

#[cfg(test)]
mod tests;
