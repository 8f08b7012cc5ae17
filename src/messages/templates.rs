//! Renders a `MessageContext` into subject, summary, text and HTML through minijinja. The
//! templates are compiled into the binary so a deployment needs no files, yet an operator can
//! reword any of them by dropping a file with the same relative name into an override directory.
//! Undefined variables are errors (a typo must not silently blank out a sentence), and only
//! `.html` templates are HTML-escaped, so plain text and subjects keep `<` and `&` as typed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Duration, TimeZone, Utc};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use super::time::{format_clock, format_datetime, format_day, format_range, format_short, format_starts_in};
use super::{AgendaInfo, EventInfo, Kind, Locale, MessageContext, Rendered};

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// Every template name the code knows, with its built-in source. Files starting with `_` are
/// partials included by the others; `base.html` is the layout every HTML body extends.
const EMBEDDED: &[(&str, &str)] = embedded![
    "fr/base.html",
    "fr/_event.html",
    "fr/_event.txt",
    "fr/_footer.txt",
    "fr/assigned.subject.txt",
    "fr/assigned.summary.txt",
    "fr/assigned.txt",
    "fr/assigned.html",
    "fr/reminder.subject.txt",
    "fr/reminder.summary.txt",
    "fr/reminder.txt",
    "fr/reminder.html",
    "fr/rescheduled.subject.txt",
    "fr/rescheduled.summary.txt",
    "fr/rescheduled.txt",
    "fr/rescheduled.html",
    "fr/cancelled.subject.txt",
    "fr/cancelled.summary.txt",
    "fr/cancelled.txt",
    "fr/cancelled.html",
    "fr/custom.subject.txt",
    "fr/custom.summary.txt",
    "fr/custom.txt",
    "fr/custom.html",
    "fr/agenda.subject.txt",
    "fr/agenda.summary.txt",
    "fr/agenda.txt",
    "fr/agenda.html",
    "fr/assigned.sms.txt",
    "fr/reminder.sms.txt",
    "fr/rescheduled.sms.txt",
    "fr/cancelled.sms.txt",
    "fr/custom.sms.txt",
    "fr/agenda.sms.txt",
    "en/base.html",
    "en/_event.html",
    "en/_event.txt",
    "en/_footer.txt",
    "en/assigned.subject.txt",
    "en/assigned.summary.txt",
    "en/assigned.txt",
    "en/assigned.html",
    "en/reminder.subject.txt",
    "en/reminder.summary.txt",
    "en/reminder.txt",
    "en/reminder.html",
    "en/rescheduled.subject.txt",
    "en/rescheduled.summary.txt",
    "en/rescheduled.txt",
    "en/rescheduled.html",
    "en/cancelled.subject.txt",
    "en/cancelled.summary.txt",
    "en/cancelled.txt",
    "en/cancelled.html",
    "en/custom.subject.txt",
    "en/custom.summary.txt",
    "en/custom.txt",
    "en/custom.html",
    "en/agenda.subject.txt",
    "en/agenda.summary.txt",
    "en/agenda.txt",
    "en/agenda.html",
    "en/assigned.sms.txt",
    "en/reminder.sms.txt",
    "en/rescheduled.sms.txt",
    "en/cancelled.sms.txt",
    "en/custom.sms.txt",
    "en/agenda.sms.txt",
];

/// The compiled template set; build once at start-up and share.
pub struct Templates {
    env: Environment<'static>,
    overridden: Vec<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Compiles the embedded templates, replacing any that `override_dir` holds under the same
    /// relative name (`fr/reminder.html`). Syntax errors surface here, not at first send.
    /// A `.txt`/`.html` file in the directory that matches no template name is an error too:
    /// a misspelt override would otherwise be ignored without a word.
    pub fn new(override_dir: Option<&Path>) -> Result<Templates> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(html_formatter);
        // Block tags on their own line leave no blank line behind, which plain text needs.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);

        if let Some(dir) = override_dir {
            if !dir.is_dir() {
                bail!(
                    "template override directory {} does not exist or is not a directory",
                    dir.display()
                );
            }
            check_no_stray_overrides(dir)?;
        }

