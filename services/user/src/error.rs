//! The user service's one error type, mapped once to problem+json. Clients learn what
//! they may know; the real cause of a 500 goes to the log with the trace id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shop_http::Problem;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    #[error("the e-mail address or the password is wrong")]
    InvalidCredentials,
    #[error("too many failed logins for this account")]
    AccountThrottled { retry_after_secs: u64 },
    #[error("too many failed logins from this client")]
    ClientThrottled { retry_after_secs: u64 },
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("a refresh token was used twice: every token of that login is now revoked")]
    RefreshTokenReused,
    #[error("the user does not exist")]
    UserNotFound,
    /// A refusal already in problem form (e.g. a parameter out of range).
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
            Error::EmailTaken => Problem::conflict(detail),
            Error::InvalidCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "Login failed.",
            )
            .with_detail(detail),
            Error::AccountThrottled { retry_after_secs }
            | Error::ClientThrottled { retry_after_secs } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login-throttled",
                "Too many failed logins.",
            )
            .with_detail(format!("{detail}; try again in {retry_after_secs} s"))
            .with_retry_after(retry_after_secs),
            Error::InvalidRefreshToken | Error::RefreshTokenReused => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-refresh-token",
                "The refresh token was not accepted.",
            )
            .with_detail(detail),
            Error::UserNotFound => Problem::not_found(detail),
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
