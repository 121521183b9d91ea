//! Replication at the storage level: two or three `Log`s in temporary directories play
//! leader and followers the way Kafka's brokers do (a port of Kafka's
//! `EpochDrivenReplicationProtocolAcceptanceTest`, KIP-101/KIP-279): the leader appends and
//! stamps its epoch, followers fetch from their log end offset with their last epoch and
//! `append_as_follower` what the leader's log returns, the leader answers a diverging
//! epoch (`end_offset_for_epoch`, the OffsetForLeaderEpoch answer) and followers truncate
//! as Kafka's `AbstractFetcherThread.getOffsetTruncationState` does. High watermarks move
//! as in `Partition.maybeIncrementLeaderHW` and are checkpointed in each node's
//! `replication-offset-checkpoint`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use gregor_storage::batch::BatchHeader;
use gregor_storage::epoch::EpochEntry;
use gregor_storage::offset_checkpoint::{self, TopicPartition, REPLICATION_OFFSET_CHECKPOINT};
use gregor_storage::{AppendInfo, Log, LogConfig, ManualClock, StorageError};

const NOW: i64 = 1_700_000_000_000;
const TOPIC: &str = "topic1";
/// `replica.fetch.max.bytes`.
const FETCH_MAX_BYTES: usize = 1024 * 1024;

/// A batch of `n` records of `value_len` bytes each.
fn msgs(n: usize, value_len: usize) -> Vec<u8> {
    let value = vec![b'x'; value_len];
    let mut b = RecordBatchBuilder::new(Compression::None, NOW);
    for _ in 0..n {
        b.push(NOW, None, Some(&value), &[]);
    }
    b.build().expect("build").to_vec()
}

/// One record of 1000 bytes (the Kafka test's `msg`).
fn msg() -> Vec<u8> {
    msgs(1, 1000)
}

/// One record of 10000 bytes (the Kafka test's `msgBigger`).
fn msg_bigger() -> Vec<u8> {
    msgs(1, 10_000)
}

fn producer_batch(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(Compression::None, NOW)
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..n {
        let k = format!("k{i}");
        b.push(NOW, Some(k.as_bytes()), Some(b"0123456789"), &[]);
    }
    b.build().expect("build").to_vec()
}

/// What the leader answers a follower fetch.
enum FetchResponse {
    /// Batches from the fetch offset (possibly none) and the leader's high watermark.
    Records(Vec<u8>, i64),
    /// `DivergingEpoch{epoch, end offset}`: no records.
    Diverging(i32, i64),
    /// `OFFSET_OUT_OF_RANGE`, with the leader's log start and end offsets.
    OutOfRange(i64, i64),
}

struct Node {
    /// The node's log directory (holds `replication-offset-checkpoint`).
    root: PathBuf,
    log: Option<Log>,
}

impl Node {
    fn partition_dir(&self) -> PathBuf {
        self.root.join(format!("{TOPIC}-0"))
    }
}

/// Replicas of one partition. All live nodes are in the ISR.
struct Cluster {
    _tmp: tempfile::TempDir,
    nodes: Vec<Node>,
    leader: usize,
    epoch: i32,
    config: LogConfig,
    clock: Arc<ManualClock>,
    /// The leader's view of each follower's log end offset (its last fetch offset).
    follower_leo: Vec<Option<i64>>,
}

