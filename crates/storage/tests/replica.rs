//! The storage half of replication on one log: the injected clock, the stored high
//! watermark and the reads bounded by it, follower appends, truncation (and crashes in the
//! middle of one), epoch assignment on becoming leader.

#[path = "../../broker/src/cleaner_codec.rs"]
#[allow(dead_code)]
mod cleaner_codec;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use gregor_storage::batch::BatchHeader;
use gregor_storage::epoch::EpochEntry;
use gregor_storage::{AbortedTxn, Log, LogConfig, ManualClock, ProducerEntrySummary, StorageError};

const NOW: i64 = 1_700_000_000_000;

fn open_with(dir: &Path, config: LogConfig, clean: bool, clock: Arc<ManualClock>) -> Log {
    Log::open(dir, config, clean, clock).expect("open log").0
}

fn open(dir: &Path, config: LogConfig, clean: bool) -> Log {
    open_with(dir, config, clean, Arc::new(ManualClock::new(NOW)))
}

/// A batch of `n` records with timestamp `ts` (`-1`: none).
fn data_at(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool, ts: i64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(Compression::None, ts)
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..n {
        let k = format!("k{i}");
        b.push(ts, Some(k.as_bytes()), Some(b"value-0123456789"), &[]);
    }
    b.build().expect("build").to_vec()
}

fn data(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool) -> Vec<u8> {
    data_at(pid, epoch, seq, n, txn, NOW)
}

fn plain(n: usize) -> Vec<u8> {
    data(-1, -1, -1, n, false)
}

/// Leader append of a plain batch of `n` records in `epoch`; returns the base offset.
fn append(log: &mut Log, n: usize, epoch: i32) -> i64 {
    log.append(&mut plain(n), epoch)
        .expect("append")
        .base_offset
}

/// The whole log from `from` (LOG_END isolation), as one byte string.
fn read_from(log: &Log, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, true).expect("read");
        let Some(region) = r.region else { break };
        let bytes = region.read_to_vec().expect("region");
        for b in RecordBatch::split(Bytes::from(bytes.clone())).expect("split") {
            offset = b.next_offset();
        }
        out.extend_from_slice(&bytes);
    }
    out
}

/// Headers of every batch of the log.
fn headers(log: &Log) -> Vec<BatchHeader> {
    let bytes = read_from(log, log.log_start_offset());
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).expect("header");
        pos += h.total_size();
        out.push(h);
    }
    out
}

/// Base offsets of the batches of a read result.
fn bases(r: &gregor_storage::ReadResult) -> Vec<i64> {
    r.region
        .as_ref()
        .map(|reg| {
            RecordBatch::split(Bytes::from(reg.read_to_vec().expect("bytes")))
                .expect("split")
                .iter()
                .map(RecordBatch::base_offset)
                .collect()
        })
        .unwrap_or_default()
}

fn files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
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

fn tiny_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

// ---------------------------------------------------------------- clock

#[test]
fn followers_roll_on_their_clock() {
    let ldir = tempfile::tempdir().expect("tempdir");
    let fdir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut leader = open(ldir.path(), config.clone(), true);
    for _ in 0..3 {
        leader
            .append(&mut data_at(-1, -1, -1, 1, false, -1), 0)
            .expect("append");
    }
    let bytes = read_from(&leader, 0);
    let clock = Arc::new(ManualClock::new(NOW));
    let mut follower = open_with(fdir.path(), config, true, clock.clone());
    let mut pos = 0;
    for step in [1000, 1] {
        let h = BatchHeader::parse(&bytes[pos..]).expect("header");
        follower
            .append_as_follower(&bytes[pos..pos + h.total_size()])
            .expect("follower append");
        pos += h.total_size();
        clock.advance(step);
    }
    assert_eq!(follower.segment_count(), 1, "exactly segment.ms: no roll");
    follower.append_as_follower(&bytes[pos..]).expect("append");
    assert_eq!(
        follower.segment_count(),
        2,
        "rolled on the follower's clock"
    );
    assert_eq!(read_from(&follower, 0), bytes);
}

// ---------------------------------------------------------------- high watermark

