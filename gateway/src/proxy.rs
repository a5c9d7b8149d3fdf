//! The proxy path: find the route, check who is asking and how often, choose the
//! release track and an instance, forward, and stream the answer back. Bodies are
//! streamed both ways, never buffered.
//!
//! In order: route (404), method (405), identity: an API key or a token as the route's
//! policy asks (401, 403), rate limit per client (429), declared body size (413),
//! release track (canary or stable), circuit breaker (503 while open), an instance
//! (503 when none is available), the exchange within the route's timeout (504), and
//! for idempotent requests without a body, retries on another instance with
//! exponential backoff and jitter while the retry budget allows.
//!
//! What the upstream sees: the client's request with the hop-by-hop headers and the
//! `apikey` removed, the original `Authorization` (each service verifies the token
//! again: zero trust), the request id, the W3C trace context of the gateway's span (the
//! client's, continued), and `X-Forwarded-For`/`-Proto`/`-Host` plus `Forwarded` naming
//! the client as the gateway saw it. Whatever a client sent in those forwarding headers
//! is dropped: the gateway is the edge, so nobody before it is trusted to have set them.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts as _, Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use metrics::SharedString;
use shop_auth::{Authenticated, Role};
use shop_http::Problem;
use shop_http::observe::{RouteLabel, status_label};
use tokio::time::Instant;

use crate::cores::CoreClient;
use crate::edge::apikeys::API_KEY_HEADER;
use crate::edge::client::ClientKey;
use crate::edge::ratelimit::Decision;
use crate::release::{self, Track};
use crate::routes::{Policy, Route};
use crate::state::{Backend, Gateway, Hop, Snapshot, UpstreamBody, UpstreamClient};
use crate::tls::Tls;
use crate::upstream::{Instance, Outcome};

