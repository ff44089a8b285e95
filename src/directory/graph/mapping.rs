//! Graph payloads → the core's canonical forms, so the planner compares meaning, not spelling: Graph
//! reorders target lists, omits empty blocks and mixes `null` with `false`, and none of that may show
//! as a change (or drift never ends). Pure functions, tested without HTTP.

use std::collections::{BTreeMap, BTreeSet};

use crate::core::model::{Cloud, GuestUser, PartnerConfiguration, RedemptionState, UserType};
use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration, resolve_domain_list};
use crate::core::settings::{DomainList, GUEST_ROLE_LIMITED};
use crate::core::sync::{DirectoryUser, SYNCABLE_ATTRIBUTES, is_profile_attribute};
use crate::core::tenant_profile::{
    CompanyBranding, SelfServiceAccount, TenantProfile, TenantType, Unsupported, cloud_of_endpoint,
};
use crate::graph::wire::{
    AuthorizationPolicy, CrossTenantAccessPolicyConfigurationDefault, CrossTenantAccessPolicyConfigurationPartner,
    CrossTenantAccessPolicyRoot, CrossTenantIdentitySyncPolicyPartner, User,
};

/// External collaboration settings from the authorization policy and the domain list.
pub fn collaboration(policy: &AuthorizationPolicy, domain_list: Option<&DomainList>) -> ResolvedCollaboration {
    let d = ResolvedCollaboration::default();
    ResolvedCollaboration {
        allow_invites_from: policy.allow_invites_from.unwrap_or(d.allow_invites_from),
        guest_user_role_id: policy
            .guest_user_role_id
            .as_deref()
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| GUEST_ROLE_LIMITED.to_string()),
        allow_email_verified_users_to_join_organization: policy
            .allow_email_verified_users_to_join_organization
            .unwrap_or(d.allow_email_verified_users_to_join_organization),
        domain_list: domain_list.and_then(resolve_domain_list),
    }
}

/// The default configuration, resolved on top of the system default (R1): what Graph leaves out or
/// sends as null is the system default.
pub fn default_access(config: &CrossTenantAccessPolicyConfigurationDefault) -> ResolvedAccess {
    ResolvedAccess::system_default().overlay(&config.settings())
}

/// A partner configuration as stored: null settings inherit (R2), `isInMultiTenantOrganization` null is false.
pub fn partner(
    config: &CrossTenantAccessPolicyConfigurationPartner,
    sync: Option<&CrossTenantIdentitySyncPolicyPartner>,
) -> PartnerConfiguration {
    PartnerConfiguration {
        tenant_id: config.tenant_id.trim().to_ascii_lowercase(),
        settings: config.settings(),
        identity_synchronization: sync.map(CrossTenantIdentitySyncPolicyPartner::to_core),
        is_in_multi_tenant_organization: config.is_in_multi_tenant_organization.unwrap_or(false),
    }
}

/// Whether a user is one the snapshot lists: a guest, or anyone created by invitation.
pub fn is_external(user: &User) -> bool {
    user.user_type.as_deref() == Some("Guest") || user.creation_type.as_deref() == Some("Invitation")
}

/// The address a guest was invited with: `mail`, else the first of `otherMails`, else read back from
/// the guest UPN (`alice_fabrikam.com#EXT#@contoso.onmicrosoft.com` → `alice@fabrikam.com`).
pub fn guest_mail(user: &User) -> Option<String> {
    if let Some(m) = user.mail.as_deref().filter(|m| !m.trim().is_empty()) {
        return Some(m.trim().to_string());
    }
    if let Some(m) = user.other_mails.iter().find(|m| !m.trim().is_empty()) {
        return Some(m.trim().to_string());
    }
    let upn = user.user_principal_name.as_deref()?;
    let (local, _) = upn.split_once("#EXT#")?;
    let (name, domain) = local.rsplit_once('_')?;
    Some(format!("{name}@{domain}"))
}

