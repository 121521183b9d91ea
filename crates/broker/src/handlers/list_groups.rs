//! ListGroups (key 16), v0–v5: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::ListGroupsResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles ListGroups.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ListGroupsRequest = ctx.decode(body)?;
    let version = ctx.version;
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| g.read(ctx.broker, |c, _| c.list_groups(version, &req)),
    )
    .await
}

fn unavailable(_req: &ListGroupsRequest, code: ErrorCode) -> ListGroupsResponse {
    ListGroupsResponse::default().with_error_code(code.code())
}
