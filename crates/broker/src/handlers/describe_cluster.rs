//! DescribeCluster (key 60), v0–v2. On a client listener: the alive brokers at that listener
//! (v2 with `include_fenced_brokers`: the fenced ones too, flagged) and a live broker as the
//! controller id, as Kafka's KRaft brokers answer. On the controller listener (KIP-919,
//! `--bootstrap-controller`): the voters at their controller endpoints and the active one.

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
            // v2 (KIP-1073, `kafka-cluster.sh list-endpoints --include-fenced-brokers`): the
            // fenced brokers too, flagged.
            let with_fenced = ctx.version >= 2 && req.include_fenced_brokers;
            resp.brokers = ctx
                .metadata()
                .brokers()
                .into_iter()
                .filter(|b| with_fenced || !b.fenced)
                .filter_map(|b| {
                    let e = crate::metadata_cache::BrokerEndpoint::of(&b, &ctx.listener.name)?;
                    Some(
                        DescribeClusterBroker::default()
                            .with_broker_id(BrokerId(e.node_id))
                            .with_host(StrBytes::from_string(e.host))
                            .with_port(i32::from(e.port))
                            .with_rack(e.rack.map(StrBytes::from_string))
                            .with_is_fenced(b.fenced),
                    )
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
