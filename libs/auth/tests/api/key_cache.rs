//! The JWKS cache: stale keys keep working while the issuer is down or hangs, and the
//! issuer is asked again with restraint.

use std::time::Duration;

use shop_auth::{AUDIENCE, AuthError, Verifier};

use crate::helpers::{ISSUER, Issuer, TestKey, eventually, jwks};

/// Far below the fetch timeouts the tests configure: a verify that waited for a fetch
/// could not finish within it.
const QUICKLY: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_stale_cache_keeps_verifying_while_the_issuer_is_down_and_takes_a_rotated_key_when_it_is_back()
 {
    let old = TestKey::generate();
    let mut issuer = Issuer::start(jwks(&[&old])).await;
    let verifier = Verifier::builder(issuer.url(), ISSUER, AUDIENCE)
        .min_refresh(Duration::ZERO)
        .max_age(Duration::ZERO)
        .build();
    verifier
        .verify(&old.token())
        .await
        .expect("the first fetch brings the key");

    issuer.stop().await;
    for _ in 0..3 {
        verifier
            .verify(&old.token())
            .await
            .expect("a cached key verifies past max_age while the issuer is down");
    }

    let new = TestKey::generate();
    issuer.restart(jwks(&[&new, &old])).await;
    verifier
        .verify(&new.token())
        .await
        .expect("the new key id is fetched once the issuer is back");
    verifier.verify(&old.token()).await.unwrap();
}

#[tokio::test]
async fn a_hanging_issuer_does_not_hold_up_tokens_signed_by_a_cached_key() {
    let key = TestKey::generate();
    let issuer = Issuer::start(jwks(&[&key])).await;
    let verifier = Verifier::builder(issuer.url(), ISSUER, AUDIENCE)
        .max_age(Duration::ZERO)
        .fetch_timeout(Duration::from_secs(60))
        .build();
    verifier.verify(&key.token()).await.unwrap();

    issuer.hang();
    let token = key.token();
    let verified = tokio::time::timeout(QUICKLY, async {
        for _ in 0..20 {
            verifier.verify(&token).await?;
        }
        Ok::<_, AuthError>(())
    })
    .await;
    assert!(
        matches!(verified, Ok(Ok(()))),
        "every verify answers at once from the cache: {verified:?}"
    );

    // The stale cache started one refresh, which now hangs; later requests see it in
    // flight and start no other.
    eventually(QUICKLY, "the background refresh", || async {
        (issuer.hanging() > 0).then_some(())
    })
    .await;
    for _ in 0..20 {
        verifier.verify(&token).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(issuer.hanging(), 1, "one refresh in flight");
}

#[tokio::test]
async fn the_background_refresh_retries_until_the_issuer_is_back_and_picks_up_a_rotated_key() {
    let old = TestKey::generate();
    let mut issuer = Issuer::start(jwks(&[&old])).await;
    // Unknown key ids may not fetch for an hour: only the background refresh can bring
    // the new key.
    let verifier = Verifier::builder(issuer.url(), ISSUER, AUDIENCE)
        .min_refresh(Duration::from_secs(3600))
        .max_age(Duration::ZERO)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build();
    verifier.verify(&old.token()).await.unwrap();

    issuer.stop().await;
    verifier
        .verify(&old.token())
        .await
        .expect("the cached key still verifies");

    let new = TestKey::generate();
    issuer.restart(jwks(&[&new, &old])).await;
    let new_token = new.token();
    eventually(Duration::from_secs(10), "the rotated key", || async {
        match verifier.verify(&new_token).await {
            Ok(_) => Some(()),
            Err(AuthError::UnknownKey(_) | AuthError::KeysUnavailable(_)) => None,
            Err(other) => panic!("unexpected {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn with_no_cached_keys_a_failing_issuer_means_keys_unavailable_and_is_asked_once_per_min_refresh()
 {
    let key = TestKey::generate();
    let issuer = Issuer::start(jwks(&[&key])).await;
    issuer.fail();
    let verifier = Verifier::builder(issuer.url(), ISSUER, AUDIENCE)
        .min_refresh(Duration::from_secs(3600))
        .retry_backoff(Duration::from_secs(3600), Duration::from_secs(3600))
        .build();

    for _ in 0..5 {
        let refused = verifier.verify(&key.token()).await;
        assert!(
            matches!(refused, Err(AuthError::KeysUnavailable(_))),
            "{refused:?}"
        );
    }
    assert_eq!(issuer.hits(), 1);
}

#[tokio::test]
async fn with_no_cached_keys_a_stopped_issuer_means_keys_unavailable() {
    let key = TestKey::generate();
    let mut issuer = Issuer::start(jwks(&[&key])).await;
    issuer.stop().await;
    let verifier = Verifier::remote(issuer.url(), ISSUER, AUDIENCE);

    let refused = verifier.verify(&key.token()).await;
    assert!(
        matches!(refused, Err(AuthError::KeysUnavailable(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_token_remembered_as_verified_is_refused_once_its_key_is_withdrawn() {
    let old = TestKey::generate();
    let mut issuer = Issuer::start(jwks(&[&old])).await;
    let verifier = Verifier::builder(issuer.url(), ISSUER, AUDIENCE)
        .min_refresh(Duration::ZERO)
        .build();
    let token = old.token();
    for _ in 0..2 {
        verifier
            .verify(&token)
            .await
            .expect("verified, then remembered");
    }
    let fetches = issuer.hits();

    // The issuer withdraws the key: once the set without it is fetched, the token the
    // verifier remembered is checked again, and fails.
    let new = TestKey::generate();
    issuer.stop().await;
    issuer.restart(jwks(&[&new])).await;
    verifier.refresh(true).await.unwrap();
    assert!(issuer.hits() > fetches);
    match verifier.verify(&token).await {
        Err(AuthError::UnknownKey(_)) => {}
        other => panic!("a withdrawn key's token passed: {other:?}"),
    }
    verifier.verify(&new.token()).await.unwrap();
}

#[tokio::test]
async fn a_tampered_copy_of_a_remembered_token_is_checked_in_full_and_refused() {
    let key = TestKey::generate();
    let verifier = Verifier::with_keys(&jwks(&[&key]), ISSUER, AUDIENCE);
    let token = key.token();
    let claims = verifier.verify(&token).await.unwrap();
    // Same header and signature, another subject in the payload.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let other = key.token();
    parts[1] = other.split('.').nth(1).unwrap().to_owned();
    let forged = parts.join(".");
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(AuthError::Invalid(_))
    ));
    assert_eq!(verifier.verify(&token).await.unwrap(), claims);
}
