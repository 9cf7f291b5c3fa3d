//! The errors the HTTP API answers with. Each becomes a status and a plain-text message that
//! names the caller's problem; internal failures say only that something failed (the details
//! go to the log), so no response ever leaks paths, types or stack traces.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Not a well-formed request: 400, with what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The decision API is protected and no valid key came with the request.
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    /// `Warden-Subject-Token` did not verify (`authzen_subject_token`).
    #[error("invalid Warden-Subject-Token: {0}")]
    InvalidSubjectToken(String),
    /// The policy refused what the caller asked for (minting a capability it does not hold).
    #[error("{0}")]
    Forbidden(String),
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// Not answered within `request_timeout_ms` of its arrival (a body sent too slowly).
    #[error("the request was not complete within the limit of {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// No policy has loaded (yet): a documented deviation from AuthZEN, never a deny.
    #[error("no policy is loaded")]
    NoProgram,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Something failed inside the server; the cause has been logged.
    #[error("internal error")]
    Internal,
}

impl From<crate::eval::request::Malformed> for ApiError {
    /// A body that is not a request: 400, saying what is wrong with it.
    fn from(malformed: crate::eval::request::Malformed) -> ApiError {
        ApiError::BadRequest(malformed.to_string())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidSubjectToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NoProgram | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            self.to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::InvalidSubjectToken(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"warden\", error=\"invalid_token\""),
                );
            }
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"warden\""),
                );
            }
            ApiError::NoProgram | ApiError::ShuttingDown => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
