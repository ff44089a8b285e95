//! Entitlement management (R16), the pure part: connected organizations, access packages with their
//! assignment policies, the tenant's external-user lifecycle settings, and the rules that decide who may
//! request a package (`admitting_policies`). Shared by the manifests, the planner (`plan_entitlement.rs`),
//! the backends and `entente explain`.
//!
//! Objects are named by display name inside the core (a policy names the connected organizations it
//! admits by display name); backends map names to their own ids.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{DeletionPolicy, ObjectRef, TenantIdentity};

/// Default `durationUntilExternalUserDeletedAfterBlocked`: 30 days.
pub const DEFAULT_DELETE_AFTER_SECONDS: u64 = 30 * 86_400;

/// `state` of a connected organization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConnectedOrganizationState {
    /// Its users may request packages whose policy admits "all configured connected organizations".
    #[default]
    Configured,
    /// Only policies that name it specifically admit its users.
    Proposed,
}

impl ConnectedOrganizationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::Proposed => "proposed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "configured" => Some(Self::Configured),
            "proposed" => Some(Self::Proposed),
            _ => None,
        }
    }
}

/// Where a connected organization's users come from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IdentitySource {
    /// A Microsoft Entra tenant (`azureActiveDirectoryTenant`), lowercase tenant id.
    TenantId(String),
    /// An email domain (`domainIdentitySource`), lowercase.
    DomainName(String),
}

/// A connected organization as compared: the planner's view and what backends read and write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectedOrganization {
    pub display_name: String,
    pub description: Option<String>,
    pub identity_sources: BTreeSet<IdentitySource>,
    pub state: ConnectedOrganizationState,
}

impl ConnectedOrganization {
    /// Whether a user from `home` (when it is a known tenant) with an address at `domain` belongs to it.
    pub fn includes(&self, home: Option<&TenantIdentity>, domain: &str) -> bool {
        let domain = domain.to_ascii_lowercase();
        self.identity_sources.iter().any(|s| match s {
            IdentitySource::TenantId(id) => home.is_some_and(|h| h.tenant_id.eq_ignore_ascii_case(id)),
            IdentitySource::DomainName(d) => *d == domain || home.is_some_and(|h| h.owns_domain(d)),
        })
    }
}

/// `allowedTargetScope` of an assignment policy: who may request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TargetScope {
    SpecificConnectedOrganizationUsers,
    AllConfiguredConnectedOrganizationUsers,
    AllExternalUsers,
}

impl TargetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpecificConnectedOrganizationUsers => "specificConnectedOrganizationUsers",
            Self::AllConfiguredConnectedOrganizationUsers => "allConfiguredConnectedOrganizationUsers",
            Self::AllExternalUsers => "allExternalUsers",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SpecificConnectedOrganizationUsers, Self::AllConfiguredConnectedOrganizationUsers, Self::AllExternalUsers]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// An assignment policy: who may request the package, with or without approval, for how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentPolicy {
    pub display_name: String,
    pub allowed_target_scope: TargetScope,
    /// Display names of the connected organizations (only with `specificConnectedOrganizationUsers`).
    pub connected_organizations: BTreeSet<String>,
    pub approval_required: bool,
    /// Approvers' addresses, lowercase (optional).
    pub approvers: BTreeSet<String>,
    /// How long an assignment lasts, in seconds; `None`: it never expires.
    pub expiration_seconds: Option<u64>,
}

/// An access package as compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessPackage {
    pub display_name: String,
    pub description: Option<String>,
    /// Display names of the tenant's groups the package gives membership of.
    pub groups: BTreeSet<String>,
    /// Application (client) ids the package gives access to, lowercase.
    pub applications: BTreeSet<String>,
    /// Sorted by display name.
    pub policies: Vec<AssignmentPolicy>,
}

impl AccessPackage {
    pub fn has_resources(&self) -> bool {
        !self.groups.is_empty() || !self.applications.is_empty()
    }
    pub fn includes_application(&self, app: &str) -> bool {
        self.applications.iter().any(|a| a.eq_ignore_ascii_case(app))
    }
}

