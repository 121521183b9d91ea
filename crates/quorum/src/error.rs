//! The crate's error types.

use crate::types::NodeId;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of [`Quorum::open`](crate::Quorum::open), [`Quorum::handle_rpc`](crate::Quorum::handle_rpc)
/// and the other non-proposal calls.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// An I/O error on a file or directory of the quorum's storage.
    #[error("quorum storage i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A storage file exists but its content is invalid (bad CRC, bad encoding, a gap in the log).
    /// The node refuses to start rather than guess; the operator must repair or wipe it.
    #[error("quorum storage file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration is invalid.
    #[error("invalid quorum config: {0}")]
    Config(String),
    /// The directory belongs to a quorum with another voter set. Voters are static: changing
    /// `controller.quorum.voters` on an existing quorum needs a membership change, which this crate
    /// does not do yet.
    #[error("the quorum directory was formed with voters {stored:?}, but the config lists {configured:?}")]
    VoterSetMismatch {
        /// The voter ids in the config.
        configured: Vec<NodeId>,
        /// The voter ids recorded in the log or snapshot.
        stored: Vec<NodeId>,
    },
    /// The caller's [`StateMachine::restore`](crate::StateMachine::restore) rejected the stored snapshot.
    #[error("the state machine could not restore the snapshot at index {index}: {reason}")]
    SnapshotRestore {
        /// The snapshot's last log index.
        index: u64,
        /// The state machine's message.
        reason: String,
    },
    /// openraft failed (a storage error it hit, or a failure while starting).
    #[error("raft: {0}")]
    Raft(String),
    /// An RPC came from a node that is not a voter of this quorum. Nothing was changed.
    #[error("rejected a raft RPC from node {from}, which is not a voter of this quorum (voters {voters:?})")]
    NotAVoter {
        /// The sender's id as it claims it.
        from: NodeId,
        /// This quorum's voters.
        voters: Vec<NodeId>,
    },
    /// An RPC was malformed, addressed to another node or cluster, or its sender id did not match
    /// the vote it carried. Nothing was changed.
    #[error("rejected a raft RPC: {0}")]
    BadRequest(String),
    /// The quorum was shut down.
    #[error("the quorum is shut down")]
    ShutDown,
}

impl QuorumError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        QuorumError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        QuorumError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Errors of [`Quorum::propose`](crate::Quorum::propose).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader. `leader` is the current leader and its address when known;
    /// forward the proposal there (or retry later when `None`, an election is under way). The
    /// entry was not appended, or was appended and then removed by a new leader: either way it
    /// will never be applied.
    #[error("not the quorum leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's id and address, when known.
        leader: Option<(NodeId, String)>,
    },
    /// The entry was not committed within the configured proposal timeout. The outcome is
    /// unknown: the entry may still commit later (for example once a partition heals).
    #[error("the proposal was not committed within {0:?}; its outcome is unknown")]
    Timeout(Duration),
    /// The quorum is shut down.
    #[error("the quorum is shut down")]
    ShutDown,
    /// The entry is larger than one log frame may be. Nothing was appended.
    #[error("the proposed entry is {size} bytes; at most {max} are allowed")]
    TooLarge {
        /// The entry's size.
        size: usize,
        /// The limit ([`MAX_ENTRY_BYTES`](crate::quorum::MAX_ENTRY_BYTES)).
        max: usize,
    },
    /// openraft stopped with an error (for example a storage failure).
    #[error("raft failed: {0}")]
    Fatal(String),
}

/// Errors a [`Transport`](crate::Transport) returns. openraft treats every one as "unreachable for
/// now" and retries after a short backoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made or it broke.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// No reply in time.
    #[error("rpc timed out")]
    Timeout,
    /// The remote answered with an error instead of a reply.
    #[error("remote error: {0}")]
    Remote(String),
}
