//! Prometheus metrics (`/metrics` on the `metrics.listener` HTTP listener, see [`http`]) and the
//! per-request bookkeeping behind them. Names follow what Kafka users already graph through the
//! Prometheus JMX exporter (`kafka_server_brokertopicmetrics_messagesin_total`, ...); the full
//! list with types, labels and Kafka equivalents is `docs/metrics.md`.
//!
//! Two kinds of metric:
//! - **Counted on the request path**: request counts, errors and latency per API, per-topic
//!   messages/bytes in and out, connections. These are atomics behind handles that are created
//!   once (per API and version, per topic, per listener) and cached, so a request costs a few
//!   atomic increments and one histogram observation — no label building, no allocation.
//! - **Computed at scrape time**: log size, start/end offsets and segment counts per partition,
//!   consumer-group lag, partition/topic counts. The broker reads its state into a [`Snapshot`]
//!   (briefly locking each log, off the async workers, and reading each group shard) and
//!   [`Metrics::encode`] encodes it; nothing on the request path maintains them.
//!
//! Fetch long polls (and deferred group answers such as JoinGroup waiting for a rebalance) are
//! waiting, not work: handlers wrap such waits in [`waiting`], which adds the time to the
//! request's wait total, and the slow-request log line compares `elapsed - waited` with
//! `gregor.slow.request.ms`. The latency histogram keeps Kafka's `TotalTimeMs` meaning (the
//! whole time, waits included).

pub mod http;

use gregor_protocol::messages::ApiKey;
use gregor_protocol::ErrorCode;
use parking_lot::{Mutex, RwLock};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, LabelSetEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Latency buckets of `kafka_network_requestmetrics_totaltimems`, in milliseconds.
pub const LATENCY_BUCKETS_MS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0, 30000.0,
];

/// Versions 0..VERSION_SLOTS get a cached request counter; others (unsupported anyway) go
/// through the family map.
const VERSION_SLOTS: usize = 32;

/// Highest API key number with a table slot.
const MAX_API_KEY: usize = 127;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    request: String,
    version: i16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    request: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    request: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_MS.iter().copied())
}

/// Kafka's request-metric name of an API (`RequestMetrics`): the API name, except Fetch, which
/// Kafka splits into `FetchConsumer` and `FetchFollower` (a single node only has consumers).
pub fn request_metric_name(api: ApiKey) -> String {
    match api {
        ApiKey::Fetch => "FetchConsumer".to_string(),
        other => format!("{other:?}"),
    }
}

/// Cached handles of one API.
struct ApiMetrics {
    name: String,
    versions: [OnceLock<Counter>; VERSION_SLOTS],
    total_time: OnceLock<Histogram>,
    errors: Mutex<Vec<(i16, Counter)>>,
}

/// Per-topic counters (Kafka's `BrokerTopicMetrics`), found once per topic per request.
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// Records appended by Produce (`MessagesInPerSec`).
    pub messages_in: AtomicU64,
    /// Record-batch bytes appended by Produce (`BytesInPerSec`).
    pub bytes_in: AtomicU64,
    /// Record-batch bytes sent by Fetch (`BytesOutPerSec`).
    pub bytes_out: AtomicU64,
    /// Produce requests naming the topic, per partition (`TotalProduceRequestsPerSec`).
    pub produce_requests: AtomicU64,
    /// Of those, failed ones (`FailedProduceRequestsPerSec`).
    pub failed_produce_requests: AtomicU64,
    /// Fetch requests naming the topic, per partition (`TotalFetchRequestsPerSec`).
    pub fetch_requests: AtomicU64,
    /// Of those, failed ones (`FailedFetchRequestsPerSec`).
    pub failed_fetch_requests: AtomicU64,
}

