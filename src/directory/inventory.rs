//! entente's own bookkeeping for directories that have nowhere to keep it: ownership records
//! (`Operation::Record`/`Forget`, `TenantSnapshot.managed`) and the `/users/delta` checkpoint.
//!
//! The local directory keeps its ownership records in its own file. Microsoft Graph has no place for
//! them in the contract entente uses (no open extensions or schema extensions in the documented
//! subset, and writing marker attributes onto customers' users and policies would be intrusive), so
//! the Graph backend keeps them here, outside the directory, as Terraform keeps its state: a small
//! SQLite file, by default `.entente/inventory.db` next to the local directory file.
//!
//! Everything is keyed by the directory (the Graph endpoint, so the emulator and the real Graph
//! never share records) and the tenant id.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use super::{DirectoryError, state_file};
use crate::core::model::{Kind, ManagedRecord, TOMBSTONE_DAYS, Tombstone};

/// Where a backend's `/users/delta` round stands for one tenant: the delta link for the next round and
/// the state the backend built from the rounds so far (opaque to the inventory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaCheckpoint {
    pub delta_link: String,
    pub state: String,
}

/// Ownership records and delta checkpoints per directory and tenant.
pub trait Inventory: Send + Sync {
    /// Every record of the tenant, ordered by kind and key.
    fn records(&self, directory: &str, tenant_id: &str) -> Result<Vec<ManagedRecord>, DirectoryError>;
    /// Creates or replaces the record with the same kind and key.
    fn upsert(&self, directory: &str, tenant_id: &str, record: &ManagedRecord) -> Result<(), DirectoryError>;
    /// Drops a record; absent is fine.
    fn forget(&self, directory: &str, tenant_id: &str, kind: Kind, key: &str) -> Result<(), DirectoryError>;
    /// Moves a record into the tombstones (see `Operation::Bury`); absent is fine.
    fn bury(&self, directory: &str, tenant_id: &str, kind: Kind, key: &str, reason: &str) -> Result<(), DirectoryError>;
    /// The tenant's tombstones younger than the recycle-bin period.
    fn tombstones(&self, directory: &str, tenant_id: &str) -> Result<Vec<Tombstone>, DirectoryError>;
    /// The delta checkpoint of the tenant, if any.
    fn delta(&self, directory: &str, tenant_id: &str) -> Result<Option<DeltaCheckpoint>, DirectoryError>;
    /// Stores (`Some`) or drops (`None`, e.g. after `410 Gone`) the delta checkpoint.
    fn set_delta(&self, directory: &str, tenant_id: &str, checkpoint: Option<&DeltaCheckpoint>) -> Result<(), DirectoryError>;
}

/// The default inventory file, next to the local directory file.
pub const DEFAULT_INVENTORY_FILE: &str = "inventory.db";

const MIGRATIONS: &[&str] = &[
    // 1: records and delta checkpoints.
    r#"
    CREATE TABLE records (
        directory TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        record_json TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (directory, tenant_id, kind, key)
    );
    CREATE TABLE delta_checkpoints (
        directory TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        delta_link TEXT NOT NULL,
        state TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (directory, tenant_id)
    );
    "#,
    // 2: tombstones, the records of objects entente deleted, kept for the recycle-bin period.
    r#"
    CREATE TABLE tombstones (
        directory TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        record_json TEXT NOT NULL,
        deleted_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (directory, tenant_id, kind, key)
    );
    "#,
];

/// The inventory in a SQLite file of its own.
pub struct SqliteInventory {
    conn: Mutex<Connection>,
}

impl SqliteInventory {
    /// Opens (creating the file and its parent directories if needed) and migrates an inventory file.
    pub fn open(path: &Path) -> Result<Self, DirectoryError> {
        Self::init(state_file::open(path, "inventory file")?)
    }

    /// An inventory that lives as long as the value (tests).
    pub fn open_in_memory() -> Result<Self, DirectoryError> {
        Self::init(state_file::open_in_memory("inventory")?)
    }

