//! `/groups/delta()`: the membership of groups as `members@delta`, over the local directory's membership
//! change log (migration 9) — of groups named by id (`$filter=id eq '{id}'`, up to 50 joined by `or`), or
//! of every group of the tenant without a filter (groups created or deleted between rounds come from the
//! directory's change feed).
//!
//! As in Graph (group: delta; "Get incremental changes for groups"): the first round pages through the
//! current members of each group (`{"@odata.type": "#microsoft.graph.user", "id"}`), the same group
//! coming back on each page with the next part of its members (a group without members comes once,
//! without `members@delta`), and ends with an `@odata.deltaLink`; a round from a delta link returns the
//! groups whose membership changed since (and, without a filter, the groups created since), with the
//! members added and the ones removed (`"@removed": {"reason": "deleted"}`), and a group deleted since as
//! `{"id", "@removed": {"reason": "deleted"}}`. `$select` (`id`, `displayName`, `description`, `members`;
//! without it, `displayName` and the members) and `$filter` given in the first call live on in the
//! tokens. A token older than the configured lifetime (7 days), ahead of the log, from before what the
//! log still keeps (`LocalDirectory::purge_membership_log`) or issued before `POST
//! /_emulator/delta/invalidate` gets 400 `syncStateNotFound` (see `delta_token::refusal`). Page size
//! (members per page): `Prefer: odata.maxpagesize=N`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::delta_token::{self, DeltaToken};
use super::errors::GraphError;
use super::odata;
use super::router::{GraphRequest, GraphResponse};
use super::server::Ctx;

/// Graph's limit on objects in one delta `$filter`.
const MAX_IDS: usize = 50;
const PROPERTIES: &[&str] = &["id", "displayName", "description", "members"];

/// One member entry of a round: the group, the user, added or removed. A group without entries is
/// served with an empty user id (once, without `members@delta`), or removed when deleted.
#[derive(Clone, Debug)]
struct Entry {
    group: String,
    user: String,
    added: bool,
}

impl Entry {
    fn key(&self) -> String {
        format!("{}/{}", self.group, self.user)
    }
}

