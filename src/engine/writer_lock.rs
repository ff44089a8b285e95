//! One writer per tenant at a time. Two pipelines applying the same manifests would otherwise each plan
//! `create` from their own snapshot and both invite the same person. A writer (`apply`, `sync run`, the
//! controller) holds the tenant's lock from before it reads the directory until its last write, so the
//! second one plans against what the first wrote.
//!
//! The lock is an OS file lock (`flock`) on `{state file}.locks/{tenant id}.lock`, beside the state it
//! protects: the local directory file for local tenants, the inventory for Graph tenants. The kernel drops
//! it when the process dies, even by `kill -9`, so a crash never leaves a stale lock. The file's content
//! says who holds it and since when, for the waiter's message. Locks are taken in tenant order, so two
//! writers of overlapping tenant sets never deadlock. `plan` never takes one.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often a waiting writer tries again.
const POLL: Duration = Duration::from_millis(50);

/// Who holds a tenant's writer lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// What holds it: `entente apply`, `entente sync run`, `entente controller`.
    pub command: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339.
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {} on {}) since {}", self.command, self.pid, self.host, self.since)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "tenant {tenant} is being written by {holder}; gave up after waiting {waited:?} (another writer must finish first; \
         raise --lock-timeout to wait longer)",
        holder = holder.as_ref().map_or_else(|| "another entente process".to_string(), Holder::to_string)
    )]
    Timeout { tenant: String, holder: Option<Holder>, waited: Duration },
    #[error("cannot lock tenant {tenant} for writing ({path}): {message}")]
    Io { tenant: String, path: String, message: String },
}

/// The writer locks of a set of tenants; dropping it releases them.
#[derive(Debug, Default)]
pub struct WriterLocks {
    held: Vec<(String, File)>,
}

impl WriterLocks {
    /// The tenant ids held, in the order they were taken.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.held.iter().map(|(t, _)| t.as_str())
    }
}

impl Drop for WriterLocks {
    fn drop(&mut self) {
        // Released in reverse order; the holder's note is left for the next one to overwrite.
        while let Some((_, file)) = self.held.pop() {
            let _ = file.unlock();
        }
    }
}

/// The lock file of `tenant_id` beside `state_file`.
pub fn lock_path(state_file: &Path, tenant_id: &str) -> PathBuf {
    let mut dir = state_file.as_os_str().to_owned();
    dir.push(".locks");
    PathBuf::from(dir).join(format!("{}.lock", tenant_id.trim().to_ascii_lowercase()))
}

/// Takes the lock of every tenant (tenant id → lock file), waiting at most `wait` for each;
/// `on_wait` is told once per tenant that another writer holds it.
pub async fn acquire(
    locks: &BTreeMap<String, PathBuf>,
    command: &str,
    wait: Duration,
    mut on_wait: impl FnMut(&str, Option<&Holder>),
) -> Result<WriterLocks, LockError> {
    let mut held = WriterLocks::default();
    for (tenant, path) in locks {
        let file = acquire_one(tenant, path, command, wait, &mut on_wait).await?;
        held.held.push((tenant.clone(), file));
    }
    Ok(held)
}

async fn acquire_one(
    tenant: &str,
    path: &Path,
    command: &str,
    wait: Duration,
    on_wait: &mut impl FnMut(&str, Option<&Holder>),
) -> Result<File, LockError> {
    let io = |e: std::io::Error| LockError::Io {
        tenant: tenant.to_string(),
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                if started.elapsed() >= wait {
                    return Err(LockError::Timeout { tenant: tenant.to_string(), holder, waited: started.elapsed() });
                }
                if !told {
                    on_wait(tenant, holder.as_ref());
                    told = true;
                }
                tokio::time::sleep(POLL).await;
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let holder = Holder {
        command: command.to_string(),
        pid: std::process::id(),
        host: host_name(),
        since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let note = serde_json::to_vec(&holder).unwrap_or_default();
    file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(&note)).and_then(|()| file.flush()).map_err(io)?;
    Ok(file)
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
        .unwrap_or_else(|| "unknown host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locks(dir: &Path, tenants: &[&str]) -> BTreeMap<String, PathBuf> {
        tenants.iter().map(|t| (t.to_string(), lock_path(&dir.join("directory.db"), t))).collect()
    }

    #[tokio::test]
    async fn a_second_writer_waits_then_says_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(&locks(dir.path(), &["t1", "t2"]), "entente apply", Duration::ZERO, |_, _| {}).await.unwrap();
        assert_eq!(first.tenants().collect::<Vec<_>>(), ["t1", "t2"]);
        let mut waited_for = vec![];
        let e = acquire(&locks(dir.path(), &["t2"]), "entente sync run", Duration::from_millis(120), |t, h| {
            waited_for.push((t.to_string(), h.cloned()))
        })
        .await
        .unwrap_err();
        let LockError::Timeout { tenant, holder: Some(holder), .. } = &e else { panic!("{e:?}") };
        assert_eq!((tenant.as_str(), holder.command.as_str(), holder.pid), ("t2", "entente apply", std::process::id()));
        assert!(e.to_string().contains("tenant t2 is being written by entente apply (pid"), "{e}");
        assert_eq!(waited_for.len(), 1);
        // Other tenants are free; once released, t2 is too.
        acquire(&locks(dir.path(), &["t3"]), "entente apply", Duration::ZERO, |_, _| {}).await.unwrap();
        drop(first);
        acquire(&locks(dir.path(), &["t2"]), "entente sync run", Duration::ZERO, |_, _| {}).await.unwrap();
    }

    #[tokio::test]
    async fn a_waiting_writer_gets_the_lock_when_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(&locks(dir.path(), &["t1"]), "entente apply", Duration::ZERO, |_, _| {}).await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(first);
        });
        let second = acquire(&locks(dir.path(), &["t1"]), "entente apply", Duration::from_secs(10), |_, _| {}).await;
        assert!(second.is_ok(), "{second:?}");
        release.await.unwrap();
    }
}
