//! Record batch (magic v2) view, validation, decoding and building.
//!
//! Layout (big-endian):
//!
//! ```text
//! baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32 @12 | magic i8 @16 | crc u32 @17
//! attributes i16 @21 | lastOffsetDelta i32 @23 | baseTimestamp i64 @27 | maxTimestamp i64 @35
//! producerId i64 @43 | producerEpoch i16 @51 | baseSequence i32 @53 | recordsCount i32 @57 | records @61
//! ```
//!
//! The CRC (CRC-32C) covers bytes `[21..end]`, so `baseOffset`, `batchLength` and
//! `partitionLeaderEpoch` can be rewritten without recomputing it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::compression::{Compression, CompressionError};
use crate::error::ErrorCode;
use crate::varint::{self, Cursor, VarintError};

const BASE_OFFSET_OFFSET: usize = 0;
const LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;
/// Bytes of `baseOffset` + `batchLength` (Kafka's `LOG_OVERHEAD`).
const LOG_OVERHEAD: usize = 12;

/// Attribute bits.
pub const COMPRESSION_CODEC_MASK: i16 = 0x07;
pub const TIMESTAMP_TYPE_MASK: i16 = 0x08;
pub const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
pub const CONTROL_FLAG_MASK: i16 = 0x20;
pub const DELETE_HORIZON_FLAG_MASK: i16 = 0x40;

/// Smallest possible encoded record: length varint + attributes, timestampDelta, offsetDelta,
/// keyLength, valueLength, headersCount (one byte each).
const MIN_RECORD_LEN: usize = 7;

/// Errors from parsing or validating a record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Structural damage: bad lengths, truncation, CRC mismatch, undecodable compressed data.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// The batch is intact (CRC ok) but its records are malformed or inconsistent with the header.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Magic byte other than 2.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
    /// Compression codec id 5..=7.
    #[error("unsupported compression codec id {0}")]
    UnsupportedCompression(u8),
    /// Decompressed records would exceed the given cap (bytes).
    #[error("decompressed records exceed {0} bytes")]
    TooLarge(usize),
}

impl BatchError {
    /// The Kafka error code to answer with.
    ///
    /// `TooLarge` maps to `MESSAGE_TOO_LARGE` (Kafka's `RecordTooLargeException`): it is
    /// non-retriable, so a producer does not spin retrying a batch that can never be accepted.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            BatchError::Corrupt(_) => ErrorCode::CorruptMessage,
            BatchError::InvalidRecord(_) => ErrorCode::InvalidRecord,
            BatchError::UnsupportedMagic(_) => ErrorCode::UnsupportedForMessageFormat,
            BatchError::UnsupportedCompression(_) => ErrorCode::UnsupportedCompressionType,
            BatchError::TooLarge(_) => ErrorCode::MessageTooLarge,
        }
    }
}

impl From<CompressionError> for BatchError {
    fn from(e: CompressionError) -> Self {
        match e {
            CompressionError::Unsupported(id) => BatchError::UnsupportedCompression(id),
            CompressionError::TooLarge { limit } => BatchError::TooLarge(limit),
            CompressionError::Corrupt(msg) => BatchError::Corrupt(msg),
        }
    }
}

fn invalid(e: VarintError) -> BatchError {
    BatchError::InvalidRecord(format!("malformed record: {e}"))
}

/// Summary returned by [`RecordBatch::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSummary {
    /// Number of records (== `recordsCount` == `lastOffsetDelta + 1`).
    pub record_count: i32,
    /// Size of the records section after decompression.
    pub uncompressed_bytes: usize,
    /// Largest `baseTimestamp + timestampDelta` over the records (create time, even for
    /// LogAppendTime batches).
    pub max_record_timestamp: i64,
    /// Whether any record has a null key (compacted topics reject these).
    pub has_null_key: bool,
}

/// A record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key (invalid UTF-8 is replaced, as Kafka does).
    pub key: String,
    pub value: Option<Bytes>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

impl Record {
    /// Absolute offset given the batch's base offset.
    #[inline]
    pub fn offset(&self, base_offset: i64) -> i64 {
        base_offset.wrapping_add(self.offset_delta as i64)
    }

    /// Create-time timestamp given the batch's base timestamp.
    #[inline]
    pub fn timestamp(&self, base_timestamp: i64) -> i64 {
        base_timestamp.wrapping_add(self.timestamp_delta)
    }
}

