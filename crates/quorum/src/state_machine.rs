//! The caller's [`StateMachine`] and the snapshot file: openraft's [`RaftStateMachine`].
//!
//! # Indexes
//! Every raft log entry has an index, and three kinds of entries exist: the caller's data (passed
//! to [`StateMachine::apply`]), membership entries (index 0 is the voter set written when the
//! quorum forms) and a blank entry that each new leader appends to commit its term. The last two
//! are *not* passed to `apply`, but they take an index, so the indexes `apply` sees are strictly
//! increasing with gaps (for example 2, 3, 4, 6 when a new leader was elected at 5).
//! [`Proposed::index`](crate::Proposed::index) is the same index.
//!
//! # Snapshots
//! openraft decides when to snapshot ([`QuorumConfig::snapshot_every`](crate::QuorumConfig)).
//! [`StateMachine::snapshot`] is called on openraft's state-machine task, between two `apply`s,
//! so the bytes match exactly the entries applied so far; the file is then written off that task.
//! The snapshot file (`snapshot` in the quorum directory) holds openraft's snapshot metadata
//! (last included log id and the voter set) and the caller's bytes, each CRC-checked; it is
//! replaced atomically and durably (temp file, fsync, rename, directory fsync), and only by a
//! newer snapshot. At open, [`StateMachine::restore`] receives it before openraft re-applies the
//! committed log entries that follow it.

use crate::error::QuorumError;
use crate::fsutil::{self, Frame};
use crate::log_store::NO_INDEX;
use crate::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{AnyError, EntryPayload, OptionalSend, StorageIOError};
use parking_lot::Mutex;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The application state that the quorum replicates (for Gregor, the cluster metadata).
///
/// The implementation must be deterministic: every voter applies the same entries in the same
/// order and must reach the same state. It is owned by the quorum; keep whatever the rest of the
/// program must read behind your own shared handle (for example an `Arc<RwLock<ClusterState>>`
/// inside the implementation).
///
/// Pass it to [`Quorum::open`](crate::Quorum::open) in its initial (empty) state: the quorum calls
/// [`restore`](StateMachine::restore) with the stored snapshot, if any, then `apply`s the
/// committed entries that follow.
pub trait StateMachine: Send + 'static {
    /// Applies one committed entry (`index` = its log index, strictly increasing, with gaps where
    /// membership or blank entries sit) and returns a reply for the proposer.
    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8>;
    /// A full snapshot of the state (everything applied so far).
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with a snapshot taken when the last applied index was `last_index`.
    /// An `Err` at open fails [`Quorum::open`](crate::Quorum::open); an `Err` while installing a
    /// snapshot sent by the leader stops this node's raft (it cannot follow).
    fn restore(&mut self, last_index: u64, snapshot: &[u8]) -> Result<(), String>;
}

const SNAPSHOT_MAGIC: &[u8] = b"GQSNAP01";

/// A snapshot held in memory (the latest one, also on disk).
#[derive(Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Arc<Vec<u8>>,
}

