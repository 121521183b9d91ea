//! [`StripedReplicaPlacer`]: Kafka's rack-aware `StripedReplicaPlacer`
//! (metadata/.../metadata/placement/StripedReplicaPlacer.java), made deterministic: the
//! "random" starting offsets and shuffles come from a small PRNG seeded by the caller (from the
//! topic id), so every controller computes the same placement.
//!
//! Racks are visited round-robin from a starting offset that advances by one per partition
//! (the stripes); within a rack, brokers are taken round-robin, unfenced ones first. The first
//! replica (the leader) is always an unfenced broker. Brokers in controlled shutdown are not
//! usable. Once as many partitions as there are unfenced brokers have been placed, the rack and
//! broker lists are reshuffled so the pattern does not repeat.

use std::collections::BTreeMap;

/// A broker the placer may use (Kafka's `UsableBroker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableBroker {
    /// Node id.
    pub id: i32,
    /// Rack.
    pub rack: Option<String>,
    /// Fenced (usable for followers only, once no unfenced broker is left in the rack).
    pub fenced: bool,
}

/// SplitMix64: the placer's deterministic stand-in for `java.util.Random`.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_index(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.next_index(i + 1);
            v.swap(i, j);
        }
    }
}

#[derive(Debug, Default)]
struct BrokerList {
    brokers: Vec<i32>,
    index: usize,
    offset: usize,
    epoch: u64,
}

impl BrokerList {
    fn initialize(&mut self, rng: &mut SplitMix64) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = rng.next_index(self.brokers.len());
        }
    }

    fn next(&mut self, epoch: u64) -> Option<i32> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let broker = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(broker)
    }
}

#[derive(Debug, Default)]
struct Rack {
    fenced: BrokerList,
    unfenced: BrokerList,
}

impl Rack {
    fn next(&mut self, epoch: u64) -> Option<i32> {
        self.unfenced
            .next(epoch)
            .or_else(|| self.fenced.next(epoch))
    }
}

/// Places partitions' replicas over a set of brokers (one placement request).
#[derive(Debug)]
pub struct StripedReplicaPlacer {
    rng: SplitMix64,
    racks: BTreeMap<Option<String>, Rack>,
    /// Every rack name, sorted as Kafka's `OptionalStringComparator` (absent rack first).
    rack_names: Vec<Option<String>>,
    num_total: usize,
    num_unfenced: usize,
    epoch: u64,
    offset: usize,
}

/// The reason a placement is impossible (Kafka's `InvalidReplicationFactorException`
/// message).
pub type PlacementError = String;

impl StripedReplicaPlacer {
    /// A placer over `brokers`, with its starting offsets drawn from `seed`.
    pub fn new(brokers: impl IntoIterator<Item = UsableBroker>, seed: u64) -> StripedReplicaPlacer {
        let mut rng = SplitMix64(seed);
        let mut racks: BTreeMap<Option<String>, Rack> = BTreeMap::new();
        let (mut num_total, mut num_unfenced) = (0, 0);
        for b in brokers {
            let rack = racks.entry(b.rack).or_default();
            if b.fenced {
                rack.fenced.brokers.push(b.id);
            } else {
                rack.unfenced.brokers.push(b.id);
                num_unfenced += 1;
            }
            num_total += 1;
        }
        for rack in racks.values_mut() {
            rack.fenced.initialize(&mut rng);
            rack.unfenced.initialize(&mut rng);
        }
        // BTreeMap order = Kafka's OptionalStringComparator (absent rack first, then sorted).
        let rack_names: Vec<Option<String>> = racks.keys().cloned().collect();
        let offset = if rack_names.is_empty() {
            0
        } else {
            rng.next_index(rack_names.len())
        };
        StripedReplicaPlacer {
            rng,
            racks,
            rack_names,
            num_total,
            num_unfenced,
            epoch: 0,
            offset,
        }
    }

    /// Number of usable brokers, fenced or not.
    pub fn num_total_brokers(&self) -> usize {
        self.num_total
    }

    /// Number of unfenced usable brokers.
    pub fn num_unfenced_brokers(&self) -> usize {
        self.num_unfenced
    }

    /// Kafka's `place`: the replicas of `num_partitions` partitions, `replication_factor` each.
    pub fn place(
        &mut self,
        num_partitions: usize,
        replication_factor: i32,
    ) -> Result<Vec<Vec<i32>>, PlacementError> {
        self.check(replication_factor)?;
        (0..num_partitions)
            .map(|_| self.place_one(replication_factor))
            .collect()
    }

    fn check(&self, replication_factor: i32) -> Result<(), PlacementError> {
        if replication_factor <= 0 {
            return Err(format!(
                "Invalid replication factor {replication_factor}: the replication factor must be positive."
            ));
        }
        if self.num_unfenced == 0 {
            return Err("All brokers are currently fenced.".into());
        }
        if replication_factor as usize > self.num_total {
            return Err(format!(
                "The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
                self.num_total
            ));
        }
        Ok(())
    }

