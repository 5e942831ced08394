//! Holding requests back while a flood wait or a retry backoff runs.
//!
//! Data comes from the host: each request it is about to send ([`FloodScheduler::submit`], with the method's
//! constructor id and the DC the [`router`](super::router) chose), each `rpc_error` that came back for one
//! ([`FloodScheduler::on_error`], classified by [`RpcError::classify`]), each request that finished
//! ([`FloodScheduler::completed`]) and time ([`FloodScheduler::handle_timeout`]). What goes out: whether to send a
//! request now, hold it or give its error to the caller; [`FloodScheduler::poll_timeout`], the next instant something
//! is due; [`FloodScheduler::poll_release`], the held requests to send now, in the order they were held. The
//! scheduler stores [`RequestId`]s, never bodies; the per-request history (how long it waited, how often it was
//! retried) is a small [`RetryState`] the host keeps beside the body, as TDLib keeps it in its `NetQuery`.
//!
//! Policy, after TDLib's `NetQueryDelayer`:
//! - A wait (`FLOOD_WAIT_X`, `SLOWMODE_WAIT_X`...) is clamped to 1 s ..= 14 days and retried automatically while the
//!   request's total wait stays within [`FloodConfig::auto_wait_limit`] (TDLib's `total_timeout_limit`, 60 s); a
//!   longer one is surfaced to the caller with the instant the method is usable again.
//! - A retryable server error (420 without a wait, 500, -503 `Timeout`) backs off 1, 2, 4... s up to
//!   [`FloodConfig::backoff_max`], counted in the same total, and at most [`FloodConfig::max_retries`] times;
//!   `WORKER_BUSY_TOO_LONG_RETRY` waits one second.
//!
//! Where this differs from TDLib, and why:
//! - A wait delays the *method on that DC*, not only the request that got it: a request of the same method to the
//!   same DC submitted during the wait is held (or, when the rest of the wait is beyond the limit, refused at once)
//!   instead of being sent to collect the same error. Telegram counts flood limits per method and account, so
//!   sending it would only cost a round trip and may lengthen the penalty. TDLib sends it and delays it afterwards.
//! - Order is kept by *chain* ([`ChainId`], the caller's choice), not by TDLib's `invokeAfter` sequence dispatcher:
//!   a request submitted into a chain that has a held (or released but unfinished) request waits behind it, and the
//!   chain is released one request at a time, each after the previous one [`completed`](FloodScheduler::completed).
//!   Requests already in flight when an earlier one of their chain gets a wait are not recalled: ordering on the
//!   wire between in-flight requests is the session's (`invokeAfterMsg`).
//! - An explicit retry cap beside the time budget, so a server that answers 500 at once cannot make a request
//!   loop even if the host configured a large time budget.
//! - Full tables are errors ([`FloodError::Full`]) instead of unbounded containers. The one exception is the
//!   per-method delay table, a hint: when it is full, the delay that ends soonest is forgotten (counted in
//!   [`FloodScheduler::delays_evicted`]), and a request of that method is sent and collects its own wait.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::time::Duration;

use super::rpc_error::{ErrorKind, RetryReason, RpcError};
use super::{DcId, RequestId};
use crate::error::Fault;
use crate::time::Instant;

/// The longest wait honoured (TDLib's clamp): a larger number from the server is read as 14 days.
pub const MAX_WAIT: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The host's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FloodConfig {
    /// A request is retried automatically while its total wait (flood waits and backoffs) stays at or below this;
    /// a wait that would take it further is surfaced. Zero surfaces every wait.
    pub auto_wait_limit: Duration,
    /// Retries of a retryable server error (500, -503, a 420 without a wait) before it is surfaced.
    pub max_retries: u8,
    /// The first backoff after a retryable server error; each further one doubles.
    pub backoff_initial: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
}

impl FloodConfig {
    /// TDLib's defaults: a 60 s budget per request, backoff from 1 s doubling to 60 s; at most 5 retries.
    pub const DEFAULT: FloodConfig = FloodConfig {
        auto_wait_limit: Duration::from_secs(60),
        max_retries: 5,
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
    };
}

impl Default for FloodConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A method on a DC: what a flood wait applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MethodKey {
    /// The function's constructor id (`messages.sendMessage#...`).
    pub method: u32,
    /// The DC the request goes to.
    pub dc: DcId,
}

/// An ordered chain of requests, named by the caller: requests of one chain leave the scheduler in the order they
/// entered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ChainId(pub u32);

/// What the scheduler knows about one request between its attempts; the host keeps it with the request (start
/// from `RetryState::default()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RetryState {
    waited: Duration,
    retries: u8,
}

impl RetryState {
    /// Time this request spent held so far (flood waits and backoffs).
    #[must_use]
    pub const fn waited(&self) -> Duration {
        self.waited
    }

    /// Retries after server errors so far.
    #[must_use]
    pub const fn retries(&self) -> u8 {
        self.retries
    }
}

/// What to do with a submitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Admit {
    /// Send it now.
    Send,
    /// It is held: [`FloodScheduler::poll_release`] names it when it may go.
    Held,
    /// Its method is under a wait on that DC longer than the request may wait: give the caller a flood wait
    /// ending at `until` without sending it.
    TooLong {
        /// When the method is usable again.
        until: Instant,
    },
}

