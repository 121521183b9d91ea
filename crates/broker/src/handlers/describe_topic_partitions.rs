//! DescribeTopicPartitions (key 75), v0 (KIP-966): topics and their partitions, sorted by topic
//! name, at most `response_partition_limit` partitions per response (capped at 2000 like
//! Kafka's `max.request.partition.size.limit`), continued from `cursor`; `next_cursor` says
//! where the next page starts. An empty topic list means every topic. Recent AdminClients use
//! it for `describeTopics` (`kafka-topics.sh --describe`).

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use gregor_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use gregor_protocol::messages::{BrokerId, TopicName};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Kafka's `max.request.partition.size.limit` default.
const MAX_PARTITIONS: i32 = 2000;

/// Handles DescribeTopicPartitions.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeTopicPartitionsRequest = ctx.decode(body)?;
    let limit = if req.response_partition_limit <= 0 {
        MAX_PARTITIONS
    } else {
        req.response_partition_limit.min(MAX_PARTITIONS)
    };
    let fetch_all = req.topics.is_empty();
    let mut names: Vec<String> = if fetch_all {
        // With an authorizer only the topics the principal may DESCRIBE.
        ctx.metadata()
            .all_topics()
            .into_iter()
            .map(|t| t.name)
            .filter(|n| ctx.allowed(op::DESCRIBE, resource::TOPIC, n))
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.0.as_str().to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let (cursor_topic, cursor_partition) = match &req.cursor {
        Some(c) => (
            Some(c.topic_name.0.as_str().to_string()),
            c.partition_index.max(0),
        ),
        None => (None, 0),
    };
    if let Some(ct) = &cursor_topic {
        if !fetch_all && !names.contains(ct) {
            // Kafka: InvalidRequestException, which closes nothing but fails the request;
            // answer every topic with INVALID_REQUEST.
            let topics = names
                .iter()
                .map(|n| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect();
            return ctx.respond(
                &DescribeTopicPartitionsResponse::default()
                    .with_throttle_time_ms(0)
                    .with_topics(topics),
            );
        }
    }
    let mut remaining = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names
        .into_iter()
        .filter(|n| cursor_topic.as_ref().is_none_or(|c| n >= c))
    {
        let tname = TopicName(StrBytes::from_string(name.clone()));
        if remaining == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(tname)
                    .with_partition_index(0),
            );
            break;
        }
        if !ctx.allowed(op::DESCRIBE, resource::TOPIC, &name) {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                    .with_name(Some(tname))
                    .with_topic_authorized_operations(i32::MIN),
            );
            continue;
        }
        let Some(meta) = ctx.metadata().topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                    .with_name(Some(tname))
                    .with_topic_authorized_operations(i32::MIN),
            );
            continue;
        };
        let start = if cursor_topic.as_deref() == Some(name.as_str()) {
            cursor_partition
        } else {
            0
        };
        let end = meta.partitions.min(start.saturating_add(remaining));
        let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
        let partitions: Vec<_> = (start..end)
            .filter_map(|p| Some((p, ctx.metadata().partition_state(&meta, p)?)))
            .map(|(p, s)| {
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(if s.leader < 0 {
                        ErrorCode::LeaderNotAvailable.code()
                    } else {
                        0
                    })
                    .with_leader_id(BrokerId(s.leader))
                    .with_leader_epoch(s.leader_epoch)
                    .with_replica_nodes(ids(&s.replicas))
                    .with_isr_nodes(ids(&s.isr))
                    .with_eligible_leader_replicas(Some(vec![]))
                    .with_last_known_elr(Some(vec![]))
                    .with_offline_replicas(vec![])
            })
            .collect();
        remaining -= (end - start).max(0);
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(tname.clone()))
                .with_topic_id(meta.id)
                .with_is_internal(meta.internal)
                .with_partitions(partitions)
                .with_topic_authorized_operations(super::metadata::TOPIC_OPS),
        );
        if end < meta.partitions {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(tname)
                    .with_partition_index(end),
            );
            break;
        }
    }
    ctx.respond(
        &DescribeTopicPartitionsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics)
            .with_next_cursor(next_cursor),
    )
}
