//! The `Tenant` kind: one directory tenant, its external collaboration settings and its default
//! cross-tenant access configuration.

use k8s_openapi::api::core::v1::SecretKeySelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CEL_DOMAIN, CEL_GUID, CommonStatus};
use crate::core::model::{Cloud, DriftPolicy};
use crate::core::settings::{CrossTenantAccessSettings, ExternalCollaborationSettings};
use crate::core::tenant_profile::{CompanyBranding, MicrosoftCloudSettings, SelfServiceAccount, TenantType};

/// A directory tenant managed by entente.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "Tenant",
    doc = "A directory tenant entente manages: its identity (tenantId, initialDomain), where it lives (backend: the local directory or Microsoft Graph), its external collaboration settings and default cross-tenant access, the security groups it must have, and, for an external tenant, its branding and self-service options. Every other entente object names a Tenant in spec.tenantRef.",
    namespaced,
    status = "TenantStatus",
    shortname = "tnt",
    category = "entente",
    printcolumn = r#"{"name":"Tenant ID","type":"string","jsonPath":".spec.tenantId"}"#,
    printcolumn = r#"{"name":"Domain","type":"string","jsonPath":".spec.initialDomain"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(validation = Rule::new(
    "(!has(self.branding) && !has(self.selfServiceAccount)) || (has(self.tenantType) && self.tenantType == 'external')"
)
.message("branding and selfServiceAccount are only allowed on an external tenant (tenantType: external)"))]
pub struct TenantSpec {
    /// The directory tenant id (a GUID). Immutable.
    #[schemars(length(max = 36))]
    #[x_kube(
        validation = Rule::new(CEL_GUID).message("must be a GUID: 8-4-4-4-12 hexadecimal digits"),
        validation = Rule::new("self == oldSelf").message("is immutable: a Tenant object stands for one directory tenant")
    )]
    pub tenant_id: String,
    /// The tenant's initial domain, e.g. `contoso.onmicrosoft.com`.
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new(CEL_DOMAIN).message("must be a domain like contoso.onmicrosoft.com"))]
    pub initial_domain: String,
    /// A readable name. Defaults to the object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The Microsoft cloud the tenant lives in: `global` (default), `usGovernment` or `china`.
    #[serde(default)]
    pub cloud: Cloud,
    /// `workforce` (default: employees and B2B guests) or `external` (a customer tenant). Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: a tenant's type is chosen when it is created"))]
    pub tenant_type: TenantType,
    /// Microsoft cloud settings (R14): the other Microsoft clouds B2B collaboration is allowed with.
    #[serde(default)]
    pub microsoft_cloud_settings: MicrosoftCloudSettings,
    /// Company branding of the sign-in and sign-up pages. External tenants only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "[has(self.bannerLogo) ? self.bannerLogo : 'x.png', has(self.squareLogo) ? self.squareLogo : 'x.png', has(self.backgroundImage) ? self.backgroundImage : 'x.png'].all(r, !r.lowerAscii().startsWith('data:') && r.lowerAscii().matches('^[^?#]*[.](png|jpe?g)([?#].*)?$'))"
    )
    .message("bannerLogo, squareLogo and backgroundImage are https URLs or paths to PNG or JPEG images, never inline data"))]
    pub branding: Option<CompanyBranding>,
    /// What customers may do with their own account. External tenants only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_service_account: Option<SelfServiceAccount>,
    /// Verified domains besides the initial domain (e.g. `contoso.com`): they identify the tenant's users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new(CEL_DOMAIN.replace("self.", "self.all(d, d.") + ")")
        .message("every verified domain must be a domain like contoso.com"))]
    pub verified_domains: Vec<String>,
    /// Which directory holds the tenant: the embedded local directory (default) or Microsoft Graph.
    #[serde(default)]
    #[x_kube(validation = Rule::new("(has(self.type) && self.type == 'graph') == has(self.graph)")
        .message("backend.graph is required when backend.type is graph, and only allowed then"))]
    pub backend: Backend,
    /// External collaboration settings: who may invite, guest access level, self-service join, domain list.
    #[serde(default)]
    #[schemars(transform = bound_domain_list)]
    #[x_kube(
        validation = Rule::new(CEL_DOMAIN.replace("self.", "!has(self.domainList) || self.domainList.domains.all(d, d.") + ")")
            .message("every domainList entry must be a domain like fabrikam.com"),
        validation = Rule::new(
            "!has(self.guestUserRoleId) || self.guestUserRoleId.lowerAscii() in ['a0b1b346-4d3e-4e8b-98f8-753987be4970', '10dae51f-b6af-4016-8d66-8c2a99b929b3', '2af84b1e-32c8-42b7-82bc-daa82404023b']"
        )
        .message("guestUserRoleId must be one of the three guest role ids (R8)")
    )]
    pub external_collaboration: ExternalCollaborationSettings,
    /// The default cross-tenant access configuration. Absent settings take the system defaults (R1).
    #[serde(default)]
    pub cross_tenant_access_default: CrossTenantAccessSettings,
    /// Security groups entente makes sure exist; invitations may add guests to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    /// Entitlement management settings (R16): what happens to external users who lose their last
    /// access-package assignment. Absent: entente leaves them alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement_management: Option<super::access_package::EntitlementManagementSpec>,
    /// How often and how strictly entente keeps the tenant converged.
    #[serde(default)]
    pub reconcile: ReconcileOptions,
    /// Namespaces (besides the Tenant's own) whose CrossTenantAccessPolicies and GuestInvitations may refer
    /// to this Tenant; `*` allows every namespace. Default: none, only the Tenant's own namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 63)))]
    #[x_kube(validation = Rule::new("self.all(n, n == '*' || n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))")
        .message("each entry must be a namespace name or *"))]
    pub allowed_namespaces: Vec<String>,
}

