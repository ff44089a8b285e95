//! Serde types of Microsoft Graph v1.0's wire format (plus the beta `b2bManagementPolicy`), for the
//! resources entente reads and writes. Shapes follow `graph-v1.0-openapi-subset.yaml` and the CSDL:
//! camelCase, `@odata.*` annotations, the OData error body.
//!
//! Decoding is lenient: unknown properties are ignored (Graph adds properties over time and must not
//! break the client), and a JSON `null` reads as `None`. Core types are reused where the wire shape is
//! identical and stable (`AccessType`, `TargetType`, `AccessTarget`, `AllowInvitesFrom`); structured
//! settings get their own lenient types here, with conversions to and from `core::settings`.
//!
//! Null semantics on partner configurations: every cross-tenant setting of
//! [`CrossTenantAccessPolicyConfigurationPartner`] is always serialized, `null` when `None`, because on a
//! partner `null` means "inherit the default" (R2). A PATCH entente sends therefore carries every setting
//! it manages; the receiver treats a property present with `null` as "reset to inherit".

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::core::settings::{
    AccessTarget, AccessType, AllowInvitesFrom, AutomaticUserConsentSettings, B2bSetting as CoreB2bSetting,
    CrossTenantAccessSettings, DomainList, DomainListMode, IdentitySynchronization, InboundTrust as CoreInboundTrust,
    TargetConfiguration, UserSyncInbound,
};

/// The production endpoints (global cloud). National clouds and the emulator override both.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// `client_assertion_type` for a federated (workload identity) or certificate assertion.
pub const JWT_BEARER_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Paths relative to `{graph endpoint}/v1.0` (or `/beta` where noted).
pub mod paths {
    pub const INVITATIONS: &str = "/invitations";
    pub const USERS: &str = "/users";
    pub const USERS_DELTA: &str = "/users/delta";
    pub const GROUPS: &str = "/groups";
    pub const AUTHORIZATION_POLICY: &str = "/policies/authorizationPolicy";
    pub const CROSS_TENANT_ACCESS_POLICY: &str = "/policies/crossTenantAccessPolicy";
    pub const CROSS_TENANT_DEFAULT: &str = "/policies/crossTenantAccessPolicy/default";
    pub const CROSS_TENANT_PARTNERS: &str = "/policies/crossTenantAccessPolicy/partners";
    /// Beta only.
    pub const B2B_MANAGEMENT_POLICIES: &str = "/policies/b2bManagementPolicies";
    pub const BATCH: &str = "/$batch";
    /// `/organization` (read the tenant's own identity: id, display name, verified domains).
    pub const ORGANIZATION: &str = "/organization";

    pub fn partner(tenant_id: &str) -> String {
        format!("{CROSS_TENANT_PARTNERS}/{tenant_id}")
    }
    pub fn identity_synchronization(tenant_id: &str) -> String {
        format!("{CROSS_TENANT_PARTNERS}/{tenant_id}/identitySynchronization")
    }
    pub fn user(id: &str) -> String {
        format!("{USERS}/{id}")
    }
    pub fn group_members(group_id: &str) -> String {
        format!("{GROUPS}/{group_id}/members")
    }
    /// `POST` target for adding a member (`{"@odata.id": …}` body).
    pub fn group_members_ref(group_id: &str) -> String {
        format!("{GROUPS}/{group_id}/members/$ref")
    }
    /// `DELETE` target for removing a member.
    pub fn group_member_ref(group_id: &str, member_id: &str) -> String {
        format!("{GROUPS}/{group_id}/members/{member_id}/$ref")
    }
    /// The token endpoint, relative to the authority host.
    pub fn token(tenant: &str) -> String {
        format!("/{tenant}/oauth2/v2.0/token")
    }
}

