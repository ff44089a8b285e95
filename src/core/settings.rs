//! Graph-shaped setting values shared by manifests, the planner and every backend.
//!
//! Field names follow Microsoft Graph v1.0 (`crossTenantAccessPolicyConfigurationDefault`/`Partner`,
//! `authorizationPolicy`) so a manifest reads like the Graph documentation. Every setting is optional:
//! on a partner configuration an absent setting inherits the tenant default (R2); on the default
//! configuration an absent setting means the system default (R1).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether the targets of a setting are allowed or blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AccessType {
    /// Only the listed targets are allowed.
    Allowed,
    /// Everything except the listed targets is allowed.
    Blocked,
}

/// What a target id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TargetType {
    /// A user object id, or the keyword `AllUsers`.
    User,
    /// A group object id.
    Group,
    /// An application id, or `AllApplications`, `AllMicrosoftApps`, `Office365`.
    Application,
}

/// One user, group or application a setting applies to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessTarget {
    /// An object id (GUID) or a keyword: `AllUsers`, `AllApplications`, `AllMicrosoftApps`, `Office365`.
    pub target: String,
    /// What `target` names.
    pub target_type: TargetType,
}

impl AccessTarget {
    pub fn new(target: impl Into<String>, target_type: TargetType) -> Self {
        Self { target: target.into(), target_type }
    }
    pub fn all_users() -> Self {
        Self::new(ALL_USERS, TargetType::User)
    }
    pub fn all_applications() -> Self {
        Self::new(ALL_APPLICATIONS, TargetType::Application)
    }
}

pub const ALL_USERS: &str = "AllUsers";
pub const ALL_APPLICATIONS: &str = "AllApplications";
/// Keywords Graph accepts for application targets besides object ids.
pub const APPLICATION_KEYWORDS: [&str; 3] = [ALL_APPLICATIONS, "AllMicrosoftApps", "Office365"];

/// `crossTenantAccessPolicyTargetConfiguration`: allowed or blocked, for a list of targets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConfiguration {
    /// `allowed`: only the targets are allowed. `blocked`: all but the targets are allowed.
    pub access_type: AccessType,
    /// The users, groups or applications concerned.
    #[serde(default)]
    pub targets: Vec<AccessTarget>,
}

impl TargetConfiguration {
    pub fn new(access_type: AccessType, targets: Vec<AccessTarget>) -> Self {
        Self { access_type, targets }
    }
}

/// `crossTenantAccessPolicyB2BSetting`: who (users and groups) may use which applications.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct B2bSetting {
    /// Users and groups the setting applies to. Absent: inherited (partner) or the system default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_and_groups: Option<TargetConfiguration>,
    /// Applications the setting applies to. Absent: inherited (partner) or the system default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<TargetConfiguration>,
}

/// `crossTenantAccessPolicyInboundTrust`: which claims of the other tenant are trusted (R11).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundTrust {
    /// Trust multifactor authentication done in the home tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mfa_accepted: Option<bool>,
    /// Trust compliant-device claims from the home tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_compliant_device_accepted: Option<bool>,
    /// Trust hybrid Azure AD joined device claims from the home tenant.
    #[serde(default, rename = "isHybridAzureADJoinedDeviceAccepted", skip_serializing_if = "Option::is_none")]
    pub is_hybrid_azure_ad_joined_device_accepted: Option<bool>,
}

/// `inboundOutboundPolicyConfiguration` as used by `automaticUserConsentSettings` (R12).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutomaticUserConsentSettings {
    /// Users of the other tenant are not asked to consent when they come in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_allowed: Option<bool>,
    /// Our users are not asked to consent when they go to the other tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_allowed: Option<bool>,
}

