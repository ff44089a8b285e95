//! `entente explain`: can user U of home tenant H reach application A in resource tenant R, by which
//! path, will they be asked for MFA or consent, and which setting of which tenant decided each step.
//! Pure: the caller gathers the tenants' policies and what the directory knows about U.

use serde::Serialize;

use super::model::{GuestUser, RedemptionState};
use super::policy::{Home, Source, TenantPolicy, check_invitation, check_redemption, clouds_lacking};
use super::resolved::{Access, ResolvedB2b};
use super::settings::{B2bSetting, CrossTenantAccessSettings};
use super::tenant_profile::{cloud_keyword, cloud_name};

/// The person asking, as far as the directories know them.
pub struct Person<'a> {
    pub email: &'a str,
    /// Object ids in the home tenant (user and groups), when known.
    pub principal_ids: Option<Vec<String>>,
    /// Their account in the resource tenant, if they have one.
    pub guest: Option<&'a GuestUser>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Allows,
    Blocks,
    /// A fact on the way that neither allows nor blocks (e.g. an MFA prompt).
    Note,
}

/// One step of the chain: what was checked, where, and what it said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub rule: &'static str,
    pub tenant: String,
    /// The setting consulted, e.g. `b2bCollaborationInbound.usersAndGroups`.
    pub setting: String,
    /// Which configuration holds it: the default, a partner configuration, external collaboration settings.
    pub decided_by: String,
    pub verdict: Verdict,
    pub detail: String,
}

/// One way in (B2B collaboration, B2B direct connect, access package).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPath {
    pub path: &'static str,
    pub allowed: bool,
    /// R11: the resource tenant prompts for MFA itself (collaboration), or access needing MFA is blocked (direct connect).
    pub mfa: String,
    /// R12: whether a consent prompt is shown.
    pub consent: String,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub user: String,
    pub home_tenant: Option<String>,
    pub resource_tenant: String,
    pub application: String,
    /// What the answer takes for granted because entente cannot see it (an unmanaged home tenant, an
    /// account it could not look up).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    /// Whether the user has an account (a guest or a pending invitation) in the resource tenant.
    pub has_account: bool,
    /// Whether some path lets the user in now (`reachable_now`); the exit code follows it.
    pub reachable: bool,
    pub paths: Vec<AccessPath>,
}

impl Explanation {
    pub fn allowed(&self) -> bool {
        self.paths.iter().any(|p| p.allowed)
    }

    /// Whether some path lets the user in now: B2B collaboration needs an account in the resource tenant
    /// first (settings that would allow an invitation are not access yet).
    pub fn reachable_now(&self) -> bool {
        self.paths.iter().any(|p| p.allowed && (p.path != "b2bCollaboration" || self.has_account))
    }
}

/// The home tenant assumed for an address whose domain no Tenant of the manifests owns: an Entra tenant
/// in the global cloud with R1's system defaults and no partner configuration toward anyone, named by
/// the domain. `assumptions` says so to the reader.
pub fn assumed_home(domain: &str) -> (TenantPolicy, Vec<String>) {
    let policy = TenantPolicy {
        identity: super::model::TenantIdentity {
            tenant_id: domain.to_string(),
            initial_domain: domain.to_string(),
            display_name: domain.to_string(),
            cloud: super::model::Cloud::Global,
            verified_domains: Default::default(),
        },
        collaboration: Default::default(),
        default_access: super::resolved::ResolvedAccess::system_default(),
        partners: Default::default(),
        allowed_clouds: Default::default(),
    };
    let assumptions = vec![
        format!(
            "{domain} is not a Tenant of the manifests: it is taken as a Microsoft Entra tenant in the global cloud with \
             the system defaults (R1: B2B collaboration outbound allowed for all users and applications, direct connect \
             blocked), where the user has an account"
        ),
        "the resource tenant's default cross-tenant settings apply to it; a partner configuration for its tenant id, if \
         there is one, would apply instead (entente cannot tell which tenant id owns the domain)"
            .to_string(),
        format!(
            "if {domain} is not an Entra tenant (a personal address or another identity provider), cross-tenant access \
             settings do not apply: the user signs in with a one-time passcode or a federated identity provider, and the \
             resource tenant asks for MFA itself"
        ),
    ];
    (policy, assumptions)
}

