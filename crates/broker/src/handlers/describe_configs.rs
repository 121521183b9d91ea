//! DescribeConfigs (key 32), v1–v4, for TOPIC and BROKER resources: every config with its
//! value, source (topic override / static broker config / default), read-only and sensitive
//! flags, synonyms (v1+, when asked), type and documentation (v3+, when asked). Admin tools
//! rely on the full list with defaults (`kafka-topics --describe`, Connect, librdkafka 0092).

use super::{Ctx, Response};
use crate::config::{Kind, KEYS};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_controller::topic::{ConfigType, TOPIC_CONFIGS};
use gregor_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use gregor_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (1, 4);

/// Resource types.
pub const RESOURCE_TOPIC: i8 = 2;
/// Broker resource type.
pub const RESOURCE_BROKER: i8 = 4;

/// Config sources as DescribeConfigs numbers them.
pub mod source {
    /// A topic-level override.
    pub const TOPIC: i8 = 1;
    /// A static broker config (server.properties / --override).
    pub const STATIC_BROKER: i8 = 4;
    /// Kafka's default.
    pub const DEFAULT: i8 = 5;
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
    /// Type number (DescribeConfigs v3+).
    pub config_type: i8,
    /// Documentation.
    pub doc: &'static str,
    /// Synonyms, most specific first: (name, value, source).
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

/// The broker-level value of a topic config's synonym, if set explicitly.
fn broker_value(ctx: &Ctx<'_>, synonym: &str) -> Option<(String, String)> {
    let explicit = &ctx.broker.config.explicit;
    if synonym == "log.retention.ms" {
        if let Some(v) = explicit.get("log.retention.ms") {
            return Some(("log.retention.ms".into(), v.clone()));
        }
        if let Some(v) = explicit
            .get("log.retention.minutes")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            return Some(("log.retention.minutes".into(), (v * 60_000).to_string()));
        }
        if let Some(v) = explicit
            .get("log.retention.hours")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            return Some(("log.retention.hours".into(), (v * 3_600_000).to_string()));
        }
        return None;
    }
    if synonym == "log.roll.ms" {
        if let Some(v) = explicit.get("log.roll.ms") {
            return Some(("log.roll.ms".into(), v.clone()));
        }
        if let Some(v) = explicit
            .get("log.roll.hours")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            return Some(("log.roll.hours".into(), (v * 3_600_000).to_string()));
        }
        return None;
    }
    explicit
        .get(synonym)
        .map(|v| (synonym.to_string(), v.clone()))
}

/// Every topic config of `topic_configs` (the topic's overrides), resolved.
pub fn topic_entries(
    ctx: &Ctx<'_>,
    overrides: &std::collections::BTreeMap<String, String>,
) -> Vec<Entry> {
    TOPIC_CONFIGS
        .iter()
        .map(|d| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(d.name) {
                synonyms.push((d.name.to_string(), Some(v.clone()), source::TOPIC));
            }
            if let Some((name, v)) = d.broker_synonym.and_then(|s| broker_value(ctx, s)) {
                synonyms.push((name, Some(v), source::STATIC_BROKER));
            }
            if let Some(s) = d.broker_synonym {
                synonyms.push((s.to_string(), Some(d.default.to_string()), source::DEFAULT));
            }
            let (value, src) = match synonyms.first() {
                Some((_, v, s)) => (v.clone(), *s),
                None => (Some(d.default.to_string()), source::DEFAULT),
            };
            Entry {
                name: d.name.to_string(),
                value,
                source: src,
                read_only: false,
                config_type: d.kind as i8,
                doc: d.doc,
                synonyms,
            }
        })
        .collect()
}

/// Every broker config Gregor knows, resolved.
pub fn broker_entries(ctx: &Ctx<'_>) -> Vec<Entry> {
    let explicit = &ctx.broker.config.explicit;
    KEYS.iter()
        .map(|k| {
            let (value, src) = match explicit.get(k.name) {
                Some(v) => (Some(v.clone()), source::STATIC_BROKER),
                None => (k.default.map(str::to_string), source::DEFAULT),
            };
            Entry {
                name: k.name.to_string(),
                value: value.clone(),
                source: src,
                read_only: true,
                config_type: match k.kind {
                    Kind::Bool => ConfigType::Boolean as i8,
                    Kind::Str => ConfigType::String as i8,
                    Kind::Int => ConfigType::Int as i8,
                    Kind::Long => ConfigType::Long as i8,
                    Kind::Double => ConfigType::Double as i8,
                    Kind::List => ConfigType::List as i8,
                },
                doc: k.doc,
                synonyms: vec![(k.name.to_string(), value, src)],
            }
        })
        .collect()
}

/// Handles DescribeConfigs.
pub fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeConfigsRequest = ctx.decode(body)?;
    let mut results = Vec::with_capacity(req.resources.len());
    for res in &req.resources {
        let name = res.resource_name.as_str().to_string();
        let mut out = DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let entries: Result<Vec<Entry>, (ErrorCode, String)> = match res.resource_type {
            RESOURCE_TOPIC => match ctx.broker.topic_meta(&name) {
                Some(meta) => Ok(topic_entries(ctx, &meta.configs)),
                None => Err((
                    ErrorCode::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist."),
                )),
            },
            RESOURCE_BROKER => {
                if name.is_empty() {
                    // Cluster-wide dynamic defaults: none are set.
                    Ok(Vec::new())
                } else if name.parse::<i32>().ok() == Some(ctx.broker.node_id()) {
                    Ok(broker_entries(ctx))
                } else {
                    Err((
                        ErrorCode::InvalidRequest,
                        format!(
                            "Unexpected broker id, expected {} but received {name}",
                            ctx.broker.node_id()
                        ),
                    ))
                }
            }
            other => Err((
                ErrorCode::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )),
        };
        match entries {
            Err((code, msg)) => {
                out.error_code = code.code();
                out.error_message = Some(StrBytes::from_string(msg));
            }
            Ok(entries) => {
                out.error_code = 0;
                let keys = res.configuration_keys.as_ref();
                out.configs = entries
                    .into_iter()
                    .filter(|e| keys.is_none_or(|ks| ks.iter().any(|k| k.as_str() == e.name)))
                    .map(|e| {
                        let mut r = DescribeConfigsResourceResult::default()
                            .with_name(StrBytes::from_string(e.name))
                            .with_value(e.value.map(StrBytes::from_string))
                            .with_read_only(e.read_only)
                            .with_config_source(e.source)
                            .with_is_sensitive(false);
                        if req.include_synonyms {
                            r.synonyms = e
                                .synonyms
                                .into_iter()
                                .map(|(n, v, s)| {
                                    DescribeConfigsSynonym::default()
                                        .with_name(StrBytes::from_string(n))
                                        .with_value(v.map(StrBytes::from_string))
                                        .with_source(s)
                                })
                                .collect();
                        }
                        if ctx.version >= 3 {
                            r.config_type = e.config_type;
                            if req.include_documentation {
                                r.documentation = Some(StrBytes::from_static_str(e.doc));
                            }
                        }
                        r
                    })
                    .collect();
            }
        }
        results.push(out);
    }
    ctx.respond(
        &DescribeConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(results),
    )
}
