//! Retention, DeleteRecords, segment.ms rolls, the leader-epoch checkpoint and compaction.

#[path = "../../broker/src/cleaner_codec.rs"]
#[allow(dead_code)]
mod cleaner_codec;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use cleaner_codec::ProtocolCodec;
use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
use gregor_storage::{Log, LogConfig, ManualClock, RecordCodec, StorageError, SystemClock};

mod common;
use common::SingleNode;

const NOW: i64 = 1_700_000_000_000;

fn open(dir: &Path, config: LogConfig, clean: bool) -> Log {
    Log::open(dir, config, clean, Arc::new(SystemClock))
        .expect("open log")
        .0
        .commit_all()
}

/// One batch of `(key, value)` records with timestamp `ts`.
fn kv_batch(c: Compression, ts: i64, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(c, ts);
    for (k, v) in records {
        b.push(ts, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
    }
    b.build().expect("build").to_vec()
}

fn append(log: &mut Log, c: Compression, ts: i64, records: &[(&str, Option<&str>)]) -> i64 {
    let mut b = kv_batch(c, ts, records);
    log.append_and_commit(&mut b, 0)
        .expect("append")
        .base_offset
}

/// Every record of the log from its start: (offset, key, value), with every batch's CRC
/// checked.
fn read_records(log: &Log) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, true).expect("read");
        let Some(region) = r.region else { break };
        let bytes = region.read_to_vec().expect("region");
        let mut next = offset;
        for b in RecordBatch::split(Bytes::from(bytes)).expect("split") {
            b.verify_crc().expect("valid CRC");
            next = b.next_offset();
            if b.is_control() {
                continue;
            }
            for rec in b.records(usize::MAX).expect("records") {
                let o = rec.offset(b.base_offset());
                if o < offset {
                    continue;
                }
                out.push((
                    o,
                    String::from_utf8(rec.key.map(|k| k.to_vec()).unwrap_or_default())
                        .expect("utf8"),
                    rec.value
                        .map(|v| String::from_utf8(v.to_vec()).expect("utf8")),
                ));
            }
        }
        assert!(next > offset, "read makes progress");
        offset = next;
    }
    out
}

/// Latest value per key among records.
fn latest(records: &[(i64, String, Option<String>)]) -> BTreeMap<String, (i64, Option<String>)> {
    let mut m = BTreeMap::new();
    for (o, k, v) in records {
        m.insert(k.clone(), (*o, v.clone()));
    }
    m
}