impl TopicCounters {
    /// Counts one successful append of `messages` records in `bytes` bytes.
    #[inline]
    pub fn appended(&self, messages: u64, bytes: u64) {
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts one produced partition (`failed`: it was answered with an error).
    #[inline]
    pub fn produce_request(&self, failed: bool) {
        self.produce_requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_produce_requests.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one fetched partition and the record bytes sent for it.
    #[inline]
    pub fn fetched(&self, bytes: u64, failed: bool) {
        self.fetch_requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed_fetch_requests.fetch_add(1, Ordering::Relaxed);
        }
        if bytes > 0 {
            self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn values(&self) -> TopicValues {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TopicValues {
            messages_in: get(&self.messages_in),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            produce_requests: get(&self.produce_requests),
            failed_produce_requests: get(&self.failed_produce_requests),
            fetch_requests: get(&self.fetch_requests),
            failed_fetch_requests: get(&self.failed_fetch_requests),
        }
    }
}

/// The broker's metrics: the request-path handles and the registry they live in.
pub struct Metrics {
    registry: Registry,
    apis: Box<[Option<ApiMetrics>]>,
    requests: Family<RequestLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    total_time: HistogramFamily<ApiLabels>,
    connections: Family<ListenerLabels, Gauge>,
    connections_created: Family<ListenerLabels, Counter>,
    topics: RwLock<HashMap<String, Arc<TopicCounters>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics with every request-path family registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let total_time: HistogramFamily<ApiLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let connections = Family::<ListenerLabels, Gauge>::default();
        let connections_created = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "kafka_network_requestmetrics_requests",
            "Requests handled, by API (Kafka's request name) and version (RequestsPerSec)",
            requests.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_errors",
            "Error codes returned, by API and error name (ErrorsPerSec, NONE not counted)",
            errors.clone(),
        );
        registry.register(
            "kafka_network_requestmetrics_totaltimems",
            "Request time in milliseconds from decoding to response, waits included (TotalTimeMs)",
            total_time.clone(),
        );
        registry.register(
            "kafka_server_socketservermetrics_connection_count",
            "Open client connections, by listener (connection-count)",
            connections.clone(),
        );
        registry.register(
            "kafka_server_socketservermetrics_connection_creation",
            "Client connections accepted, by listener (connection-creation-total)",
            connections_created.clone(),
        );
        let apis = (0..=MAX_API_KEY)
            .map(|k| {
                ApiKey::try_from(k as i16).ok().map(|api| ApiMetrics {
                    name: request_metric_name(api),
                    versions: std::array::from_fn(|_| OnceLock::new()),
                    total_time: OnceLock::new(),
                    errors: Mutex::new(Vec::new()),
                })
            })
            .collect();
        Metrics {
            registry,
            apis,
            requests,
            errors,
            total_time,
            connections,
            connections_created,
            topics: RwLock::new(HashMap::new()),
        }
    }

    fn api(&self, api: ApiKey) -> Option<&ApiMetrics> {
        self.apis.get(api as i16 as usize).and_then(Option::as_ref)
    }

    /// Counts one handled request and its total time (`elapsed`, waits included).
    pub fn request(&self, api: ApiKey, version: i16, elapsed: Duration) {
        let Some(a) = self.api(api) else { return };
        match usize::try_from(version)
            .ok()
            .and_then(|v| a.versions.get(v))
        {
            Some(slot) => {
                slot.get_or_init(|| {
                    self.requests.get_or_create_owned(&RequestLabels {
                        request: a.name.clone(),
                        version,
                    })
                })
                .inc();
            }
            None => {
                self.requests
                    .get_or_create(&RequestLabels {
                        request: a.name.clone(),
                        version,
                    })
                    .inc();
            }
        }
        a.total_time
            .get_or_init(|| {
                self.total_time.get_or_create_owned(&ApiLabels {
                    request: a.name.clone(),
                })
            })
            .observe(elapsed.as_secs_f64() * 1000.0);
    }

    /// Counts `count` occurrences of an error code in responses to `api` (NONE is ignored).
    pub fn errors(&self, api: ApiKey, code: ErrorCode, count: u64) {
        if code == ErrorCode::None || count == 0 {
            return;
        }
        let Some(a) = self.api(api) else { return };
        let mut cached = a.errors.lock();
        if let Some((_, c)) = cached.iter().find(|(k, _)| *k == code.code()) {
            c.inc_by(count);
            return;
        }
        let c = self.errors.get_or_create_owned(&ErrorLabels {
            request: a.name.clone(),
            error: code.name().to_string(),
        });
        c.inc_by(count);
        cached.push((code.code(), c));
    }

    /// Counts an accepted connection; the open-connection gauge drops with the guard.
    pub fn connection_opened(&self, listener: &str) -> ConnectionGuard {
        let labels = ListenerLabels {
            listener: listener.to_string(),
        };
        self.connections_created.get_or_create(&labels).inc();
        let gauge = self.connections.get_or_create_owned(&labels);
        gauge.inc();
        ConnectionGuard(gauge)
    }

    /// The counters of a topic (created on first use; dropped at scrape time once the topic
    /// no longer exists). One map look-up, no allocation after the first call.
    pub fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        if let Some(t) = self.topics.read().get(topic) {
            return t.clone();
        }
        self.topics
            .write()
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// Forgets the counters of topics that are not in `exists` (deleted topics).
    fn prune_topics(&self, exists: impl Fn(&str) -> bool) {
        let stale: Vec<String> = self
            .topics
            .read()
            .keys()
            .filter(|t| !exists(t))
            .cloned()
            .collect();
        if !stale.is_empty() {
            let mut topics = self.topics.write();
            for t in stale {
                topics.remove(&t);
            }
        }
    }

    /// Current values of every topic's counters, by topic name.
    fn topic_values(&self) -> Vec<(String, TopicValues)> {
        let mut topics: Vec<(String, TopicValues)> = self
            .topics
            .read()
            .iter()
            .map(|(name, c)| (name.clone(), c.values()))
            .collect();
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        topics
    }

    /// Encodes the request-path metrics plus `snapshot` in the OpenMetrics text format.
    pub fn encode(&self, snapshot: Snapshot) -> Result<String, std::fmt::Error> {
        use prometheus_client::encoding::text;
        let mut out = String::with_capacity(16 * 1024);
        text::encode_registry(&mut out, &self.registry)?;
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(snapshot));
        text::encode_registry(&mut out, &scrape)?;
        text::encode_eof(&mut out)?;
        Ok(out)
    }
}

