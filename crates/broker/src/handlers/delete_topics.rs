//! DeleteTopics (key 20), v1–v6 (v6 accepts topic ids). One result per requested topic, always.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use gregor_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use gregor_protocol::messages::TopicName;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use uuid::Uuid;

/// Served versions.
pub const VERSIONS: (i16, i16) = (1, 6);

/// Handles DeleteTopics.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DeleteTopicsRequest = ctx.decode(body)?;
    let targets: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        req.topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.as_str().to_string()),
                    t.topic_id,
                )
            })
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.as_str().to_string()), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::new();
    for (name, id) in targets {
        let mut r = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
            .with_topic_id(id);
        let resolved = match (&name, id.is_nil()) {
            (Some(n), _) => ctx
                .metadata()
                .topic(n)
                .ok_or(ErrorCode::UnknownTopicOrPartition),
            (None, false) => ctx
                .metadata()
                .topic_by_id(&id)
                .ok_or(ErrorCode::UnknownTopicId),
            (None, true) => Err(ErrorCode::InvalidRequest),
        };
        // Without DELETE on the topic (or DESCRIBE for an unknown one) the answer does not tell
        // whether it exists, as Kafka.
        let resolved = match resolved {
            Ok(meta) if !ctx.allowed(op::DELETE, resource::TOPIC, &meta.name) => {
                Err(ErrorCode::TopicAuthorizationFailed)
            }
            Err(code)
                if name
                    .as_deref()
                    .is_some_and(|n| !ctx.allowed(op::DESCRIBE, resource::TOPIC, n)) =>
            {
                let _ = code;
                Err(ErrorCode::TopicAuthorizationFailed)
            }
            other => other,
        };
        match resolved {
            Err(code) => {
                r.error_code = code.code();
                r.error_message =
                    (ctx.version >= 5).then_some(StrBytes::from_static_str(match code {
                        ErrorCode::UnknownTopicId => "This server does not host this topic ID.",
                        ErrorCode::InvalidRequest => "Neither topic name nor id were specified.",
                        ErrorCode::TopicAuthorizationFailed => "Authorization failed.",
                        _ => "This server does not host this topic-partition.",
                    }));
            }
            Ok(meta) => {
                r.name = Some(TopicName(StrBytes::from_string(meta.name.clone())));
                r.topic_id = meta.id;
                if !ctx.config().delete_topic_enable {
                    r.error_code = ErrorCode::TopicDeletionDisabled.code();
                } else if let Err(e) = ctx.controller().delete_topic(meta.id).await {
                    r.error_code = controller_code(&e).code();
                    r.error_message = Some(StrBytes::from_string(e.to_string()));
                }
                if ctx.version < 5 {
                    r.error_message = None;
                }
            }
        }
        if ctx.version < 6 {
            // Names only before v6.
            r.topic_id = Uuid::nil();
        }
        responses.push(r);
    }
    ctx.respond(
        &DeleteTopicsResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(responses),
    )
}
