//! What a sync job remembers between runs, in a SQLite file of its own (by default `.entente/sync.db`
//! next to the local directory): where the source read stopped (its cursor), the settings the users
//! were written with (a fingerprint), the job's health, its last report, and for each source user the
//! target user it became and the values last written there.
//!
//! The per-user rows make a run cheap and safe: an unchanged user is compared with what was written
//! (no read of the target), a user deleted at the source is found by id, and a user whose write
//! failed is retried on the next run even though the cursor moved on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::core::sync::{JobHealth, TargetUser};
use crate::directory::{DirectoryError, state_file};

/// The default sync state file, next to the local directory file.
pub const DEFAULT_SYNC_STATE_FILE: &str = "sync.db";

const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE jobs (
        job TEXT PRIMARY KEY,
        source_tenant_id TEXT NOT NULL,
        target_tenant_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        cursor TEXT,
        health_json TEXT NOT NULL,
        last_run TEXT,
        last_report_json TEXT,
        on_demand_done TEXT
    );
    CREATE TABLE users (
        job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
        source_id TEXT NOT NULL,
        target_id TEXT,
        address TEXT NOT NULL,
        applied_json TEXT,
        state TEXT NOT NULL,
        PRIMARY KEY (job, source_id)
    );
    CREATE INDEX users_by_state ON users(job, state);
"#,
    // 2: the members of each scope group as last read, and where the next membership read starts
    // (`Directory::group_member_changes`), so a run reads only membership changes.
    r#"
    CREATE TABLE scope_groups (
        job TEXT NOT NULL REFERENCES jobs(job) ON DELETE CASCADE,
        name TEXT NOT NULL,
        cursor TEXT,
        PRIMARY KEY (job, name)
    );
    CREATE TABLE scope_members (
        job TEXT NOT NULL,
        name TEXT NOT NULL,
        member_id TEXT NOT NULL,
        PRIMARY KEY (job, name, member_id),
        FOREIGN KEY (job, name) REFERENCES scope_groups(job, name) ON DELETE CASCADE
    );
"#,
];

/// A job's memory (without its users).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    pub source_tenant_id: String,
    pub target_tenant_id: String,
    pub fingerprint: String,
    /// Where the next incremental read starts; `None` before the first complete run.
    pub cursor: Option<String>,
    pub health: JobHealth,
    /// When the last run ended (RFC 3339).
    pub last_run: Option<String>,
    /// The last run's report, as JSON.
    pub last_report: Option<String>,
    /// The provision-on-demand request last served, so it is served once.
    pub on_demand_done: Option<String>,
}

/// Where a source user stands in the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserState {
    /// In scope; the target user holds `applied`.
    Synced,
    /// Left scope with `Disable`: the target user exists, with sign-in blocked.
    Disabled,
    /// The last write failed: retried next run.
    Retry,
}

impl UserState {
    fn as_str(self) -> &'static str {
        match self {
            UserState::Synced => "synced",
            UserState::Disabled => "disabled",
            UserState::Retry => "retry",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "synced" => Some(UserState::Synced),
            "disabled" => Some(UserState::Disabled),
            "retry" => Some(UserState::Retry),
            _ => None,
        }
    }
}

/// One source user's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncedUser {
    pub source_id: String,
    /// The target user's id, once created.
    pub target_id: Option<String>,
    /// The source user's address, for messages.
    pub address: String,
    /// What the last successful write left in the target.
    pub applied: Option<TargetUser>,
    pub state: UserState,
}

/// The sync state file.
pub struct SyncStore {
    conn: Mutex<Connection>,
}

type Result<T> = std::result::Result<T, DirectoryError>;

fn storage(doing: &str) -> impl FnOnce(rusqlite::Error) -> DirectoryError + '_ {
    move |e| DirectoryError::Storage(format!("sync state: {doing}: {e}"))
}

impl SyncStore {
    /// Opens (creating it and its parent directories if needed) and migrates a sync state file.
    pub fn open(path: &Path) -> Result<Self> {
        Self::init(state_file::open(path, "sync state file")?)
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::init(state_file::open_in_memory("sync state")?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        state_file::migrate(&mut conn, "sync state file", MIGRATIONS)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| DirectoryError::Storage("the sync state connection is poisoned".into()))
    }