/// The users-and-groups step and the applications step of one B2B setting of `decider` toward `other`.
/// `pick` selects the setting in a partner configuration, to tell whether the partner's or the default decided.
#[allow(clippy::too_many_arguments)]
fn b2b_steps(
    rule: &'static str,
    decider: &TenantPolicy,
    other: &TenantPolicy,
    name: &str,
    setting: &ResolvedB2b,
    pick: fn(&CrossTenantAccessSettings) -> Option<&B2bSetting>,
    ids: &[&str],
    known: bool,
    app: &str,
) -> [Step; 2] {
    [
        access_step(rule, decider, other, &format!("{name}.usersAndGroups"), &setting.users_and_groups, ids, known, |p| {
            pick(p).is_some_and(|b| b.users_and_groups.is_some())
        }),
        access_step(rule, decider, other, &format!("{name}.applications"), &setting.applications, &[app], true, |p| {
            pick(p).is_some_and(|b| b.applications.is_some())
        }),
    ]
}

fn source_name(s: &Source) -> String {
    s.to_string()
}

#[allow(clippy::too_many_arguments)]
fn access_step(
    rule: &'static str,
    decider: &TenantPolicy,
    other: &TenantPolicy,
    setting: &str,
    access: &Access,
    ids: &[&str],
    known: bool,
    set: impl Fn(&CrossTenantAccessSettings) -> bool,
) -> Step {
    let admits = access.admits(ids)
        || (!known && !access.names_only_keywords() && access.access_type == super::settings::AccessType::Blocked);
    Step {
        rule,
        tenant: decider.name().to_string(),
        setting: setting.to_string(),
        decided_by: source_name(&decider.source(&other.identity.tenant_id, set)),
        verdict: if admits { Verdict::Allows } else { Verdict::Blocks },
        detail: format!(
            "\"{}\"{}",
            access.render(),
            if known || access.names_only_keywords() { "" } else { " (the user's groups are unknown; judged by id only)" }
        ),
    }
}

/// Explains access of `person` (from `home`, or from outside any directory tenant when `None`) to `app` in `resource`.
pub fn explain(resource: &TenantPolicy, home: Option<&TenantPolicy>, person: &Person<'_>, app: &str) -> Explanation {
    explain_with(resource, home, person, app, None)
}

/// `explain`, with the resource tenant's entitlement management (R16) when known: the access-package
/// path is evaluated then, and reported as not evaluated otherwise.
pub fn explain_with(
    resource: &TenantPolicy,
    home: Option<&TenantPolicy>,
    person: &Person<'_>,
    app: &str,
    entitlement: Option<&super::entitlement::EntitlementView>,
) -> Explanation {
    let mut paths = vec![collaboration(resource, home, person, app)];
    if let Some(h) = home {
        paths.push(direct_connect(resource, h, person, app));
    }
    if let Some(view) = entitlement {
        paths.push(super::entitlement::access_package_path(resource, home, person.email, app, view));
    } else {
        paths.push(AccessPath {
            path: "accessPackage",
            allowed: false,
            mfa: "not evaluated".into(),
            consent: "not evaluated".into(),
            steps: vec![Step {
                rule: "R16",
                tenant: resource.name().to_string(),
                setting: "entitlementManagement".into(),
                decided_by: "not modelled".into(),
                verdict: Verdict::Note,
                detail: "the resource tenant's entitlement management is not known here (its backend does not read it), so \
                         this path is not evaluated"
                    .into(),
            }],
        });
    }
    Explanation {
        user: person.email.to_string(),
        home_tenant: home.map(|h| h.name().to_string()),
        resource_tenant: resource.name().to_string(),
        application: app.to_string(),
        assumptions: vec![],
        has_account: person.guest.is_some(),
        reachable: false,
        paths,
    }
    .answered()
}

impl Explanation {
    fn answered(mut self) -> Self {
        self.reachable = self.reachable_now();
        self
    }
}

/// R14: between two clouds, both tenants must allow the other's cloud (`microsoftCloudSettings.allowedClouds`).
fn cloud_step(resource: &TenantPolicy, home: &TenantPolicy) -> Option<Step> {
    if resource.identity.cloud == home.identity.cloud {
        return None;
    }
    let clouds = format!(
        "{} is in the {} cloud and {} in the {} cloud",
        resource.name(),
        cloud_name(resource.identity.cloud),
        home.name(),
        cloud_name(home.identity.cloud)
    );
    let lacking = clouds_lacking(resource, home);
    let setting = "microsoftCloudSettings.allowedClouds".to_string();
    let Some((first, _)) = lacking.first() else {
        return Some(Step {
            rule: "R14",
            tenant: resource.name().to_string(),
            setting,
            decided_by: "cloud settings of both tenants".into(),
            verdict: Verdict::Allows,
            detail: format!("{clouds}: both allow the other's cloud"),
        });
    };
    let names: Vec<&str> = lacking.iter().map(|(t, _)| t.name()).collect();
    let why: Vec<String> =
        lacking.iter().map(|(t, other)| format!("{} does not allow {}", t.name(), cloud_keyword(*other))).collect();
    Some(Step {
        rule: "R14",
        tenant: first.name().to_string(),
        setting,
        decided_by: format!("cloud settings of {}", names.join(" and ")),
        verdict: Verdict::Blocks,
        detail: format!("{clouds}: B2B between clouds needs both tenants to allow the other's cloud, and {}", why.join(", ")),
    })
}

