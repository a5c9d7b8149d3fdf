//! The authorizer: the one place the processor is asked to authorize, outside any
//! transaction. A supervised task of the service (`app.rs`).
//!
//! ```text
//! authorize command:  tx { INSERT payment PENDING (token) ; NOTIFY } -> ack      (milliseconds)
//! authorizer:         claim: UPDATE .. attempts + 1, lease_until .. SKIP LOCKED  (one statement)
//!                     processor.authorize(key = payment id)  <- no transaction, no lock, no connection
//!                     tx { SELECT .. FOR UPDATE ; still PENDING and still my attempt?
//!                          apply + outbox (authorized | declined | voided) }
//! ```
//!
//! Why not call the processor in the command's handler: the consumer's transaction
//! would stay open, holding a pooled connection, for as long as the processor takes
//! (`tok_timeout`: the whole `timeout_ms`), and each hanging call would take one of
//! the consumer's few slots: a handful of hanging cards would stall every checkout.
//! JetStream would not redeliver meanwhile (the consumer sends in-progress acks), so
//! it was never a correctness problem, only a throughput one. Here the command is
//! acked within milliseconds and up to `max_in_flight` calls wait at once, holding
//! nothing.
//!
//! - **Woken** by `NOTIFY payments_authorize` from the command's transaction
//!   (delivered at commit), with a sweep every `sweep_every_ms` for what it was not
//!   told about.
//! - **A lease per attempt** (`timeout_ms` + 5 s): replicas never call the processor
//!   for one payment at once. An attempt whose lease ran out (its replica died
//!   mid-call) is claimed again and the processor asked again under the same
//!   idempotency key, the payment id, so a hold is never made twice.
//! - **Only its own attempt's answer is applied**, and only to a `PENDING` payment.
//! - **A void during the call** (`void_requested`): an approval is released at the
//!   processor first (outside the transaction, then the row is locked again), and the
//!   payment ends `VOIDED`, answered `voided`. A void before the call: the processor
//!   is not asked at all (only told to release the key, if an earlier attempt may
//!   have been approved).
//! - **A timeout is ambiguous**: the processor may have held the money after all. The
//!   authorizer releases the key before declining `processor_timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shop_events::Outbox;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::payments::{self, Change, Claimed, Status};
use crate::processor::{Decision, DeclineReason, Processor};

/// The NOTIFY channel of new attempts and of voids during one.
pub const CHANNEL: &str = "payments_authorize";

/// How much longer than the service's deadline on the call an attempt is owned: time
/// to apply the answer after the call.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Most attempts claimed by one statement.
const CLAIM_BATCH: usize = 100;

