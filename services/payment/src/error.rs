//! The payment service's one error type, mapped once to problem+json. Clients learn
//! what they may know; the real cause of a 500 goes to the log with the trace id.

use axum::response::{IntoResponse, Response};
use shop_http::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such payment, or one the caller may not see: the same answer, so ids
    /// cannot be probed.
    #[error("no such payment")]
    PaymentNotFound,
    /// A refusal already in problem form (a malformed id or parameter).
    #[error(transparent)]
    Rejected(#[from] Problem),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 422 naming one field.
    pub fn invalid(field: &str, code: &str, message: impl Into<String>) -> Self {
        Error::Rejected(Problem::validation(vec![FieldError::new(
            field, code, message,
        )]))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let problem = match self {
            Error::PaymentNotFound => Problem::not_found(detail),
            Error::Rejected(problem) => problem,
            Error::Database(e) => shop_service::database_problem(&e),
            Error::Internal(e) => shop_service::internal_problem(&e),
        };
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn an_unreachable_database_is_a_503_to_retry_and_any_other_database_error_a_500() {
        let unreachable = Error::Database(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(unreachable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unreachable.headers()["retry-after"], "1");
        let broken = Error::Database(sqlx::Error::RowNotFound).into_response();
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
