//! The client's failure paths against an in-process fake HTTP server on 127.0.0.1: retries and
//! `Retry-After`, dropped connections, token caching and refresh, federated token files, `$batch`
//! item retries, invitations whose outcome is unknown, error mapping. The happy paths run against the
//! emulator (`tests/conformance.rs`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::batch::{self, SubRequest};
use super::{Credential, GraphConfig, GraphDirectory};
use crate::core::model::UserType;
use crate::core::operation::{InvitationRequest, Operation, Outcome};
use crate::core::policy::RefusalReason;
use crate::directory::inventory::SqliteInventory;
use crate::directory::{Directory, DirectoryError};

const TENANT: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";

/// One request as the fake server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    target: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Seen {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn form(&self) -> BTreeMap<String, String> {
        self.body
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace('+', " ").replace("%3A", ":").replace("%2F", "/")))
            .collect()
    }
}

/// What the fake answers.
enum Reply {
    Json(u16, Vec<(&'static str, String)>, Value),
    /// Close the connection without answering.
    Drop,
}

fn ok(v: Value) -> Reply {
    Reply::Json(200, vec![], v)
}

fn graph_error(status: u16, code: &str, message: &str, headers: Vec<(&'static str, String)>) -> Reply {
    Reply::Json(
        status,
        headers,
        json!({"error": {"code": code, "message": message, "innerError": {"date": "2024-01-01T00:00:00", "request-id": format!("rid-{status}")}}}),
    )
}

type Handler = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// A tiny HTTP/1.1 server: one request per connection (`Connection: close`), every request recorded;
/// the handler gets the request and how many requests with the same method and path came before it.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    async fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Handler = Arc::new(handler);
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else { return };
                    let n = {
                        let mut log = log.lock().unwrap();
                        let n = log.iter().filter(|s| s.method == req.method && s.path() == req.path()).count();
                        log.push(req.clone());
                        n
                    };
                    let (status, headers, body) = match handler(&req, n) {
                        Reply::Drop => return,
                        Reply::Json(status, headers, v) => (status, headers, v.to_string()),
                    };
                    let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
                    if !body.is_empty() {
                        out.push_str("Content-Type: application/json\r\n");
                    }
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&body);
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Fake { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn count(&self, method: &str, path: &str) -> usize {
        self.seen().iter().filter(|s| s.method == method && s.path() == path).count()
    }

    fn directory(&self, credential: Credential) -> GraphDirectory {
        let mut config = GraphConfig::new(TENANT, "app-1", credential).for_tests();
        config.authority_host = self.url.clone();
        config.graph_endpoint = self.url.clone();
        config.retry.max_attempts = 5;
        config.use_delta = false;
        GraphDirectory::new(config, Arc::new(SqliteInventory::open_in_memory().unwrap())).unwrap()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: BTreeMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..(head_end + len).min(buf.len())]).into_owned();
    Some(Seen { method, target, headers, body })
}

fn token_path() -> String {
    format!("/{TENANT}/oauth2/v2.0/token")
}

/// Answers the token endpoint with a token that lives `lifetime` seconds; `None` for anything else.
fn token_reply(req: &Seen, n: usize, lifetime: u64) -> Option<Reply> {
    (req.path() == token_path())
        .then(|| ok(json!({"token_type": "Bearer", "expires_in": lifetime, "access_token": format!("token-{n}")})))
}

fn secret() -> Credential {
    Credential::ClientSecret("s3cret".into())
}

#[tokio::test]
async fn throttling_waits_for_fractional_retry_after_then_succeeds() {
    let fake = Fake::start(|req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        match n {
            0 => graph_error(429, "TooManyRequests", "Please retry again later.", vec![("Retry-After", "0.25".into())]),
            1 => graph_error(503, "serviceNotAvailable", "busy", vec![("Retry-After", "0.125".into())]),
            _ => ok(json!({"id": "authorizationPolicy", "allowInvitesFrom": "none"})),
        }
    })
    .await;
    let dir = fake.directory(secret());
    let started = Instant::now();
    let policy = dir.authorization_policy().await.unwrap();
    assert_eq!(policy.allow_invites_from, Some(crate::core::settings::AllowInvitesFrom::None));
    assert!(started.elapsed() >= Duration::from_millis(375), "honoured both Retry-After values: {:?}", started.elapsed());
    assert_eq!(fake.count("GET", "/v1.0/policies/authorizationPolicy"), 3);
    assert_eq!(fake.count("POST", &token_path()), 1, "one token for all attempts");
    let form = fake.seen().into_iter().find(|s| s.path() == token_path()).unwrap().form();
    assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"));
    assert_eq!(form.get("client_secret").map(String::as_str), Some("s3cret"));
    assert_eq!(form.get("scope").map(String::as_str), Some("https://graph.microsoft.com/.default"), "{form:?}");
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried_with_backoff() {
    let fake = Fake::start(|req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        match n {
            0 => Reply::Drop,
            1 => graph_error(500, "generalException", "oops", vec![]),
            2 => graph_error(502, "badGateway", "oops", vec![]),
            _ => ok(json!({"isServiceDefault": true})),
        }
    })
    .await;
    let dir = fake.directory(secret());
    let d = dir.default_configuration().await.unwrap();
    assert_eq!(d.is_service_default, Some(true));
    assert_eq!(fake.count("GET", "/v1.0/policies/crossTenantAccessPolicy/default"), 4);
}

