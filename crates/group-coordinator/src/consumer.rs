//! KIP-848 consumer groups: the `consumer` group protocol (ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe) with server-side assignment, modelled on Apache Kafka 4.1's
//! `GroupMetadataManager`, `ConsumerGroup`, `CurrentAssignmentBuilder` and
//! `TargetAssignmentBuilder`.
//!
//! Every state change is expressed as one of Kafka's consumer-group records
//! ([`records::GroupRecord`]) and applied through the same code path that [`ConsumerGroups::replay`]
//! uses, so replaying the records of a run rebuilds exactly the same groups.
//!
//! Flow of a heartbeat (epoch >= 0): validate; find or create the member (static members may
//! replace a member that left with epoch -2); write its subscription if it changed; resolve the
//! group's subscribed topics (names and regexes) against the [`crate::TopicView`] and bump the
//! group epoch when a subscription or the subscribed topics' metadata changed; recompute the
//! target assignment when the group epoch is ahead of the assignment epoch; reconcile the member
//! toward its target (revoke first, only take partitions no other member still owns).
//!
//! Timers (`tick`): session expiry (`consumer_session_timeout_ms` since the last heartbeat) and
//! rebalance timeouts (a member that does not revoke within its rebalance timeout) fence the
//! member and bump the group epoch.

pub mod assignor;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gregor_protocol::ErrorCode;
use kafka_protocol::messages::{
    consumer_group_describe_request::ConsumerGroupDescribeRequest,
    consumer_group_describe_response::{
        Assignment as DescribeAssignment, ConsumerGroupDescribeResponse, DescribedGroup,
        Member as DescribeMember, TopicPartitions as DescribeTopicPartitions,
    },
    consumer_group_heartbeat_request::{
        ConsumerGroupHeartbeatRequest, TopicPartitions as OwnedTopicPartitions,
    },
    consumer_group_heartbeat_response::{
        Assignment as HeartbeatAssignment, ConsumerGroupHeartbeatResponse,
        TopicPartitions as HeartbeatTopicPartitions,
    },
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use regex::Regex;
use uuid::Uuid;

use self::records::{CurrentAssignment, GroupRecord, MemberMetadata, Partitions};

const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// Compiled-regex size cap (bytes of program), against hostile patterns.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Regex cache entries kept before the cache is cleared.
const REGEX_CACHE_MAX: usize = 1024;

/// Group operations reported when `include_authorized_operations` is set (READ, DELETE,
/// DESCRIBE); Gregor has no ACLs for groups.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Kafka's `MemberState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum MemberState {
    #[default]
    Stable,
    UnrevokedPartitions,
    UnreleasedPartitions,
    Unknown,
}

impl MemberState {
    fn to_byte(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }
    fn from_byte(b: i8) -> Self {
        match b {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// A member: its subscription (member metadata record) and current assignment (current member
/// assignment record), plus soft timer state.
#[derive(Debug, Clone, Default)]
struct Member {
    meta: MemberMetadata,
    member_epoch: i32,
    previous_member_epoch: i32,
    state: MemberState,
    assigned: Partitions,
    pending_revocation: Partitions,
    /// Session expiry; `None` after replay until the first `tick`/heartbeat.
    session_deadline: Option<i64>,
    /// Rebalance (revocation) deadline and the member epoch it was set for.
    rebalance_deadline: Option<(i64, i32)>,
}

impl Member {
    fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }
    fn current(&self) -> CurrentAssignment {
        CurrentAssignment {
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            state: self.state.to_byte(),
            assigned: self.assigned.clone(),
            pending_revocation: self.pending_revocation.clone(),
        }
    }
}

#[derive(Debug, Default)]
struct Group {
    group_epoch: i32,
    metadata_hash: i64,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, Partitions>,
    /// instance id → member id.
    static_members: BTreeMap<String, String>,
    /// (topic, partition) → member that owns it (assigned or pending revocation).
    owners: HashMap<(Uuid, i32), String>,
    /// Regex → topics it matched at the last heartbeat.
    resolved_regex: BTreeMap<String, BTreeSet<String>>,
    /// Subscribed topic name → (id, partitions) at the last heartbeat.
    topic_cache: BTreeMap<String, (Uuid, i32)>,
    /// Loaded from `__consumer_offsets` and not refreshed since: its members' regexes count as
    /// already resolved (Kafka persists resolutions; Gregor re-resolves them at once).
    loaded_from_log: bool,
}

impl Group {
    fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    fn remove_owners(&mut self, member_id: &str) {
        let Some(m) = self.members.get(member_id) else {
            return;
        };
        for p in [&m.assigned, &m.pending_revocation] {
            for (t, parts) in p {
                for part in parts {
                    if self
                        .owners
                        .get(&(*t, *part))
                        .is_some_and(|o| o == member_id)
                    {
                        self.owners.remove(&(*t, *part));
                    }
                }
            }
        }
    }

    fn add_owners(&mut self, member_id: &str) {
        let Some(m) = self.members.get(member_id) else {
            return;
        };
        for p in [&m.assigned, &m.pending_revocation] {
            for (t, parts) in p {
                for part in parts {
                    if let Some(prev) = self.owners.insert((*t, *part), member_id.to_string()) {
                        if prev != member_id {
                            tracing::warn!(member_id, previous = %prev, topic = %t, partition = part,
                                "consumer group partition owned by two members");
                        }
                    }
                }
            }
        }
    }

    fn remove_member(&mut self, member_id: &str) {
        self.remove_owners(member_id);
        if let Some(m) = self.members.remove(member_id) {
            if let Some(iid) = m.meta.instance_id {
                if self
                    .static_members
                    .get(&iid)
                    .is_some_and(|id| id == member_id)
                {
                    self.static_members.remove(&iid);
                }
            }
        }
        // A regex nobody subscribes to any more is forgotten (Kafka deletes its resolution), so
        // subscribing to it again is resolved afresh, after the heartbeat that brings it.
        let still: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.meta.subscribed_topic_regex.as_ref())
            .collect();
        self.resolved_regex.retain(|re, _| still.contains(re));
    }

    /// Topic names the group subscribes to (names and cached regex resolutions).
    fn subscribed_names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(m.meta.subscribed_topic_names.iter().cloned());
            if let Some(re) = &m.meta.subscribed_topic_regex {
                if let Some(topics) = self.resolved_regex.get(re) {
                    out.extend(topics.iter().cloned());
                }
            }
        }
        out
    }

    /// Topic names one member subscribes to.
    fn member_topics(&self, meta: &MemberMetadata) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = meta.subscribed_topic_names.iter().cloned().collect();
        if let Some(re) = &meta.subscribed_topic_regex {
            if let Some(topics) = self.resolved_regex.get(re) {
                out.extend(topics.iter().cloned());
            }
        }
        out
    }

    /// Hash of the subscribed topics' metadata (ids and partition counts) from the cache.
    fn metadata_hash(&self) -> i64 {
        let names = self.subscribed_names();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut any = false;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for name in &names {
            if let Some((id, n)) = self.topic_cache.get(name) {
                any = true;
                feed(name.as_bytes());
                feed(&[0]);
                feed(id.as_bytes());
                feed(&n.to_be_bytes());
            }
        }
        if !any {
            0
        } else if h == 0 {
            1
        } else {
            h as i64
        }
    }

    /// Kafka's preferred server assignor: the one most members ask for.
    fn preferred_assignor(&self, default: &str) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.meta.server_assignor {
                *counts.entry(a.as_str()).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, c) in counts {
            if best.is_none_or(|(_, bc)| c > bc) {
                best = Some((name, c));
            }
        }
        best.map(|(n, _)| n.to_string())
            .unwrap_or_else(|| default.to_string())
    }
}

