//! Property tests over many seeds of the deterministic simulation (`sim`): acks=all with
//! min.insync.replicas=2 on 3 replicas, crashes, network partitions, message loss and
//! delays, DeleteRecords. Checked as the simulation runs:
//! 1. every acknowledged record is in the log of every replica that becomes leader
//!    (and of every replica joining the ISR) at the same offset;
//! 2. replicas never disagree below both their high watermarks;
//! 3. a leader's high watermark never goes back;
//! 4. the ISR always holds the leader, and a replica is proposed for the ISR only when its
//!    log matches the leader's up to the high watermark and into the leader epoch;
//! 5. after healing, all replicas converge (same log, HW = LEO, full ISR).
//!
//! `SIM_SEEDS=n` runs more seeds (`SIM_SEED=s` a single one).

mod sim;

use sim::{run_random, SimConfig, Stats};

fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    (1..=n).collect()
}

#[test]
fn acks_all_survives_crashes_and_partitions() {
    let mut total = Stats::default();
    let seeds = seeds();
    for &seed in &seeds {
        let stats = run_random(seed, SimConfig::random(), 6_000, 6_000);
        total.add(&stats);
    }
    eprintln!("{} seeds: {total:?}", seeds.len());
    assert!(total.acked > 0 && total.elections > seeds.len() as u64);
    assert!(total.truncations > 0, "no divergence was exercised");
    assert!(total.expands > 0 && total.shrinks > 0);
}
