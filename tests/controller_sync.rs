//! The SyncJob controller against a fake Kubernetes API server (`tower_test::mock::pair`, as in
//! `controller_scenarios.rs`) and a real local directory file shared with the test, which seeds the
//! source tenant's members and inspects the target. Each scenario reconciles one SyncJob and asserts on
//! the status patches, the Events and the directory.

mod kube_support;
use kube_support::{not_found, path_of, store};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entente::api::{CrossTenantAccessPolicy, GuestInvitation, SyncJob, Tenant};
use entente::controller::metrics::Metrics;
use entente::controller::sync_jobs::forget_deleted;
use entente::controller::{Context, Settings, Stores, SyncContext, reconcile_sync_job};
use entente::core::model::{Cloud, PartnerConfiguration, TenantIdentity};
use entente::core::operation::Operation;
use entente::core::settings::{
    AutomaticUserConsentSettings, CrossTenantAccessSettings, IdentitySynchronization, UserSyncInbound,
};
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::sync::SyncStore;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::reflector;
use serde_json::{Value, json};

/// The source tenant.
const CONTOSO: &str = "11111111-1111-1111-1111-111111111111";
/// The target tenant.
const FABRIKAM: &str = "22222222-2222-2222-2222-222222222222";

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

/// A fake API server: objects by path, status applies, events, 404 for the rest.
struct FakeApi {
    objects: Mutex<HashMap<String, Value>>,
    requests: Mutex<Vec<Recorded>>,
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
        if method == Method::PATCH
            && let Some(base) = path.strip_suffix("/status")
        {
            let Some(obj) = objects.get_mut(base) else { return not_found() };
            obj["status"] = body["status"].clone();
            return (StatusCode::OK, obj.clone());
        }
        not_found()
    }
}

struct Harness {
    api: Arc<FakeApi>,
    _tmp: tempfile::TempDir,
    directory: PathBuf,
}

fn identity(id: &str, name: &str) -> TenantIdentity {
    TenantIdentity {
        tenant_id: id.into(),
        initial_domain: format!("{name}.onmicrosoft.com"),
        display_name: name.into(),
        cloud: Cloud::Global,
        verified_domains: BTreeSet::from([format!("{name}.com")]),
    }
}

impl Harness {
    /// The cluster's objects, and a directory file holding both tenants.
    async fn new(objects: &[Value]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let directory = tmp.path().join("directory.db");
        let api = Arc::new(FakeApi {
            objects: Mutex::new(objects.iter().map(|o| (path_of(o), o.clone())).collect()),
            requests: Mutex::new(Vec::new()),
        });
        let h = Self { api, _tmp: tmp, directory };
        let dir = h.directory();
        for (id, name) in [(CONTOSO, "contoso"), (FABRIKAM, "fabrikam")] {
            dir.apply(id, &[Operation::CreateTenant { identity: identity(id, name) }]).await.unwrap();
        }
        h
    }

    fn directory(&self) -> LocalDirectory {
        LocalDirectory::open(&self.directory).unwrap()
    }

    /// The sync state the controller keeps next to the directory file.
    fn sync_store(&self) -> SyncStore {
        SyncStore::open(&self.directory.with_file_name("sync.db")).unwrap()
    }

    /// fabrikam allows inbound user sync from contoso and redeems its users automatically; contoso lets
    /// its users be redeemed automatically in fabrikam (R12, R13).
    async fn allow_sync(&self) {
        let dir = self.directory();
        let consent = |inbound, outbound| CrossTenantAccessSettings {
            automatic_user_consent_settings: Some(AutomaticUserConsentSettings {
                inbound_allowed: inbound,
                outbound_allowed: outbound,
            }),
            ..CrossTenantAccessSettings::default()
        };
        let in_fabrikam = PartnerConfiguration {
            tenant_id: CONTOSO.into(),
            settings: consent(Some(true), None),
            identity_synchronization: Some(IdentitySynchronization {
                user_sync_inbound: UserSyncInbound { is_sync_allowed: true },
            }),
            ..PartnerConfiguration::default()
        };
        let in_contoso = PartnerConfiguration {
            tenant_id: FABRIKAM.into(),
            settings: consent(None, Some(true)),
            ..PartnerConfiguration::default()
        };
        dir.apply(FABRIKAM, &[Operation::PutPartner { partner: in_fabrikam }]).await.unwrap();
        dir.apply(CONTOSO, &[Operation::PutPartner { partner: in_contoso }]).await.unwrap();
    }

