//! Keyset pagination's plumbing, shared by every listing (the catalog's products, the
//! orders, the shipments): the opaque cursor and the cut of a page.
//!
//! A cursor is base64url of a small JSON document holding the position after the last
//! row of a page; each listing decides what the position is (an id, a sort key and an
//! id, the sort it belongs to). Clients must not build or read one: a cursor that does
//! not decode into the listing's position is a 422 naming `cursor`.
//!
//! A page is cut by asking the database for one row more than the limit: whether it
//! comes back says whether there is a next page, without a count.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::problem::{FieldError, Problem};

/// The opaque cursor of `position`.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// The position a cursor of this listing holds; anything else is a 422 naming
/// `cursor`. Positions should deny unknown fields, so one listing's cursor is not
/// taken by another.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, Problem> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(invalid_cursor)
}

/// The 422 of a cursor this listing did not make.
pub fn invalid_cursor() -> Problem {
    Problem::validation(vec![FieldError::new(
        "cursor",
        "invalid",
        "is not a cursor this listing made",
    )])
}

/// Cuts `rows`, fetched with a limit of `limit + 1`, to `limit`, and returns the
/// cursor of the next page (`position` of the last row kept), if there is one.
pub fn cut<T>(
    rows: &mut Vec<T>,
    limit: i64,
    position: impl FnOnce(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() <= limit {
        return None;
    }
    rows.truncate(limit);
    rows.last().map(position)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Position {
        k: i64,
        id: String,
    }

    #[test]
    fn a_cursor_decodes_to_the_position_it_was_made_from() {
        let position = Position {
            k: 1_790_000_000_123_456,
            id: "shp_1".to_owned(),
        };
        let cursor = encode_cursor(&position);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_cursor::<Position>(&cursor).unwrap(), position);
    }

    #[test]
    fn garbage_and_other_listings_cursors_are_a_422_naming_the_cursor() {
        for bad in [
            "not a cursor!".to_owned(),
            URL_SAFE_NO_PAD.encode(br#"{"k":1}"#),
            URL_SAFE_NO_PAD.encode(br#"{"k":1,"id":"x","s":"newest"}"#),
            URL_SAFE_NO_PAD.encode(b"[]"),
        ] {
            let problem = decode_cursor::<Position>(&bad).unwrap_err();
            assert_eq!(problem.status, 422, "{bad}");
            assert_eq!(problem.errors[0].field, "cursor", "{bad}");
        }
    }

    #[test]
    fn one_row_past_the_limit_means_a_next_page_from_the_last_row_kept() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(
            cut(&mut rows, 2, |last| last.to_string()),
            Some("2".to_owned())
        );
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(cut(&mut rows, 2, |last| last.to_string()), None);
        assert_eq!(rows, [1, 2]);
        let mut rows: Vec<i32> = Vec::new();
        assert_eq!(cut(&mut rows, 2, |last| last.to_string()), None);
    }
}
