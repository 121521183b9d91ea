//! Idempotent and transactional producer state (Kafka's `ProducerStateManager`): per
//! producer id the epoch, the metadata of the last 5 appended batches (used to reject
//! out-of-order sequences and to answer duplicates with the original offsets), the
//! coordinator epoch of the last transaction marker and the first offset of the ongoing
//! transaction, if any. The earliest ongoing transaction bounds the last stable offset, and
//! so does, as in Kafka, a completed transaction whose marker is not yet below the high
//! watermark (Kafka's `unreplicatedTxns`: "a transaction which has a COMMIT/ABORT marker
//! written at a higher offset than the current high watermark").
//!
//! Updates follow Kafka's `ProducerAppendInfo`: the caller validates client appends first
//! (`ProducerStateManager::check`, `check_marker`); the updates
//! themselves are those of origin `REPLICATION` (also used for replay after a restart or a
//! truncation): a batch or marker whose producer epoch differs from the producer's (even
//! an older one) becomes the producer's epoch and clears its batch history.
//!
//! Snapshot files (`<20-digit offset>.snapshot`, valid at that log offset):
//!
//! ```text
//! magic  b"GRPS" | version u16 (3) | crc u32 (CRC-32C of everything after it) | count u32
//! count × { producer_id i64 | epoch i16 | coordinator_epoch i32 | txn_first_offset i64 (-1: none)
//!           | last_timestamp i64
//!           | n u8 | n × { first_seq i32 | last_seq i32 | first_offset i64 | last_offset i64 } }
//! ```
//!
//! Older snapshots are still read: version 2 lacks `last_timestamp` (-1), version 1 (written
//! before transactions were supported) also `coordinator_epoch` and `txn_first_offset` (no
//! ongoing transaction, coordinator epoch -1).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::batch::{increment_sequence, BatchHeader};
use crate::error::IoContext;
use crate::StorageError;

/// How many batches are remembered per producer for duplicate detection.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Extension of producer state snapshot files.
pub const SNAPSHOT_SUFFIX: &str = "snapshot";
const SNAPSHOT_MAGIC: &[u8; 4] = b"GRPS";
const SNAPSHOT_VERSION: u16 = 3;
const SNAPSHOT_VERSION_V2: u16 = 2;
const SNAPSHOT_VERSION_V1: u16 = 1;
const SNAPSHOT_HEADER_LEN: usize = 4 + 2 + 4 + 4;

/// Public view of a producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerEntrySummary {
    /// Current producer epoch.
    pub epoch: i16,
    /// Sequence of the last appended record (-1 if none in this epoch).
    pub last_sequence: i32,
    /// Offset of the last appended record (-1 if none in this epoch).
    pub last_offset: i64,
    /// Coordinator epoch of the last transaction marker (-1 if none).
    pub coordinator_epoch: i32,
    /// First offset of the producer's ongoing transaction, if any.
    pub current_txn_first_offset: Option<i64>,
    /// Max timestamp of the last appended data batch (-1 if none, or if the state comes
    /// from a snapshot older than version 3).
    pub last_timestamp: i64,
}

/// A transaction ended by a marker (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    pub aborted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
    pub coordinator_epoch: i32,
    pub current_txn_first_offset: Option<i64>,
    /// Max timestamp of the last data batch (-1 if none).
    pub last_timestamp: i64,
}

impl ProducerEntry {
    fn summary(&self) -> ProducerEntrySummary {
        let last = self.batches.back();
        ProducerEntrySummary {
            epoch: self.epoch,
            last_sequence: last.map_or(-1, |b| b.last_seq),
            last_offset: last.map_or(-1, |b| b.last_offset),
            coordinator_epoch: self.coordinator_epoch,
            current_txn_first_offset: self.current_txn_first_offset,
            last_timestamp: self.last_timestamp,
        }
    }

    fn new(epoch: i16) -> Self {
        ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_timestamp: -1,
        }
    }
}

