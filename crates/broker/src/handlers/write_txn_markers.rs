//! WriteTxnMarkers (key 27), v1: a transaction coordinator on another broker asks this broker
//! to write COMMIT/ABORT markers into partitions it leads (Kafka's
//! `handleWriteTxnMarkersRequest`). Each marker is appended as a control batch and replicated
//! to the ISR before its partition answers; a `__consumer_offsets` partition also settles the
//! transaction's offset commits. Per partition: NOT_LEADER_OR_FOLLOWER when this broker does
//! not lead it (the coordinator retries at the new leader), UNKNOWN_TOPIC_OR_PARTITION for a
//! partition that does not exist, the append's error otherwise.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::markers::Marker;
use bytes::Bytes;
use gregor_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use gregor_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (1, 1);

/// Handles WriteTxnMarkers.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: WriteTxnMarkersRequest = ctx.decode(body)?;
    let writer = ctx.txns().markers().clone();
    let mut resp = WriteTxnMarkersResponse::default();
    // Kafka: only CLUSTER_ACTION on the cluster (brokers) may write markers; otherwise every
    // partition fails.
    let allowed = ctx.cluster_allowed(crate::authorizer::op::CLUSTER_ACTION);
    for m in &req.markers {
        let marker = Marker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        // The partitions of one marker are written concurrently (each waits for its ISR).
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in &m.topics {
            let mut writes = tokio::task::JoinSet::new();
            for (i, &p) in t.partition_indexes.iter().enumerate() {
                let writer = writer.clone();
                let topic = t.name.0.to_string();
                writes.spawn(async move {
                    if !allowed {
                        return (i, ErrorCode::ClusterAuthorizationFailed.code());
                    }
                    let code = match writer.write_local(&topic, p, marker).await {
                        Ok(()) => 0,
                        Err(code) => code.code(),
                    };
                    (i, code)
                });
            }
            let mut codes = vec![ErrorCode::UnknownServerError.code(); t.partition_indexes.len()];
            while let Some(done) = writes.join_next().await {
                if let Ok((i, code)) = done {
                    codes[i] = code;
                }
            }
            let partitions = t
                .partition_indexes
                .iter()
                .zip(codes)
                .map(|(&p, code)| {
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                })
                .collect();
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions),
            );
        }
        resp.markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    ctx.respond(&resp)
}