#[test]
fn high_watermark_is_stored_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(log.high_watermark(), 0);
    for _ in 0..5 {
        append(&mut log, 2, 0); // 0-9
    }
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.high_watermark(), 0, "appends do not move it");
    assert_eq!(
        log.read(0, usize::MAX, true).expect("read").high_watermark,
        0
    );
    assert_eq!(log.maybe_increment_high_watermark(4), Some(0));
    assert_eq!(log.maybe_increment_high_watermark(4), None);
    assert_eq!(
        log.maybe_increment_high_watermark(3),
        None,
        "never backwards"
    );
    assert_eq!(log.high_watermark(), 4);
    assert_eq!(log.maybe_increment_high_watermark(99), Some(4));
    assert_eq!(log.high_watermark(), 10, "clamped to the log end");
    assert_eq!(log.update_high_watermark(6), 6, "update may lower it");
    assert_eq!(log.update_high_watermark(-5), 0);
    assert_eq!(log.update_high_watermark(i64::MAX), 10);
    let r = log.read(0, usize::MAX, true).expect("read");
    assert_eq!((r.high_watermark, r.log_end_offset), (10, 10));
    // DeleteRecords is bounded by it; the log start never passes it.
    log.update_high_watermark(6);
    assert!(matches!(
        log.delete_records(7),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records(-1).expect("to hw"), 6);
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(log.update_high_watermark(2), 6, "not below the log start");
    log.close().expect("close");
    // After a restart the caller restores it (here from nothing: the log start).
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(log.high_watermark(), 6);
    assert_eq!(log.update_high_watermark(8), 8);
}

#[test]
fn reads_for_consumers_stop_at_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    for _ in 0..5 {
        append(&mut log, 2, 0); // batches at 0, 2, 4, 6, 8
    }
    log.update_high_watermark(6);
    let r = log
        .read_to_high_watermark(0, usize::MAX, true)
        .expect("read");
    assert_eq!(bases(&r), vec![0, 2, 4]);
    assert_eq!((r.high_watermark, r.log_end_offset), (6, 10));
    assert_eq!(
        bases(
            &log.read_to_high_watermark(3, usize::MAX, true)
                .expect("read")
        ),
        vec![2, 4]
    );
    // At or above the HW, up to the LEO: empty, not out of range (Kafka's
    // FetchIsolation.HIGH_WATERMARK).
    for offset in 6..=10 {
        let r = log
            .read_to_high_watermark(offset, usize::MAX, true)
            .expect("read");
        assert!(r.region.is_none(), "offset {offset}");
    }
    assert!(matches!(
        log.read_to_high_watermark(11, usize::MAX, true),
        Err(StorageError::OffsetOutOfRange { requested: 11, .. })
    ));
    // The follower read (LOG_END) still sees everything.
    assert_eq!(
        bases(&log.read(6, usize::MAX, true).expect("read")),
        vec![6, 8]
    );
    // A high watermark inside a batch: that batch is not returned, even first.
    log.update_high_watermark(7);
    assert_eq!(
        bases(
            &log.read_to_high_watermark(0, usize::MAX, true)
                .expect("read")
        ),
        vec![0, 2, 4]
    );
    assert!(log
        .read_to_high_watermark(6, usize::MAX, true)
        .expect("read")
        .region
        .is_none());
    // max_bytes still applies.
    assert!(log
        .read_to_high_watermark(0, 10, false)
        .expect("read")
        .region
        .is_none());
    assert_eq!(
        bases(&log.read_to_high_watermark(0, 10, true).expect("read")),
        vec![0]
    );
    // Below the log start.
    log.update_high_watermark(10);
    log.delete_records(4).expect("delete records");
    assert!(matches!(
        log.read_to_high_watermark(3, usize::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn last_stable_offset_is_bounded_by_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    append(&mut log, 2, 0); // 0-1
    let txn = log
        .append(&mut data(7, 0, 0, 2, true), 0)
        .expect("txn")
        .base_offset; // 2-3
    append(&mut log, 2, 0); // 4-5
    assert_eq!(log.last_stable_offset(), 0, "min(first unstable, HW = 0)");
    log.maybe_increment_high_watermark(2);
    assert_eq!(log.last_stable_offset(), 2);
    log.maybe_increment_high_watermark(6);
    assert_eq!(log.last_stable_offset(), txn);
    let commit = log
        .append_control(7, 0, true, 0, 0, NOW)
        .expect("commit")
        .base_offset; // 6
    assert_eq!(log.ongoing_transactions(), vec![]);
    // Kafka's unreplicatedTxns: a completed transaction whose marker is not below the HW
    // still holds the LSO (and read_committed) at its first offset.
    assert_eq!(log.first_unstable_offset(), Some(txn));
    assert_eq!(log.last_stable_offset(), txn);
    let (r, _) = log.read_committed(0, usize::MAX, true).expect("read");
    assert_eq!(bases(&r), vec![0]);
    log.maybe_increment_high_watermark(commit);
    assert_eq!(log.last_stable_offset(), txn, "the HW must pass the marker");
    log.maybe_increment_high_watermark(commit + 1);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), commit + 1);
    let (r, aborted) = log.read_committed(0, usize::MAX, true).expect("read");
    assert_eq!(bases(&r), vec![0, 2, 4, 6]);
    assert!(aborted.is_empty());
    assert_eq!(r.last_stable_offset, commit + 1);
}

