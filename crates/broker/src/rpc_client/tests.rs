//! Tests of the RPC client against in-process fake servers: a tokio `TcpListener` that reads
//! request frames, checks their headers, and answers as each test scripts it.

use super::*;
use gregor_protocol::messages::api_versions_response::ApiVersion;
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::metadata_response::MetadataResponseTopic;
use gregor_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use gregor_protocol::response::encode_response;
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

const T: Duration = Duration::from_secs(5);
const PRIVATE_KEY: i16 = 1000;

/// A request as the fake server read it.
#[derive(Debug)]
struct FakeRequest {
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: Option<String>,
    body: Bytes,
}

/// Reads one request frame; `None` at EOF. Decodes the header in the version the API key and
/// version call for (private keys: v2), as a strict server would.
async fn read_request(s: &mut TcpStream) -> Option<FakeRequest> {
    let len = s.read_i32().await.ok()?;
    let mut buf = vec![0u8; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    let mut frame = Bytes::from(buf);
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let (header_version, _) = header_versions(api_key, version);
    let header = RequestHeader::decode(&mut frame, header_version).expect("request header");
    Some(FakeRequest {
        api_key,
        version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|c| c.to_string()),
        body: frame,
    })
}

/// Writes a response frame: correlation id, tagged fields if `header_version` is 1, `body`.
async fn write_response(s: &mut TcpStream, correlation_id: i32, header_version: i16, body: &[u8]) {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .unwrap();
    buf.put_slice(body);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&buf).await.unwrap();
}

/// Answers `req` (for `req.api_key`/`req.version`) with `body`, header per the API.
async fn answer(s: &mut TcpStream, req: &FakeRequest, body: &[u8]) {
    let (_, header_version) = header_versions(req.api_key, req.version);
    write_response(s, req.correlation_id, header_version, body).await;
}

fn api_versions_response(ranges: &[(i16, i16, i16)]) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|&(k, min, max)| {
                ApiVersion::default()
                    .with_api_key(k)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// Ranges most fakes advertise.
const RANGES: &[(i16, i16, i16)] = &[(18, 0, 4), (3, 0, 12)];

/// Reads the ApiVersions request and answers it with `ranges`.
async fn handshake(s: &mut TcpStream, ranges: &[(i16, i16, i16)]) {
    let req = read_request(s).await.expect("ApiVersions request");
    assert_eq!(req.api_key, 18);
    assert_eq!(req.version, 3);
    let frame = encode_response(
        ApiKey::ApiVersions,
        req.version,
        req.correlation_id,
        &api_versions_response(ranges),
    )
    .unwrap();
    s.write_all(&frame).await.unwrap();
}

/// A fake server: runs `conn(stream, n)` for the n-th accepted connection (0-based).
async fn fake<F, Fut>(conn: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(TcpStream, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(conn(s, n));
        }
    });
    (addr, accepted)
}

/// A fake that handshakes, then echoes every request body back (in order).
async fn echo_server() -> (String, Arc<AtomicUsize>) {
    fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        while let Some(req) = read_request(&mut s).await {
            answer(&mut s, &req, &req.body).await;
        }
    })
    .await
}

fn config() -> ChannelConfig {
    ChannelConfig {
        reconnect_backoff: Duration::from_millis(10),
        ..ChannelConfig::new("rpc-test")
    }
}

fn metadata_request(topic: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]))
}

/// Answers a Metadata request with one topic named as the request's first topic.
async fn answer_metadata(s: &mut TcpStream, mut req: FakeRequest) {
    let request: MetadataRequest =
        gregor_protocol::request::decode_as(ApiKey::Metadata, req.version, &mut req.body).unwrap();
    let name = request.topics.unwrap()[0].name.clone();
    let response = MetadataResponse::default()
        .with_topics(vec![MetadataResponseTopic::default().with_name(name)]);
    let frame =
        encode_response(ApiKey::Metadata, req.version, req.correlation_id, &response).unwrap();
    s.write_all(&frame).await.unwrap();
}

fn topic_of(resp: &MetadataResponse) -> String {
    resp.topics[0].name.as_ref().unwrap().to_string()
}

