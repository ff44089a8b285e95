//! The Entra side: the token endpoint (`POST /{tenant}/oauth2/v2.0/token`, client credentials with a
//! client secret — form or HTTP Basic — or a federated client assertion), OIDC discovery
//! (`/{tenant}/v2.0/.well-known/openid-configuration`), the signing keys (`/{tenant}/discovery/v2.0/keys`),
//! and the bearer-token check every Graph request goes through.
//!
//! Access tokens are RS256 JWTs shaped like Entra's app-only tokens for Graph: `aud`
//! `https://graph.microsoft.com`, `iss` `{emulator}/{tid}/v2.0`, `tid`, `appid`/`azp`, `roles` (the
//! app's granted application permissions at issuance), `idtyp: app`, `iat`/`nbf`/`exp`. Like Graph,
//! the permissions a request may use are those in its token: a new grant needs a new token.
//!
//! Token endpoint errors use Entra's body (`error`, `error_description` starting with the AADSTS code,
//! `error_codes`, `timestamp`, `trace_id`, `correlation_id`) and its codes: 90002 unknown tenant,
//! 700016 unknown app, 7000215 wrong secret, 7000222 expired secret, 70011 bad scope, 70003 bad
//! grant type, 700211/700212/700213 no federated credential matches the assertion's issuer, audience
//! or subject, 700024 assertion outside its validity, 50027 assertion malformed or badly signed.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::apps::{self, AppRecord, SecretCheck};
use super::config::JwksSource;
use super::errors::GraphError;
use super::jwt::{self, Unverified};
use super::router::GraphResponse;
use super::server::{Caller, State};

/// Audiences a Graph token may carry.
const GRAPH_AUDIENCES: [&str; 3] =
    ["https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000"];
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Checks the `Authorization: Bearer` token of a Graph request.
pub(crate) async fn authenticate(state: &Arc<State>, headers: &HeaderMap) -> Result<Caller, GraphError> {
    let header = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().trim();
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
        _ => return Err(GraphError::unauthenticated("Access token is empty.")),
    };
    let t = Unverified::parse(token)
        .map_err(|e| GraphError::unauthenticated(format!("Access token validation failure. Invalid token: {e}.")))?;
    let keys: Vec<_> = state.keys.iter().map(|k| (k.kid().to_string(), k.public_key())).collect();
    t.verify(&keys).map_err(|e| GraphError::unauthenticated(format!("Access token validation failure. {e}.")))?;
    if !t.audiences().iter().any(|a| GRAPH_AUDIENCES.contains(&a.as_str())) {
        return Err(GraphError::unauthenticated("Access token validation failure. Invalid audience."));
    }
    let now = chrono::Utc::now().timestamp();
    let skew = state.config.clock_skew.as_secs() as i64;
    match t.num_claim("exp") {
        Some(exp) if exp + skew > now => {}
        Some(_) => return Err(GraphError::unauthenticated("Lifetime validation failed, the token is expired.")),
        None => return Err(GraphError::unauthenticated("Access token validation failure. The token has no expiry.")),
    }
    if t.num_claim("nbf").is_some_and(|nbf| nbf - skew > now) {
        return Err(GraphError::unauthenticated("Lifetime validation failed, the token is not yet valid."));
    }
    let tenant_id = t.str_claim("tid").unwrap_or_default().to_ascii_lowercase();
    let app_id = t.str_claim("appid").or_else(|| t.str_claim("azp")).unwrap_or_default().to_string();
    if tenant_id.is_empty() || app_id.is_empty() {
        return Err(GraphError::unauthenticated("Access token validation failure. The token has no tid or appid."));
    }
    let roles: Vec<String> = t
        .claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let dir = state.dir.clone();
    let tid = tenant_id.clone();
    let exists = tokio::task::spawn_blocking(move || dir.find_tenant(&tid).map(|t| t.is_some_and(|t| t.tenant_id == tid)))
        .await
        .map_err(|e| GraphError::internal(e.to_string()))?
        .map_err(GraphError::from)?;
    if !exists {
        return Err(GraphError::unauthenticated(format!(
            "Access token validation failure. Tenant '{tenant_id}' does not exist in this directory."
        )));
    }
    Ok(Caller { tenant_id, app_id, roles })
}

/// Signs an access token for an app (also used by tests through `EmulatorHandle::mint_token`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn sign_access_token(
    state: &State,
    base: &str,
    tenant_id: &str,
    client_id: &str,
    app_name: &str,
    roles: &[String],
    lifetime_secs: i64,
    appidacr: &str,
) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("{base}/{tenant_id}/v2.0"),
        "iat": now,
        "nbf": now.min(now + lifetime_secs),
        "exp": now + lifetime_secs,
        "app_displayname": app_name,
        "appid": client_id,
        "appidacr": appidacr,
        "azp": client_id,
        "azpacr": appidacr,
        "idtyp": "app",
        "oid": service_principal_id(client_id),
        "sub": service_principal_id(client_id),
        "roles": roles,
        "tid": tenant_id,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
        // v2 claims (`azp`, `azpacr`) with the v2 issuer of the metadata document: a v2.0 token.
        "ver": "2.0",
    });
    state.keys[0].sign(&claims)
}

