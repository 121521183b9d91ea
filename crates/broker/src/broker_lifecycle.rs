//! [`BrokerLifecycle`]: this broker's membership in the cluster (Kafka's
//! `BrokerLifecycleManager`): BrokerRegistration with a new incarnation id per process, then a
//! BrokerHeartbeat every `broker.heartbeat.interval.ms` reporting the metadata offset it has
//! applied; the controller unfences it once it has caught up to its own registration and fences
//! it when the heartbeats stop for `broker.session.timeout.ms`. A STALE_BROKER_EPOCH answer (the
//! controller lost the registration, e.g. after fencing it) leads to a new registration.
//! Controlled shutdown (SIGTERM): heartbeats ask `WantShutDown` until the controller has moved
//! this broker's leaderships away and answers `ShouldShutDown`.
//!
//! Requests go to this node's controller directly when it is the active one, otherwise over the
//! controller listener as the Kafka APIs BrokerRegistration (62) and BrokerHeartbeat (63).

use crate::controller::ControllerChannel;
use crate::metadata_follower::MetadataFollower;
use gregor_controller::heartbeat::{BrokerHeartbeatRequest, BrokerRegistrationRequest};
use gregor_controller::records::{BrokerFeature, Endpoint};
use gregor_controller::ControllerError;
use gregor_protocol::messages::broker_heartbeat_request::BrokerHeartbeatRequest as KafkaHeartbeat;
use gregor_protocol::messages::broker_registration_request::{
    BrokerRegistrationRequest as KafkaRegistration, Feature, Listener,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Per-request timeout of lifecycle RPCs.
const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka's `SecurityProtocol` id of a protocol name.
pub fn security_protocol_id(name: &str) -> i16 {
    match name {
        "SSL" => 1,
        "SASL_PLAINTEXT" => 2,
        "SASL_SSL" => 3,
        _ => 0,
    }
}

/// The controller-side form of a BrokerRegistration request.
pub fn registration_from_kafka(req: &KafkaRegistration) -> BrokerRegistrationRequest {
    BrokerRegistrationRequest {
        node_id: req.broker_id.0,
        cluster_id: req.cluster_id.to_string(),
        incarnation_id: req.incarnation_id,
        listeners: req
            .listeners
            .iter()
            .map(|l| Endpoint {
                name: l.name.to_string(),
                host: l.host.to_string(),
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        features: req
            .features
            .iter()
            .map(|f| BrokerFeature {
                name: f.name.to_string(),
                min_supported_version: f.min_supported_version,
                max_supported_version: f.max_supported_version,
            })
            .collect(),
        rack: req.rack.as_ref().map(|r| r.to_string()),
    }
}

/// The controller-side form of a BrokerHeartbeat request.
pub fn heartbeat_from_kafka(req: &KafkaHeartbeat) -> BrokerHeartbeatRequest {
    BrokerHeartbeatRequest {
        node_id: req.broker_id.0,
        broker_epoch: req.broker_epoch,
        current_metadata_offset: req.current_metadata_offset,
        want_fence: req.want_fence,
        want_shutdown: req.want_shut_down,
    }
}

/// What this broker registers.
#[derive(Debug, Clone)]
pub struct RegistrationInfo {
    /// `node.id`.
    pub node_id: i32,
    /// Advertised listeners: (name, host, port, security protocol).
    pub listeners: Vec<(String, String, u16, String)>,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// This broker's membership (see the module docs).
pub struct BrokerLifecycle {
    info: RegistrationInfo,
    incarnation: Uuid,
    channel: Arc<ControllerChannel>,
    follower: Arc<MetadataFollower>,
    epoch: AtomicI64,
    fenced: watch::Sender<bool>,
    want_shutdown: AtomicBool,
    should_shutdown: watch::Sender<bool>,
    interval: Duration,
}

impl std::fmt::Debug for BrokerLifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLifecycle")
            .field("node_id", &self.info.node_id)
            .field("epoch", &self.epoch.load(Ordering::Acquire))
            .finish()
    }
}

impl BrokerLifecycle {
    /// A broker that has not registered yet.
    pub fn new(
        info: RegistrationInfo,
        incarnation: Uuid,
        channel: Arc<ControllerChannel>,
        follower: Arc<MetadataFollower>,
        heartbeat_interval_ms: i64,
    ) -> BrokerLifecycle {
        BrokerLifecycle {
            info,
            incarnation,
            channel,
            follower,
            epoch: AtomicI64::new(-1),
            fenced: watch::channel(true).0,
            want_shutdown: AtomicBool::new(false),
            should_shutdown: watch::channel(false).0,
            interval: Duration::from_millis(heartbeat_interval_ms.max(10) as u64),
        }
    }

    /// The broker epoch (-1 before the first registration).
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// This process's incarnation id.
    pub fn incarnation(&self) -> Uuid {
        self.incarnation
    }

    fn kafka_registration(&self, cluster_id: &str) -> KafkaRegistration {
        KafkaRegistration::default()
            .with_broker_id(BrokerId(self.info.node_id))
            .with_cluster_id(StrBytes::from_string(cluster_id.to_string()))
            .with_incarnation_id(self.incarnation)
            .with_listeners(
                self.info
                    .listeners
                    .iter()
                    .map(|(name, host, port, proto)| {
                        Listener::default()
                            .with_name(StrBytes::from_string(name.clone()))
                            .with_host(StrBytes::from_string(host.clone()))
                            .with_port(*port)
                            .with_security_protocol(security_protocol_id(proto))
                    })
                    .collect(),
            )
            .with_features(vec![Feature::default()
                .with_name(StrBytes::from_static_str("metadata.version"))
                .with_min_supported_version(7)
                .with_max_supported_version(27)])
            .with_rack(self.info.rack.clone().map(StrBytes::from_string))
            .with_previous_broker_epoch(-1)
    }

    /// Registers (retrying until it succeeds or `shutdown`); returns the broker epoch.
    pub async fn register(&self, mut shutdown: watch::Receiver<bool>) -> Option<i64> {
        let mut attempt = 0u32;
        loop {
            // The cluster id: this node's meta.properties or, on a fresh node, the quorum's.
            let cluster_id = self.channel.cluster_id();
            if let Some(cluster_id) = cluster_id {
                let req = self.kafka_registration(&cluster_id);
                match self.call_registration(&req).await {
                    Ok(epoch) => {
                        self.epoch.store(epoch, Ordering::Release);
                        tracing::info!(
                            node_id = self.info.node_id,
                            broker_epoch = epoch,
                            incarnation = %self.incarnation,
                            "registered with the controller"
                        );
                        return Some(epoch);
                    }
                    Err(e) if attempt < 3 => {
                        tracing::info!(error = %e, "broker registration failed; retrying")
                    }
                    Err(e) => tracing::debug!(error = %e, "broker registration failed; retrying"),
                }
            }
            attempt += 1;
            let backoff = Duration::from_millis((20u64 << attempt.min(5)).min(1000));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return None,
            }
        }
    }

    async fn call_registration(&self, req: &KafkaRegistration) -> Result<i64, ControllerError> {
        if let Some(local) = self.channel.local().filter(|l| l.is_active()) {
            return local.register_broker(&registration_from_kafka(req)).await;
        }
        let (id, addr) = self
            .channel
            .controller_target()
            .ok_or_else(|| ControllerError::new(ErrorCode::NotController, "no controller known"))?;
        let channel = self.channel.pool().channel(id, &addr);
        let (_, resp) = channel
            .call_auto((0, 4), RPC_TIMEOUT, |_| req.clone())
            .await
            .map_err(|e| {
                self.channel.forget_leader();
                ControllerError::new(ErrorCode::NotController, e.to_string())
            })?;
        match ErrorCode::from_code(resp.error_code) {
            Some(ErrorCode::None) => Ok(resp.broker_epoch),
            other => {
                let code = other.unwrap_or(ErrorCode::UnknownServerError);
                if code == ErrorCode::NotController {
                    self.channel.forget_leader();
                }
                Err(ControllerError::of(code))
            }
        }
    }

    async fn call_heartbeat(
        &self,
        req: &KafkaHeartbeat,
    ) -> Result<(bool, bool, bool), ControllerError> {
        if let Some(local) = self.channel.local().filter(|l| l.is_active()) {
            let r = local.heartbeat(&heartbeat_from_kafka(req)).await?;
            return Ok((r.is_caught_up, r.is_fenced, r.should_shutdown));
        }
        let (id, addr) = self
            .channel
            .controller_target()
            .ok_or_else(|| ControllerError::new(ErrorCode::NotController, "no controller known"))?;
        let channel = self.channel.pool().channel(id, &addr);
        let (_, resp) = channel
            .call_auto((0, 1), RPC_TIMEOUT, |_| req.clone())
            .await
            .map_err(|e| {
                self.channel.forget_leader();
                ControllerError::new(ErrorCode::NotController, e.to_string())
            })?;
        match ErrorCode::from_code(resp.error_code) {
            Some(ErrorCode::None) => Ok((resp.is_caught_up, resp.is_fenced, resp.should_shut_down)),
            other => {
                let code = other.unwrap_or(ErrorCode::UnknownServerError);
                if code == ErrorCode::NotController {
                    self.channel.forget_leader();
                }
                Err(ControllerError::of(code))
            }
        }
    }

    /// One heartbeat; re-registers on STALE_BROKER_EPOCH.
    async fn heartbeat_once(&self, shutdown: &watch::Receiver<bool>) {
        let req = KafkaHeartbeat::default()
            .with_broker_id(BrokerId(self.info.node_id))
            .with_broker_epoch(self.epoch())
            .with_current_metadata_offset(self.follower.offset())
            .with_want_fence(false)
            .with_want_shut_down(self.want_shutdown.load(Ordering::Acquire));
        match self.call_heartbeat(&req).await {
            Ok((caught_up, fenced, should_shutdown)) => {
                if self.fenced.send_replace(fenced) != fenced {
                    tracing::info!(
                        node_id = self.info.node_id,
                        fenced,
                        caught_up,
                        "broker {}",
                        if fenced { "fenced" } else { "unfenced" }
                    );
                }
                if should_shutdown {
                    self.should_shutdown.send_replace(true);
                }
            }
            Err(e) if e.code == ErrorCode::StaleBrokerEpoch => {
                tracing::warn!(
                    node_id = self.info.node_id,
                    "the controller does not know this broker epoch any more: registering again"
                );
                self.fenced.send_replace(true);
                let _ = self.register(shutdown.clone()).await;
            }
            Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
        }
    }

    /// Registers if needed, then heartbeats until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.epoch() < 0 && self.register(shutdown.clone()).await.is_none() {
            return;
        }
        let mut fenced_wait = Duration::from_millis(5);
        loop {
            self.heartbeat_once(&shutdown).await;
            let wait = if *self.fenced.borrow() {
                // Unfencing needs a heartbeat after this broker has applied its own
                // registration: wait for that, then heartbeat again soon (backing off).
                tokio::select! {
                    _ = self.follower.wait_for(self.epoch(), self.interval) => {}
                    _ = shutdown.changed() => return,
                }
                fenced_wait = (fenced_wait * 2).min(self.interval);
                fenced_wait / 2
            } else {
                fenced_wait = Duration::from_millis(5);
                self.interval
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Waits until the controller has unfenced this broker; false on timeout.
    pub async fn wait_unfenced(&self, timeout: Duration) -> bool {
        let mut rx = self.fenced.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|f| !*f))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether the controller considers this broker fenced (as of the last heartbeat).
    pub fn is_fenced(&self) -> bool {
        *self.fenced.borrow()
    }

    /// Controlled shutdown: ask the controller to move this broker's leaderships away and wait
    /// until it agrees (or `timeout`). Heartbeats keep running meanwhile.
    pub async fn controlled_shutdown(&self, timeout: Duration) -> bool {
        if self.epoch() < 0 {
            return true;
        }
        self.want_shutdown.store(true, Ordering::Release);
        let mut rx = self.should_shutdown.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let never = watch::channel(false).1;
        while tokio::time::Instant::now() < deadline {
            self.heartbeat_once(&never).await;
            if *rx.borrow_and_update() {
                tracing::info!(node_id = self.info.node_id, "controlled shutdown complete");
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(node_id = self.info.node_id, "controlled shutdown timed out");
        false
    }
}
