//! Security groups, as far as entente needs them (outside the OpenAPI subset): `GET/POST /groups`
//! (`$filter`, `$select`, `$orderby=displayName`, `$search` with `ConsistencyLevel: eventual`),
//! `GET/DELETE /groups/{id}`, `GET /groups/{id}/members`, `POST /groups/{id}/members/$ref`,
//! `DELETE /groups/{id}/members/{id}/$ref`, and `GET /users/{id}/memberOf`.
//!
//! Graph allows several groups with one display name; the local directory names groups uniquely per
//! tenant (operations and manifests refer to groups by name). A second `POST /groups` with a name
//! taken is stored under `"{name} (duplicate N)"` and served under the name it was given (kept with the
//! emulator's extras), so Graph clients see what Graph would show and the local directory stays
//! unambiguous. Only security groups exist (`mailEnabled: false`, `securityEnabled: true`, no
//! `groupTypes`); deleting one removes it for good (security groups skip the recycle bin in Graph too).

use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use super::store::{self, kind};
use super::users;
use crate::core::model::Group;
use crate::core::operation::{GuestPatch, Operation};

const PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "visibility",
];
const FILTERABLE: &[&str] = &["id", "displayName", "mailNickname", "mailEnabled", "securityEnabled"];

fn full(g: &Group, extras: Option<&Map<String, Value>>) -> Map<String, Value> {
    let nickname: String = g.display_name.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let mut m = json!({
        "id": g.id,
        "createdDateTime": null,
        "description": null,
        "displayName": g.display_name,
        "groupTypes": [],
        "mail": null,
        "mailEnabled": false,
        "mailNickname": if nickname.is_empty() { "group".to_string() } else { nickname },
        "securityEnabled": true,
        "visibility": null,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    if let Some(e) = extras {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

async fn load(ctx: &Ctx) -> Result<Vec<Map<String, Value>>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let extras = dir.emulator_read(|c| store::all_extras(c, &tenant, kind::GROUP))?;
        let mut groups = dir.groups(&tenant)?;
        groups.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(groups.iter().map(|g| full(g, extras.get(&g.id.to_ascii_lowercase()))).collect())
    })
    .await
}

async fn find(ctx: &Ctx, id: &str) -> Result<Map<String, Value>, GraphError> {
    load(ctx)
        .await?
        .into_iter()
        .find(|g| g["id"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(id)))
        .ok_or_else(|| GraphError::not_found(id))
}

/// Each group's display name as Graph clients see it, by id.
pub(super) async fn display_names(ctx: &Ctx) -> Result<std::collections::BTreeMap<String, String>, GraphError> {
    Ok(load(ctx)
        .await?
        .into_iter()
        .filter_map(|g| Some((g["id"].as_str()?.to_string(), g["displayName"].as_str()?.to_string())))
        .collect())
}

/// The name the local directory keeps a new group under: its own, or, when another group of the tenant
/// has it, the first free `"{name} (duplicate N)"`.
fn stored_name(taken: &[Group], name: &str) -> String {
    let free = |n: &str| !taken.iter().any(|g| g.display_name == n);
    if free(name) {
        return name.to_string();
    }
    (2..).map(|n| format!("{name} (duplicate {n})")).find(|n| free(n)).expect("a free name")
}

fn collection(
    ctx: &Ctx,
    req: &GraphRequest,
    what: &str,
    items: Vec<Map<String, Value>>,
    props: Option<&[&str]>,
    by_id: bool,
) -> Result<GraphResponse, GraphError> {
    let top = odata::top(req, 100, 999)?;
    let start = odata::page_start(req, &items)?;
    let page: Vec<&Map<String, Value>> = items[start..].iter().take(top).collect();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx.context(req.version, what)));
    if items.len() - start > page.len()
        && let Some(last) = page.last()
    {
        body.insert("@odata.nextLink".into(), json!(odata::next_page_link(ctx, req, by_id, last, start + page.len())));
    }
    let value = page.iter().map(|i| Value::Object(props.map_or_else(|| (*i).clone(), |p| odata::project(i, p)))).collect();
    body.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// `GET /groups`.
pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["skip", "expand"])?;
    let select = odata::select(req, "group", PROPERTIES)?;
    let filter = odata::filter(req, "Group", FILTERABLE)?;
    let search = odata::search(req, "Group", &["displayName", "description", "mailNickname"])?;
    let order = odata::order_by(req, "Group", &["displayName"])?;
    let all = load(ctx).await?;
    let mut groups: Vec<&Map<String, Value>> = all
        .iter()
        .filter(|g| filter.as_ref().is_none_or(|f| odata::matches(f, g)) && search.as_ref().is_none_or(|s| s.matches(g)))
        .collect();
    if let Some((prop, descending)) = order {
        odata::sort(&mut groups, prop, descending);
    }
    let groups = groups.into_iter().cloned().collect();
    collection(ctx, req, "groups", groups, select.as_deref(), order.is_none())
}

/// `DELETE /groups/{id}`: the group and its memberships, for good.
pub(crate) async fn delete(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let gid = id.to_string();
    let deleted =
        ctx.db(move |dir| dir.delete_group_then(&tenant, &gid, |c| store::delete_extras(c, &tenant, kind::GROUP, &gid))).await?;
    match deleted {
        Some(()) => Ok(GraphResponse::no_content()),
        None => Err(GraphError::not_found(id)),
    }
}

/// `GET /groups/{id}`.
pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let select = odata::select(req, "group", PROPERTIES)?;
    let g = find(ctx, id).await?;
    let mut body = select.as_deref().map_or_else(|| g.clone(), |p| odata::project(&g, p));
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "groups/$entity")));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// `POST /groups`: a security group.
pub(crate) async fn create(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let name = body.get("displayName").and_then(Value::as_str).map(str::trim).filter(|n| !n.is_empty());
    let Some(name) = name.map(str::to_string) else {
        return Err(GraphError::bad_request("Invalid value specified for property 'displayName' of resource 'Group'."));
    };
    for required in ["mailEnabled", "mailNickname", "securityEnabled"] {
        if !body.contains_key(required) {
            return Err(GraphError::bad_request(format!("The property '{required}' is required when creating the entity.")));
        }
    }
    if body.get("mailEnabled") != Some(&Value::Bool(false))
        || body.get("securityEnabled") != Some(&Value::Bool(true))
        || body.get("groupTypes").and_then(Value::as_array).is_some_and(|a| !a.is_empty())
    {
        return Err(GraphError::bad_request(
            "The emulator creates security groups only: mailEnabled false, securityEnabled true, no groupTypes.",
        ));
    }
    for key in body.keys().filter(|k| !k.contains('@')) {
        if !PROPERTIES.iter().any(|p| p == key) {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        }
    }
    let mut extras = Map::new();
    extras.insert("displayName".into(), json!(name));
    for k in ["mailNickname", "description"] {
        if let Some(v) = body.get(k) {
            extras.insert(k.to_string(), v.clone());
        }
    }
    let tenant = ctx.tenant().to_string();
    let created = ctx
        .db(move |dir| {
            let stored = stored_name(&dir.groups(&tenant)?, &name);
            let ops = [Operation::EnsureGroups { display_names: vec![stored.clone()] }];
            dir.apply_then(&tenant, &ops, |c, _| {
                let group = crate::directory::local::group_named(c, &tenant, &stored)?;
                store::put_extras(c, &tenant, kind::GROUP, &group.id, &extras)?;
                Ok(full(&group, Some(&extras)))
            })
        })
        .await?;
    let mut g = created;
    g.insert("@odata.context".into(), json!(ctx.context(req.version, "groups/$entity")));
    Ok(GraphResponse::created(Value::Object(g)))
}

