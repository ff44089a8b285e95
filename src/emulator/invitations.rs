//! `POST /invitations` (graph-contract 1.1): R6 through the local directory. Inviting an address
//! again returns the same user with a fresh redeem URL; `resetRedemption` with `invitedUser.id` sends
//! a guest back to `PendingAcceptance`. A refusal by the tenant's settings (R3–R5, R9) answers
//! `403` with the reason as `error.code` and `error.details[0].code` (see `errors::REFUSAL_STATUS`).
//!
//! The redeem URL is the emulator's own `https://{host}/redeem?tenant=…&ticket=…` (Graph's are https
//! links a person opens): `GET /redeem` accepts the invitation as that person would, without a token.

use serde_json::{Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::model::{InvitedUserMessageInfo, UserType};
use crate::core::operation::{InvitationRequest, Operation, Outcome};
use crate::graph::wire;

const PROPERTIES: &[&str] = &[
    "id",
    "invitedUserDisplayName",
    "invitedUserEmailAddress",
    "invitedUserMessageInfo",
    "invitedUserType",
    "inviteRedeemUrl",
    "inviteRedirectUrl",
    "resetRedemption",
    "sendInvitationMessage",
    "status",
    "invitedUser",
    "invitedUserSponsors",
];

pub(crate) async fn create(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    for key in body.keys().filter(|k| !k.contains('@')) {
        if !PROPERTIES.contains(&key.as_str()) {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        }
    }
    let email = match body.get("invitedUserEmailAddress") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(GraphError::bad_request("The invitedUserEmailAddress property is required.")),
    };
    let redirect = match body.get("inviteRedirectUrl") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err(GraphError::bad_request("The inviteRedirectUrl property is required.")),
    };
    let user_type = match body.get("invitedUserType") {
        None | Some(Value::Null) => UserType::Guest,
        Some(Value::String(t)) => UserType::parse(t)
            .ok_or_else(|| GraphError::bad_request(format!("Invalid value '{t}' for invitedUserType: Guest or Member.")))?,
        Some(_) => return Err(GraphError::bad_request("invitedUserType must be a string.")),
    };
    let display_name = opt_string(body.get("invitedUserDisplayName"), "invitedUserDisplayName")?;
    let send = opt_bool(body.get("sendInvitationMessage"), "sendInvitationMessage")?.unwrap_or(false);
    let reset = opt_bool(body.get("resetRedemption"), "resetRedemption")?.unwrap_or(false);
    let message_info: Option<wire::InvitedUserMessageInfo> = match body.get("invitedUserMessageInfo") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value(v.clone())
                .map_err(|e| GraphError::bad_request(format!("Invalid invitedUserMessageInfo: {e}.")))?,
        ),
    };
    if message_info.as_ref().is_some_and(|m| m.cc_recipients.len() > 1) {
        return Err(GraphError::bad_request("Only one ccRecipient is currently supported."));
    }
    let core_info = message_info.as_ref().map(InvitedUserMessageInfo::from);

    let tenant = ctx.tenant().to_string();
    let result = if reset {
        let Some(user_id) = body.get("invitedUser").and_then(|u| u.get("id")).and_then(Value::as_str).map(str::to_string) else {
            return Err(GraphError::bad_request("invitedUser.id is required when resetRedemption is true."));
        };
        let address = email.clone();
        ctx.db(move |dir| {
            let user = dir
                .user(&tenant, &user_id)?
                .ok_or_else(|| crate::directory::DirectoryError::NotFound(format!("user {user_id}")))?;
            if !crate::core::validate::same_address(&user.mail, &address) {
                return Err(crate::directory::DirectoryError::Invalid(format!(
                    "invitedUserEmailAddress {address} is not the address of user {user_id}"
                )));
            }
            dir.reset_redemption(&tenant, &user_id)
        })
        .await?
    } else {
        let invitation = InvitationRequest {
            re_invite: true,
            invited_user_email_address: email.clone(),
            invited_user_display_name: display_name.clone(),
            invite_redirect_url: redirect.clone(),
            invited_user_type: user_type,
            send_invitation_message: send,
            invited_user_message_info: core_info,
            groups: vec![],
        };
        let outcomes = ctx.db(move |dir| dir.apply_then(&tenant, &[Operation::Invite { invitation }], |_, o| Ok(o))).await?;
        match outcomes.into_iter().next() {
            Some(Outcome::Invited(r)) => r,
            other => return Err(GraphError::internal(format!("the directory answered {other:?} to an invitation"))),
        }
    };
    let info = message_info.unwrap_or_default();
    Ok(GraphResponse::created(json!({
        "@odata.context": ctx.context(req.version, "invitations/$entity"),
        "id": uuid::Uuid::new_v4().to_string(),
        "inviteRedeemUrl": redeem_link(&ctx.base, &result.invite_redeem_url),
        "invitedUserDisplayName": display_name,
        "invitedUserType": user_type.as_str(),
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": send,
        "resetRedemption": reset,
        "inviteRedirectUrl": redirect,
        "status": result.status,
        "invitedUserMessageInfo": {
            "messageLanguage": info.message_language,
            "customizedMessageBody": info.customized_message_body,
            "ccRecipients": info.cc_recipients,
        },
        "invitedUser": { "id": result.user_id },
    })))
}

/// The local directory's `entente://redeem?…` as a link into this emulator.
fn redeem_link(base: &str, url: &str) -> String {
    match url.strip_prefix("entente://redeem?") {
        Some(query) => format!("{base}/redeem?{query}"),
        None => url.to_string(),
    }
}

/// `GET /redeem?tenant=…&ticket=…`: the guest accepts the invitation (what opening the link does).
pub(crate) async fn redeem_page(state: &std::sync::Arc<super::server::State>, query: Option<&str>) -> GraphResponse {
    let url = format!("entente://redeem?{}", query.unwrap_or_default());
    let dir = state.dir.clone();
    let redeemed = tokio::task::spawn_blocking(move || dir.redeem_url(&url)).await;
    match redeemed {
        Ok(Ok(user)) => GraphResponse::text(
            http::StatusCode::OK,
            format!("Invitation accepted: {} is signed in as {}.\n", user.mail, user.user_principal_name),
        ),
        Ok(Err(e)) => GraphResponse::text(http::StatusCode::BAD_REQUEST, format!("This invitation link cannot be used: {e}\n")),
        Err(e) => GraphResponse::text(http::StatusCode::INTERNAL_SERVER_ERROR, format!("redeeming failed: {e}\n")),
    }
}

fn opt_string(v: Option<&Value>, name: &str) -> Result<Option<String>, GraphError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::bad_request(format!("{name} must be a string."))),
    }
}

fn opt_bool(v: Option<&Value>, name: &str) -> Result<Option<bool>, GraphError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(GraphError::bad_request(format!("{name} must be a boolean."))),
    }
}
