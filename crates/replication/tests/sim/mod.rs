//! A deterministic simulation of one partition's replication (raft-rs's `harness` idea):
//! `n` brokers, each with an in-memory log model and the crate's state machines driven the
//! way the broker's replica manager will drive them, a controller that commits
//! AlterPartition changes, fences brokers that miss heartbeats and elects leaders from the
//! ISR (Kafka's `ReplicationControlManager` / `PartitionChangeBuilder`, ELR off), and a
//! seeded scheduler delivering messages with delays, drops and network partitions.
//!
//! Invariants are asserted as the simulation runs (see [`Cluster`]'s checks); a failure
//! panics with the seed and the event trace's tail.

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use gregor_replication::{
    follower_append_restart_offset, follower_high_watermark, AlterPartitionOutcome,
    AlterPartitionRequest, BrokerEligibility, EpochEndOffset, ErrorCode, FetchErrorAction,
    FetchPartitionRequest, FollowerFetch, FollowerFetchOutcome, FollowerLogView, FollowerState,
    IsrChange, LeaderAndIsr, LeaderConfig, LeaderLogView, LeaderRecoveryState, LeaderState,
    MetadataOutcome, OutOfRangeAction, PartitionState, NO_LEADER,
};

// ------------------------------------------------------------------------------- PRNG

/// SplitMix64: small, seeded, stable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).expect("range");
        lo + i64::try_from(self.next_u64() % span).expect("fits")
    }

    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.next_u64() % (n as u64)).expect("fits")
    }

    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) / ((1u64 << 53) as f64) < p
    }
}

// ------------------------------------------------------------------------------- the log

/// A record batch: offsets `[base, base + count)`, the leader epoch that wrote it, and a
/// unique id standing for its contents (Kafka's CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub base: i64,
    pub count: i64,
    pub epoch: i32,
    pub id: u64,
}

impl Batch {
    pub fn next(&self) -> i64 {
        self.base + self.count
    }
}

/// An in-memory partition log with Kafka's semantics for what replication touches: the
/// leader-epoch cache (`LeaderEpochFileCache`: assign, truncate from start/end,
/// `endOffsetFor`), the high watermark, the log start offset, and truncation at batch
/// granularity (`LogSegment.truncateTo` removes the whole batch holding the offset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemLog {
    pub batches: Vec<Batch>,
    pub epochs: Vec<(i32, i64)>,
    pub log_start: i64,
    pub end: i64,
    pub hw: i64,
}

impl MemLog {
    pub fn leo(&self) -> i64 {
        self.end
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.last().map(|e| e.0)
    }

    pub fn leader_view(&self) -> LeaderLogView {
        LeaderLogView {
            log_start_offset: self.log_start,
            log_end_offset: self.end,
            high_watermark: self.hw,
        }
    }

