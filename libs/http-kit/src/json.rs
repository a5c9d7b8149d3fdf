//! A `Json` extractor whose every rejection is a problem+json, with the path of the
//! offending field, and a `Valid` wrapper that runs the type's own validation (for
//! bodies here, for query strings in `query.rs`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// JSON body in, JSON body out. Unlike `axum::Json`, a bad body is answered with a
/// problem+json naming the field that failed (`items[0].quantity`), and a wrong
/// content type with 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Input that can check itself beyond what its types say (lengths, formats, ranges).
pub trait Validate {
    /// Every problem found, not just the first, so a client can fix them in one go.
    fn validate(&self) -> Vec<FieldError>;
}

/// Input that parsed *and* validated; otherwise 422 with the field errors. Wraps a
/// [`Json`] body or a [`Query`](crate::query::Query).
#[derive(Debug, Clone, Copy)]
pub struct Valid<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&req) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Expected a JSON body.",
            )
            .with_detail("send the body with `Content-Type: application/json`"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_problem)?;
        parse(&bytes).map(Json)
    }
}

impl<T, S> FromRequest<S> for Valid<Json<T>>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        let errors = value.validate();
        if errors.is_empty() {
            Ok(Valid(Json(value)))
        } else {
            Err(Problem::validation(errors))
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON document, reporting where it went wrong.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let (field, code) = field_of(&path, &inner.to_string());
                Problem::validation(vec![FieldError::new(field, code, clean_message(&inner))])
            }
            _ => syntax_problem(&inner),
        }
    })?;
    // Trailing bytes after the document are as malformed as a missing brace.
    de.end().map_err(|e| syntax_problem(&e))?;
    Ok(value)
}

fn syntax_problem(err: &serde_json::Error) -> Problem {
    Problem::bad_request(format!("the body is not valid JSON: {err}"))
}

/// The field a deserialization error is about, and its error code. serde reports a
/// missing field at the path of the enclosing object; we want the field itself named,
/// so the client can point at it. Shared with the `Query` extractor.
pub(crate) fn field_of(path: &str, message: &str) -> (String, &'static str) {
    let quoted = message.split('`').nth(1).map(str::to_owned);
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if message.starts_with("missing field") {
        (join(quoted.unwrap_or_default()), "required")
    } else if message.starts_with("unknown field") {
        // Here serde_path_to_error has already stepped into the unknown key.
        let field = if path == "." {
            quoted.unwrap_or_default()
        } else {
            path.to_owned()
        };
        (field, "unknown_field")
    } else {
        let field = if path == "." {
            String::new()
        } else {
            path.to_owned()
        };
        (field, "invalid_type")
    }
}

/// The serde message without the " at line 1 column 20" suffix, which means nothing
/// to a client that sent the body from code.
fn clean_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn bytes_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "The body is too large.",
        )
        .with_detail(rejection.body_text())
    } else {
        Problem::bad_request(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        quantity: u32,
    }

    #[test]
    fn a_wrong_type_names_the_nested_field() {
        let p = parse::<Order>(br#"{"items":[{"quantity":"two"}]}"#).unwrap_err();
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "items[0].quantity");
        assert_eq!(p.errors[0].code, "invalid_type");
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let p = parse::<Order>(br#"{"items":[{}]}"#).unwrap_err();
        assert_eq!(
            (p.errors[0].field.as_str(), p.errors[0].code.as_str()),
            ("items[0].quantity", "required")
        );
        let p = parse::<Order>(br#"{"items":[], "admin": true}"#).unwrap_err();
        assert_eq!(
            (p.errors[0].field.as_str(), p.errors[0].code.as_str()),
            ("admin", "unknown_field")
        );
    }

    #[test]
    fn broken_json_and_trailing_garbage_are_bad_requests() {
        assert_eq!(parse::<Order>(br#"{"items": ["#).unwrap_err().status, 400);
        assert_eq!(
            parse::<Order>(br#"{"items": []} x"#).unwrap_err().status,
            400
        );
    }
}
