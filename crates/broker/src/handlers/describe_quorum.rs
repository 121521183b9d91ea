//! DescribeQuorum (key 55), v0–v2: the controller quorum that replicates `__cluster_metadata-0`
//! (`kafka-metadata-quorum.sh describe --status / --replication`). Answered by the active
//! controller from its raft status: leader, leader epoch, high watermark, and per voter its log
//! end offset and last fetch / caught-up times (v1+), with the voters' controller endpoints
//! (v2). A controller that is not active answers NOT_LEADER_OR_FOLLOWER; a broker forwards the
//! request to the active controller, as Kafka's brokers do.

use super::{Ctx, Plane, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use gregor_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use gregor_quorum::QuorumStatus;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

const METADATA_TOPIC: &str = "__cluster_metadata";

/// The answer from a quorum status (the active controller's).
fn from_status(
    req: &DescribeQuorumRequest,
    status: &QuorumStatus,
    version: i16,
    controller_listener: &str,
) -> DescribeQuorumResponse {
    let leader = status.leader.map_or(-1, |l| l as i32);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    if t.topic_name.0.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                        return PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                    }
                    if !status.is_leader() {
                        return PartitionData::default()
                            .with_partition_index(0)
                            .with_error_code(ErrorCode::NotLeaderOrFollower.code())
                            .with_leader_id(BrokerId(leader));
                    }
                    let voters = status
                        .voters
                        .iter()
                        .map(|v| {
                            let mut r = ReplicaState::default()
                                .with_replica_id(BrokerId(v.id as i32))
                                .with_log_end_offset(v.log_end_offset());
                            if version >= 1 {
                                r.last_fetch_timestamp =
                                    v.last_ack_unix_ms.map_or(-1, |t| t as i64);
                                r.last_caught_up_timestamp =
                                    v.last_caught_up_unix_ms.map_or(-1, |t| t as i64);
                            }
                            r
                        })
                        .collect();
                    PartitionData::default()
                        .with_partition_index(0)
                        .with_error_code(0)
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(status.leader_epoch.min(i32::MAX as u64) as i32)
                        .with_high_watermark(status.high_watermark())
                        .with_current_voters(voters)
                        .with_observers(vec![])
                })
                .collect();
            TopicData::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(partitions)
        })
        .collect();
    let mut resp = DescribeQuorumResponse::default()
        .with_error_code(0)
        .with_topics(topics);
    if version >= 2 {
        resp.nodes = status
            .voters
            .iter()
            .filter_map(|v| {
                let (host, port) = v.addr.rsplit_once(':')?;
                Some(
                    Node::default()
                        .with_node_id(BrokerId(v.id as i32))
                        .with_listeners(vec![Listener::default()
                            .with_name(StrBytes::from_string(controller_listener.to_string()))
                            .with_host(StrBytes::from_string(host.to_string()))
                            .with_port(port.parse().unwrap_or(0))]),
                )
            })
            .collect();
    }
    resp
}

/// Handles DescribeQuorum.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeQuorumRequest = ctx.decode(body)?;
    let controller_listener = ctx
        .config()
        .cluster
        .controller_listener
        .as_ref()
        .map_or("CONTROLLER".to_string(), |l| l.name.clone());
    let channel = ctx.controller();
    if let Some(local) = channel.local() {
        if local.is_active() || ctx.plane == Plane::Controller {
            return ctx.respond(&from_status(
                &req,
                &local.status(),
                ctx.version,
                &controller_listener,
            ));
        }
    }
    // A broker: the active controller answers.
    let Some((id, addr)) = channel.controller_target() else {
        return ctx.respond(
            &DescribeQuorumResponse::default().with_error_code(ErrorCode::NotController.code()),
        );
    };
    let version = ctx.version;
    let forwarded = channel
        .pool()
        .channel(id, &addr)
        .call(version, &req, std::time::Duration::from_secs(10))
        .await;
    match forwarded {
        Ok(resp) => ctx.respond(&resp),
        Err(e) => {
            channel.forget_leader();
            tracing::debug!(error = %e, "DescribeQuorum forwarding failed");
            ctx.respond(
                &DescribeQuorumResponse::default()
                    .with_error_code(ErrorCode::NotController.code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            )
        }
    }
}
