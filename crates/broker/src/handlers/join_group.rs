//! JoinGroup (key 11), v0–v9: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::{now_ms, GroupsError};
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::join_group_request::JoinGroupRequest;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 9);

/// Handles JoinGroup.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: JoinGroupRequest = ctx.decode(body)?;
    let groups = &ctx.broker.groups;
    let unavailable = |code: ErrorCode| JoinGroupResponse::default().with_error_code(code.code());
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable(ErrorCode::CoordinatorNotAvailable));
    }
    let now = now_ms();
    let version = ctx.version;
    let client = gregor_group_coordinator::ClientInfo {
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let answer = groups
        .call(ctx.broker, ctx.shutdown.clone(), |c, id, _| {
            c.join_group(now, id, version, &client, req)
        })
        .await;
    match answer {
        Ok(GroupResponse::JoinGroup(r)) => ctx.respond(&r),
        Ok(other) => Err(HandlerError::Internal(format!(
            "JoinGroup answered with {other:?}"
        ))),
        Err(GroupsError::ShuttingDown) => Err(HandlerError::ShuttingDown),
        Err(GroupsError::NotAvailable(_)) => {
            ctx.respond(&unavailable(ErrorCode::CoordinatorNotAvailable))
        }
    }
}
