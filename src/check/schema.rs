//! The declarations of a policy directory, resolved: what the checker learns from `entity`,
//! `action` and `role` items, and what the data decoder and the compiler read.
//!
//! Names are the wire's strings (`"User"`, `"view"`), matched exactly. The checker builds one
//! `Schema` per directory; later stages treat it as read-only.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::error::UnknownEnumId;
use crate::check::suggest;
use crate::source::Span;

/// The key of a request's `context` that carries a capability token: the caller reads it,
/// policies never do (the checker refuses to declare or read it).
pub(crate) const CAPABILITY_KEY: &str = "capability";

/// A static type. `Dynamic` is "not known before run time": what undeclared `context`,
/// undeclared `properties`, and every value of a policy set without declarations have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    Bool,
    Int,
    String,
    Time,
    Duration,
    /// An IP address or a CIDR range (`ip("10.0.0.0/8")`); one type, as in Cedar.
    Ip,
    /// A fixed-point number with four decimal places (`decimal("1.25")`), as Cedar's.
    Decimal,
    /// An entity of the named type.
    Entity(String),
    /// An entity of a type not known statically (e.g. `subject` when several types may ask).
    AnyEntity,
    Set(Box<Type>),
    Record(RecordType),
    Dynamic,
}

impl Type {
    /// How the type is written in a policy: `Set<String>`, `Album`, `{ a: Int }`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Type::Bool => "Bool".to_string(),
            Type::Int => "Int".to_string(),
            Type::String => "String".to_string(),
            Type::Time => "Time".to_string(),
            Type::Duration => "Duration".to_string(),
            Type::Ip => "Ip".to_string(),
            Type::Decimal => "Decimal".to_string(),
            Type::Entity(name) => name.clone(),
            Type::AnyEntity => "an entity".to_string(),
            Type::Set(element) => format!("Set<{}>", element.describe()),
            Type::Record(record) => {
                let fields: Vec<String> = record
                    .fields
                    .iter()
                    .map(|(name, field)| {
                        let optional = if field.optional { "?" } else { "" };
                        format!("{name}{optional}: {}", field.ty.describe())
                    })
                    .collect();
                format!("{{ {} }}", fields.join(", "))
            }
            Type::Dynamic => "a value of unknown type".to_string(),
        }
    }
}

/// The fields of a record type (or the attributes of an entity type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordType {
    pub fields: BTreeMap<String, Field>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub ty: Type,
    /// Declared `name?: Type`: may be absent, so a read needs a `has` guard.
    pub optional: bool,
}

/// An `entity` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityType {
    pub name: String,
    /// The types a member's parents may have (`entity Photo in [Album]`).
    pub parents: Vec<String>,
    /// Stored attributes: from the entity store or verified claims.
    pub attributes: RecordType,
    /// The caller-sent `properties`; `None` leaves them dynamic.
    pub properties: Option<RecordType>,
    /// `entity Color enum ["red", "green"]`: the only ids its entities may have.
    pub ids: Option<BTreeSet<String>>,
}

impl EntityType {
    /// Whether an entity of this type may have the id `id`: any, unless the type is an
    /// enumeration.
    pub fn allows_id(&self, id: &str) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(id))
    }
}

/// An `action` declaration (one per action name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub name: String,
    /// Resource types the action applies to; empty means any type.
    pub resource_types: Vec<String>,
    /// Subject types that may ask for the action (`by User, Team`); empty means any type.
    pub subject_types: Vec<String>,
    /// The caller-sent `action.properties`; `None` leaves them dynamic.
    pub properties: Option<RecordType>,
    /// The `context` the action expects; `None` leaves context dynamic.
    pub context: Option<RecordType>,
}

/// A `role` declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Direct parents, as written (`role curator : contributor`), each once. The transitive
    /// closure is not stored: along a chain of roles it grows with the square of the chain's
    /// length; [`Schema::role_closure`] walks it when asked.
    pub inherits: Vec<String>,
}

/// Everything declared in a policy directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schema {
    pub entity_types: BTreeMap<String, EntityType>,
    pub actions: BTreeMap<String, Action>,
    /// Action groups, flattened to the action names they stand for.
    pub action_groups: BTreeMap<String, BTreeSet<String>>,
    /// Actions that others are declared `in` (directly or not), flattened to the action names
    /// they stand for: themselves and every action beneath them.
    pub action_descendants: BTreeMap<String, BTreeSet<String>>,
    pub roles: BTreeMap<String, Role>,
}

impl Schema {
    /// A directory without `entity` declarations is dynamically typed: any entity type may
    /// appear and attributes are checked at run time.
    pub fn declares_entities(&self) -> bool {
        !self.entity_types.is_empty()
    }

    /// A directory without `action` declarations accepts any action name.
    pub fn declares_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The actions an action-or-group name stands for: a group's, an action and those beneath
    /// it, or the name alone.
    pub(crate) fn expand_action(&self, name: &str) -> BTreeSet<String> {
        match self.covered_by(name) {
            Some(members) => members.clone(),
            None => BTreeSet::from([name.to_string()]),
        }
    }

    /// Whether naming `name` (an action or a group) covers the requested `action`.
    pub fn covers(&self, name: &str, action: &str) -> bool {
        match self.covered_by(name) {
            Some(members) => members.contains(action),
            None => name == action,
        }
    }

    fn covered_by(&self, name: &str) -> Option<&BTreeSet<String>> {
        self.action_groups
            .get(name)
            .or_else(|| self.action_descendants.get(name))
    }

    /// The mistake of naming the entity `ty::id` when `ty` is an enumeration that does not
    /// list `id`; `None` when the entity may exist.
    pub fn unknown_enum_id(&self, ty: &str, id: &str, span: Span) -> Option<UnknownEnumId> {
        let ids = self.entity_types.get(ty)?.ids.as_ref()?;
        if ids.contains(id) {
            return None;
        }
        let help = suggest::did_you_mean(id, ids.iter().map(String::as_str), || {
            format!("the ids of `{ty}` are {}", suggest::list(ids))
        });
        Some(UnknownEnumId {
            ty: ty.to_string(),
            id: crate::syntax::fmt::quoted(id),
            span,
            help,
        })
    }

    /// The roles that holding `role` gives: itself and everything it inherits, directly or
    /// not (a cycle, an error the checker reports, ends the walk instead of looping).
    pub fn role_closure(&self, role: &str) -> BTreeSet<String> {
        let mut roles = BTreeSet::from([role.to_string()]);
        let mut pending = vec![role];
        while let Some(name) = pending.pop() {
            for parent in self.roles.get(name).into_iter().flat_map(|r| &r.inherits) {
                if roles.insert(parent.clone()) {
                    pending.push(parent);
                }
            }
        }
        roles
    }
}
