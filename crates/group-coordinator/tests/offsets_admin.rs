//! Committed offsets, admin APIs, retention and replay, with a fake clock.

use bytes::Bytes;
use gregor_group_coordinator::records::encode_consumer_subscription;
use gregor_group_coordinator::*;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::{
    delete_groups_request::DeleteGroupsRequest,
    describe_groups_request::DescribeGroupsRequest,
    heartbeat_request::HeartbeatRequest,
    join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol},
    leave_group_request::LeaveGroupRequest,
    list_groups_request::ListGroupsRequest,
    offset_commit_request::{
        OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    },
    offset_delete_request::{
        OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    },
    offset_fetch_request::{
        OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic,
        OffsetFetchRequestTopics,
    },
    offset_fetch_response::OffsetFetchResponse,
    sync_group_request::SyncGroupRequest,
    GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

// Wire values the assertions compare against (`ErrorCode` is the one definition).
const NONE: i16 = ErrorCode::None.code();
const UNKNOWN_TOPIC_OR_PARTITION: i16 = ErrorCode::UnknownTopicOrPartition.code();
const OFFSET_METADATA_TOO_LARGE: i16 = ErrorCode::OffsetMetadataTooLarge.code();
const ILLEGAL_GENERATION: i16 = ErrorCode::IllegalGeneration.code();
const UNKNOWN_MEMBER_ID: i16 = ErrorCode::UnknownMemberId.code();
const REBALANCE_IN_PROGRESS: i16 = ErrorCode::RebalanceInProgress.code();
const NON_EMPTY_GROUP: i16 = ErrorCode::NonEmptyGroup.code();
const GROUP_ID_NOT_FOUND: i16 = ErrorCode::GroupIdNotFound.code();
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = ErrorCode::GroupSubscribedToTopic.code();

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

struct Topics;
impl TopicView for Topics {
    fn partition_count(&self, topic: &str) -> Option<i32> {
        match topic {
            "t1" => Some(3),
            "t2" => Some(2),
            _ => None,
        }
    }
    fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.partition_count(topic)
            .map(|_| Uuid::from_u128(topic.len() as u128 + 1))
    }
    fn topic_name(&self, _id: &Uuid) -> Option<String> {
        None
    }
    fn all_topics(&self) -> Vec<(String, Uuid, i32)> {
        vec![
            ("t1".into(), Uuid::from_u128(3), 3),
            ("t2".into(), Uuid::from_u128(3), 2),
        ]
    }
}

struct H {
    gc: GroupCoordinator,
    now: i64,
    next_id: u64,
    records: Vec<Record>,
    responses: Vec<(u64, Response)>,
}