    pub fn follower_view(&self) -> FollowerLogView {
        FollowerLogView {
            log_start_offset: self.log_start,
            log_end_offset: self.end,
            high_watermark: self.hw,
            latest_epoch: self.latest_epoch(),
        }
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`.
    pub fn end_offset_for(&self, epoch: i32) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        let latest = self.epochs.last()?;
        if latest.0 == epoch {
            return Some((epoch, self.end));
        }
        let higher = self.epochs.partition_point(|e| e.0 <= epoch);
        let next = self.epochs.get(higher)?;
        match higher.checked_sub(1) {
            None => Some((epoch, next.1)),
            Some(floor) => Some((self.epochs[floor].0, next.1)),
        }
    }

    /// Kafka's `LeaderEpochFileCache.assign` (only a newer epoch; it replaces entries that
    /// start at or after it).
    pub fn assign_epoch(&mut self, epoch: i32, start: i64) {
        if self.latest_epoch().is_some_and(|l| l >= epoch) {
            return;
        }
        while self.epochs.last().is_some_and(|e| e.1 >= start) {
            self.epochs.pop();
        }
        self.epochs.push((epoch, start));
    }

    /// A producer append on the leader, stamped with its epoch.
    pub fn append_leader(&mut self, count: i64, epoch: i32, id: u64) -> Batch {
        let batch = Batch {
            base: self.end,
            count,
            epoch,
            id,
        };
        self.assign_epoch(epoch, batch.base);
        self.batches.push(batch);
        self.end = batch.next();
        batch
    }

    /// `appendAsFollower`: offsets and epochs as sent; must start at the LEO.
    pub fn append_follower(&mut self, batches: &[Batch]) {
        for b in batches {
            assert_eq!(b.base, self.end, "follower append must start at the LEO");
            self.assign_epoch(b.epoch, b.base);
            self.batches.push(*b);
            self.end = b.next();
        }
    }

    /// `UnifiedLog.truncateTo`.
    pub fn truncate_to(&mut self, offset: i64) {
        if offset >= self.end {
            let end = self.end;
            self.epochs.retain(|e| e.1 < end);
            return;
        }
        self.batches.retain(|b| b.next() <= offset);
        self.end = self
            .batches
            .last()
            .map_or(offset.min(self.end), |b| b.next());
        if self.batches.is_empty() {
            self.end = offset.max(self.log_start).min(self.end);
        }
        let end = self.end;
        self.epochs.retain(|e| e.1 < end);
        self.log_start = self.log_start.min(end);
        self.hw = self.hw.min(end);
    }

    /// `UnifiedLog.truncateFullyAndStartAt`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) {
        self.batches.clear();
        self.epochs.clear();
        self.end = offset;
        self.log_start = offset;
        self.hw = offset;
    }

    /// `maybeIncrementLogStartOffset` (DeleteRecords on the leader, the leader's log start
    /// on a follower); never past the high watermark.
    pub fn increment_log_start(&mut self, offset: i64) {
        if offset <= self.log_start || offset > self.hw {
            return;
        }
        self.log_start = offset;
        self.batches.retain(|b| b.next() > offset);
        // LeaderEpochFileCache.truncateFromStart.
        let below = self.epochs.partition_point(|e| e.1 < offset);
        if below > 0 {
            let kept = self.epochs[below - 1];
            let rest = self.epochs.split_off(below);
            self.epochs.clear();
            if rest.first().is_none_or(|r| r.1 > offset) {
                self.epochs.push((kept.0, offset));
            }
            self.epochs.extend(rest);
        }
    }

    /// `UnifiedLog.updateHighWatermark` (clamped; may go down).
    pub fn update_hw(&mut self, hw: i64) {
        self.hw = if hw < self.log_start {
            self.log_start
        } else {
            hw.min(self.end)
        };
    }

    /// A leader's read from `offset` (`FetchIsolation.LOG_END`): the batch holding it and
    /// the following ones.
    pub fn read(&self, offset: i64, max_batches: usize) -> Vec<Batch> {
        let first = self.batches.partition_point(|b| b.next() <= offset);
        self.batches[first..]
            .iter()
            .take(max_batches)
            .copied()
            .collect()
    }

    /// The batch holding `offset`.
    pub fn batch_at(&self, offset: i64) -> Option<&Batch> {
        let i = self.batches.partition_point(|b| b.next() <= offset);
        self.batches.get(i).filter(|b| b.base <= offset)
    }

    /// `(offset, epoch, batch id)` for every offset in `[from, to)`.
    pub fn records(&self, from: i64, to: i64) -> Vec<(i64, i32, u64)> {
        let mut out = Vec::new();
        for b in &self.batches {
            for o in b.base.max(from)..b.next().min(to) {
                out.push((o, b.epoch, b.id));
            }
        }
        out
    }
}

// ------------------------------------------------------------------------------- messages

#[derive(Debug, Clone)]
pub enum FetchData {
    Records {
        batches: Vec<Batch>,
        hw: i64,
        log_start: i64,
    },
    Diverging {
        diverging: EpochEndOffset,
        hw: i64,
        log_start: i64,
    },
}

#[derive(Debug, Clone)]
pub enum Msg {
    Fetch {
        req_id: u64,
        broker_epoch: i64,
        req: FetchPartitionRequest,
    },
    FetchResponse {
        req_id: u64,
        req: FetchPartitionRequest,
        result: Result<FetchData, ErrorCode>,
    },
    ListOffsets {
        req_id: u64,
        leader_epoch: i32,
    },
    ListOffsetsResponse {
        req_id: u64,
        result: Result<(i64, i64), ErrorCode>,
    },
    AlterPartition {
        req_id: u64,
        broker_epoch: i64,
        req: AlterPartitionRequest,
    },
    AlterPartitionResponse {
        req_id: u64,
        req: AlterPartitionRequest,
        result: Result<LeaderAndIsr, ErrorCode>,
    },
    Register {
        incarnation: u64,
    },
    RegisterResponse {
        incarnation: u64,
        broker_epoch: i64,
    },
    Heartbeat {
        broker_epoch: i64,
        metadata_offset: usize,
    },
    MetadataPull {
        offset: usize,
    },
    MetadataResponse {
        offset: usize,
        records: Vec<Record>,
    },
}

/// A metadata log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Partition(PartitionState),
    Broker(i32, BrokerEligibility),
}

#[derive(Debug, Clone)]
enum Event {
    /// `incarnation`: the receiver's when sent (a restarted process never gets what was
    /// sent to its previous incarnation: that connection is gone).
    Deliver {
        from: usize,
        from_incarnation: u64,
        to: usize,
        incarnation: u64,
        msg: Msg,
    },
    NodeTick(usize),
    ControllerTick,
    Produce,
    Nemesis,
    Restart(usize),
    Heal(usize, usize),
}

struct Scheduled {
    at: i64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

// ------------------------------------------------------------------------------- config

#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub replicas: usize,
    pub min_insync_replicas: i32,
    pub replica_lag_time_max_ms: i64,
    pub session_timeout_ms: i64,
    pub heartbeat_ms: i64,
    pub drop_rate: f64,
    pub max_delay_ms: i64,
    /// Fraction of messages delayed by 100–1500 ms during the chaos.
    pub late_rate: f64,
    pub max_batches_per_fetch: usize,
    pub unclean_leader_election: bool,
    /// Random produce / nemesis events (off for scripted scenarios).
    pub chaos: bool,
    /// Produce interval bounds.
    pub produce_every_ms: (i64, i64),
    /// Fraction of produces with acks=all.
    pub acks_all_rate: f64,
    /// Check that acknowledged records survive (properties 1, 2 and 4's log check); off
    /// with unclean elections, which may lose them by design.
    pub durability_checks: bool,
}

impl SimConfig {
    pub fn random() -> SimConfig {
        SimConfig {
            replicas: 3,
            min_insync_replicas: 2,
            replica_lag_time_max_ms: 1000,
            session_timeout_ms: 600,
            heartbeat_ms: 100,
            drop_rate: 0.02,
            max_delay_ms: 12,
            late_rate: 0.01,
            max_batches_per_fetch: 4,
            unclean_leader_election: false,
            chaos: true,
            produce_every_ms: (5, 40),
            acks_all_rate: 0.85,
            durability_checks: true,
        }
    }

    pub fn scripted(replicas: usize, min_insync_replicas: i32) -> SimConfig {
        SimConfig {
            replicas,
            min_insync_replicas,
            drop_rate: 0.0,
            late_rate: 0.0,
            max_delay_ms: 3,
            chaos: false,
            ..SimConfig::random()
        }
    }
}

const TICK_MS: i64 = 10;
const CONTROLLER_TICK_MS: i64 = 50;
const METADATA_PULL_MS: i64 = 30;
const REQUEST_TIMEOUT_MS: i64 = 300;
const FETCH_BACKOFF_MS: i64 = 50;
/// Long-poll stand-in: an empty fetch answer waits this long before the next fetch.
const FETCH_IDLE_MS: i64 = 20;
const HW_CHECKPOINT_MS: i64 = 500;

// ------------------------------------------------------------------------------- nodes

#[derive(Debug)]
pub enum Role {
    None,
    Leader(LeaderState),
    Follower(FollowerState),
}

#[derive(Debug, Clone)]
pub struct PendingAck {
    pub required_offset: i64,
    pub batch: Batch,
}

#[derive(Debug)]
pub struct Node {
    pub id: i32,
    pub up: bool,
    pub log: MemLog,
    pub hw_checkpoint: i64,
    last_checkpoint_at: i64,
    pub broker_epoch: Option<i64>,
    /// The process's incarnation id (Kafka's `BrokerRegistrationRequest.IncarnationId`).
    pub incarnation: u64,
    register_sent_at: Option<i64>,
    pub role: Role,
    meta_offset: usize,
    pub meta_partition: Option<PartitionState>,
    meta_brokers: BTreeMap<i32, BrokerEligibility>,
    meta_pull_sent_at: Option<i64>,
    last_meta_pull_at: i64,
    last_heartbeat_at: i64,
    pub pending_acks: Vec<PendingAck>,
    fetch_in_flight: Option<(u64, i64)>,
    list_offsets_in_flight: Option<(u64, i64, FetchPartitionRequest)>,
    next_fetch_at: i64,
    /// The AlterPartition request in flight: id, request, when sent.
    alter_in_flight: Option<(u64, AlterPartitionRequest, i64)>,
    alter_queued: Option<(AlterPartitionRequest, i64)>,
    last_isr_check_at: i64,
}

impl Node {
    fn new(id: i32) -> Node {
        Node {
            id,
            up: true,
            log: MemLog::default(),
            hw_checkpoint: 0,
            last_checkpoint_at: 0,
            broker_epoch: None,
            incarnation: 0,
            register_sent_at: None,
            role: Role::None,
            meta_offset: 0,
            meta_partition: None,
            meta_brokers: BTreeMap::new(),
            meta_pull_sent_at: None,
            last_meta_pull_at: i64::MIN / 2,
            last_heartbeat_at: i64::MIN / 2,
            pending_acks: Vec::new(),
            fetch_in_flight: None,
            list_offsets_in_flight: None,
            next_fetch_at: 0,
            alter_in_flight: None,
            alter_queued: None,
            last_isr_check_at: 0,
        }
    }

    /// A crash: everything but the log (and the checkpointed high watermark) is lost.
    fn crash(&mut self) {
        let log = std::mem::take(&mut self.log);
        let hw_checkpoint = self.hw_checkpoint;
        *self = Node::new(self.id);
        self.up = false;
        self.log = log;
        self.log.hw = hw_checkpoint.min(self.log.hw);
        self.hw_checkpoint = self.log.hw;
    }

    fn brokers(&self) -> impl Fn(i32) -> BrokerEligibility + '_ {
        |id| self.meta_brokers.get(&id).copied().unwrap_or_default()
    }

    pub fn leader(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    pub fn follower(&self) -> Option<&FollowerState> {
        match &self.role {
            Role::Follower(f) => Some(f),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------------------- controller

#[derive(Debug, Clone, Copy)]
pub struct Registration {
    pub incarnation: u64,
    pub epoch: i64,
    pub fenced: bool,
    pub last_heartbeat: i64,
    pub offset: usize,
}

#[derive(Debug)]
pub struct Controller {
    pub partition: PartitionState,
    pub brokers: BTreeMap<i32, Registration>,
    pub records: Vec<Record>,
    pub unclean: bool,
}

impl Controller {
    fn eligibility(&self, id: i32) -> BrokerEligibility {
        self.brokers
            .get(&id)
            .map(|r| BrokerEligibility {
                registered_epoch: Some(r.epoch),
                fenced: r.fenced,
                in_controlled_shutdown: false,
            })
            .unwrap_or_default()
    }

    fn acceptable(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|r| !r.fenced)
    }

    /// `PartitionChangeBuilder.electLeader`, ONLINE: the first acceptable ISR member in
    /// replica order (then, if enabled, UNCLEAN: any acceptable replica).
    fn elect(&self, isr: &[i32]) -> Option<(i32, bool)> {
        let p = &self.partition;
        if let Some(&r) = p
            .replicas
            .iter()
            .find(|r| isr.contains(r) && self.acceptable(**r))
        {
            return Some((r, false));
        }
        if self.unclean {
            if let Some(&r) = p.replicas.iter().find(|r| self.acceptable(**r)) {
                return Some((r, true));
            }
        }
        None
    }

    /// Writes a PartitionChangeRecord.
    fn change(&mut self, leader: i32, isr: Vec<i32>, recovery: LeaderRecoveryState) {
        let p = &mut self.partition;
        if leader != p.leader {
            p.leader_epoch += 1;
        }
        p.leader = leader;
        p.isr = isr;
        p.leader_recovery_state = recovery;
        p.partition_epoch += 1;
        assert!(!p.isr.is_empty(), "empty ISR: {p:?}");
        assert!(
            p.leader == NO_LEADER || p.isr.contains(&p.leader),
            "the ISR must contain the leader: {p:?}"
        );
        assert!(p.isr.iter().all(|r| p.replicas.contains(r)));
        self.records.push(Record::Partition(p.clone()));
    }

    fn broker_record(&mut self, id: i32) {
        let e = self.eligibility(id);
        self.records.push(Record::Broker(id, e));
    }

    /// `handleBrokerFenced` (ELR off: the last ISR member stays).
    fn fence(&mut self, id: i32) {
        let Some(reg) = self.brokers.get_mut(&id) else {
            return;
        };
        if reg.fenced {
            return;
        }
        reg.fenced = true;
        self.broker_record(id);
        let p = self.partition.clone();
        if !p.isr.contains(&id) && p.leader != id {
            return;
        }
        let mut isr: Vec<i32> = p.isr.iter().copied().filter(|&r| r != id).collect();
        if isr.is_empty() {
            isr = vec![id];
        }
        let (leader, isr, recovery) = if p.leader == id || p.leader == NO_LEADER {
            match self.elect(&isr) {
                Some((l, false)) => (l, isr, p.leader_recovery_state),
                Some((l, true)) => (l, vec![l], LeaderRecoveryState::Recovering),
                None => (NO_LEADER, isr, p.leader_recovery_state),
            }
        } else {
            (p.leader, isr, p.leader_recovery_state)
        };
        self.change(leader, isr, recovery);
    }

    fn unfence(&mut self, id: i32) {
        let Some(reg) = self.brokers.get_mut(&id) else {
            return;
        };
        reg.fenced = false;
        self.broker_record(id);
        if self.partition.leader == NO_LEADER {
            let isr = self.partition.isr.clone();
            match self.elect(&isr) {
                Some((l, false)) => {
                    let r = self.partition.leader_recovery_state;
                    self.change(l, isr, r);
                }
                Some((l, true)) => self.change(l, vec![l], LeaderRecoveryState::Recovering),
                None => {}
            }
        }
    }

    /// `ReplicationControlManager.alterPartition` with `validateAlterPartitionData`.
    fn alter_partition(
        &mut self,
        from: i32,
        broker_epoch: i64,
        req: &AlterPartitionRequest,
    ) -> Result<LeaderAndIsr, ErrorCode> {
        if self
            .brokers
            .get(&from)
            .is_none_or(|r| r.epoch != broker_epoch)
        {
            return Err(ErrorCode::StaleBrokerEpoch);
        }
        let p = self.partition.clone();
        if req.leader_epoch > p.leader_epoch || req.partition_epoch > p.partition_epoch {
            return Err(ErrorCode::NotController);
        }
        if req.leader_epoch < p.leader_epoch {
            return Err(ErrorCode::FencedLeaderEpoch);
        }
        if p.leader != from {
            return Err(ErrorCode::InvalidRequest);
        }
        if req.partition_epoch < p.partition_epoch {
            return Err(ErrorCode::InvalidUpdateVersion);
        }
        let isr = req.isr_ids();
        if isr.is_empty()
            || !isr.contains(&p.leader)
            || isr.iter().any(|r| !p.replicas.contains(r))
            || (req.leader_recovery_state == LeaderRecoveryState::Recovering && isr.len() != 1)
            || (p.leader_recovery_state == LeaderRecoveryState::Recovered
                && req.leader_recovery_state == LeaderRecoveryState::Recovering)
        {
            return Err(ErrorCode::InvalidRequest);
        }
        for member in &req.new_isr {
            let ok = self.brokers.get(&member.broker_id).is_some_and(|r| {
                !r.fenced && (member.broker_epoch == -1 || member.broker_epoch == r.epoch)
            });
            if !ok {
                return Err(ErrorCode::IneligibleReplica);
            }
        }
        if isr != p.isr || req.leader_recovery_state != p.leader_recovery_state {
            self.change(p.leader, isr, req.leader_recovery_state);
        }
        let p = &self.partition;
        Ok(LeaderAndIsr {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: p.isr.clone(),
            leader_recovery_state: p.leader_recovery_state,
        })
    }
}

// ------------------------------------------------------------------------------- stats

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub events: u64,
    pub produced: u64,
    pub acked: u64,
    pub elections: u64,
    pub unclean_elections: u64,
    pub truncations: u64,
    pub divergences: u64,
    pub out_of_range: u64,
    pub expands: u64,
    pub shrinks: u64,
    pub crashes: u64,
    pub cuts: u64,
    pub not_enough_replicas: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.events += o.events;
        self.produced += o.produced;
        self.acked += o.acked;
        self.elections += o.elections;
        self.unclean_elections += o.unclean_elections;
        self.truncations += o.truncations;
        self.divergences += o.divergences;
        self.out_of_range += o.out_of_range;
        self.expands += o.expands;
        self.shrinks += o.shrinks;
        self.crashes += o.crashes;
        self.cuts += o.cuts;
        self.not_enough_replicas += o.not_enough_replicas;
    }
}

// ------------------------------------------------------------------------------- cluster

/// The simulated cluster. Endpoints `0..n` are brokers, `n` the controller.
pub struct Cluster {
    pub cfg: SimConfig,
    pub seed: u64,
    pub now: i64,
    rng: Rng,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    pub nodes: Vec<Node>,
    pub ctrl: Controller,
    cut: BTreeSet<(usize, usize)>,
    next_id: u64,
    /// Batches acknowledged to an acks=all producer (none may ever be lost).
    pub acked: Vec<Batch>,
    pub stats: Stats,
    pub chaos_until: i64,
    trace: VecDeque<String>,
    /// The last delivery time per directed link (FIFO links).
    link_clock: BTreeMap<(usize, usize), i64>,
    /// While handling a message: its sender and the sender's incarnation.
    replying_to: Option<(usize, u64)>,
    /// The high watermark of each node's current leadership (property 3).
    leader_hw: Vec<Option<i64>>,
}

impl Cluster {
    pub fn new(cfg: SimConfig, seed: u64) -> Cluster {
        let n = cfg.replicas;
        let ids: Vec<i32> = (0..n).map(|i| i32::try_from(i).expect("id")).collect();
        let mut ctrl = Controller {
            partition: PartitionState {
                leader: 0,
                leader_epoch: 0,
                partition_epoch: 0,
                replicas: ids.clone(),
                isr: ids.clone(),
                adding_replicas: vec![],
                removing_replicas: vec![],
                leader_recovery_state: LeaderRecoveryState::Recovered,
            },
            brokers: BTreeMap::new(),
            records: Vec::new(),
            unclean: cfg.unclean_leader_election,
        };
        let mut nodes: Vec<Node> = ids.iter().map(|&id| Node::new(id)).collect();
        for (i, &id) in ids.iter().enumerate() {
            let epoch = i64::try_from(ctrl.records.len()).expect("epoch");
            ctrl.brokers.insert(
                id,
                Registration {
                    incarnation: 0,
                    epoch,
                    fenced: false,
                    last_heartbeat: 0,
                    offset: ctrl.records.len(),
                },
            );
            ctrl.broker_record(id);
            nodes[i].broker_epoch = Some(epoch);
        }
        ctrl.records.push(Record::Partition(ctrl.partition.clone()));
        let mut c = Cluster {
            cfg,
            seed,
            now: 0,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            nodes,
            ctrl,
            cut: BTreeSet::new(),
            next_id: 1,
            acked: Vec::new(),
            stats: Stats::default(),
            chaos_until: 0,
            trace: VecDeque::new(),
            replying_to: None,
            link_clock: BTreeMap::new(),
            leader_hw: vec![None; n],
        };
        for i in 0..n {
            let at = c.rng.range(0, TICK_MS - 1);
            c.schedule(at, Event::NodeTick(i));
        }
        c.schedule(CONTROLLER_TICK_MS, Event::ControllerTick);
        c
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn controller(&self) -> usize {
        self.nodes.len()
    }

    fn schedule(&mut self, at: i64, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    fn log_event(&mut self, s: String) {
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("[{}] {s}", self.now);
        }
        if self.trace.len() >= 60 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("[{}] {}", self.now, s));
    }

    /// Fails with the seed and the recent trace.
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let trace: Vec<&String> = self.trace.iter().collect();
        panic!(
            "seed {}: {what}\nrecent events:\n{}",
            self.seed,
            trace
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    fn link_up(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn endpoint_up(&self, e: usize) -> bool {
        e == self.controller() || self.nodes[e].up
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if !self.link_up(from, to) || self.rng.chance(self.cfg.drop_rate) {
            return;
        }
        // Mostly short delays; now and then a very late message (a stalled connection).
        // Each direction of a link is FIFO, as a TCP connection: Kafka's AlterPartition
        // error handling relies on it (an INELIGIBLE_REPLICA answer to a retry means no
        // earlier copy of the request can still be applied), and so do fetch sessions.
        let delay = if self.now < self.chaos_until && self.rng.chance(self.cfg.late_rate) {
            self.rng.range(100, 1_500)
        } else {
            self.rng.range(1, self.cfg.max_delay_ms)
        };
        let last = self.link_clock.entry((from, to)).or_insert(0);
        let at = (self.now + delay).max(*last);
        *last = at;
        // A reply goes to the incarnation that sent the request.
        let incarnation = match self.replying_to {
            Some((peer, incarnation)) if peer == to => incarnation,
            _ => self.nodes.get(to).map_or(0, |n| n.incarnation),
        };
        let from_incarnation = self.nodes.get(from).map_or(0, |n| n.incarnation);
        self.schedule(
            at,
            Event::Deliver {
                from,
                from_incarnation,
                to,
                incarnation,
                msg,
            },
        );
    }

    // ----------------------------------------------------------------- running

    /// Runs events until `until` (simulated milliseconds).
    pub fn run_until(&mut self, until: i64) {
        while let Some(top) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Scheduled { at, event, .. } = self.queue.pop().expect("peeked");
            self.now = at;
            self.stats.events += 1;
            self.dispatch(event);
            if self.stats.events & 255 == 0 {
                self.check_logs_agree_below_hw();
            }
        }
        self.now = until;
    }

    pub fn run_for(&mut self, ms: i64) {
        let until = self.now + ms;
        self.run_until(until);
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver {
                from,
                from_incarnation,
                to,
                incarnation,
                msg,
            } => {
                if !self.link_up(from, to)
                    || !self.endpoint_up(to)
                    || self
                        .nodes
                        .get(to)
                        .is_some_and(|n| n.incarnation != incarnation)
                {
                    return;
                }
                self.replying_to = Some((from, from_incarnation));
                if to == self.controller() {
                    self.controller_receive(from, msg);
                } else {
                    self.node_receive(to, from, msg);
                }
                self.replying_to = None;
            }
            Event::NodeTick(i) => {
                self.node_tick(i);
                self.schedule(self.now + TICK_MS, Event::NodeTick(i));
            }
            Event::ControllerTick => {
                self.controller_tick();
                self.schedule(self.now + CONTROLLER_TICK_MS, Event::ControllerTick);
            }
            Event::Produce => {
                if self.now < self.chaos_until {
                    let count = self.rng.range(1, 3);
                    let acks_all = self.rng.chance(self.cfg.acks_all_rate);
                    let leader = self.ctrl.partition.leader;
                    if leader != NO_LEADER {
                        let _ =
                            self.produce_to(usize::try_from(leader).expect("id"), count, acks_all);
                    }
                    let (lo, hi) = self.cfg.produce_every_ms;
                    let next = self.now + self.rng.range(lo, hi);
                    self.schedule(next, Event::Produce);
                }
            }
            Event::Nemesis => {
                if self.now < self.chaos_until {
                    self.nemesis();
                    let next = self.now + self.rng.range(150, 700);
                    self.schedule(next, Event::Nemesis);
                }
            }
            Event::Restart(i) => self.restart(i),
            Event::Heal(a, b) => {
                self.cut.remove(&(a.min(b), a.max(b)));
                self.log_event(format!("heal {a}-{b}"));
            }
        }
    }

    /// Random faults and producers until `now + ms`.
    pub fn chaos(&mut self, ms: i64) {
        self.chaos_until = self.now + ms;
        self.schedule(self.now + 1, Event::Produce);
        self.schedule(self.now + 200, Event::Nemesis);
        self.run_until(self.chaos_until);
    }

    fn nemesis(&mut self) {
        let n = self.n();
        match self.rng.range(0, 9) {
            0..=3 => {
                let i = self.rng.index(n);
                let down = self.nodes.iter().filter(|x| !x.up).count();
                if self.nodes[i].up && down + 1 < n {
                    self.crash(i);
                    let back = self.now + self.rng.range(100, 1500);
                    self.schedule(back, Event::Restart(i));
                }
            }
            4..=7 => {
                let a = self.rng.index(n + 1);
                let b = self.rng.index(n + 1);
                if a != b {
                    self.cut.insert((a.min(b), a.max(b)));
                    self.stats.cuts += 1;
                    self.log_event(format!("cut {a}-{b}"));
                    let back = self.now + self.rng.range(100, 2000);
                    self.schedule(back, Event::Heal(a, b));
                }
            }
            8 => {
                // DeleteRecords on the leader, up to its high watermark.
                let leader = self.ctrl.partition.leader;
                if leader != NO_LEADER {
                    let i = usize::try_from(leader).expect("id");
                    let node = &mut self.nodes[i];
                    if node.up && node.leader().is_some() && node.log.hw > node.log.log_start {
                        let to = self.rng.range(node.log.log_start, node.log.hw);
                        // At a batch boundary, like DeleteRecords to an offset a batch starts at.
                        let to = node.log.batch_at(to).map_or(to, |b| b.base);
                        self.nodes[i].log.increment_log_start(to);
                        self.log_event(format!("delete records on {i} to {to}"));
                    }
                }
            }
            _ => {}
        }
    }

    /// Ends the chaos: every broker up, every link back.
    pub fn heal(&mut self) {
        self.chaos_until = self.now;
        self.cut.clear();
        for i in 0..self.n() {
            if !self.nodes[i].up {
                self.restart(i);
            }
        }
    }

    pub fn crash(&mut self, i: usize) {
        self.stats.crashes += 1;
        self.nodes[i].crash();
        self.leader_hw[i] = None;
        self.log_event(format!("crash {i}"));
    }

    pub fn restart(&mut self, i: usize) {
        if self.nodes[i].up {
            return;
        }
        self.nodes[i].up = true;
        self.nodes[i].incarnation = self.next_id;
        self.next_id += 1;
        self.log_event(format!("restart {i}"));
    }

    // ----------------------------------------------------------------- controller side

    fn controller_tick(&mut self) {
        let timeout = self.cfg.session_timeout_ms;
        let expired: Vec<i32> = self
            .ctrl
            .brokers
            .iter()
            .filter(|(_, r)| !r.fenced && self.now - r.last_heartbeat > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.log_event(format!("controller fences {id}"));
            self.ctrl.fence(id);
            self.after_controller_change();
        }
    }

    fn after_controller_change(&mut self) {
        self.log_event(format!("partition {:?}", self.ctrl.partition));
    }

    fn controller_receive(&mut self, from: usize, msg: Msg) {
        let id = i32::try_from(from).expect("id");
        match msg {
            Msg::Register { incarnation } => {
                if let Some(reg) = self.ctrl.brokers.get(&id) {
                    // A late registration of a dead process (the simulation's incarnation
                    // ids grow, so the controller can tell), or Kafka's
                    // DuplicateBrokerRegistrationException: another incarnation still has
                    // a valid session.
                    let valid_session =
                        !reg.fenced && self.now - reg.last_heartbeat <= self.cfg.session_timeout_ms;
                    if incarnation < reg.incarnation
                        || (incarnation != reg.incarnation && valid_session)
                    {
                        return;
                    }
                    if reg.incarnation == incarnation {
                        // A retried registration of the same process.
                        let broker_epoch = reg.epoch;
                        self.send(
                            self.controller(),
                            from,
                            Msg::RegisterResponse {
                                incarnation,
                                broker_epoch,
                            },
                        );
                        return;
                    }
                }
                if self.ctrl.brokers.get(&id).is_some_and(|r| !r.fenced) {
                    // A new incarnation: the old one is fenced first.
                    self.ctrl.fence(id);
                }
                let epoch = i64::try_from(self.ctrl.records.len()).expect("epoch");
                let offset = self.ctrl.records.len();
                self.ctrl.brokers.insert(
                    id,
                    Registration {
                        incarnation,
                        epoch,
                        fenced: true,
                        last_heartbeat: self.now,
                        offset,
                    },
                );
                self.ctrl.broker_record(id);
                self.log_event(format!("{id} registers with epoch {epoch}"));
                self.send(
                    self.controller(),
                    from,
                    Msg::RegisterResponse {
                        incarnation,
                        broker_epoch: epoch,
                    },
                );
            }
            Msg::Heartbeat {
                broker_epoch,
                metadata_offset,
            } => {
                let Some(reg) = self.ctrl.brokers.get_mut(&id) else {
                    return;
                };
                if reg.epoch != broker_epoch {
                    return;
                }
                reg.last_heartbeat = self.now;
                if reg.fenced && metadata_offset > reg.offset {
                    self.log_event(format!("controller unfences {id}"));
                    let before = self.ctrl.partition.clone();
                    self.ctrl.unfence(id);
                    if self.ctrl.partition != before {
                        self.after_controller_change();
                    }
                }
            }
            Msg::MetadataPull { offset } => {
                let records = self.ctrl.records.get(offset..).unwrap_or(&[]).to_vec();
                self.send(
                    self.controller(),
                    from,
                    Msg::MetadataResponse { offset, records },
                );
            }
            Msg::AlterPartition {
                req_id,
                broker_epoch,
                req,
            } => {
                let before = self.ctrl.partition.clone();
                let result = self.ctrl.alter_partition(id, broker_epoch, &req);
                if self.ctrl.partition != before {
                    self.after_controller_change();
                    // Property 4: a replica added to the ISR holds every acknowledged record.
                    let added: Vec<i32> = self
                        .ctrl
                        .partition
                        .isr
                        .iter()
                        .copied()
                        .filter(|r| !before.isr.contains(r))
                        .collect();
                    for r in added {
                        self.stats.expands += 1;
                        let i = usize::try_from(r).expect("id");
                        self.check_has_acked(i, "joined the ISR");
                    }
                    if self.ctrl.partition.isr.len() < before.isr.len() {
                        self.stats.shrinks += 1;
                    }
                }
                self.log_event(format!("alter partition from {id}: {req:?} -> {result:?}"));
                self.send(
                    self.controller(),
                    from,
                    Msg::AlterPartitionResponse {
                        req_id,
                        req,
                        result,
                    },
                );
            }
            _ => {}
        }
    }

    // ----------------------------------------------------------------- broker side

    fn node_tick(&mut self, i: usize) {
        if !self.nodes[i].up {
            return;
        }
        let now = self.now;
        let ctrl = self.controller();
        // Registration after a restart.
        if self.nodes[i].broker_epoch.is_none() {
            if self.nodes[i]
                .register_sent_at
                .is_none_or(|t| now - t > REQUEST_TIMEOUT_MS)
            {
                self.nodes[i].register_sent_at = Some(now);
                let incarnation = self.nodes[i].incarnation;
                self.send(i, ctrl, Msg::Register { incarnation });
            }
            return;
        }
        // Heartbeats, metadata, HW checkpoint.
        if now - self.nodes[i].last_heartbeat_at >= self.cfg.heartbeat_ms {
            self.nodes[i].last_heartbeat_at = now;
            let msg = Msg::Heartbeat {
                broker_epoch: self.nodes[i].broker_epoch.expect("registered"),
                metadata_offset: self.nodes[i].meta_offset,
            };
            self.send(i, ctrl, msg);
        }
        let node = &self.nodes[i];
        let pull_due = now - node.last_meta_pull_at >= METADATA_PULL_MS
            && node
                .meta_pull_sent_at
                .is_none_or(|t| now - t > REQUEST_TIMEOUT_MS);
        if pull_due {
            let offset = node.meta_offset;
            self.nodes[i].last_meta_pull_at = now;
            self.nodes[i].meta_pull_sent_at = Some(now);
            self.send(i, ctrl, Msg::MetadataPull { offset });
        }
        if now - self.nodes[i].last_checkpoint_at >= HW_CHECKPOINT_MS {
            let node = &mut self.nodes[i];
            node.last_checkpoint_at = now;
            node.hw_checkpoint = node.log.hw;
        }
        match &self.nodes[i].role {
            Role::Leader(_) => self.leader_tick(i),
            Role::Follower(_) => self.follower_tick(i),
            Role::None => {}
        }
    }

    fn leader_tick(&mut self, i: usize) {
        let now = self.now;
        let me = self.nodes[i].id;
        if let Some(l) = self.nodes[i].leader() {
            if !l.isr().contains(&me) || !l.maximal_isr().contains(&me) {
                self.fail(&format!("leader {i} is not in its own ISR {:?}", l.isr()));
            }
        }
        let lag = self.cfg.replica_lag_time_max_ms;
        // isr-expiration every replica.lag.time.max.ms / 2.
        if now - self.nodes[i].last_isr_check_at >= lag / 2 {
            self.nodes[i].last_isr_check_at = now;
            let node = &mut self.nodes[i];
            let leo = node.log.leo();
            if let Role::Leader(l) = &mut node.role {
                if let Some(req) = l.maybe_shrink_isr(now, leo) {
                    self.log_event(format!("{i} proposes {:?}", req.change));
                    self.submit_alter_partition(i, req);
                }
            }
        }
        // AlterPartitionManager: timeouts and queued retries.
        let node = &mut self.nodes[i];
        if let Some((_, req, sent_at)) = &node.alter_in_flight {
            if now - sent_at > REQUEST_TIMEOUT_MS {
                // The connection is closed (its answer will never be seen) and, as in
                // Kafka's AlterPartitionManager, the request's items go back to the unsent
                // queue unless the partition has a newer one there (`putIfAbsent`).
                let req = req.clone();
                node.alter_in_flight = None;
                if node.alter_queued.is_none() {
                    node.alter_queued = Some((req, now));
                }
            }
        }
        self.maybe_send_alter_partition(i);
    }

    fn submit_alter_partition(&mut self, i: usize, req: AlterPartitionRequest) {
        self.nodes[i].alter_queued = Some((req, self.now));
        self.maybe_send_alter_partition(i);
    }

    fn maybe_send_alter_partition(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        if node.alter_in_flight.is_some() {
            return;
        }
        let Some((req, not_before)) = node.alter_queued.clone() else {
            return;
        };
        if now < not_before {
            return;
        }
        node.alter_queued = None;
        // Only what the leader still has pending is worth sending.
        let still_pending = node
            .leader()
            .and_then(|l| l.pending_alter_partition())
            .is_some_and(|p| *p == req);
        if !still_pending {
            self.log_event(format!("{i} drops stale AlterPartition {req:?}"));
            return;
        }
        self.log_event(format!("{i} sends AlterPartition {:?}", req.change));
        let node = &mut self.nodes[i];
        let req_id = self.next_id;
        self.next_id += 1;
        node.alter_in_flight = Some((req_id, req.clone(), now));
        let broker_epoch = node.broker_epoch.expect("registered");
        let ctrl = self.controller();
        self.send(
            i,
            ctrl,
            Msg::AlterPartition {
                req_id,
                broker_epoch,
                req,
            },
        );
    }

    fn follower_tick(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        if node
            .fetch_in_flight
            .is_some_and(|(_, t)| now - t > REQUEST_TIMEOUT_MS)
        {
            node.fetch_in_flight = None;
        }
        if node
            .list_offsets_in_flight
            .is_some_and(|(_, t, _)| now - t > REQUEST_TIMEOUT_MS)
        {
            node.list_offsets_in_flight = None;
        }
        if node.fetch_in_flight.is_some()
            || node.list_offsets_in_flight.is_some()
            || now < node.next_fetch_at
        {
            return;
        }
        let Role::Follower(f) = &node.role else {
            return;
        };
        if f.leader_id() == NO_LEADER {
            return;
        }
        let Some(req) = f.next_fetch(node.log.log_start) else {
            return;
        };
        let leader = usize::try_from(f.leader_id()).expect("id");
        let req_id = self.next_id;
        self.next_id += 1;
        node.fetch_in_flight = Some((req_id, now));
        let broker_epoch = node.broker_epoch.expect("registered");
        self.send(
            i,
            leader,
            Msg::Fetch {
                req_id,
                broker_epoch,
                req,
            },
        );
    }

    fn node_receive(&mut self, i: usize, from: usize, msg: Msg) {
        match msg {
            Msg::RegisterResponse {
                incarnation,
                broker_epoch,
            } => {
                let node = &mut self.nodes[i];
                if node.broker_epoch.is_none() && node.incarnation == incarnation {
                    node.broker_epoch = Some(broker_epoch);
                }
            }
            Msg::MetadataResponse { offset, records } => self.apply_metadata(i, offset, records),
            Msg::Fetch {
                req_id,
                broker_epoch,
                req,
            } => {
                let result = self.serve_fetch(i, from, broker_epoch, &req);
                self.send(
                    i,
                    from,
                    Msg::FetchResponse {
                        req_id,
                        req,
                        result,
                    },
                );
            }
            Msg::FetchResponse {
                req_id,
                req,
                result,
            } => self.handle_fetch_response(i, req_id, req, result),
            Msg::ListOffsets {
                req_id,
                leader_epoch,
            } => {
                let node = &self.nodes[i];
                let result = match (&node.role, &node.meta_partition) {
                    (Role::Leader(l), _) if l.leader_epoch() == leader_epoch => {
                        Ok((node.log.log_start, node.log.leo()))
                    }
                    (_, Some(p)) if p.leader_epoch > leader_epoch => {
                        Err(ErrorCode::FencedLeaderEpoch)
                    }
                    (_, Some(p)) if p.leader_epoch < leader_epoch => {
                        Err(ErrorCode::UnknownLeaderEpoch)
                    }
                    _ => Err(ErrorCode::NotLeaderOrFollower),
                };
                self.send(i, from, Msg::ListOffsetsResponse { req_id, result });
            }
            Msg::ListOffsetsResponse { req_id, result } => {
                self.handle_list_offsets_response(i, req_id, result)
            }
            Msg::AlterPartitionResponse {
                req_id,
                req,
                result,
            } => self.handle_alter_partition_response(i, req_id, req, result),
            _ => {}
        }
    }

    /// The leader's side of a follower fetch (`ReplicaManager.fetchMessages` →
    /// `Partition.fetchRecords`).
    fn serve_fetch(
        &mut self,
        i: usize,
        from: usize,
        broker_epoch: i64,
        req: &FetchPartitionRequest,
    ) -> Result<FetchData, ErrorCode> {
        let now = self.now;
        let max_batches = self.cfg.max_batches_per_fetch;
        let node = &mut self.nodes[i];
        let Role::Leader(l) = &mut node.role else {
            // getLocalLog: the epoch check comes first.
            return Err(match &node.meta_partition {
                Some(p) if p.leader_epoch > req.current_leader_epoch => {
                    ErrorCode::FencedLeaderEpoch
                }
                Some(p) if p.leader_epoch < req.current_leader_epoch => {
                    ErrorCode::UnknownLeaderEpoch
                }
                _ => ErrorCode::NotLeaderOrFollower,
            });
        };
        let view = node.log.leader_view();
        let fetch = FollowerFetch {
            replica_id: i32::try_from(from).expect("id"),
            broker_epoch,
            current_leader_epoch: Some(req.current_leader_epoch),
            fetch_offset: req.fetch_offset,
            last_fetched_epoch: req.last_fetched_epoch,
            log_start_offset: req.log_start_offset,
        };
        let log = &node.log;
        let brokers = &node.meta_brokers;
        let outcome = l.on_follower_fetch(
            &fetch,
            now,
            view,
            |e| log.end_offset_for(e),
            |id| brokers.get(&id).copied().unwrap_or_default(),
        )?;
        match outcome {
            FollowerFetchOutcome::Diverging(diverging) => Ok(FetchData::Diverging {
                diverging,
                hw: view.high_watermark,
                log_start: view.log_start_offset,
            }),
            FollowerFetchOutcome::Read {
                alter_partition,
                high_watermark,
            } => {
                let batches = node.log.read(req.fetch_offset, max_batches);
                if let Some(hw) = high_watermark {
                    self.apply_leader_hw(i, hw);
                }
                if let Some(r) = alter_partition {
                    self.on_expand_proposed(i, &r);
                    self.submit_alter_partition(i, r);
                }
                Ok(FetchData::Records {
                    batches,
                    hw: view.high_watermark,
                    log_start: view.log_start_offset,
                })
            }
        }
    }

    /// Property 4: a replica proposed for the ISR really holds the leader's log up to the
    /// leader's high watermark and into the leader's epoch.
    fn on_expand_proposed(&mut self, i: usize, req: &AlterPartitionRequest) {
        self.log_event(format!("{i} proposes {:?}", req.change));
        let IsrChange::Expand { replica_id } = req.change else {
            return;
        };
        let r = usize::try_from(replica_id).expect("id");
        let (leader_log, epoch_start) = {
            let n = &self.nodes[i];
            (
                n.log.clone(),
                n.leader().expect("leader").epoch_start_offset(),
            )
        };
        let follower_log = &self.nodes[r].log;
        if !self.cfg.durability_checks {
            return;
        }
        if follower_log.leo() < leader_log.hw || follower_log.leo() < epoch_start {
            self.fail(&format!(
                "{replica_id} proposed for the ISR but its LEO {} is below the HW {} or the epoch start {epoch_start}",
                follower_log.leo(),
                leader_log.hw
            ));
        }
        let from = leader_log.log_start.max(follower_log.log_start);
        if leader_log.records(from, leader_log.hw) != follower_log.records(from, leader_log.hw) {
            self.fail(&format!(
                "{replica_id} proposed for the ISR with a log that differs below the HW"
            ));
        }
    }

    fn apply_leader_hw(&mut self, i: usize, hw: i64) {
        let node = &mut self.nodes[i];
        if hw <= node.log.hw || hw > node.log.leo() {
            let msg = format!(
                "leader {i} asked to move its HW from {} to {hw}",
                node.log.hw
            );
            self.fail(&msg);
        }
        node.log.hw = hw;
        // Property 3: the leader's high watermark never goes back.
        if let Some(prev) = self.leader_hw[i] {
            if hw < prev {
                self.fail(&format!("leader {i}'s HW went from {prev} back to {hw}"));
            }
        }
        self.leader_hw[i] = Some(hw);
        self.complete_acks(i);
    }

    /// DelayedProduce: `checkEnoughReplicasReachOffset` after every HW move.
    fn complete_acks(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let Role::Leader(l) = &node.role else {
            return;
        };
        let hw = node.log.hw;
        let mut acked = Vec::new();
        node.pending_acks
            .retain(|p| match l.check_enough_replicas(p.required_offset, hw) {
                None => true,
                Some(ErrorCode::None) => {
                    acked.push(p.batch);
                    false
                }
                Some(_) => false,
            });
        let view = format!(
            "maximal ISR {:?}, followers {:?}",
            l.maximal_isr(),
            l.followers()
                .map(|f| (f.replica_id, f.log_end_offset))
                .collect::<Vec<_>>()
        );
        for b in acked {
            self.stats.acked += 1;
            self.log_event(format!("ack {b:?} by {i} ({view})"));
            self.acked.push(b);
        }
    }

    /// A produce request reaching node `i`.
    pub fn produce_to(&mut self, i: usize, count: i64, acks_all: bool) -> Result<Batch, ErrorCode> {
        let now = self.now;
        let node = &mut self.nodes[i];
        if !node.up {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        let Role::Leader(l) = &node.role else {
            return Err(ErrorCode::NotLeaderOrFollower);
        };
        if acks_all {
            if let Err(e) = l.check_min_isr_before_append() {
                self.stats.not_enough_replicas += 1;
                return Err(e);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let epoch = l.leader_epoch();
        let batch = node.log.append_leader(count, epoch, id);
        self.stats.produced += 1;
        let brokers = &node.meta_brokers;
        let hw = l.on_leader_append(node.log.leader_view(), now, |id| {
            brokers.get(&id).copied().unwrap_or_default()
        });
        if acks_all {
            node.pending_acks.push(PendingAck {
                required_offset: batch.next(),
                batch,
            });
        }
        if let Some(hw) = hw {
            self.apply_leader_hw(i, hw);
        }
        Ok(batch)
    }

    fn handle_fetch_response(
        &mut self,
        i: usize,
        req_id: u64,
        req: FetchPartitionRequest,
        result: Result<FetchData, ErrorCode>,
    ) {
        let now = self.now;
        let node = &mut self.nodes[i];
        if node.fetch_in_flight.map(|f| f.0) != Some(req_id) {
            return;
        }
        node.fetch_in_flight = None;
        let Role::Follower(f) = &mut node.role else {
            return;
        };
        if !f.is_current(&req) {
            return;
        }
        match result {
            Ok(FetchData::Records {
                batches,
                hw,
                log_start,
            }) => {
                if let Some(first) = batches.first() {
                    if first.base != node.log.leo() {
                        let view = node.log.follower_view();
                        match follower_append_restart_offset(first.base, first.next() - 1, &view) {
                            Some(start) => node.log.truncate_fully_and_start_at(start),
                            None => {
                                let msg = format!(
                                    "{i} got a batch at {} for its LEO {} (offsets would go backwards)",
                                    first.base,
                                    node.log.leo()
                                );
                                self.fail(&msg);
                            }
                        }
                    }
                }
                let got = !batches.is_empty();
                node.log.append_follower(&batches);
                let new_hw = follower_high_watermark(hw, node.log.log_start, node.log.leo());
                node.log.update_hw(new_hw);
                node.log.increment_log_start(log_start);
                if got {
                    f.on_appended(&node.log.follower_view());
                    node.next_fetch_at = now;
                } else {
                    node.next_fetch_at = now + FETCH_IDLE_MS;
                }
            }
            Ok(FetchData::Diverging {
                diverging,
                hw,
                log_start,
            }) => {
                self.stats.divergences += 1;
                let new_hw = follower_high_watermark(hw, node.log.log_start, node.log.leo());
                node.log.update_hw(new_hw);
                node.log.increment_log_start(log_start);
                let log = &node.log;
                let t = f
                    .on_diverging_epoch(diverging, &log.follower_view(), |e| log.end_offset_for(e));
                let before = node.log.leo();
                node.log.truncate_to(t.offset);
                f.on_truncated(&node.log.follower_view());
                node.next_fetch_at = now;
                self.stats.truncations += 1;
                self.log_event(format!(
                    "{i} diverges ({diverging:?}): truncates from {before} to {}",
                    t.offset
                ));
            }
            Err(e) => match f.on_fetch_error(&req, e) {
                FetchErrorAction::ResolveOutOfRange => {
                    self.stats.out_of_range += 1;
                    let req_id = self.next_id;
                    self.next_id += 1;
                    node.list_offsets_in_flight = Some((req_id, now, req));
                    let leader = usize::try_from(f.leader_id()).expect("id");
                    let leader_epoch = f.current_leader_epoch();
                    self.send(
                        i,
                        leader,
                        Msg::ListOffsets {
                            req_id,
                            leader_epoch,
                        },
                    );
                }
                FetchErrorAction::Backoff => node.next_fetch_at = now + FETCH_BACKOFF_MS,
                FetchErrorAction::Failed => {
                    self.log_event(format!(
                        "{i} fenced by its leader: failed until new metadata"
                    ));
                }
            },
        }
    }

    fn handle_list_offsets_response(
        &mut self,
        i: usize,
        req_id: u64,
        result: Result<(i64, i64), ErrorCode>,
    ) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let Some((id, _, req)) = node.list_offsets_in_flight else {
            return;
        };
        if id != req_id {
            return;
        }
        node.list_offsets_in_flight = None;
        let Role::Follower(f) = &mut node.role else {
            return;
        };
        if !f.is_current(&req) {
            return;
        }
        let Ok((start, end)) = result else {
            node.next_fetch_at = now + FETCH_BACKOFF_MS;
            return;
        };
        let action = f.on_offset_out_of_range(start, end, &node.log.follower_view());
        match action {
            OutOfRangeAction::TruncateTo(o) => node.log.truncate_to(o),
            OutOfRangeAction::TruncateFullyAndStartAt(o) => node.log.truncate_fully_and_start_at(o),
            OutOfRangeAction::FetchFrom(_) => {}
        }
        f.on_truncated(&node.log.follower_view());
        self.log_event(format!("{i} out of range: {action:?}"));
    }

    fn handle_alter_partition_response(
        &mut self,
        i: usize,
        req_id: u64,
        req: AlterPartitionRequest,
        result: Result<LeaderAndIsr, ErrorCode>,
    ) {
        let now = self.now;
        let node = &mut self.nodes[i];
        // Only the answer to the request in flight: one that timed out had its connection
        // closed.
        if node.alter_in_flight.as_ref().map(|a| a.0) != Some(req_id) {
            return;
        }
        node.alter_in_flight = None;
        let view = node.log.leader_view();
        let brokers = &node.meta_brokers;
        let Role::Leader(l) = &mut node.role else {
            return;
        };
        let outcome = l.on_alter_partition_response(&req, result.clone(), view, now, |id| {
            brokers.get(&id).copied().unwrap_or_default()
        });
        let isr = l.maximal_isr();
        self.log_event(format!(
            "{i} AlterPartition answer {result:?} for {:?}@{}: {outcome:?}, maximal ISR {isr:?}",
            req.change, req.partition_epoch
        ));
        match outcome {
            AlterPartitionOutcome::Committed {
                high_watermark: Some(hw),
            } => self.apply_leader_hw(i, hw),
            AlterPartitionOutcome::Retry(r) => {
                self.nodes[i].alter_queued = Some((r, now + FETCH_BACKOFF_MS));
            }
            _ => {}
        }
        self.complete_acks(i);
        self.maybe_send_alter_partition(i);
    }

    /// The broker's metadata publisher: apply a batch of records as one delta (Kafka
    /// publishes images, not each record), then `ReplicaManager.applyDelta`.
    fn apply_metadata(&mut self, i: usize, offset: usize, records: Vec<Record>) {
        let node = &mut self.nodes[i];
        node.meta_pull_sent_at = None;
        if offset != node.meta_offset || records.is_empty() {
            return;
        }
        node.meta_offset += records.len();
        let mut partition = None;
        for r in records {
            match r {
                Record::Broker(id, e) => {
                    node.meta_brokers.insert(id, e);
                }
                Record::Partition(p) => partition = Some(p),
            }
        }
        if let Some(p) = partition {
            self.apply_partition(i, p);
        }
    }

    fn apply_partition(&mut self, i: usize, state: PartitionState) {
        let now = self.now;
        let me = self.nodes[i].id;
        let config = LeaderConfig {
            broker_id: me,
            broker_epoch: self.nodes[i].broker_epoch.expect("registered"),
            min_insync_replicas: self.cfg.min_insync_replicas,
            replica_lag_time_max_ms: self.cfg.replica_lag_time_max_ms,
        };
        let node = &mut self.nodes[i];
        node.meta_partition = Some(state.clone());
        let view = node.log.leader_view();
        if state.leader == me {
            let brokers = &node.meta_brokers;
            let brokers = |id: i32| brokers.get(&id).copied().unwrap_or_default();
            match &mut node.role {
                Role::Leader(l) => match l.on_metadata(&state, view, now, brokers) {
                    MetadataOutcome::Stale | MetadataOutcome::NotLeader => {}
                    MetadataOutcome::Updated { high_watermark } => {
                        if let Some(hw) = high_watermark {
                            self.apply_leader_hw(i, hw);
                        }
                        self.complete_acks(i);
                    }
                    MetadataOutcome::NewLeaderEpoch {
                        epoch_start_offset,
                        high_watermark,
                    } => {
                        node.log
                            .assign_epoch(state.leader_epoch, epoch_start_offset);
                        self.log_event(format!("{i} leads again in epoch {}", state.leader_epoch));
                        if let Some(hw) = high_watermark {
                            self.apply_leader_hw(i, hw);
                        }
                        self.complete_acks(i);
                    }
                },
                _ => {
                    // makeLeader on a broker that did not lead.
                    node.log.assign_epoch(state.leader_epoch, node.log.leo());
                    let l = LeaderState::new(config, &state, node.log.leader_view(), now);
                    let hw = l.maybe_increment_high_watermark(node.log.leader_view(), now, brokers);
                    node.role = Role::Leader(l);
                    node.pending_acks.clear();
                    node.alter_in_flight = None;
                    node.alter_queued = None;
                    node.fetch_in_flight = None;
                    node.list_offsets_in_flight = None;
                    node.last_isr_check_at = now;
                    self.leader_hw[i] = None;
                    self.stats.elections += 1;
                    self.log_event(format!(
                        "{i} becomes leader in epoch {} (LEO {}, HW {})",
                        state.leader_epoch,
                        self.nodes[i].log.leo(),
                        self.nodes[i].log.hw
                    ));
                    // Property 1: a (clean) new leader holds every acknowledged record.
                    if state.leader_recovery_state == LeaderRecoveryState::Recovered {
                        self.check_has_acked(i, "became leader");
                    } else {
                        self.stats.unclean_elections += 1;
                    }
                    if let Some(hw) = hw {
                        self.apply_leader_hw(i, hw);
                    }
                }
            }
            return;
        }
        // Not (or no longer) the leader.
        if let Role::Leader(l) = &node.role {
            if state.partition_epoch < l.partition_epoch() {
                return;
            }
            // Parked acks=all produces fail with NOT_LEADER_OR_FOLLOWER.
            node.pending_acks.clear();
            self.leader_hw[i] = None;
            self.log_event(format!("{i} resigns (leader now {})", state.leader));
        }
        let node = &mut self.nodes[i];
        if let Role::Follower(f) = &node.role {
            if f.current_leader_epoch() == state.leader_epoch && f.leader_id() == state.leader {
                return;
            }
        }
        // makeFollower with a new leader epoch: restart fetching.
        let mut f = FollowerState::new(state.leader, state.leader_epoch, &node.log.follower_view());
        if let Some(t) = f.truncation_to_high_watermark() {
            node.log.truncate_to(t.offset);
            f.on_truncated(&node.log.follower_view());
        }
        node.role = Role::Follower(f);
        node.fetch_in_flight = None;
        node.list_offsets_in_flight = None;
        node.next_fetch_at = now;
        node.alter_in_flight = None;
        node.alter_queued = None;
    }

    // ----------------------------------------------------------------- checks

    /// Properties 1 and 4: node `i`'s log holds every acknowledged record (at or past its
    /// log start).
    pub fn check_has_acked(&self, i: usize, when: &str) {
        if !self.cfg.durability_checks {
            return;
        }
        let log = &self.nodes[i].log;
        for b in &self.acked {
            if b.base < log.log_start {
                continue;
            }
            match log.batch_at(b.base) {
                Some(got) if got == b => {}
                other => self.fail(&format!(
                    "node {i} {when} without acknowledged batch {b:?} (has {other:?}; log start {}, LEO {})",
                    log.log_start,
                    log.leo()
                )),
            }
        }
    }

    /// Property 2: any two replicas agree on every record below both high watermarks.
    pub fn check_logs_agree_below_hw(&self) {
        if !self.cfg.durability_checks {
            return;
        }
        for a in 0..self.n() {
            for b in a + 1..self.n() {
                let (la, lb) = (&self.nodes[a].log, &self.nodes[b].log);
                let from = la.log_start.max(lb.log_start);
                let to = la.hw.min(lb.hw);
                if from >= to {
                    continue;
                }
                if la.records(from, to) != lb.records(from, to) {
                    self.fail(&format!(
                        "replicas {a} and {b} diverge below their high watermarks [{from}, {to})"
                    ));
                }
            }
        }
    }

    /// Property 5: after healing, everyone converged.
    pub fn check_converged(&self) {
        let p = &self.ctrl.partition;
        if p.leader == NO_LEADER {
            self.fail("no leader after healing");
        }
        let mut isr = p.isr.clone();
        isr.sort_unstable();
        let mut all = p.replicas.clone();
        all.sort_unstable();
        if isr != all {
            self.fail(&format!("ISR {isr:?} after healing"));
        }
        let leader = usize::try_from(p.leader).expect("id");
        let want = &self.nodes[leader].log;
        if want.hw != want.leo() {
            self.fail(&format!("leader HW {} != LEO {}", want.hw, want.leo()));
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.up || n.leader().is_some() != (i == leader) {
                self.fail(&format!(
                    "node {i} not up or in the wrong role after healing"
                ));
            }
            let from = want.log_start.max(n.log.log_start);
            if n.log.leo() != want.leo()
                || n.log.hw != want.hw
                || n.log.records(from, want.leo()) != want.records(from, want.leo())
            {
                self.fail(&format!(
                    "node {i} did not converge: LEO {} HW {} vs leader LEO {} HW {}",
                    n.log.leo(),
                    n.log.hw,
                    want.leo(),
                    want.hw
                ));
            }
            self.check_has_acked(i, "after healing");
        }
        self.check_logs_agree_below_hw();
    }

    // ----------------------------------------------------------------- scripting helpers

    /// The controller elects `i` in a new leader epoch (a forced election, as the ZooKeeper
    /// controller did on every ISR change in Kafka's original epoch tests). `unclean`: the
    /// ISR becomes `{i}` and the partition RECOVERING.
    pub fn force_elect(&mut self, i: usize, unclean: bool) {
        let id = i32::try_from(i).expect("id");
        let p = &self.ctrl.partition;
        let (isr, recovery) = if unclean {
            (vec![id], LeaderRecoveryState::Recovering)
        } else {
            let mut isr = p.isr.clone();
            if !isr.contains(&id) {
                isr.push(id);
            }
            (isr, p.leader_recovery_state)
        };
        // A new leader epoch even for the same leader.
        self.ctrl.partition.leader = NO_LEADER;
        self.ctrl.change(id, isr, recovery);
        self.log_event(format!("forced election of {i}: {:?}", self.ctrl.partition));
    }

    /// A power loss on a stopped node: the last `records` offsets of its log were not
    /// flushed (the whole batch holding the cut goes, as recovery would drop it).
    pub fn lose_tail(&mut self, i: usize, records: i64) {
        assert!(!self.nodes[i].up, "power loss on a stopped node only");
        let log = &mut self.nodes[i].log;
        let to = (log.leo() - records).max(log.log_start);
        log.truncate_to(to);
        self.nodes[i].hw_checkpoint = self.nodes[i].log.hw;
    }

    /// The leader per the controller, if it is up and leads.
    pub fn leader(&self) -> Option<usize> {
        let l = usize::try_from(self.ctrl.partition.leader).ok()?;
        (self.nodes[l].up && self.nodes[l].leader().is_some()).then_some(l)
    }

    /// Produce to the current leader (waits for it to be known).
    pub fn produce(&mut self, count: i64, acks_all: bool) -> Result<Batch, ErrorCode> {
        for _ in 0..200 {
            if let Some(l) = self.leader() {
                return self.produce_to(l, count, acks_all);
            }
            self.run_for(10);
        }
        Err(ErrorCode::NotLeaderOrFollower)
    }

    /// The batches of node `i`: `(base, epoch, id)`.
    pub fn batches(&self, i: usize) -> Vec<(i64, i32, u64)> {
        self.nodes[i]
            .log
            .batches
            .iter()
            .map(|b| (b.base, b.epoch, b.id))
            .collect()
    }

    pub fn epochs(&self, i: usize) -> Vec<(i32, i64)> {
        self.nodes[i].log.epochs.clone()
    }
}

/// One random run: chaos for `chaos_ms`, then heal and let it converge for `heal_ms`.
pub fn run_random(seed: u64, cfg: SimConfig, chaos_ms: i64, heal_ms: i64) -> Stats {
    let mut c = Cluster::new(cfg, seed);
    c.run_for(300);
    c.chaos(chaos_ms);
    c.heal();
    c.run_for(heal_ms);
    c.check_converged();
    c.stats
}
