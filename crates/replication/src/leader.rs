//! The leader's side: Kafka's `Partition` (leader paths) and `Replica`.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::ErrorCode;

use crate::types::{
    AlterPartitionRequest, BrokerEligibility, BrokerState, EpochEndOffset, IsrChange, LeaderAndIsr,
    LeaderLogView, LeaderRecoveryState, PartitionState, NO_BROKER_EPOCH, UNDEFINED_EPOCH,
    UNKNOWN_OFFSET,
};

/// Default `replica.lag.time.max.ms`.
pub const DEFAULT_REPLICA_LAG_TIME_MAX_MS: i64 = 30_000;

/// The leader's settings for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The local broker id (`node.id`).
    pub broker_id: i32,
    /// The local broker's epoch (its registration), sent for itself in AlterPartition.
    pub broker_epoch: i64,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
}

impl LeaderConfig {
    /// Kafka's defaults: `min.insync.replicas=1`, `replica.lag.time.max.ms=30000`.
    pub const fn new(broker_id: i32, broker_epoch: i64) -> LeaderConfig {
        LeaderConfig {
            broker_id,
            broker_epoch,
            min_insync_replicas: 1,
            replica_lag_time_max_ms: DEFAULT_REPLICA_LAG_TIME_MAX_MS,
        }
    }
}

/// What the leader knows of one follower (Kafka's `ReplicaState`): exposed for
/// DescribeQuorum-like views, `kafka-topics --describe` style tools and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's broker id.
    pub replica_id: i32,
    /// Its log start offset from its latest fetch ([`UNKNOWN_OFFSET`] before one).
    pub log_start_offset: i64,
    /// Its log end offset: the fetch offset of its latest fetch ([`UNKNOWN_OFFSET`] before
    /// one).
    pub log_end_offset: i64,
    /// The leader's LEO when the latest fetch was served (`lastFetchLeaderLogEndOffset`).
    pub last_fetch_leader_log_end_offset: i64,
    /// When the latest fetch was served (0 if none).
    pub last_fetch_time_ms: i64,
    /// The last time the follower had fetched up to the leader's LEO of that time
    /// (`lastCaughtUpTimeMs`; 0 if never).
    pub last_caught_up_time_ms: i64,
    /// The broker epoch of its latest fetch, `None` before one.
    pub broker_epoch: Option<i64>,
}

impl FollowerProgress {
    /// Kafka's `ReplicaState.Empty`.
    fn empty(replica_id: i32) -> FollowerProgress {
        FollowerProgress {
            replica_id,
            log_start_offset: UNKNOWN_OFFSET,
            log_end_offset: UNKNOWN_OFFSET,
            last_fetch_leader_log_end_offset: 0,
            last_fetch_time_ms: 0,
            last_caught_up_time_ms: 0,
            broker_epoch: None,
        }
    }

    /// Kafka's `ReplicaState.isCaughtUp`: at the leader's LEO, or caught up within the
    /// last `max_lag_ms`.
    pub fn is_caught_up(&self, leader_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        leader_end_offset == self.log_end_offset
            || now_ms - self.last_caught_up_time_ms <= max_lag_ms
    }

    /// Kafka's `Replica.resetReplicaState` (on a new leader epoch).
    fn reset(&mut self, now_ms: i64, leader_end_offset: i64, is_new_leader: bool, in_isr: bool) {
        let last_caught_up_time_ms = if in_isr { now_ms } else { 0 };
        if is_new_leader {
            *self = FollowerProgress {
                replica_id: self.replica_id,
                log_start_offset: UNKNOWN_OFFSET,
                log_end_offset: UNKNOWN_OFFSET,
                last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
                last_fetch_time_ms: 0,
                last_caught_up_time_ms,
                broker_epoch: None,
            };
        } else {
            self.last_fetch_leader_log_end_offset = leader_end_offset;
            self.last_fetch_time_ms = if in_isr { now_ms } else { 0 };
            self.last_caught_up_time_ms = last_caught_up_time_ms;
        }
    }
}

