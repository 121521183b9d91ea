//! [`Broker`]: the composition root. It opens the log directory (meta.properties, the
//! clean-shutdown marker), starts this node's controller when it is one (a member of the
//! controller quorum; a single node runs an embedded one-voter quorum), builds the services in
//! dependency order — metadata follower → replica manager → coordinators — registers the broker
//! with the active controller and waits until it is unfenced. It holds no state of its own:
//! every request goes to a service through [`Services`].

use crate::broker_lifecycle::{BrokerLifecycle, RegistrationInfo};
use crate::config::Config;
use crate::controller::ControllerChannel;
use crate::coordinator_runtime::InternalTopic;
use crate::group_service::GroupCoordinatorService;
use crate::markers::MarkerWriter;
use crate::metadata_cache::MetadataCache;
use crate::metadata_follower::{MetadataFollower, MetadataSource};
use crate::metrics::{Metrics, PartitionStat, Snapshot};
use crate::producer_ids::ProducerIdManager;
use crate::quorum_controller::{read_legacy_log, QuorumController, QuorumSettings, RaftTransport};
use crate::replica_manager::ReplicaManager;
use crate::services::Services;
use crate::txn_service::{TxnCoordinatorService, TxnDeps};
use gregor_controller::ClusterState;
use gregor_storage::{Clock, SystemClock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The embedded quorum's only voter address (never dialled: a single voter sends no RPCs).
const EMBEDDED_VOTER: &str = "embedded:0";

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
    /// meta.properties disagrees with the configuration or the cluster.
    #[error("{0}")]
    Meta(String),
    /// The controller quorum could not be opened.
    #[error("controller quorum: {0}")]
    Quorum(#[from] gregor_quorum::QuorumError),
    /// Shut down before the broker was ready.
    #[error("shut down while starting")]
    ShutDown,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `meta.properties` (Kafka's storage format): the cluster id, if any.
fn read_meta_properties(dir: &Path, node_id: i32) -> Result<Option<String>, StartError> {
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
            Ok(props.get("cluster.id").cloned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StartError::Io { path, source: e }),
    }
}

/// Writes `meta.properties` (atomically).
fn write_meta_properties(dir: &Path, node_id: i32, cluster_id: &str) -> Result<(), StartError> {
    let path = dir.join("meta.properties");
    let directory_id = gregor_controller::uuid_to_base64(gregor_controller::random_kafka_uuid());
    let text = format!(
        "#\n#Written by gregor\nnode.id={node_id}\ndirectory.id={directory_id}\nversion=1\ncluster.id={cluster_id}\n"
    );
    let tmp = dir.join("meta.properties.tmp");
    std::fs::write(&tmp, text).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))
}

