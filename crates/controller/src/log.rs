//! [`MetadataLog`]: the local metadata log.
//!
//! One file of frames `u32 length | u32 crc32c | JSON record`; the `i`-th record (from 1) has
//! metadata offset `i`. Each commit is appended and
//! fsynced before it is applied, so an acknowledged metadata change survives `kill -9`. Opening
//! reads every frame and truncates a torn or corrupt tail (logged).

use crate::records::MetadataRecord;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The metadata log file.
#[derive(Debug)]
pub struct MetadataLog {
    path: PathBuf,
    file: File,
    len: u64,
}

/// Largest record frame accepted when reading (guards against a corrupt length).
const MAX_FRAME: usize = 16 * 1024 * 1024;

impl MetadataLog {
    /// Opens (creating if missing) the log at `path` and returns it with every valid record.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<(MetadataLog, Vec<MetadataRecord>)> {
        let path = path.into();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let mut records = Vec::new();
        let mut pos = 0usize;
        let valid_end = loop {
            if pos == data.len() {
                break pos;
            }
            if data.len() - pos < 8 {
                break pos;
            }
            let len = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]])
                as usize;
            let crc =
                u32::from_be_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
            if len > MAX_FRAME || data.len() - pos - 8 < len {
                break pos;
            }
            let body = &data[pos + 8..pos + 8 + len];
            if crc32c::crc32c(body) != crc {
                break pos;
            }
            match serde_json::from_slice::<MetadataRecord>(body) {
                Ok(r) => records.push(r),
                Err(_) => break pos,
            }
            pos += 8 + len;
        };
        if valid_end < data.len() {
            tracing::warn!(
                path = %path.display(),
                truncated_bytes = data.len() - valid_end,
                "metadata log has a torn or corrupt tail; truncating it"
            );
            file.set_len(valid_end as u64)?;
            file.sync_all()?;
        }
        Ok((
            MetadataLog {
                path,
                file,
                len: valid_end as u64,
            },
            records,
        ))
    }

    /// Appends records and fsyncs them.
    pub fn append(&mut self, records: &[MetadataRecord]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            let body = serde_json::to_vec(r).map_err(std::io::Error::other)?;
            buf.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buf.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
            buf.extend_from_slice(&body);
        }
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(&buf, self.len)?;
        self.file.sync_data()?;
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes (appends are already synced; kept for symmetry with segments).
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.log");
        let recs = vec![
            MetadataRecord::ProducerIds {
                next_block_start: 1000,
                broker_id: 1,
                broker_epoch: 5,
            },
            MetadataRecord::RemoveTopic {
                topic_id: uuid::Uuid::from_u128(5),
            },
        ];
        {
            let (mut log, existing) = MetadataLog::open(&path).unwrap();
            assert!(existing.is_empty());
            log.append(&recs).unwrap();
        }
        // Simulate a torn write.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2]).unwrap();
        drop(f);
        let (mut log, existing) = MetadataLog::open(&path).unwrap();
        assert_eq!(existing, recs);
        log.append(&recs[..1]).unwrap();
        drop(log);
        let (_, existing) = MetadataLog::open(&path).unwrap();
        assert_eq!(existing.len(), 3);
    }
}
