//! The leader's rules one by one (ports of the cases in Kafka's `PartitionTest` and
//! `ReplicaTest` that concern the replication decisions).

use gregor_replication::{
    AlterPartitionOutcome, BrokerEligibility, EpochEndOffset, ErrorCode, FollowerFetch,
    FollowerFetchOutcome, IsrChange, LeaderAndIsr, LeaderConfig, LeaderLogView,
    LeaderRecoveryState, LeaderState, MetadataOutcome, PartitionState, NO_BROKER_EPOCH,
    UNKNOWN_OFFSET,
};

const LEADER: i32 = 1;
const EPOCH: i32 = 5;
const BROKER_EPOCH: i64 = 100;
const LAG: i64 = 30_000;
const T0: i64 = 1_000_000;

fn config(min_isr: i32) -> LeaderConfig {
    LeaderConfig {
        broker_id: LEADER,
        broker_epoch: 7,
        min_insync_replicas: min_isr,
        replica_lag_time_max_ms: LAG,
    }
}

fn partition(replicas: &[i32], isr: &[i32]) -> PartitionState {
    PartitionState {
        leader: LEADER,
        leader_epoch: EPOCH,
        partition_epoch: 10,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        adding_replicas: vec![],
        removing_replicas: vec![],
        leader_recovery_state: LeaderRecoveryState::Recovered,
    }
}

fn view(leo: i64, hw: i64) -> LeaderLogView {
    LeaderLogView {
        log_start_offset: 0,
        log_end_offset: leo,
        high_watermark: hw,
    }
}

fn alive(_: i32) -> BrokerEligibility {
    BrokerEligibility::alive(BROKER_EPOCH)
}

/// The leader's epoch cache: epoch 3 from 0, epoch 5 (the current one) from `epoch_start`.
fn epochs(epoch_start: i64, leo: i64) -> impl Fn(i32) -> Option<(i32, i64)> {
    move |e| match e {
        e if !(0..=EPOCH).contains(&e) => None,
        0..=2 => Some((e, 0)),
        3 | 4 => Some((3, epoch_start)),
        _ => Some((EPOCH, leo)),
    }
}

fn fetch(replica_id: i32, fetch_offset: i64) -> FollowerFetch {
    FollowerFetch {
        replica_id,
        broker_epoch: BROKER_EPOCH,
        current_leader_epoch: Some(EPOCH),
        fetch_offset,
        last_fetched_epoch: None,
        log_start_offset: 0,
    }
}

/// A leader of replicas {1,2,3} with the given ISR, whose epoch starts at `leo`.
fn leader(isr: &[i32], min_isr: i32, leo: i64, hw: i64) -> LeaderState {
    LeaderState::new(
        config(min_isr),
        &partition(&[1, 2, 3], isr),
        view(leo, hw),
        T0,
    )
}

/// A fetch with no state change expected other than the follower's; returns the outcome.
fn do_fetch(
    l: &mut LeaderState,
    f: FollowerFetch,
    now: i64,
    leo: i64,
    hw: i64,
) -> Result<FollowerFetchOutcome, ErrorCode> {
    l.on_follower_fetch(&f, now, view(leo, hw), epochs(10, leo), alive)
}

fn read(outcome: Result<FollowerFetchOutcome, ErrorCode>) -> (Option<IsrChange>, Option<i64>) {
    match outcome {
        Ok(FollowerFetchOutcome::Read {
            alter_partition,
            high_watermark,
        }) => (alter_partition.map(|r| r.change), high_watermark),
        other => panic!("expected a read, got {other:?}"),
    }
}

