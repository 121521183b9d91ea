//! ConsumerGroupDescribe (key 69), v0–v1: answered by the group coordinator. With an
//! authorizer, as Kafka's `KafkaApis`: a group without DESCRIBE is GROUP_AUTHORIZATION_FAILED
//! (listed first), the authorized operations are the principal's, and a group whose members'
//! assignments name a topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::{
    ConsumerGroupDescribeResponse, DescribedGroup,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles ConsumerGroupDescribe (fanned out over the group shards).
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let mut req: ConsumerGroupDescribeRequest = ctx.decode(body)?;
    let version = ctx.version;
    let (allowed, denied): (Vec<_>, Vec<_>) = req
        .group_ids
        .drain(..)
        .partition(|g| ctx.allowed(op::DESCRIBE, resource::GROUP, g.as_str()));
    req.group_ids = allowed;
    let mut groups: Vec<DescribedGroup> = denied
        .into_iter()
        .map(|g| {
            DescribedGroup::default()
                .with_group_id(g)
                .with_error_code(ErrorCode::GroupAuthorizationFailed.code())
        })
        .collect();
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
    let authorizer = &ctx.config().authorizer;
    for mut g in answers.into_iter().flatten() {
        if authorizer.enabled() && g.error_code == 0 {
            let hidden = g
                .members
                .iter()
                .flat_map(|m| [&m.assignment, &m.target_assignment])
                .flat_map(|a| &a.topic_partitions)
                .any(|tp| !ctx.allowed(op::DESCRIBE, resource::TOPIC, tp.topic_name.as_str()));
            if hidden {
                g = DescribedGroup::default()
                    .with_group_id(g.group_id)
                    .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "The group has described topic(s) that the client is not authorized to describe.",
                    )));
            } else if req.include_authorized_operations {
                g.authorized_operations = authorizer.authorized_operations(
                    &ctx.metadata().image(),
                    ctx.principal,
                    &ctx.peer.ip().to_string(),
                    resource::GROUP,
                    g.group_id.as_str(),
                );
            }
        }
        groups.push(g);
    }
    ctx.respond(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
