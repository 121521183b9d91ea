//! Integration tests of the partition log.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gregor_storage::batch::{self, BatchHeader};
use gregor_storage::{Log, LogConfig, StorageError, SystemClock};

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

/// Builds a valid uncompressed RecordBatch v2 with `n` records whose timestamps are
/// `ts, ts+1, ...`, values of `value_len` bytes.
fn build_batch_with(n: i32, ts: i64, pid: i64, epoch: i16, seq: i32, value_len: usize) -> Vec<u8> {
    let mut records = Vec::new();
    for i in 0..n {
        let mut body = Vec::new();
        body.push(0u8); // attributes
        put_varint(&mut body, i64::from(i)); // timestamp delta
        put_varint(&mut body, i64::from(i)); // offset delta
        put_varint(&mut body, -1); // null key
        put_varint(&mut body, value_len as i64);
        body.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, value_len));
        put_varint(&mut body, 0); // headers
        put_varint(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&0i32.to_be_bytes()); // batch length (patched below)
    b.extend_from_slice(&(-1i32).to_be_bytes()); // leader epoch
    b.push(2); // magic
    b.extend_from_slice(&0u32.to_be_bytes()); // crc (patched below)
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(n - 1).to_be_bytes()); // last offset delta
    b.extend_from_slice(&ts.to_be_bytes());
    b.extend_from_slice(&(ts + i64::from(n) - 1).to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&n.to_be_bytes());
    assert_eq!(b.len(), batch::HEADER_LEN);
    b.extend_from_slice(&records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn build_batch(n: i32, ts: i64) -> Vec<u8> {
    build_batch_with(n, ts, -1, -1, -1, 10)
}

fn producer_batch(n: i32, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    build_batch_with(n, 1000, pid, epoch, seq, 10)
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1000,
        index_interval_bytes: 200,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, config: LogConfig, clean: bool) -> (Log, gregor_storage::RecoveryReport) {
    Log::open(dir, config, clean, Arc::new(SystemClock)).expect("open log")
}

fn read_all(log: &Log, offset: i64) -> Vec<u8> {
    let r = log.read(offset, usize::MAX, true).expect("read");
    r.region
        .map(|r| r.read_to_vec().expect("read region"))
        .unwrap_or_default()
}

/// Splits a region into batches (headers parsed).
fn split(bytes: &[u8]) -> Vec<(BatchHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).expect("header");
        let end = pos + h.total_size();
        batch::verify_crc(&bytes[pos..end]).expect("crc");
        out.push((h, bytes[pos..end].to_vec()));
        pos = end;
    }
    out
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

/// Appends `count` batches of `n` records (timestamps 1000, 1010, ...) and returns
/// the appended (patched) bytes.
fn fill(log: &mut Log, count: usize, n: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..count {
        let mut b = build_batch(n, 1000 + 10 * i as i64);
        log.append(&mut b, 3).expect("append");
        out.push(b);
    }
    out
}

#[test]
fn empty_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("topic-0");
    let (log, report) = open(&p, LogConfig::default(), false);
    assert_eq!(report, gregor_storage::RecoveryReport::default());
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.high_watermark(), 0);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.dir(), p.as_path());
    assert!(log.read(0, 1000, true).expect("read").region.is_none());
    assert!(log.find_batch_by_timestamp(0).expect("ts").is_none());
    assert!(log.max_timestamp_batch().expect("max").is_none());
    assert!(p.join("00000000000000000000.log").exists());
    assert!(p.join("00000000000000000000.index").exists());
    assert!(p.join("00000000000000000000.timeindex").exists());
}

