//! One client connection: read frames (`frame::check` then split, never more than
//! `socket.request.max.bytes`), decode the header, dispatch, write the response — strictly in
//! order, one request at a time, as Kafka does (pipelined requests queue in the socket).
//! Malformed or unsupported requests close the connection with a log line; other connections
//! are unaffected. Idle connections close after `connections.max.idle.ms`.
//!
//! Every request runs in a `request` span (api, version, correlation id, client id), is counted
//! in the request metrics (count, errors, total time; see [`crate::metrics`]) and, when its
//! work — elapsed time minus long-poll/rebalance waits — exceeds `gregor.slow.request.ms`,
//! logged as a slow request (warn).

use crate::config::Listener;
use crate::errors::HandlerError;
use crate::handlers::{self, Ctx, Plane, Response};
use crate::metrics::WaitClock;
use crate::sendfile::Writer;
use crate::services::Services;
use crate::tls::TlsListener;
use bytes::BytesMut;
use gregor_protocol::frame;
use gregor_protocol::messages::ApiKey;
use gregor_protocol::request::decode_header;
use gregor_protocol::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

/// The error a request that gets no answer counts as in `kafka_network_requestmetrics_errors`.
fn request_error_code(e: &HandlerError) -> ErrorCode {
    match e {
        HandlerError::Unsupported(_) => ErrorCode::UnsupportedVersion,
        HandlerError::Decode(_) | HandlerError::Malformed(_) => ErrorCode::InvalidRequest,
        HandlerError::ShuttingDown | HandlerError::Internal(_) | HandlerError::Encode(_) => {
            ErrorCode::UnknownServerError
        }
    }
}

/// The principal of connections that did not authenticate (PLAINTEXT listeners).
const ANONYMOUS: &str = "User:ANONYMOUS";

fn principal_of(auth: &handlers::sasl::Authenticator) -> String {
    auth.user()
        .map_or_else(|| ANONYMOUS.to_string(), |u| format!("User:{u}"))
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Closed,
    Idle,
    Shutdown,
    Protocol(String),
    Io(std::io::Error),
}

/// Serves one connection until the client closes it, it idles out, the broker shuts down, or
/// the client sends something we cannot answer.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    services: Services,
    listener: Arc<Listener>,
    plane: Plane,
    tls: Option<Arc<TlsListener>>,
    shutdown: watch::Receiver<bool>,
) {
    let _counted = services.metrics.connection_opened(&listener.name);
    if plane == Plane::Client {
        // KIP-612: over its ip's connection_creation_rate the connection is accepted, held for
        // the throttle time, then closed unread.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let image = services.metadata.image();
        let wait = services
            .quotas
            .record_connection(&image, &peer.ip().to_string(), now);
        drop(image);
        if wait > 0 {
            tracing::info!(%peer, throttle_ms = wait, "connection_creation_rate of the ip exceeded: closing the connection after the throttle time");
            let mut shutdown = shutdown;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = shutdown.changed() => {}
            }
            return;
        }
    }
    let (reader, writer, principal) = match tls {
        None => {
            let (r, w) = stream.into_split();
            (Reader::Plain(r), Writer::Plain(w), None)
        }
        Some(tls) => match tls.accept(stream).await {
            Ok(s) => {
                let principal = tls.principal(&s);
                let (r, w) = tokio::io::split(s);
                (Reader::Tls(r), Writer::Tls(w), Some(principal))
            }
            Err(e) => {
                tracing::info!(%peer, listener = %listener.name, error = %e, "TLS handshake failed");
                return;
            }
        },
    };
    let end = run(
        reader, writer, principal, peer, &services, &listener, plane, shutdown,
    )
    .await;
    match end {
        End::Closed | End::Shutdown => tracing::debug!(%peer, "connection closed"),
        End::Idle => tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)"),
        End::Protocol(reason) => tracing::warn!(%peer, %reason, "closing connection"),
        End::Io(e) => tracing::debug!(%peer, error = %e, "connection error"),
    }
}

