//! Orders: the tables `orders` and `order_lines`, the types the API shows, and the
//! SQL that reads and changes them. An order's row is its checkout saga's state
//! (`crate::saga` moves it on); its lines keep the prices it was sold at.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::history::{self, HistoryEntry};

/// Where an order stands in its saga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Placed; the inventory is asked to reserve the stock.
    Pending,
    /// Stock reserved; the payment service is asked to authorize the amount.
    AwaitingPayment,
    /// Paid and its stock committed: it will be shipped.
    Confirmed,
    Shipped,
    Delivered,
    /// Ended without being fulfilled; `cancel_reason` says why.
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::AwaitingPayment,
        Status::Confirmed,
        Status::Shipped,
        Status::Delivered,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::AwaitingPayment => "AWAITING_PAYMENT",
            Status::Confirmed => "CONFIRMED",
            Status::Shipped => "SHIPPED",
            Status::Delivered => "DELIVERED",
            Status::Cancelled => "CANCELLED",
        }
    }
}

impl FromStr for Status {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown order status {s:?}"))
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CancelReason {
    /// The inventory could not reserve every line.
    OutOfStock,
    /// The card was declined.
    PaymentDeclined,
    /// An answer did not come before the deadline, or the reservation lapsed.
    Timeout,
    /// The customer (or an admin) cancelled it.
    CancelledByCustomer,
}

impl CancelReason {
    pub const ALL: [CancelReason; 4] = [
        CancelReason::OutOfStock,
        CancelReason::PaymentDeclined,
        CancelReason::Timeout,
        CancelReason::CancelledByCustomer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "OUT_OF_STOCK",
            CancelReason::PaymentDeclined => "PAYMENT_DECLINED",
            CancelReason::Timeout => "TIMEOUT",
            CancelReason::CancelledByCustomer => "CANCELLED_BY_CUSTOMER",
        }
    }
}

impl FromStr for CancelReason {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            CancelReason::OutOfStock,
            CancelReason::PaymentDeclined,
            CancelReason::Timeout,
            CancelReason::CancelledByCustomer,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == s)
        .ok_or_else(|| anyhow::anyhow!("unknown cancel reason {s:?}"))
    }
}

/// An amount of money: integer minor units (4999 = 49.99) and an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"amount": 4999, "currency": "EUR"}))]
pub struct Money {
    pub amount: i64,
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

/// Where the parcel goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Ada Lovelace", "line1": "12 St James's Square", "line2": null,
    "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"
}))]
pub struct Address {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(min_length = 1, max_length = 200)]
    pub line1: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub city: String,
    #[schema(min_length = 1, max_length = 20)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 (stored upper case).
    #[schema(pattern = "^[A-Za-z]{2}$", example = "GB")]
    pub country: String,
}

impl From<Address> for shop_events::contracts::orders::Address {
    fn from(a: Address) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// One line as sold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "product_id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f", "sku": "KIT-KETTLE-01",
    "name": "Stainless steel kettle", "quantity": 2,
    "unit_price": {"amount": 4999, "currency": "EUR"},
    "line_total": {"amount": 9998, "currency": "EUR"}
}))]
pub struct Line {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    /// The catalog's price when the order was placed.
    pub unit_price: Money,
    pub line_total: Money,
}

impl From<&Line> for shop_events::contracts::orders::OrderLine {
    fn from(l: &Line) -> Self {
        Self {
            product_id: l.product_id.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.clone().into(),
        }
    }
}

impl From<&Line> for shop_events::contracts::inventory::Line {
    fn from(l: &Line) -> Self {
        Self {
            sku: l.sku.clone(),
            quantity: l.quantity,
        }
    }
}

/// An order, whole: what `GET /api/v1/orders/{id}` and a placement answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f",
    "user_id": "01936f0e-0000-7000-8000-000000000001",
    "status": "CONFIRMED", "cancel_reason": null,
    "lines": [{
        "product_id": "prod_01936f0e7c4a7d3e9a516f1b2c3d4e5f", "sku": "KIT-KETTLE-01",
        "name": "Stainless steel kettle", "quantity": 2,
        "unit_price": {"amount": 4999, "currency": "EUR"},
        "line_total": {"amount": 9998, "currency": "EUR"}
    }],
    "total": {"amount": 9998, "currency": "EUR"},
    "shipping_address": {"name": "Ada Lovelace", "line1": "12 St James's Square",
        "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    "deadline_at": null,
    "created_at": "2026-11-21T12:00:00Z", "updated_at": "2026-11-21T12:00:01Z",
    "history": [
        {"at": "2026-11-21T12:00:00Z", "from": null, "to": "PENDING", "cause": "placement"},
        {"at": "2026-11-21T12:00:00.4Z", "from": "PENDING", "to": "AWAITING_PAYMENT",
         "cause": "inventory.stock.reserved", "event_id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e60"},
        {"at": "2026-11-21T12:00:01Z", "from": "AWAITING_PAYMENT", "to": "CONFIRMED",
         "cause": "payments.payment.authorized", "event_id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e61"}
    ]
}))]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: Status,
    /// Set when `status` is `CANCELLED`.
    pub cancel_reason: Option<CancelReason>,
    pub lines: Vec<Line>,
    pub total: Money,
    pub shipping_address: Address,
    /// While it waits (`PENDING`, `AWAITING_PAYMENT`): when it gives up with `TIMEOUT`.
    pub deadline_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every transition, oldest first, with its time and cause.
    pub history: Vec<HistoryEntry>,
}

