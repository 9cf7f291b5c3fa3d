//! Cedar (`cedar-policy`): the application's side of a Cedar deployment. The policies, schema
//! and entities are loaded once; per request the application parses the AuthZEN JSON, builds
//! the principal, action and resource uids, builds the context (typed through the schema), and
//! asks the authorizer. Optionally it first picks a pre-sliced policy set for the request.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, ResourceConstraint, Schema, SlotId, ValidationMode, Validator,
};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::common::{Decider, Req};

/// Builds the Cedar context from the AuthZEN body and the clock.
pub type ContextFn = fn(&Value, Timestamp) -> Value;

/// Pre-slicing: the application keeps one policy set per album (the policies that mention it,
/// plus the ones every request needs) and an index of which albums a photo is in.
pub struct Slices {
    pub by_album: HashMap<String, PolicySet>,
    pub resource_albums: HashMap<String, Vec<String>>,
    /// The policies that mention no album.
    pub base: PolicySet,
}

/// Splits a policy set the way an application pre-slices it: the policies whose resource
/// constraint is `resource in E` go to E's set (with every other policy); the rest form the
/// base set.
pub fn slice_by_resource_in(all: &PolicySet) -> (PolicySet, HashMap<String, PolicySet>) {
    let mut base = PolicySet::new();
    let mut by_entity: HashMap<String, Vec<cedar_policy::Policy>> = HashMap::new();
    for policy in all.policies() {
        match policy.resource_constraint() {
            ResourceConstraint::In(uid) => by_entity
                .entry(uid.id().unescaped().to_string())
                .or_default()
                .push(policy.clone()),
            _ => base.add(policy.clone()).expect("unique ids"),
        }
    }
    let sliced = by_entity
        .into_iter()
        .map(|(entity, policies)| {
            let mut set = base.clone();
            for p in policies {
                set.add(p).expect("unique ids");
            }
            (entity, set)
        })
        .collect();
    (base, sliced)
}

pub struct CedarDecider {
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
    types: HashMap<String, EntityTypeName>,
    actions: HashMap<String, EntityUid>,
    context: ContextFn,
    slices: Option<Slices>,
}

pub fn schema(text: &str) -> Schema {
    let (schema, warnings) = Schema::from_cedarschema_str(text).expect("the Cedar schema parses");
    for w in warnings {
        eprintln!("cedar schema warning: {w}");
    }
    schema
}

/// Parses policies and templates, naming each by its `@id` annotation (Cedar itself numbers
/// them `policy0`, `policy1`, … whatever the annotations say).
pub fn policies(text: &str) -> PolicySet {
    let parsed =
        PolicySet::from_str(text).unwrap_or_else(|e| panic!("the Cedar policies parse: {e:?}"));
    let mut named = PolicySet::new();
    for t in parsed.templates() {
        let id = t
            .annotation("id")
            .map_or_else(|| t.id().clone(), PolicyId::new);
        named
            .add_template(t.new_id(id))
            .expect("unique template ids");
    }
    for p in parsed.policies() {
        let id = p
            .annotation("id")
            .map_or_else(|| p.id().clone(), PolicyId::new);
        named.add(p.new_id(id)).expect("unique policy ids");
    }
    named
}

/// Links templates: `[{template, principal, resource}]`.
pub fn link(policies: &mut PolicySet, links: &Value) {
    for (i, link) in links
        .as_array()
        .expect("links are an array")
        .iter()
        .enumerate()
    {
        let template = link["template"].as_str().expect("template id");
        let uid = |v: &Value| EntityUid::from_json(v.clone()).expect("an entity uid");
        let vals = HashMap::from([
            (SlotId::principal(), uid(&link["principal"])),
            (SlotId::resource(), uid(&link["resource"])),
        ]);
        policies
            .link(
                PolicyId::new(template),
                PolicyId::new(format!("{template}#{i}")),
                vals,
            )
            .expect("the template links");
    }
}

