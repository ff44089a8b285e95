//! Reading a file the user named: only a regular file (a FIFO would hang, a device never ends), and at
//! most a limit (read to limit + 1 bytes, so a file that grows or lies about its size is still caught).

use std::io::Read;
use std::path::Path;

/// A manifest file larger than this is refused (100,000 invitations are about 20 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;
/// A secret, token or key file larger than this is not one.
pub const MAX_SECRET_BYTES: u64 = 64 << 10;

/// The bytes of the regular file at `path` (symlinks followed), or why not: not a regular file, larger
/// than `limit` bytes, or unreadable.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    // Checked before opening: opening a FIFO for reading blocks until someone writes to it.
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!("not a regular file ({})", kind_of(&meta.file_type())));
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("more than the {} allowed", size(limit)));
    }
    Ok(bytes)
}

/// Creates `path` for writing, readable by its owner only (0600 whatever the umask); an error of kind
/// `AlreadyExists` when it is there (so two processes never both make it).
pub fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// `read_regular`, as UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, String> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| "not UTF-8 text".to_string())
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a directory" } else { "not a file" }
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 { format!("{} MiB", bytes >> 20) } else { format!("{} KiB", bytes >> 10) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read_and_never_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"12345").unwrap();
        assert_eq!(read_regular(&small, 5).unwrap(), b"12345");
        assert_eq!(read_regular(&small, 4).unwrap_err(), "more than the 0 KiB allowed");
        assert!(read_regular(dir.path(), 10).unwrap_err().contains("a directory"));
        #[cfg(unix)]
        {
            // A device that never ends, behind a symlink: refused without reading.
            let zero = dir.path().join("logo.png");
            std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
            assert_eq!(read_regular(&zero, 10).unwrap_err(), "not a regular file (a device)");
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                assert_eq!(read_regular(&fifo, 10).unwrap_err(), "not a regular file (a named pipe)");
            }
        }
    }
}