#[test]
fn header_versions_follow_the_message_definitions() {
    // Metadata: flexible from v9.
    assert_eq!(header_versions(3, 8), (1, 0));
    assert_eq!(header_versions(3, 9), (2, 1));
    // ApiVersions: flexible requests from v3, responses always header v0.
    assert_eq!(header_versions(18, 0), (1, 0));
    assert_eq!(header_versions(18, 3), (2, 0));
    // CreateTopics from v5, Fetch from v12, BrokerHeartbeat always.
    assert_eq!(header_versions(19, 4), (1, 0));
    assert_eq!(header_versions(19, 5), (2, 1));
    assert_eq!(header_versions(1, 11), (1, 0));
    assert_eq!(header_versions(1, 12), (2, 1));
    assert_eq!(header_versions(63, 0), (2, 1));
    // Private keys.
    assert!(is_private_api(PRIVATE_KEY));
    assert!(!is_private_api(62));
    assert_eq!(header_versions(PRIVATE_KEY, 0), (2, 1));
}

#[test]
fn version_for_picks_the_highest_common_version() {
    let v = ApiVersions::from_response(&api_versions_response(&[(3, 1, 9), (19, 2, 7)]), 3);
    assert_eq!(v.version_for(3, (0, 12)), Some(9));
    assert_eq!(v.version_for(3, (0, 4)), Some(4));
    assert_eq!(v.version_for(3, (10, 12)), None);
    assert_eq!(v.version_for(19, (0, 1)), None);
    assert_eq!(v.version_for(63, (0, 1)), None);
    assert_eq!(v.range(19), Some((2, 7)));
    assert_eq!(highest_common_version((0, 0), (0, 0)), Some(0));
}

#[test]
fn backoff_doubles_and_is_capped() {
    let config = ChannelConfig {
        reconnect_backoff: Duration::from_millis(50),
        reconnect_backoff_max: Duration::from_millis(300),
        ..ChannelConfig::default()
    };
    let now = Instant::now();
    let mut b = Backoff::default();
    assert_eq!(b.delay(&config, now), None, "first attempt: no wait");
    b.last_attempt = Some(now);
    assert_eq!(b.delay(&config, now), Some(Duration::from_millis(50)));
    b.failures = 3;
    assert_eq!(b.delay(&config, now), Some(Duration::from_millis(200)));
    b.failures = 30;
    assert_eq!(b.delay(&config, now), Some(Duration::from_millis(300)));
    assert_eq!(b.delay(&config, now + Duration::from_secs(1)), None);
}

