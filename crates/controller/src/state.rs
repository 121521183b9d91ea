//! [`ClusterState`]: the metadata image rebuilt by replaying [`MetadataRecord`]s, its queries,
//! and [`ClusterState::snapshot_records`]. The commands that turn requests into records live in
//! [`crate::replication`] (topics, partitions, elections, reassignments, producer ids) and
//! [`crate::heartbeat`] (registration, heartbeats, fencing).

use crate::records::{BrokerFeature, Endpoint, LeaderRecoveryState, MetadataRecord, NO_LEADER};
/// Where the broker imports it from.
pub use crate::replication::CreateTopic;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What the cluster knows about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Stable topic id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (as created).
    pub replication_factor: i16,
    /// Internal topic.
    pub internal: bool,
    /// Topic-level config overrides.
    pub configs: BTreeMap<String, String>,
}

/// A partition of a topic, by topic id (Kafka's `TopicIdPartition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicIdPartition {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
}

/// A registered broker (Kafka's `BrokerRegistration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// `node.id`.
    pub node_id: i32,
    /// Broker epoch: the metadata log offset of the record that registered this incarnation.
    pub epoch: i64,
    /// Incarnation id: one per broker process (nil for legacy registrations).
    pub incarnation_id: Uuid,
    /// Listeners, in registration order.
    pub endpoints: Vec<Endpoint>,
    /// Supported features.
    pub features: Vec<BrokerFeature>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced: may not lead or join an ISR.
    pub fenced: bool,
    /// In controlled shutdown: may not lead or join an ISR, about to stop.
    pub in_controlled_shutdown: bool,
    /// Offset of the latest `RegisterBroker` record for this broker; the broker is caught up
    /// once its metadata offset reaches it.
    pub registration_offset: i64,
}

/// The old name of [`BrokerRegistration`].
pub type BrokerMeta = BrokerRegistration;

impl BrokerRegistration {
    /// Kafka's `isActive`: unfenced and not in controlled shutdown (may lead, may join an ISR).
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    /// The endpoint of a listener.
    pub fn endpoint(&self, listener: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == listener)
    }
}

/// A partition's replication state (Kafka's `PartitionRegistration`, without ELR and log
/// directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas a reassignment is removing.
    pub removing_replicas: Vec<i32>,
    /// Replicas a reassignment is adding.
    pub adding_replicas: Vec<i32>,
    /// Leader ([`NO_LEADER`]: offline).
    pub leader: i32,
    /// Leader recovery state (KIP-704).
    pub leader_recovery_state: LeaderRecoveryState,
    /// Leader epoch: bumped at every leader change.
    pub leader_epoch: i32,
    /// Partition epoch: bumped at every change.
    pub partition_epoch: i32,
}

impl PartitionRegistration {
    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }

    /// The preferred leader: the first replica ([`NO_LEADER`] if there are none).
    pub fn preferred_replica(&self) -> i32 {
        self.replicas.first().copied().unwrap_or(NO_LEADER)
    }

    /// Whether the preferred replica leads.
    pub fn has_preferred_leader(&self) -> bool {
        self.leader == self.preferred_replica()
    }

    /// Whether a reassignment is in progress (adding or removing replicas).
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The record that recreates this registration.
    pub fn to_record(&self, topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            topic_id,
            partition,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            leader: self.leader,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            adding_replicas: self.adding_replicas.clone(),
            removing_replicas: self.removing_replicas.clone(),
            leader_recovery_state: self.leader_recovery_state,
        }
    }

    /// Kafka's `PartitionRegistration.merge`: applies a `PartitionChange` delta. A leader
    /// change (even to the same leader) bumps the leader epoch; every change bumps the
    /// partition epoch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn merge(
        &self,
        isr: &Option<Vec<i32>>,
        leader: Option<i32>,
        replicas: &Option<Vec<i32>>,
        removing_replicas: &Option<Vec<i32>>,
        adding_replicas: &Option<Vec<i32>>,
        leader_recovery_state: Option<LeaderRecoveryState>,
    ) -> PartitionRegistration {
        let (leader, leader_epoch) = match leader {
            Some(l) => (l, self.leader_epoch + 1),
            None => (self.leader, self.leader_epoch),
        };
        PartitionRegistration {
            replicas: replicas.clone().unwrap_or_else(|| self.replicas.clone()),
            isr: isr.clone().unwrap_or_else(|| self.isr.clone()),
            removing_replicas: removing_replicas
                .clone()
                .unwrap_or_else(|| self.removing_replicas.clone()),
            adding_replicas: adding_replicas
                .clone()
                .unwrap_or_else(|| self.adding_replicas.clone()),
            leader,
            leader_recovery_state: leader_recovery_state.unwrap_or(self.leader_recovery_state),
            leader_epoch,
            partition_epoch: self.partition_epoch + 1,
        }
    }
}

