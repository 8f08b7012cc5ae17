//! Secrets (the SMTP password, the webhook signing secret, the Whereby API key): read from
//! a file or an environment variable the config names, never from the config itself or
//! the command line, and never printed.
//!
//! Each secret setting `X_env` has a sibling `X_file`. The file wins when it is set: it is
//! how systemd (`LoadCredential=` puts it in `$CREDENTIALS_DIRECTORY`), Docker and
//! Kubernetes hand secrets to a service without putting them in its environment (which
//! child processes inherit and `/proc/PID/environ` shows). `${NAME}` in the path is
//! replaced by that environment variable, so a config can say
//! `password_file = "${CREDENTIALS_DIRECTORY}/smtp-password"`. One trailing line break
//! (`\n` or `\r\n`, as `echo` and editors leave) is not part of the secret.
//!
//! A file that every local user may read is refused: the secret has leaked already, and
//! the error says how to fix it (`chmod o-rwx`, or `mode`/`defaultMode` for Docker and
//! Kubernetes secrets, whose defaults are 0444 and 0644). Group access is allowed: a group
//! is how systemd credentials, `root:notifyctl 0640` files and Kubernetes' `fsGroup` give a
//! secret to a service that does not own it; `config check` shows it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::user_error;
use crate::input::printable;

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where one secret setting looks.
#[derive(Debug, Clone, Copy)]
pub struct SecretSetting<'a> {
    /// What it is, for messages: "the SMTP password".
    pub what: &'a str,
    /// The config keys, for messages: "[email.smtp] password".
    pub key: &'a str,
    /// The name of the environment variable (`X_env`); empty: none.
    pub env: &'a str,
    /// The path of the file (`X_file`); empty: none.
    pub file: &'a str,
}

/// Where a secret was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "set from file {}", printable(&p.display().to_string(), 200)),
            Source::Env(name) => write!(f, "set from environment variable {}", printable(name, 100)),
        }
    }
}

/// Largest secret file read: a secret is a line, not a document.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

impl SecretSetting<'_> {
    /// The `*_file` and `*_env` key names, for messages.
    fn keys(&self) -> String {
        format!("{}_file / {}_env", self.key, self.key)
    }

    /// The secret, from the file when it is set, else from the environment variable;
    /// `None` when neither is set. A file that cannot be used is an error (exit 2), never a
    /// fallback to the variable: the admin asked for the file.
    pub fn read(&self) -> anyhow::Result<Option<(Secret, Source)>> {
        if !self.file.is_empty() {
            let path = expand(self.file)
                .map_err(|e| user_error(format!("{} ({}_file): {e}", self.what, self.key)))?;
            let secret = read_file(&path)
                .map_err(|e| user_error(format!("{} ({}_file): {e}", self.what, self.key)))?;
            return Ok(Some((secret, Source::File(path))));
        }
        if self.env.is_empty() {
            return Ok(None);
        }
        match std::env::var(self.env) {
            Ok(v) if !v.is_empty() => Ok(Some((Secret(v), Source::Env(self.env.to_string())))),
            _ => Ok(None),
        }
    }

    /// The secret, which must be set: `need` says what for, in the error.
    pub fn require(&self, need: &str) -> anyhow::Result<Secret> {
        match self.read()? {
            Some((secret, _)) => Ok(secret),
            None if self.env.is_empty() => Err(user_error(format!(
                "{} is not set: {need}; neither {}_file nor {}_env is set",
                self.what, self.key, self.key
            ))),
            None => Err(user_error(format!(
                "{} is not set: {need}; environment variable {} is not set ({}_env), nor {}_file",
                self.what,
                printable(self.env, 100),
                self.key,
                self.key
            ))),
        }
    }

    /// One line for `config show` / `config check`: where the secret comes from, or why it
    /// cannot be read; never the secret.
    pub fn describe(&self) -> Result<String, String> {
        match self.read() {
            Ok(Some((_, Source::File(path)))) => {
                let note = group_note(&path);
                Ok(format!("{}{note}", Source::File(path)))
            }
            Ok(Some((_, source))) => Ok(source.to_string()),
            Ok(None) => Ok(format!("not set ({})", self.keys())),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}

/// Replace each `${NAME}` in a secret file's path by the environment variable's value.
pub fn expand(path: &str) -> anyhow::Result<PathBuf> {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            anyhow::bail!("'{}' has a '${{' without its '}}'", printable(path, 200));
        };
        let name = &after[..end];
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => {
                let hint = if name == "CREDENTIALS_DIRECTORY" {
                    " (systemd sets it for a unit with LoadCredential=; run by hand, set it or name the file directly)"
                } else {
                    ""
                };
                anyhow::bail!(
                    "'{}' uses ${{{}}}, which is not set{hint}",
                    printable(path, 200),
                    printable(name, 60)
                );
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(PathBuf::from(out))
}

/// Read a secret file: no more than [`MAX_SECRET_BYTES`], not readable by every user, one
/// line of text (a trailing line break dropped), not empty.
pub fn read_file(path: &Path) -> anyhow::Result<Secret> {
    use std::io::Read;
    let shown = || printable(&path.display().to_string(), 200);
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", shown()))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", shown()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a regular file", shown());
    }
    check_private(path, &meta)?;
    if meta.len() > MAX_SECRET_BYTES {
        anyhow::bail!(
            "{} is larger than {MAX_SECRET_BYTES} bytes: not a secret file",
            shown()
        );
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", shown()))?;
    let Ok(mut text) = String::from_utf8(bytes) else {
        anyhow::bail!("{} is not UTF-8 text", shown());
    };
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        anyhow::bail!("{} is empty", shown());
    }
    // A secret goes into protocol lines (SMTP AUTH, HTTP headers): a line break or a control
    // character would be a broken secret at best and an injection at worst.
    if text.chars().any(char::is_control) {
        anyhow::bail!(
            "{} holds a line break or a control character inside the secret (only one trailing line break is allowed)",
            shown()
        );
    }
    Ok(Secret(text))
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o004 != 0 {
        anyhow::bail!(
            "{} is readable by every local user (mode {mode:04o}): refusing to use it; `chmod o-rwx` it (Docker secrets: mode: 0400; Kubernetes: defaultMode: 0440)",
            printable(&path.display().to_string(), 200)
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &std::fs::Metadata) -> anyhow::Result<()> {
    Ok(())
}

/// ", readable by group N" for a group-readable file (allowed, but worth seeing).
#[cfg(unix)]
fn group_note(path: &Path) -> String {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o040 != 0 => format!(" (readable by group {})", m.gid()),
        _ => String::new(),
    }
}

#[cfg(not(unix))]
fn group_note(_path: &Path) -> String {
    String::new()
}

/// The secret settings of a config, in the order `config show` and `config check` list them.
pub fn settings(config: &crate::config::Config) -> [SecretSetting<'_>; 3] {
    [
        smtp_password(&config.email.smtp),
        webhook_secret(&config.webhook),
        whereby_api_key(&config.video),
    ]
}

pub fn smtp_password(c: &crate::config::SmtpConfig) -> SecretSetting<'_> {
    SecretSetting {
        what: "the SMTP password",
        key: "[email.smtp] password",
        env: &c.password_env,
        file: &c.password_file,
    }
}

