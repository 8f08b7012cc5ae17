//! The outbox loop: claim → prepare → render and send → record, with exponential backoff.
//!
//! Guarantees, and where each comes from:
//! - a delivery is sent by one tick only: claims are taken in a write transaction and
//!   outcomes are recorded only while the claim is still held (`record_outcome` is fenced
//!   by the claim's owner); a claim is a lease renewed while the tick works, and no
//!   exchange with a server outlives it, so no other tick takes over what this one may
//!   still send;
//! - nothing is lost: a claim of a tick that died lapses and is taken over; a tick that
//!   runs out of time or is asked to stop gives back what it did not start;
//! - each outcome is committed soon after the server has answered (with the others that
//!   came back meanwhile, in one transaction), and no more than [`STARTED_PER_WORKER`]
//!   messages per connection are started before theirs is, so the only duplicates
//!   possible are the two the README names (a crash between acceptance and that commit,
//!   at most three per connection; no answer after the message was sent);
//! - each delivery is checked against the data as it is now, just before it goes out (the
//!   caller's [`Deliverer::prepare`]).
//!
//! Work is split between threads so a tick uses both cores: this thread claims,
//! re-checks and records (the database has one writer); per channel a few worker threads
//! render, build and send, each on its own connection (`[email.smtp] connections`, one
//! for the other channels). The loop knows channels only through [`Sender`], and gets its
//! senders and its renderer from its caller.
//!
//! Its log events carry the tick, delivery, user and event ids and the channel as fields
//! of their own (`tracing`), so a JSON log line can be filtered by any of them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender as Tx, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::channels::{Deadline, NextMessage, Outgoing, SendError, Sender, Sent};
use crate::clock::Clock;
use crate::messages::{MessageContext, Rendered};
use crate::store::{self, ClaimRequest, ClaimedDelivery, DeliveryOutcome, Ops, Store, TickSummary};

/// Delay before retry number `attempts` (1-based): base, 2×base, 4×base … capped.
pub fn backoff(base: TimeDelta, max: TimeDelta, attempts: u32) -> TimeDelta {
    let factor = 1i64 << attempts.saturating_sub(1).min(30);
    base.checked_mul(factor as i32).map_or(max, |d| d.min(max))
}

/// How the loop claims and retries.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tick this run belongs to, for the logs.
    pub tick_id: i64,
    /// This tick's claim key.
    pub owner: String,
    pub batch_size: u32,
    pub claim_timeout: TimeDelta,
    pub max_attempts: u32,
    pub backoff_base: TimeDelta,
    pub backoff_max: TimeDelta,
    /// How long past the tick's end the answer to a message already sent is awaited.
    pub answer_grace: Duration,
}

/// A message ready to be rendered and sent: everything about it but its texts, and the
/// context its texts are rendered from (on a worker thread).
pub struct Draft {
    /// `rendered` is filled in by the worker.
    pub message: Outgoing,
    pub context: MessageContext,
}

/// What to do with a claimed delivery, decided just before sending.
pub enum Prepared {
    Send(Box<Draft>),
    /// Not sent and never will be (`superseded`, `expired`).
    Drop {
        status: &'static str,
        reason: String,
    },
    /// It cannot be sent at all (a row that cannot be read): dead, with the reason.
    Dead(String),
    /// Not now, and nothing failed: it waits, pending, until `until` (the recipient's
    /// quiet hours), without spending an attempt.
    Hold {
        until: DateTime<Utc>,
        reason: String,
    },
}

/// The caller's side of the loop, on this thread: re-checking deliveries.
pub trait Deliverer {
    /// A new batch was claimed: forget cached event state, it may have changed.
    fn new_batch(&mut self) {}
    /// Re-check a claimed delivery against the data as it is now and gather what its
    /// message is built from.
    fn prepare(
        &mut self,
        ops: &mut dyn Ops,
        delivery: &ClaimedDelivery,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Prepared>;
}

/// Renders a message's texts for a channel.
pub type Render<'a> = &'a (dyn Fn(&str, &MessageContext) -> anyhow::Result<Rendered> + Sync);
/// Builds a sender for a channel (one per worker, so one connection each).
pub type MakeSender<'a> = &'a (dyn Fn(&str) -> anyhow::Result<Box<dyn Sender + Send>> + Sync);

/// The caller's side of the loop, on the worker threads.
pub struct Workers<'a> {
    pub render: Render<'a>,
    pub sender: MakeSender<'a>,
    /// How many workers (connections) a channel gets.
    pub connections: &'a (dyn Fn(&str) -> usize + Sync),
}

