//! Broker configuration: Kafka's config names, types and defaults, read from a Kafka-style
//! `server.properties` file plus `--override key=value` pairs.
//!
//! Every key Gregor understands is declared once in [`KEYS`] with its Kafka default. A key that
//! Kafka knows but Gregor does not use yet is accepted (so existing files keep working); a key
//! nobody knows is a warning; a value of the wrong type is a startup error naming both.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

/// A configuration problem that stops the broker from starting.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A value does not parse as the key's type or is out of range.
    #[error("Invalid value '{value}' for configuration {key}: {reason}")]
    InvalidValue {
        /// Config key.
        key: String,
        /// Offending value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The properties file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// An `--override` is not `key=value`.
    #[error("--override expects key=value, got '{0}'")]
    BadOverride(String),
}

/// The type of a config value (as Kafka's ConfigDef types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Str,
    /// Comma-separated list.
    List,
    /// 32-bit integer.
    Int,
    /// 64-bit integer.
    Long,
    /// true/false.
    Bool,
    /// Floating point.
    Double,
}

/// A config key Gregor knows: name, type, Kafka default (`None`: null), and whether Gregor
/// acts on it (`false`: accepted for compatibility, no effect yet).
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// Kafka name.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// Default (as Kafka documents it, except where Gregor's single-node defaults differ).
    pub default: Option<&'static str>,
    /// Whether Gregor uses it.
    pub used: bool,
    /// One line of documentation.
    pub doc: &'static str,
}

const fn k(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    used: bool,
    doc: &'static str,
) -> Key {
    Key {
        name,
        kind,
        default,
        used,
        doc,
    }
}

use Kind::*;

