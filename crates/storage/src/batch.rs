//! RecordBatch v2 header parsing (the storage crate cannot use the protocol crate).
//!
//! Layout (big-endian), offsets from the start of the batch:
//!
//! | field                | type | offset |
//! |----------------------|------|--------|
//! | baseOffset           | i64  | 0      |
//! | batchLength          | i32  | 8      |
//! | partitionLeaderEpoch | i32  | 12     |
//! | magic                | i8   | 16     |
//! | crc                  | u32  | 17     |
//! | attributes           | i16  | 21     |
//! | lastOffsetDelta      | i32  | 23     |
//! | baseTimestamp        | i64  | 27     |
//! | maxTimestamp         | i64  | 35     |
//! | producerId           | i64  | 43     |
//! | producerEpoch        | i16  | 51     |
//! | baseSequence         | i32  | 53     |
//! | recordsCount         | i32  | 57     |
//! | records              | ...  | 61     |
//!
//! `batchLength` counts the bytes after the field itself, so the total size is
//! `batchLength + 12`. The CRC-32C covers bytes `[21..end]`, so the base offset and the
//! partition leader epoch can be patched without recomputing it.

use crate::StorageError;

/// Size of the fixed RecordBatch v2 header.
pub const HEADER_LEN: usize = 61;
/// Bytes before (and including) the `batchLength` field.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest valid `batchLength` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_LEN - LOG_OVERHEAD) as i32;
/// The only supported magic value.
pub const MAGIC_V2: i8 = 2;

/// Offset of the `baseOffset` field.
pub const BASE_OFFSET_POS: usize = 0;
/// Offset of the `batchLength` field.
pub const BATCH_LENGTH_POS: usize = 8;
/// Offset of the `partitionLeaderEpoch` field.
pub const LEADER_EPOCH_POS: usize = 12;
/// Offset of the `magic` field.
pub const MAGIC_POS: usize = 16;
/// Offset of the `crc` field.
pub const CRC_POS: usize = 17;
/// Offset of the `attributes` field (start of the CRC-covered region).
pub const ATTRIBUTES_POS: usize = 21;
/// Offset of the `lastOffsetDelta` field.
pub const LAST_OFFSET_DELTA_POS: usize = 23;
/// Offset of the `baseTimestamp` field.
pub const BASE_TIMESTAMP_POS: usize = 27;
/// Offset of the `maxTimestamp` field.
pub const MAX_TIMESTAMP_POS: usize = 35;
/// Offset of the `producerId` field.
pub const PRODUCER_ID_POS: usize = 43;
/// Offset of the `producerEpoch` field.
pub const PRODUCER_EPOCH_POS: usize = 51;
/// Offset of the `baseSequence` field.
pub const BASE_SEQUENCE_POS: usize = 53;
/// Offset of the `recordsCount` field.
pub const RECORDS_COUNT_POS: usize = 57;

/// The parsed fixed header of a RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Always 2.
    pub magic: i8,
    /// CRC-32C of bytes `[21..end]`.
    pub crc: u32,
    /// Attribute bits: 0-2 compression, 3 timestamp type, 4 transactional, 5 control.
    pub attributes: i16,
    /// `lastOffset - baseOffset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, -1 if not idempotent.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl BatchHeader {
    /// Parses the fixed header. `buf` must hold at least [`HEADER_LEN`] bytes (it may hold
    /// more, e.g. the whole batch). Checks the magic and that `batchLength` is at least
    /// the header size; does not check the CRC nor that the whole batch is present.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, StorageError> {
        if buf.len() < HEADER_LEN {
            return Err(StorageError::CorruptBatch(format!(
                "batch of {} bytes is shorter than the {HEADER_LEN}-byte header",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_POS] as i8;
        if magic != MAGIC_V2 {
            return Err(StorageError::CorruptBatch(format!(
                "unsupported magic {magic} (expected {MAGIC_V2})"
            )));
        }
        let batch_length = be_i32(buf, BATCH_LENGTH_POS);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(StorageError::CorruptBatch(format!(
                "batchLength {batch_length} is smaller than the minimum {MIN_BATCH_LENGTH}"
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_POS),
            batch_length,
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_POS),
            magic,
            crc: be_i32(buf, CRC_POS) as u32,
            attributes: be_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_POS),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_POS),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: be_i64(buf, PRODUCER_ID_POS),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_POS),
            base_sequence: be_i32(buf, BASE_SEQUENCE_POS),
            records_count: be_i32(buf, RECORDS_COUNT_POS),
        })
    }

    /// Total size of the batch in bytes (`batchLength + 12`).
    pub fn total_size(&self) -> usize {
        // batch_length >= MIN_BATCH_LENGTH > 0 is guaranteed by `parse`.
        self.batch_length.max(0) as usize + LOG_OVERHEAD
    }

    /// Offset of the last record (`baseOffset + lastOffsetDelta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Compression codec (attribute bits 0-2).
    pub fn compression(&self) -> u8 {
        (self.attributes & 0x07) as u8
    }

    /// Whether the batch is part of a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// Whether the batch is a control batch (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// The delete horizon set by the log cleaner (KIP-534: attribute bit 6, stored in
    /// `baseTimestamp`), if any.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_FLAG != 0).then_some(self.base_timestamp)
    }

    /// Sequence of the last record: `baseSequence + lastOffsetDelta`, wrapping past
    /// `i32::MAX` to 0. `-1` when the batch has no sequence.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Attribute bits of the compression codec.
