//! The `payments` table: one row per order, the statements that read and change it,
//! and [`answer`], the event that says how a payment stands. The rules of the
//! commands are in `crate::commands`, the processor calls in `crate::authorizer`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use shop_events::Outbox;
use shop_events::contracts::catalog::Money;
use shop_events::contracts::payments::{
    AuthorizePayment, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided,
};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::id::PaymentId;
use crate::processor::DeclineReason;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded; the processor is being asked (or about to be).
    Pending,
    /// The amount is held on the card.
    Authorized,
    /// Nothing is held: the processor refused, or did not answer in time.
    Declined,
    /// The held amount was taken.
    Captured,
    /// Nothing is held any more, or never was: a hold dropped, a void during the
    /// authorization, or the tombstone of a void that came first.
    Voided,
    /// A captured amount was given back.
    Refunded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Authorized => "AUTHORIZED",
            Status::Declined => "DECLINED",
            Status::Captured => "CAPTURED",
            Status::Voided => "VOIDED",
            Status::Refunded => "REFUNDED",
        }
    }
}

impl TryFrom<String> for Status {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Ok(match raw.as_str() {
            "PENDING" => Status::Pending,
            "AUTHORIZED" => Status::Authorized,
            "DECLINED" => Status::Declined,
            "CAPTURED" => Status::Captured,
            "VOIDED" => Status::Voided,
            "REFUNDED" => Status::Refunded,
            _ => return Err(format!("unknown payment status {raw:?}")),
        })
    }
}

/// A row of `payments`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `None` only on the tombstone of a void that came before any authorize.
    pub user_id: Option<Uuid>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub decline_reason: Option<String>,
    pub void_requested: bool,
    pub void_reason: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub captured_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
}

/// `SELECT` of every column a [`Payment`] has, then the rest of the statement. Never
/// the card token: nothing reads it back but the authorizer's claim.
macro_rules! select_payments {
    ($rest:literal) => {
        concat!(
            "SELECT id, order_id, user_id, amount, currency, status, decline_reason, ",
            "void_requested, void_reason, attempts, created_at, updated_at, authorized_at, ",
            "captured_at, voided_at FROM payments ",
            $rest
        )
    };
}

impl Payment {
    pub fn id(&self) -> PaymentId {
        self.id.into()
    }

    /// Money as the events carry it. Set on every row but a tombstone (a CHECK
    /// constraint), and a tombstone is never authorized or captured.
    pub fn money(&self) -> Money {
        Money {
            amount: self.amount.unwrap_or_default(),
            currency: self.currency.clone().unwrap_or_default(),
        }
    }

    /// A void came before any authorize: nothing is known of the payer yet.
    pub fn is_tombstone(&self) -> bool {
        self.user_id.is_none()
    }

    /// The void came first, and the late authorize was refused.
    pub fn voided_first(&self) -> bool {
        self.status == Status::Voided
            && self.decline_reason.as_deref() == Some(DeclineReason::Voided.as_str())
    }
}

/// The payment of `order_id`, locked for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection, order_id: Uuid) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(select_payments!("WHERE order_id = $1 FOR UPDATE"))
        .bind(order_id)
        .fetch_optional(conn)
        .await
}