#[test]
fn make_leader_resets_the_followers() {
    let l = leader(&[1, 2], 1, 10, 8);
    assert_eq!(l.epoch_start_offset(), 10);
    assert_eq!(l.leader_epoch(), EPOCH);
    assert_eq!(l.partition_epoch(), 10);
    assert_eq!(l.isr(), vec![1, 2]);
    assert_eq!(l.maximal_isr(), vec![1, 2]);
    let f2 = l.follower(2).expect("2");
    assert_eq!(f2.log_end_offset, UNKNOWN_OFFSET);
    assert_eq!(f2.log_start_offset, UNKNOWN_OFFSET);
    assert_eq!(f2.last_caught_up_time_ms, T0, "ISR member: caught up now");
    assert_eq!(f2.broker_epoch, None);
    assert_eq!(l.follower(3).expect("3").last_caught_up_time_ms, 0);
    assert!(l.follower(LEADER).is_none());
    assert_eq!(l.followers().count(), 2);
    // An ISR member of unknown LEO holds the high watermark back.
    assert_eq!(
        l.maybe_increment_high_watermark(view(10, 8), T0, alive),
        None
    );
    // With ISR = {leader}, the high watermark moves to the LEO at once.
    let l = leader(&[1], 1, 10, 8);
    assert_eq!(
        l.maybe_increment_high_watermark(view(10, 8), T0, alive),
        Some(10)
    );
}

#[test]
fn fetch_errors_follow_kafkas_order() {
    let mut l = leader(&[1, 2, 3], 1, 10, 10);
    let f = fetch(2, 10);
    let older = FollowerFetch {
        current_leader_epoch: Some(EPOCH - 1),
        ..f
    };
    assert_eq!(
        do_fetch(&mut l, older, T0, 10, 10),
        Err(ErrorCode::FencedLeaderEpoch)
    );
    let newer = FollowerFetch {
        current_leader_epoch: Some(EPOCH + 1),
        ..f
    };
    assert_eq!(
        do_fetch(&mut l, newer, T0, 10, 10),
        Err(ErrorCode::UnknownLeaderEpoch)
    );
    // Not a replica: UNKNOWN_LEADER_EPOCH with an epoch, NOT_LEADER_OR_FOLLOWER without.
    assert_eq!(
        do_fetch(&mut l, fetch(4, 10), T0, 10, 10),
        Err(ErrorCode::UnknownLeaderEpoch)
    );
    let no_epoch = FollowerFetch {
        current_leader_epoch: None,
        ..fetch(4, 10)
    };
    assert_eq!(
        do_fetch(&mut l, no_epoch, T0, 10, 10),
        Err(ErrorCode::NotLeaderOrFollower)
    );
    // Out of range: past the LEO, below the log start, an epoch the leader does not know.
    assert_eq!(
        do_fetch(&mut l, fetch(2, 11), T0, 10, 10),
        Err(ErrorCode::OffsetOutOfRange)
    );
    let below_start = l.on_follower_fetch(
        &fetch(2, 3),
        T0,
        LeaderLogView {
            log_start_offset: 4,
            log_end_offset: 10,
            high_watermark: 10,
        },
        epochs(10, 10),
        alive,
    );
    assert_eq!(below_start, Err(ErrorCode::OffsetOutOfRange));
    let unknown_epoch = FollowerFetch {
        last_fetched_epoch: Some(EPOCH + 3),
        ..f
    };
    assert_eq!(
        do_fetch(&mut l, unknown_epoch, T0, 10, 10),
        Err(ErrorCode::OffsetOutOfRange)
    );
    // A stale broker epoch (KIP-903): the follower's state is untouched.
    let stale = FollowerFetch {
        broker_epoch: BROKER_EPOCH - 1,
        ..f
    };
    assert_eq!(
        do_fetch(&mut l, stale, T0, 10, 10),
        Err(ErrorCode::NotLeaderOrFollower)
    );
    assert_eq!(l.follower(2).expect("2").log_end_offset, UNKNOWN_OFFSET);
    // -1 skips the check; a newer epoch than the cache's too (not yet in the metadata).
    for broker_epoch in [NO_BROKER_EPOCH, BROKER_EPOCH + 1] {
        let ok = FollowerFetch { broker_epoch, ..f };
        assert!(do_fetch(&mut l, ok, T0, 10, 10).is_ok());
    }
}

