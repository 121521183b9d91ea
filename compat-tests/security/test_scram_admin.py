"""SCRAM credentials managed with kafka-configs.sh (AlterUserScramCredentials / DescribeUserScramCredentials) and
their effect on logins."""

import re

from confluent_kafka import KafkaError

import shelpers as h
from secnode import run_tool

SCRAM_FAIL = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"


def described_scram(node, user):
    """{mechanism: iterations} from `kafka-configs.sh --describe --entity-type users --entity-name USER`."""
    out = node.scram_describe(user).stdout
    m = re.search(rf"^SCRAM credential configs for user-principal '{re.escape(user)}' are (.*)$", out, re.M)
    if not m:
        return {}, out
    creds = {}
    for piece in m.group(1).split(", "):
        mech, _, it = piece.partition("=iterations=")
        creds[mech] = int(it)
    return creds, out


def test_describe_prints_scram_credentials(node):
    creds, out = described_scram(node, "alice")
    assert creds == {"SCRAM-SHA-256": 8192, "SCRAM-SHA-512": 4096}, out
    # a user without SCRAM credentials (a PLAIN-only user) prints no SCRAM line
    creds, out = described_scram(node, "admin")
    assert creds == {} and "SCRAM" not in out, out


def test_two_mechanisms_in_one_request_rejected(node):
    """Kafka 4.1.2: one AlterUserScramCredentials request may carry only ONE alteration per user, so
    `--add-config 'SCRAM-SHA-256=[...],SCRAM-SHA-512=[...]'` fails as a whole (DUPLICATE_RESOURCE) and creates
    nothing."""
    user = h.unique("erin")
    p = run_tool("kafka-configs.sh", "--bootstrap-server", node.bootstrap(), "--alter", "--entity-type", "users",
                 "--entity-name", user, "--add-config",
                 "SCRAM-SHA-256=[iterations=4096,password=erin-secret],SCRAM-SHA-512=[password=erin-secret]",
                 check=False)
    assert p.returncode != 0, p.stdout
    assert "DuplicateResourceException: A user credential cannot be altered twice in the same request" in p.stderr, \
        p.stderr[-3000:]
    creds, out = described_scram(node, user)
    assert creds == {}, out


def test_broker_side_credential_validation(node):
    """Rejections made by the broker/controller (not by the CLI): too many iterations, deleting a missing
    credential."""
    user = h.unique("ivan")
    p = run_tool("kafka-configs.sh", "--bootstrap-server", node.bootstrap(), "--alter", "--entity-type", "users",
                 "--entity-name", user, "--add-config", "SCRAM-SHA-256=[iterations=20000,password=x]", check=False)
    assert p.returncode != 0
    assert "UnacceptableCredentialException: Too many iterations" in p.stderr, p.stderr[-3000:]
    p = run_tool("kafka-configs.sh", "--bootstrap-server", node.bootstrap(), "--alter", "--entity-type", "users",
                 "--entity-name", user, "--delete-config", "SCRAM-SHA-512", check=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException: Attempt to delete a user credential that does not exist" in p.stderr, \
        p.stderr[-3000:]


def test_delete_scram_credential_makes_login_fail(node):
    user, pw = h.unique("dave"), "dave-secret"
    node.scram_alter(user, add=[("SCRAM-SHA-256", None, pw)])
    node.scram_alter(user, add=[("SCRAM-SHA-512", 4096, pw)])
    c256 = h.ck_conf(node, "SASL_PLAINTEXT", "SCRAM-SHA-256", user=user, password=pw)
    c512 = h.ck_conf(node, "SASL_SSL", "SCRAM-SHA-512", user=user, password=pw)
    # the credentials reach the broker's metadata shortly after the controller committed them
    h.wait_for(lambda: h.ck_can_login(c256, timeout=5), timeout=20, what=f"{user} SCRAM-SHA-256 login")
    h.wait_for(lambda: h.ck_can_login(c512, timeout=5), timeout=20, what=f"{user} SCRAM-SHA-512 login")

    p = node.scram_alter(user, delete=["SCRAM-SHA-256"])
    assert f"Completed updating config for user {user}." in p.stdout, p.stdout
    creds, out = described_scram(node, user)
    assert creds == {"SCRAM-SHA-512": 4096}, out

    def login_fails():
        err, seen = h.ck_auth_errors(c256, timeout=8)
        return err
    err = h.wait_for(login_fails, timeout=20, what="SCRAM-SHA-256 login to fail after the deletion")
    assert err.code() == KafkaError._AUTHENTICATION
    assert SCRAM_FAIL.format("SCRAM-SHA-256") in err.str(), err.str()
    # the other mechanism's credential is untouched
    assert h.ck_can_login(c512, timeout=10)
