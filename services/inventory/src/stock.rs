//! The `stock` table (one row per SKU: on hand, reserved, available = on hand -
//! reserved) and its ledger, `stock_movements`. Every change goes through [`apply`],
//! which, in the caller's transaction and on a row the caller has locked
//! ([`lock`]), writes the new counts, one ledger row, `inventory.stock.updated` and,
//! when availability falls below the threshold, `inventory.stock.low`.
//!
//! - **Never oversell.** [`apply`] refuses a change that would leave negative stock or
//!   more reserved than on hand, and the table's CHECK constraints refuse it again
//!   should any code path forget.
//! - **Low stock, once per crossing.** `low` records whether availability is below the
//!   threshold; the event goes out only when it turns from false to true. A new SKU
//!   (nothing on hand) starts low, unless its threshold is 0, without an alert: the
//!   alarm is armed once stock
//!   reaches the threshold.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shop_events::Outbox;
use shop_events::contracts::inventory::{StockLow, StockUpdated};
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::sku::Sku;

/// A SKU's stock as an admin sees it.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "sku": "TEE-BLK-M", "on_hand": 12, "reserved": 3, "available": 9,
    "low_stock_threshold": 5, "low_stock": false, "revision": 7,
    "created_at": "2026-11-21T12:00:00Z", "updated_at": "2026-11-21T12:30:00Z"
}))]
pub struct Stock {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`; never negative.
    pub available: i64,
    pub low_stock_threshold: i64,
    /// `available < low_stock_threshold`.
    #[sqlx(rename = "low")]
    pub low_stock: bool,
    /// Bumped by every change.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What anyone may know of a SKU: whether it can be bought.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"sku": "TEE-BLK-M", "available": 9, "in_stock": true, "low_stock": false}))]
pub struct Availability {
    pub sku: String,
    pub available: i64,
    pub in_stock: bool,
    pub low_stock: bool,
}

impl From<Stock> for Availability {
    fn from(stock: Stock) -> Self {
        Self {
            in_stock: stock.available > 0,
            low_stock: stock.low_stock,
            available: stock.available,
            sku: stock.sku,
        }
    }
}

const COLUMNS: &str =
    "sku, on_hand, reserved, available, low_stock_threshold, low, revision, created_at, updated_at";

/// Creates the SKU's record with nothing on hand; `false` if it already existed (the
/// catalog's event redelivered, or the SKU reused), in which case nothing changes.
pub async fn create(
    conn: &mut PgConnection,
    outbox: &Outbox,
    sku: &Sku,
    threshold: i64,
) -> Result<bool> {
    let created: Option<Stock> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO stock (sku, low_stock_threshold, low) VALUES ($1, $2, 0 < $2)
         ON CONFLICT (sku) DO NOTHING RETURNING {COLUMNS}"
    )))
    .bind(sku.as_str())
    .bind(threshold)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(stock) = created else {
        return Ok(false);
    };
    outbox.enqueue(conn, updated(&stock)).await?;
    Ok(true)
}

pub async fn find(db: impl PgExecutor<'_>, sku: &Sku) -> Result<Option<Stock>> {
    let stock = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stock WHERE sku = $1"
    )))
    .bind(sku.as_str())
    .fetch_optional(db)
    .await?;
    Ok(stock)
}

/// Reads the row and locks it until the transaction ends. Callers that lock several
/// rows lock them in SKU order, so two transactions never wait on each other in a
/// circle (a deadlock).
pub async fn lock(conn: &mut PgConnection, sku: &str) -> Result<Option<Stock>> {
    let stock = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stock WHERE sku = $1 FOR UPDATE"
    )))
    .bind(sku)
    .fetch_optional(conn)
    .await?;
    Ok(stock)
}

/// Why stock changed: the `kind` of a ledger row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Receive,
    Adjust,
    Reserve,
    Commit,
    Release,
    Expire,
    Return,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Receive => "receive",
            Kind::Adjust => "adjust",
            Kind::Reserve => "reserve",
            Kind::Commit => "commit",
            Kind::Release => "release",
            Kind::Expire => "expire",
            Kind::Return => "return",
        }
    }
}

/// One change of one SKU's counts.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub kind: Kind,
    pub on_hand: i64,
    pub reserved: i64,
    pub reason: &'a str,
    pub order_id: Option<Uuid>,
}

/// Applies `change` to `locked` (a row [`lock`]ed in this transaction) and returns the
/// new row. Refused with [`Error::InsufficientStock`] if it would leave negative
/// stock or more reserved than on hand.
pub async fn apply(
    conn: &mut PgConnection,
    outbox: &Outbox,
    locked: &Stock,
    change: Change<'_>,
) -> Result<Stock> {
    let on_hand = locked.on_hand + change.on_hand;
    let reserved = locked.reserved + change.reserved;
    if on_hand < 0 || reserved < 0 || reserved > on_hand {
        return Err(Error::InsufficientStock(format!(
            "{} of {}: {} on hand and {} reserved would become {on_hand} on hand and {reserved} reserved",
            change.kind.as_str(),
            locked.sku,
            locked.on_hand,
            locked.reserved,
        )));
    }
    let low = on_hand - reserved < locked.low_stock_threshold;
    let stock: Stock = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE stock SET on_hand = $2, reserved = $3, low = $4, revision = revision + 1,
                updated_at = now()
         WHERE sku = $1 RETURNING {COLUMNS}"
    )))
    .bind(&locked.sku)
    .bind(on_hand)
    .bind(reserved)
    .bind(low)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO stock_movements (sku, delta_on_hand, delta_reserved, kind, reason, order_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&stock.sku)
    .bind(change.on_hand)
    .bind(change.reserved)
    .bind(change.kind.as_str())
    .bind(change.reason)
    .bind(change.order_id)
    .execute(&mut *conn)
    .await?;
    outbox.enqueue(conn, updated(&stock)).await?;
    if low && !locked.low_stock {
        let alert = StockLow {
            sku: stock.sku.clone(),
            available: stock.available,
            threshold: stock.low_stock_threshold,
        };
        outbox.enqueue(conn, alert).await?;
    }
    Ok(stock)
}

fn updated(stock: &Stock) -> StockUpdated {
    StockUpdated {
        sku: stock.sku.clone(),
        on_hand: stock.on_hand,
        reserved: stock.reserved,
        available: stock.available,
        revision: stock.revision,
    }
}

/// Whether the ledger holds a receipt of `sku` with exactly this reason.
pub async fn has_receipt(db: impl PgExecutor<'_>, sku: &Sku, reason: &str) -> Result<bool> {
    let found = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM stock_movements
                        WHERE sku = $1 AND kind = 'receive' AND reason = $2)",
    )
    .bind(sku.as_str())
    .bind(reason)
    .fetch_one(db)
    .await?;
    Ok(found)
}

/// One row of the ledger.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
#[schema(example = json!({
    "id": 42, "sku": "TEE-BLK-M", "delta_on_hand": 0, "delta_reserved": 2, "kind": "reserve",
    "reason": "order 01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f",
    "order_id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f", "at": "2026-11-21T12:00:00Z"
}))]
pub struct Movement {
    pub id: i64,
    pub sku: String,
    pub delta_on_hand: i64,
    pub delta_reserved: i64,
    /// `receive`, `adjust`, `reserve`, `commit`, `release` or `expire`.
    pub kind: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

/// One page of a SKU's ledger, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "items": [{"id": 1, "sku": "TEE-BLK-M", "delta_on_hand": 20, "delta_reserved": 0,
               "kind": "receive", "reason": "delivery 4711", "at": "2026-11-21T12:00:00Z"}],
    "next_after": 1
}))]
pub struct MovementPage {
    pub items: Vec<Movement>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}

/// Up to `limit` movements of `sku` after the movement `after` (ids only grow).
pub async fn movements(
    db: impl PgExecutor<'_>,
    sku: &Sku,
    after: Option<i64>,
    limit: u16,
) -> Result<MovementPage> {
    let limit = usize::from(limit);
    // One more than asked: whether it comes back says whether there is a next page.
    let mut items: Vec<Movement> = sqlx::query_as(
        "SELECT id, sku, delta_on_hand, delta_reserved, kind, reason, order_id, at
         FROM stock_movements WHERE sku = $1 AND ($2::bigint IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
    )
    .bind(sku.as_str())
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await?;
    let next_after = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|m| m.id)
    } else {
        None
    };
    Ok(MovementPage { items, next_after })
}
