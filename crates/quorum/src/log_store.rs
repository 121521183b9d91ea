//! The raft log, the vote and the committed index on disk: openraft's [`RaftLogStorage`].
//!
//! # Layout (under the quorum directory)
//! - `log/<first index, 20 digits>.seg`: segment files of CRC frames, one entry per frame
//!   (postcard of openraft's `Entry`). A segment holds consecutive indexes starting at its name;
//!   a new segment starts after [`QuorumConfig::segment_entries`](crate::QuorumConfig) entries, or
//!   when the next entry does not follow the last one (after a snapshot install purged the log).
//! - `vote`: the current vote (term, voted-for, committed flag), replaced atomically and durably.
//! - `purged`: the last purged log id, replaced atomically and durably *before* segments are
//!   deleted, so a crash in between leaves only stale segments, which the next open deletes.
//! - `committed`: the last committed log id, written without fsync: it is a hint that lets a
//!   restarted node re-apply its committed entries at once, and is ignored (with a warning) when
//!   torn. Raft's safety never depends on it: a stale value only delays re-applying.
//!
//! # Durability
//! All disk writes happen on one dedicated thread, in the order openraft issued them. An append
//! is written and `fdatasync`ed (a group of queued appends shares one fsync) *before* openraft's
//! `LogFlushed` callback fires, so openraft never counts an entry it has not got on disk (for a
//! vote in an election or for the commit quorum). `save_vote` returns only after the vote file is
//! durable. Truncation deletes later segments first (newest first, directory fsynced) and then
//! truncates the segment holding the cut, so every crash point leaves a contiguous log. Opening
//! truncates a torn tail of the last segment (logged); any other damage is a
//! [`QuorumError::Corrupt`] naming the file.
//!
//! Entries are also kept in memory (reads never touch the disk): the metadata log is small and
//! openraft purges it behind each snapshot.

use crate::error::QuorumError;
use crate::fsutil::{self, Frame};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogId, StorageIOError};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

const VOTE_MAGIC: &[u8] = b"GQVOTE01";
const PURGED_MAGIC: &[u8] = b"GQPURG01";
const COMMITTED_MAGIC: &[u8] = b"GQCMIT01";

/// `u64::MAX` in an index atomic means "none".
pub(crate) const NO_INDEX: u64 = u64::MAX;

/// State shared by the log store, its readers and the quorum's status.
#[derive(Debug)]
pub(crate) struct LogShared {
    mem: Mutex<MemLog>,
    /// The last log index in this node's log (appended, maybe not yet flushed), or [`NO_INDEX`].
    pub(crate) last_index: AtomicU64,
    /// The last committed index this node knows, or [`NO_INDEX`].
    pub(crate) committed: AtomicU64,
}

#[derive(Debug, Default)]
struct MemLog {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

impl LogShared {
    fn update_last_index(&self, mem: &MemLog) {
        let last = mem
            .entries
            .keys()
            .next_back()
            .copied()
            .or(mem.last_purged.map(|l| l.index))
            .unwrap_or(NO_INDEX);
        self.last_index.store(last, Ordering::Release);
    }
}

/// openraft's log storage over the segment files.
pub(crate) struct LogStore {
    shared: Arc<LogShared>,
    writer: mpsc::Sender<Cmd>,
    /// Joins the writer thread (taken by [`LogStore::writer_handle`]).
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A handle that stops the writer thread once openraft has dropped the log store.
pub(crate) struct WriterHandle {
    thread: std::thread::JoinHandle<()>,
}

impl WriterHandle {
    /// Waits for the writer thread to finish its queue and exit (it exits when the log store,
    /// owned by openraft, is dropped at shutdown).
    pub(crate) fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("the quorum log writer thread panicked");
        }
    }
}

/// A read handle on the in-memory log.
pub(crate) struct LogReader {
    shared: Arc<LogShared>,
}

type Done = tokio::sync::oneshot::Sender<Result<(), QuorumError>>;

enum Cmd {
    Append {
        first: u64,
        frames: Vec<Vec<u8>>,
        callback: LogFlushed<TypeConfig>,
    },
    Truncate {
        since: u64,
        done: Done,
    },
    Purge {
        upto: LogId,
        body: Vec<u8>,
        done: Done,
    },
    Vote {
        body: Vec<u8>,
        done: Done,
    },
    Committed {
        body: Vec<u8>,
    },
}

