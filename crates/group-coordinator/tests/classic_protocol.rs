//! Classic group protocol scenarios with a fake clock.

use std::collections::BTreeMap;

use bytes::Bytes;
use gregor_group_coordinator::classic::GroupState;
use gregor_group_coordinator::records::encode_consumer_subscription;
use gregor_group_coordinator::*;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::{
    heartbeat_request::HeartbeatRequest,
    join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol},
    join_group_response::JoinGroupResponse,
    leave_group_request::{LeaveGroupRequest, MemberIdentity},
    sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment},
    sync_group_response::SyncGroupResponse,
    GroupId,
};
use kafka_protocol::protocol::StrBytes;

// Wire values the assertions compare against (`ErrorCode` is the one definition).
const NONE: i16 = ErrorCode::None.code();
const ILLEGAL_GENERATION: i16 = ErrorCode::IllegalGeneration.code();
const INCONSISTENT_GROUP_PROTOCOL: i16 = ErrorCode::InconsistentGroupProtocol.code();
const INVALID_GROUP_ID: i16 = ErrorCode::InvalidGroupId.code();
const UNKNOWN_MEMBER_ID: i16 = ErrorCode::UnknownMemberId.code();
const INVALID_SESSION_TIMEOUT: i16 = ErrorCode::InvalidSessionTimeout.code();
const REBALANCE_IN_PROGRESS: i16 = ErrorCode::RebalanceInProgress.code();
const MEMBER_ID_REQUIRED: i16 = ErrorCode::MemberIdRequired.code();
const GROUP_MAX_SIZE_REACHED: i16 = ErrorCode::GroupMaxSizeReached.code();
const FENCED_INSTANCE_ID: i16 = ErrorCode::FencedInstanceId.code();

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

struct H {
    gc: GroupCoordinator,
    now: i64,
    next_id: u64,
    responses: BTreeMap<u64, Response>,
    records: Vec<Record>,
}

#[derive(Clone)]
struct J<'a> {
    group: &'a str,
    member: &'a str,
    instance: Option<&'a str>,
    session: i32,
    rebalance: i32,
    version: i16,
    protocols: Vec<(&'a str, Vec<u8>)>,
    ptype: &'a str,
}

fn j<'a>(group: &'a str, member: &'a str) -> J<'a> {
    J {
        group,
        member,
        instance: None,
        session: 10_000,
        rebalance: 20_000,
        version: 9,
        protocols: vec![("range", encode_consumer_subscription(&["t1"]))],
        ptype: "consumer",
    }
}