/// Result of validating a batch against the producer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended at these offsets.
    Duplicate { first_offset: i64, last_offset: i64 },
}

/// Producer id -> state for one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Ongoing transactions as (first offset, producer id), earliest first.
    ongoing: BTreeSet<(i64, i64)>,
    /// Completed transactions whose marker is not below the high watermark yet, as (first
    /// offset, producer id, marker offset), earliest first (Kafka's `unreplicatedTxns`).
    /// Not part of the snapshots (as in Kafka).
    unreplicated: BTreeSet<(i64, i64, i64)>,
}

impl ProducerStateManager {
    pub fn summary(&self, producer_id: i64) -> Option<ProducerEntrySummary> {
        self.producers.get(&producer_id).map(ProducerEntry::summary)
    }

    /// Every known producer with its summary, by producer id.
    pub fn summaries(&self) -> Vec<(i64, ProducerEntrySummary)> {
        let mut all: Vec<(i64, ProducerEntrySummary)> = self
            .producers
            .iter()
            .map(|(id, e)| (*id, e.summary()))
            .collect();
        all.sort_by_key(|(id, _)| *id);
        all
    }

    /// Kafka's `firstUnstableOffset`: the first offset of the earliest transaction that is
    /// ongoing or completed by a marker not yet below the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let undecided = self.ongoing.first().map(|(o, _)| *o);
        let unreplicated = self.unreplicated.first().map(|(o, _, _)| *o);
        match (undecided, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Kafka's `onHighWatermarkUpdated` (and `onLogStartOffsetIncremented`): completed
    /// transactions whose marker is below `offset` no longer hold the first unstable offset.
    pub fn on_high_watermark_updated(&mut self, offset: i64) {
        self.unreplicated.retain(|&(_, _, marker)| marker >= offset);
    }

    /// Forgets everything (Kafka's `truncateFullyAndStartAt`).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated.clear();
    }

    /// The first offset of `producer_id`'s ongoing transaction, if any.
    pub fn ongoing_txn_first_offset(&self, producer_id: i64) -> Option<i64> {
        self.producers
            .get(&producer_id)
            .and_then(|e| e.current_txn_first_offset)
    }