/// Checks the policies against the schema (strict validation), so a translation mistake is
/// found at load rather than as a disagreement.
pub fn validate(schema: &Schema, policies: &PolicySet) {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    if !result.validation_passed() {
        for e in result.validation_errors() {
            eprintln!("cedar validation: {e}");
        }
        panic!("the Cedar policies do not validate against their schema");
    }
}

pub fn entities_from_value(json: Value, schema: &Schema) -> Entities {
    Entities::from_json_value(json, Some(schema))
        .unwrap_or_else(|e| panic!("the Cedar entities load: {e:?}"))
}

pub fn entities_from_str(json: &str, schema: &Schema) -> Entities {
    Entities::from_json_str(json, Some(schema))
        .unwrap_or_else(|e| panic!("the Cedar entities load: {e:?}"))
}

/// The album models send no context.
pub fn no_context(_body: &Value, _now: Timestamp) -> Value {
    json!({})
}

/// Cedar pre-sliced by album, as an application that knows each photo's album calls it: one
/// policy set per album (the policies that mention it, plus the ones every request needs), and
/// `resource_albums`, the application's index of which album each photo is in.
pub fn sliced(
    schema: &str,
    policies: &str,
    entities: &str,
    resource_albums: HashMap<String, Vec<String>>,
) -> CedarDecider {
    let schema = self::schema(schema);
    let all = self::policies(policies);
    validate(&schema, &all);
    let (base, by_album) = slice_by_resource_in(&all);
    let slices = Slices {
        by_album,
        resource_albums,
        base,
    };
    let entities = entities_from_str(entities, &schema);
    CedarDecider::new(schema, all, entities, no_context, Some(slices))
}

impl CedarDecider {
    pub fn new(
        schema: Schema,
        policies: PolicySet,
        entities: Entities,
        context: ContextFn,
        slices: Option<Slices>,
    ) -> CedarDecider {
        CedarDecider {
            schema,
            policies,
            entities,
            authorizer: Authorizer::new(),
            types: HashMap::new(),
            actions: HashMap::new(),
            context,
            slices,
        }
    }

    fn uid(&mut self, part: &Value) -> Option<EntityUid> {
        let ty = part.get("type")?.as_str()?;
        let id = part.get("id")?.as_str()?;
        if !self.types.contains_key(ty) {
            self.types
                .insert(ty.to_string(), EntityTypeName::from_str(ty).ok()?);
        }
        let name = self.types.get(ty)?.clone();
        Some(EntityUid::from_type_name_and_id(name, EntityId::new(id)))
    }

    fn action(&mut self, name: &str) -> Option<EntityUid> {
        if !self.actions.contains_key(name) {
            let uid = EntityUid::from_json(json!({"type": "Action", "id": name})).ok()?;
            self.actions.insert(name.to_string(), uid);
        }
        self.actions.get(name).cloned()
    }

    fn try_decide(&mut self, req: &Req) -> Option<bool> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        let principal = self.uid(body.get("subject")?)?;
        let action = self.action(body.get("action")?.get("name")?.as_str()?)?;
        let resource = self.uid(body.get("resource")?)?;
        let context_json = (self.context)(&body, req.now);
        let context = Context::from_json_value(context_json, Some((&self.schema, &action))).ok()?;
        let request =
            Request::new(principal, action, resource, context, Some(&self.schema)).ok()?;
        let policies = match &self.slices {
            None => &self.policies,
            Some(slices) => {
                let id = body["resource"]["id"].as_str()?;
                slices
                    .resource_albums
                    .get(id)
                    .and_then(|albums| albums.first())
                    .and_then(|album| slices.by_album.get(album))
                    .unwrap_or(&slices.base)
            }
        };
        let response = self
            .authorizer
            .is_authorized(&request, policies, &self.entities);
        Some(response.decision() == Decision::Allow)
    }
}

impl Decider for CedarDecider {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}

/// The context most models need: the caller's context as sent (or an empty record).
pub fn context_as_sent(body: &Value, _now: Timestamp) -> Value {
    match body.get("context") {
        Some(Value::Object(map)) => Value::Object(map.clone()),
        _ => json!({}),
    }
}
