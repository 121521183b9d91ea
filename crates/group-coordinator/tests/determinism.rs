//! Determinism: a coordinator's outputs are a function of its inputs (replayed records,
//! requests, `now_ms`, injected ids). A scripted mix of classic joins/syncs/heartbeats/leaves,
//! KIP-848 heartbeats (including v0 joins whose member ids the coordinator makes up), offset
//! commits, transactional offset commits with their markers, admin calls and timers is run
//!
//! 1. twice from scratch with the same seeded ids: identical transcripts (every record and
//!    every response);
//! 2. then the first run's records are replayed into fresh coordinators, which must describe
//!    the same groups and offsets as the live one, and which, given the same second-phase
//!    requests, times and ids as the live coordinator, answer exactly as it does.

mod consumer_support;

use std::collections::BTreeMap;

use bytes::Bytes;
use consumer_support::{Client, Topics};
use gregor_group_coordinator::records::encode_consumer_subscription;
use gregor_group_coordinator::*;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::{
    consumer_group_describe_request::ConsumerGroupDescribeRequest,
    delete_groups_request::DeleteGroupsRequest,
    describe_groups_request::DescribeGroupsRequest,
    heartbeat_request::HeartbeatRequest,
    join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol},
    join_group_response::JoinGroupResponse,
    leave_group_request::{LeaveGroupRequest, MemberIdentity},
    list_groups_request::ListGroupsRequest,
    offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    },
    offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup},
    sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment},
    txn_offset_commit_request::{
        TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    },
    GroupId, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

const CLASSIC: &str = "classic-g";
const KIP848: &str = "kip848-g";
const SIMPLE: &str = "simple-g";
const SEED: u64 = 42;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 500,
        offsets_retention_ms: 300_000,
        ..GroupConfig::default()
    }
}

fn cluster() -> Topics {
    Topics::with(&[("t", 4), ("u", 2)])
}

/// What the broker would have appended to `__consumer_offsets`, in order.
#[derive(Debug, Clone)]
enum Logged {
    Plain(Record),
    /// A record of a transactional batch of a producer.
    Txn(i64, Record),
    /// A transaction marker of a producer, in the partition of a group.
    Marker(i64, bool, String),
}

/// Seeded ids that remember how many they handed out (to line up a replayed coordinator's
/// generator with the live one's).
#[derive(Debug)]
struct Counted {
    inner: SeededIds,
    drawn: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl IdGenerator for Counted {
    fn next_uuid(&mut self) -> Uuid {
        self.drawn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.next_uuid()
    }
}

/// `SeededIds::new(seed)` after `skip` ids.
fn seeded_after(seed: u64, skip: usize) -> SeededIds {
    let mut ids = SeededIds::new(seed);
    for _ in 0..skip {
        ids.next_uuid();
    }
    ids
}

/// A coordinator under a script: every output goes to the transcript, records to the log.
struct Run {
    gc: GroupCoordinator,
    topics: Topics,
    now: i64,
    next_request: RequestId,
    transcript: Vec<String>,
    log: Vec<Logged>,
    pending: BTreeMap<RequestId, Response>,
    drawn: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Member ids and generations the first phase ends with.
#[derive(Debug, Clone)]
struct Names {
    classic: Vec<String>,
    generation: i32,
    kip848: Vec<Client>,
}

impl Run {
    fn new(ids: SeededIds) -> Run {
        let drawn = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ids = Counted {
            inner: ids,
            drawn: drawn.clone(),
        };
        Run {
            gc: GroupCoordinator::new(config(), ids),
            topics: cluster(),
            now: 1_000,
            next_request: 1,
            transcript: Vec::new(),
            log: Vec::new(),
            pending: BTreeMap::new(),
            drawn,
        }
    }

    /// A fresh coordinator that replays `log` (as the broker loads a partition) at `now`; its
    /// caller numbers requests from `next_request` on.
    fn replayed(log: &[Logged], ids: SeededIds, now: i64, next_request: RequestId) -> Run {
        let mut r = Run::new(ids);
        r.next_request = next_request;
        for entry in log {
            match entry {
                Logged::Plain(rec) => r.gc.replay(&rec.key, rec.value.as_deref()).unwrap(),
                Logged::Txn(pid, rec) => {
                    r.gc.replay_txn_record(*pid, &rec.key, rec.value.as_deref())
                        .unwrap()
                }
                Logged::Marker(pid, commit, _) => r.gc.replay_txn_marker(*pid, *commit),
            }
        }
        r.gc.finish_replay(now);
        r.now = now;
        r.log = log.to_vec();
        r
    }

