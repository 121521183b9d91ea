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

/// Seeds `1..=default`, or `1..=$SIM_SEEDS`, or just `$SIM_SEED`.
fn seeds(default: u64) -> Vec<u64> {
    if let Some(s) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (1..=n).collect()
}

fn run(name: &str, cfg: SimConfig, seeds: &[u64]) -> Stats {
    let mut total = Stats::default();
    for &seed in seeds {
        total.add(&run_random(seed, cfg, 6_000, 6_000));
    }
    eprintln!("{name}: {} seeds: {total:?}", seeds.len());
    assert!(total.acked > 0 && total.elections > seeds.len() as u64);
    assert!(total.expands > 0 && total.shrinks > 0);
    total
}

#[test]
fn acks_all_survives_crashes_and_partitions() {
    let total = run("rf=3 min.insync=2", SimConfig::random(), &seeds(120));
    assert!(total.truncations > 0, "no divergence was exercised");
    assert!(total.out_of_range > 0, "no OFFSET_OUT_OF_RANGE was exercised");
    assert!(total.not_enough_replicas > 0);
}

#[test]
fn acks_all_with_min_insync_1() {
    let cfg = SimConfig {
        min_insync_replicas: 1,
        ..SimConfig::random()
    };
    run("rf=3 min.insync=1", cfg, &seeds(40));
}

#[test]
fn acks_all_with_five_replicas() {
    let cfg = SimConfig {
        replicas: 5,
        min_insync_replicas: 3,
        ..SimConfig::random()
    };
    run("rf=5 min.insync=3", cfg, &seeds(30));
}

#[test]
fn unclean_elections_still_converge() {
    // Acknowledged records may be lost (that is what unclean means): only the leader's HW
    // monotonicity, the ISR rules and the convergence after healing are checked.
    let cfg = SimConfig {
        unclean_leader_election: true,
        durability_checks: false,
        ..SimConfig::random()
    };
    let total = run("unclean", cfg, &seeds(40));
    assert!(total.unclean_elections > 0);
}
