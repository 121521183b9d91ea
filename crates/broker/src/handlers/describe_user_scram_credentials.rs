//! DescribeUserScramCredentials (key 50), v0: the mechanisms and iteration counts of users'
//! SCRAM credentials (never salts or keys), from the metadata image, with Kafka's `ScramImage`
//! errors: RESOURCE_NOT_FOUND for a named user without credentials, DUPLICATE_RESOURCE for a
//! user named twice; no (or an empty) user list describes every user that has credentials.
//! `kafka-configs.sh --describe --entity-type users` needs this API next to
//! DescribeClientQuotas.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_user_scram_credentials_request::DescribeUserScramCredentialsRequest;
use gregor_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResponse, DescribeUserScramCredentialsResult,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Handles DescribeUserScramCredentials.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeUserScramCredentialsRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::DESCRIBE) {
        // Kafka: the error at the top and on every named user.
        let code = ErrorCode::ClusterAuthorizationFailed;
        let message = || Some(StrBytes::from_static_str(code.message()));
        let results = req
            .users
            .iter()
            .flatten()
            .map(|u| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(u.name.clone())
                    .with_error_code(code.code())
                    .with_error_message(message())
            })
            .collect();
        return ctx.respond(
            &DescribeUserScramCredentialsResponse::default()
                .with_throttle_time_ms(0)
                .with_error_code(code.code())
                .with_error_message(message())
                .with_results(results),
        );
    }
    let image = ctx.metadata().image();
    let mut by_user: BTreeMap<&str, Vec<CredentialInfo>> = BTreeMap::new();
    for ((user, mechanism), c) in image.scram_credentials() {
        by_user.entry(user.as_str()).or_default().push(
            CredentialInfo::default()
                .with_mechanism(*mechanism)
                .with_iterations(c.iterations),
        );
    }
    let named = req.users.as_deref().unwrap_or_default();
    let results = if named.is_empty() {
        by_user
            .into_iter()
            .map(|(user, infos)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user.to_string()))
                    .with_credential_infos(infos)
            })
            .collect()
    } else {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for u in named {
            *count.entry(u.name.as_str()).or_default() += 1;
        }
        named
            .iter()
            .map(|u| {
                let name = u.name.as_str();
                let r = DescribeUserScramCredentialsResult::default().with_user(u.name.clone());
                if count[name] > 1 {
                    return r
                        .with_error_code(ErrorCode::DuplicateResource.code())
                        .with_error_message(Some(StrBytes::from_string(format!("Cannot describe SCRAM credentials for the same user twice in a single request: {name}"))));
                }
                match by_user.get(name) {
                    Some(infos) => r.with_credential_infos(infos.clone()),
                    None => r
                        .with_error_code(ErrorCode::ResourceNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Attempt to describe a user credential that does not exist: {name}"
                        )))),
                }
            })
            .collect()
    };
    ctx.respond(
        &DescribeUserScramCredentialsResponse::default()
            .with_throttle_time_ms(0)
            .with_error_code(0)
            .with_results(results),
    )
}
