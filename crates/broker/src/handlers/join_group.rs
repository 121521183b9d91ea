//! JoinGroup (key 11), v0–v9: handled by the group coordinator; the answer may wait for
//! other members (or a timer), so the connection awaits it.

use super::{deferred_group_call, Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_group_coordinator::Response as GroupResponse;
use gregor_protocol::messages::join_group_request::JoinGroupRequest;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 9);

/// Handles JoinGroup.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: JoinGroupRequest = ctx.decode(body)?;
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
    let group_id = req.group_id.as_str().to_string();
    deferred_group_call(
        ctx,
        &group_id,
        |code| JoinGroupResponse::default().with_error_code(code.code()),
        |r| match r {
            GroupResponse::JoinGroup(r) => Some(r),
            _ => None,
        },
        |c, id, now| c.join_group(now, id, version, &client, req),
    )
    .await
}
