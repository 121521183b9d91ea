//! DescribeGroups (key 15), v0–v6: answered by the group coordinator.

use super::{Ctx, Response};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use gregor_protocol::messages::describe_groups_response::DescribeGroupsResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 6);

/// Handles DescribeGroups.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeGroupsRequest = ctx.decode(body)?;
    let version = ctx.version;
    super::group_call(
        ctx,
        || unavailable(&req, ErrorCode::CoordinatorNotAvailable),
        |g| {
            g.read(ctx.broker, |c, _| c.describe_groups(version, &req))
                .map(|mut resp| {
                    if version >= 3 && req.include_authorized_operations {
                        // No authorizer: READ, DELETE and DESCRIBE on groups are allowed.
                        for g in &mut resp.groups {
                            if g.error_code == 0 {
                                g.authorized_operations = (1 << 3) | (1 << 6) | (1 << 8);
                            }
                        }
                    }
                    resp
                })
        },
    )
    .await
}

fn unavailable(req: &DescribeGroupsRequest, code: ErrorCode) -> DescribeGroupsResponse {
    use gregor_protocol::messages::describe_groups_response::DescribedGroup;
    DescribeGroupsResponse::default().with_groups(
        req.groups
            .iter()
            .map(|g| {
                DescribedGroup::default()
                    .with_group_id(g.clone())
                    .with_error_code(code.code())
            })
            .collect(),
    )
}
