//! Access impact of a plan: for each tenant, each partner and each existing guest, what a change to
//! cross-tenant access or external collaboration settings grants or removes. This answers the question
//! reviewers actually ask of a pull request: who gains or loses access?

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{GuestUser, RedemptionState};
use super::policy::{TenantPolicy, email_domain};
use super::resolved::{Access, ResolvedAccess};

#[path = "impact_conditional_access.rs"]
mod conditional_access;
pub use conditional_access::{PoliciesByTenant, conditional_access_impact};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Effect {
    Grants,
    Removes,
}

/// One consequence of the plan, e.g. "blocks inbound B2B collaboration for 12 existing guests of fabrikam.com".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpactLine {
    /// The tenant whose settings change.
    pub tenant: String,
    /// The other side: a partner tenant or an email domain.
    pub counterpart: String,
    pub effect: Effect,
    pub message: String,
    /// Existing guests concerned (their addresses).
    pub guests: Vec<String>,
}

/// The guests the plan deletes, per tenant and email domain: they lose their accounts and every access
/// those give (each deletion's note names its groups and access packages). `tenant_names` gives each
/// tenant id its domain.
pub fn deletion_impact(plan: &super::plan::Plan, tenant_names: &BTreeMap<String, String>) -> Vec<ImpactLine> {
    let mut by_domain: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in &plan.changes {
        if c.action != super::plan::Action::Delete || c.object.kind != super::model::Kind::GuestInvitation {
            continue;
        }
        let Some(who) = &c.subject else { continue };
        let tenant = tenant_names.get(&c.tenant_id.to_ascii_lowercase()).cloned().unwrap_or_else(|| c.tenant_id.clone());
        by_domain.entry((tenant, email_domain(who).to_ascii_lowercase())).or_default().push(who.clone());
    }
    by_domain
        .into_iter()
        .map(|((tenant, domain), guests)| ImpactLine {
            message: format!(
                "deletes {} guest(s) of {domain} ({}): their accounts, group memberships and access package \
                 assignments go, and with them every access they give",
                guests.len(),
                named(&guests)
            ),
            tenant,
            counterpart: domain,
            effect: Effect::Removes,
            guests,
        })
        .collect()
}

/// Up to ten addresses, then how many more.
fn named(guests: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut s = guests.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if guests.len() > SHOWN {
        s.push_str(&format!(" and {} more", guests.len() - SHOWN));
    }
    s
}

/// Compares settings before and after the plan. `guests` are the existing guests of each tenant, by tenant id.
pub fn access_impact(
    before: &[TenantPolicy],
    after: &[TenantPolicy],
    guests: &BTreeMap<String, Vec<GuestUser>>,
) -> Vec<ImpactLine> {
    let mut out = Vec::new();
    for new in after {
        let Some(old) = before.iter().find(|b| b.identity.tenant_id == new.identity.tenant_id) else { continue };
        let empty = Vec::new();
        let tenant_guests = guests.get(&new.identity.tenant_id).unwrap_or(&empty);
        let partners = after.iter().chain(before).filter(|p| p.identity.tenant_id != new.identity.tenant_id);
        let mut seen = std::collections::BTreeSet::new();
        for partner in partners {
            if !seen.insert(partner.identity.tenant_id.clone()) {
                continue;
            }
            // The partner's own settings after the plan, if it is managed too; else as it was.
            let partner_after = after.iter().find(|p| p.identity.tenant_id == partner.identity.tenant_id).unwrap_or(partner);
            let partner_before = before.iter().find(|p| p.identity.tenant_id == partner.identity.tenant_id).unwrap_or(partner);
            let of_partner: Vec<String> = tenant_guests
                .iter()
                .filter(|g| partner.identity.owns_domain(email_domain(&g.mail)))
                .map(|g| g.mail.clone())
                .collect();
            compare_partner(&mut out, old, new, partner_before, partner_after, of_partner);
        }
        compare_domain_list(&mut out, old, new, tenant_guests);
    }
    out
}

fn users_admitted(a: &Access) -> bool {
    a.admits(&[])
}

