//! Revocations shared by a fleet through Redis (`revocations_redis`).
//!
//! A revocation is stored in the hash `warden:revocations` (token id → RFC 3339 time of the
//! first revocation, `HSETNX`) and published on the channel `warden:revocations` (the same
//! JSON line as the revocation file holds), in one `MULTI`. Every replica subscribes; it reads
//! the whole hash when it (re)subscribes and every [`RESYNC_INTERVAL`], so one that started
//! later or missed a message while disconnected still learns every id.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::revocation::{RevocationError, Revocations};

/// The hash of revoked ids and the channel revocations are published on.
pub const KEY: &str = "warden:revocations";
pub(crate) const CHANNEL: &str = "warden:revocations";

/// How often a subscribed replica reads the whole hash again (for messages it missed).
pub(crate) const RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// How long a connection attempt or a command may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The Redis that revocations are shared through.
#[derive(Debug, Clone)]
pub(crate) struct SharedRevocations {
    client: redis::Client,
    shown: String,
}

impl SharedRevocations {
    /// Checks the URL; connects only when used.
    pub fn new(url: &str) -> Result<SharedRevocations, RevocationError> {
        let shown = crate::redis_client::masked(url);
        let client = redis::Client::open(url).map_err(|source| RevocationError::Redis {
            url: shown.clone(),
            source,
        })?;
        Ok(SharedRevocations { client, shown })
    }

    fn error(&self, source: redis::RedisError) -> RevocationError {
        RevocationError::Redis {
            url: self.shown.clone(),
            source,
        }
    }

    fn connection(&self) -> Result<redis::Connection, RevocationError> {
        let connection = self
            .client
            .get_connection_with_timeout(TIMEOUT)
            .map_err(|e| self.error(e))?;
        connection
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| connection.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| self.error(e))?;
        Ok(connection)
    }

    /// Stores `id` (keeping the first time it was revoked) and publishes it.
    pub fn publish(&self, id: &str, at: Timestamp) -> Result<(), RevocationError> {
        crate::redis_client::blocking(|| self.store(id, at))
    }

    fn store(&self, id: &str, at: Timestamp) -> Result<(), RevocationError> {
        let mut connection = self.connection()?;
        let line = serde_json::json!({ "id": id, "revoked_at": at.to_string() }).to_string();
        redis::pipe()
            .atomic()
            .hset_nx(KEY, id, at.to_string())
            .ignore()
            .publish(CHANNEL, line)
            .ignore()
            .query::<()>(&mut connection)
            .map_err(|e| self.error(e))
    }

    /// Every id stored, with its time; entries that do not parse are skipped.
    pub fn load(&self) -> Result<Vec<(String, Timestamp)>, RevocationError> {
        let mut connection = self.connection()?;
        let all: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(KEY)
            .query(&mut connection)
            .map_err(|e| self.error(e))?;
        Ok(all
            .into_iter()
            .filter_map(|(id, at)| Some((id, at.parse().ok()?)))
            .collect())
    }

    /// Subscribes and resyncs until `stop` says so; reconnects after failures (logged once
    /// per run of them). `tick` bounds how long a stop waits.
    pub(super) fn follow(
        &self,
        revocations: &std::sync::Weak<Revocations>,
        stop: &std::sync::atomic::AtomicBool,
        tick: Duration,
    ) {
        use std::sync::atomic::Ordering;
        let mut last_error: Option<String> = None;
        let mut report = |error: Option<RevocationError>| match error {
            Some(error) => {
                let message = error.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::warn!(error = %message, "shared revocations: keeping the ids already read");
                }
                last_error = Some(message);
            }
            None => {
                if last_error.take().is_some() {
                    tracing::info!("shared revocations: Redis reached again");
                }
            }
        };
        while !stop.load(Ordering::Acquire) {
            let outcome = self.subscribed(revocations, stop, tick, &mut report);
            report(outcome.err());
            if stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::park_timeout(tick);
        }
    }

    /// One subscription: until it fails, or `stop`.
    fn subscribed(
        &self,
        revocations: &std::sync::Weak<Revocations>,
        stop: &std::sync::atomic::AtomicBool,
        tick: Duration,
        report: &mut impl FnMut(Option<RevocationError>),
    ) -> Result<(), RevocationError> {
        use std::sync::atomic::Ordering;
        let mut connection = self.connection()?;
        connection
            .set_read_timeout(Some(tick))
            .map_err(|e| self.error(e))?;
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe(CHANNEL).map_err(|e| self.error(e))?;
        // Subscribed first, then read: an id revoked in between arrives either way.
        let mut synced = Instant::now();
        self.resync(revocations)?;
        report(None);
        loop {
            if stop.load(Ordering::Acquire) {
                return Ok(());
            }
            if synced.elapsed() >= RESYNC_INTERVAL {
                synced = Instant::now();
                self.resync(revocations)?;
            }
            match pubsub.get_message() {
                Ok(message) => {
                    let Some(revocations) = revocations.upgrade() else {
                        return Ok(());
                    };
                    let payload: String = message.get_payload().unwrap_or_default();
                    match serde_json::from_str::<serde_json::Value>(&payload) {
                        Ok(entry) => {
                            let id = entry["id"].as_str().unwrap_or_default();
                            let at = entry["revoked_at"]
                                .as_str()
                                .and_then(|at| at.parse().ok())
                                .unwrap_or_else(Timestamp::now);
                            revocations.hold(id, at);
                        }
                        Err(_) => tracing::warn!(
                            payload,
                            "shared revocations: a message that is not a revocation"
                        ),
                    }
                }
                Err(error) if error.is_timeout() => {}
                Err(error) => return Err(self.error(error)),
            }
        }
    }

    fn resync(&self, revocations: &std::sync::Weak<Revocations>) -> Result<(), RevocationError> {
        let all = self.load()?;
        if let Some(revocations) = revocations.upgrade() {
            for (id, at) in all {
                revocations.hold(&id, at);
            }
        }
        Ok(())
    }
}
