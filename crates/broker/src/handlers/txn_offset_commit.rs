//! TxnOffsetCommit (key 28), v0–v5: offsets committed inside a transaction. The group's
//! `__consumer_offsets` partition must be part of the producer's ongoing transaction
//! (AddOffsetsToTxn; checked with the transaction coordinator, as Kafka's
//! `transaction.partition.verification.enable`). The offsets are appended as a transactional
//! batch of the producer and become visible to OffsetFetch when the COMMIT marker lands (an
//! ABORT drops them). PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use crate::group_service::OFFSETS_TOPIC;
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
    let version = ctx.version;
    if !ctx.allowed(
        op::WRITE,
        resource::TRANSACTIONAL_ID,
        req.transactional_id.as_str(),
    ) {
        return ctx.respond(&all(
            &req,
            ErrorCode::TransactionalIdAuthorizationFailed.code(),
        ));
    }
    if !ctx.allowed(op::READ, resource::GROUP, req.group_id.as_str()) {
        return ctx.respond(&all(&req, ErrorCode::GroupAuthorizationFailed.code()));
    }
    if req
        .topics
        .iter()
        .any(|t| !ctx.allowed(op::READ, resource::TOPIC, t.name.as_str()))
    {
        return ctx.respond(&all(&req, ErrorCode::TopicAuthorizationFailed.code()));
    }
    let partition = ctx.groups().partition_for(req.group_id.as_str());
    // The transaction coordinator may be another broker (asked over the inter-broker
    // listener); a coordinator that cannot answer now is COORDINATOR_NOT_AVAILABLE (retriable).
    let verified = ctx
        .txns()
        .check_partition(
            req.transactional_id.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            OFFSETS_TOPIC,
            partition,
        )
        .await;
    if verified != ErrorCode::None {
        let code = if version < 2 && verified == ErrorCode::ProducerFenced {
            ErrorCode::InvalidProducerEpoch
        } else {
            verified
        };
        return ctx.respond(&all(&req, code.code()));
    }
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let answer = ctx
        .groups()
        .write_txn(req.group_id.as_str(), pid, epoch, |c, topics, now| {
            c.txn_offset_commit(now, version, req.clone(), topics)
        })
        .await;
    super::coordinator_answer(ctx, answer, |code| all(&req, code.code()))
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
