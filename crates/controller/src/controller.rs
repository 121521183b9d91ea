//! [`Controller`]: the cluster state plus its metadata log. Every change is validated against the
//! state, appended (and fsynced) to the log, then applied — the same records a Raft quorum will
//! replicate later.

use crate::log::MetadataLog;
use crate::records::MetadataRecord;
use crate::state::{ClusterState, ControllerError, CreateTopic, TopicMeta};
use std::path::Path;
use uuid::Uuid;

/// The single-node controller.
#[derive(Debug)]
pub struct Controller {
    state: ClusterState,
    log: MetadataLog,
    producer_ids: std::ops::Range<i64>,
}

impl Controller {
    /// Opens the metadata log at `path` and replays it.
    pub fn open(path: &Path) -> std::io::Result<Controller> {
        let (log, records) = MetadataLog::open(path)?;
        let mut state = ClusterState::default();
        for r in &records {
            state.replay(r);
        }
        tracing::info!(
            records = records.len(),
            topics = state.topics().count(),
            "metadata log replayed"
        );
        Ok(Controller {
            state,
            log,
            producer_ids: 0..0,
        })
    }

    /// The current state.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// Appends records to the log and applies them.
    pub fn commit(&mut self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        if records.is_empty() {
            return Ok(());
        }
        self.log
            .append(&records)
            .map_err(|e| ControllerError::Storage(e.to_string()))?;
        for r in &records {
            self.state.replay(r);
        }
        Ok(())
    }

    /// Registers this broker if it is not registered with the same endpoint yet.
    pub fn register_broker(
        &mut self,
        node_id: i32,
        host: &str,
        port: i32,
        rack: Option<String>,
    ) -> Result<(), ControllerError> {
        let current = self.state.brokers().find(|b| b.node_id == node_id);
        if current.is_some_and(|b| b.host == host && b.port == port && b.rack == rack) {
            return Ok(());
        }
        self.commit(vec![MetadataRecord::RegisterBroker {
            node_id,
            host: host.to_string(),
            port,
            rack,
        }])
    }

    /// Validates a topic creation without applying it.
    pub fn validate_create_topic(&self, req: &CreateTopic) -> Result<(), ControllerError> {
        let live = self.state.brokers().count().max(1);
        self.state
            .create_topic(req, Uuid::from_u128(2), live)
            .map(|_| ())
    }

    /// Creates a topic with a fresh topic id.
    pub fn create_topic(&mut self, req: &CreateTopic) -> Result<TopicMeta, ControllerError> {
        let live = self.state.brokers().count().max(1);
        let id = crate::random_kafka_uuid();
        let records = self.state.create_topic(req, id, live)?;
        self.commit(records)?;
        Ok(self
            .state
            .topic_by_id(&id)
            .cloned()
            .expect("topic just created"))
    }

    /// Validates growing a topic without applying it.
    pub fn validate_create_partitions(
        &self,
        name: &str,
        count: i32,
    ) -> Result<(), ControllerError> {
        self.state.create_partitions(name, count).map(|_| ())
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &mut self,
        name: &str,
        count: i32,
    ) -> Result<TopicMeta, ControllerError> {
        let records = self.state.create_partitions(name, count)?;
        self.commit(records)?;
        Ok(self.state.topic(name).cloned().expect("topic exists"))
    }

    /// Deletes a topic.
    pub fn delete_topic(&mut self, id: &Uuid) -> Result<TopicMeta, ControllerError> {
        let meta =
            self.state.topic_by_id(id).cloned().ok_or_else(|| {
                ControllerError::UnknownTopicId("Topic id does not exist.".into())
            })?;
        let records = self.state.delete_topic(id)?;
        self.commit(records)?;
        Ok(meta)
    }

    /// Changes a topic's config overrides (all or nothing); returns the updated topic.
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        changes: &[(String, Option<String>)],
    ) -> Result<TopicMeta, ControllerError> {
        let records = self.state.alter_topic_configs(name, changes)?;
        self.commit(records)?;
        Ok(self.state.topic(name).cloned().expect("topic exists"))
    }

    /// Hands out the next producer id, allocating (and persisting) a new block when needed.
    pub fn next_producer_id(&mut self) -> Result<i64, ControllerError> {
        if self.producer_ids.is_empty() {
            let (records, block) = self.state.allocate_producer_ids();
            self.commit(records)?;
            self.producer_ids = block;
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
        let (id, pid) = {
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
            (t.id, c.next_producer_id().unwrap())
        };
        let mut c = Controller::open(&path).unwrap();
        let t = c.state().topic("orders").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.partitions, 4);
        assert_eq!(
            t.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
        assert!(c.next_producer_id().unwrap() > pid);
    }
}
