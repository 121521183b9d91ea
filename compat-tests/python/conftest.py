"""Fixtures for the Gregor compatibility suite.

Target selection:
  * COMPAT_BOOTSTRAP=host:port   -> use an already running broker (e.g. the reference Apache Kafka
                                    started by compat-tests/bin/kafka-reference-broker.sh). Tests that
                                    kill the broker are skipped. COMPAT_BROKER_LOG=path lets failures
                                    show that broker's log tail.
  * otherwise                    -> start the gregor binary ($GREGOR_BIN, else
                                    $CARGO_TARGET_DIR/{release,debug}/gregor if that env is set, else
                                    <repo>/target/release/gregor, else <repo>/target/debug/gregor)
                                    on a free port with a fresh data dir.

Durability tests use the `own_broker` factory, which starts a private broker (gregor; or the
reference Kafka when COMPAT_DURABILITY_REFERENCE=1, to validate the tests themselves).
`own_broker(overrides={"log.retention.check.interval.ms": "500"})` sets broker properties: gregor gets
one `--override k=v` per entry, the reference Kafka gets them in its server.properties.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

COMPAT_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = COMPAT_DIR.parent
BIN_DIR = COMPAT_DIR / "bin"

# Every broker process started by this session, so failures can print their log tails.
_ACTIVE_BROKERS = []

# Max seconds for gregor to accept TCP connections after (re)start. The contract is 10 s; the
# kafka-as-gregor.sh validation aid needs more after a kill -9 (log recovery).
START_TIMEOUT = float(os.environ.get("COMPAT_BROKER_START_TIMEOUT", "10"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, timeout, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"broker exited with code {proc.returncode} during startup; log tail:\n{tail(log_path)}"
            )
        if port_open(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"broker port {port} not accepting connections after {timeout}s; log tail:\n{tail(log_path)}")


def tail(path, lines=80):
    if not path:
        return "(no log file)"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


def find_gregor_bin():
    env = os.environ.get("GREGOR_BIN")
    if env:
        return env
    targets = [REPO_DIR / "target"]
    if os.environ.get("CARGO_TARGET_DIR"):
        targets.insert(0, Path(os.environ["CARGO_TARGET_DIR"]))
    candidates = [t / profile / "gregor" for profile in ("release", "debug") for t in targets]
    for p in candidates:
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


class ExternalBroker:
    """A broker this suite did not start (COMPAT_BOOTSTRAP)."""

    is_gregor = False
    can_kill = False

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.log_path = os.environ.get("COMPAT_BROKER_LOG") or None
        self.name = f"external broker {bootstrap}"

    def kill9(self):
        pytest.skip("broker is external (COMPAT_BOOTSTRAP): cannot kill it")

    def restart(self):
        pytest.skip("broker is external (COMPAT_BOOTSTRAP): cannot restart it")

    def stop(self):
        pass


class GregorBroker:
    """A gregor process owned by the test session: start / kill9 / restart on the same port and dir."""

    is_gregor = True
    can_kill = True

    def __init__(self, binary, workdir, port=None, overrides=None, extra_overrides=None):
        self.binary = binary
        self.overrides = dict(overrides or {})
        # Extra `key=value` overrides, applied after the defaults below (so they win).
        self.extra_overrides = list(extra_overrides or [])
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = str(self.workdir / "gregor.log")
        self.name = f"gregor {self.bootstrap}"
        self.proc = None
        self.starts = 0

    def command(self):
        listener = f"PLAINTEXT://127.0.0.1:{self.port}"
        cmd = [
            self.binary,
            "--override", f"listeners={listener}",
            "--override", f"advertised.listeners={listener}",
            "--override", f"log.dirs={self.data_dir}",
            "--override", "metrics.listener=",
            *[arg for k, v in self.overrides.items() for arg in ("--override", f"{k}={v}")],
        ]
        for kv in self.extra_overrides:
            cmd += ["--override", kv]
        return cmd

    def start(self, timeout=None):
        timeout = timeout or START_TIMEOUT
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        wait_port(self.port, timeout, self.proc, self.log_path)

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, timeout=None):
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()
        self.start(timeout=timeout)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class ReferenceKafkaBroker:
    """Apache Kafka via bin/kafka-reference-broker.sh, with the same start/kill9/restart interface.
    Only used to validate the durability tests themselves (COMPAT_DURABILITY_REFERENCE=1)."""

    is_gregor = False
    can_kill = True

    def __init__(self, workdir, port=None, overrides=None):
        self.workdir = Path(workdir)
        self.overrides = dict(overrides or {})
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.log_path = str(self.workdir / "server.log")
        self.name = f"reference kafka {self.bootstrap}"

    def _script(self, *args, timeout=120):
        env = dict(os.environ)
        if self.overrides:
            # Appended to server.properties when the script writes it (first start); later lines win.
            env["KAFKA_EXTRA_PROPS"] = "\n".join(f"{k}={v}" for k, v in self.overrides.items())
        subprocess.run([str(BIN_DIR / "kafka-reference-broker.sh"), *args], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, env=env)

    def start(self, timeout=90):
        self._script("start", str(self.workdir), str(self.port), timeout=timeout + 30)

    def kill9(self):
        pid_file = self.workdir / "kafka.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(100):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            pid_file.unlink()

    def restart(self, timeout=90):
        self.kill9()
        self.start(timeout=timeout)

    def stop(self):
        self._script("stop", str(self.workdir))


def _require_gregor_bin():
    binary = find_gregor_bin()
    if binary is None:
        pytest.fail(
            "no gregor binary: set GREGOR_BIN or build target/release/gregor "
            "(or set COMPAT_BOOTSTRAP=host:port to test an already running broker)",
            pytrace=False,
        )
    return binary


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    bootstrap = os.environ.get("COMPAT_BOOTSTRAP")
    if bootstrap:
        b = ExternalBroker(bootstrap)
        _ACTIVE_BROKERS.append(b)
        yield b
        _ACTIVE_BROKERS.remove(b)
        return
    binary = _require_gregor_bin()
    b = GregorBroker(binary, tmp_path_factory.mktemp("gregor"))
    b.start()
    _ACTIVE_BROKERS.append(b)
    try:
        yield b
    finally:
        _ACTIVE_BROKERS.remove(b)
        b.stop()


@pytest.fixture
def own_broker(tmp_path_factory):
    """Factory: a private, killable broker with a fresh data dir (gregor only, unless
    COMPAT_DURABILITY_REFERENCE=1 selects the reference Apache Kafka).

    make(overrides={"key": "value"}) sets broker properties (Kafka names) for the private broker's
    whole life, restarts included."""
    started = []

    def make(overrides=None, extra_overrides=None):
        """overrides: broker properties (Kafka names) for gregor and the reference Kafka;
        extra_overrides: gregor-only `key=value` overrides (e.g. a metrics.listener)."""
        if os.environ.get("COMPAT_DURABILITY_REFERENCE") == "1" and not extra_overrides:
            b = ReferenceKafkaBroker(tmp_path_factory.mktemp("refkafka"), overrides=overrides)
        else:
            if os.environ.get("COMPAT_BOOTSTRAP"):
                pytest.skip("gregor-only test (kills the broker); COMPAT_BOOTSTRAP targets an external broker")
            b = GregorBroker(_require_gregor_bin(), tmp_path_factory.mktemp("gregor-own"),
                             overrides=overrides, extra_overrides=extra_overrides)
        started.append(b)
        _ACTIVE_BROKERS.append(b)
        b.start()
        return b

    yield make
    for b in started:
        _ACTIVE_BROKERS.remove(b)
        try:
            b.stop()
        except Exception as e:  # noqa: BLE001 - teardown must not mask the test result
            print(f"stopping {b.name} failed: {e}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in list(_ACTIVE_BROKERS):
            if b.log_path:
                rep.sections.append((f"log tail of {b.name} ({b.log_path})", tail(b.log_path)))


def pytest_configure(config):
    config.addinivalue_line("markers", "gregor_only: needs a broker the suite can kill and restart")
