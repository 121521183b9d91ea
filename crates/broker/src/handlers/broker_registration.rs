//! BrokerRegistration (key 62), v0–v4, on the controller listener: a broker joins the cluster
//! with a new incarnation id per process and gets its broker epoch (the offset of its
//! registration record). Answered by the active controller only (NOT_CONTROLLER elsewhere);
//! INCONSISTENT_CLUSTER_ID for another cluster's id; DUPLICATE_BROKER_REGISTRATION when the id
//! is held by a live broker of another incarnation — nothing is applied in those cases.

use super::{Ctx, Response};
use crate::broker_lifecycle::registration_from_kafka;
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::broker_registration_request::BrokerRegistrationRequest;
use gregor_protocol::messages::broker_registration_response::BrokerRegistrationResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

/// Handles BrokerRegistration.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: BrokerRegistrationRequest = ctx.decode(body)?;
    let mut resp = BrokerRegistrationResponse::default()
        .with_throttle_time_ms(0)
        .with_broker_epoch(-1);
    let Some(controller) = ctx.controller().local() else {
        resp.error_code = ErrorCode::NotController.code();
        return ctx.respond(&resp);
    };
    match controller
        .register_broker(&registration_from_kafka(&req))
        .await
    {
        Ok(epoch) => resp.broker_epoch = epoch,
        Err(e) => {
            tracing::info!(broker = req.broker_id.0, error = %e, code = ?e.code, "broker registration refused");
            resp.error_code = e.code.code();
        }
    }
    ctx.respond(&resp)
}
