//! The log cleaner (Kafka's `LogCleaner`/`Cleaner`): compaction of `cleanup.policy=compact`
//! logs in three phases, so that the partition lock is held only for the cheap parts.
//!
//! 1. [`Log::prepare_clean`](crate::Log::prepare_clean) (under the lock): decides whether the
//!    log is cleanable and captures the sealed segments to rewrite (their files are
//!    immutable, so the plan holds `Arc<File>`s of them).
//! 2. [`CleanPlan::execute`] (no lock): builds the key → latest offset map over the dirty
//!    range, then rewrites every segment of the plan into `<base>.log.cleaned` (plus
//!    `.index.cleaned` / `.timeindex.cleaned`), all fsynced.
//! 3. [`Log::commit_clean`](crate::Log::commit_clean) (under the lock): if the segments of
//!    the plan are all still there, swaps the cleaned files in, oldest segment first:
//!    `.log.cleaned` → `.log.swap`, old indexes removed, `.log.swap` → `.log`, indexes
//!    renamed into place. [`Log::open`](crate::Log::open) finishes a swap that was
//!    interrupted (`.log.swap` present) and deletes leftover `.cleaned` files, so a crash at
//!    any point leaves either the old or the new segment, never a mix within a segment, and
//!    swapping oldest first guarantees that a record is only gone once every segment
//!    holding a newer record of its key is in place.
//!
//! Retention rules (Kafka 4.x): a record is kept if it has a key, it is the latest record of
//! that key (offset ≥ the map's), and it has a value or it is a tombstone whose batch's delete
//! horizon has not passed. The first cleaning that keeps a tombstone stamps the batch with a
//! delete horizon (`now + delete.retention.ms`, KIP-534), a later cleaning after that time
//! drops it. Keyless records are dropped, as Kafka does (compacted topics reject them at
//! produce time). Control batches (transaction markers) are kept unchanged, and so are the
//! segments' `.txnindex` files; aborted transactional records never enter the offset map;
//! the dirty range stops before any transaction that is still open (the plan already stops
//! at the segment holding the log's first unstable offset, like Kafka's
//! `firstUncleanableDirtyOffset`). A batch whose records all go away is removed, except the
//! last data batch of each producer, which is kept as an empty batch (header only) so that
//! idempotent producer state survives. Offsets are kept (`lastOffsetDelta` included); only
//! gaps appear.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT};
use crate::error::IoContext;
use crate::segment::{self, HeaderScanner, Segment};
use crate::StorageError;

/// One record as the cleaner needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// Absolute offset.
    pub offset: i64,
    /// Key bytes, `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Whether the value is null (a tombstone).
    pub value_is_null: bool,
    /// Record timestamp (create time, or the batch's log append time).
    pub timestamp: i64,
}

/// Decodes and re-encodes the records of a batch (implemented by the broker on top of the
/// protocol crate, which the storage crate cannot depend on).
pub trait RecordCodec: Send + Sync {
    /// The records of a whole RecordBatch v2 (decompressing as needed).
    fn records(&self, batch: &[u8]) -> Result<Vec<RecordMeta>, StorageError>;

    /// The batch with only the records whose offset satisfies `keep`, or `None` if none is
    /// kept. Same base offset, `lastOffsetDelta`, producer id/epoch, base sequence, partition
    /// leader epoch, attributes and compression codec; records keep their offset deltas and
    /// timestamps; CRC recomputed. With `delete_horizon_ms`, the delete-horizon attribute bit
    /// is set and `baseTimestamp` is the horizon (KIP-534); a batch that already has a
    /// horizon keeps it; otherwise `baseTimestamp` is the first kept record's timestamp.
    /// `maxTimestamp` is the largest kept timestamp (unchanged for LogAppendTime batches).
    fn rebuild(
        &self,
        batch: &[u8],
        keep: &dyn Fn(i64) -> bool,
        delete_horizon_ms: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StorageError>;
}

/// Default cap of the in-memory offset map (Kafka's `log.cleaner.dedupe.buffer.size`).
pub const DEFAULT_OFFSET_MAP_BYTES: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct PlanSegment {
    pub base: i64,
    pub next_base: i64,
    pub file: Arc<File>,
    pub path: PathBuf,
    pub size: u64,
}

/// What to clean, captured by [`Log::prepare_clean`](crate::Log::prepare_clean).
#[derive(Debug, Clone)]
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    /// Sealed segments to rewrite, oldest first (from the one holding the log start offset
    /// up to the first uncleanable offset).
    pub(crate) segments: Vec<PlanSegment>,
    /// Index into `segments` of the first dirty segment.
    pub(crate) dirty_from: usize,
    pub(crate) first_dirty_offset: i64,
    pub(crate) now_ms: i64,
    pub(crate) delete_retention_ms: i64,
    pub(crate) index_interval_bytes: u64,
    /// Last data offset of every known producer (their last batch is kept, possibly empty).
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    pub(crate) max_map_bytes: usize,
    /// Dirty bytes / (clean + dirty bytes) when the plan was made.
    pub dirty_ratio: f64,
    /// The log's truncation generation when the plan was made: a truncation in between
    /// makes [`Log::commit_clean`](crate::Log::commit_clean) discard the output.
    pub(crate) generation: u64,
}

