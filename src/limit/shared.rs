//! The limit store a fleet shares: Redis, counted by one Lua script per decision.
//!
//! The script checks every limit that applies to a request and, only when none refuses,
//! stores them all (GCRA for a rolling period, a counter per calendar window): Redis runs a
//! script atomically, so replicas counting the same key at once never overshoot. Times are
//! microseconds since the epoch (Lua's numbers are doubles, exact to 2^53), read from the
//! replica's clock, so replicas must keep their clocks in step (NTP).
//!
//! The server's doors await the script call in the request's own task, at most
//! `rate_limit_redis_timeout_ms`; then it fails open (counted in this process instead) or
//! closed (refused), as configured. Every call goes over one multiplexed connection, so calls
//! in flight at once share it as a pipeline (their scripts leave in one write, their answers
//! come back in one read), and no thread waits on a round trip. Synchronous callers (the CLI,
//! benches) wait on a runtime of the store's own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Check, Refusal, State, Usages, Window, reached, settled};
use crate::program::Program;

/// What a decision does when Redis does not answer in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Counted in this process instead: each replica enforces the limit on its own share.
    #[default]
    Open,
    /// Refused: nothing passes a limit that cannot be checked.
    Closed,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Open => "open",
            OnFailure::Closed => "closed",
        }
    }
}

/// The `rate_limit_redis*` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`, `unix://`).
    pub url: String,
    /// The longest a decision waits for Redis.
    pub timeout: Duration,
    pub on_failure: OnFailure,
}

impl RedisConfig {
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
}

/// Why Redis did not count a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RedisFailure {
    #[error("no answer from Redis within {0} ms")]
    Timeout(u128),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the Redis client's runtime could not start: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the Redis client's thread stopped")]
    Stopped,
    #[error("the limit script answered `{0:?}`")]
    Reply(Vec<i64>),
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("`{url}` is not a Redis URL: {source}")]
    Url {
        url: String,
        source: redis::RedisError,
    },
}

/// Checks every limit of a request (KEYS, one each) and stores them all when none refuses.
/// ARGV[1] is now; then four per key: kind (0 rolling, 1 calendar), the period (rolling) or
/// the window's start and end (calendar), and the count. Answers `{1, state...}` (the new
/// theoretical arrival time, or the window's count) or `{0, index, retry}` (all in µs).
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local states = {}
for i = 1, #KEYS do
  local at = 2 + (i - 1) * 4
  local kind = tonumber(ARGV[at])
  local a = tonumber(ARGV[at + 1])
  local b = tonumber(ARGV[at + 2])
  local count = tonumber(ARGV[at + 3])
  if kind == 0 then
    local tat = tonumber(redis.call('GET', KEYS[i])) or now
    if tat < now then tat = now end
    local interval = math.floor(a / count)
    local new_tat = tat + interval
    if new_tat - now > interval * count then return {0, i, new_tat - interval * count - now} end
    states[i] = new_tat
  else
    local used = tonumber(redis.call('GET', KEYS[i])) or 0
    if used >= count then return {0, i, b - now} end
    states[i] = used + 1
  end
end
-- Each key is kept a second past its time: one that outlives it changes nothing (an arrival
-- time past is taken as now), and one that expired early would forget requests.
local reply = {1}
for i = 1, #KEYS do
  local at = 2 + (i - 1) * 4
  local ttl
  if tonumber(ARGV[at]) == 0 then
    ttl = math.floor((states[i] - now) / 1000) + 1000
  else
    ttl = math.floor((tonumber(ARGV[at + 2]) - now) / 1000) + 1000
  end
  redis.call('SET', KEYS[i], string.format('%d', states[i]), 'PX', ttl)
  reply[i + 1] = states[i]
end
return reply
";

#[derive(Debug, Default)]
struct Stats {
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    fallbacks: AtomicU64,
    denied: AtomicU64,
    /// The last call was answered.
    up: AtomicBool,
    last_error: Mutex<Option<(Timestamp, String)>>,
}

/// Limits counted in Redis.
#[derive(Debug)]
pub struct RedisStore {
    shown: String,
    timeout: Duration,
    on_failure: OnFailure,
    client: redis::Client,
    script: redis::Script,
    /// Made on the first call, on the runtime that makes it (the server's): its connection's
    /// tasks then run on that runtime's workers, beside the requests that use it.
    connection: OnceLock<redis::aio::ConnectionManager>,
    /// For synchronous callers only: started on the first such call.
    blocking: OnceLock<tokio::runtime::Runtime>,
    stats: Stats,
}

/// The key prefix of every limit in Redis.
pub(crate) const KEY_PREFIX: &str = "warden:limit:";

