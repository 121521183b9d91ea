//! One log segment: a `.log` file of back-to-back record batches plus its offset, time and
//! aborted-transaction indexes (Kafka's `LogSegment`).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_LEN};
use crate::error::IoContext;
use crate::index::{Loaded, OffsetEntry, OffsetIndex, TimeEntry, TimeIndex};
use crate::txn_index::TxnIndex;
use crate::{BatchBytes, RecoveryReport, StorageError};

/// Extension of segment data files.
pub const LOG_SUFFIX: &str = "log";
/// Extension of offset index files.
pub const INDEX_SUFFIX: &str = "index";
/// Extension of time index files.
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
/// Extension of aborted-transaction index files.
pub const TXN_INDEX_SUFFIX: &str = "txnindex";

/// Chunk size used when scanning batch headers.
const SCAN_CHUNK: usize = 64 * 1024;
/// Buffer size used by the full (CRC-checking) recovery scan.
const RECOVERY_BUFFER: usize = 1024 * 1024;

/// `00000000000000000042.log` for base offset 42 and suffix `log`.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

/// A batch located in a segment file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedBatch {
    pub position: u64,
    pub header: BatchHeader,
}

/// Iterates over batch headers of a segment file between two positions, reading the file
/// in chunks (one `pread` per ~64 KiB of small batches rather than one per batch).
pub(crate) struct HeaderScanner<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
    last_size: u64,
}

impl<'a> HeaderScanner<'a> {
    pub fn new(file: &'a File, path: &'a Path, start: u64, end: u64) -> Self {
        HeaderScanner {
            file,
            path,
            pos: start,
            end,
            buf: Vec::new(),
            buf_start: 0,
            last_size: 0,
        }
    }

    /// The next batch header, `Ok(None)` at the end. Malformed data yields `CorruptBatch`.
    pub fn next_batch(&mut self) -> Result<Option<ScannedBatch>, StorageError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let remaining = self.end - self.pos;
        if remaining < HEADER_LEN as u64 {
            return Err(StorageError::CorruptBatch(format!(
                "{}: {remaining} trailing bytes at position {} are too short for a batch header",
                self.path.display(),
                self.pos
            )));
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || self.pos + HEADER_LEN as u64 > buf_end {
            // Large batches: fetch just the header; small ones: fetch a whole chunk.
            let want = if self.last_size > (SCAN_CHUNK / 4) as u64 {
                HEADER_LEN as u64
            } else {
                SCAN_CHUNK as u64
            };
            let want = want.min(remaining) as usize;
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, self.pos)
                .at(self.path)?;
            self.buf_start = self.pos;
        }
        let off = (self.pos - self.buf_start) as usize;
        let header = BatchHeader::parse(&self.buf[off..]).map_err(|e| {
            StorageError::CorruptBatch(format!(
                "{} at position {}: {e}",
                self.path.display(),
                self.pos
            ))
        })?;
        let size = header.total_size() as u64;
        if size > remaining {
            return Err(StorageError::CorruptBatch(format!(
                "{}: batch at position {} of {size} bytes extends past the end ({})",
                self.path.display(),
                self.pos,
                self.end
            )));
        }
        let position = self.pos;
        self.pos += size;
        self.last_size = size;
        Ok(Some(ScannedBatch { position, header }))
    }
}

/// Sequential reader over a file using positional reads (never touches the file cursor).
struct PosReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for PosReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Outcome of reading from one segment.
pub(crate) enum SegmentRead {
    /// No batch in this segment holds an offset >= the requested one.
    NotHere,
    /// A region of whole batches.
    Region { position: u64, len: u64 },
    /// The first batch alone exceeds `max_bytes` and `min_one_batch` was false.
    TooLarge,
    /// The first batch at or after the offset starts at or beyond the read's max offset.
    Capped,
}

