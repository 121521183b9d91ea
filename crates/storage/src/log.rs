//! [`Log`]: the partition log, an ordered list of segments.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::batch::{self, BatchHeader};
use crate::checkpoint;
use crate::cleaner::{self, CleanOutput, CleanPlan, CleanStats, PlanSegment};
use crate::clock::Clock;
use crate::epoch::LeaderEpochCache;
use crate::error::IoContext;
use crate::producer::{self, CompletedTxn, ProducerStateManager, SequenceCheck};
use crate::segment::{self, Segment, SegmentRead};
use crate::txn_index::AbortedTxnEntry;
use crate::{
    AbortedTxn, AppendInfo, BatchBytes, FileRegion, LogConfig, ProducerEntrySummary, ReadResult,
    RecoveryReport, RetentionOutcome, StorageError,
};

/// Number of producer state snapshots kept on disk.
const SNAPSHOTS_TO_KEEP: usize = 2;

/// The log of one topic-partition, stored in its own directory.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Sorted by base offset; never empty; the last one is active.
    segments: Vec<Segment>,
    producers: ProducerStateManager,
    unflushed_messages: u64,
    /// First offset visible to readers (>= the first segment's base offset).
    log_start_offset: i64,
    epochs: LeaderEpochCache,
    /// The cleaner's first dirty offset (`cleaner-offset-checkpoint`), if any.
    cleaner_checkpoint: Option<i64>,
    /// Earliest delete horizon of a tombstone kept by the last cleaning.
    earliest_delete_horizon: Option<i64>,
    /// Files of deleted segments (renamed `.deleted`) and when to remove them.
    pending_deletes: Vec<(i64, Vec<PathBuf>)>,
    /// The wall clock (segment creation times, `segment.ms` rolls on append).
    clock: Arc<dyn Clock>,
    /// Kafka's `highWatermarkMetadata`: within `[log_start_offset, log_end_offset]`, set by
    /// the caller (the replica manager).
    high_watermark: i64,
    /// Bumped by every truncation: a compaction planned before one is discarded.
    generation: u64,
    /// The leader-epoch checkpoint was written without fsync (become-leader).
    epochs_unsynced: bool,
}

/// Disambiguates the names of directories being deleted by [`Log::delete`].
static DELETE_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Why segments are deleted (for the log line).
#[derive(Debug, Clone, Copy)]
enum DeletionReason {
    LogStart,
    RetentionTime,
    RetentionSize,
}

/// Finishes or rolls back compaction swaps interrupted by a crash and removes leftover
/// `.cleaned`, `.deleted` and `.tmp` files.
fn recover_interrupted_swaps(dir: &Path) -> Result<(), StorageError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    let mut changed = false;
    // `<base>.log.swap`: the cleaned segment was committed; finish the swap. Its indexes
    // (old ones, or new ones not yet renamed) are dropped and rebuilt by `Segment::open`.
    for name in &names {
        let Some(log_name) = name
            .strip_suffix(segment::SWAP_SUFFIX)
            .and_then(|n| n.strip_suffix('.'))
        else {
            continue;
        };
        let Some(base) = parse_offset_file_name(log_name, segment::LOG_SUFFIX) else {
            continue;
        };
        tracing::info!(dir = %dir.display(), base_offset = base, "completing an interrupted compaction swap");
        for ext in [segment::INDEX_SUFFIX, segment::TIME_INDEX_SUFFIX] {
            cleaner::remove_if_exists(&dir.join(segment::file_name(base, ext)))?;
        }
        let swap = dir.join(name);
        let target = dir.join(log_name);
        std::fs::rename(&swap, &target).at(&target)?;
        changed = true;
    }
    for name in &names {
        let leftover = [segment::CLEANED_SUFFIX, segment::DELETED_SUFFIX, "tmp"]
            .iter()
            .any(|suffix| name.strip_suffix(suffix).is_some_and(|n| n.ends_with('.')));
        if leftover {
            let path = dir.join(name);
            tracing::debug!(file = %path.display(), "removing leftover file");
            cleaner::remove_if_exists(&path)?;
            changed = true;
        }
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Parses `<20 digits>.<suffix>` into the offset.
pub(crate) fn parse_offset_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<i64>().ok()
}