/// An order in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderSummary {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: Status,
    pub cancel_reason: Option<CancelReason>,
    pub total: Money,
    /// How many lines it has.
    pub line_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A value this service wrote, read back; anything else is a decoding error (the
/// schema's CHECK constraints make it impossible short of a hand edit).
pub(crate) fn decode<T: FromStr<Err = anyhow::Error>>(raw: &str) -> sqlx::Result<T> {
    raw.parse()
        .map_err(|e: anyhow::Error| sqlx::Error::Decode(e.into()))
}

/// The columns of an order's own row.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    status: String,
    cancel_reason: Option<String>,
    total_amount: i64,
    currency: String,
    card_token: String,
    shipping_address: Json<Address>,
    deadline_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, status, cancel_reason, total_amount, currency, card_token, \
                       shipping_address, deadline_at, created_at, updated_at";

/// An order's row, read under its lock by a saga step.
#[derive(Debug, Clone)]
pub struct Locked {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: Status,
    pub total: Money,
    pub card_token: String,
    pub shipping_address: Address,
}

impl TryFrom<Row> for Locked {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> sqlx::Result<Self> {
        Ok(Self {
            id: row.id,
            user_id: row.user_id,
            status: decode(&row.status)?,
            total: Money {
                amount: row.total_amount,
                currency: row.currency,
            },
            card_token: row.card_token,
            shipping_address: row.shipping_address.0,
        })
    }
}

/// A priced order about to be stored.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Uuid,
    pub user_id: Uuid,
    pub lines: Vec<Line>,
    pub total: Money,
    pub card_token: String,
    pub shipping_address: Address,
}

/// Stores a new order `PENDING`, with its lines, waiting at most `reserve_timeout`;
/// returns when it was created and its deadline.
pub async fn insert(
    conn: &mut PgConnection,
    order: &NewOrder,
    reserve_timeout: Duration,
) -> sqlx::Result<(DateTime<Utc>, DateTime<Utc>)> {
    let (created_at, deadline_at) = sqlx::query_as(
        "INSERT INTO orders (id, user_id, status, total_amount, currency, card_token,
                             shipping_address, deadline_at)
         VALUES ($1, $2, 'PENDING', $3, $4, $5, $6,
                 now() + make_interval(secs => $7::double precision))
         RETURNING created_at, deadline_at",
    )
    .bind(order.id)
    .bind(order.user_id)
    .bind(order.total.amount)
    .bind(&order.total.currency)
    .bind(&order.card_token)
    .bind(Json(&order.shipping_address))
    .bind(reserve_timeout.as_secs_f64())
    .fetch_one(&mut *conn)
    .await?;
    let positions: Vec<i32> = (0..).take(order.lines.len()).collect();
    let product_ids: Vec<&str> = order.lines.iter().map(|l| l.product_id.as_str()).collect();
    let skus: Vec<&str> = order.lines.iter().map(|l| l.sku.as_str()).collect();
    let names: Vec<&str> = order.lines.iter().map(|l| l.name.as_str()).collect();
    let quantities: Vec<i32> = order.lines.iter().map(|l| l.quantity).collect();
    let amounts: Vec<i64> = order.lines.iter().map(|l| l.unit_price.amount).collect();
    sqlx::query(
        "INSERT INTO order_lines (order_id, position, product_id, sku, name, quantity,
                                  unit_amount, currency)
         SELECT $1, p, pid, sku, name, q, a, $8
         FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
              AS l (p, pid, sku, name, q, a)",
    )
    .bind(order.id)
    .bind(positions)
    .bind(product_ids)
    .bind(skus)
    .bind(names)
    .bind(quantities)
    .bind(amounts)
    .bind(&order.total.currency)
    .execute(&mut *conn)
    .await?;
    Ok((created_at, deadline_at))
}

/// The order with its lines and history, if it exists (and, for a customer, is theirs:
/// `owner` set).
pub async fn find(
    conn: &mut PgConnection,
    id: Uuid,
    owner: Option<Uuid>,
) -> sqlx::Result<Option<Order>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)"
    )))
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines = lines(conn, id).await?;
    let history = history::of(conn, id).await?;
    Ok(Some(Order {
        id: row.id,
        user_id: row.user_id,
        status: decode(&row.status)?,
        cancel_reason: row.cancel_reason.as_deref().map(decode).transpose()?,
        lines,
        total: Money {
            amount: row.total_amount,
            currency: row.currency,
        },
        shipping_address: row.shipping_address.0,
        deadline_at: row.deadline_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        history,
    }))
}

