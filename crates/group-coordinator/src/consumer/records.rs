//! Kafka's KIP-848 consumer-group records in `__consumer_offsets`, byte compatible with Apache
//! Kafka 4.1's `group-coordinator` schemas.
//!
//! Key = `i16 record type` + key fields at version 0 (not flexible: `i16`-length strings).
//! Value = `i16 value version (0)` + value fields at version 0 (flexible: compact strings and
//! arrays, a tagged-field section after every struct). Types:
//!
//! | type | record | value |
//! |---|---|---|
//! | 3 | ConsumerGroupMetadata (GroupId) | Epoch i32, tag 0 MetadataHash i64 |
//! | 4 | ConsumerGroupPartitionMetadata (GroupId) | read and ignored (4.1 no longer writes it) |
//! | 5 | ConsumerGroupMemberMetadata (GroupId, MemberId) | InstanceId?, RackId?, ClientId, ClientHost, SubscribedTopicNames [], SubscribedTopicRegex?, RebalanceTimeoutMs i32, ServerAssignor?, tag 0 ClassicMemberMetadata (skipped) |
//! | 6 | ConsumerGroupTargetAssignmentMetadata (GroupId) | AssignmentEpoch i32 |
//! | 7 | ConsumerGroupTargetAssignmentMember (GroupId, MemberId) | TopicPartitions [{TopicId uuid, Partitions []i32}] |
//! | 8 | ConsumerGroupCurrentMemberAssignment (GroupId, MemberId) | MemberEpoch i32, PreviousMemberEpoch i32, State i8, AssignedPartitions [..], PartitionsPendingRevocation [..] |
//! | 16 | ConsumerGroupRegularExpression (GroupId, RegularExpression) | read and ignored (regexes are resolved on every heartbeat) |

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Topic id → partitions.
pub type Partitions = BTreeMap<Uuid, BTreeSet<i32>>;

/// ConsumerGroupMetadata record type.
pub const GROUP_METADATA: i16 = 3;
/// ConsumerGroupPartitionMetadata record type (pre-4.1; ignored).
pub const PARTITION_METADATA: i16 = 4;
/// ConsumerGroupMemberMetadata record type.
pub const MEMBER_METADATA: i16 = 5;
/// ConsumerGroupTargetAssignmentMetadata record type.
pub const TARGET_METADATA: i16 = 6;
/// ConsumerGroupTargetAssignmentMember record type.
pub const TARGET_MEMBER: i16 = 7;
/// ConsumerGroupCurrentMemberAssignment record type.
pub const CURRENT_ASSIGNMENT: i16 = 8;
/// ConsumerGroupRegularExpression record type (ignored).
pub const REGULAR_EXPRESSION: i16 = 16;

/// ConsumerGroupMemberMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed regex.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Preferred server assignor.
    pub server_assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignmentValue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    /// Member epoch.
    pub member_epoch: i32,
    /// Previous member epoch.
    pub previous_member_epoch: i32,
    /// MemberState byte (0 stable, 1 unrevoked, 2 unreleased, 127 unknown).
    pub state: i8,
    /// Assigned (owned) partitions.
    pub assigned: Partitions,
    /// Partitions the member must revoke.
    pub pending_revocation: Partitions,
}

/// A typed consumer-group record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    /// Group epoch and metadata hash.
    GroupMetadata {
        /// Group id.
        group_id: String,
        /// (group epoch, metadata hash); `None` deletes the group.
        value: Option<(i32, i64)>,
    },
    /// Member subscription.
    MemberMetadata {
        /// Group id.
        group_id: String,
        /// Member id.
        member_id: String,
        /// The subscription; `None` removes the member.
        value: Option<MemberMetadata>,
    },
    /// Target assignment epoch.
    TargetMetadata {
        /// Group id.
        group_id: String,
        /// The target assignment epoch; `None` deletes it.
        value: Option<i32>,
    },
    /// A member's target assignment.
    TargetMember {
        /// Group id.
        group_id: String,
        /// Member id.
        member_id: String,
        /// The member's target partitions; `None` deletes them.
        value: Option<Partitions>,
    },
    /// A member's current assignment.
    CurrentAssignment {
        /// Group id.
        group_id: String,
        /// Member id.
        member_id: String,
        /// The member's current assignment; `None` deletes it.
        value: Option<CurrentAssignment>,
    },
    /// A record type we recognise but do not use.
    Ignored,
}

