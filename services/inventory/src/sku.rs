//! `Sku`: the identity the inventory knows an item by (the catalog assigns it).

use std::fmt;

use shop_http::{FieldError, Problem};

/// The longest SKU accepted.
pub const MAX_SKU_CHARS: usize = 64;

/// A stock-keeping unit: 1 to 64 ASCII letters, digits, `-`, `_` or `.`, starting
/// with a letter or digit (`TEE-BLK-M`). Case is kept and significant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > MAX_SKU_CHARS {
            return Err(format!("a SKU has 1 to {MAX_SKU_CHARS} characters"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !raw.starts_with(|c: char| c.is_ascii_alphanumeric()) || !raw.chars().all(allowed) {
            return Err(
                "a SKU is ASCII letters, digits, '-', '_' or '.', starting with a letter or digit"
                    .to_owned(),
            );
        }
        Ok(Self(raw.to_owned()))
    }

    /// As a path parameter: a malformed one is a 422 naming `sku`.
    pub fn from_path(raw: &str) -> Result<Self, Problem> {
        Self::parse(raw).map_err(|message| {
            Problem::validation(vec![FieldError::new("sku", "invalid_format", message)])
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_letters_digits_and_separators_starting_alphanumeric() {
        for good in ["TEE-BLK-M", "a", "sku_1.2", &"X".repeat(64)] {
            assert!(Sku::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-TEE", "TEE BLK", "TEE/1", "tée", &"X".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }
}
