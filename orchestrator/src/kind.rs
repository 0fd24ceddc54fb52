//! The kind of an operation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of work an operation does. Serialised as an upper-case name:
/// `DUMMY`, `DATA_LOAD`, `TRAINING`, `BACKTEST`, or the upper-cased custom name.
///
/// # Examples
///
/// ```
/// use orchestrator::OperationType;
///
/// assert_eq!(OperationType::from("data_load"), OperationType::DataLoad);
/// assert_eq!(OperationType::from("feature-build").as_str(), "FEATURE_BUILD");
/// assert_eq!(serde_json::to_string(&OperationType::Backtest)?, "\"BACKTEST\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum OperationType {
    /// The reference `DummyService` operation.
    Dummy,
    /// Loading data (for example OHLCV bars).
    DataLoad,
    /// Training a model.
    Training,
    /// Running a backtest.
    Backtest,
    /// A user-defined kind, stored upper-case (`FEATURE_BUILD`).
    Custom(String),
}

impl OperationType {
    /// The wire name, e.g. `"DATA_LOAD"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Dummy => "DUMMY",
            Self::DataLoad => "DATA_LOAD",
            Self::Training => "TRAINING",
            Self::Backtest => "BACKTEST",
            Self::Custom(name) => name,
        }
    }

    /// Parses a name, case-insensitively; `-` and spaces count as `_`. Unknown names
    /// become [`OperationType::Custom`].
    pub fn parse(name: &str) -> Self {
        for known in [Self::Dummy, Self::DataLoad, Self::Training, Self::Backtest] {
            if known.as_str().eq_ignore_ascii_case(name) {
                return known;
            }
        }
        let upper: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect();
        match upper.as_str() {
            "DUMMY" => Self::Dummy,
            "DATA_LOAD" => Self::DataLoad,
            "TRAINING" => Self::Training,
            "BACKTEST" => Self::Backtest,
            _ => Self::Custom(upper),
        }
    }
}

impl From<&str> for OperationType {
    fn from(name: &str) -> Self {
        Self::parse(name)
    }
}

impl From<String> for OperationType {
    fn from(name: String) -> Self {
        Self::parse(&name)
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

impl<'de> Deserialize<'de> for OperationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(serde::de::Error::custom("operation type must not be empty"));
        }
        Ok(Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::OperationType;

    #[test]
    fn names_round_trip() {
        for kind in [
            OperationType::Dummy,
            OperationType::DataLoad,
            OperationType::Training,
            OperationType::Backtest,
            OperationType::from("my custom"),
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<OperationType>(&json).unwrap(), kind);
        }
        assert_eq!(
            OperationType::from("my custom"),
            OperationType::Custom("MY_CUSTOM".into())
        );
        assert!(serde_json::from_str::<OperationType>("\"\"").is_err());
    }
}
