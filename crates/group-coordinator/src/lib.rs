//! # gregor-group-coordinator
//!
//! Consumer groups and committed offsets as a pure state machine, in the style of Apache Kafka's
//! `group-coordinator` module: every handler takes the request and the current time (`now_ms`,
//! injected by the caller) and returns the records to persist in `__consumer_offsets` plus the
//! response(s); [`GroupCoordinator::replay`] rebuilds the state from those records on start. No
//! sockets, no threads, no wall clock, no randomness: the broker owns the I/O
//! (`crates/broker/src/groups.rs`), and the member ids the coordinator makes up come from the
//! [`IdGenerator`] given to [`GroupCoordinator::new`] ([`ids`]). Outputs are therefore a
//! function of the inputs: two coordinators that replay the same records and then get the same
//! requests, times and ids answer identically, and answer as the coordinator that wrote the
//! records would have (`tests/determinism.rs`). The crate's `clippy.toml` forbids the clock
//! and random UUIDs, and without the `random-ids` feature (which only adds `RandomIds`) `uuid`
//! cannot make a random id at all.
//!
//! Records must be durable before the responses that follow them are sent.
//!
//! Deferred responses: JoinGroup and SyncGroup answers wait for other members (or timeouts).
//! Handlers therefore take a caller-chosen [`RequestId`] and return an [`Output`] whose
//! `responses` may hold answers to this request, to earlier pending requests, or nothing yet.
//! The caller calls [`GroupCoordinator::tick`] at [`GroupCoordinator::next_deadline`] (or
//! periodically) to fire timers: the initial rebalance delay, rebalance timeouts, session
//! expiry.
//!
//! Error codes are [`gregor_protocol::ErrorCode`] throughout: internal results and the
//! coordinator's own APIs carry `ErrorCode`; `.code()` turns one into the `i16` the
//! kafka-protocol messages hold.
//!
//! # One instance is one shard
//!
//! A [`GroupCoordinator`] holds the groups of one `__consumer_offsets` partition, like Kafka's
//! `GroupCoordinatorShard`: a group lives in partition [`partition_for`]`(group_id, n)`. The
//! broker makes an instance when it becomes leader of a partition, replays that partition
//! alone into it ([`GroupCoordinator::replay`], [`GroupCoordinator::replay_txn_record`],
//! [`GroupCoordinator::replay_txn_marker`], then [`GroupCoordinator::finish_replay`]) and ends
//! it with [`GroupCoordinator::unload`] (every parked JoinGroup/SyncGroup answered
//! NOT_COORDINATOR) when it loses the leadership. No state is shared between groups (the
//! regex cache aside), so the records an instance returns belong to its own partition as long
//! as the caller gives it only its own groups (`tests/determinism.rs` replays each partition
//! into its own instance). The caller:
//! - routes single-group requests (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//!   OffsetDelete, TxnOffsetCommit, ConsumerGroupHeartbeat, OffsetFetch v0–v7) to the shard of
//!   the group;
//! - splits multi-group requests (DescribeGroups, DeleteGroups, ConsumerGroupDescribe,
//!   OffsetFetch v8+) by shard and puts the answers back in request order. It must not
//!   broadcast them: a shard answers for a group it does not hold as for an unknown group
//!   (Dead, GROUP_ID_NOT_FOUND, no offsets), which looks like a real answer;
//! - fans ListGroups out to every loaded shard and concatenates the groups;
//! - settles transactional offsets per partition: the COMMIT/ABORT marker written to
//!   `__consumer_offsets` partition p goes to p's shard ([`GroupCoordinator::complete_txn`]);
//!   a transaction that committed offsets of groups in several partitions has a marker in
//!   each (AddOffsetsToTxn added each group's partition), and each shard settles only its own
//!   groups' offsets;
//! - fires each shard's timers ([`GroupCoordinator::tick`] at its
//!   [`GroupCoordinator::next_deadline`]);
//! - gives each shard its own [`IdGenerator`] ([`RandomIds`](ids) in the broker; a
//!   deterministic one restarted with a reloaded shard could hand out a member id that is
//!   still in use). [`RequestId`]s need only be unique per shard.
//!
//! Modules (tour):
//! - [`ids`]: the injected [`IdGenerator`] and its implementations ([`SequentialIds`],
//!   [`SeededIds`], and `RandomIds` with the `random-ids` feature).
//! - [`records`]: the `__consumer_offsets` key/value formats (Kafka's schemas, byte compatible).
//! - [`classic`]: the classic group protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup) with
//!   Kafka's states Empty, PreparingRebalance, CompletingRebalance, Stable, Dead.
//! - [`offsets`]: committed offsets (OffsetCommit/OffsetFetch/OffsetDelete, retention).
//! - [`txn_offsets`]: transactional offset commits (TxnOffsetCommit), pending until the
//!   transaction's marker.
//! - [`consumer`]: KIP-848 consumer groups (ConsumerGroupHeartbeat/Describe, server-side
//!   `uniform` and `range` assignors, regex subscriptions).

