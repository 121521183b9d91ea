//! Metadata records: every change to cluster metadata is one of these, appended to the metadata
//! log and then replayed into [`crate::ClusterState`]. Named after KRaft's records
//! (`metadata/src/main/resources/common/metadata/*.json`).
//!
//! Records are stored as JSON, internally tagged by `type`. Logs written by older code must keep
//! replaying identically, so variants are never renamed and fields added later carry
//! `#[serde(default)]` (absent in old logs).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Kafka's `LeaderConstants.NO_LEADER`: the partition has no leader.
pub const NO_LEADER: i32 = -1;

/// Kafka's `LeaderRecoveryState` (KIP-704): whether the leader's log may miss committed data
/// because it was elected uncleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum LeaderRecoveryState {
    /// RECOVERED (0): the leader's log holds every committed record.
    #[default]
    Recovered,
    /// RECOVERING (1): the leader was elected uncleanly; the ISR stays `{leader}` until it
    /// reports RECOVERED through AlterPartition.
    Recovering,
}

impl LeaderRecoveryState {
    /// The wire value (AlterPartition's `LeaderRecoveryState`).
    pub fn value(self) -> i8 {
        match self {
            LeaderRecoveryState::Recovered => 0,
            LeaderRecoveryState::Recovering => 1,
        }
    }

    /// The state of a wire value (`None` for an unknown value).
    pub fn of(value: i8) -> Option<LeaderRecoveryState> {
        match value {
            0 => Some(LeaderRecoveryState::Recovered),
            1 => Some(LeaderRecoveryState::Recovering),
            _ => None,
        }
    }
}

/// One listener of a broker, as `RegisterBrokerRecord.EndPoints` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Kafka's `SecurityProtocol` id: 0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL.
    pub security_protocol: i16,
}

/// A feature range a broker supports (`RegisterBrokerRecord.Features`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BrokerFeature {
    /// Feature name (`metadata.version`, ...).
    pub name: String,
    /// Lowest supported level.
    pub min_supported_version: i16,
    /// Highest supported level.
    pub max_supported_version: i16,
}

