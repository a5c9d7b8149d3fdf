//! A **simulated** card processor. It stands where a real acquirer's API (Stripe,
//! Adyen ...) would be, and it is honest about being one: no network, no bank, no real
//! card. It lives in the service's own memory, so what it "holds" is gone when the
//! process stops, and each replica has its own.
//!
//! It follows the common test-token habit:
//!
//! | token | authorize |
//! |---|---|
//! | `tok_visa` | approved: the amount is held, an authorization code returned |
//! | `tok_chargeDeclined` | declined `card_declined` |
//! | `tok_insufficientFunds` | declined `insufficient_funds` |
//! | `tok_timeout` | hangs for `hang_ms`, then fails as a timeout (the service's own deadline, `timeout_ms`, usually cuts it off first): declined `processor_timeout` |
//! | anything else | declined `card_declined`: an unknown token is refused like a card the issuer refuses, so the decline reasons stay the four of the contract |
//!
//! What a real integration needs, and this one keeps: every authorization carries an
//! **idempotency key** (the payment id), so asking again after a crash or a lost
//! answer returns the first answer instead of holding the money twice; a hold can be
//! captured, released (void) or, once captured, refunded, each idempotent too.
//! Capture, release and refund are instant and never fail here; only the
//! authorization can be slow (`latency_ms`) or hang.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The token that approves.
pub const APPROVE: &str = "tok_visa";
/// The token the issuer refuses.
pub const DECLINE: &str = "tok_chargeDeclined";
/// The token without the funds.
pub const INSUFFICIENT_FUNDS: &str = "tok_insufficientFunds";
/// The token whose authorization hangs.
pub const HANG: &str = "tok_timeout";

/// How the simulation behaves, and the service's deadline on it (`SHOP_PROCESSOR__*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessorSettings {
    /// The service's own deadline on an authorization: past it, the payment is
    /// declined `processor_timeout` (and any hold made meanwhile released).
    pub timeout_ms: u64,
    /// How long `tok_timeout` hangs before the processor gives up itself.
    pub hang_ms: u64,
    /// How long every other authorization takes (a network round trip to a real
    /// processor would be tens of milliseconds).
    pub latency_ms: u64,
    /// Authorizations in flight at once, per replica.
    pub max_in_flight: usize,
    /// How often the authorizer looks for attempts it was not told about: a missed
    /// notification, or an attempt a crashed replica left behind.
    pub sweep_every_ms: u64,
}

impl Default for ProcessorSettings {
    fn default() -> Self {
        Self {
            // Longer than the order's payment deadline (15 s by default): the checkout
            // gives up first, cancels with TIMEOUT and voids, which is the story
            // `tok_timeout` tells; this deadline only bounds a caller that never does.
            timeout_ms: 20_000,
            hang_ms: 30_000,
            latency_ms: 0,
            max_in_flight: 256,
            sweep_every_ms: 1_000,
        }
    }
}

/// Why an authorization holds nothing: the `reason` of `payments.payment.declined`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    CardDeclined,
    InsufficientFunds,
    ProcessorTimeout,
    /// A void came before the authorization (the order was cancelled first).
    Voided,
}

impl DeclineReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::CardDeclined => "card_declined",
            DeclineReason::InsufficientFunds => "insufficient_funds",
            DeclineReason::ProcessorTimeout => "processor_timeout",
            DeclineReason::Voided => "voided",
        }
    }
}

/// The processor's answer to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approved { authorization_code: String },
    Declined(DeclineReason),
}

/// The processor did not answer in time: the outcome is unknown (it may have held
/// the money after all), which is why the caller releases the key afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the card processor did not answer in time")]
pub struct Timeout;

/// Where a hold stands at the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeState {
    Held,
    Captured,
    Released,
    Refunded,
}

/// One approved authorization, by idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub authorization_code: String,
    pub amount: i64,
    pub currency: String,
    pub state: ChargeState,
}

/// The simulated processor. Cheap to clone: clones share the same holds.
#[derive(Clone)]
pub struct Processor {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ProcessorSettings,
    charges: Mutex<HashMap<Uuid, Charge>>,
    authorizations: AtomicU64,
}

