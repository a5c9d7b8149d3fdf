//! What clients send: the admin's stock changes, and the rules they must satisfy
//! (checked by `Valid<Json<_>>` before a handler runs, all fields at once).

use serde::Deserialize;
use shop_http::{FieldError, Validate};
use utoipa::ToSchema;

use crate::reservations::MAX_QUANTITY;

pub const MAX_REASON_CHARS: usize = 200;

/// Goods arrived: `quantity` more on hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 20, "reason": "delivery 4711 from ACME"}))]
pub struct Receive {
    /// 1 to 1,000,000.
    pub quantity: i64,
    /// Why, for the ledger (1 to 200 characters).
    pub reason: String,
}

impl Validate for Receive {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !(1..=i64::from(MAX_QUANTITY)).contains(&self.quantity) {
            errors.push(FieldError::new(
                "quantity",
                "out_of_range",
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        errors.extend(reason_error(&self.reason));
        errors
    }
}

/// A correction after a count (breakage, loss, a miscount): `delta` on hand, up or
/// down; never below what is reserved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"delta": -2, "reason": "two damaged in the warehouse"}))]
pub struct Adjust {
    /// Not zero; -1,000,000 to 1,000,000.
    pub delta: i64,
    /// Why, for the ledger (1 to 200 characters).
    pub reason: String,
}

impl Validate for Adjust {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.delta == 0 || self.delta.abs() > i64::from(MAX_QUANTITY) {
            errors.push(FieldError::new(
                "delta",
                "out_of_range",
                format!("must be non-zero and between -{MAX_QUANTITY} and {MAX_QUANTITY}"),
            ));
        }
        errors.extend(reason_error(&self.reason));
        errors
    }
}

fn reason_error(reason: &str) -> Option<FieldError> {
    let chars = reason.trim().chars().count();
    if chars == 0 {
        Some(FieldError::new("reason", "required", "must not be blank"))
    } else if reason.chars().count() > MAX_REASON_CHARS {
        Some(FieldError::new(
            "reason",
            "too_long",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_must_be_positive_bounded_and_explained() {
        let ok = Receive {
            quantity: 1,
            reason: "delivery".to_owned(),
        };
        assert!(ok.validate().is_empty());
        for quantity in [0, -1, i64::from(MAX_QUANTITY) + 1] {
            let bad = Receive {
                quantity,
                reason: " ".to_owned(),
            };
            assert_eq!(bad.validate().len(), 2, "{quantity}");
        }
    }

    #[test]
    fn adjustments_may_be_negative_but_not_zero() {
        let down = Adjust {
            delta: -3,
            reason: "broken".to_owned(),
        };
        assert!(down.validate().is_empty());
        let zero = Adjust {
            delta: 0,
            reason: "nothing".to_owned(),
        };
        assert_eq!(zero.validate()[0].field, "delta");
    }
}