/// A change to cluster metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// The cluster id, written once when the metadata log is bootstrapped. Gregor-only (Kafka
    /// keeps it in `meta.properties`).
    ClusterId {
        /// Cluster id (Kafka's base64 UUID text).
        cluster_id: String,
    },
    /// A broker registered: a new incarnation (new epoch) or an amended registration of the
    /// same incarnation (same epoch). Kafka's `RegisterBrokerRecord`.
    ///
    /// Legacy logs carry only `node_id`, `host`, `port` and `rack`: such a registration is
    /// unfenced, has the nil incarnation id and one `PLAINTEXT` endpoint.
    RegisterBroker {
        /// `node.id`.
        node_id: i32,
        /// Legacy advertised host (records written before endpoints existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// Legacy advertised port.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<i32>,
        /// `broker.rack`.
        rack: Option<String>,
        /// The broker process's incarnation id (nil in legacy records).
        #[serde(default)]
        incarnation_id: Uuid,
        /// The broker epoch. `None`: the metadata log offset of this record (a new
        /// incarnation); `Some`: kept from an earlier registration (an amendment, a snapshot).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        broker_epoch: Option<i64>,
        /// Offset of the registration a broker must have replayed to be caught up. `None`:
        /// this record's offset. Set only in snapshots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registration_offset: Option<i64>,
        /// Listeners.
        #[serde(default)]
        endpoints: Vec<Endpoint>,
        /// Supported features.
        #[serde(default)]
        features: Vec<BrokerFeature>,
        /// Fenced: may not lead, may not join an ISR. New incarnations start fenced.
        #[serde(default)]
        fenced: bool,
        /// In controlled shutdown.
        #[serde(default)]
        in_controlled_shutdown: bool,
    },
    /// A broker was unregistered (Kafka's `UnregisterBrokerRecord`); ignored unless the epoch
    /// matches the current registration.
    UnregisterBroker {
        /// `node.id`.
        node_id: i32,
        /// Epoch of the registration being removed.
        broker_epoch: i64,
    },
    /// A registration's fenced or controlled-shutdown flag changed (Kafka's
    /// `BrokerRegistrationChangeRecord`; `None` = unchanged). Ignored unless the epoch matches.
    BrokerRegistrationChange {
        /// `node.id`.
        node_id: i32,
        /// Epoch of the registration being changed.
        broker_epoch: i64,
        /// New fenced flag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fenced: Option<bool>,
        /// New controlled-shutdown flag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        in_controlled_shutdown: Option<bool>,
    },
    /// A topic was created. New topics are followed by one [`MetadataRecord::Partition`] per
    /// partition; legacy logs follow it with a [`MetadataRecord::PartitionCount`] instead.
    /// Kafka's `TopicRecord` (plus its `ConfigRecord`s, inline here).
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
    /// Legacy (single-node logs only): a topic's partition count became `count`. Replay
    /// synthesizes the missing partitions, led by the lowest registered broker id.
    PartitionCount {
        /// Topic id.
        topic_id: Uuid,
        /// New partition count.
        count: i32,
    },
    /// A partition's full registration (Kafka's `PartitionRecord`): creation, or a snapshot.
    Partition {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// Assigned replicas, preferred leader first.
        replicas: Vec<i32>,
        /// In-sync replicas.
        isr: Vec<i32>,
        /// Leader ([`NO_LEADER`]: none).
        leader: i32,
        /// Leader epoch.
        leader_epoch: i32,
        /// Partition epoch.
        partition_epoch: i32,
        /// Replicas being added by a reassignment.
        #[serde(default)]
        adding_replicas: Vec<i32>,
        /// Replicas being removed by a reassignment.
        #[serde(default)]
        removing_replicas: Vec<i32>,
        /// Leader recovery state.
        #[serde(default)]
        leader_recovery_state: LeaderRecoveryState,
    },
    /// A change to a partition (Kafka's `PartitionChangeRecord`): every `None` field is
    /// unchanged. Replay bumps the leader epoch when `leader` is set and the partition epoch
    /// always.
    PartitionChange {
        /// Topic id.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// New ISR.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isr: Option<Vec<i32>>,
        /// New leader (may be [`NO_LEADER`]; may equal the current leader to force an epoch
        /// bump).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<i32>,
        /// New replicas.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replicas: Option<Vec<i32>>,
        /// New removing replicas.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing_replicas: Option<Vec<i32>>,
        /// New adding replicas.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding_replicas: Option<Vec<i32>>,
        /// New leader recovery state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader_recovery_state: Option<LeaderRecoveryState>,
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
    /// A topic was deleted, with its partitions (Kafka's `RemoveTopicRecord`).
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
    /// A group config was set (`Some`) or removed (`None`), as KRaft's `ConfigRecord` for a
    /// GROUP resource (KIP-848 per-group settings such as `consumer.session.timeout.ms`).
    GroupConfig {
        /// Group id.
        group: String,
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
    /// A SCRAM credential was created or replaced (KRaft's `UserScramCredentialRecord`). The
    /// salted password itself is never stored.
    UserScramCredential {
        /// User name.
        name: String,
        /// Mechanism type byte (1 = SCRAM-SHA-256, 2 = SCRAM-SHA-512).
        mechanism: i8,
        /// Salt.
        salt: Vec<u8>,
        /// StoredKey = H(HMAC(SaltedPassword, "Client Key")).
        stored_key: Vec<u8>,
        /// ServerKey = HMAC(SaltedPassword, "Server Key").
        server_key: Vec<u8>,
        /// Iterations.
        iterations: i32,
    },
    /// An ACL was created (KRaft's `AccessControlEntryRecord`); the numeric fields are Kafka's
    /// wire values (`ResourceType`, `PatternType`, `AclOperation`, `AclPermissionType`).
    Acl {
        /// The ACL's id.
        id: Uuid,
        /// Resource type (2 topic, 3 group, 4 cluster, 5 transactional id, ...).
        resource_type: i8,
        /// Resource name (or prefix).
        resource_name: String,
        /// Pattern type (3 literal, 4 prefixed).
        pattern_type: i8,
        /// Principal (`User:alice`, `User:*`).
        principal: String,
        /// Host (`*` for any).
        host: String,
        /// Operation.
        operation: i8,
        /// Permission (2 deny, 3 allow).
        permission: i8,
    },
    /// An ACL was deleted (KRaft's `RemoveAccessControlEntryRecord`).
    RemoveAcl {
        /// The ACL's id.
        id: Uuid,
    },
    /// A SCRAM credential was deleted (KRaft's `RemoveUserScramCredentialRecord`).
    RemoveUserScramCredential {
        /// User name.
        name: String,
        /// Mechanism type byte.
        mechanism: i8,
    },
    /// Producer ids below `next_block_start` have been handed out (Kafka's
    /// `ProducerIdsRecord`).
    ProducerIds {
        /// First producer id of the next block.
        next_block_start: i64,
        /// Broker the last block went to (-1: the embedded controller, or a legacy record).
        #[serde(default = "minus_one_i32")]
        broker_id: i32,
        /// That broker's epoch (-1: unknown).
        #[serde(default = "minus_one_i64")]
        broker_epoch: i64,
    },
}

fn minus_one_i32() -> i32 {
    -1
}

fn minus_one_i64() -> i64 {
    -1
}

impl MetadataRecord {
    /// Kafka's name for the record type this variant stands for.
    pub fn kafka_name(&self) -> &'static str {
        match self {
            MetadataRecord::ClusterId { .. } => "(none: meta.properties cluster.id)",
            MetadataRecord::RegisterBroker { .. } => "RegisterBrokerRecord",
            MetadataRecord::UnregisterBroker { .. } => "UnregisterBrokerRecord",
            MetadataRecord::BrokerRegistrationChange { .. } => "BrokerRegistrationChangeRecord",
            MetadataRecord::Topic { .. } => "TopicRecord",
            MetadataRecord::PartitionCount { .. } => "(none: legacy Gregor record)",
            MetadataRecord::Partition { .. } => "PartitionRecord",
            MetadataRecord::PartitionChange { .. } => "PartitionChangeRecord",
            MetadataRecord::TopicConfig { .. }
            | MetadataRecord::BrokerConfig { .. }
            | MetadataRecord::GroupConfig { .. } => "ConfigRecord",
            MetadataRecord::RemoveTopic { .. } => "RemoveTopicRecord",
            MetadataRecord::ClientQuota { .. } => "ClientQuotaRecord",
            MetadataRecord::ProducerIds { .. } => "ProducerIdsRecord",
            MetadataRecord::UserScramCredential { .. } => "UserScramCredentialRecord",
            MetadataRecord::Acl { .. } => "AccessControlEntryRecord",
            MetadataRecord::RemoveAcl { .. } => "RemoveAccessControlEntryRecord",
            MetadataRecord::RemoveUserScramCredential { .. } => "RemoveUserScramCredentialRecord",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_json_still_parses() {
        let r: MetadataRecord = serde_json::from_str(
            r#"{"type":"RegisterBroker","node_id":1,"host":"localhost","port":9092,"rack":null}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            MetadataRecord::RegisterBroker {
                node_id: 1,
                host: Some("localhost".into()),
                port: Some(9092),
                rack: None,
                incarnation_id: Uuid::nil(),
                broker_epoch: None,
                registration_offset: None,
                endpoints: vec![],
                features: vec![],
                fenced: false,
                in_controlled_shutdown: false,
            }
        );
        let r: MetadataRecord =
            serde_json::from_str(r#"{"type":"ProducerIds","next_block_start":2000}"#).unwrap();
        assert_eq!(
            r,
            MetadataRecord::ProducerIds {
                next_block_start: 2000,
                broker_id: -1,
                broker_epoch: -1
            }
        );
    }

    #[test]
    fn change_record_omits_unchanged_fields() {
        let r = MetadataRecord::PartitionChange {
            topic_id: Uuid::from_u128(3),
            partition: 0,
            isr: Some(vec![1, 2]),
            leader: None,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("leader"), "{json}");
        assert_eq!(serde_json::from_str::<MetadataRecord>(&json).unwrap(), r);
    }
}
