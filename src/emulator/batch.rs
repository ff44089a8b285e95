//! `POST /$batch` (graph-contract 1.10): up to 20 requests with unique ids (case-insensitive); a body
//! needs a `Content-Type` header; `dependsOn` orders requests, and a request whose prerequisite failed
//! answers 424. Each request is authorized, throttled (its own 429 inside a 200 batch) and may meet an
//! injected 5xx like a request of its own. Requests run in dependency order, one at a time; the
//! answers come back shuffled (seeded), since Graph promises no order.

use std::collections::{HashMap, HashSet};

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value, json};

use super::errors::GraphError;
use super::faults::injected;
use super::router::{ApiVersion, GraphRequest, GraphResponse, ResponseBody, parse_query};
use super::server::{Ctx, execute};

const MAX_REQUESTS: usize = 20;

struct Item {
    id: String,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn parse(body: &Value) -> Result<Vec<Item>, GraphError> {
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return Err(bad("Invalid batch payload format: a 'requests' array is required."));
    };
    if requests.is_empty() {
        return Err(bad("Invalid batch payload format: the batch holds no request."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad(format!("Number of batch requests ({}) exceeds the limit of {MAX_REQUESTS}.", requests.len())));
    }
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    for (i, r) in requests.iter().enumerate() {
        let field = |name: &str| r.get(name).and_then(Value::as_str).map(str::to_string);
        let id =
            field("id").filter(|s| !s.trim().is_empty()).ok_or_else(|| bad(format!("Request {i} of the batch has no id.")))?;
        if !seen.insert(id.to_ascii_lowercase()) {
            return Err(bad(format!("Batch request ids must be unique: '{id}' appears more than once.")));
        }
        let method = field("method")
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .filter(|m| [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(m))
            .ok_or_else(|| bad(format!("Request '{id}' has no valid method (GET, POST, PUT, PATCH or DELETE).")))?;
        let url = field("url").filter(|u| !u.trim().is_empty()).ok_or_else(|| bad(format!("Request '{id}' has no url.")))?;
        let mut headers = HeaderMap::new();
        if let Some(h) = r.get("headers") {
            let Some(h) = h.as_object() else { return Err(bad(format!("The headers of request '{id}' must be an object."))) };
            for (k, v) in h {
                let Some(v) = v.as_str() else { return Err(bad(format!("Header '{k}' of request '{id}' must be a string."))) };
                if let (Ok(n), Ok(val)) = (HeaderName::try_from(k.as_str()), HeaderValue::try_from(v)) {
                    headers.insert(n, val);
                }
            }
        }
        let body = r.get("body").filter(|b| !b.is_null()).cloned();
        if body.is_some() && !headers.contains_key(http::header::CONTENT_TYPE) {
            return Err(bad(format!("Request '{id}' has a body but no Content-Type header.")));
        }
        let depends_on = match r.get("dependsOn") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| d.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("dependsOn of request '{id}' must list ids.")))?,
            Some(_) => return Err(bad(format!("dependsOn of request '{id}' must be an array."))),
        };
        items.push(Item { id, method, url, headers, body, depends_on });
    }
    let ids: HashSet<String> = items.iter().map(|i| i.id.to_ascii_lowercase()).collect();
    for i in &items {
        if let Some(d) = i.depends_on.iter().find(|d| !ids.contains(&d.to_ascii_lowercase())) {
            return Err(bad(format!("Request '{}' depends on '{d}', which is not in the batch.", i.id)));
        }
    }
    Ok(items)
}

/// A dependency order (Kahn's algorithm, batch order among ready requests), or 400 on a cycle.
fn order(items: &[Item]) -> Result<Vec<usize>, GraphError> {
    let index: HashMap<String, usize> = items.iter().enumerate().map(|(i, it)| (it.id.to_ascii_lowercase(), i)).collect();
    let mut done = vec![false; items.len()];
    let mut out = Vec::new();
    while out.len() < items.len() {
        let next =
            (0..items.len()).find(|&i| !done[i] && items[i].depends_on.iter().all(|d| done[index[&d.to_ascii_lowercase()]]));
        match next {
            Some(i) => {
                done[i] = true;
                out.push(i);
            }
            None => return Err(bad("The dependsOn of the batch requests form a cycle.")),
        }
    }
    Ok(out)
}

/// Path segments and query parameters.
type Target = (Vec<String>, Vec<(String, String)>);