/// The rewritten segments, ready for [`Log::commit_clean`](crate::Log::commit_clean).
#[derive(Debug)]
pub struct CleanOutput {
    pub(crate) dir: PathBuf,
    /// Every segment of the (possibly shortened) plan with its file at plan time, and
    /// whether a `.cleaned` replacement was written (unchanged segments are not rewritten).
    pub(crate) segments: Vec<(i64, Arc<File>, bool)>,
    /// The new first dirty offset (end of the cleaned range).
    pub(crate) end_offset: i64,
    /// Earliest delete horizon of a kept tombstone, for a later clean to remove it.
    pub(crate) earliest_delete_horizon: Option<i64>,
    /// The plan's truncation generation.
    pub(crate) generation: u64,
    /// Statistics (finalised by commit).
    pub stats: CleanStats,
}

/// Statistics of one cleaning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CleanStats {
    /// Whether the cleaned segments were swapped in (false: the log changed meanwhile).
    pub committed: bool,
    /// First dirty offset before the cleaning.
    pub first_dirty_offset: i64,
    /// End of the cleaned range (the next first dirty offset).
    pub end_offset: i64,
    /// Segments examined.
    pub segments: usize,
    /// Segments rewritten (the others had nothing to remove).
    pub segments_rewritten: usize,
    /// Distinct keys in the offset map.
    pub map_keys: usize,
    /// Bytes read (map building + rewriting).
    pub bytes_read: u64,
    /// Size of the cleaned range before.
    pub bytes_before: u64,
    /// Size of the cleaned range after.
    pub bytes_after: u64,
    /// Records read while rewriting.
    pub records_read: u64,
    /// Records removed.
    pub records_removed: u64,
    /// Tombstones removed (their delete horizon had passed).
    pub tombstones_removed: u64,
    /// Whole batches removed.
    pub batches_removed: u64,
    /// Dirty ratio when the plan was made.
    pub dirty_ratio: f64,
}

/// Path of a segment file with an extra suffix (`<base>.log.cleaned`).
pub(crate) fn suffixed(dir: &Path, base: i64, ext: &str, extra: &str) -> PathBuf {
    dir.join(format!("{}.{extra}", segment::file_name(base, ext)))
}

/// Removes a file, ignoring "not found".
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// Removes the `.cleaned` files of segment `base`.
pub(crate) fn remove_cleaned(dir: &Path, base: i64) -> Result<(), StorageError> {
    for ext in [
        segment::LOG_SUFFIX,
        segment::INDEX_SUFFIX,
        segment::TIME_INDEX_SUFFIX,
    ] {
        remove_if_exists(&suffixed(dir, base, ext, segment::CLEANED_SUFFIX))?;
    }
    Ok(())
}

/// Iterates over the whole batches of a sealed segment file, reading each one.
struct BatchReader<'a> {
    scanner: HeaderScanner<'a>,
    file: &'a File,
    path: &'a Path,
}

impl<'a> BatchReader<'a> {
    fn new(seg: &'a PlanSegment) -> Self {
        BatchReader {
            scanner: HeaderScanner::new(&seg.file, &seg.path, 0, seg.size),
            file: &seg.file,
            path: &seg.path,
        }
    }

    fn next(&mut self, buf: &mut Vec<u8>) -> Result<Option<BatchHeader>, StorageError> {
        let Some(b) = self.scanner.next_batch()? else {
            return Ok(None);
        };
        buf.resize(b.header.total_size(), 0);
        self.file.read_exact_at(buf, b.position).at(self.path)?;
        Ok(Some(b.header))
    }
}

fn control_type(codec: &dyn RecordCodec, bytes: &[u8]) -> Result<Option<i16>, StorageError> {
    Ok(codec
        .records(bytes)?
        .first()
        .and_then(|r| r.key.as_deref())
        .and_then(|k| k.get(2..4))
        .map(|t| i16::from_be_bytes([t[0], t[1]])))
}

/// A transaction seen in the dirty range, waiting for its marker: its first offset and its
/// keyed records.
type PendingTxn = (i64, Vec<(Vec<u8>, i64)>);

