//! Prometheus metrics, kept in atomics and written in the text exposition format by hand: a
//! handful of fixed series does not need a registry, and the hot path only bumps counters.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The decision API's endpoints, each with its own latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Evaluation = 0,
    Evaluations = 1,
    SearchSubject = 2,
    SearchResource = 3,
    SearchAction = 4,
    ForwardAuth = 5,
}

const ENDPOINTS: [&str; 6] = [
    "evaluation",
    "evaluations",
    "search_subject",
    "search_resource",
    "search_action",
    "forward_auth",
];

/// The statuses the decision API answers with; anything else is counted as `other`.
const CODES: [u16; 8] = [200, 400, 401, 403, 413, 429, 500, 503];

/// Upper bounds of the latency buckets, in seconds: decisions take microseconds, so the
/// buckets are fine at the bottom and coarse above a millisecond.
const BUCKETS: [f64; 14] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1, 0.5, 2.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket, not cumulative (made cumulative when written); the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        if let Some(bucket) = self.buckets.get(slot) {
            bucket.fetch_add(1, Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }
}

/// What a reload attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new version is serving.
    Success = 0,
    /// The change did not load; the old version keeps serving.
    Failure = 1,
    /// The directory loaded to the version already serving (e.g. a touched file).
    Unchanged = 2,
}

const OUTCOMES: [&str; 3] = ["success", "failure", "unchanged"];

/// Why the server closed a connection on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The client did not send a request head in time.
    HeaderTimeout = 0,
    /// The connection stayed idle between requests too long.
    IdleTimeout = 1,
    /// Closed to make room for a new connection (at `max_connections`, or out of files).
    Evicted = 2,
}

const CLOSED: [&str; 3] = ["header_timeout", "idle_timeout", "evicted"];

#[derive(Debug, Default)]
pub struct Metrics {
    /// `[allow, deny]`, counting every item of a batch.
    decisions: [AtomicU64; 2],
    requests: [[AtomicU64; CODES.len() + 1]; ENDPOINTS.len()],
    latency: [Histogram; ENDPOINTS.len()],
    reloads: [AtomicU64; OUTCOMES.len()],
    in_flight: AtomicI64,
    connections_open: AtomicI64,
    connections_accepted: AtomicU64,
    connections_refused: AtomicU64,
    connections_closed: [AtomicU64; CLOSED.len()],
    accept_errors: AtomicU64,
}

/// The facts about the serving program that the metrics show beside the counters.
pub struct ProgramFacts<'a> {
    pub version: Option<&'a str>,
    pub loaded_at_seconds: Option<f64>,
    pub reload_failing: bool,
    pub ready: bool,
}

