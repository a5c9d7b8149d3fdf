//! An HTTP load generator for GETs, for the benchmarks in `bench/`.
//!
//! ```text
//! load [--rate R | --concurrency C] --duration SECS [--warmup SECS] [--header 'Name: value']... URL...
//! ```
//!
//! - `--concurrency C` (closed loop, the default with C = 32): C workers send requests
//!   back to back over kept-alive connections, each cycling through the URLs from its
//!   own starting point. Measures saturation throughput; latency is per request.
//! - `--rate R` (open loop): a request is due every 1/R s, sent at that instant
//!   whatever happened to the earlier ones, with at most 4,096 in flight (a request
//!   due while that many are in flight is not sent and counted as dropped). Latency
//!   runs from the instant a request was *due*, not from when it went out, so a stall
//!   of the server (or of this generator) shows in the latencies instead of silently
//!   lowering the rate ("coordinated omission").
//!
//! Requests of the first `--warmup` seconds (default 2) are sent but not counted.
//! Latency covers every response, whatever its status, read to its last byte; errors
//! (connection refused or reset, timeouts) are counted apart and have no latency.
//! The last line is a summary in a fixed format for scripts:
//!
//! ```text
//! RESULT mode=rate target=2000 requests=40000 rps=1998.7 p50_ms=1.21 p90_ms=1.80 p99_ms=3.02 p999_ms=7.91 max_ms=12.40 errors=0 non2xx=0 dropped=0
//! ```
//!
//! `target` is the rate (req/s) in `rate` mode and the number of workers in
//! `concurrency` mode; `requests` counts responses and errors, `rps` responses (of any
//! status) per second from the end of the warm-up until the last counted request
//! ended; `non2xx` counts responses that are neither 2xx nor 3xx (a 304 to
//! `If-None-Match` is a success).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Url};
use tokio::sync::Semaphore;
use tokio::time::Instant;

const USAGE: &str = "usage: load [--rate R | --concurrency C] --duration SECS [--warmup SECS] \
                     [--header 'Name: value']... URL...";
const DEFAULT_CONCURRENCY: usize = 32;
/// Open loop: the most requests in flight. Beyond it the server is hopelessly behind,
/// and more sockets would only measure this machine's limits.
const MAX_IN_FLIGHT: usize = 4096;
/// A request that takes longer has failed, as far as a benchmark is concerned.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Closed loop: after an error a worker pauses this long, so that a server that is
/// down does not turn the workers into a busy loop of refused connections.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
enum Mode {
    Rate(f64),
    Concurrency(usize),
}

#[derive(Debug)]
struct Args {
    mode: Mode,
    duration: Duration,
    warmup: Duration,
    headers: HeaderMap,
    urls: Vec<Url>,
}

