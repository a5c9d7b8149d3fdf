//! Security headers on every answer the gateway gives, proxied or its own.
//!
//! The gateway sets them over whatever an upstream sent: it is the one origin browsers
//! see, so it is the one place that knows the policy (a service's CSP would describe
//! the service's own origin, and its HSTS would be wrong behind a plain-HTTP hop), the
//! one place to audit, and a misconfigured service cannot weaken them.
//!
//! The API answers JSON, which a browser never needs to run or frame, so its policy
//! forbids everything. The Swagger UI under `/docs` is a page; its policy allows
//! exactly what the vendored UI (utoipa-swagger-ui) loads: its own scripts and styles
//! from the gateway (the page has no inline script), inline styles (its Markdown
//! renderer writes `style="text-align:..."` into table cells), images from `data:`
//! (icons in its stylesheet) and `blob:` (image responses), and fetches to the gateway
//! only (the specs and "try it out").

use anyhow::bail;
use http::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;

use crate::docs::DOCS_PATH;

/// The policy of every answer but the docs pages: JSON needs nothing.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of the Swagger UI pages.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Two years: the longest HSTS max-age the preload list asks for.
pub const HSTS_MAX_AGE_LIMIT_S: u64 = 63_072_000;

/// `[security_headers]` in the gateway file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityHeadersSettings {
    /// How long a browser keeps to HTTPS after one answer over TLS, in seconds. 0 tells
    /// browsers to forget it (the way back from HTTPS, should it be needed).
    pub hsts_max_age_s: u64,
    /// Whether HSTS covers every subdomain too.
    pub hsts_include_subdomains: bool,
}

impl Default for SecurityHeadersSettings {
    fn default() -> Self {
        Self {
            hsts_max_age_s: 31_536_000,
            hsts_include_subdomains: true,
        }
    }
}

impl SecurityHeadersSettings {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.hsts_max_age_s > HSTS_MAX_AGE_LIMIT_S {
            bail!("security_headers.hsts_max_age_s must be at most {HSTS_MAX_AGE_LIMIT_S}");
        }
        Ok(())
    }
}

/// The headers, built once.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    hsts: HeaderValue,
}

impl Default for SecurityHeaders {
    fn default() -> Self {
        Self::new(&SecurityHeadersSettings::default())
    }
}

impl SecurityHeaders {
    pub fn new(settings: &SecurityHeadersSettings) -> Self {
        let mut hsts = format!("max-age={}", settings.hsts_max_age_s);
        if settings.hsts_include_subdomains {
            hsts.push_str("; includeSubDomains");
        }
        Self {
            hsts: HeaderValue::from_str(&hsts).unwrap_or(HeaderValue::from_static("max-age=0")),
        }
    }

    /// Sets the security headers of the answer to a request for `path`, over TLS or
    /// not, replacing an upstream's. HSTS only over TLS: browsers ignore it over plain
    /// HTTP (RFC 6797 8.1), and an upstream's is dropped there so no answer claims it.
    pub fn apply(&self, path: &str, tls: bool, headers: &mut HeaderMap) {
        let csp = if is_docs(path) { DOCS_CSP } else { API_CSP };
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // frame-ancestors says the same to current browsers; this is for older ones.
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        if tls {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, self.hsts.clone());
        } else {
            headers.remove(header::STRICT_TRANSPORT_SECURITY);
        }
    }
}

/// `/docs` and everything under it, on whole segments (`/docsearch` is no docs page).
fn is_docs(path: &str) -> bool {
    path.strip_prefix(DOCS_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_gets_the_strict_api_headers_and_no_hsts_without_tls() {
        let mut headers = HeaderMap::new();
        SecurityHeaders::default().apply("/api/v1/products", false, &mut headers);
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    #[test]
    fn answers_over_tls_get_hsts_as_configured() {
        let mut headers = HeaderMap::new();
        SecurityHeaders::default().apply("/healthz", true, &mut headers);
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000; includeSubDomains"
        );

        let settings = SecurityHeadersSettings {
            hsts_max_age_s: 600,
            hsts_include_subdomains: false,
        };
        settings.check().unwrap();
        let mut headers = HeaderMap::new();
        SecurityHeaders::new(&settings).apply("/", true, &mut headers);
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], "max-age=600");
    }

    #[test]
    fn the_docs_pages_get_a_policy_that_lets_the_swagger_ui_run_and_nothing_else() {
        for path in ["/docs", "/docs/", "/docs/swagger-ui-bundle.js"] {
            let mut headers = HeaderMap::new();
            SecurityHeaders::default().apply(path, false, &mut headers);
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert_eq!(csp, DOCS_CSP, "{path}");
            assert!(csp.contains("script-src 'self';"));
            assert!(!csp.contains("unsafe-eval"));
            assert!(csp.contains("frame-ancestors 'none'"));
        }
        for path in ["/docsearch", "/openapi/catalog.json", "/api/v1/docs"] {
            let mut headers = HeaderMap::new();
            SecurityHeaders::default().apply(path, false, &mut headers);
            assert_eq!(headers[header::CONTENT_SECURITY_POLICY], API_CSP, "{path}");
        }
    }

    #[test]
    fn the_gateway_overwrites_an_upstreams_security_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src *"),
        );
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=1"),
        );
        headers.insert("deprecation", HeaderValue::from_static("@1735689600"));
        SecurityHeaders::default().apply("/api/v1/orders", false, &mut headers);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], API_CSP);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert_eq!(headers.get_all(header::X_FRAME_OPTIONS).iter().count(), 1);
        // Not a security header: passed through untouched.
        assert_eq!(headers["deprecation"], "@1735689600");
    }

    #[test]
    fn check_refuses_an_hsts_max_age_past_two_years() {
        let settings = SecurityHeadersSettings {
            hsts_max_age_s: HSTS_MAX_AGE_LIMIT_S + 1,
            ..SecurityHeadersSettings::default()
        };
        let error = settings.check().unwrap_err().to_string();
        assert!(error.contains("security_headers.hsts_max_age_s"), "{error}");
    }
}