    fn note(&mut self, what: String) {
        self.transcript.push(format!("@{} {what}", self.now));
    }

    fn records(&mut self, what: &str, records: Vec<Record>) {
        // Nothing to note for an idle tick (a freshly loaded coordinator ticks once more).
        if records.is_empty() {
            return;
        }
        self.note(format!("{what} records {records:?}"));
        self.log.extend(records.into_iter().map(Logged::Plain));
    }

    fn output(&mut self, what: &str, out: Output) {
        self.records(what, out.records);
        for (id, resp) in out.responses {
            self.note(format!("{what} answers #{id}: {resp:?}"));
            assert!(
                self.pending.insert(id, resp).is_none(),
                "#{id} answered twice"
            );
        }
    }

    fn request_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request - 1
    }

    fn take_join(&mut self, id: RequestId) -> JoinGroupResponse {
        match self.pending.remove(&id) {
            Some(Response::JoinGroup(r)) => r,
            other => panic!("join #{id}: {other:?}"),
        }
    }

    fn tick_to(&mut self, t: i64) {
        while let Some(d) = self.gc.next_deadline() {
            if d > t {
                break;
            }
            self.now = d.max(self.now);
            let out = self.gc.tick(self.now);
            self.output("tick", out);
        }
        self.now = t;
        let out = self.gc.tick(t);
        self.output("tick", out);
    }

