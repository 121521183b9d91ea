//! The follower's side: Kafka's `AbstractFetcherThread` / `ReplicaFetcherThread` decisions
//! for one partition.

use gregor_protocol::ErrorCode;

use crate::types::{EpochEndOffset, FollowerLogView, NO_LEADER, UNDEFINED_EPOCH, UNKNOWN_OFFSET};

/// Kafka's `ReplicaManager.initialFetchOffset`: a follower starts fetching from its log end
/// offset if its log has a leader epoch (the leader then detects any divergence), else from
/// its high watermark (after truncating to it).
pub fn initial_fetch_offset(log: &FollowerLogView) -> i64 {
    if log.latest_epoch.is_some() {
        log.log_end_offset
    } else {
        log.high_watermark
    }
}

/// Kafka's follower high watermark rule (`UnifiedLog.maybeUpdateHighWatermark` with the
/// leader's high watermark from a fetch response): `min(leader_hw, log end offset)`, but
/// not below the log start offset. It may go down (a new leader's high watermark can lag).
pub fn follower_high_watermark(
    leader_high_watermark: i64,
    log_start_offset: i64,
    log_end_offset: i64,
) -> i64 {
    if leader_high_watermark < log_start_offset {
        log_start_offset
    } else {
        leader_high_watermark.min(log_end_offset)
    }
}

/// Kafka's recovery in `Partition.appendRecordsToFollowerOrFutureReplica` from an
/// `UnexpectedAppendOffsetException`: a fetch answer must start at the local LEO, except
/// for a follower whose log is empty at its log start (LEO = log start) that receives a
/// batch starting below that offset and holding it (the leader's log start, moved by
/// DeleteRecords, fell inside the batch). That follower starts its log over at the batch's
/// base offset (`Log::truncate_fully_and_start_at(first_offset)`) and appends. Returns
/// that offset, or `None` when the answer cannot be appended (Kafka then fails the
/// partition).
pub fn follower_append_restart_offset(
    first_offset: i64,
    last_offset: i64,
    log: &FollowerLogView,
) -> Option<i64> {
    (log.log_end_offset == log.log_start_offset
        && first_offset < log.log_end_offset
        && last_offset >= log.log_end_offset)
        .then_some(first_offset)
}

/// Where to truncate (Kafka's `OffsetTruncationState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetTruncationState {
    /// Truncate the log to this offset (`Log::truncate_to`; a no-op at or past the LEO
    /// except for the epoch cache) and fetch from it.
    pub offset: i64,
    /// `false` when the leader's epoch is unknown locally: the next fetch (whose last
    /// fetched epoch is then older) or OffsetForLeaderEpoch may truncate further (KIP-279).
    pub truncation_completed: bool,
}

/// Kafka's `AbstractFetcherThread.getOffsetTruncationState`: where to truncate given the
/// leader's `(epoch, end offset)` for the follower's last epoch (a `DivergingEpoch`, or an
/// OffsetForLeaderEpoch answer). `fetch_offset` is the partition's current fetch offset,
/// `log_end_offset` the local LEO and `end_offset_for_epoch` the local log's epoch lookup
/// (`Log::end_offset_for_epoch`).
///
/// * The leader's end offset is undefined: truncate to the fetch offset (the initial one,
///   the high watermark, for a partition in the truncating phase).
/// * Its epoch is undefined (a pre-2.0 leader): `min(end offset, LEO)`.
/// * The follower does not know the leader's epoch: truncate to the end of its largest
///   epoch below it, not completed (KIP-279's multi-round fix for fast leader changes).
/// * The follower tracks no epoch that old: `min(end offset, LEO)`.
/// * Otherwise `min(leader's end offset, follower's end offset for that epoch, LEO)`.
pub fn offset_truncation_state(
    leader: EpochEndOffset,
    fetch_offset: i64,
    log_end_offset: i64,
    end_offset_for_epoch: impl Fn(i32) -> Option<(i32, i64)>,
) -> OffsetTruncationState {
    if leader.end_offset == UNKNOWN_OFFSET {
        return OffsetTruncationState {
            offset: fetch_offset,
            truncation_completed: true,
        };
    }
    if leader.epoch == UNDEFINED_EPOCH {
        return OffsetTruncationState {
            offset: leader.end_offset.min(log_end_offset),
            truncation_completed: true,
        };
    }
    match end_offset_for_epoch(leader.epoch) {
        Some((follower_epoch, follower_end)) if follower_epoch != leader.epoch => {
            OffsetTruncationState {
                offset: follower_end.min(log_end_offset),
                truncation_completed: false,
            }
        }
        Some((_, follower_end)) => OffsetTruncationState {
            offset: follower_end.min(leader.end_offset).min(log_end_offset),
            truncation_completed: true,
        },
        None => OffsetTruncationState {
            offset: leader.end_offset.min(log_end_offset),
            truncation_completed: true,
        },
    }
}

