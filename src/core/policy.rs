//! The product rules as pure functions: what a tenant's settings allow (R3–R5, R9–R12).
//!
//! The local directory enforces these when an invitation is sent or redeemed; the planner uses the
//! same functions to predict a refusal before anything is written, so `plan` shows it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::model::{Cloud, TenantIdentity, TenantSnapshot};
use super::resolved::{Access, ResolvedAccess, ResolvedCollaboration, ResolvedDomainList};
use super::settings::{AllowInvitesFrom, CrossTenantAccessSettings, DomainListMode};
use super::tenant_profile::{cloud_keyword, cloud_name};

/// What one tenant's settings say, in the shape the rules need.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantPolicy {
    pub identity: TenantIdentity,
    pub collaboration: ResolvedCollaboration,
    pub default_access: ResolvedAccess,
    /// Partner configurations by lowercase partner tenant id, as stored (absent settings inherit).
    pub partners: BTreeMap<String, CrossTenantAccessSettings>,
    /// R14: the other Microsoft clouds this tenant allows B2B collaboration with (`microsoftCloudSettings`).
    pub allowed_clouds: BTreeSet<Cloud>,
}

impl TenantPolicy {
    pub fn from_snapshot(s: &TenantSnapshot) -> Self {
        Self {
            identity: s.identity.clone(),
            collaboration: s.external_collaboration.clone(),
            default_access: s.default_access.clone(),
            partners: s.partners.iter().map(|p| (p.tenant_id.to_ascii_lowercase(), p.settings.clone())).collect(),
            allowed_clouds: s.profile.allowed_clouds.clone(),
        }
    }

    /// The settings in force toward `other` (R2).
    pub fn effective_for(&self, other: &str) -> ResolvedAccess {
        match self.partners.get(&other.to_ascii_lowercase()) {
            Some(p) => self.default_access.overlay(p),
            None => self.default_access.clone(),
        }
    }

    /// Which configuration decided a setting toward `other`: the partner's when it sets it, else the default.
    pub(crate) fn source(&self, other: &str, set_by_partner: impl Fn(&CrossTenantAccessSettings) -> bool) -> Source {
        match self.partners.get(&other.to_ascii_lowercase()) {
            Some(p) if set_by_partner(p) => Source::Partner(other.to_ascii_lowercase()),
            _ => Source::Default,
        }
    }

    pub fn name(&self) -> &str {
        &self.identity.initial_domain
    }
}

/// Which configuration of a tenant decided a setting.
pub(crate) enum Source {
    Default,
    Partner(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default cross-tenant access configuration"),
            Source::Partner(id) => write!(f, "partner configuration for tenant {id}"),
        }
    }
}

/// Why an invitation (or its redemption) was refused. The names are the condition reasons users see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// R4: `allowInvitesFrom` is `none`.
    InvitationsDisabled,
    /// R5: the domain list refuses the address's domain.
    DomainBlocked,
    /// R3/R9: cross-tenant access settings of the resource or the home tenant block B2B collaboration.
    CrossTenantAccessBlocked,
    /// R13: the target tenant does not allow inbound user sync from the source tenant
    /// (`identitySynchronization.userSyncInbound.isSyncAllowed` of its partner configuration).
    SyncNotAllowed,
    /// R14: the user's home tenant is in another Microsoft cloud, and the resource or the home tenant does
    /// not allow the other's cloud (`microsoftCloudSettings.allowedClouds`).
    CloudNotAllowed,
    /// R17: a sign-up flow offers (or a user signs up with) an identity provider that does not exist or is
    /// disabled, or a provider a flow offers is disabled or deleted.
    SignUpProviderUnavailable,
}

impl RefusalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvitationsDisabled => "InvitationsDisabled",
            Self::DomainBlocked => "DomainBlocked",
            Self::CrossTenantAccessBlocked => "CrossTenantAccessBlocked",
            Self::SyncNotAllowed => "SyncNotAllowed",
            Self::CloudNotAllowed => "CloudNotAllowed",
            Self::SignUpProviderUnavailable => "SignUpProviderUnavailable",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::InvitationsDisabled,
            Self::DomainBlocked,
            Self::CrossTenantAccessBlocked,
            Self::SyncNotAllowed,
            Self::CloudNotAllowed,
            Self::SignUpProviderUnavailable,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A refusal with a message naming the rule, the setting and the tenant that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: RefusalReason,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

