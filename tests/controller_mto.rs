//! MultiTenantOrganizations in the controller, against a fake Kubernetes API server
//! (`tower_test::mock::pair`, as in `controller_scenarios.rs`) and a real local directory file: the
//! Tenant reconciles plan each member's part of the organization (membership, generated partner
//! configurations), the organization's own reconcile writes its status and runs the sync jobs it
//! generates.

mod kube_support;
use kube_support::{merge, not_found, path_of, store};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use entente::api::{CrossTenantAccessPolicy, GuestInvitation, MultiTenantOrganization, Tenant};
use entente::controller::metrics::Metrics;
use entente::controller::{Context, FINALIZER, Settings, Stores, reconcile_mto, reconcile_tenant};
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use kube::runtime::reflector;
use serde_json::{Value, json};

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";
const WOODGROVE: &str = "3c5d7e9f-1a2b-4c3d-8e4f-5a6b7c8d9e03";

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    path: String,
    body: Value,
}

/// A fake API server: objects by path, merge patches, status applies, events, 404 for the rest.
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
}

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
        });
        Self { api, _tmp: tmp, directory }
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
                api.requests.lock().unwrap().push(Recorded { method: parts.method.clone(), path, body });
                let response = Response::builder().status(status).body(Body::from(serde_json::to_vec(&answer).unwrap())).unwrap();
                send.send_response(response);
            }
        });
        (kube::Client::new(service, "default"), server)
    }

    /// A context over the objects the fake API server holds now (a fresh one each time, as after a
    /// restart: only the files remember).
    fn context(&self, client: kube::Client) -> Arc<Context> {
        let objects: Vec<Value> = self.api.objects.lock().unwrap().values().cloned().collect();
        let of_kind = |k: &str| objects.iter().filter(|o| o["kind"] == k).cloned().collect::<Vec<_>>();
        let stores = Stores {
            tenants: store::<Tenant>(of_kind("Tenant")),
            policies: store::<CrossTenantAccessPolicy>(vec![]),
            invitations: store::<GuestInvitation>(vec![]),
        };
        let mut ctx = Context::new(client, stores, &self.directory, Arc::new(Metrics::default()), Settings::default(), None);
        ctx.multi_tenant_organizations = store::<MultiTenantOrganization>(of_kind("MultiTenantOrganization"));
        Arc::new(ctx)
    }

    async fn reconcile_tenant(&self, name: &str) {
        let (client, server) = self.serve();
        let ctx = self.context(client);
        let tenant = ctx.tenants.get(&reflector::ObjectRef::new(name).within("default")).expect("the tenant is in the store");
        reconcile_tenant(tenant, ctx).await.expect("the tenant reconciles");
        server.abort();
    }

    async fn reconcile_mto(&self, name: &str) {
        let (client, server) = self.serve();
        let ctx = self.context(client);
        let mto = ctx
            .multi_tenant_organizations
            .get(&reflector::ObjectRef::new(name).within("default"))
            .expect("the organization is in the store");
        reconcile_mto(mto, ctx).await.expect("the organization reconciles");
        server.abort();
    }

    fn directory(&self) -> LocalDirectory {
        LocalDirectory::open(&self.directory).unwrap()
    }

    /// The partner configurations of a tenant marked `isInMultiTenantOrganization`, by partner id.
    async fn generated_partners(&self, tenant_id: &str) -> BTreeSet<String> {
        let snapshot = self.directory().snapshot(tenant_id).await.unwrap().expect("the tenant exists");
        snapshot.partners.iter().filter(|p| p.is_in_multi_tenant_organization).map(|p| p.tenant_id.clone()).collect()
    }

    async fn partners(&self, tenant_id: &str) -> BTreeSet<String> {
        let snapshot = self.directory().snapshot(tenant_id).await.unwrap().expect("the tenant exists");
        snapshot.partners.iter().map(|p| p.tenant_id.clone()).collect()
    }
}

fn meta(name: &str) -> Value {
    json!({ "namespace": "default", "name": name, "uid": format!("uid-{name}"), "resourceVersion": "1", "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z" })
}