/// The cross-tenant access settings held by the default configuration and by each partner configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CrossTenantAccessSettings {
    /// Users of other tenants coming into this tenant by B2B collaboration (R9).
    #[serde(default, rename = "b2bCollaborationInbound", skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    /// This tenant's users going to other tenants by B2B collaboration (R9).
    #[serde(default, rename = "b2bCollaborationOutbound", skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    /// Users of other tenants coming in by B2B direct connect (R10).
    #[serde(default, rename = "b2bDirectConnectInbound", skip_serializing_if = "Option::is_none")]
    pub b2b_direct_connect_inbound: Option<B2bSetting>,
    /// This tenant's users going out by B2B direct connect (R10).
    #[serde(default, rename = "b2bDirectConnectOutbound", skip_serializing_if = "Option::is_none")]
    pub b2b_direct_connect_outbound: Option<B2bSetting>,
    /// Claims from the other tenant that this tenant trusts (R11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_trust: Option<InboundTrust>,
    /// Automatic redemption (R12). Graph keeps both values false and read-only on the default configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_user_consent_settings: Option<AutomaticUserConsentSettings>,
    /// Tenant restrictions for this tenant's users signing in to other tenants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_restrictions: Option<B2bSetting>,
}

/// `crossTenantIdentitySyncPolicyPartner.userSyncInbound` (R13).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSyncInbound {
    /// Whether the partner may synchronize its users into this tenant.
    pub is_sync_allowed: bool,
}

/// Identity synchronization settings of a partner configuration (R13).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySynchronization {
    /// Inbound user synchronization from the partner.
    pub user_sync_inbound: UserSyncInbound,
}

/// `allowInvitesFrom` of the authorization policy (R4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AllowInvitesFrom {
    /// No one, not even admins, may invite.
    None,
    /// Global, user and guest-inviter administrators.
    AdminsAndGuestInviters,
    /// The above and all members.
    AdminsGuestInvitersAndAllMembers,
    /// Everyone, guests included (the default).
    #[default]
    Everyone,
}

impl AllowInvitesFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AdminsAndGuestInviters => "adminsAndGuestInviters",
            Self::AdminsGuestInvitersAndAllMembers => "adminsGuestInvitersAndAllMembers",
            Self::Everyone => "everyone",
        }
    }
}

/// Role ids Graph accepts as `guestUserRoleId` (R8).
pub const GUEST_ROLE_SAME_AS_MEMBERS: &str = "a0b1b346-4d3e-4e8b-98f8-753987be4970";
pub const GUEST_ROLE_LIMITED: &str = "10dae51f-b6af-4016-8d66-8c2a99b929b3";
pub const GUEST_ROLE_RESTRICTED: &str = "2af84b1e-32c8-42b7-82bc-daa82404023b";
pub const GUEST_ROLE_IDS: [&str; 3] = [GUEST_ROLE_SAME_AS_MEMBERS, GUEST_ROLE_LIMITED, GUEST_ROLE_RESTRICTED];

/// Whether the invitation domain list allows or blocks the listed domains (R5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DomainListMode {
    /// Invitations go only to the listed domains; an empty list refuses every invitation.
    AllowList,
    /// Invitations go to every domain but the listed ones.
    BlockList,
}

/// The invitation domain list: an allow list or a block list, never both (R5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainList {
    /// `allowList` or `blockList`.
    pub mode: DomainListMode,
    /// Domains, matched case-insensitively against the invited address's domain.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// External collaboration settings (authorization policy and invitation domain list), R4, R5, R8.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalCollaborationSettings {
    /// Who may invite guests: `none`, `adminsAndGuestInviters`, `adminsGuestInvitersAndAllMembers`, `everyone` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_invites_from: Option<AllowInvitesFrom>,
    /// Guest access level, one of three role ids: a0b1b346-4d3e-4e8b-98f8-753987be4970 (same as members),
    /// 10dae51f-b6af-4016-8d66-8c2a99b929b3 (limited, the default), 2af84b1e-32c8-42b7-82bc-daa82404023b
    /// (restricted to own objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_user_role_id: Option<String>,
    /// Whether users may join the tenant by email verification (self-service sign-up). Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_email_verified_users_to_join_organization: Option<bool>,
    /// Invitation domain list. Absent: invitations may go to any domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_list: Option<DomainList>,
}