impl H {
    fn new() -> H {
        H::with(GroupConfig {
            initial_rebalance_delay_ms: 0,
            ..GroupConfig::default()
        })
    }
    fn with(cfg: GroupConfig) -> H {
        H {
            gc: GroupCoordinator::new(cfg, SequentialIds::default()),
            now: 10_000,
            next_id: 1,
            records: Vec::new(),
            responses: Vec::new(),
        }
    }
    fn absorb(&mut self, out: Output) {
        self.records.extend(out.records);
        self.responses.extend(out.responses);
    }
    fn take(&mut self, id: u64) -> Response {
        let pos = self
            .responses
            .iter()
            .position(|(i, _)| *i == id)
            .expect("response");
        self.responses.remove(pos).1
    }
    fn tick_to(&mut self, t: i64) {
        while let Some(d) = self.gc.next_deadline() {
            if d > t {
                break;
            }
            self.now = d.max(self.now);
            let out = self.gc.tick(self.now);
            self.absorb(out);
        }
        self.now = t;
        let out = self.gc.tick(t);
        self.absorb(out);
    }
    /// One member joins and syncs (v9 two-step); returns (member id, generation).
    fn stable_member(&mut self, group: &str, topics: &[&str]) -> (String, i32) {
        let mut member = String::new();
        loop {
            let id = self.next_id;
            self.next_id += 1;
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_member_id(s(&member))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from(encode_consumer_subscription(topics)))]);
            let client = ClientInfo {
                client_id: "c".into(),
                client_host: "/1.2.3.4".into(),
            };
            let out = self.gc.join_group(self.now, id, 9, &client, req);
            self.absorb(out);
            let now = self.now;
            self.tick_to(now);
            let Response::JoinGroup(r) = self.take(id) else {
                panic!()
            };
            if r.error_code == 79 {
                member = r.member_id.to_string();
                continue;
            }
            assert_eq!(r.error_code, NONE);
            let id = self.next_id;
            self.next_id += 1;
            let out = self.gc.sync_group(
                self.now,
                id,
                5,
                SyncGroupRequest::default()
                    .with_group_id(GroupId(s(group)))
                    .with_member_id(s(&member))
                    .with_generation_id(r.generation_id),
            );
            self.absorb(out);
            let Response::SyncGroup(sr) = self.take(id) else {
                panic!()
            };
            assert_eq!(sr.error_code, NONE);
            return (member, r.generation_id);
        }
    }
    fn commit(
        &mut self,
        version: i16,
        group: &str,
        member: &str,
        generation: i32,
        parts: &[(&str, i32, i64, &str)],
    ) -> Vec<i16> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (t, p, o, md) in parts {
            let part = OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(4)
                .with_committed_metadata(Some(s(md)));
            match topics.iter_mut().find(|x| x.name.as_str() == *t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member))
            .with_generation_id_or_member_epoch(generation)
            .with_topics(topics);
        let (recs, resp) = self.gc.offset_commit(self.now, version, req, &Topics);
        self.records.extend(recs);
        resp.topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect()
    }
    fn fetch_v8(&self, group: &str, topics: Option<&[(&str, &[i32])]>) -> OffsetFetchResponse {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(topics.map(|ts| {
                    ts.iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(s(t)))
                                .with_partition_indexes(ps.to_vec())
                        })
                        .collect()
                }))]);
        self.gc.offset_fetch(self.now, 8, &req, &Topics)
    }
    /// (topic, partition, offset, epoch, metadata) of a v8 fetch, in response order.
    fn fetched(
        &self,
        group: &str,
        topics: Option<&[(&str, &[i32])]>,
    ) -> Vec<(String, i32, i64, i32, String)> {
        let r = self.fetch_v8(group, topics);
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].error_code, NONE);
        r.groups[0]
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.name.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_deref().unwrap_or("<null>").to_string(),
                    )
                })
            })
            .collect()
    }
    fn leave(&mut self, group: &str, member: &str) {
        let id = self.next_id;
        self.next_id += 1;
        let out = self.gc.leave_group(
            self.now,
            id,
            1,
            LeaveGroupRequest::default()
                .with_group_id(GroupId(s(group)))
                .with_member_id(s(member)),
        );
        self.absorb(out);
        let Response::LeaveGroup(r) = self.take(id) else {
            panic!()
        };
        assert_eq!(r.error_code, NONE);
    }
    fn list(&self, version: i16, states: &[&str], types: &[&str]) -> Vec<(String, String, String)> {
        let req = ListGroupsRequest::default()
            .with_states_filter(states.iter().map(|x| s(x)).collect())
            .with_types_filter(types.iter().map(|x| s(x)).collect());
        let r = self.gc.list_groups(version, &req);
        assert_eq!(r.error_code, NONE);
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                )
            })
            .collect()
    }
}