fn tenant(name: &str, id: &str) -> Value {
    json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": meta(name),
        "spec": { "tenantId": id, "initialDomain": format!("{name}.onmicrosoft.com"), "verifiedDomains": [format!("{name}.com")] }
    })
}

/// contoso owns the organization; `members` (Tenant names) besides it.
fn organization(members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({ "tenantRef": { "name": m } })).collect();
    json!({
        "apiVersion": "entente.dev/v1alpha1", "kind": "MultiTenantOrganization", "metadata": meta("group"),
        "spec": { "displayName": "Contoso group", "owner": { "tenantRef": { "name": "contoso" } }, "members": members }
    })
}

fn condition<'a>(obj: &'a Value, type_: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {obj:#}"))
}

fn member_states(obj: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = obj["status"]["members"]
        .as_array()
        .map(|ms| {
            ms.iter().map(|m| (m["tenantId"].as_str().unwrap().to_string(), m["state"].as_str().unwrap().to_string())).collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// (reason, note) of each Event.
fn events(requests: &[Recorded]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/events"))
        .map(|r| {
            (r.body["reason"].as_str().unwrap_or_default().to_string(), r.body["note"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Three Tenants, an organization of `members`, every Tenant reconciled, then the owner again.
async fn converged(members: &[&str]) -> (Harness, Value) {
    let mto = organization(members);
    let h =
        Harness::new(&[tenant("contoso", CONTOSO), tenant("fabrikam", FABRIKAM), tenant("woodgrove", WOODGROVE), mto.clone()]);
    for t in ["contoso", "fabrikam", "woodgrove", "contoso"] {
        h.reconcile_tenant(t).await;
    }
    (h, mto)
}

#[tokio::test]
async fn reconciling_the_tenants_makes_both_members_active_with_marked_partner_configurations() {
    let (h, mto) = converged(&["fabrikam"]).await;
    assert!(
        h.object(&mto)["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == FINALIZER)),
        "the finalizer is added before any directory write"
    );
    assert_eq!(h.generated_partners(CONTOSO).await, BTreeSet::from([FABRIKAM.to_string()]));
    assert_eq!(h.generated_partners(FABRIKAM).await, BTreeSet::from([CONTOSO.to_string()]));
    assert!(h.partners(WOODGROVE).await.is_empty(), "woodgrove is not a member");

    h.clear_requests();
    h.reconcile_mto("group").await;
    let obj = h.object(&mto);
    assert_eq!(
        member_states(&obj),
        vec![(CONTOSO.to_string(), "active".to_string()), (FABRIKAM.to_string(), "active".to_string())],
        "{obj:#}"
    );
    assert_eq!(condition(&obj, "Ready")["status"], "True", "{obj:#}");
    assert_eq!(obj["status"]["observedGeneration"], 1);
    let partners = obj["status"]["partnerConfigurations"].as_array().unwrap();
    assert_eq!(partners.len(), 2);
    assert!(partners.iter().all(|p| p["present"] == true), "{partners:#?}");
    let jobs: BTreeSet<&str> =
        obj["status"]["syncJobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(jobs, BTreeSet::from(["group-contoso-to-fabrikam", "group-fabrikam-to-contoso"]));
    let notes = events(&h.requests());
    assert!(notes.iter().any(|(r, n)| r == "MemberActive" && n == "fabrikam joined: active"), "{notes:?}");

    // Nothing changed: a second pass writes no status.
    h.clear_requests();
    h.reconcile_mto("group").await;
    let patches = h.requests().into_iter().filter(|r| r.method == Method::PATCH).count();
    assert_eq!(patches, 0, "an unchanged organization patches nothing");
}

#[tokio::test]
async fn a_removed_member_loses_exactly_its_generated_partner_configurations() {
    let (h, mto) = converged(&["fabrikam", "woodgrove"]).await;
    assert_eq!(h.generated_partners(CONTOSO).await, BTreeSet::from([FABRIKAM.to_string(), WOODGROVE.to_string()]));
    assert_eq!(h.generated_partners(FABRIKAM).await, BTreeSet::from([CONTOSO.to_string(), WOODGROVE.to_string()]));
    assert_eq!(h.generated_partners(WOODGROVE).await, BTreeSet::from([CONTOSO.to_string(), FABRIKAM.to_string()]));
    h.reconcile_mto("group").await;

    // woodgrove leaves the spec.
    let mut edited = h.object(&mto);
    edited["spec"]["members"] = json!([{ "tenantRef": { "name": "fabrikam" } }]);
    edited["metadata"]["generation"] = json!(2);
    h.put(edited.clone());
    for t in ["contoso", "fabrikam", "woodgrove"] {
        h.reconcile_tenant(t).await;
    }
    assert_eq!(h.generated_partners(CONTOSO).await, BTreeSet::from([FABRIKAM.to_string()]));
    assert_eq!(h.generated_partners(FABRIKAM).await, BTreeSet::from([CONTOSO.to_string()]));
    assert!(h.partners(WOODGROVE).await.is_empty(), "what was generated in woodgrove is deleted");
    let snapshot = h.directory().snapshot(WOODGROVE).await.unwrap().unwrap();
    assert!(
        !snapshot.managed.iter().any(|r| r.object.name == "group"),
        "woodgrove keeps no record of the organization: {:?}",
        snapshot.managed
    );

    h.clear_requests();
    h.reconcile_mto("group").await;
    let obj = h.object(&edited);
    assert_eq!(member_states(&obj).len(), 2, "{obj:#}");
    assert_eq!(obj["status"]["observedGeneration"], 2);
    let notes = events(&h.requests());
    assert!(notes.iter().any(|(r, _)| r == "MemberRemoved"), "{notes:?}");
}

#[tokio::test]
async fn a_generated_sync_job_runs_from_the_organization_reconcile_and_reports_counts() {
    let (h, mto) = converged(&["fabrikam"]).await;
    let dir = h.directory();
    dir.add_member(CONTOSO, "alice@contoso.com", Some("Alice")).unwrap();
    dir.add_member(CONTOSO, "bob@contoso.com", Some("Bob")).unwrap();

    h.clear_requests();
    h.reconcile_mto("group").await;
    let mut mails: Vec<String> = h.directory().users(FABRIKAM).unwrap().into_iter().map(|u| u.mail).collect();
    mails.sort();
    assert_eq!(mails, ["alice@contoso.com", "bob@contoso.com"]);

    let obj = h.object(&mto);
    let jobs = obj["status"]["syncJobs"].as_array().unwrap();
    let job = jobs.iter().find(|j| j["name"] == "group-contoso-to-fabrikam").unwrap_or_else(|| panic!("{obj:#}"));
    assert_eq!(job["lastRunCounts"]["created"], 2, "{job:#}");
    assert_eq!(job["usersInScope"], 2, "{job:#}");
    assert_eq!(job["state"], "Active", "{job:#}");
    assert!(job["nextRun"].is_string(), "{job:#}");
    let notes = events(&h.requests());
    assert!(notes.iter().any(|(r, n)| r == "Synced" && n.contains("2 created")), "{notes:?}");

    // Not due again: nothing runs, nothing changes.
    h.clear_requests();
    h.reconcile_mto("group").await;
    let patches = h.requests().into_iter().filter(|r| r.method == Method::PATCH).count();
    assert_eq!(patches, 0);
}

#[tokio::test]
async fn deleting_the_organization_undoes_what_it_generated_then_releases_it() {
    let (h, mto) = converged(&["fabrikam"]).await;
    let mut deleting = h.object(&mto);
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-02T00:00:00Z");
    h.put(deleting.clone());

    // The tenants have not cleaned up yet: the finalizer stays.
    h.reconcile_mto("group").await;
    assert!(h.object(&deleting)["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()));

    for t in ["contoso", "fabrikam"] {
        h.reconcile_tenant(t).await;
    }
    assert!(h.generated_partners(CONTOSO).await.is_empty());
    assert!(h.generated_partners(FABRIKAM).await.is_empty());
    h.reconcile_mto("group").await;
    let finalizers = h.object(&deleting)["metadata"]["finalizers"].clone();
    assert!(finalizers.as_array().is_none_or(|f| f.is_empty()), "released: {finalizers}");
}
