//! Rate limits and quotas: which `limit` declarations an allowed request counts against, and
//! the store that counts.
//!
//! A request is first decided by policy; only an allowed one is counted, by [`consume`],
//! atomically across every limit that applies: when one refuses, none is consumed. A rolling
//! period is a GCRA (generic cell rate algorithm: one "theoretical arrival time" per key, so
//! `count` requests may come at once and then one per `period / count`); a calendar period is
//! a counter that starts afresh at the start of each day, week or month in its zone.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::{Timestamp, ToSpan};
use smallvec::SmallVec;
use thiserror::Error;

use crate::check::limits::CalendarUnit;
use crate::data::value::Value;
use crate::eval::{self, Request, explain};
use crate::program::{LimitPeriod, Program};

pub mod shared;

pub use shared::{OnFailure, RedisConfig, RedisStore};

/// How one limit stood after a request was counted. Only the forward-auth door shows it
/// (the `RateLimit` headers), so its [`Figures`] are worked out when shown, not when counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The limit, an index into the program's limits (its name and count are there).
    pub limit: usize,
    standing: Standing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// A rolling limit whose key's theoretical arrival time is `ahead` nanoseconds after the
    /// request: its figures follow from the limit's period and count.
    Rolling { ahead: i64 },
    /// Figures already worked out (a calendar period's, whose length depends on the date).
    Known(Figures),
}

/// What the `RateLimit` headers say of one limit after a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// The limit's period, in seconds (a calendar period: the current one's length).
    pub window_secs: u64,
    /// How many more requests the key may make right now.
    pub remaining: u64,
    /// Seconds until the key has its whole allowance again.
    pub reset_secs: u64,
}

impl Usage {
    /// Its figures; `limit` is the limit it counts for (`program.limits[self.limit]`).
    pub fn figures(&self, limit: &crate::program::Limit) -> Figures {
        match (self.standing, limit.period) {
            (Standing::Known(figures), _) => figures,
            (Standing::Rolling { ahead }, LimitPeriod::Rolling { millis, interval }) => {
                let period = i128::from(millis) * 1_000_000;
                rolling_figures(period, interval, limit.count, i128::from(ahead))
            }
            // A rolling standing comes only from a rolling limit of the same program.
            (Standing::Rolling { .. }, LimitPeriod::Calendar(..)) => Figures::default(),
        }
    }
}

/// A rolling limit's figures when its key's theoretical arrival time is `ahead` nanoseconds
/// away: of its `count` intervals, what is not ahead it may spend now.
fn rolling_figures(period: i128, interval: i128, count: u64, ahead: i128) -> Figures {
    let interval = interval.max(1);
    figures(period, div(burst(interval, count) - ahead, interval), ahead)
}

/// How far ahead of now a rolling limit's theoretical arrival time may run: `count`
/// intervals, so that exactly `count` requests pass at once. (The period itself may be up to
/// `count` microseconds more, as the interval is rounded down to whole microseconds, which
/// would let through more than the count.)
fn burst(interval: i128, count: u64) -> i128 {
    interval * i128::from(count.max(1))
}

/// How the limits a request counted against stood (most requests count against one or two).
pub type Usages = SmallVec<[Usage; 2]>;

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

/// One limit to count a request against: its key, hashed for the in-process map, and the
/// window. The key's value rides along for what is rare: a refusal's text, and the key Redis
/// counts under. It is borrowed from the request when the key is the request's subject or
/// resource, and otherwise moved from the evaluator; never copied.
#[derive(Clone, Debug)]
pub struct Check<'v> {
    /// The limit's name and the key's value under this process's secret hash key: what the
    /// in-process store keys its map by.
    hash: u128,
    window: Window,
    limit: usize,
    value: Cow<'v, Value>,
}

impl Check<'_> {
    /// The check holding its own key's value: one to count once the request is gone.
    fn into_owned(self) -> Check<'static> {
        Check {
            hash: self.hash,
            window: self.window,
            limit: self.limit,
            value: Cow::Owned(self.value.into_owned()),
        }
    }

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
fn key_hash(program: &Program, name: &str, value: &Value, period: Option<i64>) -> u128 {
    use siphasher::sip128::{Hasher128, SipHasher13};
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
    let mut hasher = SipHasher13::new_with_keys(k0, k1);
    encode_key(program, name, value, period, &mut hasher);
    hasher.finish128().as_u128()
}

