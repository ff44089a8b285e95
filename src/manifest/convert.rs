//! Typed manifests → validated desired state. Every problem is collected (not just the first), each
//! naming the file, the object and the field.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::documents::Document;
use super::error::ManifestError;
use crate::api::guest_invitation::DEFAULT_REDIRECT_URL;
use crate::api::sync_job::PROVISION_ON_DEMAND_ANNOTATION;
use crate::api::tenant::{Backend, BackendKind};
use crate::api::{API_VERSION, CrossTenantAccessPolicy, GuestInvitation, MultiTenantOrganization, SyncJob, Tenant, TenantRef};
use crate::api::{AccessPackage, ConnectedOrganization};
use crate::api::{ConditionalAccessPolicy, IdentityProvider, SignUpFlow};
use crate::core::model::*;
use crate::core::resolved::{ResolvedAccess, ResolvedCollaboration};
use crate::core::settings::*;
use crate::core::sync::{
    AttributeMapping, DEFAULT_INTERVAL, DEFAULT_MAPPED, DesiredSyncJob, FilterOperator, SOURCE_ONLY_ATTRIBUTES,
    SYNCABLE_ATTRIBUTES,
};
use crate::core::validate;

/// The manifests, validated: the desired state and, per tenant id, which backend holds the tenant.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub desired: DesiredState,
    pub backends: BTreeMap<String, Backend>,
    /// What was read and left out as another tool's (a ConfigMap, a kustomization file…), one entry each.
    pub skipped: Vec<String>,
    /// The file each Tenant came from (branding image paths are relative to it); empty for live objects.
    pub tenant_files: BTreeMap<ObjectRef, std::path::PathBuf>,
}

enum Typed {
    Tenant(Box<Tenant>),
    Policy(Box<CrossTenantAccessPolicy>),
    Invitation(Box<GuestInvitation>),
    SyncJob(Box<SyncJob>),
    Mto(Box<MultiTenantOrganization>),
    ConnectedOrganization(Box<ConnectedOrganization>),
    AccessPackage(Box<AccessPackage>),
    IdentityProvider(Box<IdentityProvider>),
    SignUpFlow(Box<SignUpFlow>),
    ConditionalAccessPolicy(Box<ConditionalAccessPolicy>),
}

/// Collects errors for one document and object.
struct Ctx<'a> {
    doc: &'a Document,
    object: Option<String>,
    errors: &'a mut Vec<ManifestError>,
}

impl Ctx<'_> {
    fn err(&mut self, field: &str, message: impl Into<String>) {
        let e = self.doc.error(self.object.clone(), Some(field), message);
        self.errors.push(e);
    }
    fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(m) = result {
            self.err(field, m);
        }
    }
}

const TOP_LEVEL: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];
const KINDS: &str = "Tenant, CrossTenantAccessPolicy, GuestInvitation, SyncJob, MultiTenantOrganization, ConnectedOrganization, AccessPackage, IdentityProvider, SignUpFlow, ConditionalAccessPolicy";

/// Turns documents into the desired state, or every error found.
pub fn convert(docs: &[Document]) -> Result<Manifests, Vec<ManifestError>> {
    let mut errors = Vec::new();
    let mut typed = Vec::new();
    for doc in docs {
        if let Some(t) = type_document(doc, &mut errors) {
            typed.push((doc, t));
        }
    }
    let manifests = build(&typed, &mut errors);
    if errors.is_empty() { Ok(manifests) } else { Err(errors) }
}

/// Live objects (read from a cluster) → the desired state of the valid ones, plus every error found.
/// The controller validates through this, the CLI through `convert`: both run the same checks (`build`).
/// Objects come already typed, so the document checks (apiVersion, kind, unknown fields) are the API
/// server's; each error's `object` is `Kind/namespace/name` and its `file` is that same name, line 0.
/// Invalid objects are left out of the returned state; the valid ones are kept.
pub fn convert_objects(
    tenants: &[Tenant],
    policies: &[CrossTenantAccessPolicy],
    invitations: &[GuestInvitation],
) -> (Manifests, Vec<ManifestError>) {
    convert_live(&Live {
        tenants: tenants.to_vec(),
        policies: policies.to_vec(),
        invitations: invitations.to_vec(),
        ..Live::default()
    })
}

/// Live objects of every kind, as read from a cluster.
#[derive(Clone, Debug, Default)]
pub struct Live {
    pub tenants: Vec<Tenant>,
    pub policies: Vec<CrossTenantAccessPolicy>,
    pub invitations: Vec<GuestInvitation>,
    pub sync_jobs: Vec<SyncJob>,
    pub multi_tenant_organizations: Vec<MultiTenantOrganization>,
    pub connected_organizations: Vec<ConnectedOrganization>,
    pub access_packages: Vec<AccessPackage>,
    pub identity_providers: Vec<IdentityProvider>,
    pub sign_up_flows: Vec<SignUpFlow>,
    pub conditional_access_policies: Vec<ConditionalAccessPolicy>,
}