#[test]
fn retention_and_the_cleaner_stay_below_the_high_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1,
        retention_ms: 0,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, true);
    for _ in 0..4 {
        append(&mut log, 1, 0); // one segment per batch
    }
    assert_eq!(log.segment_count(), 4);
    assert!(
        log.prepare_clean(NOW + 10).is_none(),
        "HW = 0: nothing stable"
    );
    assert_eq!(
        log.delete_old_segments(NOW + 10)
            .expect("retention")
            .deleted_segments,
        0
    );
    log.maybe_increment_high_watermark(2);
    let plan = log.prepare_clean(NOW + 10).expect("segments below the HW");
    drop(plan);
    let outcome = log.delete_old_segments(NOW + 10).expect("retention");
    assert_eq!(outcome.deleted_base_offsets, vec![0, 1]);
    assert_eq!(log.log_start_offset(), 2);
    assert!(log.high_watermark() >= log.log_start_offset());
}

// ---------------------------------------------------------------- epochs

#[test]
fn assign_epoch_start_and_latest_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(log.latest_epoch(), None);
    assert!(log.assign_epoch_start(0, 0).expect("assign"));
    assert_eq!(log.latest_epoch(), Some(0));
    append(&mut log, 3, 0);
    assert!(log
        .assign_epoch_start(3, 3)
        .expect("become leader in epoch 3"));
    assert!(!log.assign_epoch_start(3, 3).expect("same epoch"));
    assert!(!log.assign_epoch_start(2, 3).expect("older epoch"));
    assert!(matches!(
        log.assign_epoch_start(4, 4),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.leader_epochs(), entries(&[(0, 0), (3, 3)]).as_slice());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).expect("checkpoint"),
        "0\n2\n0 0\n3 3\n"
    );
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 3)));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 3)));
    // Kafka's truncateTo past the end still drops the epoch of a leader that appended
    // nothing.
    assert!(!log.truncate_to(3).expect("nothing to truncate"));
    assert_eq!(log.leader_epochs(), entries(&[(0, 0)]).as_slice());
    assert_eq!(log.latest_epoch(), Some(0));
}

// ---------------------------------------------------------------- follower appends

/// A leader log with a few batches; returns its bytes from offset 0.
fn leader_bytes(dir: &Path) -> (Log, Vec<u8>) {
    let mut leader = open(dir, LogConfig::default(), true);
    append(&mut leader, 2, 1); // 0-1
    append(&mut leader, 3, 1); // 2-4
    leader.assign_epoch_start(4, 5).expect("epoch 4");
    append(&mut leader, 1, 4); // 5
    let bytes = read_from(&leader, 0);
    (leader, bytes)
}

#[test]
fn follower_append_stores_the_leaders_bytes() {
    let ldir = tempfile::tempdir().expect("tempdir");
    let fdir = tempfile::tempdir().expect("tempdir");
    let (leader, bytes) = leader_bytes(ldir.path());
    let mut follower = open(fdir.path(), LogConfig::default(), true);
    let info = follower.append_as_follower(&bytes).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (0, 5));
    assert_eq!(info.max_timestamp, NOW);
    assert!(!info.duplicate);
    assert_eq!(follower.log_end_offset(), 6);
    assert_eq!(read_from(&follower, 0), bytes, "byte for byte");
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    assert_eq!(follower.latest_epoch(), Some(4));
    assert_eq!(follower.high_watermark(), 0, "the caller sets it");
    // Every offset can be read through the follower's indexes.
    for offset in 0..6 {
        let r = follower.read(offset, usize::MAX, true).expect("read");
        assert!(r.region.is_some());
    }
    // Appending again from the start is rejected: offsets never go backwards.
    assert!(matches!(
        follower.append_as_follower(&bytes),
        Err(StorageError::UnexpectedAppendOffset {
            first_offset: 0,
            last_offset: 5,
            log_end: 6
        })
    ));
    // Survives a crash.
    drop(follower);
    let follower = open(fdir.path(), LogConfig::default(), false);
    assert_eq!(read_from(&follower, 0), bytes);
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
}

