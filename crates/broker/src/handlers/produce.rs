//! Produce (key 0). Advertised v0–v13 (v13: topic ids) (librdkafka turns compression off when
//! the minimum is above 0), served v3–v13: v0–v2 carry message formats v0/v1, which Kafka 4 no
//! longer accepts, and close the connection.
//!
//! Each partition is resolved with the replica manager (NOT_LEADER_OR_FOLLOWER when another
//! broker leads it) and gets exactly one RecordBatch v2, validated (CRC, record framing, offset
//! deltas; compressed batches are decompressed with a cap) and appended as sent — only the base
//! offset and leader epoch are patched, the payload is never re-encoded (topics with
//! `message.timestamp.type=LogAppendTime` get the timestamp type and `maxTimestamp` rewritten,
//! as Kafka does; topics whose `compression.type` names a codec get batches in another codec
//! re-encoded with it). Compacted topics refuse keyless records (INVALID_RECORD). Transactional
//! batches are verified with the transaction coordinator first.
//!
//! The request runs in three steps: resolve and verify (async), validate and append (one
//! blocking task for the whole request: disk I/O stays off the async workers), then for
//! acks=all wait for the high watermark to pass each batch (Kafka's delayed produce, bounded by
//! the request's `timeout_ms`: REQUEST_TIMED_OUT). acks=all is refused with NOT_ENOUGH_REPLICAS
//! before appending when the ISR is smaller than `min.insync.replicas` capped at the
//! replication factor, as Kafka. acks=0 sends no response (and closes the connection on error,
//! as Kafka does).

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::{storage_code, HandlerError};
use crate::limits::MAX_DECOMPRESSED_BATCH;
use crate::replica_manager::{AppendError, Partition, ReplicaManager};
use crate::topic_config::ProduceSettings;
use bytes::Bytes;
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    ProduceResponse, TopicProduceResponse,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::record_batch::BatchError;
use gregor_protocol::{Compression, ErrorCode, RecordBatch, RecordBatchBuilder};
use std::sync::Arc;

/// Advertised versions (v0–v2 are rejected at request time).
pub const VERSIONS: (i16, i16) = (0, 13);
/// Lowest version actually served.
pub const MIN_SERVED: i16 = 3;

#[derive(Debug, Clone)]
struct Outcome {
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    log_start_offset: i64,
    log_append_time: i64,
    /// Records and bytes appended (for the metrics; 0 for errors and duplicates).
    appended: (u64, u64),
    /// One past the last offset of the appended (or duplicate) batch: what acks=all waits for.
    end_offset: i64,
    /// Per-record errors (KIP-467): (index in the batch, message).
    record_errors: Vec<(i32, String)>,
}

impl Outcome {
    fn err(error: ErrorCode, message: impl Into<String>) -> Outcome {
        Outcome {
            error,
            message: Some(message.into()),
            base_offset: -1,
            log_start_offset: -1,
            log_append_time: -1,
            appended: (0, 0),
            end_offset: -1,
            record_errors: Vec::new(),
        }
    }
}

/// Re-encodes `batch` with `codec` (topic `compression.type` other than `producer`), keeping
/// offsets deltas, timestamps, headers and the producer fields.
fn recompress(batch: &RecordBatch, codec: Compression) -> Result<Vec<u8>, BatchError> {
    let records = batch.records(MAX_DECOMPRESSED_BATCH)?;
    let base_ts = batch.base_timestamp();
    let mut b = RecordBatchBuilder::new(codec, base_ts)
        .producer(
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
        )
        .transactional(batch.is_transactional());
    for r in &records {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|h| (h.key.as_str(), h.value.as_deref()))
            .collect();
        b.push(
            r.timestamp(base_ts),
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        );
    }
    Ok(b.build()?.to_vec())
}