pub const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit: the batch carries a delete horizon in `baseTimestamp` (KIP-534).
pub const DELETE_HORIZON_FLAG: i16 = 0x40;

/// A batch with the header of `h` but no records (Kafka's `writeEmptyHeader`, used by the
/// cleaner to keep a producer's last sequence when all its records were compacted away):
/// uncompressed, no delete horizon, base and max timestamp = `h.max_timestamp`, same base
/// offset, `lastOffsetDelta`, producer fields, leader epoch, transactional and control bits.
pub fn empty_batch(h: &BatchHeader) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN);
    b.extend_from_slice(&h.base_offset.to_be_bytes());
    b.extend_from_slice(&MIN_BATCH_LENGTH.to_be_bytes());
    b.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend_from_slice(&0u32.to_be_bytes());
    let attributes = h.attributes & !(COMPRESSION_MASK | DELETE_HORIZON_FLAG);
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    b.extend_from_slice(&h.max_timestamp.to_be_bytes());
    b.extend_from_slice(&h.max_timestamp.to_be_bytes());
    b.extend_from_slice(&h.producer_id.to_be_bytes());
    b.extend_from_slice(&h.producer_epoch.to_be_bytes());
    b.extend_from_slice(&h.base_sequence.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Attribute bit: the batch is part of a transaction.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;
/// Attribute bit: the batch is a control batch (a transaction marker).
pub const CONTROL_FLAG: i16 = 0x20;
/// Control record type of an ABORT marker.
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a COMMIT marker.
pub const CONTROL_TYPE_COMMIT: i16 = 1;

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

/// Reads a zigzag varint (at most 10 bytes) at `*pos`.
fn get_varint(b: &[u8], pos: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        z |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Builds a transaction marker batch exactly as Kafka's
/// `MemoryRecords.withEndTransactionMarker`: RecordBatch v2, uncompressed, CreateTime,
/// attributes transactional + control, `baseSequence` -1, base and max timestamp
/// `timestamp_ms`, one record at offset delta 0 whose key is
/// `[version i16 = 0, type i16]` (0 ABORT, 1 COMMIT) and whose value is
/// `[version i16 = 0, coordinatorEpoch i32]`. Base offset 0 and leader epoch -1, to be
/// patched by the append.
pub fn control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let kind = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut body = vec![0u8]; // record attributes
    put_varint(&mut body, 0); // timestamp delta
    put_varint(&mut body, 0); // offset delta
    put_varint(&mut body, key.len() as i64);
    body.extend_from_slice(&key);
    put_varint(&mut body, value.len() as i64);
    body.extend_from_slice(&value);
    put_varint(&mut body, 0); // headers
    let mut b = Vec::with_capacity(HEADER_LEN + body.len() + 2);
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // batch length, patched below
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(MAGIC_V2 as u8);
    b.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    b.extend_from_slice(&(TRANSACTIONAL_FLAG | CONTROL_FLAG).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&timestamp_ms.to_be_bytes());
    b.extend_from_slice(&producer_id.to_be_bytes());
    b.extend_from_slice(&producer_epoch.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    put_varint(&mut b, body.len() as i64);
    b.extend_from_slice(&body);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&len.to_be_bytes());
    let crc = compute_crc(&b);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// The end-transaction marker of a whole control batch: `(control type, coordinator
/// epoch)` read from its first record (Kafka's `EndTransactionMarker.deserialize`; the
/// coordinator epoch is -1 if the value is shorter than 6 bytes). Control batches are never
/// compressed; a compressed or malformed one is `CorruptBatch`.
pub fn control_marker(batch: &[u8]) -> Result<(i16, i32), StorageError> {
    let bad = |m: &str| StorageError::CorruptBatch(format!("invalid control batch: {m}"));
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() {
        return Err(bad("not a control batch"));
    }
    if h.total_size() != batch.len() {
        return Err(bad("batch length does not match the bytes given"));
    }
    if h.compression() != 0 {
        return Err(bad("compressed"));
    }
    if h.records_count < 1 {
        return Err(bad("no record"));
    }
    let mut pos = HEADER_LEN;
    let len = get_varint(batch, &mut pos).ok_or_else(|| bad("truncated record"))?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|&e| e <= batch.len())
        .ok_or_else(|| bad("record length"))?;
    let rec = &batch[..end];
    pos += 1; // attributes
    get_varint(rec, &mut pos).ok_or_else(|| bad("timestamp delta"))?;
    get_varint(rec, &mut pos).ok_or_else(|| bad("offset delta"))?;
    let key_len = get_varint(rec, &mut pos).ok_or_else(|| bad("key length"))?;
    if key_len < 4 {
        return Err(bad("control record key shorter than 4 bytes"));
    }
    let key = rec
        .get(pos..pos + key_len as usize)
        .ok_or_else(|| bad("truncated key"))?;
    pos += key_len as usize;
    let kind = i16::from_be_bytes([key[2], key[3]]);
    let value_len = get_varint(rec, &mut pos).ok_or_else(|| bad("value length"))?;
    let coordinator_epoch = if value_len >= 6 {
        rec.get(pos + 2..pos + 6)
            .map(|v| i32::from_be_bytes([v[0], v[1], v[2], v[3]]))
            .ok_or_else(|| bad("truncated value"))?
    } else {
        -1
    };
    Ok((kind, coordinator_epoch))
}

/// `seq + increment`, wrapping from `i32::MAX` to 0 (Kafka's `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, increment: i32) -> i32 {
    if seq > i32::MAX - increment {
        increment - (i32::MAX - seq) - 1
    } else {
        seq + increment
    }
}

