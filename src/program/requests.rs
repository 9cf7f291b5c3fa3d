//! What decoding a request needs to know about the names it carries — its entity types and
//! its action — each found with one hash lookup: built once per program from the
//! declarations, the index and the store.
//!
//! Only declared names are here. A request naming anything else (an undeclared type or
//! action, or any name in a program without declarations) is decoded the ordinary way.

// FxHash, as for the index: looked up with request names, never inserted into by requests.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use super::Index;
use crate::check::schema::{Field, RecordType, Schema};
use crate::data::store::Store;

#[derive(Clone, Debug, Default)]
pub struct RequestNames {
    /// Every declared entity type (none when the program declares none).
    pub types: HashMap<Box<str>, TypeNames>,
    /// Every declared action (none when the program declares none).
    pub actions: HashMap<Box<str>, ActionNames>,
}

/// A declared entity type.
#[derive(Clone, Debug)]
pub struct TypeNames {
    /// Its place among the declared types (for [`ActionNames::applies_to`]).
    pub declared: u32,
    /// Its slot in the index ([`Index::type_slot`]).
    pub slot: u32,
    /// Its index in the store ([`Store::type_index`]); `None` when no entity of it is known.
    pub store: Option<u32>,
    /// The declared `properties`; `None` leaves them dynamic.
    pub properties: Option<Declared>,
    /// An enumeration (`entity Color enum [...]`): its ids are checked by the full reader.
    pub enumerated: bool,
}

/// A declared record type of `properties` or `context`, its members' names shared: with the
/// store's copy when a policy reads the member (so reading it finds the name by its address),
/// else with every request that sends it.
#[derive(Clone, Debug)]
pub struct Declared {
    /// The declared members, as in the record type.
    pub fields: Box<[(Arc<str>, Field)]>,
    /// How many of them are required.
    pub required: usize,
}

impl Declared {
    fn new(record: &RecordType, store: &Store) -> Declared {
        Declared {
            fields: record
                .fields
                .iter()
                .map(|(name, field)| {
                    let shared = store
                        .interned(name)
                        .unwrap_or_else(|| Arc::from(name.as_str()));
                    (shared, field.clone())
                })
                .collect(),
            required: record.fields.values().filter(|f| !f.optional).count(),
        }
    }

    /// The member `name`: its shared name and declaration.
    #[inline]
    pub fn field(&self, name: &str) -> Option<&(Arc<str>, Field)> {
        self.fields
            .iter()
            .find(|(shared, _)| shared.len() == name.len() && shared.as_bytes() == name.as_bytes())
    }
}

/// A declared action.
#[derive(Clone, Debug)]
pub struct ActionNames {
    /// The name, shared with the index when the index has it.
    pub name: Arc<str>,
    /// Its slot in the index ([`Index::action_slot`]).
    pub slot: u32,
    /// Whether it applies to each declared type (by [`TypeNames::declared`]).
    pub applies: Box<[bool]>,
    /// Whether a subject of each declared type may ask for it (`by`; by
    /// [`TypeNames::declared`]).
    pub accepts: Box<[bool]>,
    /// The declared `action.properties`; `None` leaves them dynamic.
    pub properties: Option<Declared>,
    /// The declared `context`; `None` leaves it dynamic.
    pub context: Option<Declared>,
}

impl ActionNames {
    /// Whether the action applies to a resource of the declared type `ty`.
    pub(crate) fn applies_to(&self, ty: &TypeNames) -> bool {
        self.applies
            .get(ty.declared as usize)
            .copied()
            .unwrap_or(false)
    }

    /// Whether a subject of the declared type `ty` may ask for the action.
    pub fn accepts(&self, ty: &TypeNames) -> bool {
        self.accepts
            .get(ty.declared as usize)
            .copied()
            .unwrap_or(false)
    }
}

impl RequestNames {
    pub fn new(schema: &Schema, index: &Index, store: &Store) -> RequestNames {
        let types = schema
            .entity_types
            .iter()
            .enumerate()
            .map(|(place, (name, declared))| {
                let names = TypeNames {
                    declared: u32::try_from(place).unwrap_or(u32::MAX),
                    slot: index.type_slot(name),
                    store: store.type_index(name),
                    properties: declared
                        .properties
                        .as_ref()
                        .map(|r| Declared::new(r, store)),
                    enumerated: declared.ids.is_some(),
                };
                (Box::from(name.as_str()), names)
            })
            .collect();
        let actions = schema
            .actions
            .iter()
            .map(|(name, declared)| {
                let shared = index
                    .actions
                    .get_key_value(name.as_str())
                    .map_or_else(|| Arc::from(name.as_str()), |(name, _)| name.clone());
                let names = ActionNames {
                    name: shared,
                    slot: index.action_slot(name),
                    applies: schema
                        .entity_types
                        .keys()
                        .map(|ty| {
                            declared.resource_types.is_empty()
                                || declared.resource_types.iter().any(|t| t == ty)
                        })
                        .collect(),
                    accepts: schema
                        .entity_types
                        .keys()
                        .map(|ty| {
                            declared.subject_types.is_empty()
                                || declared.subject_types.iter().any(|t| t == ty)
                        })
                        .collect(),
                    properties: declared
                        .properties
                        .as_ref()
                        .map(|r| Declared::new(r, store)),
                    context: declared.context.as_ref().map(|r| Declared::new(r, store)),
                };
                (Box::from(name.as_str()), names)
            })
            .collect();
        RequestNames { types, actions }
    }
}
