//! The planner's part for self-service sign-up (R17): each tenant's identity providers and sign-up flows.
//! A child of `plan`, so it shares its helpers (`TenantContext::compare`, `record_op`, `creation_diff`).
//!
//! Order within a tenant: providers that are created, changed or enabled come first, then the flows, then
//! providers being disabled; flows are deleted before providers (`order_orphans`). The directory refuses a
//! flow offering a missing or disabled provider, and disabling or deleting a provider a flow offers (R17),
//! so this order lets one apply move a flow off a provider and then disable or delete it.
//!
//! Secrets never appear: views hold `secret_marker`s (where the secret comes from and a salted hash). A
//! directory that cannot read secrets back (Graph) is compared with the marker last applied (the record).
//!
//! A provider is matched with its record and the directory's provider by its key (`provider_key`). A
//! federation's key is its first domain, so adding a domain that sorts before it, or removing it, changes
//! the key but not the federation: a desired federation also continues the directory's federation, and the
//! record, that shares any domain with it (`continued`). That is an update of the same federation (its id
//! kept), whose ownership record moves to the new key in the same change (`Forget` the old key, `Record` the
//! new one), and the old key is not an orphan (`desired_keys`), so it is never deleted. Two desired
//! federations sharing a domain are an error naming both and the domain. A federation split in two moves a
//! domain: updates run before creations, and a directory that cannot remove a domain (Graph) gets a plan
//! error on the new federation instead of a create that would conflict (`domain_moves`).
//!
//! The built-in email one-time passcode provider has a name Graph fixes ("Email One Time Passcode") and
//! cannot change: its view has no `displayName`, and the manifests refuse one (`manifest::identity`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::super::identity::*;
use super::*;

/// The natural keys a tenant's records may carry while the manifests want them: each provider's key, and the
/// key of a record a desired federation continues under another key (it moves, it is not an orphan).
pub(super) fn desired_keys(tenant: &DesiredTenant, snapshot: &TenantSnapshot) -> Vec<(Kind, String)> {
    let providers = tenant.identity_providers.iter().flat_map(|p| {
        let moved = continued(tenant, snapshot, p).record.map(|r| r.key.clone()).filter(|k| *k != p.key());
        std::iter::once(p.key()).chain(moved).map(|k| (Kind::IdentityProvider, k))
    });
    let flows = tenant.sign_up_flows.iter().map(|f| (Kind::SignUpFlow, f.id.clone()));
    providers.chain(flows).collect()
}

/// What a desired provider continues in the directory: its ownership record and the provider it manages.
struct Continued<'a> {
    record: Option<&'a ManagedRecord>,
    existing: Option<&'a ObservedIdentityProvider>,
}

/// The domains a federation's record was last applied with.
fn recorded_domains(r: &ManagedRecord) -> BTreeSet<String> {
    let applied: Value = serde_json::from_str(&r.applied).unwrap_or_default();
    let domains = applied.pointer("/saml/domains").and_then(Value::as_array).cloned().unwrap_or_default();
    domains.iter().filter_map(Value::as_str).map(str::to_string).collect()
}

/// The record and directory provider of `p`: by its key (the record's directory id first); for a federation
/// not found so, the directory's federation and the record that share a domain with it (the first found, in
/// key order), unless another desired provider has their key.
fn continued<'a>(tenant: &DesiredTenant, snapshot: &'a TenantSnapshot, p: &DesiredIdentityProvider) -> Continued<'a> {
    let key = p.key();
    let observed = &snapshot.identity_config.providers;
    let records = || snapshot.managed.iter().filter(|r| r.kind == Kind::IdentityProvider);
    let mut record = records().find(|r| r.key == key);
    let mut existing = record
        .and_then(|r| r.external_id.as_deref())
        .and_then(|id| observed.iter().find(|o| o.id == id))
        .or_else(|| observed.iter().find(|o| o.key == key));
    let Some(domains) = p.saml.as_ref().map(|s| &s.domains) else { return Continued { record, existing } };
    let others: BTreeSet<String> =
        tenant.identity_providers.iter().map(DesiredIdentityProvider::key).filter(|k| *k != key).collect();
    if existing.is_none() {
        let mut federations: Vec<&ObservedIdentityProvider> = observed
            .iter()
            .filter(|o| !others.contains(&o.key) && o.saml.as_ref().is_some_and(|s| !s.domains.is_disjoint(domains)))
            .collect();
        federations.sort_by(|a, b| a.key.cmp(&b.key));
        existing = federations.first().copied();
    }
    if record.is_none() {
        record = records().filter(|r| r.key.starts_with("SamlWsFed:") && !others.contains(&r.key)).find(|r| {
            existing.is_some_and(|o| r.external_id.as_deref() == Some(o.id.as_str()) || r.key == o.key)
                || !recorded_domains(r).is_disjoint(domains)
        });
    }
    Continued { record, existing }
}

