//! A hasher for registry keys.
//!
//! Registry keys are [`OperationId`](crate::OperationId)s: their last 8 characters are
//! hex digits of a bijection of a counter, which [`sequence_of`] undoes. The hash is
//! built from that number alone, so that the ids a registry shard holds, which are
//! every [`SHARDS`]-th in the order they were generated (see `shard_of`), take
//! consecutive buckets of its table:
//!
//! - the low bits, which pick the bucket, are the sequence divided by [`SHARDS`]: an
//!   insert writes next to the one before it (in a table of 100,000 entries, a bucket
//!   picked at random costs two cache misses per insert, a fifth of a no-op
//!   operation's start), and ids looked up in the order they were made are read in
//!   the order they are stored;
//! - the top 7 bits, which the table keeps as each bucket's tag and compares before
//!   it compares ids, are a multiplicative hash of the sequence, so ids in one group
//!   of buckets have distinct tags.
//!
//! An id this process did not generate (one resumed from a store, say) undoes to a
//! number as spread as its suffix, so it takes a bucket as if at random. Lookups with
//! arbitrary, even hostile, ids cannot degrade the table: only ids the registry made
//! or stored are ever inserted, and two ids with the same suffix are told apart by
//! comparing them.

use std::hash::{BuildHasher, Hasher};

use crate::id::sequence_of;
use crate::operations::SHARDS;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildIdHasher;

impl BuildHasher for BuildIdHasher {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// Hashes one id's bytes (see the module doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// The bits of a hash the table keeps as a bucket's tag.
const TAG: u64 = !(u64::MAX >> 7);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = u64::from(sequence_of(bytes));
    }

    fn write_u8(&mut self, _: u8) {
        // `str`'s `Hash` appends a 0xff terminator; it carries no information here.
    }

    fn write_usize(&mut self, _: usize) {
        // `[u8]`'s `Hash` writes the length first; the id's bytes follow.
    }

    fn finish(&self) -> u64 {
        let sequence = self.0;
        (sequence.wrapping_mul(0x9E37_79B9_7F4A_7C15) & TAG) | (sequence / SHARDS as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::shard_of;
    use crate::{OperationId, OperationType};

    #[test]
    fn spreads_generated_ids_over_buckets() {
        let mut buckets = [0u32; 64];
        for _ in 0..64_000 {
            let id = OperationId::generate(&OperationType::DUMMY);
            buckets[(BuildIdHasher.hash_one(&id) & 63) as usize] += 1;
        }
        // 1000 expected per bucket; a poor hash would leave buckets empty.
        assert!(
            buckets.iter().all(|&n| (700..1300).contains(&n)),
            "{buckets:?}"
        );
    }

    /// What the module doc promises: a shard's ids, in the order they were made, in
    /// consecutive buckets, with tags that tell neighbours apart.
    #[test]
    fn ids_of_a_shard_take_consecutive_buckets() {
        // Made as the 1,000,000th id on (other tests generate ids at the same time).
        let first = 1_000_000;
        let mut last = [None::<u64>; SHARDS];
        let mut tags = std::collections::HashSet::new();
        for n in first..first + 4096 {
            let id = OperationId::with_sequence(n);
            // Hashed as the shard's set hashes it: as the id's bytes.
            let hash = BuildIdHasher.hash_one(id.as_bytes());
            assert_eq!(hash, BuildIdHasher.hash_one(&id), "{id}");
            let bucket = hash & !TAG;
            assert_eq!(bucket, u64::from(n) / SHARDS as u64, "{id}");
            tags.insert(hash & TAG);
            if let Some(before) = last[shard_of(&id)].replace(bucket) {
                assert_eq!(bucket, before + 1, "{id}");
            }
        }
        assert!(last.iter().all(Option::is_some), "every shard is used");
        // 128 tags at most; a poor mix would give a few.
        assert!(tags.len() > 100, "{} distinct tags", tags.len());
    }
}
