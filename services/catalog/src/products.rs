//! The `products` table: one row per product, its SKU (unique), its price in integer
//! minor units of one currency, its category, whether it is sold (`active`) and its
//! `version` (optimistic concurrency: every change adds one). The generated `search`
//! column is the full-text document (name weight A, description weight B). Every
//! statement on the table is here, beside the types it loads; the routes call these.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};

/// `prod_` + a UUIDv7 in simple (32 lower-case hex digits) form: time-ordered, so it
/// is also the tie-breaker of every listing order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
#[schema(value_type = String, example = "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f")]
pub struct ProductId(String);

impl ProductId {
    pub const PREFIX: &'static str = "prod_";

    pub fn generate() -> Self {
        Self(format!("{}{}", Self::PREFIX, Uuid::now_v7().simple()))
    }

    /// `None` unless `raw` has exactly the form [`ProductId::generate`] makes.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix(Self::PREFIX)?;
        let ok = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A price: integer minor units (cents) and an ISO 4217 currency code. Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 4999, "currency": "EUR"}))]
pub struct Money {
    /// Minor units (4999 = 49.99), 1 to 1 000 000 000.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub amount: i64,
    /// ISO 4217, three upper-case letters.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

impl From<Money> for shop_events::contracts::catalog::Money {
    fn from(m: Money) -> Self {
        Self {
            amount: m.amount,
            currency: m.currency,
        }
    }
}

/// A product as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f",
    "sku": "KIT-KETTLE-01",
    "name": "Stainless steel kettle",
    "description": "1.7 l electric kettle with a keep-warm mode.",
    "price": {"amount": 4999, "currency": "EUR"},
    "category": "kitchen",
    "image_url": "https://images.example.com/kettle.jpg",
    "active": true,
    "version": 1,
    "created_at": "2026-11-21T12:00:00Z",
    "updated_at": "2026-11-21T12:00:00Z"
}))]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    #[sqlx(flatten)]
    pub price: Money,
    /// The category's slug.
    pub category: String,
    pub image_url: Option<String>,
    /// Whether it is sold; deactivated products stay readable by id (for old orders)
    /// but are not listed.
    pub active: bool,
    /// Starts at 1, one more with every change; the ETag is `"<id>-v<version>"`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Product {
    /// Its strong entity tag.
    pub fn etag(&self) -> String {
        format!("\"{}-v{}\"", self.id, self.version)
    }
}

/// The columns a [`Product`] is loaded from (`p` is the table).
const COLUMNS: &str = "p.id, p.sku, p.name, p.description, p.price_amount AS amount, \
                       p.price_currency AS currency, p.category, p.image_url, p.active, \
                       p.version, p.created_at, p.updated_at";

/// What a product is made of, validated (`crate::requests`).
#[derive(Debug)]
pub struct ProductFields<'a> {
    pub sku: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub price: &'a Money,
    pub category: &'a str,
    pub image_url: Option<&'a str>,
}

/// Maps the constraints a write can violate to what the client did wrong.
fn on_write_constraints<T>(result: sqlx::Result<T>) -> Result<T> {
    match result {
        Err(e) if shop_db::violates(&e, "products_sku_key") => Err(Error::SkuTaken),
        Err(e) if shop_db::violates(&e, "products_category_fkey") => Err(Error::UnknownCategory),
        other => Ok(other?),
    }
}

/// Creates an active product at version 1; [`Error::SkuTaken`] or
/// [`Error::UnknownCategory`] as the constraints decide (no check-then-insert race).
pub async fn insert(db: impl PgExecutor<'_>, new: &ProductFields<'_>) -> Result<Product> {
    insert_with(db, new, "")
        .await?
        .ok_or_else(|| anyhow::anyhow!("an INSERT without ON CONFLICT returned no row").into())
}

/// As [`insert`], but a SKU that exists already is left as it is and `None` comes
/// back (the demo seed, run at every start).
pub async fn insert_if_absent(
    db: impl PgExecutor<'_>,
    new: &ProductFields<'_>,
) -> Result<Option<Product>> {
    insert_with(db, new, "ON CONFLICT (sku) DO NOTHING").await
}

/// The one INSERT of a product; `on_conflict` is a fixed clause, never user text.
async fn insert_with(
    db: impl PgExecutor<'_>,
    new: &ProductFields<'_>,
    on_conflict: &'static str,
) -> Result<Option<Product>> {
    let inserted = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO products AS p (id, sku, name, description, price_amount, price_currency,
                                    category, image_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {on_conflict} RETURNING {COLUMNS}"
    )))
    .bind(ProductId::generate())
    .bind(new.sku)
    .bind(new.name)
    .bind(new.description)
    .bind(new.price.amount)
    .bind(&new.price.currency)
    .bind(new.category)
    .bind(new.image_url)
    .fetch_optional(db)
    .await;
    on_write_constraints(inserted)
}

pub async fn find(db: impl PgExecutor<'_>, id: &ProductId) -> Result<Option<Product>> {
    let product = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products p WHERE p.id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(product)
}

/// The product, locked until the transaction ends: a write reads the version it
/// checks and changes the row without another write slipping in between.
pub async fn find_for_update(db: impl PgExecutor<'_>, id: &ProductId) -> Result<Option<Product>> {
    let product = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products p WHERE p.id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    Ok(product)
}

