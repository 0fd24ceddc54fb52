//! The kind of an operation.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of work an operation does: a validated name, one representation only.
///
/// A kind is 1–64 characters of `[a-z0-9_]` starting with a letter, compared
/// case-insensitively with `-` and spaces read as `_`: `"report"`, `"REPORT"`,
/// `"Report"` and [`OperationType::new("report")`](Self::new) are the same key
/// everywhere (concurrency limits, list filters, ids). It is serialised upper-case
/// (`"DATA_LOAD"`) and appears lower-case in operation ids (`op_data_load_…`).
///
/// The constants name the kinds of the reference services; they are conveniences, not
/// a closed set: any valid name is a kind.
///
/// # Examples
///
/// ```
/// use orchestrator::OperationType;
///
/// assert_eq!(OperationType::from("data_load"), OperationType::DATA_LOAD);
/// assert_eq!(OperationType::new("Feature-Build")?.as_str(), "FEATURE_BUILD");
/// assert!(OperationType::new("a/b").is_err());
/// assert_eq!(serde_json::to_string(&OperationType::BACKTEST)?, "\"BACKTEST\"");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationType(Cow<'static, str>);

/// Why a string is not a valid [`OperationType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid operation type {input:?}: {reason}")]
pub struct InvalidOperationType {
    input: String,
    reason: &'static str,
}

impl InvalidOperationType {
    fn new(input: &str, reason: &'static str) -> Self {
        // Bounded even for hostile input.
        Self {
            input: input.chars().take(MAX_LEN + 8).collect(),
            reason,
        }
    }
}

/// The longest kind name accepted.
const MAX_LEN: usize = 64;

impl OperationType {
    /// The reference `DummyService` operation.
    pub const DUMMY: Self = Self(Cow::Borrowed("DUMMY"));
    /// Loading data (for example OHLCV bars).
    pub const DATA_LOAD: Self = Self(Cow::Borrowed("DATA_LOAD"));
    /// Training a model.
    pub const TRAINING: Self = Self(Cow::Borrowed("TRAINING"));
    /// Running a backtest.
    pub const BACKTEST: Self = Self(Cow::Borrowed("BACKTEST"));
    /// Operations of detached contexts (`OperationContext::detached`).
    pub(crate) const DETACHED: Self = Self(Cow::Borrowed("DETACHED"));

    /// Validates a kind name: case-insensitive, `-` and spaces read as `_`, then
    /// 1–64 characters of `[a-z0-9_]` starting with a letter. For names from outside
    /// (a request, a config file).
    ///
    /// # Errors
    ///
    /// [`InvalidOperationType`] saying what is wrong with it.
    pub fn new(name: &str) -> Result<Self, InvalidOperationType> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(InvalidOperationType::new(name, "it is empty"));
        }
        if trimmed.len() > MAX_LEN {
            return Err(InvalidOperationType::new(
                name,
                "it is longer than 64 characters",
            ));
        }
        let mut upper = String::with_capacity(trimmed.len());
        for c in trimmed.chars() {
            upper.push(match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c.to_ascii_uppercase(),
                '-' | ' ' => '_',
                _ => {
                    return Err(InvalidOperationType::new(
                        name,
                        "only letters, digits, `_`, `-` and spaces are allowed",
                    ));
                }
            });
        }
        if !upper.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(InvalidOperationType::new(
                name,
                "it must start with a letter",
            ));
        }
        Ok(Self::known(upper))
    }

    /// The same name for a known kind, so that its constant and a parsed name share
    /// one string.
    fn known(upper: String) -> Self {
        for known in [Self::DUMMY, Self::DATA_LOAD, Self::TRAINING, Self::BACKTEST] {
            if known.0 == upper.as_str() {
                return known;
            }
        }
        Self(Cow::Owned(upper))
    }

    /// Like [`new`](Self::new), but never fails: characters that are not allowed
    /// become `_`, a name is cut to 64 characters, and a name that does not start with
    /// a letter gets a `k` in front (an empty one is `custom`). For names written in
    /// code, as in `OperationSpec::new("report")`; validate input from outside with
    /// [`new`](Self::new).
    fn sanitised(name: &str) -> Self {
        if let Some(kind) = interned::find(name) {
            return Self(Cow::Borrowed(kind));
        }
        interned::keep(Self::sanitised_anew(name))
    }

    fn sanitised_anew(name: &str) -> Self {
        if let Ok(kind) = Self::new(name) {
            return kind;
        }
        let mut upper: String = name
            .trim()
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_uppercase(),
                _ => '_',
            })
            .take(MAX_LEN)
            .collect();
        if upper.is_empty() {
            upper.push_str("CUSTOM");
        } else if !upper.starts_with(|c: char| c.is_ascii_alphabetic()) {
            upper.insert(0, 'K');
            upper.truncate(MAX_LEN);
        }
        Self::known(upper)
    }

    /// The wire name, upper-case, e.g. `"DATA_LOAD"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Kind names written in code, kept once per process.
///
/// `OperationSpec::new("report")` and every macro-generated operation name their kind
/// with a `&str`; without this, each operation would allocate its own upper-cased
/// copy. The first [`CAPACITY`] distinct names made by `From<&str>`/`From<String>` are
/// kept for the life of the process (at most 16 KiB: a name is at most 64 bytes),
/// later ones are allocated as before. Names from outside (`OperationType::new`,
/// `FromStr`, deserialising) are never kept, so input cannot fill the table.
mod interned {
    use std::borrow::Cow;
    use std::cell::Cell;
    use std::sync::RwLock;