/// The invited person's home tenant, when it is a directory tenant we know, and who they are there.
pub struct Home<'a> {
    pub policy: &'a TenantPolicy,
    /// Object ids that identify the person in the home tenant (user id and its groups' ids), when known.
    /// `None`: unknown, so a setting that names specific users or groups cannot be judged and is not held
    /// against the invitation (the directory, which knows the person, decides).
    pub principal_ids: Option<Vec<String>>,
}

/// The domain part of an address, lowercase.
pub fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, d)| d)
}

/// R3, R4, R5, R9: may `resource` invite `email` now? External collaboration settings first
/// (invitation time), then cross-tenant access settings of both tenants (the most restrictive wins).
pub fn check_invitation(resource: &TenantPolicy, email: &str, home: Option<&Home<'_>>) -> Result<(), Refusal> {
    if resource.collaboration.allow_invites_from == AllowInvitesFrom::None {
        return Err(Refusal {
            reason: RefusalReason::InvitationsDisabled,
            message: format!(
                "tenant {} refuses all invitations: externalCollaboration.allowInvitesFrom is \"none\" (R4)",
                resource.name()
            ),
        });
    }
    check_domain_list(resource, email)?;
    if let Some(home) = home {
        check_clouds(resource, home.policy)?;
    }
    check_collaboration_users(resource, home)
}

/// R3 (second example): a pending invitation is redeemed only while the domain list and the cross-tenant
/// access settings still allow it. Who may invite (R4) no longer matters once the invitation exists.
pub fn check_redemption(resource: &TenantPolicy, email: &str, home: Option<&Home<'_>>) -> Result<(), Refusal> {
    check_domain_list(resource, email)?;
    if let Some(home) = home {
        check_clouds(resource, home.policy)?;
    }
    check_collaboration_users(resource, home)
}

fn check_domain_list(resource: &TenantPolicy, email: &str) -> Result<(), Refusal> {
    let Some(ResolvedDomainList { mode, domains }) = &resource.collaboration.domain_list else { return Ok(()) };
    let domain = email_domain(email).to_ascii_lowercase();
    let listed = domains.contains(&domain);
    let refused = match mode {
        DomainListMode::BlockList => listed,
        DomainListMode::AllowList => !listed,
    };
    if !refused {
        return Ok(());
    }
    let why = match mode {
        DomainListMode::BlockList => "is on the block list",
        DomainListMode::AllowList if domains.is_empty() => "is not allowed: the allow list is empty",
        DomainListMode::AllowList => "is not on the allow list",
    };
    Err(Refusal {
        reason: RefusalReason::DomainBlocked,
        message: format!("domain {domain} {why} of tenant {} (externalCollaboration.domainList, R5)", resource.name()),
    })
}

/// The tenants of a pair in different clouds that do not allow the other's cloud (R14), each with the
/// cloud it lacks. Empty when both are in the same cloud or both allow each other's.
pub fn clouds_lacking<'a>(resource: &'a TenantPolicy, home: &'a TenantPolicy) -> Vec<(&'a TenantPolicy, Cloud)> {
    let (rc, hc) = (resource.identity.cloud, home.identity.cloud);
    if rc == hc {
        return vec![];
    }
    [(resource, hc), (home, rc)].into_iter().filter(|(t, other)| !t.allowed_clouds.contains(other)).collect()
}

/// R14: B2B collaboration between two clouds needs both tenants to allow the other's cloud.
pub fn check_clouds(resource: &TenantPolicy, home: &TenantPolicy) -> Result<(), Refusal> {
    let lacking = clouds_lacking(resource, home);
    if lacking.is_empty() {
        return Ok(());
    }
    let why: Vec<String> = lacking
        .iter()
        .map(|(t, other)| {
            format!("microsoftCloudSettings.allowedClouds of tenant {} does not include {}", t.name(), cloud_keyword(*other))
        })
        .collect();
    Err(Refusal {
        reason: RefusalReason::CloudNotAllowed,
        message: format!(
            "B2B collaboration between {} ({} cloud) and {} ({} cloud) needs both tenants to allow the other's cloud: {} (R14)",
            resource.name(),
            cloud_name(resource.identity.cloud),
            home.name(),
            cloud_name(home.identity.cloud),
            why.join("; ")
        ),
    })
}

