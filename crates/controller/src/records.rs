//! Metadata records: every change to cluster metadata is one of these, appended to the metadata
//! log and then replayed into [`crate::ClusterState`]. Named after KRaft's records.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A change to cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker registered (or re-registered with new endpoints).
    RegisterBroker {
        /// `node.id`.
        node_id: i32,
        /// Advertised host.
        host: String,
        /// Advertised port.
        port: i32,
        /// `broker.rack`.
        rack: Option<String>,
    },
    /// A topic was created (its partitions follow as [`MetadataRecord::PartitionCount`]).
    Topic {
        /// Name.
        name: String,
        /// Stable topic id.
        id: Uuid,
        /// Internal topic (`__consumer_offsets`, ...).
        internal: bool,
        /// Replication factor.
        replication_factor: i16,
        /// Topic-level config overrides.
        configs: BTreeMap<String, String>,
    },
    /// A topic's partition count became `count` (creation or CreatePartitions).
    PartitionCount {
        /// Topic id.
        topic_id: Uuid,
        /// New partition count.
        count: i32,
    },
    /// A topic config was set (`Some`) or removed (`None`).
    TopicConfig {
        /// Topic id.
        topic_id: Uuid,
        /// Config name.
        key: String,
        /// New value.
        value: Option<String>,
    },
    /// A topic was deleted.
    RemoveTopic {
        /// Topic id.
        topic_id: Uuid,
    },
    /// A dynamic broker config was set (`Some`) or removed (`None`), as KRaft's
    /// `ConfigRecord` for a BROKER resource: `resource_name` is a node id, or empty for the
    /// cluster-wide default.
    BrokerConfig {
        /// Node id, or "" for the cluster default.
        resource_name: String,
        /// Config name.
        key: String,
        /// New value.
        value: Option<String>,
    },
    /// A client quota was set (`Some`) or removed (`None`), as KRaft's `ClientQuotaRecord`.
    /// The entity is a list of (entity type, name) pairs; a `None` name is the default entity.
    ClientQuota {
        /// Entity: (`user` / `client-id` / `ip`, name or default).
        entity: Vec<(String, Option<String>)>,
        /// Quota key (`producer_byte_rate`, ...).
        key: String,
        /// Value, as the text of a double (`None`: removed).
        value: Option<String>,
    },
    /// Producer ids below `next_block_start` have been handed out.
    ProducerIds {
        /// First producer id of the next block.
        next_block_start: i64,
    },
}