    fn put(&self, obj: Value) {
        self.api.objects.lock().unwrap().insert(path_of(&obj), obj);
    }

    fn object(&self, obj: &Value) -> Value {
        self.api.objects.lock().unwrap().get(&path_of(obj)).cloned().expect("object exists")
    }

    fn clear_requests(&self) {
        self.api.requests.lock().unwrap().clear();
    }

    fn requests(&self) -> Vec<Recorded> {
        self.api.requests.lock().unwrap().clone()
    }

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
                });
                let response = Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap();
                send.send_response(response);
            }
        });
        (kube::Client::new(service, "default"), server)
    }

    fn context(&self, client: kube::Client) -> Arc<SyncContext> {
        let objects: Vec<Value> = self.api.objects.lock().unwrap().values().cloned().collect();
        let of_kind = |k: &str| objects.iter().filter(|o| o["kind"] == k).cloned().collect::<Vec<_>>();
        let stores = Stores {
            tenants: store::<Tenant>(of_kind("Tenant")),
            policies: store::<CrossTenantAccessPolicy>(vec![]),
            invitations: store::<GuestInvitation>(vec![]),
        };
        // A fresh context each time, as after a restart: only the files remember.
        let base =
            Arc::new(Context::new(client, stores, &self.directory, Arc::new(Metrics::default()), Settings::default(), None));
        Arc::new(SyncContext::new(base, store::<SyncJob>(of_kind("SyncJob"))))
    }

    /// Reconciles the SyncJob `ns/name` as the cluster holds it now; the requeue delay.
    async fn reconcile(&self, ns: &str, name: &str) -> Duration {
        let (client, server) = self.serve();
        let ctx = self.context(client);
        let job = ctx.jobs.get(&reflector::ObjectRef::new(name).within(ns)).expect("the job is in the store");
        let action = reconcile_sync_job(job, ctx).await.expect("reconciles");
        server.abort();
        requeue_of(&action)
    }
}

/// The requeue delay of an `Action` (kube-runtime keeps it private; its Debug form shows it).
fn requeue_of(action: &kube::runtime::controller::Action) -> Duration {
    let text = format!("{action:?}");
    let inner = text.split("Some(").nth(1).and_then(|s| s.split(')').next()).unwrap_or_else(|| panic!("no requeue in {text}"));
    let secs = |s: &str, unit: &str, scale: f64| s.strip_suffix(unit).and_then(|n| n.parse::<f64>().ok()).map(|n| n * scale);
    let seconds = secs(inner, "ms", 1e-3).or_else(|| secs(inner, "s", 1.0)).unwrap_or_else(|| panic!("{inner}"));
    Duration::from_secs_f64(seconds)
}

fn meta(ns: &str, name: &str) -> Value {
    json!({ "namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}"), "resourceVersion": "1", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z" })
}

fn tenant(ns: &str, name: &str, id: &str, extra: Value) -> Value {
    let mut t = json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": meta(ns, name),
        "spec": { "tenantId": id, "initialDomain": format!("{name}.onmicrosoft.com"), "verifiedDomains": [format!("{name}.com")] }
    });
    if let (Some(spec), Some(extra)) = (t["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    t
}

fn sync_job(ns: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "SyncJob", "metadata": meta(ns, name), "spec": spec })
}

fn contoso_to_fabrikam() -> Value {
    sync_job(
        "default",
        "contoso-to-fabrikam",
        json!({ "tenantRef": { "name": "contoso" }, "target": { "tenantRef": { "name": "fabrikam" } } }),
    )
}

