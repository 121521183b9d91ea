//! Broker-lifecycle and cluster-wide commands on [`ClusterState`] that need no soft state:
//! bootstrapping the cluster id, UnregisterBroker, AllocateProducerIds (Kafka's
//! `ProducerIdControlManager`), and the records for a broker being fenced, unfenced or put in
//! controlled shutdown (Kafka's `ReplicationControlManager.handleBroker*`), which
//! [`crate::BrokerHeartbeatManager`] uses.

use crate::error::ControllerError;
use crate::records::{MetadataRecord, NO_LEADER};
use crate::replication::CommandResult;
use crate::state::{ClusterState, PRODUCER_ID_BLOCK};
use gregor_protocol::ErrorCode;
use std::ops::Range;

impl ClusterState {
    /// Records that set the cluster id, once. The same id again gives no record; another id
    /// is INCONSISTENT_CLUSTER_ID.
    pub fn bootstrap(&self, cluster_id: &str) -> CommandResult<()> {
        match self.cluster_id() {
            Some(current) if current == cluster_id => Ok((vec![], ())),
            Some(current) => Err(ControllerError::new(
                ErrorCode::InconsistentClusterId,
                format!("Expected cluster ID {current}, but got cluster ID {cluster_id}"),
            )),
            None => Ok((
                vec![MetadataRecord::ClusterId {
                    cluster_id: cluster_id.to_string(),
                }],
                (),
            )),
        }
    }

    /// Kafka's `unregisterBroker`: the broker leaves every ISR (but the last member stays)
    /// and every leadership, then its registration is removed. BROKER_ID_NOT_REGISTERED for
    /// an unknown id.
    pub fn unregister_broker(&self, node_id: i32) -> CommandResult<()> {
        let Some(b) = self.broker(node_id) else {
            return Err(ControllerError::new(
                ErrorCode::BrokerIdNotRegistered,
                format!("Broker ID {node_id} is not currently registered"),
            ));
        };
        let mut records = self.generate_leader_and_isr_updates(
            node_id,
            NO_LEADER,
            self.partitions_with_replica_in_isr(node_id).collect(),
        );
        records.push(MetadataRecord::UnregisterBroker {
            node_id,
            broker_epoch: b.epoch,
        });
        Ok((records, ()))
    }

    /// Kafka's `ProducerIdControlManager.generateNextProducerId`: the next block of
    /// [`PRODUCER_ID_BLOCK`] producer ids for a registered broker (STALE_BROKER_EPOCH
    /// otherwise).
    pub fn allocate_producer_ids(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> CommandResult<Range<i64>> {
        self.check_broker_epoch(broker_id, broker_epoch)?;
        self.next_producer_id_block_for(broker_id, broker_epoch)
    }

    /// The next producer-id block without the broker check (the embedded controller).
    pub(crate) fn next_producer_id_block_for(
        &self,
        broker_id: i32,
        broker_epoch: i64,
    ) -> CommandResult<Range<i64>> {
        let start = self.next_producer_id_block();
        if start > i64::MAX - PRODUCER_ID_BLOCK {
            return Err(ControllerError::new(
                ErrorCode::UnknownServerError,
                "Exhausted all producerIds as the next block's end producerId has exceeded the int64 type limit",
            ));
        }
        let end = start + PRODUCER_ID_BLOCK;
        Ok((
            vec![MetadataRecord::ProducerIds {
                next_block_start: end,
                broker_id,
                broker_epoch,
            }],
            start..end,
        ))
    }

    /// Kafka's `handleBrokerFenced`: leave every ISR (the last member stays, leaderless) and
    /// every leadership, then `BrokerRegistrationChange{fenced}`.
    pub(crate) fn handle_broker_fenced(&self, node_id: i32) -> Vec<MetadataRecord> {
        let Some(b) = self.broker(node_id) else {
            return vec![];
        };
        let mut records = self.generate_leader_and_isr_updates(
            node_id,
            NO_LEADER,
            self.partitions_with_replica_in_isr(node_id).collect(),
        );
        records.push(MetadataRecord::BrokerRegistrationChange {
            node_id,
            broker_epoch: b.epoch,
            fenced: Some(true),
            in_controlled_shutdown: None,
        });
        records
    }

    /// Kafka's `handleBrokerUnfenced`: `BrokerRegistrationChange{unfenced}`, then leaders for
    /// the leaderless partitions this broker can lead.
    pub(crate) fn handle_broker_unfenced(
        &self,
        node_id: i32,
        broker_epoch: i64,
    ) -> Vec<MetadataRecord> {
        let mut records = vec![MetadataRecord::BrokerRegistrationChange {
            node_id,
            broker_epoch,
            fenced: Some(false),
            in_controlled_shutdown: None,
        }];
        records.extend(self.generate_leader_and_isr_updates(
            NO_LEADER,
            node_id,
            self.leaderless_partitions().collect(),
        ));
        records
    }

    /// Kafka's `handleBrokerInControlledShutdown`: `BrokerRegistrationChange{in controlled
    /// shutdown}` (once), then leave every ISR and move every leadership.
    pub(crate) fn handle_broker_in_controlled_shutdown(
        &self,
        node_id: i32,
        broker_epoch: i64,
    ) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        if self
            .broker(node_id)
            .is_some_and(|b| !b.in_controlled_shutdown)
        {
            records.push(MetadataRecord::BrokerRegistrationChange {
                node_id,
                broker_epoch,
                fenced: None,
                in_controlled_shutdown: Some(true),
            });
        }
        records.extend(self.generate_leader_and_isr_updates(
            node_id,
            NO_LEADER,
            self.partitions_with_replica_in_isr(node_id).collect(),
        ));
        records
    }
}
