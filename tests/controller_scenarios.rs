//! The controller against a fake Kubernetes API server (`tower_test::mock::pair`, as kube-rs's
//! controller-rs fixtures do) and a real local directory file. Each scenario reconciles one Tenant
//! and asserts on what was written: Kubernetes requests (finalizers, status, events) and the directory.

mod kube_support;
use kube_support::{merge, not_found, path_of, store};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use entente::api::{CrossTenantAccessPolicy, GuestInvitation, Tenant};
use entente::controller::metrics::Metrics;
use entente::controller::{Context, FINALIZER, Settings, Stores, reconcile_tenant};
use entente::directory::local::LocalDirectory;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::reflector::{self, Store};
use serde_json::{Value, json};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";

/// One request the controller made.
#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    query: String,
    body: Value,
    /// Guests in the directory when the request arrived: finalizers must come before any write.
    guests_then: usize,
}

/// A fake API server: objects by path, merge patches, status applies, events, 404 for the rest.
struct FakeApi {
    objects: Mutex<HashMap<String, Value>>,
    requests: Mutex<Vec<Recorded>>,
    directory: PathBuf,
}

impl FakeApi {
    fn handle(&self, method: &Method, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut objects = self.objects.lock().unwrap();
        if method == Method::POST && path.ends_with("/events") {
            return (StatusCode::CREATED, body.clone());
        }
        if method == Method::GET {
            return objects.get(path).cloned().map_or_else(not_found, |o| (StatusCode::OK, o));
        }
        if method == Method::PATCH {
            if let Some(base) = path.strip_suffix("/status") {
                let Some(obj) = objects.get_mut(base) else { return not_found() };
                obj["status"] = body["status"].clone();
                return (StatusCode::OK, obj.clone());
            }
            let Some(obj) = objects.get_mut(path) else { return not_found() };
            let mut patch = body.clone();
            if let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            merge(obj, &patch);
            return (StatusCode::OK, obj.clone());
        }
        not_found()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn object(&self, obj: &Value) -> Value {
        self.objects.lock().unwrap().get(&path_of(obj)).cloned().expect("object exists")
    }
}

fn guest_count(directory: &Path) -> usize {
    if !directory.exists() {
        return 0;
    }
    let dir = LocalDirectory::open(directory).unwrap();
    dir.users(CONTOSO).map(|u| u.len()).unwrap_or(0)
}

/// A harness: the objects the cluster holds, a fake API server for them, and a directory file.
struct Harness {
    api: Arc<FakeApi>,
    _tmp: tempfile::TempDir,
    directory: PathBuf,
}

impl Harness {
    fn new(objects: &[Value]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let directory = tmp.path().join("directory.db");
        let api = Arc::new(FakeApi {
            objects: Mutex::new(objects.iter().map(|o| (path_of(o), o.clone())).collect()),
            requests: Mutex::new(Vec::new()),
            directory: directory.clone(),
        });
        Self { api, _tmp: tmp, directory }
    }

    fn put(&self, obj: Value) {
        self.api.objects.lock().unwrap().insert(path_of(&obj), obj);
    }

    fn clear_requests(&self) {
        self.api.requests.lock().unwrap().clear();
    }

