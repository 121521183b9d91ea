//! [`MetadataFollower`]: how a broker follows the metadata log (Kafka's broker-side
//! `MetadataLoader` + `BrokerMetadataPublisher`).
//!
//! The broker keeps its own `ClusterState`, replayed from the committed entries, and publishes
//! it whole after each batch of entries: first to the [`MetadataCache`] (what handlers read),
//! then to the [`MetadataListener`]s in order (the replica manager opens and deletes logs and
//! changes partition roles; through it the coordinators load and unload). A follower that fell
//! behind the journal gets a snapshot instead.
//!
//! The entries come from a [`MetadataSource`]: the local controller's log on a controller node
//! (and on a single node), or a controller reached with Gregor's private `FETCH_METADATA` API
//! (a long poll) on a broker-only node. [`MetadataFollower::wait_for`] lets a caller wait until
//! its own write is visible here (e.g. CreateTopics answers once the topic can be produced to).

use crate::metadata_cache::{MetadataCache, MetadataListener};
use crate::metadata_log::{Delta, Entry, MetadataLog};
use crate::rpc_client::{ChannelConfig, ChannelPool};
use gregor_controller::{ClusterState, MetadataRecord};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where committed metadata comes from.
#[derive(Debug, Clone)]
pub enum MetadataSource {
    /// This node's controller.
    Local(Arc<MetadataLog>),
    /// Controllers reached over the network (`host:port` of controller listeners).
    Remote(Vec<String>),
}

/// A `FETCH_METADATA` request: entries after `from`, waiting up to `max_wait_ms` for some.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct FetchMetadataRequest {
    /// The follower's offset (-1: nothing yet).
    pub from: i64,
    /// Long-poll bound.
    pub max_wait_ms: u64,
}

/// A `FETCH_METADATA` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FetchMetadataResponse {
    /// Entries after the request's offset: (offset, records).
    Entries(Vec<(i64, Vec<MetadataRecord>)>),
    /// The whole state at `offset`.
    Snapshot {
        /// Offset.
        offset: i64,
        /// Records.
        records: Vec<MetadataRecord>,
    },
}

impl From<Delta> for FetchMetadataResponse {
    fn from(d: Delta) -> Self {
        match d {
            Delta::Entries(entries) => FetchMetadataResponse::Entries(
                entries
                    .into_iter()
                    .map(|e| (e.offset, e.records.as_ref().clone()))
                    .collect(),
            ),
            Delta::Snapshot { offset, records } => FetchMetadataResponse::Snapshot {
                offset,
                records: records.as_ref().clone(),
            },
        }
    }
}

impl From<FetchMetadataResponse> for Delta {
    fn from(r: FetchMetadataResponse) -> Self {
        match r {
            FetchMetadataResponse::Entries(entries) => Delta::Entries(
                entries
                    .into_iter()
                    .map(|(offset, records)| Entry {
                        offset,
                        records: Arc::new(records),
                    })
                    .collect(),
            ),
            FetchMetadataResponse::Snapshot { offset, records } => Delta::Snapshot {
                offset,
                records: Arc::new(records),
            },
        }
    }
}

/// Serves a `FETCH_METADATA` long poll from a controller's log.
pub async fn serve_fetch(log: &MetadataLog, req: FetchMetadataRequest) -> FetchMetadataResponse {
    let mut applied = log.subscribe();
    let wait = Duration::from_millis(req.max_wait_ms.min(30_000));
    let _ = tokio::time::timeout(wait, applied.wait_for(|o| *o > req.from)).await;
    log.read_since(req.from).into()
}

/// The broker's view of the metadata log (see the module docs).
pub struct MetadataFollower {
    state: Mutex<ClusterState>,
    offset: watch::Sender<i64>,
    cache: Arc<MetadataCache>,
    listeners: RwLock<Vec<Arc<dyn MetadataListener>>>,
}

impl std::fmt::Debug for MetadataFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataFollower")
            .field("offset", &*self.offset.borrow())
            .finish()
    }
}

impl MetadataFollower {
    /// A follower that has applied nothing yet.
    pub fn new(cache: Arc<MetadataCache>) -> MetadataFollower {
        let (offset, _) = watch::channel(-1);
        MetadataFollower {
            state: Mutex::new(ClusterState::default()),
            offset,
            cache,
            listeners: RwLock::new(Vec::new()),
        }
    }

    /// Adds a listener (called after the metadata cache, in registration order).
    pub fn add_listener(&self, listener: Arc<dyn MetadataListener>) {
        self.listeners.write().push(listener);
    }

    /// The offset of the last applied entry (-1: none).
    pub fn offset(&self) -> i64 {
        *self.offset.borrow()
    }

    /// A watch of the applied offset.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.offset.subscribe()
    }

    /// Waits until entries up to `offset` are applied; false on timeout.
    pub async fn wait_for(&self, offset: i64, timeout: Duration) -> bool {
        let mut rx = self.offset.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|o| *o >= offset))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Applies a delta and publishes the new image. Blocking: the listeners open and delete
    /// partition logs.
    pub fn apply(&self, delta: Delta) {
        let (image, offset) = {
            let mut state = self.state.lock();
            let offset = match delta {
                Delta::Entries(entries) => {
                    let Some(last) = entries.last().map(|e| e.offset) else {
                        return;
                    };
                    for e in &entries {
                        for r in e.records.iter() {
                            state.replay(e.offset, r);
                        }
                    }
                    last
                }
                Delta::Snapshot { offset, records } => {
                    let mut fresh = ClusterState::default();
                    for r in records.iter() {
                        fresh.replay(offset, r);
                    }
                    *state = fresh;
                    offset
                }
            };
            (Arc::new(state.clone()), offset)
        };
        self.cache.publish(image.clone());
        for l in self.listeners.read().iter() {
            l.on_metadata(&image);
        }
        self.offset.send_replace(offset);
    }

    /// Follows `source` until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        source: MetadataSource,
        client_id: String,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let pool = ChannelPool::new(ChannelConfig::new(client_id));
        let mut next_controller = 0usize;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let from = self.offset();
            let delta = match &source {
                MetadataSource::Local(log) => {
                    let mut applied = log.subscribe();
                    tokio::select! {
                        _ = applied.wait_for(|o| *o > from) => {}
                        _ = shutdown.changed() => return,
                    }
                    log.read_since(from)
                }
                MetadataSource::Remote(controllers) => {
                    if controllers.is_empty() {
                        return;
                    }
                    let addr = &controllers[next_controller % controllers.len()];
                    let channel = pool.channel(next_controller as i32, addr);
                    let req = FetchMetadataRequest {
                        from,
                        max_wait_ms: 500,
                    };
                    let body = bytes::Bytes::from(serde_json::to_vec(&req).unwrap_or_default());
                    let answer = tokio::select! {
                        r = channel.call_raw(gregor_protocol::internal::FETCH_METADATA, 0, body, Duration::from_secs(10)) => r,
                        _ = shutdown.changed() => return,
                    };
                    match answer.map_err(|e| e.to_string()).and_then(|b| {
                        serde_json::from_slice::<FetchMetadataResponse>(&b)
                            .map_err(|e| e.to_string())
                    }) {
                        Ok(r) => r.into(),
                        Err(e) => {
                            tracing::debug!(controller = %addr, error = %e, "metadata fetch failed; trying another controller");
                            next_controller += 1;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    }
                }
            };
            let this = self.clone();
            let applied = tokio::task::spawn_blocking(move || this.apply(delta)).await;
            if let Err(e) = applied {
                tracing::error!(error = %e, "applying metadata failed");
            }
        }
    }
}