    use super::{MAX_LEN, OperationType};

    const CAPACITY: usize = 256;

    static TABLE: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

    thread_local! {
        /// The names this thread found last, to spare it the shared lock.
        static RECENT: Cell<[Option<&'static str>; 4]> = const { Cell::new([None; 4]) };
    }

    /// Whether `raw` reads as the kept name `kept`: what `OperationType::new(raw)`
    /// would make of it, byte for byte.
    fn reads_as(raw: &str, kept: &str) -> bool {
        raw.len() == kept.len()
            && raw.bytes().zip(kept.bytes()).all(|(r, k)| {
                let r = match r {
                    b'a'..=b'z' => r.to_ascii_uppercase(),
                    b'A'..=b'Z' | b'0'..=b'9' | b'_' => r,
                    b'-' | b' ' => b'_',
                    _ => return false,
                };
                r == k
            })
    }

    /// The kept name `raw` reads as, if there is one.
    pub(super) fn find(raw: &str) -> Option<&'static str> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_LEN {
            return None;
        }
        let recent = RECENT.with(Cell::get);
        if let Some(kept) = recent.iter().flatten().find(|k| reads_as(raw, k)) {
            return Some(kept);
        }
        let kept = TABLE
            .read()
            .ok()?
            .iter()
            .copied()
            .find(|k| reads_as(raw, k))?;
        remember(kept);
        Some(kept)
    }

    fn remember(kept: &'static str) {
        RECENT.with(|r| {
            let mut recent = r.get();
            recent.rotate_right(1);
            recent[0] = Some(kept);
            r.set(recent);
        });
    }

    /// `kind`, kept if there is room (an owned name is leaked once for good).
    pub(super) fn keep(kind: OperationType) -> OperationType {
        let Ok(mut table) = TABLE.write() else {
            return kind;
        };
        if let Some(kept) = table.iter().copied().find(|k| *k == kind.as_str()) {
            remember(kept);
            return OperationType(Cow::Borrowed(kept));
        }
        if table.len() >= CAPACITY {
            return kind;
        }
        let kept: &'static str = match kind.0 {
            Cow::Borrowed(name) => name,
            Cow::Owned(name) => Box::leak(name.into_boxed_str()),
        };
        table.push(kept);
        remember(kept);
        OperationType(Cow::Borrowed(kept))
    }
}

impl FromStr for OperationType {
    type Err = InvalidOperationType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Never fails: see [`OperationType::new`] for validation. Characters that are not
/// allowed become `_` (so `"a/b"` is `A_B`).
impl From<&str> for OperationType {
    fn from(name: &str) -> Self {
        Self::sanitised(name)
    }
}

/// As `From<&str>`.
impl From<String> for OperationType {
    fn from(name: String) -> Self {
        Self::sanitised(&name)
    }
}

impl fmt::Display for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OperationType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Validates, as [`OperationType::new`].
impl<'de> Deserialize<'de> for OperationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::OperationType;

    #[test]
    fn one_representation_whatever_the_spelling() {
        for spelling in ["report", "REPORT", "Report", " report "] {
            assert_eq!(OperationType::from(spelling), OperationType::from("report"));
            assert_eq!(OperationType::new(spelling).unwrap().as_str(), "REPORT");
        }
        assert_eq!(OperationType::from("data-load"), OperationType::DATA_LOAD);
        assert_eq!(
            OperationType::new("feature build").unwrap().as_str(),
            "FEATURE_BUILD"
        );
    }

    #[test]
    fn names_round_trip_through_serde() {
        for kind in [
            OperationType::DUMMY,
            OperationType::DATA_LOAD,
            OperationType::TRAINING,
            OperationType::BACKTEST,
            OperationType::from("my custom"),
            OperationType::from("dummy"),
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<OperationType>(&json).unwrap(), kind);
        }
        for bad in [
            "\"\"",
            "\"a/b\"",
            "\"1st\"",
            "\"ü\"",
            &format!("\"{}\"", "a".repeat(65)),
        ] {
            assert!(serde_json::from_str::<OperationType>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_written_in_code_is_kept_once() {
        let a = OperationType::from("kept_once");
        let b = OperationType::from("Kept-Once");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "KEPT_ONCE");
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "one shared string");
        // From another thread too (its own recent names, the shared table).
        let c = std::thread::spawn(|| OperationType::from(" kept once "))
            .join()
            .unwrap();
        assert!(std::ptr::eq(a.as_str(), c.as_str()));
        // Names from outside are validated, never kept, and still equal.
        let parsed = OperationType::new("kept_once").unwrap();
        assert_eq!(parsed, a);
        assert!(!std::ptr::eq(parsed.as_str(), a.as_str()));
        // A name that only looks close is another kind.
        assert_ne!(OperationType::from("kept_oncf"), a);
        assert_eq!(OperationType::from("kept/once").as_str(), "KEPT_ONCE");
    }

    #[test]
    fn lenient_conversion_never_fails_and_stays_valid() {
        for (input, expected) in [
            ("a/b", "A_B"),
            ("", "CUSTOM"),
            ("1st", "K1ST"),
            ("ünïcode", "K_N_CODE"),
        ] {
            let kind = OperationType::from(input);
            assert_eq!(kind.as_str(), expected, "{input}");
            assert_eq!(OperationType::new(kind.as_str()), Ok(kind));
        }
        assert_eq!(OperationType::from("a".repeat(200)).as_str().len(), 64);
    }
}
