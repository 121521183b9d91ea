//! DeleteGroups (key 42), v0–v2: answered by the group coordinator.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use gregor_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Handles DeleteGroups (fanned out over the group shards).
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DeleteGroupsRequest = ctx.decode(body)?;
    let version = ctx.version;
    let plan = ctx
        .groups()
        .by_shard(req.groups_names.iter().map(|g| g.as_str()));
    let mut answers = vec![None; req.groups_names.len()];
    for (i, g) in req.groups_names.iter().enumerate() {
        if !ctx.allowed(op::DELETE, resource::GROUP, g.as_str()) {
            answers[i] = Some(
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
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
        let sub = DeleteGroupsRequest::default().with_groups_names(
            indexes
                .iter()
                .map(|i| req.groups_names[*i].clone())
                .collect(),
        );
        let result = ctx
            .groups()
            .write_shard(shard, |c, _, now| {
                let (records, resp) = c.delete_groups(now, version, &sub);
                (records, resp.results)
            })
            .await;
        super::fill_shard_answers(&mut answers, &indexes, result, |i, code| {
            DeletableGroupResult::default()
                .with_group_id(req.groups_names[i].clone())
                .with_error_code(code.code())
        });
    }
    ctx.respond(
        &DeleteGroupsResponse::default().with_results(answers.into_iter().flatten().collect()),
    )
}
