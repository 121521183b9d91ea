//! Shared helpers for the quorum tests: a recording state machine and an in-memory cluster.

#![allow(dead_code)]

use gregor_quorum::{
    MemNetwork, NodeId, ProposeError, Proposed, Quorum, QuorumConfig, StateMachine,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a [`Recorder`] has seen.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// Every applied `(index, data)`, in order (after a restore: the snapshot's, then new ones).
    pub applied: Vec<(u64, Vec<u8>)>,
    /// How many times `restore` was called.
    pub restores: u64,
}

/// A state machine that records every entry; its reply is the number of entries applied so far.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Recorded>>);

impl Recorder {
    pub fn data(&self) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .applied
            .iter()
            .map(|(_, d)| d.clone())
            .collect()
    }
    pub fn len(&self) -> usize {
        self.0.lock().applied.len()
    }
    pub fn restores(&self) -> u64 {
        self.0.lock().restores
    }
    pub fn last_index(&self) -> Option<u64> {
        self.0.lock().applied.last().map(|(i, _)| *i)
    }
}

fn encode(applied: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, d) in applied {
        out.extend_from_slice(&i.to_be_bytes());
        out.extend_from_slice(&(d.len() as u32).to_be_bytes());
        out.extend_from_slice(d);
    }
    out
}

fn decode(mut b: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 12 {
            return Err("short snapshot".into());
        }
        let i = u64::from_be_bytes(b[..8].try_into().unwrap());
        let n = u32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        if b.len() < 12 + n {
            return Err("short snapshot".into());
        }
        out.push((i, b[12..12 + n].to_vec()));
        b = &b[12 + n..];
    }
    Ok(out)
}

impl StateMachine for Recorder {
    fn apply(&mut self, index: u64, data: &[u8]) -> Vec<u8> {
        let mut r = self.0.lock();
        if let Some((last, _)) = r.applied.last() {
            assert!(
                index > *last,
                "apply indexes must increase: {index} after {last}"
            );
        }
        r.applied.push((index, data.to_vec()));
        (r.applied.len() as u64).to_be_bytes().to_vec()
    }
    fn snapshot(&self) -> Vec<u8> {
        encode(&self.0.lock().applied)
    }
    fn restore(&mut self, last_index: u64, snapshot: &[u8]) -> Result<(), String> {
        let applied = decode(snapshot)?;
        if let Some((i, _)) = applied.last() {
            assert!(*i <= last_index);
        }
        let mut r = self.0.lock();
        r.applied = applied;
        r.restores += 1;
        Ok(())
    }
}

/// `1 → "mem://1"`, ... for `n` voters.
pub fn voters(n: u64) -> BTreeMap<NodeId, String> {
    (1..=n).map(|i| (i, format!("mem://{i}"))).collect()
}

/// A test config: fast timers (heartbeat 50 ms, election 300–600 ms).
pub fn test_config(id: NodeId, n: u64, dir: &Path) -> QuorumConfig {
    let mut c = QuorumConfig::new(id, voters(n), dir.join(format!("node{id}")));
    c.heartbeat_interval = Duration::from_millis(50);
    c.election_timeout_min = Duration::from_millis(300);
    c.election_timeout_max = Duration::from_millis(600);
    c.propose_timeout = Duration::from_secs(3);
    c
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GREGOR_TEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `f` every 10 ms until it is true; panics with `what` after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An in-memory cluster of `n` voters, each with its own directory.
pub struct Cluster {
    pub n: u64,
    pub net: MemNetwork,
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<NodeId, (Quorum, Recorder)>,
    pub tweak: fn(&mut QuorumConfig),
}

impl Cluster {
    /// Starts `n` voters (all at once, as a real cluster boots).
    pub async fn start(n: u64, tweak: fn(&mut QuorumConfig)) -> Cluster {
        init_tracing();
        let mut c = Cluster {
            n,
            net: MemNetwork::new(),
            dir: tempfile::tempdir().unwrap(),
            nodes: BTreeMap::new(),
            tweak,
        };
        for id in 1..=n {
            c.start_node(id).await;
        }
        c
    }

    pub fn config(&self, id: NodeId) -> QuorumConfig {
        let mut cfg = test_config(id, self.n, self.dir.path());
        (self.tweak)(&mut cfg);
        cfg
    }

    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.config(id).dir
    }

    /// Starts (or restarts from its directory) node `id` with an empty state machine.
    pub async fn start_node(&mut self, id: NodeId) {
        let sm = Recorder::default();
        let q = Quorum::open(self.config(id), sm.clone(), self.net.transport(id))
            .await
            .unwrap_or_else(|e| panic!("open node {id}: {e}"));
        self.net.register(&q);
        self.nodes.insert(id, (q, sm));
    }

    /// "Crashes" node `id`: unreachable at once, then stopped.
    pub async fn crash(&mut self, id: NodeId) {
        self.net.unregister(id);
        if let Some((q, _)) = self.nodes.remove(&id) {
            q.shutdown().await;
        }
    }

    pub fn q(&self, id: NodeId) -> &Quorum {
        &self.nodes[&id].0
    }

    pub fn sm(&self, id: NodeId) -> &Recorder {
        &self.nodes[&id].1
    }

    /// Waits until the running nodes in `among` (all running ones when empty) agree on one
    /// leader that is itself running and leading; returns it.
    pub async fn wait_leader(&self, among: &[NodeId], timeout: Duration) -> NodeId {
        let ids: Vec<NodeId> = if among.is_empty() {
            self.nodes.keys().copied().collect()
        } else {
            among.to_vec()
        };
        let start = Instant::now();
        loop {
            let leaders: Vec<Option<NodeId>> =
                ids.iter().map(|id| self.q(*id).status().leader).collect();
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l))
                    && ids.contains(l)
                    && self.q(*l).is_leader()
                {
                    return *l;
                }
            }
            if start.elapsed() > timeout {
                panic!("no agreed leader among {ids:?} within {timeout:?}: {leaders:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Proposes on whichever node leads, following NotLeader answers.
    pub async fn propose(&self, data: &[u8]) -> Proposed {
        let start = Instant::now();
        let mut target = *self.nodes.keys().next().unwrap();
        loop {
            match self.q(target).propose(data.to_vec()).await {
                Ok(p) => return p,
                Err(ProposeError::NotLeader {
                    leader: Some((l, _)),
                }) if self.nodes.contains_key(&l) => {
                    target = l;
                }
                Err(e) => {
                    if start.elapsed() > Duration::from_secs(8) {
                        panic!("proposal kept failing: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Waits until every running node has applied exactly `expected` (in order).
    pub async fn wait_all_applied(&self, expected: &[Vec<u8>], timeout: Duration) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        eventually(timeout, "every node to apply the same entries", || {
            ids.iter().all(|id| self.sm(*id).data() == expected)
        })
        .await;
    }

    pub async fn shutdown(self) {
        for (id, (q, _)) in &self.nodes {
            self.net.unregister(*id);
            q.shutdown().await;
        }
    }
}
