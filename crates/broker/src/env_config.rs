//! Configuration from `KAFKA_*` environment variables, mapped exactly as the apache/kafka
//! Docker image maps them, so that a docker-compose file written for `apache/kafka` configures
//! Gregor unchanged.
//!
//! The rules (apache/kafka 4.1: `kafka.docker.KafkaDockerWrapper` and the image's `configure`
//! script):
//! - every variable whose name starts with `KAFKA_` is a broker property, except the JVM and
//!   start-script settings in [`IGNORED`] (Gregor also skips every `KAFKA_JMX_*` and
//!   `KAFKA_LOG4J_*` name and `KAFKA_DEBUG`, which are no broker configs either);
//! - the name loses its `KAFKA_` prefix and is lower-cased; then `_` becomes `.`, and of the
//!   resulting dots `...` becomes `-` and `..` becomes `_`: `KAFKA_LOG_DIRS` → `log.dirs`,
//!   `KAFKA_FOO__BAR` → `foo_bar`, `KAFKA_FOO___BAR` → `foo-bar`;
//! - when `KAFKA_LISTENERS` is unset or empty, `KAFKA_ADVERTISED_LISTENERS` is set and
//!   `KAFKA_PROCESS_ROLES` is not `controller`, `listeners` is derived from the advertised
//!   listeners with every host replaced by `0.0.0.0` (the script's
//!   `sed -e 's|://[^:]*:|://0.0.0.0:|g'`);
//! - `CLUSTER_ID` (used by the image to format the storage) and any other variable are ignored.
//!
//! Precedence (see [`crate::config::Config::load`]): properties file < environment <
//! `--override`. The binary applies the environment itself: the container image has no shell.

/// `KAFKA_*` variables that configure the JVM or apache/kafka's start scripts, never the broker
/// (the image's `ExcludeServerPropsEnv`).
pub const IGNORED: &[&str] = &[
    "KAFKA_VERSION",
    "KAFKA_HEAP_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_JMX_HOSTNAME",
];

/// Further script settings Gregor skips: `kafka-run-class.sh` reads them, and in the
/// apache/kafka image they would only become unknown properties (`jmx.port`, `debug`).
const IGNORED_PREFIXES: &[&str] = &["KAFKA_JMX_", "KAFKA_LOG4J_"];
const IGNORED_EXTRA: &[&str] = &["KAFKA_DEBUG"];

/// The broker property a `KAFKA_*` environment variable sets, or `None` when the variable is
/// not a broker setting.
pub fn property_name(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_")?;
    if rest.is_empty()
        || IGNORED.contains(&var)
        || IGNORED_EXTRA.contains(&var)
        || IGNORED_PREFIXES.iter().any(|p| var.starts_with(p))
    {
        return None;
    }
    Some(
        rest.to_lowercase()
            .replace('_', ".")
            .replace("...", "-")
            .replace("..", "_"),
    )
}

/// One property taken from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    /// The environment variable (`KAFKA_NUM_PARTITIONS`), or a description of the rule that
    /// derived the value.
    pub source: String,
    /// The broker property (`num.partitions`).
    pub key: String,
    /// Its value.
    pub value: String,
}

/// Maps environment variables to broker properties (pure: the caller passes the environment).
/// The result is sorted by variable name, so it does not depend on the environment's order.
pub fn settings_from_env<I, K, V>(env: I) -> Vec<EnvSetting>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let mut vars: Vec<(String, String)> =
        env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    vars.sort();
    let var = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out: Vec<EnvSetting> = vars
        .iter()
        .filter_map(|(k, v)| {
            property_name(k).map(|key| EnvSetting {
                source: k.clone(),
                key,
                value: v.clone(),
            })
        })
        .collect();
    let listeners_unset = var("KAFKA_LISTENERS").is_none_or(str::is_empty);
    let controller_only = var("KAFKA_PROCESS_ROLES") == Some("controller");
    if let Some(adv) = var("KAFKA_ADVERTISED_LISTENERS") {
        if listeners_unset && !controller_only && !adv.is_empty() {
            out.retain(|s| s.key != "listeners");
            out.push(EnvSetting {
                source: "KAFKA_ADVERTISED_LISTENERS (hosts replaced by 0.0.0.0)".into(),
                key: "listeners".into(),
                value: listeners_from_advertised(adv),
            });
        }
    }
    out
}