/// The app's service principal id: stable per app.
fn service_principal_id(client_id: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("entente-emulator:sp:{client_id}").as_bytes()).to_string()
}

/// An Entra token endpoint error.
pub(crate) fn token_error_response(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
    request_id: &str,
) -> GraphResponse {
    let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    GraphResponse::json(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {request_id} Correlation ID: {request_id} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": request_id,
            "correlation_id": request_id,
            "error_uri": "https://login.microsoftonline.com/error?code=".to_string() + &code.to_string(),
        }),
    )
}

struct Failure {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

fn fail(status: StatusCode, error: &'static str, code: u32, description: impl Into<String>) -> Failure {
    Failure { status, error, code, description: description.into() }
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    state: &Arc<State>,
    tenant: &str,
    headers: &HeaderMap,
    body: &[u8],
    base: &str,
    request_id: &str,
) -> GraphResponse {
    match issue(state, tenant, headers, body, base).await {
        Ok(resp) => resp,
        Err(f) => token_error_response(f.status, f.error, f.code, &f.description, request_id),
    }
}

async fn issue(state: &Arc<State>, tenant: &str, headers: &HeaderMap, body: &[u8], base: &str) -> Result<GraphResponse, Failure> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
    let bad = |code: u32, d: String| fail(StatusCode::BAD_REQUEST, "invalid_request", code, d);

    let grant_type = field("grant_type")
        .ok_or_else(|| bad(900144, "The request body must contain the following parameter: 'grant_type'.".into()))?;
    if grant_type != "client_credentials" {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'. The emulator supports client_credentials."),
        ));
    }
    let basic = basic_credentials(headers);
    let client_id = field("client_id")
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or_else(|| bad(900144, "The request body must contain the following parameter: 'client_id'.".into()))?;
    let scope =
        field("scope").ok_or_else(|| bad(900144, "The request body must contain the following parameter: 'scope'.".into()))?;
    let graph_scope = scope.split_whitespace().all(|s| {
        let s = s.to_ascii_lowercase();
        s == "https://graph.microsoft.com/.default"
            || s == "https://graph.microsoft.com//.default"
            || s == "00000003-0000-0000-c000-000000000000/.default"
    });
    if !graph_scope {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter \
                 'scope' is not valid: '{scope}'. The emulator issues tokens for https://graph.microsoft.com/.default only."
            ),
        ));
    }

    let dir = state.dir.clone();
    let (tenant_q, client_q) = (tenant.to_string(), client_id.clone());
    let found = tokio::task::spawn_blocking(move || -> Result<Option<(String, Option<AppRecord>)>, String> {
        let Some(t) = dir.find_tenant(&tenant_q).map_err(|e| e.to_string())? else { return Ok(None) };
        let app = apps::app_in_tenant(&dir, &t.tenant_id, &client_q).map_err(|e| e.to_string())?;
        Ok(Some((t.tenant_id, app)))
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, e.to_string()))?
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, e))?;
    let Some((tenant_id, app)) = found else {
        return Err(bad(
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the \
                 correct cloud."
            ),
        ));
    };
    let Some(app) = app else {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. (emulator: \
                 `entente directory app create --tenant {tenant_id} ...` registers one)"
            ),
        ));
    };

    let secret = field("client_secret").or_else(|| basic.as_ref().map(|(_, s)| s.clone()));
    let assertion = field("client_assertion");
    let appidacr = match (secret, assertion) {
        (Some(secret), None) => {
            let dir = state.dir.clone();
            let id = app.client_id.clone();
            let check = tokio::task::spawn_blocking(move || apps::check_secret(&dir, &id, &secret))
                .await
                .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, e.to_string()))?
                .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000, e.to_string()))?;
            match check {
                SecretCheck::Valid => "1",
                SecretCheck::Expired => {
                    return Err(fail(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000222,
                        format!("The provided client secret keys for app '{}' are expired.", app.client_id),
                    ));
                }
                SecretCheck::Wrong | SecretCheck::NoSecrets => {
                    return Err(fail(
                        StatusCode::UNAUTHORIZED,
                        "invalid_client",
                        7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret \
                         value, not the client secret ID, for a secret added to app '"
                            .to_string()
                            + &app.client_id
                            + "'.",
                    ));
                }
            }
        }
        (None, Some(assertion)) => {
            let kind = field("client_assertion_type").unwrap_or_default();
            if kind != JWT_BEARER {
                return Err(bad(700025, format!("client_assertion_type must be '{JWT_BEARER}', not '{kind}'.")));
            }
            check_assertion(state, &app, &assertion, base).await?;
            "2"
        }
        (Some(_), Some(_)) => {
            return Err(bad(900023, "Only one client credential may be presented: client_secret or client_assertion.".into()));
        }
        (None, None) => {
            return Err(bad(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
            ));
        }
    };
    let lifetime = state.config.token_lifetime.as_secs() as i64;
    let token =
        sign_access_token(state, base, &tenant_id, &app.client_id, &app.display_name, &app.permissions, lifetime, appidacr);
    Ok(GraphResponse::ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    })))
}

