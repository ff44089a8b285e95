//! Directory backends: where tenants, guests and policies actually live.
//!
//! Every backend implements one contract (`Directory`): read a tenant in bulk without writing
//! (`snapshot`), then execute the operations of one planned change (`apply`), each idempotent.
//! The CLI and the controller only ever talk to this trait.

pub mod graph;
pub mod inventory;
pub mod local;
pub mod state_file;

use async_trait::async_trait;

use std::collections::BTreeSet;

use crate::core::model::TenantSnapshot;
use crate::core::operation::{Operation, Outcome};
use crate::core::policy::Refusal;
use crate::core::sync::{DirectoryUser, UserChanges};

/// What the manifests name in one tenant, for `Directory::snapshot_of`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotScope {
    /// Display names of the groups the Tenant declares and its guests belong to.
    pub groups: BTreeSet<String>,
    /// The kinds the manifests manage in the tenant; `None`: all. A backend that reads kinds separately
    /// (Graph) skips the others unless it holds ownership records of them, so a drift check reads only
    /// what it compares and needs no permission for what it does not manage.
    pub kinds: Option<BTreeSet<crate::core::model::Kind>>,
}

impl SnapshotScope {
    /// A tenant's settings and partner configurations (with its guests), for what sync jobs check.
    pub fn settings() -> Self {
        use crate::core::model::Kind;
        SnapshotScope {
            groups: BTreeSet::new(),
            kinds: Some([Kind::Tenant, Kind::CrossTenantAccessPolicy, Kind::SyncJob].into()),
        }
    }

    pub fn reads(&self, kind: crate::core::model::Kind) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&kind))
    }
}

#[async_trait]
pub trait Directory: Send + Sync {
    /// Reads everything the planner needs about one tenant, in a few bulk reads and no writes.
    /// `Ok(None)` when the directory has no such tenant.
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError>;

    /// `snapshot`, told what the manifests name in the tenant. A backend that reads part of a tenant on
    /// demand (Graph reads group memberships group by group) reads what `scope` names too, so that what
    /// exists but entente does not manage yet (a guest about to be adopted, already in its groups) is seen
    /// as it is. The default reads the whole tenant anyway.
    async fn snapshot_of(&self, tenant_id: &str, scope: &SnapshotScope) -> Result<Option<TenantSnapshot>, DirectoryError> {
        let _ = scope;
        self.snapshot(tenant_id).await
    }

    /// Executes the operations of one change, in order, and returns one outcome per operation.
    /// Backends that can (the local directory) do it atomically: all or nothing.
    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError>;

    /// For cross-tenant sync (R13): the tenant's users created, changed or deleted since `cursor`, with
    /// the properties a sync maps; every user when `cursor` is `None` or the directory dropped it.
    /// The cost follows the number of changes, not the number of users.
    async fn user_changes(&self, tenant_id: &str, cursor: Option<&str>) -> Result<UserChanges, DirectoryError>;

    /// For cross-tenant sync: the users with these ids (absent ones are left out). Users named by mail
    /// or user principal name are the engine's to resolve (`sync::run`, provision on demand).
    async fn users_by_id(&self, tenant_id: &str, ids: &[String]) -> Result<Vec<DirectoryUser>, DirectoryError>;

    /// For cross-tenant sync: the ids of the members of the group with this display name, `None` when
    /// the tenant has no such group.
    async fn group_member_ids(&self, tenant_id: &str, group: &str) -> Result<Option<BTreeSet<String>>, DirectoryError>;

    /// For cross-tenant sync: how the membership of the group with this display name changed since
    /// `cursor` (Graph: `/groups/delta` with `members@delta`), `None` when the tenant has no such group.
    /// Without a cursor, or when the directory refuses it (expired), the answer is the whole membership
    /// (`full`). By default the whole membership every time, through `group_member_ids`.
    async fn group_member_changes(
        &self,
        tenant_id: &str,
        group: &str,
        cursor: Option<&str>,
    ) -> Result<Option<MemberChanges>, DirectoryError> {
        let _ = cursor;
        Ok(self.group_member_ids(tenant_id, group).await?.map(|ids| MemberChanges {
            added: ids,
            removed: BTreeSet::new(),
            cursor: None,
            full: true,
        }))
    }
}

/// What `Directory::group_member_changes` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberChanges {
    /// Members added since the cursor; with `full`, every member.
    pub added: BTreeSet<String>,
    /// Members removed since the cursor (never with `full`).
    pub removed: BTreeSet<String>,
    /// Where the next call starts; `None` when the directory keeps no cursor (every answer is full).
    pub cursor: Option<String>,
    /// The answer is the complete membership (no cursor, or the directory refused it).
    pub full: bool,
}

/// Errors of the directory layer. `category()` is the fixed label used in metrics and event reasons.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A product rule refused the request (an invitation refused by R3–R5, R9).
    #[error("{0}")]
    Refused(Refusal),
    #[error("tenant {0} does not exist in the directory")]
    TenantNotFound(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("directory storage failed: {0}")]
    Storage(String),
    #[error("not implemented: {0}")]
    NotImplemented(String),
    /// Microsoft Graph (or the emulator) answered with an error, after retries where retrying made sense.
    #[error("{0}")]
    Graph(Box<GraphFailure>),
    /// No answer at all (connection refused or dropped, timeout), after bounded retries.
    #[error("transport: {0}")]
    Transport(String),
    /// Signing in to the directory failed (token endpoint, credentials, federated token file).
    #[error("authentication failed: {0}")]
    Auth(String),
}

/// An error answer from Graph: what the request was, and Graph's own `code`, message and `request-id`
/// (what Microsoft support asks for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphFailure {
    pub method: String,
    /// The request path, without the host.
    pub path: String,
    pub status: u16,
    /// `error.code`, e.g. `Request_ResourceNotFound`; `""` when the body was not an OData error.
    pub code: String,
    /// `error.details[0].code`, when present.
    pub detail_code: Option<String>,
    pub message: String,
    /// `innerError.request-id` (or the `request-id` header).
    pub request_id: Option<String>,
}

impl std::fmt::Display for GraphFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Graph answered {} to {} {}: {}", self.status, self.method, self.path, self.code)?;
        if let Some(d) = &self.detail_code {
            write!(f, " ({d})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request-id {id}]")?;
        }
        Ok(())
    }
}

impl GraphFailure {
    /// A fixed label by status class, for metrics and event reasons.
    pub fn category(&self) -> &'static str {
        match self.status {
            400 => "GraphBadRequest",
            401 => "GraphUnauthorized",
            403 => "GraphForbidden",
            404 => "GraphNotFound",
            409 => "GraphConflict",
            429 => "GraphThrottled",
            500..=599 => "GraphUnavailable",
            _ => "GraphError",
        }
    }
}

impl DirectoryError {
    pub fn category(&self) -> &'static str {
        match self {
            DirectoryError::Refused(r) => r.reason.as_str(),
            DirectoryError::TenantNotFound(_) => "TenantNotFound",
            DirectoryError::NotFound(_) => "NotFound",
            DirectoryError::Conflict(_) => "Conflict",
            DirectoryError::Invalid(_) => "Invalid",
            DirectoryError::Storage(_) => "Storage",
            DirectoryError::NotImplemented(_) => "NotImplemented",
            DirectoryError::Graph(g) => g.category(),
            DirectoryError::Transport(_) => "Transport",
            DirectoryError::Auth(_) => "Authentication",
        }
    }
}
