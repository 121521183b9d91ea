//! Kafka's epoch-driven replication acceptance tests
//! (`core/src/test/scala/unit/kafka/server/epoch/EpochDrivenReplicationProtocolAcceptanceTest.scala`,
//! KIP-101 / KIP-279, removed with ZooKeeper by KAFKA-17612) at the level of the state
//! machines: the simulated brokers and controller of `sim` with scripted crashes, power
//! losses and (forced) elections. Where the ZooKeeper controller bumped the leader epoch on
//! every ISR change, the scripts force an election of the same leader.

mod sim;

use sim::{Cluster, SimConfig};

const SETTLE_MS: i64 = 1_500;

fn cluster(replicas: usize, min_insync_replicas: i32) -> Cluster {
    let mut c = Cluster::new(SimConfig::scripted(replicas, min_insync_replicas), 7);
    c.run_for(300);
    assert_eq!(c.leader(), Some(0));
    c
}

fn wait_leader(c: &mut Cluster, i: usize) {
    for _ in 0..300 {
        if c.leader() == Some(i) {
            return;
        }
        c.run_for(10);
    }
    panic!("{i} did not become leader: {:?}", c.ctrl.partition);
}

/// Stops `i` and waits for the controller to fence it.
fn stop(c: &mut Cluster, i: usize) {
    c.crash(i);
    c.run_for(1_000);
}

fn last_epoch(c: &Cluster, i: usize) -> Option<i32> {
    c.batches(i).last().map(|b| b.1)
}

fn assert_in_sync(c: &Cluster) {
    let want = c.batches(0);
    for i in 1..c.nodes.len() {
        assert_eq!(c.batches(i), want, "node {i}'s batches");
    }
    let p = &c.ctrl.partition;
    assert_eq!(p.isr.len(), p.replicas.len(), "full ISR: {p:?}");
    c.check_logs_agree_below_hw();
}

#[test]
fn should_follow_leader_epoch_basic_workflow() {
    let mut c = cluster(2, 1);
    let (leader, follower) = (0, 1);
    // One record: epoch 0 on both, which both record at offset 0.
    c.produce(1, true).expect("produce");
    c.run_for(SETTLE_MS);
    assert_eq!(last_epoch(&c, leader), Some(0));
    assert_eq!(last_epoch(&c, follower), Some(0));
    assert_eq!(c.epochs(leader), vec![(0, 0)]);
    assert_eq!(c.epochs(follower), vec![(0, 0)]);
    assert_eq!(c.acked.len(), 1);
    // Bounce the follower with a new leader epoch for the same leader.
    c.crash(follower);
    c.force_elect(leader, false);
    c.restart(follower);
    c.run_for(SETTLE_MS);
    assert_eq!(c.epochs(leader), vec![(0, 0), (1, 1)]);
    assert_eq!(c.epochs(follower), vec![(0, 0)]);
    // Epoch 1 reaches the follower with the next record.
    c.produce(1, true).expect("produce");
    c.run_for(SETTLE_MS);
    assert_eq!(c.epochs(follower), vec![(0, 0), (1, 1)]);
    assert_eq!(last_epoch(&c, leader), Some(1));
    assert_eq!(last_epoch(&c, follower), Some(1));
    // Bounce the leader: leadership moves to the follower in epoch 2.
    c.crash(leader);
    c.force_elect(follower, false);
    c.restart(leader);
    wait_leader(&mut c, follower);
    c.run_for(SETTLE_MS);
    let (leader, follower) = (1, 0);
    assert_eq!(c.epochs(leader), vec![(0, 0), (1, 1), (2, 2)]);
    assert_eq!(c.epochs(follower), vec![(0, 0), (1, 1)]);
    c.produce(1, true).expect("produce");
    c.run_for(SETTLE_MS);
    assert_eq!(last_epoch(&c, leader), Some(2));
    assert_eq!(last_epoch(&c, follower), Some(2));
    assert_eq!(c.epochs(follower), vec![(0, 0), (1, 1), (2, 2)]);
    assert_in_sync(&c);
    assert_eq!(c.acked.len(), 3);
    for i in 0..2 {
        c.check_has_acked(i, "at the end");
    }
}

#[test]
fn should_not_allow_divergent_logs() {
    let mut c = cluster(2, 1);
    let (b100, b101) = (0, 1);
    // Ten records, one batch each (acks=1: what follows loses some of them on purpose).
    for _ in 0..10 {
        c.produce(1, false).expect("produce");
        c.run_for(50);
    }
    c.run_for(SETTLE_MS);
    assert_in_sync(&c);
    assert_eq!(c.nodes[b101].log.leo(), 10);
    // Stop 101, then 100, which loses its last 5 records (not flushed).
    stop(&mut c, b101);
    stop(&mut c, b100);
    c.lose_tail(b100, 5);
    assert_eq!(c.nodes[b100].log.leo(), 5);
    assert!(c.nodes[b100].log.hw <= 5, "the HW is clamped to the LEO");
    // 100 comes back alone and is elected (it is the last ISR member).
    c.restart(b100);
    wait_leader(&mut c, b100);
    for _ in 0..9 {
        c.produce(1, false).expect("produce");
    }
    // 101 comes back: it must truncate to match 100's log.
    c.restart(b101);
    c.run_for(SETTLE_MS);
    assert_in_sync(&c);
    assert_eq!(c.nodes[b101].log.leo(), 5 + 9);
    assert!(c.stats.truncations >= 1);
}