/// Two desired federations of a tenant sharing a domain: the later one, naming the earlier and the domain.
fn shared_domains(tenant: &DesiredTenant) -> Vec<PlanError> {
    let federations: Vec<(&DesiredIdentityProvider, &SamlSettings)> =
        tenant.identity_providers.iter().filter_map(|p| p.saml.as_ref().map(|s| (p, s))).collect();
    let mut errors = Vec::new();
    for (i, (p, s)) in federations.iter().enumerate() {
        if let Some((o, d)) =
            federations[..i].iter().find_map(|(o, os)| os.domains.intersection(&s.domains).next().map(|d| (o, d)))
        {
            errors.push(PlanError {
                object: p.object.clone(),
                message: format!(
                    "spec.domains: {d} is federated by both {} and {}: a domain belongs to one SAML/WS-Fed federation",
                    o.object, p.object
                ),
            });
        }
    }
    errors
}

/// A new federation taking a domain from one the directory holds for another desired provider (a split:
/// `[a, b]` becoming `[a]` and `[b]`). The domain can only move if the directory can remove it from its
/// federation first; a directory that cannot (Graph v1.0) would refuse the new federation's domain, so the
/// plan says so now, naming the domain, the federation holding it and the object that keeps it.
fn domain_moves(ctx: &TenantContext<'_>, p: &DesiredIdentityProvider) -> Option<String> {
    let domains = &p.saml.as_ref()?.domains;
    if continued(ctx.tenant, ctx.snapshot, p).existing.is_some() {
        return None;
    }
    let why = ctx.snapshot.unsupported.get("identityProvider.saml.domains.remove")?;
    let (holder, domain) = ctx
        .snapshot
        .identity_config
        .providers
        .iter()
        .find_map(|o| o.saml.as_ref().and_then(|s| s.domains.intersection(domains).next()).map(|d| (o, d)))?;
    let keeper = ctx
        .tenant
        .identity_providers
        .iter()
        .find(|q| continued(ctx.tenant, ctx.snapshot, q).existing.is_some_and(|e| e.id == holder.id))
        .map_or_else(|| "no object".to_string(), |q| q.object.to_string());
    Some(format!(
        "spec.domains: {domain} is in the directory's federation {} (continued by {keeper}); moving it to a new \
         federation needs removing it there first, which this directory cannot do ({why}): delete that federation \
         first, or keep {domain} in it",
        holder.id
    ))
}

/// The identity objects of a tenant, for errors about the whole tenant.
pub(super) fn objects(tenant: &DesiredTenant) -> impl Iterator<Item = &ObjectRef> {
    tenant.identity_providers.iter().map(|p| &p.object).chain(tenant.sign_up_flows.iter().map(|f| &f.object))
}

/// Deletions of flows come before deletions of providers (a provider a flow offers cannot be deleted).
pub(super) fn order_orphans<T>(orphans: &mut [(String, ManagedRecord, T)]) {
    orphans.sort_by_key(|(_, r, _)| r.kind == Kind::IdentityProvider);
}

/// The changes of one tenant's providers and flows, in apply order; objects that cannot be planned (a
/// secret not available) go to `errors`.
pub(super) fn changes(ctx: &TenantContext<'_>, errors: &mut Vec<PlanError>) -> Vec<Change> {
    let mut before = Vec::new();
    let mut after = Vec::new();
    let clashes = shared_domains(ctx.tenant);
    for p in &ctx.tenant.identity_providers {
        if clashes.iter().any(|e| e.object == p.object) {
            continue;
        }
        if let Some(message) = domain_moves(ctx, p) {
            errors.push(PlanError { object: p.object.clone(), message });
            continue;
        }
        match provider_change(ctx, p) {
            Ok(c) => {
                let disables = p.state == ProviderState::Disabled && c.action.writes();
                if disables { after.push(c) } else { before.push(c) }
            }
            Err(message) => errors.push(PlanError { object: p.object.clone(), message }),
        }
    }
    // Updates before creations: a domain leaving one federation (on a directory that can remove it) must be
    // gone before the new federation that takes it is created.
    before.sort_by_key(|c| c.action == Action::Create);
    for f in &ctx.tenant.sign_up_flows {
        match flow_change(ctx, f) {
            Ok(c) => before.push(c),
            Err(message) => errors.push(PlanError { object: f.object.clone(), message }),
        }
    }
    errors.extend(clashes);
    before.extend(after);
    before
}

