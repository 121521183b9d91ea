"""ACLs enforced by an authorizer, on a SECOND single-node broker (`acl_node`, module-scoped: own data dir and ports,
stopped at the end of the module) configured as Kafka 4.1.2 needs it (secnode.AUTHORIZER_PROPS):

    authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
    super.users=User:admin;User:ANONYMOUS          # ANONYMOUS = PLAINTEXT listener + controller/inter-broker traffic
    allow.everyone.if.no.acl.found=false

with the listeners PLAINTEXT (setup: topics, records, kafka-acls.sh) and SASL_PLAINTEXT whose PLAIN JAAS config has
the users admin, alice and bob (secnode.ACL_PLAIN_USERS). alice and bob use confluent-kafka over SASL_PLAINTEXT PLAIN;
ACLs are managed with kafka-acls.sh through the PLAINTEXT bootstrap. Every assertion is on what a client reads back.

ACL changes reach the broker's authorizer through the metadata log (CreateAcls/DeleteAcls return once the controller
has committed them), so after every --add / --remove the helpers poll DescribeAcls (answered by the broker's
authorizer) until the change is visible, with a deadline, before the effect is checked.

The last tests use the shared `node` (no authorizer): kafka-acls.sh fails with SecurityDisabledException.
"""

import re
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ConfigResource, NewTopic, ResourcePatternType, ResourceType)

import secnode
import secwire
import shelpers as h
from secnode import run_tool

TAF = KafkaError.TOPIC_AUTHORIZATION_FAILED          # 29
GAF = KafkaError.GROUP_AUTHORIZATION_FAILED          # 30
TXN_AF = KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED  # 53
PROPAGATION_TIMEOUT = 20.0
API_DESCRIBE_ACLS = 29


# --------------------------------------------------------------------------------------------- the ACL node


@pytest.fixture(scope="module")
def acl_node(tmp_path_factory, certs):
    if "SASL_PLAINTEXT" not in secnode.selected_listeners():
        pytest.skip("the ACL node needs the SASL_PLAINTEXT listener (SECURITY_LISTENERS)")
    impl = secnode.selected_impl()
    try:
        n = secnode.SecNode(tmp_path_factory.mktemp(f"acl-node-{impl}"), certs, impl=impl,
                            listeners=("PLAINTEXT", "SASL_PLAINTEXT"), extra_props=secnode.AUTHORIZER_PROPS,
                            plain_users=secnode.ACL_PLAIN_USERS)
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    error = None
    try:
        secs = n.start()
    except Exception as e:  # noqa: BLE001 - reported as every test's error
        error = f"{impl} did not start with the authorizer properties ({n.props_path}): {e}"
    if error:
        pytest.fail(error, pytrace=False)
    print(f"{impl} ACL node started in {secs:.1f}s: ports {n.ports}", flush=True)
    try:
        yield n
    finally:
        rc = n.stop()
        print(f"{impl} ACL node stopped: exit {rc}", flush=True)


def sup(node):
    """A super-user client: PLAINTEXT = User:ANONYMOUS."""
    return {"bootstrap.servers": node.bootstrap("PLAINTEXT"), "socket.timeout.ms": 10000}


def as_user(node, user):
    return h.ck_conf(node, "SASL_PLAINTEXT", "PLAIN", user=user)


# --------------------------------------------------------------------------------------------- kafka-acls.sh

HEADER = re.compile(r"^(Adding|Current) ACLs for resource `ResourcePattern\(resourceType=(\w+), name=(.*), "
                    r"patternType=(\w+)\)`: ?$")
ENTRY = re.compile(r"^\s*\(principal=(.*), host=(.*), operation=(\w+), permissionType=(\w+)\)$")


def acls_cli(node, *args, check=True):
    return run_tool("kafka-acls.sh", "--bootstrap-server", node.bootstrap("PLAINTEXT"), *args, check=check)


def parse_acls(out, kind="Current"):
    """kafka-acls.sh output -> {(resourceType, name, patternType): {(principal, host, operation, permissionType)}}
    for the blocks whose header starts with `kind` ("Current" for --list, "Adding" for --add)."""
    blocks, cur = {}, None
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            cur = blocks.setdefault(m.group(2, 3, 4), set()) if m.group(1) == kind else None
            continue
        m = ENTRY.match(line)
        if m and cur is not None:
            cur.add(m.group(1, 2, 3, 4))
    return blocks


