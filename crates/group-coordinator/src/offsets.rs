//! Committed offsets: OffsetCommit (v2–v9), OffsetFetch (v1–v9), OffsetDelete (v0) and
//! retention, following Kafka 4.1's `OffsetMetadataManager`.
//!
//! Offsets are stored per group id, independent of which group kind (classic or KIP-848)
//! owns the id; a group id with offsets always has an owning group (committing to an unknown
//! id with generation -1 creates an Empty "simple" classic group, as Kafka does).
//!
//! Retention (Kafka 2.1+ semantics, checked every [`RETENTION_CHECK_INTERVAL_MS`] like
//! `offsets.retention.check.interval.ms`, at multiples of it so that the schedule does not
//! depend on when the coordinator was loaded): an offset with an explicit expire timestamp (v1
//! records, OffsetCommit v2–v4 `retention_time_ms`) expires at that time; otherwise
//! - Empty classic group with a protocol type: `offsets_retention_ms` after the group became
//!   Empty (or after the commit when that time is unknown),
//! - simple classic group (no protocol type): `offsets_retention_ms` after the commit,
//! - Stable classic group of protocol type `consumer` whose subscriptions are known, and
//!   KIP-848 groups: `offsets_retention_ms` after the commit, for topics the group is not
//!   subscribed to,
//! - otherwise (rebalancing, or non-consumer protocols with members): never.
//!
//! After a check, an Empty group without offsets (and without pending members) is deleted.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{
    offset_commit_request::OffsetCommitRequest,
    offset_commit_response::{
        OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    },
    offset_delete_request::OffsetDeleteRequest,
    offset_delete_response::{
        OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
    },
    offset_fetch_request::OffsetFetchRequest,
    offset_fetch_response::{
        OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
        OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::classic::GroupState;
use crate::records::{offset_commit_key, OffsetCommitValue};
use crate::{GroupCoordinator, Record, TopicView};
use gregor_protocol::ErrorCode;

/// `offset.metadata.max.bytes` (Kafka compares the string length in chars).
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// `offsets.retention.check.interval.ms`.
pub const RETENTION_CHECK_INTERVAL_MS: i64 = 600_000;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Offset.
    pub offset: i64,
    /// Leader epoch or -1.
    pub leader_epoch: i32,
    /// Metadata string, returned as committed.
    pub metadata: String,
    /// Commit time.
    pub commit_timestamp: i64,
    /// Explicit expiry (old clients' `retention_time_ms`).
    pub expire_timestamp: Option<i64>,
}

impl CommittedOffset {
    fn to_value(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp,
            expire_timestamp: self.expire_timestamp.unwrap_or(-1),
        }
    }
}

/// Offsets of one group: topic → partition → offset.
pub type GroupOffsets = BTreeMap<String, BTreeMap<i32, CommittedOffset>>;

/// How offsets of a group expire (see the module doc).
#[derive(Debug, Clone)]
pub enum ExpiryRule {
    /// Nothing expires (explicit expire timestamps aside).
    Never,
    /// `retention` after the commit, except these topics.
    SinceCommit(BTreeSet<String>),
    /// `retention` after this time (the group became Empty).
    Since(i64),
}

/// All committed offsets.
#[derive(Debug, Default)]
pub struct OffsetStore {
    groups: BTreeMap<String, GroupOffsets>,
}

impl OffsetStore {
    /// Offsets of a group.
    pub fn group(&self, group: &str) -> Option<&GroupOffsets> {
        self.groups.get(group)
    }

