//! AllocateProducerIds (key 67), v0, on the controller listener: the active controller hands a
//! broker the next block of producer ids and records it in the metadata log (a ProducerIds
//! record), so producer ids are unique across the cluster. Gregor's own brokers get their
//! blocks through the controller channel; this is the same command on Kafka's wire API.
//! NOT_CONTROLLER on a controller that is not active, STALE_BROKER_EPOCH for an unknown broker
//! or a wrong epoch.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_controller::command::{Command, Reply};
use gregor_protocol::messages::allocate_producer_ids_request::AllocateProducerIdsRequest;
use gregor_protocol::messages::allocate_producer_ids_response::AllocateProducerIdsResponse;
use gregor_protocol::messages::ProducerId;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Handles AllocateProducerIds.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AllocateProducerIdsRequest = ctx.decode(body)?;
    let mut resp = AllocateProducerIdsResponse::default()
        .with_throttle_time_ms(0)
        .with_producer_id_start(ProducerId(-1));
    let Some(controller) = ctx.controller().local().filter(|c| c.is_active()) else {
        resp.error_code = ErrorCode::NotController.code();
        return ctx.respond(&resp);
    };
    let command = Command::AllocateProducerIds {
        broker_id: req.broker_id.0,
        broker_epoch: req.broker_epoch,
    };
    match controller
        .execute(|s, _, _| s.run_command(&command, uuid::Uuid::nil()))
        .await
    {
        Ok((Reply::ProducerIds { start, end }, _)) => {
            resp.producer_id_start = ProducerId(start);
            resp.producer_id_len = (end - start).clamp(0, i64::from(i32::MAX)) as i32;
        }
        Ok(_) => resp.error_code = ErrorCode::UnknownServerError.code(),
        Err(e) => {
            tracing::debug!(broker = req.broker_id.0, error = %e, "AllocateProducerIds refused");
            resp.error_code = e.code.code();
        }
    }
    ctx.respond(&resp)
}