/// What needs a person after a run, beyond the counts.
#[derive(Debug, Default)]
pub struct Attention {
    /// Channels that could not be used at all, each with why (their deliveries wait,
    /// untouched, for a later tick).
    pub unusable: Vec<String>,
    /// Deliveries that went dead, one line each (`delivery N to X: why`).
    pub dead: Vec<String>,
    /// Outcomes by (channel, outcome): `sent`, `failed` (to be retried), `dead`, `dropped`,
    /// the same counts as the summary's, split by channel (for the metrics file).
    pub outcomes: BTreeMap<(String, &'static str), i64>,
}

/// Deliver due work until none is left or `deadline` passes. Counts go to `summary`.
pub fn run(
    store: &mut dyn Store,
    clock: &Clock,
    settings: &Settings,
    deliverer: &mut dyn Deliverer,
    workers: &Workers,
    deadline: Instant,
    summary: &mut TickSummary,
) -> anyhow::Result<Attention> {
    let (done_tx, done_rx) = mpsc::channel();
    let down = Arc::new(Mutex::new(HashSet::new()));
    std::thread::scope(|scope| {
        let mut outbox = Outbox {
            store,
            clock,
            settings,
            deliverer,
            workers,
            scope,
            pools: HashMap::new(),
            done_tx,
            done_rx,
            in_flight: HashMap::new(),
            grouped: None,
            down,
            attention: Attention::default(),
            deadline,
            lease_deadline: deadline,
        };
        let result = outbox.run(summary);
        // Whatever happened, wait for the messages in flight and record their outcomes.
        let drained = outbox.drain(summary);
        outbox.store.checkpoints_aside(false);
        let attention = std::mem::take(&mut outbox.attention);
        drop(outbox);
        result.and(drained).map(|_| attention)
    })
}

/// A message handed to a worker.
struct Job {
    id: i64,
    draft: Box<Draft>,
    deadline: Deadline,
}

/// What a worker did with a job.
enum Done {
    Sent(i64, Sent),
    Failed(i64, SendError),
    /// The channel was set aside before the message went out: give the claim back.
    Skipped(i64),
    /// The channel's sender could not be built (its settings): give the claim back.
    Unusable(i64, String),
    /// The message's texts could not be rendered: dead.
    Unrenderable(i64, String),
    /// A bug panicked while building or sending: dead, the others go on.
    Panicked(i64, String),
}

/// What this thread remembers about a message in flight.
struct InFlight {
    who: Who,
    attempts: u32,
    to: String,
}

/// Whose a delivery is, for the log fields and the per-channel counts.
#[derive(Debug, Clone)]
struct Who {
    channel: String,
    user_id: Option<i64>,
    event_id: Option<i64>,
}

impl Who {
    /// A delivery whose row could not be read (or a bug hid it).
    fn unknown() -> Who {
        Who {
            channel: UNKNOWN_CHANNEL.to_string(),
            user_id: None,
            event_id: None,
        }
    }

    fn of(d: &ClaimedDelivery) -> Who {
        Who {
            channel: d.channel.clone(),
            user_id: Some(d.user_id),
            event_id: d.event_id,
        }
    }
}

/// The channel label of a delivery whose row could not be read.
const UNKNOWN_CHANNEL: &str = "unknown";

/// A write the recording thread owes the database.
enum Record {
    Outcome(i64, Who, DeliveryOutcome),
    Release(i64),
}

/// The workers of one channel.
struct Pool {
    jobs: SyncSender<Job>,
    workers: usize,
    /// Jobs handed to these workers whose outcome this thread has not committed yet.
    out: usize,
    /// What the workers may start: see [`STARTED_PER_WORKER`].
    permits: Arc<Permits>,
    /// Permits of outcomes recorded in the transaction being written, given back once it
    /// is committed.
    to_give_back: usize,
}

impl Pool {
    /// The most jobs it may have out at once.
    fn allowance(&self) -> usize {
        self.workers * (STARTED_PER_WORKER + QUEUED_PER_WORKER)
    }
}

impl Drop for Pool {
    /// Workers waiting for a permit stop waiting (this thread records nothing more).
    fn drop(&mut self) {
        self.permits.close();
    }
}

/// How many jobs per worker (connection) may be started before their outcomes are
/// committed: the most a crash can repeat (the README says three). A worker takes a
/// permit before it starts on a job, before anything of it is sent; this thread gives it
/// back once the job's outcome is committed. The permits keep a worker busy while this
/// thread commits, and let one commit serve several outcomes: when this thread waits, it
/// waits until all but one started job per worker are back (or [`GROUP_WAIT`] passed) and
/// commits those together. A commit per message wrote about seven pages to the WAL each;
/// the fsyncs of the checkpoints that copy them back were most of a busy tick's waiting.
const STARTED_PER_WORKER: usize = 3;

/// How many jobs per worker may wait beyond those: in the queue, or taken ahead (their
/// envelope sent along with the message before, their texts rendered while the server
/// answered it). Nothing of them is delivered before they are started.
const QUEUED_PER_WORKER: usize = 3;

/// A count of permits a pool's workers take and this thread gives back.
struct Permits {
    /// (free permits, closed).
    state: Mutex<(usize, bool)>,
    freed: Condvar,
}

impl Permits {
    fn new(n: usize) -> Permits {
        Permits {
            state: Mutex::new((n, false)),
            freed: Condvar::new(),
        }
    }

