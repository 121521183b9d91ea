//! Transactions in the partition log: transactional appends, markers (control batches),
//! the last stable offset, the aborted-transaction index (`.txnindex`), `read_committed`
//! reads and recovery.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use gregor_storage::{AbortedTxn, Log, LogConfig, StorageError, SystemClock};

mod common;
use common::SingleNode;

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &Path, config: LogConfig, clean: bool) -> Log {
    Log::open(dir, config, clean, Arc::new(SystemClock))
        .expect("open log")
        .0
        .commit_all()
}

/// A batch of `n` records of producer `pid` (transactional or not).
fn data(pid: i64, epoch: i16, seq: i32, n: usize, txn: bool) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(Compression::None, NOW)
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..n {
        let k = format!("k{i}");
        b.push(NOW, Some(k.as_bytes()), Some(b"value-0123456789"), &[]);
    }
    b.build().expect("build").to_vec()
}

/// Appends `n` transactional records of `pid` (epoch 0); returns the base offset.
fn txn(log: &mut Log, pid: i64, seq: i32, n: usize) -> i64 {
    log.append_and_commit(&mut data(pid, 0, seq, n, true), 0)
        .expect("transactional append")
        .base_offset
}

fn plain(log: &mut Log, n: usize) -> i64 {
    log.append_and_commit(&mut data(-1, -1, -1, n, false), 0)
        .expect("append")
        .base_offset
}

fn end(log: &mut Log, pid: i64, commit: bool) -> i64 {
    let info = log
        .append_control_and_commit(pid, 0, commit, 0, 0, NOW)
        .expect("marker");
    assert_eq!(info.base_offset, info.last_offset);
    info.base_offset
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn base_of(path: &Path) -> i64 {
    let name = path.file_name().expect("name").to_string_lossy();
    name[..20].parse().expect("offset")
}

/// The 34-byte Kafka `.txnindex` entry.
fn entry(pid: i64, first: i64, last: i64, lso: i64) -> Vec<u8> {
    let mut b = 0i16.to_be_bytes().to_vec();
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&first.to_be_bytes());
    b.extend_from_slice(&last.to_be_bytes());
    b.extend_from_slice(&lso.to_be_bytes());
    assert_eq!(b.len(), 34);
    b
}

/// All `.txnindex` bytes of the log, keyed by segment base offset.
fn txn_indexes(dir: &Path) -> Vec<(i64, Vec<u8>)> {
    files(dir, ".txnindex")
        .into_iter()
        .map(|p| (base_of(&p), std::fs::read(&p).expect("read")))
        .collect()
}

/// Every batch of the log (all segments).
fn batches(log: &Log) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, true).expect("read");
        let Some(region) = r.region else { break };
        for b in
            RecordBatch::split(Bytes::from(region.read_to_vec().expect("bytes"))).expect("split")
        {
            offset = b.next_offset();
            out.push(b);
        }
    }
    out
}

fn aborted(pairs: &[(i64, i64)]) -> Vec<AbortedTxn> {
    pairs
        .iter()
        .map(|&(producer_id, first_offset)| AbortedTxn {
            producer_id,
            first_offset,
        })
        .collect()
}

fn tiny_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 250,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

#[test]
fn marker_batch_is_kafkas_control_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    txn(&mut log, 7, 0, 1);
    let info = log
        .append_control_and_commit(7, 3, false, 42, 5, NOW + 1)
        .expect("abort");
    assert_eq!((info.base_offset, info.max_timestamp), (1, NOW + 1));
    let info = log
        .append_control_and_commit(7, 3, true, 42, 5, NOW + 2)
        .expect("commit");
    assert_eq!(info.base_offset, 2);
    let all = batches(&log);
    for (b, kind) in all[1..].iter().zip([0u8, 1]) {
        b.verify_crc().expect("crc");
        assert!(b.is_control() && b.is_transactional());
        assert_eq!(b.compression().expect("codec"), Compression::None);
        assert_eq!((b.producer_id(), b.producer_epoch()), (7, 3));
        assert_eq!((b.base_sequence(), b.record_count()), (-1, 1));
        assert_eq!(b.partition_leader_epoch(), 5);
        let recs = b.records(usize::MAX).expect("records");
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].key.as_deref(), Some(&[0u8, 0, 0, kind][..]));
        assert_eq!(recs[0].value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 42][..]));
    }
    let p = log.producer_entry(7).expect("producer");
    assert_eq!((p.epoch, p.coordinator_epoch), (3, 42));
    assert_eq!(p.current_txn_first_offset, None);
}