fn names(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn small(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

// ---------------------------------------------------------------- retention

#[test]
fn retention_by_time_deletes_old_segments_and_purges_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(300);
    cfg.retention_ms = 1000;
    cfg.file_delete_delay_ms = 500;
    let mut log = open(dir.path(), cfg.clone(), true);
    // Old batches (ts NOW-5000..), then recent ones (ts NOW).
    for i in 0..6 {
        append(
            &mut log,
            Compression::None,
            NOW - 5000 + i,
            &[("k", Some("0123456789012345678901234567890123456789"))],
        );
    }
    let old_end = log.log_end_offset();
    for _ in 0..6 {
        append(
            &mut log,
            Compression::None,
            NOW,
            &[("k", Some("0123456789012345678901234567890123456789"))],
        );
    }
    let segments_before = log.segment_count();
    assert!(segments_before >= 4, "{segments_before}");
    let out = log.delete_old_segments(NOW).expect("retention");
    assert!(out.by_time > 0 && out.by_size == 0);
    assert_eq!(out.deleted_segments, out.by_time);
    assert_eq!(log.segment_count(), segments_before - out.deleted_segments);
    assert!(log.log_start_offset() > 0 && log.log_start_offset() <= old_end);
    assert_eq!(out.log_start_offset, log.log_start_offset());
    // Every remaining record is recent or in a segment holding recent ones.
    let recs = read_records(&log);
    assert_eq!(recs.first().map(|r| r.0), Some(log.log_start_offset()));
    assert!(matches!(
        log.read(0, 100, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let deleted = names(dir.path(), ".deleted");
    assert_eq!(deleted.len(), 3 * out.deleted_segments, "{deleted:?}");
    assert_eq!(log.purge_deleted(NOW + 499).expect("purge"), 0);
    assert_eq!(log.purge_deleted(NOW + 500).expect("purge"), deleted.len());
    assert!(names(dir.path(), ".deleted").is_empty());
    // Nothing more is due.
    assert_eq!(
        log.delete_old_segments(NOW)
            .expect("again")
            .deleted_segments,
        0
    );
    // Leftover `.deleted` files are removed at open; the start survives a reopen.
    let start = log.log_start_offset();
    std::fs::write(dir.path().join("00000000000000000000.log.deleted"), b"x").expect("write");
    log.close().expect("close");
    let log = open(dir.path(), cfg, true);
    assert!(names(dir.path(), ".deleted").is_empty());
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn fully_expired_log_rolls_and_keeps_an_empty_active_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(300);
    cfg.retention_ms = 1000;
    let mut log = open(dir.path(), cfg.clone(), true);
    for i in 0..5 {
        append(
            &mut log,
            Compression::None,
            NOW - 10_000 + i,
            &[("k", Some("0123456789012345678901234567890123456789"))],
        );
    }
    let end = log.log_end_offset();
    let out = log.delete_old_segments(NOW).expect("retention");
    assert!(out.deleted_segments >= 2);
    // As in Kafka, the expired active segment was rolled and deleted.
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.log_end_offset(), end);
    assert!(read_records(&log).is_empty());
    // The empty active segment is never deleted.
    assert_eq!(
        log.delete_old_segments(NOW + 1_000_000)
            .expect("again")
            .deleted_segments,
        0
    );
    assert_eq!(log.segment_count(), 1);
    let o = append(&mut log, Compression::None, NOW, &[("k", Some("v"))]);
    assert_eq!(o, end);
    log.close().expect("close");
    let log = open(dir.path(), cfg, false);
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(read_records(&log).len(), 1);
}

#[test]
fn retention_by_size_keeps_the_log_under_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(400);
    cfg.retention_ms = -1;
    let mut log = open(dir.path(), cfg.clone(), true);
    for _ in 0..20 {
        append(
            &mut log,
            Compression::None,
            NOW,
            &[("k", Some("0123456789012345678901234567890123456789"))],
        );
    }
    let size = log.size_bytes();
    cfg.retention_bytes = (size / 2) as i64;
    log.set_config(cfg.clone());
    let out = log.delete_old_segments(NOW).expect("retention");
    assert!(out.by_size > 0 && out.by_time == 0);
    // Kafka deletes a segment only if the log stays >= retention.bytes without it.
    assert!(
        log.size_bytes() >= size / 2,
        "{} < {}",
        log.size_bytes(),
        size / 2
    );
    assert!(
        log.size_bytes() < size / 2 + 400,
        "{} too large",
        log.size_bytes()
    );
    assert_eq!(size - log.size_bytes(), out.deleted_bytes);
    // retention.bytes = 0 empties the log down to an empty active segment.
    cfg.retention_bytes = 0;
    log.set_config(cfg);
    log.delete_old_segments(NOW).expect("retention");
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.log_start_offset(), log.log_end_offset());
}

#[test]
fn compact_only_policy_ignores_time_and_size_but_not_log_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(300);
    cfg.retention_ms = 1;
    cfg.retention_bytes = 1;
    cfg.cleanup_delete = false;
    let mut log = open(dir.path(), cfg, true);
    for i in 0..10 {
        append(
            &mut log,
            Compression::None,
            NOW - 10_000 + i,
            &[("k", Some("0123456789012345678901234567890123456789"))],
        );
    }
    let segs = log.segment_count();
    assert_eq!(
        log.delete_old_segments(NOW)
            .expect("retention")
            .deleted_segments,
        0
    );
    let third_base = {
        // Move the start into the third segment: the first two go.
        log.delete_records(5).expect("delete records");
        log.delete_old_segments(NOW).expect("retention")
    };
    assert!(third_base.by_log_start >= 1);
    assert_eq!(third_base.by_log_start, third_base.deleted_segments);
    assert_eq!(log.segment_count(), segs - third_base.deleted_segments);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(read_records(&log).first().map(|r| r.0), Some(5));
}

// ---------------------------------------------------------------- DeleteRecords

#[test]
fn delete_records_moves_the_start_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), small(1_000_000), true);
    for i in 0..10 {
        append(
            &mut log,
            Compression::None,
            NOW + i,
            &[("a", Some("1")), ("b", Some("2"))],
        );
    }
    assert_eq!(log.log_end_offset(), 20);
    assert!(matches!(
        log.delete_records(21),
        Err(StorageError::OffsetOutOfRange { requested: 21, .. })
    ));
    assert!(matches!(
        log.delete_records(-2),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records(7).expect("delete"), 7);
    assert_eq!(log.delete_records(3).expect("no-op"), 7);
    assert_eq!(log.delete_records(7).expect("no-op"), 7);
    assert_eq!(log.log_start_offset(), 7);
    assert!(matches!(
        log.read(6, 1000, true),
        Err(StorageError::OffsetOutOfRange {
            requested: 6,
            log_start: 7,
            ..
        })
    ));
    // The batch holding offset 7 starts at 6: reads return it whole.
    let r = log.read(7, 1000, true).expect("read");
    assert_eq!(r.log_start_offset, 7);
    assert_eq!(read_records(&log).first().map(|r| r.0), Some(7));
    // Timestamp lookups skip batches wholly below the start.
    let b = log
        .find_batch_by_timestamp(0)
        .expect("lookup")
        .expect("batch");
    assert_eq!(b.base_offset, 6);
    let info = log
        .append_and_commit(&mut kv_batch(Compression::None, NOW, &[("c", None)]), 0)
        .expect("append");
    assert_eq!(info.log_start_offset, 7);
    drop(log); // no close: unclean
    let mut log = open(dir.path(), small(1_000_000), false);
    assert_eq!(log.log_start_offset(), 7);
    assert_eq!(log.delete_records(-1).expect("to hw"), 21);
    log.close().expect("close");
    let log = open(dir.path(), small(1_000_000), true);
    assert_eq!(log.log_start_offset(), 21);
    assert_eq!(log.log_end_offset(), 21);
    assert!(read_records(&log).is_empty());
    assert_eq!(log.find_batch_by_timestamp(0).expect("lookup"), None);
}

