//! HTTP and the request pipeline.
//!
//! One task per connection (HTTP/1.1, keep-alive). A request is classified as an admin call
//! (`/_emulator/*`), OIDC discovery or JWKS, the token endpoint, a redeem link (`/redeem`), or a Graph call (`/v1.0/…`,
//! `/beta/…`). A Graph call goes: added latency → injected drop or 5xx → bearer token (401) →
//! route (404/405) → permission (403) → throttling (429) → handler → for a write, maybe a lost
//! answer → contract check of the request and response bodies. `$batch` items take the same path
//! from "route" on, with the envelope's caller.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::config::EmulatorConfig;
use super::contract::{Contract, Options, ResponseSpec, media_type_matches};
use super::errors::{GraphError, graph_date};
use super::faults::{Ambiguous, Faults, format_seconds, injected};
use super::jwt::SigningKey;
use super::router::{ApiVersion, GraphRequest, GraphResponse, ResponseBody, Route, parse_query, split_path};
use super::throttle::{Charge, Throttle, Verdict};
use super::{
    EmulatorError, admin, auth, batch, branding, group_delta, groups, invitations, mto, organization, permissions, policies,
    store, users, xtap,
};
use crate::directory::DirectoryError;
use crate::directory::local::LocalDirectory;

/// Largest request body accepted.
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Most violations kept in the report (the count goes on).
const MAX_VIOLATIONS: usize = 1000;
const JSON_CONTENT_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Counters, for `GET /_emulator/stats` and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub requests: u64,
    pub graph_requests: u64,
    pub batch_items: u64,
    pub token_requests: u64,
    pub injected_faults: u64,
    pub dropped_connections: u64,
    /// Writes carried out whose answer was lost.
    pub ambiguous_writes: u64,
    pub throttled: u64,
    pub by_status: BTreeMap<u16, u64>,
}

/// One contract violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub request_id: String,
    /// `request` or `response`.
    pub direction: String,
    pub method: String,
    pub path: String,
    pub operation_id: String,
    pub status: Option<u16>,
    pub findings: Vec<String>,
}

/// Requests to paths the OpenAPI subset does not have, by template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutsideSubset {
    pub method: String,
    pub path: String,
    pub count: u64,
}

/// What contract validation found so far (`GET /_emulator/contract-violations`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractReport {
    pub enabled: bool,
    pub source: Option<String>,
    /// Violations found (the list keeps the first 1000).
    pub count: u64,
    pub violations: Vec<Violation>,
    pub outside_subset: Vec<OutsideSubset>,
    pub checked_requests: u64,
    pub checked_responses: u64,
}

/// The identity a valid token carries.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub tenant_id: String,
    pub app_id: String,
    pub roles: Vec<String>,
}

pub(crate) struct State {
    pub dir: Arc<LocalDirectory>,
    pub config: EmulatorConfig,
    /// The first signs; all verify.
    pub keys: Vec<SigningKey>,
    pub throttle: Throttle,
    pub faults: Faults,
    pub contract: Option<Contract>,
    pub report: Mutex<ContractReport>,
    pub stats: Mutex<Stats>,
    /// Bumped by a forced resync: delta tokens of an older epoch get 400 `syncStateNotFound`.
    pub delta_epoch: AtomicI64,
    /// Serializes read-modify-write of a tenant's settings.
    pub settings_lock: tokio::sync::Mutex<()>,
    pub local_addr: SocketAddr,
    tenant_sizes: Mutex<HashMap<String, (usize, Instant)>>,
}

impl State {
    pub fn stat(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Links and issuers: the configured public URL, else the scheme served and the request's Host.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let scheme = self.scheme();
        match headers.get(http::header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => format!("{scheme}://{host}"),
            None => format!("{scheme}://{}", self.local_addr),
        }
    }

    /// `https` when serving TLS.
    pub fn scheme(&self) -> &'static str {
        if self.config.tls.is_some() { "https" } else { "http" }
    }

    /// The tenant's user count (for the S/M/L resource-unit limit), cached for two seconds.
    async fn tenant_users(self: &Arc<Self>, tenant_id: &str) -> usize {
        if let Some((n, at)) = self.tenant_sizes.lock().unwrap_or_else(|p| p.into_inner()).get(tenant_id)
            && at.elapsed() < Duration::from_secs(2)
        {
            return *n;
        }
        let dir = self.dir.clone();
        let t = tenant_id.to_string();
        let n = tokio::task::spawn_blocking(move || dir.users(&t).map(|u| u.len()).unwrap_or(0)).await.unwrap_or(0);
        self.tenant_sizes.lock().unwrap_or_else(|p| p.into_inner()).insert(tenant_id.to_string(), (n, Instant::now()));
        n
    }
}

/// One Graph request being served: who asks, and how to answer.
pub(crate) struct Ctx {
    pub state: Arc<State>,
    pub caller: Caller,
    /// `https://host:port` (or `http://`).
    pub base: String,
    pub request_id: String,
    pub client_request_id: Option<String>,
}

