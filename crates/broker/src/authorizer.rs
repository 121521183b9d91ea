//! The ACL authorizer, as Kafka's `StandardAuthorizer` (`authorizer.class.name=
//! org.apache.kafka.metadata.authorizer.StandardAuthorizer`): ACLs live in the metadata log
//! (CreateAcls/DeleteAcls commit `Acl`/`RemoveAcl` records) and every broker decides from its
//! metadata image.
//!
//! A request is allowed when the principal is in `super.users`; otherwise when no matching
//! DENY ACL exists and a matching ALLOW ACL does. An ACL matches when its resource type is the
//! requested one, its pattern matches the name (LITERAL: equal, or the `*` wildcard; PREFIXED:
//! the name starts with it), its principal is the requester or `User:*`, its host the client's
//! address or `*`, and its operation is the requested one or ALL — or, for ALLOW ACLs only, one
//! that implies it (READ, WRITE, DELETE, ALTER imply DESCRIBE; ALTER_CONFIGS implies
//! DESCRIBE_CONFIGS). With no ACL at all on the resource, `allow.everyone.if.no.acl.found`
//! decides.
//!
//! Without an authorizer configured every request is allowed and the ACL APIs answer
//! SECURITY_DISABLED, as Kafka.

use gregor_controller::state::{AclEntry, ClusterState};
use std::collections::HashSet;

/// Kafka's `StandardAuthorizer` class name, the one value of `authorizer.class.name` served.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// The cluster resource's only name.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Wildcard resource name and principal/host.
pub const WILDCARD: &str = "*";

/// Kafka's `ResourceType` wire values.
pub mod resource {
    /// Any (filters only).
    pub const ANY: i8 = 1;
    /// Topic.
    pub const TOPIC: i8 = 2;
    /// Consumer group.
    pub const GROUP: i8 = 3;
    /// The cluster.
    pub const CLUSTER: i8 = 4;
    /// Transactional id.
    pub const TRANSACTIONAL_ID: i8 = 5;
    /// Delegation token.
    pub const DELEGATION_TOKEN: i8 = 6;
    /// User.
    pub const USER: i8 = 7;
}

