"""Authentication failures as the clients report them: wrong password / unknown user (PLAIN, SCRAM), a mechanism the
broker does not enable, and TLS client-certificate failures on the mTLS listener."""

import pytest
from confluent_kafka import KafkaError

import shelpers as h
from secnode import MECHANISMS, run_tool

PLAIN_FAIL = "Authentication failed: Invalid username or password"
SCRAM_FAIL = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"


@pytest.mark.parametrize("listener,mechanism,user,expected", [
    ("SASL_PLAINTEXT", "PLAIN", "alice", PLAIN_FAIL),
    ("SASL_PLAINTEXT", "PLAIN", "nobody", PLAIN_FAIL),  # unknown user: same message
    ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", SCRAM_FAIL.format("SCRAM-SHA-256")),
    ("SASL_SSL", "SCRAM-SHA-512", "alice", SCRAM_FAIL.format("SCRAM-SHA-512")),
    ("SASL_SSL", "SCRAM-SHA-256", "nobody", SCRAM_FAIL.format("SCRAM-SHA-256")),  # unknown user
    ("SASL_SSL", "PLAIN", "admin", PLAIN_FAIL),
], ids=["plain", "plain-unknown-user", "scram256", "sasl_ssl-scram512", "sasl_ssl-scram256-unknown-user",
        "sasl_ssl-plain"])
def test_confluent_wrong_password(node, listener, mechanism, user, expected):
    conf = h.ck_conf(node, listener, mechanism, user=user, password="not-the-password")
    err, seen = h.ck_auth_errors(conf)
    assert err is not None, f"no authentication error reported; errors seen: {[e.str() for e in seen]}"
    assert err.code() == KafkaError._AUTHENTICATION
    assert "SASL authentication error: " + expected in err.str(), err.str()
    assert not h.ck_can_login(conf, timeout=3)


def test_java_wrong_scram_password(node, tmp_path):
    cfg = tmp_path / "bad.properties"
    cfg.write_text(h.java_client_props(node, "SASL_SSL", "SCRAM-SHA-256", password="not-the-password"))
    p = run_tool("kafka-topics.sh", "--bootstrap-server", node.bootstrap("SASL_SSL"), "--command-config", cfg,
                 "--list", check=False)
    assert p.returncode != 0, p.stdout
    assert ("org.apache.kafka.common.errors.SaslAuthenticationException: "
            + SCRAM_FAIL.format("SCRAM-SHA-256")) in p.stderr, p.stderr[-3000:]
    assert p.stdout.strip() == "Error while executing topic command : " + SCRAM_FAIL.format("SCRAM-SHA-256"), \
        p.stdout


def test_confluent_mechanism_not_enabled(node):
    """librdkafka configured for OAUTHBEARER (not in sasl.enabled.mechanisms): the SaslHandshake answer is
    UNSUPPORTED_SASL_MECHANISM carrying the enabled mechanisms, which librdkafka prints."""
    conf = h.ck_conf(node, "SASL_PLAINTEXT", "OAUTHBEARER")
    del conf["sasl.username"], conf["sasl.password"]
    conf.update({"enable.sasl.oauthbearer.unsecure.jwt": True, "sasl.oauthbearer.config": "principal=alice"})
    err, seen = h.ck_auth_errors(conf)
    assert err is not None, [e.str() for e in seen]
    text = err.str()
    assert "SASL OAUTHBEARER mechanism handshake failed: Broker: Unsupported SASL mechanism: " \
           "broker's supported mechanisms: " in text, text
    listed = text.split("broker's supported mechanisms: ", 1)[1].split(" ", 1)[0]
    assert sorted(listed.split(",")) == sorted(MECHANISMS), text


def test_java_mechanism_not_enabled(node, tmp_path):
    cfg = tmp_path / "oauth.properties"
    cfg.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n"
                   "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
                   'unsecuredLoginStringClaim_sub="alice";\n')
    p = run_tool("kafka-topics.sh", "--bootstrap-server", node.bootstrap("SASL_PLAINTEXT"), "--command-config", cfg,
                 "--list", check=False)
    assert p.returncode != 0, p.stdout
    assert "UnsupportedSaslMechanismException: Client SASL mechanism 'OAUTHBEARER' not enabled in the server, " \
           "enabled mechanisms are [" in p.stderr, p.stderr[-3000:]
    listed = p.stderr.split("enabled mechanisms are [", 1)[1].split("]", 1)[0]
    assert sorted(listed.split(", ")) == sorted(MECHANISMS), listed


@pytest.mark.parametrize("case", ["no-client-cert", "untrusted-client-cert"])
def test_mtls_rejects_client(node, case):
    """ssl.client.auth=required: no certificate, or one signed by another CA, fails the TLS handshake (the broker
    sends a TLS alert); the client never gets metadata."""
    conf = h.ck_conf(node, "SSL", cert=None if case == "no-client-cert" else "mallory")
    err, seen = h.ck_auth_errors(conf, want=(KafkaError._TRANSPORT, KafkaError._SSL, KafkaError._AUTHENTICATION))
    # Kafka: "Receive failed: ...ssl/tls alert bad certificate: SSL alert number 42"; the exact text (alert code, or
    # a reset racing the alert) is not asserted, the absence of any metadata is.
    assert err is not None, [e.str() for e in seen]
    assert not h.ck_can_login(conf, timeout=3)
    h.assert_serving(node)


def test_client_rejects_untrusted_broker_cert(node):
    """The client side of TLS: without the test CA the broker certificate does not verify (sanity check that the
    clients really verify the broker)."""
    conf = h.ck_conf(node, "SSL", ca=False)
    err, seen = h.ck_auth_errors(conf, want=(KafkaError._SSL, KafkaError._TRANSPORT))
    assert err is not None, [e.str() for e in seen]  # librdkafka reports it as _SSL or _TRANSPORT (varies)
    assert "certificate verify failed" in err.str(), err.str()
    assert not h.ck_can_login(conf, timeout=3)
