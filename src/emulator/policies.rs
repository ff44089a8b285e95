//! `/policies/authorizationPolicy` (graph-contract 1.4) and, in beta, `/policies/b2bManagementPolicies`
//! (graph-contract 1.5): the tenant's external collaboration settings.
//!
//! `allowInvitesFrom`, `guestUserRoleId` and `allowEmailVerifiedUsersToJoinOrganization` are the
//! directory's own (R4, R8) and decide invitations; the other authorization-policy properties are
//! kept as written. The B2B management policy's definition holds the invitation domain list (R5) in
//! `B2BManagementPolicy.InvitationsAllowedAndBlockedDomainsPolicy` (`AllowedDomains` or
//! `BlockedDomains`, never both non-empty; `AllowedDomains: []` alone is an allow list that refuses
//! everything); its other keys are kept as written. There is at most one policy per tenant; it exists
//! once created, or whenever the tenant has a domain list. The whole policy is limited to 25 KB.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use super::store::{self, kind};
use crate::core::operation::Operation;
use crate::core::resolved::{ResolvedCollaboration, ResolvedDomainList, resolve_domain_list};
use crate::core::settings::{AllowInvitesFrom, DomainList};
use crate::directory::DirectoryError;
use crate::graph::wire::{B2bManagementPolicy, InvitationsAllowedAndBlockedDomainsPolicy};

const AUTHZ_EXTRAS: &[&str] = &[
    "displayName",
    "description",
    "allowedToSignUpEmailBasedSubscriptions",
    "allowedToUseSSPR",
    "allowUserConsentForRiskyApps",
    "blockMsolPowerShell",
    "defaultUserRolePermissions",
];
/// The whole B2B management policy may not exceed this (Entra `allow-deny-list`).
const MAX_POLICY_BYTES: usize = 25 * 1024;

