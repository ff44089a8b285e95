//! Graph's recycle bin for users (deleted items, contract extension `emulator/contract/directory.yaml`):
//! the snapshot's recently deleted guests in one paged read, `GET /directory/deletedItems/microsoft.graph.user`
//! filtered to guests (the list takes the `$filter`, `$select` and `$top` (≤ 999) of the cast type, per
//! directory-deleteditems-list), and `RestoreGuest` as `POST /directory/deletedItems/{id}/restore`
//! (directory-deleteditems-restore; `User.ReadWrite.All` for users). Graph lists no memberships of a
//! deleted user, so the snapshot's deleted guests carry no groups (`groups_known: false`); a restore brings
//! them back, and the planner leaves them to the next snapshot rather than re-adding them blind.

use std::collections::BTreeSet;

use http::Method;
use serde::Deserialize;

use super::GraphDirectory;
use super::http::Call;
use super::limiter::Cost;
use super::mapping;
use crate::core::model::DeletedGuest;
use crate::directory::DirectoryError;
use crate::graph::wire::{USER_SELECT, User, paths};

/// The deleted users, cast to `user` (the cast is required: `/directory/deletedItems` alone is not supported).
pub(crate) const DELETED_USERS: &str = "/directory/deletedItems/microsoft.graph.user";

pub(crate) fn restore_path(id: &str) -> String {
    format!("/directory/deletedItems/{id}/restore")
}

/// A deleted user as the deleted items list answers it: the user's properties and `deletedDateTime`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedUser {
    #[serde(flatten)]
    user: User,
    #[serde(default)]
    deleted_date_time: Option<String>,
}

impl GraphDirectory {
    /// Guests in the recycle bin, newest first.
    pub(super) async fn read_deleted_guests(&self) -> Result<Vec<DeletedGuest>, DirectoryError> {
        let top = self.page_size.to_string();
        let select = format!("{USER_SELECT},deletedDateTime");
        let url = self.url(DELETED_USERS, &[("$filter", "userType eq 'Guest'"), ("$select", &select), ("$top", &top)])?;
        let (items, _) = self.get_pages::<DeletedUser>(url).await?;
        let mut out: Vec<DeletedGuest> = items
            .into_iter()
            .filter_map(|d| {
                Some(DeletedGuest {
                    guest: mapping::guest(&d.user, BTreeSet::new())?,
                    deleted_date_time: d.deleted_date_time.unwrap_or_default(),
                    groups_known: false,
                })
            })
            .collect();
        out.sort_by(|a, b| b.deleted_date_time.cmp(&a.deleted_date_time).then_with(|| a.guest.id.cmp(&b.guest.id)));
        Ok(out)
    }

    /// Restores a deleted user. Idempotent: when the bin no longer has it (404) but the user is live, it was
    /// restored already. A restore Graph refuses because a live user holds the same unique value (400 with an
    /// `ObjectConflict` detail) is a `Conflict` saying so.
    pub(super) async fn restore_guest(&self, user_id: &str) -> Result<(), DirectoryError> {
        let url = self.url(&restore_path(user_id), &[])?;
        let resp = self.http.send(&Call::new(Method::POST, url, Cost::Write).idempotent()).await?;
        if resp.is_success() {
            return Ok(());
        }
        if resp.status == 404 {
            let live = self.url(&paths::user(user_id), &[("$select", "id")])?;
            let answer = self.http.send(&Call::new(Method::GET, live.clone(), Cost::read(&live))).await?;
            if answer.is_success() {
                return Ok(());
            }
        }
        if resp.status == 400
            && let Some(e) = resp.odata_error()
            && e.error.details.iter().any(|d| d.code == "ObjectConflict")
        {
            return Err(DirectoryError::Conflict(format!(
                "Graph refused to restore deleted user {user_id}: {} (a live user holds the same mail or user \
                 principal name; delete or rename it first)",
                e.error.message
            )));
        }
        Err(resp.error())
    }
}