    /// Whether a group has any committed offset.
    pub fn has_offsets(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|t| !t.is_empty())
    }

    /// Group ids with offsets.
    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// One offset.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups.get(group)?.get(topic)?.get(&partition)
    }

    /// Stores an offset and returns its record.
    pub fn commit(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        o: CommittedOffset,
    ) -> Record {
        let value = o.to_value().encode();
        self.put(group, topic, partition, o);
        Record {
            group_id: group.to_string(),
            key: offset_commit_key(group, topic, partition),
            value: Some(value),
        }
    }

    fn put(&mut self, group: &str, topic: &str, partition: i32, o: CommittedOffset) {
        self.groups
            .entry(group.to_string())
            .or_default()
            .entry(topic.to_string())
            .or_default()
            .insert(partition, o);
    }

    /// Removes one offset (returns its tombstone if it existed).
    pub fn delete(&mut self, group: &str, topic: &str, partition: i32) -> Option<Record> {
        let topics = self.groups.get_mut(group)?;
        let parts = topics.get_mut(topic)?;
        parts.remove(&partition)?;
        if parts.is_empty() {
            topics.remove(topic);
        }
        if topics.is_empty() {
            self.groups.remove(group);
        }
        Some(tombstone(group, topic, partition))
    }

    /// Removes every offset of a group, returning tombstones.
    pub fn delete_group(&mut self, group: &str) -> Vec<Record> {
        let Some(topics) = self.groups.remove(group) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (topic, parts) in topics {
            for p in parts.keys() {
                out.push(tombstone(group, &topic, *p));
            }
        }
        out
    }

    /// Replays an offset record (value `None` = tombstone).
    pub fn replay(
        &mut self,
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<OffsetCommitValue>,
    ) {
        match value {
            Some(v) => self.put(
                group,
                topic,
                partition,
                CommittedOffset {
                    offset: v.offset,
                    leader_epoch: v.leader_epoch,
                    metadata: v.metadata,
                    commit_timestamp: v.commit_timestamp,
                    expire_timestamp: (v.expire_timestamp >= 0).then_some(v.expire_timestamp),
                },
            ),
            None => {
                let _ = self.delete(group, topic, partition);
            }
        }
    }

    /// Expires offsets of a group per `rule`; returns tombstones.
    pub fn expire(
        &mut self,
        group: &str,
        now_ms: i64,
        retention_ms: i64,
        rule: &ExpiryRule,
    ) -> Vec<Record> {
        let Some(topics) = self.groups.get(group) else {
            return Vec::new();
        };
        let mut expired = Vec::new();
        for (topic, parts) in topics {
            let subscribed = matches!(rule, ExpiryRule::SinceCommit(s) if s.contains(topic));
            if subscribed {
                continue;
            }
            for (p, o) in parts {
                let is_expired = match o.expire_timestamp {
                    Some(t) => now_ms >= t,
                    None => match rule {
                        ExpiryRule::Never => false,
                        ExpiryRule::SinceCommit(_) => {
                            now_ms.saturating_sub(o.commit_timestamp) >= retention_ms
                        }
                        ExpiryRule::Since(base) => now_ms.saturating_sub(*base) >= retention_ms,
                    },
                };
                if is_expired {
                    expired.push((topic.clone(), *p));
                }
            }
        }
        expired
            .into_iter()
            .filter_map(|(t, p)| self.delete(group, &t, p))
            .collect()
    }
}

/// Fetched offsets: topic → (partition, committed offset if any).
type FetchedTopics = Vec<(TopicName, Vec<(i32, Option<CommittedOffset>)>)>;

fn tombstone(group: &str, topic: &str, partition: i32) -> Record {
    Record {
        group_id: group.to_string(),
        key: offset_commit_key(group, topic, partition),
        value: None,
    }
}

