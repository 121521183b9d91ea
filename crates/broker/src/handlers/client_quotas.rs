//! DescribeClientQuotas (key 48, v0–v1) and AlterClientQuotas (key 49, v0–v1): client quotas
//! for `user`, `client-id`, `user`+`client-id` and `ip` entities (a null name is the default
//! entity), validated as Kafka's controller does and stored in the metadata log.
//! `producer_byte_rate`, `consumer_byte_rate` and `request_percentage` of users and client ids
//! and `connection_creation_rate` of ips are enforced by [`crate::quotas`];
//! `controller_mutation_rate` is stored and described only.

use super::{Ctx, Response};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_controller::state::QuotaEntity;
use gregor_controller::MetadataRecord;
use gregor_protocol::messages::alter_client_quotas_request::AlterClientQuotasRequest;
use gregor_protocol::messages::alter_client_quotas_response as alter;
use gregor_protocol::messages::describe_client_quotas_request::DescribeClientQuotasRequest;
use gregor_protocol::messages::describe_client_quotas_response::{
    DescribeClientQuotasResponse, EntityData, EntryData, ValueData,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions of both APIs.
pub const VERSIONS: (i16, i16) = (0, 1);

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";

/// Quota keys and whether they are integral, by entity kind.
fn key_allowed(ip: bool, key: &str) -> Option<bool> {
    if ip {
        return (key == "connection_creation_rate").then_some(true);
    }
    match key {
        "producer_byte_rate" | "consumer_byte_rate" => Some(true),
        "request_percentage" | "controller_mutation_rate" => Some(false),
        _ => None,
    }
}

fn validate_entity(entity: &QuotaEntity) -> Result<(), String> {
    if entity.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    let mut types: Vec<&str> = entity.iter().map(|(t, _)| t.as_str()).collect();
    types.sort_unstable();
    let n = types.len();
    types.dedup();
    if types.len() != n {
        return Err("Invalid quota entity: duplicate entity type".into());
    }
    for (t, name) in entity {
        match t.as_str() {
            USER | CLIENT_ID => {}
            IP => {
                if let Some(n) = name {
                    if n.parse::<std::net::IpAddr>().is_err() {
                        return Err(format!("{n} is not a valid IP or resolvable host."));
                    }
                }
            }
            other => return Err(format!("Unhandled client quota entity type: {other}")),
        }
    }
    match types.as_slice() {
        [USER] | [CLIENT_ID] | [CLIENT_ID, USER] | [IP] => Ok(()),
        _ => Err(
            "Invalid quota entity combination: ip cannot be combined with user or client-id".into(),
        ),
    }
}

/// Handles DescribeClientQuotas.
pub async fn describe(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeClientQuotasRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::DESCRIBE_CONFIGS) {
        let code = ErrorCode::ClusterAuthorizationFailed;
        return ctx.respond(
            &DescribeClientQuotasResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_static_str(code.message()))),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for c in &req.components {
        let t = c.entity_type.as_str();
        if !seen.insert(t.to_string()) {
            return ctx.respond(
                &DescribeClientQuotasResponse::default()
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Duplicate {t} entity type in filter."
                    )))),
            );
        }
        if ![USER, CLIENT_ID, IP].contains(&t) || c.match_type > 2 || c.match_type < 0 {
            return ctx.respond(
                &DescribeClientQuotasResponse::default()
                    .with_error_code(ErrorCode::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Invalid filter component: entity type {t}, match type {}",
                        c.match_type
                    )))),
            );
        }
    }
    let image = ctx.metadata().image();
    let mut entries = Vec::new();
    for (entity, values) in image.quotas() {
        let matches = req.components.iter().all(|c| {
            let found = entity.iter().find(|(t, _)| t == c.entity_type.as_str());
            match (c.match_type, found) {
                (0, Some((_, name))) => name.as_deref() == c._match.as_ref().map(|m| m.as_str()),
                (1, Some((_, name))) => name.is_none(),
                (2, Some(_)) => true,
                _ => false,
            }
        });
        let strict_ok = !req.strict
            || entity
                .iter()
                .all(|(t, _)| req.components.iter().any(|c| c.entity_type.as_str() == t));
        if !matches || !strict_ok {
            continue;
        }
        entries.push(
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(t.clone()))
                                .with_entity_name(n.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(k.clone()))
                                .with_value(*v)
                        })
                        .collect(),
                ),
        );
    }
    ctx.respond(
        &DescribeClientQuotasResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(0)
            .with_entries(Some(entries)),
    )
}

/// Handles AlterClientQuotas.
pub async fn alter(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterClientQuotasRequest = ctx.decode(body)?;
    // Kafka's controller: without ALTER_CONFIGS on the cluster every entry fails.
    let allowed = ctx.cluster_allowed(crate::authorizer::op::ALTER_CONFIGS);
    let mut out = Vec::with_capacity(req.entries.len());
    for e in &req.entries {
        let mut entity: QuotaEntity = e
            .entity
            .iter()
            .map(|d| {
                (
                    d.entity_type.as_str().to_string(),
                    d.entity_name.as_ref().map(|n| n.as_str().to_string()),
                )
            })
            .collect();
        entity.sort();
        let is_ip = entity.iter().any(|(t, _)| t == IP);
        let outcome: Result<Vec<MetadataRecord>, (ErrorCode, String)> = validate_entity(&entity)
            .map_err(|m| (ErrorCode::InvalidRequest, m))
            .and_then(|()| {
                let mut records = Vec::new();
                let mut keys = std::collections::HashSet::new();
                for op in &e.ops {
                    let key = op.key.as_str();
                    if !keys.insert(key) {
                        return Err((
                            ErrorCode::InvalidRequest,
                            format!("Duplicate quota key {key} not updated"),
                        ));
                    }
                    let Some(integral) = key_allowed(is_ip, key) else {
                        return Err((
                            ErrorCode::InvalidRequest,
                            format!("Invalid configuration key {key}"),
                        ));
                    };
                    let value = if op.remove {
                        None
                    } else {
                        if !op.value.is_finite() || op.value <= 0.0 {
                            return Err((
                                ErrorCode::InvalidRequest,
                                format!("Quota {key} must be greater than 0"),
                            ));
                        }
                        if integral && op.value.fract() != 0.0 {
                            return Err((
                                ErrorCode::InvalidRequest,
                                format!("{key} cannot be a fractional value."),
                            ));
                        }
                        Some(op.value.to_string())
                    };
                    records.push(MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key: key.to_string(),
                        value,
                    });
                }
                Ok(records)
            });
        let outcome = match outcome {
            _ if !allowed => Err((
                ErrorCode::ClusterAuthorizationFailed,
                ErrorCode::ClusterAuthorizationFailed.message().to_string(),
            )),
            Ok(records) if !req.validate_only => ctx
                .controller()
                .commit(records)
                .await
                .map_err(|e| (controller_code(&e), e.to_string())),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        let mut r = alter::EntryData::default().with_entity(
            e.entity
                .iter()
                .map(|d| {
                    alter::EntityData::default()
                        .with_entity_type(d.entity_type.clone())
                        .with_entity_name(d.entity_name.clone())
                })
                .collect(),
        );
        if let Err((code, msg)) = outcome {
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(msg));
        }
        out.push(r);
    }
    ctx.respond(
        &alter::AlterClientQuotasResponse::default()
            .with_throttle_time_ms(0)
            .with_entries(out),
    )
}
