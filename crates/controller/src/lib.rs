//! # gregor-controller
//!
//! Cluster metadata (topics with stable UUID topic ids, partitions, topic configs, broker
//! registrations, producer-id blocks) as a state machine whose every change is a
//! [`MetadataRecord`]. It is single-node for now, and written so that a Raft quorum can later
//! replicate the same records: no sockets, no clocks, no async.
//!
//! A tour of the modules:
//! - [`records`]: the [`MetadataRecord`] enum, the unit of change and of persistence.
//! - [`state`]: [`ClusterState`], which `replay`s records, and the validating command methods
//!   (`create_topic`, `create_partitions`, `delete_topic`, ...) that return the records a change
//!   needs without applying them.
//! - [`log`]: [`MetadataLog`], the local metadata log file (CRC-framed records, fsynced per
//!   commit, torn tail truncated on open).
//! - [`controller`]: [`Controller`], state + log: validate, append, then apply.
//! - [`topic`]: topic name rules and the known topic config names.

pub mod controller;
pub mod log;
pub mod records;
pub mod state;
pub mod topic;

pub use controller::Controller;
pub use log::MetadataLog;
pub use records::MetadataRecord;
pub use state::{ClusterState, ControllerError, TopicMeta};

/// Kafka's `Uuid` text form: URL-safe base64 without padding (22 characters).
pub fn uuid_to_base64(id: uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    let mut i = 0;
    while i + 3 <= bytes.len() {
        let n =
            (u32::from(bytes[i]) << 16) | (u32::from(bytes[i + 1]) << 8) | u32::from(bytes[i + 2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
        }
        i += 3;
    }
    // 16 bytes = 5 groups of 3 + 1 remaining byte.
    let n = u32::from(bytes[15]) << 16;
    out.push(ALPHABET[((n >> 18) & 63) as usize] as char);
    out.push(ALPHABET[((n >> 12) & 63) as usize] as char);
    out
}

/// A random UUID as Kafka generates them: never zero, never the reserved metadata topic id
/// (`AAAAAAAAAAAAAAAAAAAAAQ`), and never one whose base64 form starts with `-`.
pub fn random_kafka_uuid() -> uuid::Uuid {
    loop {
        let id = uuid::Uuid::new_v4();
        if id.as_u128() > 1 && !uuid_to_base64(id).starts_with('-') {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_kafka() {
        // Kafka's Uuid.METADATA_TOPIC_ID = new Uuid(0L, 1L) prints as AAAAAAAAAAAAAAAAAAAAAQ.
        assert_eq!(
            super::uuid_to_base64(uuid::Uuid::from_u128(1)),
            "AAAAAAAAAAAAAAAAAAAAAQ"
        );
        assert_eq!(
            super::uuid_to_base64(uuid::Uuid::from_u128(0)),
            "AAAAAAAAAAAAAAAAAAAAAA"
        );
        let id = super::random_kafka_uuid();
        assert_eq!(super::uuid_to_base64(id).len(), 22);
    }
}