fn unavailable(field: &str, s: &DesiredSecret) -> String {
    format!(
        "{field}: the secret is not available: the CLI reads environment variable {}, the controller {} (R17 secrets \
         are never in manifests)",
        s.env_var,
        s.source()
    )
}

fn salt(tenant_id: &str, key: &str) -> String {
    format!("{tenant_id}/{key}")
}

/// The marker an observed secret hash shows as: the one last applied when the hash matches it.
fn observed_marker(hash: Option<&str>, recorded: Option<&str>) -> Option<String> {
    match (hash, recorded) {
        (Some(h), Some(r)) if r.ends_with(&format!("sha256 {h}")) => Some(r.to_string()),
        (Some(h), _) => Some(format!("set outside entente, hmac-sha256 {h}")),
        // The backend cannot read secrets back (Graph): the marker last applied stands for it.
        (None, r) => r.map(str::to_string),
    }
}

fn recorded(record: Option<&ManagedRecord>, pointer: &str) -> Option<String> {
    let applied: Value = serde_json::from_str(&record?.applied).ok()?;
    applied.pointer(pointer).and_then(Value::as_str).map(str::to_string)
}

fn provider_view(
    t: IdentityProviderType,
    display_name: &str,
    client_id: Option<&str>,
    secret: Option<&str>,
    saml: Option<&SamlSettings>,
    state: ProviderState,
    dp: Option<DeletionPolicy>,
) -> Value {
    let mut v = json!({ "type": t.as_str(), "state": state.as_str() });
    // Graph names the built-in email one-time passcode provider itself and cannot rename it.
    if t != IdentityProviderType::EmailOneTimePasscode {
        v["displayName"] = json!(display_name);
    }
    if let Some(c) = client_id {
        v["clientId"] = json!(c);
    }
    if let Some(s) = secret {
        v["clientSecret"] = json!(s);
    }
    if let Some(s) = saml {
        v["saml"] = json!(s);
    }
    if let Some(dp) = dp {
        v["deletionPolicy"] = json!(dp);
    }
    v
}