#[test]
fn divergence_answers_the_leaders_epoch_end() {
    // The leader has epoch 3 on [0, 10) and epoch 5 from 10; LEO 20.
    let mut l = leader(&[1, 2, 3], 1, 20, 20);
    // The follower's last epoch 4 is unknown to the leader: its epoch 3 ends at 10.
    let f = FollowerFetch {
        last_fetched_epoch: Some(4),
        ..fetch(2, 12)
    };
    assert_eq!(
        do_fetch(&mut l, f, T0, 20, 20),
        Ok(FollowerFetchOutcome::Diverging(EpochEndOffset {
            epoch: 3,
            end_offset: 10
        }))
    );
    // Epoch 3 known, but the follower has more of it than the leader.
    let f = FollowerFetch {
        last_fetched_epoch: Some(3),
        ..fetch(2, 12)
    };
    assert_eq!(
        do_fetch(&mut l, f, T0, 20, 20),
        Ok(FollowerFetchOutcome::Diverging(EpochEndOffset {
            epoch: 3,
            end_offset: 10
        }))
    );
    // No state update on divergence.
    assert_eq!(l.follower(2).expect("2").log_end_offset, UNKNOWN_OFFSET);
    // Epoch 3 up to exactly its end: no divergence.
    let f = FollowerFetch {
        last_fetched_epoch: Some(3),
        ..fetch(2, 10)
    };
    assert!(matches!(
        do_fetch(&mut l, f, T0, 20, 20),
        Ok(FollowerFetchOutcome::Read { .. })
    ));
    assert_eq!(l.follower(2).expect("2").log_end_offset, 10);
}

#[test]
fn last_caught_up_time_follows_replica_update_fetch_state() {
    // ReplicaTest: testUpdateFetchState / isCaughtUp.
    let mut l = leader(&[1, 2, 3], 1, 10, 0);
    let f2 = |l: &LeaderState| l.follower(2).expect("2").clone();
    // Fetch at the leader's LEO: caught up now.
    do_fetch(&mut l, fetch(2, 10), T0 + 100, 10, 0).expect("fetch");
    assert_eq!(f2(&l).last_caught_up_time_ms, T0 + 100);
    assert_eq!(f2(&l).last_fetch_leader_log_end_offset, 10);
    assert_eq!(f2(&l).last_fetch_time_ms, T0 + 100);
    assert_eq!(f2(&l).broker_epoch, Some(BROKER_EPOCH));
    // The leader moved to 20; a fetch at 10 (< 20, but >= the previous fetch's LEO 10)
    // means it was caught up at the previous fetch time.
    do_fetch(&mut l, fetch(2, 10), T0 + 200, 20, 0).expect("fetch");
    assert_eq!(f2(&l).last_caught_up_time_ms, T0 + 100);
    // A fetch at 20 while the leader is at 30: caught up as of the previous fetch (T0+200).
    do_fetch(&mut l, fetch(2, 20), T0 + 300, 30, 0).expect("fetch");
    assert_eq!(f2(&l).last_caught_up_time_ms, T0 + 200);
    // A fetch at 25 (< previous fetch's leader LEO 30): unchanged.
    do_fetch(&mut l, fetch(2, 25), T0 + 400, 40, 0).expect("fetch");
    assert_eq!(f2(&l).last_caught_up_time_ms, T0 + 200);
    assert!(f2(&l).is_caught_up(40, T0 + 200 + LAG, LAG));
    assert!(!f2(&l).is_caught_up(40, T0 + 201 + LAG, LAG));
    assert!(f2(&l).is_caught_up(25, T0 + 10 * LAG, LAG), "at the LEO");
}

#[test]
fn high_watermark_is_the_smallest_leo_of_the_maximal_isr() {
    let mut l = leader(&[1, 2, 3], 2, 10, 0);
    // Follower 2 at 6, 3 unknown: no move.
    assert_eq!(read(do_fetch(&mut l, fetch(2, 6), T0, 10, 0)), (None, None));
    assert_eq!(
        read(do_fetch(&mut l, fetch(3, 4), T0, 10, 0)),
        (None, Some(4))
    );
    assert_eq!(
        read(do_fetch(&mut l, fetch(2, 10), T0, 10, 4)),
        (None, None)
    );
    assert_eq!(
        read(do_fetch(&mut l, fetch(3, 10), T0, 10, 4)),
        (None, Some(10))
    );
    // A fetch that does not move the follower does not recompute.
    assert_eq!(
        read(do_fetch(&mut l, fetch(3, 10), T0, 10, 4)),
        (None, None)
    );
    // The leader appends: no move until the followers fetch.
    assert_eq!(l.on_leader_append(view(15, 10), T0, alive), None);
    assert_eq!(
        read(do_fetch(&mut l, fetch(2, 15), T0, 15, 10)),
        (None, None)
    );
    assert_eq!(
        read(do_fetch(&mut l, fetch(3, 15), T0, 15, 10)),
        (None, Some(15))
    );
}

