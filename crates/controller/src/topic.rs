//! Topic names and topic config names, as Kafka defines them.

/// Longest legal topic name (Kafka: 249).
pub const MAX_NAME_LEN: usize = 249;

/// Validates a topic name as Kafka's `Topic.validate` does.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_NAME_LEN} characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Whether `name` is an internal topic.
pub fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

/// The type of a config value, numbered as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// BOOLEAN (1).
    Boolean = 1,
    /// STRING (2).
    String = 2,
    /// INT (3).
    Int = 3,
    /// LONG (5).
    Long = 5,
    /// DOUBLE (6).
    Double = 6,
    /// LIST (7).
    List = 7,
}

/// A topic-level config: Kafka name, type, Kafka 4.1 default, the broker config it defaults
/// from (its synonym), and documentation.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// Topic config name.
    pub name: &'static str,
    /// Value type.
    pub kind: ConfigType,
    /// Kafka's default value.
    pub default: &'static str,
    /// Broker config that supplies the default, if any.
    pub broker_synonym: Option<&'static str>,
    /// One line of documentation.
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: &'static str,
    broker_synonym: Option<&'static str>,
    doc: &'static str,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        kind,
        default,
        broker_synonym,
        doc,
    }
}

use ConfigType as T;

/// Every topic-level config Kafka 4.1 knows (`TopicConfig` / `LogConfig`), sorted by name.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        T::List,
        "delete",
        Some("log.cleanup.policy"),
        "delete, compact, or both: how old log segments are discarded.",
    ),
    def(
        "compression.gzip.level",
        T::Int,
        "-1",
        Some("compression.gzip.level"),
        "Compression level for gzip.",
    ),
    def(
        "compression.lz4.level",
        T::Int,
        "9",
        Some("compression.lz4.level"),
        "Compression level for lz4.",
    ),
    def(
        "compression.type",
        T::String,
        "producer",
        Some("compression.type"),
        "Final compression of the topic's data: producer keeps what the producer sent.",
    ),
    def(
        "compression.zstd.level",
        T::Int,
        "3",
        Some("compression.zstd.level"),
        "Compression level for zstd.",
    ),
    def(
        "delete.retention.ms",
        T::Long,
        "86400000",
        Some("log.cleaner.delete.retention.ms"),
        "How long delete tombstones are retained on compacted topics.",
    ),
    def(
        "file.delete.delay.ms",
        T::Long,
        "60000",
        Some("log.segment.delete.delay.ms"),
        "Time to wait before deleting a file from the filesystem.",
    ),
    def(
        "flush.messages",
        T::Long,
        "9223372036854775807",
        Some("log.flush.interval.messages"),
        "Records between forced fsyncs.",
    ),
    def(
        "flush.ms",
        T::Long,
        "9223372036854775807",
        Some("log.flush.interval.ms"),
        "Time between forced fsyncs.",
    ),
    def(
        "follower.replication.throttled.replicas",
        T::List,
        "",
        Some("follower.replication.throttled.replicas"),
        "Replicas whose log replication is throttled on the follower side.",
    ),
    def(
        "index.interval.bytes",
        T::Int,
        "4096",
        Some("log.index.interval.bytes"),
        "Bytes of log between offset-index entries.",
    ),
    def(
        "leader.replication.throttled.replicas",
        T::List,
        "",
        Some("leader.replication.throttled.replicas"),
        "Replicas whose log replication is throttled on the leader side.",
    ),
    def(
        "local.retention.bytes",
        T::Long,
        "-2",
        Some("log.local.retention.bytes"),
        "Local retention size when tiered storage is on (-2: retention.bytes).",
    ),
    def(
        "local.retention.ms",
        T::Long,
        "-2",
        Some("log.local.retention.ms"),
        "Local retention time when tiered storage is on (-2: retention.ms).",
    ),
    def(
        "max.compaction.lag.ms",
        T::Long,
        "9223372036854775807",
        Some("log.cleaner.max.compaction.lag.ms"),
        "Longest a record stays uncompacted.",
    ),
    def(
        "max.message.bytes",
        T::Int,
        "1048588",
        Some("message.max.bytes"),
        "Largest record batch size allowed.",
    ),
    def(
        "message.timestamp.after.max.ms",
        T::Long,
        "3600000",
        Some("log.message.timestamp.after.max.ms"),
        "How far in the future a record timestamp may be.",
    ),
    def(
        "message.timestamp.before.max.ms",
        T::Long,
        "9223372036854775807",
        Some("log.message.timestamp.before.max.ms"),
        "How far in the past a record timestamp may be.",
    ),
    def(
        "message.timestamp.type",
        T::String,
        "CreateTime",
        Some("log.message.timestamp.type"),
        "CreateTime or LogAppendTime.",
    ),
    def(
        "min.cleanable.dirty.ratio",
        T::Double,
        "0.5",
        Some("log.cleaner.min.cleanable.ratio"),
        "Dirty ratio above which the log is compacted.",
    ),
    def(
        "min.compaction.lag.ms",
        T::Long,
        "0",
        Some("log.cleaner.min.compaction.lag.ms"),
        "Shortest a record stays uncompacted.",
    ),
    def(
        "min.insync.replicas",
        T::Int,
        "1",
        Some("min.insync.replicas"),
        "Replicas that must acknowledge an acks=all write.",
    ),
    def(
        "preallocate",
        T::Boolean,
        "false",
        Some("log.preallocate"),
        "Preallocate segment files.",
    ),
    def(
        "remote.log.copy.disable",
        T::Boolean,
        "false",
        None,
        "Stop copying segments to tiered storage.",
    ),
    def(
        "remote.log.delete.on.disable",
        T::Boolean,
        "false",
        None,
        "Delete tiered data when tiered storage is disabled.",
    ),
    def(
        "remote.storage.enable",
        T::Boolean,
        "false",
        None,
        "Enable tiered storage.",
    ),
    def(
        "retention.bytes",
        T::Long,
        "-1",
        Some("log.retention.bytes"),
        "Largest size of a partition before old segments are deleted.",
    ),
    def(
        "retention.ms",
        T::Long,
        "604800000",
        Some("log.retention.ms"),
        "Longest a segment is kept before deletion.",
    ),
    def(
        "segment.bytes",
        T::Int,
        "1073741824",
        Some("log.segment.bytes"),
        "Segment file size.",
    ),
    def(
        "segment.index.bytes",
        T::Int,
        "10485760",
        Some("log.index.size.max.bytes"),
        "Offset index size.",
    ),
    def(
        "segment.jitter.ms",
        T::Long,
        "0",
        Some("log.roll.jitter.ms"),
        "Random jitter subtracted from segment.ms.",
    ),
    def(
        "segment.ms",
        T::Long,
        "604800000",
        Some("log.roll.ms"),
        "Time after which a segment is rolled.",
    ),
    def(
        "unclean.leader.election.enable",
        T::Boolean,
        "false",
        Some("unclean.leader.election.enable"),
        "Allow out-of-sync replicas to become leader.",
    ),
];

/// The definition of a topic config.
pub fn config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Whether `name` is a topic config Kafka knows.
pub fn is_known_config(name: &str) -> bool {
    config_def(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("orders.v1_x-y").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("..").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"x".repeat(250)).is_err());
        assert!(validate_name(&"x".repeat(249)).is_ok());
    }
}