/// Keeps a connection counted in `kafka_server_socketservermetrics_connection_count`.
#[derive(Debug)]
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

tokio::task_local! {
    static WAITED: Arc<AtomicU64>;
}

/// Per-connection accumulator of the time a request spent waiting (long polls, deferred
/// group answers), read by the connection after each request.
#[derive(Debug, Default, Clone)]
pub struct WaitClock(Arc<AtomicU64>);

impl WaitClock {
    /// Runs one request's future with this clock reset and installed for [`waiting`].
    pub async fn track<F: Future>(&self, fut: F) -> F::Output {
        self.0.store(0, Ordering::Relaxed);
        WAITED.scope(self.0.clone(), fut).await
    }

    /// Time the last tracked request spent in [`waiting`].
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Time the current request (inside [`WaitClock::track`]) has spent in [`waiting`] so far.
pub fn waited_so_far() -> Duration {
    Duration::from_nanos(WAITED.try_with(|w| w.load(Ordering::Relaxed)).unwrap_or(0))
}

/// Awaits `fut`, counting the time as waiting (not work) for the slow-request log.
pub async fn waiting<F: Future>(fut: F) -> F::Output {
    let started = std::time::Instant::now();
    let out = fut.await;
    let nanos = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
    let _ = WAITED.try_with(|w| w.fetch_add(nanos, Ordering::Relaxed));
    out
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TopicValues {
    messages_in: u64,
    bytes_in: u64,
    bytes_out: u64,
    produce_requests: u64,
    failed_produce_requests: u64,
    fetch_requests: u64,
    failed_fetch_requests: u64,
}

/// One partition's log, as seen at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStat {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Bytes in the log's segments.
    pub size: u64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Log end offset.
    pub log_end_offset: i64,
    /// Number of segments.
    pub segments: u64,
}

/// One committed offset of a consumer group and its lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagStat {
    /// Group id.
    pub group: String,
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Committed offset.
    pub committed: i64,
    /// `max(0, log end offset - committed)`.
    pub lag: i64,
}

/// Everything computed at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    topics: Vec<(String, TopicValues)>,
    /// Open partitions.
    pub partitions: Vec<PartitionStat>,
    /// Committed offsets and lag.
    pub lag: Vec<LagStat>,
    /// Number of topics.
    pub topic_count: u64,
}

