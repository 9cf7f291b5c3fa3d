//! Requests: the AuthZEN information model, decoded through the program's declarations.
//!
//! A request that is not well-formed (not an object, no `subject`, a `type` that is not a
//! string) is *malformed*: the server answers 400. A well-formed request that names an
//! undeclared type or action, or carries a mistyped property or context value, is *invalid*:
//! it is decided deny, with the reason explained.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value as JsonValue;

use crate::check::schema::{Action as ActionDecl, CAPABILITY_KEY, EntityType, RecordType, Type};
use crate::data::decode::{Decoder, Resolver, Unknown};
use crate::data::json::{Json, JsonKind};
use crate::data::store::Store;
use crate::data::value::{EntityRef, EntityUid, Value};
use crate::program::Program;
use crate::program::requests::Declared;
use crate::source::{Span, suggest};

/// A decoded request, ready to decide.
#[derive(Clone, Debug)]
pub struct Request {
    pub subject: Value,
    pub subject_properties: Value,
    pub action: Arc<str>,
    pub action_properties: Value,
    pub resource: Value,
    pub resource_properties: Value,
    pub context: Value,
    /// The clock reading `now()` returns: read once per request (or fixed by a test).
    pub now: Timestamp,
    pub type_slot: u32,
    pub action_slot: u32,
    /// The subject's verified attributes (claims of a token Warden verified itself), read
    /// before the store; `None` when the request carried no token. A caller never sets them.
    pub verified: Option<Arc<Verified>>,
    /// A capability token the caller presented (verified and read against the program); its
    /// grant is a candidate when every caveat holds. Never decoded from the request body.
    pub capability: Option<Arc<super::capability::Presented>>,
}

/// Verified attributes of a request's subject, decoded through its type's declared
/// attributes: they win over the store's, and their `roles` count as held roles.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// A record of the verified attributes.
    pub attributes: Value,
    /// The declared roles named in the verified `roles`.
    pub roles: Box<[crate::program::RoleId]>,
}

impl Verified {
    /// Decodes claims (already mapped to attribute names) through the declared attributes of
    /// `subject_type`: undeclared names are dropped, mistyped values are an error (the
    /// request is then denied), and `roles` names only declared roles.
    pub fn decode(
        program: &Program,
        subject_type: &str,
        claims: &serde_json::Map<String, JsonValue>,
    ) -> Result<Verified, RequestError> {
        let schema = &program.schema;
        let declared = schema.entity_types.get(subject_type).map(|t| &t.attributes);
        let mut fields = Vec::with_capacity(claims.len());
        let mut resolver = RequestResolver {
            store: &program.store,
        };
        for (name, json) in claims {
            if json.is_null() {
                continue;
            }
            let ty = match declared {
                Some(record) => match record.fields.get(name) {
                    Some(field) => &field.ty,
                    None if schema.declares_entities() => continue,
                    None => &Type::Dynamic,
                },
                None => &Type::Dynamic,
            };
            let mut decoder = Decoder {
                resolver: &mut resolver,
                unknown: Unknown::Ignore,
            };
            let path = format!("verified claim `{name}`");
            let value = decoder
                .decode(&from_serde(json), ty, &path)
                .map_err(|error| Invalid::Value {
                    path: error.path,
                    message: error.message,
                    help: None,
                })?;
            fields.push((Arc::from(name.as_str()), value));
        }
        let mut roles: Vec<crate::program::RoleId> = match claims.get("roles") {
            Some(JsonValue::Array(names)) => names
                .iter()
                .filter_map(|n| n.as_str())
                .filter_map(|n| program.role_ids.get(n).copied())
                .collect(),
            _ => Vec::new(),
        };
        roles.sort_unstable();
        roles.dedup();
        Ok(Verified {
            attributes: Value::record(fields),
            roles: roles.into_boxed_slice(),
        })
    }
}

/// Lends a subject token's verified attributes to a decoded request: only when the request's
/// subject (`named`: its type and id) is the one the token proved (`proved`), and only when the
/// token proved attributes. The server and replay both decide this way.
pub(crate) fn lend_attributes(
    program: &Program,
    named: (Option<&str>, Option<&str>),
    proved: (&str, &str),
    attributes: &serde_json::Map<String, serde_json::Value>,
    request: &mut Request,
) -> Result<(), RequestError> {
    let (subject_type, subject_id) = proved;
    if named == (Some(subject_type), Some(subject_id)) && !attributes.is_empty() {
        let verified = Verified::decode(program, subject_type, attributes)?;
        request.verified = Some(Arc::new(verified));
    }
    Ok(())
}

/// Why a body is not a request, or why a request cannot be allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not a request at all: the server answers 400.
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// A request Warden understands but cannot allow: decided deny, with this reason.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// What makes a body not a request (the server answers 400).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the request must be a JSON object")]
    NotAnObject,
    #[error("the request body is not valid JSON: {0}")]
    NotJson(String),
    /// A required member (`subject`, `subject.type`, …) is absent.
    #[error("missing `{0}`")]
    Missing(String),
    /// `properties` or `context` (named by its path) is not an object.
    #[error("`{0}` must be an object")]
    NotObject(String),
    /// `subject`, `resource` or `action` is not an object; `keys` are the members it needs.
    #[error("`{what}` must be an object with {keys}")]
    NotNamed { what: String, keys: &'static str },
    /// A name (`subject.type`, `action.name`, …) is not a string.
    #[error("`{0}` must be a string")]
    NotString(String),
    /// `properties` or `context` (named by its path) is not JSON Warden reads.
    #[error("`{what}`: {message}")]
    BadJson { what: String, message: String },
    #[error("`context.capability` must be a capability token (a string)")]
    CapabilityNotText,
    #[error("each item of `evaluations` must be an object")]
    ItemNotObject,
    #[error("`evaluations` must be an array")]
    EvaluationsNotArray,
}

