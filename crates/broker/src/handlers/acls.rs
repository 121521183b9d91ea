//! DescribeAcls / CreateAcls / DeleteAcls (keys 29, 30, 31), v1–v3. With
//! `authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer` the ACLs are
//! created and deleted through the metadata log (`Acl` / `RemoveAcl` records, validated as
//! Kafka's `AclControlManager`) and described from the image; Create/DeleteAcls need ALTER on
//! the cluster, DescribeAcls DESCRIBE (else CLUSTER_AUTHORIZATION_FAILED). Without an
//! authorizer they answer exactly as Apache Kafka: SECURITY_DISABLED, "No Authorizer is
//! configured on the broker" (DescribeAcls) / "No Authorizer is configured." (the others).

use super::{Ctx, Response};
use crate::authorizer::{self, filter_matches, op, pattern, permission, resource};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_controller::state::AclEntry;
use gregor_controller::MetadataRecord;
use gregor_protocol::messages::create_acls_request::{AclCreation, CreateAclsRequest};
use gregor_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use gregor_protocol::messages::delete_acls_request::DeleteAclsRequest;
use gregor_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl, DeleteAclsResponse,
};
use gregor_protocol::messages::describe_acls_request::DescribeAclsRequest;
use gregor_protocol::messages::describe_acls_response::{
    AclDescription, DescribeAclsResource, DescribeAclsResponse,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;

/// Served versions (all three APIs).
pub const VERSIONS: (i16, i16) = (1, 3);

const NO_AUTHORIZER: &str = "No Authorizer is configured.";
const NO_AUTHORIZER_DESCRIBE: &str = "No Authorizer is configured on the broker";

fn disabled() -> (i16, Option<StrBytes>) {
    (
        ErrorCode::SecurityDisabled.code(),
        Some(StrBytes::from_static_str(NO_AUTHORIZER)),
    )
}

fn enabled(ctx: &Ctx<'_>) -> bool {
    ctx.config().authorizer.enabled()
}

fn text(s: Option<&StrBytes>) -> Option<&str> {
    s.map(|s| s.as_str())
}

/// Kafka's `AclControlManager.validateNewAcl`.
fn validate(c: &AclCreation) -> Result<(), String> {
    if !matches!(
        c.resource_type,
        resource::TOPIC
            | resource::GROUP
            | resource::CLUSTER
            | resource::TRANSACTIONAL_ID
            | resource::DELEGATION_TOKEN
            | resource::USER
    ) {
        return Err(format!("Invalid resourceType {}", c.resource_type));
    }
    if !matches!(
        c.resource_pattern_type,
        pattern::LITERAL | pattern::PREFIXED
    ) {
        return Err(format!("Invalid patternType {}", c.resource_pattern_type));
    }
    if c.operation <= op::ANY || c.operation > op::TWO_PHASE_COMMIT {
        return Err(format!("Invalid operation {}", c.operation));
    }
    if !matches!(c.permission_type, permission::ALLOW | permission::DENY) {
        return Err(format!("Invalid permissionType {}", c.permission_type));
    }
    if c.resource_name.is_empty() {
        return Err("Invalid empty resource name".into());
    }
    if c.resource_type == resource::CLUSTER && c.resource_name.as_str() != authorizer::CLUSTER_NAME
    {
        return Err("The only valid name for the CLUSTER resource is kafka-cluster".into());
    }
    let principal = c.principal.as_str();
    match principal.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
        _ => {
            return Err(format!(
                "Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)"
            ))
        }
    }
    if c.host.is_empty() {
        return Err("Invalid host".into());
    }
    Ok(())
}

/// Handles DescribeAcls.
pub async fn describe(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeAclsRequest = ctx.decode(body)?;
    if !enabled(ctx) {
        return ctx.respond(
            &DescribeAclsResponse::default()
                .with_error_code(ErrorCode::SecurityDisabled.code())
                .with_error_message(Some(StrBytes::from_static_str(NO_AUTHORIZER_DESCRIBE))),
        );
    }
    if !ctx.cluster_allowed(op::DESCRIBE) {
        return ctx.respond(
            &DescribeAclsResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code()),
        );
    }
    let image = ctx.metadata().image();
    let mut groups: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for (_, a) in image.acls() {
        if filter_matches(
            a,
            req.resource_type_filter,
            text(req.resource_name_filter.as_ref()),
            req.pattern_type_filter,
            text(req.principal_filter.as_ref()),
            text(req.host_filter.as_ref()),
            req.operation,
            req.permission_type,
        ) {
            groups
                .entry((a.resource_type, a.resource_name.clone(), a.pattern_type))
                .or_default()
                .push(
                    AclDescription::default()
                        .with_principal(StrBytes::from_string(a.principal.clone()))
                        .with_host(StrBytes::from_string(a.host.clone()))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission),
                );
        }
    }
    let resources = groups
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    ctx.respond(&DescribeAclsResponse::default().with_resources(resources))
}

