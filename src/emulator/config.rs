//! What an emulator instance does: where it listens, how long its tokens live, which limits and
//! faults it applies, whether it checks the contract. The CLI (`entente directory serve`) builds
//! one from flags; tests build one in process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// Everything an emulator instance needs besides its directory.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where to listen. Default `127.0.0.1:0` (any free port).
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` address. The emulator speaks plain HTTP and its admin endpoints
    /// are unauthenticated: only for a trusted network.
    pub allow_remote: bool,
    /// The base URL links and token issuers use (`@odata.nextLink`, `iss`). Default: `http://` plus the
    /// request's `Host` header.
    pub public_url: Option<String>,
    /// Lifetime of issued access tokens (`expires_in`). Default 3599 s, as Entra.
    pub token_lifetime: Duration,
    /// Tolerated clock skew when checking a token's `exp`/`nbf`. Default 0.
    pub clock_skew: Duration,
    /// Issuers whose tokens may be exchanged for an app's token (workload identity federation), on top
    /// of the app's federated credential records, which say which subject and audience are accepted.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// A PKCS#8 PEM RSA key to sign tokens with when the directory file has none yet (tests share one to
    /// skip key generation). Without it a 2048-bit key is generated at first start.
    pub signing_key_pem: Option<String>,
    pub contract: ContractConfig,
    pub limits: Limits,
    pub faults: FaultConfig,
    /// How long a delta token stays valid (Graph: 7 days for directory objects); older ones get 400 `syncStateNotFound`.
    pub delta_token_ttl: Duration,
    /// Items per page of a `/users/delta` round unless `Prefer: odata.maxpagesize=N` asks otherwise.
    pub delta_page_size: usize,
    /// Serve https with this certificate and key (`tls.rs`); `None`: plain HTTP.
    pub tls: Option<super::tls::TlsIdentity>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            allow_remote: false,
            public_url: None,
            token_lifetime: Duration::from_secs(3599),
            clock_skew: Duration::ZERO,
            trusted_issuers: Vec::new(),
            signing_key_pem: None,
            contract: ContractConfig::default(),
            limits: Limits::default(),
            faults: FaultConfig::default(),
            delta_token_ttl: Duration::from_secs(7 * 24 * 3600),
            delta_page_size: 100,
            tls: None,
        }
    }
}

/// An external OIDC issuer (a Kubernetes cluster, GitHub Actions, …) and where its signing keys are.
#[derive(Clone, Debug, PartialEq)]
pub struct TrustedIssuer {
    /// Exactly the `iss` claim of its tokens.
    pub issuer: String,
    pub jwks: JwksSource,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JwksSource {
    /// A JWKS document (`{"keys": [...]}`).
    Inline(Value),
    /// A file holding a JWKS document, read at each token request (so rotated keys are picked up).
    File(PathBuf),
}

/// Contract validation against the OpenAPI subset (graph-contract Part 3).
#[derive(Clone, Debug, Default)]
pub struct ContractConfig {
    /// Validate every request and response body the emulator handles; record violations
    /// (`GET /_emulator/contract-violations`) and log them.
    pub strict: bool,
    /// The OpenAPI document. Default: `../shared/reference/graph-v1.0-openapi-subset.yaml` beside the
    /// crate if present, else the copy built into entente.
    pub openapi: Option<PathBuf>,
    /// Do not report object properties the schema does not define. By default (`false`) they are
    /// reported: the subset's schemas leave objects open, so a misspelled property would otherwise be
    /// valid OpenAPI, while Graph itself rejects it.
    pub allow_unknown_properties: bool,
}

/// One rate: at most `limit` units per `window`, refilled continuously (a token bucket).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub limit: f64,
    pub window: Duration,
}

impl Rate {
    pub fn new(limit: f64, window: Duration) -> Self {
        Self { limit, window }
    }
    pub fn per_secs(limit: f64, secs: u64) -> Self {
        Self::new(limit, Duration::from_secs(secs))
    }
    fn scaled(self, factor: f64) -> Self {
        Self { limit: (self.limit * factor).max(1.0), window: self.window }
    }
}

