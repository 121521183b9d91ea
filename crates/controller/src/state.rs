//! [`ClusterState`]: the replayed view of the metadata log, and the validating commands that
//! turn requests into records.

use crate::records::MetadataRecord;
use crate::topic;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;
use uuid::Uuid;

/// Why a metadata command was refused. Each variant corresponds to one Kafka error code.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ControllerError {
    /// TOPIC_ALREADY_EXISTS.
    #[error("{0}")]
    TopicAlreadyExists(String),
    /// INVALID_TOPIC_EXCEPTION.
    #[error("{0}")]
    InvalidTopic(String),
    /// INVALID_PARTITIONS.
    #[error("{0}")]
    InvalidPartitions(String),
    /// INVALID_REPLICATION_FACTOR.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// INVALID_REPLICA_ASSIGNMENT.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// INVALID_CONFIG.
    #[error("{0}")]
    InvalidConfig(String),
    /// INVALID_REQUEST.
    #[error("{0}")]
    InvalidRequest(String),
    /// UNKNOWN_TOPIC_OR_PARTITION.
    #[error("{0}")]
    UnknownTopic(String),
    /// UNKNOWN_TOPIC_ID.
    #[error("{0}")]
    UnknownTopicId(String),
    /// The metadata log could not be written (UNKNOWN_SERVER_ERROR / KAFKA_STORAGE_ERROR).
    #[error("metadata log: {0}")]
    Storage(String),
}

/// What the cluster knows about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Stable topic id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// Internal topic.
    pub internal: bool,
    /// Topic-level config overrides.
    pub configs: BTreeMap<String, String>,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
}

/// Size of the producer-id blocks the controller hands out (as Kafka's `ProducerIdsRecord`).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// The cluster metadata, as rebuilt by replaying [`MetadataRecord`]s.
#[derive(Debug, Default, Clone)]
pub struct ClusterState {
    topics: HashMap<Uuid, TopicMeta>,
    by_name: BTreeMap<String, Uuid>,
    brokers: BTreeMap<i32, BrokerMeta>,
    next_producer_id_block: i64,
    records_applied: u64,
    /// Dynamic broker configs by resource name ("" = cluster default, else node id).
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Client quotas by entity.
    quotas: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
}

/// A client-quota entity: sorted (entity type, name) pairs; `None` names the default entity.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// A request to create a topic, after defaults were applied by the caller.
#[derive(Debug, Clone)]
pub struct CreateTopic {
    /// Name.
    pub name: String,
    /// Partition count (already defaulted; must be > 0).
    pub partitions: i32,
    /// Replication factor (already defaulted).
    pub replication_factor: i16,
    /// Manual assignment: partition -> broker ids (empty: automatic).
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

impl ClusterState {
    /// Applies one record. Records are trusted (they were validated before being logged); a
    /// record referring to an unknown topic is ignored.
    pub fn replay(&mut self, record: &MetadataRecord) {
        self.records_applied += 1;
        match record {
            MetadataRecord::RegisterBroker {
                node_id,
                host,
                port,
                rack,
            } => {
                self.brokers.insert(
                    *node_id,
                    BrokerMeta {
                        node_id: *node_id,
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                    },
                );
            }
            MetadataRecord::Topic {
                name,
                id,
                internal,
                replication_factor,
                configs,
            } => {
                self.by_name.insert(name.clone(), *id);
                self.topics.insert(
                    *id,
                    TopicMeta {
                        name: name.clone(),
                        id: *id,
                        partitions: 0,
                        replication_factor: *replication_factor,
                        internal: *internal,
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::PartitionCount { topic_id, count } => {
                if let Some(t) = self.topics.get_mut(topic_id) {
                    t.partitions = *count;
                }
            }
            MetadataRecord::TopicConfig {
                topic_id,
                key,
                value,
            } => {
                if let Some(t) = self.topics.get_mut(topic_id) {
                    match value {
                        Some(v) => {
                            t.configs.insert(key.clone(), v.clone());
                        }
                        None => {
                            t.configs.remove(key);
                        }
                    }
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(t) = self.topics.remove(topic_id) {
                    self.by_name.remove(&t.name);
                }
            }
            MetadataRecord::BrokerConfig {
                resource_name,
                key,
                value,
            } => {
                let m = self
                    .broker_configs
                    .entry(resource_name.clone())
                    .or_default();
                match value {
                    Some(v) => {
                        m.insert(key.clone(), v.clone());
                    }
                    None => {
                        m.remove(key);
                    }
                }
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                let mut entity = entity.clone();
                entity.sort();
                let parsed = value.as_deref().and_then(|v| v.parse::<f64>().ok());
                let m = self.quotas.entry(entity.clone()).or_default();
                match parsed {
                    Some(v) => {
                        m.insert(key.clone(), v);
                    }
                    None => {
                        m.remove(key);
                    }
                }
                if m.is_empty() {
                    self.quotas.remove(&entity);
                }
            }
            MetadataRecord::ProducerIds { next_block_start } => {
                self.next_producer_id_block = self.next_producer_id_block.max(*next_block_start);
            }
        }
    }

    /// Number of records replayed so far.
    pub fn records_applied(&self) -> u64 {
        self.records_applied
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.by_name.get(name).and_then(|id| self.topics.get(id))
    }

    /// A topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicMeta> {
        self.topics.get(id)
    }

    /// All topics, ordered by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicMeta> {
        self.by_name.values().filter_map(|id| self.topics.get(id))
    }

    /// Registered brokers.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values()
    }

    /// Dynamic broker configs of a resource ("" = cluster default, else a node id).
    pub fn broker_configs(&self, resource_name: &str) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(resource_name)
    }

