//! The `shipments` table (one row per confirmed order: its tracking number, address,
//! owner, status and the time it reached each status) and `shipment_history` (every
//! status it took, when and why). This module reads and writes rows; the rules of
//! moving between statuses, and the events that go with each move, are in
//! `crate::lifecycle`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_events::contracts::orders;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::tracking::TrackingNumber;

/// A shipment's id: a UUIDv7, as the `shipping.shipment.*` events carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct ShipmentId(pub Uuid);

impl ShipmentId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::try_parse(raw).ok().map(Self)
    }
}

impl fmt::Display for ShipmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a shipment stands.
///
/// ```text
/// CREATED --dispatch--> DISPATCHED --deliver--> DELIVERED
///    '--(order cancelled)--> CANCELLED
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Created,
    Dispatched,
    Delivered,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Dispatched => "DISPATCHED",
            Status::Delivered => "DELIVERED",
            Status::Cancelled => "CANCELLED",
        }
    }

    fn parse(raw: &str) -> Result<Self, sqlx::Error> {
        Ok(match raw {
            "CREATED" => Status::Created,
            "DISPATCHED" => Status::Dispatched,
            "DELIVERED" => Status::Delivered,
            "CANCELLED" => Status::Cancelled,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown shipment status {other:?}").into(),
                ));
            }
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the parcel goes: the shipping service's copy of the address the order was
/// confirmed with (`orders.order.confirmed`), kept as it was then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Ada Lovelace", "line1": "12 St James's Square", "line2": null,
    "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"
}))]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
}

impl From<orders::Address> for Address {
    fn from(a: orders::Address) -> Self {
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

/// One status a shipment took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "DISPATCHED", "at": "2026-11-21T14:00:00Z", "cause": "carrier"}))]
pub struct HistoryEntry {
    pub status: Status,
    pub at: DateTime<Utc>,
    /// What moved it: `order confirmed`, `admin <user id>`, `carrier`,
    /// `order cancelled (<reason>)`.
    pub cause: String,
}

/// A shipment as its owner and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "01936f0e-7c4a-7d3e-9a51-6f1b2c3d4e5f",
    "order_id": "01936f0e-7c4a-7d3e-9a51-000000000010",
    "tracking_number": "SHP7K2M9Q4X8Z",
    "status": "DISPATCHED",
    "address": {"name": "Ada Lovelace", "line1": "12 St James's Square", "line2": null,
                "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    "created_at": "2026-11-21T12:00:00Z",
    "dispatched_at": "2026-11-21T14:00:00Z",
    "delivered_at": null,
    "cancelled_at": null,
    "history": [
        {"status": "CREATED", "at": "2026-11-21T12:00:00Z", "cause": "order confirmed"},
        {"status": "DISPATCHED", "at": "2026-11-21T14:00:00Z", "cause": "carrier"}
    ]
}))]
pub struct Shipment {
    #[schema(value_type = Uuid)]
    pub id: ShipmentId,
    pub order_id: Uuid,
    /// `SHP` and 10 upper-case letters or digits.
    #[schema(value_type = String)]
    pub tracking_number: TrackingNumber,
    pub status: Status,
    pub address: Address,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Every status it took, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The customer who ordered it: who may read it besides admins.
    #[serde(skip)]
    pub user_id: Uuid,
}

/// A row, its history included.
#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    order_id: Uuid,
    user_id: Uuid,
    tracking_number: String,
    status: String,
    address: Json<Address>,
    created_at: DateTime<Utc>,
    dispatched_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    history: Json<Vec<HistoryEntry>>,
}

impl TryFrom<Row> for Shipment {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, sqlx::Error> {
        let tracking_number = TrackingNumber::parse(&row.tracking_number).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("malformed tracking number {:?}", row.tracking_number).into(),
            )
        })?;
        Ok(Shipment {
            id: ShipmentId(row.id),
            order_id: row.order_id,
            tracking_number,
            status: Status::parse(&row.status)?,
            address: row.address.0,
            created_at: row.created_at,
            dispatched_at: row.dispatched_at,
            delivered_at: row.delivered_at,
            cancelled_at: row.cancelled_at,
            history: row.history.0,
            user_id: row.user_id,
        })
    }
}

/// A shipment's columns and its history, read by one statement (so in one snapshot:
/// the history never shows a step the status has not reached).
const COLUMNS: &str = "s.id, s.order_id, s.user_id, s.tracking_number, s.status, s.address, \
    s.created_at, s.dispatched_at, s.delivered_at, s.cancelled_at, \
    coalesce((SELECT json_agg(json_build_object('status', h.status, 'at', h.at, 'cause', h.cause) ORDER BY h.id) \
              FROM shipment_history h WHERE h.shipment_id = s.id), '[]') AS history";

