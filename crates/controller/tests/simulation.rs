//! A deterministic simulation of one active controller and five brokers: brokers register,
//! heartbeat (sometimes lagging), crash, get fenced by session expiry, restart as new
//! incarnations, shut down in a controlled way, get unregistered; leaders shrink and expand
//! ISRs; topics are created (also while brokers are fenced), reassigned, re-elected.
//!
//! After every step the cluster invariants are checked:
//! - every ISR is a non-empty set of replicas; adding/removing replicas are replicas;
//! - a leader is in the ISR, registered, unfenced and not shutting down;
//! - a leaderless partition has no eligible (active) ISR member, and an ISR holding an
//!   inactive broker is exactly that broker, leaderless — so no partition is led by a fenced
//!   or shutting-down broker while an eligible ISR member exists;
//! - leader epochs and partition epochs only grow, the leader epoch never passes the
//!   partition epoch;
//! - a broker told it may shut down leads nothing;
//! - the snapshot round trip gives back the same state.
//!
//! At the end, replaying the whole log from scratch gives the same state, and a second run of
//! the same seed writes the same log.

mod common;

use common::Harness;
use gregor_controller::{
    AlterPartitionRequest, BrokerHeartbeatRequest, ElectionType, LeaderRecoveryState,
    MetadataRecord, ReassignmentTarget, TopicIdPartition, NO_LEADER,
};
use gregor_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// xorshift64*: the simulation's own deterministic randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Down,
    Running,
    ShuttingDown,
}

struct Sim {
    h: Harness,
    rng: Rng,
    life: BTreeMap<i32, Life>,
    epochs: BTreeMap<TopicIdPartition, (i32, i32)>,
    topics: u32,
}