/// `convert_objects` for every kind.
pub fn convert_live(live: &Live) -> (Manifests, Vec<ManifestError>) {
    let Live {
        tenants,
        policies,
        invitations,
        sync_jobs,
        multi_tenant_organizations,
        connected_organizations,
        access_packages,
        identity_providers,
        sign_up_flows,
        conditional_access_policies,
    } = live;
    let doc = |kind: Kind, m: &kube::api::ObjectMeta| {
        let (ns, name) = meta(m);
        Document {
            file: std::path::PathBuf::from(ObjectRef::new(kind, ns, name).to_string()),
            line: 0,
            text: String::new(),
            value: Value::Null,
        }
    };
    let docs: Vec<Document> = (tenants.iter().map(|t| doc(Kind::Tenant, &t.metadata)))
        .chain(policies.iter().map(|p| doc(Kind::CrossTenantAccessPolicy, &p.metadata)))
        .chain(invitations.iter().map(|i| doc(Kind::GuestInvitation, &i.metadata)))
        .chain(sync_jobs.iter().map(|j| doc(Kind::SyncJob, &j.metadata)))
        .chain(multi_tenant_organizations.iter().map(|m| doc(Kind::MultiTenantOrganization, &m.metadata)))
        .chain(connected_organizations.iter().map(|o| doc(Kind::ConnectedOrganization, &o.metadata)))
        .chain(access_packages.iter().map(|p| doc(Kind::AccessPackage, &p.metadata)))
        .chain(identity_providers.iter().map(|p| doc(Kind::IdentityProvider, &p.metadata)))
        .chain(sign_up_flows.iter().map(|f| doc(Kind::SignUpFlow, &f.metadata)))
        .chain(conditional_access_policies.iter().map(|p| doc(Kind::ConditionalAccessPolicy, &p.metadata)))
        .collect();
    let objects = (tenants.iter().map(|t| Typed::Tenant(Box::new(t.clone()))))
        .chain(policies.iter().map(|p| Typed::Policy(Box::new(p.clone()))))
        .chain(invitations.iter().map(|i| Typed::Invitation(Box::new(i.clone()))))
        .chain(sync_jobs.iter().map(|j| Typed::SyncJob(Box::new(j.clone()))))
        .chain(multi_tenant_organizations.iter().map(|m| Typed::Mto(Box::new(m.clone()))))
        .chain(connected_organizations.iter().map(|o| Typed::ConnectedOrganization(Box::new(o.clone()))))
        .chain(access_packages.iter().map(|p| Typed::AccessPackage(Box::new(p.clone()))))
        .chain(identity_providers.iter().map(|p| Typed::IdentityProvider(Box::new(p.clone()))))
        .chain(sign_up_flows.iter().map(|f| Typed::SignUpFlow(Box::new(f.clone()))))
        .chain(conditional_access_policies.iter().map(|p| Typed::ConditionalAccessPolicy(Box::new(p.clone()))));
    let typed: Vec<(&Document, Typed)> = docs.iter().zip(objects).collect();
    let mut errors = Vec::new();
    let manifests = build(&typed, &mut errors);
    (manifests, errors)
}

