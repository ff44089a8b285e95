//! Self-service sign-up (R17): `IdentityProvider` and `SignUpFlow` manifests (errors, secrets never in
//! YAML), plan/apply/unchanged on the local directory, the rules the local directory enforces (a flow only
//! offers existing, enabled providers; a provider a flow offers cannot be disabled or deleted), and the
//! same through the Graph backend against the emulator (strict contract), where what the contract lacks
//! fails with `NotImplemented`.

mod kube_support;
use std::sync::Arc;

use entente::core::identity::{BUILT_IN_EMAIL, ProviderState, SecretValue};
use entente::core::model::DesiredState;
use entente::core::operation::Operation;
use entente::core::plan::{Action, Plan, PlanOptions, Prune};
use entente::core::policy::RefusalReason;
use entente::directory::graph::{Credential, GraphConfig, GraphDirectory};
use entente::directory::inventory::SqliteInventory;
use entente::directory::local::LocalDirectory;
use entente::directory::{Directory, DirectoryError};
use entente::emulator::{self, EmulatorConfig};
use entente::engine::{self, ChangeResult, Routes};

const TENANT: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";

const TENANT_YAML: &str = "apiVersion: entente.dev/v1alpha1
kind: Tenant
metadata:
  name: contoso
spec:
  tenantId: 6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01
  initialDomain: contoso.onmicrosoft.com
  displayName: Contoso Ltd
";

const GOOGLE: &str = "apiVersion: entente.dev/v1alpha1
kind: IdentityProvider
metadata:
  name: google
spec:
  tenantRef: { name: contoso }
  type: Google
  clientId: google-app-id
  clientSecretRef: { name: google-oauth, key: clientSecret }
";

const OTP: &str = "apiVersion: entente.dev/v1alpha1
kind: IdentityProvider
metadata:
  name: email-otp
spec:
  tenantRef: { name: contoso }
  type: EmailOneTimePasscode
";

const SAML: &str = "apiVersion: entente.dev/v1alpha1
kind: IdentityProvider
metadata:
  name: fabrikam-saml
spec:
  tenantRef: { name: contoso }
  type: SamlWsFed
  domains: [fabrikam.com]
  issuerUri: https://sts.fabrikam.com/adfs/services/trust
  passiveSignInUri: https://sts.fabrikam.com/adfs/ls
  preferredAuthenticationProtocol: saml
  signingCertificate: MIIDADCCAeigAwIBAgIQ
";

fn flow(providers: &[&str], extra: &str) -> String {
    let list: Vec<String> = providers.iter().map(|p| format!("{{ name: {p} }}")).collect();
    format!(
        "apiVersion: entente.dev/v1alpha1
kind: SignUpFlow
metadata:
  name: partners
spec:
  tenantRef: {{ name: contoso }}
  identityProviders: [{}]
{extra}",
        list.join(", ")
    )
}

const FULL_FLOW_EXTRA: &str = "  userAttributes: [displayName, city, country]
  applications: [0e5b6a0c-1d2e-4f3a-8b9c-0d1e2f3a4b5c]
  apiConnectors:
    - step: postAttributeCollection
      targetUrl: https://approvals.contoso.com/validate
      authentication:
        basic: { username: entente, passwordSecretRef: { name: approvals, key: password } }
";

fn load(docs: &[&str]) -> Result<DesiredState, String> {
    let text = docs.join("---\n");
    entente::manifest::load_str(&[("sign-up.yaml", &text)]).map(|m| m.desired).map_err(|e| e.to_string())
}

/// Resolves every secret as the CLI would from the environment (here: `value`).
fn with_secrets(mut d: DesiredState, value: &str) -> DesiredState {
    for s in entente::manifest::identity::secrets_mut(&mut d) {
        s.value = Some(SecretValue::new(format!("{value}-{}", s.secret_name)));
    }
    d
}

fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes.iter().map(|c| (c.object.to_string(), c.action)).collect()
}

fn local_routes(dir: &Arc<LocalDirectory>) -> Routes {
    [(TENANT.to_string(), Ok(dir.clone() as Arc<dyn Directory>))].into_iter().collect()
}

async fn plan(routes: &Routes, d: &DesiredState, prune: Prune) -> Plan {
    engine::plan_against(d, routes, PlanOptions { prune, ..Default::default() }).await
}

