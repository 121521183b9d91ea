//! The `metrics.listener` HTTP endpoint: `GET /metrics` answers the OpenMetrics text exposition
//! (what Prometheus scrapes), every other path 404, other methods on `/metrics` 405. HTTP/1.1 is
//! served by `hyper`; a malformed request only ends its own connection (hyper answers 400).
//! The listener stops, and its connections are dropped, when the broker shuts down.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Content type of the OpenMetrics text format (which Prometheus negotiates and parses).
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the metrics listener (`metrics.listener`); the error names the key and address.
pub async fn bind(addr: SocketAddr, configured: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind metrics.listener={configured} on {addr}: {e}"))
}

/// What the endpoint serves: the encoded metrics at the time of the request.
pub trait Scrape: Send + Sync + 'static {
    /// Reads the current state and encodes every metric (the `/metrics` body).
    fn scrape(&self) -> impl std::future::Future<Output = Result<String, std::fmt::Error>> + Send;
}

/// Serves `/metrics` until `shutdown` flips to true, then drops every open connection.
pub async fn serve<S: Scrape>(
    socket: TcpListener,
    broker: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    let broker = broker.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| handle(req, broker.clone()));
                        let served = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_READ_TIMEOUT)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(e) = served {
                            tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle<S: Scrape>(
    req: Request<Incoming>,
    broker: Arc<S>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/metrics" {
        return Ok(text(StatusCode::NOT_FOUND, "404 not found: try /metrics\n"));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    Ok(match broker.scrape().await {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
            );
            r
        }
        Err(_) => {
            tracing::error!("cannot encode /metrics");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "500 cannot encode metrics\n",
            )
        }
    })
}
