//! ListTransactions (key 66), v0–v2: transactional ids with their producer id and state,
//! filtered by state names (unknown names come back in `unknown_state_filters`), producer ids,
//! (v1+) minimum running time of an ongoing transaction and (v2+) a transactional id regular
//! expression (INVALID_REGULAR_EXPRESSION if it does not compile). With an authorizer only the
//! transactional ids the principal may DESCRIBE are listed, as in Kafka.

use super::{Ctx, Response};
use crate::errors::HandlerError;
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
    let mut resp = ListTransactionsResponse::default().with_throttle_time_ms(0);
    // Nothing transactional has happened yet: an empty list, without creating the log.
    if ctx
        .metadata()
        .topic(crate::txn_service::TXN_TOPIC)
        .is_none()
    {
        resp.unknown_state_filters = req
            .state_filters
            .iter()
            .filter(|s| gregor_txn_coordinator::TxnState::from_name(s.as_str()).is_none())
            .cloned()
            .collect();
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
    // Every shard this broker runs answers (Kafka lists the coordinator's loaded partitions).
    let mut unknown = None;
    for p in ctx.txns().shards() {
        match ctx
            .txns()
            .read_shard(p, |c, now| c.list(&filter, now))
            .await
        {
            Ok(r) => {
                if r.error != ErrorCode::None {
                    resp.error_code = r.error.code();
                }
                unknown.get_or_insert(r.unknown_state_filters);
                resp.transaction_states
                    .extend(r.transactions.into_iter().map(|(id, pid, state)| {
                        TransactionState::default()
                            .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                            .with_producer_id(ProducerId(pid))
                            .with_transaction_state(StrBytes::from_static_str(state))
                    }));
            }
            Err(e) if e.code() == ErrorCode::CoordinatorLoadInProgress => {
                resp.error_code = e.code().code();
            }
            Err(_) => {} // unloaded meanwhile: no longer ours to list
        }
    }
    resp.transaction_states.retain(|s| {
        ctx.allowed(
            crate::authorizer::op::DESCRIBE,
            crate::authorizer::resource::TRANSACTIONAL_ID,
            s.transactional_id.as_str(),
        )
    });
    resp.transaction_states
        .sort_by(|a, b| a.transactional_id.as_str().cmp(b.transactional_id.as_str()));
    resp.unknown_state_filters = unknown
        .unwrap_or_else(|| {
            req.state_filters
                .iter()
                .filter(|s| gregor_txn_coordinator::TxnState::from_name(s.as_str()).is_none())
                .map(|s| s.to_string())
                .collect()
        })
        .into_iter()
        .map(StrBytes::from_string)
        .collect();
    ctx.respond(&resp)
}
