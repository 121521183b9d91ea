//! The log manager: background retention and compaction, off the request path (Kafka's
//! `LogManager` retention task and `LogCleaner`).
//!
//! * Retention: every `log.retention.check.interval.ms` (first run after at most 30 s, like
//!   Kafka's initial task delay), for each open partition, the partition lock is taken
//!   briefly to roll a segment older than `segment.ms`, delete segments breaching
//!   `retention.ms` / `retention.bytes` / the log start offset, and remove the files of
//!   segments deleted more than `file.delete.delay.ms` ago.
//! * Cleaner (`log.cleaner.enable`): for each partition with `cleanup.policy=compact`,
//!   [`Log::prepare_clean`](gregor_storage::Log::prepare_clean) under the lock, then the
//!   expensive [`CleanPlan::execute`](gregor_storage::CleanPlan::execute) without it
//!   (throttled to `log.cleaner.io.max.bytes.per.second`), then
//!   [`Log::commit_clean`](gregor_storage::Log::commit_clean) under the lock. When no log
//!   needed cleaning it sleeps `log.cleaner.backoff.ms`.
//!
//! All filesystem work runs in `spawn_blocking`, never on the async workers.

use crate::cleaner_codec::ProtocolCodec;
use crate::clock::now_ms;
use crate::config::Config;
use crate::replica_manager::{Partition, ReplicaManager};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Kafka's `InitialTaskDelayMs`: the first retention check runs at most this long after start.
const INITIAL_RETENTION_DELAY_MS: u64 = 30_000;

