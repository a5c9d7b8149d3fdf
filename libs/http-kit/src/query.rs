//! A `Query` extractor whose rejections are problem+json with the offending parameter,
//! and `Valid<Query<T>>`, which also runs the type's own validation.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::json::{Valid, Validate, field_of};
use crate::problem::{FieldError, Problem};

/// Query-string parameters; unknown or badly typed ones get a 422 naming them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let message = err.inner().to_string();
                let (field, code) = field_of(&err.path().to_string(), &message);
                Problem::validation(vec![FieldError::new(field, code, message)])
            })
    }
}

/// Query parameters that parsed *and* validated; otherwise the same 422 problem, with
/// the field errors, as an invalid JSON body gets.
impl<T, S> FromRequestParts<S> for Valid<Query<T>>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        let errors = value.validate();
        if errors.is_empty() {
            Ok(Valid(Query(value)))
        } else {
            Err(Problem::validation(errors))
        }
    }
}