fn authz_defaults() -> Map<String, Value> {
    json!({
        "displayName": "Authorization Policy",
        "description": "Used to manage authorization related settings across the company.",
        "allowedToSignUpEmailBasedSubscriptions": true,
        "allowedToUseSSPR": true,
        "allowUserConsentForRiskyApps": null,
        "blockMsolPowerShell": null,
        "defaultUserRolePermissions": {
            "allowedToCreateApps": true,
            "allowedToCreateSecurityGroups": true,
            "allowedToCreateTenants": true,
            "allowedToReadBitlockerKeysForOwnedDevice": true,
            "allowedToReadOtherUsers": true,
            "permissionGrantPoliciesAssigned": ["ManagePermissionGrantsForSelf.microsoft-user-default-legacy"],
        },
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

pub(crate) async fn get_authorization(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let (collab, extras) = ctx
        .db(move |dir| {
            let policy = dir.tenant_policy(&tenant)?;
            let extras = dir.emulator_read(|c| store::extras(c, &tenant, kind::AUTHORIZATION, "policy"))?;
            Ok((policy.collaboration, extras))
        })
        .await?;
    let mut m = Map::new();
    m.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/authorizationPolicy/$entity")));
    m.insert("id".into(), json!("authorizationPolicy"));
    let mut rest = authz_defaults();
    rest.extend(extras);
    for k in AUTHZ_EXTRAS {
        m.insert(k.to_string(), rest.get(*k).cloned().unwrap_or(Value::Null));
    }
    m.insert("allowInvitesFrom".into(), json!(collab.allow_invites_from.as_str()));
    m.insert("allowEmailVerifiedUsersToJoinOrganization".into(), json!(collab.allow_email_verified_users_to_join_organization));
    m.insert("guestUserRoleId".into(), json!(collab.guest_user_role_id));
    Ok(GraphResponse::ok(Value::Object(m)))
}

pub(crate) async fn update_authorization(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?.clone();
    let _guard = ctx.state.settings_lock.lock().await;
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let policy = dir.tenant_policy(&tenant)?;
        let mut collab: ResolvedCollaboration = policy.collaboration;
        let mut extras = Map::new();
        let invalid = |m: String| DirectoryError::Invalid(m);
        for (key, v) in &body {
            if key.contains('@') {
                continue;
            }
            match key.as_str() {
                "id" => {
                    if v.as_str() != Some("authorizationPolicy") {
                        return Err(invalid("The property 'id' cannot be changed.".into()));
                    }
                }
                "allowInvitesFrom" => {
                    collab.allow_invites_from = serde_json::from_value::<AllowInvitesFrom>(v.clone()).map_err(|_| {
                        invalid(format!(
                            "Invalid value {v} for allowInvitesFrom: none, adminsAndGuestInviters, \
                             adminsGuestInvitersAndAllMembers or everyone."
                        ))
                    })?;
                }
                "guestUserRoleId" => match v.as_str() {
                    Some(id) if uuid::Uuid::parse_str(id).is_ok() => collab.guest_user_role_id = id.to_ascii_lowercase(),
                    _ => return Err(invalid(format!("Invalid value {v} for guestUserRoleId: a role template id."))),
                },
                "allowEmailVerifiedUsersToJoinOrganization" => match v.as_bool() {
                    Some(b) => collab.allow_email_verified_users_to_join_organization = b,
                    None => return Err(invalid(format!("Invalid value {v} for allowEmailVerifiedUsersToJoinOrganization."))),
                },
                "allowedToSignUpEmailBasedSubscriptions" | "allowedToUseSSPR" => {
                    if !v.is_boolean() {
                        return Err(invalid(format!("{key} must be a boolean.")));
                    }
                    extras.insert(key.clone(), v.clone());
                }
                "allowUserConsentForRiskyApps" | "blockMsolPowerShell" => {
                    if !(v.is_boolean() || v.is_null()) {
                        return Err(invalid(format!("{key} must be a boolean or null.")));
                    }
                    extras.insert(key.clone(), v.clone());
                }
                "displayName" | "description" => {
                    if !(v.is_string() || v.is_null()) {
                        return Err(invalid(format!("{key} must be a string.")));
                    }
                    extras.insert(key.clone(), v.clone());
                }
                "defaultUserRolePermissions" => {
                    if !v.is_object() {
                        return Err(invalid("defaultUserRolePermissions must be an object.".into()));
                    }
                    extras.insert(key.clone(), v.clone());
                }
                _ => {
                    return Err(invalid(format!(
                        "Property '{key}' does not exist as a declared property or extension property."
                    )));
                }
            }
        }
        let op = Operation::ConfigureTenant { external_collaboration: collab, default_access: policy.default_access };
        dir.apply_then(&tenant, &[op], |c, _| store::merge_extras(c, &tenant, kind::AUTHORIZATION, "policy", &extras))
    })
    .await?;
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Beta: b2bManagementPolicies

/// The tenant's policy id: stable per tenant.
fn policy_id(tenant: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("entente-emulator:b2bManagementPolicy:{tenant}").as_bytes())
        .to_string()
}

fn to_domain_list(r: &ResolvedDomainList) -> DomainList {
    DomainList { mode: r.mode, domains: r.domains.iter().cloned().collect() }
}

/// The tenant's policy, if it has one: the stored object with the definition's domain list
/// replaced by the directory's current one (it may have changed through another path).
async fn load(ctx: &Ctx) -> Result<Option<Map<String, Value>>, GraphError> {
    let tenant = ctx.tenant().to_string();
    let (list, stored) = ctx
        .db(move |dir| {
            let policy = dir.tenant_policy(&tenant)?;
            let stored = dir.emulator_read(|c| {
                Ok(if store::has_extras(c, &tenant, kind::B2B_POLICY, "policy")? {
                    Some(store::extras(c, &tenant, kind::B2B_POLICY, "policy")?)
                } else {
                    None
                })
            })?;
            Ok((policy.collaboration.domain_list, stored))
        })
        .await?;
    if list.is_none() && stored.is_none() {
        return Ok(None);
    }
    let stored = stored.unwrap_or_default();
    let mut p = B2bManagementPolicy {
        id: Some(stored.get("id").and_then(Value::as_str).map_or_else(|| policy_id(ctx.tenant()), str::to_string)),
        definition: stored
            .get("definition")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        display_name: Some(stored.get("displayName").and_then(Value::as_str).unwrap_or("B2BManagementPolicy").to_string()),
        description: stored.get("description").and_then(Value::as_str).map(str::to_string),
        is_organization_default: Some(stored.get("isOrganizationDefault").and_then(Value::as_bool).unwrap_or(true)),
    };
    let domains = InvitationsAllowedAndBlockedDomainsPolicy::from_domain_list(list.as_ref().map(to_domain_list).as_ref());
    p.set_domains_policy(&domains).map_err(|e| GraphError::internal(format!("the stored policy definition: {e}")))?;
    let mut m = Map::new();
    m.insert("id".into(), json!(p.id));
    m.insert("deletedDateTime".into(), Value::Null);
    m.insert("definition".into(), json!(p.definition));
    m.insert("description".into(), json!(p.description));
    m.insert("displayName".into(), json!(p.display_name));
    m.insert("isOrganizationDefault".into(), json!(p.is_organization_default));
    Ok(Some(m))
}

/// Reads and checks a definition: the domain list it holds (R5).
fn domain_list_of(definition: &[String]) -> Result<Option<DomainList>, GraphError> {
    let p = B2bManagementPolicy { definition: definition.to_vec(), ..Default::default() };
    let domains = p.domains_policy().map_err(|e| {
        GraphError::bad_request(format!("The policy definition is not valid JSON of a B2BManagementPolicy: {e}."))
    })?;
    let Some(d) = domains else { return Ok(None) };
    let allowed = d.allowed_domains.as_ref().is_some_and(|a| !a.is_empty());
    let blocked = d.blocked_domains.as_ref().is_some_and(|b| !b.is_empty());
    if allowed && blocked {
        return Err(GraphError::bad_request(
            "InvitationsAllowedAndBlockedDomainsPolicy holds an allow list or a block list, never both (R5).",
        ));
    }
    for domain in d.allowed_domains.iter().chain(d.blocked_domains.iter()).flatten() {
        let ok = !domain.trim().is_empty() && !domain.contains('@') && !domain.contains(char::is_whitespace);
        if !ok {
            return Err(GraphError::bad_request(format!("{domain:?} is not a domain name.")));
        }
    }
    Ok(d.to_domain_list())
}

/// Validates a policy body (POST or PATCH) into the stored object's changes and, when the definition
/// is given, the domain list.
/// A policy body read: the stored object's changes, and the domain list when the definition was given.
type PolicyChanges = (Map<String, Value>, Option<Option<DomainList>>);

fn parse_body(body: &Map<String, Value>) -> Result<PolicyChanges, GraphError> {
    let mut changes = Map::new();
    let mut list = None;
    for (key, v) in body {
        if key.contains('@') {
            continue;
        }
        match key.as_str() {
            "definition" => {
                let Some(defs) = v.as_array().filter(|a| a.iter().all(Value::is_string)) else {
                    return Err(GraphError::bad_request("definition must be an array of strings."));
                };
                let defs: Vec<String> = defs.iter().filter_map(|s| s.as_str().map(str::to_string)).collect();
                if defs.iter().map(String::len).sum::<usize>() > MAX_POLICY_BYTES {
                    return Err(GraphError::bad_request(
                        "Failure to update policy due to object limit: the policy exceeds 25 KB.",
                    ));
                }
                list = Some(domain_list_of(&defs)?);
                changes.insert(key.clone(), v.clone());
            }
            "displayName" | "description" => {
                if !(v.is_string() || v.is_null()) {
                    return Err(GraphError::bad_request(format!("{key} must be a string.")));
                }
                changes.insert(key.clone(), v.clone());
            }
            "isOrganizationDefault" => {
                if !(v.is_boolean() || v.is_null()) {
                    return Err(GraphError::bad_request("isOrganizationDefault must be a boolean."));
                }
                changes.insert(key.clone(), v.clone());
            }
            "id" | "deletedDateTime" => {}
            _ => {
                return Err(GraphError::bad_request(format!(
                    "Property '{key}' does not exist as a declared property or extension property."
                )));
            }
        }
    }
    Ok((changes, list))
}

/// Writes the domain list (when `list` is `Some`) and the stored policy object in one transaction.
async fn write(ctx: &Ctx, changes: Map<String, Value>, list: Option<Option<DomainList>>, create: bool) -> Result<(), GraphError> {
    let tenant = ctx.tenant().to_string();
    let id = policy_id(&tenant);
    ctx.db(move |dir| {
        let policy = dir.tenant_policy(&tenant)?;
        let mut collab = policy.collaboration;
        if let Some(list) = &list {
            collab.domain_list = list.as_ref().and_then(resolve_domain_list);
        }
        let op = Operation::ConfigureTenant { external_collaboration: collab, default_access: policy.default_access };
        dir.apply_then(&tenant, &[op], |c, _| {
            let mut stored = store::extras(c, &tenant, kind::B2B_POLICY, "policy")?;
            if create || !stored.contains_key("id") {
                stored.insert("id".into(), json!(id));
            }
            stored.extend(changes);
            store::put_extras(c, &tenant, kind::B2B_POLICY, "policy", &stored)
        })
    })
    .await
}

pub(crate) async fn list_b2b(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let value: Vec<Value> = load(ctx).await?.into_iter().map(Value::Object).collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context(req.version, "policies/b2bManagementPolicies"),
        "value": value,
    })))
}

