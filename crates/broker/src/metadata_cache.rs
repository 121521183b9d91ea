//! [`MetadataCache`]: this broker's view of the cluster metadata (Kafka's `KRaftMetadataCache`).
//!
//! The view is an immutable image — a `ClusterState` replayed from the metadata records — that
//! is republished whole after every metadata change. Readers take an `Arc` of the current
//! image and never lock the controller; a request sees one consistent image from start to end.
//! Components that act on metadata changes (the replica manager opening and deleting logs,
//! becoming leader or follower) implement [`MetadataListener`] and are called, in order, after
//! each image is published.

use crate::config::Config;
use crate::configs::BrokerView;
use gregor_controller::state::BrokerMeta;
use gregor_controller::{ClusterState, TopicMeta};
use parking_lot::RwLock;
use std::sync::Arc;
use uuid::Uuid;

/// A partition's replication state, as the metadata describes it (leader, leader epoch,
/// partition epoch, replicas, ISR, reassignment, leader recovery state).
pub use gregor_controller::state::PartitionRegistration as PartitionState;

/// The replication state of partition `index` of `topic` in `image` (`None` if the topic has
/// no such partition).
pub fn partition_state(
    image: &ClusterState,
    topic: &TopicMeta,
    index: i32,
) -> Option<PartitionState> {
    image.partition(&topic.id, index).cloned()
}

/// A component that reacts to new metadata images.
pub trait MetadataListener: Send + Sync {
    /// Called after `image` was published (on the thread that published it, which may block).
    fn on_metadata(&self, image: &Arc<ClusterState>);
}

/// The current metadata image and the broker's static configuration it is read with.
pub struct MetadataCache {
    config: Arc<Config>,
    image: RwLock<Arc<ClusterState>>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataCache")
            .field("records", &self.image.read().records_applied())
            .finish()
    }
}

impl MetadataCache {
    /// A cache holding `image`.
    pub fn new(config: Arc<Config>, image: ClusterState) -> MetadataCache {
        MetadataCache {
            config,
            image: RwLock::new(Arc::new(image)),
        }
    }

    /// The current image.
    pub fn image(&self) -> Arc<ClusterState> {
        self.image.read().clone()
    }

    /// Replaces the image.
    pub fn publish(&self, image: Arc<ClusterState>) {
        *self.image.write() = image;
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.image.read().topic(name).cloned()
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<TopicMeta> {
        self.image.read().topic_by_id(id).cloned()
    }

    /// The name of a topic id.
    pub fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.image.read().topic_by_id(id).map(|t| t.name.clone())
    }

    /// Every topic, ordered by name.
    pub fn all_topics(&self) -> Vec<TopicMeta> {
        self.image.read().topics().cloned().collect()
    }

    /// The registered brokers.
    pub fn brokers(&self) -> Vec<BrokerMeta> {
        self.image.read().brokers().cloned().collect()
    }

    /// The replication state of a partition (`None` if the topic has no such partition).
    pub fn partition_state(&self, topic: &TopicMeta, index: i32) -> Option<PartitionState> {
        partition_state(&self.image.read(), topic, index)
    }

    /// The unfenced brokers that have a listener named `listener`, by id (Kafka's
    /// `getAliveBrokerNodes`: Metadata and DescribeCluster list these).
    pub fn alive_brokers(&self, listener: &str) -> Vec<BrokerEndpoint> {
        self.image
            .read()
            .brokers()
            .filter(|b| !b.fenced)
            .filter_map(|b| BrokerEndpoint::of(b, listener))
            .collect()
    }

    /// A broker's endpoint on `listener`, fenced or not.
    pub fn broker_endpoint(&self, node_id: i32, listener: &str) -> Option<BrokerEndpoint> {
        self.image
            .read()
            .broker(node_id)
            .and_then(|b| BrokerEndpoint::of(b, listener))
    }

    /// The controller id clients are told (Kafka's KRaft brokers name a live broker, since
    /// clients never talk to controllers): this broker if it is alive, else the lowest alive one.
    pub fn controller_id_for_clients(&self) -> i32 {
        let image = self.image.read();
        let alive: Vec<i32> = image
            .brokers()
            .filter(|b| !b.fenced)
            .map(|b| b.node_id)
            .collect();
        if alive.contains(&self.config.node_id) || alive.is_empty() {
            self.config.node_id
        } else {
            alive[0]
        }
    }

    /// The static and dynamic broker configs of this node.
    pub fn broker_view(&self) -> BrokerView {
        let image = self.image();
        BrokerView::new(
            &self.config,
            image.broker_configs(&self.config.node_id.to_string()),
            image.broker_configs(""),
        )
    }
}

/// A broker's address on one listener, as Metadata and DescribeCluster report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// `broker.rack`.
    pub rack: Option<String>,
}

impl BrokerEndpoint {
    /// The endpoint of `b` on `listener`, if it has that listener.
    pub fn of(b: &BrokerMeta, listener: &str) -> Option<BrokerEndpoint> {
        let e = b.endpoint(listener)?;
        Some(BrokerEndpoint {
            node_id: b.node_id,
            host: e.host.clone(),
            port: e.port,
            rack: b.rack.clone(),
        })
    }
}

/// The topics of an image as the group coordinator sees them.
pub struct ImageTopics(pub Arc<ClusterState>);

impl gregor_group_coordinator::TopicView for ImageTopics {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.0.topic(topic).map(|t| t.partitions)
    }
    fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.0.topic(topic).map(|t| t.id)
    }
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.0.topic_by_id(id).map(|t| t.name.clone())
    }
    fn all_topics(&self) -> Vec<(String, Uuid, i32)> {
        self.0
            .topics()
            .map(|t| (t.name.clone(), t.id, t.partitions))
            .collect()
    }
    fn group_config(&self, group: &str, key: &str) -> Option<String> {
        self.0
            .group_configs(group)
            .and_then(|m| m.get(key))
            .cloned()
    }
}
