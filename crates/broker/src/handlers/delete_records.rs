//! DeleteRecords (key 21), v0–v2: moves a partition's log start offset (`-1`: the high
//! watermark) so that older records are no longer readable; segments wholly below it are
//! removed by the log manager. Answers the new low watermark per partition. An offset above
//! the high watermark is OFFSET_OUT_OF_RANGE, as in Kafka.

use super::{Ctx, Response};
use crate::errors::{storage_code, HandlerError};
use bytes::Bytes;
use gregor_protocol::messages::delete_records_request::DeleteRecordsRequest;
use gregor_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Handles DeleteRecords.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DeleteRecordsRequest = ctx.decode(body)?;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.name.0.as_str();
        // Kafka: DELETE on the topic, checked before the partition is looked up.
        let allowed = ctx.allowed(
            crate::authorizer::op::DELETE,
            crate::authorizer::resource::TOPIC,
            name,
        );
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut r = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            let outcome = match ctx.replicas().leader_partition(name, p.partition_index, -1) {
                _ if !allowed => Err(ErrorCode::TopicAuthorizationFailed),
                Err(code) => Err(code),
                Ok(part) => {
                    let offset = p.offset;
                    // Moving the log start offset checkpoints it durably: off the async workers.
                    let deleted = tokio::task::spawn_blocking(move || {
                        part.with_log_mut(|log| log.delete_records(offset))
                    })
                    .await
                    .map_err(|e| HandlerError::Internal(format!("DeleteRecords task: {e}")))?;
                    match deleted {
                        None => Err(ErrorCode::UnknownTopicOrPartition),
                        Some(result) => result.map_err(|e| {
                            if !matches!(e, gregor_storage::StorageError::OffsetOutOfRange { .. }) {
                                tracing::error!(topic = %name, partition = p.partition_index, error = %e, "DeleteRecords failed");
                            }
                            storage_code(&e)
                        }),
                    }
                }
            };
            match outcome {
                Ok(low) => {
                    r.low_watermark = low;
                    tracing::info!(topic = %name, partition = p.partition_index, low_watermark = low, "deleted records");
                }
                Err(code) => r.error_code = code.code(),
            }
            partitions.push(r);
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    ctx.respond(
        &DeleteRecordsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