/// What to do after an `rpc_error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Verdict {
    /// The request is held and will be released by [`FloodScheduler::poll_release`] at `until` (or later, behind
    /// its chain).
    Retry {
        /// When it is due.
        until: Instant,
    },
    /// Give the error to the caller: the wait exceeds the budget, or the retries ran out.
    Surface {
        /// For a wait: when the method is usable again.
        until: Option<Instant>,
    },
    /// Not a wait or a retryable error: the scheduler did nothing (a migration is the router's, the rest the
    /// caller's).
    NotMine,
}

/// A refusal; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FloodError {
    /// The table of held requests is full: backpressure. Send fewer requests at once, or surface the error.
    Full,
    /// The request is already held or in the scheduler's chain table.
    Duplicate,
}

impl FloodError {
    /// [`FloodError::Full`] is backpressure ([`Fault::Environment`]); a duplicate id is the host's bug.
    pub const fn fault(&self) -> Fault {
        match self {
            FloodError::Full => Fault::Environment,
            FloodError::Duplicate => Fault::Host,
        }
    }
}

impl fmt::Display for FloodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FloodError::Full => "flood scheduler full",
            FloodError::Duplicate => "request already held",
        })
    }
}

impl core::error::Error for FloodError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Held until `until` (`None`: only behind its chain).
    Waiting(Option<Instant>),
    /// Due: `poll_release` hands it out next.
    Ready,
    /// Handed out, not finished yet: it still holds its chain.
    Released,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: RequestId,
    chain: Option<ChainId>,
    state: State,
}

/// The scheduler: at most `N` held requests (and released chain members not finished yet) and `M` per-method
/// delays. Entries keep the order they were held in.
#[derive(Clone, Debug)]
pub struct FloodScheduler<const N: usize = 32, const M: usize = 16> {
    config: FloodConfig,
    entries: heapless::Vec<Entry, N>,
    delays: heapless::Vec<(MethodKey, Instant), M>,
    evicted: u64,
}

impl<const N: usize, const M: usize> FloodScheduler<N, M> {
    /// An empty scheduler.
    #[must_use]
    pub const fn new(config: FloodConfig) -> Self {
        Self {
            config,
            entries: heapless::Vec::new(),
            delays: heapless::Vec::new(),
            evicted: 0,
        }
    }

    /// The policy.
    #[must_use]
    pub const fn config(&self) -> &FloodConfig {
        &self.config
    }

    /// Requests held or released-but-unfinished in a chain.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Per-method delays forgotten because the delay table was full.
    #[must_use]
    pub const fn delays_evicted(&self) -> u64 {
        self.evicted
    }

    /// When `key` may be called again, if it is under a wait at `now`.
    #[must_use]
    pub fn delayed_until(&self, key: MethodKey, now: Instant) -> Option<Instant> {
        self.delays
            .iter()
            .find(|(k, until)| *k == key && *until > now)
            .map(|&(_, until)| until)
    }

    fn position(&self, id: RequestId) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    fn chain_busy(&self, chain: Option<ChainId>) -> bool {
        chain.is_some_and(|c| self.entries.iter().any(|e| e.chain == Some(c)))
    }

    /// A request the host is about to send for the first time. `retry` is its state (default for a new request).
    ///
    /// # Errors
    /// [`FloodError::Full`] when it must be held and the table is full (nothing changed: surface or retry later);
    /// [`FloodError::Duplicate`] when `id` is already held.
    pub fn submit(
        &mut self,
        id: RequestId,
        key: MethodKey,
        chain: Option<ChainId>,
        retry: &RetryState,
        now: Instant,
    ) -> Result<Admit, FloodError> {
        if self.position(id).is_some() {
            return Err(FloodError::Duplicate);
        }
        let until = self.delayed_until(key, now);
        if let Some(until) = until {
            let rest = until.saturating_duration_since(now);
            if retry.waited.saturating_add(rest) > self.config.auto_wait_limit {
                return Ok(Admit::TooLong { until });
            }
        }
        if until.is_none() && !self.chain_busy(chain) {
            return Ok(Admit::Send);
        }
        self.entries
            .push(Entry {
                id,
                chain,
                state: State::Waiting(until),
            })
            .map_err(|_| FloodError::Full)?;
        self.promote(now);
        Ok(Admit::Held)
    }