    fn join(&mut self, client: &str, member: &str, instance: Option<&str>) -> RequestId {
        let id = self.request_id();
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(CLASSIC)))
            .with_member_id(s(member))
            .with_group_instance_id(instance.map(s))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(60_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from(encode_consumer_subscription(&["t"])))]);
        let info = ClientInfo {
            client_id: client.into(),
            client_host: "/127.0.0.1".into(),
        };
        let out = self.gc.join_group(self.now, id, 5, &info, req);
        self.output("join", out);
        id
    }

    /// A new dynamic member: MEMBER_ID_REQUIRED with a made-up id, then the real join.
    fn join_new(&mut self, client: &str) -> (String, RequestId) {
        let first = self.join(client, "", None);
        let r = self.take_join(first);
        assert_eq!(r.error_code, ErrorCode::MemberIdRequired.code());
        let member = r.member_id.to_string();
        (member.clone(), self.join(client, &member, None))
    }

    fn sync(&mut self, member: &str, generation: i32, assignments: &[String]) -> RequestId {
        let id = self.request_id();
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(CLASSIC)))
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_assignments(
                assignments
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::from(vec![i as u8; 3]))
                    })
                    .collect(),
            );
        let out = self.gc.sync_group(self.now, id, 3, req);
        self.output("sync", out);
        id
    }

    fn heartbeat(&mut self, member: &str, generation: i32) {
        let id = self.request_id();
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s(CLASSIC)))
            .with_member_id(s(member))
            .with_generation_id(generation);
        let out = self.gc.heartbeat(self.now, id, 4, req);
        self.output("heartbeat", out);
    }

    fn leave(&mut self, member: &str) {
        let id = self.request_id();
        let req = LeaveGroupRequest::default()
            .with_group_id(GroupId(s(CLASSIC)))
            .with_members(vec![MemberIdentity::default().with_member_id(s(member))]);
        let out = self.gc.leave_group(self.now, id, 3, req);
        self.output("leave", out);
    }

    /// Runs a whole classic rebalance: every member (re)joins, the leader assigns, all sync.
    fn rebalance(&mut self, joins: Vec<(String, RequestId)>) -> (Vec<String>, i32) {
        let mut generation = -1;
        let mut leader = String::new();
        let mut members = Vec::new();
        for (member, id) in joins {
            let r = self.take_join(id);
            assert_eq!(r.error_code, 0, "{r:?}");
            generation = r.generation_id;
            leader = r.leader.to_string();
            members.push(member);
        }
        let syncs: Vec<RequestId> = members
            .iter()
            .map(|m| {
                let assign = if *m == leader {
                    members.clone()
                } else {
                    vec![]
                };
                self.sync(m, generation, &assign)
            })
            .collect();
        for id in syncs {
            match self.pending.remove(&id) {
                Some(Response::SyncGroup(r)) => assert_eq!(r.error_code, 0),
                other => panic!("sync #{id}: {other:?}"),
            }
        }
        (members, generation)
    }

    fn commit(&mut self, group: &str, member: &str, generation: i32, version: i16, offset: i64) {
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_generation_id_or_member_epoch(generation)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(
                    (0..2)
                        .map(|p| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset + i64::from(p))
                                .with_committed_metadata(Some(s("m")))
                        })
                        .collect(),
                )]);
        let (records, resp) = self.gc.offset_commit(self.now, version, req, &self.topics);
        self.note(format!("commit {resp:?}"));
        self.records("commit", records);
    }

    fn txn_commit(&mut self, producer: i64, member: &str, generation: i32, offset: i64) {
        let req = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_group_id(GroupId(s(CLASSIC)))
            .with_producer_id(ProducerId(producer))
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("u")))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(offset)])]);
        let (records, resp) = self.gc.txn_offset_commit(self.now, 3, req, &self.topics);
        self.note(format!("txn commit {resp:?} records {records:?}"));
        self.log
            .extend(records.into_iter().map(|r| Logged::Txn(producer, r)));
    }

    fn marker(&mut self, producer: i64, commit: bool) {
        self.gc.complete_txn(producer, commit);
        self.note(format!("marker {producer} commit={commit}"));
        self.log
            .push(Logged::Marker(producer, commit, CLASSIC.to_string()));
    }

    fn kip848(&mut self, client: &mut Client, version: i16) {
        let info = ClientInfo {
            client_id: format!("client-{}", client.topics.join("+")),
            client_host: "/127.0.0.2".into(),
        };
        let (records, resp) = self.gc.consumer_group_heartbeat(
            self.now,
            version,
            &info,
            client.request(),
            &self.topics,
        );
        self.note(format!("kip848 {resp:?}"));
        self.records("kip848", records);
        client.apply(&resp);
    }

    fn converge(&mut self, clients: &mut [Client]) {
        for _ in 0..6 {
            for c in clients.iter_mut() {
                self.kip848(c, 1);
            }
        }
    }

    /// Everything a client can read back: group descriptions, listings, offsets.
    fn snapshot(&self) -> String {
        self.snapshot_of(&[CLASSIC, KIP848, SIMPLE, "unknown"])
    }

    /// What a client can read back about `groups`.
    fn snapshot_of(&self, groups: &[&str]) -> String {
        let describe = self.gc.describe_groups(
            5,
            &DescribeGroupsRequest::default()
                .with_groups(groups.iter().map(|g| GroupId(s(g))).collect()),
        );
        let mut cdescribe = ConsumerGroupDescribeRequest::default();
        cdescribe.group_ids = groups.iter().map(|g| GroupId(s(g))).collect();
        let cdescribe = self.gc.consumer_group_describe(1, &cdescribe, &self.topics);
        let mut list = self.gc.list_groups(5, &ListGroupsRequest::default());
        list.groups
            .retain(|g| groups.contains(&g.group_id.as_str()));
        let fetch = self.gc.offset_fetch(
            self.now,
            8,
            &OffsetFetchRequest::default()
                .with_require_stable(true)
                .with_groups(
                    groups
                        .iter()
                        .map(|g| OffsetFetchRequestGroup::default().with_group_id(GroupId(s(g))))
                        .collect(),
                ),
            &self.topics,
        );
        format!("{describe:?}\n{cdescribe:?}\n{list:?}\n{fetch:?}")
    }
}

