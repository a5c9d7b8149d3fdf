//! Reservations: stock held for an order until it is committed, released or expires.
//! The tables `reservations` (one row per order id, with its status) and
//! `reservation_lines`; the commands arrive through `crate::consumers`.
//!
//! ```text
//! reserve --> reserved --commit--> committed
//!    |            |----release---> released
//!    |            '----(TTL)-----> expired     (the expiry task, `expire_due`)
//!    |  committed --return--> returned  (a confirmed order cancelled before shipping)
//!    '------> rejected             (some line short: nothing is held)
//! ```
//!
//! - **All or nothing, without deadlocks.** A reservation locks the stock rows of its
//!   lines in SKU order, checks every line, then either reserves every line or none.
//!   Every path that locks several rows (commit, release, expiry) takes the
//!   reservation row first and then the stock rows in SKU order, so two transactions
//!   never wait on each other in a circle.
//! - **Idempotent per order id.** The order id is the key: a command for an order the
//!   inventory has seen changes nothing and publishes the answer that describes the
//!   reservation now (`reserved`, `rejected`, `committed`, `released` or `expired`),
//!   so a checkout that lost the first answer gets it again. The first reserve's
//!   lines win; a later reserve with other lines gets the first one's answer.
//! - **Every command about a known order is answered.** A command that comes too
//!   late or contradicts the state changes nothing (or only what the TTL already
//!   decided) and publishes the answer that describes the reservation now: a commit
//!   after the TTL expires the reservation there and then and is answered `expired`
//!   (the checkout compensates instead of waiting for its deadline); a commit of a
//!   rejected, released or expired reservation repeats that answer; a release of a
//!   committed one is answered `committed` (the stock has left; a return is received
//!   as new stock). Releasing an order never reserved records it as released, so a
//!   reserve arriving late (the commands travel through separate consumers) holds
//!   nothing. Only a commit for an order the inventory never saw is
//!   [`ReservationError::Refused`]: there is nothing to answer about, so the consumer
//!   sends it to the dead-letter stream with the reason, like a malformed command.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use shop_events::contracts::inventory::{
    CommitReservation, Line, ReleaseReservation, ReserveStock, ReturnStock, Shortage,
    StockCommitted, StockExpired, StockRejected, StockReleased, StockReserved, StockReturned,
};
use shop_events::{HandlerError, Outbox};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::sku::Sku;
use crate::stock::{self, Change, Kind};

/// The most units of one line, and of one admin change: more is a typo or an attack.
pub const MAX_QUANTITY: i32 = 1_000_000;
/// The most lines of one order.
pub const MAX_LINES: usize = 100;
/// The longest a reservation may be held.
pub const MAX_TTL_SECS: u32 = 24 * 3600;
/// The longest release reason kept.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    /// The command itself is wrong (no lines, a zero quantity, a bad SKU...).
    #[error("malformed command: {0}")]
    Malformed(String),
    /// The command contradicts the reservation's state.
    #[error("refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Stock(#[from] crate::error::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<ReservationError> for HandlerError {
    fn from(e: ReservationError) -> Self {
        match e {
            ReservationError::Database(e)
            | ReservationError::Stock(crate::error::Error::Database(e)) => e.into(),
            other => HandlerError::Permanent(other.to_string()),
        }
    }
}

type Result<T, E = ReservationError> = std::result::Result<T, E>;

/// Where a reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Reserved,
    Rejected,
    Committed,
    Released,
    Expired,
    Returned,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Reserved => "reserved",
            Status::Rejected => "rejected",
            Status::Committed => "committed",
            Status::Released => "released",
            Status::Expired => "expired",
            Status::Returned => "returned",
        }
    }

    fn parse(raw: &str) -> Result<Self> {
        Ok(match raw {
            "reserved" => Status::Reserved,
            "rejected" => Status::Rejected,
            "committed" => Status::Committed,
            "released" => Status::Released,
            "expired" => Status::Expired,
            "returned" => Status::Returned,
            other => {
                return Err(ReservationError::Refused(format!(
                    "unknown reservation status {other:?}"
                )));
            }
        })
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    order_id: Uuid,
    status: String,
    expires_at: Option<DateTime<Utc>>,
    past_due: bool,
    reason: Option<String>,
    shortages: Option<Json<Vec<Shortage>>>,
}

