//! Heartbeat pings for push monitoring, in healthchecks.io's conventions (which Cronitor,
//! Uptime Kuma's push monitors and others accept too): `URL/start` when a tick starts,
//! `URL` when it succeeded, `URL/fail` when it failed.
//!
//! "Failed" is what the exit code says: any error once the config was read (the database
//! could not be opened, the tick broke off), and also a tick that finished but exits 3
//! because deliveries went dead or a channel could not be used. Monitoring then agrees with
//! cron and systemd, which show that run as failed too, and the `/fail` ping carries the
//! exit status and the one-line reason in its body, which healthchecks.io shows in the
//! check's log. (`URL/<exit status>` would tell healthchecks.io the same, but `/fail` is the
//! convention other services share.) Retries waiting for a server that was down are a
//! success (exit 0), as everywhere else.
//!
//! Every ping of one tick carries the same `rid` (a random UUID), so healthchecks.io pairs
//! the start with its end even when two ticks overlap, and measures each tick's duration.
//!
//! Monitoring must never hold the tick back or fail it: the start ping runs on its own
//! thread while the tick works, the end ping waits at most `heartbeat_timeout` (the start
//! ping included), and a ping that fails is logged as a warning, nothing more. The ping URL
//! is a credential of sorts (anyone who knows it can ping): logs name its host only.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use url::Url;

use crate::config::TickConfig;

/// The longest `/fail` body sent: a reason, not a report.
const MAX_BODY: usize = 10_000;

/// How a tick ended, for its last ping.
#[derive(Debug, Clone, Copy)]
pub enum End<'a> {
    Success,
    /// The tick failed: the one-line reason.
    Fail(&'a str),
}

/// The pings of one tick.
pub struct Heartbeat {
    base: Url,
    rid: String,
    timeout: Duration,
    start: mpsc::Receiver<()>,
}

impl Heartbeat {
    /// Send `URL/start` (in the background) when a heartbeat URL is configured.
    pub fn start(config: &TickConfig) -> Option<Heartbeat> {
        if config.heartbeat_url.is_empty() {
            return None;
        }
        let base = match Url::parse(&config.heartbeat_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base() => u,
            _ => {
                tracing::warn!("heartbeat: [tick] heartbeat_url is not an http(s) URL; no pings");
                return None;
            }
        };
        let rid = run_id();
        let timeout = config.heartbeat_timeout.std();
        let url = ping_url(&base, Some("start"), &rid);
        let start = spawn_ping(url, "start", None, timeout);
        Some(Heartbeat {
            base,
            rid,
            timeout,
            start,
        })
    }

    /// Send `URL` or `URL/fail`, after the start ping, within `heartbeat_timeout`.
    pub fn finish(self, end: End) {
        let deadline = Instant::now() + self.timeout;
        // The start ping has had the whole tick to finish; wait for it (it has its own
        // timeout) so the two arrive in order.
        let _ = self
            .start
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                "heartbeat: no time left for the end ping to {} (the start ping took the whole heartbeat_timeout)",
                host(&self.base)
            );
            return;
        }
        let (url, which, body) = match end {
            End::Success => (ping_url(&self.base, None, &self.rid), "success", None),
            End::Fail(why) => (
                ping_url(&self.base, Some("fail"), &self.rid),
                "fail",
                Some(crate::input::printable(why, MAX_BODY)),
            ),
        };
        let done = spawn_ping(url, which, body, left);
        // A ping thread that outlives the wait (a DNS lookup that hangs) is left behind;
        // the process exits right after the tick.
        let _ = done.recv_timeout(left);
    }
}

/// `base` with `/segment` appended to its path (before any query) and `rid=...` added.
pub fn ping_url(base: &Url, segment: Option<&str>, rid: &str) -> Url {
    let mut url = base.clone();
    if let Some(segment) = segment {
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(segment);
        }
    }
    url.query_pairs_mut().append_pair("rid", rid);
    url
}

fn host(url: &Url) -> String {
    url.host_str().unwrap_or("?").to_string()
}

/// Ping on a thread of its own; the receiver hears when it is done (or the thread died).
fn spawn_ping(url: Url, which: &'static str, body: Option<String>, timeout: Duration) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            ping(&url, which, body.as_deref(), timeout);
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!("heartbeat: cannot start a thread for the ping: {e}");
    }
    rx
}

/// Send one ping (`which`: start, success or fail); a failure is a warning.
fn ping(url: &Url, which: &str, body: Option<&str>, timeout: Duration) {
    let agent = ureq::AgentBuilder::new()
        .timeout(timeout)
        .user_agent(concat!("notifyctl/", env!("CARGO_PKG_VERSION")))
        .build();
    let result = match body {
        None => agent.get(url.as_str()).call(),
        Some(body) => agent
            .post(url.as_str())
            .set("Content-Type", "text/plain; charset=utf-8")
            .send_string(body),
    };
    match result {
        Ok(_) => tracing::debug!(ping = which, "heartbeat: pinged {}", host(url)),
        Err(ureq::Error::Status(code, _)) => {
            tracing::warn!(
                ping = which,
                "heartbeat: {} answered HTTP {code} to the {which} ping",
                host(url)
            )
        }
        // Transport errors' Display includes the URL: show the kind and message only.
        Err(ureq::Error::Transport(t)) => tracing::warn!(
            ping = which,
            "heartbeat: the {which} ping to {} failed: {}{}",
            host(url),
            t.kind(),
            t.message().map(|m| format!(": {m}")).unwrap_or_default()
        ),
    }
}

/// A random UUID (version 4), the form healthchecks.io wants for `rid`.
fn run_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // No randomness: the pid still tells overlapping ticks apart on one host.
        b[..4].copy_from_slice(&std::process::id().to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_urls_follow_healthchecks_conventions() {
        let rid = "00000000-0000-4000-8000-000000000000";
        let base = Url::parse("https://hc-ping.com/abc").unwrap();
        assert_eq!(
            ping_url(&base, Some("start"), rid).as_str(),
            format!("https://hc-ping.com/abc/start?rid={rid}")
        );
        assert_eq!(
            ping_url(&base, None, rid).as_str(),
            format!("https://hc-ping.com/abc?rid={rid}")
        );
        // A trailing slash and a query of the admin's are kept in their place.
        let base = Url::parse("https://hc.example.org/ping/key/slug/?create=1").unwrap();
        assert_eq!(
            ping_url(&base, Some("fail"), rid).as_str(),
            format!("https://hc.example.org/ping/key/slug/fail?create=1&rid={rid}")
        );
    }

    #[test]
    fn run_ids_are_version_4_uuids() {
        let a = run_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, run_id());
    }
}