fn provider_change(ctx: &TenantContext<'_>, p: &DesiredIdentityProvider) -> Result<Change, String> {
    let tenant_id = ctx.tenant.identity.tenant_id.as_str();
    let key = p.key();
    let secret = match &p.client_secret {
        None => None,
        Some(s) => match &s.value {
            None => return Err(unavailable("spec.clientSecretRef", s)),
            Some(v) => Some((secret_marker(&s.source(), &salt(tenant_id, &key), v), secret_hash(&salt(tenant_id, &key), v), v)),
        },
    };
    let desired = provider_view(
        p.provider_type,
        &p.display_name,
        p.client_id.as_deref(),
        secret.as_ref().map(|s| s.0.as_str()),
        p.saml.as_ref(),
        p.state,
        Some(p.deletion_policy),
    );
    let Continued { record, existing } = continued(ctx.tenant, ctx.snapshot, p);
    let config = |existing_id: Option<String>| Operation::PutIdentityProvider {
        provider: IdentityProviderConfig {
            key: key.clone(),
            provider_type: p.provider_type,
            display_name: p.display_name.clone(),
            client_id: p.client_id.clone(),
            client_secret: secret.as_ref().map(|s| s.2.clone()),
            client_secret_hash: secret.as_ref().map(|s| s.1.clone()),
            saml: p.saml.clone(),
            state: p.state,
        },
        existing_id,
    };
    let mut change = match existing {
        None => {
            let ops = vec![config(None), record_op(Kind::IdentityProvider, &key, &p.object, None, p.deletion_policy, &desired)];
            let mut c = ctx.change(&p.object, Action::Create, creation_diff(&json!({}), &desired), ops);
            if record.is_some() {
                c.drift = true;
                c.note = Some("the identity provider was deleted outside entente; it is created again".into());
            }
            c
        }
        Some(o) => {
            let marker = observed_marker(o.client_secret_hash.as_deref(), recorded(record, "/clientSecret").as_deref());
            let dp = record.map(|r| r.deletion_policy).or(record.is_none().then_some(p.deletion_policy));
            let observed_view = provider_view(
                o.provider_type,
                &o.display_name,
                o.client_id.as_deref(),
                // Never compared with nothing: a secret Graph does not return and no record is "unknown".
                if secret.is_some() {
                    Some(marker.as_deref().unwrap_or("unknown: the directory never returns it"))
                } else {
                    None
                },
                o.saml.as_ref(),
                o.state,
                dp,
            );
            let id = o.id.clone();
            let record_op = record_op(Kind::IdentityProvider, &key, &p.object, Some(id.clone()), p.deletion_policy, &desired);
            ctx.compare(&p.object, record, &desired, &observed_view, || vec![config(Some(id))], record_op)
        }
    };
    if let Some(r) = record.filter(|r| r.key != key) {
        // The same federation under a new first domain: the record moves with it, in this change.
        let id = existing.map(|o| o.id.clone());
        let forget = Operation::Forget { kind: Kind::IdentityProvider, key: r.key.clone() };
        match change.ops.iter().position(|o| matches!(o, Operation::Record { .. })) {
            Some(i) => change.ops.insert(i, forget),
            None if change.action == Action::Unchanged => {
                change.action = Action::Update;
                let view = desired.clone();
                change.ops =
                    vec![forget, record_op(Kind::IdentityProvider, &key, &p.object, id.clone(), p.deletion_policy, &view)];
            }
            // Drift reported, not corrected: the record stays where it is until it is.
            None => {}
        }
        add_note(
            &mut change,
            match id {
                Some(id) => {
                    format!("the same federation ({id}, its id kept): its key moves from {} to {key} (its first domain)", r.key)
                }
                None => format!("its ownership record moves from {} to {key} (its first domain)", r.key),
            },
        );
    }
    if let (Some(want), Some(have)) = (&p.saml, existing.and_then(|o| o.saml.as_ref())) {
        let list = |ds: Vec<&String>| ds.iter().map(|d| d.as_str()).collect::<Vec<_>>().join(", ");
        let added: Vec<&String> = want.domains.difference(&have.domains).collect();
        let removed: Vec<&String> = have.domains.difference(&want.domains).collect();
        if !added.is_empty() {
            add_note(&mut change, format!("adds domain(s) {}", list(added)));
        }
        if !removed.is_empty() {
            let why = ctx.snapshot.unsupported.get("identityProvider.saml.domains.remove");
            add_note(
                &mut change,
                match why {
                    Some(why) => {
                        format!("removes domain(s) {}: {why}; applying this change fails until it is", list(removed))
                    }
                    None => format!("removes domain(s) {}", list(removed)),
                },
            );
        }
    }
    let unsupported = &ctx.snapshot.unsupported;
    if p.state == ProviderState::Disabled
        && let Some(why) = unsupported
            .get(&format!("identityProvider.state.{}", p.provider_type.as_str()))
            .or_else(|| unsupported.get("identityProvider.state"))
    {
        add_note(&mut change, format!("state disabled: {why}; applying this change fails until it is"));
    }
    Ok(change)
}

fn connector_view(c: &ApiConnectorConfig, marker: &str) -> Value {
    let mut v = json!({
        "step": c.step.as_str(),
        "displayName": c.display_name,
        "targetUrl": c.target_url,
        "authentication": c.authentication,
        "secret": marker,
    });
    if let Some(u) = &c.username {
        v["username"] = json!(u);
    }
    v
}

fn flow_view(f: &SignUpFlowConfig, connectors: Vec<Value>, dp: Option<DeletionPolicy>) -> Value {
    let mut v = json!({
        "id": f.id,
        "identityProviders": f.identity_providers,
        "userAttributes": f.user_attributes,
        "applications": f.applications,
        "apiConnectors": connectors,
    });
    if let Some(dp) = dp {
        v["deletionPolicy"] = json!(dp);
    }
    v
}

