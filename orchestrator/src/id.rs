//! Operation ids: `op_{type}_{YYYYMMDD}_{HHMMSS}_{8 hex}`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::OperationType;

/// The id of an operation, e.g. `op_dummy_20261122_160501_9f3a1c2e`.
///
/// Ids are unique within a process: the 8 hex digits are a per-process random key mixed
/// with a counter through a bijection, so 2³² ids in a row never collide. Cloning is
/// cheap: an id of up to 46 bytes (a type name of up to 18 characters) is held inline
/// and copied, a longer one is shared behind a reference count.
///
/// Parse untrusted input with [`str::parse`]: anything that is not a well-formed id is
/// rejected with [`InvalidOperationId`].
///
/// # Examples
///
/// ```
/// use orchestrator::OperationId;
///
/// let id: OperationId = "op_dummy_20261122_160501_9f3a1c2e".parse()?;
/// assert_eq!(id.as_str(), "op_dummy_20261122_160501_9f3a1c2e");
/// assert!("op_dummy_2026_x".parse::<OperationId>().is_err());
/// # Ok::<(), orchestrator::InvalidOperationId>(())
/// ```
#[derive(Clone)]
pub struct OperationId(Repr);

/// The bytes of an id that fit in [`INLINE`], in place; a longer one, shared.
///
/// An operation's record holds its id, and the registry's map and its finish order
/// compare and copy it: inline, that is no allocation per operation, no reference
/// count touched per copy, and no second cache line to reach when a lookup compares
/// the key.
#[derive(Clone)]
enum Repr {
    /// `len` bytes, the rest zero.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Shared(Arc<str>),
}

/// The longest id held inline: with the length and the variant's tag, 48 bytes, the
/// size of the shared form's allocation it replaces.
const INLINE: usize = 46;

/// Why a string is not an [`OperationId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid operation id {input:?}: {reason}")]
pub struct InvalidOperationId {
    input: String,
    reason: &'static str,
}

impl InvalidOperationId {
    fn new(input: &str, reason: &'static str) -> Self {
        // Keep error messages bounded even for hostile input.
        let input = input.chars().take(128).collect();
        Self { input, reason }
    }

    /// The rejected input (truncated to 128 characters).
    pub fn input(&self) -> &str {
        &self.input
    }
}

const MAX_LEN: usize = 128;

impl OperationId {
    /// Generates a fresh id for an operation of `kind`, stamped with the current UTC time.
    ///
    /// # Examples
    ///
    /// ```
    /// use orchestrator::{OperationId, OperationType};
    ///
    /// let a = OperationId::generate(&OperationType::DUMMY);
    /// let b = OperationId::generate(&OperationType::DUMMY);
    /// assert_ne!(a, b);
    /// assert!(a.as_str().starts_with("op_dummy_"));
    /// ```
    pub fn generate(kind: &OperationType) -> Self {
        Self::generate_at(kind, SystemTime::now())
    }

    pub(crate) fn generate_at(kind: &OperationType, at: SystemTime) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let suffix = suffix_of(n);
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Assembled as ASCII bytes, on the stack for the usual lengths, then copied
        // once into the shared string.
        let len = 3 + kind.as_str().len().max(6) + 1 + 15 + 1 + 8;
        let mut stack = [0u8; 64];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if len <= stack.len() {
            &mut stack
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        let mut n = put(buf, 0, b"op_");
        n = put_slug(buf, n, kind.as_str());
        n = put(buf, n, b"_");
        n = put_stamp(buf, n, secs);
        n = put(buf, n, b"_");
        for shift in (0..8).rev() {
            buf[n] = HEX[(suffix >> (shift * 4)) as usize & 0xf];
            n += 1;
        }
        // Every byte written above is ASCII.
        let id = std::str::from_utf8(&buf[..n]).unwrap_or("op_invalid_19700101_000000_00000000");
        Self::from_valid(id)
    }

    /// `s`, already known to be a well-formed id.
    fn from_valid(s: &str) -> Self {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Shared(Arc::from(s))),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only ever made from a `str` (`from_valid`), so this cannot fail; checking
            // keeps the crate free of `unsafe` at the cost of a pass over ≤ 46 bytes.
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Shared(s) => s,
        }
    }

    /// The id's bytes (what the registry's map hashes and compares, without the UTF-8
    /// check [`as_str`](Self::as_str) makes).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Shared(s) => s.as_bytes(),
        }
    }
}

