//! Rate limits and quotas: which `limit` declarations an allowed request counts against, and
//! the store that counts.
//!
//! A request is first decided by policy; only an allowed one is counted, by [`consume`],
//! atomically across every limit that applies: when one refuses, none is consumed. A rolling
//! period is a GCRA (generic cell rate algorithm: one "theoretical arrival time" per key, so
//! `count` requests may come at once and then one per `period / count`); a calendar period is
//! a counter that starts afresh at the start of each day, week or month in its zone.

use std::sync::{Arc, Mutex, PoisonError};

use jiff::{Timestamp, ToSpan};
use smallvec::SmallVec;
use thiserror::Error;

use crate::check::limits::CalendarUnit;
use crate::data::value::{EntityRef, Value};
use crate::eval::{self, Request, explain};
use crate::program::{LimitPeriod, Program};

pub mod shared;

pub use shared::{OnFailure, RedisConfig, RedisStore};

/// How one limit stood after a request was counted (for `RateLimit` headers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub name: Arc<str>,
    pub count: u64,
    /// The limit's period, in seconds (a calendar period: the current one's length).
    pub window_secs: u64,
    /// How many more requests the key may make right now.
    pub remaining: u64,
    /// Seconds until the key has its whole allowance again.
    pub reset_secs: u64,
}

/// How the limits a request counted against stood (most requests count against one or two).
pub(crate) type Usages = SmallVec<[Usage; 2]>;

/// Why a request allowed by policy is refused by a limit.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error(
        "rate limit `{name}` reached: {count} per {window} for {key}; retry in {retry_after_secs}s"
    )]
    Reached {
        name: Arc<str>,
        count: u64,
        window: String,
        window_secs: u64,
        key: String,
        retry_after_secs: u64,
    },
    /// Its key could not be evaluated for this request (it fails closed).
    #[error("rate limit `{name}` could not tell whom to count: {why}")]
    NoKey { name: Arc<str>, why: String },
    /// The shared store did not answer in time and `rate_limit_redis_failure` is `closed`.
    #[error(
        "rate limit `{name}` could not be checked: the shared limit store is unavailable ({why})"
    )]
    Unavailable { name: Arc<str>, why: String },
}

impl Refusal {
    pub fn name(&self) -> &str {
        match self {
            Refusal::Reached { name, .. }
            | Refusal::NoKey { name, .. }
            | Refusal::Unavailable { name, .. } => name,
        }
    }

    /// Seconds until a retry may succeed; `None` when waiting does not help.
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Refusal::Reached {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Refusal::NoKey { .. } | Refusal::Unavailable { .. } => None,
        }
    }
}

/// One limit to count a request against: the key's value, and the window.
#[derive(Clone, Debug)]
pub struct Check {
    limit: usize,
    value: Value,
    /// The limit's name and the key's value under this process's secret hash key: what the
    /// in-process store keys its map by.
    hash: u128,
    window: Window,
}

impl Check {
    /// The key's value, as a refusal names it.
    fn shown(&self, program: &Program) -> String {
        let mut text = String::from("`");
        explain::push_value(&mut text, program, &self.value);
        text.push('`');
        text
    }

    /// The key's value as a policy would write it, after `prefix`.
    fn key_text(&self, program: &Program, prefix: &str) -> String {
        let mut text = String::with_capacity(prefix.len() + 32);
        text.push_str(prefix);
        explain::push_value(&mut text, program, &self.value);
        text
    }
}

