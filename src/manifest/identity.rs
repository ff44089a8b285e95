//! `IdentityProvider` and `SignUpFlow` manifests → `DesiredIdentityProvider` / `DesiredSignUpFlow` (R17):
//! values checked, references to IdentityProvider objects resolved to provider keys. Secrets are never
//! read from a manifest: a `clientSecret` (or `password`, `certificate`) field is an error naming the
//! `…SecretRef` to use; the values are resolved later (`resolve_secrets_from_env` for the CLI, the
//! controller from Secrets).
//!
//! Two SAML/WS-Fed federations of a tenant sharing a domain are an error naming both and the domain. The
//! built-in email one-time passcode provider takes no `displayName`: Graph names it itself and cannot
//! rename it, so a name would show as a change on every plan and never be what users see.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::SecretKeySelector;
use serde_json::Value;

use super::documents::Document;
use super::error::ManifestError;
use super::mto::{FieldError, TenantIndex};
use crate::api::identity_provider::{IdentityProvider, IdentityProviderSpec};
use crate::api::sign_up_flow::{SignUpFlow, SignUpFlowSpec};
use crate::core::identity::*;
use crate::core::model::{DesiredState, DesiredTenant, Kind, ObjectRef};
use crate::core::validate;

/// Secret values written into the manifest itself: each is an error (checked on the raw document, before
/// deserializing, so the message says what to do rather than "unknown field").
pub(super) fn secrets_in_yaml(kind: &str, doc: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(spec) = doc.get("spec") else { return errors };
    let msg = |what: &str, r: &str| {
        format!(
            "a {what} must never be in a manifest: store it in a Kubernetes Secret and name it with {r} (the CLI reads it from the environment)"
        )
    };
    match kind {
        "IdentityProvider" if spec.get("clientSecret").is_some() => {
            errors.push(("spec.clientSecret".into(), msg("client secret", "clientSecretRef")));
        }
        "SignUpFlow" => {
            for (i, c) in spec.get("apiConnectors").and_then(Value::as_array).into_iter().flatten().enumerate() {
                let auth = c.get("authentication");
                if auth.and_then(|a| a.get("basic")).and_then(|b| b.get("password")).is_some() {
                    errors.push((
                        format!("spec.apiConnectors[{i}].authentication.basic.password"),
                        msg("password", "passwordSecretRef"),
                    ));
                }
                if auth.and_then(|a| a.get("certificate")).and_then(|b| b.get("pkcs12Value").or(b.get("certificate"))).is_some() {
                    errors.push((
                        format!("spec.apiConnectors[{i}].authentication.certificate"),
                        msg("certificate", "certificateSecretRef"),
                    ));
                }
            }
        }
        _ => {}
    }
    errors
}

