//! Heartbeat (key 12), v0–v4: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{deferred_group_call, Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

/// Handles Heartbeat.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: HeartbeatRequest = ctx.decode(body)?;
    let version = ctx.version;
    let group_id = req.group_id.as_str().to_string();
    deferred_group_call(
        ctx,
        &group_id,
        |code| HeartbeatResponse::default().with_error_code(code.code()),
        |r| match r {
            GroupResponse::Heartbeat(r) => Some(r),
            _ => None,
        },
        |c, id, now| c.heartbeat(now, id, version, req),
    )
    .await
}