    /// A client whose requests the fake API server answers (and records), and the server's task.
    fn serve(&self) -> (kube::Client, tokio::task::JoinHandle<()>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.api.clone();
        let server = tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let path = parts.uri.path().to_string();
                let (status, answer) = api.handle(&parts.method, &path, &body);
                api.requests.lock().unwrap().push(Recorded {
                    method: parts.method.clone(),
                    path,
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    body,
                    guests_then: guest_count(&api.directory),
                });
                let response = Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap();
                send.send_response(response);
            }
        });
        (kube::Client::new(service, "default"), server)
    }

    /// Reconciles the Tenant `name` (namespace `ns`) with the objects the fake API server holds now.
    async fn reconcile(&self, ns: &str, name: &str) -> Result<(), entente::controller::Error> {
        let (client, server) = self.serve();
        let objects: Vec<Value> = self.api.objects.lock().unwrap().values().cloned().collect();
        let of_kind = |k: &str| objects.iter().filter(|o| o["kind"] == k).cloned().collect::<Vec<_>>();
        let tenants: Store<Tenant> = store(of_kind("Tenant"));
        let stores = Stores {
            tenants: tenants.clone(),
            policies: store::<CrossTenantAccessPolicy>(of_kind("CrossTenantAccessPolicy")),
            invitations: store::<GuestInvitation>(of_kind("GuestInvitation")),
        };
        let ctx =
            Arc::new(Context::new(client, stores, &self.directory, Arc::new(Metrics::default()), Settings::default(), None));
        let tenant = tenants.get(&reflector::ObjectRef::new(name).within(ns)).expect("the tenant is in the store");
        let result = reconcile_tenant(tenant, ctx).await.map(|_| ());
        server.abort();
        result
    }

    /// Runs the sweep for objects whose Tenant does not exist, over the objects the fake API server holds.
    async fn sweep(&self) {
        let (client, server) = self.serve();
        let objects: Vec<Value> = self.api.objects.lock().unwrap().values().cloned().collect();
        let of_kind = |k: &str| objects.iter().filter(|o| o["kind"] == k).cloned().collect::<Vec<_>>();
        let stores = Stores {
            tenants: store::<Tenant>(of_kind("Tenant")),
            policies: store::<CrossTenantAccessPolicy>(of_kind("CrossTenantAccessPolicy")),
            invitations: store::<GuestInvitation>(of_kind("GuestInvitation")),
        };
        let ctx = Context::new(client, stores, &self.directory, Arc::new(Metrics::default()), Settings::default(), None);
        entente::controller::sweep_orphans(&ctx).await.expect("sweeps");
        server.abort();
    }

    fn directory(&self) -> LocalDirectory {
        LocalDirectory::open(&self.directory).unwrap()
    }
}

fn meta(ns: &str, name: &str) -> Value {
    json!({ "namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}"), "resourceVersion": "1", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z" })
}

fn tenant(ns: &str, extra: Value) -> Value {
    let mut t = json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": meta(ns, "contoso"),
        "spec": { "tenantId": CONTOSO, "initialDomain": "contoso.onmicrosoft.com", "verifiedDomains": ["contoso.com"],
                  "groups": [{ "displayName": "Fabrikam partners" }] }
    });
    merge(&mut t["spec"], &extra);
    t
}

fn invitation(ns: &str, name: &str, email: &str, extra: Value) -> Value {
    let mut i = json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "GuestInvitation", "metadata": meta(ns, name),
        "spec": { "tenantRef": { "name": "contoso" }, "invitedUserEmailAddress": email }
    });
    merge(&mut i["spec"], &extra);
    i
}

fn policy(ns: &str, name: &str, partner: &str) -> Value {
    json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "CrossTenantAccessPolicy", "metadata": meta(ns, name),
        "spec": { "tenantRef": { "name": "contoso" }, "partnerTenantId": partner,
                  "inboundTrust": { "isMfaAccepted": true } }
    })
}

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {obj:#}"))
}

fn patches(requests: &[Recorded], suffix: &str) -> Vec<Recorded> {
    requests.iter().filter(|r| r.method == Method::PATCH && r.path.ends_with(suffix)).cloned().collect()
}