/// Client id and secret sent as HTTP Basic (RFC 6749 §2.3.1: each URL-encoded).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |x: &str| form_urlencoded::parse(format!("x={x}").as_bytes()).next().map(|(_, v)| v.into_owned());
    Some((decode(id)?, decode(secret)?))
}

/// Workload identity federation: the assertion is another issuer's token whose issuer, subject and
/// audience match one of the app's federated credentials, signed by a key of that issuer.
async fn check_assertion(state: &Arc<State>, app: &AppRecord, assertion: &str, base: &str) -> Result<(), Failure> {
    let invalid = |code: u32, d: String| fail(StatusCode::BAD_REQUEST, "invalid_client", code, d);
    let t = Unverified::parse(assertion).map_err(|e| invalid(50027, format!("Invalid JWT token: {e}.")))?;
    let iss = t.str_claim("iss").unwrap_or_default().to_string();
    let sub = t.str_claim("sub").unwrap_or_default().to_string();
    let aud = t.audiences();
    if iss.starts_with(base) {
        return Err(invalid(700222, "Tokens issued by this identity provider are not accepted as federated assertions.".into()));
    }
    let by_issuer: Vec<_> = app.federated_credentials.iter().filter(|c| c.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(invalid(
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{iss}'."),
        ));
    }
    let by_subject: Vec<_> = by_issuer.into_iter().filter(|c| c.subject == sub).collect();
    if by_subject.is_empty() {
        return Err(invalid(
            700213,
            format!("No matching federated identity record found for presented assertion subject '{sub}'."),
        ));
    }
    if !by_subject.iter().any(|c| c.audiences.iter().any(|a| aud.contains(a))) {
        return Err(invalid(
            700212,
            format!("No matching federated identity record found for presented assertion audience '{}'.", aud.join(", ")),
        ));
    }
    let Some(trusted) = state.config.trusted_issuers.iter().find(|i| i.issuer == iss) else {
        return Err(invalid(
            700211,
            format!(
                "The emulator has no signing keys for issuer '{iss}'. (emulator: start it with --trust-issuer \
                 {iss}=<JWKS file>)"
            ),
        ));
    };
    let jwks = match &trusted.jwks {
        JwksSource::Inline(v) => v.clone(),
        JwksSource::File(path) => {
            let file = path.clone();
            let text = tokio::task::spawn_blocking(move || crate::files::read_regular_text(&file, 1 << 20))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|e| invalid(50027, format!("cannot read the JWKS of '{iss}' from {}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| invalid(50027, format!("the JWKS of '{iss}' is not JSON: {e}")))?
        }
    };
    let keys = jwt::jwks_keys(&jwks).map_err(|e| invalid(50027, format!("the JWKS of '{iss}': {e}")))?;
    t.verify(&keys).map_err(|e| invalid(50027, format!("Invalid JWT token: {e}.")))?;
    let now = chrono::Utc::now().timestamp();
    let skew = 300;
    let expired = t.num_claim("exp").is_none_or(|exp| exp + skew < now);
    let early = t.num_claim("nbf").is_some_and(|nbf| nbf - skew > now);
    if expired || early {
        return Err(invalid(700024, "Client assertion is not within its valid time range.".into()));
    }
    Ok(())
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) async fn discovery(state: &Arc<State>, tenant: &str, base: &str, request_id: &str) -> GraphResponse {
    let dir = state.dir.clone();
    let q = tenant.to_string();
    let found = tokio::task::spawn_blocking(move || dir.find_tenant(&q)).await.ok().and_then(Result::ok).flatten();
    let Some(t) = found else {
        return token_error_response(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
            request_id,
        );
    };
    let tid = t.tenant_id;
    GraphResponse::ok(json!({
        "issuer": format!("{base}/{tid}/v2.0"),
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["https://graph.microsoft.com/.default"],
        "claims_supported": ["aud", "iss", "iat", "nbf", "exp", "tid", "appid", "azp", "roles", "oid", "sub", "idtyp"],
        "tenant_region_scope": null,
        "cloud_instance_name": "entente-emulator",
        "msgraph_host": base.trim_start_matches("http://").trim_start_matches("https://"),
    }))
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(crate) fn jwks(state: &State) -> GraphResponse {
    GraphResponse::ok(json!({ "keys": state.keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }))
}
