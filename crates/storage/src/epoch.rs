//! The leader-epoch cache of a partition (Kafka's `LeaderEpochFileCache`), persisted as
//! `leader-epoch-checkpoint` in the partition directory:
//!
//! ```text
//! 0              <- version
//! 2              <- number of entries
//! 0 0            <- epoch startOffset
//! 3 1200
//! ```
//!
//! An entry is added when an append carries a leader epoch newer than the latest one; entries
//! are truncated at the start when the log start offset moves (the last entry before it is
//! kept, moved to the new start) and at the end when recovery truncates the log.

use std::path::Path;

use crate::checkpoint;
use crate::StorageError;

/// File name of the checkpoint.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One `(epoch, start offset)` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// First offset written in that epoch.
    pub start_offset: i64,
}

/// In-memory epoch entries, ordered by epoch and start offset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the checkpoint; `Ok(None)` if missing or malformed (the caller rebuilds it).
    pub fn load(dir: &Path) -> Result<Option<LeaderEpochCache>, StorageError> {
        let Some(lines) = checkpoint::read_lines(dir, LEADER_EPOCH_CHECKPOINT)? else {
            return Ok(None);
        };
        let mut cache = LeaderEpochCache::default();
        for line in lines {
            let mut parts = line.split_whitespace();
            let (Some(e), Some(o), None) = (parts.next(), parts.next(), parts.next()) else {
                return Ok(None);
            };
            let (Ok(epoch), Ok(start_offset)) = (e.parse::<i32>(), o.parse::<i64>()) else {
                return Ok(None);
            };
            if cache
                .entries
                .last()
                .is_some_and(|l| l.epoch >= epoch || l.start_offset > start_offset)
                || epoch < 0
                || start_offset < 0
            {
                return Ok(None);
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        Ok(Some(cache))
    }

    /// Writes the checkpoint file (atomically, fsynced).
    pub fn persist(&self, dir: &Path) -> Result<(), StorageError> {
        checkpoint::write_lines(dir, LEADER_EPOCH_CHECKPOINT, &self.lines())
    }

    /// Writes the checkpoint file atomically but without fsync (the caller syncs it later).
    pub fn persist_unsynced(&self, dir: &Path) -> Result<(), StorageError> {
        checkpoint::write_lines_unsynced(dir, LEADER_EPOCH_CHECKPOINT, &self.lines())
    }

    fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect()
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest epoch.
    /// Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            return false;
        }
        // A new epoch starting at or before an existing entry's start replaces it.
        while self
            .entries
            .last()
            .is_some_and(|l| l.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Drops entries that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        before != self.entries.len()
    }

    /// The log start offset moved to `start_offset`: entries before it are dropped, except
    /// the latest of them, which now starts at `start_offset` (Kafka's `truncateFromStart`).
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|e| e.start_offset < start_offset);
        if below == 0 {
            return false;
        }
        let mut kept = self.entries[below - 1];
        let rest = self.entries.split_off(below);
        self.entries.clear();
        if rest.first().is_none_or(|r| r.start_offset > start_offset) {
            kept.start_offset = start_offset;
            self.entries.push(kept);
        }
        self.entries.extend(rest);
        true
    }

    /// Kafka's `endOffsetFor`: the largest epoch `<= epoch` and the offset where it ends (the
    /// start of the next epoch, or `log_end_offset` for the latest epoch). `None` (Kafka's
    /// `UNDEFINED_EPOCH`/`UNDEFINED_EPOCH_OFFSET`, i.e. `(-1, -1)` on the wire) when the
    /// requested epoch is undefined (`< 0`), newer than the latest epoch, or nothing is
    /// known. A requested epoch older than every entry answers `(epoch, first start offset)`.
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        let latest = self.entries.last()?;
        if latest.epoch == epoch {
            return Some((epoch, log_end_offset));
        }
        let higher = self.entries.partition_point(|e| e.epoch <= epoch);
        let higher_entry = self.entries.get(higher)?;
        match higher.checked_sub(1) {
            None => Some((epoch, higher_entry.start_offset)),
            Some(floor) => Some((self.entries[floor].epoch, higher_entry.start_offset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, o) in entries {
            assert!(c.assign(e, o));
        }
        c
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert_eq!(c.end_offset_for(-1, 30), None);
        assert_eq!(c.end_offset_for(0, 30), Some((0, 0)));
        assert_eq!(c.end_offset_for(1, 30), Some((1, 10)));
        assert_eq!(c.end_offset_for(2, 30), Some((1, 10)));
        assert_eq!(c.end_offset_for(3, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(4, 30), Some((3, 20)));
        assert_eq!(c.end_offset_for(5, 30), Some((5, 30)));
        assert_eq!(c.end_offset_for(6, 30), None);
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 0), None);
    }

    #[test]
    fn assign_ignores_old_epochs() {
        let mut c = cache(&[(2, 5)]);
        assert!(!c.assign(2, 9));
        assert!(!c.assign(1, 9));
        assert!(!c.assign(-1, 9));
        assert!(c.assign(4, 9));
        assert_eq!(c.latest_epoch(), Some(4));
    }

    #[test]
    fn truncation() {
        let mut c = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert!(c.truncate_from_start(15));
        assert_eq!(
            c.entries(),
            &[
                EpochEntry {
                    epoch: 3,
                    start_offset: 15
                },
                EpochEntry {
                    epoch: 5,
                    start_offset: 20
                }
            ]
        );
        assert!(!c.truncate_from_start(15));
        assert!(c.truncate_from_start(20));
        assert_eq!(c.entries().len(), 1);
        assert_eq!(c.entries()[0].start_offset, 20);
        let mut c = cache(&[(1, 0), (3, 10), (5, 20)]);
        assert!(c.truncate_from_end(10));
        assert_eq!(c.latest_epoch(), Some(1));
    }

    #[test]
    fn persist_and_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(LeaderEpochCache::load(dir.path()).expect("load"), None);
        let c = cache(&[(0, 0), (2, 7)]);
        c.persist(dir.path()).expect("persist");
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).expect("read");
        assert_eq!(text, "0\n2\n0 0\n2 7\n");
        assert_eq!(LeaderEpochCache::load(dir.path()).expect("load"), Some(c));
        std::fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n2\n2 0\n1 7\n")
            .expect("write");
        assert_eq!(LeaderEpochCache::load(dir.path()).expect("load"), None);
    }
}