/// `externalUserLifecycleAction`: what happens to an external user whose last assignment ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LifecycleAction {
    /// Nothing.
    #[default]
    None,
    /// Sign-in is blocked (`accountEnabled: false`).
    BlockSignIn,
    /// Sign-in is blocked, and the user is deleted after `durationUntilExternalUserDeletedAfterBlocked`.
    BlockSignInAndDelete,
}

impl LifecycleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::BlockSignIn => "blockSignIn",
            Self::BlockSignInAndDelete => "blockSignInAndDelete",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::None, Self::BlockSignIn, Self::BlockSignInAndDelete].into_iter().find(|a| a.as_str() == s)
    }
}

/// The tenant's entitlement management settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementSettings {
    pub external_user_lifecycle_action: LifecycleAction,
    /// `durationUntilExternalUserDeletedAfterBlocked`, in seconds.
    pub delete_after_blocked_seconds: u64,
}

impl Default for EntitlementSettings {
    fn default() -> Self {
        Self { external_user_lifecycle_action: LifecycleAction::None, delete_after_blocked_seconds: DEFAULT_DELETE_AFTER_SECONDS }
    }
}

// ---------------------------------------------------------------------------------------------
// Desired and observed

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredConnectedOrganization {
    pub object: ObjectRef,
    pub organization: ConnectedOrganization,
    pub deletion_policy: DeletionPolicy,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DesiredAccessPackage {
    pub object: ObjectRef,
    pub package: AccessPackage,
    pub deletion_policy: DeletionPolicy,
}

/// What the manifests ask for in one tenant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredEntitlement {
    /// `None`: the Tenant does not say; entente leaves the settings alone.
    pub settings: Option<EntitlementSettings>,
    pub connected_organizations: Vec<DesiredConnectedOrganization>,
    pub access_packages: Vec<DesiredAccessPackage>,
}

/// A directory object with its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identified<T> {
    pub id: String,
    #[serde(flatten)]
    pub value: T,
}

/// An assignment: who holds (or asked for) which package, until when (local directory).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub package: String,
    pub policy: String,
    pub user_mail: String,
    /// `pendingApproval`, `delivered`, `expired`, `removed`.
    pub state: String,
    pub expires_at: Option<String>,
}

/// Entitlement management as a directory holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitlementState {
    pub settings: EntitlementSettings,
    pub connected_organizations: Vec<Identified<ConnectedOrganization>>,
    pub access_packages: Vec<Identified<AccessPackage>>,
    /// Assignments, when the backend reads them (the local directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<Assignment>,
}

// ---------------------------------------------------------------------------------------------
// R16: who may request

/// Why a policy admits a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Through this connected organization.
    ConnectedOrganization(String),
    /// `allExternalUsers`.
    AnyExternalUser,
}

impl Admission {
    pub fn describe(&self) -> String {
        match self {
            Admission::ConnectedOrganization(name) => format!("connected organization {name:?}"),
            Admission::AnyExternalUser => "allExternalUsers".into(),
        }
    }
}

/// Whether `policy` admits a user from `home` (a known tenant, or `None`) with an address at `domain`.
/// `organizations` are the resource tenant's connected organizations; `resource` is the resource tenant
/// (its own users are not external).
pub fn admits(
    policy: &AssignmentPolicy,
    organizations: &[ConnectedOrganization],
    resource: &TenantIdentity,
    home: Option<&TenantIdentity>,
    domain: &str,
) -> Option<Admission> {
    if resource.owns_domain(domain) || home.is_some_and(|h| h.tenant_id == resource.tenant_id) {
        return None;
    }
    let by_name: BTreeMap<String, &ConnectedOrganization> =
        organizations.iter().map(|o| (o.display_name.to_ascii_lowercase(), o)).collect();
    let through = |o: &&ConnectedOrganization| o.includes(home, domain);
    let through_ref = |o: &&&ConnectedOrganization| o.includes(home, domain);
    match policy.allowed_target_scope {
        TargetScope::AllExternalUsers => Some(Admission::AnyExternalUser),
        TargetScope::AllConfiguredConnectedOrganizationUsers => organizations
            .iter()
            .filter(|o| o.state == ConnectedOrganizationState::Configured)
            .find(through)
            .map(|o| Admission::ConnectedOrganization(o.display_name.clone())),
        TargetScope::SpecificConnectedOrganizationUsers => policy
            .connected_organizations
            .iter()
            .filter_map(|n| by_name.get(&n.to_ascii_lowercase()))
            .find(through_ref)
            .map(|o| Admission::ConnectedOrganization(o.display_name.clone())),
    }
}