impl Ctx {
    pub fn tenant(&self) -> &str {
        &self.caller.tenant_id
    }

    /// Runs a directory call off the async workers.
    pub async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalDirectory) -> Result<T, DirectoryError> + Send + 'static,
    ) -> Result<T, GraphError> {
        let dir = self.state.dir.clone();
        tokio::task::spawn_blocking(move || f(&dir))
            .await
            .map_err(|e| GraphError::internal(format!("directory task failed: {e}")))?
            .map_err(GraphError::from)
    }

    /// `{base}/{version}{rest}`.
    pub fn url(&self, version: ApiVersion, rest: &str) -> String {
        format!("{}/{}{rest}", self.base, version.as_str())
    }

    /// `@odata.context` for `what` (e.g. `users/$entity`).
    pub fn context(&self, version: ApiVersion, what: &str) -> String {
        format!("{}/{}/$metadata#{what}", self.base, version.as_str())
    }

    pub fn error_response(&self, e: &GraphError) -> GraphResponse {
        error_response(e, &self.request_id, self.client_request_id.as_deref())
    }
}

fn error_response(e: &GraphError, request_id: &str, client_request_id: Option<&str>) -> GraphResponse {
    GraphResponse {
        status: e.status,
        headers: e.headers.clone(),
        body: ResponseBody::Json(e.body(request_id, client_request_id, &graph_date())),
    }
}

/// A running emulator. Dropping it stops it.
pub struct EmulatorHandle {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:port` (`http://` without TLS): both the authority host and the Graph endpoint.
    pub fn url(&self) -> String {
        format!("{}://{}", self.state.scheme(), self.addr)
    }

    pub fn contract_report(&self) -> ContractReport {
        self.state.report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn stats(&self) -> Stats {
        self.state.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes every delta token issued so far answer 400 `syncStateNotFound` (a forced resync).
    pub fn invalidate_delta_tokens(&self) {
        self.state.delta_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Signs a token as the token endpoint would, with any lifetime (negative: already expired) and any
    /// roles, for tests of token handling.
    pub fn mint_token(&self, tenant_id: &str, client_id: &str, roles: &[&str], lifetime_secs: i64) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        auth::sign_access_token(&self.state, &self.url(), tenant_id, client_id, "test app", &roles, lifetime_secs, "1")
    }

    /// Stops accepting and closes the connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub(crate) async fn start(dir: Arc<LocalDirectory>, config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    if !config.allow_remote && !config.listen.ip().is_loopback() {
        return Err(EmulatorError::Config(format!(
            "refusing to listen on {}: not a loopback address. The emulator's admin endpoints are \
             unauthenticated; pass --allow-remote to listen there anyway",
            config.listen
        )));
    }
    let keys = {
        let dir = dir.clone();
        let pem = config.signing_key_pem.clone();
        tokio::task::spawn_blocking(move || store::signing_keys(&dir, pem.as_deref()))
            .await
            .map_err(|e| EmulatorError::Config(format!("loading the signing key: {e}")))??
    };
    let contract = if config.contract.strict {
        let path = config.contract.openapi.clone();
        Some(
            tokio::task::spawn_blocking(move || Contract::load(path.as_deref()))
                .await
                .map_err(|e| EmulatorError::Config(format!("loading the OpenAPI document: {e}")))??,
        )
    } else {
        None
    };
    let tls = config.tls.as_ref().map(super::tls::acceptor).transpose()?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let report = ContractReport {
        enabled: contract.is_some(),
        source: contract.as_ref().map(|c| c.source().to_string()),
        ..Default::default()
    };
    let state = Arc::new(State {
        dir,
        throttle: Throttle::new(config.limits.clone()),
        faults: Faults::new(config.faults.clone()),
        config,
        keys,
        contract,
        report: Mutex::new(report),
        stats: Mutex::new(Stats::default()),
        delta_epoch: AtomicI64::new(0),
        settings_lock: tokio::sync::Mutex::new(()),
        local_addr: addr,
        tenant_sizes: Mutex::new(HashMap::new()),
    });
    let (shutdown, rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, tls, state.clone(), rx));
    tracing::info!(%addr, "Graph emulator listening");
    Ok(EmulatorHandle { addr, state, shutdown, task: Some(task) })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let shutdown = shutdown.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        // A failed handshake (a client that does not trust the CA, say) just ends the connection.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                serve_connection(stream, state, shutdown).await;
                            }
                        }
                        None => serve_connection(stream, state, shutdown).await,
                    }
                });
            }
        }
    }
}

