//! Cedar schemas, in the human form (`entity User in [Team] { … };`) and the JSON form, read
//! into one model.

use serde_json::Value;

use super::error::ImportError;
use super::lexer::Tok;
use super::parser::Cursor;
use crate::source::Span;

/// Every name is full: a type declared in `namespace App` is `App::User`, and the names its
/// declarations use are resolved as Cedar does (the namespace's own type first, then the one
/// outside every namespace). An action is named as Warden names it: `App::read` for Cedar's
/// `App::Action::"read"`, `read` for `Action::"read"` (see [`action_name`]).
#[derive(Clone, Debug, Default)]
pub struct Schema {
    pub entities: Vec<EntityType>,
    pub actions: Vec<Action>,
    /// `type Name = …;`
    pub common: Vec<(String, Type)>,
}

#[derive(Clone, Debug)]
pub struct EntityType {
    /// The full name: `App::User`.
    pub name: String,
    pub parents: Vec<String>,
    pub attrs: Vec<Attr>,
    /// `enum ["a", "b"]`: the only ids its entities may have.
    pub ids: Option<Vec<String>>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Attr {
    pub name: String,
    pub required: bool,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Type {
    /// A name: a primitive, an extension type, a common type or an entity type.
    Named(String, Span),
    Set(Box<Type>),
    Record(Vec<Attr>),
}

#[derive(Clone, Debug)]
pub struct Action {
    /// The full name: `App::read`.
    pub name: String,
    /// The namespace that declares it (`App` for `App::Action::"read"`).
    pub namespace: Option<String>,
    /// The action groups it is `in`, by full name once read (as written before: `read` for
    /// the namespace's own, `Other::read` for another namespace's).
    pub parents: Vec<String>,
    /// `None`: no `appliesTo`, so no request can name it.
    pub applies: Option<AppliesTo>,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct AppliesTo {
    pub principals: Vec<String>,
    pub resources: Vec<String>,
    pub context: Option<Type>,
}

impl Schema {
    pub fn entity(&self, name: &str) -> Option<&EntityType> {
        self.entities.iter().find(|e| e.name == name)
    }

    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn common(&self, name: &str) -> Option<&Type> {
        self.common.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Whether action `name` is `group` or in it, through any chain of parents.
    pub(crate) fn action_in(&self, name: &str, group: &str) -> bool {
        let mut stack = vec![name.to_string()];
        let mut seen = Vec::new();
        while let Some(a) = stack.pop() {
            if a == group {
                return true;
            }
            if seen.contains(&a) {
                continue;
            }
            if let Some(action) = self.action(&a) {
                stack.extend(action.parents.iter().cloned());
            }
            seen.push(a);
        }
        false
    }
}

/// `Action`, or a namespace's `App::Action`: the type of Cedar's action entities.
pub(crate) fn is_action_type(ty: &str) -> bool {
    ty == "Action" || ty.ends_with("::Action")
}

/// The Warden name of Cedar's action `ty::"id"`: `App::read` for `App::Action::"read"`, `read`
/// for `Action::"read"`. `None` when `ty` is no action type.
pub(crate) fn action_name(ty: &str, id: &str) -> Option<String> {
    if ty == "Action" {
        return Some(id.to_string());
    }
    let namespace = ty.strip_suffix("::Action")?;
    Some(format!("{namespace}::{id}"))
}

/// `name` in `namespace`: `App::name`, or `name` outside every namespace.
fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}::{name}"),
        None => name.to_string(),
    }
}

/// Reads the human schema form.
pub(crate) fn parse_human(text: &str) -> Result<Schema, ImportError> {
    let mut c = Cursor::new(text)?;
    let mut schema = Schema::default();
    let mut scopes = Scopes::default();
    while !c.at_end() {
        c.annotations()?;
        if c.eat_word("namespace") {
            let namespace = c.path("a namespace")?;
            c.expect(Tok::LBrace, "`{`")?;
            while !c.eat(Tok::RBrace) {
                c.annotations()?;
                declaration(&mut c, &mut schema, &mut scopes, Some(&namespace))?;
            }
        } else {
            declaration(&mut c, &mut schema, &mut scopes, None)?;
        }
    }
    scopes.resolve(&mut schema);
    Ok(schema)
}

fn declaration(
    c: &mut Cursor<'_>,
    schema: &mut Schema,
    scopes: &mut Scopes,
    namespace: Option<&str>,
) -> Result<(), ImportError> {
    let start = c.span();
    let (entities, actions, common) = (
        schema.entities.len(),
        schema.actions.len(),
        schema.common.len(),
    );
    if c.eat_word("entity") {
        entity_decl(c, schema, start)?;
    } else if c.eat_word("action") {
        action_decl(c, schema, start)?;
    } else if c.eat_word("type") {
        let name = c.ident("a type name")?.to_string();
        c.expect(Tok::Eq, "`=`")?;
        let ty = type_expr(c)?;
        c.expect(Tok::Semi, "`;`")?;
        schema.common.push((name, ty));
    } else if namespace.is_none() {
        return Err(c.error("`entity`, `action`, `type` or `namespace`"));
    } else {
        return Err(c.error("`entity`, `action`, `type` or `}`"));
    }
    scopes.declared(schema, namespace, (entities, actions, common));
    Ok(())
}

/// Which namespace declared what, so that the names the declarations use can be resolved once
/// every declaration is known.
#[derive(Default)]
struct Scopes {
    entities: Vec<Option<String>>,
    common: Vec<Option<String>>,
}

impl Scopes {
    /// Qualifies the declarations added since `before` with `namespace`.
    fn declared(
        &mut self,
        schema: &mut Schema,
        namespace: Option<&str>,
        (entities, actions, common): (usize, usize, usize),
    ) {
        for entity in schema.entities.iter_mut().skip(entities) {
            entity.name = qualified(namespace, &entity.name);
            self.entities.push(namespace.map(str::to_string));
        }
        for action in schema.actions.iter_mut().skip(actions) {
            action.namespace = namespace.map(str::to_string);
            action.name = qualified(namespace, &action.name);
            // A parent without a namespace is the declaring namespace's own (Cedar's
            // `Action::"g"` inside `namespace App` is `App::Action::"g"`).
            for parent in &mut action.parents {
                if !parent.contains("::") {
                    *parent = qualified(namespace, parent);
                }
            }
        }
        for (name, _) in schema.common.iter_mut().skip(common) {
            *name = qualified(namespace, name);
            self.common.push(namespace.map(str::to_string));
        }
    }