/// Every key Gregor understands.
pub const KEYS: &[Key] = &[
    k("listeners", List, Some("PLAINTEXT://0.0.0.0:9092"), true, "Listener URIs to bind: NAME://host:port, comma separated."),
    k("advertised.listeners", List, Some("PLAINTEXT://localhost:9092"), true, "Listener URIs returned to clients in Metadata."),
    k("listener.security.protocol.map", List, Some("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"), true, "Listener name to security protocol."),
    k("controller.listener.names", List, None, true, "Listeners the controller quorum and brokers use to reach controllers (KRaft's CONTROLLER listener)."),
    k("inter.broker.listener.name", Str, None, true, "Listener brokers use to reach each other (replica fetchers, forwarding); default: the first client listener."),
    k("process.roles", List, Some("broker,controller"), true, "broker, controller, or both (combined). Without controller.quorum.voters a node runs alone with an embedded quorum."),
    k("controller.quorum.voters", List, None, true, "The controller quorum: id@host:port of every voter (their controller listeners)."),
    k("controller.quorum.bootstrap.servers", List, None, true, "host:port of controllers a broker-only node contacts to find the quorum (alternative to controller.quorum.voters for brokers)."),
    k("broker.session.timeout.ms", Int, Some("9000"), true, "A broker without a heartbeat for this long is fenced by the controller."),
    k("broker.heartbeat.interval.ms", Int, Some("2000"), true, "How often a broker heartbeats to the controller."),
    k("controller.quorum.election.timeout.ms", Int, Some("1000"), true, "Minimum raft election timeout of the controller quorum (the maximum is twice it)."),
    k("node.id", Int, Some("1"), true, "This broker's id."),
    k("broker.id", Int, None, true, "Alias of node.id."),
    k("broker.rack", Str, None, true, "Rack of this broker."),
    k("log.dirs", List, Some("./gregor-data"), true, "Directories holding the logs (the first one is used)."),
    k("log.dir", Str, None, true, "Used when log.dirs is not set."),
    k("auto.create.topics.enable", Bool, Some("true"), true, "Create topics on Metadata requests that allow it."),
    k("num.partitions", Int, Some("1"), true, "Default partition count of new topics."),
    k("default.replication.factor", Int, Some("1"), true, "Default replication factor of new topics."),
    k("delete.topic.enable", Bool, Some("true"), true, "Allow DeleteTopics."),
    k("message.max.bytes", Int, Some("1048588"), true, "Largest record batch accepted (topic: max.message.bytes)."),
    k("socket.request.max.bytes", Int, Some("104857600"), true, "Largest request frame; larger ones close the connection."),
    k("connections.max.idle.ms", Long, Some("600000"), true, "Idle connections are closed after this long."),
    k("log.segment.bytes", Int, Some("1073741824"), true, "Segment size before rolling."),
    k("log.index.interval.bytes", Int, Some("4096"), true, "Bytes of log between offset-index entries."),
    k("log.index.size.max.bytes", Int, Some("10485760"), true, "Largest offset index before rolling."),
    k("log.flush.interval.messages", Long, Some("9223372036854775807"), true, "fsync after this many records."),
    k("log.flush.interval.ms", Long, None, true, "fsync logs at least this often (null: rely on the page cache)."),
    k("log.flush.scheduler.interval.ms", Long, Some("9223372036854775807"), true, "How often to check log.flush.interval.ms."),
    k("replica.high.watermark.checkpoint.interval.ms", Long, Some("5000"), true, "How often the partitions' high watermarks are written to replication-offset-checkpoint."),
    k("metrics.listener", Str, Some("http://0.0.0.0:9644"), true, "Prometheus /metrics HTTP listener, http://host:port (empty disables it)."),
    k("gregor.slow.request.ms", Long, Some("1000"), true, "Log a warning for requests that take longer (waits of Fetch long polls and group rebalances excluded); -1 disables."),
    k("cluster.id", Str, None, false, "Accepted; the cluster id lives in meta.properties."),
    k("num.network.threads", Int, Some("3"), false, "Accepted for compatibility."),
    k("num.io.threads", Int, Some("8"), false, "Accepted for compatibility."),
    k("num.recovery.threads.per.data.dir", Int, Some("2"), false, "Accepted for compatibility."),
    k("socket.send.buffer.bytes", Int, Some("102400"), true, "SO_SNDBUF of accepted client connections, as Kafka sets it; -1 keeps the OS default (autotuned)."),
    k("socket.receive.buffer.bytes", Int, Some("102400"), true, "SO_RCVBUF of the listening sockets (inherited by accepted connections), as Kafka sets it; -1 keeps the OS default (autotuned)."),
    k("queued.max.requests", Int, Some("500"), false, "Accepted for compatibility."),
    k("offsets.topic.num.partitions", Int, Some("50"), true, "Partitions of __consumer_offsets."),
    k("offsets.topic.replication.factor", Int, Some("3"), true, "Replication factor of __consumer_offsets in a cluster (a single node uses 1)."),
    k("transaction.state.log.replication.factor", Int, Some("3"), true, "Replication factor of __transaction_state in a cluster (a single node uses 1)."),
    k("transaction.state.log.min.isr", Int, Some("2"), true, "min.insync.replicas of __transaction_state in a cluster (a single node uses 1)."),
    // Transaction coordinator (crates/txn-coordinator, crates/broker/src/txns.rs).
    k("transaction.max.timeout.ms", Int, Some("900000"), false, "Largest transaction timeout a producer may ask for (InitProducerId answers INVALID_TRANSACTION_TIMEOUT above it)."),
    k("transaction.state.log.num.partitions", Int, Some("50"), false, "Partitions of __transaction_state (created on the first transactional request)."),
    k("transactional.id.expiration.ms", Int, Some("604800000"), false, "A transactional id with no transaction for this long is removed (tombstone in __transaction_state)."),
    k("transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, Some("10000"), false, "How often the coordinator looks for timed-out transactions to abort (and expired transactional ids)."),
    k("group.initial.rebalance.delay.ms", Int, Some("3000"), true, "Delay of a new group's first rebalance."),
    k("group.min.session.timeout.ms", Int, Some("6000"), true, "Smallest session timeout."),
    k("group.max.session.timeout.ms", Int, Some("1800000"), true, "Largest session timeout."),
    k("offsets.retention.minutes", Int, Some("10080"), true, "Offsets of an empty group expire after this long."),
    k("group.max.size", Int, Some("2147483647"), true, "Largest number of members in a classic group."),
    k("group.consumer.heartbeat.interval.ms", Int, Some("5000"), true, "KIP-848 heartbeat interval."),
    k("group.consumer.session.timeout.ms", Int, Some("45000"), true, "KIP-848 session timeout."),
    k("group.consumer.min.session.timeout.ms", Int, Some("45000"), true, "Smallest consumer.session.timeout.ms a group config may set."),
    k("group.consumer.max.session.timeout.ms", Int, Some("60000"), true, "Largest consumer.session.timeout.ms a group config may set."),
    k("group.consumer.min.heartbeat.interval.ms", Int, Some("5000"), true, "Smallest consumer.heartbeat.interval.ms a group config may set."),
    k("group.consumer.max.heartbeat.interval.ms", Int, Some("15000"), true, "Largest consumer.heartbeat.interval.ms a group config may set."),
    k("group.consumer.assignors", List, Some("uniform,range"), true, "KIP-848 server-side assignors; the first is the default."),
    k("log.retention.hours", Int, Some("168"), true, "Retention time (hours)."),
    k("log.retention.minutes", Int, None, true, "Retention time (minutes)."),
    k("log.retention.ms", Long, None, true, "Retention time (ms)."),
    k("log.retention.bytes", Long, Some("-1"), true, "Retention size per partition."),
    k("log.cleanup.policy", List, Some("delete"), true, "Default cleanup.policy."),
    k("log.roll.ms", Long, None, true, "Default segment.ms: roll the active segment after this long."),
    k("log.roll.hours", Int, Some("168"), true, "Default segment.ms (hours)."),
    k("log.segment.delete.delay.ms", Long, Some("60000"), true, "Default file.delete.delay.ms."),
    k("log.cleaner.delete.retention.ms", Long, Some("86400000"), true, "Default delete.retention.ms: how long tombstones survive compaction."),
    k("log.cleaner.min.compaction.lag.ms", Long, Some("0"), true, "Default min.compaction.lag.ms."),
    k("log.cleaner.max.compaction.lag.ms", Long, Some("9223372036854775807"), true, "Default max.compaction.lag.ms."),
    k("log.cleaner.min.cleanable.ratio", Double, Some("0.5"), true, "Default min.cleanable.dirty.ratio."),
    k("log.message.timestamp.type", Str, Some("CreateTime"), true, "Default message.timestamp.type: CreateTime or LogAppendTime."),
    k("min.insync.replicas", Int, Some("1"), true, "Default min.insync.replicas (acks=all needs that many in-sync replicas, capped at the replication factor, as in Kafka)."),
    k("compression.type", Str, Some("producer"), true, "Default compression.type: producer keeps batches as sent, a codec name re-encodes them."),
    k("unclean.leader.election.enable", Bool, Some("false"), true, "Default of the topic config: a partition whose ISR is all gone may elect an out-of-sync replica (losing records)."),
    k("zookeeper.connect", Str, None, false, "Ignored: Gregor never uses ZooKeeper."),
    // Log manager: retention checks and the log cleaner (crates/broker/src/log_manager.rs).
    k("log.retention.check.interval.ms", Long, Some("300000"), true, "How often segments are checked for deletion (retention, log start offset) and segment.ms rolls."),
    k("log.cleaner.enable", Bool, Some("true"), true, "Run the log cleaner (compaction of cleanup.policy=compact topics)."),
    k("log.cleaner.backoff.ms", Long, Some("15000"), true, "Sleep of the log cleaner when no log needs cleaning."),
    k("log.cleaner.io.max.bytes.per.second", Double, Some("1.7976931348623157E308"), true, "I/O budget (read + write) of the log cleaner."),
    k("log.cleaner.threads", Int, Some("1"), false, "Accepted for compatibility: Gregor runs one cleaner."),
    k("log.cleaner.dedupe.buffer.size", Long, Some("134217728"), true, "Memory of the cleaner's key -> offset map; larger dirty ranges are cleaned in several passes."),
    // Set by apache/kafka docker-compose examples (KAFKA_* environment); accepted so they work.
    k("share.coordinator.state.topic.replication.factor", Int, Some("3"), false, "Accepted for compatibility."),
    k("share.coordinator.state.topic.min.isr", Int, Some("2"), false, "Accepted for compatibility."),
    // Kafka broker configs accepted for compatibility (described, no effect); passwords are sensitive.
    k("ssl.keystore.type", Str, Some("JKS"), true, "Key store format of SSL/SASL_SSL listeners: PEM (JKS and PKCS12 are not supported)."),
    k("ssl.keystore.location", Str, None, true, "PEM file with the listener's private key and certificate chain."),
    k("ssl.keystore.certificate.chain", Str, None, true, "Inline PEM certificate chain (instead of ssl.keystore.location)."),
    k("ssl.keystore.key", Str, None, true, "Inline PEM private key (instead of ssl.keystore.location)."),
    k("ssl.keystore.password", Str, None, false, "Accepted for compatibility (PEM key stores have none)."),
    k("ssl.key.password", Str, None, true, "Password of an encrypted PEM key: not supported, must be unset."),
    k("ssl.truststore.type", Str, Some("JKS"), true, "Trust store format: PEM."),
    k("ssl.truststore.location", Str, None, true, "PEM file with the CA certificates client certificates are verified against."),
    k("ssl.truststore.certificates", Str, None, true, "Inline PEM CA certificates (instead of ssl.truststore.location)."),
    k("ssl.truststore.password", Str, None, false, "Accepted for compatibility."),
    k("ssl.client.auth", Str, Some("none"), true, "Client certificates on SSL listeners: required, requested or none."),
    k("ssl.principal.mapping.rules", Str, Some("DEFAULT"), true, "Rules mapping a client certificate's subject DN to the principal name."),
    k("ssl.protocol", Str, Some("TLSv1.3"), false, "Accepted for compatibility."),
    k("ssl.enabled.protocols", List, Some("TLSv1.2,TLSv1.3"), true, "TLS versions served (TLSv1.2, TLSv1.3)."),
    k("ssl.cipher.suites", List, Some(""), false, "Accepted for compatibility (rustls' safe default suites)."),
    k("ssl.endpoint.identification.algorithm", Str, Some("https"), true, "How a broker checks another broker's certificate on a TLS inter-broker listener: https (the host it is reached at must be in the certificate) or empty (no host check)."),
    k("sasl.enabled.mechanisms", List, Some("GSSAPI"), true, "SASL mechanisms of SASL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); per listener: listener.name.<listener>.sasl.enabled.mechanisms."),
    k("sasl.server.max.receive.size", Int, Some("524288"), true, "Largest request accepted from a SASL connection before it is authenticated."),
    k("quota.window.num", Int, Some("11"), true, "Samples of the client quota rate."),
    k("quota.window.size.seconds", Int, Some("1"), true, "Length of one client quota sample."),
    k("connections.max.reauth.ms", Long, Some("0"), true, "Lifetime of a SASL session (KIP-368): the client must re-authenticate before it ends (0: no limit); per listener and mechanism: listener.name.<listener>.[<mechanism>.]connections.max.reauth.ms."),
    k("connection.failed.authentication.delay.ms", Long, Some("100"), true, "Delay before the connection of a failed authentication is closed."),
    k("sasl.mechanism.inter.broker.protocol", Str, Some("GSSAPI"), true, "SASL mechanism brokers authenticate to each other with on a SASL inter-broker listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), credentials from listener.name.<listener>.<mechanism>.sasl.jaas.config username/password."),
    k("sasl.kerberos.kinit.cmd", Str, Some("/usr/bin/kinit"), false, "Accepted for compatibility (no GSSAPI); dynamic."),
    k("sasl.kerberos.min.time.before.relogin", Long, Some("60000"), false, "Accepted for compatibility (no GSSAPI); dynamic."),
    k("sasl.kerberos.ticket.renew.jitter", Double, Some("0.05"), false, "Accepted for compatibility (no GSSAPI); dynamic."),
    k("sasl.kerberos.ticket.renew.window.factor", Double, Some("0.8"), false, "Accepted for compatibility (no GSSAPI); dynamic."),
    k("sasl.kerberos.principal.to.local.rules", List, Some("DEFAULT"), false, "Accepted for compatibility (no GSSAPI); dynamic."),
    k("sasl.mechanism.controller.protocol", Str, Some("GSSAPI"), false, "Accepted for compatibility."),
    k("security.inter.broker.protocol", Str, Some("PLAINTEXT"), false, "Accepted for compatibility."),
    k("authorizer.class.name", Str, Some(""), true, "org.apache.kafka.metadata.authorizer.StandardAuthorizer enables ACLs (empty: no authorizer)."),
    k("super.users", Str, None, true, "Principals allowed everything, semicolon separated (User:admin;User:ANONYMOUS)."),
    k("allow.everyone.if.no.acl.found", Bool, Some("false"), true, "Allow a request on a resource that has no ACL at all."),
    k("background.threads", Int, Some("10"), false, "Accepted for compatibility."),
    k("max.connections", Int, Some("2147483647"), false, "Accepted for compatibility."),
    k("max.connections.per.ip", Int, Some("2147483647"), false, "Accepted for compatibility."),
    k("max.connection.creation.rate", Int, Some("2147483647"), false, "Accepted for compatibility."),
    k("num.replica.fetchers", Int, Some("1"), false, "Accepted for compatibility."),
    k("replica.lag.time.max.ms", Long, Some("30000"), true, "A follower that has not caught up with the leader's log end for this long leaves the ISR (checked every half of it)."),
    k("replica.fetch.max.bytes", Int, Some("1048576"), true, "Bytes a follower asks for per partition in one fetch (at least one batch)."),
    k("replica.fetch.response.max.bytes", Int, Some("10485760"), true, "Bytes a follower asks for per fetch."),
    k("replica.fetch.wait.max.ms", Int, Some("500"), true, "Longest a follower's fetch waits at the leader for new records."),
    k("replica.fetch.min.bytes", Int, Some("1"), true, "Bytes a follower's fetch waits for at the leader."),
    k("replica.fetch.backoff.ms", Int, Some("1000"), true, "A follower's pause after a failed fetch."),
    k("request.timeout.ms", Int, Some("30000"), false, "Accepted for compatibility."),
    k("metadata.log.dir", Str, None, false, "Accepted for compatibility."),
    k("log.cleaner.io.buffer.size", Int, Some("524288"), false, "Accepted for compatibility."),
    k("log.cleaner.io.buffer.load.factor", Double, Some("0.9"), false, "Accepted for compatibility."),
    k("log.preallocate", Bool, Some("false"), false, "Accepted for compatibility."),
    k("log.roll.jitter.ms", Long, None, false, "Accepted for compatibility."),
    k("log.roll.jitter.hours", Int, Some("0"), false, "Accepted for compatibility."),
    k("log.message.timestamp.after.max.ms", Long, Some("3600000"), false, "Accepted for compatibility."),
    k("log.message.timestamp.before.max.ms", Long, Some("9223372036854775807"), false, "Accepted for compatibility."),
    k("compression.gzip.level", Int, Some("-1"), false, "Accepted for compatibility."),
    k("compression.lz4.level", Int, Some("9"), false, "Accepted for compatibility."),
    k("compression.zstd.level", Int, Some("3"), false, "Accepted for compatibility."),
    k("auto.leader.rebalance.enable", Bool, Some("true"), true, "The active controller moves leadership back to each partition's preferred replica when it is in the ISR."),
    k("leader.imbalance.check.interval.seconds", Long, Some("300"), true, "How often the active controller checks for partitions not led by their preferred replica."),
    k("unclean.leader.election.interval.ms", Long, Some("300000"), true, "How often the active controller elects leaders for leaderless partitions of topics with unclean.leader.election.enable."),
    k("offsets.commit.timeout.ms", Int, Some("5000"), false, "Accepted for compatibility."),
    k("fetch.max.bytes", Int, Some("57671680"), false, "Accepted for compatibility."),
    k("producer.id.expiration.ms", Int, Some("86400000"), false, "Accepted for compatibility."),
    k("log.local.retention.ms", Long, Some("-2"), false, "Accepted for compatibility."),
    k("log.local.retention.bytes", Long, Some("-2"), false, "Accepted for compatibility."),
    k("remote.log.storage.system.enable", Bool, Some("false"), false, "Accepted for compatibility."),
    k("controlled.shutdown.enable", Bool, Some("true"), false, "Accepted for compatibility."),
    k("follower.replication.throttled.replicas", List, Some(""), false, "Accepted for compatibility."),
    k("leader.replication.throttled.replicas", List, Some(""), false, "Accepted for compatibility."),
    k("group.coordinator.rebalance.protocols", List, Some("classic,consumer,streams"), false, "Accepted for compatibility."),
    k("offsets.topic.segment.bytes", Int, Some("104857600"), false, "Accepted for compatibility."),
    k("offsets.load.buffer.size", Int, Some("5242880"), false, "Accepted for compatibility."),
];

/// Looks up a known key.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// A listener to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Host to bind (empty: all interfaces).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Listener {
    /// The socket address to bind.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        let text = if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        };
        use std::net::ToSocketAddrs;
        text.to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or_else(|| format!("{text} resolves to no address"))
    }
}