/// HTTP/1.1 on one connection until it ends, a fault drops it, or the emulator stops.
async fn serve_connection<IO>(io: IO, state: Arc<State>, mut shutdown: watch::Receiver<bool>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Set by a request whose connection is to be dropped without an answer.
    let dropper = Arc::new(Notify::new());
    let svc = {
        let dropper = dropper.clone();
        service_fn(move |req| {
            let state = state.clone();
            let dropper = dropper.clone();
            async move { Ok::<_, Infallible>(handle(state, dropper, req).await) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        _ = conn => {}
        _ = dropper.notified() => {}
        _ = shutdown.changed() => {}
    }
}

const TOKEN_TEMPLATE: &str = "/{tenant}/oauth2/v2.0/token";

/// Parameters Microsoft's token libraries add to every token request beside the OAuth ones: MSAL's
/// `client_info` and `claims` (client capabilities, "claims challenge"), its library and platform
/// telemetry (`x-client-SKU`, `-VER`, `-OS`, `-CPU`, `x-client-current-telemetry`,
/// `x-client-last-telemetry`, `x-ms-lib-capability`, `x-app-name`, `x-app-ver`), and the correlation
/// id (`client-request-id`, `return-client-request-id`). The identity platform accepts them, so the
/// contract check does not report them.
const CLIENT_TELEMETRY: &[&str] = &[
    "client_info",
    "claims",
    "client-request-id",
    "return-client-request-id",
    "x-client-sku",
    "x-client-ver",
    "x-client-os",
    "x-client-cpu",
    "x-client-brkrver",
    "x-client-current-telemetry",
    "x-client-last-telemetry",
    "x-ms-lib-capability",
    "x-app-name",
    "x-app-ver",
];

fn without_client_telemetry(body: &Value) -> Value {
    match body {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !CLIENT_TELEMETRY.contains(&k.to_ascii_lowercase().as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What to do with one HTTP request.
enum Outcome {
    Respond(GraphResponse),
    /// Close the connection without answering.
    Drop,
}

async fn handle(state: Arc<State>, dropper: Arc<Notify>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req.headers().get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (parts, body) = req.into_parts();
    state.stat(|s| s.requests += 1);
    let outcome = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            route_http(&state, &parts.method, &parts.uri, &parts.headers, bytes, &request_id, client_request_id.as_deref()).await
        }
        Err(e) => Outcome::Respond(error_response(
            &GraphError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request_BadRequest", format!("cannot read the request body: {e}")),
            &request_id,
            client_request_id.as_deref(),
        )),
    };
    match outcome {
        Outcome::Respond(r) => {
            state.stat(|s| *s.by_status.entry(r.status.as_u16()).or_default() += 1);
            to_http(r, &request_id, client_request_id.as_deref())
        }
        Outcome::Drop => {
            dropper.notify_one();
            std::future::pending::<()>().await;
            unreachable!("the connection is dropped with this future")
        }
    }
}

fn to_http(r: GraphResponse, request_id: &str, client_request_id: Option<&str>) -> Response<Full<Bytes>> {
    let (content_type, body) = match r.body {
        ResponseBody::Empty => (None, Bytes::new()),
        ResponseBody::Json(v) => (Some(JSON_CONTENT_TYPE), Bytes::from(serde_json::to_vec(&v).unwrap_or_default())),
        ResponseBody::Text(t) => (Some("text/plain"), Bytes::from(t)),
        ResponseBody::Binary { content_type, bytes } => {
            let mut resp = Response::new(Full::new(bytes));
            *resp.status_mut() = r.status;
            if let Ok(v) = HeaderValue::try_from(content_type.as_str()) {
                resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
            }
            return finish_http(resp, r.headers, request_id, client_request_id);
        }
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    if let Some(ct) = content_type {
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    finish_http(resp, r.headers, request_id, client_request_id)
}

fn finish_http(
    mut resp: Response<Full<Bytes>>,
    headers: Vec<(String, String)>,
    request_id: &str,
    client_request_id: Option<&str>,
) -> Response<Full<Bytes>> {
    let h = resp.headers_mut();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), HeaderValue::try_from(value)) {
            h.insert(n, v);
        }
    };
    put("request-id", request_id);
    put("client-request-id", client_request_id.unwrap_or(request_id));
    for (k, v) in &headers {
        put(k, v);
    }
    resp
}

async fn route_http(
    state: &Arc<State>,
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    bytes: Bytes,
    request_id: &str,
    client_request_id: Option<&str>,
) -> Outcome {
    let path = uri.path();
    let base = state.base_url(headers);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["_emulator", rest @ ..] => Outcome::Respond(admin::handle(state, method, rest, &bytes, request_id).await),
        ["redeem"] if method == Method::GET => Outcome::Respond(super::invitations::redeem_page(state, uri.query()).await),
        [tenant, "v2.0", ".well-known", "openid-configuration"] if method == Method::GET => {
            Outcome::Respond(auth::discovery(state, tenant, &base, request_id).await)
        }
        [_tenant, "discovery", "v2.0", "keys"] | [_tenant, "discovery", "keys"] if method == Method::GET => {
            Outcome::Respond(auth::jwks(state))
        }
        [tenant, "oauth2", "v2.0", "token"] => {
            state.stat(|s| s.token_requests += 1);
            let tenant = tenant.to_string();
            if state.config.faults.token_endpoint
                && let Some(outcome) = inject(state, true, request_id, client_request_id).await
            {
                return outcome;
            }
            let resp = if method == Method::POST {
                auth::token(state, &tenant, headers, &bytes, &base, request_id).await
            } else {
                auth::token_error_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request",
                    900561,
                    "The endpoint only accepts POST requests.",
                    request_id,
                )
            };
            let mut form: serde_json::Map<String, Value> =
                form_urlencoded::parse(&bytes).into_owned().map(|(k, v)| (k, Value::String(v))).collect();
            // Credentials sent as HTTP Basic (RFC 6749 §2.3.1) stand for the form fields.
            if let Some((id, secret)) = auth::basic_credentials(headers) {
                form.entry("client_id").or_insert(Value::String(id));
                form.entry("client_secret").or_insert(Value::String(secret));
            }
            check_contract(state, method, None, path, Some(&Value::Object(form)), &resp, request_id, || path.to_string());
            Outcome::Respond(resp)
        }
        _ => match split_path(path) {
            Some((version, segments)) => {
                graph(state, method, version, segments, uri.query(), headers, bytes, base, request_id, client_request_id).await
            }
            None => Outcome::Respond(error_response(
                &GraphError::new(
                    StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    format!("Invalid version or path {path:?}: Graph paths start with /v1.0/ or /beta/."),
                ),
                request_id,
                client_request_id,
            )),
        },
    }
}

/// Latency, then an injected drop or 5xx (`None`: go on).
async fn inject(state: &Arc<State>, droppable: bool, request_id: &str, client_request_id: Option<&str>) -> Option<Outcome> {
    let f = state.faults.config();
    if f.latency.is_zero() && f.latency_jitter.is_zero() && !f.any() {
        return None;
    }
    let d = state.faults.decide(droppable);
    if !d.latency.is_zero() {
        tokio::time::sleep(d.latency).await;
    }
    if d.drop {
        state.stat(|s| s.dropped_connections += 1);
        return Some(Outcome::Drop);
    }
    if let Some(status) = d.fault {
        state.stat(|s| s.injected_faults += 1);
        return Some(Outcome::Respond(error_response(&injected(status, f.fault_retry_after), request_id, client_request_id)));
    }
    None
}

#[allow(clippy::too_many_arguments)]
async fn graph(
    state: &Arc<State>,
    method: &Method,
    version: ApiVersion,
    segments: Vec<String>,
    query: Option<&str>,
    headers: &HeaderMap,
    bytes: Bytes,
    base: String,
    request_id: &str,
    client_request_id: Option<&str>,
) -> Outcome {
    state.stat(|s| s.graph_requests += 1);
    let f = state.faults.config();
    let decision = if f.latency.is_zero() && f.latency_jitter.is_zero() && !f.any() {
        Default::default()
    } else {
        state.faults.decide(true)
    };
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if decision.drop {
        state.stat(|s| s.dropped_connections += 1);
        return Outcome::Drop;
    }
    if let Some(status) = decision.fault {
        state.stat(|s| s.injected_faults += 1);
        return Outcome::Respond(error_response(&injected(status, f.fault_retry_after), request_id, client_request_id));
    }
    let mut req = GraphRequest {
        method: method.clone(),
        version,
        segments,
        query: parse_query(query),
        headers: headers.clone(),
        body: None,
        raw: None,
        in_batch: false,
    };
    // A stream (an image) is kept as sent; everything else is JSON.
    let media =
        headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().trim().to_ascii_lowercase();
    if media.starts_with("image/") || media.starts_with("application/octet-stream") {
        req.raw = Some(bytes.clone());
    } else if !bytes.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => req.body = Some(v),
            Err(e) => {
                let err = GraphError::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"
                    ),
                );
                return Outcome::Respond(error_response(&err, request_id, client_request_id));
            }
        }
    }
    let caller = match auth::authenticate(state, headers).await {
        Ok(c) => c,
        Err(e) => {
            let resp = error_response(&e, request_id, client_request_id);
            check_graph_contract(state, &req, &resp, request_id);
            return Outcome::Respond(resp);
        }
    };
    let ctx = Ctx {
        state: state.clone(),
        caller,
        base,
        request_id: request_id.to_string(),
        client_request_id: client_request_id.map(str::to_string),
    };
    let write = Route::is_write(method);
    let resp = execute(&ctx, req).await;
    if write && resp.status.is_success() {
        match decision.ambiguous {
            Some(Ambiguous::Drop) => {
                state.stat(|s| s.ambiguous_writes += 1);
                return Outcome::Drop;
            }
            Some(Ambiguous::GatewayTimeout) => {
                state.stat(|s| s.ambiguous_writes += 1);
                return Outcome::Respond(error_response(
                    &injected(StatusCode::GATEWAY_TIMEOUT, f.fault_retry_after),
                    request_id,
                    client_request_id,
                ));
            }
            None => {}
        }
    }
    Outcome::Respond(resp)
}