    /// Rewrites every type name a declaration uses to the full name it means.
    fn resolve(&self, schema: &mut Schema) {
        let known: Vec<String> = schema
            .entities
            .iter()
            .map(|e| e.name.clone())
            .chain(schema.common.iter().map(|(n, _)| n.clone()))
            .collect();
        let full = |namespace: Option<&str>, name: &mut String| {
            if let Some(namespace) = namespace
                && !name.contains("::")
            {
                let inner = qualified(Some(namespace), name);
                if known.contains(&inner) {
                    *name = inner;
                }
            }
        };
        for (entity, namespace) in schema.entities.iter_mut().zip(&self.entities) {
            let namespace = namespace.as_deref();
            entity.parents.iter_mut().for_each(|p| full(namespace, p));
            entity
                .attrs
                .iter_mut()
                .for_each(|a| resolve_type(&mut a.ty, &mut |n| full(namespace, n)));
        }
        for ((_, ty), namespace) in schema.common.iter_mut().zip(&self.common) {
            resolve_type(ty, &mut |n| full(namespace.as_deref(), n));
        }
        for action in &mut schema.actions {
            let namespace = action.namespace.clone();
            if let Some(applies) = &mut action.applies {
                let namespace = namespace.as_deref();
                applies
                    .principals
                    .iter_mut()
                    .for_each(|p| full(namespace, p));
                applies
                    .resources
                    .iter_mut()
                    .for_each(|r| full(namespace, r));
                if let Some(context) = &mut applies.context {
                    resolve_type(context, &mut |n| full(namespace, n));
                }
            }
        }
    }
}

fn resolve_type(ty: &mut Type, full: &mut impl FnMut(&mut String)) {
    match ty {
        Type::Named(name, _) => full(name),
        Type::Set(inner) => resolve_type(inner, full),
        Type::Record(attrs) => attrs.iter_mut().for_each(|a| resolve_type(&mut a.ty, full)),
    }
}

fn names(c: &mut Cursor<'_>, quoted: bool) -> Result<Vec<(String, Span)>, ImportError> {
    let mut out = Vec::new();
    loop {
        let span = c.span();
        let name = match c.peek() {
            Some(Tok::Str(_)) if quoted => c.string("a name")?,
            _ => c.ident("a name")?.to_string(),
        };
        out.push((name, span));
        if !c.eat(Tok::Comma) {
            return Ok(out);
        }
    }
}

fn type_list(c: &mut Cursor<'_>) -> Result<Vec<String>, ImportError> {
    if c.eat(Tok::LBracket) {
        let mut out = Vec::new();
        while !c.eat(Tok::RBracket) {
            out.push(c.path("an entity type")?);
            if !c.eat(Tok::Comma) {
                c.expect(Tok::RBracket, "`,` or `]`")?;
                break;
            }
        }
        Ok(out)
    } else {
        Ok(vec![c.path("an entity type")?])
    }
}

fn entity_decl(c: &mut Cursor<'_>, schema: &mut Schema, start: Span) -> Result<(), ImportError> {
    let declared = names(c, false)?;
    if c.eat_word("enum") {
        c.expect(Tok::LBracket, "`[`")?;
        let mut ids = Vec::new();
        while !c.eat(Tok::RBracket) {
            ids.push(c.string("an entity id")?);
            if !c.eat(Tok::Comma) {
                c.expect(Tok::RBracket, "`,` or `]`")?;
                break;
            }
        }
        c.expect(Tok::Semi, "`;`")?;
        let span = start.to(c.prev_span());
        for (name, _) in declared {
            schema.entities.push(EntityType {
                name,
                parents: Vec::new(),
                attrs: Vec::new(),
                ids: Some(ids.clone()),
                span,
            });
        }
        return Ok(());
    }
    let parents = if c.eat_word("in") {
        type_list(c)?
    } else {
        Vec::new()
    };
    c.eat(Tok::Eq);
    let attrs = if c.peek() == Some(Tok::LBrace) {
        match type_expr(c)? {
            Type::Record(attrs) => attrs,
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    if c.peek() == Some(Tok::Ident("tags")) {
        return Err(ImportError::Unsupported {
            construct: "entity tags".to_string(),
            span: c.span(),
            help: "store the tags as a record attribute".to_string(),
        });
    }
    c.expect(Tok::Semi, "`;`")?;
    let span = start.to(c.prev_span());
    for (name, _) in declared {
        schema.entities.push(EntityType {
            name,
            parents: parents.clone(),
            attrs: attrs.clone(),
            ids: None,
            span,
        });
    }
    Ok(())
}

fn action_decl(c: &mut Cursor<'_>, schema: &mut Schema, start: Span) -> Result<(), ImportError> {
    let declared = names(c, true)?;
    let mut parents = Vec::new();
    if c.eat_word("in") {
        let bracket = c.eat(Tok::LBracket);
        loop {
            if bracket && c.eat(Tok::RBracket) {
                break;
            }
            // `"name"`, `name`, `Action::"name"` or another namespace's `App::Action::"name"`.
            let at = c.span();
            let name = match c.peek() {
                Some(Tok::Str(_)) => c.string("an action")?,
                _ => {
                    let path = c.path("an action")?;
                    if c.eat(Tok::ColonColon) {
                        let id = c.string("an action id")?;
                        action_name(&path, &id).ok_or_else(|| {
                            ImportError::Invalid {
                            message: format!("`{path}` is no action type"),
                            span: at,
                            help: Some(
                                "an action is `in` actions: `Action::\"…\"` or `App::Action::\"…\"`"
                                    .to_string(),
                            ),
                        }
                        })?
                    } else {
                        path
                    }
                }
            };
            parents.push(name);
            if !bracket {
                break;
            }
            if !c.eat(Tok::Comma) {
                c.expect(Tok::RBracket, "`,` or `]`")?;
                break;
            }
        }
    }
    let mut applies = None;
    if c.eat_word("appliesTo") {
        let mut a = AppliesTo::default();
        c.expect(Tok::LBrace, "`{`")?;
        while !c.eat(Tok::RBrace) {
            let key_span = c.span();
            let key = c.ident("`principal`, `resource` or `context`")?;
            c.expect(Tok::Colon, "`:`")?;
            match key {
                "principal" => a.principals = type_list(c)?,
                "resource" => a.resources = type_list(c)?,
                "context" => a.context = Some(type_expr(c)?),
                other => {
                    return Err(ImportError::Invalid {
                        message: format!("unknown `appliesTo` member `{other}`"),
                        span: key_span,
                        help: Some("write `principal`, `resource` or `context`".to_string()),
                    });
                }
            }
            if !c.eat(Tok::Comma) {
                c.expect(Tok::RBrace, "`,` or `}`")?;
                break;
            }
        }
        applies = Some(a);
    }
    c.expect(Tok::Semi, "`;`")?;
    let span = start.to(c.prev_span());
    for (name, _) in declared {
        schema.actions.push(Action {
            name,
            namespace: None,
            parents: parents.clone(),
            applies: applies.clone(),
            span,
        });
    }
    Ok(())
}

fn type_expr(c: &mut Cursor<'_>) -> Result<Type, ImportError> {
    c.nested(type_expr_unbounded)
}

fn type_expr_unbounded(c: &mut Cursor<'_>) -> Result<Type, ImportError> {
    if c.eat(Tok::LBrace) {
        let mut attrs = Vec::new();
        while !c.eat(Tok::RBrace) {
            c.annotations()?;
            let span = c.span();
            let name = match c.peek() {
                Some(Tok::Str(_)) => c.string("an attribute name")?,
                _ => c.ident("an attribute name")?.to_string(),
            };
            let required = !c.eat(Tok::Question);
            c.expect(Tok::Colon, "`:`")?;
            let ty = type_expr(c)?;
            attrs.push(Attr {
                name,
                required,
                ty,
                span,
            });
            if !c.eat(Tok::Comma) {
                c.expect(Tok::RBrace, "`,` or `}`")?;
                break;
            }
        }
        return Ok(Type::Record(attrs));
    }
    let span = c.span();
    let path = c.path("a type")?;
    if path == "Set" {
        c.expect(Tok::Lt, "`<`")?;
        let inner = type_expr(c)?;
        c.expect(Tok::Gt, "`>`")?;
        return Ok(Type::Set(Box::new(inner)));
    }
    Ok(Type::Named(path, span.to(c.prev_span())))
}

// ---- The JSON form --------------------------------------------------------------------------

fn strings(value: Option<&Value>, what: &str) -> Result<Vec<String>, ImportError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ImportError::json(format!("{what}: expected a string, found `{v}`"))
                })
            })
            .collect(),
        Some(other) => Err(ImportError::json(format!(
            "{what}: expected an array, found `{other}`"
        ))),
    }
}

