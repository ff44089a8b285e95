//! Which directory holds a tenant: the one place that turns a Tenant's `spec.backend` into a `Directory`.
//! The CLI and the controller share it; only where secrets come from differs (`SecretSource`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::api::tenant::{Backend, BackendKind, GraphBackend};
use crate::directory::Directory;
use crate::directory::local::LocalDirectory;

/// Where a Graph backend's client secret comes from: the environment or a file for the CLI, a Kubernetes
/// Secret for the controller. Never a manifest.
pub trait SecretSource: Send + Sync {
    /// The client secret for `tenant_id`, or `None` when the backend uses a federated token instead.
    fn client_secret(&self, tenant_id: &str, graph: &GraphBackend) -> Result<Option<String>, String>;
}

/// Opens each backend once and hands out shared handles.
pub struct Backends {
    local_path: PathBuf,
    local: Mutex<Option<Arc<LocalDirectory>>>,
    graph: Mutex<HashMap<String, Arc<dyn Directory>>>,
}

impl Backends {
    pub fn new(local_path: impl Into<PathBuf>) -> Self {
        Self { local_path: local_path.into(), local: Mutex::new(None), graph: Mutex::new(HashMap::new()) }
    }

    /// The embedded local directory, opened on first use.
    pub fn local(&self) -> Result<Arc<LocalDirectory>, String> {
        let mut slot = self.local.lock().map_err(|_| "local directory lock poisoned".to_string())?;
        if let Some(dir) = slot.as_ref() {
            return Ok(dir.clone());
        }
        let dir = Arc::new(
            LocalDirectory::open(&self.local_path)
                .map_err(|e| format!("cannot open the local directory {}: {e}", self.local_path.display()))?,
        );
        *slot = Some(dir.clone());
        Ok(dir)
    }

    /// The directory for one tenant.
    pub fn route(&self, tenant_id: &str, backend: &Backend, _secrets: &dyn SecretSource) -> Result<Arc<dyn Directory>, String> {
        match backend.kind {
            BackendKind::Local => Ok(self.local()? as Arc<dyn Directory>),
            BackendKind::Graph => {
                if let Some(d) = self.graph.lock().map_err(|_| "graph backend lock poisoned".to_string())?.get(tenant_id) {
                    return Ok(d.clone());
                }
                Err("the graph backend is not implemented yet: use spec.backend.type local".to_string())
            }
        }
    }
}

/// No secrets available (tests, local-only setups).
pub struct NoSecrets;

impl SecretSource for NoSecrets {
    fn client_secret(&self, _: &str, _: &GraphBackend) -> Result<Option<String>, String> {
        Err("no secret source is configured".into())
    }
}