#[tokio::test]
async fn retries_are_bounded_and_the_error_keeps_graphs_code_message_and_request_id() {
    let fake = Fake::start(|req, n| {
        token_reply(req, n, 3600).unwrap_or_else(|| graph_error(503, "serviceNotAvailable", "The service is down.", vec![]))
    })
    .await;
    let dir = fake.directory(secret());
    let err = dir.default_configuration().await.unwrap_err();
    assert_eq!(fake.count("GET", "/v1.0/policies/crossTenantAccessPolicy/default"), 5, "max_attempts");
    assert_eq!(err.category(), "GraphUnavailable");
    match err {
        DirectoryError::Graph(f) => {
            assert_eq!(f.status, 503);
            assert_eq!(f.code, "serviceNotAvailable");
            assert_eq!(f.message, "The service is down.");
            assert_eq!(f.request_id.as_deref(), Some("rid-503"));
        }
        other => panic!("{other:?}"),
    }
    // A 4xx is not retried.
    let fake = Fake::start(|req, n| {
        token_reply(req, n, 3600)
            .unwrap_or_else(|| graph_error(403, "Authorization_RequestDenied", "Insufficient privileges", vec![]))
    })
    .await;
    let err = fake.directory(secret()).authorization_policy().await.unwrap_err();
    assert_eq!(err.category(), "GraphForbidden");
    assert_eq!(fake.count("GET", "/v1.0/policies/authorizationPolicy"), 1);
}

#[tokio::test]
async fn the_token_is_cached_fetched_once_for_concurrent_callers_and_refreshed_before_expiry() {
    let fake = Fake::start(|req, n| {
        // 2 s tokens: refreshed 1 s early.
        token_reply(req, n, 2).unwrap_or_else(|| ok(json!({"id": "authorizationPolicy"})))
    })
    .await;
    let dir = Arc::new(fake.directory(secret()));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let dir = dir.clone();
            tokio::spawn(async move { dir.authorization_policy().await.unwrap() })
        })
        .collect();
    for c in calls {
        c.await.unwrap();
    }
    assert_eq!(fake.count("POST", &token_path()), 1, "single flight");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    dir.authorization_policy().await.unwrap();
    assert_eq!(fake.count("POST", &token_path()), 2, "refreshed before it expired");
    let bearer: Vec<String> = fake.seen().iter().filter_map(|s| s.headers.get("authorization").cloned()).collect();
    assert_eq!(bearer.last().map(String::as_str), Some("Bearer token-1"));
}

#[tokio::test]
async fn a_401_gets_a_new_token_once() {
    let fake = Fake::start(|req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        if req.headers.get("authorization").map(String::as_str) == Some("Bearer token-0") {
            graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.", vec![])
        } else {
            ok(json!({"id": "authorizationPolicy"}))
        }
    })
    .await;
    let dir = fake.directory(secret());
    dir.authorization_policy().await.unwrap();
    assert_eq!(fake.count("POST", &token_path()), 2);
}

