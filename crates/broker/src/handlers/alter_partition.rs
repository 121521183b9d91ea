//! AlterPartition (key 56), v2–v3, on the controller listener: a partition leader proposes a
//! new ISR (shrink when a follower falls behind, expand when one catches up) or ends leader
//! recovery. Answered by the active controller only (NOT_CONTROLLER elsewhere). As Kafka's
//! `QuorumController.alterPartition`: a stale broker epoch fails the whole request
//! (STALE_BROKER_EPOCH at the top level); everything else is per partition, with the state the
//! partition has once the change is committed.

use super::{Ctx, Response};
use crate::controller::recovery_value;
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_controller::{AlterPartitionRequest as Proposal, LeaderRecoveryState};
use gregor_protocol::messages::alter_partition_request::AlterPartitionRequest;
use gregor_protocol::messages::alter_partition_response::{
    AlterPartitionResponse, PartitionData, TopicData,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::ErrorCode;

/// Served versions (Kafka 4 dropped v0–v1, which named topics instead of ids).
pub const VERSIONS: (i16, i16) = (2, 3);

/// Handles AlterPartition.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterPartitionRequest = ctx.decode(body)?;
    let mut resp = AlterPartitionResponse::default().with_throttle_time_ms(0);
    let Some(controller) = ctx.controller().local().filter(|c| c.is_active()) else {
        resp.error_code = ErrorCode::NotController.code();
        return ctx.respond(&resp);
    };
    for topic in &req.topics {
        let mut out = TopicData::default().with_topic_id(topic.topic_id);
        for p in &topic.partitions {
            // v3 carries broker epochs; v2's plain ids skip the epoch check (-1).
            let new_isr_with_epochs = if ctx.version >= 3 {
                p.new_isr_with_epochs
                    .iter()
                    .map(|b| (b.broker_id.0, b.broker_epoch))
                    .collect()
            } else {
                p.new_isr.iter().map(|b| (b.0, -1)).collect()
            };
            let proposal = Proposal {
                broker_id: req.broker_id.0,
                broker_epoch: req.broker_epoch,
                topic_id: topic.topic_id,
                partition: p.partition_index,
                leader_epoch: p.leader_epoch,
                new_isr_with_epochs,
                leader_recovery_state: if p.leader_recovery_state == 1 {
                    LeaderRecoveryState::Recovering
                } else {
                    LeaderRecoveryState::Recovered
                },
                partition_epoch: p.partition_epoch,
            };
            let mut data = PartitionData::default()
                .with_partition_index(p.partition_index)
                .with_leader_id(BrokerId(-1))
                .with_leader_epoch(-1)
                .with_partition_epoch(-1);
            match controller
                .execute(|s, _, _| s.alter_partition(&proposal))
                .await
            {
                Ok((reply, _)) => {
                    data.error_code = reply.code.code();
                    data.leader_id = BrokerId(reply.leader);
                    data.leader_epoch = reply.leader_epoch;
                    data.isr = reply.isr.iter().map(|b| BrokerId(*b)).collect();
                    data.leader_recovery_state = recovery_value(reply.leader_recovery_state);
                    data.partition_epoch = reply.partition_epoch;
                }
                Err(e) if e.code == ErrorCode::StaleBrokerEpoch => {
                    tracing::debug!(broker = req.broker_id.0, error = %e, "alter partition refused");
                    let mut top = AlterPartitionResponse::default().with_throttle_time_ms(0);
                    top.error_code = e.code.code();
                    return ctx.respond(&top);
                }
                Err(e) => {
                    tracing::debug!(broker = req.broker_id.0, partition = p.partition_index, error = %e, "alter partition rejected");
                    data.error_code = e.code.code();
                }
            }
            out.partitions.push(data);
        }
        resp.topics.push(out);
    }
    ctx.respond(&resp)
}