impl Cluster {
    /// `n` live replicas, node 0 the leader in epoch 0.
    fn new(n: usize, config: LogConfig) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let nodes = (0..n)
            .map(|i| Node {
                root: tmp.path().join(format!("broker-{}", 100 + i)),
                log: None,
            })
            .collect();
        let mut c = Cluster {
            _tmp: tmp,
            nodes,
            leader: 0,
            epoch: -1,
            config,
            clock: Arc::new(ManualClock::new(NOW)),
            follower_leo: vec![None; n],
        };
        for i in 0..n {
            c.start(i, true);
        }
        c.elect(0);
        c
    }

    fn log(&self, i: usize) -> &Log {
        self.nodes[i].log.as_ref().expect("node is up")
    }

    fn log_mut(&mut self, i: usize) -> &mut Log {
        self.nodes[i].log.as_mut().expect("node is up")
    }

    fn is_up(&self, i: usize) -> bool {
        self.nodes[i].log.is_some()
    }

    fn live_followers(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| i != self.leader && self.is_up(i))
            .collect()
    }

    /// Starts node `i`: opens its log and restores the high watermark from the node's
    /// checkpoint (what Kafka's ReplicaManager does).
    fn start(&mut self, i: usize, clean: bool) {
        let node = &self.nodes[i];
        std::fs::create_dir_all(&node.root).expect("mkdir");
        let (mut log, _) = Log::open(
            node.partition_dir(),
            self.config.clone(),
            clean,
            self.clock.clone(),
        )
        .expect("open");
        let checkpoint = offset_checkpoint::read(&node.root.join(REPLICATION_OFFSET_CHECKPOINT))
            .expect("checkpoint");
        if let Some(&hw) = checkpoint.get(&TopicPartition::new(TOPIC, 0)) {
            log.update_high_watermark(hw);
        }
        self.nodes[i].log = Some(log);
        self.follower_leo[i] = None;
    }

    /// Writes node `i`'s high watermark checkpoint.
    fn checkpoint(&self, i: usize) {
        let mut offsets = BTreeMap::new();
        offsets.insert(TopicPartition::new(TOPIC, 0), self.log(i).high_watermark());
        offset_checkpoint::write(
            &self.nodes[i].root.join(REPLICATION_OFFSET_CHECKPOINT),
            &offsets,
        )
        .expect("write checkpoint");
    }

    /// Clean shutdown of node `i` (checkpoint, close).
    fn shutdown(&mut self, i: usize) {
        self.checkpoint(i);
        let log = self.nodes[i].log.take().expect("node is up");
        log.close().expect("close");
    }

    /// Node `i` dies without closing its log (the checkpoint is the last periodic one).
    fn kill(&mut self, i: usize) {
        drop(self.nodes[i].log.take());
    }

    /// The controller makes node `i` the leader in a new epoch: it records the epoch's
    /// start offset (Kafka's `maybeAssignEpochStartOffset` with its log end offset).
    /// Followers with no epoch truncate to their high watermark (Kafka's initial fetch
    /// offset); the others reconcile through the fetch protocol.
    fn elect(&mut self, i: usize) {
        self.epoch += 1;
        self.leader = i;
        let epoch = self.epoch;
        let log = self.log_mut(i);
        let leo = log.log_end_offset();
        assert!(log.assign_epoch_start(epoch, leo).expect("assign epoch"));
        for f in self.live_followers() {
            self.become_follower(f);
        }
    }

    fn become_follower(&mut self, f: usize) {
        self.follower_leo[f] = None;
        let log = self.log_mut(f);
        if log.latest_epoch().is_none() {
            let hw = log.high_watermark();
            log.truncate_to(hw).expect("truncate to HW");
        }
    }

    /// Restarts node `i` as a follower of the current leader.
    fn start_follower(&mut self, i: usize, clean: bool) {
        self.start(i, clean);
        self.become_follower(i);
    }

    /// A producer append to the leader (acks=1), stamped with the current epoch.
    fn produce(&mut self, mut batch: Vec<u8>) -> AppendInfo {
        let epoch = self.epoch;
        let leader = self.leader;
        let info = self
            .log_mut(leader)
            .append(&mut batch, epoch)
            .expect("append");
        self.maybe_increment_leader_hw();
        info
    }

    /// A transaction marker written by the coordinator (WriteTxnMarkers).
    fn marker(&mut self, pid: i64, producer_epoch: i16, commit: bool, coordinator: i32) -> i64 {
        let epoch = self.epoch;
        let leader = self.leader;
        let info = self
            .log_mut(leader)
            .append_control(pid, producer_epoch, commit, coordinator, epoch, NOW)
            .expect("marker");
        self.maybe_increment_leader_hw();
        info.base_offset
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end offset of the ISR (live
    /// followers whose fetch position is known; an unknown one holds the HW back).
    fn maybe_increment_leader_hw(&mut self) {
        let leader = self.leader;
        let mut hw = self.log(leader).log_end_offset();
        for f in self.live_followers() {
            hw = hw.min(self.follower_leo[f].unwrap_or(0));
        }
        self.log_mut(leader).maybe_increment_high_watermark(hw);
    }

    /// The leader's side of a follower fetch (`Partition.fetchRecords`).
    fn leader_fetch(
        &mut self,
        f: usize,
        fetch_offset: i64,
        last_fetched_epoch: Option<i32>,
    ) -> FetchResponse {
        let leader = self.leader;
        let l = self.log(leader);
        let (start, end) = (l.log_start_offset(), l.log_end_offset());
        if let Some(e) = last_fetched_epoch {
            match l.end_offset_for_epoch(e) {
                None => return FetchResponse::OutOfRange(start, end),
                Some((epoch, end_offset)) if epoch < e || end_offset < fetch_offset => {
                    return FetchResponse::Diverging(epoch, end_offset);
                }
                Some(_) => {}
            }
        }
        let hw = l.high_watermark();
        let bytes = match l.read(fetch_offset, FETCH_MAX_BYTES, true) {
            Ok(r) => r
                .region
                .map(|r| r.read_to_vec().expect("region"))
                .unwrap_or_default(),
            Err(StorageError::OffsetOutOfRange { .. }) => {
                return FetchResponse::OutOfRange(start, end)
            }
            Err(e) => panic!("leader read: {e}"),
        };
        // No divergence: the leader records the follower's position and moves its HW.
        self.follower_leo[f] = Some(fetch_offset);
        self.maybe_increment_leader_hw();
        FetchResponse::Records(bytes, hw)
    }

    /// One fetch of follower `f`; returns whether anything changed on either side.
    fn fetch(&mut self, f: usize) -> bool {
        let before = self.fingerprint();
        let (fetch_offset, last_epoch) = {
            let log = self.log(f);
            (log.log_end_offset(), log.latest_epoch())
        };
        match self.leader_fetch(f, fetch_offset, last_epoch) {
            FetchResponse::Records(bytes, leader_hw) => {
                let log = self.log_mut(f);
                if !bytes.is_empty() {
                    log.append_as_follower(&bytes).expect("follower append");
                }
                log.update_high_watermark(leader_hw);
            }
            FetchResponse::Diverging(epoch, end_offset) => {
                // Kafka's getOffsetTruncationState.
                let log = self.log_mut(f);
                let leo = log.log_end_offset();
                let target = match log.end_offset_for_epoch(epoch) {
                    // The follower does not know the leader's epoch: truncate to the end of
                    // its largest epoch below it, and ask again (KIP-279).
                    Some((follower_epoch, follower_end)) if follower_epoch != epoch => {
                        follower_end.min(leo)
                    }
                    Some((_, follower_end)) => follower_end.min(end_offset).min(leo),
                    None => end_offset.min(leo),
                };
                log.truncate_to(target).expect("truncate");
            }
            FetchResponse::OutOfRange(leader_start, leader_end) => {
                // Kafka's fetchOffsetAndTruncate.
                let log = self.log_mut(f);
                let leo = log.log_end_offset();
                if leader_end < leo {
                    log.truncate_to(leader_end).expect("truncate");
                } else if leader_start > leo {
                    log.truncate_fully_and_start_at(leader_start)
                        .expect("truncate fully");
                }
            }
        }
        self.fingerprint() != before
    }

    /// Everything a fetch can change.
    fn fingerprint(&self) -> Vec<(i64, i64, Option<i32>)> {
        (0..self.nodes.len())
            .filter(|&i| self.is_up(i))
            .map(|i| {
                let l = self.log(i);
                (l.log_end_offset(), l.high_watermark(), l.latest_epoch())
            })
            .collect()
    }

    /// Fetches until nothing changes, then checkpoints every live node's HW.
    fn replicate(&mut self) {
        for _ in 0..1000 {
            let mut changed = false;
            for f in self.live_followers() {
                changed |= self.fetch(f);
            }
            if !changed {
                for i in 0..self.nodes.len() {
                    if self.is_up(i) {
                        self.checkpoint(i);
                    }
                }
                return;
            }
        }
        panic!("replication does not converge");
    }

    /// (base offset, CRC, partition leader epoch) of every batch of node `i`'s log.
    fn batches(&self, i: usize) -> Vec<(i64, u32, i32)> {
        batches(self.log(i))
    }

    fn epochs(&self, i: usize) -> Vec<(i32, i64)> {
        self.log(i)
            .leader_epochs()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    fn segment_files(&self, i: usize) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.nodes[i].partition_dir())
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        v.sort();
        v
    }

    /// The `.txnindex` files of node `i` with their bytes.
    fn txn_indexes(&self, i: usize) -> Vec<(String, Vec<u8>)> {
        let dir = self.nodes[i].partition_dir();
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .expect("read_dir")
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().into_string().ok()?;
                name.ends_with(".txnindex")
                    .then(|| (name, std::fs::read(e.path()).expect("read")))
            })
            .collect();
        v.sort();
        v
    }

    /// Every live replica has the same batches (base offset, CRC) up to the same high
    /// watermark, the same log end offset and epochs.
    fn assert_in_sync(&self) {
        let leader = self.leader;
        let want = self.log(leader);
        let want_batches = committed(want);
        for i in 0..self.nodes.len() {
            if !self.is_up(i) {
                continue;
            }
            let log = self.log(i);
            assert_eq!(
                log.high_watermark(),
                want.high_watermark(),
                "HW of node {i}"
            );
            assert_eq!(committed(log), want_batches, "batches of node {i}");
            assert_eq!(log.log_end_offset(), want.log_end_offset(), "LEO of {i}");
            assert_eq!(self.batches(i), self.batches(leader), "log of node {i}");
            // A follower learns an epoch from its first batch: the leader's latest epoch
            // may have none yet.
            let with_data = |l: &Log| -> Vec<EpochEntry> {
                l.leader_epochs()
                    .iter()
                    .copied()
                    .filter(|e| e.start_offset < l.log_end_offset())
                    .collect()
            };
            assert_eq!(with_data(log), with_data(want), "epochs of {i}");
        }
    }
}