#[test]
fn append_read_roundtrip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let mut expected = Vec::new();
    let mut next = 0;
    for (i, n) in [3, 1, 5].into_iter().enumerate() {
        let original = build_batch(n, 100 * i as i64);
        let mut b = original.clone();
        let info = log.append(&mut b, 7).expect("append");
        assert_eq!(info.base_offset, next);
        assert_eq!(info.last_offset, next + i64::from(n) - 1);
        assert_eq!(info.max_timestamp, 100 * i as i64 + i64::from(n) - 1);
        assert_eq!(info.log_start_offset, 0);
        assert!(!info.duplicate);
        // Only the base offset and leader epoch differ.
        assert_eq!(b[..8], next.to_be_bytes());
        assert_eq!(b[12..16], 7i32.to_be_bytes());
        assert_eq!(b[8..12], original[8..12]);
        assert_eq!(b[16..], original[16..]);
        batch::verify_crc(&b).expect("crc still valid");
        next += i64::from(n);
        expected.extend_from_slice(&b);
    }
    assert_eq!(log.log_end_offset(), 9);
    assert_eq!(log.size_bytes(), expected.len() as u64);
    log.maybe_increment_high_watermark(log.log_end_offset());
    let r = log.read(0, usize::MAX, false).expect("read");
    assert_eq!(r.high_watermark, 9);
    assert_eq!(r.log_end_offset, 9);
    assert_eq!(r.log_start_offset, 0);
    let region = r.region.expect("region");
    assert_eq!(region.position, 0);
    assert_eq!(region.read_to_vec().expect("bytes"), expected);
    let batches = split(&expected);
    assert_eq!(
        batches
            .iter()
            .map(|(h, _)| h.base_offset)
            .collect::<Vec<_>>(),
        vec![0, 3, 4]
    );
}

#[test]
fn read_from_middle_of_batch_returns_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let batches = fill(&mut log, 3, 5);
    for offset in 0..15 {
        let got = read_all(&log, offset);
        let first = (offset / 5) as usize;
        let want: Vec<u8> = batches[first..].concat();
        assert_eq!(got, want, "offset {offset}");
    }
    assert!(log.read(15, 100, true).expect("read").region.is_none());
}

#[test]
fn max_bytes_and_min_one_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let batches = fill(&mut log, 4, 2);
    let size = batches[0].len();
    // Exactly two batches fit.
    let r = log.read(0, 2 * size + size / 2, false).expect("read");
    assert_eq!(r.region.expect("region").len, 2 * size as u64);
    // First batch larger than max_bytes.
    let r = log.read(2, size - 1, false).expect("read");
    assert!(r.region.is_none());
    let r = log.read(2, size - 1, true).expect("read");
    let region = r.region.expect("region");
    assert_eq!(region.read_to_vec().expect("bytes"), batches[1]);
    // Zero max bytes.
    assert!(log.read(0, 0, false).expect("read").region.is_none());
}

#[test]
fn offset_out_of_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    fill(&mut log, 2, 2);
    for bad in [-1, 5, 100] {
        match log.read(bad, 1000, true) {
            Err(StorageError::OffsetOutOfRange {
                requested,
                log_start,
                log_end,
            }) => {
                assert_eq!((requested, log_start, log_end), (bad, 0, 4));
            }
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    }
    assert!(log.read(4, 1000, true).expect("read").region.is_none());
}

#[test]
fn invalid_batches_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let good = build_batch(2, 0);
    // Truncated.
    let mut b = good[..good.len() - 1].to_vec();
    assert!(matches!(
        log.append(&mut b, 0),
        Err(StorageError::CorruptBatch(_))
    ));
    // Too short for a header.
    let mut b = good[..30].to_vec();
    assert!(matches!(
        log.append(&mut b, 0),
        Err(StorageError::CorruptBatch(_))
    ));
    // Bad magic.
    let mut b = good.clone();
    b[16] = 1;
    assert!(matches!(
        log.append(&mut b, 0),
        Err(StorageError::CorruptBatch(_))
    ));
    // recordsCount mismatch.
    let mut b = good.clone();
    b[57..61].copy_from_slice(&3i32.to_be_bytes());
    assert!(matches!(
        log.append(&mut b, 0),
        Err(StorageError::CorruptBatch(_))
    ));
    // Negative lastOffsetDelta.
    let mut b = good.clone();
    b[23..27].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(matches!(
        log.append(&mut b, 0),
        Err(StorageError::CorruptBatch(_))
    ));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn segment_roll_and_reads_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), small_config(), true);
    let batches = fill(&mut log, 30, 3);
    let size = batches[0].len() as u64;
    assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
    assert_eq!(log.size_bytes(), size * 30);
    let logs = files_with_ext(dir.path(), "log");
    assert_eq!(logs.len(), log.segment_count());
    for f in &logs {
        let len = std::fs::metadata(f).expect("meta").len();
        assert!(len <= 1000, "{} has {len} bytes", f.display());
    }
    // Every offset reads the batch containing it, limited to one segment file.
    for offset in 0..90 {
        let got = read_all(&log, offset);
        let parsed = split(&got);
        assert!(!parsed.is_empty());
        assert_eq!(parsed[0].0.base_offset, offset / 3 * 3, "offset {offset}");
        assert_eq!(parsed[0].1, batches[(offset / 3) as usize]);
    }
    // A read at a segment boundary returns data from the next segment.
    let second_base: i64 = logs[1]
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("base");
    let got = read_all(&log, second_base);
    assert_eq!(split(&got)[0].0.base_offset, second_base);
    // Snapshots: at most 2 kept.
    assert!(files_with_ext(dir.path(), "snapshot").len() <= 2);

    // A batch larger than segment_bytes goes alone into a fresh segment.
    let before = log.segment_count();
    let mut big = build_batch_with(10, 5000, -1, -1, -1, 300);
    assert!(big.len() > 1000);
    let info = log.append(&mut big, 3).expect("append big");
    assert_eq!(info.base_offset, 90);
    assert_eq!(log.segment_count(), before + 1);
    fill(&mut log, 1, 1);
    assert_eq!(log.segment_count(), before + 2);
    assert_eq!(read_all(&log, 95)[..big.len()], big[..]);
}