impl Snapshot {
    /// Builds the scrape-time snapshot from what the broker read: the existing topics' names
    /// (counters of other topics are pruned), every partition's log figures and the committed
    /// offsets `(group, topic, partition, offset)`, whose lag is computed against the log ends.
    pub fn build(
        metrics: &Metrics,
        topic_names: &[String],
        mut partitions: Vec<PartitionStat>,
        committed: Vec<(String, String, i32, i64)>,
    ) -> Snapshot {
        let known: std::collections::HashSet<&str> =
            topic_names.iter().map(String::as_str).collect();
        metrics.prune_topics(|t| known.contains(t));
        let topics = metrics.topic_values();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let leo: HashMap<(String, i32), i64> = partitions
            .iter()
            .map(|p| ((p.topic.clone(), p.partition), p.log_end_offset))
            .collect();
        let lag = committed
            .into_iter()
            .filter_map(|(group, topic, partition, offset)| {
                let end = *leo.get(&(topic.clone(), partition))?;
                Some(LagStat {
                    group,
                    topic,
                    partition,
                    committed: offset,
                    lag: (end - offset).max(0),
                })
            })
            .collect();
        Snapshot {
            topics,
            partitions,
            lag,
            topic_count: topic_names.len() as u64,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct TopicLabel<'a> {
    topic: &'a str,
}

impl EncodeLabelSet for TopicLabel<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("topic", self.topic).encode(encoder.encode_label())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct PartitionLabels<'a> {
    topic: &'a str,
    partition: i32,
}

impl EncodeLabelSet for PartitionLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("topic", self.topic).encode(encoder.encode_label())?;
        ("partition", self.partition).encode(encoder.encode_label())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct GroupLabels<'a> {
    group: &'a str,
    topic: &'a str,
    partition: i32,
}

