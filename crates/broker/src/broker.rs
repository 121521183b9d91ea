//! [`Broker`]: the shared state behind every connection — configuration, the controller, and the
//! open partition logs — plus start-up (meta.properties, recovery) and clean shutdown.

use crate::config::Config;
use gregor_controller::state::CreateTopic;
use gregor_controller::{Controller, ControllerError, TopicMeta};
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
    /// Largest record batch accepted (`max.message.bytes`, else `message.max.bytes`).
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches on append.
    pub log_append_time: bool,
}

/// What Produce needs to know about a topic's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ProduceSettings {
    /// Largest record batch accepted.
    pub max_message_bytes: usize,
    /// Stamp batches with the append time.
    pub log_append_time: bool,
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
        let broker = Broker {
            groups,
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

    fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.config.log_segment_bytes,
            index_interval_bytes: self.config.log_index_interval_bytes,
            max_index_bytes: self.config.log_index_size_max_bytes,
            flush_interval_messages: self.config.log_flush_interval_messages,
            ..LogConfig::default()
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
        for index in existing as i32..meta.partitions {
            let dir = self.partition_dir(&meta.name, index);
            check_partition_metadata(&dir, meta.id)?;
            let (log, report) =
                Log::open(&dir, self.log_config(), self.clean_start).map_err(|source| {
                    StartError::Log {
                        path: dir.clone(),
                        source,
                    }
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
        let mut topics = self.topics.write();
        let max_message_bytes = meta
            .configs
            .get("max.message.bytes")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(self.config.message_max_bytes);
        let timestamp_type = meta
            .configs
            .get("message.timestamp.type")
            .or_else(|| self.config.values.get("log.message.timestamp.type"))
            .map(String::as_str)
            .unwrap_or("CreateTime");
        let log_append_time = timestamp_type.eq_ignore_ascii_case("LogAppendTime");
        let entry = topics
            .entry(meta.name.clone())
            .or_insert_with(|| TopicPartitions {
                id: meta.id,
                partitions: Vec::new(),
                max_message_bytes,
                log_append_time,
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
            .map(|t| ProduceSettings {
                max_message_bytes: t.max_message_bytes,
                log_append_time: t.log_append_time,
            })
            .unwrap_or(ProduceSettings {
                max_message_bytes: self.config.message_max_bytes,
                log_append_time: false,
            })
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
