//! The shipping service's one error type, mapped once to problem+json. Clients learn
//! what they may know; the real cause of a 500 goes to the log with the trace id. The
//! consumers and the carrier use it too (`HandlerError::from`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shop_events::HandlerError;
use shop_http::{FieldError, Problem};

use crate::lifecycle::Step;
use crate::shipments::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such shipment, or not one the caller may see (the same answer: a customer
    /// learns nothing of other customers' shipments).
    #[error("the shipment does not exist")]
    ShipmentNotFound,
    /// A step from a status it does not leave from.
    #[error("the shipment is {status}: it cannot be {} now", step.as_str())]
    OutOfOrder { status: Status, step: Step },
    /// A refusal already in problem form (a malformed id, a parameter out of range).
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
            Error::ShipmentNotFound => Problem::not_found(detail),
            Error::OutOfOrder { .. } => Problem::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "The shipment's status does not allow this step.",
            )
            .with_detail(detail),
            Error::Rejected(problem) => problem,
            Error::Database(e) => shop_service::database_problem(&e),
            Error::Internal(e) => shop_service::internal_problem(&e),
        };
        problem.into_response()
    }
}

/// In a consumer: the database's errors keep their meaning (unreachable: wait;
/// otherwise retry); anything else is retried too, as nothing an order event carries
/// can make these functions fail for good.
impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Database(e) => e.into(),
            other => HandlerError::Transient(anyhow::Error::new(other)),
        }
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
    fn a_step_out_of_order_is_a_409_naming_the_status() {
        let error = Error::OutOfOrder {
            status: Status::Created,
            step: Step::Deliver,
        };
        assert_eq!(
            error.to_string(),
            "the shipment is CREATED: it cannot be delivered now"
        );
        assert_eq!(error.into_response().status(), StatusCode::CONFLICT);
    }
}