/// Why a well-formed request cannot be allowed (it is decided deny, with this reason).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("undeclared entity type `{name}`{}", did_you_mean(.suggestion))]
    UndeclaredType {
        name: String,
        suggestion: Option<String>,
    },
    #[error("undeclared action `{name}`{}", did_you_mean(.suggestion))]
    UndeclaredAction {
        name: String,
        suggestion: Option<String>,
    },
    #[error("action `{action}` does not apply to `{resource_type}` (it applies to {})", quoted(.applies))]
    NotApplicable {
        action: String,
        resource_type: String,
        applies: Vec<String>,
    },
    #[error("`{ty}` has no entity `{id}`: it is an enumeration{}", did_you_mean(.suggestion))]
    UnknownEnumId {
        ty: String,
        id: String,
        suggestion: Option<String>,
    },
    #[error("action `{action}` is not asked for by a `{subject_type}` (it accepts {})", quoted(.accepts))]
    SubjectNotAccepted {
        action: String,
        subject_type: String,
        accepts: Vec<String>,
    },
    /// A value of `properties`, `context` or a verified claim that does not decode.
    #[error("{path}: {message}{}", .help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Value {
        path: String,
        message: String,
        help: Option<String>,
    },
    /// A recorded request that cannot be read back (replay), with why.
    #[error("{0}")]
    Unreadable(Malformed),
    /// A gateway's call that no route takes (a refused path, no route), with why.
    #[error("{0}")]
    Unrouted(crate::check::route_table::RouteError),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parts of a request, borrowed from wherever they came from.
pub struct Parts<'j> {
    pub subject: &'j JsonValue,
    pub action: &'j JsonValue,
    pub resource: &'j JsonValue,
    pub context: Option<&'j JsonValue>,
}

impl<'j> Parts<'j> {
    /// Reads `subject`, `action`, `resource` and `context` from an AuthZEN evaluation body.
    pub fn from_body(body: &'j JsonValue) -> Result<Parts<'j>, Malformed> {
        let JsonValue::Object(members) = body else {
            return Err(Malformed::NotAnObject);
        };
        let required = |key: &str| {
            members
                .get(key)
                .ok_or_else(|| Malformed::Missing(key.to_string()))
        };
        Ok(Parts {
            subject: required("subject")?,
            action: required("action")?,
            resource: required("resource")?,
            context: members.get("context"),
        })
    }
}

impl<'j> Parts<'j> {
    /// Item `entry` of an `/access/v1/evaluations` call whose body is `body`: each of the
    /// item's `subject`, `action`, `resource` and `context` replaces the call's default whole;
    /// `null` counts as absent. `Err` says what is missing (the item is answered as an error).
    pub fn batch_item(
        body: &'j serde_json::Map<String, JsonValue>,
        entry: &'j JsonValue,
    ) -> Result<Parts<'j>, Malformed> {
        let JsonValue::Object(entry) = entry else {
            return Err(Malformed::ItemNotObject);
        };
        let pick = |key: &str| {
            entry
                .get(key)
                .filter(|v| !v.is_null())
                .or_else(|| body.get(key).filter(|v| !v.is_null()))
        };
        match (pick("subject"), pick("action"), pick("resource")) {
            (Some(subject), Some(action), Some(resource)) => Ok(Parts {
                subject,
                action,
                resource,
                context: pick("context"),
            }),
            (None, _, _) => Err(Malformed::Missing("subject".to_string())),
            (_, None, _) => Err(Malformed::Missing("action".to_string())),
            (_, _, None) => Err(Malformed::Missing("resource".to_string())),
        }
    }
}

/// Decodes the parts of a request read as a JSON tree (the ordinary reader's, a batch
/// item's, a forward-auth route's, a policy test's) through the declarations.
pub(crate) fn from_parts(
    program: &Program,
    parts: &Parts<'_>,
    now: Timestamp,
) -> Result<Request, RequestError> {
    let (subject_type, subject_id, subject_props) = entity_part(parts.subject, "subject")?;
    let (resource_type, resource_id, resource_props) = entity_part(parts.resource, "resource")?;
    let (action, action_props) = action_part(parts.action)?;
    let context = match parts.context {
        None | Some(JsonValue::Null) => None,
        Some(object @ JsonValue::Object(_)) => Some(object),
        Some(_) => {
            return Err(Malformed::NotObject("context".to_string()).into());
        }
    };
    let subject_properties = subject_props.map(from_serde);
    let action_properties = action_props.map(from_serde);
    let resource_properties = resource_props.map(from_serde);
    let context = context.map(from_serde);
    from_wire(
        program,
        &Wire {
            subject_type,
            subject_id,
            subject_properties: subject_properties.as_ref(),
            action,
            action_properties: action_properties.as_ref(),
            resource_type,
            resource_id,
            resource_properties: resource_properties.as_ref(),
            context: context.as_ref(),
        },
        now,
    )
}

