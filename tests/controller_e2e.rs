//! End to end against a real cluster: runs only when `ENTENTE_E2E_KUBECONFIG` names a kubeconfig
//! (kind, k3d, minikube…), and reports itself skipped otherwise.
//!
//! Installs the CRDs, runs the controller in-process against a local directory file (watching one
//! fresh namespace), applies `examples/` there, waits for Ready, checks the statuses (an invited guest,
//! a refused one), checks that CEL rules refuse bad input at apply time, deletes the objects and checks
//! the cleanup (Delete removes the guest, Retain keeps it), then removes the namespace.
//!
//!   ENTENTE_E2E_KUBECONFIG=~/.kube/config cargo test --test controller_e2e -- --nocapture

use std::path::PathBuf;
use std::time::Duration;

use entente::api::{CrossTenantAccessPolicy, GuestInvitation, Tenant};
use entente::controller::{ControllerArgs, LogFormat};
use entente::directory::local::LocalDirectory;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";

async fn client() -> Result<Option<Client>, Box<dyn std::error::Error>> {
    let Ok(path) = std::env::var("ENTENTE_E2E_KUBECONFIG") else { return Ok(None) };
    entente::controller::install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(&path)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Some(Client::try_from(config)?))
}

async fn wait_for<F, Fut>(what: &str, mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, kube::Error>>,
{
    for _ in 0..120 {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("timed out waiting for {what}").into())
}

fn condition(status: &Value, type_: &str) -> Option<(String, String)> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| (c["status"].as_str().unwrap_or_default().to_string(), c["reason"].as_str().unwrap_or_default().to_string()))
}

async fn ready<K>(api: &Api<K>, name: &str) -> Result<Option<(String, String)>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let Some(obj) = api.get_opt(name).await? else { return Ok(None) };
    let v = serde_json::to_value(&obj).unwrap_or_default();
    Ok(condition(&v["status"], "Ready"))
}

