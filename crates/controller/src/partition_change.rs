//! [`PartitionChangeBuilder`]: Kafka's `PartitionChangeBuilder` (metadata/.../controller/
//! PartitionChangeBuilder.java) without ELR and log directories, at the latest metadata
//! version (leader recovery supported; no leader epoch bump on ISR shrink, KAFKA-15021).
//!
//! Given a partition and target ISR / replicas / reassignment state, it completes a
//! reassignment when the ISR allows it, elects a leader, and returns the
//! [`MetadataRecord::PartitionChange`] delta, or `None` when nothing changes.

use crate::records::{LeaderRecoveryState, MetadataRecord, NO_LEADER};
use crate::state::PartitionRegistration;
use uuid::Uuid;

/// How a leader is elected (Kafka's `PartitionChangeBuilder.Election`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Election {
    /// The preferred (first) replica if it is an acceptable ISR member; else keep the current
    /// leader if acceptable; else the first acceptable ISR member.
    Preferred,
    /// Keep the current leader if acceptable; else the first acceptable ISR member (in
    /// replica order).
    Online,
    /// As `Online`, then any acceptable replica outside the ISR: the ISR becomes `{leader}`
    /// and the leader RECOVERING.
    Unclean,
}

/// Builds one partition's change record.
pub(crate) struct PartitionChangeBuilder<'a, F: Fn(i32) -> bool> {
    partition: &'a PartitionRegistration,
    topic_id: Uuid,
    partition_id: i32,
    is_acceptable_leader: F,
    election: Election,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
    target_leader_recovery_state: LeaderRecoveryState,
}

struct ElectionResult {
    node: i32,
    unclean: bool,
}

/// The fields of a `PartitionChange` being built (`None`: unchanged).
#[derive(Default)]
struct Change {
    isr: Option<Vec<i32>>,
    leader: Option<i32>,
    replicas: Option<Vec<i32>>,
    removing_replicas: Option<Vec<i32>>,
    adding_replicas: Option<Vec<i32>>,
    leader_recovery_state: Option<LeaderRecoveryState>,
}

impl<'a, F: Fn(i32) -> bool> PartitionChangeBuilder<'a, F> {
    /// A builder whose targets are the partition's current state; `is_acceptable_leader`
    /// says which brokers may lead (Kafka's `LeaderAcceptor`).
    pub(crate) fn new(
        partition: &'a PartitionRegistration,
        topic_id: Uuid,
        partition_id: i32,
        is_acceptable_leader: F,
    ) -> Self {
        PartitionChangeBuilder {
            partition,
            topic_id,
            partition_id,
            is_acceptable_leader,
            election: Election::Online,
            target_isr: partition.isr.clone(),
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
            target_leader_recovery_state: partition.leader_recovery_state,
        }
    }

    pub(crate) fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    pub(crate) fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    pub(crate) fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    pub(crate) fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    pub(crate) fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    pub(crate) fn target_leader_recovery_state(mut self, state: LeaderRecoveryState) -> Self {
        self.target_leader_recovery_state = state;
        self
    }

    fn is_valid_new_leader(&self, replica: i32) -> bool {
        self.target_isr.contains(&replica) && (self.is_acceptable_leader)(replica)
    }

    fn elect_leader(&self) -> ElectionResult {
        let clean = |node| ElectionResult {
            node,
            unclean: false,
        };
        if self.election == Election::Preferred {
            let Some(&preferred) = self.target_replicas.first() else {
                return clean(NO_LEADER);
            };
            if self.is_valid_new_leader(preferred) {
                return clean(preferred);
            }
            if self.is_valid_new_leader(self.partition.leader) {
                return clean(self.partition.leader);
            }
            return match self
                .target_replicas
                .iter()
                .skip(1)
                .find(|r| self.is_valid_new_leader(**r))
            {
                Some(r) => clean(*r),
                None => clean(NO_LEADER),
            };
        }
        if self.is_valid_new_leader(self.partition.leader) {
            return clean(self.partition.leader);
        }
        if let Some(r) = self
            .target_replicas
            .iter()
            .find(|r| self.is_valid_new_leader(**r))
        {
            return clean(*r);
        }
        if self.election == Election::Unclean {
            if let Some(r) = self
                .target_replicas
                .iter()
                .find(|r| (self.is_acceptable_leader)(**r))
            {
                return ElectionResult {
                    node: *r,
                    unclean: true,
                };
            }
        }
        clean(NO_LEADER)
    }

    fn try_election(&self, change: &mut Change) {
        let result = self.elect_leader();
        if result.node != self.partition.leader {
            change.leader = Some(result.node);
            if result.unclean {
                // An unclean election forces the ISR to the new leader alone: data may be lost.
                change.isr = Some(vec![result.node]);
                if self.partition.leader_recovery_state != LeaderRecoveryState::Recovering {
                    change.leader_recovery_state = Some(LeaderRecoveryState::Recovering);
                }
            }
        }
    }

    /// A replica leaving the replica set must see a new leader epoch.
    fn trigger_leader_epoch_bump_for_reassignment(&self, change: &mut Change) {
        if change.leader.is_some() {
            return;
        }
        if !self
            .partition
            .replicas
            .iter()
            .all(|r| self.target_replicas.contains(r))
        {
            change.leader = Some(self.partition.leader);
        }
    }