/// Graph's documented throttling limits (graph-contract Part 2). Every number is per window and
/// scope as named; `scaled` shrinks them all for tests and demos.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub enabled: bool,
    /// Identity and access resource units per app and tenant, by tenant size: S (under
    /// `medium_tenant_users` users), M (up to `large_tenant_users`), L (more).
    pub ru_small: Rate,
    pub ru_medium: Rate,
    pub ru_large: Rate,
    pub medium_tenant_users: usize,
    pub large_tenant_users: usize,
    /// Resource units per app across all tenants.
    pub ru_app: Rate,
    /// Writes per app and tenant.
    pub writes_app_tenant: Rate,
    /// Writes per app across tenants.
    pub writes_app: Rate,
    /// Writes per tenant across apps.
    pub writes_tenant: Rate,
    /// `POST /invitations` per tenant, all apps.
    pub invitations_tenant: Rate,
    /// Any request, per app across all tenants.
    pub global_app: Rate,
    /// How `Retry-After` is written: whole seconds, fractional, or a mix (Graph sends both).
    pub retry_after: RetryAfterFormat,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            enabled: true,
            ru_small: Rate::per_secs(3500.0, 10),
            ru_medium: Rate::per_secs(5000.0, 10),
            ru_large: Rate::per_secs(8000.0, 10),
            medium_tenant_users: 50,
            large_tenant_users: 500,
            ru_app: Rate::per_secs(150_000.0, 20),
            writes_app_tenant: Rate::per_secs(3000.0, 150),
            writes_app: Rate::per_secs(35_000.0, 300),
            writes_tenant: Rate::per_secs(18_000.0, 300),
            invitations_tenant: Rate::per_secs(150.0, 5),
            global_app: Rate::per_secs(130_000.0, 10),
            retry_after: RetryAfterFormat::Integer,
        }
    }
}

impl Limits {
    /// No throttling at all.
    pub fn off() -> Self {
        Self { enabled: false, ..Self::default() }
    }

    /// Every limit multiplied by `factor` (at least 1 per window), windows unchanged.
    pub fn scaled(factor: f64) -> Self {
        let d = Self::default();
        Self {
            ru_small: d.ru_small.scaled(factor),
            ru_medium: d.ru_medium.scaled(factor),
            ru_large: d.ru_large.scaled(factor),
            ru_app: d.ru_app.scaled(factor),
            writes_app_tenant: d.writes_app_tenant.scaled(factor),
            writes_app: d.writes_app.scaled(factor),
            writes_tenant: d.writes_tenant.scaled(factor),
            invitations_tenant: d.invitations_tenant.scaled(factor),
            global_app: d.global_app.scaled(factor),
            ..d
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetryAfterFormat {
    /// Whole seconds, rounded up: what Graph sends (and all kiota-based SDKs can parse).
    #[default]
    Integer,
    /// Seconds with up to three decimals, e.g. `2.128` (to test a client's tolerance).
    Fractional,
    /// Either, at random (seeded).
    Mixed,
}

/// Injected latency and failures, drawn from one seeded random sequence (same seed and same
/// sequence of requests: same faults).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Added to every request.
    pub latency: Duration,
    /// Plus a uniformly random extra of up to this much.
    pub latency_jitter: Duration,
    /// Share of requests answered 500, 503 or 504 before anything is done.
    pub fault_rate: f64,
    /// Share of requests whose connection is closed without an answer, before anything is done.
    pub drop_rate: f64,
    /// Share of writes that are carried out but whose answer is lost (a 504, or a closed connection):
    /// the client cannot know whether the write happened.
    pub ambiguous_rate: f64,
    /// `Retry-After` of an injected 503, in seconds.
    pub fault_retry_after: f64,
    /// Apply faults to the token endpoint too.
    pub token_endpoint: bool,
    /// Seed of the random sequence; `None`: from the clock.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            fault_rate: 0.0,
            drop_rate: 0.0,
            ambiguous_rate: 0.0,
            fault_retry_after: 1.0,
            token_endpoint: true,
            seed: None,
        }
    }
}

impl FaultConfig {
    pub fn any(&self) -> bool {
        self.fault_rate > 0.0 || self.drop_rate > 0.0 || self.ambiguous_rate > 0.0
    }
}
