//! OffsetFetch (key 9), v1–v9: answered by the group coordinator.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use gregor_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (1, 9);

/// Handles OffsetFetch (v8+ batches groups: fanned out over the group shards).
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: OffsetFetchRequest = ctx.decode(body)?;
    let version = ctx.version;
    if version < 8 {
        if !ctx.allowed(op::DESCRIBE, resource::GROUP, req.group_id.as_str()) {
            return ctx.respond(&unavailable(&req, ErrorCode::GroupAuthorizationFailed));
        }
        let result = ctx
            .groups()
            .read(req.group_id.as_str(), |c, topics, now| {
                c.offset_fetch(now, version, &req, topics)
            })
            .await;
        return super::coordinator_answer(ctx, result, |code| unavailable(&req, code));
    }
    let plan = ctx
        .groups()
        .by_shard(req.groups.iter().map(|g| g.group_id.as_str()));
    let mut answers = vec![None; req.groups.len()];
    for (i, g) in req.groups.iter().enumerate() {
        if !ctx.allowed(op::DESCRIBE, resource::GROUP, g.group_id.as_str()) {
            answers[i] = Some(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(ErrorCode::GroupAuthorizationFailed.code()),
            );
        }
    }
    for (shard, indexes) in plan {
        let indexes: Vec<usize> = indexes
            .into_iter()
            .filter(|i| answers[*i].is_none())
            .collect();
        if indexes.is_empty() {
            continue;
        }
        let mut sub = req.clone();
        sub.groups = indexes.iter().map(|i| req.groups[*i].clone()).collect();
        let result = ctx
            .groups()
            .read_shard(shard, |c, topics, now| {
                c.offset_fetch(now, version, &sub, topics).groups
            })
            .await;
        super::fill_shard_answers(&mut answers, &indexes, result, |i, code| {
            OffsetFetchResponseGroup::default()
                .with_group_id(req.groups[i].group_id.clone())
                .with_error_code(code.code())
        });
    }
    let groups: Vec<OffsetFetchResponseGroup> = answers.into_iter().flatten().collect();
    ctx.respond(&OffsetFetchResponse::default().with_groups(groups))
}

fn unavailable(req: &OffsetFetchRequest, code: ErrorCode) -> OffsetFetchResponse {
    use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
    let mut resp = OffsetFetchResponse::default();
    if req.groups.is_empty() {
        resp.error_code = code.code();
    } else {
        resp.groups = req
            .groups
            .iter()
            .map(|g| {
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(code.code())
            })
            .collect();
    }
    resp
}
