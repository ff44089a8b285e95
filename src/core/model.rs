//! The desired state (what the manifests ask for) and the observed state (what a directory holds),
//! as plain values. Manifests are turned into `Desired*` by `crate::manifest`; backends produce
//! `TenantSnapshot`s. The planner compares the two.

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::identity::{DesiredIdentityProvider, DesiredSignUpFlow, IdentityState};
use super::mto::{DesiredMultiTenantOrganization, MtoState};
use super::resolved::{ResolvedAccess, ResolvedCollaboration};
use super::settings::{CrossTenantAccessSettings, IdentitySynchronization};
use super::sync::DesiredSyncJob;
use super::tenant_profile::{TenantProfile, Unsupported};

/// The kinds of object entente manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Tenant,
    CrossTenantAccessPolicy,
    GuestInvitation,
    SyncJob,
    MultiTenantOrganization,
    ConnectedOrganization,
    AccessPackage,
    IdentityProvider,
    SignUpFlow,
    ConditionalAccessPolicy,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Tenant,
        Kind::CrossTenantAccessPolicy,
        Kind::GuestInvitation,
        Kind::SyncJob,
        Kind::MultiTenantOrganization,
        Kind::ConnectedOrganization,
        Kind::AccessPackage,
        Kind::IdentityProvider,
        Kind::SignUpFlow,
        Kind::ConditionalAccessPolicy,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "Tenant",
            Kind::CrossTenantAccessPolicy => "CrossTenantAccessPolicy",
            Kind::GuestInvitation => "GuestInvitation",
            Kind::SyncJob => "SyncJob",
            Kind::MultiTenantOrganization => "MultiTenantOrganization",
            Kind::ConnectedOrganization => "ConnectedOrganization",
            Kind::AccessPackage => "AccessPackage",
            Kind::IdentityProvider => "IdentityProvider",
            Kind::SignUpFlow => "SignUpFlow",
            Kind::ConditionalAccessPolicy => "ConditionalAccessPolicy",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Kind/namespace/name`: how an object is named in plans, errors and ownership records.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { kind, namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What happens in the directory when a managed object is removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Remove the guest or partner configuration from the directory.
    #[default]
    Delete,
    /// Leave it in the directory and stop managing it.
    Retain,
}

/// Whether a difference entente did not cause (drift) is corrected or only reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DriftPolicy {
    /// Put the directory back to the manifests.
    #[default]
    Correct,
    /// Show the drift in plans and status, write nothing.
    Report,
}

/// Which Microsoft cloud a tenant lives in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Cloud {
    #[default]
    Global,
    UsGovernment,
    China,
}

/// `Guest` or `Member` (R6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UserType {
    #[default]
    Guest,
    Member,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Guest => "Guest",
            UserType::Member => "Member",
        }
    }
    pub fn parse(s: &str) -> Option<UserType> {
        match s {
            "Guest" => Some(UserType::Guest),
            "Member" => Some(UserType::Member),
            _ => None,
        }
    }
}

/// `externalUserState` (R6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RedemptionState {
    PendingAcceptance,
    Accepted,
}

impl RedemptionState {
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionState::PendingAcceptance => "PendingAcceptance",
            RedemptionState::Accepted => "Accepted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PendingAcceptance" => Some(Self::PendingAcceptance),
            "Accepted" => Some(Self::Accepted),
            _ => None,
        }
    }
}

/// Who a tenant is: fixed facts, not settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantIdentity {
    /// Lowercase GUID.
    pub tenant_id: String,
    /// e.g. `contoso.onmicrosoft.com`, lowercase.
    pub initial_domain: String,
    pub display_name: String,
    pub cloud: Cloud,
    /// Verified domains besides the initial one, lowercase.
    pub verified_domains: BTreeSet<String>,
}

impl TenantIdentity {
    /// Whether an email domain belongs to this tenant.
    pub fn owns_domain(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.initial_domain == d || self.verified_domains.contains(&d)
    }
}

/// The optional custom message of an invitation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvitedUserMessageInfo {
    /// Text added to the invitation email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_message_body: Option<String>,
    /// Language of the message, e.g. `en-US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_language: Option<String>,
    /// Additional recipient addresses (Graph supports one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc_recipients: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Desired state

