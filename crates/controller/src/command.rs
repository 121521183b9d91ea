//! [`Command`]: the metadata changes a broker asks the active controller for, as one
//! serializable value (the body of Gregor's private `CONTROLLER_COMMAND` API, JSON), and
//! [`ClusterState::run_command`], which validates it against the state and returns the records
//! to commit plus the [`Reply`].
//!
//! Broker lifecycle requests (BrokerRegistration, BrokerHeartbeat) and AlterPartition are not
//! commands: they are Kafka APIs of their own, answered by the controller's handlers.

use crate::error::ControllerError;
use crate::records::MetadataRecord;
use crate::replication::CommandResult;
use crate::replication::{CreateTopic, ElectionType, ReassignmentTarget};
use crate::state::ClusterState;
use gregor_protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A metadata change for the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command")]
pub enum Command {
    /// CreateTopics, one topic (defaults already applied by the broker).
    CreateTopic {
        /// Name.
        name: String,
        /// Partition count.
        partitions: i32,
        /// Replication factor.
        replication_factor: i16,
        /// Manual assignment (partition → brokers), empty for automatic placement. On the
        /// wire a list of pairs: an internally tagged enum cannot carry integer map keys.
        #[serde(with = "int_keyed")]
        assignments: BTreeMap<i32, Vec<i32>>,
        /// Config overrides.
        configs: BTreeMap<String, String>,
    },
    /// CreatePartitions, one topic.
    CreatePartitions {
        /// Topic name.
        name: String,
        /// New partition count.
        count: i32,
        /// Manual assignment of the new partitions.
        assignments: Option<Vec<Vec<i32>>>,
    },
    /// DeleteTopics, one topic.
    DeleteTopic {
        /// Topic id.
        topic_id: Uuid,
    },
    /// (Incremental)AlterConfigs on a topic: all changes or none.
    AlterTopicConfigs {
        /// Topic name.
        name: String,
        /// (key, new value or `None` to delete).
        changes: Vec<(String, Option<String>)>,
    },
    /// Dynamic broker configs, client quotas and SCRAM credentials, validated by the broker:
    /// only `BrokerConfig`, `ClientQuota` and (Remove)`UserScramCredential` records are
    /// accepted.
    CommitConfigRecords {
        /// The records.
        records: Vec<MetadataRecord>,
    },
    /// AllocateProducerIds.
    AllocateProducerIds {
        /// The asking broker.
        broker_id: i32,
        /// Its epoch.
        broker_epoch: i64,
    },
    /// ElectLeaders.
    ElectLeaders {
        /// UNCLEAN (true) or PREFERRED.
        unclean: bool,
        /// Partitions by topic name; `None` for every partition.
        partitions: Option<Vec<(String, Vec<i32>)>>,
    },
    /// AlterPartitionReassignments.
    AlterPartitionReassignments {
        /// (topic, partition, target replicas or `None` to cancel).
        targets: Vec<(String, i32, Option<Vec<i32>>)>,
    },
    /// UnregisterBroker.
    UnregisterBroker {
        /// The broker.
        node_id: i32,
    },
}

/// A controller error on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// Kafka error code.
    pub code: i16,
    /// Message.
    pub message: String,
}

impl From<&ControllerError> for WireError {
    fn from(e: &ControllerError) -> Self {
        WireError {
            code: e.code.code(),
            message: e.message.clone(),
        }
    }
}

impl From<WireError> for ControllerError {
    fn from(e: WireError) -> Self {
        ControllerError::new(
            ErrorCode::from_code(e.code).unwrap_or(ErrorCode::UnknownServerError),
            e.message,
        )
    }
}

/// The answer to a [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply")]
pub enum Reply {
    /// Done; nothing to report.
    Done,
    /// The topic created.
    Topic {
        /// Its id.
        topic_id: Uuid,
    },
    /// A block of producer ids, `[start, end)`.
    ProducerIds {
        /// First id.
        start: i64,
        /// One past the last id.
        end: i64,
    },
    /// ElectLeaders: per partition, `None` on success.
    Elections {
        /// (topic, partition, error).
        results: Vec<(String, i32, Option<WireError>)>,
    },
    /// AlterPartitionReassignments: per target, in order, `None` on success.
    Reassignments {
        /// Outcomes.
        results: Vec<Option<WireError>>,
    },
}

/// What the wire carries back: the reply and the offset at which its records committed (the
/// broker waits for its own metadata to reach it), or the error.
pub type WireResult = Result<(Reply, i64), WireError>;

