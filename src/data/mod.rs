//! The entity store, read from the JSON data files of a policy directory through the
//! declarations, and the runtime values it holds.
//!
//! A data file is one JSON object:
//!
//! ```json
//! {
//!   "entities": [
//!     { "type": "User", "id": "alice",
//!       "attributes": { "email": "alice@example.com", "roles": ["viewer"] },
//!       "parents": [ { "type": "Group", "id": "staff" } ] }
//!   ],
//!   "roles": [
//!     { "role": "curator", "subject": { "type": "User", "id": "bob" },
//!       "on": { "type": "Album", "id": "a1" } }
//!   ]
//! }
//! ```

pub mod decode;
pub mod json;
pub mod store;
pub mod value;

use std::sync::Arc;

use crate::check::error::UnknownEnumId;
use crate::check::schema::{Schema, Type};
use crate::data::decode::{DecodeError, Decoder, Resolver, Unknown, entity_object};
use crate::data::json::{Json, JsonKind};
use crate::data::store::{RoleBinding, Store};
use crate::data::value::{EntityId, EntityRef, Value};
use crate::source::{Diagnostic, SourceFile, Span, suggest};

pub use store::Entity;
pub use value::EntityUid;

/// A problem in a data file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum DataError {
    #[error("invalid JSON: {message}")]
    #[diagnostic(
        code(warden::data::syntax),
        help("data files are JSON objects with `entities` and `roles` arrays")
    )]
    Syntax {
        message: String,
        #[label("here")]
        span: Span,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::data::shape))]
    Shape {
        message: String,
        #[label("{path}")]
        span: Span,
        path: String,
        #[help]
        help: String,
    },
    #[error("{message}")]
    #[diagnostic(code(warden::data::value))]
    Value {
        message: String,
        #[label("{path}")]
        span: Span,
        path: String,
        #[help]
        help: Option<String>,
    },
    #[error("undeclared entity type `{ty}`")]
    #[diagnostic(code(warden::data::undeclared_type))]
    UndeclaredType {
        ty: String,
        #[label("not declared by any `entity`")]
        span: Span,
        #[help]
        help: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    UnknownEnumId(#[from] UnknownEnumId),
    #[error("entity `{uid}` is defined twice")]
    #[diagnostic(
        code(warden::data::duplicate),
        help("each entity is defined once across all data files; merge the two definitions")
    )]
    Duplicate {
        uid: String,
        #[label("second definition")]
        span: Span,
    },
    #[error("`{parent}` cannot be a parent of a `{ty}`")]
    #[diagnostic(code(warden::data::parent_type))]
    ParentType {
        parent: String,
        ty: String,
        #[label("not allowed here")]
        span: Span,
        #[help]
        help: String,
    },
    #[error("entity {uid} is its own ancestor: {cycle}")]
    #[diagnostic(
        code(warden::data::cycle),
        help("each entity on the cycle lists the next one as a parent; remove one of these links")
    )]
    Cycle {
        uid: String,
        cycle: String,
        #[label("on a cycle of parents")]
        span: Span,
    },
    #[error("undeclared role `{role}`")]
    #[diagnostic(code(warden::data::role))]
    UnknownRole {
        role: String,
        #[label("no `role {role}` is declared")]
        span: Span,
        #[help]
        help: String,
    },
}

impl From<DecodeError> for DataError {
    fn from(error: DecodeError) -> DataError {
        DataError::Value {
            message: error.message,
            span: error.span,
            path: error.path,
            help: error.help,
        }
    }
}

/// Resolves entity references in data files: every named entity gets an id, stored or not.
struct DataResolver<'s> {
    store: &'s mut Store,
    schema: &'s Schema,
}

impl Resolver for DataResolver<'_> {
    fn entity(&mut self, ty: &str, id: &str) -> EntityRef {
        EntityRef::Known(self.store.intern_entity(ty, id))
    }
    fn string(&mut self, text: &str) -> Arc<str> {
        self.store.intern_str(text)
    }
    fn schema(&self) -> &Schema {
        self.schema
    }
}

/// An entity definition being decoded (pass two).
struct Pending<'j> {
    id: EntityId,
    ty: String,
    json: &'j Json,
    path: String,
}

