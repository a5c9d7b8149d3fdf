//! The simulated carrier: a periodic job (`carrier` in `app.rs`, every
//! `SHOP_CARRIER__EVERY_MS`) that dispatches shipments `dispatch_after` their creation
//! and delivers them `deliver_after` their dispatch, as a real carrier's scans would
//! arrive. Off unless one of the delays is set (`crate::config::CarrierSettings`).
//!
//! Replicas share the work and never double a step: each batch takes the shipments
//! due `FOR UPDATE SKIP LOCKED` (what another replica, or an admin's request, holds is
//! skipped, not waited for), and the step itself runs under that lock through
//! `crate::lifecycle::step`, which moves a shipment only from the status the step
//! leaves. A row that another replica stepped between this one's snapshot and its
//! lock is re-read by Postgres under the lock, and comes back only if it is due for
//! its *next* step.

use shop_events::Outbox;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::CarrierSettings;
use crate::lifecycle::{self, Step, Stepped};
use crate::shipments::ShipmentId;

/// Shipments stepped per transaction.
const BATCH: i64 = 100;
/// Most shipments stepped in one run, so a huge backlog cannot hold the job (and a
/// shutdown) for long; the next run continues.
const MAX_PER_RUN: usize = 5000;

/// Steps every shipment that is due, a batch per transaction; returns how many moved.
pub async fn run(db: &PgPool, outbox: &Outbox, carrier: &CarrierSettings) -> anyhow::Result<usize> {
    let dispatch_after = carrier.dispatch_after().map(|d| d.as_secs_f64());
    let deliver_after = carrier.deliver_after().map(|d| d.as_secs_f64());
    let mut moved = 0;
    while moved < MAX_PER_RUN {
        let mut tx = db.begin().await?;
        // A delay that is not set is NULL, and so is `now() - NULL`: that branch
        // matches nothing.
        let due: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, status FROM shipments
             WHERE (status = 'CREATED' AND created_at <= now() - make_interval(secs => $1))
                OR (status = 'DISPATCHED' AND dispatched_at <= now() - make_interval(secs => $2))
             ORDER BY coalesce(dispatched_at, created_at)
             LIMIT $3
             FOR UPDATE SKIP LOCKED",
        )
        .bind(dispatch_after)
        .bind(deliver_after)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let taken = due.len();
        for (id, status) in due {
            let step = if status == "CREATED" {
                Step::Dispatch
            } else {
                Step::Deliver
            };
            let id = ShipmentId(id);
            if let Stepped::Moved(_) = lifecycle::step(&mut tx, outbox, id, step, "carrier").await?
            {
                tracing::info!(shipment_id = %id, step = step.as_str(), "carrier step");
                moved += 1;
            }
        }
        tx.commit().await?;
        if (taken as i64) < BATCH {
            break;
        }
    }
    Ok(moved)
}