/// What a key's value is, in the first byte of its encoding.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Kind {
    /// An entity: its type, then its id.
    Entity = b'e',
    /// A string: its text.
    Str = b's',
    /// Anything else (numbers, addresses, times, sets, records): its text as a policy
    /// writes it.
    Text = b't',
}

/// In the first word, beside the kind: the lengths that follow are whole words each.
const LONG: u64 = 0x100;

/// In the first word, beside the kind: a calendar period's start follows the lengths.
const CALENDAR: u64 = 0x200;

/// Feeds the limit's name and the key's value to `into` as whole 64-bit words, with no
/// buffer in between (SipHash takes a word at a time; bytes cost it more). The first word
/// holds the value's kind and the three parts' lengths (the name, then the value's one or
/// two parts: an entity's type and id, or a text and an empty part), 16 bits each; when one
/// is longer, a flag, and the three lengths follow as words of their own. Then each part,
/// eight bytes a word, its last word padded with zeros. The lengths come first and fix how
/// many words follow, so no encoding is a prefix of another, and distinct (name, value)
/// pairs never feed the same words: `("ab", "c")` and `("a", "bc")` differ in their lengths.
/// An entity is its type and id, whether the store holds it or the request named one it
/// does not hold. A calendar quota's key also holds its period's start (`period`, in
/// seconds), after a flag: each period is counted apart, as Redis keys them, and apart from
/// the rolling count of a limit of the same name.
fn encode_key<H: std::hash::Hasher>(
    program: &Program,
    name: &str,
    value: &Value,
    period: Option<i64>,
    into: &mut H,
) {
    let entity = match value {
        Value::Entity(entity) => program.store.uid(entity),
        _ => None,
    };
    let rendered;
    let (kind, first, second): (Kind, &str, &str) = match (value, entity) {
        (_, Some(uid)) => (Kind::Entity, &uid.ty, &uid.id),
        (Value::Str(text), _) => (Kind::Str, text, ""),
        (other, _) => {
            let mut text = String::new();
            explain::push_value(&mut text, program, other);
            rendered = text;
            (Kind::Text, &rendered, "")
        }
    };
    let parts = [name.as_bytes(), first.as_bytes(), second.as_bytes()];
    let lengths = parts.map(|part| u16::try_from(part.len()));
    let kind = kind as u64 | if period.is_some() { CALENDAR } else { 0 };
    match lengths {
        [Ok(a), Ok(b), Ok(c)] => {
            into.write_u64(kind | u64::from(a) << 16 | u64::from(b) << 32 | u64::from(c) << 48)
        }
        _ => {
            into.write_u64(kind | LONG);
            for part in parts {
                into.write_u64(part.len() as u64);
            }
        }
    }
    if let Some(start) = period {
        into.write_u64(start as u64);
    }
    for part in parts {
        let mut words = part.chunks_exact(8);
        for word in &mut words {
            if let Ok(word) = <[u8; 8]>::try_from(word) {
                into.write_u64(u64::from_le_bytes(word));
            }
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            into.write_u64(short_word(rest));
        }
    }
}

/// Up to 7 bytes as the low bytes of a little-endian word (in three loads at most).
fn short_word(bytes: &[u8]) -> u64 {
    let mut word = 0;
    let mut at = 0;
    if let Some(four) = bytes
        .get(..4)
        .and_then(|four| <[u8; 4]>::try_from(four).ok())
    {
        word = u64::from(u32::from_le_bytes(four));
        at = 4;
    }
    if let Some(two) = bytes
        .get(at..at + 2)
        .and_then(|two| <[u8; 2]>::try_from(two).ok())
    {
        word |= u64::from(u16::from_le_bytes(two)) << (8 * at);
        at += 2;
    }
    if let Some(one) = bytes.get(at) {
        word |= u64::from(*one) << (8 * at);
    }
    word
}