        // Overrides are compiled now, so their syntax errors surface here. The embedded
        // templates (checked by this module's tests) are compiled on first use: a command
        // that renders one notice pays for its two or four templates, not all of them.
        let mut overridden = Vec::new();
        for &(name, _) in EMBEDDED {
            let Some(path) = override_dir
                .map(|dir| dir.join(name))
                .filter(|path| path.is_file())
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read template override {}", path.display()))?;
            env.add_template_owned(name, text).map_err(|e| {
                anyhow!(
                    "template {name} (override {}) failed to parse: {}",
                    path.display(),
                    describe(&e, name)
                )
            })?;
            overridden.push(name.to_string());
        }
        env.set_loader(|name| {
            Ok(EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, source)| source.to_string()))
        });
        Ok(Templates { env, overridden })
    }

    /// Relative names of the templates taken from the override directory, for `config check`.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// Only what the in-app row needs: (subject, summary). Notices are stored with these;
    /// the email bodies are rendered when the message goes out.
    pub fn render_inbox(&self, ctx: &MessageContext) -> Result<(String, String)> {
        let view = View::new(ctx, None)?;
        let base = format!("{}/{}", ctx.locale.as_str(), ctx.kind.as_str());
        Ok((
            one_line(&self.render_one(&format!("{base}.subject.txt"), &view)?),
            one_line(&self.render_one(&format!("{base}.summary.txt"), &view)?),
        ))
    }

    pub fn render(&self, ctx: &MessageContext) -> Result<Rendered> {
        let view = View::new(ctx, None)?;
        let base = format!("{}/{}", ctx.locale.as_str(), ctx.kind.as_str());
        Ok(Rendered {
            subject: one_line(&self.render_one(&format!("{base}.subject.txt"), &view)?),
            summary: one_line(&self.render_one(&format!("{base}.summary.txt"), &view)?),
            text: tidy_text(&self.render_one(&format!("{base}.txt"), &view)?),
            html: format!("{}\n", self.render_one(&format!("{base}.html"), &view)?.trim()),
            sms: String::new(),
        })
    }

    /// What a push notification shows: the subject as its title, the summary as its text.
    pub fn render_push(&self, ctx: &MessageContext) -> Result<Rendered> {
        let (subject, summary) = self.render_inbox(ctx)?;
        Ok(Rendered {
            subject,
            summary,
            ..Rendered::default()
        })
    }

    /// The SMS text (`KIND.sms.txt`), one segment when it can be: when the text is too long,
    /// the titles in it are shortened (never the links, which must stay whole to work),
    /// down to [`SMS_MIN_TITLE`] characters; a text still too long then goes as several parts.
    pub fn render_sms(&self, ctx: &MessageContext) -> Result<Rendered> {
        let name = format!("{}/{}.sms.txt", ctx.locale.as_str(), ctx.kind.as_str());
        let text = |limit: Option<usize>| -> Result<String> {
            Ok(one_line(&self.render_one(&name, &View::new(ctx, limit)?)?))
        };
        let full = text(None)?;
        let mut sms = full.clone();
        if !super::sms::fits_one(&full) {
            // The longest title limit that fits: the text only grows with the limit.
            let (mut lo, mut hi) = (SMS_MIN_TITLE, full.chars().count());
            let shortest = text(Some(lo))?;
            if super::sms::fits_one(&shortest) {
                sms = shortest;
                while lo < hi {
                    let mid = (lo + hi).div_ceil(2);
                    let candidate = text(Some(mid))?;
                    if super::sms::fits_one(&candidate) {
                        lo = mid;
                        sms = candidate;
                    } else {
                        hi = mid - 1;
                    }
                }
            } else {
                sms = shortest;
            }
        }
        Ok(Rendered {
            sms,
            ..Rendered::default()
        })
    }

    /// Renders every kind in every locale, with a fully populated context and with a sparse one
    /// (no video, role or participants), so that an override that only breaks on a missing
    /// field is caught before it reaches a recipient. Reports every failure, not just the first.
    pub fn check(&self) -> Result<()> {
        let mut failures = BTreeSet::new();
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let full = sample_context(kind, locale);
                let mut sparse = full.clone();
                if let Some(event) = sparse.event.as_mut() {
                    event.video_url = None;
                    event.role = None;
                    event.participants.clear();
                    event.previous_starts_at = None;
                }
                sparse.recipient_name.clear();
                sparse.unsubscribe_url = None;
                sparse.custom_body = None;
                if let Some(agenda) = sparse.agenda.as_mut() {
                    agenda.events.truncate(1);
                    for event in &mut agenda.events {
                        event.video_url = None;
                        event.role = None;
                        event.participants.clear();
                    }
                }
                for ctx in [&full, &sparse] {
                    if let Err(e) = self.render(ctx).and_then(|_| self.render_sms(ctx)) {
                        failures.insert(format!("{e:#}"));
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            let list: Vec<String> = failures.into_iter().collect();
            bail!("{}", list.join("\n"))
        }
    }

    fn render_one(&self, name: &str, view: &View) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| anyhow!("template {name} is missing: {}", describe(&e, name)))?;
        template
            .render(view)
            .map_err(|e| anyhow!("template {name} failed to render: {}", describe(&e, name)))
    }
}

