//! Directory backends: where tenants, guests and policies actually live.
//!
//! Every backend implements one contract (`Directory`): read a tenant in bulk without writing
//! (`snapshot`), then execute the operations of one planned change (`apply`), each idempotent.
//! The CLI and the controller only ever talk to this trait.

pub mod local;

use async_trait::async_trait;

use crate::core::model::TenantSnapshot;
use crate::core::operation::{Operation, Outcome};
use crate::core::policy::Refusal;

#[async_trait]
pub trait Directory: Send + Sync {
    /// Reads everything the planner needs about one tenant, in a few bulk reads and no writes.
    /// `Ok(None)` when the directory has no such tenant.
    async fn snapshot(&self, tenant_id: &str) -> Result<Option<TenantSnapshot>, DirectoryError>;

    /// Executes the operations of one change, in order, and returns one outcome per operation.
    /// Backends that can (the local directory) do it atomically: all or nothing.
    async fn apply(&self, tenant_id: &str, ops: &[Operation]) -> Result<Vec<Outcome>, DirectoryError>;
}

/// Errors of the directory layer. `category()` is the fixed label used in metrics and event reasons.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A product rule refused the request (an invitation refused by R3–R5, R9).
    #[error("{0}")]
    Refused(Refusal),
    #[error("tenant {0} does not exist in the directory")]
    TenantNotFound(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("directory storage failed: {0}")]
    Storage(String),
    #[error("not implemented: {0}")]
    NotImplemented(String),
}

impl DirectoryError {
    pub fn category(&self) -> &'static str {
        match self {
            DirectoryError::Refused(r) => r.reason.as_str(),
            DirectoryError::TenantNotFound(_) => "TenantNotFound",
            DirectoryError::NotFound(_) => "NotFound",
            DirectoryError::Conflict(_) => "Conflict",
            DirectoryError::Invalid(_) => "Invalid",
            DirectoryError::Storage(_) => "Storage",
            DirectoryError::NotImplemented(_) => "NotImplemented",
        }
    }
}
