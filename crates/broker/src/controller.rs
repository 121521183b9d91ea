//! [`ControllerChannel`]: how this broker changes cluster metadata — Kafka's forwarding of admin
//! requests to the active controller.
//!
//! A change is a [`Command`] run by the active controller: directly when that is this node's
//! own [`QuorumController`], otherwise forwarded over the controller listener with Gregor's
//! private `CONTROLLER_COMMAND` API to the controller that leads the quorum (found from the
//! local quorum, from NOT_CONTROLLER answers, or by trying the voters / bootstrap servers in
//! turn). The answer carries the offset at which the records committed, and the channel waits
//! until this broker's [`MetadataFollower`] has applied it before returning, so a CreateTopics
//! answer means the topic is in this broker's metadata and its local logs exist.

use crate::metadata_cache::MetadataCache;
use crate::metadata_follower::MetadataFollower;
use crate::quorum_controller::QuorumController;
use crate::replica_manager::alter::{AlterAnswers, AlterItem, ControllerLink};
use crate::rpc_client::{ChannelConfig, ChannelPool};
use gregor_controller::command::{Command, Reply, WireError, WireResult};
use gregor_controller::replication::CreateTopic;
use gregor_controller::{ControllerError, MetadataRecord, TopicMeta};
use gregor_protocol::messages::alter_partition_request::{
    AlterPartitionRequest as KafkaAlterPartition, BrokerState as AlterBrokerState,
    PartitionData as AlterPartitionData, TopicData as AlterTopicData,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::ErrorCode;
use gregor_replication::LeaderAndIsr;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a metadata change may take, retries included (Kafka's `request.timeout.ms`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for this broker to apply a change it made.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The answer of the private `CONTROLLER_COMMAND` API: the result, and the active controller
/// when this one is not (so the sender can go there next).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandResponse {
    /// The outcome: reply and commit offset, or the error.
    pub result: WireResult,
    /// The active controller (id, controller-listener address), if known.
    pub leader: Option<(i32, String)>,
}

/// Runs a forwarded command on this node's controller (the `CONTROLLER_COMMAND` handler).
pub async fn serve_command(controller: &QuorumController, command: &Command) -> CommandResponse {
    let result = controller
        .run_command(command)
        .await
        .map_err(|e| WireError::from(&e));
    CommandResponse {
        result,
        leader: controller.leader(),
    }
}

/// The broker's handle on the active controller.
pub struct ControllerChannel {
    local: Option<Arc<QuorumController>>,
    /// The cluster id of this node's meta.properties, if it has one.
    cluster_id: Option<String>,
    /// Round-robin position over `controllers`.
    next: std::sync::atomic::AtomicUsize,
    /// Controller-listener addresses to try when the leader is unknown.
    controllers: Vec<(i32, String)>,
    pool: ChannelPool,
    leader: Mutex<Option<(i32, String)>>,
    metadata: Arc<MetadataCache>,
    follower: Arc<MetadataFollower>,
}

impl std::fmt::Debug for ControllerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerChannel")
            .field("local", &self.local.is_some())
            .field("controllers", &self.controllers)
            .finish()
    }
}

impl ControllerChannel {
    /// A channel to the quorum: `local` is this node's controller (if it is one),
    /// `controllers` the (id, address) of the others to reach over the network (id -1 when only
    /// a bootstrap address is known).
    pub fn new(
        node_id: i32,
        cluster_id: Option<String>,
        local: Option<Arc<QuorumController>>,
        controllers: Vec<(i32, String)>,
        metadata: Arc<MetadataCache>,
        follower: Arc<MetadataFollower>,
    ) -> ControllerChannel {
        ControllerChannel {
            local,
            cluster_id,
            next: std::sync::atomic::AtomicUsize::new(0),
            controllers,
            pool: ChannelPool::new(ChannelConfig::new(format!("gregor-broker-{node_id}"))),
            leader: Mutex::new(None),
            metadata,
            follower,
        }
    }

    /// This node's controller, if it is one.
    pub fn local(&self) -> Option<&Arc<QuorumController>> {
        self.local.as_ref()
    }

    /// The active controller as far as this broker knows (id, controller-listener address).
    pub fn active_controller(&self) -> Option<(i32, String)> {
        if let Some(l) = self.local.as_ref().and_then(|l| l.leader()) {
            return Some(l);
        }
        self.leader.lock().clone()
    }

