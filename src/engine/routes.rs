//! Which directory holds a tenant: the one place that turns a Tenant's `spec.backend` into a `Directory`.
//! The CLI and the controller share it; only where secrets come from differs (`SecretSource`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::writer_lock;
use crate::api::tenant::{Backend, BackendKind, GraphBackend};
use crate::directory::Directory;
use crate::directory::graph::{GraphConfig, GraphDirectory};
use crate::directory::inventory::{DEFAULT_INVENTORY_FILE, Inventory, SqliteInventory};
use crate::directory::local::LocalDirectory;
use crate::sync::{DEFAULT_SYNC_STATE_FILE, SyncStore};

/// Where a Graph backend's client secret comes from: the environment or a file for the CLI, a Kubernetes
/// Secret for the controller. Never a manifest.
pub trait SecretSource: Send + Sync {
    /// The client secret for `tenant_id`, or `None` when the backend uses a federated token instead.
    fn client_secret(&self, tenant_id: &str, graph: &GraphBackend) -> Result<Option<String>, String>;
}

/// A directory and a fingerprint of what it was built from.
type FingerprintedDirectory = (u64, Arc<dyn Directory>);

/// Opens each backend once and hands out shared handles.
pub struct Backends {
    local_path: PathBuf,
    local: Mutex<Option<Arc<LocalDirectory>>>,
    /// Graph directories by tenant id, with a fingerprint of the settings and secret they were built from.
    graph: Mutex<HashMap<String, FingerprintedDirectory>>,
    /// Where Graph backends keep entente's ownership records (Graph has no place for them).
    inventory_path: PathBuf,
    inventory: Mutex<Option<Arc<dyn Inventory>>>,
    /// What sync jobs remember between runs.
    sync_state_path: PathBuf,
    sync_store: Mutex<Option<Arc<SyncStore>>>,
    /// `plan`: a state file that does not exist yet is opened empty in memory, never created.
    preview: bool,
}

impl Backends {
    pub fn new(local_path: impl Into<PathBuf>) -> Self {
        let local_path = local_path.into();
        let inventory_path = local_path.with_file_name(DEFAULT_INVENTORY_FILE);
        let sync_state_path = local_path.with_file_name(DEFAULT_SYNC_STATE_FILE);
        Self {
            local_path,
            local: Mutex::new(None),
            graph: Mutex::new(HashMap::new()),
            inventory_path,
            inventory: Mutex::new(None),
            sync_state_path,
            sync_store: Mutex::new(None),
            preview: false,
        }
    }

    /// For a preview (`plan`, `explain`): state files that do not exist are read as empty instead of
    /// being created, so a preview leaves nothing behind.
    pub fn preview(mut self) -> Self {
        self.preview = true;
        self
    }

    /// Whether `path` is to be opened in memory: a preview of a state that was never written.
    fn blank(&self, path: &Path) -> bool {
        self.preview && !path.exists()
    }