// ---------------------------------------------------------------- segment.ms

#[test]
fn segment_ms_rolls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small(1_000_000);
    cfg.segment_ms = 1000;
    let mut log = open(dir.path(), cfg, true);
    assert!(!log.roll_if_due(NOW).expect("empty never rolls"));
    append(&mut log, Compression::None, NOW, &[("k", Some("v"))]);
    assert!(!log.roll_if_due(NOW + 1000).expect("not yet"));
    assert!(log.roll_if_due(NOW + 1001).expect("due"));
    assert_eq!(log.segment_count(), 2);
    assert!(!log.roll_if_due(NOW + 5000).expect("new segment is empty"));
    // On append, Kafka compares the new batch's timestamp with the first batch's.
    append(&mut log, Compression::None, NOW, &[("k", Some("v"))]);
    append(&mut log, Compression::None, NOW + 1000, &[("k", Some("v"))]);
    assert_eq!(log.segment_count(), 2);
    append(&mut log, Compression::None, NOW + 1001, &[("k", Some("v"))]);
    assert_eq!(log.segment_count(), 3);
    assert_eq!(read_records(&log).len(), 4);
}

#[test]
fn segment_ms_roll_follows_the_manual_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(NOW));
    let mut cfg = small(1_000_000);
    cfg.segment_ms = 1000;
    let mut log = Log::open(dir.path(), cfg, true, clock.clone())
        .expect("open")
        .0;
    // Batches without timestamps: the roll compares the clock with the segment's creation.
    let no_ts = || {
        let mut b = RecordBatchBuilder::new(Compression::None, -1);
        b.push(-1, Some(b"k"), Some(b"v"), &[]);
        b.build().expect("build").to_vec()
    };
    log.append(&mut no_ts(), 0).expect("append");
    clock.advance(1000);
    log.append(&mut no_ts(), 0).expect("append");
    assert_eq!(log.segment_count(), 1, "not yet: exactly segment.ms");
    clock.advance(1);
    log.append(&mut no_ts(), 0).expect("append");
    assert_eq!(
        log.segment_count(),
        2,
        "rolled once the clock passed segment.ms"
    );
    // The new segment was created at the clock's time: it rolls 1001 ms after that.
    clock.advance(1000);
    log.append(&mut no_ts(), 0).expect("append");
    assert_eq!(log.segment_count(), 2);
    clock.advance(1);
    log.append(&mut no_ts(), 0).expect("append");
    assert_eq!(log.segment_count(), 3);
    // A clock going backwards never rolls.
    clock.set(0);
    log.append(&mut no_ts(), 0).expect("append");
    assert_eq!(log.segment_count(), 3);
    // roll_if_due takes the time explicitly; the segment was created at NOW + 2002.
    assert!(!log.roll_if_due(NOW + 3002).expect("exactly segment.ms"));
    assert!(log.roll_if_due(NOW + 3003).expect("due"));
    assert_eq!(log.segment_count(), 4);
}

// ---------------------------------------------------------------- leader epochs

#[test]
fn leader_epoch_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leader-epoch-checkpoint");
    let mut log = open(dir.path(), small(1_000_000), true);
    assert_eq!(log.end_offset_for_epoch(0), None);
    for epoch in [0, 0, 2, 2, 5] {
        let mut b = kv_batch(
            Compression::None,
            NOW,
            &[("k", Some("v")), ("k", Some("w"))],
        );
        log.append_and_commit(&mut b, epoch).expect("append");
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("checkpoint"),
        "0\n3\n0 0\n2 4\n5 8\n"
    );
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 4)));
    assert_eq!(log.end_offset_for_epoch(1), Some((0, 4)));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
    assert_eq!(log.end_offset_for_epoch(5), Some((5, 10)));
    assert_eq!(log.end_offset_for_epoch(6), None);
    assert_eq!(log.end_offset_for_epoch(-1), None);
    log.delete_records(5).expect("delete");
    assert_eq!(
        std::fs::read_to_string(&path).expect("checkpoint"),
        "0\n2\n2 5\n5 8\n"
    );
    assert_eq!(log.end_offset_for_epoch(0), Some((0, 5)));
    log.close().expect("close");
    // Rebuilt from the batches when missing.
    std::fs::remove_file(&path).expect("remove");
    let log = open(dir.path(), small(1_000_000), true);
    assert_eq!(
        std::fs::read_to_string(&path).expect("checkpoint"),
        "0\n2\n2 5\n5 8\n"
    );
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 8)));
}