fn events(requests: &[Recorded]) -> Vec<(String, String, String)> {
    requests
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/events"))
        .map(|r| {
            (
                r.body["regarding"]["name"].as_str().unwrap_or_default().to_string(),
                r.body["type"].as_str().unwrap_or_default().to_string(),
                r.body["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn finalizers(obj: &Value) -> Vec<String> {
    serde_json::from_value(obj["metadata"]["finalizers"].clone()).unwrap_or_default()
}

/// What the cluster would hand the next reconcile: the object as patched, with a new generation when asked.
fn reread(h: &Harness, obj: &Value) -> Value {
    h.api.object(obj)
}

#[tokio::test]
async fn first_reconcile_adds_finalizers_before_writing_then_invites_and_reports_status() {
    let t = tenant("default", json!({}));
    let alice = invitation("default", "alice", "alice@fabrikam.com", json!({ "groups": ["Fabrikam partners"] }));
    let p = policy("default", "trust-fabrikam", "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02");
    let h = Harness::new(&[t.clone(), alice.clone(), p.clone()]);
    h.reconcile("default", "contoso").await.expect("reconciles");
    let requests = h.api.requests();

    // Finalizers first, while the directory holds nothing.
    let finalizer_patches: Vec<_> =
        requests.iter().filter(|r| r.method == Method::PATCH && !r.path.ends_with("/status")).collect();
    assert_eq!(finalizer_patches.len(), 3, "{requests:#?}");
    for r in &finalizer_patches {
        assert_eq!(r.body["metadata"]["finalizers"], json!([FINALIZER]), "{}", r.path);
        assert_eq!(r.body["metadata"]["resourceVersion"], "1", "optimistic concurrency");
        assert_eq!(r.guests_then, 0, "finalizer on {} before any directory write", r.path);
    }
    let first_status = requests.iter().position(|r| r.path.ends_with("/status")).unwrap();
    assert!(requests.iter().rposition(|r| r.method == Method::PATCH && !r.path.ends_with("/status")).unwrap() < first_status);

    // The directory has the guest, in the group, and the partner configuration.
    let dir = h.directory();
    let guest = dir.user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().expect("alice was invited");
    assert_eq!(dir.partners(CONTOSO).unwrap().len(), 1);

    // Status by server-side apply, one field manager.
    let statuses = patches(&requests, "/status");
    assert_eq!(statuses.len(), 3);
    for s in &statuses {
        assert!(s.query.contains("fieldManager=entente"), "{}", s.query);
        assert!(s.query.contains("force=true"), "{}", s.query);
    }
    let alice_now = reread(&h, &alice);
    assert_eq!(condition(&alice_now, "Ready")["status"], "True");
    assert_eq!(condition(&alice_now, "Synced")["status"], "True");
    assert_eq!(condition(&alice_now, "Invited")["status"], "True");
    assert_eq!(condition(&alice_now, "Redeemed")["reason"], "PendingAcceptance");
    assert_eq!(condition(&alice_now, "Ready")["observedGeneration"], 1);
    assert_eq!(alice_now["status"]["observedGeneration"], 1);
    assert_eq!(alice_now["status"]["userId"], guest.id.as_str());
    assert_eq!(alice_now["status"]["userPrincipalName"], "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com");
    assert_eq!(alice_now["status"]["redemptionState"], "PendingAcceptance");
    assert!(alice_now["status"]["inviteRedeemUrl"].as_str().is_some_and(|u| !u.is_empty()));
    let tenant_now = reread(&h, &t);
    assert_eq!(condition(&tenant_now, "Ready")["status"], "True");
    assert_eq!(tenant_now["status"]["managedObjects"], json!({ "crossTenantAccessPolicies": 1, "guestInvitations": 1 }));
    assert_eq!(condition(&reread(&h, &p), "Ready")["status"], "True");

    // Events: one per write, one per Ready transition.
    let evs = events(&requests);
    assert!(evs.contains(&("alice".into(), "Normal".into(), "Created".into())), "{evs:?}");
    assert!(evs.contains(&("alice".into(), "Normal".into(), "Reconciled".into())), "{evs:?}");
    assert!(evs.contains(&("contoso".into(), "Normal".into(), "Created".into())), "{evs:?}");
}

#[tokio::test]
async fn an_unchanged_object_makes_no_writes_and_redemption_shows_up_without_an_edit() {
    let t = tenant("default", json!({}));
    let alice = invitation("default", "alice", "alice@fabrikam.com", json!({}));
    let h = Harness::new(&[t.clone(), alice.clone()]);
    h.reconcile("default", "contoso").await.unwrap();
    let url = reread(&h, &alice)["status"]["inviteRedeemUrl"].clone();
    let seq = h.directory().change_seq().unwrap();

    h.clear_requests();
    h.reconcile("default", "contoso").await.unwrap();
    let requests = h.api.requests();
    assert!(requests.iter().all(|r| r.method == Method::GET), "no patch, no event when nothing changed: {requests:#?}");
    assert_eq!(h.directory().change_seq().unwrap(), seq, "no directory write");

    // The guest redeems in the directory: the status follows, with no edit of the object.
    h.directory().redeem(CONTOSO, "alice@fabrikam.com").unwrap();
    let seq = h.directory().change_seq().unwrap();
    h.clear_requests();
    h.reconcile("default", "contoso").await.unwrap();
    let alice_now = reread(&h, &alice);
    assert_eq!(alice_now["status"]["redemptionState"], "Accepted");
    assert_eq!(condition(&alice_now, "Redeemed")["status"], "True");
    assert_eq!(alice_now["status"]["inviteRedeemUrl"], url, "the redeem URL is kept");
    assert!(alice_now["status"]["redemptionStateChangedAt"].is_string());
    assert_eq!(patches(&h.api.requests(), "/status").len(), 1, "only the invitation's status changed");
    assert_eq!(h.directory().change_seq().unwrap(), seq, "reading redemption writes nothing");
}

#[tokio::test]
async fn a_refused_invitation_gets_its_condition_and_a_warning_event() {
    let t = tenant(
        "default",
        json!({ "externalCollaboration": { "domainList": { "mode": "blockList", "domains": ["litware.com"] } } }),
    );
    let dave = invitation("default", "dave", "dave@litware.com", json!({}));
    let h = Harness::new(&[t, dave.clone()]);
    h.reconcile("default", "contoso").await.expect("a refusal is not a failure to retry");
    let dave_now = reread(&h, &dave);
    for type_ in ["Ready", "Synced", "Invited", "Stalled"] {
        let c = condition(&dave_now, type_);
        assert_eq!(c["reason"], "DomainBlocked", "{type_}: {c}");
    }
    assert_eq!(condition(&dave_now, "Ready")["status"], "False");
    assert_eq!(condition(&dave_now, "Stalled")["status"], "True");
    assert!(condition(&dave_now, "Ready")["message"].as_str().unwrap().contains("litware.com"));
    assert!(dave_now["status"].get("userId").is_none());
    assert!(h.directory().user_by_mail(CONTOSO, "dave@litware.com").unwrap().is_none());
    let evs = events(&h.api.requests());
    assert!(evs.contains(&("dave".into(), "Warning".into(), "DomainBlocked".into())), "{evs:?}");

    // Reconciled again: the same refusal, no second event.
    h.clear_requests();
    h.reconcile("default", "contoso").await.unwrap();
    assert!(events(&h.api.requests()).is_empty(), "events on transitions only");
}

async fn delete_with_policy(policy: &str) -> (Harness, Value, String) {
    let t = tenant("default", json!({}));
    let bob = invitation("default", "bob", "bob@fabrikam.com", json!({ "deletionPolicy": policy }));
    let h = Harness::new(&[t, bob.clone()]);
    h.reconcile("default", "contoso").await.unwrap();
    let user_id = h.directory().user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().unwrap().id;
    let mut deleting = reread(&h, &bob);
    assert_eq!(finalizers(&deleting), [FINALIZER]);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    h.put(deleting);
    h.clear_requests();
    h.reconcile("default", "contoso").await.expect("deletion reconciles");
    (h, bob, user_id)
}

#[tokio::test]
async fn deletion_with_delete_removes_the_guest_then_the_finalizer() {
    let (h, bob, _) = delete_with_policy("Delete").await;
    assert!(h.directory().user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().is_none(), "the guest is deleted");
    assert_eq!(finalizers(&reread(&h, &bob)), Vec::<String>::new(), "the finalizer is removed");
    let requests = h.api.requests();
    assert!(patches(&requests, "/guestinvitations/bob/status").is_empty(), "no status for an object that goes away");
    assert!(events(&requests).contains(&("bob".into(), "Normal".into(), "Deleted".into())));
}

#[tokio::test]
async fn deletion_with_retain_keeps_the_guest_and_drops_ownership() {
    let (h, bob, user_id) = delete_with_policy("Retain").await;
    let kept = h.directory().user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().expect("the guest is kept");
    assert_eq!(kept.id, user_id);
    assert_eq!(finalizers(&reread(&h, &bob)), Vec::<String>::new());
    let snapshot = entente::directory::Directory::snapshot(&h.directory(), CONTOSO).await.unwrap().unwrap();
    assert!(snapshot.managed.iter().all(|r| r.key != "bob@fabrikam.com"), "no longer managed");
    assert!(events(&h.api.requests()).contains(&("bob".into(), "Normal".into(), "Retained".into())));
}

#[tokio::test]
async fn a_missing_secret_is_a_condition_not_a_panic() {
    let t = tenant(
        "default",
        json!({ "backend": { "type": "graph", "graph": { "clientId": "11111111-2222-3333-4444-555555555555",
                 "clientSecretRef": { "name": "graph-creds", "key": "client-secret" } } } }),
    );
    let alice = invitation("default", "alice", "alice@fabrikam.com", json!({}));
    let h = Harness::new(&[t.clone(), alice.clone()]);
    let result = h.reconcile("default", "contoso").await;
    assert!(result.is_err(), "retried with backoff");
    let tenant_now = reread(&h, &t);
    let ready = condition(&tenant_now, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "SecretNotFound");
    assert!(ready["message"].as_str().unwrap().contains("default/graph-creds"), "{ready}");
    assert_eq!(condition(&reread(&h, &alice), "Ready")["reason"], "SecretNotFound");
    let requests = h.api.requests();
    assert!(requests.iter().any(|r| r.method == Method::GET && r.path == "/api/v1/namespaces/default/secrets/graph-creds"));
    assert!(events(&requests).contains(&("contoso".into(), "Warning".into(), "SecretNotFound".into())));
}

/// A token endpoint that refuses every client: answers 401 `invalid_client` at once (not retried).
async fn refusing_token_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut buf).await;
                let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#;
                let answer = format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_secret_value_never_appears_in_status_or_events() {
    let endpoint = refusing_token_endpoint().await;
    let t = tenant(
        "default",
        json!({ "backend": { "type": "graph", "graph": { "clientId": "11111111-2222-3333-4444-555555555555",
                 "authorityHost": endpoint, "graphEndpoint": endpoint,
                 "clientSecretRef": { "name": "graph-creds", "key": "client-secret" } } } }),
    );
    let secret = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta("default", "graph-creds"),
                         "data": { "client-secret": "czNjcjN0LXZhbHVlLXh5eg==" } });
    let h = Harness::new(&[t.clone(), secret]);
    let result = tokio::time::timeout(std::time::Duration::from_secs(60), h.reconcile("default", "contoso")).await;
    assert!(matches!(result, Ok(Err(_))), "the refused sign-in is a failure to retry: {result:?}");
    let ready = condition(&reread(&h, &t), "Ready").clone();
    assert_eq!(ready["status"], "False", "{ready}");
    let writes: Vec<_> = h.api.requests().into_iter().filter(|r| r.method != Method::GET).collect();
    assert!(writes.iter().any(|r| r.path.ends_with("/status")), "the status was written: {writes:#?}");
    for r in writes {
        let text = r.body.to_string();
        assert!(!text.contains("s3cr3t-value-xyz") && !text.contains("czNjcjN0"), "{} leaks the secret: {text}", r.path);
    }
}

#[tokio::test]
async fn a_cross_namespace_reference_is_refused_unless_the_tenant_allows_it() {
    let t = tenant("identity", json!({}));
    let mut carol = invitation("team-a", "carol", "carol@adatum.com", json!({}));
    carol["spec"]["tenantRef"]["namespace"] = json!("identity");
    let h = Harness::new(&[t.clone(), carol.clone()]);
    h.reconcile("identity", "contoso").await.unwrap();
    let carol_now = reread(&h, &carol);
    assert_eq!(condition(&carol_now, "Ready")["reason"], "CrossNamespaceRefDenied");
    assert!(condition(&carol_now, "Ready")["message"].as_str().unwrap().contains("allowedNamespaces"));
    assert!(finalizers(&carol_now).is_empty(), "no finalizer on a refused object");
    assert!(h.directory().user_by_mail(CONTOSO, "carol@adatum.com").unwrap().is_none());
    assert!(events(&h.api.requests()).contains(&("carol".into(), "Warning".into(), "CrossNamespaceRefDenied".into())));

    // The Tenant allows team-a: the invitation goes through.
    let mut allowing = reread(&h, &t);
    allowing["spec"]["allowedNamespaces"] = json!(["team-a"]);
    h.put(allowing);
    h.reconcile("identity", "contoso").await.unwrap();
    assert_eq!(condition(&reread(&h, &carol), "Ready")["status"], "True");
    assert!(h.directory().user_by_mail(CONTOSO, "carol@adatum.com").unwrap().is_some());
}

#[tokio::test]
async fn an_invalid_object_is_named_by_field_and_left_out() {
    let t = tenant("default", json!({}));
    let bad = invitation("default", "bad", "erin@contoso-partner.com", json!({ "groups": ["Nope"] }));
    let good = invitation("default", "alice", "alice@fabrikam.com", json!({}));
    let h = Harness::new(&[t, bad.clone(), good.clone()]);
    h.reconcile("default", "contoso").await.unwrap();
    let bad_now = reread(&h, &bad);
    let ready = condition(&bad_now, "Ready");
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(ready["message"].as_str().unwrap().starts_with("spec.groups[0]"), "{ready}");
    assert!(finalizers(&bad_now).is_empty());
    assert_eq!(condition(&reread(&h, &good), "Ready")["status"], "True", "the valid one is not held back");
}

#[tokio::test]
async fn a_deleted_tenant_waits_for_its_objects_then_lets_go() {
    let t = tenant("default", json!({}));
    let alice = invitation("default", "alice", "alice@fabrikam.com", json!({}));
    let h = Harness::new(&[t.clone(), alice.clone()]);
    h.reconcile("default", "contoso").await.unwrap();
    let mut deleting = reread(&h, &t);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    h.put(deleting);
    h.reconcile("default", "contoso").await.unwrap();
    assert_eq!(finalizers(&reread(&h, &t)), [FINALIZER], "alice still holds the tenant");
    assert_eq!(condition(&reread(&h, &t), "Ready")["reason"], "Deleting");

    let mut alice_deleting = reread(&h, &alice);
    alice_deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    h.put(alice_deleting);
    h.reconcile("default", "contoso").await.unwrap();
    assert!(finalizers(&reread(&h, &alice)).is_empty());
    assert!(finalizers(&reread(&h, &t)).is_empty(), "the tenant lets go once nothing names it");
    assert!(h.directory().user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().is_none());
}

/// The CLI and the controller validate through the same converter: the examples give the same
/// desired state either way.
#[test]
fn the_cli_and_the_controller_validate_identically() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let from_files = entente::manifest::load(std::slice::from_ref(&root)).expect("the examples are valid");
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for doc in text.split("\n---\n") {
            let v: Value = serde_saphyr::from_str(doc).unwrap();
            by_kind.entry(v["kind"].as_str().unwrap().to_string()).or_default().push(v);
        }
    }
    let typed = |k: &str| by_kind.get(k).cloned().unwrap_or_default();
    let tenants: Vec<Tenant> = typed("Tenant").into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    let policies: Vec<CrossTenantAccessPolicy> =
        typed("CrossTenantAccessPolicy").into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    let invitations: Vec<GuestInvitation> =
        typed("GuestInvitation").into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    let sync_jobs: Vec<entente::api::SyncJob> =
        typed("SyncJob").into_iter().map(|v| serde_json::from_value(v).unwrap()).collect();
    assert!(!sync_jobs.is_empty(), "the examples declare a SyncJob");
    let live = entente::manifest::Live {
        tenants: tenants.clone(),
        policies,
        invitations: invitations.clone(),
        sync_jobs,
        ..Default::default()
    };
    let (from_objects, errors) = entente::manifest::convert_live(&live);
    assert!(errors.is_empty(), "{errors:?}");
    let sorted = |mut d: entente::core::model::DesiredState| {
        d.tenants.sort_by(|a, b| a.object.cmp(&b.object));
        for t in &mut d.tenants {
            t.partners.sort_by(|a, b| a.object.cmp(&b.object));
            t.invitations.sort_by(|a, b| a.object.cmp(&b.object));
        }
        d
    };
    assert_eq!(sorted(from_files.desired), sorted(from_objects.desired));
    assert_eq!(from_files.backends, from_objects.backends);

    // And an invalid object fails the same way, naming the same field.
    let mut bad = invitations[0].clone();
    bad.spec.invited_user_email_address = "not-an-address".into();
    let (_, errors) = entente::manifest::convert_objects(&tenants, &[], &[bad]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field.as_deref(), Some("spec.invitedUserEmailAddress"));
    assert_eq!(errors[0].object.as_deref(), Some("GuestInvitation/default/alice-fabrikam"));
}