    fn shuffle(&mut self) {
        self.rng.shuffle(&mut self.rack_names);
        for rack in self.racks.values_mut() {
            self.rng.shuffle(&mut rack.fenced.brokers);
            self.rng.shuffle(&mut rack.unfenced.brokers);
        }
    }

    fn place_one(&mut self, replication_factor: i32) -> Result<Vec<i32>, PlacementError> {
        self.check(replication_factor)?;
        if self.epoch == self.num_unfenced as u64 && self.num_unfenced > 1 {
            self.shuffle();
            self.epoch = 0;
        }
        if self.offset == self.rack_names.len() {
            self.offset = 0;
        }
        let n = self.rack_names.len();
        let mut brokers = Vec::with_capacity(replication_factor as usize);
        // The leader: the first unfenced broker from the starting rack on.
        let mut first_rack = self.offset;
        loop {
            let rack = self
                .racks
                .get_mut(&self.rack_names[first_rack])
                .expect("rack");
            if let Some(b) = rack.unfenced.next(self.epoch) {
                brokers.push(b);
                break;
            }
            first_rack = (first_rack + 1) % n;
        }
        // The followers: one per rack in turn, skipping the leader's rack once.
        let mut first_rack = Some(first_rack);
        let mut rack_index = self.offset;
        for _ in 1..replication_factor {
            loop {
                let result = if Some(rack_index) == first_rack {
                    first_rack = None;
                    None
                } else {
                    self.racks
                        .get_mut(&self.rack_names[rack_index])
                        .expect("rack")
                        .next(self.epoch)
                };
                rack_index = (rack_index + 1) % n;
                if let Some(b) = result {
                    brokers.push(b);
                    break;
                }
            }
        }
        self.epoch += 1;
        self.offset += 1;
        Ok(brokers)
    }
}

/// A placement seed from a topic id and the first partition placed.
pub fn seed_for(topic_id: uuid::Uuid, first_partition: i32) -> u64 {
    let v = topic_id.as_u128();
    ((v >> 64) as u64) ^ (v as u64) ^ (first_partition as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn brokers(spec: &[(i32, Option<&str>, bool)]) -> Vec<UsableBroker> {
        spec.iter()
            .map(|(id, rack, fenced)| UsableBroker {
                id: *id,
                rack: rack.map(str::to_string),
                fenced: *fenced,
            })
            .collect()
    }

    #[test]
    fn errors_use_kafkas_messages() {
        let mut p = StripedReplicaPlacer::new(brokers(&[(1, None, false), (2, None, true)]), 7);
        assert_eq!(
            p.place(1, 3).unwrap_err(),
            "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
        );
        assert_eq!(
            p.place(1, 0).unwrap_err(),
            "Invalid replication factor 0: the replication factor must be positive."
        );
        let mut p = StripedReplicaPlacer::new(brokers(&[(1, None, true)]), 7);
        assert_eq!(
            p.place(1, 1).unwrap_err(),
            "All brokers are currently fenced."
        );
    }

    #[test]
    fn leaders_are_unfenced_balanced_and_replicas_distinct() {
        let spec: Vec<_> = (1..=4).map(|i| (i, None, i == 4)).collect();
        for seed in 0..20 {
            let mut p = StripedReplicaPlacer::new(brokers(&spec), seed);
            let parts = p.place(30, 3).unwrap();
            let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
            for r in &parts {
                assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3, "{r:?}");
                assert_ne!(r[0], 4, "fenced leader in {r:?}");
                *leaders.entry(r[0]).or_default() += 1;
            }
            assert_eq!(leaders.len(), 3);
            assert!(leaders.values().all(|n| *n == 10), "{leaders:?}");
        }
    }

    #[test]
    fn racks_are_spread() {
        let spec = [
            (1, Some("a"), false),
            (2, Some("a"), false),
            (3, Some("b"), false),
            (4, Some("b"), false),
            (5, Some("c"), false),
            (6, Some("c"), false),
        ];
        let rack = |id: i32| spec.iter().find(|b| b.0 == id).unwrap().1;
        let mut p = StripedReplicaPlacer::new(brokers(&spec), 42);
        for r in p.place(12, 3).unwrap() {
            let racks: BTreeSet<_> = r.iter().map(|b| rack(*b)).collect();
            assert_eq!(racks.len(), 3, "{r:?}");
        }
    }

    #[test]
    fn deterministic() {
        let spec: Vec<_> = (1..=5).map(|i| (i, None, false)).collect();
        let a = StripedReplicaPlacer::new(brokers(&spec), 9)
            .place(8, 2)
            .unwrap();
        let b = StripedReplicaPlacer::new(brokers(&spec), 9)
            .place(8, 2)
            .unwrap();
        assert_eq!(a, b);
    }
}
