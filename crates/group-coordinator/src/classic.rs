//! Classic consumer groups (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), following Kafka 4.1's
//! `ClassicGroup` and the `classicGroup*` handlers of `GroupMetadataManager`.
//!
//! # States and transitions
//!
//! ```text
//!            join (first member)                 all members joined / rebalance timeout
//!   Empty ────────────────────────▶ PreparingRebalance ─────────────────────▶ CompletingRebalance
//!     ▲        (initial delay)            ▲   │ (no member left)                 │        │
//!     │                                   │   └──────────────▶ Empty              │ leader │
//!     │                                   │                                       │  sync  ▼
//!     │                  member join/leave/expiry, leader rejoin,          Stable ◀────────┘
//!     │                  metadata change, pending-sync timeout ◀──────────────────┘
//!     └── (groups are removed when deleted or expired: "Dead" is only reported, never stored)
//! ```
//!
//! - **Empty**: no members (possibly offsets only, or pending members that were sent
//!   MEMBER_ID_REQUIRED). A join starts PreparingRebalance with the *initial delay*
//!   (`group.initial.rebalance.delay.ms`), extended by another delay whenever a new member
//!   joins meanwhile, up to the rebalance timeout (Kafka's `InitialDelayedJoin`).
//! - **PreparingRebalance**: waits until every member (and every pending member) has sent
//!   JoinGroup, or the rebalance timeout (max of the members' rebalance timeouts); dynamic
//!   members that did not rejoin are then removed. Completion bumps the generation, selects
//!   the protocol by vote, keeps the leader if it rejoined (else the first rejoined member),
//!   answers every JoinGroup (only the leader gets the member list) → CompletingRebalance, or
//!   → Empty if nobody is left (persisting the group).
//! - **CompletingRebalance**: waits for the leader's SyncGroup; its assignment is persisted
//!   and sent to every waiting member → Stable. Members that do not sync within the rebalance
//!   timeout are removed and a rebalance starts.
//! - **Stable**: heartbeats; any membership change starts PreparingRebalance.
//!
//! Every deferred JoinGroup/SyncGroup is answered exactly once through [`crate::Output`].

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::{
    describe_groups_response::{DescribedGroup, DescribedGroupMember},
    heartbeat_request::HeartbeatRequest,
    heartbeat_response::HeartbeatResponse,
    join_group_request::JoinGroupRequest,
    join_group_response::{JoinGroupResponse, JoinGroupResponseMember},
    leave_group_request::{LeaveGroupRequest, MemberIdentity},
    leave_group_response::{LeaveGroupResponse, MemberResponse},
    sync_group_request::SyncGroupRequest,
    sync_group_response::SyncGroupResponse,
    GroupId,
};
use kafka_protocol::protocol::StrBytes;

use crate::offsets::ExpiryRule;
use crate::records::{
    consumer_subscription_topics, group_metadata_key, GroupMetadataValue, MemberMetadata,
};
use crate::{ClientInfo, GroupConfig, IdGenerator, Output, Record, RequestId, Response};
use gregor_protocol::ErrorCode;

/// `group.classic.new.member.join.timeout.ms`: a new member's JoinGroup is held at most this
/// long while the group rebalances.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment distributed.
    Stable,
    /// Removed (only reported).
    Dead,
}

impl GroupState {
    /// Kafka's state name.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    id: RequestId,
    version: i16,
}

/// A classic group member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Supported protocols (name, metadata) in preference order.
    pub protocols: Vec<(String, Bytes)>,
    /// Current assignment.
    pub assignment: Bytes,
    join: Option<Pending>,
    sync: Option<Pending>,
    is_new: bool,
    heartbeat_deadline: Option<i64>,
}

impl Member {
    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
    fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
    fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.join.is_some() || self.sync.is_some())
    }
}

#[derive(Debug, Clone, Copy)]
enum JoinTimer {
    InitialDelay { delay: i64, remaining: i64 },
    RebalanceTimeout,
}

/// One classic group.
#[derive(Debug, Clone)]
pub struct ClassicGroup {
    id: String,
    state: GroupState,
    previous_state: GroupState,
    state_timestamp: Option<i64>,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: Vec<Member>,
    pending_members: BTreeMap<String, i64>,
    pending_sync: BTreeSet<String>,
    new_member_added: bool,
    join_timer: Option<(i64, JoinTimer)>,
    sync_deadline: Option<i64>,
    subscribed_topics: Option<BTreeSet<String>>,
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn join_response(version: i16, mut r: JoinGroupResponse) -> Response {
    if version < 7 {
        r.protocol_type = None;
        if r.protocol_name.is_none() {
            r.protocol_name = Some(StrBytes::default());
        }
    }
    if version < 9 {
        r.skip_assignment = false;
    }
    if version < 5 {
        for m in &mut r.members {
            m.group_instance_id = None;
        }
    }
    Response::JoinGroup(r)
}

fn join_error(version: i16, member_id: &str, code: ErrorCode) -> Response {
    join_response(
        version,
        JoinGroupResponse::default()
            .with_error_code(code.code())
            .with_member_id(sb(member_id))
            .with_protocol_name(None),
    )
}

fn sync_response(
    version: i16,
    code: ErrorCode,
    ptype: Option<&str>,
    pname: Option<&str>,
    assignment: Bytes,
) -> Response {
    let mut r = SyncGroupResponse::default()
        .with_error_code(code.code())
        .with_assignment(assignment);
    if version >= 5 {
        r.protocol_type = ptype.map(sb);
        r.protocol_name = pname.map(sb);
    }
    Response::SyncGroup(r)
}

impl ClassicGroup {
    fn new(id: &str, now_ms: Option<i64>) -> Self {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp: now_ms,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_deadline: None,
            subscribed_topics: None,
        }
    }