    fn init(mut conn: Connection) -> Result<Self, DirectoryError> {
        state_file::migrate(&mut conn, "inventory file", MIGRATIONS)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, DirectoryError> {
        self.conn.lock().map_err(|_| DirectoryError::Storage("the inventory connection is poisoned".into()))
    }
}

fn storage<E: std::fmt::Display>(doing: &'static str) -> impl Fn(E) -> DirectoryError {
    move |e| DirectoryError::Storage(format!("inventory: {doing}: {e}"))
}

fn norm(tenant_id: &str) -> String {
    tenant_id.trim().to_ascii_lowercase()
}

/// Tombstones deleted before this are past the recycle-bin period.
fn horizon() -> String {
    (chrono::Utc::now() - chrono::Duration::days(TOMBSTONE_DAYS)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Inventory for SqliteInventory {
    fn records(&self, directory: &str, tenant_id: &str) -> Result<Vec<ManagedRecord>, DirectoryError> {
        let conn = self.lock()?;
        let mut s = conn
            .prepare_cached("SELECT record_json FROM records WHERE directory = ?1 AND tenant_id = ?2 ORDER BY kind, key")
            .map_err(storage("reading records"))?;
        let rows: Vec<String> = s
            .query_map(params![directory, norm(tenant_id)], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(storage("reading records"))?;
        rows.iter().map(|json| serde_json::from_str(json).map_err(storage("decoding a record"))).collect()
    }

    fn upsert(&self, directory: &str, tenant_id: &str, record: &ManagedRecord) -> Result<(), DirectoryError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(storage("starting a write"))?;
        let key = params![directory, norm(tenant_id), record.kind.as_str(), record.key];
        let mut record = record.clone();
        if record.redeem_url.is_none() {
            // A record written without a redeem URL keeps the one recorded with the invitation.
            let previous: Option<String> = tx
                .query_row(
                    "SELECT record_json FROM records WHERE directory = ?1 AND tenant_id = ?2 AND kind = ?3 AND key = ?4",
                    key,
                    |r| r.get(0),
                )
                .optional()
                .map_err(storage("reading a record"))?;
            record.redeem_url =
                previous.and_then(|json| serde_json::from_str::<ManagedRecord>(&json).ok()).and_then(|r| r.redeem_url);
        }
        tx.execute("DELETE FROM tombstones WHERE directory = ?1 AND tenant_id = ?2 AND kind = ?3 AND key = ?4", key)
            .map_err(storage("dropping a tombstone"))?;
        let json = serde_json::to_string(&record).map_err(storage("encoding a record"))?;
        tx.execute(
            "INSERT INTO records (directory, tenant_id, kind, key, record_json, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (directory, tenant_id, kind, key) DO UPDATE SET
                   record_json = excluded.record_json, updated_at = excluded.updated_at",
            params![directory, norm(tenant_id), record.kind.as_str(), record.key, json, now()],
        )
        .map_err(storage("writing a record"))?;
        tx.commit().map_err(storage("committing a record"))
    }

    fn bury(&self, directory: &str, tenant_id: &str, kind: Kind, key: &str, reason: &str) -> Result<(), DirectoryError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(storage("starting a write"))?;
        tx.execute("DELETE FROM tombstones WHERE deleted_at < ?1", [horizon()]).map_err(storage("purging tombstones"))?;
        let id = params![directory, norm(tenant_id), kind.as_str(), key];
        let moved = tx
            .execute(
                "INSERT INTO tombstones (directory, tenant_id, kind, key, record_json, deleted_at, reason)
                 SELECT directory, tenant_id, kind, key, record_json, ?5, ?6 FROM records
                 WHERE directory = ?1 AND tenant_id = ?2 AND kind = ?3 AND key = ?4
                 ON CONFLICT (directory, tenant_id, kind, key) DO UPDATE SET
                   record_json = excluded.record_json, deleted_at = excluded.deleted_at, reason = excluded.reason",
                params![directory, norm(tenant_id), kind.as_str(), key, now(), reason],
            )
            .map_err(storage("writing a tombstone"))?;
        if moved > 0 {
            tx.execute("DELETE FROM records WHERE directory = ?1 AND tenant_id = ?2 AND kind = ?3 AND key = ?4", id)
                .map_err(storage("deleting a record"))?;
        }
        tx.commit().map_err(storage("committing a tombstone"))
    }

    fn tombstones(&self, directory: &str, tenant_id: &str) -> Result<Vec<Tombstone>, DirectoryError> {
        let conn = self.lock()?;
        let mut s = conn
            .prepare_cached(
                "SELECT record_json, deleted_at, reason FROM tombstones
                 WHERE directory = ?1 AND tenant_id = ?2 AND deleted_at >= ?3 ORDER BY kind, key",
            )
            .map_err(storage("reading tombstones"))?;
        let rows: Vec<(String, String, String)> = s
            .query_map(params![directory, norm(tenant_id), horizon()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(storage("reading tombstones"))?;
        rows.into_iter()
            .map(|(json, deleted_at, reason)| {
                Ok(Tombstone {
                    record: serde_json::from_str(&json).map_err(storage("decoding a tombstone"))?,
                    deleted_at,
                    reason,
                })
            })
            .collect()
    }

    fn forget(&self, directory: &str, tenant_id: &str, kind: Kind, key: &str) -> Result<(), DirectoryError> {
        self.lock()?
            .execute(
                "DELETE FROM records WHERE directory = ?1 AND tenant_id = ?2 AND kind = ?3 AND key = ?4",
                params![directory, norm(tenant_id), kind.as_str(), key],
            )
            .map_err(storage("deleting a record"))?;
        Ok(())
    }

    fn delta(&self, directory: &str, tenant_id: &str) -> Result<Option<DeltaCheckpoint>, DirectoryError> {
        self.lock()?
            .query_row(
                "SELECT delta_link, state FROM delta_checkpoints WHERE directory = ?1 AND tenant_id = ?2",
                params![directory, norm(tenant_id)],
                |r| Ok(DeltaCheckpoint { delta_link: r.get(0)?, state: r.get(1)? }),
            )
            .optional()
            .map_err(storage("reading a delta checkpoint"))
    }

    fn set_delta(&self, directory: &str, tenant_id: &str, checkpoint: Option<&DeltaCheckpoint>) -> Result<(), DirectoryError> {
        let conn = self.lock()?;
        match checkpoint {
            Some(c) => conn.execute(
                "INSERT INTO delta_checkpoints (directory, tenant_id, delta_link, state, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (directory, tenant_id) DO UPDATE SET
                   delta_link = excluded.delta_link, state = excluded.state, updated_at = excluded.updated_at",
                params![directory, norm(tenant_id), c.delta_link, c.state, now()],
            ),
            None => conn.execute(
                "DELETE FROM delta_checkpoints WHERE directory = ?1 AND tenant_id = ?2",
                params![directory, norm(tenant_id)],
            ),
        }
        .map_err(storage("writing a delta checkpoint"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::{DeletionPolicy, ObjectRef};

    fn record(key: &str, applied: &str) -> ManagedRecord {
        ManagedRecord {
            kind: Kind::GuestInvitation,
            key: key.into(),
            object: ObjectRef::new(Kind::GuestInvitation, "default", key),
            external_id: Some("u1".into()),
            deletion_policy: DeletionPolicy::Delete,
            applied: applied.into(),
            redeem_url: None,
        }
    }

    #[test]
    fn records_are_kept_per_directory_and_tenant() {
        let inv = SqliteInventory::open_in_memory().unwrap();
        inv.upsert("https://graph", "T1", &record("a@x.com", "{}")).unwrap();
        inv.upsert("https://graph", "t1", &record("a@x.com", "{\"v\":2}")).unwrap();
        inv.upsert("http://127.0.0.1:1", "t1", &record("b@x.com", "{}")).unwrap();
        let got = inv.records("https://graph", "t1").unwrap();
        assert_eq!(got, vec![record("a@x.com", "{\"v\":2}")], "upsert replaces; tenant ids are case-insensitive");
        inv.forget("https://graph", "t1", Kind::GuestInvitation, "a@x.com").unwrap();
        inv.forget("https://graph", "t1", Kind::GuestInvitation, "a@x.com").unwrap();
        assert!(inv.records("https://graph", "t1").unwrap().is_empty());
        assert_eq!(inv.records("http://127.0.0.1:1", "t1").unwrap().len(), 1);
    }

    #[test]
    fn delta_checkpoints_are_stored_and_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/inventory.db");
        let c = DeltaCheckpoint { delta_link: "https://g/v1.0/users/delta?$deltatoken=x".into(), state: "[]".into() };
        {
            let inv = SqliteInventory::open(&path).unwrap();
            assert_eq!(inv.delta("g", "t").unwrap(), None);
            inv.set_delta("g", "t", Some(&c)).unwrap();
        }
        let inv = SqliteInventory::open(&path).unwrap();
        assert_eq!(inv.delta("g", "t").unwrap(), Some(c));
        inv.set_delta("g", "t", None).unwrap();
        assert_eq!(inv.delta("g", "t").unwrap(), None);
    }
}