// Equality, order and hash are those of the string (so `Borrow<str>` holds): an id has
// one representation per string, but the inline bytes are compared as a slice, not as
// the whole padded array.
impl PartialEq for OperationId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for OperationId {}

impl PartialOrd for OperationId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OperationId {
    // UTF-8 bytes order as their strings do.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl std::hash::Hash for OperationId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Writes a type name lower-cased into the id alphabet (`[a-z0-9_]`), or `custom`
/// for an empty name.
fn put_slug(buf: &mut [u8], at: usize, kind: &str) -> usize {
    if kind.is_empty() {
        return put(buf, at, b"custom");
    }
    for (slot, b) in buf[at..].iter_mut().zip(kind.bytes()) {
        *slot = match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' => b,
            b'A'..=b'Z' => b.to_ascii_lowercase(),
            _ => b'_',
        };
    }
    at + kind.len()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` at `at`; returns the position after them.
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    at + bytes.len()
}

/// Writes `YYYYMMDD_HHMMSS` (UTC) for `secs` since the Unix epoch.
fn put_stamp(buf: &mut [u8], at: usize, secs: u64) -> usize {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    let mut n = at;
    for part in [two(y / 100), two(y % 100), two(m), two(d)] {
        n = put(buf, n, &part);
    }
    n = put(buf, n, b"_");
    for part in [two(rem / 3600), two(rem / 60 % 60), two(rem % 60)] {
        n = put(buf, n, &part);
    }
    n
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard
/// Hinnant's `civil_from_days`.
const fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// The odd multiplier of the suffix's bijection, and its inverse modulo 2³².
const SPREAD: u32 = 0x9E37_79B1;
const UNSPREAD: u32 = inverse(SPREAD);

/// The inverse of odd `a` modulo 2³²: Newton's iteration doubles the number of
/// correct low bits at each step, from the 3 that `a` itself gets right (`a·a ≡ 1`
/// mod 8 for odd `a`), so 4 steps reach 48 ≥ 32.
const fn inverse(a: u32) -> u32 {
    let mut x = a;
    let mut step = 0;
    while step < 4 {
        x = x.wrapping_mul(2u32.wrapping_sub(a.wrapping_mul(x)));
        step += 1;
    }
    x
}

/// The suffix of the `n`th id: multiplication by an odd constant and xor with a
/// constant are bijections on u32, so distinct counters give distinct suffixes.
fn suffix_of(n: u32) -> u32 {
    n.wrapping_mul(SPREAD) ^ process_key()
}

impl OperationId {
    /// The counter behind the id's suffix: for an id this process generated, its
    /// place in the order ids were generated (consecutive ids, consecutive numbers);
    /// for any other id, a number as evenly spread as its suffix.
    pub(crate) fn sequence(&self) -> u32 {
        sequence_of(self.as_bytes())
    }
}

#[cfg(test)]
impl OperationId {
    /// The id this process generates as its `n`th (of type `x`, at a fixed time).
    pub(crate) fn with_sequence(n: u32) -> Self {
        let suffix = suffix_of(n);
        Self::from_valid(&format!("op_x_20261122_160501_{suffix:08x}"))
    }
}

/// [`OperationId::sequence`] of an id's bytes: the last 8 read as hex digits, undone
/// from the bijection that made them. Any other bytes give some number (a
/// well-formed id has none there).
pub(crate) fn sequence_of(bytes: &[u8]) -> u32 {
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    let mut word = [b'0'; 8];
    word[8 - tail.len()..].copy_from_slice(tail);
    (hex8(u64::from_be_bytes(word)) ^ process_key()).wrapping_mul(UNSPREAD)
}

/// Eight lower-case hex digits, the first in the top byte, as the number they
/// write: each byte to its digit's value at once (`'a'..='f'` have bit 6 set, the
/// decimal digits do not), then the nibbles packed pairwise.
const fn hex8(ascii: u64) -> u32 {
    const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const BIT_6: u64 = 0x0101_0101_0101_0101;
    let v = (ascii & LOW_NIBBLES) + ((ascii >> 6) & BIT_6) * 9;
    let v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
    let v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((v | (v >> 16)) & 0xFFFF_FFFF) as u32
}

fn process_key() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    static KEY: OnceLock<u32> = OnceLock::new();
    *KEY.get_or_init(|| {
        // RandomState is seeded from the OS; hashing the pid and time adds entropy
        // without a dependency on a random number crate.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(d) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        h.finish() as u32
    })
}

impl FromStr for OperationId {
    type Err = InvalidOperationId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        validate(s)?;
        Ok(Self::from_valid(s))
    }
}

fn validate(s: &str) -> Result<(), InvalidOperationId> {
    let err = |reason| Err(InvalidOperationId::new(s, reason));
    if s.len() > MAX_LEN {
        return err("longer than 128 characters");
    }
    let Some(rest) = s.strip_prefix("op_") else {
        return err("must start with `op_`");
    };
    if !rest
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return err("only lower-case letters, digits and `_` are allowed");
    }
    // From the right: 8 hex digits, HHMMSS, YYYYMMDD, then a non-empty type slug.
    let mut parts = rest.rsplitn(4, '_');
    let (Some(hex), Some(time), Some(date), Some(kind)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return err("expected `op_{type}_{YYYYMMDD}_{HHMMSS}_{8 hex}`");
    };
    if kind.is_empty() {
        return err("the type part is empty");
    }
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return err("the suffix must be 8 hex digits");
    }
    if !is_digits(date, 8) || !valid_date(date) {
        return err("the date must be a valid YYYYMMDD");
    }
    if !is_digits(time, 6) || !valid_time(time) {
        return err("the time must be a valid HHMMSS");
    }
    Ok(())
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> u32 {
    s.bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0'))
}

fn valid_date(d: &str) -> bool {
    let (month, day) = (num(&d[4..6]), num(&d[6..8]));
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn valid_time(t: &str) -> bool {
    num(&t[0..2]) < 24 && num(&t[2..4]) < 60 && num(&t[4..6]) < 61
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl AsRef<str> for OperationId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for OperationId {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for OperationId {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for OperationId {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Serialize for OperationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OperationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_undoes_the_suffix() {
        assert_eq!(SPREAD.wrapping_mul(UNSPREAD), 1);
        for n in [0, 1, 2, 15, 16, 4095, 0x8000_0000, u32::MAX] {
            let id = OperationId::with_sequence(n);
            assert_eq!(id.as_str().parse(), Ok(id.clone()), "well-formed");
            assert_eq!(id.sequence(), n, "{id}");
        }
        // Ids generated in a row count up (other tests may take numbers between).
        let ids: Vec<_> = (0..1000)
            .map(|_| OperationId::generate(&OperationType::DUMMY).sequence())
            .collect();
        for pair in ids.windows(2) {
            let step = pair[1].wrapping_sub(pair[0]);
            assert!((1..1 << 31).contains(&step), "{pair:?}");
        }
        // Every digit, in every place.
        for hex in ["0123abcd", "456789ef", "ffffffff", "00000000", "fedcba98"] {
            let word = u64::from_be_bytes(hex.as_bytes().try_into().expect("8 bytes"));
            assert_eq!(Ok(hex8(word)), u32::from_str_radix(hex, 16), "{hex}");
        }
        // Any bytes give a number: a malformed tail never panics.
        assert_eq!(sequence_of(b"op_zz"), sequence_of(b"op_zz"));
        let _ = sequence_of(b"");
    }

    #[test]
    fn generated_ids_are_well_formed() {
        for kind in [
            OperationType::DUMMY,
            OperationType::DATA_LOAD,
            OperationType::from("Feature Build"),
        ] {
            let id = OperationId::generate(&kind);
            assert_eq!(id.as_str().parse::<OperationId>(), Ok(id.clone()), "{id}");
        }
        let id = OperationId::generate(&OperationType::DATA_LOAD);
        assert!(id.as_str().starts_with("op_data_load_"), "{id}");
        // Type names longer than the inline buffer take the heap path.
        let long = OperationType::from("a".repeat(64));
        let id = OperationId::generate(&long);
        assert_eq!(id.as_str().parse::<OperationId>(), Ok(id.clone()));
        assert!(id.as_str().len() > 64 + 25);
    }

    #[test]
    fn inline_and_shared_ids_behave_as_their_strings() {
        use std::collections::{BTreeSet, HashSet};
        // 3 + 18 + 25 = 46 bytes: the longest held inline; one more is shared.
        let inline = OperationId::generate(&OperationType::from("a".repeat(18)));
        let shared = OperationId::generate(&OperationType::from("a".repeat(19)));
        assert_eq!(inline.as_str().len(), INLINE);
        assert!(matches!(inline.0, Repr::Inline { .. }));
        assert!(matches!(shared.0, Repr::Shared(_)));
        let parsed: OperationId = inline.as_str().parse().expect("well-formed");
        assert!(matches!(parsed.0, Repr::Inline { .. }));
        assert_eq!(parsed, inline);

        let ids = [
            inline,
            shared,
            OperationId::generate(&OperationType::DUMMY),
            "op_b_20261122_160501_00000000"
                .parse()
                .expect("well-formed"),
            "op_a_20261122_160501_00000000"
                .parse()
                .expect("well-formed"),
        ];
        // Order, equality and hash are the strings': a `HashSet` of ids is looked up
        // by `&str` (`Borrow<str>`), and sorted ids sort as their strings.
        let set: HashSet<OperationId> = ids.iter().cloned().collect();
        for id in &ids {
            assert!(set.contains(id.as_str()), "{id}");
            assert_eq!(id, id.as_str());
            assert_eq!(id.as_bytes(), id.as_str().as_bytes());
        }
        assert!(!set.contains("op_c_20261122_160501_00000000"));
        let sorted: Vec<_> = ids
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut strings: Vec<_> = ids.iter().map(|id| id.as_str().to_owned()).collect();
        strings.sort();
        assert_eq!(
            sorted.iter().map(OperationId::as_str).collect::<Vec<_>>(),
            strings
        );
        // By the string, not by the length first: the shorter id sorts after.
        let longer: OperationId = "op_aa_20261122_160501_00000000"
            .parse()
            .expect("well-formed");
        assert!(longer < ids[3] && longer > ids[4]);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_id_is_48_bytes() {
        assert_eq!(size_of::<OperationId>(), 48);
        assert_eq!(size_of::<Option<OperationId>>(), 48);
    }

    #[test]
    fn stamp_uses_utc_date_and_time() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_363_201);
        let id = OperationId::generate_at(&OperationType::DUMMY, at);
        assert!(id.as_str().starts_with("op_dummy_20261122_"), "{id}");
        assert_eq!(id.as_str().len(), "op_dummy_20261122_160001_9f3a1c2e".len());
    }

    #[test]
    fn stamp_matches_rfc3339_across_dates() {
        for secs in [
            0u64,
            951_782_400,
            1_709_164_800,
            1_795_363_201,
            4_102_444_799,
            253_402_300_799,
        ] {
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let mut buf = [0u8; 15];
            assert_eq!(put_stamp(&mut buf, 0, secs), 15);
            let ours = String::from_utf8(buf.to_vec()).unwrap();
            let rfc = humantime::format_rfc3339_seconds(at).to_string();
            let expected: String = rfc[..19]
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == 'T')
                .collect();
            assert_eq!(ours, expected.replace('T', "_"), "{rfc}");
        }
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "op_",
            "dummy_20261122_160501_9f3a1c2e",
            "op_dummy_20261122_160501_9f3a1c2",
            "op_dummy_20261122_160501_9f3a1c2g",
            "op_dummy_20261322_160501_9f3a1c2e",
            "op_dummy_20261122_250501_9f3a1c2e",
            "op_dummy_2026112_160501_9f3a1c2e",
            "op__20261122_160501_9f3a1c2e",
            "op_Dummy_20261122_160501_9f3a1c2e",
            "op_dummy_20261122_160501_9f3a1c2e/../x",
            "op_dummy 20261122_160501_9f3a1c2e",
        ] {
            assert!(bad.parse::<OperationId>().is_err(), "{bad:?} accepted");
        }
        let long = format!("op_{}_20261122_160501_9f3a1c2e", "a".repeat(200));
        let err = long.parse::<OperationId>().unwrap_err();
        assert!(err.input().len() <= 128);
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let id = OperationId::generate(&OperationType::TRAINING);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<OperationId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<OperationId>("\"nope\"").is_err());
    }
}
