//! Conditional access for external users (R18), pure: the part of a conditional access policy that
//! concerns guests and external users (which external user types, from which external tenants, for which
//! applications, with which grant controls), and the decision for one sign-in: which enabled policies
//! apply (report-only ones are reported, never enforced), whether access is blocked, and whether MFA is
//! required, and then, per R11, whether the home tenant's MFA satisfies it (the resource tenant's inbound
//! trust `isMfaAccepted` for the home tenant) or it must be done in the resource tenant (collaboration) /
//! access is blocked (direct connect).

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::explain::{AccessPath, Explanation, Step, Verdict};
use super::model::{DeletionPolicy, ObjectRef, UserType};
use super::policy::TenantPolicy;

/// `conditionalAccessGuestOrExternalUserTypes` (a flags enum: Graph sends a comma-separated string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GuestOrExternalUserType {
    InternalGuest,
    B2bCollaborationGuest,
    B2bCollaborationMember,
    B2bDirectConnectUser,
    OtherExternalUser,
    ServiceProvider,
}

impl GuestOrExternalUserType {
    pub const ALL: [Self; 6] = [
        Self::InternalGuest,
        Self::B2bCollaborationGuest,
        Self::B2bCollaborationMember,
        Self::B2bDirectConnectUser,
        Self::OtherExternalUser,
        Self::ServiceProvider,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InternalGuest => "internalGuest",
            Self::B2bCollaborationGuest => "b2bCollaborationGuest",
            Self::B2bCollaborationMember => "b2bCollaborationMember",
            Self::B2bDirectConnectUser => "b2bDirectConnectUser",
            Self::OtherExternalUser => "otherExternalUser",
            Self::ServiceProvider => "serviceProvider",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The flags as Graph sends them: `"internalGuest,b2bCollaborationGuest"`.
pub fn flags_to_string(types: &BTreeSet<GuestOrExternalUserType>) -> String {
    types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

/// Parses Graph's comma-separated flags; `none` and empty parts are skipped. Unknown members are errors.
pub fn flags_from_string(s: &str) -> Result<BTreeSet<GuestOrExternalUserType>, String> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty() && *p != "none") {
        out.insert(
            GuestOrExternalUserType::parse(part).ok_or_else(|| format!("unknown guestOrExternalUserTypes member {part:?}"))?,
        );
    }
    Ok(out)
}

/// `externalTenants`: `all`, or a list of tenant ids (lowercase GUIDs once validated).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExternalTenants {
    #[default]
    All,
    Enumerated(BTreeSet<String>),
}

impl ExternalTenants {
    fn includes(&self, tenant_id: Option<&str>) -> bool {
        match (self, tenant_id) {
            (Self::All, _) => true,
            (Self::Enumerated(ids), Some(t)) => ids.contains(&t.to_ascii_lowercase()),
            (Self::Enumerated(_), None) => false,
        }
    }
}

impl Serialize for ExternalTenants {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => s.serialize_str("all"),
            Self::Enumerated(ids) => ids.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ExternalTenants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) if s == "all" => Ok(Self::All),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|v| v.as_str().map(str::to_string).ok_or(()))
                .collect::<Result<BTreeSet<_>, _>>()
                .map(Self::Enumerated)
                .map_err(|_| serde::de::Error::custom("expected \"all\" or a list of tenant ids (strings)")),
            other => Err(serde::de::Error::custom(format!("expected \"all\" or a list of tenant ids, found {other}"))),
        }
    }
}

impl JsonSchema for ExternalTenants {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ExternalTenants".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`all`, or a list of external tenant ids.",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

/// `includeGuestsOrExternalUsers` / `excludeGuestsOrExternalUsers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GuestsOrExternalUsers {
    /// At least one of internalGuest, b2bCollaborationGuest, b2bCollaborationMember, b2bDirectConnectUser,
    /// otherExternalUser, serviceProvider.
    #[serde(default)]
    pub guest_or_external_user_types: BTreeSet<GuestOrExternalUserType>,
    /// `all` (default) or a list of tenant ids. Only when guestOrExternalUserTypes is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tenants: Option<ExternalTenants>,
}