/// The bytes [`key_hash`] hashes for a limit named `name` and a key `value`: for tests of the
/// encoding (distinct pairs, distinct bytes).
#[doc(hidden)]
pub fn key_encoding(program: &Program, name: &str, value: &Value, period: Option<i64>) -> Vec<u8> {
    /// Keeps what it is fed, as `std::hash::Hasher` writes integers (native byte order).
    struct Bytes(Vec<u8>);
    impl std::hash::Hasher for Bytes {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.extend_from_slice(bytes);
        }
    }
    let mut bytes = Bytes(Vec::new());
    encode_key(program, name, value, period, &mut bytes);
    bytes.0
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

/// What the store keeps per key. Packed to 8-byte alignment: with its key, a map entry takes
/// 48 bytes (an enum of 128-bit times took 80), so that more of a large map stays in cache.
/// A rolling limit's key and a calendar period's key never hash alike, so a state is always
/// of its key's kind.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed(8))]
struct State {
    /// The theoretical arrival time (rolling), or the end of the period counted (calendar),
    /// in nanoseconds since the epoch: either way, the key may be forgotten once it is past.
    until: i128,
    /// Requests counted in the calendar period (0 for a rolling period).
    used: u64,
}

const _: () = assert!(std::mem::size_of::<(u128, State)>() == 48);

