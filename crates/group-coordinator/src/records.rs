//! `__consumer_offsets` record formats, byte compatible with Apache Kafka's
//! `group-coordinator/src/main/resources/common/message/*.json` schemas.
//!
//! A key is an `i16` version (Kafka's record type) followed by the key struct:
//! - 0 and 1: `OffsetCommitKey { group, topic, partition }` (Kafka writes 1),
//! - 2: `GroupMetadataKey { group }`,
//! - 3 and above: other record types (KIP-848 consumer groups, share groups, ...).
//!
//! Values are an `i16` version followed by the value struct. `OffsetCommitValue` versions 0–3
//! and `GroupMetadataValue` versions 0–3 are non-flexible (`i16`-length strings, `i32`-length
//! bytes and arrays); version 4 of both is flexible (compact lengths as unsigned varints of
//! `len + 1`, tagged fields after each struct). Gregor writes `OffsetCommitValue` v3 (v1 when
//! an explicit expire timestamp was requested, as Kafka does) and `GroupMetadataValue` v3, like
//! Kafka 4.1. Decoding never panics: malformed input yields a [`ReplayError`].

use crate::ReplayError;

/// Key version of offset commit records written by Kafka (and Gregor).
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of classic group metadata records.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;

/// A decoded `__consumer_offsets` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// Key versions 0 and 1.
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// Key version 2.
    GroupMetadata {
        /// Group id.
        group: String,
    },
    /// Any other record type (its key version); not decoded here.
    Other(i16),
}

/// A committed offset (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// Committed offset.
    pub offset: i64,
    /// Leader epoch (v3+, -1 if unknown).
    pub leader_epoch: i32,
    /// Client metadata string.
    pub metadata: String,
    /// Commit time (ms).
    pub commit_timestamp: i64,
    /// Explicit expire time (v1 only), -1 if none.
    pub expire_timestamp: i64,
}

/// One member of a classic group (`GroupMetadataValue.MemberMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    /// Member id.
    pub member_id: String,
    /// Static instance id (v3+).
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (v1+; v0 records use the session timeout).
    pub rebalance_timeout: i32,
    /// Session timeout.
    pub session_timeout: i32,
    /// Protocol metadata of the selected protocol.
    pub subscription: Vec<u8>,
    /// Assignment.
    pub assignment: Vec<u8>,
}

/// A classic group's persisted state (`GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadataValue {
    /// Protocol type (e.g. `consumer`); empty for groups that only hold offsets.
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Selected protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its current state (v2+, -1 if unknown).
    pub current_state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberMetadata>,
}

// ---------------------------------------------------------------------------------------------
// Writer

struct Writer {
    buf: Vec<u8>,
    flexible: bool,
}