#[test]
fn high_watermark_stays_under_min_isr() {
    // Strict min ISR: ISR {1} with min.insync.replicas=2 never moves the high watermark.
    let mut l = leader(&[1], 2, 10, 0);
    assert!(l.is_under_min_isr());
    assert_eq!(l.on_leader_append(view(10, 0), T0, alive), None);
    assert_eq!(
        l.check_min_isr_before_append(),
        Err(ErrorCode::NotEnoughReplicas)
    );
    // A caught-up follower joins (pending): still under min ISR until committed.
    let (change, hw) = read(do_fetch(&mut l, fetch(2, 10), T0, 10, 0));
    assert_eq!(change, Some(IsrChange::Expand { replica_id: 2 }));
    assert_eq!(hw, None);
    assert_eq!(l.maximal_isr(), vec![1, 2]);
    assert!(l.is_under_min_isr());
    let sent = l.pending_alter_partition().expect("pending").clone();
    let outcome = l.on_alter_partition_response(
        &sent,
        Ok(LeaderAndIsr {
            leader: LEADER,
            leader_epoch: EPOCH,
            partition_epoch: 11,
            isr: vec![1, 2],
            leader_recovery_state: LeaderRecoveryState::Recovered,
        }),
        view(10, 0),
        T0,
        alive,
    );
    assert_eq!(
        outcome,
        AlterPartitionOutcome::Committed {
            high_watermark: Some(10)
        }
    );
    assert_eq!(l.partition_epoch(), 11);
    assert_eq!(l.check_min_isr_before_append(), Ok(()));
}

#[test]
fn high_watermark_waits_for_a_caught_up_follower_about_to_join() {
    // ISR {1, 2}; 3 is not in the ISR but caught up (at the leader's LEO recently) and
    // eligible: the high watermark waits for it (shouldWaitForReplicaToJoinIsr).
    let mut l = leader(&[1, 2], 1, 10, 10);
    // A pending expansion would add 3 at once; make one impossible by leaving 3 below HW.
    read(do_fetch(&mut l, fetch(2, 10), T0, 10, 10));
    read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
    // 3 joined as a pending expansion; pretend the controller refused it.
    let sent = l.pending_alter_partition().expect("pending").clone();
    assert_eq!(
        l.on_alter_partition_response(
            &sent,
            Err(ErrorCode::OperationNotAttempted),
            view(10, 10),
            T0,
            alive
        ),
        AlterPartitionOutcome::Reverted
    );
    assert_eq!(l.isr(), vec![1, 2]);
    // The leader appends to 20; 2 fetches to 20; 3 (caught up at T0) is at 10: HW waits.
    assert_eq!(read(do_fetch(&mut l, fetch(2, 20), T0 + 1, 20, 10)).1, None);
    // Once 3 is no longer caught up (lag exceeded), it is ignored.
    assert_eq!(
        l.maybe_increment_high_watermark(view(20, 10), T0 + LAG + 1, alive),
        Some(20)
    );
    // A fenced broker is never waited for.
    let fenced = |id: i32| BrokerEligibility {
        fenced: id == 3,
        ..BrokerEligibility::alive(BROKER_EPOCH)
    };
    assert_eq!(
        l.maybe_increment_high_watermark(view(20, 10), T0 + 2, fenced),
        Some(20)
    );
    assert_eq!(
        l.maybe_increment_high_watermark(view(20, 10), T0 + 2, alive),
        None
    );
}

