//! The emulator's Entra side and Graph's security model: token issuance and rejection, OIDC
//! discovery and JWKS, workload identity federation, 401 for missing/expired/foreign tokens, 403 for
//! missing permissions, and tenant isolation (a token of one tenant never reaches another).

mod emulator_support;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use emulator_support::*;
use entente::emulator::apps::{self, FederatedCredential};
use entente::emulator::jwt::SigningKey;
use entente::emulator::{self, EmulatorConfig, JwksSource, TrustedIssuer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn discovery_jwks_and_a_client_secret_token() {
    let env = env().await;
    let doc = env.call(Method::GET, None, "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let issuer = format!("{}/{CONTOSO}/v2.0", env.emu.url());
    assert_eq!(doc.body["issuer"], issuer);
    assert_eq!(doc.body["token_endpoint"], format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.url()));
    let jwks_uri = doc.body["jwks_uri"].as_str().unwrap().to_string();
    let jwks = env.call(Method::GET, None, &jwks_uri, None).await;
    assert_eq!(jwks.body["keys"][0]["kty"], "RSA");
    assert_eq!(jwks.body["keys"][0]["alg"], "RS256");

    let r =
        env.token_request(CONTOSO, &[("client_id", &env.contoso.client_id), ("client_secret", &env.contoso.client_secret)]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3599);
    let token = r.body["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["tid"], CONTOSO);
    assert_eq!(c["appid"], env.contoso.client_id);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["iss"], issuer);
    assert!(c["exp"].as_i64().unwrap() > c["iat"].as_i64().unwrap());
    let roles: Vec<&str> = c["roles"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(roles.contains(&"User.Invite.All") && roles.contains(&"Policy.ReadWrite.CrossTenantAccess"));
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], jwks.body["keys"][0]["kid"]);

    // HTTP Basic works too, and the tenant may be named by a domain.
    let basic = STANDARD.encode(format!("{}:{}", env.contoso.client_id, env.contoso.client_secret));
    let resp = env
        .http
        .post(env.url("/contoso.com/oauth2/v2.0/token"))
        .header("Authorization", format!("Basic {basic}"))
        .form(&[("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    env.assert_contract_clean();
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_requests_with_entra_errors() {
    let env = env().await;
    let app = &env.contoso;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, &'a str, i64);
    let cases: Vec<Case> = vec![
        (
            CONTOSO,
            vec![("client_id", &app.client_id), ("client_secret", "wrong")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
        ),
        (
            CONTOSO,
            vec![("client_id", "00000000-0000-0000-0000-000000000000"), ("client_secret", "x")],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        // the fabrikam app is not registered in contoso
        (
            CONTOSO,
            vec![("client_id", &env.fabrikam.client_id), ("client_secret", &env.fabrikam.client_secret)],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            "nowhere.example",
            vec![("client_id", &app.client_id), ("client_secret", &app.client_secret)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
        ),
        (CONTOSO, vec![("client_id", &app.client_id)], StatusCode::BAD_REQUEST, "invalid_request", 7000218),
    ];
    for (tenant, fields, status, error, code) in cases {
        let r = env.token_request(tenant, &fields).await;
        assert_eq!(r.status, status, "{fields:?}: {:?}", r.body);
        assert_eq!(r.body["error"], error);
        assert_eq!(r.body["error_codes"][0], code);
        assert!(r.body["error_description"].as_str().unwrap().starts_with(&format!("AADSTS{code}:")));
    }
    let bad_scope = env
        .http
        .post(env.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://management.azure.com/.default"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ])
        .send()
        .await
        .unwrap();
    let r = read(bad_scope).await;
    assert_eq!((r.status, r.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
    env.assert_contract_clean();
}

#[tokio::test]
async fn graph_requests_need_a_valid_unexpired_token() {
    let env = env().await;
    let missing = env.call(Method::GET, None, "/v1.0/users", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "InvalidAuthenticationToken");
    assert!(missing.header("WWW-Authenticate").unwrap().starts_with("Bearer"));
    assert!(missing.body["error"]["innerError"]["request-id"].is_string());

    let garbage = env.get("not.a.jwt", "/v1.0/users").await;
    assert_eq!((garbage.status, garbage.code()), (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"));

    let expired = env.emu.mint_token(CONTOSO, &env.contoso.client_id, &["User.Read.All"], -60);
    let r = env.get(&expired, "/v1.0/users").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("expired"));

    // signed by a key the emulator does not have
    let other = SigningKey::generate().unwrap();
    let now = chrono::Utc::now().timestamp();
    let forged = other.sign(&json!({"aud": "https://graph.microsoft.com", "tid": CONTOSO, "appid": "x", "roles": ["User.Read.All"], "exp": now + 600}));
    assert_eq!(env.get(&forged, "/v1.0/users").await.status, StatusCode::UNAUTHORIZED);

    // a tenant the directory does not have
    let ghost = env.emu.mint_token("00000000-0000-0000-0000-0000000000aa", &env.contoso.client_id, &["User.Read.All"], 600);
    assert_eq!(env.get(&ghost, "/v1.0/users").await.status, StatusCode::UNAUTHORIZED);

    let good = env.token(&env.contoso).await;
    assert_eq!(env.get(&good, "/v1.0/users").await.status, StatusCode::OK);
    env.assert_contract_clean();
}

#[tokio::test]
async fn a_token_of_one_tenant_never_reads_or_writes_another() {
    let env = env().await;
    let contoso = env.token(&env.contoso).await;
    let fabrikam = env.token(&env.fabrikam).await;
    let invited = env.invite(&contoso, "alice@adatum.com").await;
    assert_eq!(invited.status, StatusCode::CREATED);
    let alice = invited.body["invitedUser"]["id"].as_str().unwrap().to_string();

    // fabrikam's token sees fabrikam: no alice, and alice's id does not resolve
    let list = env.get(&fabrikam, "/v1.0/users?$select=id,mail").await;
    assert!(list.body["value"].as_array().unwrap().iter().all(|u| u["id"] != alice.as_str()));
    assert_eq!(env.get(&fabrikam, &format!("/v1.0/users/{alice}")).await.status, StatusCode::NOT_FOUND);
    let patch = env.patch(&fabrikam, &format!("/v1.0/users/{alice}"), json!({ "displayName": "Mallory" })).await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    assert_eq!(env.delete(&fabrikam, &format!("/v1.0/users/{alice}")).await.status, StatusCode::NOT_FOUND);
    let user = env.dir.user_by_mail(CONTOSO, "alice@adatum.com").unwrap().unwrap();
    assert_eq!(user.display_name, None, "untouched");

    // writes with fabrikam's token land in fabrikam only
    let r = env.patch(&fabrikam, "/v1.0/policies/authorizationPolicy", json!({ "allowInvitesFrom": "none" })).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(env.dir.tenant_policy(FABRIKAM).unwrap().collaboration.allow_invites_from.as_str(), "none");
    assert_eq!(env.dir.tenant_policy(CONTOSO).unwrap().collaboration.allow_invites_from.as_str(), "everyone");
    let partner = env.post(&fabrikam, "/v1.0/policies/crossTenantAccessPolicy/partners", json!({ "tenantId": CONTOSO })).await;
    assert_eq!(partner.status, StatusCode::CREATED);
    assert!(env.dir.partners(CONTOSO).unwrap().is_empty());
    assert_eq!(
        env.get(&contoso, &format!("/v1.0/policies/crossTenantAccessPolicy/partners/{CONTOSO}")).await.status,
        StatusCode::NOT_FOUND
    );

    // a token minted for another tenant with contoso's app id is still fabrikam's
    let minted = env.emu.mint_token(FABRIKAM, &env.contoso.client_id, &["User.Read.All"], 600);
    let seen = env.get(&minted, &format!("/v1.0/users/{alice}")).await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND);
    env.assert_contract_clean();
}

#[tokio::test]
async fn operations_need_a_granted_permission() {
    let env = env().await;
    let reader = apps::create_app(&env.dir, CONTOSO, "reader", &["User.Read.All".to_string()]).unwrap();
    let token = env.token(&reader).await;
    assert_eq!(env.get(&token, "/v1.0/users").await.status, StatusCode::OK);
    let denied = env.invite(&token, "bob@adatum.com").await;
    assert_eq!((denied.status, denied.code()), (StatusCode::FORBIDDEN, "Authorization_RequestDenied"));
    assert!(denied.body["error"]["message"].as_str().unwrap().starts_with("Insufficient privileges to complete the operation."));
    assert!(env.dir.user_by_mail(CONTOSO, "bob@adatum.com").unwrap().is_none(), "nothing written");
    for (method, path, body) in [
        (Method::GET, "/v1.0/policies/crossTenantAccessPolicy/default", None),
        (Method::PATCH, "/v1.0/policies/authorizationPolicy", Some(json!({ "allowInvitesFrom": "none" }))),
        (
            Method::POST,
            "/v1.0/groups",
            Some(json!({ "displayName": "g", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true })),
        ),
        (Method::GET, "/beta/policies/b2bManagementPolicies", None),
    ] {
        let r = env.call(method.clone(), Some(&token), path, body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}");
    }

    // a higher-privileged alternative is accepted; a permission granted later needs a new token
    let admin = apps::create_app(&env.dir, CONTOSO, "admin", &["Directory.ReadWrite.All".to_string()]).unwrap();
    let admin_token = env.token(&admin).await;
    assert_eq!(env.invite(&admin_token, "bob@adatum.com").await.status, StatusCode::CREATED);
    apps::grant(&env.dir, &reader.client_id, &["Policy.Read.All".to_string()]).unwrap();
    assert_eq!(env.get(&token, "/v1.0/policies/crossTenantAccessPolicy/default").await.status, StatusCode::FORBIDDEN);
    let fresh = env.token(&reader).await;
    assert_eq!(env.get(&fresh, "/v1.0/policies/crossTenantAccessPolicy/default").await.status, StatusCode::OK);

    assert!(apps::create_app(&env.dir, CONTOSO, "typo", &["User.Invite.Al".to_string()]).is_err(), "unknown permission");
    env.assert_contract_clean();
}

#[tokio::test]
async fn workload_identity_federation_with_a_trusted_issuer() {
    let issuer = "https://oidc.cluster.example";
    let idp = SigningKey::generate().unwrap();
    let mut config = config();
    config.trusted_issuers =
        vec![TrustedIssuer { issuer: issuer.into(), jwks: JwksSource::Inline(json!({ "keys": [idp.jwk()] })) }];
    let env = env_with(config).await;
    let app = &env.contoso;
    let cred = FederatedCredential {
        name: "controller".into(),
        issuer: issuer.into(),
        subject: "system:serviceaccount:entente:controller".into(),
        audiences: vec![],
    };
    apps::add_federated_credential(&env.dir, &app.client_id, &cred).unwrap();
    let now = chrono::Utc::now().timestamp();
    let assertion = |key: &SigningKey, iss: &str, sub: &str, aud: &str, exp: i64| {
        key.sign(&json!({ "iss": iss, "sub": sub, "aud": [aud], "iat": now, "nbf": now, "exp": exp }))
    };
    let exchange = |a: String| {
        let env = &env;
        let client_id = app.client_id.clone();
        async move {
            env.token_request(
                CONTOSO,
                &[
                    ("client_id", &client_id),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", &a),
                ],
            )
            .await
        }
    };
    let sub = "system:serviceaccount:entente:controller";
    let aud = "api://AzureADTokenExchange";
    let ok = exchange(assertion(&idp, issuer, sub, aud, now + 600)).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let token = ok.body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["appidacr"], "2");
    assert_eq!(env.get(token, "/v1.0/users").await.status, StatusCode::OK);

    let stranger = SigningKey::generate().unwrap();
    for (a, code) in [
        (assertion(&idp, "https://elsewhere.example", sub, aud, now + 600), 700211),
        (assertion(&idp, issuer, "system:serviceaccount:default:other", aud, now + 600), 700213),
        (assertion(&idp, issuer, sub, "api://other", now + 600), 700212),
        (assertion(&stranger, issuer, sub, aud, now + 600), 50027),
        (assertion(&idp, issuer, sub, aud, now - 3600), 700024),
    ] {
        let r = exchange(a).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.body["error_codes"][0], code, "{:?}", r.body);
    }
    env.assert_contract_clean();
}

#[tokio::test]
async fn tokens_outlive_a_restart_and_remote_binds_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("directory.db");
    {
        let dir = entente::directory::local::LocalDirectory::open(&path).unwrap();
        use entente::directory::Directory;
        dir.apply(CONTOSO, &[entente::core::operation::Operation::CreateTenant { identity: identity(CONTOSO, "contoso") }])
            .await
            .unwrap();
    }
    let dir = std::sync::Arc::new(entente::directory::local::LocalDirectory::open(&path).unwrap());
    let app = apps::create_app(&dir, CONTOSO, "entente", &["User.Read.All".to_string()]).unwrap();
    let config = EmulatorConfig { signing_key_pem: Some(signing_key()), ..EmulatorConfig::default() };
    let first = emulator::start(dir.clone(), config.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/{CONTOSO}/oauth2/v2.0/token", first.url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    first.shutdown().await;
    // A new emulator over the same file, without the configured key: it uses the one stored in the file.
    let second = emulator::serve_file(&path, EmulatorConfig::default()).await.unwrap();
    let r = http.get(format!("{}/v1.0/users", second.url())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Not started on a non-loopback address without allow_remote (nothing is bound).
    let remote = EmulatorConfig { listen: "0.0.0.0:0".parse().unwrap(), ..config };
    let err = emulator::start(dir, remote).await.err().expect("refused");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
}
