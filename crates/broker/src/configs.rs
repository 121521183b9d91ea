//! Config resolution, as Kafka's `DescribeConfigs` reports it and as the log and Produce use
//! it: a topic config comes from the topic override, else its broker synonym — dynamic
//! per-broker config, dynamic cluster default, static `server.properties`/`--override` —
//! else Kafka's default. A broker config comes from the dynamic per-broker value, the dynamic
//! cluster default, the static value, else the default.
//!
//! Dynamic configs (AlterConfigs / IncrementalAlterConfigs on a BROKER resource) live in the
//! controller's metadata log; [`BrokerView`] is a snapshot of them plus the static config.

use crate::config::{Config, Kind, KEYS};
use gregor_controller::topic::{self, ConfigType, TOPIC_CONFIGS};
use std::collections::BTreeMap;

/// Config sources as DescribeConfigs numbers them.
pub mod source {
    /// A topic-level override.
    pub const TOPIC: i8 = 1;
    /// A dynamic config of this broker.
    pub const DYNAMIC_BROKER: i8 = 2;
    /// A dynamic cluster-wide default broker config.
    pub const DYNAMIC_DEFAULT_BROKER: i8 = 3;
    /// A static broker config (server.properties / --override).
    pub const STATIC_BROKER: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT: i8 = 5;
}

/// Broker configs Kafka allows to change dynamically (`DynamicBrokerConfig`): the broker
/// synonyms of topic configs (`DynamicLogConfig`) and the thread-pool / cleaner settings.
pub fn is_dynamic_broker_config(name: &str) -> bool {
    const OTHERS: &[&str] = &[
        "log.cleaner.threads",
        "log.cleaner.io.max.bytes.per.second",
        "log.cleaner.dedupe.buffer.size",
        "log.cleaner.io.buffer.size",
        "log.cleaner.io.buffer.load.factor",
        "log.cleaner.backoff.ms",
        "num.io.threads",
        "num.network.threads",
        "num.replica.fetchers",
        "num.recovery.threads.per.data.dir",
        "background.threads",
        "max.connections",
        "max.connections.per.ip",
        "max.connection.creation.rate",
        // Kafka's reconfigurable SASL/Kerberos settings: accepted and stored (no GSSAPI here).
        "sasl.kerberos.kinit.cmd",
        "sasl.kerberos.min.time.before.relogin",
        "sasl.kerberos.ticket.renew.jitter",
        "sasl.kerberos.ticket.renew.window.factor",
        "sasl.kerberos.principal.to.local.rules",
    ];
    OTHERS.contains(&name)
        || TOPIC_CONFIGS
            .iter()
            .any(|d| d.broker_synonym == Some(name) && !name.starts_with("log.local."))
}

/// Configs whose values are secrets: described with a null value and `is_sensitive`.
pub fn is_sensitive(name: &str) -> bool {
    name.ends_with(".password") || name.ends_with(".jaas.config") || name.ends_with(".secret")
}

/// Lower bounds of numeric broker configs that can change dynamically (Kafka's validators).
fn broker_min(name: &str) -> Option<i64> {
    match name {
        "log.cleaner.threads" | "log.cleaner.backoff.ms" | "max.connection.creation.rate" => {
            Some(0)
        }
        "num.io.threads"
        | "num.network.threads"
        | "num.replica.fetchers"
        | "background.threads"
        | "num.recovery.threads.per.data.dir"
        | "max.connections"
        | "max.connections.per.ip" => Some(1),
        _ => None,
    }
}

/// The broker-side config values a resolution needs: static values plus dynamic ones.
#[derive(Debug, Clone, Default)]
pub struct BrokerView {
    /// Values set explicitly in server.properties / --override / environment.
    pub explicit: BTreeMap<String, String>,
    /// Dynamic configs of this broker.
    pub dynamic_node: BTreeMap<String, String>,
    /// Dynamic cluster-wide defaults.
    pub dynamic_default: BTreeMap<String, String>,
}

/// One resolved config entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Source.
    pub source: i8,
    /// Read-only.
    pub read_only: bool,
    /// A secret: the value is never returned.
    pub sensitive: bool,
    /// Type number (DescribeConfigs v3+).
    pub config_type: i8,
    /// Documentation.
    pub doc: &'static str,
    /// Synonyms, most specific first: (name, value, source).
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

