//! A Microsoft Graph-compatible emulator over one local directory file: `entente directory serve`.
//!
//! It serves the Graph v1.0 paths entente uses (and the beta domain-list policy) with Graph's shapes,
//! status codes and error body, plus an Entra-like token endpoint with OIDC discovery and JWKS, so
//! the Graph backend — or any Graph client — can be pointed at it (authority host and Graph endpoint
//! both set to its URL). Because it *is* the local directory, the product rules (R3–R6, R9) apply as
//! they do locally, and a refused invitation comes back as a Graph error carrying the same reason.
//!
//! Security works as Graph's: RS256 access tokens carrying `tid`, `appid` and `roles` are issued to
//! app registrations kept in the directory file (`entente directory app create`), and every Graph
//! request needs a valid token of the tenant whose data it touches (401) holding an application
//! permission that covers the operation (403). The tenant a request acts on is always the token's
//! `tid`: no path names a tenant, so a token of tenant A cannot reach tenant B.
//!
//! Switchable behaviour for tests and benchmarks: Graph's throttling limits (429 with `Retry-After`
//! and the `x-ms-throttle-*` headers), added latency, injected 5xx, dropped connections and lost
//! answers to writes, all from one seeded random sequence; and contract validation of every request
//! and response body against the OpenAPI subset (`GET /_emulator/contract-violations`).
//!
//! Files, one per concept: `server` (HTTP, the request pipeline), `router` (paths), `auth` (tokens,
//! discovery, JWKS, bearer checks), `jwt`, `apps` (app registrations), `permissions`, `users`,
//! `groups`, `invitations`, `xtap` (cross-tenant access policy), `policies` (authorization policy,
//! B2B management policy), `organization`, `batch`, `throttle`, `faults`, `contract`, `odata` (query
//! options), `errors`, `store` (the emulator's own rows), `admin` (`/_emulator/*`), `config`.

mod admin;
pub mod apps;
mod auth;
mod batch;
mod branding;
mod conditional_access;
pub mod config;
pub mod contract;
mod deleted_items;
mod delta_token;
mod entitlement;
mod errors;
mod faults;
mod group_delta;
mod groups;
mod identity;
mod invitations;
pub mod jwt;
mod mto;
mod odata;
mod organization;
mod permissions;
mod policies;
mod router;
mod server;
mod store;
mod throttle;
pub mod tls;
mod user_flows;
mod users;
mod xtap;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{ContractConfig, EmulatorConfig, FaultConfig, JwksSource, Limits, Rate, RetryAfterFormat, TrustedIssuer};
pub use contract::{Contract, Finding};
pub use errors::REFUSAL_STATUS;
pub use permissions::KNOWN as KNOWN_PERMISSIONS;
pub use server::{ContractReport, EmulatorHandle, OutsideSubset, Stats, Violation};

use crate::directory::DirectoryError;
use crate::directory::local::LocalDirectory;

/// Errors of the emulator layer (starting it, managing apps). Request failures are Graph errors on
/// the wire, never this.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl EmulatorError {
    /// A fixed label for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            EmulatorError::Directory(e) => e.category(),
            EmulatorError::Config(_) => "Config",
            EmulatorError::Io(_) => "Io",
        }
    }
}

/// Starts an emulator over `dir` and returns once it listens.
pub async fn start(dir: Arc<LocalDirectory>, config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    server::start(dir, config).await
}

/// Opens the directory file at `path` and starts an emulator over it.
pub async fn serve_file(path: &std::path::Path, config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    let dir = LocalDirectory::open(path)?;
    // The file is about to hold the token signing keys: its owner's alone.
    match crate::directory::state_file::restrict(path) {
        Ok(true) => {
            tracing::info!(file = %path.display(), "made the directory file readable by its owner only (mode 0600): it holds the emulator's signing keys")
        }
        Ok(false) => {}
        Err(e) => return Err(EmulatorError::Config(format!("restricting {} to its owner: {e}", path.display()))),
    }
    start(Arc::new(dir), config).await
}

/// Whether `addr` may be listened on without `allow_remote`.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
