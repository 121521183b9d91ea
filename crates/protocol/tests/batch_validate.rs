//! RecordBatch v2: builder -> parse -> validate -> records roundtrips, error paths, split,
//! interop with the `kafka-protocol` crate's encoder/decoder, and no-panic fuzzing.

use bytes::{Bytes, BytesMut};
use gregor_protocol::compression::Compression;
use gregor_protocol::record_batch::BatchSummary;
use gregor_protocol::varint;
use gregor_protocol::{BatchError, ErrorCode, RecordBatch, RecordBatchBuilder};

const CAP: usize = 16 << 20;

fn sample(compression: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(compression, 1_700_000_000_000).producer(42, 3, 7);
    b.push(1_700_000_000_000, Some(b"k0"), Some(b"v0"), &[]);
    b.push(
        1_700_000_000_005,
        None,
        Some(b"value-with-null-key"),
        &[("h1", Some(b"x"))],
    );
    b.push(
        1_699_999_999_990,
        Some(b"k2"),
        None,
        &[("h-null", None), ("", Some(b""))],
    );
    b.push(1_700_000_000_003, Some(b""), Some(&[0u8; 1000]), &[]);
    b.build().unwrap()
}

/// Rewrite the CRC so that deliberate corruption reaches the record-level checks.
fn fix_crc(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[21..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Build an uncompressed batch from raw records bytes with the given header claims.
fn raw_batch(records: &[u8], count: i32, last_offset_delta: i32, attributes: i16) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&last_offset_delta.to_be_bytes());
    b.extend_from_slice(&100i64.to_be_bytes());
    b.extend_from_slice(&100i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(records);
    fix_crc(&mut b);
    Bytes::from(b)
}

/// One encoded record with the given offset delta and a 1-byte value.
fn raw_record(offset_delta: i32) -> Vec<u8> {
    let mut body = vec![0u8];
    varint::put_varlong(&mut body, 0);
    varint::put_varint(&mut body, offset_delta);
    varint::put_varint(&mut body, -1);
    varint::put_varint(&mut body, 1);
    body.push(b'v');
    varint::put_varint(&mut body, 0);
    let mut out = Vec::new();
    varint::put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(&body);
    out
}

#[test]
fn roundtrip_all_codecs() {
    for c in Compression::ALL {
        let bytes = sample(c);
        let batch = RecordBatch::parse(bytes.clone()).unwrap();
        assert_eq!(batch.magic(), 2);
        assert_eq!(batch.base_offset(), 0);
        assert_eq!(batch.partition_leader_epoch(), -1);
        assert_eq!(batch.batch_length() as usize + 12, bytes.len());
        assert_eq!(batch.compression().unwrap(), c, "{c}");
        assert_eq!(batch.attributes() & 7, c.id() as i16);
        assert!(!batch.is_transactional() && !batch.is_control() && !batch.is_log_append_time());
        assert_eq!(batch.record_count(), 4);
        assert_eq!(batch.last_offset_delta(), 3);
        assert_eq!(batch.last_offset(), 3);
        assert_eq!(batch.base_timestamp(), 1_700_000_000_000);
        assert_eq!(batch.max_timestamp(), 1_700_000_000_005);
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (42, 3, 7)
        );
        batch.verify_crc().unwrap();

        let summary = batch.validate(CAP).unwrap();
        let uncompressed_len = sample(Compression::None).len() - RecordBatch::HEADER_LEN;
        assert_eq!(
            summary,
            BatchSummary {
                record_count: 4,
                uncompressed_bytes: uncompressed_len,
                max_record_timestamp: 1_700_000_000_005,
                has_null_key: true,
            }
        );

        let recs = batch.records(CAP).unwrap();
        assert_eq!(recs.len(), 4);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset_delta, i as i32);
            assert_eq!(r.attributes, 0);
        }
        assert_eq!(recs[0].key.as_deref(), Some(&b"k0"[..]));
        assert_eq!(recs[0].value.as_deref(), Some(&b"v0"[..]));
        assert!(recs[0].headers.is_empty());
        assert_eq!(recs[1].key, None);
        assert_eq!(recs[1].timestamp(batch.base_timestamp()), 1_700_000_000_005);
        assert_eq!(recs[1].headers.len(), 1);
        assert_eq!(recs[1].headers[0].key, "h1");
        assert_eq!(recs[1].headers[0].value.as_deref(), Some(&b"x"[..]));
        assert_eq!(recs[2].value, None);
        assert_eq!(recs[2].timestamp_delta, -10);
        assert_eq!(recs[2].headers[0].key, "h-null");
        assert_eq!(recs[2].headers[0].value, None);
        assert_eq!(recs[2].headers[1].key, "");
        assert_eq!(recs[2].headers[1].value.as_deref(), Some(&b""[..]));
        assert_eq!(recs[3].key.as_deref(), Some(&b""[..]));
        assert_eq!(recs[3].value.as_deref(), Some(&[0u8; 1000][..]));
        assert_eq!(recs[3].offset(100), 103);
    }
}

