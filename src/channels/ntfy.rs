//! Push notifications through ntfy (<https://ntfy.sh> or a server of one's own): each
//! message published as JSON to the server's root URL, to the recipient's own topic, with
//! a title, the text, the event's video link to open on a tap, and a higher priority for
//! reminders. A topic is a secret (anyone who knows it can subscribe), so it is never
//! logged; `user update --ntfy-topic auto` makes an unguessable one.

use serde_json::json;

use super::sms::{authorization, credentials_refused};
use super::{http, Deadline, Outgoing, SendError, Sender, Sent};
use crate::config::NtfyConfig;
use crate::messages::Kind;

pub struct NtfySender {
    agent: ureq::Agent,
    url: String,
    authorization: Option<String>,
    reminder_priority: u8,
    timeout: std::time::Duration,
}

impl NtfySender {
    pub fn new(cfg: &NtfyConfig) -> anyhow::Result<NtfySender> {
        Ok(NtfySender {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            url: cfg.url.trim_end_matches('/').to_string(),
            authorization: authorization(cfg.auth, &cfg.username, crate::secrets::ntfy_secret(cfg))?,
            reminder_priority: cfg.reminder_priority,
            timeout: cfg.timeout.std(),
        })
    }

    /// The JSON ntfy publishes (<https://docs.ntfy.sh/publish/#publish-as-json>).
    pub fn payload(&self, item: &Outgoing, topic: &str) -> String {
        let priority = if item.kind == Kind::Reminder {
            self.reminder_priority
        } else {
            3
        };
        let mut body = json!({
            "topic": topic,
            "title": item.rendered.subject,
            "message": item.rendered.summary,
            "priority": priority,
            "tags": [item.kind.as_str()],
        });
        let click = item
            .event
            .as_ref()
            .and_then(|e| e.video_url.as_deref())
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
        if let (Some(url), true) = (click, item.kind != Kind::Cancelled) {
            body["click"] = json!(url);
        }
        body.to_string()
    }
}

impl Sender for NtfySender {
    fn send(&mut self, item: &Outgoing, deadline: Deadline) -> Result<Sent, SendError> {
        let Some(topic) = item.recipient.ntfy_topic.as_deref() else {
            return Err(SendError::Permanent("the recipient has no ntfy topic".into()));
        };
        let topic =
            crate::input::parse_ntfy_topic(topic).map_err(|e| SendError::Permanent(format!("{e:#}")))?;
        let body = self.payload(item, &topic);
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            (
                "User-Agent",
                concat!("notifyctl/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
        ];
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth.clone()));
        }
        let request = http::Request {
            method: "POST",
            url: &self.url,
            headers,
            body: body.as_bytes(),
            timeout: self.timeout,
            what: "ntfy server",
        };
        let answer = http::send(&self.agent, &request, deadline).map_err(credentials_refused)?;
        let id = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| {
                v.get("id")
                    .and_then(|i| i.as_str())
                    .map(|s| crate::input::printable(s, 60))
            });
        Ok(Sent {
            message_id: id,
            response: format!("HTTP {}", answer.status),
        })
    }
}
