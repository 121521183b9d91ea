//! Snapshot round trip over randomized histories of every record type: replaying
//! `snapshot_records()` into an empty state gives an equal state, and the log continues
//! identically on top of the rebuilt state.

mod common;

use common::Harness;
use gregor_controller::{ClusterState, MetadataRecord};

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn random_record(h: &Harness, rng: &mut Rng) -> Vec<MetadataRecord> {
    let value = |rng: &mut Rng| (rng.below(3) > 0).then(|| (rng.below(1000) * 10).to_string());
    match rng.below(6) {
        0 => vec![MetadataRecord::BrokerConfig {
            resource_name: ["", "1", "2"][rng.below(3) as usize].into(),
            key: ["log.retention.ms", "unclean.leader.election.enable"][rng.below(2) as usize]
                .into(),
            value: value(rng),
        }],
        1 => {
            let users = [None, Some("alice".to_string()), Some("bob".to_string())];
            vec![MetadataRecord::ClientQuota {
                entity: vec![("user".into(), users[rng.below(3) as usize].clone())],
                key: ["producer_byte_rate", "consumer_byte_rate"][rng.below(2) as usize].into(),
                value: value(rng).map(|v| format!("{v}.5")),
            }]
        }
        2 => {
            let topics: Vec<_> = h.state.topics().map(|t| t.name.clone()).collect();
            if topics.is_empty() {
                return vec![];
            }
            let name = &topics[rng.below(topics.len() as u64) as usize];
            let change = ("retention.ms".to_string(), value(rng));
            h.state.alter_topic_configs(name, &[change]).unwrap().0
        }
        3 => {
            let epoch = h.state.broker(1).unwrap().epoch;
            h.state.allocate_producer_ids(1, epoch).unwrap().0
        }
        4 => {
            let name = format!("s{}", rng.below(8));
            let id = uuid::Uuid::from_u128(0xAB00 + u128::from(rng.below(1 << 20)));
            h.state
                .create_topic(
                    &Harness::create_request(&name, 1 + rng.below(3) as i32, 2),
                    id,
                )
                .map(|r| r.0)
                .unwrap_or_default()
        }
        _ => {
            let ids: Vec<_> = h.state.topics().map(|t| t.id).collect();
            if ids.is_empty() {
                return vec![];
            }
            h.state
                .delete_topic(&ids[rng.below(ids.len() as u64) as usize])
                .unwrap()
                .0
        }
    }
}

#[test]
fn snapshot_round_trips_over_random_histories() {
    for seed in 0..40 {
        let mut rng = Rng(seed);
        let mut h = Harness::new();
        h.start(1, Some("a"));
        h.start(2, None);
        h.register(3, Some("b"));
        for step in 0..60 {
            let records = random_record(&h, &mut rng);
            h.commit(records);
            h.assert_snapshot_round_trip();
            if step == 30 {
                // Continue from a rebuilt state: both must follow the log identically.
                let mut rebuilt =
                    ClusterState::from_snapshot(h.state.last_offset(), &h.state.snapshot_records());
                let more: Vec<MetadataRecord> = (0..10)
                    .flat_map(|_| random_record(&h, &mut rng))
                    .take(1)
                    .collect();
                let first = h.next_offset;
                h.commit(more.clone());
                for (i, r) in more.iter().enumerate() {
                    rebuilt.replay(first + i as i64, r);
                }
                assert_eq!(rebuilt, h.state);
            }
        }
    }
}
