//! Transactional offset commits (TxnOffsetCommit, KIP-98), as Kafka's
//! `OffsetMetadataManager`: the offsets are written to `__consumer_offsets` in a transactional
//! batch of the producer (the caller does that with the returned records) and stay pending —
//! invisible to OffsetFetch — until the transaction's marker reaches the group's
//! `__consumer_offsets` partition: [`GroupCoordinator::complete_txn`] then applies them
//! (COMMIT) or drops them (ABORT). Replay does the same with
//! [`GroupCoordinator::replay_txn_record`] and [`GroupCoordinator::replay_txn_marker`].

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    offset_commit_request::OffsetCommitRequest,
    txn_offset_commit_request::TxnOffsetCommitRequest,
    txn_offset_commit_response::{
        TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    },
};

use crate::offsets::OFFSET_METADATA_MAX_BYTES;
use crate::records::{self, offset_commit_key, OffsetCommitValue};
use crate::{GroupCoordinator, Record, ReplayError, TopicView};
use gregor_protocol::ErrorCode;

/// Pending offsets: producer id → (group, topic, partition) → offset.
pub type PendingTxnOffsets = BTreeMap<i64, BTreeMap<(String, String, i32), OffsetCommitValue>>;

impl GroupCoordinator {
    /// TxnOffsetCommit (v0–v5). The records must be appended as a transactional batch of
    /// (`producer_id`, `producer_epoch`) to the group's `__consumer_offsets` partition.
    pub fn txn_offset_commit(
        &mut self,
        now_ms: i64,
        version: i16,
        req: TxnOffsetCommitRequest,
        topics: &dyn TopicView,
    ) -> (Vec<Record>, TxnOffsetCommitResponse) {
        let group_id = req.group_id.to_string();
        let group_error: Result<(), ErrorCode> = if group_id.is_empty() {
            Err(ErrorCode::InvalidGroupId)
        } else if version >= 3 {
            // Generation/member checks as an OffsetCommit v8 (a missing group is fine with
            // generation -1: the offsets create it when the transaction commits).
            let as_commit = OffsetCommitRequest::default()
                .with_group_id(req.group_id.clone())
                .with_generation_id_or_member_epoch(req.generation_id)
                .with_member_id(req.member_id.clone())
                .with_group_instance_id(req.group_instance_id.clone());
            self.validate_offset_commit(8, &as_commit, true).map(|_| ())
        } else {
            Ok(())
        };
        let producer_id = req.producer_id.0;
        let mut records = Vec::new();
        let mut resp_topics = Vec::with_capacity(req.topics.len());
        for t in req.topics {
            let mut parts = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let known = topics
                    .partition_count(&t.name)
                    .is_some_and(|n| p.partition_index >= 0 && p.partition_index < n);
                let code = if !known {
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
                    let value = OffsetCommitValue {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 2 {
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
                        expire_timestamp: -1,
                    };
                    records.push(Record {
                        group_id: group_id.clone(),
                        key: offset_commit_key(&group_id, &t.name, p.partition_index),
                        value: Some(value.encode()),
                    });
                    self.txn_offsets.entry(producer_id).or_default().insert(
                        (group_id.clone(), t.name.to_string(), p.partition_index),
                        value,
                    );
                    ErrorCode::None
                };
                parts.push(
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code()),
                );
            }
            resp_topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(parts),
            );
        }
        (
            records,
            TxnOffsetCommitResponse::default().with_topics(resp_topics),
        )
    }

    /// A transaction marker for `producer_id` reached `__consumer_offsets`: applies (commit)
    /// or drops (abort) its pending offsets. Nothing to persist: the marker is the record.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        let Some(pending) = self.txn_offsets.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for ((group, topic, partition), value) in pending {
            self.offsets.replay(&group, &topic, partition, Some(value));
            if !self.consumer.contains(&group) {
                self.classic.create_replayed(&group);
            }
        }
    }

    /// Whether a group has offsets waiting for a transaction to end (OffsetFetch
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT for them).
    pub fn has_pending_txn_offsets(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets
            .values()
            .any(|m| m.contains_key(&(group.to_string(), topic.to_string(), partition)))
    }

    /// Replays a record of a transactional `__consumer_offsets` batch of `producer_id`.
    pub fn replay_txn_record(
        &mut self,
        producer_id: i64,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), ReplayError> {
        match records::decode_key(key)? {
            records::RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                let entry = self.txn_offsets.entry(producer_id).or_default();
                match value.map(OffsetCommitValue::decode).transpose()? {
                    Some(v) => {
                        entry.insert((group, topic, partition), v);
                    }
                    None => {
                        entry.remove(&(group, topic, partition));
                    }
                }
                Ok(())
            }
            // Only offset commits are transactional.
            _ => self.replay(key, value),
        }
    }

    /// Replays a transaction marker (control batch) of `producer_id`.
    pub fn replay_txn_marker(&mut self, producer_id: i64, commit: bool) {
        self.complete_txn(producer_id, commit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupConfig;
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequest, OffsetFetchRequestTopic,
    };
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, ProducerId, TopicName, TransactionalId};
    use kafka_protocol::protocol::StrBytes;
    use uuid::Uuid;

    struct Topics;
    impl TopicView for Topics {
        fn partition_count(&self, topic: &str) -> Option<i32> {
            (topic == "t").then_some(2)
        }
        fn topic_id(&self, _: &str) -> Option<Uuid> {
            None
        }
        fn topic_name(&self, _: &Uuid) -> Option<String> {
            None
        }
        fn all_topics(&self) -> Vec<(String, Uuid, i32)> {
            vec![]
        }
    }

    fn req(pid: i64, offset: i64, partition: i32) -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(0)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(partition)
                    .with_committed_offset(offset)])])
    }

    fn fetched(c: &GroupCoordinator) -> i64 {
        let r = c.offset_fetch(
            0,
            5,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_indexes(vec![0])])),
            &Topics,
        );
        r.topics[0].partitions[0].committed_offset
    }

    #[test]
    fn pending_until_commit_marker_dropped_on_abort() {
        let mut c = GroupCoordinator::new(GroupConfig::default(), crate::SequentialIds::default());
        let (records, resp) = c.txn_offset_commit(1, 3, req(7, 42, 0), &Topics);
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            ErrorCode::None.code()
        );
        assert_eq!(records.len(), 1);
        assert_eq!(fetched(&c), -1, "invisible before the marker");
        assert!(c.has_pending_txn_offsets("g", "t", 0));
        // require_stable (v7+): UNSTABLE_OFFSET_COMMIT while the transaction is open.
        let stable = c.offset_fetch(
            0,
            7,
            &OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_require_stable(true)
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("t")))
                    .with_partition_indexes(vec![0, 1])])),
            &Topics,
        );
        let codes: Vec<Option<ErrorCode>> = stable.topics[0]
            .partitions
            .iter()
            .map(|p| ErrorCode::from_code(p.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![Some(ErrorCode::UnstableOffsetCommit), Some(ErrorCode::None)]
        );
        c.complete_txn(7, false);
        assert_eq!(fetched(&c), -1, "aborted");
        c.txn_offset_commit(2, 3, req(7, 43, 0), &Topics);
        c.complete_txn(7, true);
        assert_eq!(fetched(&c), 43);
        assert!(!c.has_pending_txn_offsets("g", "t", 0));
        // Unknown partitions and stale generations are refused.
        let (_, resp) = c.txn_offset_commit(3, 3, req(7, 1, 9), &Topics);
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            ErrorCode::UnknownTopicOrPartition.code()
        );
        let (recs, resp) = c.txn_offset_commit(3, 3, req(7, 1, 0).with_generation_id(5), &Topics);
        // The group exists now (committed offsets): an unknown member of generation 5.
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            ErrorCode::UnknownMemberId.code()
        );
        assert!(recs.is_empty());
    }

    #[test]
    fn replay_applies_only_committed_transactions() {
        let mut src =
            GroupCoordinator::new(GroupConfig::default(), crate::SequentialIds::default());
        let (a, _) = src.txn_offset_commit(1, 3, req(7, 10, 0), &Topics);
        let (b, _) = src.txn_offset_commit(1, 3, req(8, 20, 0), &Topics);
        let mut c = GroupCoordinator::new(GroupConfig::default(), crate::SequentialIds::default());
        c.replay_txn_record(7, &a[0].key, a[0].value.as_deref())
            .unwrap();
        c.replay_txn_record(8, &b[0].key, b[0].value.as_deref())
            .unwrap();
        c.replay_txn_marker(8, false);
        assert_eq!(fetched(&c), -1);
        c.replay_txn_marker(7, true);
        assert_eq!(fetched(&c), 10);
    }
}