#[tokio::test]
async fn pipelined_calls_share_one_connection_and_route_out_of_order_answers() {
    const N: usize = 10;
    let (addr, accepted) = fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        let mut reqs = Vec::new();
        for _ in 0..N {
            let req = read_request(&mut s).await.unwrap();
            assert_eq!(req.api_key, PRIVATE_KEY);
            assert_eq!(req.client_id.as_deref(), Some("rpc-test"));
            reqs.push(req);
        }
        // Answer in reverse order, echoing each body.
        for req in reqs.iter().rev() {
            answer(&mut s, req, &req.body).await;
        }
        while read_request(&mut s).await.is_some() {}
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    let mut set = JoinSet::new();
    for i in 0..N {
        let ch = ch.clone();
        set.spawn(async move {
            let body = Bytes::from(format!("request {i}"));
            let resp = ch.call_raw(PRIVATE_KEY, 0, body.clone(), T).await.unwrap();
            assert_eq!(resp, body, "call {i} got another call's answer");
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(ch.connections_opened(), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn typed_calls_use_the_api_header_versions() {
    let (addr, _) = fake(|mut s, _| async move {
        handshake(&mut s, &[(18, 0, 4), (3, 0, 9)]).await;
        while let Some(req) = read_request(&mut s).await {
            assert_eq!(req.api_key, 3);
            // read_request decoded the header in the version Metadata calls for, so a wrong
            // header version would have garbled the body.
            answer_metadata(&mut s, req).await;
        }
    })
    .await;
    let ch = NodeChannel::for_node(7, addr, config());
    assert_eq!(ch.node_id(), Some(7));
    // Non-flexible (header v1 / v0) and flexible (v2 / v1).
    for version in [1, 4, 8, 9] {
        let resp = ch
            .call(version, &metadata_request(&format!("t{version}")), T)
            .await
            .unwrap();
        assert_eq!(topic_of(&resp), format!("t{version}"));
    }
    // The peer stops at v9: call_auto picks it from (0, 12).
    let (version, resp) = ch
        .call_auto::<MetadataRequest>((0, 12), T, |_| metadata_request("auto"))
        .await
        .unwrap();
    assert_eq!(version, 9);
    assert_eq!(topic_of(&resp), "auto");
    let versions = ch.api_versions(T).await.unwrap();
    assert_eq!(versions.version(), 3);
    assert_eq!(versions.version_for(3, (0, 13)), Some(9));
    assert_eq!(ch.connections_opened(), 1);
}

#[tokio::test]
async fn versions_the_peer_does_not_advertise_are_refused_without_sending() {
    let (addr, _) = fake(|mut s, _| async move {
        handshake(&mut s, &[(18, 0, 4), (3, 0, 4)]).await;
        while let Some(req) = read_request(&mut s).await {
            assert_eq!(
                (req.api_key, req.version),
                (3, 4),
                "only Metadata v4 may arrive"
            );
            answer_metadata(&mut s, req).await;
        }
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    let e = ch.call(9, &metadata_request("x"), T).await.unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::UnsupportedVersion {
                api_key: 3,
                wanted: (9, 9),
                remote: Some((0, 4)),
                ..
            }
        ),
        "{e:?}"
    );
    let e = ch
        .call_auto::<MetadataRequest>((5, 12), T, |_| metadata_request("x"))
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::UnsupportedVersion { .. }), "{e:?}");
    // Not advertised at all.
    let e = ch.call_raw(19, 5, Bytes::new(), T).await.unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::UnsupportedVersion {
                api_key: 19,
                remote: None,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("does not advertise CreateTopics"),
        "{e}"
    );
    // Outside our own encoder's range.
    let e = ch.call(99, &metadata_request("x"), T).await.unwrap_err();
    assert!(matches!(e, RpcError::UnsupportedVersion { .. }), "{e:?}");
    // The connection is intact.
    let resp = ch.call(4, &metadata_request("ok"), T).await.unwrap();
    assert_eq!(topic_of(&resp), "ok");
    assert_eq!(ch.connections_opened(), 1);
}

#[tokio::test]
async fn api_versions_falls_back_to_the_version_the_peer_lists() {
    let (addr, _) = fake(|mut s, _| async move {
        // v3: UNSUPPORTED_VERSION with a v0 body listing ApiVersions up to v2.
        let req = read_request(&mut s).await.unwrap();
        assert_eq!((req.api_key, req.version), (18, 3));
        let error = api_versions_response(&[(18, 0, 2), (3, 0, 8)])
            .with_error_code(ErrorCode::UnsupportedVersion.code());
        let frame = encode_response(ApiKey::ApiVersions, 0, req.correlation_id, &error).unwrap();
        s.write_all(&frame).await.unwrap();
        // Asked again in v2.
        let req = read_request(&mut s).await.unwrap();
        assert_eq!((req.api_key, req.version), (18, 2));
        let ok = api_versions_response(&[(18, 0, 2), (3, 0, 8)]);
        let frame = encode_response(ApiKey::ApiVersions, 2, req.correlation_id, &ok).unwrap();
        s.write_all(&frame).await.unwrap();
        while read_request(&mut s).await.is_some() {}
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    let versions = ch.api_versions(T).await.unwrap();
    assert_eq!(versions.version(), 2);
    assert_eq!(versions.version_for(3, (0, 13)), Some(8));
}

#[tokio::test]
async fn api_versions_falls_back_to_v0_when_the_peer_lists_nothing() {
    let (addr, _) = fake(|mut s, _| async move {
        let req = read_request(&mut s).await.unwrap();
        assert_eq!(req.version, 3);
        let error =
            ApiVersionsResponse::default().with_error_code(ErrorCode::UnsupportedVersion.code());
        let frame = encode_response(ApiKey::ApiVersions, 0, req.correlation_id, &error).unwrap();
        s.write_all(&frame).await.unwrap();
        let req = read_request(&mut s).await.unwrap();
        assert_eq!(req.version, 0);
        let ok = api_versions_response(&[(18, 0, 0)]);
        let frame = encode_response(ApiKey::ApiVersions, 0, req.correlation_id, &ok).unwrap();
        s.write_all(&frame).await.unwrap();
        while read_request(&mut s).await.is_some() {}
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    assert_eq!(ch.api_versions(T).await.unwrap().version(), 0);
}

#[tokio::test]
async fn connection_loss_fails_every_call_in_flight_and_the_next_call_reconnects() {
    let (addr, accepted) = fake(|mut s, n| async move {
        handshake(&mut s, RANGES).await;
        if n == 0 {
            // Take three requests, answer none, drop the connection.
            for _ in 0..3 {
                read_request(&mut s).await.unwrap();
            }
            return;
        }
        while let Some(req) = read_request(&mut s).await {
            answer(&mut s, &req, &req.body).await;
        }
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    let mut set = JoinSet::new();
    for _ in 0..3 {
        let ch = ch.clone();
        set.spawn(async move {
            ch.call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"x"), T)
                .await
        });
    }
    while let Some(r) = set.join_next().await {
        let e = r.unwrap().unwrap_err();
        assert!(
            matches!(
                &e,
                RpcError::Disconnected {
                    reason: DisconnectReason::RemoteClosed,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_retriable());
    }
    let resp = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"again"), T)
        .await
        .unwrap();
    assert_eq!(&resp[..], b"again");
    assert_eq!(ch.connections_opened(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_late_answer_after_a_timeout_is_discarded_and_the_connection_kept() {
    let (addr, accepted) = fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        let first = read_request(&mut s).await.unwrap();
        // The second request comes after the first call timed out; answer both then.
        let second = read_request(&mut s).await.unwrap();
        answer(&mut s, &first, &first.body).await;
        answer(&mut s, &second, &second.body).await;
        while let Some(req) = read_request(&mut s).await {
            answer(&mut s, &req, &req.body).await;
        }
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    ch.api_versions(T).await.unwrap();
    let e = ch
        .call_raw(
            PRIVATE_KEY,
            0,
            Bytes::from_static(b"slow"),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Timeout {
                api_key: PRIVATE_KEY,
                version: 0,
                ..
            }
        ),
        "{e:?}"
    );
    let resp = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"second"), T)
        .await
        .unwrap();
    assert_eq!(
        &resp[..],
        b"second",
        "the late answer must not be taken for this one"
    );
    let resp = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"third"), T)
        .await
        .unwrap();
    assert_eq!(&resp[..], b"third");
    assert_eq!(ch.connections_opened(), 1);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_oversized_response_frame_closes_the_connection_before_allocating() {
    let (addr, _) = fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        read_request(&mut s).await.unwrap();
        // Announce 1 GiB and send nothing more; keep the socket open.
        s.write_all(&(1i32 << 30).to_be_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let ch = NodeChannel::new(
        addr,
        ChannelConfig {
            max_frame_bytes: 4096,
            ..config()
        },
    );
    let e = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"x"), T)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Disconnected {
                reason: DisconnectReason::FrameTooLarge {
                    size: 1_073_741_824,
                    max: 4096
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!ch.is_connected());
}

#[tokio::test]
async fn an_oversized_request_is_refused_before_sending() {
    let (addr, _) = echo_server().await;
    let ch = NodeChannel::new(
        addr,
        ChannelConfig {
            max_frame_bytes: 4096,
            ..config()
        },
    );
    let e = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from(vec![0u8; 5000]), T)
        .await
        .unwrap_err();
    assert!(
        matches!(e, RpcError::FrameTooLarge { max: 4096, .. }),
        "{e:?}"
    );
    let resp = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"small"), T)
        .await
        .unwrap();
    assert_eq!(&resp[..], b"small");
    assert_eq!(ch.connections_opened(), 1);
}

#[tokio::test]
async fn connect_failures_are_reported_and_backed_off() {
    // A port with nothing listening.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let ch = NodeChannel::new(
        format!("127.0.0.1:{port}"),
        ChannelConfig {
            reconnect_backoff: Duration::from_millis(200),
            ..config()
        },
    );
    let e = ch.api_versions(T).await.unwrap_err();
    assert!(matches!(e, RpcError::Connect { .. }), "{e:?}");
    let started = Instant::now();
    let e = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::new(), T)
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Connect { .. }), "{e:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the second attempt should wait for the backoff ({:?})",
        started.elapsed()
    );
    // A short call timeout cuts the backoff wait short.
    let e = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::new(), Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Timeout { version: -1, .. }), "{e:?}");
}

