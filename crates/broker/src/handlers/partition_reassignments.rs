//! ListPartitionReassignments (key 46, v0) and AlterPartitionReassignments (key 45, v0–v1).
//! A single node has nothing to move: no reassignment is ever in progress, a reassignment to
//! the current replica set (this node) completes at once, anything else names an
//! unregistered broker.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use gregor_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use gregor_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use gregor_protocol::messages::list_partition_reassignments_response::ListPartitionReassignmentsResponse;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions of ListPartitionReassignments.
pub const LIST_VERSIONS: (i16, i16) = (0, 0);
/// Served versions of AlterPartitionReassignments.
pub const ALTER_VERSIONS: (i16, i16) = (0, 1);

/// Handles ListPartitionReassignments: never any ongoing reassignment.
pub async fn list(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let _req: ListPartitionReassignmentsRequest = ctx.decode(body)?;
    ctx.respond(&ListPartitionReassignmentsResponse::default().with_error_code(0))
}

/// Handles AlterPartitionReassignments.
pub async fn alter(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterPartitionReassignmentsRequest = ctx.decode(body)?;
    let node = ctx.node_id();
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let meta = ctx.metadata().topic(t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let exists = meta
                        .as_ref()
                        .is_some_and(|m| p.partition_index >= 0 && p.partition_index < m.partitions);
                    let (code, msg): (ErrorCode, Option<String>) = if !exists {
                        (
                            ErrorCode::UnknownTopicOrPartition,
                            Some("This server does not host this topic-partition.".into()),
                        )
                    } else {
                        match &p.replicas {
                            None => (
                                ErrorCode::NoReassignmentInProgress,
                                Some(format!(
                                    "Unable to cancel reassignment for partition {}-{}: no reassignment is in progress.",
                                    t.name.0.as_str(),
                                    p.partition_index
                                )),
                            ),
                            Some(r) if r.len() == 1 && r[0].0 == node => (ErrorCode::None, None),
                            Some(r) if r.is_empty() => (
                                ErrorCode::InvalidReplicaAssignment,
                                Some("The replica list must not be empty.".into()),
                            ),
                            Some(r) => (
                                ErrorCode::InvalidReplicaAssignment,
                                Some(format!(
                                    "The manual partition assignment includes brokers that are not registered: {:?}",
                                    r.iter().map(|b| b.0).filter(|b| *b != node).collect::<Vec<_>>()
                                )),
                            ),
                        }
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                        .with_error_message(msg.map(StrBytes::from_string))
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let mut resp = AlterPartitionReassignmentsResponse::default()
        .with_error_code(0)
        .with_responses(responses);
    if ctx.version >= 1 {
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    ctx.respond(&resp)
}