impl Metrics {
    pub fn decision(&self, allowed: bool) {
        let index = usize::from(!allowed);
        if let Some(counter) = self.decisions.get(index) {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Records one answered call of `endpoint`.
    pub fn request(&self, endpoint: Endpoint, status: u16, elapsed: Duration) {
        let index = endpoint as usize;
        let code = CODES
            .iter()
            .position(|c| *c == status)
            .unwrap_or(CODES.len());
        if let Some(counter) = self.requests.get(index).and_then(|row| row.get(code)) {
            counter.fetch_add(1, Relaxed);
        }
        if status == 200
            && let Some(histogram) = self.latency.get(index)
        {
            histogram.observe(elapsed);
        }
    }

    pub(crate) fn in_flight_add(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Relaxed);
    }

    /// Decision API calls being answered now (body being read, or being decided).
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    pub(crate) fn connection_accepted(&self) {
        self.connections_accepted.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
    }

    pub(crate) fn connection_ended(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    /// Connections open now, on every listener.
    pub fn connections_open(&self) -> i64 {
        self.connections_open.load(Relaxed)
    }

    pub(crate) fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn connections_refused(&self) -> u64 {
        self.connections_refused.load(Relaxed)
    }

    pub(crate) fn connection_closed(&self, reason: Closed) {
        if let Some(counter) = self.connections_closed.get(reason as usize) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn connections_closed(&self, reason: Closed) -> u64 {
        self.connections_closed
            .get(reason as usize)
            .map_or(0, |c| c.load(Relaxed))
    }

    pub(crate) fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    pub fn reload(&self, outcome: ReloadOutcome) {
        if let Some(counter) = self.reloads.get(outcome as usize) {
            counter.fetch_add(1, Relaxed);
        }
    }

    pub fn reloads(&self, outcome: ReloadOutcome) -> u64 {
        self.reloads
            .get(outcome as usize)
            .map_or(0, |c| c.load(Relaxed))
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, facts: &ProgramFacts<'_>) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.write(&mut out, facts);
        out
    }

    fn write(&self, out: &mut String, facts: &ProgramFacts<'_>) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP warden_decisions_total Decisions made, by verdict (every item of a batch counts)."
        )?;
        writeln!(out, "# TYPE warden_decisions_total counter")?;
        for (index, verdict) in ["allow", "deny"].iter().enumerate() {
            let value = self.decisions.get(index).map_or(0, |c| c.load(Relaxed));
            writeln!(
                out,
                "warden_decisions_total{{decision=\"{verdict}\"}} {value}"
            )?;
        }

        writeln!(
            out,
            "# HELP warden_requests_total Decision API calls answered, by endpoint and status."
        )?;
        writeln!(out, "# TYPE warden_requests_total counter")?;
        for (endpoint, row) in ENDPOINTS.iter().zip(&self.requests) {
            for (index, counter) in row.iter().enumerate() {
                let value = counter.load(Relaxed);
                if value == 0 {
                    continue;
                }
                let code = CODES
                    .get(index)
                    .map_or_else(|| "other".to_string(), u16::to_string);
                writeln!(
                    out,
                    "warden_requests_total{{endpoint=\"{endpoint}\",code=\"{code}\"}} {value}"
                )?;
            }
        }

        writeln!(
            out,
            "# HELP warden_request_duration_seconds Time to answer a successful decision API call, from reading its body to the response."
        )?;
        writeln!(out, "# TYPE warden_request_duration_seconds histogram")?;
        for (endpoint, histogram) in ENDPOINTS.iter().zip(&self.latency) {
            let mut cumulative = 0u64;
            for (index, bucket) in histogram.buckets.iter().enumerate() {
                cumulative += bucket.load(Relaxed);
                let bound = BUCKETS
                    .get(index)
                    .map_or_else(|| "+Inf".to_string(), f64::to_string);
                writeln!(
                    out,
                    "warden_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{bound}\"}} {cumulative}"
                )?;
            }
            let sum = histogram.sum_nanos.load(Relaxed) as f64 / 1e9;
            writeln!(
                out,
                "warden_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}"
            )?;
            writeln!(
                out,
                "warden_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {}",
                histogram.count.load(Relaxed)
            )?;
        }

        writeln!(
            out,
            "# HELP warden_requests_in_flight Decision API calls being answered."
        )?;
        writeln!(out, "# TYPE warden_requests_in_flight gauge")?;
        writeln!(out, "warden_requests_in_flight {}", self.in_flight())?;

        self.write_connections(out)?;

        writeln!(
            out,
            "# HELP warden_reloads_total Policy reload attempts, by outcome."
        )?;
        writeln!(out, "# TYPE warden_reloads_total counter")?;
        for (outcome, counter) in OUTCOMES.iter().zip(&self.reloads) {
            writeln!(
                out,
                "warden_reloads_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP warden_reload_failures_total Policy changes that did not load (the previous version kept serving)."
        )?;
        writeln!(out, "# TYPE warden_reload_failures_total counter")?;
        writeln!(
            out,
            "warden_reload_failures_total {}",
            self.reloads(ReloadOutcome::Failure)
        )?;
        writeln!(
            out,
            "# HELP warden_reload_failing 1 while the latest change of the policy directory does not load."
        )?;
        writeln!(out, "# TYPE warden_reload_failing gauge")?;
        writeln!(
            out,
            "warden_reload_failing {}",
            u8::from(facts.reload_failing)
        )?;

        writeln!(
            out,
            "# HELP warden_policy_info The policy version serving decisions."
        )?;
        writeln!(out, "# TYPE warden_policy_info gauge")?;
        if let Some(version) = facts.version {
            writeln!(out, "warden_policy_info{{version=\"{version}\"}} 1")?;
        }
        writeln!(
            out,
            "# HELP warden_policy_loaded_timestamp_seconds When the serving policy version was loaded (Unix time)."
        )?;
        writeln!(out, "# TYPE warden_policy_loaded_timestamp_seconds gauge")?;
        if let Some(seconds) = facts.loaded_at_seconds {
            writeln!(out, "warden_policy_loaded_timestamp_seconds {seconds}")?;
        }
        writeln!(
            out,
            "# HELP warden_ready 1 when a policy is loaded and the server is not shutting down."
        )?;
        writeln!(out, "# TYPE warden_ready gauge")?;
        writeln!(out, "warden_ready {}", u8::from(facts.ready))?;
        Ok(())
    }

    fn write_connections(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP warden_connections_open Connections open now, on every listener."
        )?;
        writeln!(out, "# TYPE warden_connections_open gauge")?;
        writeln!(out, "warden_connections_open {}", self.connections_open())?;
        writeln!(
            out,
            "# HELP warden_connections_accepted_total Connections accepted (refused ones included)."
        )?;
        writeln!(out, "# TYPE warden_connections_accepted_total counter")?;
        writeln!(
            out,
            "warden_connections_accepted_total {}",
            self.connections_accepted.load(Relaxed)
        )?;
        writeln!(
            out,
            "# HELP warden_connections_refused_total Connections closed at once: the limit was reached and every open connection was being answered."
        )?;
        writeln!(out, "# TYPE warden_connections_refused_total counter")?;
        writeln!(
            out,
            "warden_connections_refused_total {}",
            self.connections_refused()
        )?;
        writeln!(
            out,
            "# HELP warden_connections_closed_total Connections the server closed on its own, by reason."
        )?;
        writeln!(out, "# TYPE warden_connections_closed_total counter")?;
        for (reason, counter) in CLOSED.iter().zip(&self.connections_closed) {
            writeln!(
                out,
                "warden_connections_closed_total{{reason=\"{reason}\"}} {}",
                counter.load(Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP warden_accept_errors_total Failures to accept a connection (out of file descriptors, say), each followed by a pause."
        )?;
        writeln!(out, "# TYPE warden_accept_errors_total counter")?;
        writeln!(
            out,
            "warden_accept_errors_total {}",
            self.accept_errors.load(Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_counters_show() {
        let metrics = Metrics::default();
        metrics.request(Endpoint::Evaluation, 200, Duration::from_micros(20));
        metrics.request(Endpoint::Evaluation, 200, Duration::from_millis(3));
        metrics.request(Endpoint::Evaluation, 400, Duration::from_millis(3));
        metrics.decision(true);
        metrics.decision(false);
        metrics.decision(false);
        metrics.reload(ReloadOutcome::Failure);
        let text = metrics.render(&ProgramFacts {
            version: Some("abc"),
            loaded_at_seconds: Some(1.5),
            reload_failing: true,
            ready: true,
        });
        assert!(text.contains("warden_decisions_total{decision=\"deny\"} 2"));
        assert!(text.contains(
            "warden_request_duration_seconds_bucket{endpoint=\"evaluation\",le=\"0.000025\"} 1"
        ));
        assert!(text.contains(
            "warden_request_duration_seconds_bucket{endpoint=\"evaluation\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains("warden_requests_total{endpoint=\"evaluation\",code=\"400\"} 1"));
        assert!(text.contains("warden_reload_failures_total 1"));
        assert!(text.contains("warden_policy_info{version=\"abc\"} 1"));
        assert!(text.contains("warden_reload_failing 1"));
    }
}