impl GroupRecord {
    /// Group id of the record (empty for `Ignored`).
    pub fn group_id(&self) -> &str {
        match self {
            GroupRecord::GroupMetadata { group_id, .. }
            | GroupRecord::MemberMetadata { group_id, .. }
            | GroupRecord::TargetMetadata { group_id, .. }
            | GroupRecord::TargetMember { group_id, .. }
            | GroupRecord::CurrentAssignment { group_id, .. } => group_id,
            GroupRecord::Ignored => "",
        }
    }

    /// Serializes to Kafka's key/value bytes.
    pub fn encode(&self) -> crate::Record {
        let (ty, group_id, member_id): (i16, &str, Option<&str>) = match self {
            GroupRecord::GroupMetadata { group_id, .. } => (GROUP_METADATA, group_id, None),
            GroupRecord::MemberMetadata {
                group_id,
                member_id,
                ..
            } => (MEMBER_METADATA, group_id, Some(member_id)),
            GroupRecord::TargetMetadata { group_id, .. } => (TARGET_METADATA, group_id, None),
            GroupRecord::TargetMember {
                group_id,
                member_id,
                ..
            } => (TARGET_MEMBER, group_id, Some(member_id)),
            GroupRecord::CurrentAssignment {
                group_id,
                member_id,
                ..
            } => (CURRENT_ASSIGNMENT, group_id, Some(member_id)),
            GroupRecord::Ignored => (PARTITION_METADATA, "", None),
        };
        let mut key = Vec::with_capacity(8 + group_id.len() + member_id.map_or(0, str::len));
        key.extend_from_slice(&ty.to_be_bytes());
        put_string(&mut key, group_id);
        if let Some(m) = member_id {
            put_string(&mut key, m);
        }
        let value = match self {
            GroupRecord::GroupMetadata {
                value: Some((epoch, hash)),
                ..
            } => {
                let mut w = value_writer();
                w.extend_from_slice(&epoch.to_be_bytes());
                if *hash != 0 {
                    put_uvarint(&mut w, 1);
                    put_uvarint(&mut w, 0);
                    put_uvarint(&mut w, 8);
                    w.extend_from_slice(&hash.to_be_bytes());
                } else {
                    put_uvarint(&mut w, 0);
                }
                Some(w)
            }
            GroupRecord::MemberMetadata { value: Some(m), .. } => {
                let mut w = value_writer();
                put_compact_nullable(&mut w, m.instance_id.as_deref());
                put_compact_nullable(&mut w, m.rack_id.as_deref());
                put_compact(&mut w, &m.client_id);
                put_compact(&mut w, &m.client_host);
                put_uvarint(&mut w, m.subscribed_topic_names.len() as u64 + 1);
                for t in &m.subscribed_topic_names {
                    put_compact(&mut w, t);
                }
                put_compact_nullable(&mut w, m.subscribed_topic_regex.as_deref());
                w.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
                put_compact_nullable(&mut w, m.server_assignor.as_deref());
                put_uvarint(&mut w, 0);
                Some(w)
            }
            GroupRecord::TargetMetadata {
                value: Some(epoch), ..
            } => {
                let mut w = value_writer();
                w.extend_from_slice(&epoch.to_be_bytes());
                put_uvarint(&mut w, 0);
                Some(w)
            }
            GroupRecord::TargetMember { value: Some(p), .. } => {
                let mut w = value_writer();
                put_partitions(&mut w, p);
                put_uvarint(&mut w, 0);
                Some(w)
            }
            GroupRecord::CurrentAssignment { value: Some(c), .. } => {
                let mut w = value_writer();
                w.extend_from_slice(&c.member_epoch.to_be_bytes());
                w.extend_from_slice(&c.previous_member_epoch.to_be_bytes());
                w.push(c.state as u8);
                put_partitions(&mut w, &c.assigned);
                put_partitions(&mut w, &c.pending_revocation);
                put_uvarint(&mut w, 0);
                Some(w)
            }
            _ => None,
        };
        crate::Record {
            group_id: group_id.to_string(),
            key,
            value,
        }
    }

