//! Deleted items for users (contract extension `contract/directory.yaml`): `DELETE /users/{id}` moves a user
//! into the local directory's recycle bin, where it stays restorable for 30 days.
//!
//! - `GET /directory/deletedItems/microsoft.graph.user` (directory-deleteditems-list): the deleted users, with
//!   the users' `$filter`, `$select` (plus `deletedDateTime`), `$top` (≤ 999, default 100) and `$count`; pages by id
//!   with an opaque `$skiptoken`.
//! - `GET /directory/deletedItems/{id}` (directory-deleteditems-get): one deleted user, with `$select`; 404 for an
//!   id the bin does not hold.
//! - `POST /directory/deletedItems/{id}/restore` (directory-deleteditems-restore): the same user back (id, mail,
//!   user principal name, redemption state, groups), answered with the user. A user whose mail or user principal
//!   name a live user holds is refused as Graph refuses a duplicate unique value: 400 `Request_BadRequest` with an
//!   `ObjectConflict` detail. An id the bin does not hold: 404.

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use super::users::{DEFAULT_PROPERTIES, FILTERABLE, PROPERTIES, UserPage, UserView, page_of};
use crate::core::operation::Operation;
use crate::directory::DirectoryError;

fn properties() -> Vec<&'static str> {
    PROPERTIES.iter().copied().chain(["deletedDateTime"]).collect()
}

/// Every deleted user of the caller's tenant in full (with `deletedDateTime`), by id.
async fn load_all(ctx: &Ctx) -> Result<Vec<Map<String, Value>>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let view = UserView::load(dir, &tenant)?;
        let mut deleted = dir.deleted_users(&tenant)?;
        deleted.sort_by(|a, b| a.guest.id.cmp(&b.guest.id));
        Ok(deleted
            .iter()
            .map(|d| {
                let mut m = view.full(&d.guest);
                m.insert("deletedDateTime".into(), json!(d.deleted_date_time));
                m
            })
            .collect())
    })
    .await
}

/// `GET /directory/deletedItems/microsoft.graph.user`.
pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["skip", "search", "expand", "orderby"])?;
    let known = properties();
    let select = odata::select(req, "user", &known)?;
    let filter = odata::filter(req, "User", FILTERABLE)?;
    let top = odata::top(req, 100, 999)?;
    let count = odata::count(req)?;
    let all = load_all(ctx).await?;
    let matching: Vec<&Map<String, Value>> =
        all.iter().filter(|u| filter.as_ref().is_none_or(|f| odata::matches(f, u))).collect();
    page_of(ctx, req, &matching, UserPage { top, select: select.as_deref(), count, what: "users", by_id: true })
}

/// What a restore came to.
enum Restored {
    User(Map<String, Value>),
    NotInBin,
    Conflict(String),
}

/// `GET /directory/deletedItems/{id}`.
pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["expand"])?;
    let known = properties();
    let select = odata::select(req, "user", &known)?;
    let all = load_all(ctx).await?;
    let user = all
        .iter()
        .find(|u| u["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "directory/deletedItems/$entity")));
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    let props: Vec<&str> = select.unwrap_or_else(|| DEFAULT_PROPERTIES.iter().copied().chain(["deletedDateTime"]).collect());
    body.extend(odata::project(user, &props));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// `POST /directory/deletedItems/{id}/restore`. The body, if any, is not read (v1.0 documents none for
/// users beyond options the local directory has no use for).
pub(crate) async fn restore(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let key = id.to_string();
    let restored = ctx
        .db(move |dir| {
            let deleted = dir.deleted_users(&tenant)?;
            let Some(d) = deleted.iter().find(|d| d.guest.id.eq_ignore_ascii_case(&key)) else {
                return Ok(Restored::NotInBin);
            };
            let user_id = d.guest.id.clone();
            match dir.apply_then(&tenant, &[Operation::RestoreGuest { user_id: user_id.clone() }], |_, _| Ok(())) {
                Ok(()) => {}
                Err(DirectoryError::Conflict(m)) => return Ok(Restored::Conflict(m)),
                Err(e) => return Err(e),
            }
            let user = dir
                .user(&tenant, &user_id)?
                .ok_or_else(|| DirectoryError::Storage(format!("user {user_id} missing right after its restore")))?;
            let view = UserView::load(dir, &tenant)?;
            Ok(Restored::User(view.full(&user)))
        })
        .await?;
    match restored {
        Restored::User(user) => {
            let mut body = odata::project(&user, DEFAULT_PROPERTIES);
            body.insert("@odata.context".into(), json!(ctx.context(req.version, "directoryObjects/$entity")));
            body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            Ok(GraphResponse::ok(Value::Object(body)))
        }
        Restored::NotInBin => Err(GraphError::not_found(id)),
        Restored::Conflict(m) => Err(GraphError::bad_request(
            "Another object with the same value for property userPrincipalName or mail already exists.",
        )
        .with_detail("ObjectConflict", m)),
    }
}