#[test]
fn builder_flags_and_control() {
    let mut b = RecordBatchBuilder::new(Compression::None, 5)
        .producer(9, 1, 0)
        .transactional(true)
        .control(true);
    assert!(b.is_empty());
    // A COMMIT control record: key = version 0 + type 1, value = version 0 + coordinator epoch.
    b.push(5, Some(&[0, 0, 0, 1]), Some(&[0, 0, 0, 0, 0, 7]), &[]);
    assert_eq!(b.len(), 1);
    let batch = RecordBatch::parse(b.build().unwrap()).unwrap();
    assert!(batch.is_transactional());
    assert!(batch.is_control());
    assert!(batch.has_producer_id());
    batch.validate(CAP).unwrap();

    assert!(RecordBatchBuilder::new(Compression::Zstd, 0)
        .build()
        .is_err());
}

#[test]
fn with_assigned_rewrites_header() {
    let batch = RecordBatch::parse(sample(Compression::Lz4)).unwrap();
    let a = batch.with_assigned(1000, 7, None);
    assert_eq!(a.base_offset(), 1000);
    assert_eq!(a.last_offset(), 1003);
    assert_eq!(a.partition_leader_epoch(), 7);
    assert_eq!(a.crc(), batch.crc());
    a.validate(CAP).unwrap();
    let l = batch.with_assigned(5, 1, Some(123_456));
    assert!(l.is_log_append_time());
    assert_eq!(l.max_timestamp(), 123_456);
    assert_eq!(l.compression().unwrap(), Compression::Lz4);
    l.validate(CAP).unwrap();
    // original untouched
    assert_eq!(batch.base_offset(), 0);
}

#[test]
fn bad_crc_is_corrupt() {
    for c in Compression::ALL {
        let mut m = BytesMut::from(&sample(c)[..]);
        let last = m.len() - 1;
        m[last] ^= 0x55;
        let batch = RecordBatch::parse(m.freeze()).unwrap();
        let err = batch.validate(CAP).unwrap_err();
        assert!(matches!(err, BatchError::Corrupt(_)), "{c}: {err:?}");
        assert_eq!(err.error_code(), ErrorCode::CorruptMessage);
        assert!(batch.verify_crc().is_err());
        assert!(batch.records(CAP).is_err());
    }
    // Flipping a CRC byte itself.
    let mut m = BytesMut::from(&sample(Compression::None)[..]);
    m[18] ^= 1;
    assert!(matches!(
        RecordBatch::parse(m.freeze()).unwrap().validate(CAP),
        Err(BatchError::Corrupt(_))
    ));
}

#[test]
fn offset_deltas_count_and_trailing_bytes() {
    let r = |d| raw_record(d);
    let good: Vec<u8> = [r(0), r(1), r(2)].concat();
    let ok = RecordBatch::parse(raw_batch(&good, 3, 2, 0)).unwrap();
    assert_eq!(ok.validate(CAP).unwrap().record_count, 3);
    assert!(ok.validate(CAP).unwrap().has_null_key);

    let expect_invalid = |records: &[u8], count: i32, lod: i32| {
        let batch = RecordBatch::parse(raw_batch(records, count, lod, 0)).unwrap();
        let err = batch.validate(CAP).unwrap_err();
        assert!(matches!(err, BatchError::InvalidRecord(_)), "{err:?}");
        assert_eq!(err.error_code(), ErrorCode::InvalidRecord);
    };
    // wrong offset deltas
    expect_invalid(&[r(0), r(2), r(3)].concat(), 3, 2);
    expect_invalid(&[r(1), r(2), r(3)].concat(), 3, 2);
    expect_invalid(&[r(0), r(0), r(1)].concat(), 3, 2);
    // count larger than records present
    expect_invalid(&good, 4, 3);
    // count smaller than records present (trailing record)
    expect_invalid(&good, 2, 1);
    // lastOffsetDelta inconsistent with count
    expect_invalid(&good, 3, 5);
    expect_invalid(&good, 3, 1);
    // zero / negative count
    expect_invalid(&[], 0, -1);
    expect_invalid(&good, -1, -2);
    expect_invalid(&good, i32::MAX, i32::MAX - 1);
    // trailing garbage after the records
    expect_invalid(&[good.clone(), vec![0]].concat(), 3, 2);
    expect_invalid(&[good.clone(), vec![1, 2, 3]].concat(), 3, 2);
    // record whose length overstates its content by one byte (extra byte inside the record)
    let mut fat = raw_record(0);
    fat[0] += 2; // zig-zag: +1 in length
    fat.push(0);
    expect_invalid(&fat, 1, 0);
    // record length running past the end
    let mut long = raw_record(0);
    long[0] += 20;
    expect_invalid(&long, 1, 0);
    // key length < -1
    let mut neg = raw_record(0);
    neg[4] = 5; // key length varint -> -3
    expect_invalid(&neg, 1, 0);

    // records() is lenient about offset gaps (compacted logs) but not about structure.
    let gaps = RecordBatch::parse(raw_batch(&[r(0), r(5)].concat(), 2, 5, 0)).unwrap();
    assert!(gaps.validate(CAP).is_err());
    let recs = gaps.records(CAP).unwrap();
    assert_eq!(
        recs.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
        vec![0, 5]
    );
    let trailing = RecordBatch::parse(raw_batch(&[good.clone(), vec![0]].concat(), 3, 2, 0));
    assert!(trailing.unwrap().records(CAP).is_err());
}