/// Size of the producer-id blocks the controller hands out (Kafka's
/// `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A client-quota entity: sorted (entity type, name) pairs; `None` names the default entity.
pub type QuotaEntity = Vec<(String, Option<String>)>;

/// A stored ACL (what `AccessControlEntryRecord` carries), Kafka's wire values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// Resource type.
    pub resource_type: i8,
    /// Resource name or prefix.
    pub resource_name: String,
    /// Pattern type (3 literal, 4 prefixed).
    pub pattern_type: i8,
    /// Principal.
    pub principal: String,
    /// Host.
    pub host: String,
    /// Operation.
    pub operation: i8,
    /// Permission (2 deny, 3 allow).
    pub permission: i8,
}

/// A stored SCRAM credential (what `UserScramCredentialRecord` carries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialData {
    /// Salt.
    pub salt: Vec<u8>,
    /// StoredKey.
    pub stored_key: Vec<u8>,
    /// ServerKey.
    pub server_key: Vec<u8>,
    /// Iterations.
    pub iterations: i32,
}

/// The cluster metadata, as rebuilt by replaying [`MetadataRecord`]s (Kafka's controller-side
/// `ClusterControlManager` + `ReplicationControlManager` state, and a broker's metadata image).
///
/// Two states are equal when they hold the same metadata and the same [`last_offset`]
/// (`records_applied` is a counter of work done, not state).
///
/// [`last_offset`]: ClusterState::last_offset
#[derive(Debug, Clone)]
pub struct ClusterState {
    cluster_id: Option<String>,
    topics: BTreeMap<Uuid, TopicMeta>,
    by_name: BTreeMap<String, Uuid>,
    partitions: BTreeMap<Uuid, BTreeMap<i32, PartitionRegistration>>,
    brokers: BTreeMap<i32, BrokerRegistration>,
    /// Broker -> partitions whose ISR holds it (Kafka's `BrokersToIsrs`).
    isr_members: BTreeMap<i32, BTreeSet<TopicIdPartition>>,
    /// Leader -> partitions it leads; [`NO_LEADER`] holds the leaderless partitions.
    leaders: BTreeMap<i32, BTreeSet<TopicIdPartition>>,
    /// Partitions with a reassignment in progress.
    reassigning: BTreeSet<TopicIdPartition>,
    next_producer_id_block: i64,
    /// Broker id and epoch of the last `ProducerIds` record.
    producer_ids_owner: (i32, i64),
    /// Dynamic broker configs by resource name ("" = cluster default, else node id).
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Dynamic group configs by group id.
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Client quotas by entity.
    quotas: BTreeMap<QuotaEntity, BTreeMap<String, f64>>,
    /// SCRAM credentials by (user, mechanism type byte).
    scram: BTreeMap<(String, i8), ScramCredentialData>,
    /// ACLs by id.
    acls: BTreeMap<Uuid, AclEntry>,
    last_offset: i64,
    records_applied: u64,
}

impl Default for ClusterState {
    fn default() -> Self {
        ClusterState {
            cluster_id: None,
            topics: BTreeMap::new(),
            by_name: BTreeMap::new(),
            partitions: BTreeMap::new(),
            brokers: BTreeMap::new(),
            isr_members: BTreeMap::new(),
            leaders: BTreeMap::new(),
            reassigning: BTreeSet::new(),
            next_producer_id_block: 0,
            producer_ids_owner: (-1, -1),
            broker_configs: BTreeMap::new(),
            group_configs: BTreeMap::new(),
            quotas: BTreeMap::new(),
            scram: BTreeMap::new(),
            acls: BTreeMap::new(),
            last_offset: -1,
            records_applied: 0,
        }
    }
}

