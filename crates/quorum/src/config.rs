//! [`QuorumConfig`]: what [`Quorum::open`](crate::Quorum::open) needs.

use crate::error::QuorumError;
use crate::types::NodeId;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The configuration of one quorum member.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    /// This node's id; must be one of `voters`.
    pub node_id: NodeId,
    /// The static voter set: id → address (`controller.quorum.voters`). The address is passed
    /// as-is to [`Transport::call`](crate::Transport::call); this crate never parses it.
    pub voters: BTreeMap<NodeId, String>,
    /// The directory holding this node's raft log, vote, committed index and snapshot. Created
    /// if missing. One directory per node.
    pub dir: PathBuf,
    /// A name shared by all voters; RPCs carrying another name are rejected. Default `"gregor"`.
    pub cluster_name: String,
    /// The lower bound of the randomized election timeout. Default 500 ms.
    ///
    /// Each node draws its election timeout `t` in `[min, max)` once at start. A follower that
    /// has not heard from the leader for `election_timeout_max` (openraft's leader lease, during
    /// which it also refuses to vote for others) plus `t` campaigns. So after a leader crash a
    /// new leader is elected after about `max + t`: 1.5–2 s with the defaults, 0.9–1.2 s in the
    /// tests' 300–600 ms setting.
    pub election_timeout_min: Duration,
    /// The upper bound of the randomized election timeout, and the leader lease. Default
    /// 1000 ms (Kafka's `controller.quorum.election.timeout.ms`).
    pub election_timeout_max: Duration,
    /// How often the leader sends heartbeats; must be below `election_timeout_min`. openraft
    /// also uses it as the timeout of one AppendEntries RPC (network round trip plus the
    /// follower's fsync). Default 100 ms.
    pub heartbeat_interval: Duration,
    /// Build a snapshot every this many committed entries (openraft's
    /// `SnapshotPolicy::LogsSinceLast`); `0` never snapshots on its own. Default 10000.
    pub snapshot_every: u64,
    /// How many entries already covered by the snapshot stay in the log, so that a slightly
    /// lagging follower can still catch up from the log instead of a snapshot. Default 1000.
    pub keep_after_snapshot: u64,
    /// How long [`Quorum::propose`](crate::Quorum::propose) waits for the entry to be committed
    /// and applied before answering [`ProposeError::Timeout`](crate::ProposeError::Timeout).
    /// Default 5 s.
    pub propose_timeout: Duration,
    /// How long sending one snapshot chunk (and the follower installing the last one) may take
    /// before the transfer is abandoned and retried later. Default 1 s. (openraft bounds the
    /// other RPCs itself: an AppendEntries by `heartbeat_interval`, a Vote by
    /// `election_timeout_min`.)
    pub snapshot_chunk_timeout: Duration,
    /// Snapshots are sent to lagging followers in chunks of at most this many bytes (keeps every
    /// RPC frame bounded). Default 1 MiB.
    pub snapshot_chunk_bytes: u64,
    /// The raft log rolls to a new segment file after this many entries; purging deletes whole
    /// segments. Default 1024.
    pub segment_entries: u64,
}

impl QuorumConfig {
    /// A config with the defaults listed on each field.
    pub fn new(node_id: NodeId, voters: BTreeMap<NodeId, String>, dir: impl Into<PathBuf>) -> Self {
        QuorumConfig {
            node_id,
            voters,
            dir: dir.into(),
            cluster_name: "gregor".to_string(),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_millis(100),
            snapshot_every: 10_000,
            keep_after_snapshot: 1_000,
            propose_timeout: Duration::from_secs(5),
            snapshot_chunk_timeout: Duration::from_secs(1),
            snapshot_chunk_bytes: 1024 * 1024,
            segment_entries: 1024,
        }
    }

    /// Checks the config and builds openraft's.
    pub(crate) fn to_openraft(&self) -> Result<openraft::Config, QuorumError> {
        if self.voters.is_empty() {
            return Err(QuorumError::Config("the voter set is empty".into()));
        }
        if !self.voters.contains_key(&self.node_id) {
            return Err(QuorumError::Config(format!(
                "node {} is not in the voter set {:?}",
                self.node_id,
                self.voters.keys().collect::<Vec<_>>()
            )));
        }
        if self.segment_entries == 0 {
            return Err(QuorumError::Config("segment_entries must be > 0".into()));
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(QuorumError::Config(
                "snapshot_chunk_bytes must be > 0".into(),
            ));
        }
        let ms = |d: Duration| d.as_millis().min(u128::from(u64::MAX)) as u64;
        let config = openraft::Config {
            cluster_name: self.cluster_name.clone(),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            heartbeat_interval: ms(self.heartbeat_interval),
            install_snapshot_timeout: ms(self.snapshot_chunk_timeout).max(1),
            snapshot_policy: if self.snapshot_every == 0 {
                openraft::SnapshotPolicy::Never
            } else {
                openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every)
            },
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| QuorumError::Config(e.to_string()))
    }
}
