//! Video links for events: an explicit URL is kept, `jitsi` makes an unguessable room,
//! `whereby` asks the Whereby REST API for a meeting and falls back to Jitsi when the
//! API fails (the event must still get a working link), logging why.
//!
//! Creating a link is separate from checking the `--video` argument, so that a booking
//! (or a whole import) is validated before any provider meeting exists; meetings are made
//! only for what is about to be written, several at a time for an import, and deleted
//! again if the write is refused after all.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::config::{VideoConfig, VideoProvider};
use crate::error::user_error;
use crate::input::printable;

/// What `--video` (or an import row's `video`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoRequest {
    None,
    /// A link made by the configured provider.
    Auto,
    Url(String),
}

/// Check `--video auto|none|URL`; nothing is created.
pub fn parse_request(arg: &str) -> anyhow::Result<VideoRequest> {
    match arg.trim() {
        "none" => Ok(VideoRequest::None),
        "auto" | "" => Ok(VideoRequest::Auto),
        url if url.starts_with("https://") || url.starts_with("http://") => {
            if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.len() > 2000 {
                return Err(user_error(format!(
                    "invalid video URL '{}': it contains spaces or is too long",
                    printable(url, 80)
                )));
            }
            Ok(VideoRequest::Url(url.to_string()))
        }
        other => Err(user_error(format!(
            "invalid video '{}': use auto, none, or an http(s) URL",
            printable(other, 80)
        ))),
    }
}

/// A link made for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub url: String,
    /// The Whereby meeting behind it, deleted if the booking is refused after all.
    pub meeting_id: Option<String>,
}

/// What a link is for: the event's title and times.
#[derive(Debug, Clone)]
pub struct Slot<'a> {
    pub title: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Make the link `request` asks for (no network unless the provider is Whereby).
pub fn create(config: &VideoConfig, request: &VideoRequest, slot: &Slot) -> anyhow::Result<Option<Link>> {
    Ok(match request {
        VideoRequest::None => None,
        VideoRequest::Url(url) => Some(Link {
            url: url.clone(),
            meeting_id: None,
        }),
        VideoRequest::Auto => match config.provider {
            VideoProvider::None => None,
            VideoProvider::Jitsi => Some(Link {
                url: jitsi_room(&config.jitsi_base_url)?,
                meeting_id: None,
            }),
            VideoProvider::Whereby => Some(whereby_or_jitsi(config, slot)?),
        },
    })
}

/// Links for many slots; Whereby meetings are requested a few at a time in parallel so
/// an import of thousands of rows does not wait one round trip per row.
pub fn create_many(
    config: &VideoConfig,
    requests: &[(VideoRequest, Slot)],
) -> anyhow::Result<Vec<Option<Link>>> {
    const PARALLEL: usize = 8;
    if config.provider != VideoProvider::Whereby {
        return requests.iter().map(|(r, s)| create(config, r, s)).collect();
    }
    // Contiguous chunks, one thread each, results kept in order.
    let size = requests.len().div_ceil(PARALLEL).max(1);
    let chunks: Vec<Vec<anyhow::Result<Option<Link>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = requests
            .chunks(size)
            .map(|chunk| scope.spawn(move || chunk.iter().map(|(r, s)| create(config, r, s)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err(anyhow::anyhow!("a video link worker failed"))])
            })
            .collect()
    });
    chunks.into_iter().flatten().collect()
}

/// Delete the provider meetings behind links whose booking was not written. Best effort:
/// a failure is logged (the meeting expires by itself an hour after the event).
pub fn discard(config: &VideoConfig, links: &[Link]) {
    let ids: Vec<&str> = links.iter().filter_map(|l| l.meeting_id.as_deref()).collect();
    if ids.is_empty() {
        return;
    }
    let key = match crate::secrets::whereby_api_key(config).read() {
        Ok(Some((key, _))) => key,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("whereby: cannot delete meetings: {e:#}");
            return;
        }
    };
    let key = key.expose();
    let agent = ureq::AgentBuilder::new()
        .timeout(config.whereby_timeout.std())
        .build();
    for id in ids {
        let url = format!(
            "{}/meetings/{}",
            config.whereby_api_url.trim_end_matches('/'),
            url_segment(id)
        );
        if let Err(e) = agent
            .delete(&url)
            .set("Authorization", &format!("Bearer {key}"))
            .call()
        {
            tracing::warn!("whereby: could not delete meeting {}: {e}", printable(id, 40));
        }
    }
}

/// A meeting id as one URL path segment.
fn url_segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
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
    #[serde(default)]
    meeting_id: Option<String>,
}

fn whereby_or_jitsi(config: &VideoConfig, slot: &Slot) -> anyhow::Result<Link> {
    match whereby_meeting(config, slot.starts_at, slot.ends_at) {
        Ok(link) => Ok(link),
        Err(e) => {
            tracing::warn!(
                "whereby: could not create a meeting for '{}' ({e}); using a Jitsi room instead",
                printable(slot.title, 60)
            );
            Ok(Link {
                url: jitsi_room(&config.jitsi_base_url)?,
                meeting_id: None,
            })
        }
    }
}

fn whereby_meeting(
    config: &VideoConfig,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> anyhow::Result<Link> {
    let key = crate::secrets::whereby_api_key(config).require("[video] provider = \"whereby\" needs it")?;
    let key = key.expose();
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
    let ok = (meeting.room_url.starts_with("https://") || meeting.room_url.starts_with("http://"))
        && !meeting
            .room_url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        && meeting.room_url.len() <= 2000;
    if !ok {
        anyhow::bail!("unexpected roomUrl '{}'", printable(&meeting.room_url, 80));
    }
    Ok(Link {
        url: meeting.room_url,
        meeting_id: meeting.meeting_id,
    })
}