impl PartialEq for ClusterState {
    fn eq(&self, other: &Self) -> bool {
        self.cluster_id == other.cluster_id
            && self.topics == other.topics
            && self.by_name == other.by_name
            && self.partitions == other.partitions
            && self.brokers == other.brokers
            && self.isr_members == other.isr_members
            && self.leaders == other.leaders
            && self.reassigning == other.reassigning
            && self.next_producer_id_block == other.next_producer_id_block
            && self.producer_ids_owner == other.producer_ids_owner
            && self.broker_configs == other.broker_configs
            && self.group_configs == other.group_configs
            && self.quotas == other.quotas
            && self.last_offset == other.last_offset
    }
}

fn set_option(m: &mut BTreeMap<String, String>, key: &str, value: &Option<String>) {
    match value {
        Some(v) => {
            m.insert(key.to_string(), v.clone());
        }
        None => {
            m.remove(key);
        }
    }
}

impl ClusterState {
    /// An empty state (nothing replayed; [`ClusterState::last_offset`] is -1).
    pub fn new() -> ClusterState {
        ClusterState::default()
    }

    /// A state rebuilt from snapshot records taken at `offset` (every record replayed at
    /// `offset`).
    pub fn from_snapshot(offset: i64, records: &[MetadataRecord]) -> ClusterState {
        let mut s = ClusterState::default();
        for r in records {
            s.replay(offset, r);
        }
        s
    }