    /// Every client quota entity with its quotas.
    pub fn quotas(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, f64>)> {
        self.quotas.iter()
    }

    /// Records that change a topic's config overrides (`None` removes one). Every value is
    /// validated first; nothing is returned (so nothing applied) if any change is invalid.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let t = self.topic(name).ok_or_else(|| {
            ControllerError::UnknownTopic(format!("The topic '{name}' does not exist."))
        })?;
        let mut records = Vec::with_capacity(changes.len());
        for (key, value) in changes {
            let value = match value {
                Some(v) => {
                    Some(topic::validate_value(key, v).map_err(ControllerError::InvalidConfig)?)
                }
                None => {
                    if !topic::is_known_config(key) {
                        return Err(ControllerError::InvalidConfig(format!(
                            "Unknown topic config name: {key}"
                        )));
                    }
                    None
                }
            };
            if t.configs.get(key) == value.as_ref() {
                continue;
            }
            records.push(MetadataRecord::TopicConfig {
                topic_id: t.id,
                key: key.clone(),
                value,
            });
        }
        Ok(records)
    }

    /// First producer id of the next unallocated block.
    pub fn next_producer_id_block(&self) -> i64 {
        self.next_producer_id_block
    }

    /// Records that create a topic, after validating it as Kafka's controller does.
    pub fn create_topic(
        &self,
        req: &CreateTopic,
        id: Uuid,
        live_brokers: usize,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        topic::validate_name(&req.name).map_err(ControllerError::InvalidTopic)?;
        if self.by_name.contains_key(&req.name) {
            return Err(ControllerError::TopicAlreadyExists(format!(
                "Topic '{}' already exists.",
                req.name
            )));
        }
        let canonical = req.name.replace('.', "_");
        if let Some(other) = self
            .by_name
            .keys()
            .find(|n| n.replace('.', "_") == canonical)
        {
            return Err(ControllerError::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                req.name
            )));
        }
        if req.assignments.is_empty() {
            if req.partitions <= 0 {
                return Err(ControllerError::InvalidPartitions(
                    "Number of partitions was set to an invalid non-positive value.".into(),
                ));
            }
            if req.replication_factor <= 0 {
                return Err(ControllerError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0, or -1 to use the default value."
                        .into(),
                ));
            }
            if req.replication_factor as usize > live_brokers {
                return Err(ControllerError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only {} broker(s) are registered.",
                    req.replication_factor, req.replication_factor, live_brokers
                )));
            }
        } else {
            let n = req.assignments.len() as i32;
            for p in 0..n {
                let Some(replicas) = req.assignments.get(&p) else {
                    return Err(ControllerError::InvalidReplicaAssignment(format!(
                        "Partitions should be a consecutive 0-based integer sequence, but {p} is missing."
                    )));
                };
                if replicas.is_empty() {
                    return Err(ControllerError::InvalidReplicaAssignment(format!(
                        "Empty replica assignment for partition {p}."
                    )));
                }
                for (i, b) in replicas.iter().enumerate() {
                    if replicas[..i].contains(b) {
                        return Err(ControllerError::InvalidReplicaAssignment(format!(
                            "The manual partition assignment includes the broker {b} more than once."
                        )));
                    }
                    if !self.brokers.contains_key(b) {
                        return Err(ControllerError::InvalidReplicaAssignment(format!(
                            "The manual partition assignment includes broker {b}, but no such broker is registered."
                        )));
                    }
                }
            }
        }
        let configs =
            topic::validate_configs(&req.configs).map_err(ControllerError::InvalidConfig)?;
        let partitions = if req.assignments.is_empty() {
            req.partitions
        } else {
            req.assignments.len() as i32
        };
        let replication_factor = if req.assignments.is_empty() {
            req.replication_factor
        } else {
            req.assignments
                .values()
                .next()
                .map(|r| r.len())
                .unwrap_or(1) as i16
        };
        Ok(vec![
            MetadataRecord::Topic {
                name: req.name.clone(),
                id,
                internal: topic::is_internal(&req.name),
                replication_factor,
                configs,
            },
            MetadataRecord::PartitionCount {
                topic_id: id,
                count: partitions,
            },
        ])
    }

    /// Records that grow a topic to `count` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let t = self.topic(name).ok_or_else(|| {
            ControllerError::UnknownTopic(format!("Topic {name} does not exist."))
        })?;
        if count == t.partitions {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic already has {} partitions.",
                t.partitions
            )));
        }
        if count < t.partitions {
            return Err(ControllerError::InvalidPartitions(format!(
                "The topic {name} currently has {} partition(s); {count} would not be an increase.",
                t.partitions
            )));
        }
        Ok(vec![MetadataRecord::PartitionCount {
            topic_id: t.id,
            count,
        }])
    }

    /// Records that delete a topic.
    pub fn delete_topic(&self, id: &Uuid) -> Result<Vec<MetadataRecord>, ControllerError> {
        if !self.topics.contains_key(id) {
            return Err(ControllerError::UnknownTopicId(format!(
                "Topic id {} does not exist.",
                crate::uuid_to_base64(*id)
            )));
        }
        Ok(vec![MetadataRecord::RemoveTopic { topic_id: *id }])
    }

    /// Records that allocate the next producer-id block; returns them with the block's range.
    pub fn allocate_producer_ids(&self) -> (Vec<MetadataRecord>, std::ops::Range<i64>) {
        let start = self.next_producer_id_block;
        let end = start + PRODUCER_ID_BLOCK;
        (
            vec![MetadataRecord::ProducerIds {
                next_block_start: end,
            }],
            start..end,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with_broker() -> ClusterState {
        let mut s = ClusterState::default();
        s.replay(&MetadataRecord::RegisterBroker {
            node_id: 1,
            host: "localhost".into(),
            port: 9092,
            rack: None,
        });
        s
    }

    fn create(name: &str, partitions: i32) -> CreateTopic {
        CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: 1,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_grow_delete() {
        let mut s = state_with_broker();
        let id = Uuid::from_u128(42);
        for r in s.create_topic(&create("a.b", 3), id, 1).unwrap() {
            s.replay(&r);
        }
        assert_eq!(s.topic("a.b").unwrap().partitions, 3);
        assert!(matches!(
            s.create_topic(&create("a.b", 1), Uuid::from_u128(43), 1),
            Err(ControllerError::TopicAlreadyExists(_))
        ));
        assert!(matches!(
            s.create_topic(&create("a_b", 1), Uuid::from_u128(43), 1),
            Err(ControllerError::InvalidTopic(_))
        ));
        assert!(matches!(
            s.create_partitions("a.b", 2),
            Err(ControllerError::InvalidPartitions(_))
        ));
        for r in s.create_partitions("a.b", 5).unwrap() {
            s.replay(&r);
        }
        assert_eq!(s.topic_by_id(&id).unwrap().partitions, 5);
        for r in s.delete_topic(&id).unwrap() {
            s.replay(&r);
        }
        assert!(s.topic("a.b").is_none());
    }

    #[test]
    fn rejects_bad_requests() {
        let s = state_with_broker();
        let id = Uuid::from_u128(7);
        let mut rf3 = create("t", 1);
        rf3.replication_factor = 3;
        assert!(matches!(
            s.create_topic(&rf3, id, 1),
            Err(ControllerError::InvalidReplicationFactor(_))
        ));
        assert!(matches!(
            s.create_topic(&create("t", 0), id, 1),
            Err(ControllerError::InvalidPartitions(_))
        ));
        let mut cfg = create("t", 1);
        cfg.configs.insert("no.such.config".into(), "1".into());
        assert!(matches!(
            s.create_topic(&cfg, id, 1),
            Err(ControllerError::InvalidConfig(_))
        ));
    }

    #[test]
    fn producer_id_blocks_never_repeat() {
        let mut s = ClusterState::default();
        let (r1, b1) = s.allocate_producer_ids();
        r1.iter().for_each(|r| s.replay(r));
        let (_, b2) = s.allocate_producer_ids();
        assert!(b2.start >= b1.end);
    }
}
