//! The openraft type configuration and the aliases the other modules use.

use std::io::Cursor;

/// A voter's id: Kafka's `node.id` of a controller (non-negative, so it fits a `u64`).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// Gregor's openraft type configuration: opaque byte payloads in, opaque byte replies out.
    pub TypeConfig:
        D = Vec<u8>,
        R = Vec<u8>,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub(crate) type Raft = openraft::Raft<TypeConfig>;
pub(crate) type Entry = openraft::Entry<TypeConfig>;
pub(crate) type LogId = openraft::LogId<NodeId>;
pub(crate) type Vote = openraft::Vote<NodeId>;
pub(crate) type StorageError = openraft::StorageError<NodeId>;
pub(crate) type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub(crate) type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub(crate) type Snapshot = openraft::Snapshot<TypeConfig>;