#[test]
fn expansion_needs_the_high_watermark_and_the_epoch_start() {
    // Leader epoch started at 10; HW 5; follower 3 out of the ISR.
    let mut l = leader(&[1, 2], 1, 10, 5);
    // At 8: past the HW but not into the epoch.
    assert_eq!(read(do_fetch(&mut l, fetch(3, 8), T0, 12, 5)).0, None);
    // At 10: joins.
    assert_eq!(
        read(do_fetch(&mut l, fetch(3, 10), T0, 12, 5)).0,
        Some(IsrChange::Expand { replica_id: 3 })
    );
    let sent = l.pending_alter_partition().expect("pending").clone();
    assert_eq!(sent.leader_epoch, EPOCH);
    assert_eq!(sent.partition_epoch, 10);
    assert_eq!(sent.isr_ids(), vec![1, 2, 3]);
    // The leader's own epoch, the fetched one for 3, -1 for 2 (no fetch yet).
    let epochs: Vec<i64> = sent.new_isr.iter().map(|b| b.broker_epoch).collect();
    assert_eq!(epochs, vec![7, NO_BROKER_EPOCH, BROKER_EPOCH]);
    assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
    assert_eq!(l.isr(), vec![1, 2]);
    // One change in flight: 3 again, or a shrink, proposes nothing.
    assert_eq!(read(do_fetch(&mut l, fetch(3, 12), T0, 12, 5)).0, None);
    assert_eq!(l.maybe_shrink_isr(T0 + 10 * LAG, 12), None);
    assert!(l.out_of_sync_replicas(T0 + 10 * LAG, 12, LAG).is_empty());
}

#[test]
fn expansion_needs_an_eligible_broker() {
    for (name, broker) in [
        (
            "fenced",
            BrokerEligibility {
                fenced: true,
                ..BrokerEligibility::alive(BROKER_EPOCH)
            },
        ),
        (
            "shutting down",
            BrokerEligibility {
                in_controlled_shutdown: true,
                ..BrokerEligibility::alive(BROKER_EPOCH)
            },
        ),
        ("unregistered", BrokerEligibility::default()),
        // The fetch comes from a newer incarnation than the metadata cache knows.
        (
            "metadata behind",
            BrokerEligibility::alive(BROKER_EPOCH - 1),
        ),
    ] {
        let mut l = leader(&[1, 2], 1, 10, 10);
        let out = l.on_follower_fetch(&fetch(3, 10), T0, view(10, 10), epochs(10, 10), |_| broker);
        assert_eq!(read(out).0, None, "{name}");
    }
    // A fetch with broker epoch -1 is eligible.
    let mut l = leader(&[1, 2], 1, 10, 10);
    let f = FollowerFetch {
        broker_epoch: NO_BROKER_EPOCH,
        ..fetch(3, 10)
    };
    assert_eq!(
        read(do_fetch(&mut l, f, T0, 10, 10)).0,
        Some(IsrChange::Expand { replica_id: 3 })
    );
}

#[test]
fn shrink_removes_followers_out_of_sync() {
    let mut l = leader(&[1, 2, 3], 2, 10, 10);
    read(do_fetch(&mut l, fetch(2, 10), T0, 10, 10));
    read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
    // The leader appends; 2 keeps fetching up to the LEO, 3 stops.
    let mut now = T0;
    let mut leo = 10;
    while now <= T0 + LAG {
        now += 1000;
        leo += 1;
        read(do_fetch(&mut l, fetch(2, leo), now, leo, leo - 1));
    }
    assert_eq!(l.out_of_sync_replicas(now, leo, LAG), vec![3]);
    let req = l.maybe_shrink_isr(now, leo).expect("shrink");
    assert_eq!(
        req.change,
        IsrChange::Shrink {
            out_of_sync: vec![3]
        }
    );
    assert_eq!(req.isr_ids(), vec![1, 2]);
    assert_eq!(req.leader_epoch, EPOCH, "the leader epoch is kept");
    // While pending, the maximal ISR is still the old one.
    assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
    assert_eq!(l.check_enough_replicas(leo, leo), Some(ErrorCode::None));
    // The follower at the leader's LEO is never out of sync, whatever the time.
    let l2 = leader(&[1, 2], 1, 10, 10);
    assert_eq!(
        l2.out_of_sync_replicas(T0 + 10 * LAG, 10, LAG),
        vec![2],
        "unknown LEO"
    );
    let mut l3 = leader(&[1, 2], 1, 10, 10);
    read(do_fetch(&mut l3, fetch(2, 10), T0, 10, 10));
    assert!(l3.out_of_sync_replicas(T0 + 10 * LAG, 10, LAG).is_empty());
    // A leader alone in its ISR never shrinks.
    let mut alone = leader(&[1], 1, 10, 10);
    assert_eq!(alone.maybe_shrink_isr(T0 + 10 * LAG, 10), None);
}

