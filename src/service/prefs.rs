//! `prefs show` and `prefs set`: what each person receives, per kind of notice and
//! personal channel (the rules are in `preferences.rs`).

use serde::Serialize;

use super::notices::{preference, unusable, user_preferences};
use super::Service;
use crate::error::user_error;
use crate::messages::Kind;
use crate::model::{Channel, User};
use crate::preferences::Source;
use crate::store::{self, UserChanges};

/// Whether a channel can reach the user at all.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelState {
    pub channel: &'static str,
    pub usable: bool,
    /// Why not (not configured, no address).
    pub why: Option<String>,
}

/// One kind on one channel.
#[derive(Debug, Clone, Serialize)]
pub struct PrefEntry {
    pub kind: &'static str,
    pub channel: &'static str,
    /// What the user chose (or the default).
    pub enabled: bool,
    pub source: Source,
    /// Sent whatever was chosen (`[preferences] mandatory`).
    pub mandatory: bool,
    /// Whether such a notice goes out on this channel now.
    pub sent: bool,
}

/// A user's preferences as `prefs show` prints them; the JSON names are a contract.
#[derive(Debug, Clone, Serialize)]
pub struct PrefsReport {
    pub user_id: i64,
    pub user_email: String,
    pub quiet_hours: Option<String>,
    pub channels: Vec<ChannelState>,
    pub preferences: Vec<PrefEntry>,
}

/// What `prefs set` did.
#[derive(Debug, Clone, Serialize)]
pub struct PrefsChange {
    #[serde(flatten)]
    pub report: PrefsReport,
    /// Kinds switched off that still go out, being mandatory.
    pub still_sent: Vec<&'static str>,
}

/// `email`, `sms`, `ntfy` (or `push`), or `all` of them.
fn parse_channels(s: &str) -> anyhow::Result<Vec<Channel>> {
    match s.trim().to_ascii_lowercase().as_str() {
        "all" => Ok(Channel::PERSONAL.to_vec()),
        "email" => Ok(vec![Channel::Email]),
        "sms" => Ok(vec![Channel::Sms]),
        "ntfy" | "push" => Ok(vec![Channel::Ntfy]),
        "webhook" => Err(user_error(
            "the webhook is the app's own feed of every notice, not a person's channel: it cannot be switched per user (use email, sms, ntfy or all)",
        )),
        "in-app" | "inapp" | "inbox" => Err(user_error(
            "the in-app notice is always kept: only outgoing channels can be switched (email, sms, ntfy or all)",
        )),
        _ => Err(user_error(format!(
            "unknown channel '{}': use email, sms, ntfy or all",
            crate::input::printable(s, 30)
        ))),
    }
}

/// A kind, or `all`.
fn parse_kinds(s: &str) -> anyhow::Result<Option<Kind>> {
    if s.trim().eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    s.parse::<Kind>()
        .map(Some)
        .map_err(|e| user_error(format!("{e} (or all)")))
}

impl Service {
    fn prefs_report(&self, user: &User, prefs: &[crate::store::Preference]) -> PrefsReport {
        let channels: Vec<ChannelState> = Channel::PERSONAL
            .iter()
            .map(|&c| {
                let why = unusable(&self.config, c, user);
                ChannelState {
                    channel: c.as_str(),
                    usable: why.is_none(),
                    why,
                }
            })
            .collect();
        let mut preferences = Vec::new();
        for kind in Kind::ALL {
            for (i, channel) in Channel::PERSONAL.into_iter().enumerate() {
                let choice = preference(&self.config, prefs, user, kind, channel);
                preferences.push(PrefEntry {
                    kind: kind.as_str(),
                    channel: channel.as_str(),
                    enabled: choice.enabled,
                    source: choice.source,
                    mandatory: choice.mandatory,
                    sent: choice.wanted() && channels[i].usable,
                });
            }
        }
        PrefsReport {
            user_id: user.id,
            user_email: user.email.clone(),
            quiet_hours: user.quiet_hours.clone(),
            channels,
            preferences,
        }
    }

    /// `prefs show --user U`.
    pub fn prefs(&mut self, user_key: &str) -> anyhow::Result<PrefsReport> {
        let user = self.store.find_user(user_key)?;
        let prefs = user_preferences(self.store.ops(), &user, &self.reporter)?;
        Ok(self.prefs_report(&user, &prefs))
    }

    /// `prefs set --user U --kind KIND --channel CHANNEL on|off`. `all` for the kind
    /// replaces the channel's per-kind choices; for email it is `users.email_enabled`.
    pub fn set_prefs(
        &mut self,
        user_key: &str,
        kind: &str,
        channel: &str,
        on: bool,
    ) -> anyhow::Result<PrefsChange> {
        let kind = parse_kinds(kind)?;
        let channels = parse_channels(channel)?;
        let now = self.now();
        let config = &self.config;
        let (user, prefs) = store::write(&mut *self.store, |ops| {
            let user = ops.find_user(user_key)?;
            for &c in &channels {
                match (kind, c) {
                    (None, Channel::Email) => {
                        ops.update_user(
                            user.id,
                            &UserChanges {
                                email_enabled: Some(on),
                                ..UserChanges::default()
                            },
                        )?;
                        ops.clear_preferences(user.id, c.as_str())?;
                    }
                    (None, _) => {
                        ops.clear_preferences(user.id, c.as_str())?;
                        ops.put_preference(user.id, "all", c.as_str(), on, now)?;
                    }
                    (Some(k), _) => ops.put_preference(user.id, k.as_str(), c.as_str(), on, now)?,
                }
            }
            let user = ops
                .user(user.id)?
                .ok_or_else(|| anyhow::anyhow!("user {} vanished during the update", user.id))?;
            let prefs = ops.preferences(user.id)?;
            if on {
                // A change between a notice and its sending wins, this way too: the user's
                // messages still on their way gain the channel, where it can reach them.
                for &c in &channels {
                    if unusable(config, c, &user).is_some() {
                        continue;
                    }
                    let kinds: Vec<&str> = Kind::ALL
                        .into_iter()
                        .filter(|&k| preference(config, &prefs, &user, k, c).wanted())
                        .map(Kind::as_str)
                        .collect();
                    let added = ops.add_channel_to_pending(user.id, c.as_str(), &kinds, now)?;
                    if added > 0 {
                        tracing::info!(
                            user_id = user.id,
                            "{added} message(s) on their way now also go by {}",
                            c.as_str()
                        );
                    }
                }
            }
            Ok((user, prefs))
        })?;
        let still_sent = if on {
            Vec::new()
        } else {
            self.config
                .preferences
                .mandatory
                .iter()
                .filter(|m| kind.is_none_or(|k| k == **m))
                .map(|m| m.as_str())
                .collect()
        };
        Ok(PrefsChange {
            report: self.prefs_report(&user, &prefs),
            still_sent,
        })
    }
}
