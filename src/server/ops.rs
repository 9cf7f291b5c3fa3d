//! Operations endpoints: liveness, readiness, status and metrics. They are served beside the
//! decision API, or on their own listener when `admin_listen` is set (keep that one off public
//! addresses: it asks for no key).
//!
//! `/v1/status` and `/metrics` describe the server: the absolute policy path, the file names,
//! the last reload error with its source lines. Beside the decision API they are behind its API
//! key (`api_key_sha256`), like the decision API itself. `/healthz` and `/readyz` stay open
//! everywhere: they say only `ok`, `ready` or why not, and the probes that call them (kubelet,
//! load balancers) rarely carry a key.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::server::AppState;
use crate::server::authzen::protect;
use crate::server::metrics::{ProgramFacts, ReloadOutcome};

/// Every operations endpoint, open: for the separate `admin_listen` listener.
pub fn routes() -> Router<Arc<AppState>> {
    probes().merge(details())
}

/// Every operations endpoint, for the decision API's listener: status and metrics need the
/// API key when one is configured.
pub(crate) fn guarded_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    probes().merge(protect(details(), state))
}

/// Liveness and readiness: open wherever they are served.
fn probes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Status and metrics: what the server serves, from where, and what went wrong.
fn details() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/status", get(status))
        .route("/metrics", get(metrics))
}

/// Alive: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: a policy is loaded and the server is not shutting down.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.ready() {
        "ready\n".into_response()
    } else if state.shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no policy loaded\n").into_response()
    }
}

async fn status(State(state): State<Arc<AppState>>) -> Response {
    let body = {
        let status = state.status();
        json!({
            "ready": state.ready(),
            "policies": state.settings.policies.display().to_string(),
            "version": status.version.as_deref(),
            "loaded_at": status.loaded_at.map(|t| t.to_string()),
            "files": status.files,
            "warnings": status.warnings,
            "watching": state.watching.load(Ordering::Relaxed),
            "reloads": {
                "success": state.metrics.reloads(ReloadOutcome::Success),
                "failure": state.metrics.reloads(ReloadOutcome::Failure),
                "unchanged": state.metrics.reloads(ReloadOutcome::Unchanged),
            },
            "last_reload_error": status.last_error.as_ref().map(|e| json!({
                "at": e.at.to_string(),
                "errors": e.errors,
            })),
            "audit": state.audit.as_ref().map(crate::audit::AuditLog::status),
            "bundle": state.bundle.as_ref().map(|b| b.status()),
            "rate_limits": state.limits.status(),
        })
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = {
        let status = state.status();
        state.metrics.render(&ProgramFacts {
            version: status.version.as_deref(),
            loaded_at_seconds: status.loaded_at.map(|t| t.as_millisecond() as f64 / 1000.0),
            reload_failing: status.last_error.is_some(),
            ready: state.ready(),
        })
    };
    if let Some(audit) = &state.audit {
        audit.render_metrics(&mut text);
    }
    if let Some(bundle) = &state.bundle {
        bundle.render_metrics(&mut text);
    }
    state.limits.render_metrics(&mut text);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