fn flow_change(ctx: &TenantContext<'_>, f: &DesiredSignUpFlow) -> Result<Change, String> {
    let tenant_id = ctx.tenant.identity.tenant_id.as_str();
    let mut connectors = Vec::new();
    let mut markers = Vec::new();
    for (i, c) in f.api_connectors.iter().enumerate() {
        let (kind, username, s) = match &c.auth {
            ConnectorAuth::Basic { username, password } => ("basic", Some(username.clone()), password),
            ConnectorAuth::Certificate { pkcs12 } => ("certificate", None, pkcs12),
        };
        let field = format!("spec.apiConnectors[{i}].authentication");
        let Some(value) = &s.value else { return Err(unavailable(&field, s)) };
        let salt = salt(tenant_id, &format!("{}/{}", f.id, c.step.as_str()));
        markers.push(secret_marker(&s.source(), &salt, value));
        connectors.push(ApiConnectorConfig {
            step: c.step,
            display_name: c.display_name.clone(),
            target_url: c.target_url.clone(),
            authentication: kind.into(),
            username,
            secret_hash: secret_hash(&salt, value),
            secret: Some(SecretValueHolder(value.clone())),
        });
    }
    let config = SignUpFlowConfig {
        id: f.id.clone(),
        identity_providers: f.identity_providers.clone(),
        user_attributes: f.user_attributes.clone(),
        applications: f.applications.clone(),
        api_connectors: connectors,
    };
    let views: Vec<Value> = config.api_connectors.iter().zip(&markers).map(|(c, m)| connector_view(c, m)).collect();
    let desired = flow_view(&config, views, Some(f.deletion_policy));
    let record = ctx.records.get(&(Kind::SignUpFlow, f.id.as_str())).copied();
    let existing = ctx.snapshot.identity_config.flows.iter().find(|o| o.id.eq_ignore_ascii_case(&f.id));
    let put = |exists: bool| Operation::PutSignUpFlow { flow: config.clone(), exists };
    let mut change = match existing {
        None => {
            let ops = vec![put(false), record_op(Kind::SignUpFlow, &f.id, &f.object, None, f.deletion_policy, &desired)];
            let mut c = ctx.change(&f.object, Action::Create, creation_diff(&json!({}), &desired), ops);
            if record.is_some() {
                c.drift = true;
                c.note = Some("the sign-up flow was deleted outside entente; it is created again".into());
            }
            c
        }
        Some(o) => {
            let views: Vec<Value> = o
                .api_connectors
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let r = recorded(record, &format!("/apiConnectors/{i}/secret"));
                    let hash = (!c.secret_hash.is_empty()).then_some(c.secret_hash.as_str());
                    connector_view(c, &observed_marker(hash, r.as_deref()).unwrap_or_default())
                })
                .collect();
            let dp = record.map(|r| r.deletion_policy).or(record.is_none().then_some(f.deletion_policy));
            // A federation whose key moves (a domain added before its first) is offered under its new key once
            // its own change is applied (same federation): not a change of the flow.
            let renamed = renamed_providers(ctx);
            let mut o = o.clone();
            o.identity_providers = o.identity_providers.iter().map(|k| renamed.get(k).unwrap_or(k).clone()).collect();
            let observed = flow_view(&o, views, dp);
            let record_op = record_op(Kind::SignUpFlow, &f.id, &f.object, Some(o.id.clone()), f.deletion_policy, &desired);
            ctx.compare(&f.object, record, &desired, &observed, || vec![put(true)], record_op)
        }
    };
    let uses = |field: &str| match field {
        "userAttributes" => !f.user_attributes.is_empty(),
        "applications" => !f.applications.is_empty(),
        "apiConnectors" => !f.api_connectors.is_empty(),
        "identityProviders" => true,
        _ => false,
    };
    for (key, why) in &ctx.snapshot.unsupported {
        if let Some(field) = key.strip_prefix("signUpFlow.")
            && uses(field)
        {
            add_note(&mut change, format!("{field}: {why}; applying a change to it fails until it is"));
        }
    }
    Ok(change)
}

/// The directory's key → the desired key, for the federations that continue under another key.
fn renamed_providers(ctx: &TenantContext<'_>) -> BTreeMap<String, String> {
    ctx.tenant
        .identity_providers
        .iter()
        .filter_map(|p| continued(ctx.tenant, ctx.snapshot, p).existing.map(|o| (o.key.clone(), p.key())))
        .filter(|(from, to)| from != to)
        .collect()
}

fn add_note(change: &mut Change, note: String) {
    change.note = Some(match change.note.take() {
        Some(n) => format!("{n}; {note}"),
        None => note,
    });
}

/// Deleting an identity object that entente owns and the manifests no longer want.
pub(super) fn prune_op(r: &ManagedRecord, snapshot: &TenantSnapshot) -> Option<(Operation, String)> {
    let state = &snapshot.identity_config;
    match r.kind {
        Kind::IdentityProvider => r
            .external_id
            .as_deref()
            .and_then(|id| state.providers.iter().find(|p| p.id == id))
            .or_else(|| state.providers.iter().find(|p| p.key == r.key))
            .map(|p| {
                (
                    Operation::DeleteIdentityProvider { key: p.key.clone(), id: p.id.clone() },
                    format!("deletes identity provider {} ({})", p.key, p.id),
                )
            }),
        Kind::SignUpFlow => state
            .flows
            .iter()
            .find(|f| f.id.eq_ignore_ascii_case(&r.key))
            .map(|f| (Operation::DeleteSignUpFlow { id: f.id.clone() }, format!("deletes sign-up flow {}", f.id))),
        _ => None,
    }
}
