//! `__transaction_state` record formats, byte compatible with Apache Kafka's
//! `transaction-coordinator/src/main/resources/common/message/TransactionLog{Key,Value}.json`.
//!
//! Key: `i16` record type 0 (`TRANSACTION_LOG`) followed by `TransactionLogKey` v0
//! (`transactional_id` as an `i16`-length string).
//!
//! Value: `i16` version followed by `TransactionLogValue`:
//! - v0 (non-flexible): `producer_id i64, producer_epoch i16, transaction_timeout_ms i32,
//!   transaction_status i8, transaction_partitions [topic string, partition_ids [i32]] (nullable,
//!   i32 lengths), last_update_timestamp_ms i64, start_timestamp_ms i64`;
//! - v1 (flexible: compact lengths, tagged fields): the same, plus tagged fields
//!   0 `PreviousProducerId` (i64, default -1), 1 `NextProducerId` (i64, default -1) and
//!   2 `ClientTransactionVersion` (i16, default 0), written only when not the default.
//!
//! Kafka 4.1 writes value v1 (transaction.version ≥ 1) and a `null` partition array in state
//! Empty; so does Gregor. The last producer epoch is not persisted (Kafka replays it as -1).
//! Decoding never panics: malformed input yields a [`ReplayError`].

use crate::{ReplayError, TxnState};

/// Record type (key version) of transaction log records.
pub const TRANSACTION_LOG_KEY_VERSION: i16 = 0;
/// Value version Gregor writes (as Kafka 4.1).
pub const TRANSACTION_LOG_VALUE_VERSION: i16 = 1;

/// One partition set of a transaction (`PartitionsSchema`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnPartitions {
    /// Topic.
    pub topic: String,
    /// Partition ids.
    pub partition_ids: Vec<i32>,
}

/// A decoded `TransactionLogValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// Producer id.
    pub producer_id: i64,
    /// Previous producer id (tagged, v1+), -1 if none.
    pub previous_producer_id: i64,
    /// Next producer id (tagged, v1+), -1 if none.
    pub next_producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Transaction timeout.
    pub timeout_ms: i32,
    /// State.
    pub state: TxnState,
    /// Partitions (`None` = null array, written in state Empty).
    pub partitions: Option<Vec<TxnPartitions>>,
    /// Last update time.
    pub last_update_timestamp_ms: i64,
    /// Start time of the current transaction (-1 if none).
    pub start_timestamp_ms: i64,
    /// Client transaction version (tagged, v1+).
    pub client_transaction_version: i16,
}

/// Encodes a key.
pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4 + transactional_id.len());
    buf.extend_from_slice(&TRANSACTION_LOG_KEY_VERSION.to_be_bytes());
    let mut end = transactional_id.len().min(i16::MAX as usize);
    while !transactional_id.is_char_boundary(end) {
        end -= 1;
    }
    buf.extend_from_slice(&(end as i16).to_be_bytes());
    buf.extend_from_slice(&transactional_id.as_bytes()[..end]);
    buf
}

/// Decodes a key: `Ok(Some(id))` for a transaction log key, `Ok(None)` for another record type.
pub fn decode_key(buf: &[u8]) -> Result<Option<String>, ReplayError> {
    let mut r = Reader::new(buf, false);
    let version = r.i16()?;
    if version != TRANSACTION_LOG_KEY_VERSION {
        return Ok(None);
    }
    Ok(Some(r.string()?))
}

fn uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Encodes a value at `version` (0 or 1).
pub fn encode_value(v: &TxnLogValue, version: i16) -> Vec<u8> {
    let flexible = version >= 1;
    let mut buf = Vec::with_capacity(64);
    let len = |buf: &mut Vec<u8>, n: usize, wide: bool| {
        if flexible {
            uvarint(buf, n as u64 + 1);
        } else if wide {
            buf.extend_from_slice(&(n as i32).to_be_bytes());
        } else {
            buf.extend_from_slice(&(n as i16).to_be_bytes());
        }
    };
    buf.extend_from_slice(&version.to_be_bytes());
    buf.extend_from_slice(&v.producer_id.to_be_bytes());
    buf.extend_from_slice(&v.producer_epoch.to_be_bytes());
    buf.extend_from_slice(&v.timeout_ms.to_be_bytes());
    buf.push(v.state.id() as u8);
    match &v.partitions {
        None => {
            if flexible {
                uvarint(&mut buf, 0);
            } else {
                buf.extend_from_slice(&(-1i32).to_be_bytes());
            }
        }
        Some(parts) => {
            len(&mut buf, parts.len(), true);
            for p in parts {
                let mut end = p.topic.len().min(i16::MAX as usize);
                while !p.topic.is_char_boundary(end) {
                    end -= 1;
                }
                len(&mut buf, end, false);
                buf.extend_from_slice(&p.topic.as_bytes()[..end]);
                len(&mut buf, p.partition_ids.len(), true);
                for id in &p.partition_ids {
                    buf.extend_from_slice(&id.to_be_bytes());
                }
                if flexible {
                    uvarint(&mut buf, 0);
                }
            }
        }
    }
    buf.extend_from_slice(&v.last_update_timestamp_ms.to_be_bytes());
    buf.extend_from_slice(&v.start_timestamp_ms.to_be_bytes());
    if flexible {
        let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tags.push((0, v.previous_producer_id.to_be_bytes().to_vec()));
        }
        if v.next_producer_id != -1 {
            tags.push((1, v.next_producer_id.to_be_bytes().to_vec()));
        }
        if v.client_transaction_version != 0 {
            tags.push((2, v.client_transaction_version.to_be_bytes().to_vec()));
        }
        uvarint(&mut buf, tags.len() as u64);
        for (tag, data) in tags {
            uvarint(&mut buf, tag);
            uvarint(&mut buf, data.len() as u64);
            buf.extend_from_slice(&data);
        }
    }
    buf
}