/// (base offset, CRC, partition leader epoch) of every batch of a log.
fn batches(log: &Log) -> Vec<(i64, u32, i32)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, true).expect("read");
        let Some(region) = r.region else { break };
        let bytes = region.read_to_vec().expect("region");
        for b in RecordBatch::split(Bytes::from(bytes)).expect("split") {
            b.verify_crc().expect("crc");
            out.push((b.base_offset(), b.crc(), b.partition_leader_epoch()));
            offset = b.next_offset();
        }
    }
    out
}

/// (base offset, CRC) of the batches wholly below the high watermark.
fn committed(log: &Log) -> Vec<(i64, u32)> {
    let hw = log.high_watermark();
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < hw {
        let r = log
            .read_to_high_watermark(offset, usize::MAX, true)
            .expect("read");
        let Some(region) = r.region else { break };
        let bytes = region.read_to_vec().expect("region");
        for b in RecordBatch::split(Bytes::from(bytes)).expect("split") {
            assert!(b.last_offset() < hw);
            out.push((b.base_offset(), b.crc()));
            offset = b.next_offset();
        }
    }
    out
}

/// Drops the last `bytes` bytes of the active segment's `.log` (Kafka's
/// `deleteMessagesFromLogFile`: unflushed data lost in a crash).
fn delete_from_log_file(dir: &Path, bytes: u64) {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let last = logs.last().expect("a segment");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .expect("open");
    let len = f.metadata().expect("metadata").len();
    f.set_len(len.saturating_sub(bytes)).expect("set_len");
}

