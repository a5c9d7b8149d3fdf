//! The `cancelled_orders` table: tombstones of orders cancelled while they had no
//! shipment, so that their confirmation, should it be handled after the cancellation,
//! ships nothing.
//!
//! Why a confirmation can come second: the order service publishes
//! `orders.order.confirmed` before `orders.order.cancelled` for one order (a customer
//! cancels a confirmed order), but the shipping service reads the two subjects
//! through two durable consumers, which keep no order between them: the confirmation
//! may be waiting for a retry, or for its batch, while the cancellation goes through.
//! Most tombstones belong to orders that were never confirmed (out of stock,
//! declined, timed out): cheap, and purged once no redelivery can come.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Remembers that the order was cancelled; a second cancellation changes nothing.
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO cancelled_orders (order_id, reason) VALUES ($1, $2)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The reason the order was cancelled, if it was cancelled before it had a shipment.
pub async fn find(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT reason FROM cancelled_orders WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(conn)
        .await
}

/// Deletes the tombstones older than `kept`; returns how many.
pub async fn purge(db: &PgPool, kept: Duration) -> Result<u64, sqlx::Error> {
    let purged = sqlx::query(
        "DELETE FROM cancelled_orders WHERE cancelled_at < now() - make_interval(secs => $1)",
    )
    .bind(kept.as_secs_f64())
    .execute(db)
    .await?
    .rows_affected();
    Ok(purged)
}