#[test]
fn commit_and_abort_across_segment_rolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), tiny_segments(), true);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), 0);
    plain(&mut log, 1);
    // Transaction 1 of producer 5: three batches, spread over several segments.
    let first = txn(&mut log, 5, 0, 2);
    plain(&mut log, 1);
    txn(&mut log, 5, 2, 2);
    txn(&mut log, 5, 4, 2);
    assert!(log.segment_count() >= 3, "{}", log.segment_count());
    assert_eq!(log.first_unstable_offset(), Some(first));
    assert_eq!(log.last_stable_offset(), first);
    assert_eq!(
        log.producer_entry(5)
            .and_then(|p| p.current_txn_first_offset),
        Some(first)
    );
    let r = log.read(0, usize::MAX, true).expect("read");
    assert_eq!(r.last_stable_offset, first);
    assert_eq!(r.high_watermark, log.log_end_offset());
    let commit = end(&mut log, 5, true);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.last_stable_offset(), commit + 1);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert!(
        txn_indexes(dir.path()).is_empty(),
        "commits are not indexed"
    );

    // Transaction 2: aborted, its marker lands in a later segment than its data.
    let first2 = txn(&mut log, 5, 6, 3);
    plain(&mut log, 2);
    txn(&mut log, 5, 9, 1);
    assert_eq!(log.last_stable_offset(), first2);
    let abort = end(&mut log, 5, false);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    let idx = txn_indexes(dir.path());
    assert_eq!(idx.len(), 1, "{idx:?}");
    let marker_segment = files(dir.path(), ".log")
        .iter()
        .map(|p| base_of(p))
        .filter(|&b| b <= abort)
        .max()
        .expect("segment");
    assert!(
        marker_segment > first2,
        "the marker rolled to a new segment"
    );
    assert_eq!(idx[0], (marker_segment, entry(5, first2, abort, abort + 1)));
    assert_eq!(
        log.aborted_transactions(0, log.log_end_offset())
            .expect("aborted"),
        aborted(&[(5, first2)])
    );
    // The transaction ends before offset `abort + 1`.
    assert_eq!(
        log.aborted_transactions(abort + 1, log.log_end_offset())
            .expect("aborted"),
        vec![]
    );
    // Control batches are in the log where they were appended.
    let controls: Vec<i64> = batches(&log)
        .iter()
        .filter(|b| b.is_control())
        .map(|b| b.base_offset())
        .collect();
    assert_eq!(controls, vec![commit, abort]);

    // Everything survives a clean restart.
    log.close().expect("close");
    let mut log = open(dir.path(), tiny_segments(), true);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(
        log.aborted_transactions(first2, log.log_end_offset())
            .expect("aborted"),
        aborted(&[(5, first2)])
    );
    let third = txn(&mut log, 5, 10, 1);
    assert_eq!(log.last_stable_offset(), third);
}