impl EncodeLabelSet for GroupLabels<'_> {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("consumergroup", self.group).encode(encoder.encode_label())?;
        ("topic", self.topic).encode(encoder.encode_label())?;
        ("partition", self.partition).encode(encoder.encode_label())
    }
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        type Pick = fn(&TopicValues) -> u64;
        let topic_counters: [(&str, &str, Pick); 7] = [
            (
                "kafka_server_brokertopicmetrics_messagesin",
                "Records appended by Produce, all topics and per topic (MessagesInPerSec)",
                |v| v.messages_in,
            ),
            (
                "kafka_server_brokertopicmetrics_bytesin",
                "Record-batch bytes appended by Produce (BytesInPerSec)",
                |v| v.bytes_in,
            ),
            (
                "kafka_server_brokertopicmetrics_bytesout",
                "Record-batch bytes sent by Fetch (BytesOutPerSec)",
                |v| v.bytes_out,
            ),
            (
                "kafka_server_brokertopicmetrics_totalproducerequests",
                "Produced partitions (TotalProduceRequestsPerSec)",
                |v| v.produce_requests,
            ),
            (
                "kafka_server_brokertopicmetrics_failedproducerequests",
                "Produced partitions answered with an error (FailedProduceRequestsPerSec)",
                |v| v.failed_produce_requests,
            ),
            (
                "kafka_server_brokertopicmetrics_totalfetchrequests",
                "Fetched partitions (TotalFetchRequestsPerSec)",
                |v| v.fetch_requests,
            ),
            (
                "kafka_server_brokertopicmetrics_failedfetchrequests",
                "Fetched partitions answered with an error (FailedFetchRequestsPerSec)",
                |v| v.failed_fetch_requests,
            ),
        ];
        for (name, help, pick) in topic_counters {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            let total: u64 = self.topics.iter().map(|(_, v)| pick(v)).sum();
            m.encode_counter::<NoLabelSet, _, u64>(&total, None)?;
            for (topic, v) in &self.topics {
                m.encode_family(&TopicLabel { topic })?
                    .encode_counter::<NoLabelSet, _, u64>(&pick(v), None)?;
            }
        }

        type PickP = fn(&PartitionStat) -> i64;
        let partition_gauges: [(&str, &str, PickP); 4] = [
            (
                "kafka_log_log_size",
                "Bytes of the partition's log segments (Log Size)",
                |p| p.size as i64,
            ),
            (
                "kafka_log_log_logendoffset",
                "Offset the next record will get (Log LogEndOffset)",
                |p| p.log_end_offset,
            ),
            (
                "kafka_log_log_logstartoffset",
                "First offset in the log (Log LogStartOffset)",
                |p| p.log_start_offset,
            ),
            (
                "kafka_log_log_numlogsegments",
                "Segments of the partition's log (Log NumLogSegments)",
                |p| p.segments as i64,
            ),
        ];
        for (name, help, pick) in partition_gauges {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for p in &self.partitions {
                m.encode_family(&PartitionLabels {
                    topic: &p.topic,
                    partition: p.partition,
                })?
                .encode_gauge(&pick(p))?;
            }
        }

        let mut m = enc.encode_descriptor(
            "kafka_consumergroup_current_offset",
            "Committed offset of a consumer group (kafka_exporter)",
            None,
            MetricType::Gauge,
        )?;
        for l in &self.lag {
            m.encode_family(&GroupLabels {
                group: &l.group,
                topic: &l.topic,
                partition: l.partition,
            })?
            .encode_gauge(&l.committed)?;
        }
        let mut m = enc.encode_descriptor(
            "kafka_consumergroup_lag",
            "Log end offset minus committed offset, at least 0 (kafka_exporter)",
            None,
            MetricType::Gauge,
        )?;
        for l in &self.lag {
            m.encode_family(&GroupLabels {
                group: &l.group,
                topic: &l.topic,
                partition: l.partition,
            })?
            .encode_gauge(&l.lag)?;
        }

        let partitions = self.partitions.len() as i64;
        gauge(
            &mut enc,
            "kafka_server_replicamanager_partitioncount",
            "Partitions on this broker (PartitionCount)",
            partitions,
        )?;
        gauge(
            &mut enc,
            "kafka_server_replicamanager_leadercount",
            "Partitions this broker leads (LeaderCount)",
            partitions,
        )?;
        gauge(
            &mut enc,
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Under-replicated partitions: always 0 on a single node (UnderReplicatedPartitions)",
            0,
        )?;
        gauge(
            &mut enc,
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1: this node is the active controller (ActiveControllerCount)",
            1,
        )?;
        gauge(
            &mut enc,
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a leader: always 0 (OfflinePartitionsCount)",
            0,
        )?;
        gauge(
            &mut enc,
            "kafka_controller_kafkacontroller_globaltopiccount",
            "Topics in the cluster (GlobalTopicCount)",
            self.topic_count as i64,
        )?;
        gauge(
            &mut enc,
            "kafka_controller_kafkacontroller_globalpartitioncount",
            "Partitions in the cluster (GlobalPartitionCount)",
            partitions,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn request_path_metrics_encode_with_kafka_names() {
        let m = Metrics::new();
        m.request(ApiKey::Produce, 9, Duration::from_micros(300));
        m.request(ApiKey::Produce, 9, Duration::from_millis(3));
        m.request(ApiKey::Fetch, 16, Duration::from_millis(700));
        m.errors(ApiKey::Produce, ErrorCode::MessageTooLarge, 2);
        m.errors(ApiKey::Produce, ErrorCode::MessageTooLarge, 1);
        m.errors(ApiKey::Produce, ErrorCode::None, 5);
        let conn = m.connection_opened("PLAINTEXT");
        let _conn2 = m.connection_opened("PLAINTEXT");
        drop(conn);
        let t = m.topic("orders");
        t.appended(10, 1234);
        t.produce_request(false);
        t.fetched(1000, false);
        m.topic("audit").appended(1, 80);
        let text = m
            .encode(Snapshot {
                topics: m.topic_values(),
                ..Snapshot::default()
            })
            .unwrap();
        let l = lines(&text);
        for want in [
            "# TYPE kafka_network_requestmetrics_requests counter",
            "kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"} 2",
            "kafka_network_requestmetrics_requests_total{request=\"FetchConsumer\",version=\"16\"} 1",
            "kafka_network_requestmetrics_errors_total{request=\"Produce\",error=\"MESSAGE_TOO_LARGE\"} 3",
            "# TYPE kafka_network_requestmetrics_totaltimems histogram",
            "kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"} 2",
            "kafka_network_requestmetrics_totaltimems_bucket{le=\"0.25\",request=\"Produce\"} 0",
            "kafka_network_requestmetrics_totaltimems_bucket{le=\"0.5\",request=\"Produce\"} 1",
            "kafka_network_requestmetrics_totaltimems_bucket{le=\"5.0\",request=\"Produce\"} 2",
            "kafka_network_requestmetrics_totaltimems_bucket{le=\"500.0\",request=\"FetchConsumer\"} 0",
            "kafka_network_requestmetrics_totaltimems_bucket{le=\"1000.0\",request=\"FetchConsumer\"} 1",
            "kafka_server_socketservermetrics_connection_count{listener=\"PLAINTEXT\"} 1",
            "kafka_server_socketservermetrics_connection_creation_total{listener=\"PLAINTEXT\"} 2",
            "# TYPE kafka_server_brokertopicmetrics_messagesin counter",
            "kafka_server_brokertopicmetrics_messagesin_total 11",
            "kafka_server_brokertopicmetrics_messagesin_total{topic=\"orders\"} 10",
            "kafka_server_brokertopicmetrics_messagesin_total{topic=\"audit\"} 1",
            "kafka_server_brokertopicmetrics_bytesin_total{topic=\"orders\"} 1234",
            "kafka_server_brokertopicmetrics_bytesout_total{topic=\"orders\"} 1000",
            "kafka_server_brokertopicmetrics_bytesout_total 1000",
            "kafka_server_brokertopicmetrics_totalproducerequests_total{topic=\"orders\"} 1",
            "kafka_server_replicamanager_underreplicatedpartitions 0",
            "kafka_controller_kafkacontroller_activecontrollercount 1",
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{text}");
        }
        assert!(
            !text.contains("error=\"NONE\""),
            "NONE is not an error:\n{text}"
        );
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn scrape_time_metrics_encode_per_partition_and_group() {
        let m = Metrics::new();
        let snap = Snapshot {
            topics: Vec::new(),
            partitions: vec![
                PartitionStat {
                    topic: "t".into(),
                    partition: 0,
                    size: 4096,
                    log_start_offset: 0,
                    log_end_offset: 42,
                    segments: 1,
                },
                PartitionStat {
                    topic: "t".into(),
                    partition: 1,
                    size: 0,
                    log_start_offset: 0,
                    log_end_offset: 0,
                    segments: 1,
                },
            ],
            lag: vec![LagStat {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                committed: 40,
                lag: 2,
            }],
            topic_count: 1,
        };
        let text = m.encode(snap).unwrap();
        let l = lines(&text);
        for want in [
            "# TYPE kafka_log_log_size gauge",
            "kafka_log_log_size{topic=\"t\",partition=\"0\"} 4096",
            "kafka_log_log_logendoffset{topic=\"t\",partition=\"0\"} 42",
            "kafka_log_log_logendoffset{topic=\"t\",partition=\"1\"} 0",
            "kafka_log_log_numlogsegments{topic=\"t\",partition=\"1\"} 1",
            "kafka_consumergroup_lag{consumergroup=\"g\",topic=\"t\",partition=\"0\"} 2",
            "kafka_consumergroup_current_offset{consumergroup=\"g\",topic=\"t\",partition=\"0\"} 40",
            "kafka_server_replicamanager_partitioncount 2",
            "kafka_controller_kafkacontroller_globaltopiccount 1",
            "kafka_server_brokertopicmetrics_messagesin_total 0",
        ] {
            assert!(l.contains(&want), "missing line {want:?} in:\n{text}");
        }
    }

    #[test]
    fn deleted_topics_are_pruned() {
        let m = Metrics::new();
        m.topic("kept").appended(1, 1);
        m.topic("gone").appended(1, 1);
        m.prune_topics(|t| t == "kept");
        let names: Vec<String> = m.topics.read().keys().cloned().collect();
        assert_eq!(names, vec!["kept".to_string()]);
    }

    #[tokio::test]
    async fn waits_are_tracked_per_request() {
        let clock = WaitClock::default();
        clock
            .track(async {
                waiting(tokio::time::sleep(Duration::from_millis(30))).await;
            })
            .await;
        assert!(clock.waited() >= Duration::from_millis(30));
        clock.track(async {}).await;
        assert_eq!(clock.waited(), Duration::ZERO);
        // Outside a tracked request, waiting is just awaiting.
        waiting(async {}).await;
    }
}
