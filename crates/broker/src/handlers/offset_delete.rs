//! OffsetDelete (key 47), v0–v0: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
#[allow(unused_imports)]
use crate::groups::now_ms;
use bytes::Bytes;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_delete_response::OffsetDeleteResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Handles OffsetDelete.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: OffsetDeleteRequest = ctx.decode(body)?;
    let groups = &ctx.broker.groups;
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable(&req, ErrorCode::CoordinatorNotAvailable));
    }
    let version = ctx.version;
    let result = groups.with(ctx.broker, |c, topics| {
        c.offset_delete(now_ms(), version, req.clone(), topics)
    });
    match result {
        Ok(resp) => ctx.respond(&resp),
        Err(_) => ctx.respond(&unavailable(&req, ErrorCode::CoordinatorNotAvailable)),
    }
}

fn unavailable(_req: &OffsetDeleteRequest, code: ErrorCode) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(code.code())
}
