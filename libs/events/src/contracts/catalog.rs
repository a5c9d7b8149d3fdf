//! Events of the catalog context (stream `CATALOG`, owned by the catalog service).
//!
//! The inventory reacts to `created` (a new product gets a stock record under its SKU);
//! anyone may follow `updated` and `deactivated`. Every payload carries the SKU, the
//! identity the other contexts know a product by.

use serde::{Deserialize, Serialize};

use crate::Event;

/// A price: integer minor units (cents) and an ISO 4217 currency code. Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

/// A product was added to the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCreated {
    /// `prod_...`
    pub product_id: String,
    pub sku: String,
    pub name: String,
    /// The category's slug.
    pub category: String,
    pub price: Money,
    pub active: bool,
}

impl Event for ProductCreated {
    const TYPE: &'static str = "catalog.product.created";
    const VERSION: u32 = 1;
}

/// A product's details changed; `version` is its new version (optimistic concurrency),
/// so a consumer can ignore an update older than what it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductUpdated {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub category: String,
    pub price: Money,
    pub active: bool,
    pub version: i64,
}

impl Event for ProductUpdated {
    const TYPE: &'static str = "catalog.product.updated";
    const VERSION: u32 = 1;
}

/// A product can no longer be bought (it stays readable for old orders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDeactivated {
    pub product_id: String,
    pub sku: String,
    pub version: i64,
}

impl Event for ProductDeactivated {
    const TYPE: &'static str = "catalog.product.deactivated";
    const VERSION: u32 = 1;
}
