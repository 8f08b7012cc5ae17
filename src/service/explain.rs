//! `explain EVENT --user U`: the answer to "why did (or didn't) this person get this
//! message?", from what the database recorded and the same rules the tick applies: every
//! notice about the event for that recipient, every reminder decision (sent or skipped, and
//! why, per occurrence of a series), every delivery with each attempt and the server's
//! answer, and what the coming ticks will do (`reminders::forecast`, as `plan` does).
//! Reads only.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::booking::offsets_text;
use super::occurrences::occurrence_candidate;
use super::Service;
use crate::error::user_error;
use crate::input::{format_duration, rfc3339};
use crate::model::{Event, EventStatus, User};
use crate::reminders::{self, Action};
use crate::store::{DecisionRow, DeliveryHistory, NoticeRecord};

/// How many coming occurrences of a series `explain` forecasts.
const FORECAST_OCCURRENCES: usize = 5;

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub event: EventFacts,
    pub user: UserFacts,
    /// The notices created for this recipient, oldest first, each with its deliveries.
    pub notices: Vec<ExplainedNotice>,
    /// Every reminder decision recorded for this recipient, by start and offset.
    pub reminders: Vec<ExplainedDecision>,
    /// What the coming ticks will decide for this recipient's reminders.
    pub upcoming: Vec<Upcoming>,
    /// Rows that could not be read (each also logged).
    pub broken_rows: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EventFacts {
    pub id: i64,
    pub title: String,
    pub status: EventStatus,
    #[serde(with = "crate::model::utc")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "crate::model::utc")]
    pub ends_at: DateTime<Utc>,
    pub timezone: Option<String>,
    pub repeat_rule: Option<String>,
    /// The reminder offsets that apply (minutes), and whether they are the event's own.
    pub reminder_offsets: Vec<i64>,
    pub own_offsets: bool,
}

#[derive(Debug, Serialize)]
pub struct UserFacts {
    pub id: i64,
    pub email: String,
    pub email_enabled: bool,
    /// Their role, while they are a participant.
    pub role: Option<String>,
    pub participant: bool,
}

#[derive(Debug, Serialize)]
pub struct ExplainedNotice {
    #[serde(flatten)]
    pub notice: NoticeRecord,
    pub deliveries: Vec<DeliveryHistory>,
}

#[derive(Debug, Serialize)]
pub struct ExplainedDecision {
    #[serde(flatten)]
    pub decision: DecisionRow,
    /// A series: the occurrence (its original start) taking place at `event_start`, when it
    /// still does.
    #[serde(with = "crate::model::utc_opt")]
    pub occurrence_start: Option<DateTime<Utc>>,
    /// When the reminder was meant to go out.
    #[serde(with = "crate::model::utc")]
    pub due_at: DateTime<Utc>,
    /// Why, in words.
    pub why: String,
}

#[derive(Debug, Serialize)]
pub struct Upcoming {
    /// The first tick at or after this moment decides it.
    #[serde(with = "crate::model::utc")]
    pub at: DateTime<Utc>,
    #[serde(with = "crate::model::utc")]
    pub event_start: DateTime<Utc>,
    #[serde(with = "crate::model::utc_opt")]
    pub occurrence_start: Option<DateTime<Utc>>,
    pub offset_minutes: i64,
    pub action: &'static str,
    pub reason: Option<&'static str>,
    pub why: String,
}

/// A skipped reminder's reason, in words.
pub fn why_skipped(reason: &str, grace: TimeDelta) -> String {
    match reason {
        "late" => format!(
            "skipped: no tick ran within {} after its moment (or the event had started), and a reminder is never sent late",
            format_duration(grace)
        ),
        "collapsed" => {
            "skipped: a reminder closer to the start was due at the same time, and only that one is sent".into()
        }
        "armed_late" => {
            "skipped: its moment had already passed when the recipient was added, the event (or this occurrence) was booked or moved, or this offset was added"
                .into()
        }
        other => format!("skipped ({other})"),
    }
}