    /// Parses a record. `Ok(None)`: not a consumer-group record type.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<GroupRecord>, String> {
        let mut k = Reader { buf: key, pos: 0 };
        let ty = k.i16()?;
        let has_member = match ty {
            GROUP_METADATA | TARGET_METADATA | PARTITION_METADATA => false,
            MEMBER_METADATA | TARGET_MEMBER | CURRENT_ASSIGNMENT => true,
            REGULAR_EXPRESSION => return Ok(Some(GroupRecord::Ignored)),
            _ => return Ok(None),
        };
        let group_id = k.string()?;
        let member_id = if has_member {
            k.string()?
        } else {
            String::new()
        };
        if ty == PARTITION_METADATA {
            return Ok(Some(GroupRecord::Ignored));
        }
        let Some(value) = value else {
            return Ok(Some(match ty {
                GROUP_METADATA => GroupRecord::GroupMetadata {
                    group_id,
                    value: None,
                },
                MEMBER_METADATA => GroupRecord::MemberMetadata {
                    group_id,
                    member_id,
                    value: None,
                },
                TARGET_METADATA => GroupRecord::TargetMetadata {
                    group_id,
                    value: None,
                },
                TARGET_MEMBER => GroupRecord::TargetMember {
                    group_id,
                    member_id,
                    value: None,
                },
                _ => GroupRecord::CurrentAssignment {
                    group_id,
                    member_id,
                    value: None,
                },
            }));
        };
        let mut r = Reader { buf: value, pos: 0 };
        let version = r.i16()?;
        if version < 0 {
            return Err(format!("record type {ty}: bad value version {version}"));
        }
        Ok(Some(match ty {
            GROUP_METADATA => {
                let epoch = r.i32()?;
                let mut hash = 0i64;
                r.tagged(|tag, data| {
                    if tag == 0 && data.len() == 8 {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(data);
                        hash = i64::from_be_bytes(b);
                    }
                })?;
                GroupRecord::GroupMetadata {
                    group_id,
                    value: Some((epoch, hash)),
                }
            }
            MEMBER_METADATA => {
                let instance_id = r.compact_nullable()?;
                let rack_id = r.compact_nullable()?;
                let client_id = r.compact_nullable()?.unwrap_or_default();
                let client_host = r.compact_nullable()?.unwrap_or_default();
                let n = r.compact_len()?;
                let mut subscribed_topic_names = Vec::new();
                for _ in 0..n {
                    subscribed_topic_names.push(r.compact_nullable()?.unwrap_or_default());
                }
                let subscribed_topic_regex = r.compact_nullable()?;
                let rebalance_timeout_ms = r.i32()?;
                let server_assignor = r.compact_nullable()?;
                r.tagged(|_, _| {})?;
                GroupRecord::MemberMetadata {
                    group_id,
                    member_id,
                    value: Some(MemberMetadata {
                        instance_id,
                        rack_id,
                        client_id,
                        client_host,
                        subscribed_topic_names,
                        subscribed_topic_regex,
                        rebalance_timeout_ms,
                        server_assignor,
                    }),
                }
            }
            TARGET_METADATA => {
                let epoch = r.i32()?;
                r.tagged(|_, _| {})?;
                GroupRecord::TargetMetadata {
                    group_id,
                    value: Some(epoch),
                }
            }
            TARGET_MEMBER => {
                let p = r.partitions()?;
                r.tagged(|_, _| {})?;
                GroupRecord::TargetMember {
                    group_id,
                    member_id,
                    value: Some(p),
                }
            }
            _ => {
                let member_epoch = r.i32()?;
                let previous_member_epoch = r.i32()?;
                let state = r.i8()?;
                let assigned = r.partitions()?;
                let pending_revocation = r.partitions()?;
                r.tagged(|_, _| {})?;
                GroupRecord::CurrentAssignment {
                    group_id,
                    member_id,
                    value: Some(CurrentAssignment {
                        member_epoch,
                        previous_member_epoch,
                        state,
                        assigned,
                        pending_revocation,
                    }),
                }
            }
        }))
    }
}

