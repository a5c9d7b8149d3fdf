//! The order service's one error type, mapped once to problem+json. Clients learn
//! what they may know; the real cause of a 500 goes to the log with the trace id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shop_http::Problem;

use crate::orders::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such order, or not the caller's: the same answer, so a customer cannot
    /// learn that someone else's order exists.
    #[error("no such order")]
    OrderNotFound,
    /// The key was used for another request by this user.
    #[error(
        "this Idempotency-Key was already used with a different request; \
         send a new key for a new order"
    )]
    IdempotencyKeyReused,
    /// The catalog cannot price the order now (down, failing, or its breaker open):
    /// nothing was stored and the request may be sent again with the same key.
    #[error("the catalog cannot price the order right now; nothing was stored")]
    CatalogUnavailable { retry_after_secs: u64 },
    /// Shipped or delivered: too late to cancel.
    #[error("an order that is {} can no longer be cancelled", .0.as_str())]
    TooLateToCancel(Status),
    /// A refusal already in problem form (bad input, a missing key).
    #[error(transparent)]
    Rejected(#[from] Problem),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let problem = match self {
            Error::OrderNotFound => Problem::not_found(detail),
            Error::IdempotencyKeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "The Idempotency-Key belongs to another request.",
            )
            .with_detail(detail),
            Error::CatalogUnavailable { retry_after_secs } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "catalog-unavailable",
                "Prices cannot be checked right now.",
            )
            .with_detail(detail)
            .with_retry_after(retry_after_secs),
            Error::TooLateToCancel(_) => Problem::conflict(detail),
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

    #[test]
    fn an_unreachable_database_is_a_503_to_retry_and_any_other_database_error_a_500() {
        let unreachable = Error::Database(sqlx::Error::PoolTimedOut).into_response();
        assert_eq!(unreachable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unreachable.headers()["retry-after"], "1");
        let broken = Error::Database(sqlx::Error::RowNotFound).into_response();
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unavailable_catalog_says_when_to_retry() {
        let response = Error::CatalogUnavailable {
            retry_after_secs: 5,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "5");
    }
}