/// Error codes Graph documents for the resources entente uses, and the refusal codes the emulator sends
/// in `error.details[0].code` (they are `core::policy::RefusalReason` names).
pub mod codes {
    pub const REQUEST_BAD_REQUEST: &str = "Request_BadRequest";
    pub const REQUEST_RESOURCE_NOT_FOUND: &str = "Request_ResourceNotFound";
    pub const MULTIPLE_OBJECTS_WITH_SAME_KEY_VALUE: &str = "Request_MultipleObjectsWithSameKeyValue";
    pub const CONFLICTING_OBJECTS: &str = "ConflictingObjects";
    pub const AUTHORIZATION_REQUEST_DENIED: &str = "Authorization_RequestDenied";
    pub const DIRECTORY_OBJECT_NOT_FOUND: &str = "Directory_ObjectNotFound";
    pub const ACCESS_DENIED: &str = "accessDenied";
    pub const INVALID_REQUEST: &str = "invalidRequest";
    pub const ITEM_NOT_FOUND: &str = "itemNotFound";
    pub const SYNC_STATE_NOT_FOUND: &str = "syncStateNotFound";
    pub const RESYNC_REQUIRED: &str = "resyncRequired";
    pub const SERVICE_NOT_AVAILABLE: &str = "serviceNotAvailable";
    pub const ACTIVITY_LIMIT_REACHED: &str = "activityLimitReached";
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    pub const INVALID_AUTHENTICATION_TOKEN: &str = "InvalidAuthenticationToken";
    /// Refusal codes (R3–R5, R9), in `error.details[].code` of a 4xx answer to `POST /invitations`.
    pub const DOMAIN_BLOCKED: &str = "DomainBlocked";
    pub const INVITATIONS_DISABLED: &str = "InvitationsDisabled";
    pub const CROSS_TENANT_ACCESS_BLOCKED: &str = "CrossTenantAccessBlocked";
    /// R14 (the emulator's code: Graph documents none for a refusal across clouds).
    pub const CLOUD_NOT_ALLOWED: &str = "CloudNotAllowed";
}

// ---------------------------------------------------------------------------------------------
// Collections

/// One page of a collection (`value`), with its continuation (`@odata.nextLink`) or, at the end of a
/// delta round, the link for the next round (`@odata.deltaLink`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(rename = "@odata.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default, skip_serializing_if = "Option::is_none")]
    pub delta_link: Option<String>,
}

impl<T> Page<T> {
    pub fn new(value: Vec<T>) -> Self {
        Self { context: None, count: None, value, next_link: None, delta_link: None }
    }
}

/// `@removed` on an item of a delta page: `changed` (soft-deleted, restorable) or `deleted` (gone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    pub reason: String,
}

/// `{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{id}"}`: the body that adds a reference
/// (`POST /groups/{id}/members/$ref`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ODataReference {
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
}

impl ODataReference {
    /// A reference to a directory object under `base` (e.g. `https://graph.microsoft.com/v1.0`).
    pub fn directory_object(base: &str, id: &str) -> Self {
        Self { odata_id: format!("{}/directoryObjects/{id}", base.trim_end_matches('/')) }
    }
    /// The object id at the end of the reference.
    pub fn id(&self) -> &str {
        self.odata_id.rsplit('/').next().unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Invitations

/// `microsoft.graph.invitation`: the `POST /invitations` request and its `201` response.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub invited_user_email_address: String,
    pub invite_redirect_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_display_name: Option<String>,
    /// `Guest` (default) or `Member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_invitation_message: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_message_info: Option<InvitedUserMessageInfo>,
    /// When true, `invitedUser.id` is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_redemption: Option<bool>,
    /// Response only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_redeem_url: Option<String>,
    /// Response: `{"id": <the user's object id>}`; request: the user to reset when `resetRedemption`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user: Option<InvitedUser>,
    /// `PendingAcceptance`, `Completed`, `InProgress`, `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitedUser {
    pub id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitedUserMessageInfo {
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub cc_recipients: Vec<Recipient>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_message_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_language: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub email_address: EmailAddress,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl From<&crate::core::model::InvitedUserMessageInfo> for InvitedUserMessageInfo {
    fn from(m: &crate::core::model::InvitedUserMessageInfo) -> Self {
        Self {
            cc_recipients: m
                .cc_recipients
                .iter()
                .map(|a| Recipient { email_address: EmailAddress { name: None, address: Some(a.clone()) } })
                .collect(),
            customized_message_body: m.customized_message_body.clone(),
            message_language: m.message_language.clone(),
        }
    }
}

impl From<&InvitedUserMessageInfo> for crate::core::model::InvitedUserMessageInfo {
    fn from(m: &InvitedUserMessageInfo) -> Self {
        Self {
            customized_message_body: m.customized_message_body.clone(),
            message_language: m.message_language.clone(),
            cc_recipients: m.cc_recipients.iter().filter_map(|r| r.email_address.address.clone()).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Users and groups

/// The `$select` entente reads guests with: exactly the compared properties.
pub const USER_SELECT: &str = "id,displayName,mail,userPrincipalName,userType,creationType,externalUserState,externalUserStateChangeDateTime,accountEnabled,otherMails";

/// `microsoft.graph.user`, guest-relevant properties. Every property is optional: `$select` decides what a
/// response carries, a delta item may hold only `id` and `@removed`, and a PATCH body holds only the
/// changed properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// `Guest` or `Member`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
    /// `Invitation` for invited users; `null` for work/school accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_type: Option<String>,
    /// `PendingAcceptance` or `Accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_state_change_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub other_mails: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<ObjectIdentity>,
    /// Delta only: the object left the collection.
    #[serde(rename = "@removed", default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_assigned_id: Option<String>,
}

/// `microsoft.graph.group` (security groups entente ensures). Creation needs `displayName`,
/// `mailEnabled: false`, `mailNickname` and `securityEnabled: true`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_enabled: Option<bool>,
}

/// A member of a group as `GET /groups/{id}/members?$select=id` returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryObject {
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    pub id: String,
}

/// `microsoft.graph.organization`, the properties entente reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub verified_domains: Vec<VerifiedDomain>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_initial: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Authorization policy

/// `microsoft.graph.crossTenantAccessPolicy` (the policy root): the Microsoft cloud settings (R14).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantAccessPolicyRoot {
    /// `microsoftonline.com`, `microsoftonline.us`, `partner.microsoftonline.cn`: the other clouds allowed.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_cloud_endpoints: Vec<String>,
}

/// `microsoft.graph.authorizationPolicy` (singleton, `id: authorizationPolicy`). A PATCH body holds only
/// the properties to change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_invites_from: Option<AllowInvitesFrom>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_email_verified_users_to_join_organization: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_user_role_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_to_sign_up_email_based_subscriptions: Option<bool>,
    #[serde(rename = "allowedToUseSSPR", default, skip_serializing_if = "Option::is_none")]
    pub allowed_to_use_sspr: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_user_consent_for_risky_apps: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_msol_power_shell: Option<bool>,
    /// Kept as JSON: entente neither compares nor writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_user_role_permissions: Option<serde_json::Value>,
}

// ---------------------------------------------------------------------------------------------
// Cross-tenant access policy

/// `crossTenantAccessPolicyTargetConfiguration`. Same shape as the core's, decoded leniently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetConfigurationWire {
    pub access_type: AccessType,
    #[serde(default, deserialize_with = "null_as_default")]
    pub targets: Vec<AccessTarget>,
}

