//! # gregor-quorum
//!
//! The controller quorum of a KRaft-style Gregor cluster: a few controllers replicate the
//! cluster-metadata log with Raft, and every change to the cluster is an entry in it. This crate
//! hides [openraft](https://docs.rs/openraft/0.9.25) behind a small API: the caller supplies a
//! [`StateMachine`] (the metadata it replicates) and a [`Transport`] (how RPC frames reach the
//! other voters), and gets a [`Quorum`] to [`propose`](Quorum::propose) to, to feed incoming
//! frames to ([`handle_rpc`](Quorum::handle_rpc)), and to watch ([`QuorumStatus`]). It has no
//! sockets: only `gregor-broker` has.
//!
//! ```
//! use gregor_quorum::{MemNetwork, Quorum, QuorumConfig, StateMachine};
//! use std::collections::BTreeMap;
//!
//! /// Counts the bytes proposed.
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _index: u64, data: &[u8]) -> Vec<u8> {
//!         self.0 += data.len() as u64;
//!         self.0.to_be_bytes().to_vec()
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_be_bytes().to_vec()
//!     }
//!     fn restore(&mut self, _last_index: u64, snapshot: &[u8]) -> Result<(), String> {
//!         self.0 = u64::from_be_bytes(snapshot.try_into().map_err(|_| "bad snapshot")?);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let voters = BTreeMap::from([(1, "localhost:9093".to_string())]);
//! let config = QuorumConfig::new(1, voters, dir.path().join("quorum"));
//! let net = MemNetwork::new(); // the broker passes its own `Transport` here
//! let quorum = Quorum::open(config, Counter::default(), net.transport(1)).await?;
//! assert!(quorum.is_leader()); // a single voter leads as soon as `open` returns
//! let proposed = quorum.propose(b"abc".to_vec()).await?;
//! assert_eq!(proposed.reply, 3u64.to_be_bytes());
//! quorum.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! ## What openraft does and what this crate does
//! openraft (pinned to `=0.9.25`) is the consensus engine: elections, terms and votes, log
//! replication and conflict truncation, the commit index, deciding when to snapshot, sending
//! snapshots to followers whose log was purged, and purging the log behind snapshots. This crate
//! provides what openraft leaves to its user:
//! - durable storage for the log, the vote, the committed index and snapshots;
//! - the adapter from openraft's entries to the caller's [`StateMachine`];
//! - the RPC encoding and envelope checks, over the caller's [`Transport`];
//! - forming the quorum from the static voter set, the single-voter fast start, proposals with a
//!   timeout and a forwardable [`ProposeError::NotLeader`], and the status for DescribeQuorum.
//!
//! ## Modules
//! - [`config`]: [`QuorumConfig`] (voters, directory, timeouts, snapshot policy).
//! - [`quorum`]: [`Quorum`] (`open`, `propose`, `handle_rpc`, `status`/`subscribe`, `shutdown`),
//!   [`QuorumStatus`] and how it maps to Kafka's DescribeQuorum.
//! - [`state_machine`]: the [`StateMachine`] trait, which indexes it sees, and the snapshot file.
//! - `log_store` (private): the segmented, CRC-framed, fsynced raft log; the vote and committed
//!   files.
//! - [`network`]: the [`Transport`] trait and the RPC format.
//! - [`mem`]: [`MemNetwork`], an in-process transport with partitions, for tests.
//! - [`error`]: [`QuorumError`], [`ProposeError`], [`TransportError`].
//!
//! ## Durability
//! openraft's safety rests on its storage: "the vote must be persisted before returning" and an
//! entry may be reported flushed only once it is on disk; otherwise a restarted node can vote
//! twice in a term or lose entries the leader counted as acknowledged. Here:
//! - log entries are written as CRC frames (`u32 len | u32 crc32c | body`, the format of
//!   `gregor-controller`'s metadata log) into segment files and `fdatasync`ed on a dedicated
//!   writer thread *before* openraft's flushed callback runs (appends queued together share one
//!   fsync); a torn tail is truncated on open, any other damage is a clear error, never a panic;
//! - the vote is its own file, replaced by write-temp, fsync, rename, fsync-directory, before
//!   `save_vote` returns; a directory whose vote is older than its log (a lost or rolled-back
//!   vote file) is refused;
//! - snapshots are written the same way; the log is purged behind them by openraft's policy
//!   ([`QuorumConfig::snapshot_every`], [`QuorumConfig::keep_after_snapshot`]) after the
//!   purge point itself is durable;
//! - the committed index is a hint written without fsync (a stale one only delays re-applying).
//!
//! ## RPC format
//! `1 version byte | postcard(envelope)`: the envelope names the cluster, sender and target and
//! holds one of openraft's AppendEntries, Vote or InstallSnapshot (chunked, at most
//! [`QuorumConfig::snapshot_chunk_bytes`] of snapshot per frame) messages. Replies are the same
//! format. See [`network`] for why postcard.
//!
//! ## Why openraft 0.9.25 and these features
//! 0.9.25 is the latest stable release; the 0.10 line is still alpha (its API changes between
//! alphas, and safety fixes were still landing in 2026), and nothing this crate needs is 0.10
//! only. Features: `storage-v2` (the current storage traits) and `serde` (the encodings).
//!
//! openraft's default voting is kept, although it is not textbook Raft: a leader is identified by
//! `(term, node id)`, and a voter may move its vote to a higher node id within the same term, so
//! two nodes can lead one after the other in one term (safety is unaffected: log ids carry the
//! node id too). The textbook mode (feature `single-term-leader`) was tried and dropped: 0.9.25
//! draws each node's election timeout once at start and never again, so two surviving voters
//! whose timers line up split every vote forever (the partition test hit it: both candidates
//! started terms 3 to 10 within 2 ms of each other). With the default mode the higher node id
//! wins such a tie at once. The term is therefore not a unique leader id, and
//! [`QuorumStatus::leader_epoch`] provides Kafka's `LeaderEpoch` instead: unique per leader and
//! increasing.
//!
//! ## Limitations
//! - The voter set is static (no AddRaftVoter/RemoveRaftVoter), and there are no observers:
//!   brokers must read committed metadata some other way (a pull RPC served from the state
//!   machine).
//! - Entries and snapshots are held in memory as well as on disk: fine for the metadata log,
//!   not for large data.
//! - The on-disk entry encoding is openraft's serde form: moving to another openraft version
//!   needs a check (or a conversion) of existing directories.
//! - A voter whose directory is lost must not rejoin with an empty one: it would form the quorum
//!   afresh and could vote a second time in a term it already voted in. Replacing a voter needs a
//!   membership change, which is not implemented.
//! - openraft 0.9 has no pre-vote: a voter that was partitioned away keeps raising its term and
//!   forces one extra election when it reconnects. A restarted former leader acts as leader of
//!   its old term until a peer answers it (see [`Quorum::is_leader`]).
//! - openraft logs each failed RPC to an unreachable peer at ERROR level (targets
//!   `openraft::core::raft_core` and `openraft::replication`), which is noisy while a voter is
//!   down; the broker's log filter may want to quieten those two targets.

#![deny(missing_docs)]

pub mod config;
pub mod error;
mod fsutil;
mod log_store;
pub mod mem;
pub mod network;
pub mod quorum;
pub mod state_machine;
mod types;

pub use bytes::Bytes;
pub use config::QuorumConfig;
pub use error::{ProposeError, QuorumError, TransportError};
pub use mem::{MemNetwork, MemTransport};
pub use network::Transport;
pub use quorum::{Proposed, Quorum, QuorumStatus, Role, VoterStatus};
pub use state_machine::StateMachine;
pub use types::NodeId;