/// Serves one authenticated Graph request (top level or `$batch` item) and checks it against the contract.
pub(crate) fn execute<'a>(ctx: &'a Ctx, req: GraphRequest) -> BoxFuture<'a, GraphResponse> {
    Box::pin(async move {
        let resp = match run(ctx, &req).await {
            Ok(r) => r,
            Err(e) => ctx.error_response(&e),
        };
        check_graph_contract(&ctx.state, &req, &resp, &ctx.request_id);
        resp
    })
}

async fn run(ctx: &Ctx, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let route = Route::resolve(req.version, &req.segments)?;
    route.check_method(&req.method)?;
    let needed = permissions::required(&route, &req.method);
    if !permissions::allows(needed, &ctx.caller.roles) {
        return Err(GraphError::forbidden(needed, &ctx.caller.roles));
    }
    let mut headers = Vec::new();
    if route != Route::Batch {
        let users = if ctx.state.config.limits.enabled { ctx.state.tenant_users(ctx.tenant()).await } else { 0 };
        match ctx.state.throttle.check(&ctx.caller.app_id, ctx.tenant(), users, Charge::of(&route, req)) {
            Verdict::Allowed { headers: h } => headers = h,
            Verdict::Throttled { retry_after, headers: h } => {
                ctx.state.stat(|s| s.throttled += 1);
                let fractional = ctx.state.faults.fractional(ctx.state.config.limits.retry_after);
                let mut e = GraphError::throttled(&format_seconds(retry_after, fractional));
                e.headers.extend(h);
                return Err(e);
            }
        }
    }
    let mut resp = dispatch(ctx, route, req).await?;
    resp.headers.extend(headers);
    Ok(resp)
}

