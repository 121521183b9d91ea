//! [`Broker`]: the shared state behind every connection — configuration, the controller, and the
//! open partition logs — plus start-up (meta.properties, recovery) and clean shutdown.

use crate::config::Config;
use crate::configs::BrokerView;
use gregor_controller::state::CreateTopic;
use gregor_controller::{Controller, ControllerError, MetadataRecord, TopicMeta};
use gregor_protocol::Compression;
use gregor_storage::{Log, LogConfig};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// The leader epoch of every partition: a single node is always the leader, in epoch 0.
pub const LEADER_EPOCH: i32 = 0;

/// Checks a client's `current_leader_epoch` (-1: not given) against the partition's epoch, as
/// Kafka does: newer than ours is UNKNOWN_LEADER_EPOCH, older is FENCED_LEADER_EPOCH.
pub fn check_leader_epoch(current: i32) -> Result<(), gregor_protocol::ErrorCode> {
    use std::cmp::Ordering::*;
    if current < 0 {
        return Ok(());
    }
    match current.cmp(&LEADER_EPOCH) {
        Equal => Ok(()),
        Greater => Err(gregor_protocol::ErrorCode::UnknownLeaderEpoch),
        Less => Err(gregor_protocol::ErrorCode::FencedLeaderEpoch),
    }
}

/// One partition's log and its append notifier (wakes long-polling fetches).
#[derive(Debug)]
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub index: i32,
    /// The log; `None` once the partition was deleted.
    pub log: Mutex<Option<Log>>,
    /// Notified after every append.
    pub appended: Notify,
    deleted: AtomicBool,
}

impl Partition {
    /// Whether the partition was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }
}

/// The open partitions of one topic.
#[derive(Debug, Clone)]
pub struct TopicPartitions {
    /// Topic id.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: Vec<Arc<Partition>>,
    /// Produce-time settings from the topic's configuration.
    pub settings: ProduceSettings,
}

/// What Produce needs to know about a topic's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ProduceSettings {
    /// Largest record batch accepted (`max.message.bytes`, else `message.max.bytes`).
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches on append.
    pub log_append_time: bool,
    /// `cleanup.policy` includes `compact`: records must have keys.
    pub compact: bool,
    /// `compression.type` other than `producer`: batches are stored with this codec.
    pub compression: Option<Compression>,
    /// `min.insync.replicas` (acks=all needs this many in-sync replicas; we have one).
    pub min_insync_replicas: i32,
}

