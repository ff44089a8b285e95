//! Opening entente's SQLite files (the local directory, the inventory, the sync state) so that several
//! processes may open the same file at once, even a new one: the busy timeout is set before anything
//! else touches the file, and migrations run inside one exclusive transaction that reads the schema
//! version itself, so a second opener waits and then sees the migrations done instead of redoing them.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::DirectoryError;

/// How long an opener or writer waits for another process's transaction before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens `path` (creating its parent directories), `what` naming the file in errors ("directory file").
pub fn open(path: &Path, what: &str) -> Result<Connection, DirectoryError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| DirectoryError::Storage(format!("creating directory {}: {e}", parent.display())))?;
    }
    create_private(path).map_err(|e| DirectoryError::Storage(format!("creating {what} {}: {e}", path.display())))?;
    let conn = Connection::open(path).map_err(|e| DirectoryError::Storage(format!("opening {what} {}: {e}", path.display())))?;
    prepare(conn, what)
}

/// A new state file is readable by its owner only (0600 whatever the umask): it holds app registrations,
/// signing keys and ownership records. SQLite gives its `-wal` and `-shm` files the same mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    match crate::files::create_new_private(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes an existing state file (and its `-wal`/`-shm`) readable by its owner only, for a file that is
/// about to hold secrets (the emulator's signing keys); `Ok(true)` when a mode was changed.
pub fn restrict(path: &Path) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut changed = false;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            let Ok(meta) = std::fs::metadata(&file) else { continue };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                changed = true;
            }
        }
        Ok(changed)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

/// An in-memory database with the same settings (tests).
pub fn open_in_memory(what: &str) -> Result<Connection, DirectoryError> {
    prepare(Connection::open_in_memory().map_err(|e| DirectoryError::Storage(format!("opening an in-memory {what}: {e}")))?, what)
}

fn prepare(conn: Connection, what: &str) -> Result<Connection, DirectoryError> {
    let fail = |doing: &str, e: rusqlite::Error| DirectoryError::Storage(format!("{what}: {doing}: {e}"));
    // First: every statement below may meet another opener's lock.
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail("setting the busy timeout", e))?;
    // WAL lets readers go on while one process writes; NORMAL is durable enough with WAL.
    // Switching to WAL needs the file to itself, and SQLite answers BUSY there without calling the busy
    // handler, so another opener's moment is waited out here.
    let started = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(fail("setting WAL", e)),
        }
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(|e| fail("setting pragmas", e))?;
    Ok(conn)
}

/// Brings the file to `migrations.len()`: migration `i` takes `user_version` from `i` to `i + 1`. All of it
/// in one exclusive transaction, the version read inside it. A file newer than this build is an error.
pub fn migrate(conn: &mut Connection, what: &str, migrations: &[&str]) -> Result<(), DirectoryError> {
    let fail = |doing: String, e: rusqlite::Error| DirectoryError::Storage(format!("{what}: {doing}: {e}"));
    let tx =
        conn.transaction_with_behavior(TransactionBehavior::Exclusive).map_err(|e| fail("starting a migration".into(), e))?;
    let current: i64 =
        tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| fail("reading the schema version".into(), e))?;
    let latest = migrations.len() as i64;
    if current > latest {
        return Err(DirectoryError::Storage(format!(
            "the {what} has schema version {current}, newer than this entente understands ({latest}); upgrade entente"
        )));
    }
    if current == latest {
        return Ok(());
    }
    for (i, sql) in migrations.iter().enumerate().skip(current.max(0) as usize) {
        let version = i + 1;
        tx.execute_batch(sql).map_err(|e| fail(format!("schema migration {version}"), e))?;
    }
    // PRAGMA takes no bound parameters; the value is our own integer.
    tx.execute_batch(&format!("PRAGMA user_version = {latest}")).map_err(|e| fail("recording the schema version".into(), e))?;
    tx.commit().map_err(|e| fail("committing the migrations".into(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[&str] = &["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"];

    #[cfg(unix)]
    #[test]
    fn state_files_are_their_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let new = dir.path().join("new.db");
        let mut c = open(&new, "test file").unwrap();
        migrate(&mut c, "test file", MIGRATIONS).unwrap();
        assert_eq!(mode(&new), 0o600);
        assert_eq!(mode(&dir.path().join("new.db-wal")), 0o600, "SQLite's WAL file follows the database's mode");
        // A file made by an older entente, world-readable: tightened when it is to hold secrets.
        let old = dir.path().join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(restrict(&old).unwrap());
        assert_eq!(mode(&old), 0o600);
        assert!(!restrict(&old).unwrap(), "already private");
    }

    #[test]
    fn many_threads_open_a_new_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut c = open(&path, "test file")?;
                    migrate(&mut c, "test file", MIGRATIONS)
                })
            })
            .collect();
        for o in openers {
            o.join().unwrap().unwrap();
        }
        let c = open(&path, "test file").unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut c = open_in_memory("test file").unwrap();
        migrate(&mut c, "test file", MIGRATIONS).unwrap();
        let e = migrate(&mut c, "test file", &MIGRATIONS[..1]).unwrap_err().to_string();
        assert!(e.contains("schema version 2, newer than this entente understands (1)"), "{e}");
    }
}
