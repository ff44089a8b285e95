//! `/users`: list (paging with `$top` up to 999 and an opaque `$skiptoken`, `$filter`, `$select`,
//! `$count`, `$orderby` on `displayName` or `userPrincipalName`, `$search` with `ConsistencyLevel:
//! eventual`), `/users/$count`, `/users/{id | userPrincipalName}` (GET, PATCH, DELETE) and
//! `/users/delta()` over the directory's change feed.
//!
//! As in Graph, a user read without `$select` carries only the default properties (`businessPhones`,
//! `displayName`, `givenName`, `jobTitle`, `mail`, `mobilePhone`, `officeLocation`,
//! `preferredLanguage`, `surname`, `userPrincipalName`, `id`): `userType`, `externalUserState` and
//! the like must be selected. Pages are ordered by id unless `$orderby` says otherwise.
//!
//! Delta: the first round pages through every user and ends with an `@odata.deltaLink`; later rounds
//! return the users changed since (whole, as selected) and the deleted ones as
//! `{"id", "@removed": {"reason": "deleted"}}` (a deleted user is in the recycle bin, `deleted_items`). `$select` and
//! `$filter` (`id eq` only) given in the first call live on in the tokens. `$deltatoken=latest` skips
//! the first round. A token older than the configured lifetime (7 days), ahead of the file's change feed
//! or issued before `POST /_emulator/delta/invalidate` gets 400 `syncStateNotFound` (Graph's documented
//! code for directory objects, with an OData error body). Page size: `Prefer: odata.maxpagesize=N`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::delta_token::{self, DeltaToken};
use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;
use crate::core::model::{GuestUser, RedemptionState, TenantIdentity, UserType};
use crate::core::operation::{GuestPatch, Operation};
use crate::core::policy::email_domain;
use crate::directory::DirectoryError;
use crate::directory::local::LocalDirectory;

/// Every property a user has here.
pub(crate) const PROPERTIES: &[&str] = &[
    "id",
    "accountEnabled",
    "businessPhones",
    "companyName",
    "createdDateTime",
    "creationType",
    "department",
    "displayName",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "givenName",
    "identities",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "otherMails",
    "preferredLanguage",
    "surname",
    "usageLocation",
    "userPrincipalName",
    "userType",
];

/// What Graph returns without `$select`.
pub(crate) const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

pub(crate) const FILTERABLE: &[&str] = &[
    "id",
    "accountEnabled",
    "companyName",
    "creationType",
    "department",
    "displayName",
    "externalUserState",
    "givenName",
    "jobTitle",
    "mail",
    "otherMails",
    "surname",
    "userPrincipalName",
    "userType",
];

/// The profile attributes (`users.attributes` of the directory, `core::sync::is_profile_attribute`),
/// writable by PATCH.
const PROFILE_STRINGS: &[&str] = &[
    "givenName",
    "surname",
    "jobTitle",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "companyName",
    "department",
    "usageLocation",
];

/// Graph properties the emulator cannot change (the directory derives them, or keeps them fixed).
const FIXED: &[&str] = &[
    "id",
    "userPrincipalName",
    "creationType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "identities",
    "otherMails",
    "businessPhones",
    "createdDateTime",
];

/// What the full representation of a user needs besides the user.
pub(crate) struct UserView {
    /// The tenant's initial domain.
    initial_domain: String,
    /// Domains of the other tenants of the file (a guest from one of them is an Entra ID user).
    other_domains: BTreeSet<String>,
    /// Profile attributes by user id.
    attributes: HashMap<String, BTreeMap<String, String>>,
}

impl UserView {
    /// What the users of the tenant need.
    pub(crate) fn load(dir: &LocalDirectory, tenant_id: &str) -> Result<Self, DirectoryError> {
        Self::load_for(dir, tenant_id, None)
    }

    /// What the users of the tenant need, or only the user `user_id`.
    fn load_for(dir: &LocalDirectory, tenant_id: &str, user_id: Option<&str>) -> Result<Self, DirectoryError> {
        let tenants = dir.tenants()?;
        let me: Option<&TenantIdentity> = tenants.iter().find(|t| t.tenant_id == tenant_id);
        let initial_domain = me.map(|t| t.initial_domain.clone()).unwrap_or_default();
        let other_domains = tenants
            .iter()
            .filter(|t| t.tenant_id != tenant_id)
            .flat_map(|t| std::iter::once(t.initial_domain.clone()).chain(t.verified_domains.iter().cloned()))
            .collect();
        let attributes = dir.emulator_read(|c| LocalDirectory::user_attributes_in(c, tenant_id, user_id))?;
        Ok(Self { initial_domain, other_domains, attributes })
    }