    /// Kafka's `PartitionReassignmentReplicas.maybeCompleteReassignment`.
    fn complete_reassignment_if_needed(&mut self) {
        if self.target_removing.is_empty() && self.target_adding.is_empty() {
            return;
        }
        let mut new_isr = self.target_isr.clone();
        let mut new_replicas = self.target_replicas.clone();
        if !self.target_removing.is_empty() {
            new_isr.retain(|r| !self.target_removing.contains(r));
            if new_isr.is_empty() {
                return;
            }
            new_replicas.retain(|r| !self.target_removing.contains(r));
            if new_replicas.is_empty() {
                return;
            }
        }
        if !new_replicas.iter().all(|r| new_isr.contains(r)) {
            return;
        }
        self.target_isr = new_isr;
        self.target_replicas = new_replicas;
        self.target_removing.clear();
        self.target_adding.clear();
    }

    /// The change record, or `None` when nothing changes.
    pub(crate) fn build(mut self) -> Option<MetadataRecord> {
        let mut change = Change::default();
        self.complete_reassignment_if_needed();
        self.try_election(&mut change);
        self.trigger_leader_epoch_bump_for_reassignment(&mut change);
        // Without ELR the ISR never becomes empty: when its last member goes, it stays.
        if change.isr.is_none()
            && !self.target_isr.is_empty()
            && self.target_isr != self.partition.isr
        {
            change.isr = Some(self.target_isr.clone());
        }
        if !self.target_replicas.is_empty() && self.target_replicas != self.partition.replicas {
            change.replicas = Some(self.target_replicas.clone());
        }
        if self.target_removing != self.partition.removing_replicas {
            change.removing_replicas = Some(self.target_removing.clone());
        }
        if self.target_adding != self.partition.adding_replicas {
            change.adding_replicas = Some(self.target_adding.clone());
        }
        if self.target_leader_recovery_state != self.partition.leader_recovery_state {
            change.leader_recovery_state = Some(self.target_leader_recovery_state);
        }
        let Change {
            isr,
            leader,
            replicas,
            removing_replicas,
            adding_replicas,
            leader_recovery_state,
        } = change;
        if isr.is_none()
            && leader.is_none()
            && replicas.is_none()
            && removing_replicas.is_none()
            && adding_replicas.is_none()
            && leader_recovery_state.is_none()
        {
            return None;
        }
        Some(MetadataRecord::PartitionChange {
            topic_id: self.topic_id,
            partition: self.partition_id,
            isr,
            leader,
            replicas,
            removing_replicas,
            adding_replicas,
            leader_recovery_state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader,
            leader_recovery_state: LeaderRecoveryState::Recovered,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    fn fields(r: Option<MetadataRecord>) -> Option<(Option<Vec<i32>>, Option<i32>)> {
        match r? {
            MetadataRecord::PartitionChange { isr, leader, .. } => Some((isr, leader)),
            _ => unreachable!(),
        }
    }

    #[test]
    fn online_keeps_an_acceptable_leader_and_otherwise_takes_the_first_isr_member() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 1);
        let b = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |_| true);
        assert!(b.build().is_none());
        // Leader 1 unacceptable: 2 is the first acceptable ISR member in replica order.
        let b = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |r| r != 1).target_isr(vec![3, 2]);
        assert_eq!(fields(b.build()), Some((Some(vec![3, 2]), Some(2))));
    }

    #[test]
    fn last_isr_member_stays_and_the_partition_goes_offline() {
        let p = part(&[1, 2], &[1], 1);
        let b = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |r| r != 1).target_isr(vec![]);
        assert_eq!(fields(b.build()), Some((None, Some(NO_LEADER))));
    }

    #[test]
    fn unclean_election_forces_isr_and_recovering() {
        let p = part(&[1, 2], &[1], NO_LEADER);
        let b =
            PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |r| r == 2).election(Election::Unclean);
        match b.build() {
            Some(MetadataRecord::PartitionChange {
                isr,
                leader,
                leader_recovery_state,
                ..
            }) => {
                assert_eq!(isr, Some(vec![2]));
                assert_eq!(leader, Some(2));
                assert_eq!(leader_recovery_state, Some(LeaderRecoveryState::Recovering));
            }
            other => panic!("{other:?}"),
        }
        let b = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |r| r == 2);
        assert!(b.build().is_none());
    }

    #[test]
    fn preferred_election() {
        let p = part(&[1, 2], &[1, 2], 2);
        let b =
            PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |_| true).election(Election::Preferred);
        assert_eq!(fields(b.build()), Some((None, Some(1))));
        let b = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |r| r != 1)
            .election(Election::Preferred);
        assert!(b.build().is_none());
    }

    #[test]
    fn reassignment_completes_when_isr_holds_the_targets() {
        let mut p = part(&[1, 2, 3], &[1, 2, 3], 1);
        p.removing_replicas = vec![1];
        p.adding_replicas = vec![3];
        let b = PartitionChangeBuilder::new(&p, Uuid::nil(), 0, |_| true);
        match b.build() {
            Some(MetadataRecord::PartitionChange {
                isr,
                leader,
                replicas,
                removing_replicas,
                adding_replicas,
                ..
            }) => {
                assert_eq!(isr, Some(vec![2, 3]));
                assert_eq!(leader, Some(2));
                assert_eq!(replicas, Some(vec![2, 3]));
                assert_eq!(removing_replicas, Some(vec![]));
                assert_eq!(adding_replicas, Some(vec![]));
            }
            other => panic!("{other:?}"),
        }
    }
}
