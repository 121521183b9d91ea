//! AlterConfigs (key 33, v0–v2) and IncrementalAlterConfigs (key 44, v0–v1) for TOPIC,
//! BROKER and GROUP resources (KIP-848 group configs, applied by the group coordinator).
//!
//! Each resource is validated as a whole and applied all or nothing: an unknown config name,
//! a value of the wrong type or out of range, or a broker config that cannot change
//! dynamically fails that resource (INVALID_CONFIG / INVALID_REQUEST with Kafka's message)
//! and changes nothing. Legacy AlterConfigs replaces the resource's whole set of overrides;
//! IncrementalAlterConfigs applies SET / DELETE / APPEND / SUBTRACT (the last two on LIST
//! configs only). Changes go through the controller's metadata log and apply at once (the
//! topics' logs and produce settings are refreshed). `validate_only` checks and changes nothing.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::configs::{validate_broker_config, BrokerView};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_controller::topic::{self, ConfigType};
use gregor_controller::MetadataRecord;
use gregor_protocol::messages::alter_configs_request::AlterConfigsRequest;
use gregor_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use gregor_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use gregor_protocol::messages::incremental_alter_configs_response as inc;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions of AlterConfigs.
pub const VERSIONS: (i16, i16) = (0, 2);
/// Served versions of IncrementalAlterConfigs.
pub const INCREMENTAL_VERSIONS: (i16, i16) = (0, 1);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_GROUP: i8 = 32;

/// One requested change.
#[derive(Debug, Clone)]
enum Op {
    Set(Option<String>),
    Delete,
    Append(Option<String>),
    Subtract(Option<String>),
}

type Failure = (ErrorCode, String);

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Resolves APPEND/SUBTRACT against the current value; `current` is the value in effect.
fn list_op(key: &str, op: &Op, is_list: bool, current: &str) -> Result<Option<String>, Failure> {
    let (value, append) = match op {
        Op::Set(v) => {
            return v.clone().map(Some).ok_or((
                ErrorCode::InvalidRequest,
                format!("Null value not supported for : {key}"),
            ))
        }
        Op::Delete => return Ok(None),
        Op::Append(v) => (v, true),
        Op::Subtract(v) => (v, false),
    };
    if !is_list {
        return Err((
            ErrorCode::InvalidConfig,
            format!(
                "Can't {} to key {key} because its type is not LIST.",
                if append { "APPEND" } else { "SUBTRACT" }
            ),
        ));
    }
    let Some(value) = value else {
        return Err((
            ErrorCode::InvalidRequest,
            format!("Null value not supported for : {key}"),
        ));
    };
    let mut items = split_list(current);
    for item in split_list(value) {
        if append {
            if !items.contains(&item) {
                items.push(item);
            }
        } else {
            items.retain(|i| *i != item);
        }
    }
    Ok(Some(items.join(",")))
}