/// A well-formed request, its names borrowed from wherever they were read: what every reader
/// hands to [`from_wire`].
pub struct Wire<'a> {
    pub subject_type: &'a str,
    pub subject_id: &'a str,
    pub subject_properties: Option<&'a Json>,
    pub action: &'a str,
    pub action_properties: Option<&'a Json>,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub resource_properties: Option<&'a Json>,
    pub context: Option<&'a Json>,
}

/// `context` without its `capability` member, when it has one.
fn without_capability(context: &Json) -> Option<Json> {
    let JsonKind::Object(members) = &context.kind else {
        return None;
    };
    if !members.iter().any(|(key, _, _)| key == CAPABILITY_KEY) {
        return None;
    }
    let kept = members
        .iter()
        .filter(|(key, _, _)| key != CAPABILITY_KEY)
        .cloned()
        .collect();
    Some(Json {
        kind: JsonKind::Object(kept),
        span: context.span,
    })
}

/// The declarations a request names, each looked up once.
struct Declarations<'p> {
    subject: Option<&'p EntityType>,
    resource: Option<&'p EntityType>,
    action: Option<&'p ActionDecl>,
}

/// Looks up the declarations of a request's types and action: an undeclared type or action,
/// or an action that does not apply to the resource's type, is a reason to deny.
fn declarations<'p>(
    program: &'p Program,
    subject_type: &str,
    resource_type: &str,
    action: &str,
) -> Result<Declarations<'p>, RequestError> {
    let schema = &program.schema;
    let subject_decl = schema.entity_types.get(subject_type);
    let resource_decl = schema.entity_types.get(resource_type);
    for (ty, declared) in [(subject_type, subject_decl), (resource_type, resource_decl)] {
        if schema.declares_entities() && declared.is_none() {
            return Err(Invalid::UndeclaredType {
                name: ty.to_string(),
                suggestion: suggest(ty, schema.entity_types.keys().map(String::as_str))
                    .map(str::to_string),
            }
            .into());
        }
    }
    let declared_action = schema.actions.get(action);
    if schema.declares_actions() && declared_action.is_none() {
        return Err(Invalid::UndeclaredAction {
            name: action.to_string(),
            suggestion: suggest(action, schema.actions.keys().map(String::as_str))
                .map(str::to_string),
        }
        .into());
    }
    if let Some(declared) = declared_action
        && !declared.resource_types.is_empty()
        && !declared.resource_types.iter().any(|t| t == resource_type)
    {
        return Err(Invalid::NotApplicable {
            action: action.to_string(),
            resource_type: resource_type.to_string(),
            applies: declared.resource_types.to_vec(),
        }
        .into());
    }
    if let Some(declared) = declared_action
        && !declared.subject_types.is_empty()
        && !declared.subject_types.iter().any(|t| t == subject_type)
    {
        return Err(Invalid::SubjectNotAccepted {
            action: action.to_string(),
            subject_type: subject_type.to_string(),
            accepts: declared.subject_types.to_vec(),
        }
        .into());
    }
    Ok(Declarations {
        subject: subject_decl,
        resource: resource_decl,
        action: declared_action,
    })
}

/// The four decoded objects of a request.
struct Objects {
    subject: Value,
    action: Value,
    resource: Value,
    context: Value,
}

/// A request from its names (already checked against the declarations) and its decoded
/// objects.
fn assemble(
    program: &Program,
    resolver: &mut RequestResolver<'_>,
    (subject_type, subject_id): (&str, &str),
    action: &str,
    (resource_type, resource_id): (&str, &str),
    objects: Objects,
    now: Timestamp,
) -> Request {
    // A declared action's name is shared with the index; only an undeclared one is copied.
    let action_name = program
        .index
        .actions
        .get_key_value(action)
        .map_or_else(|| Arc::from(action), |(name, _)| name.clone());
    Request {
        subject: Value::Entity(resolver.entity(subject_type, subject_id)),
        subject_properties: objects.subject,
        action: action_name,
        action_properties: objects.action,
        resource: Value::Entity(resolver.entity(resource_type, resource_id)),
        resource_properties: objects.resource,
        context: objects.context,
        now,
        type_slot: program.index.type_slot(resource_type),
        action_slot: program.index.action_slot(action),
        verified: None,
        capability: None,
    }
}