/// KIP-848 consumer groups.
#[derive(Debug)]
pub struct ConsumerGroups {
    groups: BTreeMap<String, Group>,
    heartbeat_interval_ms: i32,
    session_timeout_ms: i32,
    default_assignor: String,
    max_group_size: i32,
    regex_cache: HashMap<String, Regex>,
}

/// One consumer group for ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupListing {
    /// Group id.
    pub group_id: String,
    /// Empty|Assigning|Reconciling|Stable.
    pub state: &'static str,
}

/// The member a heartbeat works on.
enum Base {
    Existing(Box<Member>),
    New,
    /// A static member replacing the member (by id) that held its instance id.
    Replace(String),
}

fn error_response(code: ErrorCode, message: &str) -> ConsumerGroupHeartbeatResponse {
    let mut r = ConsumerGroupHeartbeatResponse::default();
    r.error_code = code.code();
    r.error_message = Some(StrBytes::from_string(message.to_string()));
    r
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn owned_partitions(owned: &[OwnedTopicPartitions]) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    owned
        .iter()
        .flat_map(|tp| tp.partitions.iter().map(move |p| (tp.topic_id, *p)))
}

/// Whether the member still reports owning any of `pending` (`None`: not reported, assume yes).
fn owns_revoked(owned: Option<&[OwnedTopicPartitions]>, pending: &Partitions) -> bool {
    match owned {
        None => true,
        Some(owned) => {
            owned_partitions(owned).any(|(t, p)| pending.get(&t).is_some_and(|s| s.contains(&p)))
        }
    }
}

fn is_subset(owned: Option<&[OwnedTopicPartitions]>, assigned: &Partitions) -> bool {
    let Some(owned) = owned else { return false };
    owned.iter().all(|tp| {
        assigned
            .get(&tp.topic_id)
            .is_some_and(|set| tp.partitions.iter().all(|p| set.contains(p)))
    })
}

/// Kafka's `Uuid.toString()`: URL-safe base64 without padding.
fn kafka_uuid_string(u: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = u.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn to_heartbeat_assignment(p: &Partitions) -> HeartbeatAssignment {
    let mut a = HeartbeatAssignment::default();
    a.topic_partitions = p
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(t, s)| {
            let mut tp = HeartbeatTopicPartitions::default();
            tp.topic_id = *t;
            tp.partitions = s.iter().copied().collect();
            tp
        })
        .collect();
    a
}

fn to_describe_assignment(p: &Partitions, topics: &dyn crate::TopicView) -> DescribeAssignment {
    let mut a = DescribeAssignment::default();
    a.topic_partitions = p
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .filter_map(|(t, s)| {
            let name = topics.topic_name(t)?;
            let mut tp = DescribeTopicPartitions::default();
            tp.topic_id = *t;
            tp.topic_name = TopicName(StrBytes::from_string(name));
            tp.partitions = s.iter().copied().collect();
            Some(tp)
        })
        .collect();
    a
}

/// The next state of a member per Kafka's `CurrentAssignmentBuilder`.
fn reconcile(
    member: &Member,
    target_epoch: i32,
    target: &Partitions,
    owned: Option<&[OwnedTopicPartitions]>,
    owners: &HashMap<(Uuid, i32), String>,
) -> Option<CurrentAssignment> {
    if member.is_reconciled_to(target_epoch) {
        return None;
    }
    let from_epoch = match member.state {
        MemberState::Stable => member.member_epoch,
        MemberState::UnrevokedPartitions => {
            if owns_revoked(owned, &member.pending_revocation) {
                return None;
            }
            member.member_epoch
        }
        MemberState::UnreleasedPartitions => member.member_epoch,
        MemberState::Unknown => target_epoch,
    };
    let mut assigned = Partitions::new();
    let mut revoke = Partitions::new();
    let mut to_assign: Vec<(Uuid, i32)> = Vec::new();
    let topics: BTreeSet<&Uuid> = target.keys().chain(member.assigned.keys()).collect();
    let empty = BTreeSet::new();
    for t in topics {
        let tgt = target.get(t).unwrap_or(&empty);
        let cur = member.assigned.get(t).unwrap_or(&empty);
        let keep: BTreeSet<i32> = cur.intersection(tgt).copied().collect();
        let rev: BTreeSet<i32> = cur.difference(tgt).copied().collect();
        if !keep.is_empty() {
            assigned.insert(*t, keep);
        }
        if !rev.is_empty() {
            revoke.insert(*t, rev);
        }
        to_assign.extend(tgt.difference(cur).map(|p| (*t, *p)));
    }
    let next = if !revoke.is_empty() && owns_revoked(owned, &revoke) {
        CurrentAssignment {
            member_epoch: from_epoch,
            previous_member_epoch: member.member_epoch,
            state: MemberState::UnrevokedPartitions.to_byte(),
            assigned,
            pending_revocation: revoke,
        }
    } else {
        let mut unreleased = false;
        for (t, p) in to_assign {
            if owners.contains_key(&(t, p)) {
                unreleased = true;
            } else {
                assigned.entry(t).or_default().insert(p);
            }
        }
        let state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        CurrentAssignment {
            member_epoch: target_epoch,
            previous_member_epoch: member.member_epoch,
            state: state.to_byte(),
            assigned,
            pending_revocation: Partitions::new(),
        }
    };
    if next == member.current() {
        None
    } else {
        Some(next)
    }
}