def flat(blocks):
    return {res + entry for res, entries in blocks.items() for entry in entries}


RT_NAMES = {"BROKER": "CLUSTER"}  # librdkafka calls Kafka's CLUSTER resource type (4) BROKER


def described_bindings(node):
    """All ACL bindings as DescribeAcls (confluent-kafka, PLAINTEXT super user) returns them, in the CLI's
    vocabulary: {(resourceType, name, patternType, principal, host, operation, permissionType)}."""
    admin = AdminClient(sup(node))
    flt = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                           AclPermissionType.ANY)
    res = admin.describe_acls(flt, request_timeout=10).result(timeout=15)
    return {(RT_NAMES.get(b.restype.name, b.restype.name), b.name, b.resource_pattern_type.name, b.principal, b.host,
             b.operation.name, b.permission_type.name) for b in res}


def wait_bindings(node, present=(), absent=()):
    """Poll DescribeAcls until every binding in `present` is there and none in `absent` is."""
    present, absent = set(present), set(absent)

    def ok():
        cur = described_bindings(node)
        return present <= cur and not (absent & cur)
    h.wait_for(ok, timeout=PROPAGATION_TIMEOUT, what=f"ACLs +{sorted(present)} -{sorted(absent)} visible")


def acl_add(node, *args):
    """kafka-acls.sh --add ARGS; returns (stdout, the bindings it printed as added) once they are visible."""
    p = acls_cli(node, "--add", *args)
    added = flat(parse_acls(p.stdout, "Adding"))
    assert added, f"--add printed no ACL:\n{p.stdout}"
    wait_bindings(node, present=added)
    return p.stdout, added


def acl_remove(node, bindings, *args):
    """kafka-acls.sh --remove --force ARGS; waits until `bindings` are gone; returns stdout."""
    p = acls_cli(node, "--remove", "--force", *args)
    wait_bindings(node, absent=bindings)
    return p.stdout


# --------------------------------------------------------------------------------------------- client operations


def create_topic(node, topic, records=0):
    """As the super user: create `topic` (1 partition) and write `records` records v0, v1, ..."""
    h.ck_create_topic(sup(node), topic)
    if records:
        p = Producer({**sup(node), "acks": "all"})
        for i in range(records):
            p.produce(topic, value=f"v{i}".encode())
        assert p.flush(30) == 0


def kafka_error(exc):
    err = exc.args[0] if exc.args else None
    assert isinstance(err, KafkaError), f"not a KafkaError: {exc!r}"
    return err


def error_of(call):
    """The KafkaError that call() raises (no traceback kept, so client handles in the caller are freed promptly)."""
    try:
        call()
    except KafkaException as e:
        return kafka_error(e)
    raise AssertionError(f"{call} did not fail")


def produce_one(conf, topic, value=b"x", timeout=20):
    """Produce one record; returns (KafkaError or None, offset)."""
    reports = []
    p = Producer({**conf, "message.timeout.ms": 15000, "error_cb": lambda e: None})
    p.produce(topic, value=value, on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    left = p.flush(timeout)
    assert left == 0 and len(reports) == 1, f"no delivery report within {timeout}s"
    return reports[0]


def consume_first(conf, topic, group, timeout=25):
    """Group consumer (subscribe, earliest): returns ("msg", value) for the first record or ("error", KafkaError)
    for the first consumer error (partition EOF ignored)."""
    c = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 10000, "error_cb": lambda e: None})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                return "error", m.error()
            return "msg", m.value()
        raise AssertionError(f"nothing consumed from {topic} with group {group} within {timeout}s")
    finally:
        c.close()


def topic_md(conf, topic=None):
    """list_topics: {name: error-or-None} (all topics, or just `topic`)."""
    md = AdminClient(conf).list_topics(topic=topic, timeout=10)
    return {name: t.error for name, t in md.topics.items()}


# --------------------------------------------------------------------------------------------- tests