fn collaboration(resource: &TenantPolicy, home: Option<&TenantPolicy>, person: &Person<'_>, app: &str) -> AccessPath {
    let mut steps = Vec::new();
    let home_ctx = home.map(|policy| Home { policy, principal_ids: person.principal_ids.clone() });
    // The account: an accepted guest, a pending invitation, or an invitation that would (not) be sent.
    let account = match person.guest {
        Some(g) if g.external_user_state == Some(RedemptionState::Accepted) || g.external_user_state.is_none() => Step {
            rule: "R6",
            tenant: resource.name().to_string(),
            setting: "guest account".into(),
            decided_by: "directory".into(),
            verdict: Verdict::Allows,
            detail: format!("{} has an account in {} ({}, user {})", person.email, resource.name(), g.user_type.as_str(), g.id),
        },
        Some(g) => match check_redemption(resource, person.email, home_ctx.as_ref()) {
            Ok(()) => Step {
                rule: "R3",
                tenant: resource.name().to_string(),
                setting: "guest account".into(),
                decided_by: "directory".into(),
                verdict: Verdict::Allows,
                detail: format!("invitation pending (user {}); redeeming it is allowed", g.id),
            },
            Err(r) => Step {
                rule: "R3",
                tenant: resource.name().to_string(),
                setting: "externalCollaboration / cross-tenant access".into(),
                decided_by: r.reason.as_str().into(),
                verdict: Verdict::Blocks,
                detail: format!("invitation pending (user {}) but redemption would fail: {}", g.id, r.message),
            },
        },
        None => match check_invitation(resource, person.email, home_ctx.as_ref()) {
            Ok(()) => Step {
                rule: "R3",
                tenant: resource.name().to_string(),
                setting: "externalCollaboration".into(),
                decided_by: "external collaboration settings".into(),
                verdict: Verdict::Note,
                detail: format!("{} has no account in {} yet; an invitation would be allowed", person.email, resource.name()),
            },
            Err(r) => Step {
                rule: "R3",
                tenant: resource.name().to_string(),
                setting: "externalCollaboration / cross-tenant access".into(),
                decided_by: r.reason.as_str().into(),
                verdict: Verdict::Blocks,
                detail: format!("{} has no account and an invitation would be refused: {}", person.email, r.message),
            },
        },
    };
    steps.push(account);
    let Some(home) = home else {
        steps.push(Step {
            rule: "R9",
            tenant: resource.name().to_string(),
            setting: "cross-tenant access".into(),
            decided_by: "not applicable".into(),
            verdict: Verdict::Note,
            detail: "the user's home is not a known directory tenant: cross-tenant access settings do not apply; the resource tenant prompts for MFA itself".into(),
        });
        let allowed = steps.iter().all(|s| s.verdict != Verdict::Blocks);
        return AccessPath {
            path: "b2bCollaboration",
            allowed,
            mfa: format!("{} prompts for MFA (R11)", resource.name()),
            consent: "a consent prompt at first sign-in (R12)".into(),
            steps,
        };
    };
    steps.extend(cloud_step(resource, home));
    let ids: Vec<&str> = person.principal_ids.iter().flatten().map(String::as_str).collect();
    let known = person.principal_ids.is_some();
    let r = resource.effective_for(&home.identity.tenant_id);
    let h = home.effective_for(&resource.identity.tenant_id);
    steps.extend(b2b_steps(
        "R9",
        resource,
        home,
        "b2bCollaborationInbound",
        &r.b2b_collaboration_inbound,
        |p| p.b2b_collaboration_inbound.as_ref(),
        &ids,
        known,
        app,
    ));
    steps.extend(b2b_steps(
        "R9",
        home,
        resource,
        "b2bCollaborationOutbound",
        &h.b2b_collaboration_outbound,
        |p| p.b2b_collaboration_outbound.as_ref(),
        &ids,
        known,
        app,
    ));
    let trust =
        resource.source(&home.identity.tenant_id, |p| p.inbound_trust.as_ref().is_some_and(|t| t.is_mfa_accepted.is_some()));
    let mfa = if r.inbound_trust.is_mfa_accepted {
        format!(
            "MFA done at {} is accepted: no second prompt (R11, inboundTrust.isMfaAccepted of {}'s {trust})",
            home.name(),
            resource.name()
        )
    } else {
        format!(
            "{} prompts for MFA itself: it does not trust {}'s MFA (R11, inboundTrust.isMfaAccepted of its {trust})",
            resource.name(),
            home.name()
        )
    };
    let consent = if r.automatic_user_consent_settings.inbound_allowed && h.automatic_user_consent_settings.outbound_allowed {
        "no consent prompt: automatic redemption is allowed both ways (R12)".to_string()
    } else {
        format!(
            "a consent prompt at first access: automatic redemption needs {} inbound ({}) and {} outbound ({}) (R12)",
            resource.name(),
            r.automatic_user_consent_settings.inbound_allowed,
            home.name(),
            h.automatic_user_consent_settings.outbound_allowed
        )
    };
    let allowed = steps.iter().all(|s| s.verdict != Verdict::Blocks);
    AccessPath { path: "b2bCollaboration", allowed, mfa, consent, steps }
}

