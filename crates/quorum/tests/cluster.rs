//! Quorum behaviour over the in-memory transport: elections, replication, failover, catch-up,
//! partitions, restarts.

mod common;

use common::*;
use gregor_quorum::{MemNetwork, ProposeError, Quorum, QuorumError, Role};
use std::time::{Duration, Instant};

fn entry(i: usize) -> Vec<u8> {
    format!("record-{i}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_leads_at_once_fresh_and_after_restart() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new();
    let cfg = || {
        // Timers so slow that waiting for any of them would take seconds: the fast start must
        // not depend on them.
        let mut c = gregor_quorum::QuorumConfig::new(1, voters(1), dir.path().join("n1"));
        c.heartbeat_interval = Duration::from_secs(3);
        c.election_timeout_min = Duration::from_secs(10);
        c.election_timeout_max = Duration::from_secs(20);
        c
    };

    let sm = Recorder::default();
    let t = Instant::now();
    let q = Quorum::open(cfg(), sm.clone(), net.transport(1))
        .await
        .unwrap();
    let fresh = t.elapsed();
    assert!(q.is_leader());
    let st = q.status();
    assert_eq!(st.role, Role::Leader);
    assert_eq!(st.leader, Some(1));
    for i in 0..5 {
        let p = q.propose(entry(i)).await.unwrap();
        assert_eq!(p.reply, ((i + 1) as u64).to_be_bytes().to_vec());
    }
    let before = q.status();
    let huge = vec![0u8; gregor_quorum::quorum::MAX_ENTRY_BYTES + 1];
    assert!(matches!(
        q.propose(huge).await,
        Err(ProposeError::TooLarge { .. })
    ));
    q.shutdown().await;
    assert!(matches!(
        q.propose(b"x".to_vec()).await,
        Err(ProposeError::ShutDown)
    ));

    let sm2 = Recorder::default();
    let t = Instant::now();
    let q = Quorum::open(cfg(), sm2.clone(), net.transport(1))
        .await
        .unwrap();
    let restart = t.elapsed();
    assert!(q.is_leader());
    eprintln!("single voter became leader in {fresh:?} (fresh) and {restart:?} (restart)");
    // Typically a few milliseconds; the bounds are loose for a loaded CI machine, and still far
    // below the first tick (4.5 s) or election timeout (10 s) of this config.
    assert!(fresh < Duration::from_secs(2), "fresh start took {fresh:?}");
    assert!(restart < Duration::from_secs(2), "restart took {restart:?}");
    // The committed entries come back from the log, in order, with the same indexes.
    eventually(Duration::from_secs(2), "re-applied entries", || {
        sm2.len() == 5
    })
    .await;
    assert_eq!(sm2.0.lock().applied, sm.0.lock().applied);
    let after = q.status();
    assert_eq!(
        after.term, before.term,
        "a restarted single leader keeps its term"
    );
    let p = q.propose(b"after restart".to_vec()).await.unwrap();
    assert!(p.index > before.last_log_index.unwrap());
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_and_replicate() {
    let c = Cluster::start(3, |_| {}).await;
    let t = Instant::now();
    let leader = c.wait_leader(&[], Duration::from_secs(5)).await;
    eprintln!("3 voters elected node {leader} in {:?}", t.elapsed());
    let mut expected = Vec::new();
    let mut last = 0;
    for i in 0..20 {
        let p = c.propose(&entry(i)).await;
        assert!(p.index > last);
        last = p.index;
        expected.push(entry(i));
    }
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    // Every node applied the same indexes too.
    let idx: Vec<Vec<u64>> = (1..=3)
        .map(|id| c.sm(id).0.lock().applied.iter().map(|(i, _)| *i).collect())
        .collect();
    assert_eq!(idx[0], idx[1]);
    assert_eq!(idx[1], idx[2]);

    // The leader's status has what DescribeQuorum needs.
    eventually(
        Duration::from_secs(3),
        "followers to match the leader",
        || {
            let st = c.q(leader).status();
            st.voters
                .iter()
                .all(|v| v.matched_index == st.last_log_index)
                && st.committed == st.last_log_index
        },
    )
    .await;
    let st = c.q(leader).status();
    assert_eq!(st.role, Role::Leader);
    assert_eq!(st.leader, Some(leader));
    assert!(st.term >= 1);
    assert_eq!(st.high_watermark(), st.committed.unwrap() as i64 + 1);
    assert_eq!(st.voters.len(), 3);
    for v in &st.voters {
        assert_eq!(v.addr, format!("mem://{}", v.id));
        assert_eq!(v.log_end_offset(), st.last_log_index.unwrap() as i64 + 1);
        assert!(v.last_ack_ms_ago.unwrap() < 2_000, "{v:?}");
        assert!(v.last_caught_up_unix_ms.is_some(), "{v:?}");
    }
    // Followers know the leader and the term.
    for id in (1..=3).filter(|id| *id != leader) {
        let st = c.q(id).status();
        assert_eq!(st.role, Role::Follower);
        assert_eq!(st.leader, Some(leader));
        assert_eq!(st.term, c.q(leader).status().term);
        assert_eq!(st.leader_epoch, c.q(leader).status().leader_epoch);
        let lv = st.voters.iter().find(|v| v.id == leader).unwrap();
        assert!(
            lv.last_ack_unix_ms.is_some(),
            "a follower hears from the leader: {lv:?}"
        );
    }
    // The watch follows too.
    let mut rx = c.q(leader).subscribe();
    assert_eq!(rx.borrow().leader, Some(leader));
    let before = rx.borrow().committed;
    let p = c.propose(b"watched").await;
    let seen = tokio::time::timeout(
        Duration::from_secs(3),
        rx.wait_for(|s| s.committed >= Some(p.index)),
    )
    .await
    .expect("the status watch reports the new commit")
    .unwrap()
    .committed;
    assert!(seen > before);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_answers_not_leader_with_the_leader() {
    let c = Cluster::start(3, |_| {}).await;
    let leader = c.wait_leader(&[], Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    match c.q(follower).propose(b"nope".to_vec()).await {
        Err(ProposeError::NotLeader {
            leader: Some((id, addr)),
        }) => {
            assert_eq!(id, leader);
            assert_eq!(addr, format!("mem://{leader}"));
        }
        other => panic!("expected NotLeader, got {other:?}"),
    }
    // Nothing was applied anywhere.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for id in 1..=3 {
        assert_eq!(c.sm(id).len(), 0);
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_crash_elects_a_new_leader_and_loses_nothing() {
    let mut c = Cluster::start(3, |_| {}).await;
    let old = c.wait_leader(&[], Duration::from_secs(5)).await;
    let mut expected = Vec::new();
    for i in 0..10 {
        c.propose(&entry(i)).await;
        expected.push(entry(i));
    }
    let old_term = c.q(old).status().term;
    let old_epoch = c.q(old).status().leader_epoch;
    let t = Instant::now();
    c.crash(old).await;
    let rest: Vec<_> = c.nodes.keys().copied().collect();
    let new = c.wait_leader(&rest, Duration::from_secs(5)).await;
    let failover = t.elapsed();
    eprintln!("failover from node {old} to node {new} took {failover:?}");
    assert_ne!(new, old);
    assert!(c.q(new).status().term > old_term);
    assert!(c.q(new).status().leader_epoch > old_epoch);
    // Proposals continue; everything committed before the crash is still there.
    for i in 10..20 {
        c.propose(&entry(i)).await;
        expected.push(entry(i));
    }
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    // The old leader restarts from its directory and catches up.
    c.start_node(old).await;
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    c.wait_leader(&[], Duration::from_secs(5)).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_behind_node_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, |cfg| {
        cfg.snapshot_every = 10;
        cfg.keep_after_snapshot = 0;
        cfg.segment_entries = 8;
        cfg.snapshot_chunk_bytes = 64; // several chunks per snapshot
    })
    .await;
    let leader = c.wait_leader(&[], Duration::from_secs(5)).await;
    let lagger = (1..=3).find(|id| *id != leader).unwrap();
    let mut expected = Vec::new();
    for i in 0..3 {
        c.propose(&entry(i)).await;
        expected.push(entry(i));
    }
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    c.crash(lagger).await;
    for i in 3..60 {
        c.propose(&entry(i)).await;
        expected.push(entry(i));
    }
    let lagger_last = {
        // What the crashed node has on disk: at most a few entries.
        expected.len()
    };
    // The leader snapshotted and purged its log behind the snapshot.
    eventually(
        Duration::from_secs(5),
        "the leader to purge its log",
        || {
            let st = c.q(leader).status();
            st.purged_index.unwrap_or(0) > 10 && st.snapshot_index.is_some()
        },
    )
    .await;
    let seg_files = std::fs::read_dir(c.node_dir(leader).join("log"))
        .unwrap()
        .count();
    assert!(
        seg_files <= 3,
        "purged segments are deleted ({seg_files} left)"
    );
    c.start_node(lagger).await;
    c.wait_all_applied(&expected, Duration::from_secs(8)).await;
    assert!(
        c.sm(lagger).restores() >= 1,
        "the lagging node must have installed a snapshot"
    );
    assert_eq!(lagger_last, 60);
    // And it stays in sync afterwards.
    let p = c.propose(b"after catch-up").await;
    expected.push(b"after catch-up".to_vec());
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    assert_eq!(c.sm(lagger).last_index(), Some(p.index));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_cannot_commit() {
    let c = Cluster::start(3, |cfg| cfg.propose_timeout = Duration::from_millis(800)).await;
    let old = c.wait_leader(&[], Duration::from_secs(5)).await;
    let mut expected = vec![entry(0)];
    c.propose(&entry(0)).await;
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;

    // Cut the leader off from both followers.
    c.net.isolate(old, 1..=3);
    let res = c.q(old).propose(b"minority".to_vec()).await;
    assert!(
        matches!(
            res,
            Err(ProposeError::Timeout(_)) | Err(ProposeError::NotLeader { .. })
        ),
        "a minority leader must not commit: {res:?}"
    );
    // The majority elects a new leader and carries on.
    let majority: Vec<_> = (1..=3).filter(|id| *id != old).collect();
    let new = c.wait_leader(&majority, Duration::from_secs(5)).await;
    assert_ne!(new, old);
    let p = c.q(new).propose(entry(1)).await.unwrap();
    expected.push(entry(1));
    assert!(p.index > 0);
    assert!(
        !c.sm(old).data().contains(&b"minority".to_vec()),
        "the isolated node applied an uncommitted entry"
    );
    // Heal: the old leader steps down, drops its uncommitted entry and converges.
    c.net.heal();
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    c.wait_leader(&[], Duration::from_secs(5)).await;
    for id in 1..=3 {
        assert!(!c.sm(id).data().contains(&b"minority".to_vec()));
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_cluster_keeps_log_and_state() {
    let mut c = Cluster::start(3, |_| {}).await;
    c.wait_leader(&[], Duration::from_secs(5)).await;
    let mut expected = Vec::new();
    for i in 0..15 {
        c.propose(&entry(i)).await;
        expected.push(entry(i));
    }
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    let terms: Vec<u64> = (1..=3).map(|id| c.q(id).status().term).collect();
    for id in 1..=3 {
        c.crash(id).await;
    }
    for id in 1..=3 {
        c.start_node(id).await;
    }
    // A restarted node re-applies its committed entries even before a leader is known.
    let t = Instant::now();
    c.wait_leader(&[], Duration::from_secs(5)).await;
    eprintln!("3 restarted voters had a leader after {:?}", t.elapsed());
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    for id in 1..=3 {
        assert!(c.q(id).status().term >= terms[(id - 1) as usize]);
    }
    c.propose(b"more").await;
    expected.push(b"more".to_vec());
    c.wait_all_applied(&expected, Duration::from_secs(5)).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_directories_and_configs_are_clear_errors() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let net = MemNetwork::new();
    let cfg = test_config(1, 1, dir.path());
    let q = Quorum::open(cfg.clone(), Recorder::default(), net.transport(1))
        .await
        .unwrap();
    for i in 0..3 {
        q.propose(entry(i)).await.unwrap();
    }
    q.trigger_snapshot().await.unwrap();
    eventually(Duration::from_secs(3), "a snapshot", || {
        q.status().snapshot_index.is_some()
    })
    .await;
    q.shutdown().await;

    // Another voter set on the same directory.
    let mut other = cfg.clone();
    other.voters = voters(3);
    let err = Quorum::open(other, Recorder::default(), net.transport(1))
        .await
        .unwrap_err();
    assert!(matches!(err, QuorumError::VoterSetMismatch { .. }), "{err}");

    // Not a voter.
    let mut bad = cfg.clone();
    bad.node_id = 7;
    let err = Quorum::open(bad, Recorder::default(), net.transport(7))
        .await
        .unwrap_err();
    assert!(matches!(err, QuorumError::Config(_)), "{err}");

    // A corrupt snapshot.
    let snap = cfg.dir.join("snapshot");
    let good = std::fs::read(&snap).unwrap();
    let mut broken = good.clone();
    let n = broken.len();
    broken[n - 1] ^= 0x55;
    std::fs::write(&snap, &broken).unwrap();
    let err = Quorum::open(cfg.clone(), Recorder::default(), net.transport(1))
        .await
        .unwrap_err();
    assert!(matches!(err, QuorumError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("snapshot"), "{err}");
    std::fs::write(&snap, &good).unwrap();

    // A corrupt vote file.
    let vote = cfg.dir.join("vote");
    let good_vote = std::fs::read(&vote).unwrap();
    std::fs::write(&vote, &good_vote[..good_vote.len() - 2]).unwrap();
    let err = Quorum::open(cfg.clone(), Recorder::default(), net.transport(1))
        .await
        .unwrap_err();
    assert!(matches!(err, QuorumError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("vote"), "{err}");
    // A missing vote file while the log holds entries of later terms.
    std::fs::remove_file(&vote).unwrap();
    let err = Quorum::open(cfg.clone(), Recorder::default(), net.transport(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("vote twice"), "{err}");
    std::fs::write(&vote, &good_vote).unwrap();

    // Repaired: it opens again with everything.
    let sm = Recorder::default();
    let q = Quorum::open(cfg.clone(), sm.clone(), net.transport(1))
        .await
        .unwrap();
    eventually(Duration::from_secs(2), "state back", || sm.len() == 3).await;
    q.shutdown().await;
}