/// A Graph user as the core's guest, with the ids of its groups.
pub fn guest(user: &User, group_ids: BTreeSet<String>) -> Option<GuestUser> {
    if user.id.is_empty() {
        return None;
    }
    Some(GuestUser {
        id: user.id.clone(),
        mail: guest_mail(user)?,
        display_name: user.display_name.clone(),
        user_principal_name: user.user_principal_name.clone().unwrap_or_default(),
        user_type: user.user_type.as_deref().and_then(UserType::parse).unwrap_or(UserType::Member),
        creation_type: user.creation_type.clone(),
        external_user_state: user.external_user_state.as_deref().and_then(RedemptionState::parse),
        external_user_state_change_date_time: user.external_user_state_change_date_time.clone(),
        account_enabled: user.account_enabled.unwrap_or(true),
        group_ids,
    })
}

/// Guests from users and memberships (group id → member ids), ordered by mail then id like the local
/// directory's.
pub fn guests<'a>(users: impl IntoIterator<Item = &'a User>, members: &BTreeMap<String, BTreeSet<String>>) -> Vec<GuestUser> {
    let mut out: Vec<GuestUser> = users
        .into_iter()
        .filter_map(|u| {
            let groups = members.iter().filter(|(_, m)| m.contains(&u.id)).map(|(g, _)| g.clone()).collect();
            guest(u, groups)
        })
        .collect();
    out.sort_by(|a, b| a.mail.to_ascii_lowercase().cmp(&b.mail.to_ascii_lowercase()).then_with(|| a.id.cmp(&b.id)));
    out
}

/// The `$select` a cross-tenant sync reads users with: what identifies and classifies a user, and every
/// property a mapping may read (`SYNCABLE_ATTRIBUTES`).
pub fn sync_user_select() -> String {
    let mut props = vec!["id", "displayName", "mail", "userPrincipalName", "userType", "creationType", "accountEnabled"];
    props.extend(SYNCABLE_ATTRIBUTES.iter().copied().filter(|p| is_profile_attribute(p)));
    props.join(",")
}

/// Whether a user object carries what `directory_user` needs to classify it; a delta item may hold
/// only the properties that changed.
pub fn is_whole_sync_user(user: &serde_json::Value) -> bool {
    ["userPrincipalName", "userType", "accountEnabled"].iter().all(|p| user.get(p).is_some())
}

/// A Graph user (as `sync_user_select` reads it) as the core's `DirectoryUser`. Profile attributes
/// that are absent, `null` or blank are left out of `attributes`. `None` without an id.
pub fn directory_user(user: &serde_json::Value) -> Option<DirectoryUser> {
    let text = |name: &str| user.get(name).and_then(serde_json::Value::as_str).map(str::to_string);
    let id = text("id").filter(|id| !id.is_empty())?;
    let attributes = SYNCABLE_ATTRIBUTES
        .iter()
        .filter(|name| is_profile_attribute(name))
        .filter_map(|name| Some((name.to_string(), text(name).filter(|v| !v.trim().is_empty())?)))
        .collect();
    Some(DirectoryUser {
        id,
        user_principal_name: text("userPrincipalName").unwrap_or_default(),
        mail: text("mail").filter(|m| !m.trim().is_empty()),
        display_name: text("displayName"),
        user_type: text("userType").as_deref().and_then(UserType::parse).unwrap_or(UserType::Member),
        creation_type: text("creationType"),
        account_enabled: user.get("accountEnabled").and_then(serde_json::Value::as_bool).unwrap_or(true),
        attributes,
    })
}

/// What the Graph backend cannot read or write of the tenant profile, with why: the three self-service
/// account options with no Graph v1.0 API (`SELF_SERVICE_NOT_IMPLEMENTED`, keyed
/// `selfServiceAccount.{option}`), and the tenant type when `organization` could not be read
/// (`type_error`). A manifest that turns an option on is told that applying fails (`NotImplemented`)
/// rather than having it skipped silently; an unreadable type is taken from the manifest. For an external
/// tenant, `selfServiceAccount.passwordReset` is read and written, and listed only to say what `false`
/// does (`PASSWORD_RESET_FALSE`), not as refused.
pub fn unsupported_profile(type_error: Option<&str>, external: bool) -> Unsupported {
    let mut out = Unsupported::new();
    for (option, why) in SELF_SERVICE_NOT_IMPLEMENTED {
        out.insert(format!("selfServiceAccount.{option}"), why.to_string());
    }
    if external {
        out.insert("selfServiceAccount.passwordReset".to_string(), PASSWORD_RESET_FALSE.to_string());
    }
    if let Some(why) = type_error {
        out.insert("tenantType".to_string(), why.to_string());
    }
    out
}

