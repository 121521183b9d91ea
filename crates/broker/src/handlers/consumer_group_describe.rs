//! ConsumerGroupDescribe (key 69), v0–v1: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::{
    ConsumerGroupDescribeResponse, DescribedGroup,
};

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles ConsumerGroupDescribe (fanned out over the group shards).
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ConsumerGroupDescribeRequest = ctx.decode(body)?;
    let version = ctx.version;
    let plan = ctx
        .groups()
        .by_shard(req.group_ids.iter().map(|g| g.as_str()));
    let mut answers = vec![None; req.group_ids.len()];
    for (shard, indexes) in plan {
        let mut sub = req.clone();
        sub.group_ids = indexes.iter().map(|i| req.group_ids[*i].clone()).collect();
        let result = ctx
            .groups()
            .read_shard(shard, |c, topics, _| {
                c.consumer_group_describe(version, &sub, topics).groups
            })
            .await;
        super::fill_shard_answers(&mut answers, &indexes, result, |i, code| {
            DescribedGroup::default()
                .with_group_id(req.group_ids[i].clone())
                .with_error_code(code.code())
        });
    }
    ctx.respond(
        &ConsumerGroupDescribeResponse::default()
            .with_groups(answers.into_iter().flatten().collect()),
    )
}
