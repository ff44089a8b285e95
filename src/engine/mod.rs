//! Observe → plan → apply: the one flow the CLI and the controller share.
//!
//! `observe` reads each tenant of the desired state from its directory in bulk (tenants concurrently),
//! the pure `core::plan::plan` decides, and `apply` executes each change's operations in plan order.

pub mod marker_key;
pub mod routes;
pub mod sync;
pub mod writer_lock;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::core::model::{DesiredState, DesiredTenant, Kind};
use crate::core::operation::Outcome;
use crate::core::plan::{Change, Observed, Plan, PlanOptions, plan};
use crate::core::policy::Refusal;
use crate::directory::{Directory, DirectoryError, SnapshotScope};

/// Which directory holds each tenant (by tenant id), or why none can be used.
pub type Routes = BTreeMap<String, Route>;

/// One tenant's directory, or why it cannot be used.
pub type Route = Result<Arc<dyn Directory>, String>;

/// How many tenants are read at once.
const READ_CONCURRENCY: usize = 8;

/// Reads every desired tenant from its directory.
pub async fn observe(desired: &DesiredState, routes: &Routes) -> Observed {
    // Owned (id, route) pairs: the future borrows nothing from `desired`, so it is `Send` in any executor.
    let targets: Vec<(String, SnapshotScope, Option<Route>)> = desired
        .tenants
        .iter()
        .map(|t| (t.identity.tenant_id.clone(), scope_of(desired, t), routes.get(&t.identity.tenant_id).cloned()))
        .collect();
    let reads = targets.into_iter().map(|(id, scope, route)| async move {
        let result = match route {
            Some(Ok(dir)) => dir.snapshot_of(&id, &scope).await.map_err(|e| e.to_string()),
            Some(Err(why)) => Err(why),
            None => Err("no directory is configured for this tenant".to_string()),
        };
        (id, result)
    });
    stream::iter(reads).buffer_unordered(READ_CONCURRENCY).collect::<Vec<_>>().await.into_iter().collect()
}

/// What a tenant's manifests name, for the backends that read parts of a tenant on demand: its groups,
/// and the kinds managed in it. Conditional access is always read: the access impact of any settings
/// change is judged against the tenant's policies (R18).
pub fn scope_of(desired: &DesiredState, t: &DesiredTenant) -> SnapshotScope {
    let mut groups = t.groups.clone();
    groups.extend(t.invitations.iter().flat_map(|i| i.groups.iter().cloned()));
    let id = &t.identity.tenant_id;
    let mut kinds: std::collections::BTreeSet<Kind> =
        [Kind::Tenant, Kind::CrossTenantAccessPolicy, Kind::GuestInvitation, Kind::SyncJob, Kind::ConditionalAccessPolicy].into();
    if !t.identity_providers.is_empty() || !t.sign_up_flows.is_empty() {
        kinds.extend([Kind::IdentityProvider, Kind::SignUpFlow]);
    }
    if desired.entitlement.keys().any(|k| k.eq_ignore_ascii_case(id)) {
        kinds.extend([Kind::ConnectedOrganization, Kind::AccessPackage]);
    }
    let in_organization = desired
        .multi_tenant_organizations
        .iter()
        .any(|m| std::iter::once(&m.owner).chain(&m.members).any(|p| p.tenant_id.eq_ignore_ascii_case(id)));
    if in_organization {
        kinds.insert(Kind::MultiTenantOrganization);
    }
    SnapshotScope { groups, kinds: Some(kinds) }
}

/// Observes and plans in one step.
pub async fn plan_against(desired: &DesiredState, routes: &Routes, options: PlanOptions) -> Plan {
    plan(desired, &observe(desired, routes).await, options)
}

/// What happened to one change of the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum ChangeResult {
    /// Nothing to write (unchanged, refused by the planner, drift only reported).
    Nothing,
    Applied {
        writes: usize,
        outcomes: Vec<Outcome>,
    },
    /// The directory refused it by a rule; nothing was written.
    Refused {
        refusal: Refusal,
    },
    Failed {
        category: String,
        message: String,
    },
    /// Not attempted because an earlier change it depends on failed.
    Skipped {
        reason: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    /// One result per change of the plan, in the same order.
    pub results: Vec<ChangeResult>,
    pub writes: usize,
}

impl ApplyReport {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| matches!(r, ChangeResult::Failed { .. } | ChangeResult::Skipped { .. })).count()
    }
}

/// Executes the plan's changes in order. When a tenant's own change fails, the tenant's other changes
/// are skipped: they were planned against settings that are not in place.
pub async fn apply(plan: &Plan, routes: &Routes) -> ApplyReport {
    apply_reporting(plan, routes, |_, _| {}).await
}

/// `apply`, telling `landed` about each change's result as soon as it is known (the CLI's progress).
pub async fn apply_reporting(plan: &Plan, routes: &Routes, mut landed: impl FnMut(&Change, &ChangeResult)) -> ApplyReport {
    let mut report = ApplyReport::default();
    let mut failed_tenants: HashSet<String> = HashSet::new();
    for change in &plan.changes {
        let result = apply_change(change, routes, &failed_tenants).await;
        landed(change, &result);
        match &result {
            ChangeResult::Applied { writes, .. } => report.writes += writes,
            ChangeResult::Failed { .. } | ChangeResult::Skipped { .. } if change.object.kind == Kind::Tenant => {
                failed_tenants.insert(change.tenant_id.clone());
            }
            _ => {}
        }
        report.results.push(result);
    }
    report
}

async fn apply_change(change: &Change, routes: &Routes, failed_tenants: &HashSet<String>) -> ChangeResult {
    if change.ops.is_empty() {
        return ChangeResult::Nothing;
    }
    if failed_tenants.contains(&change.tenant_id) {
        return ChangeResult::Skipped { reason: format!("the Tenant change for {} failed", change.tenant_id) };
    }
    let dir = match routes.get(&change.tenant_id) {
        Some(Ok(d)) => d,
        Some(Err(why)) => return ChangeResult::Failed { category: "NoDirectory".into(), message: why.clone() },
        None => return ChangeResult::Failed { category: "NoDirectory".into(), message: "no directory for this tenant".into() },
    };
    match dir.apply(&change.tenant_id, &change.ops).await {
        Ok(outcomes) => ChangeResult::Applied { writes: change.ops.len(), outcomes },
        Err(DirectoryError::Refused(refusal)) => ChangeResult::Refused { refusal },
        Err(e) => ChangeResult::Failed { category: e.category().to_string(), message: e.to_string() },
    }
}