/// Parses `NAME://host:port` (host may be empty or a bracketed IPv6 address).
pub fn parse_listener(s: &str) -> Result<Listener, String> {
    let (name, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("'{s}' is not of the form NAME://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}' has no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a valid port in '{s}'"))?;
    if name.is_empty() {
        return Err(format!("'{s}' has an empty listener name"));
    }
    Ok(Listener {
        name: name.to_ascii_uppercase(),
        host: host.to_string(),
        port,
    })
}

/// A listener's security protocol (`listener.security.protocol.map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// PLAINTEXT.
    Plaintext,
    /// SASL_PLAINTEXT: SASL authentication, no TLS.
    SaslPlaintext,
    /// SSL: TLS, optionally with client certificates.
    Ssl,
    /// SASL_SSL: SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// SASL settings of one listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslListenerConfig {
    /// Enabled mechanisms, in the configured order (`PLAIN`, `SCRAM-SHA-256`,
    /// `SCRAM-SHA-512`).
    pub mechanisms: Vec<String>,
    /// PLAIN users (`user_<name>="<password>"` of the listener's PLAIN JAAS config).
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` per enabled mechanism (KIP-368 session lifetime; 0: sessions
    /// do not expire), as Kafka resolves it: `listener.name.<listener>.<mechanism>.` prefix, then
    /// `listener.name.<listener>.`, then the global value.
    pub max_reauth_ms: BTreeMap<String, i64>,
}

impl SaslListenerConfig {
    /// The session lifetime of a mechanism's sessions, `None` when they do not expire.
    pub fn session_lifetime(&self, mechanism: &str) -> Option<std::time::Duration> {
        self.max_reauth_ms
            .get(mechanism)
            .filter(|ms| **ms > 0)
            .map(|ms| std::time::Duration::from_millis(*ms as u64))
    }
}

/// Whether an SSL listener asks for client certificates (`ssl.client.auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Required: a connection without a trusted certificate fails the handshake.
    Required,
    /// Requested: verified when sent, optional.
    Requested,
    /// Not asked for.
    None,
}