/// An entity definition or role binding found in pass one. Sixteen bytes: a data file of a
/// million entities keeps one per entity until pass two.
#[derive(Clone, Copy)]
struct Found {
    file: u32,
    /// The entity defined; unused for a binding.
    id: EntityId,
    /// Where the element is: for a document given as text, the offset its text starts at
    /// (read again, alone, when it is needed); for one given as a tree, its node's index in
    /// [`FirstPass::trees`].
    element: u32,
    /// Its index in its array, for its JSON path.
    index: u32,
}

/// Reads every data file into one store. Problems are returned as diagnostics; the store holds
/// whatever was valid (callers refuse to serve when there are errors).
pub fn load_store(files: &[SourceFile], schema: &Schema) -> (Store, Vec<Diagnostic>) {
    let mut store = Store::default();
    let inputs: Vec<(Option<&Json>, &SourceFile)> = files.iter().map(|f| (None, f)).collect();
    let diagnostics = extend(&mut store, &inputs, schema);
    (store, diagnostics)
}

/// A JSON document in the data-file format, and the file its spans point into (a data file,
/// or a policy file whose test `given`s were turned into one).
pub struct Document<'a> {
    pub json: &'a Json,
    pub file: &'a SourceFile,
}

/// Adds the entities and role bindings of `documents` to `store` and recomputes every
/// ancestor set. An entity that `store` already defines and a document defines again is
/// replaced (attributes and parents); defining one entity twice within `documents` is an error.
pub(crate) fn extend_store(
    store: &mut Store,
    documents: &[Document<'_>],
    schema: &Schema,
) -> Vec<Diagnostic> {
    let inputs: Vec<(Option<&Json>, &SourceFile)> =
        documents.iter().map(|d| (Some(d.json), d.file)).collect();
    extend(store, &inputs, schema)
}

/// What pass one gathers from the documents.
struct FirstPass<'s, 'j> {
    schema: &'s Schema,
    store: &'s mut Store,
    file: usize,
    /// The array the next elements belong to: `entities`, `roles` or another (refused) one.
    section: Section,
    entities: Vec<Found>,
    bindings: Vec<Found>,
    /// The elements of the documents given as trees, in the order found.
    trees: Vec<&'j Json>,
    problems: Vec<(usize, DataError)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Entities,
    Roles,
    Other,
}

impl<'j> FirstPass<'_, 'j> {
    fn report(&mut self, error: DataError) {
        self.problems.push((self.file, error));
    }

    fn not_object(&mut self, span: Span) {
        self.report(shape(
            "a data file must be a JSON object",
            span,
            "$",
            "write `{\"entities\": [...], \"roles\": [...]}`",
        ));
    }

    /// A member of the document; `value` is `None` for an array, whose elements follow.
    fn member(&mut self, key: &str, key_span: Span, value: Option<&Json>) {
        self.section = Section::Other;
        match (key, value) {
            ("entities", None) => self.section = Section::Entities,
            ("roles", None) => self.section = Section::Roles,
            ("entities", Some(value)) => self.report(shape(
                "`entities` must be an array",
                value.span,
                "$.entities",
                "write `\"entities\": [ {\"type\": …, \"id\": …}, … ]`",
            )),
            ("roles", Some(value)) => self.report(shape(
                "`roles` must be an array",
                value.span,
                "$.roles",
                "write `\"roles\": [ {\"role\": …, \"subject\": …, \"on\": …}, … ]`",
            )),
            (other, _) => {
                let help = match suggest(other, ["entities", "roles"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "a data file has only `entities` and `roles`".to_string(),
                };
                self.report(shape(
                    &format!("unknown member `{other}`"),
                    key_span,
                    "$",
                    &help,
                ));
            }
        }
    }

    fn element(&mut self, index: usize, json: &Json, element: u32) {
        let (file, index) = (to_u32(self.file), to_u32(index));
        match self.section {
            Section::Entities => {
                let path = format!("$.entities[{index}]");
                let mut problems = Vec::new();
                let named = first_pass_entity(json, &path, self.schema, self.store, &mut problems);
                for problem in problems {
                    self.report(problem);
                }
                if let Some(id) = named {
                    self.entities.push(Found {
                        file,
                        id,
                        element,
                        index,
                    });
                }
            }
            Section::Roles => self.bindings.push(Found {
                file,
                id: EntityId(0),
                element,
                index,
            }),
            Section::Other => {}
        }
    }

    /// Pass one over a tree.
    fn document(&mut self, document: &'j Json) {
        let JsonKind::Object(members) = &document.kind else {
            self.not_object(document.span);
            return;
        };
        for (key, key_span, value) in members {
            match &value.kind {
                JsonKind::Array(items) => {
                    self.member(key, *key_span, None);
                    for (index, item) in items.iter().enumerate() {
                        self.trees.push(item);
                        self.element(index, item, to_u32(self.trees.len() - 1));
                    }
                }
                _ => self.member(key, *key_span, Some(value)),
            }
        }
    }

    /// Pass one over a file's text, an element at a time. On a syntax error nothing of the
    /// file is kept but the error (its entities stay named, which only a directory that does
    /// not load can see).
    fn text(&mut self, file: &SourceFile) {
        let (entities, bindings, problems) = (
            self.entities.len(),
            self.bindings.len(),
            self.problems.len(),
        );
        let result = json::read_members(file.text(), &mut |event| match event {
            json::Event::NotObject(value) => self.not_object(value.span),
            json::Event::Member {
                key,
                key_span,
                value,
            } => self.member(key, key_span, value),
            json::Event::Element { index, value } => self.element(index, value, value.span.start),
        });
        if let Err(error) = result {
            self.entities.truncate(entities);
            self.bindings.truncate(bindings);
            self.problems.truncate(problems);
            self.report(DataError::Syntax {
                message: error.message,
                span: error.span,
            });
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The tree of an element found in pass one: the tree's own node, or the element parsed
/// again from the file's text.
fn element_json<'j>(
    found: &Found,
    inputs: &[(Option<&Json>, &SourceFile)],
    trees: &[&'j Json],
    owned: &'j mut Option<Json>,
) -> Option<&'j Json> {
    match inputs.get(found.file as usize)? {
        (Some(_), _) => trees.get(found.element as usize).copied(),
        (None, file) => {
            *owned = json::parse_element(file.text(), found.element as usize).ok();
            owned.as_ref()
        }
    }
}

/// Pass one learns every entity's name, so references resolve whatever the order of the
/// files; pass two decodes attributes and parents through the declarations. Documents given
/// as text (`None`) are read an element at a time, so only one entity's JSON tree is in
/// memory at once.
fn extend(
    store: &mut Store,
    inputs: &[(Option<&Json>, &SourceFile)],
    schema: &Schema,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let files: Vec<&SourceFile> = inputs.iter().map(|(_, file)| *file).collect();

    let mut first = FirstPass {
        schema,
        store,
        file: 0,
        section: Section::Other,
        entities: Vec::new(),
        bindings: Vec::new(),
        trees: Vec::new(),
        problems: Vec::new(),
    };
    for (file_index, (tree, file)) in inputs.iter().enumerate() {
        first.file = file_index;
        match tree {
            Some(document) => first.document(document),
            None => first.text(file),
        }
    }
    let FirstPass {
        store,
        entities,
        bindings,
        trees,
        problems,
        ..
    } = first;
    for (file, error) in problems {
        if let Some(file) = files.get(file) {
            diagnostics.push(Diagnostic::in_file(error, file));
        }
    }

    let mut defined = vec![false; store.len()];
    for found in &entities {
        let Some(file) = files.get(found.file as usize).copied() else {
            continue;
        };
        let mut owned = None;
        let Some(json) = element_json(found, inputs, &trees, &mut owned) else {
            continue;
        };
        if defined.get(found.id.index()).copied().unwrap_or(false) {
            let uid = store
                .entity(found.id)
                .map(|e| e.uid.to_string())
                .unwrap_or_default();
            diagnostics.push(Diagnostic::in_file(
                DataError::Duplicate {
                    uid,
                    span: json.span,
                },
                file,
            ));
            continue;
        }
        if let Some(flag) = defined.get_mut(found.id.index()) {
            *flag = true;
        }
        let entry = Pending {
            id: found.id,
            ty: store
                .entity(found.id)
                .map(|e| e.uid.ty.to_string())
                .unwrap_or_default(),
            json,
            path: format!("$.entities[{}]", found.index),
        };
        for error in second_pass_entity(&entry, schema, store) {
            diagnostics.push(Diagnostic::in_file(error, file));
        }
    }

    for found in &bindings {
        let Some(file) = files.get(found.file as usize).copied() else {
            continue;
        };
        let mut owned = None;
        let Some(json) = element_json(found, inputs, &trees, &mut owned) else {
            continue;
        };
        let path = format!("$.roles[{}]", found.index);
        match role_binding(json, &path, schema, store) {
            Ok(binding) => store.add_binding(binding),
            Err(error) => diagnostics.push(Diagnostic::in_file(error, file)),
        }
    }

    let on_cycle = store.compute_ancestors();
    // Report one cycle, at the first of its entities that a file defines.
    if let Some(cycle) = parent_cycle(store, &on_cycle)
        && let Some(found) = entities.iter().find(|p| cycle.contains(&p.id))
        && let Some(file) = files.get(found.file as usize).copied()
    {
        let name = |id: EntityId| {
            store
                .entity(id)
                .map(|e| format!("`{}`", e.uid))
                .unwrap_or_default()
        };
        // The path starts and ends at the reported entity.
        let start = cycle.iter().position(|id| *id == found.id).unwrap_or(0);
        let path: Vec<String> = cycle
            .iter()
            .cycle()
            .skip(start)
            .take(cycle.len() + 1)
            .map(|id| name(*id))
            .collect();
        let mut owned = None;
        let span =
            element_json(found, inputs, &trees, &mut owned).map_or_else(Span::default, |j| j.span);
        let uid = path.first().cloned().unwrap_or_default();
        diagnostics.push(Diagnostic::in_file(
            DataError::Cycle {
                uid,
                cycle: path.join(" → "),
                span,
            },
            file,
        ));
    }
    diagnostics
}

/// One cycle of the parent relation among `stuck`, the entities whose ancestors could not be
/// computed, each entity followed by one of its parents. Every stuck entity has a stuck parent
/// (else it would not be stuck), so following them from any one of them comes round.
fn parent_cycle(store: &Store, stuck: &[EntityId]) -> Option<Vec<EntityId>> {
    let stuck_set: std::collections::HashSet<EntityId> = stuck.iter().copied().collect();
    let mut path: Vec<EntityId> = Vec::new();
    let mut seen: std::collections::HashMap<EntityId, usize> = std::collections::HashMap::new();
    let mut current = *stuck.first()?;
    loop {
        if let Some(&at) = seen.get(&current) {
            return path.get(at..).map(<[EntityId]>::to_vec);
        }
        seen.insert(current, path.len());
        path.push(current);
        current = *store
            .entity(current)?
            .parents
            .iter()
            .find(|parent| stuck_set.contains(parent))?;
    }
}

fn shape(message: &str, span: Span, path: &str, help: &str) -> DataError {
    DataError::Shape {
        message: message.to_string(),
        span,
        path: path.to_string(),
        help: help.to_string(),
    }
}

/// Names the entity of `json`; its unknown members are reported in `problems` and do not
/// stop it (the rest of the entity is still checked in pass two).
fn first_pass_entity(
    json: &Json,
    path: &str,
    schema: &Schema,
    store: &mut Store,
    problems: &mut Vec<DataError>,
) -> Option<EntityId> {
    let JsonKind::Object(members) = &json.kind else {
        problems.push(shape(
            "an entity must be an object",
            json.span,
            path,
            "write `{\"type\": \"User\", \"id\": \"alice\", \"attributes\": {…}, \"parents\": […]}`",
        ));
        return None;
    };
    for (key, key_span, _) in members {
        if !matches!(key.as_str(), "type" | "id" | "attributes" | "parents") {
            let help = match suggest(key, ["type", "id", "attributes", "parents"]) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "an entity has `type`, `id`, `attributes` and `parents`".to_string(),
            };
            problems.push(shape(
                &format!("unknown member `{key}`"),
                *key_span,
                path,
                &help,
            ));
        }
    }
    let (ty, id) = match entity_object_members(json, path) {
        Ok(named) => named,
        Err(error) => {
            problems.push(error);
            return None;
        }
    };
    let type_span = json.get("type").map_or(json.span, |t| t.span);
    if schema.declares_entities() && !schema.entity_types.contains_key(ty) {
        problems.push(undeclared_type(ty, type_span, schema));
        return None;
    }
    if let Some(error) =
        unknown_enum_id(ty, id, json.get("id").map_or(json.span, |i| i.span), schema)
    {
        problems.push(error);
        return None;
    }
    Some(store.intern_entity(ty, id))
}

fn entity_object_members<'j>(json: &'j Json, path: &str) -> Result<(&'j str, &'j str), DataError> {
    let member = |key: &str| match json.get(key).map(|v| &v.kind) {
        Some(JsonKind::String(s)) => Ok(s.as_str()),
        Some(_) => Err(shape(
            &format!("`{key}` must be a string"),
            json.get(key).map_or(json.span, |v| v.span),
            path,
            "entity types and ids are strings",
        )),
        None => Err(shape(
            &format!("missing `{key}`"),
            json.span,
            path,
            "every entity has a `type` and an `id`",
        )),
    };
    Ok((member("type")?, member("id")?))
}

/// An entity of an enumerated type (`entity Color enum [...]`) whose id it does not list.
fn unknown_enum_id(ty: &str, id: &str, span: Span, schema: &Schema) -> Option<DataError> {
    schema.unknown_enum_id(ty, id, span).map(DataError::from)
}

fn undeclared_type(ty: &str, span: Span, schema: &Schema) -> DataError {
    let help = match suggest(ty, schema.entity_types.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`? (types are matched exactly, case included)"),
        None => format!("declare it with `entity {ty}` in a policy file"),
    };
    DataError::UndeclaredType {
        ty: ty.to_string(),
        span,
        help,
    }
}

/// Decodes an entity's attributes and parents and defines it; returns every mistake found
/// (an entity with any is not defined).
fn second_pass_entity(entry: &Pending<'_>, schema: &Schema, store: &mut Store) -> Vec<DataError> {
    let mut problems = Vec::new();
    let gathered = |errors: Vec<DecodeError>| errors.into_iter().map(DataError::from);
    let declared = schema.entity_types.get(&entry.ty);
    let attributes_path = format!("{}.attributes", entry.path);
    let attributes = match (entry.json.get("attributes"), declared) {
        (Some(json), Some(_)) if json.get("properties").is_some() => {
            problems.push(shape(
                "`properties` cannot be stored",
                json.get("properties").map_or(json.span, |p| p.span),
                &attributes_path,
                "`properties` are what a caller sends with a request; store the value as an attribute instead",
            ));
            None
        }
        (Some(json), Some(declared)) => {
            let mut resolver = DataResolver { store, schema };
            let mut decoder = Decoder {
                resolver: &mut resolver,
                unknown: Unknown::Reject,
            };
            decoder
                .record_all(json, &declared.attributes, &attributes_path)
                .map_err(|errors| problems.extend(gathered(errors)))
                .ok()
        }
        (Some(json), None) => {
            let mut resolver = DataResolver { store, schema };
            let mut decoder = Decoder {
                resolver: &mut resolver,
                unknown: Unknown::Ignore,
            };
            match decoder.decode_all(json, &Type::Dynamic, &attributes_path) {
                Ok(record @ Value::Record(_)) => Some(record),
                Ok(_) => {
                    problems.push(shape(
                        "`attributes` must be an object",
                        json.span,
                        &entry.path,
                        "write `\"attributes\": {\"name\": value, …}`",
                    ));
                    None
                }
                Err(errors) => {
                    problems.extend(gathered(errors));
                    None
                }
            }
        }
        (None, Some(declared)) => {
            // No attributes at all: fine only if none is required.
            let empty = Json {
                kind: JsonKind::Object(Vec::new()),
                span: entry.json.span,
            };
            let mut resolver = DataResolver { store, schema };
            let mut decoder = Decoder {
                resolver: &mut resolver,
                unknown: Unknown::Reject,
            };
            decoder
                .record_all(&empty, &declared.attributes, &attributes_path)
                .map_err(|errors| problems.extend(gathered(errors)))
                .ok()
        }
        (None, None) => Some(Value::empty_record()),
    };
    // Role names are checked where `roles` is an attribute (an undeclared one is reported above).
    if let Some(json) = entry.json.get("attributes").and_then(|a| a.get("roles"))
        && declared.is_none_or(|d| d.attributes.fields.contains_key("roles"))
    {
        check_role_names(json, schema, &mut problems);
    }
    let mut parents = Vec::new();
    if let Some(json) = entry.json.get("parents") {
        match &json.kind {
            JsonKind::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    let path = format!("{}.parents[{index}]", entry.path);
                    match parent(entry, declared, item, &path, schema) {
                        Ok((ty, id)) => parents.push(store.intern_entity(ty, id)),
                        Err(error) => problems.push(error),
                    }
                }
            }
            _ => problems.push(shape(
                "`parents` must be an array",
                json.span,
                &entry.path,
                "write `\"parents\": [{\"type\": \"Group\", \"id\": \"staff\"}]`",
            )),
        }
    }
    if let (true, Some(Value::Record(fields))) = (problems.is_empty(), attributes) {
        store.define(entry.id, fields, parents);
    }
    problems
}