/// One follower fetch of this partition (`FetchRequest` with a `ReplicaId`/`ReplicaState`
/// of a broker, one partition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerFetch {
    /// The follower's broker id (`ReplicaState.ReplicaId`).
    pub replica_id: i32,
    /// Its broker epoch (`ReplicaState.ReplicaEpoch`, v15+), [`NO_BROKER_EPOCH`] if absent.
    pub broker_epoch: i64,
    /// `CurrentLeaderEpoch` (v9+), `None` if absent (-1 on the wire).
    pub current_leader_epoch: Option<i32>,
    /// `FetchOffset`: the follower's log end offset.
    pub fetch_offset: i64,
    /// `LastFetchedEpoch` (v12+), `None` if absent (-1 on the wire).
    pub last_fetched_epoch: Option<i32>,
    /// `LogStartOffset`: the follower's log start offset.
    pub log_start_offset: i64,
}

/// The result of a follower fetch that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerFetchOutcome {
    /// The follower's log diverges from the leader's: answer no records and this
    /// `DivergingEpoch`. The follower's state was not updated.
    Diverging(EpochEndOffset),
    /// Read from the fetch offset (up to the LEO) and answer with the high watermark, log
    /// start offset and LEO of the [`LeaderLogView`] given; the follower's state was updated.
    Read {
        /// An ISR expansion to send to the controller (the state is already pending).
        alter_partition: Option<AlterPartitionRequest>,
        /// A new high watermark to store (`Log::maybe_increment_high_watermark`), after
        /// which delayed produces (acks=all) may complete.
        high_watermark: Option<i64>,
    },
}

/// What an AlterPartition answer did (Kafka's `Partition.submitAlterPartition` callback:
/// `handleAlterPartitionUpdate` and `handleAlterPartitionError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterPartitionOutcome {
    /// The answer is not for the change in flight (the state moved on): ignored.
    Ignored,
    /// The change (or the controller's state) is committed: the ISR and partition epoch
    /// are the answer's.
    Committed {
        /// A new high watermark to store, if it advanced.
        high_watermark: Option<i64>,
    },
    /// The controller said the change was not applied (OPERATION_NOT_ATTEMPTED,
    /// INELIGIBLE_REPLICA): back to the last committed state; a later fetch or ISR check
    /// may propose again.
    Reverted,
    /// The change stays in flight until the metadata log brings a newer partition state
    /// ([`LeaderState::on_metadata`]): a success for another leader epoch or an older
    /// partition epoch, or UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID,
    /// FENCED_LEADER_EPOCH, INVALID_UPDATE_VERSION, INVALID_REQUEST, NEW_LEADER_ELECTED.
    AwaitingMetadata,
    /// Any other error: send the same request again.
    Retry(AlterPartitionRequest),
}

/// What a partition state from the metadata log did to the leader
/// ([`LeaderState::on_metadata`], Kafka's `Partition.makeLeader` on a broker that already
/// leads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataOutcome {
    /// Its partition epoch is older than the one known: skipped.
    Stale,
    /// Another broker leads now (or none): drop this state and become a follower.
    NotLeader,
    /// Assignment and ISR updated (any change in flight is dropped); same leader epoch.
    Updated {
        /// A new high watermark to store, if it advanced.
        high_watermark: Option<i64>,
    },
    /// A new leader epoch with the local broker still leader: the caller must first
    /// record `(leader epoch, epoch_start_offset)` in the log's epoch cache
    /// (`Log::assign_epoch_start`); followers' caught-up times were reset.
    NewLeaderEpoch {
        /// The leader's LEO when the epoch started.
        epoch_start_offset: i64,
        /// A new high watermark to store, if it advanced.
        high_watermark: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CommittedIsr {
    isr: BTreeSet<i32>,
    leader_recovery_state: LeaderRecoveryState,
}

/// Kafka's `PartitionState` hierarchy: `CommittedPartitionState`, or a
/// `PendingPartitionChange` (`PendingExpandIsr`, `PendingShrinkIsr`) in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IsrState {
    Committed(CommittedIsr),
    Pending {
        sent: AlterPartitionRequest,
        last_committed: CommittedIsr,
    },
}

/// The leader's replication state for one partition this broker leads (Kafka's
/// `Partition` on the leader, with one `Replica` per follower). See the crate docs for
/// the calling protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderState {
    config: LeaderConfig,
    leader_epoch: i32,
    partition_epoch: i32,
    epoch_start_offset: i64,
    replicas: Vec<i32>,
    adding_replicas: Vec<i32>,
    removing_replicas: Vec<i32>,
    followers: BTreeMap<i32, FollowerProgress>,
    isr_state: IsrState,
}