/// `crossTenantAccessPolicyB2BSetting`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct B2bSetting {
    #[serde(default)]
    pub users_and_groups: Option<TargetConfigurationWire>,
    #[serde(default)]
    pub applications: Option<TargetConfigurationWire>,
}

/// `crossTenantAccessPolicyTenantRestrictions`: a B2B setting plus a device filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRestrictions {
    #[serde(default)]
    pub users_and_groups: Option<TargetConfigurationWire>,
    #[serde(default)]
    pub applications: Option<TargetConfigurationWire>,
    #[serde(default)]
    pub devices: Option<DevicesFilter>,
}

/// `devicesFilter`. entente does not manage it; kept so a read-modify-write loses nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevicesFilter {
    #[serde(default)]
    pub mode: Option<AccessType>,
    #[serde(default)]
    pub rule: Option<String>,
}

/// `crossTenantAccessPolicyInboundTrust`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundTrust {
    #[serde(default)]
    pub is_mfa_accepted: Option<bool>,
    #[serde(default)]
    pub is_compliant_device_accepted: Option<bool>,
    #[serde(rename = "isHybridAzureADJoinedDeviceAccepted", default)]
    pub is_hybrid_azure_ad_joined_device_accepted: Option<bool>,
}

/// `inboundOutboundPolicyConfiguration` (`automaticUserConsentSettings`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboundOutboundPolicyConfiguration {
    #[serde(default)]
    pub inbound_allowed: Option<bool>,
    #[serde(default)]
    pub outbound_allowed: Option<bool>,
}

/// `invitationRedemptionIdentityProviderConfiguration` of the default configuration. Not managed by
/// entente; the order of `primaryIdentityProviderPrecedenceOrder` differs across Microsoft sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationRedemptionIdentityProviderConfiguration {
    #[serde(default, deserialize_with = "null_as_default")]
    pub primary_identity_provider_precedence_order: Vec<String>,
    #[serde(default)]
    pub fallback_identity_provider: Option<String>,
}

/// `crossTenantAccessPolicyConfigurationPartner` (key `tenantId`, no `id`). Every setting serializes,
/// `null` meaning "inherit the default" (R2): a `PATCH` with this body replaces every managed setting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantAccessPolicyConfigurationPartner {
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub tenant_id: String,
    #[serde(rename = "b2bCollaborationInbound", default)]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    #[serde(rename = "b2bCollaborationOutbound", default)]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    #[serde(rename = "b2bDirectConnectInbound", default)]
    pub b2b_direct_connect_inbound: Option<B2bSetting>,
    #[serde(rename = "b2bDirectConnectOutbound", default)]
    pub b2b_direct_connect_outbound: Option<B2bSetting>,
    #[serde(default)]
    pub inbound_trust: Option<InboundTrust>,
    #[serde(default)]
    pub automatic_user_consent_settings: Option<InboundOutboundPolicyConfiguration>,
    #[serde(default)]
    pub tenant_restrictions: Option<TenantRestrictions>,
    /// Read-only for entente: never sent unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_service_provider: Option<bool>,
    /// Read-only (R15): set by the multi-tenant organization, never sent unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_in_multi_tenant_organization: Option<bool>,
}

