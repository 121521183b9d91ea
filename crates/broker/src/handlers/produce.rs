//! Produce (key 0). Advertised v0–v13 (v13: topic ids) (librdkafka turns compression off when the minimum is
//! above 0), served v3–v13: v0–v2 carry message formats v0/v1, which Kafka 4 no longer accepts,
//! and close the connection. Each partition gets exactly one RecordBatch v2, validated (CRC,
//! record framing, offset deltas; compressed batches are decompressed with a cap) and appended
//! as sent — only the base offset and leader epoch are patched, the payload is never
//! re-encoded (topics with `message.timestamp.type=LogAppendTime` get the timestamp type and
//! `maxTimestamp` rewritten, as Kafka does; topics whose `compression.type` names a codec get
//! batches in another codec re-encoded with it). Compacted topics refuse keyless records
//! (INVALID_RECORD) and acks=all fails with NOT_ENOUGH_REPLICAS when `min.insync.replicas`
//! exceeds the one in-sync replica. acks=0 sends no response (and closes the connection on error, as Kafka does).

use super::{Ctx, Response};
use crate::broker::{Partition, ProduceSettings, LEADER_EPOCH};
use crate::errors::{storage_code, HandlerError};
use bytes::Bytes;
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::record_batch::BatchError;
use gregor_protocol::{Compression, ErrorCode, RecordBatch, RecordBatchBuilder};
use std::sync::Arc;

/// Advertised versions (v0–v2 are rejected at request time).
pub const VERSIONS: (i16, i16) = (0, 13);
/// Lowest version actually served.
pub const MIN_SERVED: i16 = 3;
/// Cap on the decompressed size of one batch during validation.
pub const MAX_DECOMPRESSED_BATCH: usize = 128 * 1024 * 1024;

