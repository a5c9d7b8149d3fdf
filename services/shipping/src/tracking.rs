//! `TrackingNumber`: what a customer types into the carrier's page, so it must not be
//! guessable from another one. `SHP` and 10 characters drawn from the operating
//! system's CSPRNG over `0-9A-Z` (36^10, about 3.7 * 10^15 numbers): two shipments
//! rarely draw the same one, and when they do the insert sees the unique constraint
//! and draws again (`crate::lifecycle::open`).

use std::fmt;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "SHP";
const LENGTH: usize = 10;
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The largest multiple of 36 a byte can hold: bytes at or above it are drawn again,
/// so every character is equally likely (`byte % 36` alone would favour the first 4).
const UNBIASED_BELOW: u8 = 252;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrackingNumber(String);

impl TrackingNumber {
    /// A fresh random number.
    pub fn generate() -> anyhow::Result<Self> {
        let mut number = String::with_capacity(PREFIX.len() + LENGTH);
        number.push_str(PREFIX);
        let mut bytes = [0u8; 32];
        while number.len() < PREFIX.len() + LENGTH {
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            for byte in bytes {
                if byte < UNBIASED_BELOW && number.len() < PREFIX.len() + LENGTH {
                    number.push(char::from(ALPHABET[usize::from(byte % 36)]));
                }
            }
        }
        Ok(Self(number))
    }

    /// A number as stored (the table's CHECK constraint holds the same rule).
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(PREFIX)?;
        let valid = rest.len() == LENGTH && rest.bytes().all(|b| ALPHABET.contains(&b));
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrackingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn a_tracking_number_is_shp_and_ten_upper_case_letters_or_digits() {
        for _ in 0..1000 {
            let number = TrackingNumber::generate().unwrap();
            assert_eq!(number.as_str().len(), 13, "{number}");
            assert!(TrackingNumber::parse(number.as_str()).is_some(), "{number}");
        }
        for bad in [
            "",
            "SHP",
            "SHP123456789",
            "SHP12345678901",
            "shp1234567890",
            "SHP123456789a",
            "XYZ1234567890",
        ] {
            assert!(TrackingNumber::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn tracking_numbers_use_every_character_and_do_not_repeat() {
        let numbers: Vec<_> = (0..2000)
            .map(|_| TrackingNumber::generate().unwrap())
            .collect();
        let distinct: HashSet<_> = numbers.iter().collect();
        assert_eq!(distinct.len(), numbers.len());
        let seen: HashSet<u8> = numbers
            .iter()
            .flat_map(|n| n.as_str().bytes().skip(3))
            .collect();
        assert_eq!(seen.len(), 36, "all of 0-9A-Z appear in 20,000 draws");
    }
}
