//! ConsumerGroupHeartbeat (key 68), v0–v1: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::now_ms;
use bytes::Bytes;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles ConsumerGroupHeartbeat.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ConsumerGroupHeartbeatRequest = ctx.decode(body)?;
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
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| {
            g.with(ctx.broker, |c, topics| {
                c.consumer_group_heartbeat(now_ms(), version, &client, req.clone(), topics)
            })
        },
    )
    .await
}

fn unavailable(
    _req: &ConsumerGroupHeartbeatRequest,
    code: ErrorCode,
) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default().with_error_code(code.code())
}
