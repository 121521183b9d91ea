//! Topic and partition commands on [`ClusterState`]: Kafka's `ReplicationControlManager`
//! (metadata/.../controller/ReplicationControlManager.java) — create topics and partitions
//! (with [`StripedReplicaPlacer`]), delete topics, alter topic configs, AlterPartition,
//! ElectLeaders, partition reassignments, and the leader/ISR updates that fencing,
//! unfencing and controlled shutdown need.
//!
//! Every command validates against the current state and returns the records to commit plus
//! a reply; nothing changes until the caller replays the records.

use crate::error::ControllerError;
use crate::partition_change::{Election, PartitionChangeBuilder};
use crate::placement::{seed_for, StripedReplicaPlacer, UsableBroker};
use crate::records::{LeaderRecoveryState, MetadataRecord};
use crate::state::{ClusterState, PartitionRegistration, TopicIdPartition};
use crate::topic;
use gregor_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What a command returns: the records to commit and the reply, or why it was refused.
pub type CommandResult<T> = Result<(Vec<MetadataRecord>, T), ControllerError>;

/// A request to create a topic, after defaults were applied by the caller.
#[derive(Debug, Clone)]
pub struct CreateTopic {
    /// Name.
    pub name: String,
    /// Partition count (already defaulted; must be > 0). Ignored with manual assignments.
    pub partitions: i32,
    /// Replication factor (already defaulted). Ignored with manual assignments.
    pub replication_factor: i16,
    /// Manual assignment: partition -> broker ids (empty: automatic placement).
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
}

/// The reply to [`ClusterState::create_topic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The new topic's id.
    pub topic_id: Uuid,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
}

/// One partition of an AlterPartition request (v2+: by topic id, ISR with broker epochs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    /// The sender (the partition leader).
    pub broker_id: i32,
    /// The sender's broker epoch.
    pub broker_epoch: i64,
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The leader epoch the sender leads in.
    pub leader_epoch: i32,
    /// Proposed ISR: (broker id, broker epoch or -1 to skip the epoch check).
    pub new_isr_with_epochs: Vec<(i32, i64)>,
    /// Proposed leader recovery state.
    pub leader_recovery_state: LeaderRecoveryState,
    /// The partition epoch the proposal is based on.
    pub partition_epoch: i32,
}

/// The reply to [`ClusterState::alter_partition`]: the partition's state once the returned
/// records are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionReply {
    /// `ErrorCode::None`, or `ErrorCode::NewLeaderElected` when the change completed a
    /// reassignment that moved leadership away from the sender (records are still returned
    /// and must be committed, as Kafka does).
    pub code: ErrorCode,
    /// Leader.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// ISR.
    pub isr: Vec<i32>,
    /// Leader recovery state.
    pub leader_recovery_state: LeaderRecoveryState,
    /// Partition epoch.
    pub partition_epoch: i32,
}

/// ElectLeaders' election type (Kafka's `ElectionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// PREFERRED (0): move leadership to the first replica.
    Preferred,
    /// UNCLEAN (1): give a leaderless partition any live replica as leader.
    Unclean,
}

/// One partition's outcome in [`ClusterState::elect_leaders`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionResult {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// `None` on success.
    pub error: Option<ControllerError>,
}

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentTarget {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Target replicas; `None` cancels the ongoing reassignment.
    pub replicas: Option<Vec<i32>>,
}

/// An ongoing reassignment (ListPartitionReassignments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Current replicas (target plus the ones being removed).
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed.
    pub removing_replicas: Vec<i32>,
}

/// Kafka's `Replicas.validateIsr`: no negative id, no duplicate, every member a replica.
fn validate_isr(replicas: &[i32], isr: &[i32]) -> bool {
    let mut seen = BTreeSet::new();
    isr.iter()
        .all(|b| *b >= 0 && seen.insert(*b) && replicas.contains(b))
}