/// Validates one partition's records and appends them as the leader. Blocking.
fn append(
    replicas: &ReplicaManager,
    part: &Partition,
    records: Bytes,
    settings: ProduceSettings,
    now_ms: i64,
) -> Outcome {
    let max_message_bytes = settings.max_message_bytes;
    let batches = match RecordBatch::split(records) {
        Ok(b) => b,
        Err(e) => return Outcome::err(e.error_code(), e.to_string()),
    };
    if batches.len() != 1 {
        return Outcome::err(
            ErrorCode::InvalidRecord,
            "Produce requests with version 3 or later are only allowed to contain exactly one record batch per partition",
        );
    }
    let batch = &batches[0];
    if batch.as_bytes().len() > max_message_bytes {
        return Outcome::err(
            ErrorCode::MessageTooLarge,
            format!(
                "The record batch of {} bytes is larger than the max message size the server will accept ({max_message_bytes} bytes)",
                batch.as_bytes().len()
            ),
        );
    }
    if batch.is_control() {
        return Outcome::err(
            ErrorCode::InvalidRecord,
            "Control records are not allowed from clients",
        );
    }
    let summary = match batch.validate(MAX_DECOMPRESSED_BATCH) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e.error_code(), e.to_string()),
    };
    if settings.compact && summary.has_null_key {
        // KIP-467: name the offending records, so that clients fail only those.
        let msg = format!(
            "Compacted topic cannot accept message without key in topic partition {}.",
            part.name()
        );
        let record_errors: Vec<(i32, String)> = batch
            .records(MAX_DECOMPRESSED_BATCH)
            .map(|records| {
                records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.key.is_none())
                    .map(|(i, _)| (i as i32, msg.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let shown: Vec<String> = record_errors
            .iter()
            .take(3)
            .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
            .collect();
        let mut out = Outcome::err(
            ErrorCode::InvalidRecord,
            format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                record_errors.len(),
                shown.join(", ")
            ),
        );
        out.record_errors = record_errors;
        return out;
    }
    let mut owned = match settings.compression {
        Some(codec) if batch.compression().ok() != Some(codec) => match recompress(batch, codec) {
            Ok(b) => b,
            Err(e) => return Outcome::err(e.error_code(), e.to_string()),
        },
        _ => batch.as_bytes().to_vec(),
    };
    let append_time = if settings.log_append_time {
        RecordBatch::set_log_append_time(&mut owned, now_ms);
        now_ms
    } else {
        -1
    };
    match replicas.append_as_leader(part, &mut owned) {
        Ok(info) => Outcome {
            error: ErrorCode::None,
            message: None,
            base_offset: info.base_offset,
            log_start_offset: info.log_start_offset,
            log_append_time: append_time,
            appended: if info.duplicate {
                (0, 0)
            } else {
                (
                    (info.last_offset - info.base_offset + 1) as u64,
                    owned.len() as u64,
                )
            },
            end_offset: info.last_offset + 1,
            record_errors: Vec::new(),
        },
        Err(AppendError::Deleted) => Outcome::err(
            ErrorCode::UnknownTopicOrPartition,
            "This partition was deleted",
        ),
        Err(AppendError::NotLeader) => Outcome::err(
            ErrorCode::NotLeaderOrFollower,
            "This broker is no longer the leader of the partition",
        ),
        Err(AppendError::Storage(e)) => {
            let code = storage_code(&e);
            if code == ErrorCode::KafkaStorageError {
                tracing::error!(partition = %part.name(), error = %e, "append failed");
            }
            Outcome::err(code, e.to_string())
        }
    }
}

/// Checks a transactional batch against the transaction coordinator (Kafka's
/// `transaction.partition.verification`: the partition must be part of the producer's ongoing
/// transaction); the coordinator may be another broker.
async fn verify_transactional(
    ctx: &Ctx<'_>,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(), Outcome> {
    let Some(tid) = transactional_id else {
        return Err(Outcome::err(
            ErrorCode::InvalidTxnState,
            "Transactional records need a transactional id in the produce request",
        ));
    };
    ctx.txns()
        .verify_partition(tid, producer_id, producer_epoch, topic, partition)
        .await
        .map_err(|code| {
            let message = match code {
                ErrorCode::InvalidTxnState => format!(
                    "Partition {topic}-{partition} is not part of an ongoing transaction of {tid} (producer id {producer_id}, epoch {producer_epoch})"
                ),
                ErrorCode::NotEnoughReplicas => format!(
                    "The transaction coordinator of {tid} could not verify {topic}-{partition} now"
                ),
                c => format!("Transaction verification of {topic}-{partition} failed: {c:?}"),
            };
            Outcome::err(code, message)
        })
}

/// Requests with at most this many record bytes are appended on the async worker.
const INLINE_APPEND_BYTES: usize = 256 * 1024;

/// Logs flushed (fsync) at least this often (`log.flush.interval.messages`) are always
/// appended off the async workers.
const INLINE_FLUSH_MESSAGES: u64 = 10_000;

/// One partition of the request on its way through the three steps.
struct Slot {
    topic: usize,
    index: i32,
    name: String,
    work: Result<(Arc<Partition>, Bytes, ProduceSettings), Outcome>,
}

/// Handles Produce.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    if ctx.version < MIN_SERVED {
        return Err(HandlerError::Unsupported(format!(
            "Produce v{} (message format v0/v1) is not supported; Kafka 4 requires v3+",
            ctx.version
        )));
    }
    let request_bytes = body.len() as u64;
    let req: ProduceRequest = ctx.decode(body)?;
    let acks = req.acks;
    let req_tid = req.transactional_id.as_ref().map(|t| t.to_string());
    let replicas = ctx.replicas();
    // Authorization (with an authorizer): WRITE on the transactional id, WRITE on each topic.
    let txn_denied = req_tid
        .as_deref()
        .is_some_and(|tid| !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, tid));
    // 1. Resolve each partition (leader, settings) and verify transactional batches.
    let mut slots = Vec::new();
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        // v13+ (KIP-516) names topics by id only.
        let (name, unknown_id) = if ctx.version >= 13 {
            match ctx.metadata().topic_name(&topic.topic_id) {
                Some(n) => (n, false),
                None => (String::new(), true),
            }
        } else {
            (topic.name.0.as_str().to_string(), false)
        };
        let topic_denied = !unknown_id && !ctx.allowed(op::WRITE, resource::TOPIC, &name);
        for pd in topic.partition_data {
            let work = if !matches!(acks, -1..=1) {
                Err(Outcome::err(
                    ErrorCode::InvalidRequiredAcks,
                    "acks must be -1, 0 or 1",
                ))
            } else if txn_denied {
                Err(Outcome::err(
                    ErrorCode::TransactionalIdAuthorizationFailed,
                    "Transactional Id authorization failed.",
                ))
            } else if topic_denied {
                Err(Outcome::err(
                    ErrorCode::TopicAuthorizationFailed,
                    "Topic authorization failed.",
                ))
            } else if unknown_id {
                Err(Outcome::err(
                    ErrorCode::UnknownTopicId,
                    "This server does not host this topic ID.",
                ))
            } else if gregor_controller::topic::is_internal(&name) {
                Err(Outcome::err(
                    ErrorCode::InvalidTopicException,
                    format!("Cannot append to internal topic {name}"),
                ))
            } else {
                resolve(ctx, &name, pd.index, pd.records, acks, req_tid.as_deref()).await
            };
            slots.push(Slot {
                topic: ti,
                index: pd.index,
                name: name.clone(),
                work,
            });
        }
        topics.push((topic.name, topic.topic_id));
    }
    // 2. Validate and append. A small request is appended right here (a page-cache write,
    // as Kafka's request handler threads do): handing each one to the blocking pool costs two
    // thread wake-ups per request, which dominated small-request latency. Large requests
    // (decompression for validation, big copies) and logs that fsync on every few messages
    // are appended off the async workers.
    let now = crate::clock::now_ms();
    let rm = replicas.clone();
    let request_records: usize = slots
        .iter()
        .map(|s| s.work.as_ref().map_or(0, |(_, r, _)| r.len()))
        .sum();
    let run = move |slots: Vec<Slot>| {
        let outcomes: Vec<Outcome> = slots
            .iter()
            .map(|s| match &s.work {
                Ok((part, records, settings)) => append(&rm, part, records.clone(), *settings, now),
                Err(o) => o.clone(),
            })
            .collect();
        (slots, outcomes)
    };
    let inline = request_records <= INLINE_APPEND_BYTES
        && ctx.config().log_flush_interval_messages > INLINE_FLUSH_MESSAGES;
    let (slots, mut outcomes) = if inline {
        run(slots)
    } else {
        tokio::task::spawn_blocking(move || run(slots))
            .await
            .map_err(|e| HandlerError::Internal(format!("produce task: {e}")))?
    };
    // 3. acks=all: wait until the in-sync replicas have the batches.
    if acks == -1 {
        let timeout = std::time::Duration::from_millis(req.timeout_ms.max(0) as u64);
        for (slot, outcome) in slots.iter().zip(outcomes.iter_mut()) {
            if outcome.error != ErrorCode::None {
                continue;
            }
            if let Ok((part, _, _)) = &slot.work {
                let waited = crate::metrics::waiting(replicas.wait_for_commit(
                    part,
                    outcome.end_offset,
                    timeout,
                ))
                .await;
                // NOT_ENOUGH_REPLICAS_AFTER_APPEND: the records are in the log, but the ISR
                // shrank under the minimum before they were replicated.
                if let Err(code) = waited {
                    *outcome = Outcome::err(
                        code,
                        format!("{code:?} while waiting for the in-sync replicas"),
                    );
                }
            }
        }
    }
    // 4. Answer.
    let mut any_error = false;
    let mut responses: Vec<TopicProduceResponse> = topics
        .iter()
        .map(|(name, id)| {
            let mut t = TopicProduceResponse::default();
            if ctx.version >= 13 {
                t.topic_id = *id;
            } else {
                t.name = name.clone();
            }
            t
        })
        .collect();
    let mut counters: Option<(String, Arc<crate::metrics::TopicCounters>)> = None;
    let mut leaders: Vec<i32> = Vec::new();
    for (slot, outcome) in slots.iter().zip(outcomes) {
        if outcome.error != ErrorCode::None {
            any_error = true;
            tracing::debug!(topic = %slot.name, partition = slot.index, error = ?outcome.error, message = ?outcome.message, "produce rejected");
            ctx.metrics().errors(ctx.api, outcome.error, 1);
        }
        if !matches!(
            outcome.error,
            ErrorCode::UnknownTopicOrPartition | ErrorCode::UnknownTopicId
        ) {
            if counters.as_ref().is_none_or(|(n, _)| *n != slot.name) {
                counters = Some((slot.name.clone(), ctx.metrics().topic(&slot.name)));
            }
            if let Some((_, c)) = &counters {
                c.produce_request(outcome.error != ErrorCode::None);
                c.appended(outcome.appended.0, outcome.appended.1);
            }
        }
        let mut r = PartitionProduceResponse::default()
            .with_index(slot.index)
            .with_error_code(outcome.error.code())
            .with_base_offset(outcome.base_offset)
            .with_log_append_time_ms(outcome.log_append_time)
            .with_log_start_offset(if ctx.version >= 5 {
                outcome.log_start_offset
            } else {
                -1
            });
        if ctx.version >= 8 {
            r.error_message = outcome.message.map(StrBytes::from_string);
            r.record_errors = outcome
                .record_errors
                .into_iter()
                .map(|(i, m)| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(i)
                        .with_batch_index_error_message(Some(StrBytes::from_string(m)))
                })
                .collect();
        }
        // KIP-951 (v10+): a partition led elsewhere names its current leader (and below, its
        // endpoint), so the client need not refresh its metadata first.
        if ctx.version >= 10
            && matches!(
                outcome.error,
                ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch
            )
        {
            if let Some(s) = ctx
                .metadata()
                .topic(&slot.name)
                .and_then(|m| ctx.metadata().partition_state(&m, slot.index))
            {
                r.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(s.leader))
                    .with_leader_epoch(s.leader_epoch);
                if s.leader >= 0 && !leaders.contains(&s.leader) {
                    leaders.push(s.leader);
                }
            }
        }
        responses[slot.topic].partition_responses.push(r);
    }
    let node_endpoints: Vec<NodeEndpoint> = leaders
        .into_iter()
        .filter_map(|id| ctx.metadata().broker_endpoint(id, &ctx.listener.name))
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    // Client quota (producer_byte_rate) over the request's size, as Kafka.
    let throttle_time_ms = ctx.record_quota(crate::quotas::QuotaKind::Produce, request_bytes);
    if acks == 0 {
        // No response to carry a throttle: the connection is still muted for it.
        ctx.record_request_time();
        return Ok(if any_error {
            Response::Close("acks=0 produce failed".into())
        } else {
            Response::None
        });
    }
    ctx.respond(
        &ProduceResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(throttle_time_ms)
            .with_node_endpoints(node_endpoints),
    )
}

