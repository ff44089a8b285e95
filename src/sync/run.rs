//! One run of a sync job: read what changed in the source, decide per user (core::sync), write the
//! target, remember the outcome.
//!
//! The run reads only what changed since its cursor (a full read the first time, after the job's
//! settings changed, or when the directory dropped the cursor), and compares each changed user with
//! what the last run wrote, so an unchanged source costs one read and no write. Writes go in chunks
//! through `Directory::apply`; a chunk that fails is replayed one user at a time, so one bad user
//! never blocks the others. A failure of the target itself (unreachable, throttled past retries,
//! unauthorized) stops the run without moving the cursor: the next run picks up the same changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::store::{JobState, ScopeUpdate, SyncStore, SyncedUser, UserState};
use crate::core::model::ObjectRef;
use crate::core::operation::{GuestPatch, Operation, Outcome, ProvisionRequest};
use crate::core::sync::{
    DesiredSyncJob, DirectoryUser, JobHealth, LeavingScope, MAX_REPORTED_ERRORS, MissingPrerequisite, SyncCounts, SyncJobState,
    SyncUserError, TargetUser, UserChanges,
};
use crate::directory::{Directory, DirectoryError};

/// Writes sent to the target in one `apply`.
const CHUNK: usize = 100;
/// Planned writes a dry run lists (the counts stay exact).
const MAX_LISTED: usize = 50;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Read the source in full even if a cursor exists (a resync).
    pub full: bool,
    /// Decide and report, but write nothing and remember nothing (what `plan` shows).
    pub dry_run: bool,
    /// Provision on demand: only these source users (id, user principal name or mail), now; the
    /// cursor does not move.
    pub only_users: Vec<String>,
    /// Read the scope groups' membership in full even where a membership cursor exists (users are
    /// still read from their cursor). `full` implies it.
    pub full_membership: bool,
}

/// What one run did (or, in a dry run, would do).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRunReport {
    pub job: ObjectRef,
    /// The MultiTenantOrganization that generated the job, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_by: Option<ObjectRef>,
    pub source_tenant_id: String,
    pub target_tenant_id: String,
    pub state: SyncJobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine_reason: Option<String>,
    /// Whether the source was read in full.
    pub full: bool,
    pub dry_run: bool,
    /// Provision on demand: the users asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub on_demand: Vec<String>,
    pub counts: SyncCounts,
    /// The first errors, with the user each concerns.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<SyncUserError>,
    /// Settings that must change first (R12, R13); nothing was read or written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_prerequisites: Vec<MissingPrerequisite>,
    /// Why the run failed as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What the run had to do differently (a membership cursor the source refused, read in full).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Source users synchronized into the target after the run.
    pub users_in_scope: u64,
    /// Directory calls the run made (reads and applies; a Graph call may be several requests).
    pub directory_calls: u64,
    /// In a dry run: the writes it would make, the first few.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<String>,
    pub finished_at: String,
    /// When the next scheduled run is due (none while paused or in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

impl SyncRunReport {
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }
}

/// The store's key for a job.
pub fn job_key(job: &DesiredSyncJob) -> String {
    format!("{}/{}", job.object.namespace, job.object.name)
}

/// The scope groups' membership after a run's read.
#[derive(Default)]
struct ScopeChanges {
    /// The members of any scope group, now.
    members: BTreeSet<String>,
    /// Some group was read in full (or never before): compare the members with every row.
    full: bool,
    /// Members now who were in no scope group at the last run.
    entered: BTreeSet<String>,
    /// Members at the last run who are in no scope group now.
    left: BTreeSet<String>,
    updates: BTreeMap<String, ScopeUpdate>,
}

/// What to write for one source user.
struct Decision {
    source_id: String,
    address: String,
    op: Operation,
    /// The row to keep when the write succeeds (`None`: drop it).
    row: Option<SyncedUser>,
    kind: WriteKind,
    describe: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Created,
    Updated,
    Deleted,
    Disabled,
}

