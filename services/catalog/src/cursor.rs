//! The listing's opaque cursor: base64url of a small JSON document holding the sort
//! it belongs to and the position after the last product of a page (its sort key and
//! id). Clients must not build or read it; a cursor that does not decode, or that
//! belongs to another sort, is refused with 422.

use chrono::DateTime;
use serde::{Deserialize, Serialize};
use shop_http::page::{decode_cursor, encode_cursor, invalid_cursor};

use crate::error::Error;
use crate::products::{After, ProductId, Sort};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// The sort it was made for.
    s: Sort,
    /// The sort key: an amount, microseconds since the epoch, or the rank's bits (an
    /// `f32` travels as its exact bits, so the next page compares equal ranks equal).
    k: i64,
    id: String,
}

pub fn encode(sort: Sort, after: &After) -> String {
    let (k, id) = match after {
        After::Rank(rank, id) => (i64::from(rank.to_bits()), id),
        After::Price(amount, id) => (*amount, id),
        After::Created(at, id) => (at.timestamp_micros(), id),
    };
    let raw = Raw {
        s: sort,
        k,
        id: id.to_string(),
    };
    encode_cursor(&raw)
}

pub fn decode(cursor: &str, sort: Sort) -> Result<After, Error> {
    let invalid = || Error::from(invalid_cursor());
    let raw: Raw = decode_cursor(cursor)?;
    if raw.s != sort {
        return Err(Error::invalid(
            "cursor",
            "wrong_sort",
            "belongs to another sort: start again without a cursor",
        ));
    }
    let id = ProductId::parse(&raw.id).ok_or_else(invalid)?;
    let after = match sort {
        Sort::Relevance => {
            let bits = u32::try_from(raw.k).map_err(|_| invalid())?;
            After::Rank(f32::from_bits(bits), id)
        }
        Sort::PriceAsc | Sort::PriceDesc => After::Price(raw.k, id),
        Sort::Newest => After::Created(
            DateTime::from_timestamp_micros(raw.k).ok_or_else(invalid)?,
            id,
        ),
    };
    Ok(after)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn a_cursor_decodes_to_the_position_it_was_made_from() {
        let id = ProductId::generate();
        let now = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        for (sort, after) in [
            (Sort::Relevance, After::Rank(0.0607927, id.clone())),
            (Sort::PriceAsc, After::Price(4999, id.clone())),
            (Sort::PriceDesc, After::Price(1, id.clone())),
            (Sort::Newest, After::Created(now, id.clone())),
        ] {
            assert_eq!(decode(&encode(sort, &after), sort).unwrap(), after);
        }
    }

    #[test]
    fn a_cursor_of_another_sort_or_garbage_is_refused() {
        let cursor = encode(Sort::PriceAsc, &After::Price(10, ProductId::generate()));
        assert!(decode(&cursor, Sort::Newest).is_err());
        assert!(decode("not a cursor!", Sort::Newest).is_err());
        let forged = URL_SAFE_NO_PAD.encode(br#"{"s":"newest","k":1,"id":"prod_x"}"#);
        assert!(decode(&forged, Sort::Newest).is_err());
    }
}