#[test]
fn offsets_should_not_go_backwards() {
    let mut c = cluster(2, 1);
    let (b100, b101) = (0, 1);
    for _ in 0..100 {
        c.produce(1, false).expect("produce");
        c.run_for(5);
    }
    c.run_for(SETTLE_MS);
    assert_in_sync(&c);
    // Both stop; 100 lost half its log.
    stop(&mut c, b101);
    stop(&mut c, b100);
    c.lose_tail(b100, 50);
    c.restart(b100);
    wait_leader(&mut c, b100);
    // Two large batches of 77 records: 101's LEO (100) falls in the middle of one.
    c.produce(77, false).expect("produce");
    c.produce(77, false).expect("produce");
    let leader_log = &c.nodes[b100].log;
    assert!(leader_log.leo() > 100);
    // Without epochs 101 would fetch from 100 and get the batch holding offset 100, which
    // starts below it: offsets would go backwards (the simulation fails on that).
    let stale = leader_log.read(100, 1);
    assert!(stale[0].base < 100 && stale[0].next() > 100);
    // With epochs it truncates to the leader's end of epoch 0 and then matches.
    c.restart(b101);
    c.run_for(SETTLE_MS);
    assert_in_sync(&c);
    let offsets: Vec<i64> = c.nodes[b101]
        .log
        .records(0, i64::MAX)
        .iter()
        .map(|r| r.0)
        .collect();
    assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(offsets.last().copied(), Some(50 + 2 * 77 - 1));
}

#[test]
fn should_survive_fast_leader_change() {
    let mut c = cluster(2, 1);
    c.produce(1, true).expect("produce");
    c.run_for(SETTLE_MS);
    let mut written = 1;
    for _ in 0..5 {
        let leader = c.leader().expect("leader");
        let follower = 1 - leader;
        c.produce(1, true).expect("produce");
        written += 1;
        c.run_for(SETTLE_MS);
        // Bounce the follower (new epoch, same leader)...
        c.crash(follower);
        c.force_elect(leader, false);
        c.restart(follower);
        c.run_for(SETTLE_MS);
        // ... then the leader (leadership moves).
        c.crash(leader);
        c.force_elect(follower, false);
        c.restart(leader);
        wait_leader(&mut c, follower);
        c.run_for(SETTLE_MS);
        for i in 0..2 {
            assert_eq!(c.nodes[i].log.leo(), written, "node {i}");
        }
        assert_in_sync(&c);
    }
    assert_eq!(c.ctrl.partition.leader_epoch, 10);
    assert_eq!(c.acked.len(), 6);
}

#[test]
fn logs_should_not_diverge_on_unclean_leader_elections() {
    // min.insync.replicas=2 on 2 replicas: only what both have is acknowledged; the unclean
    // elections below may lose what was written with acks=1 only.
    let mut c = cluster(2, 2);
    let (b100, b101) = (0, 1);
    c.produce(1, true).expect("produce");
    c.run_for(SETTLE_MS);
    assert_eq!(c.acked.len(), 1);
    assert_in_sync(&c);
    // 100 stops; the controller elects 101 (clean); one record.
    stop(&mut c, b100);
    wait_leader(&mut c, b101);
    let e1 = c.ctrl.partition.leader_epoch;
    c.produce(1, false).expect("produce");
    // 101 stops (the partition goes offline), 100 starts: unclean election; three records.
    stop(&mut c, b101);
    c.restart(b100);
    c.force_elect(b100, true);
    wait_leader(&mut c, b100);
    let e2 = c.ctrl.partition.leader_epoch;
    for _ in 0..3 {
        c.produce(2, false).expect("produce");
    }
    // 100 stops, 101 starts: unclean election; one record.
    stop(&mut c, b100);
    c.restart(b101);
    c.force_elect(b101, true);
    wait_leader(&mut c, b101);
    let e3 = c.ctrl.partition.leader_epoch;
    c.produce(1, false).expect("produce");
    // 101 stops, 100 starts: unclean election; two records.
    stop(&mut c, b101);
    c.restart(b100);
    c.force_elect(b100, true);
    wait_leader(&mut c, b100);
    let e4 = c.ctrl.partition.leader_epoch;
    for _ in 0..2 {
        c.produce(2, false).expect("produce");
    }
    assert!(e1 < e2 && e2 < e3 && e3 < e4);
    assert_eq!(c.epochs(b100), vec![(0, 0), (e2, 1), (e4, 7)]);
    assert_eq!(c.epochs(b101), vec![(0, 0), (e1, 1), (e3, 2)]);
    // 101 comes back as a follower: two rounds of divergence (its epochs e3, then e1, are
    // unknown to the leader) bring it back to offset 1, then it copies 100's log.
    c.restart(b101);
    c.run_for(SETTLE_MS);
    assert_in_sync(&c);
    assert_eq!(c.nodes[b101].log.leo(), 1 + 3 * 2 + 2 * 2);
    assert!(c.stats.truncations >= 2);
    assert_eq!(c.epochs(b101), c.epochs(b100));
    // Only unacknowledged records were lost.
    for i in 0..2 {
        c.check_has_acked(i, "at the end");
    }
}
