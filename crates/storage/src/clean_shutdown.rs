//! The clean-shutdown marker (`.kafka_cleanshutdown`) in the broker's log directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Name of the marker file.
pub const MARKER_FILE: &str = ".kafka_cleanshutdown";

/// Whether the marker exists in `log_dir`; removes it so that a crash afterwards is
/// detected on the next start.
pub fn take(log_dir: &Path) -> std::io::Result<bool> {
    let path = log_dir.join(MARKER_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            if let Ok(dir) = File::open(log_dir) {
                dir.sync_all()?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes and fsyncs the marker (after every log has been closed).
pub fn mark(log_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(log_dir)?;
    let path = log_dir.join(MARKER_FILE);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    f.write_all(b"")?;
    f.sync_all()?;
    File::open(log_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mark_and_take() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!super::take(dir.path()).expect("take"));
        super::mark(dir.path()).expect("mark");
        assert!(super::take(dir.path()).expect("take"));
        assert!(!super::take(dir.path()).expect("take"));
    }
}
