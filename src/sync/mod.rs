//! Cross-tenant synchronization (R13), run by entente itself: the same engine on every backend.
//!
//! - `run`: one run of a job (read changes, decide with `core::sync`, write the target, remember);
//! - `store`: what a job remembers between runs (cursor, per-user rows, health, last report);
//! - here: when a job is due, and which prerequisites (R12, R13) are missing, from the directory's
//!   state or from the state the manifests will bring.

pub mod run;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub use run::{RunOptions, SyncRunReport, job_key, run_job};
pub use store::{DEFAULT_SYNC_STATE_FILE, SyncStore};

use crate::core::model::{DesiredState, TenantSnapshot};
use crate::core::plan::{Observed, desired_policies};
use crate::core::policy::TenantPolicy;
use crate::core::settings::IdentitySynchronization;
use crate::core::sync::{DesiredSyncJob, MissingPrerequisite, prerequisites};
use store::JobState;

/// Whether a job should run now, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Run now: the reason (first run, settings changed, interval elapsed, provision on demand).
    Now(String),
    /// Not before this time.
    At(DateTime<Utc>),
    /// Suspended.
    Paused,
}

/// When `job` runs next, given what the store remembers of it.
pub fn due(job: &DesiredSyncJob, state: Option<&JobState>, now: DateTime<Utc>) -> Due {
    if job.suspended {
        return Due::Paused;
    }
    let Some(state) = state else { return Due::Now("first run".into()) };
    if state.cursor.is_none() || state.fingerprint != job.fingerprint() {
        return Due::Now("the job's settings changed: full resync".into());
    }
    let Some(last) = state.last_run.as_deref().and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return Due::Now("no completed run".into());
    };
    let next = last.with_timezone(&Utc) + chrono::Duration::from_std(job.interval).unwrap_or(chrono::Duration::minutes(40));
    if next <= now { Due::Now("interval elapsed".into()) } else { Due::At(next) }
}

/// The provision-on-demand users not served yet (the annotation's value differs from the last one served).
pub fn pending_on_demand(job: &DesiredSyncJob, state: Option<&JobState>) -> Vec<String> {
    let asked = job.provision_on_demand.join(",");
    if job.provision_on_demand.is_empty() || state.and_then(|s| s.on_demand_done.as_deref()) == Some(asked.as_str()) {
        return vec![];
    }
    job.provision_on_demand.clone()
}

/// R12/R13 against what two directories hold now.
pub fn missing_in_directory(job: &DesiredSyncJob, source: &TenantSnapshot, target: &TenantSnapshot) -> Vec<MissingPrerequisite> {
    let sync = target
        .partners
        .iter()
        .find(|p| p.tenant_id.eq_ignore_ascii_case(&job.source_tenant_id))
        .and_then(|p| p.identity_synchronization.as_ref());
    prerequisites(&TenantPolicy::from_snapshot(source), &TenantPolicy::from_snapshot(target), sync)
}

/// R12/R13 against the state the manifests will bring once applied (for `plan`).
pub fn missing_after_apply(job: &DesiredSyncJob, desired: &DesiredState, observed: &Observed) -> Vec<MissingPrerequisite> {
    let policies: BTreeMap<String, TenantPolicy> =
        desired_policies(desired, observed).into_iter().map(|p| (p.identity.tenant_id.clone(), p)).collect();
    let (Some(source), Some(target)) = (policies.get(&job.source_tenant_id), policies.get(&job.target_tenant_id)) else {
        return vec![];
    };
    let declared = desired.tenants.iter().find(|t| t.identity.tenant_id == job.target_tenant_id).and_then(|t| {
        t.partners.iter().find(|p| p.partner_tenant_id == job.source_tenant_id).map(|p| p.identity_synchronization.clone())
    });
    let sync: Option<IdentitySynchronization> = match declared {
        Some(declared) => declared,
        None => match observed.get(&job.target_tenant_id) {
            Some(Ok(Some(s))) => {
                s.partners.iter().find(|p| p.tenant_id == job.source_tenant_id).and_then(|p| p.identity_synchronization.clone())
            }
            _ => None,
        },
    };
    prerequisites(source, target, sync.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{Kind, ObjectRef, UserType};

    fn job() -> DesiredSyncJob {
        DesiredSyncJob { mappings: vec![], ..DesiredSyncJob::new(ObjectRef::new(Kind::SyncJob, "default", "j"), "s", "t") }
    }

    #[test]
    fn a_job_is_due_first_after_a_settings_change_and_after_its_interval() {
        let j = job();
        let now = Utc::now();
        assert!(matches!(due(&j, None, now), Due::Now(_)));
        let ran = JobState {
            fingerprint: j.fingerprint(),
            cursor: Some("1".into()),
            last_run: Some(now.to_rfc3339()),
            ..JobState::default()
        };
        assert!(matches!(due(&j, Some(&ran), now), Due::At(_)));
        assert!(matches!(due(&j, Some(&ran), now + chrono::Duration::minutes(41)), Due::Now(_)));
        let changed = DesiredSyncJob { user_type: UserType::Guest, ..j.clone() };
        assert_eq!(due(&changed, Some(&ran), now), Due::Now("the job's settings changed: full resync".into()));
        assert_eq!(due(&DesiredSyncJob { suspended: true, ..j }, Some(&ran), now), Due::Paused);
    }

    #[test]
    fn provision_on_demand_is_served_once_per_request() {
        let j = DesiredSyncJob { provision_on_demand: vec!["alice@contoso.com".into()], ..job() };
        assert_eq!(pending_on_demand(&j, None), vec!["alice@contoso.com".to_string()]);
        let served = JobState { on_demand_done: Some("alice@contoso.com".into()), ..JobState::default() };
        assert!(pending_on_demand(&j, Some(&served)).is_empty());
    }
}
