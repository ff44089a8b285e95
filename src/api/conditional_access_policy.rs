//! The `ConditionalAccessPolicy` kind (R18), limited to what concerns external users: which external user
//! types (and optionally which external tenants) it targets or excludes, for which applications, and
//! whether it requires MFA or blocks. `state: enabledForReportingButNotEnforced` is report-only.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, TenantRef};
use crate::core::conditional_access::{GrantControls, PolicyApplications, PolicyState, PolicyUsers};
use crate::core::model::DeletionPolicy;

/// A conditional access policy for guests and external users of a tenant.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "ConditionalAccessPolicy",
    doc = "A conditional access policy of a tenant for guests and external users: which external user types and tenants, which applications, and whether it requires MFA or blocks (R18).",
    namespaced,
    status = "ConditionalAccessPolicyStatus",
    shortname = "cap",
    category = "entente",
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenantRef.name"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".spec.state"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConditionalAccessPolicySpec {
    /// The tenant the policy belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// The policy's name in the directory.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    /// `enabled` (default), `enabledForReportingButNotEnforced` (report-only) or `disabled`.
    #[serde(default)]
    pub state: PolicyState,
    /// The external users targeted (`includeGuestsOrExternalUsers`) and excluded (`excludeGuestsOrExternalUsers`).
    pub users: PolicyUsers,
    /// `includeApplications` (`All` or application ids) and `excludeApplications`.
    pub applications: PolicyApplications,
    /// `operator` (`OR` or `AND`) and `builtInControls` (`mfa`, `block`).
    pub grant_controls: GrantControls,
    /// `Delete` (default): removing this object deletes the policy. `Retain`: it is kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Observed state of a `ConditionalAccessPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The directory's id of the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
}
