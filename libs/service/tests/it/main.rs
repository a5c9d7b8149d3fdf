//! The chassis against a real Postgres and a real NATS JetStream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::Value;
use shop_http::ServiceInfo;
use shop_service::{Service, ServiceSettings};
use utoipa_axum::router::OpenApiRouter;

const INFO: ServiceInfo = ServiceInfo {
    name: "catalog",
    title: "chassis test",
    version: "0",
    description: "a service with no routes",
};

async fn settings(db: &shop_testkit::TestDatabase) -> ServiceSettings {
    let mut settings = ServiceSettings::defaults_for(INFO.name);
    settings.http.port = 0;
    settings.database_url = Some(SecretString::from(db.service_url(INFO.name)));
    settings.nats_url = shop_testkit::nats().await.url().to_owned();
    settings.events_prefix = shop_testkit::nats_prefix();
    settings
}

/// Polls `/readyz` until its status code is `want`; returns the body.
async fn readyz_until(base: &str, want: u16) -> Value {
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let response = client.get(format!("{base}/readyz")).send().await.unwrap();
        if response.status().as_u16() == want {
            return response.json().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/readyz never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_background_task_keeps_the_service_unready_until_a_restart_succeeds() {
    shop_telemetry::init_for_tests();
    let db = shop_testkit::fresh_database().await;
    let healed = Arc::new(AtomicBool::new(false));
    let may_run = healed.clone();
    let app = Service::builder(INFO, &settings(&db).await)
        .start()
        .await
        .unwrap()
        .task("flaky-relay", move |shutdown| {
            let may_run = may_run.load(Ordering::SeqCst);
            async move {
                if !may_run {
                    anyhow::bail!("lost the connection to 10.1.2.3");
                }
                shutdown.wait().await;
                Ok(())
            }
        })
        .api(OpenApiRouter::new())
        .bind()
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let down = readyz_until(&base, 503).await;
    assert_eq!(down["checks"]["tasks"], "unavailable");
    assert_eq!(down["checks"]["postgres"], "ok");
    assert!(
        !down.to_string().contains("10.1.2.3"),
        "the reason stays in the log: {down}"
    );

    healed.store(true, Ordering::SeqCst);
    let up = readyz_until(&base, 200).await;
    assert_eq!(up["checks"]["tasks"], "ok");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn starting_creates_the_stream_of_the_context_the_service_owns() {
    let db = shop_testkit::fresh_database().await;
    let settings = settings(&db).await;
    let service = Service::builder(INFO, &settings).start().await.unwrap();

    let stream = service
        .jetstream()
        .get_stream(service.namespace().name("CATALOG"))
        .await;

    assert!(stream.is_ok(), "the CATALOG stream exists");
    assert!(service.outbox().is_err(), "no outbox unless asked for");
}

#[tokio::test]
async fn a_service_without_a_database_url_refuses_to_start_and_says_why() {
    let db = shop_testkit::fresh_database().await;
    let mut settings = settings(&db).await;
    settings.database_url = None;

    let refused = Service::builder(INFO, &settings).start().await;

    let message = format!("{:#}", refused.err().expect("refused"));
    assert!(message.contains("SHOP_DATABASE_URL"), "{message}");
}