struct Run<'a> {
    job: &'a DesiredSyncJob,
    key: String,
    counts: SyncCounts,
    errors: Vec<SyncUserError>,
    calls: u64,
    planned: Vec<String>,
    /// Rows to write to the store at the end (or after each chunk).
    rows: Vec<(String, Option<SyncedUser>)>,
    /// What the run read of the scope groups, recorded when it succeeds.
    scope_updates: Option<BTreeMap<String, ScopeUpdate>>,
    notes: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(job: &'a DesiredSyncJob) -> Self {
        Run {
            job,
            key: job_key(job),
            counts: SyncCounts::default(),
            errors: vec![],
            calls: 0,
            planned: vec![],
            rows: vec![],
            scope_updates: None,
            notes: vec![],
        }
    }

    fn error(&mut self, user: &str, reason: &str, message: String) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(SyncUserError { user: user.to_string(), reason: reason.to_string(), message });
        }
    }
}

/// Runs `job` once. `missing` are the prerequisites the caller found missing (R12, R13, see
/// `core::sync::prerequisites`); when there are any, nothing is read or written.
pub async fn run_job(
    job: &DesiredSyncJob,
    source: &dyn Directory,
    target: &dyn Directory,
    store: &SyncStore,
    missing: Vec<MissingPrerequisite>,
    options: &RunOptions,
) -> Result<SyncRunReport, DirectoryError> {
    let key = job_key(job);
    let fingerprint = job.fingerprint();
    let (mut state, stored) = match store.job(&key)? {
        // Another source or target is another job: start over (the users already in the old target stay).
        Some(s) if s.source_tenant_id == job.source_tenant_id && s.target_tenant_id == job.target_tenant_id => (s, true),
        Some(_) => {
            if !options.dry_run {
                store.forget_job(&key)?;
            }
            (JobState::default(), false)
        }
        None => (JobState::default(), false),
    };
    state.source_tenant_id = job.source_tenant_id.clone();
    state.target_tenant_id = job.target_tenant_id.clone();
    let mut run = Run { key: key.clone(), ..Run::new(job) };

    if job.suspended {
        return report(&run, &state, store, options, false, None, missing, SyncJobState::Paused);
    }
    if !stored && !options.dry_run {
        // The users' rows refer to the job's row: it must exist before the first write lands.
        store.put_job(&key, &state)?;
    }
    let full = options.full || state.cursor.is_none() || state.fingerprint != fingerprint;
    let outcome = if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|m| format!("{} in {}", m.setting, m.tenant)).collect();
        Err(format!("prerequisites missing (R12, R13): {}", names.join("; ")))
    } else if !options.only_users.is_empty() {
        run.on_demand(source, target, store, options).await.map(|()| None)
    } else {
        run.scheduled(source, target, store, options, full, state.cursor.as_deref()).await
    };
    let (failure, read_full) = match outcome {
        Ok(Some((cursor, read_full))) => {
            state.cursor = Some(cursor);
            state.fingerprint = fingerprint;
            if let Some(updates) = run.scope_updates.take().filter(|_| !options.dry_run) {
                store.put_scope_groups(&key, &updates)?;
            }
            (None, read_full)
        }
        Ok(None) => (None, false),
        Err(why) => (Some(why), full),
    };
    finish(&run, state, store, options, read_full, failure, missing)
}

/// Records a run that failed before it could start (the tenants could not be read): it counts
/// towards quarantine like any failed run.
pub fn record_failure(job: &DesiredSyncJob, store: &SyncStore, why: String) -> Result<SyncRunReport, DirectoryError> {
    let key = job_key(job);
    let mut state = store.job(&key)?.unwrap_or_default();
    state.source_tenant_id = job.source_tenant_id.clone();
    state.target_tenant_id = job.target_tenant_id.clone();
    let run = Run { key, ..Run::new(job) };
    finish(&run, state, store, &RunOptions::default(), false, Some(why), vec![])
}

