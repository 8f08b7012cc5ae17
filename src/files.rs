//! Files notifyctl creates (the `.eml` outbox, the metrics file): readable by their
//! owner only, written atomically (a reader never sees half a file), and never written
//! through a symlink that notifyctl did not create.
//!
//! A temporary file gets an unpredictable name and is created exclusively (`O_EXCL`, via
//! the `tempfile` crate), then renamed over the target; rename replaces a symlink at the
//! target rather than following it. A directory that other local users may write to is
//! refused: any of them could otherwise swap the files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Create `dir` (and its parents) readable by the owner only, if missing; refuse it if
/// other users may write to it or it is a symlink owned by someone else.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)
            .with_context(|| format!("creating the directory {}", dir.display()))?;
    }
    check_dir(dir)
}

#[cfg(unix)]
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = current_uid();
    let link = std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if link.file_type().is_symlink() && link.uid() != me && link.uid() != 0 {
        anyhow::bail!(
            "{} is a symlink owned by another user (uid {}): refusing to write through it",
            dir.display(),
            link.uid()
        );
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    if meta.permissions().mode() & 0o002 != 0 {
        anyhow::bail!(
            "{} can be written by every local user (mode {:o}): refusing to write there; use a private directory (chmod o-w)",
            dir.display(),
            meta.permissions().mode() & 0o7777
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

#[cfg(unix)]
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file we just created is our effective uid; /proc/self avoids libc.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// Write `bytes` to `dir/name` atomically, private to the owner. Returns the path.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    write_atomic_mode(dir, name, bytes, false)
}

/// As [`write_atomic`], but readable by every user (0644): for files another program's
/// user reads and that hold nothing private (node_exporter and the metrics file).
pub fn write_atomic_readable(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    write_atomic_mode(dir, name, bytes, true)
}

fn write_atomic_mode(dir: &Path, name: &str, bytes: &[u8], readable: bool) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    // Random name, created exclusively, mode 0600; removed if anything below fails.
    let mut tmp = tempfile::Builder::new()
        .prefix(".notifyctl-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    if readable {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = readable;
    tmp.as_file().sync_data()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_atomically_and_privately_replacing_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("out");
        private_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("m.eml")).unwrap();
        let path = write_atomic(&out, "m.eml", b"mail").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mail");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let left: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("every local user"), "{e}");
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        private_dir(&out).unwrap();
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