    /// Every property of a user, as Graph would spell it.
    pub(crate) fn full(&self, u: &GuestUser) -> Map<String, Value> {
        let guest = u.creation_type.as_deref() == Some("Invitation") || u.user_type == UserType::Guest;
        let mut identities = vec![json!({
            "signInType": "userPrincipalName",
            "issuer": self.initial_domain,
            "issuerAssignedId": u.user_principal_name,
        })];
        if guest && u.external_user_state == Some(RedemptionState::Accepted) {
            let issuer =
                if self.other_domains.contains(&email_domain(&u.mail).to_ascii_lowercase()) { "ExternalAzureAD" } else { "mail" };
            identities.push(json!({ "signInType": "federated", "issuer": issuer, "issuerAssignedId": null }));
        }
        let mut m = Map::new();
        m.insert("id".into(), json!(u.id));
        m.insert("accountEnabled".into(), json!(u.account_enabled));
        m.insert("businessPhones".into(), json!([]));
        m.insert("createdDateTime".into(), Value::Null);
        m.insert("creationType".into(), json!(u.creation_type));
        m.insert("displayName".into(), json!(u.display_name));
        m.insert("externalUserState".into(), json!(u.external_user_state.map(|s| s.as_str())));
        m.insert("externalUserStateChangeDateTime".into(), json!(u.external_user_state_change_date_time));
        m.insert("identities".into(), Value::Array(identities));
        m.insert("mail".into(), json!(u.mail));
        m.insert("otherMails".into(), if guest { json!([u.mail]) } else { json!([]) });
        m.insert("userPrincipalName".into(), json!(u.user_principal_name));
        m.insert("userType".into(), json!(u.user_type.as_str()));
        for p in PROFILE_STRINGS {
            m.insert(p.to_string(), Value::Null);
        }
        if let Some(attributes) = self.attributes.get(&u.id) {
            for (k, v) in attributes {
                m.insert(k.clone(), json!(v));
            }
        }
        m
    }
}

/// Every user of the caller's tenant in full, by id.
pub(crate) async fn load_all(ctx: &Ctx) -> Result<Vec<Map<String, Value>>, GraphError> {
    let tenant = ctx.tenant().to_string();
    ctx.db(move |dir| {
        let view = UserView::load(dir, &tenant)?;
        let mut users = dir.users(&tenant)?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users.iter().map(|u| view.full(u)).collect())
    })
    .await
}

/// The user with this mail (any case), in full, as a list of zero or one.
async fn load_by_mail(ctx: &Ctx, mail: &str) -> Result<Vec<Map<String, Value>>, GraphError> {
    let tenant = ctx.tenant().to_string();
    let mail = mail.to_string();
    ctx.db(move |dir| {
        let Some(user) = dir.user_by_mail(&tenant, &mail)? else { return Ok(vec![]) };
        Ok(vec![UserView::load_for(dir, &tenant, Some(&user.id))?.full(&user)])
    })
    .await
}

/// The address of a filter that is exactly `mail eq '<address>'`.
fn mail_equals(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("mail eq '")?.strip_suffix('\'')?;
    let value = rest.replace("''", "'");
    // A lone quote left inside means the filter has more to it than one comparison.
    (!value.contains('\'') || rest.matches("''").count() * 2 == rest.matches('\'').count()).then_some(value)
}

/// One user by id or user principal name, in full.
async fn load_one(ctx: &Ctx, id_or_upn: &str) -> Result<Option<Map<String, Value>>, GraphError> {
    let tenant = ctx.tenant().to_string();
    let key = id_or_upn.to_string();
    ctx.db(move |dir| {
        let Some(user) = dir.user_by_id_or_upn(&tenant, &key)? else { return Ok(None) };
        Ok(Some(UserView::load_for(dir, &tenant, Some(&user.id))?.full(&user)))
    })
    .await
}

fn context_for(ctx: &Ctx, req: &GraphRequest, what: &str, select: Option<&[&str]>) -> String {
    match select {
        Some(s) => ctx.context(req.version, &format!("{what}({})", s.join(","))),
        None => ctx.context(req.version, what),
    }
}

/// Properties `$orderby` takes on users (without advanced queries Graph sorts by these two).
const ORDERABLE: &[&str] = &["displayName", "userPrincipalName"];
/// Properties `$search` looks in (tokenized, `ConsistencyLevel: eventual`).
const SEARCHABLE: &[&str] = &["displayName", "givenName", "surname", "mail", "userPrincipalName", "otherMails", "jobTitle"];