/// Reads the JSON schema form (`{"": {"entityTypes": …, "actions": …}}`).
pub(crate) fn parse_json(text: &str) -> Result<Schema, ImportError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| ImportError::json(format!("the schema is not valid JSON: {e}")))?;
    let Value::Object(namespaces) = root else {
        return Err(ImportError::json(
            "the schema must be a JSON object of namespaces".to_string(),
        ));
    };
    let mut schema = Schema::default();
    let mut scopes = Scopes::default();
    for (namespace, body) in namespaces {
        let before = (
            schema.entities.len(),
            schema.actions.len(),
            schema.common.len(),
        );
        if let Some(Value::Object(common)) = body.get("commonTypes") {
            for (name, ty) in common {
                schema
                    .common
                    .push((name.clone(), json_type(ty, &format!("commonTypes.{name}"))?));
            }
        }
        if let Some(Value::Object(types)) = body.get("entityTypes") {
            for (name, decl) in types {
                let ids = match decl.get("enum") {
                    None => None,
                    Some(ids) => Some(strings(Some(ids), &format!("{name}.enum"))?),
                };
                if decl.get("tags").is_some() {
                    return Err(ImportError::UnsupportedJson {
                        message: format!("Warden cannot say entity tags yet: `{name}`"),
                        help: "store the tags as a record attribute".to_string(),
                    });
                }
                let parents = strings(decl.get("memberOfTypes"), &format!("{name}.memberOfTypes"))?;
                let attrs = match decl.get("shape") {
                    None => Vec::new(),
                    Some(shape) => match json_type(shape, &format!("entityTypes.{name}.shape"))? {
                        Type::Record(attrs) => attrs,
                        _ => {
                            return Err(ImportError::json(format!(
                                "entityTypes.{name}.shape: an entity's shape must be a record"
                            )));
                        }
                    },
                };
                schema.entities.push(EntityType {
                    name: name.clone(),
                    parents,
                    attrs,
                    ids,
                    span: Span::default(),
                });
            }
        }
        if let Some(Value::Object(actions)) = body.get("actions") {
            for (name, decl) in actions {
                let mut parents = Vec::new();
                if let Some(Value::Array(members)) = decl.get("memberOf") {
                    for m in members {
                        if let Some(Value::String(ty)) = m.get("type")
                            && !is_action_type(ty)
                        {
                            return Err(ImportError::json(format!(
                                "actions.{name}.memberOf: an action group of type `{ty}`"
                            )));
                        }
                        // A `type` names the namespace of the group (`App::Action`).
                        let ty = m.get("type").and_then(Value::as_str).unwrap_or("Action");
                        match m.get("id").and_then(Value::as_str) {
                            Some(id) => parents.extend(action_name(ty, id)),
                            None => {
                                return Err(ImportError::json(format!(
                                    "actions.{name}.memberOf: each member needs an `id`"
                                )));
                            }
                        }
                    }
                }
                let applies = match decl.get("appliesTo") {
                    None | Some(Value::Null) => None,
                    Some(a) => Some(AppliesTo {
                        principals: strings(
                            a.get("principalTypes"),
                            &format!("actions.{name}.appliesTo.principalTypes"),
                        )?,
                        resources: strings(
                            a.get("resourceTypes"),
                            &format!("actions.{name}.appliesTo.resourceTypes"),
                        )?,
                        context: match a.get("context") {
                            None => None,
                            Some(t) => {
                                Some(json_type(t, &format!("actions.{name}.appliesTo.context"))?)
                            }
                        },
                    }),
                };
                schema.actions.push(Action {
                    name: name.clone(),
                    namespace: None,
                    parents,
                    applies,
                    span: Span::default(),
                });
            }
        }
        let namespace = (!namespace.is_empty()).then_some(namespace.as_str());
        scopes.declared(&mut schema, namespace, before);
    }
    scopes.resolve(&mut schema);
    Ok(schema)
}