def test_cli_add_list_remove(acl_node):
    """--add prints the added ACLs, --list --topic prints them back, --remove --force removes them (prints nothing)
    and --list then prints nothing."""
    t = h.unique("acl-cli")
    res = ("TOPIC", t, "LITERAL")
    out, added = acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write",
                         "--topic", t)
    entries = {("User:alice", "*", "READ", "ALLOW"), ("User:alice", "*", "WRITE", "ALLOW")}
    assert parse_acls(out, "Adding") == {res: entries}, out
    assert (f"Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name={t}, patternType=LITERAL)`:"
            in out), out

    out = acls_cli(acl_node, "--list", "--topic", t).stdout
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    assert sorted(lines) == sorted([
        f"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name={t}, patternType=LITERAL)`:",
        "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)",
        "(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)",
    ]), out
    assert lines[0].startswith("Current ACLs for resource"), out
    assert all(l.startswith("\t(") for l in out.splitlines() if "principal=" in l), repr(out)

    out = acl_remove(acl_node, added, "--allow-principal", "User:alice", "--operation", "Read", "--operation",
                     "Write", "--topic", t)
    assert out.strip() == "", out
    out = acls_cli(acl_node, "--list", "--topic", t).stdout
    assert out.strip() == "", out


def test_prefixed_write(acl_node):
    """WRITE on the PREFIXED pattern app- lets alice produce to app-x, not to other-x (no DESCRIBE there either:
    the Metadata response already carries TOPIC_AUTHORIZATION_FAILED and the record fails with it)."""
    create_topic(acl_node, "app-x")
    create_topic(acl_node, "other-x")
    out, _ = acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Write",
                     "--resource-pattern-type", "prefixed", "--topic", "app-")
    assert parse_acls(out, "Adding") == {("TOPIC", "app-", "PREFIXED"): {("User:alice", "*", "WRITE", "ALLOW")}}, out
    # --resource-pattern-type match lists every ACL that affects app-x, here the prefixed one
    out = acls_cli(acl_node, "--list", "--topic", "app-x", "--resource-pattern-type", "match").stdout
    assert parse_acls(out) == {("TOPIC", "app-", "PREFIXED"): {("User:alice", "*", "WRITE", "ALLOW")}}, out

    alice = as_user(acl_node, "alice")
    err, offset = produce_one(alice, "app-x", b"granted")
    assert err is None and offset == 0, (err, offset)
    err, offset = produce_one(alice, "other-x", b"denied")
    assert err is not None and err.code() == TAF, err
    # WRITE implies DESCRIBE: alice sees app-x, not other-x
    topics = topic_md(alice)
    assert "app-x" in topics and "other-x" not in topics, topics


def test_group_read(acl_node):
    """READ on topic T + READ on group G: consuming with G works (and the commit is read back); with group H the
    consumer gets GROUP_AUTHORIZATION_FAILED (FindCoordinator)."""
    t, g, other = h.unique("acl-grp"), h.unique("G"), h.unique("H")
    create_topic(acl_node, t, records=1)
    out, _ = acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Read", "--topic", t, "--group", g)
    assert parse_acls(out, "Adding") == {("TOPIC", t, "LITERAL"): {("User:alice", "*", "READ", "ALLOW")},
                                         ("GROUP", g, "LITERAL"): {("User:alice", "*", "READ", "ALLOW")}}, out
    alice = as_user(acl_node, "alice")

    c = Consumer({**alice, "group.id": g, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 10000})
    try:
        c.subscribe([t])
        m = h.wait_for(lambda: c.poll(0.5), timeout=25, what="a record with group G")
        assert m.error() is None and m.value() == b"v0", m.error() or m.value()
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(t, 0)], timeout=10)
        assert committed[0].offset == 1 and committed[0].error is None, committed
    finally:
        c.close()

    kind, err = consume_first(alice, t, other)
    assert kind == "error" and err.code() == GAF, (kind, err)
    assert err.str() == "FindCoordinator response error: Group authorization failed.", err.str()


def test_metadata_hides_topics(acl_node):
    """bob has DESCRIBE on V only: list_topics shows V but not T; asking for T explicitly -> TOPIC_AUTHORIZATION_FAILED,
    exactly as for a topic that does not exist (existence is not leaked, nothing is auto-created). The super user
    admin sees both."""
    t, v, missing = h.unique("acl-hidden"), h.unique("acl-visible"), h.unique("acl-missing")
    create_topic(acl_node, t)
    create_topic(acl_node, v)
    acl_add(acl_node, "--allow-principal", "User:bob", "--operation", "Describe", "--topic", v)
    bob = as_user(acl_node, "bob")
    topics = topic_md(bob)
    assert v in topics and topics[v] is None, topics
    assert t not in topics, topics
    assert not any(name.startswith("__") for name in topics), topics  # internal topics hidden too
    one = topic_md(bob, t)
    assert one[t] is not None and one[t].code() == TAF, one
    one = topic_md(bob, missing)
    assert one[missing] is not None and one[missing].code() == TAF, one
    topics = topic_md(as_user(acl_node, "admin"))
    assert t in topics and v in topics and topics[t] is None, topics
    assert missing not in topic_md(sup(acl_node)), "bob's metadata request created the topic"


