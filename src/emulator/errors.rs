//! Graph's error body (`concepts/errors.md`, graph-contract 1.10) for every failure the emulator
//! answers, and how directory errors map onto it.
//!
//! Every error carries `error.code`, `error.message` and `error.innerError` with `request-id`,
//! `client-request-id` and `date` (UTC, without an offset, as Graph writes it). Clients must branch on
//! `code` (and `details[].code`), never on `message`.

use http::StatusCode;
use serde_json::{Value, json};

use crate::core::policy::Refusal;
use crate::directory::DirectoryError;

/// The status the emulator answers a refused invitation with (R3–R5, R9). Graph documents no code for
/// these refusals; `403 Forbidden` is what the one reported real-world refusal ("Invitations are
/// blocked for this directory") carried, and it says "retrying will not help". Both `error.code` and
/// `error.details[0].code` are the refusal reason (`DomainBlocked`, `InvitationsDisabled`,
/// `CrossTenantAccessBlocked`, `CloudNotAllowed`); the message is the refusal's message.
pub const REFUSAL_STATUS: StatusCode = StatusCode::FORBIDDEN;

/// One Graph error, before it is rendered for a request (boxed: it travels in every `Result`).
#[derive(Clone, Debug, PartialEq)]
pub struct GraphError(Box<ErrorParts>);

#[derive(Clone, Debug, PartialEq)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// `details[]`: (code, message).
    pub details: Vec<(String, String)>,
    /// Extra `innerError` members (the 429 body carries `code`, `message` and `status` there).
    pub inner: Vec<(String, String)>,
    /// Response headers that go with the error (`Retry-After`, `Location`, `WWW-Authenticate`, …).
    pub headers: Vec<(String, String)>,
}

impl std::ops::Deref for GraphError {
    type Target = ErrorParts;
    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for GraphError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

impl GraphError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self(Box::new(ErrorParts {
            status,
            code: code.into(),
            message: message.into(),
            details: Vec::new(),
            inner: Vec::new(),
            headers: Vec::new(),
        }))
    }

    pub fn with_detail(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.details.push((code.into(), message.into()));
        self
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_inner(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.inner.push((name.into(), value.into()));
        self
    }

    /// 400 `Request_BadRequest`: the request is malformed or asks for something invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    /// 400 `Request_UnsupportedQuery`: a query option the service does not support for this request.
    pub fn unsupported_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", message)
    }

    /// 404 `Request_ResourceNotFound`, with Graph's message.
    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )
    }

    /// 409 `Request_MultipleObjectsWithSameKeyValue` with a `ConflictingObjects` detail.
    pub fn conflict(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue", message.clone())
            .with_detail("ConflictingObjects", message)
    }

    /// 401 `InvalidAuthenticationToken`, with the challenge Graph sends.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).with_header(
            "WWW-Authenticate",
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", \
             client_id=\"00000003-0000-0000-c000-000000000000\"",
        )
    }

    /// 403 `Authorization_RequestDenied`: the token lacks an application permission for the operation.
    pub fn forbidden(needed: &[&str], roles: &[String]) -> Self {
        let has = if roles.is_empty() { "none".to_string() } else { roles.join(", ") };
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            format!(
                "Insufficient privileges to complete the operation. (emulator: this operation needs one of the \
                 application permissions {}; the token's roles are: {has})",
                needed.join(", ")
            ),
        )
    }

    /// A refused invitation (R3–R5, R9); see [`REFUSAL_STATUS`].
    pub fn refused(r: &Refusal) -> Self {
        let code = r.reason.as_str();
        Self::new(REFUSAL_STATUS, code, r.message.clone()).with_detail(code, r.message.clone())
    }

    /// 429, with Graph's documented body.
    pub fn throttled(retry_after: &str) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Please retry again later.")
            .with_inner("code", "429")
            .with_inner("message", "Please retry after")
            .with_inner("status", "429")
            .with_header("Retry-After", retry_after)
    }

    /// 500 for the emulator's own failures.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", message)
    }

    /// The JSON body, for one request.
    pub fn body(&self, request_id: &str, client_request_id: Option<&str>, date: &str) -> Value {
        let mut inner = serde_json::Map::new();
        for (k, v) in &self.inner {
            inner.insert(k.clone(), Value::String(v.clone()));
        }
        inner.insert("date".into(), Value::String(date.to_string()));
        inner.insert("request-id".into(), Value::String(request_id.to_string()));
        inner.insert("client-request-id".into(), Value::String(client_request_id.unwrap_or(request_id).to_string()));
        let mut error = json!({ "code": self.code, "message": self.message });
        if !self.details.is_empty() {
            error["details"] =
                Value::Array(self.details.iter().map(|(c, m)| json!({ "code": c, "message": m, "target": null })).collect());
        }
        error["innerError"] = Value::Object(inner);
        json!({ "error": error })
    }
}

impl From<DirectoryError> for GraphError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::Refused(r) => GraphError::refused(&r),
            DirectoryError::TenantNotFound(t) => GraphError::new(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                format!("Tenant '{t}' does not exist in the emulator's directory."),
            ),
            DirectoryError::NotFound(what) => {
                GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", format!("{what} does not exist."))
            }
            DirectoryError::Conflict(m) => GraphError::conflict(m),
            DirectoryError::Invalid(m) => GraphError::bad_request(m),
            DirectoryError::Storage(m) => GraphError::internal(format!("directory storage failed: {m}")),
            DirectoryError::NotImplemented(m) => GraphError::new(StatusCode::NOT_IMPLEMENTED, "notImplemented", m),
            #[allow(unreachable_patterns)]
            other => GraphError::internal(other.to_string()),
        }
    }
}

/// Graph's `innerError.date`: UTC, seconds, no offset.
pub fn graph_date() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::RefusalReason;

    #[test]
    fn a_refusal_carries_its_reason_as_code_and_detail() {
        let r = Refusal { reason: RefusalReason::DomainBlocked, message: "litware.com is blocked (R5)".into() };
        let body = GraphError::refused(&r).body("rid", None, "2024-01-01T00:00:00");
        assert_eq!(body["error"]["code"], "DomainBlocked");
        assert_eq!(body["error"]["details"][0]["code"], "DomainBlocked");
        assert_eq!(body["error"]["message"], "litware.com is blocked (R5)");
        assert_eq!(body["error"]["innerError"]["request-id"], "rid");
        assert_eq!(body["error"]["innerError"]["client-request-id"], "rid");
    }

    #[test]
    fn the_429_body_is_graphs() {
        let e = GraphError::throttled("2.5");
        let body = e.body("r", Some("c"), "d");
        assert_eq!(body["error"]["code"], "TooManyRequests");
        assert_eq!(body["error"]["innerError"]["status"], "429");
        assert_eq!(body["error"]["innerError"]["client-request-id"], "c");
        assert!(e.headers.contains(&("Retry-After".into(), "2.5".into())));
    }
}
