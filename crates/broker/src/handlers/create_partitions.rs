//! CreatePartitions (key 37), v0–v3: grow a topic; `validate_only` honoured. One result per
//! requested topic.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use gregor_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 3);

/// Handles CreatePartitions.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: CreatePartitionsRequest = ctx.decode(body)?;
    let dups = super::duplicate_names(req.topics.iter().map(|t| t.name.0.as_str()));
    let mut results = Vec::new();
    for t in &req.topics {
        let name = t.name.0.as_str().to_string();
        let mut r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
        let outcome: Result<(), (ErrorCode, String)> =
            if !ctx.allowed(op::ALTER, resource::TOPIC, &name) {
                Err((
                    ErrorCode::TopicAuthorizationFailed,
                    "Authorization failed.".into(),
                ))
            } else if dups.contains(&name) {
                Err((
                    ErrorCode::InvalidRequest,
                    "Duplicate topic in request.".into(),
                ))
            } else {
                Ok(())
            };
        let outcome = match outcome {
            Err(e) => Err(e),
            Ok(()) => {
                // Manual assignments of the new partitions, validated by the controller.
                let assignments: Option<Vec<Vec<i32>>> = t.assignments.as_ref().map(|a| {
                    a.iter()
                        .map(|p| p.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                });
                let res = if req.validate_only {
                    ctx.controller().validate_create_partitions(
                        &name,
                        t.count,
                        assignments.as_deref(),
                    )
                } else {
                    ctx.controller()
                        .create_partitions(name.clone(), t.count, assignments)
                        .await
                };
                res.map_err(|e| (controller_code(&e), e.to_string()))
            }
        };
        match outcome {
            Ok(()) => r.error_code = 0,
            Err((code, msg)) => {
                r.error_code = code.code();
                r.error_message = Some(StrBytes::from_string(msg));
            }
        }
        results.push(r);
    }
    ctx.respond(
        &CreatePartitionsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(results),
    )
}