fn partition_known(topics: &dyn TopicView, topic: &str, partition: i32) -> bool {
    topics
        .partition_count(topic)
        .is_some_and(|n| partition >= 0 && partition < n)
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl GroupCoordinator {
    /// Group-level validation of an OffsetCommit; `Ok(create)` where `create` asks to create a
    /// simple classic group. `transactional`: a TxnOffsetCommit (any version may carry a
    /// KIP-848 member epoch, so the OffsetCommit v9+ rule does not apply).
    pub(crate) fn validate_offset_commit(
        &self,
        version: i16,
        req: &OffsetCommitRequest,
        transactional: bool,
    ) -> Result<bool, ErrorCode> {
        let group_id = req.group_id.as_str();
        let generation = req.generation_id_or_member_epoch;
        let member_id = req.member_id.as_str();
        let instance_id = req.group_instance_id.as_deref();
        if let Some(group) = self.classic.get(group_id) {
            group.validate_offset_commit(member_id, instance_id, generation)?;
            return Ok(false);
        }
        if self.consumer.contains(group_id) {
            if generation < 0 && self.consumer.is_empty(group_id) {
                return Ok(false);
            }
            self.consumer
                .validate_offset_commit(group_id, member_id, generation)?;
            if version < 9 && !transactional {
                // KIP-848 members must use OffsetCommit v9+.
                return Err(ErrorCode::UnsupportedVersion);
            }
            return Ok(false);
        }
        if generation < 0 {
            Ok(true)
        } else if version >= 9 {
            Err(ErrorCode::GroupIdNotFound)
        } else {
            Err(ErrorCode::IllegalGeneration)
        }
    }

    pub(crate) fn offset_commit_impl(
        &mut self,
        now_ms: i64,
        version: i16,
        req: OffsetCommitRequest,
        topics: &dyn TopicView,
    ) -> (Vec<Record>, OffsetCommitResponse) {
        self.arm_cleanup(now_ms);
        let group_id = req.group_id.to_string();
        let mut group_error = if group_id.is_empty() {
            Err(ErrorCode::InvalidGroupId)
        } else {
            self.validate_offset_commit(version, &req, false)
        };
        // Partitions of unknown topics are answered before the coordinator sees them.
        let any_known = req.topics.iter().any(|t| {
            t.partitions
                .iter()
                .any(|p| partition_known(topics, &t.name, p.partition_index))
        });
        if let Ok(true) = group_error {
            if any_known {
                self.classic.create_simple(&group_id, now_ms);
            }
            group_error = Ok(false);
        }
        let expire = if version <= 4 && req.retention_time_ms != -1 {
            Some(now_ms.saturating_add(req.retention_time_ms))
        } else {
            None
        };
        let mut records = Vec::new();
        let mut resp_topics = Vec::with_capacity(req.topics.len());
        for t in req.topics {
            let mut parts = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let code = if !partition_known(topics, &t.name, p.partition_index) {
                    ErrorCode::UnknownTopicOrPartition
                } else if let Err(code) = group_error {
                    code
                } else if p
                    .committed_metadata
                    .as_ref()
                    .is_some_and(|m| m.chars().count() > OFFSET_METADATA_MAX_BYTES)
                {
                    ErrorCode::OffsetMetadataTooLarge
                } else {
                    let o = CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        commit_timestamp: now_ms,
                        expire_timestamp: expire,
                    };
                    records.push(
                        self.offsets
                            .commit(&group_id, &t.name, p.partition_index, o),
                    );
                    ErrorCode::None
                };
                parts.push(
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code()),
                );
            }
            resp_topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(parts),
            );
        }
        (
            records,
            OffsetCommitResponse::default().with_topics(resp_topics),
        )
    }

    /// Group-level validation of an OffsetFetch: `Ok(true)` if the group exists.
    fn validate_offset_fetch(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<bool, ErrorCode> {
        if self.classic.get(group_id).is_some() {
            return Ok(true);
        }
        if self.consumer.contains(group_id) {
            self.consumer
                .validate_offset_fetch(group_id, member_id, member_epoch)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// One group of an OffsetFetch: (error, topics); `topics` None = all committed offsets.
    fn fetch_group(
        &self,
        group_id: &str,
        member_id: Option<&str>,
        member_epoch: i32,
        topics: Option<Vec<(TopicName, Vec<i32>)>>,
    ) -> (ErrorCode, FetchedTopics) {
        if group_id.is_empty() {
            return (ErrorCode::InvalidGroupId, Vec::new());
        }
        let exists = match self.validate_offset_fetch(group_id, member_id, member_epoch) {
            Ok(e) => e,
            Err(code) => return (code, Vec::new()),
        };
        let offsets = if exists {
            self.offsets.group(group_id)
        } else {
            None
        };
        let out = match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(name, parts)| {
                    let committed = offsets.and_then(|o| o.get(name.as_str()));
                    let parts = parts
                        .into_iter()
                        .map(|p| (p, committed.and_then(|c| c.get(&p)).cloned()))
                        .collect();
                    (name, parts)
                })
                .collect(),
            None => offsets
                .map(|o| {
                    o.iter()
                        .map(|(t, parts)| {
                            (
                                TopicName(sb(t)),
                                parts.iter().map(|(p, c)| (*p, Some(c.clone()))).collect(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        (ErrorCode::None, out)
    }

    pub(crate) fn offset_fetch_impl(
        &self,
        version: i16,
        req: &OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        if version >= 8 {
            let groups = req
                .groups
                .iter()
                .map(|g| {
                    let topics = g.topics.as_ref().map(|ts| {
                        ts.iter()
                            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                            .collect()
                    });
                    let member_id = if version >= 9 {
                        g.member_id.as_deref()
                    } else {
                        None
                    };
                    let epoch = if version >= 9 { g.member_epoch } else { -1 };
                    let (code, topics) = self.fetch_group(&g.group_id, member_id, epoch, topics);
                    let topics = topics
                        .into_iter()
                        .map(|(name, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(name.clone())
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|(p, c)| {
                                            if req.require_stable
                                                && self.has_pending_txn_offsets(
                                                    g.group_id.as_str(),
                                                    name.as_str(),
                                                    p,
                                                )
                                            {
                                                return OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(-1)
                                                    .with_committed_leader_epoch(-1)
                                                    .with_metadata(Some(sb("")))
                                                    .with_error_code(
                                                        ErrorCode::UnstableOffsetCommit.code(),
                                                    );
                                            }
                                            let (offset, epoch, meta) = split(c);
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(offset)
                                                .with_committed_leader_epoch(epoch)
                                                .with_metadata(Some(sb(&meta)))
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(code.code())
                        .with_topics(topics)
                })
                .collect();
            return OffsetFetchResponse::default().with_groups(groups);
        }
        let topics = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect::<Vec<_>>()
        });
        let (code, result) = self.fetch_group(&req.group_id, None, -1, topics.clone());
        if code != ErrorCode::None {
            // v2+: top-level error, no topics; v1: the error on every requested partition.
            if version >= 2 {
                return OffsetFetchResponse::default().with_error_code(code.code());
            }
            let topics = topics
                .unwrap_or_default()
                .into_iter()
                .map(|(name, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(sb("")))
                                        .with_error_code(code.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            return OffsetFetchResponse::default().with_topics(topics);
        }
        let topics = result
            .into_iter()
            .map(|(name, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(name.clone())
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, c)| {
                                if version >= 7
                                    && req.require_stable
                                    && self.has_pending_txn_offsets(
                                        req.group_id.as_str(),
                                        name.as_str(),
                                        p,
                                    )
                                {
                                    return OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(sb("")))
                                        .with_error_code(ErrorCode::UnstableOffsetCommit.code());
                                }
                                let (offset, epoch, meta) = split(c);
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(sb(&meta)))
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetFetchResponse::default().with_topics(topics)
    }

    pub(crate) fn offset_delete_impl(
        &mut self,
        now_ms: i64,
        req: OffsetDeleteRequest,
        topics: &dyn TopicView,
    ) -> (Vec<Record>, OffsetDeleteResponse) {
        self.arm_cleanup(now_ms);
        let group_id = req.group_id.to_string();
        let subscribed: BTreeSet<String> = if let Some(g) = self.classic.get(&group_id) {
            if g.state() != GroupState::Empty && !g.uses_consumer_protocol() {
                return (
                    Vec::new(),
                    OffsetDeleteResponse::default()
                        .with_error_code(ErrorCode::NonEmptyGroup.code()),
                );
            }
            g.subscribed_topics().cloned().unwrap_or_default()
        } else if self.consumer.contains(&group_id) {
            self.consumer
                .subscribed_topics(&group_id)
                .unwrap_or_default()
        } else {
            return (
                Vec::new(),
                OffsetDeleteResponse::default().with_error_code(ErrorCode::GroupIdNotFound.code()),
            );
        };
        let mut records = Vec::new();
        let mut out_topics = Vec::with_capacity(req.topics.len());
        for t in req.topics {
            let is_subscribed = subscribed.contains(t.name.as_str());
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if !partition_known(topics, &t.name, p.partition_index) {
                        ErrorCode::UnknownTopicOrPartition
                    } else if is_subscribed {
                        ErrorCode::GroupSubscribedToTopic
                    } else {
                        if let Some(r) = self.offsets.delete(&group_id, &t.name, p.partition_index)
                        {
                            records.push(r);
                        }
                        ErrorCode::None
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            out_topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(parts),
            );
        }
        (
            records,
            OffsetDeleteResponse::default().with_topics(out_topics),
        )
    }

    /// The expiry rule of a group's offsets.
    pub(crate) fn expiry_rule(&self, group_id: &str) -> ExpiryRule {
        if let Some(g) = self.classic.get(group_id) {
            return g.expiry_rule();
        }
        if self.consumer.contains(group_id) {
            return ExpiryRule::SinceCommit(
                self.consumer
                    .subscribed_topics(group_id)
                    .unwrap_or_default(),
            );
        }
        ExpiryRule::SinceCommit(BTreeSet::new())
    }

    /// Offsets retention and deletion of Empty groups without offsets.
    pub(crate) fn cleanup_groups(&mut self, now_ms: i64) -> Vec<Record> {
        let mut records = Vec::new();
        let ids: Vec<String> = self.offsets.group_ids().cloned().collect();
        let retention = self.config.offsets_retention_ms;
        for id in ids {
            let rule = self.expiry_rule(&id);
            records.extend(self.offsets.expire(&id, now_ms, retention, &rule));
        }
        // Empty groups without offsets are deleted.
        for id in self.classic.ids() {
            if self.offsets.has_offsets(&id) {
                continue;
            }
            if let Some(r) = self.classic.remove_if_deletable(&id) {
                records.push(r);
            }
        }
        for listing in self.consumer.listings() {
            if listing.state == "Empty"
                && self.consumer.is_empty(&listing.group_id)
                && !self.offsets.has_offsets(&listing.group_id)
            {
                records.extend(self.consumer.delete(&listing.group_id));
            }
        }
        records
    }
}

fn split(c: Option<CommittedOffset>) -> (i64, i32, String) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata),
        None => (-1, -1, String::new()),
    }
}
