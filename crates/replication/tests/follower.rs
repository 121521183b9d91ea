//! The follower's rules (ports of the cases in Kafka's `AbstractFetcherThreadTest` and
//! `ReplicaFetcherThreadTest` that concern the decisions).

use gregor_replication::{
    follower_append_restart_offset, follower_high_watermark, initial_fetch_offset,
    offset_truncation_state, out_of_range_action, EpochEndOffset, ErrorCode, FetchErrorAction,
    FetchPhase, FollowerLogView, FollowerState, OffsetTruncationState, OutOfRangeAction,
    UNDEFINED_EPOCH, UNKNOWN_OFFSET,
};

/// A follower epoch cache `[(epoch, start)]` with `end_offset_for` as Kafka's
/// `LeaderEpochFileCache.endOffsetFor`.
fn cache(entries: &'static [(i32, i64)], leo: i64) -> impl Fn(i32) -> Option<(i32, i64)> {
    move |epoch| {
        if epoch < 0 {
            return None;
        }
        let latest = entries.last()?;
        if latest.0 == epoch {
            return Some((epoch, leo));
        }
        let higher = entries.partition_point(|e| e.0 <= epoch);
        let next = entries.get(higher)?;
        match higher.checked_sub(1) {
            None => Some((epoch, next.1)),
            Some(floor) => Some((entries[floor].0, next.1)),
        }
    }
}

fn log(leo: i64, hw: i64, latest_epoch: Option<i32>) -> FollowerLogView {
    FollowerLogView {
        log_start_offset: 0,
        log_end_offset: leo,
        high_watermark: hw,
        latest_epoch,
    }
}

fn eeo(epoch: i32, end_offset: i64) -> EpochEndOffset {
    EpochEndOffset { epoch, end_offset }
}

fn state(offset: i64, truncation_completed: bool) -> OffsetTruncationState {
    OffsetTruncationState {
        offset,
        truncation_completed,
    }
}

#[test]
fn initial_fetch_offset_is_the_leo_with_an_epoch_else_the_hw() {
    assert_eq!(initial_fetch_offset(&log(10, 4, Some(2))), 10);
    assert_eq!(initial_fetch_offset(&log(10, 4, None)), 4);
    let s = FollowerState::new(2, 7, &log(10, 4, Some(2)));
    assert_eq!(s.phase(), FetchPhase::Fetching);
    assert_eq!(s.truncation_to_high_watermark(), None);
    let req = s.next_fetch(1).expect("fetching");
    assert_eq!(req.fetch_offset, 10);
    assert_eq!(req.last_fetched_epoch, Some(2));
    assert_eq!(req.current_leader_epoch, 7);
    assert_eq!(req.log_start_offset, 1);
    assert_eq!(s.leader_id(), 2);
    // No leader: nothing to fetch from.
    let offline = FollowerState::new(gregor_replication::NO_LEADER, 7, &log(10, 4, Some(2)));
    assert_eq!(offline.next_fetch(0), None);
    // No epoch: truncate to the HW first (truncateToHighWatermark).
    let mut s = FollowerState::new(2, 7, &log(10, 4, None));
    assert_eq!(s.phase(), FetchPhase::Truncating);
    assert_eq!(s.next_fetch(0), None);
    assert_eq!(s.truncation_to_high_watermark(), Some(state(4, true)));
    s.on_truncated(&log(4, 4, None));
    let req = s.next_fetch(0).expect("fetching");
    assert_eq!((req.fetch_offset, req.last_fetched_epoch), (4, None));
}

#[test]
fn truncation_follows_get_offset_truncation_state() {
    // Follower epochs: 1 from 0, 3 from 10, 5 from 20; LEO 30.
    let f = cache(&[(1, 0), (3, 10), (5, 20)], 30);
    // Leader replied with an undefined offset: truncate to the fetch offset.
    assert_eq!(
        offset_truncation_state(EpochEndOffset::UNDEFINED, 17, 30, &f),
        state(17, true)
    );
    // Undefined epoch (old protocol): min(leader offset, LEO).
    assert_eq!(
        offset_truncation_state(eeo(UNDEFINED_EPOCH, 25), 30, 30, &f),
        state(25, true)
    );
    assert_eq!(
        offset_truncation_state(eeo(UNDEFINED_EPOCH, 35), 30, 30, &f),
        state(30, true)
    );
    // The follower knows the epoch: min(leader end, follower end, LEO).
    assert_eq!(
        offset_truncation_state(eeo(3, 15), 30, 30, &f),
        state(15, true)
    );
    assert_eq!(
        offset_truncation_state(eeo(3, 25), 30, 30, &f),
        state(20, true)
    );
    assert_eq!(
        offset_truncation_state(eeo(5, 40), 30, 30, &f),
        state(30, true)
    );
    // The follower does not know epoch 4: the end of its largest epoch below (3 ends at
    // 20), not completed (KIP-279).
    assert_eq!(
        offset_truncation_state(eeo(4, 22), 30, 30, &f),
        state(20, false)
    );
    // The leader's epoch is below all the follower's: min(leader end, LEO).
    let g = cache(&[(3, 10), (5, 20)], 30);
    assert_eq!(
        offset_truncation_state(eeo(1, 5), 30, 30, &g),
        state(5, true)
    );
    // Nothing tracked at all.
    let none = |_: i32| None;
    assert_eq!(
        offset_truncation_state(eeo(2, 5), 30, 30, none),
        state(5, true)
    );
}