#[test]
fn commit_fetch_roundtrip_keeps_metadata() {
    let mut h = H::new();
    let codes = h.commit(
        8,
        "simple",
        "",
        -1,
        &[
            ("t1", 0, 10, "meta-é"),
            ("t1", 2, 30, ""),
            ("t2", 1, 5, "x"),
        ],
    );
    assert_eq!(codes, vec![NONE; 3]);
    let got = h.fetched("simple", Some(&[("t1", &[0, 1, 2])]));
    assert_eq!(
        got,
        vec![
            ("t1".into(), 0, 10, 4, "meta-é".into()),
            ("t1".into(), 1, -1, -1, "".into()),
            ("t1".into(), 2, 30, 4, "".into()),
        ]
    );
    let all = h.fetched("simple", None);
    assert_eq!(all.len(), 3);
    assert_eq!(all[2], ("t2".into(), 1, 5, 4, "x".into()));
    // v1-v7 shape.
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("simple")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t2")))
            .with_partition_indexes(vec![1])]));
    let r = h.gc.offset_fetch(h.now, 5, &req, &Topics);
    assert_eq!(r.error_code, NONE);
    assert_eq!(r.topics[0].partitions[0].metadata.as_deref(), Some("x"));
    assert_eq!(r.topics[0].partitions[0].committed_offset, 5);
    // Unknown group: -1 offsets, no error; all offsets of an unknown group: nothing.
    assert_eq!(h.fetched("nope", Some(&[("t1", &[0])]))[0].2, -1);
    assert!(h.fetched("nope", None).is_empty());
    // The simple group is listed (Empty, no protocol type).
    assert_eq!(
        h.list(4, &[], &[]),
        vec![("simple".into(), "".into(), "Empty".into())]
    );
}

#[test]
fn commit_validation() {
    let mut h = H::new();
    let long = "m".repeat(4097);
    let codes = h.commit(
        8,
        "g",
        "",
        -1,
        &[
            ("nope", 0, 1, ""),
            ("t1", 7, 1, ""),
            ("t1", 0, 1, &long),
            ("t1", 1, 1, "ok"),
        ],
    );
    assert_eq!(
        codes,
        vec![
            UNKNOWN_TOPIC_OR_PARTITION,
            UNKNOWN_TOPIC_OR_PARTITION,
            OFFSET_METADATA_TOO_LARGE,
            NONE
        ]
    );
    // Unknown group with a generation: ILLEGAL_GENERATION before v9, GROUP_ID_NOT_FOUND at v9.
    assert_eq!(
        h.commit(8, "other", "m", 3, &[("t1", 0, 1, "")]),
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        h.commit(9, "other", "m", 3, &[("t1", 0, 1, "")]),
        vec![GROUP_ID_NOT_FOUND]
    );

    let (m, generation) = h.stable_member("live", &["t1"]);
    // Admin commit (generation -1, no member id) is refused while the group has members.
    assert_eq!(
        h.commit(8, "live", "", -1, &[("t1", 0, 1, "")]),
        vec![UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        h.commit(8, "live", &m, generation + 1, &[("t1", 0, 1, "")]),
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        h.commit(8, "live", "ghost", generation, &[("t1", 0, 1, "")]),
        vec![UNKNOWN_MEMBER_ID]
    );
    assert_eq!(
        h.commit(8, "live", &m, generation, &[("t1", 0, 11, "a")]),
        vec![NONE]
    );
    // CompletingRebalance: REBALANCE_IN_PROGRESS for a valid member.
    let (m2, g2) = {
        // The leader rejoins with other metadata -> rebalance; with one member it completes at once.
        let id = 999;
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s("live")))
            .with_member_id(s(&m))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from(encode_consumer_subscription(&[
                    "t1", "t2",
                ])))]);
        let out = h.gc.join_group(h.now, id, 9, &ClientInfo::default(), req);
        h.absorb(out);
        let Response::JoinGroup(r) = h.take(id) else {
            panic!()
        };
        (m.clone(), r.generation_id)
    };
    assert_eq!(
        h.commit(8, "live", &m2, g2, &[("t1", 0, 12, "")]),
        vec![REBALANCE_IN_PROGRESS]
    );
    // After the member leaves, the admin commit works.
    h.leave("live", &m);
    assert_eq!(
        h.commit(8, "live", "", -1, &[("t1", 0, 100, "reset")]),
        vec![NONE]
    );
    assert_eq!(h.fetched("live", Some(&[("t1", &[0])]))[0].2, 100);
}

