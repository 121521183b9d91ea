//! ConsumerGroupDescribe (key 69), v0–v1: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::ConsumerGroupDescribeResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles ConsumerGroupDescribe.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ConsumerGroupDescribeRequest = ctx.decode(body)?;
    let version = ctx.version;
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| {
            g.read(ctx.broker, |c, topics| {
                c.consumer_group_describe(version, &req, topics)
            })
        },
    )
    .await
}

fn unavailable(
    req: &ConsumerGroupDescribeRequest,
    code: ErrorCode,
) -> ConsumerGroupDescribeResponse {
    use gregor_protocol::messages::consumer_group_describe_response::DescribedGroup;
    ConsumerGroupDescribeResponse::default().with_groups(
        req.group_ids
            .iter()
            .map(|g| {
                DescribedGroup::default()
                    .with_group_id(g.clone())
                    .with_error_code(code.code())
            })
            .collect(),
    )
}