impl TenantSpec {
    /// Whether objects in `namespace` may refer to this Tenant, which lives in `own_namespace`.
    pub fn allows_namespace(&self, own_namespace: &str, namespace: &str) -> bool {
        namespace == own_namespace || self.allowed_namespaces.iter().any(|n| n == "*" || n == namespace)
    }
}

/// Bounds the domain list (at most 1000 domains of at most 253 characters), so the API server can
/// budget the CEL rules that check each entry.
fn bound_domain_list(schema: &mut schemars::Schema) {
    let domains = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("domainList"))
        .and_then(|d| d.get_mut("properties"))
        .and_then(|p| p.get_mut("domains"));
    if let Some(serde_json::Value::Object(domains)) = domains {
        domains.insert("maxItems".into(), 1000.into());
        if let Some(serde_json::Value::Object(items)) = domains.get_mut("items") {
            items.insert("maxLength".into(), 253.into());
        }
    }
}

/// Which directory backend holds a tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backend {
    /// `local` (the embedded directory, default) or `graph` (Microsoft Graph).
    #[serde(default, rename = "type")]
    pub kind: BackendKind,
    /// Connection settings, required when `type` is `graph`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphBackend>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackendKind {
    /// The embedded local directory (SQLite).
    #[default]
    Local,
    /// Microsoft Graph v1.0.
    Graph,
}

/// How entente signs in to Microsoft Graph for this tenant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GraphBackend {
    /// Application (client) id of the app registration entente signs in as.
    pub client_id: String,
    /// The client secret, from a Secret in the Tenant's namespace (controller). The CLI reads the secret from
    /// the environment or a file instead, never from a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<SecretKeySelector>,
    /// Path of a federated token file (workload identity federation, like `AZURE_FEDERATED_TOKEN_FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_token_file: Option<String>,
    /// Authority host. Default `https://login.microsoftonline.com`; set it for national clouds or the emulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_host: Option<String>,
    /// Graph endpoint. Default `https://graph.microsoft.com`; set it for national clouds or the emulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_endpoint: Option<String>,
}

/// A security group entente keeps in the tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupSpec {
    /// The group's display name, unique within the tenant.
    pub display_name: String,
}

/// Reconcile options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcileOptions {
    /// How often the controller re-reads the tenant to find drift, e.g. `10m`, `1h`. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// `correct` (default): undo changes made outside entente. `report`: only show them.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
}

/// Observed state of a `Tenant`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// How many objects of each kind entente manages in this tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_objects: Option<ManagedCounts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedCounts {
    pub cross_tenant_access_policies: u32,
    pub guest_invitations: u32,
}
