//! The request body extractors of the decision API. axum's `Json` answers 415 or 422 for some
//! malformed requests; AuthZEN allows only 400, so these read the body themselves: every
//! problem is a 400 with a plain message, and a body over the configured limit is a 413.
//! [`AuthzenBody`] keeps the bytes (the evaluation endpoints decode them without a JSON tree);
//! [`AuthzenJson`] parses them into one (search).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Request};
use axum::http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value as JsonValue;

use crate::server::AppState;
use crate::server::error::ApiError;

/// A decision API body: a JSON object, and when its reading started (latency counts from the
/// first byte the handler sees, so slow parsing shows in the histogram).
pub struct AuthzenJson {
    pub body: serde_json::Map<String, JsonValue>,
    pub started: Instant,
    /// Counts the call in `warden_requests_in_flight` until it is answered.
    _in_flight: InFlight,
}

/// One call being answered: counted while it lives.
pub(crate) struct InFlight(Arc<AppState>);

impl InFlight {
    pub fn new(state: &Arc<AppState>) -> InFlight {
        state.metrics.in_flight_add(1);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight_add(-1);
    }
}

/// A decision API body as it came: its bytes (checked to be text), not yet parsed, so the
/// evaluation endpoints can decode it without building a JSON tree, and the audit log can
/// record the request as the caller sent it.
pub(crate) struct AuthzenBody {
    pub bytes: axum::body::Bytes,
    pub started: Instant,
    _in_flight: InFlight,
}

impl AuthzenBody {
    /// A body read elsewhere (tests and fuzzing answer calls without HTTP).
    pub fn new(bytes: axum::body::Bytes, state: &Arc<AppState>) -> AuthzenBody {
        AuthzenBody {
            bytes,
            started: Instant::now(),
            _in_flight: InFlight::new(state),
        }
    }
}

fn parse_object(bytes: &[u8]) -> Result<serde_json::Map<String, JsonValue>, ApiError> {
    match crate::eval::strict::parse(bytes) {
        Ok(JsonValue::Object(body)) => Ok(body),
        Ok(_) => Err(ApiError::bad_request("the request must be a JSON object")),
        Err(error) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {error}"
        ))),
    }
}

impl FromRequest<Arc<AppState>> for AuthzenBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let started = Instant::now();
        let in_flight = InFlight::new(state);
        let bytes = read(request, state).await?;
        Ok(AuthzenBody {
            bytes,
            started,
            _in_flight: in_flight,
        })
    }
}

impl FromRequest<Arc<AppState>> for AuthzenJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let started = Instant::now();
        let in_flight = InFlight::new(state);
        let bytes = read(request, state).await?;
        Ok(AuthzenJson {
            body: parse_object(&bytes)?,
            started,
            _in_flight: in_flight,
        })
    }
}

/// Checks the content type and the length, and reads the body: every problem a 400 with a
/// plain message, a body over the limit a 413.
async fn read(request: Request, state: &Arc<AppState>) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.settings.body_limit;
    let headers = request.headers();
    match headers.get(header::CONTENT_TYPE) {
        None => {
            return Err(ApiError::bad_request(
                "missing `Content-Type`: send `Content-Type: application/json`",
            ));
        }
        Some(value) if !is_json(value.to_str().unwrap_or("")) => {
            return Err(ApiError::bad_request(
                "the content type must be `application/json`",
            ));
        }
        Some(_) => {}
    }
    // Refuse a declared oversize body before reading any of it.
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length > limit as u64
    {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let bytes = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        Err(_) => {
            return Err(ApiError::bad_request("the request body could not be read"));
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    Ok(bytes)
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/authzen+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json(""));
    }
}