#[tokio::test]
async fn a_peer_that_never_answers_api_versions_fails_the_connect() {
    let (addr, _) =
        fake(|mut s, _| async move { while read_request(&mut s).await.is_some() {} }).await;
    let ch = NodeChannel::new(
        addr,
        ChannelConfig {
            connect_timeout: Duration::from_millis(100),
            ..config()
        },
    );
    let e = ch.api_versions(T).await.unwrap_err();
    assert!(
        matches!(&e, RpcError::Connect { reason, .. } if reason.contains("ApiVersions timed out")),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_and_reopened_on_the_next_call() {
    let (addr, accepted) = echo_server().await;
    let ch = NodeChannel::new(
        addr,
        ChannelConfig {
            idle_timeout: Some(Duration::from_millis(100)),
            ..config()
        },
    );
    ch.call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"a"), T)
        .await
        .unwrap();
    assert!(ch.is_connected());
    let deadline = Instant::now() + T;
    while ch.is_connected() {
        assert!(Instant::now() < deadline, "the idle connection stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ch.call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"b"), T)
        .await
        .unwrap();
    assert_eq!(ch.connections_opened(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn close_fails_calls_in_flight_and_later_calls() {
    let received = Arc::new(tokio::sync::Notify::new());
    let notify = received.clone();
    let (addr, _) = fake(move |mut s, _| {
        let notify = notify.clone();
        async move {
            handshake(&mut s, RANGES).await;
            while read_request(&mut s).await.is_some() {
                notify.notify_one();
            }
        }
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    ch.api_versions(T).await.unwrap();
    let pending = {
        let ch = ch.clone();
        tokio::spawn(async move { ch.call_raw(PRIVATE_KEY, 0, Bytes::new(), T).await })
    };
    received.notified().await;
    ch.close();
    let e = pending.await.unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Disconnected {
                reason: DisconnectReason::Closed,
                ..
            }
        ),
        "{e:?}"
    );
    let e = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::new(), T)
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Closed { .. }), "{e:?}");
}

#[tokio::test]
async fn the_pool_replaces_a_channel_when_the_node_moves() {
    let (addr_a, _) = fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        while let Some(req) = read_request(&mut s).await {
            answer(&mut s, &req, b"A").await;
        }
    })
    .await;
    let (addr_b, _) = fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        while let Some(req) = read_request(&mut s).await {
            answer(&mut s, &req, b"B").await;
        }
    })
    .await;
    let pool = ChannelPool::new(config());
    let a = pool.channel(1, &addr_a);
    assert!(pool.channel(1, &addr_a).same_channel(&a));
    assert_eq!(
        &a.call_raw(PRIVATE_KEY, 0, Bytes::new(), T).await.unwrap()[..],
        b"A"
    );
    let b = pool.channel(1, &addr_b);
    assert!(!b.same_channel(&a));
    assert_eq!(b.node_id(), Some(1));
    assert_eq!(
        &b.call_raw(PRIVATE_KEY, 0, Bytes::new(), T).await.unwrap()[..],
        b"B"
    );
    let e = a
        .call_raw(PRIVATE_KEY, 0, Bytes::new(), T)
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Closed { .. }), "{e:?}");
    assert!(pool.get(1).unwrap().same_channel(&b));
    assert_eq!(pool.node_ids(), vec![1]);
    assert!(pool.remove(1).is_some());
    assert!(pool.get(1).is_none());
}