pub fn webhook_secret(c: &crate::config::WebhookConfig) -> SecretSetting<'_> {
    SecretSetting {
        what: "the webhook signing secret",
        key: "[webhook] secret",
        env: &c.secret_env,
        file: &c.secret_file,
    }
}

pub fn whereby_api_key(c: &crate::config::VideoConfig) -> SecretSetting<'_> {
    SecretSetting {
        what: "the Whereby API key",
        key: "[video] whereby_api_key",
        env: &c.whereby_api_key_env,
        file: &c.whereby_api_key_file,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn secret_file(dir: &Path, content: &str, mode: u32) -> PathBuf {
        let p = dir.join("s");
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn one_trailing_line_break_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [("pw\n", "pw"), ("pw\r\n", "pw"), ("pw", "pw"), (" p w ", " p w ")] {
            let p = secret_file(dir.path(), content, 0o600);
            assert_eq!(read_file(&p).unwrap().expose(), want, "{content:?}");
        }
        for bad in ["", "\n", "pw\n\n", "p\nw", "p\u{7}w"] {
            let p = secret_file(dir.path(), bad, 0o600);
            assert!(read_file(&p).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn a_file_every_user_can_read_is_refused_group_access_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = secret_file(dir.path(), "hunter2\n", 0o644);
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("readable by every local user (mode 0644)"), "{e}");
        assert!(!e.contains("hunter2"));
        assert!(!e.contains('\n'), "one line: {e}");
        let p = secret_file(dir.path(), "hunter2\n", 0o640);
        assert_eq!(read_file(&p).unwrap().expose(), "hunter2");
    }

    #[test]
    fn a_path_may_use_an_environment_variable() {
        assert_eq!(expand("/run/x").unwrap(), PathBuf::from("/run/x"));
        let e = expand("${NOTIFYCTL_TEST_SURELY_UNSET}/x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("NOTIFYCTL_TEST_SURELY_UNSET") && e.contains("not set"),
            "{e}"
        );
        let e = expand("${CREDENTIALS_DIRECTORY").unwrap_err().to_string();
        assert!(e.contains("without"), "{e}");
        let home = std::env::var("PATH").unwrap();
        assert_eq!(expand("${PATH}/a").unwrap(), PathBuf::from(format!("{home}/a")));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", Secret("x".into())), "Secret(..)");
    }
}
