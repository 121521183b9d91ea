//! Broker-wide limits that more than one layer enforces.

/// Cap on the decompressed size of one record batch when the broker looks inside it (Produce
/// validation, ListOffsets by timestamp, coordinator log replay), so that a small compressed
/// batch cannot make the broker allocate without bound.
pub const MAX_DECOMPRESSED_BATCH: usize = 128 * 1024 * 1024;