def test_deny_wins_over_allow(acl_node):
    """ALLOW ALL + DENY WRITE on topic D: alice still sees D (DESCRIBE), Produce fails with
    TOPIC_AUTHORIZATION_FAILED, consuming (READ) works."""
    d, g = h.unique("acl-deny"), h.unique("DG")
    create_topic(acl_node, d, records=1)
    acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "All", "--topic", d, "--group", g)
    acl_add(acl_node, "--deny-principal", "User:alice", "--operation", "Write", "--topic", d)
    out = acls_cli(acl_node, "--list", "--topic", d).stdout
    assert parse_acls(out) == {("TOPIC", d, "LITERAL"): {("User:alice", "*", "ALL", "ALLOW"),
                                                          ("User:alice", "*", "WRITE", "DENY")}}, out
    alice = as_user(acl_node, "alice")
    md = topic_md(alice, d)
    assert md[d] is None, md
    err, _ = produce_one(alice, d, b"denied")
    assert err is not None and err.code() == TAF, err
    assert consume_first(alice, d, g) == ("msg", b"v0")


def test_cluster_create(acl_node):
    """CreateTopics needs CREATE on the cluster (or the topic): bob gets TOPIC_AUTHORIZATION_FAILED
    "Authorization failed."; after --allow-principal User:bob --operation Create --cluster it works; the creator gets
    no implicit ACL (bob cannot see his topic); after --remove bob is denied again."""
    bob_admin = AdminClient(as_user(acl_node, "bob"))

    def create(name):
        try:
            bob_admin.create_topics([NewTopic(name, 1, 1)], request_timeout=15)[name].result(timeout=20)
            return None
        except KafkaException as e:
            return kafka_error(e)

    first = h.unique("bob-t")
    err = create(first)
    assert err is not None and err.code() == TAF and err.str() == "Authorization failed.", err
    assert first not in topic_md(sup(acl_node))

    out, added = acl_add(acl_node, "--allow-principal", "User:bob", "--operation", "Create", "--cluster")
    try:
        out = acls_cli(acl_node, "--list", "--cluster").stdout
        lines = [l.strip() for l in out.splitlines() if l.strip()]
        assert lines == [
            "Current ACLs for resource `ResourcePattern(resourceType=CLUSTER, name=kafka-cluster, patternType=LITERAL)`:",
            "(principal=User:bob, host=*, operation=CREATE, permissionType=ALLOW)"], out
        assert create(first) is None
        h.wait_for(lambda: first in topic_md(sup(acl_node)), what=f"{first} created")
        assert first not in topic_md(as_user(acl_node, "bob"))  # no DESCRIBE on his own topic
    finally:
        acl_remove(acl_node, added, "--allow-principal", "User:bob", "--operation", "Create", "--cluster")
    again = h.unique("bob-t")
    err = create(again)
    assert err is not None and err.code() == TAF, err


