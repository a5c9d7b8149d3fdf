//! The pieces working together through `Resilient::call`, as a client sees them: a
//! retry storm held back by the budget, and an outage that opens the breaker and a
//! recovery that closes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use shop_resilience::{
    BreakerSettings, BreakerState, CallError, ResilienceSettings, Resilient, Verdict,
};
use tokio::task::JoinSet;

#[derive(Debug, PartialEq)]
struct Unavailable;

fn retryable<T>(result: &Result<T, Unavailable>) -> Verdict {
    match result {
        Ok(_) => Verdict::Success,
        Err(Unavailable) => Verdict::Failure { retryable: true },
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_storm_is_held_to_the_budget() {
    // A breaker that never opens, so that only the budget stands between 1000 failing
    // calls and their 3000 possible retries.
    let settings = ResilienceSettings {
        max_retries: 3,
        breaker: BreakerSettings {
            min_requests: u32::MAX,
            consecutive_failures: u32::MAX,
            ..Default::default()
        },
        ..Default::default()
    };
    let client = Resilient::new("catalog", &settings);
    let attempts = Arc::new(AtomicU32::new(0));

    let mut calls = JoinSet::new();
    for _ in 0..1_000 {
        let client = client.clone();
        let attempts = Arc::clone(&attempts);
        calls.spawn(async move {
            let op = || {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(Unavailable) }
            };
            client.call(op, retryable).await
        });
    }
    while let Some(result) = calls.join_next().await {
        assert_eq!(result.unwrap(), Err(CallError::Failed(Unavailable)));
    }

    // 20% of 1000 requests, plus the floor of 10 per second for the second or two the
    // storm spans.
    let retries = attempts.load(Ordering::SeqCst) - 1_000;
    assert!((200..=220).contains(&retries), "{retries} retries");
}

#[tokio::test(start_paused = true)]
async fn an_outage_opens_the_breaker_and_the_recovery_closes_it() {
    let client = Resilient::new("catalog", &ResilienceSettings::default());
    let up = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU32::new(0));
    let op = || {
        attempts.fetch_add(1, Ordering::SeqCst);
        let up = up.load(Ordering::SeqCst);
        async move { if up { Ok(()) } else { Err(Unavailable) } }
    };

    // Five failed attempts (over two calls with their retries) open it.
    assert_eq!(
        client.call(op, retryable).await,
        Err(CallError::Failed(Unavailable))
    );
    let second = client.call(op, retryable).await;
    assert!(matches!(second, Err(CallError::Open { .. })), "{second:?}");
    assert_eq!(attempts.load(Ordering::SeqCst), 5);
    assert_eq!(client.breaker.state(), BreakerState::Open);

    // While open, nothing reaches the upstream.
    let rejected = client.call(op, retryable).await;
    assert!(
        matches!(rejected, Err(CallError::Open { .. })),
        "{rejected:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 5);

    // Back up: after open_ms, three successful probes close it.
    up.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(5)).await;
    for _ in 0..3 {
        assert_eq!(client.call(op, retryable).await, Ok(()));
    }
    assert_eq!(client.breaker.state(), BreakerState::Closed);
    assert_eq!(attempts.load(Ordering::SeqCst), 8);
}