#[test]
fn multi_round_truncation_on_fetch() {
    // KIP-279's scenario: the follower has epochs 1, 2 (unknown to the leader), 3 (unknown);
    // the leader has 1 then 4. Each diverging answer truncates one step.
    let mut s = FollowerState::new(1, 4, &log(30, 0, Some(3)));
    let follower = cache(&[(1, 0), (2, 10), (3, 20)], 30);
    // Leader: epoch 1 on [0, 15), epoch 4 from 15. Asked for 3: (1, 15).
    let t = s.on_diverging_epoch(eeo(1, 15), &log(30, 0, Some(3)), &follower);
    assert_eq!(t, state(10, true), "epoch 1 ends at 10 locally");
    s.on_truncated(&log(10, 0, Some(1)));
    let req = s.next_fetch(0).expect("fetching");
    assert_eq!((req.fetch_offset, req.last_fetched_epoch), (10, Some(1)));
}

#[test]
fn out_of_range_follows_fetch_offset_and_truncate() {
    // The leader's end below the local LEO (unclean election): truncate to it.
    assert_eq!(
        out_of_range_action(0, 8, 10),
        OutOfRangeAction::TruncateTo(8)
    );
    // The leader's start past the local LEO: start over there.
    assert_eq!(
        out_of_range_action(15, 30, 10),
        OutOfRangeAction::TruncateFullyAndStartAt(15)
    );
    // Otherwise fetch from the local LEO again.
    assert_eq!(
        out_of_range_action(5, 30, 10),
        OutOfRangeAction::FetchFrom(10)
    );
    assert_eq!(
        out_of_range_action(10, 10, 10),
        OutOfRangeAction::FetchFrom(10)
    );
    let s = FollowerState::new(1, 4, &log(10, 0, Some(3)));
    assert_eq!(
        s.on_offset_out_of_range(15, 30, &log(10, 0, Some(3))),
        OutOfRangeAction::TruncateFullyAndStartAt(15)
    );
}

#[test]
fn an_empty_log_starts_over_at_the_leaders_first_batch() {
    let empty_at_32 = FollowerLogView {
        log_start_offset: 32,
        ..log(32, 32, None)
    };
    assert_eq!(
        follower_append_restart_offset(31, 33, &empty_at_32),
        Some(31)
    );
    assert_eq!(follower_append_restart_offset(31, 31, &empty_at_32), None);
    assert_eq!(follower_append_restart_offset(32, 33, &empty_at_32), None);
    // A log with records does not start over.
    assert_eq!(
        follower_append_restart_offset(31, 33, &log(32, 32, Some(1))),
        None
    );
}

#[test]
fn follower_high_watermark_is_bounded() {
    assert_eq!(follower_high_watermark(10, 0, 20), 10);
    assert_eq!(follower_high_watermark(30, 0, 20), 20);
    assert_eq!(follower_high_watermark(3, 5, 20), 5);
    assert_eq!(follower_high_watermark(UNKNOWN_OFFSET, 0, 20), 0);
}

#[test]
fn stale_responses_and_errors() {
    let mut s = FollowerState::new(1, 4, &log(10, 0, Some(3)));
    let req = s.next_fetch(0).expect("fetching");
    assert!(s.is_current(&req));
    s.on_appended(&log(12, 10, Some(4)));
    assert!(!s.is_current(&req), "the fetch offset moved on");
    assert_eq!(s.fetch_offset(), 12);
    assert_eq!(s.last_fetched_epoch(), Some(4));
    let req = s.next_fetch(0).expect("fetching");
    assert_eq!(
        s.on_fetch_error(&req, ErrorCode::OffsetOutOfRange),
        FetchErrorAction::ResolveOutOfRange
    );
    for e in [
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::UnknownTopicOrPartition,
    ] {
        assert_eq!(s.on_fetch_error(&req, e), FetchErrorAction::Backoff);
    }
    // Fenced for an older request: retry; for the current epoch: failed until new metadata.
    let older = gregor_replication::FetchPartitionRequest {
        current_leader_epoch: 3,
        ..req
    };
    assert_eq!(
        s.on_fetch_error(&older, ErrorCode::FencedLeaderEpoch),
        FetchErrorAction::Backoff
    );
    assert_eq!(
        s.on_fetch_error(&req, ErrorCode::FencedLeaderEpoch),
        FetchErrorAction::Failed
    );
    assert_eq!(s.phase(), FetchPhase::Failed);
    assert_eq!(s.next_fetch(0), None);
    assert!(!s.is_current(&req));
}