impl ClusterState {
    /// Kafka's `ClusterControlManager.checkBrokerEpoch`.
    pub fn check_broker_epoch(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<(), ControllerError> {
        let Some(b) = self.broker(broker_id) else {
            return Err(ControllerError::stale_broker_epoch(format!(
                "No broker registration found for broker id {broker_id}"
            )));
        };
        if b.epoch != broker_epoch {
            return Err(ControllerError::stale_broker_epoch(format!(
                "Expected broker epoch {}, but got broker epoch {broker_epoch}",
                b.epoch
            )));
        }
        Ok(())
    }

    /// Brokers the placer may use: registered and not in controlled shutdown.
    fn usable_brokers(&self) -> Vec<UsableBroker> {
        self.brokers()
            .filter(|b| !b.in_controlled_shutdown)
            .map(|b| UsableBroker {
                id: b.node_id,
                rack: b.rack.clone(),
                fenced: b.fenced,
            })
            .collect()
    }

    /// Kafka's `validateManualPartitionAssignment`.
    fn validate_manual_assignment(
        &self,
        replicas: &[i32],
        replication_factor: Option<usize>,
    ) -> Result<(), ControllerError> {
        if replicas.is_empty() {
            return Err(ControllerError::invalid_replica_assignment(
                "The manual partition assignment includes an empty replica list.",
            ));
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        let mut prev = None;
        for b in &sorted {
            if self.broker(*b).is_none() {
                return Err(ControllerError::invalid_replica_assignment(format!(
                    "The manual partition assignment includes broker {b}, but no such broker is registered."
                )));
            }
            if prev == Some(*b) {
                return Err(ControllerError::invalid_replica_assignment(format!(
                    "The manual partition assignment includes the broker {b} more than once."
                )));
            }
            prev = Some(*b);
        }
        if let Some(rf) = replication_factor {
            if sorted.len() != rf {
                return Err(ControllerError::invalid_replica_assignment(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
                    sorted.len()
                )));
            }
        }
        Ok(())
    }

    /// The ISR of a new partition: its active replicas.
    fn active_of(&self, replicas: &[i32]) -> Vec<i32> {
        replicas
            .iter()
            .copied()
            .filter(|r| self.is_active(*r))
            .collect()
    }

    fn new_partition(replicas: Vec<i32>, isr: Vec<i32>) -> PartitionRegistration {
        PartitionRegistration {
            leader: isr[0],
            replicas,
            isr,
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader_recovery_state: LeaderRecoveryState::Recovered,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// Records that create a topic with id `topic_id` (Kafka's `createTopic`): name and
    /// collision checks, configs, then the manual assignment or a striped placement over the
    /// usable brokers (seeded from the topic id). Each partition's ISR is its active replicas,
    /// led by the first of them.
    pub fn create_topic(&self, req: &CreateTopic, topic_id: Uuid) -> CommandResult<CreatedTopic> {
        if self.topic(&req.name).is_some() {
            return Err(ControllerError::topic_already_exists(format!(
                "Topic '{}' already exists.",
                req.name
            )));
        }
        topic::validate_name(&req.name).map_err(ControllerError::invalid_topic)?;
        if req.name.contains(['.', '_']) {
            let canonical = req.name.replace('.', "_");
            if let Some(other) = self
                .topics()
                .find(|t| t.name.replace('.', "_") == canonical)
            {
                return Err(ControllerError::invalid_topic(format!(
                    "Topic '{}' collides with existing topic: {}",
                    req.name, other.name
                )));
            }
        }
        let configs =
            topic::validate_configs(&req.configs).map_err(ControllerError::invalid_config)?;
        let mut parts: BTreeMap<i32, PartitionRegistration> = BTreeMap::new();
        if !req.assignments.is_empty() {
            let mut rf = None;
            for (p, replicas) in &req.assignments {
                self.validate_manual_assignment(replicas, rf)?;
                rf = Some(replicas.len());
                let isr = self.active_of(replicas);
                if isr.is_empty() {
                    return Err(ControllerError::invalid_replica_assignment(format!(
                        "All brokers specified in the manual partition assignment for partition {p} are fenced or in controlled shutdown."
                    )));
                }
                parts.insert(*p, Self::new_partition(replicas.clone(), isr));
            }
            if (0..parts.len() as i32).any(|i| !parts.contains_key(&i)) {
                return Err(ControllerError::invalid_replica_assignment(
                    "partitions should be a consecutive 0-based integer sequence",
                ));
            }
        } else if req.replication_factor <= 0 {
            return Err(ControllerError::invalid_replication_factor(
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        } else if req.partitions <= 0 {
            return Err(ControllerError::invalid_partitions(
                "Number of partitions was set to an invalid non-positive value.",
            ));
        } else {
            let rf = req.replication_factor;
            let unable = |why: &str| {
                ControllerError::invalid_replication_factor(format!(
                    "Unable to replicate the partition {rf} time(s): {why}"
                ))
            };
            let assignment =
                StripedReplicaPlacer::new(self.usable_brokers(), seed_for(topic_id, 0))
                    .place(req.partitions as usize, i32::from(rf))
                    .map_err(|e| unable(&e))?;
            for (p, replicas) in assignment.into_iter().enumerate() {
                let isr = self.active_of(&replicas);
                if isr.is_empty() {
                    return Err(unable(
                        "All brokers are currently fenced or in controlled shutdown.",
                    ));
                }
                parts.insert(p as i32, Self::new_partition(replicas, isr));
            }
        }
        let replication_factor = parts.values().next().map_or(0, |p| p.replicas.len()) as i16;
        let mut records = Vec::with_capacity(parts.len() + 1);
        records.push(MetadataRecord::Topic {
            name: req.name.clone(),
            id: topic_id,
            internal: topic::is_internal(&req.name),
            replication_factor,
            configs,
        });
        records.extend(parts.iter().map(|(p, reg)| reg.to_record(topic_id, *p)));
        Ok((
            records,
            CreatedTopic {
                topic_id,
                partitions: parts.len() as i32,
                replication_factor,
            },
        ))
    }

    /// Records that grow a topic to `count` partitions (Kafka's `createPartitions`), placed
    /// automatically (`assignments == None`) or as given (one replica list per new
    /// partition, of the topic's replication factor).
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
    ) -> CommandResult<()> {
        let t = self
            .topic(name)
            .ok_or_else(|| ControllerError::of(ErrorCode::UnknownTopicOrPartition))?;
        let current = t.partitions;
        if count == current {
            return Err(ControllerError::invalid_partitions(format!(
                "Topic already has {current} partition(s)."
            )));
        }
        if count < current {
            return Err(ControllerError::invalid_partitions(format!(
                "The topic {name} currently has {current} partition(s); {count} would not be an increase."
            )));
        }
        let additional = (count - current) as usize;
        if let Some(a) = assignments {
            if a.len() != additional {
                return Err(ControllerError::invalid_replica_assignment(format!(
                    "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                    a.len()
                )));
            }
        }
        let Some((_, first)) = self.partitions(&t.id).next() else {
            return Err(ControllerError::new(
                ErrorCode::UnknownServerError,
                format!("Invalid state: topic {name} appears to have no partitions."),
            ));
        };
        let rf = first.replicas.len();
        let replica_lists: Vec<Vec<i32>> = match assignments {
            Some(a) => {
                for (i, replicas) in a.iter().enumerate() {
                    self.validate_manual_assignment(replicas, Some(rf))?;
                    if self.active_of(replicas).is_empty() {
                        return Err(ControllerError::invalid_replica_assignment(format!(
                            "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
                            current as usize + i
                        )));
                    }
                }
                a.to_vec()
            }
            None => StripedReplicaPlacer::new(self.usable_brokers(), seed_for(t.id, current))
                .place(additional, rf as i32)
                .map_err(ControllerError::invalid_replication_factor)?,
        };
        let mut records = Vec::with_capacity(additional);
        for (i, replicas) in replica_lists.into_iter().enumerate() {
            let isr = self.active_of(&replicas);
            if isr.is_empty() {
                return Err(ControllerError::invalid_replication_factor(format!(
                    "Unable to replicate the partition {rf} time(s): All brokers are currently fenced or in controlled shutdown."
                )));
            }
            records.push(Self::new_partition(replicas, isr).to_record(t.id, current + i as i32));
        }
        Ok((records, ()))
    }

    /// Records that delete a topic and its partitions.
    pub fn delete_topic(&self, id: &Uuid) -> CommandResult<()> {
        if self.topic_by_id(id).is_none() {
            return Err(ControllerError::of(ErrorCode::UnknownTopicId));
        }
        Ok((vec![MetadataRecord::RemoveTopic { topic_id: *id }], ()))
    }

    /// Records that change a topic's config overrides (`None` removes one). Every value is
    /// validated first; nothing is returned if any change is invalid. Unchanged values give
    /// no record.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> CommandResult<()> {
        let t = self.topic(name).ok_or_else(|| {
            ControllerError::unknown_topic_or_partition(format!(
                "The topic '{name}' does not exist."
            ))
        })?;
        let mut records = Vec::with_capacity(changes.len());
        for (key, value) in changes {
            let value = match value {
                Some(v) => {
                    Some(topic::validate_value(key, v).map_err(ControllerError::invalid_config)?)
                }
                None => {
                    if !topic::is_known_config(key) {
                        return Err(ControllerError::invalid_config(format!(
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
        Ok((records, ()))
    }

    /// Kafka's `generateLeaderAndIsrUpdates`: for each partition, remove `broker_to_remove`
    /// from the ISR (unless it is the last member) and from leadership, treat
    /// `broker_to_add` as an acceptable leader even while still fenced, and elect (uncleanly
    /// where the topic allows it). Pass [`crate::NO_LEADER`] for "none".
    pub(crate) fn generate_leader_and_isr_updates(
        &self,
        broker_to_remove: i32,
        broker_to_add: i32,
        partitions: Vec<TopicIdPartition>,
    ) -> Vec<MetadataRecord> {
        let acceptable =
            |r: i32| r != broker_to_remove && (r == broker_to_add || self.is_active(r));
        let mut records = Vec::new();
        for tp in partitions {
            let Some(part) = self.partition(&tp.topic_id, tp.partition) else {
                continue;
            };
            let mut target_isr = part.isr.clone();
            target_isr.retain(|r| *r != broker_to_remove);
            let election = if self.unclean_leader_election_enabled(&tp.topic_id) {
                Election::Unclean
            } else {
                Election::Online
            };
            if let Some(r) =
                PartitionChangeBuilder::new(part, tp.topic_id, tp.partition, acceptable)
                    .election(election)
                    .target_isr(target_isr)
                    .build()
            {
                records.push(r);
            }
        }
        records
    }

    /// Kafka's `alterPartition` for one partition (AlterPartition v2+), validated in Kafka's
    /// order: STALE_BROKER_EPOCH, UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER
    /// (epochs ahead of ours), FENCED_LEADER_EPOCH, INVALID_REQUEST (not the leader),
    /// INVALID_UPDATE_VERSION, INVALID_REQUEST (ISR not a subset of the replicas or without
    /// the leader, RECOVERING rules), INELIGIBLE_REPLICA.
    pub fn alter_partition(
        &self,
        req: &AlterPartitionRequest,
    ) -> CommandResult<AlterPartitionReply> {
        self.check_broker_epoch(req.broker_id, req.broker_epoch)?;
        if self.topic_by_id(&req.topic_id).is_none() {
            return Err(ControllerError::of(ErrorCode::UnknownTopicId));
        }
        let Some(part) = self.partition(&req.topic_id, req.partition) else {
            return Err(ControllerError::of(ErrorCode::UnknownTopicOrPartition));
        };
        let name = &self.topic_by_id(&req.topic_id).expect("topic").name;
        let tp = format!("{name}-{}", req.partition);
        if req.leader_epoch > part.leader_epoch {
            return Err(ControllerError::new(
                ErrorCode::NotController,
                format!(
                    "The leader epoch {} of {tp} is ahead of the controller's {}.",
                    req.leader_epoch, part.leader_epoch
                ),
            ));
        }
        if req.partition_epoch > part.partition_epoch {
            return Err(ControllerError::new(
                ErrorCode::NotController,
                format!(
                    "The partition epoch {} of {tp} is ahead of the controller's {}.",
                    req.partition_epoch, part.partition_epoch
                ),
            ));
        }
        if req.leader_epoch < part.leader_epoch {
            return Err(ControllerError::new(
                ErrorCode::FencedLeaderEpoch,
                format!(
                    "The current leader epoch of {tp} is {}, not {}.",
                    part.leader_epoch, req.leader_epoch
                ),
            ));
        }
        if req.broker_id != part.leader {
            return Err(ControllerError::invalid_request(format!(
                "Node {} is not the leader of {tp}: the current leader is {}.",
                req.broker_id, part.leader
            )));
        }
        if req.partition_epoch < part.partition_epoch {
            return Err(ControllerError::new(
                ErrorCode::InvalidUpdateVersion,
                format!(
                    "The current partition epoch of {tp} is {}, not {}.",
                    part.partition_epoch, req.partition_epoch
                ),
            ));
        }
        let new_isr: Vec<i32> = req.new_isr_with_epochs.iter().map(|(b, _)| *b).collect();
        if !validate_isr(&part.replicas, &new_isr) {
            return Err(ControllerError::invalid_request(format!(
                "Invalid ISR {new_isr:?} for {tp}: it must be a set of replicas {:?}.",
                part.replicas
            )));
        }
        if !new_isr.contains(&part.leader) {
            return Err(ControllerError::invalid_request(format!(
                "Invalid ISR {new_isr:?} for {tp}: it does not include the leader {}.",
                part.leader
            )));
        }
        if req.leader_recovery_state == LeaderRecoveryState::Recovering && new_isr.len() > 1 {
            return Err(ControllerError::invalid_request(format!(
                "Invalid ISR {new_isr:?} for {tp}: the leader is still recovering from an unclean leader election."
            )));
        }
        if part.leader_recovery_state == LeaderRecoveryState::Recovered
            && req.leader_recovery_state == LeaderRecoveryState::Recovering
        {
            return Err(ControllerError::invalid_request(format!(
                "The leader recovery state of {tp} cannot change from RECOVERED to RECOVERING."
            )));
        }
        let ineligible: Vec<String> = req
            .new_isr_with_epochs
            .iter()
            .filter_map(|(b, epoch)| match self.broker(*b) {
                None => Some(format!("{b} (not registered)")),
                Some(r) if r.in_controlled_shutdown => Some(format!("{b} (shutting down)")),
                Some(r) if r.fenced => Some(format!("{b} (fenced)")),
                Some(r) if *epoch != -1 && r.epoch != *epoch => Some(format!(
                    "{b} (broker epoch mismatch: requested={epoch} VS expected={})",
                    r.epoch
                )),
                Some(_) => None,
            })
            .collect();
        if !ineligible.is_empty() {
            return Err(ControllerError::new(
                ErrorCode::IneligibleReplica,
                format!(
                    "The new ISR {new_isr:?} of {tp} has ineligible replicas: {}.",
                    ineligible.join(", ")
                ),
            ));
        }
        let election = if self.unclean_leader_election_enabled(&req.topic_id) {
            Election::Unclean
        } else {
            Election::Online
        };
        let record =
            PartitionChangeBuilder::new(part, req.topic_id, req.partition, |r| self.is_active(r))
                .election(election)
                .target_isr(new_isr)
                .target_leader_recovery_state(req.leader_recovery_state)
                .build();
        let mut code = ErrorCode::None;
        let mut next = part.clone();
        if let Some(MetadataRecord::PartitionChange {
            isr,
            leader,
            replicas,
            removing_replicas,
            adding_replicas,
            leader_recovery_state,
            ..
        }) = &record
        {
            next = part.merge(
                isr,
                *leader,
                replicas,
                removing_replicas,
                adding_replicas,
                *leader_recovery_state,
            );
            if leader.is_some_and(|l| l != req.broker_id) {
                code = ErrorCode::NewLeaderElected;
            }
        }
        Ok((
            record.into_iter().collect(),
            AlterPartitionReply {
                code,
                leader: next.leader,
                leader_epoch: next.leader_epoch,
                isr: next.isr,
                leader_recovery_state: next.leader_recovery_state,
                partition_epoch: next.partition_epoch,
            },
        ))
    }

    /// Kafka's `electLeader` for one partition; pushes the record on success.
    fn elect_leader(
        &self,
        topic: &str,
        partition: i32,
        election_type: ElectionType,
        records: &mut Vec<MetadataRecord>,
    ) -> Option<ControllerError> {
        let Some(t) = self.topic(topic) else {
            return Some(ControllerError::unknown_topic_or_partition(format!(
                "No such topic as {topic}"
            )));
        };
        let Some(part) = self.partition(&t.id, partition) else {
            return Some(ControllerError::unknown_topic_or_partition(format!(
                "No such partition as {topic}-{partition}"
            )));
        };
        let (not_needed, election, unavailable) = match election_type {
            ElectionType::Preferred => (
                part.has_preferred_leader(),
                Election::Preferred,
                ErrorCode::PreferredLeaderNotAvailable,
            ),
            ElectionType::Unclean => (
                part.has_leader(),
                Election::Unclean,
                ErrorCode::EligibleLeadersNotAvailable,
            ),
        };
        if not_needed {
            return Some(ControllerError::of(ErrorCode::ElectionNotNeeded));
        }
        match PartitionChangeBuilder::new(part, t.id, partition, |r| self.is_active(r))
            .election(election)
            .build()
        {
            Some(r) => {
                records.push(r);
                None
            }
            None => Some(ControllerError::of(unavailable)),
        }
    }

    /// Kafka's `electLeaders` (ElectLeaders): `partitions == None` means every partition, and
    /// then partitions that need no election are left out of the results.
    pub fn elect_leaders(
        &self,
        election_type: ElectionType,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> CommandResult<Vec<ElectionResult>> {
        let mut records = Vec::new();
        let mut results = Vec::new();
        match partitions {
            None => {
                for t in self.topics() {
                    for (p, _) in self.partitions(&t.id) {
                        let error = self.elect_leader(&t.name, p, election_type, &mut records);
                        if error
                            .as_ref()
                            .is_none_or(|e| e.code != ErrorCode::ElectionNotNeeded)
                        {
                            results.push(ElectionResult {
                                topic: t.name.clone(),
                                partition: p,
                                error,
                            });
                        }
                    }
                }
            }
            Some(list) => {
                for (topic, ps) in list {
                    for p in ps {
                        let error = self.elect_leader(topic, *p, election_type, &mut records);
                        results.push(ElectionResult {
                            topic: topic.clone(),
                            partition: *p,
                            error,
                        });
                    }
                }
            }
        }
        Ok((records, results))
    }

    /// The periodic unclean election (Kafka 3.9+'s `maybeElectUncleanLeaders`, run every
    /// `unclean.leader.election.interval.ms`, 5 min): leaderless partitions of topics where
    /// unclean election is enabled get any live replica as leader. At most `max_elections`
    /// records; the reply says whether more partitions may remain (run again at once).
    pub fn elect_unclean_leaders(&self, max_elections: usize) -> CommandResult<bool> {
        let mut records = Vec::new();
        for tp in self.leaderless_partitions() {
            if records.len() >= max_elections {
                return Ok((records, true));
            }
            if self.unclean_leader_election_enabled(&tp.topic_id) {
                let name = &self.topic_by_id(&tp.topic_id).expect("topic").name;
                self.elect_leader(name, tp.partition, ElectionType::Unclean, &mut records);
            }
        }
        Ok((records, false))
    }

    /// Auto leader rebalance (Kafka's `maybeBalancePartitionLeaders`, run every
    /// `leader.imbalance.check.interval.seconds` when `auto.leader.rebalance.enable`): a
    /// preferred election for every partition not led by its preferred replica. At most
    /// `max_elections` records (Kafka: 1000); the reply says whether more may remain.
    pub fn balance_partition_leaders(&self, max_elections: usize) -> CommandResult<bool> {
        let mut records = Vec::new();
        for t in self.topics() {
            for (p, part) in self.partitions(&t.id) {
                if part.has_preferred_leader() {
                    continue;
                }
                if records.len() >= max_elections {
                    return Ok((records, true));
                }
                if let Some(r) = PartitionChangeBuilder::new(part, t.id, p, |r| self.is_active(r))
                    .election(Election::Preferred)
                    .build()
                {
                    records.push(r);
                }
            }
        }
        Ok((records, false))
    }

    /// Kafka's `alterPartitionReassignments`: per target, start/change a reassignment
    /// (replicas = target + the current replicas not in it, with adding/removing set, or
    /// completed at once when the ISR already allows) or cancel one. Results are in the order
    /// of `targets`.
    pub fn alter_partition_reassignments(
        &self,
        targets: &[ReassignmentTarget],
    ) -> CommandResult<Vec<Result<(), ControllerError>>> {
        let mut records = Vec::new();
        let results = targets
            .iter()
            .map(|t| {
                self.alter_partition_reassignment(t)
                    .map(|r| records.extend(r))
            })
            .collect();
        Ok((records, results))
    }

    fn alter_partition_reassignment(
        &self,
        target: &ReassignmentTarget,
    ) -> Result<Option<MetadataRecord>, ControllerError> {
        let name = &target.topic;
        let p = target.partition;
        let t = self.topic(name).ok_or_else(|| {
            ControllerError::unknown_topic_or_partition(format!(
                "Unable to find a topic named {name}."
            ))
        })?;
        let part = self.partition(&t.id, p).ok_or_else(|| {
            ControllerError::unknown_topic_or_partition(format!(
                "Unable to find partition {name}:{p}."
            ))
        })?;
        let active = |r: i32| self.is_active(r);
        match &target.replicas {
            None => {
                // Kafka's PartitionReassignmentRevert.
                if !part.is_reassigning() {
                    return Err(ControllerError::of(ErrorCode::NoReassignmentInProgress));
                }
                let replicas: Vec<i32> = part
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !part.adding_replicas.contains(r))
                    .collect();
                let mut isr: Vec<i32> = part
                    .isr
                    .iter()
                    .copied()
                    .filter(|r| !part.adding_replicas.contains(r))
                    .collect();
                let unclean_enabled = self.unclean_leader_election_enabled(&t.id);
                if isr.is_empty() {
                    let Some(first) = replicas.first() else {
                        return Err(ControllerError::invalid_replica_assignment(
                            "Invalid replica assignment: addingReplicas contains all replicas.",
                        ));
                    };
                    isr.push(*first);
                    if !unclean_enabled {
                        return Err(ControllerError::invalid_replica_assignment(format!(
                            "Unable to revert partition assignment for {name}:{p} because it would require an unclean leader election."
                        )));
                    }
                }
                let election = if unclean_enabled {
                    Election::Unclean
                } else {
                    Election::Online
                };
                Ok(PartitionChangeBuilder::new(part, t.id, p, active)
                    .election(election)
                    .target_isr(isr)
                    .target_replicas(replicas)
                    .target_removing(vec![])
                    .target_adding(vec![])
                    .build())
            }
            Some(target_replicas) => {
                self.validate_manual_assignment(target_replicas, None)?;
                // Kafka's PartitionReassignmentReplicas(current, target).
                let removing: BTreeSet<i32> = part
                    .replicas
                    .iter()
                    .copied()
                    .filter(|r| !target_replicas.contains(r))
                    .collect();
                let adding: BTreeSet<i32> = target_replicas
                    .iter()
                    .copied()
                    .filter(|r| !part.replicas.contains(r))
                    .collect();
                let mut replicas = target_replicas.clone();
                replicas.extend(removing.iter().copied());
                let mut builder = PartitionChangeBuilder::new(part, t.id, p, active);
                if replicas != part.replicas {
                    builder = builder.target_replicas(replicas);
                }
                if !removing.is_empty() {
                    builder = builder.target_removing(removing.into_iter().collect());
                }
                if !adding.is_empty() {
                    builder = builder.target_adding(adding.into_iter().collect());
                }
                Ok(builder.build())
            }
        }
    }

    /// Kafka's `listPartitionReassignments`: every ongoing reassignment (`topics == None`), or
    /// those among the given partitions (unknown topics and partitions are skipped).
    pub fn list_partition_reassignments(
        &self,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<OngoingReassignment> {
        let ongoing = |name: &str, topic_id: &Uuid, p: i32| {
            self.partition(topic_id, p)
                .filter(|part| part.is_reassigning())
                .map(|part| OngoingReassignment {
                    topic: name.to_string(),
                    partition: p,
                    replicas: part.replicas.clone(),
                    adding_replicas: part.adding_replicas.clone(),
                    removing_replicas: part.removing_replicas.clone(),
                })
        };
        match topics {
            None => self
                .reassigning_partitions()
                .filter_map(|tp| {
                    let t = self.topic_by_id(&tp.topic_id)?;
                    ongoing(&t.name, &tp.topic_id, tp.partition)
                })
                .collect(),
            Some(list) => list
                .iter()
                .filter_map(|(name, ps)| Some((self.topic(name)?, ps)))
                .flat_map(|(t, ps)| ps.iter().filter_map(move |p| ongoing(&t.name, &t.id, *p)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isr_validation() {
        assert!(validate_isr(&[1, 2, 3], &[3, 1]));
        assert!(!validate_isr(&[1, 2, 3], &[1, 1]));
        assert!(!validate_isr(&[1, 2, 3], &[4]));
        assert!(!validate_isr(&[1, 2, 3], &[-1]));
    }
}
