//! Conditional access policies for external users (R18) over Graph (graph-contract 1.9):
//! `/identity/conditionalAccess/policies` (list, create, get, patch, delete). The guest condition is
//! `conditions.users.includeGuestsOrExternalUsers` / `excludeGuestsOrExternalUsers`, whose
//! `guestOrExternalUserTypes` is a flags enum sent as a comma-separated string and whose `externalTenants`
//! is polymorphic (`conditionalAccessAllExternalTenants` / `conditionalAccessEnumeratedExternalTenants`,
//! sent with `@odata.type`).
//!
//! Only the policies entente manages (by the ids of its records) or that concern guests are read: others
//! are none of entente's business. Conditions entente does not model (users, groups, roles, platforms,
//! locations…) are written empty on create and left as they are on update (PATCH sends only what entente
//! manages).
//!
//! Graph throttles these endpoints at 1 request per second per tenant, with no `Retry-After`: every call
//! here is first paced (`pace`) to one per 1.1 s per tenant and Graph endpoint, whatever the other limits.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use crate::core::conditional_access::*;
use crate::core::model::{Kind, ManagedRecord};
use crate::directory::DirectoryError;

pub(crate) const POLICIES: &str = "/identity/conditionalAccess/policies";

/// The spacing of conditional access requests to one tenant: 1 request/second, with 10 % headroom.
pub(crate) const SPACING: Duration = Duration::from_millis(1_100);

/// Reserves the next slot for a conditional access request to `key` and waits for it.
async fn pace(key: &str) {
    static NEXT: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let wait = {
        let mut next = NEXT.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let slot = next.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        next.insert(key.to_string(), slot + SPACING);
        slot.saturating_duration_since(now)
    };
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(default, rename = "@odata.nextLink")]
    next: Option<String>,
}

fn guests_to_wire(g: &GuestsOrExternalUsers) -> Value {
    let mut v = json!({ "guestOrExternalUserTypes": flags_to_string(&g.guest_or_external_user_types) });
    match g.external_tenants.as_ref().unwrap_or(&ExternalTenants::All) {
        ExternalTenants::All => {
            v["externalTenants"] =
                json!({ "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all" })
        }
        ExternalTenants::Enumerated(ids) => {
            v["externalTenants"] = json!({
                "@odata.type": "#microsoft.graph.conditionalAccessEnumeratedExternalTenants",
                "membershipKind": "enumerated",
                "members": ids,
            })
        }
    }
    v
}

pub(crate) fn guests_from_wire(v: &Value) -> Result<Option<GuestsOrExternalUsers>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let types = flags_from_string(v.get("guestOrExternalUserTypes").and_then(Value::as_str).unwrap_or_default())?;
    if types.is_empty() {
        return Ok(None);
    }
    let t = &v["externalTenants"];
    let kind = t.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
    let membership = t.get("membershipKind").and_then(Value::as_str).unwrap_or_default();
    let external_tenants = if kind.ends_with("conditionalAccessEnumeratedExternalTenants") || membership == "enumerated" {
        let ids = t.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
        ExternalTenants::Enumerated(ids.iter().filter_map(Value::as_str).map(|s| s.to_ascii_lowercase()).collect())
    } else {
        ExternalTenants::All
    };
    Ok(Some(GuestsOrExternalUsers { guest_or_external_user_types: types, external_tenants: Some(external_tenants) }))
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// A Graph policy as entente sees it: `None` when it does not concern guests or external users.
pub(crate) fn from_wire(v: &Value) -> Result<Option<ObservedConditionalAccessPolicy>, String> {
    let users = &v["conditions"]["users"];
    let Some(include) = guests_from_wire(&users["includeGuestsOrExternalUsers"])? else {
        return Ok(None);
    };
    let id = v.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let state = v.get("state").and_then(Value::as_str).unwrap_or("disabled");
    let controls = strings(&v["grantControls"]["builtInControls"]);
    let policy = ConditionalAccessPolicyConfig {
        display_name: v.get("displayName").and_then(Value::as_str).unwrap_or_default().to_string(),
        state: PolicyState::parse(state).ok_or_else(|| format!("unknown conditional access policy state {state:?}"))?,
        users: PolicyUsers {
            include_guests_or_external_users: include,
            exclude_guests_or_external_users: guests_from_wire(&users["excludeGuestsOrExternalUsers"])?,
        },
        applications: PolicyApplications {
            include_applications: strings(&v["conditions"]["applications"]["includeApplications"]),
            exclude_applications: strings(&v["conditions"]["applications"]["excludeApplications"]),
        },
        grant_controls: GrantControls {
            operator: if v["grantControls"]["operator"].as_str() == Some("AND") { GrantOperator::And } else { GrantOperator::Or },
            // Controls entente does not model (compliantDevice…) are left out of the comparison.
            built_in_controls: controls.iter().filter_map(|c| BuiltInControl::parse(c)).collect(),
        },
    };
    Ok(Some(ObservedConditionalAccessPolicy { id, policy: policy.canonical() }))
}