#[test]
fn offset_delete_respects_subscriptions() {
    let mut h = H::new();
    let (m, generation) = h.stable_member("g", &["t1"]);
    assert_eq!(
        h.commit(
            8,
            "g",
            &m,
            generation,
            &[("t1", 0, 1, ""), ("t2", 0, 2, "")]
        ),
        vec![NONE, NONE]
    );
    let req = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t1")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ]),
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t2")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ]),
        ]);
    let (recs, resp) = h.gc.offset_delete(h.now, 0, req.clone(), &Topics);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        GROUP_SUBSCRIBED_TO_TOPIC
    );
    assert_eq!(resp.topics[1].partitions[0].error_code, NONE);
    assert_eq!(recs.len(), 1);
    assert!(recs[0].value.is_none());
    assert_eq!(h.fetched("g", Some(&[("t2", &[0])]))[0].2, -1);
    assert_eq!(h.fetched("g", Some(&[("t1", &[0])]))[0].2, 1);
    let (_, resp) =
        h.gc.offset_delete(h.now, 0, req.with_group_id(GroupId(s("nope"))), &Topics);
    assert_eq!(resp.error_code, GROUP_ID_NOT_FOUND);
}

#[test]
fn describe_and_list_groups() {
    let mut h = H::new();
    h.commit(8, "offsets-only", "", -1, &[("t1", 0, 1, "")]);
    let (m, _) = h.stable_member("live", &["t1"]);
    let req = DescribeGroupsRequest::default().with_groups(vec![
        GroupId(s("offsets-only")),
        GroupId(s("live")),
        GroupId(s("missing")),
    ]);
    let r = h.gc.describe_groups(5, &req);
    assert_eq!(r.groups[0].group_state.as_str(), "Empty");
    assert_eq!(r.groups[0].error_code, NONE);
    assert!(r.groups[0].members.is_empty());
    let live = &r.groups[1];
    assert_eq!(live.group_state.as_str(), "Stable");
    assert_eq!(live.protocol_type.as_str(), "consumer");
    assert_eq!(live.protocol_data.as_str(), "range");
    assert_eq!(live.members.len(), 1);
    assert_eq!(live.members[0].member_id.as_str(), m);
    assert_eq!(live.members[0].client_id.as_str(), "c");
    assert_eq!(live.members[0].client_host.as_str(), "/1.2.3.4");
    assert_eq!(
        &live.members[0].member_metadata[..],
        &encode_consumer_subscription(&["t1"])[..]
    );
    assert_eq!(
        (r.groups[2].error_code, r.groups[2].group_state.as_str()),
        (NONE, "Dead")
    );
    let r6 = h.gc.describe_groups(6, &req);
    assert_eq!(r6.groups[2].error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(
        r6.groups[2].error_message.as_deref(),
        Some("Group missing not found.")
    );

    let all = h.list(5, &[], &[]);
    assert_eq!(
        all,
        vec![
            ("live".into(), "consumer".into(), "Stable".into()),
            ("offsets-only".into(), "".into(), "Empty".into()),
        ]
    );
    assert_eq!(
        h.list(4, &["empty"], &[]),
        vec![("offsets-only".into(), "".into(), "Empty".into())]
    );
    assert_eq!(h.list(5, &["Stable"], &["Classic"]).len(), 1);
    assert!(h.list(5, &[], &["consumer"]).is_empty());
    // v0-3 ignore filters and carry no state.
    let r = h.gc.list_groups(3, &ListGroupsRequest::default());
    assert_eq!(r.groups.len(), 2);
    assert!(r.groups[0].group_state.is_empty());
}

#[test]
fn delete_groups() {
    let mut h = H::new();
    h.commit(8, "old", "", -1, &[("t1", 0, 1, ""), ("t2", 1, 1, "")]);
    let (_m, _) = h.stable_member("live", &["t1"]);
    let req = DeleteGroupsRequest::default().with_groups_names(vec![
        GroupId(s("old")),
        GroupId(s("live")),
        GroupId(s("missing")),
    ]);
    let (recs, resp) = h.gc.delete_groups(h.now, 2, &req);
    let codes: Vec<i16> = resp.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![NONE, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND]);
    assert_eq!(recs.len(), 3);
    assert!(recs
        .iter()
        .all(|r| r.value.is_none() && r.group_id == "old"));
    assert_eq!(recs[2].key[1], 2, "group tombstone after the offsets'");
    assert!(h.gc.classic_groups().get("old").is_none());
    assert!(h.fetched("old", None).is_empty());
}