struct Outcome {
    error: ErrorCode,
    message: Option<String>,
    base_offset: i64,
    log_start_offset: i64,
    log_append_time: i64,
    /// Records and bytes appended (for the metrics; 0 for errors and duplicates).
    appended: (u64, u64),
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

fn append(
    part: &Arc<Partition>,
    records: Option<Bytes>,
    settings: ProduceSettings,
    acks: i16,
    verify_txn: &dyn Fn(i64, i16) -> Result<(), String>,
) -> Outcome {
    let max_message_bytes = settings.max_message_bytes;
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::err(
            ErrorCode::InvalidRecord,
            "Produce request contains no record batch",
        );
    };
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
    if batch.is_transactional() {
        // Kafka's transaction.partition.verification: the partition must be part of the
        // producer's ongoing transaction.
        if let Err(message) = verify_txn(batch.producer_id(), batch.producer_epoch()) {
            return Outcome::err(ErrorCode::InvalidTxnState, message);
        }
    }
    let summary = match batch.validate(MAX_DECOMPRESSED_BATCH) {
        Ok(s) => s,
        Err(e) => return Outcome::err(e.error_code(), e.to_string()),
    };
    if settings.compact && summary.has_null_key {
        // KIP-467: name the offending records, so that clients fail only those.
        let msg = format!(
            "Compacted topic cannot accept message without key in topic partition {}-{}.",
            part.topic, part.index
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
    if acks == -1 && settings.min_insync_replicas > 1 {
        return Outcome::err(
            ErrorCode::NotEnoughReplicas,
            format!(
                "The size of the current ISR Set(1) is insufficient to satisfy the min.isr requirement of {} for partition {}-{}",
                settings.min_insync_replicas, part.topic, part.index
            ),
        );
    }
    let mut owned = match settings.compression {
        Some(codec) if batch.compression().ok() != Some(codec) => match recompress(batch, codec) {
            Ok(b) => b,
            Err(e) => return Outcome::err(e.error_code(), e.to_string()),
        },
        _ => batch.as_bytes().to_vec(),
    };
    let append_time = if settings.log_append_time {
        let now = crate::groups::now_ms();
        RecordBatch::set_log_append_time(&mut owned, now);
        now
    } else {
        -1
    };
    let result = {
        let mut guard = part.log.lock();
        match guard.as_mut() {
            None => {
                return Outcome::err(
                    ErrorCode::UnknownTopicOrPartition,
                    "This partition was deleted",
                )
            }
            Some(log) => log.append(&mut owned, LEADER_EPOCH),
        }
    };
    match result {
        Ok(info) => {
            if !info.duplicate {
                part.appended.notify_waiters();
            }
            Outcome {
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
                record_errors: Vec::new(),
            }
        }
        Err(e) => {
            let code = storage_code(&e);
            if code == ErrorCode::KafkaStorageError {
                tracing::error!(topic = %part.topic, partition = part.index, error = %e, "append failed");
            }
            Outcome::err(code, e.to_string())
        }
    }
}

/// Checks a transactional batch against the transaction coordinator.
fn verify_transactional(
    ctx: &Ctx<'_>,
    transactional_id: Option<&str>,
    topic: &str,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(), String> {
    let Some(tid) = transactional_id else {
        return Err("Transactional records need a transactional id in the produce request".into());
    };
    let codes = ctx
        .broker
        .txns
        .read(|c| {
            c.verify_partitions(
                tid,
                producer_id,
                producer_epoch,
                &[(topic.to_string(), partition)],
            )
        })
        .map_err(|e| e.to_string())?;
    match codes.first() {
        Some(ErrorCode::None) => Ok(()),
        _ => Err(format!(
            "Partition {topic}-{partition} is not part of an ongoing transaction of {tid} (producer id {producer_id}, epoch {producer_epoch})"
        )),
    }
}

/// Handles Produce.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    if ctx.version < MIN_SERVED {
        return Err(HandlerError::Unsupported(format!(
            "Produce v{} (message format v0/v1) is not supported; Kafka 4 requires v3+",
            ctx.version
        )));
    }
    let req: ProduceRequest = ctx.decode(body)?;
    let acks = req.acks;
    let req_tid = req.transactional_id.as_ref().map(|t| t.to_string());
    let mut any_error = false;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        // v13+ (KIP-516) names topics by id only.
        let (name, unknown_id) = if ctx.version >= 13 {
            match ctx.broker.topic_name(&topic.topic_id) {
                Some(n) => (n, false),
                None => (String::new(), true),
            }
        } else {
            (topic.name.0.as_str().to_string(), false)
        };
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        let mut counters = None;
        for pd in topic.partition_data {
            let outcome = if !matches!(acks, -1..=1) {
                Outcome::err(ErrorCode::InvalidRequiredAcks, "acks must be -1, 0 or 1")
            } else if unknown_id {
                Outcome::err(
                    ErrorCode::UnknownTopicId,
                    "This server does not host this topic ID.",
                )
            } else {
                if gregor_controller::topic::is_internal(&name) {
                    Outcome::err(
                        ErrorCode::InvalidTopicException,
                        format!("Cannot append to internal topic {name}"),
                    )
                } else {
                    match ctx.broker.partition(&name, pd.index) {
                        None => Outcome::err(
                            ErrorCode::UnknownTopicOrPartition,
                            "This server does not host this topic-partition.",
                        ),
                        Some(part) => {
                            let verify_txn = |pid: i64, epoch: i16| {
                                verify_transactional(
                                    ctx,
                                    req_tid.as_deref(),
                                    &name,
                                    pd.index,
                                    pid,
                                    epoch,
                                )
                            };
                            append(
                                &part,
                                pd.records,
                                ctx.broker.produce_settings(&name),
                                acks,
                                &verify_txn,
                            )
                        }
                    }
                }
            };
            if outcome.error != ErrorCode::None {
                any_error = true;
                tracing::debug!(topic = %name, partition = pd.index, error = ?outcome.error, message = ?outcome.message, "produce rejected");
                ctx.broker.metrics.errors(ctx.api, outcome.error, 1);
            }
            if !matches!(
                outcome.error,
                ErrorCode::UnknownTopicOrPartition | ErrorCode::UnknownTopicId
            ) {
                let c = counters.get_or_insert_with(|| ctx.broker.metrics.topic(&name));
                c.produce_request(outcome.error != ErrorCode::None);
                c.appended(outcome.appended.0, outcome.appended.1);
            }
            let mut r = PartitionProduceResponse::default()
                .with_index(pd.index)
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
            partition_responses.push(r);
        }
        let mut t = TopicProduceResponse::default().with_partition_responses(partition_responses);
        if ctx.version >= 13 {
            t.topic_id = topic.topic_id;
        } else {
            t.name = topic.name;
        }
        responses.push(t);
    }
    if acks == 0 {
        return Ok(if any_error {
            Response::Close("acks=0 produce failed".into())
        } else {
            Response::None
        });
    }
    ctx.respond(
        &ProduceResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(0),
    )
}