    /// An `rpc_error` came back for request `id` (method and DC in `key`). On [`Verdict::Retry`] the request is held
    /// and `retry` updated; on [`Verdict::Surface`] the request leaves the scheduler (its chain moves on).
    ///
    /// # Errors
    /// [`FloodError::Full`] when it would be held and the table is full; nothing changed except the method's delay
    /// (the wait is real whether or not this request can be held): surface the error.
    pub fn on_error(
        &mut self,
        id: RequestId,
        key: MethodKey,
        chain: Option<ChainId>,
        retry: &mut RetryState,
        error: &RpcError<'_>,
        now: Instant,
    ) -> Result<Verdict, FloodError> {
        let wait = match error.kind {
            ErrorKind::Wait { seconds, .. } => {
                let wait = Duration::from_secs(u64::from(seconds)).clamp(Duration::from_secs(1), MAX_WAIT);
                let until = now.saturating_add(wait);
                self.note_delay(key, until, now);
                if retry.waited.saturating_add(wait) > self.config.auto_wait_limit {
                    self.finish(id, now);
                    return Ok(Verdict::Surface { until: Some(until) });
                }
                wait
            }
            ErrorKind::Retry(reason) => {
                if retry.retries >= self.config.max_retries {
                    self.finish(id, now);
                    return Ok(Verdict::Surface { until: None });
                }
                let wait = match reason {
                    RetryReason::WorkerBusy => Duration::from_secs(1),
                    RetryReason::Flood | RetryReason::Internal | RetryReason::Timeout => {
                        let doubled = self
                            .config
                            .backoff_initial
                            .saturating_mul(1u32 << retry.retries.min(31));
                        doubled.min(self.config.backoff_max)
                    }
                };
                if retry.waited.saturating_add(wait) > self.config.auto_wait_limit {
                    self.finish(id, now);
                    return Ok(Verdict::Surface { until: None });
                }
                wait
            }
            _ => return Ok(Verdict::NotMine),
        };
        let until = now.saturating_add(wait);
        match self.position(id) {
            Some(i) => {
                // A released chain member: it keeps its place at the front of its chain.
                if let Some(e) = self.entries.get_mut(i) {
                    e.state = State::Waiting(Some(until));
                }
            }
            None => self
                .entries
                .push(Entry {
                    id,
                    chain,
                    state: State::Waiting(Some(until)),
                })
                .map_err(|_| FloodError::Full)?,
        }
        retry.waited = retry.waited.saturating_add(wait);
        if matches!(error.kind, ErrorKind::Retry(_)) {
            retry.retries = retry.retries.saturating_add(1);
        }
        self.promote(now);
        Ok(Verdict::Retry { until })
    }

    /// Request `id` finished (answered, failed for good, or cancelled): if the scheduler still tracks it (held, or
    /// released in a chain), it is forgotten and its chain moves on. Returns whether it was tracked; a host may call
    /// this for every finished request.
    pub fn completed(&mut self, id: RequestId, now: Instant) -> bool {
        self.finish(id, now)
    }

    fn finish(&mut self, id: RequestId, now: Instant) -> bool {
        let Some(i) = self.position(id) else {
            return false;
        };
        self.entries.remove(i);
        self.promote(now);
        true
    }

    /// Records that `key` is under a wait until `until` (the later of two waits wins).
    fn note_delay(&mut self, key: MethodKey, until: Instant, now: Instant) {
        if let Some(d) = self.delays.iter_mut().find(|(k, _)| *k == key) {
            d.1 = d.1.max(until);
            return;
        }
        self.delays.retain(|&(_, u)| u > now);
        if self.delays.is_full() {
            // A hint table: forget the delay that ends soonest (see the module docs).
            let soonest = self
                .delays
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(i, _)| i);
            if let Some(i) = soonest {
                self.delays.swap_remove(i);
                self.evicted = self.evicted.saturating_add(1);
            }
        }
        let _ = self.delays.push((key, until));
    }

    /// Whether entry `i` may leave now: due, and first of its chain.
    fn due(&self, i: usize, now: Instant) -> bool {
        let Some(e) = self.entries.get(i) else {
            return false;
        };
        let time_ok = match e.state {
            State::Waiting(None) => true,
            State::Waiting(Some(u)) => u <= now,
            State::Ready | State::Released => return false,
        };
        time_ok && self.first_of_chain(i)
    }

    fn first_of_chain(&self, i: usize) -> bool {
        let Some(e) = self.entries.get(i) else {
            return false;
        };
        let Some(c) = e.chain else {
            return true;
        };
        !self.entries.iter().take(i).any(|p| p.chain == Some(c))
    }

    fn promote(&mut self, now: Instant) {
        for i in 0..self.entries.len() {
            if self.due(i, now)
                && let Some(e) = self.entries.get_mut(i)
            {
                e.state = State::Ready;
            }
        }
    }

    /// Releases what is due at `now` (to [`FloodScheduler::poll_release`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.promote(now);
    }

    /// The next instant something held becomes due (`None`: nothing waits on time). Held requests behind an
    /// unfinished chain member wait for [`FloodScheduler::completed`], not for time, and do not count.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e.state {
                State::Waiting(Some(u)) if self.first_of_chain(i) => Some(u),
                _ => None,
            })
            .min()
    }

    /// The next held request to send now, in the order they were held. A chained request stays tracked until
    /// [`FloodScheduler::completed`] (so the rest of its chain waits for it); an unchained one is forgotten.
    pub fn poll_release(&mut self) -> Option<RequestId> {
        let i = self.entries.iter().position(|e| e.state == State::Ready)?;
        let e = self.entries.get_mut(i)?;
        let id = e.id;
        if e.chain.is_some() {
            e.state = State::Released;
        } else {
            self.entries.remove(i);
        }
        Some(id)
    }
}