    /// The cluster id this broker belongs to: its meta.properties', else the quorum's (once
    /// this broker's metadata has it).
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .clone()
            .or_else(|| self.metadata.image().cluster_id().map(str::to_string))
    }

    /// Where to send a controller request now: the active controller if known, else the next
    /// controller in turn.
    pub fn controller_target(&self) -> Option<(i32, String)> {
        self.active_controller().or_else(|| {
            if self.controllers.is_empty() {
                return None;
            }
            let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(self.controllers[i % self.controllers.len()].clone())
        })
    }

    /// Drops the remembered active controller (it did not answer as one).
    pub fn forget_leader(&self) {
        *self.leader.lock() = None;
    }

    /// The controllers this broker can reach: (id, address); id -1 for bootstrap addresses.
    pub fn controllers(&self) -> &[(i32, String)] {
        &self.controllers
    }

    /// The pool of connections to controllers (lifecycle RPCs share it).
    pub fn pool(&self) -> &ChannelPool {
        &self.pool
    }

    /// Sends one command to the active controller; retries on NOT_CONTROLLER and network
    /// errors until [`COMMAND_TIMEOUT`]. Returns the reply and the commit offset.
    async fn send(&self, command: &Command) -> Result<(Reply, i64), ControllerError> {
        let deadline = tokio::time::Instant::now() + COMMAND_TIMEOUT;
        let mut attempt = 0usize;
        let mut last_error =
            ControllerError::new(ErrorCode::NotController, "no controller answered");
        loop {
            if tokio::time::Instant::now() >= deadline {
                return Err(if last_error.code == ErrorCode::NotController {
                    ControllerError::new(ErrorCode::RequestTimedOut, last_error.message)
                } else {
                    last_error
                });
            }
            attempt += 1;
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis((50 * attempt as u64).min(500))).await;
            }
            if let Some(local) = &self.local {
                if local.is_active() {
                    match local.run_command(command).await {
                        Err(e) if e.code == ErrorCode::NotController => {
                            last_error = e;
                            continue;
                        }
                        other => return other,
                    }
                }
            }
            let target = self.active_controller().or_else(|| {
                (!self.controllers.is_empty())
                    .then(|| self.controllers[attempt % self.controllers.len()].clone())
            });
            let Some((id, addr)) = target else {
                continue;
            };
            if self
                .local
                .as_ref()
                .is_some_and(|l| l.quorum().node_id() as i32 == id)
            {
                // Our own controller is not active (yet): wait for an election.
                continue;
            }
            let body = bytes::Bytes::from(serde_json::to_vec(command).unwrap_or_default());
            let channel = self.pool.channel(id, &addr);
            let answer = channel
                .call_raw(
                    gregor_protocol::internal::CONTROLLER_COMMAND,
                    0,
                    body,
                    COMMAND_TIMEOUT,
                )
                .await;
            let response = match answer {
                Ok(bytes) => match serde_json::from_slice::<CommandResponse>(&bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        last_error = ControllerError::new(
                            ErrorCode::UnknownServerError,
                            format!("undecodable controller answer: {e}"),
                        );
                        continue;
                    }
                },
                Err(e) => {
                    *self.leader.lock() = None;
                    last_error = ControllerError::new(ErrorCode::NotController, e.to_string());
                    continue;
                }
            };
            *self.leader.lock() = response.leader.clone();
            match response.result {
                Ok(ok) => return Ok(ok),
                Err(e) if e.code == ErrorCode::NotController.code() => {
                    last_error = e.into();
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends a command and waits until this broker has applied its records.
    async fn change(&self, command: Command) -> Result<Reply, ControllerError> {
        let (reply, offset) = self.send(&command).await?;
        if !self.follower.wait_for(offset, APPLY_TIMEOUT).await {
            tracing::warn!(
                offset,
                "the metadata change committed but this broker has not applied it yet"
            );
        }
        Ok(reply)
    }

    /// Validates a topic creation against the current image without applying it.
    pub fn validate_create_topic(&self, req: &CreateTopic) -> Result<(), ControllerError> {
        self.metadata
            .image()
            .create_topic(req, Uuid::from_u128(2))
            .map(|_| ())
    }

    /// Creates a topic (its local logs exist when this returns).
    pub async fn create_topic(&self, req: CreateTopic) -> Result<TopicMeta, ControllerError> {
        let name = req.name.clone();
        let reply = self
            .change(Command::CreateTopic {
                name: req.name,
                partitions: req.partitions,
                replication_factor: req.replication_factor,
                assignments: req.assignments,
                configs: req.configs,
            })
            .await?;
        let meta = match reply {
            Reply::Topic { topic_id } => self.metadata.topic_by_id(&topic_id),
            _ => self.metadata.topic(&name),
        };
        let meta = meta.ok_or_else(|| {
            ControllerError::new(
                ErrorCode::UnknownServerError,
                "created topic not in metadata",
            )
        })?;
        tracing::info!(topic = %meta.name, id = %gregor_controller::uuid_to_base64(meta.id), partitions = meta.partitions, "created topic");
        Ok(meta)
    }

    /// Validates growing a topic against the current image without applying it.
    pub fn validate_create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
    ) -> Result<(), ControllerError> {
        self.metadata
            .image()
            .create_partitions(name, count, assignments)
            .map(|_| ())
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        &self,
        name: String,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
    ) -> Result<(), ControllerError> {
        self.change(Command::CreatePartitions {
            name,
            count,
            assignments,
        })
        .await
        .map(|_| ())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, id: Uuid) -> Result<(), ControllerError> {
        self.change(Command::DeleteTopic { topic_id: id }).await?;
        tracing::info!(topic_id = %gregor_controller::uuid_to_base64(id), "deleted topic");
        Ok(())
    }

    /// Changes a topic's config overrides (all or nothing).
    pub async fn alter_topic_configs(
        &self,
        name: String,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), ControllerError> {
        self.change(Command::AlterTopicConfigs { name, changes })
            .await
            .map(|_| ())
    }

    /// Commits dynamic broker config and client quota records.
    pub async fn commit(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        self.change(Command::CommitConfigRecords { records })
            .await
            .map(|_| ())
    }

    /// AllocateProducerIds for this broker (its id and epoch).
    pub async fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> Result<std::ops::Range<i64>, ControllerError> {
        match self
            .send(&Command::AllocateProducerIds {
                broker_id,
                broker_epoch,
            })
            .await?
        {
            (Reply::ProducerIds { start, end }, _) => Ok(start..end),
            _ => Err(ControllerError::new(
                ErrorCode::UnknownServerError,
                "unexpected answer to AllocateProducerIds",
            )),
        }
    }

    /// Runs a command and returns its reply once applied here (ElectLeaders, reassignments).
    pub async fn run(&self, command: Command) -> Result<Reply, ControllerError> {
        self.change(command).await
    }
}

