//! ListOffsets (key 2), v1–v10: latest (-1), earliest (-2), max timestamp (-3), earliest local
//! (-4, equal to earliest without tiered storage), latest tiered (-5, none: -1), and real
//! timestamps via the time index — the exact record is found inside the batch storage returns.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::list_offsets_request::ListOffsetsRequest;
use gregor_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::{ErrorCode, RecordBatch};
use gregor_storage::{BatchBytes, Log};

/// Served versions.
pub const VERSIONS: (i16, i16) = (1, 10);

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// The first record of `batch` whose timestamp satisfies `pred`, as (offset, timestamp).
pub fn find_record(batch: &BatchBytes, pred: impl Fn(i64) -> bool) -> Option<(i64, i64)> {
    let parsed = RecordBatch::parse(Bytes::from(batch.bytes.clone())).ok()?;
    if parsed.is_log_append_time() {
        let ts = parsed.max_timestamp();
        return pred(ts).then_some((batch.base_offset, ts));
    }
    let base_ts = parsed.base_timestamp();
    let records = parsed.records(crate::limits::MAX_DECOMPRESSED_BATCH).ok()?;
    records.iter().find_map(|r| {
        let ts = base_ts + r.timestamp_delta;
        pred(ts).then_some((batch.base_offset + r.offset_delta as i64, ts))
    })
}

/// As [`find_record`], ignoring records below offset `from`.
fn find_record_from(
    batch: &BatchBytes,
    from: i64,
    pred: impl Fn(i64) -> bool,
) -> Option<(i64, i64)> {
    let parsed = RecordBatch::parse(Bytes::from(batch.bytes.clone())).ok()?;
    if parsed.is_log_append_time() {
        let ts = parsed.max_timestamp();
        return pred(ts).then_some((batch.base_offset.max(from), ts));
    }
    let base_ts = parsed.base_timestamp();
    let records = parsed.records(crate::limits::MAX_DECOMPRESSED_BATCH).ok()?;
    records.iter().find_map(|r| {
        let ts = base_ts + r.timestamp_delta;
        let offset = batch.base_offset + r.offset_delta as i64;
        (offset >= from && pred(ts)).then_some((offset, ts))
    })
}

/// Which end of the log LATEST means (Kafka's `FetchIsolation` of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// A follower or a debugging consumer: the log end offset.
    LogEnd,
    /// read_uncommitted: the high watermark.
    HighWatermark,
    /// read_committed: the last stable offset.
    Committed,
}

fn lookup(log: &Log, timestamp: i64, isolation: Isolation) -> Result<(i64, i64), ErrorCode> {
    let storage = |e: gregor_storage::StorageError| {
        tracing::error!(error = %e, "ListOffsets read failed");
        ErrorCode::KafkaStorageError
    };
    Ok(match timestamp {
        // read_committed consumers see up to the last stable offset.
        LATEST => match isolation {
            Isolation::LogEnd => (-1, log.log_end_offset()),
            Isolation::HighWatermark => (-1, log.high_watermark()),
            Isolation::Committed => (-1, log.last_stable_offset()),
        },
        EARLIEST | EARLIEST_LOCAL => (-1, log.log_start_offset()),
        LATEST_TIERED => (-1, -1),
        MAX_TIMESTAMP => match log.max_timestamp_batch().map_err(storage)? {
            None => (-1, -1),
            Some(b) => {
                let max = b.max_timestamp;
                find_record(&b, |ts| ts == max)
                    .map(|(o, t)| (t, o))
                    .unwrap_or((max, b.base_offset))
            }
        },
        ts if ts >= 0 => match log.find_batch_by_timestamp(ts).map_err(storage)? {
            None => (-1, -1),
            Some(b) => {
                // The batch may start below the log start offset (DeleteRecords).
                let start = log.log_start_offset();
                find_record_from(&b, start, |t| t >= ts)
                    .map(|(o, t)| (t, o))
                    .unwrap_or((-1, -1))
            }
        },
        _ => return Err(ErrorCode::InvalidRequest),
    })
}

/// Handles ListOffsets.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ListOffsetsRequest = ctx.decode(body)?;
    // Kafka: a replica (id >= 0) or the debugging consumer (-2) reads to the log end.
    let isolation = if req.replica_id.0 >= 0 || req.replica_id.0 == -2 {
        Isolation::LogEnd
    } else if req.isolation_level == 1 {
        Isolation::Committed
    } else {
        Isolation::HighWatermark
    };
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = t.name.0.as_str();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let mut r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let part = if ctx.allowed(op::DESCRIBE, resource::TOPIC, name) {
                ctx.replicas()
                    .leader_partition(name, p.partition_index, p.current_leader_epoch)
            } else {
                Err(ErrorCode::TopicAuthorizationFailed)
            };
            let epoch = part.as_ref().map_or(-1, |p| p.leader_epoch());
            let result = part.and_then(|part| {
                part.with_log(|log| lookup(log, p.timestamp, isolation))
                    .unwrap_or(Err(ErrorCode::UnknownTopicOrPartition))
            });
            match result {
                Ok((ts, offset)) => {
                    r.error_code = 0;
                    r.timestamp = ts;
                    r.offset = offset;
                    if ctx.version >= 4 {
                        r.leader_epoch = if offset >= 0 { epoch } else { -1 };
                    }
                }
                Err(code) => r.error_code = code.code(),
            }
            partitions.push(r);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    ctx.respond(
        &ListOffsetsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(topics),
    )
}
