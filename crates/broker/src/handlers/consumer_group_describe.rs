//! ConsumerGroupDescribe (key 69), v0–v1: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
#[allow(unused_imports)]
use crate::groups::now_ms;
use bytes::Bytes;
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_group_describe_response::ConsumerGroupDescribeResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles ConsumerGroupDescribe.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ConsumerGroupDescribeRequest = ctx.decode(body)?;
    let groups = &ctx.broker.groups;
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable(&req, ErrorCode::CoordinatorNotAvailable));
    }
    let version = ctx.version;
    let result = groups.read(ctx.broker, |c, topics| {
        c.consumer_group_describe(version, &req, topics)
    });
    match result {
        Ok(resp) => ctx.respond(&resp),
        Err(_) => ctx.respond(&unavailable(&req, ErrorCode::CoordinatorNotAvailable)),
    }
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
