//! The envelope every event travels in, and the `Event` trait typed payloads implement.
//!
//! ```json
//! {"id": "0193...", "type": "users.user.registered", "version": 1,
//!  "occurred_at": "2026-11-21T12:00:00.123Z", "source": "user", "data": {...}}
//! ```
//!
//! `id` is a UUIDv7 (time-ordered), also sent as `Nats-Msg-Id` so the broker drops a
//! republished duplicate, and recorded by consumers so a redelivery is a no-op.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A typed event payload. `TYPE` is also its subject (`<context>.<entity>.<fact>`);
/// `VERSION` changes only when the payload changes incompatibly, and consumers say
/// which versions they understand.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    const TYPE: &'static str;
    const VERSION: u32;
}

/// An event on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T = serde_json::Value> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub occurred_at: DateTime<Utc>,
    /// The service that produced it.
    pub source: String,
    pub data: T,
}

impl<T: Event> Envelope<T> {
    /// Wraps a new event, stamping it with a fresh id and the current time.
    pub fn new(source: &str, data: T) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: T::TYPE.to_owned(),
            version: T::VERSION,
            occurred_at: Utc::now(),
            source: source.to_owned(),
            data,
        }
    }
}

/// Why a message could not be read as an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not an event envelope: {0}")]
    Malformed(String),
    #[error("expected {expected} v{expected_version}, got {kind} v{version}")]
    WrongType {
        expected: &'static str,
        expected_version: u32,
        kind: String,
        version: u32,
    },
    #[error("the data of {kind} v{version} does not match its schema: {reason}")]
    BadData {
        kind: String,
        version: u32,
        reason: String,
    },
}

impl Envelope {
    /// Parses the envelope, leaving `data` untyped until a handler asks for its type.
    pub fn parse(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// Whether this is the given event type and version.
    pub fn is<T: Event>(&self) -> bool {
        self.kind == T::TYPE && self.version == T::VERSION
    }

    /// The envelope with its payload typed, if it holds a `T` of the same version.
    pub fn typed<T: Event>(&self) -> Result<Envelope<T>, DecodeError> {
        Ok(Envelope {
            id: self.id,
            kind: self.kind.clone(),
            version: self.version,
            occurred_at: self.occurred_at,
            source: self.source.clone(),
            data: self.decode()?,
        })
    }

    /// The typed payload, if this envelope holds a `T` of the same version.
    pub fn decode<T: Event>(&self) -> Result<T, DecodeError> {
        if !self.is::<T>() {
            return Err(DecodeError::WrongType {
                expected: T::TYPE,
                expected_version: T::VERSION,
                kind: self.kind.clone(),
                version: self.version,
            });
        }
        T::deserialize(&self.data).map_err(|e| DecodeError::BadData {
            kind: self.kind.clone(),
            version: self.version,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contracts::users::UserRegistered;

    fn registered() -> Envelope<UserRegistered> {
        Envelope::new(
            "user",
            UserRegistered {
                user_id: Uuid::now_v7(),
                email: "ada@example.com".into(),
                name: "Ada".into(),
            },
        )
    }

    #[test]
    fn an_envelope_round_trips_and_decodes_to_its_type() {
        let sent = registered();
        let bytes = serde_json::to_vec(&sent).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["type"], "users.user.registered");
        assert_eq!(json["version"], 1);
        assert_eq!(json["id"].as_str().unwrap().len(), 36);

        let received = Envelope::parse(&bytes).unwrap();
        assert_eq!(received.decode::<UserRegistered>().unwrap(), sent.data);
        assert_eq!(received.id.get_version_num(), 7);
    }

    #[test]
    fn another_version_or_garbage_is_refused_with_the_reason() {
        let mut sent = serde_json::to_value(registered()).unwrap();
        sent["version"] = 2.into();
        let envelope = Envelope::parse(&serde_json::to_vec(&sent).unwrap()).unwrap();
        assert!(matches!(
            envelope.decode::<UserRegistered>(),
            Err(DecodeError::WrongType { version: 2, .. })
        ));
        assert!(matches!(
            Envelope::parse(b"{\"id\": 1}"),
            Err(DecodeError::Malformed(_))
        ));
        sent["version"] = 1.into();
        sent["data"] = serde_json::json!({"user_id": "nope"});
        let envelope = Envelope::parse(&serde_json::to_vec(&sent).unwrap()).unwrap();
        assert!(matches!(
            envelope.decode::<UserRegistered>(),
            Err(DecodeError::BadData { .. })
        ));
    }
}
