//! Fetch (key 1), v4–v18 (topic ids from v13). Consumers fetch from the partition leader
//! (NOT_LEADER_OR_FOLLOWER elsewhere, with the current leader and its endpoint as KIP-951
//! asks; FENCED/UNKNOWN_LEADER_EPOCH on an epoch mismatch) and read up to the high watermark
//! (read_committed: the last stable offset). Followers fetch as replicas (`ReplicaState`,
//! v15+, or `ReplicaId`): they read up to the log end, their progress moves the ISR and the
//! high watermark, and a diverged log gets `DivergingEpoch` instead of records. Record data
//! goes from the segment file to the socket with `sendfile`: the response is encoded by
//! `gregor_protocol::fetch` around file regions. Long polls wait for the high watermark to
//! advance (followers: for appends) — per-partition notifiers registered before reading, so
//! no wake-up is lost — until `min_bytes` are available or `max_wait_ms` passes. Sessions
//! (KIP-227) are not kept: every response carries session id 0, which tells clients to send
//! full fetch requests.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use crate::replica_manager::Partition;
use bytes::Bytes;
use gregor_protocol::fetch::{encode_fetch_response, FetchResponseData, PartitionData, TopicData};
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::ErrorCode;
use gregor_storage::{FileRegion, StorageError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Served versions.
pub const VERSIONS: (i16, i16) = (
    gregor_protocol::fetch::MIN_VERSION,
    gregor_protocol::fetch::MAX_VERSION,
);

struct Want {
    index: i32,
    part: Result<Arc<Partition>, ErrorCode>,
    fetch_offset: i64,
    max_bytes: i32,
    /// isolation_level 1: read up to the last stable offset, with the aborted transactions.
    read_committed: bool,
    current_leader_epoch: i32,
    last_fetched_epoch: i32,
    log_start_offset: i64,
}

/// A follower's identity in a replica fetch: (replica id, broker epoch).
type Replica = Option<(i32, i64)>;

struct WantTopic {
    name: String,
    id: Uuid,
    partitions: Vec<Want>,
}

fn error_data(index: i32, code: ErrorCode) -> PartitionData<FileRegion> {
    PartitionData {
        partition_index: index,
        error_code: code.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        aborted_transactions: None,
        preferred_read_replica: -1,
        records: None,
        diverging_epoch: None,
        current_leader: None,
    }
}

fn read_one(
    ctx: &Ctx<'_>,
    w: &Want,
    replica: Replica,
    limit: usize,
    min_one: bool,
) -> PartitionData<FileRegion> {
    let part = match &w.part {
        Ok(p) => p,
        Err(code) => return error_data(w.index, *code),
    };
    if part.leader() != ctx.node_id() {
        // Leadership moved during a long poll.
        return error_data(w.index, ErrorCode::NotLeaderOrFollower);
    }
    if let Some((replica_id, broker_epoch)) = replica {
        let fetch = gregor_replication::FollowerFetch {
            replica_id,
            broker_epoch,
            current_leader_epoch: (w.current_leader_epoch >= 0).then_some(w.current_leader_epoch),
            fetch_offset: w.fetch_offset,
            last_fetched_epoch: (w.last_fetched_epoch >= 0).then_some(w.last_fetched_epoch),
            log_start_offset: w.log_start_offset,
        };
        let read = ctx.replicas().read_for_follower(part, &fetch, limit);
        if read.error != ErrorCode::None {
            return error_data(w.index, read.error);
        }
        return PartitionData {
            partition_index: w.index,
            error_code: 0,
            high_watermark: read.high_watermark,
            last_stable_offset: read.high_watermark,
            log_start_offset: read.log_start_offset,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: read.region.map(|region| {
                let len = region.len;
                (region, len)
            }),
            diverging_epoch: read.diverging_epoch,
            current_leader: None,
        };
    }
    let read = part.with_log(|log| read_log(log, w, limit, min_one));
    let Some(read) = read else {
        return error_data(w.index, ErrorCode::UnknownTopicOrPartition);
    };
    match read {
        Ok((r, aborted)) => PartitionData {
            partition_index: w.index,
            error_code: 0,
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
            aborted_transactions: aborted,
            preferred_read_replica: -1,
            records: r.region.map(|region| {
                let len = region.len;
                (region, len)
            }),
            diverging_epoch: None,
            current_leader: None,
        },
        Err(StorageError::OffsetOutOfRange { .. }) => {
            error_data(w.index, ErrorCode::OffsetOutOfRange)
        }
        Err(e) => {
            tracing::error!(topic = %part.topic, partition = w.index, error = %e, "fetch read failed");
            error_data(w.index, ErrorCode::KafkaStorageError)
        }
    }
}

type ReadOutcome = (
    gregor_storage::ReadResult,
    Option<Vec<gregor_protocol::fetch::AbortedTransaction>>,
);

/// A consumer's read: up to the high watermark, or the last stable offset for read_committed
/// (with the aborted transactions of what was read).
fn read_log(
    log: &gregor_storage::Log,
    w: &Want,
    limit: usize,
    min_one: bool,
) -> Result<ReadOutcome, StorageError> {
    if w.read_committed {
        // Up to the last stable offset, with the aborted transactions of what was read.
        log.read_committed(w.fetch_offset, limit, min_one)
            .map(|(r, aborted)| {
                let aborted = aborted
                    .into_iter()
                    .map(|a| gregor_protocol::fetch::AbortedTransaction {
                        producer_id: a.producer_id,
                        first_offset: a.first_offset,
                    })
                    .collect();
                (r, Some(aborted))
            })
    } else {
        log.read_to_high_watermark(w.fetch_offset, limit, min_one)
            .map(|r| (r, None))
    }
}

/// Reads every wanted partition once. Returns the response topics, bytes of record data, and
/// whether any partition has an error (which ends a long poll at once, as in Kafka).
fn read_all(
    ctx: &Ctx<'_>,
    topics: &[WantTopic],
    replica: Replica,
    max_bytes: i32,
) -> (Vec<TopicData<FileRegion>>, u64, bool) {
    let mut remaining: u64 = if max_bytes <= 0 {
        i32::MAX as u64
    } else {
        max_bytes as u64
    };
    let mut min_one = true;
    let mut total = 0u64;
    let mut any_error = false;
    let mut out = Vec::with_capacity(topics.len());
    for t in topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for w in &t.partitions {
            let limit = (w.max_bytes.max(0) as u64).min(remaining) as usize;
            let data = read_one(ctx, w, replica, limit, min_one);
            if data.error_code != 0 {
                any_error = true;
            }
            if let Some((_, len)) = &data.records {
                total += len;
                remaining = remaining.saturating_sub(*len);
                min_one = false;
            }
            parts.push(data);
        }
        out.push(TopicData {
            name: t.name.clone(),
            topic_id: t.id,
            partitions: parts,
        });
    }
    (out, total, any_error)
}

