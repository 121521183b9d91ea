//! DescribeConfigs (key 32), v1–v4, for TOPIC, BROKER and GROUP resources: every config with its
//! value, source (topic override / dynamic broker / dynamic default / static broker config /
//! default, resolved by [`crate::configs`]), read-only and sensitive
//! flags, synonyms (v1+, when asked), type and documentation (v3+, when asked). Admin tools
//! rely on the full list with defaults (`kafka-topics --describe`, Connect, librdkafka 0092).

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::configs::Entry;
use crate::errors::HandlerError;
use bytes::Bytes;
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
/// Group resource type (KIP-848 group configs).
pub const RESOURCE_GROUP: i8 = 32;

/// Handles DescribeConfigs.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeConfigsRequest = ctx.decode(body)?;
    let view = ctx.metadata().broker_view();
    let mut results = Vec::with_capacity(req.resources.len());
    for res in &req.resources {
        let name = res.resource_name.as_str().to_string();
        let mut out = DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let entries: Result<Vec<Entry>, (ErrorCode, String)> = match res.resource_type {
            // DESCRIBE_CONFIGS on the topic / the cluster (with an authorizer).
            RESOURCE_TOPIC if !ctx.allowed(op::DESCRIBE_CONFIGS, resource::TOPIC, &name) => {
                Err((ErrorCode::TopicAuthorizationFailed, String::new()))
            }
            RESOURCE_GROUP if !ctx.allowed(op::DESCRIBE_CONFIGS, resource::GROUP, &name) => {
                Err((ErrorCode::GroupAuthorizationFailed, String::new()))
            }
            RESOURCE_GROUP => Ok(crate::configs::group_entries(
                ctx.config(),
                ctx.metadata().image().group_configs(&name),
            )),
            t if t != RESOURCE_TOPIC && !ctx.cluster_allowed(op::DESCRIBE_CONFIGS) => {
                Err((ErrorCode::ClusterAuthorizationFailed, String::new()))
            }
            RESOURCE_TOPIC => match ctx.metadata().topic(&name) {
                Some(meta) => Ok(view.topic_entries(&meta.configs)),
                None => Err((
                    ErrorCode::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist."),
                )),
            },
            RESOURCE_BROKER => {
                if name.is_empty() {
                    Ok(view.default_entries())
                } else if name.parse::<i32>().ok() == Some(ctx.node_id()) {
                    Ok(view.broker_entries())
                } else {
                    Err((
                        ErrorCode::InvalidRequest,
                        format!(
                            "Unexpected broker id, expected {} but received {name}",
                            ctx.node_id()
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
                            .with_is_sensitive(e.sensitive);
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