#[test]
fn roll_when_index_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 1,
        max_index_bytes: 24, // 3 offset entries or 2 time entries
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config.clone(), true);
    let batches = fill(&mut log, 10, 1);
    assert!(log.segment_count() >= 3);
    for f in files_with_ext(dir.path(), "index") {
        assert!(std::fs::metadata(&f).expect("meta").len() <= 24);
    }
    for f in files_with_ext(dir.path(), "timeindex") {
        assert!(std::fs::metadata(&f).expect("meta").len() <= 24);
    }
    for (i, b) in batches.iter().enumerate() {
        let got = read_all(&log, i as i64);
        assert_eq!(&split(&got)[0].1, b);
    }
    log.close().expect("close");
    let (log, report) = open(dir.path(), config, true);
    assert_eq!(report.rebuilt_indexes, 0, "{report:?}");
    assert_eq!(log.log_end_offset(), 10);
}

#[test]
fn reopen_after_clean_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), small_config(), true);
    let batches = fill(&mut log, 20, 2);
    let segments = log.segment_count();
    let size = log.size_bytes();
    log.close().expect("close");
    let indexes: Vec<Vec<u8>> = files_with_ext(dir.path(), "index")
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();

    let (mut log, report) = open(dir.path(), small_config(), true);
    assert_eq!(report, gregor_storage::RecoveryReport::default());
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.size_bytes(), size);
    assert_eq!(read_all(&log, 0)[..batches[0].len()], batches[0][..]);
    assert_eq!(read_all(&log, 39), batches[19]);
    let mut b = build_batch(2, 9999);
    assert_eq!(log.append(&mut b, 4).expect("append").base_offset, 40);
    log.close().expect("close");
    // Unchanged sealed indexes.
    let after: Vec<Vec<u8>> = files_with_ext(dir.path(), "index")
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(after[..indexes.len() - 1], indexes[..indexes.len() - 1]);
    let (log, _) = open(dir.path(), small_config(), false);
    assert_eq!(log.log_end_offset(), 42);
}

fn active_log_file(dir: &Path) -> PathBuf {
    files_with_ext(dir, "log").pop().expect("a segment")
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).expect("open");
    f.write_all(bytes).expect("write");
}

#[test]
fn recovery_truncates_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config.clone(), true);
    let batches = fill(&mut log, 10, 4);
    let good_size = log.size_bytes();
    drop(log); // simulate kill -9: no close
    let path = active_log_file(dir.path());
    let half = build_batch(4, 0);
    append_raw(&path, &half[..half.len() / 2]);
    let index_before = std::fs::read(path.with_extension("index")).expect("index");

    let (mut log, report) = open(dir.path(), config.clone(), false);
    assert_eq!(report.truncated_bytes, (half.len() / 2) as u64);
    assert_eq!(report.truncated_at_offset, Some(40));
    assert_eq!(report.recovered_segments, 1);
    assert_eq!(report.rebuilt_indexes, 1);
    assert!(report.reason.is_some());
    assert_eq!(log.log_end_offset(), 40);
    assert_eq!(log.size_bytes(), good_size);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), good_size);
    // Rebuilt index is identical to the one written by appends.
    assert_eq!(
        std::fs::read(path.with_extension("index")).expect("index"),
        index_before
    );
    assert_eq!(read_all(&log, 0), batches.concat());
    let mut b = build_batch(1, 5);
    assert_eq!(log.append(&mut b, 0).expect("append").base_offset, 40);
    assert_eq!(log.log_end_offset(), 41);
    log.close().expect("close");

    // Garbage tail.
    let (log, _) = open(dir.path(), config.clone(), true);
    let size = log.size_bytes();
    drop(log);
    append_raw(&path, &[0xAB; 1000]);
    let (log, report) = open(dir.path(), config.clone(), false);
    assert_eq!(report.truncated_bytes, 1000);
    assert_eq!(log.log_end_offset(), 41);
    assert_eq!(log.size_bytes(), size);
    drop(log);

    // Preallocated zero region.
    append_raw(&path, &[0; 4096]);
    let (log, report) = open(dir.path(), config.clone(), false);
    assert_eq!(report.truncated_bytes, 4096);
    assert_eq!(log.log_end_offset(), 41);
    drop(log);

    // A few trailing bytes, shorter than a header.
    append_raw(&path, &[1, 2, 3]);
    let (log, report) = open(dir.path(), config, false);
    assert_eq!(report.truncated_bytes, 3);
    assert_eq!(log.log_end_offset(), 41);
}

