//! FindCoordinator (key 10), v0–v6 (batched keys from v4). The coordinator of a group (of a
//! transactional id) is the leader of its `__consumer_offsets` (`__transaction_state`)
//! partition: the first group lookup creates `__consumer_offsets`, the first transaction lookup
//! (key type 1) `__transaction_state`. When this broker leads the key's partition the answer
//! comes once the key's shard is loaded here; when another broker leads it the answer is that
//! broker's endpoint on the request's listener (COORDINATOR_NOT_AVAILABLE while the partition
//! has no leader or its leader is fenced), as Kafka's brokers answer.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use gregor_protocol::messages::BrokerId;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 6);

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// Finds the coordinator of one key: (error, message, node, host, port).
async fn find(
    ctx: &Ctx<'_>,
    key_type: i8,
    key: &str,
) -> (ErrorCode, Option<String>, i32, String, i32) {
    let me = ctx.node_id();
    let denied = match key_type {
        KEY_GROUP => (!ctx.allowed(op::DESCRIBE, resource::GROUP, key))
            .then_some(ErrorCode::GroupAuthorizationFailed),
        KEY_TRANSACTION => (!ctx.allowed(op::DESCRIBE, resource::TRANSACTIONAL_ID, key))
            .then_some(ErrorCode::TransactionalIdAuthorizationFailed),
        _ => None,
    };
    if let Some(code) = denied {
        let message = match code {
            ErrorCode::GroupAuthorizationFailed => "Group authorization failed.",
            _ => "Transactional Id authorization failed.",
        };
        return (code, Some(message.to_string()), -1, String::new(), -1);
    }
    let found = match key_type {
        KEY_GROUP => ctx.groups().find_coordinator(key, me).await,
        KEY_TRANSACTION => ctx.txns().find_coordinator(key, me).await,
        other => {
            return (
                ErrorCode::InvalidRequest,
                Some(format!("unsupported key type {other}")),
                -1,
                String::new(),
                -1,
            )
        }
    };
    // Another broker leads the key's partition: its endpoint on this listener, while alive.
    let found = match found {
        Ok(Some(id)) => match ctx
            .metadata()
            .alive_brokers(&ctx.listener.name)
            .into_iter()
            .find(|b| b.node_id == id)
        {
            Some(b) => return (ErrorCode::None, None, id, b.host, i32::from(b.port)),
            None => Err(crate::coordinator_runtime::CoordinatorError::NotAvailable(
                format!("the coordinator {id} is not available"),
            )),
        },
        other => other,
    };
    match found {
        Ok(_) => {
            let adv = ctx.config().advertised_for(&ctx.listener.name);
            (ErrorCode::None, None, me, adv.host.clone(), adv.port as i32)
        }
        // FindCoordinator only ever answers COORDINATOR_NOT_AVAILABLE: the client retries.
        Err(e) => (
            ErrorCode::CoordinatorNotAvailable,
            Some(e.to_string()),
            -1,
            String::new(),
            -1,
        ),
    }
}

/// Handles FindCoordinator.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: FindCoordinatorRequest = ctx.decode(body)?;
    let mut resp = FindCoordinatorResponse::default().with_throttle_time_ms(0);
    if ctx.version >= 4 {
        for k in &req.coordinator_keys {
            let (code, message, node, host, port) = find(ctx, req.key_type, k.as_str()).await;
            resp.coordinators.push(
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(StrBytes::from_string(host))
                    .with_port(port)
                    .with_error_code(code.code())
                    .with_error_message(message.map(StrBytes::from_string)),
            );
        }
    } else {
        let (code, message, node, host, port) = find(ctx, req.key_type, req.key.as_str()).await;
        resp.error_code = code.code();
        if ctx.version >= 1 {
            resp.error_message = message.map(StrBytes::from_string);
        }
        resp.node_id = BrokerId(node);
        resp.host = StrBytes::from_string(host);
        resp.port = port;
    }
    ctx.respond(&resp)
}