impl Service {
    pub fn explain(&mut self, event_id: i64, user_key: &str) -> anyhow::Result<Explanation> {
        let now = self.now();
        let grace = self.config.reminders.grace.0;
        let default = self.config.offsets_minutes();
        let event = self
            .store
            .event(event_id)?
            .ok_or_else(|| user_error(format!("unknown event {event_id}: see `notifyctl event list`")))?;
        let user = self.store.find_user(user_key)?;
        let series = event.series().ok().flatten();
        let exceptions = event.rule_exceptions();
        let offsets = event.offsets_or(&default).to_vec();
        let role = event
            .participants
            .iter()
            .find(|p| p.user_id == user.id)
            .map(|p| p.role.clone());
        let mut broken = Vec::new();

        let mut notices = Vec::new();
        for row in self.store.event_notices(event.id, user.id)? {
            let notice = match row {
                Ok(n) => n,
                Err(b) => {
                    self.reporter.broken(&b);
                    broken.push(b.to_string());
                    continue;
                }
            };
            let mut deliveries = Vec::new();
            for d in self.store.delivery_history(notice.id)? {
                match d {
                    Ok(d) => deliveries.push(d),
                    Err(b) => {
                        self.reporter.broken(&b);
                        broken.push(b.to_string());
                    }
                }
            }
            notices.push(ExplainedNotice { notice, deliveries });
        }

        let decisions = self.store.decisions_for(event.id, user.id)?;
        let reminders = decisions
            .iter()
            .map(|d| ExplainedDecision {
                occurrence_start: series
                    .as_ref()
                    .and_then(|s| s.occurrence_at(d.event_start, &exceptions))
                    .map(|o| o.original_start),
                due_at: d.event_start - TimeDelta::minutes(d.offset_minutes),
                why: match (d.outcome.as_str(), d.reason.as_deref(), d.notification_id) {
                    ("sent", _, Some(id)) => format!("sent: notification {id}"),
                    ("sent", _, None) => "sent (its notification was deleted since)".into(),
                    (_, Some(reason), _) => why_skipped(reason, grace),
                    (other, None, _) => other.to_string(),
                },
                decision: d.clone(),
            })
            .collect();

        let upcoming = if role.is_some() && event.status == EventStatus::Scheduled {
            self.forecast_for(&event, &user, now)?
        } else {
            Vec::new()
        };
        Ok(Explanation {
            event: EventFacts {
                id: event.id,
                title: event.title.clone(),
                status: event.status,
                starts_at: event.starts_at,
                ends_at: event.ends_at,
                timezone: event.timezone.clone(),
                repeat_rule: event.repeat_rule.clone(),
                reminder_offsets: offsets,
                own_offsets: event.remind_offsets.is_some(),
            },
            user: UserFacts {
                id: user.id,
                email: user.email.clone(),
                email_enabled: user.email_enabled,
                participant: role.is_some(),
                role,
            },
            notices,
            reminders,
            upcoming,
            broken_rows: broken,
        })
    }