impl ConsumerGroups {
    /// No groups.
    pub fn new(config: &crate::GroupConfig) -> Self {
        let default_assignor = if assignor::is_supported(&config.consumer_default_assignor) {
            config.consumer_default_assignor.clone()
        } else {
            assignor::UNIFORM.to_string()
        };
        ConsumerGroups {
            groups: BTreeMap::new(),
            heartbeat_interval_ms: config.consumer_heartbeat_interval_ms,
            session_timeout_ms: config.consumer_session_timeout_ms,
            default_assignor,
            max_group_size: config.max_group_size,
            regex_cache: HashMap::new(),
        }
    }

    /// Whether the id is a consumer group.
    pub fn contains(&self, group_id: &str) -> bool {
        self.groups.contains_key(group_id)
    }

    /// Whether the group has no members (true for unknown groups).
    pub fn is_empty(&self, group_id: &str) -> bool {
        self.groups
            .get(group_id)
            .is_none_or(|g| g.members.is_empty())
    }

    /// All groups with their states.
    pub fn listings(&self) -> Vec<ConsumerGroupListing> {
        self.groups
            .iter()
            .map(|(id, g)| ConsumerGroupListing {
                group_id: id.clone(),
                state: g.state(),
            })
            .collect()
    }

    /// Topics the group subscribes to (names, plus regex matches as of the last heartbeat).
    pub fn subscribed_topics(&self, group_id: &str) -> Option<BTreeSet<String>> {
        self.groups.get(group_id).map(Group::subscribed_names)
    }

