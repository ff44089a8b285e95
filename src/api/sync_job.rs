//! The `SyncJob` kind: cross-tenant synchronization of users from one tenant into another (R13),
//! run by entente itself, incrementally, the same way on every backend.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CEL_GUID, CommonStatus, TenantRef};
use crate::core::model::UserType;
use crate::core::sync::{AttributeMapping, LeavingScope, SyncCounts, SyncJobState, SyncScope, SyncUserError};

/// The annotation that asks for one source user (mail, user principal name or id; several separated by
/// commas) to be provisioned now, whatever the schedule. entente removes nothing: change it to ask again.
pub const PROVISION_ON_DEMAND_ANNOTATION: &str = "entente.dev/provision-on-demand";

/// Users of the source tenant (`tenantRef`) appear in the target tenant as B2B collaboration users,
/// without invitations, kept up to date as they change and removed when they leave scope.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "SyncJob",
    doc = "Cross-tenant synchronization: users of the source tenant (spec.tenantRef) appear in the target tenant as B2B collaboration users, without invitations, kept up to date as they change and removed when they leave scope (R13).",
    namespaced,
    status = "SyncJobStatus",
    shortname = "sj",
    category = "entente",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Last run","type":"date","jsonPath":".status.lastRun"}"#,
    printcolumn = r#"{"name":"Synced","type":"integer","jsonPath":".status.usersInScope"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJobSpec {
    /// The source tenant, whose users are synchronized. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: create another SyncJob for another source"))]
    pub tenant_ref: TenantRef,
    /// The target tenant, where the users appear. entente writes there, so it must be a Tenant it manages.
    #[x_kube(validation = Rule::new("has(self.tenantRef) != has(self.tenantId)").message("give exactly one of tenantRef and tenantId"))]
    pub target: SyncTarget,
    /// Which source users are synchronized. Default: every member of the source tenant.
    #[serde(default)]
    pub scope: SyncScope,
    /// Which source properties fill which target properties. Default: displayName, givenName, surname,
    /// mail, jobTitle and department, each from the property of the same name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribute_mappings: Vec<AttributeMapping>,
    /// `userType` of the users created in the target: `Member` (default) or `Guest`.
    #[serde(default = "member")]
    pub user_type: UserType,
    /// How often the job runs, e.g. `40m` (default) or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// What happens to a target user whose source user leaves scope or is deleted: `Delete` (default;
    /// Graph keeps it restorable for 30 days), `Disable` or `Ignore`.
    #[serde(default)]
    pub on_leaving_scope: LeavingScope,
    /// Pause the job: nothing is read or written until it is resumed.
    #[serde(default)]
    pub suspend: bool,
}

fn member() -> UserType {
    UserType::Member
}

/// The target tenant: a `Tenant` object, or the id of a tenant declared by a `Tenant` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_ref: Option<TenantRef>,
    /// A tenant id (GUID); a Tenant object with this id must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 36))]
    #[x_kube(validation = Rule::new(CEL_GUID).message("must be a GUID: 8-4-4-4-12 hexadecimal digits"))]
    pub tenant_id: Option<String>,
}

/// Observed state of a `SyncJob`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncJobStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `Active`, `Paused` or `Quarantine`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SyncJobState>,
    /// Why the job is quarantined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_reason: Option<String>,
    /// When the last run ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// When the next run is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// Whether the last run read the source in full (first run, changed settings, lost cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_full: Option<bool>,
    /// What the last run did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_counts: Option<SyncCounts>,
    /// Source users currently synchronized into the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_in_scope: Option<u64>,
    /// The first errors of the last run, with the user each concerns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SyncUserError>,
    /// Settings that must change before the job may write (R12, R13).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_prerequisites: Vec<String>,
}