/// Everything the manifests ask for, grouped by tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredState {
    pub tenants: Vec<DesiredTenant>,
    /// Cross-tenant sync jobs: each spans two tenants, so they are not grouped by tenant.
    pub sync_jobs: Vec<DesiredSyncJob>,
    /// Multi-tenant organizations (R15). Their partner configurations and sync jobs are already expanded
    /// into `tenants[].partners` and `sync_jobs` (`crate::core::mto::expand_into`); the planner uses these
    /// for the organization itself (the owner's member list, the members' joins).
    pub multi_tenant_organizations: Vec<DesiredMultiTenantOrganization>,
    /// Entitlement management (R16) per tenant id: settings, connected organizations, access packages.
    pub entitlement: std::collections::BTreeMap<String, super::entitlement::DesiredEntitlement>,
    /// Conditional access policies for external users (R18) per tenant id.
    pub conditional_access: std::collections::BTreeMap<String, Vec<super::conditional_access::DesiredConditionalAccessPolicy>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTenant {
    pub object: ObjectRef,
    pub identity: TenantIdentity,
    pub drift_policy: DriftPolicy,
    pub external_collaboration: ResolvedCollaboration,
    pub default_access: ResolvedAccess,
    /// Security groups entente makes sure exist (by display name).
    pub groups: BTreeSet<String>,
    pub partners: Vec<DesiredPartner>,
    pub invitations: Vec<DesiredInvitation>,
    /// Tenant type, Microsoft cloud settings (R14), branding and self-service of external tenants.
    pub profile: TenantProfile,
    /// Identity providers and sign-up flows (R17).
    pub identity_providers: Vec<DesiredIdentityProvider>,
    pub sign_up_flows: Vec<DesiredSignUpFlow>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredPartner {
    pub object: ObjectRef,
    /// Lowercase GUID.
    pub partner_tenant_id: String,
    /// As written: absent settings inherit the default (R2).
    pub settings: CrossTenantAccessSettings,
    pub identity_synchronization: Option<IdentitySynchronization>,
    pub deletion_policy: DeletionPolicy,
    /// Generated by a multi-tenant organization (R15): marked `isInMultiTenantOrganization`.
    pub is_in_multi_tenant_organization: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredInvitation {
    pub object: ObjectRef,
    /// As written; matched case-insensitively.
    pub email: String,
    pub display_name: Option<String>,
    pub redirect_url: String,
    pub user_type: UserType,
    pub send_invitation_message: bool,
    pub message_info: Option<InvitedUserMessageInfo>,
    /// Display names of groups (declared on the tenant) the guest belongs to.
    pub groups: BTreeSet<String>,
    pub deletion_policy: DeletionPolicy,
}

impl DesiredInvitation {
    pub fn key(&self) -> String {
        super::validate::address_key(&self.email)
    }
}

// ---------------------------------------------------------------------------------------------
// Observed state

/// One tenant as a directory holds it, read in bulk.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantSnapshot {
    pub identity: TenantIdentity,
    pub external_collaboration: ResolvedCollaboration,
    pub default_access: ResolvedAccess,
    pub groups: Vec<Group>,
    pub partners: Vec<PartnerConfiguration>,
    /// Users created by invitation (or of type Guest).
    pub guests: Vec<GuestUser>,
    /// Guests deleted recently enough to be restored (the directory's recycle bin, 30 days), newest
    /// first, with the groups a restore brings back when the backend knows them (`groups_known`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_guests: Vec<DeletedGuest>,
    /// entente's ownership records in this tenant.
    pub managed: Vec<ManagedRecord>,
    /// Records of guests entente itself deleted (prune, `deletionPolicy: Delete`) within the recycle-bin
    /// period, so one that comes back into the manifests is restored, not invited again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<Tombstone>,
    /// The multi-tenant organization this tenant owns or belongs to, and its own join request (R15).
    /// `None`: neither (or the backend does not read them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_tenant_organization: Option<MtoState>,
    /// Tenant type, Microsoft cloud settings (R14), branding and self-service of external tenants.
    pub profile: TenantProfile,
    /// Settings of `profile` this backend cannot read or write, with why: the planner never takes them
    /// for the truth and says so.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unsupported: Unsupported,
    /// Identity providers and sign-up flows (R17).
    #[serde(default)]
    pub identity_config: IdentityState,
    /// Entitlement management (R16). `None`: the backend does not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<super::entitlement::EntitlementState>,
    /// Conditional access policies that concern external users (R18). `None`: the backend does not read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditional_access: Option<Vec<super::conditional_access::ObservedConditionalAccessPolicy>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
}

/// A partner configuration as stored: `None` settings inherit the default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartnerConfiguration {
    pub tenant_id: String,
    #[serde(flatten)]
    pub settings: CrossTenantAccessSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_synchronization: Option<IdentitySynchronization>,
    #[serde(default)]
    pub is_in_multi_tenant_organization: bool,
}

/// A user created by invitation, as the directory holds it (R6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestUser {
    pub id: String,
    pub mail: String,
    pub display_name: Option<String>,
    pub user_principal_name: String,
    pub user_type: UserType,
    pub creation_type: Option<String>,
    pub external_user_state: Option<RedemptionState>,
    pub external_user_state_change_date_time: Option<String>,
    pub account_enabled: bool,
    /// Ids of the groups the user belongs to.
    pub group_ids: BTreeSet<String>,
}

/// A guest in the directory's recycle bin: restorable, as the same user, until 30 days after `deleted_date_time`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedGuest {
    #[serde(flatten)]
    pub guest: GuestUser,
    /// When it was deleted (RFC 3339, UTC), as Graph's `deletedDateTime`.
    pub deleted_date_time: String,
    /// Whether `guest.group_ids` are the memberships a restore brings back (the local directory keeps them
    /// in the bin). `false`: the backend cannot list a deleted user's groups (Graph); a restore brings them
    /// back all the same.
    #[serde(default)]
    pub groups_known: bool,
}

/// The ownership record of an object entente deleted, kept as long as the directory can restore it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The record as it was (its `external_id` is the deleted object's id).
    pub record: ManagedRecord,
    /// When entente deleted it (RFC 3339).
    pub deleted_at: String,
    /// Why: "pruned: no longer in the manifests", "the GuestInvitation was deleted".
    pub reason: String,
}

/// How long a tombstone is kept: the recycle bin's period (Graph's deleted items, 30 days).
pub const TOMBSTONE_DAYS: i64 = 30;

/// entente's ownership marker: it only ever changes or deletes what carries one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedRecord {
    pub kind: Kind,
    /// Natural key within the tenant: the tenant id, the partner tenant id, or the lowercase email.
    pub key: String,
    pub object: ObjectRef,
    /// The directory's id for the object (the guest's user id).
    pub external_id: Option<String>,
    pub deletion_policy: DeletionPolicy,
    /// The compared view of the object as last applied (canonical JSON): tells drift from an edit.
    pub applied: String,
    /// A guest's redeem URL, which the invitation answer carries only once: recorded with the write, so
    /// a status rebuilt after a crash still shows it. A record written without one keeps the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeem_url: Option<String>,
}
