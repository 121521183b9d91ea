//! [`Broker`]: the composition root. It opens the log directory (meta.properties, the
//! clean-shutdown marker, the metadata log), builds the services in dependency order and wires
//! them together — metadata → replica manager → coordinators — and takes them down again. It
//! holds no state of its own: every request goes to a service through
//! [`Services`](crate::services::Services).

use crate::config::Config;
use crate::controller::ControllerChannel;
use crate::group_service::GroupCoordinatorService;
use crate::markers::MarkerWriter;
use crate::metadata_cache::MetadataCache;
use crate::metrics::{Metrics, PartitionStat, Snapshot};
use crate::producer_ids::ProducerIdManager;
use crate::replica_manager::ReplicaManager;
use crate::services::Services;
use crate::txn_service::{TxnCoordinatorService, TxnDeps};
use gregor_controller::{Controller, ControllerError};
use gregor_storage::{Clock, SystemClock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A started broker's services.
#[derive(Debug)]
pub struct Broker {
    /// The services handlers use.
    pub services: Services,
    clean_start: bool,
}

impl Broker {
    /// Opens the log directory and builds the services: meta.properties, the metadata log,
    /// every partition log (recovering them after an unclean shutdown), the coordinators
    /// (whose shards load in the background when a tokio runtime is running). Blocking.
    pub fn open(config: Config) -> Result<Broker, StartError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// As [`Broker::open`], with the clock the storage and coordinators use.
    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Broker, StartError> {
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
            .ok_or_else(|| StartError::Meta("no advertised listener".into()))?;
        controller.register_broker(
            config.node_id,
            &adv.host,
            adv.port as i32,
            config.rack.clone(),
        )?;
        let config = Arc::new(config);
        let metadata = Arc::new(MetadataCache::new(
            config.clone(),
            controller.state().clone(),
        ));
        let controller = Arc::new(ControllerChannel::new(controller, metadata.clone()));
        let replicas = Arc::new(ReplicaManager::new(config.clone(), clock.clone(), clean));
        controller.add_listener(replicas.clone());
        let groups = GroupCoordinatorService::new(
            config.group.clone(),
            config.offsets_topic_num_partitions,
            replicas.clone(),
            metadata.clone(),
            controller.clone(),
            clock.clone(),
        );
        let txns = TxnCoordinatorService::new(
            config.txn.clone(),
            config.transaction_state_log_num_partitions,
            config.transaction_cleanup_interval_ms,
            TxnDeps {
                replicas: replicas.clone(),
                metadata: metadata.clone(),
                controller: controller.clone(),
                markers: MarkerWriter::new(replicas.clone(), groups.clone()),
                producer_ids: Arc::new(ProducerIdManager::new(controller.clone())),
                clock,
            },
        );
        Ok(Broker {
            services: Services {
                cluster_id: cluster_id.into(),
                config,
                metadata,
                controller,
                replicas,
                groups,
                txns,
                metrics: Arc::new(Metrics::new()),
            },
            clean_start: clean,
        })
    }

    /// Whether the previous shutdown was clean.
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    /// Reads what the `/metrics` endpoint computes at scrape time: every partition's log, the
    /// per-topic counters and the committed offsets (for lag).
    pub async fn metrics_snapshot(&self) -> Snapshot {
        let s = &self.services;
        let names: Vec<String> = s
            .metadata
            .all_topics()
            .into_iter()
            .map(|t| t.name)
            .collect();
        let replicas = s.replicas.clone();
        // Log locks may be held by an append's disk write: read them off the async workers.
        let partitions: Vec<PartitionStat> = tokio::task::spawn_blocking(move || {
            replicas
                .all_partitions()
                .iter()
                .filter_map(|p| {
                    p.with_log(|log| PartitionStat {
                        topic: p.topic.clone(),
                        partition: p.index,
                        size: log.size_bytes(),
                        log_start_offset: log.log_start_offset(),
                        log_end_offset: log.log_end_offset(),
                        segments: log.segment_count() as u64,
                    })
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        let committed = s.groups.committed_offsets().await;
        Snapshot::build(&s.metrics, &names, partitions, committed)
    }

    /// Closes every log (flush, snapshots, high watermarks) and writes the clean-shutdown
    /// marker. Blocking.
    pub fn shutdown(&self) {
        self.services.replicas.shutdown();
    }
}

impl crate::metrics::http::Scrape for Broker {
    async fn scrape(&self) -> Result<String, std::fmt::Error> {
        let snapshot = self.metrics_snapshot().await;
        self.services.metrics.encode(snapshot)
    }
}