/// Settings of the log manager (from the broker configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct LogManagerSettings {
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.enable`.
    pub cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`.
    pub cleaner_backoff_ms: u64,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub cleaner_io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`: memory cap of the cleaner's offset map.
    pub cleaner_dedupe_buffer_size: usize,
}

impl LogManagerSettings {
    /// The settings from the broker configuration.
    pub fn from_config(config: &Config) -> Self {
        LogManagerSettings {
            retention_check_interval_ms: config.log_retention_check_interval_ms.max(1),
            cleaner_enable: config.log_cleaner_enable,
            cleaner_backoff_ms: config.log_cleaner_backoff_ms.max(1),
            cleaner_io_max_bytes_per_second: config.log_cleaner_io_max_bytes_per_second,
            cleaner_dedupe_buffer_size: usize::try_from(config.log_cleaner_dedupe_buffer_size)
                .unwrap_or(usize::MAX),
        }
    }
}

fn name(p: &Partition) -> String {
    p.name()
}

/// Runs retention and the cleaner until `stop` becomes true.
pub async fn run(
    replicas: Arc<ReplicaManager>,
    settings: LogManagerSettings,
    stop: watch::Receiver<bool>,
) {
    let stopped = Arc::new(AtomicBool::new(*stop.borrow()));
    let flag = stopped.clone();
    let mut watcher = stop.clone();
    let relay = tokio::spawn(async move {
        while !*watcher.borrow_and_update() {
            if watcher.changed().await.is_err() {
                break;
            }
        }
        flag.store(true, Ordering::Release);
    });
    let retention = retention_loop(replicas.clone(), settings.clone(), stop.clone());
    let cleaner = async {
        if settings.cleaner_enable {
            cleaner_loop(
                replicas.clone(),
                settings.clone(),
                stop.clone(),
                stopped.clone(),
            )
            .await;
        }
    };
    tokio::join!(retention, cleaner);
    relay.abort();
}

/// Sleeps `ms` unless `stop` flips first; returns false when stopping.
async fn sleep_or_stop(ms: u64, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(ms)) => !*stop.borrow(),
        r = stop.changed() => r.is_ok() && !*stop.borrow(),
    }
}

async fn retention_loop(
    replicas: Arc<ReplicaManager>,
    settings: LogManagerSettings,
    mut stop: watch::Receiver<bool>,
) {
    let mut delay = settings
        .retention_check_interval_ms
        .min(INITIAL_RETENTION_DELAY_MS);
    loop {
        if !sleep_or_stop(delay, &mut stop).await {
            return;
        }
        delay = settings.retention_check_interval_ms;
        let r = replicas.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || retention_pass(&r, now_ms())).await {
            tracing::error!(error = %e, "retention task failed");
        }
    }
}

/// One retention pass over every open partition (blocking). Returns the number of deleted
/// segments.
pub fn retention_pass(replicas: &ReplicaManager, now_ms: i64) -> usize {
    let mut deleted = 0;
    for p in replicas.all_partitions() {
        let passed = p.with_log_mut(|log| retention_one(&p, log, now_ms));
        deleted += passed.unwrap_or(0);
    }
    deleted
}

/// Retention of one log (under its lock): time roll, deletions, purge of deleted files.
fn retention_one(p: &Partition, log: &mut gregor_storage::Log, now_ms: i64) -> usize {
    let mut deleted = 0;
    {
        match log.roll_if_due(now_ms) {
            Ok(true) => tracing::info!(
                partition = %name(p),
                log_end_offset = log.log_end_offset(),
                "Rolled new log segment for {} (segment.ms {} elapsed)",
                name(p),
                log.config().segment_ms
            ),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(partition = %name(p), error = %e, "time-based segment roll failed")
            }
        }
        match log.delete_old_segments(now_ms) {
            Ok(o) if o.deleted_segments > 0 => {
                deleted += o.deleted_segments;
                tracing::info!(
                    partition = %name(p),
                    segments = o.deleted_segments,
                    bytes = o.deleted_bytes,
                    by_time = o.by_time,
                    by_size = o.by_size,
                    by_log_start = o.by_log_start,
                    log_start_offset = o.log_start_offset,
                    "Deleted {} old segment(s) of {}; log start offset is now {}",
                    o.deleted_segments,
                    name(p),
                    o.log_start_offset
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(partition = %name(p), error = %e, "retention failed")
            }
        }
        if let Err(e) = log.purge_deleted(now_ms) {
            tracing::error!(partition = %name(p), error = %e, "cannot remove deleted segment files");
        }
    }
    deleted
}

async fn cleaner_loop(
    replicas: Arc<ReplicaManager>,
    settings: LogManagerSettings,
    mut stop: watch::Receiver<bool>,
    stopped: Arc<AtomicBool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let r = replicas.clone();
        let s = settings.clone();
        let flag = stopped.clone();
        let cleaned = tokio::task::spawn_blocking(move || cleaner_pass(&r, &s, &flag))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "log cleaner task failed");
                0
            });
        if cleaned == 0 && !sleep_or_stop(settings.cleaner_backoff_ms, &mut stop).await {
            return;
        }
    }
}

/// Rate limiter of the cleaner's I/O (Kafka's `Throttler`): sleeps whenever the bytes done
/// since the start exceed `rate × elapsed`.
struct Throttler<'a> {
    rate: f64,
    start: Instant,
    bytes: f64,
    stopped: &'a AtomicBool,
}

impl Throttler<'_> {
    fn maybe_throttle(&mut self, bytes: u64) {
        if !self.rate.is_finite() || self.rate >= f64::MAX / 2.0 {
            return;
        }
        self.bytes += bytes as f64;
        let due = Duration::from_secs_f64((self.bytes / self.rate).min(1e9));
        let elapsed = self.start.elapsed();
        if due > elapsed {
            let mut left = due - elapsed;
            while !left.is_zero() && !self.stopped.load(Ordering::Acquire) {
                let step = left.min(Duration::from_millis(100));
                std::thread::sleep(step);
                left -= step;
            }
        }
    }
}

/// One cleaner pass over every partition (blocking). Returns how many logs were cleaned.
pub fn cleaner_pass(
    replicas: &ReplicaManager,
    settings: &LogManagerSettings,
    stopped: &AtomicBool,
) -> usize {
    let mut cleaned = 0;
    for p in replicas.all_partitions() {
        if stopped.load(Ordering::Acquire) {
            break;
        }
        if p.is_deleted() {
            continue;
        }
        match clean_partition(&p, settings, stopped, now_ms()) {
            Ok(true) => cleaned += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(partition = %name(&p), error = %e, "log cleaning failed"),
        }
    }
    cleaned
}

/// Cleans one partition if it needs it: prepare (locked), execute (unlocked), commit (locked).
pub fn clean_partition(
    p: &Partition,
    settings: &LogManagerSettings,
    stopped: &AtomicBool,
    now_ms: i64,
) -> Result<bool, gregor_storage::StorageError> {
    let Some(plan) = p.with_log_mut(|log| log.prepare_clean(now_ms)) else {
        return Ok(false);
    };
    let Some(mut plan) = plan else {
        return Ok(false);
    };
    plan.set_offset_map_memory(settings.cleaner_dedupe_buffer_size);
    tracing::info!(
        partition = %name(p),
        first_dirty_offset = plan.first_dirty_offset(),
        dirty_ratio = plan.dirty_ratio,
        "Cleaning log {} (first dirty offset {}, dirty ratio {:.2})",
        name(p),
        plan.first_dirty_offset(),
        plan.dirty_ratio
    );
    let started = Instant::now();
    let mut throttler = Throttler {
        rate: settings.cleaner_io_max_bytes_per_second,
        start: started,
        bytes: 0.0,
        stopped,
    };
    let out = plan.execute(&ProtocolCodec, &mut |n| throttler.maybe_throttle(n))?;
    let mut out = Some(out);
    let committed = p.with_log_mut(|log| match out.take() {
        Some(o) => log.commit_clean(o),
        None => Err(gregor_storage::StorageError::CorruptBatch(
            "cleaner output already used".into(),
        )),
    });
    let stats = match committed {
        Some(stats) => stats?,
        None => {
            // Deleted meanwhile: drop the cleaned files.
            if let Some(o) = out {
                o.discard()?;
            }
            return Ok(false);
        }
    };
    if stats.committed {
        tracing::info!(
            partition = %name(p),
            first_dirty_offset = stats.first_dirty_offset,
            end_offset = stats.end_offset,
            segments = stats.segments,
            segments_rewritten = stats.segments_rewritten,
            bytes_before = stats.bytes_before,
            bytes_after = stats.bytes_after,
            records_removed = stats.records_removed,
            tombstones_removed = stats.tombstones_removed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Cleaned log {} (dirty section = [{}, {})): {} bytes -> {} bytes, {} records removed",
            name(p),
            stats.first_dirty_offset,
            stats.end_offset,
            stats.bytes_before,
            stats.bytes_after,
            stats.records_removed
        );
    }
    // No progress (e.g. an open transaction at the start of the dirty range): back off.
    Ok(stats.committed && stats.end_offset > stats.first_dirty_offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_controller::state::CreateTopic;
    use gregor_protocol::{Compression, RecordBatch, RecordBatchBuilder};
    use gregor_storage::LogConfig;
    use std::collections::BTreeMap;

    /// A started single-node broker with topic `t` (the watch sender keeps its tasks alive).
    async fn broker(
        dir: &std::path::Path,
        extra: &[(&str, &str)],
    ) -> (Arc<ReplicaManager>, watch::Sender<bool>) {
        let mut pairs = vec![
            ("log.dirs".to_string(), dir.display().to_string()),
            (
                "listeners".to_string(),
                "PLAINTEXT://127.0.0.1:0".to_string(),
            ),
        ];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::from_pairs(pairs).expect("config");
        let (stop, rx) = watch::channel(false);
        let b = crate::broker::Broker::start(config, rx)
            .await
            .expect("start broker");
        b.services
            .controller
            .create_topic(CreateTopic {
                name: "t".into(),
                partitions: 1,
                replication_factor: 1,
                assignments: BTreeMap::new(),
                configs: BTreeMap::new(),
            })
            .await
            .expect("create topic");
        (b.services.replicas.clone(), stop)
    }

    fn append(rm: &ReplicaManager, p: &Partition, ts: i64, key: &str, value: Option<&str>) {
        let mut b = RecordBatchBuilder::new(Compression::Snappy, ts);
        b.push(ts, Some(key.as_bytes()), value.map(str::as_bytes), &[]);
        let mut bytes = b.build().expect("build").to_vec();
        rm.append_as_leader(p, &mut bytes).expect("append");
    }

    fn values(p: &Partition) -> Vec<(String, Option<String>)> {
        p.with_log(values_of).expect("log")
    }

    fn values_of(log: &gregor_storage::Log) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let r = log.read(offset, usize::MAX, true).expect("read");
            let Some(region) = r.region else { break };
            let bytes = bytes::Bytes::from(region.read_to_vec().expect("bytes"));
            for b in RecordBatch::split(bytes).expect("split") {
                offset = b.next_offset();
                for rec in b.records(usize::MAX).expect("records") {
                    let s = |v: Option<bytes::Bytes>| {
                        v.map(|v| String::from_utf8_lossy(&v).into_owned())
                    };
                    out.push((s(rec.key).unwrap_or_default(), s(rec.value)));
                }
            }
        }
        out
    }

    fn set_config(p: &Partition, f: impl FnOnce(&mut LogConfig)) {
        p.with_log_mut(|log| {
            let mut c = log.config().clone();
            f(&mut c);
            log.set_config(c);
        })
        .expect("log");
    }

    #[test]
    fn settings_from_config() {
        let c = Config::from_pairs([
            (
                "log.retention.check.interval.ms".to_string(),
                "1234".to_string(),
            ),
            ("log.cleaner.enable".to_string(), "false".to_string()),
            ("log.cleaner.backoff.ms".to_string(), "50".to_string()),
            (
                "log.cleaner.dedupe.buffer.size".to_string(),
                "1000".to_string(),
            ),
        ])
        .expect("config");
        let s = LogManagerSettings::from_config(&c);
        assert_eq!(s.retention_check_interval_ms, 1234);
        assert!(!s.cleaner_enable);
        assert_eq!(s.cleaner_backoff_ms, 50);
        assert_eq!(s.cleaner_io_max_bytes_per_second, f64::MAX);
        assert_eq!(s.cleaner_dedupe_buffer_size, 1000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_and_cleaning_passes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (b, _stop) = broker(dir.path(), &[("log.segment.bytes", "200")]).await;
        let p = b.partition("t", 0).expect("partition");
        let now = now_ms();
        for i in 0..6 {
            append(&b, &p, now - 100_000 + i, "k", Some("old"));
        }
        append(&b, &p, now, "k", Some("new"));
        set_config(&p, |c| {
            c.retention_ms = 10_000;
            c.file_delete_delay_ms = 0;
        });
        assert!(retention_pass(&b, now) > 0);
        assert_eq!(values(&p), vec![("k".to_string(), Some("new".to_string()))]);
        // Compaction: several values per key, then clean.
        set_config(&p, |c| {
            c.retention_ms = -1;
            c.cleanup_compact = true;
            c.min_cleanable_dirty_ratio = 0.0;
        });
        for i in 0..20 {
            append(&b, &p, now, &format!("k{}", i % 3), Some(&format!("v{i}")));
        }
        let settings = LogManagerSettings {
            retention_check_interval_ms: 1000,
            cleaner_enable: true,
            cleaner_backoff_ms: 10,
            cleaner_io_max_bytes_per_second: 1e9,
            cleaner_dedupe_buffer_size: 1 << 20,
        };
        let stopped = AtomicBool::new(false);
        assert!(clean_partition(&p, &settings, &stopped, now).expect("clean"));
        let vals = values(&p);
        for k in ["k0", "k1", "k2"] {
            let n = vals.iter().filter(|(key, _)| key == k).count();
            assert!(n <= 2, "{k}: {vals:?}");
        }
        assert_eq!(
            vals.last().map(|v| v.1.clone()),
            Some(Some("v19".to_string()))
        );
        assert!(!clean_partition(&p, &settings, &stopped, now).expect("nothing dirty"));
    }

    #[tokio::test]
    async fn run_stops_promptly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (b, _stop) = broker(dir.path(), &[]).await;
        let settings = LogManagerSettings {
            retention_check_interval_ms: 10,
            cleaner_enable: true,
            cleaner_backoff_ms: 10,
            cleaner_io_max_bytes_per_second: f64::MAX,
            cleaner_dedupe_buffer_size: 1 << 20,
        };
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run(b, settings, rx));
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops promptly")
            .expect("no panic");
    }
}