/// A reservation read under its lock.
struct Reservation {
    order_id: Uuid,
    status: Status,
    expires_at: Option<DateTime<Utc>>,
    past_due: bool,
    reason: Option<String>,
    shortages: Vec<Shortage>,
    /// In SKU order, the order the stock rows are locked in.
    lines: Vec<Line>,
}

fn check_reserve(command: &ReserveStock) -> Result<()> {
    let malformed = |m: String| Err(ReservationError::Malformed(m));
    if command.lines.is_empty() {
        return malformed("no lines".to_owned());
    }
    if command.lines.len() > MAX_LINES {
        return malformed(format!("more than {MAX_LINES} lines"));
    }
    if command.ttl_secs == 0 || command.ttl_secs > MAX_TTL_SECS {
        return malformed(format!("ttl_secs must be 1 to {MAX_TTL_SECS}"));
    }
    let mut seen = HashSet::new();
    for line in &command.lines {
        if let Err(e) = Sku::parse(&line.sku) {
            return malformed(format!("SKU {:?}: {e}", line.sku));
        }
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return malformed(format!(
                "quantity of {} must be 1 to {MAX_QUANTITY}, got {}",
                line.sku, line.quantity
            ));
        }
        if !seen.insert(line.sku.as_str()) {
            return malformed(format!("SKU {} appears on two lines", line.sku));
        }
    }
    Ok(())
}

/// Reserves every line of the order or none, and publishes `stock.reserved` or
/// `stock.rejected` in the same transaction. Returns where the reservation stands.
pub async fn reserve(
    conn: &mut PgConnection,
    outbox: &Outbox,
    command: ReserveStock,
) -> Result<Status> {
    check_reserve(&command)?;
    if let Some(existing) = lock_reservation(conn, command.order_id).await? {
        if existing.status == Status::Reserved && existing.past_due {
            expire(conn, outbox, existing).await?;
            return Ok(Status::Expired);
        }
        answer(conn, outbox, &existing).await?;
        return Ok(existing.status);
    }
    let mut lines = command.lines.clone();
    lines.sort_by(|a, b| a.sku.cmp(&b.sku));
    let mut held = Vec::with_capacity(lines.len());
    let mut short = Vec::new();
    for line in &lines {
        match stock::lock(conn, &line.sku).await? {
            Some(stock) if stock.available >= i64::from(line.quantity) => held.push(stock),
            found => short.push(Shortage {
                sku: line.sku.clone(),
                requested: line.quantity,
                available: found.map_or(0, |s| s.available),
            }),
        }
    }
    if !short.is_empty() {
        insert(conn, command.order_id, Status::Rejected, None, Some(&short)).await?;
        insert_lines(conn, command.order_id, &lines).await?;
        let rejected = StockRejected {
            order_id: command.order_id,
            short,
        };
        outbox.enqueue(conn, rejected).await?;
        return Ok(Status::Rejected);
    }
    let reason = format!("order {}", command.order_id);
    for (line, locked) in lines.iter().zip(&held) {
        let change = Change {
            kind: Kind::Reserve,
            on_hand: 0,
            reserved: i64::from(line.quantity),
            reason: &reason,
            order_id: Some(command.order_id),
        };
        stock::apply(conn, outbox, locked, change).await?;
    }
    let expires_at = insert(
        conn,
        command.order_id,
        Status::Reserved,
        Some(command.ttl_secs),
        None,
    )
    .await?
    .unwrap_or_else(Utc::now);
    insert_lines(conn, command.order_id, &lines).await?;
    let reserved = StockReserved {
        order_id: command.order_id,
        // In SKU order, as every later answer about this order has them.
        lines,
        expires_at,
    };
    outbox.enqueue(conn, reserved).await?;
    Ok(Status::Reserved)
}