impl H {
    fn new(delay: i64) -> H {
        let cfg = GroupConfig {
            initial_rebalance_delay_ms: delay,
            ..GroupConfig::default()
        };
        H {
            gc: GroupCoordinator::new(cfg, SequentialIds::default()),
            now: 1_000_000,
            next_id: 1,
            responses: BTreeMap::new(),
            records: Vec::new(),
        }
    }
    fn absorb(&mut self, out: Output) {
        self.records.extend(out.records);
        for (id, r) in out.responses {
            assert!(id < self.next_id, "response to an unknown request {id}");
            assert!(
                self.responses.insert(id, r).is_none(),
                "request {id} answered twice"
            );
        }
    }
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id - 1
    }
    fn join(&mut self, a: J<'_>) -> u64 {
        let id = self.id();
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(a.group)))
            .with_member_id(s(a.member))
            .with_group_instance_id(a.instance.map(s))
            .with_session_timeout_ms(a.session)
            .with_rebalance_timeout_ms(a.rebalance)
            .with_protocol_type(s(a.ptype))
            .with_protocols(
                a.protocols
                    .iter()
                    .map(|(n, m)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(n))
                            .with_metadata(Bytes::from(m.clone()))
                    })
                    .collect(),
            );
        let client = ClientInfo {
            client_id: "cli".into(),
            client_host: "/127.0.0.1".into(),
        };
        let out = self.gc.join_group(self.now, id, a.version, &client, req);
        self.absorb(out);
        id
    }
    fn join_resp(&mut self, id: u64) -> Option<JoinGroupResponse> {
        match self.responses.remove(&id) {
            Some(Response::JoinGroup(r)) => Some(r),
            None => None,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    /// Two-step join of a new dynamic member; returns (member id, pending join request).
    fn join_new(&mut self, a: J<'_>) -> (String, u64) {
        let id = self.join(a.clone());
        let r = self.join_resp(id).expect("immediate MEMBER_ID_REQUIRED");
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
        let mid = r.member_id.to_string();
        assert!(mid.starts_with("cli-"));
        let id2 = self.join(J { member: &mid, ..a });
        (mid, id2)
    }
    fn sync(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> u64 {
        let id = self.id();
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_protocol_type(Some(s("consumer")))
            .with_assignments(
                assignments
                    .iter()
                    .map(|(m, a)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(s(m))
                            .with_assignment(Bytes::copy_from_slice(a))
                    })
                    .collect(),
            );
        let out = self.gc.sync_group(self.now, id, 5, req);
        self.absorb(out);
        id
    }
    fn sync_resp(&mut self, id: u64) -> Option<SyncGroupResponse> {
        match self.responses.remove(&id) {
            Some(Response::SyncGroup(r)) => Some(r),
            None => None,
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    fn hb(&mut self, group: &str, member: &str, generation: i32, instance: Option<&str>) -> i16 {
        let id = self.id();
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_group_instance_id(instance.map(s));
        let out = self.gc.heartbeat(self.now, id, 4, req);
        self.absorb(out);
        match self.responses.remove(&id) {
            Some(Response::Heartbeat(r)) => r.error_code,
            other => panic!("unexpected {other:?}"),
        }
    }
    /// Advances the clock to `t`, firing every deadline on the way.
    fn run_until(&mut self, t: i64) {
        while let Some(d) = self.gc.next_deadline() {
            if d > t {
                break;
            }
            self.now = d.max(self.now);
            let out = self.gc.tick(self.now);
            self.absorb(out);
        }
        self.now = t;
        let out = self.gc.tick(self.now);
        self.absorb(out);
    }
    fn advance(&mut self, ms: i64) {
        let t = self.now + ms;
        self.run_until(t);
    }
    fn state(&self, g: &str) -> GroupState {
        self.gc.classic_groups().get(g).expect("group").state()
    }
}

#[test]
fn two_step_join_then_initial_delay() {
    let mut h = H::new(3000);
    let t0 = h.now;
    let (m1, jid) = h.join_new(j("g", ""));
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    h.run_until(t0 + 2999);
    assert!(
        h.join_resp(jid).is_none(),
        "answered before the initial delay"
    );
    h.run_until(t0 + 3000);
    let r = h
        .join_resp(jid)
        .expect("answered right at the initial delay");
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 1);
    assert_eq!(r.leader.as_str(), m1);
    assert_eq!(r.member_id.as_str(), m1);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(r.members.len(), 1);
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
    let sid = h.sync("g", &m1, 1, &[(&m1, b"A1")]);
    let sr = h.sync_resp(sid).unwrap();
    assert_eq!(sr.error_code, NONE);
    assert_eq!(&sr.assignment[..], b"A1");
    assert_eq!(sr.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.state("g"), GroupState::Stable);
    assert_eq!(h.hb("g", &m1, 1, None), NONE);
    // The rebalance was persisted on the leader's sync.
    assert!(h.records.iter().any(|r| r.value.is_some() && r.key[1] == 2));
}

#[test]
fn three_members_stable_then_session_expiry_rebalances() {
    let mut h = H::new(3000);
    let t0 = h.now;
    let (a, ja) = h.join_new(j("g", ""));
    let (b, jb) = h.join_new(j("g", ""));
    let (c, jc) = h.join_new(j("g", ""));
    // New members during the initial delay extend it once by another delay (InitialDelayedJoin).
    h.run_until(t0 + 3000);
    assert!(h.join_resp(ja).is_none());
    h.run_until(t0 + 6000);
    let ra = h.join_resp(ja).unwrap();
    let rb = h.join_resp(jb).unwrap();
    let rc = h.join_resp(jc).unwrap();
    for r in [&ra, &rb, &rc] {
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader.as_str(), a);
    }
    assert_eq!(ra.members.len(), 3);
    assert!(rb.members.is_empty() && rc.members.is_empty());
    let ids: Vec<&str> = ra.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec![a.as_str(), b.as_str(), c.as_str()]);
    // Followers wait for the leader.
    let sb_ = h.sync("g", &b, 1, &[]);
    let sc = h.sync("g", &c, 1, &[]);
    assert!(h.sync_resp(sb_).is_none());
    let sa = h.sync("g", &a, 1, &[(&a, b"pa"), (&b, b"pb")]);
    assert_eq!(&h.sync_resp(sa).unwrap().assignment[..], b"pa");
    assert_eq!(&h.sync_resp(sb_).unwrap().assignment[..], b"pb");
    let rc = h.sync_resp(sc).unwrap();
    assert_eq!(rc.error_code, NONE);
    assert!(rc.assignment.is_empty(), "no assignment means empty bytes");
    assert_eq!(h.state("g"), GroupState::Stable);
    // b and c heartbeat, a goes silent: a expires after its session timeout (10 s).
    for _ in 0..4 {
        h.advance(3000);
        if h.state("g") == GroupState::Stable {
            assert_eq!(h.hb("g", &b, 1, None), NONE);
            assert_eq!(h.hb("g", &c, 1, None), NONE);
        }
    }
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.hb("g", &b, 1, None), REBALANCE_IN_PROGRESS);
    assert_eq!(h.hb("g", &a, 1, None), UNKNOWN_MEMBER_ID);
    let jb2 = h.join(j("g", &b));
    assert!(h.join_resp(jb2).is_none());
    let jc2 = h.join(j("g", &c));
    // All remaining members rejoined: completes at once with a new generation.
    let rb2 = h.join_resp(jb2).unwrap();
    let rc2 = h.join_resp(jc2).unwrap();
    assert_eq!(rb2.generation_id, 2);
    assert_eq!(rb2.leader.as_str(), b);
    assert_eq!(rb2.members.len(), 2);
    assert!(rc2.members.is_empty());
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
}

