//! InitProducerId (key 22), v0–v5, for idempotent producers: a fresh producer id (from
//! durable controller blocks, never reused across restarts) with epoch 0. Transactional ids
//! need the transaction coordinator, which does not exist yet.

use super::{Ctx, Response};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::messages::ProducerId;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles InitProducerId.
pub fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: InitProducerIdRequest = ctx.decode(body)?;
    let mut resp = InitProducerIdResponse::default()
        .with_throttle_time_ms(0)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        // No transaction coordinator yet: FindCoordinator(TRANSACTION) is not advertised, so
        // clients do not get here; answer clearly if one does.
        resp.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return ctx.respond(&resp);
    }
    match ctx.broker.next_producer_id() {
        Ok(id) => {
            resp.error_code = 0;
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => resp.error_code = controller_code(&e).code(),
    }
    ctx.respond(&resp)
}
