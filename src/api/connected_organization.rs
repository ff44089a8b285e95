//! The `ConnectedOrganization` kind (R16): an outside organization (a partner tenant or an email domain)
//! whose users access-package policies may admit.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, TenantRef};
use crate::core::entitlement::ConnectedOrganizationState;
use crate::core::model::DeletionPolicy;

/// A connected organization of a tenant's entitlement management.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "ConnectedOrganization",
    doc = "A connected organization of a tenant's entitlement management: an external organization (by tenant id or domain) whose users may request access packages (R16).",
    namespaced,
    status = "ConnectedOrganizationStatus",
    shortname = "corg",
    category = "entente",
    printcolumn = r#"{"name":"Display name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".spec.state"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectedOrganizationSpec {
    /// The tenant whose entitlement management holds the organization. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// The organization's display name, unique within the tenant.
    #[schemars(length(min = 1, max = 256))]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where its users come from: partner tenants (`tenantId`) or email domains (`domainName`).
    #[schemars(length(min = 1, max = 50))]
    pub identity_sources: Vec<IdentitySourceSpec>,
    /// `configured` (default): admitted by policies for "all configured connected organizations".
    /// `proposed`: only by policies that name it.
    #[serde(default)]
    pub state: ConnectedOrganizationState,
    /// `Delete` (default): removing this object deletes the organization. `Retain`: it is kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// One identity source: exactly one of `tenantId` and `domainName`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySourceSpec {
    /// A Microsoft Entra tenant id (`azureActiveDirectoryTenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// An email domain (`domainIdentitySource`), e.g. `fabrikam.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// A readable name for the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Observed state of a `ConnectedOrganization`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedOrganizationStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
}
