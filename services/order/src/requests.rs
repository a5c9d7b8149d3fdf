//! What clients send, and how it is checked before anything else happens: every
//! problem of a body is reported at once, with the path of its field
//! (`items[1].quantity`), and a refused request writes nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use shop_http::{FieldError, Validate};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::orders::{Address, Status};

/// The most lines of one order.
pub const MAX_LINES: usize = 50;
/// The most units of one line.
pub const MAX_QUANTITY: i32 = 100;
/// The longest card token.
pub const MAX_TOKEN_LEN: usize = 100;

/// `POST /api/v1/orders`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "items": [{"product_id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f", "quantity": 2}],
    "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
        "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    "payment": {"card_token": "tok_visa"}
}))]
pub struct PlaceOrder {
    /// 1 to 50 lines, each product at most once.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<Item>,
    pub shipping_address: Address,
    pub payment: Payment,
}

/// One line of a placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// `prod_` and 32 lower-case hex digits.
    #[schema(pattern = "^prod_[0-9a-f]{32}$")]
    pub product_id: String,
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i32,
}

/// How the order is paid: a processor's token, never a card number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// `tok_` and up to 96 letters, digits or `_` (`tok_visa`, `tok_chargeDeclined`).
    #[schema(pattern = "^tok_[A-Za-z0-9_]{1,96}$", example = "tok_visa")]
    pub card_token: String,
}

impl PlaceOrder {
    /// The request as it is stored and fingerprinted: text trimmed, the country upper
    /// case, an empty `line2` absent.
    pub fn normalized(&self) -> Self {
        let a = &self.shipping_address;
        Self {
            items: self.items.clone(),
            shipping_address: Address {
                name: a.name.trim().to_owned(),
                line1: a.line1.trim().to_owned(),
                line2: a
                    .line2
                    .as_deref()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
                city: a.city.trim().to_owned(),
                postal_code: a.postal_code.trim().to_owned(),
                country: a.country.trim().to_ascii_uppercase(),
            },
            payment: self.payment.clone(),
        }
    }

    /// The SHA-256 of the normalized request's canonical JSON (fields in declaration
    /// order, no whitespace): what an idempotency key remembers of its request, so the
    /// same order sent again with other spacing, key order or letter case of the
    /// country is the same request, and anything else is not. Lines keep their order.
    pub fn fingerprint(&self) -> Vec<u8> {
        let canonical = serde_json::to_vec(&self.normalized()).unwrap_or_default();
        Sha256::digest(&canonical).to_vec()
    }
}

/// A product id as the catalog makes them.
pub fn is_product_id(raw: &str) -> bool {
    raw.strip_prefix("prod_").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// An error if `value`, trimmed, is empty, longer than `max` characters, or holds a
/// control character.
fn text_error(field: &str, value: &str, max: usize) -> Option<FieldError> {
    let value = value.trim();
    if value.is_empty() {
        Some(FieldError::new(field, "required", "must not be empty"))
    } else if value.chars().count() > max {
        Some(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ))
    } else if value.chars().any(char::is_control) {
        Some(FieldError::new(
            field,
            "invalid_format",
            "must not contain control characters",
        ))
    } else {
        None
    }
}

impl Validate for PlaceOrder {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.items.is_empty() || self.items.len() > MAX_LINES {
            errors.push(FieldError::new(
                "items",
                "out_of_range",
                format!("must hold 1 to {MAX_LINES} lines"),
            ));
        }
        let mut first_line_of: HashMap<&str, usize> = HashMap::new();
        for (i, item) in self.items.iter().enumerate() {
            if !is_product_id(&item.product_id) {
                errors.push(FieldError::new(
                    format!("items[{i}].product_id"),
                    "invalid_format",
                    "must be a product id (`prod_` and 32 hex digits)",
                ));
            } else if let Some(first) = first_line_of.get(item.product_id.as_str()) {
                errors.push(FieldError::new(
                    format!("items[{i}].product_id"),
                    "duplicate",
                    format!("is on line {first} already: one line per product"),
                ));
            } else {
                first_line_of.insert(&item.product_id, i);
            }
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                errors.push(FieldError::new(
                    format!("items[{i}].quantity"),
                    "out_of_range",
                    format!("must be 1 to {MAX_QUANTITY}"),
                ));
            }
        }
        let a = &self.shipping_address;
        errors.extend(text_error("shipping_address.name", &a.name, 100));
        errors.extend(text_error("shipping_address.line1", &a.line1, 200));
        if let Some(line2) = a.line2.as_deref().filter(|l| !l.trim().is_empty()) {
            errors.extend(text_error("shipping_address.line2", line2, 200));
        }
        errors.extend(text_error("shipping_address.city", &a.city, 100));
        errors.extend(text_error(
            "shipping_address.postal_code",
            &a.postal_code,
            20,
        ));
        let country = a.country.trim();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
            errors.push(FieldError::new(
                "shipping_address.country",
                "invalid_format",
                "must be an ISO 3166-1 alpha-2 code (two letters)",
            ));
        }
        let token = &self.payment.card_token;
        let well_formed = token.strip_prefix("tok_").is_some_and(|rest| {
            !rest.is_empty()
                && token.len() <= MAX_TOKEN_LEN
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !well_formed {
            errors.push(FieldError::new(
                "payment.card_token",
                "invalid_format",
                format!(
                    "must be a card token: `tok_` and letters, digits or `_`, at most \
                     {MAX_TOKEN_LEN} characters"
                ),
            ));
        }
        errors
    }
}

