//! A hasher for registry keys.
//!
//! Registry keys are [`OperationId`](crate::OperationId)s this process generated: their
//! last 8 characters are hex digits of a bijection of a counter, so they are distinct
//! for every key and evenly spread. Hashing only those bytes with a folded multiply is
//! as well distributed as SipHash over the whole id, at a fraction of the cost, and
//! lookups with arbitrary (even hostile) ids cannot degrade the table, because only
//! our own ids are ever inserted.

use std::hash::{BuildHasher, Hasher};

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildIdHasher;

impl BuildHasher for BuildIdHasher {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(8)..];
        let mut word = [0u8; 8];
        word[..tail.len()].copy_from_slice(tail);
        self.0 = (self.0 ^ u64::from_le_bytes(word)).rotate_left(5) ^ bytes.len() as u64;
    }

    fn write_u8(&mut self, _: u8) {
        // `str`'s `Hash` appends a 0xff terminator; it carries no information here.
    }

    fn finish(&self) -> u64 {
        let folded = u128::from(self.0) * 0x9E37_79B9_7F4A_7C15;
        (folded as u64) ^ ((folded >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
