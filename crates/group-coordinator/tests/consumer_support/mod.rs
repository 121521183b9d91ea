//! Shared helpers for the KIP-848 tests (`mod consumer_support;`).
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use gregor_group_coordinator::consumer::ConsumerGroups;
use gregor_group_coordinator::{GroupConfig, IdGenerator, Record, TopicView};
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

pub type Owned = BTreeMap<Uuid, BTreeSet<i32>>;

/// A fake cluster.
#[derive(Default)]
pub struct Topics(pub RefCell<BTreeMap<String, (Uuid, i32)>>);

impl Topics {
    pub fn with(topics: &[(&str, i32)]) -> Self {
        let t = Topics::default();
        for (name, n) in topics {
            t.set(name, *n);
        }
        t
    }
    pub fn set(&self, name: &str, partitions: i32) {
        let mut m = self.0.borrow_mut();
        let id = m.get(name).map(|(id, _)| *id).unwrap_or_else(|| {
            let mut b = [0u8; 16];
            for (i, c) in name.bytes().enumerate() {
                b[i % 16] ^= c.wrapping_add(i as u8);
            }
            b[15] ^= 0x5a;
            Uuid::from_bytes(b)
        });
        m.insert(name.to_string(), (id, partitions));
    }
    pub fn id(&self, name: &str) -> Uuid {
        self.0.borrow()[name].0
    }
}

impl TopicView for Topics {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.0.borrow().get(topic).map(|(_, n)| *n)
    }
    fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.0.borrow().get(topic).map(|(id, _)| *id)
    }
    fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.0
            .borrow()
            .iter()
            .find(|(_, (i, _))| i == id)
            .map(|(n, _)| n.clone())
    }
    fn all_topics(&self) -> Vec<(String, Uuid, i32)> {
        self.0
            .borrow()
            .iter()
            .map(|(n, (id, p))| (n.clone(), *id, *p))
            .collect()
    }
}

pub fn config() -> GroupConfig {
    GroupConfig::default()
}

pub fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

pub fn join_req(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.member_epoch = 0;
    r.rebalance_timeout_ms = 30_000;
    r.subscribed_topic_names = Some(topics.iter().map(|t| TopicName(s(t))).collect());
    r.topic_partitions = Some(Vec::new());
    r
}

pub fn hb_req(
    group: &str,
    member: &str,
    epoch: i32,
    owned: Option<&Owned>,
) -> ConsumerGroupHeartbeatRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.member_epoch = epoch;
    r.topic_partitions = owned.map(to_tps);
    r
}

pub fn to_tps(o: &Owned) -> Vec<TopicPartitions> {
    o.iter()
        .map(|(t, p)| {
            let mut tp = TopicPartitions::default();
            tp.topic_id = *t;
            tp.partitions = p.iter().copied().collect();
            tp
        })
        .collect()
}

pub fn assignment_of(r: &ConsumerGroupHeartbeatResponse) -> Option<Owned> {
    r.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
            .collect()
    })
}

pub fn count(o: &Owned) -> usize {
    o.values().map(BTreeSet::len).sum()
}

/// A well-behaved client: applies every assignment it receives at once.
#[derive(Debug, Clone)]
pub struct Client {
    pub group: String,
    pub id: String,
    pub epoch: i32,
    pub owned: Owned,
    pub instance_id: Option<String>,
    pub topics: Vec<String>,
}

impl Client {
    pub fn new(group: &str, id: &str, topics: &[&str]) -> Self {
        Client {
            group: group.into(),
            id: id.into(),
            epoch: 0,
            owned: Owned::new(),
            instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    pub fn request(&self) -> ConsumerGroupHeartbeatRequest {
        if self.epoch == 0 {
            let t: Vec<&str> = self.topics.iter().map(String::as_str).collect();
            let mut r = join_req(&self.group, &self.id, &t);
            r.instance_id = self.instance_id.as_deref().map(s);
            r
        } else {
            let mut r = hb_req(&self.group, &self.id, self.epoch, Some(&self.owned));
            r.instance_id = self.instance_id.as_deref().map(s);
            r
        }
    }

    pub fn apply(&mut self, r: &ConsumerGroupHeartbeatResponse) {
        match ErrorCode::from_code(r.error_code) {
            Some(ErrorCode::None) => {
                if let Some(id) = &r.member_id {
                    self.id = id.to_string();
                }
                self.epoch = r.member_epoch;
                if let Some(a) = assignment_of(r) {
                    self.owned = a;
                }
            }
            Some(ErrorCode::UnknownMemberId | ErrorCode::FencedMemberEpoch) => {
                self.epoch = 0;
                self.owned.clear();
            }
            _ => {}
        }
    }

    pub fn heartbeat(
        &mut self,
        cg: &mut ConsumerGroups,
        now: i64,
        topics: &Topics,
        log: &mut Vec<Record>,
        ids: &mut dyn IdGenerator,
    ) -> ConsumerGroupHeartbeatResponse {
        let (records, resp) =
            cg.heartbeat(now, 1, &Default::default(), self.request(), topics, ids);
        log.extend(records);
        self.apply(&resp);
        resp
    }
}

pub fn describe(cg: &ConsumerGroups, group: &str, topics: &Topics) -> DescribedGroup {
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(s(group))];
    cg.describe(1, &req, topics).groups.remove(0)
}

/// Heartbeats every client in rounds until the group is Stable (or `rounds` ran out).
pub fn converge(
    cg: &mut ConsumerGroups,
    clients: &mut [Client],
    now: i64,
    topics: &Topics,
    log: &mut Vec<Record>,
    rounds: usize,
    ids: &mut dyn IdGenerator,
) -> bool {
    for _ in 0..rounds {
        for c in clients.iter_mut() {
            c.heartbeat(cg, now, topics, log, ids);
        }
        if describe(cg, &clients[0].group, topics).group_state.as_str() == "Stable" {
            // One more round so every client has seen its final assignment.
            for c in clients.iter_mut() {
                c.heartbeat(cg, now, topics, log, ids);
            }
            return true;
        }
    }
    false
}

/// Replays a record log into a fresh `ConsumerGroups`.
pub fn replayed(log: &[Record]) -> ConsumerGroups {
    let mut cg = ConsumerGroups::new(&config());
    for r in log {
        assert!(
            cg.replay(&r.key, r.value.as_deref()).expect("replay"),
            "record not claimed"
        );
    }
    cg
}

/// Partitions in the members' current assignments, panicking on a double assignment.
pub fn current_owners(d: &DescribedGroup) -> BTreeMap<(Uuid, i32), String> {
    let mut owners = BTreeMap::new();
    for m in &d.members {
        for tp in &m.assignment.topic_partitions {
            for p in &tp.partitions {
                if let Some(prev) = owners.insert((tp.topic_id, *p), m.member_id.to_string()) {
                    panic!(
                        "partition {}-{p} owned by {prev} and {}",
                        tp.topic_name.0.as_str(),
                        m.member_id.as_str()
                    );
                }
            }
        }
    }
    owners
}