#[test]
fn lso_with_two_interleaved_producers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    plain(&mut log, 2); // 0-1
    let a = txn(&mut log, 1, 0, 1); // 2
    assert_eq!(log.last_stable_offset(), a);
    let b = txn(&mut log, 2, 0, 2); // 3-4
    txn(&mut log, 1, 1, 1); // 5
    plain(&mut log, 1); // 6
    assert_eq!(log.first_unstable_offset(), Some(a));
    assert_eq!(log.last_stable_offset(), a);
    assert_eq!(log.ongoing_transactions(), vec![(a, 1), (b, 2)]);
    // Producer 2 aborts first: producer 1 still holds the LSO at `a`.
    let abort2 = end(&mut log, 2, false); // 7
    assert_eq!(log.last_stable_offset(), a);
    // Producer 1 commits: the LSO jumps to the high watermark.
    let commit1 = end(&mut log, 1, true); // 8
    assert_eq!(log.last_stable_offset(), commit1 + 1);
    // Next round: producer 2 starts first, producer 1 aborts while producer 2 is open.
    let c = txn(&mut log, 2, 2, 1); // 9
    let d = txn(&mut log, 1, 2, 1); // 10
    assert_eq!(log.last_stable_offset(), c);
    let abort1 = end(&mut log, 1, false); // 11
    assert_eq!(log.last_stable_offset(), c);
    let abort2b = end(&mut log, 2, false); // 12
    assert_eq!(log.last_stable_offset(), abort2b + 1);
    assert_eq!((abort2, commit1, abort1, abort2b), (7, 8, 11, 12));
    // `.txnindex` entries exactly as Kafka writes them (lastStableOffset: the first
    // offset of the other producer's ongoing transaction, or the marker offset + 1).
    let mut expected = entry(2, b, abort2, a);
    expected.extend(entry(1, d, abort1, c));
    expected.extend(entry(2, c, abort2b, abort2b + 1));
    assert_eq!(txn_indexes(dir.path()), vec![(0, expected)]);
}

/// The layout used by the range tests (one record per batch):
///
/// ```text
/// 0 P1 txn (A)   1 P2 txn (B)   2 P1 ABORT (A: first 0, lso 1)   3 P3 txn (C)
/// 4 P2 COMMIT    5 P3 ABORT (C: first 3, lso 6)   6 plain   7 P1 txn (D)
/// 8 P1 ABORT (D: first 7, lso 9)
/// ```
fn range_layout(config: LogConfig) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), config, true);
    assert_eq!(txn(&mut log, 1, 0, 1), 0);
    assert_eq!(txn(&mut log, 2, 0, 1), 1);
    assert_eq!(end(&mut log, 1, false), 2);
    assert_eq!(txn(&mut log, 3, 0, 1), 3);
    assert_eq!(end(&mut log, 2, true), 4);
    assert_eq!(end(&mut log, 3, false), 5);
    assert_eq!(plain(&mut log, 1), 6);
    assert_eq!(txn(&mut log, 1, 1, 1), 7);
    assert_eq!(end(&mut log, 1, false), 8);
    (dir, log)
}

