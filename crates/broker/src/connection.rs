//! One client connection: read frames (`frame::check` then split, never more than
//! `socket.request.max.bytes`), decode the header, dispatch, write the response — strictly in
//! order, one request at a time, as Kafka does (pipelined requests queue in the socket).
//! Malformed or unsupported requests close the connection with a log line; other connections
//! are unaffected. Idle connections close after `connections.max.idle.ms`.

use crate::broker::Broker;
use crate::config::Listener;
use crate::handlers::{self, Ctx, Response};
use crate::sendfile;
use bytes::BytesMut;
use gregor_protocol::frame;
use gregor_protocol::request::decode_header;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::Instrument;

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
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let end = run(stream, peer, &broker, &listener, shutdown).await;
    match end {
        End::Closed | End::Shutdown => tracing::debug!(%peer, "connection closed"),
        End::Idle => tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)"),
        End::Protocol(reason) => tracing::warn!(%peer, %reason, "closing connection"),
        End::Io(e) => tracing::debug!(%peer, error = %e, "connection error"),
    }
}

async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    broker: &Arc<Broker>,
    listener: &Arc<Listener>,
    mut shutdown: watch::Receiver<bool>,
) -> End {
    let (mut reader, mut writer) = stream.into_split();
    let max = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms.max(1));
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        // Take every complete frame already buffered before reading more.
        let size = match frame::check(&buf, max) {
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
        let (api, header) = match decode_header(&mut request) {
            Ok(h) => h,
            Err(e) => return End::Protocol(e.to_string()),
        };
        let span = tracing::debug_span!(
            "request",
            api = ?api,
            version = header.request_api_version,
            correlation_id = header.correlation_id,
            client_id = header.client_id.as_ref().map(|c| c.as_str()).unwrap_or(""),
        );
        let ctx = Ctx {
            broker,
            listener,
            peer,
            header: &header,
            api,
            version: header.request_api_version,
            shutdown: shutdown.clone(),
        };
        let started = std::time::Instant::now();
        let response = match handlers::dispatch(ctx, request)
            .instrument(span.clone())
            .await
        {
            Ok(r) => r,
            Err(crate::errors::HandlerError::ShuttingDown) => return End::Shutdown,
            Err(e) => {
                return End::Protocol(format!("{:?} v{}: {e}", api, header.request_api_version))
            }
        };
        span.in_scope(|| {
            tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "handled")
        });
        let written = match response {
            Response::Frame(frame) => sendfile::write_frame(&mut writer, frame.freeze()).await,
            Response::Chunks(chunks, _) => sendfile::write_chunks(&mut writer, chunks).await,
            Response::None => Ok(()),
            Response::Close(reason) => return End::Protocol(reason),
        };
        if let Err(e) = written {
            return End::Io(e);
        }
    }
}