    pub fn job(&self, job: &str) -> Result<Option<JobState>> {
        let conn = self.lock()?;
        conn.query_row(
            "SELECT source_tenant_id, target_tenant_id, fingerprint, cursor, health_json, last_run, last_report_json, on_demand_done
             FROM jobs WHERE job = ?1",
            [job],
            |r| {
                Ok((
                    JobState {
                        source_tenant_id: r.get(0)?,
                        target_tenant_id: r.get(1)?,
                        fingerprint: r.get(2)?,
                        cursor: r.get(3)?,
                        health: JobHealth::default(),
                        last_run: r.get(5)?,
                        last_report: r.get(6)?,
                        on_demand_done: r.get(7)?,
                    },
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
        .map_err(storage("reading a job"))?
        .map(|(mut state, health)| {
            state.health = serde_json::from_str(&health)
                .map_err(|e| DirectoryError::Storage(format!("sync state: job {job}: health: {e}")))?;
            Ok(state)
        })
        .transpose()
    }

    /// Every job in the file, by name.
    pub fn jobs(&self) -> Result<Vec<(String, JobState)>> {
        let names: Vec<String> = {
            let conn = self.lock()?;
            let mut s = conn.prepare("SELECT job FROM jobs ORDER BY job").map_err(storage("listing jobs"))?;
            s.query_map([], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(storage("listing jobs"))?
        };
        let mut out = Vec::new();
        for n in names {
            if let Some(state) = self.job(&n)? {
                out.push((n, state));
            }
        }
        Ok(out)
    }

    pub fn put_job(&self, job: &str, state: &JobState) -> Result<()> {
        let health = serde_json::to_string(&state.health).expect("health serializes");
        self.lock()?
            .execute(
                "INSERT INTO jobs (job, source_tenant_id, target_tenant_id, fingerprint, cursor, health_json, last_run,
                   last_report_json, on_demand_done)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (job) DO UPDATE SET source_tenant_id = ?2, target_tenant_id = ?3, fingerprint = ?4,
                   cursor = ?5, health_json = ?6, last_run = ?7, last_report_json = ?8, on_demand_done = ?9",
                params![
                    job,
                    state.source_tenant_id,
                    state.target_tenant_id,
                    state.fingerprint,
                    state.cursor,
                    health,
                    state.last_run,
                    state.last_report,
                    state.on_demand_done
                ],
            )
            .map_err(storage("writing a job"))?;
        Ok(())
    }

    /// Forgets a job and its users (the target users themselves stay).
    pub fn forget_job(&self, job: &str) -> Result<()> {
        self.lock()?.execute("DELETE FROM jobs WHERE job = ?1", [job]).map_err(storage("forgetting a job"))?;
        Ok(())
    }

    /// The rows of these source users, by source id.
    pub fn users(&self, job: &str, source_ids: &[String]) -> Result<BTreeMap<String, SyncedUser>> {
        let conn = self.lock()?;
        let mut s = conn
            .prepare_cached(
                "SELECT source_id, target_id, address, applied_json, state FROM users WHERE job = ?1 AND source_id = ?2",
            )
            .map_err(storage("reading users"))?;
        let mut out = BTreeMap::new();
        for id in source_ids {
            if let Some(u) = s.query_row(params![job, id], read_user).optional().map_err(storage("reading a user"))? {
                out.insert(id.clone(), u?);
            }
        }
        Ok(out)
    }

    /// Every row of the job (a full run compares them with the whole source).
    pub fn all_users(&self, job: &str) -> Result<BTreeMap<String, SyncedUser>> {
        self.select(job, None)
    }

    /// The rows in one state (e.g. `Retry`).
    pub fn users_in_state(&self, job: &str, state: UserState) -> Result<BTreeMap<String, SyncedUser>> {
        self.select(job, Some(state))
    }

    fn select(&self, job: &str, state: Option<UserState>) -> Result<BTreeMap<String, SyncedUser>> {
        let conn = self.lock()?;
        let sql =
            "SELECT source_id, target_id, address, applied_json, state FROM users WHERE job = ?1 AND (?2 IS NULL OR state = ?2)";
        let mut s = conn.prepare_cached(sql).map_err(storage("reading users"))?;
        let rows = s
            .query_map(params![job, state.map(UserState::as_str)], read_user)
            .and_then(|rows| rows.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(storage("reading users"))?;
        rows.into_iter().map(|u| u.map(|u| (u.source_id.clone(), u))).collect()
    }

    /// How many source users are synchronized (in scope, in the target).
    pub fn count(&self, job: &str, state: UserState) -> Result<u64> {
        self.lock()?
            .query_row("SELECT COUNT(*) FROM users WHERE job = ?1 AND state = ?2", params![job, state.as_str()], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(storage("counting users"))
    }

    /// Writes rows (`Some`) and drops them (`None`) in one transaction.
    pub fn put_users(&self, job: &str, changes: &[(String, Option<SyncedUser>)]) -> Result<()> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(storage("starting a write"))?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO users (job, source_id, target_id, address, applied_json, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (job, source_id) DO UPDATE SET target_id = ?3, address = ?4, applied_json = ?5, state = ?6",
                )
                .map_err(storage("writing users"))?;
            let mut drop =
                tx.prepare_cached("DELETE FROM users WHERE job = ?1 AND source_id = ?2").map_err(storage("dropping users"))?;
            for (source_id, row) in changes {
                match row {
                    Some(u) => {
                        let applied = u.applied.as_ref().map(|a| serde_json::to_string(a).expect("a target user serializes"));
                        put.execute(params![job, source_id, u.target_id, u.address, applied, u.state.as_str()])
                            .map_err(storage("writing a user"))?;
                    }
                    None => {
                        drop.execute(params![job, source_id]).map_err(storage("dropping a user"))?;
                    }
                }
            }
        }
        tx.commit().map_err(storage("committing"))?;
        Ok(())
    }

    /// The job's scope groups as last read: by display name, the cursor and the members.
    pub fn scope_groups(&self, job: &str) -> Result<BTreeMap<String, ScopeGroup>> {
        let conn = self.lock()?;
        let mut out: BTreeMap<String, ScopeGroup> = BTreeMap::new();
        let mut s = conn
            .prepare_cached("SELECT name, cursor FROM scope_groups WHERE job = ?1")
            .map_err(storage("reading scope groups"))?;
        let groups: Vec<(String, Option<String>)> = s
            .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(storage("reading scope groups"))?;
        for (name, cursor) in groups {
            out.insert(name, ScopeGroup { cursor, members: BTreeSet::new() });
        }
        let mut s = conn
            .prepare_cached("SELECT name, member_id FROM scope_members WHERE job = ?1")
            .map_err(storage("reading scope members"))?;
        let rows: Vec<(String, String)> = s
            .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(storage("reading scope members"))?;
        for (name, member) in rows {
            if let Some(g) = out.get_mut(&name) {
                g.members.insert(member);
            }
        }
        Ok(out)
    }

    /// Records what a run read of the scope groups, in one transaction: for each group its new cursor
    /// and either its whole membership (`Full`) or the members added and removed; groups not named
    /// are forgotten.
    pub fn put_scope_groups(&self, job: &str, updates: &BTreeMap<String, ScopeUpdate>) -> Result<()> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(storage("starting a write"))?;
        {
            let known: Vec<String> = tx
                .prepare_cached("SELECT name FROM scope_groups WHERE job = ?1")
                .and_then(|mut s| s.query_map([job], |r| r.get(0)).and_then(|rows| rows.collect()))
                .map_err(storage("reading scope groups"))?;
            for name in known.iter().filter(|n| !updates.contains_key(*n)) {
                tx.execute("DELETE FROM scope_groups WHERE job = ?1 AND name = ?2", params![job, name])
                    .map_err(storage("forgetting a scope group"))?;
            }
            let mut put_group = tx
                .prepare_cached(
                    "INSERT INTO scope_groups (job, name, cursor) VALUES (?1, ?2, ?3)
                     ON CONFLICT (job, name) DO UPDATE SET cursor = ?3",
                )
                .map_err(storage("writing a scope group"))?;
            let mut add = tx
                .prepare_cached("INSERT OR IGNORE INTO scope_members (job, name, member_id) VALUES (?1, ?2, ?3)")
                .map_err(storage("writing scope members"))?;
            let mut remove = tx
                .prepare_cached("DELETE FROM scope_members WHERE job = ?1 AND name = ?2 AND member_id = ?3")
                .map_err(storage("writing scope members"))?;
            for (name, update) in updates {
                put_group.execute(params![job, name, update.cursor]).map_err(storage("writing a scope group"))?;
                if update.full {
                    tx.execute("DELETE FROM scope_members WHERE job = ?1 AND name = ?2", params![job, name])
                        .map_err(storage("writing scope members"))?;
                }
                for id in &update.removed {
                    remove.execute(params![job, name, id]).map_err(storage("writing scope members"))?;
                }
                for id in &update.added {
                    add.execute(params![job, name, id]).map_err(storage("writing scope members"))?;
                }
            }
        }
        tx.commit().map_err(storage("committing"))?;
        Ok(())
    }
}

/// A scope group as the last run read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeGroup {
    /// Where the next membership read starts (`None`: a full read).
    pub cursor: Option<String>,
    pub members: BTreeSet<String>,
}

/// What a run read of one scope group, to record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeUpdate {
    pub cursor: Option<String>,
    /// `added` is the whole membership.
    pub full: bool,
    pub added: BTreeSet<String>,
    pub removed: BTreeSet<String>,
}

fn read_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<SyncedUser>> {
    let source_id: String = r.get(0)?;
    let applied: Option<String> = r.get(3)?;
    let state: String = r.get(4)?;
    let bad = |what: String| DirectoryError::Storage(format!("sync state: user {source_id}: {what}"));
    let applied = match applied.map(|a| serde_json::from_str::<TargetUser>(&a)) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => return Ok(Err(bad(format!("applied values: {e}")))),
        None => None,
    };
    let Some(state) = UserState::parse(&state) else { return Ok(Err(bad(format!("unknown state {state:?}")))) };
    Ok(Ok(SyncedUser { target_id: r.get(1)?, address: r.get(2)?, applied, state, source_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_users_round_trip() {
        let store = SyncStore::open_in_memory().unwrap();
        assert_eq!(store.job("default/j").unwrap(), None);
        let state = JobState {
            source_tenant_id: "s".into(),
            target_tenant_id: "t".into(),
            fingerprint: "f".into(),
            cursor: Some("42".into()),
            health: JobHealth { consecutive_failures: 2, last_failure: Some("down".into()) },
            ..JobState::default()
        };
        store.put_job("default/j", &state).unwrap();
        assert_eq!(store.job("default/j").unwrap(), Some(state));
        let row = SyncedUser {
            source_id: "u1".into(),
            target_id: Some("t1".into()),
            address: "alice@contoso.com".into(),
            applied: Some(TargetUser { mail: "alice@contoso.com".into(), ..TargetUser::default() }),
            state: UserState::Synced,
        };
        store.put_users("default/j", &[("u1".into(), Some(row.clone())), ("u2".into(), None)]).unwrap();
        assert_eq!(store.users("default/j", &["u1".into(), "u9".into()]).unwrap().get("u1"), Some(&row));
        assert_eq!(store.count("default/j", UserState::Synced).unwrap(), 1);
        assert!(store.users_in_state("default/j", UserState::Retry).unwrap().is_empty());
        store.put_users("default/j", &[("u1".into(), None)]).unwrap();
        assert!(store.all_users("default/j").unwrap().is_empty());
        store.forget_job("default/j").unwrap();
        assert_eq!(store.job("default/j").unwrap(), None);
    }

    #[test]
    fn scope_groups_take_full_reads_and_deltas() {
        let store = SyncStore::open_in_memory().unwrap();
        store.put_job("default/j", &JobState::default()).unwrap();
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
        let full = ScopeUpdate { cursor: Some("c1".into()), full: true, added: set(&["a", "b"]), removed: set(&[]) };
        let other = ScopeUpdate { cursor: None, full: true, added: set(&["z"]), removed: set(&[]) };
        store.put_scope_groups("default/j", &BTreeMap::from([("G".into(), full), ("H".into(), other)])).unwrap();
        let delta = ScopeUpdate { cursor: Some("c2".into()), full: false, added: set(&["c"]), removed: set(&["a"]) };
        store.put_scope_groups("default/j", &BTreeMap::from([("G".into(), delta)])).unwrap();
        let groups = store.scope_groups("default/j").unwrap();
        assert_eq!(groups.len(), 1, "H is no longer a scope group: forgotten");
        assert_eq!(groups["G"], ScopeGroup { cursor: Some("c2".into()), members: set(&["b", "c"]) });
        let again = ScopeUpdate { cursor: Some("c3".into()), full: true, added: set(&["d"]), removed: set(&[]) };
        store.put_scope_groups("default/j", &BTreeMap::from([("G".into(), again)])).unwrap();
        assert_eq!(store.scope_groups("default/j").unwrap()["G"].members, set(&["d"]), "a full read replaces");
        store.forget_job("default/j").unwrap();
        assert!(store.scope_groups("default/j").unwrap().is_empty());
    }
}