    /// Applies one committed record found at metadata log offset `offset`. Records are trusted
    /// (they were validated before being logged): a record referring to an unknown topic,
    /// partition or broker registration is ignored.
    pub fn replay(&mut self, offset: i64, record: &MetadataRecord) {
        self.records_applied += 1;
        self.last_offset = offset;
        match record {
            MetadataRecord::ClusterId { cluster_id } => {
                self.cluster_id = Some(cluster_id.clone());
            }
            MetadataRecord::RegisterBroker {
                node_id,
                host,
                port,
                rack,
                incarnation_id,
                broker_epoch,
                registration_offset,
                endpoints,
                features,
                fenced,
                in_controlled_shutdown,
            } => {
                let endpoints = match (endpoints.is_empty(), host, port) {
                    (true, Some(host), Some(port)) => vec![Endpoint {
                        name: "PLAINTEXT".into(),
                        host: host.clone(),
                        port: u16::try_from(*port).unwrap_or(0),
                        security_protocol: 0,
                    }],
                    _ => endpoints.clone(),
                };
                self.brokers.insert(
                    *node_id,
                    BrokerRegistration {
                        node_id: *node_id,
                        epoch: broker_epoch.unwrap_or(offset),
                        incarnation_id: *incarnation_id,
                        endpoints,
                        features: features.clone(),
                        rack: rack.clone(),
                        fenced: *fenced,
                        in_controlled_shutdown: *in_controlled_shutdown,
                        registration_offset: registration_offset.unwrap_or(offset),
                    },
                );
                self.assign_legacy_partitions();
            }
            MetadataRecord::UnregisterBroker {
                node_id,
                broker_epoch,
            } => {
                if self
                    .brokers
                    .get(node_id)
                    .is_some_and(|b| b.epoch == *broker_epoch)
                {
                    self.brokers.remove(node_id);
                }
            }
            MetadataRecord::BrokerRegistrationChange {
                node_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
            } => {
                if let Some(b) = self.brokers.get_mut(node_id) {
                    if b.epoch == *broker_epoch {
                        if let Some(f) = fenced {
                            b.fenced = *f;
                        }
                        if let Some(s) = in_controlled_shutdown {
                            b.in_controlled_shutdown = *s;
                        }
                    }
                }
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
                self.partitions.insert(*id, BTreeMap::new());
            }
            MetadataRecord::PartitionCount { topic_id, count } => {
                // Legacy: the partitions of a single-node topic, led by the lowest broker.
                let lowest = self.brokers.keys().next().copied();
                for p in 0..*count {
                    let exists = self
                        .partitions
                        .get(topic_id)
                        .is_none_or(|parts| parts.contains_key(&p));
                    if !exists {
                        let reg = PartitionRegistration {
                            replicas: lowest.into_iter().collect(),
                            isr: lowest.into_iter().collect(),
                            removing_replicas: vec![],
                            adding_replicas: vec![],
                            leader: lowest.unwrap_or(NO_LEADER),
                            leader_recovery_state: LeaderRecoveryState::Recovered,
                            leader_epoch: 0,
                            partition_epoch: 0,
                        };
                        self.put_partition(*topic_id, p, reg);
                    }
                }
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                adding_replicas,
                removing_replicas,
                leader_recovery_state,
            } => {
                if self.topics.contains_key(topic_id) {
                    let reg = PartitionRegistration {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        removing_replicas: removing_replicas.clone(),
                        adding_replicas: adding_replicas.clone(),
                        leader: *leader,
                        leader_recovery_state: *leader_recovery_state,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                    };
                    self.put_partition(*topic_id, *partition, reg);
                }
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                isr,
                leader,
                replicas,
                removing_replicas,
                adding_replicas,
                leader_recovery_state,
            } => {
                if let Some(prev) = self.partition(topic_id, *partition) {
                    let next = prev.merge(
                        isr,
                        *leader,
                        replicas,
                        removing_replicas,
                        adding_replicas,
                        *leader_recovery_state,
                    );
                    self.put_partition(*topic_id, *partition, next);
                }
            }
            MetadataRecord::TopicConfig {
                topic_id,
                key,
                value,
            } => {
                if let Some(t) = self.topics.get_mut(topic_id) {
                    set_option(&mut t.configs, key, value);
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(t) = self.topics.remove(topic_id) {
                    self.by_name.remove(&t.name);
                }
                if let Some(parts) = self.partitions.remove(topic_id) {
                    for (p, reg) in &parts {
                        self.unindex(
                            TopicIdPartition {
                                topic_id: *topic_id,
                                partition: *p,
                            },
                            reg,
                        );
                    }
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
                set_option(m, key, value);
                if m.is_empty() {
                    self.broker_configs.remove(resource_name);
                }
            }
            MetadataRecord::GroupConfig { group, key, value } => {
                let m = self.group_configs.entry(group.clone()).or_default();
                set_option(m, key, value);
                if m.is_empty() {
                    self.group_configs.remove(group);
                }
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            } => {
                self.scram.insert(
                    (name.clone(), *mechanism),
                    ScramCredentialData {
                        salt: salt.clone(),
                        stored_key: stored_key.clone(),
                        server_key: server_key.clone(),
                        iterations: *iterations,
                    },
                );
            }
            MetadataRecord::Acl {
                id,
                resource_type,
                resource_name,
                pattern_type,
                principal,
                host,
                operation,
                permission,
            } => {
                self.acls.insert(
                    *id,
                    AclEntry {
                        resource_type: *resource_type,
                        resource_name: resource_name.clone(),
                        pattern_type: *pattern_type,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *operation,
                        permission: *permission,
                    },
                );
            }
            MetadataRecord::RemoveAcl { id } => {
                self.acls.remove(id);
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                self.scram.remove(&(name.clone(), *mechanism));
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
            MetadataRecord::ProducerIds {
                next_block_start,
                broker_id,
                broker_epoch,
            } => {
                if *next_block_start >= self.next_producer_id_block {
                    self.next_producer_id_block = *next_block_start;
                    self.producer_ids_owner = (*broker_id, *broker_epoch);
                }
            }
        }
    }

    /// Replaces a partition's registration, keeping the topic's count and the reverse
    /// indexes in step.
    fn put_partition(&mut self, topic_id: Uuid, partition: i32, reg: PartitionRegistration) {
        let Some(parts) = self.partitions.get_mut(&topic_id) else {
            return;
        };
        let tp = TopicIdPartition {
            topic_id,
            partition,
        };
        let prev = parts.insert(partition, reg.clone());
        let count = parts.len() as i32;
        if let Some(t) = self.topics.get_mut(&topic_id) {
            t.partitions = count;
        }
        if let Some(prev) = prev {
            self.unindex(tp, &prev);
        }
        self.index(tp, &reg);
    }

    fn index(&mut self, tp: TopicIdPartition, reg: &PartitionRegistration) {
        for b in &reg.isr {
            self.isr_members.entry(*b).or_default().insert(tp);
        }
        self.leaders.entry(reg.leader).or_default().insert(tp);
        if reg.is_reassigning() {
            self.reassigning.insert(tp);
        }
    }

    fn unindex(&mut self, tp: TopicIdPartition, reg: &PartitionRegistration) {
        fn remove(
            m: &mut BTreeMap<i32, BTreeSet<TopicIdPartition>>,
            k: i32,
            tp: &TopicIdPartition,
        ) {
            if let Some(set) = m.get_mut(&k) {
                set.remove(tp);
                if set.is_empty() {
                    m.remove(&k);
                }
            }
        }
        for b in &reg.isr {
            remove(&mut self.isr_members, *b, &tp);
        }
        remove(&mut self.leaders, reg.leader, &tp);
        self.reassigning.remove(&tp);
    }

    /// Legacy partitions synthesized before any broker registered have no replicas; the
    /// first registered broker takes them.
    fn assign_legacy_partitions(&mut self) {
        let Some(lowest) = self.brokers.keys().next().copied() else {
            return;
        };
        let orphans: Vec<TopicIdPartition> = self
            .leaders
            .get(&NO_LEADER)
            .into_iter()
            .flatten()
            .filter(|tp| {
                self.partition(&tp.topic_id, tp.partition)
                    .is_some_and(|p| p.replicas.is_empty())
            })
            .copied()
            .collect();
        for tp in orphans {
            let mut reg = self.partitions[&tp.topic_id][&tp.partition].clone();
            reg.replicas = vec![lowest];
            reg.isr = vec![lowest];
            reg.leader = lowest;
            self.put_partition(tp.topic_id, tp.partition, reg);
        }
    }

    /// Offset of the last record replayed (-1 before any).
    pub fn last_offset(&self) -> i64 {
        self.last_offset
    }

    /// Number of records replayed so far.
    pub fn records_applied(&self) -> u64 {
        self.records_applied
    }

    /// The cluster id, once a [`MetadataRecord::ClusterId`] was replayed.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
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

    /// A partition's registration.
    pub fn partition(&self, topic_id: &Uuid, index: i32) -> Option<&PartitionRegistration> {
        self.partitions.get(topic_id)?.get(&index)
    }

    /// The partitions of a topic, by index (empty for an unknown topic).
    pub fn partitions(
        &self,
        topic_id: &Uuid,
    ) -> impl Iterator<Item = (i32, &PartitionRegistration)> {
        self.partitions
            .get(topic_id)
            .into_iter()
            .flatten()
            .map(|(p, r)| (*p, r))
    }

    /// Registered brokers, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    /// A broker's registration.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    /// Unfenced brokers, by node id (those in controlled shutdown included, as Kafka's
    /// metadata cache lists them).
    pub fn unfenced_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Kafka's `ClusterControlManager.isActive`: registered, unfenced and not in controlled
    /// shutdown.
    pub fn is_active(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| b.is_active())
    }

    /// Partitions led by `node_id`, ordered ([`NO_LEADER`]: the leaderless partitions).
    pub fn partitions_led_by(&self, node_id: i32) -> impl Iterator<Item = TopicIdPartition> + '_ {
        self.leaders.get(&node_id).into_iter().flatten().copied()
    }

    /// Partitions without a leader, ordered.
    pub fn leaderless_partitions(&self) -> impl Iterator<Item = TopicIdPartition> + '_ {
        self.partitions_led_by(NO_LEADER)
    }