/// Step 1 for one partition: the leader's partition and settings, the transactional check and
/// the acks=all in-sync replica check.
async fn resolve(
    ctx: &Ctx<'_>,
    name: &str,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
    transactional_id: Option<&str>,
) -> Result<(Arc<Partition>, Bytes, ProduceSettings), Outcome> {
    let part = ctx
        .replicas()
        .leader_partition(name, index, -1)
        .map_err(|code| {
            Outcome::err(
                code,
                match code {
                    ErrorCode::NotLeaderOrFollower => {
                        "This server is not the leader for that topic-partition."
                    }
                    _ => "This server does not host this topic-partition.",
                },
            )
        })?;
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Err(Outcome::err(
            ErrorCode::InvalidRecord,
            "Produce request contains no record batch",
        ));
    };
    let settings = ctx.replicas().produce_settings(name);
    // A transactional batch's partition must be in the producer's transaction. The header is
    // enough for that; a batch that does not parse fails validation in step 2.
    if let Ok(batch) = RecordBatch::parse(records.clone()) {
        if batch.is_transactional() && !batch.is_control() {
            verify_transactional(
                ctx,
                transactional_id,
                name,
                index,
                batch.producer_id(),
                batch.producer_epoch(),
            )
            .await?;
        }
    }
    if acks == -1 {
        ctx.replicas()
            .check_min_isr(&part)
            .map_err(|msg| Outcome::err(ErrorCode::NotEnoughReplicas, msg))?;
    }
    Ok((part, records, settings))
}