    /// Wait for a permit and take it; false once the pool is closed.
    fn take(&self) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        loop {
            match *state {
                (_, true) => return false,
                (0, false) => {}
                (ref mut free, false) => {
                    *free -= 1;
                    return true;
                }
            }
            state = match self.freed.wait(state) {
                Ok(state) => state,
                Err(_) => return false,
            };
        }
    }

    fn give_back(&self, n: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.0 += n;
            self.freed.notify_all();
        }
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.1 = true;
            self.freed.notify_all();
        }
    }
}

/// How long this thread waits for more outcomes to commit together, once one is back.
const GROUP_WAIT: Duration = Duration::from_millis(2);

/// How long past its claim's end a tick stops using it (at most a quarter of the claim).
const LEASE_MARGIN: Duration = Duration::from_secs(10);

struct Outbox<'a, 's, 'e> {
    store: &'a mut dyn Store,
    clock: &'a Clock,
    settings: &'a Settings,
    deliverer: &'a mut dyn Deliverer,
    workers: &'e Workers<'e>,
    scope: &'s std::thread::Scope<'s, 'e>,
    pools: HashMap<String, Pool>,
    done_tx: Tx<Done>,
    done_rx: Receiver<Done>,
    in_flight: HashMap<i64, InFlight>,
    /// While the outcomes that came back together are being turned into records: the
    /// records, written in one transaction by [`Outbox::write_grouped`].
    grouped: Option<Vec<Record>>,
    /// Channels found unreachable or unusable this tick: their remaining deliveries wait
    /// for the next. Shared with the workers, which skip them too.
    down: Arc<Mutex<HashSet<String>>>,
    attention: Attention,
    /// The tick's end: no exchange with a server goes on past it.
    deadline: Instant,
    /// When this tick's claims lapse, less a margin: no exchange goes on past it either.
    lease_deadline: Instant,
}

