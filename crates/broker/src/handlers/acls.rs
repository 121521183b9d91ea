//! DescribeAcls / CreateAcls / DeleteAcls (keys 29, 30, 31), v1–v3. Gregor has no authorizer
//! yet, and answers exactly as Apache Kafka does without `authorizer.class.name`:
//! SECURITY_DISABLED, "No Authorizer is configured.", for every filter and creation.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::create_acls_request::CreateAclsRequest;
use gregor_protocol::messages::create_acls_response::{AclCreationResult, CreateAclsResponse};
use gregor_protocol::messages::delete_acls_request::DeleteAclsRequest;
use gregor_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsResponse};
use gregor_protocol::messages::describe_acls_request::DescribeAclsRequest;
use gregor_protocol::messages::describe_acls_response::DescribeAclsResponse;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions (all three APIs).
pub const VERSIONS: (i16, i16) = (1, 3);

const NO_AUTHORIZER: &str = "No Authorizer is configured.";

fn disabled() -> (i16, Option<StrBytes>) {
    (
        ErrorCode::SecurityDisabled.code(),
        Some(StrBytes::from_static_str(NO_AUTHORIZER)),
    )
}

/// Handles DescribeAcls.
pub async fn describe(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let _req: DescribeAclsRequest = ctx.decode(body)?;
    let (code, msg) = disabled();
    ctx.respond(
        &DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(msg),
    )
}

/// Handles CreateAcls.
pub async fn create(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: CreateAclsRequest = ctx.decode(body)?;
    let (code, msg) = disabled();
    let results = req
        .creations
        .iter()
        .map(|_| {
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(msg.clone())
        })
        .collect();
    ctx.respond(&CreateAclsResponse::default().with_results(results))
}

/// Handles DeleteAcls.
pub async fn delete(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DeleteAclsRequest = ctx.decode(body)?;
    let (code, msg) = disabled();
    let results = req
        .filters
        .iter()
        .map(|_| {
            DeleteAclsFilterResult::default()
                .with_error_code(code)
                .with_error_message(msg.clone())
        })
        .collect();
    ctx.respond(&DeleteAclsResponse::default().with_filter_results(results))
}
