//! DescribeProducers (key 61), v0: per partition, the active producers of its producer state
//! (Kafka's `ReplicaManager.activeProducerState`): producer id and epoch, last sequence, max
//! timestamp of the last batch, coordinator epoch of the last marker and the first offset of
//! the ongoing transaction (-1 if none). UNKNOWN_TOPIC_OR_PARTITION for an unknown partition.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_producers_request::DescribeProducersRequest;
use gregor_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use gregor_protocol::messages::ProducerId;
use gregor_protocol::ErrorCode;
use gregor_storage::ProducerEntrySummary;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

fn producer_state(producer_id: i64, s: &ProducerEntrySummary) -> ProducerState {
    ProducerState::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(i32::from(s.epoch))
        .with_last_sequence(s.last_sequence)
        .with_last_timestamp(s.last_timestamp)
        .with_coordinator_epoch(s.coordinator_epoch)
        .with_current_txn_start_offset(s.current_txn_first_offset.unwrap_or(-1))
}

/// Handles DescribeProducers.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeProducersRequest = ctx.decode(body)?;
    let mut resp = DescribeProducersResponse::default().with_throttle_time_ms(0);
    for t in &req.topics {
        let name = t.name.0.as_str();
        // Kafka: READ on the topic, checked before the partition is looked up.
        let allowed = ctx.allowed(
            crate::authorizer::op::READ,
            crate::authorizer::resource::TOPIC,
            name,
        );
        let mut partitions = Vec::with_capacity(t.partition_indexes.len());
        for &index in &t.partition_indexes {
            let mut r = PartitionResponse::default().with_partition_index(index);
            let producers = if !allowed {
                Err(ErrorCode::TopicAuthorizationFailed)
            } else {
                ctx.replicas()
                    .leader_partition(name, index, -1)
                    .and_then(|part| {
                        part.with_log(|log| log.producers())
                            .ok_or(ErrorCode::UnknownTopicOrPartition)
                    })
            };
            match producers {
                Ok(all) => {
                    r.active_producers = all.iter().map(|(id, s)| producer_state(*id, s)).collect();
                }
                Err(code) => r.error_code = code.code(),
            }
            partitions.push(r);
        }
        resp.topics.push(
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    ctx.respond(&resp)
}
