//! [`ProtocolCodec`]: the log cleaner's view of record batches, on top of
//! `gregor_protocol::record_batch` (the storage crate cannot depend on the protocol crate).
//! It decodes the records of a batch (all codecs) and rebuilds a batch with a subset of
//! them, as Kafka's `MemoryRecords.filterTo` does: same base offset, `lastOffsetDelta`,
//! producer id/epoch, base sequence, partition leader epoch, attributes and compression
//! codec; records keep their offset deltas and absolute timestamps; CRC recomputed.
//!
//! (The storage crate's tests include this file to exercise compaction on real batches.)

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::record_batch::{RecordBatch, DELETE_HORIZON_FLAG_MASK, TIMESTAMP_TYPE_MASK};
use gregor_protocol::varint;
use gregor_protocol::{Compression, Record};
use gregor_storage::{RecordCodec, RecordMeta, StorageError};

/// Largest decompressed records section the cleaner accepts (as Produce does).
pub const MAX_UNCOMPRESSED: usize = 128 * 1024 * 1024;

/// The cleaner codec backed by the protocol crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProtocolCodec;

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::CorruptBatch(e.to_string())
}

fn decode(batch: &[u8]) -> Result<(RecordBatch, Vec<Record>), StorageError> {
    let parsed = RecordBatch::parse(Bytes::copy_from_slice(batch)).map_err(corrupt)?;
    let records = parsed.records(MAX_UNCOMPRESSED).map_err(corrupt)?;
    Ok((parsed, records))
}

fn record_timestamp(batch: &RecordBatch, r: &Record) -> i64 {
    if batch.is_log_append_time() {
        batch.max_timestamp()
    } else {
        batch.base_timestamp().wrapping_add(r.timestamp_delta)
    }
}