/// The controller with the Graph backend, against the in-process Graph emulator: the client secret
/// comes from a Kubernetes Secret, the guest is invited through Graph, and a second reconcile writes
/// nothing (neither to Graph nor to the API server).
#[tokio::test]
async fn a_graph_tenant_is_reconciled_through_graph_with_credentials_from_a_secret() {
    use entente::core::model::{Cloud, TenantIdentity};
    use entente::core::operation::Operation;
    use entente::directory::Directory;
    use entente::emulator::{self, EmulatorConfig, apps};

    // The "cloud": contoso in the emulator's own directory, with an app entente signs in as.
    let cloud_tmp = tempfile::tempdir().unwrap();
    let cloud = Arc::new(LocalDirectory::open(&cloud_tmp.path().join("cloud.db")).unwrap());
    let identity = TenantIdentity {
        tenant_id: CONTOSO.into(),
        initial_domain: "contoso.onmicrosoft.com".into(),
        display_name: "Contoso".into(),
        cloud: Cloud::Global,
        verified_domains: ["contoso.com".to_string()].into(),
    };
    cloud.apply(CONTOSO, &[Operation::CreateTenant { identity }]).await.unwrap();
    let permissions: Vec<String> = [
        "User.ReadWrite.All",
        "User.Invite.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
        "Organization.Read.All",
        "Policy.Read.All",
        "Policy.ReadWrite.CrossTenantAccess",
        "Policy.ReadWrite.Authorization",
        "Policy.ReadWrite.B2BManagementPolicy",
    ]
    .map(String::from)
    .to_vec();
    let app = apps::create_app(&cloud, CONTOSO, "entente", &permissions).unwrap();
    let emu = emulator::start(cloud.clone(), EmulatorConfig::default()).await.unwrap();

    use base64::Engine as _;
    let secret_value = base64::engine::general_purpose::STANDARD.encode(&app.client_secret);
    let t = tenant(
        "default",
        json!({ "backend": { "type": "graph", "graph": { "clientId": app.client_id, "authorityHost": emu.url(),
                 "graphEndpoint": emu.url(), "clientSecretRef": { "name": "graph-creds", "key": "client-secret" } } } }),
    );
    let secret = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta("default", "graph-creds"),
                         "data": { "client-secret": secret_value } });
    let alice = invitation("default", "alice", "alice@fabrikam.com", json!({ "groups": ["Fabrikam partners"] }));
    let h = Harness::new(&[t.clone(), secret, alice.clone()]);
    h.reconcile("default", "contoso").await.expect("reconciles through Graph");

    let guest = cloud.user_by_mail(CONTOSO, "alice@fabrikam.com").unwrap().expect("invited through Graph");
    let alice_now = reread(&h, &alice);
    assert_eq!(condition(&alice_now, "Ready")["status"], "True", "{alice_now:#}");
    assert_eq!(alice_now["status"]["userId"], guest.id.as_str());
    assert!(alice_now["status"]["inviteRedeemUrl"].as_str().is_some_and(|u| !u.is_empty()));
    assert_eq!(condition(&reread(&h, &t), "Ready")["status"], "True");
    for r in h.api.requests().iter().filter(|r| r.method != Method::GET) {
        assert!(!r.body.to_string().contains(&app.client_secret), "{} leaks the client secret", r.path);
    }

    let seq = cloud.change_seq().unwrap();
    h.clear_requests();
    h.reconcile("default", "contoso").await.expect("reconciles again");
    assert_eq!(cloud.change_seq().unwrap(), seq, "nothing written to Graph");
    let writes: Vec<_> = h.api.requests().into_iter().filter(|r| r.method != Method::GET).collect();
    assert!(writes.is_empty(), "nothing written to the API server: {writes:#?}");
}