impl GuestsOrExternalUsers {
    fn matches(&self, t: GuestOrExternalUserType, home: Option<&str>) -> bool {
        self.guest_or_external_user_types.contains(&t) && self.external_tenants.as_ref().is_none_or(|e| e.includes(home))
    }
    /// Canonical: externalTenants present (default all).
    pub fn canonical(&self) -> Self {
        Self {
            guest_or_external_user_types: self.guest_or_external_user_types.clone(),
            external_tenants: Some(self.external_tenants.clone().unwrap_or_default()),
        }
    }
}

/// `state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PolicyState {
    #[default]
    Enabled,
    /// Report-only: evaluated and reported, never enforced.
    EnabledForReportingButNotEnforced,
    Disabled,
}

impl PolicyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::EnabledForReportingButNotEnforced => "enabledForReportingButNotEnforced",
            Self::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Enabled, Self::EnabledForReportingButNotEnforced, Self::Disabled].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GrantOperator {
    #[default]
    #[serde(rename = "OR")]
    Or,
    #[serde(rename = "AND")]
    And,
}

impl GrantOperator {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Or => "OR",
            Self::And => "AND",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BuiltInControl {
    Mfa,
    Block,
}

impl BuiltInControl {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mfa => "mfa",
            Self::Block => "block",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "mfa" => Some(Self::Mfa),
            "block" => Some(Self::Block),
            _ => None,
        }
    }
}

/// `users` (only the guest conditions).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyUsers {
    pub include_guests_or_external_users: GuestsOrExternalUsers,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_guests_or_external_users: Option<GuestsOrExternalUsers>,
}

/// `applications`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyApplications {
    /// `All` or application ids.
    #[serde(default)]
    pub include_applications: BTreeSet<String>,
    #[serde(default)]
    pub exclude_applications: BTreeSet<String>,
}

/// `grantControls`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantControls {
    /// `OR` (default) or `AND`.
    #[serde(default)]
    pub operator: GrantOperator,
    /// `mfa` and/or `block`.
    #[serde(default)]
    pub built_in_controls: BTreeSet<BuiltInControl>,
}

/// A conditional access policy as entente manages it (canonical: externalTenants present).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionalAccessPolicyConfig {
    pub display_name: String,
    pub state: PolicyState,
    pub users: PolicyUsers,
    pub applications: PolicyApplications,
    pub grant_controls: GrantControls,
}

impl ConditionalAccessPolicyConfig {
    pub fn canonical(mut self) -> Self {
        self.users.include_guests_or_external_users = self.users.include_guests_or_external_users.canonical();
        self.users.exclude_guests_or_external_users = self
            .users
            .exclude_guests_or_external_users
            .filter(|e| !e.guest_or_external_user_types.is_empty())
            .map(|e| e.canonical());
        self
    }
    fn applies_to_app(&self, app: &str) -> bool {
        let a = &self.applications;
        let included = a.include_applications.iter().any(|i| i.eq_ignore_ascii_case("All") || i.eq_ignore_ascii_case(app));
        included && !a.exclude_applications.iter().any(|e| e.eq_ignore_ascii_case(app))
    }
    /// Whether the grant blocks outright: `block` alone, or `block` under AND.
    pub fn blocks(&self) -> bool {
        let c = &self.grant_controls.built_in_controls;
        c.contains(&BuiltInControl::Block) && (self.grant_controls.operator == GrantOperator::And || c.len() == 1)
    }
    pub fn requires_mfa(&self) -> bool {
        !self.blocks() && self.grant_controls.built_in_controls.contains(&BuiltInControl::Mfa)
    }
}

/// A policy the manifests declare.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredConditionalAccessPolicy {
    pub object: ObjectRef,
    pub policy: ConditionalAccessPolicyConfig,
    pub deletion_policy: DeletionPolicy,
}

impl DesiredConditionalAccessPolicy {
    /// The ownership record's key: the object (a policy has no natural key in the directory).
    pub fn key(&self) -> String {
        format!("{}/{}", self.object.namespace, self.object.name)
    }
}

/// A policy as a directory holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedConditionalAccessPolicy {
    pub id: String,
    #[serde(flatten)]
    pub policy: ConditionalAccessPolicyConfig,
}

// ---------------------------------------------------------------------------------------------
// The decision for one sign-in

/// How the user reaches the resource tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Collaboration,
    DirectConnect,
}