// ---------------------------------------------------------------- compaction

fn compact_cfg(segment_bytes: u64) -> LogConfig {
    LogConfig {
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: 1000,
        ..small(segment_bytes)
    }
}

fn clean(log: &mut Log, now: i64) -> Option<gregor_storage::CleanStats> {
    let plan = log.prepare_clean(now)?;
    let mut io = 0u64;
    let out = plan
        .execute(&ProtocolCodec, &mut |n| io += n)
        .expect("execute");
    assert!(io > 0, "throttle is called");
    Some(log.commit_clean(out).expect("commit"))
}

/// Writes rounds of `keys` keys (values `k{i}-r{round}`), several segments.
fn fill_keys(log: &mut Log, c: Compression, keys: usize, rounds: usize) {
    for round in 0..rounds {
        for i in 0..keys {
            let k = format!("k{i}");
            let v = format!("k{i}-r{round}");
            append(log, c, NOW + round as i64, &[(&k, Some(&v))]);
        }
    }
}

fn check_compacted(log: &Log, before: &[(i64, String, Option<String>)]) {
    let after = read_records(log);
    // Offsets strictly increase and every kept record is an original one, unchanged.
    let originals: BTreeMap<i64, (String, Option<String>)> = before
        .iter()
        .map(|(o, k, v)| (*o, (k.clone(), v.clone())))
        .collect();
    for w in after.windows(2) {
        assert!(w[0].0 < w[1].0, "offsets increase");
    }
    for (o, k, v) in &after {
        assert_eq!(
            originals.get(o),
            Some(&(k.clone(), v.clone())),
            "record at {o}"
        );
    }
    // The latest record of every key survives.
    assert_eq!(latest(&after), latest(before));
}

#[test]
fn compaction_keeps_the_latest_value_per_key() {
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = compact_cfg(600);
        let mut log = open(dir.path(), cfg.clone(), true);
        fill_keys(&mut log, c, 5, 8);
        let before = read_records(&log);
        let end = log.log_end_offset();
        let active_base = *log_segment_bases(dir.path()).last().expect("segments");
        let stats = clean(&mut log, NOW + 10).expect("cleanable");
        assert!(stats.committed, "{c:?}");
        assert_eq!(stats.end_offset, active_base);
        assert!(stats.records_removed > 0 && stats.bytes_after < stats.bytes_before);
        check_compacted(&log, &before);
        let after = read_records(&log);
        // Sealed part: one record per key at most.
        let sealed: Vec<_> = after.iter().filter(|r| r.0 < active_base).collect();
        let mut keys: Vec<&String> = sealed.iter().map(|r| &r.1).collect();
        keys.dedup();
        assert_eq!(keys.len(), sealed.len(), "{c:?}: {sealed:?}");
        assert_eq!(log.log_end_offset(), end);
        // Nothing dirty any more.
        assert!(log.prepare_clean(NOW + 20).is_none());
        assert!(names(dir.path(), ".cleaned").is_empty() && names(dir.path(), ".swap").is_empty());
        // Indexes and timestamp lookups still work, across a reopen too.
        let b = log
            .find_batch_by_timestamp(NOW + 7)
            .expect("lookup")
            .expect("found");
        assert!(b.base_offset >= 35 - 5);
        log.close().expect("close");
        let log = open(dir.path(), cfg, true);
        assert_eq!(read_records(&log), after);
        let (_, report) =
            Log::open(dir.path(), compact_cfg(600), true, Arc::new(SystemClock)).expect("reopen");
        assert_eq!(
            report.rebuilt_indexes, 0,
            "indexes of cleaned segments are valid"
        );
    }
}

fn log_segment_bases(dir: &Path) -> Vec<i64> {
    names(dir, ".log")
        .iter()
        .filter_map(|n| n.strip_suffix(".log")?.parse().ok())
        .collect()
}

#[test]
fn cleaning_again_picks_up_only_new_dirty_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = compact_cfg(600);
    cfg.min_cleanable_dirty_ratio = 0.5;
    let mut log = open(dir.path(), cfg, true);
    fill_keys(&mut log, Compression::None, 5, 8);
    let first = clean(&mut log, NOW + 10).expect("all dirty: ratio 1.0");
    assert_eq!(first.first_dirty_offset, 0);
    // Nothing new sealed: nothing to do.
    assert!(log.prepare_clean(NOW + 20).is_none());
    fill_keys(&mut log, Compression::None, 5, 8);
    let before = read_records(&log);
    let second = clean(&mut log, NOW + 30).expect("dirty again");
    assert_eq!(second.first_dirty_offset, first.end_offset);
    check_compacted(&log, &before);
}