/// What a new shipment is made of.
pub struct NewShipment<'a> {
    pub id: ShipmentId,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub tracking_number: &'a TrackingNumber,
    pub address: &'a Address,
}

/// Inserts the shipment `CREATED`, unless a row already holds its order id or its
/// tracking number: `false` then, and nothing is written. `ON CONFLICT DO NOTHING`
/// rather than catching the violation, because a failed statement would abort the
/// caller's transaction (a consumer's, possibly shared by a batch of events).
pub async fn insert(conn: &mut PgConnection, new: &NewShipment<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO shipments (id, order_id, user_id, tracking_number, status, address)
         VALUES ($1, $2, $3, $4, 'CREATED', $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(new.id)
    .bind(new.order_id)
    .bind(new.user_id)
    .bind(new.tracking_number.as_str())
    .bind(Json(new.address))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether the order has a shipment, whatever its status.
pub async fn order_has_shipment(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM shipments WHERE order_id = $1)")
        .bind(order_id)
        .fetch_one(conn)
        .await
}

/// Reads the shipment and locks it until the transaction ends: every change of a
/// shipment's status is made under this lock, so two changes (an admin's step, the
/// carrier's, an order's cancellation) never both apply to the status they read.
pub async fn lock(
    conn: &mut PgConnection,
    id: ShipmentId,
) -> Result<Option<Shipment>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shipments s WHERE s.id = $1 FOR UPDATE OF s"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Shipment::try_from).transpose()
}

/// As [`lock`], by order id.
pub async fn lock_by_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Shipment>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shipments s WHERE s.order_id = $1 FOR UPDATE OF s"
    )))
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    row.map(Shipment::try_from).transpose()
}

pub async fn find(
    db: impl PgExecutor<'_>,
    id: ShipmentId,
) -> Result<Option<Shipment>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shipments s WHERE s.id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(Shipment::try_from).transpose()
}

/// Moves a locked shipment to `status`, stamping that status's time, and records the
/// step in its history, all at the transaction's time.
pub async fn set_status(
    conn: &mut PgConnection,
    id: ShipmentId,
    status: Status,
    cause: &str,
    cancel_reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    let stamp = match status {
        Status::Created => "created_at",
        Status::Dispatched => "dispatched_at",
        Status::Delivered => "delivered_at",
        Status::Cancelled => "cancelled_at",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE shipments SET status = $2, {stamp} = now(), cancel_reason = coalesce($3, cancel_reason)
         WHERE id = $1"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(cancel_reason)
    .execute(&mut *conn)
    .await?;
    record_history(conn, id, status, cause).await
}

/// One line of a shipment's history, at the transaction's time (the time its status
/// column got).
pub async fn record_history(
    conn: &mut PgConnection,
    id: ShipmentId,
    status: Status,
    cause: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO shipment_history (shipment_id, status, cause) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(status.as_str())
        .bind(cause)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whose shipments a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// One customer's.
    Owner(Uuid),
    /// Everyone's (an admin).
    All,
}

/// The position after the last shipment of a page: newest first, ties on the time
/// split by the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub created_at: DateTime<Utc>,
    pub id: ShipmentId,
}

impl Shipment {
    pub fn after(&self) -> After {
        After {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Shipments in `scope` (of one order, if `order_id` is given), newest first, after
/// `after`, at most `limit`, each with its history.
pub async fn list(
    db: impl PgExecutor<'_>,
    scope: Scope,
    order_id: Option<Uuid>,
    after: Option<After>,
    limit: i64,
) -> Result<Vec<Shipment>, sqlx::Error> {
    // One statement per scope, so the planner can use the index that fits it.
    let (owner, scope_filter) = match scope {
        Scope::Owner(user_id) => (Some(user_id), "s.user_id = $1"),
        Scope::All => (None, "$1::uuid IS NULL"),
    };
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM shipments s
         WHERE {scope_filter}
           AND ($2::uuid IS NULL OR s.order_id = $2)
           AND ($3::timestamptz IS NULL OR (s.created_at, s.id) < ($3, $4::uuid))
         ORDER BY s.created_at DESC, s.id DESC
         LIMIT $5"
    )))
    .bind(owner)
    .bind(order_id)
    .bind(after.map(|a| a.created_at))
    .bind(after.map(|a| a.id))
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(Shipment::try_from).collect()
}
