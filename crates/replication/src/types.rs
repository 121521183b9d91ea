//! The values exchanged between the state machines and their caller.

/// Kafka's `UnifiedLog.UnknownOffset` (and the wire's `UNDEFINED_EPOCH_OFFSET`): an offset not
/// known yet, such as a follower's log end offset before its first fetch.
pub const UNKNOWN_OFFSET: i64 = -1;

/// Kafka's `UNDEFINED_EPOCH` (`OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;

/// Kafka's `LeaderAndIsr.NO_LEADER`: the partition has no leader.
pub const NO_LEADER: i32 = -1;

/// A broker epoch of `-1` in a Fetch (`ReplicaState.ReplicaEpoch`) or AlterPartition
/// (`NewIsrWithEpochs.BrokerEpoch`): "not known", which skips the epoch checks (KIP-903).
pub const NO_BROKER_EPOCH: i64 = -1;

/// KIP-704's `LeaderRecoveryState` (`metadata/.../LeaderRecoveryState.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LeaderRecoveryState {
    /// The leader was elected cleanly, or has recovered from an unclean election.
    #[default]
    Recovered,
    /// The leader was elected uncleanly and has not recovered yet (the ISR is `{leader}`).
    Recovering,
}

impl LeaderRecoveryState {
    /// The value on the wire and in metadata records (0 = RECOVERED, 1 = RECOVERING).
    pub const fn value(self) -> i8 {
        match self {
            LeaderRecoveryState::Recovered => 0,
            LeaderRecoveryState::Recovering => 1,
        }
    }

    /// The state for a wire value; `None` for an unknown one.
    pub const fn from_value(value: i8) -> Option<LeaderRecoveryState> {
        match value {
            0 => Some(LeaderRecoveryState::Recovered),
            1 => Some(LeaderRecoveryState::Recovering),
            _ => None,
        }
    }
}

/// The committed state of a partition as the metadata log has it (a `PartitionRecord` with
/// its `PartitionChangeRecord`s applied): what Kafka's `Partition.makeLeader` and
/// `makeFollower` receive as `LeaderAndIsrPartitionState`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The leader's broker id, or [`NO_LEADER`].
    pub leader: i32,
    /// The leader epoch (bumped by the controller on every leader change).
    pub leader_epoch: i32,
    /// The partition epoch (bumped by the controller on every change of the partition).
    pub partition_epoch: i32,
    /// The assigned replicas, in preference order (during a reassignment: old and new).
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas being added by an ongoing reassignment.
    pub adding_replicas: Vec<i32>,
    /// Replicas being removed by an ongoing reassignment.
    pub removing_replicas: Vec<i32>,
    /// KIP-704's recovery state.
    pub leader_recovery_state: LeaderRecoveryState,
}

/// Kafka's `LeaderAndIsr`: the partition state in a successful AlterPartition answer
/// (`AlterPartitionResponse` per partition: `LeaderId`, `LeaderEpoch`, `Isr`,
/// `LeaderRecoveryState`, `PartitionEpoch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The leader's broker id.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch after the change (unchanged if the controller had nothing to do).
    pub partition_epoch: i32,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// KIP-704's recovery state.
    pub leader_recovery_state: LeaderRecoveryState,
}

/// One ISR member in an AlterPartition request (v3's `NewIsrWithEpochs`, KIP-903).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrokerState {
    /// The broker id.
    pub broker_id: i32,
    /// The member's broker epoch as the leader knows it (the local broker's own epoch, or
    /// the epoch in the follower's latest Fetch), [`NO_BROKER_EPOCH`] if unknown.
    pub broker_epoch: i64,
}

/// What an AlterPartition request proposes (Kafka's `PendingExpandIsr` /
/// `PendingShrinkIsr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsrChange {
    /// Add one caught-up follower to the ISR.
    Expand {
        /// The follower that joins.
        replica_id: i32,
    },
    /// Remove followers that fell out of sync.
    Shrink {
        /// The followers that leave, in ascending id order.
        out_of_sync: Vec<i32>,
    },
}