impl RedisStore {
    /// A store for `config`: connects on the first request (and again after a failure), so a
    /// Redis that is down at start-up is picked up when it comes.
    pub fn connect(config: &RedisConfig) -> Result<RedisStore, RedisSetupError> {
        let client =
            redis::Client::open(config.url.as_str()).map_err(|source| RedisSetupError::Url {
                url: crate::redis_client::masked(&config.url),
                source,
            })?;
        Ok(RedisStore {
            shown: crate::redis_client::masked(&config.url),
            timeout: config.timeout,
            on_failure: config.on_failure,
            client,
            script: redis::Script::new(SCRIPT),
            connection: OnceLock::new(),
            blocking: OnceLock::new(),
            stats: Stats::default(),
        })
    }

    pub fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    /// Counts a request against `checks` in one script call. The outer error is Redis
    /// failing (the caller then falls back or refuses); the inner one a limit refusing.
    pub(super) async fn consume(
        &self,
        program: &Program,
        checks: &[Check<'_>],
        now: i128,
    ) -> Result<Result<Usages, Refusal>, RedisFailure> {
        let now_us = micros(now);
        let counted: Vec<(&Check<'_>, &crate::program::Limit)> = checks
            .iter()
            .filter_map(|check| Some((check, program.limits.get(check.limit)?)))
            .collect();
        let mut keys = Vec::with_capacity(counted.len());
        let mut args = Vec::with_capacity(1 + 4 * counted.len());
        args.push(now_us);
        for (check, limit) in &counted {
            let mut prefix = String::with_capacity(KEY_PREFIX.len() + limit.name.len() + 1);
            prefix.push_str(KEY_PREFIX);
            prefix.push_str(&limit.name);
            prefix.push(':');
            let base = check.key_text(program, &prefix);
            let count = i64::try_from(limit.count.max(1)).unwrap_or(i64::MAX);
            match check.window {
                Window::Rolling { period, .. } => {
                    keys.push(base);
                    args.extend([0, micros(period), 0, count]);
                }
                Window::Fixed { start, end } => {
                    keys.push(format!("{base}:{}", micros(start)));
                    args.extend([1, micros(start), micros(end), count]);
                }
            }
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let reply = self
            .call(&keys, &args)
            .await
            .inspect_err(|failure| self.record(failure))?;
        self.stats.up.store(true, Ordering::Relaxed);
        match reply.as_slice() {
            [1, states @ ..] if states.len() == counted.len() => Ok(Ok(counted
                .iter()
                .zip(states)
                .map(|((check, limit), state)| {
                    let state = match check.window {
                        Window::Rolling { .. } => State {
                            until: i128::from(*state) * 1000,
                            used: 0,
                        },
                        Window::Fixed { end, .. } => State {
                            until: end,
                            used: u64::try_from(*state).unwrap_or(0),
                        },
                    };
                    settled(limit, check, state, now)
                })
                .collect())),
            [0, index, retry] => {
                let at = usize::try_from(*index).unwrap_or(0).wrapping_sub(1);
                match counted.get(at) {
                    Some((check, limit)) => Ok(Err(reached(
                        program,
                        limit,
                        check,
                        i128::from(*retry) * 1000,
                    ))),
                    None => Err(self.unexpected(reply.clone())),
                }
            }
            _ => Err(self.unexpected(reply.clone())),
        }
    }

    /// [`RedisStore::consume`] for a synchronous caller: its thread waits, off the async
    /// workers when it runs on one, while the store's own runtime drives the call.
    pub(super) fn consume_blocking(
        &self,
        program: &Program,
        checks: &[Check<'_>],
        now: i128,
    ) -> Result<Result<Usages, Refusal>, RedisFailure> {
        let runtime = match self.blocking.get() {
            Some(runtime) => runtime,
            None => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("warden-limits-redis")
                    .enable_all()
                    .build()
                    .map_err(RedisFailure::Runtime)?;
                // Another caller may have set one meanwhile: then this one is dropped unused.
                let _ = self.blocking.set(runtime);
                self.blocking.get().ok_or(RedisFailure::Stopped)?
            }
        };
        let call = self.consume(program, checks, now);
        if tokio::runtime::Handle::try_current().is_ok() {
            // A runtime cannot be blocked on from inside another: wait on a thread of its own.
            std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(call))
                    .join()
                    .unwrap_or(Err(RedisFailure::Stopped))
            })
        } else {
            runtime.block_on(call)
        }
    }

