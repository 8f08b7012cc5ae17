//! The optional TOML configuration: every key has a default, so no file is needed.
//!
//! Unknown keys are refused (a typo in a cron box's config should fail loudly, not be
//! ignored), durations and zones are checked at load time, and secrets are never stored
//! here: the file names the environment variables, or the files, that hold them
//! (`secrets.rs` reads them).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::user_error;
use crate::input::{format_duration, parse_duration, parse_tz};
pub use crate::messages::request::BodyFormat;
use crate::messages::{Kind, Locale};

/// A duration written as in the CLI (`10m`, `1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub TimeDelta);

impl Dur {
    pub fn minutes(m: i64) -> Self {
        Dur(TimeDelta::minutes(m))
    }
    pub fn seconds(s: i64) -> Self {
        Dur(TimeDelta::seconds(s))
    }
    pub fn std(self) -> std::time::Duration {
        self.0.to_std().unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Dur)
            .map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The directory of the config file the settings came from (`None`: the defaults).
    /// Not a setting: relative paths are resolved against it.
    #[serde(skip)]
    pub source_dir: Option<PathBuf>,
    pub database: DatabaseConfig,
    pub reminders: RemindersConfig,
    pub tick: TickConfig,
    pub email: EmailConfig,
    pub video: VideoConfig,
    pub webhook: WebhookConfig,
    pub sms: SmsConfig,
    pub ntfy: NtfyConfig,
    pub preferences: PreferencesConfig,
    pub agenda: AgendaConfig,
    pub templates: TemplatesConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Relative paths are read from the config file's directory.
    pub path: PathBuf,
    /// A `postgres://` or `postgresql://` URL; when set, it is used instead of `path`.
    /// Shown with its password masked.
    #[serde(serialize_with = "masked_url")]
    pub url: String,
    pub busy_timeout: Dur,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("notifyctl.db"),
            url: String::new(),
            busy_timeout: Dur::seconds(5),
        }
    }
}

