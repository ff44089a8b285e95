//! Settings in canonical form: every value present, target lists sorted and deduplicated,
//! keywords unified. Two settings compare equal here exactly when they mean the same thing, so
//! Graph's reordering, omitted blocks and null-versus-false never show up as a change.
//!
//! R1 (system defaults) and R2 (partner overrides default, setting by setting) live here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::settings::*;

/// A target configuration in canonical form. Serialized as one readable string, e.g.
/// `allowed: AllUsers` or `blocked: group:6f1c…, user:0b2a…`, which is what a plan diff shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub access_type: AccessType,
    pub targets: BTreeSet<AccessTarget>,
}

impl Access {
    pub fn new(access_type: AccessType, targets: impl IntoIterator<Item = AccessTarget>) -> Self {
        let targets = targets
            .into_iter()
            .map(|t| AccessTarget { target: canonical_target(&t.target), target_type: t.target_type })
            .collect();
        Self { access_type, targets }
    }
    pub fn all_users(access_type: AccessType) -> Self {
        Self::new(access_type, [AccessTarget::all_users()])
    }
    pub fn all_applications(access_type: AccessType) -> Self {
        Self::new(access_type, [AccessTarget::all_applications()])
    }
    fn from_config(c: &TargetConfiguration) -> Self {
        Self::new(c.access_type, c.targets.iter().cloned())
    }
    pub fn to_config(&self) -> TargetConfiguration {
        TargetConfiguration { access_type: self.access_type, targets: self.targets.iter().cloned().collect() }
    }

    /// Whether a principal known by `ids` (object ids of the user, its groups, an application) is let through.
    /// A keyword target (`AllUsers`, `AllApplications`) matches everyone.
    pub fn admits(&self, ids: &[&str]) -> bool {
        let matched = self.targets.iter().any(|t| {
            is_keyword(&t.target) && t.target != "AllMicrosoftApps" && t.target != "Office365"
                || ids.iter().any(|id| id.eq_ignore_ascii_case(&t.target))
        });
        match self.access_type {
            AccessType::Allowed => matched,
            AccessType::Blocked => !matched,
        }
    }

    /// True when every target is a keyword such as `AllUsers`: the answer does not depend on who asks.
    pub fn names_only_keywords(&self) -> bool {
        self.targets.iter().all(|t| is_keyword(&t.target))
    }

    pub fn render(&self) -> String {
        let kind = match self.access_type {
            AccessType::Allowed => "allowed",
            AccessType::Blocked => "blocked",
        };
        let targets: Vec<String> = self
            .targets
            .iter()
            .map(|t| {
                if is_keyword(&t.target) {
                    t.target.clone()
                } else {
                    let ty = match t.target_type {
                        TargetType::User => "user",
                        TargetType::Group => "group",
                        TargetType::Application => "application",
                    };
                    format!("{ty}:{}", t.target)
                }
            })
            .collect();
        format!("{kind}: {}", targets.join(", "))
    }
}

impl Serialize for Access {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.render())
    }
}

fn is_keyword(target: &str) -> bool {
    target == ALL_USERS || APPLICATION_KEYWORDS.contains(&target)
}

/// Keywords keep Graph's spelling whatever the case they were written in; ids are compared lowercase.
fn canonical_target(target: &str) -> String {
    for kw in std::iter::once(ALL_USERS).chain(APPLICATION_KEYWORDS) {
        if target.eq_ignore_ascii_case(kw) {
            return kw.to_string();
        }
    }
    target.to_ascii_lowercase()
}

/// A B2B setting in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedB2b {
    pub users_and_groups: Access,
    pub applications: Access,
}

impl ResolvedB2b {
    pub fn uniform(access_type: AccessType) -> Self {
        Self { users_and_groups: Access::all_users(access_type), applications: Access::all_applications(access_type) }
    }
    fn overlay(&self, over: Option<&B2bSetting>) -> Self {
        let Some(over) = over else { return self.clone() };
        Self {
            users_and_groups: over.users_and_groups.as_ref().map_or_else(|| self.users_and_groups.clone(), Access::from_config),
            applications: over.applications.as_ref().map_or_else(|| self.applications.clone(), Access::from_config),
        }
    }
    pub fn to_setting(&self) -> B2bSetting {
        B2bSetting {
            users_and_groups: Some(self.users_and_groups.to_config()),
            applications: Some(self.applications.to_config()),
        }
    }
}