/// Decodes a well-formed request through the declarations: what remains are reasons to deny.
pub(crate) fn from_wire(
    program: &Program,
    wire: &Wire<'_>,
    now: Timestamp,
) -> Result<Request, RequestError> {
    let declared = declarations(program, wire.subject_type, wire.resource_type, wire.action)?;
    for (ty, id, decl) in [
        (wire.subject_type, wire.subject_id, declared.subject),
        (wire.resource_type, wire.resource_id, declared.resource),
    ] {
        if let Some(ids) = decl.and_then(|d| d.ids.as_ref())
            && !ids.contains(id)
        {
            return Err(Invalid::UnknownEnumId {
                ty: ty.to_string(),
                id: id.to_string(),
                suggestion: suggest(id, ids.iter().map(String::as_str)).map(str::to_string),
            }
            .into());
        }
    }
    let store = &program.store;
    let mut resolver = RequestResolver { store };
    let subject_properties = properties(
        &mut resolver,
        wire.subject_properties,
        declared.subject.and_then(|d| d.properties.as_ref()),
        "subject.properties",
    )?;
    let resource_properties = properties(
        &mut resolver,
        wire.resource_properties,
        declared.resource.and_then(|d| d.properties.as_ref()),
        "resource.properties",
    )?;
    let action_properties = properties(
        &mut resolver,
        wire.action_properties,
        declared.action.and_then(|d| d.properties.as_ref()),
        "action.properties",
    )?;
    // `context.capability` carries a capability token: the caller reads it, policies never do.
    let stripped = wire.context.and_then(without_capability);
    let context = properties(
        &mut resolver,
        stripped.as_ref().or(wire.context),
        declared.action.and_then(|d| d.context.as_ref()),
        "context",
    )?;
    Ok(assemble(
        program,
        &mut resolver,
        (wire.subject_type, wire.subject_id),
        wire.action,
        (wire.resource_type, wire.resource_id),
        Objects {
            subject: subject_properties,
            action: action_properties,
            resource: resource_properties,
            context,
        },
        now,
    ))
}

/// The subject a request names, as the body wrote it: `(type, id)`.
pub type NamedSubject<'t> = (&'t str, &'t str);

/// Reads an AuthZEN evaluation body: the one way from bytes to a request, by
/// [`read_evaluation`] (the readers in their order), then decoded through the declarations.
pub fn read(program: &Program, body: &[u8], now: Timestamp) -> Result<Request, RequestError> {
    read_evaluation(Some(program), body, now, Readers::All, |read| {
        let (read, _) = read?;
        read.decode(program, now)
    })
}

/// Which readers a body may be read with: all of them, fastest first (what the server and
/// [`read`] do), or only the ordinary one ([`super::strict::parse`]'s tree), which the faster
/// ones must agree with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers {
    All,
    Ordinary,
}

/// One evaluation as a reader left it, not yet decoded through the declarations.
#[allow(
    clippy::large_enum_variant,
    reason = "passed once by value, never stored; boxing would allocate on the hot path"
)]
pub(crate) enum Read<'r> {
    /// Parts of a JSON tree: the ordinary reader's, a batch item's.
    Parts(Parts<'r>),
    /// The skeleton reader's: names borrowed, objects parsed.
    Wire(Wire<'r>),
    /// Decoded in one pass ([`Reader::OnePass`]), with the subject as the body named it. It
    /// holds no capability token: that reader leaves those bodies to the others.
    Decoded(Request, NamedSubject<'r>),
}

impl<'r> Read<'r> {
    /// The subject as the body named it: `(type, id)`, each when it is a string.
    pub fn named(&self) -> (Option<&'r str>, Option<&'r str>) {
        match self {
            Read::Parts(parts) => {
                let subject = parts.subject;
                let text = |key: &str| subject.get(key).and_then(JsonValue::as_str);
                (text("type"), text("id"))
            }
            Read::Wire(wire) => (Some(wire.subject_type), Some(wire.subject_id)),
            Read::Decoded(_, (ty, id)) => (Some(ty), Some(id)),
        }
    }

    /// The token in `context.capability`, when there is one (it must be a string).
    pub fn capability(&self) -> Result<Option<&'r str>, Malformed> {
        match self {
            Read::Parts(parts) => match parts
                .context
                .and_then(|context| context.get(CAPABILITY_KEY))
            {
                None | Some(JsonValue::Null) => Ok(None),
                Some(JsonValue::String(token)) => Ok(Some(token)),
                Some(_) => Err(Malformed::CapabilityNotText),
            },
            Read::Wire(wire) => {
                let Some(JsonKind::Object(members)) = wire.context.map(|context| &context.kind)
                else {
                    return Ok(None);
                };
                match members
                    .iter()
                    .find(|(key, _, _)| key == CAPABILITY_KEY)
                    .map(|(_, _, value)| &value.kind)
                {
                    None | Some(JsonKind::Null) => Ok(None),
                    Some(JsonKind::String(token)) => Ok(Some(token)),
                    Some(_) => Err(Malformed::CapabilityNotText),
                }
            }
            Read::Decoded(..) => Ok(None),
        }
    }

    /// Decodes what was read through the program's declarations.
    pub fn decode(self, program: &Program, now: Timestamp) -> Result<Request, RequestError> {
        match self {
            Read::Parts(parts) => from_parts(program, &parts, now),
            Read::Wire(wire) => from_wire(program, &wire, now),
            Read::Decoded(request, _) => Ok(request),
        }
    }
}

/// The `properties` and `context` given at one level of a body (a call's parts, or a batch
/// item's), parsed by the skeleton reader.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub subject: Option<Json>,
    pub action: Option<Json>,
    pub resource: Option<Json>,
    pub context: Option<Json>,
}

