//! What clients send: the request bodies of the auth routes, and the rules they must
//! satisfy (checked by `Valid<Json<_>>` before a handler runs, all fields at once).

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shop_http::{FieldError, Validate};
use utoipa::ToSchema;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 100;

/// An e-mail address, trimmed and lower-cased so that uniqueness ignores case.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A pragmatic check (not full RFC 5322): one `@`, a non-empty local part without
/// spaces, and a domain of dot-separated labels of letters, digits and hyphens.
pub fn email_error(field: &str, raw: &str) -> Option<FieldError> {
    let email = normalize_email(raw);
    let invalid = || {
        Some(FieldError::new(
            field,
            "invalid_format",
            "must be an e-mail address",
        ))
    };
    if email.len() > 254 {
        return Some(FieldError::new(
            field,
            "too_long",
            "must be at most 254 characters",
        ));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return invalid();
    };
    if local.is_empty() || local.len() > 64 || local.chars().any(|c| c.is_whitespace() || c == '@')
    {
        return invalid();
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return invalid();
    }
    None
}

fn password_error(field: &str, password: &SecretString) -> Option<FieldError> {
    let chars = password.expose_secret().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some(FieldError::new(
            field,
            "too_short",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ))
    } else if chars > MAX_PASSWORD_CHARS {
        Some(FieldError::new(
            field,
            "too_long",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ))
    } else {
        None
    }
}

/// `POST /api/v1/auth/register`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery", "name": "Ada Lovelace"}))]
pub struct RegisterRequest {
    pub email: String,
    /// At least 12 characters.
    #[schema(value_type = String, min_length = 12, max_length = 128)]
    pub password: SecretString,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

impl Validate for RegisterRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        errors.extend(email_error("email", &self.email));
        errors.extend(password_error("password", &self.password));
        let name = self.name.trim();
        if name.is_empty() {
            errors.push(FieldError::new("name", "required", "must not be empty"));
        } else if name.chars().count() > MAX_NAME_CHARS {
            errors.push(FieldError::new(
                "name",
                "too_long",
                format!("must be at most {MAX_NAME_CHARS} characters"),
            ));
        }
        errors
    }
}

/// `POST /api/v1/auth/login`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery"}))]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
}

impl Validate for LoginRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        errors.extend(email_error("email", &self.email));
        // Only emptiness and an upper bound: the length rule may have changed since
        // the account was made, and a wrong password is a 401, not a 422.
        let chars = self.password.expose_secret().chars().count();
        if chars == 0 {
            errors.push(FieldError::new("password", "required", "must not be empty"));
        } else if chars > MAX_PASSWORD_CHARS {
            errors.push(FieldError::new(
                "password",
                "too_long",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        errors
    }
}

/// `POST /api/v1/auth/refresh` and `POST /api/v1/auth/logout`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "rt_Vb3k2m0W8q1lQ6y2c8JtV0oYfXh1r4aGmN7sE9dK5uI"}))]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
}

impl Validate for RefreshRequest {
    fn validate(&self) -> Vec<FieldError> {
        let token = self.refresh_token.expose_secret();
        if token.is_empty() {
            vec![FieldError::new(
                "refresh_token",
                "required",
                "must not be empty",
            )]
        } else if token.len() > 200 {
            vec![FieldError::new(
                "refresh_token",
                "too_long",
                "is not a refresh token",
            )]
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_addresses_pass_and_others_do_not() {
        for ok in [
            "ada@example.com",
            " Ada.Lovelace+shop@Mail.Example.ORG ",
            "a@b.co",
        ] {
            assert!(email_error("email", ok).is_none(), "{ok} should pass");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@exa_mple.com",
            "ada@-x.com",
            "a@b@c.com",
        ] {
            assert!(email_error("email", bad).is_some(), "{bad:?} should fail");
        }
    }

    #[test]
    fn register_reports_every_bad_field_at_once() {
        let req = RegisterRequest {
            email: "nope".into(),
            password: SecretString::from("short"),
            name: "  ".into(),
        };
        let fields: Vec<_> = req
            .validate()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect();
        assert_eq!(
            fields,
            [
                ("email".to_owned(), "invalid_format".to_owned()),
                ("password".to_owned(), "too_short".to_owned()),
                ("name".to_owned(), "required".to_owned())
            ]
        );
    }
}
