//! DescribeUserScramCredentials (key 50), v0. Gregor has no SASL/SCRAM yet, so no user has
//! credentials: every named user answers RESOURCE_NOT_FOUND (as Kafka does for a user without
//! credentials) and "all users" answers an empty list. `kafka-configs.sh --describe
//! --entity-type users` needs this API next to DescribeClientQuotas.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use gregor_protocol::messages::describe_user_scram_credentials_response::{
    DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Handles DescribeUserScramCredentials.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeUserScramCredentialsRequest = ctx.decode(body)?;
    let mut seen = std::collections::HashSet::new();
    let results = req
        .users
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|u| {
            let name = u.name.as_str().to_string();
            let (code, msg) = if seen.insert(name.clone()) {
                (
                    ErrorCode::ResourceNotFound,
                    format!("Attempt to describe a user credential that does not exist: {name}"),
                )
            } else {
                (ErrorCode::DuplicateResource, format!("Cannot describe SCRAM credentials for the same user twice in a single request: {name}"))
            };
            DescribeUserScramCredentialsResult::default()
                .with_user(u.name.clone())
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg)))
        })
        .collect();
    ctx.respond(
        &DescribeUserScramCredentialsResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(0)
            .with_results(results),
    )
}