fn check_ranges(log: &Log) {
    let a = (1, 0);
    let c = (3, 3);
    let d = (1, 7);
    // (from, upper, expected (producer id, first offset) pairs)
    type Case<'a> = (i64, i64, &'a [(i64, i64)]);
    let cases: &[Case] = &[
        (0, 9, &[a, c, d]),
        (0, 1, &[a]),
        (1, 2, &[a]),
        (2, 3, &[a]),
        (3, 5, &[c]),
        (3, 4, &[c]),
        (4, 6, &[c]),
        (6, 7, &[]),
        (6, 8, &[d]),
        (8, 9, &[d]),
        (9, 9, &[]),
    ];
    for &(from, upper, want) in cases {
        assert_eq!(
            log.aborted_transactions(from, upper).expect("aborted"),
            aborted(want),
            "aborted_transactions({from}, {upper})"
        );
    }
    assert!(matches!(
        log.aborted_transactions(10, 11),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn aborted_transactions_ranges_as_kafka_computes_them() {
    let (dir, log) = range_layout(LogConfig::default());
    assert_eq!(log.segment_count(), 1);
    let mut expected = entry(1, 0, 2, 1);
    expected.extend(entry(3, 3, 5, 6));
    expected.extend(entry(1, 7, 8, 9));
    assert_eq!(txn_indexes(dir.path()), vec![(0, expected)]);
    check_ranges(&log);
}

#[test]
fn aborted_transactions_ranges_across_segments() {
    // One batch per segment: every entry lives in its marker's segment and the search
    // walks the segments from the one holding `from`.
    let config = LogConfig {
        segment_bytes: 1,
        ..LogConfig::default()
    };
    let (dir, log) = range_layout(config);
    assert_eq!(log.segment_count(), 9);
    assert_eq!(
        txn_indexes(dir.path()),
        vec![
            (2, entry(1, 0, 2, 1)),
            (5, entry(3, 3, 5, 6)),
            (8, entry(1, 7, 8, 9)),
        ]
    );
    check_ranges(&log);
}

/// Base offsets of the batches `read_up_to` returns.
fn read_bases(
    log: &Log,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
    max: Option<i64>,
) -> Vec<i64> {
    let r = log
        .read_up_to(offset, max_bytes, min_one, max)
        .expect("read");
    r.region
        .map(|reg| {
            RecordBatch::split(Bytes::from(reg.read_to_vec().expect("bytes")))
                .expect("split")
                .iter()
                .map(RecordBatch::base_offset)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn read_up_to_caps_at_the_max_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    plain(&mut log, 2); // 0-1
    plain(&mut log, 2); // 2-3
    plain(&mut log, 2); // 4-5
    let open_txn = txn(&mut log, 9, 0, 2); // 6-7
    plain(&mut log, 2); // 8-9
    assert_eq!(log.last_stable_offset(), open_txn);
    let lso = Some(log.last_stable_offset());
    assert_eq!(
        read_bases(&log, 0, usize::MAX, true, None),
        vec![0, 2, 4, 6, 8]
    );
    assert_eq!(read_bases(&log, 0, usize::MAX, true, lso), vec![0, 2, 4]);
    assert_eq!(read_bases(&log, 3, usize::MAX, true, lso), vec![2, 4]);
    assert_eq!(
        read_bases(&log, 6, usize::MAX, true, lso),
        Vec::<i64>::new()
    );
    assert_eq!(
        read_bases(&log, 8, usize::MAX, true, lso),
        Vec::<i64>::new()
    );
    // A max offset inside a batch: the straddling batch goes unless it comes first.
    assert_eq!(read_bases(&log, 0, usize::MAX, true, Some(3)), vec![0]);
    assert_eq!(read_bases(&log, 2, usize::MAX, true, Some(3)), vec![2]);
    assert_eq!(read_bases(&log, 0, usize::MAX, true, Some(2)), vec![0]);
    assert_eq!(
        read_bases(&log, 0, usize::MAX, true, Some(0)),
        Vec::<i64>::new()
    );
    // max_bytes still applies.
    let one = log.read(0, usize::MAX, true).expect("read");
    let first_len = RecordBatch::split(Bytes::from(
        one.region.expect("region").read_to_vec().expect("bytes"),
    ))
    .expect("split")[0]
        .size_in_bytes();
    assert_eq!(read_bases(&log, 0, first_len + 10, false, lso), vec![0]);
    assert_eq!(read_bases(&log, 0, 10, false, lso), Vec::<i64>::new());
    assert_eq!(read_bases(&log, 0, 10, true, lso), vec![0]);
    // The result carries the LSO; offsets outside the log still fail.
    let r = log.read_up_to(0, usize::MAX, true, lso).expect("read");
    assert_eq!(r.last_stable_offset, open_txn);
    assert!(matches!(
        log.read_up_to(11, usize::MAX, true, lso),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    // Once committed, everything is readable up to the LSO (= high watermark).
    end(&mut log, 9, true);
    let lso = Some(log.last_stable_offset());
    assert_eq!(
        read_bases(&log, 0, usize::MAX, true, lso),
        vec![0, 2, 4, 6, 8, 10]
    );
}

#[test]
fn read_up_to_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 1,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), config, true);
    plain(&mut log, 1); // 0, own segment
    let t = txn(&mut log, 4, 0, 1); // 1
    plain(&mut log, 1); // 2
    assert_eq!(log.segment_count(), 3);
    let region = |offset: i64| {
        log.read_up_to(offset, usize::MAX, true, Some(log.last_stable_offset()))
            .expect("read")
            .region
    };
    assert!(region(0).is_some());
    assert!(region(t).is_none());
    assert!(region(2).is_none());
}

#[test]
fn epoch_fencing_and_transaction_state_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    log.append_and_commit(&mut data(1, 2, 0, 1, true), 0)
        .expect("txn data");
    // A marker with an older epoch is fenced.
    let err = log
        .append_control_and_commit(1, 1, true, 0, 0, NOW)
        .expect_err("stale epoch");
    assert!(
        matches!(
            err,
            StorageError::InvalidProducerEpoch {
                producer_id: 1,
                current: 2,
                received: 1
            }
        ),
        "{err:?}"
    );
    // A non-transactional write while the transaction is open.
    let err = log
        .append_and_commit(&mut data(1, 2, 1, 1, false), 0)
        .expect_err("mixed write");
    assert!(
        matches!(
            err,
            StorageError::InvalidTxnState {
                producer_id: 1,
                first_offset: 0
            }
        ),
        "{err:?}"
    );
    let leo = log.log_end_offset();
    assert_eq!(leo, 1, "rejected appends write nothing");
    // The current epoch commits, with coordinator epoch 5.
    log.append_control_and_commit(1, 2, true, 5, 0, NOW)
        .expect("commit");
    // The sequence continues after the marker, in a new transaction.
    log.append_and_commit(&mut data(1, 2, 1, 1, true), 0)
        .expect("txn data");
    // A marker from an older coordinator is fenced.
    let err = log
        .append_control_and_commit(1, 2, false, 4, 0, NOW)
        .expect_err("stale coordinator");
    assert!(
        matches!(
            err,
            StorageError::TransactionCoordinatorFenced {
                producer_id: 1,
                current: 5,
                received: 4
            }
        ),
        "{err:?}"
    );
    // A marker with a bumped epoch (Kafka's epoch bump on abort) is accepted and fences
    // the old epoch's data.
    log.append_control_and_commit(1, 3, false, 5, 0, NOW)
        .expect("abort");
    assert_eq!(log.producer_entry(1).map(|p| p.epoch), Some(3));
    let err = log
        .append_and_commit(&mut data(1, 2, 2, 1, true), 0)
        .expect_err("old epoch");
    assert!(matches!(err, StorageError::InvalidProducerEpoch { .. }));
    // The new epoch starts again at sequence 0.
    log.append_and_commit(&mut data(1, 3, 0, 1, false), 0)
        .expect("new epoch");
    // A marker for an unknown producer is written, changes nothing else.
    let before = log.last_stable_offset();
    let info = log
        .append_control_and_commit(77, 0, false, 0, 0, NOW)
        .expect("stray marker");
    assert_eq!(info.base_offset, before);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(
        log.aborted_transactions(0, log.log_end_offset())
            .expect("aborted"),
        aborted(&[(1, 2)])
    );
    assert!(log
        .append_control_and_commit(-1, 0, true, 0, 0, NOW)
        .is_err());
    assert!(matches!(
        log.append_and_commit(&mut data(-1, -1, -1, 1, true), 0),
        Err(StorageError::CorruptBatch(_))
    ));
}

#[test]
fn control_batches_through_append_are_markers() {
    // The cleaner tests and replication-like paths append ready-made control batches.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    let first = txn(&mut log, 3, 0, 2);
    let mut marker = gregor_storage::batch::control_batch(3, 0, false, 1, NOW);
    let info = log.append_and_commit(&mut marker, 0).expect("abort marker");
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    assert_eq!(
        txn_indexes(dir.path()),
        vec![(0, entry(3, first, info.base_offset, info.base_offset + 1))]
    );
    // A control record of an unknown type is refused.
    let mut weird = gregor_storage::batch::control_batch(3, 0, false, 1, NOW);
    let key_type_pos = weird.len() - 1 - 6 - 1 - 1; // headers, value, value length, type lo byte
    weird[key_type_pos] = 9;
    let crc = gregor_storage::batch::compute_crc(&weird);
    weird[17..21].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        gregor_storage::batch::control_marker(&weird)
            .expect("parses")
            .0,
        9
    );
    assert!(matches!(
        log.append_and_commit(&mut weird, 0),
        Err(StorageError::CorruptBatch(_))
    ));
}

#[test]
fn unclean_shutdown_mid_transaction_restores_the_ongoing_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), tiny_segments(), true);
    plain(&mut log, 1);
    let first = txn(&mut log, 8, 0, 2);
    // Rolls after the transaction began: snapshots carry the ongoing transaction.
    for i in 0..4 {
        txn(&mut log, 8, 2 + 2 * i, 2);
        plain(&mut log, 1);
    }
    assert!(log.segment_count() > 2);
    let other = txn(&mut log, 9, 0, 1);
    let leo = log.log_end_offset();
    drop(log); // no close: an unclean shutdown
    let log = open(dir.path(), tiny_segments(), false);
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.first_unstable_offset(), Some(first));
    assert_eq!(log.last_stable_offset(), first);
    assert_eq!(log.ongoing_transactions(), vec![(first, 8), (other, 9)]);
    assert_eq!(
        log.producer_entry(8)
            .map(|p| (p.last_sequence, p.current_txn_first_offset)),
        Some((9, Some(first)))
    );
    // Without any snapshot the replay from the log start finds the same state.
    drop(log);
    for s in files(dir.path(), ".snapshot") {
        std::fs::remove_file(s).expect("remove");
    }
    let mut log = open(dir.path(), tiny_segments(), false);
    assert_eq!(log.ongoing_transactions(), vec![(first, 8), (other, 9)]);
    let abort = end(&mut log, 8, false);
    assert_eq!(log.last_stable_offset(), other);
    assert_eq!(
        txn_indexes(dir.path())
            .last()
            .map(|(_, bytes)| bytes.clone()),
        Some(entry(8, first, abort, other))
    );
}

