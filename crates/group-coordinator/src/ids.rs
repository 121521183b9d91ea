//! Injected id generation.
//!
//! The coordinator makes up member ids in two places: a classic JoinGroup without a member id
//! (`{client id or instance id}-{uuid}`) and a KIP-848 ConsumerGroupHeartbeat v0 that joins
//! without one (Kafka's base64 form of a UUID). It draws those UUIDs from the [`IdGenerator`]
//! given to [`crate::GroupCoordinator::new`], never from the system, so a coordinator's outputs
//! are a function of its inputs: the replayed records, the requests, `now_ms` and the ids.
//!
//! - `RandomIds` (cargo feature `random-ids`): v4 UUIDs, for the broker.
//! - [`SequentialIds`]: 1, 2, 3, ... as UUIDs, for tests that read the ids.
//! - [`SeededIds`]: v4-shaped UUIDs from a seeded PRNG, for tests that want realistic ids.
//!
//! A generator must not repeat an id that may still name a member of one of the shard's
//! groups, including across a reload of the shard (a new coordinator replaying the same
//! partition): a repeated id would let a new member take over an existing one. `RandomIds`
//! guarantees that; the deterministic generators only within one coordinator's lifetime, which
//! is what tests need.

use uuid::Uuid;

/// Where the coordinator gets new ids from.
pub trait IdGenerator: Send + std::fmt::Debug {
    /// The next id.
    fn next_uuid(&mut self) -> Uuid;
}

impl<G: IdGenerator + ?Sized> IdGenerator for Box<G> {
    fn next_uuid(&mut self) -> Uuid {
        (**self).next_uuid()
    }
}

/// Random (v4) UUIDs: what the broker uses.
#[cfg(feature = "random-ids")]
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

#[cfg(feature = "random-ids")]
impl IdGenerator for RandomIds {
    #[allow(clippy::disallowed_methods)] // The one place the crate may make a random id.
    fn next_uuid(&mut self) -> Uuid {
        Uuid::new_v4()
    }
}

/// UUIDs 1, 2, 3, ... (`00000000-0000-0000-0000-000000000001`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequentialIds {
    next: u128,
}

impl SequentialIds {
    /// A sequence whose first id is `first`.
    pub fn starting_at(first: u128) -> Self {
        SequentialIds { next: first }
    }
}

impl Default for SequentialIds {
    /// Starts at 1 (never the nil UUID).
    fn default() -> Self {
        SequentialIds::starting_at(1)
    }
}

impl IdGenerator for SequentialIds {
    fn next_uuid(&mut self) -> Uuid {
        let id = Uuid::from_u128(self.next);
        self.next = self.next.wrapping_add(1);
        id
    }
}

/// Version-4-shaped UUIDs from a seeded SplitMix64 stream: the same seed gives the same ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededIds {
    state: u64,
}

impl SeededIds {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededIds { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl IdGenerator for SeededIds {
    fn next_uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_counts_from_one() {
        let mut ids = SequentialIds::default();
        assert_eq!(ids.next_uuid(), Uuid::from_u128(1));
        assert_eq!(ids.next_uuid(), Uuid::from_u128(2));
        let mut ids = SequentialIds::starting_at(u128::MAX);
        assert_eq!(ids.next_uuid(), Uuid::from_u128(u128::MAX));
        assert_eq!(ids.next_uuid(), Uuid::nil());
    }

    #[test]
    fn seeded_is_reproducible_and_v4_shaped() {
        let a: Vec<Uuid> = {
            let mut g = SeededIds::new(7);
            (0..100).map(|_| g.next_uuid()).collect()
        };
        let mut g = SeededIds::new(7);
        let b: Vec<Uuid> = (0..100).map(|_| g.next_uuid()).collect();
        assert_eq!(a, b);
        let distinct: std::collections::BTreeSet<&Uuid> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
        assert!(a.iter().all(|u| u.get_version_num() == 4));
        assert_ne!(a[0], SeededIds::new(8).next_uuid());
    }

    #[test]
    fn boxed_generators_delegate() {
        let mut boxed: Box<dyn IdGenerator> = Box::new(SequentialIds::starting_at(5));
        assert_eq!(boxed.next_uuid(), Uuid::from_u128(5));
    }

    #[cfg(feature = "random-ids")]
    #[test]
    fn random_ids_are_v4() {
        let mut g = RandomIds;
        let (a, b) = (g.next_uuid(), g.next_uuid());
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }
}
