//! Transaction coordinator APIs against the real `gregor` binary, at the protocol level:
//! error paths clients rarely reach (restarts are covered by compat-tests/test_transactions.py).

mod common;

use bytes::{Bytes, BytesMut};
use common::{read_frame, Gregor};
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::create_topics_response::CreateTopicsResponse;
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::describe_transactions_response::DescribeTransactionsResponse;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::end_txn_response::EndTxnResponse;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::list_transactions_response::ListTransactionsResponse;
use gregor_protocol::messages::{
    ApiKey, ProducerId, RequestHeader, ResponseHeader, TopicName, TransactionalId,
};
use gregor_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::io::Write;
use std::net::TcpStream;

fn call<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    api: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("txn-test")))
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    s.write_all(&frame).unwrap();
    let resp = read_frame(s).expect("a response");
    let mut b = Bytes::from(resp);
    let h = ResponseHeader::decode(&mut b, api.response_header_version(version)).unwrap();
    assert_eq!(h.correlation_id, 7);
    Resp::decode(&mut b, version).unwrap()
}

fn tid(s: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(s.to_string()))
}

fn init(s: &mut TcpStream, id: &str, timeout: i32, version: i16) -> InitProducerIdResponse {
    call(
        s,
        ApiKey::InitProducerId,
        version,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(tid(id)))
            .with_transaction_timeout_ms(timeout)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )
}

fn add(
    s: &mut TcpStream,
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    parts: Vec<i32>,
    version: i16,
) -> AddPartitionsToTxnResponse {
    call(
        s,
        ApiKey::AddPartitionsToTxn,
        version,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(tid(id))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(parts)]),
    )
}

fn codes(r: &AddPartitionsToTxnResponse) -> Vec<(i32, i16)> {
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| (p.partition_index, p.partition_error_code))
        })
        .collect()
}

fn end(
    s: &mut TcpStream,
    id: &str,
    pid: i64,
    epoch: i16,
    commit: bool,
    version: i16,
) -> EndTxnResponse {
    call(
        s,
        ApiKey::EndTxn,
        version,
        &EndTxnRequest::default()
            .with_transactional_id(tid(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
    )
}

#[test]
fn coordinator_apis_end_to_end() {
    let g = Gregor::start(&["transaction.max.timeout.ms=60000"]);
    let mut s = g.connect();
    let fc: FindCoordinatorResponse = call(
        &mut s,
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(StrBytes::from_static_str("t1"))
            .with_key_type(1),
    );
    assert_eq!(fc.error_code, 0);
    assert_eq!(fc.port, g.port as i32);

    // Timeout above transaction.max.timeout.ms.
    assert_eq!(init(&mut s, "t1", 60001, 4).error_code, 50);
    let r = init(&mut s, "t1", 60000, 4);
    assert_eq!((r.error_code, r.producer_epoch), (0, 0));
    let pid = r.producer_id.0;
    assert!(pid >= 0);
    let r = init(&mut s, "t1", 60000, 4);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, 1)
    );

    // Nothing ongoing: INVALID_TXN_STATE; stale epoch: PRODUCER_FENCED (v2+),
    // INVALID_PRODUCER_EPOCH (v0/v1); unknown id: INVALID_PRODUCER_ID_MAPPING.
    assert_eq!(end(&mut s, "t1", pid, 1, true, 3).error_code, 48);
    assert_eq!(end(&mut s, "t1", pid, 0, true, 3).error_code, 90);
    assert_eq!(end(&mut s, "t1", pid, 0, true, 1).error_code, 47);
    assert_eq!(end(&mut s, "nope", pid, 1, true, 3).error_code, 49);

    let created: CreateTopicsResponse = call(
        &mut s,
        ApiKey::CreateTopics,
        5,
        &CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("data")))
                .with_num_partitions(2)
                .with_replication_factor(1)])
            .with_timeout_ms(10000),
    );
    assert_eq!(created.topics[0].error_code, 0);
    // An unknown partition fails the whole request.
    let r = add(&mut s, "t1", pid, 1, "data", vec![0, 5], 3);
    assert_eq!(codes(&r), vec![(0, 55), (5, 3)]);
    let r = add(&mut s, "t1", pid, 1, "data", vec![1, 0], 3);
    assert_eq!(codes(&r), vec![(0, 0), (1, 0)]);

    // v4+ verify_only.
    let r: AddPartitionsToTxnResponse = call(
        &mut s,
        ApiKey::AddPartitionsToTxn,
        4,
        &AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(tid("t1"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(1)
                .with_verify_only(true)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_static_str("data")))
                    .with_partitions(vec![0])]),
        ]),
    );
    assert_eq!(r.results_by_transaction.len(), 1);
    assert_eq!(
        r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code,
        0
    );

    let d: DescribeTransactionsResponse = call(
        &mut s,
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("t1"), tid("x")]),
    );
    assert_eq!(d.transaction_states[0].error_code, 0);
    assert_eq!(
        d.transaction_states[0].transaction_state.as_str(),
        "Ongoing"
    );
    assert_eq!(d.transaction_states[0].topics[0].partitions, vec![0, 1]);
    assert_eq!(d.transaction_states[1].error_code, 105);

    // Commit, then an idempotent retry.
    assert_eq!(end(&mut s, "t1", pid, 1, true, 3).error_code, 0);
    assert_eq!(end(&mut s, "t1", pid, 1, true, 3).error_code, 0);
    assert_eq!(end(&mut s, "t1", pid, 1, false, 3).error_code, 48);

    let l: ListTransactionsResponse = call(
        &mut s,
        ApiKey::ListTransactions,
        1,
        &ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("CompleteCommit")]),
    );
    assert_eq!(l.error_code, 0);
    assert_eq!(l.transaction_states.len(), 1);
    assert_eq!(l.transaction_states[0].transactional_id.as_str(), "t1");
    assert_eq!(l.transaction_states[0].producer_id.0, pid);
    let r = init(&mut s, "t1", 60000, 4);
    assert_eq!(
        (r.error_code, r.producer_id.0, r.producer_epoch),
        (0, pid, 2)
    );
}