#[test]
fn recovery_truncates_at_bad_crc_and_non_monotonic_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let batches = fill(&mut log, 5, 2);
    drop(log);
    let path = active_log_file(dir.path());
    let size = batches[0].len();
    // Flip a byte inside the records of the 4th batch.
    let mut data = std::fs::read(&path).expect("read");
    data[3 * size + 70] ^= 0xFF;
    std::fs::write(&path, &data).expect("write");
    let (log, report) = open(dir.path(), LogConfig::default(), false);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(report.truncated_bytes, 2 * size as u64);
    assert_eq!(report.truncated_at_offset, Some(6));
    drop(log);

    // A valid batch whose base offset goes backwards.
    let mut dup = batches[0].clone();
    batch::set_base_offset(&mut dup, 2);
    append_raw(&path, &dup);
    let (log, report) = open(dir.path(), LogConfig::default(), false);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(report.truncated_bytes, size as u64);
}

#[test]
fn clean_open_with_garbage_does_not_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("00000000000000000000.log"), [0x55u8; 777]).expect("write");
    std::fs::write(dir.path().join("00000000000000000000.index"), [0x12u8; 13]).expect("write");
    std::fs::write(
        dir.path().join("00000000000000000000.timeindex"),
        [0x34u8; 24],
    )
    .expect("write");
    std::fs::write(
        dir.path().join("00000000000000000000.snapshot"),
        [0x99u8; 40],
    )
    .expect("write");
    std::fs::write(dir.path().join("00000000000000000500.index"), [0u8; 8]).expect("write");
    std::fs::write(dir.path().join("junk.txt"), b"hello").expect("write");
    let (mut log, report) = open(dir.path(), LogConfig::default(), true);
    assert_eq!(report.truncated_bytes, 777);
    assert_eq!(log.log_end_offset(), 0);
    assert!(!dir.path().join("00000000000000000500.index").exists());
    let mut b = build_batch(2, 0);
    assert_eq!(log.append(&mut b, 0).expect("append").base_offset, 0);
}

#[test]
fn missing_index_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), small_config(), true);
    let batches = fill(&mut log, 30, 2);
    log.close().expect("close");
    let index_files = files_with_ext(dir.path(), "index");
    let time_files = files_with_ext(dir.path(), "timeindex");
    let originals: Vec<Vec<u8>> = index_files
        .iter()
        .chain(time_files.iter())
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert!(
        originals.iter().any(|o| !o.is_empty()),
        "indexes have entries"
    );
    std::fs::remove_file(&index_files[0]).expect("remove");
    std::fs::remove_file(&time_files[1]).expect("remove");

    let (log, report) = open(dir.path(), small_config(), true);
    assert_eq!(report.rebuilt_indexes, 2, "{report:?}");
    assert_eq!(report.truncated_bytes, 0);
    let rebuilt: Vec<Vec<u8>> = index_files
        .iter()
        .chain(time_files.iter())
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(rebuilt, originals);
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(&split(&read_all(&log, 2 * i as i64))[0].1, b);
    }
}

