//! Gregor's partition log, modelled on Apache Kafka's `UnifiedLog`/`LogSegment`/
//! `OffsetIndex`/`TimeIndex`/`ProducerStateManager`.
//!
//! # Tour
//!
//! * [`log`] — [`Log`], one per topic-partition directory (`topic-partition`): an ordered
//!   list of segments, the last one active. It assigns offsets (leader) or takes them from
//!   the leader (follower, see *Replication*), rolls segments, keeps the high watermark,
//!   serves reads as [`FileRegion`]s (for `sendfile`), looks batches up by timestamp,
//!   enforces idempotent-producer sequencing, truncates and recovers after an unclean
//!   shutdown. `Log` is not internally synchronised: the broker wraps it in a mutex.
//! * `segment` (internal) — one segment: the `.log` file of raw RecordBatch v2 bytes
//!   (`00000000000000000000.log`, named by base offset), plus its indexes. Appends are a
//!   single positional write; reads locate a batch through the sparse offset index and
//!   then scan batch headers in 64 KiB chunks.
//! * `index` (internal) — the sparse offset index (`.index`, 8-byte entries: relative
//!   offset + file position) and time index (`.timeindex`, 12-byte entries: timestamp +
//!   relative offset), one entry about every `index_interval_bytes` of log data.
//! * `txn_index` (internal) — the aborted-transaction index (`.txnindex`, Kafka's
//!   `TransactionIndex`, see *Transactions* below).
//! * [`producer`] — idempotent and transactional producer state (epoch + last 5 batches,
//!   coordinator epoch, ongoing transaction per producer id), persisted as `.snapshot`
//!   files at every segment roll and at close.
//! * [`batch`] — RecordBatch v2 header parsing, CRC-32C verification and patching of the
//!   base offset / leader epoch (storage cannot depend on the protocol crate).
//! * [`epoch`] — the leader-epoch cache and its `leader-epoch-checkpoint` file (Kafka's
//!   format), answering OffsetForLeaderEpoch through [`Log::end_offset_for_epoch`].
//! * [`cleaner`] — compaction (`cleanup.policy=compact`) in three phases so the broker holds
//!   the partition lock only for the cheap ones: [`Log::prepare_clean`] (locked),
//!   [`CleanPlan::execute`] (unlocked; reads records through a [`RecordCodec`] the broker
//!   supplies), [`Log::commit_clean`] (locked, atomic swap of `.cleaned` segments).
//! * `checkpoint` (internal) — the small durable files of a partition directory:
//!   `log-start-offset-checkpoint` (DeleteRecords) and `cleaner-offset-checkpoint` (first
//!   dirty offset), written atomically (temp file, fsync, rename, fsync of the directory).
//! * [`offset_checkpoint`] — Kafka's `OffsetCheckpointFile` (`topic partition offset` lines),
//!   e.g. the log directory's `replication-offset-checkpoint` of high watermarks.
//! * [`clean_shutdown`] — the `.kafka_cleanshutdown` marker in the log directory.
//! * [`clock`] — [`Clock`], the injected wall clock ([`SystemClock`], [`ManualClock`] for
//!   tests): segment creation times and `segment.ms` rolls. Nothing else in the crate reads
//!   the system time.
//! * [`error`] — [`StorageError`].
//!
//! # Durability
//!
//! Like Kafka, appends rely on the page cache: no fsync per append, except when
//! [`LogConfig::flush_interval_messages`] records have accumulated. Rolled segments are
//! fsynced when they are sealed and everything is fsynced on [`Log::flush`] and
//! [`Log::close`]. After an unclean shutdown [`Log::open`] scans the active segment,
//! verifies every batch (length, magic, CRC-32C, monotonic offsets), truncates the torn
//! tail and rebuilds its indexes; indexes of the other segments are sanity-checked and
//! rebuilt when missing or inconsistent. The leader-epoch checkpoint is written before the
//! batch that starts a new epoch (an entry past the log end is dropped at open).
//!
//! Truncations ([`Log::truncate_to`], [`Log::truncate_fully_and_start_at`]) remove data
//! first, newest segment first (its `.log` before its index files), each step fsynced, and
//! then fix the derived state (index entries, `.txnindex`, epochs, producer snapshots and
//! state, checkpoints). A crash at any point leaves a log that [`Log::open`] turns into a
//! consistent one: index entries, epochs and snapshots past the log end are dropped, a
//! `.txnindex` with entries past its segment is rebuilt by the producer-state replay, and a
//! directory left without segments starts at its recorded log start offset.
//!
//! # Transactions
//!
//! The storage half of Kafka's transactions (`UnifiedLog`, `ProducerStateManager`,
//! `TransactionIndex`); the coordinator and the Produce/Fetch handlers build on it:
//!
//! * A transactional data batch (attribute bit 4) appended with [`Log::append`] starts
//!   its producer's transaction at its base offset, unless one is ongoing. Validation as
//!   in Kafka: duplicates first, then the epoch (`InvalidProducerEpoch`), the sequence
//!   (`OutOfOrderSequence`), and a non-transactional batch from a producer with an ongoing
//!   transaction is [`StorageError::InvalidTxnState`].
//! * [`Log::append_control`] (the WriteTxnMarkers path) builds and appends a marker — a v2
//!   control batch exactly like Kafka's `withEndTransactionMarker` — and ends the
//!   producer's transaction. Stale epochs are rejected (`InvalidProducerEpoch`), as are
//!   older coordinator epochs ([`StorageError::TransactionCoordinatorFenced`]); a marker
//!   for a producer with no ongoing transaction is still written. A ready-made control
//!   batch passed to [`Log::append`] is handled the same way (it must be uncompressed and
//!   of type ABORT or COMMIT). The Produce handler must keep refusing control batches
//!   from clients.
//! * [`Log::first_unstable_offset`] is, as Kafka's, the first offset of the earliest
//!   transaction that is ongoing or whose marker is not yet below the high watermark
//!   (Kafka's `unreplicatedTxns`: a decided transaction stays unstable until its marker is
//!   replicated); [`Log::last_stable_offset`] (LSO) is `min(first unstable offset, high
//!   watermark)`. [`ReadResult::last_stable_offset`] carries it for the Fetch response.
//! * An ABORT of a non-empty transaction appends a 34-byte big-endian entry (version i16
//!   = 0, producerId i64, firstOffset i64, lastOffset i64 = the marker's offset,
//!   lastStableOffset i64 = the LSO once the marker is written) to the `.txnindex` of the
//!   segment that holds the marker — Kafka's format; the file is created lazily.
//! * `read_committed` fetch: [`Log::read_committed`] returns the batches wholly below the
//!   LSO and the `AbortedTransactions` of the response. It is a read capped at the LSO
//!   (like [`Log::read_up_to`], but a batch straddling the LSO is not returned, as with
//!   [`Log::read_to_high_watermark`]) followed by
//!   [`Log::aborted_transactions`]`(offset, upper)`, `upper` being the fetch upper bound
//!   (the offset of the batch after the region, else the next segment's base offset or the
//!   log end offset), computed like Kafka's `collectAbortedTransactions`.
//! * Durability: ongoing transactions and coordinator epochs are part of the producer
//!   snapshots (format version 2; version 1 snapshots still load) and are rebuilt by
//!   replaying batches and markers after a crash. A segment recovered after an unclean
//!   shutdown, or whose indexes are rebuilt, or whose `.txnindex` is malformed, gets its
//!   `.txnindex` rebuilt by that replay (from a snapshot at or before the segment).
//!   Retention and DeleteRecords delete `.txnindex` files with their segments. The
//!   cleaner keeps markers and `.txnindex` files unchanged and never cleans the segment
//!   holding the last stable offset, or anything after it (Kafka's
//!   `firstUncleanableDirtyOffset`).
//! * Followers maintain all of this from replicated batches and markers (see
//!   *Replication*).
//! * Not done (yet): producer state expiration (`producer.id.expiration.ms`,
//!   `transaction.timeout` is the coordinator's business), removal of markers by the
//!   cleaner.
//!
//! # Replication
//!
//! The storage half of Kafka's replication (`UnifiedLog`); the broker's replica manager
//! drives it (leader/follower roles, ISR, the Fetch protocol):
//!
//! * **High watermark** (Kafka's `highWatermarkMetadata`): stored state, within `[log start
//!   offset, log end offset]`, the log start offset after [`Log::open`]. The caller owns
//!   advancing it: it restores it at startup from the `replication-offset-checkpoint`
//!   ([`offset_checkpoint`]) with [`Log::update_high_watermark`] (which clamps and may go
//!   down, as for a follower taking `min(leader HW, its LEO)`), and a leader moves it with
//!   [`Log::maybe_increment_high_watermark`] (forward only) to the smallest log end offset
//!   of its ISR — on a single-node leader, `maybe_increment_high_watermark(log_end_offset())`
//!   after every append. Truncation clamps it; a log start offset moved past it (DeleteRecords,
//!   retention) moves it up. Retention only deletes segments wholly below it, DeleteRecords
//!   cannot pass it and the cleaner stays below the LSO, which is `<=` it.
//! * **Reads**: [`Log::read`] reads up to the log end offset (`FetchIsolation.LOG_END`,
//!   follower fetches); [`Log::read_to_high_watermark`] is the `read_uncommitted` consumer
//!   read (`HIGH_WATERMARK`): nothing at or above the high watermark, an offset in `[HW,
//!   LEO]` answers no records and one past the LEO `OffsetOutOfRange`, as in Kafka;
//!   [`Log::read_committed`] is the `TXN_COMMITTED` read, capped at the LSO.
//!   [`ReadResult::high_watermark`] is the stored high watermark.
//! * **Follower appends**: [`Log::append_as_follower`] appends the leader's batches byte for
//!   byte (offsets, leader epochs, timestamps as assigned by the leader; CRCs checked; the
//!   first batch not below the log end offset), updates the leader-epoch cache from their
//!   `partitionLeaderEpoch`, and the producer state as Kafka's `ProducerAppendInfo` with
//!   origin `REPLICATION` (no sequence checks or duplicate detection, older epochs
//!   tolerated, transactions started by transactional batches and ended by markers,
//!   `.txnindex` entries for aborts). So a follower that becomes leader deduplicates
//!   retries at once.
//! * **Epochs**: [`Log::assign_epoch_start`] records `(epoch, log end offset)` when the
//!   replica becomes leader (Kafka's `maybeAssignEpochStartOffset`); [`Log::latest_epoch`]
//!   is the follower's `LastFetchedEpoch`; [`Log::end_offset_for_epoch`] answers
//!   OffsetForLeaderEpoch and the leader's DivergingEpoch check.
//! * **Truncation**: [`Log::truncate_to`] (Kafka's `truncateTo`: segments, index entries,
//!   `.txnindex` entries and epochs at or past the offset go; producer state rebuilt from
//!   the newest snapshot at or below it; log start and high watermark clamped) and
//!   [`Log::truncate_fully_and_start_at`] (an empty log at the leader's log start).
//!   Deciding where to truncate (OffsetForLeaderEpoch / DivergingEpoch,
//!   `getOffsetTruncationState`) is the fetcher's job; `tests/replication.rs` plays it,
//!   porting Kafka's epoch-driven replication acceptance tests.
//!
//! # Retention and the log start offset
//!
//! The log start offset is `max(first segment's base offset, log-start-offset-checkpoint)`.
//! [`Log::delete_records`] moves it (durably) without touching segments;
//! [`Log::delete_old_segments`] deletes whole segments from the oldest: those breaching
//! `retention.ms` / `retention.bytes` (with `cleanup_delete`) and those wholly below the log
//! start offset. As in Kafka, an expired non-empty active segment is rolled first so it can
//! go too; the log always keeps an active segment. Deleted files are renamed `*.deleted` and
//! removed by [`Log::purge_deleted`] after `file.delete.delay.ms`; leftovers (and any
//! `.cleaned` file of an unfinished compaction) are removed by [`Log::open`], which also
//! completes a compaction swap that was committed (`.log.swap`) before a crash.

