//! CreateTopics, CreatePartitions, DeleteTopics and topic configs: placement and Kafka's
//! errors.

mod common;

use common::Harness;
use gregor_controller::{ControllerError, MetadataRecord};
use gregor_protocol::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

fn cluster(unfenced: i32) -> Harness {
    let mut h = Harness::new();
    for n in 1..=unfenced {
        h.start(n, None);
    }
    h
}

fn refused(h: &Harness, req: &gregor_controller::CreateTopic) -> ControllerError {
    h.state.create_topic(req, Uuid::from_u128(99)).unwrap_err()
}

#[test]
fn create_topic_emits_topic_and_partition_records_with_balanced_leaders() {
    let h = cluster(3);
    let id = Uuid::from_u128(42);
    let (records, reply) = h
        .state
        .create_topic(&Harness::create_request("t", 6, 2), id)
        .unwrap();
    assert_eq!(
        (reply.topic_id, reply.partitions, reply.replication_factor),
        (id, 6, 2)
    );
    assert!(matches!(
        records[0],
        MetadataRecord::Topic {
            replication_factor: 2,
            ..
        }
    ));
    assert_eq!(records.len(), 7);
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for (p, r) in records[1..].iter().enumerate() {
        let MetadataRecord::Partition {
            partition,
            replicas,
            isr,
            leader,
            leader_epoch,
            partition_epoch,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(*partition, p as i32);
        assert_eq!(replicas.len(), 2);
        assert_ne!(replicas[0], replicas[1]);
        assert_eq!(isr, replicas);
        assert_eq!(*leader, replicas[0]);
        assert_eq!((*leader_epoch, *partition_epoch), (0, 0));
        *leaders.entry(*leader).or_default() += 1;
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    // Same inputs, same placement.
    assert_eq!(
        h.state
            .create_topic(&Harness::create_request("t", 6, 2), id)
            .unwrap()
            .0,
        records
    );
}

#[test]
fn placement_is_rack_aware() {
    let mut h = Harness::new();
    for (n, rack) in [(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")] {
        h.start(n, Some(rack));
    }
    let id = h.create_topic("t", 12, 3);
    for (_, p) in h.state.partitions(&id) {
        let racks: BTreeSet<_> = p
            .replicas
            .iter()
            .map(|b| h.state.broker(*b).unwrap().rack.clone())
            .collect();
        assert_eq!(racks.len(), 3, "{p:?}");
    }
}

#[test]
fn fenced_brokers_only_follow_and_stay_out_of_the_isr() {
    let mut h = cluster(2);
    h.register(3, None);
    let id = h.create_topic("t", 4, 3);
    for (_, p) in h.state.partitions(&id) {
        assert_eq!(p.replicas.len(), 3);
        assert!(!p.isr.contains(&3));
        assert_ne!(p.leader, 3);
        assert_eq!(p.leader, p.isr[0]);
    }
}

#[test]
fn replication_factor_errors() {
    let mut h = cluster(3);
    let e = refused(&h, &Harness::create_request("t", 1, 4));
    assert_eq!(e.code, ErrorCode::InvalidReplicationFactor);
    assert_eq!(
        e.message,
        "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered."
    );
    let e = refused(&h, &Harness::create_request("t", 1, 0));
    assert_eq!(e.code, ErrorCode::InvalidReplicationFactor);
    assert_eq!(
        e.message,
        "Replication factor must be larger than 0, or -1 to use the default value."
    );
    let e = refused(&h, &Harness::create_request("t", 0, 1));
    assert_eq!(e.code, ErrorCode::InvalidPartitions);
    assert_eq!(
        e.message,
        "Number of partitions was set to an invalid non-positive value."
    );
    for n in 1..=3 {
        h.heartbeat(n, true, false).unwrap();
    }
    let e = refused(&h, &Harness::create_request("t", 1, 1));
    assert_eq!(
        e.message,
        "Unable to replicate the partition 1 time(s): All brokers are currently fenced."
    );
    let e = refused(&Harness::new(), &Harness::create_request("t", 1, 1));
    assert_eq!(e.code, ErrorCode::InvalidReplicationFactor);
}

#[test]
fn name_and_config_errors() {
    let mut h = cluster(1);
    h.create_topic("a.b", 1, 1);
    let e = refused(&h, &Harness::create_request("a.b", 1, 1));
    assert_eq!(e.code, ErrorCode::TopicAlreadyExists);
    assert_eq!(e.message, "Topic 'a.b' already exists.");
    let e = refused(&h, &Harness::create_request("a_b", 1, 1));
    assert_eq!(e.code, ErrorCode::InvalidTopicException);
    assert_eq!(e.message, "Topic 'a_b' collides with existing topic: a.b");
    let e = refused(&h, &Harness::create_request("a b", 1, 1));
    assert_eq!(e.code, ErrorCode::InvalidTopicException);
    let mut req = Harness::create_request("t", 1, 1);
    req.configs.insert("retention.ms".into(), "x".into());
    let e = refused(&h, &req);
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    assert_eq!(
        e.message,
        "Invalid value x for configuration retention.ms: Not a number of type LONG"
    );
}

#[test]
fn manual_assignments() {
    let mut h = cluster(3);
    h.register(4, None);
    let manual = |parts: &[(i32, &[i32])]| {
        let mut req = Harness::create_request("m", -1, -1);
        req.assignments = parts.iter().map(|(p, r)| (*p, r.to_vec())).collect();
        req
    };
    type Parts<'a> = &'a [(i32, &'a [i32])];
    let cases: &[(Parts<'_>, &str)] = &[
        (&[(0, &[])], "The manual partition assignment includes an empty replica list."),
        (
            &[(0, &[1, 9])],
            "The manual partition assignment includes broker 9, but no such broker is registered.",
        ),
        (
            &[(0, &[2, 1, 2])],
            "The manual partition assignment includes the broker 2 more than once.",
        ),
        (
            &[(0, &[1, 2]), (1, &[3])],
            "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s).",
        ),
        (
            &[(0, &[1]), (2, &[2])],
            "partitions should be a consecutive 0-based integer sequence",
        ),
        (
            &[(0, &[4])],
            "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown.",
        ),
    ];
    for (parts, message) in cases {
        let e = refused(&h, &manual(parts));
        assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment, "{message}");
        assert_eq!(e.message, *message);
    }
    let id = Uuid::from_u128(5);
    let result = h
        .state
        .create_topic(&manual(&[(0, &[4, 2]), (1, &[3, 1])]), id);
    let reply = h.run(result);
    assert_eq!((reply.partitions, reply.replication_factor), (2, 2));
    let p0 = h.state.partition(&id, 0).unwrap();
    assert_eq!(
        (p0.replicas.clone(), p0.isr.clone(), p0.leader),
        (vec![4, 2], vec![2], 2)
    );
    let p1 = h.state.partition(&id, 1).unwrap();
    assert_eq!((p1.isr.clone(), p1.leader), (vec![3, 1], 3));
}

#[test]
fn create_partitions() {
    let mut h = cluster(3);
    let e = h.state.create_partitions("nope", 2, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownTopicOrPartition);
    let id = h.create_topic("t", 2, 2);
    let e = h.state.create_partitions("t", 2, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidPartitions);
    assert_eq!(e.message, "Topic already has 2 partition(s).");
    let e = h.state.create_partitions("t", 1, None).unwrap_err();
    assert_eq!(
        e.message,
        "The topic t currently has 2 partition(s); 1 would not be an increase."
    );
    let e = h
        .state
        .create_partitions("t", 4, Some(&[vec![1, 2]]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        e.message,
        "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."
    );
    let e = h
        .state
        .create_partitions("t", 3, Some(&[vec![1, 2, 3]]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    let result = h.state.create_partitions("t", 3, Some(&[vec![3, 1]]));
    h.run(result);
    let p = h.state.partition(&id, 2).unwrap();
    assert_eq!((p.replicas.clone(), p.leader), (vec![3, 1], 3));
    let result = h.state.create_partitions("t", 6, None);
    h.run(result);
    assert_eq!(h.state.topic("t").unwrap().partitions, 6);
    for (_, p) in h.state.partitions(&id) {
        assert_eq!(p.replicas.len(), 2);
        assert_eq!(p.leader, p.replicas[0]);
    }
    h.assert_snapshot_round_trip();
}

#[test]
fn delete_topic_and_configs() {
    let mut h = cluster(2);
    let id = h.create_topic("t", 2, 2);
    let e = h
        .state
        .alter_topic_configs("nope", &[("retention.ms".into(), Some("1".into()))])
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownTopicOrPartition);
    let e = h
        .state
        .alter_topic_configs("t", &[("retention.ms".into(), Some("-9".into()))])
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidConfig);
    let result = h
        .state
        .alter_topic_configs("t", &[("retention.ms".into(), Some("1000".into()))]);
    h.run(result);
    assert_eq!(
        h.state
            .topic("t")
            .unwrap()
            .configs
            .get("retention.ms")
            .map(String::as_str),
        Some("1000")
    );
    let (records, ()) = h
        .state
        .alter_topic_configs("t", &[("retention.ms".into(), Some("1000".into()))])
        .unwrap();
    assert!(records.is_empty());
    let e = h.state.delete_topic(&Uuid::from_u128(1)).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownTopicId);
    let result = h.state.delete_topic(&id);
    h.run(result);
    assert!(h.state.topic("t").is_none());
    assert!(h.state.partition(&id, 0).is_none());
    assert_eq!(h.state.partitions_led_by(1).count(), 0);
    assert_eq!(h.state.partitions_with_replica_in_isr(2).count(), 0);
    h.assert_snapshot_round_trip();
}

#[test]
fn create_partitions_on_fenced_brokers() {
    let mut h = cluster(2);
    h.register(3, None);
    h.create_topic("t", 1, 2);
    // A fenced replica is fine while another one is active.
    h.state
        .create_partitions("t", 2, Some(&[vec![3, 1]]))
        .unwrap();
    let e = h
        .state
        .create_partitions("t", 2, Some(&[vec![3, 3]]))
        .unwrap_err();
    assert_eq!(
        e.message,
        "The manual partition assignment includes the broker 3 more than once."
    );
    h.heartbeat(1, true, false).unwrap();
    h.heartbeat(2, true, false).unwrap();
    let e = h
        .state
        .create_partitions("t", 2, Some(&[vec![3, 1]]))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        e.message,
        "All brokers specified in the manual partition assignment for partition 1 are fenced or in controlled shutdown."
    );
    let e = h.state.create_partitions("t", 2, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicationFactor);
    assert_eq!(e.message, "All brokers are currently fenced.");
}
