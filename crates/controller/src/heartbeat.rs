//! [`BrokerHeartbeatManager`]: the active controller's soft, non-replicated broker state
//! (Kafka's `BrokerHeartbeatManager`: last contact, reported metadata offset, fenced as far as
//! the sessions go, controlled shutdown progress), and the commands that need it:
//! BrokerRegistration (Kafka's `ClusterControlManager.registerBroker`), BrokerHeartbeat
//! (`ReplicationControlManager.processBrokerHeartbeat`) and session expiry
//! (`maybeFenceOneStaleBroker`).
//!
//! Sessions are kept per (broker id, broker epoch), as Kafka 4's `BrokerHeartbeatTracker`: a
//! heartbeat with the current epoch renews its session, fenced or not; a session not renewed
//! within `broker.session.timeout.ms` expires, and fences the broker if that registration is
//! still unfenced.
//!
//! Only the active controller has one. A controller that becomes active builds a fresh one
//! and calls [`BrokerHeartbeatManager::activate`]: every unfenced broker then gets a full
//! session from that moment, as in Kafka. Time is passed in (milliseconds of a monotonic
//! clock); nothing here reads a clock.

use crate::error::ControllerError;
use crate::records::{BrokerFeature, Endpoint, MetadataRecord};
use crate::replication::CommandResult;
use crate::state::ClusterState;
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Kafka's default `broker.session.timeout.ms`.
pub const DEFAULT_SESSION_TIMEOUT_MS: i64 = 9000;

/// A BrokerRegistration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    /// `node.id`.
    pub node_id: i32,
    /// The cluster id the broker belongs to.
    pub cluster_id: String,
    /// A new UUID per broker process.
    pub incarnation_id: Uuid,
    /// Listeners.
    pub listeners: Vec<Endpoint>,
    /// Supported features (recorded; no feature level is finalized yet, so none is refused).
    pub features: Vec<BrokerFeature>,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// The reply to [`BrokerHeartbeatManager::register_broker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerRegistrationReply {
    /// `Some(epoch)` when the registration amends the current incarnation (the epoch is
    /// kept); `None` for a new incarnation, whose epoch is the offset at which the returned
    /// `RegisterBroker` record commits (read it with [`ClusterState::broker`] after replay).
    pub broker_epoch: Option<i64>,
}

/// A BrokerHeartbeat request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerHeartbeatRequest {
    /// `node.id`.
    pub node_id: i32,
    /// The broker's epoch.
    pub broker_epoch: i64,
    /// Offset of the last metadata record the broker replayed.
    pub current_metadata_offset: i64,
    /// The broker asks to be (or stay) fenced, e.g. while it recovers its logs.
    pub want_fence: bool,
    /// The broker asks for a controlled shutdown.
    pub want_shutdown: bool,
}

/// The reply to [`BrokerHeartbeatManager::heartbeat`] (Kafka's `BrokerHeartbeatReply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatReply {
    /// The broker has replayed its own registration.
    pub is_caught_up: bool,
    /// The broker is fenced.
    pub is_fenced: bool,
    /// The broker is in controlled shutdown.
    pub in_controlled_shutdown: bool,
    /// The broker may stop now.
    pub should_shutdown: bool,
}

/// Kafka's `BrokerControlState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerControlState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl BrokerControlState {
    fn fenced(self) -> bool {
        matches!(
            self,
            BrokerControlState::Fenced | BrokerControlState::ShutdownNow
        )
    }
}

/// One broker's soft control state (Kafka's `BrokerHeartbeatState`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HeartbeatState {
    metadata_offset: i64,
    fenced: bool,
    /// Controlled shutdown granted (Kafka: `controlledShutdownOffset >= 0`).
    shutting_down: bool,
    /// Once it leads nothing: an offset at or after the records that moved its leaderships;
    /// it may stop when every active broker has replayed that far.
    shutdown_offset: Option<i64>,
}