fn value_writer() -> Vec<u8> {
    let mut w = Vec::with_capacity(64);
    w.extend_from_slice(&0i16.to_be_bytes());
    w
}

fn put_string(w: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    w.extend_from_slice(&(len as i16).to_be_bytes());
    w.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_uvarint(w: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        w.push((v as u8) | 0x80);
        v >>= 7;
    }
    w.push(v as u8);
}

fn put_compact(w: &mut Vec<u8>, s: &str) {
    put_uvarint(w, s.len() as u64 + 1);
    w.extend_from_slice(s.as_bytes());
}

fn put_compact_nullable(w: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_uvarint(w, 0),
        Some(s) => put_compact(w, s),
    }
}

fn put_partitions(w: &mut Vec<u8>, p: &Partitions) {
    put_uvarint(w, p.len() as u64 + 1);
    for (topic, parts) in p {
        w.extend_from_slice(topic.as_bytes());
        put_uvarint(w, parts.len() as u64 + 1);
        for part in parts {
            w.extend_from_slice(&part.to_be_bytes());
        }
        put_uvarint(w, 0);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("truncated record")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i8(&mut self) -> Result<i8, String> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    fn string(&mut self) -> Result<String, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(String::new());
        }
        let b = self.take(len as usize)?;
        String::from_utf8(b.to_vec()).map_err(|_| "invalid utf-8".to_string())
    }
    /// Compact array/length: `None` for null (0), else the count.
    fn compact_len(&mut self) -> Result<usize, String> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(0);
        }
        let n = (n - 1) as usize;
        if n > self.buf.len() - self.pos {
            return Err("array longer than record".into());
        }
        Ok(n)
    }
    fn compact_nullable(&mut self) -> Result<Option<String>, String> {
        let n = self.uvarint()?;
        if n == 0 {
            return Ok(None);
        }
        let b = self.take((n - 1) as usize)?;
        String::from_utf8(b.to_vec())
            .map(Some)
            .map_err(|_| "invalid utf-8".to_string())
    }
    fn tagged(&mut self, mut f: impl FnMut(u64, &[u8])) -> Result<(), String> {
        if self.pos == self.buf.len() {
            // Tolerate a missing tagged-field section at the very end.
            return Ok(());
        }
        let n = self.uvarint()?;
        for _ in 0..n {
            let tag = self.uvarint()?;
            let size = self.uvarint()?;
            let data = self.take(usize::try_from(size).map_err(|_| "tag too large")?)?;
            f(tag, data);
        }
        Ok(())
    }
    fn partitions(&mut self) -> Result<Partitions, String> {
        let n = self.compact_len()?;
        let mut out = Partitions::new();
        for _ in 0..n {
            let id = self.take(16)?;
            let mut b = [0u8; 16];
            b.copy_from_slice(id);
            let topic = Uuid::from_bytes(b);
            let m = self.compact_len()?;
            let set = out.entry(topic).or_default();
            for _ in 0..m {
                set.insert(self.i32()?);
            }
            self.tagged(|_, _| {})?;
        }
        out.retain(|_, s| !s.is_empty());
        Ok(out)
    }
}