impl<'a, 's, 'e> Outbox<'a, 's, 'e>
where
    'a: 's,
{
    fn lease_margin(&self) -> Duration {
        LEASE_MARGIN.min(self.settings.claim_timeout.to_std().unwrap_or_default() / 4)
    }

    /// Claims taken or renewed now last until `now + claim_timeout`.
    fn leased_now(&mut self) {
        let life = self.settings.claim_timeout.to_std().unwrap_or_default();
        self.lease_deadline = Instant::now() + life.saturating_sub(self.lease_margin());
    }

    /// The deadline of one send: nothing new past the tick's end (or the claim's); the
    /// answer to a message already sent awaited a little longer, never past the claim.
    fn send_deadline(&self) -> Deadline {
        Deadline {
            exchange: self.deadline.min(self.lease_deadline),
            answer: (self.deadline + self.settings.answer_grace).min(self.lease_deadline),
        }
    }

    /// Why no new message may be started now, if none may.
    fn stop_reason(&self) -> Option<&'static str> {
        if crate::interrupt::requested().is_some() {
            Some("stopping on a termination signal")
        } else if Instant::now() >= self.deadline {
            Some("max runtime reached")
        } else {
            None
        }
    }

    fn is_down(&self, channel: &str) -> bool {
        self.down.lock().map(|d| d.contains(channel)).unwrap_or(true)
    }

    fn set_down(&self, channel: &str) {
        if let Ok(mut d) = self.down.lock() {
            d.insert(channel.to_string());
        }
    }

    fn run(&mut self, summary: &mut TickSummary) -> anyhow::Result<()> {
        let s = self.settings;
        loop {
            if let Some(why) = self.stop_reason() {
                tracing::warn!(
                    tick_id = s.tick_id,
                    "{why}: remaining deliveries wait for the next tick"
                );
                return Ok(());
            }
            let now = self.clock.now();
            let down: Vec<String> = self
                .down
                .lock()
                .map(|d| d.iter().cloned().collect())
                .unwrap_or_default();
            let request = ClaimRequest {
                owner: &s.owner,
                now,
                until: now + s.claim_timeout,
                limit: s.batch_size,
                skip_channels: &down,
            };
            let ids = store::write(&mut *self.store, |ops| ops.claim_due(&request))?;
            self.leased_now();
            if ids.is_empty() {
                return Ok(());
            }
            self.deliverer.new_batch();
            let claim_life = s.claim_timeout.to_std().unwrap_or_default();
            for (i, id) in ids.iter().enumerate() {
                // A slow batch must not let the claims lapse (another tick would take the
                // rest over and send it too): renew when less than half the life is left.
                if self.lease_deadline.saturating_duration_since(Instant::now()) < claim_life / 2 {
                    let until = self.clock.now() + s.claim_timeout;
                    store::write(&mut *self.store, |ops| ops.renew_claims(&s.owner, until))?;
                    self.leased_now();
                }
                if let Some(why) = self.stop_reason() {
                    let rest = &ids[i..];
                    store::write(&mut *self.store, |ops| ops.release_claims(&s.owner, rest))?;
                    tracing::warn!(
                        tick_id = s.tick_id,
                        "{why}: {} claimed deliveries given back",
                        rest.len()
                    );
                    return Ok(());
                }
                // One delivery's bad data must cost only that delivery, even through a bug
                // that panics: it is set aside and the batch goes on.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.start_one(*id, summary)))
                        .unwrap_or_else(|panic| {
                            let error = panic_text(panic.as_ref());
                            self.record_dead(*id, &Who::unknown(), "?", &error, summary)
                        });
                if let Err(e) = outcome {
                    // Give back what this tick still holds before failing.
                    let rest = &ids[i..];
                    let _ = store::write(&mut *self.store, |ops| ops.release_claims(&s.owner, rest));
                    return Err(e);
                }
            }
        }
    }

    /// Prepare one claimed delivery and hand it to its channel's workers (or record why
    /// it does not go out).
    fn start_one(&mut self, id: i64, summary: &mut TickSummary) -> anyhow::Result<()> {
        let now = self.clock.now();
        // A row an app broke must not stop the others: it is reported and set aside.
        let d = match self.store.claimed_delivery(id) {
            Ok(d) => d,
            Err(e) => {
                let error = format!("unreadable row: {e:#}");
                return self.record_dead(id, &Who::unknown(), "?", &error, summary);
            }
        };
        let who = Who::of(&d);
        if self.is_down(&d.channel) {
            return self.release(id);
        }
        let draft = match self.deliverer.prepare(self.store.ops(), &d, now)? {
            Prepared::Send(draft) => draft,
            Prepared::Drop { status, reason } => {
                tracing::info!(
                    tick_id = self.settings.tick_id,
                    delivery_id = id,
                    user_id = d.user_id,
                    event_id = d.event_id,
                    channel = d.channel.as_str(),
                    "delivery {id} {status}: {reason}"
                );
                summary.dropped += 1;
                return self.record(id, &who, &DeliveryOutcome::Dropped { status, reason });
            }
            Prepared::Dead(error) => {
                let to = format!("user {}", d.user_id);
                return self.record_dead(id, &who, &to, &error, summary);
            }
            Prepared::Hold { until, reason } => {
                tracing::info!(
                    tick_id = self.settings.tick_id,
                    delivery_id = id,
                    user_id = d.user_id,
                    event_id = d.event_id,
                    channel = d.channel.as_str(),
                    "delivery {id} held until {}: {reason}",
                    crate::input::rfc3339(until)
                );
                summary.held += 1;
                return self.record(id, &who, &DeliveryOutcome::Held { until, reason });
            }
        };
        self.in_flight.insert(
            id,
            InFlight {
                who,
                attempts: u32::try_from(d.attempts).unwrap_or(u32::MAX).saturating_add(1),
                to: draft.message.recipient.shown(&d.channel),
            },
        );
        let job = Job {
            id,
            draft,
            deadline: self.send_deadline(),
        };
        self.dispatch(&d.channel, job, summary)
    }

    /// Queue a job for its channel's workers (starting them on first use); while the
    /// queue is full, record the outcomes that come back meanwhile.
    fn dispatch(&mut self, channel: &str, mut job: Job, summary: &mut TickSummary) -> anyhow::Result<()> {
        if !self.pools.contains_key(channel) {
            let pool = self.start_pool(channel);
            self.pools.insert(channel.to_string(), pool);
        }
        loop {
            let Some(pool) = self.pools.get_mut(channel) else {
                anyhow::bail!("no workers for channel {channel}");
            };
            if pool.out < pool.allowance() {
                match pool.jobs.try_send(job) {
                    Ok(()) => {
                        pool.out += 1;
                        return Ok(());
                    }
                    Err(TrySendError::Full(back)) => job = back,
                    Err(TrySendError::Disconnected(_)) => anyhow::bail!("the {channel} workers stopped"),
                }
            }
            // All but one started job per worker back, then one commit for them.
            let want = pool.workers * (STARTED_PER_WORKER - 1);
            self.record_finished(want, summary)?;
        }
    }

    fn start_pool(&mut self, channel: &str) -> Pool {
        // Messages go out: commits follow each other (see `Store::checkpoints_aside`).
        self.store.checkpoints_aside(true);
        let n = (self.workers.connections)(channel).max(1);
        let (jobs, queue) = mpsc::sync_channel::<Job>(n * (STARTED_PER_WORKER + QUEUED_PER_WORKER));
        let queue = Arc::new(Mutex::new(queue));
        let permits = Arc::new(Permits::new(n * STARTED_PER_WORKER));
        for _ in 0..n {
            let worker = Worker {
                channel: channel.to_string(),
                workers: self.workers,
                queue: Arc::clone(&queue),
                permits: Arc::clone(&permits),
                done: self.done_tx.clone(),
                down: Arc::clone(&self.down),
            };
            self.scope.spawn(move || work(&worker));
        }
        Pool {
            jobs,
            workers: n,
            out: 0,
            permits,
            to_give_back: 0,
        }
    }

    /// Wait for an outcome (or a short while), then up to [`GROUP_WAIT`] for more until
    /// `want` are back, and record them and every other one already back.
    fn record_finished(&mut self, want: usize, summary: &mut TickSummary) -> anyhow::Result<()> {
        let mut back = match self.done_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(done) => vec![done],
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the workers stopped"),
        };
        let until = Instant::now() + GROUP_WAIT;
        while back.len() < want {
            match self
                .done_rx
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(done) => back.push(done),
                Err(_) => break,
            }
        }
        self.finished_together(back, summary)
    }

    /// `back` and every other outcome already back, recorded in one transaction. It does
    /// not widen what a crash can repeat: those messages were sent already, and no more
    /// than the pools' allowance is ever out uncommitted.
    fn finished_together(&mut self, back: Vec<Done>, summary: &mut TickSummary) -> anyhow::Result<()> {
        self.grouped = Some(Vec::new());
        let mut result = Ok(());
        let more: Vec<Done> = self.done_rx.try_iter().collect();
        for done in back.into_iter().chain(more) {
            result = self.finished(done, summary);
            if result.is_err() {
                break;
            }
        }
        let records = self.grouped.take().unwrap_or_default();
        let written = self.write_grouped(records);
        // Committed: the workers may start as many jobs again. Not committed: they start
        // nothing more (what they hold goes back untouched).
        for pool in self.pools.values_mut() {
            let n = std::mem::take(&mut pool.to_give_back);
            if written.is_ok() {
                pool.permits.give_back(n);
            } else {
                pool.permits.close();
            }
        }
        result.and(written)
    }

    /// Wait for every message in flight and record its outcome.
    fn drain(&mut self, summary: &mut TickSummary) -> anyhow::Result<()> {
        while !self.in_flight.is_empty() {
            match self.done_rx.recv_timeout(Duration::from_millis(200)) {
                Ok(done) => self.finished_together(vec![done], summary)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.pools.clear();
        Ok(())
    }

    /// Write records in one transaction (each outcome only while the claim is held).
    fn write_grouped(&mut self, records: Vec<Record>) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let owner = &self.settings.owner;
        let lost = store::write(&mut *self.store, |ops| {
            let mut lost = Vec::new();
            for r in &records {
                match r {
                    Record::Outcome(id, who, outcome) => {
                        if !ops.record_outcome(*id, owner, outcome, now)? {
                            lost.push((*id, who.channel.clone()));
                        }
                    }
                    Record::Release(id) => {
                        ops.release_claims(owner, &[*id])?;
                    }
                }
            }
            Ok(lost)
        })?;
        for (id, channel) in lost {
            tracing::warn!(
                tick_id = self.settings.tick_id,
                delivery_id = id,
                channel = channel.as_str(),
                "delivery {id}: claim lost to another tick; its outcome was not recorded"
            );
        }
        Ok(())
    }

    /// Turn a worker's report into the delivery's recorded outcome.
    fn finished(&mut self, done: Done, summary: &mut TickSummary) -> anyhow::Result<()> {
        let id = match &done {
            Done::Sent(id, _)
            | Done::Failed(id, _)
            | Done::Skipped(id)
            | Done::Unusable(id, _)
            | Done::Unrenderable(id, _)
            | Done::Panicked(id, _) => *id,
        };
        let Some(f) = self.in_flight.remove(&id) else {
            return Ok(());
        };
        if let Some(pool) = self.pools.get_mut(&f.who.channel) {
            pool.out = pool.out.saturating_sub(1);
            pool.to_give_back += 1;
        }
        let s = self.settings;
        let now = self.clock.now();
        let to = f.to.as_str();
        let who = &f.who;
        let channel = who.channel.as_str();
        let attempts = f.attempts;
        let outcome = match done {
            Done::Skipped(_) => return self.release(id),
            Done::Unusable(_, error) => {
                // A channel that cannot even be set up (a missing secret, a bad setting) is
                // a problem of the channel, not of this message: its deliveries wait,
                // without spending an attempt, and the others go on.
                self.channel_problem(channel, format!("the {channel} channel cannot be used: {error}"));
                return self.release(id);
            }
            Done::Unrenderable(_, error) => return self.record_dead(id, who, to, &error, summary),
            Done::Panicked(_, error) => return self.record_dead(id, who, to, &error, summary),
            Done::Sent(_, sent) => {
                summary.sent += 1;
                tracing::info!(
                    tick_id = s.tick_id,
                    delivery_id = id,
                    user_id = who.user_id,
                    event_id = who.event_id,
                    channel,
                    "delivery {id} sent by {channel} to {to}: {}",
                    sent.response
                );
                DeliveryOutcome::Sent {
                    message_id: sent.message_id,
                    response: sent.response,
                }
            }
            Done::Failed(_, SendError::Permanent(error)) => {
                self.went_dead(id, who, to, &format!("refused for good: {error}"), summary);
                DeliveryOutcome::Dead { error }
            }
            Done::Failed(_, SendError::Misconfigured(error)) => {
                // The server refused our settings (a wrong password): not this message's
                // fault. Set the channel aside, keep the delivery without spending an attempt.
                self.channel_problem(channel, format!("the {channel} channel was refused: {error}"));
                return self.release(id);
            }
            Done::Failed(
                _,
                SendError::Temporary(error)
                | SendError::Unavailable(error)
                | SendError::Throttled(error, _)
                | SendError::Unconfirmed(error),
            ) if attempts >= s.max_attempts => {
                self.went_dead(id, who, to, &format!("failed {attempts} times: {error}"), summary);
                DeliveryOutcome::Dead { error }
            }
            Done::Failed(_, SendError::Temporary(error)) => {
                self.retry(id, who, to, error, attempts, now, summary)
            }
            Done::Failed(_, SendError::Throttled(error, wait)) => {
                // Honour the server's Retry-After (at most a day), never sooner than backoff.
                let asked = TimeDelta::from_std(wait)
                    .unwrap_or(TimeDelta::days(1))
                    .min(TimeDelta::days(1));
                let mut outcome = self.retry(id, who, to, error, attempts, now, summary);
                if let DeliveryOutcome::Retry { next_attempt_at, .. } = &mut outcome {
                    *next_attempt_at = (*next_attempt_at).max(now + asked);
                }
                outcome
            }
            Done::Failed(_, SendError::Unavailable(error)) => {
                self.set_down(channel);
                self.retry(id, who, to, error, attempts, now, summary)
            }
            Done::Failed(_, SendError::Unconfirmed(error)) => {
                self.set_down(channel);
                let error = format!(
                    "no answer after the message was sent, so it may have arrived; the retry may duplicate it: {error}"
                );
                self.retry(id, who, to, error, attempts, now, summary)
            }
        };
        self.record(id, &f.who, &outcome)
    }

    fn channel_problem(&mut self, channel: &str, problem: String) {
        if !self.is_down(channel) || !self.attention.unusable.contains(&problem) {
            tracing::error!(
                tick_id = self.settings.tick_id,
                channel,
                "{problem}; its deliveries wait for the next tick"
            );
        }
        self.set_down(channel);
        if !self.attention.unusable.contains(&problem) {
            self.attention.unusable.push(problem);
        }
    }

    fn release(&mut self, id: i64) -> anyhow::Result<()> {
        if let Some(grouped) = self.grouped.as_mut() {
            grouped.push(Record::Release(id));
            return Ok(());
        }
        self.write_grouped(vec![Record::Release(id)])
    }

    /// Record an outcome (and count it under its channel, `unknown` for an unreadable row).
    fn record(&mut self, id: i64, who: &Who, outcome: &DeliveryOutcome) -> anyhow::Result<()> {
        let label = match outcome {
            DeliveryOutcome::Sent { .. } => "sent",
            DeliveryOutcome::Retry { .. } => "failed",
            DeliveryOutcome::Dead { .. } => "dead",
            DeliveryOutcome::Dropped { .. } => "dropped",
            DeliveryOutcome::Held { .. } => "held",
        };
        *self
            .attention
            .outcomes
            .entry((who.channel.clone(), label))
            .or_default() += 1;
        let record = Record::Outcome(id, who.clone(), outcome.clone());
        if let Some(grouped) = self.grouped.as_mut() {
            grouped.push(record);
            return Ok(());
        }
        self.write_grouped(vec![record])
    }

    fn record_dead(
        &mut self,
        id: i64,
        who: &Who,
        to: &str,
        error: &str,
        summary: &mut TickSummary,
    ) -> anyhow::Result<()> {
        self.went_dead(id, who, to, error, summary);
        self.record(
            id,
            who,
            &DeliveryOutcome::Dead {
                error: error.to_string(),
            },
        )
    }

    /// Count and describe a delivery that will not be retried by itself. Logged as a
    /// warning: the tick's own error line (exit 3) is the one a quiet cron run mails.
    fn went_dead(&mut self, id: i64, who: &Who, to: &str, why: &str, summary: &mut TickSummary) {
        summary.dead += 1;
        let line = format!("delivery {id} to {to}: {why}");
        tracing::warn!(
            tick_id = self.settings.tick_id,
            delivery_id = id,
            user_id = who.user_id,
            event_id = who.event_id,
            channel = who.channel.as_str(),
            "{line}; marked dead"
        );
        self.attention.dead.push(line);
    }

    #[allow(clippy::too_many_arguments)]
    fn retry(
        &self,
        id: i64,
        who: &Who,
        to: &str,
        error: String,
        attempts: u32,
        now: DateTime<Utc>,
        summary: &mut TickSummary,
    ) -> DeliveryOutcome {
        summary.failed += 1;
        let s = self.settings;
        let wait = backoff(s.backoff_base, s.backoff_max, attempts);
        tracing::warn!(
            tick_id = s.tick_id,
            delivery_id = id,
            user_id = who.user_id,
            event_id = who.event_id,
            channel = who.channel.as_str(),
            "delivery {id} to {to} failed (attempt {attempts}), retry in {}: {error}",
            crate::input::format_duration(wait)
        );
        DeliveryOutcome::Retry {
            error,
            next_attempt_at: now + wait,
        }
    }
}

