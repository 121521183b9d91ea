//! AddOffsetsToTxn (key 25), v0–v4: adds the group's `__consumer_offsets` partition to the
//! transaction (so the commit/abort marker reaches the transaction's offset commits).
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::{now_ms, OFFSETS_TOPIC};
use bytes::Bytes;
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

/// Handles AddOffsetsToTxn.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AddOffsetsToTxnRequest = ctx.decode(body)?;
    let broker = ctx.broker;
    let mut resp = AddOffsetsToTxnResponse::default().with_throttle_time_ms(0);
    // The marker goes to __consumer_offsets: it must exist.
    if broker.txns.ensure_loaded(broker).await.is_err()
        || broker.groups.ensure_loaded(broker).await.is_err()
    {
        resp.error_code = ErrorCode::CoordinatorNotAvailable.code();
        return ctx.respond(&resp);
    }
    let partition = broker.groups.partition_for(req.group_id.as_str());
    let now = now_ms();
    let code = broker
        .txns
        .with(broker, |c| {
            c.add_partitions(
                req.transactional_id.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                &[(OFFSETS_TOPIC.to_string(), partition)],
                now,
            )
        })
        .unwrap_or(ErrorCode::CoordinatorNotAvailable);
    resp.error_code = if ctx.version < 2 && code == ErrorCode::ProducerFenced {
        ErrorCode::InvalidProducerEpoch
    } else {
        code
    }
    .code();
    ctx.respond(&resp)
}