/// The key → latest offset map.
#[derive(Default)]
struct OffsetMap {
    map: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl OffsetMap {
    /// Approximate memory per entry besides the key bytes.
    const ENTRY_OVERHEAD: usize = 48;

    fn put(&mut self, key: Vec<u8>, offset: i64) {
        let len = key.len();
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if *e.get() < offset {
                    e.insert(offset);
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(offset);
                self.bytes += len + Self::ENTRY_OVERHEAD;
            }
        }
    }

    fn get(&self, key: &[u8]) -> i64 {
        self.map.get(key).copied().unwrap_or(-1)
    }
}

impl CleanPlan {
    /// Caps the memory of the offset map (`log.cleaner.dedupe.buffer.size`); when it fills
    /// up, the dirty range is cut at a segment boundary and the rest is cleaned next time.
    pub fn set_offset_map_memory(&mut self, bytes: usize) {
        self.max_map_bytes = bytes.max(1);
    }

    /// The first dirty offset.
    pub fn first_dirty_offset(&self) -> i64 {
        self.first_dirty_offset
    }

    /// Base offsets of the segments the plan covers.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base).collect()
    }

    /// Builds the offset map over the dirty segments. Returns the map and the number of
    /// plan segments that may be cleaned (the dirty range may be cut short by the map's
    /// capacity or by a transaction still open).
    fn build_offset_map(
        &self,
        codec: &dyn RecordCodec,
        throttle: &mut dyn FnMut(u64),
        stats: &mut CleanStats,
    ) -> Result<(OffsetMap, usize), StorageError> {
        let mut map = OffsetMap::default();
        // Transactional records waiting for their marker, per producer id.
        let mut pending: HashMap<i64, PendingTxn> = HashMap::new();
        let mut end = self.segments.len();
        let mut buf = Vec::new();
        for (i, seg) in self.segments.iter().enumerate().skip(self.dirty_from) {
            if i > self.dirty_from && map.bytes >= self.max_map_bytes {
                end = i;
                break;
            }
            let mut reader = BatchReader::new(seg);
            while let Some(h) = reader.next(&mut buf)? {
                throttle(buf.len() as u64);
                stats.bytes_read += buf.len() as u64;
                if h.last_offset() < self.first_dirty_offset {
                    continue;
                }
                if h.is_control() {
                    let kind = control_type(codec, &buf)?;
                    if let Some((_, recs)) = pending.remove(&h.producer_id) {
                        if kind == Some(CONTROL_TYPE_COMMIT) {
                            for (k, o) in recs {
                                map.put(k, o);
                            }
                        } else if kind != Some(CONTROL_TYPE_ABORT) {
                            tracing::warn!(dir = %self.dir.display(), offset = h.base_offset, "unknown control record type; treating the transaction as aborted");
                        }
                    }
                    continue;
                }
                let records = codec.records(&buf)?;
                if h.is_transactional() {
                    let entry = pending
                        .entry(h.producer_id)
                        .or_insert_with(|| (h.base_offset, Vec::new()));
                    entry.1.extend(
                        records
                            .into_iter()
                            .filter_map(|r| r.key.map(|k| (k, r.offset))),
                    );
                } else {
                    for r in records {
                        if let Some(k) = r.key {
                            map.put(k, r.offset);
                        }
                    }
                }
            }
        }
        if let Some(open_start) = pending.values().map(|(start, _)| *start).min() {
            // Never clean a segment holding (or following) an undecided transaction.
            let cut = self.segments.partition_point(|s| s.next_base <= open_start);
            end = end.min(cut);
        }
        Ok((map, end))
    }

    /// Builds the offset map and writes the cleaned segments (no lock needed: the plan's
    /// segments are sealed and immutable). `throttle(bytes)` is called after every read or
    /// write so the caller can bound the I/O rate.
    pub fn execute(
        &self,
        codec: &dyn RecordCodec,
        throttle: &mut dyn FnMut(u64),
    ) -> Result<CleanOutput, StorageError> {
        let mut stats = CleanStats {
            first_dirty_offset: self.first_dirty_offset,
            dirty_ratio: self.dirty_ratio,
            ..CleanStats::default()
        };
        let (map, end) = self.build_offset_map(codec, throttle, &mut stats)?;
        stats.map_keys = map.map.len();
        let segments = &self.segments[..end];
        let mut out = CleanOutput {
            dir: self.dir.clone(),
            segments: Vec::with_capacity(segments.len()),
            end_offset: segments
                .last()
                .map_or(self.first_dirty_offset, |s| s.next_base),
            earliest_delete_horizon: None,
            generation: self.generation,
            stats,
        };
        let result = (|| {
            for seg in segments {
                let written = self.clean_segment(seg, codec, &map, throttle, &mut out)?;
                out.segments
                    .push((seg.base, Arc::clone(&seg.file), written));
            }
            Ok(())
        })();
        if let Err(e) = result {
            for seg in segments {
                let _ = remove_cleaned(&self.dir, seg.base);
            }
            return Err(e);
        }
        out.stats.segments = segments.len();
        out.stats.end_offset = out.end_offset;
        Ok(out)
    }

    /// Rewrites one segment into `<base>.log.cleaned`; returns whether it changed (if not,
    /// the `.cleaned` file is removed and the segment stays as it is).
    fn clean_segment(
        &self,
        seg: &PlanSegment,
        codec: &dyn RecordCodec,
        map: &OffsetMap,
        throttle: &mut dyn FnMut(u64),
        out: &mut CleanOutput,
    ) -> Result<bool, StorageError> {
        let path = suffixed(
            &self.dir,
            seg.base,
            segment::LOG_SUFFIX,
            segment::CLEANED_SUFFIX,
        );
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .at(&path)?;
        let mut writer = BufWriter::with_capacity(256 * 1024, file);
        let mut changed = false;
        let mut written: u64 = 0;
        let mut buf = Vec::new();
        let mut reader = BatchReader::new(seg);
        let stats = &mut out.stats;
        stats.bytes_before += seg.size;
        while let Some(h) = reader.next(&mut buf)? {
            throttle(buf.len() as u64);
            stats.bytes_read += buf.len() as u64;
            let new = if h.is_control() {
                None
            } else {
                let records = codec.records(&buf)?;
                stats.records_read += records.len() as u64;
                let horizon = h.delete_horizon_ms();
                let retain_deletes = horizon.is_none_or(|t| self.now_ms < t);
                let mut keep = Vec::with_capacity(records.len());
                let mut kept_tombstone = false;
                for r in &records {
                    let Some(key) = &r.key else { continue };
                    if r.offset < map.get(key) {
                        continue;
                    }
                    if r.value_is_null {
                        if !retain_deletes {
                            stats.tombstones_removed += 1;
                            continue;
                        }
                        kept_tombstone = true;
                    }
                    keep.push(r.offset);
                }
                stats.records_removed += (records.len() - keep.len()) as u64;
                let set_horizon = (kept_tombstone && horizon.is_none())
                    .then(|| self.now_ms.saturating_add(self.delete_retention_ms));
                if kept_tombstone {
                    let t = set_horizon.or(horizon).unwrap_or(i64::MAX);
                    out.earliest_delete_horizon =
                        Some(out.earliest_delete_horizon.map_or(t, |e| e.min(t)));
                }
                let rebuilt = if keep.is_empty() {
                    None
                } else if keep.len() == records.len() && set_horizon.is_none() {
                    Some(None)
                } else {
                    keep.sort_unstable();
                    let is_kept = |o: i64| keep.binary_search(&o).is_ok();
                    codec.rebuild(&buf, &is_kept, set_horizon)?.map(Some)
                };
                match rebuilt {
                    Some(None) => None,
                    Some(Some(bytes)) => Some(bytes),
                    None => {
                        let last_of_producer = h.producer_id >= 0
                            && self.producer_last_offsets.get(&h.producer_id)
                                == Some(&h.last_offset());
                        if last_of_producer {
                            if records.is_empty() {
                                None
                            } else {
                                Some(batch::empty_batch(&h))
                            }
                        } else {
                            stats.batches_removed += 1;
                            Some(Vec::new())
                        }
                    }
                }
            };
            let bytes: &[u8] = match &new {
                None => &buf,
                Some(b) => {
                    changed = true;
                    b
                }
            };
            if !bytes.is_empty() {
                writer.write_all(bytes).at(&path)?;
                throttle(bytes.len() as u64);
                written += bytes.len() as u64;
            }
        }
        let file = writer
            .into_inner()
            .map_err(|e| StorageError::io(&path, e.into_error()))?;
        if !changed {
            drop(file);
            remove_if_exists(&path)?;
            out.stats.bytes_after += seg.size;
            return Ok(false);
        }
        file.sync_all().at(&path)?;
        drop(file);
        Segment::index_cleaned(
            &self.dir,
            seg.base,
            Some(seg.next_base),
            self.index_interval_bytes,
            self.now_ms,
        )?;
        out.stats.bytes_after += written;
        out.stats.segments_rewritten += 1;
        Ok(true)
    }
}

impl CleanOutput {
    /// Removes the `.cleaned` files (the output is not going to be committed).
    pub fn discard(&self) -> Result<(), StorageError> {
        for (base, _, written) in &self.segments {
            if *written {
                remove_cleaned(&self.dir, *base)?;
            }
        }
        Ok(())
    }
}