/// Headers that describe one connection, not the message: never forwarded (RFC 9110
/// 7.6.1), nor any header the `Connection` header names. Names, not strings, so that
/// removing them parses nothing on every request.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Set by the gateway only; a client's own values are dropped.
const FORWARDING: [HeaderName; 7] = [
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("baggage"),
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The proxy handler: every path the gateway does not serve itself.
pub async fn proxy(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let snapshot = gateway.snapshot();
    let mut limit = None;
    let mut label = None;
    let mut response = forward(&gateway, &snapshot, request, &mut limit, &mut label)
        .await
        .unwrap_or_else(|refusal| refusal);
    if let Some(decision) = limit {
        decision.headers(response.headers_mut());
    }
    if let Some(route) = label {
        response.extensions_mut().insert(RouteLabel(route));
    }
    response
}

async fn forward(
    gateway: &Gateway,
    snapshot: &Snapshot,
    request: Request,
    limit: &mut Option<Decision>,
    label: &mut Option<Arc<str>>,
) -> Result<Response, Response> {
    let path = request.uri().path().to_owned();
    let route = snapshot
        .routes
        .find(&path)
        .ok_or_else(|| Problem::not_found("no route matches this path").into_response())?;
    *label = Some(route.label.clone());
    let (mut parts, body) = request.into_parts();
    if !route.allows(&parts.method) {
        return Err(method_not_allowed(route));
    }

    // Who is asking: an API key (checked whenever one is sent), a token when the
    // route's policy needs one, else the address the connection came from (or, from a
    // trusted proxy such as the Ingress, the client it names in `X-Forwarded-For`).
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    // Worked out by the edge policies around the proxy; here only for an app without them.
    let via = match parts.extensions.remove::<Hop>() {
        Some(hop) => hop,
        None => gateway.hop(peer, &parts.headers),
    };
    let peer = via.client;
    // A refused identity is charged to the address it came from, so guessing keys or
    // replaying bad tokens runs into the route's budget like anything else.
    let refuse = |response: Response| -> Response {
        if let Some(name) = &route.rate_limit {
            let decision = snapshot.rate_limits.check(name, &ClientKey::ip(peer));
            if !decision.allowed() {
                return decision.refusal();
            }
        }
        response
    };
    let consumer = match parts.headers.get(API_KEY_HEADER) {
        None => None,
        Some(key) => Some(snapshot.api_keys.verify(key).ok_or_else(|| {
            refuse(Problem::unauthorized("The API key is not valid.").into_response())
        })?),
    };
    let mut client = match consumer {
        Some(consumer) => ClientKey::consumer(consumer),
        None => ClientKey::ip(peer),
    };
    match route.policy_for(&parts.method) {
        Policy::Public => {}
        Policy::ApiKey => {
            if consumer.is_none() {
                return Err(refuse(
                    Problem::unauthorized("This route needs an API key (`apikey` header).")
                        .into_response(),
                ));
            }
        }
        policy => {
            let Authenticated(claims) =
                Authenticated::from_request_parts(&mut parts, &gateway.verifier)
                    .await
                    .map_err(|refused| refuse(refused.into_response()))?;
            if policy == Policy::Admin && !claims.has_role(Role::Admin) {
                return Err(shop_auth::AuthError::Forbidden(Role::Admin.as_str()).into_response());
            }
            client = ClientKey::user(claims.sub);
        }
    }

    // A consumer's own budget, when it has one, replaces the route's.
    let budget_name = consumer
        .and_then(|c| c.rate_limit())
        .or(route.rate_limit.as_deref());
    if let Some(name) = budget_name {
        let decision = snapshot.rate_limits.check(name, &client);
        if !decision.allowed() {
            return Err(decision.refusal());
        }
        *limit = Some(decision);
    }

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let max_body = gateway.settings.max_body_bytes;
    if declared.is_some_and(|n| n > max_body) {
        return Err(too_large(max_body));
    }

    let (track, upstream_name) = release::choose(route, &parts.headers, fastrand::u8(0..100));
    if route.canary.is_some() {
        metrics::counter!("gateway_release_requests_total", "route" => route.label.clone(), "track" => track.as_str()).increment(1);
    }
    let backend = &snapshot.backends[upstream_name];
    let target = route.upstream_path(&path, parts.uri.query());

    let tls = parts.extensions.get::<Tls>().is_some() || via.https;
    // HTTP/2 carries the host in the URI's authority, not in a Host header.
    let host = via.host.or_else(|| {
        parts.headers.get(header::HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        })
    });
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers);
    for name in &FORWARDING {
        headers.remove(name);
    }
    headers.remove(API_KEY_HEADER);
    headers.remove(header::HOST);
    set_forwarding(&mut headers, peer, tls, host.as_ref());
    shop_telemetry::inject_current_context(&mut headers);

    // Only a request that can be sent again unchanged is retried: an idempotent method
    // (RFC 9110 9.2.2) with no body, since a streamed body is gone once sent.
    let replayable =
        parts.method.is_idempotent() && http_body::Body::size_hint(&body).exact() == Some(0);
    let mut body = Some(body);
    let client = CoreClient::of(&parts.extensions, gateway);
    let mut exchange = Exchange {
        gateway,
        client,
        route,
        backend,
        track,
        method: parts.method.clone(),
        target,
        headers,
        replayable: replayable && route.retries > 0,
        deadline: Instant::now() + route.timeout,
    };
    // The breaker judges the upstream by what its clients got, once per request: a
    // failure that a retry on another instance mended is no failure of the service
    // (the bad instance is the ejection's business).
    let permit = backend
        .breaker
        .try_acquire()
        .map_err(|open| circuit_open(open.retry_after))?;
    snapshot.budget.record_request();
    let mut tried: Vec<Instance> = Vec::new();
    let mut attempt = 0;
    loop {
        let upstream_body: UpstreamBody = match body.take() {
            Some(body) => Limited::new(body, max_body as usize)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e })
                .boxed_unsync(),
            None => Empty::new().map_err(|never| match never {}).boxed_unsync(),
        };
        let failure = match exchange.attempt(upstream_body, &tried).await {
            Ok(response) => {
                permit.success();
                return Ok(response);
            }
            Err(failure) => failure,
        };
        let can_retry = replayable
            && failure.retryable
            && attempt < route.retries
            && exchange.time_left() > Duration::ZERO;
        let give_up = !can_retry || !snapshot.budget.try_retry();
        if give_up {
            if can_retry {
                tracing::warn!(route = %route.name, upstream = %backend.upstream.name(), "retry budget spent: not retrying");
            }
            if failure.blame_upstream {
                permit.failure();
            }
            return Err(failure.response);
        }
        let pause = snapshot.backoff.delay(attempt).min(exchange.time_left());
        attempt += 1;
        metrics::counter!("gateway_retries_total", "route" => route.label.clone()).increment(1);
        tried.extend(failure.tried);
        tokio::time::sleep(pause).await;
    }
}

/// One request's way upstream, tried once or more.
struct Exchange<'a> {
    gateway: &'a Gateway,
    client: &'a UpstreamClient,
    route: &'a Route,
    backend: &'a Backend,
    track: Track,
    method: Method,
    target: String,
    headers: HeaderMap,
    /// Whether a failed attempt may be followed by another.
    replayable: bool,
    deadline: Instant,
}

/// An attempt that did not give the client its answer.
struct Failure {
    response: Response,
    /// Worth another attempt (on another instance, when there is one).
    retryable: bool,
    /// The upstream could not serve (counts against its breaker), as opposed to a
    /// refusal of the request itself.
    blame_upstream: bool,
    /// The instance it went to, so a retry can avoid it.
    tried: Option<Instance>,
}

