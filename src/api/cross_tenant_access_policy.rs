//! The `CrossTenantAccessPolicy` kind: one partner configuration of a tenant (R2).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CEL_GUID, CommonStatus, TenantRef};
use crate::core::model::DeletionPolicy;
use crate::core::settings::{
    AutomaticUserConsentSettings, B2bSetting, CrossTenantAccessSettings, IdentitySynchronization, InboundTrust,
};

/// A tenant's cross-tenant access settings for one partner tenant. Every setting is optional: an absent
/// one inherits the tenant's default configuration (R2).
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "CrossTenantAccessPolicy",
    doc = "A tenant's cross-tenant access settings for one partner tenant (B2B collaboration and direct connect, inbound trust of MFA and devices, automatic redemption, identity synchronization). Every setting is optional: an absent one inherits the tenant's default configuration (R2).",
    namespaced,
    status = "CrossTenantAccessPolicyStatus",
    shortname = "xtap",
    category = "entente",
    printcolumn = r#"{"name":"Tenant","type":"string","jsonPath":".spec.tenantRef.name"}"#,
    printcolumn = r#"{"name":"Partner","type":"string","jsonPath":".spec.partnerTenantId"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
// The settings are spelled out here rather than `#[serde(flatten)]`ed from `CrossTenantAccessSettings`: serde cannot
// combine `flatten` with `deny_unknown_fields`, and a typo in a manifest must be an error, not a silently ignored key.
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrossTenantAccessPolicySpec {
    /// The tenant whose settings these are. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// The partner tenant's id (a GUID). Immutable.
    #[schemars(length(max = 36))]
    #[x_kube(
        validation = Rule::new(CEL_GUID).message("must be a GUID: 8-4-4-4-12 hexadecimal digits"),
        validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other partner")
    )]
    pub partner_tenant_id: String,
    /// Partner users coming in by B2B collaboration. Absent: inherit the default.
    #[serde(default, rename = "b2bCollaborationInbound", skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    /// Our users going to the partner by B2B collaboration. Absent: inherit the default.
    #[serde(default, rename = "b2bCollaborationOutbound", skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    /// Partner users coming in by B2B direct connect. Absent: inherit the default.
    #[serde(default, rename = "b2bDirectConnectInbound", skip_serializing_if = "Option::is_none")]
    pub b2b_direct_connect_inbound: Option<B2bSetting>,
    /// Our users going to the partner by B2B direct connect. Absent: inherit the default.
    #[serde(default, rename = "b2bDirectConnectOutbound", skip_serializing_if = "Option::is_none")]
    pub b2b_direct_connect_outbound: Option<B2bSetting>,
    /// Claims from the partner this tenant trusts (MFA, compliant and hybrid-joined devices). Absent: inherit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_trust: Option<InboundTrust>,
    /// Automatic redemption with the partner (R12). Absent: inherit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_user_consent_settings: Option<AutomaticUserConsentSettings>,
    /// Tenant restrictions toward the partner. Absent: inherit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_restrictions: Option<B2bSetting>,
    /// Inbound user synchronization from the partner (R13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_synchronization: Option<IdentitySynchronization>,
    /// `Delete` (default): removing this object deletes the partner configuration. `Retain`: it is kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

impl CrossTenantAccessPolicySpec {
    /// The partner settings, as Graph's partner configuration holds them.
    pub fn settings(&self) -> CrossTenantAccessSettings {
        CrossTenantAccessSettings {
            b2b_collaboration_inbound: self.b2b_collaboration_inbound.clone(),
            b2b_collaboration_outbound: self.b2b_collaboration_outbound.clone(),
            b2b_direct_connect_inbound: self.b2b_direct_connect_inbound.clone(),
            b2b_direct_connect_outbound: self.b2b_direct_connect_outbound.clone(),
            inbound_trust: self.inbound_trust.clone(),
            automatic_user_consent_settings: self.automatic_user_consent_settings.clone(),
            tenant_restrictions: self.tenant_restrictions.clone(),
        }
    }
}

/// Observed state of a `CrossTenantAccessPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantAccessPolicyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
}
