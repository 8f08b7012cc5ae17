//! SMS through an HTTP gateway: one request per message, shaped by the operator's settings
//! (`[sms]`: URL, method, a form or JSON body template, basic auth or a bearer token) so
//! that Twilio, Vonage or any gateway with an HTTP API is a matter of configuration.
//!
//! The request goes through [`http::send`]: bounded by the tick's deadline, redirects
//! handled safely, 4xx other than 408 and 429 refused for good (dead), 429 retried no sooner
//! than `Retry-After`, 5xx and timeouts retried with backoff. A 401 or 403 is our
//! credentials, not the message: the channel is set aside and the delivery kept.

use self::base64_encode::encode as base64;

use super::{http, Deadline, Outgoing, SendError, Sender, Sent};
use crate::config::{HttpAuth, SmsConfig};
use crate::messages::request::{BodyTemplate, BodyValues};

pub struct SmsSender {
    agent: ureq::Agent,
    url: String,
    method: String,
    template: BodyTemplate,
    from: String,
    authorization: Option<String>,
    timeout: std::time::Duration,
}

/// The `Authorization` header for `auth`, its secret read from the file or the environment
/// variable `secret` names (`secrets.rs`; a missing one makes the channel unusable, with a
/// message saying which setting). The secret and the username go into a header: a control
/// character in either is refused (without showing the secret).
pub fn authorization(
    auth: HttpAuth,
    username: &str,
    secret: crate::secrets::SecretSetting<'_>,
) -> anyhow::Result<Option<String>> {
    if auth == HttpAuth::None {
        return Ok(None);
    }
    let what = secret.key.split(']').next().unwrap_or("").trim_start_matches('[');
    let value = secret.require(&format!("[{what}] auth = \"{}\" needs it", auth.as_str()))?;
    if value.expose().chars().any(char::is_control) {
        return Err(crate::error::user_error(format!(
            "{} holds a control character: it cannot go into an HTTP header",
            secret.what
        )));
    }
    Ok(Some(match auth {
        HttpAuth::Basic => {
            if username.chars().any(char::is_control) || username.contains(':') {
                return Err(crate::error::user_error(format!(
                    "[{what}] username holds a ':' or a control character: basic auth cannot carry it"
                )));
            }
            format!(
                "Basic {}",
                base64(format!("{username}:{}", value.expose()).as_bytes())
            )
        }
        HttpAuth::Bearer => format!("Bearer {}", value.expose()),
        HttpAuth::None => return Ok(None),
    }))
}

/// Standard base64 (RFC 4648), for basic auth: a dozen lines rather than a dependency.
mod base64_encode {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

impl SmsSender {
    pub fn new(cfg: &SmsConfig) -> anyhow::Result<SmsSender> {
        let template = BodyTemplate::new(cfg.format, &cfg.body)
            .map_err(|e| crate::error::user_error(format!("[sms] body: {e:#}")))?;
        Ok(SmsSender {
            // Redirects are handled by `http::send`, which re-sends the body only when safe.
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            url: cfg.url.clone(),
            method: cfg.method.clone(),
            template,
            from: cfg.from.clone(),
            authorization: authorization(cfg.auth, &cfg.username, crate::secrets::sms_secret(cfg))?,
            timeout: cfg.timeout.std(),
        })
    }
}

impl Sender for SmsSender {
    fn send(&mut self, item: &Outgoing, deadline: Deadline) -> Result<Sent, SendError> {
        let Some(to) = item.recipient.phone.as_deref() else {
            return Err(SendError::Permanent("the recipient has no phone number".into()));
        };
        let to = crate::input::parse_phone(to).map_err(|e| SendError::Permanent(format!("{e:#}")))?;
        let text = item.rendered.sms.as_str();
        if text.trim().is_empty() {
            return Err(SendError::Permanent("the SMS text is empty".into()));
        }
        let body = self
            .template
            .render(&BodyValues {
                to: &to,
                from: &self.from,
                text,
                user_id: item.recipient.user_id,
                delivery_id: item.delivery_id,
                kind: item.kind.as_str(),
            })
            .map_err(|e| SendError::Misconfigured(format!("[sms] body: {e:#}")))?;
        // GET carries the form in the query string.
        let (url, body) = if self.method == "GET" {
            let sep = if self.url.contains('?') { '&' } else { '?' };
            (format!("{}{sep}{body}", self.url), String::new())
        } else {
            (self.url.clone(), body)
        };
        let mut headers = vec![
            (
                "User-Agent",
                concat!("notifyctl/", env!("CARGO_PKG_VERSION")).to_string(),
            ),
            ("Idempotency-Key", format!("notifyctl-{}", item.delivery_id)),
        ];
        if self.method != "GET" {
            headers.push(("Content-Type", self.template.format().content_type().to_string()));
        }
        if let Some(auth) = &self.authorization {
            headers.push(("Authorization", auth.clone()));
        }
        let request = http::Request {
            method: &self.method,
            url: &url,
            headers,
            body: body.as_bytes(),
            timeout: self.timeout,
            what: "SMS gateway",
        };
        let answer = http::send(&self.agent, &request, deadline).map_err(credentials_refused)?;
        Ok(Sent {
            message_id: gateway_id(&answer.body),
            response: match answer.redirected_to {
                Some(url) => format!("HTTP {} from {url}", answer.status),
                None => format!("HTTP {}", answer.status),
            },
        })
    }
}

/// 401 and 403 say our credentials are wrong: nothing about this message. The channel is
/// set aside and the delivery waits without spending an attempt (shared with ntfy).
pub fn credentials_refused(e: SendError) -> SendError {
    match e {
        SendError::Permanent(text)
            if text.contains("answered HTTP 401") || text.contains("answered HTTP 403") =>
        {
            SendError::Misconfigured(format!("{text} (check the credentials)"))
        }
        other => other,
    }
}

/// The gateway's id for the message, when its JSON answer has one (`sid`, `id`,
/// `message_id`, or the first of `messages[]`), for audits.
fn gateway_id(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let pick = |v: &serde_json::Value| {
        ["sid", "message_id", "message-id", "id"]
            .iter()
            .find_map(|k| match v.get(k) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
    };
    pick(&v)
        .or_else(|| v.get("messages")?.get(0).and_then(pick))
        .map(|id| crate::input::printable(&id, 100))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_credentials() {
        // RFC 7617's example.
        assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn gateway_ids() {
        assert_eq!(gateway_id(r#"{"sid":"SM123"}"#).as_deref(), Some("SM123"));
        assert_eq!(
            gateway_id(r#"{"messages":[{"message-id":"abc"}]}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(gateway_id("OK"), None);
    }
}
