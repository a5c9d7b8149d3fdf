//! RFC 9457 problem details: the one error shape every service answers with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field: a JSON pointer-ish path (`items[0].quantity`) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field, as a dotted path into the request body or the query.
    #[schema(example = "email")]
    pub field: String,
    /// Machine-readable reason, stable across releases.
    #[schema(example = "invalid_format")]
    pub code: String,
    /// Human-readable explanation.
    #[schema(example = "must be an e-mail address")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// A problem details object (RFC 9457), answered with `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:shop:problem:validation",
    "title": "Your request parameters didn't validate.",
    "status": 422,
    "detail": "1 field is invalid",
    "errors": [{"field": "email", "code": "invalid_format", "message": "must be an e-mail address"}]
}))]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Field-level errors for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The W3C trace id of the request, to find it in logs and traces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Seconds to wait before retrying (also sent as the `Retry-After` header).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem whose status is explanation enough.
    pub fn status(status: StatusCode) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: None,
            instance: None,
            errors: Vec::new(),
            trace_id: None,
            retry_after: None,
        }
    }

    /// A problem of a named kind (`urn:shop:problem:<slug>`), documented in `docs/api.md`.
    pub fn new(status: StatusCode, slug: &str, title: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:shop:problem:{slug}"),
            title: title.into(),
            ..Self::status(status)
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 422 with the list of invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let n = errors.len();
        let detail = if n == 1 {
            "1 field is invalid".to_owned()
        } else {
            format!("{n} fields are invalid")
        };
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Your request parameters didn't validate.",
            )
            .with_detail(detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "The request is malformed.",
        )
        .with_detail(detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication is required.",
        )
        .with_detail(detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "You may not do this.").with_detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found.").with_detail(detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "The request conflicts with the current state.",
        )
        .with_detail(detail)
    }

    /// 503: a dependency (the database) cannot be reached right now; the request
    /// changed nothing and may be sent again after `Retry-After` seconds.
    pub fn unavailable(retry_after_secs: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service cannot answer right now.",
        )
        .with_detail("A dependency is unreachable; nothing was changed. Try again shortly.")
        .with_retry_after(retry_after_secs)
    }

    /// 500 that tells the client nothing about the cause; the cause goes to the logs.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )
        .with_detail("The error was logged; quote the trace id when reporting it.")
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        if self.trace_id.is_none() {
            self.trace_id = shop_telemetry::current_trace_id();
        }
        let status = self.status_code();
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_lists_fields_and_counts_them() {
        let p = Problem::validation(vec![
            FieldError::new("email", "invalid_format", "must be an e-mail address"),
            FieldError::new("password", "too_short", "at least 12 characters"),
        ]);
        assert_eq!(p.status, 422);
        assert_eq!(p.detail.as_deref(), Some("2 fields are invalid"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "urn:shop:problem:validation");
        assert_eq!(json["errors"][1]["field"], "password");
    }

    #[test]
    fn response_has_problem_media_type_and_retry_after() {
        let response = Problem::new(StatusCode::TOO_MANY_REQUESTS, "throttled", "Slow down.")
            .with_retry_after(30)
            .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }
}
