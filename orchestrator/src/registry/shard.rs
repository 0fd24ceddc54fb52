//! One shard of the registry's map: entries keyed by their own id.
//!
//! A set of `Arc<Entry>` looked up by the id each entry holds, not a map from a copy
//! of the id to the entry: a slot is one pointer (8 bytes) instead of the id's fat
//! pointer beside it (24), which a registry of 100,000 operations pays ~1.3 times
//! each (the table's spare slots included), and an insert writes a third of it.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::OperationId;
use crate::entry::Entry;
use crate::id_hash::BuildIdHasher;

/// An entry, hashed and compared as its id's bytes (so the set is looked up by
/// `&[u8]`, with no UTF-8 check of either side).
struct Keyed(Arc<Entry>);

impl Borrow<[u8]> for Keyed {
    fn borrow(&self) -> &[u8] {
        self.0.id.as_bytes()
    }
}

impl Hash for Keyed {
    // As `[u8]` hashes, which `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.as_bytes().hash(state);
    }
}

impl PartialEq for Keyed {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for Keyed {}

/// The entries of one shard, by id.
#[derive(Default)]
pub(crate) struct Shard {
    entries: HashSet<Keyed, BuildIdHasher>,
}

impl Shard {
    /// The entry with this id.
    pub(crate) fn get(&self, id: &OperationId) -> Option<&Arc<Entry>> {
        self.entries.get(id.as_bytes()).map(|k| &k.0)
    }

    /// Whether an entry with this id is here.
    pub(crate) fn contains(&self, id: &OperationId) -> bool {
        self.entries.contains(id.as_bytes())
    }

    /// Puts `entry` in, returning the one with the same id it replaces.
    pub(crate) fn insert(&mut self, entry: Arc<Entry>) -> Option<Arc<Entry>> {
        self.entries.replace(Keyed(entry)).map(|k| k.0)
    }

    /// Takes out the entry with this id.
    pub(crate) fn remove(&mut self, id: &OperationId) -> Option<Arc<Entry>> {
        self.entries.take(id.as_bytes()).map(|k| k.0)
    }

    /// Keeps only the entries `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Arc<Entry>) -> bool) {
        self.entries.retain(|k| keep(&k.0));
    }

    /// Every entry, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.iter().map(|k| &k.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OperationSpec, Operations};

    fn entry(ops: &Operations) -> Arc<Entry> {
        let id = ops.create(OperationSpec::new("x")).expect("create");
        ops.entry(&id).expect("registered")
    }

    #[test]
    fn entries_are_found_replaced_and_removed_by_id() {
        let ops = Operations::new();
        let (a, b) = (entry(&ops), entry(&ops));
        let mut shard = Shard::default();
        assert!(shard.insert(a.clone()).is_none());
        assert!(shard.insert(b.clone()).is_none());
        assert_eq!(shard.len(), 2);
        assert!(Arc::ptr_eq(shard.get(&a.id).expect("a"), &a));
        assert!(shard.contains(&b.id));
        let absent = "op_x_20261122_160501_00000000".parse().expect("an id");
        assert!(shard.get(&absent).is_none());

        // The same id again replaces the entry and hands back the old one.
        let replaced = shard.insert(a.clone()).expect("replaced");
        assert!(Arc::ptr_eq(&replaced, &a));
        assert_eq!(shard.len(), 2);

        shard.retain(|e| e.id != b.id);
        assert!(!shard.contains(&b.id));
        assert!(Arc::ptr_eq(&shard.remove(&a.id).expect("a"), &a));
        assert!(shard.remove(&a.id).is_none());
        assert_eq!(shard.values().count(), 0);
    }

    /// Ids made elsewhere (a store's, another process's) can share a suffix, and so a
    /// bucket and a tag (`id_hash`): they are told apart by their whole bytes.
    #[test]
    fn ids_sharing_a_suffix_are_kept_apart() {
        let ids: Vec<String> = ["a", "b", "train", "data_load"]
            .iter()
            .flat_map(|kind| {
                [
                    format!("op_{kind}_20261122_160501_0000000f"),
                    format!("op_{kind}_20261123_090000_0000000f"),
                ]
            })
            .collect();
        let mut shard = Shard::default();
        // Beside many ids generated here, as a resumed registry holds them.
        let ops = Operations::new();
        let local: Vec<_> = (0..1000).map(|_| entry(&ops)).collect();
        for e in &local {
            shard.insert(e.clone());
        }
        let foreign: Vec<_> = ids
            .iter()
            .map(|id| {
                let id = id.parse().expect("well-formed");
                crate::entry::unregistered_as(id, crate::OperationType::DUMMY, 0, None)
            })
            .collect();
        for e in &foreign {
            assert!(shard.insert(e.clone()).is_none(), "{}", e.id);
        }
        assert_eq!(shard.len(), local.len() + foreign.len());
        for e in foreign.iter().chain(&local) {
            assert!(Arc::ptr_eq(shard.get(&e.id).expect("found"), e), "{}", e.id);
        }
        // Removing one leaves the others with its suffix where they were.
        assert!(shard.remove(&foreign[0].id).is_some());
        assert!(!shard.contains(&foreign[0].id));
        for e in &foreign[1..] {
            assert!(Arc::ptr_eq(shard.get(&e.id).expect("found"), e), "{}", e.id);
        }
    }
}