impl Parsed {
    fn read(parts: &super::wire::TextParts<'_>) -> Result<Parsed, RequestError> {
        Ok(Parsed {
            subject: raw_object(
                parts.subject.and_then(|s| s.properties),
                "subject.properties",
            )?,
            action: raw_object(parts.action.and_then(|a| a.properties), "action.properties")?,
            resource: raw_object(
                parts.resource.and_then(|r| r.properties),
                "resource.properties",
            )?,
            context: raw_object(parts.context, "context")?,
        })
    }
}

/// How a body was read: what the audit log looks into to record it as sent.
pub(crate) enum Seen<'r> {
    /// Read whole by the one-pass reader: only its text was looked at.
    Text(&'r str),
    /// Read by the skeleton reader: the text, its skeleton, and the objects parsed at each
    /// level (the call's parts first, then each item's).
    Skeleton {
        text: &'r str,
        skeleton: &'r super::wire::Skeleton<'r>,
        levels: &'r [Parsed],
    },
    /// Parsed as a tree: the text was not looked into.
    Tree(&'r str),
}

/// An evaluation built from the parts the skeleton reader found and their parsed objects;
/// `None` when a part is missing.
fn wire_of<'r>(
    subject: Option<(super::wire::EntityPart<'r>, Option<&'r Json>)>,
    action: Option<(super::wire::Action<'r>, Option<&'r Json>)>,
    resource: Option<(super::wire::EntityPart<'r>, Option<&'r Json>)>,
    context: Option<&'r Json>,
) -> Result<Wire<'r>, Malformed> {
    match (subject, action, resource) {
        (Some((subject, sp)), Some((action, ap)), Some((resource, rp))) => Ok(Wire {
            subject_type: subject.ty,
            subject_id: subject.id,
            subject_properties: sp,
            action: action.name,
            action_properties: ap,
            resource_type: resource.ty,
            resource_id: resource.id,
            resource_properties: rp,
            context,
        }),
        (None, _, _) => Err(Malformed::Missing("subject".to_string())),
        (_, None, _) => Err(Malformed::Missing("action".to_string())),
        (_, _, None) => Err(Malformed::Missing("resource".to_string())),
    }
}

/// Reads a single evaluation body with the readers in their order, and hands what the first
/// that takes it read (and how it saw the body) to `then`. Each of the faster readers reads
/// what it is sure of and leaves the rest — anything unusual, and every error — to the next,
/// down to the ordinary reader, which reads every body and names exactly what is wrong with
/// it. The one-pass reader decodes as it reads, so it needs the program (without one it is
/// skipped). The `readers` test and the `decode` fuzz target hold every reader to the
/// ordinary one.
#[inline]
pub(crate) fn read_evaluation<T>(
    program: Option<&Program>,
    body: &[u8],
    now: Timestamp,
    readers: Readers,
    then: impl FnOnce(Result<(Read<'_>, Seen<'_>), Malformed>) -> T,
) -> T {
    // Valid UTF-8 once for the whole body.
    let text = match readers {
        Readers::All => std::str::from_utf8(body).ok(),
        Readers::Ordinary => None,
    };
    if let Some(text) = text {
        if let Some(program) = program
            && let Some((request, named)) = one_pass(program, text, now)
        {
            return then(Ok((Read::Decoded(request, named), Seen::Text(text))));
        }
        if let Some((skeleton, parsed)) = skeleton_of(text)
            && let Some(wire) = wire_in(&skeleton, &parsed)
        {
            let seen = Seen::Skeleton {
                text,
                skeleton: &skeleton,
                levels: std::slice::from_ref(&parsed),
            };
            return then(Ok((Read::Wire(wire), seen)));
        }
    }
    by_tree(body, then)
}

/// A body's skeleton ([`super::wire`]), with its parts' objects parsed; `None` when the
/// skeleton reader leaves the body to the ordinary one (an object that is not well-formed,
/// anything it does not read simply).
fn skeleton_of(text: &str) -> Option<(super::wire::Skeleton<'_>, Parsed)> {
    let skeleton = super::wire::read(text)?;
    let parsed = Parsed::read(&skeleton.parts).ok()?;
    Some((skeleton, parsed))
}

/// The single evaluation a skeleton holds; `None` when a part is missing (the ordinary
/// reader then names it).
fn wire_in<'r>(skeleton: &'r super::wire::Skeleton<'r>, parsed: &'r Parsed) -> Option<Wire<'r>> {
    let parts = &skeleton.parts;
    wire_of(
        parts.subject.map(|s| (s, parsed.subject.as_ref())),
        parts.action.map(|a| (a, parsed.action.as_ref())),
        parts.resource.map(|r| (r, parsed.resource.as_ref())),
        parsed.context.as_ref(),
    )
    .ok()
}

/// Reads a single evaluation with the ordinary reader, and hands it (or what is wrong with
/// it) to `then`.
fn by_tree<T>(body: &[u8], then: impl FnOnce(Result<(Read<'_>, Seen<'_>), Malformed>) -> T) -> T {
    let json = match super::strict::parse(body) {
        Ok(json) => json,
        Err(error) => return then(Err(Malformed::NotJson(error.to_string()))),
    };
    match Parts::from_body(&json) {
        Ok(parts) => then(Ok((Read::Parts(parts), Seen::Tree(text_of(body))))),
        Err(malformed) => then(Err(malformed)),
    }
}

