"""A local n-node KRaft cluster (combined broker+controller nodes) of gregor or Apache Kafka.

    c = Cluster(n=3, impl="kafka", base_dir=tmp, extra_props={...}, node_props={2: {"broker.rack": "r2"}})
    c.start()                  # format (Kafka only), start every node, wait until all answer Metadata with n brokers
    c.bootstrap                # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
    c.controller_bootstrap     # "127.0.0.1:C1,..." (the CONTROLLER listeners)
    c.kill(2)                  # SIGKILL node 2 (c.kill(2, signal.SIGTERM) for a controlled shutdown)
    c.restart(2)               # start it again on the same ports and data
    c.quorum_leader()          # LeaderId from kafka-metadata-quorum.sh describe --status
    c.stop()                   # SIGTERM every node, SIGKILL after a bound

Implementation selection: impl argument, else $CLUSTER_IMPL (gregor|kafka, default gregor).

gregor (the cluster contract): node N is started as `$GREGOR_BIN DIR/nodeN/node.properties` with the properties
below; no format step (gregor formats itself on first start).
kafka: the same properties; `kafka-storage.sh format -t <one cluster id> -c node.properties` once per node, then
`kafka-server-start.sh node.properties` (compat-tests/bin wrappers over the Kafka 4.1.2 jars), KAFKA_HEAP_OPTS
"-Xmx512m -Xms512m" unless set.

Every node runs in its own session/process group (setsid); logs go to DIR/nodeN/node.log.

netns=True (Linux, root, iproute2 + iptables): every node runs in its own network namespace (`ip netns exec NS
<cmd>`, see `NetnsNetwork`) with its own address 10.77.S.N, reachable from the root namespace (where the test's
clients run) through a bridge; listeners, advertised listeners and controller.quorum.voters use those addresses.
`c.cut(node)` drops (iptables DROP in the node's namespace, both directions, every port) all traffic between the
node and the other nodes, while the clients still reach every node; `c.heal()` removes the rules. The namespaces,
veths and the bridge are removed by `c.stop()` (also at interpreter exit); leftovers of a crashed run are removed
when the next netns cluster starts. Default (netns=False): every node on 127.0.0.1.
"""

import atexit
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import json
from pathlib import Path

import kafka_wire

CLUSTER_DIR = Path(__file__).resolve().parent
COMPAT_DIR = CLUSTER_DIR.parent
REPO_DIR = COMPAT_DIR.parent
BIN_DIR = COMPAT_DIR / "bin"

IMPLS = ("gregor", "kafka")

# Every Cluster with processes that may still run; killed at interpreter exit as a last resort.
_LIVE_CLUSTERS = set()


