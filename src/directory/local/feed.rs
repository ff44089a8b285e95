//! The change feed: every write appends one row, in commit order. A sync can read it as a delta
//! feed (what changed after the last sequence number it saw), and tests use it to prove that a
//! read or a refused change wrote nothing.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{Ctx, now};
use crate::directory::DirectoryError;

/// One write: which tenant, what kind of object (`tenant`, `user`, `partner`, …), which one, and
/// what happened to it (`created`, `updated`, `deleted`, …).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEntry {
    pub seq: i64,
    pub tenant_id: String,
    pub entity: String,
    pub entity_id: String,
    pub change: String,
    /// RFC 3339, UTC.
    pub at: String,
}

pub(super) fn append(c: &Connection, tenant_id: &str, entity: &str, entity_id: &str, change: &str) -> Result<(), DirectoryError> {
    c.prepare_cached("INSERT INTO changes (tenant_id, entity, entity_id, change, at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| s.execute(params![tenant_id, entity, entity_id, change, now()]))
        .ctx("appending to the change feed")?;
    Ok(())
}

pub(super) fn max_seq(c: &Connection) -> Result<i64, DirectoryError> {
    c.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| r.get(0)).ctx("reading the change feed")
}

pub(super) fn since(c: &Connection, seq: i64) -> Result<Vec<ChangeEntry>, DirectoryError> {
    let mut s = c
        .prepare(
            "SELECT seq, tenant_id, entity, entity_id, change, at FROM changes
             WHERE seq > ?1 ORDER BY seq",
        )
        .ctx("reading the change feed")?;
    s.query_map([seq], |r| {
        Ok(ChangeEntry {
            seq: r.get(0)?,
            tenant_id: r.get(1)?,
            entity: r.get(2)?,
            entity_id: r.get(3)?,
            change: r.get(4)?,
            at: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
    .ctx("reading the change feed")
}
