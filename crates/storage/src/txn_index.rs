//! The aborted-transaction index of a segment (Kafka's `TransactionIndex`, `.txnindex`).
//!
//! One 34-byte big-endian entry per transaction aborted by a marker in the segment, in
//! marker order (Kafka's `AbortedTxn`):
//!
//! ```text
//! version i16 (0) | producerId i64 | firstOffset i64 | lastOffset i64 | lastStableOffset i64
//! ```
//!
//! `lastOffset` is the offset of the ABORT marker, `lastStableOffset` the partition's last
//! stable offset right after the marker. Like Kafka, the file is created lazily on the first
//! entry: a missing file means "no aborted transaction in this segment". The entries are
//! few, so they are also kept in memory.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::StorageError;

/// Size of one `.txnindex` entry.
pub const TXN_ENTRY_SIZE: usize = 34;
/// The only entry version (Kafka's `AbortedTxn.CURRENT_VERSION`).
const TXN_ENTRY_VERSION: i16 = 0;

/// One entry of the aborted-transaction index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxnEntry {
    /// Producer id of the aborted transaction.
    pub producer_id: i64,
    /// First offset of the transaction (its first data batch).
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// Last stable offset of the partition once the marker was written.
    pub last_stable_offset: i64,
}

impl AbortedTxnEntry {
    /// The 34-byte on-disk form.
    pub fn to_bytes(self) -> [u8; TXN_ENTRY_SIZE] {
        let mut b = [0u8; TXN_ENTRY_SIZE];
        b[0..2].copy_from_slice(&TXN_ENTRY_VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    fn parse(b: &[u8]) -> Result<AbortedTxnEntry, String> {
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[at..at + 8]);
            i64::from_be_bytes(a)
        };
        let version = i16::from_be_bytes([b[0], b[1]]);
        if version != TXN_ENTRY_VERSION {
            return Err(format!("unexpected aborted transaction version {version}"));
        }
        Ok(AbortedTxnEntry {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Outcome of a search of one segment's index (Kafka's `TxnIndexSearchResult`).
pub(crate) struct TxnSearch {
    pub aborted: Vec<AbortedTxnEntry>,
    /// An entry with `lastStableOffset >= upper` was found: later segments cannot hold
    /// any transaction overlapping the range.
    pub complete: bool,
}

#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxnEntry>,
    /// Write handle, opened on the first append (the file is created lazily).
    file: Option<File>,
}

impl TxnIndex {
    /// An index with no entries (no file is created).
    pub fn empty(path: PathBuf) -> Self {
        TxnIndex {
            path,
            entries: Vec::new(),
            file: None,
        }
    }

    /// Loads the index if its file exists. `Ok(Err(reason))` if the file is malformed
    /// (size not a multiple of 34, bad version, last offsets not increasing or outside
    /// `[base, next_offset)`).
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        next_offset: i64,
    ) -> Result<Result<TxnIndex, String>, StorageError> {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Ok(TxnIndex::empty(path)))
            }
            Err(e) => return Err(StorageError::io(&path, e)),
        };
        if bytes.len() % TXN_ENTRY_SIZE != 0 {
            return Ok(Err(format!(
                "{}: size {} is not a multiple of {TXN_ENTRY_SIZE}",
                path.display(),
                bytes.len()
            )));
        }
        let mut entries = Vec::with_capacity(bytes.len() / TXN_ENTRY_SIZE);
        let mut last = -1;
        for chunk in bytes.chunks_exact(TXN_ENTRY_SIZE) {
            let e = match AbortedTxnEntry::parse(chunk) {
                Ok(e) => e,
                Err(m) => return Ok(Err(format!("{}: {m}", path.display()))),
            };
            if e.last_offset <= last
                || e.last_offset < base_offset
                || e.last_offset >= next_offset
                || e.first_offset > e.last_offset
            {
                return Ok(Err(format!(
                    "{}: entry with last offset {} is out of order or outside the segment",
                    path.display(),
                    e.last_offset
                )));
            }
            last = e.last_offset;
            entries.push(e);
        }
        Ok(Ok(TxnIndex {
            path,
            entries,
            file: None,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[AbortedTxnEntry] {
        &self.entries
    }

    /// Appends an entry to memory and to the file (created if needed). Like Kafka, the last
    /// offsets must increase.
    pub fn append(&mut self, e: AbortedTxnEntry) -> Result<(), StorageError> {
        if let Some(last) = self.entries.last() {
            if e.last_offset <= last.last_offset {
                return Err(StorageError::CorruptBatch(format!(
                    "The last offset of appended transactions must increase sequentially, but {} is not greater than current last offset {} of index {}",
                    e.last_offset,
                    last.last_offset,
                    self.path.display()
                )));
            }
        }
        if self.file.is_none() {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .at(&self.path)?;
            self.file = Some(f);
        }
        let position = (self.entries.len() * TXN_ENTRY_SIZE) as u64;
        if let Some(f) = &self.file {
            f.write_all_at(&e.to_bytes(), position).at(&self.path)?;
        }
        self.entries.push(e);
        Ok(())
    }

    /// Replaces the entries (recovery) and rewrites the file; removes it when empty.
    pub fn reset(&mut self, entries: Vec<AbortedTxnEntry>) -> Result<(), StorageError> {
        self.file = None;
        self.entries = entries;
        if self.entries.is_empty() {
            return crate::cleaner::remove_if_exists(&self.path);
        }
        let mut bytes = Vec::with_capacity(self.entries.len() * TXN_ENTRY_SIZE);
        for e in &self.entries {
            bytes.extend_from_slice(&e.to_bytes());
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .at(&self.path)?;
        f.write_all_at(&bytes, 0).at(&self.path)?;
        f.sync_all().at(&self.path)?;
        Ok(())
    }

    /// Drops the entries whose marker is at or after `offset` (Kafka's
    /// `TransactionIndex.truncateTo`). They are a suffix (last offsets increase), so the
    /// file is cut to the kept entries (fsynced), or removed when none is left.
    pub fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        let keep = self.entries.partition_point(|e| e.last_offset < offset);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.file = None;
        if keep == 0 {
            return crate::cleaner::remove_if_exists(&self.path);
        }
        let f = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .at(&self.path)?;
        f.set_len((keep * TXN_ENTRY_SIZE) as u64).at(&self.path)?;
        f.sync_all().at(&self.path)
    }

    /// fsyncs the file if it was written to.
    pub fn sync(&self) -> Result<(), StorageError> {
        match &self.file {
            Some(f) => f.sync_all().at(&self.path),
            None => Ok(()),
        }
    }

    /// Closes the write handle (the segment is no longer active).
    pub fn seal(&mut self) {
        self.file = None;
    }

    /// Kafka's `TransactionIndex.collectAbortedTxns(fetchOffset, upperBoundOffset)`.
    pub fn collect(&self, fetch_offset: i64, upper_bound_offset: i64) -> TxnSearch {
        let mut aborted = Vec::new();
        for e in &self.entries {
            if e.last_offset >= fetch_offset && e.first_offset < upper_bound_offset {
                aborted.push(*e);
            }
            if e.last_stable_offset >= upper_bound_offset {
                return TxnSearch {
                    aborted,
                    complete: true,
                };
            }
        }
        TxnSearch {
            aborted,
            complete: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_match_kafka_layout() {
        let e = AbortedTxnEntry {
            producer_id: 0x0102030405060708,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        let b = e.to_bytes();
        assert_eq!(&b[0..2], &[0, 0]);
        assert_eq!(&b[2..10], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[10..18], &10i64.to_be_bytes());
        assert_eq!(&b[18..26], &20i64.to_be_bytes());
        assert_eq!(&b[26..34], &21i64.to_be_bytes());
        assert_eq!(AbortedTxnEntry::parse(&b), Ok(e));
        let mut bad = b;
        bad[1] = 1;
        assert!(AbortedTxnEntry::parse(&bad).is_err());
    }

    #[test]
    fn load_rejects_malformed_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("00000000000000000000.txnindex");
        let e = |last: i64| AbortedTxnEntry {
            producer_id: 1,
            first_offset: 0,
            last_offset: last,
            last_stable_offset: last + 1,
        };
        let missing = TxnIndex::load(path.clone(), 0, 100)
            .expect("io")
            .expect("ok");
        assert!(missing.entries().is_empty());
        let mut idx = TxnIndex::empty(path.clone());
        idx.append(e(5)).expect("append");
        idx.append(e(9)).expect("append");
        assert!(idx.append(e(9)).is_err(), "last offsets must increase");
        let loaded = TxnIndex::load(path.clone(), 0, 100)
            .expect("io")
            .expect("ok");
        assert_eq!(loaded.entries(), &[e(5), e(9)]);
        // Beyond the segment's end.
        assert!(TxnIndex::load(path.clone(), 0, 9).expect("io").is_err());
        // Torn entry.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.pop();
        std::fs::write(&path, &bytes).expect("write");
        assert!(TxnIndex::load(path.clone(), 0, 100).expect("io").is_err());
    }
}
