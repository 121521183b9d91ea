//! DescribeTransactions (key 65), v0: state, timeout, start time, producer id/epoch and
//! partitions of each transactional id (TRANSACTIONAL_ID_NOT_FOUND if unknown). With an
//! authorizer, as Kafka: DESCRIBE on the transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and only the topics the principal may DESCRIBE.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use gregor_protocol::messages::{ProducerId, TopicName};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Handles DescribeTransactions.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: DescribeTransactionsRequest = ctx.decode(body)?;
    let mut resp = DescribeTransactionsResponse::default().with_throttle_time_ms(0);
    for id in &req.transactional_ids {
        let mut state = TransactionState::default()
            .with_transactional_id(id.clone())
            .with_transaction_state(StrBytes::from_static_str(""))
            .with_transaction_timeout_ms(0)
            .with_transaction_start_time_ms(-1)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        if !ctx.allowed(op::DESCRIBE, resource::TRANSACTIONAL_ID, id.as_str()) {
            state.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
            resp.transaction_states.push(state);
            continue;
        }
        let described = ctx
            .txns()
            .read(id.as_str(), |c| c.describe(id.as_str()))
            .await
            .unwrap_or_else(|e| Err(e.code()));
        match described {
            Ok(d) => {
                state.error_code = 0;
                state.transaction_state = StrBytes::from_static_str(d.state);
                state.transaction_timeout_ms = d.timeout_ms;
                state.transaction_start_time_ms = d.start_time_ms;
                state.producer_id = ProducerId(d.producer_id);
                state.producer_epoch = d.producer_epoch;
                state.topics = d
                    .topics
                    .into_iter()
                    .filter(|(t, _)| ctx.allowed(op::DESCRIBE, resource::TOPIC, t))
                    .map(|(t, p)| {
                        TopicData::default()
                            .with_topic(TopicName(StrBytes::from_string(t)))
                            .with_partitions(p)
                    })
                    .collect();
            }
            Err(code) => state.error_code = code.code(),
        }
        resp.transaction_states.push(state);
    }
    ctx.respond(&resp)
}