#![warn(missing_docs)]

pub mod consumer;

use gregor_protocol::ErrorCode;
use kafka_protocol::messages::{
    consumer_group_describe_request::ConsumerGroupDescribeRequest,
    consumer_group_describe_response::ConsumerGroupDescribeResponse,
    consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest,
    consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse,
    delete_groups_request::DeleteGroupsRequest,
    delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse},
    describe_groups_request::DescribeGroupsRequest,
    describe_groups_response::{DescribeGroupsResponse, DescribedGroup},
    heartbeat_request::HeartbeatRequest,
    heartbeat_response::HeartbeatResponse,
    join_group_request::JoinGroupRequest,
    join_group_response::JoinGroupResponse,
    leave_group_request::LeaveGroupRequest,
    leave_group_response::LeaveGroupResponse,
    list_groups_request::ListGroupsRequest,
    list_groups_response::{ListGroupsResponse, ListedGroup},
    offset_commit_request::OffsetCommitRequest,
    offset_commit_response::OffsetCommitResponse,
    offset_delete_request::OffsetDeleteRequest,
    offset_delete_response::OffsetDeleteResponse,
    offset_fetch_request::OffsetFetchRequest,
    offset_fetch_response::OffsetFetchResponse,
    sync_group_request::SyncGroupRequest,
    sync_group_response::SyncGroupResponse,
    GroupId,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

#[cfg(feature = "random-ids")]
pub use ids::RandomIds;
pub use ids::{IdGenerator, SeededIds, SequentialIds};

pub mod classic;
pub mod ids;
pub mod offsets;
pub mod records;
pub mod txn_offsets;

/// Caller-chosen id of a request whose response may be deferred.
pub type RequestId = u64;

