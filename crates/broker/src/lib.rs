//! # gregor-broker
//!
//! The `gregor` binary: a Kafka-wire-compatible broker. This is the only crate with sockets.
//!
//! A tour of the modules, from the edge inwards (`docs/architecture.md` has the pictures):
//! - [`server`]: binds listeners, accepts connections, starts the background tasks, clean
//!   shutdown.
//! - [`connection`]: one task per connection: framing, header decoding, in-order dispatch.
//! - [`handlers`]: one module per Kafka API with its declared version range, and the one table
//!   (`apis!`) that both ApiVersions and dispatch are built from. Handlers get a
//!   [`handlers::Ctx`] with the [`services`], never the broker as a whole.
//! - [`broker`]: the composition root: opens the log directory and wires the services.
//! - [`services`]: the service handles handlers use.
//! - [`metadata_cache`]: the published metadata image (topics, brokers, configs) read without
//!   locks.
//! - [`metadata_log`]: the replicated metadata log on a controller: the quorum's state machine
//!   and the journal brokers follow.
//! - [`broker_lifecycle`]: registration with the active controller, heartbeats, fencing,
//!   controlled shutdown.
//! - [`quorum_controller`]: this node's controller: a member of the raft quorum (openraft, via
//!   `gregor-quorum`) that, when active, runs the metadata commands and the broker sessions.
//! - [`controller`]: the channel through which the broker changes metadata: its own active
//!   controller, or the active one over the controller listener; waits until applied here.
//! - [`metadata_follower`]: the broker following the metadata log (local or remote) and
//!   publishing images.
//! - [`replica_manager`]: the only owner of partitions: logs with leader, leader epoch, replicas,
//!   ISR and a checkpointed high watermark; leader appends, the acks=all wait.
//! - [`coordinator_runtime`]: one generic runtime for coordinators sharded by internal-topic
//!   partition: load/unload on leadership, durable writes before answers, timers.
//! - [`group_service`] / [`txn_service`]: the group and transaction coordinators on that runtime;
//!   [`markers`]: transaction markers; [`producer_ids`]: producer-id blocks.
//! - [`topic_config`]: topic configs resolved into log and produce settings.
//! - [`config`]: Kafka config names, types and defaults; `server.properties` + `--override`.
//! - [`configs`]: topic/broker config resolution (topic override, dynamic broker, dynamic
//!   default, static, default) for DescribeConfigs, the log and Produce.
//! - [`env_config`]: `KAFKA_*` environment variables mapped as the apache/kafka Docker image does.
//! - [`log_manager`]: background retention (segment deletion, `segment.ms` rolls) and the
//!   log cleaner (compaction), off the request path; [`cleaner_codec`]: the record codec the
//!   cleaner reads and rebuilds batches with.
//! - [`sendfile`]: the zero-copy Fetch writer.
//! - [`metrics`]: Prometheus `/metrics` (Kafka JMX-exporter names), per-request counters and
//!   the slow-request clock.
//! - [`errors`]: the one mapping from storage/controller errors to Kafka error codes.
//! - [`clock`], [`limits`]: the wall clock and broker-wide limits (leaves).
//! - [`rpc_client`]: the Kafka-wire client for traffic to other nodes (controller RPCs, replica
//!   fetches, forwarded requests, private raft RPCs): pipelined per-node channels with ApiVersions
//!   negotiation, timeouts and reconnects, pooled by node id (a leaf).
//! - [`healthcheck`]: `gregor healthcheck`, the container health check (ApiVersions).
//! - [`cli`]: `gregor topics|produce|consume|groups`, an rpk-like client for any Kafka broker.
//!
//! Layering (checked by the `module_layering` test): a module only uses modules listed after
//! it in the `LAYERS` table of that test; no module uses `server`, `connection` or `broker`
//! except the ones above them.

pub mod authorizer;
pub mod broker;
pub mod broker_lifecycle;
pub mod cleaner_codec;
pub mod cli;
pub mod clock;
pub mod config;
pub mod configs;
pub mod connection;
pub mod controller;
pub mod coordinator_runtime;
pub mod env_config;
pub mod errors;
pub mod group_service;
pub mod handlers;
pub mod healthcheck;
pub mod limits;
pub mod log_manager;
pub mod markers;
pub mod metadata_cache;
pub mod metadata_follower;
pub mod metadata_log;
pub mod metrics;
pub mod producer_ids;
pub mod quorum_controller;
pub mod quotas;
pub mod replica_manager;
pub mod rpc_client;
pub mod sendfile;
pub mod server;
pub mod services;
pub mod tls;
pub mod topic_config;
pub mod txn_service;
