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

/// Extra constraint on a topic config value, as Kafka's `LogConfig` declares it.
#[derive(Debug, Clone, Copy)]
enum Rule {
    None,
    AtLeast(f64),
    Between(f64, f64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    /// `compression.gzip.level`: -1 or 1..=9.
    GzipLevel,
}

fn rule(name: &str) -> Rule {
    match name {
        "cleanup.policy" => Rule::ListOf(&["compact", "delete"]),
        "compression.type" => {
            Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"])
        }
        "compression.gzip.level" => Rule::GzipLevel,
        "compression.lz4.level" => Rule::Between(1.0, 17.0),
        "compression.zstd.level" => Rule::Between(-131072.0, 22.0),
        "delete.retention.ms"
        | "file.delete.delay.ms"
        | "flush.ms"
        | "index.interval.bytes"
        | "max.message.bytes"
        | "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "min.compaction.lag.ms"
        | "segment.jitter.ms" => Rule::AtLeast(0.0),
        "flush.messages" | "max.compaction.lag.ms" | "min.insync.replicas" | "segment.ms" => {
            Rule::AtLeast(1.0)
        }
        "local.retention.bytes" | "local.retention.ms" => Rule::AtLeast(-2.0),
        "retention.ms" => Rule::AtLeast(-1.0),
        "segment.bytes" => Rule::AtLeast(MIN_SEGMENT_BYTES as f64),
        "segment.index.bytes" => Rule::AtLeast(4.0),
        "message.timestamp.type" => Rule::OneOf(&["CreateTime", "LogAppendTime"]),
        "min.cleanable.dirty.ratio" => Rule::Between(0.0, 1.0),
        _ => Rule::None,
    }
}

/// Smallest `segment.bytes` Kafka 4.x accepts for a topic (1 MiB).
pub const MIN_SEGMENT_BYTES: i64 = 1024 * 1024;

fn fmt_bound(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e18 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Parses a value of `kind` as Kafka's `ConfigDef.parseType` does (trimmed; booleans are
/// case-insensitive), returning the normalised text or the reason it is invalid.
pub fn parse_typed(kind: ConfigType, value: &str) -> Result<String, String> {
    let v = value.trim();
    match kind {
        ConfigType::Boolean => {
            if v.eq_ignore_ascii_case("true") {
                Ok("true".into())
            } else if v.eq_ignore_ascii_case("false") {
                Ok("false".into())
            } else {
                Err("Expected value to be either true or false".into())
            }
        }
        ConfigType::Int => v
            .parse::<i32>()
            .map(|n| n.to_string())
            .map_err(|_| "Not a number of type INT".into()),
        ConfigType::Long => v
            .parse::<i64>()
            .map(|n| n.to_string())
            .map_err(|_| "Not a number of type LONG".into()),
        ConfigType::Double => match v.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(v.to_string()),
            _ => Err("Not a number of type DOUBLE".into()),
        },
        ConfigType::String => Ok(v.to_string()),
        ConfigType::List => Ok(v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(",")),
    }
}

/// Validates one topic config value (type, then Kafka's range/choice rule). Returns the
/// normalised value, or Kafka's message: `Invalid value X for configuration Y: reason`.
pub fn validate_value(name: &str, value: &str) -> Result<String, String> {
    let Some(d) = config_def(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let invalid =
        |reason: String| format!("Invalid value {value} for configuration {name}: {reason}");
    let norm = parse_typed(d.kind, value).map_err(invalid)?;
    match rule(name) {
        Rule::None => {}
        Rule::AtLeast(min) => {
            let n: f64 = norm.parse().unwrap_or(f64::NAN);
            if n.is_nan() || n < min {
                return Err(invalid(format!(
                    "Value must be at least {}",
                    fmt_bound(min)
                )));
            }
        }
        Rule::Between(min, max) => {
            let n: f64 = norm.parse().unwrap_or(f64::NAN);
            if n.is_nan() || n < min {
                return Err(invalid(format!(
                    "Value must be at least {}",
                    fmt_bound(min)
                )));
            }
            if n > max {
                return Err(invalid(format!(
                    "Value must be no more than {}",
                    fmt_bound(max)
                )));
            }
        }
        Rule::GzipLevel => {
            let n: i64 = norm.parse().unwrap_or(0);
            if n != -1 && !(1..=9).contains(&n) {
                return Err(invalid(
                    "Value must be between 1 and 9 or equal to -1".into(),
                ));
            }
        }
        Rule::OneOf(choices) => {
            if !choices.contains(&norm.as_str()) {
                return Err(invalid(format!(
                    "String must be one of: {}",
                    choices.join(", ")
                )));
            }
        }
        Rule::ListOf(choices) => {
            for item in norm.split(',').filter(|s| !s.is_empty()) {
                if !choices.contains(&item) {
                    return Err(format!(
                        "Invalid value {item} for configuration {name}: String must be one of: {}",
                        choices.join(", ")
                    ));
                }
            }
        }
    }
    Ok(norm)
}

/// Validates a set of topic config overrides; the first problem wins.
pub fn validate_configs(
    configs: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in configs {
        out.insert(k.clone(), validate_value(k, v)?);
    }
    Ok(out)
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

    #[test]
    fn values() {
        assert_eq!(validate_value("retention.ms", " 1000 ").unwrap(), "1000");
        assert_eq!(
            validate_value("retention.ms", "abc").unwrap_err(),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            validate_value("retention.ms", "-2").unwrap_err(),
            "Invalid value -2 for configuration retention.ms: Value must be at least -1"
        );
        assert!(validate_value("segment.bytes", "1000").is_err());
        assert!(validate_value("cleanup.policy", "compact, delete").is_ok());
        assert!(validate_value("cleanup.policy", "compact,nope").is_err());
        assert!(validate_value("compression.type", "zstd").is_ok());
        assert!(validate_value("compression.type", "brotli").is_err());
        assert!(validate_value("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_value("min.cleanable.dirty.ratio", "0.01").is_ok());
        assert!(validate_value("preallocate", "TRUE").is_ok());
        assert!(validate_value("preallocate", "yes").is_err());
        assert!(validate_value("no.such", "1").is_err());
        assert!(validate_value("compression.gzip.level", "0").is_err());
        assert!(validate_value("compression.gzip.level", "-1").is_ok());
    }
}