/// One sign-in of an external user.
#[derive(Clone, Debug)]
pub struct SignIn<'a> {
    pub user_type: GuestOrExternalUserType,
    /// `None`: the home is not a known directory tenant.
    pub home_tenant_id: Option<&'a str>,
    pub app: &'a str,
    pub channel: Channel,
    /// R11: the resource tenant's effective inbound trust accepts the home tenant's MFA.
    pub home_mfa_accepted: bool,
}

/// What one policy does to the sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub display_name: String,
    pub enforced: bool,
    pub blocks: bool,
    pub requires_mfa: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mfa {
    NotRequired,
    /// R11: the home tenant's MFA is accepted.
    SatisfiedByHome,
    /// Collaboration without trust: the resource tenant prompts.
    InResource,
    /// Direct connect without trust: blocked (R11).
    BlocksDirectConnect,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub hits: Vec<Hit>,
    /// The first enforced policy that blocks.
    pub blocked_by: Option<String>,
    pub mfa: Mfa,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.blocked_by.is_none() && self.mfa != Mfa::BlocksDirectConnect
    }
}

/// The user type a sign-in has: direct connect users are `b2bDirectConnectUser`; B2B collaboration users are
/// guests or members by their `userType` (an invitation not yet sent makes a guest).
pub fn user_type(channel: Channel, guest_type: Option<UserType>) -> GuestOrExternalUserType {
    match (channel, guest_type) {
        (Channel::DirectConnect, _) => GuestOrExternalUserType::B2bDirectConnectUser,
        (Channel::Collaboration, Some(UserType::Member)) => GuestOrExternalUserType::B2bCollaborationMember,
        (Channel::Collaboration, _) => GuestOrExternalUserType::B2bCollaborationGuest,
    }
}

/// Which policies apply to the sign-in and what they decide. Disabled policies are ignored; report-only
/// policies are listed (`enforced: false`) but decide nothing.
pub fn decide(policies: &[ConditionalAccessPolicyConfig], s: &SignIn<'_>) -> Decision {
    let mut hits = Vec::new();
    for p in policies.iter().filter(|p| p.state != PolicyState::Disabled) {
        let users = &p.users;
        let included = users.include_guests_or_external_users.matches(s.user_type, s.home_tenant_id);
        let excluded = users.exclude_guests_or_external_users.as_ref().is_some_and(|e| e.matches(s.user_type, s.home_tenant_id));
        if included && !excluded && p.applies_to_app(s.app) {
            hits.push(Hit {
                display_name: p.display_name.clone(),
                enforced: p.state == PolicyState::Enabled,
                blocks: p.blocks(),
                requires_mfa: p.requires_mfa(),
            });
        }
    }
    let blocked_by = hits.iter().find(|h| h.enforced && h.blocks).map(|h| h.display_name.clone());
    let mfa_required = hits.iter().any(|h| h.enforced && h.requires_mfa);
    let mfa = match (mfa_required, s.home_mfa_accepted, s.channel) {
        (false, _, _) => Mfa::NotRequired,
        (true, true, _) => Mfa::SatisfiedByHome,
        (true, false, Channel::Collaboration) => Mfa::InResource,
        (true, false, Channel::DirectConnect) => Mfa::BlocksDirectConnect,
    };
    Decision { hits, blocked_by, mfa }
}

impl fmt::Display for Mfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mfa::NotRequired => "no policy requires MFA",
            Mfa::SatisfiedByHome => "MFA required, satisfied by the home tenant's MFA",
            Mfa::InResource => "MFA required, done in the resource tenant",
            Mfa::BlocksDirectConnect => "MFA required and not trusted: direct connect is blocked",
        })
    }
}

/// Adds the R18 steps to the B2B collaboration and direct connect paths of `e`, evaluating the resource
/// tenant's conditional access `policies` (`None`: not known, so a note says the paths were judged
/// without them). `guest_type`: the user's `userType` in the resource tenant, when they have an account.
pub fn add_to_explanation(
    e: &mut Explanation,
    resource: &TenantPolicy,
    home: Option<&TenantPolicy>,
    guest_type: Option<UserType>,
    policies: Option<&[ConditionalAccessPolicyConfig]>,
) {
    let app = e.application.clone();
    for path in e.paths.iter_mut() {
        let channel = match path.path {
            "b2bCollaboration" => Channel::Collaboration,
            "b2bDirectConnect" => Channel::DirectConnect,
            _ => continue,
        };
        let Some(policies) = policies else {
            path.steps.push(Step {
                rule: "R18",
                tenant: resource.name().to_string(),
                setting: "conditionalAccess/policies".into(),
                decided_by: "not modelled".into(),
                verdict: Verdict::Note,
                detail: "the resource tenant's conditional access policies are not known here; judged without them".into(),
            });
            continue;
        };
        add_steps(path, channel, resource, home, guest_type, policies, &app);
    }
}