/// A magic-v2 record batch backed by (zero-copy) [`Bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

#[inline]
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Check the framing of the batch starting at `buf[0..]`, returning its total size.
fn frame_len(buf: &[u8]) -> Result<usize, BatchError> {
    if buf.len() < LOG_OVERHEAD {
        return Err(BatchError::Corrupt(format!(
            "truncated batch: {} bytes left, need at least {LOG_OVERHEAD}",
            buf.len()
        )));
    }
    let length = be_i32(buf, LENGTH_OFFSET);
    if length < 0 {
        return Err(BatchError::Corrupt(format!(
            "negative batch length {length}"
        )));
    }
    let total = length as usize + LOG_OVERHEAD;
    if total > buf.len() {
        return Err(BatchError::Corrupt(format!(
            "batch length {length} runs past the end ({} bytes available)",
            buf.len() - LOG_OVERHEAD
        )));
    }
    if total > MAGIC_OFFSET {
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
    }
    if total < RecordBatch::HEADER_LEN {
        return Err(BatchError::Corrupt(format!(
            "batch length {length} below minimum {}",
            RecordBatch::HEADER_LEN - LOG_OVERHEAD
        )));
    }
    Ok(total)
}

impl RecordBatch {
    /// Size of the v2 batch header.
    pub const HEADER_LEN: usize = 61;

