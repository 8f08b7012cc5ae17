//! One HTTP request for a delivery (webhook, SMS gateway, push), shared by the channels
//! that speak HTTP: bounded by the send's deadline as a whole (a server that trickles its
//! answer cannot hold the tick), redirects handled so that a message is never reported
//! sent when it was only redirected, and the answer classified for the outbox.
//!
//! Redirects: 307 and 308 are followed with the same method and body (RFC 9110 §15.4);
//! 301, 302 and 303 only when they point at the same URL upgraded from `http://` to
//! `https://` (a common server setting that would otherwise lose every message); never
//! from `https://` to `http://`; at most [`MAX_HOPS`]. Anything else is a failure that
//! says what to fix.

use std::io::Read;
use std::time::{Duration, Instant};

use super::{Deadline, SendError};
use crate::input::printable;

pub const MAX_HOPS: usize = 3;

/// A request to make: where, its headers and its body.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: &'a [u8],
    /// The longest any request may take, if the deadline is later.
    pub timeout: Duration,
    /// Names the channel in messages ("webhook", "SMS gateway").
    pub what: &'a str,
}

/// A successful answer: its status and the start of its body (for audits).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The URL that finally answered, when a redirect was followed.
    pub redirected_to: Option<String>,
}

/// How much of an answer's body is kept.
const BODY_KEPT: u64 = 2048;

/// Make `req` through `agent` (built with redirects off), within `deadline`.
pub fn send(agent: &ureq::Agent, req: &Request, deadline: Deadline) -> Result<Answer, SendError> {
    let mut url = req.url.to_string();
    for hop in 0..=MAX_HOPS {
        let now = Instant::now();
        if now >= deadline.exchange {
            return Err(SendError::Unavailable(format!(
                "{} {}: the tick's time was up before the request could be sent",
                req.what,
                shown(&url)
            )));
        }
        let budget = req.timeout.min(deadline.answer.saturating_duration_since(now));
        let mut call = agent.request(req.method, &url).timeout(budget);
        for (name, value) in &req.headers {
            call = call.set(name, value);
        }
        match call.send_bytes(req.body) {
            Ok(resp) if (300..400).contains(&resp.status()) => {
                let status = resp.status();
                let next = redirect_target(&url, status, resp.header("Location"), req.what)?;
                if hop == MAX_HOPS {
                    return Err(SendError::Temporary(format!(
                        "{} {}: more than {MAX_HOPS} redirects",
                        req.what,
                        shown(req.url)
                    )));
                }
                if status != 307 && status != 308 {
                    tracing::warn!(
                        "{} {} redirects to {}: set that URL in the config",
                        req.what,
                        shown(&url),
                        shown(&next)
                    );
                }
                url = next;
            }
            Ok(resp) => {
                let status = resp.status();
                return Ok(Answer {
                    status,
                    body: body_of(resp),
                    redirected_to: (url != req.url).then_some(url),
                });
            }
            Err(ureq::Error::Status(code, resp)) => {
                let retry_after = resp.header("Retry-After").and_then(parse_retry_after);
                let body = body_of(resp);
                let text = format!(
                    "{} answered HTTP {code}{}",
                    req.what,
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", printable(&body, 200))
                    }
                );
                return Err(classify_status(code, text, retry_after));
            }
            Err(ureq::Error::Transport(t)) => return Err(transport_error(req.what, &url, &t, budget)),
        }
    }
    Err(SendError::Temporary(format!("{}: too many redirects", req.what)))
}

/// 4xx other than 408 and 429 will not change by retrying; 429 says when to come back.
fn classify_status(code: u16, text: String, retry_after: Option<Duration>) -> SendError {
    match code {
        429 => match retry_after {
            Some(wait) => SendError::Throttled(text, wait),
            None => SendError::Temporary(text),
        },
        408 => SendError::Temporary(text),
        400..=499 => SendError::Permanent(text),
        _ => SendError::Temporary(text),
    }
}

