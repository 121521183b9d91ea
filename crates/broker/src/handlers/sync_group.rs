//! SyncGroup (key 14), v0–v5: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::{now_ms, GroupsError};
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles SyncGroup.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: SyncGroupRequest = ctx.decode(body)?;
    let groups = &ctx.broker.groups;
    let unavailable = |code: ErrorCode| SyncGroupResponse::default().with_error_code(code.code());
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable(ErrorCode::CoordinatorNotAvailable));
    }
    let now = now_ms();
    let version = ctx.version;

    let answer = groups
        .call(ctx.broker, ctx.shutdown.clone(), |c, id, _| {
            c.sync_group(now, id, version, req)
        })
        .await;
    match answer {
        Ok(GroupResponse::SyncGroup(r)) => ctx.respond(&r),
        Ok(other) => Err(HandlerError::Internal(format!(
            "SyncGroup answered with {other:?}"
        ))),
        Err(GroupsError::ShuttingDown) => Err(HandlerError::ShuttingDown),
        Err(GroupsError::NotAvailable(_)) => {
            ctx.respond(&unavailable(ErrorCode::CoordinatorNotAvailable))
        }
    }
}