/// An AlterPartition request item (API 56, one partition) the leader wants sent to the
/// controller. The caller sends it (batching per broker as Kafka's `AlterPartitionManager`
/// does, one request in flight per broker) and hands the answer back with
/// [`LeaderState::on_alter_partition_response`](crate::LeaderState::on_alter_partition_response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    /// Why the ISR changes (not on the wire; for logs and metrics: `IsrExpandsPerSec`,
    /// `IsrShrinksPerSec`).
    pub change: IsrChange,
    /// The leader, i.e. the local broker (the request's `BrokerId`).
    pub leader_id: i32,
    /// The leader epoch the change is based on.
    pub leader_epoch: i32,
    /// The partition epoch the change is based on.
    pub partition_epoch: i32,
    /// The proposed ISR with broker epochs, in ascending id order.
    pub new_isr: Vec<BrokerState>,
    /// The recovery state to set (always RECOVERED: a leader considers itself recovered).
    pub leader_recovery_state: LeaderRecoveryState,
}

impl AlterPartitionRequest {
    /// The proposed ISR's broker ids (the `NewIsr` of AlterPartition v0–v2).
    pub fn isr_ids(&self) -> Vec<i32> {
        self.new_isr.iter().map(|b| b.broker_id).collect()
    }
}

/// What the local metadata cache knows about a broker (Kafka's `KRaftMetadataCache`:
/// `getAliveBrokerEpoch`, `isBrokerFenced`, `isBrokerShuttingDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokerEligibility {
    /// The epoch of the broker's current registration (the offset of its
    /// `RegisterBrokerRecord`), `None` if it is not registered.
    pub registered_epoch: Option<i64>,
    /// Whether the controller fenced it.
    pub fenced: bool,
    /// Whether it is in controlled shutdown.
    pub in_controlled_shutdown: bool,
}

impl BrokerEligibility {
    /// A registered, unfenced broker that is not shutting down.
    pub const fn alive(epoch: i64) -> BrokerEligibility {
        BrokerEligibility {
            registered_epoch: Some(epoch),
            fenced: false,
            in_controlled_shutdown: false,
        }
    }

    /// Kafka's `getAliveBrokerEpoch`: the registered epoch of an unfenced broker.
    pub fn alive_epoch(&self) -> Option<i64> {
        self.registered_epoch.filter(|_| !self.fenced)
    }
}

/// An `(epoch, end offset)` pair: a `DivergingEpoch` in a Fetch response or an
/// OffsetForLeaderEpoch answer (`EpochEndOffset`). Undefined parts are [`UNDEFINED_EPOCH`]
/// and [`UNKNOWN_OFFSET`], as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpochEndOffset {
    /// The largest epoch `<=` the requested one that the leader knows.
    pub epoch: i32,
    /// Where that epoch ends in the leader's log (the next epoch's start, or its LEO).
    pub end_offset: i64,
}

impl EpochEndOffset {
    /// Both parts undefined: the leader knows no epoch `<=` the requested one.
    pub const UNDEFINED: EpochEndOffset = EpochEndOffset {
        epoch: UNDEFINED_EPOCH,
        end_offset: UNKNOWN_OFFSET,
    };

    /// The wire form of a log's `end_offset_for_epoch` answer (`None` becomes
    /// [`EpochEndOffset::UNDEFINED`]).
    pub fn from_lookup(lookup: Option<(i32, i64)>) -> EpochEndOffset {
        match lookup {
            Some((epoch, end_offset)) => EpochEndOffset { epoch, end_offset },
            None => EpochEndOffset::UNDEFINED,
        }
    }
}

/// The leader's log offsets, read by the caller *before* serving a fetch (Kafka's
/// `Partition.readRecords` captures them first "so that appends following the fetch do not
/// prevent a follower from coming into sync").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderLogView {
    /// The log start offset.
    pub log_start_offset: i64,
    /// The log end offset (LEO).
    pub log_end_offset: i64,
    /// The high watermark stored in the log.
    pub high_watermark: i64,
}

/// A follower's own log offsets and latest epoch, read by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerLogView {
    /// The log start offset.
    pub log_start_offset: i64,
    /// The log end offset (LEO).
    pub log_end_offset: i64,
    /// The high watermark stored in the log.
    pub high_watermark: i64,
    /// The latest epoch of the leader-epoch cache (`Log::latest_epoch`), `None` if empty.
    pub latest_epoch: Option<i32>,
}
