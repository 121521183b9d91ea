//! DescribeQuorum (key 55), v0–v2: the KRaft metadata quorum of a single node — this node is
//! the only voter and the leader of `__cluster_metadata-0` in epoch 1, fully caught up; the
//! high watermark is the number of metadata records committed.

use super::{Ctx, Response};
use crate::clock::now_ms;
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use gregor_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

const METADATA_TOPIC: &str = "__cluster_metadata";
const QUORUM_EPOCH: i32 = 1;

/// Handles DescribeQuorum.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeQuorumRequest = ctx.decode(body)?;
    let node = ctx.node_id();
    let hw = ctx.metadata().image().last_offset().max(0);
    let now = now_ms();
    let mut topics = Vec::new();
    for t in &req.topics {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                if t.topic_name.0.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                    return PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                }
                let mut voter = ReplicaState::default()
                    .with_replica_id(BrokerId(node))
                    .with_log_end_offset(hw);
                if ctx.version >= 1 {
                    voter.last_fetch_timestamp = now;
                    voter.last_caught_up_timestamp = now;
                }
                PartitionData::default()
                    .with_partition_index(0)
                    .with_error_code(0)
                    .with_leader_id(BrokerId(node))
                    .with_leader_epoch(QUORUM_EPOCH)
                    .with_high_watermark(hw)
                    .with_current_voters(vec![voter])
                    .with_observers(vec![])
            })
            .collect();
        topics.push(
            TopicData::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(partitions),
        );
    }
    let mut resp = DescribeQuorumResponse::default()
        .with_error_code(0)
        .with_topics(topics);
    if ctx.version >= 2 {
        let adv = ctx.config().advertised_for(&ctx.listener.name);
        resp.nodes = vec![Node::default()
            .with_node_id(BrokerId(node))
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_string(adv.name.clone()))
                .with_host(StrBytes::from_string(adv.host.clone()))
                .with_port(adv.port)])];
    }
    ctx.respond(&resp)
}