/// Wakes the authorizer when the caller's transaction commits.
pub async fn wake(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the processor said, as the payment will record it.
#[derive(Debug, Clone)]
enum Outcome {
    Approved(String),
    Declined(DeclineReason),
    /// A void came before the call: the processor was not asked.
    NotAsked,
}

/// How applying an outcome went.
enum Applied {
    Done(Option<Status>),
    /// An approval meets a void: release it at the processor first.
    ReleaseFirst,
}

/// The task. Cheap to clone (the supervisor restarts it from a clone).
#[derive(Clone)]
pub struct Authorizer {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgPool,
    outbox: Outbox,
    processor: Processor,
}

impl Authorizer {
    pub fn new(db: PgPool, outbox: Outbox, processor: Processor) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                outbox,
                processor,
            }),
        }
    }

    /// Claims and settles attempts until `shutdown`; then lets the calls in flight
    /// finish (each within the deadline), so their leases need not run out.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let settings = self.inner.processor.settings().clone();
        let mut listener = PgListener::connect_with(&self.inner.db).await?;
        listener.listen(CHANNEL).await?;
        let sweep = Duration::from_millis(settings.sweep_every_ms);
        let mut calls = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            self.claim_into(&mut calls, settings.max_in_flight).await;
            tokio::select! {
                () = &mut shutdown => break,
                notification = listener.recv() => {
                    if let Err(e) = notification {
                        // The listener reconnects on the next call; meanwhile the sweep
                        // stands in for the notifications.
                        tracing::warn!(error = %e, "authorizer: listener lost, reconnecting");
                        tokio::time::sleep(sweep).await;
                    }
                }
                // A call ended: room for another.
                Some(_) = calls.join_next() => {}
                () = tokio::time::sleep(sweep) => {}
            }
        }
        while calls.join_next().await.is_some() {}
        Ok(())
    }

    /// Claims as many attempts as there is room for and starts each call.
    async fn claim_into(&self, calls: &mut JoinSet<()>, max_in_flight: usize) {
        let lease = self.lease();
        loop {
            let room = max_in_flight.saturating_sub(calls.len()).min(CLAIM_BATCH);
            if room == 0 {
                return;
            }
            let claimed =
                match payments::claim(&self.inner.db, room as i64, lease.as_secs_f64()).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        // The sweep tries again; calls in flight carry on meanwhile.
                        tracing::warn!(error = %e, "authorizer: claiming attempts failed");
                        return;
                    }
                };
            let full = claimed.len() == room;
            for attempt in claimed {
                let span = tracing::info_span!(
                    "payment.authorize",
                    payment_id = %attempt.id,
                    order_id = %attempt.order_id,
                    attempt = attempt.attempts,
                );
                // The command's trace goes on through the call and the answer.
                let context = attempt.trace_context.0.clone();
                shop_telemetry::set_parent_with(&span, |key| context.get(key).cloned());
                let this = self.clone();
                calls.spawn(async move { this.settle(attempt).await }.instrument(span));
            }
            if !full {
                return;
            }
        }
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.inner.processor.settings().timeout_ms) + LEASE_MARGIN
    }

    /// One attempt: ask the processor, then apply its answer (retrying the database
    /// until the lease runs out; after that the attempt is someone else's to make).
    async fn settle(&self, attempt: Claimed) {
        let lease_ends = Instant::now() + self.lease();
        let outcome = self.ask(&attempt).await;
        let mut released = false;
        let mut delay = Duration::from_millis(100);
        loop {
            match self.apply(&attempt, &outcome, released).await {
                Ok(Applied::Done(status)) => {
                    let status = status.map_or("stale", Status::as_str);
                    tracing::info!(status, "authorization settled");
                    return;
                }
                Ok(Applied::ReleaseFirst) => {
                    self.inner.processor.release(attempt.id);
                    released = true;
                }
                Err(e) if Instant::now() + delay < lease_ends => {
                    tracing::warn!(error = %e, payment_id = %attempt.id, retry_in_ms = delay.as_millis() as u64, "authorizer: applying the answer failed, retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(error = %e, payment_id = %attempt.id, "authorizer: could not apply the answer before the lease ran out; the attempt will be made again");
                    return;
                }
            }
        }
    }

    /// Asks the processor, within the service's deadline.
    async fn ask(&self, attempt: &Claimed) -> Outcome {
        let processor = &self.inner.processor;
        if attempt.void_requested {
            if attempt.attempts > 1 {
                // An earlier attempt's call may have been approved before its replica
                // stopped: drop whatever it may hold.
                processor.release(attempt.id);
            }
            return Outcome::NotAsked;
        }
        let deadline = Duration::from_millis(processor.settings().timeout_ms);
        let call = processor.authorize(
            attempt.id,
            &attempt.card_token,
            attempt.amount,
            &attempt.currency,
        );
        match tokio::time::timeout(deadline, call).await {
            Ok(Ok(Decision::Approved { authorization_code })) => {
                Outcome::Approved(authorization_code)
            }
            Ok(Ok(Decision::Declined(reason))) => Outcome::Declined(reason),
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(payment_id = %attempt.id, deadline_ms = deadline.as_millis() as u64, "the processor did not answer in time");
                // Whatever it did meanwhile, nothing may stay held.
                processor.release(attempt.id);
                Outcome::Declined(DeclineReason::ProcessorTimeout)
            }
        }
    }

    /// Applies the outcome if the payment is still `PENDING` and this is still its
    /// attempt; publishes the answer in the same transaction.
    async fn apply(
        &self,
        attempt: &Claimed,
        outcome: &Outcome,
        released: bool,
    ) -> sqlx::Result<Applied> {
        let mut tx = self.inner.db.begin().await?;
        let Some(payment) = payments::lock_id(&mut tx, attempt.id).await? else {
            return Ok(Applied::Done(None));
        };
        if payment.status != Status::Pending || payment.attempts != attempt.attempts {
            // A later attempt (this one's lease ran out) owns the payment now; it asks
            // under the same key, so the processor gives it this very answer.
            return Ok(Applied::Done(None));
        }
        let change = match (outcome, payment.void_requested) {
            (Outcome::Approved(_), true) if !released => return Ok(Applied::ReleaseFirst),
            (Outcome::Approved(code), true) => Change::Voided {
                reason: payment.void_reason.as_deref().unwrap_or_default(),
                code: Some(code),
            },
            (Outcome::Approved(code), false) => Change::Authorized { code },
            (Outcome::Declined(reason), false) => Change::Declined { reason: *reason },
            (Outcome::Declined(_) | Outcome::NotAsked, _) => Change::Voided {
                reason: payment.void_reason.as_deref().unwrap_or_default(),
                code: None,
            },
        };
        payments::apply(&mut tx, payment.id, change).await?;
        let settled = payments::lock_id(&mut tx, payment.id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        payments::answer(&mut tx, &self.inner.outbox, &settled).await?;
        tx.commit().await?;
        Ok(Applied::Done(Some(settled.status)))
    }
}
