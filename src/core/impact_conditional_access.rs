//! Access impact of conditional access changes (R18): for each existing guest of a tenant whose policies
//! the plan changes, whether a sign-in is newly blocked, unblocked, or asked for MFA differently.
//!
//! The policies after the plan are the ones the directory holds now with the plan's own operations applied
//! (`PutConditionalAccessPolicy`, `DeleteConditionalAccessPolicy`), so the answer is exactly what applying
//! would leave, including policies entente does not manage. Guests are judged for every application a policy
//! names and for "every other application", on the B2B collaboration channel (direct connect users have no
//! account in the resource tenant to count). Report-only policies decide nothing, as in the directory.

use std::collections::BTreeMap;

use super::{Effect, ImpactLine};
use crate::core::conditional_access::{Channel, ConditionalAccessPolicyConfig, Mfa, SignIn, decide, user_type};
use crate::core::model::GuestUser;
use crate::core::operation::Operation;
use crate::core::plan::Plan;
use crate::core::policy::{TenantPolicy, email_domain};

/// The tenant's policies before the plan, by tenant id (`None` when they could not be read: not judged).
pub type PoliciesByTenant = BTreeMap<String, Option<Vec<(String, ConditionalAccessPolicyConfig)>>>;

/// What the plan's conditional access changes do to existing guests. `before`/`after`: the tenants' settings
/// now and after the plan (for R11 trust of the guest's home MFA); `guests`: existing guests by tenant id.
pub fn conditional_access_impact(
    plan: &Plan,
    policies: &PoliciesByTenant,
    before: &[TenantPolicy],
    after: &[TenantPolicy],
    guests: &BTreeMap<String, Vec<GuestUser>>,
) -> Vec<ImpactLine> {
    let mut out = Vec::new();
    for (tenant_id, now) in policies {
        let Some(now) = now else { continue };
        let then = policies_after(plan, tenant_id, now);
        let old: Vec<ConditionalAccessPolicyConfig> = now.iter().map(|(_, p)| p.clone()).collect();
        let new: Vec<ConditionalAccessPolicyConfig> = then.into_iter().map(|(_, p)| p).collect();
        if old == new {
            continue;
        }
        let (Some(t0), Some(t1)) = (find(before, tenant_id), find(after, tenant_id)) else { continue };
        let tenant_guests = guests.get(tenant_id).map(Vec::as_slice).unwrap_or_default();
        judge(&mut out, t0, t1, &old, &new, tenant_guests, after);
    }
    out
}

fn find<'a>(tenants: &'a [TenantPolicy], id: &str) -> Option<&'a TenantPolicy> {
    tenants.iter().find(|t| t.identity.tenant_id == id)
}

/// The directory's policies with the plan's operations for `tenant_id` applied in order.
fn policies_after(
    plan: &Plan,
    tenant_id: &str,
    now: &[(String, ConditionalAccessPolicyConfig)],
) -> Vec<(String, ConditionalAccessPolicyConfig)> {
    let mut out = now.to_vec();
    let ops = plan.changes.iter().filter(|c| c.tenant_id == tenant_id).flat_map(|c| &c.ops);
    for op in ops {
        match op {
            Operation::PutConditionalAccessPolicy { id, policy } => {
                let slot = match id {
                    Some(id) => out.iter().position(|(i, _)| i == id),
                    None => out.iter().position(|(_, p)| p.display_name == policy.display_name),
                };
                match slot {
                    Some(i) => out[i].1 = policy.clone(),
                    None => out.push((id.clone().unwrap_or_default(), policy.clone())),
                }
            }
            Operation::DeleteConditionalAccessPolicy { id } => out.retain(|(i, _)| i != id),
            _ => {}
        }
    }
    out
}

/// How strict a sign-in's MFA outcome is, for the direction of a change.
fn strictness(m: Mfa) -> u8 {
    match m {
        Mfa::NotRequired => 0,
        Mfa::SatisfiedByHome => 1,
        Mfa::InResource => 2,
        Mfa::BlocksDirectConnect => 3,
    }
}

/// Every application a policy names, then `None` for every other one.
fn applications(policies: &[&ConditionalAccessPolicyConfig]) -> Vec<Option<String>> {
    let mut named: Vec<String> = policies
        .iter()
        .flat_map(|p| p.applications.include_applications.iter().chain(&p.applications.exclude_applications))
        .filter(|a| !a.eq_ignore_ascii_case("All") && !a.eq_ignore_ascii_case("None"))
        .map(|a| a.to_ascii_lowercase())
        .collect();
    named.sort();
    named.dedup();
    named.into_iter().map(Some).chain([None]).collect()
}