    /// Partitions whose ISR holds `node_id`, ordered.
    pub fn partitions_with_replica_in_isr(
        &self,
        node_id: i32,
    ) -> impl Iterator<Item = TopicIdPartition> + '_ {
        self.isr_members
            .get(&node_id)
            .into_iter()
            .flatten()
            .copied()
    }

    /// Kafka's `BrokersToIsrs.hasLeaderships`: whether `node_id` leads any partition.
    pub fn has_leaderships(&self, node_id: i32) -> bool {
        node_id != NO_LEADER && self.leaders.contains_key(&node_id)
    }

    /// Partitions with a reassignment in progress, ordered.
    pub fn reassigning_partitions(&self) -> impl Iterator<Item = TopicIdPartition> + '_ {
        self.reassigning.iter().copied()
    }

    /// Dynamic broker configs of a resource ("" = cluster default, else a node id).
    pub fn broker_configs(&self, resource_name: &str) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(resource_name)
    }

    /// Groups that have dynamic configs, by id.
    pub fn groups_with_configs(&self) -> impl Iterator<Item = &String> + '_ {
        self.group_configs.keys()
    }

    /// Dynamic configs of a group (KIP-848 group configs).
    pub fn group_configs(&self, group: &str) -> Option<&BTreeMap<String, String>> {
        self.group_configs.get(group)
    }

    /// The SCRAM credential of `user` for a mechanism type byte.
    pub fn scram_credential(&self, user: &str, mechanism: i8) -> Option<&ScramCredentialData> {
        self.scram.get(&(user.to_string(), mechanism))
    }

    /// Every SCRAM credential: ((user, mechanism type byte), credential), by user.
    pub fn scram_credentials(&self) -> impl Iterator<Item = (&(String, i8), &ScramCredentialData)> {
        self.scram.iter()
    }

    /// Every ACL, by id.
    pub fn acls(&self) -> impl Iterator<Item = (&Uuid, &AclEntry)> {
        self.acls.iter()
    }

    /// Every client quota entity with its quotas.
    pub fn quotas(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, f64>)> {
        self.quotas.iter()
    }

    /// First producer id of the next unallocated block.
    pub fn next_producer_id_block(&self) -> i64 {
        self.next_producer_id_block
    }

    /// Whether `unclean.leader.election.enable` is on for a topic: the topic's override, else
    /// the cluster-wide dynamic broker default (`BrokerConfig` resource ""), else Kafka's
    /// default, false. (A static broker setting is not consulted: the controller decides from
    /// replicated metadata only.)
    pub fn unclean_leader_election_enabled(&self, topic_id: &Uuid) -> bool {
        const KEY: &str = "unclean.leader.election.enable";
        let value = self
            .topics
            .get(topic_id)
            .and_then(|t| t.configs.get(KEY))
            .or_else(|| self.broker_configs.get("").and_then(|m| m.get(KEY)));
        value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// Records that rebuild this state: replaying them, in order, into an empty state at
    /// [`ClusterState::last_offset`] gives a state equal to this one. Used as the Raft
    /// snapshot and sent to brokers too far behind the log.
    pub fn snapshot_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            out.push(MetadataRecord::ClusterId {
                cluster_id: cluster_id.clone(),
            });
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBroker {
                node_id: b.node_id,
                host: None,
                port: None,
                rack: b.rack.clone(),
                incarnation_id: b.incarnation_id,
                broker_epoch: Some(b.epoch),
                registration_offset: Some(b.registration_offset),
                endpoints: b.endpoints.clone(),
                features: b.features.clone(),
                fenced: b.fenced,
                in_controlled_shutdown: b.in_controlled_shutdown,
            });
        }
        for t in self.topics() {
            out.push(MetadataRecord::Topic {
                name: t.name.clone(),
                id: t.id,
                internal: t.internal,
                replication_factor: t.replication_factor,
                configs: t.configs.clone(),
            });
            for (p, reg) in self.partitions(&t.id) {
                out.push(reg.to_record(t.id, p));
            }
        }
        for (resource_name, m) in &self.broker_configs {
            for (key, value) in m {
                out.push(MetadataRecord::BrokerConfig {
                    resource_name: resource_name.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for (group, m) in &self.group_configs {
            for (key, value) in m {
                out.push(MetadataRecord::GroupConfig {
                    group: group.clone(),
                    key: key.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        for (entity, m) in &self.quotas {
            for (key, value) in m {
                out.push(MetadataRecord::ClientQuota {
                    entity: entity.clone(),
                    key: key.clone(),
                    value: Some(value.to_string()),
                });
            }
        }
        for (id, a) in &self.acls {
            out.push(MetadataRecord::Acl {
                id: *id,
                resource_type: a.resource_type,
                resource_name: a.resource_name.clone(),
                pattern_type: a.pattern_type,
                principal: a.principal.clone(),
                host: a.host.clone(),
                operation: a.operation,
                permission: a.permission,
            });
        }
        for ((name, mechanism), c) in &self.scram {
            out.push(MetadataRecord::UserScramCredential {
                name: name.clone(),
                mechanism: *mechanism,
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            });
        }
        if self.next_producer_id_block != 0 || self.producer_ids_owner != (-1, -1) {
            out.push(MetadataRecord::ProducerIds {
                next_block_start: self.next_producer_id_block,
                broker_id: self.producer_ids_owner.0,
                broker_epoch: self.producer_ids_owner.1,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_register(node_id: i32) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            node_id,
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
    }

    fn legacy_topic(name: &str, id: u128) -> MetadataRecord {
        MetadataRecord::Topic {
            name: name.into(),
            id: Uuid::from_u128(id),
            internal: false,
            replication_factor: 1,
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn legacy_partitions_are_synthesized() {
        let mut s = ClusterState::new();
        s.replay(1, &legacy_register(3));
        s.replay(2, &legacy_topic("t", 9));
        s.replay(
            3,
            &MetadataRecord::PartitionCount {
                topic_id: Uuid::from_u128(9),
                count: 2,
            },
        );
        let b = s.broker(3).unwrap();
        assert_eq!((b.epoch, b.fenced, b.endpoints[0].port), (1, false, 9092));
        let id = Uuid::from_u128(9);
        assert_eq!(s.topic("t").unwrap().partitions, 2);
        for p in 0..2 {
            let reg = s.partition(&id, p).unwrap();
            assert_eq!(
                (reg.replicas.clone(), reg.isr.clone(), reg.leader),
                (vec![3], vec![3], 3)
            );
            assert_eq!((reg.leader_epoch, reg.partition_epoch), (0, 0));
        }
        assert_eq!(s.partitions_led_by(3).count(), 2);
        assert_eq!(s.partitions_with_replica_in_isr(3).count(), 2);
        s.replay(
            4,
            &MetadataRecord::PartitionCount {
                topic_id: id,
                count: 3,
            },
        );
        assert_eq!(s.topic_by_id(&id).unwrap().partitions, 3);
        s.replay(5, &MetadataRecord::RemoveTopic { topic_id: id });
        assert_eq!(s.partitions_led_by(3).count(), 0);
        assert!(s.partition(&id, 0).is_none());
    }

    #[test]
    fn legacy_partitions_before_any_broker_wait_for_one() {
        let mut s = ClusterState::new();
        let id = Uuid::from_u128(9);
        s.replay(1, &legacy_topic("t", 9));
        s.replay(
            2,
            &MetadataRecord::PartitionCount {
                topic_id: id,
                count: 1,
            },
        );
        assert_eq!(s.partition(&id, 0).unwrap().leader, NO_LEADER);
        s.replay(3, &legacy_register(1));
        assert_eq!(s.partition(&id, 0).unwrap().isr, vec![1]);
        assert_eq!(s.leaderless_partitions().count(), 0);
    }

    #[test]
    fn partition_change_bumps_epochs_as_kafka() {
        let mut s = ClusterState::new();
        let id = Uuid::from_u128(9);
        s.replay(1, &legacy_topic("t", 9));
        s.replay(
            2,
            &PartitionRegistration {
                replicas: vec![1, 2],
                isr: vec![1, 2],
                removing_replicas: vec![],
                adding_replicas: vec![],
                leader: 1,
                leader_recovery_state: LeaderRecoveryState::Recovered,
                leader_epoch: 4,
                partition_epoch: 7,
            }
            .to_record(id, 0),
        );
        let change = |isr: Option<Vec<i32>>, leader: Option<i32>| MetadataRecord::PartitionChange {
            topic_id: id,
            partition: 0,
            isr,
            leader,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: None,
        };
        s.replay(3, &change(Some(vec![1]), None));
        let p = s.partition(&id, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 4, 8));
        assert_eq!(s.partitions_with_replica_in_isr(2).count(), 0);
        s.replay(4, &change(None, Some(1)));
        let p = s.partition(&id, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 5, 9));
        s.replay(5, &change(None, Some(NO_LEADER)));
        assert_eq!(s.leaderless_partitions().count(), 1);
        assert!(!s.has_leaderships(1));
        assert_eq!(s.last_offset(), 5);
        assert_eq!(s.records_applied(), 5);
    }
}
