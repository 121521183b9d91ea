//! Broker lifecycle commands: BrokerRegistration, BrokerHeartbeat, session expiry, controlled
//! shutdown, UnregisterBroker, AllocateProducerIds, cluster id bootstrap.

mod common;

use common::{Harness, CLUSTER_ID};
use gregor_controller::{BrokerHeartbeatRequest, MetadataRecord, NO_LEADER};
use gregor_protocol::ErrorCode;

#[test]
fn bootstrap_sets_the_cluster_id_once() {
    let h = Harness::new();
    assert_eq!(h.state.cluster_id(), Some(CLUSTER_ID));
    assert!(h.state.bootstrap(CLUSTER_ID).unwrap().0.is_empty());
    let e = h.state.bootstrap("other").unwrap_err();
    assert_eq!(e.code, ErrorCode::InconsistentClusterId);
    assert_eq!(
        e.message,
        format!("Expected cluster ID {CLUSTER_ID}, but got cluster ID other")
    );
}

#[test]
fn a_new_incarnation_is_fenced_and_its_epoch_is_its_offset() {
    let mut h = Harness::new();
    let inc = h.fresh_incarnation();
    let (records, reply) =
        h.hb.register_broker(&h.state, &Harness::registration(1, inc, Some("r1")), h.now)
            .unwrap();
    assert_eq!(reply.broker_epoch, None);
    assert_eq!(records.len(), 1);
    let offset = h.commit(records);
    let b = h.state.broker(1).unwrap();
    assert_eq!(b.epoch, offset);
    assert_eq!(b.registration_offset, offset);
    assert!(b.fenced && !b.in_controlled_shutdown);
    assert_eq!(b.incarnation_id, inc);
    assert_eq!(b.rack.as_deref(), Some("r1"));
    assert_eq!(b.endpoint("PLAINTEXT").unwrap().host, "broker1");
    assert_eq!(h.state.unfenced_brokers().count(), 0);
}

#[test]
fn registration_with_another_cluster_id_is_refused() {
    let h = Harness::new();
    let mut hb = h.hb.clone();
    let mut req = Harness::registration(1, uuid::Uuid::from_u128(5), None);
    req.cluster_id = "elsewhere".into();
    let e = hb.register_broker(&h.state, &req, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::InconsistentClusterId);
    assert_eq!(
        e.message,
        format!("Expected cluster ID {CLUSTER_ID}, but got cluster ID elsewhere")
    );
}

#[test]
fn heartbeats_unfence_once_caught_up() {
    let mut h = Harness::new();
    let (_, epoch) = h.register(1, None);
    let behind = BrokerHeartbeatRequest {
        node_id: 1,
        broker_epoch: epoch,
        current_metadata_offset: epoch - 1,
        want_fence: false,
        want_shutdown: false,
    };
    let (records, reply) = h.hb.heartbeat(&h.state, &behind, h.now).unwrap();
    assert!(records.is_empty());
    assert!(!reply.is_caught_up && reply.is_fenced && !reply.should_shutdown);
    let reply = h.heartbeat(1, false, false).unwrap();
    assert!(reply.is_caught_up && !reply.is_fenced);
    assert!(matches!(
        h.log.last().unwrap().1,
        MetadataRecord::BrokerRegistrationChange {
            node_id: 1,
            fenced: Some(false),
            ..
        }
    ));
    assert!(!h.state.broker(1).unwrap().fenced);
    // Steady heartbeats write nothing.
    let before = h.state.last_offset();
    h.heartbeat(1, false, false).unwrap();
    assert_eq!(h.state.last_offset(), before);
}

