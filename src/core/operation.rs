//! The writes a plan asks a directory to make. Plain data: the planner produces them, tests assert
//! on them, and every backend executes them (`crate::directory::Directory::apply`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::identity::{IdentityProviderConfig, SignUpFlowConfig};
use super::model::{Cloud, InvitedUserMessageInfo, Kind, ManagedRecord, PartnerConfiguration, TenantIdentity, UserType};
use super::mto::MtoRole;
use super::resolved::{ResolvedAccess, ResolvedCollaboration};
use super::tenant_profile::{CompanyBranding, SelfServiceAccount, TenantType};

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Operation {
    /// Create the tenant with R1 defaults (local directory only: a Graph tenant already exists).
    CreateTenant {
        identity: TenantIdentity,
    },
    /// Set the external collaboration settings and the default cross-tenant access configuration.
    ConfigureTenant {
        external_collaboration: ResolvedCollaboration,
        default_access: ResolvedAccess,
    },
    /// Set the tenant's Microsoft cloud settings (R14): the other clouds B2B collaboration is allowed with.
    SetCloudSettings {
        allowed_clouds: BTreeSet<Cloud>,
    },
    /// Set the tenant's type (only when the tenant is created in the same change: it is immutable) and, for
    /// an external tenant, its company branding and self-service account settings (`None`: none).
    ConfigureTenantExperience {
        tenant_type: TenantType,
        branding: Option<CompanyBranding>,
        self_service_account: Option<SelfServiceAccount>,
    },
    /// Create the security groups that do not exist yet (by display name).
    EnsureGroups {
        display_names: Vec<String>,
    },
    /// Create or replace a partner configuration (and its identity synchronization).
    PutPartner {
        partner: PartnerConfiguration,
    },
    DeletePartner {
        partner_tenant_id: String,
    },
    /// Invite a guest. Inviting an address that already has a user returns that user (R6), never a duplicate.
    Invite {
        invitation: InvitationRequest,
    },
    UpdateGuest {
        user_id: String,
        patch: GuestPatch,
    },
    DeleteGuest {
        user_id: String,
    },
    /// Bring a deleted guest back from the directory's recycle bin (deleted items, 30 days): the same user,
    /// id, mail, user principal name, redemption state and groups; no invitation email. Refused (conflict)
    /// while a live user holds its mail or user principal name. Restoring a live user is a no-op.
    RestoreGuest {
        user_id: String,
    },
    /// Create (or take over, by mail) the user a cross-tenant sync job keeps for a source user (R13): a
    /// B2B collaboration user, without any invitation email, with the mapped properties set.
    ProvisionUser {
        user: ProvisionRequest,
    },
    /// Create the tenant's multi-tenant organization, with the tenant as its owner, or change its name
    /// and description (R15).
    PutMultiTenantOrganization {
        display_name: String,
        description: Option<String>,
    },
    /// In the owner tenant: list a tenant as a member of the organization (pending until it joins).
    AddMtoMember {
        tenant_id: String,
        display_name: Option<String>,
        role: MtoRole,
    },
    /// In the owner tenant: remove a member from the organization.
    RemoveMtoMember {
        tenant_id: String,
    },
    /// In a member tenant: ask to join the organization owned by `owner_tenant_id` (joinRequest).
    JoinMto {
        owner_tenant_id: String,
    },
    /// In a member tenant: withdraw its join request (leave the organization).
    LeaveMto,
    /// Create a connected organization (R16), or update the one with this id (or, without an id, the one
    /// with this display name: create tolerates existing).
    PutConnectedOrganization {
        id: Option<String>,
        organization: super::entitlement::ConnectedOrganization,
    },
    DeleteConnectedOrganization {
        id: String,
    },
    /// Create an access package with its resources and assignment policies (R16), or bring the one with
    /// this id (or display name) in line: policies are matched by display name, created, replaced or deleted.
    PutAccessPackage {
        id: Option<String>,
        package: super::entitlement::AccessPackage,
    },
    /// Delete an access package: its assignments end first (and the external-user lifecycle applies).
    DeleteAccessPackage {
        id: String,
    },
    /// Set the tenant's entitlement management settings (external-user lifecycle).
    SetEntitlementSettings {
        settings: super::entitlement::EntitlementSettings,
    },
    /// Create or update an identity provider (R17). `existing_id`: the directory's id when it exists.
    PutIdentityProvider {
        provider: IdentityProviderConfig,
        existing_id: Option<String>,
    },
    /// Delete an identity provider; refused while a sign-up flow offers it (R17). Absent is fine.
    DeleteIdentityProvider {
        key: String,
        id: String,
    },
    /// Create (`exists: false`) or update a sign-up user flow (R17): its providers (by key), attributes,
    /// applications and API connectors. Refused when it offers a provider that is absent or disabled.
    PutSignUpFlow {
        flow: SignUpFlowConfig,
        exists: bool,
    },
    /// Delete a sign-up user flow. Absent is fine.
    DeleteSignUpFlow {
        id: String,
    },
    /// Create a conditional access policy (R18), or replace the one with this id (or, without an id, the one
    /// with this display name: create tolerates existing).
    PutConditionalAccessPolicy {
        id: Option<String>,
        policy: super::conditional_access::ConditionalAccessPolicyConfig,
    },
    /// Delete a conditional access policy. Absent is fine.
    DeleteConditionalAccessPolicy {
        id: String,
    },
    /// Write entente's ownership record. When `external_id` is empty and an `Invite` ran earlier in the
    /// same change, the backend fills in the invited user's id in the same step (never lose the id).
    Record {
        record: ManagedRecord,
    },
    /// Drop entente's ownership record (the object itself stays).
    Forget {
        kind: Kind,
        key: String,
    },
    /// Drop the ownership record of an object this change deletes, keeping it as a tombstone (stamped
    /// with the time of the write, and `reason`) for the recycle-bin period, so the object can be
    /// restored if it comes back into the manifests. A later `Record` of the same key removes it.
    Bury {
        kind: Kind,
        key: String,
        reason: String,
    },
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::CreateTenant { .. } => "createTenant",
            Operation::ConfigureTenant { .. } => "configureTenant",
            Operation::SetCloudSettings { .. } => "setCloudSettings",
            Operation::ConfigureTenantExperience { .. } => "configureTenantExperience",
            Operation::EnsureGroups { .. } => "ensureGroups",
            Operation::PutPartner { .. } => "putPartner",
            Operation::DeletePartner { .. } => "deletePartner",
            Operation::Invite { .. } => "invite",
            Operation::ProvisionUser { .. } => "provisionUser",
            Operation::UpdateGuest { .. } => "updateGuest",
            Operation::DeleteGuest { .. } => "deleteGuest",
            Operation::RestoreGuest { .. } => "restoreGuest",
            Operation::PutMultiTenantOrganization { .. } => "putMultiTenantOrganization",
            Operation::AddMtoMember { .. } => "addMtoMember",
            Operation::RemoveMtoMember { .. } => "removeMtoMember",
            Operation::JoinMto { .. } => "joinMto",
            Operation::LeaveMto => "leaveMto",
            Operation::PutConnectedOrganization { .. } => "putConnectedOrganization",
            Operation::DeleteConnectedOrganization { .. } => "deleteConnectedOrganization",
            Operation::PutAccessPackage { .. } => "putAccessPackage",
            Operation::DeleteAccessPackage { .. } => "deleteAccessPackage",
            Operation::SetEntitlementSettings { .. } => "setEntitlementSettings",
            Operation::PutIdentityProvider { .. } => "putIdentityProvider",
            Operation::DeleteIdentityProvider { .. } => "deleteIdentityProvider",
            Operation::PutSignUpFlow { .. } => "putSignUpFlow",
            Operation::DeleteSignUpFlow { .. } => "deleteSignUpFlow",
            Operation::PutConditionalAccessPolicy { .. } => "putConditionalAccessPolicy",
            Operation::DeleteConditionalAccessPolicy { .. } => "deleteConditionalAccessPolicy",
            Operation::Record { .. } => "record",
            Operation::Forget { .. } => "forget",
            Operation::Bury { .. } => "bury",
        }
    }
}

