//! TxnOffsetCommit (key 28), v0–v5: offsets committed inside a transaction. The group's
//! `__consumer_offsets` partition must be part of the producer's ongoing transaction
//! (AddOffsetsToTxn; checked with the transaction coordinator, as Kafka's
//! `transaction.partition.verification.enable`). The offsets are appended as a transactional
//! batch of the producer and become visible to OffsetFetch when the COMMIT marker lands (an
//! ABORT drops them). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::{now_ms, OFFSETS_TOPIC};
use bytes::Bytes;
use gregor_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use gregor_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles TxnOffsetCommit.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: TxnOffsetCommitRequest = ctx.decode(body)?;
    let broker = ctx.broker;
    let version = ctx.version;
    if broker.txns.ensure_loaded(broker).await.is_err()
        || broker.groups.ensure_loaded(broker).await.is_err()
    {
        return ctx.respond(&all(&req, ErrorCode::CoordinatorNotAvailable.code()));
    }
    let partition = broker.groups.partition_for(req.group_id.as_str());
    let verified = broker
        .txns
        .read(|c| {
            c.verify_partitions(
                req.transactional_id.as_str(),
                req.producer_id.0,
                req.producer_epoch,
                &[(OFFSETS_TOPIC.to_string(), partition)],
            )
        })
        .map(|codes| codes.first().copied().unwrap_or(ErrorCode::InvalidTxnState))
        .unwrap_or(ErrorCode::CoordinatorNotAvailable);
    if verified != ErrorCode::None {
        let code = if version < 2 && verified == ErrorCode::ProducerFenced {
            ErrorCode::InvalidProducerEpoch
        } else {
            verified
        };
        return ctx.respond(&all(&req, code.code()));
    }
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let answer = broker.groups.with_txn(broker, pid, epoch, |c, topics| {
        c.txn_offset_commit(now_ms(), version, req.clone(), topics)
    });
    match answer {
        Ok(resp) => ctx.respond(&resp),
        Err(_) => ctx.respond(&all(&req, ErrorCode::CoordinatorNotAvailable.code())),
    }
}

fn all(req: &TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}