/// TLS settings of one listener, PEM text already read from the files.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsListenerConfig {
    /// Certificate chain (PEM).
    pub certificate_chain: String,
    /// Private key (PEM).
    pub private_key: String,
    /// CA certificates for client certificates (PEM), if any.
    pub trusted: Option<String>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules`.
    pub principal_mapping_rules: String,
    /// `ssl.enabled.protocols` (TLSv1.2 / TLSv1.3).
    pub protocols: Vec<String>,
}

impl std::fmt::Debug for TlsListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListenerConfig")
            .field("client_auth", &self.client_auth)
            .field("trusted", &self.trusted.is_some())
            .field("protocols", &self.protocols)
            .finish()
    }
}

/// How a client listener authenticates its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSecurity {
    /// The security protocol.
    pub protocol: SecurityProtocol,
    /// SASL settings (SASL listeners only).
    pub sasl: Option<SaslListenerConfig>,
    /// TLS settings (SSL and SASL_SSL listeners only).
    pub tls: Option<TlsListenerConfig>,
}

/// Reads a listener's TLS settings: `listener.name.<listener>.ssl.*` over `ssl.*`, PEM only.
fn tls_listener_config(
    listener: &str,
    protocol: SecurityProtocol,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<TlsListenerConfig, ConfigError> {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let lookup = |key: &str| -> Option<(String, String)> {
        let own = format!("{prefix}{key}");
        match get(&own) {
            Some(v) => Some((own, v)),
            None => get(key).map(|v| (key.to_string(), v)),
        }
        .filter(|(_, v)| !v.trim().is_empty())
    };
    let read = |key: &str, path: &str| -> Result<String, ConfigError> {
        std::fs::read_to_string(path.trim())
            .map_err(|e| invalid(key, path, format!("cannot read {}: {e}", path.trim())))
    };
    let (store_key, store_type) =
        lookup("ssl.keystore.type").unwrap_or(("ssl.keystore.type".into(), "JKS".into()));
    let (certificate_chain, private_key) = if let Some((k, path)) = lookup("ssl.keystore.location")
    {
        if !store_type.eq_ignore_ascii_case("PEM") {
            return Err(invalid(
                &store_key,
                &store_type,
                format!("listener {listener}: only PEM key stores are supported (set ssl.keystore.type=PEM)"),
            ));
        }
        let text = read(&k, &path)?;
        (text.clone(), text)
    } else {
        match (
            lookup("ssl.keystore.certificate.chain"),
            lookup("ssl.keystore.key"),
        ) {
            (Some((_, chain)), Some((_, key))) => (chain, key),
            _ => {
                return Err(invalid(
                    "ssl.keystore.location",
                    "",
                    format!(
                        "listener {listener} uses {} but has no key store (ssl.keystore.type=PEM with ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key)",
                        protocol.name()
                    ),
                ))
            }
        }
    };
    if let Some((k, _)) = lookup("ssl.key.password") {
        return Err(invalid(
            &k,
            "<hidden>",
            "encrypted PEM keys are not supported: use an unencrypted key".into(),
        ));
    }
    let trusted = if let Some((k, path)) = lookup("ssl.truststore.location") {
        if let Some((tk, tt)) = lookup("ssl.truststore.type") {
            if !tt.eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    &tk,
                    &tt,
                    "only PEM trust stores are supported (set ssl.truststore.type=PEM)".into(),
                ));
            }
        }
        Some(read(&k, &path)?)
    } else {
        lookup("ssl.truststore.certificates").map(|(_, v)| v)
    };
    // SASL_SSL authenticates with SASL; client certificates only where ssl.client.auth says
    // so explicitly for the listener, as Kafka.
    let (auth_key, auth) = match protocol {
        SecurityProtocol::SaslSsl => get(&format!("{prefix}ssl.client.auth"))
            .map(|v| (format!("{prefix}ssl.client.auth"), v))
            .unwrap_or(("ssl.client.auth".into(), "none".into())),
        _ => lookup("ssl.client.auth").unwrap_or(("ssl.client.auth".into(), "none".into())),
    };
    let client_auth = match auth.trim().to_ascii_lowercase().as_str() {
        "required" => ClientAuth::Required,
        "requested" => ClientAuth::Requested,
        "none" | "" => ClientAuth::None,
        other => {
            return Err(invalid(
                &auth_key,
                other,
                "must be required, requested or none".into(),
            ))
        }
    };
    if client_auth != ClientAuth::None && trusted.is_none() {
        return Err(invalid(
            &auth_key,
            &auth,
            format!("listener {listener} asks for client certificates but has no trust store (ssl.truststore.location)"),
        ));
    }
    let protocols = lookup("ssl.enabled.protocols")
        .map(|(_, v)| split_list(&v))
        .unwrap_or_else(|| vec!["TLSv1.2".into(), "TLSv1.3".into()]);
    if let Some(bad) = protocols
        .iter()
        .find(|p| *p != "TLSv1.2" && *p != "TLSv1.3")
    {
        return Err(invalid(
            "ssl.enabled.protocols",
            bad,
            "only TLSv1.2 and TLSv1.3 are supported".into(),
        ));
    }
    Ok(TlsListenerConfig {
        certificate_chain,
        private_key,
        trusted,
        client_auth,
        principal_mapping_rules: lookup("ssl.principal.mapping.rules")
            .map_or_else(|| "DEFAULT".into(), |(_, v)| v),
        protocols,
    })
}

/// The client side of a secured inter-broker listener: what a broker presents to the others.
#[derive(Clone)]
pub struct InterBrokerClient {
    /// The inter-broker listener's name.
    pub listener: String,
    /// SASL: `sasl.mechanism.inter.broker.protocol` and the username / password of the
    /// listener's JAAS configuration for that mechanism.
    pub sasl: Option<InterBrokerSasl>,
    /// TLS: the listener's own settings (its trust store verifies the other brokers, its key
    /// store is this broker's client certificate).
    pub tls: Option<TlsListenerConfig>,
    /// `ssl.endpoint.identification.algorithm=https` (the default): the other broker's
    /// certificate must name the host it is reached at.
    pub verify_hostname: bool,
}

/// The SASL credentials of the inter-broker client.
#[derive(Clone)]
pub struct InterBrokerSasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// `username` of the JAAS login module.
    pub username: String,
    /// `password` of the JAAS login module.
    pub password: String,
}

impl std::fmt::Debug for InterBrokerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterBrokerClient")
            .field("listener", &self.listener)
            .field(
                "sasl",
                &self.sasl.as_ref().map(|s| (&s.mechanism, &s.username)),
            )
            .field("tls", &self.tls.is_some())
            .field("verify_hostname", &self.verify_hostname)
            .finish()
    }
}

/// Reads the client side of a secured inter-broker listener, as Kafka's broker configures its
/// inter-broker channel: `sasl.mechanism.inter.broker.protocol`, the credentials (`username`,
/// `password`) of `listener.name.<listener>.<mechanism>.sasl.jaas.config` (else
/// `sasl.jaas.config`), and the listener's TLS key store and trust store.
fn inter_broker_client(
    listener: &str,
    security: &BTreeMap<String, ListenerSecurity>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<InterBrokerClient>, ConfigError> {
    let Some(sec) = security.get(listener) else {
        return Ok(None);
    };
    if sec.protocol == SecurityProtocol::Plaintext {
        return Ok(None);
    }
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let sasl = if sec.sasl.is_some() {
        let key = "sasl.mechanism.inter.broker.protocol";
        let mechanism = get(key).unwrap_or_else(|| "GSSAPI".into());
        if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
            return Err(invalid(
                key,
                &mechanism,
                format!(
                    "the inter-broker listener {listener} uses SASL: set the mechanism brokers authenticate with ({})",
                    SASL_MECHANISMS.join(", ")
                ),
            ));
        }
        let jaas_key = format!(
            "{prefix}{}.sasl.jaas.config",
            mechanism.to_ascii_lowercase()
        );
        let (jaas_key, text) = match get(&jaas_key) {
            Some(t) => (jaas_key, t),
            None => match get("sasl.jaas.config") {
                Some(t) => ("sasl.jaas.config".to_string(), t),
                None => {
                    return Err(invalid(
                        &jaas_key,
                        "",
                        format!("the inter-broker listener {listener} uses SASL {mechanism}: its JAAS configuration needs the broker's username=\"...\" password=\"...\""),
                    ))
                }
            },
        };
        let jaas = gregor_auth::jaas::JaasConfig::parse(&text)
            .map_err(|e| invalid(&jaas_key, "<hidden>", e.to_string()))?;
        let (Some(username), Some(password)) = (jaas.option("username"), jaas.option("password"))
        else {
            return Err(invalid(
                &jaas_key,
                "<hidden>",
                "the inter-broker client needs username=\"...\" and password=\"...\" in the login module".into(),
            ));
        };
        Some(InterBrokerSasl {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
        })
    } else {
        None
    };
    if let Some(tls) = &sec.tls {
        if tls.trusted.is_none() {
            return Err(invalid(
                &format!("{prefix}ssl.truststore.location"),
                "",
                format!("the inter-broker listener {listener} uses TLS: brokers verify each other with its trust store (ssl.truststore.location or ssl.truststore.certificates)"),
            ));
        }
    }
    let algorithm = get(&format!("{prefix}ssl.endpoint.identification.algorithm"))
        .or_else(|| get("ssl.endpoint.identification.algorithm"))
        .unwrap_or_else(|| "https".into());
    Ok(Some(InterBrokerClient {
        listener: listener.to_string(),
        sasl,
        tls: sec.tls.clone(),
        verify_hostname: algorithm.eq_ignore_ascii_case("https"),
    }))
}

/// The SASL mechanisms Gregor serves.
pub const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Reads a listener's SASL settings as Kafka does: `listener.name.<listener>.sasl.enabled.mechanisms`
/// over `sasl.enabled.mechanisms`, PLAIN users from `listener.name.<listener>.plain.sasl.jaas.config`,
/// `connections.max.reauth.ms` per mechanism (`listener.name.<listener>.<mechanism>.` prefix over
/// `listener.name.<listener>.` over the global value, as Kafka's `SaslChannelBuilder`).
fn sasl_listener_config(
    listener: &str,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<SaslListenerConfig, ConfigError> {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let mech_key = format!("{prefix}sasl.enabled.mechanisms");
    let (key, raw) = match get(&mech_key) {
        Some(v) => (mech_key, v),
        None => (
            "sasl.enabled.mechanisms".to_string(),
            get("sasl.enabled.mechanisms").unwrap_or_default(),
        ),
    };
    let mechanisms = split_list(&raw);
    if mechanisms.is_empty() {
        return Err(invalid(
            &key,
            &raw,
            format!("listener {listener} uses SASL but no mechanism is enabled"),
        ));
    }
    for m in &mechanisms {
        if !SASL_MECHANISMS.contains(&m.as_str()) {
            return Err(invalid(
                &key,
                &raw,
                format!(
                    "SASL mechanism {m} of listener {listener} is not supported (supported: {})",
                    SASL_MECHANISMS.join(", ")
                ),
            ));
        }
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.iter().any(|m| m == "PLAIN") {
        let jaas_key = format!("{prefix}plain.sasl.jaas.config");
        let Some(text) = get(&jaas_key) else {
            return Err(invalid(
                &jaas_key,
                "",
                format!("listener {listener} enables PLAIN but has no JAAS configuration with its users (org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\";)"),
            ));
        };
        let jaas = gregor_auth::jaas::JaasConfig::parse(&text)
            .map_err(|e| invalid(&jaas_key, "<hidden>", e.to_string()))?;
        if jaas.modules.len() != 1 {
            return Err(invalid(
                &jaas_key,
                "<hidden>",
                format!(
                    "must contain exactly one login module, found {}",
                    jaas.modules.len()
                ),
            ));
        }
        plain_users = jaas.plain_users().into_iter().collect();
    }
    let mut max_reauth_ms = BTreeMap::new();
    for m in &mechanisms {
        let keys = [
            format!(
                "{prefix}{}.connections.max.reauth.ms",
                m.to_ascii_lowercase()
            ),
            format!("{prefix}connections.max.reauth.ms"),
            "connections.max.reauth.ms".to_string(),
        ];
        if let Some((key, raw)) = keys.iter().find_map(|k| get(k).map(|v| (k, v))) {
            let ms = raw
                .parse::<i64>()
                .map_err(|_| invalid(key, &raw, "must be a long (milliseconds)".into()))?;
            max_reauth_ms.insert(m.clone(), ms.max(0));
        }
    }
    Ok(SaslListenerConfig {
        mechanisms,
        plain_users,
        max_reauth_ms,
    })
}

/// The typed broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// All effective values by key (defaults included), as strings.
    pub values: BTreeMap<String, String>,
    /// Keys set explicitly (file or override).
    pub explicit: BTreeMap<String, String>,
    /// Listeners to bind (controller listeners excluded).
    pub listeners: Vec<Listener>,
    /// Security of each client listener, by listener name.
    pub security: BTreeMap<String, ListenerSecurity>,
    /// How this broker authenticates to other brokers' inter-broker listener (`None`: PLAINTEXT,
    /// or no other brokers).
    pub inter_broker_client: Option<InterBrokerClient>,
    /// `connections.max.reauth.ms` (0: sessions do not expire).
    pub connections_max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_authentication_delay_ms: u64,
    /// `sasl.server.max.receive.size`.
    pub sasl_server_max_receive_size: usize,
    /// `quota.window.num`.
    pub quota_window_num: usize,
    /// `quota.window.size.seconds`.
    pub quota_window_size_seconds: u64,
    /// The ACL authorizer (`authorizer.class.name`, `super.users`,
    /// `allow.everyone.if.no.acl.found`).
    pub authorizer: crate::authorizer::Authorizer,
    /// Advertised endpoint per listener name.
    pub advertised: BTreeMap<String, Listener>,
    /// `node.id`.
    pub node_id: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// The log directory in use.
    pub log_dir: PathBuf,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
    /// `message.max.bytes`.
    pub message_max_bytes: usize,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `socket.send.buffer.bytes` (SO_SNDBUF of accepted connections; <= 0: OS default).
    pub socket_send_buffer_bytes: i64,
    /// `socket.receive.buffer.bytes` (SO_RCVBUF of the listeners; <= 0: OS default).
    pub socket_receive_buffer_bytes: i64,
    /// `log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `log.index.interval.bytes`.
    pub log_index_interval_bytes: u64,
    /// `log.index.size.max.bytes`.
    pub log_index_size_max_bytes: u64,
    /// `log.flush.interval.messages`.
    pub log_flush_interval_messages: u64,
    /// `log.flush.interval.ms`.
    pub log_flush_interval_ms: Option<u64>,
    /// `log.flush.scheduler.interval.ms`.
    pub log_flush_scheduler_interval_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `offsets.topic.num.partitions`.
    pub offsets_topic_num_partitions: i32,
    /// `log.retention.check.interval.ms`.
    pub log_retention_check_interval_ms: u64,
    /// `log.cleaner.enable`.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// `log.cleaner.dedupe.buffer.size`.
    pub log_cleaner_dedupe_buffer_size: u64,
    /// `transaction.state.log.num.partitions`.
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_cleanup_interval_ms: u64,
    /// Transaction coordinator settings (`transaction.max.timeout.ms`,
    /// `transactional.id.expiration.ms`).
    pub txn: gregor_txn_coordinator::TxnConfig,
    /// Group coordinator settings (`group.*`, `offsets.retention.minutes`).
    pub group: gregor_group_coordinator::GroupConfig,
    /// `metrics.listener`: where `/metrics` is served (`None`: disabled).
    pub metrics_listener: Option<Listener>,
    /// `gregor.slow.request.ms` (`None`: disabled).
    pub slow_request: Option<std::time::Duration>,
    /// Unknown keys that were set (warned about at startup).
    pub unknown: Vec<String>,
    /// How this node takes part in a cluster.
    pub cluster: ClusterConfig,
}

