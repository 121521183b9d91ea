//! ListPartitionReassignments (key 46, v0) and AlterPartitionReassignments (key 45, v0–v1),
//! `kafka-reassign-partitions.sh --execute / --verify / --cancel`. The active controller runs
//! the reassignment as Kafka's KRaft controller does: the target replicas are added
//! (`adding_replicas`), catch up as followers, and once they are all in the ISR the partition
//! moves to the target set (leaving `removing_replicas`, electing a new leader if the old one
//! is removed). A `null` replica list cancels an ongoing reassignment. v1 (KIP-860) refuses a
//! change of the replication factor unless `allow_replication_factor_change`.
//! Listing reads this broker's metadata image (the same records the controller wrote).

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_controller::command::{Command, Reply};
use gregor_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use gregor_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use gregor_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use gregor_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};
use gregor_protocol::messages::{BrokerId, TopicName};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions of ListPartitionReassignments.
pub const LIST_VERSIONS: (i16, i16) = (0, 0);
/// Served versions of AlterPartitionReassignments.
pub const ALTER_VERSIONS: (i16, i16) = (0, 1);

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|b| BrokerId(*b)).collect()
}

/// Handles ListPartitionReassignments.
pub async fn list(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ListPartitionReassignmentsRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::DESCRIBE) {
        let code = ErrorCode::ClusterAuthorizationFailed;
        return ctx.respond(
            &ListPartitionReassignmentsResponse::default()
                .with_throttle_time_ms(0)
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_static_str(code.message()))),
        );
    }
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect::<Vec<_>>()
    });
    let image = ctx.metadata().image();
    let mut resp = ListPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0);
    for r in image.list_partition_reassignments(wanted.as_deref()) {
        let ongoing = OngoingPartitionReassignment::default()
            .with_partition_index(r.partition)
            .with_replicas(ids(&r.replicas))
            .with_adding_replicas(ids(&r.adding_replicas))
            .with_removing_replicas(ids(&r.removing_replicas));
        match resp
            .topics
            .iter_mut()
            .find(|t| t.name.0.as_str() == r.topic)
        {
            Some(t) => t.partitions.push(ongoing),
            None => resp.topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(r.topic)))
                    .with_partitions(vec![ongoing]),
            ),
        }
    }
    ctx.respond(&resp)
}

/// Handles AlterPartitionReassignments.
pub async fn alter(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterPartitionReassignmentsRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::ALTER) {
        return ctx.respond(&denied(&req, ctx.version));
    }
    let check_rf = ctx.version >= 1 && !req.allow_replication_factor_change;
    let image = ctx.metadata().image();
    // Per (topic, partition): an error decided here, or the index of its target in the command.
    let mut targets = Vec::new();
    let mut decided: Vec<Vec<Result<usize, (ErrorCode, String)>>> = Vec::new();
    for t in &req.topics {
        let name = t.name.0.as_str();
        let mut row = Vec::new();
        for p in &t.partitions {
            let target: Option<Vec<i32>> =
                p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            if let (true, Some(target)) = (check_rf, &target) {
                // KIP-860: the replication factor is the target's of an ongoing reassignment.
                let current = image
                    .topic(name)
                    .and_then(|m| image.partition(&m.id, p.partition_index));
                if let Some(part) = current {
                    let rf = part.replicas.len() - part.removing_replicas.len();
                    if rf != target.len() {
                        row.push(Err((
                            ErrorCode::InvalidReplicationFactor,
                            format!(
                                "The replication factor is changed from {rf} to {} but allowReplicationFactorChange is false",
                                target.len()
                            ),
                        )));
                        continue;
                    }
                }
            }
            row.push(Ok(targets.len()));
            targets.push((name.to_string(), p.partition_index, target));
        }
        decided.push(row);
    }
    let mut resp = AlterPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(0);
    if ctx.version >= 1 {
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    let outcomes = if targets.is_empty() {
        Vec::new()
    } else {
        match ctx
            .controller()
            .run(Command::AlterPartitionReassignments { targets })
            .await
        {
            Ok(Reply::Reassignments { results }) => results,
            Ok(_) => {
                resp.error_code = ErrorCode::UnknownServerError.code();
                return ctx.respond(&resp);
            }
            Err(e) => {
                tracing::debug!(error = %e, "AlterPartitionReassignments failed");
                resp.error_code = e.code.code();
                resp.error_message = Some(StrBytes::from_string(e.message));
                return ctx.respond(&resp);
            }
        }
    };
    for (t, row) in req.topics.iter().zip(decided) {
        let partitions = t
            .partitions
            .iter()
            .zip(row)
            .map(|(p, d)| {
                let (code, message) = match d {
                    Err((code, message)) => (code.code(), Some(message)),
                    Ok(i) => match outcomes.get(i).cloned().flatten() {
                        None => (0, None),
                        Some(e) => (e.code, Some(e.message)),
                    },
                };
                ReassignablePartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
            })
            .collect();
        resp.responses.push(
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    ctx.respond(&resp)
}

/// Kafka's answer to an unauthorized AlterPartitionReassignments: the error at the top and on
/// every partition.
fn denied(
    req: &AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    let code = ErrorCode::ClusterAuthorizationFailed;
    let message = || Some(StrBytes::from_static_str(code.message()));
    let mut resp = AlterPartitionReassignmentsResponse::default()
        .with_throttle_time_ms(0)
        .with_error_code(code.code())
        .with_error_message(message());
    if version >= 1 {
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    resp.responses = req
        .topics
        .iter()
        .map(|t| {
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code.code())
                                .with_error_message(message())
                        })
                        .collect(),
                )
        })
        .collect();
    resp
}