#[test]
fn alter_partition_errors_follow_kafka() {
    let cases = [
        (ErrorCode::OperationNotAttempted, "revert"),
        (ErrorCode::IneligibleReplica, "revert"),
        (ErrorCode::UnknownTopicOrPartition, "wait"),
        (ErrorCode::UnknownTopicId, "wait"),
        (ErrorCode::FencedLeaderEpoch, "wait"),
        (ErrorCode::InvalidUpdateVersion, "wait"),
        (ErrorCode::InvalidRequest, "wait"),
        (ErrorCode::NewLeaderElected, "wait"),
        (ErrorCode::NotController, "retry"),
        (ErrorCode::RequestTimedOut, "retry"),
        (ErrorCode::UnknownServerError, "retry"),
    ];
    for (error, expected) in cases {
        let mut l = leader(&[1, 2], 1, 10, 10);
        read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
        let sent = l.pending_alter_partition().expect("pending").clone();
        let outcome = l.on_alter_partition_response(&sent, Err(error), view(10, 10), T0, alive);
        match expected {
            "revert" => {
                assert_eq!(outcome, AlterPartitionOutcome::Reverted, "{error:?}");
                assert_eq!(l.pending_alter_partition(), None);
                assert_eq!(l.maximal_isr(), vec![1, 2]);
            }
            "wait" => {
                assert_eq!(
                    outcome,
                    AlterPartitionOutcome::AwaitingMetadata,
                    "{error:?}"
                );
                assert_eq!(l.pending_alter_partition(), Some(&sent));
            }
            _ => {
                assert_eq!(
                    outcome,
                    AlterPartitionOutcome::Retry(sent.clone()),
                    "{error:?}"
                );
                assert_eq!(l.pending_alter_partition(), Some(&sent));
            }
        }
    }
}

#[test]
fn alter_partition_success_is_checked() {
    let committed = |leader_epoch, partition_epoch| LeaderAndIsr {
        leader: LEADER,
        leader_epoch,
        partition_epoch,
        isr: vec![1, 2, 3],
        leader_recovery_state: LeaderRecoveryState::Recovered,
    };
    let mut l = leader(&[1, 2], 1, 10, 10);
    read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
    let sent = l.pending_alter_partition().expect("pending").clone();
    // For another leader epoch, or an older partition epoch: stays pending.
    for stale in [committed(EPOCH + 1, 11), committed(EPOCH, 9)] {
        assert_eq!(
            l.on_alter_partition_response(&sent, Ok(stale), view(10, 10), T0, alive),
            AlterPartitionOutcome::AwaitingMetadata
        );
        assert!(l.pending_alter_partition().is_some());
    }
    // An answer to another request is ignored.
    let mut other = sent.clone();
    other.partition_epoch = 3;
    assert_eq!(
        l.on_alter_partition_response(&other, Ok(committed(EPOCH, 11)), view(10, 10), T0, alive),
        AlterPartitionOutcome::Ignored
    );
    // Same partition epoch (the controller had nothing to do) commits too.
    assert_eq!(
        l.on_alter_partition_response(&sent, Ok(committed(EPOCH, 10)), view(10, 10), T0, alive),
        AlterPartitionOutcome::Committed {
            high_watermark: None
        }
    );
    assert_eq!(l.isr(), vec![1, 2, 3]);
    assert_eq!(l.pending_alter_partition(), None);
    // A late duplicate answer is ignored.
    assert_eq!(
        l.on_alter_partition_response(&sent, Ok(committed(EPOCH, 11)), view(10, 10), T0, alive),
        AlterPartitionOutcome::Ignored
    );
}