/// R9 at invitation time: users and groups only; which application the guest will use is not known yet.
fn check_collaboration_users(resource: &TenantPolicy, home: Option<&Home<'_>>) -> Result<(), Refusal> {
    let Some(home) = home else { return Ok(()) };
    let ids: Vec<&str> = home.principal_ids.iter().flatten().map(String::as_str).collect();
    let judge = |access: &Access| home.principal_ids.is_some() || access.names_only_keywords();
    let home_id = &home.policy.identity.tenant_id;
    let inbound = resource.effective_for(home_id).b2b_collaboration_inbound.users_and_groups;
    if judge(&inbound) && !inbound.admits(&ids) {
        let source =
            resource.source(home_id, |p| p.b2b_collaboration_inbound.as_ref().is_some_and(|b| b.users_and_groups.is_some()));
        return Err(blocked(resource, "b2bCollaborationInbound.usersAndGroups", &inbound, &source, home.policy));
    }
    let resource_id = &resource.identity.tenant_id;
    let outbound = home.policy.effective_for(resource_id).b2b_collaboration_outbound.users_and_groups;
    if judge(&outbound) && !outbound.admits(&ids) {
        let source = home
            .policy
            .source(resource_id, |p| p.b2b_collaboration_outbound.as_ref().is_some_and(|b| b.users_and_groups.is_some()));
        return Err(blocked(home.policy, "b2bCollaborationOutbound.usersAndGroups", &outbound, &source, resource));
    }
    Ok(())
}

fn blocked(decider: &TenantPolicy, setting: &str, value: &Access, source: &Source, other: &TenantPolicy) -> Refusal {
    Refusal {
        reason: RefusalReason::CrossTenantAccessBlocked,
        message: format!(
            "tenant {} blocks B2B collaboration with {}: {setting} of its {source} is \"{}\" (R3, R9)",
            decider.name(),
            other.name(),
            value.render()
        ),
    }
}

/// How a user of `home` reaches an application of `resource` by B2B collaboration, and what they go through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessDecision {
    pub allowed: bool,
    /// R11: the resource tenant asks for MFA itself (it does not trust the home tenant's).
    pub mfa_challenge_by_resource: bool,
    /// R12: the user is not asked to consent.
    pub automatic_redemption: bool,
    pub reasons: Vec<String>,
}

/// R9, R11, R12: B2B collaboration access of a user (`principal_ids`) of `home` to `app` in `resource`.
pub fn b2b_collaboration_access(
    resource: &TenantPolicy,
    home: &TenantPolicy,
    principal_ids: &[&str],
    app: &str,
) -> AccessDecision {
    let r_eff = resource.effective_for(&home.identity.tenant_id);
    let h_eff = home.effective_for(&resource.identity.tenant_id);
    let mut reasons = Vec::new();
    let inbound_users = r_eff.b2b_collaboration_inbound.users_and_groups.admits(principal_ids);
    let inbound_app = r_eff.b2b_collaboration_inbound.applications.admits(&[app]);
    let outbound_users = h_eff.b2b_collaboration_outbound.users_and_groups.admits(principal_ids);
    let outbound_app = h_eff.b2b_collaboration_outbound.applications.admits(&[app]);
    for (ok, who, what) in [
        (inbound_users, resource, "b2bCollaborationInbound.usersAndGroups"),
        (inbound_app, resource, "b2bCollaborationInbound.applications"),
        (outbound_users, home, "b2bCollaborationOutbound.usersAndGroups"),
        (outbound_app, home, "b2bCollaborationOutbound.applications"),
    ] {
        reasons.push(format!("{}: {what} {} (R9)", who.name(), if ok { "allows" } else { "blocks" }));
    }
    let mfa_trusted = r_eff.inbound_trust.is_mfa_accepted;
    reasons.push(format!(
        "{}: inboundTrust.isMfaAccepted is {mfa_trusted}: {} (R11)",
        resource.name(),
        if mfa_trusted { "home MFA is trusted" } else { "the resource tenant challenges for MFA itself" }
    ));
    let auto = r_eff.automatic_user_consent_settings.inbound_allowed && h_eff.automatic_user_consent_settings.outbound_allowed;
    reasons.push(format!("automatic redemption {} (R12)", if auto { "applies" } else { "does not apply" }));
    AccessDecision {
        allowed: inbound_users && inbound_app && outbound_users && outbound_app,
        mfa_challenge_by_resource: !mfa_trusted,
        automatic_redemption: auto,
        reasons,
    }
}

