//! Idempotent producer state (Kafka's `ProducerStateManager`): per producer id the epoch
//! and the metadata of the last 5 appended batches, used to reject out-of-order
//! sequences and to answer duplicates with the original offsets.
//!
//! Snapshot files (`<20-digit offset>.snapshot`, valid at that log offset):
//!
//! ```text
//! magic  b"GRPS" | version u16 (1) | crc u32 (CRC-32C of everything after it) | count u32
//! count × { producer_id i64 | epoch i16 | n u8 | n × { first_seq i32 | last_seq i32 | first_offset i64 | last_offset i64 } }
//! ```

use std::collections::{HashMap, VecDeque};
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
const SNAPSHOT_VERSION: u16 = 1;
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
}

impl ProducerStateManager {
    pub fn summary(&self, producer_id: i64) -> Option<ProducerEntrySummary> {
        self.producers.get(&producer_id).map(|e| {
            let last = e.batches.back();
            ProducerEntrySummary {
                epoch: e.epoch,
                last_sequence: last.map_or(-1, |b| b.last_seq),
                last_offset: last.map_or(-1, |b| b.last_offset),
            }
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
            return Ok(SequenceCheck::Append);
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
        Ok(SequenceCheck::Append)
    }

    /// Records an appended (or replayed) batch occupying `[first_offset, last_offset]`.
    pub fn update(&mut self, h: &BatchHeader, first_offset: i64, last_offset: i64) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
            });
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        } else if h.producer_epoch < entry.epoch {
            // Only possible when replaying odd data; keep the newer epoch.
            return;
        }
        if h.is_control() {
            return;
        }
        if entry.batches.len() >= NUM_BATCHES_TO_RETAIN {
            entry.batches.pop_front();
        }
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
        if version != SNAPSHOT_VERSION {
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
            producers.insert(id, ProducerEntry { epoch, batches });
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
pub fn retain_snapshots(dir: &Path, keep: usize, max_offset: i64) -> Result<(), StorageError> {
    let mut snaps = list_snapshots(dir)?;
    snaps.sort_unstable();
    let mut kept = 0;
    for &offset in snaps.iter().rev() {
        if offset <= max_offset && kept < keep {
            kept += 1;
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
            },
        );
        let bytes = m.encode();
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
}