/// `ENTENTE_IDP_SECRET_<NAMESPACE>_<NAME>` and the like: uppercase, anything else than a letter or digit
/// becomes `_`.
pub fn env_var(prefix: &str, parts: &[&str]) -> String {
    let mut v = prefix.to_string();
    for p in parts {
        v.push('_');
        v.extend(p.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    }
    v
}

fn secret(ns: &str, r: &SecretKeySelector, env_var: String, field: &str, errors: &mut Vec<FieldError>) -> DesiredSecret {
    if r.name.is_empty() {
        errors.push((format!("{field}.name"), "missing: name a Secret".into()));
    }
    if r.key.is_empty() {
        errors.push((format!("{field}.key"), "missing: name a key of the Secret".into()));
    }
    DesiredSecret { namespace: ns.to_string(), secret_name: r.name.clone(), key: r.key.clone(), env_var, value: None }
}

fn https(value: &str) -> Result<(), String> {
    validate::http_url(value)?;
    if value.starts_with("https://") { Ok(()) } else { Err(format!("{value:?} must be an https URL")) }
}

/// Checks one identity provider.
pub(super) fn identity_provider(
    object: ObjectRef,
    spec: &IdentityProviderSpec,
    tenant: &DesiredTenant,
) -> Result<DesiredIdentityProvider, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = Vec::new();
    let t = spec.provider_type;
    let mut client_secret = None;
    if t.is_social() {
        match spec.client_id.as_deref().map(str::trim) {
            None | Some("") => errors.push(("spec.clientId".into(), format!("required for a {} provider", t.as_str()))),
            Some(_) => {}
        }
        match &spec.client_secret_ref {
            None => errors.push((
                "spec.clientSecretRef".into(),
                format!("required for a {} provider: the Secret key holding the OAuth client secret", t.as_str()),
            )),
            Some(r) => {
                let env = env_var("ENTENTE_IDP_SECRET", &[&object.namespace, &object.name]);
                client_secret = Some(secret(&object.namespace, r, env, "spec.clientSecretRef", &mut errors));
            }
        }
    } else {
        if spec.client_id.is_some() {
            errors.push(("spec.clientId".into(), format!("only social providers have one, not {}", t.as_str())));
        }
        if spec.client_secret_ref.is_some() {
            errors.push(("spec.clientSecretRef".into(), format!("only social providers have one, not {}", t.as_str())));
        }
    }
    let saml_fields = !spec.domains.is_empty()
        || spec.issuer_uri.is_some()
        || spec.passive_sign_in_uri.is_some()
        || spec.metadata_exchange_uri.is_some()
        || spec.preferred_authentication_protocol.is_some()
        || spec.signing_certificate.is_some();
    let mut saml = None;
    if t == IdentityProviderType::SamlWsFed {
        let mut domains = BTreeSet::new();
        if spec.domains.is_empty() {
            errors.push(("spec.domains".into(), "a SAML/WS-Fed federation needs at least one domain".into()));
        }
        for (i, d) in spec.domains.iter().enumerate() {
            if let Err(e) = validate::domain(d) {
                errors.push((format!("spec.domains[{i}]"), e));
                continue;
            }
            let d = d.to_ascii_lowercase();
            if tenant.identity.owns_domain(&d) {
                errors.push((format!("spec.domains[{i}]"), format!("{d} is a domain of the tenant itself, not an external one")));
            }
            if !domains.insert(d.clone()) {
                errors.push((format!("spec.domains[{i}]"), format!("{d} is listed twice")));
            }
        }
        let mut required = |field: &str, v: &Option<String>, check: fn(&str) -> Result<(), String>| match v {
            None => {
                errors.push((format!("spec.{field}"), "required for a SamlWsFed provider".into()));
                String::new()
            }
            Some(v) => {
                if let Err(e) = check(v) {
                    errors.push((format!("spec.{field}"), e));
                }
                v.clone()
            }
        };
        let issuer_uri = required("issuerUri", &spec.issuer_uri, validate::http_url);
        let passive_sign_in_uri = required("passiveSignInUri", &spec.passive_sign_in_uri, https);
        let signing_certificate = required("signingCertificate", &spec.signing_certificate, |c| {
            use base64::Engine;
            let compact: String = c.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|_| ())
                .map_err(|_| "must be the base64 of the certificate (DER)".to_string())
        });
        if let Some(m) = &spec.metadata_exchange_uri
            && let Err(e) = https(m)
        {
            errors.push(("spec.metadataExchangeUri".into(), e));
        }
        saml = Some(SamlSettings {
            domains,
            issuer_uri,
            passive_sign_in_uri,
            metadata_exchange_uri: spec.metadata_exchange_uri.clone(),
            preferred_authentication_protocol: spec.preferred_authentication_protocol.unwrap_or_default(),
            signing_certificate: signing_certificate.split_whitespace().collect(),
        });
    } else if saml_fields {
        errors.push(("spec".into(), format!("domains, issuerUri, passiveSignInUri, metadataExchangeUri, preferredAuthenticationProtocol and signingCertificate are for SamlWsFed providers, not {}", t.as_str())));
    }
    if t == IdentityProviderType::EmailOneTimePasscode && spec.display_name.is_some() {
        // Refused rather than ignored: Graph shows its own fixed name ("Email One Time Passcode") and has no
        // way to change it, so a name here would never be what users see.
        errors.push((
            "spec.displayName".into(),
            "the built-in email one-time passcode provider cannot be renamed: Microsoft Graph names it itself \
             (\"Email One Time Passcode\"); remove displayName"
                .into(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let display_name = spec.display_name.clone().unwrap_or_else(|| match &saml {
        Some(s) => s.domains.iter().next().cloned().unwrap_or_default(),
        None => t.as_str().to_string(),
    });
    Ok(DesiredIdentityProvider {
        object,
        provider_type: t,
        display_name,
        client_id: spec.client_id.as_ref().map(|c| c.trim().to_string()),
        client_secret,
        saml,
        state: spec.state,
        deletion_policy: spec.deletion_policy,
    })
}

/// Checks one sign-up flow; `providers` are the tenant's valid IdentityProviders by object name (same
/// namespace).
pub(super) fn sign_up_flow(
    object: ObjectRef,
    spec: &SignUpFlowSpec,
    providers: &BTreeMap<String, &DesiredIdentityProvider>,
    all_names: &BTreeSet<String>,
) -> Result<DesiredSignUpFlow, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = Vec::new();
    let name = spec.id.clone().unwrap_or_else(|| object.name.clone());
    let bare = name.strip_prefix("B2X_1_").unwrap_or(&name);
    if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        errors.push(("spec.id".into(), format!("{name:?} must be letters, digits, '_' and '-' (Graph prefixes it with B2X_1_)")));
    }
    let mut keys = BTreeSet::new();
    let mut provider_objects = BTreeMap::new();
    if spec.email_password {
        keys.insert(BUILT_IN_EMAIL.to_string());
    }
    for (i, r) in spec.identity_providers.iter().enumerate() {
        let field = format!("spec.identityProviders[{i}].name");
        match providers.get(&r.name) {
            Some(p) if p.state == ProviderState::Disabled => errors.push((
                field,
                format!("{} is disabled: a sign-up flow may only offer enabled identity providers (R17)", p.object),
            )),
            Some(p) => {
                if !keys.insert(p.key()) {
                    errors.push((field, format!("{} is listed twice", p.object)));
                }
                provider_objects.insert(p.key(), p.object.clone());
            }
            None if all_names.contains(&r.name) => {
                errors.push((field, format!("IdentityProvider {:?} is invalid or belongs to another tenant", r.name)))
            }
            None => {
                let known: Vec<&str> = providers.keys().map(String::as_str).collect();
                errors.push((
                    field,
                    format!(
                        "no IdentityProvider {:?} in namespace {:?} for this tenant (known: {})",
                        r.name,
                        object.namespace,
                        if known.is_empty() { "none".into() } else { known.join(", ") }
                    ),
                ))
            }
        }
    }
    if keys.is_empty() {
        errors.push((
            "spec.identityProviders".into(),
            "a sign-up flow must offer at least one identity provider (or emailPassword)".into(),
        ));
    }
    let mut attributes = BTreeSet::new();
    for (i, a) in spec.user_attributes.iter().enumerate() {
        if !SIGN_UP_ATTRIBUTES.contains(&a.as_str()) {
            errors.push((
                format!("spec.userAttributes[{i}]"),
                format!("{a:?} is not a built-in user attribute; use one of {}", SIGN_UP_ATTRIBUTES.join(", ")),
            ));
        } else if !attributes.insert(a.clone()) {
            errors.push((format!("spec.userAttributes[{i}]"), format!("{a:?} is listed twice")));
        }
    }
    let mut applications = BTreeSet::new();
    for (i, a) in spec.applications.iter().enumerate() {
        match validate::guid(a) {
            Err(e) => errors.push((format!("spec.applications[{i}]"), e)),
            Ok(()) => {
                if !applications.insert(a.to_ascii_lowercase()) {
                    errors.push((format!("spec.applications[{i}]"), format!("{a} is listed twice")));
                }
            }
        }
    }
    let mut connectors = Vec::new();
    let mut steps = BTreeSet::new();
    for (i, c) in spec.api_connectors.iter().enumerate() {
        let field = format!("spec.apiConnectors[{i}]");
        if !steps.insert(c.step) {
            errors.push((format!("{field}.step"), format!("another connector already runs at {}", c.step.as_str())));
        }
        if let Err(e) = https(&c.target_url) {
            errors.push((format!("{field}.targetUrl"), e));
        }
        let env = env_var("ENTENTE_SIGNUP_SECRET", &[&object.namespace, &object.name, c.step.as_str()]);
        let auth = match (&c.authentication.basic, &c.authentication.certificate) {
            (Some(b), None) => {
                if b.username.trim().is_empty() {
                    errors.push((format!("{field}.authentication.basic.username"), "must not be empty".into()));
                }
                let s = secret(
                    &object.namespace,
                    &b.password_secret_ref,
                    env,
                    &format!("{field}.authentication.basic.passwordSecretRef"),
                    &mut errors,
                );
                Some(ConnectorAuth::Basic { username: b.username.clone(), password: s })
            }
            (None, Some(cert)) => {
                let s = secret(
                    &object.namespace,
                    &cert.certificate_secret_ref,
                    env,
                    &format!("{field}.authentication.certificate.certificateSecretRef"),
                    &mut errors,
                );
                Some(ConnectorAuth::Certificate { pkcs12: s })
            }
            _ => {
                errors.push((format!("{field}.authentication"), "give exactly one of basic and certificate".into()));
                None
            }
        };
        if let Some(auth) = auth {
            connectors.push(DesiredApiConnector {
                step: c.step,
                display_name: c.display_name.clone().unwrap_or_else(|| format!("{}-{}", object.name, c.step.as_str())),
                target_url: c.target_url.clone(),
                auth,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // In the order the steps run, as directories read them back: the manifest's order is not meaningful.
    connectors.sort_by_key(|c: &DesiredApiConnector| c.step);
    Ok(DesiredSignUpFlow {
        object,
        id: flow_id(&name),
        identity_providers: keys,
        provider_objects,
        user_attributes: attributes,
        applications,
        api_connectors: connectors,
        deletion_policy: spec.deletion_policy,
    })
}

/// Every secret the desired state names, mutable, to resolve.
pub fn secrets_mut(desired: &mut DesiredState) -> Vec<&mut DesiredSecret> {
    let mut out = Vec::new();
    for t in &mut desired.tenants {
        for p in &mut t.identity_providers {
            if let Some(s) = &mut p.client_secret {
                out.push(s);
            }
        }
        for f in &mut t.sign_up_flows {
            for c in &mut f.api_connectors {
                match &mut c.auth {
                    ConnectorAuth::Basic { password, .. } => out.push(password),
                    ConnectorAuth::Certificate { pkcs12 } => out.push(pkcs12),
                }
            }
        }
    }
    out
}

/// The CLI's secrets: each from its environment variable (`DesiredSecret::env_var`). A missing one stays
/// unresolved, and the planner says which variable to set.
pub fn resolve_secrets_from_env(desired: &mut DesiredState, key: &crate::core::identity::MarkerKey) {
    for s in secrets_mut(desired) {
        if let Ok(v) = std::env::var(&s.env_var) {
            s.value = Some(SecretValue::under(v, key.clone()));
        }
    }
}

type Seen = std::collections::HashMap<ObjectRef, (std::path::PathBuf, usize)>;

/// Adds the valid IdentityProviders, then the SignUpFlows, to their tenants. Called by `convert::build`
/// after the tenants, with every error reported against its document.
pub(super) fn build(
    providers: &[(&Document, &IdentityProvider)],
    flows: &[(&Document, &SignUpFlow)],
    seen: &mut Seen,
    tenant_index: &TenantIndex,
    desired: &mut DesiredState,
    errors: &mut Vec<ManifestError>,
) {
    let mut report = |doc: &Document, object: &ObjectRef, es: Vec<FieldError>| {
        errors.extend(es.into_iter().map(|(f, m)| doc.error(Some(object.to_string()), Some(&f), m)));
    };
    // Provider object names per tenant index, valid or not (for flow messages).
    let mut names: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut by_name: BTreeMap<usize, BTreeMap<(String, String), DesiredIdentityProvider>> = BTreeMap::new();
    for (doc, p) in providers {
        let (ns, name) = meta(&p.metadata);
        let object = ObjectRef::new(Kind::IdentityProvider, &ns, &name);
        if duplicate(seen, &object, doc, &mut report) {
            continue;
        }
        let Some(ti) = resolve(&p.spec.tenant_ref, &ns, tenant_index, doc, &object, &mut report) else { continue };
        names.entry(ti).or_default().insert(name.clone());
        let tenant = &desired.tenants[ti];
        match identity_provider(object.clone(), &p.spec, tenant) {
            Err(es) => report(doc, &object, es),
            Ok(d) => {
                let existing = by_name.entry(ti).or_default();
                let shared = |o: &DesiredIdentityProvider| match (&o.saml, &d.saml) {
                    (Some(a), Some(b)) => a.domains.intersection(&b.domains).next().cloned(),
                    _ => None,
                };
                let clash = existing.values().find(|o| o.key() == d.key() || shared(o).is_some());
                if let Some(o) = clash {
                    let field = if d.saml.is_some() { "spec.domains" } else { "spec.type" };
                    let msg = match shared(o) {
                        Some(domain) => format!(
                            "{domain} is federated by both {} and {object}: a domain belongs to one SAML/WS-Fed \
                             federation of the tenant",
                            o.object
                        ),
                        None => format!("{} is already the {} provider of this tenant", o.object, d.provider_type.as_str()),
                    };
                    report(doc, &object, vec![(field.into(), msg)]);
                    continue;
                }
                existing.insert((ns, name), d);
            }
        }
    }
    for (ti, ps) in &by_name {
        desired.tenants[*ti].identity_providers.extend(ps.values().cloned());
    }
    let mut flow_ids: BTreeMap<(usize, String), ObjectRef> = BTreeMap::new();
    for (doc, f) in flows {
        let (ns, name) = meta(&f.metadata);
        let object = ObjectRef::new(Kind::SignUpFlow, &ns, &name);
        if duplicate(seen, &object, doc, &mut report) {
            continue;
        }
        let Some(ti) = resolve(&f.spec.tenant_ref, &ns, tenant_index, doc, &object, &mut report) else { continue };
        let providers: BTreeMap<String, &DesiredIdentityProvider> =
            by_name.get(&ti).into_iter().flatten().filter(|((pns, _), _)| *pns == ns).map(|((_, n), p)| (n.clone(), p)).collect();
        let empty = BTreeSet::new();
        match sign_up_flow(object.clone(), &f.spec, &providers, names.get(&ti).unwrap_or(&empty)) {
            Err(es) => report(doc, &object, es),
            Ok(d) => {
                let key = (ti, d.id.to_ascii_lowercase());
                if let Some(other) = flow_ids.get(&key) {
                    report(
                        doc,
                        &object,
                        vec![("spec.id".into(), format!("{other} already defines flow {} in this tenant", d.id))],
                    );
                    continue;
                }
                flow_ids.insert(key, object.clone());
                desired.tenants[ti].sign_up_flows.push(d);
            }
        }
    }
}

fn meta(m: &kube::api::ObjectMeta) -> (String, String) {
    (m.namespace.clone().unwrap_or_else(|| "default".into()), m.name.clone().unwrap_or_default())
}

fn duplicate(
    seen: &mut Seen,
    object: &ObjectRef,
    doc: &Document,
    report: &mut impl FnMut(&Document, &ObjectRef, Vec<FieldError>),
) -> bool {
    if let Some((file, line)) = seen.get(object) {
        let m = format!("duplicate object: also defined at {}:{line}", file.display());
        report(doc, object, vec![("metadata.name".into(), m)]);
        return true;
    }
    seen.insert(object.clone(), (doc.file.clone(), doc.line));
    false
}

fn resolve(
    r: &crate::api::TenantRef,
    own_ns: &str,
    index: &TenantIndex,
    doc: &Document,
    object: &ObjectRef,
    report: &mut impl FnMut(&Document, &ObjectRef, Vec<FieldError>),
) -> Option<usize> {
    let mut es = Vec::new();
    if r.name.is_empty() {
        es.push(("spec.tenantRef.name".to_string(), "missing: name a Tenant".to_string()));
    } else {
        let ns = r.namespace.clone().unwrap_or_else(|| own_ns.to_string());
        match index.get(&(ns.clone(), r.name.clone())) {
            Some(i) => return Some(*i),
            None => {
                let mut known: Vec<String> = index.keys().map(|(n, t)| format!("{n}/{t}")).collect();
                known.sort();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                es.push((
                    "spec.tenantRef.name".into(),
                    format!("no Tenant {:?} in namespace {ns:?} (Tenants in the manifests: {known})", r.name),
                ));
            }
        }
    }
    report(doc, object, es);
    None
}