/// Inbound trust in canonical form (absent means false).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedTrust {
    pub is_mfa_accepted: bool,
    pub is_compliant_device_accepted: bool,
    #[serde(rename = "isHybridAzureADJoinedDeviceAccepted")]
    pub is_hybrid_azure_ad_joined_device_accepted: bool,
}

/// Automatic user consent in canonical form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedConsent {
    pub inbound_allowed: bool,
    pub outbound_allowed: bool,
}

/// Every cross-tenant access setting, resolved: what is in force for one partner, or the default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAccess {
    #[serde(rename = "b2bCollaborationInbound")]
    pub b2b_collaboration_inbound: ResolvedB2b,
    #[serde(rename = "b2bCollaborationOutbound")]
    pub b2b_collaboration_outbound: ResolvedB2b,
    #[serde(rename = "b2bDirectConnectInbound")]
    pub b2b_direct_connect_inbound: ResolvedB2b,
    #[serde(rename = "b2bDirectConnectOutbound")]
    pub b2b_direct_connect_outbound: ResolvedB2b,
    pub inbound_trust: ResolvedTrust,
    pub automatic_user_consent_settings: ResolvedConsent,
    pub tenant_restrictions: ResolvedB2b,
}

impl ResolvedAccess {
    /// R1: a new tenant's default configuration. B2B collaboration allowed both ways for all users and
    /// applications; direct connect and tenant restrictions blocked; no inbound trust; no automatic consent.
    pub fn system_default() -> Self {
        Self {
            b2b_collaboration_inbound: ResolvedB2b::uniform(AccessType::Allowed),
            b2b_collaboration_outbound: ResolvedB2b::uniform(AccessType::Allowed),
            b2b_direct_connect_inbound: ResolvedB2b::uniform(AccessType::Blocked),
            b2b_direct_connect_outbound: ResolvedB2b::uniform(AccessType::Blocked),
            inbound_trust: ResolvedTrust::default(),
            automatic_user_consent_settings: ResolvedConsent::default(),
            tenant_restrictions: ResolvedB2b::uniform(AccessType::Blocked),
        }
    }

    /// R2: `over` replaces this configuration setting by setting; whatever `over` leaves absent is kept.
    /// Used both for "system default + manifest default" and for "default + partner".
    pub fn overlay(&self, over: &CrossTenantAccessSettings) -> Self {
        let trust = over.inbound_trust.as_ref();
        let consent = over.automatic_user_consent_settings.as_ref();
        Self {
            b2b_collaboration_inbound: self.b2b_collaboration_inbound.overlay(over.b2b_collaboration_inbound.as_ref()),
            b2b_collaboration_outbound: self.b2b_collaboration_outbound.overlay(over.b2b_collaboration_outbound.as_ref()),
            b2b_direct_connect_inbound: self.b2b_direct_connect_inbound.overlay(over.b2b_direct_connect_inbound.as_ref()),
            b2b_direct_connect_outbound: self.b2b_direct_connect_outbound.overlay(over.b2b_direct_connect_outbound.as_ref()),
            inbound_trust: ResolvedTrust {
                is_mfa_accepted: trust.and_then(|t| t.is_mfa_accepted).unwrap_or(self.inbound_trust.is_mfa_accepted),
                is_compliant_device_accepted: trust
                    .and_then(|t| t.is_compliant_device_accepted)
                    .unwrap_or(self.inbound_trust.is_compliant_device_accepted),
                is_hybrid_azure_ad_joined_device_accepted: trust
                    .and_then(|t| t.is_hybrid_azure_ad_joined_device_accepted)
                    .unwrap_or(self.inbound_trust.is_hybrid_azure_ad_joined_device_accepted),
            },
            automatic_user_consent_settings: ResolvedConsent {
                inbound_allowed: consent
                    .and_then(|c| c.inbound_allowed)
                    .unwrap_or(self.automatic_user_consent_settings.inbound_allowed),
                outbound_allowed: consent
                    .and_then(|c| c.outbound_allowed)
                    .unwrap_or(self.automatic_user_consent_settings.outbound_allowed),
            },
            tenant_restrictions: self.tenant_restrictions.overlay(over.tenant_restrictions.as_ref()),
        }
    }

