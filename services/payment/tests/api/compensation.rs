//! Capture and void through NATS: the state rules, the answers to commands that
//! cannot apply, and the races of the checkout's compensation: a void before the
//! authorize, a void while the processor approves or hangs, and an attempt a stopped
//! replica left behind.

use shop_payment::processor::ChargeState;
use uuid::Uuid;

use crate::helpers::{eventually, spawn_app, spawn_app_with};

const AUTHORIZED: &str = "payments.payment.authorized";
const DECLINED: &str = "payments.payment.declined";
const CAPTURED: &str = "payments.payment.captured";
const VOIDED: &str = "payments.payment.voided";

#[tokio::test]
async fn a_capture_takes_an_authorized_payment_and_is_answered_captured() {
    let app = spawn_app().await;
    let order = app.authorize("tok_visa", None).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;

    app.capture(order).await;
    app.wait_status(order, "CAPTURED").await;
    let answers = app.answers_at_least(order, 2).await;

    assert_eq!(answers[1].0, CAPTURED);
    assert_eq!(answers[1].1["payment_id"], payment.id.to_string());
    assert_eq!(answers[1].1["amount"]["amount"], 1299);
    let charge = app.processor.charge(payment.id).unwrap();
    assert_eq!(charge.state, ChargeState::Captured);
}

#[tokio::test]
async fn a_capture_of_a_declined_payment_is_answered_declined_and_takes_nothing() {
    let app = spawn_app().await;
    let order = app.authorize("tok_chargeDeclined", None).await;
    app.wait_status(order, "DECLINED").await;

    app.capture(order).await;
    let answers = app.answers_at_least(order, 2).await;

    assert_eq!(answers[1].0, DECLINED);
    assert_eq!(answers[1].1["reason"], "card_declined");
    assert_eq!(app.stored(order).await.unwrap().status, "DECLINED");
}

#[tokio::test]
async fn a_void_of_an_authorized_payment_drops_the_hold_and_is_answered_voided_not_refunded() {
    let app = spawn_app().await;
    let order = app.authorize("tok_visa", None).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;

    app.void(order).await;
    app.wait_status(order, "VOIDED").await;
    let answers = app.answers_at_least(order, 2).await;

    assert_eq!(answers[1].0, VOIDED);
    assert_eq!(answers[1].1["refunded"], false);
    assert_eq!(answers[1].1["reason"], "order cancelled: TIMEOUT");
    let charge = app.processor.charge(payment.id).unwrap();
    assert_eq!(charge.state, ChargeState::Released);
    assert!(app.processor.held().is_empty());
}

#[tokio::test]
async fn a_void_of_a_captured_payment_refunds_it_and_is_answered_voided_refunded() {
    let app = spawn_app().await;
    let order = app.authorize("tok_visa", None).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;
    app.capture(order).await;
    app.wait_status(order, "CAPTURED").await;

    app.void(order).await;
    app.wait_status(order, "REFUNDED").await;
    let answers = app.answers_at_least(order, 3).await;

    assert_eq!(answers[2].0, VOIDED);
    assert_eq!(answers[2].1["refunded"], true);
    let charge = app.processor.charge(payment.id).unwrap();
    assert_eq!(charge.state, ChargeState::Refunded);
}

#[tokio::test]
async fn a_capture_after_a_void_takes_nothing_and_is_answered_voided() {
    let app = spawn_app().await;
    let order = app.authorize("tok_visa", None).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;
    app.void(order).await;
    app.wait_status(order, "VOIDED").await;

    app.capture(order).await;
    let answers = app.answers_at_least(order, 3).await;

    assert_eq!(answers[2].0, VOIDED);
    assert_eq!(app.stored(order).await.unwrap().status, "VOIDED");
    let charge = app.processor.charge(payment.id).unwrap();
    assert_eq!(charge.state, ChargeState::Released, "never captured");
}

#[tokio::test]
async fn a_repeated_void_or_capture_changes_nothing_and_is_answered_again() {
    let app = spawn_app().await;
    let order = app.authorize("tok_visa", None).await;
    app.wait_status(order, "AUTHORIZED").await;
    app.capture(order).await;
    app.wait_status(order, "CAPTURED").await;
    app.capture(order).await;
    app.answers_at_least(order, 3).await;
    app.void(order).await;
    app.wait_status(order, "REFUNDED").await;
    app.void(order).await;

    let answers = app.answers_at_least(order, 5).await;
    let subjects: Vec<&str> = answers.iter().map(|(s, _)| s.as_str()).collect();

    assert_eq!(subjects, [AUTHORIZED, CAPTURED, CAPTURED, VOIDED, VOIDED]);
    assert!(answers[3].1["refunded"] == true && answers[4].1["refunded"] == true);
    assert_eq!(app.stored(order).await.unwrap().status, "REFUNDED");
}