/// What to do after OFFSET_OUT_OF_RANGE (Kafka's `fetchOffsetAndTruncate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfRangeAction {
    /// The leader's log ends below the local LEO (an unclean election): truncate to it and
    /// fetch from there.
    TruncateTo(i64),
    /// The leader's log starts past the local LEO (retention or DeleteRecords removed what
    /// the follower misses): empty the log, start it there (`Log::truncate_fully_and_start_at`)
    /// and fetch from there.
    TruncateFullyAndStartAt(i64),
    /// Keep the log and fetch from its LEO again.
    FetchFrom(i64),
}

/// Kafka's `fetchOffsetAndTruncate`, given the leader's log end offset (ListOffsets LATEST
/// sent as a replica, which answers the LEO) and log start offset (ListOffsets EARLIEST),
/// and the local LEO.
pub fn out_of_range_action(
    leader_log_start_offset: i64,
    leader_log_end_offset: i64,
    log_end_offset: i64,
) -> OutOfRangeAction {
    if leader_log_end_offset < log_end_offset {
        OutOfRangeAction::TruncateTo(leader_log_end_offset)
    } else if leader_log_start_offset > log_end_offset {
        OutOfRangeAction::TruncateFullyAndStartAt(leader_log_start_offset)
    } else {
        OutOfRangeAction::FetchFrom(log_end_offset)
    }
}

/// The phase of a partition in the fetcher (Kafka's `ReplicaState`: `Truncating`,
/// `Fetching`, plus the fetcher's failed-partition set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchPhase {
    /// The log has no leader epoch: truncate to the high watermark before fetching
    /// ([`FollowerState::truncation_to_high_watermark`]).
    Truncating,
    /// Fetching.
    Fetching,
    /// Fenced by the leader for the current leader epoch: no fetching until the metadata
    /// log brings a new leader epoch (Kafka's `markPartitionFailed` via `onPartitionFenced`).
    Failed,
}

/// The per-partition fields of the next follower Fetch (`FetchRequest.PartitionData`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPartitionRequest {
    /// `FetchOffset`: the local LEO.
    pub fetch_offset: i64,
    /// `LastFetchedEpoch`: the local log's latest epoch (`None` = -1 on the wire).
    pub last_fetched_epoch: Option<i32>,
    /// `CurrentLeaderEpoch`.
    pub current_leader_epoch: i32,
    /// `LogStartOffset`: the local log start offset.
    pub log_start_offset: i64,
}

/// What to do about an error for the partition in a Fetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorAction {
    /// OFFSET_OUT_OF_RANGE: ask the leader for its log start and end offsets (ListOffsets
    /// EARLIEST and LATEST as a replica) and call
    /// [`FollowerState::on_offset_out_of_range`].
    ResolveOutOfRange,
    /// Retry after `replica.fetch.backoff.ms` (NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH,
    /// UNKNOWN_TOPIC_OR_PARTITION, a fencing for an older request, anything else).
    Backoff,
    /// FENCED_LEADER_EPOCH for the current leader epoch: the partition is failed until the
    /// metadata log brings a new leader epoch (the caller builds a new [`FollowerState`]).
    Failed,
}

/// A follower's fetch state for one partition (Kafka's `PartitionFetchState` in the
/// fetcher thread for the leader). Built again on every new leader epoch (Kafka's
/// `Partition.makeFollower` returns `isNewLeaderEpoch` and the ReplicaManager restarts the
/// fetcher for the partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    leader_id: i32,
    current_leader_epoch: i32,
    fetch_offset: i64,
    last_fetched_epoch: Option<i32>,
    phase: FetchPhase,
}

impl FollowerState {
    /// The partition starts following `leader_id` in `leader_epoch` (Kafka's
    /// `AbstractFetcherThread.addPartitions` with `initialFetchOffset`, truncation on fetch
    /// supported): a log with a leader epoch fetches from its LEO with that epoch as its
    /// last fetched epoch; a log without one is [`FetchPhase::Truncating`] to its high
    /// watermark.
    pub fn new(leader_id: i32, leader_epoch: i32, log: &FollowerLogView) -> FollowerState {
        let phase = if log.latest_epoch.is_some() {
            FetchPhase::Fetching
        } else {
            FetchPhase::Truncating
        };
        FollowerState {
            leader_id,
            current_leader_epoch: leader_epoch,
            fetch_offset: initial_fetch_offset(log),
            last_fetched_epoch: log.latest_epoch,
            phase,
        }
    }

    /// The leader followed.
    pub fn leader_id(&self) -> i32 {
        self.leader_id
    }

    /// The leader epoch followed (sent as `CurrentLeaderEpoch`).
    pub fn current_leader_epoch(&self) -> i32 {
        self.current_leader_epoch
    }

    /// The offset the next fetch starts at.
    pub fn fetch_offset(&self) -> i64 {
        self.fetch_offset
    }

    /// The last fetched epoch the next fetch carries.
    pub fn last_fetched_epoch(&self) -> Option<i32> {
        self.last_fetched_epoch
    }