#[test]
fn follower_append_keeps_log_append_time_and_offsets_as_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut follower = open(dir.path(), LogConfig::default(), true);
    let mut b = plain(3);
    RecordBatch::set_log_append_time(&mut b, NOW + 123);
    b[0..8].copy_from_slice(&0i64.to_be_bytes());
    b[12..16].copy_from_slice(&9i32.to_be_bytes());
    // A compacted batch: 2 records left of offsets 3-7, with a gap before it.
    let mut c = data(-1, -1, -1, 2, false);
    let h = BatchHeader::parse(&c).expect("header");
    assert_eq!(h.records_count, 2);
    c[0..8].copy_from_slice(&3i64.to_be_bytes());
    c[23..27].copy_from_slice(&4i32.to_be_bytes()); // lastOffsetDelta (in the CRC)
    c[12..16].copy_from_slice(&9i32.to_be_bytes());
    let crc = gregor_storage::batch::compute_crc(&c);
    c[17..21].copy_from_slice(&crc.to_be_bytes());
    let mut both = b.clone();
    both.extend_from_slice(&c);
    let info = follower.append_as_follower(&both).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (0, 7));
    assert_eq!(info.max_timestamp, NOW + 123);
    assert_eq!(read_from(&follower, 0), both);
    assert_eq!(follower.log_end_offset(), 8);
    assert_eq!(follower.leader_epochs(), entries(&[(9, 0)]).as_slice());
    // A gap at the start (the leader compacted the batch at the follower's LEO away).
    let mut d = plain(1);
    d[0..8].copy_from_slice(&20i64.to_be_bytes());
    d[12..16].copy_from_slice(&10i32.to_be_bytes());
    follower.append_as_follower(&d).expect("gap");
    assert_eq!(follower.log_end_offset(), 21);
    assert_eq!(
        follower.leader_epochs(),
        entries(&[(9, 0), (10, 20)]).as_slice()
    );
    drop(follower);
    let follower = open(dir.path(), LogConfig::default(), false);
    assert_eq!(follower.log_end_offset(), 21);
    assert_eq!(headers(&follower).len(), 3);
}

#[test]
fn follower_append_rejects_bad_input_and_writes_nothing() {
    let ldir = tempfile::tempdir().expect("tempdir");
    let fdir = tempfile::tempdir().expect("tempdir");
    let (_leader, bytes) = leader_bytes(ldir.path());
    let first_len = BatchHeader::parse(&bytes).expect("header").total_size();
    let mut follower = open(fdir.path(), LogConfig::default(), true);
    // Nothing, or only an incomplete batch: nothing appended.
    for partial in [&bytes[..0], &bytes[..5], &bytes[..first_len - 1]] {
        let info = follower.append_as_follower(partial).expect("nothing");
        assert_eq!((info.base_offset, info.last_offset), (0, -1));
    }
    assert_eq!(follower.log_end_offset(), 0);
    // A trailing incomplete batch is ignored (Kafka's fetch responses cut at max_bytes).
    let info = follower
        .append_as_follower(&bytes[..first_len + 10])
        .expect("first batch");
    assert_eq!((info.base_offset, info.last_offset), (0, 1));
    let rest = &bytes[first_len..];
    // A bad CRC anywhere: nothing written.
    let mut bad = rest.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let err = follower.append_as_follower(&bad).expect_err("crc");
    assert!(matches!(err, StorageError::CorruptBatch(_)), "{err}");
    // Offsets going backwards inside the append.
    let second_len = BatchHeader::parse(rest).expect("header").total_size();
    let mut twice = rest[..second_len].to_vec();
    twice.extend_from_slice(&rest[..second_len]);
    assert!(matches!(
        follower.append_as_follower(&twice),
        Err(StorageError::CorruptBatch(_))
    ));
    // Below the LEO.
    assert!(matches!(
        follower.append_as_follower(&bytes),
        Err(StorageError::UnexpectedAppendOffset { .. })
    ));
    // A length field smaller than a header.
    let mut short = rest.to_vec();
    short[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        follower.append_as_follower(&short),
        Err(StorageError::CorruptBatch(_))
    ));
    // Wrong magic.
    let mut magic = rest.to_vec();
    magic[16] = 1;
    assert!(follower.append_as_follower(&magic).is_err());
    // More than a segment can hold.
    let tiny = LogConfig {
        segment_bytes: 100,
        ..LogConfig::default()
    };
    follower.set_config(tiny);
    assert!(matches!(
        follower.append_as_follower(rest),
        Err(StorageError::RecordBatchTooLarge { .. })
    ));
    follower.set_config(LogConfig::default());
    assert_eq!(
        follower.log_end_offset(),
        2,
        "nothing written by the failures"
    );
    assert_eq!(follower.segment_count(), 1);
    follower.append_as_follower(rest).expect("the rest");
    assert_eq!(read_from(&follower, 0), bytes);
}

/// Control batch bytes as the leader wrote them (taken from a scratch log).
fn marker_bytes(pid: i64, epoch: i16, commit: bool, coordinator_epoch: i32) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut scratch = open(dir.path(), LogConfig::default(), true);
    scratch
        .append_control(pid, epoch, commit, coordinator_epoch, 0, NOW)
        .expect("marker");
    read_from(&scratch, 0)
}

/// `batch` with the given base offset and leader epoch (outside the CRC).
fn at(mut batch: Vec<u8>, base_offset: i64, leader_epoch: i32) -> Vec<u8> {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    batch
}