/// The body of a create (`full`: every condition Graph requires) or of a PATCH (what entente manages).
pub(crate) fn to_wire(p: &ConditionalAccessPolicyConfig, full: bool) -> Value {
    let users = &p.users;
    let mut u = json!({ "includeGuestsOrExternalUsers": guests_to_wire(&users.include_guests_or_external_users) });
    u["excludeGuestsOrExternalUsers"] = match &users.exclude_guests_or_external_users {
        Some(e) => guests_to_wire(e),
        None => Value::Null,
    };
    if full {
        for k in ["includeUsers", "excludeUsers", "includeGroups", "excludeGroups", "includeRoles", "excludeRoles"] {
            u[k] = json!([]);
        }
    }
    let mut conditions = json!({
        "users": u,
        "applications": {
            "includeApplications": p.applications.include_applications,
            "excludeApplications": p.applications.exclude_applications,
        },
    });
    if full {
        conditions["clientAppTypes"] = json!(["all"]);
    }
    json!({
        "displayName": p.display_name,
        "state": p.state.as_str(),
        "conditions": conditions,
        "grantControls": {
            "operator": p.grant_controls.operator.as_str(),
            "builtInControls": p.grant_controls.built_in_controls.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        },
    })
}

impl GraphDirectory {
    fn ca_key(&self) -> String {
        format!("{}|{}", self.directory_key, self.tenant_id)
    }

    async fn ca_send(&self, call: Call) -> Result<super::http::Response, DirectoryError> {
        pace(&self.ca_key()).await;
        self.http.send(&call).await
    }

    async fn ca_list(&self) -> Result<Vec<Value>, DirectoryError> {
        let mut out = Vec::new();
        let mut url = self.url(POLICIES, &[])?;
        loop {
            let cost = Cost::read(&url);
            let page: Page = self.ca_send(Call::new(Method::GET, url, cost)).await?.json()?;
            out.extend(page.value);
            match page.next {
                Some(n) => url = n.parse().map_err(|e| DirectoryError::Invalid(format!("bad @odata.nextLink {n:?}: {e}")))?,
                None => return Ok(out),
            }
        }
    }

    /// The policies entente manages (ids of `managed` records) or that concern guests. Without the
    /// permission to read them (403) the snapshot says `None`: a plan with policies then fails, naming why.
    pub(super) async fn read_conditional_access(
        &self,
        managed: &[ManagedRecord],
    ) -> Result<Option<Vec<ObservedConditionalAccessPolicy>>, DirectoryError> {
        let raw = match self.ca_list().await {
            Err(DirectoryError::Graph(g)) if g.status == 403 => {
                tracing::warn!(tenant = %self.tenant_id, "cannot read conditional access policies: {g}");
                return Ok(None);
            }
            other => other?,
        };
        let ours: BTreeSet<&str> =
            managed.iter().filter(|r| r.kind == Kind::ConditionalAccessPolicy).filter_map(|r| r.external_id.as_deref()).collect();
        let mut out = Vec::new();
        for v in &raw {
            let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
            match from_wire(v).map_err(DirectoryError::Invalid)? {
                Some(p) => out.push(p),
                // Ours, but no longer about guests (changed outside entente): shown without a guest condition.
                None if ours.contains(id) => {
                    let mut p = from_wire(&with_empty_guests(v)).map_err(DirectoryError::Invalid)?.expect("guest condition set");
                    p.policy.users.include_guests_or_external_users = GuestsOrExternalUsers::default().canonical();
                    out.push(p);
                }
                None => {}
            }
        }
        Ok(Some(out))
    }