/// The reserved stock leaves for good: on hand and reserved both go down.
pub async fn commit(
    conn: &mut PgConnection,
    outbox: &Outbox,
    command: CommitReservation,
) -> Result<Status> {
    let order_id = command.order_id;
    let Some(reservation) = lock_reservation(conn, order_id).await? else {
        return Err(ReservationError::Refused(format!(
            "no reservation for order {order_id}"
        )));
    };
    match reservation.status {
        // Too late: the TTL passed before the commit arrived (the sweeper had not
        // come by yet). Expire it now, as the sweeper would, and say so.
        Status::Reserved if reservation.past_due => {
            expire(conn, outbox, reservation).await?;
            Ok(Status::Expired)
        }
        Status::Reserved => {
            let reason = format!("order {order_id}");
            take_back(conn, outbox, &reservation, Kind::Commit, &reason).await?;
            set_status(conn, order_id, Status::Committed, None).await?;
            let committed = StockCommitted {
                order_id,
                lines: reservation.lines,
            };
            outbox.enqueue(conn, committed).await?;
            Ok(Status::Committed)
        }
        settled => {
            answer(conn, outbox, &reservation).await?;
            Ok(settled)
        }
    }
}

/// Compensation: the reserved stock is available again.
pub async fn release(
    conn: &mut PgConnection,
    outbox: &Outbox,
    command: ReleaseReservation,
) -> Result<Status> {
    let ReleaseReservation { order_id, reason } = command;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ReservationError::Malformed(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let Some(reservation) = lock_reservation(conn, order_id).await? else {
        // Released before it was reserved: remember, so the late reserve holds nothing.
        insert(conn, order_id, Status::Released, None, None).await?;
        set_status(conn, order_id, Status::Released, Some(&reason)).await?;
        let released = StockReleased {
            order_id,
            lines: Vec::new(),
            reason,
        };
        outbox.enqueue(conn, released).await?;
        return Ok(Status::Released);
    };
    match reservation.status {
        Status::Reserved => {
            take_back(conn, outbox, &reservation, Kind::Release, &reason).await?;
            set_status(conn, order_id, Status::Released, Some(&reason)).await?;
            let released = StockReleased {
                order_id,
                lines: reservation.lines,
                reason,
            };
            outbox.enqueue(conn, released).await?;
            Ok(Status::Released)
        }
        // Committed (the stock has left), or holding nothing: say how it stands.
        settled => {
            answer(conn, outbox, &reservation).await?;
            Ok(settled)
        }
    }
}

/// Compensation for a commit: a confirmed order was cancelled before it shipped, so
/// its committed stock goes back on the shelf (`on_hand` up by each line). Any other
/// state is answered as it stands: a reservation still held is released instead (the
/// order's own release may be in flight behind this command), one holding nothing
/// says so. A return for an order never seen is refused, like a commit.
pub async fn return_stock(
    conn: &mut PgConnection,
    outbox: &Outbox,
    command: ReturnStock,
) -> Result<Status> {
    let ReturnStock { order_id, reason } = command;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ReservationError::Malformed(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let Some(reservation) = lock_reservation(conn, order_id).await? else {
        return Err(ReservationError::Refused(format!(
            "no reservation for order {order_id}"
        )));
    };
    match reservation.status {
        Status::Committed => {
            for line in &reservation.lines {
                let locked = stock::lock(conn, &line.sku).await?.ok_or_else(|| {
                    ReservationError::Refused(format!("SKU {} of a reservation is gone", line.sku))
                })?;
                let change = Change {
                    kind: Kind::Return,
                    on_hand: i64::from(line.quantity),
                    reserved: 0,
                    reason: &reason,
                    order_id: Some(order_id),
                };
                stock::apply(conn, outbox, &locked, change).await?;
            }
            set_status(conn, order_id, Status::Returned, Some(&reason)).await?;
            let returned = StockReturned {
                order_id,
                lines: reservation.lines,
                reason,
            };
            outbox.enqueue(conn, returned).await?;
            Ok(Status::Returned)
        }
        Status::Reserved => {
            take_back(conn, outbox, &reservation, Kind::Release, &reason).await?;
            set_status(conn, order_id, Status::Released, Some(&reason)).await?;
            let released = StockReleased {
                order_id,
                lines: reservation.lines,
                reason,
            };
            outbox.enqueue(conn, released).await?;
            Ok(Status::Released)
        }
        settled => {
            answer(conn, outbox, &reservation).await?;
            Ok(settled)
        }
    }
}

/// Expires up to `limit` reservations past their TTL, each in its own transaction,
/// and returns how many. Replicas share the work: a reservation another replica (or
/// a commit) holds is skipped, not waited for.
pub async fn expire_due(db: &PgPool, outbox: &Outbox, limit: usize) -> anyhow::Result<usize> {
    let mut expired = 0;
    while expired < limit {
        let mut tx = db.begin().await?;
        let due: Option<Uuid> = sqlx::query_scalar(
            "SELECT order_id FROM reservations
             WHERE status = 'reserved' AND expires_at <= now()
             ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(order_id) = due else {
            break;
        };
        let reservation = lock_reservation(&mut tx, order_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("reservation {order_id} vanished under its lock"))?;
        expire(&mut tx, outbox, reservation).await?;
        tx.commit().await?;
        tracing::info!(%order_id, "reservation expired");
        expired += 1;
    }
    Ok(expired)
}

/// The periodic job: expire what is due, a batch per run.
pub async fn expiry_job(db: PgPool, outbox: Outbox) -> anyhow::Result<()> {
    let expired = expire_due(&db, &outbox, 500).await?;
    if expired > 0 {
        tracing::debug!(expired, "expired reservations released");
    }
    Ok(())
}

/// Releases a reservation past its TTL and publishes `stock.expired`.
async fn expire(conn: &mut PgConnection, outbox: &Outbox, reservation: Reservation) -> Result<()> {
    let order_id = reservation.order_id;
    let reason = "reservation expired";
    take_back(conn, outbox, &reservation, Kind::Expire, reason).await?;
    set_status(conn, order_id, Status::Expired, None).await?;
    let event = StockExpired {
        order_id,
        lines: reservation.lines,
    };
    outbox.enqueue(conn, event).await?;
    Ok(())
}

/// Lowers `reserved` (and, for a commit, `on_hand`) by each line, in SKU order.
async fn take_back(
    conn: &mut PgConnection,
    outbox: &Outbox,
    reservation: &Reservation,
    kind: Kind,
    reason: &str,
) -> Result<()> {
    for line in &reservation.lines {
        let locked = stock::lock(conn, &line.sku).await?.ok_or_else(|| {
            ReservationError::Refused(format!("SKU {} of a reservation is gone", line.sku))
        })?;
        let quantity = i64::from(line.quantity);
        let change = Change {
            kind,
            on_hand: if kind == Kind::Commit { -quantity } else { 0 },
            reserved: -quantity,
            reason,
            order_id: Some(reservation.order_id),
        };
        stock::apply(conn, outbox, &locked, change).await?;
    }
    Ok(())
}

/// Publishes again what describes the reservation now, changing nothing.
async fn answer(conn: &mut PgConnection, outbox: &Outbox, reservation: &Reservation) -> Result<()> {
    let order_id = reservation.order_id;
    let lines = reservation.lines.clone();
    match reservation.status {
        Status::Reserved => {
            let expires_at = reservation.expires_at.unwrap_or_else(Utc::now);
            let event = StockReserved {
                order_id,
                lines,
                expires_at,
            };
            outbox.enqueue(conn, event).await?
        }
        Status::Rejected => {
            let short = reservation.shortages.clone();
            outbox
                .enqueue(conn, StockRejected { order_id, short })
                .await?
        }
        Status::Committed => {
            outbox
                .enqueue(conn, StockCommitted { order_id, lines })
                .await?
        }
        Status::Released => {
            let reason = reservation.reason.clone().unwrap_or_default();
            let event = StockReleased {
                order_id,
                lines,
                reason,
            };
            outbox.enqueue(conn, event).await?
        }
        Status::Expired => {
            outbox
                .enqueue(conn, StockExpired { order_id, lines })
                .await?
        }
        Status::Returned => {
            let reason = reservation.reason.clone().unwrap_or_default();
            let event = StockReturned {
                order_id,
                lines,
                reason,
            };
            outbox.enqueue(conn, event).await?
        }
    };
    Ok(())
}

async fn lock_reservation(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<Reservation>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT order_id, status, expires_at, coalesce(expires_at <= now(), false) AS past_due,
                reason, shortages
         FROM reservations WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let lines: Vec<(String, i32)> = sqlx::query_as(
        // Byte order, whatever the database's collation: the order `reserve` sorts
        // lines in (Rust's `str` order), so every path locks stock rows in one order.
        "SELECT sku, quantity FROM reservation_lines WHERE order_id = $1 ORDER BY sku COLLATE \"C\"",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Reservation {
        order_id: row.order_id,
        status: Status::parse(&row.status)?,
        expires_at: row.expires_at,
        past_due: row.past_due,
        reason: row.reason,
        shortages: row.shortages.map(|j| j.0).unwrap_or_default(),
        lines: lines
            .into_iter()
            .map(|(sku, quantity)| Line { sku, quantity })
            .collect(),
    }))
}

/// Records the order's reservation; returns its expiry (the database's clock, the
/// one the expiry task compares with).
async fn insert(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: Status,
    ttl_secs: Option<u32>,
    shortages: Option<&[Shortage]>,
) -> Result<Option<DateTime<Utc>>> {
    let expires_at = sqlx::query_scalar(
        "INSERT INTO reservations (order_id, status, expires_at, shortages)
         VALUES ($1, $2, now() + make_interval(secs => $3::double precision), $4)
         RETURNING expires_at",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(ttl_secs.map(f64::from))
    .bind(shortages.map(Json))
    .fetch_one(conn)
    .await?;
    Ok(expires_at)
}

async fn insert_lines(conn: &mut PgConnection, order_id: Uuid, lines: &[Line]) -> Result<()> {
    let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    sqlx::query(
        "INSERT INTO reservation_lines (order_id, sku, quantity)
         SELECT $1, * FROM unnest($2::text[], $3::int[])",
    )
    .bind(order_id)
    .bind(skus)
    .bind(quantities)
    .execute(conn)
    .await?;
    Ok(())
}

async fn set_status(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: Status,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "UPDATE reservations SET status = $2, reason = coalesce($3, reason), updated_at = now()
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(lines: Vec<(&str, i32)>, ttl_secs: u32) -> ReserveStock {
        ReserveStock {
            order_id: Uuid::now_v7(),
            lines: lines
                .into_iter()
                .map(|(sku, quantity)| Line {
                    sku: sku.to_owned(),
                    quantity,
                })
                .collect(),
            ttl_secs,
        }
    }

    #[test]
    fn a_reserve_command_with_no_lines_bad_quantities_or_repeated_skus_is_malformed() {
        assert!(check_reserve(&command(vec![("A", 1), ("B", 2)], 60)).is_ok());
        let malformed = [
            command(vec![], 60),
            command(vec![("A", 0)], 60),
            command(vec![("A", -1)], 60),
            command(vec![("A", MAX_QUANTITY + 1)], 60),
            command(vec![("A", 1), ("A", 2)], 60),
            command(vec![("not a sku", 1)], 60),
            command(vec![("A", 1)], 0),
            command(vec![("A", 1)], MAX_TTL_SECS + 1),
        ];
        for bad in malformed {
            assert!(
                matches!(check_reserve(&bad), Err(ReservationError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
