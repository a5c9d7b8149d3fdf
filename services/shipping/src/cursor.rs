//! The listing's opaque cursor: base64url of a small JSON document holding the
//! position after the last shipment of a page (its creation time in microseconds, the
//! database's precision, and its id). Clients must not build or read it; one that
//! does not decode is refused with 422.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::shipments::{After, ShipmentId};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `created_at`, microseconds since the epoch.
    k: i64,
    id: String,
}

pub fn encode(after: &After) -> String {
    let raw = Raw {
        k: after.created_at.timestamp_micros(),
        id: after.id.to_string(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&raw).unwrap_or_default())
}

pub fn decode(cursor: &str) -> Result<After, Error> {
    let invalid = || Error::invalid("cursor", "invalid", "is not a cursor this listing made");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let raw: Raw = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(After {
        created_at: DateTime::from_timestamp_micros(raw.k).ok_or_else(invalid)?,
        id: ShipmentId::parse(&raw.id).ok_or_else(invalid)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_position_it_was_made_from() {
        let after = After {
            created_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            id: ShipmentId::generate(),
        };
        assert_eq!(decode(&encode(&after)).unwrap(), after);
    }

    #[test]
    fn garbage_and_forged_cursors_are_refused() {
        for bad in [
            "not a cursor!".to_owned(),
            URL_SAFE_NO_PAD.encode(br#"{"k":1,"id":"shp_x"}"#),
            URL_SAFE_NO_PAD.encode(br#"{"k":1}"#),
            URL_SAFE_NO_PAD.encode(b"[]"),
        ] {
            assert!(decode(&bad).is_err(), "{bad}");
        }
    }
}