/// `GET /groups/delta()`.
pub(crate) async fn delta(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    odata::refuse(req, &["top", "skip", "search", "orderby", "count"])?;
    if req.param("expand").is_some() {
        return Err(GraphError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "The emulator's /groups/delta takes $select=members, not $expand.",
        ));
    }
    let page_size = req
        .header("Prefer")
        .and_then(|p| p.split(',').find_map(|x| x.trim().strip_prefix("odata.maxpagesize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(ctx.state.config.delta_page_size);
    let tenant = ctx.tenant().to_string();
    let (end, horizon) = ctx.db(|dir| dir.membership_log_bounds()).await?;
    let feed_end = ctx.db(|dir| dir.change_seq()).await?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let epoch = ctx.state.delta_epoch.load(Ordering::SeqCst);

    let state = if let Some(token) = req.param("deltatoken") {
        let s = group_token(token, "delta token")?;
        if let Err(refused) = check_fresh(ctx, &s, end, horizon, now_ms)? {
            return Ok(refused);
        }
        let feed = s.feed.map(|(_, to)| (to, feed_end));
        DeltaToken { phase: "c".into(), from: s.to, to: end, after: None, issued_ms: now_ms, epoch, feed, ..s }
    } else if let Some(token) = req.param("skiptoken") {
        let s = group_token(token, "skip token")?;
        if let Err(refused) = check_fresh(ctx, &s, end, horizon, now_ms)? {
            return Ok(refused);
        }
        s
    } else {
        let (groups, feed) = match odata::filter(req, "Group", &["id"])? {
            Some(filter) => {
                let t = tenant.clone();
                let all = ctx.db(move |dir| dir.groups(&t)).await?;
                let mut groups: Vec<String> = all
                    .iter()
                    .filter(|g| odata::matches(&filter, json!({ "id": g.id }).as_object().expect("an object")))
                    .map(|g| g.id.clone())
                    .collect();
                groups.sort();
                if groups.len() > MAX_IDS {
                    return Err(GraphError::unsupported_query(format!("A delta $filter may name at most {MAX_IDS} objects.")));
                }
                (groups, None)
            }
            None => (Vec::new(), Some((feed_end, feed_end))),
        };
        DeltaToken {
            feed,
            phase: "i".into(),
            from: end,
            to: end,
            groups: Some(groups),
            select: req.param("select").map(str::to_string),
            filter: req.param("filter").map(str::to_string),
            tenant: tenant.clone(),
            issued_ms: now_ms,
            epoch,
            ..Default::default()
        }
    };

    let mut view = req.clone();
    view.query.retain(|(k, _)| !k.trim_start_matches('$').eq_ignore_ascii_case("select"));
    if let Some(s) = &state.select {
        view.query.push(("$select".into(), s.clone()));
    }
    let select = odata::select(&view, "group", PROPERTIES)?;
    let props: Vec<&str> = select.unwrap_or_else(|| vec!["displayName", "members"]);

    // The groups as they are now, and the round's entries in (group, user) order.
    let names: BTreeMap<String, String> = super::groups::display_names(ctx).await?;
    let (tracked, created) = match state.feed {
        None => (state.groups.clone().unwrap_or_default(), BTreeSet::new()),
        Some((from, to)) => every_group(ctx, &names, state.phase == "c", from, to).await?,
    };
    let mut entries: Vec<Entry> = Vec::new();
    for gid in &tracked {
        let present = names.contains_key(gid);
        let (t, g, phase, from, to) = (tenant.clone(), gid.clone(), state.phase.clone(), state.from, state.to);
        let changes: Vec<(String, bool)> = if !present {
            vec![]
        } else if phase == "i" {
            ctx.db(move |dir| Ok(dir.group_members_by_id(&t, &g)?.unwrap_or_default().into_iter().map(|u| (u, true)).collect()))
                .await?
        } else {
            ctx.db(move |dir| dir.group_member_log(&g, from, to)).await?
        };
        if changes.is_empty() {
            // A first round lists every group, members or not; a later one only what changed.
            if (state.phase == "i" || created.contains(gid)) && present {
                entries.push(Entry { group: gid.clone(), user: String::new(), added: true });
            } else if state.phase != "i" && !present {
                entries.push(Entry { group: gid.clone(), user: String::new(), added: false });
            }
            continue;
        }
        let mut changes = changes;
        changes.sort();
        entries.extend(changes.into_iter().map(|(user, added)| Entry { group: gid.clone(), user, added }));
    }
    let remaining: Vec<&Entry> =
        entries.iter().filter(|e| state.after.as_ref().is_none_or(|a| e.key().as_str() > a.as_str())).collect();
    let page: Vec<&Entry> = remaining.iter().take(page_size).copied().collect();

    let mut value: Vec<Value> = Vec::new();
    for e in &page {
        if value.last().and_then(|v| v.get("id")).and_then(Value::as_str) != Some(e.group.as_str()) {
            let mut item = Map::new();
            item.insert("id".into(), json!(e.group));
            match names.get(&e.group) {
                None => {
                    item.insert("@removed".into(), json!({ "reason": "deleted" }));
                }
                Some(name) => {
                    if props.contains(&"displayName") {
                        item.insert("displayName".into(), json!(name));
                    }
                    if props.contains(&"description") {
                        item.insert("description".into(), Value::Null);
                    }
                }
            }
            value.push(Value::Object(item));
        }
        if e.user.is_empty() || !props.contains(&"members") || !names.contains_key(&e.group) {
            continue;
        }
        let item = value.last_mut().and_then(Value::as_object_mut).expect("the group's item");
        let members = item.entry("members@delta").or_insert_with(|| json!([]));
        let mut member = json!({ "@odata.type": "#microsoft.graph.user", "id": e.user });
        if !e.added {
            member["@removed"] = json!({ "reason": "deleted" });
        }
        members.as_array_mut().expect("an array").push(member);
    }

    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx.context(req.version, "groups")));
    if remaining.len() > page.len() {
        let next = DeltaToken { after: page.last().map(|e| e.key()), ..state.clone() };
        let bare = GraphRequest { query: Vec::new(), ..req.clone() };
        body.insert("@odata.nextLink".into(), json!(odata::link_with(ctx, &bare, "$skiptoken", &next.encode(), &[])));
    } else {
        let next =
            DeltaToken { phase: "c".into(), from: state.to, to: state.to, after: None, issued_ms: now_ms, ..state.clone() };
        let bare = GraphRequest { query: Vec::new(), ..req.clone() };
        body.insert("@odata.deltaLink".into(), json!(odata::link_with(ctx, &bare, "$deltatoken", &next.encode(), &[])));
    }
    body.insert("value".into(), Value::Array(value));
    Ok(GraphResponse::ok(Value::Object(body)))
}

/// The groups a delta of every group covers: those there now and, in a later round, those deleted in
/// the feed's window (from, to]; and the ones created in it (served even without member changes).
async fn every_group(
    ctx: &Ctx,
    names: &BTreeMap<String, String>,
    later: bool,
    from: i64,
    to: i64,
) -> Result<(Vec<String>, BTreeSet<String>), GraphError> {
    let mut tracked: BTreeSet<String> = names.keys().cloned().collect();
    let mut created = BTreeSet::new();
    if later {
        let tenant = ctx.tenant().to_ascii_lowercase();
        let changes = ctx.db(move |dir| dir.changes_since(from)).await?;
        for c in changes.iter().filter(|c| c.seq <= to && c.entity == "group" && c.tenant_id.eq_ignore_ascii_case(&tenant)) {
            match c.change.as_str() {
                "deleted" => {
                    tracked.insert(c.entity_id.clone());
                }
                "created" => {
                    created.insert(c.entity_id.clone());
                }
                _ => {}
            }
        }
    }
    Ok((tracked.into_iter().collect(), created))
}

/// A token of a group delta (it names the groups it tracks; a users' delta token is not one).
fn group_token(token: &str, what: &str) -> Result<DeltaToken, GraphError> {
    let t = DeltaToken::decode(token, what)?;
    if t.groups.is_none() {
        return Err(GraphError::bad_request(format!("The {what} '{token}' is not valid.")));
    }
    Ok(t)
}

/// The refusal of a token that can no longer be honoured (see `delta_token::refusal`).
fn check_fresh(ctx: &Ctx, s: &DeltaToken, end: i64, horizon: i64, now_ms: i64) -> Result<Result<(), GraphResponse>, GraphError> {
    let Some(stale) = s.stale(ctx, end, horizon, now_ms, "the membership log")? else { return Ok(Ok(())) };
    tracing::debug!("delta token refused: resync required");
    Ok(Err(delta_token::refusal(ctx, stale)))
}