/// Counts the answered partitions, their record bytes (per topic) and error codes.
fn count(ctx: &Ctx<'_>, data: &[TopicData<FileRegion>]) {
    let metrics = ctx.metrics();
    for t in data {
        let mut counters = None;
        for p in &t.partitions {
            let code = ErrorCode::from_code(p.error_code).unwrap_or(ErrorCode::UnknownServerError);
            metrics.errors(ctx.api, code, 1);
            if t.name.is_empty()
                || matches!(
                    code,
                    ErrorCode::UnknownTopicOrPartition | ErrorCode::UnknownTopicId
                )
            {
                continue;
            }
            let bytes = p.records.as_ref().map_or(0, |(_, len)| *len);
            counters
                .get_or_insert_with(|| metrics.topic(&t.name))
                .fetched(bytes, code != ErrorCode::None);
        }
    }
}

/// KIP-951: partitions answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH name the
/// current leader (and v16+ its endpoint), so the client need not refresh its metadata first.
fn add_current_leaders(
    ctx: &Ctx<'_>,
    data: &mut [TopicData<FileRegion>],
) -> Vec<gregor_protocol::fetch::NodeEndpoint> {
    let mut leaders = std::collections::BTreeSet::new();
    for t in data.iter_mut() {
        let Some(meta) = ctx.metadata().topic(&t.name) else {
            continue;
        };
        for p in &mut t.partitions {
            let code = ErrorCode::from_code(p.error_code);
            if !matches!(
                code,
                Some(ErrorCode::NotLeaderOrFollower | ErrorCode::FencedLeaderEpoch)
            ) {
                continue;
            }
            if let Some(s) = ctx.metadata().partition_state(&meta, p.partition_index) {
                p.current_leader = Some((s.leader, s.leader_epoch));
                if s.leader >= 0 {
                    leaders.insert(s.leader);
                }
            }
        }
    }
    leaders
        .into_iter()
        .filter_map(|id| ctx.metadata().broker_endpoint(id, &ctx.listener.name))
        .map(|b| gregor_protocol::fetch::NodeEndpoint {
            node_id: b.node_id,
            host: b.host,
            port: i32::from(b.port),
            rack: b.rack,
        })
        .collect()
}