/// Render a job's texts into its message; a rendering that fails or panics costs only
/// that job (the report to send for it).
fn render_into(workers: &Workers, channel: &str, job: &mut Job) -> Result<(), Done> {
    let id = job.id;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (workers.render)(channel, &job.draft.context)
    })) {
        Ok(Ok(rendered)) => {
            job.draft.message.rendered = rendered;
            Ok(())
        }
        Ok(Err(e)) => Err(Done::Unrenderable(id, format!("rendering the message: {e:#}"))),
        Err(panic) => Err(Done::Panicked(id, panic_text(panic.as_ref()))),
    }
}

/// What a worker works with.
struct Worker<'w> {
    channel: String,
    workers: &'w Workers<'w>,
    queue: Arc<Mutex<Receiver<Job>>>,
    permits: Arc<Permits>,
    done: Tx<Done>,
    down: Arc<Mutex<HashSet<String>>>,
}

/// A worker's next job, taken from its queue while the current one is being sent.
struct Upcoming<'w> {
    channel: &'w str,
    workers: &'w Workers<'w>,
    queue: &'w Mutex<Receiver<Job>>,
    /// Taken, not rendered yet.
    taken: Option<Job>,
    /// Taken and rendered (or how its rendering failed).
    rendered: Option<(Job, Result<(), Done>)>,
}