#[test]
fn crash_after_the_marker_rebuilds_the_txn_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    let first = txn(&mut log, 8, 0, 2);
    plain(&mut log, 2);
    txn(&mut log, 8, 2, 2);
    let abort = end(&mut log, 8, false);
    let second = txn(&mut log, 6, 0, 1);
    let expected = txn_indexes(dir.path());
    assert_eq!(log.segment_count(), 1);
    assert_eq!(expected.len(), 1);
    assert_eq!(expected[0].1, entry(8, first, abort, abort + 1));
    drop(log);
    // The index entry was lost (not yet on disk when the machine died).
    for f in files(dir.path(), ".txnindex") {
        std::fs::remove_file(f).expect("remove");
    }
    let log = open(dir.path(), LogConfig::default(), false);
    assert_eq!(txn_indexes(dir.path()), expected);
    assert_eq!(log.last_stable_offset(), second);
    assert_eq!(
        log.aborted_transactions(first, abort + 1).expect("aborted"),
        aborted(&[(8, first)])
    );
    drop(log);

    // A torn marker: the recovery truncates it and the transaction is open again.
    let marker_seg = expected[0].0;
    let mut log = open(dir.path(), LogConfig::default(), true);
    let abort2 = end(&mut log, 6, false);
    drop(log);
    let active_now = files(dir.path(), ".log").pop().expect("active segment");
    let len = std::fs::metadata(&active_now).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&active_now)
        .expect("open");
    f.set_len(len - 3).expect("tear the marker");
    drop(f);
    let log = open(dir.path(), LogConfig::default(), false);
    assert_eq!(log.log_end_offset(), abort2);
    assert_eq!(log.first_unstable_offset(), Some(second));
    let idx = txn_indexes(dir.path());
    assert_eq!(idx.len(), 1, "{idx:?}");
    assert_eq!(idx[0], (marker_seg, entry(8, first, abort, abort + 1)));
}

