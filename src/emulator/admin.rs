//! `/_emulator/*`: looking into a running emulator (no token needed; it listens on loopback).
//!
//! - `GET /_emulator/health`: `{"status": "ok"}`.
//! - `GET /_emulator/contract-violations`: the contract report (count, violations, paths outside the
//!   OpenAPI subset); `DELETE` clears it.
//! - `GET /_emulator/stats`: request, fault, drop and throttling counters.
//! - `POST /_emulator/delta/invalidate`: every delta token issued so far answers 400 `syncStateNotFound`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, StatusCode};
use serde_json::json;

use super::errors::GraphError;
use super::router::GraphResponse;
use super::server::{ContractReport, State};

pub(crate) async fn handle(state: &Arc<State>, method: &Method, path: &[&str], _body: &[u8], request_id: &str) -> GraphResponse {
    let ok = |v: serde_json::Value| GraphResponse::ok(v);
    match (method, path) {
        (&Method::GET, ["health"]) => ok(json!({ "status": "ok" })),
        (&Method::GET, ["contract-violations"]) => {
            let report = state.report.lock().unwrap_or_else(|p| p.into_inner()).clone();
            ok(serde_json::to_value(report).unwrap_or_default())
        }
        (&Method::DELETE, ["contract-violations"]) => {
            let mut report = state.report.lock().unwrap_or_else(|p| p.into_inner());
            *report = ContractReport { enabled: report.enabled, source: report.source.clone(), ..Default::default() };
            GraphResponse::no_content()
        }
        (&Method::GET, ["stats"]) => {
            let stats = state.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
            ok(serde_json::to_value(stats).unwrap_or_default())
        }
        (&Method::POST, ["delta", "invalidate"]) => {
            state.delta_epoch.fetch_add(1, Ordering::SeqCst);
            GraphResponse::no_content()
        }
        _ => {
            let e = GraphError::new(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                "Unknown emulator endpoint: GET health, GET/DELETE contract-violations, GET stats, POST delta/invalidate.",
            );
            GraphResponse::json(e.status, e.body(request_id, None, &super::errors::graph_date()))
        }
    }
}