/// `crossTenantAccessPolicyConfigurationDefault`. Absent properties are left out of a PATCH body
/// (`automaticUserConsentSettings` is read-only on the default: never send it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantAccessPolicyConfigurationDefault {
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_service_default: Option<bool>,
    #[serde(rename = "b2bCollaborationInbound", default, skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    #[serde(rename = "b2bCollaborationOutbound", default, skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    #[serde(rename = "b2bDirectConnectInbound", default, skip_serializing_if = "Option::is_none")]
    pub b2b_direct_connect_inbound: Option<B2bSetting>,
    #[serde(rename = "b2bDirectConnectOutbound", default, skip_serializing_if = "Option::is_none")]
    pub b2b_direct_connect_outbound: Option<B2bSetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_trust: Option<InboundTrust>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_user_consent_settings: Option<InboundOutboundPolicyConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_restrictions: Option<TenantRestrictions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_redemption_identity_provider_configuration: Option<InvitationRedemptionIdentityProviderConfiguration>,
}

/// `crossTenantIdentitySyncPolicyPartner` (`…/partners/{tenantId}/identitySynchronization`), replaced whole
/// by `PUT` (`409 Request_MultipleObjectsWithSameKeyValue` when it exists: then `PATCH`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantIdentitySyncPolicyPartner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_sync_inbound: Option<CrossTenantUserSyncInbound>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantUserSyncInbound {
    #[serde(default)]
    pub is_sync_allowed: Option<bool>,
}

impl CrossTenantIdentitySyncPolicyPartner {
    /// The core view: a sync policy whose `isSyncAllowed` is null reads as not allowed.
    pub fn to_core(&self) -> IdentitySynchronization {
        IdentitySynchronization {
            user_sync_inbound: UserSyncInbound {
                is_sync_allowed: self.user_sync_inbound.as_ref().and_then(|u| u.is_sync_allowed).unwrap_or(false),
            },
        }
    }
    pub fn from_core(tenant_id: &str, s: &IdentitySynchronization) -> Self {
        Self {
            tenant_id: Some(tenant_id.to_string()),
            display_name: None,
            user_sync_inbound: Some(CrossTenantUserSyncInbound { is_sync_allowed: Some(s.user_sync_inbound.is_sync_allowed) }),
        }
    }
}

// Conversions between the wire settings and `core::settings`.

impl From<&TargetConfigurationWire> for TargetConfiguration {
    fn from(w: &TargetConfigurationWire) -> Self {
        TargetConfiguration { access_type: w.access_type, targets: w.targets.clone() }
    }
}

impl From<&TargetConfiguration> for TargetConfigurationWire {
    fn from(c: &TargetConfiguration) -> Self {
        TargetConfigurationWire { access_type: c.access_type, targets: c.targets.clone() }
    }
}

impl B2bSetting {
    /// `None` when both halves are absent: Graph's "omitted block" and "null block" mean the same.
    pub fn to_core(&self) -> Option<CoreB2bSetting> {
        let s = CoreB2bSetting {
            users_and_groups: self.users_and_groups.as_ref().map(Into::into),
            applications: self.applications.as_ref().map(Into::into),
        };
        (s != CoreB2bSetting::default()).then_some(s)
    }
    pub fn from_core(s: &CoreB2bSetting) -> Self {
        Self {
            users_and_groups: s.users_and_groups.as_ref().map(Into::into),
            applications: s.applications.as_ref().map(Into::into),
        }
    }
}

impl TenantRestrictions {
    pub fn to_core(&self) -> Option<CoreB2bSetting> {
        B2bSetting { users_and_groups: self.users_and_groups.clone(), applications: self.applications.clone() }.to_core()
    }
    pub fn from_core(s: &CoreB2bSetting) -> Self {
        let b = B2bSetting::from_core(s);
        Self { users_and_groups: b.users_and_groups, applications: b.applications, devices: None }
    }
}