/// One segment of the log.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    pub log_path: PathBuf,
    pub log: Arc<File>,
    /// Valid bytes in the `.log` file.
    pub size: u64,
    /// Last offset of the last batch + 1 (the base offset if empty).
    pub next_offset: i64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    /// Aborted transactions whose ABORT marker is in this segment.
    pub txn_index: TxnIndex,
    /// The `.txnindex` must be rebuilt by replaying the producer state over the segment
    /// (the segment was recovered or its indexes rebuilt; done by `Log::open`).
    pub txn_rebuild_pending: bool,
    bytes_since_last_index_entry: u64,
    index_interval_bytes: u64,
    /// Largest max timestamp of the segment and the base offset of the first batch with it.
    pub max_timestamp: Option<(i64, i64)>,
    /// Max timestamp of the first batch (Kafka's `rollingBasedTimestamp`), once known.
    first_batch_timestamp: Option<i64>,
    /// Time the segment was created or loaded (ms since the epoch, from the log's clock).
    pub created_ms: i64,
}

/// Suffix added to the files of a compacted segment while it is being written.
pub const CLEANED_SUFFIX: &str = "cleaned";
/// Suffix of a compacted `.log` whose swap into place has started.
pub const SWAP_SUFFIX: &str = "swap";
/// Suffix of the files of a segment deleted by retention, removed after a delay.
pub const DELETED_SUFFIX: &str = "deleted";

