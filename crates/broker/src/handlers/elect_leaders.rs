//! ElectLeaders (key 43), v0–v2 (`kafka-leader-election.sh`): PREFERRED moves leadership to
//! each partition's first replica when it is alive and in the ISR, UNCLEAN (v1+) gives a
//! leaderless partition any live replica. The active controller decides (the command is
//! forwarded to it) and the answer comes once this broker's metadata has the new leaders.
//! Per partition: success, ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//! ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION with Kafka's messages; a null
//! partition list means every partition and reports only the partitions that needed an
//! election, as Kafka's controller does.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_controller::command::{Command, Reply};
use gregor_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use gregor_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use gregor_protocol::messages::TopicName;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

/// Handles ElectLeaders.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ElectLeadersRequest = ctx.decode(body)?;
    let mut resp = ElectLeadersResponse::default().with_throttle_time_ms(0);
    if !ctx.cluster_allowed(crate::authorizer::op::ALTER) {
        // Kafka: every named partition (and, v1+, the response) carries the error.
        let code = ErrorCode::ClusterAuthorizationFailed;
        if ctx.version >= 1 {
            resp.error_code = code.code();
        }
        fail_all(&mut resp, &req, code, code.message());
        return ctx.respond(&resp);
    }
    let election_type = if ctx.version >= 1 {
        req.election_type
    } else {
        PREFERRED
    };
    if election_type != PREFERRED && election_type != UNCLEAN {
        // Only v1+ has an election type (and a top-level error).
        resp.error_code = ErrorCode::InvalidRequest.code();
        return ctx.respond(&resp);
    }
    let partitions = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
            .collect::<Vec<_>>()
    });
    let command = Command::ElectLeaders {
        unclean: election_type == UNCLEAN,
        partitions,
    };
    let results = match ctx.controller().run(command).await {
        Ok(Reply::Elections { results }) => results,
        Ok(_) => {
            resp.error_code = ErrorCode::UnknownServerError.code();
            return ctx.respond(&resp);
        }
        Err(e) => {
            tracing::debug!(error = %e, "ElectLeaders failed");
            // v0 has no top-level error: every named partition carries it.
            if ctx.version == 0 {
                fail_all(&mut resp, &req, e.code, &e.message);
            } else {
                resp.error_code = e.code.code();
            }
            return ctx.respond(&resp);
        }
    };
    for (topic, partition, error) in results {
        let result = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(error.as_ref().map_or(0, |e| e.code))
            .with_error_message(error.map(|e| StrBytes::from_string(e.message)));
        match resp
            .replica_election_results
            .iter_mut()
            .find(|r| r.topic.0.as_str() == topic)
        {
            Some(r) => r.partition_result.push(result),
            None => resp.replica_election_results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    ctx.respond(&resp)
}

/// Gives every partition named in the request the error `code`.
fn fail_all(
    resp: &mut ElectLeadersResponse,
    req: &ElectLeadersRequest,
    code: ErrorCode,
    message: &str,
) {
    for t in req.topic_partitions.as_deref().unwrap_or_default() {
        resp.replica_election_results.push(
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(code.code())
                                .with_error_message(Some(StrBytes::from_string(
                                    message.to_string(),
                                )))
                        })
                        .collect(),
                ),
        );
    }
}