#[test]
fn rebalance_timeout_removes_members_that_did_not_rejoin() {
    let mut h = H::new(0);
    let (a, ja) = h.join_new(j("g", ""));
    h.advance(0);
    assert_eq!(h.join_resp(ja).unwrap().generation_id, 1);
    let sa = h.sync("g", &a, 1, &[]);
    h.sync_resp(sa).unwrap();
    // b joins a Stable group: rebalance; a never rejoins (but keeps heartbeating).
    let (b, jb) = h.join_new(j("g", ""));
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    for _ in 0..6 {
        h.advance(3000);
        let _ = h.hb("g", &a, 1, None);
    }
    // Rebalance timeout (20 s) reached at +20s: a is removed, b is the new leader.
    h.advance(3000);
    let rb = h.join_resp(jb).expect("completed at the rebalance timeout");
    assert_eq!(rb.generation_id, 2);
    assert_eq!(rb.leader.as_str(), b);
    assert_eq!(rb.members.len(), 1);
    assert_eq!(h.hb("g", &a, 2, None), UNKNOWN_MEMBER_ID);
}

#[test]
fn sync_timeout_removes_followers_that_never_sync() {
    let mut h = H::new(0);
    let long = J {
        session: 60_000,
        rebalance: 10_000,
        ..j("g", "")
    };
    let (a, ja) = h.join_new(long.clone());
    let (b, jb) = h.join_new(long.clone());
    h.advance(0);
    h.join_resp(ja).unwrap();
    h.join_resp(jb).unwrap();
    let sa = h.sync("g", &a, 1, &[(&a, b"x")]);
    assert_eq!(h.sync_resp(sa).unwrap().error_code, NONE);
    h.advance(9_999);
    assert_eq!(h.state("g"), GroupState::Stable);
    h.advance(1);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    assert_eq!(h.hb("g", &b, 1, None), UNKNOWN_MEMBER_ID);
    assert_eq!(h.hb("g", &a, 1, None), REBALANCE_IN_PROGRESS);
    let ja2 = h.join(J { member: &a, ..long });
    let r = h.join_resp(ja2).unwrap();
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 1);
}