/// The self-service account options of external tenants that Graph v1.0 has no API for, by manifest
/// name. External tenants' user flows (`authenticationEventsFlow`, `externalUsersSelfServiceSignUpEventsFlow`)
/// cover sign-up and sign-in only, with no profile-edit or account-deletion step; MFA registration has no
/// switch of its own (it follows from conditional access and the authentication methods policy). Graph
/// reads them as off, and turning one on fails with `NotImplemented`.
pub const SELF_SERVICE_NOT_IMPLEMENTED: [(&str, &str); 3] = [
    (
        "profileEdit",
        "profile edit of an external tenant's customers has no Microsoft Graph v1.0 API (external tenants' user \
         flows, authenticationEventsFlow, cover sign-up and sign-in only)",
    ),
    (
        "accountDeletion",
        "self-service account deletion of an external tenant's customers has no Microsoft Graph v1.0 API \
         (external tenants' user flows, authenticationEventsFlow, cover sign-up and sign-in only)",
    ),
    (
        "mfaEnrollment",
        "MFA enrollment of an external tenant's customers has no Microsoft Graph v1.0 switch: it follows from \
         conditional access and the authentication methods policy",
    ),
];

/// What `passwordReset: false` does over Graph (a plan note, not a refusal).
pub const PASSWORD_RESET_FALSE: &str = "false only hides the sign-in page's password reset link (the \
    branding's loginPageTextVisibilitySettings.hideAccountResetCredentials); the email one-time passcode \
    authentication method stays enabled, because customers may sign in with email one-time passcodes and \
    switching it off would lock them out";

/// The `NotImplemented` message for the options of `s` that are on and have no Graph v1.0 API, if any.
pub fn self_service_not_implemented(s: &SelfServiceAccount) -> Option<String> {
    let on = [s.profile_edit, s.account_deletion, s.mfa_enrollment];
    let whys: Vec<String> = SELF_SERVICE_NOT_IMPLEMENTED
        .iter()
        .zip(on)
        .filter(|(_, on)| *on)
        .map(|((option, why), _)| format!("selfServiceAccount.{option}: {why}"))
        .collect();
    (!whys.is_empty()).then(|| whys.join("; "))
}

/// An external tenant's self-service password reset as Graph holds it: the email authentication method
/// (`emailAuthenticationMethodConfiguration`) `enabled` with the `all_users` group among its
/// `includeTargets`, and a branding (`organizationalBranding`, `None`: the tenant has none) that does not
/// hide the sign-in form's password reset links (`loginPageTextVisibilitySettings.hideAccountResetCredentials`
/// unset or `false`). Without a branding the neutral default applies, which Microsoft's external tenant
/// guide says may not show the link ("If the Forgot password? link doesn't appear…"): read as hidden, so
/// entente states it in a branding.
pub fn password_reset(email_method: &serde_json::Value, branding: Option<&serde_json::Value>) -> bool {
    email_method_for_all_users(email_method) && !reset_link_hidden(branding)
}

/// Whether the email authentication method is enabled for all users.
pub fn email_method_for_all_users(m: &serde_json::Value) -> bool {
    let enabled = m.get("state").and_then(serde_json::Value::as_str) == Some("enabled");
    enabled && m.get("includeTargets").and_then(serde_json::Value::as_array).is_some_and(|t| t.iter().any(is_all_users))
}

/// An `authenticationMethodTarget` naming every user: the `group` `all_users`.
pub fn is_all_users(target: &serde_json::Value) -> bool {
    target.get("targetType").and_then(serde_json::Value::as_str) == Some("group")
        && target.get("id").and_then(serde_json::Value::as_str) == Some(ALL_USERS)
}

/// The `authenticationMethodTarget` id of every user.
pub const ALL_USERS: &str = "all_users";