/// Handles Fetch.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: FetchRequest = ctx.decode(body)?;
    // A follower fetches as a replica: its id and broker epoch (v15+: ReplicaState).
    let replica_id = if ctx.version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let replica: Replica = (replica_id >= 0).then(|| {
        let epoch = if ctx.version >= 15 {
            req.replica_state.replica_epoch
        } else {
            -1
        };
        (replica_id, epoch)
    });
    let metadata = ctx.metadata();
    let replicas = ctx.replicas();
    // Authorization (with an authorizer): a follower needs CLUSTER_ACTION, a consumer READ on
    // each topic.
    let follower_denied = replica.is_some() && !ctx.cluster_allowed(op::CLUSTER_ACTION);
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let (name, id, mut missing) = if ctx.version >= 13 {
            match metadata.topic_name(&t.topic_id) {
                Some(n) => (n, t.topic_id, None),
                None => (String::new(), t.topic_id, Some(ErrorCode::UnknownTopicId)),
            }
        } else {
            let n = t.topic.0.as_str().to_string();
            let id = metadata.topic(&n).map(|m| m.id).unwrap_or_else(Uuid::nil);
            (n, id, None)
        };
        if follower_denied {
            missing = Some(ErrorCode::ClusterAuthorizationFailed);
        } else if missing.is_none()
            && replica.is_none()
            && !ctx.allowed(op::READ, resource::TOPIC, &name)
        {
            missing = Some(ErrorCode::TopicAuthorizationFailed);
        }
        let partitions = t
            .partitions
            .iter()
            .map(|p| Want {
                index: p.partition,
                part: match missing {
                    Some(code) => Err(code),
                    None => replicas.leader_partition(&name, p.partition, p.current_leader_epoch),
                },
                fetch_offset: p.fetch_offset,
                read_committed: req.isolation_level == 1 && replica.is_none(),
                max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: if ctx.version >= 12 {
                    p.last_fetched_epoch
                } else {
                    -1
                },
                log_start_offset: p.log_start_offset,
            })
            .collect();
        topics.push(WantTopic {
            name,
            id,
            partitions,
        });
    }
    let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = Instant::now() + max_wait;
    let min_bytes = req.min_bytes.max(0) as u64;
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let can_wait = !max_wait.is_zero() && !*shutdown.borrow();
        // Register for high-watermark notifications before reading so that an advance between
        // the read and the wait is not missed.
        let mut waiters: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = Vec::new();
        if can_wait {
            for t in &topics {
                for w in &t.partitions {
                    if let Ok(p) = &w.part {
                        // Followers wait for new data, consumers for the high watermark.
                        let notify = if replica.is_some() {
                            p.appended()
                        } else {
                            p.hw_advanced()
                        };
                        let mut n = Box::pin(notify.notified());
                        n.as_mut().enable();
                        waiters.push(n);
                    }
                }
            }
        }
        let (mut data, bytes, any_error) = read_all(ctx, &topics, replica, req.max_bytes);
        let done = !can_wait
            || bytes >= min_bytes.max(1)
            || any_error
            || Instant::now() >= deadline
            || waiters.is_empty();
        if done {
            count(ctx, &data);
            let node_endpoints = if ctx.version >= 12 {
                add_current_leaders(ctx, &mut data)
            } else {
                Vec::new()
            };
            // Client quota (consumer_byte_rate); followers are not client traffic. A throttled
            // consumer gets an empty response (no data) with the throttle time, as Kafka.
            // The request quota (request_percentage) too: the larger throttle applies.
            let throttle_time_ms = if replica.is_none() {
                let bytes_throttle = ctx.record_quota(crate::quotas::QuotaKind::Fetch, bytes);
                bytes_throttle.max(ctx.record_request_time())
            } else {
                0
            };
            if throttle_time_ms > 0 {
                data = Vec::new();
            }
            let (chunks, total) = encode_fetch_response(
                ctx.version,
                ctx.header.correlation_id,
                FetchResponseData {
                    throttle_time_ms,
                    error_code: 0,
                    session_id: 0,
                    topics: data,
                    node_endpoints,
                },
            );
            return Ok(Response::Chunks(chunks, total));
        }
        drop(data);
        let any_append = std::future::poll_fn(|cx| {
            for w in waiters.iter_mut() {
                if w.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        });
        // Long-poll time is waiting, not work (see `gregor.slow.request.ms`).
        crate::metrics::waiting(async {
            tokio::select! {
                _ = any_append => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = shutdown.changed() => {}
            }
        })
        .await;
    }
}