fn file_len(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| std::fs::metadata(p).expect("metadata").len())
        .sum()
}

fn entries(pairs: &[(i32, i64)]) -> Vec<EpochEntry> {
    pairs
        .iter()
        .map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        })
        .collect()
}

// ---------------------------------------------------------------- Kafka's acceptance tests

#[test]
fn should_follow_leader_epoch_basic_workflow() {
    // Given 2 brokers, a partition with 2 replicas.
    let mut c = Cluster::new(2, LogConfig::default());
    let (leader, follower) = (0, 1);
    // When one record is written to the leader.
    c.produce(msg());
    c.replicate();
    // It has epoch 0 in both; both record epoch 0 at offset 0.
    assert_eq!(c.batches(leader).last().map(|b| b.2), Some(0));
    assert_eq!(c.batches(follower).last().map(|b| b.2), Some(0));
    assert_eq!(c.epochs(leader), vec![(0, 0)]);
    assert_eq!(c.epochs(follower), vec![(0, 0)]);
    // Bounce the follower: the leader's epoch goes to 1 (ISR change, ZooKeeper mode).
    c.shutdown(follower);
    c.elect(leader);
    c.start_follower(follower, true);
    c.replicate();
    assert_eq!(c.epochs(leader), vec![(0, 0), (1, 1)]);
    assert_eq!(c.epochs(follower), vec![(0, 0)]);
    // Epoch 1 propagates to the follower with the next message.
    c.produce(msg());
    c.replicate();
    assert_eq!(c.epochs(leader), vec![(0, 0), (1, 1)]);
    assert_eq!(c.epochs(follower), vec![(0, 0), (1, 1)]);
    assert_eq!(c.batches(leader).last().map(|b| b.2), Some(1));
    assert_eq!(c.batches(follower).last().map(|b| b.2), Some(1));
    // Bounce the leader: epoch 2, leadership moves to the follower.
    c.shutdown(leader);
    c.elect(follower);
    c.start_follower(leader, true);
    c.replicate();
    let (leader, follower) = (1, 0);
    assert_eq!(c.epochs(leader), vec![(0, 0), (1, 1), (2, 2)]);
    assert_eq!(c.epochs(follower), vec![(0, 0), (1, 1)]);
    // The next message carries epoch 2 to the follower; the epoch files match.
    c.produce(msg());
    c.replicate();
    assert_eq!(c.batches(leader).last().map(|b| b.2), Some(2));
    assert_eq!(c.batches(follower).last().map(|b| b.2), Some(2));
    assert_eq!(c.epochs(leader), vec![(0, 0), (1, 1), (2, 2)]);
    assert_eq!(c.epochs(follower), vec![(0, 0), (1, 1), (2, 2)]);
    for i in [leader, follower] {
        assert_eq!(
            std::fs::read_to_string(c.nodes[i].partition_dir().join("leader-epoch-checkpoint"))
                .expect("checkpoint"),
            "0\n3\n0 0\n1 1\n2 2\n"
        );
    }
    c.assert_in_sync();
}

