//! The webhook channel: each notice POSTed as JSON to one URL, so an app can push it to
//! its users in real time (WebSocket, mobile push).
//!
//! Signed like the webhooks of payment and code-hosting platforms: the header
//! `X-Notifyctl-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
//! timestamp in `X-Notifyctl-Timestamp` (Unix seconds), so a receiver can check both the
//! sender and the freshness. `X-Notifyctl-Delivery` is stable across retries, for
//! receivers that want to drop a duplicate.

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{http, Deadline, Outgoing, SendError, Sender, Sent};
use crate::config::WebhookConfig;
use crate::input::rfc3339;

pub struct WebhookSender {
    agent: ureq::Agent,
    url: String,
    secret: String,
    timeout: std::time::Duration,
}

/// `v1=` + hex HMAC-SHA256 over `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookSender {
    pub fn new(cfg: &WebhookConfig) -> anyhow::Result<WebhookSender> {
        let secret = crate::secrets::webhook_secret(cfg)
            .require("the webhook channel signs every request")?
            .expose()
            .to_string();
        // Redirects are handled by `http::send`, which re-sends the body only when safe.
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        Ok(WebhookSender {
            agent,
            url: cfg.url.clone(),
            secret,
            timeout: cfg.timeout.std(),
        })
    }

    pub fn payload(item: &Outgoing) -> String {
        let event = item.event.as_ref().map(|e| {
            json!({
                "id": e.id,
                "title": e.title,
                "starts_at": rfc3339(e.starts_at),
                "ends_at": rfc3339(e.ends_at),
                "status": e.status.as_str(),
                "video_url": e.video_url,
            })
        });
        json!({
            "delivery_id": item.delivery_id,
            "notification": {
                "id": item.notification_id,
                "user_id": item.recipient.user_id,
                "user_email": item.recipient.email,
                "kind": item.kind.as_str(),
                "title": item.title,
                "body": item.body,
                "event_id": item.event_id,
                "offset_minutes": item.offset_minutes,
                "created_at": rfc3339(item.created_at),
            },
            "event": event,
        })
        .to_string()
    }
}

impl Sender for WebhookSender {
    fn send(&mut self, item: &Outgoing, deadline: Deadline) -> Result<Sent, SendError> {
        let body = Self::payload(item);
        let timestamp = item.now.timestamp();
        let request = http::Request {
            method: "POST",
            url: &self.url,
            headers: vec![
                ("Content-Type", "application/json".into()),
                (
                    "User-Agent",
                    concat!("notifyctl/", env!("CARGO_PKG_VERSION")).into(),
                ),
                ("X-Notifyctl-Delivery", item.delivery_id.to_string()),
                ("X-Notifyctl-Timestamp", timestamp.to_string()),
                ("X-Notifyctl-Signature", signature(&self.secret, timestamp, &body)),
            ],
            body: body.as_bytes(),
            timeout: self.timeout,
            what: "webhook",
        };
        let answer = http::send(&self.agent, &request, deadline)?;
        Ok(Sent {
            message_id: None,
            response: match answer.redirected_to {
                Some(url) => format!("HTTP {} from {url}", answer.status),
                None => format!("HTTP {}", answer.status),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value from an independent implementation (Python's hmac module).
        assert_eq!(
            signature("s3cret", 1_900_000_000, "{\"a\":1}"),
            "v1=69bb09e539ec4b7d4ecc65478d0e4748369980581ad9d3991335f387b44e73d6"
        );
    }
}