/// Decodes a value (v0 or v1).
pub fn decode_value(buf: &[u8]) -> Result<TxnLogValue, ReplayError> {
    let mut r = Reader::new(buf, false);
    let version = r.i16()?;
    if !(0..=1).contains(&version) {
        return Err(ReplayError(format!(
            "unknown transaction log value version {version}"
        )));
    }
    r.flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = r.i8()?;
    let state = TxnState::from_id(status)
        .ok_or_else(|| ReplayError(format!("unknown transaction status {status}")))?;
    let partitions = match r.len(true)? {
        None => None,
        Some(n) => {
            let mut parts = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let topic = r.string()?;
                let count = r.len(true)?.unwrap_or(0);
                let mut ids = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    ids.push(r.i32()?);
                }
                r.skip_tags(|_, _| Ok(()))?;
                parts.push(TxnPartitions {
                    topic,
                    partition_ids: ids,
                });
            }
            Some(parts)
        }
    };
    let last_update_timestamp_ms = r.i64()?;
    let start_timestamp_ms = r.i64()?;
    let mut value = TxnLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        client_transaction_version: 0,
    };
    let mut tags = Vec::new();
    r.skip_tags(|tag, data| {
        tags.push((tag, data.to_vec()));
        Ok(())
    })?;
    for (tag, data) in tags {
        match (tag, data.len()) {
            (0, 8) => value.previous_producer_id = i64::from_be_bytes(to8(&data)),
            (1, 8) => value.next_producer_id = i64::from_be_bytes(to8(&data)),
            (2, 2) => value.client_transaction_version = i16::from_be_bytes([data[0], data[1]]),
            (0..=2, n) => {
                return Err(ReplayError(format!("tagged field {tag} has {n} bytes")));
            }
            _ => {}
        }
    }
    Ok(value)
}

