//! The catalog service's one error type, mapped once to problem+json. Clients learn
//! what they may know; the real cause of a 500 goes to the log with the trace id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shop_http::{FieldError, Problem};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the product does not exist")]
    ProductNotFound,
    #[error("a product with this SKU already exists")]
    SkuTaken,
    #[error("a category with this slug already exists")]
    CategoryTaken,
    #[error("the category does not exist")]
    UnknownCategory,
    /// `If-Match` named another version than the current one.
    #[error("the product has changed since you read it (current ETag {current})")]
    PreconditionFailed { current: String },
    /// The body's `version` is not the current one.
    #[error("the product has changed since you read it: it is at version {current}")]
    VersionConflict { current: i64 },
    #[error(
        "send `If-Match: <ETag>` or the `version` you read, so a concurrent change is not lost"
    )]
    PreconditionRequired,
    /// A refusal already in problem form (e.g. a parameter out of range).
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
            Error::ProductNotFound => Problem::not_found(detail),
            Error::SkuTaken | Error::CategoryTaken | Error::VersionConflict { .. } => {
                Problem::conflict(detail)
            }
            Error::UnknownCategory => Problem::validation(vec![FieldError::new(
                "category",
                "unknown",
                "no category has this slug (see GET /api/v1/categories)",
            )]),
            Error::PreconditionFailed { .. } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "The resource has changed.",
            )
            .with_detail(detail),
            Error::PreconditionRequired => Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition-required",
                "A precondition is required.",
            )
            .with_detail(detail),
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
        assert_eq!(
            unreachable.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(unreachable.headers()["retry-after"], "1");
        let broken = Error::Database(sqlx::Error::RowNotFound).into_response();
        assert_eq!(
            broken.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
