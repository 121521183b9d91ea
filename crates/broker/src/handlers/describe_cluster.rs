//! DescribeCluster (key 60), v0–v2: this node as the only broker and the controller.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use gregor_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Endpoint type "brokers" (v1+).
const ENDPOINT_BROKERS: i8 = 1;

/// Handles DescribeCluster.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeClusterRequest = ctx.decode(body)?;
    let adv = ctx.config().advertised_for(&ctx.listener.name);
    let mut resp = DescribeClusterResponse::default()
        .with_throttle_time_ms(0)
        .with_cluster_id(StrBytes::from_string(ctx.services.cluster_id.to_string()))
        .with_controller_id(BrokerId(ctx.node_id()))
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            super::metadata::CLUSTER_OPS
        } else {
            i32::MIN
        });
    if ctx.version >= 1 {
        resp.endpoint_type = req.endpoint_type;
        if req.endpoint_type != ENDPOINT_BROKERS {
            resp.error_code = ErrorCode::UnsupportedEndpointType.code();
            resp.error_message = Some(StrBytes::from_static_str(
                "Only broker endpoints can be described through a broker listener",
            ));
            return ctx.respond(&resp);
        }
    }
    resp.brokers = vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(ctx.node_id()))
        .with_host(StrBytes::from_string(adv.host.clone()))
        .with_port(adv.port as i32)
        .with_rack(ctx.config().rack.clone().map(StrBytes::from_string))];
    ctx.respond(&resp)
}
