//! The payment service, assembled on the chassis: its migrations, its outbox, the
//! consumers of the three checkout commands, the authorizer (the only caller of the
//! processor's authorization), and its API. Tests call [`build_with`] with port 0, a
//! fresh database, a verifier over fixed keys and a processor they can inspect.

use shop_auth::Verifier;
use shop_service::{Application, Service};

use crate::authorizer::Authorizer;
use crate::config::Settings;
use crate::consumers::{self, authorize, capture, void};
use crate::processor::Processor;
use crate::state::AppState;
use crate::{INFO, api};

/// Connects, migrates and binds, verifying tokens against the user service's JWKS,
/// with a simulated processor as configured.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let verifier = settings.service.auth.verifier();
    let processor = Processor::new(settings.processor.clone());
    build_with(settings, verifier, processor).await
}

/// As [`build`], with the given token verifier and processor.
pub async fn build_with(
    settings: Settings,
    verifier: Verifier,
    processor: Processor,
) -> anyhow::Result<Application> {
    let service = Service::builder(INFO, &settings.service)
        .migrations(sqlx::migrate!("../../migrations/payment"))
        .with_outbox()
        .start()
        .await?;
    let outbox = service.outbox()?;
    let state = AppState::new(&service, verifier);
    let authorizer = Authorizer::new(state.db.clone(), outbox.clone(), processor.clone());
    let ack_wait_ms = settings.consumers.ack_wait_ms;
    let capture = capture::Capture {
        outbox: outbox.clone(),
        processor: processor.clone(),
    };
    let void = void::Void {
        outbox: outbox.clone(),
        processor,
    };
    service
        .consumer(
            consumers::config(authorize::CONSUMER, ack_wait_ms),
            authorize::Authorize(outbox),
        )
        .consumer(consumers::config(capture::CONSUMER, ack_wait_ms), capture)
        .consumer(consumers::config(void::CONSUMER, ack_wait_ms), void)
        .task("authorizer", move |shutdown| {
            let authorizer = authorizer.clone();
            async move { authorizer.run(shutdown.wait()).await }
        })
        .api(api().with_state(state))
        .bind()
        .await
}