    /// Group id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Current state.
    pub fn state(&self) -> GroupState {
        self.state
    }
    /// Generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }
    /// Leader member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    /// Protocol type (None for groups that only hold offsets).
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    /// Selected protocol.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }
    /// Members in join order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }
    /// Topics the members subscribe to (protocol type `consumer` only).
    pub fn subscribed_topics(&self) -> Option<&BTreeSet<String>> {
        self.subscribed_topics.as_ref()
    }
    /// Whether the group uses the classic consumer protocol.
    pub fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some("consumer")
    }
    /// No members and no pending members.
    pub fn is_empty_without_pending(&self) -> bool {
        self.members.is_empty() && self.pending_members.is_empty()
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == id)
    }
    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == id)
    }
    fn has_member(&self, id: &str) -> bool {
        self.member(id).is_some()
    }
    fn static_member_id(&self, instance_id: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.group_instance_id.as_deref() == Some(instance_id))
            .map(|m| m.member_id.clone())
    }
    fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }
    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
            .max(0)
    }
    fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp = Some(now_ms);
    }
    fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        )
    }
    fn has_all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.join.is_some())
    }
    fn num_awaiting_join(&self) -> usize {
        self.members.iter().filter(|m| m.join.is_some()).count()
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == GroupState::Empty && self.members.is_empty() {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|(n, _)| self.members.iter().all(|m| m.supports(n)))
        }
    }

    /// Kafka's `validateMember`: Ok, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID.
    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ErrorCode> {
        match instance_id {
            Some(instance) => match self.static_member_id(instance) {
                None => Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => Err(ErrorCode::FencedInstanceId),
                Some(_) => Ok(()),
            },
            None => {
                if self.has_member(member_id) {
                    Ok(())
                } else {
                    Err(ErrorCode::UnknownMemberId)
                }
            }
        }
    }

    /// OffsetCommit validation (Kafka's `ClassicGroup.validateOffsetCommit`).
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        if generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(ErrorCode::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(ErrorCode::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        Ok(())
    }

    /// How the group's offsets expire.
    pub fn expiry_rule(&self) -> ExpiryRule {
        if self.protocol_type.is_some() {
            if self.state == GroupState::Empty {
                match self.state_timestamp {
                    Some(t) => ExpiryRule::Since(t),
                    None => ExpiryRule::SinceCommit(BTreeSet::new()),
                }
            } else if self.uses_consumer_protocol() && self.state == GroupState::Stable {
                match &self.subscribed_topics {
                    Some(s) => ExpiryRule::SinceCommit(s.clone()),
                    None => ExpiryRule::Never,
                }
            } else {
                ExpiryRule::Never
            }
        } else {
            ExpiryRule::SinceCommit(BTreeSet::new())
        }
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        let protocol = self.protocol_name.as_deref()?;
        if !self.uses_consumer_protocol() || self.members.is_empty() {
            return None;
        }
        let mut all = BTreeSet::new();
        for m in &self.members {
            all.extend(consumer_subscription_topics(&m.metadata(protocol))?);
        }
        Some(all)
    }

    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&str> = match self.members.first() {
            Some(first) => first
                .protocols
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| self.members.iter().all(|m| m.supports(n)))
                .collect(),
            None => return None,
        };
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for m in &self.members {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                match votes.iter_mut().find(|(n, _)| *n == name.as_str()) {
                    Some(v) => v.1 += 1,
                    None => votes.push((name.as_str(), 1)),
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (n, c) in votes {
            if best.is_none_or(|(_, bc)| c > bc) {
                best = Some((n, c));
            }
        }
        best.map(|(n, _)| n.to_string())
    }

    fn current_members_for_leader(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .iter()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(sb(&m.member_id))
                    .with_group_instance_id(m.group_instance_id.as_deref().map(sb))
                    .with_metadata(m.metadata(&protocol))
            })
            .collect()
    }

    fn join_success(
        &self,
        version: i16,
        member_id: &str,
        with_members: bool,
        skip: bool,
    ) -> Response {
        join_response(
            version,
            JoinGroupResponse::default()
                .with_generation_id(self.generation)
                .with_protocol_type(self.protocol_type.as_deref().map(sb))
                .with_protocol_name(self.protocol_name.as_deref().map(sb))
                .with_leader(sb(self.leader.as_deref().unwrap_or("")))
                .with_member_id(sb(member_id))
                .with_skip_assignment(skip)
                .with_members(if with_members {
                    self.current_members_for_leader()
                } else {
                    Vec::new()
                }),
        )
    }

    /// The `GroupMetadataValue` record of the current state.
    pub fn metadata_record(&self) -> Record {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let value = GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp.unwrap_or(-1),
            members: self
                .members
                .iter()
                .map(|m| MemberMetadata {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        };
        Record {
            group_id: self.id.clone(),
            key: group_metadata_key(&self.id),
            value: Some(value.encode()),
        }
    }

    /// DescribeGroups entry.
    pub fn describe(&self) -> DescribedGroup {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        DescribedGroup::default()
            .with_group_id(GroupId(sb(&self.id)))
            .with_group_state(sb(self.state.name()))
            .with_protocol_type(sb(self.protocol_type.as_deref().unwrap_or("")))
            .with_protocol_data(sb(if stable { &protocol } else { "" }))
            .with_members(
                self.members
                    .iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(sb(&m.member_id))
                            .with_group_instance_id(m.group_instance_id.as_deref().map(sb))
                            .with_client_id(sb(&m.client_id))
                            .with_client_host(sb(&m.client_host))
                            .with_member_metadata(if stable {
                                m.metadata(&protocol)
                            } else {
                                Bytes::new()
                            })
                            .with_member_assignment(m.assignment.clone())
                    })
                    .collect(),
            )
    }

    // -----------------------------------------------------------------------------------------
    // Transitions

    /// Removes a member, answering its pending requests with `code`.
    fn remove_member(&mut self, member_id: &str, code: ErrorCode, out: &mut Output) {
        let Some(pos) = self.members.iter().position(|m| m.member_id == member_id) else {
            self.pending_members.remove(member_id);
            return;
        };
        let m = self.members.remove(pos);
        if let Some(p) = m.join {
            let mid = if code == ErrorCode::FencedInstanceId {
                member_id
            } else {
                ""
            };
            out.responses.push((p.id, join_error(p.version, mid, code)));
        }
        if let Some(p) = m.sync {
            out.responses.push((
                p.id,
                sync_response(p.version, code, None, None, Bytes::new()),
            ));
        }
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
        if self.is_leader(member_id) {
            self.leader = self.members.first().map(|m| m.member_id.clone());
        }
    }

    fn remove_member_and_update(
        &mut self,
        now_ms: i64,
        member_id: &str,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        self.remove_member(member_id, ErrorCode::UnknownMemberId, out);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(now_ms, cfg, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(now_ms, out),
            _ => {}
        }
    }

    fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        now_ms: i64,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(now_ms, cfg, out);
        } else {
            self.maybe_complete_join_phase(now_ms, out);
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64, cfg: &GroupConfig, out: &mut Output) {
        if self.state == GroupState::CompletingRebalance {
            // Members waiting for their assignment rejoin.
            for m in &mut self.members {
                m.assignment = Bytes::new();
                if let Some(p) = m.sync.take() {
                    out.responses.push((
                        p.id,
                        sync_response(
                            p.version,
                            ErrorCode::RebalanceInProgress,
                            None,
                            None,
                            Bytes::new(),
                        ),
                    ));
                }
            }
        }
        self.sync_deadline = None;
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay = cfg.initial_rebalance_delay_ms.max(0);
            let remaining = (self.rebalance_timeout_ms() - delay).max(0);
            self.join_timer = Some((
                now_ms.saturating_add(delay),
                JoinTimer::InitialDelay { delay, remaining },
            ));
        } else {
            self.join_timer = Some((
                now_ms.saturating_add(self.rebalance_timeout_ms()),
                JoinTimer::RebalanceTimeout,
            ));
        }
        self.transition(GroupState::PreparingRebalance, now_ms);
        if !initial {
            self.maybe_complete_join_phase(now_ms, out);
        }
    }

    fn maybe_complete_join_phase(&mut self, now_ms: i64, out: &mut Output) {
        if self.state == GroupState::PreparingRebalance
            && self.has_all_members_joined()
            && self.previous_state != GroupState::Empty
        {
            self.complete_join(now_ms, out);
        }
    }

    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self.member(&leader).is_some_and(|m| m.join.is_some()) {
            return true;
        }
        match self.members.iter().find(|m| m.join.is_some()) {
            Some(m) => {
                self.leader = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn complete_join(&mut self, now_ms: i64, out: &mut Output) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        // Dynamic members that did not rejoin are removed.
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id, ErrorCode::UnknownMemberId, out);
        }
        self.join_timer = None;
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin: wait another rebalance timeout.
            self.join_timer = Some((
                now_ms.saturating_add(self.rebalance_timeout_ms().max(1)),
                JoinTimer::RebalanceTimeout,
            ));
            return;
        }
        // initNextGeneration
        self.generation = self.generation.wrapping_add(1);
        self.pending_sync.clear();
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty, now_ms);
            self.sync_deadline = None;
            out.records.push(self.metadata_record());
            return;
        }
        self.protocol_name = self.select_protocol();
        self.subscribed_topics = self.compute_subscribed_topics();
        self.transition(GroupState::CompletingRebalance, now_ms);
        let leader = self.leader.clone().unwrap_or_default();
        let mut answers = Vec::new();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            let pending = m.join.take();
            m.heartbeat_deadline = Some(now_ms.saturating_add(m.session_timeout_ms as i64));
            m.is_new = false;
            let id = m.member_id.clone();
            self.pending_sync.insert(id.clone());
            if let Some(p) = pending {
                answers.push((p, id));
            }
        }
        for (p, id) in answers {
            let resp = self.join_success(p.version, &id, id == leader, false);
            out.responses.push((p.id, resp));
        }
        self.sync_deadline = Some(now_ms.saturating_add(self.rebalance_timeout_ms()));
    }

    fn fire_join_timer(
        &mut self,
        now_ms: i64,
        timer: JoinTimer,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        match timer {
            JoinTimer::InitialDelay { delay, remaining }
                if self.new_member_added && remaining != 0 =>
            {
                self.new_member_added = false;
                let new_delay = cfg.initial_rebalance_delay_ms.max(0).min(remaining);
                let new_remaining = (remaining - delay).max(0);
                self.join_timer = Some((
                    now_ms.saturating_add(new_delay),
                    JoinTimer::InitialDelay {
                        delay: new_delay,
                        remaining: new_remaining,
                    },
                ));
            }
            _ => self.complete_join(now_ms, out),
        }
    }

    fn fire_sync_timeout(&mut self, now_ms: i64, cfg: &GroupConfig, out: &mut Output) {
        self.sync_deadline = None;
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && !self.pending_sync.is_empty()
        {
            let ids: Vec<String> = self.pending_sync.iter().cloned().collect();
            for id in ids {
                self.remove_member(&id, ErrorCode::UnknownMemberId, out);
            }
            self.pending_sync.clear();
            self.maybe_prepare_rebalance_or_complete_join(now_ms, cfg, out);
        }
    }

    fn fire_heartbeat(
        &mut self,
        now_ms: i64,
        member_id: &str,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        let Some(m) = self.member_mut(member_id) else {
            return;
        };
        m.heartbeat_deadline = None;
        if !m.has_satisfied_heartbeat() {
            self.remove_member_and_update(now_ms, member_id, cfg, out);
        }
    }

    fn fire_pending_member(&mut self, now_ms: i64, member_id: &str, out: &mut Output) {
        self.pending_members.remove(member_id);
        if self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join_phase(now_ms, out);
        }
    }

    /// Earliest timer of this group.
    pub fn next_deadline(&self) -> Option<i64> {
        let mut d: Option<i64> = None;
        let mut add = |t: Option<i64>| {
            if let Some(t) = t {
                d = Some(d.map_or(t, |d| d.min(t)));
            }
        };
        add(self.join_timer.map(|(t, _)| t));
        add(self.sync_deadline);
        for m in &self.members {
            add(m.heartbeat_deadline);
        }
        for t in self.pending_members.values() {
            add(Some(*t));
        }
        d
    }

    /// Fires every due timer of this group, earliest first.
    fn tick(&mut self, now_ms: i64, cfg: &GroupConfig, out: &mut Output) {
        // Bounded: every event removes or re-arms a timer strictly later or consumes state.
        for _ in 0..100_000 {
            let Some(d) = self.next_deadline() else {
                return;
            };
            if d > now_ms {
                return;
            }
            if let Some((t, timer)) = self.join_timer {
                if t == d {
                    self.join_timer = None;
                    self.fire_join_timer(now_ms, timer, cfg, out);
                    continue;
                }
            }
            if self.sync_deadline == Some(d) {
                self.fire_sync_timeout(now_ms, cfg, out);
                continue;
            }
            if let Some(id) = self
                .members
                .iter()
                .find(|m| m.heartbeat_deadline == Some(d))
                .map(|m| m.member_id.clone())
            {
                self.fire_heartbeat(now_ms, &id, cfg, out);
                continue;
            }
            if let Some(id) = self
                .pending_members
                .iter()
                .find(|(_, t)| **t == d)
                .map(|(id, _)| id.clone())
            {
                self.fire_pending_member(now_ms, &id, out);
                continue;
            }
            return;
        }
    }

    fn add_member(&mut self, m: Member) {
        self.pending_members.remove(&m.member_id);
        if self.members.is_empty() {
            self.protocol_type = Some(m.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(m.member_id.clone());
        }
        self.members.push(m);
    }

    /// Replaces a member's pending JoinGroup (an older duplicate is answered).
    fn set_join(&mut self, member_id: &str, p: Pending, out: &mut Output) {
        if let Some(m) = self.member_mut(member_id) {
            if let Some(old) = m.join.replace(p) {
                out.responses.push((
                    old.id,
                    join_error(old.version, member_id, ErrorCode::RebalanceInProgress),
                ));
            }
        }
    }
}