    /// Structural header checks only: `len >= 61`, `batchLength + 12 == len`, `magic == 2`.
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let total = frame_len(&bytes)?;
        if total != bytes.len() {
            return Err(BatchError::Corrupt(format!(
                "batch length field says {total} bytes, buffer has {}",
                bytes.len()
            )));
        }
        Ok(RecordBatch { bytes })
    }

    /// Split a Produce `records` field (or any concatenation of v2 batches) into batches.
    /// Slices share the input's storage. A trailing partial batch, a batch length below 49 or
    /// running past the end is [`BatchError::Corrupt`]; magic other than 2 is
    /// [`BatchError::UnsupportedMagic`]. An empty input yields no batches.
    pub fn split(records: Bytes) -> Result<Vec<RecordBatch>, BatchError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < records.len() {
            let total = frame_len(&records[pos..])?;
            out.push(RecordBatch {
                bytes: records.slice(pos..pos + total),
            });
            pos += total;
        }
        Ok(out)
    }

    #[inline]
    fn b(&self) -> &[u8] {
        &self.bytes
    }

    pub fn base_offset(&self) -> i64 {
        be_i64(self.b(), BASE_OFFSET_OFFSET)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.b(), LENGTH_OFFSET)
    }
    /// Total size in bytes (`batch_length + 12`).
    pub fn size_in_bytes(&self) -> usize {
        self.bytes.len()
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.b(), PARTITION_LEADER_EPOCH_OFFSET)
    }
    pub fn magic(&self) -> i8 {
        self.b()[MAGIC_OFFSET] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.b(), CRC_OFFSET) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.b(), ATTRIBUTES_OFFSET)
    }
    pub fn compression(&self) -> Result<Compression, BatchError> {
        Ok(Compression::from_attributes(self.attributes())?)
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes() & TIMESTAMP_TYPE_MASK != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_FLAG_MASK != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_FLAG_MASK != 0
    }
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_FLAG_MASK != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.b(), LAST_OFFSET_DELTA_OFFSET)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.b(), BASE_TIMESTAMP_OFFSET)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.b(), MAX_TIMESTAMP_OFFSET)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.b(), PRODUCER_ID_OFFSET)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.b(), PRODUCER_EPOCH_OFFSET)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.b(), BASE_SEQUENCE_OFFSET)
    }
    /// The `recordsCount` header field (as declared, not verified).
    pub fn record_count(&self) -> i32 {
        be_i32(self.b(), RECORDS_COUNT_OFFSET)
    }
    /// `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(self.last_offset_delta() as i64)
    }
    /// `base_offset + last_offset_delta + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
    /// Whether a producer id is set (`producer_id >= 0`).
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() >= 0
    }
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
    /// The (possibly compressed) records section.
    pub fn records_section(&self) -> &[u8] {
        &self.bytes[Self::HEADER_LEN..]
    }

    /// CRC-32C over bytes `[21..end]`.
    pub fn compute_crc(&self) -> u32 {
        crc32c::crc32c(&self.bytes[ATTRIBUTES_OFFSET..])
    }

    /// Check the stored CRC against the data.
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        let (stored, computed) = (self.crc(), self.compute_crc());
        if stored != computed {
            return Err(BatchError::Corrupt(format!(
                "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        Ok(())
    }

    /// A copy of this batch with `baseOffset` and `partitionLeaderEpoch` rewritten (both
    /// outside the CRC) and, if `log_append_time` is given, the timestamp type set to
    /// LogAppendTime with `maxTimestamp` set to it (CRC recomputed) — what the broker does on
    /// append.
    pub fn with_assigned(
        &self,
        base_offset: i64,
        partition_leader_epoch: i32,
        log_append_time: Option<i64>,
    ) -> RecordBatch {
        let mut m = BytesMut::from(&self.bytes[..]);
        m[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
        m[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
            .copy_from_slice(&partition_leader_epoch.to_be_bytes());
        if let Some(ts) = log_append_time {
            Self::set_log_append_time(&mut m, ts);
        }
        RecordBatch { bytes: m.freeze() }
    }

    /// Rewrites the raw bytes of a (validated) batch in place to timestamp type LogAppendTime
    /// with `maxTimestamp = ts`, recomputing the CRC, as Kafka's `LogValidator` does for topics
    /// with `message.timestamp.type=LogAppendTime`. The (possibly compressed) records are not
    /// touched: readers take every record's timestamp from `maxTimestamp`.
    pub fn set_log_append_time(bytes: &mut [u8], ts: i64) {
        if bytes.len() < Self::HEADER_LEN {
            return;
        }
        let attrs = i16::from_be_bytes([bytes[ATTRIBUTES_OFFSET], bytes[ATTRIBUTES_OFFSET + 1]])
            | TIMESTAMP_TYPE_MASK;
        bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        bytes[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&ts.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// The uncompressed records section: a zero-copy slice for uncompressed batches, otherwise
    /// freshly decompressed (capped at `max_uncompressed`).
    fn uncompressed_records(&self, max_uncompressed: usize) -> Result<Bytes, BatchError> {
        match self.compression()? {
            Compression::None => Ok(self.bytes.slice(Self::HEADER_LEN..)),
            c => Ok(Bytes::from(
                c.decompress(self.records_section(), max_uncompressed)?,
            )),
        }
    }

    /// Full validation as Kafka's `LogValidator` does for magic v2 produce data: CRC; known
    /// compression; records decompressed (capped at `max_uncompressed` bytes); every record
    /// well-formed and consuming exactly its declared length; `offsetDelta` equal to its index;
    /// `recordsCount` equal to the number of records and `> 0`; `lastOffsetDelta == count - 1`;
    /// no trailing bytes. Uncompressed batches are walked in place without allocation.
    ///
    /// Origin-dependent checks (control batches from clients, producer id without sequence,
    /// null keys on compacted topics, timestamp bounds) are left to the caller, using the
    /// accessors and the returned summary.
    pub fn validate(&self, max_uncompressed: usize) -> Result<BatchSummary, BatchError> {
        self.verify_crc()?;
        let compression = self.compression()?;
        let count = self.record_count();
        if count <= 0 {
            return Err(BatchError::InvalidRecord(format!(
                "invalid record count {count}"
            )));
        }
        let last_delta = self.last_offset_delta();
        if last_delta as i64 + 1 != count as i64 {
            return Err(BatchError::InvalidRecord(format!(
                "inconsistent batch: lastOffsetDelta {last_delta} but recordsCount {count}"
            )));
        }
        let base_ts = self.base_timestamp();
        let mut max_ts = i64::MIN;
        let mut has_null_key = false;
        let mut visit = |r: RawRecord| {
            max_ts = max_ts.max(base_ts.wrapping_add(r.timestamp_delta));
            has_null_key |= r.key.is_none();
            Ok(())
        };
        let uncompressed_bytes = if compression == Compression::None {
            let data = self.records_section();
            walk_records(data, count, true, &mut visit)?;
            data.len()
        } else {
            let data = compression.decompress(self.records_section(), max_uncompressed)?;
            walk_records(&data, count, true, &mut visit)?;
            data.len()
        };
        Ok(BatchSummary {
            record_count: count,
            uncompressed_bytes,
            max_record_timestamp: max_ts,
            has_null_key,
        })
    }

    /// Decode all records (decompressing, capped at `max_uncompressed` bytes). Keys, values and
    /// header values share storage with the batch (uncompressed) or the decompressed buffer.
    ///
    /// Checks the CRC and record structure, the record count and trailing bytes, but — unlike
    /// [`validate`](Self::validate) — accepts gaps in offset deltas and empty batches, as
    /// found in compacted logs.
    pub fn records(&self, max_uncompressed: usize) -> Result<Vec<Record>, BatchError> {
        self.verify_crc()?;
        let count = self.record_count();
        if count < 0 {
            return Err(BatchError::InvalidRecord(format!(
                "invalid record count {count}"
            )));
        }
        let data = self.uncompressed_records(max_uncompressed)?;
        let mut out = Vec::with_capacity((count as usize).min(data.len() / MIN_RECORD_LEN));
        walk_records(&data, count, false, &mut |r: RawRecord| {
            let slice = |range: Option<(usize, usize)>| range.map(|(s, e)| data.slice(s..e));
            let mut headers = Vec::with_capacity(r.header_count);
            let mut cur = Cursor::at(&data[..r.headers_end], r.headers_start);
            for _ in 0..r.header_count {
                let (k, v) = read_header(&mut cur)?;
                headers.push(RecordHeader {
                    key: String::from_utf8_lossy(&data[k.0..k.1]).into_owned(),
                    value: slice(v),
                });
            }
            out.push(Record {
                attributes: r.attributes,
                timestamp_delta: r.timestamp_delta,
                offset_delta: r.offset_delta,
                key: slice(r.key),
                value: slice(r.value),
                headers,
            });
            Ok(())
        })?;
        Ok(out)
    }
}

/// One record located in a records section; byte ranges index that section.
struct RawRecord {
    attributes: i8,
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<(usize, usize)>,
    value: Option<(usize, usize)>,
    header_count: usize,
    headers_start: usize,
    headers_end: usize,
}

/// Read a nullable length-prefixed field (`-1` = null); returns its byte range.
#[inline]
fn read_nullable(cur: &mut Cursor<'_>, what: &str) -> Result<Option<(usize, usize)>, BatchError> {
    let len = cur.read_varint().map_err(invalid)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(BatchError::InvalidRecord(format!(
            "invalid {what} length {len}"
        )));
    }
    let start = cur.position();
    cur.skip(len as usize).map_err(|_| {
        BatchError::InvalidRecord(format!("{what} length {len} exceeds record size"))
    })?;
    Ok(Some((start, start + len as usize)))
}

/// Read one header; returns (key range, value range).
#[inline]
#[allow(clippy::type_complexity)]
fn read_header(
    cur: &mut Cursor<'_>,
) -> Result<((usize, usize), Option<(usize, usize)>), BatchError> {
    let klen = cur.read_varint().map_err(invalid)?;
    if klen < 0 {
        return Err(BatchError::InvalidRecord(format!(
            "invalid header key length {klen}"
        )));
    }
    let kstart = cur.position();
    cur.skip(klen as usize).map_err(|_| {
        BatchError::InvalidRecord(format!("header key length {klen} exceeds record size"))
    })?;
    let value = read_nullable(cur, "header value")?;
    Ok(((kstart, kstart + klen as usize), value))
}

/// Walk `count` records in `data`, requiring that they exactly fill it. With `strict_offsets`,
/// record `i` must have `offsetDelta == i`. Allocation-free.
fn walk_records<F>(
    data: &[u8],
    count: i32,
    strict_offsets: bool,
    f: &mut F,
) -> Result<(), BatchError>
where
    F: FnMut(RawRecord) -> Result<(), BatchError>,
{
    let mut cur = Cursor::new(data);
    for i in 0..count {
        if cur.is_empty() {
            return Err(BatchError::InvalidRecord(format!(
                "batch declares {count} records but contains only {i}"
            )));
        }
        let len = cur.read_varint().map_err(invalid)?;
        if len < 0 || len as usize > cur.remaining() {
            return Err(BatchError::InvalidRecord(format!(
                "invalid record size {len} ({} bytes left)",
                cur.remaining()
            )));
        }
        let end = cur.position() + len as usize;
        let mut rc = Cursor::at(&data[..end], cur.position());
        let attributes = rc.read_i8().map_err(invalid)?;
        let timestamp_delta = rc.read_varlong().map_err(invalid)?;
        let offset_delta = rc.read_varint().map_err(invalid)?;
        if strict_offsets && offset_delta != i {
            return Err(BatchError::InvalidRecord(format!(
                "record {i} has offset delta {offset_delta}, expected {i}"
            )));
        }
        let key = read_nullable(&mut rc, "key")?;
        let value = read_nullable(&mut rc, "value")?;
        let header_count = rc.read_varint().map_err(invalid)?;
        if header_count < 0 {
            return Err(BatchError::InvalidRecord(format!(
                "invalid header count {header_count}"
            )));
        }
        let headers_start = rc.position();
        for _ in 0..header_count {
            read_header(&mut rc)?;
        }
        if !rc.is_empty() {
            return Err(BatchError::InvalidRecord(format!(
                "record {i}: {} unread bytes inside record of size {len}",
                rc.remaining()
            )));
        }
        f(RawRecord {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count: header_count as usize,
            headers_start,
            headers_end: end,
        })?;
        cur = Cursor::at(data, end);
    }
    if !cur.is_empty() {
        return Err(BatchError::InvalidRecord(format!(
            "{} trailing bytes after {count} records",
            cur.remaining()
        )));
    }
    Ok(())
}

/// Builds a valid v2 batch: base offset 0, partition leader epoch -1, CreateTime, CRC set.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    compression: Compression,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    count: i32,
    records: Vec<u8>,
    scratch: Vec<u8>,
}

impl RecordBatchBuilder {
    /// A builder; record timestamps are stored relative to `base_timestamp`.
    pub fn new(compression: Compression, base_timestamp: i64) -> Self {
        RecordBatchBuilder {
            compression,
            base_timestamp,
            max_timestamp: i64::MIN,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            count: 0,
            records: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Set the idempotent producer fields (default -1/-1/-1).
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Set the transactional attribute bit.
    pub fn transactional(mut self, yes: bool) -> Self {
        self.transactional = yes;
        self
    }

    /// Set the control attribute bit.
    pub fn control(mut self, yes: bool) -> Self {
        self.control = yes;
        self
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Append a record with offset delta = its index.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) {
        fn put_nullable(out: &mut Vec<u8>, v: Option<&[u8]>) {
            match v {
                None => varint::put_varint(out, -1),
                Some(b) => {
                    varint::put_varint(out, b.len() as i32);
                    out.extend_from_slice(b);
                }
            }
        }
        let body = &mut self.scratch;
        body.clear();
        body.push(0); // attributes
        varint::put_varlong(body, timestamp.wrapping_sub(self.base_timestamp));
        varint::put_varint(body, self.count);
        put_nullable(body, key);
        put_nullable(body, value);
        varint::put_varint(body, headers.len() as i32);
        for (k, v) in headers {
            put_nullable(body, Some(k.as_bytes()));
            put_nullable(body, *v);
        }
        varint::put_varint(&mut self.records, body.len() as i32);
        self.records.extend_from_slice(body);
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
    }

    /// Encode the batch. Fails if no record was pushed or the batch exceeds `i32::MAX` bytes.
    pub fn build(self) -> Result<Bytes, BatchError> {
        if self.count == 0 {
            return Err(BatchError::InvalidRecord(
                "cannot build an empty batch".into(),
            ));
        }
        let payload = match self.compression {
            Compression::None => self.records,
            c => c.compress(&self.records)?,
        };
        let total = RecordBatch::HEADER_LEN + payload.len();
        if total - LOG_OVERHEAD > i32::MAX as usize {
            return Err(BatchError::TooLarge(total));
        }
        let mut attributes = self.compression.id() as i16;
        if self.transactional {
            attributes |= TRANSACTIONAL_FLAG_MASK;
        }
        if self.control {
            attributes |= CONTROL_FLAG_MASK;
        }
        let mut b = BytesMut::with_capacity(total);
        b.put_i64(0);
        b.put_i32((total - LOG_OVERHEAD) as i32);
        b.put_i32(-1);
        b.put_i8(2);
        b.put_u32(0); // CRC placeholder
        b.put_i16(attributes);
        b.put_i32(self.count - 1);
        b.put_i64(self.base_timestamp);
        b.put_i64(self.max_timestamp);
        b.put_i64(self.producer_id);
        b.put_i16(self.producer_epoch);
        b.put_i32(self.base_sequence);
        b.put_i32(self.count);
        b.put_slice(&payload);
        let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(b.freeze())
    }
}
