//! HTTP caching of reads: a strong `ETag` on every read (`"<id>-v<version>"` for one
//! product, a hash of the body for a list), `If-None-Match` answered with 304 and no
//! body, and `Cache-Control: public, max-age=30`: prices may be 30 s stale in a cache,
//! never at checkout (the order service reads them through the internal lookup,
//! which is not cacheable). Also the `If-Match` check of writes.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// What shared caches may do with a read.
pub const CACHE_CONTROL_READS: &str = "public, max-age=30";

/// A strong ETag of a body: its SHA-256, base64url, in quotes.
pub fn body_etag(body: &[u8]) -> String {
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(Sha256::digest(body)))
}

/// Whether `If-None-Match` names `etag` (or is `*`). Weak comparison, as RFC 9110
/// 13.1.2 asks for `If-None-Match`.
pub fn none_match_hits(headers: &HeaderMap, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || strip(tag) == strip(etag))
}

/// A cacheable JSON answer: 200 with the body, or 304 without one when the client
/// already holds this version.
pub fn cached_json<T: Serialize>(
    headers: &HeaderMap,
    etag: Option<String>,
    value: &T,
) -> Result<Response> {
    let body = serde_json::to_vec(value).map_err(anyhow::Error::from)?;
    let etag = etag.unwrap_or_else(|| body_etag(&body));
    let etag_value = HeaderValue::from_str(&etag).map_err(anyhow::Error::from)?;
    let cache = HeaderValue::from_static(CACHE_CONTROL_READS);
    if none_match_hits(headers, &etag) {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(ETAG, etag_value), (CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    let json = HeaderValue::from_static("application/json");
    Ok((
        StatusCode::OK,
        [
            (ETAG, etag_value),
            (CACHE_CONTROL, cache),
            (CONTENT_TYPE, json),
        ],
        body,
    )
        .into_response())
}

/// The ETags `If-Match` lists: `None` without the header. `*` is refused: it would
/// match any version and protect against nothing.
pub fn if_match(headers: &HeaderMap) -> Result<Option<Vec<String>>> {
    let values: Vec<&str> = headers
        .get_all(IF_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Ok(None);
    }
    let tags: Vec<String> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if tags.iter().any(|t| t == "*") {
        return Err(Error::PreconditionRequired);
    }
    Ok(Some(tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn if_none_match_hits_any_listed_tag_weak_or_strong() {
        let etag = "\"prod_1-v2\"";
        assert!(none_match_hits(
            &with(IF_NONE_MATCH, "\"x\", \"prod_1-v2\""),
            etag
        ));
        assert!(none_match_hits(
            &with(IF_NONE_MATCH, "W/\"prod_1-v2\""),
            etag
        ));
        assert!(none_match_hits(&with(IF_NONE_MATCH, "*"), etag));
        assert!(!none_match_hits(
            &with(IF_NONE_MATCH, "\"prod_1-v1\""),
            etag
        ));
        assert!(!none_match_hits(&HeaderMap::new(), etag));
    }

    #[test]
    fn body_etags_differ_when_bodies_do() {
        assert_eq!(body_etag(b"a"), body_etag(b"a"));
        assert_ne!(body_etag(b"a"), body_etag(b"b"));
    }

    #[test]
    fn if_match_star_is_refused_and_absence_is_none() {
        assert!(if_match(&HeaderMap::new()).unwrap().is_none());
        assert!(if_match(&with(IF_MATCH, "*")).is_err());
        assert_eq!(
            if_match(&with(IF_MATCH, "\"a\", \"b\"")).unwrap().unwrap(),
            ["\"a\"", "\"b\""]
        );
    }
}