/// `GET /users`.
pub(crate) async fn list(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["skip", "expand"])?;
    let select = odata::select(req, "user", PROPERTIES)?;
    let filter = odata::filter(req, "User", FILTERABLE)?;
    let search = odata::search(req, "User", SEARCHABLE)?;
    let order = odata::order_by(req, "User", ORDERABLE)?;
    let top = odata::top(req, 100, 999)?;
    let count = odata::count(req)?;
    // `mail eq '…'` (how clients find a user by address, once per invitation) reads the one candidate
    // through the mail index instead of every user; the filter still decides, so answers are the same.
    let all = match req.param("filter").and_then(mail_equals) {
        Some(mail) => load_by_mail(ctx, &mail).await?,
        None => load_all(ctx).await?,
    };
    let mut matching: Vec<&Map<String, Value>> = all
        .iter()
        .filter(|u| filter.as_ref().is_none_or(|f| odata::matches(f, u)) && search.as_ref().is_none_or(|s| s.matches(u)))
        .collect();
    if let Some((prop, descending)) = order {
        odata::sort(&mut matching, prop, descending);
    }
    let p = UserPage { top, select: select.as_deref(), count, what: "users", by_id: order.is_none() };
    page_of(ctx, req, &matching, p)
}

/// What a page of a user list shows.
pub(super) struct UserPage<'a> {
    pub top: usize,
    pub select: Option<&'a [&'static str]>,
    pub count: bool,
    /// The entity set the context names (`users`, `users` of deleted items…).
    pub what: &'a str,
    /// Whether `matching` is in id order: the skip token then names the last id served (stable while users
    /// come and go); otherwise it counts the users served.
    pub by_id: bool,
}

/// One page of `matching`, as Graph answers a user list: from the request's `$skiptoken`,
/// `@odata.count` when asked, a `@odata.nextLink` with a skip token when more follow, each user projected
/// on the selected properties.
pub(super) fn page_of(
    ctx: &Ctx,
    req: &GraphRequest,
    matching: &[&Map<String, Value>],
    p: UserPage<'_>,
) -> Result<GraphResponse, GraphError> {
    let start = odata::page_start(req, matching)?;
    let page: Vec<&Map<String, Value>> = matching[start..].iter().take(p.top).copied().collect();
    let more = matching.len() - start > page.len();
    let props = p.select.unwrap_or(DEFAULT_PROPERTIES);
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context_for(ctx, req, p.what, p.select)));
    if p.count {
        body.insert("@odata.count".into(), json!(matching.len()));
    }
    if more && let Some(last) = page.last() {
        body.insert("@odata.nextLink".into(), json!(odata::next_page_link(ctx, req, p.by_id, last, start + page.len())));
    }
    body.insert("value".into(), Value::Array(page.iter().map(|u| Value::Object(odata::project(u, props))).collect()));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// `GET /users/$count` (needs `ConsistencyLevel: eventual`).
pub(crate) async fn count(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    if !req.eventual() {
        return Err(GraphError::bad_request("Count is not currently supported without the header 'ConsistencyLevel: eventual'."));
    }
    let filter = odata::filter(req, "User", FILTERABLE)?;
    let n = load_all(ctx).await?.iter().filter(|u| filter.as_ref().is_none_or(|f| odata::matches(f, u))).count();
    Ok(GraphResponse::text(StatusCode::OK, n.to_string()))
}

/// `GET /users/{id | userPrincipalName}`.
pub(crate) async fn get(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["expand"])?;
    let select = odata::select(req, "user", PROPERTIES)?;
    let user = load_one(ctx, id).await?.ok_or_else(|| GraphError::not_found(id))?;
    let mut body = odata::project(&user, select.as_deref().unwrap_or(DEFAULT_PROPERTIES));
    body.insert("@odata.context".into(), json!(context_for(ctx, req, "users", select.as_deref()) + "/$entity"));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// `PATCH /users/{id}`: `displayName`, `userType`, `accountEnabled`, `mail` (the user principal name
