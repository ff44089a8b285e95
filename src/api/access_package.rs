//! The `AccessPackage` kind (R16): groups and applications of a tenant bundled for request, with the
//! assignment policies that say who may request them, with or without approval, for how long. Also the
//! Tenant's `spec.entitlementManagement` (the external-user lifecycle).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, TenantRef};
use crate::core::entitlement::LifecycleAction;
use crate::core::model::DeletionPolicy;

/// An access package of a tenant's entitlement management.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "AccessPackage",
    doc = "An access package of a tenant's entitlement management: the groups and applications it gives, and its assignment policies (who may request, approval, expiry) (R16).",
    namespaced,
    status = "AccessPackageStatus",
    shortname = "apkg",
    category = "entente",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPackageSpec {
    /// The tenant that holds the package. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// The package's display name, unique within the tenant.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the package gives.
    #[serde(default)]
    pub resources: AccessPackageResources,
    /// Who may request it. At least one.
    #[schemars(length(min = 1, max = 50))]
    pub assignment_policies: Vec<AssignmentPolicySpec>,
    /// `Delete` (default): removing this object deletes the package (its assignments end). `Retain`: kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// The groups and applications of a package.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPackageResources {
    /// Display names of groups declared in the Tenant's `spec.groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Application (client) ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<String>,
}

/// One assignment policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentPolicySpec {
    /// Unique within the package.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    /// Who may request: exactly one of the three.
    pub requestors: RequestorsSpec,
    /// Whether a request waits for an approver. Default false.
    #[serde(default)]
    pub approval_required: bool,
    /// Approvers' addresses (optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// How long an assignment lasts: a duration like `90d`, or `never` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

/// Who may request a package.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestorsSpec {
    /// Users of these connected organizations: names of `ConnectedOrganization` objects of the same Tenant,
    /// in this object's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specific_connected_organizations: Vec<String>,
    /// Users of every connected organization in state `configured`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_configured_connected_organizations: bool,
    /// Any external user.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_external_users: bool,
}

/// Observed state of an `AccessPackage`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessPackageStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
}

/// A Tenant's `spec.entitlementManagement`: what happens to external users who lose their last assignment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntitlementManagementSpec {
    /// `none` (default), `blockSignIn` or `blockSignInAndDelete`.
    #[serde(default)]
    pub external_user_lifecycle_action: LifecycleAction,
    /// With `blockSignInAndDelete`: how long after the block the user is deleted, e.g. `30d` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_until_external_user_deleted_after_blocked: Option<String>,
}