fn direct_connect(resource: &TenantPolicy, home: &TenantPolicy, person: &Person<'_>, app: &str) -> AccessPath {
    let ids: Vec<&str> = person.principal_ids.iter().flatten().map(String::as_str).collect();
    let known = person.principal_ids.is_some();
    let r = resource.effective_for(&home.identity.tenant_id);
    let h = home.effective_for(&resource.identity.tenant_id);
    let mut steps: Vec<Step> = cloud_step(resource, home).into_iter().collect();
    steps.extend(b2b_steps(
        "R10",
        resource,
        home,
        "b2bDirectConnectInbound",
        &r.b2b_direct_connect_inbound,
        |p| p.b2b_direct_connect_inbound.as_ref(),
        &ids,
        known,
        app,
    ));
    steps.extend(b2b_steps(
        "R10",
        home,
        resource,
        "b2bDirectConnectOutbound",
        &h.b2b_direct_connect_outbound,
        |p| p.b2b_direct_connect_outbound.as_ref(),
        &ids,
        known,
        app,
    ));
    let mfa = if r.inbound_trust.is_mfa_accepted {
        format!("MFA done at {} is accepted (R11)", home.name())
    } else {
        format!(
            "{} does not trust {}'s MFA: if access requires MFA, a direct connect user is blocked (R11)",
            resource.name(),
            home.name()
        )
    };
    let allowed = steps.iter().all(|s| s.verdict != Verdict::Blocks);
    AccessPath {
        path: "b2bDirectConnect",
        allowed,
        mfa,
        consent: "no consent prompt: direct connect users are not represented in the directory (R7)".into(),
        steps,
    }
}