/// The active controller's broker sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerHeartbeatManager {
    session_timeout_ms: i64,
    /// (node id, broker epoch) -> last contact (Kafka's `BrokerHeartbeatTracker`).
    sessions: BTreeMap<(i32, i64), i64>,
    brokers: BTreeMap<i32, HeartbeatState>,
}

impl BrokerHeartbeatManager {
    /// A manager with no session, for `broker.session.timeout.ms = session_timeout_ms`.
    pub fn new(session_timeout_ms: i64) -> BrokerHeartbeatManager {
        BrokerHeartbeatManager {
            session_timeout_ms,
            sessions: BTreeMap::new(),
            brokers: BTreeMap::new(),
        }
    }

    /// The session timeout.
    pub fn session_timeout_ms(&self) -> i64 {
        self.session_timeout_ms
    }

    /// Kafka's `ClusterControlManager.activate`: on becoming the active controller, every
    /// registered broker is tracked as registered, and every unfenced one gets a session
    /// starting `now_ms`.
    pub fn activate(&mut self, state: &ClusterState, now_ms: i64) {
        self.sessions.clear();
        self.brokers.clear();
        for b in state.brokers() {
            self.register(b.node_id, b.fenced);
            if !b.fenced {
                self.sessions.insert((b.node_id, b.epoch), now_ms);
            }
        }
    }

    /// Ends a registration's session at once, when the active controller knows that
    /// incarnation is gone (Gregor: a combined node's controller just started, so the broker of
    /// its previous process is dead); a new incarnation may then register without waiting for
    /// the session to expire, and the old one is fenced by that registration.
    pub fn end_session(&mut self, node_id: i32, broker_epoch: i64) {
        self.sessions.remove(&(node_id, broker_epoch));
    }

    /// Kafka's `touch`: the broker's fencing and reported offset.
    fn touch(&mut self, node_id: i32, fenced: bool, metadata_offset: i64) {
        let s = self.brokers.entry(node_id).or_insert(HeartbeatState {
            metadata_offset: -1,
            fenced,
            shutting_down: false,
            shutdown_offset: None,
        });
        s.metadata_offset = metadata_offset;
        s.fenced = fenced;
        if fenced {
            // A fenced broker leaves controlled shutdown; its next heartbeat stops it at once.
            s.shutting_down = false;
            s.shutdown_offset = None;
        }
    }

    /// Kafka's `register`: track the broker, with the given fencing.
    fn register(&mut self, node_id: i32, fenced: bool) {
        let offset = match self.brokers.get(&node_id) {
            Some(s) if s.fenced != fenced => s.metadata_offset,
            _ => -1,
        };
        self.touch(node_id, fenced, offset);
    }

    fn is_expired(&self, last_contact_ms: i64, now_ms: i64) -> bool {
        now_ms > last_contact_ms && last_contact_ms.saturating_add(self.session_timeout_ms) < now_ms
    }

    /// Whether this registration (broker id and epoch) was heard from within the session
    /// timeout.
    pub fn has_valid_session(&self, node_id: i32, broker_epoch: i64, now_ms: i64) -> bool {
        self.sessions
            .get(&(node_id, broker_epoch))
            .is_some_and(|t| !self.is_expired(*t, now_ms))
    }

    /// The last time this registration was heard from.
    pub fn last_contact_ms(&self, node_id: i32, broker_epoch: i64) -> Option<i64> {
        self.sessions.get(&(node_id, broker_epoch)).copied()
    }

    /// When the next session may expire (`None`: no session).
    pub fn next_check_ms(&self) -> Option<i64> {
        self.sessions
            .values()
            .map(|t| t.saturating_add(self.session_timeout_ms))
            .min()
    }

