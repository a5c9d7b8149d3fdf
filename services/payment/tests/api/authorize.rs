//! Authorize commands through NATS: each card token's outcome, idempotency per order
//! (repeated and racing commands), the processor called outside the command's
//! transaction (no redelivery however long it hangs), and malformed commands.

use std::time::{Duration, Instant};

use shop_events::contracts::catalog::Money;
use shop_events::contracts::payments::AuthorizePayment;
use shop_payment::consumers::authorize::CONSUMER;
use uuid::Uuid;

use crate::helpers::{authorize_command, spawn_app, spawn_app_with};

const AUTHORIZED: &str = "payments.payment.authorized";
const DECLINED: &str = "payments.payment.declined";

#[tokio::test]
async fn tok_visa_is_authorized_and_the_amount_is_held_at_the_processor() {
    let app = spawn_app().await;
    let order = app.authorize("tok_visa", None).await;

    let payment = app.wait_status(order, "AUTHORIZED").await;
    let answers = app.answers_at_least(order, 1).await;

    assert_eq!(answers.len(), 1);
    let (subject, data) = &answers[0];
    assert_eq!(subject, AUTHORIZED);
    assert_eq!(data["payment_id"], payment.id.to_string());
    assert_eq!(data["amount"]["amount"], 1299);
    assert_eq!(data["amount"]["currency"], "EUR");
    assert_eq!(app.processor.held(), vec![payment.id]);
    assert_eq!(payment.card_token.as_deref(), Some("tok_visa"));
    assert_eq!(payment.attempts, 1);
}

#[tokio::test]
async fn each_declining_token_is_declined_with_its_reason_and_nothing_is_held() {
    let app = spawn_app().await;
    let cases = [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        // An unknown token is refused like a card the issuer refuses.
        ("tok_neverIssued", "card_declined"),
    ];
    for (token, reason) in cases {
        let order = app.authorize(token, None).await;
        let payment = app.wait_status(order, "DECLINED").await;
        let answers = app.answers_at_least(order, 1).await;
        assert_eq!(answers.len(), 1, "{token}");
        assert_eq!(answers[0].0, DECLINED, "{token}");
        assert_eq!(answers[0].1["reason"], reason, "{token}");
        assert_eq!(payment.decline_reason.as_deref(), Some(reason));
    }
    assert!(app.processor.held().is_empty());
    assert_eq!(app.processor.authorizations(), 3);
}

#[tokio::test]
async fn tok_timeout_is_declined_processor_timeout_at_the_services_own_deadline() {
    // The processor would hang 5 s; the service gives up after 1.5 s.
    let app = spawn_app().await;
    let started = Instant::now();
    let order = app.authorize("tok_timeout", None).await;

    let payment = app.wait_status(order, "DECLINED").await;
    let waited = started.elapsed();

    assert_eq!(payment.decline_reason.as_deref(), Some("processor_timeout"));
    assert!(waited >= Duration::from_millis(1_500), "{waited:?}");
    assert!(
        waited < Duration::from_millis(5_000),
        "cut at the deadline: {waited:?}"
    );
    let answers = app.answers_at_least(order, 1).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, DECLINED);
    assert_eq!(answers[0].1["reason"], "processor_timeout");
    assert!(app.processor.held().is_empty());
}

#[tokio::test]
async fn a_processor_that_gives_up_before_the_deadline_is_a_processor_timeout_too() {
    let app = spawn_app_with(|s| s.processor.hang_ms = 100).await;
    let order = app.authorize("tok_timeout", None).await;

    let payment = app.wait_status(order, "DECLINED").await;

    assert_eq!(payment.decline_reason.as_deref(), Some("processor_timeout"));
}

#[tokio::test]
async fn a_card_number_sent_as_the_token_is_declined_at_once_and_never_stored() {
    let app = spawn_app().await;
    let order = app.authorize("4242 4242 4242 4242", None).await;

    let payment = app.wait_status(order, "DECLINED").await;

    assert_eq!(payment.card_token, None, "a card number is never stored");
    assert_eq!(payment.decline_reason.as_deref(), Some("card_declined"));
    assert_eq!(
        app.processor.authorizations(),
        0,
        "the processor was not asked"
    );
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT coalesce(card_token, '') FROM payments.payments")
            .fetch_all(app.db.admin_pool())
            .await
            .unwrap();
    assert!(stored.iter().all(|t| !t.contains("4242")), "{stored:?}");
}

#[tokio::test]
async fn the_same_authorize_twice_calls_the_processor_once_and_is_answered_twice() {
    let app = spawn_app().await;
    let order = Uuid::now_v7();
    let command = authorize_command(order, Uuid::now_v7(), "tok_visa");

    app.publish(command.clone()).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;
    app.publish(command).await;
    let answers = app.answers_at_least(order, 2).await;

    assert_eq!(answers.len(), 2);
    for (subject, data) in &answers {
        assert_eq!(subject, AUTHORIZED);
        assert_eq!(data["payment_id"], payment.id.to_string());
    }
    assert_eq!(app.processor.authorizations(), 1);
    assert_eq!(app.payment_count(order).await, 1);
}