#[tokio::test]
async fn a_void_before_any_authorize_makes_the_late_authorize_decline_voided_without_asking_the_processor()
 {
    let app = spawn_app().await;
    let customer = app.customer().await;
    let order = Uuid::now_v7();
    app.void(order).await;
    let tombstone = app.wait_status(order, "VOIDED").await;
    assert_eq!(tombstone.user_id, None, "nothing is known of the payer yet");

    app.publish(crate::helpers::authorize_command(
        order,
        customer.id,
        "tok_visa",
    ))
    .await;
    let answers = app.answers_at_least(order, 2).await;

    assert_eq!(answers[0].0, VOIDED);
    assert_eq!(answers[0].1["refunded"], false);
    assert_eq!(answers[1].0, DECLINED);
    assert_eq!(answers[1].1["reason"], "voided");
    assert_eq!(answers[1].1["payment_id"], tombstone.id.to_string());
    assert_eq!(app.processor.authorizations(), 0);
    let payment = app.stored(order).await.unwrap();
    assert_eq!(payment.status, "VOIDED");
    assert_eq!(payment.user_id, Some(customer.id));
    assert_eq!(
        payment.card_token, None,
        "a token that will never be used is not kept"
    );
}

#[tokio::test]
async fn a_void_during_a_slow_approval_releases_it_and_the_payment_ends_voided() {
    // The processor takes 1.5 s to approve; the void arrives meanwhile.
    let app = spawn_app_with(|s| s.processor.latency_ms = 1_500).await;
    let order = app.authorize("tok_visa", None).await;
    eventually("the call to be in flight", || async {
        app.stored(order).await.is_some_and(|p| p.attempts == 1)
    })
    .await;

    app.void(order).await;
    let payment = app.wait_status(order, "VOIDED").await;
    let answers = app.answers_at_least(order, 1).await;

    assert!(payment.void_requested);
    assert_eq!(app.processor.authorizations(), 1);
    let charge = app.processor.charge(payment.id).expect("it was approved");
    assert_eq!(
        charge.state,
        ChargeState::Released,
        "the approval was released"
    );
    assert!(app.processor.held().is_empty(), "no money left held");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, VOIDED, "never authorized");
    assert_eq!(answers[0].1["refunded"], false);
}

#[tokio::test]
async fn a_void_during_a_hanging_authorization_ends_voided_not_declined() {
    let app = spawn_app().await;
    let order = app.authorize("tok_timeout", None).await;
    eventually("the call to be in flight", || async {
        app.stored(order).await.is_some_and(|p| p.attempts == 1)
    })
    .await;

    app.void(order).await;
    app.wait_status(order, "VOIDED").await;
    let answers = app.answers_at_least(order, 1).await;

    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].0, VOIDED);
    assert_eq!(answers[0].1["reason"], "order cancelled: TIMEOUT");
    assert!(app.processor.held().is_empty());
}

#[tokio::test]
async fn a_capture_for_an_order_without_a_payment_is_dead_lettered() {
    let app = spawn_app().await;
    let order = Uuid::now_v7();

    app.capture(order).await;
    let reasons = app.dead_letter_reasons(1).await;

    assert!(
        reasons[0].contains(&format!("no payment for order {order}")),
        "{reasons:?}"
    );
    assert_eq!(app.payment_count(order).await, 0);
}

#[tokio::test]
async fn an_attempt_left_behind_by_a_stopped_replica_is_made_again_once_its_lease_runs_out() {
    let app = spawn_app().await;
    // As a replica that died mid-call leaves them: one attempt made, its lease over;
    // and one another replica is making right now.
    let (abandoned, in_flight) = (Uuid::now_v7(), Uuid::now_v7());
    for (order, lease) in [(abandoned, "-1 second"), (in_flight, "1 hour")] {
        sqlx::query(
            "INSERT INTO payments.payments
                 (id, order_id, user_id, amount, currency, card_token, status, attempts, lease_until)
             VALUES ($1, $2, $3, 1299, 'EUR', 'tok_visa', 'PENDING', 1, now() + $4::interval)",
        )
        .bind(Uuid::now_v7())
        .bind(order)
        .bind(Uuid::now_v7())
        .bind(lease)
        .execute(app.db.admin_pool())
        .await
        .unwrap();
    }

    let payment = app.wait_status(abandoned, "AUTHORIZED").await;

    assert_eq!(payment.attempts, 2);
    assert_eq!(app.subjects(abandoned).await, [AUTHORIZED]);
    let untouched = app.stored(in_flight).await.unwrap();
    assert_eq!(
        (untouched.status.as_str(), untouched.attempts),
        ("PENDING", 1)
    );
    assert_eq!(app.processor.authorizations(), 1);
}
