//! OffsetFetch (key 9), v1–v9: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::now_ms;
use bytes::Bytes;
use gregor_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (1, 9);

/// Handles OffsetFetch.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: OffsetFetchRequest = ctx.decode(body)?;
    let version = ctx.version;
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| {
            g.read(ctx.broker, |c, topics| {
                c.offset_fetch(now_ms(), version, &req, topics)
            })
        },
    )
    .await
}

fn unavailable(req: &OffsetFetchRequest, code: ErrorCode) -> OffsetFetchResponse {
    use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
    let mut resp = OffsetFetchResponse::default();
    if req.groups.is_empty() {
        resp.error_code = code.code();
    } else {
        resp.groups = req
            .groups
            .iter()
            .map(|g| {
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(code.code())
            })
            .collect();
    }
    resp
}
