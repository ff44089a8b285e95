//! Shared by the emulator tests: two tenants in one directory, an app per tenant holding every
//! permission, an emulator over them (strict contract checking on), and a small HTTP client.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use entente::core::model::{Cloud, TenantIdentity};
use entente::core::operation::Operation;
use entente::directory::Directory;
use entente::directory::local::LocalDirectory;
use entente::emulator::apps::{self, NewApp};
use entente::emulator::{self, EmulatorConfig, EmulatorHandle};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const CONTOSO: &str = "6f1c7a52-3d4b-4e8a-9f21-0c5d8e7b1a01";
pub const FABRIKAM: &str = "9a3e5b17-2c4d-4f6e-8a1b-7d9c0e2f3b02";

pub const ALL_PERMISSIONS: &[&str] = &[
    "User.ReadWrite.All",
    "User.Invite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Organization.Read.All",
    "Policy.Read.All",
    "Policy.ReadWrite.CrossTenantAccess",
    "Policy.ReadWrite.Authorization",
    "Policy.ReadWrite.B2BManagementPolicy",
];

/// One signing key per test binary: RSA key generation is slow.
pub fn signing_key() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| emulator::jwt::SigningKey::generate().unwrap().to_pem().unwrap()).clone()
}

pub fn identity(id: &str, name: &str) -> TenantIdentity {
    TenantIdentity {
        tenant_id: id.into(),
        initial_domain: format!("{name}.onmicrosoft.com"),
        display_name: name.into(),
        cloud: Cloud::Global,
        verified_domains: BTreeSet::from([format!("{name}.com")]),
    }
}

/// contoso and fabrikam in one in-memory directory.
pub async fn directory() -> Arc<LocalDirectory> {
    let dir = Arc::new(LocalDirectory::open_in_memory().unwrap());
    for (id, name) in [(CONTOSO, "contoso"), (FABRIKAM, "fabrikam")] {
        dir.apply(id, &[Operation::CreateTenant { identity: identity(id, name) }]).await.unwrap();
    }
    dir
}

/// The default test configuration: strict contract checking, unknown properties reported.
pub fn config() -> EmulatorConfig {
    let mut c = EmulatorConfig { signing_key_pem: Some(signing_key()), ..EmulatorConfig::default() };
    c.contract.strict = true;
    c
}

pub struct Env {
    pub dir: Arc<LocalDirectory>,
    pub emu: EmulatorHandle,
    pub http: reqwest::Client,
    pub contoso: NewApp,
    pub fabrikam: NewApp,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// `error.code` of an OData error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

pub async fn env() -> Env {
    env_with(config()).await
}

pub async fn env_with(config: EmulatorConfig) -> Env {
    let dir = directory().await;
    let perms: Vec<String> = ALL_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let contoso = apps::create_app(&dir, CONTOSO, "entente", &perms).unwrap();
    let fabrikam = apps::create_app(&dir, "fabrikam.onmicrosoft.com", "entente", &perms).unwrap();
    let emu = emulator::start(dir.clone(), config).await.unwrap();
    Env { dir, emu, http: reqwest::Client::new(), contoso, fabrikam }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.url())
    }

    /// A token from the token endpoint (client secret in the form).
    pub async fn token(&self, app: &NewApp) -> String {
        let r = self.token_request(&app.tenant_id, &[("client_id", &app.client_id), ("client_secret", &app.client_secret)]).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn token_request(&self, tenant: &str, fields: &[(&str, &str)]) -> Resp {
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")];
        form.extend_from_slice(fields);
        let resp = self.http.post(self.url(&format!("/{tenant}/oauth2/v2.0/token"))).form(&form).send().await.unwrap();
        read(resp).await
    }

    pub async fn call(&self, method: Method, token: Option<&str>, path: &str, body: Option<Value>) -> Resp {
        self.call_with(method, token, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = if path.starts_with("http") { path.to_string() } else { self.url(path) };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, token: &str, path: &str) -> Resp {
        self.call(Method::GET, Some(token), path, None).await
    }
    pub async fn post(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::POST, Some(token), path, Some(body)).await
    }
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, Some(token), path, Some(body)).await
    }
    pub async fn put(&self, token: &str, path: &str, body: Value) -> Resp {
        self.call(Method::PUT, Some(token), path, Some(body)).await
    }
    pub async fn delete(&self, token: &str, path: &str) -> Resp {
        self.call(Method::DELETE, Some(token), path, None).await
    }

    /// Invites `email` into the app's tenant; the 201 body.
    pub async fn invite(&self, token: &str, email: &str) -> Resp {
        self.post(
            token,
            "/v1.0/invitations",
            serde_json::json!({ "invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.microsoft.com" }),
        )
        .await
    }

    /// No contract violation so far.
    pub fn assert_contract_clean(&self) {
        let report = self.emu.contract_report();
        assert!(report.enabled);
        assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
    }
}

pub async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, body, text }
}

/// The emulator over `world` with strict contract checking (no unknown properties either), and one
/// `GraphDirectory` per tenant, signed in as an app granted entente's permissions
/// (`directory::graph::APPLY_PERMISSIONS`), sharing an inventory in `inventory`.
pub async fn graph_over_emulator(
    world: &Arc<LocalDirectory>,
    tenants: &[&str],
    inventory: &std::path::Path,
) -> (EmulatorHandle, entente::engine::Routes) {
    use entente::directory::graph::{Credential, GraphConfig, GraphDirectory};
    let mut config = EmulatorConfig { signing_key_pem: Some(signing_key()), ..EmulatorConfig::default() };
    config.contract.strict = true;
    config.contract.allow_unknown_properties = false;
    let handle = emulator::start(world.clone(), config).await.unwrap();
    let inventory = Arc::new(entente::directory::inventory::SqliteInventory::open(inventory).unwrap());
    let permissions: Vec<String> = entente::directory::graph::APPLY_PERMISSIONS.iter().map(|p| p.to_string()).collect();
    let mut routes = entente::engine::Routes::new();
    for tenant in tenants {
        let app = apps::create_app(world, tenant, "entente", &permissions).unwrap();
        let mut config = GraphConfig::new(tenant, &app.client_id, Credential::ClientSecret(app.client_secret)).for_tests();
        config.authority_host = handle.url();
        config.graph_endpoint = handle.url();
        let dir = GraphDirectory::new(config, inventory.clone()).unwrap();
        routes.insert(tenant.to_string(), Ok(Arc::new(dir) as Arc<dyn Directory>));
    }
    (handle, routes)
}

/// Fails the test when the emulator saw a request or answer outside the contract.
pub fn assert_contract_kept(handle: &EmulatorHandle) {
    let report = handle.contract_report();
    assert!(report.violations.is_empty(), "contract violations: {:#?}", report.violations);
}