/// `GET /api/v1/orders`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20).
    #[param(example = 20)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only orders in this state.
    #[param(inline)]
    pub status: Option<Status>,
    /// Only this user's orders (admins only; a customer always sees their own).
    pub user_id: Option<Uuid>,
}

/// The default page size.
pub const DEFAULT_PAGE: i64 = 20;

impl ListParams {
    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE)
    }
}

impl Validate for ListParams {
    fn validate(&self) -> Vec<FieldError> {
        if (1..=100).contains(&self.limit()) {
            Vec::new()
        } else {
            vec![FieldError::new(
                "limit",
                "out_of_range",
                "must be between 1 and 100",
            )]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> PlaceOrder {
        PlaceOrder {
            items: vec![Item {
                product_id: format!("prod_{}", "a".repeat(32)),
                quantity: 2,
            }],
            shipping_address: Address {
                name: "Ada Lovelace".into(),
                line1: "12 St James's Square".into(),
                line2: None,
                city: "London".into(),
                postal_code: "SW1Y 4JH".into(),
                country: "GB".into(),
            },
            payment: Payment {
                card_token: "tok_visa".into(),
            },
        }
    }

    fn fields(order: &PlaceOrder) -> Vec<(String, String)> {
        order
            .validate()
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect()
    }

    #[test]
    fn a_valid_order_has_no_errors() {
        assert!(valid().validate().is_empty());
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let mut order = valid();
        order.items.push(order.items[0].clone());
        order.items.push(Item {
            product_id: "prod_XYZ".into(),
            quantity: 0,
        });
        order.shipping_address.name = "   ".into();
        order.shipping_address.city = "x".repeat(101);
        order.shipping_address.country = "GBR".into();
        order.payment.card_token = "4242424242424242".into();
        assert_eq!(
            fields(&order),
            [
                ("items[1].product_id", "duplicate"),
                ("items[2].product_id", "invalid_format"),
                ("items[2].quantity", "out_of_range"),
                ("shipping_address.name", "required"),
                ("shipping_address.city", "too_long"),
                ("shipping_address.country", "invalid_format"),
                ("payment.card_token", "invalid_format"),
            ]
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
        );
    }

    #[test]
    fn line_counts_and_quantities_are_bounded() {
        let mut order = valid();
        order.items.clear();
        assert_eq!(fields(&order)[0].0, "items");
        order.items = (0..=MAX_LINES)
            .map(|i| Item {
                product_id: format!("prod_{i:032x}"),
                quantity: MAX_QUANTITY,
            })
            .collect();
        assert_eq!(fields(&order), [("items".into(), "out_of_range".into())]);
        order.items.truncate(MAX_LINES);
        assert!(order.validate().is_empty());
        order.items[0].quantity = MAX_QUANTITY + 1;
        assert_eq!(fields(&order)[0].0, "items[0].quantity");
    }

    #[test]
    fn card_tokens_must_look_like_tokens() {
        for good in [
            "tok_visa",
            "tok_chargeDeclined",
            "tok_insufficientFunds",
            "tok_timeout",
        ] {
            let mut order = valid();
            order.payment.card_token = good.into();
            assert!(order.validate().is_empty(), "{good}");
        }
        for bad in [
            "tok_",
            "visa",
            "tok_a b",
            "tok_é",
            &format!("tok_{}", "a".repeat(97)),
        ] {
            let mut order = valid();
            order.payment.card_token = bad.into();
            assert_eq!(fields(&order)[0].0, "payment.card_token", "{bad}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_spacing_and_case_of_the_country_but_not_the_order() {
        let base = valid();
        let mut respaced = valid();
        respaced.shipping_address.name = "  Ada Lovelace ".into();
        respaced.shipping_address.country = "gb".into();
        respaced.shipping_address.line2 = Some(" ".into());
        assert_eq!(base.fingerprint(), respaced.fingerprint());
        let mut other = valid();
        other.items[0].quantity = 3;
        assert_ne!(base.fingerprint(), other.fingerprint());
        assert_eq!(base.fingerprint().len(), 32);
    }
}
