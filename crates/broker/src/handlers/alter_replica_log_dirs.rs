//! AlterReplicaLogDirs (key 34), v1–v2. Gregor has one log directory: moving a replica to it
//! is a no-op that succeeds (as in Kafka when the replica already lives there); any other path
//! is LOG_DIR_NOT_FOUND; an unknown partition is UNKNOWN_TOPIC_OR_PARTITION.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::alter_replica_log_dirs_request::AlterReplicaLogDirsRequest;
use gregor_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult, AlterReplicaLogDirsResponse,
};
use gregor_protocol::ErrorCode;

/// Served versions (Kafka 4 removed v0).
pub const VERSIONS: (i16, i16) = (1, 2);

/// Handles AlterReplicaLogDirs.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterReplicaLogDirsRequest = ctx.decode(body)?;
    // Kafka: without ALTER on the cluster every partition fails.
    let allowed = ctx.cluster_allowed(crate::authorizer::op::ALTER);
    let ours = std::fs::canonicalize(&ctx.config().log_dir).ok();
    let mut results = Vec::new();
    for d in &req.dirs {
        let same = ours.is_some() && std::fs::canonicalize(d.path.as_str()).ok() == ours;
        for t in &d.topics {
            let name = t.name.0.as_str();
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let code = if !allowed {
                        ErrorCode::ClusterAuthorizationFailed
                    } else if !same {
                        ErrorCode::LogDirNotFound
                    } else if ctx.replicas().partition(name, p).is_none() {
                        ErrorCode::UnknownTopicOrPartition
                    } else {
                        ErrorCode::None
                    };
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code.code())
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
    }
    ctx.respond(
        &AlterReplicaLogDirsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(results),
    )
}