/// Broker-wide state.
#[derive(Debug)]
pub struct Broker {
    /// Configuration.
    pub config: Config,
    /// Cluster id (from meta.properties).
    pub cluster_id: String,
    /// The group coordinator and its I/O.
    pub groups: Arc<crate::groups::Groups>,
    /// The transaction coordinator and its I/O.
    pub txns: Arc<crate::txns::Txns>,
    /// Prometheus metrics (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    controller: Mutex<Controller>,
    topics: RwLock<HashMap<String, TopicPartitions>>,
    by_id: RwLock<HashMap<Uuid, String>>,
    clean_start: bool,
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An I/O problem with the log directory.
    #[error("log directory {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// meta.properties disagrees with the configuration.
    #[error("{0}")]
    Meta(String),
    /// A partition log could not be opened.
    #[error("cannot open partition log {path}: {source}")]
    Log {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: gregor_storage::StorageError,
    },
    /// The controller refused a start-up change.
    #[error("controller: {0}")]
    Controller(#[from] ControllerError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads or creates `meta.properties` (cluster id, node id) like Kafka's storage format.
fn ensure_meta_properties(dir: &Path, node_id: i32) -> Result<String, StartError> {
    let path = dir.join("meta.properties");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props: BTreeMap<String, String> =
                crate::config::parse_properties(&text).into_iter().collect();
            if let Some(stored) = props.get("node.id").and_then(|v| v.parse::<i32>().ok()) {
                if stored != node_id {
                    return Err(StartError::Meta(format!(
                        "Stored node id {stored} in {} doesn't match node.id {node_id} of the configuration",
                        path.display()
                    )));
                }
            }
            props
                .get("cluster.id")
                .cloned()
                .ok_or_else(|| StartError::Meta(format!("{} has no cluster.id", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id =
                gregor_controller::uuid_to_base64(gregor_controller::random_kafka_uuid());
            let directory_id =
                gregor_controller::uuid_to_base64(gregor_controller::random_kafka_uuid());
            let text = format!(
                "#\n#Written by gregor\nnode.id={node_id}\ndirectory.id={directory_id}\nversion=1\ncluster.id={cluster_id}\n"
            );
            let tmp = dir.join("meta.properties.tmp");
            std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
            Ok(cluster_id)
        }
        Err(e) => Err(StartError::Io { path, source: e }),
    }
}

/// `partition.metadata` ties a partition directory to its topic id (as Kafka does), so that a
/// directory left behind by a deleted topic is never mistaken for a new topic of the same name.
fn check_partition_metadata(dir: &Path, topic_id: Uuid) -> Result<(), StartError> {
    let path = dir.join("partition.metadata");
    let expected = gregor_controller::uuid_to_base64(topic_id);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let stored = text
                .lines()
                .find_map(|l| l.strip_prefix("topic_id:").map(|v| v.trim().to_string()));
            if stored.as_deref() != Some(expected.as_str()) {
                tracing::warn!(
                    dir = %dir.display(),
                    stored = ?stored,
                    expected = %expected,
                    "partition directory belongs to another (deleted) topic id; removing it"
                );
                std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
                std::fs::create_dir_all(dir).map_err(io_err(dir))?;
                write_partition_metadata(dir, &expected)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            write_partition_metadata(dir, &expected)
        }
        Err(e) => Err(StartError::Io { path, source: e }),
    }
}

fn write_partition_metadata(dir: &Path, id_b64: &str) -> Result<(), StartError> {
    let path = dir.join("partition.metadata");
    std::fs::write(&path, format!("version: 0\ntopic_id: {id_b64}\n")).map_err(io_err(&path))
}

impl Broker {
    /// Opens the log directory: meta.properties, metadata log, every partition log (recovering
    /// them after an unclean shutdown).
    pub fn open(config: Config) -> Result<Broker, StartError> {
        let dir = config.log_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let fresh = !dir.join("meta.properties").exists();
        let cluster_id = ensure_meta_properties(&dir, config.node_id)?;
        let clean = gregor_storage::clean_shutdown::take(&dir).map_err(io_err(&dir))? || fresh;
        if !clean {
            tracing::info!(dir = %dir.display(), "no clean-shutdown marker: recovering logs");
        }
        let meta_path = dir.join("gregor-metadata").join("metadata.log");
        let mut controller = Controller::open(&meta_path).map_err(io_err(&meta_path))?;
        let adv = config
            .advertised
            .values()
            .next()
            .cloned()
            .expect("config has a listener");
        controller.register_broker(
            config.node_id,
            &adv.host,
            adv.port as i32,
            config.rack.clone(),
        )?;
        let groups = Arc::new(crate::groups::Groups::new(
            config.group.clone(),
            config.offsets_topic_num_partitions,
        ));
        let txns = Arc::new(crate::txns::Txns::new(
            config.txn.clone(),
            config.transaction_state_log_num_partitions,
            config.transaction_cleanup_interval_ms,
        ));
        let broker = Broker {
            groups,
            txns,
            metrics: Arc::new(crate::metrics::Metrics::new()),
            config,
            cluster_id,
            controller: Mutex::new(controller),
            topics: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
            clean_start: clean,
        };
        let topics: Vec<TopicMeta> = broker.controller.lock().state().topics().cloned().collect();
        for t in &topics {
            broker.open_topic(t)?;
        }
        Ok(broker)
    }

    /// Whether the previous shutdown was clean.
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// A snapshot of the static and dynamic broker configs.
    pub fn broker_view(&self) -> BrokerView {
        let c = self.controller.lock();
        let st = c.state();
        BrokerView::new(
            &self.config,
            st.broker_configs(&self.config.node_id.to_string()),
            st.broker_configs(""),
        )
    }

    /// The log configuration of a topic with config `overrides`.
    fn log_config(&self, view: &BrokerView, overrides: &BTreeMap<String, String>) -> LogConfig {
        let long = |name: &str, default: i64| -> i64 {
            view.topic_value(overrides, name)
                .trim()
                .parse::<i64>()
                .unwrap_or(default)
        };
        let d = LogConfig::default();
        let policy = view.topic_value(overrides, "cleanup.policy");
        let flush_messages = long("flush.messages", i64::MAX);
        LogConfig {
            segment_bytes: long("segment.bytes", self.config.log_segment_bytes as i64).max(1)
                as u64,
            index_interval_bytes: long("index.interval.bytes", 4096).max(0) as u64,
            max_index_bytes: long("segment.index.bytes", 10 * 1024 * 1024).max(4) as u64,
            flush_interval_messages: flush_messages.max(1) as u64,
            segment_ms: long("segment.ms", d.segment_ms).max(1),
            retention_ms: long("retention.ms", d.retention_ms),
            retention_bytes: long("retention.bytes", d.retention_bytes),
            cleanup_delete: policy.split(',').any(|p| p.trim() == "delete"),
            cleanup_compact: policy.split(',').any(|p| p.trim() == "compact"),
            min_compaction_lag_ms: long("min.compaction.lag.ms", 0).max(0),
            max_compaction_lag_ms: long("max.compaction.lag.ms", i64::MAX).max(1),
            delete_retention_ms: long("delete.retention.ms", d.delete_retention_ms).max(0),
            min_cleanable_dirty_ratio: view
                .topic_value(overrides, "min.cleanable.dirty.ratio")
                .trim()
                .parse::<f64>()
                .unwrap_or(0.5),
            file_delete_delay_ms: long("file.delete.delay.ms", d.file_delete_delay_ms).max(0),
        }
    }

    /// Produce-time settings of a topic with config `overrides`.
    fn topic_settings(
        &self,
        view: &BrokerView,
        overrides: &BTreeMap<String, String>,
    ) -> ProduceSettings {
        let policy = view.topic_value(overrides, "cleanup.policy");
        ProduceSettings {
            max_message_bytes: view
                .topic_value(overrides, "max.message.bytes")
                .trim()
                .parse::<usize>()
                .unwrap_or(self.config.message_max_bytes),
            log_append_time: view
                .topic_value(overrides, "message.timestamp.type")
                .eq_ignore_ascii_case("LogAppendTime"),
            compact: policy.split(',').any(|p| p.trim() == "compact"),
            compression: match view.topic_value(overrides, "compression.type").trim() {
                "gzip" => Some(Compression::Gzip),
                "snappy" => Some(Compression::Snappy),
                "lz4" => Some(Compression::Lz4),
                "zstd" => Some(Compression::Zstd),
                "uncompressed" => Some(Compression::None),
                _ => None,
            },
            min_insync_replicas: view
                .topic_value(overrides, "min.insync.replicas")
                .trim()
                .parse::<i32>()
                .unwrap_or(1),
        }
    }

    /// Re-applies the configuration of `names` (every topic if `None`) to the open topics and
    /// their logs, after a config change.
    pub fn refresh_topic_configs(&self, names: Option<&[String]>) {
        let view = self.broker_view();
        let metas: Vec<TopicMeta> = match names {
            Some(names) => names.iter().filter_map(|n| self.topic_meta(n)).collect(),
            None => self.all_topics(),
        };
        for meta in metas {
            let settings = self.topic_settings(&view, &meta.configs);
            let log_config = self.log_config(&view, &meta.configs);
            let parts = {
                let mut topics = self.topics.write();
                let Some(t) = topics.get_mut(&meta.name) else {
                    continue;
                };
                t.settings = settings;
                t.partitions.clone()
            };
            for p in parts {
                if let Some(log) = p.log.lock().as_mut() {
                    if log.config() != &log_config {
                        log.set_config(log_config.clone());
                    }
                }
            }
        }
    }

    fn partition_dir(&self, topic: &str, index: i32) -> PathBuf {
        self.config.log_dir.join(format!("{topic}-{index}"))
    }

    /// Opens (creating if needed) the logs of every partition of `meta` that is not open yet.
    fn open_topic(&self, meta: &TopicMeta) -> Result<(), StartError> {
        let existing = self
            .topics
            .read()
            .get(&meta.name)
            .map(|t| t.partitions.len())
            .unwrap_or(0);
        let mut new_parts = Vec::new();
        let view = self.broker_view();
        let log_config = self.log_config(&view, &meta.configs);
        for index in existing as i32..meta.partitions {
            let dir = self.partition_dir(&meta.name, index);
            check_partition_metadata(&dir, meta.id)?;
            let (log, report) = Log::open(
                &dir,
                log_config.clone(),
                self.clean_start,
                Arc::new(gregor_storage::SystemClock),
            )
            .map_err(|source| StartError::Log {
                path: dir.clone(),
                source,
            })?;
            if report.truncated_bytes > 0 || report.rebuilt_indexes > 0 {
                tracing::warn!(
                    partition = %format!("{}-{index}", meta.name),
                    truncated_bytes = report.truncated_bytes,
                    truncated_at_offset = ?report.truncated_at_offset,
                    rebuilt_indexes = report.rebuilt_indexes,
                    "recovered partition log"
                );
            }
            new_parts.push(Arc::new(Partition {
                topic: meta.name.clone(),
                topic_id: meta.id,
                index,
                log: Mutex::new(Some(log)),
                appended: Notify::new(),
                deleted: AtomicBool::new(false),
            }));
        }
        let settings = self.topic_settings(&view, &meta.configs);
        let mut topics = self.topics.write();
        let entry = topics
            .entry(meta.name.clone())
            .or_insert_with(|| TopicPartitions {
                id: meta.id,
                partitions: Vec::new(),
                settings,
            });
        entry.partitions.extend(new_parts);
        self.by_id.write().insert(meta.id, meta.name.clone());
        Ok(())
    }

    /// The controller (locked).
    pub fn controller(&self) -> parking_lot::MutexGuard<'_, Controller> {
        self.controller.lock()
    }

    /// A topic's metadata by name.
    pub fn topic_meta(&self, name: &str) -> Option<TopicMeta> {
        self.controller.lock().state().topic(name).cloned()
    }

    /// Every topic's metadata, ordered by name.
    pub fn all_topics(&self) -> Vec<TopicMeta> {
        self.controller.lock().state().topics().cloned().collect()
    }

    /// Topic name of a topic id.
    pub fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.by_id.read().get(id).cloned()
    }

