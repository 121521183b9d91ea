//! [`Controller`]: the embedded single-node controller — the cluster state plus its local
//! metadata log. Every change is validated against the state, appended (and fsynced) to the
//! log, then replayed. Records are numbered by their position in the log: 1, 2, 3, ...
//!
//! This is the one part of the crate that does I/O and draws random ids (topic ids, the
//! process's incarnation id); a Raft quorum drives [`ClusterState`] and the commands directly.

use crate::error::ControllerError;
use crate::log::MetadataLog;
use crate::records::{Endpoint, MetadataRecord};
use crate::replication::{CreateTopic, CreatedTopic};
use crate::state::{ClusterState, TopicMeta};
use std::path::Path;
use uuid::Uuid;

/// The single-node controller.
#[derive(Debug)]
pub struct Controller {
    state: ClusterState,
    log: MetadataLog,
    /// Offset the next appended record gets.
    next_offset: i64,
    producer_ids: std::ops::Range<i64>,
    /// This process's incarnation id.
    incarnation_id: Uuid,
    /// The node registered by [`Controller::register_broker`].
    local_node: Option<i32>,
}

impl Controller {
    /// Opens the metadata log at `path` and replays it (record `i`, from 1, at offset `i`).
    pub fn open(path: &Path) -> std::io::Result<Controller> {
        let (log, records) = MetadataLog::open(path)?;
        let mut state = ClusterState::default();
        let mut next_offset = 1;
        for r in &records {
            state.replay(next_offset, r);
            next_offset += 1;
        }
        tracing::info!(
            records = records.len(),
            topics = state.topics().count(),
            "metadata log replayed"
        );
        Ok(Controller {
            state,
            log,
            next_offset,
            producer_ids: 0..0,
            incarnation_id: crate::random_kafka_uuid(),
            local_node: None,
        })
    }

    /// The current state.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// Appends records to the log and replays them.
    pub fn commit(&mut self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        if records.is_empty() {
            return Ok(());
        }
        self.log
            .append(&records)
            .map_err(ControllerError::storage)?;
        for r in &records {
            self.state.replay(self.next_offset, r);
            self.next_offset += 1;
        }
        Ok(())
    }

    /// Registers this broker, unfenced (it is its own controller: no heartbeat), with one
    /// `PLAINTEXT` endpoint, unless it is registered so already.
    pub fn register_broker(
        &mut self,
        node_id: i32,
        host: &str,
        port: i32,
        rack: Option<String>,
    ) -> Result<(), ControllerError> {
        self.local_node = Some(node_id);
        let endpoint = Endpoint {
            name: "PLAINTEXT".into(),
            host: host.to_string(),
            port: u16::try_from(port).unwrap_or(0),
            security_protocol: 0,
        };
        if self
            .state
            .broker(node_id)
            .is_some_and(|b| b.is_active() && b.endpoints == [endpoint.clone()] && b.rack == rack)
        {
            return Ok(());
        }
        self.commit(vec![MetadataRecord::RegisterBroker {
            node_id,
            host: None,
            port: None,
            rack,
            incarnation_id: self.incarnation_id,
            broker_epoch: None,
            registration_offset: None,
            endpoints: vec![endpoint],
            features: vec![],
            fenced: false,
            in_controlled_shutdown: false,
        }])
    }

    /// Validates a topic creation without applying it.
    pub fn validate_create_topic(&self, req: &CreateTopic) -> Result<(), ControllerError> {
        self.state.create_topic(req, Uuid::from_u128(2)).map(|_| ())
    }

    /// Creates a topic with a fresh topic id.
    pub fn create_topic(&mut self, req: &CreateTopic) -> Result<TopicMeta, ControllerError> {
        let id = crate::random_kafka_uuid();
        let (records, CreatedTopic { topic_id, .. }) = self.state.create_topic(req, id)?;
        self.commit(records)?;
        Ok(self
            .state
            .topic_by_id(&topic_id)
            .cloned()
            .expect("topic just created"))
    }

    /// Validates growing a topic without applying it.
    pub fn validate_create_partitions(
        &self,
        name: &str,
        count: i32,
    ) -> Result<(), ControllerError> {
        self.state.create_partitions(name, count, None).map(|_| ())
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &mut self,
        name: &str,
        count: i32,
    ) -> Result<TopicMeta, ControllerError> {
        let (records, ()) = self.state.create_partitions(name, count, None)?;
        self.commit(records)?;
        Ok(self.state.topic(name).cloned().expect("topic exists"))
    }

    /// Deletes a topic.
    pub fn delete_topic(&mut self, id: &Uuid) -> Result<TopicMeta, ControllerError> {
        let meta = self.state.topic_by_id(id).cloned();
        let (records, ()) = self.state.delete_topic(id)?;
        self.commit(records)?;
        Ok(meta.expect("topic exists"))
    }

    /// Changes a topic's config overrides (all or nothing); returns the updated topic.
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<TopicMeta, ControllerError> {
        let (records, ()) = self.state.alter_topic_configs(name, changes)?;
        self.commit(records)?;
        Ok(self.state.topic(name).cloned().expect("topic exists"))
    }

    /// Allocates (and persists) the next block of producer ids for this node.
    pub fn allocate_producer_ids(&mut self) -> Result<std::ops::Range<i64>, ControllerError> {
        let (broker_id, broker_epoch) = self
            .local_node
            .and_then(|n| self.state.broker(n))
            .map_or((-1, -1), |b| (b.node_id, b.epoch));
        let (records, block) = self
            .state
            .next_producer_id_block_for(broker_id, broker_epoch)?;
        self.commit(records)?;
        Ok(block)
    }

    /// Hands out the next producer id, allocating (and persisting) a new block when needed.
    pub fn next_producer_id(&mut self) -> Result<i64, ControllerError> {
        if self.producer_ids.is_empty() {
            self.producer_ids = self.allocate_producer_ids()?;
        }
        let id = self.producer_ids.start;
        self.producer_ids.start += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let (id, pid, before) = {
            let mut c = Controller::open(&path).unwrap();
            c.register_broker(1, "localhost", 9092, None).unwrap();
            let t = c
                .create_topic(&CreateTopic {
                    name: "orders".into(),
                    partitions: 2,
                    replication_factor: 1,
                    assignments: BTreeMap::new(),
                    configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
                })
                .unwrap();
            c.create_partitions("orders", 4).unwrap();
            (t.id, c.next_producer_id().unwrap(), c.state().clone())
        };
        let mut c = Controller::open(&path).unwrap();
        assert_eq!(c.state(), &before);
        let t = c.state().topic("orders").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partitions, 4);
        assert_eq!(
            t.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        for p in 0..4 {
            let part = c.state().partition(&id, p).unwrap();
            assert_eq!((part.leader, part.isr.as_slice()), (1, &[1][..]));
        }
        // Registering the same endpoint again writes nothing.
        let n = c.state().records_applied();
        c.register_broker(1, "localhost", 9092, None).unwrap();
        assert_eq!(c.state().records_applied(), n);
        assert!(c.next_producer_id().unwrap() > pid);
        assert_eq!(c.state().broker(1).unwrap().epoch, 1);
    }
}