/// The text of a body the ordinary reader parsed (JSON text is UTF-8).
fn text_of(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap_or_default()
}

/// An `/access/v1/evaluations` body as the first reader that takes it read it: its
/// `options`, and its evaluations.
pub(crate) struct Evaluations<'r> {
    /// `options`, when present.
    pub options: Option<&'r JsonValue>,
    pub seen: Seen<'r>,
    pub shape: Shape<'r>,
}

/// What an evaluations body holds: one evaluation (`evaluations` absent, `null` or empty),
/// or a batch.
pub(crate) enum Shape<'r> {
    Single(Result<Read<'r>, Malformed>),
    Batch(Batch<'r>),
}

/// The items of a batch, read on demand.
pub(crate) enum Batch<'r> {
    /// The skeleton's items, each with its parsed objects (`parsed[0]` is the call's).
    Skeleton {
        top: &'r super::wire::TextParts<'r>,
        items: &'r [super::wire::TextParts<'r>],
        parsed: &'r [Parsed],
    },
    /// The tree's items.
    Tree {
        body: &'r serde_json::Map<String, JsonValue>,
        entries: &'r [JsonValue],
    },
}

impl<'r> Batch<'r> {
    pub fn len(&self) -> usize {
        match self {
            Batch::Skeleton { items, .. } => items.len(),
            Batch::Tree { entries, .. } => entries.len(),
        }
    }

    /// Item `index`: each of its `subject`, `action`, `resource` and `context` replaces the
    /// call's default whole; `null` counts as absent. `Err` says what is wrong with it (the
    /// item is answered as an error).
    pub fn item(&self, index: usize) -> Result<Read<'r>, Malformed> {
        match *self {
            Batch::Skeleton { top, items, parsed } => {
                let (Some(item), Some(defaults), Some(own)) =
                    (items.get(index), parsed.first(), parsed.get(index + 1))
                else {
                    return Err(Malformed::ItemNotObject);
                };
                let subject = match item.subject {
                    Some(subject) => Some((subject, own.subject.as_ref())),
                    None => top.subject.map(|s| (s, defaults.subject.as_ref())),
                };
                let action = match item.action {
                    Some(action) => Some((action, own.action.as_ref())),
                    None => top.action.map(|a| (a, defaults.action.as_ref())),
                };
                let resource = match item.resource {
                    Some(resource) => Some((resource, own.resource.as_ref())),
                    None => top.resource.map(|r| (r, defaults.resource.as_ref())),
                };
                let context = match item.context {
                    Some(_) => own.context.as_ref(),
                    None => defaults.context.as_ref(),
                };
                wire_of(subject, action, resource, context).map(Read::Wire)
            }
            Batch::Tree { body, entries } => {
                let entry = entries.get(index).ok_or(Malformed::ItemNotObject)?;
                Parts::batch_item(body, entry).map(Read::Parts)
            }
        }
    }
}

/// Reads an `/access/v1/evaluations` body with the readers in their order (as
/// [`read_evaluation`] does, without the one-pass reader, which reads no batch), and hands
/// what the first that takes it read to `then`.
pub(crate) fn read_evaluations<T>(
    body: &[u8],
    readers: Readers,
    then: impl FnOnce(Result<Evaluations<'_>, Malformed>) -> T,
) -> T {
    let text = match readers {
        Readers::All => std::str::from_utf8(body).ok(),
        Readers::Ordinary => None,
    };
    if let Some(text) = text
        && let Some(skeleton) = super::wire::read(text)
        && let Some(parsed) = skeleton_levels(&skeleton)
    {
        let options = match skeleton.options.map(serde_json::from_str::<JsonValue>) {
            None => Some(None),
            Some(Ok(options)) => Some(Some(options)),
            Some(Err(_)) => None,
        };
        if let Some(options) = options {
            let shape = match skeleton.evaluations.as_deref() {
                Some(items) if !items.is_empty() => Some(Shape::Batch(Batch::Skeleton {
                    top: &skeleton.parts,
                    items,
                    parsed: &parsed,
                })),
                // A single evaluation missing a part is left to the ordinary reader, which
                // names what is missing.
                _ => parsed
                    .first()
                    .and_then(|top| wire_in(&skeleton, top))
                    .map(|wire| Shape::Single(Ok(Read::Wire(wire)))),
            };
            if let Some(shape) = shape {
                return then(Ok(Evaluations {
                    options: options.as_ref(),
                    seen: Seen::Skeleton {
                        text,
                        skeleton: &skeleton,
                        levels: &parsed,
                    },
                    shape,
                }));
            }
        }
    }
    let json = match super::strict::parse(body) {
        Ok(JsonValue::Object(body)) => body,
        Ok(_) => return then(Err(Malformed::NotAnObject)),
        Err(error) => return then(Err(Malformed::NotJson(error.to_string()))),
    };
    let entries = match json.get("evaluations") {
        None | Some(JsonValue::Null) => None,
        Some(JsonValue::Array(entries)) if entries.is_empty() => None,
        Some(JsonValue::Array(entries)) => Some(entries.as_slice()),
        Some(_) => return then(Err(Malformed::EvaluationsNotArray)),
    };
    let shape = match entries {
        Some(entries) => Shape::Batch(Batch::Tree {
            body: &json,
            entries,
        }),
        None => {
            let required = |key: &str| {
                json.get(key)
                    .ok_or_else(|| Malformed::Missing(key.to_string()))
            };
            let parts = (|| {
                Ok(Parts {
                    subject: required("subject")?,
                    action: required("action")?,
                    resource: required("resource")?,
                    context: json.get("context"),
                })
            })();
            Shape::Single(parts.map(Read::Parts))
        }
    };
    then(Ok(Evaluations {
        options: json.get("options"),
        seen: Seen::Tree(text_of(body)),
        shape,
    }))
}

/// The objects the skeleton reader found at each level of a body, parsed (the call's parts
/// first, then each item's); `None` when one is not well-formed (the ordinary reader then
/// names it).
fn skeleton_levels(skeleton: &super::wire::Skeleton<'_>) -> Option<Vec<Parsed>> {
    let items = skeleton.evaluations.as_deref().unwrap_or_default();
    let mut levels = Vec::with_capacity(items.len() + 1);
    levels.push(Parsed::read(&skeleton.parts).ok()?);
    for item in items {
        levels.push(Parsed::read(item).ok()?);
    }
    Some(levels)
}

/// The readers of an evaluation body, fastest first, in the order [`read`] tries them. The
/// ordinary one reads every body; the others read what they are sure of and leave the rest to
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// One pass, no JSON tree ([`super::bytes`]): names found with one lookup each
    /// ([`RequestNames`](crate::program::requests::RequestNames)), objects decoded from their
    /// text. Leaves undeclared names, `context.capability` and every error to the others.
    OnePass,
    /// The skeleton reader ([`super::wire`]): names borrowed, objects parsed.
    Skeleton,
    /// [`super::strict::parse`]'s tree, then decoded through the declarations.
    Ordinary,
}