/// The key of a limit's count in the in-process map: the limit's name and the key's value
/// (as a policy writes it) hashed into 128 bits by SipHash-1-3 under a key drawn at random
/// once per process. The map holds the hash, not the text: no string is built, copied or
/// compared per request. Callers choose the values (subject ids, addresses), but without the
/// process's key they cannot compute a hash, so they cannot aim two values at one count; by
/// chance, two of `n` live keys share a hash with probability about `n² / 2^129`, nil for any
/// map that fits in memory. A map hash of 64 bits, unkeyed, would let a caller collide keys
/// into one bucket chain.
fn key_hash(program: &Program, name: &str, value: &Value) -> u128 {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    static KEYS: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    let (k0, k1) = *KEYS.get_or_init(|| {
        let random = || {
            getrandom::u64().unwrap_or_else(|_| {
                use std::hash::BuildHasher;
                std::collections::hash_map::RandomState::new().hash_one(0u8)
            })
        };
        (random(), random())
    });
    // One write of `NAME 0xFF KIND VALUE`, the value's parts apart by 0xFF: a byte no UTF-8
    // text holds, so distinct names and values never run into the same bytes.
    let mut bytes: SmallVec<[u8; 64]> = SmallVec::new();
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0xff);
    let entity = match value {
        Value::Entity(EntityRef::Known(id)) => program.store.entity(*id).map(|e| &e.uid),
        Value::Entity(EntityRef::Unknown(uid)) => Some(&**uid),
        _ => None,
    };
    match (value, entity) {
        // What the text `TYPE::"ID"` says, whether the store holds the entity or not.
        (_, Some(uid)) => {
            bytes.push(b'e');
            bytes.extend_from_slice(uid.ty.as_bytes());
            bytes.push(0xff);
            bytes.extend_from_slice(uid.id.as_bytes());
        }
        (Value::Str(text), _) => {
            bytes.push(b's');
            bytes.extend_from_slice(text.as_bytes());
        }
        (other, _) => {
            let mut text = String::new();
            explain::push_value(&mut text, program, other);
            bytes.push(b't');
            bytes.extend_from_slice(text.as_bytes());
        }
    }
    let mut hasher = SipHasher13::new_with_keys(k0, k1);
    hasher.write(&bytes);
    hasher.finish128().as_u128()
}

/// A map keyed by [`key_hash`]: already uniform, so the map takes its low bits as they are.
type HashedMap<V> = std::collections::HashMap<u128, V, std::hash::BuildHasherDefault<Hashed>>;

/// The map hasher of [`HashedMap`]: the key is a keyed hash already.
#[derive(Default)]
struct Hashed(u64);

