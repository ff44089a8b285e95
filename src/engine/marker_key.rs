//! The key secret markers are made under (`core::identity::MarkerKey`), kept beside entente's other
//! state (`secret-marker.key` next to the directory file, mode 0600): 32 random bytes, made by the first
//! run that writes. A preview (`plan`) never creates it: without one, nothing entente wrote carries a
//! marker yet, so a key for the process alone gives the same answers.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::core::identity::MarkerKey;

pub const MARKER_KEY_FILE: &str = "secret-marker.key";

/// Where the key of the state beside `local_path` (the directory file) lives.
pub fn path_beside(local_path: &Path) -> PathBuf {
    local_path.with_file_name(MARKER_KEY_FILE)
}

/// The key at `path`; when there is none, a new one written there (`create`) or this process's own.
pub fn load(path: &Path, create: bool) -> Result<MarkerKey, String> {
    match read(path) {
        Ok(Some(key)) => return Ok(key),
        Ok(None) if !create => return Ok(MarkerKey::ephemeral()),
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    match crate::files::create_new_private(path) {
        Ok(mut f) => {
            f.write_all(format!("{hex}\n").as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))?;
            f.sync_all().map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(MarkerKey::from_bytes(bytes))
        }
        // Another process made it first: its key is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(path)?.ok_or_else(|| format!("{} exists but holds no key", path.display()))
        }
        Err(e) => Err(format!("creating {}: {e}", path.display())),
    }
}

fn read(path: &Path) -> Result<Option<MarkerKey>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::files::read_regular_text(path, 1024).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let hex = text.trim();
    let bytes: Option<Vec<u8>> =
        (hex.len() == 64).then(|| (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect()).flatten();
    match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(b) => Ok(Some(MarkerKey::from_bytes(b))),
        // A written key is still being flushed by its maker: an empty file is not yet a key.
        None if hex.is_empty() => Ok(None),
        None => Err(format!("{} is not a secret-marker key (64 hex digits)", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(MARKER_KEY_FILE);
        assert_eq!(load(&path, false).unwrap(), MarkerKey::ephemeral(), "a preview creates nothing");
        assert!(!path.exists());
        let made = load(&path, true).unwrap();
        assert_eq!(load(&path, false).unwrap(), made);
        assert_eq!(load(&path, true).unwrap(), made, "made once");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        assert!(load(&path, false).unwrap_err().contains("is not a secret-marker key"));
    }
}