/// Reads `body` with `reader` alone: `None` when that reader leaves the body to the ordinary
/// one. What the tests and the `decode` fuzz target use to hold every reader to the ordinary
/// one: whatever another reader decodes, the ordinary one decodes alike.
pub fn read_with(
    program: &Program,
    body: &[u8],
    now: Timestamp,
    reader: Reader,
) -> Option<Result<Request, RequestError>> {
    let text = std::str::from_utf8(body).ok();
    match reader {
        Reader::OnePass => one_pass(program, text?, now).map(|(request, _)| Ok(request)),
        Reader::Skeleton => skeleton(program, text?, now),
        Reader::Ordinary => Some(tree(program, body, now)),
    }
}

/// [`Reader::OnePass`], with the subject as the body named it (the server lends it a subject
/// token's attributes). Inlined into each caller: [`read`], which has no use for the named
/// subject, then builds its request in place rather than copying it out of the pair.
#[inline(always)]
pub(crate) fn one_pass<'t>(
    program: &Program,
    text: &'t str,
    now: Timestamp,
) -> Option<(Request, NamedSubject<'t>)> {
    let body = super::bytes::read(text)?;
    let names = &program.request_names;
    let subject = names.types.get(body.subject.ty)?;
    let resource = names.types.get(body.resource.ty)?;
    let action = names.actions.get(body.action)?;
    if !action.applies_to(resource)
        || !action.accepts(subject)
        || subject.enumerated
        || resource.enumerated
    {
        return None;
    }
    let store = &program.store;
    let mut resolver = RequestResolver { store };
    let empty = Value::empty_record();
    let mut object = |text: Option<&str>, declared: Option<&Declared>| match text {
        Some(text) => super::bytes::decode_object(text, declared, &mut resolver),
        // Nothing sent: nothing to decode, unless the declaration requires members.
        None if declared.is_none_or(|declared| declared.required == 0) => Some(empty.clone()),
        None => None,
    };
    let subject_properties = object(body.subject.properties, subject.properties.as_ref())?;
    let resource_properties = object(body.resource.properties, resource.properties.as_ref())?;
    let action_properties = object(body.action_properties, action.properties.as_ref())?;
    let context = object(body.context, action.context.as_ref())?;
    let entity = |store_type: Option<u32>, ty: &str, id: &str| {
        Value::Entity(
            match store_type.and_then(|index| store.lookup_in(index, id)) {
                Some(known) => EntityRef::Known(known),
                None => EntityRef::Unknown(Arc::new(EntityUid {
                    ty: Arc::from(ty),
                    id: Arc::from(id),
                })),
            },
        )
    };
    let request = Request {
        subject: entity(subject.store, body.subject.ty, body.subject.id),
        subject_properties,
        action: action.name.clone(),
        action_properties,
        resource: entity(resource.store, body.resource.ty, body.resource.id),
        resource_properties,
        context,
        now,
        type_slot: resource.slot,
        action_slot: action.slot,
        verified: None,
        capability: None,
    };
    Some((request, (body.subject.ty, body.subject.id)))
}

/// A body read by the skeleton reader ([`super::wire`]); `None` when it leaves the body to
/// the ordinary reader.
fn skeleton(
    program: &Program,
    text: &str,
    now: Timestamp,
) -> Option<Result<Request, RequestError>> {
    let (skeleton, parsed) = skeleton_of(text)?;
    Some(from_wire(program, &wire_in(&skeleton, &parsed)?, now))
}