/// Coordinator settings (Kafka's broker config names in the docs of each field).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms` (3000).
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (i32::MAX).
    pub max_group_size: i32,
    /// `offsets.retention.minutes` in ms (7 days).
    pub offsets_retention_ms: i64,
    /// `group.consumer.heartbeat.interval.ms` (5000).
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.session.timeout.ms` (45000).
    pub consumer_session_timeout_ms: i32,
    /// `group.consumer.assignors` first entry is the default (`uniform`).
    pub consumer_default_assignor: String,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_group_size: i32::MAX,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            consumer_heartbeat_interval_ms: 5000,
            consumer_session_timeout_ms: 45_000,
            consumer_default_assignor: "uniform".into(),
        }
    }
}

/// A record for `__consumer_offsets`: Kafka's key/value bytes (value `None` = tombstone), with
/// the group id that decides the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Group the record belongs to (partition = abs(java hashCode) % partitions).
    pub group_id: String,
    /// Serialized key (version-prefixed, Kafka's schemas).
    pub key: Vec<u8>,
    /// Serialized value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A deferred-capable response.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// JoinGroup.
    JoinGroup(JoinGroupResponse),
    /// SyncGroup.
    SyncGroup(SyncGroupResponse),
    /// Heartbeat.
    Heartbeat(HeartbeatResponse),
    /// LeaveGroup.
    LeaveGroup(LeaveGroupResponse),
}

/// Records to persist, then responses to send (to this or earlier pending requests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// Records, in order; persist before sending `responses`.
    pub records: Vec<Record>,
    /// Responses by request id.
    pub responses: Vec<(RequestId, Response)>,
}

/// Who sent a request (JoinGroup stores it; DescribeGroups shows it).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// `client.id` from the request header.
    pub client_id: String,
    /// Client address (e.g. `/127.0.0.1`).
    pub client_host: String,
}

/// What the coordinator may ask of the cluster's topics.
pub trait TopicView {
    /// Partition count of a topic, if it exists.
    fn partition_count(&self, topic: &str) -> Option<i32>;
    /// Topic id of a topic.
    fn topic_id(&self, topic: &str) -> Option<Uuid>;
    /// Topic name of an id.
    fn topic_name(&self, id: &Uuid) -> Option<String>;
    /// Every topic: (name, id, partitions), sorted by name.
    fn all_topics(&self) -> Vec<(String, Uuid, i32)>;
    /// A dynamic group config of `group` (KIP-848: `consumer.session.timeout.ms`,
    /// `consumer.heartbeat.interval.ms`), overriding the coordinator's default.
    fn group_config(&self, _group: &str, _key: &str) -> Option<String> {
        None
    }
}

/// A record that could not be replayed.
#[derive(Debug, thiserror::Error)]
#[error("cannot replay __consumer_offsets record: {0}")]
pub struct ReplayError(pub String);

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// The group coordinator.
#[derive(Debug)]
pub struct GroupCoordinator {
    config: GroupConfig,
    classic: classic::ClassicGroups,
    offsets: offsets::OffsetStore,
    consumer: consumer::ConsumerGroups,
    next_cleanup: Option<i64>,
    txn_offsets: txn_offsets::PendingTxnOffsets,
    ids: Box<dyn IdGenerator>,
}

impl GroupCoordinator {
    /// A coordinator with no groups, making up member ids with `ids` (`RandomIds` in the
    /// broker, [`SequentialIds`] or [`SeededIds`] in tests).
    pub fn new(config: GroupConfig, ids: impl IdGenerator + 'static) -> Self {
        let consumer = consumer::ConsumerGroups::new(&config);
        GroupCoordinator {
            ids: Box::new(ids),
            config,
            classic: classic::ClassicGroups::default(),
            offsets: offsets::OffsetStore::default(),
            consumer,
            next_cleanup: None,
            txn_offsets: Default::default(),
        }
    }

    /// Settings.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Classic groups (read-only view).
    pub fn classic_groups(&self) -> &classic::ClassicGroups {
        &self.classic
    }

    /// Committed offsets (read-only view).
    pub fn offsets(&self) -> &offsets::OffsetStore {
        &self.offsets
    }

    /// Whether a classic group owns `group_id` and it has no members nor pending members
    /// (or no classic group owns it).
    pub fn classic_group_is_empty_or_absent(&self, group_id: &str) -> bool {
        self.classic
            .get(group_id)
            .is_none_or(|g| g.is_empty_without_pending())
    }

    fn arm_cleanup(&mut self, now_ms: i64) {
        if self.next_cleanup.is_none() {
            self.next_cleanup = Some(next_retention_check(now_ms));
        }
    }

    /// Applies one `__consumer_offsets` record (in log order) while loading.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), ReplayError> {
        match records::decode_key(key)? {
            records::RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                let v = value.map(records::OffsetCommitValue::decode).transpose()?;
                let is_commit = v.is_some();
                self.offsets.replay(&group, &topic, partition, v);
                if is_commit && !self.consumer.contains(&group) {
                    self.classic.create_replayed(&group);
                }
                Ok(())
            }
            records::RecordKey::GroupMetadata { group } => {
                let v = value.map(records::GroupMetadataValue::decode).transpose()?;
                self.classic.replay(&group, v);
                Ok(())
            }
            records::RecordKey::Other(version) => {
                if self.consumer.replay(key, value)? {
                    // A consumer group takes over an id held by an empty classic group.
                    let ids: Vec<String> = self
                        .classic
                        .ids()
                        .into_iter()
                        .filter(|id| self.consumer.contains(id))
                        .collect();
                    for id in ids {
                        if self.classic_group_is_empty_or_absent(&id) {
                            self.classic.remove(&id);
                        }
                    }
                    Ok(())
                } else {
                    tracing::debug!(version, "ignoring __consumer_offsets record type");
                    Ok(())
                }
            }
        }
    }

    /// Called once after the last replayed record: loaded classic groups get fresh session
    /// deadlines from `now_ms` (members must heartbeat again or expire).
    pub fn finish_replay(&mut self, now_ms: i64) {
        // Offsets whose group vanished (e.g. a tombstoned group record) belong to a simple group.
        let orphans: Vec<String> = self
            .offsets
            .group_ids()
            .filter(|id| !self.classic.contains(id) && !self.consumer.contains(id))
            .cloned()
            .collect();
        for id in orphans {
            self.classic.create_replayed(&id);
        }
        self.classic.finish_replay(now_ms);
        self.arm_cleanup(now_ms);
    }

    /// JoinGroup (v0–v9). The response is usually deferred.
    pub fn join_group(
        &mut self,
        now_ms: i64,
        id: RequestId,
        version: i16,
        client: &ClientInfo,
        req: JoinGroupRequest,
    ) -> Output {
        self.arm_cleanup(now_ms);
        let mut out = Output::default();
        let group_id = req.group_id.to_string();
        if !group_id.is_empty()
            && self.consumer.contains(&group_id)
            && !self.classic.contains(&group_id)
        {
            if self.consumer.is_empty(&group_id) {
                // An empty consumer group is converted: its records go, offsets stay.
                out.records.extend(self.consumer.delete(&group_id));
            } else {
                let mut r = JoinGroupResponse::default()
                    .with_error_code(ErrorCode::InconsistentGroupProtocol.code())
                    .with_member_id(req.member_id.clone());
                if version < 7 {
                    r.protocol_name = Some(StrBytes::default());
                } else {
                    r.protocol_name = None;
                }
                out.responses.push((id, Response::JoinGroup(r)));
                return out;
            }
        }
        self.classic.join(
            now_ms,
            id,
            version,
            client,
            req,
            &self.config,
            self.ids.as_mut(),
            &mut out,
        );
        out
    }

    /// SyncGroup (v0–v5). Followers wait for the leader's assignment.
    pub fn sync_group(
        &mut self,
        now_ms: i64,
        id: RequestId,
        version: i16,
        req: SyncGroupRequest,
    ) -> Output {
        self.arm_cleanup(now_ms);
        let mut out = Output::default();
        self.classic.sync(now_ms, id, version, req, &mut out);
        out
    }

    /// Heartbeat (v0–v4).
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        id: RequestId,
        version: i16,
        req: HeartbeatRequest,
    ) -> Output {
        self.arm_cleanup(now_ms);
        let code = self.classic.heartbeat(now_ms, version, &req);
        Output {
            records: Vec::new(),
            responses: vec![(id, Response::Heartbeat(classic::heartbeat_response(code)))],
        }
    }

    /// LeaveGroup (v0–v5, batched members from v3).
    pub fn leave_group(
        &mut self,
        now_ms: i64,
        id: RequestId,
        version: i16,
        req: LeaveGroupRequest,
    ) -> Output {
        self.arm_cleanup(now_ms);
        let mut out = Output::default();
        let resp = self
            .classic
            .leave(now_ms, version, req, &self.config, &mut out);
        out.responses.push((id, Response::LeaveGroup(resp)));
        out
    }

    /// OffsetCommit (v2–v9), classic generations and KIP-848 member epochs; generation -1 with
    /// an empty member id from admin tools when the group has no members.
    pub fn offset_commit(
        &mut self,
        now_ms: i64,
        version: i16,
        req: OffsetCommitRequest,
        topics: &dyn TopicView,
    ) -> (Vec<Record>, OffsetCommitResponse) {
        self.offset_commit_impl(now_ms, version, req, topics)
    }

    /// OffsetFetch (v1–v9, batched groups from v8).
    pub fn offset_fetch(
        &self,
        now_ms: i64,
        version: i16,
        req: &OffsetFetchRequest,
        topics: &dyn TopicView,
    ) -> OffsetFetchResponse {
        let _ = (now_ms, topics);
        self.offset_fetch_impl(version, req)
    }

    /// OffsetDelete (v0).
    pub fn offset_delete(
        &mut self,
        now_ms: i64,
        version: i16,
        req: OffsetDeleteRequest,
        topics: &dyn TopicView,
    ) -> (Vec<Record>, OffsetDeleteResponse) {
        let _ = version;
        self.offset_delete_impl(now_ms, req, topics)
    }

    /// DescribeGroups (v0–v6).
    pub fn describe_groups(
        &self,
        version: i16,
        req: &DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let groups = req
            .groups
            .iter()
            .map(|gid| {
                if let Some(g) = self.classic.get(gid) {
                    return g.describe();
                }
                let dead = DescribedGroup::default()
                    .with_group_id(gid.clone())
                    .with_group_state(sb(classic::GroupState::Dead.name()));
                if version >= 6 {
                    let msg = if self.consumer.contains(gid) {
                        format!("Group {} is not a classic group.", gid.as_str())
                    } else {
                        format!("Group {} not found.", gid.as_str())
                    };
                    dead.with_error_code(ErrorCode::GroupIdNotFound.code())
                        .with_error_message(Some(sb(&msg)))
                } else {
                    dead
                }
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }

    /// ListGroups (v0–v5, state filter v4, type filter v5).
    pub fn list_groups(&self, version: i16, req: &ListGroupsRequest) -> ListGroupsResponse {
        let states: Vec<String> = if version >= 4 {
            req.states_filter
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect()
        } else {
            Vec::new()
        };
        let types: Vec<String> = if version >= 5 {
            req.types_filter
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect()
        } else {
            Vec::new()
        };
        let keep = |state: &str, gtype: &str| {
            (states.is_empty() || states.iter().any(|s| *s == state.to_lowercase()))
                && (types.is_empty() || types.iter().any(|t| t == gtype))
        };
        let mut listed = Vec::new();
        for g in self.classic.iter() {
            let state = g.state().name();
            if keep(state, "classic") {
                listed.push(
                    ListedGroup::default()
                        .with_group_id(GroupId(sb(g.id())))
                        .with_protocol_type(sb(g.protocol_type().unwrap_or("")))
                        .with_group_state(if version >= 4 {
                            sb(state)
                        } else {
                            StrBytes::default()
                        })
                        .with_group_type(if version >= 5 {
                            sb("classic")
                        } else {
                            StrBytes::default()
                        }),
                );
            }
        }
        for c in self.consumer.listings() {
            if self.classic.contains(&c.group_id) || !keep(c.state, "consumer") {
                continue;
            }
            listed.push(
                ListedGroup::default()
                    .with_group_id(GroupId(sb(&c.group_id)))
                    .with_protocol_type(sb("consumer"))
                    .with_group_state(if version >= 4 {
                        sb(c.state)
                    } else {
                        StrBytes::default()
                    })
                    .with_group_type(if version >= 5 {
                        sb("consumer")
                    } else {
                        StrBytes::default()
                    }),
            );
        }
        ListGroupsResponse::default().with_groups(listed)
    }

    /// DeleteGroups (v0–v2).
    pub fn delete_groups(
        &mut self,
        now_ms: i64,
        version: i16,
        req: &DeleteGroupsRequest,
    ) -> (Vec<Record>, DeleteGroupsResponse) {
        let _ = version;
        self.arm_cleanup(now_ms);
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(req.groups_names.len());
        for gid in &req.groups_names {
            let id = gid.as_str();
            let code = if self.classic.contains(id) {
                match self.classic.delete(id) {
                    Ok(tombstone) => {
                        records.extend(self.offsets.delete_group(id));
                        records.push(tombstone);
                        ErrorCode::None
                    }
                    Err(code) => code,
                }
            } else if self.consumer.contains(id) {
                if self.consumer.is_empty(id) {
                    records.extend(self.offsets.delete_group(id));
                    records.extend(self.consumer.delete(id));
                    ErrorCode::None
                } else {
                    ErrorCode::NonEmptyGroup
                }
            } else if id.is_empty() {
                ErrorCode::InvalidGroupId
            } else {
                ErrorCode::GroupIdNotFound
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(gid.clone())
                    .with_error_code(code.code()),
            );
        }
        (
            records,
            DeleteGroupsResponse::default().with_results(results),
        )
    }

    /// ConsumerGroupHeartbeat (KIP-848, v0–v1).
    pub fn consumer_group_heartbeat(
        &mut self,
        now_ms: i64,
        version: i16,
        client: &ClientInfo,
        req: ConsumerGroupHeartbeatRequest,
        topics: &dyn TopicView,
    ) -> (Vec<Record>, ConsumerGroupHeartbeatResponse) {
        self.arm_cleanup(now_ms);
        let gid = req.group_id.to_string();
        let mut records = Vec::new();
        if let Some(g) = self.classic.get(&gid) {
            if !g.is_empty_without_pending() || g.state() != classic::GroupState::Empty {
                let msg = format!("Group {gid} is not a consumer group.");
                return (
                    Vec::new(),
                    ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(ErrorCode::GroupIdNotFound.code())
                        .with_error_message(Some(sb(&msg))),
                );
            }
            // An Empty classic group (offsets only) is taken over; offsets are kept.
            self.classic.remove(&gid);
            records.push(classic::group_tombstone(&gid));
        }
        let (more, resp) =
            self.consumer
                .heartbeat(now_ms, version, client, req, topics, self.ids.as_mut());
        records.extend(more);
        (records, resp)
    }

    /// ConsumerGroupDescribe (KIP-848, v0–v1): GROUP_ID_NOT_FOUND for classic groups.
    pub fn consumer_group_describe(
        &self,
        version: i16,
        req: &ConsumerGroupDescribeRequest,
        topics: &dyn TopicView,
    ) -> ConsumerGroupDescribeResponse {
        let mut resp = self.consumer.describe(version, req, topics);
        for g in &mut resp.groups {
            if self.classic.contains(g.group_id.as_str())
                && !self.consumer.contains(g.group_id.as_str())
            {
                g.error_code = ErrorCode::GroupIdNotFound.code();
                g.error_message = Some(sb(&format!(
                    "Group {} is not a consumer group.",
                    g.group_id.as_str()
                )));
            }
        }
        resp
    }

    /// Fires due timers (initial rebalance delay, rebalance/sync timeouts, session expiry,
    /// offset retention).
    pub fn tick(&mut self, now_ms: i64) -> Output {
        self.arm_cleanup(now_ms);
        let mut out = Output::default();
        self.classic.tick(now_ms, &self.config, &mut out);
        out.records.extend(self.consumer.tick(now_ms));
        if self.next_cleanup.is_some_and(|t| t <= now_ms) {
            out.records.extend(self.cleanup_groups(now_ms));
            self.next_cleanup = Some(next_retention_check(now_ms));
        }
        out
    }

    /// The broker no longer leads this shard's `__consumer_offsets` partition: the answers to
    /// every request still waiting (JoinGroup, SyncGroup), all NOT_COORDINATOR. The state is
    /// dropped; the partition's next leader replays it.
    pub fn unload(mut self) -> Vec<(RequestId, Response)> {
        self.classic.unload()
    }

    /// Earliest time `tick` has something to do.
    pub fn next_deadline(&self) -> Option<i64> {
        [
            self.classic.next_deadline(),
            self.consumer.next_deadline(),
            self.next_cleanup,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The first retention check after `now_ms`: checks run at multiples of
/// [`offsets::RETENTION_CHECK_INTERVAL_MS`] (not an interval after whenever the coordinator
/// was loaded), so a coordinator that replays a partition retires offsets at the same times as
/// the one that wrote it.
fn next_retention_check(now_ms: i64) -> i64 {
    let interval = offsets::RETENTION_CHECK_INTERVAL_MS;
    now_ms
        .div_euclid(interval)
        .saturating_add(1)
        .saturating_mul(interval)
}

/// Kafka's group → `__consumer_offsets` partition: `Utils.abs(groupId.hashCode()) % n`, with
/// Java's `String.hashCode` over UTF-16 code units.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn retention_checks_fall_on_interval_multiples() {
        use super::next_retention_check as next;
        assert_eq!(next(0), 600_000);
        assert_eq!(next(599_999), 600_000);
        assert_eq!(next(600_000), 1_200_000);
        assert_eq!(next(-1), 0);
        assert!(next(i64::MAX) >= i64::MAX - 600_000);
    }

    #[test]
    fn partition_matches_java_hashcode() {
        assert_eq!(super::partition_for("", 50), 0);
        assert_eq!(super::partition_for("a", 50), 97 % 50);
    }
}
