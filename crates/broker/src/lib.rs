//! # gregor-broker
//!
//! The `gregor` binary: a Kafka-wire-compatible broker. This is the only crate with sockets.
//!
//! A tour of the modules:
//! - [`config`]: Kafka config names, types and defaults; `server.properties` + `--override`.
//! - [`env_config`]: `KAFKA_*` environment variables mapped as the apache/kafka Docker image does.
//! - [`healthcheck`]: `gregor healthcheck`, the container health check (ApiVersions).
//! - [`server`]: binds listeners, accepts connections, clean shutdown.
//! - [`connection`]: one task per connection: framing, header decoding, in-order dispatch.
//! - [`handlers`]: one module per Kafka API with its declared version range; the table that
//!   ApiVersions advertises.
//! - [`broker`]: shared state — the controller, the open partition logs, start-up recovery.
//! - [`groups`]: the group coordinator's I/O: `__consumer_offsets`, deferred responses, timers.
//! - [`sendfile`]: the zero-copy Fetch writer.
//! - [`errors`]: the one mapping from storage/controller errors to Kafka error codes.

pub mod broker;
pub mod config;
pub mod connection;
pub mod env_config;
pub mod errors;
pub mod groups;
pub mod handlers;
pub mod healthcheck;
pub mod sendfile;
pub mod server;