    /// Keeps the sync jobs' state in `path` instead of `sync.db` next to the local directory.
    pub fn with_sync_state_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.sync_state_path = path.into();
        self
    }

    /// The sync jobs' state, opened on first use.
    pub fn sync_store(&self) -> Result<Arc<SyncStore>, String> {
        let mut slot = self.sync_store.lock().map_err(|_| "sync state lock poisoned".to_string())?;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let opened =
            if self.blank(&self.sync_state_path) { SyncStore::open_in_memory() } else { SyncStore::open(&self.sync_state_path) };
        let store = Arc::new(opened.map_err(|e| format!("cannot open the sync state {}: {e}", self.sync_state_path.display()))?);
        *slot = Some(store.clone());
        Ok(store)
    }

    /// Keeps the Graph backends' inventory in `path` instead of `inventory.db` next to the local directory.
    pub fn with_inventory_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.inventory_path = path.into();
        self
    }

    /// The Graph backends' inventory, opened on first use.
    pub fn inventory(&self) -> Result<Arc<dyn Inventory>, String> {
        let mut slot = self.inventory.lock().map_err(|_| "inventory lock poisoned".to_string())?;
        if let Some(inv) = slot.as_ref() {
            return Ok(inv.clone());
        }
        let opened = if self.blank(&self.inventory_path) {
            SqliteInventory::open_in_memory()
        } else {
            SqliteInventory::open(&self.inventory_path)
        };
        let inv: Arc<dyn Inventory> =
            Arc::new(opened.map_err(|e| format!("cannot open the inventory {}: {e}", self.inventory_path.display()))?);
        *slot = Some(inv.clone());
        Ok(inv)
    }

    /// The embedded local directory, opened on first use.
    pub fn local(&self) -> Result<Arc<LocalDirectory>, String> {
        let mut slot = self.local.lock().map_err(|_| "local directory lock poisoned".to_string())?;
        if let Some(dir) = slot.as_ref() {
            return Ok(dir.clone());
        }
        let opened =
            if self.blank(&self.local_path) { LocalDirectory::open_in_memory() } else { LocalDirectory::open(&self.local_path) };
        let dir = Arc::new(opened.map_err(|e| format!("cannot open the local directory {}: {e}", self.local_path.display()))?);
        *slot = Some(dir.clone());
        Ok(dir)
    }

    /// Where the writer lock of a tenant lives: beside the state that records its writes (the local
    /// directory file, or the inventory for Graph tenants). See `writer_lock`.
    pub fn writer_lock_path(&self, tenant_id: &str, backend: &Backend) -> PathBuf {
        let state = match backend.kind {
            BackendKind::Local => &self.local_path,
            BackendKind::Graph => &self.inventory_path,
        };
        writer_lock::lock_path(state, tenant_id)
    }

    /// Takes the writer locks of these tenants (see `writer_lock::acquire`).
    pub async fn lock_writers<'a>(
        &self,
        tenants: impl IntoIterator<Item = (&'a str, &'a Backend)>,
        command: &str,
        wait: std::time::Duration,
        on_wait: impl FnMut(&str, Option<&writer_lock::Holder>),
    ) -> Result<writer_lock::WriterLocks, writer_lock::LockError> {
        let paths = tenants.into_iter().map(|(id, b)| (id.trim().to_ascii_lowercase(), self.writer_lock_path(id, b))).collect();
        writer_lock::acquire(&paths, command, wait, on_wait).await
    }

    /// The directory for one tenant.
    pub fn route(&self, tenant_id: &str, backend: &Backend, secrets: &dyn SecretSource) -> Result<Arc<dyn Directory>, String> {
        match backend.kind {
            BackendKind::Local => Ok(self.local()? as Arc<dyn Directory>),
            BackendKind::Graph => {
                let key = tenant_id.trim().to_ascii_lowercase();
                let graph = backend.graph.as_ref().ok_or_else(|| {
                    format!("tenant {tenant_id}: spec.backend.graph is required when spec.backend.type is graph")
                })?;
                let secret = secrets.client_secret(tenant_id, graph)?;
                // A changed backend (client id, endpoints) or a rotated secret builds a new directory.
                let fingerprint = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    serde_json::to_string(graph).unwrap_or_default().hash(&mut h);
                    secret.hash(&mut h);
                    h.finish()
                };
                if let Some((f, d)) = self.graph.lock().map_err(|_| "graph backend lock poisoned".to_string())?.get(&key)
                    && *f == fingerprint
                {
                    return Ok(d.clone());
                }
                let config = GraphConfig::from_backend(tenant_id, graph, secret)?;
                let dir: Arc<dyn Directory> =
                    Arc::new(GraphDirectory::new(config, self.inventory()?).map_err(|e| format!("tenant {tenant_id}: {e}"))?);
                self.graph.lock().map_err(|_| "graph backend lock poisoned".to_string())?.insert(key, (fingerprint, dir.clone()));
                Ok(dir)
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