fn type_document(doc: &Document, errors: &mut Vec<ManifestError>) -> Option<Typed> {
    let mut ctx = Ctx { doc, object: None, errors };
    let Value::Object(map) = &doc.value else {
        ctx.err("", "a manifest must be a mapping with apiVersion, kind, metadata and spec");
        return None;
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str);
    // A value of the wrong type is named as such, not as missing.
    let mistyped = |v: Option<&Value>| v.filter(|v| !v.is_string() && !v.is_null()).map(|v| v.to_string());
    let namespace = map.get("metadata").and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("default");
    ctx.object = Some(format!("{}/{namespace}/{}", if kind.is_empty() { "?" } else { kind }, name.unwrap_or("?")));
    let mut ok = true;
    match map.get("apiVersion").and_then(Value::as_str) {
        _ if mistyped(map.get("apiVersion")).is_some() => {
            ctx.err(
                "apiVersion",
                format!("must be the string {API_VERSION:?}, not {}", mistyped(map.get("apiVersion")).unwrap_or_default()),
            );
            ok = false;
        }
        Some(API_VERSION) => {}
        Some(other) => {
            ctx.err("apiVersion", format!("unsupported apiVersion {other:?}; expected {API_VERSION:?}"));
            ok = false;
        }
        None => {
            ctx.err("apiVersion", format!("missing; expected {API_VERSION:?}"));
            ok = false;
        }
    }
    if Kind::parse(kind).is_none() {
        let m = if let Some(found) = mistyped(map.get("kind")) {
            format!("must be a string, one of {KINDS}; found {found}")
        } else if kind.is_empty() {
            format!("missing; expected one of {KINDS}")
        } else {
            format!("unknown kind {kind:?}; expected one of {KINDS}")
        };
        ctx.err("kind", m);
        ok = false;
    }
    for key in map.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        ctx.err(key, format!("unknown field {key:?}; expected one of {}", TOP_LEVEL.join(", ")));
        ok = false;
    }
    match name {
        None if mistyped(map.get("metadata").and_then(|m| m.get("name"))).is_some() => {
            let found = mistyped(map.get("metadata").and_then(|m| m.get("name"))).unwrap_or_default();
            ctx.err("metadata.name", format!("must be a string, not {found} (quote it: name: \"{found}\")"));
            ok = false;
        }
        None => {
            ctx.err("metadata.name", "missing");
            ok = false;
        }
        Some(n) => ctx.check("metadata.name", validate::object_name(n)),
    }
    for (field, message) in super::identity::secrets_in_yaml(kind, &doc.value) {
        ctx.err(&field, message);
        ok = false;
    }
    if !ok {
        return None;
    }
    // The CRD's schema first: what `kubectl apply` would refuse is refused here, with the same reason.
    let against_schema = super::schema_check::check(Kind::parse(kind)?, &doc.value);
    if !against_schema.is_empty() {
        for (field, message) in against_schema {
            ctx.err(&field, message);
        }
        return None;
    }
    match Kind::parse(kind)? {
        Kind::Tenant => deserialize::<Tenant>(&mut ctx).map(|t| Typed::Tenant(Box::new(t))),
        Kind::CrossTenantAccessPolicy => deserialize::<CrossTenantAccessPolicy>(&mut ctx).map(|p| Typed::Policy(Box::new(p))),
        Kind::GuestInvitation => deserialize::<GuestInvitation>(&mut ctx).map(|i| Typed::Invitation(Box::new(i))),
        Kind::SyncJob => deserialize::<SyncJob>(&mut ctx).map(|j| Typed::SyncJob(Box::new(j))),
        Kind::MultiTenantOrganization => deserialize::<MultiTenantOrganization>(&mut ctx).map(|m| Typed::Mto(Box::new(m))),
        Kind::ConnectedOrganization => {
            deserialize::<ConnectedOrganization>(&mut ctx).map(|o| Typed::ConnectedOrganization(Box::new(o)))
        }
        Kind::AccessPackage => deserialize::<AccessPackage>(&mut ctx).map(|p| Typed::AccessPackage(Box::new(p))),
        Kind::IdentityProvider => deserialize::<IdentityProvider>(&mut ctx).map(|p| Typed::IdentityProvider(Box::new(p))),
        Kind::SignUpFlow => deserialize::<SignUpFlow>(&mut ctx).map(|f| Typed::SignUpFlow(Box::new(f))),
        Kind::ConditionalAccessPolicy => {
            deserialize::<ConditionalAccessPolicy>(&mut ctx).map(|p| Typed::ConditionalAccessPolicy(Box::new(p)))
        }
    }
}

fn deserialize<T: DeserializeOwned>(ctx: &mut Ctx<'_>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(ctx.doc.value.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ctx.err(&path, without_secret(&path, e.inner().to_string()));
            None
        }
    }
}

/// serde's message with the value it quotes hidden when the field holds or names a secret: a secret
/// pasted where a reference belongs (`clientSecretRef: GOCSPX-…`) must not be printed back.
fn without_secret(path: &str, message: String) -> String {
    if !super::schema_check::holds_secret(path) {
        return message;
    }
    static QUOTED: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r#"(string|variant|value) (?:"(?:[^"\\]|\\.)*"|`[^`]*`)"#).unwrap());
    QUOTED.replace_all(&message, "$1 (value hidden: this field holds a secret)").into_owned()
}

fn meta(m: &kube::api::ObjectMeta) -> (String, String) {
    (m.namespace.clone().unwrap_or_else(|| "default".into()), m.name.clone().unwrap_or_default())
}

/// Every `tenantRef` naming another namespace must be admitted by that Tenant's
/// `spec.allowedNamespaces`, as the controller requires: the same manifests mean the same on both.
fn check_cross_namespace_refs(typed: &[(&Document, Typed)], errors: &mut Vec<ManifestError>) {
    let allowed: HashMap<(String, String), &Tenant> = typed
        .iter()
        .filter_map(|(_, t)| match t {
            Typed::Tenant(t) => Some((meta(&t.metadata), t.as_ref())),
            _ => None,
        })
        .collect();
    for (doc, t) in typed {
        if matches!(t, Typed::Tenant(_)) {
            continue;
        }
        let own_ns = doc.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("default");
        let mut refs = Vec::new();
        tenant_refs(doc.value.get("spec").unwrap_or(&Value::Null), "spec", &mut refs);
        for (path, name, ns) in refs.into_iter().filter(|(_, _, ns)| ns != own_ns) {
            let Some(tenant) = allowed.get(&(ns.clone(), name.clone())) else { continue };
            if !tenant.spec.allows_namespace(&ns, own_ns) {
                let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("?");
                let object = doc.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
                errors.push(doc.error(
                    Some(format!("{kind}/{own_ns}/{object}")),
                    Some(&format!("{path}.namespace")),
                    format!(
                        "Tenant {ns}/{name} does not admit objects of namespace {own_ns:?}: add it to the Tenant's \
                         spec.allowedNamespaces (now {:?})",
                        tenant.spec.allowed_namespaces
                    ),
                ));
            }
        }
    }
}