/// The payment `id`, locked for the rest of the transaction.
pub async fn lock_id(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(select_payments!("WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A payment the API may show (not a tombstone).
pub async fn find<'c>(db: impl PgExecutor<'c>, id: PaymentId) -> sqlx::Result<Option<Payment>> {
    sqlx::query_as(select_payments!("WHERE id = $1 AND user_id IS NOT NULL"))
        .bind(id.uuid())
        .fetch_optional(db)
        .await
}

/// The payments of an order the API may show, oldest first; only `payer`'s when
/// given (a customer sees their own, an admin everyone's).
pub async fn for_order<'c>(
    db: impl PgExecutor<'c>,
    order_id: Uuid,
    payer: Option<Uuid>,
) -> sqlx::Result<Vec<Payment>> {
    sqlx::query_as(select_payments!(
        "WHERE order_id = $1 AND user_id IS NOT NULL AND ($2::uuid IS NULL OR user_id = $2)
         ORDER BY id"
    ))
    .bind(order_id)
    .bind(payer)
    .fetch_all(db)
    .await
}

/// Records a new payment: `PENDING` with the token, or already `DECLINED` (a token
/// that is not one is declined without asking the processor, and not stored). Does
/// nothing if the order has a payment (another command got there first): `false`.
pub async fn insert(
    conn: &mut PgConnection,
    command: &AuthorizePayment,
    token: Option<&str>,
    declined: Option<DeclineReason>,
) -> sqlx::Result<bool> {
    let status = if declined.is_some() {
        Status::Declined
    } else {
        Status::Pending
    };
    let inserted = sqlx::query(
        "INSERT INTO payments (id, order_id, user_id, amount, currency, card_token, status,
                               decline_reason, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(PaymentId::generate().uuid())
    .bind(command.order_id)
    .bind(command.user_id)
    .bind(command.amount.amount)
    .bind(&command.amount.currency)
    .bind(token)
    .bind(status.as_str())
    .bind(declined.map(DeclineReason::as_str))
    .bind(Json(current_trace_context()))
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records that a void came before any authorize. `false` if the order has a
/// payment by now.
pub async fn insert_tombstone(
    conn: &mut PgConnection,
    order_id: Uuid,
    reason: &str,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO payments (id, order_id, status, void_reason, voided_at)
         VALUES ($1, $2, 'VOIDED', $3, now())
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(PaymentId::generate().uuid())
    .bind(order_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The late authorize of a tombstone: the payer and amount become known, the token
/// is not kept (it will never be used), and the payment stays voided, declined
/// `voided`.
pub async fn refuse_late_authorize(
    conn: &mut PgConnection,
    id: Uuid,
    command: &AuthorizePayment,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE payments SET user_id = $2, amount = $3, currency = $4, decline_reason = $5,
                updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(command.user_id)
    .bind(command.amount.amount)
    .bind(&command.amount.currency)
    .bind(DeclineReason::Voided.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// A change of status (with what comes with it), under the row's lock.
pub enum Change<'a> {
    Authorized {
        code: &'a str,
    },
    Declined {
        reason: DeclineReason,
    },
    Captured,
    /// Nothing held any more; `code` is the approval released, if there was one.
    Voided {
        reason: &'a str,
        code: Option<&'a str>,
    },
    Refunded {
        reason: &'a str,
    },
    /// A void during the authorization: recorded, applied when the processor answers.
    VoidRequested {
        reason: &'a str,
    },
}

pub async fn apply(conn: &mut PgConnection, id: Uuid, change: Change<'_>) -> sqlx::Result<()> {
    let query = match change {
        Change::Authorized { code } => sqlx::query(
            "UPDATE payments SET status = 'AUTHORIZED', authorization_code = $2,
                    authorized_at = now(), lease_until = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(code),
        Change::Declined { reason } => sqlx::query(
            "UPDATE payments SET status = 'DECLINED', decline_reason = $2, lease_until = NULL,
                    updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason.as_str()),
        Change::Captured => sqlx::query(
            "UPDATE payments SET status = 'CAPTURED', captured_at = now(), updated_at = now()
             WHERE id = $1",
        )
        .bind(id),
        Change::Voided { reason, code } => sqlx::query(
            "UPDATE payments SET status = 'VOIDED', void_reason = coalesce(void_reason, $2),
                    authorization_code = coalesce($3, authorization_code), voided_at = now(),
                    lease_until = NULL, updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason)
        .bind(code),
        Change::Refunded { reason } => sqlx::query(
            "UPDATE payments SET status = 'REFUNDED', void_reason = $2, voided_at = now(),
                    updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason),
        Change::VoidRequested { reason } => sqlx::query(
            "UPDATE payments SET void_requested = true, void_reason = $2, updated_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .bind(reason),
    };
    query.execute(conn).await?;
    Ok(())
}

/// Publishes, in the caller's transaction, the event that says how `payment` stands
/// now; nothing while it is `PENDING` (the authorizer's decision will say it).
/// Returns the subject published, if any.
pub async fn answer(
    conn: &mut PgConnection,
    outbox: &Outbox,
    payment: &Payment,
) -> sqlx::Result<Option<&'static str>> {
    use shop_events::Event as _;
    let payment_id = payment.id;
    let order_id = payment.order_id;
    let subject = match payment.status {
        Status::Pending => return Ok(None),
        Status::Authorized => {
            let event = PaymentAuthorized {
                payment_id,
                order_id,
                amount: payment.money(),
            };
            outbox.enqueue(conn, event).await?;
            PaymentAuthorized::TYPE
        }
        Status::Captured => {
            let event = PaymentCaptured {
                payment_id,
                order_id,
                amount: payment.money(),
            };
            outbox.enqueue(conn, event).await?;
            PaymentCaptured::TYPE
        }
        Status::Declined => {
            let reason = payment.decline_reason.clone().unwrap_or_default();
            let event = PaymentDeclined {
                payment_id,
                order_id,
                reason,
            };
            outbox.enqueue(conn, event).await?;
            PaymentDeclined::TYPE
        }
        Status::Voided if payment.voided_first() => {
            let event = PaymentDeclined {
                payment_id,
                order_id,
                reason: DeclineReason::Voided.as_str().to_owned(),
            };
            outbox.enqueue(conn, event).await?;
            PaymentDeclined::TYPE
        }
        Status::Voided | Status::Refunded => {
            let event = PaymentVoided {
                payment_id,
                order_id,
                refunded: payment.status == Status::Refunded,
                reason: payment.void_reason.clone().unwrap_or_default(),
            };
            outbox.enqueue(conn, event).await?;
            PaymentVoided::TYPE
        }
    };
    Ok(Some(subject))
}

/// A processor call the authorizer took on.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub card_token: String,
    /// Which attempt this is: only its own attempt's answer is applied.
    pub attempts: i32,
    /// A void arrived before the call: the processor is not asked at all.
    pub void_requested: bool,
    /// The authorize command's trace context.
    pub trace_context: Json<BTreeMap<String, String>>,
}

/// The current span's W3C context (`traceparent`, `tracestate`), to store.
fn current_trace_context() -> BTreeMap<String, String> {
    let mut context = BTreeMap::new();
    shop_telemetry::inject_context_with(|key, value| {
        context.insert(key.to_owned(), value);
    });
    context
}

/// Claims up to `limit` attempts to make, each for `lease_secs`: new ones, and ones
/// whose lease ran out (the replica that held it stopped). One statement, so its row
/// locks last only as long as it does; replicas skip each other's rows.
pub async fn claim<'c>(
    db: impl PgExecutor<'c>,
    limit: i64,
    lease_secs: f64,
) -> sqlx::Result<Vec<Claimed>> {
    sqlx::query_as(
        "UPDATE payments SET attempts = attempts + 1,
                lease_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id IN (
             SELECT id FROM payments
             WHERE status = 'PENDING' AND (lease_until IS NULL OR lease_until < now())
             ORDER BY created_at LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING id, order_id, amount, currency, card_token, attempts, void_requested, trace_context",
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(db)
    .await
}
