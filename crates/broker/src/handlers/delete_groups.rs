//! DeleteGroups (key 42), v0–v2: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::now_ms;
use bytes::Bytes;
use gregor_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use gregor_protocol::messages::delete_groups_response::DeleteGroupsResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Handles DeleteGroups.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DeleteGroupsRequest = ctx.decode(body)?;
    let version = ctx.version;
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| g.with(ctx.broker, |c, _| c.delete_groups(now_ms(), version, &req)),
    )
    .await
}

fn unavailable(req: &DeleteGroupsRequest, code: ErrorCode) -> DeleteGroupsResponse {
    use gregor_protocol::messages::delete_groups_response::DeletableGroupResult;
    DeleteGroupsResponse::default().with_results(
        req.groups_names
            .iter()
            .map(|g| {
                DeletableGroupResult::default()
                    .with_group_id(g.clone())
                    .with_error_code(code.code())
            })
            .collect(),
    )
}