fn to8(d: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&d[..8]);
    a
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReplayError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| ReplayError("record truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i8(&mut self) -> Result<i8, ReplayError> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Result<i16, ReplayError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, ReplayError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, ReplayError> {
        Ok(i64::from_be_bytes(to8(self.take(8)?)))
    }
    fn uvarint(&mut self) -> Result<u64, ReplayError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(ReplayError("varint too long".into()))
    }
    /// A length (`None` = null): compact in flexible versions, else i16 or i32 (`wide`).
    fn len(&mut self, wide: bool) -> Result<Option<usize>, ReplayError> {
        let n: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if n < 0 {
            return Ok(None);
        }
        let n = n as usize;
        if n > self.buf.len() - self.pos {
            return Err(ReplayError("length beyond the record".into()));
        }
        Ok(Some(n))
    }
    fn string(&mut self) -> Result<String, ReplayError> {
        let n = self
            .len(false)?
            .ok_or_else(|| ReplayError("null string".into()))?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| ReplayError("invalid UTF-8".into()))
    }
    fn skip_tags(
        &mut self,
        mut f: impl FnMut(u64, &[u8]) -> Result<(), ReplayError>,
    ) -> Result<(), ReplayError> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.uvarint()?;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size =
                usize::try_from(self.uvarint()?).map_err(|_| ReplayError("tag size".into()))?;
            let data = self.take(size)?;
            f(tag, data)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Records written by Apache Kafka 4.1.2 for a librdkafka transactional producer
    // (`sample-txn`, timeout 60000 ms): InitProducerId, AddPartitionsToTxn, EndTxn(commit),
    // markers done. Copied byte for byte from `__transaction_state-19`.
    const KEY: &str = "0000000a73616d706c652d74786e";
    const EMPTY: &str = "0001000000000000000000000000ea600000000001a1ffc1337affffffffffffffff00";
    const ONGOING: &str = "0001000000000000000000000000ea6001020d73616d706c652d746f706963020000000000000001a1ffc133ab000001a1ffc133ab00";
    const PREPARE_COMMIT: &str = "0001000000000000000000000000ea6002020d73616d706c652d746f706963020000000000000001a1ffc133e0000001a1ffc133ab00";
    const COMPLETE_COMMIT: &str =
        "0001000000000000000000000000ea600401000001a1ffc133e5000001a1ffc133ab00";

    #[test]
    fn decodes_kafka_records() {
        assert_eq!(
            decode_key(&hex(KEY)).unwrap().as_deref(),
            Some("sample-txn")
        );
        assert_eq!(encode_key("sample-txn"), hex(KEY));
        let v = decode_value(&hex(EMPTY)).unwrap();
        assert_eq!(v.producer_id, 0);
        assert_eq!(v.producer_epoch, 0);
        assert_eq!(v.timeout_ms, 60000);
        assert_eq!(v.state, TxnState::Empty);
        assert_eq!(v.partitions, None);
        assert_eq!(v.start_timestamp_ms, -1);
        assert_eq!(v.last_update_timestamp_ms, 0x01a1ffc1337a);
        let v = decode_value(&hex(ONGOING)).unwrap();
        assert_eq!(v.state, TxnState::Ongoing);
        assert_eq!(
            v.partitions,
            Some(vec![TxnPartitions {
                topic: "sample-topic".into(),
                partition_ids: vec![0]
            }])
        );
        assert_eq!(v.start_timestamp_ms, 0x01a1ffc133ab);
        assert_eq!(
            decode_value(&hex(PREPARE_COMMIT)).unwrap().state,
            TxnState::PrepareCommit
        );
        let v = decode_value(&hex(COMPLETE_COMMIT)).unwrap();
        assert_eq!(v.state, TxnState::CompleteCommit);
        assert_eq!(v.partitions, Some(vec![]));
    }

    #[test]
    fn reencodes_kafka_records_byte_for_byte() {
        for s in [EMPTY, ONGOING, PREPARE_COMMIT, COMPLETE_COMMIT] {
            let v = decode_value(&hex(s)).unwrap();
            assert_eq!(encode_value(&v, 1), hex(s));
        }
    }

    #[test]
    fn v0_and_tagged_fields_round_trip() {
        let v = TxnLogValue {
            producer_id: 7,
            previous_producer_id: 3,
            next_producer_id: 9,
            producer_epoch: 2,
            timeout_ms: 1000,
            state: TxnState::PrepareAbort,
            partitions: Some(vec![TxnPartitions {
                topic: "t".into(),
                partition_ids: vec![1, 2],
            }]),
            last_update_timestamp_ms: 5,
            start_timestamp_ms: 4,
            client_transaction_version: 2,
        };
        let v1 = encode_value(&v, 1);
        assert_eq!(decode_value(&v1).unwrap(), v);
        let v0 = encode_value(&v, 0);
        // v0: version, pid, epoch, timeout, status, array(i32 1), topic(i16 1 "t"), ids(i32 2, 1, 2), ts, ts.
        let mut expect = vec![0, 0];
        expect.extend_from_slice(&7i64.to_be_bytes());
        expect.extend_from_slice(&2i16.to_be_bytes());
        expect.extend_from_slice(&1000i32.to_be_bytes());
        expect.push(3);
        expect.extend_from_slice(&1i32.to_be_bytes());
        expect.extend_from_slice(&[0, 1, b't']);
        expect.extend_from_slice(&2i32.to_be_bytes());
        expect.extend_from_slice(&1i32.to_be_bytes());
        expect.extend_from_slice(&2i32.to_be_bytes());
        expect.extend_from_slice(&5i64.to_be_bytes());
        expect.extend_from_slice(&4i64.to_be_bytes());
        assert_eq!(v0, expect);
        let back = decode_value(&v0).unwrap();
        assert_eq!(back.previous_producer_id, -1);
        assert_eq!(back.client_transaction_version, 0);
        assert_eq!(back.partitions, v.partitions);
    }

    #[test]
    fn malformed_input_is_an_error() {
        let full = hex(ONGOING);
        for n in 0..full.len() {
            assert!(decode_value(&full[..n]).is_err(), "prefix {n}");
        }
        assert!(decode_value(&[0, 9]).is_err());
        assert!(decode_key(&[0]).is_err());
        assert_eq!(decode_key(&[0, 1, 0, 0]).unwrap(), None);
        let mut bad = hex(EMPTY);
        bad[16] = 42; // status byte
        assert!(decode_value(&bad).is_err());
    }
}
