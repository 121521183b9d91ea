//! OffsetDelete (key 47), v0–v0: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
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
    let version = ctx.version;
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| {
            g.with(ctx.broker, |c, topics| {
                c.offset_delete(now_ms(), version, req.clone(), topics)
            })
        },
    )
    .await
}

fn unavailable(_req: &OffsetDeleteRequest, code: ErrorCode) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(code.code())
}