    /// The reminders the coming ticks will decide for `user`: the event's, or those of the
    /// series' next occurrences.
    fn forecast_for(
        &mut self,
        event: &Event,
        user: &User,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<Upcoming>> {
        let default = self.config.offsets_minutes();
        let grace = self.config.reminders.grace.0;
        let occurrences = match event.series() {
            Ok(Some(series)) => series
                .occurrences_from(now, &event.rule_exceptions())
                .take(FORECAST_OCCURRENCES)
                .collect(),
            Ok(None) if event.starts_at > now => vec![crate::recurrence::Occurrence {
                start: event.starts_at,
                end: event.ends_at,
                original_start: event.starts_at,
                moved: false,
            }],
            _ => Vec::new(),
        };
        let (Some(first), Some(last)) = (occurrences.first(), occurrences.last()) else {
            return Ok(Vec::new());
        };
        let people = self
            .store
            .occurrence_candidates(event.id, first.start, last.start)?;
        let Some(&(_, added_at)) = people.participants.iter().find(|(id, _)| *id == user.id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for o in &occurrences {
            let mut c = occurrence_candidate(event, o, user.id, added_at, &people.decided);
            if !event.is_series() {
                c.occurrence = None;
                c.armed_at = event.armed_at.max(added_at);
            }
            let offsets = c.offsets_or(&default).to_vec();
            for d in reminders::forecast(&c, &offsets, grace, now, o.start) {
                let (action, reason, why) = match d.action {
                    Action::Send => ("send", None, "will be sent".to_string()),
                    Action::Skip(r) => (
                        "skip",
                        Some(r.as_str()),
                        format!("will be {}", why_skipped(r.as_str(), grace)),
                    ),
                };
                out.push(Upcoming {
                    at: d.due_at,
                    event_start: d.event_start,
                    occurrence_start: d.occurrence,
                    offset_minutes: d.offset_minutes,
                    action,
                    reason,
                    why,
                });
            }
        }
        out.sort_by_key(|u| (u.at, u.event_start, -u.offset_minutes));
        Ok(out)
    }
}

/// The explanation as support staff read it: short sections, times in UTC, every reason
/// in words.
pub fn render(x: &Explanation, max_attempts: u32) -> Vec<String> {
    let mut out = Vec::new();
    let e = &x.event;
    out.push(format!(
        "event {} '{}' ({}), {} - {} UTC{}",
        e.id,
        crate::input::printable(&e.title, 60),
        e.status.as_str(),
        rfc3339(e.starts_at),
        rfc3339(e.ends_at),
        e.timezone
            .as_deref()
            .map(|z| format!(", zone {z}"))
            .unwrap_or_default()
    ));
    if let Some(rule) = &e.repeat_rule {
        out.push(format!(
            "  a series: {rule} (the start above is its first occurrence)"
        ));
    }
    out.push(format!(
        "  reminders: {}{}",
        offsets_text(&e.reminder_offsets),
        if e.own_offsets {
            " (set on this event)"
        } else {
            " (the default, [reminders] offsets)"
        }
    ));
    let u = &x.user;
    out.push(format!(
        "recipient {} (user {}): {}; email {}",
        u.email,
        u.id,
        match &u.role {
            Some(role) => format!("a participant ({role})"),
            None => "not a participant (any more): no reminders".into(),
        },
        if u.email_enabled {
            "on"
        } else {
            "off (in-app only)"
        }
    ));

    out.push(String::new());
    out.push(format!("notices ({}):", x.notices.len()));
    if x.notices.is_empty() {
        out.push("  none".into());
    }
    for n in &x.notices {
        let n_ = &n.notice;
        let mut about = String::new();
        if let Some(offset) = n_.offset_minutes {
            about.push_str(&format!(
                " {} before",
                format_duration(TimeDelta::minutes(offset))
            ));
        }
        if let Some(start) = n_.event_start {
            about.push_str(&format!(" the start at {}", rfc3339(start)));
        }
        if let Some(o) = n_.occurrence_start.filter(|o| Some(*o) != n_.event_start) {
            about.push_str(&format!(" (the occurrence of {})", rfc3339(o)));
        }
        if let Some(p) = n_.previous_start {
            about.push_str(&format!(", moved from {}", rfc3339(p)));
        }
        out.push(format!(
            "  #{} {} created {}:{about}; {}",
            n_.id,
            n_.kind,
            rfc3339(n_.created_at),
            match n_.read_at {
                Some(t) => format!("read {}", rfc3339(t)),
                None => "unread".into(),
            }
        ));
        if n.deliveries.is_empty() {
            out.push("    in-app only (no channel was on for it)".into());
        }
        for d in &n.deliveries {
            let d_ = &d.delivery;
            out.push(format!(
                "    {} delivery {}: {}{}",
                d_.channel,
                d_.id,
                d_.status,
                delivery_outlook(d_, max_attempts)
            ));
            for a in &d.attempts_log {
                out.push(format!(
                    "      {} attempt {}: {}{}",
                    rfc3339(a.at),
                    a.attempt,
                    a.outcome,
                    a.answer
                        .as_deref()
                        .map(|s| format!(" — {}", crate::output::one_line(s)))
                        .unwrap_or_default()
                ));
            }
        }
    }

    out.push(String::new());
    out.push(format!("reminder decisions ({}):", x.reminders.len()));
    if x.reminders.is_empty() {
        out.push("  none yet".into());
    }
    for r in &x.reminders {
        let d = &r.decision;
        out.push(format!(
            "  {} before the start at {}{} (due {}), decided {}: {}",
            format_duration(TimeDelta::minutes(d.offset_minutes)),
            rfc3339(d.event_start),
            r.occurrence_start
                .filter(|o| *o != d.event_start)
                .map(|o| format!(" (the occurrence of {})", rfc3339(o)))
                .unwrap_or_default(),
            rfc3339(r.due_at),
            rfc3339(d.decided_at),
            r.why
        ));
    }

    out.push(String::new());
    out.push("coming ticks:".into());
    if x.upcoming.is_empty() {
        out.push("  no reminder left to decide for this recipient".into());
    }
    for up in &x.upcoming {
        out.push(format!(
            "  at {}: the {} reminder for the start at {} {}",
            rfc3339(up.at),
            format_duration(TimeDelta::minutes(up.offset_minutes)),
            rfc3339(up.event_start),
            up.why
        ));
    }
    for b in &x.broken_rows {
        out.push(format!("unreadable row: {b}"));
    }
    out
}

/// What happens next to a delivery, in words.
fn delivery_outlook(d: &crate::model::Delivery, max_attempts: u32) -> String {
    match d.status.as_str() {
        "sent" => d
            .sent_at
            .map(|t| format!(" at {}", rfc3339(t)))
            .unwrap_or_default(),
        "pending" => match (d.held_until, d.hold_reason.as_deref()) {
            (Some(until), Some(why)) => format!(
                ", held until {} ({}), then goes out with the first tick",
                rfc3339(until),
                crate::output::one_line(why)
            ),
            _ => format!(
                ", goes out with the first tick from {}",
                rfc3339(d.next_attempt_at)
            ),
        },
        "failed" => format!(
            " {} time(s), retried from {} (at most {max_attempts} attempts)",
            d.attempts,
            rfc3339(d.next_attempt_at)
        ),
        "sending" => ", a tick is sending it now".into(),
        "dead" => format!(
            " after {} attempt(s): never retried by itself (`notifyctl deliveries retry {}`)",
            d.attempts, d.id
        ),
        "superseded" | "expired" => d
            .last_error
            .as_deref()
            .map(|why| format!(": {}", crate::output::one_line(why)))
            .unwrap_or_default(),
        _ => String::new(),
    }
}