fn compare_partner(
    out: &mut Vec<ImpactLine>,
    old: &TenantPolicy,
    new: &TenantPolicy,
    p_old: &TenantPolicy,
    p_new: &TenantPolicy,
    guests: Vec<String>,
) {
    let pid = &p_new.identity.tenant_id;
    let (r0, r1): (ResolvedAccess, ResolvedAccess) = (old.effective_for(pid), new.effective_for(pid));
    let (h0, h1) = (p_old.effective_for(&old.identity.tenant_id), p_new.effective_for(&new.identity.tenant_id));
    let who = p_new.name().to_string();
    let domain = p_new.identity.verified_domains.iter().next().cloned().unwrap_or_else(|| who.clone());
    let n = guests.len();
    let mut line = |effect, message: String, guests: Vec<String>| {
        out.push(ImpactLine { tenant: new.name().to_string(), counterpart: who.clone(), effect, message, guests });
    };

    let collab_before = users_admitted(&r0.b2b_collaboration_inbound.users_and_groups)
        && users_admitted(&h0.b2b_collaboration_outbound.users_and_groups);
    let collab_after = users_admitted(&r1.b2b_collaboration_inbound.users_and_groups)
        && users_admitted(&h1.b2b_collaboration_outbound.users_and_groups);
    if collab_before && !collab_after {
        let restricted = !r1.b2b_collaboration_inbound.users_and_groups.names_only_keywords();
        let how = if restricted { "restricts" } else { "blocks" };
        line(
            Effect::Removes,
            format!(
                "{how} inbound B2B collaboration for {n} existing guest(s) of {domain} ({} b2bCollaborationInbound.usersAndGroups: \"{}\")",
                new.name(),
                r1.b2b_collaboration_inbound.users_and_groups.render()
            ),
            guests.clone(),
        );
    } else if !collab_before && collab_after {
        line(
            Effect::Grants,
            format!("allows inbound B2B collaboration from {who} again, for {n} existing guest(s) of {domain}"),
            guests.clone(),
        );
    }
    if r0.b2b_collaboration_inbound.applications != r1.b2b_collaboration_inbound.applications {
        let effect = if users_admitted(&r1.b2b_collaboration_inbound.applications) { Effect::Grants } else { Effect::Removes };
        line(
            effect,
            format!(
                "changes the applications {n} existing guest(s) of {domain} may use: \"{}\" → \"{}\"",
                r0.b2b_collaboration_inbound.applications.render(),
                r1.b2b_collaboration_inbound.applications.render()
            ),
            guests.clone(),
        );
    }
    let dc = |r: &ResolvedAccess, h: &ResolvedAccess| {
        users_admitted(&r.b2b_direct_connect_inbound.users_and_groups)
            && users_admitted(&h.b2b_direct_connect_outbound.users_and_groups)
    };
    match (dc(&r0, &h0), dc(&r1, &h1)) {
        (false, true) => line(
            Effect::Grants,
            format!("enables B2B direct connect from {who} into {} (both sides now allow it, R10)", new.name()),
            vec![],
        ),
        (true, false) => line(Effect::Removes, format!("ends B2B direct connect from {who} into {} (R10)", new.name()), vec![]),
        _ => {}
    }
    match (r0.inbound_trust.is_mfa_accepted, r1.inbound_trust.is_mfa_accepted) {
        (false, true) => line(
            Effect::Grants,
            format!(
                "trusts {who}'s MFA: {n} existing guest(s) of {domain} are no longer prompted for MFA by {} (R11)",
                new.name()
            ),
            guests.clone(),
        ),
        (true, false) => line(
            Effect::Removes,
            format!(
                "stops trusting {who}'s MFA: {n} existing guest(s) of {domain} will be prompted for MFA by {} (R11)",
                new.name()
            ),
            guests.clone(),
        ),
        _ => {}
    }
    let auto = |r: &ResolvedAccess, h: &ResolvedAccess| {
        r.automatic_user_consent_settings.inbound_allowed && h.automatic_user_consent_settings.outbound_allowed
    };
    match (auto(&r0, &h0), auto(&r1, &h1)) {
        (false, true) => {
            line(Effect::Grants, format!("enables automatic redemption for users of {who} (no consent prompt, R12)"), vec![])
        }
        (true, false) => line(
            Effect::Removes,
            format!(
                "ends automatic redemption for users of {who}: they get a consent prompt; cross-tenant sync from {who} stops working (R12, R13)"
            ),
            vec![],
        ),
        _ => {}
    }
}

