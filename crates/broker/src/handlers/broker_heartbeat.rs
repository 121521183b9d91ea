//! BrokerHeartbeat (key 63), v0–v1, on the controller listener: keeps a broker's session alive,
//! reports the metadata offset it has applied (it is unfenced once caught up to its own
//! registration) and carries controlled-shutdown requests. Answered by the active controller
//! only (NOT_CONTROLLER elsewhere); STALE_BROKER_EPOCH for an unknown broker or an epoch that is
//! not its current one (the answer then says fenced, as Kafka's).

use super::{Ctx, Response};
use crate::broker_lifecycle::heartbeat_from_kafka;
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest;
use gregor_protocol::messages::broker_heartbeat_response::BrokerHeartbeatResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles BrokerHeartbeat.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: BrokerHeartbeatRequest = ctx.decode(body)?;
    let mut resp = BrokerHeartbeatResponse::default()
        .with_throttle_time_ms(0)
        .with_is_fenced(true);
    let Some(controller) = ctx.controller().local() else {
        resp.error_code = ErrorCode::NotController.code();
        return ctx.respond(&resp);
    };
    match controller.heartbeat(&heartbeat_from_kafka(&req)).await {
        Ok(r) => {
            resp.is_caught_up = r.is_caught_up;
            resp.is_fenced = r.is_fenced;
            resp.should_shut_down = r.should_shutdown;
        }
        Err(e) => {
            tracing::debug!(broker = req.broker_id.0, error = %e, "broker heartbeat refused");
            resp.error_code = e.code.code();
        }
    }
    ctx.respond(&resp)
}