struct SmInner {
    user: Box<dyn StateMachine>,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

/// State shared by the state-machine store, its snapshot builders and the quorum's status.
pub(crate) struct SmShared {
    inner: Mutex<SmInner>,
    current: Mutex<Option<StoredSnapshot>>,
    /// Serializes snapshot file writes.
    file_lock: Mutex<()>,
    path: PathBuf,
    /// The last applied index, or [`NO_INDEX`].
    pub(crate) applied: AtomicU64,
    /// The last index included in the current snapshot, or [`NO_INDEX`].
    pub(crate) snapshot_index: AtomicU64,
    /// How many snapshots were restored or installed into the state machine (tests, status).
    pub(crate) restores: AtomicU64,
    next_id: AtomicU64,
}

/// openraft's state machine over the caller's [`StateMachine`].
pub(crate) struct SmStore {
    shared: Arc<SmShared>,
}

/// Builds a snapshot from bytes captured on the state-machine task.
pub(crate) struct SnapBuilder {
    shared: Arc<SmShared>,
    snapshot: Option<StoredSnapshot>,
}

fn idx(l: Option<LogId>) -> u64 {
    l.map(|l| l.index).unwrap_or(NO_INDEX)
}

impl SmStore {
    /// Loads the snapshot under `dir` (if any) into `user`.
    pub(crate) fn open(
        dir: &Path,
        mut user: Box<dyn StateMachine>,
    ) -> Result<SmStore, QuorumError> {
        let path = dir.join("snapshot");
        let current = read_snapshot_file(&path)?;
        let (last_applied, last_membership) = match &current {
            Some(s) => {
                if let Some(last) = s.meta.last_log_id {
                    user.restore(last.index, &s.data).map_err(|reason| {
                        QuorumError::SnapshotRestore {
                            index: last.index,
                            reason,
                        }
                    })?;
                }
                tracing::info!(snapshot = %s.meta, bytes = s.data.len(), "restored the quorum snapshot");
                (s.meta.last_log_id, s.meta.last_membership.clone())
            }
            None => (None, StoredMembership::default()),
        };
        let restores = u64::from(
            current
                .as_ref()
                .is_some_and(|s| s.meta.last_log_id.is_some()),
        );
        let shared = Arc::new(SmShared {
            inner: Mutex::new(SmInner {
                user,
                last_applied,
                last_membership,
            }),
            snapshot_index: AtomicU64::new(idx(current.as_ref().and_then(|s| s.meta.last_log_id))),
            current: Mutex::new(current),
            file_lock: Mutex::new(()),
            path,
            applied: AtomicU64::new(idx(last_applied)),
            restores: AtomicU64::new(restores),
            next_id: AtomicU64::new(0),
        });
        Ok(SmStore { shared })
    }

    /// The shared state (for status).
    pub(crate) fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }
}

impl SmShared {
    /// Makes `snap` the current snapshot and writes it, unless a newer one is already current.
    fn persist(&self, snap: &StoredSnapshot) -> Result<(), QuorumError> {
        let _file = self.file_lock.lock();
        if let Some(cur) = &*self.current.lock() {
            if cur.meta.last_log_id > snap.meta.last_log_id {
                return Ok(());
            }
        }
        write_snapshot_file(&self.path, snap)?;
        self.snapshot_index
            .store(idx(snap.meta.last_log_id), Ordering::Release);
        *self.current.lock() = Some(snap.clone());
        Ok(())
    }
}

fn snapshot_err(meta: Option<&SnapshotMeta>, e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_snapshot(meta.map(|m| m.signature()), AnyError::error(e.to_string()))
        .into()
}

async fn persist_off_task(shared: Arc<SmShared>, snap: StoredSnapshot) -> Result<(), StorageError> {
    let meta = snap.meta.clone();
    tokio::task::spawn_blocking(move || shared.persist(&snap))
        .await
        .map_err(|e| snapshot_err(Some(&meta), e))?
        .map_err(|e| snapshot_err(Some(&meta), e))
}

impl RaftSnapshotBuilder<TypeConfig> for SnapBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let snap = self
            .snapshot
            .take()
            .ok_or_else(|| snapshot_err(None, "snapshot builder used twice"))?;
        persist_off_task(self.shared.clone(), snap.clone()).await?;
        tracing::info!(snapshot = %snap.meta, bytes = snap.data.len(), "built a quorum snapshot");
        Ok(Snapshot {
            meta: snap.meta,
            snapshot: Box::new(Cursor::new((*snap.data).clone())),
        })
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotBuilder = SnapBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let inner = self.shared.inner.lock();
        Ok((inner.last_applied, inner.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<u8>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.shared.inner.lock();
        let mut replies = Vec::new();
        for entry in entries {
            inner.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(Vec::new()),
                EntryPayload::Normal(data) => {
                    let reply = inner.user.apply(entry.log_id.index, &data);
                    replies.push(reply);
                }
                EntryPayload::Membership(m) => {
                    inner.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(Vec::new());
                }
            }
        }
        self.shared
            .applied
            .store(idx(inner.last_applied), Ordering::Release);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapBuilder {
        let inner = self.shared.inner.lock();
        let data = inner.user.snapshot();
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match inner.last_applied {
            Some(l) => format!("{}-{}-{n}", l.leader_id.term, l.index),
            None => format!("0-none-{n}"),
        };
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.last_membership.clone(),
            snapshot_id,
        };
        SnapBuilder {
            shared: self.shared.clone(),
            snapshot: Some(StoredSnapshot {
                meta,
                data: Arc::new(data),
            }),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = Arc::new(snapshot.into_inner());
        {
            let mut inner = self.shared.inner.lock();
            if let Some(last) = meta.last_log_id {
                inner.user.restore(last.index, &data).map_err(|reason| {
                    snapshot_err(
                        Some(meta),
                        format!("the state machine rejected the snapshot: {reason}"),
                    )
                })?;
            }
            inner.last_applied = meta.last_log_id;
            inner.last_membership = meta.last_membership.clone();
            self.shared
                .applied
                .store(idx(meta.last_log_id), Ordering::Release);
            self.shared.restores.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(snapshot = %meta, bytes = data.len(), "installed a quorum snapshot from the leader");
        persist_off_task(
            self.shared.clone(),
            StoredSnapshot {
                meta: meta.clone(),
                data,
            },
        )
        .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.shared.current.lock().clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new((*s.data).clone())),
        }))
    }
}