#[tokio::test]
async fn a_second_authorize_with_another_amount_gets_the_first_ones_answer() {
    let app = spawn_app().await;
    let order = Uuid::now_v7();
    let first = authorize_command(order, Uuid::now_v7(), "tok_visa");
    app.publish(first.clone()).await;
    app.wait_status(order, "AUTHORIZED").await;

    let other = AuthorizePayment {
        amount: Money {
            amount: 1,
            currency: "USD".to_owned(),
        },
        card_token: "tok_chargeDeclined".to_owned(),
        ..first
    };
    app.publish(other).await;
    let answers = app.answers_at_least(order, 2).await;

    assert_eq!(answers[1].0, AUTHORIZED);
    assert_eq!(answers[1].1["amount"]["amount"], 1299);
    assert_eq!(app.processor.authorizations(), 1);
}

#[tokio::test]
async fn five_identical_authorizes_at_once_make_one_payment_and_one_processor_call_and_answer_only_authorized()
 {
    // A slow processor keeps the first attempt in flight while the others arrive.
    let app = spawn_app_with(|s| s.processor.latency_ms = 300).await;
    let order = Uuid::now_v7();
    let command = authorize_command(order, Uuid::now_v7(), "tok_visa");

    futures::future::join_all((0..5).map(|_| app.publish(command.clone()))).await;
    let payment = app.wait_status(order, "AUTHORIZED").await;
    app.drained(CONSUMER).await;
    let answers = app.answers_at_least(order, 1).await;

    assert_eq!(app.payment_count(order).await, 1);
    assert_eq!(app.processor.authorizations(), 1);
    assert_eq!(payment.attempts, 1);
    // Commands that arrived during the call publish nothing (the decision answers
    // them); later ones repeat it. Never anything but `authorized`, never another id.
    assert!((1..=5).contains(&answers.len()), "{answers:?}");
    for (subject, data) in &answers {
        assert_eq!(subject, AUTHORIZED);
        assert_eq!(data["payment_id"], payment.id.to_string());
    }
}

#[tokio::test]
async fn a_hang_longer_than_the_ack_wait_is_not_redelivered_and_calls_the_processor_once() {
    // The command is acked as soon as the attempt is recorded; the 2.5 s call
    // happens outside the consumer, so a 0.5 s ack wait never expires on it.
    let app = spawn_app_with(|s| {
        s.consumers.ack_wait_ms = 500;
        s.processor.timeout_ms = 2_500;
        s.processor.hang_ms = 10_000;
    })
    .await;
    let order = app.authorize("tok_timeout", None).await;

    let payment = app.wait_status(order, "DECLINED").await;
    app.drained(CONSUMER).await;

    assert_eq!(payment.decline_reason.as_deref(), Some("processor_timeout"));
    assert_eq!(app.processor.authorizations(), 1);
    assert_eq!(payment.attempts, 1);
    assert_eq!(app.redeliveries(CONSUMER).await, 0);
    assert_eq!(app.subjects(order).await, [DECLINED]);
}

#[tokio::test]
async fn malformed_authorize_commands_go_to_the_dead_letter_stream_and_write_nothing() {
    let app = spawn_app().await;
    let mut zero = authorize_command(Uuid::now_v7(), Uuid::now_v7(), "tok_visa");
    zero.amount.amount = 0;
    let mut lower = authorize_command(Uuid::now_v7(), Uuid::now_v7(), "tok_visa");
    lower.amount.currency = "eur".to_owned();

    app.publish(zero).await;
    app.publish(lower).await;
    let mut reasons = app.dead_letter_reasons(2).await;
    reasons.sort();

    assert!(
        reasons[0].contains("amount must be positive"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("currency must be three upper-case letters"),
        "{reasons:?}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM payments.payments")
        .fetch_one(app.db.admin_pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
    assert_eq!(app.processor.authorizations(), 0);
}

#[tokio::test]
async fn hanging_cards_hold_up_no_other_authorization_and_no_transaction_stays_open() {
    // More hanging calls than a consumer has slots (8): were the processor called in
    // the command's handler, they would stall the checkout behind them.
    let app = spawn_app_with(|s| {
        s.processor.timeout_ms = 4_000;
        s.processor.hang_ms = 10_000;
    })
    .await;
    let mut hanging = Vec::new();
    for _ in 0..12 {
        hanging.push(app.authorize("tok_timeout", None).await);
    }
    crate::helpers::eventually("every hanging call in flight", || async {
        let mut in_flight = 0;
        for order in &hanging {
            in_flight += usize::from(app.stored(*order).await.is_some_and(|p| p.attempts == 1));
        }
        in_flight == hanging.len()
    })
    .await;

    let order = app.authorize("tok_visa", None).await;
    app.wait_status(order, "AUTHORIZED").await;
    let long_transactions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND usename = 'payment_svc'
           AND xact_start < now() - interval '500 milliseconds'",
    )
    .fetch_one(app.db.admin_pool())
    .await
    .unwrap();

    for order in &hanging {
        let payment = app.stored(*order).await.unwrap();
        assert_eq!(
            payment.status, "PENDING",
            "still hanging when tok_visa was authorized"
        );
    }
    assert_eq!(
        long_transactions, 0,
        "no transaction waits on the processor"
    );
}