impl LogStore {
    /// Opens (creating if needed) the log under `dir`, reading every file; a torn tail of the last
    /// segment is truncated.
    pub(crate) fn open(dir: &Path, segment_entries: u64) -> Result<LogStore, QuorumError> {
        let log_dir = dir.join("log");
        std::fs::create_dir_all(&log_dir).map_err(|e| QuorumError::io(&log_dir, e))?;

        let vote_path = dir.join("vote");
        let vote: Option<Vote> = fsutil::read_atomic(&vote_path, VOTE_MAGIC)?
            .map(|b| postcard::from_bytes(&b))
            .transpose()
            .map_err(|e| QuorumError::corrupt(&vote_path, format!("bad vote encoding: {e}")))?;
        let purged_path = dir.join("purged");
        let last_purged: Option<LogId> = fsutil::read_atomic(&purged_path, PURGED_MAGIC)?
            .map(|b| postcard::from_bytes(&b))
            .transpose()
            .map_err(|e| QuorumError::corrupt(&purged_path, format!("bad log id encoding: {e}")))?;

        let (disk, entries) = Disk::open(log_dir, segment_entries, last_purged)?;

        let committed_path = dir.join("committed");
        let mut committed: Option<LogId> =
            match fsutil::read_atomic(&committed_path, COMMITTED_MAGIC) {
                Ok(b) => b.and_then(|b| match postcard::from_bytes::<Option<LogId>>(&b) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring an undecodable committed-index hint");
                        None
                    }
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring the committed-index hint");
                    None
                }
            };
        // Never claim more committed than the log holds.
        let last_log_id = entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(last_purged);
        // A node accepts entries of a term only after durably voting for that term, so its vote
        // is never older than its log. If it is, the vote file was lost or rolled back, and
        // starting could vote twice in a term: refuse.
        let vote_term = vote.map(|v| v.leader_id.term).unwrap_or(0);
        let log_term = last_log_id.map(|l| l.leader_id.term).unwrap_or(0);
        if vote_term < log_term {
            return Err(QuorumError::corrupt(
                &vote_path,
                format!(
                    "the vote (term {vote_term}) is older than the log (last entry term {log_term}): \
                     the vote file was lost or rolled back; starting could vote twice in a term"
                ),
            ));
        }
        if committed.map(|c| c.index) > last_log_id.map(|l| l.index) {
            tracing::warn!(
                ?committed,
                ?last_log_id,
                "committed hint is past the log end; ignoring it"
            );
            committed = None;
        }
        tracing::info!(
            dir = %dir.display(),
            entries = entries.len(),
            ?last_purged,
            ?last_log_id,
            ?vote,
            ?committed,
            "opened the quorum log"
        );

        let mem = MemLog {
            entries,
            last_purged,
            vote,
            committed,
        };
        let shared = Arc::new(LogShared {
            mem: Mutex::new(MemLog::default()),
            last_index: AtomicU64::new(NO_INDEX),
            committed: AtomicU64::new(committed.map(|c| c.index).unwrap_or(NO_INDEX)),
        });
        shared.update_last_index(&mem);
        *shared.mem.lock() = mem;

        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            disk,
            vote_path,
            purged_path,
            committed_path,
        };
        let thread = std::thread::Builder::new()
            .name("quorum-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| QuorumError::io(dir, e))?;
        Ok(LogStore {
            shared,
            writer: tx,
            thread: Some(thread),
        })
    }

    /// The shared state (for status).
    pub(crate) fn shared(&self) -> Arc<LogShared> {
        self.shared.clone()
    }

    /// Takes the handle that joins the writer thread.
    pub(crate) fn writer_handle(&mut self) -> Option<WriterHandle> {
        self.thread.take().map(|thread| WriterHandle { thread })
    }

    async fn call(&self, make: impl FnOnce(Done) -> Cmd) -> Result<(), QuorumError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(make(tx))
            .map_err(|_| QuorumError::ShutDown)?;
        rx.await.map_err(|_| QuorumError::ShutDown)?
    }
}

fn write_err(e: &QuorumError) -> StorageError {
    StorageIOError::write_logs(AnyError::new(e)).into()
}