/// Server-side applies every example document into `ns`.
async fn apply_examples(client: &Client, ns: &str) -> TestResult {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let pp = PatchParams::apply("entente-e2e").force();
    // The kinds this test follows; SyncJobs have their own scenarios (controller_sync).
    let files: Vec<PathBuf> = ["tenants.yaml", "partners.yaml", "invitations.yaml"].iter().map(|f| root.join(f)).collect();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in text.split("\n---\n") {
            let mut v: Value = serde_saphyr::from_str(doc)?;
            v["metadata"]["namespace"] = json!(ns);
            let name = v["metadata"]["name"].as_str().unwrap_or_default().to_string();
            match v["kind"].as_str() {
                Some("Tenant") => {
                    Api::<Tenant>::namespaced(client.clone(), ns).patch(&name, &pp, &Patch::Apply(&v)).await?;
                }
                Some("CrossTenantAccessPolicy") => {
                    Api::<CrossTenantAccessPolicy>::namespaced(client.clone(), ns).patch(&name, &pp, &Patch::Apply(&v)).await?;
                }
                Some("GuestInvitation") => {
                    Api::<GuestInvitation>::namespaced(client.clone(), ns).patch(&name, &pp, &Patch::Apply(&v)).await?;
                }
                other => return Err(format!("unexpected kind {other:?} in {}", file.display()).into()),
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_controller_converges_the_examples_in_a_real_cluster() -> TestResult {
    let Some(client) = client().await? else {
        println!("skipped: set ENTENTE_E2E_KUBECONFIG to a kubeconfig to run the end-to-end test");
        return Ok(());
    };

    // CRDs.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in entente::api::crds() {
        crds.patch(&crd.name_any(), &PatchParams::apply("entente-e2e").force(), &Patch::Apply(&crd)).await?;
    }
    for crd in entente::api::crds() {
        let name = crd.name_any();
        wait_for(&format!("CRD {name} established"), || {
            let (crds, name) = (crds.clone(), name.clone());
            async move {
                let c = crds.get(&name).await?;
                Ok(c.status
                    .and_then(|s| s.conditions)
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True")))
            }
        })
        .await?;
    }

    // A fresh namespace, watched by an in-process controller with its own directory file.
    let ns = format!("entente-e2e-{}", uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x"));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.create(&PostParams::default(), &serde_json::from_value(json!({ "metadata": { "name": ns } }))?).await?;
    let tmp = tempfile::tempdir()?;
    let directory = tmp.path().join("directory.db");
    let args = ControllerArgs {
        directory: directory.clone(),
        metrics_addr: "127.0.0.1:0".parse()?,
        leader_election: false,
        lease_name: "entente-e2e".into(),
        lease_namespace: None,
        identity: Some("entente-e2e".into()),
        namespace: Some(ns.clone()),
        concurrency: 2,
        reconcile_timeout: Duration::from_secs(60),
        log_format: LogFormat::Text,
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(entente::controller::run_with(client.clone(), args, async move {
        let _ = stop_rx.await;
    }));

    let outcome = async {
        // CEL refuses bad input at apply time.
        let invitations: Api<GuestInvitation> = Api::namespaced(client.clone(), &ns);
        let bad = json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "GuestInvitation",
                          "metadata": { "name": "bad", "namespace": ns },
                          "spec": { "tenantRef": { "name": "contoso" }, "invitedUserEmailAddress": "not-an-address" } });
        let refused = invitations.patch("bad", &PatchParams::apply("entente-e2e"), &Patch::Apply(&bad)).await;
        assert!(matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 422), "{refused:?}");

        apply_examples(&client, &ns).await?;
        let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
        for name in ["contoso", "fabrikam"] {
            wait_for(&format!("Tenant {name} Ready"), || {
                let tenants = tenants.clone();
                async move { Ok(ready(&tenants, name).await?.is_some_and(|(s, _)| s == "True")) }
            })
            .await?;
        }
        wait_for("alice invited", || {
            let invitations = invitations.clone();
            async move { Ok(ready(&invitations, "alice-fabrikam").await?.is_some_and(|(s, _)| s == "True")) }
        })
        .await?;
        wait_for("dave refused", || {
            let invitations = invitations.clone();
            async move { Ok(ready(&invitations, "dave-litware").await?.is_some_and(|(_, r)| r == "DomainBlocked")) }
        })
        .await?;
        let alice = invitations.get("alice-fabrikam").await?;
        let status = alice.status.clone().ok_or("alice has a status")?;
        assert!(status.user_id.is_some() && status.invite_redeem_url.is_some());
        assert!(alice.finalizers().iter().any(|f| f == entente::controller::FINALIZER));

        // Cleanup: Delete removes the guest, Retain keeps it.
        invitations.delete("alice-fabrikam", &DeleteParams::default()).await?;
        invitations.delete("bob-fabrikam", &DeleteParams::default()).await?;
        for name in ["alice-fabrikam", "bob-fabrikam"] {
            wait_for(&format!("{name} gone"), || {
                let invitations = invitations.clone();
                async move { Ok(invitations.get_opt(name).await?.is_none()) }
            })
            .await?;
        }
        let dir = LocalDirectory::open(&directory)?;
        assert!(dir.user_by_mail(CONTOSO, "alice@fabrikam.com")?.is_none(), "Delete removed alice");
        assert!(dir.user_by_mail(CONTOSO, "bob@fabrikam.com")?.is_some(), "Retain kept bob");

        // Deleting everything: every finalizer is released.
        for kind in ["guestinvitations", "crosstenantaccesspolicies", "tenants"] {
            let list = match kind {
                "guestinvitations" => {
                    invitations.list(&Default::default()).await?.items.iter().map(|o| o.name_any()).collect::<Vec<_>>()
                }
                "crosstenantaccesspolicies" => Api::<CrossTenantAccessPolicy>::namespaced(client.clone(), &ns)
                    .list(&Default::default())
                    .await?
                    .items
                    .iter()
                    .map(|o| o.name_any())
                    .collect(),
                _ => tenants.list(&Default::default()).await?.items.iter().map(|o| o.name_any()).collect(),
            };
            for name in list {
                match kind {
                    "guestinvitations" => drop(invitations.delete(&name, &DeleteParams::default()).await?),
                    "crosstenantaccesspolicies" => drop(
                        Api::<CrossTenantAccessPolicy>::namespaced(client.clone(), &ns)
                            .delete(&name, &DeleteParams::default())
                            .await?,
                    ),
                    _ => drop(tenants.delete(&name, &DeleteParams::default()).await?),
                }
            }
        }
        wait_for("every object gone", || {
            let (tenants, invitations) = (tenants.clone(), invitations.clone());
            async move {
                Ok(tenants.list(&Default::default()).await?.items.is_empty()
                    && invitations.list(&Default::default()).await?.items.is_empty())
            }
        })
        .await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), controller).await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    outcome
}