/// The read side of a connection.
enum Reader {
    Plain(tokio::net::tcp::OwnedReadHalf),
    Tls(tokio::io::ReadHalf<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Reader {
    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Reader::Plain(r) => r.read_buf(buf).await,
            Reader::Tls(r) => r.read_buf(buf).await,
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut reader: Reader,
    mut writer: Writer,
    tls_principal: Option<String>,
    peer: SocketAddr,
    services: &Services,
    listener: &Arc<Listener>,
    plane: Plane,
    mut shutdown: watch::Receiver<bool>,
) -> End {
    let config = &services.config;
    let max = config.socket_request_max_bytes;
    let idle = Duration::from_millis(config.connections_max_idle_ms.max(1));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let wait_clock = WaitClock::default();
    let no_throttle = std::sync::atomic::AtomicU64::new(0);
    let mut sasl = config
        .security
        .get(&listener.name)
        .and_then(|s| s.sasl.clone())
        .map(|c| {
            handlers::sasl::Authenticator::new(Arc::new(c), config.failed_authentication_delay_ms)
        });
    loop {
        // Take every complete frame already buffered before reading more.
        // Before a SASL session is authenticated frames are bounded by
        // `sasl.server.max.receive.size`, as Kafka's SaslServerAuthenticator does.
        let limit = match &sasl {
            Some(a) if !a.authenticated() => max.min(config.sasl_server_max_receive_size),
            _ => max,
        };
        let size = match frame::check(&buf, limit) {
            Ok(Some(size)) => size,
            Ok(None) => {
                if buf.len() >= frame::LENGTH_PREFIX {
                    // Size is known: make room for the whole frame at once.
                    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    let need = frame::LENGTH_PREFIX + size;
                    if buf.capacity() < need {
                        buf.reserve(need - buf.len());
                    }
                } else if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(64 * 1024);
                }
                if *shutdown.borrow() {
                    return End::Shutdown;
                }
                tokio::select! {
                    r = reader.read_buf(&mut buf) => match r {
                        Ok(0) => {
                            return if buf.is_empty() {
                                End::Closed
                            } else {
                                End::Protocol(format!("client closed inside a frame ({} bytes buffered)", buf.len()))
                            };
                        }
                        Ok(_) => continue,
                        Err(e) => return End::Io(e),
                    },
                    _ = tokio::time::sleep(idle) => return End::Idle,
                    _ = shutdown.changed() => return End::Shutdown,
                }
            }
            Err(e) => return End::Protocol(e.to_string()),
        };
        let mut request = buf.split_to(frame::LENGTH_PREFIX + size).freeze();
        let _ = request.split_to(frame::LENGTH_PREFIX);
        if let Some(auth) = sasl.as_mut().filter(|a| a.expects_raw_token()) {
            // After a SaslHandshake v0 the SASL tokens are raw frames, not Kafka requests.
            let image = services.metadata.image();
            let (reply, after) = auth.raw_token(peer, &image, &request);
            if let Some(reply) = reply {
                let mut out = BytesMut::with_capacity(frame::LENGTH_PREFIX + reply.len());
                out.extend_from_slice(&(reply.len() as i32).to_be_bytes());
                out.extend_from_slice(&reply);
                if let Err(e) = writer.write_frame(out.freeze()).await {
                    return End::Io(e);
                }
            }
            if let handlers::sasl::After::Close(delay, reason) = after {
                tokio::time::sleep(delay).await;
                return End::Protocol(reason);
            }
            continue;
        }
        if plane == Plane::Controller {
            // Gregor's private inter-node APIs (raft, metadata fetch, forwarded commands).
            let key = gregor_protocol::request::peek_prefix(&request).map(|p| p.api_key);
            if key.is_ok_and(gregor_protocol::internal::is_internal) {
                let (key, header) = match gregor_protocol::internal::decode_header(&mut request) {
                    Ok(h) => h,
                    Err(e) => return End::Protocol(e.to_string()),
                };
                let answered =
                    handlers::internal::handle(services, key, header.correlation_id, request).await;
                let written = match answered {
                    Ok(Response::Frame(frame)) => writer.write_frame(frame.freeze()).await,
                    Ok(_) => Ok(()),
                    Err(e) => return End::Protocol(format!("private API {key}: {e}")),
                };
                if let Err(e) = written {
                    return End::Io(e);
                }
                continue;
            }
        }
        let (api, header) = match decode_header(&mut request) {
            Ok(h) => h,
            Err(e) => return End::Protocol(e.to_string()),
        };
        if let Some(auth) = sasl.as_mut() {
            let now = std::time::Instant::now();
            let is_sasl = matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate);
            if is_sasl && auth.expects(api == ApiKey::SaslHandshake, now) {
                let principal = principal_of(auth);
                let ctx = Ctx {
                    services,
                    listener,
                    plane,
                    peer,
                    header: &header,
                    api,
                    version: header.request_api_version,
                    shutdown: shutdown.clone(),
                    principal: &principal,
                    throttle_ms: &no_throttle,
                    started: std::time::Instant::now(),
                    request_time_recorded: std::sync::atomic::AtomicBool::new(true),
                };
                let stepped = if api == ApiKey::SaslHandshake {
                    auth.handshake(&ctx, &mut request).await
                } else {
                    auth.authenticate(&ctx, &mut request).await
                };
                let (response, after) = match stepped {
                    Ok(r) => r,
                    Err(e) => {
                        return End::Protocol(format!(
                            "{api:?} v{}: {e}",
                            header.request_api_version
                        ))
                    }
                };
                if let Response::Frame(frame) = response {
                    if let Err(e) = writer.write_frame(frame.freeze()).await {
                        return End::Io(e);
                    }
                }
                if let handlers::sasl::After::Close(delay, reason) = after {
                    tokio::time::sleep(delay).await;
                    return End::Protocol(reason);
                }
                continue;
            }
            if api == ApiKey::ApiVersions && !auth.api_versions_allowed() {
                return End::Protocol("a second ApiVersions during SASL authentication".into());
            }
            if api != ApiKey::ApiVersions {
                if auth.in_exchange() && api == ApiKey::Metadata {
                    // Kafka answers the API's error response (for Metadata, which has no error
                    // field before v10: an empty one), then closes.
                    let empty = gregor_protocol::response::encode_response(
                        api,
                        header.request_api_version,
                        header.correlation_id,
                        &gregor_protocol::messages::MetadataResponse::default(),
                    );
                    if let Ok(frame) = empty {
                        let _ = writer.write_frame(frame.freeze()).await;
                    }
                }
                if !auth.authenticated() {
                    return End::Protocol(format!(
                        "Unexpected Kafka request of type {api:?} during SASL handshake."
                    ));
                }
            }
            // Any request but a re-authentication's SaslHandshake (ApiVersions too) closes an
            // expired session, as Kafka's SocketServer does.
            if auth.expired(now) {
                return End::Protocol(format!(
                    "{api:?} after the SASL session of {} expired (connections.max.reauth.ms): re-authentication required",
                    principal_of(auth)
                ));
            }
        }
        let throttle = std::sync::atomic::AtomicU64::new(0);
        let principal = match (&sasl, &tls_principal) {
            (Some(auth), _) => principal_of(auth),
            (None, Some(p)) => p.clone(),
            (None, None) => ANONYMOUS.to_string(),
        };
        let span = tracing::debug_span!(
            "request",
            api = ?api,
            version = header.request_api_version,
            correlation_id = header.correlation_id,
            client_id = header.client_id.as_ref().map(|c| c.as_str()).unwrap_or(""),
        );
        let ctx = Ctx {
            services,
            listener,
            plane,
            peer,
            header: &header,
            api,
            version: header.request_api_version,
            shutdown: shutdown.clone(),
            principal: &principal,
            throttle_ms: &throttle,
            started: std::time::Instant::now(),
            request_time_recorded: std::sync::atomic::AtomicBool::new(false),
        };
        let started = ctx.started;
        let result = wait_clock
            .track(handlers::dispatch(ctx, request).instrument(span.clone()))
            .await;
        let elapsed = started.elapsed();
        let metrics = &services.metrics;
        let version = header.request_api_version;
        if !matches!(result, Err(HandlerError::ShuttingDown)) {
            metrics.request(api, version, elapsed);
        }
        let response = match result {
            Ok(r) => r,
            Err(HandlerError::ShuttingDown) => return End::Shutdown,
            Err(e) => {
                metrics.errors(api, request_error_code(&e), 1);
                return End::Protocol(format!("{:?} v{}: {e}", api, version));
            }
        };
        let waited = wait_clock.waited();
        let worked = elapsed.saturating_sub(waited);
        span.in_scope(|| {
            tracing::debug!(
                elapsed_us = elapsed.as_micros() as u64,
                waited_us = waited.as_micros() as u64,
                "handled"
            )
        });
        if config.slow_request.is_some_and(|t| worked > t) {
            tracing::warn!(
                %peer,
                api = ?api,
                version,
                correlation_id = header.correlation_id,
                client_id = header.client_id.as_ref().map(|c| c.as_str()).unwrap_or(""),
                elapsed_ms = elapsed.as_millis() as u64,
                waited_ms = waited.as_millis() as u64,
                "slow request: {} ms of work (gregor.slow.request.ms={})",
                worked.as_millis(),
                config.slow_request.map_or(0, |t| t.as_millis()),
            );
        }
        let written = match response {
            Response::Frame(frame) => writer.write_frame(frame.freeze()).await,
            Response::Chunks(chunks, _) => writer.write_chunks(chunks).await,
            Response::None => Ok(()),
            Response::Close(reason) => return End::Protocol(reason),
        };
        if let Err(e) = written {
            return End::Io(e);
        }
        // KIP-219: a client over its quota was answered at once with throttle_time_ms; the
        // channel is muted (nothing read) for that long.
        let muted = throttle.load(std::sync::atomic::Ordering::Relaxed);
        if muted > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(muted)) => {}
                _ = shutdown.changed() => return End::Shutdown,
            }
        }
    }
}