const BROKERS: i32 = 5;

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut sim = Sim {
            h: Harness::new(),
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            life: (1..=BROKERS).map(|b| (b, Life::Down)).collect(),
            epochs: BTreeMap::new(),
            topics: 0,
        };
        for b in 1..=3 {
            sim.restart(b);
        }
        sim
    }

    fn rack(node: i32) -> Option<&'static str> {
        ["a", "b", "c"].get((node % 3) as usize).copied()
    }

    fn nodes(&self, life: Life) -> Vec<i32> {
        self.life
            .iter()
            .filter(|(_, l)| **l == life)
            .map(|(n, _)| *n)
            .collect()
    }

    fn restart(&mut self, node: i32) {
        let inc = self.h.fresh_incarnation();
        let req = Harness::registration(node, inc, Sim::rack(node));
        match self.h.hb.register_broker(&self.h.state, &req, self.h.now) {
            Ok((records, _)) => {
                self.h.commit(records);
                self.life.insert(node, Life::Running);
            }
            Err(e) => assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration, "{e}"),
        }
    }

    fn heartbeat(&mut self, node: i32) {
        let epoch = self.h.state.broker(node).expect("registered").epoch;
        let lag = if self.rng.chance(20) {
            self.rng.below(4) as i64
        } else {
            0
        };
        let req = BrokerHeartbeatRequest {
            node_id: node,
            broker_epoch: epoch,
            current_metadata_offset: self.h.state.last_offset() - lag,
            want_fence: false,
            want_shutdown: self.life[&node] == Life::ShuttingDown,
        };
        let (records, reply) = self
            .h
            .hb
            .heartbeat(&self.h.state, &req, self.h.now)
            .expect("heartbeat");
        self.h.commit(records);
        if reply.should_shutdown {
            assert!(
                !self.h.state.has_leaderships(node),
                "broker {node} told to stop while leading"
            );
            assert!(reply.is_fenced);
            self.life.insert(node, Life::Down);
        }
    }

    fn tick(&mut self) {
        self.h.now += 500 + self.rng.below(2500) as i64;
        for node in 1..=BROKERS {
            if self.life[&node] != Life::Down && self.rng.chance(85) {
                self.heartbeat(node);
            }
        }
    }

    fn create_topic(&mut self) {
        self.topics += 1;
        let name = format!("t{}", self.topics);
        let mut req = Harness::create_request(
            &name,
            1 + self.rng.below(4) as i32,
            1 + self.rng.below(3) as i16,
        );
        if self.rng.chance(30) {
            req.configs
                .insert("unclean.leader.election.enable".into(), "true".into());
        }
        let id = Uuid::from_u128(0x5EED_0000 + u128::from(self.topics));
        match self.h.state.create_topic(&req, id) {
            Ok((records, _)) => {
                self.h.commit(records);
            }
            Err(e) => assert_eq!(e.code, ErrorCode::InvalidReplicationFactor, "{e}"),
        }
    }

    fn all_partitions(&self) -> Vec<TopicIdPartition> {
        self.h
            .state
            .topics()
            .flat_map(|t| {
                self.h
                    .state
                    .partitions(&t.id)
                    .map(move |(p, _)| TopicIdPartition {
                        topic_id: t.id,
                        partition: p,
                    })
            })
            .collect()
    }

    /// A live leader proposes an ISR change (followers caught up, or one fell behind).
    fn alter_isr(&mut self, expand: bool) {
        let candidates: Vec<TopicIdPartition> = self
            .all_partitions()
            .into_iter()
            .filter(|tp| {
                let p = self.h.state.partition(&tp.topic_id, tp.partition).unwrap();
                p.leader != NO_LEADER && self.life[&p.leader] != Life::Down
            })
            .collect();
        let Some(tp) = self.rng.pick(&candidates) else {
            return;
        };
        let p = self
            .h
            .state
            .partition(&tp.topic_id, tp.partition)
            .unwrap()
            .clone();
        let mut isr = p.isr.clone();
        let mut lrs = p.leader_recovery_state;
        if expand {
            lrs = LeaderRecoveryState::Recovered;
            for r in &p.replicas {
                if !isr.contains(r)
                    && self.h.state.is_active(*r)
                    && self.life.get(r) == Some(&Life::Running)
                {
                    isr.push(*r);
                }
            }
        } else {
            let followers: Vec<i32> = isr.iter().copied().filter(|r| *r != p.leader).collect();
            let Some(drop) = self.rng.pick(&followers) else {
                return;
            };
            isr.retain(|r| *r != drop);
        }
        let req = AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: self.h.state.broker(p.leader).unwrap().epoch,
            topic_id: tp.topic_id,
            partition: tp.partition,
            leader_epoch: p.leader_epoch,
            new_isr_with_epochs: isr
                .iter()
                .map(|b| (*b, self.h.state.broker(*b).unwrap().epoch))
                .collect(),
            leader_recovery_state: lrs,
            partition_epoch: p.partition_epoch,
        };
        let (records, reply) = self.h.state.alter_partition(&req).expect("alter partition");
        assert!(matches!(
            reply.code,
            ErrorCode::None | ErrorCode::NewLeaderElected
        ));
        self.h.commit(records);
    }

    fn reassign(&mut self) {
        let Some(tp) = self.rng.pick(&self.all_partitions()) else {
            return;
        };
        let t = self.h.state.topic_by_id(&tp.topic_id).unwrap().name.clone();
        let p = self.h.state.partition(&tp.topic_id, tp.partition).unwrap();
        let cancel = p.is_reassigning() && self.rng.chance(30);
        let registered: Vec<i32> = self.h.state.brokers().map(|b| b.node_id).collect();
        let rf = p.replicas.len() - p.removing_replicas.len();
        let mut target = Vec::new();
        while target.len() < rf.min(registered.len()) {
            let b = registered[self.rng.below(registered.len())];
            if !target.contains(&b) {
                target.push(b);
            }
        }
        let req = ReassignmentTarget {
            topic: t,
            partition: tp.partition,
            replicas: (!cancel).then_some(target),
        };
        let (records, results) = self.h.state.alter_partition_reassignments(&[req]).unwrap();
        if let Err(e) = &results[0] {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidReplicaAssignment | ErrorCode::NoReassignmentInProgress
                ),
                "{e}"
            );
        }
        self.h.commit(records);
    }

    fn step(&mut self) {
        match self.rng.below(100) {
            0..=39 => self.tick(),
            40..=44 => {
                if let Some(n) = self.rng.pick(&self.nodes(Life::Running)) {
                    self.life.insert(n, Life::Down);
                }
            }
            45..=54 => {
                if let Some(n) = self.rng.pick(&self.nodes(Life::Down)) {
                    self.restart(n);
                }
            }
            55..=57 => {
                if let Some(n) = self.rng.pick(&self.nodes(Life::Running)) {
                    self.life.insert(n, Life::ShuttingDown);
                }
            }
            58..=63 => self.create_topic(),
            64..=75 => self.alter_isr(true),
            76..=83 => self.alter_isr(false),
            84..=88 => self.reassign(),
            89..=90 => {
                let result = self.h.state.elect_leaders(ElectionType::Preferred, None);
                self.h.run(result);
            }
            91 => {
                let result = self.h.state.balance_partition_leaders(1000);
                self.h.run(result);
            }
            92 => {
                let result = self.h.state.elect_leaders(ElectionType::Unclean, None);
                self.h.run(result);
            }
            93 => {
                let result = self.h.state.elect_unclean_leaders(1000);
                self.h.run(result);
            }
            94..=95 => {
                // Unregister a dead, fenced broker (kafka-cluster.sh unregister).
                let dead: Vec<i32> = self
                    .nodes(Life::Down)
                    .into_iter()
                    .filter(|n| self.h.state.broker(*n).is_some_and(|b| b.fenced))
                    .collect();
                if let Some(n) = self.rng.pick(&dead) {
                    let result = self.h.state.unregister_broker(n);
                    self.h.run(result);
                }
            }
            _ => {
                let (records, _) = self
                    .h
                    .state
                    .create_partitions(
                        &format!("t{}", 1 + self.rng.below(self.topics.max(1) as usize)),
                        6,
                        None,
                    )
                    .unwrap_or_default();
                self.h.commit(records);
            }
        }
        self.h.fence_expired();
    }

    fn check(&mut self) {
        let s = &self.h.state;
        for t in s.topics() {
            for (index, p) in s.partitions(&t.id) {
                let ctx = format!("{}-{index}: {p:?}", t.name);
                let isr: BTreeSet<i32> = p.isr.iter().copied().collect();
                let replicas: BTreeSet<i32> = p.replicas.iter().copied().collect();
                assert!(!p.isr.is_empty(), "empty ISR {ctx}");
                assert_eq!(isr.len(), p.isr.len(), "duplicate in ISR {ctx}");
                assert_eq!(replicas.len(), p.replicas.len(), "duplicate replica {ctx}");
                assert!(isr.is_subset(&replicas), "ISR not in replicas {ctx}");
                assert!(
                    p.adding_replicas.iter().all(|r| replicas.contains(r)),
                    "{ctx}"
                );
                assert!(
                    p.removing_replicas.iter().all(|r| replicas.contains(r)),
                    "{ctx}"
                );
                if p.leader != NO_LEADER {
                    assert!(isr.contains(&p.leader), "leader outside the ISR {ctx}");
                    assert!(s.is_active(p.leader), "inactive leader {ctx}");
                } else {
                    assert!(
                        !p.isr.iter().any(|r| s.is_active(*r)),
                        "leaderless with an eligible ISR member {ctx}"
                    );
                }
                if p.isr.iter().any(|r| !s.is_active(*r)) {
                    assert!(
                        p.isr.len() == 1 && p.leader == NO_LEADER,
                        "inactive ISR member kept {ctx}"
                    );
                }
                assert!(p.leader_epoch <= p.partition_epoch, "{ctx}");
                let tp = TopicIdPartition {
                    topic_id: t.id,
                    partition: index,
                };
                let now = (p.leader_epoch, p.partition_epoch);
                if let Some(before) = self.epochs.insert(tp, now) {
                    assert!(
                        now.0 >= before.0 && now.1 >= before.1,
                        "epochs went back {ctx}"
                    );
                }
            }
        }
        self.h.assert_snapshot_round_trip();
    }

    fn run(seed: u64, steps: usize) -> Sim {
        let mut sim = Sim::new(seed);
        sim.check();
        for _ in 0..steps {
            sim.step();
            sim.check();
        }
        sim
    }
}