#[test]
fn should_not_allow_divergent_logs() {
    let mut c = Cluster::new(2, LogConfig::default());
    let (b100, b101) = (0, 1);
    // Write 10 messages, one batch each (so the log can be cut in the middle).
    for _ in 0..10 {
        c.produce(msg());
        c.replicate();
    }
    c.assert_in_sync();
    assert_eq!(c.log(b101).log_end_offset(), 10);
    // Stop 101, then 100 (which stays the leader); 100 crashes, losing 5 messages' worth
    // of bytes of its log.
    c.shutdown(b101);
    c.kill(b100);
    delete_from_log_file(&c.nodes[b100].partition_dir(), 5 * 1000);
    c.start(b100, false);
    let lost_to = c.log(b100).log_end_offset();
    assert!((4..=5).contains(&lost_to), "recovered to {lost_to}");
    assert_eq!(
        c.log(b100).high_watermark(),
        lost_to,
        "HW clamped to the LEO"
    );
    c.elect(b100);
    // Write ten additional messages (11 until 20).
    for _ in 11..20 {
        c.produce(msg());
    }
    // Start 101: it must truncate to match 100's log.
    c.start_follower(b101, true);
    assert_eq!(c.log(b101).log_end_offset(), 10);
    c.replicate();
    c.assert_in_sync();
    assert_eq!(
        file_len(&c.nodes[b100].partition_dir()),
        file_len(&c.nodes[b101].partition_dir()),
        "log files should match"
    );
    assert_eq!(c.log(b101).log_end_offset(), lost_to + 9);
}

#[test]
fn offsets_should_not_go_backwards() {
    let mut c = Cluster::new(2, LogConfig::default());
    let (b100, b101) = (0, 1);
    // Write 100 messages, one batch each.
    for _ in 0..100 {
        c.produce(msg());
    }
    c.replicate();
    c.assert_in_sync();
    // Stop both; 100 crashed and lost half its log.
    c.shutdown(b101);
    c.kill(b100);
    let half = file_len(&c.nodes[b100].partition_dir()) / 2;
    delete_from_log_file(&c.nodes[b100].partition_dir(), half);
    c.start(b100, false);
    let leo = c.log(b100).log_end_offset();
    assert!(leo < 100);
    c.elect(b100);
    // Two large batches of 77 messages: 101's log end (100) falls in the middle of one.
    c.produce(msgs(77, 1000));
    c.produce(msgs(77, 1000));
    assert!(c.log(b100).log_end_offset() > 100);
    // Without epochs (pre KIP-101), 101 would fetch from 100 and get the batch holding
    // offset 100, which starts below it: the follower append refuses it.
    c.start(b101, true);
    let stale = c
        .log(b100)
        .read(100, FETCH_MAX_BYTES, true)
        .expect("read")
        .region
        .expect("region")
        .read_to_vec()
        .expect("bytes");
    let first = BatchHeader::parse(&stale).expect("header");
    assert!(first.base_offset < 100 && first.last_offset() >= 100);
    assert!(matches!(
        c.log_mut(b101).append_as_follower(&stale),
        Err(StorageError::UnexpectedAppendOffset { log_end: 100, .. })
    ));
    // With epochs it truncates to the leader's end of epoch 0 and then matches.
    c.become_follower(b101);
    c.replicate();
    c.assert_in_sync();
    // Offsets never go backwards in 101's log, which is 100's byte for byte.
    let b = c.batches(b101);
    assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
    let mut prev = -1;
    let log = c.log(b101);
    let mut offset = 0;
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, true).expect("read");
        let bytes = r.region.expect("region").read_to_vec().expect("bytes");
        for batch in RecordBatch::split(Bytes::from(bytes)).expect("split") {
            for rec in batch.records(usize::MAX).expect("records") {
                let o = rec.offset(batch.base_offset());
                assert!(o > prev, "offset {prev} came before {o}");
                prev = o;
            }
            offset = batch.next_offset();
        }
    }
    assert_eq!(prev, c.log(b100).log_end_offset() - 1);
    assert_eq!(
        file_len(&c.nodes[b100].partition_dir()),
        file_len(&c.nodes[b101].partition_dir())
    );
}

#[test]
fn should_survive_fast_leader_change() {
    let mut c = Cluster::new(2, LogConfig::default());
    c.produce(msg());
    c.replicate();
    let mut written = 1;
    for _ in 0..5 {
        let leader = c.leader;
        let follower = 1 - leader;
        c.produce(msg());
        written += 1;
        c.replicate();
        // As soon as it replicated, bounce the follower (epoch bump, same leader)...
        c.shutdown(follower);
        c.elect(leader);
        c.start_follower(follower, true);
        c.replicate();
        // ... then the leader (leadership moves).
        c.shutdown(leader);
        c.elect(follower);
        c.start_follower(leader, true);
        c.replicate();
        // No data was lost.
        for i in 0..2 {
            assert_eq!(c.log(i).log_end_offset(), written, "node {i}");
        }
        c.assert_in_sync();
    }
    assert_eq!(c.epoch, 10);
}