pub mod batch;
mod checkpoint;
pub mod clean_shutdown;
pub mod cleaner;
pub mod clock;
pub mod epoch;
pub mod error;
mod index;
pub mod log;
pub mod offset_checkpoint;
pub mod producer;
mod segment;
mod txn_index;

use std::os::unix::fs::FileExt;
use std::sync::Arc;

pub use crate::batch::BatchHeader;
pub use crate::cleaner::{CleanOutput, CleanPlan, CleanStats, RecordCodec, RecordMeta};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::error::StorageError;
pub use crate::log::Log;
pub use crate::producer::ProducerEntrySummary;

/// Configuration of a partition log (Kafka's topic/broker log settings).
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `log.segment.bytes`: roll to a new segment when the active one would exceed this.
    pub segment_bytes: u64,
    /// `log.index.interval.bytes`: add an index entry about every this many bytes.
    pub index_interval_bytes: u64,
    /// `log.index.size.max.bytes`: roll when the offset (or time) index would exceed it.
    pub max_index_bytes: u64,
    /// `log.flush.interval.messages`: fsync after this many records since the last flush.
    pub flush_interval_messages: u64,
    /// `segment.ms`: roll the active segment once its first batch is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older (-1: unlimited).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger (-1: unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `delete`: retention by time and size applies.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: the log cleaner compacts the log.
    pub cleanup_compact: bool,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this forces a compaction.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones survive after their batch was first cleaned.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: compact when dirty bytes / (clean + dirty) exceeds it.
    pub min_cleanable_dirty_ratio: f64,
    /// `file.delete.delay.ms`: deleted segment files are removed from disk this much later.
    pub file_delete_delay_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_index_bytes: 10 * 1024 * 1024,
            flush_interval_messages: u64::MAX,
            segment_ms: 604_800_000,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_delete: true,
            cleanup_compact: false,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            file_delete_delay_ms: 60_000,
        }
    }
}