/// The ownership record of a deleted object is gone (a replica started on empty storage): the guest is
/// adopted again, then deleted, never orphaned; the finalizer goes only after that.
#[tokio::test]
async fn a_deleted_object_whose_record_was_lost_is_adopted_again_then_deleted() {
    use entente::core::model::Kind;
    use entente::core::operation::Operation;
    use entente::directory::Directory;

    let t = tenant("default", json!({}));
    let bob = invitation("default", "bob", "bob@fabrikam.com", json!({}));
    let h = Harness::new(&[t, bob.clone()]);
    h.reconcile("default", "contoso").await.unwrap();
    let forget = Operation::Forget { kind: Kind::GuestInvitation, key: "bob@fabrikam.com".into() };
    h.directory().apply(CONTOSO, &[forget]).await.unwrap();
    let mut deleting = reread(&h, &bob);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    h.put(deleting);

    h.reconcile("default", "contoso").await.unwrap();
    assert!(h.directory().user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().is_some(), "adopted first");
    assert_eq!(finalizers(&reread(&h, &bob)), [FINALIZER], "the finalizer stays until the guest is deleted");
    assert_eq!(condition(&reread(&h, &bob), "Ready")["reason"], "Deleting");

    h.reconcile("default", "contoso").await.unwrap();
    assert!(h.directory().user_by_mail(CONTOSO, "bob@fabrikam.com").unwrap().is_none(), "then deleted");
    assert!(finalizers(&reread(&h, &bob)).is_empty());
}

