//! The replicated metadata log as this node holds it: the controller quorum's state machine
//! ([`MetadataStateMachine`], fed committed entries by `gregor-quorum`) and a bounded journal of
//! the latest entries, from which brokers follow the log ([`MetadataLog::read_since`]).
//!
//! An entry is a batch of `MetadataRecord`s (JSON); every record of the entry replays at the
//! entry's raft index, which is therefore the "offset" of the records — a broker's epoch is the
//! offset of its registration, as in KRaft. A reader that is further behind than the journal
//! reaches gets a snapshot: the records that rebuild the whole state
//! (`ClusterState::snapshot_records`) at the current offset.

use gregor_controller::{ClusterState, MetadataRecord};
use parking_lot::RwLock;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::watch;

/// Entries kept in the journal for followers (older readers get a snapshot).
pub const JOURNAL_ENTRIES: usize = 10_000;

/// Records committed at one offset.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's offset (raft index).
    pub offset: i64,
    /// Its records.
    pub records: Arc<Vec<MetadataRecord>>,
}

/// What a follower at some offset must apply to catch up.
#[derive(Debug, Clone)]
pub enum Delta {
    /// Entries after the follower's offset, in order (possibly none).
    Entries(Vec<Entry>),
    /// The whole state as records, at `offset`: replace the state, then continue from there.
    Snapshot {
        /// Offset the snapshot is taken at.
        offset: i64,
        /// Records rebuilding the state.
        records: Arc<Vec<MetadataRecord>>,
    },
}

#[derive(Debug, Default)]
struct Inner {
    state: ClusterState,
    journal: VecDeque<Entry>,
    /// Everything after this offset is in the journal (-1: the whole log is).
    journal_floor: i64,
    /// Offset of the last applied entry (-1: none).
    last_offset: i64,
}

/// The metadata held by a controller: state, journal, and a watch of the last applied offset.
#[derive(Debug)]
pub struct MetadataLog {
    inner: RwLock<Inner>,
    applied: watch::Sender<i64>,
}

impl Default for MetadataLog {
    fn default() -> Self {
        let (applied, _) = watch::channel(-1);
        MetadataLog {
            inner: RwLock::new(Inner {
                last_offset: -1,
                journal_floor: -1,
                ..Inner::default()
            }),
            applied,
        }
    }
}

impl MetadataLog {
    /// The offset of the last applied entry (-1: none).
    pub fn last_offset(&self) -> i64 {
        self.inner.read().last_offset
    }

    /// Runs `f` on the current state.
    pub fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&self.inner.read().state)
    }

    /// A clone of the current state.
    pub fn state(&self) -> ClusterState {
        self.inner.read().state.clone()
    }

    /// A watch of the last applied offset.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.applied.subscribe()
    }

    /// Applies a committed entry.
    pub fn apply(&self, offset: i64, records: Vec<MetadataRecord>) {
        {
            let mut inner = self.inner.write();
            for r in &records {
                inner.state.replay(offset, r);
            }
            inner.last_offset = offset;
            inner.journal.push_back(Entry {
                offset,
                records: Arc::new(records),
            });
            while inner.journal.len() > JOURNAL_ENTRIES {
                if let Some(e) = inner.journal.pop_front() {
                    inner.journal_floor = e.offset;
                }
            }
        }
        self.applied.send_replace(offset);
    }

    /// Replaces everything with a snapshot taken at `offset`.
    pub fn restore(&self, offset: i64, records: &[MetadataRecord]) {
        {
            let mut inner = self.inner.write();
            let mut state = ClusterState::default();
            for r in records {
                state.replay(offset, r);
            }
            inner.state = state;
            inner.journal.clear();
            inner.journal_floor = offset;
            inner.last_offset = offset;
        }
        self.applied.send_replace(offset);
    }

    /// What a follower that has applied everything up to `offset` (-1: nothing) needs next.
    pub fn read_since(&self, offset: i64) -> Delta {
        let inner = self.inner.read();
        if offset >= inner.last_offset {
            return Delta::Entries(Vec::new());
        }
        if offset < inner.journal_floor {
            return Delta::Snapshot {
                offset: inner.last_offset,
                records: Arc::new(inner.state.snapshot_records()),
            };
        }
        Delta::Entries(
            inner
                .journal
                .iter()
                .filter(|e| e.offset > offset)
                .cloned()
                .collect(),
        )
    }
}

/// The wire form of an entry's records.
pub fn encode_records(records: &[MetadataRecord]) -> Vec<u8> {
    serde_json::to_vec(records).unwrap_or_default()
}

/// Decodes an entry's records.
pub fn decode_records(data: &[u8]) -> Result<Vec<MetadataRecord>, String> {
    serde_json::from_slice(data).map_err(|e| format!("undecodable metadata entry: {e}"))
}

/// [`MetadataLog`] as the quorum's state machine.
#[derive(Debug, Clone)]
pub struct MetadataStateMachine(pub Arc<MetadataLog>);

impl gregor_quorum::StateMachine for MetadataStateMachine {
    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        match decode_records(data) {
            Ok(records) => {
                self.0.apply(index as i64, records);
                Vec::new()
            }
            Err(e) => {
                // Every voter decodes the same bytes the same way: skipping keeps them equal.
                tracing::error!(index, error = %e, "skipping a metadata entry");
                e.into_bytes()
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        let (offset, records) = self
            .0
            .read(|s| (self.0.last_offset(), s.snapshot_records()));
        serde_json::to_vec(&(offset, records)).unwrap_or_default()
    }

    fn restore(&mut self, last_index: u64, snapshot: &[u8]) -> Result<(), String> {
        let (offset, records): (i64, Vec<MetadataRecord>) =
            serde_json::from_slice(snapshot).map_err(|e| format!("bad metadata snapshot: {e}"))?;
        self.0.restore(offset.max(last_index as i64), &records);
        Ok(())
    }
}