impl ClusterState {
    /// Validates `command` against this state; returns the records to commit and the reply.
    /// `new_topic_id` is the id a created topic gets (chosen by the active controller).
    pub fn run_command(&self, command: &Command, new_topic_id: Uuid) -> CommandResult<Reply> {
        match command {
            Command::CreateTopic {
                name,
                partitions,
                replication_factor,
                assignments,
                configs,
            } => {
                let req = CreateTopic {
                    name: name.clone(),
                    partitions: *partitions,
                    replication_factor: *replication_factor,
                    assignments: assignments.clone(),
                    configs: configs.clone(),
                };
                let (records, created) = self.create_topic(&req, new_topic_id)?;
                Ok((
                    records,
                    Reply::Topic {
                        topic_id: created.topic_id,
                    },
                ))
            }
            Command::CreatePartitions {
                name,
                count,
                assignments,
            } => {
                let (records, ()) = self.create_partitions(name, *count, assignments.as_deref())?;
                Ok((records, Reply::Done))
            }
            Command::DeleteTopic { topic_id } => {
                let (records, ()) = self.delete_topic(topic_id)?;
                Ok((records, Reply::Done))
            }
            Command::AlterTopicConfigs { name, changes } => {
                let (records, ()) = self.alter_topic_configs(name, changes)?;
                Ok((records, Reply::Done))
            }
            Command::CommitConfigRecords { records } => {
                if let Some(bad) = records.iter().find(|r| {
                    !matches!(
                        r,
                        MetadataRecord::BrokerConfig { .. }
                            | MetadataRecord::GroupConfig { .. }
                            | MetadataRecord::ClientQuota { .. }
                            | MetadataRecord::UserScramCredential { .. }
                            | MetadataRecord::RemoveUserScramCredential { .. }
                            | MetadataRecord::Acl { .. }
                            | MetadataRecord::RemoveAcl { .. }
                    )
                }) {
                    return Err(ControllerError::invalid_request(format!(
                        "only broker config and client quota records may be committed directly, not {bad:?}"
                    )));
                }
                Ok((records.clone(), Reply::Done))
            }
            Command::AllocateProducerIds {
                broker_id,
                broker_epoch,
            } => {
                let (records, block) = self.allocate_producer_ids(*broker_id, *broker_epoch)?;
                Ok((
                    records,
                    Reply::ProducerIds {
                        start: block.start,
                        end: block.end,
                    },
                ))
            }
            Command::ElectLeaders {
                unclean,
                partitions,
            } => {
                let kind = if *unclean {
                    ElectionType::Unclean
                } else {
                    ElectionType::Preferred
                };
                let (records, results) = self.elect_leaders(kind, partitions.as_deref())?;
                Ok((
                    records,
                    Reply::Elections {
                        results: results
                            .into_iter()
                            .map(|r| (r.topic, r.partition, r.error.as_ref().map(WireError::from)))
                            .collect(),
                    },
                ))
            }
            Command::AlterPartitionReassignments { targets } => {
                let targets: Vec<ReassignmentTarget> = targets
                    .iter()
                    .map(|(topic, partition, replicas)| ReassignmentTarget {
                        topic: topic.clone(),
                        partition: *partition,
                        replicas: replicas.clone(),
                    })
                    .collect();
                let (records, results) = self.alter_partition_reassignments(&targets)?;
                Ok((
                    records,
                    Reply::Reassignments {
                        results: results
                            .iter()
                            .map(|r| r.as_ref().err().map(WireError::from))
                            .collect(),
                    },
                ))
            }
            Command::UnregisterBroker { node_id } => {
                let (records, ()) = self.unregister_broker(*node_id)?;
                Ok((records, Reply::Done))
            }
        }
    }
}

/// A map with integer keys as a list of `[key, value]` pairs (serde's internally tagged
/// enums buffer their content, and JSON's string keys then no longer parse as integers).
mod int_keyed {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer, V: Serialize>(
        map: &BTreeMap<i32, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<i32, V>, D::Error> {
        Ok(Vec::<(i32, V)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_as_json_and_run() {
        let cmd = Command::CreateTopic {
            name: "t".into(),
            partitions: 2,
            replication_factor: 1,
            assignments: BTreeMap::new(),
            configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
        };
        let json = serde_json::to_vec(&cmd).unwrap();
        let back: Command = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, cmd);
        let manual = Command::CreateTopic {
            name: "m".into(),
            partitions: 2,
            replication_factor: 2,
            assignments: BTreeMap::from([(0, vec![1, 2]), (1, vec![2, 3])]),
            configs: BTreeMap::new(),
        };
        let json = serde_json::to_vec(&manual).unwrap();
        let back: Command = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, manual);
        let mut state = ClusterState::default();
        // No broker registered: the replication factor cannot be met.
        let err = state.run_command(&cmd, Uuid::from_u128(7)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidReplicationFactor);
        let wire: WireResult = Err(WireError::from(&err));
        let text = serde_json::to_string(&wire).unwrap();
        let back: WireResult = serde_json::from_str(&text).unwrap();
        assert_eq!(ControllerError::from(back.unwrap_err()), err);
        // Only config records may be committed directly.
        let bad = Command::CommitConfigRecords {
            records: vec![MetadataRecord::RemoveTopic {
                topic_id: Uuid::from_u128(9),
            }],
        };
        assert_eq!(
            state.run_command(&bad, Uuid::nil()).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        let quota = Command::CommitConfigRecords {
            records: vec![MetadataRecord::BrokerConfig {
                resource_name: String::new(),
                key: "log.retention.ms".into(),
                value: Some("1".into()),
            }],
        };
        let (records, reply) = state.run_command(&quota, Uuid::nil()).unwrap();
        assert_eq!(reply, Reply::Done);
        for r in &records {
            state.replay(1, r);
        }
        assert!(state.broker_configs("").is_some());
    }
}