/// What `POST /invitations` is sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationRequest {
    pub invited_user_email_address: String,
    pub invited_user_display_name: Option<String>,
    pub invite_redirect_url: String,
    pub invited_user_type: UserType,
    pub send_invitation_message: bool,
    pub invited_user_message_info: Option<InvitedUserMessageInfo>,
    /// Display names of groups to add the new user to.
    pub groups: Vec<String>,
    /// Send a fresh invitation to a user who already has the address (Graph's `POST /invitations`, R6).
    /// Without it an invitation is create-if-absent: a user holding the address is adopted as it is,
    /// with no new redeem URL and no email, so a second writer never invites anyone twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub re_invite: bool,
}

/// What `Operation::ProvisionUser` creates: the target user of a synchronized source user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionRequest {
    pub mail: String,
    pub display_name: Option<String>,
    pub user_type: UserType,
    pub account_enabled: bool,
    /// Profile attributes by Graph name (`givenName`, `jobTitle`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Where the user comes from (its home tenant id), for the rules that check it (R3, R13).
    pub source_tenant_id: String,
}

/// Changes to an existing guest. Group names refer to the tenant's groups by display name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_type: Option<UserType>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub add_to_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub remove_from_groups: Vec<String>,
    /// A new mail address (cross-tenant sync follows the source user's address).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mail: Option<String>,
    /// Block (`false`) or allow (`true`) sign-in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub account_enabled: Option<bool>,
    /// Profile attributes by Graph name (`givenName`, `jobTitle`, …): `Some` sets, `None` clears.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub attributes: BTreeMap<String, Option<String>>,
}

impl GuestPatch {
    pub fn is_empty(&self) -> bool {
        self == &GuestPatch::default()
    }
}

/// What a backend reports back for one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Outcome {
    Done,
    Invited(InvitationResult),
}

/// The answer to an invitation (R6). The redeem URL exists only here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitationResult {
    pub user_id: String,
    pub user_principal_name: String,
    pub invite_redeem_url: String,
    /// `PendingAcceptance` or `Completed`.
    pub status: String,
}

/// Fills in the user id (and the redeem URL, which exists only in the invitation answer) of a `Record`
/// that follows an `Invite` in the same change, so both are recorded with the write.
pub fn bind_invited_id(op: &Operation, last_invited: Option<&InvitationResult>) -> Operation {
    match (op, last_invited) {
        (Operation::Record { record }, Some(invited)) if record.external_id.is_none() => {
            let mut record = record.clone();
            record.external_id = Some(invited.user_id.clone());
            record.redeem_url = Some(invited.invite_redeem_url.clone()).filter(|u| !u.is_empty());
            Operation::Record { record }
        }
        _ => op.clone(),
    }
}
