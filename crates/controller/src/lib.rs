//! # gregor-controller
//!
//! The KRaft controller state machine, as pure deterministic Rust: cluster metadata (brokers
//! and their registrations, topics with stable UUID topic ids, partitions with leader, ISR
//! and epochs, configs, quotas, producer-id blocks) whose every change is a
//! [`MetadataRecord`], and the validating commands that turn requests into records. It is
//! Kafka's `ClusterControlManager`, `ReplicationControlManager`, `PartitionChangeBuilder`,
//! `StripedReplicaPlacer`, `BrokerHeartbeatManager` and `ProducerIdControlManager`
//! (`metadata/src/main/java/org/apache/kafka/controller/`), without ELR (KIP-966) and log
//! directories. No sockets, no clock, no randomness, no async: time and ids are passed in.
//! (The embedded single-node [`Controller`] is the exception: it owns a file and draws ids.)
//!
//! ## Records
//!
//! | Gregor [`MetadataRecord`] | Kafka record |
//! |---|---|
//! | `ClusterId` | none (Kafka keeps `cluster.id` in `meta.properties`); written once at bootstrap |
//! | `RegisterBroker` | `RegisterBrokerRecord` (the broker epoch is the record's offset) |
//! | `UnregisterBroker` | `UnregisterBrokerRecord` |
//! | `BrokerRegistrationChange` | `BrokerRegistrationChangeRecord` (fence, unfence, controlled shutdown) |
//! | `Topic` | `TopicRecord` + its `ConfigRecord`s (inline) |
//! | `Partition` | `PartitionRecord` |
//! | `PartitionChange` | `PartitionChangeRecord` (a delta: leader set ⇒ leader epoch + 1; always partition epoch + 1) |
//! | `TopicConfig`, `BrokerConfig` | `ConfigRecord` (TOPIC, BROKER resources) |
//! | `RemoveTopic` | `RemoveTopicRecord` |
//! | `ClientQuota` | `ClientQuotaRecord` |
//! | `ProducerIds` | `ProducerIdsRecord` |
//! | `PartitionCount` | none: legacy single-node logs; replay synthesizes the partitions |
//!
//! Records are JSON (`#[serde(tag = "type")]`); older logs replay unchanged. A legacy topic
//! (`Topic` + `PartitionCount`, no `Partition`) gets partitions led by the lowest registered
//! broker id, alone in the ISR, at epoch 0; a legacy `RegisterBroker {node_id, host, port,
//! rack}` is an unfenced broker with one `PLAINTEXT` endpoint.
//!
//! ## Modules
//!
//! - [`records`]: [`MetadataRecord`], the unit of change and of persistence.
//! - [`state`]: [`ClusterState`]: [`ClusterState::replay`] (record + its log offset), the
//!   queries (partitions, brokers, reverse indexes of leaders and ISR members), and
//!   [`ClusterState::snapshot_records`].
//! - [`replication`]: topic and partition commands (create topics and partitions, delete,
//!   configs, AlterPartition, ElectLeaders, reassignments).
//! - [`cluster`]: cluster id bootstrap, UnregisterBroker, AllocateProducerIds.
//! - [`command`]: [`command::Command`], the serializable metadata changes a broker forwards to
//!   the active controller, and [`ClusterState::run_command`].
//! - [`heartbeat`]: [`BrokerHeartbeatManager`], the leader-local broker sessions, and the
//!   commands that need them: BrokerRegistration, BrokerHeartbeat, session expiry.
//! - `partition_change` (private): Kafka's `PartitionChangeBuilder`: elections (PREFERRED,
//!   ONLINE, UNCLEAN), reassignment completion.
//! - [`placement`]: [`placement::StripedReplicaPlacer`], rack-aware and seeded.
//! - [`error`]: [`ControllerError`]: a Kafka [`gregor_protocol::ErrorCode`] and Kafka's message.
//! - [`log`], [`controller`]: the embedded single-node path: [`MetadataLog`] (CRC-framed
//!   records, fsynced, record `i` at offset `i` from 1) and [`Controller`] (validate, append,
//!   replay).
//! - [`topic`]: topic name rules and the known topic config names.
//!
//! ## Commands
//!
//! On [`ClusterState`] (pure; `&self`): [`create_topic`](ClusterState::create_topic),
//! [`create_partitions`](ClusterState::create_partitions),
//! [`delete_topic`](ClusterState::delete_topic),
//! [`alter_topic_configs`](ClusterState::alter_topic_configs),
//! [`alter_partition`](ClusterState::alter_partition),
//! [`elect_leaders`](ClusterState::elect_leaders),
//! [`elect_unclean_leaders`](ClusterState::elect_unclean_leaders) and
//! [`balance_partition_leaders`](ClusterState::balance_partition_leaders) (periodic tasks),
//! [`alter_partition_reassignments`](ClusterState::alter_partition_reassignments),
//! [`list_partition_reassignments`](ClusterState::list_partition_reassignments) (a query),
//! [`unregister_broker`](ClusterState::unregister_broker),
//! [`allocate_producer_ids`](ClusterState::allocate_producer_ids),
//! [`bootstrap`](ClusterState::bootstrap).
//! On [`BrokerHeartbeatManager`] (`&mut self` for the soft state, `&ClusterState`):
//! [`register_broker`](BrokerHeartbeatManager::register_broker),
//! [`heartbeat`](BrokerHeartbeatManager::heartbeat),
//! [`fence_expired`](BrokerHeartbeatManager::fence_expired).
//! Each returns `Result<(Vec<MetadataRecord>, Reply), ControllerError>` ([`CommandResult`]).
//!
//! ## What the caller must do
//!
//! 1. Only the active controller runs commands. It proposes the returned records (in order,
//!    atomically) to the metadata log and, **once they commit**, every node — controllers and
//!    brokers — replays them with their offsets: `state.replay(offset, &record)`. A command
//!    changes nothing in [`ClusterState`] by itself. Offsets are the metadata log's (Kafka:
//!    one per record); they must never decrease, two `RegisterBroker` records of one node
//!    must not share one, and brokers report `current_metadata_offset` in the same numbering.
//! 2. Commands must see the records of earlier commands: run the next command only against a
//!    state that has replayed every record proposed before it (serialize commands through
//!    commit, or keep a speculative copy of the state that replays proposals at once, as
//!    Kafka's controller does). Otherwise two commands can, for example, create the same
//!    topic twice.
//! 3. The [`BrokerHeartbeatManager`] is leader-local and not replicated. Build a new one on
//!    becoming active and call [`BrokerHeartbeatManager::activate`]; drop it on losing
//!    leadership. Call [`BrokerHeartbeatManager::fence_expired`] when
//!    [`BrokerHeartbeatManager::next_check_ms`] passes, and again after replaying its
//!    records, until it fences nobody.
//! 4. A new broker's epoch is the offset its `RegisterBroker` record commits at: read it
//!    from [`ClusterState::broker`] after replay to answer BrokerRegistration.
//! 5. Snapshots: [`ClusterState::snapshot_records`] at offset `o`; a receiver rebuilds with
//!    [`ClusterState::from_snapshot`]`(o, &records)` and replays the log after `o`.
//! 6. `unclean.leader.election.enable` is read from the topic's configs, then the
//!    cluster-wide dynamic broker default (`BrokerConfig` resource `""`), else false. Run
//!    [`ClusterState::elect_unclean_leaders`] every `unclean.leader.election.interval.ms`
//!    and [`ClusterState::balance_partition_leaders`] every
//!    `leader.imbalance.check.interval.seconds` (both bounded; rerun at once when they say
//!    more remain).