#[test]
fn follower_producer_state_is_replication_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = open(dir.path(), LogConfig::default(), true);
    // Sequences are not checked, duplicates not detected.
    f.append_as_follower(&at(data(5, 2, 10, 2, false), 0, 0))
        .expect("any sequence");
    f.append_as_follower(&at(data(5, 2, 10, 2, false), 2, 0))
        .expect("a 'duplicate'");
    assert_eq!(f.log_end_offset(), 4);
    // An older producer epoch is tolerated and becomes the producer's epoch (Kafka's
    // maybeUpdateProducerEpoch).
    f.append_as_follower(&at(data(5, 1, 0, 1, false), 4, 0))
        .expect("older epoch");
    let p = f.producer_entry(5).expect("producer 5");
    assert_eq!((p.epoch, p.last_sequence, p.last_offset), (1, 0, 4));
    // Transactions: started by a transactional batch, ended by a marker; an ABORT of a
    // non-empty transaction is indexed; coordinator epochs are recorded, older ones
    // tolerated.
    f.append_as_follower(&at(data(6, 0, 0, 2, true), 5, 0))
        .expect("txn"); // 5-6
    assert_eq!(f.ongoing_transactions(), vec![(5, 6)]);
    // A non-transactional batch during the transaction: rejected, nothing written.
    let mut mixed = at(data(8, 0, 0, 1, false), 7, 0);
    mixed.extend_from_slice(&at(data(6, 0, 2, 1, false), 8, 0));
    assert!(matches!(
        f.append_as_follower(&mixed),
        Err(StorageError::InvalidTxnState {
            producer_id: 6,
            first_offset: 5
        })
    ));
    assert_eq!(f.log_end_offset(), 7);
    assert!(f.producer_entry(8).is_none());
    // Abort (coordinator epoch 3), then a commit of an empty transaction with an older
    // coordinator epoch, in one append with more data.
    let mut chunk = at(marker_bytes(6, 0, false, 3), 7, 0); // 7
    chunk.extend_from_slice(&at(data(9, 0, 0, 1, true), 8, 0)); // 8
    chunk.extend_from_slice(&at(marker_bytes(6, 0, true, 1), 9, 0)); // 9
    f.append_as_follower(&chunk).expect("markers");
    let p6 = f.producer_entry(6).expect("producer 6");
    assert_eq!(p6.coordinator_epoch, 1);
    assert_eq!(p6.current_txn_first_offset, None);
    assert_eq!(f.ongoing_transactions(), vec![(8, 9)]);
    assert_eq!(
        f.aborted_transactions(0, 10).expect("aborted"),
        vec![AbortedTxn {
            producer_id: 6,
            first_offset: 5
        }]
    );
    let txnindex = files(dir.path(), ".txnindex");
    assert_eq!(txnindex.len(), 1);
    let bytes = std::fs::read(dir.path().join(&txnindex[0])).expect("read");
    // version 0, pid 6, first 5, last 7, LSO after the marker = 8 (nothing else ongoing
    // when the marker is applied, batch by batch as recovery replays it).
    let mut want = 0i16.to_be_bytes().to_vec();
    for v in [6i64, 5, 7, 8] {
        want.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(bytes, want);
    f.update_high_watermark(10);
    assert_eq!(f.last_stable_offset(), 8);
    // The same state after a restart (snapshot) and after a crash (replay).
    let summaries = f.producers();
    f.close().expect("close");
    let mut f = open(dir.path(), LogConfig::default(), true);
    assert_eq!(f.producers(), summaries);
    drop(f);
    for s in files(dir.path(), ".snapshot") {
        std::fs::remove_file(dir.path().join(s)).expect("remove snapshot");
    }
    f = open(dir.path(), LogConfig::default(), false);
    assert_eq!(f.producers(), summaries);
    assert_eq!(
        std::fs::read(dir.path().join(&txnindex[0])).expect("read"),
        want
    );
}

#[test]
fn follower_rolls_at_the_first_offset_of_its_append() {
    let ldir = tempfile::tempdir().expect("tempdir");
    let fdir = tempfile::tempdir().expect("tempdir");
    let mut leader = open(ldir.path(), tiny_segments(), true);
    for _ in 0..12 {
        append(&mut leader, 1, 0);
    }
    let bytes = read_from(&leader, 0);
    let mut follower = open(fdir.path(), tiny_segments(), true);
    // Feed it batch by batch, as small fetches would.
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).expect("header");
        follower
            .append_as_follower(&bytes[pos..pos + h.total_size()])
            .expect("append");
        pos += h.total_size();
    }
    assert_eq!(follower.segment_count(), leader.segment_count());
    assert_eq!(
        files(fdir.path(), ".log"),
        files(ldir.path(), ".log"),
        "same segment boundaries"
    );
    assert_eq!(
        files(fdir.path(), ".snapshot"),
        files(ldir.path(), ".snapshot")
    );
}

