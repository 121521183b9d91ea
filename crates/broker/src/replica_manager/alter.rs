//! ISR changes on their way to the controller (Kafka's `AlterPartitionManager`): leaders queue
//! the AlterPartition requests their `LeaderState` produces; one task sends them, batched, with
//! **one request in flight** over one ordered connection, and hands each partition's answer
//! back to its leader state. A newer request for a partition replaces a queued older one; after
//! a lost request (timeout, disconnection) a partition is resent only while its leader state
//! still has that very request pending — the ordering rules the replication crate's simulation
//! showed necessary.
//!
//! How requests reach the active controller is the [`ControllerLink`] the composition root
//! installs (this node's controller directly, or AlterPartition over the controller listener).

use super::{Partition, ReplicaManager};
use gregor_protocol::ErrorCode;
use gregor_replication::{AlterPartitionRequest, LeaderAndIsr};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

/// One partition's ISR change, addressed for the controller.
#[derive(Debug, Clone)]
pub struct AlterItem {
    /// Topic id.
    pub topic_id: Uuid,
    /// Partition index.
    pub partition: i32,
    /// The change.
    pub request: AlterPartitionRequest,
}

/// The answers to a batch of [`AlterItem`]s, in order; `Err` when the request got no answer.
pub type AlterAnswers = Result<Vec<Result<LeaderAndIsr, ErrorCode>>, String>;

/// How AlterPartition reaches the active controller.
pub trait ControllerLink: Send + Sync {
    /// Sends the items as one AlterPartition request from this broker (`broker_id`,
    /// `broker_epoch`); answers per item, in order.
    fn alter_partition<'a>(
        &'a self,
        broker_id: i32,
        broker_epoch: i64,
        items: &'a [AlterItem],
    ) -> Pin<Box<dyn Future<Output = AlterAnswers> + Send + 'a>>;
}

type Queue = BTreeMap<(Uuid, i32), (Arc<Partition>, AlterPartitionRequest)>;

/// The queue and its sender task.
pub struct AlterPartitionManager {
    rm: Weak<ReplicaManager>,
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    link: OnceLock<Arc<dyn ControllerLink>>,
    started: std::sync::Once,
}

impl std::fmt::Debug for AlterPartitionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlterPartitionManager")
            .field("queued", &self.queue.lock().len())
            .finish()
    }
}

impl AlterPartitionManager {
    /// An empty queue (the task starts with the first request).
    pub fn new(rm: Weak<ReplicaManager>) -> AlterPartitionManager {
        AlterPartitionManager {
            rm,
            queue: Arc::new(Mutex::new(BTreeMap::new())),
            wake: Arc::new(Notify::new()),
            link: OnceLock::new(),
            started: std::sync::Once::new(),
        }
    }

    /// Installs the controller link.
    pub fn set_link(&self, link: Arc<dyn ControllerLink>) {
        let _ = self.link.set(link);
        self.wake.notify_one();
    }

    /// Queues a partition's request (replacing an older queued one).
    pub(super) fn send(&self, part: &Partition, request: AlterPartitionRequest) {
        let Some(rm) = self.rm.upgrade() else {
            return;
        };
        let Some(arc) = rm.partition(&part.topic, part.index) else {
            return;
        };
        self.queue
            .lock()
            .insert((part.topic_id, part.index), (arc, request));
        self.started.call_once(|| {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(run(self.rm.clone(), self.queue.clone(), self.wake.clone()));
            }
        });
        self.wake.notify_one();
    }

    fn link(&self) -> Option<Arc<dyn ControllerLink>> {
        self.link.get().cloned()
    }
}

/// Sends queued requests, one batch in flight, until the replica manager is gone.
async fn run(rm: Weak<ReplicaManager>, queue: Arc<Mutex<Queue>>, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let batch: Vec<(Arc<Partition>, AlterPartitionRequest)> = {
            let mut q = queue.lock();
            std::mem::take(&mut *q).into_values().collect()
        };
        if batch.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if rm.strong_count() == 0 {
                return;
            }
            continue;
        }
        let Some(manager) = rm.upgrade() else {
            return;
        };
        let Some(link) = manager.alter.link() else {
            // No controller link yet (starting up): keep the requests.
            requeue(&queue, batch);
            drop(manager);
            tokio::time::sleep(backoff).await;
            continue;
        };
        let items: Vec<AlterItem> = batch
            .iter()
            .map(|(p, req)| AlterItem {
                topic_id: p.topic_id,
                partition: p.index,
                request: req.clone(),
            })
            .collect();
        let broker_epoch = manager.broker_epoch();
        let answers = link
            .alter_partition(manager.node_id, broker_epoch, &items)
            .await;
        match answers {
            Ok(results) => {
                backoff = Duration::from_millis(50);
                let mut retry = Vec::new();
                for ((p, sent), result) in batch.into_iter().zip(results) {
                    if let Some(again) = manager.on_alter_partition_response(&p, &sent, result) {
                        retry.push((p, again));
                    }
                }
                if !retry.is_empty() {
                    requeue(&queue, retry);
                    drop(manager);
                    tokio::time::sleep(backoff).await;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "AlterPartition got no answer; resending what is still pending");
                let still: Vec<_> = batch
                    .into_iter()
                    .filter(|(p, sent)| manager.pending_alter(p).as_ref() == Some(sent))
                    .collect();
                requeue(&queue, still);
                drop(manager);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Puts requests back; never over a newer one queued meanwhile (Kafka's `putIfAbsent`).
fn requeue(queue: &Mutex<Queue>, items: Vec<(Arc<Partition>, AlterPartitionRequest)>) {
    let mut q = queue.lock();
    for (p, req) in items {
        q.entry((p.topic_id, p.index)).or_insert((p, req));
    }
}