#[test]
fn heartbeat_errors() {
    let mut h = Harness::new();
    let e = h.heartbeat(7, false, false).unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    assert_eq!(
        e.message,
        "Receive a heartbeat from broker 7 before registration"
    );
    let (_, epoch) = h.register(1, None);
    let req = BrokerHeartbeatRequest {
        node_id: 1,
        broker_epoch: epoch + 99,
        current_metadata_offset: 100,
        want_fence: false,
        want_shutdown: false,
    };
    let e = h.hb.heartbeat(&h.state, &req, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    assert_eq!(
        e.message,
        format!(
            "Expected broker epoch {epoch}, but got broker epoch {}",
            epoch + 99
        )
    );
}

#[test]
fn want_fence_fences_and_moves_leaders() {
    let mut h = Harness::new();
    for n in 1..=2 {
        h.start(n, None);
    }
    let id = h.create_topic("t", 2, 2);
    let reply = h.heartbeat(1, true, false).unwrap();
    assert!(reply.is_fenced && !reply.should_shutdown);
    assert!(h.state.broker(1).unwrap().fenced);
    for (_, p) in h.state.partitions(&id) {
        assert_eq!(p.leader, 2);
        assert_eq!(p.isr, vec![2]);
    }
    let reply = h.heartbeat(1, false, false).unwrap();
    assert!(!reply.is_fenced);
}

#[test]
fn another_incarnation_waits_for_the_session_to_expire() {
    let mut h = Harness::new();
    h.start(1, None);
    let id = h.create_topic("t", 1, 1);
    let inc = h.fresh_incarnation();
    let req = Harness::registration(1, inc, None);
    let e = h.hb.register_broker(&h.state, &req, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration);
    assert_eq!(
        e.message,
        "Another broker is registered with that broker id. If the broker was recently restarted this should self-resolve once the heartbeat manager expires the broker's session."
    );
    h.now += 9001;
    let (records, reply) = h.hb.register_broker(&h.state, &req, h.now).unwrap();
    assert_eq!(reply.broker_epoch, None);
    // The expired incarnation is fenced first: the partition goes offline, ISR kept.
    assert!(matches!(
        records[records.len() - 2],
        MetadataRecord::BrokerRegistrationChange {
            fenced: Some(true),
            ..
        }
    ));
    let first = h.commit(records);
    let p = h.state.partition(&id, 0).unwrap();
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch),
        (NO_LEADER, vec![1], 1)
    );
    let b = h.state.broker(1).unwrap();
    assert!(b.fenced);
    assert!(b.epoch > first);
    // The new incarnation unfences and leads again.
    h.heartbeat(1, false, false).unwrap();
    let p = h.state.partition(&id, 0).unwrap();
    assert_eq!((p.leader, p.leader_epoch), (1, 2));
}

#[test]
fn a_fenced_but_live_incarnation_also_blocks_another() {
    let mut h = Harness::new();
    h.register(1, None);
    // Still recovering its logs: heartbeats while asking to stay fenced.
    let reply = h.heartbeat(1, true, false).unwrap();
    assert!(reply.is_fenced);
    let inc = h.fresh_incarnation();
    let req = Harness::registration(1, inc, None);
    let e = h.hb.register_broker(&h.state, &req, h.now).unwrap_err();
    assert_eq!(e.code, ErrorCode::DuplicateBrokerRegistration);
    // Its session expires without fencing anything (it is fenced already).
    h.now += 9001;
    assert!(h.fence_expired().is_empty());
    let result = h.hb.register_broker(&h.state, &req, h.now);
    let records = h.run(result);
    assert_eq!(records.broker_epoch, None);
    assert_eq!(h.state.broker(1).unwrap().incarnation_id, inc);
}

#[test]
fn the_same_incarnation_amends_its_registration() {
    let mut h = Harness::new();
    let (inc, epoch) = h.register(1, None);
    h.heartbeat(1, false, false).unwrap();
    let mut req = Harness::registration(1, inc, Some("rack-b"));
    req.listeners[0].port = 9093;
    let (records, reply) = h.hb.register_broker(&h.state, &req, h.now).unwrap();
    assert_eq!(reply.broker_epoch, Some(epoch));
    let offset = h.commit(records);
    let b = h.state.broker(1).unwrap();
    assert_eq!(b.epoch, epoch);
    assert_eq!(b.registration_offset, offset);
    assert!(!b.fenced, "an amendment keeps the fencing state");
    assert_eq!(b.rack.as_deref(), Some("rack-b"));
    assert_eq!(b.endpoints[0].port, 9093);
}

#[test]
fn session_expiry_fences_and_elects_from_the_isr() {
    let mut h = Harness::new();
    for n in 1..=3 {
        h.start(n, None);
    }
    let id = h.create_topic("t", 1, 3);
    let leader = h.state.partition(&id, 0).unwrap().leader;
    h.now += 5000;
    for n in (1..=3).filter(|n| *n != leader) {
        h.heartbeat(n, false, false).unwrap();
    }
    assert!(h.fence_expired().is_empty());
    h.now += 5000;
    assert_eq!(h.fence_expired(), vec![leader]);
    let p = h.state.partition(&id, 0).unwrap();
    assert_ne!(p.leader, leader);
    assert!(!p.isr.contains(&leader));
    assert_eq!(p.isr.len(), 2);
    assert_eq!((p.leader_epoch, p.partition_epoch), (1, 1));
    assert!(h.state.broker(leader).unwrap().fenced);
    let epoch = h.state.broker(leader).unwrap().epoch;
    assert!(!h.hb.has_valid_session(leader, epoch, h.now));
}