#[test]
fn corrupt_index_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 100,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config.clone(), true);
    let batches = fill(&mut log, 20, 2);
    log.close().expect("close");
    let index = active_log_file(dir.path()).with_extension("index");
    let original = std::fs::read(&index).expect("read");
    assert!(original.len() >= 16);

    // Length not a multiple of 8.
    std::fs::write(&index, &original[..original.len() - 3]).expect("write");
    let (log, report) = open(dir.path(), config.clone(), true);
    assert_eq!(report.rebuilt_indexes, 1);
    drop(log);
    assert_eq!(std::fs::read(&index).expect("read"), original);

    // Position pointing into the middle of a batch.
    let mut bad = original.clone();
    let last = bad.len() - 1;
    bad[last] = bad[last].wrapping_add(1);
    std::fs::write(&index, &bad).expect("write");
    let (log, report) = open(dir.path(), config.clone(), true);
    assert_eq!(report.rebuilt_indexes, 1, "{report:?}");
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(&split(&read_all(&log, 2 * i as i64 + 1))[0].1, b);
    }
    drop(log);
    assert_eq!(std::fs::read(&index).expect("read"), original);

    // Offsets not increasing.
    let mut bad = original.clone();
    bad[8..12].copy_from_slice(&0u32.to_be_bytes());
    std::fs::write(&index, &bad).expect("write");
    let (_log, report) = open(dir.path(), config.clone(), true);
    assert_eq!(report.rebuilt_indexes, 1);
    assert_eq!(std::fs::read(&index).expect("read"), original);

    // Garbage time index.
    let ti = index.with_extension("timeindex");
    std::fs::write(&ti, [0xFFu8; 36]).expect("write");
    let (log, report) = open(dir.path(), config, true);
    assert_eq!(report.rebuilt_indexes, 1);
    let found = log
        .find_batch_by_timestamp(1000 + 10 * 7)
        .expect("ts")
        .expect("some");
    assert_eq!(found.base_offset, 14);
}

#[test]
fn find_batch_by_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), small_config(), true);
    // Batch i: 3 records, timestamps 1000+10i .. 1000+10i+2.
    let batches = fill(&mut log, 40, 3);
    assert!(log.segment_count() > 2);
    let check = |log: &Log| {
        for i in 0..40i64 {
            for delta in 0..10 {
                let ts = 1000 + 10 * i + delta;
                let found = log.find_batch_by_timestamp(ts).expect("lookup");
                if delta <= 2 {
                    let found = found.expect("found");
                    assert_eq!(found.base_offset, 3 * i, "ts {ts}");
                    assert_eq!(found.bytes, batches[i as usize]);
                } else if i < 39 {
                    let found = found.expect("found");
                    assert_eq!(found.base_offset, 3 * (i + 1), "ts {ts}");
                } else {
                    assert!(found.is_none());
                }
            }
        }
        let first = log
            .find_batch_by_timestamp(i64::MIN)
            .expect("lookup")
            .expect("found");
        assert_eq!(first.base_offset, 0);
        assert_eq!(first.last_offset, 2);
        assert_eq!(first.max_timestamp, 1002);
    };
    check(&log);
    log.close().expect("close");
    let (log, _) = open(dir.path(), small_config(), true);
    check(&log);
    drop(log);
    let (log, _) = open(dir.path(), small_config(), false);
    check(&log);
}

#[test]
fn timestamps_out_of_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 1,
        ..small_config()
    };
    let (mut log, _) = open(dir.path(), config, true);
    for ts in [50, 10, 70, 20, 70, 90, 30, 90, 5] {
        let mut b = build_batch(1, ts);
        log.append(&mut b, 0).expect("append");
    }
    let first_ge = |ts: i64| {
        log.find_batch_by_timestamp(ts)
            .expect("lookup")
            .map(|b| b.base_offset)
    };
    assert_eq!(first_ge(0), Some(0));
    assert_eq!(first_ge(50), Some(0));
    assert_eq!(first_ge(51), Some(2));
    assert_eq!(first_ge(71), Some(5));
    assert_eq!(first_ge(91), None);
    let max = log.max_timestamp_batch().expect("max").expect("some");
    assert_eq!((max.base_offset, max.max_timestamp), (5, 90));
}

#[test]
fn max_timestamp_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), small_config(), true);
    fill(&mut log, 10, 3); // max ts 1092 at offset 27
    let mut peak = build_batch(2, 50_000);
    log.append(&mut peak, 0).expect("append"); // offsets 30-31
    fill(&mut log, 20, 3);
    let mut same = build_batch(2, 50_000);
    log.append(&mut same, 0).expect("append"); // same max later: not chosen
    fill(&mut log, 5, 3);
    assert!(log.segment_count() > 2);
    let check = |log: &Log| {
        let b = log.max_timestamp_batch().expect("max").expect("some");
        assert_eq!(b.base_offset, 30);
        assert_eq!(b.last_offset, 31);
        assert_eq!(b.max_timestamp, 50_001);
        assert_eq!(b.bytes, peak);
    };
    check(&log);
    log.close().expect("close");
    let (log, _) = open(dir.path(), small_config(), true);
    check(&log);
    drop(log);
    let (log, _) = open(dir.path(), small_config(), false);
    check(&log);
}