async fn dispatch(ctx: &Ctx, route: Route, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
    let m = &req.method;
    match route {
        Route::Batch => batch::handle(ctx, req).await,
        Route::Invitations => invitations::create(ctx, req).await,
        Route::Users => users::list(ctx, req).await,
        Route::UsersCount => users::count(ctx, req).await,
        Route::UsersDelta => users::delta(ctx, req).await,
        Route::User(id) if m == Method::GET => users::get(ctx, req, &id).await,
        Route::User(id) if m == Method::PATCH => users::update(ctx, req, &id).await,
        Route::User(id) => users::delete(ctx, &id).await,
        Route::UserMemberOf(id) => groups::member_of(ctx, req, &id).await,
        Route::Groups if m == Method::GET => groups::list(ctx, req).await,
        Route::Groups => groups::create(ctx, req).await,
        Route::GroupsDelta => group_delta::delta(ctx, req).await,
        Route::Group(id) if m == Method::GET => groups::get(ctx, req, &id).await,
        Route::Group(id) => groups::delete(ctx, &id).await,
        Route::GroupMembers(id) => groups::members(ctx, req, &id).await,
        Route::GroupMembersRef(id) => groups::add_member(ctx, req, &id).await,
        Route::GroupMemberRef(id, member) => groups::remove_member(ctx, &id, &member).await,
        Route::Organization => organization::list(ctx, req).await,
        Route::OrganizationById(id) => organization::get(ctx, req, &id).await,
        Route::OrganizationBranding(id) if m == Method::GET => branding::get_branding(ctx, req, &id).await,
        Route::OrganizationBranding(id) if m == Method::PATCH => branding::update_branding(ctx, req, &id).await,
        Route::OrganizationBranding(id) => branding::delete_branding(ctx, &id).await,
        Route::OrganizationBrandingImage(id, locale, image) if m == Method::GET => {
            branding::get_image(ctx, &id, &locale, image).await
        }
        Route::OrganizationBrandingImage(id, locale, image) if m == Method::PUT => {
            branding::put_image(ctx, req, &id, &locale, image).await
        }
        Route::OrganizationBrandingImage(id, locale, image) => branding::delete_image(ctx, &id, &locale, image).await,
        Route::CrossTenantAccessPolicy if m == Method::GET => xtap::get_policy(ctx, req).await,
        Route::CrossTenantAccessPolicy => xtap::update_policy(ctx, req).await,
        Route::XtapDefault if m == Method::GET => xtap::get_default(ctx, req).await,
        Route::XtapDefault => xtap::update_default(ctx, req).await,
        Route::XtapDefaultReset => xtap::reset_default(ctx).await,
        Route::Partners if m == Method::GET => xtap::list_partners(ctx, req).await,
        Route::Partners => xtap::create_partner(ctx, req).await,
        Route::Partner(id) if m == Method::GET => xtap::get_partner(ctx, req, &id).await,
        Route::Partner(id) if m == Method::PATCH => xtap::update_partner(ctx, req, &id).await,
        Route::Partner(id) => xtap::delete_partner(ctx, &id).await,
        Route::PartnerIdentitySync(id) if m == Method::GET => xtap::get_identity_sync(ctx, req, &id).await,
        Route::PartnerIdentitySync(id) if m == Method::PUT => xtap::put_identity_sync(ctx, req, &id).await,
        Route::PartnerIdentitySync(id) if m == Method::PATCH => xtap::update_identity_sync(ctx, req, &id).await,
        Route::PartnerIdentitySync(id) => xtap::delete_identity_sync(ctx, &id).await,
        Route::AuthorizationPolicy if m == Method::GET => policies::get_authorization(ctx, req).await,
        Route::AuthorizationPolicy => policies::update_authorization(ctx, req).await,
        Route::B2bPolicies if m == Method::GET => policies::list_b2b(ctx, req).await,
        Route::B2bPolicies => policies::create_b2b(ctx, req).await,
        Route::B2bPolicy(id) if m == Method::GET => policies::get_b2b(ctx, req, &id).await,
        Route::B2bPolicy(id) if m == Method::PATCH => policies::update_b2b(ctx, req, &id).await,
        Route::B2bPolicy(id) => policies::delete_b2b(ctx, &id).await,
        Route::Mto if m == Method::GET => mto::get(ctx, req).await,
        Route::Mto => mto::put(ctx, req, m == Method::PUT).await,
        Route::MtoTenants if m == Method::GET => mto::list_tenants(ctx, req).await,
        Route::MtoTenants => mto::add_tenant(ctx, req).await,
        Route::MtoTenant(id) if m == Method::GET => mto::get_tenant(ctx, req, &id).await,
        Route::MtoTenant(_) if m == Method::PATCH => {
            Err(GraphError::bad_request("The emulator does not change a member's role: remove and add it."))
        }
        Route::MtoTenant(id) => mto::remove_tenant(ctx, &id).await,
        Route::MtoJoinRequest if m == Method::GET => mto::get_join_request(ctx, req).await,
        Route::MtoJoinRequest => mto::update_join_request(ctx, req).await,
        Route::IdentityProviders if m == Method::GET => super::identity::list_providers(ctx, req).await,
        Route::IdentityProviders => super::identity::create_provider(ctx, req).await,
        Route::IdentityProvider(id) if m == Method::GET => super::identity::get_provider(ctx, req, &id).await,
        Route::IdentityProvider(id) if m == Method::PATCH => super::identity::update_provider(ctx, req, &id).await,
        Route::IdentityProvider(id) => super::identity::delete_provider(ctx, &id).await,
        Route::EmailMethod if m == Method::GET => super::identity::get_email_method(ctx, req).await,
        Route::EmailMethod => super::identity::update_email_method(ctx, req).await,
        Route::Federations if m == Method::GET => super::identity::list_federations(ctx, req).await,
        Route::Federations => super::identity::create_federation(ctx, req).await,
        Route::Federation(id) => super::identity::update_federation(ctx, req, &id).await,
        Route::FederationConfiguration(id) => super::identity::delete_federation(ctx, &id).await,
        Route::DeletedUsers => super::deleted_items::list(ctx, req).await,
        Route::DeletedItemRestore(id) => super::deleted_items::restore(ctx, req, &id).await,
        Route::DeletedItem(id) => super::deleted_items::get(ctx, req, &id).await,
        Route::FederationDomains(id) if m == Method::GET => super::identity::list_federation_domains(ctx, req, &id).await,
        Route::FederationDomains(id) => super::identity::add_federation_domain(ctx, req, &id).await,
        Route::UserFlows if m == Method::GET => super::user_flows::list_flows(ctx, req).await,
        Route::UserFlows => super::user_flows::create_flow(ctx, req).await,
        Route::UserFlow(id) if m == Method::GET => super::user_flows::get_flow(ctx, req, &id).await,
        Route::UserFlow(id) => super::user_flows::delete_flow(ctx, &id).await,
        Route::UserFlowProviders(id) => super::user_flows::list_flow_providers(ctx, req, &id).await,
        Route::UserFlowProvidersRef(id) => super::user_flows::add_flow_provider(ctx, req, &id).await,
        Route::UserFlowProviderRef(id, p) => super::user_flows::remove_flow_provider(ctx, &id, &p).await,
        Route::UserFlowAssignments(id) if m == Method::GET => super::user_flows::list_assignments(ctx, req, &id).await,
        Route::UserFlowAssignments(id) => super::user_flows::create_assignment(ctx, req, &id).await,
        Route::UserFlowAssignment(id, a) if m == Method::GET => super::user_flows::get_assignment(ctx, req, &id, &a).await,
        Route::UserFlowAssignment(id, a) => super::user_flows::delete_assignment(ctx, &id, &a).await,
        Route::UserFlowAttributes => super::user_flows::list_attributes(ctx, req).await,
        Route::ApiConnectors if m == Method::GET => super::user_flows::list_connectors(ctx, req).await,
        Route::ApiConnectors => super::user_flows::create_connector(ctx, req).await,
        Route::ApiConnector(id) if m == Method::GET => super::user_flows::get_connector(ctx, req, &id).await,
        Route::ApiConnector(id) if m == Method::PATCH => super::user_flows::update_connector(ctx, req, &id).await,
        Route::ApiConnector(id) => super::user_flows::delete_connector(ctx, &id).await,
        Route::UserFlowStep(id, step) => super::user_flows::get_step(ctx, req, &id, step).await,
        Route::UserFlowStepRef(id, step) if m == Method::PUT => super::user_flows::put_step(ctx, req, &id, step).await,
        Route::UserFlowStepRef(id, step) => super::user_flows::clear_step(ctx, &id, step).await,
        Route::ConditionalAccessPolicies if m == Method::GET => super::conditional_access::list(ctx, req).await,
        Route::ConditionalAccessPolicies => super::conditional_access::create(ctx, req).await,
        Route::ConditionalAccessPolicy(id) if m == Method::GET => super::conditional_access::get(ctx, req, &id).await,
        Route::ConditionalAccessPolicy(id) if m == Method::PATCH => super::conditional_access::update(ctx, req, &id).await,
        Route::ConditionalAccessPolicy(id) => super::conditional_access::delete(ctx, &id).await,
        Route::ConnectedOrganizations if m == Method::GET => super::entitlement::list_organizations(ctx, req).await,
        Route::ConnectedOrganizations => super::entitlement::create_organization(ctx, req).await,
        Route::ConnectedOrganization(id) if m == Method::GET => super::entitlement::get_organization(ctx, req, &id).await,
        Route::ConnectedOrganization(id) if m == Method::PATCH => super::entitlement::update_organization(ctx, req, &id).await,
        Route::ConnectedOrganization(id) => super::entitlement::delete_organization(ctx, &id).await,
        Route::AccessPackages if m == Method::GET => super::entitlement::list_packages(ctx, req).await,
        Route::AccessPackages => super::entitlement::create_package(ctx, req).await,
        Route::AccessPackage(id) if m == Method::GET => super::entitlement::get_package(ctx, req, &id).await,
        Route::AccessPackage(id) if m == Method::PATCH => super::entitlement::update_package(ctx, req, &id).await,
        Route::AccessPackage(id) => super::entitlement::delete_package(ctx, &id).await,
        Route::AssignmentPolicies if m == Method::GET => super::entitlement::list_policies(ctx, req).await,
        Route::AssignmentPolicies => super::entitlement::create_policy(ctx, req).await,
        Route::AssignmentPolicy(id) if m == Method::GET => super::entitlement::get_policy(ctx, req, &id).await,
        Route::AssignmentPolicy(id) if m == Method::PUT => super::entitlement::replace_policy(ctx, req, &id).await,
        Route::AssignmentPolicy(id) => super::entitlement::delete_policy(ctx, &id).await,
        Route::EntitlementSettings if m == Method::GET => super::entitlement::get_settings(ctx, req).await,
        Route::EntitlementSettings => super::entitlement::update_settings(ctx, req).await,
        Route::EntitlementCatalogs => super::entitlement::list_catalogs(ctx, req).await,
        Route::CatalogResources(id) => super::entitlement::list_catalog_resources(ctx, req, &id).await,
        Route::ResourceRequests => super::entitlement::create_resource_request(ctx, req).await,
        Route::AccessPackageCatalog(id) => super::entitlement::package_catalog(ctx, req, &id).await,
        Route::ResourceRoleScopes(id) if m == Method::GET => super::entitlement::list_role_scopes(ctx, req, &id).await,
        Route::ResourceRoleScopes(id) => super::entitlement::create_role_scope(ctx, req, &id).await,
        Route::ResourceRoleScope(id, rs) => super::entitlement::delete_role_scope(ctx, &id, &rs).await,
        Route::ServicePrincipals => super::entitlement::list_service_principals(ctx, req).await,
        Route::ServicePrincipal(id) => super::entitlement::get_service_principal(ctx, req, &id).await,
    }
}