impl InboundTrust {
    pub fn to_core(&self) -> Option<CoreInboundTrust> {
        let t = CoreInboundTrust {
            is_mfa_accepted: self.is_mfa_accepted,
            is_compliant_device_accepted: self.is_compliant_device_accepted,
            is_hybrid_azure_ad_joined_device_accepted: self.is_hybrid_azure_ad_joined_device_accepted,
        };
        (t != CoreInboundTrust::default()).then_some(t)
    }
    pub fn from_core(t: &CoreInboundTrust) -> Self {
        Self {
            is_mfa_accepted: t.is_mfa_accepted,
            is_compliant_device_accepted: t.is_compliant_device_accepted,
            is_hybrid_azure_ad_joined_device_accepted: t.is_hybrid_azure_ad_joined_device_accepted,
        }
    }
}

impl InboundOutboundPolicyConfiguration {
    pub fn to_core(&self) -> Option<AutomaticUserConsentSettings> {
        let c = AutomaticUserConsentSettings { inbound_allowed: self.inbound_allowed, outbound_allowed: self.outbound_allowed };
        (c != AutomaticUserConsentSettings::default()).then_some(c)
    }
    pub fn from_core(c: &AutomaticUserConsentSettings) -> Self {
        Self { inbound_allowed: c.inbound_allowed, outbound_allowed: c.outbound_allowed }
    }
}

impl CrossTenantAccessPolicyConfigurationPartner {
    /// The partner's settings as the core stores them: `None` (null, omitted, or a block whose every
    /// value is null) inherits the default.
    pub fn settings(&self) -> CrossTenantAccessSettings {
        CrossTenantAccessSettings {
            b2b_collaboration_inbound: self.b2b_collaboration_inbound.as_ref().and_then(B2bSetting::to_core),
            b2b_collaboration_outbound: self.b2b_collaboration_outbound.as_ref().and_then(B2bSetting::to_core),
            b2b_direct_connect_inbound: self.b2b_direct_connect_inbound.as_ref().and_then(B2bSetting::to_core),
            b2b_direct_connect_outbound: self.b2b_direct_connect_outbound.as_ref().and_then(B2bSetting::to_core),
            inbound_trust: self.inbound_trust.as_ref().and_then(InboundTrust::to_core),
            automatic_user_consent_settings: self
                .automatic_user_consent_settings
                .as_ref()
                .and_then(InboundOutboundPolicyConfiguration::to_core),
            tenant_restrictions: self.tenant_restrictions.as_ref().and_then(TenantRestrictions::to_core),
        }
    }

    /// A full body for `POST …/partners` or `PATCH …/partners/{tenantId}`: settings left `None` go out as
    /// explicit `null` (inherit).
    pub fn from_settings(tenant_id: &str, s: &CrossTenantAccessSettings) -> Self {
        Self {
            context: None,
            tenant_id: tenant_id.to_string(),
            b2b_collaboration_inbound: s.b2b_collaboration_inbound.as_ref().map(B2bSetting::from_core),
            b2b_collaboration_outbound: s.b2b_collaboration_outbound.as_ref().map(B2bSetting::from_core),
            b2b_direct_connect_inbound: s.b2b_direct_connect_inbound.as_ref().map(B2bSetting::from_core),
            b2b_direct_connect_outbound: s.b2b_direct_connect_outbound.as_ref().map(B2bSetting::from_core),
            inbound_trust: s.inbound_trust.as_ref().map(InboundTrust::from_core),
            automatic_user_consent_settings: s
                .automatic_user_consent_settings
                .as_ref()
                .map(InboundOutboundPolicyConfiguration::from_core),
            tenant_restrictions: s.tenant_restrictions.as_ref().map(TenantRestrictions::from_core),
            is_service_provider: None,
            is_in_multi_tenant_organization: None,
        }
    }
}

impl CrossTenantAccessPolicyConfigurationDefault {
    /// The default's settings as given; overlay them on `ResolvedAccess::system_default()` to compare.
    pub fn settings(&self) -> CrossTenantAccessSettings {
        CrossTenantAccessSettings {
            b2b_collaboration_inbound: self.b2b_collaboration_inbound.as_ref().and_then(B2bSetting::to_core),
            b2b_collaboration_outbound: self.b2b_collaboration_outbound.as_ref().and_then(B2bSetting::to_core),
            b2b_direct_connect_inbound: self.b2b_direct_connect_inbound.as_ref().and_then(B2bSetting::to_core),
            b2b_direct_connect_outbound: self.b2b_direct_connect_outbound.as_ref().and_then(B2bSetting::to_core),
            inbound_trust: self.inbound_trust.as_ref().and_then(InboundTrust::to_core),
            automatic_user_consent_settings: self
                .automatic_user_consent_settings
                .as_ref()
                .and_then(InboundOutboundPolicyConfiguration::to_core),
            tenant_restrictions: self.tenant_restrictions.as_ref().and_then(TenantRestrictions::to_core),
        }
    }