/// The chain of reasons, for people.
pub fn render(e: &Explanation) -> String {
    let mut s = format!(
        "Can {} ({}) reach {} in {}?\n",
        e.user,
        e.home_tenant.as_deref().unwrap_or("not a known directory tenant"),
        e.application,
        e.resource_tenant
    );
    for a in &e.assumptions {
        s.push_str(&format!("  assumed: {a}\n"));
    }
    for p in &e.paths {
        let verdict = if p.steps.iter().all(|s| s.verdict == Verdict::Note) && !p.allowed {
            "not evaluated"
        } else if p.allowed && p.path == "b2bCollaboration" && !e.has_account {
            "not yet: no account in the resource tenant (an invitation would be allowed, then this path opens)"
        } else if p.allowed {
            "yes"
        } else {
            "no"
        };
        s.push_str(&format!("\n{}: {verdict}\n", p.path));
        for st in &p.steps {
            let mark = match st.verdict {
                Verdict::Allows => "✓",
                Verdict::Blocks => "✗",
                Verdict::Note => "·",
            };
            s.push_str(&format!("  {mark} [{}] {} {} ({}): {}\n", st.rule, st.tenant, st.setting, st.decided_by, st.detail));
        }
        if p.path != "accessPackage" {
            s.push_str(&format!("  MFA: {}\n  consent: {}\n", p.mfa, p.consent));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::core::model::{Cloud, TenantIdentity, UserType};
    use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration, ResolvedDomainList};
    use crate::core::settings::*;

    fn tenant(id: &str, name: &str, cloud: Cloud) -> TenantPolicy {
        TenantPolicy {
            identity: TenantIdentity {
                tenant_id: id.into(),
                initial_domain: format!("{name}.onmicrosoft.com"),
                display_name: name.into(),
                cloud,
                verified_domains: BTreeSet::from([format!("{name}.com")]),
            },
            collaboration: ResolvedCollaboration::default(),
            default_access: ResolvedAccess::system_default(),
            partners: BTreeMap::new(),
            allowed_clouds: BTreeSet::new(),
        }
    }

    fn guest(state: RedemptionState) -> GuestUser {
        GuestUser {
            id: "g1".into(),
            mail: "alice@fabrikam.com".into(),
            display_name: None,
            user_principal_name: "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com".into(),
            user_type: UserType::Guest,
            creation_type: Some("Invitation".into()),
            external_user_state: Some(state),
            external_user_state_change_date_time: None,
            account_enabled: true,
            group_ids: BTreeSet::new(),
        }
    }

    fn all(access: AccessType) -> Option<B2bSetting> {
        Some(ResolvedB2b::uniform(access).to_setting())
    }

    fn path<'a>(e: &'a Explanation, name: &str) -> &'a AccessPath {
        e.paths.iter().find(|p| p.path == name).unwrap()
    }

    struct Case {
        name: &'static str,
        resource: TenantPolicy,
        home: Option<TenantPolicy>,
        guest: Option<GuestUser>,
        collaboration: bool,
        direct_connect: Option<bool>,
        /// A step that must appear, as (rule, setting, decided_by or verdict text fragment).
        expect: (&'static str, &'static str, &'static str),
    }

    fn cases() -> Vec<Case> {
        let contoso = || tenant("c", "contoso", Cloud::Global);
        let fabrikam = || tenant("f", "fabrikam", Cloud::Global);
        let gov = || tenant("g", "fabrikamgov", Cloud::UsGovernment);
        let mut contoso_allows_gov = contoso();
        contoso_allows_gov.allowed_clouds.insert(Cloud::UsGovernment);
        let mut gov_allows_global = gov();
        gov_allows_global.allowed_clouds.insert(Cloud::Global);
        let mut blocked_domain = contoso();
        blocked_domain.collaboration.domain_list =
            Some(ResolvedDomainList { mode: DomainListMode::BlockList, domains: BTreeSet::from(["fabrikam.com".into()]) });
        let mut default_blocks = contoso();
        default_blocks.default_access.b2b_collaboration_inbound = ResolvedB2b::uniform(AccessType::Blocked);
        let mut partner_allows = default_blocks.clone();
        partner_allows.partners.insert(
            "f".into(),
            CrossTenantAccessSettings { b2b_collaboration_inbound: all(AccessType::Allowed), ..Default::default() },
        );
        let mut dc_inbound = contoso();
        dc_inbound.partners.insert(
            "f".into(),
            CrossTenantAccessSettings { b2b_direct_connect_inbound: all(AccessType::Allowed), ..Default::default() },
        );
        let mut dc_outbound = fabrikam();
        dc_outbound.partners.insert(
            "c".into(),
            CrossTenantAccessSettings { b2b_direct_connect_outbound: all(AccessType::Allowed), ..Default::default() },
        );
        vec![
            Case {
                name: "R3 example 1: domain blocked, cross-tenant allows → no invitation, no access",
                resource: blocked_domain.clone(),
                home: Some(fabrikam()),
                guest: None,
                collaboration: false,
                direct_connect: Some(false),
                expect: ("R3", "externalCollaboration / cross-tenant access", "DomainBlocked"),
            },
            Case {
                name: "R3 example 2: domain blocked later → the existing guest keeps signing in",
                resource: blocked_domain.clone(),
                home: Some(fabrikam()),
                guest: Some(guest(RedemptionState::Accepted)),
                collaboration: true,
                direct_connect: Some(false),
                expect: ("R6", "guest account", "directory"),
            },
            Case {
                name: "R3 example 2: domain blocked later → a pending invitation fails at redemption",
                resource: blocked_domain,
                home: Some(fabrikam()),
                guest: Some(guest(RedemptionState::PendingAcceptance)),
                collaboration: false,
                direct_connect: Some(false),
                expect: ("R3", "externalCollaboration / cross-tenant access", "DomainBlocked"),
            },
            Case {
                name: "R2: the default blocks inbound collaboration",
                resource: default_blocks,
                home: Some(fabrikam()),
                guest: Some(guest(RedemptionState::Accepted)),
                collaboration: false,
                direct_connect: Some(false),
                expect: ("R9", "b2bCollaborationInbound.usersAndGroups", "default cross-tenant access configuration"),
            },
            Case {
                name: "R2: the partner configuration overrides the default",
                resource: partner_allows,
                home: Some(fabrikam()),
                guest: Some(guest(RedemptionState::Accepted)),
                collaboration: true,
                direct_connect: Some(false),
                expect: ("R9", "b2bCollaborationInbound.usersAndGroups", "partner configuration for tenant f"),
            },
            Case {
                name: "R10: direct connect with only the resource side open is blocked",
                resource: dc_inbound.clone(),
                home: Some(fabrikam()),
                guest: None,
                collaboration: true,
                direct_connect: Some(false),
                expect: ("R10", "b2bDirectConnectOutbound.usersAndGroups", "default cross-tenant access configuration"),
            },
            Case {
                name: "R10: mutual direct connect is allowed",
                resource: dc_inbound,
                home: Some(dc_outbound),
                guest: None,
                collaboration: true,
                direct_connect: Some(true),
                expect: ("R10", "b2bDirectConnectOutbound.usersAndGroups", "partner configuration for tenant c"),
            },
            Case {
                name: "R14: across clouds nothing is allowed until cloud settings are enabled",
                resource: contoso(),
                home: Some(gov()),
                guest: None,
                collaboration: false,
                direct_connect: Some(false),
                expect: (
                    "R14",
                    "microsoftCloudSettings.allowedClouds",
                    "cloud settings of contoso.onmicrosoft.com and fabrikamgov.onmicrosoft.com",
                ),
            },
            Case {
                name: "R14: only the resource allows the other cloud → refused, naming the home tenant",
                resource: contoso_allows_gov.clone(),
                home: Some(gov()),
                guest: None,
                collaboration: false,
                direct_connect: Some(false),
                expect: ("R14", "microsoftCloudSettings.allowedClouds", "fabrikamgov.onmicrosoft.com does not allow global"),
            },
            Case {
                name: "R14: only the home tenant allows the other cloud → refused, naming the resource tenant",
                resource: contoso(),
                home: Some(gov_allows_global.clone()),
                guest: Some(guest(RedemptionState::PendingAcceptance)),
                collaboration: false,
                direct_connect: Some(false),
                expect: ("R3", "externalCollaboration / cross-tenant access", "CloudNotAllowed"),
            },
            Case {
                name: "R14: both tenants allow each other's cloud → B2B collaboration across clouds",
                resource: contoso_allows_gov,
                home: Some(gov_allows_global),
                guest: None,
                collaboration: true,
                direct_connect: Some(false),
                expect: ("R14", "microsoftCloudSettings.allowedClouds", "cloud settings of both tenants"),
            },
            Case {
                name: "a user from outside any directory tenant: only external collaboration settings apply",
                resource: contoso(),
                home: None,
                guest: None,
                collaboration: true,
                direct_connect: None,
                expect: ("R9", "cross-tenant access", "not applicable"),
            },
        ]
    }

    #[test]
    fn scenario_table() {
        for c in cases() {
            let person = Person { email: "alice@fabrikam.com", principal_ids: None, guest: c.guest.as_ref() };
            let e = explain(&c.resource, c.home.as_ref(), &person, "AllApplications");
            assert_eq!(path(&e, "b2bCollaboration").allowed, c.collaboration, "{}: {}", c.name, render(&e));
            if let Some(dc) = c.direct_connect {
                assert_eq!(path(&e, "b2bDirectConnect").allowed, dc, "{}: {}", c.name, render(&e));
            }
            let (rule, setting, by) = c.expect;
            let found = e
                .paths
                .iter()
                .flat_map(|p| &p.steps)
                .any(|s| s.rule == rule && s.setting == setting && (s.decided_by.contains(by) || s.detail.contains(by)));
            assert!(found, "{}: expected a step {rule} {setting} ({by}):\n{}", c.name, render(&e));
        }
    }

    /// R16: access that comes only through an access package (B2B collaboration inbound is blocked for
    /// other apps, but the package's policy admits fabrikam's users through a connected organization), and
    /// a package whose policy admits nobody from the user's home.
    #[test]
    fn r16_access_package_path() {
        use crate::core::entitlement::*;
        let contoso = tenant("c", "contoso", Cloud::Global);
        let fabrikam = tenant("f", "fabrikam", Cloud::Global);
        let app = "00000000-0000-0000-0000-00000000a001";
        let org = |name: &str, source: IdentitySource| ConnectedOrganization {
            display_name: name.into(),
            description: None,
            identity_sources: BTreeSet::from([source]),
            state: ConnectedOrganizationState::Configured,
        };
        let policy = |name: &str, orgs: &[&str], approval: bool| AssignmentPolicy {
            display_name: name.into(),
            allowed_target_scope: TargetScope::SpecificConnectedOrganizationUsers,
            connected_organizations: orgs.iter().map(|s| s.to_string()).collect(),
            approval_required: approval,
            approvers: BTreeSet::from(["boss@contoso.com".to_string()]),
            expiration_seconds: Some(90 * 86_400),
        };
        let package = |policies| AccessPackage {
            display_name: "Partner portal".into(),
            description: None,
            groups: BTreeSet::new(),
            applications: BTreeSet::from([app.to_string()]),
            policies,
        };
        let view = |policies| EntitlementView {
            settings: Some(EntitlementSettings {
                external_user_lifecycle_action: LifecycleAction::BlockSignInAndDelete,
                delete_after_blocked_seconds: 30 * 86_400,
            }),
            connected_organizations: vec![
                org("Fabrikam", IdentitySource::TenantId("f".into())),
                org("Woodgrove", IdentitySource::DomainName("woodgrove.com".into())),
            ],
            access_packages: vec![package(policies)],
            assignments: vec![],
        };
        let person = Person { email: "alice@fabrikam.com", principal_ids: None, guest: None };

        // Only through the package: the collaboration path is open by default, so restrict it to another app.
        let mut locked = contoso.clone();
        locked.default_access.b2b_collaboration_inbound.applications = Access::new(
            AccessType::Allowed,
            [AccessTarget::new("00000000-0000-0000-0000-00000000b002", TargetType::Application)],
        );
        let v = view(vec![policy("Fabrikam partners", &["Fabrikam"], true)]);
        let e = explain_with(&locked, Some(&fabrikam), &person, app, Some(&v));
        assert!(!path(&e, "b2bCollaboration").allowed, "{}", render(&e));
        let p = path(&e, "accessPackage");
        assert!(p.allowed, "{}", render(&e));
        let text = render(&e);
        assert!(text.contains("through connected organization \"Fabrikam\""), "{text}");
        assert!(text.contains("tenantId f"), "{text}");
        assert!(text.contains("approval required") && text.contains("boss@contoso.com"), "{text}");
        assert!(text.contains("expire after 90d") && text.contains("deleted 30d later"), "{text}");
        assert!(p.steps.iter().all(|s| s.verdict != Verdict::Blocks));

        // No policy admits fabrikam's users (only Woodgrove's): blocked, naming the policy and its scope.
        let v = view(vec![policy("Woodgrove only", &["Woodgrove"], false)]);
        let e = explain_with(&locked, Some(&fabrikam), &person, app, Some(&v));
        let p = path(&e, "accessPackage");
        assert!(!p.allowed, "{}", render(&e));
        let block = p.steps.iter().find(|s| s.verdict == Verdict::Blocks).unwrap();
        assert_eq!((block.rule, block.tenant.as_str()), ("R16", "contoso.onmicrosoft.com"));
        assert!(block.detail.contains("\"Woodgrove only\" (specificConnectedOrganizationUsers: Woodgrove)"), "{}", block.detail);
        assert!(!e.allowed(), "{}", render(&e));

        // Another application: no package includes it. Without a view the path is not evaluated.
        let e = explain_with(&contoso, Some(&fabrikam), &person, "AllApplications", Some(&v));
        assert!(path(&e, "accessPackage").steps[0].detail.contains("no access package"), "{}", render(&e));
        let e = explain(&contoso, Some(&fabrikam), &person, app);
        assert_eq!(path(&e, "accessPackage").steps[0].verdict, Verdict::Note);
    }

    /// R18 with R11: conditional access for external users in the resource tenant, per path.
    #[test]
    fn r18_conditional_access_table() {
        use crate::core::conditional_access::*;
        let fabrikam = tenant("f", "fabrikam", Cloud::Global);
        let contoso = tenant("c", "contoso", Cloud::Global);
        let mut trusting = contoso.clone();
        trusting.partners.insert(
            "f".into(),
            CrossTenantAccessSettings {
                inbound_trust: Some(InboundTrust { is_mfa_accepted: Some(true), ..Default::default() }),
                b2b_direct_connect_inbound: all(AccessType::Allowed),
                ..Default::default()
            },
        );
        let mut dc_home = fabrikam.clone();
        dc_home.partners.insert(
            "c".into(),
            CrossTenantAccessSettings { b2b_direct_connect_outbound: all(AccessType::Allowed), ..Default::default() },
        );
        let ca = |name: &str, state: PolicyState, control: BuiltInControl, excluded: Option<&str>| {
            ConditionalAccessPolicyConfig {
                display_name: name.into(),
                state,
                users: PolicyUsers {
                    include_guests_or_external_users: GuestsOrExternalUsers {
                        guest_or_external_user_types: BTreeSet::from([
                            GuestOrExternalUserType::B2bCollaborationGuest,
                            GuestOrExternalUserType::B2bDirectConnectUser,
                        ]),
                        external_tenants: None,
                    },
                    exclude_guests_or_external_users: excluded.map(|t| GuestsOrExternalUsers {
                        guest_or_external_user_types: BTreeSet::from([GuestOrExternalUserType::B2bCollaborationGuest]),
                        external_tenants: Some(ExternalTenants::Enumerated(BTreeSet::from([t.to_string()]))),
                    }),
                },
                applications: PolicyApplications { include_applications: BTreeSet::from(["All".into()]), ..Default::default() },
                grant_controls: GrantControls { operator: GrantOperator::Or, built_in_controls: BTreeSet::from([control]) },
            }
            .canonical()
        };
        let g = guest(RedemptionState::Accepted);
        // (name, resource, policy, collaboration allowed, direct connect allowed, text in an R18 step)
        let cases = [
            (
                "MFA required + trusted: satisfied by the home tenant's MFA",
                trusting.clone(),
                ca("Guests MFA", PolicyState::Enabled, BuiltInControl::Mfa, None),
                true,
                true,
                "requires MFA for b2bCollaborationGuest users of fabrikam.onmicrosoft.com → satisfied by fabrikam.onmicrosoft.com's MFA (inboundTrust.isMfaAccepted",
            ),
            (
                "MFA required + not trusted: done in the resource tenant; direct connect blocked",
                contoso.clone(),
                ca("Guests MFA", PolicyState::Enabled, BuiltInControl::Mfa, None),
                true,
                false,
                "MFA is done in contoso.onmicrosoft.com",
            ),
            (
                "block",
                trusting.clone(),
                ca("Block guests", PolicyState::Enabled, BuiltInControl::Block, None),
                false,
                false,
                "ConditionalAccessPolicy 'Block guests' in contoso.onmicrosoft.com blocks b2bCollaborationGuest users",
            ),
            (
                "report-only is not enforced",
                trusting.clone(),
                ca("Block guests", PolicyState::EnabledForReportingButNotEnforced, BuiltInControl::Block, None),
                true,
                true,
                "report-only (enabledForReportingButNotEnforced): not enforced",
            ),
            (
                "excluded tenant",
                trusting.clone(),
                ca("Block guests", PolicyState::Enabled, BuiltInControl::Block, Some("f")),
                true,
                false,
                "no conditional access policy in contoso.onmicrosoft.com applies to b2bCollaborationGuest users",
            ),
        ];
        for (name, resource, policy, collab, dc, text) in cases {
            let person = Person { email: "alice@fabrikam.com", principal_ids: None, guest: Some(&g) };
            let mut e = explain(&resource, Some(&dc_home), &person, "AllApplications");
            add_to_explanation(&mut e, &resource, Some(&dc_home), Some(g.user_type), Some(std::slice::from_ref(&policy)));
            let r = render(&e);
            assert_eq!(path(&e, "b2bCollaboration").allowed, collab, "{name}:\n{r}");
            assert_eq!(path(&e, "b2bDirectConnect").allowed, dc, "{name}:\n{r}");
            assert!(e.paths.iter().flat_map(|p| &p.steps).any(|s| s.rule == "R18" && s.detail.contains(text)), "{name}:\n{r}");
        }
    }

    #[test]
    fn r11_mfa_trusted_or_not_for_collaboration_and_direct_connect() {
        let mut contoso = tenant("c", "contoso", Cloud::Global);
        let fabrikam = tenant("f", "fabrikam", Cloud::Global);
        let person = Person { email: "alice@fabrikam.com", principal_ids: None, guest: None };
        let e = explain(&contoso, Some(&fabrikam), &person, "AllApplications");
        assert!(path(&e, "b2bCollaboration").mfa.contains("prompts for MFA itself"), "{}", render(&e));
        assert!(path(&e, "b2bDirectConnect").mfa.contains("a direct connect user is blocked"), "{}", render(&e));
        contoso.partners.insert(
            "f".into(),
            CrossTenantAccessSettings {
                inbound_trust: Some(InboundTrust { is_mfa_accepted: Some(true), ..Default::default() }),
                ..Default::default()
            },
        );
        let e = explain(&contoso, Some(&fabrikam), &person, "AllApplications");
        assert!(path(&e, "b2bCollaboration").mfa.contains("is accepted: no second prompt"), "{}", render(&e));
        assert!(path(&e, "b2bCollaboration").mfa.contains("partner configuration for tenant f"), "{}", render(&e));
        assert!(path(&e, "b2bDirectConnect").mfa.contains("is accepted"));
    }
}
