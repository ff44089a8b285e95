//! ConditionalAccessPolicy manifests (R18) → `DesiredState::conditional_access`. Every problem names its
//! field: at least one external user type; external tenants only when types are set (as Graph requires);
//! tenant and application ids are GUIDs; at least one application and one grant control; one display name
//! per tenant.

use std::collections::{BTreeMap, HashMap};

use super::documents::Document;
use super::error::ManifestError;
use super::mto::{FieldError, TenantIndex};
use crate::api::conditional_access_policy::ConditionalAccessPolicy;
use crate::core::conditional_access::*;
use crate::core::model::{DesiredState, Kind, ObjectRef};
use crate::core::validate;

type Seen = HashMap<ObjectRef, (std::path::PathBuf, usize)>;

fn meta(m: &kube::api::ObjectMeta) -> (String, String) {
    (m.namespace.clone().unwrap_or_else(|| "default".into()), m.name.clone().unwrap_or_default())
}

/// Adds the valid policies to `desired.conditional_access`, reporting every error against its document.
pub(super) fn build(
    policies: &[(&Document, &ConditionalAccessPolicy)],
    seen: &mut Seen,
    tenant_index: &TenantIndex,
    desired: &mut DesiredState,
    errors: &mut Vec<ManifestError>,
) {
    let mut names: BTreeMap<(String, String), ObjectRef> = BTreeMap::new();
    for (doc, p) in policies {
        let (ns, name) = meta(&p.metadata);
        let object = ObjectRef::new(Kind::ConditionalAccessPolicy, &ns, &name);
        let mut report =
            |es: Vec<FieldError>| errors.extend(es.into_iter().map(|(f, m)| doc.error(Some(object.to_string()), Some(&f), m)));
        if let Some((file, line)) = seen.get(&object) {
            report(vec![("metadata.name".into(), format!("duplicate object: also defined at {}:{line}", file.display()))]);
            continue;
        }
        seen.insert(object.clone(), (doc.file.clone(), doc.line));
        let r = &p.spec.tenant_ref;
        let tns = r.namespace.clone().unwrap_or_else(|| ns.clone());
        let Some(ti) = tenant_index.get(&(tns.clone(), r.name.clone())).copied() else {
            report(vec![("spec.tenantRef.name".into(), format!("no Tenant {:?} in namespace {tns:?} in the manifests", r.name))]);
            continue;
        };
        let tenant_id = desired.tenants[ti].identity.tenant_id.clone();
        let policy = match policy(&p.spec) {
            Ok(policy) => policy,
            Err(es) => {
                report(es);
                continue;
            }
        };
        let key = (tenant_id.clone(), policy.display_name.trim().to_ascii_lowercase());
        if let Some(other) = names.get(&key) {
            report(vec![(
                "spec.displayName".into(),
                format!("{other} already declares a policy {:?} in this tenant", policy.display_name),
            )]);
            continue;
        }
        names.insert(key, object.clone());
        desired.conditional_access.entry(tenant_id).or_default().push(DesiredConditionalAccessPolicy {
            object,
            policy,
            deletion_policy: p.spec.deletion_policy,
        });
    }
}

fn guests(prefix: &str, g: &GuestsOrExternalUsers, es: &mut Vec<FieldError>) -> GuestsOrExternalUsers {
    let types = format!("{prefix}.guestOrExternalUserTypes");
    let tenants = format!("{prefix}.externalTenants");
    if g.guest_or_external_user_types.is_empty() {
        let all: Vec<&str> = GuestOrExternalUserType::ALL.iter().map(|t| t.as_str()).collect();
        es.push((types, format!("needs at least one external user type: {}", all.join(", "))));
        if g.external_tenants.is_some() {
            es.push((tenants.clone(), "only allowed when guestOrExternalUserTypes is set".into()));
        }
    }
    let external_tenants = match &g.external_tenants {
        Some(ExternalTenants::Enumerated(ids)) => {
            if ids.is_empty() {
                es.push((tenants.clone(), "lists no tenant: use \"all\" or at least one tenant id".into()));
            }
            for (i, id) in ids.iter().enumerate() {
                if let Err(m) = validate::guid(id) {
                    es.push((format!("{tenants}[{i}]"), m));
                }
            }
            Some(ExternalTenants::Enumerated(ids.iter().map(|i| i.to_ascii_lowercase()).collect()))
        }
        other => other.clone(),
    };
    GuestsOrExternalUsers { guest_or_external_user_types: g.guest_or_external_user_types.clone(), external_tenants }
}

/// The canonical policy of a spec, or the errors, each naming its field.
pub(crate) fn policy(s: &crate::api::ConditionalAccessPolicySpec) -> Result<ConditionalAccessPolicyConfig, Vec<FieldError>> {
    let mut es = Vec::new();
    if s.display_name.trim().is_empty() {
        es.push(("spec.displayName".into(), "must not be empty".into()));
    }
    let include = guests("spec.users.includeGuestsOrExternalUsers", &s.users.include_guests_or_external_users, &mut es);
    let exclude =
        s.users.exclude_guests_or_external_users.as_ref().map(|g| guests("spec.users.excludeGuestsOrExternalUsers", g, &mut es));
    let apps = &s.applications;
    if apps.include_applications.is_empty() {
        es.push((
            "spec.applications.includeApplications".into(),
            "needs at least one application: All or an application id".into(),
        ));
    }
    let mut include_applications = std::collections::BTreeSet::new();
    for (i, a) in apps.include_applications.iter().enumerate() {
        if a.eq_ignore_ascii_case("All") {
            include_applications.insert("All".to_string());
        } else if validate::guid(a).is_err() {
            es.push((format!("spec.applications.includeApplications[{i}]"), format!("{a:?} is not All or an application id")));
        } else {
            include_applications.insert(a.to_ascii_lowercase());
        }
    }
    let mut exclude_applications = std::collections::BTreeSet::new();
    for (i, a) in apps.exclude_applications.iter().enumerate() {
        if validate::guid(a).is_err() {
            es.push((format!("spec.applications.excludeApplications[{i}]"), format!("{a:?} is not an application id")));
        } else {
            exclude_applications.insert(a.to_ascii_lowercase());
        }
    }
    if s.grant_controls.built_in_controls.is_empty() {
        es.push(("spec.grantControls.builtInControls".into(), "needs at least one control: mfa or block".into()));
    }
    if !es.is_empty() {
        return Err(es);
    }
    Ok(ConditionalAccessPolicyConfig {
        display_name: s.display_name.trim().to_string(),
        state: s.state,
        users: PolicyUsers { include_guests_or_external_users: include, exclude_guests_or_external_users: exclude },
        applications: PolicyApplications { include_applications, exclude_applications },
        grant_controls: s.grant_controls.clone(),
    }
    .canonical())
}