    /// The connection every call shares, made in the calling runtime on the first call.
    fn connection(&self) -> Result<redis::aio::ConnectionManager, RedisFailure> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        // No response timeout of its own: `call` cuts a late answer, and says so.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None)
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let made = redis::aio::ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(RedisFailure::Redis)?;
        // Calls that raced to make one use the first.
        Ok(self.connection.get_or_init(|| made).clone())
    }

    /// One script call, waited for at most the configured timeout.
    async fn call(&self, keys: &[String], args: &[i64]) -> Result<Vec<i64>, RedisFailure> {
        let mut connection = self.connection()?;
        let mut invocation = self.script.prepare_invoke();
        for key in keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let call = invocation.invoke_async::<Vec<i64>>(&mut connection);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answered) => Ok(answered?),
            Err(_) => Err(RedisFailure::Timeout(self.timeout.as_millis())),
        }
    }

    fn unexpected(&self, reply: Vec<i64>) -> RedisFailure {
        let failure = RedisFailure::Reply(reply);
        self.record(&failure);
        failure
    }

    /// Counts a failure and logs the first of a run of them.
    fn record(&self, failure: &RedisFailure) {
        let stats = &self.stats;
        match failure {
            RedisFailure::Timeout(_) => stats.timeouts.fetch_add(1, Ordering::Relaxed),
            _ => stats.errors.fetch_add(1, Ordering::Relaxed),
        };
        match self.on_failure {
            OnFailure::Open => stats.fallbacks.fetch_add(1, Ordering::Relaxed),
            OnFailure::Closed => stats.denied.fetch_add(1, Ordering::Relaxed),
        };
        let message = failure.to_string();
        let was_up = stats.up.swap(false, Ordering::Relaxed);
        let mut last = stats
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if was_up || last.is_none() {
            tracing::warn!(
                error = %message,
                on_failure = self.on_failure.as_str(),
                "rate limits: Redis failed"
            );
        }
        *last = Some((Timestamp::now(), message));
    }

    /// For `/v1/status`: where, how it fails, and how it has done.
    pub fn status(&self) -> serde_json::Value {
        let stats = &self.stats;
        let last = stats
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        serde_json::json!({
            "store": "redis",
            "url": self.shown,
            "timeout_ms": u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            "on_failure": self.on_failure.as_str(),
            "up": stats.up.load(Ordering::Relaxed),
            "calls": stats.calls.load(Ordering::Relaxed),
            "errors": stats.errors.load(Ordering::Relaxed),
            "timeouts": stats.timeouts.load(Ordering::Relaxed),
            "fallbacks": stats.fallbacks.load(Ordering::Relaxed),
            "denied": stats.denied.load(Ordering::Relaxed),
            "last_error": last.map(|(at, message)| serde_json::json!({
                "at": at.to_string(),
                "message": message,
            })),
        })
    }

    /// The counters in Prometheus' text format.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let stats = &self.stats;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP warden_rate_limit_redis_calls_total Decisions counted by the Redis limit script.\n\
             # TYPE warden_rate_limit_redis_calls_total counter\n\
             warden_rate_limit_redis_calls_total {}\n\
             # HELP warden_rate_limit_redis_failures_total Script calls that failed, by reason.\n\
             # TYPE warden_rate_limit_redis_failures_total counter\n\
             warden_rate_limit_redis_failures_total{{reason=\"error\"}} {}\n\
             warden_rate_limit_redis_failures_total{{reason=\"timeout\"}} {}\n\
             # HELP warden_rate_limit_redis_failed_decisions_total Decisions made without Redis: counted locally (open) or denied (closed).\n\
             # TYPE warden_rate_limit_redis_failed_decisions_total counter\n\
             warden_rate_limit_redis_failed_decisions_total{{outcome=\"local\"}} {}\n\
             warden_rate_limit_redis_failed_decisions_total{{outcome=\"denied\"}} {}\n\
             # HELP warden_rate_limit_redis_up Whether the last call to Redis was answered.\n\
             # TYPE warden_rate_limit_redis_up gauge\n\
             warden_rate_limit_redis_up {}\n",
            load(&stats.calls),
            load(&stats.errors),
            load(&stats.timeouts),
            load(&stats.fallbacks),
            load(&stats.denied),
            u8::from(stats.up.load(Ordering::Relaxed)),
        );
    }
}

impl Drop for RedisStore {
    fn drop(&mut self) {
        // A runtime dropped on an async worker would stop the server there; this one's
        // threads may simply go.
        if let Some(runtime) = self.blocking.take() {
            runtime.shutdown_background();
        }
    }
}

fn micros(nanos: i128) -> i64 {
    i64::try_from(nanos.div_euclid(1000)).unwrap_or(i64::MAX)
}