/// Removes the files of a segment dropped by a truncation: the `.log` first (index files
/// without a `.log` are removed by [`Log::open`]).
fn remove_segment_files(seg: &Segment) -> Result<(), StorageError> {
    tracing::info!(segment = %seg.log_path.display(), "deleting segment (truncation)");
    for path in seg.paths() {
        cleaner::remove_if_exists(&path)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

impl Log {
    /// Opens or creates the partition log in `dir` (created if missing).
    /// `clean_shutdown == false` means the process may have been killed: the active
    /// segment is scanned and its torn tail truncated. `clock` is the wall clock used for
    /// segment creation times and `segment.ms` rolls on append.
    ///
    /// The high watermark starts at the log start offset (as in Kafka): the caller restores
    /// it (e.g. from the `replication-offset-checkpoint`, [`crate::offset_checkpoint`]) with
    /// [`Log::update_high_watermark`].
    pub fn open(
        dir: impl Into<PathBuf>,
        config: LogConfig,
        clean_shutdown: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<(Log, RecoveryReport), StorageError> {
        let dir = dir.into();
        let now_ms = clock.now_ms();
        std::fs::create_dir_all(&dir).at(&dir)?;
        recover_interrupted_swaps(&dir)?;
        let mut report = RecoveryReport::default();

        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(base) = parse_offset_file_name(name, segment::LOG_SUFFIX) {
                bases.push(base);
            } else if let Some(base) = parse_offset_file_name(name, segment::INDEX_SUFFIX)
                .or_else(|| parse_offset_file_name(name, segment::TIME_INDEX_SUFFIX))
                .or_else(|| parse_offset_file_name(name, segment::TXN_INDEX_SUFFIX))
            {
                index_files.push((base, entry.path()));
            }
        }
        bases.sort_unstable();
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                tracing::warn!(file = %path.display(), "removing index file without a segment");
                std::fs::remove_file(&path).at(&path)?;
            }
        }

        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let recover = next_base.is_none() && !clean_shutdown;
            let mut seg = Segment::open(
                &dir,
                base,
                next_base,
                recover,
                config.index_interval_bytes,
                now_ms,
                &mut report,
            )?;
            if next_base.is_some() {
                seg.seal();
            }
            segments.push(seg);
        }
        let stored_start = checkpoint::read_offset(&dir, checkpoint::LOG_START_OFFSET_FILE)?;
        if segments.is_empty() {
            // A new log, or one emptied by `truncate_fully_and_start_at` when a crash came
            // before its new segment was created: start at the recorded log start.
            let base = stored_start.unwrap_or(0).max(0);
            segments.push(Segment::create(
                &dir,
                base,
                config.index_interval_bytes,
                now_ms,
            )?);
            sync_dir(&dir)?;
        }

        let first_base = segments.first().map_or(0, |s| s.base_offset);
        let log_end = segments.last().map_or(0, |s| s.next_offset);
        let log_start_offset = stored_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end);
        let cleaner_checkpoint = checkpoint::read_offset(&dir, checkpoint::CLEANER_OFFSET_FILE)?;
        let mut log = Log {
            dir,
            config,
            segments,
            producers: ProducerStateManager::default(),
            unflushed_messages: 0,
            log_start_offset,
            epochs: LeaderEpochCache::default(),
            cleaner_checkpoint,
            earliest_delete_horizon: None,
            pending_deletes: Vec::new(),
            clock,
            high_watermark: log_start_offset,
            generation: 0,
            epochs_unsynced: false,
        };
        log.load_epochs()?;
        log.load_producer_state()?;
        log.producers.on_high_watermark_updated(log.high_watermark);
        if report != RecoveryReport::default() {
            tracing::info!(dir = %log.dir.display(), ?report, "log recovered");
        }
        Ok((log, report))
    }

    /// Loads the leader-epoch checkpoint (rebuilding it from the batch headers if missing or
    /// malformed) and aligns it with the log's start and end.
    fn load_epochs(&mut self) -> Result<(), StorageError> {
        let mut dirty = false;
        self.epochs = match LeaderEpochCache::load(&self.dir)? {
            Some(c) => c,
            None => {
                let mut c = LeaderEpochCache::default();
                for seg in &self.segments {
                    let mut scanner = seg.scanner(0);
                    while let Some(b) = scanner.next_batch()? {
                        c.assign(b.header.partition_leader_epoch, b.header.base_offset);
                    }
                }
                dirty = true;
                c
            }
        };
        dirty |= self.epochs.truncate_from_end(self.log_end_offset());
        dirty |= self.epochs.truncate_from_start(self.log_start_offset);
        if dirty {
            self.epochs.persist(&self.dir)?;
        }
        Ok(())
    }

    /// Loads the newest usable snapshot and replays the batches after it. If a segment's
    /// `.txnindex` must be rebuilt (recovered segment, rebuilt or corrupt indexes), the
    /// snapshot used is at or before that segment, and the replay recomputes its entries.
    fn load_producer_state(&mut self) -> Result<(), StorageError> {
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset();
        self.producers.clear();
        // Snapshots past the log end describe truncated data.
        for offset in producer::list_snapshots(&self.dir)? {
            if offset > log_end {
                let path = producer::snapshot_path(&self.dir, offset);
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        let rebuild_from = self
            .segments
            .iter()
            .filter(|s| s.txn_rebuild_pending)
            .map(|s| s.base_offset)
            .min();
        let max_snapshot = rebuild_from.map_or(log_end, |b| b.min(log_end));
        let from = match self.producers.load_latest(&self.dir, max_snapshot)? {
            Some(offset) => offset.max(log_start),
            None => log_start,
        };
        replay(&mut self.segments, &mut self.producers, from)
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// First offset of the log (moved by DeleteRecords and retention).
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }

    /// The high watermark (Kafka's `UnifiedLog.highWatermark`): the offset up to which the
    /// log is known to be replicated to the ISR, always within `[log_start_offset,
    /// log_end_offset]`. Set by the caller ([`Log::update_high_watermark`],
    /// [`Log::maybe_increment_high_watermark`]); the log start offset after [`Log::open`].
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// Kafka's `updateHighWatermark`: sets the high watermark to `hw` clamped to
    /// `[log_start_offset, log_end_offset]`, even if that lowers it (restoring it from the
    /// checkpoint after [`Log::open`]; a follower taking `min(leader HW, its LEO)`). Returns
    /// the new high watermark.
    pub fn update_high_watermark(&mut self, hw: i64) -> i64 {
        let log_end = self.log_end_offset();
        let new = if hw < self.log_start_offset {
            self.log_start_offset
        } else {
            hw.min(log_end)
        };
        if new < self.high_watermark {
            tracing::debug!(dir = %self.dir.display(), from = self.high_watermark, to = new, "non-monotonic update of the high watermark");
        }
        self.set_high_watermark(new);
        new
    }

    /// Kafka's `maybeIncrementHighWatermark`: moves the high watermark forward to `hw`
    /// (clamped to the log end offset; Kafka rejects a value above it) if that is higher;
    /// returns the old value when it moved. A single-node leader calls it with
    /// [`Log::log_end_offset`] after every append; a leader with followers with the
    /// smallest log end offset of its ISR.
    pub fn maybe_increment_high_watermark(&mut self, hw: i64) -> Option<i64> {
        let new = hw.min(self.log_end_offset());
        let old = self.high_watermark;
        if new > old {
            self.set_high_watermark(new);
            Some(old)
        } else {
            None
        }
    }

    fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw;
        self.producers.on_high_watermark_updated(hw);
    }

    /// The latest leader epoch of the epoch cache (Kafka's `latestEpoch`; a follower sends
    /// it as `LastFetchedEpoch`), `None` if the cache is empty.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Kafka's `maybeAssignEpochStartOffset`, called when this replica becomes the leader
    /// in `epoch`: records `(epoch, start_offset)` (`start_offset` being the log end offset)
    /// in the leader-epoch cache and its checkpoint, unless `epoch` is not newer than the
    /// latest epoch (or negative). Returns whether the cache changed. `OffsetOutOfRange` if
    /// `start_offset` is negative or above the log end offset.
    pub fn assign_epoch_start(
        &mut self,
        epoch: i32,
        start_offset: i64,
    ) -> Result<bool, StorageError> {
        let log_end = self.log_end_offset();
        if start_offset < 0 || start_offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: start_offset,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        if !self.epochs.assign(epoch, start_offset) {
            return Ok(false);
        }
        // Not fsynced here (Kafka since KAFKA-15046): leadership changes touch many partitions
        // at once. The entry is synced by the next flush or close, or with the first batch of
        // the epoch; a crash before that loses only an epoch with no data, which recovery and
        // the leader's answers to followers tolerate.
        self.epochs.persist_unsynced(&self.dir)?;
        self.epochs_unsynced = true;
        Ok(true)
    }

    /// Sum of the segment sizes.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Records appended since the last fsync.
    pub fn unflushed_messages(&self) -> u64 {
        self.unflushed_messages
    }

    /// Producer state for a producer id, if known.
    pub fn producer_entry(&self, producer_id: i64) -> Option<ProducerEntrySummary> {
        self.producers.summary(producer_id)
    }

    /// Every producer of the partition's producer state, as `(producer id, summary)` by
    /// producer id (Kafka's `ProducerStateManager.activeProducers`, for DescribeProducers).
    pub fn producers(&self) -> Vec<(i64, ProducerEntrySummary)> {
        self.producers.summaries()
    }

    /// Kafka's `firstUnstableOffset`: the first offset of the earliest transaction that is
    /// ongoing, or completed by a marker not yet below the high watermark (at least the log
    /// start offset); `None` when there is none.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .first_unstable_offset()
            .map(|o| o.max(self.log_start_offset))
    }

    /// Kafka's `lastStableOffset`: `min(first unstable offset, high watermark)`.
    /// `read_committed` fetches read up to it.
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark;
        self.first_unstable_offset().map_or(hw, |o| o.min(hw))
    }

    /// Ongoing transactions as `(first offset, producer id)`, earliest first (Kafka's
    /// `ProducerStateManager.ongoingTxns`, e.g. for DescribeProducers / ListTransactions).
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.producers.ongoing_transactions().collect()
    }

    /// Kafka's `collectAbortedTransactions` for a `read_committed` fetch: the transactions
    /// aborted by a marker, with `lastOffset >= from` and `firstOffset < upper`, taken from
    /// the `.txnindex` files from the segment holding `from` on, stopping after the first
    /// segment with an entry whose last stable offset is `>= upper`. `upper` is the offset
    /// after the last fetched batch (Kafka's fetch upper bound: the next batch's offset, or
    /// the next segment's base offset / the log end offset when the read went to the end of
    /// its segment). Entries are in marker order. `OffsetOutOfRange` if `from` is outside
    /// `[log start, log end]`.
    pub fn aborted_transactions(
        &self,
        from: i64,
        upper: i64,
    ) -> Result<Vec<AbortedTxn>, StorageError> {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        if from < log_start || from > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: from,
                log_start,
                log_end,
            });
        }
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= from)
            .saturating_sub(1);
        let mut out = Vec::new();
        for seg in &self.segments[first..] {
            let found = seg.txn_index.collect(from, upper);
            out.extend(found.aborted.iter().map(|e| AbortedTxn {
                producer_id: e.producer_id,
                first_offset: e.first_offset,
            }));
            if found.complete {
                break;
            }
        }
        Ok(out)
    }

    fn active(&mut self) -> Result<&mut Segment, StorageError> {
        self.segments
            .last_mut()
            .ok_or_else(|| StorageError::CorruptBatch("log has no segment".into()))
    }

    /// Appends one RecordBatch v2, assigning `baseOffset = log_end_offset` and
    /// `partitionLeaderEpoch = leader_epoch` in place.
    pub fn append(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, StorageError> {
        let mut header = BatchHeader::parse(batch)?;
        if header.total_size() != batch.len() {
            return Err(StorageError::CorruptBatch(format!(
                "batchLength {} does not match the {} bytes given",
                header.batch_length,
                batch.len()
            )));
        }
        if header.last_offset_delta < 0 {
            return Err(StorageError::CorruptBatch(format!(
                "negative lastOffsetDelta {}",
                header.last_offset_delta
            )));
        }
        if header.records_count <= 0
            || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
        {
            return Err(StorageError::CorruptBatch(format!(
                "recordsCount {} does not match lastOffsetDelta {}",
                header.records_count, header.last_offset_delta
            )));
        }
        if header.is_control() {
            if header.producer_id < 0 {
                return Err(StorageError::CorruptBatch(
                    "control batch without a producer id".into(),
                ));
            }
            let (kind, coordinator_epoch) = batch::control_marker(batch)?;
            let commit = match kind {
                batch::CONTROL_TYPE_COMMIT => true,
                batch::CONTROL_TYPE_ABORT => false,
                other => {
                    return Err(StorageError::CorruptBatch(format!(
                        "invalid record type for end transaction marker: {other}"
                    )))
                }
            };
            return self.append_marker(batch, header, commit, coordinator_epoch, leader_epoch);
        }
        if header.is_transactional() && header.producer_id < 0 {
            return Err(StorageError::CorruptBatch(
                "transactional batch without a producer id".into(),
            ));
        }
        let log_start_offset = self.log_start_offset();
        if let SequenceCheck::Duplicate {
            first_offset,
            last_offset,
        } = self.producers.check(&header)?
        {
            return Ok(AppendInfo {
                base_offset: first_offset,
                last_offset,
                max_timestamp: header.max_timestamp,
                log_start_offset,
                duplicate: true,
            });
        }

        let (base_offset, last_offset) = self.write_batch(batch, &mut header, leader_epoch)?;
        self.producers.update(&header, base_offset, last_offset);
        self.after_write(header.records_count)?;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            log_start_offset,
            duplicate: false,
        })
    }

    /// Kafka's `appendAsLeader` of an end-transaction marker (origin COORDINATOR): builds
    /// and appends a control batch (RecordBatch v2, attributes transactional + control, one
    /// record with key `[0 i16, type i16]` (0 ABORT, 1 COMMIT) and value
    /// `[0 i16, coordinator_epoch i32]`, `baseSequence` -1) for `producer_id`, and ends that
    /// producer's ongoing transaction. An ABORT of a non-empty transaction adds an entry
    /// (producer id, first offset, marker offset, last stable offset after the marker) to
    /// the active segment's `.txnindex`. A marker with an epoch older than the producer's is
    /// rejected with `InvalidProducerEpoch`, one with an older coordinator epoch than the
    /// last marker's with `TransactionCoordinatorFenced`; a marker for a producer without
    /// an ongoing transaction is written all the same (it changes neither the LSO nor the
    /// index). A higher epoch becomes the producer's epoch (its sequence history is reset).
    pub fn append_control(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        timestamp_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        if producer_id < 0 {
            return Err(StorageError::CorruptBatch(format!(
                "transaction marker for invalid producer id {producer_id}"
            )));
        }
        let mut b = batch::control_batch(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            timestamp_ms,
        );
        let header = BatchHeader::parse(&b)?;
        self.append_marker(&mut b, header, commit, coordinator_epoch, leader_epoch)
    }

    fn append_marker(
        &mut self,
        batch: &mut [u8],
        mut header: BatchHeader,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
    ) -> Result<AppendInfo, StorageError> {
        self.producers.check_marker(
            header.producer_id,
            header.producer_epoch,
            coordinator_epoch,
        )?;
        let log_start_offset = self.log_start_offset();
        let (offset, _) = self.write_batch(batch, &mut header, leader_epoch)?;
        let completed = self.producers.complete_txn(
            header.producer_id,
            header.producer_epoch,
            coordinator_epoch,
            offset,
            commit,
        );
        if let Some(txn) = completed {
            self.index_completed(&txn)?;
        }
        self.after_write(header.records_count)?;
        Ok(AppendInfo {
            base_offset: offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            log_start_offset,
            duplicate: false,
        })
    }

    /// Adds an aborted transaction to the active segment's `.txnindex` (Kafka's
    /// `LogSegment.updateTxnIndex`), with the LSO right after its marker.
    fn index_completed(&mut self, txn: &CompletedTxn) -> Result<(), StorageError> {
        if !txn.aborted {
            return Ok(());
        }
        let entry = AbortedTxnEntry {
            producer_id: txn.producer_id,
            first_offset: txn.first_offset,
            last_offset: txn.last_offset,
            last_stable_offset: self.producers.last_stable_offset_after(txn),
        };
        self.active()?.txn_index.append(entry)
    }

    /// Kafka's `appendAsFollower` (origin `REPLICATION`): appends `records`, one or more
    /// concatenated RecordBatch v2 whose offsets, partition leader epochs and timestamps
    /// were assigned by the leader, byte for byte.
    ///
    /// * The first batch must not start below the log end offset
    ///   ([`StorageError::UnexpectedAppendOffset`]); it may start above it, as in Kafka (the
    ///   leader's compaction leaves gaps); later batches must follow the previous one's last
    ///   offset. Every batch's CRC is verified. A trailing incomplete batch is ignored, as
    ///   Kafka does with fetch responses cut at `max_bytes`; if nothing complete is left,
    ///   nothing is appended (the result then has `last_offset = base_offset - 1`).
    /// * The leader-epoch cache takes each batch's `partitionLeaderEpoch` when it is newer.
    /// * Producer state is updated as for Kafka's origin `REPLICATION`: no sequence checks,
    ///   no duplicate detection, older producer or coordinator epochs are accepted (and
    ///   logged); transactional batches start transactions, markers end them, and an ABORT
    ///   of a non-empty transaction adds a `.txnindex` entry. A non-transactional batch of a
    ///   producer with an ongoing transaction is [`StorageError::InvalidTxnState`] (Kafka
    ///   checks that whatever the origin); nothing is written then.
    /// * As in Kafka, the batches go to one segment: a roll (size, index, `segment.ms`,
    ///   offset range) happens before them, at the first batch's base offset; batches
    ///   larger than `segment.bytes` together are [`StorageError::RecordBatchTooLarge`].
    pub fn append_as_follower(&mut self, records: &[u8]) -> Result<AppendInfo, StorageError> {
        let log_end = self.log_end_offset();
        let log_start_offset = self.log_start_offset;
        // 1. Split and validate.
        let mut batches: Vec<(usize, BatchHeader)> = Vec::new();
        let mut markers: HashMap<usize, (bool, i32)> = HashMap::new();
        let mut pos = 0usize;
        let mut max_timestamp = -1i64;
        let mut records_count = 0i64;
        while records.len() - pos >= batch::LOG_OVERHEAD {
            let rest = &records[pos..];
            let mut len = [0u8; 4];
            len.copy_from_slice(&rest[batch::BATCH_LENGTH_POS..batch::BATCH_LENGTH_POS + 4]);
            let batch_length = i32::from_be_bytes(len);
            if batch_length < batch::MIN_BATCH_LENGTH {
                return Err(StorageError::CorruptBatch(format!(
                    "batch at byte {pos} of the follower append: batchLength {batch_length} is smaller than the minimum {}",
                    batch::MIN_BATCH_LENGTH
                )));
            }
            let total = batch_length as usize + batch::LOG_OVERHEAD;
            if total > rest.len() {
                tracing::debug!(dir = %self.dir.display(), bytes = rest.len(), "ignoring an incomplete batch at the end of a follower append");
                break;
            }
            let bytes = &rest[..total];
            let corrupt = |e: StorageError| {
                StorageError::CorruptBatch(format!(
                    "batch at byte {pos} of the follower append: {e}"
                ))
            };
            let h = BatchHeader::parse(bytes).map_err(corrupt)?;
            batch::verify_crc(bytes).map_err(corrupt)?;
            if h.last_offset_delta < 0 || h.records_count < 0 || h.base_offset < 0 {
                return Err(StorageError::CorruptBatch(format!(
                    "batch at offset {}: invalid baseOffset, lastOffsetDelta {} or recordsCount {}",
                    h.base_offset, h.last_offset_delta, h.records_count
                )));
            }
            if h.last_offset() == i64::MAX {
                return Err(StorageError::CorruptBatch(format!(
                    "batch at offset {} overflows the offset space",
                    h.base_offset
                )));
            }
            match batches.last() {
                None if h.base_offset < log_end => {
                    let mut last_offset = h.last_offset();
                    // Report the whole append's range like Kafka.
                    let mut p = pos + total;
                    while records.len() - p >= batch::HEADER_LEN {
                        match BatchHeader::parse(&records[p..]) {
                            Ok(n) if n.total_size() <= records.len() - p => {
                                last_offset = n.last_offset();
                                p += n.total_size();
                            }
                            _ => break,
                        }
                    }
                    return Err(StorageError::UnexpectedAppendOffset {
                        first_offset: h.base_offset,
                        last_offset,
                        log_end,
                    });
                }
                Some((_, prev)) if h.base_offset <= prev.last_offset() => {
                    return Err(StorageError::CorruptBatch(format!(
                        "out of order offsets in follower append: batch at offset {} follows one ending at {}",
                        h.base_offset,
                        prev.last_offset()
                    )));
                }
                _ => {}
            }
            if h.is_control() && h.producer_id >= 0 && h.records_count > 0 {
                let (kind, coordinator_epoch) = batch::control_marker(bytes).map_err(corrupt)?;
                let commit = match kind {
                    batch::CONTROL_TYPE_COMMIT => true,
                    batch::CONTROL_TYPE_ABORT => false,
                    other => {
                        return Err(StorageError::CorruptBatch(format!(
                            "invalid record type for end transaction marker at offset {}: {other}",
                            h.base_offset
                        )))
                    }
                };
                markers.insert(pos, (commit, coordinator_epoch));
            }
            max_timestamp = max_timestamp.max(h.max_timestamp);
            records_count += i64::from(h.records_count);
            batches.push((pos, h));
            pos += total;
        }
        let (Some(&(_, first)), Some(&(_, last))) = (batches.first(), batches.last()) else {
            return Ok(AppendInfo {
                base_offset: log_end,
                last_offset: log_end - 1,
                max_timestamp: -1,
                log_start_offset,
                duplicate: false,
            });
        };
        let valid = &records[..pos];
        let segment_bytes = self.config.segment_bytes.min(u64::from(u32::MAX));
        if valid.len() as u64 > segment_bytes {
            return Err(StorageError::RecordBatchTooLarge {
                size: valid.len() as u64,
                max: segment_bytes,
            });
        }
        if last.last_offset() - first.base_offset > i64::from(i32::MAX) {
            return Err(StorageError::CorruptBatch(format!(
                "follower append spans offsets {} to {}, more than a segment can hold",
                first.base_offset,
                last.last_offset()
            )));
        }
        // 2. Producer state checks (nothing is written if they fail): Kafka's
        // `appendDataBatch` rejects a non-transactional batch during a transaction.
        let mut ongoing: HashMap<i64, Option<i64>> = HashMap::new();
        for (at, h) in &batches {
            if h.producer_id < 0 {
                continue;
            }
            let current = *ongoing
                .entry(h.producer_id)
                .or_insert_with(|| self.producers.ongoing_txn_first_offset(h.producer_id));
            if h.is_control() {
                if markers.contains_key(at) {
                    ongoing.insert(h.producer_id, None);
                }
                continue;
            }
            match current {
                Some(first_offset) if !h.is_transactional() => {
                    return Err(StorageError::InvalidTxnState {
                        producer_id: h.producer_id,
                        first_offset,
                    });
                }
                None if h.is_transactional() => {
                    ongoing.insert(h.producer_id, Some(h.base_offset));
                }
                _ => {}
            }
        }
        // 3. Leader epochs first (see `write_batch`), roll, write.
        let mut epochs_changed = false;
        for (_, h) in &batches {
            epochs_changed |= self.epochs.assign(h.partition_leader_epoch, h.base_offset);
        }
        if epochs_changed {
            self.epochs.persist(&self.dir)?;
        }
        let (max_index_bytes, segment_ms) = (self.config.max_index_bytes, self.config.segment_ms);
        let now_ms = self.clock.now_ms();
        let active = self.active()?;
        let roll = active.should_roll(
            valid.len() as u64,
            last.last_offset(),
            segment_bytes,
            max_index_bytes,
        ) || (active.size > 0
            && active.time_waited_for_roll(now_ms, max_timestamp)? > segment_ms);
        if roll {
            self.roll_at(first.base_offset)?;
        }
        self.active()?.append_batches(valid, &batches)?;
        // 4. Producer state and transaction index, batch by batch (as recovery replays it).
        for (at, h) in &batches {
            if h.producer_id < 0 {
                continue;
            }
            if !h.is_control() {
                self.producers.update(h, h.base_offset, h.last_offset());
                continue;
            }
            let Some(&(commit, coordinator_epoch)) = markers.get(at) else {
                continue;
            };
            let completed = self.producers.complete_txn(
                h.producer_id,
                h.producer_epoch,
                coordinator_epoch,
                h.base_offset,
                commit,
            );
            if let Some(txn) = completed {
                self.index_completed(&txn)?;
            }
        }
        self.after_write(i32::try_from(records_count).unwrap_or(i32::MAX))?;
        Ok(AppendInfo {
            base_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp,
            log_start_offset,
            duplicate: false,
        })
    }

    /// Kafka's `truncateTo`, for a follower whose log diverged from the leader's: removes
    /// every batch whose last offset is `>= offset` (a batch holding `offset` goes whole, so
    /// the log end offset may end up below `offset`): the segments above it with their
    /// index and `.txnindex` files, the tail of the segment holding it with its index
    /// entries. Then the leader-epoch cache drops the epochs starting at or after the new
    /// log end offset (also when nothing is removed: an epoch assigned by a leader that
    /// appended nothing must go), the producer snapshots past it are deleted and the
    /// producer state is rebuilt from the newest snapshot at or below it, the log start
    /// offset is lowered to it if needed and the high watermark clamped to it. An `offset`
    /// below the first segment is [`Log::truncate_fully_and_start_at`]. Returns whether
    /// anything was removed (`offset < log end offset`). A compaction planned before is
    /// discarded at commit.
    ///
    /// Crash safety: data goes first, newest segment first, each step fsynced; whatever is
    /// left then is a consistent log for [`Log::open`] (which drops dangling index entries,
    /// epochs and snapshots past the log end, and replays the `.txnindex`).
    pub fn truncate_to(&mut self, offset: i64) -> Result<bool, StorageError> {
        if offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        let log_end = self.log_end_offset();
        if offset >= log_end {
            if self.epochs.truncate_from_end(log_end) {
                self.epochs.persist(&self.dir)?;
            }
            return Ok(false);
        }
        let first_base = self.segments.first().map_or(0, |s| s.base_offset);
        if offset < first_base {
            self.truncate_fully_and_start_at(offset)?;
            return Ok(true);
        }
        if offset < self.high_watermark {
            tracing::warn!(dir = %self.dir.display(), offset, high_watermark = self.high_watermark, "truncating below the high watermark");
        }
        tracing::info!(dir = %self.dir.display(), offset, log_end, "truncating");
        self.generation += 1;
        let now_ms = self.clock.now_ms();
        let mut removed_any = false;
        while self.segments.len() > 1
            && self.segments.last().is_some_and(|s| s.base_offset > offset)
        {
            if let Some(seg) = self.segments.pop() {
                remove_segment_files(&seg)?;
                removed_any = true;
            }
        }
        if removed_any {
            sync_dir(&self.dir)?;
        }
        self.active()?.truncate_to(offset, now_ms)?;
        let new_end = self.log_end_offset();
        if self.epochs.truncate_from_end(new_end) {
            self.epochs.persist(&self.dir)?;
        }
        let new_start = self.log_start_offset.min(offset).min(new_end);
        if new_start != self.log_start_offset {
            checkpoint::write_offset(&self.dir, checkpoint::LOG_START_OFFSET_FILE, new_start)?;
            self.log_start_offset = new_start;
        }
        if self.cleaner_checkpoint.is_some_and(|c| c > new_end) {
            checkpoint::write_offset(&self.dir, checkpoint::CLEANER_OFFSET_FILE, new_end)?;
            self.cleaner_checkpoint = Some(new_end);
        }
        for snapshot in producer::list_snapshots(&self.dir)? {
            if snapshot > new_end {
                let path = producer::snapshot_path(&self.dir, snapshot);
                cleaner::remove_if_exists(&path)?;
            }
        }
        self.load_producer_state()?;
        let hw = self.high_watermark.min(new_end);
        self.set_high_watermark(hw);
        Ok(true)
    }

    /// Kafka's `truncateFullyAndStartAt`: deletes every segment and starts an empty log at
    /// `offset` (a follower whose log end is below the leader's log start): log start
    /// offset, log end offset and high watermark become `offset`; the leader-epoch cache,
    /// the producer state (and snapshots) and the cleaner checkpoint are cleared.
    ///
    /// Crash safety: the new log start offset is recorded first, then the epoch checkpoint
    /// (rebuilt from what is left), the producer snapshots and the cleaner checkpoint are
    /// removed, then the segments newest first, and [`Log::open`] starts a log without
    /// segments at the recorded log start offset.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        tracing::info!(dir = %self.dir.display(), offset, "truncating fully and starting at the offset");
        self.generation += 1;
        checkpoint::write_offset(&self.dir, checkpoint::LOG_START_OFFSET_FILE, offset)?;
        cleaner::remove_if_exists(&self.dir.join(crate::epoch::LEADER_EPOCH_CHECKPOINT))?;
        for snapshot in producer::list_snapshots(&self.dir)? {
            cleaner::remove_if_exists(&producer::snapshot_path(&self.dir, snapshot))?;
        }
        cleaner::remove_if_exists(&self.dir.join(checkpoint::CLEANER_OFFSET_FILE))?;
        sync_dir(&self.dir)?;
        while let Some(seg) = self.segments.pop() {
            remove_segment_files(&seg)?;
        }
        sync_dir(&self.dir)?;
        self.segments.push(Segment::create(
            &self.dir,
            offset,
            self.config.index_interval_bytes,
            self.clock.now_ms(),
        )?);
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.epochs = LeaderEpochCache::default();
        self.epochs.persist(&self.dir)?;
        self.producers.clear();
        self.cleaner_checkpoint = None;
        self.earliest_delete_horizon = None;
        self.unflushed_messages = 0;
        self.set_high_watermark(offset);
        Ok(())
    }

    /// Rolls if needed and writes `batch` at the log end, patching its base offset and
    /// leader epoch (in `batch` and `header`). Returns its first and last offsets.
    fn write_batch(
        &mut self,
        batch: &mut [u8],
        header: &mut BatchHeader,
        leader_epoch: i32,
    ) -> Result<(i64, i64), StorageError> {
        let base_offset = self.log_end_offset();
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let (segment_bytes, max_index_bytes) =
            (self.config.segment_bytes, self.config.max_index_bytes);
        let segment_ms = self.config.segment_ms;
        let now_ms = self.clock.now_ms();
        let active = self.active()?;
        let roll = active.should_roll(
            batch.len() as u64,
            last_offset,
            segment_bytes,
            max_index_bytes,
        ) || (active.size > 0
            && active.time_waited_for_roll(now_ms, header.max_timestamp)? > segment_ms);
        if roll {
            self.roll_at(base_offset)?;
        }
        batch::set_base_offset(batch, base_offset);
        batch::set_partition_leader_epoch(batch, leader_epoch);
        header.base_offset = base_offset;
        header.partition_leader_epoch = leader_epoch;
        // The epoch first, as in Kafka: an entry past the log end (a crash before the
        // write) is dropped by `open`, a batch whose epoch the cache lacks would not be.
        if self.epochs.assign(leader_epoch, base_offset) || self.epochs_unsynced {
            self.epochs.persist(&self.dir)?;
            self.epochs_unsynced = false;
        }
        self.active()?.append(batch, header)?;
        Ok((base_offset, last_offset))
    }

    /// Counts unflushed records and fsyncs once `flush.interval.messages` is reached.
    fn after_write(&mut self, records: i32) -> Result<(), StorageError> {
        self.unflushed_messages = self
            .unflushed_messages
            .saturating_add(records.max(0) as u64);
        if self.unflushed_messages >= self.config.flush_interval_messages {
            self.flush()?;
        }
        Ok(())
    }

    /// Seals the active segment (fsync, producer snapshot) and starts a new one at the
    /// log end offset.
    fn roll(&mut self) -> Result<(), StorageError> {
        self.roll_at(self.log_end_offset())
    }

    /// [`Log::roll`] with the new segment based at `new_base` (`>=` the log end offset: a
    /// follower rolls at the base offset of the first batch it appends, which may lie past
    /// the log end after compaction on the leader; Kafka's `roll(expectedNextOffset)`). The
    /// producer snapshot is taken at `new_base`.
    fn roll_at(&mut self, new_base: i64) -> Result<(), StorageError> {
        let new_base = new_base.max(self.log_end_offset());
        if self
            .segments
            .last()
            .is_some_and(|s| s.base_offset >= new_base)
        {
            // Already there (an empty active segment at that base).
            return Ok(());
        }
        {
            let active = self.active()?;
            active.trim()?;
            active.flush()?;
            active.seal();
        }
        self.unflushed_messages = 0;
        self.producers.write_snapshot(&self.dir, new_base)?;
        producer::retain_snapshots(&self.dir, SNAPSHOTS_TO_KEEP, i64::MAX, None)?;
        let seg = Segment::create(
            &self.dir,
            new_base,
            self.config.index_interval_bytes,
            self.clock.now_ms(),
        )?;
        sync_dir(&self.dir)?;
        tracing::debug!(dir = %self.dir.display(), base_offset = new_base, "rolled new segment");
        self.segments.push(seg);
        Ok(())
    }

    fn read_result(&self, region: Option<FileRegion>) -> ReadResult {
        ReadResult {
            region,
            high_watermark: self.high_watermark(),
            last_stable_offset: self.last_stable_offset(),
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Whole batches starting with the batch that contains `offset`, as one region of one
    /// segment file, at most `max_bytes` (unless `min_one_batch` and the first batch alone
    /// is larger), up to the log end offset (Kafka's `FetchIsolation.LOG_END`: what a
    /// follower fetch reads). Consumers read with [`Log::read_to_high_watermark`] or
    /// [`Log::read_committed`].
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, StorageError> {
        self.read_up_to(offset, max_bytes, min_one_batch, None)
    }

    /// [`Log::read`] capped at `max_offset` (for `read_committed`, the caller passes the
    /// [`Log::last_stable_offset`]): only whole batches below it, except that a first
    /// batch straddling it is returned (alone). Nothing (`region: None`) if `offset >=
    /// max_offset` or the first batch at or after `offset` starts at or after it; as with
    /// `read`, `offset` must lie in `[log start, log end]`.
    pub fn read_up_to(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: Option<i64>,
    ) -> Result<ReadResult, StorageError> {
        self.read_bounded(offset, max_bytes, min_one_batch, max_offset, true)
    }

    /// A `read_uncommitted` consumer fetch (Kafka's `FetchIsolation.HIGH_WATERMARK`): whole
    /// batches wholly below the high watermark, never anything at or above it (a batch
    /// straddling it is not returned either, as in Kafka, whose read stops at the position
    /// of the batch holding the high watermark). An `offset` in `[high watermark, log end
    /// offset]` returns no region; one outside `[log start, log end]` is `OffsetOutOfRange`.
    pub fn read_to_high_watermark(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadResult, StorageError> {
        self.read_bounded(
            offset,
            max_bytes,
            min_one_batch,
            Some(self.high_watermark),
            false,
        )
    }

    fn read_bounded(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: Option<i64>,
        straddling: bool,
    ) -> Result<ReadResult, StorageError> {
        let log_start = self.log_start_offset();
        let log_end = self.log_end_offset();
        if offset < log_start || offset > log_end {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start,
                log_end,
            });
        }
        if offset == log_end || max_offset.is_some_and(|m| offset >= m) {
            return Ok(self.read_result(None));
        }
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            match seg.read(offset, max_bytes, min_one_batch, max_offset, straddling)? {
                SegmentRead::NotHere => continue,
                SegmentRead::TooLarge | SegmentRead::Capped => return Ok(self.read_result(None)),
                SegmentRead::Region { position, len } => {
                    return Ok(self.read_result(Some(FileRegion {
                        file: Arc::clone(&seg.log),
                        position,
                        len,
                    })));
                }
            }
        }
        Ok(self.read_result(None))
    }

    /// A `read_committed` fetch (Kafka's `FetchIsolation.TXN_COMMITTED`): whole batches
    /// wholly below the last stable offset (like [`Log::read_to_high_watermark`], a batch
    /// straddling it is not returned) and the aborted transactions the
    /// consumer needs to filter them ([`Log::aborted_transactions`] from `offset` to the
    /// fetch upper bound: the offset of the batch after the returned region, or the next
    /// segment's base offset / the log end offset when the region ends its segment, as in
    /// Kafka's `LocalLog.addAbortedTransactions`). No aborted transactions when nothing is
    /// returned.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<(ReadResult, Vec<AbortedTxn>), StorageError> {
        let result = self.read_bounded(
            offset,
            max_bytes,
            min_one_batch,
            Some(self.last_stable_offset()),
            false,
        )?;
        let Some(region) = &result.region else {
            return Ok((result, Vec::new()));
        };
        let Some(idx) = self
            .segments
            .iter()
            .position(|s| Arc::ptr_eq(&s.log, &region.file))
        else {
            return Err(StorageError::CorruptBatch(
                "read region of an unknown segment".into(),
            ));
        };
        let seg = &self.segments[idx];
        let end = region.position + region.len;
        let next = if end < seg.size {
            seg.scanner(end).next_batch()?.map(|b| b.header.base_offset)
        } else {
            None
        };
        let upper = next.unwrap_or_else(|| {
            self.segments
                .get(idx + 1)
                .map_or(self.log_end_offset(), |s| s.base_offset)
        });
        let aborted = self.aborted_transactions(offset, upper)?;
        Ok((result, aborted))
    }

    /// First batch (lowest offset) whose maxTimestamp is `>= ts`.
    /// Batches wholly below the log start offset are skipped; the returned batch may begin
    /// below it (it holds the log start offset).
    pub fn find_batch_by_timestamp(&self, ts: i64) -> Result<Option<BatchBytes>, StorageError> {
        let log_start = self.log_start_offset;
        for seg in &self.segments {
            if seg.next_offset <= log_start {
                continue;
            }
            if let Some(b) = seg.find_by_timestamp_from(ts, log_start)? {
                return seg.read_batch(&b).map(Some);
            }
        }
        Ok(None)
    }

    /// The first batch holding the largest maxTimestamp of the log.
    pub fn max_timestamp_batch(&self) -> Result<Option<BatchBytes>, StorageError> {
        let mut best: Option<(i64, i64, &Segment)> = None;
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= self.log_start_offset)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            if let Some((ts, offset)) = seg.max_timestamp {
                if best.is_none_or(|(bt, _, _)| ts > bt) {
                    best = Some((ts, offset, seg));
                }
            }
        }
        let Some((_, offset, seg)) = best else {
            return Ok(None);
        };
        match seg.find_batch(offset)? {
            Some(b) => seg.read_batch(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the configuration; takes effect at once (new segments use the new index
    /// interval, retention and compaction settings apply at their next run).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Kafka's DeleteRecords: moves the log start offset to `offset` (`-1`: the high
    /// watermark). Fails with `OffsetOutOfRange` if `offset` is above the high watermark or
    /// below `-1`; an offset at or below the current log start is a no-op. The new start is
    /// fsynced before returning. Returns the new low watermark (the log start offset).
    pub fn delete_records(&mut self, offset: i64) -> Result<i64, StorageError> {
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if offset < -1 || target > hw {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        if target <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        checkpoint::write_offset(&self.dir, checkpoint::LOG_START_OFFSET_FILE, target)?;
        self.advance_log_start(target)?;
        tracing::info!(dir = %self.dir.display(), log_start_offset = target, "incremented log start offset (DeleteRecords)");
        Ok(target)
    }

    /// Kafka's `updateLogStartOffset` + `onLogStartOffsetIncremented`: the high watermark is
    /// never below the log start offset.
    fn advance_log_start(&mut self, offset: i64) -> Result<(), StorageError> {
        if offset <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = offset;
        if self.high_watermark < offset {
            self.set_high_watermark(offset);
        }
        if self.epochs.truncate_from_start(offset) {
            self.epochs.persist(&self.dir)?;
        }
        Ok(())
    }

    /// Kafka's `deleteOldSegments`: deletes whole segments from the oldest, first those
    /// breaching `retention.ms` (newest record older than `now_ms - retention_ms`) and
    /// `retention.bytes` (while the log is larger) when `cleanup_delete`, then (always) those
    /// wholly below the log start offset. As in Kafka, only segments wholly below the high
    /// watermark are deleted (so the log start offset never passes it), and a non-empty
    /// active segment that must go is rolled first, so the log always keeps an (empty)
    /// active segment. Deleted files are renamed `.deleted` and removed by
    /// [`Log::purge_deleted`] after `file_delete_delay_ms` (or at the next open).
    pub fn delete_old_segments(&mut self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        let mut outcome = RetentionOutcome::default();
        if self.config.cleanup_delete {
            if self.config.retention_ms >= 0 {
                let limit = self.config.retention_ms;
                let n =
                    self.deletable(|seg, _| now_ms.saturating_sub(seg.largest_timestamp()) > limit);
                outcome.by_time =
                    self.delete_segments(n, DeletionReason::RetentionTime, now_ms, &mut outcome)?;
            }
            if self.config.retention_bytes >= 0 {
                let mut diff = self.size_bytes() as i64 - self.config.retention_bytes;
                let n = self.deletable(|seg, _| {
                    if diff - seg.size as i64 >= 0 {
                        diff -= seg.size as i64;
                        true
                    } else {
                        false
                    }
                });
                outcome.by_size =
                    self.delete_segments(n, DeletionReason::RetentionSize, now_ms, &mut outcome)?;
            }
        }
        let start = self.log_start_offset;
        let n = self.deletable(|_, next| next.is_some_and(|b| b <= start));
        outcome.by_log_start =
            self.delete_segments(n, DeletionReason::LogStart, now_ms, &mut outcome)?;
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// How many segments from the oldest satisfy `pred(segment, next segment's base)`, never
    /// counting an empty active segment nor one with offsets at or above the high watermark.
    fn deletable(&self, mut pred: impl FnMut(&Segment, Option<i64>) -> bool) -> usize {
        let n = self.segments.len();
        let log_end = self.log_end_offset();
        let mut count = 0;
        while count < n {
            let seg = &self.segments[count];
            let next = self.segments.get(count + 1).map(|s| s.base_offset);
            let upper = next.unwrap_or(log_end);
            if (next.is_none() && seg.size == 0) || self.high_watermark < upper || !pred(seg, next)
            {
                break;
            }
            count += 1;
        }
        count
    }

    /// Deletes the `count` oldest segments (rolling first if that is all of them).
    fn delete_segments(
        &mut self,
        count: usize,
        reason: DeletionReason,
        now_ms: i64,
        outcome: &mut RetentionOutcome,
    ) -> Result<usize, StorageError> {
        if count == 0 {
            return Ok(0);
        }
        if count >= self.segments.len() {
            self.roll()?;
        }
        let due = now_ms.saturating_add(self.config.file_delete_delay_ms.max(0));
        let removed: Vec<Segment> = self.segments.drain(..count).collect();
        let mut files = Vec::new();
        for seg in &removed {
            match reason {
                DeletionReason::RetentionTime => tracing::info!(
                    dir = %self.dir.display(),
                    segment = %seg.log_path.display(),
                    largest_timestamp = seg.largest_timestamp(),
                    retention_ms = self.config.retention_ms,
                    "Deleting segment due to retention time {}ms breach", self.config.retention_ms
                ),
                DeletionReason::RetentionSize => tracing::info!(
                    dir = %self.dir.display(),
                    segment = %seg.log_path.display(),
                    size = seg.size,
                    retention_bytes = self.config.retention_bytes,
                    "Deleting segment due to retention size {} breach", self.config.retention_bytes
                ),
                DeletionReason::LogStart => tracing::info!(
                    dir = %self.dir.display(),
                    segment = %seg.log_path.display(),
                    log_start_offset = self.log_start_offset,
                    "Deleting segment due to log start offset {} breach", self.log_start_offset
                ),
            }
            for path in seg.paths() {
                let mut target = path.clone().into_os_string();
                target.push(".");
                target.push(segment::DELETED_SUFFIX);
                let target = PathBuf::from(target);
                match std::fs::rename(&path, &target) {
                    Ok(()) => files.push(target),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StorageError::io(&path, e)),
                }
            }
            outcome.deleted_segments += 1;
            outcome.deleted_bytes += seg.size;
            outcome.deleted_base_offsets.push(seg.base_offset);
        }
        drop(removed);
        sync_dir(&self.dir)?;
        self.pending_deletes.push((due, files));
        let first_base = self.segments.first().map_or(0, |s| s.base_offset);
        self.advance_log_start(first_base)?;
        Ok(count)
    }

    /// Physically removes the files of deleted segments whose `file.delete.delay.ms` has
    /// passed. Returns how many files were removed.
    pub fn purge_deleted(&mut self, now_ms: i64) -> Result<usize, StorageError> {
        let mut removed = 0;
        let mut keep = Vec::new();
        for (due, files) in std::mem::take(&mut self.pending_deletes) {
            if due > now_ms {
                keep.push((due, files));
                continue;
            }
            for f in files {
                cleaner::remove_if_exists(&f)?;
                removed += 1;
            }
        }
        self.pending_deletes = keep;
        Ok(removed)
    }

    /// Rolls a non-empty active segment whose first batch is older than `segment.ms`
    /// (Kafka's time-based roll, checked periodically instead of only on append).
    pub fn roll_if_due(&mut self, now_ms: i64) -> Result<bool, StorageError> {
        let segment_ms = self.config.segment_ms;
        let active = self.active()?;
        if active.size == 0 || active.time_waited_for_roll(now_ms, now_ms)? <= segment_ms {
            return Ok(false);
        }
        self.roll()?;
        Ok(true)
    }

    /// Kafka's OffsetForLeaderEpoch answer from the leader-epoch cache: the largest epoch
    /// `<= epoch` and its end offset (the next epoch's start offset, or the log end offset
    /// for the latest epoch). `None` means `UNDEFINED_EPOCH`/`UNDEFINED_EPOCH_OFFSET`
    /// (answer `-1, -1`): `epoch` is `< 0`, newer than the latest epoch, or no epoch is known.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch cache (`(epoch, start offset)` entries).
    pub fn leader_epochs(&self) -> &[crate::epoch::EpochEntry] {
        self.epochs.entries()
    }

    /// The cleaner's first dirty offset, clamped to the log.
    fn first_dirty_offset(&self) -> i64 {
        let start = self.log_start_offset;
        match self.cleaner_checkpoint {
            Some(o) if o >= start && o <= self.log_end_offset() => o,
            _ => start,
        }
    }

    /// Phase 1 of compaction (cheap, under the partition lock): whether the log should be
    /// cleaned now, and if so the plan. Cleanable when `cleanup_compact` and, over the sealed
    /// segments older than `min_compaction_lag_ms`, the dirty ratio exceeds
    /// `min_cleanable_dirty_ratio` or a dirty segment's first batch is older than
    /// `max_compaction_lag_ms`, or a kept tombstone's delete horizon has passed. The
    /// segment holding the last stable offset and those after it are never cleaned.
    pub fn prepare_clean(&mut self, now_ms: i64) -> Option<CleanPlan> {
        if !self.config.cleanup_compact || self.segments.len() < 2 {
            return None;
        }
        let n = self.segments.len();
        let active_idx = n - 1;
        let log_start = self.log_start_offset;
        let first_dirty = self.first_dirty_offset();
        let start_idx = self
            .segments
            .partition_point(|s| s.base_offset <= log_start)
            .saturating_sub(1);
        let dirty_idx = self
            .segments
            .partition_point(|s| s.base_offset <= first_dirty)
            .saturating_sub(1)
            .max(start_idx);
        // The first segment that may not be cleaned: the active one, or the first one with
        // records newer than min.compaction.lag.ms.
        let mut uncleanable_idx = active_idx;
        let min_lag = self.config.min_compaction_lag_ms;
        if min_lag > 0 {
            let until = now_ms.saturating_sub(min_lag);
            if let Some(i) = (dirty_idx..active_idx).find(|&i| {
                let ts = self.segments[i].largest_timestamp();
                ts > until
            }) {
                uncleanable_idx = i;
            }
        }
        // Kafka's firstUncleanableDirtyOffset also stops at the last stable offset (so at
        // the high watermark and the first unstable offset): the segment holding it is not
        // cleaned.
        let lso = self.last_stable_offset();
        let idx = self
            .segments
            .partition_point(|s| s.base_offset <= lso)
            .saturating_sub(1);
        uncleanable_idx = uncleanable_idx.min(idx);
        let size = |r: std::ops::Range<usize>| -> u64 {
            self.segments
                .get(r)
                .map_or(0, |s| s.iter().map(|s| s.size).sum())
        };
        let clean_bytes = size(start_idx..dirty_idx.min(uncleanable_idx));
        let dirty_bytes = if dirty_idx < uncleanable_idx {
            size(dirty_idx..uncleanable_idx)
        } else {
            0
        };
        let total = clean_bytes + dirty_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let max_lag = self.config.max_compaction_lag_ms.max(0);
        let mut need_now = false;
        if dirty_bytes > 0 && max_lag < i64::MAX {
            let until = now_ms.saturating_sub(max_lag);
            for i in dirty_idx..active_idx {
                match self.segments[i].first_batch_timestamp() {
                    Ok(Some(ts)) if ts > 0 && ts < until => {
                        need_now = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(dir = %self.dir.display(), error = %e, "cannot read first batch timestamp");
                    }
                }
            }
        }
        let horizon_due = uncleanable_idx > start_idx
            && self.earliest_delete_horizon.is_some_and(|h| now_ms >= h);
        let cleanable = (dirty_bytes > 0
            && (need_now || ratio > self.config.min_cleanable_dirty_ratio))
            || horizon_due;
        if !cleanable || uncleanable_idx <= start_idx {
            return None;
        }
        let segments: Vec<PlanSegment> = (start_idx..uncleanable_idx)
            .map(|i| {
                let s = &self.segments[i];
                PlanSegment {
                    base: s.base_offset,
                    next_base: self.segments[i + 1].base_offset,
                    file: Arc::clone(&s.log),
                    path: s.log_path.clone(),
                    size: s.size,
                }
            })
            .collect();
        let producer_last_offsets = self.producers.last_data_offsets();
        Some(CleanPlan {
            dir: self.dir.clone(),
            dirty_from: dirty_idx.saturating_sub(start_idx).min(segments.len()),
            segments,
            first_dirty_offset: first_dirty,
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            index_interval_bytes: self.config.index_interval_bytes,
            producer_last_offsets,
            max_map_bytes: cleaner::DEFAULT_OFFSET_MAP_BYTES,
            dirty_ratio: ratio,
            generation: self.generation,
        })
    }

    /// Phase 3 of compaction (under the partition lock): swaps the cleaned segments in if
    /// every segment of the plan is still part of the log; otherwise discards the output.
    pub fn commit_clean(&mut self, out: CleanOutput) -> Result<CleanStats, StorageError> {
        let mut stats = out.stats.clone();
        let present = out.dir == self.dir
            && out.generation == self.generation
            && out.segments.iter().all(|(base, file, _)| {
                self.segments
                    .iter()
                    .any(|s| s.base_offset == *base && Arc::ptr_eq(&s.log, file))
            });
        if !present {
            tracing::info!(dir = %self.dir.display(), "discarding compaction output: the log changed meanwhile");
            out.discard()?;
            stats.committed = false;
            return Ok(stats);
        }
        for (base, _, written) in &out.segments {
            if !*written {
                continue;
            }
            self.swap_cleaned(*base)?;
        }
        sync_dir(&self.dir)?;
        checkpoint::write_offset(&self.dir, checkpoint::CLEANER_OFFSET_FILE, out.end_offset)?;
        self.cleaner_checkpoint = Some(out.end_offset);
        self.earliest_delete_horizon = out.earliest_delete_horizon;
        stats.committed = true;
        Ok(stats)
    }

    /// Swaps `<base>.log.cleaned` (and its indexes) in place of segment `base`.
    fn swap_cleaned(&mut self, base: i64) -> Result<(), StorageError> {
        let idx = self
            .segments
            .iter()
            .position(|s| s.base_offset == base)
            .ok_or_else(|| StorageError::CorruptBatch(format!("segment {base} vanished")))?;
        let next_base = self.segments.get(idx + 1).map(|s| s.base_offset);
        let dir = self.dir.clone();
        let log_path = dir.join(segment::file_name(base, segment::LOG_SUFFIX));
        let cleaned = |ext: &str| cleaner::suffixed(&dir, base, ext, segment::CLEANED_SUFFIX);
        let swap = cleaner::suffixed(&dir, base, segment::LOG_SUFFIX, segment::SWAP_SUFFIX);
        // 1. Commit point: the cleaned log becomes `.swap` (open finishes the swap).
        std::fs::rename(cleaned(segment::LOG_SUFFIX), &swap).at(&swap)?;
        sync_dir(&dir)?;
        // 2. Old indexes go; 3. the new log replaces the old one.
        for ext in [segment::INDEX_SUFFIX, segment::TIME_INDEX_SUFFIX] {
            cleaner::remove_if_exists(&dir.join(segment::file_name(base, ext)))?;
        }
        std::fs::rename(&swap, &log_path).at(&log_path)?;
        sync_dir(&dir)?;
        // 4. New indexes into place (missing ones would be rebuilt at open).
        for ext in [segment::INDEX_SUFFIX, segment::TIME_INDEX_SUFFIX] {
            let target = dir.join(segment::file_name(base, ext));
            std::fs::rename(cleaned(ext), &target).at(&target)?;
        }
        let mut report = RecoveryReport::default();
        let mut seg = Segment::open(
            &dir,
            base,
            next_base,
            false,
            self.config.index_interval_bytes,
            self.segments[idx].created_ms,
            &mut report,
        )?;
        seg.seal();
        // Markers are kept by compaction: the aborted transactions stay those of the old
        // segment (its `.txnindex` file was not touched).
        let old_txns = self.segments[idx].txn_index.entries().to_vec();
        if seg.txn_rebuild_pending || seg.txn_index.entries() != old_txns.as_slice() {
            seg.txn_index.reset(old_txns)?;
            seg.txn_rebuild_pending = false;
        }
        self.segments[idx] = seg;
        Ok(())
    }

    /// fsyncs the active segment's `.log` and indexes.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.active()?.flush()?;
        self.unflushed_messages = 0;
        if self.epochs_unsynced {
            self.epochs.persist(&self.dir)?;
            self.epochs_unsynced = false;
        }
        Ok(())
    }

    /// Flushes, writes a producer-state snapshot and trims/syncs the index files.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.active()?.trim()?;
        self.flush()?;
        let log_end = self.log_end_offset();
        let active_base = self.active()?.base_offset;
        self.producers.write_snapshot(&self.dir, log_end)?;
        producer::retain_snapshots(&self.dir, SNAPSHOTS_TO_KEEP, log_end, Some(active_base))?;
        sync_dir(&self.dir)
    }

    /// Removes the whole partition directory: renames it to `<dir>.<unique>-delete`, then
    /// deletes it. Open [`FileRegion`]s stay readable.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        let now_ms = self.clock.now_ms();
        drop(self);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "log".to_string());
        let sequence = DELETE_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let unique = format!("{now_ms:x}{:x}{sequence:x}", std::process::id());
        let target = dir.with_file_name(format!("{name}.{unique}-delete"));
        std::fs::rename(&dir, &target).at(&dir)?;
        if let Some(parent) = target.parent() {
            if !parent.as_os_str().is_empty() {
                sync_dir(parent)?;
            }
        }
        std::fs::remove_dir_all(&target).at(&target)
    }
}