#[test]
fn metadata_replaces_the_pending_state() {
    let mut l = leader(&[1, 2], 1, 10, 10);
    read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
    let sent = l.pending_alter_partition().expect("pending").clone();
    assert_eq!(
        l.on_alter_partition_response(
            &sent,
            Err(ErrorCode::InvalidUpdateVersion),
            view(10, 10),
            T0,
            alive
        ),
        AlterPartitionOutcome::AwaitingMetadata
    );
    // An older partition epoch is skipped.
    let mut old = partition(&[1, 2, 3], &[1]);
    old.partition_epoch = 9;
    assert_eq!(
        l.on_metadata(&old, view(10, 10), T0, alive),
        MetadataOutcome::Stale
    );
    assert!(l.pending_alter_partition().is_some());
    // The controller's state (the expansion applied) arrives.
    let mut newer = partition(&[1, 2, 3], &[1, 2, 3]);
    newer.partition_epoch = 11;
    assert_eq!(
        l.on_metadata(&newer, view(10, 10), T0, alive),
        MetadataOutcome::Updated {
            high_watermark: None
        }
    );
    assert_eq!(l.pending_alter_partition(), None);
    assert_eq!(l.isr(), vec![1, 2, 3]);
    assert_eq!(l.partition_epoch(), 11);
    // The late answer is ignored.
    assert_eq!(
        l.on_alter_partition_response(
            &sent,
            Err(ErrorCode::NotController),
            view(10, 10),
            T0,
            alive
        ),
        AlterPartitionOutcome::Ignored
    );
}

#[test]
fn metadata_with_the_same_partition_epoch_keeps_the_pending_change() {
    // The leader learnt partition epoch 10 from an AlterPartition answer, proposed to add 3
    // (at 10, HW 10), then the metadata log replays the record of epoch 10. Kafka would
    // drop the pending expansion; the controller may still apply it, so the high watermark
    // must keep waiting for 3.
    let mut l = leader(&[1, 2], 1, 10, 10);
    read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
    let sent = l.pending_alter_partition().expect("pending").clone();
    let replay = partition(&[1, 2, 3], &[1, 2]);
    assert_eq!(
        l.on_metadata(&replay, view(10, 10), T0, alive),
        MetadataOutcome::Updated {
            high_watermark: None
        }
    );
    assert_eq!(l.pending_alter_partition(), Some(&sent));
    assert_eq!(l.maximal_isr(), vec![1, 2, 3]);
    // 2 moves on, 3 does not (and is no longer caught up): the HW stays at 3's LEO.
    l.on_leader_append(view(20, 10), T0, alive);
    assert_eq!(
        read(do_fetch(&mut l, fetch(2, 20), T0 + 2 * LAG, 20, 10)).1,
        None
    );
    // The controller applied it: epoch 11 with 3 in the ISR.
    let mut applied = partition(&[1, 2, 3], &[1, 2, 3]);
    applied.partition_epoch = 11;
    l.on_metadata(&applied, view(20, 10), T0, alive);
    assert_eq!(l.pending_alter_partition(), None);
    assert_eq!(l.isr(), vec![1, 2, 3]);
}

#[test]
fn metadata_with_a_new_leader_epoch_or_leader() {
    let mut l = leader(&[1, 2, 3], 1, 10, 10);
    read(do_fetch(&mut l, fetch(2, 10), T0, 10, 10));
    read(do_fetch(&mut l, fetch(3, 10), T0, 10, 10));
    let mut next = partition(&[1, 2, 3], &[1, 2]);
    next.leader_epoch = EPOCH + 1;
    next.partition_epoch = 12;
    assert_eq!(
        l.on_metadata(&next, view(15, 10), T0 + 5, alive),
        MetadataOutcome::NewLeaderEpoch {
            epoch_start_offset: 15,
            high_watermark: None
        }
    );
    assert_eq!(l.leader_epoch(), EPOCH + 1);
    assert_eq!(l.epoch_start_offset(), 15);
    // Same leader: LEOs are kept, caught-up times reset.
    let f2 = l.follower(2).expect("2");
    assert_eq!(f2.log_end_offset, 10);
    assert_eq!(f2.last_caught_up_time_ms, T0 + 5);
    assert_eq!(f2.last_fetch_leader_log_end_offset, 15);
    assert_eq!(l.follower(3).expect("3").last_caught_up_time_ms, 0);
    // Another leader.
    let mut moved = next.clone();
    moved.leader = 2;
    moved.leader_epoch += 1;
    moved.partition_epoch += 1;
    assert_eq!(
        l.on_metadata(&moved, view(15, 10), T0, alive),
        MetadataOutcome::NotLeader
    );
    // A reassignment adds 4 and removes 3: the follower map follows.
    let mut reassigned = next.clone();
    reassigned.partition_epoch += 1;
    reassigned.replicas = vec![1, 2, 4];
    assert!(matches!(
        l.on_metadata(&reassigned, view(15, 10), T0, alive),
        MetadataOutcome::Updated { .. }
    ));
    let ids: Vec<i32> = l.followers().map(|f| f.replica_id).collect();
    assert_eq!(ids, vec![2, 4]);
    assert_eq!(l.follower(4).expect("4").log_end_offset, UNKNOWN_OFFSET);
}