impl LeaderState {
    /// Kafka's `Partition.makeLeader` on a broker that did not lead: the committed `state`
    /// (whose leader is `config.broker_id`), the leader's log and the current time. The
    /// leader epoch starts at the log end offset ([`LeaderState::epoch_start_offset`]):
    /// the caller records `(state.leader_epoch, log.log_end_offset)` in the epoch cache
    /// (`Log::assign_epoch_start`) and then calls
    /// [`LeaderState::maybe_increment_high_watermark`] (the ISR may be `{leader}`).
    ///
    /// Followers start with unknown log end offsets; ISR members are considered caught up
    /// now, the others never (`Replica.resetReplicaState`). A RECOVERING partition is
    /// treated as RECOVERED from here on, as Kafka's leader does: its next AlterPartition
    /// says RECOVERED.
    pub fn new(
        config: LeaderConfig,
        state: &PartitionState,
        log: LeaderLogView,
        now_ms: i64,
    ) -> LeaderState {
        debug_assert_eq!(state.leader, config.broker_id, "not the leader");
        let mut leader = LeaderState {
            config,
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            epoch_start_offset: log.log_end_offset,
            replicas: Vec::new(),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
            followers: BTreeMap::new(),
            isr_state: IsrState::Committed(CommittedIsr {
                isr: BTreeSet::new(),
                leader_recovery_state: LeaderRecoveryState::Recovered,
            }),
        };
        leader.update_assignment_and_isr(state);
        let isr = leader.isr_set().clone();
        for f in leader.followers.values_mut() {
            f.reset(
                now_ms,
                log.log_end_offset,
                true,
                isr.contains(&f.replica_id),
            );
        }
        leader
    }

    // ------------------------------------------------------------------ accessors

    /// The settings.
    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    /// Changes `min.insync.replicas` (a dynamic topic config change).
    pub fn set_min_insync_replicas(&mut self, min_insync_replicas: i32) {
        self.config.min_insync_replicas = min_insync_replicas;
    }

