//! AlterUserScramCredentials (key 51), v0: create, replace and delete SCRAM credentials, as
//! Kafka's `ScramControlManager`. The client sends the salt and the salted password; the
//! controller derives StoredKey and ServerKey and stores them in the metadata log
//! (`UserScramCredentialRecord` / `RemoveUserScramCredentialRecord`), never the salted password.
//! Every valid alteration of the request is committed at once; each user gets one result.

use super::{Ctx, Response};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_auth::scram::{ScramCredential, ScramMechanism};
use gregor_controller::MetadataRecord;
use gregor_protocol::messages::alter_user_scram_credentials_request::AlterUserScramCredentialsRequest;
use gregor_protocol::messages::alter_user_scram_credentials_response::{
    AlterUserScramCredentialsResponse, AlterUserScramCredentialsResult,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::collections::{BTreeMap, HashMap};

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

type Failure = (ErrorCode, String);

fn mechanism(type_byte: i8) -> Result<ScramMechanism, Failure> {
    ScramMechanism::ALL
        .into_iter()
        .find(|m| m.type_byte() == type_byte)
        .ok_or((
            ErrorCode::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".into(),
        ))
}

fn check_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() {
        return Err((
            ErrorCode::UnacceptableCredential,
            "Username must not be empty".into(),
        ));
    }
    Ok(())
}

/// Handles AlterUserScramCredentials.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: AlterUserScramCredentialsRequest = ctx.decode(body)?;
    if !ctx.cluster_allowed(crate::authorizer::op::ALTER) {
        // Kafka's controller: every user named (once, sorted) fails.
        let code = ErrorCode::ClusterAuthorizationFailed;
        let users: std::collections::BTreeSet<&str> = req
            .deletions
            .iter()
            .map(|d| d.name.as_str())
            .chain(req.upsertions.iter().map(|u| u.name.as_str()))
            .collect();
        let results = users
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(u.to_string()))
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_static_str(code.message())))
            })
            .collect();
        return ctx.respond(
            &AlterUserScramCredentialsResponse::default()
                .with_throttle_time_ms(0)
                .with_results(results),
        );
    }
    let image = ctx.metadata().image();
    // Users in request order, each with its records or its error.
    let mut order: Vec<String> = Vec::new();
    let mut outcome: HashMap<String, Result<Vec<MetadataRecord>, Failure>> = HashMap::new();
    // Kafka allows one alteration per user and request: a second one (even for the other
    // mechanism) fails the user with DUPLICATE_RESOURCE.
    let mut seen: HashMap<String, ()> = HashMap::new();
    let mut add = |name: &str, r: Result<MetadataRecord, Failure>| {
        if !outcome.contains_key(name) {
            order.push(name.to_string());
            outcome.insert(name.to_string(), Ok(Vec::new()));
        }
        let r = if seen.insert(name.to_string(), ()).is_some() {
            Err((
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else {
            r
        };
        let entry = outcome.get_mut(name).expect("inserted above");
        match (entry.as_mut(), r) {
            (Ok(records), Ok(rec)) => records.push(rec),
            // A duplicate overrides an earlier validation error, as Kafka reports it.
            (_, Err(e)) if e.0 == ErrorCode::DuplicateResource => *entry = Err(e),
            (Ok(_), Err(e)) => *entry = Err(e),
            (Err(_), _) => {}
        }
    };
    for d in &req.deletions {
        let name = d.name.as_str();
        let r = check_name(name)
            .and_then(|()| mechanism(d.mechanism))
            .and_then(|m| {
                if image.scram_credential(name, m.type_byte()).is_none() {
                    return Err((
                        ErrorCode::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist".into(),
                    ));
                }
                Ok(MetadataRecord::RemoveUserScramCredential {
                    name: name.to_string(),
                    mechanism: m.type_byte(),
                })
            });
        add(name, r);
    }
    for u in &req.upsertions {
        let name = u.name.as_str();
        let r = check_name(name)
            .and_then(|()| mechanism(u.mechanism))
            .and_then(|m| {
                if u.iterations < m.min_iterations() {
                    return Err((
                        ErrorCode::UnacceptableCredential,
                        "Too few iterations".into(),
                    ));
                }
                if u.iterations > m.max_iterations() {
                    return Err((
                        ErrorCode::UnacceptableCredential,
                        "Too many iterations".into(),
                    ));
                }
                let c = ScramCredential::from_salted_password(
                    m,
                    &u.salt,
                    &u.salted_password,
                    u.iterations,
                );
                Ok(MetadataRecord::UserScramCredential {
                    name: name.to_string(),
                    mechanism: m.type_byte(),
                    salt: c.salt,
                    stored_key: c.stored_key,
                    server_key: c.server_key,
                    iterations: c.iterations,
                })
            });
        add(name, r);
    }
    let records: Vec<MetadataRecord> = order
        .iter()
        .filter_map(|n| outcome.get(n).and_then(|r| r.as_ref().ok()))
        .flatten()
        .cloned()
        .collect();
    let committed: Result<(), Failure> = if records.is_empty() {
        Ok(())
    } else {
        ctx.controller()
            .commit(records)
            .await
            .map_err(|e| (controller_code(&e), e.to_string()))
    };
    let mut results = BTreeMap::new();
    for name in &order {
        let r = match (&outcome[name], &committed) {
            (Err(e), _) | (Ok(_), Err(e)) => Err(e.clone()),
            (Ok(_), Ok(())) => Ok(()),
        };
        results.insert(name.clone(), r);
    }
    let results = order
        .iter()
        .map(|name| {
            let mut r = AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(name.clone()));
            if let Some(Err((code, msg))) = results.get(name) {
                r.error_code = code.code();
                r.error_message = Some(StrBytes::from_string(msg.clone()));
            }
            r
        })
        .collect();
    ctx.respond(
        &AlterUserScramCredentialsResponse::default()
            .with_throttle_time_ms(0)
            .with_results(results),
    )
}