#[test]
fn idempotent_producer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let pid = 42;
    let mut first = producer_batch(3, pid, 0, 0);
    let info = log.append(&mut first.clone(), 0).expect("append");
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    fill(&mut log, 1, 2); // non-idempotent batch: offsets 3-4
    let info = log
        .append(&mut producer_batch(2, pid, 0, 3), 0)
        .expect("append");
    assert_eq!((info.base_offset, info.last_offset), (5, 6));

    // Duplicate of the first batch: original offsets, nothing appended.
    let size = log.size_bytes();
    let info = log.append(&mut first, 0).expect("duplicate");
    assert!(info.duplicate);
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 7);

    // Gap.
    match log.append(&mut producer_batch(1, pid, 0, 6), 0) {
        Err(StorageError::OutOfOrderSequence {
            producer_id,
            expected,
            received,
        }) => assert_eq!((producer_id, expected, received), (pid, 5, 6)),
        other => panic!("expected OutOfOrderSequence, got {other:?}"),
    }
    // Overlapping but not identical: out of order too.
    assert!(matches!(
        log.append(&mut producer_batch(2, pid, 0, 4), 0),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
    // New epoch must start at 0.
    assert!(matches!(
        log.append(&mut producer_batch(1, pid, 1, 5), 0),
        Err(StorageError::OutOfOrderSequence { expected: 0, .. })
    ));
    let info = log
        .append(&mut producer_batch(2, pid, 1, 0), 0)
        .expect("new epoch");
    assert_eq!(info.base_offset, 7);
    // Old epoch.
    match log.append(&mut producer_batch(1, pid, 0, 5), 0) {
        Err(StorageError::InvalidProducerEpoch {
            producer_id,
            current,
            received,
        }) => assert_eq!((producer_id, current, received), (pid, 1, 0)),
        other => panic!("expected InvalidProducerEpoch, got {other:?}"),
    }
    // Unknown producer: any sequence accepted.
    let info = log
        .append(&mut producer_batch(1, 77, 3, 1234), 0)
        .expect("unknown");
    assert_eq!(info.base_offset, 9);
    let e = log.producer_entry(77).expect("entry");
    assert_eq!((e.epoch, e.last_sequence, e.last_offset), (3, 1234, 9));
    let e = log.producer_entry(pid).expect("entry");
    assert_eq!((e.epoch, e.last_sequence, e.last_offset), (1, 1, 8));
    assert!(log.producer_entry(-1).is_none());
    assert!(log.producer_entry(5).is_none());
}

#[test]
fn duplicate_detection_covers_last_five_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    let pid = 1;
    let batches: Vec<Vec<u8>> = (0..6).map(|i| producer_batch(2, pid, 0, 2 * i)).collect();
    for b in &batches {
        log.append(&mut b.clone(), 0).expect("append");
    }
    for (i, b) in batches.iter().enumerate().skip(1) {
        let info = log.append(&mut b.clone(), 0).expect("dup");
        assert!(info.duplicate);
        assert_eq!(info.base_offset, 2 * i as i64);
    }
    // The oldest one fell out of the window: it is out of order now.
    assert!(matches!(
        log.append(&mut batches[0].clone(), 0),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn sequence_wraps_around() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    log.append(&mut producer_batch(2, 9, 0, i32::MAX - 1), 0)
        .expect("append");
    assert_eq!(
        log.producer_entry(9).expect("entry").last_sequence,
        i32::MAX
    );
    log.append(&mut producer_batch(3, 9, 0, 0), 0)
        .expect("wrapped");
    assert_eq!(log.producer_entry(9).expect("entry").last_sequence, 2);
    // A batch that itself wraps.
    log.append(&mut producer_batch(1, 10, 0, i32::MAX - 1), 0)
        .expect("append");
    log.append(&mut producer_batch(3, 10, 0, i32::MAX), 0)
        .expect("append");
    assert_eq!(log.producer_entry(10).expect("entry").last_sequence, 1);
    log.append(&mut producer_batch(1, 10, 0, 2), 0)
        .expect("append");
}

fn producer_state_checks(
    log: &mut Log,
    pid: i64,
    expected_last_seq: i32,
    expected_last_offset: i64,
) {
    let e = log.producer_entry(pid).expect("entry");
    assert_eq!(e.epoch, 2);
    assert_eq!(e.last_sequence, expected_last_seq);
    assert_eq!(e.last_offset, expected_last_offset);
    // Duplicate of the last batch is still detected.
    let info = log
        .append(&mut producer_batch(2, pid, 2, expected_last_seq - 1), 0)
        .expect("dup");
    assert!(info.duplicate);
    assert_eq!(info.last_offset, expected_last_offset);
    assert!(matches!(
        log.append(&mut producer_batch(1, pid, 2, expected_last_seq + 2), 0),
        Err(StorageError::OutOfOrderSequence { .. })
    ));
    assert!(matches!(
        log.append(&mut producer_batch(1, pid, 1, 0), 0),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn producer_state_survives_clean_and_unclean_restart() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = open(dir.path(), small_config(), true);
        let pid = 5;
        let mut seq = 0;
        for i in 0..25 {
            log.append(&mut producer_batch(2, pid, 2, seq), 0)
                .expect("append");
            seq += 2;
            if i % 3 == 0 {
                fill(&mut log, 1, 1);
            }
        }
        assert!(log.segment_count() > 2);
        let last_offset = log.log_end_offset() - 1 - 1; // one fill after i == 24
        let last_seq = seq - 1;
        if clean {
            log.close().expect("close");
        } else {
            drop(log);
        }
        let snapshots = files_with_ext(dir.path(), "snapshot");
        assert!(
            !snapshots.is_empty() && snapshots.len() <= 2,
            "{snapshots:?}"
        );
        let (mut log, _) = open(dir.path(), small_config(), clean);
        producer_state_checks(&mut log, pid, last_seq, last_offset);

        // Without any snapshot the whole log is replayed.
        drop(log);
        for s in files_with_ext(dir.path(), "snapshot") {
            std::fs::remove_file(s).expect("remove");
        }
        let (mut log, _) = open(dir.path(), small_config(), false);
        producer_state_checks(&mut log, pid, last_seq, last_offset);
    }
}

#[test]
fn snapshot_beyond_truncated_log_is_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), LogConfig::default(), true);
    log.append(&mut producer_batch(2, 8, 0, 0), 0)
        .expect("append");
    log.append(&mut producer_batch(2, 8, 0, 2), 0)
        .expect("append");
    log.close().expect("close"); // snapshot at offset 4
                                 // Tear the last batch.
    let path = active_log_file(dir.path());
    let len = std::fs::metadata(&path).expect("meta").len();
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.set_len(len - 5).expect("truncate");
    drop(f);
    let (mut log, report) = open(dir.path(), LogConfig::default(), false);
    assert_eq!(report.truncated_at_offset, Some(2));
    assert_eq!(log.log_end_offset(), 2);
    let e = log.producer_entry(8).expect("entry");
    assert_eq!((e.last_sequence, e.last_offset), (1, 1));
    // The producer retries the lost batch: accepted, not a duplicate.
    let info = log
        .append(&mut producer_batch(2, 8, 0, 2), 0)
        .expect("retry");
    assert!(!info.duplicate);
    assert_eq!(info.base_offset, 2);
    assert!(files_with_ext(dir.path(), "snapshot").is_empty());
}