impl Writer {
    fn new(flexible: bool) -> Self {
        Writer {
            buf: Vec::new(),
            flexible,
        }
    }
    fn i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    fn len(&mut self, len: usize, wide: bool) {
        if self.flexible {
            self.uvarint((len as u32).saturating_add(1));
        } else if wide {
            self.i32(len as i32);
        } else {
            self.i16(len as i16);
        }
    }
    fn null(&mut self, wide: bool) {
        if self.flexible {
            self.uvarint(0);
        } else if wide {
            self.i32(-1);
        } else {
            self.i16(-1);
        }
    }
    fn string(&mut self, s: &str) {
        // Kafka strings are at most i16::MAX bytes; longer input is truncated at a char boundary.
        let mut end = s.len().min(i16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.len(end, false);
        self.buf.extend_from_slice(&s.as_bytes()[..end]);
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.null(false),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len(), true);
        self.buf.extend_from_slice(b);
    }
    fn array_len(&mut self, n: usize) {
        self.len(n, true);
    }
    fn tagged_fields(&mut self) {
        if self.flexible {
            self.uvarint(0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reader

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

fn err(msg: impl Into<String>) -> ReplayError {
    ReplayError(msg.into())
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible: false,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReplayError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| err("truncated record"))?;
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
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn uvarint(&mut self) -> Result<u32, ReplayError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.i8()? as u8;
            v |= ((b & 0x7f) as u32) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err("varint too long"))
    }
    /// Length of a string/bytes/array; `None` = null.
    fn len(&mut self, wide: bool) -> Result<Option<usize>, ReplayError> {
        if self.flexible {
            let v = self.uvarint()?;
            Ok(if v == 0 { None } else { Some((v - 1) as usize) })
        } else {
            let v = if wide {
                self.i32()?
            } else {
                self.i16()? as i32
            };
            if v < -1 {
                return Err(err("negative length"));
            }
            Ok(if v == -1 { None } else { Some(v as usize) })
        }
    }
    fn nullable_string(&mut self) -> Result<Option<String>, ReplayError> {
        match self.len(false)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec())
                    .map(Some)
                    .map_err(|_| err("invalid utf-8 in string"))
            }
        }
    }
    fn string(&mut self) -> Result<String, ReplayError> {
        self.nullable_string()?
            .ok_or_else(|| err("null in a non-nullable string"))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, ReplayError> {
        match self.len(true)? {
            None => Ok(Vec::new()),
            Some(n) => Ok(self.take(n)?.to_vec()),
        }
    }
    fn array_len(&mut self) -> Result<usize, ReplayError> {
        let n = self.len(true)?.unwrap_or(0);
        // Every element takes at least one byte.
        if n > self.buf.len().saturating_sub(self.pos) {
            return Err(err("array length beyond the record"));
        }
        Ok(n)
    }
    fn tagged_fields(&mut self) -> Result<(), ReplayError> {
        if self.flexible {
            let n = self.uvarint()?;
            for _ in 0..n {
                let _tag = self.uvarint()?;
                let size = self.uvarint()? as usize;
                self.take(size)?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// `OffsetCommitKey` (written with key version 1).
pub fn offset_commit_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.i16(OFFSET_COMMIT_KEY_VERSION);
    w.string(group);
    w.string(topic);
    w.i32(partition);
    w.buf
}

/// `GroupMetadataKey` (key version 2).
pub fn group_metadata_key(group: &str) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.i16(GROUP_METADATA_KEY_VERSION);
    w.string(group);
    w.buf
}

/// Decodes a key; record types other than offsets and classic group metadata come back as
/// [`RecordKey::Other`] without being parsed.
pub fn decode_key(key: &[u8]) -> Result<RecordKey, ReplayError> {
    let mut r = Reader::new(key);
    let version = r.i16()?;
    match version {
        0 | 1 => {
            let group = r.string()?;
            let topic = r.string()?;
            let partition = r.i32()?;
            Ok(RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            })
        }
        2 => Ok(RecordKey::GroupMetadata { group: r.string()? }),
        v if v >= 0 => Ok(RecordKey::Other(v)),
        v => Err(err(format!("invalid key version {v}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Values

impl OffsetCommitValue {
    /// Serializes with a version prefix: v3, or v1 when `expire_timestamp` is set (as Kafka).
    pub fn encode(&self) -> Vec<u8> {
        let version = if self.expire_timestamp >= 0 { 1 } else { 3 };
        self.encode_version(version)
    }

    /// Serializes as `version` (0–4).
    pub fn encode_version(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.i64(self.offset);
        if version >= 3 {
            w.i32(self.leader_epoch);
        }
        w.string(&self.metadata);
        w.i64(self.commit_timestamp);
        if version == 1 {
            w.i64(self.expire_timestamp);
        }
        w.tagged_fields();
        w.buf
    }

    /// Parses a version-prefixed value (v0–v4).
    pub fn decode(value: &[u8]) -> Result<Self, ReplayError> {
        let mut r = Reader::new(value);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(err(format!("unknown OffsetCommitValue version {version}")));
        }
        r.flexible = version >= 4;
        let offset = r.i64()?;
        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
        let metadata = r.string()?;
        let commit_timestamp = r.i64()?;
        let expire_timestamp = if version == 1 { r.i64()? } else { -1 };
        r.tagged_fields()?;
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

impl GroupMetadataValue {
    /// Serializes as v3 (what Kafka 4.1 writes).
    pub fn encode(&self) -> Vec<u8> {
        self.encode_version(3)
    }

    /// Serializes as `version` (0–4).
    pub fn encode_version(&self, version: i16) -> Vec<u8> {
        let mut w = Writer::new(version >= 4);
        w.i16(version);
        w.string(&self.protocol_type);
        w.i32(self.generation);
        w.nullable_string(self.protocol.as_deref());
        w.nullable_string(self.leader.as_deref());
        if version >= 2 {
            w.i64(self.current_state_timestamp);
        }
        w.array_len(self.members.len());
        for m in &self.members {
            w.string(&m.member_id);
            if version >= 3 {
                w.nullable_string(m.group_instance_id.as_deref());
            }
            w.string(&m.client_id);
            w.string(&m.client_host);
            if version >= 1 {
                w.i32(m.rebalance_timeout);
            }
            w.i32(m.session_timeout);
            w.bytes(&m.subscription);
            w.bytes(&m.assignment);
            w.tagged_fields();
        }
        w.tagged_fields();
        w.buf
    }

    /// Parses a version-prefixed value (v0–v4).
    pub fn decode(value: &[u8]) -> Result<Self, ReplayError> {
        let mut r = Reader::new(value);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return Err(err(format!("unknown GroupMetadataValue version {version}")));
        }
        r.flexible = version >= 4;
        let protocol_type = r.string()?;
        let generation = r.i32()?;
        let protocol = r.nullable_string()?;
        let leader = r.nullable_string()?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let n = r.array_len()?;
        let mut members = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let member_id = r.string()?;
            let group_instance_id = if version >= 3 {
                r.nullable_string()?
            } else {
                None
            };
            let client_id = r.string()?;
            let client_host = r.string()?;
            let rebalance_timeout = if version >= 1 { Some(r.i32()?) } else { None };
            let session_timeout = r.i32()?;
            let subscription = r.bytes()?;
            let assignment = r.bytes()?;
            r.tagged_fields()?;
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout: rebalance_timeout.unwrap_or(session_timeout),
                session_timeout,
                subscription,
                assignment,
            });
        }
        r.tagged_fields()?;
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// Topics of a `ConsumerProtocolSubscription` (classic consumer JoinGroup metadata, versions
/// 0–3, non-flexible: `i16` version, `[string]` topics, ...). `None` if it does not parse.
pub fn consumer_subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(metadata);
    let version = r.i16().ok()?;
    if version < 0 {
        return None;
    }
    let n = r.array_len().ok()?;
    let mut topics = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        topics.push(r.string().ok()?);
    }
    Some(topics)
}

/// Builds a `ConsumerProtocolSubscription` v0 (topics, no user data); used by tests and tools.
pub fn encode_consumer_subscription(topics: &[&str]) -> Vec<u8> {
    let mut w = Writer::new(false);
    w.i16(0);
    w.array_len(topics.len());
    for t in topics {
        w.string(t);
    }
    w.i32(-1); // null user data
    w.buf
}