/// minijinja's default HTML escaping also turns `/` into `&#x2f;`, which is harmless to a
/// browser but leaves video and unsubscribe URLs unrecognisable to anything reading the raw
/// HTML (link checkers, spam filters, tests). Escaping `& < > " '` is what keeps a value inside
/// its text node or quoted attribute, so strings get exactly that; other values keep the default.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> std::result::Result<(), minijinja::Error> {
    match value.as_str() {
        Some(s) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut escaped = String::with_capacity(s.len());
            for c in s.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#x27;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write output")
                    .with_source(e)
            })
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// minijinja's reason with its location, naming the inner template when the failure is in a
/// layout or partial rather than in `name` itself.
fn describe(err: &minijinja::Error, name: &str) -> String {
    let mut out = err.kind().to_string();
    if let Some(detail) = err.detail() {
        out.push_str(": ");
        out.push_str(detail);
    }
    match (err.name(), err.line()) {
        (Some(inner), Some(line)) if inner != name => out.push_str(&format!(" (in {inner}, line {line})")),
        (_, Some(line)) => out.push_str(&format!(" (line {line})")),
        _ => {}
    }
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        match inner.downcast_ref::<minijinja::Error>() {
            Some(e) => out.push_str(&format!("; caused by: {}", describe(e, name))),
            None => out.push_str(&format!("; caused by: {inner}")),
        }
        source = inner.source();
    }
    out
}