    /// Applies one typed record to the state (request path and replay path alike).
    fn apply(&mut self, rec: &GroupRecord) {
        match rec {
            GroupRecord::Ignored => {}
            GroupRecord::GroupMetadata {
                group_id,
                value: Some((epoch, hash)),
            } => {
                let g = self.groups.entry(group_id.clone()).or_default();
                g.group_epoch = *epoch;
                g.metadata_hash = *hash;
            }
            GroupRecord::GroupMetadata {
                group_id,
                value: None,
            } => {
                self.groups.remove(group_id);
            }
            GroupRecord::MemberMetadata {
                group_id,
                member_id,
                value: Some(meta),
            } => {
                let g = self.groups.entry(group_id.clone()).or_default();
                let m = g.members.entry(member_id.clone()).or_default();
                let old_instance = m.meta.instance_id.take();
                m.meta = meta.clone();
                if let Some(old) = old_instance {
                    if meta.instance_id.as_ref() != Some(&old)
                        && g.static_members.get(&old).is_some_and(|id| id == member_id)
                    {
                        g.static_members.remove(&old);
                    }
                }
                if let Some(iid) = &meta.instance_id {
                    g.static_members.insert(iid.clone(), member_id.clone());
                }
            }
            GroupRecord::MemberMetadata {
                group_id,
                member_id,
                value: None,
            } => {
                if let Some(g) = self.groups.get_mut(group_id) {
                    g.remove_member(member_id);
                }
            }
            GroupRecord::TargetMetadata { group_id, value } => match value {
                Some(epoch) => {
                    self.groups
                        .entry(group_id.clone())
                        .or_default()
                        .assignment_epoch = *epoch
                }
                None => {
                    if let Some(g) = self.groups.get_mut(group_id) {
                        g.assignment_epoch = -1;
                    }
                }
            },
            GroupRecord::TargetMember {
                group_id,
                member_id,
                value,
            } => match value {
                Some(p) => {
                    self.groups
                        .entry(group_id.clone())
                        .or_default()
                        .target
                        .insert(member_id.clone(), p.clone());
                }
                None => {
                    if let Some(g) = self.groups.get_mut(group_id) {
                        g.target.remove(member_id);
                    }
                }
            },
            GroupRecord::CurrentAssignment {
                group_id,
                member_id,
                value,
            } => {
                let g = match value {
                    Some(_) => self.groups.entry(group_id.clone()).or_default(),
                    None => match self.groups.get_mut(group_id) {
                        Some(g) => g,
                        None => return,
                    },
                };
                if value.is_none() && !g.members.contains_key(member_id) {
                    return;
                }
                g.remove_owners(member_id);
                let m = g.members.entry(member_id.clone()).or_default();
                match value {
                    Some(c) => {
                        m.member_epoch = c.member_epoch;
                        m.previous_member_epoch = c.previous_member_epoch;
                        m.state = MemberState::from_byte(c.state);
                        m.assigned = c.assigned.clone();
                        m.pending_revocation = c.pending_revocation.clone();
                    }
                    None => {
                        m.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                        m.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                        m.state = MemberState::Stable;
                        m.assigned.clear();
                        m.pending_revocation.clear();
                    }
                }
                g.add_owners(member_id);
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<GroupRecord>, rec: GroupRecord) {
        self.apply(&rec);
        out.push(rec);
    }

    /// Replays a record if its key version is one of Kafka's consumer-group record types;
    /// `Ok(false)` if not its record.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<bool, crate::ReplayError> {
        match GroupRecord::decode(key, value) {
            Ok(None) => Ok(false),
            Ok(Some(rec)) => {
                self.apply(&rec);
                if let Some(g) = self.groups.get_mut(rec.group_id()) {
                    g.loaded_from_log = true;
                }
                Ok(true)
            }
            Err(e) => Err(crate::ReplayError(e)),
        }
    }

    /// Tombstones for every record of the group, and the group removed.
    pub fn delete(&mut self, group_id: &str) -> Vec<crate::Record> {
        let Some(g) = self.groups.get(group_id) else {
            return Vec::new();
        };
        let members: Vec<String> = g.members.keys().cloned().collect();
        let targets: Vec<String> = g.target.keys().cloned().collect();
        let gid = group_id.to_string();
        let mut out = Vec::new();
        for m in &members {
            self.emit(
                &mut out,
                GroupRecord::CurrentAssignment {
                    group_id: gid.clone(),
                    member_id: m.clone(),
                    value: None,
                },
            );
        }
        for m in &targets {
            self.emit(
                &mut out,
                GroupRecord::TargetMember {
                    group_id: gid.clone(),
                    member_id: m.clone(),
                    value: None,
                },
            );
        }
        self.emit(
            &mut out,
            GroupRecord::TargetMetadata {
                group_id: gid.clone(),
                value: None,
            },
        );
        for m in &members {
            self.emit(
                &mut out,
                GroupRecord::MemberMetadata {
                    group_id: gid.clone(),
                    member_id: m.clone(),
                    value: None,
                },
            );
        }
        self.emit(
            &mut out,
            GroupRecord::GroupMetadata {
                group_id: gid,
                value: None,
            },
        );
        self.groups.remove(group_id);
        out.iter().map(GroupRecord::encode).collect()
    }

    /// OffsetCommit by a KIP-848 member: the member must exist and send its current epoch
    /// (epoch < 0 with no members: admin commits).
    pub fn validate_offset_commit(
        &self,
        group_id: &str,
        member_id: &str,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        let Some(g) = self.groups.get(group_id) else {
            return if member_epoch < 0 {
                Ok(())
            } else {
                Err(ErrorCode::UnknownMemberId)
            };
        };
        if member_epoch < 0 && g.members.is_empty() {
            return Ok(());
        }
        let m = g.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        if m.member_epoch != member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// OffsetFetch by a KIP-848 member (no member id and epoch < 0: admin fetches).
    pub fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let m = member_id
            .and_then(|id| self.groups.get(group_id).and_then(|g| g.members.get(id)))
            .ok_or(ErrorCode::UnknownMemberId)?;
        if m.member_epoch != member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// ConsumerGroupDescribe (v0–v1); GROUP_ID_NOT_FOUND for ids that are not consumer groups.
    pub fn describe(
        &self,
        version: i16,
        req: &ConsumerGroupDescribeRequest,
        topics: &dyn crate::TopicView,
    ) -> ConsumerGroupDescribeResponse {
        let mut resp = ConsumerGroupDescribeResponse::default();
        for gid in &req.group_ids {
            let mut d = DescribedGroup::default();
            d.group_id = gid.clone();
            let Some(g) = self.groups.get(gid.0.as_str()) else {
                d.error_code = ErrorCode::GroupIdNotFound.code();
                d.error_message = Some(StrBytes::from_string(format!(
                    "Group {} not found.",
                    gid.0.as_str()
                )));
                resp.groups.push(d);
                continue;
            };
            d.group_state = StrBytes::from_static_str(g.state());
            d.group_epoch = g.group_epoch;
            d.assignment_epoch = g.assignment_epoch;
            d.assignor_name = StrBytes::from_string(g.preferred_assignor(&self.default_assignor));
            if req.include_authorized_operations {
                d.authorized_operations = GROUP_AUTHORIZED_OPERATIONS;
            }
            let empty = Partitions::new();
            for (id, m) in &g.members {
                let mut dm = DescribeMember::default();
                dm.member_id = StrBytes::from_string(id.clone());
                dm.instance_id = m.meta.instance_id.clone().map(StrBytes::from_string);
                dm.rack_id = m.meta.rack_id.clone().map(StrBytes::from_string);
                dm.member_epoch = m.member_epoch;
                dm.client_id = StrBytes::from_string(m.meta.client_id.clone());
                dm.client_host = StrBytes::from_string(m.meta.client_host.clone());
                dm.subscribed_topic_names = m
                    .meta
                    .subscribed_topic_names
                    .iter()
                    .map(|t| TopicName(StrBytes::from_string(t.clone())))
                    .collect();
                dm.subscribed_topic_regex = m
                    .meta
                    .subscribed_topic_regex
                    .clone()
                    .map(StrBytes::from_string);
                dm.assignment = to_describe_assignment(&m.assigned, topics);
                dm.target_assignment =
                    to_describe_assignment(g.target.get(id).unwrap_or(&empty), topics);
                if version >= 1 {
                    dm.member_type = 1;
                }
                d.members.push(dm);
            }
            resp.groups.push(d);
        }
        resp
    }

    fn compile_regex(&mut self, re: &str) -> Result<Regex, ()> {
        if let Some(r) = self.regex_cache.get(re) {
            return Ok(r.clone());
        }
        regex::RegexBuilder::new(re)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|_| ())?;
        let anchored = regex::RegexBuilder::new(&format!("^(?:{re})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|_| ())?;
        if self.regex_cache.len() >= REGEX_CACHE_MAX {
            self.regex_cache.clear();
        }
        self.regex_cache.insert(re.to_string(), anchored.clone());
        Ok(anchored)
    }

    /// Static request checks (Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`).
    fn validate(
        &mut self,
        version: i16,
        req: &ConsumerGroupHeartbeatRequest,
    ) -> Result<(), (ErrorCode, &'static str)> {
        let epoch = req.member_epoch;
        if (version >= 1 || epoch > 0 || epoch == LEAVE_GROUP_MEMBER_EPOCH)
            && is_blank(&req.member_id)
        {
            return Err((ErrorCode::InvalidRequest, "MemberId can't be empty."));
        }
        let too_long = |x: &str| x.len() > i16::MAX as usize;
        if too_long(&req.group_id.0)
            || too_long(&req.member_id)
            || req.instance_id.as_deref().is_some_and(too_long)
        {
            // Kafka's record keys hold these as INT16-length strings.
            return Err((
                ErrorCode::InvalidRequest,
                "GroupId, MemberId and InstanceId must be at most 32767 bytes.",
            ));
        }
        if is_blank(&req.group_id.0) {
            return Err((ErrorCode::InvalidRequest, "GroupId can't be empty."));
        }
        if req.instance_id.as_ref().is_some_and(|s| is_blank(s)) {
            return Err((ErrorCode::InvalidRequest, "InstanceId can't be empty."));
        }
        if req.rack_id.as_ref().is_some_and(|s| is_blank(s)) {
            return Err((ErrorCode::InvalidRequest, "RackId can't be empty."));
        }
        if epoch == 0 {
            if req.rebalance_timeout_ms == -1 {
                return Err((
                    ErrorCode::InvalidRequest,
                    "RebalanceTimeoutMs must be provided in first request.",
                ));
            }
            if req
                .topic_partitions
                .as_ref()
                .is_none_or(|tp| !tp.is_empty())
            {
                return Err((
                    ErrorCode::InvalidRequest,
                    "TopicPartitions must be empty when (re-)joining.",
                ));
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return Err((
                    ErrorCode::InvalidRequest,
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                ));
            }
        } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            if req.instance_id.is_none() {
                return Err((ErrorCode::InvalidRequest, "InstanceId can't be null."));
            }
        } else if epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return Err((ErrorCode::InvalidRequest, "MemberEpoch is invalid."));
        }
        if let Some(a) = &req.server_assignor {
            if !assignor::is_supported(a) {
                return Err((
                    ErrorCode::UnsupportedAssignor,
                    "ServerAssignor is not supported. Supported assignors: uniform, range.",
                ));
            }
        }
        if epoch >= 0 {
            if let Some(re) = &req.subscribed_topic_regex {
                if !re.is_empty() && self.compile_regex(re).is_err() {
                    return Err((
                        ErrorCode::InvalidRegularExpression,
                        "SubscribedTopicRegex is not a valid regular expression.",
                    ));
                }
            }
        }
        Ok(())
    }

    /// ConsumerGroupHeartbeat (v0–v1). A v0 join without a member id gets one from `ids`.
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        version: i16,
        client: &crate::ClientInfo,
        req: ConsumerGroupHeartbeatRequest,
        topics: &dyn crate::TopicView,
        ids: &mut dyn crate::IdGenerator,
    ) -> (Vec<crate::Record>, ConsumerGroupHeartbeatResponse) {
        if let Err((code, msg)) = self.validate(version, &req) {
            return (Vec::new(), error_response(code, msg));
        }
        let mut out = Vec::new();
        let result = if req.member_epoch < 0 {
            self.leave(&req, &mut out)
        } else {
            self.regular_heartbeat(now_ms, client, req, topics, ids, &mut out)
        };
        let records = out.iter().map(GroupRecord::encode).collect();
        match result {
            Ok(resp) => (records, resp),
            Err((code, msg)) => (records, error_response(code, &msg)),
        }
    }