#[test]
fn flush_interval_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        flush_interval_messages: 10,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config, true);
    fill(&mut log, 2, 4);
    assert_eq!(log.unflushed_messages(), 8);
    fill(&mut log, 1, 4);
    assert_eq!(log.unflushed_messages(), 0, "flushed after 12 >= 10");
    fill(&mut log, 1, 3);
    assert_eq!(log.unflushed_messages(), 3);
    log.flush().expect("flush");
    assert_eq!(log.unflushed_messages(), 0);

    let dir2 = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir2.path(), LogConfig::default(), true);
    fill(&mut log, 100, 5);
    assert_eq!(log.unflushed_messages(), 500);
}

#[test]
fn delete_removes_directory_but_regions_stay_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("topic-3");
    let (mut log, _) = open(&p, LogConfig::default(), true);
    let batches = fill(&mut log, 3, 2);
    let region = log
        .read(0, usize::MAX, true)
        .expect("read")
        .region
        .expect("region");
    log.delete().expect("delete");
    assert!(!p.exists());
    assert_eq!(std::fs::read_dir(dir.path()).expect("read_dir").count(), 0);
    assert_eq!(region.read_to_vec().expect("bytes"), batches.concat());
}

#[test]
fn many_small_batches_with_sparse_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 4096,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config.clone(), true);
    let batches = fill(&mut log, 2000, 1);
    for offset in (0..2000).step_by(37) {
        let r = log.read(offset, 1, true).expect("read");
        let got = r.region.expect("region").read_to_vec().expect("bytes");
        assert_eq!(got, batches[offset as usize]);
    }
    log.close().expect("close");
    let (log, report) = open(dir.path(), config, false);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(log.log_end_offset(), 2000);
    assert_eq!(read_all(&log, 1999), batches[1999]);
}