/// Validates (and unless `validate_only`, applies) the changes to one resource.
async fn alter(
    ctx: &Ctx<'_>,
    view: &BrokerView,
    resource_type: i8,
    name: &str,
    ops: &[(String, Op)],
    replace_all: bool,
    validate_only: bool,
) -> Result<(), Failure> {
    // ALTER_CONFIGS on the topic, or on the cluster for broker resources (with an authorizer).
    if resource_type == RESOURCE_TOPIC && !ctx.allowed(op::ALTER_CONFIGS, resource::TOPIC, name) {
        return Err((ErrorCode::TopicAuthorizationFailed, String::new()));
    }
    if resource_type == RESOURCE_GROUP && !ctx.allowed(op::ALTER_CONFIGS, resource::GROUP, name) {
        return Err((ErrorCode::GroupAuthorizationFailed, String::new()));
    }
    if resource_type != RESOURCE_TOPIC
        && resource_type != RESOURCE_GROUP
        && !ctx.cluster_allowed(op::ALTER_CONFIGS)
    {
        return Err((ErrorCode::ClusterAuthorizationFailed, String::new()));
    }
    let mut seen = std::collections::HashSet::new();
    for (k, _) in ops {
        if !seen.insert(k.as_str()) {
            return Err((
                ErrorCode::InvalidRequest,
                format!("Error due to duplicate config keys: {k}"),
            ));
        }
    }
    match resource_type {
        RESOURCE_TOPIC => {
            // Kafka's config validator words the illegal-character case its own way.
            gregor_controller::topic::validate_name(name).map_err(|m| {
                let illegal = !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
                let m = if illegal {
                    format!("Topic name is invalid: '{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
                } else {
                    m
                };
                (ErrorCode::InvalidTopicException, m)
            })?;
            let meta = ctx.metadata().topic(name).ok_or_else(|| {
                (
                    ErrorCode::UnknownTopicOrPartition,
                    format!("The topic '{name}' does not exist."),
                )
            })?;
            let mut changes = Vec::new();
            for (key, op) in ops {
                let def = topic::config_def(key);
                let is_list = def.is_some_and(|d| d.kind == ConfigType::List);
                if def.is_none() {
                    return Err((
                        ErrorCode::InvalidConfig,
                        format!("Unknown topic config name: {key}"),
                    ));
                }
                let current = view.topic_value(&meta.configs, key);
                changes.push((key.clone(), list_op(key, op, is_list, &current)?));
            }
            if replace_all {
                for key in meta.configs.keys() {
                    if !ops.iter().any(|(k, _)| k == key) {
                        changes.push((key.clone(), None));
                    }
                }
            }
            // Validate every change before applying any.
            ctx.metadata()
                .image()
                .alter_topic_configs(name, &changes)
                .map_err(|e| (controller_code(&e), e.to_string()))?;
            if validate_only {
                return Ok(());
            }
            ctx.controller()
                .alter_topic_configs(name.to_string(), changes)
                .await
                .map(|_| ())
                .map_err(|e| (controller_code(&e), e.to_string()))
        }
        RESOURCE_BROKER => {
            let node = ctx.node_id();
            let resource = if name.is_empty() {
                String::new()
            } else if name.trim().parse::<i32>().ok() == Some(node) {
                node.to_string()
            } else {
                return Err((
                    ErrorCode::InvalidRequest,
                    format!("Unexpected broker id, expected {node} but received {name}"),
                ));
            };
            let current_map = if resource.is_empty() {
                &view.dynamic_default
            } else {
                &view.dynamic_node
            };
            let mut records = Vec::new();
            for (key, op) in ops {
                let is_list = crate::config::key(key)
                    .is_some_and(|k| k.kind == crate::config::Kind::List)
                    || topic::TOPIC_CONFIGS.iter().any(|d| {
                        d.broker_synonym == Some(key.as_str()) && d.kind == ConfigType::List
                    });
                let current = view.broker_value(key).0.unwrap_or_default();
                let value = list_op(key, op, is_list, &current)?;
                let value = match value {
                    Some(v) => Some(
                        validate_broker_config(key, &v)
                            .map_err(|m| (ErrorCode::InvalidRequest, m))?,
                    ),
                    None => None,
                };
                records.push(MetadataRecord::BrokerConfig {
                    resource_name: resource.clone(),
                    key: key.clone(),
                    value,
                });
            }
            if replace_all {
                for key in current_map.keys() {
                    if !ops.iter().any(|(k, _)| k == key) {
                        records.push(MetadataRecord::BrokerConfig {
                            resource_name: resource.clone(),
                            key: key.clone(),
                            value: None,
                        });
                    }
                }
            }
            if validate_only {
                return Ok(());
            }
            ctx.controller()
                .commit(records)
                .await
                .map_err(|e| (controller_code(&e), e.to_string()))?;
            tracing::info!(resource = %if resource.is_empty() { "<default>" } else { resource.as_str() }, ?ops, "altered broker configs");
            Ok(())
        }
        RESOURCE_GROUP => {
            // KIP-848 group configs: any group name, existing or not, as Kafka.
            let current = ctx
                .metadata()
                .image()
                .group_configs(name)
                .cloned()
                .unwrap_or_default();
            let mut after = if replace_all {
                std::collections::BTreeMap::new()
            } else {
                current.clone()
            };
            for (key, op) in ops {
                if !crate::configs::is_group_config(key) {
                    return Err((
                        ErrorCode::InvalidConfig,
                        format!("Unknown group config name: {key}"),
                    ));
                }
                let now = after.get(key).cloned().unwrap_or_default();
                match list_op(key, op, false, &now)? {
                    Some(v) => after.insert(key.clone(), v),
                    None => after.remove(key),
                };
            }
            crate::configs::validate_group_configs(ctx.config(), &after)
                .map_err(|m| (ErrorCode::InvalidConfig, m))?;
            if validate_only {
                return Ok(());
            }
            let mut records = Vec::new();
            for (key, value) in &after {
                if current.get(key) != Some(value) {
                    records.push(MetadataRecord::GroupConfig {
                        group: name.to_string(),
                        key: key.clone(),
                        value: Some(value.clone()),
                    });
                }
            }
            for key in current.keys().filter(|k| !after.contains_key(*k)) {
                records.push(MetadataRecord::GroupConfig {
                    group: name.to_string(),
                    key: key.clone(),
                    value: None,
                });
            }
            if records.is_empty() {
                return Ok(());
            }
            ctx.controller()
                .commit(records)
                .await
                .map_err(|e| (controller_code(&e), e.to_string()))?;
            tracing::info!(group = %name, ?ops, "altered group configs");
            Ok(())
        }
        RESOURCE_BROKER_LOGGER => Err((
            ErrorCode::InvalidRequest,
            "Broker loggers are configured with RUST_LOG; BROKER_LOGGER is not supported.".into(),
        )),
        other => Err((
            ErrorCode::InvalidRequest,
            format!("Unexpected resource type {other}"),
        )),
    }
}

fn duplicates<'a>(resources: impl Iterator<Item = (i8, &'a str)>) -> Vec<(i8, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut dups = Vec::new();
    for (t, n) in resources {
        if !seen.insert((t, n)) {
            dups.push((t, n.to_string()));
        }
    }
    dups
}

