//! DescribeCluster (key 60), v0–v2: this node as the only broker and the controller.

use super::{Ctx, Plane, Response};
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

/// Endpoint type "controllers" (v1+, KIP-919: `--bootstrap-controller`).
const ENDPOINT_CONTROLLERS: i8 = 2;

/// Handles DescribeCluster.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeClusterRequest = ctx.decode(body)?;
    let mut resp = DescribeClusterResponse::default()
        .with_throttle_time_ms(0)
        .with_cluster_id(StrBytes::from_string(ctx.services.cluster_id()))
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            super::metadata::CLUSTER_OPS
        } else {
            i32::MIN
        });
    let wanted = if ctx.version >= 1 {
        req.endpoint_type
    } else {
        ENDPOINT_BROKERS
    };
    if ctx.version >= 1 {
        resp.endpoint_type = wanted;
    }
    let served = match ctx.plane {
        Plane::Client => ENDPOINT_BROKERS,
        Plane::Controller => ENDPOINT_CONTROLLERS,
    };
    if wanted != served {
        resp.error_code = ErrorCode::UnsupportedEndpointType.code();
        resp.error_message = Some(StrBytes::from_static_str(match ctx.plane {
            Plane::Client => "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            Plane::Controller => "The request was sent to an endpoint of type CONTROLLER, but we wanted an endpoint of type BROKER",
        }));
        return ctx.respond(&resp);
    }
    match ctx.plane {
        Plane::Client => {
            resp.controller_id = BrokerId(ctx.metadata().controller_id_for_clients());
            resp.brokers = ctx
                .metadata()
                .alive_brokers(&ctx.listener.name)
                .into_iter()
                .map(|b| {
                    DescribeClusterBroker::default()
                        .with_broker_id(BrokerId(b.node_id))
                        .with_host(StrBytes::from_string(b.host))
                        .with_port(i32::from(b.port))
                        .with_rack(b.rack.map(StrBytes::from_string))
                })
                .collect();
        }
        Plane::Controller => {
            // KIP-919: the controllers are the voters, at their controller listeners.
            let local = ctx.controller().local();
            resp.controller_id = BrokerId(local.and_then(|l| l.leader()).map_or(-1, |(id, _)| id));
            resp.brokers = ctx
                .config()
                .cluster
                .voters
                .iter()
                .filter_map(|(id, addr)| {
                    let (host, port) = addr.rsplit_once(':')?;
                    Some(
                        DescribeClusterBroker::default()
                            .with_broker_id(BrokerId(*id))
                            .with_host(StrBytes::from_string(host.to_string()))
                            .with_port(port.parse().unwrap_or(0)),
                    )
                })
                .collect();
        }
    }
    ctx.respond(&resp)
}
