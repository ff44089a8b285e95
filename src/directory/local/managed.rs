//! entente's ownership records: which directory objects it manages, for which manifest object,
//! and the view last applied (how the planner tells drift from an edit).

use rusqlite::{Connection, params};

use super::{Ctx, feed};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::core::model::{DeletionPolicy, Kind, ManagedRecord, ObjectRef, TOMBSTONE_DAYS, Tombstone};
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

pub(super) fn list(c: &Connection, tenant_id: &str) -> Result<Vec<ManagedRecord>> {
    let mut s = c
        .prepare_cached(
            "SELECT kind, key, object_kind, namespace, name, external_id, deletion_policy, applied, redeem_url
             FROM managed WHERE tenant_id = ?1 ORDER BY kind, key",
        )
        .ctx("reading ownership records")?;
    type Raw = (String, String, String, String, String, Option<String>, String, String, Option<String>);
    let rows = s
        .query_map([tenant_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Raw>>>())
        .ctx("reading ownership records")?;
    rows.into_iter()
        .map(|(kind, key, object_kind, namespace, name, external_id, dp, applied, redeem_url)| {
            Ok(ManagedRecord {
                kind: parse_kind(&kind)?,
                key,
                object: ObjectRef { kind: parse_kind(&object_kind)?, namespace, name },
                external_id,
                deletion_policy: parse_deletion_policy(&dp)?,
                applied,
                redeem_url,
            })
        })
        .collect()
}

pub(super) fn upsert(c: &Connection, tenant_id: &str, r: &ManagedRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO managed
           (tenant_id, kind, key, object_kind, namespace, name, external_id, deletion_policy, applied, redeem_url)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (tenant_id, kind, key) DO UPDATE SET
           object_kind = excluded.object_kind, namespace = excluded.namespace, name = excluded.name,
           external_id = excluded.external_id, deletion_policy = excluded.deletion_policy,
           applied = excluded.applied, redeem_url = COALESCE(excluded.redeem_url, managed.redeem_url)",
    )
    .and_then(|mut s| {
        s.execute(params![
            tenant_id,
            r.kind.as_str(),
            r.key,
            r.object.kind.as_str(),
            r.object.namespace,
            r.object.name,
            r.external_id,
            deletion_policy_str(r.deletion_policy),
            r.applied,
            r.redeem_url,
        ])
    })
    .ctx("writing an ownership record")?;
    // Managed again (restored, or adopted): no longer a tombstone.
    c.execute(
        "DELETE FROM tombstones WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3",
        params![tenant_id, r.kind.as_str(), r.key],
    )
    .ctx("dropping a tombstone")?;
    feed::append(c, tenant_id, "managed", &entity_id(r.kind, &r.key), "recorded")
}

/// Moves the record into the tombstones, stamped `now` with `reason` (the object was deleted by this
/// change); tombstones past the recycle-bin period go. Absent is fine.
pub(super) fn bury(c: &Connection, tenant_id: &str, kind: Kind, key: &str, reason: &str, now: DateTime<Utc>) -> Result<()> {
    c.execute("DELETE FROM tombstones WHERE deleted_at < ?1", [horizon(now)]).ctx("purging tombstones")?;
    let Some(record) = list(c, tenant_id)?.into_iter().find(|r| r.kind == kind && r.key == key) else { return Ok(()) };
    c.execute(
        "INSERT INTO tombstones (tenant_id, kind, key, record_json, deleted_at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant_id, kind, key) DO UPDATE SET
           record_json = excluded.record_json, deleted_at = excluded.deleted_at, reason = excluded.reason",
        params![
            tenant_id,
            kind.as_str(),
            key,
            serde_json::to_string(&record).ctx("encoding a tombstone")?,
            now.to_rfc3339_opts(SecondsFormat::Secs, true),
            reason
        ],
    )
    .ctx("writing a tombstone")?;
    forget(c, tenant_id, kind, key)
}

/// The tenant's tombstones younger than the recycle-bin period.
pub(super) fn tombstones(c: &Connection, tenant_id: &str, now: DateTime<Utc>) -> Result<Vec<Tombstone>> {
    let mut s = c
        .prepare_cached(
            "SELECT record_json, deleted_at, reason FROM tombstones WHERE tenant_id = ?1 AND deleted_at >= ?2 ORDER BY kind, key",
        )
        .ctx("reading tombstones")?;
    let rows = s
        .query_map(params![tenant_id, horizon(now)], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, String, String)>>>())
        .ctx("reading tombstones")?;
    rows.into_iter()
        .map(|(json, deleted_at, reason)| {
            Ok(Tombstone { record: serde_json::from_str(&json).ctx("decoding a tombstone")?, deleted_at, reason })
        })
        .collect()
}

fn horizon(now: DateTime<Utc>) -> String {
    (now - chrono::Duration::days(TOMBSTONE_DAYS)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Drops the record; absent is fine.
pub(super) fn forget(c: &Connection, tenant_id: &str, kind: Kind, key: &str) -> Result<()> {
    let n = c
        .execute("DELETE FROM managed WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3", params![tenant_id, kind.as_str(), key])
        .ctx("deleting an ownership record")?;
    if n > 0 {
        feed::append(c, tenant_id, "managed", &entity_id(kind, key), "forgotten")?;
    }
    Ok(())
}

fn entity_id(kind: Kind, key: &str) -> String {
    format!("{kind}/{key}")
}

fn parse_kind(s: &str) -> Result<Kind> {
    Kind::parse(s).ok_or_else(|| DirectoryError::Storage(format!("unknown kind {s:?} in an ownership record")))
}

fn deletion_policy_str(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Delete => "Delete",
        DeletionPolicy::Retain => "Retain",
    }
}

fn parse_deletion_policy(s: &str) -> Result<DeletionPolicy> {
    match s {
        "Delete" => Ok(DeletionPolicy::Delete),
        "Retain" => Ok(DeletionPolicy::Retain),
        _ => Err(DirectoryError::Storage(format!("unknown deletion policy {s:?} in an ownership record"))),
    }
}