fn put_nullable(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => varint::put_varint(out, -1),
        Some(b) => {
            varint::put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// Encodes one record (length-prefixed) with the given timestamp delta.
fn encode_record(out: &mut Vec<u8>, scratch: &mut Vec<u8>, r: &Record, timestamp_delta: i64) {
    scratch.clear();
    scratch.push(r.attributes as u8);
    varint::put_varlong(scratch, timestamp_delta);
    varint::put_varint(scratch, r.offset_delta);
    put_nullable(scratch, r.key.as_deref());
    put_nullable(scratch, r.value.as_deref());
    varint::put_varint(scratch, r.headers.len() as i32);
    for h in &r.headers {
        put_nullable(scratch, Some(h.key.as_bytes()));
        put_nullable(scratch, h.value.as_deref());
    }
    varint::put_varint(out, scratch.len() as i32);
    out.extend_from_slice(scratch);
}

impl RecordCodec for ProtocolCodec {
    fn records(&self, batch: &[u8]) -> Result<Vec<RecordMeta>, StorageError> {
        let (parsed, records) = decode(batch)?;
        let base = parsed.base_offset();
        Ok(records
            .iter()
            .map(|r| RecordMeta {
                offset: r.offset(base),
                key: r.key.as_ref().map(|k| k.to_vec()),
                value_is_null: r.value.is_none(),
                timestamp: record_timestamp(&parsed, r),
            })
            .collect())
    }

    fn rebuild(
        &self,
        batch: &[u8],
        keep: &dyn Fn(i64) -> bool,
        delete_horizon_ms: Option<i64>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let (parsed, records) = decode(batch)?;
        let base_offset = parsed.base_offset();
        let kept: Vec<&Record> = records
            .iter()
            .filter(|r| keep(r.offset(base_offset)))
            .collect();
        let Some(first) = kept.first() else {
            return Ok(None);
        };
        let compression = parsed.compression().map_err(corrupt)?;
        let mut attributes = parsed.attributes();
        let base_timestamp = match delete_horizon_ms {
            Some(h) => {
                attributes |= DELETE_HORIZON_FLAG_MASK;
                h
            }
            None if parsed.has_delete_horizon() => parsed.base_timestamp(),
            None => parsed.base_timestamp().wrapping_add(first.timestamp_delta),
        };
        let log_append_time = attributes & TIMESTAMP_TYPE_MASK != 0;
        let mut max_timestamp = i64::MIN;
        let mut raw = Vec::with_capacity(batch.len());
        let mut scratch = Vec::new();
        for r in &kept {
            let ts = parsed.base_timestamp().wrapping_add(r.timestamp_delta);
            max_timestamp = max_timestamp.max(ts);
            encode_record(&mut raw, &mut scratch, r, ts.wrapping_sub(base_timestamp));
        }
        if log_append_time {
            max_timestamp = parsed.max_timestamp();
        }
        let payload = match compression {
            Compression::None => raw,
            c => c.compress(&raw).map_err(corrupt)?,
        };
        let total = RecordBatch::HEADER_LEN + payload.len();
        let batch_length =
            i32::try_from(total - 12).map_err(|_| corrupt("rebuilt batch larger than 2 GiB"))?;
        let mut b = BytesMut::with_capacity(total);
        b.put_i64(base_offset);
        b.put_i32(batch_length);
        b.put_i32(parsed.partition_leader_epoch());
        b.put_i8(2);
        b.put_u32(0);
        b.put_i16(attributes);
        b.put_i32(parsed.last_offset_delta());
        b.put_i64(base_timestamp);
        b.put_i64(max_timestamp);
        b.put_i64(parsed.producer_id());
        b.put_i16(parsed.producer_epoch());
        b.put_i32(parsed.base_sequence());
        b.put_i32(kept.len() as i32);
        b.put_slice(&payload);
        let crc = gregor_storage::batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(Some(b.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::RecordBatchBuilder;

    /// A batch at base offset 100 with keys k0..k4 (k3 a tombstone), timestamps 1000+10i.
    fn sample(c: Compression) -> Vec<u8> {
        let mut b = RecordBatchBuilder::new(c, 1000).producer(7, 2, 40);
        for i in 0..5u8 {
            let key = [b'k', b'0' + i];
            let value = [b'v', b'0' + i];
            let value = (i != 3).then_some(&value[..]);
            b.push(
                1000 + 10 * i64::from(i),
                Some(&key),
                value,
                &[("h", Some(b"x"))],
            );
        }
        let batch = b.build().expect("build");
        let mut bytes = batch.to_vec();
        bytes[..8].copy_from_slice(&100i64.to_be_bytes());
        bytes[12..16].copy_from_slice(&6i32.to_be_bytes());
        bytes
    }

    #[test]
    fn records_of_every_codec() {
        for c in Compression::ALL {
            let metas = ProtocolCodec.records(&sample(c)).expect("records");
            assert_eq!(metas.len(), 5, "{c:?}");
            assert_eq!(metas[2].offset, 102);
            assert_eq!(metas[2].key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(metas[2].timestamp, 1020);
            assert!(metas[3].value_is_null && !metas[2].value_is_null);
        }
    }

    #[test]
    fn rebuild_keeps_header_fields_offsets_and_codec() {
        for c in Compression::ALL {
            let original = sample(c);
            let rebuilt = ProtocolCodec
                .rebuild(&original, &|o| o == 101 || o == 103, None)
                .expect("rebuild")
                .expect("some kept");
            let b = RecordBatch::parse(Bytes::from(rebuilt.clone())).expect("parse");
            b.verify_crc().expect("crc");
            assert_eq!(b.compression().expect("codec"), c);
            assert_eq!(b.base_offset(), 100);
            assert_eq!(b.last_offset_delta(), 4, "lastOffsetDelta preserved");
            assert_eq!(b.partition_leader_epoch(), 6);
            assert_eq!(
                (b.producer_id(), b.producer_epoch(), b.base_sequence()),
                (7, 2, 40)
            );
            assert_eq!(b.record_count(), 2);
            assert_eq!(b.base_timestamp(), 1010);
            assert_eq!(b.max_timestamp(), 1030);
            let metas = ProtocolCodec.records(&rebuilt).expect("records");
            let offsets: Vec<i64> = metas.iter().map(|m| m.offset).collect();
            assert_eq!(offsets, vec![101, 103]);
            assert_eq!(metas[1].timestamp, 1030);
            assert!(metas[1].value_is_null);
            let recs = b.records(MAX_UNCOMPRESSED).expect("records");
            assert_eq!(recs[0].headers[0].key, "h");
            assert_eq!(recs[0].value.as_deref(), Some(&b"v1"[..]));
        }
    }

    #[test]
    fn rebuild_sets_and_keeps_delete_horizon() {
        let original = sample(Compression::Lz4);
        let rebuilt = ProtocolCodec
            .rebuild(&original, &|_| true, Some(99_999))
            .expect("rebuild")
            .expect("kept");
        let b = RecordBatch::parse(Bytes::from(rebuilt.clone())).expect("parse");
        assert!(b.has_delete_horizon());
        assert_eq!(b.base_timestamp(), 99_999);
        let metas = ProtocolCodec.records(&rebuilt).expect("records");
        assert_eq!(metas[4].timestamp, 1040, "absolute timestamps survive");
        let again = ProtocolCodec
            .rebuild(&rebuilt, &|o| o != 100, None)
            .expect("rebuild")
            .expect("kept");
        let b = RecordBatch::parse(Bytes::from(again)).expect("parse");
        assert!(b.has_delete_horizon());
        assert_eq!(b.base_timestamp(), 99_999);
    }

    #[test]
    fn nothing_kept_and_garbage() {
        assert_eq!(
            ProtocolCodec
                .rebuild(&sample(Compression::None), &|_| false, None)
                .expect("rebuild"),
            None
        );
        let mut bad = sample(Compression::Gzip);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(ProtocolCodec.records(&bad).is_err());
        assert!(ProtocolCodec.records(&[1, 2, 3]).is_err());
    }

    #[test]
    fn log_append_time_keeps_max_timestamp() {
        let mut original = sample(Compression::None);
        RecordBatch::set_log_append_time(&mut original, 5_000);
        let metas = ProtocolCodec.records(&original).expect("records");
        assert!(metas.iter().all(|m| m.timestamp == 5_000));
        let rebuilt = ProtocolCodec
            .rebuild(&original, &|o| o == 100, None)
            .expect("rebuild")
            .expect("kept");
        let b = RecordBatch::parse(Bytes::from(rebuilt)).expect("parse");
        assert!(b.is_log_append_time());
        assert_eq!(b.max_timestamp(), 5_000);
    }
}
