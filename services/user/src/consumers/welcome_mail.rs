//! The welcome e-mail: the seed's example of asynchronous communication. Registration
//! commits the account and a `users.user.registered` event together and answers 201;
//! this consumer sends the mail later, on its own schedule, retried if it fails.
//!
//! "Sending" writes to the local mail sink, the table `users.mail_sink` (a stand-in
//! for an SMTP relay or a mail API, documented as such).

use shop_events::contracts::users::UserRegistered;
use shop_events::{ConsumerConfig, Envelope, EventHandler, HandlerError};
use sqlx::PgConnection;
use uuid::Uuid;

/// The durable consumer's name.
pub const CONSUMER: &str = "user-welcome-mail";

pub fn config() -> ConsumerConfig {
    ConsumerConfig::new(CONSUMER)
}

pub struct WelcomeMail;

impl EventHandler for WelcomeMail {
    type Event = UserRegistered;

    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: Envelope<UserRegistered>,
    ) -> Result<(), HandlerError> {
        let user = event.data;
        let body = format!(
            "Hi {},\n\nwelcome to the shop! Your account {} is ready.\n\nThe shop",
            user.name, user.email
        );
        sqlx::query(
            "INSERT INTO mail_sink (id, event_id, to_address, subject, body) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(event.id)
        .bind(&user.email)
        .bind("Welcome to the shop")
        .bind(body)
        .execute(tx)
        .await?;
        tracing::info!(user_id = %user.user_id, "welcome e-mail written to the mail sink");
        Ok(())
    }
}