    /// A `PATCH …/default` body setting every writable setting (not `automaticUserConsentSettings`,
    /// which is read-only on the default).
    pub fn patch_from_settings(s: &CrossTenantAccessSettings) -> Self {
        Self {
            b2b_collaboration_inbound: s.b2b_collaboration_inbound.as_ref().map(B2bSetting::from_core),
            b2b_collaboration_outbound: s.b2b_collaboration_outbound.as_ref().map(B2bSetting::from_core),
            b2b_direct_connect_inbound: s.b2b_direct_connect_inbound.as_ref().map(B2bSetting::from_core),
            b2b_direct_connect_outbound: s.b2b_direct_connect_outbound.as_ref().map(B2bSetting::from_core),
            inbound_trust: s.inbound_trust.as_ref().map(InboundTrust::from_core),
            tenant_restrictions: s.tenant_restrictions.as_ref().map(TenantRestrictions::from_core),
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Beta: B2B management policy (the invitation domain list)

/// `microsoft.graph.b2bManagementPolicy` (beta, `/beta/policies/b2bManagementPolicies`). `definition`
/// holds one JSON document as a string:
/// `{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":[],"BlockedDomains":["live.com"]}}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct B2bManagementPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub definition: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_organization_default: Option<bool>,
}

/// `InvitationsAllowedAndBlockedDomainsPolicy` inside the definition (PascalCase, as Microsoft writes it).
///
/// Reading: a non-empty `AllowedDomains` is an allow list; a non-empty `BlockedDomains` a block list;
/// `AllowedDomains` present and empty with `BlockedDomains` absent is an allow list that refuses everything
/// (R5); anything else is no list. Writing uses exactly those forms.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationsAllowedAndBlockedDomainsPolicy {
    #[serde(rename = "AllowedDomains", default, skip_serializing_if = "Option::is_none")]
    pub allowed_domains: Option<Vec<String>>,
    #[serde(rename = "BlockedDomains", default, skip_serializing_if = "Option::is_none")]
    pub blocked_domains: Option<Vec<String>>,
}

impl InvitationsAllowedAndBlockedDomainsPolicy {
    pub fn to_domain_list(&self) -> Option<DomainList> {
        let allowed = self.allowed_domains.as_deref();
        let blocked = self.blocked_domains.as_deref();
        match (allowed, blocked) {
            (Some(a), _) if !a.is_empty() => Some(DomainList { mode: DomainListMode::AllowList, domains: a.to_vec() }),
            (_, Some(b)) if !b.is_empty() => Some(DomainList { mode: DomainListMode::BlockList, domains: b.to_vec() }),
            (Some(_), None) => Some(DomainList { mode: DomainListMode::AllowList, domains: vec![] }),
            _ => None,
        }
    }
    /// `None` (no list) is written as both lists empty.
    pub fn from_domain_list(list: Option<&DomainList>) -> Self {
        match list {
            Some(DomainList { mode: DomainListMode::AllowList, domains }) => {
                Self { allowed_domains: Some(domains.clone()), blocked_domains: None }
            }
            Some(DomainList { mode: DomainListMode::BlockList, domains }) => {
                Self { allowed_domains: Some(vec![]), blocked_domains: Some(domains.clone()) }
            }
            None => Self { allowed_domains: Some(vec![]), blocked_domains: Some(vec![]) },
        }
    }
}

const B2B_ROOT: &str = "B2BManagementPolicy";
const DOMAINS_KEY: &str = "InvitationsAllowedAndBlockedDomainsPolicy";

impl B2bManagementPolicy {
    /// The definition document (the first string of `definition`), `{}` when there is none.
    pub fn definition_document(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self.definition.first() {
            Some(s) if !s.trim().is_empty() => serde_json::from_str(s),
            _ => Ok(serde_json::json!({})),
        }
    }

    /// The domain policy in the definition; `Ok(None)` when the definition has none.
    pub fn domains_policy(&self) -> Result<Option<InvitationsAllowedAndBlockedDomainsPolicy>, serde_json::Error> {
        let doc = self.definition_document()?;
        match doc.get(B2B_ROOT).and_then(|r| r.get(DOMAINS_KEY)) {
            Some(v) if !v.is_null() => serde_json::from_value(v.clone()).map(Some),
            _ => Ok(None),
        }
    }

    /// The invitation domain list the policy holds (R5).
    pub fn domain_list(&self) -> Result<Option<DomainList>, serde_json::Error> {
        Ok(self.domains_policy()?.and_then(|p| p.to_domain_list()))
    }

