//! OffsetCommit (key 8), v2–v9: answered by the group coordinator.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_response::OffsetCommitResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (2, 9);

/// Handles OffsetCommit.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: OffsetCommitRequest = ctx.decode(body)?;
    let version = ctx.version;
    if !ctx.allowed(op::READ, resource::GROUP, req.group_id.as_str()) {
        return ctx.respond(&unavailable(&req, ErrorCode::GroupAuthorizationFailed));
    }
    if let Some(t) = req
        .topics
        .iter()
        .find(|t| !ctx.allowed(op::READ, resource::TOPIC, t.name.as_str()))
    {
        let _ = t;
        return ctx.respond(&unavailable(&req, ErrorCode::TopicAuthorizationFailed));
    }
    let result = ctx
        .groups()
        .write(req.group_id.as_str(), |c, topics, now| {
            c.offset_commit(now, version, req.clone(), topics)
        })
        .await;
    super::coordinator_answer(ctx, result, |code| unavailable(&req, code))
}

fn unavailable(req: &OffsetCommitRequest, code: ErrorCode) -> OffsetCommitResponse {
    use gregor_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    OffsetCommitResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code.code())
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