/// The controller crate's form of one AlterPartition item.
pub fn alter_request(
    broker_id: i32,
    broker_epoch: i64,
    item: &AlterItem,
) -> gregor_controller::replication::AlterPartitionRequest {
    gregor_controller::replication::AlterPartitionRequest {
        broker_id,
        broker_epoch,
        topic_id: item.topic_id,
        partition: item.partition,
        leader_epoch: item.request.leader_epoch,
        new_isr_with_epochs: item
            .request
            .new_isr
            .iter()
            .map(|b| (b.broker_id, b.broker_epoch))
            .collect(),
        leader_recovery_state: recovery_state(item.request.leader_recovery_state.value()),
        partition_epoch: item.request.partition_epoch,
    }
}

/// The controller crate's leader recovery state of a wire value.
pub fn recovery_state(value: i8) -> gregor_controller::LeaderRecoveryState {
    if value == 1 {
        gregor_controller::LeaderRecoveryState::Recovering
    } else {
        gregor_controller::LeaderRecoveryState::Recovered
    }
}

/// The wire value of a leader recovery state.
pub fn recovery_value(state: gregor_controller::LeaderRecoveryState) -> i8 {
    match state {
        gregor_controller::LeaderRecoveryState::Recovering => 1,
        _ => 0,
    }
}