/// The type and id of one of an entity's parents, if the entity may have it.
fn parent<'j>(
    entry: &Pending<'_>,
    declared: Option<&'j crate::check::schema::EntityType>,
    item: &'j Json,
    path: &str,
    schema: &Schema,
) -> Result<(&'j str, &'j str), DataError> {
    let allowed: &[String] = declared.map_or(&[], |d| d.parents.as_slice());
    let (ty, id) = match &item.kind {
        JsonKind::String(id) if allowed.len() == 1 => (
            allowed.first().map(String::as_str).unwrap_or(""),
            id.as_str(),
        ),
        JsonKind::String(_) => {
            return Err(shape(
                "a parent needs its type here",
                item.span,
                path,
                "write `{\"type\": \"Group\", \"id\": \"staff\"}`; a bare id works only when the entity type has exactly one parent type",
            ));
        }
        JsonKind::Object(_) => entity_object(item, path).map_err(DataError::from)?,
        _ => {
            return Err(shape(
                "a parent is an entity",
                item.span,
                path,
                "write `{\"type\": \"Group\", \"id\": \"staff\"}`",
            ));
        }
    };
    if declared.is_some() && !allowed.iter().any(|a| a == ty) {
        let help = if allowed.is_empty() {
            format!(
                "`{}` declares no parent types; add `in [{ty}]` to `entity {}`",
                entry.ty, entry.ty
            )
        } else {
            format!(
                "a `{}` may have parents of type {}; or add `{ty}` to its `in [...]`",
                entry.ty,
                list(allowed)
            )
        };
        return Err(DataError::ParentType {
            parent: format!("{ty}::\"{id}\""),
            ty: entry.ty.clone(),
            span: item.span,
            help,
        });
    }
    if schema.declares_entities() && !schema.entity_types.contains_key(ty) {
        return Err(undeclared_type(ty, item.span, schema));
    }
    if let Some(error) = unknown_enum_id(ty, id, item.span, schema) {
        return Err(error);
    }
    Ok((ty, id))
}

