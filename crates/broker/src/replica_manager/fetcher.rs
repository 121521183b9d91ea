//! Replica fetchers (Kafka's `ReplicaFetcherThread` / `AbstractFetcherThread`): one task per
//! broker this broker follows partitions of. Each round it asks every partition's
//! `FollowerState` for its next fetch, sends one Fetch request as a replica (`ReplicaState`
//! with this broker's id and epoch, v15+; `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`,
//! `replica.fetch.max.bytes` per partition, `replica.fetch.response.max.bytes`) over the
//! inter-broker listener, and applies the answers on a blocking thread: records appended as a
//! follower (offsets and epochs as the leader assigned them), the high watermark followed,
//! `DivergingEpoch` truncations, OFFSET_OUT_OF_RANGE resolved with ListOffsets as a replica.
//! Errors back the fetcher off for `replica.fetch.backoff.ms`.

use super::{follower_view, Partition, ReplicaManager, Role};
use crate::config::Config;
use crate::rpc_client::ChannelPool;
use bytes::{Buf, Bytes};
use gregor_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ReplicaState,
};
use gregor_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use gregor_protocol::messages::{BrokerId, TopicName};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use gregor_replication::{
    follower_append_restart_offset, follower_high_watermark, EpochEndOffset, FetchErrorAction,
    FetchPartitionRequest, OutOfRangeAction,
};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The replica fetch settings (Kafka's `replica.fetch.*`).
#[derive(Debug, Clone, Copy)]
struct FetchSettings {
    wait_max_ms: i32,
    min_bytes: i32,
    partition_max_bytes: i32,
    response_max_bytes: i32,
    backoff: Duration,
}

impl FetchSettings {
    fn from_config(config: &Config) -> FetchSettings {
        let get = |k: &str, d: i64| -> i64 {
            config
                .values
                .get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .unwrap_or(d)
        };
        FetchSettings {
            wait_max_ms: get("replica.fetch.wait.max.ms", 500).min(i64::from(i32::MAX)) as i32,
            min_bytes: get("replica.fetch.min.bytes", 1).min(i64::from(i32::MAX)) as i32,
            partition_max_bytes: get("replica.fetch.max.bytes", 1 << 20).min(i64::from(i32::MAX))
                as i32,
            response_max_bytes: get("replica.fetch.response.max.bytes", 10 << 20)
                .min(i64::from(i32::MAX)) as i32,
            backoff: Duration::from_millis(get("replica.fetch.backoff.ms", 1000) as u64),
        }
    }
}

/// The partitions one fetcher follows.
type PartitionSet = Arc<Mutex<BTreeSet<(String, i32)>>>;

struct Fetcher {
    partitions: PartitionSet,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

/// The fetchers of this broker, by leader broker id.
pub struct FetcherManager {
    rm: Weak<ReplicaManager>,
    settings: FetchSettings,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl std::fmt::Debug for FetcherManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetcherManager")
            .field("leaders", &self.fetchers.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FetcherManager {
    /// No fetchers yet.
    pub fn new(rm: Weak<ReplicaManager>, config: &Config) -> FetcherManager {
        FetcherManager {
            rm,
            settings: FetchSettings::from_config(config),
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Starts following `topic`-`index` from `leader` (starting that leader's fetcher if needed;
    /// without a tokio runtime nothing is fetched).
    pub fn add(&self, leader: i32, topic: &str, index: i32) {
        let mut fetchers = self.fetchers.lock();
        if let Some(f) = fetchers.get(&leader).filter(|f| !f.task.is_finished()) {
            f.partitions.lock().insert((topic.to_string(), index));
            f.wake.notify_one();
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let partitions: PartitionSet =
            Arc::new(Mutex::new(BTreeSet::from([(topic.to_string(), index)])));
        let wake = Arc::new(Notify::new());
        let task = handle.spawn(run(
            leader,
            partitions.clone(),
            wake.clone(),
            self.rm.clone(),
            self.settings,
        ));
        fetchers.insert(
            leader,
            Fetcher {
                partitions,
                wake,
                task,
            },
        );
    }

    /// Stops following `topic`-`index` (whichever fetcher has it).
    pub fn remove(&self, topic: &str, index: i32) {
        let key = (topic.to_string(), index);
        for f in self.fetchers.lock().values() {
            f.partitions.lock().remove(&key);
        }
    }

    /// Stops every fetcher.
    pub fn shutdown(&self) {
        for (_, f) in self.fetchers.lock().drain() {
            f.task.abort();
        }
    }
}

/// What applying one partition's answer needs next.
enum Applied {
    Done,
    Backoff,
    OutOfRange,
}

/// One partition of a fetch answer.
struct Fetched {
    error: i16,
    high_watermark: i64,
    log_start_offset: i64,
    diverging: Option<EpochEndOffset>,
    records: Option<Bytes>,
}

/// The first and last offsets of a run of record batches (headers only).
fn batch_bounds(records: &[u8]) -> Option<(i64, i64)> {
    let mut first = None;
    let mut last = None;
    let mut buf = records;
    while buf.len() >= 12 {
        let base = (&buf[..8]).get_i64();
        let len = (&buf[8..12]).get_i32();
        if len < 0 || buf.len() < 12 + len as usize {
            break; // a trailing partial batch is dropped, as Kafka does
        }
        if buf.len() >= 27 {
            let delta = (&buf[23..27]).get_i32();
            first.get_or_insert(base);
            last = Some(base + i64::from(delta));
        }
        buf = &buf[12 + len as usize..];
    }
    Some((first?, last?))
}

impl ReplicaManager {
    /// Applies one partition's fetch answer (blocking: appends and truncations).
    fn apply_fetched(
        &self,
        part: &Partition,
        sent: &FetchPartitionRequest,
        data: &Fetched,
    ) -> Applied {
        let mut role = part.role.lock();
        let Role::Follower(f) = &mut *role else {
            return Applied::Done;
        };
        if !f.is_current(sent) {
            return Applied::Done;
        }
        let mut guard = part.log.lock();
        let Some(log) = guard.as_mut() else {
            return Applied::Done;
        };
        let code = ErrorCode::from_code(data.error).unwrap_or(ErrorCode::UnknownServerError);
        if code != ErrorCode::None {
            return match f.on_fetch_error(sent, code) {
                FetchErrorAction::ResolveOutOfRange => Applied::OutOfRange,
                FetchErrorAction::Backoff | FetchErrorAction::Failed => {
                    tracing::debug!(partition = %part.name(), error = ?code, "replica fetch error");
                    Applied::Backoff
                }
            };
        }
        if let Some(diverging) = data.diverging {
            let t = {
                let log_ref: &gregor_storage::Log = log;
                f.on_diverging_epoch(diverging, &follower_view(log_ref), |e| {
                    log_ref.end_offset_for_epoch(e)
                })
            };
            tracing::info!(
                partition = %part.name(),
                diverging_epoch = diverging.epoch,
                diverging_end_offset = diverging.end_offset,
                truncate_to = t.offset,
                "truncating a diverged follower log"
            );
            if let Err(e) = log.truncate_to(t.offset) {
                tracing::error!(partition = %part.name(), error = %e, "follower truncation failed");
                return Applied::Backoff;
            }
            f.on_truncated(&follower_view(log));
            return Applied::Done;
        }
        if let Some(records) = data.records.as_ref().filter(|r| !r.is_empty()) {
            if let Some((first, last)) = batch_bounds(records) {
                if let Some(restart) =
                    follower_append_restart_offset(first, last, &follower_view(log))
                {
                    if let Err(e) = log.truncate_fully_and_start_at(restart) {
                        tracing::error!(partition = %part.name(), error = %e, "cannot restart the follower log");
                        return Applied::Backoff;
                    }
                }
                if let Err(e) = log.append_as_follower(records) {
                    tracing::error!(partition = %part.name(), error = %e, "follower append failed");
                    return Applied::Backoff;
                }
                part.appended.notify_waiters();
            }
        }
        let view = follower_view(log);
        let hw = follower_high_watermark(
            data.high_watermark,
            view.log_start_offset,
            view.log_end_offset,
        );
        part.store_hw(log, Some(hw));
        if data.log_start_offset > view.log_start_offset
            && data.log_start_offset <= log.high_watermark()
        {
            if let Err(e) = log.delete_records(data.log_start_offset) {
                tracing::warn!(partition = %part.name(), error = %e, "cannot follow the leader's log start offset");
            }
        }
        f.on_appended(&follower_view(log));
        Applied::Done
    }

    /// OFFSET_OUT_OF_RANGE: applies the leader's log start and end offsets.
    fn resolve_out_of_range(&self, part: &Partition, leader_start: i64, leader_end: i64) {
        let mut role = part.role.lock();
        let Role::Follower(f) = &mut *role else {
            return;
        };
        let mut guard = part.log.lock();
        let Some(log) = guard.as_mut() else {
            return;
        };
        let action = f.on_offset_out_of_range(leader_start, leader_end, &follower_view(log));
        tracing::info!(partition = %part.name(), leader_start, leader_end, ?action, "follower offset out of range");
        let done = match action {
            OutOfRangeAction::TruncateTo(o) => log.truncate_to(o).map(|_| ()),
            OutOfRangeAction::TruncateFullyAndStartAt(o) => log.truncate_fully_and_start_at(o),
            OutOfRangeAction::FetchFrom(_) => Ok(()),
        };
        if let Err(e) = done {
            tracing::error!(partition = %part.name(), error = %e, "cannot resolve the out-of-range offset");
        }
        f.on_truncated(&follower_view(log));
    }
}

/// The fetcher of one leader broker: fetch rounds until the manager drops it.
async fn run(
    leader: i32,
    partitions: PartitionSet,
    wake: Arc<Notify>,
    rm: Weak<ReplicaManager>,
    settings: FetchSettings,
) {
    let Some((node_id, mut channel_config)) = rm.upgrade().map(|r| {
        let node_id = r.node_id;
        (
            node_id,
            r.inter_broker_channel(format!("gregor-replica-fetcher-{node_id}")),
        )
    }) else {
        return;
    };
    channel_config.max_frame_bytes =
        (settings.response_max_bytes as usize).max(settings.partition_max_bytes as usize) * 2
            + (1 << 20);
    let pool = ChannelPool::new(channel_config);
    loop {
        let Some(rm) = rm.upgrade() else {
            return;
        };
        let keys: Vec<(String, i32)> = partitions.lock().iter().cloned().collect();
        let mut wanted: Vec<(Arc<Partition>, FetchPartitionRequest)> = Vec::new();
        for (t, i) in &keys {
            if let Some(p) = rm.partition(t, *i) {
                if let Some(req) = p.next_fetch(leader) {
                    wanted.push((p, req));
                }
            }
        }
        let addr = rm.inter_broker_address(leader);
        let broker_epoch = rm.broker_epoch();
        if wanted.is_empty() || addr.is_none() {
            drop(rm);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        }
        let Some(addr) = addr else { continue };
        let channel = pool.channel(leader, &addr);
        let mut by_topic: Vec<(Uuid, Vec<(usize, &FetchPartitionRequest)>)> = Vec::new();
        for (i, (p, req)) in wanted.iter().enumerate() {
            match by_topic.iter_mut().find(|(id, _)| *id == p.topic_id) {
                Some((_, v)) => v.push((i, req)),
                None => by_topic.push((p.topic_id, vec![(i, req)])),
            }
        }
        let build = |version: i16| {
            let mut r = FetchRequest::default()
                .with_max_wait_ms(settings.wait_max_ms)
                .with_min_bytes(settings.min_bytes)
                .with_max_bytes(settings.response_max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(
                    by_topic
                        .iter()
                        .map(|(id, parts)| {
                            let name = wanted[parts[0].0].0.topic.clone();
                            FetchTopic::default()
                                .with_topic_id(*id)
                                .with_topic(TopicName(StrBytes::from_string(name)))
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|(i, req)| {
                                            FetchPartition::default()
                                                .with_partition(wanted[*i].0.index)
                                                .with_current_leader_epoch(req.current_leader_epoch)
                                                .with_fetch_offset(req.fetch_offset)
                                                .with_last_fetched_epoch(
                                                    req.last_fetched_epoch.unwrap_or(-1),
                                                )
                                                .with_log_start_offset(req.log_start_offset)
                                                .with_partition_max_bytes(
                                                    settings.partition_max_bytes,
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            if version >= 15 {
                r.replica_state = ReplicaState::default()
                    .with_replica_id(BrokerId(node_id))
                    .with_replica_epoch(broker_epoch);
            } else {
                r.replica_id = BrokerId(node_id);
            }
            r
        };
        let timeout = Duration::from_millis(settings.wait_max_ms as u64) + Duration::from_secs(30);
        let answer = channel.call_auto((12, 17), timeout, build).await;
        let resp = match answer {
            Ok((_, resp)) => resp,
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed");
                drop(rm);
                tokio::time::sleep(settings.backoff).await;
                continue;
            }
        };
        // Match the answer's partitions to what was asked.
        let mut work: Vec<(Arc<Partition>, FetchPartitionRequest, Fetched)> = Vec::new();
        for t in resp.responses {
            for pd in t.partitions {
                let Some((p, req)) = wanted
                    .iter()
                    .find(|(p, _)| p.topic_id == t.topic_id && p.index == pd.partition_index)
                else {
                    continue;
                };
                work.push((
                    p.clone(),
                    *req,
                    Fetched {
                        error: pd.error_code,
                        high_watermark: pd.high_watermark,
                        log_start_offset: pd.log_start_offset,
                        diverging: (pd.diverging_epoch.epoch >= 0).then_some(EpochEndOffset {
                            epoch: pd.diverging_epoch.epoch,
                            end_offset: pd.diverging_epoch.end_offset,
                        }),
                        records: pd.records,
                    },
                ));
            }
        }
        let rm2 = rm.clone();
        let outcomes = tokio::task::spawn_blocking(move || {
            work.into_iter()
                .map(|(p, req, data)| {
                    let applied = rm2.apply_fetched(&p, &req, &data);
                    (p, applied)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut backoff = false;
        for (p, applied) in outcomes {
            match applied {
                Applied::Done => {}
                Applied::Backoff => backoff = true,
                Applied::OutOfRange => match leader_offsets(&channel, node_id, &p).await {
                    Some((start, end)) => {
                        let rm3 = rm.clone();
                        let _ = tokio::task::spawn_blocking(move || {
                            rm3.resolve_out_of_range(&p, start, end)
                        })
                        .await;
                    }
                    None => backoff = true,
                },
            }
        }
        drop(rm);
        if backoff {
            tokio::time::sleep(settings.backoff).await;
        }
    }
}

/// The leader's log start and end offsets of `p` (ListOffsets EARLIEST and LATEST as a replica).
async fn leader_offsets(
    channel: &crate::rpc_client::NodeChannel,
    node_id: i32,
    p: &Partition,
) -> Option<(i64, i64)> {
    let mut out = [0i64; 2];
    for (i, ts) in [-2i64, -1].into_iter().enumerate() {
        let req = |_v: i16| {
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(node_id))
                .with_isolation_level(0)
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(p.topic.clone())))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(p.index)
                        .with_current_leader_epoch(p.leader_epoch())
                        .with_timestamp(ts)])])
        };
        let (_, resp) = channel
            .call_auto((1, 9), Duration::from_secs(10), req)
            .await
            .ok()?;
        let part = resp.topics.first()?.partitions.first()?;
        if part.error_code != 0 {
            return None;
        }
        out[i] = part.offset;
    }
    Some((out[0], out[1]))
}
