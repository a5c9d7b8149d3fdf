//! Constraint violations as the caller's own errors. A unique, foreign-key or check
//! constraint is the one place that can decide a race (two registrations of one
//! e-mail), so a handler inserts and maps the violation, instead of checking first:
//!
//! ```ignore
//! use shop_db::OnConstraint as _;
//! sqlx::query("INSERT INTO users ...").execute(db).await
//!     .on_constraint("users_email_key", || Error::EmailTaken)?;
//! ```
//!
//! Constraints are matched by name, so name them in the migration
//! (`CONSTRAINT users_email_key UNIQUE`) rather than relying on generated names.

/// Maps the violation of one named constraint to an error of the caller's choosing;
/// every other database error converts with `From<sqlx::Error>` as `?` would.
pub trait OnConstraint<T> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        name: &str,
        error: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> OnConstraint<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        name: &str,
        error: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|e| {
            if violates(&e, name) {
                error()
            } else {
                e.into()
            }
        })
    }
}

/// Whether `error` is the violation of the constraint called `name` (for matching
/// several constraints of one statement).
pub fn violates(error: &sqlx::Error, name: &str) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.constraint() == Some(name))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;

    use sqlx::error::{DatabaseError, ErrorKind};

    use super::*;

    /// What Postgres reports for a violated constraint, without a server.
    #[derive(Debug)]
    struct Violation(&'static str);

    impl std::fmt::Display for Violation {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "violates {}", self.0)
        }
    }

    impl StdError for Violation {}

    impl DatabaseError for Violation {
        fn message(&self) -> &str {
            "duplicate key value violates unique constraint"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed("23505"))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn constraint(&self) -> Option<&str> {
            Some(self.0)
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::UniqueViolation
        }
    }

    #[derive(Debug)]
    enum Error {
        Taken,
        Database(sqlx::Error),
    }

    impl From<sqlx::Error> for Error {
        fn from(e: sqlx::Error) -> Self {
            Error::Database(e)
        }
    }

    fn violation(name: &'static str) -> Result<(), sqlx::Error> {
        Err(sqlx::Error::Database(Box::new(Violation(name))))
    }

    #[test]
    fn only_the_named_constraint_becomes_the_callers_error() {
        assert!(matches!(
            violation("users_email_key").on_constraint("users_email_key", || Error::Taken),
            Err(Error::Taken)
        ));
        assert!(matches!(
            violation("users_pkey").on_constraint("users_email_key", || Error::Taken),
            Err(Error::Database(sqlx::Error::Database(_)))
        ));
        assert!(matches!(
            Err::<(), _>(sqlx::Error::RowNotFound)
                .on_constraint("users_email_key", || Error::Taken),
            Err(Error::Database(sqlx::Error::RowNotFound))
        ));
        assert!(matches!(
            Ok::<_, sqlx::Error>(7).on_constraint("users_email_key", || Error::Taken),
            Ok(7)
        ));
    }
}