/// Replays the producer fields of every batch with base offset `>= from`, markers
/// included, and rewrites the `.txnindex` of the segments whose index must be rebuilt.
fn replay(
    segments: &mut [Segment],
    producers: &mut ProducerStateManager,
    from: i64,
) -> Result<(), StorageError> {
    for seg in segments.iter_mut() {
        if seg.next_offset <= from {
            if seg.txn_rebuild_pending {
                seg.txn_index.reset(Vec::new())?;
                seg.txn_rebuild_pending = false;
            }
            continue;
        }
        let rebuilt = replay_segment(seg, producers, from)?;
        if seg.txn_rebuild_pending {
            tracing::info!(segment = %seg.log_path.display(), entries = rebuilt.len(), "rebuilt the transaction index");
            seg.txn_index.reset(rebuilt)?;
            seg.txn_rebuild_pending = false;
        }
    }
    Ok(())
}

/// Replays one segment; returns the aborted transactions whose markers it holds (from
/// `from` on).
fn replay_segment(
    seg: &Segment,
    producers: &mut ProducerStateManager,
    from: i64,
) -> Result<Vec<AbortedTxnEntry>, StorageError> {
    let mut aborted = Vec::new();
    {
        let start = if from > seg.base_offset {
            match seg.find_batch(from)? {
                Some(b) => b.position,
                None => return Ok(aborted),
            }
        } else {
            0
        };
        let mut scanner = seg.scanner(start);
        while let Some(b) = scanner.next_batch()? {
            let h = b.header;
            if h.base_offset < from || h.producer_id < 0 {
                continue;
            }
            if !h.is_control() {
                producers.update(&h, h.base_offset, h.last_offset());
                continue;
            }
            if h.records_count == 0 {
                // A control batch emptied by compaction: nothing to replay.
                continue;
            }
            let bytes = seg.read_batch(&b)?.bytes;
            let (commit, coordinator_epoch) = match batch::control_marker(&bytes) {
                Ok((batch::CONTROL_TYPE_COMMIT, e)) => (true, e),
                Ok((batch::CONTROL_TYPE_ABORT, e)) => (false, e),
                Ok((other, _)) => {
                    tracing::warn!(segment = %seg.log_path.display(), offset = h.base_offset, control_type = other, "ignoring a control batch of unknown type");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(segment = %seg.log_path.display(), offset = h.base_offset, error = %e, "ignoring an unreadable control batch");
                    continue;
                }
            };
            let completed = producers.complete_txn(
                h.producer_id,
                h.producer_epoch,
                coordinator_epoch,
                h.base_offset,
                commit,
            );
            if let Some(txn) = completed.filter(|t| t.aborted) {
                aborted.push(AbortedTxnEntry {
                    producer_id: txn.producer_id,
                    first_offset: txn.first_offset,
                    last_offset: txn.last_offset,
                    last_stable_offset: producers.last_stable_offset_after(&txn),
                });
            }
        }
    }
    Ok(aborted)
}

#[cfg(test)]
mod tests {
    use super::parse_offset_file_name;

    #[test]
    fn file_names() {
        assert_eq!(
            parse_offset_file_name("00000000000000000042.log", "log"),
            Some(42)
        );
        assert_eq!(parse_offset_file_name("42.log", "log"), None);
        assert_eq!(
            parse_offset_file_name("00000000000000000042.index", "log"),
            None
        );
        assert_eq!(
            parse_offset_file_name("0000000000000000004x.log", "log"),
            None
        );
    }
}