fn read_entries(shared: &LogShared, range: impl RangeBounds<u64>) -> Vec<Entry> {
    shared
        .mem
        .lock()
        .entries
        .range(range)
        .map(|(_, e)| e.clone())
        .collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_entries(&self.shared, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_entries(&self.shared, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = self.shared.mem.lock();
        let last_purged_log_id = mem.last_purged;
        let last_log_id = mem
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let body = postcard::to_stdvec(vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::error(e.to_string())))?;
        self.call(|done| Cmd::Vote { body, done })
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.shared.mem.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.shared.mem.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.shared.mem.lock().committed = committed;
        self.shared.committed.store(
            committed.map(|c| c.index).unwrap_or(NO_INDEX),
            Ordering::Release,
        );
        let body = postcard::to_stdvec(&committed)
            .map_err(|e| StorageIOError::write(AnyError::error(e.to_string())))?;
        // Fire and forget: the hint needs no durability (see the module docs).
        let _ = self.writer.send(Cmd::Committed { body });
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.shared.mem.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut frames = Vec::new();
        let mut first = None;
        {
            let mut mem = self.shared.mem.lock();
            for entry in entries {
                let body = postcard::to_stdvec(&entry).map_err(|e| {
                    StorageIOError::write_log_entry(
                        *entry.get_log_id(),
                        AnyError::error(e.to_string()),
                    )
                })?;
                first.get_or_insert(entry.log_id.index);
                frames.push(body);
                mem.entries.insert(entry.log_id.index, entry);
            }
            self.shared.update_last_index(&mem);
        }
        let Some(first) = first else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        self.writer
            .send(Cmd::Append {
                first,
                frames,
                callback,
            })
            .map_err(|_| write_err(&QuorumError::ShutDown))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating the quorum log");
        {
            let mut mem = self.shared.mem.lock();
            let _ = mem.entries.split_off(&log_id.index);
            self.shared.update_last_index(&mem);
        }
        self.call(|done| Cmd::Truncate {
            since: log_id.index,
            done,
        })
        .await
        .map_err(|e| write_err(&e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging the quorum log");
        let body = postcard::to_stdvec(&log_id)
            .map_err(|e| StorageIOError::write_logs(AnyError::error(e.to_string())))?;
        {
            let mut mem = self.shared.mem.lock();
            if mem.last_purged.map(|p| p.index) >= Some(log_id.index) {
                return Ok(());
            }
            mem.entries = mem.entries.split_off(&(log_id.index + 1));
            mem.last_purged = Some(log_id);
            self.shared.update_last_index(&mem);
        }
        self.call(|done| Cmd::Purge {
            upto: log_id,
            body,
            done,
        })
        .await
        .map_err(|e| write_err(&e))
    }
}

/// The writer thread's state.
struct Writer {
    disk: Disk,
    vote_path: PathBuf,
    purged_path: PathBuf,
    committed_path: PathBuf,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Cmd>) {
        let mut pending: Option<Cmd> = None;
        loop {
            let cmd = match pending.take() {
                Some(c) => c,
                None => match rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                },
            };
            match cmd {
                Cmd::Append {
                    first,
                    frames,
                    callback,
                } => {
                    // Group commit: take every append already queued behind this one. Committed
                    // hints in between are coalesced and written after the batch's fsync (a
                    // hint may only reach the disk after the appends queued before it).
                    let mut batch = vec![(first, frames, callback)];
                    let mut hint = None;
                    while let Ok(next) = rx.try_recv() {
                        match next {
                            Cmd::Append {
                                first,
                                frames,
                                callback,
                            } => batch.push((first, frames, callback)),
                            Cmd::Committed { body } => hint = Some(body),
                            other => {
                                pending = Some(other);
                                break;
                            }
                        }
                    }
                    let mut result = Ok(());
                    for (first, frames, _) in &batch {
                        result = self.disk.write(*first, frames);
                        if result.is_err() {
                            break;
                        }
                    }
                    if result.is_ok() {
                        result = self.disk.sync();
                    }
                    for (_, _, callback) in batch {
                        callback.log_io_completed(
                            result
                                .as_ref()
                                .map(|_| ())
                                .map_err(|e| std::io::Error::other(e.to_string())),
                        );
                    }
                    match result {
                        Ok(()) => {
                            if let Some(body) = hint {
                                self.write_hint(&body);
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "quorum log append failed"),
                    }
                }
                Cmd::Truncate { since, done } => {
                    let _ = done.send(self.disk.truncate(since));
                }
                Cmd::Purge { upto, body, done } => {
                    let r = fsutil::write_atomic(&self.purged_path, PURGED_MAGIC, &body)
                        .and_then(|_| self.disk.purge(upto.index));
                    let _ = done.send(r);
                }
                Cmd::Vote { body, done } => {
                    let _ = done.send(fsutil::write_atomic(&self.vote_path, VOTE_MAGIC, &body));
                }
                Cmd::Committed { body } => self.write_hint(&body),
            }
        }
        if let Err(e) = self.disk.sync() {
            tracing::error!(error = %e, "quorum log final sync failed");
        }
        tracing::debug!("quorum log writer stopped");
    }
}

impl Writer {
    /// Replaces the committed hint: temp file + rename, no fsync. Failures are only logged.
    fn write_hint(&self, body: &[u8]) {
        let path = &self.committed_path;
        let tmp = path.with_extension("tmp");
        let mut buf = COMMITTED_MAGIC.to_vec();
        fsutil::push_frame(&mut buf, body);
        let res = std::fs::write(&tmp, &buf).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            tracing::warn!(path = %path.display(), error = %e, "could not write the committed-index hint");
        }
    }
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    first: u64,
    path: PathBuf,
    file: File,
    /// Byte offset of each entry (`first + k` starts at `offsets[k]`).
    offsets: Vec<u64>,
    len: u64,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }
}