// ---------------------------------------------------------------- truncation

/// A log over several segments with epochs, producers and transactions:
/// offsets 0-9 plain (epoch 0), then epoch 2: producer 7 seq 0.. (one record per batch)
/// interleaved with a transaction of producer 9 that is aborted, then a transaction of
/// producer 11 that stays open.
fn busy_log(dir: &Path) -> Log {
    let mut log = open(dir, tiny_segments(), true);
    for _ in 0..5 {
        append(&mut log, 2, 0);
    }
    log.assign_epoch_start(2, 10).expect("epoch 2");
    for seq in 0..4 {
        log.append(&mut data(7, 0, seq, 1, false), 2).expect("idem"); // 10-13
    }
    log.append(&mut data(9, 0, 0, 2, true), 2).expect("txn"); // 14-15
    log.append(&mut data(7, 0, 4, 1, false), 2).expect("idem"); // 16
    log.append_control(9, 0, false, 1, 2, NOW).expect("abort"); // 17
    log.append(&mut data(7, 0, 5, 1, false), 2).expect("idem"); // 18
    log.assign_epoch_start(3, 19).expect("epoch 3");
    log.append(&mut data(11, 0, 0, 1, true), 3).expect("txn"); // 19
    log.append(&mut data(7, 0, 6, 1, false), 3).expect("idem"); // 20
    log.maybe_increment_high_watermark(log.log_end_offset());
    log
}

/// Everything observable about a log's state.
#[derive(Debug, PartialEq)]
struct State {
    start: i64,
    end: i64,
    bytes: Vec<u8>,
    epochs: Vec<EpochEntry>,
    producers: Vec<(i64, ProducerEntrySummary)>,
    ongoing: Vec<(i64, i64)>,
    aborted: Vec<AbortedTxn>,
    txn_indexes: Vec<(String, Vec<u8>)>,
}

fn state(log: &Log) -> State {
    let dir = log.dir();
    State {
        start: log.log_start_offset(),
        end: log.log_end_offset(),
        bytes: read_from(log, log.log_start_offset()),
        epochs: log.leader_epochs().to_vec(),
        producers: log.producers(),
        ongoing: log.ongoing_transactions(),
        aborted: log
            .aborted_transactions(log.log_start_offset(), log.log_end_offset())
            .expect("aborted"),
        txn_indexes: files(dir, ".txnindex")
            .into_iter()
            .map(|n| {
                let b = std::fs::read(dir.join(&n)).expect("read");
                (n, b)
            })
            .collect(),
    }
}

#[test]
fn truncate_to_removes_the_tail_and_rebuilds_producer_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = busy_log(dir.path());
    assert!(log.segment_count() > 3);
    let before_snapshots = files(dir.path(), ".snapshot");
    assert!(!before_snapshots.is_empty());
    assert_eq!(log.high_watermark(), 21);
    // Truncate inside the aborted transaction, below the later segments and snapshots.
    assert!(log.truncate_to(15).expect("truncate"));
    // The batch holding 15 (14-15) goes whole.
    assert_eq!(log.log_end_offset(), 14);
    assert_eq!(log.high_watermark(), 14, "clamped");
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.leader_epochs(), entries(&[(0, 0), (2, 10)]).as_slice());
    assert!(files(dir.path(), ".snapshot")
        .iter()
        .all(|s| s[..20].parse::<i64>().expect("offset") <= 14));
    assert!(files(dir.path(), ".txnindex").is_empty());
    assert_eq!(log.ongoing_transactions(), vec![]);
    assert!(log.producer_entry(9).is_none());
    assert!(log.producer_entry(11).is_none());
    let p7 = log.producer_entry(7).expect("producer 7");
    assert_eq!((p7.last_sequence, p7.last_offset), (3, 13));
    // Every remaining offset is readable, nothing beyond.
    for offset in 0..14 {
        assert!(log.read(offset, 1, true).expect("read").region.is_some());
    }
    assert!(log.read(14, 1, true).expect("read").region.is_none());
    assert!(log.read(15, 1, true).is_err());
    // Nothing more to remove.
    assert!(!log.truncate_to(14).expect("no-op"));
    assert!(!log.truncate_to(99).expect("no-op"));
    // New appends continue from there, in the segment that held the cut.
    let info = log
        .append(&mut data(7, 0, 4, 1, false), 4)
        .expect("the retried sequence is new again");
    assert!(!info.duplicate);
    assert_eq!(info.base_offset, 14);
    assert_eq!(log.leader_epochs().last().map(|e| e.epoch), Some(4));
}