/// How a node takes part in a cluster (`process.roles`, `controller.quorum.*`, the controller
/// and inter-broker listeners), Kafka's KRaft settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `process.roles` contains `broker`.
    pub broker: bool,
    /// `process.roles` contains `controller`.
    pub controller: bool,
    /// `controller.quorum.voters`: voter id → `host:port` of its controller listener. Empty
    /// (and no bootstrap servers): a single node with an embedded quorum, as before clusters.
    pub voters: BTreeMap<i32, String>,
    /// `controller.quorum.bootstrap.servers`.
    pub bootstrap_servers: Vec<String>,
    /// The controller listener this node binds (controllers only).
    pub controller_listener: Option<Listener>,
    /// `inter.broker.listener.name`.
    pub inter_broker_listener: String,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout_ms: i64,
    /// `broker.heartbeat.interval.ms`.
    pub broker_heartbeat_interval_ms: i64,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.replication.factor`.
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub transaction_state_log_min_isr: i32,
    /// `leader.imbalance.check.interval.seconds` when `auto.leader.rebalance.enable`.
    pub leader_balance_interval_ms: Option<u64>,
    /// `unclean.leader.election.interval.ms`.
    pub unclean_election_interval_ms: u64,
}

impl ClusterConfig {
    /// A single node with an embedded quorum (no `controller.quorum.*` settings).
    pub fn is_embedded(&self) -> bool {
        self.voters.is_empty() && self.bootstrap_servers.is_empty()
    }
}

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    }
}

/// The cluster settings, validated as Kafka's `KafkaConfig` validates KRaft settings.
fn cluster_config(
    get: &dyn Fn(&str) -> Option<String>,
    node_id: i32,
    listeners: &[Listener],
    controller_listeners: Vec<Listener>,
    controller_names: &[String],
) -> Result<ClusterConfig, ConfigError> {
    let int = |name: &str| -> Result<i64, ConfigError> {
        let raw = get(name).unwrap_or_default();
        raw.trim()
            .parse::<i64>()
            .map_err(|_| invalid(name, &raw, "not a number".into()))
    };
    let roles_raw = get("process.roles").unwrap_or_default();
    let roles = split_list(&roles_raw);
    let mut broker = false;
    let mut controller = false;
    for r in &roles {
        match r.to_ascii_lowercase().as_str() {
            "broker" => broker = true,
            "controller" => controller = true,
            other => {
                return Err(invalid(
                    "process.roles",
                    &roles_raw,
                    format!("unknown process role '{other}' (broker, controller)"),
                ))
            }
        }
    }
    if !broker && !controller {
        return Err(invalid(
            "process.roles",
            &roles_raw,
            "must contain broker, controller or both".into(),
        ));
    }
    let voters_raw = get("controller.quorum.voters").unwrap_or_default();
    let voters = parse_voters(&voters_raw)
        .map_err(|e| invalid("controller.quorum.voters", &voters_raw, e))?;
    let bootstrap_raw = get("controller.quorum.bootstrap.servers").unwrap_or_default();
    let bootstrap_servers = split_list(&bootstrap_raw);
    let embedded = voters.is_empty() && bootstrap_servers.is_empty();
    if !embedded {
        if controller && !voters.contains_key(&node_id) {
            return Err(invalid(
                "controller.quorum.voters",
                &voters_raw,
                format!("If process.roles contains controller, controller.quorum.voters must contain this node.id {node_id} (Gregor's controller quorum is static)"),
            ));
        }
        if controller && controller_listeners.is_empty() {
            return Err(invalid(
                "controller.listener.names",
                &controller_names.join(","),
                "a controller needs a listener named in controller.listener.names among its listeners".into(),
            ));
        }
        if !controller && controller_names.is_empty() {
            return Err(invalid(
                "controller.listener.names",
                "",
                "must name the listener brokers use to reach the controllers".into(),
            ));
        }
    }
    if !broker && embedded {
        return Err(invalid(
            "process.roles",
            &roles_raw,
            "a controller-only node needs controller.quorum.voters".into(),
        ));
    }
    let inter_broker_listener = match get("inter.broker.listener.name") {
        Some(n) if !n.trim().is_empty() => {
            let n = n.trim().to_ascii_uppercase();
            if broker && !listeners.iter().any(|l| l.name == n) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    &n,
                    "must be one of the listeners".into(),
                ));
            }
            n
        }
        _ => listeners
            .first()
            .map(|l| l.name.clone())
            .unwrap_or_else(|| "PLAINTEXT".into()),
    };
    let rf = |name: &str| -> Result<i16, ConfigError> {
        let v = int(name)?;
        if v <= 0 || v > i64::from(i16::MAX) {
            return Err(invalid(name, &v.to_string(), "must be positive".into()));
        }
        Ok(v as i16)
    };
    let session = int("broker.session.timeout.ms")?;
    let heartbeat = int("broker.heartbeat.interval.ms")?;
    if session <= 0 || heartbeat <= 0 {
        return Err(invalid(
            "broker.session.timeout.ms",
            &session.to_string(),
            "broker.session.timeout.ms and broker.heartbeat.interval.ms must be positive".into(),
        ));
    }
    Ok(ClusterConfig {
        broker,
        controller,
        voters,
        bootstrap_servers,
        controller_listener: controller_listeners.into_iter().next(),
        inter_broker_listener,
        broker_session_timeout_ms: session,
        broker_heartbeat_interval_ms: heartbeat,
        election_timeout_ms: int("controller.quorum.election.timeout.ms")?.max(10) as u64,
        offsets_topic_replication_factor: rf("offsets.topic.replication.factor")?,
        transaction_state_log_replication_factor: rf("transaction.state.log.replication.factor")?,
        transaction_state_log_min_isr: int("transaction.state.log.min.isr")?.max(1) as i32,
        leader_balance_interval_ms: match get("auto.leader.rebalance.enable")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("false") => None,
            _ => Some(int("leader.imbalance.check.interval.seconds")?.max(1) as u64 * 1000),
        },
        unclean_election_interval_ms: int("unclean.leader.election.interval.ms")?.max(1) as u64,
    })
}

/// Parses `controller.quorum.voters` (`id@host:port,...`).
pub fn parse_voters(value: &str) -> Result<BTreeMap<i32, String>, String> {
    let mut voters = BTreeMap::new();
    for item in split_list(value) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| format!("'{item}' is not of the form id@host:port"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| format!("'{id}' is not a valid node id in '{item}'"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("'{item}' has no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("'{item}' is not of the form id@host:port"));
        }
        if voters.insert(id, addr.to_string()).is_some() {
            return Err(format!("voter {id} is listed twice"));
        }
    }
    Ok(voters)
}

/// Parses `metrics.listener`: `http://host:port` (or `host:port`); empty disables it.
pub fn parse_metrics_listener(value: &str) -> Result<Option<Listener>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let rest = match v.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "scheme {scheme}:// is not supported; use http://host:port or an empty value to disable"
            ))
        }
        None => v,
    };
    let rest = rest.trim_end_matches('/');
    parse_listener(&format!("http://{rest}")).map(Some)
}