/// The first policy of `package` (by display name) that admits the user, and why.
pub fn admitting_policy<'a>(
    package: &'a AccessPackage,
    organizations: &[ConnectedOrganization],
    resource: &TenantIdentity,
    home: Option<&TenantIdentity>,
    domain: &str,
) -> Option<(&'a AssignmentPolicy, Admission)> {
    package.policies.iter().find_map(|p| admits(p, organizations, resource, home, domain).map(|a| (p, a)))
}

/// A duration in seconds as the manifests write it: `90d`, `12h`, `30m`, `45s`.
pub fn render_duration(seconds: u64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A duration in seconds as ISO 8601 (Graph's `Duration`): `P90D`, `PT12H`, `PT90S`.
pub fn iso_duration(seconds: u64) -> String {
    if seconds.is_multiple_of(86_400) { format!("P{}D", seconds / 86_400) } else { format!("PT{seconds}S") }
}

/// Parses the ISO 8601 durations Graph sends (`P30D`, `PT12H`, `P1DT2H3M4S`; no years or months).
pub fn parse_iso_duration(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0u64;
    if !days.is_empty() {
        let n: u64 = days.strip_suffix('D')?.parse().ok()?;
        total += n * 86_400;
    }
    let mut digits = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' => digits.push(c),
            'H' | 'M' | 'S' => {
                let n: u64 = digits.parse().ok()?;
                total += n * match c {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
                digits.clear();
            }
            _ => return None,
        }
    }
    digits.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(id: &str, domain: &str) -> TenantIdentity {
        TenantIdentity {
            tenant_id: id.into(),
            initial_domain: domain.into(),
            display_name: domain.into(),
            cloud: Default::default(),
            verified_domains: BTreeSet::new(),
        }
    }

    fn policy(scope: TargetScope, orgs: &[&str]) -> AssignmentPolicy {
        AssignmentPolicy {
            display_name: "p".into(),
            allowed_target_scope: scope,
            connected_organizations: orgs.iter().map(|s| s.to_string()).collect(),
            approval_required: false,
            approvers: BTreeSet::new(),
            expiration_seconds: None,
        }
    }

    #[test]
    fn admission_by_scope() {
        let resource = identity("r", "contoso.com");
        let home = identity("h", "fabrikam.com");
        let org = |name: &str, state, src| ConnectedOrganization {
            display_name: name.into(),
            description: None,
            identity_sources: [src].into_iter().collect(),
            state,
        };
        let orgs = vec![
            org("Fabrikam", ConnectedOrganizationState::Proposed, IdentitySource::TenantId("h".into())),
            org("Woodgrove", ConnectedOrganizationState::Configured, IdentitySource::DomainName("woodgrove.com".into())),
        ];
        let specific = policy(TargetScope::SpecificConnectedOrganizationUsers, &["Fabrikam"]);
        assert_eq!(
            admits(&specific, &orgs, &resource, Some(&home), "fabrikam.com"),
            Some(Admission::ConnectedOrganization("Fabrikam".into()))
        );
        // Proposed organizations only count when named.
        let all = policy(TargetScope::AllConfiguredConnectedOrganizationUsers, &[]);
        assert_eq!(admits(&all, &orgs, &resource, Some(&home), "fabrikam.com"), None);
        assert!(admits(&all, &orgs, &resource, None, "woodgrove.com").is_some());
        let any = policy(TargetScope::AllExternalUsers, &[]);
        assert_eq!(admits(&any, &orgs, &resource, None, "gmail.com"), Some(Admission::AnyExternalUser));
        // The resource tenant's own users are not external.
        assert_eq!(admits(&any, &orgs, &resource, None, "contoso.com"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_iso_duration("P30D"), Some(30 * 86_400));
        assert_eq!(parse_iso_duration("PT12H"), Some(12 * 3600));
        assert_eq!(parse_iso_duration("P1DT1M"), Some(86_400 + 60));
        assert_eq!(parse_iso_duration("P1Y"), None);
        assert_eq!(iso_duration(90 * 86_400), "P90D");
        assert_eq!(render_duration(3600), "1h");
    }
}

// ---------------------------------------------------------------------------------------------
// `entente explain`: the access-package path

/// What `explain` knows of the resource tenant's entitlement management.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntitlementView {
    pub settings: Option<EntitlementSettings>,
    pub connected_organizations: Vec<ConnectedOrganization>,
    pub access_packages: Vec<AccessPackage>,
    /// Current assignments (from the directory), to say whether the user already holds one.
    pub assignments: Vec<Assignment>,
}

impl EntitlementView {
    pub fn from_desired(d: &DesiredEntitlement) -> Self {
        Self {
            settings: d.settings,
            connected_organizations: d.connected_organizations.iter().map(|o| o.organization.clone()).collect(),
            access_packages: d.access_packages.iter().map(|p| p.package.clone()).collect(),
            assignments: vec![],
        }
    }
    pub fn from_state(s: &EntitlementState) -> Self {
        Self {
            settings: Some(s.settings),
            connected_organizations: s.connected_organizations.iter().map(|o| o.value.clone()).collect(),
            access_packages: s.access_packages.iter().map(|p| p.value.clone()).collect(),
            assignments: s.assignments.clone(),
        }
    }
}

fn describe_policy(p: &AssignmentPolicy) -> String {
    match p.allowed_target_scope {
        TargetScope::SpecificConnectedOrganizationUsers => format!(
            "{:?} (specificConnectedOrganizationUsers: {})",
            p.display_name,
            p.connected_organizations.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        s => format!("{:?} ({})", p.display_name, s.as_str()),
    }
}

/// R16: can `email` (from `home`) get `app` in `resource` through an access package of `view`?
pub fn access_package_path(
    resource: &super::policy::TenantPolicy,
    home: Option<&super::policy::TenantPolicy>,
    email: &str,
    app: &str,
    view: &EntitlementView,
) -> super::explain::AccessPath {
    use super::explain::{AccessPath, Step, Verdict};
    let r = resource.name().to_string();
    let step = |setting: String, decided_by: String, verdict, detail: String| Step {
        rule: "R16",
        tenant: r.clone(),
        setting,
        decided_by,
        verdict,
        detail,
    };
    let path = |allowed, steps| AccessPath {
        path: "accessPackage",
        allowed,
        mfa: format!("as for B2B collaboration: the package delivers a guest account in {r} (R11)"),
        consent: "as for B2B collaboration (R12)".into(),
        steps,
    };
    let including: Vec<&AccessPackage> = view.access_packages.iter().filter(|p| p.includes_application(app)).collect();
    if including.is_empty() {
        let names: Vec<&str> = view.access_packages.iter().map(|p| p.display_name.as_str()).collect();
        return path(
            false,
            vec![step(
                "accessPackages[].resources.applications".into(),
                "entitlement management".into(),
                Verdict::Blocks,
                format!(
                    "no access package of {r} includes application {app} (packages: {})",
                    if names.is_empty() { "none".into() } else { names.join(", ") }
                ),
            )],
        );
    }
    let domain = super::policy::email_domain(email).to_ascii_lowercase();
    let home_identity = home.map(|h| &h.identity);
    let mut steps = Vec::new();
    for pkg in &including {
        steps.push(step(
            format!("accessPackage {:?}.resources.applications", pkg.display_name),
            format!("access package {:?}", pkg.display_name),
            Verdict::Note,
            format!("access package {:?} includes application {app}", pkg.display_name),
        ));
        let Some((policy, admission)) =
            admitting_policy(pkg, &view.connected_organizations, &resource.identity, home_identity, &domain)
        else {
            let policies: Vec<String> = pkg.policies.iter().map(describe_policy).collect();
            steps.push(step(
                format!("accessPackage {:?}.assignmentPolicies", pkg.display_name),
                format!("assignment policies of {:?}", pkg.display_name),
                Verdict::Blocks,
                format!(
                    "no assignment policy admits {email} (home {}): {}",
                    home.map(|h| h.name()).unwrap_or("not a known tenant"),
                    if policies.is_empty() { "no policies".into() } else { policies.join("; ") }
                ),
            ));
            continue;
        };
        let through = match &admission {
            Admission::ConnectedOrganization(name) => {
                let org = view.connected_organizations.iter().find(|o| &o.display_name == name);
                let sources: Vec<String> = org
                    .map(|o| {
                        o.identity_sources
                            .iter()
                            .map(|s| match s {
                                IdentitySource::TenantId(t) => format!("tenantId {t}"),
                                IdentitySource::DomainName(d) => format!("domainName {d}"),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!(
                    "through connected organization {name:?} ({}, identity sources: {})",
                    org.map(|o| o.state.as_str()).unwrap_or("?"),
                    sources.join(", ")
                )
            }
            Admission::AnyExternalUser => "as any external user (allExternalUsers)".into(),
        };
        steps.push(step(
            format!("assignmentPolicy {:?}.allowedTargetScope", policy.display_name),
            format!("assignment policy {:?} of {:?}", policy.display_name, pkg.display_name),
            Verdict::Allows,
            format!("{} admits {email} {through}", describe_policy(policy)),
        ));
        // Delivering the assignment invites the user: the invitation rules apply (R3–R5, R9, R14).
        let home_ctx = home.map(|policy| super::policy::Home { policy, principal_ids: None });
        match super::policy::check_invitation(resource, email, home_ctx.as_ref()) {
            Ok(()) => {}
            Err(refusal) => {
                steps.push(Step {
                    rule: "R3",
                    tenant: r.clone(),
                    setting: "externalCollaboration / cross-tenant access".into(),
                    decided_by: refusal.reason.as_str().into(),
                    verdict: Verdict::Blocks,
                    detail: format!("delivering the assignment invites {email}, which would be refused: {}", refusal.message),
                });
                continue;
            }
        }
        let approval = if policy.approval_required {
            let who = if policy.approvers.is_empty() {
                "an approver".to_string()
            } else {
                policy.approvers.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            format!("approval required: the request stays pending until {who} approves")
        } else {
            "no approval needed: the assignment is delivered on request".into()
        };
        steps.push(step(
            format!("assignmentPolicy {:?}.requestApprovalSettings", policy.display_name),
            format!("assignment policy {:?}", policy.display_name),
            Verdict::Note,
            approval,
        ));
        let lifecycle = match view.settings.map(|s| (s.external_user_lifecycle_action, s.delete_after_blocked_seconds)) {
            Some((LifecycleAction::BlockSignIn, _)) => "; when the last assignment ends, sign-in is blocked".to_string(),
            Some((LifecycleAction::BlockSignInAndDelete, d)) => {
                format!("; when the last assignment ends, sign-in is blocked and the user deleted {} later", render_duration(d))
            }
            _ => String::new(),
        };
        steps.push(step(
            format!("assignmentPolicy {:?}.expiration", policy.display_name),
            format!("assignment policy {:?}; externalUserLifecycleAction of {r}", policy.display_name),
            Verdict::Note,
            match policy.expiration_seconds {
                Some(s) => format!("assignments expire after {}{lifecycle}", render_duration(s)),
                None => format!("assignments never expire{lifecycle}"),
            },
        ));
        if let Some(a) = view
            .assignments
            .iter()
            .find(|a| a.package.eq_ignore_ascii_case(&pkg.display_name) && a.user_mail.eq_ignore_ascii_case(email))
            .filter(|a| a.state == "delivered" || a.state == "pendingApproval")
        {
            steps.push(step(
                "assignments".into(),
                "directory".into(),
                Verdict::Note,
                format!(
                    "{email} has a {} assignment of {:?}{}",
                    a.state,
                    pkg.display_name,
                    a.expires_at.as_deref().map(|e| format!(" until {e}")).unwrap_or_default()
                ),
            ));
        }
        return path(true, steps);
    }
    path(false, steps)
}