#[test]
fn tombstones_are_removed_only_after_delete_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = compact_cfg(300);
    let mut log = open(dir.path(), cfg, true);
    append(
        &mut log,
        Compression::None,
        NOW,
        &[("a", Some("1")), ("b", Some("1"))],
    );
    append(&mut log, Compression::None, NOW, &[("a", None)]);
    fill_keys(&mut log, Compression::None, 3, 4);
    let before = read_records(&log);
    clean(&mut log, NOW + 100).expect("clean");
    let after = read_records(&log);
    check_compacted(&log, &before);
    assert!(
        after.contains(&(2, "a".into(), None)),
        "tombstone kept at first: {after:?}"
    );
    assert!(!after.iter().any(|r| r.1 == "a" && r.2.is_some()));
    // Still within delete.retention.ms (1000) of the first cleaning: kept.
    if let Some(s) = clean(&mut log, NOW + 100 + 999) {
        assert_eq!(s.tombstones_removed, 0);
    }
    assert!(read_records(&log).contains(&(2, "a".into(), None)));
    // After it: a cleaning is due even without new dirty data, and removes it.
    let s = clean(&mut log, NOW + 100 + 1000).expect("horizon passed");
    assert_eq!(s.tombstones_removed, 1);
    let now = read_records(&log);
    assert!(!now.iter().any(|r| r.1 == "a"), "{now:?}");
    assert!(now.iter().any(|r| r.1 == "b"));
    assert!(log.prepare_clean(NOW + 1_000_000).is_none());
}

#[test]
fn min_compaction_lag_protects_recent_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = compact_cfg(600);
    cfg.min_compaction_lag_ms = 1000;
    let mut log = open(dir.path(), cfg.clone(), true);
    fill_keys(&mut log, Compression::None, 5, 4); // timestamps NOW..NOW+3
    let old_end = log.log_end_offset();
    for round in 0..4 {
        for i in 0..5 {
            let k = format!("k{i}");
            append(
                &mut log,
                Compression::None,
                NOW + 5000,
                &[(&k, Some(&format!("new{round}")))],
            );
        }
    }
    let before = read_records(&log);
    let s = clean(&mut log, NOW + 5500).expect("old segments are cleanable");
    assert!(s.end_offset <= old_end, "{} > {old_end}", s.end_offset);
    let after = read_records(&log);
    assert_eq!(
        after.iter().filter(|r| r.0 >= s.end_offset).count(),
        before.iter().filter(|r| r.0 >= s.end_offset).count(),
        "records newer than the lag are untouched"
    );
    check_compacted(&log, &before);
    // Too recent for anything: no plan.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let mut log2 = open(dir2.path(), cfg, true);
    fill_keys(&mut log2, Compression::None, 5, 4);
    assert!(log2.prepare_clean(NOW + 10).is_none());
}

#[test]
fn producer_state_survives_compaction_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = compact_cfg(300);
    let mut log = open(dir.path(), cfg.clone(), true);
    // Producer 7 writes keys that are all overwritten later by a non-idempotent writer.
    let mut seq = 0;
    let mut last_producer_batch = Vec::new();
    for i in 0..4 {
        let mut b = RecordBatchBuilder::new(Compression::None, NOW).producer(7, 3, seq);
        b.push(NOW, Some(format!("p{i}").as_bytes()), Some(b"x"), &[]);
        b.push(NOW, Some(format!("q{i}").as_bytes()), Some(b"x"), &[]);
        let mut bytes = b.build().expect("build").to_vec();
        log.append_and_commit(&mut bytes, 0).expect("append");
        last_producer_batch = bytes;
        seq += 2;
    }
    for i in 0..4 {
        append(
            &mut log,
            Compression::None,
            NOW,
            &[(&format!("p{i}"), Some("y")), (&format!("q{i}"), Some("y"))],
        );
    }
    fill_keys(&mut log, Compression::None, 2, 6);
    let summary = log.producer_entry(7).expect("producer");
    clean(&mut log, NOW + 10).expect("clean");
    let recs = read_records(&log);
    assert!(
        !recs.iter().any(|r| r.2.as_deref() == Some("x")),
        "{recs:?}"
    );
    // The producer's last batch is kept as an empty batch.
    let all = log
        .read(0, usize::MAX, true)
        .expect("read")
        .region
        .expect("region");
    let batches =
        RecordBatch::split(Bytes::from(all.read_to_vec().expect("bytes"))).expect("split");
    let empty: Vec<_> = batches.iter().filter(|b| b.producer_id() == 7).collect();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].record_count(), 0);
    assert_eq!(empty[0].base_sequence(), 6);
    assert_eq!(empty[0].last_offset_delta(), 1);
    for clean_shutdown in [true, false] {
        if clean_shutdown {
            log.close().expect("close");
        } else {
            drop(log);
        }
        log = open(dir.path(), cfg.clone(), clean_shutdown);
        assert_eq!(log.producer_entry(7), Some(summary));
        // A retry of the last batch is still recognised as a duplicate.
        let mut retry = last_producer_batch.clone();
        assert!(
            log.append_and_commit(&mut retry, 0)
                .expect("append")
                .duplicate
        );
    }
    // Remove the snapshots: state is rebuilt from the (compacted) log.
    log.close().expect("close");
    for s in names(dir.path(), ".snapshot") {
        std::fs::remove_file(dir.path().join(s)).expect("remove");
    }
    let mut log = open(dir.path(), cfg, false);
    assert_eq!(log.producer_entry(7).map(|p| p.last_sequence), Some(7));
    let mut next = RecordBatchBuilder::new(Compression::None, NOW).producer(7, 3, 8);
    next.push(NOW, Some(b"z"), Some(b"z"), &[]);
    let mut next = next.build().expect("build").to_vec();
    assert!(
        !log.append_and_commit(&mut next, 0)
            .expect("in sequence")
            .duplicate
    );
}

