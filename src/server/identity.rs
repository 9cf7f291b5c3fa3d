//! The identity of a decision API call: the subject token a caller sends, verified with the
//! gateway's live keys, and the watcher that reloads those keys.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::gateway::{SUBJECT_TOKEN, SubjectIdentity};
use crate::server::{ApiError, AppState};

/// The verified identity an AuthZEN call carries, when `authzen_subject_token` is on and the
/// call sends `Warden-Subject-Token`; an invalid token is an error (401).
pub(crate) fn authzen_identity(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<SubjectIdentity>, ApiError> {
    if !state.settings.gateway.authzen_subject_token {
        return Ok(None);
    }
    subject_token_identity(state, headers)
}

/// The verified identity of `Warden-Subject-Token`, whenever the call sends one (minting a
/// capability needs it whatever `authzen_subject_token` says); an invalid token is an error.
pub(crate) fn subject_token_identity(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<SubjectIdentity>, ApiError> {
    let config = &state.settings.gateway;
    let Some(token) = headers.get(SUBJECT_TOKEN) else {
        return Ok(None);
    };
    let invalid = |reason: String| {
        tracing::info!(reason, "AuthZEN: invalid Warden-Subject-Token");
        ApiError::InvalidSubjectToken(reason)
    };
    let verifier = state.gateway.verifier.load();
    let Some(verifier) = verifier.as_ref() else {
        return Err(invalid("no JWT keys are configured".to_string()));
    };
    let token = token
        .to_str()
        .map_err(|_| invalid("not text".to_string()))?;
    let identity = verifier
        .verify(token.trim())
        .map_err(|e| invalid(e.to_string()))?;
    Ok(Some((identity, Arc::from(config.subject_type.as_str()))))
}

/// Polls the key files and rebuilds the verifier when one changes. A key file that was
/// deleted takes its keys with it (as does a JWKS entry removed from a file that loads); a
/// change that does not load (unreadable, corrupt, a secret too short) leaves the previous
/// keys in force (logged), as a broken policy change does.
pub(crate) async fn watch_keys(state: Arc<AppState>, interval: Duration) {
    let config = state.settings.gateway.clone();
    let files = config.key_files();
    if files.is_empty() {
        return;
    }
    let stamp = |files: &[PathBuf]| -> Vec<Option<(SystemTime, u64)>> {
        files
            .iter()
            .map(|f| {
                std::fs::metadata(f)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    };
    let mut last = stamp(&files);
    loop {
        tokio::time::sleep(interval).await;
        let now = stamp(&files);
        if now == last {
            continue;
        }
        last = now;
        match config.reloaded_verifier() {
            Ok(verifier) => {
                state.gateway.verifier.store(verifier.map(Arc::new));
                tracing::info!("JWT keys reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "JWT keys do not load; the previous keys stay in force");
            }
        }
    }
}