/// Guests with the same outcome are one line: (order of the outcome, application, counterpart, message).
type GroupKey = (u8, String, String, String);

fn judge(
    out: &mut Vec<ImpactLine>,
    t0: &TenantPolicy,
    t1: &TenantPolicy,
    old: &[ConditionalAccessPolicyConfig],
    new: &[ConditionalAccessPolicyConfig],
    guests: &[GuestUser],
    tenants: &[TenantPolicy],
) {
    let apps = applications(&old.iter().chain(new).collect::<Vec<_>>());
    let any_named = apps.len() > 1;
    let mut groups: BTreeMap<GroupKey, (Effect, Vec<String>)> = BTreeMap::new();
    for g in guests {
        let domain = email_domain(&g.mail).to_ascii_lowercase();
        let home = tenants.iter().find(|t| t.identity.owns_domain(&domain));
        let home_id = home.map(|h| h.identity.tenant_id.as_str());
        let counterpart = home.map_or_else(|| domain.clone(), |h| h.name().to_string());
        let trust = |t: &TenantPolicy| t.effective_for(home_id.unwrap_or_default()).inbound_trust.is_mfa_accepted;
        for app in &apps {
            // An id no policy names stands for "every other application".
            let app_id = app.as_deref().unwrap_or("00000000-0000-0000-0000-000000000000");
            let sign_in = |accepted| SignIn {
                user_type: user_type(Channel::Collaboration, Some(g.user_type)),
                home_tenant_id: home_id,
                app: app_id,
                channel: Channel::Collaboration,
                home_mfa_accepted: accepted,
            };
            let d0 = decide(old, &sign_in(trust(t0)));
            let d1 = decide(new, &sign_in(trust(t1)));
            let label = match app {
                Some(a) => format!("application {a}"),
                None if any_named => "every other application".to_string(),
                None => "every application".to_string(),
            };
            let (order, effect, kind) = match (&d0.blocked_by, &d1.blocked_by) {
                (None, Some(p)) => {
                    (0, Effect::Removes, format!("blocks sign-in to {label} by conditional access policy \"{p}\""))
                }
                (Some(p), None) => (1, Effect::Grants, format!("no longer blocks sign-in to {label} (policy \"{p}\")")),
                (Some(_), Some(_)) => continue,
                (None, None) if d0.mfa == d1.mfa => continue,
                (None, None) => {
                    let stricter = strictness(d1.mfa) > strictness(d0.mfa);
                    let effect = if stricter { Effect::Removes } else { Effect::Grants };
                    (2, effect, format!("changes MFA for sign-in to {label}: {} → {}", d0.mfa, d1.mfa))
                }
            };
            groups.entry((order, label.clone(), counterpart.clone(), kind)).or_insert((effect, vec![])).1.push(g.mail.clone());
        }
    }
    for ((_, _, counterpart, kind), (effect, mails)) in groups {
        let message = format!("{kind} for {} existing guest(s) of {counterpart} (R18)", mails.len());
        out.push(ImpactLine { tenant: t1.name().to_string(), counterpart, effect, message, guests: mails });
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::core::conditional_access::{
        BuiltInControl, GrantControls, GrantOperator, GuestOrExternalUserType, GuestsOrExternalUsers, PolicyApplications,
        PolicyState, PolicyUsers,
    };
    use crate::core::model::{Cloud, TenantIdentity, UserType};
    use crate::core::plan::{Action, Change};
    use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration};

    fn tenant(id: &str, name: &str, mfa_trusted: bool) -> TenantPolicy {
        let mut default_access = ResolvedAccess::system_default();
        default_access.inbound_trust.is_mfa_accepted = mfa_trusted;
        TenantPolicy {
            identity: TenantIdentity {
                tenant_id: id.into(),
                initial_domain: format!("{name}.onmicrosoft.com"),
                display_name: name.into(),
                cloud: Cloud::Global,
                verified_domains: BTreeSet::from([format!("{name}.com")]),
            },
            collaboration: ResolvedCollaboration::default(),
            default_access,
            partners: BTreeMap::new(),
            allowed_clouds: BTreeSet::new(),
        }
    }

    fn guest(mail: &str) -> GuestUser {
        GuestUser {
            id: mail.into(),
            mail: mail.into(),
            display_name: None,
            user_principal_name: mail.into(),
            user_type: UserType::Guest,
            creation_type: Some("Invitation".into()),
            external_user_state: None,
            external_user_state_change_date_time: None,
            account_enabled: true,
            group_ids: BTreeSet::new(),
        }
    }

    fn policy(name: &str, state: PolicyState, app: &str, control: BuiltInControl) -> ConditionalAccessPolicyConfig {
        ConditionalAccessPolicyConfig {
            display_name: name.into(),
            state,
            users: PolicyUsers {
                include_guests_or_external_users: GuestsOrExternalUsers {
                    guest_or_external_user_types: BTreeSet::from([GuestOrExternalUserType::B2bCollaborationGuest]),
                    external_tenants: None,
                },
                exclude_guests_or_external_users: None,
            },
            applications: PolicyApplications { include_applications: BTreeSet::from([app.into()]), ..Default::default() },
            grant_controls: GrantControls { operator: GrantOperator::Or, built_in_controls: BTreeSet::from([control]) },
        }
        .canonical()
    }

    fn plan_with(tenant_id: &str, ops: Vec<Operation>) -> Plan {
        let change = Change {
            object: crate::core::model::ObjectRef::new(crate::core::model::Kind::ConditionalAccessPolicy, "default", "p"),
            tenant_id: tenant_id.into(),
            action: Action::Create,
            drift: false,
            diff: vec![],
            refusal: None,
            note: None,
            subject: None,
            ops,
        };
        Plan { changes: vec![change], errors: vec![], notes: vec![] }
    }

    fn run(plan: &Plan, now: Vec<(String, ConditionalAccessPolicyConfig)>, trusted_after: bool) -> Vec<ImpactLine> {
        let before = vec![tenant("r", "contoso", false), tenant("h", "fabrikam", false)];
        let after = vec![tenant("r", "contoso", trusted_after), tenant("h", "fabrikam", false)];
        let guests = BTreeMap::from([(
            "r".to_string(),
            vec![guest("ann@fabrikam.com"), guest("bob@fabrikam.com"), guest("cy@elsewhere.org")],
        )]);
        let policies = BTreeMap::from([("r".to_string(), Some(now))]);
        conditional_access_impact(plan, &policies, &before, &after, &guests)
    }

    #[test]
    fn a_new_blocking_policy_blocks_existing_guests_grouped_by_home() {
        let block = policy("Block guests from HR", PolicyState::Enabled, "app-hr", BuiltInControl::Block);
        let plan = plan_with("r", vec![Operation::PutConditionalAccessPolicy { id: None, policy: block }]);
        let lines = run(&plan, vec![], false);
        let msgs: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "blocks sign-in to application app-hr by conditional access policy \"Block guests from HR\" for 1 existing guest(s) of elsewhere.org (R18)",
                "blocks sign-in to application app-hr by conditional access policy \"Block guests from HR\" for 2 existing guest(s) of fabrikam.onmicrosoft.com (R18)",
            ],
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| l.effect == Effect::Removes && l.tenant == "contoso.onmicrosoft.com"));
        assert_eq!(lines[1].guests, ["ann@fabrikam.com", "bob@fabrikam.com"]);
    }

    #[test]
    fn report_only_and_unchanged_policies_have_no_impact() {
        let block = policy("Block", PolicyState::EnabledForReportingButNotEnforced, "All", BuiltInControl::Block);
        let plan = plan_with("r", vec![Operation::PutConditionalAccessPolicy { id: None, policy: block.clone() }]);
        assert_eq!(run(&plan, vec![], false), []);
        let same = plan_with("r", vec![Operation::PutConditionalAccessPolicy { id: Some("1".into()), policy: block.clone() }]);
        assert_eq!(run(&same, vec![("1".into(), block)], false), []);
    }

    #[test]
    fn deleting_a_block_grants_and_mfa_direction_follows_trust() {
        let block = policy("Block", PolicyState::Enabled, "All", BuiltInControl::Block);
        let plan = plan_with("r", vec![Operation::DeleteConditionalAccessPolicy { id: "1".into() }]);
        let lines = run(&plan, vec![("1".into(), block)], false);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines
                .iter()
                .all(|l| l.effect == Effect::Grants && l.message.starts_with("no longer blocks sign-in to every application"))
        );

        // A new MFA policy: guests of fabrikam are prompted in the resource tenant (their MFA is not trusted).
        let mfa = policy("MFA", PolicyState::Enabled, "All", BuiltInControl::Mfa);
        let plan = plan_with("r", vec![Operation::PutConditionalAccessPolicy { id: None, policy: mfa }]);
        let lines = run(&plan, vec![], false);
        assert!(lines.iter().all(|l| l.effect == Effect::Removes), "{lines:#?}");
        assert!(lines[0].message.contains("no policy requires MFA → MFA required, done in the resource tenant"), "{lines:#?}");
    }
}
