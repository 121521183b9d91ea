"""One secured single-node KRaft broker (combined broker+controller) of gregor or Apache Kafka 4.1.2.

    certs = Certs(tmp / "certs"); certs.generate()        # CA, broker cert (SAN 127.0.0.1/localhost), client certs
    node = SecNode(impl="kafka", base_dir=tmp, certs=certs)
    node.start()          # write node.properties; Kafka: `kafka-storage.sh format`, then start; wait until ready
    node.bootstrap("SASL_SSL")   # "127.0.0.1:P"
    node.stop()

Listeners (all on 127.0.0.1, ports picked free):
  PLAINTEXT       setup only (kafka-configs.sh creates the SCRAM users through it); also the inter-broker listener
  SASL_PLAINTEXT  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
  SSL             ssl.client.auth=required (mTLS)
  SASL_SSL        PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (no client certificate needed)
  CONTROLLER      PLAINTEXT
$SECURITY_LISTENERS (e.g. "SASL_PLAINTEXT") configures only a subset (PLAINTEXT always included, the sasl.* / ssl.*
properties only when a listener needs them); tests that need a missing listener skip.

Implementation selection: impl argument, else $SECURITY_IMPL (gregor|kafka, default gregor).
gregor: started as `$GREGOR_BIN DIR/node.properties` with exactly the same properties (plus `metrics.listener=`,
as the cluster suite does); gregor formats itself. Kafka: `kafka-storage.sh format -t <id> -c node.properties`,
then `kafka-server-start.sh node.properties` (compat-tests/bin wrappers over the 4.1.2 jars), KAFKA_HEAP_OPTS
"-Xmx512m -Xms512m" unless set. The node runs in its own session (setsid); its log is DIR/node.log.

Certificates are made with the `openssl` CLI (no Python dependency): RSA 2048, SHA-256, a real CA
(basicConstraints CA:TRUE), leaf certificates with CA:FALSE and serverAuth/clientAuth EKUs; private keys are
unencrypted PKCS#8 (`BEGIN PRIVATE KEY`). The broker's key store is one PEM file holding the key and the certificate
(`ssl.keystore.type=PEM`, `ssl.keystore.location`, no password: Kafka 4.1.2 accepts an unencrypted PKCS#8 key in a
PEM key store file), its trust store the CA's PEM (`ssl.truststore.type=PEM`, `ssl.truststore.location`).
"""

import atexit
import base64
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import secwire

SECURITY_DIR = Path(__file__).resolve().parent
COMPAT_DIR = SECURITY_DIR.parent
REPO_DIR = COMPAT_DIR.parent
BIN_DIR = COMPAT_DIR / "bin"
IMPLS = ("gregor", "kafka")
LISTENERS = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL")


def selected_listeners():
    """$SECURITY_LISTENERS (comma-separated subset of LISTENERS; PLAINTEXT is always added), default all. Lets an
    implementation that has, e.g., SASL_PLAINTEXT but no TLS yet run the tests it can: tests that need a listener
    that is not configured are skipped."""
    env = os.environ.get("SECURITY_LISTENERS", "").strip()
    if not env:
        return LISTENERS
    wanted = {x.strip().upper() for x in env.split(",") if x.strip()} | {"PLAINTEXT"}
    unknown = wanted - set(LISTENERS)
    if unknown:
        raise ValueError(f"SECURITY_LISTENERS: unknown listener(s) {sorted(unknown)}; expected some of {LISTENERS}")
    return tuple(l for l in LISTENERS if l in wanted)
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# PLAIN users (listener JAAS config, user_<name>="<password>").
PLAIN_USERS = {"admin": "admin-secret", "alice": "alice-secret"}
# Properties of the ACL node (test_acls.py; SecNode(extra_props=AUTHORIZER_PROPS, plain_users=ACL_PLAIN_USERS)).
AUTHORIZER_PROPS = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    # ANONYMOUS = the PLAINTEXT listener (setup, kafka-acls.sh) and the controller / inter-broker traffic
    "super.users": "User:admin;User:ANONYMOUS",
    "allow.everyone.if.no.acl.found": "false",
}
ACL_PLAIN_USERS = {**PLAIN_USERS, "bob": "bob-secret"}
# SCRAM users created after start with kafka-configs.sh: user -> [(mechanism, iterations or None, password)].
SCRAM_USERS = {
    "alice": [("SCRAM-SHA-256", 8192, "alice-secret"), ("SCRAM-SHA-512", None, "alice-secret")],
}

