//! File permissions of the SQLite database when it is shared with a web app.
//!
//! The database is private by default (mode 0600). An admin who shares it with the web app
//! does so through a group and a setgid directory (`chmod 2770`): every file created there,
//! including the `-wal`/`-shm` files whichever process opens the database first creates,
//! then takes the directory's group, and SQLite gives those files the database file's mode.
//! So the mode decides whether the sharing works: [`db_file_mode`] makes a new database
//! group-writable exactly when its directory says the group is meant to share it.
//!
//! When the sharing is broken (a `-shm` file created by the web app under its own group,
//! a database file without group write), SQLite only says "unable to open database file"
//! or "attempt to write a readonly database". [`explain_open_failure`] looks at the files
//! as this process sees them and names the one it cannot use, its owner, group and mode,
//! and the fix.

// On Windows the database inherits its folder's ACL (contrib/windows/register-task.ps1 sets
// it); none of the Unix checks apply.
#![cfg_attr(not(unix), allow(dead_code))]

use std::path::Path;

/// The setgid bit of a directory: files created inside take the directory's group.
pub const SETGID: u32 = 0o2000;

/// The mode for a new database file in `dir`: 0660 when the directory is setgid (shared
/// with a group on purpose), else 0600. Applied exactly, whatever the umask.
pub fn db_file_mode(dir: &Path) -> u32 {
    mode_for_dir(dir_mode(dir))
}

/// [`db_file_mode`] for a directory's `st_mode` (None: unknown, treated as private).
pub fn mode_for_dir(dir_mode: Option<u32>) -> u32 {
    match dir_mode {
        Some(m) if m & SETGID != 0 => 0o660,
        _ => 0o600,
    }
}

#[cfg(unix)]
fn dir_mode(dir: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::metadata(dir).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn dir_mode(_dir: &Path) -> Option<u32> {
    None
}

/// Why this process cannot open or write the database at `db`, in one line, when the
/// cause is a file or directory permission (or a read-only file system); None when every
/// file SQLite needs is usable, so the failure is something else.
///
/// Checks, in order: the database file (read and write), its `-shm` and `-wal` files when
/// they exist (read and write), and the directory (write, to create them) when they do not.
#[cfg(unix)]
pub fn explain_open_failure(db: &Path) -> Option<String> {
    use std::path::PathBuf;
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let sidecar = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let (shm, wal) = (sidecar("-shm"), sidecar("-wal"));

    if let Some(problem) = unix::check(db, unix::READ_WRITE) {
        return Some(explain(db, &problem, Role::Database, &dir));
    }
    let mut missing = false;
    for file in [&shm, &wal] {
        if !file.exists() {
            missing = true;
        } else if let Some(problem) = unix::check(file, unix::READ_WRITE) {
            return Some(explain(file, &problem, Role::Sidecar, &dir));
        }
    }
    if missing {
        if let Some(problem) = unix::check(&dir, unix::WRITE_SEARCH) {
            return Some(explain(&dir, &problem, Role::Directory, &dir));
        }
    }
    None
}

#[cfg(not(unix))]
pub fn explain_open_failure(_db: &Path) -> Option<String> {
    None
}

#[derive(Clone, Copy)]
enum Role {
    Database,
    Sidecar,
    Directory,
}

/// What is wrong with one path, as `check` found it.
enum Problem {
    ReadOnlyFs,
    Denied { owner: String, group: String, mode: u32 },
}

const SEE: &str = "see README: sharing the database";

fn explain(path: &Path, problem: &Problem, role: Role, dir: &Path) -> String {
    let what = match role {
        Role::Directory => "create files in",
        _ => "write",
    };
    let (owner, group, mode) = match problem {
        Problem::ReadOnlyFs => {
            return format!(
                "cannot {what} {}: it is on a read-only file system (under systemd, the unit allows writes only in its StateDirectory, /var/lib/notifyctl)",
                path.display()
            )
        }
        Problem::Denied { owner, group, mode } => (owner, group, *mode),
    };
    let found = format!(
        "cannot {what} {}: permission denied (owner {owner}, group {group}, mode {:04o})",
        path.display(),
        mode & 0o7777
    );
    let fix = match role {
        Role::Database => format!(
            "run notifyctl as the file's owner, or share it through a group: make {} setgid and group-writable (chmod 2770) and the file group-writable (chmod 660)",
            dir.display()
        ),
        Role::Sidecar => format!(
            "another user (the web app?) created it without group write or under another group; make {} setgid (chmod 2770) and its files group-writable",
            dir.display()
        ),
        Role::Directory => {
            "SQLite creates the -wal and -shm files there; give this user write access to the directory (for a shared group: chmod 2770)".to_string()
        }
    };
    format!("{found}: {fix} ({SEE})")
}

#[cfg(unix)]
mod unix {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::Problem;

    pub const READ_WRITE: libc::c_int = libc::R_OK | libc::W_OK;
    pub const WRITE_SEARCH: libc::c_int = libc::W_OK | libc::X_OK;

    /// Whether this process (its effective uid and gids, ACLs included: the kernel
    /// decides) may use `path` for `how`; the problem if not.
    pub fn check(path: &Path, how: libc::c_int) -> Option<Problem> {
        let meta = std::fs::metadata(path).ok()?;
        let c = CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a valid NUL-terminated path; faccessat only reads it.
        let rc = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), how, libc::AT_EACCESS) };
        if rc == 0 {
            return None;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EROFS) => Some(Problem::ReadOnlyFs),
            Some(libc::EACCES) | Some(libc::EPERM) => Some(Problem::Denied {
                owner: name_of(meta.uid(), "/etc/passwd"),
                group: name_of(meta.gid(), "/etc/group"),
                mode: meta.mode(),
            }),
            _ => None,
        }
    }

    /// The name of a uid/gid from the local files, else the number (no NSS lookup: this
    /// only words an error message).
    fn name_of(id: u32, file: &str) -> String {
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let mut f = line.split(':');
                    let name = f.next()?;
                    let num: u32 = f.nth(1)?.parse().ok()?;
                    (num == id).then(|| name.to_string())
                })
            })
            .unwrap_or_else(|| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setgid_directory_means_group_shared() {
        assert_eq!(mode_for_dir(Some(0o40000 | SETGID | 0o770)), 0o660);
        assert_eq!(mode_for_dir(Some(0o40000 | 0o770)), 0o600);
        assert_eq!(mode_for_dir(Some(0o40000 | 0o755)), 0o600);
        assert_eq!(mode_for_dir(None), 0o600);
    }

    #[test]
    fn explanation_names_file_owner_group_mode_and_fix() {
        let p = Problem::Denied {
            owner: "www-data".into(),
            group: "www-data".into(),
            mode: 0o100644,
        };
        let dir = Path::new("/var/lib/notifyctl");
        let line = explain(&dir.join("notifyctl.db-shm"), &p, Role::Sidecar, dir);
        assert_eq!(
            line,
            "cannot write /var/lib/notifyctl/notifyctl.db-shm: permission denied (owner www-data, group www-data, mode 0644): \
             another user (the web app?) created it without group write or under another group; \
             make /var/lib/notifyctl setgid (chmod 2770) and its files group-writable (see README: sharing the database)"
        );
        assert!(!line.contains('\n'));
    }

    #[cfg(unix)]
    #[test]
    fn usable_files_need_no_explanation() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"").unwrap();
        assert_eq!(explain_open_failure(&db), None);
    }
}
