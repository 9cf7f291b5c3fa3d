//! The entity store: every entity a program knows, its attributes, its place in the hierarchy
//! (ancestor sets precomputed, so `in` is a binary search), and the role bindings.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::data::value::{EntityId, EntityRef, EntityUid, Fields};

/// One entity: stored in a data file, or only named (by a policy, an attribute or a binding).
#[derive(Clone, Debug)]
pub struct Entity {
    pub uid: EntityUid,
    /// `None` for an entity that is named but not stored: reading its attributes is an error.
    pub attributes: Option<Fields>,
    pub parents: Box<[EntityId]>,
    /// Every ancestor, transitively, sorted; never the entity itself. `None` for an entity
    /// with more than [`MAX_FLAT_ANCESTORS`] of them, or below one that has: its ancestry is
    /// walked through `parents` when asked ([`Store::is_in`], [`Store::for_each_ancestor`]).
    ancestors: Option<Box<[EntityId]>>,
}

/// The most ancestors an entity's flattened set holds. Storing the whole set for every
/// entity of a hierarchy N deep would take memory growing with N squared; past this bound
/// the few entities that deep are walked instead.
pub(crate) const MAX_FLAT_ANCESTORS: usize = 256;

/// `role` held by `subject` on `on` (or everywhere, when `on` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleBinding {
    pub role: Arc<str>,
    pub subject: EntityId,
    pub on: Option<EntityId>,
}

#[derive(Clone, Debug, Default)]
pub struct Store {
    entities: Vec<Entity>,
    /// Each entity type's index in `ids`.
    types: HashMap<Arc<str>, u32>,
    /// The ids of each type's entities, by the entity's id: a table of entity indices
    /// hashed by the id they name (four bytes a slot where a map from the id string took
    /// twenty-four; the string itself is the entity's).
    ids: Vec<hashbrown::HashTable<EntityId>>,
    bindings: Vec<RoleBinding>,
    // FxHash, as for the ids: the strings come from the operator's data files and policies,
    // and SipHash stood out in the profile of loading a large data file.
    strings: rustc_hash::FxHashSet<Arc<str>>,
}

/// The hash an entity id is filed under in [`Store`]'s id tables.
fn hash_id(id: &str) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(id)
}

impl Store {
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    pub fn entity(&self, id: EntityId) -> Option<&Entity> {
        self.entities.get(id.index())
    }

    /// The type and id of an entity a value refers to: held in the store, or only named.
    pub fn uid<'a>(&'a self, entity: &'a EntityRef) -> Option<&'a EntityUid> {
        match entity {
            EntityRef::Known(id) => self.entity(*id).map(|e| &e.uid),
            EntityRef::Unknown(uid) => Some(uid),
        }
    }

    pub fn entities(&self) -> impl Iterator<Item = (EntityId, &Entity)> {
        self.entities
            .iter()
            .enumerate()
            .map(|(i, e)| (EntityId(u32::try_from(i).unwrap_or(u32::MAX)), e))
    }

    pub fn lookup(&self, ty: &str, id: &str) -> Option<EntityId> {
        self.lookup_in(self.type_index(ty)?, id)
    }

    /// The index of an entity type the store knows, for [`Store::lookup_in`].
    pub(crate) fn type_index(&self, ty: &str) -> Option<u32> {
        self.types.get(ty).copied()
    }

    /// The entity `id` of the type at `type_index`.
    pub(crate) fn lookup_in(&self, type_index: u32, id: &str) -> Option<EntityId> {
        let entities = &self.entities;
        self.ids
            .get(type_index as usize)?
            .find(hash_id(id), |e| {
                entities.get(e.index()).is_some_and(|e| &*e.uid.id == id)
            })
            .copied()
    }

    /// True when `ancestor` is `entity` itself or one of its ancestors.
    pub fn is_in(&self, entity: EntityId, ancestor: EntityId) -> bool {
        if entity == ancestor {
            return true;
        }
        match self.entity(entity).map(|e| &e.ancestors) {
            Some(Some(flat)) => flat.binary_search(&ancestor).is_ok(),
            Some(None) => {
                let mut found = false;
                self.walk_ancestors(entity, |a| {
                    found = a == ancestor;
                    found
                });
                found
            }
            None => false,
        }
    }

    /// Calls `f` with every ancestor of `entity` (never `entity` itself), each once.
    pub(crate) fn for_each_ancestor(&self, entity: EntityId, mut f: impl FnMut(EntityId)) {
        match self.entity(entity).map(|e| &e.ancestors) {
            Some(Some(flat)) => flat.iter().for_each(|a| f(*a)),
            Some(None) => self.walk_ancestors(entity, |a| {
                f(a);
                false
            }),
            None => {}
        }
    }