    pub(super) async fn apply_conditional_access(&self, op: &crate::core::operation::Operation) -> Result<(), DirectoryError> {
        use crate::core::operation::Operation;
        match op {
            Operation::PutConditionalAccessPolicy { id, policy } => {
                let id = match id {
                    Some(id) => Some(id.clone()),
                    // Create tolerates existing: a policy with this display name (an earlier answer was lost).
                    None => self
                        .read_conditional_access(&[])
                        .await?
                        .unwrap_or_default()
                        .into_iter()
                        .find(|o| o.policy.display_name.eq_ignore_ascii_case(&policy.display_name))
                        .map(|o| o.id),
                };
                match id {
                    Some(id) => {
                        let url = self.url(&format!("{POLICIES}/{id}"), &[])?;
                        self.ca_send(Call::new(Method::PATCH, url, Cost::Write).json(to_wire(policy, false)).idempotent())
                            .await?
                            .ok()
                    }
                    None => {
                        let url = self.url(POLICIES, &[])?;
                        self.ca_send(Call::new(Method::POST, url, Cost::Write).json(to_wire(policy, true))).await?.ok()
                    }
                }
            }
            Operation::DeleteConditionalAccessPolicy { id } => {
                let url = self.url(&format!("{POLICIES}/{id}"), &[])?;
                let resp = self.ca_send(Call::new(Method::DELETE, url, Cost::Write).idempotent()).await?;
                if resp.is_success() || resp.status == 404 { Ok(()) } else { Err(resp.error()) }
            }
            _ => Err(DirectoryError::Invalid(format!("{} is not a conditional access operation", op.name()))),
        }
    }
}

fn with_empty_guests(v: &Value) -> Value {
    let mut v = v.clone();
    v["conditions"]["users"]["includeGuestsOrExternalUsers"] = json!({ "guestOrExternalUserTypes": "internalGuest" });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_reads_and_round_trips() {
        let sample = json!({"id": "1", "displayName": "Guests MFA", "state": "enabledForReportingButNotEnforced",
            "conditions": {"clientAppTypes": ["all"], "users": {"includeUsers": [], "excludeUsers": [],
            "includeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "internalGuest,b2bCollaborationGuest,b2bCollaborationMember",
            "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}}},
            "applications": {"includeApplications": ["All"], "excludeApplications": []}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}});
        let p = from_wire(&sample).unwrap().unwrap();
        assert_eq!(p.policy.state, PolicyState::EnabledForReportingButNotEnforced);
        assert_eq!(p.policy.users.include_guests_or_external_users.guest_or_external_user_types.len(), 3);
        assert!(p.policy.requires_mfa());
        let mut back = to_wire(&p.policy, true);
        back["id"] = json!("1");
        assert_eq!(from_wire(&back).unwrap().unwrap(), p);
        assert_eq!(
            to_wire(&p.policy, true)["conditions"]["users"]["includeGuestsOrExternalUsers"]["guestOrExternalUserTypes"],
            "internalGuest,b2bCollaborationGuest,b2bCollaborationMember"
        );
        // A policy without a guest condition is not read.
        assert!(
            from_wire(&json!({"id": "2", "displayName": "x", "state": "enabled", "conditions": {"users": {}}}))
                .unwrap()
                .is_none()
        );
    }
}