/// Computes the CRC-32C of the CRC-covered region (`[21..end]`).
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_POS..).unwrap_or(&[]))
}

/// Checks the stored CRC-32C against the batch bytes (`batch` must be the whole batch).
pub fn verify_crc(batch: &[u8]) -> Result<(), StorageError> {
    if batch.len() < HEADER_LEN {
        return Err(StorageError::CorruptBatch(format!(
            "batch of {} bytes is shorter than the header",
            batch.len()
        )));
    }
    let stored = be_i32(batch, CRC_POS) as u32;
    let computed = compute_crc(batch);
    if stored != computed {
        return Err(StorageError::CorruptBatch(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

/// Overwrites the base offset field (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    if let Some(dst) = batch.get_mut(BASE_OFFSET_POS..BASE_OFFSET_POS + 8) {
        dst.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Overwrites the partition leader epoch field (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    if let Some(dst) = batch.get_mut(LEADER_EPOCH_POS..LEADER_EPOCH_POS + 4) {
        dst.copy_from_slice(&epoch.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn empty_batch_keeps_producer_fields() {
        let h = BatchHeader {
            base_offset: 40,
            batch_length: 100,
            partition_leader_epoch: 3,
            magic: 2,
            crc: 0,
            attributes: 0x10 | 0x40 | 0x04,
            last_offset_delta: 4,
            base_timestamp: 5,
            max_timestamp: 9,
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 10,
            records_count: 5,
        };
        let b = empty_batch(&h);
        verify_crc(&b).expect("crc");
        let e = BatchHeader::parse(&b).expect("parse");
        assert_eq!(e.total_size(), HEADER_LEN);
        assert_eq!(e.attributes, 0x10);
        assert_eq!(e.last_offset(), 44);
        assert_eq!(e.last_sequence(), 14);
        assert_eq!((e.base_timestamp, e.max_timestamp), (9, 9));
        assert_eq!((e.records_count, e.partition_leader_epoch), (0, 3));
        assert_eq!(e.delete_horizon_ms(), None);
    }

    #[test]
    fn parse_rejects_short_and_bad_magic() {
        assert!(BatchHeader::parse(&[0u8; 10]).is_err());
        let mut b = vec![0u8; HEADER_LEN];
        b[MAGIC_POS] = 1;
        b[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&49i32.to_be_bytes());
        assert!(BatchHeader::parse(&b).is_err());
        b[MAGIC_POS] = 2;
        let h = BatchHeader::parse(&b).expect("valid header");
        assert_eq!(h.total_size(), HEADER_LEN);
        b[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&48i32.to_be_bytes());
        assert!(BatchHeader::parse(&b).is_err());
    }

    #[test]
    fn control_batch_roundtrip() {
        let b = control_batch(42, 3, false, 7, 1_000);
        verify_crc(&b).expect("crc");
        let h = BatchHeader::parse(&b).expect("parse");
        assert_eq!(h.total_size(), b.len());
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, -1)
        );
        assert_eq!((h.records_count, h.last_offset_delta), (1, 0));
        assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 1_000));
        assert_eq!(control_marker(&b).expect("marker"), (CONTROL_TYPE_ABORT, 7));
        let c = control_batch(42, 3, true, -5, 1_000);
        assert_eq!(
            control_marker(&c).expect("marker"),
            (CONTROL_TYPE_COMMIT, -5)
        );
        for cut in HEADER_LEN..b.len() {
            assert!(control_marker(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