fn json_type(value: &Value, at: &str) -> Result<Type, ImportError> {
    let Some(kind) = value.get("type").and_then(Value::as_str) else {
        return Err(ImportError::json(format!(
            "{at}: a type needs a `type` member"
        )));
    };
    let named = |name: &str| Type::Named(name.to_string(), Span::default());
    Ok(match kind {
        "Record" => {
            let mut attrs = Vec::new();
            if let Some(Value::Object(members)) = value.get("attributes") {
                for (name, member) in members {
                    let required = member
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                    attrs.push(Attr {
                        name: name.clone(),
                        required,
                        ty: json_type(member, &format!("{at}.{name}"))?,
                        span: Span::default(),
                    });
                }
            }
            Type::Record(attrs)
        }
        "Set" => match value.get("element") {
            Some(element) => Type::Set(Box::new(json_type(element, &format!("{at}.element"))?)),
            None => {
                return Err(ImportError::json(format!(
                    "{at}: a `Set` needs an `element`"
                )));
            }
        },
        "Entity" | "Extension" | "EntityOrCommon" => {
            match value.get("name").and_then(Value::as_str) {
                Some(name) => named(name),
                None => return Err(ImportError::json(format!("{at}: `{kind}` needs a `name`"))),
            }
        }
        other => named(other),
    })
}
