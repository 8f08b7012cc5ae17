//! Video links for events: an explicit URL is kept, `jitsi` makes an unguessable room,
//! `whereby` asks the Whereby REST API for a meeting and falls back to Jitsi when the
//! API fails (the event must still get a working link), logging why.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::{VideoConfig, VideoProvider};
use crate::error::user_error;

/// Resolve `--video auto|none|URL` into the link to store.
pub fn resolve(
    config: &VideoConfig,
    arg: &str,
    title: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> anyhow::Result<Option<String>> {
    match arg.trim() {
        "none" => Ok(None),
        "auto" => Ok(match config.provider {
            VideoProvider::None => None,
            VideoProvider::Jitsi => Some(jitsi_room(&config.jitsi_base_url)?),
            VideoProvider::Whereby => Some(whereby_or_jitsi(config, title, starts_at, ends_at)?),
        }),
        url if url.starts_with("https://") || url.starts_with("http://") => {
            if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(user_error(format!(
                    "invalid --video URL '{url}': it contains spaces"
                )));
            }
            Ok(Some(url.to_string()))
        }
        other => Err(user_error(format!(
            "invalid --video '{other}': use auto, none, or an http(s) URL"
        ))),
    }
}

/// A Jitsi room name with 128 random bits: unguessable, so only participants find it.
pub fn jitsi_room(base: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a room name: {e}"))?;
    Ok(format!(
        "{}/notifyctl-{}",
        base.trim_end_matches('/'),
        hex::encode(bytes)
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WherebyMeeting {
    room_url: String,
}

fn whereby_or_jitsi(
    config: &VideoConfig,
    title: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> anyhow::Result<String> {
    match whereby_meeting(config, starts_at, ends_at) {
        Ok(url) => Ok(url),
        Err(e) => {
            log::warn!("whereby: could not create a meeting for '{title}' ({e}); using a Jitsi room instead");
            jitsi_room(&config.jitsi_base_url)
        }
    }
}

fn whereby_meeting(
    config: &VideoConfig,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> anyhow::Result<String> {
    let key = std::env::var(&config.whereby_api_key_env)
        .map_err(|_| anyhow::anyhow!("environment variable {} is not set", config.whereby_api_key_env))?;
    let agent = ureq::AgentBuilder::new()
        .timeout(config.whereby_timeout.std())
        .build();
    let url = format!("{}/meetings", config.whereby_api_url.trim_end_matches('/'));
    let body = serde_json::json!({
        "startDate": crate::input::rfc3339(starts_at),
        // Whereby rooms stay valid until endDate; keep them an hour past the end.
        "endDate": crate::input::rfc3339(ends_at + chrono::TimeDelta::hours(1)),
        "fields": ["hostRoomUrl"],
    });
    let resp = agent
        .post(&url)
        .set("Authorization", &format!("Bearer {key}"))
        .send_json(body)
        .map_err(|e| match e {
            ureq::Error::Status(code, _) => anyhow::anyhow!("HTTP {code} from {url}"),
            other => anyhow::anyhow!("{other}"),
        })?;
    let meeting: WherebyMeeting = resp
        .into_json()
        .map_err(|e| anyhow::anyhow!("unexpected answer from {url}: {e}"))?;
    if !meeting.room_url.starts_with("https://") && !meeting.room_url.starts_with("http://") {
        anyhow::bail!("unexpected roomUrl '{}'", meeting.room_url);
    }
    Ok(meeting.room_url)
}