/// A started broker's services.
#[derive(Debug)]
pub struct Broker {
    /// The services handlers use.
    pub services: Services,
    /// This broker's membership (registration, heartbeats, controlled shutdown).
    pub lifecycle: Arc<BrokerLifecycle>,
    clean_start: bool,
    /// The cluster id of meta.properties (`None`: a fresh node of a cluster, not joined yet).
    cluster_id: Option<String>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

impl Broker {
    /// Opens the log directory and starts the controller (if this node is one), the metadata
    /// follower and the services; [`Broker::join`] then makes it a member of the cluster.
    /// Background tasks stop when `shutdown` flips to true.
    pub async fn open(
        config: Config,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Broker, StartError> {
        Self::open_with_clock(config, Arc::new(SystemClock), shutdown).await
    }

    /// [`Broker::open`] then [`Broker::join`].
    pub async fn start(
        config: Config,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Broker, StartError> {
        let broker = Self::open(config, shutdown.clone()).await?;
        broker.join(shutdown).await?;
        Ok(broker)
    }

    /// As [`Broker::open`], with the clock the storage and coordinators use.
    pub async fn open_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Broker, StartError> {
        let dir = config.log_dir.clone();
        let node_id = config.node_id;
        let cluster = config.cluster.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let fresh = !dir.join("meta.properties").exists();
        let mut cluster_id = read_meta_properties(&dir, node_id)?;
        if cluster_id.is_none() && cluster.is_embedded() {
            // A single node formats itself, as before clusters.
            let id = gregor_controller::uuid_to_base64(gregor_controller::random_kafka_uuid());
            write_meta_properties(&dir, node_id, &id)?;
            cluster_id = Some(id);
        }
        let clean = gregor_storage::clean_shutdown::take(&dir).map_err(io_err(&dir))? || fresh;
        if !clean {
            tracing::info!(dir = %dir.display(), "no clean-shutdown marker: recovering logs");
        }
        let mut tasks = Vec::new();
        // A new incarnation per process (Kafka's BrokerRegistration.IncarnationId).
        let incarnation = gregor_controller::random_kafka_uuid();

        // The controller quorum member, if this node is a controller (or a single node).
        let local_controller = if cluster.is_embedded() || cluster.controller {
            let voters = if cluster.is_embedded() {
                BTreeMap::from([(node_id, EMBEDDED_VOTER.to_string())])
            } else {
                cluster.voters.clone()
            };
            let legacy_path = dir.join("gregor-metadata").join("metadata.log");
            let legacy = if cluster.is_embedded() {
                read_legacy_log(&legacy_path).map_err(io_err(&legacy_path))?
            } else {
                Vec::new()
            };
            let controller = QuorumController::open(
                QuorumSettings {
                    node_id,
                    voters,
                    dir: dir.join("__cluster_metadata-0"),
                    election_timeout_ms: cluster.election_timeout_ms,
                    session_timeout_ms: cluster.broker_session_timeout_ms,
                    cluster_id: cluster_id.clone(),
                    legacy_records: legacy,
                    local_incarnation: cluster.broker.then_some(incarnation),
                    leader_balance_interval: cluster
                        .leader_balance_interval_ms
                        .map(Duration::from_millis),
                    unclean_election_interval: Duration::from_millis(
                        cluster.unclean_election_interval_ms,
                    ),
                },
                RaftTransport::new(node_id),
            )
            .await?;
            tasks.push(tokio::spawn(controller.clone().run(shutdown.clone())));
            Some(controller)
        } else {
            None
        };

        let config = Arc::new(config);
        let metadata = Arc::new(MetadataCache::new(config.clone(), ClusterState::default()));
        let follower = Arc::new(MetadataFollower::new(metadata.clone()));
        let replicas = ReplicaManager::new(config.clone(), clock.clone(), clean);
        if let Some(ib) = &config.inter_broker_client {
            let security = crate::tls::inter_broker_client(ib).map_err(StartError::Meta)?;
            replicas.set_client_security(Some(Arc::new(security)));
        }
        follower.add_listener(replicas.clone());
        let controllers: Vec<(i32, String)> = if cluster.voters.is_empty() {
            cluster
                .bootstrap_servers
                .iter()
                .map(|a| (-1, a.clone()))
                .collect()
        } else {
            cluster
                .voters
                .iter()
                .filter(|(id, _)| **id != node_id || local_controller.is_none())
                .map(|(id, a)| (*id, a.clone()))
                .collect()
        };
        let source = match &local_controller {
            Some(c) => MetadataSource::Local(c.log().clone()),
            None => MetadataSource::Remote(controllers.iter().map(|(_, a)| a.clone()).collect()),
        };
        tasks.push(tokio::spawn(follower.clone().run(
            source,
            format!("gregor-broker-{node_id}"),
            shutdown.clone(),
        )));
        let channel = Arc::new(ControllerChannel::new(
            node_id,
            cluster_id.clone(),
            local_controller.clone(),
            controllers,
            metadata.clone(),
            follower.clone(),
        ));

        replicas.set_controller_link(channel.clone());
        // A single node creates the internal topics with one replica, whatever the settings
        // (Kafka's single-node images set `offsets.topic.replication.factor=1` for the same
        // reason); a cluster uses `offsets.topic.replication.factor` and
        // `transaction.state.log.replication.factor` / `.min.isr` as Kafka does.
        let embedded = config.cluster.is_embedded();
        let single_node_or = |rf: i16| if embedded { 1 } else { rf };
        let groups = GroupCoordinatorService::new(
            config.group.clone(),
            InternalTopic {
                partitions: config.offsets_topic_num_partitions,
                replication_factor: single_node_or(config.cluster.offsets_topic_replication_factor),
                min_insync_replicas: None,
            },
            replicas.clone(),
            metadata.clone(),
            channel.clone(),
            clock.clone(),
        );
        let txns = TxnCoordinatorService::new(
            config.txn.clone(),
            InternalTopic {
                partitions: config.transaction_state_log_num_partitions,
                replication_factor: single_node_or(
                    config.cluster.transaction_state_log_replication_factor,
                ),
                min_insync_replicas: Some(if embedded {
                    1
                } else {
                    config.cluster.transaction_state_log_min_isr
                }),
            },
            config.transaction_cleanup_interval_ms,
            TxnDeps {
                replicas: replicas.clone(),
                metadata: metadata.clone(),
                controller: channel.clone(),
                markers: MarkerWriter::new(replicas.clone(), groups.clone()),
                producer_ids: Arc::new(ProducerIdManager::new(
                    node_id,
                    channel.clone(),
                    metadata.clone(),
                )),
                clock,
            },
        );

        let listeners = config
            .advertised
            .values()
            .map(|l| {
                let protocol = config
                    .values
                    .get("listener.security.protocol.map")
                    .and_then(|m| {
                        m.split(',').find_map(|e| {
                            let (name, p) = e.split_once(':')?;
                            (name.trim().eq_ignore_ascii_case(&l.name))
                                .then(|| p.trim().to_ascii_uppercase())
                        })
                    })
                    .unwrap_or_else(|| "PLAINTEXT".into());
                (l.name.clone(), l.host.clone(), l.port, protocol)
            })
            .collect();
        let lifecycle = Arc::new(BrokerLifecycle::new(
            RegistrationInfo {
                node_id,
                listeners,
                rack: config.rack.clone(),
            },
            incarnation,
            channel.clone(),
            follower.clone(),
            cluster.broker_heartbeat_interval_ms,
        ));
        let quotas = Arc::new(crate::quotas::QuotaManager::new(
            config.quota_window_num,
            config.quota_window_size_seconds,
        ));
        Ok(Broker {
            services: Services {
                quotas,
                config,
                metadata,
                controller: channel,
                replicas,
                groups,
                txns,
                metrics: Arc::new(Metrics::new()),
            },
            lifecycle,
            clean_start: clean,
            cluster_id,
            tasks: parking_lot::Mutex::new(tasks),
        })
    }

    /// Makes this node a member of the cluster: learns the cluster id (a fresh node), registers
    /// with the active controller, heartbeats, and returns once the controller has unfenced it.
    pub async fn join(&self, shutdown: watch::Receiver<bool>) -> Result<(), StartError> {
        let s = &self.services;
        if self.cluster_id.is_none() {
            let id = wait_for_cluster_id(&s.metadata, shutdown.clone()).await?;
            write_meta_properties(&s.config.log_dir, s.config.node_id, &id)?;
            tracing::info!(cluster_id = %id, "joined the cluster");
        }
        if self.lifecycle.register(shutdown.clone()).await.is_none() {
            return Err(StartError::ShutDown);
        }
        self.tasks
            .lock()
            .push(tokio::spawn(self.lifecycle.clone().run(shutdown.clone())));
        let mut stop = shutdown;
        tokio::select! {
            _ = self.lifecycle.wait_unfenced(Duration::from_secs(86_400)) => {}
            _ = stop.changed() => return Err(StartError::ShutDown),
        }
        // The heartbeat that unfenced us can arrive before the metadata that makes us the
        // leader of our partitions again; clients are served once those leaderships are
        // applied (bounded: a partition may stay leaderless for other reasons).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.leaderships_settled() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Whether every partition this broker is an in-sync replica of has a leader, and those
    /// it leads per the metadata are led here.
    fn leaderships_settled(&self) -> bool {
        let s = &self.services;
        let me = s.node_id();
        for meta in s.metadata.all_topics() {
            for p in 0..meta.partitions {
                let Some(state) = s.metadata.partition_state(&meta, p) else {
                    continue;
                };
                if !state.isr.contains(&me) {
                    continue;
                }
                if state.leader < 0 {
                    return false;
                }
                if state.leader == me && s.replicas.leader_partition(&meta.name, p, -1).is_err() {
                    return false;
                }
            }
        }
        true
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

    /// Controlled shutdown (SIGTERM): the controller moves this broker's leaderships away first.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        if self.services.config.cluster.is_embedded() {
            return;
        }
        self.lifecycle.controlled_shutdown(timeout).await;
    }

    /// Stops the background tasks, closes every log (flush, snapshots, high watermarks), writes
    /// the clean-shutdown marker and closes the controller quorum.
    pub async fn shutdown(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        let replicas = self.services.replicas.clone();
        let _ = tokio::task::spawn_blocking(move || replicas.shutdown()).await;
        if let Some(c) = self.services.controller.local() {
            if !self.services.config.cluster.is_embedded() {
                linger_for_peers_in_controlled_shutdown(c, self.services.config.node_id).await;
            }
            c.shutdown().await;
        }
    }
}

/// A voter whose broker is done keeps its quorum member up (a few seconds at most) while other
/// brokers are still in controlled shutdown (per the quorum's applied state): when a whole
/// cluster stops at once, the last brokers' shutdowns still need a quorum to commit (Kafka's
/// combined nodes get the same from the time their controller takes to stop).
async fn linger_for_peers_in_controlled_shutdown(controller: &QuorumController, me: i32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let waiting = controller.log().read(|s| {
            s.brokers()
                .any(|b| b.node_id != me && !b.fenced && b.in_controlled_shutdown)
        });
        if !waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the metadata names the cluster id (a fresh node of a cluster).
async fn wait_for_cluster_id(
    metadata: &MetadataCache,
    mut shutdown: watch::Receiver<bool>,
) -> Result<String, StartError> {
    loop {
        if let Some(id) = metadata.image().cluster_id() {
            return Ok(id.to_string());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = shutdown.changed() => return Err(StartError::ShutDown),
        }
    }
}

impl crate::metrics::http::Scrape for Broker {
    async fn scrape(&self) -> Result<String, std::fmt::Error> {
        let snapshot = self.metrics_snapshot().await;
        self.services.metrics.encode(snapshot)
    }
}