/// Splits an item's url (`/users?$top=5` or `users`) into path segments and query. Graph takes only
/// URLs relative to the batch's version ("json-batching": "url ... relative resource URL"); an
/// absolute one is answered 400 for its first segment, so an SDK that sends one here fails as in
/// production.
fn split_url(url: &str, _version: ApiVersion) -> Result<Target, String> {
    let rest = url.trim();
    if let Some(pos) = rest.find("://") {
        return Err(format!("Resource not found for the segment '{}:'", &rest[..pos]));
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.starts_with("/v1.0/") || path.starts_with("/beta/") || path == "/$batch" || path == "$batch" {
        return Err(format!("'{url}' is not a relative URL of this batch's version (or is a nested $batch)"));
    }
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    Ok((segments, parse_query(Some(query).filter(|q| !q.is_empty()))))
}

pub(crate) async fn handle(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    if req.in_batch {
        return Err(bad("A $batch request cannot be nested in a batch."));
    }
    let body = req.body.as_ref().ok_or_else(|| bad("Invalid batch payload format: a body is required."))?;
    let items = parse(body)?;
    let order = order(&items)?;
    let mut status: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    for i in order {
        let item = &items[i];
        let failed_dependency = item.depends_on.iter().find(|d| !(200..300).contains(&status[&d.to_ascii_lowercase()]));
        let resp = if let Some(d) = failed_dependency {
            ctx.error_response(&GraphError::new(
                StatusCode::FAILED_DEPENDENCY,
                "FailedDependency",
                format!("The request was not run: request '{d}', which it depends on, failed."),
            ))
        } else {
            run_item(ctx, req.version, item).await
        };
        ctx.state.stat(|s| s.batch_items += 1);
        status.insert(item.id.to_ascii_lowercase(), resp.status.as_u16());
        let mut headers = Map::new();
        if matches!(resp.body, ResponseBody::Json(_)) {
            headers.insert("Content-Type".into(), json!("application/json"));
        }
        for (k, v) in &resp.headers {
            headers.insert(k.clone(), json!(v));
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(item.id));
        out.insert("status".into(), json!(resp.status.as_u16()));
        out.insert("headers".into(), Value::Object(headers));
        match resp.body {
            ResponseBody::Json(v) => {
                out.insert("body".into(), v);
            }
            ResponseBody::Text(t) => {
                out.insert("body".into(), json!(t));
            }
            // JSON batching carries other media types base64-encoded, with their Content-Type.
            ResponseBody::Binary { content_type, bytes } => {
                use base64::Engine as _;
                headers_of(&mut out).insert("Content-Type".into(), json!(content_type));
                out.insert("body".into(), json!(base64::engine::general_purpose::STANDARD.encode(&bytes)));
            }
            ResponseBody::Empty => {}
        }
        responses.push(Value::Object(out));
    }
    let seed = ctx.state.config.faults.seed.unwrap_or_else(rand::random);
    let n = responses.len() as u64;
    responses.shuffle(&mut StdRng::seed_from_u64(seed ^ n));
    Ok(GraphResponse::ok(json!({ "responses": responses })))
}

fn headers_of(out: &mut Map<String, Value>) -> &mut Map<String, Value> {
    out.entry("headers").or_insert_with(|| Value::Object(Map::new())).as_object_mut().expect("headers is an object")
}

async fn run_item(ctx: &Ctx, version: ApiVersion, item: &Item) -> GraphResponse {
    let (segments, query) = match split_url(&item.url, version) {
        Ok(x) => x,
        Err(e) => return ctx.error_response(&bad(format!("{e}."))),
    };
    let f = ctx.state.faults.config();
    if f.fault_rate > 0.0 {
        let d = ctx.state.faults.decide(false);
        if let Some(status) = d.fault {
            ctx.state.stat(|s| s.injected_faults += 1);
            return ctx.error_response(&injected(status, f.fault_retry_after));
        }
    }
    let sub = GraphRequest {
        method: item.method.clone(),
        version,
        segments,
        query,
        headers: item.headers.clone(),
        body: item.body.clone(),
        raw: None,
        in_batch: true,
    };
    execute(ctx, sub).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        let (s, q) = split_url("/users?$top=5&$select=id", ApiVersion::V1).unwrap();
        assert_eq!(s, vec!["users"]);
        assert_eq!(q, vec![("$top".to_string(), "5".to_string()), ("$select".to_string(), "id".to_string())]);
        let absolute = split_url("https://graph.microsoft.com/v1.0/users/abc", ApiVersion::V1).unwrap_err();
        assert_eq!(absolute, "Resource not found for the segment 'https:'");
        let (s, _) = split_url("/users/abc", ApiVersion::V1).unwrap();
        assert_eq!(s, vec!["users", "abc"]);
        assert!(split_url("/v1.0/users", ApiVersion::V1).is_err());
    }

    #[test]
    fn limits_ids_and_cycles() {
        let many: Vec<Value> = (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"})).collect();
        assert!(parse(&json!({ "requests": many })).is_err());
        let dup =
            json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]});
        assert!(parse(&dup).is_err());
        let cycle = json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
            {"id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"]}]});
        assert!(order(&parse(&cycle).unwrap()).is_err());
        let no_type = json!({"requests": [{"id": "1", "method": "POST", "url": "/invitations", "body": {}}]});
        assert!(parse(&no_type).is_err());
    }
}
