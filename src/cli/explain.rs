//! `entente explain`: can a user reach an application in a tenant, by which path, and why.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::{EnvSecrets, Report, exit};
use crate::core::entitlement::EntitlementView;
use crate::core::explain::{Person, assumed_home, explain_with, render};
use crate::core::plan::desired_policies;
use crate::core::policy::{TenantPolicy, email_domain};
use crate::engine::{self, routes::Backends};

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Manifest files or directories.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// The user's email address (their home tenant is the tenant owning its domain, if any).
    #[arg(long)]
    pub user: String,
    /// The resource tenant: Tenant object name, tenant id or domain.
    #[arg(long = "to")]
    pub resource: String,
    /// The application: an application id, or `AllApplications`, `Office365`, `AllMicrosoftApps`.
    #[arg(long, default_value = "Office365")]
    pub app: String,
    /// Judge by the settings in force in the directory now, instead of the manifests' (after apply).
    #[arg(long)]
    pub current: bool,
    #[arg(long, env = "ENTENTE_DIRECTORY", default_value = super::DEFAULT_DIRECTORY)]
    pub directory: PathBuf,
    #[arg(short = 'o', long, value_enum, default_value_t = Report::Text)]
    pub output: Report,
}

/// Exit 0 when some path lets the user in, 1 when none does, 2 on error.
pub async fn run(args: ExplainArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    if let Err(why) = crate::core::validate::email(&args.user) {
        writeln!(err, "error: --user: {why}")?;
        return Ok(exit::ERROR);
    }
    let Some(manifests) = super::load_manifests(&args.paths, err)? else { return Ok(exit::ERROR) };
    let backends = Backends::new(&args.directory).preview();
    let routes = manifests.backends.iter().map(|(id, b)| (id.clone(), backends.route(id, b, &EnvSecrets))).collect();
    let observed = engine::observe(&manifests.desired, &routes).await;
    let snapshots: Vec<_> = observed.values().filter_map(|o| o.as_ref().ok().and_then(Option::as_ref)).collect();
    let policies: Vec<TenantPolicy> = if args.current {
        snapshots.iter().map(|s| TenantPolicy::from_snapshot(s)).collect()
    } else {
        desired_policies(&manifests.desired, &observed)
    };
    let wanted = args.resource.to_ascii_lowercase();
    let Some(desired) = manifests
        .desired
        .tenants
        .iter()
        .find(|t| t.object.name == wanted || t.identity.tenant_id == wanted || t.identity.owns_domain(&wanted))
    else {
        bail!("no Tenant in the manifests matches {:?} (use its object name, tenant id or a domain)", args.resource);
    };
    let resource = policies.iter().find(|p| p.identity.tenant_id == desired.identity.tenant_id).with_context(|| {
        format!("tenant {} does not exist in the directory yet (explain without --current)", desired.identity.initial_domain)
    })?;
    let domain = email_domain(&args.user).to_ascii_lowercase();
    let managed_home =
        policies.iter().find(|p| p.identity.tenant_id != resource.identity.tenant_id && p.identity.owns_domain(&domain));
    // A partner that is not a Tenant of the manifests is reasoned about under stated assumptions.
    let unmanaged = (managed_home.is_none() && !resource.identity.owns_domain(&domain)).then(|| assumed_home(&domain));
    let home = managed_home.or(unmanaged.as_ref().map(|(policy, _)| policy));
    let guest = snapshots
        .iter()
        .find(|s| s.identity.tenant_id == resource.identity.tenant_id)
        .and_then(|s| s.guests.iter().find(|g| crate::core::validate::same_address(&g.mail, &args.user)));
    // Who the user is at home (id and groups), when the home tenant lives in the local directory.
    let home_is_local = managed_home.is_some_and(|h| {
        manifests.backends.get(&h.identity.tenant_id).is_some_and(|b| b.kind == crate::api::tenant::BackendKind::Local)
    });
    let home_user = match (managed_home, backends.local()) {
        (Some(h), Ok(local)) if home_is_local => local.user_by_mail(&h.identity.tenant_id, &args.user).ok().flatten(),
        _ => None,
    };
    let principal_ids = home_user.as_ref().map(|u| {
        let mut ids = vec![u.id.clone()];
        ids.extend(u.group_ids.iter().cloned());
        ids
    });
    let person = Person { email: &args.user, principal_ids, guest };
    // R16: the access packages of the resource tenant, as the manifests declare them (or, with
    // `--current`, as the directory holds them), with the user's current assignments when known.
    let current_state =
        snapshots.iter().find(|s| s.identity.tenant_id == resource.identity.tenant_id).and_then(|s| s.entitlement.as_ref());
    let view = if args.current {
        current_state.map(EntitlementView::from_state)
    } else {
        let mut v = manifests
            .desired
            .entitlement
            .get(&resource.identity.tenant_id)
            .map(EntitlementView::from_desired)
            .unwrap_or_default();
        v.assignments = current_state.map(|s| s.assignments.clone()).unwrap_or_default();
        Some(v)
    };
    let mut explanation = explain_with(resource, home, &person, &args.app, view.as_ref());
    // R18: the resource tenant's conditional access policies for external users: as the directory holds
    // them (`--current`), or the manifests' with the directory's other policies (after apply).
    let observed_ca = snapshots
        .iter()
        .find(|s| s.identity.tenant_id == resource.identity.tenant_id)
        .and_then(|s| s.conditional_access.as_ref())
        .map(|ps| ps.iter().map(|o| o.policy.clone()).collect::<Vec<_>>());
    let ca = if args.current {
        observed_ca
    } else {
        let declared: Vec<_> = manifests
            .desired
            .conditional_access
            .get(&resource.identity.tenant_id)
            .map(|ps| ps.iter().map(|d| d.policy.clone()).collect())
            .unwrap_or_default();
        let others = observed_ca
            .unwrap_or_default()
            .into_iter()
            .filter(|o| !declared.iter().any(|d| d.display_name.eq_ignore_ascii_case(&o.display_name)));
        Some(declared.iter().cloned().chain(others).collect())
    };
    crate::core::conditional_access::add_to_explanation(
        &mut explanation,
        resource,
        home,
        person.guest.map(|g| g.user_type),
        ca.as_deref(),
    );
    if let Some((_, assumptions)) = unmanaged {
        explanation.assumptions = assumptions;
    }
    // Conditional access may have closed a path since the first answer.
    explanation.reachable = explanation.reachable_now();
    if let (Some(h), false) = (managed_home, home_is_local) {
        explanation
            .assumptions
            .push(format!("the user has an account in {} (not looked up: that tenant's directory is Microsoft Graph)", h.name()));
    }
    match args.output {
        Report::Json | Report::Yaml => super::write_data(out, args.output == Report::Yaml, &serde_json::to_value(&explanation)?)?,
        Report::Text => {
            write!(out, "{}", render(&explanation))?;
            writeln!(out, "\n`entente rules R9` explains a rule tagged above; docs/rules.md has them all.")?;
        }
    }
    Ok(if explanation.reachable { exit::OK } else { exit::CHANGES_PENDING })
}