    /// The walk for an entity whose ancestors are not flattened: each ancestor once, the
    /// flattened sets of those that have one used as they are; stops when `f` returns true.
    fn walk_ancestors(&self, entity: EntityId, mut f: impl FnMut(EntityId) -> bool) {
        let mut seen: rustc_hash::FxHashSet<EntityId> = rustc_hash::FxHashSet::default();
        let mut pending: Vec<EntityId> = self
            .entity(entity)
            .map_or_else(Vec::new, |e| e.parents.to_vec());
        while let Some(next) = pending.pop() {
            if !seen.insert(next) {
                continue;
            }
            if f(next) {
                return;
            }
            let Some(stored) = self.entity(next) else {
                continue;
            };
            match &stored.ancestors {
                Some(flat) => {
                    for &a in flat.iter() {
                        if seen.insert(a) && f(a) {
                            return;
                        }
                    }
                }
                None => pending.extend_from_slice(&stored.parents),
            }
        }
    }

    pub fn bindings(&self) -> &[RoleBinding] {
        &self.bindings
    }

    /// The shared copy of `text`, when the store has one.
    pub(crate) fn interned(&self, text: &str) -> Option<Arc<str>> {
        self.strings.get(text).cloned()
    }

    /// Shares one allocation among equal strings.
    pub(crate) fn intern_str(&mut self, text: &str) -> Arc<str> {
        if let Some(existing) = self.strings.get(text) {
            return existing.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.strings.insert(shared.clone());
        shared
    }

    /// The id of `ty::id`, adding it as a named-but-not-stored entity if it is new.
    pub(crate) fn intern_entity(&mut self, ty: &str, id: &str) -> EntityId {
        if let Some(existing) = self.lookup(ty, id) {
            return existing;
        }
        // The id is kept once, by the type's id map; only the type name is interned (ids are
        // nearly all distinct, and a million of them in the shared string set cost more
        // than they share).
        let uid = EntityUid {
            ty: self.intern_str(ty),
            id: Arc::from(id),
        };
        let entity_id = EntityId(u32::try_from(self.entities.len()).unwrap_or(u32::MAX));
        let next = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        let type_index = *self.types.entry(uid.ty.clone()).or_insert(next);
        if type_index == next {
            self.ids.push(hashbrown::HashTable::new());
        }
        if let Some(ids) = self.ids.get_mut(type_index as usize) {
            let entities = &self.entities;
            ids.insert_unique(hash_id(&uid.id), entity_id, |e| {
                entities.get(e.index()).map_or(0, |e| hash_id(&e.uid.id))
            });
        }
        self.entities.push(Entity {
            uid,
            attributes: None,
            parents: Box::new([]),
            ancestors: Some(Box::new([])),
        });
        entity_id
    }

    /// Stores attributes and parents for an entity (interned first). Ancestors are computed by
    /// [`Store::compute_ancestors`] once every entity is in.
    pub(crate) fn define(&mut self, id: EntityId, attributes: Fields, parents: Vec<EntityId>) {
        if let Some(entity) = self.entities.get_mut(id.index()) {
            entity.attributes = Some(attributes);
            entity.parents = parents.into_boxed_slice();
        }
    }

    pub(crate) fn add_binding(&mut self, binding: RoleBinding) {
        self.bindings.push(binding);
    }

    /// Computes every entity's ancestor set. Returns the entities that lie on a cycle of the
    /// parent relation (their ancestor sets are left as far as they could be computed).
    pub(crate) fn compute_ancestors(&mut self) -> Vec<EntityId> {
        // Kahn's algorithm over child → parent edges, parents first, so an entity's ancestors
        // are complete before its children's are built from them. Iterative: deep hierarchies
        // cannot overflow the stack.
        // Indices are u32 (entity ids are) and the children lists one flat array with an
        // offset per entity: with a million entities, a `Vec` per entity and `usize` counters
        // took several times the memory the ancestor sets themselves do.
        let count = self.entities.len();
        let index_of = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        let mut pending_parents: Vec<u32> = self
            .entities
            .iter()
            .map(|e| index_of(e.parents.len()))
            .collect();
        let mut child_starts: Vec<u32> = vec![0; count + 1];
        for entity in &self.entities {
            for parent in &entity.parents {
                if let Some(start) = child_starts.get_mut(parent.index() + 1) {
                    *start += 1;
                }
            }
        }
        for i in 1..child_starts.len() {
            let before = child_starts.get(i - 1).copied().unwrap_or(0);
            if let Some(start) = child_starts.get_mut(i) {
                *start += before;
            }
        }
        let mut next_child = child_starts.clone();
        let mut children: Vec<u32> = vec![0; child_starts.last().copied().unwrap_or(0) as usize];
        for (child, entity) in self.entities.iter().enumerate() {
            for parent in &entity.parents {
                if let Some(at) = next_child.get_mut(parent.index()) {
                    if let Some(slot) = children.get_mut(*at as usize) {
                        *slot = index_of(child);
                    }
                    *at += 1;
                }
            }
        }
        drop(next_child);
        let mut ready: Vec<u32> = (0..count)
            .filter(|&i| pending_parents.get(i) == Some(&0))
            .map(index_of)
            .collect();
        let mut done = vec![false; count];
        while let Some(index) = ready.pop() {
            let index = index as usize;
            if let Some(flag) = done.get_mut(index) {
                *flag = true;
            }
            let mut ancestors: Vec<EntityId> = Vec::new();
            let mut bounded = true;
            if let Some(entity) = self.entities.get(index) {
                for parent in &entity.parents {
                    ancestors.push(*parent);
                    match self.entities.get(parent.index()).map(|p| &p.ancestors) {
                        Some(Some(theirs)) if bounded => ancestors.extend(theirs.iter().copied()),
                        Some(None) => bounded = false,
                        _ => {}
                    }
                }
            }
            ancestors.sort_unstable();
            ancestors.dedup();
            if let Some(entity) = self.entities.get_mut(index) {
                entity.ancestors = (bounded && ancestors.len() <= MAX_FLAT_ANCESTORS)
                    .then(|| ancestors.into_boxed_slice());
            }
            let (from, to) = (
                child_starts.get(index).copied().unwrap_or(0) as usize,
                child_starts.get(index + 1).copied().unwrap_or(0) as usize,
            );
            for &child in children.get(from..to).unwrap_or(&[]) {
                if let Some(pending) = pending_parents.get_mut(child as usize) {
                    *pending -= 1;
                    if *pending == 0 {
                        ready.push(child);
                    }
                }
            }
        }
        done.iter()
            .enumerate()
            .filter(|(_, done)| !**done)
            .map(|(i, _)| EntityId(u32::try_from(i).unwrap_or(u32::MAX)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_are_transitive_and_cycles_are_found() {
        let mut store = Store::default();
        let photo = store.intern_entity("Photo", "p");
        let album = store.intern_entity("Album", "a");
        let root = store.intern_entity("Album", "root");
        store.define(photo, Arc::from(Vec::new()), vec![album]);
        store.define(album, Arc::from(Vec::new()), vec![root]);
        assert!(store.compute_ancestors().is_empty());
        assert!(store.is_in(photo, root));
        assert!(store.is_in(photo, photo));
        assert!(!store.is_in(root, photo));

        store.define(root, Arc::from(Vec::new()), vec![photo]);
        let cycle = store.compute_ancestors();
        assert_eq!(cycle.len(), 3);
    }

    #[test]
    fn a_hierarchy_deeper_than_the_flat_bound_answers_alike() {
        // A chain g0 ← g1 ← … plus a diamond at the bottom: `leaf` under two deep groups.
        let mut store = Store::default();
        let depth = 3 * MAX_FLAT_ANCESTORS;
        let groups: Vec<EntityId> = (0..depth)
            .map(|i| store.intern_entity("Group", &format!("g{i}")))
            .collect();
        for (i, group) in groups.iter().enumerate().skip(1) {
            store.define(*group, Arc::from(Vec::new()), vec![groups[i - 1]]);
        }
        let side = store.intern_entity("Group", "side");
        store.define(side, Arc::from(Vec::new()), vec![groups[depth - 2]]);
        let leaf = store.intern_entity("User", "leaf");
        store.define(leaf, Arc::from(Vec::new()), vec![groups[depth - 1], side]);
        assert!(store.compute_ancestors().is_empty());
        for &group in &groups {
            assert!(store.is_in(leaf, group));
        }
        assert!(store.is_in(groups[depth - 1], groups[0]));
        assert!(!store.is_in(groups[0], leaf));
        assert!(!store.is_in(groups[3], side));
        let mut seen = Vec::new();
        store.for_each_ancestor(leaf, |a| seen.push(a));
        seen.sort_unstable();
        let mut expected = groups.clone();
        expected.push(side);
        expected.sort_unstable();
        assert_eq!(seen, expected);
    }
}
