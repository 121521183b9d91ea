//! A single active controller driven by hand: commands run against the state, their records
//! are "committed" at once (replayed at the next offsets), as a Raft leader that waits for
//! commit before its next command would.

#![allow(dead_code)]

use gregor_controller::heartbeat::DEFAULT_SESSION_TIMEOUT_MS;
use gregor_controller::records::Endpoint;
use gregor_controller::{
    BrokerHeartbeatManager, BrokerHeartbeatRequest, BrokerRegistrationRequest, ClusterState,
    ControllerError, CreateTopic, HeartbeatReply, MetadataRecord,
};
use std::collections::BTreeMap;
use uuid::Uuid;

pub const CLUSTER_ID: &str = "q1Sh-9_ISia_zwGINzRvyQ";

/// The controller under test.
pub struct Harness {
    pub state: ClusterState,
    pub hb: BrokerHeartbeatManager,
    pub next_offset: i64,
    pub now: i64,
    /// Incarnation ids handed out so far, to make fresh ones.
    pub incarnations: u128,
    /// Every record committed, in order, with its offset.
    pub log: Vec<(i64, MetadataRecord)>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// A bootstrapped cluster, no broker.
    pub fn new() -> Harness {
        let mut h = Harness {
            state: ClusterState::new(),
            hb: BrokerHeartbeatManager::new(DEFAULT_SESSION_TIMEOUT_MS),
            next_offset: 0,
            now: 1_000_000,
            incarnations: 0,
            log: Vec::new(),
        };
        let (records, ()) = h.state.bootstrap(CLUSTER_ID).unwrap();
        h.commit(records);
        h
    }

    /// Replays records at the next offsets; returns the offset of the first.
    pub fn commit(&mut self, records: Vec<MetadataRecord>) -> i64 {
        let first = self.next_offset;
        for r in records {
            self.state.replay(self.next_offset, &r);
            self.log.push((self.next_offset, r));
            self.next_offset += 1;
        }
        first
    }

    /// Commits a command's records and returns its reply.
    pub fn run<T>(&mut self, result: Result<(Vec<MetadataRecord>, T), ControllerError>) -> T {
        let (records, reply) = result.expect("command refused");
        self.commit(records);
        reply
    }

    pub fn fresh_incarnation(&mut self) -> Uuid {
        self.incarnations += 1;
        Uuid::from_u128(0xABCD_0000 + self.incarnations)
    }

    pub fn registration(
        node_id: i32,
        incarnation_id: Uuid,
        rack: Option<&str>,
    ) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest {
            node_id,
            cluster_id: CLUSTER_ID.into(),
            incarnation_id,
            listeners: vec![Endpoint {
                name: "PLAINTEXT".into(),
                host: format!("broker{node_id}"),
                port: 9092,
                security_protocol: 0,
            }],
            features: vec![],
            rack: rack.map(str::to_string),
        }
    }

    /// Registers a new incarnation of `node_id`; returns (incarnation, epoch).
    pub fn register(&mut self, node_id: i32, rack: Option<&str>) -> (Uuid, i64) {
        let inc = self.fresh_incarnation();
        let req = Harness::registration(node_id, inc, rack);
        let result = self.hb.register_broker(&self.state, &req, self.now);
        self.run(result);
        (inc, self.state.broker(node_id).unwrap().epoch)
    }

    /// A heartbeat with the broker's current epoch, caught up with the log.
    pub fn heartbeat(
        &mut self,
        node_id: i32,
        want_fence: bool,
        want_shutdown: bool,
    ) -> Result<HeartbeatReply, ControllerError> {
        let epoch = self.state.broker(node_id).map_or(-1, |b| b.epoch);
        let req = BrokerHeartbeatRequest {
            node_id,
            broker_epoch: epoch,
            current_metadata_offset: self.state.last_offset(),
            want_fence,
            want_shutdown,
        };
        let (records, reply) = self.hb.heartbeat(&self.state, &req, self.now)?;
        self.commit(records);
        Ok(reply)
    }

    /// Registers and unfences a broker.
    pub fn start(&mut self, node_id: i32, rack: Option<&str>) -> i64 {
        let (_, epoch) = self.register(node_id, rack);
        let reply = self.heartbeat(node_id, false, false).unwrap();
        assert!(reply.is_caught_up && !reply.is_fenced, "{reply:?}");
        epoch
    }

    /// Fences every broker whose session expired.
    pub fn fence_expired(&mut self) -> Vec<i32> {
        let mut fenced = Vec::new();
        loop {
            let (records, node) = self.hb.fence_expired(&self.state, self.now);
            self.commit(records);
            match node {
                Some(n) => fenced.push(n),
                None => return fenced,
            }
        }
    }

    pub fn create_request(name: &str, partitions: i32, rf: i16) -> CreateTopic {
        CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    /// Creates a topic; returns its id.
    pub fn create_topic(&mut self, name: &str, partitions: i32, rf: i16) -> Uuid {
        let id = Uuid::from_u128(0x7000_0000 + self.state.topics().count() as u128 + 1);
        let req = Harness::create_request(name, partitions, rf);
        let result = self.state.create_topic(&req, id);
        self.run(result).topic_id
    }

    /// A snapshot round trip must give back the same state.
    pub fn assert_snapshot_round_trip(&self) {
        let rebuilt =
            ClusterState::from_snapshot(self.state.last_offset(), &self.state.snapshot_records());
        assert_eq!(rebuilt, self.state, "snapshot round trip differs");
    }
}