/// (path, name, namespace) of every `tenantRef` with a namespace under `v`.
fn tenant_refs(v: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let here = format!("{path}.{k}");
                if k == "tenantRef"
                    && let (Some(name), Some(ns)) =
                        (child.get("name").and_then(Value::as_str), child.get("namespace").and_then(Value::as_str))
                {
                    out.push((here.clone(), name.to_string(), ns.to_string()));
                }
                tenant_refs(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                tenant_refs(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn build(typed: &[(&Document, Typed)], errors: &mut Vec<ManifestError>) -> Manifests {
    check_cross_namespace_refs(typed, errors);
    let mut out = Manifests::default();
    let mut seen: HashMap<ObjectRef, (std::path::PathBuf, usize)> = HashMap::new();
    let mut tenant_index: HashMap<(String, String), usize> = HashMap::new();
    let mut tenant_ids: HashMap<String, String> = HashMap::new();
    let mut domains: HashMap<String, String> = HashMap::new();

    // Tenants first: other kinds refer to them.
    for (doc, t) in typed {
        let Typed::Tenant(t) = t else { continue };
        let (ns, name) = meta(&t.metadata);
        let object = ObjectRef::new(Kind::Tenant, &ns, &name);
        if duplicate(&mut seen, &object, doc, errors) {
            continue;
        }
        let mut ctx = Ctx { doc, object: Some(object.to_string()), errors };
        if let Some(tenant) = tenant(&mut ctx, object.clone(), t, &mut tenant_ids, &mut domains) {
            tenant_index.insert((ns, name), out.desired.tenants.len());
            out.backends.insert(tenant.identity.tenant_id.clone(), t.spec.backend.clone());
            out.desired.tenants.push(tenant);
        }
    }

    let mut partner_keys: HashMap<(String, String), String> = HashMap::new();
    let mut invitation_keys: HashMap<(String, String), String> = HashMap::new();
    let mut sync_keys: HashMap<(String, String), String> = HashMap::new();
    for (doc, t) in typed {
        match t {
            Typed::Tenant(_) | Typed::Mto(_) | Typed::ConnectedOrganization(_) | Typed::AccessPackage(_) => {}
            Typed::IdentityProvider(_) | Typed::SignUpFlow(_) | Typed::ConditionalAccessPolicy(_) => {}
            Typed::Policy(p) => {
                let (ns, name) = meta(&p.metadata);
                let object = ObjectRef::new(Kind::CrossTenantAccessPolicy, &ns, &name);
                if duplicate(&mut seen, &object, doc, errors) {
                    continue;
                }
                let mut ctx = Ctx { doc, object: Some(object.to_string()), errors };
                let Some(ti) = resolve_ref(&mut ctx, &p.spec.tenant_ref, &ns, &tenant_index) else { continue };
                let tenant = &mut out.desired.tenants[ti];
                if let Some(partner) = policy(&mut ctx, object.clone(), p, tenant) {
                    let key = (tenant.identity.tenant_id.clone(), partner.partner_tenant_id.clone());
                    if let Some(other) = partner_keys.get(&key) {
                        ctx.err("spec.partnerTenantId", format!("{other} already configures partner {} for this tenant", key.1));
                        continue;
                    }
                    partner_keys.insert(key, object.to_string());
                    tenant.partners.push(partner);
                }
            }
            Typed::Invitation(i) => {
                let (ns, name) = meta(&i.metadata);
                let object = ObjectRef::new(Kind::GuestInvitation, &ns, &name);
                if duplicate(&mut seen, &object, doc, errors) {
                    continue;
                }
                let mut ctx = Ctx { doc, object: Some(object.to_string()), errors };
                let Some(ti) = resolve_ref(&mut ctx, &i.spec.tenant_ref, &ns, &tenant_index) else { continue };
                let tenant = &mut out.desired.tenants[ti];
                if let Some(inv) = invitation(&mut ctx, object.clone(), i, tenant) {
                    let key = (tenant.identity.tenant_id.clone(), inv.key());
                    if let Some(other) = invitation_keys.get(&key) {
                        ctx.err(
                            "spec.invitedUserEmailAddress",
                            format!("{other} already invites {} into this tenant", inv.email),
                        );
                        continue;
                    }
                    invitation_keys.insert(key, object.to_string());
                    tenant.invitations.push(inv);
                }
            }
            Typed::SyncJob(j) => {
                let (ns, name) = meta(&j.metadata);
                let object = ObjectRef::new(Kind::SyncJob, &ns, &name);
                if duplicate(&mut seen, &object, doc, errors) {
                    continue;
                }
                let mut ctx = Ctx { doc, object: Some(object.to_string()), errors };
                let Some(si) = resolve_ref(&mut ctx, &j.spec.tenant_ref, &ns, &tenant_index) else { continue };
                let source = out.desired.tenants[si].identity.tenant_id.clone();
                let target = match (&j.spec.target.tenant_ref, &j.spec.target.tenant_id) {
                    (Some(r), None) => resolve_ref_at(&mut ctx, "spec.target.tenantRef.name", r, &ns, &tenant_index)
                        .map(|i| out.desired.tenants[i].identity.tenant_id.clone()),
                    (None, Some(id)) => {
                        let id = id.to_ascii_lowercase();
                        if out.desired.tenants.iter().any(|t| t.identity.tenant_id == id) {
                            Some(id)
                        } else {
                            ctx.err(
                                "spec.target.tenantId",
                                format!("no Tenant in the manifests has tenant id {id}: entente writes to the target, so it must manage it"),
                            );
                            None
                        }
                    }
                    _ => {
                        ctx.err("spec.target", "give exactly one of tenantRef and tenantId");
                        None
                    }
                };
                let Some(target) = target else { continue };
                if let Some(job) = sync_job(&mut ctx, object.clone(), j, source, target) {
                    let key = (job.source_tenant_id.clone(), job.target_tenant_id.clone());
                    if let Some(other) = sync_keys.get(&key) {
                        ctx.err("spec.target", format!("{other} already synchronizes {} into {}", key.0, key.1));
                        continue;
                    }
                    sync_keys.insert(key, object.to_string());
                    out.desired.sync_jobs.push(job);
                }
            }
        }
    }
    multi_tenant_organizations(typed, &mut seen, &tenant_index, &mut out, errors);
    entitlement::build(typed, &mut seen, &tenant_index, &mut out, errors);
    let providers: Vec<_> = typed
        .iter()
        .filter_map(|(d, t)| if let Typed::IdentityProvider(p) = t { Some((*d, p.as_ref())) } else { None })
        .collect();
    let flows: Vec<_> =
        typed.iter().filter_map(|(d, t)| if let Typed::SignUpFlow(f) = t { Some((*d, f.as_ref())) } else { None }).collect();
    super::identity::build(&providers, &flows, &mut seen, &tenant_index, &mut out.desired, errors);
    let ca_policies: Vec<_> = typed
        .iter()
        .filter_map(|(d, t)| if let Typed::ConditionalAccessPolicy(p) = t { Some((*d, p.as_ref())) } else { None })
        .collect();
    super::conditional_access::build(&ca_policies, &mut seen, &tenant_index, &mut out.desired, errors);
    out
}

/// Multi-tenant organizations come last: they expand into partner configurations and sync jobs beside
/// the other objects', and a pair configured twice is an error naming both (`super::mto`).
fn multi_tenant_organizations(
    typed: &[(&Document, Typed)],
    seen: &mut HashMap<ObjectRef, (std::path::PathBuf, usize)>,
    tenant_index: &HashMap<(String, String), usize>,
    out: &mut Manifests,
    errors: &mut Vec<ManifestError>,
) {
    let mut mtos = Vec::new();
    let mut docs: HashMap<ObjectRef, &Document> = HashMap::new();
    for (doc, t) in typed {
        let Typed::Mto(m) = t else { continue };
        let (ns, name) = meta(&m.metadata);
        let object = ObjectRef::new(Kind::MultiTenantOrganization, &ns, &name);
        if duplicate(seen, &object, doc, errors) {
            continue;
        }
        match super::mto::multi_tenant_organization(object.clone(), &m.spec, tenant_index, &out.desired.tenants) {
            Ok(d) => {
                docs.insert(object, doc);
                mtos.push(d);
            }
            Err(es) => {
                errors.extend(es.into_iter().map(|(field, message)| doc.error(Some(object.to_string()), Some(&field), message)))
            }
        }
    }
    for e in crate::core::mto::expand_into(&mut out.desired, mtos) {
        if let Some(doc) = docs.get(&e.object) {
            errors.push(doc.error(Some(e.object.to_string()), Some(&e.field), e.message));
        }
    }
}

fn sync_job(ctx: &mut Ctx<'_>, object: ObjectRef, j: &SyncJob, source: String, target: String) -> Option<DesiredSyncJob> {
    let s = &j.spec;
    let before = ctx.errors.len();
    if source == target {
        ctx.err("spec.target", "is the source tenant itself; a sync job copies users into another tenant");
    }
    let interval = match &s.interval {
        Some(iv) => match validate::duration(iv) {
            Ok(d) if d.as_secs() < 60 => {
                ctx.err("spec.interval", format!("{iv:?} is too short: at least 1m"));
                DEFAULT_INTERVAL
            }
            Ok(d) => d,
            Err(e) => {
                ctx.err("spec.interval", e);
                DEFAULT_INTERVAL
            }
        },
        None => DEFAULT_INTERVAL,
    };
    let mut targets = BTreeSet::new();
    for (i, m) in s.attribute_mappings.iter().enumerate() {
        let path = format!("spec.attributeMappings[{i}]");
        if !SYNCABLE_ATTRIBUTES.contains(&m.target.as_str()) {
            ctx.err(
                &format!("{path}.target"),
                format!("{:?} cannot be written; use one of {}", m.target, SYNCABLE_ATTRIBUTES.join(", ")),
            );
        }
        if !targets.insert(m.target.clone()) {
            ctx.err(&format!("{path}.target"), format!("{:?} is mapped twice", m.target));
        }
        match (&m.source, &m.constant) {
            (Some(_), Some(_)) => ctx.err(&path, "give source or constant, not both"),
            (Some(src), None) if !readable(src) => ctx.err(
                &format!("{path}.source"),
                format!(
                    "{src:?} is not a source property; use one of {}, {}",
                    SYNCABLE_ATTRIBUTES.join(", "),
                    SOURCE_ONLY_ATTRIBUTES.join(", ")
                ),
            ),
            _ => {}
        }
    }
    for (i, g) in s.scope.groups.iter().enumerate() {
        if g.trim().is_empty() {
            ctx.err(&format!("spec.scope.groups[{i}]"), "must not be empty");
        }
    }
    for (i, f) in s.scope.filter.iter().enumerate() {
        let path = format!("spec.scope.filter[{i}]");
        if !readable(&f.attribute) && f.attribute != "userType" {
            ctx.err(&format!("{path}.attribute"), format!("{:?} is not a source property", f.attribute));
        }
        match f.operator {
            FilterOperator::In | FilterOperator::NotIn if f.values.is_empty() => {
                ctx.err(&format!("{path}.values"), "needs at least one value for In and NotIn")
            }
            FilterOperator::IsPresent | FilterOperator::IsAbsent if !f.values.is_empty() => {
                ctx.err(&format!("{path}.values"), "takes no values for IsPresent and IsAbsent")
            }
            _ => {}
        }
    }
    let mut provision_on_demand = Vec::new();
    if let Some(v) = j.metadata.annotations.as_ref().and_then(|a| a.get(PROVISION_ON_DEMAND_ANNOTATION)) {
        provision_on_demand = v.split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_string).collect();
    }
    if ctx.errors.len() > before {
        return None;
    }
    let mappings = if s.attribute_mappings.is_empty() {
        DEFAULT_MAPPED.iter().map(|n| AttributeMapping::copy(n)).collect()
    } else {
        s.attribute_mappings.clone()
    };
    Some(DesiredSyncJob {
        object,
        source_tenant_id: source,
        target_tenant_id: target,
        scope: s.scope.clone(),
        mappings,
        user_type: s.user_type,
        interval,
        on_leaving_scope: s.on_leaving_scope,
        suspended: s.suspend,
        provision_on_demand,
        generated_by: None,
    })
}

/// Whether a mapping or filter may read this source property.
fn readable(name: &str) -> bool {
    SYNCABLE_ATTRIBUTES.contains(&name) || SOURCE_ONLY_ATTRIBUTES.contains(&name)
}

/// Records `object` as seen; when it was already, reports the duplicate and returns true.
fn duplicate(
    seen: &mut HashMap<ObjectRef, (std::path::PathBuf, usize)>,
    object: &ObjectRef,
    doc: &Document,
    errors: &mut Vec<ManifestError>,
) -> bool {
    if let Some((file, line)) = seen.get(object) {
        errors.push(doc.error(
            Some(object.to_string()),
            Some("metadata.name"),
            format!("duplicate object: also defined at {}:{line}", file.display()),
        ));
        return true;
    }
    seen.insert(object.clone(), (doc.file.clone(), doc.line));
    false
}

fn resolve_ref(ctx: &mut Ctx<'_>, r: &TenantRef, own_ns: &str, index: &HashMap<(String, String), usize>) -> Option<usize> {
    resolve_ref_at(ctx, "spec.tenantRef.name", r, own_ns, index)
}

/// `resolve_ref` for a reference at another field.
fn resolve_ref_at(
    ctx: &mut Ctx<'_>,
    field: &str,
    r: &TenantRef,
    own_ns: &str,
    index: &HashMap<(String, String), usize>,
) -> Option<usize> {
    if r.name.is_empty() {
        ctx.err(field, "missing: name the Tenant this object belongs to");
        return None;
    }
    let ns = r.namespace.clone().unwrap_or_else(|| own_ns.to_string());
    let found = index.get(&(ns.clone(), r.name.clone())).copied();
    if found.is_none() {
        let mut known: Vec<String> = index.keys().map(|(n, t)| format!("{n}/{t}")).collect();
        known.sort();
        let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        ctx.err(field, format!("no Tenant {:?} in namespace {ns:?} (Tenants in the manifests: {known})", r.name));
    }
    found
}

fn tenant(
    ctx: &mut Ctx<'_>,
    object: ObjectRef,
    t: &Tenant,
    ids: &mut HashMap<String, String>,
    domains: &mut HashMap<String, String>,
) -> Option<DesiredTenant> {
    let s = &t.spec;
    let before = ctx.errors.len();
    ctx.check("spec.tenantId", validate::guid(&s.tenant_id));
    // The CRD's CEL rule for allowedNamespaces, so the CLI refuses what the API server refuses.
    for (i, n) in s.allowed_namespaces.iter().enumerate() {
        if n != "*" {
            ctx.check(&format!("spec.allowedNamespaces[{i}]"), super::schema_check::dns_label(n));
        }
    }
    ctx.check("spec.initialDomain", validate::domain(&s.initial_domain));
    let tenant_id = s.tenant_id.to_ascii_lowercase();
    if let Some(other) = ids.insert(tenant_id.clone(), object.to_string()) {
        ctx.err("spec.tenantId", format!("tenant id {tenant_id} is already used by {other}"));
    }
    let mut verified = BTreeSet::new();
    for (i, d) in s.verified_domains.iter().enumerate() {
        ctx.check(&format!("spec.verifiedDomains[{i}]"), validate::domain(d));
        verified.insert(d.to_ascii_lowercase());
    }
    for d in std::iter::once(&s.initial_domain.to_ascii_lowercase()).chain(verified.iter()) {
        if let Some(other) = domains.insert(d.clone(), object.to_string()).filter(|o| *o != object.to_string()) {
            ctx.err("spec.verifiedDomains", format!("domain {d} also belongs to {other}"));
        }
    }
    match (&s.backend.kind, &s.backend.graph) {
        (BackendKind::Graph, None) => ctx.err("spec.backend.graph", "required when spec.backend.type is graph"),
        (BackendKind::Local, Some(_)) => ctx.err("spec.backend.graph", "only allowed when spec.backend.type is graph"),
        (BackendKind::Graph, Some(g)) if g.client_id.is_empty() => ctx.err("spec.backend.graph.clientId", "missing"),
        _ => {}
    }
    let ec = &s.external_collaboration;
    if let Some(role) = &ec.guest_user_role_id
        && !GUEST_ROLE_IDS.contains(&role.to_ascii_lowercase().as_str())
    {
        ctx.err(
            "spec.externalCollaboration.guestUserRoleId",
            format!("{role:?} is not a guest role id; use one of {} (R8)", GUEST_ROLE_IDS.join(", ")),
        );
    }
    if let Some(list) = &ec.domain_list {
        for (i, d) in list.domains.iter().enumerate() {
            ctx.check(&format!("spec.externalCollaboration.domainList.domains[{i}]"), validate::domain(d));
        }
    }
    check_access(ctx, "spec.crossTenantAccessDefault", &s.cross_tenant_access_default);
    if let Some(c) = &s.cross_tenant_access_default.automatic_user_consent_settings
        && (c.inbound_allowed == Some(true) || c.outbound_allowed == Some(true))
    {
        ctx.err(
            "spec.crossTenantAccessDefault.automaticUserConsentSettings",
            "Graph keeps automatic user consent false and read-only on the default configuration; set it on a CrossTenantAccessPolicy per partner",
        );
    }
    let mut groups = BTreeSet::new();
    for (i, g) in s.groups.iter().enumerate() {
        if g.display_name.trim().is_empty() {
            ctx.err(&format!("spec.groups[{i}].displayName"), "must not be empty");
        } else if !groups.insert(g.display_name.clone()) {
            ctx.err(&format!("spec.groups[{i}].displayName"), format!("group {:?} is listed twice", g.display_name));
        }
    }
    if let Some(iv) = &s.reconcile.interval {
        ctx.check("spec.reconcile.interval", validate::duration(iv).map(|_| ()));
    }
    let profile = tenant_profile::profile(ctx, s);
    if ctx.errors.len() > before {
        return None;
    }
    Some(DesiredTenant {
        profile,
        identity: TenantIdentity {
            tenant_id,
            initial_domain: s.initial_domain.to_ascii_lowercase(),
            display_name: s.display_name.clone().unwrap_or_else(|| object.name.clone()),
            cloud: s.cloud,
            verified_domains: verified,
        },
        object,
        drift_policy: s.reconcile.drift_policy,
        external_collaboration: ResolvedCollaboration::resolve(ec),
        default_access: ResolvedAccess::system_default().overlay(&s.cross_tenant_access_default),
        groups,
        partners: vec![],
        invitations: vec![],
        identity_providers: vec![],
        sign_up_flows: vec![],
    })
}

/// Target lists: users and groups take `AllUsers` or object ids; applications take keywords or ids.
fn check_access(ctx: &mut Ctx<'_>, prefix: &str, s: &CrossTenantAccessSettings) {
    let settings = [
        ("b2bCollaborationInbound", &s.b2b_collaboration_inbound),
        ("b2bCollaborationOutbound", &s.b2b_collaboration_outbound),
        ("b2bDirectConnectInbound", &s.b2b_direct_connect_inbound),
        ("b2bDirectConnectOutbound", &s.b2b_direct_connect_outbound),
        ("tenantRestrictions", &s.tenant_restrictions),
    ];
    for (name, setting) in settings {
        let Some(b) = setting else { continue };
        for (part, config, users) in [("usersAndGroups", &b.users_and_groups, true), ("applications", &b.applications, false)] {
            let Some(c) = config else { continue };
            let path = format!("{prefix}.{name}.{part}.targets");
            if c.targets.is_empty() {
                ctx.err(&path, "needs at least one target (e.g. AllUsers or AllApplications)");
            }
            for (i, t) in c.targets.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let keyword_ok = if users {
                    t.target.eq_ignore_ascii_case(ALL_USERS)
                } else {
                    APPLICATION_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&t.target))
                };
                let type_ok = if users {
                    matches!(t.target_type, TargetType::User | TargetType::Group)
                } else {
                    t.target_type == TargetType::Application
                };
                if !type_ok {
                    ctx.err(
                        &format!("{p}.targetType"),
                        if users { "must be user or group here" } else { "must be application here" },
                    );
                }
                if !keyword_ok && validate::guid(&t.target).is_err() {
                    let expected = if users {
                        "AllUsers or a user/group object id".to_string()
                    } else {
                        format!("{} or an application id", APPLICATION_KEYWORDS.join(", "))
                    };
                    ctx.err(&format!("{p}.target"), format!("{:?} is not {expected}", t.target));
                }
            }
        }
    }
}