    /// Ongoing transactions as (first offset, producer id), earliest first.
    pub fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().copied()
    }

    /// Kafka's `ProducerStateManager.lastStableOffset(completedTxn)`: the first offset of the
    /// earliest ongoing transaction of another producer, else the marker offset + 1.
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| *pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(o, _)| *o)
    }

    /// Validates a transaction marker of `producer_id`: the epoch must not be older than the
    /// producer's (`InvalidProducerEpoch`, Kafka's fencing check) nor the coordinator epoch
    /// older than the last marker's (`TransactionCoordinatorFenced`).
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), StorageError> {
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id,
                current: entry.epoch,
                received: producer_epoch,
            });
        }
        if coordinator_epoch < entry.coordinator_epoch {
            return Err(StorageError::TransactionCoordinatorFenced {
                producer_id,
                current: entry.coordinator_epoch,
                received: coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Records a marker at `offset` (Kafka's `appendEndTxnMarker` + `completeTxn`): sets the
    /// epoch (a different one clears the batch history) and coordinator epoch and ends the
    /// ongoing transaction, which then holds the first unstable offset until the high
    /// watermark passes the marker. Returns it, if there was one (a marker without data
    /// changes neither the LSO nor the index). Stale epochs are not checked here (origin
    /// `REPLICATION`; client appends go through [`ProducerStateManager::check_marker`]).
    pub fn complete_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        offset: i64,
        commit: bool,
    ) -> Option<CompletedTxn> {
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry::new(producer_epoch));
        if producer_epoch != entry.epoch {
            if producer_epoch < entry.epoch {
                tracing::warn!(
                    producer_id,
                    offset,
                    producer_epoch,
                    current = entry.epoch,
                    "transaction marker with an older producer epoch (replicated)"
                );
            }
            entry.epoch = producer_epoch;
            entry.batches.clear();
        }
        if coordinator_epoch < entry.coordinator_epoch {
            tracing::info!(
                producer_id,
                offset,
                coordinator_epoch,
                current = entry.coordinator_epoch,
                "transaction marker with an older coordinator epoch (replicated)"
            );
        }
        entry.coordinator_epoch = coordinator_epoch;
        let first = entry.current_txn_first_offset.take()?;
        self.ongoing.remove(&(first, producer_id));
        self.unreplicated.insert((first, producer_id, offset));
        Some(CompletedTxn {
            producer_id,
            first_offset: first,
            last_offset: offset,
            aborted: !commit,
        })
    }

    /// Producer id → offset of its last appended data record (the cleaner keeps that batch).
    pub fn last_data_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset)))
            .collect()
    }

    /// Validates the producer fields of a batch about to be appended.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, StorageError> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(StorageError::InvalidProducerEpoch {
                producer_id: h.producer_id,
                current: entry.epoch,
                received: h.producer_epoch,
            });
        }
        if h.is_control() {
            return Ok(SequenceCheck::Append);
        }
        let mixed = !h.is_transactional() && entry.current_txn_first_offset.is_some();
        let txn_state = |check: SequenceCheck| {
            if mixed && check == SequenceCheck::Append {
                // Kafka: "Expected transactional write from producer ..."
                return Err(StorageError::InvalidTxnState {
                    producer_id: h.producer_id,
                    first_offset: entry.current_txn_first_offset.unwrap_or(-1),
                });
            }
            Ok(check)
        };
        let first_seq = h.base_sequence;
        let last_seq = h.last_sequence();
        if h.producer_epoch > entry.epoch {
            if first_seq != 0 {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: h.producer_id,
                    expected: 0,
                    received: first_seq,
                });
            }
            return txn_state(SequenceCheck::Append);
        }
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
        {
            return Ok(SequenceCheck::Duplicate {
                first_offset: dup.first_offset,
                last_offset: dup.last_offset,
            });
        }
        let current_last = entry.batches.back().map_or(-1, |b| b.last_seq);
        let expected = if current_last == i32::MAX {
            0
        } else {
            increment_sequence(current_last, 1)
        };
        if first_seq != expected {
            return Err(StorageError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected,
                received: first_seq,
            });
        }
        txn_state(SequenceCheck::Append)
    }

    /// Records an appended (replicated, or replayed) data batch occupying `[first_offset,
    /// last_offset]` (Kafka's `appendDataBatch`, origin `REPLICATION`): a different producer
    /// epoch, even an older one, becomes the producer's and clears its batch history; a
    /// transactional batch starts the producer's transaction if none is ongoing. A
    /// non-transactional batch during a transaction is recorded as well (callers reject it
    /// beforehand: [`ProducerStateManager::check`] for clients, `Log::append_as_follower` for
    /// replication). Markers go through [`ProducerStateManager::complete_txn`].
    pub fn update(&mut self, h: &BatchHeader, first_offset: i64, last_offset: i64) {
        if h.producer_id < 0 || h.is_control() {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry::new(h.producer_epoch));
        if h.producer_epoch != entry.epoch {
            if h.producer_epoch < entry.epoch {
                tracing::warn!(
                    producer_id = h.producer_id,
                    offset = first_offset,
                    producer_epoch = h.producer_epoch,
                    current = entry.epoch,
                    "batch with an older producer epoch (replicated)"
                );
            }
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.is_transactional() && entry.current_txn_first_offset.is_none() {
            entry.current_txn_first_offset = Some(first_offset);
            self.ongoing.insert((first_offset, h.producer_id));
        }
        if entry.batches.len() >= NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
        entry.last_timestamp = h.max_timestamp;
        entry.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            first_offset,
            last_offset,
        });
    }

    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort();
        for id in ids {
            let Some(e) = self.producers.get(id) else {
                continue;
            };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.push(e.batches.len().min(NUM_BATCHES_TO_RETAIN) as u8);
            for b in e.batches.iter().take(NUM_BATCHES_TO_RETAIN) {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(10 + body.len());
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Result<HashMap<i64, ProducerEntry>, String> {
        if bytes.len() < SNAPSHOT_HEADER_LEN {
            return Err("snapshot too short".into());
        }
        if &bytes[..4] != SNAPSHOT_MAGIC {
            return Err("bad snapshot magic".into());
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if ![SNAPSHOT_VERSION, SNAPSHOT_VERSION_V2, SNAPSHOT_VERSION_V1].contains(&version) {
            return Err(format!("unsupported snapshot version {version}"));
        }
        let crc = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        let body = &bytes[10..];
        if crc32c::crc32c(body) != crc {
            return Err("snapshot CRC mismatch".into());
        }
        let mut r = Cursor { buf: body, pos: 0 };
        let count = r.u32()?;
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.i16()?;
            let (coordinator_epoch, txn_first) = if version == SNAPSHOT_VERSION_V1 {
                (-1, -1)
            } else {
                (r.i32()?, r.i64()?)
            };
            let last_timestamp = if version == SNAPSHOT_VERSION {
                r.i64()?
            } else {
                -1
            };
            if txn_first < -1 {
                return Err(format!(
                    "snapshot entry with transaction offset {txn_first}"
                ));
            }
            let n = r.u8()? as usize;
            if n > NUM_BATCHES_TO_RETAIN {
                return Err(format!("snapshot entry with {n} batches"));
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.i32()?,
                    last_seq: r.i32()?,
                    first_offset: r.i64()?,
                    last_offset: r.i64()?,
                });
            }
            producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    coordinator_epoch,
                    current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
                    last_timestamp,
                },
            );
        }
        if r.pos != body.len() {
            return Err("trailing bytes in snapshot".into());
        }
        Ok(producers)
    }

    /// Writes `<offset>.snapshot` atomically (temp file, fsync, rename).
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
        let path = snapshot_path(dir, offset);
        let tmp = path.with_extension("snapshot.tmp");
        let bytes = self.encode();
        {
            let mut f: File = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .at(&tmp)?;
            f.write_all(&bytes).at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        std::fs::rename(&tmp, &path).at(&path)?;
        Ok(())
    }

    /// Loads the newest valid snapshot with offset `<= max_offset`; returns its offset.
    /// Invalid snapshots are skipped (with a warning) and deleted.
    pub fn load_latest(
        &mut self,
        dir: &Path,
        max_offset: i64,
    ) -> Result<Option<i64>, StorageError> {
        let mut snaps = list_snapshots(dir)?;
        snaps.sort_unstable();
        for &offset in snaps.iter().rev() {
            if offset > max_offset {
                continue;
            }
            let path = snapshot_path(dir, offset);
            let bytes = std::fs::read(&path).at(&path)?;
            match Self::decode(&bytes) {
                Ok(p) => {
                    self.ongoing = p
                        .iter()
                        .filter_map(|(id, e)| e.current_txn_first_offset.map(|o| (o, *id)))
                        .collect();
                    self.unreplicated.clear();
                    self.producers = p;
                    return Ok(Some(offset));
                }
                Err(reason) => {
                    tracing::warn!(snapshot = %path.display(), %reason, "ignoring invalid producer state snapshot");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        Ok(None)
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.pos + N;
        let Some(s) = self.buf.get(self.pos..end) else {
            return Err("truncated snapshot".into());
        };
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        self.pos = end;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }
    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.take()?))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take()?))
    }
}

