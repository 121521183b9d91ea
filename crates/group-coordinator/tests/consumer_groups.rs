//! KIP-848 consumer groups: scenarios with a fake clock and a fake cluster.

mod consumer_support;

use consumer_support::*;
use gregor_group_coordinator::consumer::ConsumerGroups;
use gregor_group_coordinator::SequentialIds;
use gregor_group_coordinator::{GroupConfig, Record};
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::GroupId;

const G: &str = "g1";

fn parts(topics: &Topics, t: &str, p: &[i32]) -> Owned {
    let mut o = Owned::new();
    o.insert(topics.id(t), p.iter().copied().collect());
    o
}

#[test]
fn single_member_gets_all_partitions() {
    let topics = Topics::with(&[("t", 6)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut a = Client::new(G, "member-a", &["t"]);
    let r = a.heartbeat(&mut cg, 0, &topics, &mut log, &mut ids);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 5000);
    assert_eq!(r.member_id.as_ref().unwrap().as_str(), "member-a");
    assert_eq!(
        assignment_of(&r).unwrap(),
        parts(&topics, "t", &[0, 1, 2, 3, 4, 5])
    );
    assert!(cg.contains(G));
    assert!(!cg.is_empty(G));
    let d = describe(&cg, G, &topics);
    assert_eq!(d.group_state.as_str(), "Stable");
    assert_eq!((d.group_epoch, d.assignment_epoch), (1, 1));
    assert_eq!(d.assignor_name.as_str(), "uniform");
    // A plain heartbeat without changes carries no assignment.
    let r = a.heartbeat(&mut cg, 100, &topics, &mut log, &mut ids);
    assert_eq!(r.error_code, 0);
    assert!(r.assignment.is_none());
    assert_eq!(r.member_epoch, 1);
    // Records: member metadata, group epoch, target member, target epoch, current assignment.
    let types: Vec<i16> = log
        .iter()
        .map(|r| i16::from_be_bytes([r.key[0], r.key[1]]))
        .collect();
    assert_eq!(types, vec![5, 3, 7, 6, 8]);
    assert!(log.iter().all(|r| r.group_id == G));
}

#[test]
fn v0_join_generates_member_id() {
    let topics = Topics::with(&[("t", 2)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let (_, r) = cg.heartbeat(
        0,
        0,
        &Default::default(),
        join_req(G, "", &["t"]),
        &topics,
        &mut ids,
    );
    assert_eq!(r.error_code, 0);
    let id = r.member_id.unwrap().to_string();
    assert_eq!(id.len(), 22);
    // v1 requires a client-generated member id.
    let (records, r) = cg.heartbeat(
        0,
        1,
        &Default::default(),
        join_req(G, "", &["t"]),
        &topics,
        &mut ids,
    );
    assert_eq!(r.error_code, ErrorCode::InvalidRequest.code());
    assert!(records.is_empty());
}

#[test]
fn second_member_triggers_revocation_then_uniform_split() {
    let topics = Topics::with(&[("t", 6)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut a = Client::new(G, "a", &["t"]);
    let mut b = Client::new(G, "b", &["t"]);
    a.heartbeat(&mut cg, 0, &topics, &mut log, &mut ids);
    assert_eq!(count(&a.owned), 6);

    // b joins: group epoch 2, its target partitions are still owned by a (unreleased).
    let r = b.heartbeat(&mut cg, 10, &topics, &mut log, &mut ids);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(count(&assignment_of(&r).unwrap()), 0);
    let d = describe(&cg, G, &topics);
    assert_eq!(d.group_state.as_str(), "Reconciling");
    assert_eq!(d.group_epoch, 2);

    // a must revoke first: same epoch, shrunk assignment.
    let r = a.heartbeat(&mut cg, 20, &topics, &mut log, &mut ids);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(assignment_of(&r).unwrap(), parts(&topics, "t", &[0, 1, 2]));
    // b still waits.
    let r = b.heartbeat(&mut cg, 30, &topics, &mut log, &mut ids);
    assert!(r.assignment.is_none());
    assert_eq!(count(&b.owned), 0);
    // a acknowledges the revocation and moves to epoch 2.
    let r = a.heartbeat(&mut cg, 40, &topics, &mut log, &mut ids);
    assert_eq!(r.member_epoch, 2);
    assert!(r.assignment.is_none());
    // b now gets the released partitions.
    let r = b.heartbeat(&mut cg, 50, &topics, &mut log, &mut ids);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(assignment_of(&r).unwrap(), parts(&topics, "t", &[3, 4, 5]));
    let d = describe(&cg, G, &topics);
    assert_eq!(d.group_state.as_str(), "Stable");
    current_owners(&d);
    for m in &d.members {
        assert_eq!(m.member_epoch, 2);
        assert_eq!(m.assignment, m.target_assignment);
        assert_eq!(m.member_type, 1);
    }
}

#[test]
fn range_assignor_layout() {
    let topics = Topics::with(&[("x", 4), ("y", 4)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut clients = vec![
        Client::new(G, "a", &["x", "y"]),
        Client::new(G, "b", &["x", "y"]),
    ];
    for c in clients.iter_mut() {
        let mut req = c.request();
        req.server_assignor = Some(s("range"));
        let (records, r) = cg.heartbeat(0, 1, &Default::default(), req, &topics, &mut ids);
        log.extend(records);
        c.apply(&r);
    }
    assert!(converge(
        &mut cg,
        &mut clients,
        0,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    let d = describe(&cg, G, &topics);
    assert_eq!(d.assignor_name.as_str(), "range");
    let mut expect_a = parts(&topics, "x", &[0, 1]);
    expect_a.extend(parts(&topics, "y", &[0, 1]));
    let mut expect_b = parts(&topics, "x", &[2, 3]);
    expect_b.extend(parts(&topics, "y", &[2, 3]));
    assert_eq!(clients[0].owned, expect_a);
    assert_eq!(clients[1].owned, expect_b);

    // A third member: per topic 4 partitions / 3 members.
    let mut c = Client::new(G, "c", &["x", "y"]);
    c.heartbeat(&mut cg, 1, &topics, &mut log, &mut ids);
    clients.push(c);
    assert!(converge(
        &mut cg,
        &mut clients,
        1,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    let sizes: Vec<usize> = clients.iter().map(|c| count(&c.owned)).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 8);
    assert!(sizes.iter().all(|n| (2..=4).contains(n)), "{sizes:?}");
    current_owners(&describe(&cg, G, &topics));
}

#[test]
fn member_leave_gives_everything_to_the_rest() {
    let topics = Topics::with(&[("t", 6)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut clients = vec![Client::new(G, "a", &["t"]), Client::new(G, "b", &["t"])];
    assert!(converge(
        &mut cg,
        &mut clients,
        0,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    assert_eq!(count(&clients[0].owned), 3);
    assert_eq!(count(&clients[1].owned), 3);
    let epoch = describe(&cg, G, &topics).group_epoch;

    let (records, r) = cg.heartbeat(
        5,
        1,
        &Default::default(),
        hb_req(G, "b", clients[1].epoch, None).tap(|r| r.member_epoch = -1),
        &topics,
        &mut ids,
    );
    log.extend(records);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, -1);
    let d = describe(&cg, G, &topics);
    assert_eq!(d.group_epoch, epoch + 1);
    assert_eq!(d.group_state.as_str(), "Assigning");
    assert_eq!(d.members.len(), 1);

    let a = &mut clients[0];
    let r = a.heartbeat(&mut cg, 6, &topics, &mut log, &mut ids);
    assert_eq!(r.member_epoch, epoch + 1);
    assert_eq!(
        assignment_of(&r).unwrap(),
        parts(&topics, "t", &[0, 1, 2, 3, 4, 5])
    );
    assert_eq!(describe(&cg, G, &topics).group_state.as_str(), "Stable");

    // Last member leaves: Empty, epochs aligned.
    let mut req = hb_req(G, "a", a.epoch, None);
    req.member_epoch = -1;
    let (records, r) = cg.heartbeat(7, 1, &Default::default(), req, &topics, &mut ids);
    log.extend(records);
    assert_eq!(r.error_code, 0);
    let d = describe(&cg, G, &topics);
    assert_eq!(d.group_state.as_str(), "Empty");
    assert_eq!(d.group_epoch, d.assignment_epoch);
    assert!(cg.is_empty(G));
    // Leaving again: unknown member.
    let mut req = hb_req(G, "a", -1, None);
    req.member_epoch = -1;
    assert_eq!(
        cg.heartbeat(8, 1, &Default::default(), req, &topics, &mut ids)
            .1
            .error_code,
        ErrorCode::UnknownMemberId.code()
    );
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl<T> Tap for T {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[test]
fn session_expiry_removes_member() {
    let topics = Topics::with(&[("t", 4)]);
    let cfg = GroupConfig {
        consumer_session_timeout_ms: 10_000,
        ..config()
    };
    let mut cg = ConsumerGroups::new(&cfg);
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut clients = vec![Client::new(G, "a", &["t"]), Client::new(G, "b", &["t"])];
    assert!(converge(
        &mut cg,
        &mut clients,
        0,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    assert_eq!(cg.next_deadline(), Some(10_000));
    // a keeps heartbeating, b goes silent.
    clients[0].heartbeat(&mut cg, 6_000, &topics, &mut log, &mut ids);
    assert!(cg.tick(9_999).is_empty());
    let records = cg.tick(10_000);
    assert_eq!(records.len(), 4, "3 tombstones + group epoch");
    assert!(records[..3].iter().all(|r| r.value.is_none()));
    log.extend(records);
    let d = describe(&cg, G, &topics);
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), "a");
    let r = clients[0].heartbeat(&mut cg, 10_001, &topics, &mut log, &mut ids);
    assert_eq!(count(&assignment_of(&r).unwrap()), 4);
    assert_eq!(cg.next_deadline(), Some(20_001));
    // b comes back: unknown member, rejoins with epoch 0.
    let r = clients[1].heartbeat(&mut cg, 10_002, &topics, &mut log, &mut ids);
    assert_eq!(r.error_code, ErrorCode::UnknownMemberId.code());
    assert_eq!(clients[1].epoch, 0);
    assert!(converge(
        &mut cg,
        &mut clients,
        10_003,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    assert_eq!(count(&clients[1].owned), 2);
}

#[test]
fn rebalance_timeout_fences_member_that_does_not_revoke() {
    let topics = Topics::with(&[("t", 4)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut a = Client::new(G, "a", &["t"]);
    let mut b = Client::new(G, "b", &["t"]);
    a.heartbeat(&mut cg, 0, &topics, &mut log, &mut ids);
    b.heartbeat(&mut cg, 0, &topics, &mut log, &mut ids);
    // a is asked to revoke (rebalance timeout 30 s) but keeps reporting all partitions.
    let all = a.owned.clone();
    let (_, r) = cg.heartbeat(
        1_000,
        1,
        &Default::default(),
        hb_req(G, "a", a.epoch, Some(&all)),
        &topics,
        &mut ids,
    );
    assert_eq!(count(&assignment_of(&r).unwrap()), 2);
    for t in [5_000, 10_000, 20_000] {
        let (_, r) = cg.heartbeat(
            t,
            1,
            &Default::default(),
            hb_req(G, "a", a.epoch, Some(&all)),
            &topics,
            &mut ids,
        );
        assert_eq!(r.error_code, 0);
        b.heartbeat(&mut cg, t, &topics, &mut log, &mut ids);
    }
    assert_eq!(count(&b.owned), 0);
    assert_eq!(cg.next_deadline(), Some(31_000));
    assert!(cg.tick(30_999).is_empty());
    assert!(!cg.tick(31_000).is_empty());
    let d = describe(&cg, G, &topics);
    assert_eq!(d.members.len(), 1);
    let r = b.heartbeat(&mut cg, 31_001, &topics, &mut log, &mut ids);
    assert_eq!(count(&assignment_of(&r).unwrap()), 4);
    let (_, r) = cg.heartbeat(
        31_002,
        1,
        &Default::default(),
        hb_req(G, "a", a.epoch, Some(&all)),
        &topics,
        &mut ids,
    );
    assert_eq!(r.error_code, ErrorCode::UnknownMemberId.code());
}

#[test]
fn static_member_rejoin_keeps_assignment() {
    let topics = Topics::with(&[("t", 6)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut a = Client::new(G, "a1", &["t"]);
    a.instance_id = Some("instance-a".into());
    let mut clients = vec![a, Client::new(G, "b", &["t"])];
    assert!(converge(
        &mut cg,
        &mut clients,
        0,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    let a_owned = clients[0].owned.clone();
    assert_eq!(count(&a_owned), 3);
    let epoch = describe(&cg, G, &topics).group_epoch;

    // Temporary leave with epoch -2.
    let mut req = clients[0].request();
    req.member_epoch = -2;
    let (records, r) = cg.heartbeat(10, 1, &Default::default(), req, &topics, &mut ids);
    log.extend(records);
    assert_eq!((r.error_code, r.member_epoch), (0, -2));
    assert_eq!(describe(&cg, G, &topics).members.len(), 2);

    // Another process may not take the instance id while it is held.
    let mut intruder = join_req(G, "b2", &["t"]);
    intruder.instance_id = Some(s("b-instance"));
    let (_, r) = cg.heartbeat(11, 1, &Default::default(), intruder, &topics, &mut ids);
    assert_eq!(r.error_code, 0, "a new instance id joins");
    let mut steal = join_req(G, "x", &["t"]);
    steal.instance_id = Some(s("b-instance"));
    assert_eq!(
        cg.heartbeat(12, 1, &Default::default(), steal, &topics, &mut ids)
            .1
            .error_code,
        ErrorCode::UnreleasedInstanceId.code()
    );
    let mut leave = hb_req(G, "b2", 0, None);
    leave.member_epoch = -1;
    leave.instance_id = Some(s("b-instance"));
    let (records, r) = cg.heartbeat(13, 1, &Default::default(), leave, &topics, &mut ids);
    assert_eq!(r.error_code, 0);
    log.extend(records);
    clients[1].heartbeat(&mut cg, 14, &topics, &mut log, &mut ids);
    let epoch_before = describe(&cg, G, &topics).group_epoch;
    assert!(epoch_before > epoch);

    // The restarted instance joins with a new member id and the same instance id.
    let mut a2 = Client::new(G, "a2", &["t"]);
    a2.instance_id = Some("instance-a".into());
    let r = a2.heartbeat(&mut cg, 20, &topics, &mut log, &mut ids);
    assert_eq!(r.error_code, 0);
    assert_eq!(a2.owned, a_owned);
    let d = describe(&cg, G, &topics);
    assert_eq!(
        d.group_epoch, epoch_before,
        "no rebalance for a static rejoin"
    );
    assert!(d.members.iter().all(|m| m.member_id.as_str() != "a1"));
    let m = d
        .members
        .iter()
        .find(|m| m.member_id.as_str() == "a2")
        .unwrap();
    assert_eq!(m.instance_id.as_ref().unwrap().as_str(), "instance-a");
    // The old member id is fenced.
    let mut old = hb_req(G, "a1", 3, None);
    old.instance_id = Some(s("instance-a"));
    assert_eq!(
        cg.heartbeat(21, 1, &Default::default(), old, &topics, &mut ids)
            .1
            .error_code,
        ErrorCode::FencedInstanceId.code()
    );
    let old = hb_req(G, "a1", 3, None);
    assert_eq!(
        cg.heartbeat(21, 1, &Default::default(), old, &topics, &mut ids)
            .1
            .error_code,
        ErrorCode::UnknownMemberId.code()
    );
}

#[test]
fn regex_subscription_picks_up_new_topics() {
    let topics = Topics::with(&[("orders-eu", 2), ("payments", 3), ("__orders-internal", 1)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut req = hb_req(G, "a", 0, Some(&Owned::new()));
    req.rebalance_timeout_ms = 1000;
    req.subscribed_topic_regex = Some(s("orders-.*|__orders.*"));
    let (records, r) = cg.heartbeat(0, 1, &Default::default(), req, &topics, &mut ids);
    log.extend(records);
    assert_eq!(r.error_code, 0);
    // As in Kafka, a regex new to the group is resolved after the heartbeat that brings it:
    // this answer holds the literal topics only (none here).
    assert_eq!(count(&assignment_of(&r).unwrap_or_default()), 0);
    assert_eq!(r.member_epoch, 1);
    // The next heartbeat sees the resolution (epoch bump). Like Kafka, a regex is matched
    // against every topic, internal-looking names included.
    let (records, r) = cg.heartbeat(
        1,
        1,
        &Default::default(),
        hb_req(G, "a", 1, None),
        &topics,
        &mut ids,
    );
    log.extend(records);
    assert_eq!(r.member_epoch, 2);
    let mut expected = parts(&topics, "orders-eu", &[0, 1]);
    expected.extend(parts(&topics, "__orders-internal", &[0]));
    assert_eq!(assignment_of(&r).unwrap(), expected);
    // Full match: a topic that merely contains the pattern does not match.
    topics.set("my-orders-x", 2);
    let (_, r) = cg.heartbeat(
        2,
        1,
        &Default::default(),
        hb_req(G, "a", r.member_epoch, None),
        &topics,
        &mut ids,
    );
    assert!(r.assignment.is_none());
    assert_eq!(r.member_epoch, 2);
    // A new matching topic is assigned at the next heartbeat with a bumped epoch.
    topics.set("orders-us", 3);
    let (records, r) = cg.heartbeat(
        3,
        1,
        &Default::default(),
        hb_req(G, "a", 2, None),
        &topics,
        &mut ids,
    );
    log.extend(records);
    assert_eq!(r.member_epoch, 3);
    let mut expect = parts(&topics, "orders-eu", &[0, 1]);
    expect.extend(parts(&topics, "orders-us", &[0, 1, 2]));
    expect.extend(parts(&topics, "__orders-internal", &[0]));
    assert_eq!(assignment_of(&r).unwrap(), expect);
    assert_eq!(
        cg.subscribed_topics(G)
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![
            "__orders-internal".to_string(),
            "orders-eu".to_string(),
            "orders-us".to_string()
        ]
    );
    let d = describe(&cg, G, &topics);
    assert_eq!(
        d.members[0]
            .subscribed_topic_regex
            .as_ref()
            .unwrap()
            .as_str(),
        "orders-.*|__orders.*"
    );
    // Partition count growth also bumps the epoch.
    topics.set("orders-eu", 4);
    let (records, r) = cg.heartbeat(
        4,
        1,
        &Default::default(),
        hb_req(G, "a", 3, None),
        &topics,
        &mut ids,
    );
    log.extend(records);
    assert_eq!(r.member_epoch, 4);
    assert_eq!(count(&assignment_of(&r).unwrap()), 8);
    // Replay keeps the metadata hash and the regex resolution: no bump, no lost partitions.
    let mut again = replayed(&log);
    let (_, r) = again.heartbeat(
        5,
        1,
        &Default::default(),
        hb_req(G, "a", 4, None),
        &topics,
        &mut ids,
    );
    assert_eq!((r.error_code, r.member_epoch), (0, 4));
    assert_eq!(describe(&again, G, &topics).group_epoch, 4);
}

#[test]
fn request_errors() {
    let topics = Topics::with(&[("t", 2)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    // Refused requests never draw an id.
    let check = |cg: &mut ConsumerGroups, req, code: ErrorCode| {
        let mut no_ids = SequentialIds::default();
        let (records, r) = cg.heartbeat(0, 1, &Default::default(), req, &topics, &mut no_ids);
        assert_eq!(r.error_code, code.code(), "{:?}", r.error_message);
        assert!(records.is_empty());
        assert!(r.error_message.is_some());
        assert_eq!(no_ids, SequentialIds::default());
    };
    check(
        &mut cg,
        join_req(G, "a", &["t"]).tap(|r| r.server_assignor = Some(s("sticky"))),
        ErrorCode::UnsupportedAssignor,
    );
    check(
        &mut cg,
        join_req(G, "a", &[]).tap(|r| r.subscribed_topic_regex = Some(s("("))),
        ErrorCode::InvalidRegularExpression,
    );
    check(
        &mut cg,
        join_req(G, "a", &["t"]).tap(|r| r.rebalance_timeout_ms = -1),
        ErrorCode::InvalidRequest,
    );
    check(
        &mut cg,
        join_req(G, "a", &["t"]).tap(|r| r.topic_partitions = None),
        ErrorCode::InvalidRequest,
    );
    check(
        &mut cg,
        join_req(G, "a", &["t"]).tap(|r| r.subscribed_topic_names = None),
        ErrorCode::InvalidRequest,
    );
    check(
        &mut cg,
        join_req("", "a", &["t"]),
        ErrorCode::InvalidRequest,
    );
    check(
        &mut cg,
        join_req(G, "  ", &["t"]),
        ErrorCode::InvalidRequest,
    );
    check(
        &mut cg,
        join_req(G, "a", &["t"]).tap(|r| r.instance_id = Some(s(""))),
        ErrorCode::InvalidRequest,
    );
    check(&mut cg, hb_req(G, "a", -3, None), ErrorCode::InvalidRequest);
    check(&mut cg, hb_req(G, "a", -2, None), ErrorCode::InvalidRequest);
    check(&mut cg, hb_req(G, "a", 5, None), ErrorCode::GroupIdNotFound);
    check(
        &mut cg,
        join_req(G, &"m".repeat(40_000), &["t"]),
        ErrorCode::InvalidRequest,
    );
    assert!(!cg.contains(G), "failed requests create no group");

    let mut a = Client::new(G, "a", &["t"]);
    a.heartbeat(&mut cg, 0, &topics, &mut log, &mut ids);
    assert_eq!(a.epoch, 1);
    check(
        &mut cg,
        hb_req(G, "a", 2, None),
        ErrorCode::FencedMemberEpoch,
    );
    check(
        &mut cg,
        hb_req(G, "zz", 1, None),
        ErrorCode::UnknownMemberId,
    );
    // Lower epoch than known: fenced unless previous epoch with a subset of the assignment.
    let mut b = Client::new(G, "b", &["t"]);
    b.heartbeat(&mut cg, 1, &topics, &mut log, &mut ids);
    assert!(converge(
        &mut cg,
        &mut [a.clone(), b.clone()],
        2,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    let d = describe(&cg, G, &topics);
    let am = d
        .members
        .iter()
        .find(|m| m.member_id.as_str() == "a")
        .unwrap();
    assert_eq!(am.member_epoch, 2);
    let (_, r) = cg.heartbeat(
        3,
        1,
        &Default::default(),
        hb_req(G, "a", 1, Some(&Owned::new())),
        &topics,
        &mut ids,
    );
    assert_eq!(r.error_code, 0, "previous epoch with a subset is accepted");
    check(
        &mut cg,
        hb_req(G, "a", 1, None),
        ErrorCode::FencedMemberEpoch,
    );
    // The group stays usable.
    let (_, r) = cg.heartbeat(
        4,
        1,
        &Default::default(),
        hb_req(G, "a", 2, None),
        &topics,
        &mut ids,
    );
    assert_eq!(r.error_code, 0);
    // A fenced member may rejoin with epoch 0 and the same id.
    let (_, r) = cg.heartbeat(
        5,
        1,
        &Default::default(),
        join_req(G, "a", &["t"]),
        &topics,
        &mut ids,
    );
    assert_eq!(r.error_code, 0);
    assert!(r.assignment.is_some());
    // Group size limit.
    let mut small = ConsumerGroups::new(&GroupConfig {
        max_group_size: 1,
        ..config()
    });
    assert_eq!(
        small
            .heartbeat(
                0,
                1,
                &Default::default(),
                join_req(G, "a", &["t"]),
                &topics,
                &mut ids
            )
            .1
            .error_code,
        0
    );
    assert_eq!(
        small
            .heartbeat(
                0,
                1,
                &Default::default(),
                join_req(G, "b", &["t"]),
                &topics,
                &mut ids
            )
            .1
            .error_code,
        ErrorCode::GroupMaxSizeReached.code()
    );
}

#[test]
fn offset_commit_and_fetch_validation() {
    let topics = Topics::with(&[("t", 2)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut a = Client::new(G, "a", &["t"]);
    a.heartbeat(&mut cg, 0, &topics, &mut log, &mut ids);
    assert_eq!(cg.validate_offset_commit(G, "a", 1), Ok(()));
    assert_eq!(
        cg.validate_offset_commit(G, "a", 0),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        cg.validate_offset_commit(G, "a", 2),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        cg.validate_offset_commit(G, "b", 1),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        cg.validate_offset_commit(G, "", -1),
        Err(ErrorCode::UnknownMemberId),
        "admin commits need an empty group"
    );
    assert_eq!(cg.validate_offset_fetch(G, Some("a"), 1), Ok(()));
    assert_eq!(
        cg.validate_offset_fetch(G, Some("a"), 7),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        cg.validate_offset_fetch(G, Some("b"), 1),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(cg.validate_offset_fetch(G, None, -1), Ok(()));
    let mut req = hb_req(G, "a", 1, None);
    req.member_epoch = -1;
    cg.heartbeat(1, 1, &Default::default(), req, &topics, &mut ids);
    assert_eq!(cg.validate_offset_commit(G, "", -1), Ok(()));
    assert_eq!(
        cg.validate_offset_commit(G, "a", 1),
        Err(ErrorCode::UnknownMemberId)
    );
}

#[test]
fn describe_groups() {
    let topics = Topics::with(&[("t", 3)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log = Vec::new();
    let mut req = join_req(G, "a", &["t"]);
    req.rack_id = Some(s("rack-1"));
    req.instance_id = Some(s("i-a"));
    let (records, _) = cg.heartbeat(0, 1, &Default::default(), req, &topics, &mut ids);
    log.extend(records);
    let mut dreq = ConsumerGroupDescribeRequest::default();
    dreq.group_ids = vec![GroupId(s(G)), GroupId(s("nope"))];
    let resp = cg.describe(0, &dreq, &topics);
    assert_eq!(resp.groups.len(), 2);
    let g = &resp.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_id.0.as_str(), G);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.authorized_operations, i32::MIN);
    let m = &g.members[0];
    assert_eq!(m.member_id.as_str(), "a");
    assert_eq!(m.instance_id.as_ref().unwrap().as_str(), "i-a");
    assert_eq!(m.rack_id.as_ref().unwrap().as_str(), "rack-1");
    assert_eq!(m.member_epoch, 1);
    assert_eq!(m.member_type, -1, "v0 leaves member type at its default");
    assert_eq!(
        m.subscribed_topic_names
            .iter()
            .map(|t| t.0.to_string())
            .collect::<Vec<_>>(),
        vec!["t"]
    );
    assert_eq!(m.assignment.topic_partitions[0].topic_name.0.as_str(), "t");
    assert_eq!(m.assignment.topic_partitions[0].partitions, vec![0, 1, 2]);
    assert_eq!(m.assignment, m.target_assignment);
    assert_eq!(resp.groups[1].error_code, ErrorCode::GroupIdNotFound.code());
    dreq.include_authorized_operations = true;
    assert_ne!(
        cg.describe(1, &dreq, &topics).groups[0].authorized_operations,
        i32::MIN
    );
    let l = cg.listings();
    assert_eq!(l.len(), 1);
    assert_eq!((l[0].group_id.as_str(), l[0].state), (G, "Stable"));
}

fn snapshot(cg: &ConsumerGroups, topics: &Topics, groups: &[&str]) -> String {
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = groups.iter().map(|g| GroupId(s(g))).collect();
    format!("{:?}\n{:?}", cg.describe(1, &req, topics), cg.listings())
}

#[test]
fn replay_roundtrip() {
    let topics = Topics::with(&[("t", 6), ("u", 3)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let mut log: Vec<Record> = Vec::new();
    let mut a = Client::new(G, "a", &["t", "u"]);
    a.instance_id = Some("static-a".into());
    let mut clients = vec![a, Client::new(G, "b", &["t"]), Client::new(G, "c", &["u"])];
    assert!(converge(
        &mut cg,
        &mut clients,
        0,
        &topics,
        &mut log,
        10,
        &mut ids
    ));
    // Mid-rebalance state: a fourth member joins and only some members heartbeat.
    let mut d = Client::new(G, "d", &["t", "u"]);
    d.heartbeat(&mut cg, 1, &topics, &mut log, &mut ids);
    clients[0].heartbeat(&mut cg, 2, &topics, &mut log, &mut ids);
    // Another group, emptied.
    let mut x = Client::new("g2", "x", &["t"]);
    x.heartbeat(&mut cg, 3, &topics, &mut log, &mut ids);
    let mut req = hb_req("g2", "x", x.epoch, None);
    req.member_epoch = -1;
    log.extend(
        cg.heartbeat(4, 1, &Default::default(), req, &topics, &mut ids)
            .0,
    );

    let groups = [G, "g2"];
    let again = replayed(&log);
    assert_eq!(
        snapshot(&cg, &topics, &groups),
        snapshot(&again, &topics, &groups)
    );
    assert_eq!(again.subscribed_topics(G), cg.subscribed_topics(G));

    // The replayed coordinator continues the rebalance.
    let mut again = again;
    clients.push(d);
    let mut log2 = Vec::new();
    assert!(converge(
        &mut again,
        &mut clients,
        10,
        &topics,
        &mut log2,
        20,
        &mut ids
    ));
    current_owners(&describe(&again, G, &topics));
    // Replayed members get session deadlines at the first tick.
    let mut fresh = replayed(&log);
    assert_eq!(fresh.next_deadline(), Some(0));
    assert!(fresh.tick(1_000).is_empty());
    assert_eq!(fresh.next_deadline(), Some(1_000 + 45_000));

    // Deleting the empty group writes tombstones that remove it on replay too.
    let tombstones = cg.delete("g2");
    assert!(!tombstones.is_empty());
    assert!(tombstones
        .iter()
        .all(|r| r.value.is_none() && r.group_id == "g2"));
    assert!(!cg.contains("g2"));
    log.extend(tombstones);
    let again = replayed(&log);
    assert!(!again.contains("g2"));
    assert!(again.contains(G));
}

#[test]
fn record_bytes_match_kafka_schemas() {
    let topics = Topics::with(&[("t", 1)]);
    let mut cg = ConsumerGroups::new(&config());
    let mut ids = SequentialIds::default();
    let (records, _) = cg.heartbeat(
        0,
        1,
        &Default::default(),
        join_req("g", "m", &["t"]),
        &topics,
        &mut ids,
    );
    // ConsumerGroupMemberMetadata: key type 5, "g", "m"; value v0 flexible.
    assert_eq!(records[0].key, vec![0, 5, 0, 1, b'g', 0, 1, b'm']);
    let v = records[0].value.as_ref().unwrap();
    let mut expect = vec![0, 0, 0, 0, 1, 1]; // version, instance null, rack null, client id "", host ""
    expect.extend([2, 2, b't']); // [ "t" ]
    expect.push(0); // regex null
    expect.extend(30_000i32.to_be_bytes());
    expect.push(0); // server assignor null
    expect.push(0); // tagged fields
    assert_eq!(v, &expect);
    // ConsumerGroupMetadata: epoch 1 with MetadataHash in tag 0.
    assert_eq!(records[1].key, vec![0, 3, 0, 1, b'g']);
    let v = records[1].value.as_ref().unwrap();
    assert_eq!(&v[..6], &[0, 0, 0, 0, 0, 1]);
    assert_eq!(&v[6..9], &[1, 0, 8]);
    assert_eq!(v.len(), 17);
    // ConsumerGroupTargetAssignmentMember.
    let id = topics.id("t");
    let mut expect = vec![0, 0, 2];
    expect.extend(id.as_bytes());
    expect.extend([2, 0, 0, 0, 0, 0, 0]);
    assert_eq!(records[2].value.as_ref().unwrap(), &expect);
    // ConsumerGroupTargetAssignmentMetadata.
    assert_eq!(records[3].key, vec![0, 6, 0, 1, b'g']);
    assert_eq!(
        records[3].value.as_ref().unwrap(),
        &vec![0, 0, 0, 0, 0, 1, 0]
    );
    // ConsumerGroupCurrentMemberAssignment: epoch 1, previous 0, state 0, [t:0], [].
    let mut expect = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2];
    expect.extend(id.as_bytes());
    expect.extend([2, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(records[4].key, vec![0, 8, 0, 1, b'g', 0, 1, b'm']);
    assert_eq!(records[4].value.as_ref().unwrap(), &expect);

    // Records of other coordinators are not claimed; garbage is an error, not a panic.
    let mut cg = ConsumerGroups::new(&config());
    assert!(!cg.replay(&[0, 1, 0, 1, b'g'], None).unwrap());
    assert!(!cg.replay(&[0, 2, 0, 1, b'g'], Some(&[0, 3])).unwrap());
    assert!(cg.replay(&[0, 8, 0, 9], None).is_err());
    assert!(cg
        .replay(&[0, 8, 0, 1, b'g', 0, 1, b'm'], Some(&[0, 0, 1]))
        .is_err());
    assert!(cg.replay(&[0], None).is_err());
    // Kafka's PartitionMetadata (4) and RegularExpression (16) records are accepted and ignored.
    assert!(cg
        .replay(&[0, 4, 0, 1, b'g'], Some(&[0, 0, 0, 0, 0, 1, 1, 0]))
        .unwrap());
    assert!(cg.replay(&[0, 16, 0, 1, b'g', 0, 1, b'x'], None).unwrap());
    assert!(!cg.contains("g"));
}