#[test]
fn fencing_the_last_isr_member_keeps_it_and_goes_offline() {
    let mut h = Harness::new();
    h.start(1, None);
    h.start(2, None);
    let id = h.create_topic("t", 1, 2);
    let p = h.state.partition(&id, 0).unwrap().clone();
    let (leader, follower) = (
        p.leader,
        p.replicas.iter().copied().find(|r| *r != p.leader).unwrap(),
    );
    // The follower leaves the ISR, then the leader dies.
    let req = gregor_controller::AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: h.state.broker(leader).unwrap().epoch,
        topic_id: id,
        partition: 0,
        leader_epoch: 0,
        new_isr_with_epochs: vec![(leader, -1)],
        leader_recovery_state: gregor_controller::LeaderRecoveryState::Recovered,
        partition_epoch: 0,
    };
    let result = h.state.alter_partition(&req);
    h.run(result);
    h.now += 6000;
    h.heartbeat(follower, false, false).unwrap();
    h.now += 6000;
    assert_eq!(h.fence_expired(), vec![leader]);
    let p = h.state.partition(&id, 0).unwrap();
    assert_eq!((p.leader, p.isr.clone()), (NO_LEADER, vec![leader]));
    assert_eq!(h.state.leaderless_partitions().count(), 1);
}

#[test]
fn unclean_election_on_fencing_when_the_topic_allows_it() {
    for (topic_level, cluster_level) in [(true, false), (false, true)] {
        let mut h = Harness::new();
        h.start(1, None);
        h.start(2, None);
        let mut req = Harness::create_request("t", 1, 2);
        req.assignments.insert(0, vec![1, 2]);
        if topic_level {
            req.configs
                .insert("unclean.leader.election.enable".into(), "true".into());
        }
        let id = uuid::Uuid::from_u128(77);
        let result = h.state.create_topic(&req, id);
        h.run(result);
        if cluster_level {
            h.commit(vec![MetadataRecord::BrokerConfig {
                resource_name: String::new(),
                key: "unclean.leader.election.enable".into(),
                value: Some("true".into()),
            }]);
        }
        let shrink = gregor_controller::AlterPartitionRequest {
            broker_id: 1,
            broker_epoch: h.state.broker(1).unwrap().epoch,
            topic_id: id,
            partition: 0,
            leader_epoch: 0,
            new_isr_with_epochs: vec![(1, -1)],
            leader_recovery_state: gregor_controller::LeaderRecoveryState::Recovered,
            partition_epoch: 0,
        };
        let result = h.state.alter_partition(&shrink);
        h.run(result);
        h.heartbeat(1, true, false).unwrap();
        let p = h.state.partition(&id, 0).unwrap();
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
        assert_eq!(
            p.leader_recovery_state,
            gregor_controller::LeaderRecoveryState::Recovering
        );
    }
}

#[test]
fn controlled_shutdown_moves_leadership_then_lets_the_broker_go() {
    let mut h = Harness::new();
    for n in 1..=3 {
        h.start(n, None);
    }
    let id = h.create_topic("t", 3, 3);
    assert!(h.state.has_leaderships(1));
    let reply = h.heartbeat(1, false, true).unwrap();
    assert!(reply.in_controlled_shutdown && !reply.should_shutdown && !reply.is_fenced);
    let b = h.state.broker(1).unwrap();
    assert!(b.in_controlled_shutdown && !b.fenced);
    assert!(!h.state.has_leaderships(1));
    assert_eq!(h.state.partitions_with_replica_in_isr(1).count(), 0);
    for (_, p) in h.state.partitions(&id) {
        assert_ne!(p.leader, 1);
        assert_eq!(p.isr.len(), 2);
    }
    // The other brokers have not replayed the moves yet.
    let reply = h.heartbeat(1, false, true).unwrap();
    assert!(reply.in_controlled_shutdown && !reply.should_shutdown);
    h.heartbeat(2, false, false).unwrap();
    h.heartbeat(3, false, false).unwrap();
    let reply = h.heartbeat(1, false, true).unwrap();
    assert!(reply.should_shutdown && reply.is_fenced);
    assert!(h.state.broker(1).unwrap().fenced);
    // New topics avoid it.
    let id2 = h.create_topic("u", 4, 2);
    for (_, p) in h.state.partitions(&id2) {
        assert!(!p.replicas.contains(&1), "{p:?}");
    }
}