/// Parsed JoinGroup fields.
struct JoinArgs {
    member_id: String,
    instance_id: Option<String>,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    pending: Pending,
}

/// All classic groups.
#[derive(Debug, Default)]
pub struct ClassicGroups {
    groups: BTreeMap<String, ClassicGroup>,
}

impl ClassicGroups {
    /// A group.
    pub fn get(&self, id: &str) -> Option<&ClassicGroup> {
        self.groups.get(id)
    }
    /// Whether a group exists.
    pub fn contains(&self, id: &str) -> bool {
        self.groups.contains_key(id)
    }
    /// Every group id.
    pub fn ids(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }
    /// Every group.
    pub fn iter(&self) -> impl Iterator<Item = &ClassicGroup> {
        self.groups.values()
    }
    /// Creates an Empty group without protocol (offsets only) if absent.
    pub fn create_simple(&mut self, id: &str, now_ms: i64) {
        self.groups
            .entry(id.to_string())
            .or_insert_with(|| ClassicGroup::new(id, Some(now_ms)));
    }
    /// Creates a group from replayed offsets if absent (no state timestamp).
    pub fn create_replayed(&mut self, id: &str) {
        self.groups
            .entry(id.to_string())
            .or_insert_with(|| ClassicGroup::new(id, None));
    }
    /// Removes a group (no record).
    pub fn remove(&mut self, id: &str) -> Option<ClassicGroup> {
        self.groups.remove(id)
    }
    /// Removes an Empty group without members or pending members; returns its tombstone.
    pub fn remove_if_deletable(&mut self, id: &str) -> Option<Record> {
        let g = self.groups.get(id)?;
        if g.state != GroupState::Empty || !g.is_empty_without_pending() {
            return None;
        }
        self.groups.remove(id);
        Some(tombstone(id))
    }
    /// DeleteGroups for a classic group: NON_EMPTY_GROUP unless Empty.
    pub fn delete(&mut self, id: &str) -> Result<Record, ErrorCode> {
        let g = self.groups.get(id).ok_or(ErrorCode::GroupIdNotFound)?;
        if g.state != GroupState::Empty {
            return Err(ErrorCode::NonEmptyGroup);
        }
        self.groups.remove(id);
        Ok(tombstone(id))
    }