/// A control batch (transaction marker) of producer `pid`: type 0 abort, 1 commit.
fn marker(pid: i64, commit: bool) -> Vec<u8> {
    let key = [0u8, 0, 0, u8::from(commit)];
    let value = [0u8, 0, 0, 0, 0, 0];
    let mut b = RecordBatchBuilder::new(Compression::None, NOW)
        .producer(pid, 0, -1)
        .transactional(true)
        .control(true);
    b.push(NOW, Some(&key), Some(&value), &[]);
    b.build().expect("build").to_vec()
}

fn txn_batch(pid: i64, seq: i32, records: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(Compression::None, NOW)
        .producer(pid, 0, seq)
        .transactional(true);
    for (k, v) in records {
        b.push(NOW, Some(k.as_bytes()), v.map(str::as_bytes), &[]);
    }
    b.build().expect("build").to_vec()
}

#[test]
fn transactions_markers_are_kept_and_aborted_data_never_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_cfg(400), true);
    append(
        &mut log,
        Compression::None,
        NOW,
        &[("a", Some("committed-0"))],
    );
    log.append_and_commit(&mut txn_batch(9, 0, &[("a", Some("aborted"))]), 0)
        .expect("append");
    log.append_and_commit(&mut marker(9, false), 0)
        .expect("abort");
    log.append_and_commit(&mut txn_batch(9, 1, &[("b", Some("committed-1"))]), 0)
        .expect("append");
    log.append_and_commit(&mut marker(9, true), 0)
        .expect("commit");
    append(&mut log, Compression::None, NOW, &[("b", Some("plain"))]);
    // An open transaction of producer 11: nothing from its first batch on is cleaned.
    fill_keys(&mut log, Compression::None, 3, 3);
    let open_at = log.log_end_offset();
    log.append_and_commit(&mut txn_batch(11, 0, &[("a", Some("pending"))]), 0)
        .expect("append");
    fill_keys(&mut log, Compression::None, 3, 6);
    let controls_before = count_control_batches(&log);
    let s = clean(&mut log, NOW + 10).expect("clean");
    assert!(s.end_offset <= open_at, "{} > {open_at}", s.end_offset);
    let recs = read_records(&log);
    let a: Vec<_> = recs.iter().filter(|r| r.1 == "a").collect();
    assert!(
        a.iter().any(|r| r.2.as_deref() == Some("committed-0")),
        "{a:?}"
    );
    assert!(a.iter().any(|r| r.2.as_deref() == Some("pending")));
    assert!(!recs.iter().any(|r| r.2.as_deref() == Some("committed-1")));
    assert_eq!(count_control_batches(&log), controls_before);
}

fn count_control_batches(log: &Log) -> usize {
    let mut n = 0;
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, usize::MAX, true).expect("read");
        let Some(region) = r.region else { break };
        for b in
            RecordBatch::split(Bytes::from(region.read_to_vec().expect("bytes"))).expect("split")
        {
            n += usize::from(b.is_control());
            offset = b.next_offset();
        }
    }
    n
}

#[test]
fn commit_is_discarded_when_the_log_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = compact_cfg(300);
    cfg.cleanup_delete = true;
    cfg.retention_ms = -1;
    let mut log = open(dir.path(), cfg, true);
    fill_keys(&mut log, Compression::None, 4, 6);
    let before = read_records(&log);
    let plan = log.prepare_clean(NOW + 10).expect("plan");
    let out = plan.execute(&ProtocolCodec, &mut |_| {}).expect("execute");
    assert!(!names(dir.path(), ".log.cleaned").is_empty());
    // Meanwhile DeleteRecords + retention drop the first segment.
    let second = log_segment_bases(dir.path())[1];
    log.delete_records(second).expect("delete records");
    log.delete_old_segments(NOW).expect("retention");
    let s = log.commit_clean(out).expect("commit");
    assert!(!s.committed);
    assert!(names(dir.path(), ".cleaned").is_empty());
    let now: Vec<_> = before.into_iter().filter(|r| r.0 >= second).collect();
    assert_eq!(read_records(&log), now);
    // The next attempt works.
    assert!(clean(&mut log, NOW + 20).expect("plan").committed);
}