/// R10: B2B direct connect needs the resource's inbound and the home's outbound to both allow user and app.
pub fn b2b_direct_connect_allowed(resource: &TenantPolicy, home: &TenantPolicy, principal_ids: &[&str], app: &str) -> bool {
    let r = resource.effective_for(&home.identity.tenant_id).b2b_direct_connect_inbound;
    let h = home.effective_for(&resource.identity.tenant_id).b2b_direct_connect_outbound;
    r.users_and_groups.admits(principal_ids)
        && r.applications.admits(&[app])
        && h.users_and_groups.admits(principal_ids)
        && h.applications.admits(&[app])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::core::model::Cloud;
    use crate::core::resolved::ResolvedDomainList;
    use crate::core::settings::*;

    fn tenant(id: &str, domain: &str) -> TenantPolicy {
        TenantPolicy {
            identity: TenantIdentity {
                tenant_id: id.into(),
                initial_domain: format!("{domain}.onmicrosoft.com"),
                display_name: domain.into(),
                cloud: Cloud::Global,
                verified_domains: BTreeSet::from([format!("{domain}.com")]),
            },
            collaboration: ResolvedCollaboration::default(),
            default_access: ResolvedAccess::system_default(),
            partners: BTreeMap::new(),
            allowed_clouds: BTreeSet::new(),
        }
    }

    fn block_list(domains: &[&str]) -> Option<ResolvedDomainList> {
        Some(ResolvedDomainList { mode: DomainListMode::BlockList, domains: domains.iter().map(|d| d.to_string()).collect() })
    }

    fn blocked_inbound() -> CrossTenantAccessSettings {
        CrossTenantAccessSettings {
            b2b_collaboration_inbound: Some(B2bSetting {
                users_and_groups: Some(TargetConfiguration::new(AccessType::Blocked, vec![AccessTarget::all_users()])),
                applications: None,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn r3_example_1_domain_blocked_refuses_even_when_cross_tenant_allows() {
        let mut contoso = tenant("c", "contoso");
        contoso.collaboration.domain_list = block_list(&["fabrikam.com"]);
        let fabrikam = tenant("f", "fabrikam");
        let home = Home { policy: &fabrikam, principal_ids: Some(vec![]) };
        let err = check_invitation(&contoso, "alice@Fabrikam.com", Some(&home)).unwrap_err();
        assert_eq!(err.reason, RefusalReason::DomainBlocked);
        assert!(err.message.contains("fabrikam.com is on the block list of tenant contoso.onmicrosoft.com"), "{}", err.message);
        assert!(err.message.contains("externalCollaboration.domainList"));
    }

    #[test]
    fn r3_example_2_domain_blocked_later_fails_pending_redemption() {
        let mut contoso = tenant("c", "contoso");
        assert!(check_invitation(&contoso, "bob@fabrikam.com", None).is_ok());
        contoso.collaboration.domain_list = block_list(&["fabrikam.com"]);
        assert_eq!(check_redemption(&contoso, "bob@fabrikam.com", None).unwrap_err().reason, RefusalReason::DomainBlocked);
    }

    #[test]
    fn r4_none_refuses_every_invitation() {
        let mut contoso = tenant("c", "contoso");
        contoso.collaboration.allow_invites_from = AllowInvitesFrom::None;
        let err = check_invitation(&contoso, "a@example.org", None).unwrap_err();
        assert_eq!(err.reason, RefusalReason::InvitationsDisabled);
        assert!(err.message.contains("allowInvitesFrom"));
        for allowed in [
            AllowInvitesFrom::AdminsAndGuestInviters,
            AllowInvitesFrom::AdminsGuestInvitersAndAllMembers,
            AllowInvitesFrom::Everyone,
        ] {
            contoso.collaboration.allow_invites_from = allowed;
            assert!(check_invitation(&contoso, "a@example.org", None).is_ok());
        }
    }

    #[test]
    fn r5_allow_list_matches_case_insensitively_and_empty_refuses_all() {
        let mut contoso = tenant("c", "contoso");
        contoso.collaboration.domain_list =
            Some(ResolvedDomainList { mode: DomainListMode::AllowList, domains: BTreeSet::from(["fabrikam.com".to_string()]) });
        assert!(check_invitation(&contoso, "a@FABRIKAM.COM", None).is_ok());
        assert_eq!(check_invitation(&contoso, "a@other.org", None).unwrap_err().reason, RefusalReason::DomainBlocked);
        contoso.collaboration.domain_list =
            Some(ResolvedDomainList { mode: DomainListMode::AllowList, domains: BTreeSet::new() });
        let err = check_invitation(&contoso, "a@fabrikam.com", None).unwrap_err();
        assert!(err.message.contains("allow list is empty"), "{}", err.message);
    }

    #[test]
    fn r9_resource_inbound_partner_block_names_the_partner_configuration() {
        let mut contoso = tenant("c", "contoso");
        contoso.partners.insert("f".into(), blocked_inbound());
        let fabrikam = tenant("f", "fabrikam");
        let err = check_invitation(&contoso, "a@fabrikam.com", Some(&Home { policy: &fabrikam, principal_ids: Some(vec![]) }))
            .unwrap_err();
        assert_eq!(err.reason, RefusalReason::CrossTenantAccessBlocked);
        assert!(err.message.contains("tenant contoso.onmicrosoft.com blocks"), "{}", err.message);
        assert!(err.message.contains("partner configuration for tenant f"), "{}", err.message);
        // a user of a tenant that is not a directory tenant is not subject to cross-tenant settings
        assert!(check_invitation(&contoso, "a@gmail.com", None).is_ok());
    }

    #[test]
    fn r9_home_outbound_default_block_names_the_home_default() {
        let contoso = tenant("c", "contoso");
        let mut fabrikam = tenant("f", "fabrikam");
        fabrikam.default_access = fabrikam.default_access.overlay(&CrossTenantAccessSettings {
            b2b_collaboration_outbound: blocked_inbound().b2b_collaboration_inbound,
            ..Default::default()
        });
        let err = check_invitation(&contoso, "a@fabrikam.com", Some(&Home { policy: &fabrikam, principal_ids: Some(vec![]) }))
            .unwrap_err();
        assert!(err.message.contains("tenant fabrikam.onmicrosoft.com blocks"), "{}", err.message);
        assert!(err.message.contains("default cross-tenant access configuration"), "{}", err.message);
    }

    #[test]
    fn r9_group_targeted_inbound_admits_members_only() {
        let mut contoso = tenant("c", "contoso");
        contoso.partners.insert(
            "f".into(),
            CrossTenantAccessSettings {
                b2b_collaboration_inbound: Some(B2bSetting {
                    users_and_groups: Some(TargetConfiguration::new(
                        AccessType::Allowed,
                        vec![AccessTarget::new("g-sales", TargetType::Group)],
                    )),
                    applications: None,
                }),
                ..Default::default()
            },
        );
        let fabrikam = tenant("f", "fabrikam");
        let member = Home { policy: &fabrikam, principal_ids: Some(vec!["u1".into(), "g-sales".into()]) };
        let outsider = Home { policy: &fabrikam, principal_ids: Some(vec!["u2".into()]) };
        assert!(check_invitation(&contoso, "a@fabrikam.com", Some(&member)).is_ok());
        assert!(check_invitation(&contoso, "b@fabrikam.com", Some(&outsider)).is_err());
    }

    #[test]
    fn r14_cross_cloud_needs_both_tenants_to_allow_the_other_cloud() {
        let mut contoso = tenant("c", "contoso");
        let mut gov = tenant("g", "fabrikamgov");
        gov.identity.cloud = Cloud::UsGovernment;
        fn home(policy: &TenantPolicy) -> Home<'_> {
            Home { policy, principal_ids: Some(vec![]) }
        }
        let err = check_invitation(&contoso, "a@fabrikamgov.com", Some(&home(&gov))).unwrap_err();
        assert_eq!(err.reason, RefusalReason::CloudNotAllowed);
        assert!(
            err.message.contains("allowedClouds of tenant contoso.onmicrosoft.com does not include usGovernment"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("allowedClouds of tenant fabrikamgov.onmicrosoft.com does not include global"),
            "{}",
            err.message
        );
        contoso.allowed_clouds.insert(Cloud::UsGovernment);
        let err = check_invitation(&contoso, "a@fabrikamgov.com", Some(&home(&gov))).unwrap_err();
        assert!(!err.message.contains("tenant contoso.onmicrosoft.com does not"), "{}", err.message);
        assert!(err.message.contains("tenant fabrikamgov.onmicrosoft.com does not include global"), "{}", err.message);
        gov.allowed_clouds.insert(Cloud::Global);
        assert!(check_invitation(&contoso, "a@fabrikamgov.com", Some(&home(&gov))).is_ok());
        // a pending invitation fails at redemption once a tenant withdraws the cloud
        contoso.allowed_clouds.clear();
        assert_eq!(
            check_redemption(&contoso, "a@fabrikamgov.com", Some(&home(&gov))).unwrap_err().reason,
            RefusalReason::CloudNotAllowed
        );
        // the same cloud needs nothing
        let fabrikam = tenant("f", "fabrikam");
        assert!(check_invitation(&contoso, "a@fabrikam.com", Some(&home(&fabrikam))).is_ok());
    }

    #[test]
    fn r10_direct_connect_needs_both_sides() {
        let mut contoso = tenant("c", "contoso");
        let mut fabrikam = tenant("f", "fabrikam");
        assert!(!b2b_direct_connect_allowed(&contoso, &fabrikam, &["u"], "app"), "blocked by default (R1)");
        let open = |inbound: bool| {
            let setting = Some(ResolvedAccess::system_default().b2b_collaboration_inbound.to_setting());
            if inbound {
                CrossTenantAccessSettings { b2b_direct_connect_inbound: setting, ..Default::default() }
            } else {
                CrossTenantAccessSettings { b2b_direct_connect_outbound: setting, ..Default::default() }
            }
        };
        contoso.partners.insert("f".into(), open(true));
        assert!(!b2b_direct_connect_allowed(&contoso, &fabrikam, &["u"], "app"), "home outbound still blocked");
        fabrikam.partners.insert("c".into(), open(false));
        assert!(b2b_direct_connect_allowed(&contoso, &fabrikam, &["u"], "app"));
    }

    #[test]
    fn r11_r12_mfa_trust_and_automatic_redemption() {
        let mut contoso = tenant("c", "contoso");
        let mut fabrikam = tenant("f", "fabrikam");
        let d = b2b_collaboration_access(&contoso, &fabrikam, &["u"], "app");
        assert!(d.allowed && d.mfa_challenge_by_resource && !d.automatic_redemption);
        contoso.partners.insert(
            "f".into(),
            CrossTenantAccessSettings {
                inbound_trust: Some(InboundTrust { is_mfa_accepted: Some(true), ..Default::default() }),
                automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
                    inbound_allowed: Some(true),
                    outbound_allowed: None,
                }),
                ..Default::default()
            },
        );
        let d = b2b_collaboration_access(&contoso, &fabrikam, &["u"], "app");
        assert!(!d.mfa_challenge_by_resource);
        assert!(!d.automatic_redemption, "home outbound consent still off");
        fabrikam.partners.insert(
            "c".into(),
            CrossTenantAccessSettings {
                automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
                    inbound_allowed: None,
                    outbound_allowed: Some(true),
                }),
                ..Default::default()
            },
        );
        assert!(b2b_collaboration_access(&contoso, &fabrikam, &["u"], "app").automatic_redemption);
    }
}