/// `magic | frame(postcard meta) | u64 data length | u32 crc32c(data) | data`, replaced atomically.
fn write_snapshot_file(path: &Path, snap: &StoredSnapshot) -> Result<(), QuorumError> {
    let meta =
        postcard::to_stdvec(&snap.meta).map_err(|e| QuorumError::corrupt(path, e.to_string()))?;
    let mut head = SNAPSHOT_MAGIC.to_vec();
    fsutil::push_frame(&mut head, &meta);
    head.extend_from_slice(&(snap.data.len() as u64).to_be_bytes());
    head.extend_from_slice(&crc32c::crc32c(&snap.data).to_be_bytes());
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| QuorumError::io(&tmp, e))?;
    f.write_all(&head)
        .and_then(|_| f.write_all(&snap.data))
        .and_then(|_| f.sync_all())
        .map_err(|e| QuorumError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| QuorumError::io(path, e))?;
    fsutil::fsync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn read_snapshot_file(path: &Path) -> Result<Option<StoredSnapshot>, QuorumError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QuorumError::io(path, e)),
    };
    let rest = data
        .strip_prefix(SNAPSHOT_MAGIC)
        .ok_or_else(|| QuorumError::corrupt(path, "bad magic (not a quorum snapshot)"))?;
    let (meta_body, n) = match fsutil::read_frame(rest) {
        Frame::Ok(b, n) => (b, n),
        Frame::End | Frame::Short => {
            return Err(QuorumError::corrupt(path, "truncated snapshot header"))
        }
        Frame::Bad(why) => {
            return Err(QuorumError::corrupt(
                path,
                format!("snapshot header: {why}"),
            ))
        }
    };
    let meta: SnapshotMeta = postcard::from_bytes(meta_body)
        .map_err(|e| QuorumError::corrupt(path, format!("bad snapshot metadata: {e}")))?;
    let rest = &rest[n..];
    if rest.len() < 12 {
        return Err(QuorumError::corrupt(path, "truncated snapshot"));
    }
    let len = u64::from_be_bytes(rest[..8].try_into().expect("8 bytes"));
    let crc = u32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
    let body = &rest[12..];
    if body.len() as u64 != len {
        return Err(QuorumError::corrupt(
            path,
            format!("snapshot data is {} bytes, header says {len}", body.len()),
        ));
    }
    if crc32c::crc32c(body) != crc {
        return Err(QuorumError::corrupt(path, "snapshot data crc mismatch"));
    }
    Ok(Some(StoredSnapshot {
        meta,
        data: Arc::new(body.to_vec()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    #[test]
    fn snapshot_file_roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot");
        let snap = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: Some(LogId::new(CommittedLeaderId::new(3, 1), 42)),
                last_membership: StoredMembership::default(),
                snapshot_id: "x".into(),
            },
            data: Arc::new(b"state bytes".to_vec()),
        };
        write_snapshot_file(&path, &snap).unwrap();
        let back = read_snapshot_file(&path).unwrap().unwrap();
        assert_eq!(back.meta, snap.meta);
        assert_eq!(*back.data, *snap.data);
        let mut raw = std::fs::read(&path).unwrap();
        let n = raw.len();
        raw[n - 2] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        let err = read_snapshot_file(&path).err().unwrap();
        assert!(err.to_string().contains("crc mismatch"), "{err}");
        std::fs::write(&path, &raw[..n - 3]).unwrap();
        let err = read_snapshot_file(&path).err().unwrap();
        assert!(err.to_string().contains("header says"), "{err}");
    }
}