/// Phase 1: groups form, commit, and settle (no rebalance or transaction left open).
fn phase1(r: &mut Run) -> Names {
    // Classic: two dynamic members (ids made up by the coordinator), one static member.
    let (m1, j1) = r.join_new("c1");
    let (m2, j2) = r.join_new("c2");
    let j3 = r.join("c3", "", Some("static-3"));
    r.tick_to(r.now + 2_000);
    let m3 = {
        let resp = r.take_join(j3);
        let id = resp.member_id.to_string();
        assert!(id.starts_with("static-3-"), "{id}");
        r.pending.insert(j3, Response::JoinGroup(resp));
        id
    };
    let (classic, generation) =
        r.rebalance(vec![(m1.clone(), j1), (m2.clone(), j2), (m3.clone(), j3)]);
    for m in &classic {
        r.heartbeat(m, generation);
    }
    r.commit(CLASSIC, &m1, generation, 8, 100);
    r.commit(SIMPLE, "", -1, 8, 7);

    // KIP-848: a v0 member without an id (the coordinator makes one up) and a v1 member.
    r.now += 100;
    let mut kip = vec![
        Client::new(KIP848, "", &["t"]),
        Client::new(KIP848, "k2", &["t", "u"]),
    ];
    r.kip848(&mut kip[0], 0);
    assert_eq!(kip[0].id.len(), 22, "a made-up Kafka uuid: {:?}", kip[0].id);
    r.converge(&mut kip);
    let (k1, epoch) = (kip[0].id.clone(), kip[0].epoch);
    r.commit(KIP848, &k1, epoch, 9, 500);

    // Transactional offsets: one committed, one aborted.
    r.now += 100;
    r.txn_commit(77, &m2, generation, 70);
    r.txn_commit(78, &m3, generation, 80);
    r.marker(77, true);
    r.marker(78, false);
    r.tick_to(r.now + 1_000);
    for m in &classic {
        r.heartbeat(m, generation);
    }
    r.converge(&mut kip);
    Names {
        classic,
        generation,
        kip848: kip,
    }
}

/// Phase 2: membership changes (with made-up ids), leaves, admin calls, expiry, retention.
fn phase2(r: &mut Run, names: &Names) {
    let Names {
        classic,
        generation,
        kip848,
    } = names.clone();
    let mut kip = kip848;
    r.tick_to(r.now + 10);
    for m in &classic {
        r.heartbeat(m, generation);
    }
    r.converge(&mut kip);
    // A fourth classic member joins: everyone rejoins.
    let (m4, j4) = r.join_new("c4");
    let mut joins: Vec<(String, RequestId)> = classic
        .iter()
        .map(|m| {
            r.heartbeat(m, generation);
            let id = r.join("c", m, m.starts_with("static-3-").then_some("static-3"));
            (m.clone(), id)
        })
        .collect();
    joins.push((m4, j4));
    let (members, generation) = r.rebalance(joins);
    for m in &members {
        r.heartbeat(m, generation);
    }
    r.leave(&members[1]);
    let joins: Vec<(String, RequestId)> = members
        .iter()
        .filter(|m| **m != members[1])
        .map(|m| {
            let id = r.join("c", m, m.starts_with("static-3-").then_some("static-3"));
            (m.clone(), id)
        })
        .collect();
    let (members, generation) = r.rebalance(joins);
    r.commit(CLASSIC, &members[0], generation, 8, 200);
    // KIP-848: another v0 member without an id; k2 leaves.
    kip.push(Client::new(KIP848, "", &["u"]));
    let last = kip.len() - 1;
    r.kip848(&mut kip[last], 0);
    r.converge(&mut kip);
    let mut leave = kip.remove(1);
    leave.epoch = -1;
    r.kip848(&mut leave, 1);
    r.converge(&mut kip);
    let snapshot = r.snapshot();
    r.note(format!("snapshot {snapshot}"));
    let (records, resp) = r.gc.delete_groups(
        r.now,
        2,
        &DeleteGroupsRequest::default()
            .with_groups_names(vec![GroupId(s(CLASSIC)), GroupId(s(SIMPLE))]),
    );
    r.note(format!("delete {resp:?}"));
    r.records("delete", records);
    // Everyone goes silent: sessions expire, then offsets and empty groups are retired.
    r.tick_to(r.now + 120_000);
    r.tick_to(r.now + 1_000_000);
    let snapshot = r.snapshot();
    r.note(format!("snapshot {snapshot}"));
}