#[test]
fn truncation_below_a_producer_snapshot_forgets_truncated_sequences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config.clone(), true);
    for seq in 0..9 {
        let info = log
            .append(&mut data(7, 0, seq, 1, false), 0)
            .expect("append");
        assert_eq!(info.base_offset, i64::from(seq));
    }
    // Three batches per segment: snapshots at the rolls.
    let snapshots = || -> Vec<i64> {
        files(dir.path(), ".snapshot")
            .iter()
            .map(|s| s[..20].parse().expect("offset"))
            .collect()
    };
    assert_eq!(snapshots(), vec![3, 6]);
    // A retry of sequence 4 is a duplicate.
    let dup = log
        .append(&mut data(7, 0, 4, 1, false), 0)
        .expect("duplicate");
    assert!(dup.duplicate);
    assert_eq!(dup.base_offset, 4);
    // Truncate below the snapshot at 6, to the batch of sequence 4: the state comes from
    // the snapshot at 3 plus the batch at 3.
    log.truncate_to(4).expect("truncate");
    assert_eq!(snapshots(), vec![3]);
    let p = log.producer_entry(7).expect("producer 7");
    assert_eq!((p.last_sequence, p.last_offset), (3, 3));
    // Sequence 5 is out of order now, and the retried sequence 4 is appended anew.
    assert!(matches!(
        log.append(&mut data(7, 0, 5, 1, false), 0),
        Err(StorageError::OutOfOrderSequence { expected: 4, .. })
    ));
    let retry = log.append(&mut data(7, 0, 4, 1, false), 0).expect("retry");
    assert!(!retry.duplicate);
    assert_eq!(retry.base_offset, 4);
    // The same after a crash.
    drop(log);
    let mut log = open(dir.path(), config, false);
    let p = log.producer_entry(7).expect("producer 7");
    assert_eq!((p.last_sequence, p.last_offset), (4, 4));
    assert!(
        log.append(&mut data(7, 0, 4, 1, false), 0)
            .expect("dup")
            .duplicate
    );
}

#[test]
fn truncate_then_crash_reopens_the_same_log() {
    for clean in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = busy_log(dir.path());
        log.truncate_to(18).expect("truncate"); // keeps the abort marker at 17
        let want = state(&log);
        assert_eq!(want.end, 18);
        assert_eq!(want.aborted.len(), 1);
        drop(log); // no close
        let log = open(dir.path(), tiny_segments(), clean);
        assert_eq!(state(&log), want, "clean = {clean}");
    }
}

/// Copies the files of a (closed) partition directory.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn a_crash_in_the_middle_of_a_truncation_recovers_a_consistent_log() {
    let root = tempfile::tempdir().expect("tempdir");
    let original = root.path().join("original");
    let log = busy_log(&original);
    log.close().expect("close");
    for cut in [3, 12, 15, 17, 19] {
        // The complete truncation.
        let done = root.path().join(format!("done-{cut}"));
        copy_dir(&original, &done);
        let mut log = open(&done, tiny_segments(), true);
        log.truncate_to(cut).expect("truncate");
        log.close().expect("close");
        let want = state(&open(&done, tiny_segments(), true));
        // Interrupted after each step: later segments deleted; the tail cut; nothing else
        // (stale indexes, `.txnindex`, epochs, snapshots).
        for steps in 1..=2 {
            for clean in [true, false] {
                let crashed = root.path().join(format!("crashed-{cut}-{steps}-{clean}"));
                copy_dir(&original, &crashed);
                let (holder, position) = {
                    let log = open(&crashed, tiny_segments(), true);
                    let r = log.read(cut, 1, true).expect("read");
                    let region = r.region.expect("region");
                    (region.file, region.position)
                };
                let logs = files(&crashed, ".log");
                let holder_base: i64 = logs
                    .iter()
                    .map(|n| n[..20].parse::<i64>().expect("base"))
                    .filter(|&b| b <= cut)
                    .max()
                    .expect("holder");
                for n in &logs {
                    if n[..20].parse::<i64>().expect("base") > holder_base {
                        std::fs::remove_file(crashed.join(n)).expect("remove .log");
                    }
                }
                if steps == 2 {
                    let name = format!("{holder_base:020}.log");
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(crashed.join(name))
                        .expect("open");
                    f.set_len(position).expect("cut");
                }
                drop(holder);
                let log = open(&crashed, tiny_segments(), clean);
                let got = state(&log);
                if steps == 2 {
                    assert_eq!(got, want, "cut {cut} clean {clean}");
                } else {
                    // Only later segments gone: a consistent log ending at the holder's end.
                    assert!(got.end >= want.end);
                    assert_eq!(&got.bytes[..want.bytes.len()], &want.bytes[..]);
                    assert!(got.epochs.iter().all(|e| e.start_offset < got.end));
                }
                for offset in got.start..got.end {
                    assert!(log.read(offset, 1, true).expect("read").region.is_some());
                }
                // And it can be truncated the rest of the way.
                let mut log = log;
                log.truncate_to(cut).expect("finish");
                assert_eq!(state(&log), want, "finished: cut {cut} clean {clean}");
            }
        }
    }
}

