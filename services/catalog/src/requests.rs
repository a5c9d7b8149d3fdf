//! What clients send: the request bodies and query of the catalog's routes, and the
//! rules they must satisfy (checked by `Valid<..>` before a handler runs, every field
//! at once, so a client can fix them in one go).

use serde::Deserialize;
use shop_http::{FieldError, Validate};
use utoipa::{IntoParams, ToSchema};

use crate::products::{Money, ProductFields, ProductId, Sort};
use crate::search::MAX_QUERY_CHARS;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
pub const MAX_URL_CHARS: usize = 2048;
/// The highest price accepted: ten million in a two-decimal currency.
pub const MAX_AMOUNT: i64 = 1_000_000_000;
pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_LOOKUP_IDS: usize = 100;

/// `^[A-Z0-9][A-Z0-9-]{1,39}$`
pub fn sku_error(field: &str, sku: &str) -> Option<FieldError> {
    code_error(
        field,
        sku,
        2..=40,
        |b| b.is_ascii_uppercase() || b.is_ascii_digit(),
        "must be 2 to 40 upper-case letters, digits or hyphens, not starting with a hyphen",
    )
}

/// `^[a-z0-9][a-z0-9-]{0,62}$`
pub fn slug_error(field: &str, slug: &str) -> Option<FieldError> {
    code_error(
        field,
        slug,
        1..=63,
        |b| b.is_ascii_lowercase() || b.is_ascii_digit(),
        "must be 1 to 63 lower-case letters, digits or hyphens, not starting with a hyphen",
    )
}

/// A code of `len` bytes that are all `allowed` or, after the first, hyphens.
fn code_error(
    field: &str,
    value: &str,
    len: std::ops::RangeInclusive<usize>,
    allowed: fn(u8) -> bool,
    message: &str,
) -> Option<FieldError> {
    let ok = len.contains(&value.len())
        && value
            .bytes()
            .enumerate()
            .all(|(i, b)| allowed(b) || (i > 0 && b == b'-'));
    (!ok).then(|| FieldError::new(field, "invalid_format", message))
}

fn text_error(field: &str, text: &str, min: usize, max: usize) -> Option<FieldError> {
    let chars = text.trim().chars().count();
    if chars < min {
        Some(FieldError::new(field, "required", "must not be empty"))
    } else if chars > max {
        Some(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ))
    } else {
        None
    }
}

fn price_errors(field: &str, price: &Money) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if !(1..=MAX_AMOUNT).contains(&price.amount) {
        errors.push(FieldError::new(
            format!("{field}.amount"),
            "out_of_range",
            format!("must be between 1 and {MAX_AMOUNT} minor units"),
        ));
    }
    let currency_ok =
        price.currency.len() == 3 && price.currency.bytes().all(|b| b.is_ascii_uppercase());
    if !currency_ok {
        errors.push(FieldError::new(
            format!("{field}.currency"),
            "invalid_format",
            "must be an ISO 4217 code: three upper-case letters",
        ));
    }
    errors
}

fn url_error(field: &str, url: &str) -> Option<FieldError> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_URL_CHARS
        && url.len() > "https://".len()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (!ok).then(|| {
        FieldError::new(
            field,
            "invalid_format",
            format!("must be an http(s) URL of at most {MAX_URL_CHARS} characters"),
        )
    })
}

/// Every problem of a product's fields.
pub fn product_errors(fields: &ProductFields<'_>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    errors.extend(sku_error("sku", fields.sku));
    errors.extend(text_error("name", fields.name, 1, MAX_NAME_CHARS));
    errors.extend(text_error(
        "description",
        fields.description,
        0,
        MAX_DESCRIPTION_CHARS,
    ));
    errors.extend(price_errors("price", fields.price));
    errors.extend(slug_error("category", fields.category));
    if let Some(url) = fields.image_url {
        errors.extend(url_error("image_url", url));
    }
    errors
}

/// `POST /api/v1/products`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sku": "KIT-KETTLE-01",
    "name": "Stainless steel kettle",
    "description": "1.7 l electric kettle with a keep-warm mode.",
    "price": {"amount": 4999, "currency": "EUR"},
    "category": "kitchen",
    "image_url": "https://images.example.com/kettle.jpg"
}))]
pub struct CreateProductRequest {
    #[schema(pattern = "^[A-Z0-9][A-Z0-9-]{1,39}$")]
    pub sku: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    pub price: Money,
    /// A category's slug.
    pub category: String,
    pub image_url: Option<String>,
}

impl CreateProductRequest {
    pub fn fields(&self) -> ProductFields<'_> {
        ProductFields {
            sku: &self.sku,
            name: self.name.trim(),
            description: self.description.trim(),
            price: &self.price,
            category: &self.category,
            image_url: self.image_url.as_deref(),
        }
    }
}

impl Validate for CreateProductRequest {
    fn validate(&self) -> Vec<FieldError> {
        product_errors(&self.fields())
    }
}

/// `PUT /api/v1/products/{id}`: the whole product as it should be (its `active` flag
/// aside; its `sku` as it is, since a SKU never changes), with the `version` it was
/// read at unless `If-Match` carries the ETag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sku": "KIT-KETTLE-01",
    "name": "Stainless steel kettle",
    "description": "1.7 l electric kettle with a keep-warm mode.",
    "price": {"amount": 4499, "currency": "EUR"},
    "category": "kitchen",
    "image_url": null,
    "version": 1
}))]
pub struct UpdateProductRequest {
    #[schema(pattern = "^[A-Z0-9][A-Z0-9-]{1,39}$")]
    pub sku: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    pub price: Money,
    pub category: String,
    pub image_url: Option<String>,
    /// The version the change is based on; a stale one is a 409. Optional when
    /// `If-Match` is sent.
    pub version: Option<i64>,
}