fn add_steps(
    path: &mut AccessPath,
    channel: Channel,
    resource: &TenantPolicy,
    home: Option<&TenantPolicy>,
    guest_type: Option<UserType>,
    policies: &[ConditionalAccessPolicyConfig],
    app: &str,
) {
    let home_id = home.map(|h| h.identity.tenant_id.as_str());
    let accepted = home.is_some_and(|h| resource.effective_for(&h.identity.tenant_id).inbound_trust.is_mfa_accepted);
    let trust_source = home.map(|h| {
        resource
            .source(&h.identity.tenant_id, |p| p.inbound_trust.as_ref().is_some_and(|t| t.is_mfa_accepted.is_some()))
            .to_string()
    });
    let t = user_type(channel, guest_type);
    let d = decide(policies, &SignIn { user_type: t, home_tenant_id: home_id, app, channel, home_mfa_accepted: accepted });
    let of_home = home.map(|h| format!(" of {}", h.name())).unwrap_or_else(|| " (home not a directory tenant)".into());
    if d.hits.is_empty() {
        path.steps.push(Step {
            rule: "R18",
            tenant: resource.name().to_string(),
            setting: "conditionalAccess/policies".into(),
            decided_by: "conditional access".into(),
            verdict: Verdict::Note,
            detail: format!(
                "no conditional access policy in {} applies to {} users{of_home} for {app}",
                resource.name(),
                t.as_str()
            ),
        });
    }
    for h in &d.hits {
        let name = &h.display_name;
        let decided_by = format!("ConditionalAccessPolicy '{name}'");
        let (verdict, detail) = if !h.enforced {
            let would = if h.blocks {
                "would block"
            } else if h.requires_mfa {
                "would require MFA"
            } else {
                "would apply"
            };
            (
                Verdict::Note,
                format!(
                    "ConditionalAccessPolicy '{name}' in {} {would} for {} users{of_home}, but it is report-only \
                     (enabledForReportingButNotEnforced): not enforced",
                    resource.name(),
                    t.as_str()
                ),
            )
        } else if h.blocks {
            (
                Verdict::Blocks,
                format!("ConditionalAccessPolicy '{name}' in {} blocks {} users{of_home}", resource.name(), t.as_str()),
            )
        } else if h.requires_mfa {
            let then = match (accepted, channel, home) {
                (true, _, Some(hm)) => (
                    Verdict::Allows,
                    format!(
                        "satisfied by {}'s MFA (inboundTrust.isMfaAccepted, {})",
                        hm.name(),
                        trust_source.clone().unwrap_or_default()
                    ),
                ),
                (_, Channel::Collaboration, _) => (
                    Verdict::Note,
                    format!("MFA is done in {} (inboundTrust.isMfaAccepted is false for the home tenant)", resource.name()),
                ),
                (_, Channel::DirectConnect, _) => (
                    Verdict::Blocks,
                    format!(
                        "blocks: a direct connect user cannot do MFA in {} and the home tenant's MFA is not trusted (R11, \
                         inboundTrust.isMfaAccepted)",
                        resource.name()
                    ),
                ),
            };
            (
                then.0,
                format!(
                    "ConditionalAccessPolicy '{name}' in {} requires MFA for {} users{of_home} → {}",
                    resource.name(),
                    t.as_str(),
                    then.1
                ),
            )
        } else {
            (Verdict::Note, format!("ConditionalAccessPolicy '{name}' in {} applies (no mfa or block control)", resource.name()))
        };
        path.steps.push(Step {
            rule: "R18",
            tenant: resource.name().to_string(),
            setting: "conditionalAccess/policies".into(),
            decided_by,
            verdict,
            detail,
        });
    }
    if d.mfa != Mfa::NotRequired {
        path.mfa = format!("{} (R18, R11): {}", d.mfa, path.mfa);
    }
    path.allowed = path.allowed && path.steps.iter().all(|s| s.verdict != Verdict::Blocks);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(types: &[GuestOrExternalUserType], controls: &[BuiltInControl]) -> ConditionalAccessPolicyConfig {
        ConditionalAccessPolicyConfig {
            display_name: "p".into(),
            state: PolicyState::Enabled,
            users: PolicyUsers {
                include_guests_or_external_users: GuestsOrExternalUsers {
                    guest_or_external_user_types: types.iter().copied().collect(),
                    external_tenants: None,
                },
                exclude_guests_or_external_users: None,
            },
            applications: PolicyApplications { include_applications: BTreeSet::from(["All".into()]), ..Default::default() },
            grant_controls: GrantControls { operator: GrantOperator::Or, built_in_controls: controls.iter().copied().collect() },
        }
        .canonical()
    }

    fn sign_in(channel: Channel, accepted: bool) -> SignIn<'static> {
        SignIn {
            user_type: user_type(channel, Some(UserType::Guest)),
            home_tenant_id: Some("f"),
            app: "app1",
            channel,
            home_mfa_accepted: accepted,
        }
    }

    #[test]
    fn flags_round_trip() {
        let t = flags_from_string("internalGuest, b2bCollaborationGuest,none").unwrap();
        assert_eq!(flags_to_string(&t), "internalGuest,b2bCollaborationGuest");
        assert!(flags_from_string("bogus").is_err());
    }

    #[test]
    fn decisions() {
        use BuiltInControl::*;
        use GuestOrExternalUserType::*;
        let mfa = policy(&[B2bCollaborationGuest, B2bDirectConnectUser], &[Mfa]);
        assert_eq!(decide(std::slice::from_ref(&mfa), &sign_in(Channel::Collaboration, true)).mfa, super::Mfa::SatisfiedByHome);
        assert_eq!(decide(std::slice::from_ref(&mfa), &sign_in(Channel::Collaboration, false)).mfa, super::Mfa::InResource);
        let dc = decide(std::slice::from_ref(&mfa), &sign_in(Channel::DirectConnect, false));
        assert_eq!(dc.mfa, super::Mfa::BlocksDirectConnect);
        assert!(!dc.allowed());
        // Another user type: not targeted.
        let members = policy(&[B2bCollaborationMember], &[Block]);
        assert!(decide(std::slice::from_ref(&members), &sign_in(Channel::Collaboration, false)).allowed());
        // Block; report-only is not enforced; disabled ignored.
        let block = policy(&[B2bCollaborationGuest], &[Block]);
        assert_eq!(decide(std::slice::from_ref(&block), &sign_in(Channel::Collaboration, true)).blocked_by.as_deref(), Some("p"));
        let mut report = block.clone();
        report.state = PolicyState::EnabledForReportingButNotEnforced;
        let d = decide(&[report], &sign_in(Channel::Collaboration, true));
        assert!(d.allowed() && d.hits.len() == 1 && !d.hits[0].enforced);
        let mut disabled = block.clone();
        disabled.state = PolicyState::Disabled;
        assert!(decide(&[disabled], &sign_in(Channel::Collaboration, true)).hits.is_empty());
        // Excluded tenant; enumerated tenants; excluded application.
        let mut excluded = block.clone();
        excluded.users.exclude_guests_or_external_users = Some(GuestsOrExternalUsers {
            guest_or_external_user_types: BTreeSet::from([B2bCollaborationGuest]),
            external_tenants: Some(ExternalTenants::Enumerated(BTreeSet::from(["f".into()]))),
        });
        assert!(decide(&[excluded], &sign_in(Channel::Collaboration, true)).allowed());
        let mut other = block.clone();
        other.users.include_guests_or_external_users.external_tenants =
            Some(ExternalTenants::Enumerated(BTreeSet::from(["x".into()])));
        assert!(decide(&[other], &sign_in(Channel::Collaboration, true)).allowed());
        let mut app_excluded = block;
        app_excluded.applications.exclude_applications.insert("APP1".into());
        assert!(decide(&[app_excluded], &sign_in(Channel::Collaboration, true)).allowed());
        // OR with mfa and block: MFA satisfies it.
        let either = policy(&[B2bCollaborationGuest], &[Mfa, Block]);
        assert!(either.requires_mfa() && !either.blocks());
    }
}