#[test]
fn corrupt_txn_index_of_a_sealed_segment_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), tiny_segments(), true);
    let first = txn(&mut log, 8, 0, 1);
    let abort = end(&mut log, 8, false);
    for _ in 0..6 {
        plain(&mut log, 2);
    }
    assert!(log.segment_count() > 2);
    log.close().expect("close");
    let idx = txn_indexes(dir.path());
    assert_eq!(idx.len(), 1);
    let path = files(dir.path(), ".txnindex").pop().expect("file");
    std::fs::write(&path, &idx[0].1[..33]).expect("corrupt");
    let log = open(dir.path(), tiny_segments(), true);
    assert_eq!(txn_indexes(dir.path()), idx);
    assert_eq!(
        log.aborted_transactions(first, abort + 1).expect("aborted"),
        aborted(&[(8, first)])
    );
}

#[test]
fn retention_and_delete_records_drop_txn_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tiny_segments();
    config.retention_ms = -1;
    config.file_delete_delay_ms = 0;
    let mut log = open(dir.path(), config, true);
    let first = txn(&mut log, 8, 0, 1);
    let abort = end(&mut log, 8, false);
    for _ in 0..6 {
        plain(&mut log, 2);
    }
    assert_eq!(files(dir.path(), ".txnindex").len(), 1);
    assert_eq!(
        log.aborted_transactions(first, abort + 1).expect("aborted"),
        aborted(&[(8, first)])
    );
    let hw = log.high_watermark();
    log.delete_records(hw - 1).expect("delete records");
    let outcome = log.delete_old_segments(NOW).expect("retention");
    assert!(outcome.deleted_segments >= 2);
    assert!(files(dir.path(), ".txnindex").is_empty());
    assert_eq!(files(dir.path(), ".txnindex.deleted").len(), 1);
    log.purge_deleted(NOW).expect("purge");
    assert!(files(dir.path(), ".txnindex.deleted").is_empty());
    assert_eq!(
        log.aborted_transactions(hw - 1, hw).expect("aborted"),
        vec![]
    );
    log.close().expect("close");
    let log = open(dir.path(), tiny_segments(), false);
    assert!(files(dir.path(), ".txnindex").is_empty());
    assert_eq!(log.last_stable_offset(), hw);
}

