//! [`MemNetwork`]: an in-process [`Transport`] for tests, with partitions.
//!
//! Every member registers its [`Quorum`]; a call goes straight to the target's
//! [`Quorum::handle_rpc`]. Links can be cut (both directions or one), and a node that is not
//! registered (never started, or "crashed") is unreachable.

use crate::error::TransportError;
use crate::quorum::Quorum;
use crate::types::NodeId;
use crate::Transport;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A registry of in-process quorum members and the links between them.
#[derive(Clone, Default)]
pub struct MemNetwork {
    inner: Arc<MemInner>,
}

#[derive(Default)]
struct MemInner {
    nodes: Mutex<BTreeMap<NodeId, Quorum>>,
    /// Directed links that drop messages: `(from, to)`.
    cut: Mutex<BTreeSet<(NodeId, NodeId)>>,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl MemNetwork {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// The transport that node `from` uses.
    pub fn transport(&self, from: NodeId) -> MemTransport {
        MemTransport {
            net: self.clone(),
            from,
        }
    }

    /// Makes `quorum` reachable under its node id (replacing an earlier registration).
    pub fn register(&self, quorum: &Quorum) {
        self.inner
            .nodes
            .lock()
            .insert(quorum.node_id(), quorum.clone());
    }

    /// Makes node `id` unreachable, as if it crashed (and returns it, to shut it down).
    pub fn unregister(&self, id: NodeId) -> Option<Quorum> {
        self.inner.nodes.lock().remove(&id)
    }

    /// Drops every message between `a` and `b`, both ways.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        let mut cut = self.inner.cut.lock();
        cut.insert((a, b));
        cut.insert((b, a));
    }

    /// Drops every message from `from` to `to` (one way).
    pub fn cut_one_way(&self, from: NodeId, to: NodeId) {
        self.inner.cut.lock().insert((from, to));
    }

    /// Cuts `id` off from every node in `others`.
    pub fn isolate(&self, id: NodeId, others: impl IntoIterator<Item = NodeId>) {
        for o in others {
            if o != id {
                self.cut(id, o);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.inner.cut.lock().clear();
    }

    /// How many RPCs were delivered and how many dropped so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.inner.delivered.load(Ordering::Relaxed),
            self.inner.dropped.load(Ordering::Relaxed),
        )
    }

    fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.inner.cut.lock().contains(&(from, to))
    }
}

/// One node's end of a [`MemNetwork`].
#[derive(Clone)]
pub struct MemTransport {
    net: MemNetwork,
    from: NodeId,
}

impl Transport for MemTransport {
    async fn call(
        &self,
        target: NodeId,
        _addr: &str,
        request: Bytes,
    ) -> Result<Bytes, TransportError> {
        let inner = &self.net.inner;
        if self.net.is_cut(self.from, target) {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(TransportError::Unreachable(format!(
                "link {} -> {target} is cut",
                self.from
            )));
        }
        let node = inner.nodes.lock().get(&target).cloned();
        let Some(node) = node else {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(TransportError::Unreachable(format!(
                "node {target} is down"
            )));
        };
        let reply = match node.handle_rpc(request).await {
            Ok(b) => b,
            Err(e) => e.to_reply(),
        };
        // A link cut while the request was in flight loses the reply.
        if self.net.is_cut(target, self.from) {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(TransportError::Unreachable(format!(
                "link {target} -> {} is cut",
                self.from
            )));
        }
        inner.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(reply)
    }
}