    /// Earliest timer.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups.values().filter_map(|g| g.next_deadline()).min()
    }

    /// The shard is being unloaded (Kafka's `onUnloaded`): every JoinGroup and SyncGroup still
    /// waiting is answered NOT_COORDINATOR, so its client finds the new coordinator.
    pub fn unload(&mut self) -> Vec<(RequestId, Response)> {
        let mut answers = Vec::new();
        for g in self.groups.values_mut() {
            for m in &mut g.members {
                if let Some(p) = m.join.take() {
                    answers.push((
                        p.id,
                        join_error(p.version, &m.member_id, ErrorCode::NotCoordinator),
                    ));
                }
                if let Some(p) = m.sync.take() {
                    answers.push((
                        p.id,
                        sync_response(
                            p.version,
                            ErrorCode::NotCoordinator,
                            None,
                            None,
                            Bytes::new(),
                        ),
                    ));
                }
            }
        }
        answers
    }

    /// Fires due timers.
    pub fn tick(&mut self, now_ms: i64, cfg: &GroupConfig, out: &mut Output) {
        for g in self.groups.values_mut() {
            if g.next_deadline().is_some_and(|d| d <= now_ms) {
                g.tick(now_ms, cfg, out);
            }
        }
    }

    /// Replays a `GroupMetadata` record (None = tombstone).
    pub fn replay(&mut self, id: &str, value: Option<GroupMetadataValue>) {
        let Some(v) = value else {
            self.groups.remove(id);
            return;
        };
        let mut g = ClassicGroup::new(
            id,
            (v.current_state_timestamp >= 0).then_some(v.current_state_timestamp),
        );
        g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type.clone());
        g.generation = v.generation;
        g.protocol_name = v.protocol.clone();
        g.leader = v.leader.clone();
        let protocol = v.protocol.clone().unwrap_or_default();
        for m in v.members {
            g.members.push(Member {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                protocol_type: v.protocol_type.clone(),
                protocols: vec![(protocol.clone(), Bytes::from(m.subscription))],
                assignment: Bytes::from(m.assignment),
                join: None,
                sync: None,
                is_new: false,
                heartbeat_deadline: None,
            });
        }
        if !g.members.is_empty() {
            g.state = GroupState::Stable;
            g.previous_state = GroupState::Stable;
            if g.leader.as_deref().is_none_or(|l| !g.has_member(l)) {
                g.leader = g.members.first().map(|m| m.member_id.clone());
            }
        }
        g.subscribed_topics = g.compute_subscribed_topics();
        self.groups.insert(id.to_string(), g);
    }

    /// After loading: members get fresh session deadlines.
    pub fn finish_replay(&mut self, now_ms: i64) {
        for g in self.groups.values_mut() {
            for m in &mut g.members {
                m.heartbeat_deadline = Some(now_ms.saturating_add(m.session_timeout_ms as i64));
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // JoinGroup

    /// JoinGroup for a group id the facade has cleared for classic use; a new member's id is
    /// `{instance id or client id}-{uuid}` with the uuid from `ids`.
    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        now_ms: i64,
        id: RequestId,
        version: i16,
        client: &ClientInfo,
        req: JoinGroupRequest,
        cfg: &GroupConfig,
        ids: &mut dyn IdGenerator,
        out: &mut Output,
    ) {
        let group_id = req.group_id.to_string();
        let member_id = req.member_id.to_string();
        if group_id.is_empty() {
            out.responses.push((
                id,
                join_error(version, &member_id, ErrorCode::InvalidGroupId),
            ));
            return;
        }
        if req.session_timeout_ms < cfg.min_session_timeout_ms
            || req.session_timeout_ms > cfg.max_session_timeout_ms
        {
            out.responses.push((
                id,
                join_error(version, &member_id, ErrorCode::InvalidSessionTimeout),
            ));
            return;
        }
        let args = JoinArgs {
            member_id: member_id.clone(),
            instance_id: if version >= 5 {
                req.group_instance_id.as_ref().map(|s| s.to_string())
            } else {
                None
            },
            protocol_type: req.protocol_type.to_string(),
            protocols: req
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: if version >= 1 {
                req.rebalance_timeout_ms
            } else {
                req.session_timeout_ms
            },
            pending: Pending { id, version },
        };
        let is_unknown = member_id.is_empty();
        let is_new_group = !self.groups.contains_key(&group_id);
        if is_new_group && !is_unknown {
            out.responses.push((
                id,
                join_error(version, &member_id, ErrorCode::UnknownMemberId),
            ));
            return;
        }
        let group = self
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| ClassicGroup::new(&group_id, Some(now_ms)));

        let max = cfg.max_group_size.max(0) as usize;
        let accept = match group.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                group.member(&member_id).is_some_and(|m| m.join.is_some())
                    || group.num_awaiting_join() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.has_member(&member_id) || group.members.len() < max
            }
        };
        if !accept {
            if group.has_member(&member_id) {
                group.remove_member_and_update(now_ms, &member_id, cfg, out);
            } else {
                group.pending_members.remove(&member_id);
            }
            out.responses
                .push((id, join_error(version, "", ErrorCode::GroupMaxSizeReached)));
        } else if is_unknown {
            Self::join_new_member(group, now_ms, client, args, cfg, ids, out);
        } else {
            Self::join_existing_member(group, now_ms, client, args, cfg, out);
        }
        if is_new_group && group.is_empty_without_pending() && group.state == GroupState::Empty {
            self.groups.remove(&group_id);
        }
    }

    fn join_new_member(
        group: &mut ClassicGroup,
        now_ms: i64,
        client: &ClientInfo,
        args: JoinArgs,
        cfg: &GroupConfig,
        ids: &mut dyn IdGenerator,
        out: &mut Output,
    ) {
        let p = args.pending;
        if !group.supports_protocols(&args.protocol_type, &args.protocols) {
            out.responses.push((
                p.id,
                join_error(p.version, "", ErrorCode::InconsistentGroupProtocol),
            ));
            return;
        }
        let prefix = args.instance_id.as_deref().unwrap_or(&client.client_id);
        let new_id = format!("{prefix}-{}", ids.next_uuid());
        if let Some(instance) = args.instance_id.clone() {
            if let Some(old_id) = group.static_member_id(&instance) {
                Self::update_static_member(group, now_ms, &old_id, &new_id, args, cfg, out);
            } else {
                Self::add_member_then_rebalance(group, now_ms, &new_id, client, args, cfg, out);
            }
        } else if p.version >= 4 {
            group.pending_members.insert(
                new_id.clone(),
                now_ms.saturating_add(args.session_timeout_ms as i64),
            );
            out.responses.push((
                p.id,
                join_error(p.version, &new_id, ErrorCode::MemberIdRequired),
            ));
        } else {
            Self::add_member_then_rebalance(group, now_ms, &new_id, client, args, cfg, out);
        }
    }

    fn join_existing_member(
        group: &mut ClassicGroup,
        now_ms: i64,
        client: &ClientInfo,
        args: JoinArgs,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        let p = args.pending;
        let member_id = args.member_id.clone();
        if !group.supports_protocols(&args.protocol_type, &args.protocols) {
            out.responses.push((
                p.id,
                join_error(p.version, &member_id, ErrorCode::InconsistentGroupProtocol),
            ));
            return;
        }
        if group.pending_members.contains_key(&member_id) {
            if let Some(instance) = args.instance_id.as_deref() {
                if group.static_member_id(instance).is_some() {
                    out.responses.push((
                        p.id,
                        join_error(p.version, &member_id, ErrorCode::FencedInstanceId),
                    ));
                    return;
                }
            }
            Self::add_member_then_rebalance(group, now_ms, &member_id, client, args, cfg, out);
            return;
        }
        if let Err(code) = group.validate_member(&member_id, args.instance_id.as_deref()) {
            out.responses
                .push((p.id, join_error(p.version, &member_id, code)));
            return;
        }
        let matches = group
            .member(&member_id)
            .is_some_and(|m| m.matches(&args.protocols));
        match group.state {
            GroupState::PreparingRebalance => {
                Self::update_member_then_rebalance(group, now_ms, args, cfg, out)
            }
            GroupState::CompletingRebalance => {
                if matches {
                    let is_leader = group.is_leader(&member_id);
                    let resp = group.join_success(p.version, &member_id, is_leader, false);
                    out.responses.push((p.id, resp));
                } else {
                    Self::update_member_then_rebalance(group, now_ms, args, cfg, out)
                }
            }
            GroupState::Stable => {
                if group.is_leader(&member_id) || !matches {
                    Self::update_member_then_rebalance(group, now_ms, args, cfg, out)
                } else {
                    let resp = group.join_success(p.version, &member_id, false, false);
                    out.responses.push((p.id, resp));
                }
            }
            GroupState::Empty | GroupState::Dead => out.responses.push((
                p.id,
                join_error(p.version, &member_id, ErrorCode::UnknownMemberId),
            )),
        }
    }

    fn add_member_then_rebalance(
        group: &mut ClassicGroup,
        now_ms: i64,
        member_id: &str,
        client: &ClientInfo,
        args: JoinArgs,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        let m = Member {
            member_id: member_id.to_string(),
            group_instance_id: args.instance_id,
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            rebalance_timeout_ms: args.rebalance_timeout_ms,
            session_timeout_ms: args.session_timeout_ms,
            protocol_type: args.protocol_type,
            protocols: args.protocols,
            assignment: Bytes::new(),
            join: Some(args.pending),
            sync: None,
            is_new: true,
            heartbeat_deadline: Some(now_ms.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS)),
        };
        if group.state == GroupState::PreparingRebalance
            && group.previous_state == GroupState::Empty
        {
            group.new_member_added = true;
        }
        group.add_member(m);
        group.maybe_prepare_rebalance_or_complete_join(now_ms, cfg, out);
    }

    fn update_member(group: &mut ClassicGroup, member_id: &str, args: &JoinArgs, out: &mut Output) {
        if let Some(m) = group.member_mut(member_id) {
            m.protocols = args.protocols.clone();
            m.rebalance_timeout_ms = args.rebalance_timeout_ms;
            m.session_timeout_ms = args.session_timeout_ms;
        }
        group.set_join(member_id, args.pending, out);
    }

    fn update_member_then_rebalance(
        group: &mut ClassicGroup,
        now_ms: i64,
        args: JoinArgs,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        let member_id = args.member_id.clone();
        Self::update_member(group, &member_id, &args, out);
        group.maybe_prepare_rebalance_or_complete_join(now_ms, cfg, out);
    }

    fn update_static_member(
        group: &mut ClassicGroup,
        now_ms: i64,
        old_id: &str,
        new_id: &str,
        args: JoinArgs,
        cfg: &GroupConfig,
        out: &mut Output,
    ) {
        let p = args.pending;
        // replaceStaticMember: the old member id is fenced.
        let Some(pos) = group.members.iter().position(|m| m.member_id == old_id) else {
            out.responses
                .push((p.id, join_error(p.version, "", ErrorCode::UnknownMemberId)));
            return;
        };
        {
            let m = &mut group.members[pos];
            if let Some(j) = m.join.take() {
                out.responses.push((
                    j.id,
                    join_error(j.version, old_id, ErrorCode::FencedInstanceId),
                ));
            }
            if let Some(s) = m.sync.take() {
                out.responses.push((
                    s.id,
                    sync_response(
                        s.version,
                        ErrorCode::FencedInstanceId,
                        None,
                        None,
                        Bytes::new(),
                    ),
                ));
            }
            m.member_id = new_id.to_string();
            m.heartbeat_deadline = Some(now_ms.saturating_add(m.session_timeout_ms as i64));
        }
        if group.is_leader(old_id) {
            group.leader = Some(new_id.to_string());
        }
        if group.pending_sync.remove(old_id) {
            group.pending_sync.insert(new_id.to_string());
        }
        Self::update_member(group, new_id, &args, out);
        match group.state {
            GroupState::Stable => {
                let selected = group.select_protocol();
                if selected.is_some() && group.protocol_name == selected {
                    group.subscribed_topics = group.compute_subscribed_topics();
                    out.records.push(group.metadata_record());
                    let is_leader = group.is_leader(new_id);
                    if let Some(j) = group.member_mut(new_id).and_then(|m| m.join.take()) {
                        let resp = group.join_success(j.version, new_id, is_leader, is_leader);
                        out.responses.push((j.id, resp));
                    }
                } else {
                    group.maybe_prepare_rebalance_or_complete_join(now_ms, cfg, out);
                }
            }
            GroupState::CompletingRebalance => group.prepare_rebalance(now_ms, cfg, out),
            _ => group.maybe_complete_join_phase(now_ms, out),
        }
    }

    // -----------------------------------------------------------------------------------------
    // SyncGroup / Heartbeat / LeaveGroup

    /// SyncGroup.
    pub fn sync(
        &mut self,
        now_ms: i64,
        id: RequestId,
        version: i16,
        req: SyncGroupRequest,
        out: &mut Output,
    ) {
        let err = |code| sync_response(version, code, None, None, Bytes::new());
        let Some(group) = self.groups.get_mut(req.group_id.as_str()) else {
            out.responses.push((id, err(ErrorCode::UnknownMemberId)));
            return;
        };
        let member_id = req.member_id.to_string();
        let instance_id = if version >= 3 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        if let Err(code) = group.validate_member(&member_id, instance_id) {
            out.responses.push((id, err(code)));
            return;
        }
        if req.generation_id != group.generation {
            out.responses.push((id, err(ErrorCode::IllegalGeneration)));
            return;
        }
        let inconsistent =
            |req_v: &Option<StrBytes>, group_v: &Option<String>| match (req_v, group_v) {
                (Some(r), Some(g)) => r.as_str() != g.as_str(),
                _ => false,
            };
        if version >= 5
            && (inconsistent(&req.protocol_type, &group.protocol_type)
                || inconsistent(&req.protocol_name, &group.protocol_name))
        {
            out.responses
                .push((id, err(ErrorCode::InconsistentGroupProtocol)));
            return;
        }
        match group.state {
            GroupState::PreparingRebalance => out
                .responses
                .push((id, err(ErrorCode::RebalanceInProgress))),
            GroupState::CompletingRebalance => {
                if let Some(m) = group.member_mut(&member_id) {
                    if let Some(old) = m.sync.replace(Pending { id, version }) {
                        out.responses.push((
                            old.id,
                            sync_response(
                                old.version,
                                ErrorCode::RebalanceInProgress,
                                None,
                                None,
                                Bytes::new(),
                            ),
                        ));
                    }
                }
                group.pending_sync.remove(&member_id);
                if group.pending_sync.is_empty() {
                    group.sync_deadline = None;
                }
                if group.is_leader(&member_id) {
                    let assignments: BTreeMap<String, Bytes> = req
                        .assignments
                        .into_iter()
                        .map(|a| (a.member_id.to_string(), a.assignment))
                        .collect();
                    for m in &mut group.members {
                        m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    group.transition(GroupState::Stable, now_ms);
                    out.records.push(group.metadata_record());
                    let ptype = group.protocol_type.clone();
                    let pname = group.protocol_name.clone();
                    for m in &mut group.members {
                        if let Some(p) = m.sync.take() {
                            out.responses.push((
                                p.id,
                                sync_response(
                                    p.version,
                                    ErrorCode::None,
                                    ptype.as_deref(),
                                    pname.as_deref(),
                                    m.assignment.clone(),
                                ),
                            ));
                            m.heartbeat_deadline =
                                Some(now_ms.saturating_add(m.session_timeout_ms as i64));
                        }
                    }
                }
            }
            GroupState::Stable => {
                group.pending_sync.remove(&member_id);
                if group.pending_sync.is_empty() {
                    group.sync_deadline = None;
                }
                let ptype = group.protocol_type.clone();
                let pname = group.protocol_name.clone();
                if let Some(m) = group.member_mut(&member_id) {
                    m.heartbeat_deadline = Some(now_ms.saturating_add(m.session_timeout_ms as i64));
                    let resp = sync_response(
                        version,
                        ErrorCode::None,
                        ptype.as_deref(),
                        pname.as_deref(),
                        m.assignment.clone(),
                    );
                    out.responses.push((id, resp));
                }
            }
            GroupState::Empty | GroupState::Dead => {
                out.responses.push((id, err(ErrorCode::UnknownMemberId)))
            }
        }
    }

    /// Heartbeat.
    pub fn heartbeat(&mut self, now_ms: i64, version: i16, req: &HeartbeatRequest) -> ErrorCode {
        let Some(group) = self.groups.get_mut(req.group_id.as_str()) else {
            return ErrorCode::UnknownMemberId;
        };
        let instance_id = if version >= 3 {
            req.group_instance_id.as_deref()
        } else {
            None
        };
        if let Err(code) = group.validate_member(&req.member_id, instance_id) {
            return code;
        }
        if req.generation_id != group.generation {
            return ErrorCode::IllegalGeneration;
        }
        let state = group.state;
        let renew = |g: &mut ClassicGroup| {
            if let Some(m) = g.member_mut(&req.member_id) {
                m.heartbeat_deadline = Some(now_ms.saturating_add(m.session_timeout_ms as i64));
            }
        };
        match state {
            GroupState::PreparingRebalance => {
                renew(group);
                ErrorCode::RebalanceInProgress
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                renew(group);
                ErrorCode::None
            }
            GroupState::Empty | GroupState::Dead => ErrorCode::UnknownMemberId,
        }
    }

    /// LeaveGroup.
    pub fn leave(
        &mut self,
        now_ms: i64,
        version: i16,
        req: LeaveGroupRequest,
        cfg: &GroupConfig,
        out: &mut Output,
    ) -> LeaveGroupResponse {
        let identities: Vec<MemberIdentity> = if version >= 3 {
            req.members
        } else {
            vec![MemberIdentity::default().with_member_id(req.member_id.clone())]
        };
        let Some(group) = self.groups.get_mut(req.group_id.as_str()) else {
            return leave_response(version, ErrorCode::UnknownMemberId, Vec::new());
        };
        let mut responses = Vec::with_capacity(identities.len());
        let mut any_valid = false;
        for ident in identities {
            let member_id = ident.member_id.to_string();
            let instance = ident.group_instance_id.as_ref().map(|s| s.to_string());
            let code = if member_id.is_empty() {
                match instance.as_deref().and_then(|i| group.static_member_id(i)) {
                    Some(existing) => {
                        group.remove_member(&existing, ErrorCode::UnknownMemberId, out);
                        ErrorCode::None
                    }
                    None => ErrorCode::UnknownMemberId,
                }
            } else if group.pending_members.remove(&member_id).is_some() {
                ErrorCode::None
            } else {
                match group.validate_member(&member_id, instance.as_deref()) {
                    Ok(()) => {
                        group.remove_member(&member_id, ErrorCode::UnknownMemberId, out);
                        ErrorCode::None
                    }
                    Err(code) => code,
                }
            };
            any_valid |= code == ErrorCode::None;
            responses.push(
                MemberResponse::default()
                    .with_member_id(ident.member_id)
                    .with_group_instance_id(ident.group_instance_id)
                    .with_error_code(code.code()),
            );
        }
        if any_valid {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    group.prepare_rebalance(now_ms, cfg, out)
                }
                GroupState::PreparingRebalance => group.maybe_complete_join_phase(now_ms, out),
                _ => {}
            }
        }
        leave_response(version, ErrorCode::None, responses)
    }
}

fn leave_response(
    version: i16,
    code: ErrorCode,
    members: Vec<MemberResponse>,
) -> LeaveGroupResponse {
    if version >= 3 {
        return LeaveGroupResponse::default()
            .with_error_code(code.code())
            .with_members(members);
    }
    // v0–v2 have one member and no per-member errors: its error is the top-level one.
    let code = if code != ErrorCode::None {
        code.code()
    } else {
        members
            .iter()
            .map(|m| m.error_code)
            .find(|c| *c != ErrorCode::None.code())
            .unwrap_or(ErrorCode::None.code())
    };
    LeaveGroupResponse::default().with_error_code(code)
}

/// The heartbeat response.
pub fn heartbeat_response(code: ErrorCode) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(code.code())
}

fn tombstone(id: &str) -> Record {
    Record {
        group_id: id.to_string(),
        key: group_metadata_key(id),
        value: None,
    }
}

/// Group metadata tombstone.
pub fn group_tombstone(id: &str) -> Record {
    tombstone(id)
}