impl Upcoming<'_> {
    /// The next job queued, if one is. `try_lock`: another worker waiting for a job holds
    /// the queue (a blocking `lock` here would wait for it, and it for this worker's outcome).
    fn try_take(&self) -> Option<Job> {
        self.queue.try_lock().ok().and_then(|q| q.try_recv().ok())
    }

    /// The job to do next and, if it was rendered ahead, how that went.
    fn next(&mut self) -> Option<(Job, Option<Result<(), Done>>)> {
        if let Some((job, rendered)) = self.rendered.take() {
            return Some((job, Some(rendered)));
        }
        self.taken.take().map(|job| (job, None))
    }
}

impl NextMessage for Upcoming<'_> {
    fn take(&mut self) -> Option<&Outgoing> {
        if self.taken.is_none() && self.rendered.is_none() {
            self.taken = self.try_take();
        }
        self.taken.as_ref().map(|job| &job.draft.message)
    }

    fn render(&mut self, build: &mut dyn FnMut(&Outgoing)) {
        if self.rendered.is_some() {
            return;
        }
        let Some(mut next) = self.taken.take().or_else(|| self.try_take()) else {
            return;
        };
        let rendered = render_into(self.workers, self.channel, &mut next);
        if rendered.is_ok() {
            // A panic building it ahead is not this message's: its own turn builds it
            // again and reports it.
            let message = &next.draft.message;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(message)));
        }
        self.rendered = Some((next, rendered));
    }
}

