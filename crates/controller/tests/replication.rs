//! AlterPartition, ElectLeaders and partition reassignments, with Kafka's validation order and
//! error codes.

mod common;

use common::Harness;
use gregor_controller::{
    AlterPartitionRequest, ElectionType, LeaderRecoveryState, MetadataRecord,
    PartitionRegistration, ReassignmentTarget, NO_LEADER,
};
use gregor_protocol::ErrorCode;
use uuid::Uuid;

const T: Uuid = Uuid::from_u128(0x1111);

/// Brokers 1..=n unfenced, topic "t" (id [`T`]) with one partition on replicas [1, 2, 3].
fn setup(n: i32) -> Harness {
    let mut h = Harness::new();
    for b in 1..=n {
        h.start(b, None);
    }
    let mut req = Harness::create_request("t", -1, -1);
    req.assignments.insert(0, vec![1, 2, 3]);
    let result = h.state.create_topic(&req, T);
    h.run(result);
    h
}

/// Overwrites partition 0 of "t".
fn set_partition(h: &mut Harness, reg: PartitionRegistration) {
    h.commit(vec![reg.to_record(T, 0)]);
}

fn part(h: &Harness) -> PartitionRegistration {
    h.state.partition(&T, 0).unwrap().clone()
}

fn alter(h: &Harness, isr: &[i32]) -> AlterPartitionRequest {
    let p = part(h);
    AlterPartitionRequest {
        broker_id: p.leader,
        broker_epoch: h.state.broker(p.leader).map_or(-1, |b| b.epoch),
        topic_id: T,
        partition: 0,
        leader_epoch: p.leader_epoch,
        new_isr_with_epochs: isr.iter().map(|b| (*b, -1)).collect(),
        leader_recovery_state: p.leader_recovery_state,
        partition_epoch: p.partition_epoch,
    }
}

fn code(h: &Harness, req: &AlterPartitionRequest) -> ErrorCode {
    match h.state.alter_partition(req) {
        Ok(_) => ErrorCode::None,
        Err(e) => e.code,
    }
}

#[test]
fn alter_partition_shrinks_and_expands_the_isr() {
    let mut h = setup(3);
    let result = h.state.alter_partition(&alter(&h, &[1, 2]));
    let reply = h.run(result);
    assert_eq!(reply.code, ErrorCode::None);
    assert_eq!(reply.isr, vec![1, 2]);
    assert_eq!(
        (reply.leader, reply.leader_epoch, reply.partition_epoch),
        (1, 0, 1)
    );
    assert_eq!(part(&h).isr, vec![1, 2]);
    assert_eq!(h.state.partitions_with_replica_in_isr(3).count(), 0);
    let mut req = alter(&h, &[1, 2, 3]);
    req.new_isr_with_epochs[2].1 = h.state.broker(3).unwrap().epoch;
    let result = h.state.alter_partition(&req);
    let reply = h.run(result);
    assert_eq!((reply.isr, reply.partition_epoch), (vec![1, 2, 3], 2));
    // The same ISR again: no record, the current state.
    let (records, reply) = h.state.alter_partition(&alter(&h, &[1, 2, 3])).unwrap();
    assert!(records.is_empty());
    assert_eq!(reply.partition_epoch, 2);
}