#[test]
fn unsupported_compression_id() {
    for id in 5..8 {
        let batch = RecordBatch::parse(raw_batch(&raw_record(0), 1, 0, id)).unwrap();
        assert!(
            matches!(batch.compression(), Err(BatchError::UnsupportedCompression(x)) if x as i16 == id)
        );
        let err = batch.validate(CAP).unwrap_err();
        assert_eq!(err, BatchError::UnsupportedCompression(id as u8));
        assert_eq!(err.error_code(), ErrorCode::UnsupportedCompressionType);
    }
}

#[test]
fn compressed_payload_corruption() {
    // A "gzip" batch whose payload is not gzip, with a valid CRC.
    let batch = RecordBatch::parse(raw_batch(b"definitely not gzip", 1, 0, 1)).unwrap();
    assert!(matches!(batch.validate(CAP), Err(BatchError::Corrupt(_))));
    // Compressed payload holding malformed records.
    let inner = [raw_record(0), raw_record(2)].concat();
    for c in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let payload = c.compress(&inner).unwrap();
        let batch = RecordBatch::parse(raw_batch(&payload, 2, 1, c.id() as i16)).unwrap();
        assert!(
            matches!(batch.validate(CAP), Err(BatchError::InvalidRecord(_))),
            "{c}"
        );
        assert_eq!(batch.records(CAP).unwrap().len(), 2);
        // Decompressed size over the cap.
        let err = batch.validate(inner.len() - 1).unwrap_err();
        assert_eq!(err, BatchError::TooLarge(inner.len() - 1), "{c}");
        assert_eq!(err.error_code(), ErrorCode::MessageTooLarge);
        assert!(batch.records(inner.len() - 1).is_err());
    }
}

#[test]
fn parse_structural_errors() {
    let good = sample(Compression::None);
    // truncated at every length
    for n in 0..good.len() {
        let err = RecordBatch::parse(good.slice(..n)).unwrap_err();
        assert!(matches!(err, BatchError::Corrupt(_)), "len {n}: {err:?}");
    }
    // extra byte after the batch
    let mut long = good.to_vec();
    long.push(0);
    assert!(matches!(
        RecordBatch::parse(Bytes::from(long)),
        Err(BatchError::Corrupt(_))
    ));
    // wrong magic
    for magic in [0u8, 1, 3, 0xff] {
        let mut m = good.to_vec();
        m[16] = magic;
        assert_eq!(
            RecordBatch::parse(Bytes::from(m)).unwrap_err(),
            BatchError::UnsupportedMagic(magic as i8)
        );
    }
    assert_eq!(
        BatchError::UnsupportedMagic(1).error_code(),
        ErrorCode::UnsupportedForMessageFormat
    );
    // negative length
    let mut m = good.to_vec();
    m[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(matches!(
        RecordBatch::parse(Bytes::from(m)),
        Err(BatchError::Corrupt(_))
    ));
}

#[test]
fn split_batches() {
    let a = sample(Compression::None);
    let b = sample(Compression::Zstd);
    let mut both = BytesMut::new();
    both.extend_from_slice(&a);
    both.extend_from_slice(&b);
    let both = both.freeze();
    let parts = RecordBatch::split(both.clone()).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].as_bytes(), &a);
    assert_eq!(parts[1].as_bytes(), &b);
    assert_eq!(parts[1].compression().unwrap(), Compression::Zstd);
    for p in &parts {
        p.validate(CAP).unwrap();
    }
    assert_eq!(parts[1].clone().into_bytes(), b);

    assert!(RecordBatch::split(Bytes::new()).unwrap().is_empty());
    // trailing partial batch, at every cut point of the second batch
    for cut in a.len() + 1..both.len() {
        let err = RecordBatch::split(both.slice(..cut)).unwrap_err();
        assert!(matches!(err, BatchError::Corrupt(_)), "cut {cut}: {err:?}");
    }
    // garbage
    assert!(RecordBatch::split(Bytes::from_static(b"hello world, not a batch")).is_err());
    assert!(RecordBatch::split(Bytes::from(vec![0xffu8; 100])).is_err());
    assert!(RecordBatch::split(Bytes::from(vec![0u8; 100])).is_err());
    // length field < 49 with magic 2
    let mut small = vec![0u8; 61];
    small[8..12].copy_from_slice(&48i32.to_be_bytes());
    small[16] = 2;
    assert!(matches!(
        RecordBatch::split(Bytes::from(small)),
        Err(BatchError::Corrupt(_))
    ));
    // a legacy v1 message set
    let mut v1 = vec![0u8; 40];
    v1[8..12].copy_from_slice(&28i32.to_be_bytes());
    v1[16] = 1;
    assert_eq!(
        RecordBatch::split(Bytes::from(v1)).unwrap_err(),
        BatchError::UnsupportedMagic(1)
    );
}

