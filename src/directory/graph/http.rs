//! One Graph request, sent well: bearer token, client-side rate limit, retries (429 and 503 after
//! `Retry-After`, 5xx and transport failures with capped exponential backoff and jitter, bounded in
//! attempts and total time), and Graph's error body kept (`code`, message, `request-id`).
//!
//! A request whose outcome is unknown after a failure (a non-idempotent `POST` that timed out, lost its
//! connection or got a 5xx) is never retried here: the caller looks the object up by its natural key
//! first (`writes`), so nothing is created twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::auth::TokenSource;
use super::limiter::{Cost, RateLimiter};
use crate::directory::{DirectoryError, GraphFailure};
use crate::graph::wire::ODataError;

/// How failed requests are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled at each attempt.
    pub base_delay: Duration,
    /// Longest single backoff. `Retry-After` is never shortened: a wait beyond `max_total` gives up instead.
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_total: Duration,
    /// Timeout of one attempt.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_total: Duration::from_secs(300),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Capped exponential backoff with jitter: a random delay in `[d/2, d]`, `d = min(max, base·2^attempt)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        let jitter = rand::rng().random_range(0.0..=1.0);
        half + half.mul_f64(jitter)
    }
}

/// `Retry-After` as seconds (fractional allowed, e.g. `2.128`) or an HTTP date. `None` when absent or
/// unreadable; negative values and past dates mean "now".
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() {
            return None;
        }
        return Some(Duration::from_secs_f64(secs.clamp(0.0, 86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Statuses worth trying again: throttling, and the server-side failures Graph documents as transient.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// A request to send.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<serde_json::Value>,
    /// A body of raw bytes and its media type (e.g. an image stream), instead of JSON.
    pub raw: Option<(Arc<[u8]>, &'static str)>,
    pub headers: Vec<(&'static str, String)>,
    pub cost: Cost,
    /// Whether sending it twice is harmless (GET, PUT, PATCH, DELETE, and POSTs that are).
    pub idempotent: bool,
}

impl Call {
    pub fn new(method: Method, url: Url, cost: Cost) -> Self {
        let idempotent = method != Method::POST;
        Self { method, url, body: None, raw: None, headers: vec![], cost, idempotent }
    }
    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
    /// Sends `bytes` as the body, with `content_type` (e.g. `image/png`).
    pub fn bytes(mut self, bytes: Arc<[u8]>, content_type: &'static str) -> Self {
        self.raw = Some((bytes, content_type));
        self
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    /// Marks a POST safe to resend (`$batch` of idempotent requests, `$ref` adds).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
    /// The path and query, for error messages.
    pub fn path(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_string(),
        }
    }
}

/// A final answer (any status).
#[derive(Clone, Debug)]
pub struct Response {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as `T`; a non-2xx answer becomes `DirectoryError::Graph`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, DirectoryError> {
        if !self.is_success() {
            return Err(self.error());
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            DirectoryError::Invalid(format!(
                "{} {} answered {} with a body entente cannot read: {e}",
                self.method, self.path, self.status
            ))
        })
    }

    /// `Ok` on 2xx, else the error.
    pub fn ok(&self) -> Result<(), DirectoryError> {
        if self.is_success() { Ok(()) } else { Err(self.error()) }
    }

    /// The OData error body, when there is one.
    pub fn odata_error(&self) -> Option<ODataError> {
        serde_json::from_slice(&self.body).ok()
    }

    /// `error.code` of the body, or `""`.
    pub fn code(&self) -> String {
        self.odata_error().map(|e| e.error.code).unwrap_or_default()
    }

    pub fn error(&self) -> DirectoryError {
        DirectoryError::Graph(Box::new(failure(&self.method, &self.path, self.status, &self.headers, &self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Graph's error, from a status, headers and body.
pub fn failure(method: &Method, path: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> GraphFailure {
    let header_id = || headers.get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    match serde_json::from_slice::<ODataError>(body) {
        Ok(e) => GraphFailure {
            method: method.to_string(),
            path: path.to_string(),
            status,
            request_id: e.request_id().map(str::to_string).or_else(header_id),
            detail_code: e.detail_code().map(str::to_string),
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => GraphFailure {
            method: method.to_string(),
            path: path.to_string(),
            status,
            code: String::new(),
            detail_code: None,
            message: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            request_id: header_id(),
        },
    }
}

/// Sends calls for one tenant: shares the token source and the rate limiter.
pub struct Http {
    pub client: reqwest::Client,
    pub auth: Arc<TokenSource>,
    pub limiter: Arc<RateLimiter>,
    pub retry: RetryPolicy,
    /// `scheme://host[:port]` of the Graph endpoint: links elsewhere are refused (the token never leaves).
    pub origin: String,
}

impl Http {
    /// Sends with retries. `Ok` carries the final answer whatever its status (the caller decides what a
    /// 404 or 409 means); `Err` when no answer came, or the token could not be had.
    pub async fn send(&self, call: &Call) -> Result<Response, DirectoryError> {
        if call.url.origin().ascii_serialization() != self.origin {
            return Err(DirectoryError::Invalid(format!(
                "refusing to send the Graph token to {} (not the configured endpoint {})",
                call.url.origin().ascii_serialization(),
                self.origin
            )));
        }
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut refreshed_token = false;
        loop {
            self.limiter.acquire(call.cost).await;
            let token = self.auth.token().await?;
            let mut req = self
                .client
                .request(call.method.clone(), call.url.clone())
                .bearer_auth(&token)
                .timeout(self.retry.request_timeout)
                .header("client-request-id", uuid::Uuid::new_v4().to_string());
            for (k, v) in &call.headers {
                req = req.header(*k, v);
            }
            if let Some(body) = &call.body {
                req = req.json(body);
            }
            if let Some((bytes, content_type)) = &call.raw {
                req = req.header(reqwest::header::CONTENT_TYPE, *content_type).body(bytes.to_vec());
            }
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(body) => {
                            Ok(Response { method: call.method.clone(), path: call.path(), status, headers, body: body.to_vec() })
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            attempt += 1;
            let last_attempt = attempt >= self.retry.max_attempts;
            match outcome {
                Ok(resp) => {
                    self.limiter.observe(&resp.headers);
                    if resp.status == 401 && !refreshed_token {
                        // The token may have been revoked or expired early: fetch a new one, once.
                        refreshed_token = true;
                        self.auth.invalidate(&token).await;
                        continue;
                    }
                    // A 429 was refused before any processing: safe to resend even when not idempotent.
                    let retry = resp.status == 429 || (call.idempotent && is_retryable_status(resp.status));
                    if !retry || last_attempt {
                        return Ok(resp);
                    }
                    let hinted = resp.header("retry-after").and_then(parse_retry_after);
                    // Retry-After is honoured as given (never shortened); without it, capped backoff.
                    let wait = hinted.unwrap_or_else(|| self.retry.backoff(attempt - 1));
                    if started.elapsed() + wait > self.retry.max_total {
                        return Ok(resp);
                    }
                    if hinted.is_some() && matches!(resp.status, 429 | 503) {
                        // Everyone sending to this tenant waits: immediate retries count against the limits.
                        self.limiter.pause_for(wait);
                    }
                    tracing::debug!(status = resp.status, path = %call.path(), ?wait, attempt, "retrying a Graph request");
                    tokio::time::sleep(wait).await;
                }
                Err(e) => {
                    let what = describe(&e);
                    if !call.idempotent {
                        return Err(DirectoryError::Transport(format!(
                            "{} {}: {what} (outcome unknown)",
                            call.method,
                            call.path()
                        )));
                    }
                    let wait = self.retry.backoff(attempt - 1);
                    if last_attempt || started.elapsed() + wait > self.retry.max_total {
                        return Err(DirectoryError::Transport(format!(
                            "{} {}: {what} (gave up after {attempt} attempts)",
                            call.method,
                            call.path()
                        )));
                    }
                    tracing::debug!(path = %call.path(), error = %what, ?wait, attempt, "retrying a Graph request");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    let mut msg = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_may_be_fractional_or_a_date() {
        assert_eq!(parse_retry_after("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after(" 2.128 "), Some(Duration::from_millis(2128)));
        assert_eq!(parse_retry_after("0.05"), Some(Duration::from_millis(50)));
        assert_eq!(parse_retry_after("-3"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date means now");
        let future = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&future).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p =
            RetryPolicy { base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1), ..RetryPolicy::default() };
        for attempt in 0..30 {
            let d = p.backoff(attempt);
            let full = (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(20))).min(Duration::from_secs(1));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
    }

    #[test]
    fn errors_keep_code_message_and_request_id() {
        let body = br#"{"error":{"code":"TooManyRequests","innerError":{"code":"429","date":"2020-08-18T12:51:51","message":"Please retry after","request-id":"94fb3b52","status":"429"},"message":"Please retry again later."}}"#;
        let f = failure(&Method::GET, "/users", 429, &HeaderMap::new(), body);
        assert_eq!(
            (f.code.as_str(), f.message.as_str(), f.request_id.as_deref()),
            ("TooManyRequests", "Please retry again later.", Some("94fb3b52"))
        );
        assert_eq!(f.category(), "GraphThrottled");
        let mut headers = HeaderMap::new();
        headers.insert("request-id", "from-header".parse().unwrap());
        let f = failure(&Method::DELETE, "/x", 502, &headers, b"<html>bad gateway</html>");
        assert_eq!(f.request_id.as_deref(), Some("from-header"));
        assert_eq!(f.category(), "GraphUnavailable");
        assert!(DirectoryError::Graph(Box::new(f)).to_string().contains("502"));
    }
}
