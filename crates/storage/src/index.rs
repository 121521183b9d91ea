//! Sparse offset index (`.index`) and time index (`.timeindex`) of a segment.
//!
//! Both are kept fully in memory (they are small: one entry per `index_interval_bytes` of
//! log data) and mirrored to their file by appending entries with positional writes. The
//! files hold exactly their entries: no preallocated tail.
//!
//! * offset index entry (8 bytes): `u32` offset relative to the segment base offset (of the
//!   first offset of the batch) + `u32` file position of that batch.
//! * time index entry (12 bytes): `i64` timestamp + `u32` relative offset of the first batch
//!   whose max timestamp reached it (the running maximum of the segment at that point).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::StorageError;

/// Size of one offset index entry.
pub const OFFSET_ENTRY_SIZE: usize = 8;
/// Size of one time index entry.
pub const TIME_ENTRY_SIZE: usize = 12;

/// One offset index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Writable mirror of an index file.
#[derive(Debug)]
struct IndexFile {
    path: PathBuf,
    /// Open for writing while the segment is active; `None` once it is sealed.
    file: Option<File>,
}

impl IndexFile {
    fn open_rw(path: &Path) -> Result<File, StorageError> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)
    }

    fn write_at(&mut self, bytes: &[u8], position: u64) -> Result<(), StorageError> {
        if self.file.is_none() {
            self.file = Some(Self::open_rw(&self.path)?);
        }
        match &self.file {
            Some(f) => f.write_all_at(bytes, position).at(&self.path),
            None => Ok(()),
        }
    }

    /// Replaces the whole file content.
    fn rewrite(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .at(&self.path)?;
        f.write_all(bytes).at(&self.path)?;
        self.file = Some(f);
        Ok(())
    }

    /// Truncates the file to `len` bytes (drops anything past the known entries).
    fn trim(&mut self, len: u64) -> Result<(), StorageError> {
        if let Some(f) = &self.file {
            let actual = f.metadata().at(&self.path)?.len();
            if actual != len {
                f.set_len(len).at(&self.path)?;
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        match &self.file {
            Some(f) => f.sync_data().at(&self.path),
            None => Ok(()),
        }
    }

    fn seal(&mut self) {
        self.file = None;
    }
}

/// Reads an index file; `Ok(None)` if it does not exist.
fn read_index_file(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

/// The sparse offset index of one segment.
#[derive(Debug)]
pub(crate) struct OffsetIndex {
    base_offset: i64,
    entries: Vec<OffsetEntry>,
    file: IndexFile,
}

/// Result of loading an index from disk.
pub(crate) enum Loaded<T> {
    Ok(T),
    /// Missing or inconsistent; the reason is for the recovery report.
    NeedsRebuild(String),
}

impl OffsetIndex {
    /// A new, empty index (the file is created empty).
    pub fn create(path: PathBuf, base_offset: i64) -> Result<Self, StorageError> {
        let mut file = IndexFile { path, file: None };
        file.rewrite(&[])?;
        Ok(OffsetIndex {
            base_offset,
            entries: Vec::new(),
            file,
        })
    }

    /// An in-memory index whose file will be written by [`OffsetIndex::rewrite_file`].
    pub fn empty(path: PathBuf, base_offset: i64) -> Self {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
            file: IndexFile { path, file: None },
        }
    }

    /// Loads and sanity-checks the index file of a segment of `segment_size` bytes.
    /// `next_base` is the next segment's base offset, if any.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        segment_size: u64,
        next_base: Option<i64>,
    ) -> Result<Loaded<Self>, StorageError> {
        let Some(bytes) = read_index_file(&path)? else {
            return Ok(Loaded::NeedsRebuild(format!(
                "{} is missing",
                path.display()
            )));
        };
        if bytes.len() % OFFSET_ENTRY_SIZE != 0 {
            return Ok(Loaded::NeedsRebuild(format!(
                "{} has length {} which is not a multiple of {OFFSET_ENTRY_SIZE}",
                path.display(),
                bytes.len()
            )));
        }
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_SIZE) {
            let e = OffsetEntry {
                relative_offset: u32_at(chunk, 0),
                position: u32_at(chunk, 4),
            };
            if let Some(prev) = entries.last() {
                let prev: &OffsetEntry = prev;
                if e.relative_offset <= prev.relative_offset || e.position <= prev.position {
                    return Ok(Loaded::NeedsRebuild(format!(
                        "{}: entries not strictly increasing",
                        path.display()
                    )));
                }
            }
            if u64::from(e.position) >= segment_size {
                return Ok(Loaded::NeedsRebuild(format!(
                    "{}: position {} beyond segment size {segment_size}",
                    path.display(),
                    e.position
                )));
            }
            if let Some(next) = next_base {
                if base_offset.saturating_add(i64::from(e.relative_offset)) >= next {
                    return Ok(Loaded::NeedsRebuild(format!(
                        "{}: offset {} not below next segment base {next}",
                        path.display(),
                        base_offset.saturating_add(i64::from(e.relative_offset))
                    )));
                }
            }
            entries.push(e);
        }
        Ok(Loaded::Ok(OffsetIndex {
            base_offset,
            entries,
            file: IndexFile { path, file: None },
        }))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    /// Largest entry whose offset is `<= offset`, as (absolute offset, position);
    /// (base offset, 0) if there is none.
    pub fn lookup(&self, offset: i64) -> (i64, u64) {
        let rel = offset - self.base_offset;
        if rel < 0 {
            return (self.base_offset, 0);
        }
        let rel = u32::try_from(rel).unwrap_or(u32::MAX);
        let idx = self.entries.partition_point(|e| e.relative_offset <= rel);
        if idx == 0 {
            (self.base_offset, 0)
        } else {
            let e = self.entries[idx - 1];
            (
                self.base_offset
                    .saturating_add(i64::from(e.relative_offset)),
                u64::from(e.position),
            )
        }
    }

    /// Largest indexed batch position that is `<= position`, if any.
    pub fn floor_position(&self, position: u64) -> Option<u64> {
        let idx = self
            .entries
            .partition_point(|e| u64::from(e.position) <= position);
        idx.checked_sub(1)
            .map(|i| u64::from(self.entries[i].position))
    }

    /// Adds an entry in memory only (used while rebuilding).
    pub fn push(&mut self, e: OffsetEntry) {
        self.entries.push(e);
    }

    /// Adds an entry and writes it to the file.
    pub fn append(&mut self, e: OffsetEntry) -> Result<(), StorageError> {
        let mut buf = [0u8; OFFSET_ENTRY_SIZE];
        buf[..4].copy_from_slice(&e.relative_offset.to_be_bytes());
        buf[4..].copy_from_slice(&e.position.to_be_bytes());
        let at = (self.entries.len() * OFFSET_ENTRY_SIZE) as u64;
        self.file.write_at(&buf, at)?;
        self.entries.push(e);
        Ok(())
    }

    /// Drops the entries of batches at or after file position `position` (Kafka's
    /// `OffsetIndex.truncateTo`) and rewrites the file (fsynced).
    pub fn truncate_from_position(&mut self, position: u64) -> Result<(), StorageError> {
        let keep = self
            .entries
            .partition_point(|e| u64::from(e.position) < position);
        self.entries.truncate(keep);
        self.rewrite_file()?;
        self.sync()
    }

    /// Writes all in-memory entries to the file, replacing it.
    pub fn rewrite_file(&mut self) -> Result<(), StorageError> {
        let mut buf = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_SIZE);
        for e in &self.entries {
            buf.extend_from_slice(&e.relative_offset.to_be_bytes());
            buf.extend_from_slice(&e.position.to_be_bytes());
        }
        self.file.rewrite(&buf)
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync()
    }

    pub fn trim(&mut self) -> Result<(), StorageError> {
        self.file
            .trim((self.entries.len() * OFFSET_ENTRY_SIZE) as u64)
    }

    pub fn seal(&mut self) {
        self.file.seal();
    }
}

