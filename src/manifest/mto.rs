//! `MultiTenantOrganization` manifests → `DesiredMultiTenantOrganization` (R15): references resolved to
//! tenant ids, values checked. The expansion into partner configurations and sync jobs, and the
//! conflicts with other objects, are `crate::core::mto::expand_into`'s.

use std::collections::HashMap;

use crate::api::TenantRef;
use crate::api::multi_tenant_organization::{MultiTenantOrganizationSpec, SyncJobTemplateSpec};
use crate::core::model::{DesiredTenant, ObjectRef};
use crate::core::mto::{DesiredMultiTenantOrganization, MtoParticipant, MtoSyncJobs, SyncJobOverride, SyncJobTemplate};
use crate::core::sync::{SOURCE_ONLY_ATTRIBUTES, SYNCABLE_ATTRIBUTES};
use crate::core::validate;

/// One problem: the field path and the message.
pub(super) type FieldError = (String, String);

/// Tenants of the manifests by (namespace, name), as indexes into `tenants`.
pub(super) type TenantIndex = HashMap<(String, String), usize>;

fn resolve<'a>(
    r: &TenantRef,
    own_ns: &str,
    field: &str,
    index: &TenantIndex,
    tenants: &'a [DesiredTenant],
    errors: &mut Vec<FieldError>,
) -> Option<&'a DesiredTenant> {
    if r.name.is_empty() {
        errors.push((field.to_string(), "missing: name a Tenant".into()));
        return None;
    }
    let ns = r.namespace.clone().unwrap_or_else(|| own_ns.to_string());
    match index.get(&(ns.clone(), r.name.clone())) {
        Some(&i) => tenants.get(i),
        None => {
            let mut known: Vec<String> = index.keys().map(|(n, t)| format!("{n}/{t}")).collect();
            known.sort();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            errors.push((
                field.to_string(),
                format!("no Tenant {:?} in namespace {ns:?} (Tenants in the manifests: {known})", r.name),
            ));
            None
        }
    }
}

fn participant(t: &DesiredTenant) -> MtoParticipant {
    MtoParticipant {
        tenant_id: t.identity.tenant_id.clone(),
        tenant: Some(t.object.clone()),
        display_name: Some(t.identity.display_name.clone()),
    }
}

fn template(t: &SyncJobTemplateSpec, prefix: &str, errors: &mut Vec<FieldError>) -> SyncJobTemplate {
    let interval = t.interval.as_deref().and_then(|i| match validate::duration(i) {
        Ok(d) if d.as_secs() < 60 => {
            errors.push((format!("{prefix}.interval"), format!("{i:?} is too short: at least 1m")));
            None
        }
        Ok(d) => Some(d),
        Err(m) => {
            errors.push((format!("{prefix}.interval"), m));
            None
        }
    });
    for (i, m) in t.attribute_mappings.iter().flatten().enumerate() {
        let p = format!("{prefix}.attributeMappings[{i}]");
        if !SYNCABLE_ATTRIBUTES.contains(&m.target.as_str()) {
            errors.push((
                format!("{p}.target"),
                format!("{:?} cannot be written; use one of {}", m.target, SYNCABLE_ATTRIBUTES.join(", ")),
            ));
        }
        if let Some(s) = &m.source
            && !SYNCABLE_ATTRIBUTES.contains(&s.as_str())
            && !SOURCE_ONLY_ATTRIBUTES.contains(&s.as_str())
        {
            errors.push((format!("{p}.source"), format!("{s:?} is not a user property a sync job reads")));
        }
        if m.source.is_some() && m.constant.is_some() {
            errors.push((p, "give source or constant, not both".into()));
        }
    }
    SyncJobTemplate {
        scope: t.scope.clone(),
        mappings: t.attribute_mappings.clone(),
        user_type: t.user_type,
        interval,
        on_leaving_scope: t.on_leaving_scope,
    }
}