/// What a worker (closed loop) or all requests together (open loop) saw inside the
/// measured window.
#[derive(Debug, Default)]
struct Tally {
    /// Seconds per response, of any status.
    latencies: Vec<f64>,
    non_success: u64,
    errors: u64,
    dropped: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.non_success += other.non_success;
        self.errors += other.errors;
        self.dropped += other.dropped;
    }

    fn record(&mut self, outcome: Outcome, latency: Duration) {
        match outcome {
            Outcome::Success => self.latencies.push(latency.as_secs_f64()),
            Outcome::Other => {
                self.latencies.push(latency.as_secs_f64());
                self.non_success += 1;
            }
            Outcome::Error => self.errors += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 2xx or 3xx.
    Success,
    /// Any other status.
    Other,
    /// No complete response.
    Error,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return Ok(());
        }
        Err(e) => {
            eprintln!("load: {e:#}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let client = Client::builder()
        .default_headers(args.headers.clone())
        .timeout(REQUEST_TIMEOUT)
        // A proxy from the environment would put a third party into the measurement.
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let urls: Arc<[Url]> = args.urls.clone().into();

    let (what, target) = match args.mode {
        Mode::Rate(rate) => (format!("open loop at {rate} req/s"), format!("{rate}")),
        Mode::Concurrency(c) => (format!("closed loop, {c} workers"), c.to_string()),
    };
    println!(
        "load: {what}, {} s measured after {} s of warm-up, {} URL(s), first {}",
        args.duration.as_secs_f64(),
        args.warmup.as_secs_f64(),
        urls.len(),
        urls[0]
    );
    let (tally, elapsed) = match args.mode {
        Mode::Rate(rate) => open_loop(&client, &urls, rate, args.warmup, args.duration).await,
        Mode::Concurrency(c) => closed_loop(&client, &urls, c, args.warmup, args.duration).await,
    };

    let mut latencies = tally.latencies;
    latencies.sort_by(f64::total_cmp);
    let responses = latencies.len() as u64;
    let requests = responses + tally.errors;
    // Throughput is what the server answered: a refused connection is no work done.
    let rps = responses as f64 / elapsed.as_secs_f64();
    let pct = |p: f64| percentile_ms(&latencies, p);
    let (p50, p90, p99, p999, max) = (pct(50.0), pct(90.0), pct(99.0), pct(99.9), pct(100.0));
    println!(
        "requests      {requests} in {:.2} s: {rps:.1} responses/s",
        elapsed.as_secs_f64()
    );
    println!(
        "outcomes      {} 2xx/3xx, {} other status, {} errors, {} dropped (not sent)",
        responses - tally.non_success,
        tally.non_success,
        tally.errors,
        tally.dropped
    );
    println!("latency (ms)  p50 {p50}  p90 {p90}  p99 {p99}  p99.9 {p999}  max {max}");
    if let Mode::Rate(_) = args.mode {
        println!(
            "              (open loop: from the instant each request was due, so waiting \
             to be sent counts)"
        );
    }
    let mode = match args.mode {
        Mode::Rate(_) => "rate",
        Mode::Concurrency(_) => "concurrency",
    };
    println!(
        "RESULT mode={mode} target={target} requests={requests} rps={rps:.1} p50_ms={p50} \
         p90_ms={p90} p99_ms={p99} p999_ms={p999} max_ms={max} errors={} non2xx={} dropped={}",
        tally.errors, tally.non_success, tally.dropped
    );
    if responses == 0 {
        eprintln!("load: no response at all; is the server up?");
        std::process::exit(1);
    }
    Ok(())
}

/// `concurrency` workers, each sending its next request as soon as the last one is
/// answered. Returns what was sent from the end of the warm-up on, and the time from
/// then until the last of those requests was answered.
async fn closed_loop(
    client: &Client,
    urls: &Arc<[Url]>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> (Tally, Duration) {
    let measured_from = Instant::now() + warmup;
    let until = measured_from + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                // Workers start at different URLs so that together they spread over all.
                let mut next = worker % urls.len();
                loop {
                    let started = Instant::now();
                    if started >= until {
                        break;
                    }
                    let outcome = get(&client, &urls[next]).await;
                    next = (next + 1) % urls.len();
                    if started >= measured_from {
                        tally.record(outcome, started.elapsed());
                    }
                    if outcome == Outcome::Error {
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        // A worker only ends by returning its tally; a panic would be a bug here.
        tally.merge(worker.await.expect("a load worker panicked"));
    }
    (tally, measured_from.elapsed())
}

/// Sends a request every 1/`rate` s, each at its due instant, cycling through the
/// URLs. Returns what was due from the end of the warm-up on, and the time from then
/// until the last of those requests was answered.
async fn open_loop(
    client: &Client,
    urls: &Arc<[Url]>,
    rate: f64,
    warmup: Duration,
    duration: Duration,
) -> (Tally, Duration) {
    let start = Instant::now();
    let measured_from = start + warmup;
    let until = measured_from + duration;
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let shared = Arc::new(Mutex::new(Tally::default()));
    let mut dropped = 0;
    for i in 0u64.. {
        // Computed from the start rather than accumulated, so rounding never drifts.
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due >= until {
            break;
        }
        // The timer has a resolution of about a millisecond: at high rates requests
        // leave in small bursts, each still timed from its own due instant.
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let counted = due >= measured_from;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if counted {
                dropped += 1;
            }
            continue;
        };
        let (client, url, shared) = (
            client.clone(),
            urls[i as usize % urls.len()].clone(),
            shared.clone(),
        );
        tokio::spawn(async move {
            let outcome = get(&client, &url).await;
            let latency = due.elapsed();
            drop(slot);
            if counted {
                shared.lock().unwrap().record(outcome, latency);
            }
        });
    }
    // Every slot free again: every request sent has been answered or has failed (the
    // client's timeout bounds the wait).
    let all = u32::try_from(MAX_IN_FLIGHT).expect("MAX_IN_FLIGHT fits in u32");
    let _ = slots.acquire_many(all).await;
    let elapsed = measured_from.elapsed();
    let mut tally = std::mem::take(&mut *shared.lock().unwrap());
    tally.dropped = dropped;
    (tally, elapsed)
}

/// One GET, its body read to the end (the connection goes back to the pool only then).
async fn get(client: &Client, url: &Url) -> Outcome {
    let response = match client.get(url.clone()).send().await {
        Ok(response) => response,
        Err(_) => return Outcome::Error,
    };
    let status = response.status();
    if response.bytes().await.is_err() {
        return Outcome::Error;
    }
    if status.is_success() || status.is_redirection() {
        Outcome::Success
    } else {
        Outcome::Other
    }
}

/// The `p`th percentile (nearest rank) of sorted latencies in seconds, in ms with two
/// decimals; `nan` without any.
fn percentile_ms(sorted: &[f64], p: f64) -> String {
    if sorted.is_empty() {
        return "nan".to_owned();
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    let value = sorted[rank.clamp(1, sorted.len()) - 1];
    format!("{:.2}", value * 1000.0)
}

/// The arguments, or `None` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut rate = None;
    let mut concurrency = None;
    let mut duration = None;
    let mut warmup = Duration::from_secs(2);
    let mut headers = HeaderMap::new();
    let mut urls = Vec::new();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if !arg.starts_with("--") {
            let url = Url::parse(&arg).with_context(|| format!("URL {arg:?}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                bail!("URL {arg:?}: only http and https");
            }
            urls.push(url);
            continue;
        }
        // `--name value` or `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .with_context(|| format!("{name} needs a value"))?,
        };
        match name.as_str() {
            "--rate" => {
                let r: f64 = value.parse().with_context(|| format!("--rate {value:?}"))?;
                if !(r.is_finite() && r > 0.0) {
                    bail!("--rate must be a positive number of requests per second");
                }
                rate = Some(r);
            }
            "--concurrency" => {
                let c: usize = value
                    .parse()
                    .with_context(|| format!("--concurrency {value:?}"))?;
                if c == 0 {
                    bail!("--concurrency must be at least 1");
                }
                concurrency = Some(c);
            }
            "--duration" => duration = Some(seconds(&name, &value)?),
            "--warmup" => warmup = seconds(&name, &value)?,
            "--header" => {
                let (n, v) = value
                    .split_once(':')
                    .with_context(|| format!("--header {value:?}: expected 'Name: value'"))?;
                let n = HeaderName::from_bytes(n.trim().as_bytes())
                    .with_context(|| format!("header name {n:?}"))?;
                let v = HeaderValue::from_str(v.trim())
                    .with_context(|| format!("header value {v:?}"))?;
                headers.append(n, v);
            }
            other => bail!("unknown option {other}"),
        }
    }
    let mode = match (rate, concurrency) {
        (Some(_), Some(_)) => bail!("--rate and --concurrency exclude each other"),
        (Some(r), None) => Mode::Rate(r),
        (None, Some(c)) => Mode::Concurrency(c),
        (None, None) => Mode::Concurrency(DEFAULT_CONCURRENCY),
    };
    let duration = duration.context("--duration is required")?;
    if duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    if urls.is_empty() {
        bail!("at least one URL");
    }
    Ok(Some(Args {
        mode,
        duration,
        warmup,
        headers,
        urls,
    }))
}

fn seconds(name: &str, value: &str) -> anyhow::Result<Duration> {
    let secs: f64 = value
        .parse()
        .with_context(|| format!("{name} {value:?}: seconds"))?;
    Duration::try_from_secs_f64(secs).with_context(|| format!("{name} {value:?}: seconds"))
}