fn failures(report: &engine::ApplyReport) -> Vec<String> {
    report
        .results
        .iter()
        .filter_map(|r| match r {
            ChangeResult::Failed { category, message } => Some(format!("{category}: {message}")),
            ChangeResult::Refused { refusal } => Some(refusal.to_string()),
            ChangeResult::Skipped { reason } => Some(format!("skipped: {reason}")),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Manifests

#[test]
fn a_secret_in_the_manifest_is_an_error_naming_the_ref_to_use() {
    let with_secret = format!("{GOOGLE}  clientSecret: hunter2\n");
    let e = load(&[TENANT_YAML, &with_secret]).unwrap_err();
    assert!(
        e.contains(
            "sign-up.yaml:19: IdentityProvider/default/google: spec.clientSecret: a client secret must never be in a manifest"
        ) && e.contains("clientSecretRef"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    let connector = FULL_FLOW_EXTRA.replace("passwordSecretRef: { name: approvals, key: password }", "password: hunter2");
    let e = load(&[TENANT_YAML, GOOGLE, &flow(&["google"], &connector)]).unwrap_err();
    assert!(e.contains("SignUpFlow/default/partners: spec.apiConnectors[0].authentication.basic.password"), "{e}");
}

#[test]
fn api_connectors_are_kept_in_the_order_their_steps_run() {
    // Directories read a flow's connectors back step by step; the manifest's order must not show as a change.
    let second = connector("postFederationSignup", "https://approvals.contoso.com/approve");
    let reversed = format!(
        "{}{}",
        connector("postAttributeCollection", "https://approvals.contoso.com/validate"),
        second.trim_start_matches("  apiConnectors:\n")
    );
    let d = load(&[TENANT_YAML, GOOGLE, &flow(&["google"], &reversed)]).unwrap();
    let flow = d.tenants.iter().flat_map(|t| &t.sign_up_flows).next().expect("the flow");
    let steps: Vec<&str> = flow.api_connectors.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(steps, ["postFederationSignup", "postAttributeCollection"]);
}

#[test]
fn manifest_errors_name_file_line_object_and_field() {
    let bad_domain = SAML.replace("[fabrikam.com]", "[fabrikam]");
    let e = load(&[TENANT_YAML, &bad_domain]).unwrap_err();
    assert!(
        e.contains(
            "sign-up.yaml:17: IdentityProvider/default/fabrikam-saml: spec.domains[0]: \"fabrikam\" is not a valid domain"
        ),
        "{e}"
    );
    let own_domain = SAML.replace("[fabrikam.com]", "[contoso.onmicrosoft.com]");
    assert!(load(&[TENANT_YAML, &own_domain]).unwrap_err().contains("is a domain of the tenant itself"));
    let no_client = GOOGLE.replace("  clientId: google-app-id\n", "");
    assert!(load(&[TENANT_YAML, &no_client]).unwrap_err().contains("spec.clientId: required for a Google provider"));
    let e = load(&[TENANT_YAML, GOOGLE, &flow(&["google", "nope"], "  userAttributes: [shoeSize]\n")]).unwrap_err();
    assert!(e.contains("spec.identityProviders[1].name: no IdentityProvider \"nope\""), "{e}");
    assert!(e.contains("spec.userAttributes[0]: \"shoeSize\" is not a built-in user attribute"), "{e}");
    let disabled = format!("{OTP}  state: disabled\n");
    let e = load(&[TENANT_YAML, &disabled, &flow(&["email-otp"], "")]).unwrap_err();
    assert!(e.contains("is disabled: a sign-up flow may only offer enabled identity providers (R17)"), "{e}");
    let twice = GOOGLE.replace("name: google\n", "name: google-2\n");
    assert!(load(&[TENANT_YAML, GOOGLE, &twice]).unwrap_err().contains("is already the Google provider of this tenant"));
}

// ------------------------------------------------------------------------------------------------
// Local directory

#[tokio::test]
async fn plan_apply_and_an_unchanged_replan_on_the_local_directory() {
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let routes = local_routes(&dir);
    let d = load(&[TENANT_YAML, GOOGLE, OTP, SAML, &flow(&["google", "email-otp", "fabrikam-saml"], FULL_FLOW_EXTRA)]).unwrap();

    // A secret that is not available is a plan error saying where it is read from.
    let p = plan(&routes, &d, Prune::Off).await;
    let errors: Vec<String> = p.errors.iter().map(|e| format!("{}: {}", e.object, e.message)).collect();
    assert!(
        errors.iter().any(|e| e.contains("IdentityProvider/default/google") && e.contains("ENTENTE_IDP_SECRET_DEFAULT_GOOGLE")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("ENTENTE_SIGNUP_SECRET_DEFAULT_PARTNERS_POSTATTRIBUTECOLLECTION")), "{errors:?}");

    let d = with_secrets(d, "s3cret");
    let p = plan(&routes, &d, Prune::Off).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("s3cret"), "a secret leaked into the plan: {text}");
    assert!(text.contains("from Secret default/google-oauth key clientSecret, hmac-sha256 "), "{text}");
    let report = engine::apply(&p, &routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));

    let again = plan(&routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));
    assert!(
        again
            .changes
            .iter()
            .filter(|c| c.object.kind != entente::core::model::Kind::Tenant)
            .all(|c| c.action == Action::Unchanged)
    );

    // Sign-ups through the flow (R17).
    dir.can_sign_up(TENANT, "B2X_1_partners", "Google").unwrap();
    dir.can_sign_up(TENANT, "B2X_1_partners", BUILT_IN_EMAIL).unwrap();
    dir.can_sign_up(TENANT, "B2X_1_partners", "SamlWsFed:fabrikam.com").unwrap();
    let e = dir.can_sign_up(TENANT, "B2X_1_partners", "Facebook").unwrap_err();
    assert!(e.to_string().contains("does not offer identity provider Facebook"), "{e}");

    // A rotated secret is an update that shows a new hash, never the secret.
    let rotated = with_secrets(d.clone(), "n3w");
    let p = plan(&routes, &rotated, Prune::Off).await;
    let google = p.changes.iter().find(|c| c.object.name == "google").unwrap();
    assert_eq!(google.action, Action::Update);
    assert_eq!(google.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["clientSecret"]);
    assert!(!serde_json::to_string(&p).unwrap().contains("n3w"));

    // Disabling the OTP provider while taking it off the flow: one apply, the flow first (R17).
    let disabled = format!("{OTP}  state: disabled\n");
    let d2 = with_secrets(
        load(&[TENANT_YAML, GOOGLE, &disabled, SAML, &flow(&["google", "fabrikam-saml"], FULL_FLOW_EXTRA)]).unwrap(),
        "s3cret",
    );
    let p = plan(&routes, &d2, Prune::Off).await;
    let order: Vec<String> = p.changes.iter().filter(|c| c.action == Action::Update).map(|c| c.object.name.clone()).collect();
    assert_eq!(order, ["partners", "email-otp"]);
    let report = engine::apply(&p, &routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    let e = dir.can_sign_up(TENANT, "B2X_1_partners", "EmailOneTimePasscode").unwrap_err();
    assert!(matches!(&e, DirectoryError::Refused(r) if r.reason == RefusalReason::SignUpProviderUnavailable), "{e}");

    // Removing the flow and the SAML provider: pruned, the flow before the provider.
    let d3 = with_secrets(load(&[TENANT_YAML, GOOGLE, &disabled]).unwrap(), "s3cret");
    let p = plan(&routes, &d3, Prune::Off).await;
    assert!(!p.has_writes());
    assert!(p.notes.iter().any(|n| n.contains("SignUpFlow/default/partners")), "{:?}", p.notes);
    let p = plan(&routes, &d3, Prune::All).await;
    let deletes: Vec<String> = p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.object.name.clone()).collect();
    assert_eq!(deletes, ["partners", "fabrikam-saml"]);
    let report = engine::apply(&p, &routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    let s = dir.identity_state(TENANT).unwrap();
    assert!(s.flows.is_empty());
    assert_eq!(s.providers.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["EmailOneTimePasscode", "Google"]);
}

#[tokio::test]
async fn the_local_directory_enforces_r17_on_every_write() {
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let routes = local_routes(&dir);
    let d = with_secrets(load(&[TENANT_YAML, GOOGLE, OTP, &flow(&["google", "email-otp"], "")]).unwrap(), "s3cret");
    let p = plan(&routes, &d, Prune::Off).await;
    assert!(failures(&engine::apply(&p, &routes).await).is_empty());

    let refused = |e: DirectoryError| match e {
        DirectoryError::Refused(r) => {
            assert_eq!(r.reason, RefusalReason::SignUpProviderUnavailable);
            r.message
        }
        e => panic!("expected a refusal, got {e}"),
    };
    // Disabling or deleting a provider a flow offers.
    let m = refused(dir.set_identity_provider_state(TENANT, "Google", ProviderState::Disabled).unwrap_err());
    assert!(m.contains("identity provider Google") && m.contains("B2X_1_partners"), "{m}");
    let del = [Operation::DeleteIdentityProvider { key: "Google".into(), id: "Google-OAUTH".into() }];
    let m = refused(dir.apply(TENANT, &del).await.unwrap_err());
    assert!(m.contains("cannot be deleted"), "{m}");
    // A flow offering a provider that does not exist, or one that is disabled.
    let mut flow = dir.identity_state(TENANT).unwrap().flows[0].clone();
    flow.identity_providers.insert("Facebook".into());
    let m = refused(dir.apply(TENANT, &[Operation::PutSignUpFlow { flow, exists: true }]).await.unwrap_err());
    assert!(m.contains("identity provider Facebook does not exist"), "{m}");

    // Drift: an admin takes OTP off the flow (outside entente) and disables it; the plan puts both back.
    let mut flow = dir.identity_state(TENANT).unwrap().flows[0].clone();
    flow.identity_providers.remove("EmailOneTimePasscode");
    dir.apply(TENANT, &[Operation::PutSignUpFlow { flow: flow.clone(), exists: true }]).await.unwrap();
    dir.set_identity_provider_state(TENANT, "EmailOneTimePasscode", ProviderState::Disabled).unwrap();
    let p = plan(&routes, &d, Prune::Off).await;
    let drifted: Vec<(String, bool)> =
        p.changes.iter().filter(|c| c.action == Action::Update).map(|c| (c.object.name.clone(), c.drift)).collect();
    assert_eq!(drifted, [("email-otp".to_string(), true), ("partners".to_string(), true)]);
    assert!(failures(&engine::apply(&p, &routes).await).is_empty());
    dir.can_sign_up(TENANT, "B2X_1_partners", "EmailOneTimePasscode").unwrap();
}

// ------------------------------------------------------------------------------------------------
// Graph backend against the emulator

struct Graph {
    routes: Routes,
    world: Arc<LocalDirectory>,
    emulator: emulator::EmulatorHandle,
    _tmp: tempfile::TempDir,
}

async fn graph() -> Graph {
    let tmp = tempfile::tempdir().unwrap();
    let world = Arc::new(LocalDirectory::open(&tmp.path().join("directory.db")).unwrap());
    let d = load(&[TENANT_YAML]).unwrap();
    world.apply(TENANT, &[Operation::CreateTenant { identity: d.tenants[0].identity.clone() }]).await.unwrap();
    let mut config = EmulatorConfig::default();
    config.contract.strict = true;
    config.contract.allow_unknown_properties = false;
    let handle = emulator::start(world.clone(), config).await.unwrap();
    let inventory = Arc::new(SqliteInventory::open(&tmp.path().join("inventory.db")).unwrap());
    let permissions: Vec<String> = entente::directory::graph::APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let app = emulator::apps::create_app(&world, TENANT, "entente", &permissions).unwrap();
    let mut gc = GraphConfig::new(TENANT, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
    gc.authority_host = handle.url();
    gc.graph_endpoint = handle.url();
    let dir = GraphDirectory::new(gc, inventory).unwrap();
    let routes = [(TENANT.to_string(), Ok(Arc::new(dir) as Arc<dyn Directory>))].into_iter().collect();
    Graph { routes, world, emulator: handle, _tmp: tmp }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_through_the_graph_backend_and_the_emulator() {
    let g = graph().await;
    let d = with_secrets(load(&[TENANT_YAML, GOOGLE, &flow(&["google"], "")]).unwrap(), "s3cret");
    let p = plan(&g.routes, &d, Prune::Off).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let report = engine::apply(&p, &g.routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    // The emulator wrote the local directory: its rules held, and the secret is only a hash there.
    g.world.can_sign_up(TENANT, "B2X_1_partners", "Google").unwrap();
    g.world.can_sign_up(TENANT, "B2X_1_partners", BUILT_IN_EMAIL).unwrap();
    let again = plan(&g.routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));

    // Deleting the provider while the flow offers it: the emulator refuses (R17), the backend says so.
    let del = [Operation::DeleteIdentityProvider { key: "Google".into(), id: "Google-OAUTH".into() }];
    match g.routes[TENANT].as_ref().unwrap().apply(TENANT, &del).await {
        Err(DirectoryError::Refused(r)) => assert_eq!(r.reason, RefusalReason::SignUpProviderUnavailable),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Applications using a flow have no Graph v1.0 API (beta only): NotImplemented naming it, and the plan
    // says so. (Attributes and API connectors are served: see the reconcile test below.)
    let d2 = with_secrets(load(&[TENANT_YAML, GOOGLE, &flow(&["google"], FULL_FLOW_EXTRA)]).unwrap(), "s3cret");
    let p = plan(&g.routes, &d2, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "partners").unwrap();
    assert_eq!(c.action, Action::Update);
    let note = c.note.clone().unwrap_or_default();
    assert!(note.contains("applications: ") && note.contains("only in Graph beta"), "{note}");
    assert!(!note.contains("userAttributes") && !note.contains("apiConnectors"), "{note}");
    let report = engine::apply(&p, &g.routes).await;
    let f = failures(&report);
    assert!(f.iter().any(|m| m.starts_with("NotImplemented") && m.contains("only in Graph beta")), "{f:?}");

    let contract = g.emulator.contract_report();
    assert!(contract.violations.is_empty(), "contract violations: {:#?}", contract.violations);
}

// ------------------------------------------------------------------------------------------------
// The controller (a fake Kubernetes API server, `tower_test::mock::pair`)

mod controller {

    use entente::directory::local::LocalDirectory;

    use serde_json::{Value, json};

    use super::TENANT;
    use crate::kube_support::reconcile_contoso;

    fn meta(name: &str) -> Value {
        json!({ "namespace": "default", "name": name, "uid": format!("uid-{name}"), "resourceVersion": "1", "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z" })
    }

    /// Reconciles the Tenant with these objects; returns the result and every request body the controller sent.
    async fn reconcile(
        objects: &[Value],
        directory: &std::path::Path,
    ) -> (Result<kube::runtime::controller::Action, entente::controller::Error>, Vec<String>) {
        let (result, sent) = reconcile_contoso(objects, directory).await;
        (result, sent.iter().map(|(_, _, body)| body.to_string()).collect())
    }

    fn objects(with_secret: bool) -> Vec<Value> {
        let mut o = vec![
            json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "Tenant", "metadata": meta("contoso"),
                    "spec": { "tenantId": TENANT, "initialDomain": "contoso.onmicrosoft.com" } }),
            json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "IdentityProvider", "metadata": meta("google"),
                    "spec": { "tenantRef": { "name": "contoso" }, "type": "Google", "clientId": "google-app-id",
                              "clientSecretRef": { "name": "google-oauth", "key": "clientSecret" } } }),
            json!({ "apiVersion": "entente.dev/v1alpha1", "kind": "SignUpFlow", "metadata": meta("partners"),
                    "spec": { "tenantRef": { "name": "contoso" }, "identityProviders": [{ "name": "google" }] } }),
        ];
        if with_secret {
            // "s3cret-value", base64.
            o.push(json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta("google-oauth"),
                           "data": { "clientSecret": "czNjcmV0LXZhbHVl" } }));
        }
        o
    }

    #[tokio::test]
    async fn the_tenant_reconcile_applies_its_providers_and_flows_with_secrets_from_kubernetes() {
        let tmp = tempfile::tempdir().unwrap();
        let directory = tmp.path().join("directory.db");

        // Without the Secret: the provider (and the flow that offers it) are not written; nothing panics, and
        // the reconcile fails (its status says why; the Tenant is retried with backoff).
        let (result, _) = reconcile(&objects(false), &directory).await;
        assert!(matches!(result, Err(entente::controller::Error::Sync { .. })), "{result:?}");
        let s = LocalDirectory::open(&directory).unwrap().identity_state(TENANT).unwrap();
        assert!(s.providers.is_empty() && s.flows.is_empty(), "{s:?}");

        let (result, sent) = reconcile(&objects(true), &directory).await;
        result.expect("reconciles");
        let dir = LocalDirectory::open(&directory).unwrap();
        dir.can_sign_up(TENANT, "B2X_1_partners", "Google").unwrap();
        assert!(sent.iter().all(|b| !b.contains("s3cret-value")), "a secret reached the API server: {sent:?}");
    }
}