    /// The phase.
    pub fn phase(&self) -> FetchPhase {
        self.phase
    }

    /// In the truncating phase, where to truncate before fetching (Kafka's
    /// `truncateToHighWatermark`: the initial fetch offset, i.e. the high watermark); then
    /// call [`FollowerState::on_truncated`].
    pub fn truncation_to_high_watermark(&self) -> Option<OffsetTruncationState> {
        (self.phase == FetchPhase::Truncating).then_some(OffsetTruncationState {
            offset: self.fetch_offset,
            truncation_completed: true,
        })
    }

    /// The next fetch's fields for this partition, `None` unless fetching from a leader
    /// (Kafka's `RemoteLeaderEndPoint.buildFetch`; a partition without a leader has no
    /// fetcher). `log_start_offset` is the local log start.
    pub fn next_fetch(&self, log_start_offset: i64) -> Option<FetchPartitionRequest> {
        (self.phase == FetchPhase::Fetching && self.leader_id != NO_LEADER).then_some(
            FetchPartitionRequest {
                fetch_offset: self.fetch_offset,
                last_fetched_epoch: self.last_fetched_epoch,
                current_leader_epoch: self.current_leader_epoch,
                log_start_offset,
            },
        )
    }

    /// Whether a response to `request` may be processed: Kafka only processes a partition's
    /// response if the partition is still fetching from the same offset (it may have been
    /// truncated or re-added while the fetch was in flight); the leader epoch must match
    /// too. Drop the response otherwise.
    pub fn is_current(&self, request: &FetchPartitionRequest) -> bool {
        self.phase == FetchPhase::Fetching
            && request.fetch_offset == self.fetch_offset
            && request.current_leader_epoch == self.current_leader_epoch
    }

    /// Records were appended (`Log::append_as_follower`, which must start exactly at the
    /// fetch offset) and the high watermark updated ([`follower_high_watermark`]): the next
    /// fetch starts at the new LEO with the new latest epoch.
    pub fn on_appended(&mut self, log: &FollowerLogView) {
        self.fetch_offset = log.log_end_offset;
        self.last_fetched_epoch = log.latest_epoch;
        self.phase = FetchPhase::Fetching;
    }

    /// A `DivergingEpoch` in the fetch response (truncation on fetch, KIP-320 / IBP 2.7):
    /// where to truncate ([`offset_truncation_state`]). Truncate the log, then call
    /// [`FollowerState::on_truncated`]; the next fetch carries the new latest epoch, so a
    /// not-completed truncation continues in the next round.
    pub fn on_diverging_epoch(
        &self,
        diverging: EpochEndOffset,
        log: &FollowerLogView,
        end_offset_for_epoch: impl Fn(i32) -> Option<(i32, i64)>,
    ) -> OffsetTruncationState {
        offset_truncation_state(
            diverging,
            self.fetch_offset,
            log.log_end_offset,
            end_offset_for_epoch,
        )
    }

    /// An OffsetForLeaderEpoch answer for the last fetched epoch (the pre-2.7 path, or a
    /// caller that prefers it): the same decision as [`FollowerState::on_diverging_epoch`].
    pub fn on_epoch_end_offset(
        &self,
        leader: EpochEndOffset,
        log: &FollowerLogView,
        end_offset_for_epoch: impl Fn(i32) -> Option<(i32, i64)>,
    ) -> OffsetTruncationState {
        self.on_diverging_epoch(leader, log, end_offset_for_epoch)
    }

    /// The log was truncated (or started over) as decided: fetch from its LEO with its
    /// latest epoch (Kafka's `updateFetchOffsetAndMaybeMarkTruncationComplete`).
    pub fn on_truncated(&mut self, log: &FollowerLogView) {
        self.on_appended(log);
    }

    /// OFFSET_OUT_OF_RANGE answered, and the leader's log start and end offsets fetched:
    /// see [`out_of_range_action`]. Apply it, then call [`FollowerState::on_truncated`].
    pub fn on_offset_out_of_range(
        &self,
        leader_log_start_offset: i64,
        leader_log_end_offset: i64,
        log: &FollowerLogView,
    ) -> OutOfRangeAction {
        out_of_range_action(
            leader_log_start_offset,
            leader_log_end_offset,
            log.log_end_offset,
        )
    }

    /// An error for the partition in the response to `request` (Kafka's
    /// `processFetchRequest` and `onPartitionFenced`). A fencing for the current leader
    /// epoch fails the partition.
    pub fn on_fetch_error(
        &mut self,
        request: &FetchPartitionRequest,
        error: ErrorCode,
    ) -> FetchErrorAction {
        match error {
            ErrorCode::OffsetOutOfRange => FetchErrorAction::ResolveOutOfRange,
            ErrorCode::FencedLeaderEpoch
                if request.current_leader_epoch == self.current_leader_epoch =>
            {
                self.phase = FetchPhase::Failed;
                FetchErrorAction::Failed
            }
            _ => FetchErrorAction::Backoff,
        }
    }
}
