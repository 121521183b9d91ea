//! OffsetForLeaderEpoch (key 23), v2–v4, answered from each partition's
//! `leader-epoch-checkpoint` with Kafka's rule: the largest epoch <= the requested one and the
//! offset where it ends (the next epoch's start, or the log end offset). A single node leads in
//! epoch 0, so today that is epoch 0 ending at the log end offset.
//! The Java consumer uses this to validate positions because Metadata reports epochs >= 0.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use gregor_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (2, 4);

/// Handles OffsetForLeaderEpoch.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: OffsetForLeaderEpochRequest = ctx.decode(body)?;
    let mut topics = Vec::new();
    for t in &req.topics {
        let name = t.topic.0.as_str();
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let mut r = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            // Followers need CLUSTER_ACTION, consumers DESCRIBE on the topic (authorizer).
            let authorized = if req.replica_id.0 >= 0 {
                ctx.cluster_allowed(op::CLUSTER_ACTION)
            } else {
                ctx.allowed(op::DESCRIBE, resource::TOPIC, name)
            };
            let checked = if authorized {
                Ok(())
            } else {
                Err(ErrorCode::TopicAuthorizationFailed)
            }
            .and_then(|()| {
                ctx.replicas()
                    .leader_partition(name, p.partition, p.current_leader_epoch)
            })
            .and_then(|part| {
                let current = part.leader_epoch();
                part.with_log(|l| match l.end_offset_for_epoch(p.leader_epoch) {
                    Some(found) => found,
                    // The leader's own epoch ends at the log end (Kafka's rule).
                    None if p.leader_epoch == current => (current, l.log_end_offset()),
                    None => (-1, -1),
                })
                .ok_or(ErrorCode::UnknownTopicOrPartition)
            });
            match checked {
                Err(code) => r.error_code = code.code(),
                Ok((epoch, end)) => {
                    r.error_code = 0;
                    r.leader_epoch = epoch;
                    r.end_offset = end;
                }
            }
            partitions.push(r);
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions),
        );
    }
    ctx.respond(
        &OffsetForLeaderEpochResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
