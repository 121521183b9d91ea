//! AddPartitionsToTxn (key 24), v0–v5. v0–v3 is the producer's form (one transaction, answers
//! by topic); v4+ is the batched form (several transactions, answers per transaction, optional
//! `verify_only`). As in Kafka, a request naming an unknown topic or partition fails as a whole:
//! those partitions get UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED.
//! PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use gregor_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles AddPartitionsToTxn.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AddPartitionsToTxnRequest = ctx.decode(body)?;
    let mut resp = AddPartitionsToTxnResponse::default().with_throttle_time_ms(0);
    if ctx.version <= 3 {
        let errors = one(
            ctx,
            req.v3_and_below_transactional_id.as_str(),
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        )
        .await;
        resp.results_by_topic_v3_and_below = results(errors);
    } else {
        for t in &req.transactions {
            let errors = one(
                ctx,
                t.transactional_id.as_str(),
                t.producer_id.0,
                t.producer_epoch,
                t.verify_only,
                &t.topics,
            )
            .await;
            resp.results_by_transaction.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(results(errors)),
            );
        }
    }
    ctx.respond(&resp)
}

/// The error of every partition of one transaction's request.
async fn one(
    ctx: &Ctx<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> BTreeMap<(String, i32), i16> {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let all = |code: i16| partitions.iter().map(|p| (p.clone(), code)).collect();
    // Authorization: v4+ (broker to broker) needs CLUSTER_ACTION; the producer form WRITE on
    // the transactional id and on every topic (the others OPERATION_NOT_ATTEMPTED), as Kafka.
    if ctx.version >= 4 && !ctx.cluster_allowed(op::CLUSTER_ACTION) {
        return all(ErrorCode::ClusterAuthorizationFailed.code());
    }
    if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, transactional_id) {
        return all(ErrorCode::TransactionalIdAuthorizationFailed.code());
    }
    let denied: Vec<&(String, i32)> = partitions
        .iter()
        .filter(|(t, _)| !ctx.allowed(op::WRITE, resource::TOPIC, t))
        .collect();
    if !denied.is_empty() {
        return partitions
            .iter()
            .map(|p| {
                let code = if denied.contains(&p) {
                    ErrorCode::TopicAuthorizationFailed
                } else {
                    ErrorCode::OperationNotAttempted
                };
                (p.clone(), code.code())
            })
            .collect();
    }
    let unknown: Vec<&(String, i32)> = partitions
        .iter()
        .filter(|(t, p)| {
            ctx.metadata()
                .topic(t)
                .is_none_or(|m| *p < 0 || *p >= m.partitions)
        })
        .collect();
    if !unknown.is_empty() {
        return partitions
            .iter()
            .map(|p| {
                let code = if unknown.contains(&p) {
                    ErrorCode::UnknownTopicOrPartition
                } else {
                    ErrorCode::OperationNotAttempted
                };
                (p.clone(), code.code())
            })
            .collect();
    }
    let fenced = |code: ErrorCode| {
        if ctx.version < 2 && code == ErrorCode::ProducerFenced {
            ErrorCode::InvalidProducerEpoch
        } else {
            code
        }
        .code()
    };
    let txns = ctx.txns();
    if verify_only {
        return match txns
            .read(transactional_id, |c| {
                c.verify_partitions(transactional_id, producer_id, producer_epoch, &partitions)
            })
            .await
        {
            Ok(codes) => partitions
                .iter()
                .cloned()
                .zip(codes.into_iter().map(fenced))
                .collect(),
            Err(e) => all(e.code().code()),
        };
    }
    match txns
        .write(transactional_id, |c, now| {
            c.add_partitions(
                transactional_id,
                producer_id,
                producer_epoch,
                &partitions,
                now,
            )
        })
        .await
    {
        Ok(code) => all(fenced(code)),
        Err(e) => all(e.code().code()),
    }
}

fn results(errors: BTreeMap<(String, i32), i16>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for ((t, p), code) in errors {
        by_topic.entry(t).or_default().push(
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(p)
                .with_partition_error_code(code),
        );
    }
    by_topic
        .into_iter()
        .map(|(t, parts)| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(gregor_protocol::messages::TopicName(
                    gregor_protocol::protocol::StrBytes::from_string(t),
                ))
                .with_results_by_partition(parts)
        })
        .collect()
}