/// A calendar period's start as its key holds it: whole seconds since the epoch (periods are
/// at least a day apart).
fn start_secs(start: i128) -> i64 {
    i64::try_from(start.div_euclid(NANOS_PER_SEC)).unwrap_or(i64::MIN)
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
    fn consume(
        &self,
        program: &Program,
        checks: &[Check<'_>],
        now: i128,
    ) -> Result<Usages, Refusal>;
}

impl<S: Store + ?Sized> Store for Arc<S> {
    fn consume(
        &self,
        program: &Program,
        checks: &[Check<'_>],
        now: i128,
    ) -> Result<Usages, Refusal> {
        (**self).consume(program, checks, now)
    }
}

/// One map under one lock: checking every limit of a request and committing them is one step.
impl Store for LocalStore {
    fn consume(
        &self,
        program: &Program,
        checks: &[Check<'_>],
        now: i128,
    ) -> Result<Usages, Refusal> {
        let mut usages = Usages::new();
        let mut guard = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        let States {
            map: states,
            sweep_at,
        } = &mut *guard;
        // Expired keys count as absent keys do, so sweeping them first changes no answer.
        if states.len() >= (*sweep_at).max(SWEEP_AT) {
            states.retain(|_, state| {
                let until = state.until;
                until > now
            });
            *sweep_at = states.len().saturating_mul(2);
        }
        if let [check] = checks {
            // One limit, as most requests count against: one probe of the map.
            let Some(limit) = program.limits.get(check.limit) else {
                return Ok(usages);
            };
            let state = match states.entry(check.hash) {
                Entry::Occupied(mut entry) => {
                    let state = next_state(limit, check, Some(*entry.get()), now)
                        .map_err(|retry| reached(program, limit, check, retry))?;
                    *entry.get_mut() = state;
                    state
                }
                Entry::Vacant(entry) => *entry.insert(
                    next_state(limit, check, None, now)
                        .map_err(|retry| reached(program, limit, check, retry))?,
                ),
            };
            usages.push(settled(limit, check, state, now));
            return Ok(usages);
        }
        // Every limit is checked before any is stored: none is consumed if one refuses.
        let mut next: SmallVec<[State; 2]> = SmallVec::with_capacity(checks.len());
        for check in checks {
            let Some(limit) = program.limits.get(check.limit) else {
                continue;
            };
            let state = next_state(limit, check, states.get(&check.hash).copied(), now)
                .map_err(|retry| reached(program, limit, check, retry))?;
            next.push(state);
            usages.push(settled(limit, check, state, now));
        }
        for (check, state) in checks.iter().zip(next) {
            states.insert(check.hash, state);
        }
        Ok(usages)
    }
}

/// What a key holds once `check` counts one more request at `now`, from what it held
/// (`current`); or, when the limit refuses, the nanoseconds until a retry may succeed.
fn next_state(
    limit: &crate::program::Limit,
    check: &Check<'_>,
    current: Option<State>,
    now: i128,
) -> Result<State, i128> {
    match check.window {
        Window::Rolling { interval, .. } => {
            let tat = current.map_or(now, |state| state.until.max(now));
            let new_tat = tat + interval;
            let burst = burst(interval, limit.count);
            if new_tat - now > burst {
                return Err(new_tat - burst - now);
            }
            Ok(State {
                until: new_tat,
                used: 0,
            })
        }
        Window::Fixed { end, .. } => {
            // The count of the period that starts when this one does (the key holds the
            // start): this period's, or one an edited limit's period made before it ended.
            let used = match current {
                Some(state) if state.until > now => state.used,
                _ => 0,
            };
            if used >= limit.count.max(1) {
                return Err(end - now);
            }
            Ok(State {
                until: end,
                used: used + 1,
            })
        }
    }
}

/// How a limit stands once a request is counted and its key holds `state` (a state
/// [`next_state`] made for the check's own window).
fn settled(limit: &crate::program::Limit, check: &Check<'_>, state: State, now: i128) -> Usage {
    let (until, used) = (state.until, state.used);
    let standing = match check.window {
        Window::Rolling { period, interval } => match i64::try_from(until - now) {
            Ok(ahead) => Standing::Rolling { ahead },
            // Only a period of centuries is this far ahead.
            Err(_) => Standing::Known(rolling_figures(period, interval, limit.count, until - now)),
        },
        Window::Fixed { start, end } => {
            let left = i128::from(limit.count.saturating_sub(used));
            Standing::Known(figures(end - start, left, end - now))
        }
    };
    Usage {
        limit: check.limit,
        standing,
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
        checks: &[Check<'_>],
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
        checks: &[Check<'_>],
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
    fn consume(
        &self,
        program: &Program,
        checks: &[Check<'_>],
        now: i128,
    ) -> Result<Usages, Refusal> {
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

fn figures(window: i128, left: i128, reset: i128) -> Figures {
    Figures {
        window_secs: secs_up(window),
        remaining: u64::try_from(left.max(0)).unwrap_or(0),
        reset_secs: secs_up(reset),
    }
}

#[cold]
fn reached(
    program: &Program,
    limit: &crate::program::Limit,
    check: &Check<'_>,
    retry: i128,
) -> Refusal {
    let window = match check.window {
        Window::Rolling { period, .. } => period,
        Window::Fixed { start, end } => end - start,
    };
    let window_text = match limit.period {
        LimitPeriod::Rolling { millis, .. } => crate::syntax::fmt::duration_text(millis),
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
        Value::Entity(entity) => program.store.uid(entity).map(|uid| &*uid.ty),
        _ => None,
    }
}

/// The limits of `program` that apply to a request, each with its key and window.
pub type Checks<'v> = SmallVec<[Check<'v>; 2]>;

/// Counts an allowed request against every limit of `program` that applies to it: all of
/// them, or none when one refuses. A limit whose condition cannot be evaluated applies (it
/// fails closed); one whose key cannot be evaluated refuses.
pub fn consume(
    program: &Program,
    request: &Request,
    store: &impl Store,
) -> Result<Usages, Refusal> {
    let mut checks = Checks::new();
    gather(program, request, &mut checks)?;
    if checks.is_empty() {
        return Ok(Usages::new());
    }
    store.consume(program, &checks, request.now.as_nanosecond())
}

/// What an allowed request is counted against: every limit of `program` that applies to it,
/// with its key evaluated (a key that cannot be evaluated refuses the request). The checks
/// own their keys' values, so that they can be counted after the request is gone.
pub fn checks(program: &Program, request: &Request) -> Result<Checks<'static>, Refusal> {
    let mut checks = Checks::new();
    gather(program, request, &mut checks)?;
    Ok(checks.into_iter().map(Check::into_owned).collect())
}

/// [`checks`], written into `checks`.
fn gather<'r>(
    program: &Program,
    request: &'r Request,
    checks: &mut Checks<'r>,
) -> Result<(), Refusal> {
    if program.limits.is_empty() {
        return Ok(());
    }
    let resource_type = type_of(program, &request.resource).unwrap_or("");
    // The limits that count this action on this resource, and what the evaluator computes for
    // them: each one's key, unless it is the request's subject or resource (read from the
    // request, as most keys are), then its condition when it has one.
    let mut placed: SmallVec<[usize; 2]> = SmallVec::new();
    let mut nodes: SmallVec<[crate::program::NodeId; 2]> = SmallVec::new();
    for (index, limit) in program.limits.iter().enumerate() {
        if limit.counts(&request.action, resource_type) {
            placed.push(index);
            if eval::party(program, request, limit.key).is_none() {
                nodes.push(limit.key);
            }
            if let Some(condition) = limit.condition {
                nodes.push(condition);
            }
        }
    }
    if placed.is_empty() {
        return Ok(());
    }
    let mut sink = Gathered {
        program,
        request,
        placed: &placed,
        checks,
        refused: None,
    };
    if nodes.is_empty() {
        sink.extend(std::iter::empty());
    } else {
        eval::evaluate_all(program, request, &nodes, &mut sink);
    }
    sink.refused.map_or(Ok(()), Err)
}

/// Takes the values of the placed limits' keys and conditions as they are evaluated, and
/// makes each limit that applies a check in place (no list of values in between).
struct Gathered<'a, 'r> {
    program: &'a Program,
    request: &'r Request,
    placed: &'a [usize],
    checks: &'a mut Checks<'r>,
    /// The first applying limit whose key could not be evaluated (the request is refused).
    refused: Option<Refusal>,
}

impl Extend<Result<Value, eval::EvalError>> for Gathered<'_, '_> {
    fn extend<I: IntoIterator<Item = Result<Value, eval::EvalError>>>(&mut self, values: I) {
        let (program, request) = (self.program, self.request);
        let mut values = values.into_iter();
        while let Some((index, rest)) = self.placed.split_first() {
            self.placed = rest;
            let Some(limit) = program.limits.get(*index) else {
                continue;
            };
            let key = match eval::party(program, request, limit.key) {
                Some(value) => Ok(Cow::Borrowed(value)),
                None => match values.next() {
                    Some(key) => key.map(Cow::Owned),
                    None => return,
                },
            };
            let condition = match limit.condition {
                Some(_) => values.next(),
                None => None,
            };
            // A condition that cannot be evaluated applies the limit (it fails closed).
            if matches!(condition, Some(Ok(Value::Bool(false)))) {
                continue;
            }
            let pushed = match key {
                Ok(value) => push_check(program, limit, *index, value, request.now, self.checks),
                Err(error) => Err(Refusal::NoKey {
                    name: limit.name.clone(),
                    why: explain::error_message(program, &error),
                }),
            };
            if let Err(refusal) = pushed {
                self.refused = Some(refusal);
                self.placed = &[];
                return;
            }
        }
    }
}

/// Adds the check of `limit` (the `index`th) for a request made at `now` whose key is
/// `value`; a calendar period that cannot be computed refuses.
fn push_check<'v>(
    program: &Program,
    limit: &crate::program::Limit,
    index: usize,
    value: Cow<'v, Value>,
    now: Timestamp,
    checks: &mut Checks<'v>,
) -> Result<(), Refusal> {
    let window = match limit.period {
        LimitPeriod::Rolling { millis, interval } => Window::Rolling {
            period: i128::from(millis) * 1_000_000,
            interval,
        },
        LimitPeriod::Calendar(unit, zone) => {
            let window = program
                .zones
                .get(zone as usize)
                .and_then(|(_, zone)| calendar_window(now, unit, zone));
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
    let period = match window {
        Window::Rolling { .. } => None,
        Window::Fixed { start, .. } => Some(start_secs(start)),
    };
    checks.push(Check {
        hash: key_hash(program, &limit.name, &value, period),
        window,
        limit: index,
        value,
    });
    Ok(())
}