impl Processor {
    pub fn new(settings: ProcessorSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                charges: Mutex::new(HashMap::new()),
                authorizations: AtomicU64::new(0),
            }),
        }
    }

    /// Asks to hold `amount` on the card behind `token`, under the idempotency `key`:
    /// a second call with the same key gets the first approval back and holds nothing
    /// more. Returns only after the simulated latency (or the hang).
    pub async fn authorize(
        &self,
        key: Uuid,
        token: &str,
        amount: i64,
        currency: &str,
    ) -> Result<Decision, Timeout> {
        self.inner.authorizations.fetch_add(1, Ordering::Relaxed);
        let settings = &self.inner.settings;
        if token == HANG {
            tokio::time::sleep(Duration::from_millis(settings.hang_ms)).await;
            record("authorize", "timeout");
            return Err(Timeout);
        }
        tokio::time::sleep(Duration::from_millis(settings.latency_ms)).await;
        let decision = match token {
            APPROVE => {
                let mut charges = self.charges();
                let charge = charges.entry(key).or_insert_with(|| Charge {
                    authorization_code: format!("sim_auth_{}", Uuid::new_v4().simple()),
                    amount,
                    currency: currency.to_owned(),
                    state: ChargeState::Held,
                });
                Decision::Approved {
                    authorization_code: charge.authorization_code.clone(),
                }
            }
            INSUFFICIENT_FUNDS => Decision::Declined(DeclineReason::InsufficientFunds),
            DECLINE => Decision::Declined(DeclineReason::CardDeclined),
            _ => {
                tracing::info!("simulated processor: unknown card token, declined");
                Decision::Declined(DeclineReason::CardDeclined)
            }
        };
        record(
            "authorize",
            match decision {
                Decision::Approved { .. } => "approved",
                Decision::Declined(_) => "declined",
            },
        );
        Ok(decision)
    }

    /// Takes the held amount. True if the key's charge is captured (now or before).
    pub fn capture(&self, key: Uuid) -> bool {
        self.transition(key, "capture", |state| match state {
            ChargeState::Held | ChargeState::Captured => Some(ChargeState::Captured),
            _ => None,
        })
    }

    /// Drops a hold. True if the key's charge is released (now or before); a key with
    /// no charge has nothing to release, which is what a timed-out authorization
    /// hopes for.
    pub fn release(&self, key: Uuid) -> bool {
        self.transition(key, "release", |state| match state {
            ChargeState::Held | ChargeState::Released => Some(ChargeState::Released),
            _ => None,
        })
    }

    /// Gives a captured amount back. True if the key's charge is refunded.
    pub fn refund(&self, key: Uuid) -> bool {
        self.transition(key, "refund", |state| match state {
            ChargeState::Captured | ChargeState::Refunded => Some(ChargeState::Refunded),
            _ => None,
        })
    }

    /// Authorization requests received, replays included.
    pub fn authorizations(&self) -> u64 {
        self.inner.authorizations.load(Ordering::Relaxed)
    }

    /// The charge made under `key`, if any was approved.
    pub fn charge(&self, key: Uuid) -> Option<Charge> {
        self.charges().get(&key).cloned()
    }

    /// The keys whose money is held right now (approved, neither captured nor released).
    pub fn held(&self) -> Vec<Uuid> {
        self.charges()
            .iter()
            .filter(|(_, c)| c.state == ChargeState::Held)
            .map(|(key, _)| *key)
            .collect()
    }

    pub fn settings(&self) -> &ProcessorSettings {
        &self.inner.settings
    }

    fn transition(
        &self,
        key: Uuid,
        operation: &'static str,
        next: impl FnOnce(ChargeState) -> Option<ChargeState>,
    ) -> bool {
        let mut charges = self.charges();
        let done = match charges.get_mut(&key) {
            Some(charge) => match next(charge.state) {
                Some(state) => {
                    charge.state = state;
                    true
                }
                None => false,
            },
            None => false,
        };
        record(operation, if done { "done" } else { "nothing" });
        done
    }

    fn charges(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Charge>> {
        // A panic while holding the lock leaves a map that is still consistent: every
        // change above is a single assignment.
        self.inner
            .charges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `payment_processor_calls_total{operation, outcome}`.
fn record(operation: &'static str, outcome: &'static str) {
    metrics::counter!("payment_processor_calls_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Processor {
        Processor::new(ProcessorSettings {
            hang_ms: 20,
            ..ProcessorSettings::default()
        })
    }

    #[tokio::test]
    async fn each_test_token_gets_its_documented_answer() {
        let processor = quick();
        let approved = processor
            .authorize(Uuid::now_v7(), APPROVE, 1299, "EUR")
            .await;
        assert!(matches!(approved, Ok(Decision::Approved { .. })));
        for (token, reason) in [
            (DECLINE, DeclineReason::CardDeclined),
            (INSUFFICIENT_FUNDS, DeclineReason::InsufficientFunds),
            ("tok_unknown", DeclineReason::CardDeclined),
            ("", DeclineReason::CardDeclined),
        ] {
            let answer = processor
                .authorize(Uuid::now_v7(), token, 1299, "EUR")
                .await;
            assert_eq!(answer, Ok(Decision::Declined(reason)), "{token:?}");
        }
        let hung = processor.authorize(Uuid::now_v7(), HANG, 1299, "EUR").await;
        assert_eq!(hung, Err(Timeout));
        assert_eq!(processor.authorizations(), 6);
    }

    #[tokio::test]
    async fn the_same_key_twice_holds_the_money_once_with_one_code() {
        let processor = quick();
        let key = Uuid::now_v7();
        let first = processor.authorize(key, APPROVE, 500, "EUR").await;
        let second = processor.authorize(key, APPROVE, 500, "EUR").await;
        assert_eq!(first, second);
        assert_eq!(processor.held(), vec![key]);
    }

    #[tokio::test]
    async fn a_hold_is_captured_then_refunded_or_released_and_each_step_is_idempotent() {
        let processor = quick();
        let (kept, dropped) = (Uuid::now_v7(), Uuid::now_v7());
        for key in [kept, dropped] {
            processor.authorize(key, APPROVE, 500, "EUR").await.unwrap();
        }
        assert!(processor.capture(kept) && processor.capture(kept));
        assert!(
            !processor.release(kept),
            "a capture is refunded, not released"
        );
        assert!(processor.refund(kept) && processor.refund(kept));
        assert!(processor.release(dropped) && processor.release(dropped));
        assert!(
            !processor.capture(dropped),
            "a released hold cannot be captured"
        );
        assert!(processor.held().is_empty());
        assert!(!processor.release(Uuid::now_v7()), "nothing to release");
    }
}