@atexit.register
def _kill_leftovers():
    for c in list(_LIVE_CLUSTERS):
        for n in c.nodes.values():
            if n.proc is not None and n.proc.poll() is None:
                try:
                    os.killpg(n.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if c.net is not None:
            c.net.teardown()


def selected_impl():
    impl = os.environ.get("CLUSTER_IMPL", "gregor")
    if impl not in IMPLS:
        raise ValueError(f"CLUSTER_IMPL={impl!r}: expected one of {IMPLS}")
    return impl


def find_gregor_bin():
    """Same lookup as the single-node suite: $GREGOR_BIN, $CARGO_TARGET_DIR/{release,debug}/gregor,
    target/release/gregor, target/debug/gregor."""
    env = os.environ.get("GREGOR_BIN")
    if env:
        return env
    targets = [REPO_DIR / "target"]
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.insert(0, Path(os.environ["CARGO_TARGET_DIR"]))
    for t in targets:
        for profile in ("release", "debug"):
            p = t / profile / "gregor"
            if p.is_file() and os.access(p, os.X_OK):
                return str(p)
    return None


def free_ports(count):
    """`count` distinct free TCP ports (all bound at once, so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port, host="127.0.0.1", timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path, lines=80, max_bytes=64 * 1024):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


def random_cluster_id():
    """A Kafka Uuid string (22 chars base64url, no padding), never starting with '-' (like Uuid.randomUuid)."""
    while True:
        s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not s.startswith("-"):
            return s


def run_tool(tool, *args, timeout=60, check=True, env=None, input=None):
    """Run a compat-tests/bin Kafka CLI wrapper; returns CompletedProcess (text)."""
    cmd = [str(BIN_DIR / tool), *map(str, args)]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, input=input,
                           start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"{tool} timed out after {timeout}s\ncmd: {cmd}\nstdout:\n{e.stdout}\nstderr:\n{e.stderr}") from None
    if check and p.returncode != 0:
        raise AssertionError(f"{tool} exited {p.returncode}\ncmd: {cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def parse_quorum_status(text):
    """Parses `kafka-metadata-quorum.sh describe --status` output into a dict (JSON values decoded)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*(.*)$", line)
        if not m:
            continue
        key, val = m.group(1), m.group(2).strip()
        if val.startswith("[") or val.startswith("{"):
            val = json.loads(val)
        elif re.fullmatch(r"-?\d+", val):
            val = int(val)
        out[key] = val
    return out


def parse_quorum_replication(text):
    """Parses `describe --replication` (whitespace-separated table with a header row) into a list of dicts."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return []
    header = lines[0].split()
    rows = []
    for l in lines[1:]:
        cols = l.split()
        if len(cols) != len(header):
            raise AssertionError(f"replication row has {len(cols)} columns, header {len(header)}: {l!r}")
        rows.append(dict(zip(header, cols)))
    return rows


def netns_unavailable():
    """None when network namespaces can be used (root, `ip`, `iptables`), else the reason."""
    if sys.platform != "linux":
        return f"network namespaces need Linux (platform {sys.platform})"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add, iptables)"
    for tool, package in (("ip", "iproute2"), ("iptables", "iptables"), ("iptables-restore", "iptables")):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (apt-get install -y {package}; compat-tests/setup.sh installs it)"
    return None


def _sh(*cmd, check=True, timeout=20, input=None):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}))
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p


class NetnsNetwork:
    """One network namespace per node, each with a veth pair into a bridge in the root namespace:

        root namespace: bridge gct<PID>-br 10.77.S.254/24 (the test's clients connect from here)
        node N:         namespace gct<PID>-nN, eth0 10.77.S.N/24 (veth gct<PID>-vN on the bridge), lo up

    PID is the owning (pytest) process, S the first subnet 10.77.S.0/24 no other bridge uses. Node-to-node traffic
    crosses the bridge (layer 2; an ACCEPT rule for the bridge in the root FORWARD chain covers br_netfilter). `cut(node, others)`
    appends `iptables -A INPUT -s <other> -j DROP` and `-A OUTPUT -d <other> -j DROP` in the node's own namespace,
    so packets between it and those nodes vanish in both directions (established connections included, no RST or
    ICMP), while the bridge address (the clients) still reaches it; `heal()` flushes those chains.
    """

    PREFIX = "gct"
    NAME = re.compile(r"^gct(\d+)-(n\d+|v\d+|p\d+|br)$")

    def __init__(self, n, net=None):
        self.n = n
        self.owner = os.getpid()
        self.net = net or os.environ.get("CLUSTER_NETNS_NET", "10.77")
        self.subnet = None
        self.created_ns = []
        self.created_links = []
        self.cuts = {}

    def ns(self, node_id):
        return f"{self.PREFIX}{self.owner}-n{node_id}"

    @property
    def bridge(self):
        return f"{self.PREFIX}{self.owner}-br"

    def veth(self, node_id):
        return f"{self.PREFIX}{self.owner}-v{node_id}"

    def addr(self, node_id):
        return f"{self.net}.{self.subnet}.{node_id}"

    @property
    def client_addr(self):
        return f"{self.net}.{self.subnet}.254"

    def exec_prefix(self, node_id):
        return ["ip", "netns", "exec", self.ns(node_id)]

    @classmethod
    def _owner_alive(cls, pid):
        if pid == os.getpid():
            return True
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return b"python" in f.read()
        except OSError:
            return False

    @classmethod
    def remove_stale(cls):
        """Remove namespaces (killing what still runs in them), veths and bridges of this harness whose owning
        process is gone (a crashed or killed run). Returns the names removed."""
        removed = []
        for line in _sh("ip", "netns", "list", check=False).stdout.splitlines():
            name = line.split()[0] if line.strip() else ""
            m = cls.NAME.match(name)
            if m and not cls._owner_alive(int(m.group(1))):
                cls._delete_ns(name)
                removed.append(name)
        for line in _sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
            m = re.match(r"^\d+:\s+([^:@\s]+)", line)
            if not m:
                continue
            name = m.group(1)
            mm = cls.NAME.match(name)
            if mm and not mm.group(2).startswith("n") and not cls._owner_alive(int(mm.group(1))):
                _sh("ip", "link", "del", name, check=False)
                removed.append(name)
        for line in _sh("iptables", "-S", "FORWARD", check=False).stdout.splitlines():
            m = re.match(rf"^-A FORWARD -i ({cls.PREFIX}(\d+)-br) -o \1 -j ACCEPT$", line.strip())
            if m and not cls._owner_alive(int(m.group(2))):
                _sh("iptables", "-D", "FORWARD", "-i", m.group(1), "-o", m.group(1), "-j", "ACCEPT", check=False)
        return removed

    @staticmethod
    def _delete_ns(name):
        pids = _sh("ip", "netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _sh("ip", "netns", "del", name, check=False)

    def _pick_subnet(self):
        used = set(re.findall(rf"inet {re.escape(self.net)}\.(\d+)\.", _sh("ip", "-4", "-o", "addr").stdout))
        used |= set(re.findall(rf"^{re.escape(self.net)}\.(\d+)\.", _sh("ip", "-4", "route").stdout, re.M))
        for s in range(256):
            if str(s) not in used:
                return s
        raise RuntimeError(f"no free subnet {self.net}.S.0/24")

    def setup(self, ids):
        reason = netns_unavailable()
        if reason:
            raise RuntimeError(reason)
        self.remove_stale()
        self.teardown()  # our own names from an earlier setup of this process
        self.subnet = self._pick_subnet()
        try:
            br = self.bridge
            _sh("ip", "link", "add", br, "type", "bridge")
            self.created_links.append(br)
            _sh("ip", "addr", "add", f"{self.client_addr}/24", "dev", br)
            _sh("ip", "link", "set", br, "up")
            # With br_netfilter loaded (dockerd loads it and sets the FORWARD policy to DROP), frames crossing a
            # bridge go through the root namespace's FORWARD chain: let ours through.
            _sh("iptables", *self._forward_rule("-I"))
            for i in ids:
                ns, veth, peer = self.ns(i), self.veth(i), f"{self.PREFIX}{self.owner}-p{i}"
                _sh("ip", "netns", "add", ns)
                self.created_ns.append(ns)
                _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
                self.created_links.append(veth)
                _sh("ip", "link", "set", peer, "netns", ns)
                _sh("ip", "link", "set", veth, "master", br, "up")
                _sh(*self.exec_prefix(i), "ip", "link", "set", "lo", "up")
                _sh(*self.exec_prefix(i), "ip", "link", "set", peer, "name", "eth0")
                _sh(*self.exec_prefix(i), "ip", "addr", "add", f"{self.addr(i)}/24", "dev", "eth0")
                _sh(*self.exec_prefix(i), "ip", "link", "set", "eth0", "up")
                # Fail fast if the firewall does not work in a namespace (e.g. no nf_tables in the kernel).
                _sh(*self.exec_prefix(i), "iptables", "-S")
        except BaseException:
            self.teardown()
            raise

    def _forward_rule(self, op):
        return [op, "FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def cut(self, node_id, others):
        """Drop every packet between node_id and each node in others (both directions, all ports). The rules are
        committed at once (`iptables-restore --noflush`): when this returns, all of them are in effect."""
        rules = "".join(f"-A INPUT -s {self.addr(o)} -j DROP\n-A OUTPUT -d {self.addr(o)} -j DROP\n" for o in others)
        _sh(*self.exec_prefix(node_id), "iptables-restore", "--noflush", input=f"*filter\n{rules}COMMIT\n")
        self.cuts.setdefault(node_id, set()).update(others)

    def heal(self, node_id=None):
        for i in ([node_id] if node_id is not None else list(self.cuts)):
            if i in self.cuts:
                _sh(*self.exec_prefix(i), "iptables", "-F", "INPUT", check=False)
                _sh(*self.exec_prefix(i), "iptables", "-F", "OUTPUT", check=False)
                self.cuts.pop(i, None)

    def rules(self, node_id):
        return _sh(*self.exec_prefix(node_id), "iptables", "-S", check=False).stdout

    def can_connect(self, from_node, host, port, timeout=1.0):
        """Whether a TCP connection from inside from_node's namespace to host:port succeeds within timeout."""
        code = (f"import socket,sys\ntry:\n socket.create_connection(({host!r},{int(port)}),timeout={timeout})\n"
                f"except OSError:\n sys.exit(1)\n")
        p = _sh(*self.exec_prefix(from_node), sys.executable, "-c", code, check=False, timeout=timeout + 20)
        return p.returncode == 0

    def teardown(self):
        """Remove our namespaces (killing whatever still runs in them), veths and the bridge. Idempotent."""
        self.cuts.clear()
        names = set(self.created_ns) | {self.ns(i) for i in range(1, self.n + 1)}
        existing = set(l.split()[0] for l in _sh("ip", "netns", "list", check=False).stdout.splitlines() if l.strip())
        for ns in sorted(names & existing):
            self._delete_ns(ns)
        while _sh("iptables", *self._forward_rule("-D"), check=False).returncode == 0:
            pass
        links = set(self.created_links) | {self.bridge} | {self.veth(i) for i in range(1, self.n + 1)}
        for link in sorted(links):
            if _sh("ip", "link", "show", link, check=False).returncode == 0:
                _sh("ip", "link", "del", link, check=False)
        self.created_ns, self.created_links = [], []


class Node:
    def __init__(self, node_id, client_port, controller_port, workdir):
        self.id = node_id
        self.client_port = client_port
        self.controller_port = controller_port
        self.dir = Path(workdir)
        self.data_dir = self.dir / "data"
        self.props_path = self.dir / "node.properties"
        self.log_path = self.dir / "node.log"
        self.proc = None
        self.starts = 0
        self.last_exit = None
        self.host = "127.0.0.1"  # the namespace's address with netns=True

    @property
    def bootstrap(self):
        return f"{self.host}:{self.client_port}"

    @property
    def controller_endpoint(self):
        return f"{self.host}:{self.controller_port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    def __init__(self, n=3, impl=None, extra_props=None, node_props=None, base_dir=None, start_timeout=None,
                 stop_timeout=None, gregor_bin=None, heap_opts=None, netns=False):
        self.n = n
        self.impl = impl or selected_impl()
        if self.impl not in IMPLS:
            raise ValueError(f"impl {self.impl!r}: expected one of {IMPLS}")
        self.extra_props = {k: str(v) for k, v in (extra_props or {}).items()}
        self.node_props = {int(k): {kk: str(vv) for kk, vv in v.items()} for k, v in (node_props or {}).items()}
        if base_dir is None:
            import tempfile
            base_dir = tempfile.mkdtemp(prefix=f"cluster-{self.impl}-")
        self.dir = Path(base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        default_start = 120 if self.impl == "kafka" else 30
        self.start_timeout = float(start_timeout or os.environ.get("CLUSTER_START_TIMEOUT", default_start))
        self.stop_timeout = float(stop_timeout or os.environ.get("CLUSTER_STOP_TIMEOUT", 30))
        self.heap_opts = heap_opts or os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m -Xms512m")
        if self.impl == "gregor":
            self.binary = gregor_bin or find_gregor_bin()
            if not self.binary:
                raise RuntimeError("no gregor binary: set GREGOR_BIN or build target/release/gregor "
                                   "(CLUSTER_IMPL=kafka runs the suite against Apache Kafka)")
            if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
                raise RuntimeError(f"gregor binary {self.binary} is not an executable file")
        else:
            self.binary = str(BIN_DIR / "kafka-server-start.sh")
        ports = free_ports(2 * n)
        self.nodes = {i: Node(i, ports[2 * (i - 1)], ports[2 * (i - 1) + 1], self.dir / f"node{i}")
                      for i in range(1, n + 1)}
        # Kafka: chosen here and passed to `kafka-storage.sh format`. gregor: learned from the cluster.
        self.cluster_id = random_cluster_id() if self.impl == "kafka" else None
        self.formatted = False
        self.started = False
        # netns=True: one network namespace per node (created by start(), removed by stop()).
        self.netns = bool(netns)
        self.net = NetnsNetwork(n) if self.netns else None

    # ------------------------------------------------------------------ addresses

    @property
    def ids(self):
        return sorted(self.nodes)

    @property
    def bootstrap(self):
        return ",".join(self.nodes[i].bootstrap for i in self.ids)

    @property
    def controller_bootstrap(self):
        return ",".join(self.nodes[i].controller_endpoint for i in self.ids)

    def bootstrap_of(self, *node_ids):
        return ",".join(self.nodes[i].bootstrap for i in node_ids)

    def controllers_of(self, *node_ids):
        return ",".join(self.nodes[i].controller_endpoint for i in node_ids)

    @property
    def voters(self):
        return ",".join(f"{i}@{self.nodes[i].controller_endpoint}" for i in self.ids)

    def pid(self, node_id):
        return self.nodes[node_id].pid

    @property
    def pids(self):
        return {i: n.pid for i, n in self.nodes.items()}

    def alive(self, node_id):
        return self.nodes[node_id].alive()

    def live_ids(self):
        return [i for i in self.ids if self.nodes[i].alive()]

    # ------------------------------------------------------------------ configuration

    def properties(self, node_id):
        node = self.nodes[node_id]
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://{node.bootstrap},CONTROLLER://{node.controller_endpoint}",
            "advertised.listeners": f"PLAINTEXT://{node.bootstrap}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "broker.session.timeout.ms": "9000",
            "broker.heartbeat.interval.ms": "2000",
            "offsets.topic.replication.factor": str(min(3, self.n)),
            "transaction.state.log.replication.factor": str(min(3, self.n)),
            "default.replication.factor": str(min(3, self.n)),
        }
        if self.impl == "gregor":
            props["metrics.listener"] = ""  # gregor-only: no Prometheus listener
        props.update(self.extra_props)
        props.update(self.node_props.get(node_id, {}))
        return props

    def prop(self, key, node_id=None):
        return self.properties(node_id or self.ids[0]).get(key)

    @property
    def session_timeout_ms(self):
        return int(self.prop("broker.session.timeout.ms"))

    @property
    def heartbeat_interval_ms(self):
        return int(self.prop("broker.heartbeat.interval.ms"))

    def write_properties(self):
        for i, node in self.nodes.items():
            node.dir.mkdir(parents=True, exist_ok=True)
            text = "".join(f"{k}={v}\n" for k, v in self.properties(i).items())
            node.props_path.write_text(text)

    def format(self):
        """Kafka only: `kafka-storage.sh format` every node with the same cluster id (in parallel)."""
        assert self.impl == "kafka"
        procs = []
        env = dict(os.environ)
        for i, node in self.nodes.items():
            if (node.data_dir / "meta.properties").exists():
                continue
            log = open(node.dir / "format.log", "wb")
            procs.append((node, log, subprocess.Popen(
                [str(BIN_DIR / "kafka-storage.sh"), "format", "-t", self.cluster_id, "-c", str(node.props_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)))
        deadline = time.monotonic() + 90
        errors = []
        for node, log, p in procs:
            try:
                rc = p.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
                rc = "timeout"
            log.close()
            if rc != 0:
                errors.append(f"node {node.id}: format exited {rc}\n{tail(node.dir / 'format.log')}")
        if errors:
            raise RuntimeError("kafka-storage.sh format failed:\n" + "\n".join(errors))
        self.formatted = True

    # ------------------------------------------------------------------ processes

    def command(self, node_id, overrides=None):
        node = self.nodes[node_id]
        cmd = [self.binary, str(node.props_path)]
        for k, v in (overrides or {}).items():
            cmd += ["--override", f"{k}={v}"]
        if self.net is not None:
            # `ip netns exec` execs the command: the node keeps the pid (and process group) Popen returns.
            cmd = self.net.exec_prefix(node_id) + cmd
        return cmd

    def launch(self, node_id, overrides=None):
        node = self.nodes[node_id]
        assert not node.alive(), f"node {node_id} is already running (pid {node.pid})"
        node.starts += 1
        cmd = self.command(node_id, overrides)
        env = dict(os.environ)
        env["KAFKA_HEAP_OPTS"] = self.heap_opts
        log = open(node.log_path, "ab")
        log.write(f"\n===== {time.strftime('%H:%M:%S')} start #{node.starts} of node {node_id}: "
                  f"{' '.join(cmd)}\n".encode())
        log.flush()
        # start_new_session: setsid, the node is the leader of its own process group (killpg on stop).
        node.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True, cwd=str(node.dir))
        log.close()
        node.last_exit = None
        _LIVE_CLUSTERS.add(self)

    def start(self, timeout=None):
        """Start every node and wait until each answers Metadata listing all n brokers."""
        timeout = timeout or self.start_timeout
        t0 = time.monotonic()
        if self.net is not None:
            self.setup_network()
        self.write_properties()
        try:
            if self.impl == "kafka" and not self.formatted:
                self.format()
            for i in self.ids:
                self.launch(i)
            self.started = True
            self.wait_ready(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except BaseException:
            self.stop()
            raise
        self.learn_cluster_id()
        return time.monotonic() - t0

    def _check_not_exited(self, node_ids):
        for i in node_ids:
            node = self.nodes[i]
            if node.proc is not None and node.proc.poll() is not None:
                raise RuntimeError(
                    f"node {i} exited with code {node.proc.returncode}; log tail:\n{tail(node.log_path)}")

    def wait_ports(self, node_ids, timeout):
        deadline = time.monotonic() + timeout
        pending = list(node_ids)
        while pending:
            self._check_not_exited(pending)
            pending = [i for i in pending if not port_open(self.nodes[i].client_port, self.nodes[i].host)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"client port of node(s) {pending} not accepting TCP after {timeout:.0f}s")
            time.sleep(0.1)

    def node_metadata(self, node_id, timeout=5.0):
        """Metadata (brokers, cluster id, controller id) answered by exactly this node."""
        node = self.nodes[node_id]
        return kafka_wire.node_metadata(node.host, node.client_port, timeout=timeout)

    def expected_brokers(self, node_ids):
        return {i: (self.nodes[i].host, self.nodes[i].client_port) for i in node_ids}

    def wait_ready(self, timeout=None, node_ids=None, expect_brokers=None):
        """Wait until every node in node_ids (default: all live nodes) accepts TCP on its client port and
        answers Metadata listing exactly expect_brokers (default: node_ids) with their host:port."""
        timeout = timeout or self.start_timeout
        node_ids = list(node_ids or self.live_ids())
        expect = self.expected_brokers(expect_brokers or node_ids)
        deadline = time.monotonic() + timeout
        self.wait_ports(node_ids, timeout)
        last = {}
        while True:
            self._check_not_exited(node_ids)
            ok = True
            for i in node_ids:
                try:
                    md = self.node_metadata(i, timeout=3)
                    got = {b: (h, p) for b, (h, p, _rack) in md["brokers"].items()}
                    last[i] = got
                    if got != expect:
                        ok = False
                except (OSError, ValueError, ConnectionError) as e:
                    last[i] = repr(e)
                    ok = False
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not ready after {timeout:.0f}s: expected brokers {expect} from nodes "
                                   f"{node_ids}; last answers: {last}")
            time.sleep(0.25)

    def learn_cluster_id(self):
        for i in self.live_ids():
            try:
                cid = self.node_metadata(i)["cluster_id"]
            except (OSError, ValueError, ConnectionError):
                continue
            if self.impl == "kafka" and cid != self.cluster_id:
                raise RuntimeError(f"node {i} reports cluster id {cid}, formatted with {self.cluster_id}")
            self.cluster_id = cid
            return cid
        return self.cluster_id

    def kill(self, node_id, sig=signal.SIGKILL, timeout=None):
        """Send sig to the node; wait (bounded) for it to exit and return the exit code.
        SIGKILL goes to the node's whole process group. For SIGTERM the wait is stop_timeout; on expiry the
        node is SIGKILLed and an AssertionError is raised."""
        node = self.nodes[node_id]
        if not node.alive():
            return node.proc.returncode if node.proc else None
        timeout = timeout if timeout is not None else (10 if sig == signal.SIGKILL else self.stop_timeout)
        if sig == signal.SIGKILL:
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            node.proc.send_signal(sig)
        try:
            rc = node.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.proc.wait(timeout=10)
            raise AssertionError(f"node {node_id} still running {timeout}s after signal {sig}; SIGKILLed")
        node.last_exit = rc
        return rc

    def restart(self, node_id, wait=True, timeout=None, overrides=None):
        """(Re)start a stopped node on the same ports and data; with wait, until every live node lists all live
        nodes as brokers again."""
        node = self.nodes[node_id]
        if node.alive():
            self.kill(node_id)
        t0 = time.monotonic()
        self.launch(node_id, overrides)
        if wait:
            self.wait_ready(timeout=timeout or self.start_timeout)
        return time.monotonic() - t0

    def stop(self):
        """SIGTERM every live node (all at once), SIGKILL the process group of any still running after
        stop_timeout. Returns {node: exit code}. netns: heals every cut first, removes the namespaces last."""
        codes = {}
        if self.net is not None:
            self.net.heal()
        live = [n for n in self.nodes.values() if n.alive()]
        for n in live:
            try:
                n.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout
        for n in live:
            try:
                codes[n.id] = n.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(n.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                n.proc.wait(timeout=10)
                codes[n.id] = f"SIGKILL after {self.stop_timeout:.0f}s"
            n.last_exit = codes[n.id]
        # Stray group members (none expected: the wrappers exec), killed defensively.
        for n in self.nodes.values():
            if n.proc is not None:
                try:
                    os.killpg(n.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self.started = False
        if self.net is not None:
            self.net.teardown()
        _LIVE_CLUSTERS.discard(self)
        return codes

    # ------------------------------------------------------------------ network namespaces (netns=True)

    def setup_network(self):
        """Create the namespaces (removing stale ones of crashed runs) and give every node its address."""
        _LIVE_CLUSTERS.add(self)  # torn down at interpreter exit even if start() never launches a node
        self.net.setup(self.ids)
        for i, node in self.nodes.items():
            node.host = self.net.addr(i)

    def cut(self, node_id, others=None):
        """netns only: drop all traffic between node_id and others (default: every other node), both directions,
        every port (client, inter-broker and controller listeners). The root namespace (clients) is unaffected."""
        assert self.net is not None, "cut() needs Cluster(netns=True)"
        others = [i for i in (others or self.ids) if i != node_id]
        self.net.cut(node_id, others)
        return others

    def heal(self, node_id=None):
        """netns only: remove the rules of cut(node_id) (default: every cut)."""
        assert self.net is not None, "heal() needs Cluster(netns=True)"
        self.net.heal(node_id)

    def reachable(self, from_node, to_node, timeout=1.0):
        """netns only: whether from_node's namespace opens a TCP connection to to_node's client port."""
        assert self.net is not None, "reachable() needs Cluster(netns=True)"
        return self.net.can_connect(from_node, self.nodes[to_node].host, self.nodes[to_node].client_port, timeout)

    # ------------------------------------------------------------------ logs

    def log(self, node_id, lines=80):
        return tail(self.nodes[node_id].log_path, lines=lines)

    def log_path(self, node_id):
        return self.nodes[node_id].log_path

    # ------------------------------------------------------------------ quorum

    def describe_quorum(self, what="--status", controllers=None, timeout=60):
        """Runs kafka-metadata-quorum.sh --bootstrap-controller (live controllers by default) describe WHAT;
        returns the CompletedProcess."""
        boot = controllers or self.controllers_of(*self.live_ids())
        return run_tool("kafka-metadata-quorum.sh", "--bootstrap-controller", boot, "describe", what, timeout=timeout)

    def quorum_status(self, controllers=None, timeout=60):
        return parse_quorum_status(self.describe_quorum("--status", controllers, timeout).stdout)

    def quorum_leader(self, controllers=None, timeout=60):
        """LeaderId reported by `kafka-metadata-quorum.sh --bootstrap-controller ... describe --status`."""
        status = self.quorum_status(controllers, timeout)
        leader = status.get("LeaderId")
        if not isinstance(leader, int):
            raise AssertionError(f"no LeaderId in describe --status output: {status}")
        return leader

    def wait_quorum_leader(self, exclude=(), timeout=30):
        """Poll describe --status through the live controllers until the leader is a live node not in exclude."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                leader = self.quorum_leader(timeout=20)
                if leader not in exclude and leader in self.live_ids():
                    return leader
                last = f"LeaderId {leader}"
            except AssertionError as e:
                last = str(e)[-500:]
            if time.monotonic() > deadline:
                raise AssertionError(f"no quorum leader outside {list(exclude)} after {timeout}s; last: {last}")
            time.sleep(0.5)

    def __repr__(self):
        if self.net is not None:
            nodes = {i: (n.host, n.client_port, n.controller_port, n.pid) for i, n in self.nodes.items()}
            return f"Cluster({self.impl}, netns, nodes (host, client port, controller port, pid)={nodes})"
        nodes = {i: (n.client_port, n.controller_port, n.pid) for i, n in self.nodes.items()}
        return f"Cluster({self.impl}, nodes (client port, controller port, pid)={nodes})"
