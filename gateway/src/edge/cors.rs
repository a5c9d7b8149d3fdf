//! CORS from an allow-list of exact origins, answered at the edge.
//!
//! Written by hand rather than as tower-http's `CorsLayer` because the list lives in the
//! gateway file, which reloads at run time: a layer is fixed when the router is built.
//!
//! The gateway is the one authority on CORS: the headers by which an upstream would
//! grant access (`Access-Control-Allow-Origin`, `-Credentials`, `-Expose-Headers`) are
//! dropped, so no service can widen the allow-list by accident. An empty list turns
//! CORS off: no cross-origin reads through the gateway at all, and a preflight is left
//! to the router like any other `OPTIONS` request.
//!
//! There is no wildcard. `*` cannot be combined with credentials (the Fetch standard
//! forbids it), and without them it would let every site on the web read every public
//! answer: an allow-list that is one typo away from meaning "everyone" is not one.
//! `null` is refused too: it is the origin of sandboxed frames and `file:` pages, which
//! anyone can produce.

use std::collections::HashSet;

use anyhow::bail;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde::Deserialize;
use shop_http::Problem;

/// The longest `max_age_s`: Firefox caps a preflight cache at a day (Chromium at two
/// hours), so more would only pretend.
pub const MAX_AGE_LIMIT_S: u64 = 86_400;

/// The methods a cross-origin request may use: those the route table can route.
const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// `[cors]` in the gateway file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`scheme://host[:port]`, lowercase, no path) allowed to call the
    /// API from a browser. Empty: CORS off.
    pub allow_origins: Vec<String>,
    /// Request headers a cross-origin request may send beyond the CORS-safelisted ones.
    pub allow_headers: Vec<String>,
    /// Response headers a cross-origin page may read beyond the safelisted ones.
    pub expose_headers: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_s: u64,
    /// Whether cross-origin requests may carry cookies or HTTP authentication. Bearer
    /// tokens in `Authorization` need no credentials mode: keep this off unless a
    /// front end relies on cookies.
    pub allow_credentials: bool,
}

impl Default for CorsSettings {
    fn default() -> Self {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            allow_origins: Vec::new(),
            allow_headers: names(&[
                "authorization",
                "content-type",
                "idempotency-key",
                "if-match",
                "if-none-match",
                "x-request-id",
                "apikey",
            ]),
            expose_headers: names(&[
                "location",
                "etag",
                "retry-after",
                "ratelimit",
                "ratelimit-policy",
                "x-request-id",
                "x-trace-id",
                "deprecation",
                "sunset",
                "link",
            ]),
            max_age_s: 600,
            allow_credentials: false,
        }
    }
}

impl CorsSettings {
    /// Refuses anything that is not an exact origin or a header name, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        let mut seen = HashSet::new();
        for (i, origin) in self.allow_origins.iter().enumerate() {
            if let Err(why) = check_origin(origin) {
                bail!("cors.allow_origins[{i}] {origin:?}: {why}");
            }
            if !seen.insert(origin) {
                bail!("cors.allow_origins[{i}] {origin:?} is listed twice");
            }
        }
        for (field, names) in [
            ("allow_headers", &self.allow_headers),
            ("expose_headers", &self.expose_headers),
        ] {
            for (i, name) in names.iter().enumerate() {
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    bail!("cors.{field}[{i}] {name:?} is not a header name");
                }
                if name == "*" {
                    bail!("cors.{field}[{i}]: no wildcard, list the headers");
                }
            }
        }
        if self.max_age_s > MAX_AGE_LIMIT_S {
            bail!("cors.max_age_s must be at most {MAX_AGE_LIMIT_S} (browsers cap it)");
        }
        Ok(())
    }
}

/// An origin as a browser serializes it: `http` or `https`, a lowercase host, an
/// optional port, nothing else.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin == "*" {
        return Err("no wildcard: list the exact origins (see the cors module)");
    }
    if origin == "null" {
        return Err("`null` is the origin of sandboxed and file: pages, anyone's");
    }
    let Some((scheme, host)) = origin.split_once("://") else {
        return Err("must be scheme://host[:port]");
    };
    if scheme != "http" && scheme != "https" {
        return Err("the scheme must be http or https");
    }
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return Err("an origin has no path, query, user or trailing slash");
    }
    if host.parse::<http::uri::Authority>().is_err() {
        return Err("the host is not valid");
    }
    if origin.to_ascii_lowercase() != origin {
        return Err("browsers send origins in lowercase: write it so");
    }
    Ok(())
}