    /// The leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The partition epoch of the committed state.
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The leader's LEO when its leader epoch started (Kafka's `leaderEpochStartOffsetOpt`):
    /// a follower joins the ISR only once it has fetched up to here, and ListOffsets answers
    /// OFFSET_NOT_AVAILABLE for the latest offset while the high watermark is below it.
    pub fn epoch_start_offset(&self) -> i64 {
        self.epoch_start_offset
    }

    /// The assigned replicas, in preference order.
    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// The committed ISR, in ascending order (Kafka's `partitionState.isr`: while a change
    /// is in flight, the last committed one).
    pub fn isr(&self) -> Vec<i32> {
        self.isr_set().iter().copied().collect()
    }

    /// The maximal ISR, in ascending order: the committed ISR plus a follower whose
    /// expansion is in flight (a shrink in flight changes nothing until committed). The high
    /// watermark waits for all of them (KIP-497).
    pub fn maximal_isr(&self) -> Vec<i32> {
        self.maximal_isr_set().into_iter().collect()
    }

    /// The recovery state (RECOVERED while a change is in flight, as Kafka's
    /// `PendingPartitionChange`).
    pub fn leader_recovery_state(&self) -> LeaderRecoveryState {
        match &self.isr_state {
            IsrState::Committed(c) => c.leader_recovery_state,
            IsrState::Pending { .. } => LeaderRecoveryState::Recovered,
        }
    }

    /// The AlterPartition change in flight, if any (Kafka's `partitionState.isInflight`):
    /// at most one at a time.
    pub fn pending_alter_partition(&self) -> Option<&AlterPartitionRequest> {
        match &self.isr_state {
            IsrState::Committed(_) => None,
            IsrState::Pending { sent, .. } => Some(sent),
        }
    }

    /// The followers' progress, by ascending broker id.
    pub fn followers(&self) -> impl Iterator<Item = &FollowerProgress> + '_ {
        self.followers.values()
    }

    /// One follower's progress.
    pub fn follower(&self, replica_id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&replica_id)
    }

    /// Kafka's `effectiveMinIsr`: `min(min.insync.replicas, replication factor)`, the
    /// replication factor counting every assigned replica (KAFKA-18762: a topic with
    /// `min.insync.replicas` above its replication factor still accepts acks=all).
    pub fn effective_min_isr(&self) -> usize {
        let min_isr = usize::try_from(self.config.min_insync_replicas.max(0)).unwrap_or(0);
        min_isr.min(self.followers.len() + 1)
    }

    /// The `UnderReplicated` metric: the ISR is smaller than the replication factor (for a
    /// reassignment, the replicas not being added).
    pub fn is_under_replicated(&self) -> bool {
        let rf = self
            .replicas
            .iter()
            .filter(|r| !self.adding_replicas.contains(r))
            .count();
        rf > self.isr_set().len()
    }

    /// The `UnderMinIsr` metric: the committed ISR is smaller than the effective min ISR
    /// (then the high watermark does not move and acks=all appends are refused).
    pub fn is_under_min_isr(&self) -> bool {
        self.isr_set().len() < self.effective_min_isr()
    }

    /// The `AtMinIsr` metric.
    pub fn is_at_min_isr(&self) -> bool {
        self.isr_set().len() == self.effective_min_isr()
    }

    /// Kafka's `lowWatermarkIfLeader` (DeleteRecords): the smallest log start offset of the
    /// leader and of the followers on live brokers (`UNKNOWN_OFFSET` counts for a live
    /// follower that has not fetched yet).
    pub fn low_watermark(
        &self,
        leader_log_start_offset: i64,
        is_alive: impl Fn(i32) -> bool,
    ) -> i64 {
        self.followers
            .values()
            .filter(|f| is_alive(f.replica_id))
            .map(|f| f.log_start_offset)
            .fold(leader_log_start_offset, i64::min)
    }

    // ------------------------------------------------------------------ fetches

    /// A follower's fetch of this partition (Kafka's `Partition.fetchRecords` with
    /// `updateFetchState`, then `updateFollowerFetchState`, `maybeExpandIsr` and
    /// `maybeIncrementLeaderHW`). `log` is read before serving the fetch;
    /// `end_offset_for_epoch` is the leader log's epoch lookup (`Log::end_offset_for_epoch`);
    /// `brokers` answers from the local metadata cache.
    ///
    /// Errors, in Kafka's order:
    /// * FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH: `current_leader_epoch` older / newer
    ///   than the leader's;
    /// * UNKNOWN_LEADER_EPOCH (with a current leader epoch) or NOT_LEADER_OR_FOLLOWER
    ///   (without): the replica is not assigned (`followerReplicaOrThrow`);
    /// * OFFSET_OUT_OF_RANGE: the last fetched epoch's end is unknown to the leader, or the
    ///   fetch offset is below the log start offset or past the LEO;
    /// * NOT_LEADER_OR_FOLLOWER: the fetch's broker epoch is older than the registered one
    ///   (KIP-903, `Replica.updateFetchStateOrThrow`).
    pub fn on_follower_fetch(
        &mut self,
        fetch: &FollowerFetch,
        now_ms: i64,
        log: LeaderLogView,
        end_offset_for_epoch: impl Fn(i32) -> Option<(i32, i64)>,
        brokers: impl Fn(i32) -> BrokerEligibility,
    ) -> Result<FollowerFetchOutcome, ErrorCode> {
        // localLogWithEpochOrThrow.
        if let Some(epoch) = fetch.current_leader_epoch {
            if epoch < self.leader_epoch {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
            if epoch > self.leader_epoch {
                return Err(ErrorCode::UnknownLeaderEpoch);
            }
        }
        // followerReplicaOrThrow.
        if !self.followers.contains_key(&fetch.replica_id) {
            return Err(if fetch.current_leader_epoch.is_some() {
                ErrorCode::UnknownLeaderEpoch
            } else {
                ErrorCode::NotLeaderOrFollower
            });
        }
        // readRecords: the divergence check.
        if let Some(fetch_epoch) = fetch.last_fetched_epoch {
            let end = EpochEndOffset::from_lookup(end_offset_for_epoch(fetch_epoch));
            if end.end_offset == UNKNOWN_OFFSET || end.epoch == UNDEFINED_EPOCH {
                return Err(ErrorCode::OffsetOutOfRange);
            }
            if fetch.fetch_offset < log.log_start_offset {
                return Err(ErrorCode::OffsetOutOfRange);
            }
            if end.epoch < fetch_epoch || end.end_offset < fetch.fetch_offset {
                return Ok(FollowerFetchOutcome::Diverging(end));
            }
        }
        // The read itself (`UnifiedLog.read` with FetchIsolation.LOG_END).
        if fetch.fetch_offset < log.log_start_offset || fetch.fetch_offset > log.log_end_offset {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        // updateFollowerFetchState.
        let cached_epoch = brokers(fetch.replica_id).alive_epoch();
        let follower = self
            .followers
            .get_mut(&fetch.replica_id)
            .ok_or(ErrorCode::NotLeaderOrFollower)?;
        if fetch.broker_epoch != NO_BROKER_EPOCH
            && cached_epoch.is_some_and(|c| c > fetch.broker_epoch)
        {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        let previous_end_offset = follower.log_end_offset;
        let last_caught_up_time_ms = if fetch.fetch_offset >= log.log_end_offset {
            follower.last_caught_up_time_ms.max(now_ms)
        } else if fetch.fetch_offset >= follower.last_fetch_leader_log_end_offset {
            follower
                .last_caught_up_time_ms
                .max(follower.last_fetch_time_ms)
        } else {
            follower.last_caught_up_time_ms
        };
        *follower = FollowerProgress {
            replica_id: fetch.replica_id,
            log_start_offset: fetch.log_start_offset,
            log_end_offset: fetch.fetch_offset,
            last_fetch_leader_log_end_offset: log
                .log_end_offset
                .max(follower.last_fetch_leader_log_end_offset),
            last_fetch_time_ms: now_ms,
            last_caught_up_time_ms,
            broker_epoch: Some(fetch.broker_epoch),
        };
        let alter_partition = self.maybe_expand_isr(fetch.replica_id, log, &brokers);
        let high_watermark = if previous_end_offset != fetch.fetch_offset {
            self.maybe_increment_high_watermark(log, now_ms, &brokers)
        } else {
            None
        };
        Ok(FollowerFetchOutcome::Read {
            alter_partition,
            high_watermark,
        })
    }

    /// Kafka's `maybeExpandIsr`: a follower joins (as a pending change) if no change is in
    /// flight, it is not in the ISR, it is eligible, and it has caught up to the high
    /// watermark and into the current leader epoch.
    fn maybe_expand_isr(
        &mut self,
        replica_id: i32,
        log: LeaderLogView,
        brokers: &impl Fn(i32) -> BrokerEligibility,
    ) -> Option<AlterPartitionRequest> {
        let IsrState::Committed(committed) = &self.isr_state else {
            return None;
        };
        if committed.isr.contains(&replica_id) || !self.is_replica_isr_eligible(replica_id, brokers)
        {
            return None;
        }
        let end = self.followers.get(&replica_id)?.log_end_offset;
        if end < log.high_watermark || end < self.epoch_start_offset {
            return None;
        }
        let mut isr = committed.isr.clone();
        isr.insert(replica_id);
        Some(self.prepare_change(IsrChange::Expand { replica_id }, isr))
    }

    /// Kafka's `isReplicaIsrEligible` (KRaft): the broker is not fenced, not in controlled
    /// shutdown, and the broker epoch of its latest fetch is `-1` or the registered one.
    fn is_replica_isr_eligible(
        &self,
        replica_id: i32,
        brokers: &impl Fn(i32) -> BrokerEligibility,
    ) -> bool {
        let Some(follower) = self.followers.get(&replica_id) else {
            return false;
        };
        let broker = brokers(replica_id);
        let cached = broker.alive_epoch();
        !broker.fenced
            && !broker.in_controlled_shutdown
            && match (follower.broker_epoch, cached) {
                (Some(stored), Some(cached)) => stored == NO_BROKER_EPOCH || stored == cached,
                _ => false,
            }
    }

    /// Kafka's `maybeIncrementLeaderHW`: unless the ISR is under the effective min ISR
    /// (strict min ISR, KIP-966), the high watermark becomes the smallest LEO of the leader,
    /// the maximal ISR, and the followers that are caught up and eligible (so a follower
    /// about to join is not left behind). Returns the new high watermark if it is above
    /// `log.high_watermark`. Call it after [`LeaderState::new`] and whenever the leader's
    /// LEO, the ISR or `min.insync.replicas` changed outside this state machine.
    pub fn maybe_increment_high_watermark(
        &self,
        log: LeaderLogView,
        now_ms: i64,
        brokers: impl Fn(i32) -> BrokerEligibility,
    ) -> Option<i64> {
        if self.is_under_min_isr() {
            return None;
        }
        let leader_end = log.log_end_offset;
        let maximal = self.maximal_isr_set();
        let mut new_hw = leader_end;
        for f in self.followers.values() {
            if f.log_end_offset < new_hw
                && (maximal.contains(&f.replica_id)
                    || (f.is_caught_up(leader_end, now_ms, self.config.replica_lag_time_max_ms)
                        && self.is_replica_isr_eligible(f.replica_id, &brokers)))
            {
                new_hw = f.log_end_offset;
            }
        }
        (new_hw > log.high_watermark).then_some(new_hw)
    }

    /// A producer append to the leader's log succeeded (Kafka's `appendRecordsToLeader`
    /// ends with `maybeIncrementLeaderHW`, which moves the high watermark when the ISR is
    /// `{leader}` or the followers are already past it). `log` is read after the append.
    pub fn on_leader_append(
        &self,
        log: LeaderLogView,
        now_ms: i64,
        brokers: impl Fn(i32) -> BrokerEligibility,
    ) -> Option<i64> {
        self.maybe_increment_high_watermark(log, now_ms, brokers)
    }

    // ------------------------------------------------------------------ acks=all

    /// Kafka's check before an acks=all append (`appendRecordsToLeader`): NOT_ENOUGH_REPLICAS
    /// if the committed ISR is smaller than the effective min ISR; nothing is written then.
    /// Not for acks=0/1.
    pub fn check_min_isr_before_append(&self) -> Result<(), ErrorCode> {
        if self.is_under_min_isr() {
            Err(ErrorCode::NotEnoughReplicas)
        } else {
            Ok(())
        }
    }

    /// Kafka's `checkEnoughReplicasReachOffset` for a delayed acks=all produce whose last
    /// offset is `required_offset - 1`, given the log's high watermark `hw`: `None` while
    /// the high watermark is below `required_offset` (keep waiting), then `Some(NONE)`, or
    /// `Some(NOT_ENOUGH_REPLICAS_AFTER_APPEND)` if the maximal ISR has shrunk below the
    /// effective min ISR meanwhile (the records are in the log all the same).
    pub fn check_enough_replicas(&self, required_offset: i64, hw: i64) -> Option<ErrorCode> {
        if hw < required_offset {
            return None;
        }
        if self.effective_min_isr() <= self.maximal_isr_set().len() {
            Some(ErrorCode::None)
        } else {
            Some(ErrorCode::NotEnoughReplicasAfterAppend)
        }
    }

    /// Kafka's `Partition.fetchOffsetForTimestamp` check for client ListOffsets (with an
    /// isolation level): OFFSET_NOT_AVAILABLE while the high watermark `hw` is below the
    /// epoch start offset (a new leader whose high watermark has not caught up with what the
    /// previous leader may have exposed), for the LATEST offset and for timestamp lookups.
    pub fn check_offsets_available(&self, hw: i64) -> Result<(), ErrorCode> {
        if self.epoch_start_offset > hw {
            Err(ErrorCode::OffsetNotAvailable)
        } else {
            Ok(())
        }
    }

    // ------------------------------------------------------------------ ISR shrink

    /// Kafka's `getOutOfSyncReplicas`: the ISR followers that are not caught up (not at
    /// `leader_end_offset` and not caught up within `max_lag_ms`), or unknown. Empty while a
    /// change is in flight. The leader itself is never out of sync.
    pub fn out_of_sync_replicas(
        &self,
        now_ms: i64,
        leader_end_offset: i64,
        max_lag_ms: i64,
    ) -> Vec<i32> {
        let IsrState::Committed(committed) = &self.isr_state else {
            return Vec::new();
        };
        committed
            .isr
            .iter()
            .copied()
            .filter(|&id| id != self.config.broker_id)
            .filter(|id| {
                self.followers
                    .get(id)
                    .is_none_or(|f| !f.is_caught_up(leader_end_offset, now_ms, max_lag_ms))
            })
            .collect()
    }

    /// Kafka's `maybeShrinkIsr` (the ReplicaManager's `isr-expiration` task, every
    /// `replica.lag.time.max.ms / 2`): if no change is in flight and some ISR followers are
    /// out of sync, proposes an ISR without them (as a pending change whose maximal ISR is
    /// still the old one). The leader epoch is kept; the controller bumps only the partition
    /// epoch (Kafka 3.6+, KAFKA-15021).
    pub fn maybe_shrink_isr(
        &mut self,
        now_ms: i64,
        leader_end_offset: i64,
    ) -> Option<AlterPartitionRequest> {
        let out_of_sync = self.out_of_sync_replicas(
            now_ms,
            leader_end_offset,
            self.config.replica_lag_time_max_ms,
        );
        if out_of_sync.is_empty() {
            return None;
        }
        let IsrState::Committed(committed) = &self.isr_state else {
            return None;
        };
        let isr = committed
            .isr
            .iter()
            .copied()
            .filter(|id| !out_of_sync.contains(id))
            .collect();
        Some(self.prepare_change(IsrChange::Shrink { out_of_sync }, isr))
    }

    /// Kafka's `prepareIsrExpand` / `prepareIsrShrink` with `addBrokerEpochToIsr`.
    fn prepare_change(&mut self, change: IsrChange, isr: BTreeSet<i32>) -> AlterPartitionRequest {
        let IsrState::Committed(committed) = &self.isr_state else {
            unreachable!("a change is prepared from the committed state only");
        };
        let new_isr = isr
            .iter()
            .map(|&broker_id| BrokerState {
                broker_id,
                broker_epoch: if broker_id == self.config.broker_id {
                    self.config.broker_epoch
                } else {
                    self.followers
                        .get(&broker_id)
                        .and_then(|f| f.broker_epoch)
                        .unwrap_or(NO_BROKER_EPOCH)
                },
            })
            .collect();
        let request = AlterPartitionRequest {
            change,
            leader_id: self.config.broker_id,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
            leader_recovery_state: committed.leader_recovery_state,
        };
        self.isr_state = IsrState::Pending {
            sent: request.clone(),
            last_committed: committed.clone(),
        };
        request
    }

    // ------------------------------------------------------------------ controller

    /// The controller's answer to `sent` (the request returned by a fetch or a shrink):
    /// `Ok` with the partition state it holds now, or the partition's error (a top-level
    /// error applies to every partition). Kafka's `handleAlterPartitionUpdate` /
    /// `handleAlterPartitionError`; see [`AlterPartitionOutcome`].
    pub fn on_alter_partition_response(
        &mut self,
        sent: &AlterPartitionRequest,
        result: Result<LeaderAndIsr, ErrorCode>,
        log: LeaderLogView,
        now_ms: i64,
        brokers: impl Fn(i32) -> BrokerEligibility,
    ) -> AlterPartitionOutcome {
        let IsrState::Pending {
            sent: pending,
            last_committed,
        } = &self.isr_state
        else {
            return AlterPartitionOutcome::Ignored;
        };
        if pending != sent {
            return AlterPartitionOutcome::Ignored;
        }
        match result {
            Ok(state) => {
                if state.leader_epoch != self.leader_epoch
                    || state.partition_epoch < self.partition_epoch
                {
                    return AlterPartitionOutcome::AwaitingMetadata;
                }
                self.isr_state = IsrState::Committed(CommittedIsr {
                    isr: state.isr.iter().copied().collect(),
                    leader_recovery_state: state.leader_recovery_state,
                });
                self.partition_epoch = state.partition_epoch;
                AlterPartitionOutcome::Committed {
                    high_watermark: self.maybe_increment_high_watermark(log, now_ms, brokers),
                }
            }
            Err(ErrorCode::OperationNotAttempted | ErrorCode::IneligibleReplica) => {
                self.isr_state = IsrState::Committed(last_committed.clone());
                AlterPartitionOutcome::Reverted
            }
            Err(
                ErrorCode::UnknownTopicOrPartition
                | ErrorCode::UnknownTopicId
                | ErrorCode::FencedLeaderEpoch
                | ErrorCode::InvalidUpdateVersion
                | ErrorCode::InvalidRequest
                | ErrorCode::NewLeaderElected,
            ) => AlterPartitionOutcome::AwaitingMetadata,
            Err(_) => AlterPartitionOutcome::Retry(sent.clone()),
        }
    }

    /// A partition state from the metadata log (a `PartitionChangeRecord` applied; Kafka's
    /// `ReplicaManager.applyDelta` → `Partition.makeLeader` on a broker that leads). A state
    /// with an older partition epoch is skipped; a newer one replaces the assignment and ISR
    /// (dropping any change in flight: its answer will be ignored); one with the same
    /// partition epoch updates the assignment but keeps a change in flight (a deliberate
    /// difference from Kafka, see the crate docs). A new leader epoch with the same leader
    /// resets the followers' caught-up times and starts the epoch at `log.log_end_offset`;
    /// another leader means [`MetadataOutcome::NotLeader`].
    pub fn on_metadata(
        &mut self,
        state: &PartitionState,
        log: LeaderLogView,
        now_ms: i64,
        brokers: impl Fn(i32) -> BrokerEligibility,
    ) -> MetadataOutcome {
        if state.partition_epoch < self.partition_epoch {
            return MetadataOutcome::Stale;
        }
        if state.leader != self.config.broker_id {
            return MetadataOutcome::NotLeader;
        }
        // Kafka replaces a pending change here even for the same partition epoch
        // (KAFKA-13790 accepts equal epochs). But a change in flight was proposed *from* the
        // state of that epoch, and the controller may still apply it: dropping it from the
        // maximal ISR lets the high watermark pass a replica the controller is about to add
        // to the ISR (found by the simulation: an AlterPartition answer that overtakes the
        // metadata log, then a new proposal, then the replayed record). So a state with the
        // same partition epoch keeps the change in flight; a newer one (which the controller
        // reached without applying the change, or by applying it) replaces it.
        let keep_pending = state.partition_epoch == self.partition_epoch
            && state.leader_epoch == self.leader_epoch
            && self.pending_alter_partition().is_some();
        let pending = keep_pending.then(|| self.isr_state.clone());
        self.update_assignment_and_isr(state);
        if let Some(pending) = pending {
            self.isr_state = pending;
        }
        let new_leader_epoch = state.leader_epoch > self.leader_epoch;
        if new_leader_epoch {
            let isr = self.isr_set().clone();
            for f in self.followers.values_mut() {
                f.reset(
                    now_ms,
                    log.log_end_offset,
                    false,
                    isr.contains(&f.replica_id),
                );
            }
            self.leader_epoch = state.leader_epoch;
            self.epoch_start_offset = log.log_end_offset;
        }
        self.partition_epoch = state.partition_epoch;
        let high_watermark = self.maybe_increment_high_watermark(log, now_ms, brokers);
        if new_leader_epoch {
            MetadataOutcome::NewLeaderEpoch {
                epoch_start_offset: self.epoch_start_offset,
                high_watermark,
            }
        } else {
            MetadataOutcome::Updated { high_watermark }
        }
    }

    /// Kafka's `updateAssignmentAndIsr` for a leader.
    fn update_assignment_and_isr(&mut self, state: &PartitionState) {
        let local = self.config.broker_id;
        self.followers
            .retain(|id, _| *id != local && state.replicas.contains(id));
        for &id in &state.replicas {
            if id != local {
                self.followers
                    .entry(id)
                    .or_insert_with(|| FollowerProgress::empty(id));
            }
        }
        self.replicas = state.replicas.clone();
        self.adding_replicas = state.adding_replicas.clone();
        self.removing_replicas = state.removing_replicas.clone();
        self.isr_state = IsrState::Committed(CommittedIsr {
            isr: state.isr.iter().copied().collect(),
            leader_recovery_state: LeaderRecoveryState::Recovered,
        });
    }

    fn isr_set(&self) -> &BTreeSet<i32> {
        match &self.isr_state {
            IsrState::Committed(c) => &c.isr,
            IsrState::Pending { last_committed, .. } => &last_committed.isr,
        }
    }

    fn maximal_isr_set(&self) -> BTreeSet<i32> {
        let mut isr = self.isr_set().clone();
        if let IsrState::Pending {
            sent:
                AlterPartitionRequest {
                    change: IsrChange::Expand { replica_id },
                    ..
                },
            ..
        } = &self.isr_state
        {
            isr.insert(*replica_id);
        }
        isr
    }
}
