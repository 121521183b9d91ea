"""Fixtures for the cluster suite.

`cluster`: a running 3-node cluster (CLUSTER_IMPL=gregor|kafka, default gregor). At most ONE cluster exists at a
time: a session-wide manager starts one on first use and hands it to every test that asks for the same
configuration; it is replaced by a fresh one when a test asks for another configuration
(`@pytest.mark.cluster_config(extra_props=..., node_props=..., fresh=True)`), when a test failed (its cluster may be
in any state) or when a node of it is no longer running. Tests that kill nodes restore them before they end.

Shared configuration (every test unless it says otherwise): the contract's properties plus
`broker.session.timeout.ms=6000` (fencing tests stay fast), `auto.leader.rebalance.enable=false` (leaderships move
only when a test moves them) and racks on nodes 1 and 2 only (node 3 has none, so both cases are visible).

`@pytest.mark.cluster_config(netns=True)`: the nodes run in network namespaces (`Cluster(netns=True)`: own
addresses, `cluster.cut(node)` / `cluster.heal()`); such tests run after every other test, so the suite switches
to that cluster once.

On failure the tail of every node's log is attached to the report. Timings printed with `timing()` are collected
and repeated at the end of the run (lines starting with CLUSTER-TIMING).
"""

import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chelpers import TIMINGS, timing  # noqa: E402
from cluster import COMPAT_DIR, Cluster, selected_impl  # noqa: E402

# auto.leader.rebalance.enable=false: leaderships moved by a test stay where they went until a test moves them back
# (test_replication.py's preferred leader election), whenever the controller's imbalance check would run.
SHARED_EXTRA_PROPS = {"broker.session.timeout.ms": "6000", "auto.leader.rebalance.enable": "false"}
SHARED_NODE_PROPS = {1: {"broker.rack": "rack-a"}, 2: {"broker.rack": "rack-b"}}

class ClusterManager:
    def __init__(self, tmp_path_factory):
        self.tmp = tmp_path_factory
        self.current = None
        self.config = None
        self.dirty = False
        self.starts = 0
        self.start_failures = 0

    def get(self, extra_props, node_props, fresh, netns=False):
        config = (tuple(sorted(extra_props.items())),
                  tuple(sorted((k, tuple(sorted(v.items()))) for k, v in node_props.items())), bool(netns))
        c = self.current
        if c is not None and (fresh or self.dirty or config != self.config or len(c.live_ids()) != c.n):
            self.shutdown()
        if self.current is None:
            if self.start_failures >= 2:
                pytest.fail(f"the cluster failed to start {self.start_failures} times; not trying again "
                            f"(last error above)", pytrace=False)
            self.starts += 1
            try:
                c = Cluster(n=3, extra_props=extra_props, node_props=node_props, netns=netns,
                            base_dir=self.tmp.mktemp(f"cluster{self.starts}-{selected_impl()}"))
            except RuntimeError as e:  # no gregor binary
                self.start_failures = 2
                pytest.fail(str(e), pytrace=False)
            try:
                secs = c.start()
            except Exception as e:  # noqa: BLE001 - reported as the test's failure
                self.start_failures += 1
                pytest.fail(f"cluster #{self.starts} ({c.impl}) did not start: {e}\n"
                            + "\n".join(f"--- node {i} log tail ---\n{c.log(i, 40)}" for i in c.ids), pytrace=False)
            self.start_failures = 0
            print(f"cluster #{self.starts} ({c.impl}) started in {secs:.1f}s: {c}", flush=True)
            timing("cluster_start", secs * 1000)
            self.current, self.config, self.dirty = c, config, False
        return self.current

    def shutdown(self):
        if self.current is not None:
            codes = self.current.stop()
            print(f"cluster stopped: exit codes {codes}", flush=True)
            self.current = None
            self.config = None


@pytest.fixture(scope="session")
def cluster_manager(tmp_path_factory):
    m = ClusterManager(tmp_path_factory)
    try:
        yield m
    finally:
        m.shutdown()


@pytest.fixture
def cluster(request, cluster_manager):
    marker = request.node.get_closest_marker("cluster_config")
    kw = dict(marker.kwargs) if marker else {}
    extra = {**SHARED_EXTRA_PROPS, **{k: str(v) for k, v in kw.get("extra_props", {}).items()}}
    node_props = kw.get("node_props", SHARED_NODE_PROPS)
    c = cluster_manager.get(extra, node_props, kw.get("fresh", False), kw.get("netns", False))
    request.node._cluster = c
    yield c
    rep = getattr(request.node, "rep_call", None)
    if rep is None or rep.failed or len(c.live_ids()) != c.n:
        cluster_manager.dirty = True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep
    if rep.failed:
        c = getattr(item, "_cluster", None)
        if c is not None:
            for i in c.ids:
                proc = c.nodes[i].proc
                state = f"pid {c.pid(i)}, running" if c.alive(i) else f"exit {proc.returncode if proc else None}"
                rep.sections.append((f"log tail of node {i} ({state}; {c.log_path(i)})", c.log(i)))


def pytest_collection_modifyitems(config, items):
    # Tests that kill nodes run last, so the shared cluster serves the others first; tests on a network-namespace
    # cluster after them (one switch of cluster).
    def order(it):
        cfg = it.get_closest_marker("cluster_config")
        if cfg is not None and cfg.kwargs.get("netns"):
            return 2
        return 1 if it.get_closest_marker("destructive") else 0
    items.sort(key=order)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("cluster timings")
        for line in TIMINGS:
            terminalreporter.write_line(line)


def _terminate(signum, frame):
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the fixtures stop the cluster.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _terminate)
    config.addinivalue_line("markers", "cluster_config(extra_props=None, node_props=None, fresh=False, netns=False): "
                                       "cluster setup")
    config.addinivalue_line("markers", "destructive: kills or stops nodes (runs after the other tests)")


@pytest.fixture(scope="session")
def cache_dir():
    d = Path(os.environ.get("CLUSTER_CACHE_DIR", COMPAT_DIR / ".cache" / "cluster"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def franzgo_bin(cache_dir):
    """compat-tests/cluster/franzgo built once into the cache dir (rebuilt when its sources change). Go module and
    build caches live in CACHE/go; the Go module proxy must be reachable on the first build."""
    import hashlib
    import shutil
    import subprocess

    src = Path(__file__).resolve().parent / "franzgo"
    h = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        h.update((src / name).read_bytes())
    out = cache_dir / f"franzgo-{h.hexdigest()[:12]}"
    if out.is_file() and os.access(out, os.X_OK):
        return str(out)
    go = shutil.which("go")
    if go is None:
        pytest.fail("go is not installed: cannot build compat-tests/cluster/franzgo", pytrace=False)
    env = dict(os.environ, GOMODCACHE=str(cache_dir / "go" / "mod"), GOCACHE=str(cache_dir / "go" / "build"),
               GOFLAGS="-modcacherw", GOTOOLCHAIN=os.environ.get("GOTOOLCHAIN", "local"))
    tmp = out.with_suffix(".tmp")
    try:
        p = subprocess.run(["nice", "-n", "10", go, "build", "-o", str(tmp), "."], cwd=src, env=env,
                           capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("building franzgo took more than 600 s", pytrace=False)
    if p.returncode != 0:
        pytest.fail(f"building franzgo failed:\n{p.stdout}\n{p.stderr}", pytrace=False)
    tmp.rename(out)
    return str(out)