fn two_tenants() -> Vec<Value> {
    vec![tenant("default", "contoso", CONTOSO, json!({})), tenant("default", "fabrikam", FABRIKAM, json!({}))]
}

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {obj:#}"))
}

fn status_patches(requests: &[Recorded]) -> Vec<Recorded> {
    requests.iter().filter(|r| r.method == Method::PATCH && r.path.ends_with("/status")).cloned().collect()
}

/// (type, reason, note) of each Event.
fn events(requests: &[Recorded]) -> Vec<(String, String, String)> {
    requests
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/events"))
        .map(|r| {
            let s = |k: &str| r.body[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("reason"), s("note"))
        })
        .collect()
}

fn target_mails(h: &Harness) -> Vec<String> {
    let mut mails: Vec<String> = h.directory().users(FABRIKAM).unwrap().into_iter().map(|u| u.mail).collect();
    mails.sort();
    mails
}

/// A first run between two local tenants: alice and bob appear in fabrikam; the status says so.
async fn synced_once() -> (Harness, Value) {
    let job = contoso_to_fabrikam();
    let mut objects = two_tenants();
    objects.push(job.clone());
    let h = Harness::new(&objects).await;
    h.allow_sync().await;
    let dir = h.directory();
    dir.add_member(CONTOSO, "alice@contoso.com", Some("Alice")).unwrap();
    dir.add_member(CONTOSO, "bob@contoso.com", Some("Bob")).unwrap();
    h.reconcile("default", "contoso-to-fabrikam").await;
    (h, job)
}

#[tokio::test]
async fn a_due_job_with_its_prerequisites_runs_and_reports_counts() {
    let (h, job) = synced_once().await;
    assert_eq!(target_mails(&h), ["alice@contoso.com", "bob@contoso.com"]);

    let requests = h.requests();
    let patches = status_patches(&requests);
    assert_eq!(patches.len(), 1, "{requests:#?}");
    assert!(patches[0].query.contains("fieldManager=entente") && patches[0].query.contains("force=true"), "{}", patches[0].query);
    let now = h.object(&job);
    let status = &now["status"];
    assert_eq!(status["state"], "Active");
    assert_eq!(status["lastRunCounts"]["created"], 2);
    assert_eq!(status["usersInScope"], 2);
    assert_eq!(status["lastRunFull"], true);
    assert_eq!(status["observedGeneration"], 1);
    assert!(status["lastRun"].is_string() && status["nextRun"].is_string(), "{status:#}");
    assert!(status.get("missingPrerequisites").is_none());
    assert_eq!(condition(&now, "Ready")["status"], "True");
    assert_eq!(condition(&now, "Synced")["status"], "True");
    let evs = events(&requests);
    assert!(evs.contains(&("Normal".into(), "Synced".into(), "2 created".into())), "{evs:?}");
}