    fn leave(
        &mut self,
        req: &ConsumerGroupHeartbeatRequest,
        out: &mut Vec<GroupRecord>,
    ) -> Result<ConsumerGroupHeartbeatResponse, (ErrorCode, String)> {
        let gid = req.group_id.0.to_string();
        let member_id = req.member_id.to_string();
        let g = self.groups.get(&gid).ok_or_else(|| {
            (
                ErrorCode::GroupIdNotFound,
                format!("Consumer group {gid} not found."),
            )
        })?;
        let mut resp = ConsumerGroupHeartbeatResponse::default();
        resp.member_id = Some(req.member_id.clone());
        resp.member_epoch = req.member_epoch;
        match &req.instance_id {
            None => {
                if !g.members.contains_key(&member_id) {
                    return Err((
                        ErrorCode::UnknownMemberId,
                        format!("Member {member_id} is not a member of group {gid}."),
                    ));
                }
                self.fence_member(&gid, &member_id, out);
            }
            Some(iid) => {
                let iid = iid.to_string();
                let owner = g.static_members.get(&iid).cloned().ok_or_else(|| {
                    (
                        ErrorCode::UnknownMemberId,
                        format!("Instance id {iid} is unknown."),
                    )
                })?;
                if owner != member_id {
                    return Err((
                        ErrorCode::FencedInstanceId,
                        format!("Static member {member_id} with instance id {iid} was fenced by member {owner}."),
                    ));
                }
                if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    let Some(m) = g.members.get(&member_id) else {
                        return Err((
                            ErrorCode::UnknownMemberId,
                            format!("Instance id {iid} is unknown."),
                        ));
                    };
                    let mut c = m.current();
                    c.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    c.pending_revocation.clear();
                    self.emit(
                        out,
                        GroupRecord::CurrentAssignment {
                            group_id: gid.clone(),
                            member_id: member_id.clone(),
                            value: Some(c),
                        },
                    );
                    if let Some(m) = self
                        .groups
                        .get_mut(&gid)
                        .and_then(|g| g.members.get_mut(&member_id))
                    {
                        m.rebalance_deadline = None;
                    }
                } else {
                    self.fence_member(&gid, &member_id, out);
                }
            }
        }
        Ok(resp)
    }

    /// Removes a member (tombstones) and bumps the group epoch.
    fn fence_member(&mut self, gid: &str, member_id: &str, out: &mut Vec<GroupRecord>) {
        let g_id = gid.to_string();
        let m_id = member_id.to_string();
        self.emit(
            out,
            GroupRecord::CurrentAssignment {
                group_id: g_id.clone(),
                member_id: m_id.clone(),
                value: None,
            },
        );
        self.emit(
            out,
            GroupRecord::TargetMember {
                group_id: g_id.clone(),
                member_id: m_id.clone(),
                value: None,
            },
        );
        self.emit(
            out,
            GroupRecord::MemberMetadata {
                group_id: g_id.clone(),
                member_id: m_id,
                value: None,
            },
        );
        let Some(g) = self.groups.get(gid) else {
            return;
        };
        let epoch = g.group_epoch.saturating_add(1);
        let hash = g.metadata_hash();
        let now_empty = g.members.is_empty();
        self.emit(
            out,
            GroupRecord::GroupMetadata {
                group_id: g_id.clone(),
                value: Some((epoch, hash)),
            },
        );
        if now_empty {
            // The assignment epoch catches up so that an empty group is not "assigning".
            self.emit(
                out,
                GroupRecord::TargetMetadata {
                    group_id: g_id,
                    value: Some(epoch),
                },
            );
        }
    }

    /// Refreshes the group's resolved regexes and subscribed-topic cache from the cluster.
    fn refresh_topics(&mut self, gid: &str, topics: &dyn crate::TopicView) {
        let Some(g) = self.groups.get(gid) else {
            return;
        };
        let regexes: BTreeSet<String> = g
            .members
            .values()
            .filter_map(|m| m.meta.subscribed_topic_regex.clone())
            .filter(|r| !r.is_empty())
            .collect();
        let loaded = g.loaded_from_log;
        let known: BTreeSet<String> = g.resolved_regex.keys().cloned().collect();
        let mut resolved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut cache: BTreeMap<String, (Uuid, i32)> = BTreeMap::new();
        if !regexes.is_empty() {
            let all = topics.all_topics();
            for re in &regexes {
                // Kafka resolves a regex new to the group asynchronously: the heartbeat that
                // brings it is answered with the literal topics only, and the matched topics
                // arrive (with a group epoch bump) at a later heartbeat. Clients rely on that
                // (librdkafka 0045). A regex seen at the previous refresh is resolved now.
                if !loaded && !known.contains(re) {
                    resolved.insert(re.clone(), BTreeSet::new());
                    continue;
                }
                let Ok(compiled) = self.compile_regex(re) else {
                    resolved.insert(re.clone(), BTreeSet::new());
                    continue;
                };
                let mut set = BTreeSet::new();
                for (name, id, n) in &all {
                    if compiled.is_match(name) {
                        set.insert(name.clone());
                        cache.insert(name.clone(), (*id, *n));
                    }
                }
                resolved.insert(re.clone(), set);
            }
        }
        let Some(g) = self.groups.get_mut(gid) else {
            return;
        };
        let names: BTreeSet<String> = g
            .members
            .values()
            .flat_map(|m| m.meta.subscribed_topic_names.iter().cloned())
            .collect();
        for name in names {
            if cache.contains_key(&name) {
                continue;
            }
            if let (Some(n), Some(id)) = (topics.partition_count(&name), topics.topic_id(&name)) {
                cache.insert(name, (id, n));
            }
        }
        g.resolved_regex = resolved;
        g.topic_cache = cache;
        g.loaded_from_log = false;
    }

    /// Recomputes the target assignment at the group epoch.
    fn update_target(&mut self, gid: &str, out: &mut Vec<GroupRecord>) {
        let Some(g) = self.groups.get(gid) else {
            return;
        };
        let assignor_name = g.preferred_assignor(&self.default_assignor);
        let mut topic_order: Vec<(&String, Uuid, i32)> = g
            .topic_cache
            .iter()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(name, (id, n))| (name, *id, *n))
            .collect();
        topic_order.sort();
        let mut spec = assignor::GroupSpec {
            members: BTreeMap::new(),
            topics: topic_order.iter().map(|(_, id, n)| (*id, *n)).collect(),
        };
        for (id, m) in &g.members {
            let names = g.member_topics(&m.meta);
            let topics: BTreeSet<Uuid> = names
                .iter()
                .filter_map(|n| g.topic_cache.get(n))
                .filter(|(_, c)| *c > 0)
                .map(|(id, _)| *id)
                .collect();
            spec.members.insert(
                id.clone(),
                assignor::MemberSpec {
                    topics,
                    previous: g.target.get(id).cloned().unwrap_or_default(),
                },
            );
        }
        let result = assignor::assign(&assignor_name, &spec);
        let epoch = g.group_epoch;
        let mut changes = Vec::new();
        for (id, p) in result {
            if g.target.get(&id) != Some(&p) {
                changes.push(GroupRecord::TargetMember {
                    group_id: gid.to_string(),
                    member_id: id,
                    value: Some(p),
                });
            }
        }
        for rec in changes {
            self.emit(out, rec);
        }
        self.emit(
            out,
            GroupRecord::TargetMetadata {
                group_id: gid.to_string(),
                value: Some(epoch),
            },
        );
    }

    fn regular_heartbeat(
        &mut self,
        now_ms: i64,
        client: &crate::ClientInfo,
        req: ConsumerGroupHeartbeatRequest,
        topics: &dyn crate::TopicView,
        ids: &mut dyn crate::IdGenerator,
        out: &mut Vec<GroupRecord>,
    ) -> Result<ConsumerGroupHeartbeatResponse, (ErrorCode, String)> {
        let gid = req.group_id.0.to_string();
        let epoch = req.member_epoch;
        let owned = req.topic_partitions.as_deref();
        let group = self.groups.get(&gid);
        if group.is_none() && epoch != 0 {
            return Err((
                ErrorCode::GroupIdNotFound,
                format!("Consumer group {gid} not found."),
            ));
        }
        let mut member_id = req.member_id.to_string();
        if let Some(g) = group {
            let max = usize::try_from(self.max_group_size.max(0)).unwrap_or(usize::MAX);
            if g.members.len() >= max
                && (member_id.is_empty() || !g.members.contains_key(&member_id))
            {
                return Err((
                    ErrorCode::GroupMaxSizeReached,
                    format!(
                        "The consumer group has reached its maximum capacity of {max} members."
                    ),
                ));
            }
        }
        if member_id.is_empty() {
            member_id = kafka_uuid_string(ids.next_uuid());
        }
        let check_epoch = |m: &Member| -> Result<(), (ErrorCode, String)> {
            if epoch == 0 {
                // KAFKA-19233: a fenced member may rejoin with epoch 0 and its member id.
                return Ok(());
            }
            if epoch > m.member_epoch
                || (epoch < m.member_epoch
                    && (epoch != m.previous_member_epoch || !is_subset(owned, &m.assigned)))
            {
                return Err((
                    ErrorCode::FencedMemberEpoch,
                    format!(
                        "The consumer group member has a member epoch ({epoch}) that does not match the one known by \
                         the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                        m.member_epoch
                    ),
                ));
            }
            Ok(())
        };
        let unknown = || {
            (
                ErrorCode::UnknownMemberId,
                format!(
                    "Member {} is not a member of group {gid}.",
                    req.member_id.as_str()
                ),
            )
        };
        let base = match (&req.instance_id, group) {
            (_, None) => Base::New,
            (None, Some(g)) => match g.members.get(&member_id) {
                Some(m) => {
                    check_epoch(m)?;
                    Base::Existing(Box::new(m.clone()))
                }
                None if epoch == 0 => Base::New,
                None => return Err(unknown()),
            },
            (Some(iid), Some(g)) => {
                let iid = iid.to_string();
                let existing = g
                    .static_members
                    .get(&iid)
                    .and_then(|id| g.members.get(id).map(|m| (id, m)));
                if epoch == 0 {
                    match existing {
                        None => match g.members.get(&member_id) {
                            Some(m) => Base::Existing(Box::new(m.clone())),
                            None => Base::New,
                        },
                        Some((id, m)) if *id == member_id => Base::Existing(Box::new(m.clone())),
                        Some((id, m)) => {
                            if m.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                                return Err((
                                    ErrorCode::UnreleasedInstanceId,
                                    format!(
                                        "Static member {member_id} with instance id {iid} cannot join the group because \
                                         the instance id is owned by {id} member."
                                    ),
                                ));
                            }
                            if g.members.contains_key(&member_id) {
                                return Err((
                                    ErrorCode::InvalidRequest,
                                    format!(
                                        "Member id {member_id} is already used by another member."
                                    ),
                                ));
                            }
                            Base::Replace(id.clone())
                        }
                    }
                } else {
                    match existing {
                        None => return Err((ErrorCode::UnknownMemberId, format!("Instance id {iid} is unknown."))),
                        Some((id, _)) if *id != member_id => {
                            return Err((
                                ErrorCode::FencedInstanceId,
                                format!("Static member {member_id} with instance id {iid} was fenced by member {id}."),
                            ))
                        }
                        Some((_, m)) => {
                            check_epoch(m)?;
                            Base::Existing(Box::new(m.clone()))
                        }
                    }
                }
            }
        };
        if let Base::Existing(m) = &base {
            if m.state == MemberState::Unknown && owned.is_none_or(|o| !o.is_empty()) {
                return Err((
                    ErrorCode::FencedMemberEpoch,
                    "The consumer group member is in a unknown state. The member must abandon all its partitions and \
                     rejoin."
                        .to_string(),
                ));
            }
        }
        // --- No errors past this point: state changes start. ---
        let new_group = group.is_none();
        let group_epoch_was_zero = group.is_none_or(|g| g.group_epoch == 0);
        // The member before this request (for a replaced static member: the copy under the new id).
        let (before, old_meta): (Member, Option<MemberMetadata>) = match &base {
            Base::Existing(m) => ((**m).clone(), Some(m.meta.clone())),
            Base::New => (Member::default(), None),
            Base::Replace(old_id) => {
                let g = self.groups.get(&gid);
                let old = g
                    .and_then(|g| g.members.get(old_id))
                    .cloned()
                    .unwrap_or_default();
                let old_target = g
                    .and_then(|g| g.target.get(old_id))
                    .cloned()
                    .unwrap_or_default();
                let old_meta = old.meta.clone();
                self.emit(
                    out,
                    GroupRecord::CurrentAssignment {
                        group_id: gid.clone(),
                        member_id: old_id.clone(),
                        value: None,
                    },
                );
                self.emit(
                    out,
                    GroupRecord::TargetMember {
                        group_id: gid.clone(),
                        member_id: old_id.clone(),
                        value: None,
                    },
                );
                self.emit(
                    out,
                    GroupRecord::MemberMetadata {
                        group_id: gid.clone(),
                        member_id: old_id.clone(),
                        value: None,
                    },
                );
                self.emit(
                    out,
                    GroupRecord::MemberMetadata {
                        group_id: gid.clone(),
                        member_id: member_id.clone(),
                        value: Some(old_meta.clone()),
                    },
                );
                self.emit(
                    out,
                    GroupRecord::TargetMember {
                        group_id: gid.clone(),
                        member_id: member_id.clone(),
                        value: Some(old_target),
                    },
                );
                let mut copy = old.clone();
                copy.member_epoch = 0;
                copy.previous_member_epoch = 0;
                copy.pending_revocation.clear();
                copy.session_deadline = None;
                copy.rebalance_deadline = None;
                self.emit(
                    out,
                    GroupRecord::CurrentAssignment {
                        group_id: gid.clone(),
                        member_id: member_id.clone(),
                        value: Some(copy.current()),
                    },
                );
                (copy, Some(old_meta))
            }
        };
        // 1. Member subscription.
        let mut meta = old_meta.clone().unwrap_or(MemberMetadata {
            rebalance_timeout_ms: -1,
            ..Default::default()
        });
        if let Some(iid) = &req.instance_id {
            meta.instance_id = Some(iid.to_string());
        }
        if let Some(rack) = &req.rack_id {
            meta.rack_id = Some(rack.to_string());
        }
        meta.client_id = client.client_id.clone();
        meta.client_host = client.client_host.clone();
        if req.rebalance_timeout_ms != -1 {
            meta.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(a) = &req.server_assignor {
            meta.server_assignor = Some(a.to_string());
        }
        if let Some(names) = &req.subscribed_topic_names {
            let set: BTreeSet<String> = names
                .iter()
                .map(|n| n.0.to_string())
                .filter(|n| !n.is_empty())
                .collect();
            meta.subscribed_topic_names = set.into_iter().collect();
        }
        if let Some(re) = &req.subscribed_topic_regex {
            meta.subscribed_topic_regex = if re.is_empty() {
                None
            } else {
                Some(re.to_string())
            };
        }
        let mut bump = new_group || group_epoch_was_zero;
        if old_meta.as_ref() != Some(&meta) {
            if let Some(old) = &old_meta {
                if old.subscribed_topic_names != meta.subscribed_topic_names
                    || old.subscribed_topic_regex != meta.subscribed_topic_regex
                {
                    bump = true;
                }
            } else if !meta.subscribed_topic_names.is_empty()
                || meta.subscribed_topic_regex.is_some()
            {
                bump = true;
            }
            self.emit(
                out,
                GroupRecord::MemberMetadata {
                    group_id: gid.clone(),
                    member_id: member_id.clone(),
                    value: Some(meta.clone()),
                },
            );
        }
        // Subscribed topics' metadata.
        self.refresh_topics(&gid, topics);
        let (group_epoch, assignment_epoch, hash, stored_hash) = match self.groups.get(&gid) {
            Some(g) => (
                g.group_epoch,
                g.assignment_epoch,
                g.metadata_hash(),
                g.metadata_hash,
            ),
            None => {
                return Err((
                    ErrorCode::GroupIdNotFound,
                    format!("Consumer group {gid} not found."),
                ))
            }
        };
        if hash != stored_hash {
            bump = true;
        }
        let mut group_epoch = group_epoch;
        if bump {
            group_epoch = group_epoch.saturating_add(1);
            self.emit(
                out,
                GroupRecord::GroupMetadata {
                    group_id: gid.clone(),
                    value: Some((group_epoch, hash)),
                },
            );
        }
        // 2. Target assignment.
        if group_epoch > assignment_epoch {
            self.update_target(&gid, out);
        }
        // 3. Reconciliation.
        let next = {
            let Some(g) = self.groups.get(&gid) else {
                return Err((
                    ErrorCode::GroupIdNotFound,
                    format!("Consumer group {gid} not found."),
                ));
            };
            let Some(m) = g.members.get(&member_id) else {
                return Err(unknown());
            };
            let empty = Partitions::new();
            let target = g.target.get(&member_id).unwrap_or(&empty);
            reconcile(m, g.assignment_epoch, target, owned, &g.owners)
        };
        if let Some(next) = next {
            let unrevoked = next.state == MemberState::UnrevokedPartitions.to_byte();
            let next_epoch = next.member_epoch;
            self.emit(
                out,
                GroupRecord::CurrentAssignment {
                    group_id: gid.clone(),
                    member_id: member_id.clone(),
                    value: Some(next),
                },
            );
            if let Some(m) = self
                .groups
                .get_mut(&gid)
                .and_then(|g| g.members.get_mut(&member_id))
            {
                m.rebalance_deadline = if unrevoked {
                    Some((
                        now_ms.saturating_add(i64::from(m.meta.rebalance_timeout_ms.max(0))),
                        next_epoch,
                    ))
                } else {
                    None
                };
            }
        }
        // A group's own configs (IncrementalAlterConfigs on the GROUP resource) win over the
        // coordinator's defaults.
        let group_int = |key: &str, default: i32| {
            topics
                .group_config(&gid, key)
                .and_then(|v| v.trim().parse::<i32>().ok())
                .unwrap_or(default)
        };
        let session_timeout =
            i64::from(group_int("consumer.session.timeout.ms", self.session_timeout_ms).max(0));
        let heartbeat_interval =
            group_int("consumer.heartbeat.interval.ms", self.heartbeat_interval_ms);
        let Some(m) = self
            .groups
            .get_mut(&gid)
            .and_then(|g| g.members.get_mut(&member_id))
        else {
            return Err(unknown());
        };
        m.session_deadline = Some(now_ms.saturating_add(session_timeout));
        let mut resp = ConsumerGroupHeartbeatResponse::default();
        resp.member_id = Some(StrBytes::from_string(member_id.clone()));
        resp.member_epoch = m.member_epoch;
        resp.heartbeat_interval_ms = heartbeat_interval;
        let full_request = epoch == 0
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.topic_partitions.is_some());
        if full_request || before.assigned != m.assigned {
            resp.assignment = Some(to_heartbeat_assignment(&m.assigned));
        }
        Ok(resp)
    }

    /// Fires due timers: session expiry and rebalance (revocation) timeouts fence members.
    pub fn tick(&mut self, now_ms: i64) -> Vec<crate::Record> {
        let session_timeout = i64::from(self.session_timeout_ms.max(0));
        let mut to_fence: Vec<(String, String)> = Vec::new();
        for (gid, g) in self.groups.iter_mut() {
            for (mid, m) in g.members.iter_mut() {
                let deadline = *m
                    .session_deadline
                    .get_or_insert(now_ms.saturating_add(session_timeout));
                if m.state == MemberState::UnrevokedPartitions && m.rebalance_deadline.is_none() {
                    m.rebalance_deadline = Some((
                        now_ms.saturating_add(i64::from(m.meta.rebalance_timeout_ms.max(0))),
                        m.member_epoch,
                    ));
                }
                let rebalance_expired = m.rebalance_deadline.is_some_and(|(d, e)| {
                    d <= now_ms
                        && m.state == MemberState::UnrevokedPartitions
                        && m.member_epoch == e
                });
                if deadline <= now_ms || rebalance_expired {
                    to_fence.push((gid.clone(), mid.clone()));
                }
            }
        }
        let mut out = Vec::new();
        for (gid, mid) in to_fence {
            tracing::info!(group_id = %gid, member_id = %mid, "consumer group member expired");
            self.fence_member(&gid, &mid, &mut out);
        }
        out.iter().map(GroupRecord::encode).collect()
    }

    /// Earliest time `tick` has something to do (`Some(0)` right after replay: members need
    /// session deadlines).
    pub fn next_deadline(&self) -> Option<i64> {
        let mut best: Option<i64> = None;
        for g in self.groups.values() {
            for m in g.members.values() {
                let session = m.session_deadline.unwrap_or(0);
                best = Some(best.map_or(session, |b| b.min(session)));
                if m.state == MemberState::UnrevokedPartitions {
                    let d = m.rebalance_deadline.map_or(0, |(d, _)| d);
                    best = Some(best.map_or(d, |b| b.min(d)));
                }
            }
        }
        best
    }
}
