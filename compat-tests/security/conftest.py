"""Fixtures for the security suite.

`node`: ONE secured single-node broker for the whole session (SECURITY_IMPL=gregor|kafka, default gregor), see
secnode.py for its listeners and properties. After start the fixture creates, through the PLAINTEXT listener,
the SCRAM credentials of `alice` (SCRAM-SHA-256 iterations=8192 and SCRAM-SHA-512 default iterations, one
kafka-configs.sh call per mechanism: Kafka 4.1.2 rejects two mechanisms of one user in one request) and the topic
`sec-liveness` used by the after-bad-input liveness checks. If the node does not start, every test errors with the
start failure (pytest caches a session fixture's error: the start is attempted once).

On failure the tail of the node's log is attached to the report.
"""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import secnode  # noqa: E402


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return secnode.Certs(tmp_path_factory.mktemp("certs")).generate()


@pytest.fixture(scope="session")
def node(tmp_path_factory, certs):
    impl = secnode.selected_impl()
    try:
        n = secnode.SecNode(tmp_path_factory.mktemp(f"node-{impl}"), certs, impl=impl)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    error = None
    try:
        secs = n.start()
    except Exception as e:  # noqa: BLE001 - reported as every test's error
        error = f"{impl} did not start with the security properties ({n.props_path}): {e}"
    if error:
        pytest.fail(error, pytrace=False)
    print(f"{impl} started in {secs:.1f}s: ports {n.ports}", flush=True)
    try:
        for user, creds in secnode.SCRAM_USERS.items():
            for cred in creds:
                n.scram_alter(user, add=[cred])
        secnode.run_tool("kafka-topics.sh", "--bootstrap-server", n.bootstrap("PLAINTEXT"), "--create",
                         "--topic", "sec-liveness", "--partitions", "1", "--replication-factor", "1")
        yield n
    finally:
        rc = n.stop()
        print(f"{impl} stopped: exit {rc}", flush=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when == "call":
        for name in ("node", "acl_node", "reauth_node"):  # test_acls.py (authorizer), test_reauth.py (KIP-368)
            n = getattr(item, "funcargs", {}).get(name)
            if n is None:
                continue
            state = "running" if n.alive() else f"exit {n.proc.returncode if n.proc else None}"
            rep.sections.append((f"log tail of {n.impl} {name} ({state}; {n.log_path})", n.log_tail(40)))


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _terminate)