    /// The fully spelled-out settings, as a backend writes them for the default configuration.
    pub fn to_settings(&self) -> CrossTenantAccessSettings {
        CrossTenantAccessSettings {
            b2b_collaboration_inbound: Some(self.b2b_collaboration_inbound.to_setting()),
            b2b_collaboration_outbound: Some(self.b2b_collaboration_outbound.to_setting()),
            b2b_direct_connect_inbound: Some(self.b2b_direct_connect_inbound.to_setting()),
            b2b_direct_connect_outbound: Some(self.b2b_direct_connect_outbound.to_setting()),
            inbound_trust: Some(InboundTrust {
                is_mfa_accepted: Some(self.inbound_trust.is_mfa_accepted),
                is_compliant_device_accepted: Some(self.inbound_trust.is_compliant_device_accepted),
                is_hybrid_azure_ad_joined_device_accepted: Some(self.inbound_trust.is_hybrid_azure_ad_joined_device_accepted),
            }),
            automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
                inbound_allowed: Some(self.automatic_user_consent_settings.inbound_allowed),
                outbound_allowed: Some(self.automatic_user_consent_settings.outbound_allowed),
            }),
            tenant_restrictions: Some(self.tenant_restrictions.to_setting()),
        }
    }
}

/// The invitation domain list in canonical form: lowercase, sorted. A block list with no domains
/// blocks nothing, so it resolves to "no list".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedDomainList {
    pub mode: DomainListMode,
    pub domains: BTreeSet<String>,
}

/// External collaboration settings in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedCollaboration {
    pub allow_invites_from: AllowInvitesFrom,
    pub guest_user_role_id: String,
    pub allow_email_verified_users_to_join_organization: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_list: Option<ResolvedDomainList>,
}

impl Default for ResolvedCollaboration {
    /// Graph's defaults for a workforce tenant in the global cloud.
    fn default() -> Self {
        Self {
            allow_invites_from: AllowInvitesFrom::Everyone,
            guest_user_role_id: GUEST_ROLE_LIMITED.to_string(),
            allow_email_verified_users_to_join_organization: true,
            domain_list: None,
        }
    }
}

impl ResolvedCollaboration {
    pub fn resolve(s: &ExternalCollaborationSettings) -> Self {
        let d = Self::default();
        Self {
            allow_invites_from: s.allow_invites_from.unwrap_or(d.allow_invites_from),
            guest_user_role_id: s.guest_user_role_id.as_deref().map(str::to_ascii_lowercase).unwrap_or(d.guest_user_role_id),
            allow_email_verified_users_to_join_organization: s
                .allow_email_verified_users_to_join_organization
                .unwrap_or(d.allow_email_verified_users_to_join_organization),
            domain_list: s.domain_list.as_ref().and_then(resolve_domain_list),
        }
    }
}

