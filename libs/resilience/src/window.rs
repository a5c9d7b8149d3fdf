//! A rolling window of counters, shared by the breaker (outcomes) and the retry budget
//! (requests and retries). The window is cut into a fixed number of buckets so that
//! memory and work per call stay constant however many calls go through: a count
//! leaves the window when its bucket is reused, that is between `span * (BUCKETS - 1) /
//! BUCKETS` and `span` after it was recorded.

use std::ops::Add;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets per window: a tenth of the span is precise enough to decide on trends and
/// keeps a sum at ten additions.
const BUCKETS: usize = 10;

#[derive(Debug)]
pub(crate) struct Window<T> {
    origin: Instant,
    bucket_nanos: u128,
    buckets: [T; BUCKETS],
    /// The index (since `origin`) of the newest bucket in use.
    head: u64,
}

impl<T: Copy + Default + Add<Output = T>> Window<T> {
    pub(crate) fn new(span: Duration, now: Instant) -> Self {
        Self {
            origin: now,
            bucket_nanos: (span.as_nanos() / BUCKETS as u128).max(1),
            buckets: [T::default(); BUCKETS],
            head: 0,
        }
    }

    /// Changes the counters of the current bucket.
    pub(crate) fn update(&mut self, now: Instant, change: impl FnOnce(&mut T)) {
        let slot = self.advance(now);
        change(&mut self.buckets[slot]);
    }

    /// The sum of the counters still inside the window.
    pub(crate) fn total(&mut self, now: Instant) -> T {
        self.advance(now);
        self.buckets
            .iter()
            .fold(T::default(), |sum, bucket| sum + *bucket)
    }

    /// Forgets everything, as if the window had just been created.
    pub(crate) fn clear(&mut self) {
        self.buckets = [T::default(); BUCKETS];
    }

    /// Moves the head to `now`, emptying the buckets that fell out on the way, and
    /// returns the slot of the current bucket.
    fn advance(&mut self, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        let index = u64::try_from(elapsed / self.bucket_nanos).unwrap_or(u64::MAX);
        if index > self.head {
            let stale = (index - self.head).min(BUCKETS as u64);
            for step in 0..stale {
                self.buckets[slot_of(index - step)] = T::default();
            }
            self.head = index;
        }
        // A caller holding an `Instant` taken before the lock can be a little behind
        // the head; its count goes to the current bucket, which is close enough.
        slot_of(self.head)
    }
}

fn slot_of(index: u64) -> usize {
    (index % BUCKETS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq)]
    struct Count(u64);

    impl Add for Count {
        type Output = Self;
        fn add(self, other: Self) -> Self {
            Self(self.0 + other.0)
        }
    }

    #[test]
    fn counts_stay_for_the_span_and_then_fall_out() {
        let start = Instant::now();
        let span = Duration::from_secs(10);
        let mut window = Window::<Count>::new(span, start);
        window.update(start, |c| c.0 += 3);
        window.update(start + Duration::from_secs(5), |c| c.0 += 4);

        assert_eq!(window.total(start + Duration::from_millis(9_500)), Count(7));
        assert_eq!(
            window.total(start + Duration::from_millis(10_000)),
            Count(4)
        );
        assert_eq!(window.total(start + Duration::from_secs(15)), Count(0));
    }

    #[test]
    fn a_long_silence_empties_every_bucket() {
        let start = Instant::now();
        let mut window = Window::<Count>::new(Duration::from_secs(1), start);
        for ms in 0..1000 {
            window.update(start + Duration::from_millis(ms), |c| c.0 += 1);
        }
        assert_eq!(
            window.total(start + Duration::from_millis(999)),
            Count(1000)
        );
        assert_eq!(window.total(start + Duration::from_secs(3600)), Count(0));
    }

    #[test]
    fn clear_forgets_all_counts() {
        let start = Instant::now();
        let mut window = Window::<Count>::new(Duration::from_secs(1), start);
        window.update(start, |c| c.0 += 5);
        window.clear();
        assert_eq!(window.total(start), Count(0));
    }
}
