//! ListConfigResources (key 74), v0–v1 (KIP-1142; v0 was ListClientMetricsResources). v0 lists
//! client-metrics resources (none exist); v1 lists the resources of the requested types (all
//! types when the list is empty): every topic, this broker (BROKER and BROKER_LOGGER), the groups
//! with dynamic configs (GROUP), and no client-metrics resources (none can be created yet).

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::list_config_resources_request::ListConfigResourcesRequest;
use gregor_protocol::messages::list_config_resources_response::{
    ConfigResource, ListConfigResourcesResponse,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// Handles ListConfigResources.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ListConfigResourcesRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::DESCRIBE_CONFIGS) {
        return ctx.respond(
            &ListConfigResourcesResponse::default()
                .with_throttle_time_ms(0)
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code()),
        );
    }
    let types: Vec<i8> = if ctx.version == 0 {
        vec![CLIENT_METRICS]
    } else if req.resource_types.is_empty() {
        vec![TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    } else {
        req.resource_types.clone()
    };
    let mut resp = ListConfigResourcesResponse::default().with_throttle_time_ms(0);
    if let Some(bad) = types
        .iter()
        .find(|t| ![TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP].contains(t))
    {
        resp.error_code = ErrorCode::UnsupportedVersion.code();
        tracing::debug!(
            resource_type = bad,
            "ListConfigResources: unsupported resource type"
        );
        return ctx.respond(&resp);
    }
    let resource = |name: String, t: i8| {
        let mut r = ConfigResource::default().with_resource_name(StrBytes::from_string(name));
        if ctx.version >= 1 {
            r.resource_type = t;
        }
        r
    };
    let node = ctx.node_id().to_string();
    for t in types {
        match t {
            TOPIC => resp.config_resources.extend(
                ctx.metadata()
                    .all_topics()
                    .into_iter()
                    .map(|m| resource(m.name, TOPIC)),
            ),
            BROKER | BROKER_LOGGER => resp.config_resources.push(resource(node.clone(), t)),
            GROUP => resp.config_resources.extend(
                ctx.metadata()
                    .image()
                    .groups_with_configs()
                    .map(|g| resource(g.clone(), GROUP))
                    .collect::<Vec<_>>(),
            ),
            _ => {}
        }
    }
    ctx.respond(&resp)
}
