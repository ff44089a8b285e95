//! The writes a plan asks a directory to make. Plain data: the planner produces them, tests assert
//! on them, and every backend executes them (`crate::directory::Directory::apply`).

use serde::{Deserialize, Serialize};

use super::model::{InvitedUserMessageInfo, Kind, ManagedRecord, PartnerConfiguration, TenantIdentity, UserType};
use super::resolved::{ResolvedAccess, ResolvedCollaboration};

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
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::CreateTenant { .. } => "createTenant",
            Operation::ConfigureTenant { .. } => "configureTenant",
            Operation::EnsureGroups { .. } => "ensureGroups",
            Operation::PutPartner { .. } => "putPartner",
            Operation::DeletePartner { .. } => "deletePartner",
            Operation::Invite { .. } => "invite",
            Operation::UpdateGuest { .. } => "updateGuest",
            Operation::DeleteGuest { .. } => "deleteGuest",
            Operation::Record { .. } => "record",
            Operation::Forget { .. } => "forget",
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

/// Fills in the user id of a `Record` that follows an `Invite` in the same change.
pub fn bind_invited_id(op: &Operation, last_invited: Option<&str>) -> Operation {
    match (op, last_invited) {
        (Operation::Record { record }, Some(id)) if record.external_id.is_none() => {
            let mut record = record.clone();
            record.external_id = Some(id.to_string());
            Operation::Record { record }
        }
        _ => op.clone(),
    }
}
