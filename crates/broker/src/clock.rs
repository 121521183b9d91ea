//! Wall-clock time for the broker: the one place the broker reads `SystemTime`. The pure crates
//! (storage, the coordinators, the controller) never read a clock; the broker passes them
//! `now_ms` or an injected clock.

/// Milliseconds since the Unix epoch (Kafka's `time.milliseconds()`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