#[test]
fn old_regions_stay_readable_after_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_cfg(100_000), true);
    fill_keys(&mut log, Compression::None, 3, 5);
    append(&mut log, Compression::None, NOW, &[("x", Some("x"))]);
    log.roll_if_due(i64::MAX).expect("roll");
    append(&mut log, Compression::None, NOW, &[("x", Some("y"))]);
    let region = log
        .read(0, usize::MAX, true)
        .expect("read")
        .region
        .expect("region");
    let old = region.read_to_vec().expect("bytes");
    assert!(clean(&mut log, NOW + 10).expect("clean").committed);
    assert_eq!(region.read_to_vec().expect("still readable"), old);
    let new = log
        .read(0, usize::MAX, true)
        .expect("read")
        .region
        .expect("region");
    assert!(new.len < region.len);
}

// ---------------------------------------------------------------- crash safety

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

fn rename(dir: &Path, from: &str, to: &str) {
    std::fs::rename(dir.join(from), dir.join(to)).expect("rename");
}

fn remove(dir: &Path, name: &str) {
    std::fs::remove_file(dir.join(name)).expect("remove");
}

fn seg(base: i64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

#[test]
fn a_crash_at_any_step_of_the_swap_loses_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let live = root.path().join("live");
    let cfg = compact_cfg(400);
    let mut log = open(&live, cfg.clone(), true);
    fill_keys(&mut log, Compression::Zstd, 4, 8);
    append(&mut log, Compression::None, NOW, &[("k0", None)]);
    fill_keys(&mut log, Compression::None, 2, 3);
    let before = read_records(&log);
    let plan = log.prepare_clean(NOW + 10).expect("plan");
    let bases = plan.segment_bases();
    assert!(bases.len() >= 3);
    let out = plan.execute(&ProtocolCodec, &mut |_| {}).expect("execute");
    log.flush().expect("flush");
    // The state on disk right after execute (before commit).
    let snapshot = root.path().join("executed");
    copy_dir(&live, &snapshot);
    assert!(log.commit_clean(out).expect("commit").committed);
    let after = read_records(&log);
    check_compacted(&log, &before);
    drop(log);
    let b0 = bases[0];
    let b1 = bases[1];
    type Step = fn(&Path, i64, i64);
    let scenarios: Vec<(&str, Step, bool)> = vec![
        ("cleaned files only", |_, _, _| {}, false),
        (
            "first swap file renamed",
            |d, b0, _| rename(d, &seg(b0, "log.cleaned"), &seg(b0, "log.swap")),
            true,
        ),
        (
            "old indexes removed",
            |d, b0, _| {
                rename(d, &seg(b0, "log.cleaned"), &seg(b0, "log.swap"));
                remove(d, &seg(b0, "index"));
                remove(d, &seg(b0, "timeindex"));
            },
            true,
        ),
        (
            "log replaced, indexes not yet",
            |d, b0, _| {
                remove(d, &seg(b0, "index"));
                remove(d, &seg(b0, "timeindex"));
                rename(d, &seg(b0, "log.cleaned"), &seg(b0, "log"));
            },
            true,
        ),
        (
            "first segment swapped, second not started",
            |d, b0, _| {
                rename(d, &seg(b0, "log.cleaned"), &seg(b0, "log"));
                rename(d, &seg(b0, "index.cleaned"), &seg(b0, "index"));
                rename(d, &seg(b0, "timeindex.cleaned"), &seg(b0, "timeindex"));
            },
            true,
        ),
        (
            "second segment mid-swap",
            |d, b0, b1| {
                rename(d, &seg(b0, "log.cleaned"), &seg(b0, "log"));
                rename(d, &seg(b0, "index.cleaned"), &seg(b0, "index"));
                rename(d, &seg(b0, "timeindex.cleaned"), &seg(b0, "timeindex"));
                rename(d, &seg(b1, "log.cleaned"), &seg(b1, "log.swap"));
            },
            true,
        ),
    ];
    for (i, (name, step, partial)) in scenarios.into_iter().enumerate() {
        let d = root.path().join(format!("crash{i}"));
        copy_dir(&snapshot, &d);
        // Only the segments this scenario touches may be rewritten; the others must keep
        // their old content, so every scenario leaves a valid, loss-free log.
        step(&d, b0, b1);
        let log = open(&d, cfg.clone(), false);
        let recs = read_records(&log);
        assert!(names(&d, ".cleaned").is_empty(), "{name}");
        assert!(names(&d, ".swap").is_empty(), "{name}");
        assert_eq!(latest(&recs), latest(&before), "{name}: latest values");
        check_compacted(&log, &before);
        if partial {
            assert!(
                recs.len() < before.len(),
                "{name}: part of the cleaning is in"
            );
            assert!(recs.len() >= after.len(), "{name}");
        } else {
            assert_eq!(recs, before, "{name}");
        }
        assert_eq!(
            log.log_end_offset(),
            before.last().map_or(0, |r| r.0 + 1),
            "{name}"
        );
    }
}

