//! ElectLeaders (key 43), v0–v2. A single node already leads every partition as its preferred
//! (and only) replica, so every named partition answers ELECTION_NOT_NEEDED, as Kafka does for
//! a partition whose preferred leader leads; a null partition list (all partitions) answers
//! no results, like Kafka's controller, which only reports partitions it had to elect.
//! Unknown topics/partitions answer UNKNOWN_TOPIC_OR_PARTITION.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use gregor_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Handles ElectLeaders.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ElectLeadersRequest = ctx.decode(body)?;
    let mut results = Vec::new();
    if ctx.version >= 1 && req.election_type != 0 && req.election_type != 1 {
        return ctx.respond(
            &ElectLeadersResponse::default()
                .with_throttle_time_ms(0)
                .with_error_code(ErrorCode::InvalidRequest.code()),
        );
    }
    for t in req.topic_partitions.as_deref().unwrap_or_default() {
        let name = t.topic.0.as_str();
        let count = ctx.metadata().topic(name).map(|m| m.partitions);
        let partition_result = t
            .partitions
            .iter()
            .map(|&p| {
                let (code, msg) = match count {
                    Some(n) if p >= 0 && p < n => (
                        ErrorCode::ElectionNotNeeded,
                        "Leader election not needed for topic partition.".to_string(),
                    ),
                    Some(_) => (
                        ErrorCode::UnknownTopicOrPartition,
                        format!("No such partition as {name}-{p}"),
                    ),
                    None => (
                        ErrorCode::UnknownTopicOrPartition,
                        format!("No such topic as {name}"),
                    ),
                };
                PartitionResult::default()
                    .with_partition_id(p)
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(msg)))
            })
            .collect();
        results.push(
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(partition_result),
        );
    }
    ctx.respond(
        &ElectLeadersResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(0)
            .with_replica_election_results(results),
    )
}