_LIVE = set()


@atexit.register
def _kill_leftovers():
    for n in list(_LIVE):
        if n.proc is not None and n.proc.poll() is None:
            try:
                os.killpg(n.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def selected_impl():
    impl = os.environ.get("SECURITY_IMPL", "gregor")
    if impl not in IMPLS:
        raise ValueError(f"SECURITY_IMPL={impl!r}: expected one of {IMPLS}")
    return impl


def find_gregor_bin():
    """$GREGOR_BIN, $CARGO_TARGET_DIR/{release,debug}/gregor, target/release/gregor, target/debug/gregor."""
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


def tail(path, lines=60, max_bytes=64 * 1024):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            data = f.read().decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


def random_cluster_id():
    while True:
        s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not s.startswith("-"):
            return s


def run_tool(tool, *args, timeout=90, check=True, input=None, env=None):
    """Run a compat-tests/bin Kafka CLI wrapper; returns CompletedProcess (text). env: variables added to the
    environment (e.g. KAFKA_LOG4J_OPTS)."""
    cmd = [str(BIN_DIR / tool), *map(str, args)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                           env={**os.environ, **env} if env else None,
                           stdin=None if input is not None else subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{tool} timed out after {timeout}s\ncmd: {cmd}\nstdout:\n{e.stdout}\n"
                             f"stderr:\n{e.stderr}") from None
    if check and p.returncode != 0:
        raise AssertionError(f"{tool} exited {p.returncode}\ncmd: {cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


# --------------------------------------------------------------------------------------------- certificates


class Certs:
    """CA + broker + client certificates (PEM files) made with the openssl CLI.

    ca.pem / ca.key                    the trusted test CA ("CN=Gregor Test CA,O=Gregor Test")
    broker.pem / broker.key            CN=localhost, SAN DNS:localhost, IP:127.0.0.1 (serverAuth+clientAuth)
    broker-bundle.pem                  broker.key + broker.pem (the broker's PEM key store)
    alice.pem / alice.key              client cert "CN=alice,OU=clients,O=Gregor Test" signed by the CA
    rogue-ca.pem, mallory.pem/.key     a second, untrusted CA and a client cert it signed
    """

    def __init__(self, directory):
        self.dir = Path(directory)

    def path(self, name):
        return str(self.dir / name)

    def _openssl(self, *args):
        p = subprocess.run(["openssl", *map(str, args)], cwd=self.dir, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")

    def _ca(self, name, subj):
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
                      "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", subj,
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                      "-addext", "subjectKeyIdentifier=hash")

    def _leaf(self, name, subj, ca, san=None):
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                      "-subj", subj)
        ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
               "extendedKeyUsage=serverAuth,clientAuth", "authorityKeyIdentifier=keyid"]
        if san:
            ext.append(f"subjectAltName={san}")
        (self.dir / f"{name}.ext").write_text("\n".join(ext) + "\n")
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                      "-CAcreateserial", "-sha256", "-days", "3650", "-out", f"{name}.pem", "-extfile", f"{name}.ext")

    def generate(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ca("ca", "/O=Gregor Test/CN=Gregor Test CA")
        self._leaf("broker", "/O=Gregor Test/CN=localhost", "ca", san="DNS:localhost,IP:127.0.0.1")
        self._leaf("alice", "/O=Gregor Test/OU=clients/CN=alice", "ca")
        self._ca("rogue-ca", "/O=Rogue/CN=Rogue CA")
        self._leaf("mallory", "/O=Rogue/CN=mallory", "rogue-ca")
        # key + certificate in one file: the broker's PEM key store, and handy for tools that want a single PEM
        for n in ("broker", "alice", "mallory"):
            (self.dir / f"{n}-bundle.pem").write_text((self.dir / f"{n}.key").read_text()
                                                      + (self.dir / f"{n}.pem").read_text())
        return self

    def read(self, name):
        return (self.dir / name).read_text()


# --------------------------------------------------------------------------------------------- the node


class SecNode:
    def __init__(self, base_dir, certs, impl=None, start_timeout=None, stop_timeout=None, heap_opts=None,
                 listeners=None, extra_props=None, plain_users=None):
        """extra_props: properties added to (or overriding) the base set, e.g. AUTHORIZER_PROPS; plain_users: the
        PLAIN users of the SASL listeners' JAAS config (default PLAIN_USERS)."""
        self.impl = impl or selected_impl()
        if self.impl not in IMPLS:
            raise ValueError(f"impl {self.impl!r}: expected one of {IMPLS}")
        self.dir = Path(base_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "data"
        self.props_path = self.dir / "node.properties"
        self.log_path = self.dir / "node.log"
        self.certs = certs
        self.start_timeout = float(start_timeout or os.environ.get("SECURITY_START_TIMEOUT",
                                                                   120 if self.impl == "kafka" else 30))
        self.stop_timeout = float(stop_timeout or os.environ.get("SECURITY_STOP_TIMEOUT", 30))
        self.heap_opts = heap_opts or os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m -Xms512m")
        if self.impl == "gregor":
            self.binary = find_gregor_bin()
            if not self.binary:
                raise RuntimeError("no gregor binary: set GREGOR_BIN or build target/release/gregor "
                                   "(SECURITY_IMPL=kafka runs the suite against Apache Kafka)")
        else:
            self.binary = str(BIN_DIR / "kafka-server-start.sh")
        self.listeners = tuple(listeners or selected_listeners())
        ports = free_ports(len(self.listeners) + 1)
        self.ports = dict(zip(self.listeners, ports))
        self.controller_port = ports[-1]
        self.cluster_id = random_cluster_id() if self.impl == "kafka" else None
        self.extra_props = dict(extra_props or {})
        self.plain_users = dict(plain_users or PLAIN_USERS)
        self.proc = None

    def port(self, listener):
        """The listener's port; skips the calling test when the listener is not configured (SECURITY_LISTENERS)."""
        if listener not in self.ports:
            pytest.skip(f"listener {listener} not configured (SECURITY_LISTENERS={','.join(self.listeners)})")
        return self.ports[listener]

    def bootstrap(self, listener="PLAINTEXT"):
        return f"127.0.0.1:{self.port(listener)}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def jaas_plain(self):
        users = " ".join(f'user_{u}="{p}"' for u, p in self.plain_users.items())
        return ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                f'username="admin" password="{self.plain_users["admin"]}" {users};')

    def properties(self):
        c = self.certs
        lst = ",".join(f"{l}://127.0.0.1:{self.ports[l]}" for l in self.listeners)
        sasl = [l.lower() for l in self.listeners if l.startswith("SASL_")]
        tls = any(l.endswith("SSL") for l in self.listeners)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"{lst},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": lst,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
                                              "SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        if sasl:
            props["sasl.enabled.mechanisms"] = ",".join(MECHANISMS)
        for listener in sasl:
            props[f"listener.name.{listener}.plain.sasl.jaas.config"] = self.jaas_plain()
            for mech in ("scram-sha-256", "scram-sha-512"):
                props[f"listener.name.{listener}.{mech}.sasl.jaas.config"] = \
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        if tls:  # both SSL and SASL_SSL listeners use the same key store / trust store
            props.update({
                "ssl.keystore.type": "PEM",
                "ssl.keystore.location": c.path("broker-bundle.pem"),
                "ssl.truststore.type": "PEM",
                "ssl.truststore.location": c.path("ca.pem"),
            })
        if "SSL" in self.listeners:
            props["listener.name.ssl.ssl.client.auth"] = "required"
        if self.impl == "gregor":
            props["metrics.listener"] = ""  # gregor-only: no Prometheus listener (as in the cluster suite)
        props.update(self.extra_props)
        return props

    def write_properties(self):
        text = "".join(f"{k}={v}\n" for k, v in self.properties().items())
        self.props_path.write_text(text)

    def format(self):
        if (self.data_dir / "meta.properties").exists():
            return
        p = run_tool("kafka-storage.sh", "format", "-t", self.cluster_id, "-c", self.props_path, check=False)
        (self.dir / "format.log").write_text(p.stdout + p.stderr)
        if p.returncode != 0:
            raise RuntimeError(f"kafka-storage.sh format exited {p.returncode}:\n{p.stdout}\n{p.stderr}")

    def start(self):
        t0 = time.monotonic()
        self.write_properties()
        if self.impl == "kafka":
            self.format()
        env = dict(os.environ)
        env["KAFKA_HEAP_OPTS"] = self.heap_opts
        cmd = [self.binary, str(self.props_path)]
        log = open(self.log_path, "ab")
        log.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(cmd)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True, cwd=str(self.dir))
        log.close()
        _LIVE.add(self)
        try:
            self.wait_ready(self.start_timeout - (time.monotonic() - t0))
        except BaseException:
            self.stop()
            raise
        return time.monotonic() - t0

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.impl} exited with code {self.proc.returncode}; log tail:\n"
                               f"{tail(self.log_path)}")

    def wait_ready(self, timeout):
        """Every listener accepts TCP and the PLAINTEXT listener answers Metadata listing this broker."""
        deadline = time.monotonic() + max(1.0, timeout)
        last = None
        while True:
            self.check_alive()
            if all(port_open(p) for p in self.ports.values()):
                try:
                    md = secwire.plaintext_metadata("127.0.0.1", self.ports["PLAINTEXT"], timeout=3)
                    if md["brokers"].get(1) == ("127.0.0.1", self.ports["PLAINTEXT"]):
                        return
                    last = md
                except (OSError, ValueError, ConnectionError) as e:
                    last = repr(e)
            else:
                last = {l: port_open(p) for l, p in self.ports.items()}
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.impl} not ready after {timeout:.0f}s (last: {last}); log tail:\n"
                                   f"{tail(self.log_path)}")
            time.sleep(0.25)

    def stop(self):
        if self.proc is None:
            return None
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                rc = f"SIGKILL after {self.stop_timeout:.0f}s"
        else:
            rc = self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.discard(self)
        return rc

    # ----------------------------------------------------------------------------------------- SCRAM users

    def scram_alter(self, user, add=None, delete=None):
        """kafka-configs.sh --alter over the PLAINTEXT listener. add: [(mech, iterations|None, password)],
        delete: [mech]."""
        args = ["--bootstrap-server", self.bootstrap("PLAINTEXT"), "--alter", "--entity-type", "users",
                "--entity-name", user]
        if add:
            parts = []
            for mech, iters, pw in add:
                inner = (f"iterations={iters}," if iters else "") + f"password={pw}"
                parts.append(f"{mech}=[{inner}]")
            args += ["--add-config", ",".join(parts)]
        if delete:
            args += ["--delete-config", ",".join(delete)]
        return run_tool("kafka-configs.sh", *args)

    def scram_describe(self, user):
        return run_tool("kafka-configs.sh", "--bootstrap-server", self.bootstrap("PLAINTEXT"), "--describe",
                        "--entity-type", "users", "--entity-name", user)

    def log_tail(self, lines=60):
        return tail(self.log_path, lines)