/// A worker: takes jobs for one channel, renders and sends them on its own connection,
/// and reports each outcome. It stops when the queue closes.
///
/// While one message goes out, the worker takes the next job already queued (if any):
/// its sender may send its envelope along, and it is rendered while the server answers,
/// so the server's work and the worker's overlap. That job is then checked like any other
/// (channel set aside, time up) before it goes.
fn work(worker: &Worker) {
    let Worker {
        channel,
        workers,
        queue,
        permits,
        done,
        down,
    } = worker;
    let channel = channel.as_str();
    let mut sender: Option<Box<dyn Sender + Send>> = None;
    let mut upcoming = Upcoming {
        channel,
        workers,
        queue,
        taken: None,
        rendered: None,
    };
    loop {
        let (mut job, rendered) = match upcoming.next() {
            Some(next) => next,
            None => {
                let job = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                (job, None)
            }
        };
        let id = job.id;
        // Started: its outcome is committed before the permit comes back. None comes any
        // more when nothing can be recorded: the job goes back untouched.
        if !permits.take() {
            if done.send(Done::Skipped(id)).is_err() {
                return;
            }
            continue;
        }
        // A channel set aside, a tick out of time or asked to stop: the job goes back
        // untouched (no attempt spent) for a later tick.
        let channel_down = down.lock().map(|d| d.contains(channel)).unwrap_or(true);
        if channel_down || Instant::now() >= job.deadline.exchange || crate::interrupt::requested().is_some()
        {
            let _ = done.send(Done::Skipped(id));
            continue;
        }
        if sender.is_none() {
            match (workers.sender)(channel) {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    let _ = done.send(Done::Unusable(id, format!("{e:#}")));
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        if let Err(report) = rendered.unwrap_or_else(|| render_into(workers, channel, &mut job)) {
            if done.send(report).is_err() {
                return;
            }
            continue;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Job { draft, deadline, .. } = job;
            match s.send_overlapped(&draft.message, deadline, &mut upcoming) {
                Ok(sent) => Done::Sent(id, sent),
                Err(e) => {
                    // A server that cannot be reached (or refused us) is set aside at once,
                    // so the jobs already queued behind this one do not try it again.
                    if matches!(
                        e,
                        SendError::Unavailable(_) | SendError::Unconfirmed(_) | SendError::Misconfigured(_)
                    ) {
                        if let Ok(mut d) = down.lock() {
                            d.insert(channel.to_string());
                        }
                    }
                    Done::Failed(id, e)
                }
            }
        }));
        let report = result.unwrap_or_else(|panic| {
            // The sender may be half way through an exchange: start afresh.
            sender = None;
            Done::Panicked(id, panic_text(panic.as_ref()))
        });
        if done.send(report).is_err() {
            return;
        }
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error while sending (please report it): {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let m = TimeDelta::minutes;
        assert_eq!(backoff(m(1), m(360), 1), m(1));
        assert_eq!(backoff(m(1), m(360), 2), m(2));
        assert_eq!(backoff(m(1), m(360), 4), m(8));
        assert_eq!(backoff(m(1), m(360), 10), m(360));
        assert_eq!(backoff(m(1), m(360), 200), m(360));
    }
}