/// stays) and the profile strings (`null` clears one), as one `UpdateGuest` of the directory.
pub(crate) async fn update(ctx: &Ctx, req: &GraphRequest, id: &str) -> Result<GraphResponse, GraphError> {
    let body = req.object_body()?;
    let mut patch = GuestPatch::default();
    for (key, value) in body {
        if key.contains('@') {
            continue;
        }
        let Some(name) = PROPERTIES.iter().find(|p| p.eq_ignore_ascii_case(key)).copied() else {
            return Err(GraphError::bad_request(format!(
                "Property '{key}' does not exist as a declared property or extension property."
            )));
        };
        match name {
            "displayName" => match value.as_str().map(str::trim) {
                Some(n) if !n.is_empty() => patch.display_name = Some(n.to_string()),
                _ => {
                    return Err(GraphError::bad_request(
                        "Invalid value specified for property 'displayName' of resource 'User'.",
                    ));
                }
            },
            "userType" => match value.as_str().and_then(UserType::parse) {
                Some(t) => patch.user_type = Some(t),
                None => {
                    return Err(GraphError::bad_request(
                        "Invalid value specified for property 'userType' of resource 'User': Guest or Member.",
                    ));
                }
            },
            "accountEnabled" => match value.as_bool() {
                Some(b) => patch.account_enabled = Some(b),
                None => {
                    return Err(GraphError::bad_request(
                        "Invalid value specified for property 'accountEnabled' of resource 'User'.",
                    ));
                }
            },
            "mail" => match value.as_str().map(str::trim) {
                Some(m) if crate::core::validate::email(m).is_ok() => patch.mail = Some(m.to_string()),
                _ => {
                    return Err(GraphError::bad_request("Invalid value specified for property 'mail' of resource 'User'."));
                }
            },
            n if PROFILE_STRINGS.contains(&n) => match value {
                Value::String(v) => {
                    patch.attributes.insert(n.to_string(), Some(v.clone()));
                }
                Value::Null => {
                    patch.attributes.insert(n.to_string(), None);
                }
                _ => {
                    return Err(GraphError::bad_request(format!(
                        "Invalid value specified for property '{n}' of resource 'User'."
                    )));
                }
            },
            n if FIXED.contains(&n) => {
                return Err(GraphError::bad_request(format!(
                    "Property '{n}' cannot be changed here. (emulator: the local directory derives or fixes it)"
                )));
            }
            n => return Err(GraphError::bad_request(format!("Property '{n}' cannot be changed."))),
        }
    }
    let tenant = ctx.tenant().to_string();
    let key = id.to_string();
    let found = ctx
        .db(move |dir| {
            let Some(user) = dir.user_by_id_or_upn(&tenant, &key)? else { return Ok(false) };
            let ops = if patch.is_empty() { vec![] } else { vec![Operation::UpdateGuest { user_id: user.id.clone(), patch }] };
            dir.apply_then(&tenant, &ops, |_, _| Ok(()))?;
            Ok(true)
        })
        .await?;
    if !found {
        return Err(GraphError::not_found(id));
    }
    Ok(GraphResponse::no_content())
}

/// `DELETE /users/{id}`.
pub(crate) async fn delete(ctx: &Ctx, id: &str) -> Result<GraphResponse, GraphError> {
    let tenant = ctx.tenant().to_string();
    let key = id.to_string();
    let found = ctx
        .db(move |dir| {
            let Some(user) = dir.user_by_id_or_upn(&tenant, &key)? else { return Ok(false) };
            dir.apply_then(&tenant, &[Operation::DeleteGuest { user_id: user.id.clone() }], |_, _| Ok(()))?;
            Ok(true)
        })
        .await?;
    if !found {
        return Err(GraphError::not_found(id));
    }
    Ok(GraphResponse::no_content())
}

// ---------------------------------------------------------------------------------------------
// Delta

