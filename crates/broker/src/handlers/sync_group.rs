//! SyncGroup (key 14), v0–v5: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{deferred_group_call, Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles SyncGroup.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: SyncGroupRequest = ctx.decode(body)?;
    let version = ctx.version;
    let group_id = req.group_id.as_str().to_string();
    deferred_group_call(
        ctx,
        &group_id,
        |code| SyncGroupResponse::default().with_error_code(code.code()),
        |r| match r {
            GroupResponse::SyncGroup(r) => Some(r),
            _ => None,
        },
        |c, id, now| c.sync_group(now, id, version, req),
    )
    .await
}
