//! Kafka's ISR replication decisions for one partition, as pure, deterministic state
//! machines: no I/O, no clock (the caller passes `now_ms`), no async, no storage access
//! (the caller passes the log's offsets as values and its epoch lookup as a closure). The
//! broker's replica manager owns the I/O and calls these. A straight port of Apache Kafka
//! 4.x: `core/src/main/scala/kafka/cluster/Partition.scala` and `Replica.scala` (the
//! leader) and `core/src/main/scala/kafka/server/AbstractFetcherThread.scala` (the
//! follower), in the style of raft-rs.
//!
//! # The leader: [`LeaderState`]
//!
//! Built when the metadata log makes the local broker leader of a partition
//! ([`LeaderState::new`], Kafka's `Partition.makeLeader`). It keeps, per follower, Kafka's
//! `ReplicaState` ([`FollowerProgress`]: log start and end offsets from its latest fetch,
//! `lastFetchLeaderLogEndOffset`, `lastFetchTimeMs`, `lastCaughtUpTimeMs`, broker epoch) and
//! the ISR state: committed, or one AlterPartition change in flight (Kafka's
//! `CommittedPartitionState`, `PendingExpandIsr`, `PendingShrinkIsr`).
//!
//! * **Becoming leader** (`makeLeader`): the leader epoch starts at the log end offset (the
//!   *epoch start offset*). ISR followers count as caught up now, others never; every
//!   follower's log end offset is unknown until it fetches (`Replica.resetReplicaState`).
//! * **Follower fetch** ([`LeaderState::on_follower_fetch`], `Partition.fetchRecords` →
//!   `readRecords` → `updateFollowerFetchState`): the current leader epoch must match
//!   (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH), the replica must be assigned
//!   (`followerReplicaOrThrow`: UNKNOWN_LEADER_EPOCH, or NOT_LEADER_OR_FOLLOWER without an
//!   epoch). With a last fetched epoch `E`, the leader looks up `end_offset_for(E) = (E', O)`:
//!   undefined or a fetch offset below the log start is OFFSET_OUT_OF_RANGE; `E' < E` or
//!   `O < fetch offset` answers `DivergingEpoch(E', O)` with no records and no state update.
//!   Otherwise the follower's state is updated (`Replica.updateFetchStateOrThrow`; a broker
//!   epoch older than the registered one is NOT_LEADER_OR_FOLLOWER, KIP-903):
//!   `lastCaughtUpTimeMs` becomes now if the fetch offset reached the leader's LEO, or the
//!   previous fetch time if it reached the LEO of the previous fetch. Then
//!   `maybeExpandIsr` and, if the follower's LEO moved, `maybeIncrementLeaderHW`.
//! * **ISR expand** (`maybeExpandIsr`): no change in flight, the follower not in the ISR,
//!   eligible (`isReplicaIsrEligible`: not fenced, not in controlled shutdown, its fetch's
//!   broker epoch `-1` or the registered one) and its LEO at or past both the high watermark
//!   and the epoch start offset (so a follower that missed committed data of this epoch
//!   cannot join and later lead without it). It becomes a pending change at once and counts
//!   in the *maximal ISR*.
//! * **ISR shrink** (`getOutOfSyncReplicas` + `maybeShrinkIsr`, run by the caller every
//!   `replica.lag.time.max.ms / 2`): ISR followers not caught up (`isCaughtUp`: at the
//!   leader's LEO or caught up within `replica.lag.time.max.ms`) leave; never the leader.
//!   While the shrink is in flight the maximal ISR is still the old one (KIP-497: the
//!   stricter set). Kafka 3.6+ keeps the leader epoch on a shrink (KAFKA-15021): only the
//!   controller's partition epoch moves.
//! * **High watermark** (`maybeIncrementLeaderHW`): nothing moves while the committed ISR is
//!   under the effective min ISR (strict min ISR, KIP-966 part 1; `effectiveMinIsr =
//!   min(min.insync.replicas, replication factor)`); otherwise the smallest LEO of the
//!   leader, the maximal ISR and the followers that are caught up and eligible (so a
//!   follower about to join is not overtaken). It only moves forward.
//! * **acks=all** (`appendRecordsToLeader`, `checkEnoughReplicasReachOffset`):
//!   [`LeaderState::check_min_isr_before_append`] refuses the append (NOT_ENOUGH_REPLICAS)
//!   when the committed ISR is under the effective min ISR; a parked produce completes when
//!   the high watermark reaches its end ([`LeaderState::check_enough_replicas`]), with
//!   NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR fell under the effective min ISR.
//! * **AlterPartition answers** (`handleAlterPartitionUpdate`, `handleAlterPartitionError`):
//!   a success for the same leader epoch and a partition epoch not older commits the
//!   answer's ISR and partition epoch; OPERATION_NOT_ATTEMPTED and INELIGIBLE_REPLICA revert
//!   to the last committed state; UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID,
//!   FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INVALID_REQUEST and NEW_LEADER_ELECTED
//!   (and a success for another leader epoch or an older partition epoch) keep the change
//!   pending until the metadata log brings a newer state; anything else is retried.
//! * **Metadata** ([`LeaderState::on_metadata`], `makeLeader` again): a state with an older
//!   partition epoch is skipped; a newer one replaces assignment and ISR (and any change in
//!   flight: the controller moved past the epoch it was based on). A new leader epoch for
//!   the same leader resets the followers' caught-up times and starts the epoch at the
//!   current LEO; another leader means the caller drops the state and becomes a follower.
//! * **ListOffsets** ([`LeaderState::check_offsets_available`],
//!   `fetchOffsetForTimestamp`): OFFSET_NOT_AVAILABLE while the high watermark is below the
//!   epoch start offset.
//!
//! ## Where this port differs from Kafka
//!
//! * A metadata state with the **same** partition epoch keeps an AlterPartition change in
//!   flight. Kafka's `makeLeader` accepts equal epochs and resets `partitionState`
//!   (KAFKA-13790), which opens a window: the AlterPartition answer for epoch `p` overtakes
//!   the metadata log, the leader proposes an expansion based on `p`, then the replayed
//!   record of `p` drops that proposal from the maximal ISR while the controller still
//!   applies it; the high watermark can then pass the joining replica's LEO and acks=all
//!   produces complete for records that an ISR member lacks (the simulation finds it in a
//!   few hundred seeds). A state of the same partition epoch is the one the change was
//!   based on, so keeping the change is safe; a newer state still replaces it.
//!
//! # The follower: [`FollowerState`] and free functions
//!
//! * **Start** ([`FollowerState::new`], `addPartitions` with `ReplicaManager.initialFetchOffset`):
//!   a log with a leader epoch fetches from its LEO (the leader detects divergence); a log
//!   without one first truncates to its high watermark.
//! * **Fetch fields** ([`FollowerState::next_fetch`]): fetch offset (= local LEO), last
//!   fetched epoch (= local latest epoch), current leader epoch, local log start offset.
//! * **Truncation** ([`offset_truncation_state`], `getOffsetTruncationState`, for a
//!   `DivergingEpoch` or an OffsetForLeaderEpoch answer `(E, O)`): `O` undefined → the fetch
//!   offset; the follower does not know `E` → the end of its largest epoch below `E`, and the
//!   next round goes on (KIP-279); else `min(O, follower's end of E, LEO)`.
//! * **OFFSET_OUT_OF_RANGE** ([`out_of_range_action`], `fetchOffsetAndTruncate`): the
//!   leader's LEO below the local LEO → truncate to it (unclean election); the leader's log
//!   start past the local LEO → start over there; else fetch from the LEO again.
//! * **High watermark** ([`follower_high_watermark`], `UnifiedLog.maybeUpdateHighWatermark`):
//!   `min(leader HW, local LEO)`, not below the local log start.
//! * **Append** ([`follower_append_restart_offset`],
//!   `Partition.appendRecordsToFollowerOrFutureReplica`): an answer must start at the local
//!   LEO, except that an empty log whose start falls inside the leader's first batch starts
//!   over at that batch.
//!
//! # What the caller does, in order
//!
//! Leader (the broker's replica manager, per partition it leads):
//! 1. On becoming leader in epoch `e`: `log.assign_epoch_start(e, log_end_offset)`, then
//!    [`LeaderState::new`], then [`LeaderState::maybe_increment_high_watermark`] and store
//!    any new high watermark (`Log::maybe_increment_high_watermark`).
//! 2. Produce: for acks=all, [`LeaderState::check_min_isr_before_append`] first; append
//!    (stamping the leader epoch); then [`LeaderState::on_leader_append`] with the log's new
//!    offsets, store the high watermark it returns; park acks=all requests until
//!    [`LeaderState::check_enough_replicas`] answers (re-check after every high watermark
//!    change and on the produce timeout → REQUEST_TIMED_OUT).
//! 3. Follower fetch: read the log's offsets into a [`LeaderLogView`] first, call
//!    [`LeaderState::on_follower_fetch`], then read records from the fetch offset and answer
//!    with the view's high watermark, log start and LEO (or the `DivergingEpoch`, or the
//!    error). Store any new high watermark, complete delayed produces, and send any
//!    AlterPartition request.
//! 4. Every `replica.lag.time.max.ms / 2`: [`LeaderState::maybe_shrink_isr`], send the request.
//! 5. AlterPartition answers: [`LeaderState::on_alter_partition_response`] with the request
//!    sent; resend on [`AlterPartitionOutcome::Retry`]. There is no separate "sent" step:
//!    as in Kafka's `prepareIsrExpand` / `prepareIsrShrink`, a change is pending (and
//!    counts in the maximal ISR) from the moment the request is returned. After a lost
//!    request (timeout, disconnection) resend it only while
//!    [`LeaderState::pending_alter_partition`] still returns it, and never over a newer
//!    one queued for the partition (Kafka's `AlterPartitionManager` puts failed items back
//!    with `putIfAbsent`). The transport matters, as in Kafka: keep AlterPartition on one
//!    ordered connection with one request in flight, and once a request timed out (Kafka's
//!    `NetworkClient` then closes the connection) never hand its answer over. Reverting on
//!    INELIGIBLE_REPLICA / OPERATION_NOT_ATTEMPTED means "this request was not applied",
//!    which is only true of the last copy sent: the simulation shows a late rejection of a
//!    first copy reverting a proposal that the retry got committed, and a stale copy
//!    overtaking a retry and committing after the rejection, both ending with acknowledged
//!    records missing from an ISR member.
//! 6. Metadata log changes to the partition: [`LeaderState::on_metadata`]; on
//!    [`MetadataOutcome::NewLeaderEpoch`] record the epoch start in the log, on
//!    [`MetadataOutcome::NotLeader`] fail the parked produces (NOT_LEADER_OR_FOLLOWER) and
//!    become a follower.
//!
//! Follower (the fetcher for the leader's broker):
//! 1. On a new leader epoch (`makeFollower`): [`FollowerState::new`]; if it is truncating,
//!    `log.truncate_to(offset)` from [`FollowerState::truncation_to_high_watermark`], then
//!    [`FollowerState::on_truncated`].
//! 2. Send [`FollowerState::next_fetch`] (with the broker's id and epoch). Process a
//!    response only if [`FollowerState::is_current`]:
//!    records → `Log::append_as_follower`, high watermark ← [`follower_high_watermark`],
//!    log start ← the leader's when at or below the high watermark, then
//!    [`FollowerState::on_appended`]; a `DivergingEpoch` →
//!    [`FollowerState::on_diverging_epoch`], `Log::truncate_to`, [`FollowerState::on_truncated`];
//!    an error → [`FollowerState::on_fetch_error`] (OFFSET_OUT_OF_RANGE: ListOffsets EARLIEST
//!    and LATEST as a replica, [`FollowerState::on_offset_out_of_range`], apply, then
//!    [`FollowerState::on_truncated`]).
//!
//! The crate's tests hold a deterministic simulation (`tests/sim`) of replicas, a
//! controller and a lossy network that checks Kafka's acks=all guarantees over many seeds,
//! and ports Kafka's epoch-driven replication acceptance tests.

#![deny(missing_docs)]

mod follower;
mod leader;
mod types;

pub use follower::{
    follower_append_restart_offset, follower_high_watermark, initial_fetch_offset,
    offset_truncation_state, out_of_range_action, FetchErrorAction, FetchPartitionRequest,
    FetchPhase, FollowerState, OffsetTruncationState, OutOfRangeAction,
};
pub use gregor_protocol::ErrorCode;
pub use leader::{
    AlterPartitionOutcome, FollowerFetch, FollowerFetchOutcome, FollowerProgress, LeaderConfig,
    LeaderState, MetadataOutcome, DEFAULT_REPLICA_LAG_TIME_MAX_MS,
};
pub use types::{
    AlterPartitionRequest, BrokerEligibility, BrokerState, EpochEndOffset, FollowerLogView,
    IsrChange, LeaderAndIsr, LeaderLogView, LeaderRecoveryState, PartitionState, NO_BROKER_EPOCH,
    NO_LEADER, UNDEFINED_EPOCH, UNKNOWN_OFFSET,
};