/// The time index of one segment.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    base_offset: i64,
    entries: Vec<TimeEntry>,
    file: IndexFile,
}

impl TimeIndex {
    pub fn create(path: PathBuf, base_offset: i64) -> Result<Self, StorageError> {
        let mut file = IndexFile { path, file: None };
        file.rewrite(&[])?;
        Ok(TimeIndex {
            base_offset,
            entries: Vec::new(),
            file,
        })
    }

    pub fn empty(path: PathBuf, base_offset: i64) -> Self {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
            file: IndexFile { path, file: None },
        }
    }

    /// Loads and sanity-checks the time index file.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        next_base: Option<i64>,
    ) -> Result<Loaded<Self>, StorageError> {
        let Some(bytes) = read_index_file(&path)? else {
            return Ok(Loaded::NeedsRebuild(format!(
                "{} is missing",
                path.display()
            )));
        };
        if bytes.len() % TIME_ENTRY_SIZE != 0 {
            return Ok(Loaded::NeedsRebuild(format!(
                "{} has length {} which is not a multiple of {TIME_ENTRY_SIZE}",
                path.display(),
                bytes.len()
            )));
        }
        let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / TIME_ENTRY_SIZE);
        for chunk in bytes.chunks_exact(TIME_ENTRY_SIZE) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let e = TimeEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: u32_at(chunk, 8),
            };
            if let Some(prev) = entries.last() {
                if e.timestamp <= prev.timestamp || e.relative_offset < prev.relative_offset {
                    return Ok(Loaded::NeedsRebuild(format!(
                        "{}: entries not increasing",
                        path.display()
                    )));
                }
            }
            if let Some(next) = next_base {
                if base_offset.saturating_add(i64::from(e.relative_offset)) >= next {
                    return Ok(Loaded::NeedsRebuild(format!(
                        "{}: offset not below next segment base {next}",
                        path.display()
                    )));
                }
            }
            entries.push(e);
        }
        Ok(Loaded::Ok(TimeIndex {
            base_offset,
            entries,
            file: IndexFile { path, file: None },
        }))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    /// Largest timestamp indexed so far (-1, Kafka's "no timestamp", if none).
    pub fn last_timestamp(&self) -> i64 {
        self.entries.last().map_or(-1, |e| e.timestamp)
    }

    /// The offset to start scanning from to find the first batch with max timestamp
    /// `>= ts`: the offset of the last entry whose timestamp is `< ts` (every batch before
    /// that offset has a smaller timestamp), or the base offset.
    pub fn lookup_before(&self, ts: i64) -> i64 {
        let idx = self.entries.partition_point(|e| e.timestamp < ts);
        if idx == 0 {
            self.base_offset
        } else {
            self.base_offset
                .saturating_add(i64::from(self.entries[idx - 1].relative_offset))
        }
    }

    pub fn push(&mut self, e: TimeEntry) {
        self.entries.push(e);
    }

    pub fn append(&mut self, e: TimeEntry) -> Result<(), StorageError> {
        let mut buf = [0u8; TIME_ENTRY_SIZE];
        buf[..8].copy_from_slice(&e.timestamp.to_be_bytes());
        buf[8..].copy_from_slice(&e.relative_offset.to_be_bytes());
        let at = (self.entries.len() * TIME_ENTRY_SIZE) as u64;
        self.file.write_at(&buf, at)?;
        self.entries.push(e);
        Ok(())
    }

    /// Drops the entries pointing at offsets `>= offset` (Kafka's `TimeIndex.truncateTo`)
    /// and rewrites the file (fsynced).
    pub fn truncate_from_offset(&mut self, offset: i64) -> Result<(), StorageError> {
        let base = self.base_offset;
        self.entries
            .retain(|e| base.saturating_add(i64::from(e.relative_offset)) < offset);
        self.rewrite_file()?;
        self.sync()
    }

    pub fn rewrite_file(&mut self) -> Result<(), StorageError> {
        let mut buf = Vec::with_capacity(self.entries.len() * TIME_ENTRY_SIZE);
        for e in &self.entries {
            buf.extend_from_slice(&e.timestamp.to_be_bytes());
            buf.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        self.file.rewrite(&buf)
    }

    pub fn sync(&self) -> Result<(), StorageError> {
        self.file.sync()
    }

    pub fn trim(&mut self) -> Result<(), StorageError> {
        self.file
            .trim((self.entries.len() * TIME_ENTRY_SIZE) as u64)
    }

    pub fn seal(&mut self) {
        self.file.seal();
    }
}