/// Path of the snapshot valid at `offset`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(crate::segment::file_name(offset, SNAPSHOT_SUFFIX))
}

/// Offsets of all snapshot files in `dir`.
pub fn list_snapshots(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(offset) = crate::log::parse_offset_file_name(name, SNAPSHOT_SUFFIX) {
            out.push(offset);
        }
    }
    Ok(out)
}

/// Deletes all but the newest `keep` snapshots, and any snapshot above `max_offset`.
/// The snapshot at `also_keep` (the active segment's base offset: the starting point of
/// its recovery after an unclean shutdown) is kept as well.
pub fn retain_snapshots(
    dir: &Path,
    keep: usize,
    max_offset: i64,
    also_keep: Option<i64>,
) -> Result<(), StorageError> {
    let mut snaps = list_snapshots(dir)?;
    snaps.sort_unstable();
    let mut kept = 0;
    for &offset in snaps.iter().rev() {
        if offset <= max_offset && kept < keep {
            kept += 1;
            continue;
        }
        if offset <= max_offset && Some(offset) == also_keep {
            continue;
        }
        let path = snapshot_path(dir, offset);
        std::fs::remove_file(&path).at(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_roundtrip_and_corruption() {
        let mut m = ProducerStateManager::default();
        m.producers.insert(
            7,
            ProducerEntry {
                epoch: 3,
                batches: VecDeque::from(vec![BatchMetadata {
                    first_seq: 0,
                    last_seq: 4,
                    first_offset: 10,
                    last_offset: 14,
                }]),
                coordinator_epoch: 4,
                current_txn_first_offset: Some(12),
                last_timestamp: 1_700_000_000_123,
            },
        );
        m.producers.insert(8, ProducerEntry::new(0));
        let bytes = m.encode();
        assert_eq!(u16::from_be_bytes([bytes[4], bytes[5]]), 3);
        let decoded = ProducerStateManager::decode(&bytes).expect("decodes");
        assert_eq!(decoded, m.producers);
        for cut in 0..bytes.len() {
            assert!(ProducerStateManager::decode(&bytes[..cut]).is_err());
        }
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(ProducerStateManager::decode(&bad).is_err());
    }

    #[test]
    fn version_1_snapshots_are_still_read() {
        // producer 7, epoch 3, one batch (seqs 0..4 at offsets 10..14), in the v1 layout.
        let mut body = Vec::new();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&7i64.to_be_bytes());
        body.extend_from_slice(&3i16.to_be_bytes());
        body.push(1);
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&10i64.to_be_bytes());
        body.extend_from_slice(&14i64.to_be_bytes());
        let mut bytes = b"GRPS".to_vec();
        bytes.extend_from_slice(&1u16.to_be_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
        let decoded = ProducerStateManager::decode(&bytes).expect("v1 decodes");
        let e = decoded.get(&7).expect("producer 7");
        assert_eq!((e.epoch, e.coordinator_epoch), (3, -1));
        assert_eq!(e.current_txn_first_offset, None);
        assert_eq!(e.batches.back().map(|b| b.last_offset), Some(14));
        // Version 4 is unknown.
        bytes[5] = 4;
        assert!(ProducerStateManager::decode(&bytes).is_err());
    }

    #[test]
    fn version_2_snapshots_are_still_read() {
        // producer 7, epoch 3, coordinator epoch 4, transaction from 12, one batch, v2 layout.
        let mut body = Vec::new();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&7i64.to_be_bytes());
        body.extend_from_slice(&3i16.to_be_bytes());
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&12i64.to_be_bytes());
        body.push(1);
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&10i64.to_be_bytes());
        body.extend_from_slice(&14i64.to_be_bytes());
        let mut bytes = b"GRPS".to_vec();
        bytes.extend_from_slice(&2u16.to_be_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        bytes.extend_from_slice(&body);
        let decoded = ProducerStateManager::decode(&bytes).expect("v2 decodes");
        let e = decoded.get(&7).expect("producer 7");
        assert_eq!((e.epoch, e.coordinator_epoch), (3, 4));
        assert_eq!(e.current_txn_first_offset, Some(12));
        assert_eq!(e.last_timestamp, -1);
        assert_eq!(e.batches.back().map(|b| b.last_offset), Some(14));
    }
}