/// Result of [`Log::append`] (and [`Log::append_as_follower`], for all its batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record (of the original batch for a duplicate).
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub max_timestamp: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// The batch was a duplicate of an already appended one and was not written.
    pub duplicate: bool,
}

/// Result of [`Log::read`].
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches to send, `None` if there is nothing (or nothing that fits).
    pub region: Option<FileRegion>,
    /// The stored high watermark ([`Log::high_watermark`]) at the time of the read.
    pub high_watermark: i64,
    /// Last stable offset ([`Log::last_stable_offset`]) at the time of the read.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
}

/// An aborted transaction overlapping a `read_committed` fetch ([`Log::aborted_transactions`];
/// the `AbortedTransactions` entries of a Fetch response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Producer id of the aborted transaction.
    pub producer_id: i64,
    /// First offset of the transaction.
    pub first_offset: i64,
}

/// A byte range of a segment file, to be sent with `sendfile`. Holds the file open even
/// if the segment is deleted later.
#[derive(Debug, Clone)]
pub struct FileRegion {
    /// The segment's `.log` file.
    pub file: Arc<std::fs::File>,
    /// Start position in the file.
    pub position: u64,
    /// Length in bytes.
    pub len: u64,
}

impl FileRegion {
    /// Reads the region into memory (for tests and non-zero-copy paths).
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        let len = usize::try_from(self.len).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "region too large")
        })?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// One whole batch read into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchBytes {
    /// Base offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// Max timestamp of the batch.
    pub max_timestamp: i64,
    /// The whole batch.
    pub bytes: Vec<u8>,
}

/// What [`Log::open`] had to repair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments fully scanned because of an unclean shutdown.
    pub recovered_segments: usize,
    /// Bytes of invalid data truncated.
    pub truncated_bytes: u64,
    /// First offset lost by the truncation (the new log end of that segment).
    pub truncated_at_offset: Option<i64>,
    /// Segments whose indexes were rebuilt.
    pub rebuilt_indexes: usize,
    /// Human-readable description of what was wrong.
    pub reason: Option<String>,
}

/// What [`Log::delete_old_segments`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments deleted (renamed `.deleted`, removed after `file.delete.delay.ms`).
    pub deleted_segments: usize,
    /// Bytes of the deleted segments.
    pub deleted_bytes: u64,
    /// Segments deleted because they lay wholly below the log start offset.
    pub by_log_start: usize,
    /// Segments deleted because of `retention.ms`.
    pub by_time: usize,
    /// Segments deleted because of `retention.bytes`.
    pub by_size: usize,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
    /// Base offsets of the deleted segments, oldest first.
    pub deleted_base_offsets: Vec<i64>,
}