#[test]
fn interop_with_kafka_protocol_crate() {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType,
    };

    // Theirs -> ours.
    let mut headers = IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("a"),
        Some(Bytes::from_static(b"1")),
    );
    headers.insert(StrBytes::from_static_str("b"), None);
    let krecs: Vec<KRecord> = (0..3)
        .map(|i| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 77,
            producer_epoch: 2,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: 10 + i as i32,
            timestamp: 1000 + i,
            key: if i == 1 {
                None
            } else {
                Some(Bytes::from(format!("key{i}")))
            },
            value: Some(Bytes::from(format!("value{i}"))),
            headers: headers.clone(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &krecs,
        &RecordEncodeOptions {
            version: 2,
            compression: KCompression::None,
        },
    )
    .unwrap();
    let batches = RecordBatch::split(buf.freeze()).unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    let s = batch.validate(CAP).unwrap();
    assert_eq!(s.record_count, 3);
    assert_eq!(s.max_record_timestamp, 1002);
    assert!(s.has_null_key);
    assert_eq!(batch.producer_id(), 77);
    assert_eq!(batch.base_sequence(), 10);
    let recs = batch.records(CAP).unwrap();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.key, krecs[i].key);
        assert_eq!(r.value, krecs[i].value);
        assert_eq!(r.timestamp(batch.base_timestamp()), 1000 + i as i64);
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.headers[0].key, "a");
        assert_eq!(r.headers[1].value, None);
    }

    // Ours -> theirs.
    let mut mine = sample(Compression::None);
    let sets = RecordBatchDecoder::decode_all(&mut mine).unwrap();
    assert_eq!(sets.len(), 1);
    let theirs = &sets[0].records;
    assert_eq!(theirs.len(), 4);
    assert_eq!(theirs[1].key, None);
    assert_eq!(theirs[1].timestamp, 1_700_000_000_005);
    assert_eq!(theirs[2].value, None);
    assert_eq!(theirs[2].headers.len(), 2);
    assert_eq!(theirs[3].offset, 3);
    assert_eq!(theirs[0].producer_id, 42);
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn exercise(bytes: Bytes) {
    if let Ok(batches) = RecordBatch::split(bytes.clone()) {
        for b in batches {
            let _ = b.validate(1 << 20);
            let _ = b.records(1 << 20);
        }
    }
    if let Ok(b) = RecordBatch::parse(bytes) {
        let _ = b.validate(1 << 20);
        let _ = b.records(1 << 20);
        let _ = b.compression();
        let _ = b.last_offset();
    }
}

#[test]
fn random_input_never_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    // Pure noise, sometimes with a plausible header.
    for i in 0..3000 {
        let len = rng.below(200);
        let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if i % 2 == 0 && v.len() >= 61 {
            let l = (v.len() - 12) as i32;
            v[8..12].copy_from_slice(&l.to_be_bytes());
            v[16] = 2;
            v[21] = 0;
            v[22] &= 0x7f;
            fix_crc(&mut v);
        }
        exercise(Bytes::from(v));
    }
    // Mutations of valid batches with the CRC repaired, so record parsing and decompressors see them.
    let seeds: Vec<Bytes> = Compression::ALL.iter().map(|c| sample(*c)).collect();
    for i in 0..6000 {
        let seed = &seeds[i % seeds.len()];
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = 21 + rng.below(v.len() - 21);
            match rng.below(3) {
                0 => v[at] ^= 1 << rng.below(8),
                1 => v[at] = rng.next() as u8,
                _ => v[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)],
            }
        }
        if rng.below(8) == 0 {
            let cut = 61 + rng.below(v.len() - 61);
            v.truncate(cut);
            let l = (v.len() - 12) as i32;
            v[8..12].copy_from_slice(&l.to_be_bytes());
        }
        fix_crc(&mut v);
        exercise(Bytes::from(v));
    }
}