#[test]
fn codec_rejects_nothing_valid_and_storage_survives_codec_errors() {
    // A codec that always fails: execute errors out and leaves no `.cleaned` files.
    struct Broken;
    impl RecordCodec for Broken {
        fn records(&self, _: &[u8]) -> Result<Vec<gregor_storage::RecordMeta>, StorageError> {
            Err(StorageError::CorruptBatch("nope".into()))
        }
        fn rebuild(
            &self,
            _: &[u8],
            _: &dyn Fn(i64) -> bool,
            _: Option<i64>,
        ) -> Result<Option<Vec<u8>>, StorageError> {
            Err(StorageError::CorruptBatch("nope".into()))
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_cfg(300), true);
    fill_keys(&mut log, Compression::None, 3, 6);
    let before = read_records(&log);
    let plan = log.prepare_clean(NOW + 10).expect("plan");
    assert!(plan.execute(&Broken, &mut |_| {}).is_err());
    assert!(names(dir.path(), ".cleaned").is_empty());
    assert_eq!(read_records(&log), before);
}

#[test]
fn compaction_keeps_aborted_transactions_and_stops_at_the_lso() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_cfg(400), true);
    append(&mut log, Compression::None, NOW, &[("a", Some("plain-0"))]);
    let aborted_at = log
        .append_and_commit(&mut txn_batch(9, 0, &[("a", Some("aborted"))]), 0)
        .expect("append")
        .base_offset;
    let abort = log
        .append_control_and_commit(9, 0, false, 0, 0, NOW)
        .expect("abort")
        .base_offset;
    log.append_and_commit(&mut txn_batch(9, 1, &[("c", Some("committed"))]), 0)
        .expect("append");
    log.append_control_and_commit(9, 0, true, 0, 0, NOW)
        .expect("commit");
    fill_keys(&mut log, Compression::None, 3, 4);
    // Producer 11's transaction stays open: the LSO, and the cleaner, stop there.
    let open_at = log
        .append_and_commit(&mut txn_batch(11, 0, &[("a", Some("pending"))]), 0)
        .expect("append")
        .base_offset;
    fill_keys(&mut log, Compression::None, 3, 4);
    assert_eq!(log.last_stable_offset(), open_at);
    let txn_index_before = names(dir.path(), ".txnindex");
    assert_eq!(txn_index_before.len(), 1);
    let txn_index_bytes = std::fs::read(dir.path().join(&txn_index_before[0])).expect("read");
    assert_eq!(txn_index_bytes.len(), 34);
    let s = clean(&mut log, NOW + 10).expect("clean");
    assert!(s.committed);
    assert!(s.end_offset <= open_at, "{} > {open_at}", s.end_offset);
    assert!(s.segments_rewritten > 0);
    // The aborted transaction is still reported for read_committed fetches, from its
    // unchanged `.txnindex`, also after a restart.
    assert_eq!(names(dir.path(), ".txnindex"), txn_index_before);
    assert_eq!(
        std::fs::read(dir.path().join(&txn_index_before[0])).expect("read"),
        txn_index_bytes
    );
    let want = vec![gregor_storage::AbortedTxn {
        producer_id: 9,
        first_offset: aborted_at,
    }];
    assert_eq!(
        log.aborted_transactions(log.log_start_offset(), abort + 1)
            .expect("aborted"),
        want
    );
    let recs = read_records(&log);
    assert!(recs.iter().any(|r| r.2.as_deref() == Some("committed")));
    assert!(recs.iter().any(|r| r.2.as_deref() == Some("pending")));
    log.close().expect("close");
    let log = open(dir.path(), compact_cfg(400), false);
    assert_eq!(log.last_stable_offset(), open_at);
    assert_eq!(
        log.aborted_transactions(log.log_start_offset(), abort + 1)
            .expect("aborted"),
        want
    );
}

#[test]
fn nothing_to_clean_behind_an_open_transaction() {
    // Kafka's firstUncleanableDirtyOffset includes the first unstable offset: with a
    // transaction open from the start, no segment is cleanable.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), compact_cfg(300), true);
    log.append_and_commit(&mut txn_batch(11, 0, &[("a", Some("pending"))]), 0)
        .expect("append");
    fill_keys(&mut log, Compression::None, 3, 6);
    assert!(log.segment_count() > 3);
    assert_eq!(log.last_stable_offset(), 0);
    assert!(log.prepare_clean(NOW + 10).is_none());
    log.append_control_and_commit(11, 0, true, 0, 0, NOW)
        .expect("commit");
    fill_keys(&mut log, Compression::None, 3, 1);
    let s = clean(&mut log, NOW + 10).expect("cleanable once committed");
    assert!(s.committed && s.records_removed > 0);
}
