//! # gregor-group-coordinator
//!
//! Consumer groups and committed offsets as a pure state machine, in the style of Apache Kafka's
//! `group-coordinator` module: every handler takes a request and the current time (an injected
//! [`Clock`]) and returns a [`CoordinatorResult`] — the records to persist in the
//! `__consumer_offsets` topic plus the response — and a `replay` path rebuilds the state from
//! those records on start. No sockets, no threads, no wall clock.
//!
//! This crate currently holds only that public shape; the group protocols (classic and KIP-848)
//! are the next piece of work. Group states, as Kafka names them, are already defined in
//! [`GroupState`].

/// Milliseconds since the Unix epoch, as the coordinator sees time.
pub trait Clock {
    /// Current time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The output of every coordinator handler: records to append to `__consumer_offsets` (the
/// response may only be sent once they are durable) and the response itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorResult<R, Resp> {
    /// Records to persist, in order.
    pub records: Vec<R>,
    /// The response to send after the records are persisted.
    pub response: Resp,
}

/// Classic group states, as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment (SyncGroup).
    CompletingRebalance,
    /// Members hold their assignment and heartbeat.
    Stable,
    /// The group has no members and no offsets, or was deleted.
    Dead,
}

impl GroupState {
    /// Kafka's display name of the state (as DescribeGroups and ListGroups return it).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState;

    #[test]
    fn state_names_match_kafka() {
        assert_eq!(
            GroupState::CompletingRebalance.as_str(),
            "CompletingRebalance"
        );
        assert_eq!(GroupState::Empty.as_str(), "Empty");
    }
}