#[test]
fn acks_all_checks() {
    let mut l = leader(&[1, 2, 3], 2, 10, 10);
    assert_eq!(l.check_min_isr_before_append(), Ok(()));
    assert_eq!(l.check_enough_replicas(12, 10), None);
    assert_eq!(l.check_enough_replicas(12, 12), Some(ErrorCode::None));
    // The ISR shrinks to {1} after the append: NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    let mut shrunk = partition(&[1, 2, 3], &[1]);
    shrunk.partition_epoch = 11;
    l.on_metadata(&shrunk, view(12, 10), T0, alive);
    assert_eq!(
        l.check_enough_replicas(12, 12),
        Some(ErrorCode::NotEnoughReplicasAfterAppend)
    );
    assert_eq!(
        l.check_min_isr_before_append(),
        Err(ErrorCode::NotEnoughReplicas)
    );
    // Effective min ISR: RF=1 with min.insync.replicas=2 accepts acks=all (KAFKA-18762).
    let mut p = partition(&[1], &[1]);
    p.replicas = vec![1];
    let single = LeaderState::new(config(2), &p, view(0, 0), T0);
    assert_eq!(single.effective_min_isr(), 1);
    assert_eq!(single.check_min_isr_before_append(), Ok(()));
    assert_eq!(
        single.on_leader_append(view(3, 0), T0, alive),
        Some(3),
        "ISR = {{leader}} moves the HW on append"
    );
}

#[test]
fn offsets_are_not_available_until_the_hw_reaches_the_epoch_start() {
    let l = leader(&[1, 2], 1, 10, 7);
    assert_eq!(
        l.check_offsets_available(7),
        Err(ErrorCode::OffsetNotAvailable)
    );
    assert_eq!(l.check_offsets_available(10), Ok(()));
}

#[test]
fn metrics() {
    let mut l = leader(&[1, 2], 2, 10, 10);
    assert!(l.is_under_replicated());
    assert!(!l.is_under_min_isr());
    assert!(l.is_at_min_isr());
    let full = partition(&[1, 2, 3], &[1, 2, 3]);
    l.on_metadata(&full, view(10, 10), T0, alive);
    assert!(!l.is_under_replicated());
    assert!(!l.is_at_min_isr());
    // During a reassignment adding 4, the replication factor is the original 3.
    let mut adding = partition(&[1, 2, 3, 4], &[1, 2, 3]);
    adding.adding_replicas = vec![4];
    l.on_metadata(&adding, view(10, 10), T0, alive);
    assert!(!l.is_under_replicated());
    assert_eq!(l.replicas(), &[1, 2, 3, 4]);
    // Low watermark: live followers' log starts (unknown counts as -1).
    let mut l = leader(&[1, 2, 3], 1, 10, 10);
    assert_eq!(l.low_watermark(5, |_| false), 5);
    assert_eq!(l.low_watermark(5, |_| true), UNKNOWN_OFFSET);
    let f = FollowerFetch {
        log_start_offset: 3,
        ..fetch(2, 10)
    };
    do_fetch(&mut l, f, T0, 10, 10).expect("fetch");
    assert_eq!(l.low_watermark(5, |id| id == 2), 3);
}

#[test]
fn recovering_leader_reports_recovered() {
    let mut p = partition(&[1, 2, 3], &[1]);
    p.leader_recovery_state = LeaderRecoveryState::Recovering;
    let mut l = LeaderState::new(config(1), &p, view(10, 10), T0);
    assert_eq!(l.leader_recovery_state(), LeaderRecoveryState::Recovered);
    read(do_fetch(&mut l, fetch(2, 10), T0, 10, 10));
    let sent = l.pending_alter_partition().expect("expand");
    assert_eq!(sent.leader_recovery_state, LeaderRecoveryState::Recovered);
}
