//! The listener: binds every configured listener, accepts connections (one task each), and
//! shuts down cleanly — stop accepting, let in-flight requests finish (long polls return
//! early), then flush and close every log and write the clean-shutdown marker.

use crate::broker::Broker;
use crate::config::{Config, Listener};
use crate::tls::TlsListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A started broker.
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<(TcpListener, Arc<Listener>, Option<Arc<TlsListener>>)>,
    metrics: Option<TcpListener>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    /// The controller listener's accept loop (serving since before the broker joined).
    controller_plane: Option<tokio::task::JoinHandle<()>>,
    /// Stops the controller listener: only once the quorum member has shut down, since the
    /// other voters and brokers (still in their own controlled shutdown) need it until then.
    controller_stop: watch::Sender<bool>,
}

/// Serves the controller listener: accepts connections and serves each with the controller
/// plane's APIs until `stop`; then drops them.
async fn serve_controller_plane(
    socket: TcpListener,
    listener: Arc<Listener>,
    services: crate::services::Services,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(crate::connection::serve(
                        stream,
                        peer,
                        services.clone(),
                        listener.clone(),
                        crate::handlers::Plane::Controller,
                        None,
                        stop.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "controller listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_millis(700), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
}

/// Binds a client listener as Kafka's acceptor does: SO_REUSEADDR, and SO_RCVBUF set before
/// `listen` (`socket.receive.buffer.bytes`, unless <= 0) so that accepted connections inherit it
/// and the TCP window scale is negotiated for it.
fn bind_listener(addr: std::net::SocketAddr, receive_buffer: i64) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if receive_buffer > 0 {
        socket.set_recv_buffer_size(receive_buffer.min(i32::MAX as i64) as u32)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Server {
    /// Opens the broker state and binds the listeners.
    pub async fn bind(config: Config) -> anyhow::Result<Server> {
        let started = Instant::now();
        let listeners_cfg = config.listeners.clone();
        // TLS settings are checked (files read, keys parsed) before anything else starts.
        let mut tls_of = std::collections::BTreeMap::new();
        for (name, sec) in &config.security {
            if let Some(t) = &sec.tls {
                let tls = TlsListener::new(name, t).map_err(anyhow::Error::msg)?;
                tls_of.insert(name.clone(), Arc::new(tls));
            }
        }
        // Bound before the logs are opened: a taken port fails start-up without touching them.
        let metrics = match &config.metrics_listener {
            Some(l) => {
                let configured = config
                    .values
                    .get("metrics.listener")
                    .cloned()
                    .unwrap_or_default();
                let addr = l
                    .bind_addr()
                    .map_err(|e| anyhow::anyhow!("metrics.listener={configured}: {e}"))?;
                let socket = crate::metrics::http::bind(addr, &configured).await?;
                tracing::info!(%addr, "serving Prometheus metrics on /metrics");
                Some(socket)
            }
            None => None,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (controller_stop, controller_stop_rx) = watch::channel(false);
        let controller_listener = config.cluster.controller_listener.clone();
        let receive_buffer = config.socket_receive_buffer_bytes;
        let broker = Arc::new(Broker::open(config, stop_rx.clone()).await?);
        // Controllers serve their listener before the broker joins: the quorum's raft messages
        // and the other brokers' registrations arrive there.
        let controller_plane = match (&controller_listener, broker.services.controller.local()) {
            (Some(l), Some(_)) => {
                let addr = l
                    .bind_addr()
                    .map_err(|e| anyhow::anyhow!("controller listener {}: {e}", l.name))?;
                let socket = bind_listener(addr, receive_buffer).map_err(|e| {
                    anyhow::anyhow!("cannot bind controller listener {} on {addr}: {e}", l.name)
                })?;
                tracing::info!(listener = %l.name, %addr, "controller listening");
                Some(tokio::spawn(serve_controller_plane(
                    socket,
                    Arc::new(l.clone()),
                    broker.services.clone(),
                    controller_stop_rx,
                )))
            }
            _ => None,
        };
        broker.join(stop_rx.clone()).await?;
        let mut listeners = Vec::new();
        for l in listeners_cfg {
            let addr = l
                .bind_addr()
                .map_err(|e| anyhow::anyhow!("listener {}: {e}", l.name))?;
            let socket = bind_listener(addr, broker.services.config.socket_receive_buffer_bytes)
                .map_err(|e| anyhow::anyhow!("cannot bind listener {} on {addr}: {e}", l.name))?;
            let tls = tls_of.get(&l.name).cloned();
            tracing::info!(listener = %l.name, %addr, tls = tls.is_some(), "listening");
            listeners.push((socket, Arc::new(l), tls));
        }
        tracing::info!(
            node_id = broker.services.node_id(),
            cluster_id = %broker.services.cluster_id(),
            log_dir = %broker.services.config.log_dir.display(),
            startup_ms = started.elapsed().as_millis() as u64,
            "gregor started"
        );
        Ok(Server {
            broker,
            listeners,
            metrics,
            stop_tx,
            stop_rx,
            controller_plane,
            controller_stop,
        })
    }

    /// Local addresses of the bound listeners.
    pub fn local_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _, _)| l.local_addr().ok())
            .collect()
    }

    /// Local address of the metrics listener, if enabled.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then shuts down cleanly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = (self.stop_tx, self.stop_rx);
        let mut connections = JoinSet::new();
        let mut acceptors = JoinSet::new();
        let (conn_tx, mut conn_rx) = tokio::sync::mpsc::channel(64);
        let send_buffer = self.broker.services.config.socket_send_buffer_bytes;
        for (socket, listener, tls) in self.listeners {
            let tx = conn_tx.clone();
            acceptors.spawn(async move {
                loop {
                    match socket.accept().await {
                        Ok((stream, peer)) => {
                            // As Kafka's acceptor: options set before the connection is served
                            // (socket.send.buffer.bytes <= 0 keeps the OS default, autotuned).
                            let _ = stream.set_nodelay(true);
                            if send_buffer > 0 {
                                let _ = rustix::net::sockopt::set_socket_send_buffer_size(
                                    &stream,
                                    send_buffer as usize,
                                );
                            }
                            if tx
                                .send((stream, peer, listener.clone(), tls.clone()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        drop(conn_tx);
        let services = self.broker.services.clone();
        let config = services.config.clone();
        let flusher = config.log_flush_interval_ms.map(|ms| {
            let replicas = services.replicas.clone();
            let every =
                Duration::from_millis(ms.min(config.log_flush_scheduler_interval_ms).max(1));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let r = replicas.clone();
                    let _ = tokio::task::spawn_blocking(move || r.flush_all()).await;
                }
            })
        });
        let checkpointer = {
            let replicas = services.replicas.clone();
            let every =
                Duration::from_millis(config.replica_high_watermark_checkpoint_interval_ms.max(1));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let r = replicas.clone();
                    let written =
                        tokio::task::spawn_blocking(move || r.checkpoint_high_watermarks()).await;
                    if let Ok(Err(e)) = written {
                        tracing::error!(error = %e, "cannot checkpoint high watermarks");
                    }
                }
            })
        };
        let isr_expiration = {
            let replicas = services.replicas.clone();
            let every = replicas.isr_expiration_interval();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    replicas.maybe_shrink_isrs();
                }
            })
        };
        let timers = tokio::spawn(services.groups.clone().run_timers(stop_rx.clone()));
        let txn_timers = tokio::spawn(services.txns.clone().run_timers(stop_rx.clone()));
        let metrics_http = self.metrics.map(|socket| {
            tokio::spawn(crate::metrics::http::serve(
                socket,
                self.broker.clone(),
                stop_rx.clone(),
            ))
        });
        let log_manager = tokio::spawn(crate::log_manager::run(
            services.replicas.clone(),
            crate::log_manager::LogManagerSettings::from_config(&config),
            stop_rx.clone(),
        ));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                Some((stream, peer, listener, tls)) = conn_rx.recv() => {
                    tracing::debug!(%peer, listener = %listener.name, "accepted connection");
                    connections.spawn(crate::connection::serve(stream, peer, services.clone(), listener, crate::handlers::Plane::Client, tls, stop_rx.clone()));
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down: no longer accepting connections");
        acceptors.abort_all();
        // Controlled shutdown first (clusters): the controller moves this broker's leaderships
        // away while its open connections are still served, so clients see only retriable
        // NOT_LEADER_OR_FOLLOWER answers.
        self.broker
            .controlled_shutdown(Duration::from_secs(30))
            .await;
        if let Some(f) = flusher {
            f.abort();
        }
        checkpointer.abort();
        isr_expiration.abort();
        let _ = stop_tx.send(true);
        timers.abort();
        txn_timers.abort();
        if let Some(h) = metrics_http {
            let _ = h.await;
        }
        log_manager.abort();
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_millis(700), drain)
            .await
            .is_err()
        {
            tracing::warn!("connections still busy after 700 ms; closing them");
            connections.abort_all();
        }
        self.broker.shutdown().await;
        let _ = self.controller_stop.send(true);
        if let Some(h) = self.controller_plane {
            let _ = h.await;
        }
        tracing::info!("gregor stopped cleanly");
        Ok(())
    }
}
