//! [`Timeframe`]: the bar interval gaps are measured against.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The bar interval gaps are measured against: `30s`, `1m`, `5m`, `1h`, `1d`, …
///
/// # Examples
///
/// ```
/// use orchestrator_examples::data::Timeframe;
///
/// let tf: Timeframe = "15m".parse().unwrap();
/// assert_eq!(tf.seconds(), 900);
/// assert_eq!(tf.to_string(), "15m");
/// assert!("7q".parse::<Timeframe>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeframe {
    seconds: i64,
}

impl Timeframe {
    /// One minute, the default.
    pub const MINUTE: Self = Self { seconds: 60 };

    /// The interval in seconds.
    pub const fn seconds(self) -> i64 {
        self.seconds
    }
}

impl Default for Timeframe {
    fn default() -> Self {
        Self::MINUTE
    }
}

impl FromStr for Timeframe {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            format!("invalid timeframe {s:?}: expected a number and s, m, h or d (e.g. 1m, 4h, 1d)")
        };
        let s = s.trim();
        let unit = match s.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(err()),
        };
        let n: i64 = s[..s.len() - 1].parse().map_err(|_| err())?;
        match n.checked_mul(unit) {
            Some(seconds) if n > 0 && seconds <= 366 * 86_400 => Ok(Self { seconds }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s % size == 0 {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl Serialize for Timeframe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}