#[tokio::test]
async fn a_federated_token_file_is_read_again_for_every_token() {
    let fake = Fake::start(|req, n| token_reply(req, n, 2).unwrap_or_else(|| ok(json!({"id": "authorizationPolicy"})))).await;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("token");
    std::fs::write(&file, "jwt-one\n").unwrap();
    let dir = fake.directory(Credential::FederatedTokenFile(file.clone()));
    dir.authorization_policy().await.unwrap();
    std::fs::write(&file, "jwt-two").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    dir.authorization_policy().await.unwrap();
    let forms: Vec<_> = fake.seen().into_iter().filter(|s| s.path() == token_path()).map(|s| s.form()).collect();
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[0].get("client_assertion").map(String::as_str), Some("jwt-one"));
    assert_eq!(forms[1].get("client_assertion").map(String::as_str), Some("jwt-two"), "the rotated file was read");
    assert!(forms.iter().all(|f| f.get("client_assertion_type").is_some_and(|t| t.ends_with("jwt-bearer"))));
    assert!(forms.iter().all(|f| !f.contains_key("client_secret")));
}

#[tokio::test]
async fn token_endpoint_errors_say_what_went_wrong() {
    let fake = Fake::start(|req, _| {
        assert_eq!(req.path(), token_path());
        Reply::Json(
            400,
            vec![],
            json!({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found.", "error_codes": [90002],
                   "timestamp": "t", "trace_id": "tr", "correlation_id": "co"}),
        )
    })
    .await;
    let err = fake.directory(secret()).snapshot(TENANT).await.unwrap_err();
    assert!(matches!(err, DirectoryError::TenantNotFound(_)), "{err:?}");
    assert!(err.to_string().contains("never creates Graph tenants"), "{err}");

    let fake = Fake::start(|_, _| {
        Reply::Json(
            401,
            vec![],
            json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215], "correlation_id": "co-1"}),
        )
    })
    .await;
    let err = fake.directory(secret()).authorization_policy().await.unwrap_err();
    assert_eq!(err.category(), "Authentication");
    assert!(err.to_string().contains("AADSTS7000215") && err.to_string().contains("co-1"), "{err}");
    assert_eq!(fake.count("POST", &token_path()), 1, "a credential error is not retried");
}

#[tokio::test]
async fn batch_items_are_split_by_20_and_throttled_items_retried_alone() {
    let item_tries = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let tries = item_tries.clone();
    let fake = Fake::start(move |req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        assert_eq!(req.path(), "/v1.0/$batch");
        let body = req.json();
        let items = body["requests"].as_array().unwrap().clone();
        assert!(items.len() <= 20, "{} items in one batch", items.len());
        let mut responses = Vec::new();
        for item in items.iter().rev() {
            let id = item["id"].as_str().unwrap().to_string();
            let t = {
                let mut tries = tries.lock().unwrap();
                let t = tries.entry(id.clone()).or_default();
                *t += 1;
                *t
            };
            // Every third item is throttled once, with a fractional Retry-After in the item's headers.
            let throttled = id.parse::<usize>().unwrap() % 3 == 0 && t == 1;
            responses.push(if throttled {
                json!({"id": id, "status": 429, "headers": {"Retry-After": "0.05"}, "body": {"error": {"code": "TooManyRequests", "message": "slow down"}}})
            } else if item["method"] == "DELETE" && id == "7" {
                json!({"id": id, "status": 404, "body": {"error": {"code": "Request_ResourceNotFound", "message": "gone"}}})
            } else {
                json!({"id": id, "status": 204, "headers": {"x-item": id}})
            });
        }
        ok(json!({"responses": responses}))
    })
    .await;
    let dir = fake.directory(secret());
    let reqs: Vec<SubRequest> = (0..45).map(|i| SubRequest::new(Method::DELETE, format!("/users/u{i}"))).collect();
    let answers = batch::run(&dir.http, &dir.v1, &reqs).await.unwrap();
    assert_eq!(answers.len(), 45);
    for (i, a) in answers.iter().enumerate() {
        let expected = if i == 7 { 404 } else { 204 };
        assert_eq!(a.status, expected, "item {i}");
        if expected == 204 {
            assert_eq!(a.headers.get("x-item"), Some(&i.to_string()), "answers mapped back by id");
        }
    }
    let tries = item_tries.lock().unwrap();
    assert!(tries.iter().all(|(id, t)| *t == if id.parse::<usize>().unwrap() % 3 == 0 { 2 } else { 1 }), "{tries:?}");
    // 3 batches (20, 20, 5), then one retry batch of the 15 throttled items.
    assert_eq!(fake.count("POST", "/v1.0/$batch"), 4);
}