#[tokio::test]
async fn a_retired_channel_lets_calls_in_flight_finish() {
    let received = Arc::new(tokio::sync::Notify::new());
    let notify = received.clone();
    let (addr, _) = fake(move |mut s, _| {
        let notify = notify.clone();
        async move {
            handshake(&mut s, RANGES).await;
            while let Some(req) = read_request(&mut s).await {
                notify.notify_one();
                tokio::time::sleep(Duration::from_millis(100)).await;
                answer(&mut s, &req, &req.body).await;
            }
        }
    })
    .await;
    let pool = ChannelPool::new(config());
    let ch = pool.channel(3, &addr);
    ch.api_versions(T).await.unwrap();
    let pending = {
        let ch = ch.clone();
        tokio::spawn(async move {
            ch.call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"p"), T)
                .await
        })
    };
    received.notified().await;
    pool.remove(3);
    assert_eq!(&pending.await.unwrap().unwrap()[..], b"p");
}

#[tokio::test]
async fn a_garbled_response_header_fails_only_its_call() {
    let (addr, _) = fake(|mut s, _| async move {
        handshake(&mut s, RANGES).await;
        let req = read_request(&mut s).await.unwrap();
        // Header v1 wants a tagged-field count after the correlation id: send a bad varint.
        let mut frame = BytesMut::new();
        frame.put_i32(9);
        frame.put_i32(req.correlation_id);
        frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0xff]);
        s.write_all(&frame).await.unwrap();
        while let Some(req) = read_request(&mut s).await {
            answer(&mut s, &req, &req.body).await;
        }
    })
    .await;
    let ch = NodeChannel::new(addr, config());
    let e = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::new(), T)
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Decode { .. }), "{e:?}");
    let resp = ch
        .call_raw(PRIVATE_KEY, 0, Bytes::from_static(b"fine"), T)
        .await
        .unwrap();
    assert_eq!(&resp[..], b"fine");
    assert_eq!(ch.connections_opened(), 1);
}