#[test]
fn shutdown_is_immediate_for_a_broker_leading_nothing() {
    let mut h = Harness::new();
    h.start(1, None);
    let reply = h.heartbeat(1, false, true).unwrap();
    assert!(reply.should_shutdown && reply.is_fenced);
    // A fenced broker asking to shut down may go at once too.
    h.register(2, None);
    let reply = h.heartbeat(2, false, true).unwrap();
    assert!(reply.should_shutdown);
}

#[test]
fn unregister_broker() {
    let mut h = Harness::new();
    let e = h.state.unregister_broker(9).unwrap_err();
    assert_eq!(e.code, ErrorCode::BrokerIdNotRegistered);
    assert_eq!(e.message, "Broker ID 9 is not currently registered");
    h.start(1, None);
    h.start(2, None);
    let id = h.create_topic("t", 2, 2);
    let result = h.state.unregister_broker(1);
    h.run(result);
    assert!(h.state.broker(1).is_none());
    for (_, p) in h.state.partitions(&id) {
        assert_eq!((p.leader, p.isr.clone()), (2, vec![2]));
    }
    // A stale unregistration (an older epoch) is ignored on replay.
    h.commit(vec![MetadataRecord::UnregisterBroker {
        node_id: 2,
        broker_epoch: -5,
    }]);
    assert!(h.state.broker(2).is_some());
}

#[test]
fn producer_id_blocks() {
    let mut h = Harness::new();
    let epoch = h.start(1, None);
    let result = h.state.allocate_producer_ids(1, epoch);
    assert_eq!(h.run(result), 0..1000);
    let result = h.state.allocate_producer_ids(1, epoch);
    assert_eq!(h.run(result), 1000..2000);
    let e = h.state.allocate_producer_ids(1, epoch + 1).unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    let e = h.state.allocate_producer_ids(5, 0).unwrap_err();
    assert_eq!(e.code, ErrorCode::StaleBrokerEpoch);
    assert_eq!(e.message, "No broker registration found for broker id 5");
    h.assert_snapshot_round_trip();
}

#[test]
fn activate_gives_every_registered_broker_a_new_session() {
    let mut h = Harness::new();
    h.start(1, None);
    h.register(2, None);
    let mut hb = gregor_controller::BrokerHeartbeatManager::new(9000);
    hb.activate(&h.state, h.now + 60_000);
    let (e1, e2) = (
        h.state.broker(1).unwrap().epoch,
        h.state.broker(2).unwrap().epoch,
    );
    assert!(hb.has_valid_session(1, e1, h.now + 60_000));
    assert!(
        !hb.has_valid_session(2, e2, h.now + 60_000),
        "fenced: no session"
    );
    assert_eq!(hb.next_check_ms(), Some(h.now + 69_000));
}

#[test]
fn ten_thousand_partitions() {
    let mut h = Harness::new();
    for n in 1..=5 {
        h.start(n, None);
    }
    let id = h.create_topic("big", 10_000, 3);
    let led_by_1 = h.state.partitions_led_by(1).count();
    assert_eq!(led_by_1, 2000);
    assert_eq!(h.state.partitions_with_replica_in_isr(1).count(), 6000);
    let reply = h.heartbeat(1, true, false).unwrap();
    assert!(reply.is_fenced);
    assert_eq!(h.state.partitions_led_by(1).count(), 0);
    assert_eq!(h.state.partitions_with_replica_in_isr(1).count(), 0);
    assert_eq!(h.state.leaderless_partitions().count(), 0);
    assert!(h
        .state
        .partitions(&id)
        .all(|(_, p)| p.isr.len() == if p.replicas.contains(&1) { 2 } else { 3 }));
    h.heartbeat(1, false, false).unwrap();
    let result = h
        .state
        .elect_leaders(gregor_controller::ElectionType::Preferred, None);
    let results = h.run(result);
    assert_eq!(
        results.len(),
        2000,
        "only the partitions whose preferred leader is 1"
    );
    assert!(
        results.iter().all(|r| r.error.is_some()),
        "1 is not back in the ISRs"
    );
    h.assert_snapshot_round_trip();
}

#[test]
fn producer_ids_run_out_as_kafka() {
    let mut h = Harness::new();
    let epoch = h.start(1, None);
    h.commit(vec![MetadataRecord::ProducerIds {
        next_block_start: i64::MAX - 10,
        broker_id: 1,
        broker_epoch: epoch,
    }]);
    let e = h.state.allocate_producer_ids(1, epoch).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownServerError);
    assert_eq!(
        e.message,
        "Exhausted all producerIds as the next block's end producerId has exceeded the int64 type limit"
    );
}