#[test]
fn unload_answers_waiting_requests_not_coordinator() {
    let mut h = H::new(0);
    // "g": Stable after the join; a follower's SyncGroup waits for the leader's.
    let (a, ja) = h.join_new(j("g", ""));
    let (b, jb) = h.join_new(j("g", ""));
    h.advance(0);
    assert_eq!(h.join_resp(ja).unwrap().leader.as_str(), a);
    h.join_resp(jb).unwrap();
    let sb = h.sync("g", &b, 1, &[]);
    assert!(h.sync_resp(sb).is_none(), "the follower waits");
    // "other": a JoinGroup waits for the rebalance.
    let (c, jc) = h.join_new(j("other", ""));
    assert!(h.join_resp(jc).is_none());
    let gc = std::mem::replace(
        &mut h.gc,
        GroupCoordinator::new(GroupConfig::default(), SequentialIds::default()),
    );
    let answers: BTreeMap<u64, Response> = gc.unload().into_iter().collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    match &answers[&sb] {
        Response::SyncGroup(r) => assert_eq!(r.error_code, ErrorCode::NotCoordinator.code()),
        other => panic!("{other:?}"),
    }
    match &answers[&jc] {
        Response::JoinGroup(r) => {
            assert_eq!(r.error_code, ErrorCode::NotCoordinator.code());
            assert_eq!(r.member_id.as_str(), c);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn member_that_never_syncs_expires_by_session() {
    let mut h = H::new(0);
    let short = J {
        session: 6_000,
        rebalance: 60_000,
        ..j("g", "")
    };
    let (a, ja) = h.join_new(short.clone());
    h.advance(0);
    h.join_resp(ja).unwrap();
    assert_eq!(h.state("g"), GroupState::CompletingRebalance);
    h.advance(6_000);
    // The only member expired: the group is Empty again and persisted as such.
    assert_eq!(h.state("g"), GroupState::Empty);
    assert_eq!(h.hb("g", &a, 1, None), UNKNOWN_MEMBER_ID);
    assert_eq!(h.gc.classic_groups().get("g").unwrap().generation(), 2);
}

#[test]
fn pending_member_expires_and_unblocks_rebalance() {
    let mut h = H::new(0);
    let (a, ja) = h.join_new(j("g", ""));
    h.advance(0);
    h.join_resp(ja).unwrap();
    let sa = h.sync("g", &a, 1, &[]);
    h.sync_resp(sa).unwrap();
    // A new member gets MEMBER_ID_REQUIRED and never comes back.
    let id = h.join(j("g", ""));
    assert_eq!(h.join_resp(id).unwrap().error_code, MEMBER_ID_REQUIRED);
    // a rejoins (e.g. leader-triggered rebalance): the join waits for the pending member.
    let ja2 = h.join(j("g", &a));
    assert!(h.join_resp(ja2).is_none());
    h.advance(10_000);
    let r = h
        .join_resp(ja2)
        .expect("pending member expired after its session timeout");
    assert_eq!(r.generation_id, 2);
}

#[test]
fn leave_group_batched() {
    let mut h = H::new(0);
    let (a, ja) = h.join_new(j("g", ""));
    let sid = h.join(J {
        instance: Some("inst-b"),
        ..j("g", "")
    });
    h.advance(0);
    let ra = h.join_resp(ja).unwrap();
    let rb = h.join_resp(sid).unwrap();
    let b = rb.member_id.to_string();
    assert!(b.starts_with("inst-b-"));
    assert_eq!(ra.members.len(), 2);
    let id = h.id();
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_members(vec![
            MemberIdentity::default().with_group_instance_id(Some(s("inst-b"))),
            MemberIdentity::default().with_member_id(s("nobody")),
            MemberIdentity::default()
                .with_member_id(s(&a))
                .with_group_instance_id(Some(s("wrong"))),
        ]);
    let out = h.gc.leave_group(h.now, id, 3, req);
    h.absorb(out);
    let Some(Response::LeaveGroup(r)) = h.responses.remove(&id) else {
        panic!()
    };
    let codes: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!(codes, vec![NONE, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]);
    assert_eq!(h.state("g"), GroupState::PreparingRebalance);
    // v0 single member leave.
    let id = h.id();
    let out = h.gc.leave_group(
        h.now,
        id,
        0,
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(&a)),
    );
    h.absorb(out);
    let Some(Response::LeaveGroup(r)) = h.responses.remove(&id) else {
        panic!()
    };
    assert_eq!(r.error_code, NONE);
    assert!(r.members.is_empty());
    // Nobody left: Empty and persisted.
    assert_eq!(h.state("g"), GroupState::Empty);
    let last = h.records.last().unwrap();
    assert_eq!(last.key[1], 2);
    let v = records::GroupMetadataValue::decode(last.value.as_ref().unwrap()).unwrap();
    assert!(v.members.is_empty());
}

#[test]
fn pending_join_of_removed_member_is_answered() {
    let mut h = H::new(0);
    let (a, ja) = h.join_new(j("g", ""));
    let (b, jb) = h.join_new(j("g", ""));
    h.advance(0);
    h.join_resp(ja).unwrap();
    h.join_resp(jb).unwrap();
    let s1 = h.sync("g", &b, 1, &[]);
    // A rejoin with the same metadata in CompletingRebalance just gets the current generation.
    let same = h.join(j("g", &a));
    let r = h.join_resp(same).unwrap();
    assert_eq!((r.generation_id, r.members.len()), (1, 2));
    // a (leader) rejoins with new metadata: rebalance; b's pending sync is answered.
    let ja2 = h.join(J {
        protocols: vec![("range", encode_consumer_subscription(&["t1", "t2"]))],
        ..j("g", &a)
    });
    assert_eq!(h.sync_resp(s1).unwrap().error_code, REBALANCE_IN_PROGRESS);
    assert!(h.join_resp(ja2).is_none());
    // a leaves while its join is pending: the join gets UNKNOWN_MEMBER_ID.
    let id = h.id();
    let out = h.gc.leave_group(
        h.now,
        id,
        1,
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(&a)),
    );
    h.absorb(out);
    assert_eq!(h.join_resp(ja2).unwrap().error_code, UNKNOWN_MEMBER_ID);
    let jb2 = h.join(j("g", &b));
    let r = h.join_resp(jb2).unwrap();
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.leader.as_str(), b);
}