/// Objects naming a Tenant that does not exist: `TenantNotFound`, once; a deleted one lets go.
#[tokio::test]
async fn objects_whose_tenant_is_missing_say_so_and_a_deleted_one_lets_go() {
    let lost = invitation("default", "lost", "lost@fabrikam.com", json!({ "tenantRef": { "name": "nobody" } }));
    let mut gone = policy("default", "gone", "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02");
    gone["spec"]["tenantRef"] = json!({ "name": "nobody" });
    gone["metadata"]["finalizers"] = json!([FINALIZER]);
    gone["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    let h = Harness::new(&[lost.clone(), gone.clone()]);
    h.sweep().await;
    let ready = condition(&reread(&h, &lost), "Ready").clone();
    assert_eq!(ready["reason"], "TenantNotFound");
    assert!(ready["message"].as_str().unwrap().contains("spec.tenantRef"), "{ready}");
    assert!(finalizers(&reread(&h, &gone)).is_empty(), "nothing to clean without a Tenant: the finalizer goes");
    let evs = events(&h.api.requests());
    assert!(evs.contains(&("lost".into(), "Warning".into(), "TenantNotFound".into())), "{evs:?}");

    h.clear_requests();
    h.sweep().await;
    assert!(h.api.requests().is_empty(), "the same status is not written twice");
}

#[tokio::test]
async fn deleting_more_guests_at_once_than_the_prune_guard_allows_is_held_until_the_tenant_allows_it() {
    let t = tenant("default", json!({}));
    let guests: Vec<Value> =
        (0..12).map(|i| invitation("default", &format!("g{i}"), &format!("g{i}@fabrikam.com"), json!({}))).collect();
    let h = Harness::new(&[&[t.clone()][..], &guests[..]].concat());
    h.reconcile("default", "contoso").await.unwrap();
    assert_eq!(h.directory().users(CONTOSO).unwrap().len(), 12);
    // All twelve deleted at once (a namespace, a GitOps prune): more than the 10 allowed.
    for g in &guests {
        let mut deleting = reread(&h, g);
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
        h.put(deleting);
    }
    assert!(h.reconcile("default", "contoso").await.is_err(), "the Tenant reports the held prune as a failure");
    assert_eq!(h.directory().users(CONTOSO).unwrap().len(), 12, "no guest deleted");
    assert!(guests.iter().all(|g| finalizers(&reread(&h, g)) == [FINALIZER]), "every finalizer kept");
    let ready = condition(&reread(&h, &t), "Ready").clone();
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains("prune refused: it would delete 12 of the 12 objects"), "{ready}");
    assert!(message.contains("If this is meant, set annotation entente.dev/max-prune: \"12\" on the Tenant"), "{ready}");
    let held = condition(&reread(&h, &guests[0]), "Ready").clone();
    assert!(held["message"].as_str().unwrap_or_default().contains("deletion held by the Tenant's prune guard"), "{held}");

    // The Tenant allows it: every guest goes, then every finalizer.
    let mut allowed = reread(&h, &t);
    allowed["metadata"]["annotations"] = json!({ "entente.dev/max-prune": "12" });
    h.put(allowed);
    h.reconcile("default", "contoso").await.unwrap();
    assert_eq!(h.directory().users(CONTOSO).unwrap().len(), 0);
    assert!(guests.iter().all(|g| finalizers(&reread(&h, g)).is_empty()));
}