/// Where a redirect may be followed to, or why not.
fn redirect_target(from: &str, status: u16, location: Option<&str>, what: &str) -> Result<String, SendError> {
    let not_followed = |why: String| {
        SendError::Temporary(format!(
            "{what} {} answered HTTP {status} ({why}): set the final URL in the config",
            shown(from)
        ))
    };
    let Some(location) = location else {
        return Err(not_followed("a redirect without a Location".into()));
    };
    let base = url::Url::parse(from).map_err(|e| not_followed(format!("bad URL: {e}")))?;
    let next = base
        .join(location.trim())
        .map_err(|e| not_followed(format!("bad Location '{}': {e}", printable(location, 100))))?;
    if base.scheme() == "https" && next.scheme() != "https" {
        return Err(not_followed(format!(
            "it points from https to {}, which is never followed",
            shown(next.as_str())
        )));
    }
    if !matches!(next.scheme(), "http" | "https") {
        return Err(not_followed(format!("it points to {}", shown(next.as_str()))));
    }
    match status {
        307 | 308 => Ok(next.into()),
        301..=303 if is_https_upgrade(&base, &next) => Ok(next.into()),
        _ => Err(not_followed(format!(
            "to {}; only 307 and 308, or an upgrade of the same URL to https, resend the body",
            shown(next.as_str())
        ))),
    }
}

/// The same URL, only from `http://` to `https://` (default ports).
fn is_https_upgrade(from: &url::Url, to: &url::Url) -> bool {
    from.scheme() == "http"
        && to.scheme() == "https"
        && from.host_str() == to.host_str()
        && from.port().is_none()
        && to.port().is_none()
        && from.path() == to.path()
        && from.query() == to.query()
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    #[allow(clippy::disallowed_methods)] // a server's date is compared with the real clock
    let now = std::time::SystemTime::now();
    Some(when.duration_since(now).unwrap_or_default())
}

fn body_of(resp: ureq::Response) -> String {
    let mut buf = Vec::new();
    let _ = resp.into_reader().take(BODY_KEPT).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim().to_string()
}

/// A transport failure in words: what failed, where, and after how long.
fn transport_error(what: &str, url: &str, t: &ureq::Transport, budget: Duration) -> SendError {
    let timed_out = std::error::Error::source(t)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        });
    let why = match t.kind() {
        _ if timed_out => format!("no answer within {}", crate::input::format_duration_std(budget)),
        ureq::ErrorKind::Dns => "cannot resolve the host name".to_string(),
        ureq::ErrorKind::ConnectionFailed => format!(
            "cannot connect ({})",
            t.message()
                .map(|m| printable(m, 100))
                .unwrap_or_else(|| "refused".into())
        ),
        _ => printable(&t.to_string(), 200),
    };
    SendError::Unavailable(format!("{what} {}: {why}", shown(url)))
}

/// A URL as shown in messages: without any user:password part.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            printable(u.as_str(), 200)
        }
        Err(_) => printable(url, 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(from: &str, status: u16, to: &str) -> Result<String, String> {
        redirect_target(from, status, Some(to), "webhook").map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn which_redirects_are_followed() {
        assert_eq!(target("http://a.org/h", 307, "/x").unwrap(), "http://a.org/x");
        assert_eq!(
            target("https://a.org/h", 308, "https://b.org/h").unwrap(),
            "https://b.org/h"
        );
        assert_eq!(
            target("http://a.org/h?k=1", 301, "https://a.org/h?k=1").unwrap(),
            "https://a.org/h?k=1"
        );
        assert!(target("https://a.org/h", 307, "http://a.org/h")
            .unwrap_err()
            .contains("never followed"));
        assert!(target("http://a.org/h", 302, "https://a.org/other").is_err());
        assert!(target("http://a.org/h", 303, "http://b.org/h").is_err());
        assert!(target("http://a.org/h", 307, "ftp://a.org/h").is_err());
        assert!(redirect_target("http://a.org/h", 307, None, "webhook").is_err());
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(
            classify_status(404, "x".into(), None),
            SendError::Permanent(_)
        ));
        assert!(matches!(
            classify_status(408, "x".into(), None),
            SendError::Temporary(_)
        ));
        assert!(matches!(
            classify_status(500, "x".into(), None),
            SendError::Temporary(_)
        ));
        assert!(matches!(
            classify_status(429, "x".into(), Some(Duration::from_secs(90))),
            SendError::Throttled(_, d) if d == Duration::from_secs(90)
        ));
    }

    #[test]
    fn retry_after_in_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn credentials_in_urls_are_never_shown() {
        assert_eq!(shown("https://user:secret@a.org/h"), "https://a.org/h");
    }
}
