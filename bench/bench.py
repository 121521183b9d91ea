#!/usr/bin/env python3
"""Gregor vs Apache Kafka 4.1: identical workloads, same client binaries, same machine, one run.

Usually started by `make bench` (= bench/run.sh), which builds gregor, the Kafka jars and
rdkafka_performance first. Direct use:

  bench/bench.py --gregor-bin target/release/gregor --rdkafka-perf PATH [options]

Targets: `kafka` (a real Apache Kafka 4.1.2 KRaft single node, started here from the Maven jars),
`gregor` (started here, release binary, fresh log.dirs), and optionally `--bootstrap HOST:PORT`
(any already running Kafka-compatible broker; `--bootstrap-pid` adds its CPU/RSS). Brokers run
one at a time; every figure is reported beside Kafka's from the same run, as a ratio.

Workload 6 (`--workloads replicated` runs only it) starts a 3-node Kafka cluster, then a 3-node gregor
cluster, with compat-tests/cluster/cluster.py, and produces with acks=all into RF-3 topics.
Workload 7 (`--workloads tls`) starts each broker again with an SSL listener beside the PLAINTEXT one
(test certificates made with the openssl CLI) and reads one topic through both with the Java consumer.

Only the Python standard library plus confluent-kafka's AdminClient (compat-tests venv) are used.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COMPAT_BIN = os.path.join(REPO, "compat-tests", "bin")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
KAFKA_VERSION = "4.1.2"

# Kafka's own bin/kafka-{producer,consumer}-perf-test.sh JVM settings (the compat wrappers default to a
# lean C1-only JVM for short CLI calls; a benchmark client gets Kafka's real defaults).
JAVA_CLIENT_ENV = {
    "KAFKA_HEAP_OPTS": "-Xmx512M",
    "KAFKA_JVM_PERFORMANCE_OPTS": "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
    "-XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent "
    "-XX:MaxInlineLevel=15 -Djava.awt.headless=true",
}

MB = 1e6  # all sizes are decimal: 1 MB = 10^6 bytes, 1 GB = 10^9 bytes


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port(exclude=()):
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ----------------------------------------------------------------------------------------------
# /proc sampling of the broker process
# ----------------------------------------------------------------------------------------------
class Proc:
    def __init__(self, pid):
        self.pid = pid
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = None

    def cpu_times(self):
        """(utime, stime) of the whole process (all threads), from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            data = f.read()
        fields = data[data.rindex(")") + 2:].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def cpu_seconds(self):
        """utime + stime of the whole process (all threads)."""
        return sum(self.cpu_times())

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024  # kB -> bytes
        return None

    def rss(self):
        return self.status("VmRSS")

    def start_sampling(self, interval=0.2):
        def run():
            while not self._stop.wait(interval):
                try:
                    self.peak_rss = max(self.peak_rss, self.rss() or 0)
                except OSError:
                    return
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop_sampling(self):
        self._stop.set()
        if self._thread:
            self._thread.join()


class MultiProc(Proc):
    """Several broker processes (the nodes of a cluster) read as one: CPU times and RSS summed over
    the processes; the sampled peak RSS is the peak of the sum (samples of all nodes taken together)."""

    def __init__(self, pids):
        super().__init__(pids[0])
        self.procs = [Proc(p) for p in pids]

    def cpu_times(self):
        times = [p.cpu_times() for p in self.procs]
        return sum(t[0] for t in times), sum(t[1] for t in times)

    def rss(self):
        return sum(p.rss() or 0 for p in self.procs)

    def per_node(self, key):
        out = []
        for p in self.procs:
            try:
                out.append(p.status(key))
            except OSError:
                out.append(None)
        return out


# ----------------------------------------------------------------------------------------------
# Brokers
# ----------------------------------------------------------------------------------------------
def api_versions_roundtrip(port, timeout=10.0):
    """Send ApiVersions v0 on a fresh connection and wait for the answer."""
    client_id = b"bench"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        hdr = b""
        while len(hdr) < 4:
            chunk = s.recv(4 - len(hdr))
            if not chunk:
                raise OSError("connection closed before ApiVersions response")
            hdr += chunk
        (size,) = struct.unpack(">i", hdr)
        got = 0
        while got < size:
            chunk = s.recv(size - got)
            if not chunk:
                raise OSError("short ApiVersions response")
            got += len(chunk)


def wait_first_accept(proc, port, deadline_s):
    """Poll connect() in a tight loop from process spawn; returns seconds since `t0` of the
    first accepted connection (caller subtracts its own t0)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited during start-up (rc {proc.returncode})")
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            return time.monotonic()
        except OSError:
            time.sleep(0.0002)
        finally:
            s.close()
    raise RuntimeError(f"port {port} not accepting after {deadline_s}s")


class Broker:
    """A broker this harness starts and stops (kafka, gregor) or an external one. `tls` (workload 7):
    the paths of make_tls_certs(); the broker then also gets an SSL listener (server certificate only,
    ssl.client.auth=none) on `ssl_port`, beside the PLAINTEXT one."""
    managed = True

    def __init__(self, name, workdir, tls=None):
        self.name = name
        self.workdir = workdir
        self.tls = tls
        self.port = None
        self.ssl_port = None
        self.proc = None
        self.pid = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def ssl_bootstrap(self):
        return f"127.0.0.1:{self.ssl_port}"

    def _spawn(self):
        raise NotImplementedError

    def start(self, timeout):
        """Fresh data dir, spawn, measure start-up. Returns dict of start-up figures (seconds)."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        os.makedirs(self.workdir)
        self.port = free_port()
        self.ssl_port = free_port(exclude={self.port}) if self.tls else None
        self.prepare()
        t0 = time.monotonic()
        self.proc = self._spawn()
        self.pid = self.proc.pid
        t_accept = wait_first_accept(self.proc, self.port, timeout)
        # First answered request (ApiVersions), retried until the broker answers.
        end = time.monotonic() + timeout
        while True:
            try:
                api_versions_roundtrip(self.port)
                break
            except OSError:
                if time.monotonic() > end or self.proc.poll() is not None:
                    raise RuntimeError("broker never answered ApiVersions")
                time.sleep(0.001)
        t_api = time.monotonic()
        return {"accept_s": t_accept - t0, "api_versions_s": t_api - t0}

    def prepare(self):
        pass

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, n=30):
        path = os.path.join(self.workdir, "broker.log")
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class GregorBroker(Broker):
    def __init__(self, workdir, binary, tls=None):
        super().__init__("gregor", workdir, tls)
        self.binary = binary

    def _spawn(self):
        listener = f"PLAINTEXT://127.0.0.1:{self.port}"
        tls = []
        if self.tls:
            listener += f",SSL://127.0.0.1:{self.ssl_port}"
            tls = ["--override", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL",
                   "--override", "ssl.keystore.type=PEM",
                   "--override", f"ssl.keystore.location={self.tls['keystore']}",
                   "--override", "ssl.client.auth=none"]
        cmd = [self.binary,
               "--override", f"listeners={listener}",
               "--override", f"advertised.listeners={listener}",
               "--override", f"log.dirs={self.workdir}/data",
               "--override", "metrics.listener="] + tls
        out = open(os.path.join(self.workdir, "broker.log"), "ab")
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