pub fn resolve_domain_list(list: &DomainList) -> Option<ResolvedDomainList> {
    let domains: BTreeSet<String> = list.domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    if list.mode == DomainListMode::BlockList && domains.is_empty() {
        return None;
    }
    Some(ResolvedDomainList { mode: list.mode, domains })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_config(access_type: AccessType, targets: &[(&str, TargetType)]) -> TargetConfiguration {
        TargetConfiguration::new(access_type, targets.iter().map(|(t, ty)| AccessTarget::new(*t, *ty)).collect())
    }

    #[test]
    fn r1_system_default_matches_the_rule() {
        let d = ResolvedAccess::system_default();
        assert_eq!(d.b2b_collaboration_inbound.users_and_groups.render(), "allowed: AllUsers");
        assert_eq!(d.b2b_collaboration_outbound.applications.render(), "allowed: AllApplications");
        assert_eq!(d.b2b_direct_connect_inbound.users_and_groups.render(), "blocked: AllUsers");
        assert_eq!(d.b2b_direct_connect_outbound.applications.render(), "blocked: AllApplications");
        assert_eq!(d.tenant_restrictions.users_and_groups.render(), "blocked: AllUsers");
        assert_eq!(d.inbound_trust, ResolvedTrust::default());
        assert!(!d.automatic_user_consent_settings.inbound_allowed && !d.automatic_user_consent_settings.outbound_allowed);
    }

    #[test]
    fn r2_partner_overrides_setting_by_setting_and_absent_inherits() {
        let mut default = ResolvedAccess::system_default();
        default.inbound_trust.is_compliant_device_accepted = true;
        let partner = CrossTenantAccessSettings {
            b2b_collaboration_inbound: Some(B2bSetting {
                users_and_groups: Some(target_config(AccessType::Allowed, &[("G1", TargetType::Group)])),
                applications: None,
            }),
            inbound_trust: Some(InboundTrust { is_mfa_accepted: Some(true), ..Default::default() }),
            ..Default::default()
        };
        let eff = default.overlay(&partner);
        assert_eq!(eff.b2b_collaboration_inbound.users_and_groups.render(), "allowed: group:g1");
        // applications were absent on the partner: inherited from the default
        assert_eq!(eff.b2b_collaboration_inbound.applications, default.b2b_collaboration_inbound.applications);
        assert!(eff.inbound_trust.is_mfa_accepted);
        assert!(eff.inbound_trust.is_compliant_device_accepted, "null compliant-device claim inherits the default");
        assert_eq!(eff.b2b_direct_connect_inbound, default.b2b_direct_connect_inbound);
        // removing the partner configuration returns the partner to the defaults
        assert_eq!(default.overlay(&CrossTenantAccessSettings::default()), default);
    }

    #[test]
    fn order_case_and_duplicates_of_targets_do_not_matter() {
        let a = Access::new(
            AccessType::Allowed,
            [AccessTarget::new("B", TargetType::Group), AccessTarget::new("a", TargetType::User)],
        );
        let b = Access::new(
            AccessType::Allowed,
            [
                AccessTarget::new("A", TargetType::User),
                AccessTarget::new("b", TargetType::Group),
                AccessTarget::new("a", TargetType::User),
            ],
        );
        assert_eq!(a, b);
        assert_eq!(
            Access::new(AccessType::Allowed, [AccessTarget::new("allusers", TargetType::User)]),
            Access::all_users(AccessType::Allowed)
        );
    }

    #[test]
    fn explicit_values_equal_to_the_default_are_the_same_as_absent() {
        let d = ResolvedAccess::system_default();
        assert_eq!(d.overlay(&d.to_settings()), d);
    }

    #[test]
    fn admits_follows_allowed_and_blocked_semantics() {
        let only_g1 = Access::new(AccessType::Allowed, [AccessTarget::new("g1", TargetType::Group)]);
        assert!(only_g1.admits(&["u1", "G1"]));
        assert!(!only_g1.admits(&["u1"]));
        let all_but_u2 = Access::new(AccessType::Blocked, [AccessTarget::new("u2", TargetType::User)]);
        assert!(all_but_u2.admits(&["u1"]));
        assert!(!all_but_u2.admits(&["u2"]));
        assert!(!Access::all_users(AccessType::Blocked).admits(&["anyone"]));
    }

    #[test]
    fn empty_block_list_is_no_list() {
        let s = ExternalCollaborationSettings {
            domain_list: Some(DomainList { mode: DomainListMode::BlockList, domains: vec![] }),
            ..Default::default()
        };
        assert_eq!(ResolvedCollaboration::resolve(&s), ResolvedCollaboration::default());
        let allow_none = ExternalCollaborationSettings {
            domain_list: Some(DomainList { mode: DomainListMode::AllowList, domains: vec![] }),
            ..Default::default()
        };
        assert!(
            ResolvedCollaboration::resolve(&allow_none).domain_list.is_some(),
            "an empty allow list still refuses everything"
        );
    }
}
