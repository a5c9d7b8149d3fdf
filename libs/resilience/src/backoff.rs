//! How long to wait before a retry: exponential growth with "full jitter", a delay
//! drawn uniformly from zero up to the exponential ceiling. Clients that failed together
//! would otherwise retry together and hit the recovering upstream in waves; spreading
//! each retry over the whole interval breaks the waves up, and of the usual jitter
//! schemes it does so with the least total work (AWS architecture blog, "Exponential
//! Backoff And Jitter").

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The growth of the delay ceiling: `base_ms * multiplier^retry`, capped at `max_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffSettings {
    /// The ceiling before the first retry (25).
    pub base_ms: u64,
    /// The largest ceiling, whatever the retry number (1 000).
    pub max_ms: u64,
    /// The growth per retry, at least 1 (2.0).
    pub multiplier: f64,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self {
            base_ms: 25,
            max_ms: 1_000,
            multiplier: 2.0,
        }
    }
}

impl BackoffSettings {
    /// Refuses values the backoff cannot work with, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.base_ms == 0 {
            anyhow::bail!("backoff.base_ms must be at least 1");
        }
        if self.max_ms < self.base_ms {
            anyhow::bail!(
                "backoff.max_ms ({}) must be at least backoff.base_ms ({})",
                self.max_ms,
                self.base_ms
            );
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            anyhow::bail!(
                "backoff.multiplier must be a number of at least 1, not {}",
                self.multiplier
            );
        }
        Ok(())
    }
}

/// Retry delays with full jitter; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base_ms: f64,
    max_ms: f64,
    multiplier: f64,
}

impl Backoff {
    /// Expects checked settings; a multiplier below 1 (or not a number) is taken as 1.
    pub fn new(settings: &BackoffSettings) -> Self {
        let multiplier = if settings.multiplier >= 1.0 {
            settings.multiplier
        } else {
            1.0
        };
        Self {
            base_ms: settings.base_ms as f64,
            max_ms: settings.max_ms as f64,
            multiplier,
        }
    }

    /// The largest delay before retry number `retry` (0 for the first retry):
    /// `min(max, base * multiplier^retry)`, for any `retry` without overflow.
    pub fn ceiling(&self, retry: u32) -> Duration {
        // `powf` of a huge exponent is infinite, never NaN (the multiplier is at least
        // 1 and the base finite), and `min` brings infinity back to the cap.
        let grown = self.base_ms * self.multiplier.powf(f64::from(retry));
        let ceiling = grown.min(self.max_ms).max(0.0);
        Duration::from_micros((ceiling * 1_000.0) as u64)
    }

    /// The delay before retry number `retry`: uniform in `[0, ceiling(retry)]`.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, &mut fastrand::Rng::new())
    }

    /// [`Backoff::delay`] drawing from the given generator (seed it for a repeatable
    /// sequence).
    pub fn delay_with(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(retry).as_micros();
        let ceiling = u64::try_from(ceiling).unwrap_or(u64::MAX);
        Duration::from_micros(rng.u64(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(&BackoffSettings::default())
    }

    #[test]
    fn the_ceiling_doubles_from_the_base_up_to_the_cap() {
        let backoff = backoff();
        let ceilings: Vec<u128> = (0..8).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [25, 50, 100, 200, 400, 800, 1_000, 1_000]);
    }

    #[test]
    fn delays_stay_within_their_ceiling_for_retries_0_to_100_and_beyond() {
        let backoff = backoff();
        let mut rng = fastrand::Rng::with_seed(7);
        for retry in (0..=100).chain([1_000, u32::MAX]) {
            for _ in 0..50 {
                let delay = backoff.delay_with(retry, &mut rng);
                assert!(delay <= backoff.ceiling(retry), "retry {retry}: {delay:?}");
                assert!(delay <= Duration::from_secs(1), "retry {retry}: {delay:?}");
            }
        }
    }

    #[test]
    fn delays_are_jittered_not_constant() {
        let backoff = backoff();
        let delays: BTreeSet<Duration> = (0..100).map(|_| backoff.delay(5)).collect();
        // 100 draws from 800 001 possible values: a handful of repeats at most.
        assert!(delays.len() > 90, "only {} distinct delays", delays.len());
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(400))
            .count();
        assert!(
            (20..=80).contains(&low),
            "{low} of 100 delays in the lower half"
        );
    }

    #[test]
    fn a_seeded_generator_repeats_its_delays() {
        let backoff = backoff();
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..10)
                .map(|n| backoff.delay_with(n, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn a_huge_multiplier_still_caps_at_max() {
        let backoff = Backoff::new(&BackoffSettings {
            multiplier: 1e308,
            ..Default::default()
        });
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
        assert_eq!(backoff.ceiling(0), Duration::from_millis(25));
    }

    #[test]
    fn check_names_the_bad_field() {
        let bad = [
            (
                BackoffSettings {
                    base_ms: 0,
                    ..Default::default()
                },
                "base_ms",
            ),
            (
                BackoffSettings {
                    max_ms: 10,
                    ..Default::default()
                },
                "max_ms",
            ),
            (
                BackoffSettings {
                    multiplier: 0.5,
                    ..Default::default()
                },
                "multiplier",
            ),
            (
                BackoffSettings {
                    multiplier: f64::NAN,
                    ..Default::default()
                },
                "multiplier",
            ),
            (
                BackoffSettings {
                    multiplier: f64::INFINITY,
                    ..Default::default()
                },
                "multiplier",
            ),
        ];
        for (settings, field) in bad {
            let error = settings.check().unwrap_err().to_string();
            assert!(error.contains(field), "{error:?} should name {field}");
        }
        assert!(BackoffSettings::default().check().is_ok());
    }
}