#![warn(missing_docs)]

pub mod cluster;
pub mod command;
pub mod controller;
pub mod error;
pub mod heartbeat;
pub mod log;
mod partition_change;
pub mod placement;
pub mod records;
pub mod replication;
pub mod state;
pub mod topic;

pub use controller::Controller;
pub use error::ControllerError;
pub use heartbeat::{
    BrokerHeartbeatManager, BrokerHeartbeatRequest, BrokerRegistrationReply,
    BrokerRegistrationRequest, HeartbeatReply,
};
pub use log::MetadataLog;
pub use records::{Endpoint, LeaderRecoveryState, MetadataRecord, NO_LEADER};
pub use replication::{
    AlterPartitionReply, AlterPartitionRequest, CommandResult, CreateTopic, CreatedTopic,
    ElectionResult, ElectionType, OngoingReassignment, ReassignmentTarget,
};
pub use state::{
    BrokerRegistration, ClusterState, PartitionRegistration, TopicIdPartition, TopicMeta,
};

/// Kafka's `Uuid` text form: URL-safe base64 without padding (22 characters).
pub fn uuid_to_base64(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut i = 0;
    while i + 3 <= bytes.len() {
        let n =
            (u32::from(bytes[i]) << 16) | (u32::from(bytes[i + 1]) << 8) | u32::from(bytes[i + 2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
        }
        i += 3;
    }
    // 16 bytes = 5 groups of 3 + 1 remaining byte.
    let n = u32::from(bytes[15]) << 16;
    out.push(ALPHABET[((n >> 18) & 63) as usize] as char);
    out.push(ALPHABET[((n >> 12) & 63) as usize] as char);
    out
}

/// A random UUID as Kafka generates them: never zero, never the reserved metadata topic id
/// (`AAAAAAAAAAAAAAAAAAAAAQ`), and never one whose base64 form starts with `-`.
pub fn random_kafka_uuid() -> uuid::Uuid {
    loop {
        let id = uuid::Uuid::new_v4();
        if id.as_u128() > 1 && !uuid_to_base64(id).starts_with('-') {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_kafka() {
        // Kafka's Uuid.METADATA_TOPIC_ID = new Uuid(0L, 1L) prints as AAAAAAAAAAAAAAAAAAAAAQ.
        assert_eq!(
            super::uuid_to_base64(uuid::Uuid::from_u128(1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(
            super::uuid_to_base64(uuid::Uuid::from_u128(0)),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
        let id = super::random_kafka_uuid();
        assert_eq!(super::uuid_to_base64(id).len(), 22);
    }
}
