//! Randomized KIP-848 runs: random joins, leaves, heartbeats (well-behaved and not), timers,
//! topic growth and garbage requests. The coordinator must never give a partition to two
//! members at once (current or target assignments), never panic, replay its own records into
//! the same state, and converge once the clients behave.

mod consumer_support;

use std::collections::BTreeMap;

use consumer_support::*;
use gregor_group_coordinator::consumer::ConsumerGroups;
use gregor_group_coordinator::Record;
use gregor_group_coordinator::SequentialIds;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::{GroupId, TopicName};
use uuid::Uuid;

const G: &str = "rg";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Slot {
    client: Client,
    active: bool,
    generation: u32,
}

fn check_invariants(cg: &ConsumerGroups, topics: &Topics) {
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(s(G))];
    let resp = cg.describe(1, &req, topics);
    let d = &resp.groups[0];
    if d.error_code != 0 {
        return;
    }
    current_owners(d);
    let mut targets: BTreeMap<(Uuid, i32), String> = BTreeMap::new();
    for m in &d.members {
        for tp in &m.target_assignment.topic_partitions {
            for p in &tp.partitions {
                if let Some(prev) = targets.insert((tp.topic_id, *p), m.member_id.to_string()) {
                    panic!(
                        "target of {}-{p} given to {prev} and {}",
                        tp.topic_name.0.as_str(),
                        m.member_id.as_str()
                    );
                }
            }
        }
    }
    assert!(d.assignment_epoch <= d.group_epoch);
    for m in &d.members {
        assert!(
            m.member_epoch <= d.group_epoch,
            "member epoch ahead of the group epoch"
        );
    }
}

fn snapshot(cg: &ConsumerGroups, topics: &Topics) -> String {
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(s(G))];
    format!("{:?}{:?}", cg.describe(1, &req, topics), cg.listings())
}

fn garbage(
    rng: &mut Rng,
    topics: &Topics,
    slots: &[Slot],
) -> kafka_protocol::messages::ConsumerGroupHeartbeatRequest {
    let ids = ["", "m0", "m1", "zz", " "];
    let mut member = ids[rng.below(ids.len() as u64) as usize].to_string();
    if rng.chance(50) {
        member = slots[rng.below(slots.len() as u64) as usize]
            .client
            .id
            .clone();
    }
    let mut r = hb_req(
        if rng.chance(90) { G } else { "" },
        &member,
        rng.below(14) as i32 - 3,
        None,
    );
    if rng.chance(30) {
        r.instance_id = Some(s(["i0", "i1", "ix", ""][rng.below(4) as usize]));
    }
    if rng.chance(40) {
        r.rebalance_timeout_ms = [0, 10, 5_000, i32::MAX][rng.below(4) as usize];
    }
    if rng.chance(40) {
        let names = ["t", "u", "missing", ""];
        r.subscribed_topic_names = Some(
            (0..rng.below(3))
                .map(|_| TopicName(s(names[rng.below(4) as usize])))
                .collect(),
        );
    }
    if rng.chance(20) {
        r.subscribed_topic_regex =
            Some(s(["", "t|u", "(", "[a-", ".*", "u"][rng.below(6) as usize]));
    }
    if rng.chance(20) {
        r.server_assignor = Some(s(["uniform", "range", "bogus"][rng.below(3) as usize]));
    }
    if rng.chance(50) {
        let mut o = Owned::new();
        for _ in 0..rng.below(4) {
            let t = if rng.chance(80) {
                topics.id(["t", "u"][rng.below(2) as usize])
            } else {
                Uuid::from_u128(7)
            };
            o.entry(t).or_default().insert(rng.below(12) as i32 - 2);
        }
        r.topic_partitions = Some(to_tps(&o));
    }
    r
}

fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let topics = Topics::with(&[("t", 5), ("u", 3), ("__consumer_offsets", 50)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log: Vec<Record> = Vec::new();
    let subs: [&[&str]; 4] = [&["t"], &["u"], &["t", "u"], &["t"]];
    let mut slots: Vec<Slot> = (0..5)
        .map(|i| {
            let mut c = Client::new(G, &format!("m{i}"), subs[rng.below(4) as usize]);
            if i < 2 {
                c.instance_id = Some(format!("i{i}"));
            }
            Slot {
                client: c,
                active: true,
                generation: 0,
            }
        })
        .collect();
    let mut now: i64 = 0;
    for step in 0..steps {
        now += rng.below(4_000) as i64;
        let i = rng.below(slots.len() as u64) as usize;
        match rng.below(12) {
            0..=3 => {
                let slot = &mut slots[i];
                if !slot.active {
                    slot.active = true;
                    slot.client.epoch = 0;
                    slot.client.owned.clear();
                }
                slot.client
                    .heartbeat(&mut cg, now, &topics, &mut log, &mut ids);
            }
            4 => {
                // A sloppy heartbeat: no owned partitions, or a stale epoch.
                let c = &mut slots[i].client;
                let mut req = c.request();
                if rng.chance(50) {
                    req.topic_partitions = None;
                } else {
                    req.member_epoch = (req.member_epoch - 1).max(0);
                }
                let (records, r) =
                    cg.heartbeat(now, 1, &Default::default(), req, &topics, &mut ids);
                log.extend(records);
                c.apply(&r);
            }
            5 => {
                let slot = &mut slots[i];
                let mut req = slot.client.request();
                let temporary = slot.client.instance_id.is_some() && rng.chance(50);
                req.member_epoch = if temporary { -2 } else { -1 };
                let (records, r) =
                    cg.heartbeat(now, 1, &Default::default(), req, &topics, &mut ids);
                log.extend(records);
                if r.error_code == 0 {
                    slot.active = false;
                    slot.client.epoch = 0;
                    slot.client.owned.clear();
                    if temporary {
                        slot.generation += 1;
                        slot.client.id = format!("m{i}-g{}", slot.generation);
                    }
                }
            }
            6 => log.extend(cg.tick(now)),
            7 => {
                let t = ["t", "u"][rng.below(2) as usize];
                let n = topics.partition_count_of(t);
                if n < 12 {
                    topics.set(t, n + 1);
                }
            }
            8 => {
                let c = &mut slots[i].client;
                c.topics = subs[rng.below(4) as usize]
                    .iter()
                    .map(|t| t.to_string())
                    .collect();
                let mut req = c.request();
                if c.epoch > 0 {
                    req.rebalance_timeout_ms = 30_000;
                    req.subscribed_topic_names =
                        Some(c.topics.iter().map(|t| TopicName(s(t))).collect());
                }
                let (records, r) =
                    cg.heartbeat(now, 1, &Default::default(), req, &topics, &mut ids);
                log.extend(records);
                c.apply(&r);
            }
            9 => {
                let req = garbage(&mut rng, &topics, &slots);
                let version = rng.below(2) as i16;
                let (records, _) =
                    cg.heartbeat(now, version, &Default::default(), req, &topics, &mut ids);
                log.extend(records);
            }
            10 => {
                let _ = cg.validate_offset_commit(G, &slots[i].client.id, rng.below(10) as i32 - 1);
                let _ = cg.validate_offset_fetch(
                    G,
                    Some(&slots[i].client.id),
                    rng.below(10) as i32 - 1,
                );
                let _ = cg.next_deadline();
            }
            _ => {
                if step % 7 == 0 {
                    let again = replayed(&log);
                    assert_eq!(
                        snapshot(&cg, &topics),
                        snapshot(&again, &topics),
                        "seed {seed} step {step}"
                    );
                }
            }
        }
        check_invariants(&cg, &topics);
    }
    // Let everything expire, then the active clients rejoin and behave.
    now += 3_600_000;
    log.extend(cg.tick(now));
    assert!(cg.is_empty(G), "seed {seed}: members left after expiry");
    let mut clients: Vec<Client> = slots
        .iter()
        .filter(|s| s.active)
        .map(|s| {
            let mut c = s.client.clone();
            c.epoch = 0;
            c.owned.clear();
            c
        })
        .collect();
    if clients.is_empty() {
        return;
    }
    assert!(
        converge(&mut cg, &mut clients, now, &topics, &mut log, 30, &mut ids),
        "seed {seed}: no convergence"
    );
    let d = describe(&cg, G, &topics);
    let owners = current_owners(&d);
    // Every partition of a subscribed topic is owned by exactly one member subscribed to it.
    for (t, (id, n)) in topics.0.borrow().iter() {
        let subscribed: Vec<&Client> = clients.iter().filter(|c| c.topics.contains(t)).collect();
        for p in 0..*n {
            match owners.get(&(*id, p)) {
                Some(owner) => assert!(
                    subscribed.iter().any(|c| &c.id == owner),
                    "seed {seed}: {t}-{p}"
                ),
                None => assert!(subscribed.is_empty(), "seed {seed}: {t}-{p} unassigned"),
            }
        }
    }
    // Clients agree with the coordinator.
    for c in &clients {
        let m = d
            .members
            .iter()
            .find(|m| m.member_id.as_str() == c.id)
            .expect("member");
        let mine: Owned = m
            .assignment
            .topic_partitions
            .iter()
            .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
            .collect();
        assert_eq!(mine, c.owned, "seed {seed}");
    }
    let again = replayed(&log);
    assert_eq!(
        snapshot(&cg, &topics),
        snapshot(&again, &topics),
        "seed {seed} final replay"
    );
}

trait Count {
    fn partition_count_of(&self, t: &str) -> i32;
}
impl Count for Topics {
    fn partition_count_of(&self, t: &str) -> i32 {
        self.0.borrow()[t].1
    }
}

#[test]
fn random_runs_keep_partitions_exclusive() {
    for seed in 1..=150 {
        run(seed, 250);
    }
}
