//! An order's history: the table `order_history`, one row per saga transition with its
//! time and cause (the event type and id, or `placement`, `deadline`,
//! `cancel-request`), written in the transaction of the transition. Events recorded
//! without a transition (a shipment created, a late answer compensated again) are rows
//! whose `from` and `to` are the same state.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::orders::{Status, decode};

/// What moved an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The event type (`inventory.stock.reserved`) or what happened (`placement`,
    /// `deadline`, `cancel-request`).
    pub kind: String,
    /// The id of the causing event, if an event.
    pub event_id: Option<Uuid>,
    /// Anything worth knowing later (a decline's reason, a tracking number).
    pub detail: Option<String>,
}

impl Cause {
    /// Not an event: the placement, the deadline job, a cancel request.
    pub fn local(kind: &str, detail: Option<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            event_id: None,
            detail,
        }
    }

    /// An event of type `kind` with id `event_id`.
    pub fn event(kind: &str, event_id: Uuid, detail: Option<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            event_id: Some(event_id),
            detail,
        }
    }
}

/// One row of an order's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `null` for the placement.
    pub from: Option<Status>,
    pub to: Status,
    /// The event type that caused it, or `placement`, `deadline`, `cancel-request`.
    pub cause: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Records a transition (or, with `from == to`, an event without one); returns the
/// entry as stored.
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    from: Option<Status>,
    to: Status,
    cause: &Cause,
) -> sqlx::Result<HistoryEntry> {
    let at = sqlx::query_scalar(
        "INSERT INTO order_history (order_id, from_status, to_status, cause, event_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING at",
    )
    .bind(order_id)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(&cause.kind)
    .bind(cause.event_id)
    .bind(&cause.detail)
    .fetch_one(conn)
    .await?;
    Ok(HistoryEntry {
        at,
        from,
        to,
        cause: cause.kind.clone(),
        event_id: cause.event_id,
        detail: cause.detail.clone(),
    })
}

/// The order's history, oldest first.
pub async fn of(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Vec<HistoryEntry>> {
    type Row = (
        DateTime<Utc>,
        Option<String>,
        String,
        String,
        Option<Uuid>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT at, from_status, to_status, cause, event_id, detail
         FROM order_history WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(at, from, to, cause, event_id, detail)| {
            Ok(HistoryEntry {
                at,
                from: from.as_deref().map(decode).transpose()?,
                to: decode(&to)?,
                cause,
                event_id,
                detail,
            })
        })
        .collect()
}