#[test]
fn logs_should_not_diverge_on_unclean_leader_elections() {
    let mut c = Cluster::new(2, LogConfig::default());
    let (b100, b101) = (0, 1);
    // One message while both are up; the logs match for the first epoch.
    c.produce(msg());
    c.replicate();
    c.assert_in_sync();
    // Shut 100 down; 101 leads (epoch 1) and gets 1 message.
    c.shutdown(b100);
    c.elect(b101);
    c.produce(msg());
    // Shut 101 down, start 100: unclean election (epoch 2); 3 bigger messages.
    c.shutdown(b101);
    c.start(b100, true);
    c.elect(b100);
    for _ in 0..3 {
        c.produce(msg_bigger());
    }
    // Shut 100 down, start 101: unclean election (epoch 3); 1 message.
    c.shutdown(b100);
    c.start(b101, true);
    c.elect(b101);
    c.produce(msg());
    // Shut 101 down, start 100: unclean election (epoch 4); 2 bigger messages.
    c.shutdown(b101);
    c.start(b100, true);
    c.elect(b100);
    for _ in 0..2 {
        c.produce(msg_bigger());
    }
    assert_eq!(c.epochs(b100), vec![(0, 0), (2, 1), (4, 4)]);
    // 101 comes back as a follower: two rounds of divergence (its epochs 3, then 1, are
    // unknown to the leader) bring it back to offset 1.
    c.start_follower(b101, true);
    assert_eq!(c.epochs(b101), vec![(0, 0), (1, 1), (3, 2)]);
    c.replicate();
    c.assert_in_sync();
    let crcs = |i: usize| -> Vec<u32> { c.batches(i).iter().map(|b| b.1).collect() };
    assert_eq!(crcs(b100), crcs(b101), "logs should match");
    assert_eq!(c.log(b101).log_end_offset(), 6);
}

// ---------------------------------------------------------------- three replicas

#[test]
fn three_replicas_with_segment_rolls_and_a_lagging_follower() {
    let config = LogConfig {
        segment_bytes: 4000,
        index_interval_bytes: 512,
        ..LogConfig::default()
    };
    let mut c = Cluster::new(3, config);
    for round in 0..4 {
        for _ in 0..10 {
            c.produce(msgs(1 + round, 200));
        }
        c.replicate();
    }
    c.assert_in_sync();
    assert!(c.log(0).segment_count() > 3);
    // Node 2 goes down; the others carry on in a new epoch.
    c.shutdown(2);
    c.elect(0);
    for _ in 0..15 {
        c.produce(msgs(3, 300));
    }
    c.replicate();
    let hw = c.log(0).high_watermark();
    assert_eq!(hw, c.log(0).log_end_offset(), "ISR = {{0, 1}}");
    // The leader dies with an unreplicated tail; node 1 takes over.
    c.produce(msgs(2, 100));
    c.kill(0);
    c.elect(1);
    assert_eq!(c.log(1).log_end_offset(), hw);
    for _ in 0..5 {
        c.produce(msgs(1, 500));
    }
    // Node 2 (lagging, older epoch) and node 0 (divergent tail) rejoin.
    c.start_follower(2, true);
    c.start_follower(0, false);
    c.replicate();
    c.assert_in_sync();
    for i in 0..3 {
        assert_eq!(c.segment_files(i).len(), c.log(i).segment_count());
    }
    // Everyone survives a crash with the same log.
    let want = c.batches(1);
    for i in 0..3 {
        c.kill(i);
        c.start(i, false);
        assert_eq!(c.batches(i), want, "node {i}");
    }
}

#[test]
fn a_follower_far_behind_the_leaders_log_start_starts_over() {
    let config = LogConfig {
        segment_bytes: 2000,
        ..LogConfig::default()
    };
    let mut c = Cluster::new(2, config);
    for _ in 0..5 {
        c.produce(msgs(2, 100));
    }
    c.replicate();
    c.shutdown(1);
    c.elect(0);
    for _ in 0..40 {
        c.produce(msgs(2, 100));
    }
    // The leader deletes everything the follower has, and more.
    let leader_start = 60;
    c.log_mut(0)
        .delete_records(leader_start)
        .expect("delete records");
    c.log_mut(0).delete_old_segments(NOW).expect("retention");
    c.start_follower(1, true);
    c.replicate();
    let f = c.log(1);
    assert_eq!(f.log_start_offset(), leader_start);
    c.assert_in_sync();
}

// ---------------------------------------------------------------- transactions

