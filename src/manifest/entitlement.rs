//! Entitlement management (R16) in the manifests: each Tenant's `spec.entitlementManagement`, then
//! `ConnectedOrganization`s, then `AccessPackage`s (whose policies name connected organizations of the
//! same Tenant by object name). A child of `convert`, so it shares its document and error helpers.

use std::collections::{BTreeSet, HashMap};

use super::*;
use crate::api::access_package::EntitlementManagementSpec;
use crate::core::entitlement::{
    self as ent, AssignmentPolicy, DEFAULT_DELETE_AFTER_SECONDS, DesiredAccessPackage, DesiredConnectedOrganization,
    EntitlementSettings, IdentitySource, LifecycleAction, TargetScope,
};

type Seen = HashMap<ObjectRef, (std::path::PathBuf, usize)>;

pub(super) fn build(
    typed: &[(&Document, Typed)],
    seen: &mut Seen,
    tenant_index: &HashMap<(String, String), usize>,
    out: &mut Manifests,
    errors: &mut Vec<ManifestError>,
) {
    // Tenant settings.
    for (doc, t) in typed {
        let Typed::Tenant(t) = t else { continue };
        let Some(spec) = &t.spec.entitlement_management else { continue };
        let (ns, name) = meta(&t.metadata);
        let Some(&ti) = tenant_index.get(&(ns.clone(), name.clone())) else { continue };
        let mut ctx = Ctx { doc, object: Some(ObjectRef::new(Kind::Tenant, &ns, &name).to_string()), errors };
        if let Some(settings) = settings(&mut ctx, spec) {
            let id = out.desired.tenants[ti].identity.tenant_id.clone();
            out.desired.entitlement.entry(id).or_default().settings = Some(settings);
        }
    }

    // Connected organizations, by (namespace, object name) → (tenant index, display name).
    let mut organizations: HashMap<(String, String), (usize, String)> = HashMap::new();
    let mut org_names: HashMap<(usize, String), String> = HashMap::new();
    for (doc, t) in typed {
        let Typed::ConnectedOrganization(o) = t else { continue };
        let (ns, name) = meta(&o.metadata);
        let object = ObjectRef::new(Kind::ConnectedOrganization, &ns, &name);
        if duplicate(seen, &object, doc, errors) {
            continue;
        }
        let mut ctx = Ctx { doc, object: Some(object.to_string()), errors };
        let Some(ti) = resolve_ref(&mut ctx, &o.spec.tenant_ref, &ns, tenant_index) else { continue };
        let Some(org) = organization(&mut ctx, &o.spec) else { continue };
        let key = (ti, org.display_name.to_ascii_lowercase());
        if let Some(other) = org_names.get(&key) {
            ctx.err("spec.displayName", format!("{other} already has display name {:?} in this tenant", org.display_name));
            continue;
        }
        org_names.insert(key, object.to_string());
        organizations.insert((ns, name), (ti, org.display_name.clone()));
        let id = out.desired.tenants[ti].identity.tenant_id.clone();
        out.desired.entitlement.entry(id).or_default().connected_organizations.push(DesiredConnectedOrganization {
            object,
            organization: org,
            deletion_policy: o.spec.deletion_policy,
        });
    }

    let mut package_names: HashMap<(usize, String), String> = HashMap::new();
    for (doc, t) in typed {
        let Typed::AccessPackage(p) = t else { continue };
        let (ns, name) = meta(&p.metadata);
        let object = ObjectRef::new(Kind::AccessPackage, &ns, &name);
        if duplicate(seen, &object, doc, errors) {
            continue;
        }
        let mut ctx = Ctx { doc, object: Some(object.to_string()), errors };
        let Some(ti) = resolve_ref(&mut ctx, &p.spec.tenant_ref, &ns, tenant_index) else { continue };
        let tenant = &out.desired.tenants[ti];
        let Some(package) = package(&mut ctx, &p.spec, tenant, ti, &ns, &organizations) else { continue };
        let key = (ti, package.display_name.to_ascii_lowercase());
        if let Some(other) = package_names.get(&key) {
            ctx.err("spec.displayName", format!("{other} already has display name {:?} in this tenant", package.display_name));
            continue;
        }
        package_names.insert(key, object.to_string());
        let id = tenant.identity.tenant_id.clone();
        out.desired.entitlement.entry(id).or_default().access_packages.push(DesiredAccessPackage {
            object,
            package,
            deletion_policy: p.spec.deletion_policy,
        });
    }
}