#[test]
fn ongoing_transactions_survive_a_clean_restart_through_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    plain(&mut log, 1);
    let first = txn(&mut log, 4, 0, 2);
    log.append_control_and_commit(5, 1, true, 7, 0, NOW)
        .expect("stray marker sets the coordinator epoch");
    let leo = log.log_end_offset();
    log.close().expect("close");
    // The snapshot at the log end holds the ongoing transaction and the coordinator epoch:
    // the reopened log replays nothing after it.
    assert!(dir.path().join(format!("{leo:020}.snapshot")).exists());
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(log.ongoing_transactions(), vec![(first, 4)]);
    assert_eq!(log.last_stable_offset(), first);
    assert_eq!(log.producer_entry(5).map(|p| p.coordinator_epoch), Some(7));
    assert!(matches!(
        log.append_control_and_commit(5, 1, true, 6, 0, NOW),
        Err(StorageError::TransactionCoordinatorFenced { .. })
    ));
    // The sequence continues and the transaction is still the same one.
    txn(&mut log, 4, 2, 1);
    let abort = end(&mut log, 4, false);
    assert_eq!(
        log.aborted_transactions(0, abort + 1).expect("aborted"),
        aborted(&[(4, first)])
    );
}

#[test]
fn first_unstable_offset_is_at_least_the_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    let first = txn(&mut log, 4, 0, 1);
    plain(&mut log, 3);
    assert_eq!(log.last_stable_offset(), first);
    log.delete_records(2).expect("delete records");
    assert_eq!(log.first_unstable_offset(), Some(2));
    assert_eq!(log.last_stable_offset(), 2);
    end(&mut log, 4, true);
    assert_eq!(log.last_stable_offset(), log.high_watermark());
}

