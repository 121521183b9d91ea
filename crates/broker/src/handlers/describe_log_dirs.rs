//! DescribeLogDirs (key 35), v1–v4: the one log directory with the size of every requested
//! partition (all when `topics` is null), offset lag 0 (no future replicas), and (v4) the
//! file system's total and usable bytes from `statvfs`.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use gregor_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use gregor_protocol::messages::TopicName;
use gregor_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// Served versions (Kafka 4 removed v0).
pub const VERSIONS: (i16, i16) = (1, 4);

/// Handles DescribeLogDirs.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeLogDirsRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::DESCRIBE) {
        // Kafka: no results and (v3+) the error at the top.
        let mut resp = DescribeLogDirsResponse::default().with_throttle_time_ms(0);
        if ctx.version >= 3 {
            resp.error_code = gregor_protocol::ErrorCode::ClusterAuthorizationFailed.code();
        }
        return ctx.respond(&resp);
    }
    let wanted: Option<BTreeMap<String, Vec<i32>>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.topic.0.as_str().to_string(), t.partitions.clone()))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in ctx.replicas().all_partitions() {
        if let Some(w) = &wanted {
            match w.get(&p.topic) {
                Some(parts) if parts.contains(&p.index) => {}
                _ => continue,
            }
        }
        let Some(size) = p.with_log(|log| log.size_bytes() as i64) else {
            continue;
        };
        by_topic.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(size)
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions)
        })
        .collect();
    let dir = &ctx.config().log_dir;
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_error_code(0)
        .with_log_dir(StrBytes::from_string(abs.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(-1)
        .with_usable_bytes(-1);
    if ctx.version >= 4 {
        if let Ok(st) = rustix::fs::statvfs(&abs) {
            result.total_bytes = (st.f_blocks.saturating_mul(st.f_frsize)) as i64;
            result.usable_bytes = (st.f_bavail.saturating_mul(st.f_frsize)) as i64;
        }
    }
    ctx.respond(
        &DescribeLogDirsResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(0)
            .with_results(vec![result]),
    )
}