#[test]
fn transactions_replicate_with_their_lso_and_aborted_index() {
    let mut c = Cluster::new(3, LogConfig::default());
    let (l, f1, f2) = (0, 1, 2);
    c.produce(msgs(2, 50));
    let t1 = c.produce(producer_batch(1, 0, 0, 2, true)).base_offset;
    c.produce(producer_batch(3, 0, 0, 1, false)); // idempotent, not transactional
    let t2 = c.produce(producer_batch(2, 4, 0, 3, true)).base_offset;
    c.produce(producer_batch(1, 0, 2, 1, true));
    c.replicate();
    c.assert_in_sync();
    for i in 0..3 {
        assert_eq!(c.log(i).last_stable_offset(), t1);
        assert_eq!(c.log(i).ongoing_transactions(), vec![(t1, 1), (t2, 2)]);
    }
    // The coordinator aborts producer 1's transaction and commits producer 2's; before the
    // followers fetch the markers the leader's LSO stays put (Kafka's unreplicatedTxns).
    let abort = c.marker(1, 0, false, 7);
    let commit = c.marker(2, 4, true, 7);
    assert_eq!(c.log(l).ongoing_transactions(), vec![]);
    assert_eq!(c.log(l).last_stable_offset(), t1);
    // Replicated in small steps: one fetch per follower.
    c.fetch(f1);
    c.fetch(f2);
    c.replicate();
    c.assert_in_sync();
    let hw = c.log(l).high_watermark();
    assert_eq!(hw, commit + 1);
    c.produce(producer_batch(3, 0, 1, 1, false));
    // A marker of a producer without a transaction, and a new transaction.
    c.marker(5, 0, false, 7);
    let t3 = c.produce(producer_batch(1, 0, 3, 1, true)).base_offset;
    c.replicate();
    c.assert_in_sync();
    let leader = c.log(l);
    let want_aborted = leader
        .aborted_transactions(0, leader.log_end_offset())
        .expect("aborted");
    assert_eq!(
        want_aborted,
        vec![gregor_storage::AbortedTxn {
            producer_id: 1,
            first_offset: t1
        }]
    );
    let (want_read, want_read_aborted) = leader.read_committed(0, usize::MAX, true).expect("rc");
    let want_bytes = want_read
        .region
        .expect("region")
        .read_to_vec()
        .expect("bytes");
    assert_eq!(c.txn_indexes(l).len(), 1);
    for i in [f1, f2] {
        let log = c.log(i);
        assert_eq!(log.last_stable_offset(), t3, "node {i}");
        assert_eq!(log.first_unstable_offset(), Some(t3));
        assert_eq!(log.ongoing_transactions(), vec![(t3, 1)]);
        assert_eq!(
            log.aborted_transactions(0, log.log_end_offset())
                .expect("aborted"),
            want_aborted
        );
        let (r, aborted) = log.read_committed(0, usize::MAX, true).expect("rc");
        assert_eq!(
            r.region.expect("region").read_to_vec().expect("bytes"),
            want_bytes
        );
        assert_eq!(aborted, want_read_aborted);
        assert_eq!(c.txn_indexes(i), c.txn_indexes(l), "node {i}");
        assert_eq!(log.producers(), leader.producers(), "node {i}");
    }
    let p1 = c.log(f1).producer_entry(1).expect("producer 1");
    assert_eq!(p1.coordinator_epoch, 7);
    assert_eq!(p1.current_txn_first_offset, Some(t3));
    let _ = abort;
    // Failover: follower 1 leads. It dedups a retry of producer 3's last batch at once
    // (its replicated producer state), and carries the open transaction.
    c.kill(l);
    c.elect(f1);
    let retry = c
        .log_mut(f1)
        .append(&mut producer_batch(3, 0, 1, 1, false), 1)
        .expect("retry");
    assert!(retry.duplicate);
    assert!(matches!(
        c.log_mut(f1)
            .append(&mut producer_batch(3, 0, 5, 1, false), 1),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
    assert_eq!(c.log(f1).last_stable_offset(), t3);
    let end = c.marker(1, 0, true, 8);
    c.replicate();
    let hw = c.log(f1).high_watermark();
    assert_eq!(hw, end + 1);
    assert_eq!(c.log(f1).last_stable_offset(), end + 1);
    assert_eq!(c.log(f2).last_stable_offset(), end + 1);
    // The old leader comes back and matches, transaction state included.
    c.start_follower(l, false);
    c.replicate();
    c.assert_in_sync();
    assert_eq!(c.log(l).producers(), c.log(f1).producers());
    assert_eq!(c.log(l).last_stable_offset(), end + 1);
    assert_eq!(c.txn_indexes(l), c.txn_indexes(f1));
}

#[test]
fn a_follower_truncated_into_a_transaction_rebuilds_its_state() {
    let config = LogConfig {
        segment_bytes: 600,
        ..LogConfig::default()
    };
    let mut c = Cluster::new(2, config);
    let (b100, b101) = (0, 1);
    for seq in 0..6 {
        c.produce(producer_batch(7, 0, seq, 1, false));
    }
    let txn = c.produce(producer_batch(9, 0, 0, 2, true)).base_offset;
    for seq in 6..16 {
        c.produce(producer_batch(7, 0, seq, 1, false));
    }
    c.marker(9, 0, false, 1);
    c.replicate();
    let hw = c.log(b100).high_watermark();
    assert_eq!(hw, c.log(b100).log_end_offset());
    // 100 writes more that never reaches 101: a transaction of producer 9 and its abort,
    // more of producer 7, over a segment roll (so with a producer snapshot past the HW).
    let txn2 = c.produce(producer_batch(9, 0, 2, 1, true)).base_offset;
    for seq in 16..26 {
        c.produce(producer_batch(7, 0, seq, 1, false));
    }
    c.marker(9, 0, false, 1);
    assert_eq!(c.log(b100).high_watermark(), hw);
    let snapshot_offsets = |c: &Cluster, i: usize| -> Vec<i64> {
        let mut v: Vec<i64> = std::fs::read_dir(c.nodes[i].partition_dir())
            .expect("read_dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".snapshot"))
            .map(|n| n[..20].parse().expect("offset"))
            .collect();
        v.sort();
        v
    };
    assert!(snapshot_offsets(&c, b100).iter().any(|&o| o > hw));
    assert_eq!(
        c.log(b100)
            .aborted_transactions(0, 99)
            .expect("aborted")
            .len(),
        2
    );
    c.kill(b100);
    // 101 takes over (it was in the ISR and has everything below the HW).
    c.elect(b101);
    assert_eq!(c.log(b101).log_end_offset(), hw);
    // The producer retries sequence 16: new on 101.
    let info = c.produce(producer_batch(7, 0, 16, 1, false));
    assert!(!info.duplicate);
    // 100 comes back: it truncates its divergent tail (below its newest snapshot) and its
    // producer state forgets the truncated sequences and transaction.
    c.start_follower(b100, false);
    c.replicate();
    c.assert_in_sync();
    assert!(snapshot_offsets(&c, b100).iter().all(|&o| o <= hw + 1));
    assert_eq!(c.log(b100).producers(), c.log(b101).producers());
    let p7 = c.log(b100).producer_entry(7).expect("producer 7");
    assert_eq!((p7.last_sequence, p7.last_offset), (16, info.base_offset));
    let p9 = c.log(b100).producer_entry(9).expect("producer 9");
    assert_eq!(
        p9.last_sequence, 1,
        "sequence 2 (the truncated transaction) is gone"
    );
    assert_eq!(c.log(b100).ongoing_transactions(), vec![]);
    let aborted = vec![gregor_storage::AbortedTxn {
        producer_id: 9,
        first_offset: txn,
    }];
    for i in [b100, b101] {
        let log = c.log(i);
        assert_eq!(
            log.aborted_transactions(0, log.log_end_offset())
                .expect("aborted"),
            aborted
        );
        assert!(txn2 >= log.log_end_offset() - 1);
    }
    assert_eq!(c.txn_indexes(b100), c.txn_indexes(b101));
}

#[test]
fn the_hw_checkpoint_restores_high_watermarks_after_a_restart() {
    let mut c = Cluster::new(2, LogConfig::default());
    for _ in 0..4 {
        c.produce(msgs(3, 10));
    }
    c.replicate();
    c.produce(msgs(3, 10)); // not replicated yet: the HW stays at 12
    assert_eq!(c.log(0).high_watermark(), 12);
    c.shutdown(1);
    c.shutdown(0);
    let text = std::fs::read_to_string(c.nodes[0].root.join(REPLICATION_OFFSET_CHECKPOINT))
        .expect("checkpoint");
    assert_eq!(text, "0\n1\ntopic1 0 12\n");
    c.start(0, true);
    c.start(1, true);
    assert_eq!(c.log(0).high_watermark(), 12);
    assert_eq!(c.log(1).high_watermark(), 12);
    assert_eq!(c.log(0).log_end_offset(), 15);
    c.elect(0);
    c.replicate();
    assert_eq!(c.log(1).high_watermark(), 15);
    c.assert_in_sync();
    assert_eq!(c.log(0).leader_epochs(), entries(&[(0, 0), (1, 15)]));
    assert_eq!(c.log(1).leader_epochs(), entries(&[(0, 0)]));
    c.produce(msgs(1, 10));
    c.replicate();
    assert_eq!(c.log(1).leader_epochs(), entries(&[(0, 0), (1, 15)]));
    c.assert_in_sync();
}