fn check_no_stray_overrides(dir: &Path) -> Result<()> {
    let known: BTreeSet<&str> = EMBEDDED.iter().map(|&(name, _)| name).collect();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("cannot list template directory {}", current.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let is_template = matches!(path.extension().and_then(|e| e.to_str()), Some("txt" | "html"));
            let relative = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if is_template && !known.contains(relative.as_str()) {
                bail!(
                    "template override {} matches no template: overrides use the built-in \
                     relative names, e.g. fr/reminder.html or en/assigned.subject.txt",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// SMS texts shorten titles no further than this.
pub const SMS_MIN_TITLE: usize = 12;

/// Subjects and in-app summaries are single-line fields whatever the template's layout is.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plain-text bodies: no trailing spaces, at most one blank line in a row, one final newline,
/// whatever conditionals in the template left behind.
fn tidy_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0;
    for line in s.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What templates see. Times are pre-formatted here, in the recipient's zone and language,
/// so that template authors never handle zones; empty optional strings count as absent.
#[derive(Serialize)]
struct View<'a> {
    kind: &'static str,
    locale: &'static str,
    recipient_name: &'a str,
    recipient_email: &'a str,
    app_name: &'a str,
    unsubscribe_url: Option<&'a str>,
    /// Reminders: "dans 30 minutes" / "in 30 minutes".
    starts_in: Option<String>,
    custom_title: Option<String>,
    custom_body: Option<String>,
    /// `custom_body` split on blank lines, then on line breaks, for the HTML body.
    custom_paragraphs: Vec<Vec<String>>,
    event: Option<EventView<'a>>,
    agenda: Option<AgendaView<'a>>,
}

/// The daily agenda as templates see it.
#[derive(Serialize)]
struct AgendaView<'a> {
    /// "lundi 11 mars 2030" / "Monday, March 11, 2030".
    date: String,
    /// The zone the times are in: "Europe/Paris".
    zone: &'static str,
    count: usize,
    events: Vec<EventView<'a>>,
}

#[derive(Serialize)]
struct EventView<'a> {
    id: i64,
    title: String,
    /// The start for short texts: "lun. 11 mars 09:30" / "Mon Mar 11, 9:30 AM".
    short_when: String,
    /// The start's time of day only: "09:30" / "9:30 AM" (agendas).
    time: String,
    /// The whole interval: "dimanche 10 mars 2030, 09:30 – 10:30 (Europe/Paris)".
    when: String,
    starts_at: String,
    ends_at: String,
    previous_starts_at: Option<String>,
    video_url: Option<&'a str>,
    /// `video_url` only if it is http(s): a `javascript:` URL is shown, never made clickable.
    video_href: Option<&'a str>,
    role: Option<&'a str>,
    participants: Vec<&'a str>,
    /// "Alice, Bob et Carol".
    participants_text: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

fn join_names(names: &[&str], locale: Locale) -> Option<String> {
    let and = match locale {
        Locale::Fr => "et",
        Locale::En => "and",
    };
    match names {
        [] => None,
        [only] => Some(only.to_string()),
        [init @ .., last] => Some(format!("{} {and} {last}", init.join(", "))),
    }
}

/// A title, cut to `limit` characters when one is given (SMS texts).
fn limited(s: &str, limit: Option<usize>) -> String {
    match limit {
        Some(max) => super::sms::shorten(s, max),
        None => s.to_string(),
    }
}

impl<'a> View<'a> {
    /// `title_limit`: the length titles and custom texts are cut to (SMS texts).
    fn new(ctx: &'a MessageContext, title_limit: Option<usize>) -> Result<View<'a>> {
        let kind = ctx.kind;
        if !matches!(kind, Kind::Custom | Kind::Agenda) && ctx.event.is_none() {
            bail!("a {kind} message needs an event");
        }
        if kind == Kind::Agenda && ctx.agenda.is_none() {
            bail!("an agenda message needs its day's events");
        }
        let starts_in = match (kind, ctx.offset_minutes) {
            (Kind::Reminder, Some(minutes)) => Some(format_starts_in(minutes, ctx.locale)),
            (Kind::Reminder, None) => bail!("a reminder message needs offset_minutes"),
            _ => None,
        };
        let custom_title = non_empty(&ctx.custom_title);
        if kind == Kind::Custom && custom_title.is_none() {
            bail!("a custom message needs a non-empty custom_title");
        }
        let custom_title = custom_title.map(|t| limited(t, title_limit));
        let custom_body = non_empty(&ctx.custom_body).map(|b| limited(b, title_limit.map(|l| l * 4)));
        let custom_paragraphs = custom_body
            .as_deref()
            .map(|body| {
                let normalized_breaks: Vec<&str> = body.lines().map(str::trim_end).collect();
                normalized_breaks
                    .split(|line| line.is_empty())
                    .filter(|para| !para.is_empty())
                    .map(|para| para.iter().map(|l| l.to_string()).collect())
                    .collect()
            })
            .unwrap_or_default();
        Ok(View {
            kind: kind.as_str(),
            locale: ctx.locale.as_str(),
            recipient_name: ctx.recipient_name.trim(),
            recipient_email: ctx.recipient_email.trim(),
            app_name: ctx.app_name.trim(),
            unsubscribe_url: non_empty(&ctx.unsubscribe_url),
            starts_in,
            custom_title,
            custom_body,
            custom_paragraphs,
            event: ctx
                .event
                .as_ref()
                .map(|event| EventView::new(event, ctx.tz, ctx.locale, title_limit)),
            agenda: ctx.agenda.as_ref().map(|a| AgendaView::new(a, ctx, title_limit)),
        })
    }
}

impl<'a> AgendaView<'a> {
    fn new(agenda: &'a AgendaInfo, ctx: &MessageContext, title_limit: Option<usize>) -> AgendaView<'a> {
        AgendaView {
            date: format_day(agenda.date, ctx.locale),
            zone: ctx.tz.name(),
            count: agenda.events.len(),
            events: agenda
                .events
                .iter()
                .map(|e| EventView::new(e, ctx.tz, ctx.locale, title_limit))
                .collect(),
        }
    }
}

impl<'a> EventView<'a> {
    fn new(
        event: &'a EventInfo,
        tz: chrono_tz::Tz,
        locale: Locale,
        title_limit: Option<usize>,
    ) -> EventView<'a> {
        let video_url = non_empty(&event.video_url);
        let participants: Vec<&str> = event
            .participants
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect();
        EventView {
            id: event.id,
            title: limited(&event.title, title_limit),
            short_when: format_short(event.starts_at, tz, locale),
            time: format_clock(event.starts_at, tz, locale),
            when: format_range(event.starts_at, event.ends_at, tz, locale),
            starts_at: format_datetime(event.starts_at, tz, locale),
            ends_at: format_datetime(event.ends_at, tz, locale),
            previous_starts_at: event.previous_starts_at.map(|t| format_datetime(t, tz, locale)),
            video_url,
            video_href: video_url.filter(|u| is_web_url(u)),
            role: non_empty(&event.role),
            participants_text: join_names(&participants, locale),
            participants,
        }
    }
}

/// A fully populated context for `kind` and `locale` with fixed, made-up data, for
/// `Templates::check` and for previewing templates without a database.
pub fn sample_context(kind: Kind, locale: Locale) -> MessageContext {
    let starts_at: DateTime<Utc> = Utc.with_ymd_and_hms(2030, 3, 11, 8, 30, 0).unwrap();
    let event = EventInfo {
        id: 42,
        title: match locale {
            Locale::Fr => "Point mentorat".to_string(),
            Locale::En => "Mentoring check-in".to_string(),
        },
        starts_at,
        ends_at: starts_at + Duration::hours(1),
        previous_starts_at: (kind == Kind::Rescheduled).then(|| starts_at - Duration::days(1)),
        video_url: Some("https://meet.example.com/abc-defg-hij".to_string()),
        role: Some("mentor".to_string()),
        participants: vec!["Alice Martin".to_string(), "Bob Durand".to_string()],
    };
    let (custom_title, custom_body) = match (kind, locale) {
        (Kind::Custom, Locale::Fr) => (
            Some("Maintenance prévue".to_string()),
            Some("Le service sera indisponible samedi matin.\n\nMerci de votre compréhension.".to_string()),
        ),
        (Kind::Custom, Locale::En) => (
            Some("Planned maintenance".to_string()),
            Some(
                "The service will be unavailable on Saturday morning.\n\nThank you for your patience."
                    .to_string(),
            ),
        ),
        _ => (None, None),
    };
    MessageContext {
        kind,
        locale,
        tz: chrono_tz::Europe::Paris,
        recipient_name: "Camille Dupont".to_string(),
        recipient_email: "camille@example.com".to_string(),
        event: (!matches!(kind, Kind::Custom | Kind::Agenda)).then(|| event.clone()),
        offset_minutes: (kind == Kind::Reminder).then_some(30),
        custom_title,
        custom_body,
        app_name: "notifyctl".to_string(),
        unsubscribe_url: Some("https://notifyctl.example.com/unsubscribe?t=abc".to_string()),
        agenda: (kind == Kind::Agenda).then(|| AgendaInfo {
            date: chrono::NaiveDate::from_ymd_opt(2030, 3, 11).unwrap_or_default(),
            events: vec![
                event.clone(),
                EventInfo {
                    id: 43,
                    title: match locale {
                        Locale::Fr => "Revue de projet".to_string(),
                        Locale::En => "Project review".to_string(),
                    },
                    starts_at: starts_at + Duration::hours(5),
                    ends_at: starts_at + Duration::hours(6),
                    previous_starts_at: None,
                    video_url: None,
                    role: None,
                    participants: vec!["Bob Durand".to_string()],
                },
            ],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory removed on drop; unique per test so tests can run in parallel.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "notifyctl-messages-{label}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn write(&self, name: &str, text: &str) {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What an auto-escaped `{{ value }}` looks like in the HTML body.
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
    }

    fn templates() -> Templates {
        Templates::new(None).unwrap()
    }

    fn minimal(kind: Kind, locale: Locale) -> MessageContext {
        let mut ctx = sample_context(kind, locale);
        if let Some(agenda) = ctx.agenda.as_mut() {
            for event in &mut agenda.events {
                event.video_url = None;
                event.role = None;
                event.participants.clear();
            }
        }
        if let Some(event) = ctx.event.as_mut() {
            event.video_url = None;
            event.role = None;
            event.participants.clear();
            event.previous_starts_at = None;
        }
        ctx.unsubscribe_url = None;
        ctx
    }

    fn render(ctx: &MessageContext) -> Rendered {
        templates()
            .render(ctx)
            .unwrap_or_else(|e| panic!("{} {}: {e:#}", ctx.locale, ctx.kind))
    }

    #[test]
    fn every_embedded_file_is_registered() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = BTreeSet::new();
        for locale in ["fr", "en"] {
            for entry in std::fs::read_dir(root.join(locale)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                on_disk.insert(format!("{locale}/{name}"));
            }
        }
        let registered: BTreeSet<String> = EMBEDDED.iter().map(|&(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, registered);
    }

    #[test]
    fn every_kind_and_locale_renders_with_a_full_context() {
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let ctx = sample_context(kind, locale);
                let r = render(&ctx);
                let label = format!("{locale} {kind}");
                for field in [&r.subject, &r.summary] {
                    assert!(!field.is_empty(), "{label}: empty subject or summary");
                    assert!(!field.contains('\n'), "{label}: multi-line {field:?}");
                }
                assert!(r.text.ends_with('\n') && !r.text.ends_with("\n\n"), "{label}");
                assert!(r.text.contains("Camille Dupont"), "{label}: {}", r.text);
                assert!(r.html.starts_with("<!DOCTYPE html>"), "{label}");
                assert!(r.html.contains(&format!("<html lang=\"{locale}\">")), "{label}");
                assert!(r.html.contains("notifyctl"), "{label}: footer");
                assert!(r.html.contains("unsubscribe?t=abc"), "{label}: unsubscribe");
                assert!(r.text.contains("unsubscribe?t=abc"), "{label}: unsubscribe");
                if let Some(event) = &ctx.event {
                    let when = format_range(event.starts_at, event.ends_at, ctx.tz, locale);
                    assert!(when.contains("(Europe/Paris)"));
                    for (body, text) in [(&r.text, true), (&r.html, false)] {
                        let shown = |s: &str| if text { s.to_string() } else { esc(s) };
                        assert!(body.contains(&shown(&event.title)), "{label}: title");
                        assert!(body.contains(&shown(&when)), "{label}: {when} missing");
                        assert!(
                            body.contains(&shown(": mentor")) || body.contains(">mentor<"),
                            "{label}: role"
                        );
                        assert!(body.contains("Alice Martin"), "{label}: participants");
                        assert!(body.contains("Bob Durand"), "{label}: participants");
                    }
                    assert!(r.subject.contains(&event.title), "{label}: {}", r.subject);
                    if kind != Kind::Cancelled {
                        assert!(r.text.contains("https://meet.example.com/abc-defg-hij"));
                        assert!(
                            r.html.contains("href=\"https://meet.example.com/abc-defg-hij\""),
                            "{label}: no video link in {}",
                            r.html
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_kind_and_locale_renders_with_a_minimal_context() {
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let r = render(&minimal(kind, locale));
                let label = format!("{locale} {kind}");
                assert!(!r.subject.is_empty() && !r.summary.is_empty(), "{label}");
                for body in [&r.text, &r.html] {
                    assert!(!body.contains("meet.example.com"), "{label}: video");
                    assert!(
                        !body.contains("Votre rôle") && !body.contains("Your role"),
                        "{label}: role"
                    );
                    assert!(!body.contains("Alice"), "{label}: participants");
                    assert!(!body.contains("unsubscribe"), "{label}: unsubscribe");
                    assert!(!body.contains("Lien visio") && !body.contains("Video link"));
                    assert!(!body.contains("Avec") && !body.contains("With:"));
                }
                assert!(!r.html.contains("<a "), "{label}: stray link");
            }
        }
    }

    #[test]
    fn title_is_escaped_in_html_and_raw_in_text() {
        let title = r#"<script>alert("x")</script> & co"#;
        for locale in Locale::ALL {
            for kind in [Kind::Assigned, Kind::Reminder, Kind::Rescheduled, Kind::Cancelled] {
                let mut ctx = sample_context(kind, locale);
                ctx.event.as_mut().unwrap().title = title.to_string();
                let r = render(&ctx);
                assert!(r.html.contains("&lt;script&gt;"), "{locale} {kind}");
                assert!(r.html.contains("&amp; co"), "{locale} {kind}");
                assert!(!r.html.contains("<script"), "{locale} {kind}");
                assert!(r.text.contains(title), "{locale} {kind}");
                assert!(r.subject.contains(title), "{locale} {kind}");
                assert!(r.summary.contains(title), "{locale} {kind}");
            }
        }
    }

    #[test]
    fn video_url_cannot_break_out_of_href() {
        let url = r#"https://meet.example.com/x" onmouseover="alert(1)"#;
        let mut ctx = sample_context(Kind::Reminder, Locale::En);
        ctx.event.as_mut().unwrap().video_url = Some(url.to_string());
        let r = render(&ctx);
        assert!(!r.html.contains(r#"" onmouseover=""#), "{}", r.html);
        assert!(r.html.contains("&quot; onmouseover=&quot;alert(1)"), "{}", r.html);
        assert!(r.text.contains(url));
    }

    #[test]
    fn non_web_video_url_is_shown_but_not_linked() {
        let mut ctx = sample_context(Kind::Assigned, Locale::Fr);
        ctx.event.as_mut().unwrap().video_url = Some("javascript:alert(1)".to_string());
        let r = render(&ctx);
        assert!(!r.html.contains("href=\"javascript"), "{}", r.html);
        assert!(r.html.contains("Lien visio : javascript:alert(1)"));
    }

    #[test]
    fn french_and_english_texts() {
        for kind in Kind::ALL {
            let fr = render(&sample_context(kind, Locale::Fr));
            let en = render(&sample_context(kind, Locale::En));
            assert_ne!(fr.subject, en.subject, "{kind}");
            assert_ne!(fr.text, en.text, "{kind}");
        }
        let subject = |kind, locale| render(&sample_context(kind, locale)).subject;
        assert_eq!(
            subject(Kind::Assigned, Locale::Fr),
            "Nouvel événement assigné : Point mentorat"
        );
        assert!(subject(Kind::Reminder, Locale::Fr).starts_with("Rappel événement"));
        assert_eq!(
            subject(Kind::Assigned, Locale::En),
            "New event assigned: Mentoring check-in"
        );
        assert_eq!(
            subject(Kind::Reminder, Locale::En),
            "Reminder: Mentoring check-in starts in 30 minutes"
        );
        assert!(subject(Kind::Rescheduled, Locale::En).starts_with("Event rescheduled"));
        assert!(subject(Kind::Cancelled, Locale::En).starts_with("Event cancelled"));
        assert!(subject(Kind::Cancelled, Locale::Fr).starts_with("Événement annulé"));
    }

    #[test]
    fn french_reminder_says_when_it_starts() {
        let r = render(&sample_context(Kind::Reminder, Locale::Fr));
        assert!(r.text.contains("Votre événement commence dans 30 minutes"));
        assert!(r.html.contains("Votre événement commence dans 30 minutes"));
        assert!(r.summary.contains("commence dans 30 minutes"));

        for (minutes, phrase) in [
            (5, "dans 5 minutes"),
            (60, "dans 1 heure"),
            (90, "dans 1 heure 30"),
        ] {
            let mut ctx = sample_context(Kind::Reminder, Locale::Fr);
            ctx.offset_minutes = Some(minutes);
            let r = render(&ctx);
            assert!(
                r.text.contains(&format!("Votre événement commence {phrase}.")),
                "{minutes}: {}",
                r.text
            );
        }
    }

    #[test]
    fn times_follow_the_recipient_zone() {
        let mut ctx = sample_context(Kind::Assigned, Locale::En);
        ctx.tz = chrono_tz::America::New_York;
        let r = render(&ctx);
        assert!(
            r.text
                .contains("Monday, March 11, 2030, 4:30 AM – 5:30 AM (America/New_York)"),
            "{}",
            r.text
        );
    }

    #[test]
    fn rescheduled_shows_old_and_new_times() {
        for locale in Locale::ALL {
            let ctx = sample_context(Kind::Rescheduled, locale);
            let event = ctx.event.as_ref().unwrap();
            let old = format_datetime(event.previous_starts_at.unwrap(), ctx.tz, locale);
            let new = format_range(event.starts_at, event.ends_at, ctx.tz, locale);
            assert_ne!(old, new);
            let r = render(&ctx);
            assert!(r.text.contains(&old), "{locale}: old time missing");
            assert!(r.text.contains(&new), "{locale}: new time missing");
            assert!(r.html.contains(&esc(&old)), "{locale}: old time missing");
            assert!(r.html.contains(&esc(&new)), "{locale}: new time missing");
        }
    }

    #[test]
    fn custom_uses_title_and_body() {
        let mut ctx = sample_context(Kind::Custom, Locale::Fr);
        ctx.custom_title = Some("Fermeture\nexceptionnelle <b>".to_string());
        ctx.custom_body = Some("Ligne un <i>\nligne deux\n\n\nParagraphe deux".to_string());
        let r = render(&ctx);
        assert_eq!(r.subject, "Fermeture exceptionnelle <b>");
        assert_eq!(r.summary, "Ligne un <i> ligne deux Paragraphe deux");
        assert!(
            r.text.contains("Ligne un <i>\nligne deux\n\nParagraphe deux"),
            "{}",
            r.text
        );
        assert!(
            r.html
                .contains("<p style=\"margin:0 0 16px;\">Ligne un &lt;i&gt;<br>ligne deux</p>"),
            "{}",
            r.html
        );
        assert!(r.html.contains("Paragraphe deux</p>"));

        // A custom notice may still be about an event.
        ctx.event = sample_context(Kind::Assigned, Locale::Fr).event;
        let r = render(&ctx);
        assert!(r.text.contains("Point mentorat") && r.html.contains("Point mentorat"));
    }

    #[test]
    fn missing_inputs_are_errors() {
        let t = templates();
        let mut ctx = sample_context(Kind::Custom, Locale::En);
        ctx.custom_title = Some("  ".to_string());
        assert!(format!("{:#}", t.render(&ctx).unwrap_err()).contains("custom_title"));

        let mut ctx = sample_context(Kind::Reminder, Locale::En);
        ctx.offset_minutes = None;
        assert!(format!("{:#}", t.render(&ctx).unwrap_err()).contains("offset_minutes"));

        let mut ctx = sample_context(Kind::Cancelled, Locale::En);
        ctx.event = None;
        assert!(format!("{:#}", t.render(&ctx).unwrap_err()).contains("needs an event"));
    }

    #[test]
    fn builtin_templates_pass_check() {
        let t = templates();
        t.check().unwrap();
        assert!(t.overridden().is_empty());
    }

    #[test]
    fn override_replaces_only_that_template() {
        let dir = TempDir::new("override");
        dir.write(
            "fr/reminder.subject.txt",
            "Attention : {{ event.title }} {{ starts_in }} !\n",
        );
        let t = Templates::new(Some(&dir.0)).unwrap();
        assert_eq!(t.overridden(), ["fr/reminder.subject.txt"]);
        let fr = t.render(&sample_context(Kind::Reminder, Locale::Fr)).unwrap();
        assert_eq!(fr.subject, "Attention : Point mentorat dans 30 minutes !");
        assert!(fr.text.contains("Votre événement commence dans 30 minutes"));
        let en = t.render(&sample_context(Kind::Reminder, Locale::En)).unwrap();
        assert!(en.subject.starts_with("Reminder: "));
        t.check().unwrap();
    }

    #[test]
    fn override_of_layout_applies_to_every_html_body() {
        let dir = TempDir::new("layout");
        dir.write(
            "en/base.html",
            "<main>{% block content %}{% endblock %}</main><footer>{{ app_name }}</footer>",
        );
        let t = Templates::new(Some(&dir.0)).unwrap();
        let r = t.render(&sample_context(Kind::Cancelled, Locale::En)).unwrap();
        assert!(r.html.starts_with("<main>") && r.html.contains("<footer>notifyctl</footer>"));
    }

    #[test]
    fn syntax_error_in_override_names_the_file() {
        let dir = TempDir::new("syntax");
        dir.write(
            "fr/assigned.html",
            "{% extends \"fr/base.html\" %}\n{% block content %}\n{{ event.title \n{% endblock %}",
        );
        let err = format!("{:#}", Templates::new(Some(&dir.0)).unwrap_err());
        assert!(err.contains("template fr/assigned.html"), "{err}");
        assert!(
            err.contains(&dir.0.join("fr/assigned.html").display().to_string()),
            "{err}"
        );
        assert!(err.contains("syntax error"), "{err}");
    }

    #[test]
    fn undefined_variable_in_override_names_the_file_and_line() {
        let dir = TempDir::new("undefined");
        dir.write(
            "fr/reminder.html",
            "{% extends \"fr/base.html\" %}\n{% block content %}\n{{ evnt.title }}\n{% endblock %}\n",
        );
        let t = Templates::new(Some(&dir.0)).unwrap();
        let err = format!(
            "{:#}",
            t.render(&sample_context(Kind::Reminder, Locale::Fr)).unwrap_err()
        );
        assert!(
            err.starts_with("template fr/reminder.html failed to render: undefined value"),
            "{err}"
        );
        assert!(err.contains("line 3"), "{err}");
        let check = format!("{:#}", t.check().unwrap_err());
        assert!(check.contains("fr/reminder.html"), "{check}");
        assert!(!check.contains("en/"), "{check}");
    }

    #[test]
    fn missing_override_dir_is_an_error_naming_it() {
        let dir = TempDir::new("missing");
        let absent = dir.0.join("does-not-exist");
        let err = format!("{:#}", Templates::new(Some(&absent)).unwrap_err());
        assert!(err.contains(&absent.display().to_string()), "{err}");
    }

    #[test]
    fn misspelt_override_is_an_error() {
        let dir = TempDir::new("stray");
        dir.write("fr/remider.html", "x");
        dir.write("README", "notes for the operator are fine");
        let err = format!("{:#}", Templates::new(Some(&dir.0)).unwrap_err());
        assert!(err.contains("remider.html"), "{err}");
    }

    #[test]
    fn helpers() {
        assert_eq!(join_names(&[], Locale::Fr), None);
        assert_eq!(join_names(&["A"], Locale::Fr).unwrap(), "A");
        assert_eq!(join_names(&["A", "B"], Locale::En).unwrap(), "A and B");
        assert_eq!(join_names(&["A", "B", "C"], Locale::Fr).unwrap(), "A, B et C");
        assert_eq!(tidy_text("\n a  \n\n\n\n  b\n\n"), "a\n\n  b\n");
        assert_eq!(one_line("  x\n\ty  z "), "x y z");
    }
}
