//! The `GuestInvitation` kind: one B2B guest, invited once and kept as declared (R6).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, TenantRef};
use crate::core::model::{DeletionPolicy, InvitedUserMessageInfo, RedemptionState, UserType};

/// Where an invited guest lands after redeeming when the manifest gives no `inviteRedirectUrl`.
pub const DEFAULT_REDIRECT_URL: &str = "https://myapps.microsoft.com";

/// An invitation of an external user into a tenant. The guest user it creates is the durable record.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "entente.dev",
    version = "v1alpha1",
    kind = "GuestInvitation",
    doc = "An invitation of an external user into a tenant: the address, display name, user type, groups and invitation message. entente invites once (an address already in the tenant is adopted, never invited again); status shows the guest's user id and redemption state.",
    namespaced,
    status = "GuestInvitationStatus",
    shortname = "gi",
    category = "entente",
    printcolumn = r#"{"name":"Email","type":"string","jsonPath":".spec.invitedUserEmailAddress"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.redemptionState"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestInvitationSpec {
    /// The tenant the guest is invited into. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: delete the object and create one for the other tenant"))]
    pub tenant_ref: TenantRef,
    /// The invited person's email address. Immutable: another address is another person.
    #[schemars(length(max = 320))]
    #[x_kube(
        validation = Rule::new("self.matches('^[^@[:space:]]+@([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?[.])+[a-zA-Z0-9-]{2,63}$')")
            .message("must be an email address like alice@fabrikam.com"),
        validation = Rule::new("self == oldSelf").message("is immutable: another address is another person; create a new GuestInvitation")
    )]
    pub invited_user_email_address: String,
    /// The guest's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_display_name: Option<String>,
    /// Where the guest lands after redeeming. Default `https://myapps.microsoft.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/[:space:]]+')").message("must be an absolute http(s) URL"))]
    pub invite_redirect_url: Option<String>,
    /// `Guest` (default) or `Member`.
    #[serde(default)]
    pub invited_user_type: UserType,
    /// Whether the directory emails the invitation. Default false: share the redeem URL yourself.
    #[serde(default)]
    pub send_invitation_message: bool,
    /// A custom message for the invitation email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_message_info: Option<InvitedUserMessageInfo>,
    /// Display names of groups declared on the Tenant that the guest belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `Delete` (default): removing this object deletes the guest. `Retain`: the guest is kept.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Observed state of a `GuestInvitation`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuestInvitationStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The guest user's object id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The guest's user principal name, e.g. `alice_fabrikam.com#EXT#@contoso.onmicrosoft.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// The redemption link returned when the invitation was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_redeem_url: Option<String>,
    /// `PendingAcceptance` or `Accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption_state: Option<RedemptionState>,
    /// When the redemption state last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemption_state_changed_at: Option<String>,
}
