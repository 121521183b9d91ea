//! ApiVersions (key 18), v0–v4. KIP-511: the response header is always v0; a request for a
//! version we do not know gets a v0 body with UNSUPPORTED_VERSION and the full key list, so the
//! client can pick a version and retry.

use super::{Ctx, Response, SUPPORTED};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use gregor_protocol::messages::ApiKey;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 4);

fn api_keys() -> Vec<ApiVersion> {
    let mut keys: Vec<ApiVersion> = SUPPORTED
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect();
    keys.sort_by_key(|k| k.api_key);
    keys
}

/// Handles ApiVersions.
pub fn handle(ctx: &Ctx<'_>, mut body: Bytes) -> Result<Response, HandlerError> {
    if ctx.version < VERSIONS.0 || ctx.version > VERSIONS.1 {
        let resp = ApiVersionsResponse::default()
            .with_error_code(ErrorCode::UnsupportedVersion.code())
            .with_api_keys(api_keys());
        let frame = gregor_protocol::response::encode_response(
            ApiKey::ApiVersions,
            0,
            ctx.header.correlation_id,
            &resp,
        )?;
        return Ok(Response::Frame(frame));
    }
    let _req: ApiVersionsRequest = ctx.decode(&mut body)?;
    let resp = ApiVersionsResponse::default()
        .with_error_code(0)
        .with_api_keys(api_keys())
        .with_throttle_time_ms(0)
        .with_finalized_features_epoch(-1);
    ctx.respond(&resp)
}