    /// Lowest metadata offset reported by an active (unfenced, not shutting down) broker.
    fn lowest_active_offset(&self) -> i64 {
        self.brokers
            .values()
            .filter(|s| !s.fenced && !s.shutting_down)
            .map(|s| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Kafka's `ClusterControlManager.registerBroker`. INCONSISTENT_CLUSTER_ID for another
    /// cluster's broker; DUPLICATE_BROKER_REGISTRATION while another incarnation of the id
    /// has a live session. The same incarnation amends its registration (same epoch, fencing
    /// and shutdown state); a new incarnation gets a new epoch and starts fenced. If the old
    /// incarnation is still unfenced (its session expired but [`fence_expired`] has not run
    /// yet), it is fenced first, in the same records.
    ///
    /// [`fence_expired`]: BrokerHeartbeatManager::fence_expired
    pub fn register_broker(
        &mut self,
        state: &ClusterState,
        req: &BrokerRegistrationRequest,
        now_ms: i64,
    ) -> CommandResult<BrokerRegistrationReply> {
        if let Some(current) = state.cluster_id() {
            if current != req.cluster_id {
                return Err(ControllerError::new(
                    ErrorCode::InconsistentClusterId,
                    format!(
                        "Expected cluster ID {current}, but got cluster ID {}",
                        req.cluster_id
                    ),
                ));
            }
        }
        let node_id = req.node_id;
        let existing = state.broker(node_id);
        let mut records = Vec::new();
        if let Some(e) = existing {
            if e.incarnation_id != req.incarnation_id {
                if self.has_valid_session(node_id, e.epoch, now_ms) {
                    return Err(ControllerError::new(
                        ErrorCode::DuplicateBrokerRegistration,
                        "Another broker is registered with that broker id. If the broker was recently restarted this should self-resolve once the heartbeat manager expires the broker's session.",
                    ));
                }
                self.brokers.remove(&node_id);
                self.sessions.retain(|(n, _), _| *n != node_id);
                if !e.fenced {
                    records.extend(state.handle_broker_fenced(node_id));
                }
            }
        }
        let amended = existing.filter(|e| e.incarnation_id == req.incarnation_id);
        let fenced = amended.is_none_or(|e| e.fenced);
        records.push(MetadataRecord::RegisterBroker {
            node_id,
            host: None,
            port: None,
            rack: req.rack.clone(),
            incarnation_id: req.incarnation_id,
            broker_epoch: amended.map(|e| e.epoch),
            registration_offset: None,
            endpoints: req.listeners.clone(),
            features: req.features.clone(),
            fenced,
            in_controlled_shutdown: amended.is_some_and(|e| e.in_controlled_shutdown),
        });
        self.register(node_id, fenced);
        Ok((
            records,
            BrokerRegistrationReply {
                broker_epoch: amended.map(|e| e.epoch),
            },
        ))
    }

    /// Kafka's `calculateNextBrokerState`.
    fn next_state(
        &mut self,
        state: &ClusterState,
        req: &BrokerHeartbeatRequest,
        registration_offset: i64,
    ) -> (BrokerControlState, BrokerControlState) {
        use BrokerControlState::*;
        let node_id = req.node_id;
        let soft = self.brokers.get(&node_id).expect("touched");
        let current = if soft.shutting_down {
            ControlledShutdown
        } else if soft.fenced {
            Fenced
        } else {
            Unfenced
        };
        let next = match current {
            Fenced => {
                if req.want_shutdown {
                    ShutdownNow
                } else if !req.want_fence && req.current_metadata_offset >= registration_offset {
                    Unfenced
                } else {
                    Fenced
                }
            }
            Unfenced => {
                if req.want_fence {
                    if req.want_shutdown {
                        ShutdownNow
                    } else {
                        Fenced
                    }
                } else if req.want_shutdown {
                    if state.has_leaderships(node_id) {
                        ControlledShutdown
                    } else {
                        ShutdownNow
                    }
                } else {
                    Unfenced
                }
            }
            ControlledShutdown | ShutdownNow => {
                if state.has_leaderships(node_id) {
                    ControlledShutdown
                } else {
                    let lowest = self.lowest_active_offset();
                    let s = self.brokers.get_mut(&node_id).expect("touched");
                    let shutdown_offset = *s.shutdown_offset.get_or_insert(state.last_offset());
                    if shutdown_offset <= lowest {
                        ShutdownNow
                    } else {
                        ControlledShutdown
                    }
                }
            }
        };
        (current, next)
    }

    /// Kafka's `processBrokerHeartbeat`: STALE_BROKER_EPOCH for an unregistered broker or a
    /// wrong epoch; otherwise refreshes the session and moves the broker between fenced,
    /// unfenced (once caught up with its registration, electing leaders for the leaderless
    /// partitions it can lead), controlled shutdown (leaving every ISR and leadership) and
    /// shutdown (fenced). `should_shutdown` comes once it leads nothing and every active
    /// broker has replayed past the leadership moves.
    pub fn heartbeat(
        &mut self,
        state: &ClusterState,
        req: &BrokerHeartbeatRequest,
        now_ms: i64,
    ) -> CommandResult<HeartbeatReply> {
        let node_id = req.node_id;
        let Some(reg) = state.broker(node_id) else {
            return Err(ControllerError::stale_broker_epoch(format!(
                "Receive a heartbeat from broker {node_id} before registration"
            )));
        };
        state.check_broker_epoch(node_id, req.broker_epoch)?;
        let registration_offset = reg.registration_offset;
        self.sessions.insert((node_id, reg.epoch), now_ms);
        if !self.brokers.contains_key(&node_id) {
            self.register(node_id, reg.fenced);
        }
        let (current, next) = self.next_state(state, req, registration_offset);
        let mut records = Vec::new();
        if current != next {
            match next {
                BrokerControlState::Fenced | BrokerControlState::ShutdownNow => {
                    records = state.handle_broker_fenced(node_id)
                }
                BrokerControlState::Unfenced => {
                    records = state.handle_broker_unfenced(node_id, reg.epoch)
                }
                BrokerControlState::ControlledShutdown => {
                    records = state.handle_broker_in_controlled_shutdown(node_id, reg.epoch)
                }
            }
        }
        self.touch(node_id, next.fenced(), req.current_metadata_offset);
        if next == BrokerControlState::ControlledShutdown {
            if let Some(s) = self.brokers.get_mut(&node_id) {
                s.shutting_down = true;
            }
        }
        Ok((
            records,
            HeartbeatReply {
                is_caught_up: req.current_metadata_offset >= registration_offset,
                is_fenced: next.fenced(),
                in_controlled_shutdown: next == BrokerControlState::ControlledShutdown,
                should_shutdown: next == BrokerControlState::ShutdownNow,
            },
        ))
    }

    /// Kafka's `maybeFenceOneStaleBroker`: removes expired sessions, oldest first, until one
    /// belongs to a registration that is still unfenced, and fences that broker (the records
    /// of `handleBrokerFenced`); no record when no such session expired. One broker per call,
    /// so that each fencing is computed against a state that includes the previous one:
    /// replay the records, then call again until it returns `None`.
    pub fn fence_expired(
        &mut self,
        state: &ClusterState,
        now_ms: i64,
    ) -> (Vec<MetadataRecord>, Option<i32>) {
        loop {
            let expired = self
                .sessions
                .iter()
                .filter(|(_, t)| self.is_expired(**t, now_ms))
                .min_by_key(|(key, t)| (**t, **key))
                .map(|(key, _)| *key);
            let Some((node_id, epoch)) = expired else {
                return (vec![], None);
            };
            self.sessions.remove(&(node_id, epoch));
            match state.broker(node_id) {
                Some(b) if b.epoch == epoch && !b.fenced => {
                    if let Some(s) = self.brokers.get_mut(&node_id) {
                        s.fenced = true;
                    }
                    return (state.handle_broker_fenced(node_id), Some(node_id));
                }
                Some(_) => {}
                None => {
                    self.brokers.remove(&node_id);
                }
            }
        }
    }
}