#[test]
fn alter_partition_validation_order() {
    let mut h = setup(4);
    set_partition(
        &mut h,
        PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 1,
            leader_recovery_state: LeaderRecoveryState::Recovered,
            leader_epoch: 5,
            partition_epoch: 9,
        },
    );
    let ok = alter(&h, &[1, 2, 3]);
    assert_eq!(code(&h, &ok), ErrorCode::None);
    let with = |f: &dyn Fn(&mut AlterPartitionRequest)| {
        let mut r = ok.clone();
        f(&mut r);
        code(&h, &r)
    };
    assert_eq!(with(&|r| r.broker_epoch += 1), ErrorCode::StaleBrokerEpoch);
    assert_eq!(with(&|r| r.broker_id = 9), ErrorCode::StaleBrokerEpoch);
    assert_eq!(
        with(&|r| r.topic_id = Uuid::from_u128(1)),
        ErrorCode::UnknownTopicId
    );
    assert_eq!(
        with(&|r| r.partition = 1),
        ErrorCode::UnknownTopicOrPartition
    );
    assert_eq!(with(&|r| r.leader_epoch = 6), ErrorCode::NotController);
    assert_eq!(with(&|r| r.partition_epoch = 10), ErrorCode::NotController);
    assert_eq!(with(&|r| r.leader_epoch = 4), ErrorCode::FencedLeaderEpoch);
    let broker2 = h.state.broker(2).unwrap().epoch;
    assert_eq!(
        with(&|r| {
            r.broker_id = 2;
            r.broker_epoch = broker2;
        }),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        with(&|r| r.partition_epoch = 8),
        ErrorCode::InvalidUpdateVersion
    );
    assert_eq!(
        with(&|r| r.new_isr_with_epochs.push((4, -1))),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        with(&|r| r.new_isr_with_epochs.push((2, -1))),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        with(&|r| {
            r.new_isr_with_epochs.remove(0);
        }),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        with(&|r| r.leader_recovery_state = LeaderRecoveryState::Recovering),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        with(&|r| r.new_isr_with_epochs[1].1 = broker2 + 1),
        ErrorCode::IneligibleReplica
    );
    assert_eq!(
        with(&|r| r.new_isr_with_epochs[1].1 = broker2),
        ErrorCode::None
    );
    // Fenced, shutting down, unregistered members are ineligible.
    h.heartbeat(3, true, false).unwrap();
    let e = h.state.alter_partition(&ok).unwrap_err();
    assert_eq!(e.code, ErrorCode::IneligibleReplica);
    assert!(e.message.contains("3 (fenced)"), "{}", e.message);
    h.heartbeat(3, false, false).unwrap();
    h.commit(vec![MetadataRecord::BrokerRegistrationChange {
        node_id: 3,
        broker_epoch: h.state.broker(3).unwrap().epoch,
        fenced: None,
        in_controlled_shutdown: Some(true),
    }]);
    let e = h.state.alter_partition(&ok).unwrap_err();
    assert!(e.message.contains("3 (shutting down)"), "{}", e.message);
    h.commit(vec![MetadataRecord::UnregisterBroker {
        node_id: 3,
        broker_epoch: h.state.broker(3).unwrap().epoch,
    }]);
    let e = h.state.alter_partition(&ok).unwrap_err();
    assert!(e.message.contains("3 (not registered)"), "{}", e.message);
}

#[test]
fn recovering_leader_rules() {
    let mut h = setup(3);
    set_partition(
        &mut h,
        PartitionRegistration {
            replicas: vec![1, 2, 3],
            isr: vec![2],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 2,
            leader_recovery_state: LeaderRecoveryState::Recovering,
            leader_epoch: 1,
            partition_epoch: 1,
        },
    );
    let mut req = alter(&h, &[2, 3]);
    assert_eq!(code(&h, &req), ErrorCode::InvalidRequest);
    req.leader_recovery_state = LeaderRecoveryState::Recovered;
    let result = h.state.alter_partition(&req);
    let reply = h.run(result);
    assert_eq!(reply.leader_recovery_state, LeaderRecoveryState::Recovered);
    assert_eq!((reply.isr, reply.leader_epoch), (vec![2, 3], 1));
}

#[test]
fn preferred_elections() {
    let mut h = setup(3);
    let only = |p: i32| Some(vec![("t".to_string(), vec![p])]);
    let (records, results) = h
        .state
        .elect_leaders(ElectionType::Preferred, only(0).as_deref())
        .unwrap();
    assert!(records.is_empty());
    assert_eq!(
        results[0].error.as_ref().unwrap().code,
        ErrorCode::ElectionNotNeeded
    );
    // Leader 2, preferred 1 out of the ISR: not available.
    let mut reg = part(&h);
    reg.leader = 2;
    reg.isr = vec![2, 3];
    set_partition(&mut h, reg.clone());
    let (_, results) = h
        .state
        .elect_leaders(ElectionType::Preferred, only(0).as_deref())
        .unwrap();
    assert_eq!(
        results[0].error.as_ref().unwrap().code,
        ErrorCode::PreferredLeaderNotAvailable
    );
    // Back in the ISR: elected.
    reg.isr = vec![1, 2, 3];
    set_partition(&mut h, reg);
    let result = h
        .state
        .elect_leaders(ElectionType::Preferred, only(0).as_deref());
    let results = h.run(result);
    assert!(results[0].error.is_none());
    assert_eq!(part(&h).leader, 1);
    assert_eq!(part(&h).leader_epoch, 1);
    // Unknown names.
    let list = vec![("nope".to_string(), vec![0]), ("t".to_string(), vec![7])];
    let (_, results) = h
        .state
        .elect_leaders(ElectionType::Preferred, Some(&list))
        .unwrap();
    assert_eq!(
        results[0].error.as_ref().unwrap().message,
        "No such topic as nope"
    );
    assert_eq!(
        results[1].error.as_ref().unwrap().message,
        "No such partition as t-7"
    );
    assert!(results
        .iter()
        .all(|r| r.error.as_ref().unwrap().code == ErrorCode::UnknownTopicOrPartition));
    // All partitions: those needing nothing are left out.
    let (_, results) = h
        .state
        .elect_leaders(ElectionType::Preferred, None)
        .unwrap();
    assert!(results.is_empty());
}