/// The segment files, owned by the writer thread.
#[derive(Debug)]
struct Disk {
    dir: PathBuf,
    segments: Vec<Segment>,
    segment_entries: u64,
    /// Segments written since the last sync (indexes into `segments`, deduplicated).
    dirty: Vec<usize>,
    dir_dirty: bool,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

impl Disk {
    /// Reads every segment; returns the disk state and the entries after the purge point.
    fn open(
        dir: PathBuf,
        segment_entries: u64,
        last_purged: Option<LogId>,
    ) -> Result<(Disk, BTreeMap<u64, Entry>), QuorumError> {
        let mut names = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(|e| QuorumError::io(&dir, e))? {
            let item = item.map_err(|e| QuorumError::io(&dir, e))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".seg") {
                let first: u64 = stem.parse().map_err(|_| {
                    QuorumError::corrupt(item.path(), "segment name is not an index")
                })?;
                names.push(first);
            }
        }
        names.sort_unstable();
        let purged_index = last_purged.map(|p| p.index);
        let mut entries = BTreeMap::new();
        let mut segments = Vec::new();
        let count = names.len();
        for (i, first) in names.into_iter().enumerate() {
            let path = segment_path(&dir, first);
            let is_last = i + 1 == count;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| QuorumError::io(&path, e))?;
            let data = std::fs::read(&path).map_err(|e| QuorumError::io(&path, e))?;
            let mut pos = 0usize;
            let mut offsets = Vec::new();
            loop {
                match fsutil::read_frame(&data[pos..]) {
                    Frame::End => break,
                    Frame::Ok(body, n) => {
                        let entry: Entry = postcard::from_bytes(body).map_err(|e| {
                            QuorumError::corrupt(
                                &path,
                                format!("undecodable entry at byte {pos}: {e}"),
                            )
                        })?;
                        let want = first + offsets.len() as u64;
                        if entry.log_id.index != want {
                            return Err(QuorumError::corrupt(
                                &path,
                                format!(
                                    "entry at byte {pos} has index {}, expected {want}",
                                    entry.log_id.index
                                ),
                            ));
                        }
                        offsets.push(pos as u64);
                        entries.insert(entry.log_id.index, entry);
                        pos += n;
                    }
                    Frame::Short | Frame::Bad(_) if is_last => {
                        tracing::warn!(
                            path = %path.display(),
                            truncated_bytes = data.len() - pos,
                            "quorum log has a torn or corrupt tail; truncating it"
                        );
                        file.set_len(pos as u64)
                            .and_then(|_| file.sync_all())
                            .map_err(|e| QuorumError::io(&path, e))?;
                        break;
                    }
                    Frame::Short => {
                        return Err(QuorumError::corrupt(
                            &path,
                            format!(
                                "truncated frame at byte {pos} in a segment that is not the last"
                            ),
                        ))
                    }
                    Frame::Bad(why) => {
                        return Err(QuorumError::corrupt(&path, format!("{why} at byte {pos}")))
                    }
                }
            }
            segments.push(Segment {
                first,
                path,
                file,
                offsets,
                len: pos as u64,
            });
        }
        // Entries after the purge point must be contiguous and start right after it.
        let mut expect = purged_index.map(|p| p + 1);
        for seg in &segments {
            for k in 0..seg.offsets.len() as u64 {
                let idx = seg.first + k;
                if purged_index.is_some_and(|p| idx <= p) {
                    continue;
                }
                match expect {
                    Some(e) if e != idx => {
                        return Err(QuorumError::corrupt(
                            &seg.path,
                            format!("the log has a gap: expected index {e}, found {idx}"),
                        ))
                    }
                    _ => expect = Some(idx + 1),
                }
            }
        }
        let mut disk = Disk {
            dir,
            segments,
            segment_entries,
            dirty: Vec::new(),
            dir_dirty: false,
        };
        if let Some(p) = purged_index {
            disk.purge(p)?;
            entries = entries.split_off(&(p + 1));
        }
        Ok((disk, entries))
    }

    /// Writes frames for entries `first..`, rolling segments as needed (not synced).
    fn write(&mut self, first: u64, frames: &[Vec<u8>]) -> Result<(), QuorumError> {
        let mut buf = Vec::new();
        for (index, body) in (first..).zip(frames) {
            let need_new = match self.segments.last() {
                None => true,
                Some(seg) => {
                    seg.next_index() != index || seg.offsets.len() as u64 >= self.segment_entries
                }
            };
            if need_new {
                self.flush_buf(&mut buf)?;
                self.roll(index)?;
            }
            let seg = self.segments.last_mut().expect("a current segment");
            seg.offsets.push(seg.len + buf.len() as u64);
            fsutil::push_frame(&mut buf, body);
        }
        self.flush_buf(&mut buf)
    }

    fn flush_buf(&mut self, buf: &mut Vec<u8>) -> Result<(), QuorumError> {
        if buf.is_empty() {
            return Ok(());
        }
        let i = self.segments.len() - 1;
        let seg = &mut self.segments[i];
        seg.file
            .write_all_at(buf, seg.len)
            .map_err(|e| QuorumError::io(&seg.path, e))?;
        seg.len += buf.len() as u64;
        buf.clear();
        if !self.dirty.contains(&i) {
            self.dirty.push(i);
        }
        Ok(())
    }

    /// Starts a new segment whose first entry is `first`.
    fn roll(&mut self, first: u64) -> Result<(), QuorumError> {
        // A segment that is not the last must be complete on disk (see `open`).
        self.sync()?;
        if let Some(last) = self.segments.last() {
            if last.offsets.is_empty() {
                // An empty segment (after a truncation): replace it.
                let last = self.segments.pop().expect("checked");
                std::fs::remove_file(&last.path).map_err(|e| QuorumError::io(&last.path, e))?;
            } else if last.next_index() > first {
                return Err(QuorumError::corrupt(
                    &last.path,
                    format!(
                        "append at {first} overlaps the log end {}",
                        last.next_index()
                    ),
                ));
            }
        }
        let path = segment_path(&self.dir, first);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| QuorumError::io(&path, e))?;
        self.segments.push(Segment {
            first,
            path,
            file,
            offsets: Vec::new(),
            len: 0,
        });
        self.dir_dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), QuorumError> {
        for i in std::mem::take(&mut self.dirty) {
            if let Some(seg) = self.segments.get(i) {
                seg.file
                    .sync_data()
                    .map_err(|e| QuorumError::io(&seg.path, e))?;
            }
        }
        if std::mem::take(&mut self.dir_dirty) {
            fsutil::fsync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Removes entries `since..`: later segments first (newest first), then the cut.
    fn truncate(&mut self, since: u64) -> Result<(), QuorumError> {
        self.sync()?;
        let mut removed = false;
        while let Some(last) = self.segments.last() {
            if last.first >= since {
                let last = self.segments.pop().expect("checked");
                std::fs::remove_file(&last.path).map_err(|e| QuorumError::io(&last.path, e))?;
                removed = true;
            } else {
                break;
            }
        }
        if removed {
            fsutil::fsync_dir(&self.dir)?;
        }
        if let Some(seg) = self.segments.last_mut() {
            if since < seg.next_index() {
                let keep = since.saturating_sub(seg.first) as usize;
                let new_len = seg.offsets.get(keep).copied().unwrap_or(seg.len);
                seg.file
                    .set_len(new_len)
                    .and_then(|_| seg.file.sync_all())
                    .map_err(|e| QuorumError::io(&seg.path, e))?;
                seg.offsets.truncate(keep);
                seg.len = new_len;
            }
        }
        Ok(())
    }

    /// Deletes segments whose entries are all `<= upto` (the purged marker is already durable).
    fn purge(&mut self, upto: u64) -> Result<(), QuorumError> {
        self.sync()?;
        let mut removed = false;
        while let Some(seg) = self.segments.first() {
            // A segment is fully purged when its last entry is <= upto; an empty one is dropped
            // when its start is <= upto + 1 (nothing in it, and the log continues after upto).
            let fully = if seg.offsets.is_empty() {
                self.segments.len() > 1 || seg.first <= upto + 1
            } else {
                seg.next_index() - 1 <= upto
            };
            if !fully {
                break;
            }
            let seg = self.segments.remove(0);
            std::fs::remove_file(&seg.path).map_err(|e| QuorumError::io(&seg.path, e))?;
            removed = true;
        }
        if removed {
            fsutil::fsync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// The vote and log as they are on disk, for tests and tools: `(vote, last log id)`.
#[cfg(test)]
pub(crate) fn peek(dir: &Path) -> Result<(Option<Vote>, Option<LogId>), QuorumError> {
    let mut store = LogStore::open(dir, 1024)?;
    let handle = store.writer_handle();
    let mem = store.shared.mem.lock();
    let last = mem
        .entries
        .values()
        .next_back()
        .map(|e| e.log_id)
        .or(mem.last_purged);
    let vote = mem.vote;
    drop(mem);
    drop(store);
    if let Some(h) = handle {
        h.join();
    }
    Ok((vote, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use std::io::Write;

    fn entry(term: u64, index: u64, data: &[u8]) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(data.to_vec()),
        }
    }

    fn write(disk: &mut Disk, entries: &[Entry]) {
        let frames: Vec<_> = entries
            .iter()
            .map(|e| postcard::to_stdvec(e).unwrap())
            .collect();
        disk.write(entries[0].log_id.index, &frames).unwrap();
        disk.sync().unwrap();
    }

    fn indexes(m: &BTreeMap<u64, Entry>) -> Vec<u64> {
        m.keys().copied().collect()
    }

    #[test]
    fn segments_roll_truncate_purge_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let (mut disk, e) = Disk::open(d.clone(), 4, None).unwrap();
        assert!(e.is_empty());
        let all: Vec<Entry> = (0..10).map(|i| entry(1, i, b"x")).collect();
        write(&mut disk, &all[..3]);
        write(&mut disk, &all[3..10]);
        assert_eq!(disk.segments.len(), 3);
        drop(disk);
        let (mut disk, e) = Disk::open(d.clone(), 4, None).unwrap();
        assert_eq!(indexes(&e), (0..10).collect::<Vec<_>>());
        // Truncate inside the second segment, then append a different term.
        disk.truncate(6).unwrap();
        assert_eq!(disk.segments.len(), 2);
        write(&mut disk, &[entry(2, 6, b"y"), entry(2, 7, b"y")]);
        drop(disk);
        let (mut disk, e) = Disk::open(d.clone(), 4, None).unwrap();
        assert_eq!(indexes(&e), (0..8).collect::<Vec<_>>());
        assert_eq!(e[&7].log_id.leader_id.term, 2);
        // Truncate at a segment start.
        disk.truncate(4).unwrap();
        drop(disk);
        let (mut disk, e) = Disk::open(d.clone(), 4, None).unwrap();
        assert_eq!(indexes(&e), (0..4).collect::<Vec<_>>());
        // Purge behind 2: the first segment stays (it holds 3).
        disk.purge(2).unwrap();
        assert_eq!(disk.segments.len(), 1);
        // A snapshot install far ahead: purge past the end, then append after a gap.
        disk.purge(20).unwrap();
        assert!(disk.segments.is_empty());
        write(&mut disk, &[entry(3, 21, b"z")]);
        drop(disk);
        let purged = Some(LogId::new(CommittedLeaderId::new(3, 1), 20));
        let (_, e) = Disk::open(d.clone(), 4, purged).unwrap();
        assert_eq!(indexes(&e), vec![21]);
    }

    #[tokio::test]
    async fn vote_committed_and_entries_roundtrip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let entries: Vec<Entry> = (0..6).map(|i| entry(3, i, b"e")).collect();
        let mut store = LogStore::open(dir.path(), 4).unwrap();
        let handle = store.writer_handle().unwrap();
        store.save_vote(&Vote::new(3, 2)).await.unwrap();
        let committed = Some(LogId::new(CommittedLeaderId::new(3, 1), 4));
        store.save_committed(committed).await.unwrap();
        drop(store);
        handle.join();
        // Entries go in through the Disk API (openraft's `LogFlushed` callback cannot be built
        // outside openraft; the cluster tests cover `append`).
        let (mut disk, _) = Disk::open(dir.path().join("log"), 4, None).unwrap();
        write(&mut disk, &entries);
        drop(disk);

        let mut store = LogStore::open(dir.path(), 4).unwrap();
        let handle = store.writer_handle().unwrap();
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
        assert_eq!(store.read_committed().await.unwrap(), committed);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(entries[5].log_id));
        let got = store.try_get_log_entries(2..4).await.unwrap();
        assert_eq!(got, entries[2..4].to_vec());
        store.truncate(entries[3].log_id).await.unwrap();
        store.purge(entries[1].log_id).await.unwrap();
        drop(store);
        handle.join();

        // A committed hint past the log end (after the truncation) is ignored, not trusted.
        let mut store = LogStore::open(dir.path(), 4).unwrap();
        let handle = store.writer_handle().unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(entries[1].log_id));
        assert_eq!(state.last_log_id, Some(entries[2].log_id));
        assert_eq!(store.read_committed().await.unwrap(), None);
        let all = store.try_get_log_entries(0..10).await.unwrap();
        assert_eq!(all, entries[2..3].to_vec());
        drop(store);
        handle.join();
    }

    #[test]
    fn torn_tail_is_truncated_but_middle_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let (mut disk, _) = Disk::open(d.clone(), 4, None).unwrap();
        let all: Vec<Entry> = (0..6).map(|i| entry(1, i, b"abc")).collect();
        write(&mut disk, &all);
        drop(disk);
        // Torn tail of the last segment.
        let last = segment_path(&d, 4);
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        f.write_all(&[0, 0, 0, 40, 1, 2, 3]).unwrap();
        drop(f);
        let (mut disk, e) = Disk::open(d.clone(), 4, None).unwrap();
        assert_eq!(e.len(), 6);
        write(&mut disk, &[entry(1, 6, b"abc")]);
        drop(disk);
        let (_, e) = Disk::open(d.clone(), 4, None).unwrap();
        assert_eq!(e.len(), 7);
        // A flipped byte in the first (not last) segment is corruption, not a torn tail.
        let first = segment_path(&d, 0);
        let mut data = std::fs::read(&first).unwrap();
        data[12] ^= 0xff;
        std::fs::write(&first, &data).unwrap();
        let err = Disk::open(d.clone(), 4, None).unwrap_err();
        assert!(matches!(err, QuorumError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("crc mismatch"), "{err}");
    }

    #[test]
    fn a_gap_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let (mut disk, _) = Disk::open(d.clone(), 4, None).unwrap();
        let all: Vec<Entry> = (0..12).map(|i| entry(1, i, b"abc")).collect();
        write(&mut disk, &all);
        drop(disk);
        // A segment renamed: its entries do not match its name.
        std::fs::copy(segment_path(&d, 4), segment_path(&d, 20)).unwrap();
        let err = Disk::open(d.clone(), 4, None).unwrap_err();
        assert!(err.to_string().contains("expected 20"), "{err}");
        std::fs::remove_file(segment_path(&d, 20)).unwrap();
        // A missing middle segment: a gap.
        std::fs::remove_file(segment_path(&d, 4)).unwrap();
        let err = Disk::open(d.clone(), 4, None).unwrap_err();
        assert!(
            err.to_string().contains("expected index 4, found 8"),
            "{err}"
        );
        // Unless the purge marker covers the hole.
        let purged = Some(LogId::new(CommittedLeaderId::new(1, 1), 7));
        let (_, e) = Disk::open(d.clone(), 4, purged).unwrap();
        assert_eq!(indexes(&e), (8..12).collect::<Vec<_>>());
    }
}