/// Handles CreateAcls.
pub async fn create(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: CreateAclsRequest = ctx.decode(body)?;
    let fail_all = |code: i16, msg: Option<StrBytes>| {
        req.creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(code)
                    .with_error_message(msg.clone())
            })
            .collect::<Vec<_>>()
    };
    if !enabled(ctx) {
        let (code, msg) = disabled();
        return ctx.respond(&CreateAclsResponse::default().with_results(fail_all(code, msg)));
    }
    if !ctx.cluster_allowed(op::ALTER) {
        let results = fail_all(ErrorCode::ClusterAuthorizationFailed.code(), None);
        return ctx.respond(&CreateAclsResponse::default().with_results(results));
    }
    let image = ctx.metadata().image();
    let mut records = Vec::new();
    let mut outcome: Vec<Result<(), String>> = Vec::new();
    for c in &req.creations {
        let r = validate(c);
        if r.is_ok() {
            let entry = AclEntry {
                resource_type: c.resource_type,
                resource_name: c.resource_name.to_string(),
                pattern_type: c.resource_pattern_type,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: c.operation,
                permission: c.permission_type,
            };
            let exists = image.acls().any(|(_, a)| *a == entry)
                || records.iter().any(|r| matches!(r, MetadataRecord::Acl { resource_type, resource_name, pattern_type, principal, host, operation, permission, .. }
                    if *resource_type == entry.resource_type && *resource_name == entry.resource_name && *pattern_type == entry.pattern_type
                    && *principal == entry.principal && *host == entry.host && *operation == entry.operation && *permission == entry.permission));
            if !exists {
                records.push(MetadataRecord::Acl {
                    id: uuid::Uuid::new_v4(),
                    resource_type: entry.resource_type,
                    resource_name: entry.resource_name,
                    pattern_type: entry.pattern_type,
                    principal: entry.principal,
                    host: entry.host,
                    operation: entry.operation,
                    permission: entry.permission,
                });
            }
        }
        outcome.push(r);
    }
    let committed = if records.is_empty() {
        Ok(())
    } else {
        ctx.controller()
            .commit(records)
            .await
            .map_err(|e| (controller_code(&e), e.to_string()))
    };
    let results = outcome
        .into_iter()
        .map(|r| match (r, &committed) {
            (Err(msg), _) => AclCreationResult::default()
                .with_error_code(ErrorCode::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(msg))),
            (Ok(()), Err((code, msg))) => AclCreationResult::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg.clone()))),
            (Ok(()), Ok(())) => AclCreationResult::default(),
        })
        .collect();
    ctx.respond(&CreateAclsResponse::default().with_results(results))
}

/// Handles DeleteAcls.
pub async fn delete(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DeleteAclsRequest = ctx.decode(body)?;
    let fail_all = |code: i16, msg: Option<StrBytes>| {
        req.filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(msg.clone())
            })
            .collect::<Vec<_>>()
    };
    if !enabled(ctx) {
        let (code, msg) = disabled();
        return ctx
            .respond(&DeleteAclsResponse::default().with_filter_results(fail_all(code, msg)));
    }
    if !ctx.cluster_allowed(op::ALTER) {
        let results = fail_all(ErrorCode::ClusterAuthorizationFailed.code(), None);
        return ctx.respond(&DeleteAclsResponse::default().with_filter_results(results));
    }
    let image = ctx.metadata().image();
    let mut removed = std::collections::BTreeSet::new();
    let mut per_filter = Vec::new();
    for f in &req.filters {
        let mut matching = Vec::new();
        for (id, a) in image.acls() {
            if filter_matches(
                a,
                f.resource_type_filter,
                text(f.resource_name_filter.as_ref()),
                f.pattern_type_filter,
                text(f.principal_filter.as_ref()),
                text(f.host_filter.as_ref()),
                f.operation,
                f.permission_type,
            ) {
                removed.insert(*id);
                matching.push(
                    DeleteAclsMatchingAcl::default()
                        .with_resource_type(a.resource_type)
                        .with_resource_name(StrBytes::from_string(a.resource_name.clone()))
                        .with_pattern_type(a.pattern_type)
                        .with_principal(StrBytes::from_string(a.principal.clone()))
                        .with_host(StrBytes::from_string(a.host.clone()))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission),
                );
            }
        }
        per_filter.push(matching);
    }
    let records: Vec<MetadataRecord> = removed
        .into_iter()
        .map(|id| MetadataRecord::RemoveAcl { id })
        .collect();
    let committed = if records.is_empty() {
        Ok(())
    } else {
        ctx.controller()
            .commit(records)
            .await
            .map_err(|e| (controller_code(&e), e.to_string()))
    };
    let results = per_filter
        .into_iter()
        .map(|matching| match &committed {
            Ok(()) => DeleteAclsFilterResult::default().with_matching_acls(matching),
            Err((code, msg)) => DeleteAclsFilterResult::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg.clone()))),
        })
        .collect();
    ctx.respond(&DeleteAclsResponse::default().with_filter_results(results))
}