/// Broker config names that feed a topic config, most specific first, with the factor that
/// converts their unit to the topic config's (`log.retention.hours` → ms).
fn synonym_names(synonym: &str) -> Vec<(&'static str, i64)> {
    match synonym {
        "log.retention.ms" => vec![
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
        "log.roll.ms" => vec![("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
        "log.roll.jitter.ms" => vec![
            ("log.roll.jitter.ms", 1),
            ("log.roll.jitter.hours", 3_600_000),
        ],
        other => TOPIC_CONFIGS
            .iter()
            .filter_map(|d| d.broker_synonym)
            .find(|s| *s == other)
            .map(|s| vec![(s, 1)])
            .unwrap_or_default(),
    }
}

/// Kafka's default for a broker synonym, as DescribeConfigs shows it.
fn synonym_default(synonym: &str, topic_default: &str) -> (&'static str, String) {
    match synonym {
        "log.retention.ms" => ("log.retention.hours", "168".into()),
        "log.roll.ms" => ("log.roll.hours", "168".into()),
        _ => (
            TOPIC_CONFIGS
                .iter()
                .filter_map(|d| d.broker_synonym)
                .find(|s| *s == synonym)
                .unwrap_or("unknown"),
            topic_default.to_string(),
        ),
    }
}

fn convert(value: &str, factor: i64) -> String {
    if factor == 1 {
        return value.trim().to_string();
    }
    value
        .trim()
        .parse::<i64>()
        .map(|v| v.saturating_mul(factor).to_string())
        .unwrap_or_else(|_| value.to_string())
}

impl BrokerView {
    /// A snapshot for `config` plus the dynamic configs from the controller.
    pub fn new(
        config: &Config,
        dynamic_node: Option<&BTreeMap<String, String>>,
        dynamic_default: Option<&BTreeMap<String, String>>,
    ) -> BrokerView {
        BrokerView {
            explicit: config.explicit.clone(),
            dynamic_node: dynamic_node.cloned().unwrap_or_default(),
            dynamic_default: dynamic_default.cloned().unwrap_or_default(),
        }
    }

    /// The explicitly set synonyms of a topic config's broker synonym, most specific first:
    /// (name, raw value, value in the topic config's unit, source).
    fn synonyms(&self, synonym: &str) -> Vec<(String, String, String, i8)> {
        let names = synonym_names(synonym);
        let mut out = Vec::new();
        for (map, src) in [
            (&self.dynamic_node, source::DYNAMIC_BROKER),
            (&self.dynamic_default, source::DYNAMIC_DEFAULT_BROKER),
            (&self.explicit, source::STATIC_BROKER),
        ] {
            for (name, factor) in &names {
                if let Some(v) = map.get(*name) {
                    out.push((name.to_string(), v.clone(), convert(v, *factor), src));
                }
            }
        }
        out
    }

    /// The effective broker-level value of a broker config, with its source.
    pub fn broker_value(&self, name: &str) -> (Option<String>, i8) {
        for (map, src) in [
            (&self.dynamic_node, source::DYNAMIC_BROKER),
            (&self.dynamic_default, source::DYNAMIC_DEFAULT_BROKER),
            (&self.explicit, source::STATIC_BROKER),
        ] {
            if let Some(v) = map.get(name) {
                return (Some(v.clone()), src);
            }
        }
        (
            crate::config::key(name).and_then(|k| k.default.map(str::to_string)),
            source::DEFAULT,
        )
    }

    /// Every topic config, resolved against the topic's `overrides`.
    pub fn topic_entries(&self, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
        TOPIC_CONFIGS
            .iter()
            .map(|d| {
                let mut synonyms = Vec::new();
                let mut value = None;
                if let Some(v) = overrides.get(d.name) {
                    synonyms.push((d.name.to_string(), Some(v.clone()), source::TOPIC));
                    value = Some((v.clone(), source::TOPIC));
                }
                if let Some(s) = d.broker_synonym {
                    for (name, raw, converted, src) in self.synonyms(s) {
                        if value.is_none() {
                            value = Some((converted, src));
                        }
                        synonyms.push((name, Some(raw), src));
                    }
                    // Kafka lists no DEFAULT_CONFIG synonym for the unit-converted ones
                    // (retention.ms, segment.ms, segment.jitter.ms), whose ms keys default to
                    // null, unless a broker-level synonym is set.
                    if synonym_names(s).len() == 1 || synonyms.iter().any(|x| x.2 != source::TOPIC)
                    {
                        let (name, default) = synonym_default(s, d.default);
                        synonyms.push((name.to_string(), Some(default), source::DEFAULT));
                    }
                }
                let (value, src) = value.unwrap_or((d.default.to_string(), source::DEFAULT));
                Entry {
                    name: d.name.to_string(),
                    value: Some(value),
                    source: src,
                    read_only: false,
                    sensitive: false,
                    config_type: d.kind as i8,
                    doc: d.doc,
                    synonyms,
                }
            })
            .collect()
    }

    /// The effective value of one topic config.
    pub fn topic_value(&self, overrides: &BTreeMap<String, String>, name: &str) -> String {
        if let Some(v) = overrides.get(name) {
            return v.clone();
        }
        let Some(d) = topic::config_def(name) else {
            return String::new();
        };
        d.broker_synonym
            .and_then(|s| self.synonyms(s).into_iter().next())
            .map(|(_, _, v, _)| v)
            .unwrap_or_else(|| d.default.to_string())
    }

    /// Every broker config Gregor knows, resolved (the per-broker resource). A key that is
    /// the most specific of a unit-converted group (`log.retention.ms` < `.minutes` < `.hours`)
    /// lists the less specific ones as synonyms, as Kafka does.
    pub fn broker_entries(&self) -> Vec<Entry> {
        KEYS.iter()
            .map(|k| {
                let group: Vec<&str> = {
                    let names = synonym_names(k.name);
                    match names.iter().position(|(n, _)| *n == k.name) {
                        Some(i) if names.len() > 1 => names[i..].iter().map(|(n, _)| *n).collect(),
                        _ => vec![k.name],
                    }
                };
                let mut synonyms = Vec::new();
                for (map, s) in [
                    (&self.dynamic_node, source::DYNAMIC_BROKER),
                    (&self.dynamic_default, source::DYNAMIC_DEFAULT_BROKER),
                    (&self.explicit, source::STATIC_BROKER),
                ] {
                    for name in &group {
                        if let Some(v) = map.get(*name) {
                            synonyms.push((name.to_string(), Some(v.clone()), s));
                        }
                    }
                }
                for name in &group {
                    if let Some(d) = crate::config::key(name).and_then(|k| k.default) {
                        synonyms.push((name.to_string(), Some(d.to_string()), source::DEFAULT));
                    }
                }
                // The key's own value: the first synonym of its own name, else its default.
                let (mut value, src) = self.broker_value(k.name);
                let sensitive = is_sensitive(k.name);
                if sensitive {
                    value = None;
                    for s in &mut synonyms {
                        s.1 = None;
                    }
                }
                Entry {
                    name: k.name.to_string(),
                    value,
                    source: src,
                    read_only: !is_dynamic_broker_config(k.name),
                    sensitive,
                    config_type: kind_type(k.kind) as i8,
                    doc: k.doc,
                    synonyms,
                }
            })
            .collect()
    }

    /// The cluster-default resource (`--entity-default`): only the dynamic defaults set.
    pub fn default_entries(&self) -> Vec<Entry> {
        self.dynamic_default
            .iter()
            .map(|(name, v)| {
                let k = crate::config::key(name);
                Entry {
                    name: name.clone(),
                    value: Some(v.clone()),
                    source: source::DYNAMIC_DEFAULT_BROKER,
                    read_only: false,
                    sensitive: is_sensitive(name),
                    config_type: k.map_or(ConfigType::String, |k| kind_type(k.kind)) as i8,
                    doc: k.map_or("", |k| k.doc),
                    synonyms: vec![(
                        name.clone(),
                        Some(v.clone()),
                        source::DYNAMIC_DEFAULT_BROKER,
                    )],
                }
            })
            .collect()
    }
}

/// The DescribeConfigs type of a broker key kind.
pub fn kind_type(kind: Kind) -> ConfigType {
    match kind {
        Kind::Bool => ConfigType::Boolean,
        Kind::Str => ConfigType::String,
        Kind::Int => ConfigType::Int,
        Kind::Long => ConfigType::Long,
        Kind::Double => ConfigType::Double,
        Kind::List => ConfigType::List,
    }
}

/// Validates a dynamic broker config change as Kafka does: the name must be a broker config
/// that can be updated dynamically, and the value must parse as its type (and satisfy the
/// topic config's rule when it is a topic config's synonym).
pub fn validate_broker_config(name: &str, value: &str) -> Result<String, String> {
    if !is_dynamic_broker_config(name) {
        return Err(match crate::config::key(name) {
            Some(_) => format!("Cannot update these configs dynamically: Set({name})"),
            None => format!("Unknown broker config name: {name}"),
        });
    }
    let kind = crate::config::key(name)
        .map(|k| kind_type(k.kind))
        .or_else(|| {
            TOPIC_CONFIGS
                .iter()
                .find(|d| d.broker_synonym == Some(name))
                .map(|d| d.kind)
        });
    let norm = match kind {
        Some(kind) => topic::parse_typed(kind, value)
            .map_err(|r| format!("Invalid value {value} for configuration {name}: {r}"))?,
        None => value.trim().to_string(),
    };
    if let Some(min) = broker_min(name) {
        if norm.parse::<f64>().is_ok_and(|v| v < min as f64) {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Value must be at least {min}"
            ));
        }
    }
    if let Some(d) = TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_synonym == Some(name) && synonym_names(name).len() <= 1)
    {
        topic::validate_value(d.name, &norm).map_err(|e| e.replace(d.name, name))?;
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_configs_validated_as_kafka() {
        let config = Config::from_pairs(std::iter::empty::<(String, String)>()).unwrap();
        let set = |pairs: &[(&str, &str)]| {
            let m: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validate_group_configs(&config, &m)
        };
        assert!(set(&[("consumer.session.timeout.ms", "50000")]).is_ok());
        assert_eq!(
            set(&[("consumer.session.timeout.ms", "5000")]).unwrap_err(),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            set(&[("consumer.heartbeat.interval.ms", "50000")]).unwrap_err(),
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        );
        assert_eq!(
            set(&[("foo", "1")]).unwrap_err(),
            "Unknown group config name: foo"
        );
        assert!(set(&[("consumer.session.timeout.ms", "x")]).is_err());
        // Defaults come from the broker; a group's own value is DYNAMIC_GROUP_CONFIG (8).
        let own: BTreeMap<String, String> = [(
            "consumer.session.timeout.ms".to_string(),
            "50000".to_string(),
        )]
        .into();
        let entries = group_entries(&config, Some(&own));
        assert_eq!(entries.len(), 10);
        let session = entries
            .iter()
            .find(|e| e.name == "consumer.session.timeout.ms")
            .unwrap();
        assert_eq!(
            (session.value.as_deref(), session.source),
            (Some("50000"), 8)
        );
        let hb = entries
            .iter()
            .find(|e| e.name == "consumer.heartbeat.interval.ms")
            .unwrap();
        assert_eq!((hb.value.as_deref(), hb.source), (Some("5000"), 5));
    }

    #[test]
    fn topic_value_precedence() {
        let mut v = BrokerView::default();
        let none = BTreeMap::new();
        assert_eq!(v.topic_value(&none, "retention.ms"), "604800000");
        v.explicit.insert("log.retention.hours".into(), "1".into());
        assert_eq!(v.topic_value(&none, "retention.ms"), "3600000");
        v.dynamic_default
            .insert("log.retention.minutes".into(), "2".into());
        assert_eq!(v.topic_value(&none, "retention.ms"), "120000");
        v.dynamic_node.insert("log.retention.ms".into(), "5".into());
        assert_eq!(v.topic_value(&none, "retention.ms"), "5");
        let o = BTreeMap::from([("retention.ms".to_string(), "7".to_string())]);
        assert_eq!(v.topic_value(&o, "retention.ms"), "7");
        let e = v
            .topic_entries(&o)
            .into_iter()
            .find(|e| e.name == "retention.ms")
            .unwrap();
        assert_eq!(e.source, source::TOPIC);
        let sources: Vec<i8> = e.synonyms.iter().map(|s| s.2).collect();
        assert_eq!(sources, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn dynamic_broker_configs() {
        assert!(validate_broker_config("log.retention.ms", "1000").is_ok());
        assert!(validate_broker_config("log.cleaner.threads", "2").is_ok());
        assert!(validate_broker_config("log.retention.ms", "x").is_err());
        assert!(validate_broker_config("node.id", "3").is_err());
        assert!(validate_broker_config("log.cleanup.policy", "nope").is_err());
    }
}

/// The configuration reference (`docs/config-reference.md`), generated from [`KEYS`] and the
/// topic config table so that it cannot drift: a unit test compares it with the file.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the code (`crates/broker/src/config.rs`, `crates/controller/src/topic.rs`);\n\
         a unit test keeps it current (`GREGOR_UPDATE_DOCS=1 cargo test -p gregor-broker --lib \
         reference` rewrites it).\n\n\
         ## Broker configs\n\n\
         *dynamic*: can be changed at run time with `kafka-configs.sh --alter --entity-type brokers` \
         (per broker or `--entity-default`), as in Kafka. *effect*: `yes` if Gregor acts on it, `accepted` \
         if it is only accepted so that existing files keep working.\n\n\
         | key | type | default | dynamic | effect | meaning |\n|---|---|---|---|---|---|\n",
    );
    for k in KEYS {
        out.push_str(&format!(
            "| `{}` | {:?} | {} | {} | {} | {} |\n",
            k.name,
            kind_type(k.kind),
            k.default.map_or("null".to_string(), |d| format!("`{d}`")),
            if is_dynamic_broker_config(k.name) {
                "yes"
            } else {
                "no"
            },
            if k.used { "yes" } else { "accepted" },
            k.doc.replace('|', "\\|")
        ));
    }
    out.push_str(
        "\n## Topic configs\n\n\
         Set with CreateTopics, `kafka-configs.sh --alter --entity-type topics` (AlterConfigs /\n\
         IncrementalAlterConfigs) or `kafka-topics.sh --config`; every one is dynamic and applies\n\
         without a restart. The broker config in the second column supplies the default.\n\n\
         | topic config | broker default from | type | Kafka default | meaning |\n|---|---|---|---|---|\n",
    );
    for d in TOPIC_CONFIGS {
        out.push_str(&format!(
            "| `{}` | {} | {:?} | `{}` | {} |\n",
            d.name,
            d.broker_synonym
                .map_or("—".to_string(), |s| format!("`{s}`")),
            d.kind,
            d.default,
            d.doc.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod reference_tests {
    /// docs/config-reference.md must match the key tables.
    #[test]
    fn config_reference_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/config-reference.md"
        );
        let want = super::reference_markdown();
        if std::env::var_os("GREGOR_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).expect("write docs/config-reference.md");
            return;
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/config-reference.md is out of date: run GREGOR_UPDATE_DOCS=1 cargo test -p gregor-broker --lib reference"
        );
    }
}

/// A KIP-848 group config (DescribeConfigs / IncrementalAlterConfigs on a GROUP resource): its
/// name, type, the broker config that gives its default (with Kafka's default when that is not
/// set), and documentation.
struct GroupConfigDef {
    name: &'static str,
    int: bool,
    broker_default: &'static str,
    fallback: &'static str,
    doc: &'static str,
}

const GROUP_CONFIGS: [GroupConfigDef; 10] = [
    GroupConfigDef { name: "consumer.heartbeat.interval.ms", int: true, broker_default: "group.consumer.heartbeat.interval.ms", fallback: "5000", doc: "The heartbeat interval given to the members of a consumer group." },
    GroupConfigDef { name: "consumer.session.timeout.ms", int: true, broker_default: "group.consumer.session.timeout.ms", fallback: "45000", doc: "The timeout to detect client failures when using the consumer group protocol." },
    GroupConfigDef { name: "share.auto.offset.reset", int: false, broker_default: "", fallback: "latest", doc: "The strategy to initialize the share-partition start offset (stored; Gregor has no share groups)." },
    GroupConfigDef { name: "share.heartbeat.interval.ms", int: true, broker_default: "group.share.heartbeat.interval.ms", fallback: "5000", doc: "The heartbeat interval of share group members (stored; Gregor has no share groups)." },
    GroupConfigDef { name: "share.isolation.level", int: false, broker_default: "", fallback: "read_uncommitted", doc: "How share group members read transactional records (stored; Gregor has no share groups)." },
    GroupConfigDef { name: "share.record.lock.duration.ms", int: true, broker_default: "group.share.record.lock.duration.ms", fallback: "30000", doc: "The record acquisition lock duration of share groups (stored; Gregor has no share groups)." },
    GroupConfigDef { name: "share.session.timeout.ms", int: true, broker_default: "group.share.session.timeout.ms", fallback: "45000", doc: "The session timeout of share group members (stored; Gregor has no share groups)." },
    GroupConfigDef { name: "streams.heartbeat.interval.ms", int: true, broker_default: "group.streams.heartbeat.interval.ms", fallback: "5000", doc: "The heartbeat interval of streams group members (stored; Gregor has no streams groups)." },
    GroupConfigDef { name: "streams.num.standby.replicas", int: true, broker_default: "group.streams.num.standby.replicas", fallback: "0", doc: "The number of standby replicas of streams groups (stored; Gregor has no streams groups)." },
    GroupConfigDef { name: "streams.session.timeout.ms", int: true, broker_default: "group.streams.session.timeout.ms", fallback: "45000", doc: "The session timeout of streams group members (stored; Gregor has no streams groups)." },
];

/// Source of a group config set on the group (Kafka's `DYNAMIC_GROUP_CONFIG`).
const SOURCE_DYNAMIC_GROUP: i8 = 8;
/// Source of a default (`DEFAULT_CONFIG`).
const SOURCE_DEFAULT: i8 = 5;

fn group_default(config: &Config, d: &GroupConfigDef) -> String {
    config
        .values
        .get(d.broker_default)
        .cloned()
        .unwrap_or_else(|| d.fallback.to_string())
}

/// Whether `name` is a group config.
pub fn is_group_config(name: &str) -> bool {
    GROUP_CONFIGS.iter().any(|d| d.name == name)
}

/// Every group config of a group: its own value (`DYNAMIC_GROUP_CONFIG`) or the broker's
/// default (`DEFAULT_CONFIG`), by name, as Kafka describes a GROUP resource (existing or not).
pub fn group_entries(config: &Config, overrides: Option<&BTreeMap<String, String>>) -> Vec<Entry> {
    GROUP_CONFIGS
        .iter()
        .map(|d| {
            let (value, source) = match overrides.and_then(|m| m.get(d.name)) {
                Some(v) => (v.clone(), SOURCE_DYNAMIC_GROUP),
                None => (group_default(config, d), SOURCE_DEFAULT),
            };
            Entry {
                name: d.name.to_string(),
                value: Some(value.clone()),
                source,
                read_only: false,
                sensitive: false,
                config_type: if d.int {
                    ConfigType::Int
                } else {
                    ConfigType::String
                } as i8,
                doc: d.doc,
                // Kafka lists the entry itself as its one synonym.
                synonyms: vec![(d.name.to_string(), Some(value), source)],
            }
        })
        .collect()
}

/// Validates the configs a group would have after a change, as Kafka's `GroupConfig`: known
/// names, integer values where integers are due, the consumer session timeout and heartbeat
/// interval within the broker's `group.consumer.{min,max}.*` bounds, and the heartbeat
/// interval below the session timeout.
pub fn validate_group_configs(
    config: &Config,
    after: &BTreeMap<String, String>,
) -> Result<(), String> {
    for (name, value) in after {
        let Some(d) = GROUP_CONFIGS.iter().find(|d| d.name == name) else {
            return Err(format!("Unknown group config name: {name}"));
        };
        if d.int && value.trim().parse::<i32>().is_err() {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Not a number of type INT"
            ));
        }
        if name == "share.auto.offset.reset" && !["latest", "earliest"].contains(&value.as_str())
            || name == "share.isolation.level"
                && !["read_uncommitted", "read_committed"].contains(&value.as_str())
        {
            return Err(format!("Invalid value {value} for configuration {name}"));
        }
    }
    let int = |name: &str| -> i64 {
        let d = GROUP_CONFIGS
            .iter()
            .find(|d| d.name == name)
            .expect("known group config");
        after
            .get(name)
            .cloned()
            .unwrap_or_else(|| group_default(config, d))
            .trim()
            .parse::<i64>()
            .unwrap_or(0)
    };
    let broker = |key: &str, fallback: i64| {
        config
            .values
            .get(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(fallback)
    };
    let session = int("consumer.session.timeout.ms");
    let heartbeat = int("consumer.heartbeat.interval.ms");
    let bounds = [
        (
            "consumer.session.timeout.ms",
            session,
            "group.consumer.min.session.timeout.ms",
            45_000,
            "group.consumer.max.session.timeout.ms",
            60_000,
        ),
        (
            "consumer.heartbeat.interval.ms",
            heartbeat,
            "group.consumer.min.heartbeat.interval.ms",
            5_000,
            "group.consumer.max.heartbeat.interval.ms",
            15_000,
        ),
    ];
    for (name, v, min_key, min_default, max_key, max_default) in bounds {
        if v < broker(min_key, min_default) {
            return Err(format!("{name} must be greater than or equal to {min_key}"));
        }
        if v > broker(max_key, max_default) {
            return Err(format!("{name} must be less than or equal to {max_key}"));
        }
    }
    if heartbeat >= session {
        return Err(
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
                .into(),
        );
    }
    Ok(())
}
