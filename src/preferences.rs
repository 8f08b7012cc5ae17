//! Preferences: whether a kind of notice goes out to a person on a personal channel
//! (email, SMS, push). Pure: the stored rows, the user's email flag and the mandatory kinds
//! in, a choice out.
//!
//! The model, in the order a choice is made:
//! 1. a kind listed in `[preferences] mandatory` goes out whatever the rows say (a person
//!    must learn that a session was cancelled or moved);
//! 2. a row for (kind, channel) decides;
//! 3. else the channel's row for the kind `all` — for email, `users.email_enabled`, the
//!    switch `user add --no-email` and `user update --email-notices` have always set;
//! 4. else on: having given the address is the opt-in.
//!
//! The in-app row is not a channel here: it is always kept. Neither is the webhook: it is
//! the app's own feed of every notice.

use serde::Serialize;

use crate::messages::Kind;
use crate::model::Channel;
use crate::store::Preference;

/// Where a choice comes from, for `prefs show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A row for this kind.
    Kind,
    /// The channel's setting for all kinds.
    All,
    /// Nothing set: on.
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// What the person chose (or the default).
    pub enabled: bool,
    pub source: Source,
    /// The kind goes out whatever was chosen.
    pub mandatory: bool,
}

impl Choice {
    /// Whether the notice goes out on the channel.
    pub fn wanted(&self) -> bool {
        self.enabled || self.mandatory
    }
}

/// The choice for `kind` on `channel` (a personal channel).
pub fn choice(
    rows: &[Preference],
    email_enabled: bool,
    kind: Kind,
    channel: Channel,
    mandatory: &[Kind],
) -> Choice {
    let row = |k: &str| {
        rows.iter()
            .find(|p| p.kind == k && p.channel == channel.as_str())
            .map(|p| p.enabled)
    };
    let (enabled, source) = match row(kind.as_str()) {
        Some(on) => (on, Source::Kind),
        None if channel == Channel::Email => (
            email_enabled,
            if email_enabled {
                Source::Default
            } else {
                Source::All
            },
        ),
        None => match row("all") {
            Some(on) => (on, Source::All),
            None => (true, Source::Default),
        },
    };
    Choice {
        enabled,
        source,
        mandatory: mandatory.contains(&kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pref(kind: &str, channel: &str, enabled: bool) -> Preference {
        Preference {
            kind: kind.into(),
            channel: channel.into(),
            enabled,
        }
    }

    const MANDATORY: &[Kind] = &[Kind::Cancelled, Kind::Rescheduled];

    #[test]
    fn nothing_set_means_on() {
        let c = choice(&[], true, Kind::Reminder, Channel::Sms, MANDATORY);
        assert_eq!((c.enabled, c.source, c.wanted()), (true, Source::Default, true));
    }

    #[test]
    fn a_kind_row_beats_the_channel_row() {
        let rows = [pref("all", "sms", false), pref("reminder", "sms", true)];
        assert!(choice(&rows, true, Kind::Reminder, Channel::Sms, MANDATORY).wanted());
        let c = choice(&rows, true, Kind::Assigned, Channel::Sms, MANDATORY);
        assert_eq!((c.enabled, c.source), (false, Source::All));
        assert!(!c.wanted());
    }

    #[test]
    fn the_email_flag_is_the_all_kinds_email_setting() {
        let c = choice(&[], false, Kind::Assigned, Channel::Email, MANDATORY);
        assert_eq!((c.enabled, c.source, c.wanted()), (false, Source::All, false));
        let rows = [pref("reminder", "email", true)];
        assert!(choice(&rows, false, Kind::Reminder, Channel::Email, MANDATORY).wanted());
        // Rows of other channels do not leak into email.
        let rows = [pref("all", "sms", false)];
        assert!(choice(&rows, true, Kind::Custom, Channel::Email, MANDATORY).wanted());
    }

    #[test]
    fn mandatory_kinds_go_out_whatever_was_chosen() {
        let rows = [pref("cancelled", "ntfy", false)];
        let c = choice(&rows, true, Kind::Cancelled, Channel::Ntfy, MANDATORY);
        assert!(!c.enabled && c.mandatory && c.wanted());
        assert!(choice(&[], false, Kind::Rescheduled, Channel::Email, MANDATORY).wanted());
        assert!(!choice(&[], false, Kind::Rescheduled, Channel::Email, &[]).wanted());
    }
}
