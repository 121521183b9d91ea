//! [`Log`]: the partition log, an ordered list of segments.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader};
use crate::error::IoContext;
use crate::producer::{self, ProducerStateManager, SequenceCheck};
use crate::segment::{self, Segment, SegmentRead};
use crate::{
    AppendInfo, BatchBytes, FileRegion, LogConfig, ProducerEntrySummary, ReadResult,
    RecoveryReport, StorageError,
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
}

/// Parses `<20 digits>.<suffix>` into the offset.
pub(crate) fn parse_offset_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<i64>().ok()
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir).at(dir)?.sync_all().at(dir)
}

impl Log {
    /// Opens or creates the partition log in `dir` (created if missing).
    /// `clean_shutdown == false` means the process may have been killed: the active
    /// segment is scanned and its torn tail truncated.
    pub fn open(
        dir: impl Into<PathBuf>,
        config: LogConfig,
        clean_shutdown: bool,
    ) -> Result<(Log, RecoveryReport), StorageError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).at(&dir)?;
        let mut report = RecoveryReport::default();

        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                let path = entry.path();
                std::fs::remove_file(&path).at(&path)?;
            } else if let Some(base) = parse_offset_file_name(name, segment::LOG_SUFFIX) {
                bases.push(base);
            } else if let Some(base) = parse_offset_file_name(name, segment::INDEX_SUFFIX)
                .or_else(|| parse_offset_file_name(name, segment::TIME_INDEX_SUFFIX))
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
                &mut report,
            )?;
            if next_base.is_some() {
                seg.seal();
            }
            segments.push(seg);
        }
        if segments.is_empty() {
            segments.push(Segment::create(&dir, 0, config.index_interval_bytes)?);
            sync_dir(&dir)?;
        }

        let mut log = Log {
            dir,
            config,
            segments,
            producers: ProducerStateManager::default(),
            unflushed_messages: 0,
        };
        log.load_producer_state()?;
        if report != RecoveryReport::default() {
            tracing::info!(dir = %log.dir.display(), ?report, "log recovered");
        }
        Ok((log, report))
    }

    /// Loads the newest usable snapshot and replays the batches after it.
    fn load_producer_state(&mut self) -> Result<(), StorageError> {
        let log_end = self.log_end_offset();
        let log_start = self.log_start_offset();
        // Snapshots past the log end describe truncated data.
        for offset in producer::list_snapshots(&self.dir)? {
            if offset > log_end {
                let path = producer::snapshot_path(&self.dir, offset);
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        let from = match self.producers.load_latest(&self.dir, log_end)? {
            Some(offset) => offset.max(log_start),
            None => log_start,
        };
        replay(&self.segments, &mut self.producers, from)
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the configuration (applies at once).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// Kafka DeleteRecords (placeholder until the retention work lands): -1 means the high
    /// watermark.
    pub fn delete_records(&mut self, offset: i64) -> Result<i64, StorageError> {
        let offset = if offset == -1 {
            self.high_watermark()
        } else {
            offset
        };
        if offset < 0 || offset > self.high_watermark() {
            return Err(StorageError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset(),
                log_end: self.log_end_offset(),
            });
        }
        Ok(self
            .log_start_offset()
            .max(offset.min(self.log_start_offset())))
    }

    /// First offset of the log.
    pub fn log_start_offset(&self) -> i64 {
        self.segments.first().map_or(0, |s| s.base_offset)
    }

    /// The next offset to be assigned.
    pub fn log_end_offset(&self) -> i64 {
        self.segments.last().map_or(0, |s| s.next_offset)
    }

    /// High watermark; on a single node it equals the log end offset.
    pub fn high_watermark(&self) -> i64 {
        self.log_end_offset()
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

        let base_offset = self.log_end_offset();
        let last_offset = base_offset + i64::from(header.last_offset_delta);
        let (segment_bytes, max_index_bytes) =
            (self.config.segment_bytes, self.config.max_index_bytes);
        let roll = self.active()?.should_roll(
            batch.len() as u64,
            last_offset,
            segment_bytes,
            max_index_bytes,
        );
        if roll {
            self.roll()?;
        }
        batch::set_base_offset(batch, base_offset);
        batch::set_partition_leader_epoch(batch, leader_epoch);
        header.base_offset = base_offset;
        header.partition_leader_epoch = leader_epoch;
        self.active()?.append(batch, &header)?;
        self.producers.update(&header, base_offset, last_offset);

        self.unflushed_messages = self
            .unflushed_messages
            .saturating_add(header.records_count as u64);
        if self.unflushed_messages >= self.config.flush_interval_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            log_start_offset,
            duplicate: false,
        })
    }

    /// Seals the active segment (fsync, producer snapshot) and starts a new one at the
    /// log end offset.
    fn roll(&mut self) -> Result<(), StorageError> {
        let new_base = self.log_end_offset();
        {
            let active = self.active()?;
            active.trim()?;
            active.flush()?;
            active.seal();
        }
        self.unflushed_messages = 0;
        self.producers.write_snapshot(&self.dir, new_base)?;
        producer::retain_snapshots(&self.dir, SNAPSHOTS_TO_KEEP, i64::MAX)?;
        let seg = Segment::create(&self.dir, new_base, self.config.index_interval_bytes)?;
        sync_dir(&self.dir)?;
        tracing::debug!(dir = %self.dir.display(), base_offset = new_base, "rolled new segment");
        self.segments.push(seg);
        Ok(())
    }

    fn read_result(&self, region: Option<FileRegion>) -> ReadResult {
        ReadResult {
            region,
            high_watermark: self.high_watermark(),
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Whole batches starting with the batch that contains `offset`, as one region of one
    /// segment file, at most `max_bytes` (unless `min_one_batch` and the first batch alone
    /// is larger).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
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
        if offset == log_end {
            return Ok(self.read_result(None));
        }
        let first = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            match seg.read(offset, max_bytes, min_one_batch)? {
                SegmentRead::NotHere => continue,
                SegmentRead::TooLarge => return Ok(self.read_result(None)),
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

    /// First batch (lowest offset) whose maxTimestamp is `>= ts`.
    pub fn find_batch_by_timestamp(&self, ts: i64) -> Result<Option<BatchBytes>, StorageError> {
        for seg in &self.segments {
            if let Some(b) = seg.find_by_timestamp(ts)? {
                return seg.read_batch(&b).map(Some);
            }
        }
        Ok(None)
    }

    /// The first batch holding the largest maxTimestamp of the log.
    pub fn max_timestamp_batch(&self) -> Result<Option<BatchBytes>, StorageError> {
        let mut best: Option<(i64, i64, &Segment)> = None;
        for seg in &self.segments {
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

    /// fsyncs the active segment's `.log` and indexes.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        self.active()?.flush()?;
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Flushes, writes a producer-state snapshot and trims/syncs the index files.
    pub fn close(mut self) -> Result<(), StorageError> {
        self.active()?.trim()?;
        self.flush()?;
        let log_end = self.log_end_offset();
        self.producers.write_snapshot(&self.dir, log_end)?;
        producer::retain_snapshots(&self.dir, SNAPSHOTS_TO_KEEP, log_end)?;
        sync_dir(&self.dir)
    }

    /// Removes the whole partition directory: renames it to `<dir>.<unique>-delete`, then
    /// deletes it. Open [`FileRegion`]s stay readable.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        drop(self);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "log".to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let unique = format!("{nanos:x}{:x}", std::process::id());
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

/// Replays the producer fields of every batch with base offset `>= from`.
fn replay(
    segments: &[Segment],
    producers: &mut ProducerStateManager,
    from: i64,
) -> Result<(), StorageError> {
    for seg in segments {
        if seg.next_offset <= from {
            continue;
        }
        let start = if from > seg.base_offset {
            match seg.find_batch(from)? {
                Some(b) => b.position,
                None => continue,
            }
        } else {
            0
        };
        let mut scanner = seg.scanner(start);
        while let Some(b) = scanner.next_batch()? {
            let h = b.header;
            if h.base_offset >= from && h.producer_id >= 0 {
                producers.update(&h, h.base_offset, h.last_offset());
            }
        }
    }
    Ok(())
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