/// `GET /users/delta()`.
pub(crate) async fn delta(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["top", "skip", "search", "expand", "orderby"])?;
    let page_size = req
        .header("Prefer")
        .and_then(|p| p.split(',').find_map(|x| x.trim().strip_prefix("odata.maxpagesize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(ctx.state.config.delta_page_size);
    let tenant = ctx.tenant().to_string();
    let current = ctx.db(|dir| dir.change_seq()).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let epoch = ctx.state.delta_epoch.load(Ordering::SeqCst);
    let state = if let Some(token) = req.param("deltatoken") {
        if token.trim().eq_ignore_ascii_case("latest") {
            let s = DeltaToken {
                phase: "c".into(),
                from: current,
                to: current,
                select: req.param("select").map(str::to_string),
                filter: req.param("filter").map(str::to_string),
                tenant: tenant.clone(),
                issued_ms: now_ms,
                epoch,
                ..Default::default()
            };
            let mut body = Map::new();
            body.insert("@odata.context".into(), json!(ctx.context(req.version, "users")));
            body.insert("@odata.deltaLink".into(), json!(delta_link(ctx, req, &s)));
            body.insert("value".into(), json!([]));
            return Ok(GraphResponse::ok(Value::Object(body)));
        }
        let s = DeltaToken::decode(token, "delta token")?;
        if let Err(refused) = check_fresh(ctx, &s, current, now_ms)? {
            return Ok(refused);
        }
        DeltaToken { phase: "c".into(), from: s.from, to: current, after: None, issued_ms: now_ms, epoch, ..s }
    } else if let Some(token) = req.param("skiptoken") {
        let s = DeltaToken::decode(token, "skip token")?;
        if let Err(refused) = check_fresh(ctx, &s, current, now_ms)? {
            return Ok(refused);
        }
        s
    } else {
        // A first round belongs to the current epoch: after a reset, fresh rounds must keep working.
        DeltaToken {
            phase: "i".into(),
            from: current,
            to: current,
            select: req.param("select").map(str::to_string),
            filter: req.param("filter").map(str::to_string),
            tenant: tenant.clone(),
            issued_ms: now_ms,
            epoch,
            ..Default::default()
        }
    };
    // `$select` and `$filter` come from the tokens after the first call.
    let mut view = req.clone();
    view.query.retain(|(k, _)| !["select", "filter"].contains(&k.trim_start_matches('$').to_ascii_lowercase().as_str()));
    if let Some(s) = &state.select {
        view.query.push(("$select".into(), s.clone()));
    }
    if let Some(f) = &state.filter {
        view.query.push(("$filter".into(), f.clone()));
    }
    let select = odata::select(&view, "user", PROPERTIES)?;
    let filter = odata::filter(&view, "User", &["id"])?;
    let mut props: Vec<&str> = select.clone().unwrap_or_else(|| DEFAULT_PROPERTIES.to_vec());
    if !props.contains(&"id") {
        props.insert(0, "id");
    }

    let all = load_all(ctx).await?;
    let by_id: HashMap<&str, &Map<String, Value>> = all.iter().map(|u| (u["id"].as_str().unwrap_or_default(), u)).collect();
    let ids: Vec<String> = if state.phase == "i" {
        all.iter().map(|u| u["id"].as_str().unwrap_or_default().to_string()).collect()
    } else {
        let (from, to, t) = (state.from, state.to, tenant.clone());
        let changed: BTreeSet<String> = ctx
            .db(move |dir| {
                Ok(dir
                    .changes_since(from)?
                    .into_iter()
                    .filter(|c| c.seq <= to && c.tenant_id == t && c.entity == "user")
                    .map(|c| c.entity_id)
                    .collect())
            })
            .await?;
        changed.into_iter().collect()
    };
    let matching: Vec<&String> = ids
        .iter()
        .filter(|id| match (&filter, by_id.get(id.as_str())) {
            (None, _) => true,
            (Some(f), Some(u)) => odata::matches(f, u),
            (Some(f), None) => odata::matches(f, &json!({ "id": id }).as_object().cloned().unwrap_or_default()),
        })
        .filter(|id| state.after.as_ref().is_none_or(|a| id.as_str() > a.as_str()))
        .collect();
    let page: Vec<&String> = matching.iter().take(page_size).copied().collect();
    let value: Vec<Value> = page
        .iter()
        .map(|id| match by_id.get(id.as_str()) {
            Some(u) => Value::Object(odata::project(u, &props)),
            None => json!({ "id": id, "@removed": { "reason": "deleted" } }),
        })
        .collect();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "users")));
    if matching.len() > page.len() {
        let next = DeltaToken { after: page.last().map(|s| s.to_string()), ..state.clone() };
        body.insert("@odata.nextLink".into(), json!(odata::link_with(ctx, req, "$skiptoken", &next.encode(), &[])));
    } else {
        let next =
            DeltaToken { phase: "c".into(), from: state.to, to: state.to, after: None, issued_ms: now_ms, ..state.clone() };
        body.insert("@odata.deltaLink".into(), json!(delta_link(ctx, req, &next)));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::ok(Value::Object(body)))
}

fn delta_link(ctx: &Ctx, req: &GraphRequest, s: &DeltaToken) -> String {
    let bare = GraphRequest { query: Vec::new(), ..req.clone() };
    odata::link_with(ctx, &bare, "$deltatoken", &s.encode(), &[])
}

/// The refusal of a token that can no longer be honoured (see `delta_token::refusal`).
fn check_fresh(ctx: &Ctx, s: &DeltaToken, current: i64, now_ms: i64) -> Result<Result<(), GraphResponse>, GraphError> {
    let Some(stale) = s.stale(ctx, current, i64::MIN, now_ms, "the directory's change feed")? else { return Ok(Ok(())) };
    tracing::debug!("delta token refused: resync required");
    Ok(Err(delta_token::refusal(ctx, stale)))
}
