//! The listing's opaque cursor: base64url of a small JSON document holding the
//! position after the last shipment of a page (its creation time in microseconds, the
//! database's precision, and its id). Clients must not build or read it; one that
//! does not decode is refused with 422.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use shop_http::page::{decode_cursor, encode_cursor, invalid_cursor};

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
    encode_cursor(&raw)
}

pub fn decode(cursor: &str) -> Result<After, Error> {
    let invalid = || Error::from(invalid_cursor());
    let raw: Raw = decode_cursor(cursor)?;
    Ok(After {
        created_at: DateTime::from_timestamp_micros(raw.k).ok_or_else(invalid)?,
        id: ShipmentId::parse(&raw.id).ok_or_else(invalid)?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