impl Exchange<'_> {
    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    async fn attempt(
        &mut self,
        body: UpstreamBody,
        tried: &[Instance],
    ) -> Result<Response, Failure> {
        let upstream = &self.backend.upstream;
        let mut lease = upstream.pick_except(tried).ok_or_else(|| Failure {
            response: no_instance(),
            retryable: false,
            blame_upstream: true,
            tried: None,
        })?;
        if !lease.slot(self.time_left()).await {
            // Every connection to the instance stayed busy for the whole deadline: an
            // upstream that slow is the breaker's business, not the instance's alone.
            // Counted, but no latency: it never reached the instance.
            count(
                self.route,
                upstream.name(),
                lease.instance().authority.as_str(),
                SharedString::const_str("queued"),
            );
            return Err(Failure {
                response: timed_out(self.route),
                retryable: false,
                blame_upstream: true,
                tried: None,
            });
        }
        let uri = lease.instance().uri(&self.target).map_err(|_| Failure {
            response: Problem::bad_request("the path cannot be forwarded").into_response(),
            retryable: false,
            blame_upstream: false,
            tried: None,
        })?;
        let mut request = http::Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        // A request that will not be tried again gives its headers away; one that may
        // be needs them for the next attempt.
        *request.headers_mut() = if self.replayable {
            self.headers.clone()
        } else {
            std::mem::take(&mut self.headers)
        };

        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.time_left(), self.client.request(request)).await;
        let instance = lease.instance().authority.as_str().to_owned();
        let record = |outcome: SharedString| {
            record(self.route, upstream.name(), &instance, outcome, started);
        };
        match outcome {
            Ok(Ok(answer)) if is_unavailable(answer.status()) => {
                record(status_label(answer.status()));
                lease.report(Outcome::Failure);
                // The upstream's own problem document goes back if this is the last
                // attempt: it is the service speaking, not the gateway.
                let (mut parts, body) = answer.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Err(Failure {
                    response: Response::from_parts(parts, Body::new(body)),
                    retryable: true,
                    blame_upstream: true,
                    tried: Some(lease.instance().clone()),
                })
            }
            Ok(Ok(answer)) => {
                record(status_label(answer.status()));
                lease.report(Outcome::Success);
                lease.release_slot();
                let (mut parts, body) = answer.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                // The lease (an in-flight count for least-connections) lasts as long as
                // the body streams.
                let body = body.map_err(move |e| {
                    let _in_flight = &lease;
                    e
                });
                Ok(Response::from_parts(parts, Body::new(body)))
            }
            Ok(Err(e)) => {
                let connect = e.is_connect();
                record(SharedString::const_str(if connect {
                    "unreachable"
                } else {
                    "broken"
                }));
                if let Some(too_large) = body_too_large(&e, self.gateway.settings.max_body_bytes) {
                    // The client's fault, not the instance's.
                    return Err(Failure {
                        response: too_large,
                        retryable: false,
                        blame_upstream: false,
                        tried: None,
                    });
                }
                lease.report(Outcome::Failure);
                tracing::warn!(route = %self.route.name, upstream = %upstream.name(), %instance, error = %e, "upstream exchange failed");
                Err(Failure {
                    response: if connect { unreachable() } else { broken() },
                    retryable: true,
                    blame_upstream: true,
                    tried: Some(lease.instance().clone()),
                })
            }
            Err(_) => {
                record(SharedString::const_str("timeout"));
                lease.report(Outcome::Failure);
                tracing::warn!(route = %self.route.name, upstream = %upstream.name(), %instance, track = self.track.as_str(), "upstream timed out");
                Err(Failure {
                    response: timed_out(self.route),
                    retryable: false,
                    blame_upstream: true,
                    tried: Some(lease.instance().clone()),
                })
            }
        }
    }
}