#[test]
fn invariants_hold_under_random_histories() {
    let mut fencings = 0;
    let mut shutdowns = 0;
    let mut leader_changes = 0;
    for seed in 1..=25 {
        let sim = Sim::run(seed, 400);
        // The whole log replays to the same state.
        let mut replayed = gregor_controller::ClusterState::new();
        for (offset, r) in &sim.h.log {
            replayed.replay(*offset, r);
        }
        assert_eq!(replayed, sim.h.state);
        for (_, r) in &sim.h.log {
            match r {
                MetadataRecord::BrokerRegistrationChange {
                    fenced: Some(true), ..
                } => fencings += 1,
                MetadataRecord::BrokerRegistrationChange {
                    in_controlled_shutdown: Some(true),
                    ..
                } => shutdowns += 1,
                MetadataRecord::PartitionChange {
                    leader: Some(_), ..
                } => leader_changes += 1,
                _ => {}
            }
        }
    }
    // The histories did exercise the interesting paths.
    assert!(fencings > 200, "{fencings}");
    assert!(shutdowns > 50, "{shutdowns}");
    assert!(leader_changes > 2000, "{leader_changes}");
}

#[test]
fn the_same_seed_writes_the_same_log() {
    let a = Sim::run(7, 300);
    let b = Sim::run(7, 300);
    assert_eq!(a.h.log, b.h.log);
}