impl ControllerLink for ControllerChannel {
    fn alter_partition<'a>(
        &'a self,
        broker_id: i32,
        broker_epoch: i64,
        items: &'a [AlterItem],
    ) -> Pin<Box<dyn Future<Output = AlterAnswers> + Send + 'a>> {
        Box::pin(async move {
            if let Some(local) = self.local.as_ref().filter(|l| l.is_active()) {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let req = alter_request(broker_id, broker_epoch, item);
                    let answer = local.execute(|s, _, _| s.alter_partition(&req)).await;
                    out.push(match answer {
                        Ok((reply, _)) if reply.code == ErrorCode::None => Ok(LeaderAndIsr {
                            leader: reply.leader,
                            leader_epoch: reply.leader_epoch,
                            partition_epoch: reply.partition_epoch,
                            isr: reply.isr,
                            leader_recovery_state:
                                gregor_replication::LeaderRecoveryState::from_value(recovery_value(
                                    reply.leader_recovery_state,
                                ))
                                .unwrap_or_default(),
                        }),
                        Ok((reply, _)) => Err(reply.code),
                        Err(e) if e.code == ErrorCode::NotController => {
                            return Err(e.message);
                        }
                        Err(e) => Err(e.code),
                    });
                }
                return Ok(out);
            }
            let Some((id, addr)) = self.controller_target() else {
                return Err("no controller known".into());
            };
            let mut by_topic: Vec<(Uuid, Vec<&AlterItem>)> = Vec::new();
            for item in items {
                match by_topic.iter_mut().find(|(t, _)| *t == item.topic_id) {
                    Some((_, v)) => v.push(item),
                    None => by_topic.push((item.topic_id, vec![item])),
                }
            }
            let req = KafkaAlterPartition::default()
                .with_broker_id(BrokerId(broker_id))
                .with_broker_epoch(broker_epoch)
                .with_topics(
                    by_topic
                        .iter()
                        .map(|(topic_id, parts)| {
                            AlterTopicData::default()
                                .with_topic_id(*topic_id)
                                .with_partitions(
                                    parts
                                        .iter()
                                        .map(|item| {
                                            AlterPartitionData::default()
                                                .with_partition_index(item.partition)
                                                .with_leader_epoch(item.request.leader_epoch)
                                                .with_new_isr_with_epochs(
                                                    item.request
                                                        .new_isr
                                                        .iter()
                                                        .map(|b| {
                                                            AlterBrokerState::default()
                                                                .with_broker_id(BrokerId(
                                                                    b.broker_id,
                                                                ))
                                                                .with_broker_epoch(b.broker_epoch)
                                                        })
                                                        .collect(),
                                                )
                                                .with_leader_recovery_state(
                                                    item.request.leader_recovery_state.value(),
                                                )
                                                .with_partition_epoch(item.request.partition_epoch)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let channel = self.pool.channel(id, &addr);
            let resp = channel.call(3, &req, COMMAND_TIMEOUT).await.map_err(|e| {
                self.forget_leader();
                e.to_string()
            })?;
            if resp.error_code == ErrorCode::NotController.code() {
                self.forget_leader();
                return Err("NOT_CONTROLLER".into());
            }
            if resp.error_code != 0 {
                let code =
                    ErrorCode::from_code(resp.error_code).unwrap_or(ErrorCode::UnknownServerError);
                return Ok(items.iter().map(|_| Err(code)).collect());
            }
            Ok(items
                .iter()
                .map(|item| {
                    let found = resp
                        .topics
                        .iter()
                        .find(|t| t.topic_id == item.topic_id)
                        .and_then(|t| {
                            t.partitions
                                .iter()
                                .find(|p| p.partition_index == item.partition)
                        });
                    match found {
                        None => Err(ErrorCode::UnknownServerError),
                        Some(p) if p.error_code != 0 => Err(ErrorCode::from_code(p.error_code)
                            .unwrap_or(ErrorCode::UnknownServerError)),
                        Some(p) => Ok(LeaderAndIsr {
                            leader: p.leader_id.0,
                            leader_epoch: p.leader_epoch,
                            partition_epoch: p.partition_epoch,
                            isr: p.isr.iter().map(|b| b.0).collect(),
                            leader_recovery_state:
                                gregor_replication::LeaderRecoveryState::from_value(
                                    p.leader_recovery_state,
                                )
                                .unwrap_or_default(),
                        }),
                    }
                })
                .collect())
        })
    }
}