impl UpdateProductRequest {
    pub fn fields(&self) -> ProductFields<'_> {
        ProductFields {
            sku: &self.sku,
            name: self.name.trim(),
            description: self.description.trim(),
            price: &self.price,
            category: &self.category,
            image_url: self.image_url.as_deref(),
        }
    }
}

impl Validate for UpdateProductRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = product_errors(&self.fields());
        if self.version.is_some_and(|v| v < 1) {
            errors.push(FieldError::new(
                "version",
                "out_of_range",
                "must be at least 1",
            ));
        }
        errors
    }
}

/// `POST /api/v1/categories`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "kitchen", "name": "Kitchen"}))]
pub struct CreateCategoryRequest {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub slug: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

impl Validate for CreateCategoryRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        errors.extend(slug_error("slug", &self.slug));
        errors.extend(text_error("name", &self.name, 1, 100));
        errors
    }
}

/// `POST /api/v1/internal/products/lookup`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ids": ["prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f"]}))]
pub struct LookupRequest {
    /// 1 to 100 product ids.
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Vec<String>,
}

impl LookupRequest {
    /// The ids, each once (after validation every one parses).
    pub fn ids(&self) -> Vec<ProductId> {
        let mut ids: Vec<ProductId> = self
            .ids
            .iter()
            .filter_map(|id| ProductId::parse(id))
            .collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        ids.dedup();
        ids
    }
}

impl Validate for LookupRequest {
    fn validate(&self) -> Vec<FieldError> {
        if self.ids.is_empty() || self.ids.len() > MAX_LOOKUP_IDS {
            return vec![FieldError::new(
                "ids",
                "out_of_range",
                format!("must hold 1 to {MAX_LOOKUP_IDS} ids"),
            )];
        }
        self.ids
            .iter()
            .enumerate()
            .filter(|(_, id)| ProductId::parse(id).is_none())
            .map(|(i, _)| {
                FieldError::new(format!("ids[{i}]"), "invalid_format", "is not a product id")
            })
            .collect()
    }
}

/// `GET /api/v1/products`
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Full-text search over name (weighs more) and description; every word must
    /// match, as a prefix ("kett" finds "kettle"). At most 200 characters.
    pub q: Option<String>,
    /// A category's slug.
    pub category: Option<String>,
    /// Lowest price, in minor units.
    pub min_price: Option<i64>,
    /// Highest price, in minor units.
    pub max_price: Option<i64>,
    /// Only products the inventory reports available (`true`) or not (`false`).
    pub in_stock: Option<bool>,
    /// `relevance` (default with `q`, needs `q`), `price_asc`, `price_desc`, `newest`
    /// (default without `q`).
    #[param(inline)]
    pub sort: Option<Sort>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page (opaque; only with the same sort).
    pub cursor: Option<String>,
}

impl ListParams {
    /// The trimmed search text, if any.
    pub fn q(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    pub fn sort(&self) -> Sort {
        self.sort.unwrap_or(if self.q().is_some() {
            Sort::Relevance
        } else {
            Sort::Newest
        })
    }

    pub fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE)
    }
}

impl Validate for ListParams {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(q) = self.q() {
            if q.chars().count() > MAX_QUERY_CHARS {
                errors.push(FieldError::new(
                    "q",
                    "too_long",
                    format!("must be at most {MAX_QUERY_CHARS} characters"),
                ));
            } else if crate::search::prefix_query(q).is_none() {
                errors.push(FieldError::new(
                    "q",
                    "no_words",
                    "must contain a letter or a digit",
                ));
            }
        }
        if let Some(category) = &self.category {
            errors.extend(slug_error("category", category));
        }
        for (field, price) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if price.is_some_and(|p| !(0..=MAX_AMOUNT).contains(&p)) {
                errors.push(FieldError::new(
                    field,
                    "out_of_range",
                    format!("must be between 0 and {MAX_AMOUNT}"),
                ));
            }
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price)
            && min > max
        {
            errors.push(FieldError::new(
                "max_price",
                "out_of_range",
                "must not be below min_price",
            ));
        }
        if self.sort() == Sort::Relevance && self.q().is_none() {
            errors.push(FieldError::new(
                "sort",
                "needs_q",
                "relevance needs a search (`q`)",
            ));
        }
        if !(1..=MAX_PAGE).contains(&self.limit()) {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                "must be between 1 and 100",
            ));
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_follow_the_pattern() {
        for ok in ["KIT-KETTLE-01", "A1", "0-0"] {
            assert!(sku_error("sku", ok).is_none(), "{ok}");
        }
        for bad in ["", "A", "-AB", "kit-01", "AB CD", "ÄB", &"A".repeat(41)] {
            assert!(sku_error("sku", bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn a_product_reports_every_bad_field_at_once() {
        let price = Money {
            amount: 0,
            currency: "eur".into(),
        };
        let fields = ProductFields {
            sku: "bad sku",
            name: " ",
            description: "",
            price: &price,
            category: "Kitchen",
            image_url: Some("ftp://x"),
        };
        let codes: Vec<_> = product_errors(&fields)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            codes,
            [
                "sku",
                "name",
                "price.amount",
                "price.currency",
                "category",
                "image_url"
            ]
        );
    }
}
