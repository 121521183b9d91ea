//! DescribeGroups (key 15), v0–v6: answered by the group coordinator.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 6);

/// Handles DescribeGroups (fanned out over the group shards).
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeGroupsRequest = ctx.decode(body)?;
    let version = ctx.version;
    let plan = ctx.groups().by_shard(req.groups.iter().map(|g| g.as_str()));
    let mut answers = vec![None; req.groups.len()];
    for (i, g) in req.groups.iter().enumerate() {
        if !ctx.allowed(op::DESCRIBE, resource::GROUP, g.as_str()) {
            answers[i] = Some(
                DescribedGroup::default()
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
        let mut sub = req.clone();
        sub.groups = indexes.iter().map(|i| req.groups[*i].clone()).collect();
        let result = ctx
            .groups()
            .read_shard(shard, |c, _, _| c.describe_groups(version, &sub).groups)
            .await;
        super::fill_shard_answers(&mut answers, &indexes, result, |i, code| {
            DescribedGroup::default()
                .with_group_id(req.groups[i].clone())
                .with_error_code(code.code())
        });
    }
    let mut groups: Vec<DescribedGroup> = answers.into_iter().flatten().collect();
    if version >= 3 && req.include_authorized_operations {
        let a = &ctx.config().authorizer;
        let image = ctx.metadata().image();
        for g in &mut groups {
            if g.error_code == 0 {
                g.authorized_operations = if a.enabled() {
                    a.authorized_operations(
                        &image,
                        ctx.principal,
                        &ctx.peer.ip().to_string(),
                        resource::GROUP,
                        g.group_id.as_str(),
                    )
                } else {
                    // No authorizer: READ, DELETE and DESCRIBE on groups are allowed.
                    (1 << 3) | (1 << 6) | (1 << 8)
                };
            }
        }
    }
    ctx.respond(&DescribeGroupsResponse::default().with_groups(groups))
}