#[test]
fn retention_expires_offsets_of_empty_groups() {
    let hour = 3_600_000;
    let mut h = H::with(GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: hour,
        ..GroupConfig::default()
    });
    let t0 = h.now;
    h.commit(8, "simple", "", -1, &[("t1", 0, 1, "")]);
    let (m, generation) = h.stable_member("consumers", &["t1"]);
    h.commit(8, "consumers", &m, generation, &[("t1", 0, 1, "")]);
    // The consumer keeps heartbeating for 2 hours, then leaves.
    while h.now < t0 + 2 * hour {
        let t = h.now + 3000;
        h.tick_to(t);
        let id = h.next_id;
        h.next_id += 1;
        let out = h.gc.heartbeat(
            h.now,
            id,
            4,
            HeartbeatRequest::default()
                .with_group_id(GroupId(s("consumers")))
                .with_member_id(s(&m))
                .with_generation_id(generation),
        );
        h.absorb(out);
        let Response::Heartbeat(r) = h.take(id) else {
            panic!()
        };
        assert_eq!(r.error_code, NONE);
    }
    // The simple group's offset expired one hour after the commit (checked every 10 min),
    // and the group with it.
    assert!(h.fetched("simple", None).is_empty());
    assert!(h.gc.classic_groups().get("simple").is_none());
    // The active group kept its offset although the commit is 2 hours old.
    assert_eq!(h.fetched("consumers", None).len(), 1);
    h.leave("consumers", &m);
    let left = h.now;
    h.tick_to(left + hour - 1);
    assert_eq!(h.fetched("consumers", None).len(), 1);
    h.tick_to(left + hour + 600_000);
    assert!(h.fetched("consumers", None).is_empty());
    assert!(h.gc.classic_groups().get("consumers").is_none());
    assert!(h
        .records
        .iter()
        .any(|r| r.group_id == "consumers" && r.key[1] == 1 && r.value.is_none()));
}

#[test]
fn replay_rebuilds_offsets_and_groups() {
    let mut h = H::new();
    h.commit(8, "simple", "", -1, &[("t1", 0, 1, "a"), ("t1", 1, 2, "b")]);
    h.commit(8, "simple", "", -1, &[("t1", 0, 3, "c")]);
    let (m, generation) = h.stable_member("live", &["t1"]);
    h.commit(8, "live", &m, generation, &[("t2", 0, 9, "z")]);
    h.commit(8, "gone", "", -1, &[("t2", 0, 9, "")]);
    let (recs, _) = h.gc.delete_groups(
        h.now,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("gone"))]),
    );
    h.records.extend(recs);
    let (recs, _) = h.gc.delete_groups(
        h.now,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("gone"))]),
    );
    assert!(recs.is_empty());
    let (leaver, _) = h.stable_member("left", &["t2"]);
    h.leave("left", &leaver);

    let mut fresh = GroupCoordinator::new(GroupConfig::default(), SequentialIds::default());
    for r in &h.records {
        fresh.replay(&r.key, r.value.as_deref()).unwrap();
    }
    fresh.finish_replay(h.now);
    let list = |gc: &GroupCoordinator| {
        let r = gc.list_groups(4, &ListGroupsRequest::default());
        r.groups
            .iter()
            .map(|g| {
                (
                    g.group_id.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(list(&fresh), list(&h.gc));
    let fetch_all = |gc: &GroupCoordinator, g: &str| {
        let req =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(g)))
                .with_topics(None)]);
        gc.offset_fetch(0, 8, &req, &Topics)
    };
    for g in ["simple", "live", "gone", "left"] {
        assert_eq!(fetch_all(&fresh, g), fetch_all(&h.gc, g), "offsets of {g}");
    }
    let req = DescribeGroupsRequest::default().with_groups(vec![
        GroupId(s("simple")),
        GroupId(s("live")),
        GroupId(s("gone")),
        GroupId(s("left")),
    ]);
    assert_eq!(
        fresh.describe_groups(5, &req),
        h.gc.describe_groups(5, &req)
    );
    let live = fresh.classic_groups().get("live").unwrap();
    assert_eq!(live.generation(), generation);
    assert_eq!(live.leader(), Some(m.as_str()));
    // The loaded member must heartbeat or expire.
    let out = fresh.heartbeat(
        h.now,
        1,
        4,
        HeartbeatRequest::default()
            .with_group_id(GroupId(s("live")))
            .with_member_id(s(&m))
            .with_generation_id(generation),
    );
    assert!(matches!(&out.responses[0].1, Response::Heartbeat(r) if r.error_code == NONE));
    let out = fresh.tick(h.now + 10_000);
    assert!(out
        .records
        .iter()
        .any(|r| r.group_id == "live" && r.value.is_some()));
    assert_eq!(
        fresh.classic_groups().get("live").unwrap().state(),
        gregor_group_coordinator::classic::GroupState::Empty
    );
}