/// Checks one organization and resolves its references; every problem is returned.
pub(super) fn multi_tenant_organization(
    object: ObjectRef,
    spec: &MultiTenantOrganizationSpec,
    index: &TenantIndex,
    tenants: &[DesiredTenant],
) -> Result<DesiredMultiTenantOrganization, Vec<FieldError>> {
    let mut errors = Vec::new();
    let ns = object.namespace.clone();
    if spec.display_name.trim().is_empty() {
        errors.push(("spec.displayName".into(), "must not be empty".into()));
    }
    let owner = resolve(&spec.owner.tenant_ref, &ns, "spec.owner.tenantRef.name", index, tenants, &mut errors);
    let mut members = Vec::new();
    for (i, m) in spec.members.iter().enumerate() {
        let field = format!("spec.members[{i}]");
        match (&m.tenant_ref, &m.tenant_id) {
            (Some(r), None) => {
                if let Some(t) = resolve(r, &ns, &format!("{field}.tenantRef.name"), index, tenants, &mut errors) {
                    let mut p = participant(t);
                    if m.display_name.is_some() {
                        p.display_name = m.display_name.clone();
                    }
                    members.push((field, p));
                }
            }
            (None, Some(id)) => {
                if let Err(e) = validate::guid(id) {
                    errors.push((format!("{field}.tenantId"), e));
                    continue;
                }
                let id = id.to_ascii_lowercase();
                // A tenant the manifests declare is managed, however it is named here.
                let p = match tenants.iter().find(|t| t.identity.tenant_id == id) {
                    Some(t) => participant(t),
                    None => MtoParticipant { tenant_id: id, tenant: None, display_name: m.display_name.clone() },
                };
                members.push((field, p));
            }
            _ => errors.push((field, "give exactly one of tenantRef and tenantId".into())),
        }
    }
    if let Some(owner) = owner {
        for (field, p) in &members {
            if p.tenant_id == owner.identity.tenant_id {
                errors.push((field.clone(), format!("{} is the owner; list only the other members", owner.object)));
            }
        }
    }
    if let Some(c) = spec.partner_configuration.as_ref().and_then(|p| p.automatic_user_consent_settings.as_ref())
        && (c.inbound_allowed == Some(false) || c.outbound_allowed == Some(false))
    {
        errors.push((
            "spec.partnerConfiguration.automaticUserConsentSettings".into(),
            "members of a multi-tenant organization always redeem automatically both ways (R12, R15); leave it out".into(),
        ));
    }
    let mut sync_jobs = MtoSyncJobs::default();
    if let Some(s) = &spec.sync_jobs {
        sync_jobs.enabled = s.enabled;
        if let Some(t) = &s.template {
            sync_jobs.template = template(t, "spec.syncJobs.template", &mut errors);
        }
        for (i, o) in s.overrides.iter().enumerate() {
            let field = format!("spec.syncJobs.overrides[{i}]");
            let from = resolve(&o.from, &ns, &format!("{field}.from.name"), index, tenants, &mut errors);
            let to = resolve(&o.to, &ns, &format!("{field}.to.name"), index, tenants, &mut errors);
            let t = template(&o.template(), &field, &mut errors);
            let (Some(from), Some(to)) = (from, to) else { continue };
            let listed = |t: &DesiredTenant| {
                owner.is_some_and(|o| o.identity.tenant_id == t.identity.tenant_id)
                    || members.iter().any(|(_, p)| p.tenant_id == t.identity.tenant_id)
            };
            for (end, t) in [("from", from), ("to", to)] {
                if !listed(t) {
                    errors.push((format!("{field}.{end}"), format!("{} is not in this organization", t.object)));
                }
            }
            if from.identity.tenant_id == to.identity.tenant_id {
                errors.push((format!("{field}.to"), "a sync job goes from one tenant to another".into()));
            }
            if sync_jobs
                .overrides
                .iter()
                .any(|x: &SyncJobOverride| x.from == from.identity.tenant_id && x.to == to.identity.tenant_id)
            {
                errors.push((field.clone(), format!("another override already names {} to {}", from.object, to.object)));
            }
            sync_jobs.overrides.push(SyncJobOverride {
                from: from.identity.tenant_id.clone(),
                to: to.identity.tenant_id.clone(),
                enabled: o.enabled,
                template: t,
            });
        }
    }
    let Some(owner) = owner else { return Err(errors) };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(DesiredMultiTenantOrganization {
        object,
        display_name: spec.display_name.clone(),
        description: spec.description.clone(),
        owner: participant(owner),
        members: members.into_iter().map(|(_, p)| p).collect(),
        partner_settings: spec.partner_configuration.clone().unwrap_or_default(),
        sync_jobs,
    })
}