// ------------------------------------------------------------------------------------------------
// A flow's providers, attributes and API connectors through the Graph backend and the emulator

const FACEBOOK: &str = "apiVersion: entente.dev/v1alpha1
kind: IdentityProvider
metadata:
  name: facebook
spec:
  tenantRef: { name: contoso }
  type: Facebook
  clientId: facebook-app-id
  clientSecretRef: { name: facebook-oauth, key: clientSecret }
";

fn connector(step: &str, url: &str) -> String {
    format!(
        "  apiConnectors:
    - step: {step}
      targetUrl: {url}
      authentication:
        basic: {{ username: entente, passwordSecretRef: {{ name: approvals, key: password }} }}
"
    )
}

fn flow_in(world: &LocalDirectory) -> entente::core::identity::SignUpFlowConfig {
    let s = world.identity_state(TENANT).unwrap();
    assert_eq!(s.flows.len(), 1, "{s:?}");
    s.flows[0].clone()
}

fn set<const N: usize>(items: [&str; N]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_is_created_changed_and_deleted_through_the_graph_backend_and_the_emulator() {
    let g = graph().await;
    let first = format!(
        "  emailPassword: true\n  userAttributes: [displayName, city]\n{}",
        connector("postAttributeCollection", "https://approvals.contoso.com/validate")
    );
    let d = with_secrets(load(&[TENANT_YAML, GOOGLE, FACEBOOK, &flow(&["google"], &first)]).unwrap(), "s3cret");
    let p = plan(&g.routes, &d, Prune::Off).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let c = p.changes.iter().find(|c| c.object.name == "partners").unwrap();
    assert_eq!(c.action, Action::Create);
    assert!(c.note.is_none(), "{:?}", c.note);
    let report = engine::apply(&p, &g.routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));

    // The emulator wrote the local directory through its operations.
    let f = flow_in(&g.world);
    assert_eq!(f.identity_providers, set(["Google", BUILT_IN_EMAIL]));
    assert_eq!(f.user_attributes, set(["city", "displayName"]));
    assert_eq!(f.api_connectors.len(), 1);
    assert_eq!(f.api_connectors[0].step, entente::core::identity::ConnectorStep::PostAttributeCollection);
    assert_eq!(f.api_connectors[0].target_url, "https://approvals.contoso.com/validate");
    assert_eq!(f.api_connectors[0].username.as_deref(), Some("entente"));
    let first_hash = f.api_connectors[0].secret_hash.clone();
    assert!(!first_hash.is_empty() && !format!("{f:?}").contains("s3cret"));

    // Read back: no drift, nothing to write.
    let again = plan(&g.routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));

    // A rotated connector secret is an update (a new marker), and reaches the directory.
    let rotated = with_secrets(d.clone(), "n3w");
    let p = plan(&g.routes, &rotated, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "partners").unwrap();
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["apiConnectors"]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert_ne!(flow_in(&g.world).api_connectors[0].secret_hash, first_hash);
    assert!(!plan(&g.routes, &rotated, Prune::Off).await.has_writes());

    // Change everything: providers (one added, the built-in email removed), attributes (one swapped), and
    // the connector moved to the other step with another URL.
    let second = format!(
        "  emailPassword: false\n  userAttributes: [displayName, country]\n{}",
        connector("postFederationSignup", "https://approvals.contoso.com/federated")
    );
    let d2 = with_secrets(load(&[TENANT_YAML, GOOGLE, FACEBOOK, &flow(&["google", "facebook"], &second)]).unwrap(), "n3w");
    let p = plan(&g.routes, &d2, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "partners").unwrap();
    assert_eq!(c.action, Action::Update);
    assert!(!c.drift);
    let report = engine::apply(&p, &g.routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    let f = flow_in(&g.world);
    assert_eq!(f.identity_providers, set(["Facebook", "Google"]));
    assert_eq!(f.user_attributes, set(["country", "displayName"]));
    assert_eq!(f.api_connectors.len(), 1, "{:?}", f.api_connectors);
    assert_eq!(f.api_connectors[0].step, entente::core::identity::ConnectorStep::PostFederationSignup);
    assert_eq!(f.api_connectors[0].target_url, "https://approvals.contoso.com/federated");
    g.world.can_sign_up(TENANT, "B2X_1_partners", "Facebook").unwrap();
    assert!(g.world.can_sign_up(TENANT, "B2X_1_partners", BUILT_IN_EMAIL).is_err());
    let again = plan(&g.routes, &d2, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));

    // Drift made outside entente (straight in the directory): read through Graph, corrected.
    let mut drifted = f.clone();
    drifted.user_attributes.remove("country");
    drifted.identity_providers.remove("Facebook");
    g.world.apply(TENANT, &[Operation::PutSignUpFlow { flow: drifted, exists: true }]).await.unwrap();
    let p = plan(&g.routes, &d2, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "partners").unwrap();
    assert_eq!((c.action, c.drift), (Action::Update, true));
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    let f = flow_in(&g.world);
    assert_eq!(f.identity_providers, set(["Facebook", "Google"]));
    assert_eq!(f.user_attributes, set(["country", "displayName"]));
    assert!(!plan(&g.routes, &d2, Prune::Off).await.has_writes());

    // Deleted with --prune.
    let d3 = with_secrets(load(&[TENANT_YAML, GOOGLE, FACEBOOK]).unwrap(), "n3w");
    let p = plan(&g.routes, &d3, Prune::All).await;
    let deletes: Vec<String> = p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.object.name.clone()).collect();
    assert_eq!(deletes, ["partners"]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert!(g.world.identity_state(TENANT).unwrap().flows.is_empty());

    let contract = g.emulator.contract_report();
    assert!(contract.violations.is_empty(), "contract violations: {:#?}", contract.violations);
    // Every user flow and API connector request was one the contract (with entente's extension) documents.
    let outside: Vec<_> = contract.outside_subset.iter().filter(|o| o.path.contains("/identity/")).collect();
    assert!(outside.is_empty(), "outside the contract: {outside:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_malformed_flow_bodies_per_the_contract() {
    let g = graph().await;
    let d = with_secrets(load(&[TENANT_YAML, GOOGLE, &flow(&["google"], "  userAttributes: [city]\n")]).unwrap(), "s3cret");
    assert!(failures(&engine::apply(&plan(&g.routes, &d, Prune::Off).await, &g.routes).await).is_empty());
    let before = flow_in(&g.world);

    let token = idp_token(&g, &["IdentityUserFlow.ReadWrite.All", "APIConnectors.ReadWrite.All"]).await;
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        let req = http.post(format!("{}/v1.0{path}", g.emulator.url())).bearer_auth(&token).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };

    // An input type outside identityUserFlowAttributeInputType, a boolean sent as a string.
    let (status, body) = post(
        "/identity/b2xUserFlows/B2X_1_partners/userAttributeAssignments",
        serde_json::json!({ "userAttribute": { "id": "country" }, "userInputType": "bogusBox", "isOptional": "yes" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A reference without @odata.id.
    let (status, body) =
        post("/identity/b2xUserFlows/B2X_1_partners/userFlowIdentityProviders/$ref", serde_json::json!({ "id": "Google-OAUTH" }))
            .await;
    assert_eq!(status, 400, "{body}");
    // A connector whose URL property is misspelled (so the required targetUrl is missing).
    let (status, body) = post(
        "/identity/apiConnectors",
        serde_json::json!({ "displayName": "approvals", "target_url": "https://approvals.contoso.com",
            "authenticationConfiguration": { "@odata.type": "#microsoft.graph.basicAuthentication", "username": "u", "password": "p" } }),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Nothing changed, and the contract check saw each malformed request (and no bad answer).
    assert_eq!(flow_in(&g.world), before);
    let report = g.emulator.contract_report();
    let requests: Vec<(String, String)> = report
        .violations
        .iter()
        .map(|v| {
            assert_eq!(v.direction, "request", "{v:#?}");
            (v.path.clone(), v.findings.join("; "))
        })
        .collect();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(requests[0].0.ends_with("/userAttributeAssignments") && requests[0].1.contains("bogusBox"), "{requests:#?}");
    assert!(requests[0].1.contains("isOptional"), "{requests:#?}");
    assert!(requests[1].0.ends_with("/userFlowIdentityProviders/$ref") && requests[1].1.contains("@odata.id"), "{requests:#?}");
    assert!(requests[2].0.ends_with("/identity/apiConnectors") && requests[2].1.contains("target_url"), "{requests:#?}");
}

// ------------------------------------------------------------------------------------------------
// Email one-time passcode and SAML/WS-Fed federations (with their domains) through the Graph backend and
// the emulator (contract extension `emulator/contract/identity.yaml`)

fn idp_writes(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes
        .iter()
        .filter(|c| c.action.writes() && c.object.kind != entente::core::model::Kind::Tenant)
        .map(|c| (c.object.name.clone(), c.action))
        .collect()
}

fn idp_provider(world: &LocalDirectory, key: &str) -> Option<entente::core::identity::ObservedIdentityProvider> {
    world.identity_state(TENANT).unwrap().providers.into_iter().find(|p| p.key == key)
}

/// A token of an app in the emulated tenant holding `permissions`, for raw calls.
async fn idp_token(g: &Graph, permissions: &[&str]) -> String {
    let perms: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
    let app = emulator::apps::create_app(&g.world, TENANT, "raw", &perms).unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "https://graph.microsoft.com/.default"),
        ("client_id", app.client_id.as_str()),
        ("client_secret", app.client_secret.as_str()),
    ];
    let url = format!("{}/{TENANT}/oauth2/v2.0/token", g.emulator.url());
    let r: serde_json::Value = reqwest::Client::new().post(url).form(&form).send().await.unwrap().json().await.unwrap();
    r["access_token"].as_str().unwrap().to_string()
}

async fn idp_call(g: &Graph, token: &str, method: reqwest::Method, path: &str, body: serde_json::Value) -> reqwest::StatusCode {
    let url = format!("{}/v1.0{path}", g.emulator.url());
    reqwest::Client::new().request(method, url).bearer_auth(token).json(&body).send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_otp_is_switched_on_and_off_through_the_graph_backend_and_the_emulator() {
    let g = graph().await;
    let otp = "EmailOneTimePasscode";

    // Enabled: written as allowExternalIdToUseEmailOtp = enabled, read back unchanged.
    let d = load(&[TENANT_YAML, OTP]).unwrap();
    let p = plan(&g.routes, &d, Prune::Off).await;
    assert_eq!(idp_writes(&p), [("email-otp".to_string(), Action::Create)]);
    assert!(p.changes.iter().filter(|c| c.object.name == "email-otp").all(|c| c.note.is_none()), "{:?}", p.changes);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert_eq!(idp_provider(&g.world, otp).unwrap().state, ProviderState::Enabled);
    let again = plan(&g.routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));

    // Disabled: no "not supported" note any more; written, then read back (the built-in is no longer listed,
    // the email method says disabled).
    let disabled = load(&[TENANT_YAML, &format!("{OTP}  state: disabled\n")]).unwrap();
    let p = plan(&g.routes, &disabled, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "email-otp").unwrap();
    assert_eq!((c.action, c.note.clone()), (Action::Update, None));
    assert_eq!(c.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["state"]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert_eq!(idp_provider(&g.world, otp).unwrap().state, ProviderState::Disabled);
    let again = plan(&g.routes, &disabled, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));

    // Drift: switched on outside entente; the plan sees it and switches it off again.
    g.world.set_identity_provider_state(TENANT, otp, ProviderState::Enabled).unwrap();
    let p = plan(&g.routes, &disabled, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "email-otp").unwrap();
    assert_eq!((c.action, c.drift), (Action::Update, true));
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert_eq!(idp_provider(&g.world, otp).unwrap().state, ProviderState::Disabled);

    // R17 holds through Graph: email OTP cannot be switched off while a flow offers it.
    let d = load(&[TENANT_YAML, OTP, &flow(&["email-otp"], "")]).unwrap();
    assert!(failures(&engine::apply(&plan(&g.routes, &d, Prune::Off).await, &g.routes).await).is_empty());
    let off = [Operation::DeleteIdentityProvider { key: otp.into(), id: "EmailOtpSignup-OAUTH".into() }];
    match g.routes[TENANT].as_ref().unwrap().apply(TENANT, &off).await {
        Err(DirectoryError::Refused(r)) => assert_eq!(r.reason, RefusalReason::SignUpProviderUnavailable),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Deleted (pruned, the flow first): a built-in provider is switched off, not removed.
    let none = load(&[TENANT_YAML]).unwrap();
    let p = plan(&g.routes, &none, Prune::All).await;
    let deletes: Vec<String> = p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.object.name.clone()).collect();
    assert_eq!(deletes, ["partners", "email-otp"]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert_eq!(idp_provider(&g.world, otp).unwrap().state, ProviderState::Disabled);
    assert!(!plan(&g.routes, &none, Prune::All).await.has_writes());

    idp_assert_contract_kept(&g);
}

fn idp_assert_contract_kept(g: &Graph) {
    let report = g.emulator.contract_report();
    assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
    let ours = |p: &str| p.contains("federationConfigurations") || p.contains("authenticationMethod");
    assert!(!report.outside_subset.iter().any(|o| ours(&o.path)), "outside the contract: {:#?}", report.outside_subset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_with_domains_is_created_read_back_changed_adopted_and_deleted_through_graph() {
    let g = graph().await;
    let key = "SamlWsFed:fabrikam.com";

    // Created with its domain; read back with it, so it matches the desired federation: no drift.
    let d = load(&[TENANT_YAML, SAML]).unwrap();
    let p = plan(&g.routes, &d, Prune::Off).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Create)]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    let f = idp_provider(&g.world, key).expect("created in the directory");
    assert_eq!(f.saml.as_ref().unwrap().issuer_uri, "https://sts.fabrikam.com/adfs/services/trust");
    let again = plan(&g.routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));
    g.world.can_sign_up(TENANT, "B2X_1_nope", key).unwrap_err();

    // Changed: a new issuer and a second domain (the first stays the key).
    let changed = SAML
        .replace("[fabrikam.com]", "[fabrikam.com, fabrikam.net]")
        .replace("adfs/services/trust", "adfs/services/trust2")
        .replace("preferredAuthenticationProtocol: saml", "preferredAuthenticationProtocol: wsFed");
    let d2 = load(&[TENANT_YAML, &changed]).unwrap();
    let p = plan(&g.routes, &d2, Prune::Off).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Update)]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    let s = idp_provider(&g.world, key).unwrap().saml.unwrap();
    assert_eq!(s.domains.iter().map(String::as_str).collect::<Vec<_>>(), ["fabrikam.com", "fabrikam.net"]);
    assert_eq!(s.issuer_uri, "https://sts.fabrikam.com/adfs/services/trust2");
    assert_eq!(s.preferred_authentication_protocol, entente::core::identity::AuthenticationProtocol::WsFed);
    assert!(!plan(&g.routes, &d2, Prune::Off).await.has_writes());

    // Removing a domain has no Graph v1.0 API: NotImplemented saying so, nothing half-written.
    let p = plan(&g.routes, &d, Prune::Off).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Update)]);
    let f = failures(&engine::apply(&p, &g.routes).await);
    assert!(f.iter().any(|m| m.starts_with("NotImplemented") && m.contains("cannot remove a domain")), "{f:?}");
    assert_eq!(idp_provider(&g.world, key).unwrap().saml.unwrap().domains.len(), 2);

    // Deleted when pruned; then a federation made outside entente for the same domain is adopted, not created.
    let none = load(&[TENANT_YAML]).unwrap();
    let p = plan(&g.routes, &none, Prune::All).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Delete)]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert!(idp_provider(&g.world, key).is_none());
    let outside = entente::core::identity::IdentityProviderConfig {
        key: key.into(),
        provider_type: entente::core::identity::IdentityProviderType::SamlWsFed,
        display_name: "fabrikam.com".into(),
        client_id: None,
        client_secret: None,
        client_secret_hash: None,
        saml: load(&[TENANT_YAML, SAML]).unwrap().tenants[0].identity_providers[0].saml.clone(),
        state: ProviderState::Enabled,
    };
    g.world.apply(TENANT, &[Operation::PutIdentityProvider { provider: outside, existing_id: None }]).await.unwrap();
    let p = plan(&g.routes, &d, Prune::Off).await;
    let c = p.changes.iter().find(|c| c.object.name == "fabrikam-saml").unwrap();
    assert_eq!(c.action, Action::Adopt, "{c:#?}");
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert!(!plan(&g.routes, &d, Prune::Off).await.has_writes());

    // Disabling a federation or a social provider has no Graph v1.0 API: the plan says so, apply fails so.
    let off = load(&[TENANT_YAML, &format!("{SAML}  state: disabled\n")]).unwrap();
    let p = plan(&g.routes, &off, Prune::Off).await;
    let note = p.changes.iter().find(|c| c.object.name == "fabrikam-saml").unwrap().note.clone().unwrap_or_default();
    assert!(note.contains("Graph v1.0 has no enabled/disabled state"), "{note}");
    let f = failures(&engine::apply(&p, &g.routes).await);
    assert!(f.iter().any(|m| m.starts_with("NotImplemented") && m.contains("take it off the sign-up flows")), "{f:?}");

    idp_assert_contract_kept(&g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_rejects_malformed_email_otp_and_federation_bodies_per_the_contract() {
    use reqwest::{Method, StatusCode};
    use serde_json::json;
    let g = graph().await;
    let token = idp_token(&g, &["IdentityProvider.ReadWrite.All", "Policy.ReadWrite.AuthenticationMethod"]).await;
    let email = "/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/email";
    let create = "/directory/federationConfigurations/microsoft.graph.samlOrWsFedExternalDomainFederation";
    let federation = json!({
        "@odata.type": "#microsoft.graph.samlOrWsFedExternalDomainFederation",
        "displayName": "Fabrikam",
        "issuerUri": "https://sts.fabrikam.com/adfs/services/trust",
        "passiveSignInUri": "https://sts.fabrikam.com/adfs/ls",
        "preferredAuthenticationProtocol": "saml",
        "signingCertificate": "MIIDADCCAeigAwIBAgIQ",
        "domains": [{ "id": "fabrikam.com" }],
    });
    let mut bad_domains = federation.clone();
    bad_domains["domains"] = json!(["fabrikam.com"]);
    let mut bad_protocol = federation.clone();
    bad_protocol["preferredAuthenticationProtocol"] = json!("oauth");
    let bad = [
        (Method::PATCH, email, json!({ "allowExternalIdToUseEmailOtp": "enabled" }), "@odata.type"),
        (
            Method::PATCH,
            email,
            json!({ "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration", "allowExternalIdToUseEmailOtp": "sometimes" }),
            "allowExternalIdToUseEmailOtp",
        ),
        (Method::POST, create, bad_domains, "/domains/0"),
        (Method::POST, create, bad_protocol, "preferredAuthenticationProtocol"),
    ];
    for (method, path, body, _) in &bad {
        assert_eq!(idp_call(&g, &token, method.clone(), path, body.clone()).await, StatusCode::BAD_REQUEST, "{body}");
    }
    // Nothing was written.
    let s = g.world.identity_state(TENANT).unwrap();
    assert!(s.providers.is_empty(), "{s:?}");
    // Each is a request the contract refuses, and only those: the emulator answered within it.
    let report = g.emulator.contract_report();
    assert_eq!(report.violations.len(), bad.len(), "{:#?}", report.violations);
    for (v, (_, _, _, what)) in report.violations.iter().zip(&bad) {
        assert_eq!(v.direction, "request", "{v:#?}");
        assert!(v.findings.iter().any(|f| f.contains(what)), "{what}: {v:#?}");
    }
    // The well-formed ones pass.
    assert_eq!(idp_call(&g, &token, Method::POST, create, federation).await, StatusCode::CREATED);
    let on = json!({ "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration", "allowExternalIdToUseEmailOtp": "enabled" });
    assert_eq!(idp_call(&g, &token, Method::PATCH, email, on).await, StatusCode::NO_CONTENT);
    assert_eq!(g.emulator.contract_report().violations.len(), bad.len());
    assert_eq!(g.world.identity_state(TENANT).unwrap().providers.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_offers_a_federation_read_back_by_its_domain_through_graph() {
    let g = graph().await;
    let d = load(&[TENANT_YAML, SAML, &flow(&["fabrikam-saml"], "")]).unwrap();
    let p = plan(&g.routes, &d, Prune::Off).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Create), ("partners".to_string(), Action::Create)]);
    let report = engine::apply(&p, &g.routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    g.world.can_sign_up(TENANT, "B2X_1_partners", "SamlWsFed:fabrikam.com").unwrap();
    // The flow's provider is read back under the federation's domain key: nothing to do.
    let again = plan(&g.routes, &d, Prune::Off).await;
    assert!(!again.has_writes(), "{:#?}", actions(&again));
    // R17 through Graph: the federation cannot be deleted while the flow offers it.
    let id = idp_provider(&g.world, "SamlWsFed:fabrikam.com").unwrap().id;
    let del = [Operation::DeleteIdentityProvider { key: "SamlWsFed:fabrikam.com".into(), id }];
    match g.routes[TENANT].as_ref().unwrap().apply(TENANT, &del).await {
        Err(DirectoryError::Refused(r)) => assert_eq!(r.reason, RefusalReason::SignUpProviderUnavailable),
        other => panic!("expected a refusal, got {other:?}"),
    }
    idp_assert_contract_kept(&g);
}

// ------------------------------------------------------------------------------------------------
// A federation is the same federation when its first domain changes; email one-time passcode's name

/// A federation of `SAML` with these domains instead of fabrikam.com alone.
fn saml_with(domains: &str) -> String {
    SAML.replace("[fabrikam.com]", domains)
}

/// The keys of the tenant's identity provider records.
async fn idp_record_keys(dir: &dyn Directory) -> Vec<String> {
    let s = dir.snapshot(TENANT).await.unwrap().unwrap();
    s.managed.iter().filter(|r| r.kind == entente::core::model::Kind::IdentityProvider).map(|r| r.key.clone()).collect()
}

fn federations(world: &LocalDirectory) -> Vec<entente::core::identity::ObservedIdentityProvider> {
    let s = world.identity_state(TENANT).unwrap();
    s.providers.into_iter().filter(|p| p.saml.is_some()).collect()
}

fn fabrikam_change(p: &Plan) -> &entente::core::plan::Change {
    p.changes.iter().find(|c| c.object.name == "fabrikam-saml").expect("a change of fabrikam-saml")
}

#[tokio::test]
async fn a_domain_added_before_the_first_updates_the_same_federation_on_the_local_directory() {
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let routes = local_routes(&dir);
    let d1 = load(&[TENANT_YAML, SAML, &flow(&["fabrikam-saml"], "")]).unwrap();
    assert!(failures(&engine::apply(&plan(&routes, &d1, Prune::All).await, &routes).await).is_empty());
    let id = idp_provider(&dir, "SamlWsFed:fabrikam.com").unwrap().id;

    // aaa-fabrikam.com sorts before fabrikam.com: the key changes, the federation does not. With --prune, still
    // one update of the same federation: no second federation, no deletion of the live one.
    let d2 = load(&[TENANT_YAML, &saml_with("[aaa-fabrikam.com, fabrikam.com]"), &flow(&["fabrikam-saml"], "")]).unwrap();
    let p = plan(&routes, &d2, Prune::All).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Update)], "{:#?}", p.changes);
    let c = fabrikam_change(&p);
    // The default display name is the first domain, so it follows.
    assert_eq!(c.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["displayName", "saml.domains"]);
    assert_eq!(c.diff[1].to, Some(serde_json::json!(["aaa-fabrikam.com", "fabrikam.com"])));
    let note = c.note.clone().unwrap_or_default();
    assert!(note.contains("adds domain(s) aaa-fabrikam.com"), "{note}");
    assert!(note.contains("from SamlWsFed:fabrikam.com to SamlWsFed:aaa-fabrikam.com"), "{note}");
    assert!(c.ops.iter().any(|o| matches!(o, Operation::PutIdentityProvider { existing_id: Some(e), .. } if *e == id)));
    assert!(c.ops.contains(&Operation::Forget {
        kind: entente::core::model::Kind::IdentityProvider,
        key: "SamlWsFed:fabrikam.com".into()
    }));
    let report = engine::apply(&p, &routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    let fs = federations(&dir);
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!((fs[0].id.as_str(), fs[0].key.as_str()), (id.as_str(), "SamlWsFed:aaa-fabrikam.com"));
    assert_eq!(idp_record_keys(dir.as_ref()).await, ["SamlWsFed:aaa-fabrikam.com"]);
    dir.can_sign_up(TENANT, "B2X_1_partners", "SamlWsFed:aaa-fabrikam.com").unwrap();
    let again = plan(&routes, &d2, Prune::All).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);

    // Removing the first domain again: the local directory can, so it is the same update the other way.
    let p = plan(&routes, &d1, Prune::All).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Update)], "{:#?}", p.changes);
    let note = fabrikam_change(&p).note.clone().unwrap_or_default();
    assert!(note.contains("removes domain(s) aaa-fabrikam.com") && !note.contains("fails"), "{note}");
    assert!(failures(&engine::apply(&p, &routes).await).is_empty());
    let fs = federations(&dir);
    assert_eq!((fs.len(), fs[0].id.as_str(), fs[0].key.as_str()), (1, id.as_str(), "SamlWsFed:fabrikam.com"));
    assert_eq!(idp_record_keys(dir.as_ref()).await, ["SamlWsFed:fabrikam.com"]);
    assert!(!plan(&routes, &d1, Prune::All).await.has_writes());

    // The domain added outside entente first: the directory already matches, only the record moves.
    let mut outside = idp_provider(&dir, "SamlWsFed:fabrikam.com").unwrap();
    outside.saml.as_mut().unwrap().domains.insert("aaa-fabrikam.com".into());
    let config = entente::core::identity::IdentityProviderConfig {
        key: "SamlWsFed:aaa-fabrikam.com".into(),
        provider_type: outside.provider_type,
        display_name: "aaa-fabrikam.com".into(),
        client_id: None,
        client_secret: None,
        client_secret_hash: None,
        saml: outside.saml.clone(),
        state: ProviderState::Enabled,
    };
    dir.apply(TENANT, &[Operation::PutIdentityProvider { provider: config, existing_id: Some(id.clone()) }]).await.unwrap();
    let p = plan(&routes, &d2, Prune::All).await;
    let c = fabrikam_change(&p);
    assert_eq!((c.action, c.diff.len()), (Action::Update, 0), "{c:#?}");
    assert!(c.ops.iter().all(|o| matches!(o, Operation::Forget { .. } | Operation::Record { .. })), "{:?}", c.ops);
    assert!(!p.changes.iter().any(|c| c.action == Action::Delete));
    assert!(failures(&engine::apply(&p, &routes).await).is_empty());
    assert_eq!(idp_record_keys(dir.as_ref()).await, ["SamlWsFed:aaa-fabrikam.com"]);
    assert!(!plan(&routes, &d2, Prune::All).await.has_writes());
    assert_eq!(federations(&dir).len(), 1);

    // Deleted when no longer wanted: the flow, then the federation under its current key.
    let none = load(&[TENANT_YAML]).unwrap();
    let p = plan(&routes, &none, Prune::All).await;
    let deletes: Vec<String> = p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.object.name.clone()).collect();
    assert_eq!(deletes, ["partners", "fabrikam-saml"]);
    assert!(failures(&engine::apply(&p, &routes).await).is_empty());
    assert!(federations(&dir).is_empty());
    assert!(idp_record_keys(dir.as_ref()).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_added_before_the_first_updates_the_same_federation_through_graph() {
    let g = graph().await;
    let graph_dir = g.routes[TENANT].as_ref().unwrap().clone();
    // Named, so only the domains change.
    let named = |domains: &str| format!("{}  displayName: Fabrikam\n", saml_with(domains));
    let d1 = load(&[TENANT_YAML, &named("[fabrikam.com]"), &flow(&["fabrikam-saml"], "")]).unwrap();
    assert!(failures(&engine::apply(&plan(&g.routes, &d1, Prune::All).await, &g.routes).await).is_empty());
    let id = idp_provider(&g.world, "SamlWsFed:fabrikam.com").unwrap().id;

    let d2 = load(&[TENANT_YAML, &named("[fabrikam.com, aaa-fabrikam.com]"), &flow(&["fabrikam-saml"], "")]).unwrap();
    let p = plan(&g.routes, &d2, Prune::All).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Update)], "{:#?}", p.changes);
    let c = fabrikam_change(&p);
    assert_eq!(c.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["saml.domains"]);
    assert!(c.note.as_deref().unwrap_or_default().contains("adds domain(s) aaa-fabrikam.com"), "{:?}", c.note);
    let report = engine::apply(&p, &g.routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    // Exactly one federation, its id unchanged, under its new key; the flow still offers it; the record moved.
    let fs = federations(&g.world);
    assert_eq!(fs.len(), 1, "{fs:?}");
    assert_eq!((fs[0].id.as_str(), fs[0].key.as_str()), (id.as_str(), "SamlWsFed:aaa-fabrikam.com"));
    g.world.can_sign_up(TENANT, "B2X_1_partners", "SamlWsFed:aaa-fabrikam.com").unwrap();
    assert_eq!(idp_record_keys(graph_dir.as_ref()).await, ["SamlWsFed:aaa-fabrikam.com"]);
    let again = plan(&g.routes, &d2, Prune::All).await;
    assert!(!again.has_writes(), "{:#?}", again.changes);

    // Removing that domain again has no Graph v1.0 API: the plan says so, updates (never deletes or creates),
    // and applying fails NotImplemented with nothing changed.
    let p = plan(&g.routes, &d1, Prune::All).await;
    assert_eq!(idp_writes(&p), [("fabrikam-saml".to_string(), Action::Update)], "{:#?}", p.changes);
    let note = fabrikam_change(&p).note.clone().unwrap_or_default();
    assert!(note.contains("removes domain(s) aaa-fabrikam.com: Graph v1.0 cannot remove a domain"), "{note}");
    let f = failures(&engine::apply(&p, &g.routes).await);
    assert!(f.iter().any(|m| m.starts_with("NotImplemented") && m.contains("cannot remove a domain")), "{f:?}");
    let fs = federations(&g.world);
    assert_eq!((fs.len(), fs[0].id.as_str(), fs[0].saml.as_ref().unwrap().domains.len()), (1, id.as_str(), 2));
    assert_eq!(idp_record_keys(graph_dir.as_ref()).await, ["SamlWsFed:aaa-fabrikam.com"]);

    // Deleted when no longer wanted, under its current key (the flow first, R17).
    let none = load(&[TENANT_YAML]).unwrap();
    let p = plan(&g.routes, &none, Prune::All).await;
    let deletes: Vec<String> = p.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.object.name.clone()).collect();
    assert_eq!(deletes, ["partners", "fabrikam-saml"]);
    assert!(failures(&engine::apply(&p, &g.routes).await).is_empty());
    assert!(federations(&g.world).is_empty());
    assert!(!plan(&g.routes, &none, Prune::All).await.has_writes());
    idp_assert_contract_kept(&g);
}