pub(crate) async fn get_b2b(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let mut p = load(ctx)
        .await?
        .filter(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| GraphError::not_found(id))?;
    p.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/b2bManagementPolicies/$entity")));
    Ok(GraphResponse::ok(Value::Object(p)))
}

pub(crate) async fn create_b2b(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let (changes, list) = parse_body(req.object_body()?)?;
    if !changes.contains_key("definition") {
        return Err(GraphError::bad_request("The property 'definition' is required."));
    }
    let _guard = ctx.state.settings_lock.lock().await;
    if load(ctx).await?.is_some() {
        return Err(GraphError::conflict(
            "A B2BManagementPolicy already exists for this organization (one per organization): update it with PATCH.",
        ));
    }
    write(ctx, changes, list, true).await?;
    let mut p = load(ctx).await?.ok_or_else(|| GraphError::internal("the policy was not stored"))?;
    p.insert("@odata.context".into(), json!(ctx.context(req.version, "policies/b2bManagementPolicies/$entity")));
    Ok(GraphResponse::created(Value::Object(p)))
}

pub(crate) async fn update_b2b(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let (changes, list) = parse_body(req.object_body()?)?;
    let _guard = ctx.state.settings_lock.lock().await;
    load(ctx)
        .await?
        .filter(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| GraphError::not_found(id))?;
    write(ctx, changes, list, false).await?;
    Ok(GraphResponse::no_content())
}