#[tokio::test]
async fn an_invitation_whose_answer_was_lost_is_adopted_not_sent_again() {
    let created = Arc::new(AtomicUsize::new(0));
    let c = created.clone();
    let fake = Fake::start(move |req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/v1.0/users") => {
                assert!(req.target.contains("$filter=mail%20eq%20%27alice@fabrikam.com%27"), "{}", req.target);
                let value = if c.load(Ordering::SeqCst) > 0 {
                    json!([{"id": "u-1", "mail": "alice@fabrikam.com", "userType": "Guest", "creationType": "Invitation",
                            "externalUserState": "PendingAcceptance", "userPrincipalName": "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"}])
                } else {
                    json!([])
                };
                ok(json!({"value": value}))
            }
            ("POST", "/v1.0/invitations") => {
                // The invitation is carried out, but the answer never arrives.
                c.fetch_add(1, Ordering::SeqCst);
                Reply::Drop
            }
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let dir = fake.directory(secret());
    let op = Operation::Invite { invitation: invitation("alice@fabrikam.com") };
    let out = dir.apply(TENANT, &[op]).await.unwrap();
    match &out[0] {
        Outcome::Invited(r) => {
            assert_eq!(r.user_id, "u-1");
            assert_eq!(r.user_principal_name, "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.count("POST", "/v1.0/invitations"), 1, "never invited twice");
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_invitation_refused_before_processing_is_sent_again_and_a_refusal_is_a_reason() {
    let fake = Fake::start(|req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/v1.0/users") => ok(json!({"value": []})),
            ("POST", "/v1.0/invitations") => {
                let to = req.json()["invitedUserEmailAddress"].as_str().unwrap().to_string();
                assert_eq!(req.json()["invitedUserType"], "Member");
                if to.ends_with("@litware.com") {
                    return Reply::Json(
                        403,
                        vec![],
                        json!({"error": {"code": "DomainBlocked", "message": "litware.com is blocked",
                               "details": [{"code": "DomainBlocked", "message": "litware.com is on the block list"}],
                               "innerError": {"request-id": "rid-x"}}}),
                    );
                }
                match n {
                    0 => graph_error(429, "TooManyRequests", "slow", vec![("Retry-After", "0.01".into())]),
                    1 => graph_error(503, "serviceNotAvailable", "busy", vec![]),
                    _ => Reply::Json(201, vec![], json!({"invitedUser": {"id": "u-2"}, "inviteRedeemUrl": "https://redeem", "status": "PendingAcceptance", "invitedUserEmailAddress": to, "inviteRedirectUrl": "https://x"})),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let dir = fake.directory(secret());
    let mut inv = invitation("bob@fabrikam.com");
    inv.invited_user_type = UserType::Member;
    let out = dir.apply(TENANT, &[Operation::Invite { invitation: inv }]).await.unwrap();
    assert!(matches!(&out[0], Outcome::Invited(r) if r.user_id == "u-2" && r.invite_redeem_url == "https://redeem"));
    // 429 (resent at once after Retry-After), 503 (outcome unknown: looked up, then resent), 201.
    assert_eq!(fake.count("POST", "/v1.0/invitations"), 3);
    assert_eq!(fake.count("GET", "/v1.0/users"), 2, "one lookup before, one after the 503");

    let mut inv = invitation("dave@litware.com");
    inv.invited_user_type = UserType::Member;
    let err = dir.apply(TENANT, &[Operation::Invite { invitation: inv }]).await.unwrap_err();
    match err {
        DirectoryError::Refused(r) => {
            assert_eq!(r.reason, RefusalReason::DomainBlocked);
            assert!(r.message.contains("block list") && r.message.contains("rid-x"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn links_to_another_host_never_get_the_token() {
    let fake = Fake::start(|req, n| {
        token_reply(req, n, 3600)
            .unwrap_or_else(|| ok(json!({"value": [], "@odata.nextLink": "https://evil.example.com/v1.0/policies/crossTenantAccessPolicy/partners?$skiptoken=x"})))
    })
    .await;
    let err = fake.directory(secret()).partners().await.unwrap_err();
    assert!(err.to_string().contains("refusing to send the Graph token"), "{err}");
}

#[tokio::test]
async fn graph_tenants_are_never_created() {
    let fake = Fake::start(|_, _| panic!("no request expected")).await;
    let identity = crate::core::model::TenantIdentity {
        tenant_id: TENANT.into(),
        initial_domain: "contoso.onmicrosoft.com".into(),
        display_name: "Contoso".into(),
        cloud: Default::default(),
        verified_domains: Default::default(),
    };
    let err = fake.directory(secret()).apply(TENANT, &[Operation::CreateTenant { identity }]).await.unwrap_err();
    assert!(err.to_string().contains("never creates Graph tenants"), "{err}");
    let err = fake.directory(secret()).snapshot("another-tenant").await.unwrap_err();
    assert!(matches!(err, DirectoryError::Invalid(_)));
}

#[test]
fn scopes_follow_the_cloud() {
    assert_eq!(super::default_scope("https://graph.microsoft.us"), "https://graph.microsoft.us/.default");
    assert_eq!(
        super::default_scope("https://microsoftgraph.chinacloudapi.cn/"),
        "https://microsoftgraph.chinacloudapi.cn/.default"
    );
    assert_eq!(super::default_scope("http://127.0.0.1:8080"), "https://graph.microsoft.com/.default");
}

fn invitation(mail: &str) -> InvitationRequest {
    InvitationRequest {
        re_invite: false,
        invited_user_email_address: mail.into(),
        invited_user_display_name: None,
        invite_redirect_url: "https://myapps.microsoft.com".into(),
        invited_user_type: UserType::Guest,
        send_invitation_message: false,
        invited_user_message_info: None,
        groups: vec![],
    }
}

/// `http://host:port` of the fake, from the request (for the links it hands out).
fn origin(req: &Seen) -> String {
    format!("http://{}", req.headers["host"])
}

fn query_has(req: &Seen, part: &str) -> bool {
    req.target.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv == part))
}

#[tokio::test]
async fn sync_delta_rounds_read_partial_items_whole_and_start_over_when_the_state_is_lost() {
    let fake = Fake::start(|req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        let base = format!("{}/v1.0/users/delta", origin(req));
        let member = |id: &str, title: &str| {
            json!({"id": id, "userPrincipalName": format!("{id}@contoso.com"), "mail": format!("{id}@contoso.com"),
                   "userType": "Member", "creationType": null, "accountEnabled": true, "displayName": id, "jobTitle": title})
        };
        match (req.method.as_str(), req.path()) {
            ("GET", "/v1.0/users/delta") if query_has(req, "$skiptoken=p2") => {
                ok(json!({"value": [member("u2", "B")], "@odata.deltaLink": format!("{base}?$deltatoken=d1")}))
            }
            ("GET", "/v1.0/users/delta") if query_has(req, "$deltatoken=d1") => ok(json!({
                // Only the changed property, and a soft deletion.
                "value": [{"id": "u1", "jobTitle": "New"}, {"id": "u2", "@removed": {"reason": "changed"}}],
                "@odata.deltaLink": format!("{base}?$deltatoken=d2")
            })),
            ("GET", "/v1.0/users/delta") if query_has(req, "$deltatoken=stale") => {
                ok(json!({"value": [], "@odata.nextLink": format!("{base}?$skiptoken=stale2")}))
            }
            ("GET", "/v1.0/users/delta") if query_has(req, "$skiptoken=stale2") => {
                graph_error(400, "resyncRequired", "Resync required.", vec![])
            }
            ("GET", "/v1.0/users/delta") => {
                assert!(
                    req.target
                        .contains("$select=id,displayName,mail,userPrincipalName,userType,creationType,accountEnabled,givenName")
                );
                assert!(!req.target.contains("$top"), "{}", req.target);
                assert_eq!(req.headers.get("prefer").map(String::as_str), Some("odata.maxpagesize=999"));
                ok(json!({"value": [member("u1", "A")], "@odata.nextLink": format!("{base}?$skiptoken=p2")}))
            }
            ("GET", "/v1.0/users/u1") => {
                assert!(req.target.contains("jobTitle"), "{}", req.target);
                ok(member("u1", "New"))
            }
            other => panic!("unexpected {other:?} {}", req.target),
        }
    })
    .await;
    let dir = fake.directory(secret());

    let first = dir.user_changes(TENANT, None).await.unwrap();
    assert!(first.full);
    assert_eq!(first.users.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["u1", "u2"]);
    assert!(first.cursor.ends_with("$deltatoken=d1"), "{}", first.cursor);

    let next = dir.user_changes(TENANT, Some(&first.cursor)).await.unwrap();
    assert!(!next.full);
    assert_eq!(next.removed, ["u2"]);
    assert_eq!(next.users.len(), 1);
    assert_eq!((next.users[0].user_principal_name.as_str(), next.users[0].get("jobTitle")), ("u1@contoso.com", Some("New")));
    assert_eq!(fake.count("GET", "/v1.0/users/u1"), 1, "the partial item was read whole");

    // resyncRequired on a later page of the round: the round starts over from scratch.
    let stale = first.cursor.replace("d1", "stale");
    let again = dir.user_changes(TENANT, Some(&stale)).await.unwrap();
    assert!(again.full);
    assert_eq!(again.users.len(), 2);
    assert!(again.cursor.ends_with("$deltatoken=d1"));
}

#[tokio::test]
async fn a_provisioned_user_whose_invitation_answer_was_lost_is_adopted_and_patched_once() {
    let created = Arc::new(AtomicUsize::new(0));
    let c = created.clone();
    let fake = Fake::start(move |req, n| {
        if let Some(t) = token_reply(req, n, 3600) {
            return t;
        }
        match (req.method.as_str(), req.path()) {
            ("GET", "/v1.0/users") => {
                let value = if c.load(Ordering::SeqCst) > 0 {
                    json!([{"id": "u-1", "mail": "ann@contoso.com", "userType": "Member", "creationType": "Invitation",
                            "displayName": "Ann", "accountEnabled": true, "userPrincipalName": "ann_contoso.com#EXT#@fabrikam.onmicrosoft.com"}])
                } else {
                    json!([])
                };
                ok(json!({"value": value}))
            }
            ("POST", "/v1.0/invitations") => {
                let body = req.json();
                assert_eq!(body["sendInvitationMessage"], json!(false));
                assert_eq!(body["invitedUserType"], json!("Member"));
                assert_eq!(body["inviteRedirectUrl"], json!("https://myapps.microsoft.com"));
                c.fetch_add(1, Ordering::SeqCst);
                Reply::Drop
            }
            ("PATCH", "/v1.0/users/u-1") => Reply::Json(204, vec![], Value::Null),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let dir = fake.directory(secret());
    let op = Operation::ProvisionUser {
        user: crate::core::operation::ProvisionRequest {
            mail: "ann@contoso.com".into(),
            display_name: Some("Ann".into()),
            user_type: UserType::Member,
            account_enabled: false,
            attributes: BTreeMap::from([("jobTitle".to_string(), "Engineer".to_string())]),
            source_tenant_id: "src".into(),
        },
    };
    let out = dir.apply(TENANT, &[op]).await.unwrap();
    assert!(matches!(&out[0], Outcome::Invited(r) if r.user_id == "u-1"), "{out:?}");
    assert_eq!(fake.count("POST", "/v1.0/invitations"), 1, "never invited twice");
    let patches: Vec<Value> = fake.seen().iter().filter(|s| s.method == "PATCH").map(Seen::json).collect();
    // Display name and type already match; sign-in and the attribute do not.
    assert_eq!(patches, [json!({"accountEnabled": false, "jobTitle": "Engineer"})]);
}
