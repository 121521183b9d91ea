//! FindCoordinator (key 10), v0–v6 (batched keys from v4). This node coordinates every group
//! and every transactional id: the first group lookup creates and loads `__consumer_offsets`,
//! the first transaction lookup (key type 1) `__transaction_state`.

use super::{Ctx, Response};
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

/// Handles FindCoordinator.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: FindCoordinatorRequest = ctx.decode(body)?;
    let broker = ctx.broker;
    let adv = broker.config.advertised_for(&ctx.listener.name);
    let (code, message): (ErrorCode, Option<String>) = match req.key_type {
        KEY_GROUP => match broker.groups.ensure_loaded(broker).await {
            Ok(()) => (ErrorCode::None, None),
            Err(e) => (ErrorCode::CoordinatorNotAvailable, Some(e.to_string())),
        },
        KEY_TRANSACTION => match broker.txns.ensure_loaded(broker).await {
            Ok(()) => (ErrorCode::None, None),
            Err(e) => (ErrorCode::CoordinatorNotAvailable, Some(e.to_string())),
        },
        other => (
            ErrorCode::InvalidRequest,
            Some(format!("unsupported key type {other}")),
        ),
    };
    let node = if code == ErrorCode::None {
        broker.node_id()
    } else {
        -1
    };
    let (host, port) = if code == ErrorCode::None {
        (adv.host.clone(), adv.port as i32)
    } else {
        (String::new(), -1)
    };
    let mut resp = FindCoordinatorResponse::default().with_throttle_time_ms(0);
    if ctx.version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(StrBytes::from_string(host.clone()))
                    .with_port(port)
                    .with_error_code(code.code())
                    .with_error_message(message.clone().map(StrBytes::from_string))
            })
            .collect();
    } else {
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