/// Contract check of one Graph request/response pair (when strict contract checking is on).
fn check_graph_contract(state: &State, req: &GraphRequest, resp: &GraphResponse, request_id: &str) {
    if state.contract.is_none() {
        return;
    }
    let path = req.path();
    let template = || match Route::resolve(req.version, &req.segments) {
        Ok(r) => r.template(req.version),
        Err(_) => format!("/{}{path}", req.version.as_str()),
    };
    // A cast spelled short (`graph.user`, as the SDKs write it) is the operation of its long spelling,
    // not an id in the path template beside it.
    let cast = match Route::resolve(req.version, &req.segments) {
        Ok(Route::DeletedUsers) => Some("/directory/deletedItems/microsoft.graph.user".to_string()),
        _ => None,
    };
    let lookup = (req.version == ApiVersion::V1).then(|| cast.as_deref().unwrap_or(path.as_str()));
    let display = format!("/{}{path}", req.version.as_str());
    let raw = req.raw.as_ref().map(|b| (req.header("Content-Type").unwrap_or_default(), b.as_ref()));
    check_contract_with(state, &req.method, lookup, &display, req.body.as_ref(), raw, resp, request_id, template);
}

/// Validates a request body and its response against the operation `lookup` names (`None`: outside
/// the subset), recording violations.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_contract(
    state: &State,
    method: &Method,
    lookup: Option<&str>,
    display_path: &str,
    body: Option<&Value>,
    resp: &GraphResponse,
    request_id: &str,
    template: impl FnOnce() -> String,
) {
    check_contract_with(state, method, lookup, display_path, body, None, resp, request_id, template)
}