/// Parses Java `.properties` text: `key=value`, `key: value` or `key value`; `#`/`!` comments;
/// trailing-backslash continuation lines; `\t \n \\ \uXXXX` escapes.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let mut key = String::new();
        let mut chars = entry.chars().peekable();
        let mut escaped = false;
        while let Some(&c) = chars.peek() {
            if escaped {
                key.push(c);
                escaped = false;
                chars.next();
                continue;
            }
            if c == '\\' {
                escaped = true;
                chars.next();
                continue;
            }
            if c == '=' || c == ':' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        let rest: String = chars.collect();
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))
            .unwrap_or(rest)
            .trim_start();
        out.push((key, unescape(rest)));
    }
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn check_kind(key: &Key, value: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::InvalidValue {
        key: key.name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let v = value.trim();
    match key.kind {
        Str | List => Ok(()),
        Int => v
            .parse::<i32>()
            .map(|_| ())
            .map_err(|_| bad("expected a 32-bit integer")),
        Long => v
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| bad("expected a 64-bit integer")),
        Double => v
            .parse::<f64>()
            .map(|_| ())
            .map_err(|_| bad("expected a number")),
        Bool => {
            if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
                Ok(())
            } else {
                Err(bad("expected true or false"))
            }
        }
    }
}

impl Config {
    /// Builds the configuration from `(key, value)` pairs, later pairs winning.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut explicit = BTreeMap::new();
        let mut unknown = Vec::new();
        for (key, value) in pairs {
            match self::key(&key) {
                Some(k) => check_kind(k, &value)?,
                // Per-listener settings (listener.name.<listener>.<key>) are read where needed.
                None if key.starts_with("listener.name.") => {}
                None => unknown.push(key.clone()),
            }
            explicit.insert(key, value);
        }
        let mut values: BTreeMap<String, String> = KEYS
            .iter()
            .filter_map(|k| k.default.map(|d| (k.name.to_string(), d.to_string())))
            .collect();
        for (k, v) in &explicit {
            values.insert(k.clone(), v.clone());
        }
        let get = |k: &str| values.get(k).map(|s| s.trim().to_string());
        let int = |k: &str| -> i64 { get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) };
        let positive = |name: &str| -> Result<i64, ConfigError> {
            let v = int(name);
            if v <= 0 {
                Err(invalid(name, &v.to_string(), "must be positive".into()))
            } else {
                Ok(v)
            }
        };

        let controller_names: Vec<String> = get("controller.listener.names")
            .map(|s| {
                split_list(&s)
                    .into_iter()
                    .map(|n| n.to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default();
        let protocol_map: BTreeMap<String, String> = get("listener.security.protocol.map")
            .map(|s| {
                split_list(&s)
                    .into_iter()
                    .filter_map(|e| {
                        e.split_once(':').map(|(a, b)| {
                            (a.trim().to_ascii_uppercase(), b.trim().to_ascii_uppercase())
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let listeners_raw = get("listeners").unwrap_or_default();
        let mut listeners = Vec::new();
        let mut security = BTreeMap::new();
        let mut controller_listeners = Vec::new();
        for item in split_list(&listeners_raw) {
            let l = parse_listener(&item).map_err(|e| invalid("listeners", &listeners_raw, e))?;
            if controller_names.contains(&l.name) {
                controller_listeners.push(l);
                continue;
            }
            let protocol = protocol_map
                .get(&l.name)
                .cloned()
                .unwrap_or_else(|| l.name.clone());
            let sec = match protocol.as_str() {
                "PLAINTEXT" => ListenerSecurity {
                    protocol: SecurityProtocol::Plaintext,
                    sasl: None,
                    tls: None,
                },
                "SASL_PLAINTEXT" => ListenerSecurity {
                    protocol: SecurityProtocol::SaslPlaintext,
                    sasl: Some(sasl_listener_config(&l.name, &get)?),
                    tls: None,
                },
                "SSL" => ListenerSecurity {
                    protocol: SecurityProtocol::Ssl,
                    sasl: None,
                    tls: Some(tls_listener_config(&l.name, SecurityProtocol::Ssl, &get)?),
                },
                "SASL_SSL" => ListenerSecurity {
                    protocol: SecurityProtocol::SaslSsl,
                    sasl: Some(sasl_listener_config(&l.name, &get)?),
                    tls: Some(tls_listener_config(&l.name, SecurityProtocol::SaslSsl, &get)?),
                },
                _ => {
                    return Err(invalid(
                        "listeners",
                        &listeners_raw,
                        format!(
                            "listener {} uses unknown security protocol {protocol} (PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL)",
                            l.name
                        ),
                    ))
                }
            };
            security.insert(l.name.clone(), sec);
            if listeners.iter().any(|o: &Listener| o.name == l.name) {
                return Err(invalid(
                    "listeners",
                    &listeners_raw,
                    format!("listener name {} is used twice", l.name),
                ));
            }
            listeners.push(l);
        }
        if listeners.is_empty() {
            return Err(invalid(
                "listeners",
                &listeners_raw,
                "no client listener to bind".into(),
            ));
        }
        let mut advertised = BTreeMap::new();
        // Kafka's default for advertised.listeners is listeners; Gregor's documented single-node
        // default advertises localhost:9092, so an explicit `listeners` without explicit
        // `advertised.listeners` advertises the listeners themselves.
        let adv_raw = if explicit.contains_key("advertised.listeners")
            || !explicit.contains_key("listeners")
        {
            get("advertised.listeners").unwrap_or_default()
        } else {
            String::new()
        };
        for item in split_list(&adv_raw) {
            let l =
                parse_listener(&item).map_err(|e| invalid("advertised.listeners", &adv_raw, e))?;
            advertised.insert(l.name.clone(), l);
        }
        for l in &listeners {
            advertised
                .entry(l.name.clone())
                .or_insert_with(|| Listener {
                    name: l.name.clone(),
                    host: if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
                        "localhost".into()
                    } else {
                        l.host.clone()
                    },
                    port: l.port,
                });
        }
        let node_id = if explicit.contains_key("node.id") || !explicit.contains_key("broker.id") {
            int("node.id")
        } else {
            int("broker.id")
        };
        if node_id < 0 {
            return Err(invalid(
                "node.id",
                &node_id.to_string(),
                "must be >= 0".into(),
            ));
        }
        let log_dir = if explicit.contains_key("log.dirs") || !explicit.contains_key("log.dir") {
            get("log.dirs").unwrap_or_default()
        } else {
            get("log.dir").unwrap_or_default()
        };
        let dirs = split_list(&log_dir);
        let Some(first_dir) = dirs.first() else {
            return Err(invalid("log.dirs", &log_dir, "no directory given".into()));
        };
        let bool_of = |k: &str| {
            get(k)
                .map(|v| v.eq_ignore_ascii_case("true"))
                .unwrap_or(false)
        };
        let cluster = cluster_config(
            &get,
            node_id as i32,
            &listeners,
            controller_listeners,
            &controller_names,
        )?;
        let authorizer = match get("authorizer.class.name").unwrap_or_default().as_str() {
            "" => crate::authorizer::Authorizer::default(),
            crate::authorizer::STANDARD_AUTHORIZER => crate::authorizer::Authorizer::new(
                true,
                &get("super.users").unwrap_or_default(),
                bool_of("allow.everyone.if.no.acl.found"),
            ),
            other => {
                return Err(invalid(
                    "authorizer.class.name",
                    other,
                    format!(
                        "only {} is supported",
                        crate::authorizer::STANDARD_AUTHORIZER
                    ),
                ))
            }
        };
        let inter_broker_client = if !cluster.is_embedded() && cluster.broker {
            inter_broker_client(&cluster.inter_broker_listener, &security, &get)?
        } else {
            None
        };
        let replication = int("default.replication.factor");
        let flush_interval_ms = get("log.flush.interval.ms").and_then(|v| v.parse::<i64>().ok());
        let min_session = int("group.min.session.timeout.ms");
        let max_session = int("group.max.session.timeout.ms");
        if min_session > max_session {
            return Err(invalid(
                "group.min.session.timeout.ms",
                &min_session.to_string(),
                format!("must not exceed group.max.session.timeout.ms ({max_session})"),
            ));
        }
        let group = gregor_group_coordinator::GroupConfig {
            initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms").max(0),
            min_session_timeout_ms: min_session as i32,
            max_session_timeout_ms: max_session as i32,
            max_group_size: positive("group.max.size")? as i32,
            offsets_retention_ms: positive("offsets.retention.minutes")? * 60_000,
            consumer_heartbeat_interval_ms: positive("group.consumer.heartbeat.interval.ms")?
                as i32,
            consumer_session_timeout_ms: positive("group.consumer.session.timeout.ms")? as i32,
            consumer_default_assignor: get("group.consumer.assignors")
                .map(|s| split_list(&s))
                .and_then(|l| l.into_iter().next())
                .unwrap_or_else(|| "uniform".into()),
        };
        let metrics_raw = get("metrics.listener").unwrap_or_default();
        let metrics_listener = parse_metrics_listener(&metrics_raw)
            .map_err(|e| invalid("metrics.listener", &metrics_raw, e))?;
        let slow_request = u64::try_from(int("gregor.slow.request.ms"))
            .ok()
            .map(std::time::Duration::from_millis);
        let cleaner_io = get("log.cleaner.io.max.bytes.per.second")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::MAX);
        if cleaner_io.is_nan() || cleaner_io <= 0.0 {
            return Err(invalid(
                "log.cleaner.io.max.bytes.per.second",
                &cleaner_io.to_string(),
                "must be positive".into(),
            ));
        }
        Ok(Config {
            security,
            inter_broker_client,
            connections_max_reauth_ms: int("connections.max.reauth.ms").max(0),
            failed_authentication_delay_ms: int("connection.failed.authentication.delay.ms").max(0)
                as u64,
            sasl_server_max_receive_size: int("sasl.server.max.receive.size").max(1) as usize,
            quota_window_num: int("quota.window.num").max(2) as usize,
            quota_window_size_seconds: int("quota.window.size.seconds").max(1) as u64,
            authorizer,
            metrics_listener,
            slow_request,
            log_retention_check_interval_ms: positive("log.retention.check.interval.ms")? as u64,
            log_cleaner_enable: bool_of("log.cleaner.enable"),
            log_cleaner_backoff_ms: positive("log.cleaner.backoff.ms")? as u64,
            log_cleaner_io_max_bytes_per_second: cleaner_io,
            log_cleaner_dedupe_buffer_size: positive("log.cleaner.dedupe.buffer.size")? as u64,
            offsets_topic_num_partitions: positive("offsets.topic.num.partitions")? as i32,
            transaction_state_log_num_partitions: positive("transaction.state.log.num.partitions")?
                .min(i64::from(i32::MAX)) as i32,
            transaction_cleanup_interval_ms: positive(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            )? as u64,
            txn: gregor_txn_coordinator::TxnConfig {
                max_timeout_ms: positive("transaction.max.timeout.ms")?.min(i64::from(i32::MAX))
                    as i32,
                transactional_id_expiration_ms: positive("transactional.id.expiration.ms")?,
                // Each shard takes its partition's leader epoch (txn_service).
                coordinator_epoch: 0,
            },
            group,
            listeners,
            advertised,
            node_id: node_id as i32,
            rack: get("broker.rack").filter(|s| !s.is_empty()),
            log_dir: PathBuf::from(first_dir),
            auto_create_topics: bool_of("auto.create.topics.enable"),
            num_partitions: positive("num.partitions")? as i32,
            default_replication_factor: if replication <= 0 || replication > i16::MAX as i64 {
                return Err(invalid(
                    "default.replication.factor",
                    &replication.to_string(),
                    "must be positive".into(),
                ));
            } else {
                replication as i16
            },
            delete_topic_enable: bool_of("delete.topic.enable"),
            message_max_bytes: positive("message.max.bytes")? as usize,
            socket_request_max_bytes: positive("socket.request.max.bytes")? as usize,
            connections_max_idle_ms: int("connections.max.idle.ms").max(0) as u64,
            socket_send_buffer_bytes: int("socket.send.buffer.bytes"),
            socket_receive_buffer_bytes: int("socket.receive.buffer.bytes"),
            log_segment_bytes: {
                let v = positive("log.segment.bytes")?;
                if v < 14 {
                    return Err(invalid(
                        "log.segment.bytes",
                        &v.to_string(),
                        "Value must be at least 14".into(),
                    ));
                }
                v as u64
            },
            log_index_interval_bytes: int("log.index.interval.bytes").max(0) as u64,
            log_index_size_max_bytes: positive("log.index.size.max.bytes")? as u64,
            log_flush_interval_messages: positive("log.flush.interval.messages")? as u64,
            log_flush_interval_ms: flush_interval_ms.map(|v| v.max(0) as u64),
            log_flush_scheduler_interval_ms: int("log.flush.scheduler.interval.ms").max(1) as u64,
            replica_high_watermark_checkpoint_interval_ms: positive(
                "replica.high.watermark.checkpoint.interval.ms",
            )? as u64,
            cluster,
            values,
            explicit,
            unknown,
        })
    }

    /// Reads an optional properties file, then the `KAFKA_*` environment (as the apache/kafka
    /// Docker image maps it, see [`crate::env_config`]), then applies overrides (`key=value`).
    pub fn load(
        file: Option<&std::path::Path>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let mut pairs = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            pairs.extend(parse_properties(&text));
        }
        pairs.extend(crate::env_config::from_process_env());
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            pairs.push((k.trim().to_string(), v.to_string()));
        }
        Config::from_pairs(pairs)
    }

    /// The advertised endpoint for a listener name.
    pub fn advertised_for(&self, listener: &str) -> &Listener {
        self.advertised
            .get(listener)
            .or_else(|| self.advertised.values().next())
            .expect("at least one listener")
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_are_the_documented_single_node_ones() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c.listeners,
            vec![parse_listener("PLAINTEXT://0.0.0.0:9092").unwrap()]
        );
        let adv = c.advertised_for("PLAINTEXT");
        assert_eq!((adv.host.as_str(), adv.port), ("localhost", 9092));
        assert_eq!(c.log_dir, PathBuf::from("./gregor-data"));
        assert_eq!(c.node_id, 1);
        assert!(c.auto_create_topics);
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.connections_max_idle_ms, 600_000);
        assert_eq!(c.log_segment_bytes, 1_073_741_824);
        assert_eq!(c.log_retention_check_interval_ms, 300_000);
        assert!(c.log_cleaner_enable);
        assert_eq!(c.log_cleaner_backoff_ms, 15_000);
        assert_eq!(c.log_cleaner_io_max_bytes_per_second, f64::MAX);
        assert_eq!(c.log_cleaner_dedupe_buffer_size, 134_217_728);
    }

    #[test]
    fn log_manager_keys() {
        let c = cfg(&[
            ("log.retention.check.interval.ms", "1000"),
            ("log.cleaner.enable", "false"),
            ("log.cleaner.io.max.bytes.per.second", "1048576.5"),
        ])
        .unwrap();
        assert_eq!(c.log_retention_check_interval_ms, 1000);
        assert!(!c.log_cleaner_enable);
        assert_eq!(c.log_cleaner_io_max_bytes_per_second, 1_048_576.5);
        assert!(cfg(&[("log.retention.check.interval.ms", "0")]).is_err());
        assert!(cfg(&[("log.cleaner.io.max.bytes.per.second", "-1")]).is_err());
        assert!(cfg(&[("log.cleaner.io.max.bytes.per.second", "fast")]).is_err());
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let e = cfg(&[("num.partitions", "three")]).unwrap_err().to_string();
        assert!(e.contains("num.partitions") && e.contains("three"), "{e}");
        let e = cfg(&[("auto.create.topics.enable", "yes")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("auto.create.topics.enable"), "{e}");
        assert!(cfg(&[("listeners", "PLAINTEXT://:notaport")]).is_err());
        assert!(cfg(&[("listeners", "SSL://:9093")]).is_err());
    }

    #[test]
    fn unknown_keys_are_collected_not_fatal() {
        let c = cfg(&[("foo.bar", "1")]).unwrap();
        assert_eq!(c.unknown, vec!["foo.bar".to_string()]);
    }

    #[test]
    fn controller_listeners_are_not_bound_and_listeners_are_advertised() {
        let c = cfg(&[
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:19092,CONTROLLER://:9093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            ("process.roles", "broker,controller"),
        ])
        .unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.advertised_for("PLAINTEXT").port, 19092);
        assert_eq!(c.advertised_for("PLAINTEXT").host, "127.0.0.1");
    }

    #[test]
    fn metrics_listener_and_slow_request_threshold() {
        let c = cfg(&[]).unwrap();
        let l = c.metrics_listener.unwrap();
        assert_eq!((l.host.as_str(), l.port), ("0.0.0.0", 9644));
        assert_eq!(c.slow_request, Some(std::time::Duration::from_millis(1000)));
        let c = cfg(&[("metrics.listener", ""), ("gregor.slow.request.ms", "-1")]).unwrap();
        assert!(c.metrics_listener.is_none());
        assert!(c.slow_request.is_none());
        let l = cfg(&[("metrics.listener", "http://127.0.0.1:19644/")])
            .unwrap()
            .metrics_listener
            .unwrap();
        assert_eq!(l.bind_addr().unwrap().to_string(), "127.0.0.1:19644");
        let l = cfg(&[("metrics.listener", "[::1]:9")])
            .unwrap()
            .metrics_listener
            .unwrap();
        assert_eq!(l.bind_addr().unwrap().to_string(), "[::1]:9");
        let e = cfg(&[("metrics.listener", "https://0.0.0.0:9644")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("metrics.listener") && e.contains("https"), "{e}");
        assert!(cfg(&[("metrics.listener", "http://0.0.0.0:notaport")]).is_err());
        assert!(cfg(&[("gregor.slow.request.ms", "soon")]).is_err());
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties("# c\n! c\na=1\nb : 2\nc 3\nd=x\\\n  y\ne=\\u0041\\tB\n\n");
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into()),
                ("d".into(), "xy".into()),
                ("e".into(), "A\tB".into()),
            ]
        );
    }

    #[test]
    fn single_node_without_quorum_settings_is_embedded() {
        let c = cfg(&[]).unwrap();
        assert!(c.cluster.is_embedded());
        assert!(c.cluster.broker && c.cluster.controller);
        assert_eq!(c.cluster.inter_broker_listener, "PLAINTEXT");
        assert_eq!(c.cluster.broker_session_timeout_ms, 9000);
        assert_eq!(c.cluster.broker_heartbeat_interval_ms, 2000);
        assert_eq!(c.cluster.offsets_topic_replication_factor, 3);
    }

    #[test]
    fn combined_node_of_a_three_voter_quorum() {
        let c = cfg(&[
            ("process.roles", "broker,controller"),
            ("node.id", "2"),
            (
                "controller.quorum.voters",
                "1@127.0.0.1:19093,2@127.0.0.1:29093,3@127.0.0.1:39093",
            ),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093",
            ),
            ("controller.listener.names", "CONTROLLER"),
            ("inter.broker.listener.name", "PLAINTEXT"),
        ])
        .unwrap();
        assert!(!c.cluster.is_embedded());
        assert_eq!(c.cluster.voters.len(), 3);
        assert_eq!(c.cluster.voters[&2], "127.0.0.1:29093");
        let cl = c.cluster.controller_listener.as_ref().unwrap();
        assert_eq!((cl.name.as_str(), cl.port), ("CONTROLLER", 29093));
        assert_eq!(
            c.listeners.len(),
            1,
            "the controller listener is not a client listener"
        );
    }

    #[test]
    fn bad_quorum_settings_are_refused() {
        let voters = ("controller.quorum.voters", "1@h:1,2@h:2,3@h:3");
        // A controller that is not a voter.
        assert!(cfg(&[
            ("node.id", "4"),
            voters,
            ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER")
        ])
        .is_err());
        // A controller without a controller listener.
        assert!(cfg(&[("node.id", "1"), voters]).is_err());
        // Malformed voters.
        for bad in ["1@h", "x@h:1", "1@h:1,1@h:2", "1:h:1"] {
            assert!(cfg(&[("controller.quorum.voters", bad)]).is_err(), "{bad}");
        }
        // Unknown role.
        assert!(cfg(&[("process.roles", "broker,zookeeper")]).is_err());
        // A controller-only node alone.
        assert!(cfg(&[("process.roles", "controller")]).is_err());
        // An inter-broker listener that does not exist.
        assert!(cfg(&[("inter.broker.listener.name", "INTERNAL")]).is_err());
    }

    #[test]
    fn sasl_reauth_lifetime_prefixes() {
        let jaas =
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="b";"#;
        let base = [
            (
                "listeners",
                "PLAINTEXT://:9092,SASL_PLAINTEXT://:9093,OTHER://:9094",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,OTHER:SASL_PLAINTEXT",
            ),
            (
                "sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            ),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas),
            ("listener.name.other.plain.sasl.jaas.config", jaas),
        ];
        let lifetimes = |c: &Config, l: &str| {
            let sasl = c.security[l].sasl.clone().unwrap();
            sasl.mechanisms
                .iter()
                .map(|m| sasl.session_lifetime(m).map(|d| d.as_millis() as u64))
                .collect::<Vec<_>>()
        };
        // Default 0: no session expires.
        let c = cfg(&base).unwrap();
        assert_eq!(lifetimes(&c, "SASL_PLAINTEXT"), [None, None, None]);
        // Global, listener prefix, listener + mechanism prefix (Kafka's precedence).
        let mut over = base.to_vec();
        over.extend([
            ("connections.max.reauth.ms", "60000"),
            (
                "listener.name.sasl_plaintext.connections.max.reauth.ms",
                "3000",
            ),
            (
                "listener.name.sasl_plaintext.scram-sha-512.connections.max.reauth.ms",
                "6000",
            ),
            ("listener.name.other.plain.connections.max.reauth.ms", "-5"),
        ]);
        let c = cfg(&over).unwrap();
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
        assert_eq!(
            lifetimes(&c, "SASL_PLAINTEXT"),
            [Some(3000), Some(3000), Some(6000)]
        );
        assert_eq!(lifetimes(&c, "OTHER"), [None, Some(60000), Some(60000)]);
        // A prefixed value that is not a number.
        over.push(("listener.name.other.connections.max.reauth.ms", "soon"));
        assert!(cfg(&over)
            .unwrap_err()
            .to_string()
            .contains("listener.name.other.connections.max.reauth.ms"));
    }

    #[test]
    fn sasl_listeners() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a" user_admin="a" user_alice="b";"#;
        let base = [
            ("listeners", "PLAINTEXT://:9092,SASL_PLAINTEXT://:9093"),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas),
        ];
        let c = cfg(&base).unwrap();
        let s = &c.security["SASL_PLAINTEXT"];
        assert_eq!(s.protocol, SecurityProtocol::SaslPlaintext);
        let sasl = s.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanisms, ["PLAIN", "SCRAM-SHA-512"]);
        assert_eq!(sasl.plain_users["alice"], "b");
        assert_eq!(
            c.security["PLAINTEXT"].protocol,
            SecurityProtocol::Plaintext
        );
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
        // Kafka's default mechanism (GSSAPI) is not served: a clear error at start-up.
        assert!(cfg(&base[..1]).unwrap_err().to_string().contains("GSSAPI"));
        // PLAIN without its JAAS users.
        assert!(cfg(&base[..2]).is_err());
        // The per-listener mechanism list wins.
        let mut over = base.to_vec();
        over.push((
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
            "SCRAM-SHA-256",
        ));
        let c = cfg(&over).unwrap();
        assert_eq!(
            c.security["SASL_PLAINTEXT"]
                .sasl
                .as_ref()
                .unwrap()
                .mechanisms,
            ["SCRAM-SHA-256"]
        );
        // A TLS listener without a key store.
        assert!(cfg(&[("listeners", "SSL://:9093")])
            .unwrap_err()
            .to_string()
            .contains("key store"));
    }
}
