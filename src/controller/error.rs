//! The controller's errors. `category()` is the fixed label for metrics and logs (STYLE 5).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the Kubernetes API failed (finalizer or status patch, Secret read).
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Some changes of the tenant failed in the directory; the status of each object says which and why.
    #[error("{failed} object(s) of tenant {tenant} could not be synchronized")]
    Sync { tenant: String, failed: usize },
    /// Another writer (a CLI apply, say) held the tenant's writer lock for longer than the controller waits.
    #[error("{0}")]
    Busy(String),
    /// One reconcile took longer than `--reconcile-timeout`; it was abandoned so it holds no worker.
    #[error("the reconcile took longer than {0:?} and was abandoned")]
    Timeout(Duration),
    /// The reflector caches have not been filled yet.
    #[error("the caches are not filled yet")]
    NotReady,
    #[error("leader election: {0}")]
    Lease(String),
    /// Another replica took over the lease: this one stops so it never writes without holding it.
    #[error("the leader lease was lost")]
    LeaseLost,
    #[error("serving metrics and probes: {0}")]
    Server(#[source] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Sync { .. } => "SyncFailed",
            Error::Busy(_) => "WriterBusy",
            Error::Timeout(_) => "Timeout",
            Error::NotReady => "NotReady",
            Error::Lease(_) => "Lease",
            Error::LeaseLost => "LeaseLost",
            Error::Server(_) => "Server",
            Error::Config(_) => "Config",
        }
    }
}