fn compare_domain_list(out: &mut Vec<ImpactLine>, old: &TenantPolicy, new: &TenantPolicy, guests: &[GuestUser]) {
    let refused = |p: &TenantPolicy, domain: &str| super::policy::check_redemption(p, &format!("x@{domain}"), None).is_err();
    let mut by_domain: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for g in guests {
        let d = email_domain(&g.mail).to_ascii_lowercase();
        if !refused(old, &d) && refused(new, &d) {
            let entry = by_domain.entry(d).or_default();
            if g.external_user_state == Some(RedemptionState::PendingAcceptance) {
                entry.0.push(g.mail.clone())
            } else {
                entry.1.push(g.mail.clone())
            }
        }
    }
    for (domain, (pending, accepted)) in by_domain {
        if !pending.is_empty() {
            out.push(ImpactLine {
                tenant: new.name().to_string(),
                counterpart: domain.clone(),
                effect: Effect::Removes,
                message: format!(
                    "{} pending invitation(s) to {domain} will fail at redemption: the domain list now refuses it (R3, R5)",
                    pending.len()
                ),
                guests: pending,
            });
        }
        if !accepted.is_empty() {
            out.push(ImpactLine {
                tenant: new.name().to_string(),
                counterpart: domain.clone(),
                effect: Effect::Removes,
                message: format!(
                    "new invitations to {domain} will be refused; its {} existing guest(s) keep signing in (R3)",
                    accepted.len()
                ),
                guests: accepted,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::core::model::{Cloud, TenantIdentity, UserType};
    use crate::core::resolved::{ResolvedCollaboration, ResolvedDomainList};
    use crate::core::settings::*;

    fn tenant(id: &str, name: &str) -> TenantPolicy {
        TenantPolicy {
            identity: TenantIdentity {
                tenant_id: id.into(),
                initial_domain: format!("{name}.onmicrosoft.com"),
                display_name: name.into(),
                cloud: Cloud::Global,
                verified_domains: BTreeSet::from([format!("{name}.com")]),
            },
            collaboration: ResolvedCollaboration::default(),
            default_access: ResolvedAccess::system_default(),
            partners: BTreeMap::new(),
            allowed_clouds: Default::default(),
        }
    }

    fn guest(mail: &str, state: RedemptionState) -> GuestUser {
        GuestUser {
            id: mail.into(),
            mail: mail.into(),
            display_name: None,
            user_principal_name: String::new(),
            user_type: UserType::Guest,
            creation_type: Some("Invitation".into()),
            external_user_state: Some(state),
            external_user_state_change_date_time: None,
            account_enabled: true,
            group_ids: BTreeSet::new(),
        }
    }

    #[test]
    fn blocking_a_partner_names_the_guests_who_lose_access() {
        let contoso = tenant("c", "contoso");
        let fabrikam = tenant("f", "fabrikam");
        let mut after = contoso.clone();
        after.partners.insert(
            "f".into(),
            CrossTenantAccessSettings {
                b2b_collaboration_inbound: Some(B2bSetting {
                    users_and_groups: Some(TargetConfiguration::new(AccessType::Blocked, vec![AccessTarget::all_users()])),
                    applications: None,
                }),
                ..Default::default()
            },
        );
        let guests = BTreeMap::from([(
            "c".to_string(),
            vec![
                guest("a@fabrikam.com", RedemptionState::Accepted),
                guest("b@fabrikam.com", RedemptionState::Accepted),
                guest("z@other.org", RedemptionState::Accepted),
            ],
        )]);
        let lines = access_impact(&[contoso, fabrikam.clone()], &[after, fabrikam], &guests);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(lines[0].effect, Effect::Removes);
        assert!(
            lines[0].message.starts_with("blocks inbound B2B collaboration for 2 existing guest(s) of fabrikam.com"),
            "{}",
            lines[0].message
        );
        assert_eq!(lines[0].guests, ["a@fabrikam.com", "b@fabrikam.com"]);
    }

    #[test]
    fn trusting_mfa_and_mutual_direct_connect_are_grants() {
        let contoso = tenant("c", "contoso");
        let fabrikam = tenant("f", "fabrikam");
        let open = Some(ResolvedAccess::system_default().b2b_collaboration_inbound.to_setting());
        let mut c2 = contoso.clone();
        c2.partners.insert(
            "f".into(),
            CrossTenantAccessSettings {
                b2b_direct_connect_inbound: open.clone(),
                inbound_trust: Some(InboundTrust { is_mfa_accepted: Some(true), ..Default::default() }),
                ..Default::default()
            },
        );
        let mut f2 = fabrikam.clone();
        f2.partners.insert("c".into(), CrossTenantAccessSettings { b2b_direct_connect_outbound: open, ..Default::default() });
        let lines = access_impact(&[contoso, fabrikam], &[c2, f2], &BTreeMap::new());
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert!(
            messages.iter().any(|m| m.starts_with("enables B2B direct connect from fabrikam.onmicrosoft.com into contoso")),
            "{messages:#?}"
        );
        assert!(messages.iter().any(|m| m.starts_with("trusts fabrikam.onmicrosoft.com's MFA")), "{messages:#?}");
    }

    #[test]
    fn blocking_a_domain_splits_pending_from_accepted_guests() {
        let contoso = tenant("c", "contoso");
        let mut after = contoso.clone();
        after.collaboration.domain_list =
            Some(ResolvedDomainList { mode: DomainListMode::BlockList, domains: BTreeSet::from(["adatum.com".into()]) });
        let guests = BTreeMap::from([(
            "c".to_string(),
            vec![guest("p@adatum.com", RedemptionState::PendingAcceptance), guest("a@adatum.com", RedemptionState::Accepted)],
        )]);
        let lines = access_impact(&[contoso], &[after], &guests);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].message.contains("1 pending invitation(s) to adatum.com will fail at redemption"));
        assert!(lines[1].message.contains("keep signing in"));
    }

    #[test]
    fn no_change_no_impact() {
        let contoso = tenant("c", "contoso");
        assert!(access_impact(std::slice::from_ref(&contoso), std::slice::from_ref(&contoso), &BTreeMap::new()).is_empty());
    }
}