#[test]
fn unclean_elections() {
    let mut h = setup(3);
    let only = Some(vec![("t".to_string(), vec![0])]);
    let (_, results) = h
        .state
        .elect_leaders(ElectionType::Unclean, only.as_deref())
        .unwrap();
    assert_eq!(
        results[0].error.as_ref().unwrap().code,
        ErrorCode::ElectionNotNeeded
    );
    h.heartbeat(1, true, false).unwrap();
    let mut reg = part(&h);
    reg.leader = NO_LEADER;
    reg.isr = vec![1];
    set_partition(&mut h, reg);
    h.heartbeat(2, true, false).unwrap();
    h.heartbeat(3, true, false).unwrap();
    let (_, results) = h
        .state
        .elect_leaders(ElectionType::Unclean, only.as_deref())
        .unwrap();
    assert_eq!(
        results[0].error.as_ref().unwrap().code,
        ErrorCode::EligibleLeadersNotAvailable
    );
    h.heartbeat(3, false, false).unwrap();
    let result = h
        .state
        .elect_leaders(ElectionType::Unclean, only.as_deref());
    let results = h.run(result);
    assert!(results[0].error.is_none());
    let p = part(&h);
    assert_eq!((p.leader, p.isr), (3, vec![3]));
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovering);
}

#[test]
fn reassignment_moving_the_leader_completes_with_new_leader_elected() {
    let mut h = setup(4);
    let target = |replicas: Option<Vec<i32>>| {
        vec![ReassignmentTarget {
            topic: "t".into(),
            partition: 0,
            replicas,
        }]
    };
    let result = h
        .state
        .alter_partition_reassignments(&target(Some(vec![4, 2, 3])));
    let results = h.run(result);
    assert_eq!(results, vec![Ok(())]);
    let p = part(&h);
    assert_eq!(p.replicas, vec![4, 2, 3, 1]);
    assert_eq!(
        (p.adding_replicas.clone(), p.removing_replicas.clone()),
        (vec![4], vec![1])
    );
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
    let listed = h.state.list_partition_reassignments(None);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].replicas.clone(),
            listed[0].adding_replicas.clone()
        ),
        (vec![4, 2, 3, 1], vec![4])
    );
    let some = vec![("t".to_string(), vec![0, 5]), ("nope".to_string(), vec![0])];
    assert_eq!(h.state.list_partition_reassignments(Some(&some)).len(), 1);
    // Broker 4 catches up: the reassignment completes and leadership leaves 1.
    let result = h.state.alter_partition(&alter(&h, &[1, 2, 3, 4]));
    let reply = h.run(result);
    assert_eq!(reply.code, ErrorCode::NewLeaderElected);
    let p = part(&h);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![4, 2, 3], vec![2, 3, 4], 4)
    );
    assert_eq!(p.leader_epoch, 1);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert!(h.state.list_partition_reassignments(None).is_empty());
}

#[test]
fn reassignment_dropping_a_follower_bumps_the_leader_epoch() {
    let mut h = setup(4);
    let result = h.state.alter_partition_reassignments(&[ReassignmentTarget {
        topic: "t".into(),
        partition: 0,
        replicas: Some(vec![1, 2, 4]),
    }]);
    h.run(result);
    let result = h.state.alter_partition(&alter(&h, &[1, 2, 3, 4]));
    let reply = h.run(result);
    assert_eq!(reply.code, ErrorCode::None);
    let p = part(&h);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![1, 2, 4], vec![1, 2, 4], 1)
    );
    assert_eq!(
        p.leader_epoch, 1,
        "a removed replica must see a new leader epoch"
    );
}

#[test]
fn reordering_replicas_completes_at_once_and_cancel() {
    let mut h = setup(4);
    let target = |replicas: Option<Vec<i32>>| {
        vec![ReassignmentTarget {
            topic: "t".into(),
            partition: 0,
            replicas,
        }]
    };
    let result = h
        .state
        .alter_partition_reassignments(&target(Some(vec![3, 2, 1])));
    h.run(result);
    let p = part(&h);
    assert_eq!(p.replicas, vec![3, 2, 1]);
    assert!(!p.is_reassigning());
    // Nothing to cancel.
    let (_, results) = h
        .state
        .alter_partition_reassignments(&target(None))
        .unwrap();
    assert_eq!(
        results[0].as_ref().unwrap_err().code,
        ErrorCode::NoReassignmentInProgress
    );
    // Start one, cancel it.
    let result = h
        .state
        .alter_partition_reassignments(&target(Some(vec![4, 2, 1])));
    h.run(result);
    assert!(part(&h).is_reassigning());
    let result = h.state.alter_partition_reassignments(&target(None));
    assert_eq!(h.run(result), vec![Ok(())]);
    let p = part(&h);
    assert!(!p.is_reassigning());
    assert_eq!(p.replicas, vec![2, 1, 3]);
    assert_eq!(p.isr, vec![1, 2, 3]);
}