/// Replaces the details of a product locked by [`find_for_update`], all but its SKU
/// (which never changes: the inventory knows the item by it); one more version.
pub async fn update(
    db: impl PgExecutor<'_>,
    id: &ProductId,
    fields: &ProductFields<'_>,
) -> Result<Product> {
    let updated = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE products AS p
         SET name = $2, description = $3, price_amount = $4, price_currency = $5,
             category = $6, image_url = $7, version = p.version + 1, updated_at = now()
         WHERE p.id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(fields.name)
    .bind(fields.description)
    .bind(fields.price.amount)
    .bind(&fields.price.currency)
    .bind(fields.category)
    .bind(fields.image_url)
    .fetch_one(db)
    .await;
    on_write_constraints(updated)
}

/// Takes a product off sale; one more version.
pub async fn deactivate(db: impl PgExecutor<'_>, id: &ProductId) -> Result<Product> {
    let product = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE products AS p SET active = false, version = p.version + 1, updated_at = now()
         WHERE p.id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok(product)
}

/// The products among `ids` that exist (active or not), in no particular order.
pub async fn find_many(db: impl PgExecutor<'_>, ids: &[ProductId]) -> Result<Vec<Product>> {
    let ids: Vec<&str> = ids.iter().map(ProductId::as_str).collect();
    let products = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM products p WHERE p.id = ANY($1)"
    )))
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(products)
}

/// The orders a listing can have. Each ends with the id, so equal keys (two products
/// at one price) still have one order and a page boundary between them is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best match first (`ts_rank`); the default with `q`, needs `q`.
    Relevance,
    PriceAsc,
    PriceDesc,
    /// Newest first; the default without `q`.
    Newest,
}

/// Where a page starts: the sort key and id of the last product of the page before.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    Rank(f32, ProductId),
    Price(i64, ProductId),
    Created(DateTime<Utc>, ProductId),
}

/// What a listing is narrowed to; `None` is no condition.
#[derive(Debug, Default)]
pub struct Filter {
    /// A `to_tsquery` expression made by `crate::search::prefix_query` (never user
    /// text as such).
    pub tsquery: Option<String>,
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
}

/// A listed product with its rank (0 without a search).
#[derive(Debug, sqlx::FromRow)]
pub struct Ranked {
    #[sqlx(flatten)]
    pub product: Product,
    pub rank: f32,
}

impl Ranked {
    /// The cursor position just after this product, in `sort`.
    pub fn after(&self, sort: Sort) -> After {
        let id = self.product.id.clone();
        match sort {
            Sort::Relevance => After::Rank(self.rank, id),
            Sort::PriceAsc | Sort::PriceDesc => After::Price(self.product.price.amount, id),
            Sort::Newest => After::Created(self.product.created_at, id),
        }
    }
}

/// Up to `limit` active products matching `filter`, in `sort`, after `after`.
/// The statement is assembled from fixed fragments only; every value is bound.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &Filter,
    sort: Sort,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<Ranked>> {
    let rank = if filter.tsquery.is_some() {
        "ts_rank(p.search, to_tsquery('english', $1))"
    } else {
        "0::real"
    };
    let (keyset, order) = match sort {
        Sort::Relevance => (
            format!("({rank}, p.id) < ($6::real, $9::text)"),
            "rank DESC, p.id DESC",
        ),
        Sort::PriceAsc => (
            "(p.price_amount, p.id) > ($7::bigint, $9::text)".to_owned(),
            "p.price_amount ASC, p.id ASC",
        ),
        Sort::PriceDesc => (
            "(p.price_amount, p.id) < ($7::bigint, $9::text)".to_owned(),
            "p.price_amount DESC, p.id DESC",
        ),
        Sort::Newest => (
            "(p.created_at, p.id) < ($8::timestamptz, $9::text)".to_owned(),
            "p.created_at DESC, p.id DESC",
        ),
    };
    let (rank_key, price_key, created_key, id_key) = match after {
        None => (None, None, None, None),
        Some(After::Rank(r, id)) => (Some(*r), None, None, Some(id.as_str())),
        Some(After::Price(p, id)) => (None, Some(*p), None, Some(id.as_str())),
        Some(After::Created(c, id)) => (None, None, Some(*c), Some(id.as_str())),
    };
    let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, {rank} AS rank
         FROM products p LEFT JOIN availability a ON a.sku = p.sku
         WHERE p.active
           AND ($1::text IS NULL OR p.search @@ to_tsquery('english', $1))
           AND ($2::text IS NULL OR p.category = $2)
           AND ($3::bigint IS NULL OR p.price_amount >= $3)
           AND ($4::bigint IS NULL OR p.price_amount <= $4)
           AND ($5::bool IS NULL OR (coalesce(a.available, 0) > 0) = $5)
           AND ($9::text IS NULL OR {keyset})
         ORDER BY {order}
         LIMIT $10"
    )))
    .bind(filter.tsquery.as_deref())
    .bind(filter.category.as_deref())
    .bind(filter.min_price)
    .bind(filter.max_price)
    .bind(filter.in_stock)
    .bind(rank_key)
    .bind(price_key)
    .bind(created_key)
    .bind(id_key)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_anything_else_does_not() {
        let id = ProductId::generate();
        assert_eq!(ProductId::parse(id.as_str()), Some(id.clone()));
        assert!(id.as_str().starts_with("prod_"));
        for bad in [
            "",
            "prod_",
            "01936f0e7c4a7d3e9a516f1b2c3d4e5f",
            "prod_01936F0E7C4A7D3E9A516F1B2C3D4E5F",
            "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5",
            "ord_01936f0e7c4a7d3e9a516f1b2c3d4e5f",
            "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5g",
        ] {
            assert_eq!(ProductId::parse(bad), None, "{bad:?}");
        }
    }
}
