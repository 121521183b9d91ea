//! Heartbeat (key 12), v0–v4: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::{now_ms, GroupsError};
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

/// Handles Heartbeat.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: HeartbeatRequest = ctx.decode(body)?;
    let groups = &ctx.broker.groups;
    let unavailable = |code: ErrorCode| HeartbeatResponse::default().with_error_code(code.code());
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable(ErrorCode::CoordinatorNotAvailable));
    }
    let now = now_ms();
    let version = ctx.version;

    let answer = groups
        .call(ctx.broker, ctx.shutdown.clone(), |c, id, _| {
            c.heartbeat(now, id, version, req)
        })
        .await;
    match answer {
        Ok(GroupResponse::Heartbeat(r)) => ctx.respond(&r),
        Ok(other) => Err(HandlerError::Internal(format!(
            "Heartbeat answered with {other:?}"
        ))),
        Err(GroupsError::ShuttingDown) => Err(HandlerError::ShuttingDown),
        Err(GroupsError::NotAvailable(_)) => {
            ctx.respond(&unavailable(ErrorCode::CoordinatorNotAvailable))
        }
    }
}