#[test]
fn reassignment_errors() {
    let h = setup(3);
    let targets = vec![
        ReassignmentTarget {
            topic: "nope".into(),
            partition: 0,
            replicas: Some(vec![1]),
        },
        ReassignmentTarget {
            topic: "t".into(),
            partition: 9,
            replicas: Some(vec![1]),
        },
        ReassignmentTarget {
            topic: "t".into(),
            partition: 0,
            replicas: Some(vec![1, 9]),
        },
        ReassignmentTarget {
            topic: "t".into(),
            partition: 0,
            replicas: Some(vec![]),
        },
    ];
    let (records, results) = h.state.alter_partition_reassignments(&targets).unwrap();
    assert!(records.is_empty());
    let errors: Vec<_> = results.into_iter().map(|r| r.unwrap_err()).collect();
    assert_eq!(errors[0].code, ErrorCode::UnknownTopicOrPartition);
    assert_eq!(errors[0].message, "Unable to find a topic named nope.");
    assert_eq!(errors[1].message, "Unable to find partition t:9.");
    assert_eq!(errors[2].code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        errors[2].message,
        "The manual partition assignment includes broker 9, but no such broker is registered."
    );
    assert_eq!(
        errors[3].message,
        "The manual partition assignment includes an empty replica list."
    );
}

#[test]
fn cancelling_when_only_adding_replicas_are_in_sync_needs_unclean_election() {
    let mut h = setup(4);
    set_partition(
        &mut h,
        PartitionRegistration {
            replicas: vec![4, 1],
            isr: vec![4],
            removing_replicas: vec![1],
            adding_replicas: vec![4],
            leader: 4,
            leader_recovery_state: LeaderRecoveryState::Recovered,
            leader_epoch: 3,
            partition_epoch: 3,
        },
    );
    let cancel = [ReassignmentTarget {
        topic: "t".into(),
        partition: 0,
        replicas: None,
    }];
    let (_, results) = h.state.alter_partition_reassignments(&cancel).unwrap();
    let e = results[0].clone().unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidReplicaAssignment);
    assert_eq!(
        e.message,
        "Unable to revert partition assignment for t:0 because it would require an unclean leader election."
    );
    let result = h.state.alter_topic_configs(
        "t",
        &[("unclean.leader.election.enable".into(), Some("true".into()))],
    );
    h.run(result);
    let result = h.state.alter_partition_reassignments(&cancel);
    assert_eq!(h.run(result), vec![Ok(())]);
    let p = part(&h);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone(), p.leader),
        (vec![1], vec![1], 1)
    );
}

#[test]
fn periodic_unclean_election_and_leader_balancing() {
    let mut h = setup(3);
    let mut reg = part(&h);
    reg.leader = NO_LEADER;
    reg.isr = vec![1];
    set_partition(&mut h, reg);
    h.heartbeat(1, true, false).unwrap();
    // Unclean election off: nothing to do.
    let (records, more) = h.state.elect_unclean_leaders(1000).unwrap();
    assert!(records.is_empty() && !more);
    // Enabled dynamically for the cluster: the next periodic run elects.
    h.commit(vec![MetadataRecord::BrokerConfig {
        resource_name: String::new(),
        key: "unclean.leader.election.enable".into(),
        value: Some("true".into()),
    }]);
    let result = h.state.elect_unclean_leaders(1000);
    h.run(result);
    let p = part(&h);
    assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    assert_eq!(p.leader_recovery_state, LeaderRecoveryState::Recovering);
    // The preferred replica 1 comes back and catches up: balancing moves leadership to it.
    h.heartbeat(1, false, false).unwrap();
    let mut req = alter(&h, &[2, 1]);
    req.leader_recovery_state = LeaderRecoveryState::Recovered;
    let result = h.state.alter_partition(&req);
    h.run(result);
    let (records, more) = h.state.balance_partition_leaders(0).unwrap();
    assert!(records.is_empty() && more);
    let result = h.state.balance_partition_leaders(1000);
    assert!(!h.run(result));
    assert_eq!(part(&h).leader, 1);
    let (records, _) = h.state.balance_partition_leaders(1000).unwrap();
    assert!(records.is_empty());
}