/// `config show` prints the settings: a password in the URL never appears.
fn masked_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::store::postgres::connect::mask_password(url))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemindersConfig {
    pub offsets: Vec<Dur>,
    pub grace: Dur,
    pub default_timezone: String,
    pub default_locale: String,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        RemindersConfig {
            offsets: vec![Dur::minutes(30), Dur::minutes(5)],
            grace: Dur::minutes(10),
            default_timezone: "UTC".into(),
            default_locale: "fr".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TickConfig {
    /// Stop claiming new work after this long, so ticks started every minute never pile up.
    pub max_runtime: Dur,
    /// Deliveries claimed per transaction.
    pub batch_size: u32,
    /// How long a claim holds before another tick may take it over (a crashed tick's work).
    pub claim_timeout: Dur,
    /// How long past `max_runtime` the answer to a message already sent is awaited (a
    /// message abandoned unanswered is retried and may then arrive twice).
    pub answer_grace: Dur,
    /// healthchecks.io-style pings: `URL/start` when a tick starts, `URL` when it succeeds,
    /// `URL/fail` when it fails (`heartbeat.rs`); empty: none.
    pub heartbeat_url: String,
    pub heartbeat_timeout: Dur,
}

impl Default for TickConfig {
    fn default() -> Self {
        TickConfig {
            max_runtime: Dur::seconds(45),
            batch_size: 200,
            claim_timeout: Dur::minutes(2),
            answer_grace: Dur::seconds(15),
            heartbeat_url: String::new(),
            heartbeat_timeout: Dur::seconds(3),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Smtp,
    Sendmail,
    File,
    Stdout,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub transport: Transport,
    pub from: String,
    pub reply_to: String,
    /// For `transport = "file"`; relative paths are read from the SQLite file's directory
    /// (PostgreSQL: the config file's, else the current directory).
    pub dir: PathBuf,
    pub sendmail_command: String,
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure up to `backoff_max`.
    pub backoff_base: Dur,
    pub backoff_max: Dur,
    /// Adds `List-Unsubscribe` headers when set.
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: String,
    /// Shown in message footers.
    pub app_name: String,
    pub smtp: SmtpConfig,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            transport: Transport::File,
            from: "Notifications <no-reply@example.com>".into(),
            reply_to: String::new(),
            dir: PathBuf::from("outbox"),
            sendmail_command: "sendmail".into(),
            max_attempts: 8,
            backoff_base: Dur::minutes(1),
            backoff_max: Dur::minutes(360),
            unsubscribe_url: String::new(),
            unsubscribe_mailto: String::new(),
            app_name: "notifyctl".into(),
            smtp: SmtpConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    /// The name of the environment variable holding the password, never the password.
    pub password_env: String,
    /// A file holding the password (wins over `password_env`); empty: none.
    pub password_file: String,
    pub timeout: Dur,
    /// EHLO name; empty: this machine's host name.
    pub hello_name: String,
    /// Connections used at once by a tick (for providers that allow several); each message
    /// is still committed on its own.
    pub connections: u32,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 587,
            tls: TlsMode::Starttls,
            username: String::new(),
            password_env: "NOTIFYCTL_SMTP_PASSWORD".into(),
            password_file: String::new(),
            timeout: Dur::seconds(20),
            hello_name: String::new(),
            connections: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoProvider {
    Jitsi,
    Whereby,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    pub provider: VideoProvider,
    pub jitsi_base_url: String,
    pub whereby_api_url: String,
    pub whereby_api_key_env: String,
    /// A file holding the API key (wins over `whereby_api_key_env`); empty: none.
    pub whereby_api_key_file: String,
    pub whereby_timeout: Dur,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            provider: VideoProvider::Jitsi,
            jitsi_base_url: "https://meet.jit.si".into(),
            whereby_api_url: "https://api.whereby.dev/v1".into(),
            whereby_api_key_env: "NOTIFYCTL_WHEREBY_API_KEY".into(),
            whereby_api_key_file: String::new(),
            whereby_timeout: Dur::seconds(5),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Empty: no webhook channel.
    pub url: String,
    pub secret_env: String,
    /// A file holding the secret (wins over `secret_env`); empty: none.
    pub secret_file: String,
    pub timeout: Dur,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            secret_env: "NOTIFYCTL_WEBHOOK_SECRET".into(),
            secret_file: String::new(),
            timeout: Dur::seconds(5),
        }
    }
}

/// How an HTTP channel authenticates; the secret (password or token) comes from the file
/// `secret_file` or the environment variable named by `secret_env` (`secrets.rs`), never
/// from the config itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpAuth {
    None,
    /// `username` and the secret as the password.
    Basic,
    /// `Authorization: Bearer <secret>`.
    Bearer,
}

impl HttpAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpAuth::None => "none",
            HttpAuth::Basic => "basic",
            HttpAuth::Bearer => "bearer",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// The gateway's URL. Empty: no SMS channel.
    pub url: String,
    /// POST, PUT or GET.
    pub method: String,
    pub format: BodyFormat,
    /// A template of the request body over `to`, `from`, `text`, `user_id`, `delivery_id`
    /// and `kind`.
    pub body: String,
    /// The sender (a number or an alphanumeric id), as `{{ from }}` in the body.
    pub from: String,
    pub auth: HttpAuth,
    pub username: String,
    /// The NAME of the environment variable holding the password or token.
    pub secret_env: String,
    /// A file holding the password or token (wins over `secret_env`); empty: none.
    pub secret_file: String,
    pub timeout: Dur,
}

/// The built-in `[sms] body` (Twilio's form fields): known to work as a form body, so
/// reading a config that keeps both does not compile it again (a template costs about half a millisecond of
/// every command's start).
pub const DEFAULT_SMS_BODY: &str = "To={{ to }}&From={{ from }}&Body={{ text }}";

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            url: String::new(),
            method: "POST".into(),
            format: BodyFormat::Form,
            body: DEFAULT_SMS_BODY.into(),
            from: String::new(),
            auth: HttpAuth::None,
            username: String::new(),
            secret_env: "NOTIFYCTL_SMS_SECRET".into(),
            secret_file: String::new(),
            timeout: Dur::seconds(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NtfyConfig {
    /// The ntfy server (`https://ntfy.sh` or your own). Empty: no push channel.
    pub url: String,
    pub auth: HttpAuth,
    pub username: String,
    /// The NAME of the environment variable holding the password or access token.
    pub secret_env: String,
    /// A file holding the password or access token (wins over `secret_env`); empty: none.
    pub secret_file: String,
    /// 1 (min) to 5 (max); 3 is ntfy's default, used for the other kinds.
    pub reminder_priority: u8,
    pub timeout: Dur,
}

impl Default for NtfyConfig {
    fn default() -> Self {
        NtfyConfig {
            url: String::new(),
            auth: HttpAuth::None,
            username: String::new(),
            secret_env: "NOTIFYCTL_NTFY_SECRET".into(),
            secret_file: String::new(),
            reminder_priority: 4,
            timeout: Dur::seconds(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreferencesConfig {
    /// Kinds that go out on every channel a user has, whatever their preferences.
    pub mandatory: Vec<Kind>,
}

impl Default for PreferencesConfig {
    fn default() -> Self {
        PreferencesConfig {
            mandatory: vec![Kind::Cancelled, Kind::Rescheduled],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgendaConfig {
    /// Local time (`HH:MM`, in each user's zone) of the daily agenda. Empty: no agenda.
    pub at: String,
    /// How late a missed agenda may still go out.
    pub grace: Dur,
}

impl Default for AgendaConfig {
    fn default() -> Self {
        AgendaConfig {
            at: String::new(),
            grace: Dur::minutes(60),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// node_exporter's textfile collector: the `.prom` file written after each tick
    /// (`metrics.rs`); empty: none.
    pub textfile: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplatesConfig {
    /// A directory whose files replace the embedded templates of the same name.
    pub dir: String,
}

impl Config {
    /// Load the file at `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            user_error(format!(
                "cannot read config file {}: {e} (check --config / NOTIFYCTL_CONFIG)",
                path.display()
            ))
        })?;
        let mut config =
            Config::parse(&text).with_context(|| format!("in config file {}", path.display()))?;
        // Relative paths in a config file are relative to that file, not to cron's cwd.
        let base = path.parent().unwrap_or(Path::new(""));
        config.source_dir = Some(base.to_path_buf());
        if config.database.path.is_relative() {
            config.database.path = base.join(&config.database.path);
        }
        for path in [
            &mut config.templates.dir,
            &mut config.metrics.textfile,
            &mut config.email.smtp.password_file,
            &mut config.webhook.secret_file,
            &mut config.sms.secret_file,
            &mut config.ntfy.secret_file,
            &mut config.video.whereby_api_key_file,
        ] {
            // `${CREDENTIALS_DIRECTORY}/...` is expanded when the secret is read.
            if !path.is_empty() && !path.starts_with("${") && Path::new(path.as_str()).is_relative() {
                *path = base.join(path.as_str()).display().to_string();
            }
        }
        Ok(config)
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            // toml's message spans several lines with a source excerpt; keep the first.
            let msg = e.message().to_string();
            let at = e
                .span()
                .map(|s| {
                    // Count bytes, not chars: a span may point inside a multi-byte character.
                    let upto = s.start.min(text.len());
                    let line = text.as_bytes()[..upto].iter().filter(|b| **b == b'\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            user_error(format!("invalid config{at}: {msg}"))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = &self.database.url;
        if !url.is_empty() && !crate::store::postgres::connect::is_postgres_url(url) {
            return Err(user_error(format!(
                "invalid config: database.url '{}' must start with postgres:// or postgresql:// (a SQLite file goes in database.path)",
                crate::input::printable(&crate::store::postgres::connect::mask_password(url), 100)
            )));
        }
        let r = &self.reminders;
        parse_tz(&r.default_timezone)
            .map_err(|e| user_error(format!("invalid config: reminders.default_timezone: {e}")))?;
        r.default_locale
            .parse::<Locale>()
            .map_err(|e| user_error(format!("invalid config: reminders.default_locale: {e}")))?;
        if r.offsets.iter().any(|o| o.0 <= TimeDelta::zero()) {
            return Err(user_error(
                "invalid config: reminders.offsets must be positive durations like \"30m\"",
            ));
        }
        // Reminders are decided by minute-by-minute ticks and keyed in whole minutes: a
        // "30s" offset would never be sent and "90s" would merge with "1m".
        if let Some(o) = r.offsets.iter().find(|o| o.0.num_seconds() % 60 != 0) {
            return Err(user_error(format!(
                "invalid config: reminders.offsets: {} is not a whole number of minutes (write \"1m\", \"2m\", ...)",
                format_duration(o.0)
            )));
        }
        if self.tick.claim_timeout.0 < TimeDelta::seconds(20) + self.tick.answer_grace.0 * 2 {
            return Err(user_error(format!(
                "invalid config: tick.claim_timeout must be at least 20s + twice tick.answer_grace ({}): a claim must outlast one exchange with a server",
                format_duration(TimeDelta::seconds(20) + self.tick.answer_grace.0 * 2)
            )));
        }
        if self.tick.max_runtime.0 <= TimeDelta::zero() {
            return Err(user_error("invalid config: tick.max_runtime must be positive"));
        }
        if self.email.max_attempts == 0 {
            return Err(user_error(
                "invalid config: email.max_attempts must be at least 1",
            ));
        }
        if !(1..=16).contains(&self.email.smtp.connections) {
            return Err(user_error(
                "invalid config: email.smtp.connections must be between 1 and 16",
            ));
        }
        if self.tick.batch_size == 0 {
            return Err(user_error("invalid config: tick.batch_size must be at least 1"));
        }
        if !self.webhook.url.is_empty() {
            let ok = url::Url::parse(&self.webhook.url)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(user_error(format!(
                    "invalid config: webhook.url '{}' is not an http(s) URL",
                    crate::input::printable(&self.webhook.url, 100)
                )));
            }
        }
        if !self.tick.heartbeat_url.is_empty() {
            let ok = url::Url::parse(&self.tick.heartbeat_url)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false);
            if !ok {
                return Err(user_error(format!(
                    "invalid config: tick.heartbeat_url '{}' is not an http(s) URL",
                    crate::input::printable(&self.tick.heartbeat_url, 100)
                )));
            }
        }
        // node_exporter's textfile collector reads `*.prom` files only: another name would
        // be written every minute and never read.
        if !self.metrics.textfile.is_empty() && !self.metrics.textfile.ends_with(".prom") {
            return Err(user_error(format!(
                "invalid config: metrics.textfile '{}' must end in .prom (node_exporter's textfile collector reads only those)",
                crate::input::printable(&self.metrics.textfile, 100)
            )));
        }
        self.validate_people()?;
        if self.email.transport != Transport::None {
            crate::input::parse_mailbox(&self.email.from)
                .map_err(|e| user_error(format!("invalid config: email.from: {e}")))?;
        }
        Ok(())
    }

    /// The settings of preferences, SMS, push and the agenda.
    fn validate_people(&self) -> anyhow::Result<()> {
        let http_url = |key: &str, value: &str| -> anyhow::Result<()> {
            // The URL parser silently drops tabs and line breaks: a value holding one is a
            // pasting mistake, not the URL it would become.
            let ok = !value.chars().any(|c| c.is_control() || c.is_whitespace())
                && url::Url::parse(value)
                    .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .unwrap_or(false);
            if ok {
                Ok(())
            } else {
                Err(user_error(format!(
                    "invalid config: {key} '{}' is not an http(s) URL",
                    crate::input::printable(value, 100)
                )))
            }
        };
        if !self.sms.url.is_empty() {
            http_url("sms.url", &self.sms.url)?;
        }
        if !matches!(self.sms.method.as_str(), "POST" | "PUT" | "GET") {
            return Err(user_error(format!(
                "invalid config: sms.method '{}': use POST, PUT or GET",
                crate::input::printable(&self.sms.method, 20)
            )));
        }
        if self.sms.method == "GET" && self.sms.format != BodyFormat::Form {
            return Err(user_error(
                "invalid config: sms.method = \"GET\" sends the body as the query string: it needs format = \"form\"",
            ));
        }
        if self.sms.from.chars().any(char::is_control) || self.sms.from.trim() != self.sms.from {
            return Err(user_error(format!(
                "invalid config: sms.from '{}': one line without spaces around it, a number in E.164 (+33612345678) or an alphanumeric id",
                crate::input::printable(&self.sms.from, 40)
            )));
        }
        if (self.sms.format, self.sms.body.as_str()) != (BodyFormat::Form, DEFAULT_SMS_BODY) {
            crate::messages::request::check(self.sms.format, &self.sms.body)
                .map_err(|e| user_error(format!("invalid config: sms.body: {e:#}")))?;
        }
        if !self.ntfy.url.is_empty() {
            http_url("ntfy.url", &self.ntfy.url)?;
        }
        if !(1..=5).contains(&self.ntfy.reminder_priority) {
            return Err(user_error(
                "invalid config: ntfy.reminder_priority must be between 1 (min) and 5 (max)",
            ));
        }
        for (key, auth, username) in [
            ("sms", self.sms.auth, &self.sms.username),
            ("ntfy", self.ntfy.auth, &self.ntfy.username),
        ] {
            if auth == HttpAuth::Basic && username.is_empty() {
                return Err(user_error(format!(
                    "invalid config: {key}.auth = \"basic\" needs {key}.username"
                )));
            }
            if username.contains(':') || username.chars().any(char::is_control) {
                return Err(user_error(format!(
                    "invalid config: {key}.username holds a ':' or a control character (basic auth cannot carry it)"
                )));
            }
        }
        if !self.agenda.at.is_empty() {
            crate::quiet_hours::parse_hhmm(&self.agenda.at)
                .map_err(|e| user_error(format!("invalid config: agenda.at: {e}")))?;
        }
        if self.agenda.grace.0 <= TimeDelta::zero() || self.agenda.grace.0 > TimeDelta::hours(12) {
            return Err(user_error(
                "invalid config: agenda.grace must be positive and at most 12h",
            ));
        }
        Ok(())
    }

    /// The daily agenda's local time, when there is one.
    pub fn agenda_at(&self) -> Option<chrono::NaiveTime> {
        crate::quiet_hours::parse_hhmm(&self.agenda.at).ok()
    }

    pub fn default_tz(&self) -> Tz {
        parse_tz(&self.reminders.default_timezone).unwrap_or(Tz::UTC)
    }

    pub fn default_locale(&self) -> Locale {
        self.reminders.default_locale.parse().unwrap_or(Locale::Fr)
    }

    /// Reminder offsets in minutes, largest first, without duplicates.
    pub fn offsets_minutes(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.reminders.offsets.iter().map(|d| d.0.num_minutes()).collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.offsets_minutes(), vec![30, 5]);
        assert_eq!(c.email.transport, Transport::File);
        assert_eq!(c.email.max_attempts, 8);
    }

    #[test]
    fn example_config_is_valid_and_complete() {
        let example = include_str!("../config.example.toml");
        let parsed = Config::parse(example).unwrap();
        // Every default is documented: the example equals the defaults, key for key.
        let as_toml = |c: &Config| toml::to_string(c).unwrap();
        assert_eq!(as_toml(&parsed), as_toml(&Config::default()));
    }

    #[test]
    fn a_database_url_must_be_postgres_and_is_shown_masked() {
        let c = Config::parse("[database]\nurl = \"postgres://app:s3cret@db/bookings\"\n").unwrap();
        let shown = toml::to_string(&c).unwrap();
        assert!(
            shown.contains("postgres://app:***@db/bookings") && !shown.contains("s3cret"),
            "{shown}"
        );
        let e = Config::parse("[database]\nurl = \"mysql://app:s3cret@db/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("database.url") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn unknown_key_and_bad_values_are_refused() {
        let e = Config::parse("[reminders]\ngrase = \"5m\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("grase") && e.contains("line 2"), "{e}");
        let e = Config::parse("[reminders]\ngrace = \"soon\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid duration"), "{e}");
        let e = Config::parse("[reminders]\noffsets = [\"30s\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("30s is not a whole number of minutes"), "{e}");
        let e = Config::parse("[reminders]\noffsets = [\"90s\", \"1m\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1m30s"), "{e}");
        let e = Config::parse("[tick]\nclaim_timeout = \"5s\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("claim_timeout"), "{e}");
        let e = Config::parse("[reminders]\ndefault_timezone = \"Mars/Olympus\"").unwrap_err();
        assert!(e.to_string().contains("unknown time zone"), "{e}");
        assert!(Config::parse("[email]\ntransport = \"pigeon\"").is_err());
    }
}
