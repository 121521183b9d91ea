//! [`Services`]: the service handles a request handler may use (Redpanda's `request_context`,
//! Kafka's `KafkaApis` fields). Handlers get these through their [`Ctx`](crate::handlers::Ctx),
//! never the broker as a whole; each service owns its own state and locks.

use crate::config::Config;
use crate::controller::ControllerChannel;
use crate::group_service::GroupCoordinatorService;
use crate::metadata_cache::MetadataCache;
use crate::metrics::Metrics;
use crate::replica_manager::ReplicaManager;
use crate::txn_service::TxnCoordinatorService;
use std::sync::Arc;

/// The services of a running broker.
#[derive(Debug, Clone)]
pub struct Services {
    /// Static configuration.
    pub config: Arc<Config>,
    /// The metadata image.
    pub metadata: Arc<MetadataCache>,
    /// Metadata changes (topics, configs, quotas).
    pub controller: Arc<ControllerChannel>,
    /// The partitions this broker hosts.
    pub replicas: Arc<ReplicaManager>,
    /// The group coordinator.
    pub groups: Arc<GroupCoordinatorService>,
    /// The transaction coordinator.
    pub txns: Arc<TxnCoordinatorService>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Client quotas (throttling).
    pub quotas: Arc<crate::quotas::QuotaManager>,
}

impl Services {
    /// This broker's `node.id`.
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The cluster id, as the metadata log records it ("" before this broker has any metadata).
    pub fn cluster_id(&self) -> String {
        self.metadata
            .image()
            .cluster_id()
            .map(str::to_string)
            .unwrap_or_default()
    }
}
