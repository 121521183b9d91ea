//! Small durable text files in a partition directory (Kafka's checkpoint format: a version
//! line, a count line, then one entry per line), written atomically: temp file, fsync,
//! rename, fsync of the directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::IoContext;
use crate::StorageError;

/// Name of the log start offset checkpoint (one offset: the DeleteRecords low watermark).
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
/// Name of the cleaner checkpoint (one offset: the first dirty offset).
pub const CLEANER_OFFSET_FILE: &str = "cleaner-offset-checkpoint";

/// Writes `version 0`, the number of lines, then `lines`, atomically and durably.
pub fn write_lines(dir: &Path, name: &str, lines: &[String]) -> Result<(), StorageError> {
    write_lines_at(&dir.join(name), lines)
}

/// [`write_lines`] to `path`: through `<path>.tmp` (written, fsynced), renamed over `path`,
/// then the directory fsynced (Kafka's `CheckpointFile.write` with `sync`).
pub fn write_lines_at(path: &Path, lines: &[String]) -> Result<(), StorageError> {
    write_lines_with(path, lines, true)
}

/// As [`write_lines`], atomic (temp file renamed over the target) but not fsynced: the caller
/// syncs later (Kafka's `CheckpointFile.write` with `sync = false`, used for the leader-epoch
/// checkpoint off the request path since KAFKA-15046).
pub fn write_lines_unsynced(dir: &Path, name: &str, lines: &[String]) -> Result<(), StorageError> {
    write_lines_with(&dir.join(name), lines, false)
}

fn write_lines_with(path: &Path, lines: &[String], sync: bool) -> Result<(), StorageError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut text = format!("0\n{}\n", lines.len());
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(text.as_bytes()).at(&tmp)?;
        if sync {
            f.sync_all().at(&tmp)?;
        }
    }
    std::fs::rename(&tmp, path).at(path)?;
    if sync {
        File::open(dir).at(dir)?.sync_all().at(dir)?;
    }
    Ok(())
}

/// Reads the entry lines of a checkpoint file; `Ok(None)` if it is missing or malformed
/// (a malformed file is logged and treated as missing).
pub fn read_lines(dir: &Path, name: &str) -> Result<Option<Vec<String>>, StorageError> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            tracing::warn!(file = %path.display(), "ignoring checkpoint that is not UTF-8");
            return Ok(None);
        }
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    let mut lines = text.lines();
    let version = lines.next().map(str::trim);
    let count = lines.next().and_then(|c| c.trim().parse::<usize>().ok());
    let entries: Vec<String> = lines
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    match (version, count) {
        (Some("0"), Some(n)) if n == entries.len() => Ok(Some(entries)),
        _ => {
            tracing::warn!(file = %path.display(), "ignoring malformed checkpoint file");
            Ok(None)
        }
    }
}

/// Writes a single-offset checkpoint.
pub fn write_offset(dir: &Path, name: &str, offset: i64) -> Result<(), StorageError> {
    write_lines(dir, name, &[offset.to_string()])
}

/// Reads a single-offset checkpoint.
pub fn read_offset(dir: &Path, name: &str) -> Result<Option<i64>, StorageError> {
    Ok(
        read_lines(dir, name)?.and_then(|lines| match lines.as_slice() {
            [one] => one.parse::<i64>().ok(),
            _ => None,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_offset(dir.path(), "x").expect("read"), None);
        write_offset(dir.path(), "x", 42).expect("write");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("x")).expect("read"),
            "0\n1\n42\n"
        );
        assert_eq!(read_offset(dir.path(), "x").expect("read"), Some(42));
        std::fs::write(dir.path().join("x"), "0\n2\n42\n").expect("write");
        assert_eq!(read_offset(dir.path(), "x").expect("read"), None);
        std::fs::write(dir.path().join("x"), [0xffu8, 0xfe]).expect("write");
        assert_eq!(read_offset(dir.path(), "x").expect("read"), None);
    }
}
