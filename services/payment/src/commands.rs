//! The rules of the three commands the checkout sends (`payments.payment.authorize`,
//! `.capture`, `.void`), each applied in the consumer's transaction with the row of
//! the order's payment locked `FOR UPDATE`, and answered through the outbox in that
//! same transaction.
//!
//! - **Idempotent per order id**: one payment per order (a unique key). A command
//!   about an order with a payment changes nothing it should not and is answered
//!   with the event that says how the payment stands (`payments::answer`), so a
//!   checkout that lost an answer gets it again. The first authorize's amount and
//!   token win.
//! - **Authorize never calls the processor here.** It records the attempt
//!   (`PENDING`, with the token) and wakes the authorizer (`crate::authorizer`),
//!   which calls the processor outside any transaction and answers `authorized` or
//!   `declined`. A repeated authorize while the call is in flight changes nothing and
//!   publishes nothing: the decision, when it comes, is the answer. A token that is
//!   not a token (`tok_...`; say, a card number pasted by mistake) is not stored and
//!   is declined `card_declined` at once.
//! - **Capture** only from `AUTHORIZED`. A capture of a declined, voided, refunded or
//!   captured payment is answered with how it stands (no error, no retry loop); one
//!   for an order with no payment is dead-lettered (nothing to answer about), and one
//!   while the authorization is still `PENDING` is retried (the saga never sends it
//!   then: it captures after `authorized`).
//! - **Void**: `AUTHORIZED` -> `VOIDED` (the hold dropped, `refunded: false`);
//!   `CAPTURED` -> `REFUNDED` (`refunded: true`); `PENDING` -> the void is recorded
//!   and applied when the processor answers (an approval is released first: money is
//!   never left held); no payment yet -> a `VOIDED` tombstone, so a late authorize is
//!   declined `voided`; anything else is answered as it stands.
//!
//! The processor's capture, release and refund are instant in the simulation, so
//! they are called under the row lock; a real processor's would go through the same
//! record, call, apply steps as the authorization.

use shop_events::contracts::payments::{AuthorizePayment, CapturePayment, VoidPayment};
use shop_events::{HandlerError, Outbox};
use sqlx::PgConnection;

use crate::authorizer;
use crate::payments::{self, Change, Payment, Status};
use crate::processor::{DeclineReason, Processor};

/// The longest void reason kept.
pub const MAX_REASON_CHARS: usize = 500;
/// The longest card token taken.
pub const MAX_TOKEN_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The command itself is wrong (a zero amount, a bad currency ...).
    #[error("malformed command: {0}")]
    Malformed(String),
    /// There is nothing to apply it to.
    #[error("refused: {0}")]
    Refused(String),
    /// Too early: worth trying again shortly.
    #[error("not yet: {0}")]
    NotYet(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<CommandError> for HandlerError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Database(e) => e.into(),
            CommandError::NotYet(_) => HandlerError::Transient(e.into()),
            other => HandlerError::Permanent(other.to_string()),
        }
    }
}

type Result<T, E = CommandError> = std::result::Result<T, E>;

/// A card token as the processor's tokens look: `tok_` and up to 60 letters, digits
/// or underscores. Anything else (a card number above all) is never stored.
pub fn is_token(raw: &str) -> bool {
    raw.len() <= MAX_TOKEN_CHARS
        && raw.strip_prefix("tok_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn check_authorize(command: &AuthorizePayment) -> Result<()> {
    if command.amount.amount <= 0 {
        return Err(CommandError::Malformed(format!(
            "amount must be positive, got {}",
            command.amount.amount
        )));
    }
    let currency = &command.amount.currency;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(CommandError::Malformed(format!(
            "currency must be three upper-case letters (ISO 4217), got {currency:?}"
        )));
    }
    Ok(())
}

/// Records the attempt (or answers how the order's payment stands).
pub async fn authorize(
    conn: &mut PgConnection,
    outbox: &Outbox,
    command: AuthorizePayment,
) -> Result<Status> {
    check_authorize(&command)?;
    let mut existing = payments::lock(conn, command.order_id).await?;
    if existing.is_none() {
        let token = is_token(&command.card_token).then_some(command.card_token.as_str());
        let declined = token.is_none().then_some(DeclineReason::CardDeclined);
        if payments::insert(conn, &command, token, declined).await? {
            let payment = locked(conn, &command.order_id).await?;
            if payment.status == Status::Pending {
                authorizer::wake(conn).await?;
            } else {
                payments::answer(conn, outbox, &payment).await?;
            }
            return Ok(payment.status);
        }
        // Another command for the order committed first: go by what it recorded.
        existing = payments::lock(conn, command.order_id).await?;
    }
    let mut payment = existing.ok_or_else(|| {
        CommandError::Refused(format!("payment of order {} vanished", command.order_id))
    })?;
    if payment.is_tombstone() {
        payments::refuse_late_authorize(conn, payment.id, &command).await?;
        payment = locked(conn, &command.order_id).await?;
    }
    payments::answer(conn, outbox, &payment).await?;
    Ok(payment.status)
}