#[test]
fn truncate_below_the_first_segment_or_the_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = busy_log(dir.path());
    log.delete_records(13).expect("delete records");
    log.delete_old_segments(NOW).expect("retention");
    assert!(log.segment_count() > 1);
    let seg_base = {
        let logs = files(dir.path(), ".log");
        logs[0][..20].parse::<i64>().expect("base")
    };
    assert_eq!((seg_base, log.log_start_offset()), (12, 13));
    // Below the log start but inside the first segment: the start comes down (Kafka:
    // logStartOffset = min(target, logStartOffset)).
    log.truncate_to(12).expect("truncate");
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(log.log_start_offset(), 12);
    assert_eq!(log.high_watermark(), 12);
    drop(log);
    let log = open(dir.path(), tiny_segments(), false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (12, 12));
    // Below the first segment: a full truncation.
    let mut log = log;
    assert!(log.truncate_to(2).expect("truncate"));
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (2, 2, 2)
    );
    assert_eq!(files(dir.path(), ".log"), vec![format!("{:020}.log", 2)]);
}

#[test]
fn truncate_fully_and_start_at() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = busy_log(dir.path());
    log.truncate_fully_and_start_at(500)
        .expect("truncate fully");
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (500, 500, 500)
    );
    assert_eq!(log.leader_epochs(), &[]);
    assert_eq!(log.latest_epoch(), None);
    assert!(log.producers().is_empty());
    assert_eq!(log.ongoing_transactions(), vec![]);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(files(dir.path(), ".log"), vec![format!("{:020}.log", 500)]);
    assert!(files(dir.path(), ".snapshot").is_empty());
    assert!(files(dir.path(), ".txnindex").is_empty());
    assert!(matches!(
        log.read(0, 100, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // It takes the leader's batches from there.
    let mut b = at(plain(2), 500, 7);
    let info = log.append_as_follower(&b).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (500, 501));
    assert_eq!(log.leader_epochs(), entries(&[(7, 500)]).as_slice());
    b = at(plain(1), 502, 7);
    log.append_as_follower(&b).expect("append");
    drop(log);
    let log = open(dir.path(), tiny_segments(), false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 503));
    assert_eq!(log.leader_epochs(), entries(&[(7, 500)]).as_slice());
    // Also to a lower offset than before.
    let mut log = log;
    log.truncate_fully_and_start_at(3).expect("lower");
    drop(log);
    let log = open(dir.path(), tiny_segments(), false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 3));
}

#[test]
fn a_crash_during_a_full_truncation_restarts_at_the_new_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = busy_log(dir.path());
    log.close().expect("close");
    // The new log start was recorded and the segments deleted, but the new segment was
    // not created yet.
    std::fs::write(
        dir.path().join("log-start-offset-checkpoint"),
        "0\n1\n700\n",
    )
    .expect("checkpoint");
    std::fs::remove_file(dir.path().join("leader-epoch-checkpoint")).expect("epochs");
    for n in files(dir.path(), ".snapshot") {
        std::fs::remove_file(dir.path().join(n)).expect("remove");
    }
    for n in files(dir.path(), ".log") {
        std::fs::remove_file(dir.path().join(n)).expect("remove");
    }
    let log = open(dir.path(), tiny_segments(), false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (700, 700));
    assert_eq!(log.leader_epochs(), &[]);
    assert!(log.producers().is_empty());
    assert!(files(dir.path(), ".index")
        .iter()
        .all(|n| n.starts_with(&format!("{:020}", 700))));
}

#[test]
fn a_truncation_discards_a_compaction_planned_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1,
        cleanup_compact: true,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, true);
    for _ in 0..6 {
        log.append(&mut plain(2), 0).expect("append");
    }
    log.maybe_increment_high_watermark(log.log_end_offset());
    let plan = log.prepare_clean(NOW).expect("plan");
    // Truncate in the active segment: the planned segments are untouched, but the plan
    // predates the truncation.
    log.truncate_to(11).expect("truncate");
    assert_eq!(log.log_end_offset(), 10);
    let out = plan
        .execute(&cleaner_codec::ProtocolCodec, &mut |_| {})
        .expect("execute");
    let stats = log.commit_clean(out).expect("commit");
    assert!(!stats.committed, "the truncation came in between");
    assert!(files(dir.path(), ".cleaned").is_empty());
    assert_eq!(log.log_end_offset(), 10);
}