#[test]
fn read_committed_returns_stable_batches_and_their_aborted_transactions() {
    let (_dir, mut log) = range_layout(LogConfig::default());
    // Producer 2 opens a transaction at 9; a plain batch follows.
    assert_eq!(txn(&mut log, 2, 1, 1), 9);
    assert_eq!(plain(&mut log, 1), 10);
    assert_eq!(log.last_stable_offset(), 9);
    let bases = |r: &gregor_storage::ReadResult| -> Vec<i64> {
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
    };
    let (r, aborted_txns) = log.read_committed(0, usize::MAX, true).expect("read");
    assert_eq!(bases(&r), (0..9).collect::<Vec<_>>());
    assert_eq!(r.last_stable_offset, 9);
    assert_eq!(aborted_txns, aborted(&[(1, 0), (3, 3), (1, 7)]));
    // A read of batches 3..=4 only (upper bound 5): transaction C alone.
    let one = log.read(3, usize::MAX, true).expect("read");
    let sizes: Vec<usize> = RecordBatch::split(Bytes::from(
        one.region.expect("region").read_to_vec().expect("bytes"),
    ))
    .expect("split")
    .iter()
    .map(RecordBatch::size_in_bytes)
    .collect();
    let (r, aborted_txns) = log
        .read_committed(3, sizes[0] + sizes[1], false)
        .expect("read");
    assert_eq!(bases(&r), vec![3, 4]);
    assert_eq!(aborted_txns, aborted(&[(3, 3)]));
    // At the LSO: nothing, and no aborted transactions.
    let (r, aborted_txns) = log.read_committed(9, usize::MAX, true).expect("read");
    assert!(r.region.is_none());
    assert!(aborted_txns.is_empty());
    // read_uncommitted still sees everything.
    assert_eq!(
        bases(&log.read(0, usize::MAX, true).expect("read")),
        (0..11).collect::<Vec<_>>()
    );
}

#[test]
fn producers_lists_every_producer_with_its_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), LogConfig::default(), true);
    assert!(log.producers().is_empty());
    plain(&mut log, 2);
    let first = txn(&mut log, 9, 0, 3);
    log.append_and_commit(&mut data(4, 2, 0, 2, false), 0)
        .expect("idempotent append");
    let all = log.producers();
    assert_eq!(all.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [4, 9]);
    let (_, idem) = all[0];
    assert_eq!((idem.epoch, idem.last_sequence), (2, 1));
    assert_eq!(idem.current_txn_first_offset, None);
    assert_eq!(idem.last_timestamp, NOW);
    let (_, t) = all[1];
    assert_eq!((t.epoch, t.last_sequence, t.coordinator_epoch), (0, 2, -1));
    assert_eq!(t.current_txn_first_offset, Some(first));
    assert_eq!(t.last_timestamp, NOW);
    end(&mut log, 9, true);
    let (_, t) = log.producers()[1];
    assert_eq!((t.current_txn_first_offset, t.coordinator_epoch), (None, 0));
    // The snapshot keeps everything, the last timestamp included.
    let before = log.producers();
    log.close().expect("close");
    let log = open(dir.path(), LogConfig::default(), true);
    assert_eq!(log.producers(), before);
}
