//! EndTxn (key 26), v0–v5: commits or aborts the ongoing transaction. The PrepareCommit /
//! PrepareAbort record is persisted, the markers are written to every partition of the
//! transaction and the transaction completes before the answer is sent. A retry of a completed
//! end succeeds; ending a transaction in another state is INVALID_TXN_STATE. v5+ is
//! transaction version 2 (KIP-890): the epoch is bumped at every end and returned.
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::end_txn_response::EndTxnResponse;
use gregor_protocol::messages::ProducerId;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles EndTxn.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: EndTxnRequest = ctx.decode(body)?;
    let mut resp = EndTxnResponse::default()
        .with_throttle_time_ms(0)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if !ctx.allowed(
        op::WRITE,
        resource::TRANSACTIONAL_ID,
        req.transactional_id.as_str(),
    ) {
        resp.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return ctx.respond(&resp);
    }
    let bump = ctx.version >= 5;
    let txns = ctx.txns();
    let mut allocate = || txns.producer_ids().next_or_retriable();
    let answer = txns
        .write(req.transactional_id.as_str(), |c, now| {
            c.end_txn(
                req.transactional_id.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                req.committed,
                bump,
                &mut allocate,
                now,
            )
        })
        .await;
    match answer {
        Ok(a) => {
            resp.error_code = if ctx.version < 2 && a.error == ErrorCode::ProducerFenced {
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
    ctx.respond(&resp)
}