/// Answers that say the instance could not serve, rather than that the request was
/// wrong: they count against the instance and its breaker, and may be retried.
fn is_unavailable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Upstream requests by route, upstream, instance and outcome (the HTTP status, or
/// `unreachable`, `timeout`, `broken`), and their latency up to the response headers.
fn record(
    route: &Route,
    upstream: &str,
    instance: &str,
    outcome: SharedString,
    started: std::time::Instant,
) {
    let elapsed = started.elapsed();
    tracing::debug!(route = %route.name, upstream, instance, outcome = &*outcome, upstream_ms = elapsed.as_secs_f64() * 1000.0, "proxied");
    let labels = count(route, upstream, instance, outcome);
    metrics::histogram!("gateway_upstream_duration_seconds", &labels[..3])
        .record(elapsed.as_secs_f64());
}

/// Counts one upstream request by its outcome; returns the labels.
fn count(
    route: &Route,
    upstream: &str,
    instance: &str,
    outcome: SharedString,
) -> [(&'static str, SharedString); 4] {
    let labels = [
        ("route", SharedString::from(route.label.clone())),
        ("upstream", SharedString::from(upstream.to_owned())),
        ("instance", SharedString::from(instance.to_owned())),
        ("outcome", outcome),
    ];
    metrics::counter!("gateway_upstream_requests_total", &labels).increment(1);
    labels
}

/// `X-Forwarded-For`, `-Proto`, `-Host` and `Forwarded` (RFC 7239) for this hop.
fn set_forwarding(headers: &mut HeaderMap, peer: IpAddr, tls: bool, host: Option<&HeaderValue>) {
    use std::fmt::Write as _;
    let proto = if tls { "https" } else { "http" };
    // `for=` and, after it, the bare address for `X-Forwarded-For`: one buffer.
    let mut forwarded = String::with_capacity(96);
    let _ = match peer {
        IpAddr::V4(v4) => write!(forwarded, "for={v4}"),
        IpAddr::V6(v6) => write!(forwarded, "for=\"[{v6}]\""),
    };
    let address = match peer {
        IpAddr::V4(_) => &forwarded["for=".len()..],
        IpAddr::V6(_) => &forwarded["for=\"[".len()..forwarded.len() - "]\"".len()],
    };
    if let Ok(value) = HeaderValue::from_str(address) {
        headers.insert(FORWARDING[1].clone(), value);
    }
    forwarded.push_str(";proto=");
    forwarded.push_str(proto);
    headers.insert(FORWARDING[2].clone(), HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(FORWARDING[3].clone(), host.clone());
        if let Ok(h) = host.to_str()
            && h.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        {
            let _ = write!(forwarded, ";host=\"{h}\"");
        }
    }
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        headers.insert(header::FORWARDED, value);
    }
}

fn method_not_allowed(route: &Route) -> Response {
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed.",
    )
    .into_response();
    if let Ok(allow) = HeaderValue::from_str(&route.allow_header()) {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

fn too_large(limit: u64) -> Response {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "The request body is too large.",
    )
    .with_detail(format!("at most {limit} bytes"))
    .into_response()
}

fn body_too_large(e: &hyper_util::client::legacy::Error, limit: u64) -> Option<Response> {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.downcast_ref::<LengthLimitError>().is_some() {
            return Some(too_large(limit));
        }
        source = cause.source();
    }
    None
}

fn unavailable(slug: &str, title: &str, retry_after: u64) -> Response {
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, slug, title)
        .with_detail("Try again shortly.")
        .with_retry_after(retry_after)
        .into_response()
}

fn unreachable() -> Response {
    unavailable("upstream-unavailable", "The service is unavailable.", 1)
}

fn no_instance() -> Response {
    unavailable(
        "upstream-unavailable",
        "The service has no instance available.",
        1,
    )
}

fn circuit_open(retry_after: Duration) -> Response {
    unavailable(
        "circuit-open",
        "The service is failing; requests are held off while it recovers.",
        retry_after.as_secs_f64().ceil().max(1.0) as u64,
    )
}

fn broken() -> Response {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "bad-gateway",
        "The service's answer was broken off.",
    )
    .into_response()
}

fn timed_out(route: &Route) -> Response {
    Problem::new(
        StatusCode::GATEWAY_TIMEOUT,
        "upstream-timeout",
        "The service did not answer in time.",
    )
    .with_detail(format!("no answer within {} ms", route.timeout.as_millis()))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(peer: &str, tls: bool, host: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let host = host.map(HeaderValue::from_str).transpose().unwrap();
        set_forwarding(&mut headers, peer.parse().unwrap(), tls, host.as_ref());
        headers
    }

    #[test]
    fn an_ipv4_client_is_named_bare_in_both_forms_with_protocol_and_host() {
        let headers = forwarded("192.0.2.7", false, Some("shop.example"));
        assert_eq!(headers["x-forwarded-for"], "192.0.2.7");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "shop.example");
        assert_eq!(
            headers["forwarded"],
            "for=192.0.2.7;proto=http;host=\"shop.example\""
        );
    }

    #[test]
    fn an_ipv6_client_is_bracketed_and_quoted_in_forwarded_only() {
        let headers = forwarded("2001:db8::1", true, None);
        assert_eq!(headers["x-forwarded-for"], "2001:db8::1");
        assert_eq!(headers["forwarded"], "for=\"[2001:db8::1]\";proto=https");
        assert!(!headers.contains_key("x-forwarded-host"));
    }

    #[test]
    fn a_host_that_cannot_be_quoted_stays_out_of_forwarded() {
        let headers = forwarded("192.0.2.7", false, Some("a\"b"));
        assert_eq!(headers["x-forwarded-host"], "a\"b");
        assert_eq!(headers["forwarded"], "for=192.0.2.7;proto=http");
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_stripped() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("keep-alive, x-hop"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-end-to-end", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-end-to-end"]);
    }
}