class KafkaBroker(Broker):
    """Apache Kafka 4.1.2 from the compat-tests Maven jars, KRaft combined broker+controller, one node,
    the same server.properties as compat-tests/bin/kafka-reference-broker.sh, -Xmx1g -Xms1g, G1.
    Spawned directly (not via the reference script) so start-up is timed from process spawn and the
    PID is the java process itself (the wrapper scripts exec)."""

    def __init__(self, workdir, tls=None):
        super().__init__("kafka", workdir, tls)

    def prepare(self):
        cport = self.port + 1
        while True:
            if cport == self.ssl_port:
                cport += 1
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", cport))
                    break
                except OSError:
                    cport += 1
        props = os.path.join(self.workdir, "server.properties")
        ssl_listener = f",SSL://127.0.0.1:{self.ssl_port}" if self.tls else ""
        # workload 7: as compat-tests/security/secnode.py (a PEM key store file holding the unencrypted
        # PKCS#8 key and the certificate, no password)
        ssl_props = f"""ssl.keystore.type=PEM
ssl.keystore.location={self.tls['keystore']}
ssl.client.auth=none
""" if self.tls else ""
        with open(props, "w") as f:
            f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{self.port}{ssl_listener},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}{ssl_listener}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT{',SSL:SSL' if self.tls else ''}
{ssl_props}log.dirs={self.workdir}/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
""")
        # Formatting the storage (kafka-storage.sh format) is a one-time install step: not timed.
        cid = subprocess.run([os.path.join(COMPAT_BIN, "kafka-storage.sh"), "random-uuid"],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = subprocess.run([os.path.join(COMPAT_BIN, "kafka-storage.sh"), "format", "-t", cid, "-c", props],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("kafka-storage format failed: " + r.stdout + r.stderr)

    def _spawn(self):
        env = dict(os.environ)
        env["KAFKA_HEAP_OPTS"] = "-Xmx1g -Xms1g"
        out = open(os.path.join(self.workdir, "broker.log"), "ab")
        return subprocess.Popen([os.path.join(COMPAT_BIN, "kafka-server-start.sh"),
                                 os.path.join(self.workdir, "server.properties")],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)

    def wait_ready(self, timeout=90):
        end = time.monotonic() + timeout
        path = os.path.join(self.workdir, "broker.log")
        while time.monotonic() < end:
            with open(path, errors="replace") as f:
                if "Kafka Server started" in f.read():
                    return
            time.sleep(0.2)
        raise RuntimeError("Kafka did not log 'Kafka Server started'")


class ExternalBroker(Broker):
    managed = False

    def __init__(self, name, bootstrap, pid=None):
        super().__init__(name, None)
        self._bootstrap = bootstrap
        self.pid = pid

    @property
    def bootstrap(self):
        return self._bootstrap

    def start(self, timeout):
        return None

    def stop(self):
        pass


# ----------------------------------------------------------------------------------------------
# Admin (confluent-kafka AdminClient from the compat venv)
# ----------------------------------------------------------------------------------------------
def admin_for(bootstrap):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 10000})


def wait_metadata(bootstrap, timeout=60):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            admin_for(bootstrap).list_topics(timeout=5)
            return
        except Exception as e:  # noqa: BLE001
            last = e
            time.sleep(0.2)
    raise RuntimeError(f"no metadata from {bootstrap}: {last}")


def create_topic(bootstrap, topic, partitions, timeout=60):
    from confluent_kafka.admin import NewTopic
    a = admin_for(bootstrap)
    fut = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                          operation_timeout=30)[topic]
    fut.result(timeout=timeout)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        md = a.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and len(md.partitions) == partitions and \
                all(p.leader >= 0 for p in md.partitions.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {topic} has no leaders after {timeout}s")


def delete_topic(bootstrap, topic, timeout=60):
    try:
        a = admin_for(bootstrap)  # keep the client alive until the future resolves
        a.delete_topics([topic], operation_timeout=30)[topic].result(timeout=timeout)
    except Exception as e:  # noqa: BLE001
        log(f"  delete topic {topic}: {e}")


def create_replicated_topic(bootstrap, topic, assignment, configs, timeout=90):
    """Create `topic` with an explicit replica assignment (partition p -> [leader, followers...]) and topic
    configs; wait until every partition's leader is its preferred (first) replica and its ISR holds every
    replica. Returns {node id: partitions led}. CreateTopics is retried while the cluster answers with a
    retriable error (a controller still settling)."""
    from confluent_kafka.admin import NewTopic
    a = admin_for(bootstrap)
    end = time.monotonic() + timeout
    while True:
        fut = a.create_topics([NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment,
                                       config=dict(configs))],
                              operation_timeout=30)[topic]
        try:
            fut.result(timeout=timeout)
            break
        except Exception as e:  # noqa: BLE001
            err = e.args[0] if e.args else None
            if getattr(err, "retriable", lambda: False)() and time.monotonic() < end:
                log(f"  create {topic}: {e}; retrying")
                time.sleep(1)
                continue
            raise
    last = None
    while time.monotonic() < end:
        md = a.list_topics(topic, timeout=10).topics.get(topic)
        if md is not None and md.error is None and len(md.partitions) == len(assignment):
            parts = md.partitions
            last = {p: (parts[p].leader, sorted(parts[p].isrs)) for p in parts}
            if all(parts[p].leader == assignment[p][0] and sorted(parts[p].isrs) == sorted(assignment[p])
                   for p in parts):
                led = {}
                for p in parts:
                    led[parts[p].leader] = led.get(parts[p].leader, 0) + 1
                return led
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic}: leaders/ISR not as assigned after {timeout}s "
                       f"(partition: (leader, isr)): {last}")


# ----------------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------------
class ClientError(Exception):
    pass


def run_client(cmd, timeout, env=None, logfile=None):
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    import resource
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                           errors="replace")
    except subprocess.TimeoutExpired as e:
        def txt(x):
            return (x or b"").decode(errors="replace") if isinstance(x, bytes) else (x or "")
        out, err = txt(e.stdout), txt(e.stderr)
        if logfile:
            with open(logfile, "a") as f:
                f.write(f"$ {' '.join(cmd)}\nTIMEOUT after {timeout}s\n{out[-3000:]}\n{err[-3000:]}\n")
        hint = [l for l in err.splitlines() if l.strip() and "CONFWARN" not in l][-2:]
        raise ClientError(f"timeout after {timeout:.0f}s, no result" + (": " + " / ".join(hint) if hint else ""))
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the client process (and its children), start-up (JVM) included.
    r.client_cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if logfile:
        with open(logfile, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n# rc={r.returncode} wall={time.monotonic() - t0:.1f}s "
                    f"client_cpu={r.client_cpu_s:.2f}s\n"
                    f"{r.stdout[-6000:]}\n{r.stderr[-6000:]}\n")
    return r


class Clients:
    def __init__(self, rdk_perf, logfile, timeout):
        self.rdk = rdk_perf
        self.logfile = logfile
        self.timeout = timeout

    # --- Java: org.apache.kafka.tools.ProducerPerformance / ConsumerPerformance ---
    def java_produce(self, bootstrap, topic, n, size, props, throughput=-1):
        props = dict(props)
        props["bootstrap.servers"] = bootstrap
        cmd = [os.path.join(COMPAT_BIN, "kafka-producer-perf-test.sh"), "--topic", topic,
               "--num-records", str(n), "--record-size", str(size), "--throughput", str(throughput),
               "--producer-props"] + [f"{k}={v}" for k, v in props.items()]
        r = run_client(cmd, self.timeout, JAVA_CLIENT_ENV, self.logfile)
        m = None
        for line in r.stdout.splitlines():
            mm = re.match(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg "
                          r"latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, "
                          r"(\d+) ms 99.9th", line.strip())
            if mm:
                m = mm
        if r.returncode != 0 or not m:
            raise ClientError(f"kafka-producer-perf-test rc={r.returncode}: " + _err_tail(r))
        sent = int(m.group(1))
        if sent != n:
            raise ClientError(f"only {sent}/{n} records sent")
        if "Exception" in r.stderr or "ERROR" in r.stderr:
            raise ClientError("producer errors: " + _err_tail(r))
        rps = float(m.group(2))
        return {"records": sent, "records_per_s": rps, "mb_per_s": rps * size / MB,
                "lat_avg_ms": float(m.group(4)), "lat_max_ms": float(m.group(5)),
                "lat_p50_ms": float(m.group(6)), "lat_p95_ms": float(m.group(7)),
                "lat_p99_ms": float(m.group(8)), "lat_p999_ms": float(m.group(9)),
                "client_cpu_s": r.client_cpu_s}

    def java_consume_group(self, bootstrap, topic, group, n, size, config=None):
        """config: a consumer properties file (--consumer.config), e.g. security.protocol=SSL."""
        cmd = [os.path.join(COMPAT_BIN, "kafka-consumer-perf-test.sh"), "--bootstrap-server", bootstrap,
               "--topic", topic, "--messages", str(n), "--group", group, "--timeout", "30000"]
        if config:
            cmd += ["--consumer.config", config]
        r = run_client(cmd, self.timeout, JAVA_CLIENT_ENV, self.logfile)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        hdr_i = next((i for i, l in enumerate(lines) if l.startswith("start.time")), None)
        keys = [k.strip() for k in lines[hdr_i].split(",")] if hdr_i is not None else []
        vals = next(([v.strip() for v in l.split(",")] for l in lines[(hdr_i or 0) + 1:]
                     if re.match(r"\d{4}-\d\d-\d\d", l) and len(l.split(",")) == len(keys)), None)
        if r.returncode != 0 or not keys or not vals:
            raise ClientError(f"kafka-consumer-perf-test rc={r.returncode}: " + _err_tail(r))
        d = dict(zip(keys, vals))
        got = int(d["data.consumed.in.nMsg"])
        if got < n:
            warn = [l for l in lines if l.startswith("WARNING")]
            raise ClientError(f"consumed only {got}/{n} records" + (": " + warn[0] if warn else ""))
        fetch_s = float(d["fetch.time.ms"]) / 1000
        # fetch.* excludes the group join (rebalance.time.ms), like rdkafka_performance's clock that
        # starts at the first message.
        return {"records": got, "records_per_s": got / fetch_s, "mb_per_s": got * size / MB / fetch_s,
                "rebalance_ms": float(d["rebalance.time.ms"]), "fetch_s": fetch_s,
                "client_cpu_s": r.client_cpu_s}

    # --- librdkafka: examples/rdkafka_performance ---
    def rdk_produce(self, bootstrap, topic, n, size, acks, conf=None, rate=None, latency_file=None):
        cmd = [self.rdk, "-P", "-t", topic, "-b", bootstrap, "-s", str(size), "-c", str(n),
               "-a", str(acks)]
        # rdkafka_performance sets linger.ms=1000, which makes each run's last partial batches wait 1 s:
        # use librdkafka's own default (5 ms) unless the workload says otherwise.
        conf = dict({"linger.ms": "5"}, **(conf or {}))
        for k, v in conf.items():
            cmd += ["-X", f"{k}={v}"]
        if rate:
            cmd += ["-r", str(int(rate))]
        if latency_file:
            cmd += ["-l", "-A", latency_file]
        r = run_client(cmd, self.timeout, None, self.logfile)
        ms_ = re.findall(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, "
                         r"(\d+) failed\) in (\d+)ms: (\d+) msgs/s", r.stdout)
        m = _Last(ms_[-1]) if ms_ else None
        if r.returncode != 0 or not m:
            raise ClientError(f"rdkafka_performance -P rc={r.returncode}: " + _err_tail(r))
        delivered, failed, ms = int(m.group(3)), int(m.group(4)), int(m.group(5))
        if delivered != n or failed:
            raise ClientError(f"{delivered}/{n} delivered, {failed} failed: " + _err_tail(r))
        rps = delivered / (max(ms, 1) / 1000)
        return {"records": delivered, "records_per_s": rps, "mb_per_s": rps * size / MB,
                "elapsed_s": ms / 1000, "client_cpu_s": r.client_cpu_s}

    def rdk_consume(self, bootstrap, topic, n, size, partitions=None, group=None, extra=None, timeout=None):
        """partitions: list -> simple assigned consumer (-C); group: -G balanced consumer."""
        cmd = [self.rdk, "-t", topic, "-b", bootstrap, "-c", str(n)]
        if group:
            cmd = [self.rdk, "-G", group, "-t", topic, "-b", bootstrap, "-c", str(n),
                   "-X", "auto.offset.reset=earliest"]
        else:
            cmd += ["-C", "-o", "beginning"]
            for p in partitions:
                cmd += ["-p", str(p)]
        cmd += extra or []
        r = run_client(cmd, timeout or self.timeout, None, self.logfile)
        ms_ = re.findall(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms", r.stdout)
        m = _Last(ms_[-1]) if ms_ else None
        if r.returncode != 0 or not m:
            raise ClientError(f"rdkafka_performance rc={r.returncode}: " + _err_tail(r))
        got, nbytes, ms = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if got < n:
            raise ClientError(f"consumed only {got}/{n} records: " + _err_tail(r))
        ms = max(ms, 1)
        return {"records": got, "records_per_s": got / (ms / 1000), "mb_per_s": nbytes / MB / (ms / 1000),
                "elapsed_s": ms / 1000, "client_cpu_s": r.client_cpu_s}


class _Last:
    """re.Match-like view of one re.findall tuple (the last summary line printed)."""

    def __init__(self, groups):
        self.groups_ = groups

    def group(self, i):
        return self.groups_[i - 1]


def _err_tail(r):
    text = (r.stderr.strip() + "\n" + r.stdout.strip()).strip()
    lines = [l for l in text.splitlines() if l.strip() and not l.startswith("|") and "CONFWARN" not in l]
    return " / ".join(lines[-3:])[-400:] or "(no output)"


def percentiles(values, ps=(50, 99, 99.9)):
    v = sorted(values)
    out = {}
    for p in ps:
        if not v:
            out[p] = None
            continue
        k = min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))
        out[p] = v[k]
    return out


def read_latency_file(path):
    with open(path) as f:
        return [int(x) for x in f.read().split() if x.strip()]


# ----------------------------------------------------------------------------------------------
# Workloads
# ----------------------------------------------------------------------------------------------
class Recorder:
    """Collects figures for one target; each figure is either a number or {'error': str}."""

    def __init__(self, broker, proc):
        self.broker = broker
        self.proc = proc
        self.values = {}
        self.details = {}
        self.cpu = {}  # group -> [cpu_seconds, bytes, user_seconds, system_seconds]

    def cpu_now(self):
        if not self.proc:
            return None
        try:
            return self.proc.cpu_times()
        except OSError:
            return None

    def measure(self, key, fn, cpu_group=None, nbytes=0):
        """Run fn() -> result dict; store result under key; add broker CPU to cpu_group."""
        c0 = self.cpu_now()
        try:
            res = fn()
        except (ClientError, RuntimeError, Exception) as e:  # noqa: BLE001
            log(f"  {self.broker.name} {key}: n/a ({e})")
            self.details[key] = {"error": str(e)}
            return None
        c1 = self.cpu_now()
        if c0 is not None and c1 is not None:
            user, system = c1[0] - c0[0], c1[1] - c0[1]
            res["broker_cpu_s"] = user + system
            res["broker_user_s"] = user
            res["broker_sys_s"] = system
            if nbytes:
                res["broker_cpu_s_per_gb"] = (user + system) / (nbytes / 1e9)
            if cpu_group:
                g = self.cpu.setdefault(cpu_group, [0.0, 0, 0.0, 0.0])
                g[0] += user + system
                g[1] += nbytes
                g[2] += user
                g[3] += system
        self.details[key] = res
        log(f"  {self.broker.name} {key}: " + ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()))
        return res

    def measure_interleaved(self, variants, runs):
        """variants: [(key, fn, bytes per run)]. Runs every fn `runs` times, the variants taking turns
        (A B A B ...) so that a change in the machine's load hits each alike. Per key: the median run by
        MB/s with every run's figure, and the broker CPU of all its runs in the CPU group `key`. A failed
        run ends that variant (its figure is the error); the other variants go on."""
        acc = {key: [] for key, _, _ in variants}
        failed = {}
        for i in range(max(1, runs)):
            for key, fn, nbytes in variants:
                if key in failed:
                    continue
                c0 = self.cpu_now()
                try:
                    res = fn()
                except Exception as e:  # noqa: BLE001
                    log(f"  {self.broker.name} {key} run {i + 1}: n/a ({e})")
                    failed[key] = str(e)
                    continue
                c1 = self.cpu_now()
                if c0 is not None and c1 is not None:
                    user, system = c1[0] - c0[0], c1[1] - c0[1]
                    res.update(broker_cpu_s=user + system, broker_user_s=user, broker_sys_s=system,
                               broker_cpu_s_per_gb=(user + system) / (nbytes / 1e9), bytes=nbytes)
                acc[key].append(res)
                log(f"  {self.broker.name} {key} run {i + 1}: " + ", ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()))
        for key, _, _ in variants:
            done = acc[key]
            if key in failed:
                self.details[key] = {"error": failed[key], "runs_mb_per_s": [r["mb_per_s"] for r in done]}
                continue
            if all("broker_cpu_s" in r for r in done):
                self.cpu[key] = [sum(r["broker_cpu_s"] for r in done), sum(r["bytes"] for r in done),
                                 sum(r["broker_user_s"] for r in done), sum(r["broker_sys_s"] for r in done)]
            ranked = sorted(done, key=lambda r: r["mb_per_s"])
            out = dict(ranked[len(ranked) // 2])
            out["runs_mb_per_s"] = [r["mb_per_s"] for r in done]  # in run order
            self.details[key] = out


def produce_runs():
    out = []
    for client in ("rdkafka", "java"):
        for parts in (1, 6):
            for codec in ("none", "lz4"):
                out.append((client, parts, codec))
    return out


def run_workloads(rec, clients, args, kafka_max):
    b = rec.broker
    bs = b.bootstrap
    sc = args.scale
    n_1k_java = max(2000, int(600_000 * sc))
    n_1k_rdk = max(2000, int(1_500_000 * sc))
    n_100b = max(5000, int(2_000_000 * sc))
    n_fill = max(5000, int(1_000_000 * sc))  # 1 KiB records: ~1 GB at scale 1

    # Warm-up (excluded): JIT for the JVM broker, page cache / allocator for both.
    log(f"{b.name}: warm-up")
    create_topic(bs, "warmup", 6)
    for _ in range(2):
        try:
            clients.rdk_produce(bs, "warmup", max(2000, int(100_000 * sc)), 1024, 1)
            clients.java_produce(bs, "warmup", max(2000, int(100_000 * sc)), 1024, {"acks": "1"})
            clients.rdk_consume(bs, "warmup", max(2000, int(100_000 * sc)), 1024, partitions=list(range(6)))
        except ClientError as e:
            log(f"  warm-up error: {e}")

    if rec.proc:
        rec.proc.peak_rss = 0
        rec.proc.start_sampling()

    # W1: 1 KiB, acks=1, 1 and 6 partitions, none and lz4, both clients.
    log(f"{b.name}: W1 produce 1 KiB acks=1")
    runs = max(1, args.produce_runs)
    for client, parts, codec in produce_runs():
        base = f"w1-{client}-p{parts}-{codec}"
        key = f"w1.{client}.p{parts}.{codec}"
        if client == "java":
            n = n_1k_java
            fn = lambda t: clients.java_produce(bs, t, n, 1024, {"acks": "1", "compression.type": codec})
        else:
            n = n_1k_rdk
            fn = lambda t: clients.rdk_produce(bs, t, n, 1024, 1, {"compression.codec": codec})
        rec.measure(key, lambda: median_of_topics(bs, base, parts, fn, runs),
                    cpu_group=f"ingest.1k.{codec}", nbytes=n * 1024 * runs)

    # W2: 100 B, acks=all, idempotent.
    log(f"{b.name}: W2 produce 100 B acks=all idempotent")
    for client in ("rdkafka", "java"):
        key = f"w2.{client}"
        if client == "java":
            fn = lambda t: clients.java_produce(bs, t, n_100b, 100,
                                                {"acks": "all", "enable.idempotence": "true"})
        else:
            fn = lambda t: clients.rdk_produce(bs, t, n_100b, 100, -1, {"enable.idempotence": "true"})
        rec.measure(key, lambda: median_of_topics(bs, f"w2-{client}", 1, fn, runs),
                    cpu_group="ingest.100b.idem", nbytes=n_100b * 100 * runs)

    # W3: consume ~1 GB from the head of a 6-partition topic, page cache warm.
    log(f"{b.name}: W3 fill {n_fill} x 1 KiB, then consume")
    fill_ok = True
    try:
        create_topic(bs, "w3", 6)
        fill = rec.measure("w3.fill", lambda: clients.rdk_produce(bs, "w3", n_fill, 1024, 1))
        fill_ok = fill is not None
        # warm the page cache (and the JIT) with one full pass; not reported
        clients.rdk_consume(bs, "w3", n_fill, 1024, partitions=list(range(6)))
    except Exception as e:  # noqa: BLE001
        log(f"  W3 fill failed: {e}")
        fill_ok = False
    # a group that never gets its assignment must not stall the run: 60 s plus the read at >= 20 MB/s
    group_timeout = min(args.client_timeout, 60 + n_fill * 1024 / 20e6)
    for key, fn in (
        ("w3.rdkafka.assign", lambda: clients.rdk_consume(bs, "w3", n_fill, 1024, partitions=list(range(6)))),
        ("w3.rdkafka.group", lambda: clients.rdk_consume(bs, "w3", n_fill, 1024, group=f"bench-rdk-{time.time_ns()}",
                                                            timeout=group_timeout)),
        ("w3.java.group", lambda: clients.java_consume_group(bs, "w3", f"bench-java-{time.time_ns()}", n_fill, 1024)),
    ):
        if not fill_ok:
            rec.details[key] = {"error": "fill failed"}
            continue
        rec.measure(key, lambda: median_of(fn, args.consume_runs), cpu_group="serve",
                    nbytes=n_fill * 1024 * args.consume_runs)

    # W4: latency at a fixed load = 50% of Kafka's max for the same client (W1, 1 partition, none).
    log(f"{b.name}: W4 latency at fixed load")
    for client in ("rdkafka", "java"):
        key = f"w4.{client}"
        base = kafka_max.get(client)
        src = "kafka"
        if b.name == "kafka":
            base = rec.details.get(f"w1.{client}.p1.none", {}).get("records_per_s")
        if not base:
            own = rec.details.get(f"w1.{client}.p1.none", {}).get("records_per_s")
            base, src = own, "own (no Kafka figure)"
        if args.latency_rate:
            base, src = args.latency_rate * 2, "--latency-rate"
        if not base:
            rec.details[key] = {"error": "no max throughput to derive the rate from"}
            continue
        rate = int(base * 0.5)
        n = max(1000, int(rate * args.latency_seconds * min(1.0, max(sc, 0.2))))
        topic = f"w4-{client}"
        try:
            create_topic(bs, topic, 1)
        except Exception as e:  # noqa: BLE001
            rec.details[key] = {"error": f"create topic: {e}"}
            continue
        if client == "java":
            fn = lambda: dict(clients.java_produce(bs, topic, n, 1024, {"acks": "1", "linger.ms": "0"},
                                                   throughput=rate), rate=rate, rate_source=src)
        else:
            fn = lambda: latency_rdkafka(clients, bs, topic, n, rate, src, b.workdir or args.tmp)
        rec.measure(key, fn, cpu_group=None)

    if rec.proc:
        rec.proc.stop_sampling()


def median_of_topics(bs, base, partitions, fn, runs, create=None):
    """Run fn(topic) `runs` times, each into a fresh topic that is deleted afterwards (disk space);
    the median run by MB/s, with every run's figure kept. The first run keeps the plain topic name,
    so that later workloads can refer to it. `create(bs, topic, partitions)` defaults to create_topic."""
    res = []
    for i in range(max(1, runs)):
        topic = base if i == 0 else f"{base}-r{i + 1}"
        (create or create_topic)(bs, topic, partitions)
        res.append(fn(topic))
        if i:
            delete_topic(bs, topic)
    res.sort(key=lambda r: r["mb_per_s"])
    out = dict(res[len(res) // 2])
    out["runs_mb_per_s"] = [r["mb_per_s"] for r in res]
    return out


def median_of(fn, runs):
    """Run fn `runs` times; the median run by MB/s, with every run's figure kept."""
    res = [fn() for _ in range(max(1, runs))]
    res.sort(key=lambda r: r["mb_per_s"])
    out = dict(res[len(res) // 2])
    out["runs_mb_per_s"] = [r["mb_per_s"] for r in res]
    return out


def latency_rdkafka(clients, bs, topic, n, rate, src, workdir):
    """Producer at a fixed rate with per-message delivery latency; a concurrent consumer (tail of the
    same partition) measures end-to-end latency from the timestamp in the payload."""
    pfile = os.path.join(workdir, f"lat-prod-{topic}.txt")
    cfile = os.path.join(workdir, f"lat-e2e-{topic}.txt")
    for p in (pfile, cfile):
        if os.path.exists(p):
            os.remove(p)
    ccmd = ["stdbuf", "-oL", clients.rdk, "-C", "-t", topic, "-p", "0", "-o", "end", "-b", bs, "-c", str(n), "-l", "-A", cfile,
            "-X", "fetch.wait.max.ms=100", "-X", "fetch.error.backoff.ms=10"]
    cons = subprocess.Popen(ccmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    ready = threading.Event()
    cons_out = []

    def reader():
        for line in cons.stdout:
            cons_out.append(line)
            if "reached end" in line:
                ready.set()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    if not ready.wait(60):
        cons.kill()
        raise ClientError("e2e consumer never reached the end of the partition: " + "".join(cons_out[-3:]))
    try:
        res = clients.rdk_produce(bs, topic, n, 1024, 1, {"linger.ms": "0"}, rate=rate, latency_file=pfile)
    except ClientError:
        cons.kill()
        raise
    try:
        cons.wait(60)
    except subprocess.TimeoutExpired:
        cons.kill()
    th.join(5)
    prod = read_latency_file(pfile)
    e2e = read_latency_file(cfile) if os.path.exists(cfile) else []
    # warm-up excluded: the first second of samples (connection set-up, metadata), or 10% of short runs
    skip = rate if len(prod) >= 3 * rate else len(prod) // 10
    prod, e2e = prod[skip:], e2e[skip:]
    n -= skip
    pp = percentiles(prod)
    ep = percentiles(e2e)
    res.update({"rate": rate, "rate_source": src,
                "lat_p50_ms": pp[50] / 1000, "lat_p99_ms": pp[99] / 1000, "lat_p999_ms": pp[99.9] / 1000,
                "lat_avg_ms": statistics.mean(prod) / 1000, "lat_samples": len(prod),
                "e2e_samples": len(e2e)})
    if len(e2e) >= 0.9 * n:
        res.update({"e2e_p50_ms": ep[50] / 1000, "e2e_p99_ms": ep[99] / 1000, "e2e_p999_ms": ep[99.9] / 1000})
    else:
        res["e2e_error"] = f"consumer saw {len(e2e)}/{n} records"
    return res


# ----------------------------------------------------------------------------------------------
# Workload 6: replicated (3-node clusters from compat-tests/cluster/cluster.py)
# ----------------------------------------------------------------------------------------------
REPL_NODES = 3
REPL_PARTITIONS = 6
REPL_MIN_ISR = 2
REPL_KAFKA_HEAP = "-Xmx512m -Xms512m"  # per node; compat-tests/cluster/cluster.py's default
CLUSTER_DIR = os.path.join(REPO, "compat-tests", "cluster")


def repl_counts(sc):
    """(librdkafka, Java) records per workload-6 max-throughput run."""
    return max(2000, int(1_000_000 * sc)), max(2000, int(400_000 * sc))


def repl_assignment(ids):
    """6 partitions, replicas rotated over the nodes: each node is the preferred leader of 2."""
    return [[ids[(p + k) % len(ids)] for k in range(len(ids))] for p in range(REPL_PARTITIONS)]


def latency_rdkafka_produce(clients, bs, topic, n, rate, src, workdir, acks, conf):
    """Producer at a fixed rate with per-message delivery latency (-l -A); first second dropped."""
    pfile = os.path.join(workdir, f"lat-prod-{topic}.txt")
    if os.path.exists(pfile):
        os.remove(pfile)
    res = clients.rdk_produce(bs, topic, n, 1024, acks, conf, rate=rate, latency_file=pfile)
    prod = read_latency_file(pfile)
    skip = rate if len(prod) >= 3 * rate else len(prod) // 10
    prod = prod[skip:]
    if not prod:
        raise ClientError("no latency samples")
    pp = percentiles(prod)
    res.update({"rate": rate, "rate_source": src,
                "lat_p50_ms": pp[50] / 1000, "lat_p99_ms": pp[99] / 1000, "lat_p999_ms": pp[99.9] / 1000,
                "lat_avg_ms": statistics.mean(prod) / 1000, "lat_samples": len(prod)})
    return res


def run_replicated(rec, clients, args, repl_max, cluster, workdir):
    """Workload 6 against a running 3-node cluster: acks=all max throughput (both clients, median of
    --produce-runs runs, each into a fresh RF-3 topic), then latency at 50% of Kafka's W6 maximum with
    the same producer settings (linger.ms=5: at linger.ms=0, librdkafka's many small acks=all requests
    cannot reach 50% of the batched maximum on either broker, and the figure is queueing again)."""
    name = rec.broker.name
    bs = cluster.bootstrap
    sc = args.scale
    n_rdk, n_java = repl_counts(sc)
    assignment = repl_assignment(cluster.ids)
    topic_cfg = {"min.insync.replicas": str(REPL_MIN_ISR)}
    layout = rec.details.setdefault("w6.layout", {"assignment": assignment, "configs": topic_cfg,
                                                  "leaders_per_node": {}})

    def create(bs_, topic, _partitions=REPL_PARTITIONS):
        layout["leaders_per_node"][topic] = create_replicated_topic(bs_, topic, assignment, topic_cfg)

    log(f"{name}: W6 warm-up")
    create(bs, "w6-warmup")
    n_warm = max(2000, int(100_000 * sc))
    for _ in range(2):
        try:
            clients.rdk_produce(bs, "w6-warmup", n_warm, 1024, -1)
            clients.java_produce(bs, "w6-warmup", n_warm, 1024, {"acks": "all"})
        except ClientError as e:
            log(f"  warm-up error: {e}")

    if rec.proc:
        rec.proc.peak_rss = 0
        rec.proc.start_sampling()
    try:
        log(f"{name}: W6 max throughput, 1 KiB, acks=all, RF 3, min.insync.replicas={REPL_MIN_ISR}")
        runs = max(1, args.produce_runs)
        for client in ("rdkafka", "java"):
            if client == "java":
                n = n_java
                fn = lambda t: clients.java_produce(bs, t, n, 1024, {"acks": "all"})
            else:
                n = n_rdk
                fn = lambda t: clients.rdk_produce(bs, t, n, 1024, -1)
            rec.measure(f"w6.{client}", lambda: median_of_topics(bs, f"w6-{client}", REPL_PARTITIONS, fn, runs,
                                                                  create=create),
                        cpu_group="w6.ingest", nbytes=n * 1024 * runs)

        log(f"{name}: W6 latency at 50% of Kafka's W6 max")
        for client in ("rdkafka", "java"):
            key = f"w6.lat.{client}"
            own = (rec.details.get(f"w6.{client}") or {}).get("records_per_s")
            base, src = repl_max.get(client), "kafka"
            if name == "kafka":
                base = own
            if not base:
                base, src = own, "own (no Kafka figure)"
            if args.latency_rate:
                base, src = args.latency_rate * 2, "--latency-rate"
            if not base:
                rec.details[key] = {"error": "no max throughput to derive the rate from"}
                continue
            rate = int(base * 0.5)
            n = max(1000, int(rate * args.latency_seconds * min(1.0, max(sc, 0.2))))
            topic = f"w6-lat-{client}"
            try:
                create(bs, topic)
            except Exception as e:  # noqa: BLE001
                rec.details[key] = {"error": f"create topic: {e}"}
                continue
            if client == "java":
                fn = lambda: dict(clients.java_produce(bs, topic, n, 1024, {"acks": "all", "linger.ms": "5"},
                                                       throughput=rate), rate=rate, rate_source=src)
            else:
                fn = lambda: latency_rdkafka_produce(clients, bs, topic, n, rate, src, workdir, -1,
                                                     {"linger.ms": "5"})
            rec.measure(key, fn, cpu_group=None)
    finally:
        if rec.proc:
            rec.proc.stop_sampling()
            rss = rec.details.setdefault("w6.rss", {})
            rss["peak_sum_mb"] = rec.proc.peak_rss / MB
            rss["vmhwm_per_node_mb"] = [v / MB if v else None for v in rec.proc.per_node("VmHWM")]


def replicated_turn(impl, args, clients, repl_max, results):
    """Start a 3-node `impl` cluster (gregor or kafka) with compat-tests/cluster/cluster.py, run workload
    6, stop it and delete its data directories (also on failure or interrupt)."""
    tr = results["targets"].setdefault(impl, {"details": {}, "cpu": {}})
    tr.setdefault("details", {})
    tr.setdefault("cpu", {})
    info = tr["replicated"] = {"nodes": REPL_NODES, "partitions": REPL_PARTITIONS,
                               "replication_factor": REPL_NODES, "min_insync_replicas": REPL_MIN_ISR}
    if impl == "kafka":
        info["heap_opts"] = REPL_KAFKA_HEAP
    workdir = os.path.join(args.tmp, f"{impl}-cluster")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    log(f"=== {impl}: 3-node cluster (workload 6) ===")
    acct0 = cpu_accounting()
    t_turn = time.monotonic()
    c = None
    try:
        if CLUSTER_DIR not in sys.path:
            sys.path.insert(0, CLUSTER_DIR)
        from cluster import Cluster  # compat-tests/cluster/cluster.py: same node properties as the cluster suite
        c = Cluster(n=REPL_NODES, impl=impl, base_dir=workdir, start_timeout=180,
                    gregor_bin=os.path.abspath(args.gregor_bin) if impl == "gregor" else None,
                    heap_opts=REPL_KAFKA_HEAP)
        c.write_properties()
        if impl == "kafka":
            c.format()  # a one-time install step, not part of the start-up figure
        info["start_s"] = c.start()
        info["node_pids"] = {i: c.pid(i) for i in c.ids}
        info["bootstrap"] = c.bootstrap
        log(f"  {impl} cluster up in {info['start_s']:.1f} s (every node lists 3 brokers): {c.bootstrap}")
        wait_metadata(c.bootstrap)
        proc = MultiProc([c.pid(i) for i in c.ids])
        time.sleep(3)
        tr["details"]["w6.rss"] = {"idle_sum_mb": proc.rss() / MB,
                                   "idle_per_node_mb": [v / MB if v else None for v in proc.per_node("VmRSS")]}
        import types
        rec = Recorder(types.SimpleNamespace(name=f"{impl}-cluster", bootstrap=c.bootstrap), proc)
        rec.details = tr["details"]
        try:
            run_replicated(rec, clients, args, repl_max, c, workdir)
        finally:
            tr["cpu"].update(rec.cpu)
        dead = [i for i in c.ids if not c.alive(i)]
        if dead:
            info["error"] = f"node(s) {dead} exited during the workload"
        if impl == "kafka":
            for client in ("rdkafka", "java"):
                v = (tr["details"].get(f"w6.{client}") or {}).get("records_per_s")
                if v:
                    repl_max[client] = v
    except Exception as e:  # noqa: BLE001
        import traceback
        log(f"{impl} cluster: aborted: {e}\n{traceback.format_exc()}")
        info["error"] = str(e)[:2000]
    finally:
        if c is not None:
            # ERROR/FATAL/panic lines logged while the cluster ran (before the shutdown below: Kafka logs
            # a few ERRORs when all its nodes stop together).
            errs = {}
            for i in c.ids:
                try:
                    with open(c.log_path(i), errors="replace") as f:
                        hits = [l.rstrip() for l in f if re.search(r"\b(ERROR|FATAL|panicked)\b", l)]
                except OSError:
                    hits = []
                if hits:
                    errs[str(i)] = {"count": len(hits), "last": [h[:400] for h in hits[-5:]]}
            if errs:
                info["log_errors"] = errs
                log(f"  {impl} cluster: ERROR lines in node logs before shutdown: "
                    + "; ".join(f"node {k}: {v['count']}" for k, v in errs.items()))
            try:
                codes = c.stop()
                info["exit_codes"] = {str(k): v for k, v in codes.items()}
                if impl == "gregor" and any(v != 0 for v in codes.values()):
                    log(f"  gregor cluster: exit codes after SIGTERM {codes}")
            except Exception as e:  # noqa: BLE001
                log(f"  stopping the {impl} cluster: {e}")
            if info.get("error"):
                info["log_tails"] = {str(i): c.log(i, lines=30) for i in c.ids}
            if not args.keep_data:
                for n in c.nodes.values():
                    shutil.rmtree(n.data_dir, ignore_errors=True)
        acct1 = cpu_accounting()
        wall = time.monotonic() - t_turn
        foreign = (acct1[0] - acct0[0]) - (acct1[1] - acct0[1])
        info["foreign_cpu"] = {"cpu_s": foreign, "wall_s": wall, "cores": foreign / wall if wall else None,
                               "load_after": loadavg()}
        log(f"  CPU used by other processes during the {impl} cluster's turn: {foreign:.1f} s in {wall:.0f} s "
            f"({foreign / wall:.2f} cores)")


# ----------------------------------------------------------------------------------------------
# Workload 7: fetch over TLS (an SSL listener beside the PLAINTEXT one, same data, same client)
# ----------------------------------------------------------------------------------------------
TLS_PARTITIONS = 6


def tls_count(sc):
    """1 KiB records in the workload-7 topic (~0.5 GB at scale 1)."""
    return max(5000, int(500_000 * sc))


def make_tls_certs(directory):
    """A test CA and the brokers' server certificate (CN=localhost, SAN DNS:localhost, IP:127.0.0.1), made
    with the openssl CLI the way compat-tests/security/secnode.py's Certs makes them: RSA 2048, SHA-256,
    unencrypted PKCS#8 keys. Returns {"ca": CA certificate PEM (the clients' trust store),
    "keystore": server key + certificate in one PEM file (the brokers' ssl.keystore.location)}."""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)

    def openssl(*a):
        r = subprocess.run(["openssl", *a], cwd=directory, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(a)} exited {r.returncode}: {r.stderr[-500:]}")

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
            "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/O=Gregor Bench/CN=Gregor Bench CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/O=Gregor Bench/CN=localhost")
    with open(os.path.join(directory, "broker.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-sha256", "-days", "3650", "-out", "broker.pem", "-extfile", "broker.ext")
    keystore = os.path.join(directory, "broker-bundle.pem")
    with open(keystore, "w") as out:
        for name in ("broker.key", "broker.pem"):
            with open(os.path.join(directory, name)) as f:
                out.write(f.read())
    ca = os.path.join(directory, "ca.pem")
    client = os.path.join(directory, "client-ssl.properties")
    with open(client, "w") as f:
        f.write(f"security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={ca}\n")
    return {"ca": ca, "keystore": keystore, "client_config": client}


def tls_probe(port, ca, timeout=30):
    """One TLS handshake with the SSL listener from Python's ssl module (trusting only the test CA, checking
    the name 127.0.0.1): fails early and clearly when the listener is not serving TLS with the certificate;
    returns the version and cipher the broker chose for this client (the JDK client may differ)."""
    import ssl
    ctx = ssl.create_default_context(cafile=ca)
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    return {"version": s.version(), "cipher": s.cipher()[0]}
        except ssl.SSLError:
            raise
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def run_tls(rec, clients, args, broker):
    """Workload 7 on a broker started with PLAINTEXT and SSL listeners: fill one 6-partition topic over
    PLAINTEXT (librdkafka), read it once (page cache, not reported), warm both paths with a partial Java
    read each (the broker's JIT, not reported), then Java group reads of the whole topic over PLAINTEXT
    and over SSL, taking turns, --consume-runs each."""
    name = broker.name
    bs = broker.bootstrap
    n = tls_count(args.scale)
    log(f"{name}: W7 fill {n} x 1 KiB over PLAINTEXT, then consume over PLAINTEXT and SSL")
    create_topic(bs, "w7", TLS_PARTITIONS)
    fill = rec.measure("w7.fill", lambda: clients.rdk_produce(bs, "w7", n, 1024, 1))
    if fill is None:
        for key in ("w7.plain", "w7.ssl"):
            rec.details[key] = {"error": "fill failed"}
        return
    try:
        clients.rdk_consume(bs, "w7", n, 1024, partitions=list(range(TLS_PARTITIONS)))
    except ClientError as e:
        log(f"  W7 cache warm-up read: {e}")
    config = broker.tls["client_config"]
    n_warm = min(n, max(2000, n // 4))
    for label, b, conf in (("PLAINTEXT", bs, None), ("SSL", broker.ssl_bootstrap, config)):
        try:
            clients.java_consume_group(b, "w7", f"bench-w7-warm-{time.time_ns()}", n_warm, 1024, config=conf)
        except ClientError as e:
            log(f"  W7 warm-up read over {label}: {e}")
    rec.measure_interleaved([
        ("w7.plain", lambda: clients.java_consume_group(bs, "w7", f"bench-w7-plain-{time.time_ns()}", n, 1024),
         n * 1024),
        ("w7.ssl", lambda: clients.java_consume_group(broker.ssl_bootstrap, "w7", f"bench-w7-ssl-{time.time_ns()}",
                                                      n, 1024, config=config), n * 1024),
    ], args.consume_runs)


def tls_turn(b, args, clients, results):
    """Start `b` (a KafkaBroker/GregorBroker with tls set) fresh, run workload 7, stop it and delete its data
    (also on failure or interrupt). A failure is recorded in the results, never raised."""
    tr = results["targets"].setdefault(b.name, {"details": {}, "cpu": {}})
    tr.setdefault("details", {})
    tr.setdefault("cpu", {})
    info = tr["tls"] = {"records": tls_count(args.scale), "partitions": TLS_PARTITIONS}
    log(f"=== {b.name}: PLAINTEXT + SSL listeners (workload 7) ===")
    acct0 = cpu_accounting()
    t_turn = time.monotonic()
    try:
        s = b.start(timeout=120)
        info["start_s"] = s["api_versions_s"]
        if isinstance(b, KafkaBroker):
            b.wait_ready()
        info["bootstrap"], info["ssl_bootstrap"] = b.bootstrap, b.ssl_bootstrap
        wait_metadata(b.bootstrap)
        info["tls_probe"] = tls_probe(b.ssl_port, b.tls["ca"])
        log(f"  SSL listener {b.ssl_bootstrap}: {info['tls_probe']}")
        rec = Recorder(b, Proc(b.pid))
        rec.details = tr["details"]
        try:
            run_tls(rec, clients, args, b)
        finally:
            tr["cpu"].update(rec.cpu)
        if b.proc.poll() is not None:
            info["error"] = f"broker exited during workload 7 (rc {b.proc.returncode})"
    except Exception as e:  # noqa: BLE001
        import traceback
        log(f"{b.name} workload 7: aborted: {e}\n{traceback.format_exc()}")
        info["error"] = str(e)[:2000]
        for key in ("w7.plain", "w7.ssl"):
            tr["details"].setdefault(key, {"error": f"workload 7 aborted: {str(e)[:300]}"})
    finally:
        if info.get("error"):
            info["log_tail"] = b.log_tail()
        b.stop()
        if not args.keep_data:
            shutil.rmtree(os.path.join(b.workdir, "data"), ignore_errors=True)
        acct1 = cpu_accounting()
        wall = time.monotonic() - t_turn
        foreign = (acct1[0] - acct0[0]) - (acct1[1] - acct0[1])
        info["foreign_cpu"] = {"cpu_s": foreign, "wall_s": wall, "cores": foreign / wall if wall else None,
                               "load_after": loadavg()}
        log(f"  CPU used by other processes during {b.name}'s workload-7 turn: {foreign:.1f} s in {wall:.0f} s "
            f"({foreign / wall:.2f} cores)")


# ----------------------------------------------------------------------------------------------
# Figures: (key, workload, label, unit, better, extractor)
# ----------------------------------------------------------------------------------------------
def figure_defs():
    defs = []

    def d(key, field):
        def ex(det, cpu):
            r = det.get(key)
            if r is None:
                return None
            if "error" in r:
                return {"error": r["error"]}
            if field.startswith("e2e_") and field not in r and "e2e_error" in r:
                return {"error": r["e2e_error"]}
            return r.get(field)
        return ex

    for client, parts, codec in produce_runs():
        cname = "librdkafka" if client == "rdkafka" else "Java"
        defs.append((f"w1.{client}.p{parts}.{codec}", "1 produce 1 KiB acks=1",
                     f"{parts} partition{'s' if parts > 1 else ''}, {codec}, {cname} client", "MB/s", "higher",
                     d(f"w1.{client}.p{parts}.{codec}", "mb_per_s")))
    for client in ("rdkafka", "java"):
        cname = "librdkafka" if client == "rdkafka" else "Java"
        defs.append((f"w2.{client}", "2 produce 100 B acks=all idempotent", f"1 partition, {cname} client",
                     "records/s", "higher", d(f"w2.{client}", "records_per_s")))
    for key, label in (("w3.rdkafka.assign", "assigned (6 partitions), librdkafka"),
                       ("w3.rdkafka.group", "group (subscribe), librdkafka"),
                       ("w3.java.group", "group (subscribe), Java")):
        defs.append((key, "3 consume ~1 GB, cache warm", label, "MB/s", "higher", d(key, "mb_per_s")))
    for client in ("rdkafka", "java"):
        cname = "librdkafka" if client == "rdkafka" else "Java"
        defs.append((f"w4.{client}.rate", "4 latency @ 50% of Kafka max", f"{cname}: achieved load (offered: JSON)",
                     "records/s", "same", d(f"w4.{client}", "records_per_s")))
        for p, f in (("p50", "lat_p50_ms"), ("p99", "lat_p99_ms"), ("p99.9", "lat_p999_ms")):
            defs.append((f"w4.{client}.{p}", "4 latency @ 50% of Kafka max", f"{cname}: produce latency {p}",
                         "ms", "lower", d(f"w4.{client}", f)))
    for p, f in (("p50", "e2e_p50_ms"), ("p99", "e2e_p99_ms"), ("p99.9", "e2e_p999_ms")):
        defs.append((f"w4.e2e.{p}", "4 latency @ 50% of Kafka max", f"librdkafka: end-to-end latency {p}",
                     "ms", "lower", d("w4.rdkafka", f)))

    def cpu(group, part=0):
        """CPU s/GB of a group: part 0 = user + system, 2 = user space only, 3 = kernel only."""
        def ex(det, cpus):
            g = cpus.get(group)
            return g[part] / (g[1] / 1e9) if g and g[1] and len(g) > part else None
        return ex

    defs += [
        ("w5.startup.accept", "5 resources", "start-up: spawn → first accepted TCP connection", "ms", "lower",
         lambda det, c: (det.get("startup") or {}).get("accept_ms")),
        ("w5.startup.api", "5 resources", "start-up: spawn → first ApiVersions response", "ms", "lower",
         lambda det, c: (det.get("startup") or {}).get("api_versions_ms")),
        ("w5.rss.idle", "5 resources", "idle RSS (after start-up, before any load)", "MB", "lower",
         lambda det, c: (det.get("rss") or {}).get("idle_mb")),
        ("w5.rss.load", "5 resources", "peak RSS under load (W1–W4)", "MB", "lower",
         lambda det, c: (det.get("rss") or {}).get("peak_load_mb")),
        ("w5.cpu.ingest.1k.none", "5 resources", "broker CPU per GB ingested (W1, 1 KiB, uncompressed)", "s/GB",
         "lower", cpu("ingest.1k.none")),
        ("w5.cpu.ingest.1k.none.user", "5 resources", "… of which user space (the broker's own code)", "s/GB",
         "lower", cpu("ingest.1k.none", 2)),
        ("w5.cpu.ingest.1k.none.sys", "5 resources", "… of which kernel (socket reads, page-cache writes)", "s/GB",
         "lower", cpu("ingest.1k.none", 3)),
        ("w5.cpu.ingest.1k.lz4", "5 resources", "broker CPU per GB ingested (W1, 1 KiB, lz4)", "s/GB", "lower",
         cpu("ingest.1k.lz4")),
        ("w5.cpu.ingest.100b", "5 resources", "broker CPU per GB ingested (W2, 100 B, acks=all idempotent)",
         "s/GB", "lower", cpu("ingest.100b.idem")),
        ("w5.cpu.serve", "5 resources", "broker CPU per GB served (W3, all three consumers)", "s/GB", "lower",
         cpu("serve")),
        ("w5.cpu.floor", "5 resources", "reference, not a broker: kernel CPU to write 1 GB into new page-cache "
         "pages (a new file, measured just before this broker's turn)", "s/GB", "—",
         lambda det, c: (det.get("page_cache_floor") or {}).get("cpu_s_per_gb")),
        ("w5.cpu.floor.overwrite", "5 resources", "reference, not a broker: kernel CPU to overwrite the same 1 GB "
         "(pages already in the page cache)", "s/GB", "—",
         lambda det, c: (det.get("page_cache_floor") or {}).get("overwrite_cpu_s_per_gb")),
    ]

    wl6 = "6 replicated: 3 nodes, RF 3, min.insync 2, acks=all"
    wl6l = "6 replicated @ 50% of Kafka's W6 max"
    for client in ("rdkafka", "java"):
        cname = "librdkafka" if client == "rdkafka" else "Java"
        defs.append((f"w6.{client}.mb", wl6, f"6 partitions, 1 KiB, {cname} client: max throughput", "MB/s",
                     "higher", d(f"w6.{client}", "mb_per_s")))
        defs.append((f"w6.{client}.rps", wl6, f"6 partitions, 1 KiB, {cname} client: max throughput", "records/s",
                     "higher", d(f"w6.{client}", "records_per_s")))
    for p, f in (("p50", "lat_p50_ms"), ("p99", "lat_p99_ms")):
        defs.append((f"w6.java.max.{p}", wl6, f"Java: produce latency {p} during the max-throughput run "
                     "(mostly queueing in the client)", "ms", "lower", d("w6.java", f)))
    defs += [
        ("w6.cpu.ingest", wl6, "broker CPU per GB ingested, 3 brokers summed (max-throughput runs, both clients; "
         "GB produced by the clients, each byte stored 3×)", "s/GB", "lower", cpu("w6.ingest")),
        ("w6.cpu.ingest.user", wl6, "… of which user space", "s/GB", "lower", cpu("w6.ingest", 2)),
        ("w6.rss.idle", wl6, "RSS of the 3 brokers summed, idle after start-up", "MB", "lower",
         lambda det, c: (det.get("w6.rss") or {}).get("idle_sum_mb")),
        ("w6.rss.peak", wl6, "RSS of the 3 brokers summed, peak during workload 6", "MB", "lower",
         lambda det, c: (det.get("w6.rss") or {}).get("peak_sum_mb")),
    ]
    for client in ("rdkafka", "java"):
        cname = "librdkafka" if client == "rdkafka" else "Java"
        defs.append((f"w6.lat.{client}.rate", wl6l, f"{cname}: achieved load (offered: JSON)",
                     "records/s", "same", d(f"w6.lat.{client}", "records_per_s")))
        for p, f in (("p50", "lat_p50_ms"), ("p99", "lat_p99_ms")):
            defs.append((f"w6.lat.{client}.{p}", wl6l, f"{cname}: produce latency {p} (acks=all)", "ms", "lower",
                         d(f"w6.lat.{client}", f)))

    wl7 = "7 fetch over TLS: consume ~0.5 GB, cache warm, Java group"

    def tls_ratio(det, cpus):
        p, t = det.get("w7.plain"), det.get("w7.ssl")
        if p is None or t is None:
            return None
        for r in (t, p):
            if "error" in r:
                return {"error": r["error"]}
        return t["mb_per_s"] / p["mb_per_s"] if p.get("mb_per_s") else None

    defs += [
        ("w7.plain", wl7, "PLAINTEXT listener", "MB/s", "higher", d("w7.plain", "mb_per_s")),
        ("w7.ssl", wl7, "SSL listener (TLS, same data)", "MB/s", "higher", d("w7.ssl", "mb_per_s")),
        ("w7.ratio", wl7, "SSL ÷ PLAINTEXT throughput", "×", "higher", tls_ratio),
        ("w7.cpu.plain", wl7, "broker CPU per GB served over PLAINTEXT", "s/GB", "lower", cpu("w7.plain")),
        ("w7.cpu.ssl", wl7, "broker CPU per GB served over SSL", "s/GB", "lower", cpu("w7.ssl")),
        ("w7.cpu.ssl.user", wl7, "… of which user space (TLS encryption, the broker's own code)", "s/GB", "lower",
         cpu("w7.ssl", 2)),
    ]
    return defs


WORKLOAD_SETS = {"all": {"single", "replicated", "tls"}, "single": {"single"}, "1-5": {"single"},
                 "replicated": {"replicated"}, "6": {"replicated"}, "tls": {"tls"}, "7": {"tls"}}


def parse_workloads(text):
    sel = set()
    for tok in (t.strip() for t in text.split(",")):
        if not tok:
            continue
        if tok not in WORKLOAD_SETS:
            raise argparse.ArgumentTypeError(
                f"unknown workload set {tok!r}: use all, single (= 1-5), replicated (= 6), tls (= 7), "
                "comma-separated")
        sel |= WORKLOAD_SETS[tok]
    if not sel:
        raise argparse.ArgumentTypeError("no workloads selected")
    return sel


def figure_selected(key, sel):
    if key.startswith("w6."):
        return "replicated" in sel
    if key.startswith("w7."):
        return "tls" in sel
    return "single" in sel


GOALS = [
    # (description, check(values_by_target, ratio) -> (met: bool|None, evidence str))
]


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, dict):
        return "n/a (error: " + v.get("error", "?").replace("|", "/")[:160] + ")"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def build_table(results, targets, sel=("single", "replicated", "tls")):
    rows = []
    for key, wl, label, unit, better, ex in figure_defs():
        if not figure_selected(key, sel):
            continue
        vals = {}
        for t in targets:
            tr = results["targets"].get(t) or {}
            try:
                vals[t] = ex(tr.get("details", {}), tr.get("cpu", {}))
            except Exception:  # noqa: BLE001
                vals[t] = None
        ratios = {}
        k = vals.get("kafka")
        for t in targets:
            if t == "kafka":
                continue
            v = vals.get(t)
            ratios[t] = (v / k) if better != "—" and isinstance(v, (int, float)) and isinstance(k, (int, float)) and k else None
        rows.append({"key": key, "workload": wl, "figure": label, "unit": unit, "better": better,
                     "values": vals, "ratio_vs_kafka": ratios})
    return rows


def goal_checks(rows, target="gregor"):
    by = {r["key"]: r for r in rows}
    out = []

    def ratio(k):
        return by[k]["ratio_vs_kafka"].get(target) if k in by else None

    def val(k):
        v = by[k]["values"].get(target) if k in by else None
        return v if isinstance(v, (int, float)) else None

    thr = [r["key"] for r in rows if r["key"].startswith(("w1.", "w2.", "w3."))]
    rs = [(k, ratio(k)) for k in thr]
    known = [x for x in rs if x[1] is not None]
    below = [f"{by[k]['workload'][2:]} / {by[k]['figure']} ({r:.2f}×)" for k, r in known if r < 2.0]
    out.append(("throughput ≥ 2× Kafka on workloads 1–3",
                None if not known else not below and len(known) == len(rs),
                f"{len(known) - len(below)}/{len(rs)} figures at ≥ 2×" +
                (f"; missing: {len(rs) - len(known)}" if len(known) < len(rs) else "") +
                (f"; below: " + "; ".join(below[:12]) if below else "")))
    for c in ("rdkafka", "java"):
        r = ratio(f"w4.{c}.p99")
        out.append((f"p99 produce latency ≤ 1/5 of Kafka's (workload 4, {'librdkafka' if c == 'rdkafka' else 'Java'})",
                    None if r is None else r <= 0.2, "n/a" if r is None else f"ratio {r:.2f}"))
    v = val("w5.cpu.ingest.1k.none")
    u, k = val("w5.cpu.ingest.1k.none.user"), val("w5.cpu.ingest.1k.none.sys")
    fl, ov = val("w5.cpu.floor"), val("w5.cpu.floor.overwrite")
    out.append(("broker CPU ≤ 0.3 s per GB ingested (1 KiB uncompressed)", None if v is None else v <= 0.3,
                "n/a" if v is None else f"{v:.2f} s/GB" +
                (f" = {u:.2f} user space + {k:.2f} kernel" if u is not None and k is not None else "") +
                (f"; this machine's kernel alone needs {fl:.2f} s/GB to write new page-cache pages "
                 f"({ov:.2f} s/GB to overwrite cached ones)" if fl is not None and ov is not None else "")))
    v = val("w5.startup.accept")
    out.append(("start-up < 20 ms", None if v is None else v < 20, "n/a" if v is None else f"{v:.1f} ms"))
    v = val("w5.rss.idle")
    out.append(("idle RSS < 15 MB", None if v is None else v < 15, "n/a" if v is None else f"{v:.1f} MB"))
    return out


def names_of(t):
    return {"kafka": "Kafka", "gregor": "Gregor"}.get(t, t)


def render_markdown(results, rows, targets):
    m = results["machine"]
    L = []
    L.append("# `make bench`: Gregor vs Apache Kafka " + KAFKA_VERSION)
    L.append("")
    L.append(f"Run {results['started_at']} → {results['finished_at']} ({results['duration_s'] / 60:.1f} min), "
             f"scale {results['config']['scale']}.")
    L.append("")
    L.append(f"- Machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['mem_gb']:.1f} GB RAM, {m['kernel']}, "
             f"data dir on `{m['data_fs']}`")
    L.append(f"- Load average (1/5/15 min): before {' / '.join(map(str, results['load']['before']))}, "
             f"after {' / '.join(map(str, results['load']['after']))}"
             + (f"; waited {results['load']['waited_s']:.0f} s for the 1-min load to drop below "
                f"{results['config']['wait_load']}" if results['load'].get('waited_s') else "")
             + " (\"after\" includes the benchmark's own broker and clients, which keep both cores busy)")
    fc = [f"{t} {results['targets'][t]['foreign_cpu']['cores']:.2f} cores "
          f"({results['targets'][t]['foreign_cpu']['cpu_s']:.0f} CPU s in {results['targets'][t]['foreign_cpu']['wall_s']:.0f} s)"
          for t in targets if (results["targets"].get(t) or {}).get("foreign_cpu")]
    fc += [f"{t} 3-node cluster {rp['foreign_cpu']['cores']:.2f} cores "
           f"({rp['foreign_cpu']['cpu_s']:.0f} CPU s in {rp['foreign_cpu']['wall_s']:.0f} s)"
           for t in targets for rp in [((results["targets"].get(t) or {}).get("replicated") or {})]
           if rp.get("foreign_cpu")]
    fc += [f"{t} workload 7 {tl['foreign_cpu']['cores']:.2f} cores "
           f"({tl['foreign_cpu']['cpu_s']:.0f} CPU s in {tl['foreign_cpu']['wall_s']:.0f} s)"
           for t in targets for tl in [((results["targets"].get(t) or {}).get("tls") or {})]
           if tl.get("foreign_cpu")]
    if fc:
        L.append("- CPU used by processes other than the broker(s), the clients and this harness, during each "
                 "broker's turn (/proc/stat): " + "; ".join(fc) + " — near 0 means the run was not disturbed")
    sel = set(results["config"].get("workloads") or ("single", "replicated", "tls"))
    L.append(f"- Gregor: `{results['versions'].get('gregor_bin')}` (git {results['versions'].get('gregor_git')}), "
             f"fresh `log.dirs`")
    if sel & {"single", "tls"}:
        L.append(f"- Apache Kafka {KAFKA_VERSION} (Maven Central jars), KRaft combined broker+controller, one node, "
                 f"`-Xmx1g -Xms1g` G1, fresh `log.dirs` on the same disk; {results['versions'].get('java')}")
    if "replicated" in sel:
        L.append(f"- Workload 6: a 3-node cluster of each (every node KRaft combined broker+controller, on 127.0.0.1, "
                 f"node properties of `compat-tests/cluster/cluster.py`), one cluster at a time; Kafka "
                 f"`{REPL_KAFKA_HEAP}` G1 per JVM; fresh `log.dirs`")
        for t in targets:
            rp = (results["targets"].get(t) or {}).get("replicated") or {}
            if rp.get("error"):
                L.append(f"- {names_of(t)} cluster error: {rp['error'][:300]}")
    if "tls" in sel:
        L.append("- Workload 7: each broker once more, fresh, with an `SSL` listener (TLS, server certificate "
                 "from a test CA, `ssl.keystore.type=PEM`, `ssl.client.auth=none`) beside the `PLAINTEXT` one; "
                 "the same topic read through each")
        for t in targets:
            tl = (results["targets"].get(t) or {}).get("tls") or {}
            if tl.get("error"):
                L.append(f"- {names_of(t)} workload 7 error: {tl['error'][:300]}")
    L.append(f"- Clients (identical for every broker): Kafka {KAFKA_VERSION} `kafka-producer-perf-test` / "
             f"`kafka-consumer-perf-test` (JVM `-Xmx512M` G1, as Kafka's scripts) and librdkafka "
             f"{results['versions'].get('librdkafka')} `rdkafka_performance` (built from the `rdkafka-sys` crate)")
    L.append("")
    names = {"kafka": "Kafka", "gregor": "Gregor"}
    cols = ["Workload", "Figure", "Unit", "Better"] + [names.get(t, t) for t in targets] + \
        [f"{names.get(t, t)}/Kafka" for t in targets if t != "kafka"]
    L.append("| " + " | ".join(cols) + " |")
    L.append("|" + "---|" * len(cols))
    for r in rows:
        cells = [r["workload"], r["figure"], r["unit"], r["better"]]
        cells += [fmt(r["values"].get(t)) for t in targets]
        for t in targets:
            if t == "kafka":
                continue
            rv = r["ratio_vs_kafka"].get(t)
            cells.append("—" if rv is None else f"{rv:.2f}×")
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Ratio = other broker ÷ Kafka, same run. \"higher\" rows: a ratio above 1 means faster than Kafka; "
             "\"lower\" rows: a ratio below 1 means less latency / CPU / memory / start-up time than Kafka. "
             "1 MB = 10^6 bytes, 1 GB = 10^9 bytes (record payload bytes, uncompressed).")
    L.append("")
    if "gregor" in targets and "kafka" in targets and "single" in sel:
        L.append("## Goals (benchmark targets from the issue, not test assertions)")
        L.append("")
        L.append("| Goal | Met | Evidence |")
        L.append("|---|---|---|")
        for desc, met, ev in results.get("goals", []):
            L.append(f"| {desc} | {'n/a' if met is None else ('yes' if met else 'no')} | {ev} |")
        L.append("")
    L.append("## Method")
    L.append("")
    if sel != {"single", "replicated", "tls"}:
        names = {"single": "1–5", "replicated": "6", "tls": "7"}
        ran = [names[x] for x in ("single", "replicated", "tls") if x in sel]
        L.append(f"Only workload{'s' if len(ran) > 1 or ran == ['1–5'] else ''} {' and '.join(ran)} "
                 f"{'were' if len(ran) > 1 or ran == ['1–5'] else 'was'} run (`--workloads`).")
        L.append("")
    L.append("""- Brokers run one at a time (Kafka first: workload 4's rate comes from Kafka's workload-1 maximum),
  each from a fresh data directory under `bench/results/tmp/`; nothing else of the harness runs meanwhile.
- Start-up: the broker is spawned and `connect()` is polled in a tight loop from the spawn (Kafka: the java
  process, storage already formatted); then an ApiVersions request is retried until answered. Median of
  the start-ups listed in the JSON. Kafka logs "Kafka Server started" later than its port opens.
- Warm-up (excluded from every figure): two rounds of librdkafka + Java produce and one consume on a
  separate topic.
- CPU: utime+stime of the broker process from `/proc/PID/stat` before and after each workload (all threads,
  for Kafka including JIT and GC), also reported split into user space and kernel for 1 KiB ingest. RSS: `VmRSS` from `/proc/PID/status`, idle after start-up, and the peak
  of samples every 200 ms during workloads 1–4.
- Workloads 1 and 2: median of 3 runs per figure (`--produce-runs`; every run in the JSON), each run into
  a fresh topic (the extra ones are deleted afterwards to save disk); CPU per GB covers all runs.
- Workload 1: Java: `acks=1 compression.type=…`, other producer settings at
  their defaults (batch.size 16384, linger.ms 5); librdkafka: `rdkafka_performance -P -a 1 -s 1024`
  with `linger.ms=5` (rdkafka_performance itself sets 1000 ms) and `compression.codec=…`, otherwise
  librdkafka's defaults (batches up to 10000 messages / 1 MB). No keys:
  records spread over the partitions by each client's default partitioner. Payloads: Java random A–Z
  letters, librdkafka a repeated text pattern (so lz4 compresses librdkafka's records far better).
- Workload 2: `acks=all enable.idempotence=true`, 100-byte records, 1 partition.
- Workload 3: a 6-partition topic is filled with ~1 GB of 1 KiB records (librdkafka, not reported) and read
  once to warm the cache; then measured reads from offset 0 (median of 3 reads per consumer, all in the JSON): librdkafka simple consumer assigned to all 6
  partitions (`-C`), librdkafka group consumer (`-G`, subscribe) and Java `kafka-consumer-perf-test`
  (group). Group figures exclude the join (Java `fetch.MB.sec`; librdkafka's clock starts at the first record).
- Workload 4: 1 KiB, acks=1, 1 partition, `linger.ms=0`, offered load = 50% of Kafka's workload-1 maximum
  for the same client (1 partition, uncompressed), about 10 s per run. Java: ProducerPerformance
  `--throughput` percentiles (ms, integer; includes the client's JVM warm-up). librdkafka: per-message
  delivery latency (`-l -A`, first second dropped as warm-up), plus a concurrent librdkafka consumer tailing
  the partition for end-to-end latency (send time in the payload → consumer receive). `rdkafka_performance
  -r` paces per message with a busy poll loop (it occupies one of the two cores) and does not make up for
  its own overhead, so the achieved load can be below the offered one: the table shows the achieved load.
- Workload 6 (replicated): after the single-node turns, a 3-node Kafka cluster, then a 3-node Gregor
  cluster, started with `compat-tests/cluster/cluster.py` (its node properties: combined
  broker+controller, 3 voters, replication factor 3 for internal topics; Kafka `-Xmx512m -Xms512m` G1
  per node, 3 JVMs on the 2 cores); data directories deleted after each cluster's turn. Topics:
  6 partitions, replication factor 3, `min.insync.replicas=2`, replicas assigned explicitly and
  rotated so that each node is the leader of 2 partitions (the harness waits until every leader is the
  assigned one and every ISR has 3 replicas). Warm-up (excluded): two rounds of both producers into a
  separate topic. Max throughput: 1 KiB records, acks=all, otherwise each client's defaults
  (librdkafka `rdkafka_performance -P -a -1` with `linger.ms=5`, not idempotent; Java
  `acks=all`, idempotent by default, linger.ms 5), median of `--produce-runs` runs, each into a fresh
  topic; Java's p50/p99 of those runs are mostly time queued in the client. Latency: the same topic
  and producer settings (`linger.ms=5`, unlike workload 4: with `linger.ms=0` librdkafka's small
  acks=all requests fall short of 50% of the batched maximum and the figure is queueing again),
  offered load = 50% of Kafka's workload-6 maximum for the same client, about 10 s (librdkafka: per-message delivery latency, first second dropped; Java: ProducerPerformance
  percentiles). Broker CPU = utime+stime summed over the 3 broker processes around the max-throughput
  runs, per GB the clients produced (each byte is written on 3 nodes and sent twice over loopback).
  RSS: the 3 processes' `VmRSS` summed, sampled every 200 ms.
- Workload 7 (fetch over TLS): each broker is started again from a fresh data directory with a
  `PLAINTEXT` and an `SSL` listener (server certificate for 127.0.0.1/localhost from a test CA made
  with `openssl`, RSA 2048; PEM key store; no client certificates). A 6-partition topic is filled with
  1 KiB records over PLAINTEXT (librdkafka, ~0.5 GB at scale 1, not reported) and read once (page
  cache warm); one partial Java read over each listener warms the broker (not reported). Then
  `kafka-consumer-perf-test` (group, the whole topic from offset 0) reads it over PLAINTEXT and over
  SSL (`security.protocol=SSL`, the CA as a PEM trust store; TLS 1.3 as negotiated by the JDK),
  taking turns, `--consume-runs` reads each; median MB/s (join excluded, as workload 3). Broker CPU
  per GB: all reads of one listener. On PLAINTEXT both brokers send the record data with
  `sendfile(2)`; TLS cannot (the data is encrypted in the broker), so the SSL rows show what the copy
  and the encryption cost.
- A figure that could not be measured is shown as `n/a (error: …)`; client logs are in
  `bench/results/tmp/clients-*.log` (not committed).""")
    L.append("")
    return "\n".join(L)


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------
def machine_info(tmp):
    info = {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu_model": "?"}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_gb"] = int(f.readline().split()[1]) * 1024 / 1e9
    except OSError:
        info.setdefault("mem_gb", 0)
    try:
        df = subprocess.run(["df", "-P", "-T", tmp], capture_output=True, text=True).stdout.splitlines()[1].split()
        info["data_fs"] = f"{df[0]} ({df[1]})"
    except Exception:  # noqa: BLE001
        info["data_fs"] = "?"
    return info


def page_cache_write_floor(tmp, nbytes=10**9):
    """CPU seconds per GB this machine's kernel spends just copying data into the page cache of the data
    disk (1 MiB pwrite(2) calls from this process, file deleted afterwards): a floor for any broker's
    CPU per GB ingested, since every byte produced is written to the page cache once. Two figures: a new
    file (new page-cache pages, what a broker appending to its log pays) and overwriting the same
    range again (pages already in the cache: the copy alone). On a VM whose memory the host backs
    lazily, the first is far above the second until the guest has touched its memory once."""
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_stime + r.ru_utime

    path = os.path.join(tmp, "page-cache-floor.tmp")
    buf = b"\x5a" * (1 << 20)
    chunks = nbytes // len(buf)
    gb = chunks * len(buf) / 1e9
    out = {}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for key in ("cpu_s_per_gb", "overwrite_cpu_s_per_gb"):
            c0 = cpu()
            for i in range(chunks):
                os.pwrite(fd, buf, i * len(buf))
            out[key] = (cpu() - c0) / gb
    finally:
        os.close(fd)
        os.remove(path)
    return out


def cpu_accounting():
    """(busy CPU seconds of the whole machine from /proc/stat, CPU seconds of this harness and its
    waited-for children: clients, and the broker once stopped)."""
    import resource
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # all but idle and iowait (guest is inside user)
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def wait_for_load(threshold, max_wait):
    t0 = time.monotonic()
    while True:
        la = loadavg()
        if la[0] < threshold:
            return time.monotonic() - t0
        if time.monotonic() - t0 >= max_wait:
            log(f"load still {la[0]} after {max_wait}s; running anyway")
            return time.monotonic() - t0
        log(f"1-min load {la[0]} >= {threshold}; waiting (checked every 60 s)")
        time.sleep(60)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gregor-bin", default=os.environ.get("GREGOR_BIN", os.path.join(REPO, "target/release/gregor")))
    ap.add_argument("--rdkafka-perf", required=True, help="path of rdkafka_performance")
    ap.add_argument("--targets", default="kafka,gregor", help="comma list of kafka,gregor (default both)")
    ap.add_argument("--bootstrap", help="also benchmark an already running broker at HOST:PORT")
    ap.add_argument("--bootstrap-name", default="other", help="column name for --bootstrap")
    ap.add_argument("--bootstrap-pid", type=int, help="PID of the --bootstrap broker (for CPU/RSS)")
    ap.add_argument("--scale", type=float, default=1.0, help="record-count multiplier (0.05 for a smoke run)")
    ap.add_argument("--latency-seconds", type=float, default=10.0, help="duration of each workload-4 run")
    ap.add_argument("--latency-rate", type=float, help="fixed workload-4 rate (records/s) instead of 50%% of Kafka's")
    ap.add_argument("--consume-runs", type=int, default=3,
                    help="workload-3 reads per consumer, workload-7 reads per listener (median)")
    ap.add_argument("--produce-runs", type=int, default=3,
                    help="workload-1/2 runs per figure, each into a fresh topic (median)")
    ap.add_argument("--startup-runs", type=int, default=3, help="start-ups per broker for the start-up median")
    ap.add_argument("--client-timeout", type=float, default=240)
    ap.add_argument("--wait-load", type=float, default=0.0,
                    help="wait (up to --wait-max s) until the 1-min load average is below this")
    ap.add_argument("--wait-max", type=float, default=1200)
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="where latest.md/latest.json go")
    ap.add_argument("--tmp", default=os.path.join(HERE, "results", "tmp"))
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--workloads", type=parse_workloads, default=parse_workloads("all"),
                    help="comma list: all (default), single (= 1-5: one broker), replicated (= 6: 3-node "
                    "clusters), tls (= 7: fetch over PLAINTEXT vs SSL)")
    args = ap.parse_args()
    sel = args.workloads

    # SIGTERM/SIGHUP (e.g. a killed `make bench`): unwind like Ctrl-C, so every `finally` stops its
    # broker(s) and deletes their data; cluster.py's atexit hook SIGKILLs any cluster node left.
    def _terminate(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    targets = [t for t in args.targets.split(",") if t]
    os.makedirs(args.tmp, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    client_log = os.path.join(args.tmp, f"clients-{stamp}.log")
    clients = Clients(args.rdkafka_perf, client_log,
                      args.client_timeout)

    waited = 0.0
    if args.wait_load:
        waited = wait_for_load(args.wait_load, args.wait_max)

    versions = {"kafka": KAFKA_VERSION}
    try:
        versions["java"] = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except Exception:  # noqa: BLE001
        versions["java"] = "java ?"
    try:
        out = subprocess.run([args.rdkafka_perf, "-h"], capture_output=True, text=True).stderr
        versions["librdkafka"] = re.search(r"librdkafka version ([^ ]+)", out).group(1)
    except Exception:  # noqa: BLE001
        versions["librdkafka"] = "?"
    if "gregor" in targets:
        versions["gregor_bin"] = os.path.relpath(args.gregor_bin, REPO) if args.gregor_bin.startswith(REPO) \
            else args.gregor_bin
        try:
            rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "crates", "vendor",
                                    "Cargo.lock"], capture_output=True, text=True).stdout.strip()
            versions["gregor_git"] = rev + ("+uncommitted changes" if dirty else "")
            if not os.path.abspath(args.gregor_bin).startswith(REPO + os.sep):
                versions["gregor_git"] += " (repo HEAD at run time; GREGOR_BIN is outside the repo)"
        except Exception:  # noqa: BLE001
            versions["gregor_git"] = "?"

    results = {"started_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine_info(args.tmp), "versions": versions,
               "load": {"before": loadavg(), "waited_s": waited},
               "config": {"scale": args.scale, "latency_seconds": args.latency_seconds,
                          "wait_load": args.wait_load, "targets": targets, "bootstrap": args.bootstrap,
                          "workloads": sorted(sel), "produce_runs": args.produce_runs},
               "targets": {}}
    t_start = time.monotonic()

    brokers = []
    for t in targets:
        if t == "kafka":
            brokers.append(KafkaBroker(os.path.join(args.tmp, "kafka")))
        elif t == "gregor":
            if not os.access(args.gregor_bin, os.X_OK):
                sys.exit(f"gregor binary not found: {args.gregor_bin} (build it or set GREGOR_BIN)")
            brokers.append(GregorBroker(os.path.join(args.tmp, "gregor"), os.path.abspath(args.gregor_bin)))
        else:
            sys.exit(f"unknown target {t}")
    if args.bootstrap:
        if "single" in sel:
            brokers.append(ExternalBroker(args.bootstrap_name, args.bootstrap, args.bootstrap_pid))
            targets.append(args.bootstrap_name)
        if sel - {"single"}:
            log("--bootstrap is ignored by workloads 6 and 7 (the harness starts those brokers itself)")
    if "single" not in sel:
        brokers = []

    import atexit
    atexit.register(lambda: [b.stop() for b in brokers])

    kafka_max = {}
    for b in brokers:
        log(f"=== {b.name} ===")
        tr = {"details": {}, "cpu": {}}
        results["targets"][b.name] = tr
        acct0 = cpu_accounting()
        t_turn = time.monotonic()
        try:
            floor = page_cache_write_floor(args.tmp)
            tr["details"]["page_cache_floor"] = floor
            log(f"  page-cache write floor: new pages {floor['cpu_s_per_gb']:.2f} s/GB, "
                f"overwrite {floor['overwrite_cpu_s_per_gb']:.2f} s/GB")
            if b.managed:
                starts = []
                for i in range(max(1, args.startup_runs)):
                    if i:
                        b.stop()
                    s = b.start(timeout=120)
                    log(f"  start-up {i + 1}: accept {s['accept_s'] * 1000:.1f} ms, "
                        f"ApiVersions {s['api_versions_s'] * 1000:.1f} ms")
                    starts.append(s)
                tr["details"]["startup"] = {
                    "accept_ms": statistics.median(s["accept_s"] for s in starts) * 1000,
                    "api_versions_ms": statistics.median(s["api_versions_s"] for s in starts) * 1000,
                    "runs": starts}
                if isinstance(b, KafkaBroker):
                    b.wait_ready()
            wait_metadata(b.bootstrap)
            proc = Proc(b.pid) if b.pid else None
            if proc:
                time.sleep(3)
                tr["details"]["rss"] = {"idle_mb": proc.rss() / MB}
            rec = Recorder(b, proc)
            rec.details = tr["details"]
            run_workloads(rec, clients, args, kafka_max)
            tr["cpu"] = rec.cpu
            if proc:
                try:
                    hwm = proc.status("VmHWM")
                except OSError:
                    hwm = None
                tr["details"]["rss"].update({"peak_load_mb": proc.peak_rss / MB,
                                             "vmhwm_mb": hwm / MB if hwm else None})
            if b.name == "kafka":
                for c in ("rdkafka", "java"):
                    v = (tr["details"].get(f"w1.{c}.p1.none") or {}).get("records_per_s")
                    if v:
                        kafka_max[c] = v
        except Exception as e:  # noqa: BLE001
            import traceback
            log(f"{b.name}: aborted: {e}\n{traceback.format_exc()}")
            tr["error"] = str(e)
            if b.managed:
                tr["log_tail"] = b.log_tail()
        finally:
            b.stop()
            if b.managed and not args.keep_data:
                shutil.rmtree(os.path.join(b.workdir, "data"), ignore_errors=True)
            acct1 = cpu_accounting()
            wall = time.monotonic() - t_turn
            foreign = (acct1[0] - acct0[0]) - (acct1[1] - acct0[1])
            tr["foreign_cpu"] = {"cpu_s": foreign, "wall_s": wall, "cores": foreign / wall if wall else None,
                                 "load_after": loadavg()}
            log(f"  CPU used by other processes during {b.name}'s turn: {foreign:.1f} s in {wall:.0f} s "
                f"({foreign / wall:.2f} cores)")

    # Workload 7: each broker again, fresh, with an SSL listener beside the PLAINTEXT one (Kafka first).
    if "tls" in sel:
        tls_brokers = []
        try:
            certs = make_tls_certs(os.path.join(args.tmp, "tls-certs"))
            results["tls_certs"] = certs
            for t in targets:
                if t == "kafka":
                    tls_brokers.append(KafkaBroker(os.path.join(args.tmp, "kafka-tls"), tls=certs))
                elif t == "gregor":
                    tls_brokers.append(GregorBroker(os.path.join(args.tmp, "gregor-tls"),
                                                    os.path.abspath(args.gregor_bin), tls=certs))
        except Exception as e:  # noqa: BLE001
            log(f"workload 7: no certificates: {e}")
            for t in targets:
                if t in ("kafka", "gregor"):
                    tr = results["targets"].setdefault(t, {"details": {}, "cpu": {}})
                    tr.setdefault("details", {})
                    tr["tls"] = {"error": f"certificates: {e}"}
                    for key in ("w7.plain", "w7.ssl"):
                        tr["details"][key] = {"error": f"certificates: {str(e)[:300]}"}
        brokers.extend(tls_brokers)  # the atexit hook stops them too
        for b in tls_brokers:
            tls_turn(b, args, clients, results)

    # Workload 6: 3-node clusters (Kafka first: the latency runs use 50% of Kafka's W6 maximum).
    if "replicated" in sel:
        repl_max = {}
        for t in targets:
            if t in ("kafka", "gregor"):
                replicated_turn(t, args, clients, repl_max, results)

    results["finished_at"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    results["duration_s"] = time.monotonic() - t_start
    results["load"]["after"] = loadavg()
    rows = build_table(results, targets, sel)
    results["table"] = rows
    if "gregor" in targets and "kafka" in targets and "single" in sel:
        results["goals"] = goal_checks(rows)
    md = render_markdown(results, rows, targets)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(md)
    log(f"wrote {args.out}/latest.md and latest.json ({results['duration_s'] / 60:.1f} min); client log {client_log}")


if __name__ == "__main__":
    main()