/// `sed -e 's|://[^:]*:|://0.0.0.0:|g'`: the apache/kafka image's default `listeners`.
pub fn listeners_from_advertised(advertised: &str) -> String {
    let mut out = String::with_capacity(advertised.len());
    let mut rest = advertised;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        match after.find(':') {
            // `[^:]*` is greedy and stops at the first colon, which must follow.
            Some(colon) => {
                out.push_str(&rest[..at]);
                out.push_str("://0.0.0.0:");
                rest = &after[colon + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// The process environment as `(name, value)` pairs; variables whose name or value is not
/// valid UTF-8 are skipped (they cannot be Kafka settings).
pub fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

/// The broker properties set by this process's environment, each one logged at info level.
pub fn from_process_env() -> Vec<(String, String)> {
    settings_from_env(process_env())
        .into_iter()
        .map(|s| {
            tracing::info!(variable = %s.source, key = %s.key, "configuration from the environment");
            (s.key, s.value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(env: &[(&str, &str)]) -> Vec<(String, String)> {
        settings_from_env(env.iter().copied())
            .into_iter()
            .map(|s| (s.key, s.value))
            .collect()
    }

    #[test]
    fn names_map_like_the_apache_kafka_image() {
        for (var, key) in [
            ("KAFKA_LOG_DIRS", "log.dirs"),
            ("KAFKA_NODE_ID", "node.id"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "listener.security.protocol.map",
            ),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "controller.quorum.voters"),
            (
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "offsets.topic.replication.factor",
            ),
            ("KAFKA_FOO__BAR", "foo_bar"),
            ("KAFKA_FOO___BAR", "foo-bar"),
            ("KAFKA_A___B__C_D", "a-b_c.d"),
            // Four underscores: "...." -> "-." (the `...` rule runs first).
            ("KAFKA_A____B", "a-.b"),
            ("KAFKA_Mixed_Case", "mixed.case"),
            // Only the first KAFKA_ is a prefix.
            ("KAFKA_KAFKA_X", "kafka.x"),
        ] {
            assert_eq!(property_name(var).as_deref(), Some(key), "{var}");
        }
    }

    #[test]
    fn jvm_and_script_settings_and_other_variables_are_ignored() {
        for var in IGNORED {
            assert_eq!(property_name(var), None, "{var}");
        }
        for var in [
            "KAFKA_JMX_PORT",
            "KAFKA_LOG4J_CONFIG",
            "KAFKA_DEBUG",
            "KAFKA_",
            "CLUSTER_ID",
            "PATH",
            "kafka_log_dirs",
            "XKAFKA_LOG_DIRS",
        ] {
            assert_eq!(property_name(var), None, "{var}");
        }
        // KAFKA_LOG_DIRS is a broker setting even though it starts like KAFKA_LOG4J_.
        assert_eq!(property_name("KAFKA_LOG_DIRS").as_deref(), Some("log.dirs"));
    }

    #[test]
    fn a_typical_kraft_compose_environment() {
        let got = pairs(&[
            ("PATH", "/usr/bin"),
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
            ("KAFKA_HEAP_OPTS", "-Xmx1g"),
            ("KAFKA_NODE_ID", "1"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_LISTENERS", "PLAINTEXT://:19092,CONTROLLER://:29093"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://broker:19092"),
            ("KAFKA_LOG_DIRS", "/var/lib/gregor"),
        ]);
        assert_eq!(
            got,
            vec![
                (
                    "advertised.listeners".into(),
                    "PLAINTEXT://broker:19092".into()
                ),
                ("controller.listener.names".into(), "CONTROLLER".into()),
                (
                    "listeners".into(),
                    "PLAINTEXT://:19092,CONTROLLER://:29093".into()
                ),
                ("log.dirs".into(), "/var/lib/gregor".into()),
                ("node.id".into(), "1".into()),
                ("process.roles".into(), "broker,controller".into()),
            ]
        );
    }

    #[test]
    fn output_does_not_depend_on_environment_order() {
        let a = pairs(&[("KAFKA_B", "2"), ("KAFKA_A", "1")]);
        let b = pairs(&[("KAFKA_A", "1"), ("KAFKA_B", "2")]);
        assert_eq!(a, b);
        assert_eq!(a[0], ("a".to_string(), "1".to_string()));
    }

    #[test]
    fn empty_values_are_kept() {
        // The image writes `key=` for an empty variable; so do we (the config decides).
        assert_eq!(
            pairs(&[("KAFKA_BROKER_RACK", "")]),
            vec![("broker.rack".into(), "".into())]
        );
    }

    #[test]
    fn listeners_default_to_the_advertised_ones_on_all_interfaces() {
        let got = pairs(&[(
            "KAFKA_ADVERTISED_LISTENERS",
            "PLAINTEXT://gregor:29092,PLAINTEXT_HOST://localhost:9092",
        )]);
        assert!(
            got.contains(&(
                "listeners".into(),
                "PLAINTEXT://0.0.0.0:29092,PLAINTEXT_HOST://0.0.0.0:9092".into()
            )),
            "{got:?}"
        );
        // An empty KAFKA_LISTENERS counts as unset (bash `-z`), and is replaced.
        let got = pairs(&[
            ("KAFKA_LISTENERS", ""),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://h:1"),
        ]);
        let listeners: Vec<_> = got.iter().filter(|(k, _)| k == "listeners").collect();
        assert_eq!(
            listeners,
            vec![&("listeners".into(), "PLAINTEXT://0.0.0.0:1".into())]
        );
        // Not derived when set, when controller-only, or when there is nothing to derive from.
        let got = pairs(&[
            ("KAFKA_LISTENERS", "PLAINTEXT://127.0.0.1:1"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://h:1"),
        ]);
        assert!(got.contains(&("listeners".into(), "PLAINTEXT://127.0.0.1:1".into())));
        let got = pairs(&[
            ("KAFKA_PROCESS_ROLES", "controller"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://h:1"),
        ]);
        assert!(!got.iter().any(|(k, _)| k == "listeners"), "{got:?}");
        let got = pairs(&[("KAFKA_ADVERTISED_LISTENERS", "")]);
        assert!(!got.iter().any(|(k, _)| k == "listeners"), "{got:?}");
    }

    #[test]
    fn advertised_to_listeners_follows_sed() {
        assert_eq!(
            listeners_from_advertised("PLAINTEXT://:9092"),
            "PLAINTEXT://0.0.0.0:9092"
        );
        assert_eq!(
            listeners_from_advertised("A://x.example:1,B://y:2"),
            "A://0.0.0.0:1,B://0.0.0.0:2"
        );
        assert_eq!(listeners_from_advertised("garbage"), "garbage");
        assert_eq!(listeners_from_advertised("A://noport"), "A://noport");
        assert_eq!(listeners_from_advertised(""), "");
    }

    #[test]
    fn the_mapped_environment_configures_the_broker() {
        use crate::config::Config;
        let c = Config::from_pairs(pairs(&[
            ("KAFKA_NODE_ID", "3"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "3@gregor:29093"),
            ("KAFKA_LISTENERS", "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093,PLAINTEXT_HOST://0.0.0.0:9092"),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://gregor:29092,PLAINTEXT_HOST://localhost:9092"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            ("KAFKA_NUM_PARTITIONS", "3"),
            ("KAFKA_LOG_DIRS", "/var/lib/gregor"),
        ]))
        .unwrap();
        assert_eq!(c.node_id, 3);
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.log_dir, std::path::PathBuf::from("/var/lib/gregor"));
        let names: Vec<_> = c.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["PLAINTEXT", "PLAINTEXT_HOST"]);
        assert_eq!(c.advertised_for("PLAINTEXT").host, "gregor");
        assert_eq!(c.advertised_for("PLAINTEXT_HOST").port, 9092);
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
    }
}
