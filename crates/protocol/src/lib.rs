//! # gregor-protocol
//!
//! The Kafka wire protocol as Gregor speaks it. Pure code: no tokio, no filesystem.
//!
//! A tour of the modules:
//! - [`frame`]: length-prefixed framing (`check` a buffer for a complete frame, then take it),
//!   with the `socket.request.max.bytes` limit enforced before anything is allocated.
//! - [`request`]: request header and body decoding on top of the `kafka-protocol` crate, guarded
//!   against hostile input (short frames, unknown API keys, array counts larger than the frame).
//! - [`fetch`]: the Fetch response encoder that leaves record data to `sendfile`.
//! - [`internal`]: Gregor's private APIs between cluster nodes (raft, metadata fetch, forwarded
//!   controller commands): keys, header versions, framing.
//! - [`response`]: response framing (size prefix, header version per API, ApiVersions' v0 header).
//! - [`throttle`]: `throttle_time_ms` of every response type, raised when a quota throttles.
//! - [`record_batch`]: a zero-copy view over a RecordBatch v2 (`Bytes`): header fields, CRC-32C
//!   check, record framing and offset-delta validation, record decoding, and a builder.
//! - [`compression`]: the four codecs (gzip, snappy incl. xerial framing, lz4 frame, zstd) behind
//!   one [`Compression`] type, with capped streaming decompression.
//! - [`varint`]: Kafka's zig-zag varints.
//! - [`error`]: [`ErrorCode`], every Kafka error code by name.
//!
//! The message structs themselves come from `kafka-protocol` (re-exported as [`messages`]); the
//! workspace vendors a copy patched so that array counts are checked against the bytes left.

pub mod compression;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod internal;
pub mod record_batch;
pub mod request;
pub mod response;
pub mod throttle;
pub mod varint;

pub use compression::Compression;
pub use error::ErrorCode;
pub use record_batch::{BatchError, Record, RecordBatch, RecordBatchBuilder, RecordHeader};

/// The `kafka-protocol` crate's generated message types.
pub use kafka_protocol::messages;
/// Protocol primitives of the `kafka-protocol` crate (`StrBytes`, `Encodable`, ...).
pub use kafka_protocol::protocol;