impl std::hash::Hasher for Hashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u128` keys reach it (`write_u128`); any other bytes are folded in.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, hash: u128) {
        self.0 = hash as u64;
    }
}

#[derive(Clone, Copy, Debug)]
enum Window {
    /// GCRA: `count` requests per `period` nanoseconds, one per `interval` (`period / count`).
    Rolling { period: i128, interval: i128 },
    /// A fixed window `[start, end)` in nanoseconds since the epoch.
    Fixed { start: i128, end: i128 },
}

/// What the store keeps per key.
#[derive(Clone, Copy, Debug)]
enum State {
    /// The theoretical arrival time, in nanoseconds since the epoch.
    Tat(i128),
    /// Requests counted in the window that starts at `start` and ends at `end`.
    Count { start: i128, end: i128, used: u64 },
}

/// The in-process store: one map under one lock, so that checking every limit of a request
/// and committing them is one step.
#[derive(Debug, Default)]
pub struct LocalStore {
    states: Mutex<States>,
}

#[derive(Debug, Default)]
struct States {
    /// Keyed by what callers send (subject ids, addresses), through [`key_hash`].
    map: HashedMap<State>,
    /// The size at which expired keys are next swept: twice what a sweep left, so that many
    /// live keys cost one sweep per doubling, not one per request.
    sweep_at: usize,
}

/// How many keys the map holds before expired ones are first swept.
const SWEEP_AT: usize = 65_536;

impl LocalStore {
    pub fn new() -> LocalStore {
        LocalStore::default()
    }
}

/// Where requests are counted: all of `checks` at `now`, or none when one refuses.
pub trait Store {
    fn consume(&self, program: &Program, checks: &[Check], now: i128) -> Result<Usages, Refusal>;
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn consume(&self, program: &Program, checks: &[Check], now: i128) -> Result<Usages, Refusal> {
        (**self).consume(program, checks, now)
    }
}

/// One map under one lock: checking every limit of a request and committing them is one step.
impl Store for LocalStore {
    fn consume(&self, program: &Program, checks: &[Check], now: i128) -> Result<Usages, Refusal> {
        let mut guard = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let States {
            map: states,
            sweep_at,
        } = &mut *guard;
        let mut next: SmallVec<[State; 2]> = SmallVec::with_capacity(checks.len());
        let mut usages = Usages::with_capacity(checks.len());
        for check in checks {
            let Some(limit) = program.limits.get(check.limit) else {
                continue;
            };
            let count = limit.count.max(1);
            let current = states.get(&check.hash).copied();
            let state = match check.window {
                Window::Rolling { period, interval } => {
                    let tat = match current {
                        Some(State::Tat(tat)) => tat.max(now),
                        _ => now,
                    };
                    let new_tat = tat + interval;
                    if new_tat - now > period {
                        return Err(reached(program, limit, check, new_tat - period - now));
                    }
                    State::Tat(new_tat)
                }
                Window::Fixed { start, end } => {
                    let used = match current {
                        Some(State::Count { start: s, used, .. }) if s == start => used,
                        _ => 0,
                    };
                    if used >= count {
                        return Err(reached(program, limit, check, end - now));
                    }
                    State::Count {
                        start,
                        end,
                        used: used + 1,
                    }
                }
            };
            next.push(state);
            usages.push(settled(limit, check, state, now));
        }
        if states.len() >= (*sweep_at).max(SWEEP_AT) {
            states.retain(|_, state| match state {
                State::Tat(tat) => *tat > now,
                State::Count { end, .. } => *end > now,
            });
            *sweep_at = states.len().saturating_mul(2);
        }
        for (check, state) in checks.iter().zip(next) {
            states.insert(check.hash, state);
        }
        Ok(usages)
    }
}

/// How a limit stands once a request is counted and its key holds `state`.
fn settled(limit: &crate::program::Limit, check: &Check, state: State, now: i128) -> Usage {
    match (check.window, state) {
        (Window::Rolling { period, interval }, State::Tat(tat)) => {
            let left = div(period - (tat - now), interval.max(1));
            usage(limit, period, left, tat - now)
        }
        (Window::Fixed { start, end }, State::Count { used, .. }) => {
            let left = i128::from(limit.count.saturating_sub(used));
            usage(limit, end - start, left, end - now)
        }
        // A state of the other kind is never stored under a key: the key names the window.
        (Window::Rolling { period, .. }, State::Count { .. }) => usage(limit, period, 0, period),
        (Window::Fixed { start, end }, State::Tat(_)) => usage(limit, end - start, 0, end - now),
    }
}

/// The in-process store, or Redis shared by a fleet with the in-process store as its fallback.
#[derive(Debug, Default)]
pub struct Limiter {
    local: LocalStore,
    shared: Option<shared::RedisStore>,
}

impl Limiter {
    /// Counts in this process only.
    pub fn local() -> Limiter {
        Limiter::default()
    }

    /// Counts in Redis; the in-process store counts while Redis fails, if `store` fails open.
    pub fn shared(store: shared::RedisStore) -> Limiter {
        Limiter {
            local: LocalStore::new(),
            shared: Some(store),
        }
    }

    /// The shared store's health and counts for `/v1/status`.
    pub fn status(&self) -> serde_json::Value {
        match &self.shared {
            Some(store) => store.status(),
            None => serde_json::json!({ "store": "local" }),
        }
    }

    /// The shared store's counters in Prometheus' text format.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        if let Some(store) = &self.shared {
            store.render_metrics(out);
        }
    }
}

impl Limiter {
    /// True when requests are counted in Redis: counting then waits for a round trip, which
    /// the server's doors await ([`Limiter::count`]) rather than block on.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Counts a request against `checks` at `now` (nanoseconds since the epoch), awaiting
    /// Redis when the limits are shared: at most the configured timeout, then the configured
    /// failure behaviour. The server's doors call this from the request's own task.
    pub async fn count(
        &self,
        program: &Program,
        checks: &[Check],
        now: i128,
    ) -> Result<Usages, Refusal> {
        match &self.shared {
            Some(store) if !checks.is_empty() => {
                let counted = store.consume(program, checks, now).await;
                self.settle(store, counted, program, checks, now)
            }
            _ => self.local.consume(program, checks, now),
        }
    }

    /// What Redis answered, or on a failure the local store's count (open) or a refusal
    /// (closed).
    fn settle(
        &self,
        store: &shared::RedisStore,
        counted: Result<Result<Usages, Refusal>, shared::RedisFailure>,
        program: &Program,
        checks: &[Check],
        now: i128,
    ) -> Result<Usages, Refusal> {
        match counted {
            Ok(counted) => counted,
            Err(failure) => match store.on_failure() {
                OnFailure::Open => self.local.consume(program, checks, now),
                OnFailure::Closed => {
                    let name = checks
                        .first()
                        .and_then(|check| program.limits.get(check.limit))
                        .map_or_else(|| Arc::from(""), |limit| limit.name.clone());
                    Err(Refusal::Unavailable {
                        name,
                        why: failure.to_string(),
                    })
                }
            },
        }
    }
}

/// Counts from synchronous code: with Redis, the calling thread waits for the round trip
/// (the CLI and the benches; the server awaits [`Limiter::count`] instead).
impl Store for Limiter {
    fn consume(&self, program: &Program, checks: &[Check], now: i128) -> Result<Usages, Refusal> {
        match &self.shared {
            Some(store) if !checks.is_empty() => {
                let counted = store.consume_blocking(program, checks, now);
                self.settle(store, counted, program, checks, now)
            }
            _ => self.local.consume(program, checks, now),
        }
    }
}

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Whole seconds, rounded up: a client that waits this long is never early.
fn secs_up(nanos: i128) -> u64 {
    u64::try_from(div(nanos.max(0) + NANOS_PER_SEC - 1, NANOS_PER_SEC)).unwrap_or(u64::MAX)
}

/// `a / b` (`b` positive): in 64 bits when both fit, as periods and times to come always do;
/// a 128-bit division costs several times more, on every counted request.
fn div(a: i128, b: i128) -> i128 {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(a), Ok(b)) if b > 0 => i128::from(a / b),
        _ => a / b.max(1),
    }
}

fn usage(limit: &crate::program::Limit, window: i128, left: i128, reset: i128) -> Usage {
    Usage {
        name: limit.name.clone(),
        count: limit.count,
        window_secs: secs_up(window),
        remaining: u64::try_from(left.max(0)).unwrap_or(0),
        reset_secs: secs_up(reset),
    }
}

fn reached(
    program: &Program,
    limit: &crate::program::Limit,
    check: &Check,
    retry: i128,
) -> Refusal {
    let window = match check.window {
        Window::Rolling { period, .. } => period,
        Window::Fixed { start, end } => end - start,
    };
    let window_text = match limit.period {
        LimitPeriod::Rolling(millis) => crate::syntax::fmt::duration_text(millis),
        LimitPeriod::Calendar(unit, _) => match unit {
            CalendarUnit::Day => "calendar day",
            CalendarUnit::Week => "calendar week",
            CalendarUnit::Month => "calendar month",
        }
        .to_string(),
    };
    Refusal::Reached {
        name: limit.name.clone(),
        count: limit.count,
        window: window_text,
        window_secs: secs_up(window),
        key: check.shown(program),
        retry_after_secs: secs_up(retry).max(1),
    }
}

/// The calendar period containing `now` in `zone`, as `[start, end)` in nanoseconds.
fn calendar_window(
    now: Timestamp,
    unit: CalendarUnit,
    zone: &jiff::tz::TimeZone,
) -> Option<(i128, i128)> {
    let today = zone.to_datetime(now).date();
    let first = match unit {
        CalendarUnit::Day => today,
        CalendarUnit::Week => {
            let back = i64::from(today.weekday().to_monday_zero_offset());
            today.checked_sub(back.days()).ok()?
        }
        CalendarUnit::Month => today.first_of_month(),
    };
    let next = match unit {
        CalendarUnit::Day => first.checked_add(1.day()).ok()?,
        CalendarUnit::Week => first.checked_add(1.week()).ok()?,
        CalendarUnit::Month => first.checked_add(1.month()).ok()?,
    };
    // Midnight as the zone's clocks show it (the earlier instant when they show it twice).
    let instant = |date: jiff::civil::Date| {
        zone.to_ambiguous_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .compatible()
            .ok()
            .map(|t| t.as_nanosecond())
    };
    Some((instant(first)?, instant(next)?))
}

fn type_of<'p>(program: &'p Program, value: &'p Value) -> Option<&'p str> {
    match value {
        Value::Entity(EntityRef::Known(id)) => program.store.entity(*id).map(|e| &*e.uid.ty),
        Value::Entity(EntityRef::Unknown(uid)) => Some(&uid.ty),
        _ => None,
    }
}

/// The limits of `program` that apply to a request, each with its key and window.
pub type Checks = SmallVec<[Check; 2]>;

/// Counts an allowed request against every limit of `program` that applies to it: all of
/// them, or none when one refuses. A limit whose condition cannot be evaluated applies (it
/// fails closed); one whose key cannot be evaluated refuses.
pub fn consume(
    program: &Program,
    request: &Request,
    store: &impl Store,
) -> Result<Usages, Refusal> {
    let checks = checks(program, request)?;
    if checks.is_empty() {
        return Ok(Usages::new());
    }
    store.consume(program, &checks, request.now.as_nanosecond())
}

/// What an allowed request is counted against: every limit of `program` that applies to it,
/// with its key evaluated (a key that cannot be evaluated refuses the request).
pub fn checks(program: &Program, request: &Request) -> Result<Checks, Refusal> {
    let mut checks = Checks::new();
    if program.limits.is_empty() {
        return Ok(checks);
    }
    let resource_type = type_of(program, &request.resource).unwrap_or("");
    let placed: SmallVec<[usize; 2]> = program
        .limits
        .iter()
        .enumerate()
        .filter(|(_, limit)| limit.counts(&request.action, resource_type))
        .map(|(index, _)| index)
        .collect();
    if placed.is_empty() {
        return Ok(checks);
    }
    // Each limit's key, then its condition when it has one.
    let mut nodes: SmallVec<[crate::program::NodeId; 4]> =
        SmallVec::with_capacity(placed.len() * 2);
    for index in &placed {
        if let Some(limit) = program.limits.get(*index) {
            nodes.push(limit.key);
            nodes.extend(limit.condition);
        }
    }
    let mut values: SmallVec<[_; 4]> = SmallVec::with_capacity(nodes.len());
    eval::evaluate_all(program, request, &nodes, &mut values);
    let mut values = values.into_iter();
    for index in &placed {
        let Some(limit) = program.limits.get(*index) else {
            continue;
        };
        let Some(key) = values.next() else {
            continue;
        };
        let condition = match limit.condition {
            Some(_) => values.next(),
            None => None,
        };
        // A condition that cannot be evaluated applies the limit (it fails closed).
        let applies = !matches!(condition, Some(Ok(Value::Bool(false))));
        if !applies {
            continue;
        }
        let value = match key {
            Ok(value) => value,
            Err(error) => {
                return Err(Refusal::NoKey {
                    name: limit.name.clone(),
                    why: explain::error_message(program, &error),
                });
            }
        };
        let window = match limit.period {
            LimitPeriod::Rolling(millis) => {
                let period = i128::from(millis) * 1_000_000;
                Window::Rolling {
                    period,
                    interval: div(period, i128::from(limit.count.max(1))),
                }
            }
            LimitPeriod::Calendar(unit, zone) => {
                let window = program
                    .zones
                    .get(zone as usize)
                    .and_then(|(_, zone)| calendar_window(request.now, unit, zone));
                match window {
                    Some((start, end)) => Window::Fixed { start, end },
                    None => {
                        return Err(Refusal::NoKey {
                            name: limit.name.clone(),
                            why: "the calendar period could not be computed".to_string(),
                        });
                    }
                }
            }
        };
        checks.push(Check {
            limit: *index,
            hash: key_hash(program, &limit.name, &value),
            value,
            window,
        });
    }
    Ok(checks)
}
