//! LeaveGroup (key 13), v0–v5: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{deferred_group_call, Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::leave_group_request::LeaveGroupRequest;
use gregor_protocol::messages::leave_group_response::LeaveGroupResponse;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles LeaveGroup.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: LeaveGroupRequest = ctx.decode(body)?;
    let version = ctx.version;
    let group_id = req.group_id.as_str().to_string();
    deferred_group_call(
        ctx,
        &group_id,
        |code| LeaveGroupResponse::default().with_error_code(code.code()),
        |r| match r {
            GroupResponse::LeaveGroup(r) => Some(r),
            _ => None,
        },
        |c, id, now| c.leave_group(now, id, version, req),
    )
    .await
}
