//! OffsetDelete (key 47), v0–v0: answered by the group coordinator. With an authorizer, as
//! Kafka's `KafkaApis`: DELETE on the group (else GROUP_AUTHORIZATION_FAILED for the whole
//! request), and READ on each topic (else its partitions are TOPIC_AUTHORIZATION_FAILED and
//! are not passed to the coordinator).

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Handles OffsetDelete.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let mut req: OffsetDeleteRequest = ctx.decode(body)?;
    if !ctx.allowed(op::DELETE, resource::GROUP, req.group_id.as_str()) {
        return ctx.respond(&unavailable(ErrorCode::GroupAuthorizationFailed));
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = req
        .topics
        .drain(..)
        .partition(|t| ctx.allowed(op::READ, resource::TOPIC, t.name.as_str()));
    req.topics = allowed;
    let denied: Vec<OffsetDeleteResponseTopic> = denied
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        })
                        .collect(),
                )
        })
        .collect();
    let version = ctx.version;
    let result = ctx
        .groups()
        .write(req.group_id.as_str(), |c, topics, now| {
            c.offset_delete(now, version, req.clone(), topics)
        })
        .await
        .map(|mut r| {
            if r.error_code == 0 {
                r.topics.extend(denied);
            }
            r
        });
    super::coordinator_answer(ctx, result, unavailable)
}

fn unavailable(code: ErrorCode) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(code.code())
}
