//! The id of one process start: a UUID v4, never the hostname.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of one process start (one *instance*), a random UUID v4.
///
/// A process registers a fresh one every time it starts, never a hostname or a pid: a
/// restarted replica must not be taken for the one that died (its operations are
/// orphans), and two containers can share a hostname. The store fences every write on
/// the operation's owner instance and attempt (see [`Fence`](super::Fence)).
///
/// # Examples
///
/// ```
/// use orchestrator::store::InstanceId;
///
/// let a = InstanceId::generate();
/// let b = InstanceId::generate();
/// assert_ne!(a, b);
/// let text = a.to_string();
/// assert_eq!(text.len(), 36);
/// assert_eq!(text.as_bytes()[14], b'4'); // version 4
/// assert_eq!(text.parse::<InstanceId>()?, a);
/// # Ok::<(), orchestrator::store::InvalidInstanceId>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId([u8; 16]);

impl InstanceId {
    /// A fresh random id (UUID v4) from the operating system's random source.
    ///
    /// # Panics
    ///
    /// If the operating system's random source fails, as `uuid`'s `new_v4` does; on
    /// the supported platforms it does not.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Self::from_random(bytes)
    }

    /// The UUID v4 made of `bytes`: the version and variant bits are set, the other
    /// 122 bits are kept.
    pub const fn from_random(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    /// The 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    /// Lower-case hyphenated form, `8-4-4-4-12` hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({self})")
    }
}

/// Why a string is not an [`InstanceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid instance id {0:?} (expected a hyphenated UUID)")]
pub struct InvalidInstanceId(String);

impl FromStr for InstanceId {
    type Err = InvalidInstanceId;

    /// Parses the hyphenated form (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidInstanceId(s.chars().take(64).collect());
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return Err(invalid());
        }
        let mut digits = b.iter().filter(|&&c| c != b'-');
        let mut bytes = [0u8; 16];
        for byte in &mut bytes {
            let (Some(&hi), Some(&lo)) = (digits.next(), digits.next()) else {
                return Err(invalid());
            };
            let hex = |c: u8| char::from(c).to_digit(16);
            let (Some(hi), Some(lo)) = (hex(hi), hex(lo)) else {
                return Err(invalid());
            };
            // Two hex digits: at most 255.
            *byte = u8::try_from(hi * 16 + lo).map_err(|_| invalid())?;
        }
        if digits.next().is_some() {
            return Err(invalid());
        }
        Ok(Self(bytes))
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let id = InstanceId::from_random([0xff; 16]);
        assert_eq!(id.to_string(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(
            "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF".parse::<InstanceId>(),
            Ok(id)
        );
        for bad in [
            "",
            "ffffffff-ffff-4fff-bfff-fffffffffff",
            "ffffffffxffff-4fff-bfff-ffffffffffff",
            "gfffffff-ffff-4fff-bfff-ffffffffffff",
            "ffffffff-ffff-4fff-bfff-fffffffffff\u{e9}",
        ] {
            assert!(bad.parse::<InstanceId>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<InstanceId>(&json).unwrap(), id);
    }
}