/// The checked settings, with every header value built once.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<HeaderValue>,
    allowed_headers: HashSet<HeaderName>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: HeaderValue,
    credentials: bool,
}

impl Cors {
    /// Expects settings that passed [`CorsSettings::check`]; an entry that would not is
    /// skipped rather than trusted.
    pub fn new(settings: &CorsSettings) -> Self {
        let origins = settings
            .allow_origins
            .iter()
            .filter(|o| check_origin(o).is_ok())
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        let names = |list: &[String]| -> Vec<HeaderName> {
            list.iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect()
        };
        let allowed: Vec<HeaderName> = names(&settings.allow_headers);
        let exposed: Vec<HeaderName> = names(&settings.expose_headers);
        Self {
            origins,
            allow_headers: joined(&allowed),
            allowed_headers: allowed.into_iter().collect(),
            expose_headers: joined(&exposed),
            max_age: HeaderValue::from(settings.max_age_s),
            credentials: settings.allow_credentials,
        }
    }

    /// Whether any origin is allowed at all.
    pub fn is_enabled(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`), or `None` when this is no preflight or CORS is
    /// off (the request then goes on like any other). An allowed origin gets 204 with
    /// the `Access-Control-Allow-*` headers; a refused origin, method or header gets
    /// 403 problem+json, which tells a developer more than a bare browser error.
    pub fn preflight(&self, req_headers: &HeaderMap, method: &Method) -> Option<Response> {
        if method != Method::OPTIONS || !self.is_enabled() {
            return None;
        }
        let origin = req_headers.get(header::ORIGIN)?;
        let requested = req_headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;

        let mut response = match self.refusal(origin, requested, req_headers) {
            Some(problem) => problem.into_response(),
            None => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                let headers = response.headers_mut();
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOW_METHODS),
                );
                if let Some(allow) = &self.allow_headers {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow.clone());
                }
                headers.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
                if self.credentials {
                    headers.insert(
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
                response
            }
        };
        // The answer depends on all three: a cache must not hand one origin's (or one
        // method's) answer to another.
        response.headers_mut().insert(
            header::VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        Some(response)
    }

    fn refusal(
        &self,
        origin: &HeaderValue,
        requested: &HeaderValue,
        req_headers: &HeaderMap,
    ) -> Option<Problem> {
        let refused = |detail: String| {
            Problem::new(
                StatusCode::FORBIDDEN,
                "cors-refused",
                "This cross-origin request is not allowed.",
            )
            .with_detail(detail)
        };
        if !self.allows(origin) {
            return Some(refused("the origin is not allowed".to_owned()));
        }
        let method = requested.to_str().unwrap_or_default();
        if !ALLOW_METHODS.split(", ").any(|m| m == method) {
            return Some(refused(format!(
                "the method may not be used cross-origin (allowed: {ALLOW_METHODS})"
            )));
        }
        let names = req_headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("?").split(','))
            .map(str::trim)
            .filter(|n| !n.is_empty());
        for name in names {
            let known = HeaderName::from_bytes(name.as_bytes())
                .is_ok_and(|n| self.allowed_headers.contains(&n));
            if !known {
                return Some(refused(format!(
                    "the header {name:?} may not be sent cross-origin"
                )));
            }
        }
        None
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.origins.iter().any(|o| o == origin)
    }

    /// Sets the CORS headers of an actual response: the exact origin, the exposed
    /// headers and credentials when the request's origin is allowed; `Vary: Origin`
    /// whenever CORS is on, since the answer differs by origin. Drops the upstream's
    /// `Access-Control-Allow-Origin`, `-Credentials` and `-Expose-Headers`, on or off:
    /// without them a browser lets no other origin read the answer, whatever else the
    /// upstream said. The preflight-only headers are left alone, so decorating the
    /// answer of [`Cors::preflight`] as well keeps it whole.
    pub fn decorate(&self, req_origin: Option<&HeaderValue>, response_headers: &mut HeaderMap) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
        ] {
            response_headers.remove(name);
        }
        if !self.is_enabled() {
            return;
        }
        add_vary_origin(response_headers);
        let Some(origin) = req_origin.filter(|o| self.allows(o)) else {
            return;
        };
        response_headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Some(expose) = &self.expose_headers {
            response_headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        if self.credentials {
            response_headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// Adds `origin` to `Vary` unless it (or `*`) is already there, keeping the upstream's
/// own entries (`accept-encoding`, ...).
fn add_vary_origin(headers: &mut HeaderMap) {
    let covered = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|v| v == "*" || v.eq_ignore_ascii_case("origin"));
    if !covered {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

fn joined(names: &[HeaderName]) -> Option<HeaderValue> {
    if names.is_empty() {
        return None;
    }
    let list: Vec<&str> = names.iter().map(HeaderName::as_str).collect();
    HeaderValue::from_str(&list.join(", ")).ok()
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format as _, Toml};

    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        let settings = CorsSettings {
            allow_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allow_credentials: credentials,
            ..CorsSettings::default()
        };
        settings.check().unwrap();
        Cors::new(&settings)
    }

    fn preflight_headers(origin: &str, method: &str, headers: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::ORIGIN, origin.parse().unwrap());
        map.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            method.parse().unwrap(),
        );
        if let Some(h) = headers {
            map.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, h.parse().unwrap());
        }
        map
    }

    #[test]
    fn settings_default_to_off_with_the_documented_lists_and_read_from_toml() {
        let default = CorsSettings::default();
        assert!(default.allow_origins.is_empty());
        assert_eq!(default.max_age_s, 600);
        assert!(!default.allow_credentials);
        assert!(
            default
                .allow_headers
                .contains(&"idempotency-key".to_owned())
        );
        assert!(
            default
                .expose_headers
                .contains(&"ratelimit-policy".to_owned())
        );
        default.check().unwrap();
        assert!(!Cors::new(&default).is_enabled());

        let read: CorsSettings = Figment::from(Toml::string(
            r#"allow_origins = ["http://localhost:3000"]
               max_age_s = 60"#,
        ))
        .extract()
        .unwrap();
        assert_eq!(read.allow_origins, ["http://localhost:3000"]);
        assert_eq!(read.max_age_s, 60);
        assert_eq!(read.allow_headers, default.allow_headers);

        let unknown = Figment::from(Toml::string("allow_origin = []")).extract::<CorsSettings>();
        assert!(unknown.is_err());
    }

    #[test]
    fn check_refuses_wildcards_null_and_anything_but_an_exact_origin_naming_the_entry() {
        for bad in [
            "*",
            "null",
            "localhost:3000",
            "ftp://example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://user@example.com",
            "https://Example.com",
            "https://",
        ] {
            let settings = CorsSettings {
                allow_origins: vec!["https://shop.example".to_owned(), bad.to_owned()],
                ..CorsSettings::default()
            };
            let error = settings.check().unwrap_err().to_string();
            assert!(error.starts_with("cors.allow_origins[1]"), "{bad}: {error}");
        }
        for good in [
            "http://localhost:3000",
            "https://shop.example",
            "http://[::1]:8080",
        ] {
            let settings = CorsSettings {
                allow_origins: vec![good.to_owned()],
                ..CorsSettings::default()
            };
            settings.check().unwrap();
        }
    }

    #[test]
    fn check_refuses_duplicates_bad_header_names_and_a_long_max_age() {
        let twice = CorsSettings {
            allow_origins: vec!["https://a.example".to_owned(); 2],
            ..CorsSettings::default()
        };
        assert!(twice.check().unwrap_err().to_string().contains("twice"));
        let header = CorsSettings {
            expose_headers: vec!["etag".to_owned(), "bad header".to_owned()],
            ..CorsSettings::default()
        };
        assert!(
            header
                .check()
                .unwrap_err()
                .to_string()
                .starts_with("cors.expose_headers[1]")
        );
        let wildcard = CorsSettings {
            allow_headers: vec!["*".to_owned()],
            ..CorsSettings::default()
        };
        assert!(wildcard.check().is_err());
        let age = CorsSettings {
            max_age_s: MAX_AGE_LIMIT_S + 1,
            ..CorsSettings::default()
        };
        assert!(age.check().unwrap_err().to_string().contains("max_age_s"));
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_gets_204_with_the_allow_headers() {
        let cors = cors(&["http://localhost:3000"], true);
        let request = preflight_headers(
            "http://localhost:3000",
            "PUT",
            Some("Authorization, content-type"),
        );
        let response = cors.preflight(&request, &Method::OPTIONS).unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let h = response.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3000"
        );
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS]
                .to_str()
                .unwrap()
                .contains("PUT")
        );
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains("authorization") && allowed.contains("apikey"));
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(h[header::VARY].to_str().unwrap().starts_with("origin"));
    }

    #[tokio::test]
    async fn a_preflight_from_another_origin_or_for_an_unlisted_header_or_method_gets_403_problem()
    {
        let cors = cors(&["http://localhost:3000"], false);
        for (origin, method, headers, detail) in [
            ("https://evil.example", "GET", None, "origin"),
            ("http://localhost:3001", "GET", None, "origin"),
            ("http://localhost:3000", "TRACE", None, "method"),
            ("http://localhost:3000", "GET", Some("x-secret"), "x-secret"),
        ] {
            let request = preflight_headers(origin, method, headers);
            let response = cors.preflight(&request, &Method::OPTIONS).unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{origin} {method}"
            );
            let h = response.headers();
            assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
            assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
            assert!(h.contains_key(header::VARY));
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            assert!(body.contains(detail), "{body}");
        }
    }

    #[test]
    fn requests_that_are_no_preflight_or_meet_cors_off_are_left_alone() {
        let cors_on = cors(&["http://localhost:3000"], false);
        let full = preflight_headers("http://localhost:3000", "GET", None);
        assert!(cors_on.preflight(&full, &Method::GET).is_none());
        let mut no_method = full.clone();
        no_method.remove(header::ACCESS_CONTROL_REQUEST_METHOD);
        assert!(cors_on.preflight(&no_method, &Method::OPTIONS).is_none());
        let mut no_origin = full.clone();
        no_origin.remove(header::ORIGIN);
        assert!(cors_on.preflight(&no_origin, &Method::OPTIONS).is_none());
        let off = cors(&[], false);
        assert!(off.preflight(&full, &Method::OPTIONS).is_none());
    }

    #[test]
    fn an_allowed_origin_reads_the_answer_with_the_exposed_headers_and_no_wildcard() {
        let cors = cors(&["https://shop.example", "http://localhost:3000"], false);
        let origin = HeaderValue::from_static("http://localhost:3000");
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        cors.decorate(Some(&origin), &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        let exposed = headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
            .to_str()
            .unwrap();
        assert!(exposed.contains("ratelimit") && exposed.contains("location"));
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
        let vary: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["accept-encoding", "origin"]);

        // Decorating twice (a refusal built at the edge, say) adds no second `origin`.
        cors.decorate(Some(&origin), &mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 2);
    }

    #[test]
    fn another_origin_gets_no_cors_headers_and_an_upstreams_own_are_dropped() {
        let cors_on = cors(&["https://shop.example"], true);
        for origin in [Some(HeaderValue::from_static("https://evil.example")), None] {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            cors_on.decorate(origin.as_ref(), &mut headers);
            assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
            assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
            assert_eq!(headers[header::VARY], "origin");
        }

        let off = cors(&[], false);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        off.decorate(
            Some(&HeaderValue::from_static("https://x.example")),
            &mut headers,
        );
        assert!(headers.is_empty(), "{headers:?}");
    }

    #[test]
    fn decorating_a_preflight_answer_keeps_it_whole() {
        let cors = cors(&["https://shop.example"], true);
        let request = preflight_headers("https://shop.example", "DELETE", Some("authorization"));
        let mut response = cors.preflight(&request, &Method::OPTIONS).unwrap();
        let before = response.headers().clone();
        cors.decorate(request.get(header::ORIGIN), response.headers_mut());
        let h = response.headers();
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::VARY,
        ] {
            assert_eq!(h.get(&name), before.get(&name), "{name}");
        }
        assert_eq!(h.get_all(header::VARY).iter().count(), 1);
    }

    #[test]
    fn credentials_are_allowed_only_when_configured() {
        let cors = cors(&["https://shop.example"], true);
        let origin = HeaderValue::from_static("https://shop.example");
        let mut headers = HeaderMap::new();
        cors.decorate(Some(&origin), &mut headers);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    }
}