fn policy(ctx: &mut Ctx<'_>, object: ObjectRef, p: &CrossTenantAccessPolicy, tenant: &DesiredTenant) -> Option<DesiredPartner> {
    let before = ctx.errors.len();
    ctx.check("spec.partnerTenantId", validate::guid(&p.spec.partner_tenant_id));
    let partner = p.spec.partner_tenant_id.to_ascii_lowercase();
    if partner == tenant.identity.tenant_id {
        ctx.err("spec.partnerTenantId", "is the tenant's own id; a partner configuration is for another tenant");
    }
    let settings = p.spec.settings();
    check_access(ctx, "spec", &settings);
    if ctx.errors.len() > before {
        return None;
    }
    Some(DesiredPartner {
        object,
        partner_tenant_id: partner,
        settings,
        identity_synchronization: p.spec.identity_synchronization.clone(),
        deletion_policy: p.spec.deletion_policy,
        is_in_multi_tenant_organization: false,
    })
}

fn invitation(ctx: &mut Ctx<'_>, object: ObjectRef, i: &GuestInvitation, tenant: &DesiredTenant) -> Option<DesiredInvitation> {
    let s = &i.spec;
    let before = ctx.errors.len();
    ctx.check("spec.invitedUserEmailAddress", validate::email(&s.invited_user_email_address));
    let redirect = s.invite_redirect_url.clone().unwrap_or_else(|| DEFAULT_REDIRECT_URL.to_string());
    ctx.check("spec.inviteRedirectUrl", validate::http_url(&redirect));
    if let Some(m) = &s.invited_user_message_info {
        if m.cc_recipients.len() > 1 {
            ctx.err("spec.invitedUserMessageInfo.ccRecipients", "Graph supports one additional recipient");
        }
        for (n, cc) in m.cc_recipients.iter().enumerate() {
            ctx.check(&format!("spec.invitedUserMessageInfo.ccRecipients[{n}]"), validate::email(cc));
        }
    }
    for (n, g) in s.groups.iter().enumerate() {
        if !tenant.groups.contains(g) {
            let declared: Vec<&str> = tenant.groups.iter().map(String::as_str).collect();
            ctx.err(
                &format!("spec.groups[{n}]"),
                format!(
                    "group {g:?} is not declared in spec.groups of {} (declared: {})",
                    tenant.object,
                    if declared.is_empty() { "none".into() } else { declared.join(", ") }
                ),
            );
        }
    }
    if ctx.errors.len() > before {
        return None;
    }
    Some(DesiredInvitation {
        object,
        email: s.invited_user_email_address.clone(),
        display_name: s.invited_user_display_name.clone(),
        redirect_url: redirect,
        user_type: s.invited_user_type,
        send_invitation_message: s.send_invitation_message,
        message_info: s.invited_user_message_info.clone(),
        groups: s.groups.iter().cloned().collect(),
        deletion_policy: s.deletion_policy,
    })
}

#[path = "tenant_profile.rs"]
mod tenant_profile;

#[path = "entitlement.rs"]
mod entitlement;