/// The order's lines, in the order they were placed.
pub async fn lines(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<Line>> {
    let rows: Vec<(String, String, String, i32, i64, String)> = sqlx::query_as(
        "SELECT product_id, sku, name, quantity, unit_amount, currency
         FROM order_lines WHERE order_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(product_id, sku, name, quantity, unit_amount, currency)| Line {
                product_id,
                sku,
                name,
                quantity,
                line_total: Money {
                    amount: unit_amount * i64::from(quantity),
                    currency: currency.clone(),
                },
                unit_price: Money {
                    amount: unit_amount,
                    currency,
                },
            },
        )
        .collect())
}

/// Locks the order's row for a saga step: two steps of one order (an answer, the
/// deadline job, a cancel request) then run one after the other, and each sees the
/// state the previous one left.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Locked>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Locked::try_from).transpose()
}

/// Up to `limit` orders past their deadline, locked; orders another transaction
/// holds (a replica's deadline job, an answer being handled) are skipped, not waited
/// for: their holder decides, and the next run sees what is still due.
pub async fn lock_overdue(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Locked>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders
         WHERE deadline_at <= now() AND status IN ('PENDING', 'AWAITING_PAYMENT')
         ORDER BY deadline_at LIMIT $1 FOR UPDATE SKIP LOCKED"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Locked::try_from).collect()
}

/// Moves a locked order to `to`; `deadline` is how long it may wait there (only for
/// the waiting states), `reason` set only for `CANCELLED`. Returns how long ago it
/// was placed (for the saga's duration).
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: Status,
    reason: Option<CancelReason>,
    deadline: Option<Duration>,
) -> sqlx::Result<f64> {
    sqlx::query_scalar(
        "UPDATE orders SET status = $2, cancel_reason = $3,
                deadline_at = now() + make_interval(secs => $4::double precision),
                updated_at = now()
         WHERE id = $1
         RETURNING extract(epoch FROM clock_timestamp() - created_at)::double precision",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(reason.map(CancelReason::as_str))
    .bind(deadline.map(|d| d.as_secs_f64()))
    .fetch_one(conn)
    .await
}

/// What a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user_id: Option<Uuid>,
    pub status: Option<Status>,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Uuid,
    user_id: Uuid,
    status: String,
    cancel_reason: Option<String>,
    total_amount: i64,
    currency: String,
    line_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Up to `limit` orders matching `filter`, newest first, after the order `after`
/// (keyset: ids are UUIDv7, so id order is creation order and a total order).
pub async fn list(
    db: &PgPool,
    filter: &Filter,
    after: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<OrderSummary>> {
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "SELECT o.id, o.user_id, o.status, o.cancel_reason, o.total_amount, o.currency,
                (SELECT count(*) FROM order_lines l WHERE l.order_id = o.id) AS line_count,
                o.created_at, o.updated_at
         FROM orders o WHERE true",
    );
    if let Some(user_id) = filter.user_id {
        query.push(" AND o.user_id = ").push_bind(user_id);
    }
    if let Some(status) = filter.status {
        query.push(" AND o.status = ").push_bind(status.as_str());
    }
    if let Some(after) = after {
        query.push(" AND o.id < ").push_bind(after);
    }
    query.push(" ORDER BY o.id DESC LIMIT ").push_bind(limit);
    let rows: Vec<SummaryRow> = query.build_query_as().fetch_all(db).await?;
    rows.into_iter()
        .map(|r| {
            Ok(OrderSummary {
                id: r.id,
                user_id: r.user_id,
                status: decode(&r.status)?,
                cancel_reason: r.cancel_reason.as_deref().map(decode).transpose()?,
                total: Money {
                    amount: r.total_amount,
                    currency: r.currency,
                },
                line_count: r.line_count,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
        })
        .collect()
}

/// How many orders are in each state (the `orders_in_state` gauge).
pub async fn count_by_status(db: &PgPool) -> sqlx::Result<Vec<(Status, i64)>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM orders GROUP BY status")
            .fetch_all(db)
            .await?;
    rows.into_iter()
        .map(|(status, n)| Ok((decode(&status)?, n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons_read_back_what_they_write() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, status.as_str());
        }
        for reason in [
            CancelReason::OutOfStock,
            CancelReason::PaymentDeclined,
            CancelReason::Timeout,
            CancelReason::CancelledByCustomer,
        ] {
            assert_eq!(reason.as_str().parse::<CancelReason>().unwrap(), reason);
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert!("pending".parse::<Status>().is_err());
    }
}