#[test]
fn read_returns_maximal_whole_batch_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 256,
        ..LogConfig::default()
    };
    let (mut log, _) = open(dir.path(), config, true);
    let mut batches = Vec::new();
    for i in 0..300usize {
        let mut b = build_batch_with(2, i as i64, -1, -1, -1, (i * 37) % 200);
        log.append(&mut b, 0).expect("append");
        batches.push(b);
    }
    for start in [0usize, 1, 17, 150, 298, 299] {
        for max in [1usize, 100, 500, 1000, 4096, 10_000, 50_000, usize::MAX] {
            let r = log.read(2 * start as i64 + 1, max, false).expect("read");
            let mut expected = 0usize;
            for b in &batches[start..] {
                if expected + b.len() > max {
                    break;
                }
                expected += b.len();
            }
            let got = r.region.map_or(0, |r| r.len as usize);
            assert_eq!(got, expected, "start {start} max {max}");
            if expected > 0 {
                let bytes = log
                    .read(2 * start as i64, max, false)
                    .expect("read")
                    .region
                    .expect("region")
                    .read_to_vec()
                    .expect("bytes");
                let parsed = split(&bytes);
                assert_eq!(parsed[0].1, batches[start]);
            }
        }
    }
}

#[test]
fn random_corruption_never_panics() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let config = LogConfig {
        segment_bytes: 1500,
        index_interval_bytes: 150,
        ..LogConfig::default()
    };
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = open(dir.path(), config.clone(), true);
        for i in 0..30 {
            let mut b = build_batch_with(2, i, 3, 0, 2 * i as i32, 20);
            log.append(&mut b, 0).expect("append");
        }
        if round % 2 == 0 {
            log.close().expect("close");
        } else {
            drop(log);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for _ in 0..3 {
            let f = &files[(next() % files.len() as u64) as usize];
            let mut data = std::fs::read(f).expect("read");
            match next() % 3 {
                0 if !data.is_empty() => {
                    let at = (next() % data.len() as u64) as usize;
                    data[at] ^= (next() % 255 + 1) as u8;
                }
                1 => {
                    let cut = (next() % (data.len() as u64 + 1)) as usize;
                    data.truncate(cut);
                }
                _ => data.extend((0..next() % 100).map(|_| next() as u8)),
            }
            std::fs::write(f, &data).expect("write");
        }
        let clean = next() % 2 == 0;
        if let Ok((mut log, _)) =
            Log::open(dir.path(), config.clone(), clean, Arc::new(SystemClock))
        {
            let end = log.log_end_offset();
            let start = log.log_start_offset();
            for offset in (start..=end).take(200).chain([end]) {
                let _ = log.read(offset, 500, true);
            }
            let _ = log.find_batch_by_timestamp(10);
            let _ = log.max_timestamp_batch();
            let mut b = build_batch(1, 0);
            let _ = log.append(&mut b, 0);
            let _ = log.close();
        }
    }
}

#[test]
fn corrupt_sealed_segment_with_missing_index_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, _) = open(dir.path(), small_config(), true);
    let batches = fill(&mut log, 30, 2);
    log.close().expect("close");
    let first = files_with_ext(dir.path(), "log")[0].clone();
    let mut data = std::fs::read(&first).expect("read");
    let size = batches[0].len();
    data[2 * size + 65] ^= 1; // third batch
    std::fs::write(&first, &data).expect("write");
    std::fs::remove_file(first.with_extension("index")).expect("remove");
    let (log, report) = open(dir.path(), small_config(), true);
    assert_eq!(report.truncated_at_offset, Some(4));
    assert_eq!(log.log_end_offset(), 60);
    // Reading inside the lost range continues with the next segment.
    let got = read_all(&log, 4);
    let parsed = split(&got);
    assert!(parsed[0].0.base_offset > 4);
    assert_eq!(split(&read_all(&log, 0))[0].1, batches[0]);
}
