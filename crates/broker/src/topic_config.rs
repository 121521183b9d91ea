//! What a topic's configuration means to the broker: the storage settings of its partition
//! logs ([`log_config`]) and the produce-time checks ([`ProduceSettings`]), both resolved with
//! Kafka's precedence (topic override, dynamic broker, dynamic default, static, default) by
//! [`BrokerView`].

use crate::config::Config;
use crate::configs::BrokerView;
use gregor_protocol::Compression;
use gregor_storage::LogConfig;
use std::collections::BTreeMap;

/// What Produce needs to know about a topic's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceSettings {
    /// Largest record batch accepted (`max.message.bytes`, else `message.max.bytes`).
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches on append.
    pub log_append_time: bool,
    /// `cleanup.policy` includes `compact`: records must have keys.
    pub compact: bool,
    /// `compression.type` other than `producer`: batches are stored with this codec.
    pub compression: Option<Compression>,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
}

impl ProduceSettings {
    /// The settings of a topic with no overrides and no dynamic configs.
    pub fn defaults(config: &Config) -> ProduceSettings {
        ProduceSettings {
            max_message_bytes: config.message_max_bytes,
            log_append_time: false,
            compact: false,
            compression: None,
            min_insync_replicas: 1,
        }
    }

    /// Produce-time settings of a topic with config `overrides`.
    pub fn resolve(
        config: &Config,
        view: &BrokerView,
        overrides: &BTreeMap<String, String>,
    ) -> ProduceSettings {
        let policy = view.topic_value(overrides, "cleanup.policy");
        ProduceSettings {
            max_message_bytes: view
                .topic_value(overrides, "max.message.bytes")
                .trim()
                .parse::<usize>()
                .unwrap_or(config.message_max_bytes),
            log_append_time: view
                .topic_value(overrides, "message.timestamp.type")
                .eq_ignore_ascii_case("LogAppendTime"),
            compact: policy.split(',').any(|p| p.trim() == "compact"),
            compression: match view.topic_value(overrides, "compression.type").trim() {
                "gzip" => Some(Compression::Gzip),
                "snappy" => Some(Compression::Snappy),
                "lz4" => Some(Compression::Lz4),
                "zstd" => Some(Compression::Zstd),
                "uncompressed" => Some(Compression::None),
                _ => None,
            },
            min_insync_replicas: view
                .topic_value(overrides, "min.insync.replicas")
                .trim()
                .parse::<i32>()
                .unwrap_or(1),
        }
    }
}

/// The log configuration of a topic with config `overrides`.
pub fn log_config(
    config: &Config,
    view: &BrokerView,
    overrides: &BTreeMap<String, String>,
) -> LogConfig {
    let long = |name: &str, default: i64| -> i64 {
        view.topic_value(overrides, name)
            .trim()
            .parse::<i64>()
            .unwrap_or(default)
    };
    let d = LogConfig::default();
    let policy = view.topic_value(overrides, "cleanup.policy");
    let flush_messages = long("flush.messages", i64::MAX);
    LogConfig {
        segment_bytes: long("segment.bytes", config.log_segment_bytes as i64).max(1) as u64,
        index_interval_bytes: long("index.interval.bytes", 4096).max(0) as u64,
        max_index_bytes: long("segment.index.bytes", 10 * 1024 * 1024).max(4) as u64,
        flush_interval_messages: flush_messages.max(1) as u64,
        segment_ms: long("segment.ms", d.segment_ms).max(1),
        retention_ms: long("retention.ms", d.retention_ms),
        retention_bytes: long("retention.bytes", d.retention_bytes),
        cleanup_delete: policy.split(',').any(|p| p.trim() == "delete"),
        cleanup_compact: policy.split(',').any(|p| p.trim() == "compact"),
        min_compaction_lag_ms: long("min.compaction.lag.ms", 0).max(0),
        max_compaction_lag_ms: long("max.compaction.lag.ms", i64::MAX).max(1),
        delete_retention_ms: long("delete.retention.ms", d.delete_retention_ms).max(0),
        min_cleanable_dirty_ratio: view
            .topic_value(overrides, "min.cleanable.dirty.ratio")
            .trim()
            .parse::<f64>()
            .unwrap_or(0.5),
        file_delete_delay_ms: long("file.delete.delay.ms", d.file_delete_delay_ms).max(0),
    }
}
