//! OffsetDelete (key 47), v0–v0: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
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
    let result = ctx
        .groups()
        .write(req.group_id.as_str(), |c, topics, now| {
            c.offset_delete(now, version, req.clone(), topics)
        })
        .await;
    super::coordinator_answer(ctx, result, |code| unavailable(&req, code))
}

fn unavailable(_req: &OffsetDeleteRequest, code: ErrorCode) -> OffsetDeleteResponse {
    OffsetDeleteResponse::default().with_error_code(code.code())
}