pub(crate) async fn delete_b2b(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let _guard = ctx.state.settings_lock.lock().await;
    load(ctx)
        .await?
        .filter(|p| p["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| GraphError::not_found(id))?;
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let policy = dir.tenant_policy(&tenant)?;
        let mut collab = policy.collaboration;
        collab.domain_list = None;
        let op = Operation::ConfigureTenant { external_collaboration: collab, default_access: policy.default_access };
        dir.apply_then(&tenant, &[op], |c, _| store::delete_extras(c, &tenant, kind::B2B_POLICY, "policy"))
    })
    .await?;
    Ok(GraphResponse::no_content())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::settings::DomainListMode;

    #[test]
    fn definitions_hold_an_allow_list_or_a_block_list() {
        let def = |s: &str| vec![s.to_string()];
        assert_eq!(
            domain_list_of(&def(r#"{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":[],"BlockedDomains":["live.com"]}}}"#)).unwrap(),
            Some(DomainList { mode: DomainListMode::BlockList, domains: vec!["live.com".into()] })
        );
        assert!(domain_list_of(&def(r#"{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":{"AllowedDomains":["a.com"],"BlockedDomains":["b.com"]}}}"#)).is_err());
        assert_eq!(domain_list_of(&def(r#"{"B2BManagementPolicy":{"Version":1}}"#)).unwrap(), None);
        assert!(domain_list_of(&def("not json")).is_err());
    }
}
