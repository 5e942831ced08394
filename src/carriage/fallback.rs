//! Which carriage to try next, and when.
//!
//! A host reports each failed attempt ([`FallbackPolicy::on_failure`]) and each connection that carried traffic
//! ([`FallbackPolicy::on_success`]). The policy answers with a [`Decision`]: the carriage of the next attempt and
//! the earliest time to start it. Failures that point at blocking (timeouts, resets, TLS alerts, refused
//! upgrades, most HTTP statuses) move to the next carriage in the configured order; failures that point at load
//! (`-429`, HTTP 429/503) keep the carriage. The delay grows exponentially with consecutive failures of a DC and
//! carries "equal jitter" (half fixed, half drawn from the RNG), so reconnect storms do not synchronise. What
//! worked last is remembered per DC in a bounded table (least recently used entry evicted), and tried first next
//! time. Deterministic: same inputs and RNG, same decisions.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::CryptoRng;

/// A way to reach a DC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Carriage {
    /// The obfuscated TCP transport (optionally through a `dd` MTProxy).
    ObfuscatedTcp,
    /// Fake-TLS (`ee` MTProxy).
    FakeTls,
    /// WebSocket (`wss://…/apiws`).
    WebSocket,
    /// HTTP (`POST /api`).
    Http,
}

/// What went wrong with an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Failure {
    /// The connection did not open in time.
    ConnectTimeout,
    /// The connection was refused or reset (a typical DPI response).
    Reset,
    /// A transport error code from the DC (`-404`, `-429`, `-444`, ...).
    TransportCode(i32),
    /// A TLS alert (the fake-TLS handshake was refused, or a middlebox spoke TLS).
    TlsAlert,
    /// An HTTP status other than 200 (or other than 101 on a WebSocket upgrade).
    HttpStatus(u16),
    /// The WebSocket was closed with this status code.
    WsClose(u16),
    /// The peer's handshake did not verify (bad digest, bad `Sec-WebSocket-Accept`): someone else answered.
    HandshakeInvalid,
}

impl Failure {
    /// Whether the failure says "overloaded, retry later" rather than "blocked, try something else".
    pub const fn is_load(self) -> bool {
        matches!(
            self,
            Failure::TransportCode(-429) | Failure::HttpStatus(429) | Failure::HttpStatus(503) | Failure::WsClose(1013)
        )
    }
}

/// The policy's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decision {
    /// The carriage to use for the next attempt.
    pub carriage: Carriage,
    /// The earliest time (host milliseconds, same clock as `now_ms`) to start it.
    pub at_ms: u64,
}

/// The policy's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FallbackConfig {
    /// The order carriages are tried in; a carriage absent from the first `enabled` entries is never chosen.
    pub order: [Carriage; 4],
    /// How many entries of `order` are in use (1..=4).
    pub enabled: usize,
    /// The delay after the first failure, in ms.
    pub base_delay_ms: u64,
    /// The cap of the exponential delay, in ms.
    pub max_delay_ms: u64,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            order: [
                Carriage::ObfuscatedTcp,
                Carriage::FakeTls,
                Carriage::WebSocket,
                Carriage::Http,
            ],
            enabled: 4,
            base_delay_ms: 500,
            max_delay_ms: 60_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Entry {
    dc: i16,
    worked: Option<Carriage>,
    current: Carriage,
    failures: u32,
    used: u64,
}

/// The fallback state for up to `D` DCs.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FallbackPolicy<const D: usize> {
    cfg: FallbackConfig,
    table: [Option<Entry>; D],
    tick: u64,
}

impl<const D: usize> FallbackPolicy<D> {
    /// A policy with no history.
    pub fn new(cfg: FallbackConfig) -> Self {
        let enabled = cfg.enabled.clamp(1, 4);
        FallbackPolicy {
            cfg: FallbackConfig { enabled, ..cfg },
            table: [None; D],
            tick: 0,
        }
    }

    fn order(&self) -> &[Carriage] {
        self.cfg.order.get(..self.cfg.enabled).unwrap_or(&[])
    }

    fn first_carriage(&self) -> Carriage {
        self.order().first().copied().unwrap_or(Carriage::ObfuscatedTcp)
    }

    fn entry(&mut self, dc: i16) -> Option<&mut Entry> {
        self.tick += 1;
        let tick = self.tick;
        let idx = match self.table.iter().position(|e| e.is_some_and(|e| e.dc == dc)) {
            Some(i) => i,
            None => {
                // A free slot, else the least recently used one.
                let i = self
                    .table
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.map_or(0, |e| e.used))
                    .map(|(i, _)| i)?;
                let first = self.first_carriage();
                if let Some(slot) = self.table.get_mut(i) {
                    *slot = Some(Entry {
                        dc,
                        worked: None,
                        current: first,
                        failures: 0,
                        used: tick,
                    });
                }
                i
            }
        };
        let e = self.table.get_mut(idx)?.as_mut()?;
        e.used = tick;
        Some(e)
    }

    /// The carriage to open first for `dc`: the one that worked last, else the first in the order.
    pub fn first(&mut self, dc: i16) -> Carriage {
        let first = self.first_carriage();
        self.entry(dc).map_or(first, |e| e.worked.unwrap_or(e.current))
    }

    /// The carriage that last carried traffic to `dc`, if remembered.
    pub fn remembered(&self, dc: i16) -> Option<Carriage> {
        self.table.iter().flatten().find(|e| e.dc == dc).and_then(|e| e.worked)
    }

    /// Records that `carriage` carried traffic to `dc`: it is remembered and the backoff resets.
    pub fn on_success(&mut self, dc: i16, carriage: Carriage) {
        if let Some(e) = self.entry(dc) {
            e.worked = Some(carriage);
            e.current = carriage;
            e.failures = 0;
        }
    }

    /// Records a failed attempt of `carriage` to `dc` at `now_ms` and decides the next attempt.
    pub fn on_failure<R: CryptoRng + ?Sized>(
        &mut self,
        dc: i16,
        carriage: Carriage,
        failure: Failure,
        now_ms: u64,
        rng: &mut R,
    ) -> Decision {
        let cfg = self.cfg;
        let next = if failure.is_load() {
            carriage
        } else {
            let order = self.order();
            let pos = order.iter().position(|&c| c == carriage);
            let n = order.len().max(1);
            pos.map_or(self.first_carriage(), |p| {
                order.get((p + 1) % n).copied().unwrap_or(carriage)
            })
        };
        let failures = match self.entry(dc) {
            Some(e) => {
                // A carriage that stopped working is forgotten, so the next session does not start with it.
                if e.worked == Some(carriage) && !failure.is_load() {
                    e.worked = None;
                }
                e.failures = e.failures.saturating_add(1);
                e.current = next;
                e.failures
            }
            None => 1,
        };
        let exp = failures.saturating_sub(1).min(32);
        let delay = cfg.base_delay_ms.saturating_mul(1u64 << exp).min(cfg.max_delay_ms);
        let half = delay / 2;
        let jitter = if half > 0 { rng.next_u64() % (half + 1) } else { 0 };
        Decision {
            carriage: next,
            at_ms: now_ms.saturating_add(delay - half + jitter),
        }
    }
}