/// A body read by the ordinary reader ([`super::strict::parse`]): a tree, then decoded.
fn tree(program: &Program, body: &[u8], now: Timestamp) -> Result<Request, RequestError> {
    by_tree(body, |read| read?.0.decode(program, now))
}

/// Reads a request's `properties` or `context` (`what`) from its JSON text: `None` when
/// absent or `null`, an error when it is not an object.
pub(crate) fn raw_object(raw: Option<&str>, what: &str) -> Result<Option<Json>, RequestError> {
    let Some(raw) = raw else { return Ok(None) };
    let json = crate::data::json::parse(raw).map_err(|error| Malformed::BadJson {
        what: what.to_string(),
        message: error.message,
    })?;
    match json.kind {
        JsonKind::Null => Ok(None),
        JsonKind::Object(_) => Ok(Some(json)),
        _ => Err(Malformed::NotObject(what.to_string()).into()),
    }
}

fn entity_part<'j>(
    json: &'j JsonValue,
    what: &str,
) -> Result<(&'j str, &'j str, Option<&'j JsonValue>), RequestError> {
    let JsonValue::Object(members) = json else {
        return Err(Malformed::NotNamed {
            what: what.to_string(),
            keys: "`type` and `id`",
        }
        .into());
    };
    let string = |key: &str| match members.get(key) {
        Some(JsonValue::String(s)) => Ok(s.as_str()),
        Some(_) => Err(Malformed::NotString(format!("{what}.{key}"))),
        None => Err(Malformed::Missing(format!("{what}.{key}"))),
    };
    let properties = match members.get("properties") {
        None | Some(JsonValue::Null) => None,
        Some(object @ JsonValue::Object(_)) => Some(object),
        Some(_) => {
            return Err(Malformed::NotObject(format!("{what}.properties")).into());
        }
    };
    Ok((string("type")?, string("id")?, properties))
}

fn action_part(json: &JsonValue) -> Result<(&str, Option<&JsonValue>), RequestError> {
    let JsonValue::Object(members) = json else {
        return Err(Malformed::NotNamed {
            what: "action".to_string(),
            keys: "`name`",
        }
        .into());
    };
    let name = match members.get("name") {
        Some(JsonValue::String(s)) => s.as_str(),
        Some(_) => {
            return Err(Malformed::NotString("action.name".to_string()).into());
        }
        None => return Err(Malformed::Missing("action.name".to_string()).into()),
    };
    let properties = match members.get("properties") {
        None | Some(JsonValue::Null) => None,
        Some(object @ JsonValue::Object(_)) => Some(object),
        Some(_) => {
            return Err(Malformed::NotObject("action.properties".to_string()).into());
        }
    };
    Ok((name, properties))
}

fn properties(
    resolver: &mut RequestResolver<'_>,
    json: Option<&Json>,
    declared: Option<&RecordType>,
    path: &str,
) -> Result<Value, RequestError> {
    let empty = Json {
        kind: JsonKind::Object(Vec::new()),
        span: Span::default(),
    };
    let json = match json {
        Some(json) => json,
        // Nothing sent: nothing to decode, unless the declaration requires fields.
        None if declared.is_none_or(|record| record.fields.values().all(|f| f.optional)) => {
            return Ok(Value::empty_record());
        }
        None => &empty,
    };
    let mut decoder = Decoder {
        resolver,
        unknown: Unknown::Ignore,
    };
    let result = match declared {
        Some(record) => decoder.record(json, record, path),
        None => decoder.decode(json, &Type::Dynamic, path),
    };
    result.map_err(|error| {
        Invalid::Value {
            path: error.path,
            message: error.message,
            help: error.help,
        }
        .into()
    })
}

/// Resolves a request's entities against the store: an entity the program does not know is
/// `Unknown` (it has no attributes and no ancestors).
pub struct RequestResolver<'s> {
    pub store: &'s Store,
}

impl Resolver for RequestResolver<'_> {
    fn entity(&mut self, ty: &str, id: &str) -> EntityRef {
        match self.store.lookup(ty, id) {
            Some(known) => EntityRef::Known(known),
            None => EntityRef::Unknown(Arc::new(EntityUid {
                ty: Arc::from(ty),
                id: Arc::from(id),
            })),
        }
    }
    fn string(&mut self, text: &str) -> Arc<str> {
        Arc::from(text)
    }
}

/// Converts serde's JSON into the span-carrying form the decoder reads.
pub fn from_serde(json: &JsonValue) -> Json {
    let kind = match json {
        JsonValue::Null => JsonKind::Null,
        JsonValue::Bool(b) => JsonKind::Bool(*b),
        JsonValue::Number(n) => match n.as_i64() {
            Some(i) => JsonKind::Int(i),
            None => JsonKind::OtherNumber(n.to_string()),
        },
        JsonValue::String(s) => JsonKind::String(s.clone()),
        JsonValue::Array(items) => JsonKind::Array(items.iter().map(from_serde).collect()),
        JsonValue::Object(members) => JsonKind::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), Span::default(), from_serde(v)))
                .collect(),
        ),
    };
    Json {
        kind,
        span: Span::default(),
    }
}

#[cfg(test)]
mod tests;