#[tokio::test]
async fn missing_prerequisites_are_listed_and_nothing_is_written_until_they_are_in_place() {
    let job = contoso_to_fabrikam();
    let mut objects = two_tenants();
    objects.push(job.clone());
    let h = Harness::new(&objects).await;
    h.directory().add_member(CONTOSO, "alice@contoso.com", None).unwrap();
    let wait = h.reconcile("default", "contoso-to-fabrikam").await;
    assert!(wait >= Duration::from_secs(50) && wait <= Duration::from_secs(330), "retried within minutes: {wait:?}");
    assert!(target_mails(&h).is_empty(), "nothing written to the target");

    let now = h.object(&job);
    let ready = condition(&now, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "PrerequisitesMissing");
    let missing: Vec<String> = serde_json::from_value(now["status"]["missingPrerequisites"].clone()).unwrap();
    assert_eq!(missing.len(), 3, "{missing:?}");
    assert!(
        missing
            .iter()
            .any(|m| m.contains("identitySynchronization.userSyncInbound.isSyncAllowed in fabrikam.onmicrosoft.com (R13)")),
        "{missing:?}"
    );
    assert!(
        missing.iter().any(|m| m.contains("automaticUserConsentSettings.outboundAllowed in contoso.onmicrosoft.com (R12)")),
        "{missing:?}"
    );
    let evs = events(&h.requests());
    assert!(evs.iter().any(|(t, r, _)| t == "Warning" && r == "PrerequisitesMissing"), "{evs:?}");

    // Unchanged: checked again, nothing written, no new event.
    h.clear_requests();
    h.reconcile("default", "contoso-to-fabrikam").await;
    assert!(status_patches(&h.requests()).is_empty() && events(&h.requests()).is_empty(), "{:#?}", h.requests());
    assert!(target_mails(&h).is_empty());

    // The partner settings arrive (a Tenant's change re-queues the job): it runs at once.
    h.allow_sync().await;
    h.clear_requests();
    h.reconcile("default", "contoso-to-fabrikam").await;
    assert_eq!(target_mails(&h), ["alice@contoso.com"]);
    let now = h.object(&job);
    assert_eq!(condition(&now, "Ready")["status"], "True");
    assert!(now["status"].get("missingPrerequisites").is_none());
    let evs = events(&h.requests());
    assert!(evs.iter().any(|(t, r, _)| t == "Normal" && r == "PrerequisitesRestored"), "{evs:?}");
}

#[tokio::test]
async fn a_job_that_is_not_due_does_not_run_and_keeps_its_status() {
    let (h, job) = synced_once().await;
    let before = h.object(&job);
    h.put(before.clone());
    h.directory().add_member(CONTOSO, "carol@contoso.com", None).unwrap();
    h.clear_requests();
    let wait = h.reconcile("default", "contoso-to-fabrikam").await;
    assert!(wait >= Duration::from_secs(39 * 60) && wait <= Duration::from_secs(40 * 60 + 10), "requeued at nextRun: {wait:?}");
    assert!(status_patches(&h.requests()).is_empty(), "status kept: {:#?}", h.requests());
    assert!(events(&h.requests()).is_empty());
    assert_eq!(h.object(&job)["status"], before["status"]);
    assert_eq!(target_mails(&h), ["alice@contoso.com", "bob@contoso.com"], "carol waits for the next run");
}

#[tokio::test]
async fn a_missing_tenant_is_reported() {
    let job = sync_job(
        "default",
        "to-nowhere",
        json!({ "tenantRef": { "name": "contoso" }, "target": { "tenantRef": { "name": "nowhere" } } }),
    );
    let h = Harness::new(&[tenant("default", "contoso", CONTOSO, json!({})), job.clone()]).await;
    let wait = h.reconcile("default", "to-nowhere").await;
    assert!(wait <= Duration::from_secs(300), "{wait:?}");
    let now = h.object(&job);
    let ready = condition(&now, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "TenantNotFound");
    assert!(ready["message"].as_str().unwrap().contains("spec.target.tenantRef: Tenant default/nowhere"), "{ready}");
    let evs = events(&h.requests());
    assert!(evs.iter().any(|(t, r, _)| t == "Warning" && r == "TenantNotFound"), "{evs:?}");
}

#[tokio::test]
async fn an_invalid_spec_and_a_denied_namespace_name_the_field() {
    let short = sync_job(
        "default",
        "too-often",
        json!({ "tenantRef": { "name": "contoso" }, "target": { "tenantRef": { "name": "fabrikam" } }, "interval": "10s" }),
    );
    let other_ns = sync_job(
        "team-a",
        "from-elsewhere",
        json!({ "tenantRef": { "name": "contoso", "namespace": "default" }, "target": { "tenantId": FABRIKAM } }),
    );
    let mut objects = two_tenants();
    objects.extend([short.clone(), other_ns.clone()]);
    let h = Harness::new(&objects).await;
    h.reconcile("default", "too-often").await;
    let ready = condition(&h.object(&short), "Ready").clone();
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(ready["message"].as_str().unwrap().starts_with("spec.interval:"), "{ready}");
    assert_eq!(condition(&h.object(&short), "Stalled")["status"], "True");
    h.reconcile("team-a", "from-elsewhere").await;
    let ready = condition(&h.object(&other_ns), "Ready").clone();
    assert_eq!(ready["reason"], "CrossNamespaceRefDenied");
    assert!(ready["message"].as_str().unwrap().contains("spec.allowedNamespaces"), "{ready}");
    assert!(target_mails(&h).is_empty());
}

