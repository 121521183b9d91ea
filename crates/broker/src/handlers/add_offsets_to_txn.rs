//! AddOffsetsToTxn (key 25), v0–v4: adds the group's `__consumer_offsets` partition to the
//! transaction (so the commit/abort marker reaches the transaction's offset commits).
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use crate::group_service::OFFSETS_TOPIC;
use bytes::Bytes;
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

/// Handles AddOffsetsToTxn.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AddOffsetsToTxnRequest = ctx.decode(body)?;
    let mut resp = AddOffsetsToTxnResponse::default().with_throttle_time_ms(0);
    if !ctx.allowed(
        op::WRITE,
        resource::TRANSACTIONAL_ID,
        req.transactional_id.as_str(),
    ) {
        resp.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        return ctx.respond(&resp);
    }
    if !ctx.allowed(op::READ, resource::GROUP, req.group_id.as_str()) {
        resp.error_code = ErrorCode::GroupAuthorizationFailed.code();
        return ctx.respond(&resp);
    }
    // The marker goes to __consumer_offsets: it must exist.
    if let Err(e) = ctx.groups().ensure_topic().await {
        resp.error_code = e.code().code();
        return ctx.respond(&resp);
    }
    let partition = ctx.groups().partition_for(req.group_id.as_str());
    let code = ctx
        .txns()
        .write(req.transactional_id.as_str(), |c, now| {
            c.add_partitions(
                req.transactional_id.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                &[(OFFSETS_TOPIC.to_string(), partition)],
                now,
            )
        })
        .await
        .unwrap_or_else(|e| e.code());
    resp.error_code = if ctx.version < 2 && code == ErrorCode::ProducerFenced {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
    .code();
    ctx.respond(&resp)
}
