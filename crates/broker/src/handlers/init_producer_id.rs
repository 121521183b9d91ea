//! InitProducerId (key 22), v0–v5. Without a transactional id: a fresh producer id (from
//! durable controller blocks, never reused across restarts) with epoch 0, for idempotent
//! producers. With one: the transaction coordinator (`txn_service`) bumps the epoch of the
//! id's producer (allocating one the first time), fences and aborts an ongoing transaction
//! (CONCURRENT_TRANSACTIONS until the abort completes), and from v3 accepts the producer
//! id/epoch of a recovering producer (KIP-360). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH
//! before v4, as in Kafka.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::messages::ProducerId;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles InitProducerId.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: InitProducerIdRequest = ctx.decode(body)?;
    let mut resp = InitProducerIdResponse::default()
        .with_throttle_time_ms(0)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // Authorization: WRITE on the transactional id; an idempotent producer needs
    // IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679), as Kafka.
    let denied = match &req.transactional_id {
        Some(tid) => (!ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, tid.as_str()))
            .then_some(ErrorCode::TransactionalIdAuthorizationFailed),
        None => {
            let a = &ctx.config().authorizer;
            let ok = !a.enabled()
                || ctx.cluster_allowed(op::IDEMPOTENT_WRITE)
                || a.authorize_any(
                    &ctx.metadata().image(),
                    ctx.principal,
                    &ctx.peer.ip().to_string(),
                    op::WRITE,
                    resource::TOPIC,
                );
            (!ok).then_some(ErrorCode::ClusterAuthorizationFailed)
        }
    };
    if let Some(code) = denied {
        resp.error_code = code.code();
        return ctx.respond(&resp);
    }
    if let Some(tid) = &req.transactional_id {
        let expected = match (req.producer_id.0, req.producer_epoch) {
            (-1, -1) => None,
            (pid, epoch) if pid >= 0 && epoch >= 0 => Some((pid, epoch)),
            _ => {
                resp.error_code = ErrorCode::InvalidRequest.code();
                return ctx.respond(&resp);
            }
        };
        let txns = ctx.txns();
        let mut allocate = || txns.producer_ids().next_or_retriable();
        let answer = txns
            .write(tid.as_str(), |c, now| {
                c.init_producer_id(
                    tid.as_str(),
                    req.transaction_timeout_ms,
                    expected,
                    &mut allocate,
                    now,
                )
            })
            .await;
        match answer {
            Ok(a) => {
                resp.error_code = if ctx.version < 4 && a.error == ErrorCode::ProducerFenced {
                    ErrorCode::InvalidProducerEpoch
                } else {
                    a.error
                }
                .code();
                resp.producer_id = ProducerId(a.producer_id);
                resp.producer_epoch = a.producer_epoch;
            }
            Err(e) => resp.error_code = e.code().code(),
        }
        return ctx.respond(&resp);
    }
    match ctx.txns().producer_ids().next().await {
        Ok(id) => {
            resp.error_code = 0;
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(code) => resp.error_code = code.code(),
    }
    ctx.respond(&resp)
}