fn settings(ctx: &mut Ctx<'_>, s: &EntitlementManagementSpec) -> Option<EntitlementSettings> {
    let field = "spec.entitlementManagement.durationUntilExternalUserDeletedAfterBlocked";
    let seconds = match &s.duration_until_external_user_deleted_after_blocked {
        None => DEFAULT_DELETE_AFTER_SECONDS,
        Some(d) => match validate::duration(d) {
            Ok(d) => d.as_secs(),
            Err(e) => {
                ctx.err(field, e);
                return None;
            }
        },
    };
    if s.duration_until_external_user_deleted_after_blocked.is_some()
        && s.external_user_lifecycle_action != LifecycleAction::BlockSignInAndDelete
    {
        ctx.err(field, "only applies with externalUserLifecycleAction: blockSignInAndDelete");
        return None;
    }
    Some(EntitlementSettings {
        external_user_lifecycle_action: s.external_user_lifecycle_action,
        delete_after_blocked_seconds: seconds,
    })
}

fn description(d: &Option<String>) -> Option<String> {
    d.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string)
}

fn organization(ctx: &mut Ctx<'_>, s: &crate::api::ConnectedOrganizationSpec) -> Option<ent::ConnectedOrganization> {
    let before = ctx.errors.len();
    if s.display_name.trim().is_empty() {
        ctx.err("spec.displayName", "must not be empty");
    }
    if s.identity_sources.is_empty() {
        ctx.err("spec.identitySources", "needs at least one identity source (tenantId or domainName)");
    }
    let mut sources = BTreeSet::new();
    for (i, src) in s.identity_sources.iter().enumerate() {
        let path = format!("spec.identitySources[{i}]");
        match (&src.tenant_id, &src.domain_name) {
            (Some(id), None) => {
                ctx.check(&format!("{path}.tenantId"), validate::guid(id));
                sources.insert(IdentitySource::TenantId(id.to_ascii_lowercase()));
            }
            (None, Some(d)) => {
                ctx.check(&format!("{path}.domainName"), validate::domain(d));
                sources.insert(IdentitySource::DomainName(d.to_ascii_lowercase()));
            }
            _ => ctx.err(&path, "give exactly one of tenantId and domainName"),
        }
    }
    if ctx.errors.len() > before {
        return None;
    }
    Some(ent::ConnectedOrganization {
        display_name: s.display_name.trim().to_string(),
        description: description(&s.description),
        identity_sources: sources,
        state: s.state,
    })
}