#[test]
fn same_inputs_same_outputs() {
    let mut a = Run::new(SeededIds::new(SEED));
    let names_a = phase1(&mut a);
    phase2(&mut a, &names_a);
    let mut b = Run::new(SeededIds::new(SEED));
    let names_b = phase1(&mut b);
    phase2(&mut b, &names_b);
    assert_eq!(format!("{names_a:?}"), format!("{names_b:?}"));
    assert_eq!(a.transcript.len(), b.transcript.len());
    for (x, y) in a.transcript.iter().zip(&b.transcript) {
        assert_eq!(x, y);
    }
    assert!(a.drawn.load(std::sync::atomic::Ordering::Relaxed) >= 5);

    // The ids really flow into the outputs: another seed, another transcript.
    let mut c = Run::new(SeededIds::new(SEED + 1));
    let names_c = phase1(&mut c);
    assert_ne!(names_c.classic, names_a.classic);
    assert_ne!(c.transcript[..], a.transcript[..c.transcript.len()]);
}

#[test]
fn replay_then_same_inputs_same_outputs() {
    let mut live = Run::new(SeededIds::new(SEED));
    let names = phase1(&mut live);
    let drawn = live.drawn.load(std::sync::atomic::Ordering::Relaxed);
    let log = live.log.clone();
    let (now, next_request) = (live.now, live.next_request);
    assert!(log.iter().any(|l| matches!(l, Logged::Txn(..))));

    // Two coordinators load the partition: the same state as the live one.
    let mut x = Run::replayed(&log, seeded_after(SEED, drawn), now, next_request);
    let mut y = Run::replayed(&log, seeded_after(SEED, drawn), now, next_request);
    assert_eq!(x.snapshot(), live.snapshot());
    assert_eq!(y.snapshot(), live.snapshot());

    // Same requests, times and ids after the load: the same answers, also as the live one.
    let live_mark = live.transcript.len();
    phase2(&mut live, &names);
    phase2(&mut x, &names);
    phase2(&mut y, &names);
    let live_tail = &live.transcript[live_mark..];
    assert_eq!(x.transcript.len(), live_tail.len());
    for ((l, a), b) in live_tail.iter().zip(&x.transcript).zip(&y.transcript) {
        assert_eq!(a, b, "two replayed coordinators disagree");
        assert_eq!(a, l, "a replayed coordinator disagrees with the live one");
    }

    // And replaying everything the live one wrote rebuilds its final state.
    let z = Run::replayed(&live.log, SeededIds::new(0), live.now, 1);
    assert_eq!(z.snapshot(), live.snapshot());
}

#[test]
fn shards_hold_only_their_groups() {
    // The broker runs one coordinator per __consumer_offsets partition.
    const PARTITIONS: i32 = 50;
    let mut live = Run::new(SeededIds::new(SEED));
    phase1(&mut live);
    let groups = [CLASSIC, KIP848, SIMPLE];
    let shard_of = |g: &str| partition_for(g, PARTITIONS);
    let shards: std::collections::BTreeSet<i32> = groups.iter().map(|g| shard_of(g)).collect();
    assert!(
        shards.len() > 1,
        "the groups must not all share a partition"
    );
    for shard in shards {
        // Only this partition's records (and markers) reach this shard.
        let log: Vec<Logged> = live
            .log
            .iter()
            .filter(|l| match l {
                Logged::Plain(r) | Logged::Txn(_, r) => shard_of(&r.group_id) == shard,
                Logged::Marker(_, _, g) => shard_of(g) == shard,
            })
            .cloned()
            .collect();
        let replayed = Run::replayed(&log, SeededIds::new(0), live.now, 1);
        for g in groups {
            let expect = if shard_of(g) == shard {
                live.snapshot_of(&[g])
            } else {
                Run::new(SeededIds::new(0)).snapshot_of(&[g])
            };
            assert_eq!(
                replayed.snapshot_of(&[g]),
                expect,
                "group {g} in shard {shard}"
            );
            let listed = replayed
                .gc
                .list_groups(5, &ListGroupsRequest::default())
                .groups
                .iter()
                .any(|l| l.group_id.as_str() == g);
            assert_eq!(listed, shard_of(g) == shard, "{g} in shard {shard}");
        }
    }
}