fn cg_heartbeat(
    gc: &mut GroupCoordinator,
    now: i64,
    group: &str,
    member: &str,
    epoch: i32,
) -> (
    Vec<Record>,
    kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse,
) {
    use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("t1"))]))
        .with_topic_partitions(Some(vec![]));
    gc.consumer_group_heartbeat(now, 1, &Default::default(), req, &Topics)
}

#[test]
fn classic_and_consumer_groups_share_ids_safely() {
    let mut h = H::new();
    let (_m, _) = h.stable_member("classic", &["t1"]);
    // A non-empty classic group is not a consumer group.
    let (recs, resp) = cg_heartbeat(
        &mut h.gc,
        h.now,
        "classic",
        &Uuid::from_u128(7).to_string(),
        0,
    );
    assert!(recs.is_empty());
    assert_eq!(resp.error_code, GROUP_ID_NOT_FOUND);
    // An Empty classic group that only holds offsets is taken over; its offsets stay.
    h.commit(8, "simple", "", -1, &[("t1", 0, 42, "keep")]);
    let member = Uuid::from_u128(8).to_string();
    let (recs, resp) = cg_heartbeat(&mut h.gc, h.now, "simple", &member, 0);
    assert_eq!(resp.error_code, NONE);
    assert!(
        recs.iter().any(|r| r.key[1] == 2 && r.value.is_none()),
        "classic group tombstoned"
    );
    assert!(h.gc.classic_groups().get("simple").is_none());
    assert_eq!(h.fetched("simple", Some(&[("t1", &[0])]))[0].4, "keep");
    let listed = h.list(5, &[], &["consumer"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, "simple");
    assert_eq!(listed[0].1, "consumer");
    // DescribeGroups v6 says it is not a classic group.
    let r = h.gc.describe_groups(
        6,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("simple"))]),
    );
    assert_eq!(r.groups[0].error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(
        r.groups[0].error_message.as_deref(),
        Some("Group simple is not a classic group.")
    );
    // JoinGroup on a non-empty consumer group: INCONSISTENT_GROUP_PROTOCOL.
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s("simple")))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default().with_name(s("range"))
        ]);
    let out =
        h.gc.join_group(h.now, 77, 9, &ClientInfo::default(), req.clone());
    assert!(matches!(&out.responses[0], (77, Response::JoinGroup(r)) if r.error_code == 23));
    // Once the consumer group is empty, a JoinGroup converts it back; offsets stay.
    let (_, resp) = cg_heartbeat(&mut h.gc, h.now, "simple", &member, -1);
    assert_eq!(resp.error_code, NONE);
    let out = h.gc.join_group(h.now, 78, 9, &ClientInfo::default(), req);
    assert!(matches!(&out.responses[0], (78, Response::JoinGroup(r)) if r.error_code == 79));
    assert!(h.gc.classic_groups().get("simple").is_some());
    assert_eq!(h.fetched("simple", Some(&[("t1", &[0])]))[0].2, 42);
    assert_eq!(h.list(5, &[], &["consumer"]), vec![]);
}
