//! The `MultiTenantOrganization` kind (R15): a named set of tenants, one of them the owner. entente
//! creates the organization in the owner, joins every member it manages, and generates for each ordered
//! pair of managed members a partner configuration (automatic redemption, inbound user sync, marked
//! `isInMultiTenantOrganization`) and a sync job.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CEL_GUID, CommonStatus, TenantRef};
use crate::core::model::UserType;
use crate::core::mto::{MtoMemberState, MtoRole};
use crate::core::settings::CrossTenantAccessSettings;
use crate::core::sync::{AttributeMapping, LeavingScope, SyncCounts, SyncJobState, SyncScope};

/// A multi-tenant organization: its owner, its members, and what entente generates between them.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "MultiTenantOrganization",
    doc = "A multi-tenant organization: its owner, its members, and the partner configurations and sync jobs entente generates between every pair of members (R15).",
    namespaced,
    status = "MultiTenantOrganizationStatus",
    shortname = "mto",
    category = "entente",
    printcolumn = r#"{"name":"Owner","type":"string","jsonPath":".spec.owner.tenantRef.name"}"#,
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MultiTenantOrganizationSpec {
    /// The organization's name, as the owner tenant shows it.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// The tenant that owns the organization: a Tenant entente manages. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: an organization cannot change its owner"))]
    pub owner: MtoOwner,
    /// The members besides the owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub members: Vec<MtoMemberSpec>,
    /// Extra cross-tenant access settings for every generated partner configuration (like a
    /// CrossTenantAccessPolicy's). Automatic redemption is always allowed both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_configuration: Option<CrossTenantAccessSettings>,
    /// The sync jobs generated for each ordered pair of managed members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_jobs: Option<MtoSyncJobsSpec>,
}

/// The owner tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MtoOwner {
    pub tenant_ref: TenantRef,
}

/// A member: a Tenant entente manages (`tenantRef`) or a tenant it does not (`tenantId`), which stays
/// pending until it joins by itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.tenantRef) != has(self.tenantId)").message("give exactly one of tenantRef and tenantId"))]
pub struct MtoMemberSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_ref: Option<TenantRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 36))]
    #[x_kube(validation = Rule::new(CEL_GUID).message("must be a GUID: 8-4-4-4-12 hexadecimal digits"))]
    pub tenant_id: Option<String>,
    /// How the owner lists the member. Default: the Tenant's display name (none for a tenantId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// The generated sync jobs: a template, and exceptions per ordered pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MtoSyncJobsSpec {
    /// Whether a job is generated for every pair (default true); an override may say otherwise for one pair.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SyncJobTemplateSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<SyncJobOverrideSpec>,
}

fn yes() -> bool {
    true
}

/// The fields of a SyncJob's spec besides its tenants; absent ones take the SyncJob defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJobTemplateSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<SyncScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_mappings: Option<Vec<AttributeMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    /// e.g. `40m` (default) or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_leaving_scope: Option<LeavingScope>,
}

/// The job from one managed member to another: disabled, or with some template fields replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncJobOverrideSpec {
    /// The source Tenant.
    pub from: TenantRef,
    /// The target Tenant.
    pub to: TenantRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<SyncScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_mappings: Option<Vec<AttributeMapping>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_leaving_scope: Option<LeavingScope>,
}

impl SyncJobOverrideSpec {
    /// The template fields of the override.
    pub fn template(&self) -> SyncJobTemplateSpec {
        SyncJobTemplateSpec {
            scope: self.scope.clone(),
            attribute_mappings: self.attribute_mappings.clone(),
            user_type: self.user_type,
            interval: self.interval.clone(),
            on_leaving_scope: self.on_leaving_scope,
        }
    }
}

/// Observed state of a `MultiTenantOrganization`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiTenantOrganizationStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Each tenant of the organization as the owner lists it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MtoMemberStatus>,
    /// The partner configurations the organization generates, one per ordered pair of managed members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partner_configurations: Vec<MtoPartnerStatus>,
    /// The sync jobs the organization generates, with their last run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_jobs: Vec<MtoSyncJobStatus>,
    /// What kept a member tenant's reconcile from doing what the organization asks, per tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A generated partner configuration: in `tenant`, for `partnerTenantId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtoPartnerStatus {
    /// The Tenant object (`namespace/name`) whose directory holds it.
    pub tenant: String,
    pub partner_tenant_id: String,
    /// Whether the directory holds it, marked `isInMultiTenantOrganization`.
    pub present: bool,
}

/// A generated sync job and its last run, as the sync state remembers it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtoSyncJobStatus {
    pub name: String,
    /// Source and target tenant ids.
    pub source_tenant_id: String,
    pub target_tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SyncJobState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_counts: Option<SyncCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_in_scope: Option<u64>,
    /// Why the job is not ready (missing prerequisites, a failed run, quarantine), when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MtoMemberStatus {
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub role: MtoRole,
    /// `pending` until the tenant joins, then `active`.
    pub state: MtoMemberState,
    /// Whether entente manages the tenant (joins it, generates partner configurations and sync jobs).
    pub managed: bool,
}