impl Segment {
    fn open_log_file(path: &Path, create: bool) -> Result<File, StorageError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)
            .at(path)
    }

    /// Creates a new empty segment (truncating any stale files of the same name) at time
    /// `now_ms`.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = Self::open_log_file(&log_path, true)?;
        let offset_index =
            OffsetIndex::create(dir.join(file_name(base_offset, INDEX_SUFFIX)), base_offset)?;
        let time_index = TimeIndex::create(
            dir.join(file_name(base_offset, TIME_INDEX_SUFFIX)),
            base_offset,
        )?;
        Ok(Segment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            txn_index: TxnIndex::empty(dir.join(file_name(base_offset, TXN_INDEX_SUFFIX))),
            txn_rebuild_pending: false,
            bytes_since_last_index_entry: 0,
            index_interval_bytes,
            max_timestamp: None,
            first_batch_timestamp: None,
            created_ms: now_ms,
        })
    }

    /// Opens a freshly written compacted `.log.cleaned` file of segment `base_offset`,
    /// verifies every batch (CRC, offsets) and writes its indexes as `.index.cleaned` and
    /// `.timeindex.cleaned`, all fsynced. Fails if the file is not entirely valid.
    pub fn index_cleaned(
        dir: &Path,
        base_offset: i64,
        next_base: Option<i64>,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let cleaned = |suffix: &str| {
            dir.join(format!(
                "{}.{CLEANED_SUFFIX}",
                file_name(base_offset, suffix)
            ))
        };
        let log_path = cleaned(LOG_SUFFIX);
        let log = Self::open_log_file(&log_path, false)?;
        let size = log.metadata().at(&log_path)?.len();
        let mut seg = Segment {
            base_offset,
            log_path: log_path.clone(),
            log: Arc::new(log),
            size,
            next_offset: base_offset,
            offset_index: OffsetIndex::empty(cleaned(INDEX_SUFFIX), base_offset),
            time_index: TimeIndex::empty(cleaned(TIME_INDEX_SUFFIX), base_offset),
            txn_index: TxnIndex::empty(cleaned(TXN_INDEX_SUFFIX)),
            txn_rebuild_pending: false,
            bytes_since_last_index_entry: 0,
            index_interval_bytes,
            max_timestamp: None,
            first_batch_timestamp: None,
            created_ms: now_ms,
        };
        let mut report = RecoveryReport::default();
        seg.rebuild(next_base, None, &mut report)?;
        if report.truncated_bytes > 0 {
            return Err(StorageError::CorruptBatch(format!(
                "compacted segment {} is invalid: {}",
                log_path.display(),
                report.reason.unwrap_or_default()
            )));
        }
        seg.log.sync_all().at(&log_path)
    }

    /// Max timestamp of the first batch (one read, then cached); `None` if empty.
    pub fn first_batch_timestamp(&mut self) -> Result<Option<i64>, StorageError> {
        if self.first_batch_timestamp.is_none() && self.size > 0 {
            if let Some(b) = self.scanner(0).next_batch()? {
                self.first_batch_timestamp = Some(b.header.max_timestamp);
            }
        }
        Ok(self.first_batch_timestamp)
    }

    /// Kafka's `LogSegment.timeWaitedForRoll`: `timestamp - first batch max timestamp`, or
    /// `now - creation time` when the first batch has no timestamp.
    pub fn time_waited_for_roll(
        &mut self,
        now_ms: i64,
        timestamp: i64,
    ) -> Result<i64, StorageError> {
        Ok(match self.first_batch_timestamp()? {
            Some(ts) if ts >= 0 => timestamp.saturating_sub(ts),
            _ => now_ms.saturating_sub(self.created_ms),
        })
    }

    /// Kafka's `LogSegment.largestTimestamp`: the max timestamp of its batches, or the
    /// file's modification time when it holds none.
    pub fn largest_timestamp(&self) -> i64 {
        match self.max_timestamp {
            Some((ts, _)) if ts >= 0 => ts,
            _ => self
                .log
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Paths of the `.log`, `.index`, `.timeindex` and `.txnindex` files (the last one may
    /// not exist).
    pub fn paths(&self) -> [PathBuf; 4] {
        [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ]
    }

    /// Opens an existing segment. With `recover`, the whole segment is scanned (CRC
    /// checked), truncated at the first invalid batch and its indexes rebuilt; otherwise
    /// the indexes are loaded and sanity-checked (and rebuilt if needed).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        next_base: Option<i64>,
        recover: bool,
        index_interval_bytes: u64,
        now_ms: i64,
        report: &mut RecoveryReport,
    ) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = Self::open_log_file(&log_path, false)?;
        let size = log.metadata().at(&log_path)?.len();
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let time_path = dir.join(file_name(base_offset, TIME_INDEX_SUFFIX));
        let txn_path = dir.join(file_name(base_offset, TXN_INDEX_SUFFIX));
        let mut seg = Segment {
            base_offset,
            log_path,
            log: Arc::new(log),
            size,
            next_offset: base_offset,
            offset_index: OffsetIndex::empty(index_path.clone(), base_offset),
            time_index: TimeIndex::empty(time_path.clone(), base_offset),
            txn_index: TxnIndex::empty(txn_path),
            txn_rebuild_pending: false,
            bytes_since_last_index_entry: 0,
            index_interval_bytes,
            max_timestamp: None,
            first_batch_timestamp: None,
            created_ms: now_ms,
        };
        if recover {
            seg.rebuild(next_base, None, report)?;
            report.recovered_segments += 1;
            return Ok(seg);
        }
        seg.open_indexes(next_base, report)?;
        if !seg.txn_rebuild_pending {
            let path = seg.txn_index.path().to_path_buf();
            match TxnIndex::load(path, base_offset, seg.next_offset)? {
                Ok(t) => seg.txn_index = t,
                Err(reason) => {
                    tracing::warn!(segment = %seg.log_path.display(), %reason, "rebuilding the transaction index");
                    seg.txn_rebuild_pending = true;
                }
            }
        }
        Ok(seg)
    }

    /// Loads and checks the offset and time indexes, rebuilding them if needed.
    fn open_indexes(
        &mut self,
        next_base: Option<i64>,
        report: &mut RecoveryReport,
    ) -> Result<(), StorageError> {
        let seg = self;
        let base_offset = seg.base_offset;
        let size = seg.size;
        let index_path = seg.offset_index.path().to_path_buf();
        let time_path = seg.time_index.path().to_path_buf();
        let oi = OffsetIndex::load(index_path, base_offset, size, next_base)?;
        let ti = TimeIndex::load(time_path, base_offset, next_base)?;
        match (oi, ti) {
            (Loaded::Ok(o), Loaded::Ok(t)) => {
                seg.offset_index = o;
                seg.time_index = t;
            }
            (Loaded::NeedsRebuild(reason), _) | (_, Loaded::NeedsRebuild(reason)) => {
                return seg.rebuild(next_base, Some(reason), report);
            }
        }
        if let Err(reason) = seg.tail_scan(next_base)? {
            seg.rebuild(next_base, Some(reason), report)?;
        }
        Ok(())
    }

    /// Validates the part of the segment after the last offset index entry and derives
    /// the next offset and max timestamp from it. `Ok(Err(reason))` if inconsistent.
    fn tail_scan(&mut self, next_base: Option<i64>) -> Result<Result<(), String>, StorageError> {
        let last_entry = self.offset_index.last();
        let (start_offset, start_pos) = match last_entry {
            Some(e) => (
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset)),
                u64::from(e.position),
            ),
            None => (self.base_offset, 0),
        };
        let mut max = self.time_index.last().map(|e| {
            (
                e.timestamp,
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset)),
            )
        });
        let mut next_offset = self.base_offset;
        let mut first = true;
        let mut scanner = HeaderScanner::new(&self.log, &self.log_path, start_pos, self.size);
        loop {
            let b = match scanner.next_batch() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(StorageError::CorruptBatch(m)) => return Ok(Err(m)),
                Err(e) => return Err(e),
            };
            let h = b.header;
            if first && last_entry.is_some() && h.base_offset != start_offset {
                return Ok(Err(format!(
                    "{}: index entry for offset {start_offset} points at a batch with base offset {}",
                    self.log_path.display(),
                    h.base_offset
                )));
            }
            if let Err(m) = check_batch_offsets(&h, next_offset, self.base_offset, next_base) {
                return Ok(Err(format!("{}: {m}", self.log_path.display())));
            }
            if max.is_none_or(|(t, _)| h.max_timestamp > t) {
                max = Some((h.max_timestamp, h.base_offset));
            }
            next_offset = h.last_offset() + 1;
            first = false;
        }
        if let Some(te) = self.time_index.last() {
            if self
                .base_offset
                .saturating_add(i64::from(te.relative_offset))
                >= next_offset
            {
                return Ok(Err(format!(
                    "{}: time index entry beyond the last batch",
                    self.log_path.display()
                )));
            }
        }
        self.next_offset = next_offset;
        self.max_timestamp = max;
        self.bytes_since_last_index_entry = self.size - start_pos;
        Ok(Ok(()))
    }

    /// Full scan of the `.log` (CRC checked): truncates at the first invalid batch and
    /// rebuilds both indexes. `index_problem` is why the indexes are rebuilt (None for
    /// unclean-shutdown recovery).
    fn rebuild(
        &mut self,
        next_base: Option<i64>,
        index_problem: Option<String>,
        report: &mut RecoveryReport,
    ) -> Result<(), StorageError> {
        if let Some(reason) = &index_problem {
            tracing::warn!(segment = %self.log_path.display(), %reason, "rebuilding segment indexes");
            if report.reason.is_none() {
                report.reason = Some(reason.clone());
            }
        }
        self.offset_index =
            OffsetIndex::empty(self.offset_index.path().to_path_buf(), self.base_offset);
        self.time_index = TimeIndex::empty(self.time_index.path().to_path_buf(), self.base_offset);
        self.txn_rebuild_pending = true;
        self.max_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        self.next_offset = self.base_offset;

        let file_len = self.log.metadata().at(&self.log_path)?.len();
        let log = Arc::clone(&self.log);
        let mut reader =
            BufReader::with_capacity(RECOVERY_BUFFER, PosReader { file: &log, pos: 0 });
        let mut valid_len: u64 = 0;
        let mut buf = vec![0u8; HEADER_LEN];
        let mut stop: Option<String> = None;
        while valid_len < file_len {
            if valid_len >= u64::from(u32::MAX) {
                stop = Some("segment larger than 4 GiB".to_string());
                break;
            }
            let remaining = file_len - valid_len;
            if remaining < HEADER_LEN as u64 {
                stop = Some(format!(
                    "{remaining} trailing bytes are too short for a batch header"
                ));
                break;
            }
            buf.resize(HEADER_LEN, 0);
            reader.read_exact(&mut buf).at(&self.log_path)?;
            if buf[..12].iter().all(|&b| b == 0) {
                stop = Some("zero-filled region (preallocated or torn write)".to_string());
                break;
            }
            let h = match BatchHeader::parse(&buf) {
                Ok(h) => h,
                Err(e) => {
                    stop = Some(e.to_string());
                    break;
                }
            };
            let size = h.total_size() as u64;
            if size > remaining {
                stop = Some(format!(
                    "batch of {size} bytes extends past the end of the file ({remaining} bytes left)"
                ));
                break;
            }
            buf.resize(size as usize, 0);
            reader
                .read_exact(&mut buf[HEADER_LEN..])
                .at(&self.log_path)?;
            if let Err(e) = batch::verify_crc(&buf) {
                stop = Some(e.to_string());
                break;
            }
            if let Err(m) = check_batch_offsets(&h, self.next_offset, self.base_offset, next_base) {
                stop = Some(m);
                break;
            }
            let (oe, te) = self.track_batch(valid_len, h.base_offset, size, h.max_timestamp);
            if let Some(e) = oe {
                self.offset_index.push(e);
            }
            if let Some(e) = te {
                self.time_index.push(e);
            }
            valid_len += size;
            self.next_offset = h.last_offset() + 1;
        }
        drop(reader);
        if let Some(reason) = stop {
            let truncated = file_len - valid_len;
            tracing::warn!(
                segment = %self.log_path.display(),
                truncated_bytes = truncated,
                position = valid_len,
                offset = self.next_offset,
                %reason,
                "truncating invalid data at the end of the segment"
            );
            self.log.set_len(valid_len).at(&self.log_path)?;
            self.log.sync_all().at(&self.log_path)?;
            report.truncated_bytes += truncated;
            if report.truncated_at_offset.is_none() {
                report.truncated_at_offset = Some(self.next_offset);
            }
            let reason = format!(
                "{}: truncated {truncated} bytes at position {valid_len} (offset {}): {reason}",
                self.log_path.display(),
                self.next_offset
            );
            match &mut report.reason {
                Some(r) => {
                    r.push_str("; ");
                    r.push_str(&reason);
                }
                None => report.reason = Some(reason),
            }
        }
        self.size = valid_len;
        self.offset_index.rewrite_file()?;
        self.time_index.rewrite_file()?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        report.rebuilt_indexes += 1;
        Ok(())
    }

    /// Updates the max timestamp and index cadence for a batch at `position`; returns
    /// the index entries to add (Kafka's `LogSegment.append` logic).
    fn track_batch(
        &mut self,
        position: u64,
        base_offset: i64,
        size: u64,
        max_timestamp: i64,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        if self.max_timestamp.is_none_or(|(t, _)| max_timestamp > t) {
            self.max_timestamp = Some((max_timestamp, base_offset));
        }
        let mut entries = (None, None);
        if self.bytes_since_last_index_entry > 0
            && self.bytes_since_last_index_entry >= self.index_interval_bytes
        {
            // Offsets and positions were validated to fit in u32 before calling.
            let rel = (base_offset - self.base_offset) as u32;
            entries.0 = Some(OffsetEntry {
                relative_offset: rel,
                position: position as u32,
            });
            if let Some((ts, off)) = self.max_timestamp {
                if ts > self.time_index.last_timestamp() {
                    entries.1 = Some(TimeEntry {
                        timestamp: ts,
                        relative_offset: (off - self.base_offset) as u32,
                    });
                }
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += size;
        entries
    }

    /// Whether a batch of `batch_len` bytes ending at `last_offset` must go to a new segment.
    pub fn should_roll(
        &self,
        batch_len: u64,
        last_offset: i64,
        segment_bytes: u64,
        max_index_bytes: u64,
    ) -> bool {
        // Offsets too far from the base (a follower appending past a compaction gap) need a
        // new segment even if this one is empty, as in Kafka.
        if last_offset.saturating_sub(self.base_offset) > i64::from(i32::MAX) {
            return true;
        }
        if self.size == 0 {
            return false;
        }
        let limit = segment_bytes.min(u64::from(u32::MAX));
        self.size.saturating_add(batch_len) > limit
            || (self.offset_index.len() as u64 + 1) * crate::index::OFFSET_ENTRY_SIZE as u64
                > max_index_bytes
            || (self.time_index.len() as u64 + 1) * crate::index::TIME_ENTRY_SIZE as u64
                > max_index_bytes
    }

    /// Appends a batch whose header (with the patched base offset) is `header`.
    pub fn append(&mut self, bytes: &[u8], header: &BatchHeader) -> Result<(), StorageError> {
        self.append_batches(bytes, &[(0, *header)])
    }

    /// Appends back-to-back batches with one write: `batches` holds each batch's position
    /// in `bytes` and its header, in order (offsets already validated by the caller).
    pub fn append_batches(
        &mut self,
        bytes: &[u8],
        batches: &[(usize, BatchHeader)],
    ) -> Result<(), StorageError> {
        let (Some((_, first)), Some((_, last))) = (batches.first(), batches.last()) else {
            return Ok(());
        };
        let position = self.size;
        if position == 0 {
            self.first_batch_timestamp = Some(first.max_timestamp);
        }
        self.log.write_all_at(bytes, position).at(&self.log_path)?;
        for (i, (at, h)) in batches.iter().enumerate() {
            let end = batches.get(i + 1).map_or(bytes.len(), |(next, _)| *next);
            let size = end.saturating_sub(*at) as u64;
            let (oe, te) =
                self.track_batch(position + *at as u64, h.base_offset, size, h.max_timestamp);
            if let Some(e) = oe {
                self.offset_index.append(e)?;
            }
            if let Some(e) = te {
                self.time_index.append(e)?;
            }
        }
        self.size += bytes.len() as u64;
        self.next_offset = last.last_offset() + 1;
        Ok(())
    }

    /// Kafka's `LogSegment.truncateTo`: removes every batch whose last offset is `>= offset`
    /// (a batch holding `offset` goes whole), with its offset, time and transaction index
    /// entries. Returns the number of bytes removed. The `.log` is cut (and fsynced) first:
    /// after a crash in between, the now dangling index entries make [`Segment::open`]
    /// rebuild the indexes (and the log replay the `.txnindex`). An emptied segment is
    /// considered created at `now_ms`.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<u64, StorageError> {
        let Some(cut) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let position = cut.position;
        let removed = self.size.saturating_sub(position);
        self.log.set_len(position).at(&self.log_path)?;
        self.log.sync_all().at(&self.log_path)?;
        self.size = position;
        self.offset_index.truncate_from_position(position)?;
        self.time_index
            .truncate_from_offset(cut.header.base_offset)?;
        self.txn_index.truncate_to(cut.header.base_offset)?;
        if position == 0 {
            self.first_batch_timestamp = None;
            self.created_ms = now_ms;
        }
        match self.tail_scan(None)? {
            Ok(()) => {}
            Err(reason) => {
                let mut report = RecoveryReport::default();
                self.rebuild(None, Some(reason), &mut report)?;
            }
        }
        Ok(removed)
    }

    pub fn scanner(&self, start: u64) -> HeaderScanner<'_> {
        HeaderScanner::new(&self.log, &self.log_path, start, self.size)
    }

    /// The first batch whose last offset is `>= offset`.
    pub fn find_batch(&self, offset: i64) -> Result<Option<ScannedBatch>, StorageError> {
        let (_, pos) = self.offset_index.lookup(offset);
        let mut scanner = self.scanner(pos);
        while let Some(b) = scanner.next_batch()? {
            if b.header.last_offset() >= offset {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Whole batches starting with the one containing `offset` (or the next one). With
    /// `max_offset`, only batches wholly below it, except that a first batch straddling it
    /// is returned (alone) if `straddling`; `Capped` if the first batch starts at or after
    /// it (or straddles it and `!straddling`).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: Option<i64>,
        straddling: bool,
    ) -> Result<SegmentRead, StorageError> {
        let (_, pos) = self.offset_index.lookup(offset);
        let mut scanner = self.scanner(pos);
        let first = loop {
            match scanner.next_batch()? {
                Some(b) if b.header.last_offset() >= offset => break b,
                Some(_) => continue,
                None => return Ok(SegmentRead::NotHere),
            }
        };
        let max = max_bytes as u64;
        let first_size = first.header.total_size() as u64;
        // End of the readable part of the segment.
        let end_cap = match max_offset {
            Some(m) if m < self.next_offset => {
                if first.header.base_offset >= m || (!straddling && first.header.last_offset() >= m)
                {
                    return Ok(SegmentRead::Capped);
                }
                if first.header.last_offset() >= m {
                    first.position + first_size
                } else {
                    self.find_batch(m)?.map_or(self.size, |b| b.position)
                }
            }
            _ => self.size,
        };
        if first_size > max {
            return Ok(if min_one_batch {
                SegmentRead::Region {
                    position: first.position,
                    len: first_size,
                }
            } else {
                SegmentRead::TooLarge
            });
        }
        let limit = first.position.saturating_add(max);
        if limit >= end_cap {
            // The rest of the readable part fits (it ends on a batch boundary).
            return Ok(SegmentRead::Region {
                position: first.position,
                len: end_cap - first.position,
            });
        }
        // Jump to the last indexed batch start within the limit, then scan the few
        // batches after it, instead of scanning every header up to `max_bytes`.
        let mut end = first.position + first_size;
        if let Some(p) = self.offset_index.floor_position(limit) {
            end = end.max(p);
        }
        let mut scanner = self.scanner(end);
        while let Some(b) = scanner.next_batch()? {
            let batch_end = b.position + b.header.total_size() as u64;
            if batch_end > limit {
                break;
            }
            end = batch_end;
        }
        Ok(SegmentRead::Region {
            position: first.position,
            len: end - first.position,
        })
    }

    /// First batch with `maxTimestamp >= ts` and last offset `>= min_offset`.
    pub fn find_by_timestamp_from(
        &self,
        ts: i64,
        min_offset: i64,
    ) -> Result<Option<ScannedBatch>, StorageError> {
        if self.max_timestamp.is_none_or(|(t, _)| t < ts) {
            return Ok(None);
        }
        let start_offset = self.time_index.lookup_before(ts).max(min_offset);
        let (_, pos) = self.offset_index.lookup(start_offset);
        let mut scanner = self.scanner(pos);
        while let Some(b) = scanner.next_batch()? {
            if b.header.max_timestamp >= ts && b.header.last_offset() >= min_offset {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Reads the whole batch.
    pub fn read_batch(&self, b: &ScannedBatch) -> Result<BatchBytes, StorageError> {
        let mut bytes = vec![0u8; b.header.total_size()];
        self.log
            .read_exact_at(&mut bytes, b.position)
            .at(&self.log_path)?;
        Ok(BatchBytes {
            base_offset: b.header.base_offset,
            last_offset: b.header.last_offset(),
            max_timestamp: b.header.max_timestamp,
            bytes,
        })
    }

    /// fsyncs the `.log` and the indexes.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.sync_data().at(&self.log_path)?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        self.txn_index.sync()
    }

    /// Drops anything past the valid size (a failed partial write) and trims the indexes.
    pub fn trim(&mut self) -> Result<(), StorageError> {
        let len = self.log.metadata().at(&self.log_path)?.len();
        if len != self.size {
            self.log.set_len(self.size).at(&self.log_path)?;
        }
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// Closes the index write handles once the segment is no longer active.
    pub fn seal(&mut self) {
        self.offset_index.seal();
        self.time_index.seal();
        self.txn_index.seal();
    }
}

/// Offset sanity checks shared by the scans: monotonic, within the segment's u32 relative
/// range, below the next segment's base offset.
fn check_batch_offsets(
    h: &BatchHeader,
    expected_min: i64,
    segment_base: i64,
    next_base: Option<i64>,
) -> Result<(), String> {
    if h.last_offset_delta < 0 {
        return Err(format!(
            "batch at offset {} has negative lastOffsetDelta {}",
            h.base_offset, h.last_offset_delta
        ));
    }
    if h.last_offset() == i64::MAX {
        return Err(format!(
            "batch at offset {} overflows the offset space",
            h.base_offset
        ));
    }
    if h.base_offset < expected_min {
        return Err(format!(
            "batch base offset {} is below the expected minimum {expected_min} (offsets not monotonic)",
            h.base_offset
        ));
    }
    if h.last_offset() - segment_base > i64::from(u32::MAX) {
        return Err(format!(
            "batch last offset {} too far from segment base {segment_base}",
            h.last_offset()
        ));
    }
    if let Some(nb) = next_base {
        if h.last_offset() >= nb {
            return Err(format!(
                "batch last offset {} is not below the next segment's base offset {nb}",
                h.last_offset()
            ));
        }
    }
    Ok(())
}