#[test]
fn static_member_restart_without_rebalance_fences_old_id() {
    let mut h = H::new(0);
    let sa = J {
        instance: Some("ia"),
        ..j("g", "")
    };
    let sbj = J {
        instance: Some("ib"),
        ..j("g", "")
    };
    let ja = h.join(sa.clone());
    let jb = h.join(sbj.clone());
    h.advance(0);
    let ra = h.join_resp(ja).unwrap();
    let rb = h.join_resp(jb).unwrap();
    let a = ra.member_id.to_string();
    let b = rb.member_id.to_string();
    assert_eq!(ra.leader.as_str(), a);
    let s1 = h.sync("g", &a, 1, &[(&a, b"pa"), (&b, b"pb")]);
    let s2 = h.sync("g", &b, 1, &[]);
    h.sync_resp(s1).unwrap();
    h.sync_resp(s2).unwrap();
    let nrec = h.records.len();
    // b restarts: unknown member id, same instance id, same protocols.
    let jb2 = h.join(sbj.clone());
    let r = h.join_resp(jb2).expect("answered at once");
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.generation_id, 1);
    assert_ne!(r.member_id.as_str(), b);
    assert!(r.members.is_empty());
    assert!(!r.skip_assignment);
    let b2 = r.member_id.to_string();
    assert_eq!(h.state("g"), GroupState::Stable);
    assert_eq!(h.records.len(), nrec + 1, "group metadata persisted");
    // Old id is fenced; the new one syncs and gets the old assignment.
    assert_eq!(h.hb("g", &b, 1, Some("ib")), FENCED_INSTANCE_ID);
    assert_eq!(h.hb("g", &b2, 1, Some("ib")), NONE);
    let s3 = h.sync("g", &b2, 1, &[]);
    assert_eq!(&h.sync_resp(s3).unwrap().assignment[..], b"pb");
    // The leader restarts: it gets the member list with skip_assignment (v9).
    let ja2 = h.join(sa.clone());
    let r = h.join_resp(ja2).unwrap();
    assert_eq!(r.generation_id, 1);
    assert!(r.skip_assignment);
    assert_eq!(r.leader, r.member_id);
    assert_eq!(r.members.len(), 2);
    assert_eq!(h.state("g"), GroupState::Stable);
}

