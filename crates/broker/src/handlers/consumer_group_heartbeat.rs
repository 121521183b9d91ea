//! ConsumerGroupHeartbeat (key 68), v0–v1: answered by the group coordinator, after Kafka's
//! checks: READ on the group, DESCRIBE on every subscribed topic name.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Handles ConsumerGroupHeartbeat.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ConsumerGroupHeartbeatRequest = ctx.decode(body)?;
    let version = ctx.version;
    let client = gregor_group_coordinator::ClientInfo {
        client_id: ctx.client_id().to_string(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    if !ctx.allowed(op::READ, resource::GROUP, req.group_id.as_str()) {
        return ctx.respond(&unavailable(&req, ErrorCode::GroupAuthorizationFailed));
    }
    // Kafka: a subscription naming a topic the member may not DESCRIBE fails the heartbeat
    // (TOPIC_AUTHORIZATION_FAILED, no message) before it reaches the coordinator.
    if req.subscribed_topic_names.as_ref().is_some_and(|names| {
        names
            .iter()
            .any(|t| !ctx.allowed(op::DESCRIBE, resource::TOPIC, t.as_str()))
    }) {
        return ctx.respond(&unavailable(&req, ErrorCode::TopicAuthorizationFailed));
    }
    let result = ctx
        .groups()
        .write(req.group_id.as_str(), |c, topics, now| {
            c.consumer_group_heartbeat(now, version, &client, req.clone(), topics)
        })
        .await;
    super::coordinator_answer(ctx, result, |code| unavailable(&req, code))
}

fn unavailable(
    _req: &ConsumerGroupHeartbeatRequest,
    code: ErrorCode,
) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default().with_error_code(code.code())
}