#[tokio::test]
async fn the_provision_on_demand_annotation_provisions_that_user_once() {
    let (h, job) = synced_once().await;
    h.directory().add_member(CONTOSO, "carol@contoso.com", Some("Carol")).unwrap();
    h.directory().add_member(CONTOSO, "dave@contoso.com", Some("Dave")).unwrap();
    let mut asked = h.object(&job);
    asked["metadata"]["annotations"] = json!({ "entente.dev/provision-on-demand": "carol@contoso.com" });
    h.put(asked);
    h.clear_requests();
    h.reconcile("default", "contoso-to-fabrikam").await;
    assert_eq!(target_mails(&h), ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"], "carol only, now");
    let now = h.object(&job);
    assert_eq!(now["status"]["lastRunCounts"]["created"], 1);
    assert_eq!(condition(&now, "Ready")["status"], "True");
    let evs = events(&h.requests());
    assert!(evs.iter().any(|(t, r, n)| t == "Normal" && r == "Synced" && n.contains("carol@contoso.com")), "{evs:?}");

    // The same value again: served already, nothing runs.
    let seq = h.directory().change_seq().unwrap();
    h.clear_requests();
    h.reconcile("default", "contoso-to-fabrikam").await;
    assert_eq!(h.directory().change_seq().unwrap(), seq);
    assert!(status_patches(&h.requests()).is_empty());
}

#[tokio::test]
async fn a_deleted_job_is_forgotten_and_its_users_stay() {
    let (h, job) = synced_once().await;
    assert!(h.sync_store().job("default/contoso-to-fabrikam").unwrap().is_some());
    h.api.objects.lock().unwrap().remove(&path_of(&job));
    let (client, server) = h.serve();
    let ctx = h.context(client);
    forget_deleted(&ctx, "default", "contoso-to-fabrikam");
    server.abort();
    assert!(h.sync_store().job("default/contoso-to-fabrikam").unwrap().is_none());
    assert_eq!(target_mails(&h), ["alice@contoso.com", "bob@contoso.com"], "no finalizer, nothing deleted");
}

#[test]
fn a_tenant_change_requeues_the_jobs_that_name_it() {
    let by_id = sync_job(
        "team-a",
        "by-id",
        json!({ "tenantRef": { "name": "contoso", "namespace": "default" }, "target": { "tenantId": FABRIKAM.to_uppercase() } }),
    );
    let elsewhere = sync_job(
        "team-b",
        "elsewhere",
        json!({ "tenantRef": { "name": "contoso" }, "target": { "tenantRef": { "name": "x" } } }),
    );
    let jobs = store::<SyncJob>(vec![contoso_to_fabrikam(), by_id, elsewhere]);
    let named = |t: Value| {
        let t: Tenant = serde_json::from_value(t).unwrap();
        let mut names: Vec<String> = entente::controller::sync_jobs::jobs_naming(&jobs, &t)
            .iter()
            .map(|r| format!("{}/{}", r.namespace.clone().unwrap(), r.name))
            .collect();
        names.sort();
        names
    };
    assert_eq!(named(tenant("default", "fabrikam", FABRIKAM, json!({}))), ["default/contoso-to-fabrikam", "team-a/by-id"]);
    assert_eq!(named(tenant("default", "contoso", CONTOSO, json!({}))), ["default/contoso-to-fabrikam", "team-a/by-id"]);
    assert_eq!(named(tenant("team-b", "contoso", CONTOSO, json!({}))), ["team-b/elsewhere"]);
}