/// `GET /groups/{id}/members`.
pub(crate) async fn members(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["skip", "search", "expand", "orderby", "filter"])?;
    let select = odata::select(req, "user", users::PROPERTIES)?;
    find(ctx, id).await?;
    let tenant = ctx.tenant().to_string();
    let gid = id.to_ascii_lowercase();
    let members: Vec<Map<String, Value>> = ctx
        .db(move |dir| {
            let view = users::UserView::load(dir, &tenant)?;
            let mut members: Vec<_> = dir.users(&tenant)?.into_iter().filter(|u| u.group_ids.contains(&gid)).collect();
            members.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(members.iter().map(|u| view.full(u)).collect())
        })
        .await?;
    let members = members
        .into_iter()
        .map(|u| {
            let mut m = Map::new();
            m.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            m.insert("id".into(), u["id"].clone());
            m.extend(odata::project(&u, select.as_deref().unwrap_or(users::DEFAULT_PROPERTIES)));
            m
        })
        .collect();
    collection(ctx, req, "directoryObjects", members, None, true)
}

/// `GET /users/{id}/memberOf`.
pub(crate) async fn member_of(ctx: &Ctx, req: &GraphRequest, user_id: &str) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["skip", "search", "expand", "orderby", "filter"])?;
    let select = odata::select(req, "group", PROPERTIES)?;
    let tenant = ctx.tenant().to_string();
    let key = user_id.to_string();
    let groups = ctx
        .db(move |dir| {
            let Some(user) = dir.user_by_id_or_upn(&tenant, &key)? else { return Ok(None) };
            let extras = dir.emulator_read(|c| store::all_extras(c, &tenant, kind::GROUP))?;
            let mut groups: Vec<Group> = dir.groups(&tenant)?.into_iter().filter(|g| user.group_ids.contains(&g.id)).collect();
            groups.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(Some(groups.iter().map(|g| full(g, extras.get(&g.id.to_ascii_lowercase()))).collect::<Vec<_>>()))
        })
        .await?
        .ok_or_else(|| GraphError::not_found(user_id))?;
    let items = groups
        .into_iter()
        .map(|g| {
            let mut m = Map::new();
            m.insert("@odata.type".into(), json!("#microsoft.graph.group"));
            m.insert("id".into(), g["id"].clone());
            m.extend(select.as_deref().map_or_else(|| g.clone(), |p| odata::project(&g, p)));
            m
        })
        .collect();
    collection(ctx, req, "directoryObjects", items, None, true)
}

/// `POST /groups/{id}/members/$ref` with `{"@odata.id": ".../directoryObjects/{id}"}`.
pub(crate) async fn add_member(ctx: &Ctx, req: &GraphRequest, group_id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let Some(reference) = body.get("@odata.id").and_then(Value::as_str) else {
        return Err(GraphError::bad_request("A reference body needs '@odata.id'."));
    };
    let member = reference.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string();
    change_membership(ctx, group_id, &member, true).await
}

/// `DELETE /groups/{id}/members/{member}/$ref`.
pub(crate) async fn remove_member(ctx: &Ctx, group_id: &str, member: &str) -> Result<GraphResponse, GraphError> {
    change_membership(ctx, group_id, member, false).await
}

async fn change_membership(ctx: &Ctx, group_id: &str, member: &str, add: bool) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let (gid, uid) = (group_id.to_string(), member.to_string());
    let outcome = ctx
        .db(move |dir| {
            let Some(group) = dir.groups(&tenant)?.into_iter().find(|g| g.id.eq_ignore_ascii_case(&gid)) else {
                return Ok(Err(GraphError::not_found(&gid)));
            };
            let Some(user) = dir.user(&tenant, &uid)? else { return Ok(Err(GraphError::not_found(&uid))) };
            let is_member = user.group_ids.contains(&group.id);
            if add && is_member {
                return Ok(Err(GraphError::bad_request(
                    "One or more added object references already exist for the following modified properties: 'members'.",
                )));
            }
            if !add && !is_member {
                return Ok(Err(GraphError::not_found(&uid)));
            }
            let patch = if add {
                GuestPatch { add_to_groups: vec![group.display_name], ..Default::default() }
            } else {
                GuestPatch { remove_from_groups: vec![group.display_name], ..Default::default() }
            };
            dir.apply_then(&tenant, &[Operation::UpdateGuest { user_id: user.id, patch }], |_, _| Ok(()))?;
            Ok(Ok(()))
        })
        .await?;
    outcome?;
    Ok(GraphResponse::no_content())
}
