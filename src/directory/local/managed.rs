//! entente's ownership records: which directory objects it manages, for which manifest object,
//! and the view last applied (how the planner tells drift from an edit).

use rusqlite::{Connection, params};

use super::{Ctx, feed};
use crate::core::model::{DeletionPolicy, Kind, ManagedRecord, ObjectRef};
use crate::directory::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

pub(super) fn list(c: &Connection, tenant_id: &str) -> Result<Vec<ManagedRecord>> {
    let mut s = c
        .prepare_cached(
            "SELECT kind, key, object_kind, namespace, name, external_id, deletion_policy, applied
             FROM managed WHERE tenant_id = ?1 ORDER BY kind, key",
        )
        .ctx("reading ownership records")?;
    type Raw = (String, String, String, String, String, Option<String>, String, String);
    let rows = s
        .query_map([tenant_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Raw>>>())
        .ctx("reading ownership records")?;
    rows.into_iter()
        .map(|(kind, key, object_kind, namespace, name, external_id, dp, applied)| {
            Ok(ManagedRecord {
                kind: parse_kind(&kind)?,
                key,
                object: ObjectRef { kind: parse_kind(&object_kind)?, namespace, name },
                external_id,
                deletion_policy: parse_deletion_policy(&dp)?,
                applied,
            })
        })
        .collect()
}

pub(super) fn upsert(c: &Connection, tenant_id: &str, r: &ManagedRecord) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO managed
           (tenant_id, kind, key, object_kind, namespace, name, external_id, deletion_policy, applied)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (tenant_id, kind, key) DO UPDATE SET
           object_kind = excluded.object_kind, namespace = excluded.namespace, name = excluded.name,
           external_id = excluded.external_id, deletion_policy = excluded.deletion_policy,
           applied = excluded.applied",
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
        ])
    })
    .ctx("writing an ownership record")?;
    feed::append(c, tenant_id, "managed", &entity_id(r.kind, &r.key), "recorded")
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