def test_transactional_id(acl_node):
    """WRITE on the topic but not on transactional id X: init_transactions fails (fatal)
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED (FindCoordinator); after --transactional-id X --operation Write a
    transaction commits and a read_committed consumer reads its records."""
    t, x = h.unique("acl-txn"), h.unique("X")
    create_topic(acl_node, t)
    acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Write", "--topic", t)
    alice = as_user(acl_node, "alice")

    p = Producer({**alice, "transactional.id": x, "error_cb": lambda e: None})
    err = error_of(lambda: p.init_transactions(20))
    assert err.code() == TXN_AF and err.fatal(), err
    assert "Transactional Id authorization failed" in err.str(), err.str()
    del p

    out, _ = acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Write", "--transactional-id", x)
    assert parse_acls(out, "Adding") == {("TRANSACTIONAL_ID", x, "LITERAL"): {("User:alice", "*", "WRITE",
                                                                                 "ALLOW")}}, out
    p = Producer({**alice, "transactional.id": x})
    p.init_transactions(30)
    p.begin_transaction()
    values = [f"txn-{i}".encode() for i in range(3)]
    for v in values:
        p.produce(t, value=v)
    p.commit_transaction(30)

    c = Consumer({**sup(acl_node), "group.id": h.unique("txn-check"), "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    got = []
    try:
        c.assign([TopicPartition(t, 0, 0)])
        deadline = time.monotonic() + 20
        while len(got) < len(values) and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        c.close()
    assert got == values, got


# The matrix: one fixed ACL set on topic M, group MG and the prefix M-new-; every (principal, operation) outcome.
AUTH, DENY = "authorized", "denied"
MATRIX_EXPECTED = {
    # operation:        alice                 bob
    "produce":          {"alice": AUTH,       "bob": (DENY, TAF)},   # bob: DESCRIBE only -> Produce response error
    "consume-group":    {"alice": AUTH,       "bob": (DENY, TAF)},   # bob: group READ, no topic READ -> Fetch error
    "describe-topic":   {"alice": AUTH,       "bob": AUTH},          # alice: READ/WRITE imply DESCRIBE
    "create-topic":     {"alice": AUTH,       "bob": (DENY, TAF)},   # alice: CREATE on prefix M-new-
    "delete-topic":     {"alice": (DENY, TAF), "bob": AUTH},         # bob: DELETE on prefix M-new-
    "describe-configs": {"alice": AUTH,       "bob": (DENY, TAF)},   # alice: DESCRIBE_CONFIGS on M
}


def test_acl_matrix(acl_node, capsys):
    m = h.unique("M")
    mg, prefix = m + "-g", m + "-new-"
    create_topic(acl_node, m, records=1)
    for user in ("alice", "bob"):
        create_topic(acl_node, f"{prefix}del-{user}")
    acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write",
            "--operation", "DescribeConfigs", "--topic", m)
    acl_add(acl_node, "--allow-principal", "User:alice", "--allow-principal", "User:bob", "--operation", "Read",
            "--group", mg)
    acl_add(acl_node, "--allow-principal", "User:bob", "--operation", "Describe", "--topic", m)
    acl_add(acl_node, "--allow-principal", "User:alice", "--operation", "Create", "--resource-pattern-type",
            "prefixed", "--topic", prefix)
    acl_add(acl_node, "--allow-principal", "User:bob", "--operation", "Delete", "--resource-pattern-type",
            "prefixed", "--topic", prefix)

    def admin_call(fut_map, key):
        try:
            return AUTH, fut_map[key].result(timeout=20)
        except KafkaException as e:
            return DENY, kafka_error(e)

    def outcome(user, op):
        conf = as_user(acl_node, user)
        if op == "produce":
            err, offset = produce_one(conf, m, f"by-{user}".encode())
            return (AUTH, offset) if err is None else (DENY, err)
        if op == "consume-group":
            kind, val = consume_first(conf, m, mg)
            return (AUTH, val) if kind == "msg" else (DENY, val)
        if op == "describe-topic":
            md = topic_md(conf, m)
            return (AUTH, md) if md[m] is None else (DENY, md[m])
        admin = AdminClient(conf)
        if op == "create-topic":
            name = f"{prefix}{user}"
            return admin_call(admin.create_topics([NewTopic(name, 1, 1)], request_timeout=15), name)
        if op == "delete-topic":
            name = f"{prefix}del-{user}"
            return admin_call(admin.delete_topics([name], request_timeout=15), name)
        if op == "describe-configs":
            resource = ConfigResource(ResourceType.TOPIC, m)
            res = admin_call(admin.describe_configs([resource], request_timeout=15), resource)
            if res[0] == AUTH:
                assert "cleanup.policy" in res[1], res
            return res
        raise ValueError(op)

    results, wrong = {}, []
    for op, per_user in MATRIX_EXPECTED.items():
        for user, expected in per_user.items():
            got, detail = outcome(user, op)
            results[(user, op)] = (got, detail)
            if expected == AUTH:
                ok = got == AUTH
            else:
                ok = got == DENY and detail.code() == expected[1]
            if not ok:
                wrong.append(f"{user} {op}: expected {expected}, got {got} {detail}")
    # what the authorized calls returned
    assert results[("alice", "produce")][1] >= 1  # after the setup record v0
    assert results[("alice", "consume-group")][1] == b"v0"
    h.wait_for(lambda: f"{prefix}del-bob" not in topic_md(sup(acl_node)), what="bob's deleted topic gone")
    assert f"{prefix}alice" in topic_md(sup(acl_node))
    authorized = sum(1 for got, _ in results.values() if got == AUTH)
    denied = sum(1 for got, _ in results.values() if got == DENY)
    with capsys.disabled():
        print(f"\nACL-MATRIX authorized={authorized} denied={denied}", flush=True)
    assert not wrong, "\n".join(wrong)
    assert (authorized, denied) == (7, 5)


def test_create_acls_invalid_input(acl_node):
    """CreateAcls validated by the broker: an empty resource name (kafka-acls.sh) and a principal without a type
    (confluent-kafka create_acls; kafka-acls.sh refuses that itself) -> INVALID_REQUEST; nothing is stored."""
    p = acls_cli(acl_node, "--add", "--deny-principal", "User:alice", "--operation", "All", "--topic", "",
                 check=False)
    assert p.returncode == 1, p.stdout
    assert ("Error while executing ACL command: org.apache.kafka.common.errors.InvalidRequestException: "
            "Invalid empty resource name") in p.stdout, p.stdout + p.stderr

    name = h.unique("acl-bad-principal")
    binding = AclBinding(ResourceType.TOPIC, name, ResourcePatternType.LITERAL, "alice", "*", AclOperation.READ,
                         AclPermissionType.ALLOW)
    admin = AdminClient(sup(acl_node))  # keep the handle alive while waiting for the future
    err = error_of(lambda: admin.create_acls([binding], request_timeout=10)[binding].result(timeout=15))
    assert err.code() == KafkaError.INVALID_REQUEST, err
    assert err.str() == ("Could not parse principal from `alice` (no colon is present separating the principal "
                         "type from the principal name)"), err.str()
    stored = described_bindings(acl_node)
    assert not any(b[1] in ("", name) for b in stored), stored


def test_no_authorizer_acls_fail(node):
    """The shared node has no authorizer: DescribeAcls and CreateAcls fail with SECURITY_DISABLED."""
    p = run_tool("kafka-acls.sh", "--bootstrap-server", node.bootstrap("PLAINTEXT"), "--list", check=False)
    assert p.returncode == 1, p.stdout
    assert ("Error while executing ACL command: org.apache.kafka.common.errors.SecurityDisabledException: "
            "No Authorizer is configured on the broker") in p.stdout, p.stdout + p.stderr
    # CreateAcls: the same exception with a different message
    p = run_tool("kafka-acls.sh", "--bootstrap-server", node.bootstrap("PLAINTEXT"), "--add", "--allow-principal",
                 "User:alice", "--operation", "Read", "--topic", h.unique("noauth"), check=False)
    assert p.returncode == 1, p.stdout
    assert ("Error while executing ACL command: org.apache.kafka.common.errors.SecurityDisabledException: "
            "No Authorizer is configured.") in p.stdout, p.stdout + p.stderr
    # CreateAcls as confluent-kafka reads it
    admin = AdminClient({"bootstrap.servers": node.bootstrap("PLAINTEXT")})  # kept alive while waiting
    binding = AclBinding(ResourceType.TOPIC, h.unique("noauth"), ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    err = error_of(lambda: admin.create_acls([binding], request_timeout=10)[binding].result(timeout=15))
    assert err.code() == KafkaError.SECURITY_DISABLED and err.str() == "No Authorizer is configured.", err
    # DescribeAcls on the wire (librdkafka 2.16's describe_acls drops this top-level error and returns [])
    assert raw_describe_acls_any(node.port("PLAINTEXT")) == (54, "No Authorizer is configured on the broker", [])


def raw_describe_acls_any(port):
    """DescribeAcls v1 (non-flexible) with a match-everything filter over PLAINTEXT; returns (error_code,
    error_message, resources)."""
    any_ = struct.pack(">b", 1)  # ANY (resource type / pattern type / operation / permission type)
    body = any_ + secwire.string(None) + any_ + secwire.string(None) + secwire.string(None) + any_ + any_
    with secwire.RawConn("127.0.0.1", port) as c:
        r = secwire.Reader(c.roundtrip(secwire.request(API_DESCRIBE_ACLS, 1, 29, body), 29))
    r.i32()  # throttle_time_ms
    err, msg = r.i16(), r.string()
    resources = r.array(lambda r: (r.take(1), r.string(), r.take(1),
                                   r.array(lambda r: (r.string(), r.string(), r.take(1), r.take(1)))))
    return err, msg, resources


def test_admin_apis_answer_authorization_errors(acl_node, tmp_path):
    """Admin APIs an unauthorized principal calls are answered with Kafka's per-API error (the connection stays
    up): bob (DESCRIBE on topic T, READ on group G, nothing on the cluster) gets CLUSTER_AUTHORIZATION_FAILED from
    ElectLeaders, DescribeLogDirs, DescribeClientQuotas and DescribeUserScramCredentials, TOPIC_AUTHORIZATION_FAILED
    from DeleteRecords on T, GROUP_AUTHORIZATION_FAILED from OffsetDelete on G, and ListTransactions shows him no
    transactional id while the super user sees the one that exists."""
    from confluent_kafka import ElectionType
    t = h.unique("adm")
    g, txn = t + "-g", t + "-txn"
    create_topic(acl_node, t, records=2)
    acl_add(acl_node, "--allow-principal", "User:bob", "--operation", "Describe", "--topic", t)
    acl_add(acl_node, "--allow-principal", "User:bob", "--operation", "Read", "--group", g)
    # a committed offset for G (super user) and one transactional id
    c = Consumer({**sup(acl_node), "group.id": g, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)
    c.close()
    p = Producer({**sup(acl_node), "transactional.id": txn})
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(t, value=b"in-txn")
    p.commit_transaction(15)

    bob = as_user(acl_node, "bob")
    admin = AdminClient(bob)
    tp = TopicPartition(t, 0)
    err = error_of(lambda: admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(timeout=15))
    assert err.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, err
    res = admin.delete_records([TopicPartition(t, 0, 1)], request_timeout=10)
    err = error_of(lambda: res[TopicPartition(t, 0, 1)].result(timeout=15))
    assert err.code() == TAF, err
    # the same client keeps serving bob
    md = admin.list_topics(topic=t, timeout=10)
    assert md.topics[t].error is None, md.topics[t].error
    del admin, res

    cfg = tmp_path / "bob.properties"
    cfg.write_text(h.java_client_props(acl_node, "SASL_PLAINTEXT", "PLAIN", user="bob"))
    sasl = acl_node.bootstrap("SASL_PLAINTEXT")
    out = run_tool("kafka-log-dirs.sh", "--bootstrap-server", sasl, "--command-config", cfg, "--describe",
                   check=False)
    assert "ClusterAuthorizationException" in out.stdout + out.stderr, out.stdout + out.stderr
    out = run_tool("kafka-configs.sh", "--bootstrap-server", sasl, "--command-config", cfg, "--describe",
                   "--entity-type", "clients", check=False)
    assert out.returncode != 0 and "ClusterAuthorizationException" in out.stdout + out.stderr, \
        out.stdout + out.stderr
    # DescribeUserScramCredentials (librdkafka 2.16 aborts the process on its error answer: the Java tool instead)
    out = run_tool("kafka-configs.sh", "--bootstrap-server", sasl, "--command-config", cfg, "--describe",
                   "--entity-type", "users", "--entity-name", "alice", check=False)
    print(out.stdout, out.stderr)
    assert out.returncode != 0 and "ClusterAuthorizationException" in out.stdout + out.stderr, \
        out.stdout + out.stderr
    out = run_tool("kafka-consumer-groups.sh", "--bootstrap-server", sasl, "--command-config", cfg,
                   "--delete-offsets", "--group", g, "--topic", t, check=False)
    assert "GroupAuthorizationException" in out.stdout + out.stderr, out.stdout + out.stderr

    listed = run_tool("kafka-transactions.sh", "--bootstrap-server", acl_node.bootstrap("PLAINTEXT"), "list")
    assert txn in listed.stdout, listed.stdout
    listed = run_tool("kafka-transactions.sh", "--bootstrap-server", sasl, "--command-config", cfg, "list")
    assert txn not in listed.stdout and "TransactionalId" in listed.stdout, listed.stdout