    /// Replaces the domain policy inside the definition, keeping every other key of the document.
    pub fn set_domains_policy(&mut self, policy: &InvitationsAllowedAndBlockedDomainsPolicy) -> Result<(), serde_json::Error> {
        let mut doc = self.definition_document()?;
        if !doc.is_object() {
            doc = serde_json::json!({});
        }
        let root = doc.as_object_mut().expect("object").entry(B2B_ROOT).or_insert_with(|| serde_json::json!({}));
        if !root.is_object() {
            *root = serde_json::json!({});
        }
        root.as_object_mut().expect("object").insert(DOMAINS_KEY.to_string(), serde_json::to_value(policy)?);
        let text = serde_json::to_string(&doc)?;
        if self.definition.is_empty() {
            self.definition.push(text);
        } else {
            self.definition[0] = text;
        }
        Ok(())
    }

    /// A new organization-default policy holding only the domain list.
    pub fn with_domain_list(list: Option<&DomainList>) -> Self {
        let mut p =
            Self { display_name: Some("B2BManagementPolicy".into()), is_organization_default: Some(true), ..Default::default() };
        p.set_domains_policy(&InvitationsAllowedAndBlockedDomainsPolicy::from_domain_list(list))
            .expect("a domain policy always serializes");
        p
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The OData error body every Graph error carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ODataError {
    pub error: MainError,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MainError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<InnerError>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `innerError`: `date` has no UTC offset in real responses; it may nest further `innerError`s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(rename = "request-id", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "client-request-id", default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(rename = "innerError", default, skip_serializing_if = "Option::is_none")]
    pub inner_error: Option<Box<InnerError>>,
}

impl ODataError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: MainError { code: code.into(), message: message.into(), ..Default::default() } }
    }
    /// Adds `details[]` entries (e.g. a refusal code).
    pub fn with_detail(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.error.details.push(ErrorDetail { code: code.into(), message: message.into(), target: None });
        self
    }
    pub fn with_request_id(mut self, request_id: impl Into<String>, date: impl Into<String>) -> Self {
        let inner = self.error.inner_error.get_or_insert_with(InnerError::default);
        inner.request_id = Some(request_id.into());
        inner.date = Some(date.into());
        self
    }
    /// `innerError.request-id`, searched through nested inner errors.
    pub fn request_id(&self) -> Option<&str> {
        let mut inner = self.error.inner_error.as_ref();
        while let Some(i) = inner {
            if let Some(id) = i.request_id.as_deref() {
                return Some(id);
            }
            inner = i.inner_error.as_deref();
        }
        None
    }
    /// The code of the first detail, if any.
    pub fn detail_code(&self) -> Option<&str> {
        self.error.details.first().map(|d| d.code.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// JSON batching

/// Most requests one `$batch` may hold.
pub const MAX_BATCH_REQUESTS: usize = 20;

/// `POST /$batch` body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub requests: Vec<BatchRequestItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequestItem {
    pub id: String,
    pub method: String,
    /// Relative to the version root, e.g. `/users/{id}`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
}

impl BatchRequestItem {
    pub fn new(id: impl Into<String>, method: &str, url: impl Into<String>) -> Self {
        Self { id: id.into(), method: method.to_string(), url: url.into(), headers: None, body: None, depends_on: None }
    }
    /// A JSON body (with the `Content-Type` header a body requires).
    pub fn with_json_body(mut self, body: serde_json::Value) -> Self {
        self.headers.get_or_insert_with(BTreeMap::new).insert("Content-Type".into(), "application/json".into());
        self.body = Some(body);
        self
    }
}

/// `$batch` response: one response per request, in any order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub responses: Vec<BatchResponseItem>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchResponseItem {
    pub id: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

impl BatchResponseItem {
    /// A header of the item, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// The item's body as an OData error, when it is one.
    pub fn error(&self) -> Option<ODataError> {
        self.body.as_ref().and_then(|b| serde_json::from_value(b.clone()).ok())
    }
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0 client credentials

/// The form fields of `POST /{tenant}/oauth2/v2.0/token` (`application/x-www-form-urlencoded`): a
/// client secret, or a client assertion (workload identity federation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    pub client_id: String,
    /// `https://graph.microsoft.com/.default`.
    pub scope: String,
    /// `client_credentials`.
    pub grant_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<String>,
}

/// A successful token response. `expires_in` is a number; some endpoints send it as a string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token_type: String,
    #[serde(deserialize_with = "number_or_string")]
    pub expires_in: u64,
    #[serde(default, deserialize_with = "opt_number_or_string", skip_serializing_if = "Option::is_none")]
    pub ext_expires_in: Option<u64>,
    pub access_token: String,
}

/// A token endpoint error (400/401).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub error_codes: Vec<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    N(u64),
    S(String),
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::N(n) => Ok(n),
        NumberOrString::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn opt_number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<NumberOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumberOrString::N(n)) => Ok(Some(n)),
        Some(NumberOrString::S(s)) => s.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = include_str!("../../tests/data/graph-v1.0-samples.json");

    fn samples(name: &str) -> Vec<serde_json::Value> {
        let all: serde_json::Value = serde_json::from_str(SAMPLES).unwrap();
        all[name].as_array().unwrap().clone()
    }

    #[test]
    fn documented_samples_parse() {
        for v in samples("microsoft.graph.crossTenantAccessPolicyConfigurationDefault") {
            let d: CrossTenantAccessPolicyConfigurationDefault = serde_json::from_value(v).unwrap();
            let resolved = crate::core::resolved::ResolvedAccess::system_default().overlay(&d.settings());
            assert_eq!(resolved, crate::core::resolved::ResolvedAccess::system_default());
        }
        for v in samples("microsoft.graph.crossTenantAccessPolicyConfigurationPartner") {
            let p: CrossTenantAccessPolicyConfigurationPartner = serde_json::from_value(v).unwrap();
            let s = p.settings();
            assert!(s.b2b_collaboration_inbound.is_none() && s.inbound_trust.is_none());
            assert!(s.automatic_user_consent_settings.is_none(), "all-null block inherits");
            assert!(s.b2b_direct_connect_outbound.unwrap().users_and_groups.is_some());
        }
        for v in samples("microsoft.graph.invitation") {
            let i: Invitation = serde_json::from_value(v).unwrap();
            assert_eq!(i.invited_user.unwrap().id, "cbb896f9-8306-49d0-b56b-b8e39cd28825");
        }
        for v in samples("microsoft.graph.userCollectionResponse") {
            let p: Page<User> = serde_json::from_value(v).unwrap();
            assert!(p.next_link.is_some());
            assert_eq!(p.value[0].user_type.as_deref(), Some("Guest"));
        }
        for v in samples("microsoft.graph.ODataErrors.ODataError") {
            let e: ODataError = serde_json::from_value(v).unwrap();
            assert!(e.request_id().is_some());
        }
        for v in samples("BatchRequest") {
            let b: BatchRequest = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&b).unwrap(), v, "batch request round-trips without loss");
        }
        for v in samples("microsoft.graph.authorizationPolicy") {
            let a: AuthorizationPolicy = serde_json::from_value(v).unwrap();
            assert_eq!(a.allow_invites_from, Some(AllowInvitesFrom::Everyone));
        }
    }

    #[test]
    fn partner_body_spells_out_inherited_settings_as_null() {
        let body = serde_json::to_value(CrossTenantAccessPolicyConfigurationPartner::from_settings(
            "t1",
            &CrossTenantAccessSettings::default(),
        ))
        .unwrap();
        assert_eq!(body["tenantId"], "t1");
        assert!(body.get("inboundTrust").unwrap().is_null());
        assert!(body.get("b2bCollaborationInbound").unwrap().is_null());
        assert!(body.get("isInMultiTenantOrganization").is_none());
    }

    #[test]
    fn domain_list_round_trips_through_the_definition_and_keeps_other_keys() {
        let mut p = B2bManagementPolicy {
            definition: vec![r#"{"B2BManagementPolicy":{"Version":1,"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":[],"BlockedDomains":["live.com"]}}}"#.into()],
            ..Default::default()
        };
        assert_eq!(
            p.domain_list().unwrap(),
            Some(DomainList { mode: DomainListMode::BlockList, domains: vec!["live.com".into()] })
        );
        let allow_none = DomainList { mode: DomainListMode::AllowList, domains: vec![] };
        p.set_domains_policy(&InvitationsAllowedAndBlockedDomainsPolicy::from_domain_list(Some(&allow_none))).unwrap();
        assert_eq!(p.domain_list().unwrap(), Some(allow_none));
        assert_eq!(p.definition_document().unwrap()["B2BManagementPolicy"]["Version"], 1);
        p.set_domains_policy(&InvitationsAllowedAndBlockedDomainsPolicy::from_domain_list(None)).unwrap();
        assert_eq!(p.domain_list().unwrap(), None);
    }

    #[test]
    fn token_expiry_may_be_a_string() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"token_type":"Bearer","expires_in":"3599","ext_expires_in":3599,"access_token":"x"}"#)
                .unwrap();
        assert_eq!(t.expires_in, 3599);
    }
}
