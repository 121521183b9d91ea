//! # gregor-broker
//!
//! The `gregor` binary: a Kafka-wire-compatible broker. This is the only crate with sockets.
//!
//! A tour of the modules:
//! - [`config`]: Kafka config names, types and defaults; `server.properties` + `--override`.
//! - [`configs`]: topic/broker config resolution (topic override, dynamic broker, dynamic
//!   default, static, default) for DescribeConfigs, the log and Produce.
//! - [`env_config`]: `KAFKA_*` environment variables mapped as the apache/kafka Docker image does.
//! - [`healthcheck`]: `gregor healthcheck`, the container health check (ApiVersions).
//! - [`server`]: binds listeners, accepts connections, clean shutdown.
//! - [`connection`]: one task per connection: framing, header decoding, in-order dispatch.
//! - [`handlers`]: one module per Kafka API with its declared version range; the table that
//!   ApiVersions advertises.
//! - [`broker`]: shared state — the controller, the open partition logs, start-up recovery.
//! - [`groups`]: the group coordinator's I/O: `__consumer_offsets`, deferred responses, timers.
//! - [`sendfile`]: the zero-copy Fetch writer.
//! - [`metrics`]: Prometheus `/metrics` (Kafka JMX-exporter names), per-request counters and
//!   the slow-request clock.
//! - [`errors`]: the one mapping from storage/controller errors to Kafka error codes.
//! - [`cli`]: `gregor topics|produce|consume|groups`, an rpk-like client for any Kafka broker.
//! - [`log_manager`]: background retention (segment deletion, `segment.ms` rolls) and the
//!   log cleaner (compaction), off the request path.
//! - [`cleaner_codec`]: the record codec the log cleaner uses to read and rebuild batches.
//! - [`txns`]: the transaction coordinator's I/O (`__transaction_state`, markers, timeouts)
//!   around the pure `gregor-txn-coordinator` state machine.

pub mod broker;
pub mod cleaner_codec;
pub mod cli;
pub mod config;
pub mod configs;
pub mod connection;
pub mod env_config;
pub mod errors;
pub mod groups;
pub mod handlers;
pub mod healthcheck;
pub mod log_manager;
pub mod metrics;
pub mod sendfile;
pub mod server;
pub mod txns;