/// `check_contract`, for a request whose body may be of another media type than JSON (`raw`: its
/// `Content-Type` and bytes, e.g. an image stream): it must be one the operation documents.
#[allow(clippy::too_many_arguments)]
fn check_contract_with(
    state: &State,
    method: &Method,
    lookup: Option<&str>,
    display_path: &str,
    body: Option<&Value>,
    raw: Option<(&str, &[u8])>,
    resp: &GraphResponse,
    request_id: &str,
    template: impl FnOnce() -> String,
) {
    let Some(contract) = &state.contract else { return };
    let lookup = lookup.unwrap_or(display_path);
    let Some(op) = contract.operation(method, lookup) else {
        let path = template();
        let mut report = state.report.lock().unwrap_or_else(|p| p.into_inner());
        match report.outside_subset.iter_mut().find(|o| o.method == method.as_str() && o.path == path) {
            Some(o) => o.count += 1,
            None => report.outside_subset.push(OutsideSubset { method: method.to_string(), path, count: 1 }),
        }
        return;
    };
    let options = Options { unknown_properties: !state.config.contract.allow_unknown_properties };
    let mut violations = Vec::new();
    let violation = |direction: &str, status: Option<u16>, findings: Vec<String>| Violation {
        request_id: request_id.to_string(),
        direction: direction.to_string(),
        method: method.to_string(),
        path: display_path.to_string(),
        operation_id: op.operation_id.clone(),
        status,
        findings,
    };
    if let Some((_, schema)) = contract.request_schema(&op) {
        let findings: Vec<String> = match (body, raw) {
            (_, Some((media, bytes))) => {
                let documented = contract.request_media_types(&op);
                if !documented.iter().any(|d| media_type_matches(d, media)) {
                    vec![format!("a {media:?} body was sent; the operation takes {}", documented.join(", "))]
                } else if bytes.is_empty() {
                    vec!["the operation requires a request body".to_string()]
                } else {
                    vec![]
                }
            }
            (Some(b), None) if op.template == TOKEN_TEMPLATE => {
                contract.validate(schema, &without_client_telemetry(b), options).iter().map(ToString::to_string).collect()
            }
            (Some(b), None) => contract.validate(schema, b, options).iter().map(ToString::to_string).collect(),
            (None, None) => vec!["the operation requires a request body".to_string()],
        };
        if !findings.is_empty() {
            violations.push(violation("request", None, findings));
        }
    }
    let status = resp.status.as_u16();
    let findings: Vec<String> = match contract.response_spec(&op, status) {
        Err(e) => vec![e],
        Ok(ResponseSpec::NoBody) => match &resp.body {
            ResponseBody::Empty => vec![],
            _ => vec![format!("status {status} is documented without a body, but one was sent")],
        },
        Ok(ResponseSpec::Body { media_type, schema }) => match &resp.body {
            ResponseBody::Json(v) => contract.validate(schema, v, options).iter().map(ToString::to_string).collect(),
            ResponseBody::Text(t) => match serde_json::from_str::<Value>(t.trim()) {
                Ok(v) => contract.validate(schema, &v, options).iter().map(ToString::to_string).collect(),
                Err(_) => vec![format!("a {media_type} body was expected, found text {t:?}")],
            },
            ResponseBody::Binary { content_type, .. } => {
                let documented = contract.response_media_types(&op, status);
                if documented.iter().any(|d| media_type_matches(d, content_type)) {
                    vec![]
                } else {
                    vec![format!("a {content_type} body was sent; status {status} documents {}", documented.join(", "))]
                }
            }
            ResponseBody::Empty => vec![format!("status {status} is documented with a {media_type} body, but none was sent")],
        },
    };
    if !findings.is_empty() {
        violations.push(violation("response", Some(status), findings));
    }
    let mut report = state.report.lock().unwrap_or_else(|p| p.into_inner());
    report.checked_requests += 1;
    report.checked_responses += 1;
    for v in violations {
        tracing::warn!(method = %v.method, path = %v.path, direction = %v.direction, findings = ?v.findings, "contract violation");
        report.count += 1;
        if report.violations.len() < MAX_VIOLATIONS {
            report.violations.push(v);
        }
    }
}
