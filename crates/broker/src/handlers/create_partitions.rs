//! CreatePartitions (key 37), v0–v3: grow a topic; `validate_only` honoured. One result per
//! requested topic.

use super::{Ctx, Response};
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
        let outcome: Result<(), (ErrorCode, String)> = if dups.contains(&name) {
            Err((
                ErrorCode::InvalidRequest,
                "Duplicate topic in request.".into(),
            ))
        } else if let Some(assignments) = &t.assignments {
            let current = ctx
                .metadata()
                .topic(&name)
                .map(|m| m.partitions)
                .unwrap_or(0);
            let node = ctx.node_id();
            if assignments.len() as i32 != t.count - current {
                Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {} additional partition(s), but only {} assignment(s) were specified.",
                        t.count - current,
                        assignments.len()
                    ),
                ))
            } else if assignments
                .iter()
                .any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| b.0 != node))
            {
                Err((
                    ErrorCode::InvalidReplicaAssignment,
                    "The manual partition assignment includes a broker that is not registered."
                        .into(),
                ))
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        let outcome = match outcome {
            Err(e) => Err(e),
            Ok(()) => {
                let res = if req.validate_only {
                    ctx.controller().validate_create_partitions(&name, t.count)
                } else {
                    ctx.controller()
                        .create_partitions(name.clone(), t.count)
                        .await
                        .map(|_| ())
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