/// Handles AlterConfigs.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterConfigsRequest = ctx.decode(body)?;
    let view = ctx.metadata().broker_view();
    let dups = duplicates(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::new();
    for r in &req.resources {
        let name = r.resource_name.as_str();
        let ops: Vec<(String, Op)> = r
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.as_str().to_string(),
                    Op::Set(c.value.as_ref().map(|v| v.as_str().to_string())),
                )
            })
            .collect();
        let outcome = if dups.contains(&(r.resource_type, name.to_string())) {
            Err((ErrorCode::InvalidRequest, "Duplicate resource.".to_string()))
        } else {
            alter(
                ctx,
                &view,
                r.resource_type,
                name,
                &ops,
                true,
                req.validate_only,
            )
            .await
        };
        let mut out = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if let Err((code, msg)) = outcome {
            out.error_code = code.code();
            out.error_message = Some(StrBytes::from_string(msg));
        }
        responses.push(out);
    }
    ctx.respond(
        &AlterConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(responses),
    )
}

/// Handles IncrementalAlterConfigs.
pub async fn handle_incremental(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: IncrementalAlterConfigsRequest = ctx.decode(body)?;
    let view = ctx.metadata().broker_view();
    let dups = duplicates(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::new();
    for r in &req.resources {
        let name = r.resource_name.as_str();
        let mut bad_op = None;
        let ops: Vec<(String, Op)> = r
            .configs
            .iter()
            .map(|c| {
                let v = c.value.as_ref().map(|v| v.as_str().to_string());
                let op = match c.config_operation {
                    0 => Op::Set(v),
                    1 => Op::Delete,
                    2 => Op::Append(v),
                    3 => Op::Subtract(v),
                    other => {
                        bad_op = Some(other);
                        Op::Delete
                    }
                };
                (c.name.as_str().to_string(), op)
            })
            .collect();
        let outcome = if dups.contains(&(r.resource_type, name.to_string())) {
            Err((ErrorCode::InvalidRequest, "Duplicate resource.".to_string()))
        } else if let Some(op) = bad_op {
            Err((
                ErrorCode::InvalidRequest,
                format!("Unknown config operation {op}"),
            ))
        } else {
            alter(
                ctx,
                &view,
                r.resource_type,
                name,
                &ops,
                false,
                req.validate_only,
            )
            .await
        };
        let mut out = inc::AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name.clone());
        if let Err((code, msg)) = outcome {
            out.error_code = code.code();
            out.error_message = Some(StrBytes::from_string(msg));
        }
        responses.push(out);
    }
    ctx.respond(
        &inc::IncrementalAlterConfigsResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(responses),
    )
}