/// Whether the self-service password reset links are hidden (or not known to show: no branding).
pub fn reset_link_hidden(branding: Option<&serde_json::Value>) -> bool {
    let Some(b) = branding else { return true };
    b.get("loginPageTextVisibilitySettings")
        .and_then(|v| v.get("hideAccountResetCredentials"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Graph's `organization.tenantType` as the core's type: `AAD` workforce, `CIAM` external; anything else
/// (`AAD B2C`) is neither, and says why.
pub fn tenant_type(graph: &str) -> Result<TenantType, String> {
    match graph.trim() {
        t if t.eq_ignore_ascii_case("AAD") => Ok(TenantType::Workforce),
        t if t.eq_ignore_ascii_case("CIAM") => Ok(TenantType::External),
        other => {
            Err(format!("organization.tenantType is {other:?}: entente manages workforce (AAD) and external (CIAM) tenants only"))
        }
    }
}

/// An `organizationalBranding` as the core's canonical branding: texts and colour as Graph holds them (an
/// empty string is unset). Graph does not keep the reference an image was uploaded from, only a relative
/// CDN URL that changes with every upload, so an image Graph holds reads as `graph:{relativeUrl}` here;
/// `profile.rs` then reads its stream and shows it as `sha256:…` of its bytes, compared by content.
pub fn branding(b: &serde_json::Value) -> CompanyBranding {
    let text = |name: &str| b.get(name).and_then(serde_json::Value::as_str).map(str::to_string);
    let image = |name: &str| text(&format!("{name}RelativeUrl")).filter(|u| !u.trim().is_empty()).map(|u| format!("graph:{u}"));
    CompanyBranding {
        sign_in_page_text: text("signInPageText"),
        username_hint_text: text("usernameHintText"),
        background_color: text("backgroundColor"),
        banner_logo: image("bannerLogo"),
        square_logo: image("squareLogo"),
        background_image: image("backgroundImage"),
        ..Default::default()
    }
    .canonical()
}

/// R14: `allowedCloudEndpoints` as clouds. Endpoints entente does not know are left out (and logged).
pub fn allowed_clouds(policy: &CrossTenantAccessPolicyRoot) -> BTreeSet<Cloud> {
    policy
        .allowed_cloud_endpoints
        .iter()
        .filter_map(|e| {
            let cloud = cloud_of_endpoint(e);
            if cloud.is_none() {
                tracing::warn!(endpoint = %e, "allowedCloudEndpoints holds an endpoint entente does not know; it is ignored");
            }
            cloud
        })
        .collect()
}

/// The profile a Graph tenant shows entente: its cloud settings (R14), its type, its branding and (an
/// external tenant) whether customers may reset their password. The other self-service options have no
/// Graph v1.0 API and read as off; settings that are all off read as none, as a manifest without them.
pub fn profile(
    policy: &CrossTenantAccessPolicyRoot,
    tenant_type: TenantType,
    branding: Option<CompanyBranding>,
    password_reset: bool,
) -> TenantProfile {
    let branding = branding.filter(|b| *b != CompanyBranding::default());
    let self_service_account = (tenant_type == TenantType::External && password_reset)
        .then(|| SelfServiceAccount { password_reset, ..Default::default() });
    TenantProfile { allowed_clouds: allowed_clouds(policy), tenant_type, branding, self_service_account }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::settings::{AccessType, AllowInvitesFrom, DomainListMode};

    #[test]
    fn tenant_types_and_branding_map_from_graph() {
        assert_eq!(tenant_type("CIAM"), Ok(TenantType::External));
        assert_eq!(tenant_type("AAD"), Ok(TenantType::Workforce));
        assert!(tenant_type("AAD B2C").unwrap_err().contains("\"AAD B2C\""));
        let b = branding(&serde_json::json!({"id": "0", "signInPageText": "Hi", "usernameHintText": "",
            "backgroundColor": "#00ff00", "bannerLogoRelativeUrl": "t/logintenantbranding/0/bannerlogo?ts=1",
            "squareLogoRelativeUrl": null, "cdnList": ["aadcdn.msftauthimages.net"]}));
        assert_eq!(b.sign_in_page_text.as_deref(), Some("Hi"));
        assert_eq!(b.username_hint_text, None);
        assert_eq!(b.background_color.as_deref(), Some("#00FF00"));
        assert_eq!(b.banner_logo.as_deref(), Some("graph:t/logintenantbranding/0/bannerlogo?ts=1"));
        assert_eq!(b.square_logo, None);
        let u = unsupported_profile(None, true);
        for option in ["profileEdit", "accountDeletion", "mfaEnrollment"] {
            assert!(u[&format!("selfServiceAccount.{option}")].contains("v1.0"), "{option}");
        }
        assert!(u["selfServiceAccount.passwordReset"].contains("stays enabled"));
        assert!(!u.contains_key("branding") && !u.contains_key("selfServiceAccount"));
        assert!(!unsupported_profile(None, false).contains_key("selfServiceAccount.passwordReset"));
    }

    #[test]
    fn password_reset_needs_the_email_method_for_all_users_and_a_shown_link() {
        let all = serde_json::json!({"state": "enabled", "includeTargets": [{"targetType": "group", "id": "all_users"}]});
        let shown = serde_json::json!({"id": "0", "loginPageTextVisibilitySettings": {"hideAccountResetCredentials": false}});
        let hidden = serde_json::json!({"id": "0", "loginPageTextVisibilitySettings": {"hideAccountResetCredentials": true}});
        assert!(password_reset(&all, Some(&shown)));
        assert!(!password_reset(&all, None), "no branding: the links are not known to show");
        assert!(password_reset(&all, Some(&serde_json::json!({"id": "0"}))));
        assert!(!password_reset(&all, Some(&hidden)));
        let disabled = serde_json::json!({"state": "disabled", "includeTargets": [{"targetType": "group", "id": "all_users"}]});
        assert!(!password_reset(&disabled, Some(&shown)));
        let some = serde_json::json!({"state": "enabled", "includeTargets": [{"targetType": "group", "id": "g1"}]});
        assert!(!password_reset(&some, Some(&shown)));
        let on = SelfServiceAccount { password_reset: true, profile_edit: true, mfa_enrollment: true, ..Default::default() };
        let why = self_service_not_implemented(&on).unwrap();
        assert!(why.contains("profileEdit") && why.contains("mfaEnrollment") && !why.contains("accountDeletion"), "{why}");
        assert!(!why.contains("passwordReset"), "{why}");
        assert_eq!(self_service_not_implemented(&SelfServiceAccount { password_reset: true, ..Default::default() }), None);
    }

    #[test]
    fn graph_spelling_never_shows_as_a_change() {
        // The same default configuration, spelled three ways Graph may answer it.
        let full = r#"{"b2bCollaborationInbound":{"usersAndGroups":{"accessType":"allowed","targets":[{"target":"AllUsers","targetType":"user"}]},
            "applications":{"accessType":"allowed","targets":[{"target":"Office365","targetType":"application"}]}},
            "inboundTrust":{"isMfaAccepted":false,"isCompliantDeviceAccepted":false,"isHybridAzureADJoinedDeviceAccepted":false},
            "automaticUserConsentSettings":{"inboundAllowed":false,"outboundAllowed":false},
            "tenantRestrictions":{"devices":null,"usersAndGroups":{"accessType":"blocked","targets":[{"target":"AllUsers","targetType":"user"}]},
            "applications":{"accessType":"blocked","targets":[{"target":"AllApplications","targetType":"application"}]}}}"#;
        let sparse = r#"{"b2bCollaborationInbound":{"applications":{"accessType":"allowed","targets":[{"target":"office365","targetType":"application"}]}},
            "inboundTrust":null,"automaticUserConsentSettings":{"inboundAllowed":null,"outboundAllowed":null}}"#;
        let a = default_access(&serde_json::from_str(full).unwrap());
        let b = default_access(&serde_json::from_str(sparse).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.b2b_collaboration_inbound.applications.render(), "allowed: Office365");
        assert_eq!(a.b2b_direct_connect_inbound.users_and_groups.access_type, AccessType::Blocked);
    }

    #[test]
    fn partner_targets_in_any_order_compare_equal() {
        let one = r#"{"tenantId":"ABC","b2bCollaborationInbound":{"usersAndGroups":{"accessType":"allowed","targets":[
            {"target":"G2","targetType":"group"},{"target":"g1","targetType":"group"}]}}}"#;
        let two = r#"{"tenantId":"abc","b2bCollaborationInbound":{"usersAndGroups":{"accessType":"allowed","targets":[
            {"target":"g1","targetType":"group"},{"target":"g2","targetType":"group"},{"target":"G1","targetType":"group"}]},"applications":null},
            "inboundTrust":{"isMfaAccepted":null},"isInMultiTenantOrganization":null}"#;
        let p1 = partner(&serde_json::from_str(one).unwrap(), None);
        let p2 = partner(&serde_json::from_str(two).unwrap(), None);
        assert_eq!(p1.tenant_id, "abc");
        let d = ResolvedAccess::system_default();
        assert_eq!(d.overlay(&p1.settings), d.overlay(&p2.settings));
        assert!(p2.settings.inbound_trust.is_none(), "an all-null block inherits");
        assert!(!p2.is_in_multi_tenant_organization);
    }

    #[test]
    fn collaboration_defaults_fill_nulls() {
        let c = collaboration(&AuthorizationPolicy::default(), None);
        assert_eq!(c, ResolvedCollaboration::default());
        let p = AuthorizationPolicy {
            allow_invites_from: Some(AllowInvitesFrom::None),
            guest_user_role_id: Some("2AF84B1E-32C8-42B7-82BC-DAA82404023B".into()),
            ..Default::default()
        };
        let list = DomainList { mode: DomainListMode::BlockList, domains: vec!["Litware.com ".into()] };
        let c = collaboration(&p, Some(&list));
        assert_eq!(c.guest_user_role_id, "2af84b1e-32c8-42b7-82bc-daa82404023b");
        assert_eq!(c.domain_list.unwrap().domains.into_iter().collect::<Vec<_>>(), vec!["litware.com"]);
        let empty_block = DomainList { mode: DomainListMode::BlockList, domains: vec![] };
        assert_eq!(collaboration(&AuthorizationPolicy::default(), Some(&empty_block)).domain_list, None);
    }

    #[test]
    fn guests_map_with_their_groups_and_a_mail_even_without_mail() {
        let users: Vec<User> = serde_json::from_str(
            r#"[{"id":"u2","userPrincipalName":"bob_fabrikam.com#EXT#@contoso.onmicrosoft.com","userType":"Guest","creationType":"Invitation","externalUserState":"Accepted"},
                {"id":"u1","mail":"Alice@fabrikam.com","userType":"Member","creationType":"Invitation","accountEnabled":false}]"#,
        )
        .unwrap();
        let members = BTreeMap::from([("g1".to_string(), BTreeSet::from(["u1".to_string()]))]);
        let g = guests(&users, &members);
        assert_eq!(g[0].mail, "Alice@fabrikam.com");
        assert_eq!(g[0].user_type, UserType::Member);
        assert_eq!(g[0].group_ids, BTreeSet::from(["g1".to_string()]));
        assert!(!g[0].account_enabled);
        assert_eq!(g[1].mail, "bob@fabrikam.com");
        assert_eq!(g[1].external_user_state, Some(RedemptionState::Accepted));
        assert!(users.iter().all(is_external));
    }

    #[test]
    fn sync_users_carry_profile_attributes_and_leave_nulls_out() {
        let select = sync_user_select();
        assert!(select.starts_with("id,displayName,mail,userPrincipalName,userType,creationType,accountEnabled,"));
        assert!(select.contains("jobTitle") && select.contains("usageLocation"));
        assert_eq!(select.matches("displayName").count(), 1, "{select}");
        let v = serde_json::json!({"id":"u1","userPrincipalName":"ann@contoso.com","mail":"ann@contoso.com","userType":"Member",
            "accountEnabled":false,"jobTitle":"Engineer","department":null,"surname":"  ","companyName":"Contoso"});
        let u = directory_user(&v).unwrap();
        assert_eq!(u.user_type, UserType::Member);
        assert!(!u.account_enabled && u.is_internal_member());
        assert_eq!(
            u.attributes,
            BTreeMap::from([
                ("companyName".to_string(), "Contoso".to_string()),
                ("jobTitle".to_string(), "Engineer".to_string())
            ])
        );
        assert!(is_whole_sync_user(&v));
        assert!(!is_whole_sync_user(&serde_json::json!({"id":"u1","jobTitle":"x"})));
        assert!(directory_user(&serde_json::json!({"displayName":"no id"})).is_none());
        let guest = directory_user(&serde_json::json!({"id":"g","userType":"Guest","creationType":"Invitation"})).unwrap();
        assert!(!guest.is_internal_member() && guest.account_enabled);
    }
}