#[tokio::test]
async fn two_federations_sharing_a_domain_are_an_error_naming_both_and_the_domain() {
    // In the manifests.
    let other =
        SAML.replace("name: fabrikam-saml", "name: fabrikam-eu").replace("[fabrikam.com]", "[eu.fabrikam.com, fabrikam.com]");
    let e = load(&[TENANT_YAML, SAML, &other]).unwrap_err();
    assert!(
        e.contains("IdentityProvider/default/fabrikam-eu: spec.domains: fabrikam.com is federated by both IdentityProvider/default/fabrikam-saml and IdentityProvider/default/fabrikam-eu"),
        "{e}"
    );

    // In a desired state built otherwise (the controller, an API): a plan error, and neither is written twice.
    let mut d = load(&[TENANT_YAML, SAML]).unwrap();
    let mut second = d.tenants[0].identity_providers[0].clone();
    second.object.name = "fabrikam-eu".into();
    second.saml.as_mut().unwrap().domains.insert("eu.fabrikam.com".into());
    d.tenants[0].identity_providers.push(second);
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let p = plan(&local_routes(&dir), &d, Prune::Off).await;
    let errors: Vec<String> = p.errors.iter().map(|e| format!("{}: {}", e.object, e.message)).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(
            "fabrikam.com is federated by both IdentityProvider/default/fabrikam-saml and IdentityProvider/default/fabrikam-eu"
        ),
        "{errors:?}"
    );
    assert!(!p.changes.iter().any(|c| c.object.name == "fabrikam-eu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_otp_takes_no_display_name_and_graphs_fixed_name_is_no_change() {
    // A name in the manifest is an error naming the field: Graph cannot rename the built-in provider.
    let named = OTP.replace("  type: EmailOneTimePasscode\n", "  type: EmailOneTimePasscode\n  displayName: Email code\n");
    let e = load(&[TENANT_YAML, &named]).unwrap_err();
    assert!(e.contains("IdentityProvider/default/email-otp: spec.displayName: the built-in email one-time passcode provider cannot be renamed"), "{e}");

    // Graph reads it back under its own fixed name: that is not a change, on any plan.
    let g = graph().await;
    let d = load(&[TENANT_YAML, OTP]).unwrap();
    assert!(failures(&engine::apply(&plan(&g.routes, &d, Prune::Off).await, &g.routes).await).is_empty());
    let mut p = idp_provider(&g.world, "EmailOneTimePasscode").unwrap();
    p.display_name = "Email One Time Passcode".into();
    let config = entente::core::identity::IdentityProviderConfig {
        key: p.key.clone(),
        provider_type: p.provider_type,
        display_name: p.display_name.clone(),
        client_id: None,
        client_secret: None,
        client_secret_hash: None,
        saml: None,
        state: ProviderState::Enabled,
    };
    g.world.apply(TENANT, &[Operation::PutIdentityProvider { provider: config, existing_id: Some(p.id.clone()) }]).await.unwrap();
    for _ in 0..2 {
        let again = plan(&g.routes, &d, Prune::Off).await;
        assert!(!again.has_writes(), "{:#?}", again.changes);
    }
    // Its state still is compared.
    g.world.set_identity_provider_state(TENANT, "EmailOneTimePasscode", ProviderState::Disabled).unwrap();
    let c = plan(&g.routes, &d, Prune::Off).await;
    let c = c.changes.iter().find(|c| c.object.name == "email-otp").unwrap();
    assert_eq!((c.action, c.diff.iter().map(|f| f.path.as_str()).collect::<Vec<_>>()), (Action::Update, vec!["state"]));
    idp_assert_contract_kept(&g);
}

/// One federation split in two (`[fabrikam.com, zz.fabrikam.com]` becoming `[fabrikam.com]` and
/// `[zz.fabrikam.com]`): the local directory can remove a domain, so the update runs before the creation that
/// takes it; Graph v1.0 cannot, so the plan refuses the new federation up front, naming the domain, the
/// federation holding it and the object that keeps it (its create would conflict on the domain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_split_in_two_is_ordered_locally_and_refused_up_front_on_graph() {
    let zz = SAML.replace("name: fabrikam-saml", "name: eu-federation").replace("[fabrikam.com]", "[zz.fabrikam.com]");
    let whole = load(&[TENANT_YAML, &saml_with("[fabrikam.com, zz.fabrikam.com]")]).unwrap();
    // The new federation sorts first (by name): the order of the plan must not depend on it.
    let split = load(&[TENANT_YAML, &zz, SAML]).unwrap();

    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    let routes = local_routes(&dir);
    assert!(failures(&engine::apply(&plan(&routes, &whole, Prune::All).await, &routes).await).is_empty());
    let p = plan(&routes, &split, Prune::All).await;
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(
        idp_writes(&p),
        [("fabrikam-saml".to_string(), Action::Update), ("eu-federation".to_string(), Action::Create)],
        "{:#?}",
        p.changes
    );
    let report = engine::apply(&p, &routes).await;
    assert!(failures(&report).is_empty(), "{:?}", failures(&report));
    assert_eq!(federations(&dir).len(), 2);
    assert!(!plan(&routes, &split, Prune::All).await.has_writes());

    let g = graph().await;
    assert!(failures(&engine::apply(&plan(&g.routes, &whole, Prune::All).await, &g.routes).await).is_empty());
    let id = idp_provider(&g.world, "SamlWsFed:fabrikam.com").unwrap().id;
    let p = plan(&g.routes, &split, Prune::All).await;
    let errors: Vec<String> = p.errors.iter().map(|e| format!("{}: {}", e.object, e.message)).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "IdentityProvider/default/eu-federation: spec.domains: zz.fabrikam.com is in the directory's federation {id} \
             (continued by IdentityProvider/default/fabrikam-saml)"
        )),
        "{errors:?}"
    );
    assert!(!p.changes.iter().any(|c| c.object.name == "eu-federation"), "{:#?}", p.changes);
    idp_assert_contract_kept(&g);
}
