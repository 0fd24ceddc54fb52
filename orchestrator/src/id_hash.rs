//! A hasher for registry keys.
//!
//! Registry keys are [`OperationId`](crate::OperationId)s: their last 8 characters are
//! hex digits of a bijection of a counter, which [`sequence_of`] undoes. The hash is
//! built from that number alone. The ids a registry shard holds are every
//! [`SHARDS`]-th in the order they were generated (see `shard_of`), and the hash puts
//! them in blocks of consecutive buckets:
//!
//! - The low bits pick the bucket. They are the id's place among its shard's ids: the
//!   last 3 bits of it give the bucket within a block of [`BLOCK`] (8 slots, one
//!   cache line of the table's pointers), the rest picks the block through an odd
//!   multiplier ([`SCATTER`]). Eight starts in a row write one line of slots, where a
//!   bucket picked at random costs two cache misses per insert in a table of 100,000
//!   entries (a fifth of a no-op operation's start). Ids looked up in the order they
//!   were made are read from the same lines.
//! - Blocks are scattered rather than laid end to end. A lookup walks from its bucket
//!   to the first empty one, so with the whole shard in consecutive buckets an absent
//!   id (a stale or hostile one) would walk a run as long as the shard: about 20
//!   cache misses among 6,000 entries. Scattered, the longest run of full buckets is
//!   a few blocks even at 73 % load (tested).
//! - The top 7 bits are a multiplicative hash of the number. The table keeps them as
//!   each bucket's tag and compares them before it compares ids, so neighbours have
//!   distinct tags.
//!
//! An id this process did not generate (one resumed from a store, say) undoes to a
//! number as spread as its suffix, so it takes a bucket as if at random. Lookups with
//! arbitrary ids cannot degrade the table: only ids the registry made or stored are
//! ever inserted, and two ids with the same suffix are told apart by comparing them.

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

/// How many of a shard's ids, in the order they were made, take consecutive buckets:
/// 8 slots are one cache line of the table's pointers.
const BLOCK: u64 = 8;

/// An odd multiplier (2⁶⁴ over the golden ratio). It spreads consecutive blocks over
/// the table (a bijection on the low bits, whatever the table's size), so that full
/// buckets never form a long run that a lookup of an absent id would walk to its
/// end; and its product's top bits are each id's tag.
const SCATTER: u64 = 0x9E37_79B9_7F4A_7C15;

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
        // The id's place among its shard's ids, then its block of buckets.
        let place = sequence / SHARDS as u64;
        let block = (place / BLOCK).wrapping_mul(SCATTER);
        let tag = sequence.wrapping_mul(SCATTER) & TAG;
        tag | (block.wrapping_mul(BLOCK) & !TAG) | (place % BLOCK)
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

    /// A shard's ids, in the order they were made, fill blocks of `BLOCK`
    /// consecutive buckets, with tags that tell neighbours apart.
    #[test]
    fn ids_of_a_shard_fill_blocks_of_consecutive_buckets() {
        // Made as the 1,000,000th id on (other tests generate ids at the same time).
        let first = 1_000_000;
        let mut last = [None::<u64>; SHARDS];
        let mut tags = std::collections::HashSet::new();
        let mut next_in_block = 0;
        for n in first..first + 4096 {
            let id = OperationId::with_sequence(n);
            // Hashed as the shard's set hashes it: as the id's bytes.
            let hash = BuildIdHasher.hash_one(id.as_bytes());
            assert_eq!(hash, BuildIdHasher.hash_one(&id), "{id}");
            let bucket = hash & !TAG;
            tags.insert(hash & TAG);
            let place = u64::from(n) / SHARDS as u64;
            assert_eq!(bucket % BLOCK, place % BLOCK, "{id}");
            if let Some(before) = last[shard_of(&id)].replace(bucket) {
                if place % BLOCK != 0 {
                    assert_eq!(bucket, before + 1, "{id}");
                    next_in_block += 1;
                }
            }
        }
        assert!(next_in_block > 3000, "{next_in_block}");
        assert!(last.iter().all(Option::is_some), "every shard is used");
        // 128 tags at most; a poor mix would give a few.
        assert!(tags.len() > 100, "{} distinct tags", tags.len());
    }

    /// The longest run of full buckets, going round, when the ids of one shard with
    /// places `places` are in a table of `buckets`.
    fn longest_full_run(places: std::ops::Range<u32>, buckets: u64) -> usize {
        let mut full = vec![false; buckets as usize];
        for place in places {
            let id = OperationId::with_sequence(place * SHARDS as u32);
            full[(BuildIdHasher.hash_one(id.as_bytes()) & (buckets - 1)) as usize] = true;
        }
        let (mut longest, mut run) = (0, 0);
        for &f in full.iter().chain(&full) {
            run = if f { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        longest.min(full.len())
    }

    /// A lookup walks the table from its bucket until it meets an empty one, so an
    /// absent id (a stale or hostile one) whose bucket falls in a long run of full
    /// ones costs a cache miss per group it walks. Blocks of consecutive ids are
    /// scattered: at 73 % and 37 % load, the longest run stays a few blocks long,
    /// where ids in consecutive buckets throughout would make it the whole shard.
    #[test]
    fn full_buckets_never_form_a_long_run() {
        for (places, buckets) in [
            (0..6000, 8192),
            (1_000_000..1_006_000, 8192),
            (0..6000, 16_384),
            (500..3500, 4096),
        ] {
            let longest = longest_full_run(places.clone(), buckets);
            assert!(
                longest <= 8 * BLOCK as usize,
                "{places:?} in {buckets}: a run of {longest}"
            );
        }
    }
}
