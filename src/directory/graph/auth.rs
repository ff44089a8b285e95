//! OAuth 2.0 client credentials (graph-contract 1.11): a client secret, or a federated client assertion
//! read from a token file (workload identity federation; the file is re-read for every token request
//! because the platform rotates it). The token is cached, refreshed before it expires (5 minutes
//! early, or halfway for short-lived tokens), and fetched by one caller at a time (single flight).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::Mutex;

use super::http::{RetryPolicy, is_retryable_status, parse_retry_after};
use crate::directory::DirectoryError;
use crate::graph::wire::{JWT_BEARER_ASSERTION_TYPE, TokenError, TokenRequest, TokenResponse};

/// How entente proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    ClientSecret(String),
    /// A file holding a JWT from another identity provider (e.g. `AZURE_FEDERATED_TOKEN_FILE`).
    FederatedTokenFile(PathBuf),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::ClientSecret(_) => f.write_str("ClientSecret(<redacted>)"),
            Credential::FederatedTokenFile(p) => write!(f, "FederatedTokenFile({})", p.display()),
        }
    }
}

/// AADSTS codes meaning "there is no such tenant".
const TENANT_NOT_FOUND_CODES: [i64; 2] = [90002, 90072];

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Tokens for one tenant and app.
pub struct TokenSource {
    client: reqwest::Client,
    token_url: Url,
    tenant_id: String,
    client_id: String,
    scope: String,
    credential: Credential,
    refresh_margin: Duration,
    retry: RetryPolicy,
    cache: Mutex<Option<Cached>>,
}

impl TokenSource {
    pub fn new(
        client: reqwest::Client,
        token_url: Url,
        tenant_id: &str,
        client_id: &str,
        scope: &str,
        credential: Credential,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            client,
            token_url,
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            credential,
            refresh_margin: Duration::from_secs(300),
            retry,
            cache: Mutex::new(None),
        }
    }

    /// A valid access token, from the cache or freshly fetched. Concurrent callers wait for one fetch.
    pub async fn token(&self) -> Result<String, DirectoryError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fetched_at = Instant::now();
        let resp = self.fetch().await?;
        let lifetime = Duration::from_secs(resp.expires_in);
        let margin = self.refresh_margin.min(lifetime / 2);
        *cache = Some(Cached { token: resp.access_token.clone(), refresh_at: fetched_at + lifetime - margin });
        Ok(resp.access_token)
    }

    /// Drops the cached token if it is still `token` (a 401 told us it is no good).
    pub async fn invalidate(&self, token: &str) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.token == token) {
            *cache = None;
        }
    }

    fn form(&self) -> Result<TokenRequest, DirectoryError> {
        let mut form = TokenRequest {
            client_id: self.client_id.clone(),
            scope: self.scope.clone(),
            grant_type: "client_credentials".into(),
            ..Default::default()
        };
        match &self.credential {
            Credential::ClientSecret(s) => form.client_secret = Some(s.clone()),
            Credential::FederatedTokenFile(path) => {
                let jwt = crate::files::read_regular_text(path, crate::files::MAX_SECRET_BYTES)
                    .map_err(|e| DirectoryError::Auth(format!("cannot read the federated token file {}: {e}", path.display())))?;
                form.client_assertion_type = Some(JWT_BEARER_ASSERTION_TYPE.into());
                form.client_assertion = Some(jwt.trim().to_string());
            }
        }
        Ok(form)
    }

    async fn fetch(&self) -> Result<TokenResponse, DirectoryError> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            // Re-read the credential every attempt: a federated token file rotates.
            let form = self.form()?;
            let sent = self.client.post(self.token_url.clone()).timeout(self.retry.request_timeout).form(&form).send().await;
            attempt += 1;
            let give_up = |wait: Duration| attempt >= self.retry.max_attempts || started.elapsed() + wait > self.retry.max_total;
            match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
                    let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    if (200..300).contains(&status) {
                        return serde_json::from_slice(&body).map_err(|e| {
                            DirectoryError::Auth(format!(
                                "the token endpoint {} answered a token entente cannot read: {e}",
                                self.token_url
                            ))
                        });
                    }
                    if is_retryable_status(status) {
                        let wait = retry_after.unwrap_or_else(|| self.retry.backoff(attempt - 1));
                        if !give_up(wait) {
                            tokio::time::sleep(wait).await;
                            continue;
                        }
                    }
                    return Err(self.token_error(status, &body));
                }
                Err(e) => {
                    let wait = self.retry.backoff(attempt - 1);
                    if give_up(wait) {
                        return Err(DirectoryError::Transport(format!("token endpoint {}: {e}", self.token_url)));
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn token_error(&self, status: u16, body: &[u8]) -> DirectoryError {
        let Ok(e) = serde_json::from_slice::<TokenError>(body) else {
            return DirectoryError::Auth(format!(
                "the token endpoint {} answered {status}: {}",
                self.token_url,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        };
        let description = e.error_description.clone().unwrap_or_default();
        let no_tenant = e.error == "invalid_tenant"
            || e.error_codes.iter().any(|c| TENANT_NOT_FOUND_CODES.contains(c))
            || TENANT_NOT_FOUND_CODES.iter().any(|c| description.contains(&format!("AADSTS{c}")));
        if no_tenant {
            return DirectoryError::TenantNotFound(format!(
                "{} (the authority has no such tenant: {} {description}; entente never creates Graph tenants: create it in \
                 Microsoft Entra and register entente's app there)",
                self.tenant_id, e.error
            ));
        }
        let mut msg = format!("{} for client {} in tenant {}: {description}", e.error, self.client_id, self.tenant_id);
        if let Some(id) = &e.correlation_id {
            msg.push_str(&format!(" [correlation-id {id}]"));
        }
        if let Some(id) = &e.trace_id {
            msg.push_str(&format!(" [trace-id {id}]"));
        }
        DirectoryError::Auth(msg)
    }
}