    /// A partition by topic name and index.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        if index < 0 {
            return None;
        }
        self.topics
            .read()
            .get(topic)
            .and_then(|t| t.partitions.get(index as usize).cloned())
    }

    /// A topic's produce-time settings.
    pub fn produce_settings(&self, topic: &str) -> ProduceSettings {
        self.topics
            .read()
            .get(topic)
            .map(|t| t.settings)
            .unwrap_or(ProduceSettings {
                max_message_bytes: self.config.message_max_bytes,
                log_append_time: false,
                compact: false,
                compression: None,
                min_insync_replicas: 1,
            })
    }

    /// Changes a topic's config overrides (all or nothing) and applies them at once.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<TopicMeta, ControllerError> {
        let meta = self.controller.lock().alter_topic_configs(name, changes)?;
        self.refresh_topic_configs(Some(&[name.to_string()]));
        tracing::info!(topic = %name, ?changes, "altered topic configs");
        Ok(meta)
    }

    /// Commits metadata records (dynamic broker configs, quotas) and re-applies configs.
    pub fn commit_config_records(
        &self,
        records: Vec<MetadataRecord>,
    ) -> Result<(), ControllerError> {
        let broker_configs = records
            .iter()
            .any(|r| matches!(r, MetadataRecord::BrokerConfig { .. }));
        self.controller.lock().commit(records)?;
        if broker_configs {
            self.refresh_topic_configs(None);
        }
        Ok(())
    }

    /// Creates a topic: metadata first (durable), then its partition logs.
    pub fn create_topic(&self, req: &CreateTopic) -> Result<TopicMeta, ControllerError> {
        let meta = self.controller.lock().create_topic(req)?;
        if let Err(e) = self.open_topic(&meta) {
            tracing::error!(topic = %meta.name, error = %e, "created topic but cannot open its logs");
            return Err(ControllerError::Storage(e.to_string()));
        }
        tracing::info!(topic = %meta.name, id = %gregor_controller::uuid_to_base64(meta.id), partitions = meta.partitions, "created topic");
        Ok(meta)
    }

    /// Creates a topic with broker defaults (auto-creation).
    pub fn auto_create_topic(&self, name: &str) -> Result<TopicMeta, ControllerError> {
        self.create_topic(&CreateTopic {
            name: name.to_string(),
            partitions: self.config.num_partitions,
            replication_factor: self.config.default_replication_factor,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        })
    }

    /// Grows a topic.
    pub fn create_partitions(&self, name: &str, count: i32) -> Result<TopicMeta, ControllerError> {
        let meta = self.controller.lock().create_partitions(name, count)?;
        self.open_topic(&meta)
            .map_err(|e| ControllerError::Storage(e.to_string()))?;
        Ok(meta)
    }

    /// Deletes a topic: metadata first (durable), then its logs.
    pub fn delete_topic(&self, id: &Uuid) -> Result<TopicMeta, ControllerError> {
        let meta = self.controller.lock().delete_topic(id)?;
        let removed = self.topics.write().remove(&meta.name);
        self.by_id.write().remove(id);
        if let Some(t) = removed {
            for p in t.partitions {
                p.deleted.store(true, Ordering::Release);
                p.appended.notify_waiters();
                let log = p.log.lock().take();
                if let Some(log) = log {
                    if let Err(e) = log.delete() {
                        tracing::error!(topic = %meta.name, partition = p.index, error = %e, "cannot delete partition log");
                    }
                }
            }
        }
        tracing::info!(topic = %meta.name, "deleted topic");
        Ok(meta)
    }

    /// Allocates a producer id.
    pub fn next_producer_id(&self) -> Result<i64, ControllerError> {
        self.controller.lock().next_producer_id()
    }

    /// Every open partition.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// fsyncs logs that have unflushed records.
    pub fn flush_all(&self) {
        for p in self.all_partitions() {
            let mut guard = p.log.lock();
            if let Some(log) = guard.as_mut() {
                if log.unflushed_messages() > 0 {
                    if let Err(e) = log.flush() {
                        tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
                    }
                }
            }
        }
    }

    /// Closes every log (flush, snapshots) and writes the clean-shutdown marker.
    pub fn shutdown(&self) {
        let mut ok = true;
        for p in self.all_partitions() {
            let log = p.log.lock().take();
            if let Some(log) = log {
                if let Err(e) = log.close() {
                    ok = false;
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cannot close partition log");
                }
            }
        }
        if ok {
            if let Err(e) = gregor_storage::clean_shutdown::mark(&self.config.log_dir) {
                tracing::error!(error = %e, "cannot write the clean-shutdown marker");
            }
        }
    }
}
