//! The storage half of replication on one log: the stored high watermark and the reads
//! bounded by it.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use gregor_storage::{Log, LogConfig, ManualClock, StorageError};

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
