//! ListGroups (key 16), v0–v5: answered by the group coordinator.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::list_groups_response::ListGroupsResponse;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Handles ListGroups: every group shard this broker runs answers (Kafka lists the groups of
/// the coordinator's loaded partitions); COORDINATOR_LOAD_IN_PROGRESS while one is loading.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ListGroupsRequest = ctx.decode(body)?;
    let version = ctx.version;
    let mut resp = ListGroupsResponse::default();
    for p in ctx.groups().shards() {
        match ctx
            .groups()
            .read_shard(p, |c, _, _| c.list_groups(version, &req))
            .await
        {
            Ok(r) => {
                if r.error_code != 0 {
                    resp.error_code = r.error_code;
                }
                resp.groups.extend(r.groups);
            }
            Err(e) if e.code() == ErrorCode::CoordinatorLoadInProgress => {
                return ctx.respond(&unavailable(&req, e.code()));
            }
            Err(_) => {} // unloaded meanwhile: no longer ours to list
        }
    }
    // With an authorizer: every group with DESCRIBE on the cluster, else those the principal
    // may DESCRIBE, as Kafka.
    if !ctx.cluster_allowed(op::DESCRIBE) {
        resp.groups
            .retain(|g| ctx.allowed(op::DESCRIBE, resource::GROUP, g.group_id.as_str()));
    }
    ctx.respond(&resp)
}

fn unavailable(_req: &ListGroupsRequest, code: ErrorCode) -> ListGroupsResponse {
    ListGroupsResponse::default().with_error_code(code.code())
}