/// Takes the held amount.
pub async fn capture(
    conn: &mut PgConnection,
    outbox: &Outbox,
    processor: &Processor,
    command: CapturePayment,
) -> Result<Status> {
    let order_id = command.order_id;
    let Some(payment) = payments::lock(conn, order_id).await? else {
        return Err(CommandError::Refused(format!(
            "no payment for order {order_id}"
        )));
    };
    match payment.status {
        Status::Authorized => {
            if !processor.capture(payment.id) {
                forgotten(&payment, "capture");
            }
            payments::apply(conn, payment.id, Change::Captured).await?;
            let captured = locked(conn, &order_id).await?;
            payments::answer(conn, outbox, &captured).await?;
            Ok(Status::Captured)
        }
        Status::Pending => Err(CommandError::NotYet(format!(
            "the authorization of order {order_id} is still in progress"
        ))),
        settled => {
            payments::answer(conn, outbox, &payment).await?;
            Ok(settled)
        }
    }
}

/// Drops the hold, refunds a capture, or makes sure nothing will be held.
pub async fn void(
    conn: &mut PgConnection,
    outbox: &Outbox,
    processor: &Processor,
    command: VoidPayment,
) -> Result<Status> {
    let VoidPayment { order_id, reason } = command;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(CommandError::Malformed(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let mut existing = payments::lock(conn, order_id).await?;
    if existing.is_none() {
        if payments::insert_tombstone(conn, order_id, &reason).await? {
            let tombstone = locked(conn, &order_id).await?;
            payments::answer(conn, outbox, &tombstone).await?;
            return Ok(Status::Voided);
        }
        existing = payments::lock(conn, order_id).await?;
    }
    let payment = existing
        .ok_or_else(|| CommandError::Refused(format!("payment of order {order_id} vanished")))?;
    let change = match payment.status {
        Status::Pending => {
            if !payment.void_requested {
                let change = Change::VoidRequested { reason: &reason };
                payments::apply(conn, payment.id, change).await?;
                // The call may not have started: the authorizer then skips it.
                authorizer::wake(conn).await?;
            }
            return Ok(Status::Pending);
        }
        Status::Authorized => {
            if !processor.release(payment.id) {
                forgotten(&payment, "release");
            }
            Change::Voided {
                reason: &reason,
                code: None,
            }
        }
        Status::Captured => {
            if !processor.refund(payment.id) {
                forgotten(&payment, "refund");
            }
            Change::Refunded { reason: &reason }
        }
        settled => {
            payments::answer(conn, outbox, &payment).await?;
            return Ok(settled);
        }
    };
    payments::apply(conn, payment.id, change).await?;
    let changed = locked(conn, &order_id).await?;
    payments::answer(conn, outbox, &changed).await?;
    Ok(changed.status)
}

/// The order's payment, which this transaction knows exists.
async fn locked(conn: &mut PgConnection, order_id: &uuid::Uuid) -> Result<Payment> {
    payments::lock(conn, *order_id)
        .await?
        .ok_or_else(|| CommandError::Refused(format!("payment of order {order_id} vanished")))
}

/// The simulated processor keeps its holds in memory: after a restart it knows
/// nothing of holds made before. The database is the record; say so and go on.
fn forgotten(payment: &Payment, operation: &str) {
    tracing::warn!(
        payment_id = %payment.id,
        operation,
        "the simulated processor has no record of this hold (it keeps them in memory; \
         the process restarted since): the payment's own record decides"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_events::contracts::catalog::Money;
    use uuid::Uuid;

    fn command(amount: i64, currency: &str) -> AuthorizePayment {
        AuthorizePayment {
            order_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            amount: Money {
                amount,
                currency: currency.to_owned(),
            },
            card_token: "tok_visa".to_owned(),
        }
    }

    #[test]
    fn only_tok_tokens_are_tokens_and_a_card_number_never_is() {
        for token in ["tok_visa", "tok_chargeDeclined", "tok_timeout", "tok_a_1"] {
            assert!(is_token(token), "{token}");
        }
        for not in [
            "",
            "tok_",
            "4242424242424242",
            "4242 4242 4242 4242",
            "tok_4242 4242",
            "visa",
            &format!("tok_{}", "a".repeat(61)),
        ] {
            assert!(!is_token(not), "{not:?}");
        }
    }

    #[test]
    fn an_authorize_without_a_positive_amount_or_an_iso_currency_is_malformed() {
        assert!(check_authorize(&command(1299, "EUR")).is_ok());
        for bad in [
            command(0, "EUR"),
            command(-5, "EUR"),
            command(1299, "eur"),
            command(1299, "EURO"),
            command(1299, ""),
        ] {
            assert!(
                matches!(check_authorize(&bad), Err(CommandError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