/// Updates the job's health and memory (unless a dry run) and reports.
fn finish(
    run: &Run<'_>,
    mut state: JobState,
    store: &SyncStore,
    options: &RunOptions,
    full: bool,
    failure: Option<String>,
    missing: Vec<MissingPrerequisite>,
) -> Result<SyncRunReport, DirectoryError> {
    if options.dry_run {
        let state_now = state.health.state(false);
        return report(run, &state, store, options, full, failure, missing, state_now);
    }
    state.health = state.health.after_run(failure.clone());
    state.last_run = Some(now());
    if !options.only_users.is_empty() {
        state.on_demand_done = Some(options.only_users.join(","));
    }
    let job_state = state.health.state(false);
    let r = report(run, &state, store, options, full, failure, missing, job_state)?;
    state.last_report = Some(serde_json::to_string(&r).expect("a report serializes"));
    store.put_job(&run.key, &state)?;
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
fn report(
    run: &Run<'_>,
    state: &JobState,
    store: &SyncStore,
    options: &RunOptions,
    full: bool,
    failure: Option<String>,
    missing: Vec<MissingPrerequisite>,
    job_state: SyncJobState,
) -> Result<SyncRunReport, DirectoryError> {
    let health: &JobHealth = &state.health;
    Ok(SyncRunReport {
        job: run.job.object.clone(),
        generated_by: run.job.generated_by.clone(),
        source_tenant_id: run.job.source_tenant_id.clone(),
        target_tenant_id: run.job.target_tenant_id.clone(),
        state: job_state,
        quarantine_reason: if job_state == SyncJobState::Quarantine { health.quarantine_reason() } else { None },
        full,
        dry_run: options.dry_run,
        on_demand: options.only_users.clone(),
        counts: run.counts,
        errors: run.errors.clone(),
        missing_prerequisites: missing,
        failure,
        notes: run.notes.clone(),
        users_in_scope: store.count(&run.key, UserState::Synced)?,
        directory_calls: run.calls,
        planned: run.planned.clone(),
        finished_at: now(),
        next_run: (job_state != SyncJobState::Paused && !options.dry_run).then(|| {
            let next = chrono::Utc::now() + chrono::Duration::from_std(run.job.interval).unwrap_or(chrono::Duration::minutes(40));
            next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }),
    })
}

impl Run<'_> {
    /// A scheduled run: changes since the cursor (or everything), plus users to retry and, for a
    /// group-scoped job, users who joined or left the scope's groups. Returns the new cursor.
    async fn scheduled(
        &mut self,
        source: &dyn Directory,
        target: &dyn Directory,
        store: &SyncStore,
        options: &RunOptions,
        full: bool,
        cursor: Option<&str>,
    ) -> Result<Option<(String, bool)>, String> {
        let job = self.job;
        let src = &job.source_tenant_id;
        self.calls += 1;
        let changes: UserChanges = source
            .user_changes(src, if full { None } else { cursor })
            .await
            .map_err(|e| format!("reading the source tenant {src}: {e}"))?;
        // The membership cursors are tried even when the source dropped the users' cursor: each
        // source refuses its own.
        let scope = self.scope_changes(source, store, full || options.full_membership).await?;
        let full = full || changes.full;
        let members = scope.as_ref().map(|s| &s.members);
        // Membership read in full: compared with every row, as a full read of users is.
        let compare_all = scope.as_ref().is_some_and(|s| s.full);

        let mut users: BTreeMap<String, DirectoryUser> = changes.users.into_iter().map(|u| (u.id.clone(), u)).collect();
        let mut gone: BTreeSet<String> = changes.removed.into_iter().filter(|id| !users.contains_key(id)).collect();
        let stored = if full || compare_all { Some(store_read(store.all_users(&self.key))?) } else { None };
        // Users to look at besides the changed ones: retries, and group joiners not in this change set.
        let mut fetch: BTreeSet<String> = store_read(store.users_in_state(&self.key, UserState::Retry))?.into_keys().collect();
        match (&scope, &stored) {
            (Some(scope), Some(stored)) if compare_all => {
                fetch.extend(scope.members.iter().filter(|id| !stored.contains_key(*id)).cloned());
                // Members who left a scope group without another change: they leave scope.
                gone.extend(stored.keys().filter(|id| !scope.members.contains(*id) && !users.contains_key(*id)).cloned());
            }
            (Some(scope), _) => {
                // Only the membership changes: who entered the scope's groups, who left them all.
                fetch.extend(scope.entered.iter().cloned());
                let left: Vec<String> = scope.left.iter().filter(|id| !users.contains_key(*id)).cloned().collect();
                gone.extend(store_read(store.users(&self.key, &left))?.into_keys());
            }
            (None, _) => {}
        }
        if full && let Some(stored) = &stored {
            // Rows of users the full read did not return: deleted at the source.
            gone.extend(stored.keys().filter(|id| !users.contains_key(*id)).cloned());
        }
        fetch.retain(|id| !users.contains_key(id) && !gone.contains(id));
        if !fetch.is_empty() {
            let ids: Vec<String> = fetch.iter().cloned().collect();
            self.calls += 1;
            let found = source.users_by_id(src, &ids).await.map_err(|e| format!("reading the source tenant {src}: {e}"))?;
            let found_ids: BTreeSet<String> = found.iter().map(|u| u.id.clone()).collect();
            gone.extend(fetch.difference(&found_ids).cloned());
            users.extend(found.into_iter().map(|u| (u.id.clone(), u)));
        }
        self.process(target, store, options, users.into_values().collect(), gone, members).await?;
        if let Some(scope) = scope {
            self.scope_updates = Some(scope.updates);
        }
        Ok(Some((changes.cursor, full)))
    }

    /// Provision on demand: the named users only.
    async fn on_demand(
        &mut self,
        source: &dyn Directory,
        target: &dyn Directory,
        store: &SyncStore,
        options: &RunOptions,
    ) -> Result<(), String> {
        let src = &self.job.source_tenant_id;
        let reading = |e: DirectoryError| format!("reading the source tenant {src}: {e}");
        // Users named by id are read by id; those named by mail or user principal name (which
        // `users_by_id` does not resolve, and Graph's backend refuses as ids) are found in a full read
        // of the source. The cursor does not move either way.
        let looks_like_id = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let ids: Vec<String> =
            options.only_users.iter().map(|k| k.trim()).filter(|k| looks_like_id(k)).map(String::from).collect();
        let mut found = Vec::new();
        if !ids.is_empty() {
            self.calls += 1;
            found = source.users_by_id(src, &ids).await.map_err(reading)?;
        }
        let unresolved: Vec<&String> = options.only_users.iter().filter(|k| !found.iter().any(|u| u.is_named(k))).collect();
        if !unresolved.is_empty() {
            self.calls += 1;
            let all = source.user_changes(src, None).await.map_err(reading)?;
            found.extend(all.users.into_iter().filter(|u| unresolved.iter().any(|k| u.is_named(k))));
        }
        let mut seen = BTreeSet::new();
        found.retain(|u| seen.insert(u.id.clone()));
        for key in &options.only_users {
            if !found.iter().any(|u| u.is_named(key)) {
                self.counts.failed += 1;
                self.error(key, "NotFound", format!("no user {key} in the source tenant {src}"));
            }
        }
        let members = self.scope_members(source).await?;
        self.process(target, store, options, found, BTreeSet::new(), members.as_ref()).await
    }

    /// The scope groups' membership from what the last run recorded and what changed since
    /// (`Directory::group_member_changes` from each group's cursor; in full with `full`, the first time,
    /// or when the source refuses a cursor, which the report notes). `None` when the scope names no
    /// groups.
    async fn scope_changes(
        &mut self,
        source: &dyn Directory,
        store: &SyncStore,
        full: bool,
    ) -> Result<Option<ScopeChanges>, String> {
        let job = self.job;
        if job.scope.groups.is_empty() {
            return Ok(None);
        }
        let src = &job.source_tenant_id;
        let stored = store_read(store.scope_groups(&self.key))?;
        let mut scope = ScopeChanges::default();
        let mut before = BTreeSet::new();
        for g in &job.scope.groups {
            let old = stored.get(g);
            before.extend(old.iter().flat_map(|o| o.members.iter().cloned()));
            let cursor = if full { None } else { old.and_then(|o| o.cursor.as_deref()) };
            self.calls += 1;
            let changes = match source.group_member_changes(src, g, cursor).await {
                Ok(Some(c)) => c,
                Ok(None) => return Err(format!("scope group {g:?} does not exist in the source tenant {src}")),
                Err(e) => return Err(format!("reading scope group {g:?} of the source tenant {src}: {e}")),
            };
            if cursor.is_some() && changes.full {
                let note =
                    format!("the source refused the membership cursor of scope group {g:?} (expired): read its members in full");
                tracing::warn!(job = %self.key, "{note}");
                self.notes.push(note);
            }
            let now: BTreeSet<String> = if changes.full || old.is_none() {
                changes.added.clone()
            } else {
                let mut m = old.map(|o| o.members.clone()).unwrap_or_default();
                m.retain(|id| !changes.removed.contains(id));
                m.extend(changes.added.iter().cloned());
                m
            };
            scope.full |= changes.full || old.is_none();
            scope.members.extend(now);
            scope.updates.insert(
                g.clone(),
                ScopeUpdate {
                    cursor: changes.cursor,
                    full: changes.full || old.is_none(),
                    added: changes.added,
                    removed: changes.removed,
                },
            );
        }
        scope.entered = scope.members.difference(&before).cloned().collect();
        scope.left = before.difference(&scope.members).cloned().collect();
        Ok(Some(scope))
    }

    /// The ids of the members of the scope's groups; `None` when the scope names no groups.
    async fn scope_members(&mut self, source: &dyn Directory) -> Result<Option<BTreeSet<String>>, String> {
        let job = self.job;
        if job.scope.groups.is_empty() {
            return Ok(None);
        }
        let mut members = BTreeSet::new();
        for g in &job.scope.groups {
            self.calls += 1;
            match source.group_member_ids(&job.source_tenant_id, g).await {
                Ok(Some(ids)) => members.extend(ids),
                Ok(None) => {
                    return Err(format!("scope group {g:?} does not exist in the source tenant {}", job.source_tenant_id));
                }
                Err(e) => return Err(format!("reading scope group {g:?} of the source tenant {}: {e}", job.source_tenant_id)),
            }
        }
        Ok(Some(members))
    }

    /// Decides for each user, then writes.
    async fn process(
        &mut self,
        target: &dyn Directory,
        store: &SyncStore,
        options: &RunOptions,
        users: Vec<DirectoryUser>,
        gone: BTreeSet<String>,
        members: Option<&BTreeSet<String>>,
    ) -> Result<(), String> {
        let ids: Vec<String> = users.iter().map(|u| u.id.clone()).chain(gone.iter().cloned()).collect();
        let rows = store_read(store.users(&self.key, &ids))?;
        let mut decisions = Vec::new();
        for user in &users {
            let row = rows.get(&user.id);
            if self.job.in_scope(user, members) {
                if let Some(d) = self.decide_in_scope(user, row) {
                    decisions.push(d);
                }
            } else if let Some(d) = row.and_then(|r| self.decide_leaving(r)) {
                decisions.push(d);
            } else {
                self.counts.skipped += 1;
            }
        }
        for id in &gone {
            match rows.get(id).and_then(|r| self.decide_leaving(r)) {
                Some(d) => decisions.push(d),
                None => self.counts.skipped += 1,
            }
        }
        if options.dry_run {
            for d in &decisions {
                self.count(d.kind);
                if self.planned.len() < MAX_LISTED {
                    self.planned.push(d.describe.clone());
                }
            }
            return Ok(());
        }
        self.write(target, store, decisions).await
    }

    fn decide_in_scope(&mut self, user: &DirectoryUser, row: Option<&SyncedUser>) -> Option<Decision> {
        let address = user.address().unwrap_or(&user.id).to_string();
        let desired = match self.job.map_user(user) {
            Ok(t) => t,
            Err(why) => {
                self.counts.skipped += 1;
                self.error(&address, "Unmappable", format!("{address} {why}"));
                return None;
            }
        };
        let synced = |target_id: String, applied: TargetUser| SyncedUser {
            source_id: user.id.clone(),
            target_id: Some(target_id),
            address: address.clone(),
            applied: Some(applied),
            state: UserState::Synced,
        };
        match row {
            Some(SyncedUser { target_id: Some(tid), applied: Some(applied), .. }) => {
                let patch = desired.patch_from(applied);
                if patch.is_empty() {
                    if row.is_some_and(|r| r.state != UserState::Synced) {
                        // A retried user whose values already landed: only the row changes.
                        self.rows.push((user.id.clone(), Some(synced(tid.clone(), desired))));
                    }
                    self.counts.unchanged += 1;
                    return None;
                }
                let describe = format!("update {address} ({})", patch_fields(&patch).join(", "));
                Some(Decision {
                    source_id: user.id.clone(),
                    address: address.clone(),
                    op: Operation::UpdateGuest { user_id: tid.clone(), patch },
                    row: Some(synced(tid.clone(), desired)),
                    kind: WriteKind::Updated,
                    describe,
                })
            }
            _ => Some(Decision {
                source_id: user.id.clone(),
                address: address.clone(),
                describe: format!("create {}", desired.mail),
                op: Operation::ProvisionUser {
                    user: ProvisionRequest {
                        mail: desired.mail.clone(),
                        display_name: desired.display_name.clone(),
                        user_type: desired.user_type,
                        account_enabled: desired.account_enabled,
                        attributes: desired.attributes.clone(),
                        source_tenant_id: self.job.source_tenant_id.clone(),
                    },
                },
                // The target id is filled in from the outcome.
                row: Some(SyncedUser {
                    source_id: user.id.clone(),
                    target_id: None,
                    address,
                    applied: Some(desired),
                    state: UserState::Synced,
                }),
                kind: WriteKind::Created,
            }),
        }
    }

    /// A synchronized user left scope (or the source): per `onLeavingScope`.
    fn decide_leaving(&mut self, row: &SyncedUser) -> Option<Decision> {
        let Some(tid) = row.target_id.clone() else {
            // Never created (a failed first write): nothing to undo.
            self.rows.push((row.source_id.clone(), None));
            return None;
        };
        match (self.job.on_leaving_scope, row.state) {
            (LeavingScope::Delete, _) => Some(Decision {
                source_id: row.source_id.clone(),
                address: row.address.clone(),
                op: Operation::DeleteGuest { user_id: tid },
                row: None,
                kind: WriteKind::Deleted,
                describe: format!("delete {} (left scope)", row.address),
            }),
            (LeavingScope::Disable, UserState::Disabled) => None,
            (LeavingScope::Disable, _) => {
                let applied = row.applied.clone().map(|a| TargetUser { account_enabled: false, ..a });
                Some(Decision {
                    source_id: row.source_id.clone(),
                    address: row.address.clone(),
                    op: Operation::UpdateGuest {
                        user_id: tid.clone(),
                        patch: GuestPatch { account_enabled: Some(false), ..GuestPatch::default() },
                    },
                    row: Some(SyncedUser { applied, state: UserState::Disabled, ..row.clone() }),
                    kind: WriteKind::Disabled,
                    describe: format!("disable {} (left scope)", row.address),
                })
            }
            (LeavingScope::Ignore, _) => {
                self.rows.push((row.source_id.clone(), None));
                None
            }
        }
    }

    fn count(&mut self, kind: WriteKind) {
        match kind {
            WriteKind::Created => self.counts.created += 1,
            WriteKind::Updated => self.counts.updated += 1,
            WriteKind::Deleted => self.counts.deleted += 1,
            WriteKind::Disabled => self.counts.disabled += 1,
        }
    }

    /// Writes in chunks; a failed chunk is replayed one user at a time. Stops at the first failure of
    /// the target itself, keeping what succeeded.
    async fn write(&mut self, target: &dyn Directory, store: &SyncStore, decisions: Vec<Decision>) -> Result<(), String> {
        let tgt = self.job.target_tenant_id.clone();
        let mut systemic = None;
        for chunk in decisions.chunks(CHUNK) {
            let ops: Vec<Operation> = chunk.iter().map(|d| d.op.clone()).collect();
            self.calls += 1;
            match target.apply(&tgt, &ops).await {
                Ok(outcomes) => {
                    for (d, outcome) in chunk.iter().zip(outcomes) {
                        self.succeeded(d, outcome);
                    }
                }
                Err(_) if chunk.len() > 1 => {
                    for d in chunk {
                        self.calls += 1;
                        match target.apply(&tgt, std::slice::from_ref(&d.op)).await {
                            Ok(mut outcomes) => self.succeeded(d, outcomes.pop().unwrap_or(Outcome::Done)),
                            Err(e) => {
                                if let Some(why) = self.failed(d, &e) {
                                    systemic = Some(why);
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => systemic = chunk.first().and_then(|d| self.failed(d, &e)),
            }
            store_read(store.put_users(&self.key, &std::mem::take(&mut self.rows)))?;
            if systemic.is_some() {
                break;
            }
        }
        store_read(store.put_users(&self.key, &std::mem::take(&mut self.rows)))?;
        match systemic {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    fn succeeded(&mut self, d: &Decision, outcome: Outcome) {
        self.count(d.kind);
        let row = d.row.clone().map(|mut row| {
            if let Outcome::Invited(result) = outcome {
                row.target_id = Some(result.user_id);
            }
            row
        });
        self.rows.push((d.source_id.clone(), row));
    }

    /// Records a failed write; returns why the run must stop when the target itself failed.
    fn failed(&mut self, d: &Decision, e: &DirectoryError) -> Option<String> {
        self.counts.failed += 1;
        self.error(&d.address, e.category(), e.to_string());
        // Keep what is known (the target id, the values that did land) and retry next run.
        let retry = match &d.op {
            Operation::ProvisionUser { .. } => SyncedUser {
                target_id: None,
                applied: None,
                state: UserState::Retry,
                ..d.row.clone().expect("a create keeps a row")
            },
            Operation::UpdateGuest { user_id, .. } | Operation::DeleteGuest { user_id } => SyncedUser {
                source_id: d.source_id.clone(),
                target_id: Some(user_id.clone()),
                address: d.address.clone(),
                applied: None,
                state: UserState::Retry,
            },
            _ => return None,
        };
        // An unknown applied state means the next attempt rewrites every mapped value.
        let retry = match (&d.op, d.row.as_ref()) {
            (Operation::UpdateGuest { .. }, Some(row)) => {
                SyncedUser { applied: row.applied.clone().map(|_| TargetUser::default()), ..retry }
            }
            _ => retry,
        };
        self.rows.push((d.source_id.clone(), Some(retry)));
        is_systemic(e).then(|| format!("the target tenant {} failed: {e}", self.job.target_tenant_id))
    }
}

/// Whether an error is the target's (unreachable, unauthorized, throttled past retries), not the user's.
fn is_systemic(e: &DirectoryError) -> bool {
    match e {
        DirectoryError::Refused(_) | DirectoryError::Invalid(_) | DirectoryError::Conflict(_) | DirectoryError::NotFound(_) => {
            false
        }
        DirectoryError::Graph(g) => !matches!(g.status, 400 | 404 | 409),
        _ => true,
    }
}

fn patch_fields(p: &GuestPatch) -> Vec<String> {
    let mut f = Vec::new();
    if p.display_name.is_some() {
        f.push("displayName".to_string());
    }
    if p.mail.is_some() {
        f.push("mail".to_string());
    }
    if p.user_type.is_some() {
        f.push("userType".to_string());
    }
    if p.account_enabled.is_some() {
        f.push("accountEnabled".to_string());
    }
    f.extend(p.attributes.keys().cloned());
    f
}

fn store_read<T>(r: Result<T, DirectoryError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