/// Kafka's `PatternType` wire values.
pub mod pattern {
    /// Any (filters only).
    pub const ANY: i8 = 1;
    /// Match (filters only): literal, wildcard or prefixed ACLs that apply to a name.
    pub const MATCH: i8 = 2;
    /// Literal.
    pub const LITERAL: i8 = 3;
    /// Prefixed.
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclOperation` wire values.
#[allow(missing_docs)]
pub mod op {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
    pub const TWO_PHASE_COMMIT: i8 = 15;
}

/// Kafka's `AclPermissionType` wire values.
pub mod permission {
    /// Any (filters only).
    pub const ANY: i8 = 1;
    /// Deny.
    pub const DENY: i8 = 2;
    /// Allow.
    pub const ALLOW: i8 = 3;
}

/// The operations Kafka supports per resource type (`AclEntry.supportedOperations`), used for
/// the `authorized_operations` fields.
pub fn supported_operations(resource_type: i8) -> &'static [i8] {
    use op::*;
    match resource_type {
        resource::TOPIC => &[
            READ,
            WRITE,
            CREATE,
            DESCRIBE,
            DELETE,
            ALTER,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
        ],
        resource::GROUP => &[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
        resource::CLUSTER => &[
            CREATE,
            CLUSTER_ACTION,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
            IDEMPOTENT_WRITE,
            ALTER,
            DESCRIBE,
        ],
        resource::TRANSACTIONAL_ID => &[DESCRIBE, WRITE, TWO_PHASE_COMMIT],
        resource::DELEGATION_TOKEN => &[DESCRIBE],
        resource::USER => &[CREATE_TOKENS, DESCRIBE_TOKENS],
        _ => &[],
    }
}

/// The authorizer of this broker.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
}

impl Authorizer {
    /// An authorizer; `enabled` false allows everything.
    pub fn new(enabled: bool, super_users: &str, allow_if_no_acl: bool) -> Authorizer {
        Authorizer {
            enabled,
            super_users: super_users
                .split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            allow_if_no_acl,
        }
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `principal` from `host` may perform `operation` on a resource.
    pub fn authorize(
        &self,
        image: &ClusterState,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.contains(principal) {
            return true;
        }
        let mut any_on_resource = false;
        let mut allowed = false;
        for (_, acl) in image.acls() {
            if acl.resource_type != resource_type || !pattern_matches(acl, name) {
                continue;
            }
            any_on_resource = true;
            if !(acl.principal == principal || acl.principal == "User:*") {
                continue;
            }
            if !(acl.host == host || acl.host == WILDCARD) {
                continue;
            }
            if acl.permission == permission::DENY
                && (acl.operation == operation || acl.operation == op::ALL)
            {
                return false;
            }
            if acl.permission == permission::ALLOW && implies(acl.operation, operation) {
                allowed = true;
            }
        }
        allowed || (!any_on_resource && self.allow_if_no_acl)
    }

    /// Whether `principal` may perform `operation` on at least one resource of the type (Kafka's
    /// `authorizeByResourceType`: some ALLOW ACL, literal or prefixed, not denied by a
    /// wildcard/prefixed DENY that covers every such name).
    pub fn authorize_any(
        &self,
        image: &ClusterState,
        principal: &str,
        host: &str,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        if !self.enabled || self.super_users.contains(principal) {
            return true;
        }
        let applies = |acl: &AclEntry| {
            acl.resource_type == resource_type
                && (acl.principal == principal || acl.principal == "User:*")
                && (acl.host == host || acl.host == WILDCARD)
        };
        let denied_everywhere = image.acls().any(|(_, a)| {
            applies(a)
                && a.permission == permission::DENY
                && (a.operation == operation || a.operation == op::ALL)
                && a.pattern_type == pattern::LITERAL
                && a.resource_name == WILDCARD
        });
        if denied_everywhere {
            return false;
        }
        image.acls().any(|(_, a)| {
            applies(a) && a.permission == permission::ALLOW && implies(a.operation, operation)
        })
    }

    /// The `authorized_operations` bit field of a resource for `principal` (Kafka's
    /// `Utils.to32BitField` over the supported operations that are authorized).
    pub fn authorized_operations(
        &self,
        image: &ClusterState,
        principal: &str,
        host: &str,
        resource_type: i8,
        name: &str,
    ) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|&&o| self.authorize(image, principal, host, o, resource_type, name))
            .fold(0i32, |bits, &o| bits | (1 << o))
    }
}

/// Whether an ALLOW ACL with `granted` covers `requested`.
fn implies(granted: i8, requested: i8) -> bool {
    if granted == requested || granted == op::ALL {
        return true;
    }
    match requested {
        op::DESCRIBE => matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER),
        op::DESCRIBE_CONFIGS => granted == op::ALTER_CONFIGS,
        _ => false,
    }
}

fn pattern_matches(acl: &AclEntry, name: &str) -> bool {
    match acl.pattern_type {
        pattern::LITERAL => acl.resource_name == name || acl.resource_name == WILDCARD,
        pattern::PREFIXED => name.starts_with(acl.resource_name.as_str()),
        _ => false,
    }
}

/// Whether a stored ACL matches a Describe/DeleteAcls filter.
#[allow(clippy::too_many_arguments)]
pub fn filter_matches(
    acl: &AclEntry,
    resource_type: i8,
    name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission_type: i8,
) -> bool {
    if resource_type != resource::ANY && acl.resource_type != resource_type {
        return false;
    }
    let name_ok = match (pattern_type, name) {
        (pattern::ANY, None) => true,
        (pattern::ANY, Some(n)) => acl.resource_name == n,
        (pattern::MATCH, None) => true,
        (pattern::MATCH, Some(n)) => pattern_matches(acl, n),
        (p, None) => acl.pattern_type == p,
        (p, Some(n)) => acl.pattern_type == p && acl.resource_name == n,
    };
    if !name_ok {
        return false;
    }
    if principal.is_some_and(|p| p != acl.principal) || host.is_some_and(|h| h != acl.host) {
        return false;
    }
    (operation == op::ANY || operation == acl.operation)
        && (permission_type == permission::ANY || permission_type == acl.permission)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_controller::MetadataRecord;
    use uuid::Uuid;

    fn image(acls: &[(i8, &str, i8, &str, i8, i8)]) -> ClusterState {
        let mut s = ClusterState::default();
        for (i, (rt, name, pt, principal, operation, perm)) in acls.iter().enumerate() {
            s.replay(
                i as i64,
                &MetadataRecord::Acl {
                    id: Uuid::from_u128(i as u128 + 1),
                    resource_type: *rt,
                    resource_name: name.to_string(),
                    pattern_type: *pt,
                    principal: principal.to_string(),
                    host: "*".into(),
                    operation: *operation,
                    permission: *perm,
                },
            );
        }
        s
    }

    #[test]
    fn standard_authorizer_semantics() {
        use resource::*;
        let img = image(&[
            (
                TOPIC,
                "t",
                pattern::LITERAL,
                "User:alice",
                op::READ,
                permission::ALLOW,
            ),
            (
                TOPIC,
                "app-",
                pattern::PREFIXED,
                "User:alice",
                op::WRITE,
                permission::ALLOW,
            ),
            (
                TOPIC,
                "d",
                pattern::LITERAL,
                "User:alice",
                op::ALL,
                permission::ALLOW,
            ),
            (
                TOPIC,
                "d",
                pattern::LITERAL,
                "User:alice",
                op::WRITE,
                permission::DENY,
            ),
            (
                TOPIC,
                "*",
                pattern::LITERAL,
                "User:*",
                op::DESCRIBE,
                permission::ALLOW,
            ),
        ]);
        let a = Authorizer::new(true, "User:admin", false);
        let ok = |p: &str, o: i8, n: &str| a.authorize(&img, p, "127.0.0.1", o, TOPIC, n);
        assert!(ok("User:alice", op::READ, "t"));
        assert!(!ok("User:alice", op::WRITE, "t"));
        assert!(ok("User:alice", op::WRITE, "app-x"));
        assert!(!ok("User:alice", op::WRITE, "other"));
        // READ implies DESCRIBE; the wildcard ACL gives everyone DESCRIBE.
        assert!(ok("User:bob", op::DESCRIBE, "anything"));
        // DENY wins over ALL.
        assert!(!ok("User:alice", op::WRITE, "d"));
        assert!(ok("User:alice", op::READ, "d"));
        assert!(ok("User:admin", op::DELETE, "t"));
        // No ACL on the resource type at all: allow.everyone.if.no.acl.found decides.
        assert!(!a.authorize(&img, "User:bob", "h", op::READ, GROUP, "g"));
        let open = Authorizer::new(true, "", true);
        assert!(open.authorize(&img, "User:bob", "h", op::READ, GROUP, "g"));
        assert!(!open.authorize(&img, "User:bob", "h", op::READ, TOPIC, "t"));
        assert!(a.authorize_any(&img, "User:alice", "h", op::WRITE, TOPIC));
        assert!(!a.authorize_any(&img, "User:bob", "h", op::WRITE, TOPIC));
        let off = Authorizer::default();
        assert!(off.authorize(&img, "User:bob", "h", op::ALTER, CLUSTER, CLUSTER_NAME));
    }
}
