//! ListTransactions (key 66), v0–v2: transactional ids with their producer id and state,
//! filtered by state names (unknown names come back in `unknown_state_filters`), producer ids,
//! (v1+) minimum running time of an ongoing transaction and (v2+) a transactional id regular
//! expression (INVALID_REGULAR_EXPRESSION if it does not compile).

use super::{Ctx, Response};
use crate::errors::HandlerError;
use crate::groups::now_ms;
use bytes::Bytes;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};
use gregor_protocol::messages::{ProducerId, TransactionalId};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use gregor_txn_coordinator::ListFilter;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Handles ListTransactions.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: ListTransactionsRequest = ctx.decode(body)?;
    let broker = ctx.broker;
    let mut resp = ListTransactionsResponse::default().with_throttle_time_ms(0);
    // Nothing transactional has happened yet: an empty list, without creating the log.
    if broker.topic_meta(crate::txns::TXN_TOPIC).is_none() {
        resp.unknown_state_filters = req
            .state_filters
            .iter()
            .filter(|s| gregor_txn_coordinator::TxnState::from_name(s.as_str()).is_none())
            .cloned()
            .collect();
        return ctx.respond(&resp);
    }
    if broker.txns.ensure_loaded(broker).await.is_err() {
        resp.error_code = ErrorCode::CoordinatorNotAvailable.code();
        return ctx.respond(&resp);
    }
    let filter = ListFilter {
        states: req.state_filters.iter().map(|s| s.to_string()).collect(),
        producer_ids: req.producer_id_filters.iter().map(|p| p.0).collect(),
        duration_ms: if ctx.version >= 1 {
            req.duration_filter
        } else {
            -1
        },
        pattern: if ctx.version >= 2 {
            req.transactional_id_pattern.as_ref().map(|p| p.to_string())
        } else {
            None
        },
    };
    let now = now_ms();
    match broker.txns.read(|c| c.list(&filter, now)) {
        Ok(r) => {
            resp.error_code = r.error.code();
            resp.unknown_state_filters = r
                .unknown_state_filters
                .into_iter()
                .map(StrBytes::from_string)
                .collect();
            resp.transaction_states = r
                .transactions
                .into_iter()
                .map(|(id, pid, state)| {
                    TransactionState::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                        .with_producer_id(ProducerId(pid))
                        .with_transaction_state(StrBytes::from_static_str(state))
                })
                .collect();
        }
        Err(_) => resp.error_code = ErrorCode::CoordinatorNotAvailable.code(),
    }
    ctx.respond(&resp)
}