/// Reports every name in an entity's `roles` that no `role` declares.
fn check_role_names(json: &Json, schema: &Schema, problems: &mut Vec<DataError>) {
    // Only directories that declare roles give meaning to role names.
    if schema.roles.is_empty() {
        return;
    }
    let JsonKind::Array(items) = &json.kind else {
        return;
    };
    for item in items {
        if let JsonKind::String(name) = &item.kind
            && !schema.roles.contains_key(name.as_str())
        {
            problems.push(unknown_role(name, item.span, schema));
        }
    }
}

fn unknown_role(name: &str, span: Span, schema: &Schema) -> DataError {
    let help = match suggest(name, schema.roles.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None if schema.roles.is_empty() => {
            format!("declare it with `role {name} {{ … }}` in a policy file")
        }
        None => format!("the declared roles are {}", list(schema.roles.keys())),
    };
    DataError::UnknownRole {
        role: name.to_string(),
        span,
        help,
    }
}

fn list<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn role_binding(
    json: &Json,
    path: &str,
    schema: &Schema,
    store: &mut Store,
) -> Result<RoleBinding, DataError> {
    let JsonKind::Object(members) = &json.kind else {
        return Err(shape(
            "a role binding must be an object",
            json.span,
            path,
            "write `{\"role\": \"curator\", \"subject\": {\"type\": \"User\", \"id\": \"bob\"}, \"on\": {\"type\": \"Album\", \"id\": \"a1\"}}`",
        ));
    };
    for (key, key_span, _) in members {
        if !matches!(key.as_str(), "role" | "subject" | "on") {
            let help = match suggest(key, ["role", "subject", "on"]) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "a role binding has `role`, `subject` and optionally `on`".to_string(),
            };
            return Err(shape(
                &format!("unknown member `{key}`"),
                *key_span,
                path,
                &help,
            ));
        }
    }
    let role = match json.get("role") {
        Some(Json {
            kind: JsonKind::String(role),
            span,
        }) => {
            if !schema.roles.contains_key(role) {
                return Err(unknown_role(role, *span, schema));
            }
            store.intern_str(role)
        }
        Some(other) => {
            return Err(shape(
                "`role` must be a string",
                other.span,
                path,
                "name a declared role",
            ));
        }
        None => {
            return Err(shape(
                "missing `role`",
                json.span,
                path,
                "name a declared role: `\"role\": \"viewer\"`",
            ));
        }
    };
    let mut entity = |key: &str, required: bool| -> Result<Option<EntityId>, DataError> {
        let Some(value) = json.get(key) else {
            return if required {
                Err(shape(
                    &format!("missing `{key}`"),
                    json.span,
                    path,
                    &format!("write `\"{key}\": {{\"type\": …, \"id\": …}}`"),
                ))
            } else {
                Ok(None)
            };
        };
        let member_path = format!("{path}.{key}");
        let (ty, id) = entity_object(value, &member_path).map_err(DataError::from)?;
        if schema.declares_entities() && !schema.entity_types.contains_key(ty) {
            return Err(undeclared_type(ty, value.span, schema));
        }
        if let Some(error) = unknown_enum_id(ty, id, value.span, schema) {
            return Err(error);
        }
        Ok(Some(store.intern_entity(ty, id)))
    };
    let subject = entity("subject", true)?;
    let on = entity("on", false)?;
    let Some(subject) = subject else {
        return Err(shape(
            "missing `subject`",
            json.span,
            path,
            "write `\"subject\": {\"type\": …, \"id\": …}`",
        ));
    };
    Ok(RoleBinding { role, subject, on })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extending_a_store_replaces_what_it_redefines_and_recomputes_ancestors() {
        let (parsed, problems) = crate::syntax::parse(&SourceFile::new(
            "s.warden",
            "entity Group in [Group]\nentity User in [Group] { admin: Bool }",
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let checked = crate::check::check(std::slice::from_ref(&parsed));
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        let schema = &checked.schema;
        let base = SourceFile::new(
            "base.json",
            r#"{"entities": [{"type": "Group", "id": "g"}, {"type": "Group", "id": "h"},
                {"type": "User", "id": "u", "attributes": {"admin": false}, "parents": ["g"]}]}"#,
        );
        let (mut store, problems) = load_store(std::slice::from_ref(&base), schema);
        assert!(problems.is_empty(), "{problems:?}");
        let u = store.lookup("User", "u").unwrap();
        let (g, h) = (
            store.lookup("Group", "g").unwrap(),
            store.lookup("Group", "h").unwrap(),
        );
        assert!(store.is_in(u, g));

        let text = r#"{"entities": [{"type": "User", "id": "u", "attributes": {"admin": true}, "parents": ["h"]}],
                       "roles": []}"#;
        let overlay = SourceFile::new("overlay.json", text);
        let json = json::parse(overlay.text()).unwrap();
        let problems = extend_store(
            &mut store,
            &[Document {
                json: &json,
                file: &overlay,
            }],
            schema,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let entity = store.entity(u).unwrap();
        assert!(matches!(
            entity
                .attributes
                .as_deref()
                .and_then(|a| value::field_of(a, "admin")),
            Some(Value::Bool(true))
        ));
        assert!(store.is_in(u, h));
        assert!(!store.is_in(u, g));

        // Within one extension, a second definition is still a mistake.
        let twice = SourceFile::new(
            "twice.json",
            r#"{"entities": [{"type": "Group", "id": "k"}, {"type": "Group", "id": "k"}]}"#,
        );
        let json = json::parse(twice.text()).unwrap();
        let problems = extend_store(
            &mut store,
            &[Document {
                json: &json,
                file: &twice,
            }],
            schema,
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].code().as_deref(),
            Some("warden::data::duplicate")
        );
    }
}