#[test]
fn join_errors() {
    let mut h = H::new(0);
    let id = h.join(j("", ""));
    assert_eq!(h.join_resp(id).unwrap().error_code, INVALID_GROUP_ID);
    let id = h.join(J {
        session: 1000,
        ..j("g", "")
    });
    assert_eq!(h.join_resp(id).unwrap().error_code, INVALID_SESSION_TIMEOUT);
    let id = h.join(j("g", "ghost"));
    assert_eq!(h.join_resp(id).unwrap().error_code, UNKNOWN_MEMBER_ID);
    assert!(h.gc.classic_groups().get("g").is_none());
    let (a, ja) = h.join_new(j("g", ""));
    h.advance(0);
    h.join_resp(ja).unwrap();
    let id = h.join(J {
        ptype: "connect",
        ..j("g", "")
    });
    assert_eq!(
        h.join_resp(id).unwrap().error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let id = h.join(J {
        protocols: vec![("roundrobin", vec![])],
        ..j("g", "")
    });
    assert_eq!(
        h.join_resp(id).unwrap().error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    // Heartbeat / sync errors.
    assert_eq!(h.hb("g", "nobody", 1, None), UNKNOWN_MEMBER_ID);
    assert_eq!(h.hb("g", &a, 7, None), ILLEGAL_GENERATION);
    assert_eq!(h.hb("nogroup", &a, 1, None), UNKNOWN_MEMBER_ID);
    let sid = h.sync("g", &a, 9, &[]);
    assert_eq!(h.sync_resp(sid).unwrap().error_code, ILLEGAL_GENERATION);
    let sid = h.sync("g", "nobody", 1, &[]);
    assert_eq!(h.sync_resp(sid).unwrap().error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn old_versions_and_group_max_size() {
    let mut h = H::new(0);
    h.gc = GroupCoordinator::new(
        GroupConfig {
            initial_rebalance_delay_ms: 0,
            max_group_size: 1,
            ..GroupConfig::default()
        },
        SequentialIds::default(),
    );
    // v0: no MEMBER_ID_REQUIRED step, no protocol_type field in the response.
    let id = h.join(J {
        version: 0,
        ..j("g", "")
    });
    h.advance(0);
    let r = h.join_resp(id).unwrap();
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.protocol_type, None);
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let a = r.member_id.to_string();
    let sid = h.sync("g", &a, 1, &[]);
    h.sync_resp(sid).unwrap();
    let id = h.join(J {
        version: 0,
        ..j("g", "")
    });
    assert_eq!(h.join_resp(id).unwrap().error_code, GROUP_MAX_SIZE_REACHED);
}