fn package(
    ctx: &mut Ctx<'_>,
    s: &crate::api::AccessPackageSpec,
    tenant: &DesiredTenant,
    ti: usize,
    ns: &str,
    organizations: &HashMap<(String, String), (usize, String)>,
) -> Option<ent::AccessPackage> {
    let before = ctx.errors.len();
    if s.display_name.trim().is_empty() {
        ctx.err("spec.displayName", "must not be empty");
    }
    for (n, g) in s.resources.groups.iter().enumerate() {
        if !tenant.groups.contains(g) {
            let declared: Vec<&str> = tenant.groups.iter().map(String::as_str).collect();
            ctx.err(
                &format!("spec.resources.groups[{n}]"),
                format!(
                    "group {g:?} is not declared in spec.groups of {} (declared: {})",
                    tenant.object,
                    if declared.is_empty() { "none".into() } else { declared.join(", ") }
                ),
            );
        }
    }
    for (n, a) in s.resources.applications.iter().enumerate() {
        ctx.check(
            &format!("spec.resources.applications[{n}]"),
            validate::guid(a).map_err(|e| format!("{e} (an application id)")),
        );
    }
    if s.assignment_policies.is_empty() {
        ctx.err("spec.assignmentPolicies", "needs at least one assignment policy: without one nobody can request the package");
    }
    let mut names = BTreeSet::new();
    let mut policies = Vec::new();
    for (i, p) in s.assignment_policies.iter().enumerate() {
        let path = format!("spec.assignmentPolicies[{i}]");
        if p.display_name.trim().is_empty() {
            ctx.err(&format!("{path}.displayName"), "must not be empty");
        } else if !names.insert(p.display_name.trim().to_ascii_lowercase()) {
            ctx.err(&format!("{path}.displayName"), format!("policy {:?} is listed twice", p.display_name));
        }
        let r = &p.requestors;
        let given = usize::from(!r.specific_connected_organizations.is_empty())
            + usize::from(r.all_configured_connected_organizations)
            + usize::from(r.all_external_users);
        let scope = if given != 1 {
            ctx.err(
                &format!("{path}.requestors"),
                "give exactly one of specificConnectedOrganizations, allConfiguredConnectedOrganizations and allExternalUsers",
            );
            TargetScope::AllExternalUsers
        } else if r.all_external_users {
            TargetScope::AllExternalUsers
        } else if r.all_configured_connected_organizations {
            TargetScope::AllConfiguredConnectedOrganizationUsers
        } else {
            TargetScope::SpecificConnectedOrganizationUsers
        };
        let mut orgs = BTreeSet::new();
        for (n, o) in r.specific_connected_organizations.iter().enumerate() {
            let field = format!("{path}.requestors.specificConnectedOrganizations[{n}]");
            match organizations.get(&(ns.to_string(), o.clone())) {
                Some((t, display)) if *t == ti => {
                    orgs.insert(display.clone());
                }
                Some(_) => {
                    ctx.err(&field, format!("ConnectedOrganization {ns}/{o} belongs to another Tenant than {}", tenant.object))
                }
                None => {
                    let mut known: Vec<&str> = organizations
                        .iter()
                        .filter(|((n2, _), (t, _))| n2 == ns && *t == ti)
                        .map(|((_, name), _)| name.as_str())
                        .collect();
                    known.sort();
                    ctx.err(
                        &field,
                        format!(
                            "unknown connected organization {o:?}: no valid ConnectedOrganization {ns}/{o} of {} (known: {})",
                            tenant.object,
                            if known.is_empty() { "none".into() } else { known.join(", ") }
                        ),
                    );
                }
            }
        }
        let mut approvers = BTreeSet::new();
        for (n, a) in p.approvers.iter().enumerate() {
            ctx.check(&format!("{path}.approvers[{n}]"), validate::email(a));
            approvers.insert(a.to_ascii_lowercase());
        }
        if !p.approvers.is_empty() && !p.approval_required {
            ctx.err(&format!("{path}.approvers"), "approvers are only used with approvalRequired: true");
        }
        if p.approvers.is_empty() && p.approval_required {
            ctx.err(
                &format!("{path}.approvers"),
                "approvalRequired: true needs at least one approver: nobody could approve a request",
            );
        }
        let expiration_seconds = match p.expiration.as_deref().map(str::trim) {
            None | Some("never") => None,
            Some(d) => match validate::duration(d) {
                Ok(d) => Some(d.as_secs()),
                Err(e) => {
                    ctx.err(&format!("{path}.expiration"), format!("{e}, or never"));
                    None
                }
            },
        };
        policies.push(AssignmentPolicy {
            display_name: p.display_name.trim().to_string(),
            allowed_target_scope: scope,
            connected_organizations: orgs,
            approval_required: p.approval_required,
            approvers,
            expiration_seconds,
        });
    }
    if ctx.errors.len() > before {
        return None;
    }
    policies.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    Some(ent::AccessPackage {
        display_name: s.display_name.trim().to_string(),
        description: description(&s.description),
        groups: s.resources.groups.iter().cloned().collect(),
        applications: s.resources.applications.iter().map(|a| a.to_ascii_lowercase()).collect(),
        policies,
    })
}
