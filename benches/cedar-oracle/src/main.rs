//! Cedar's engine as a differential oracle for `warden import cedar`.
//!
//! 1. The example applications under tests/data/cedar/ (TinyTodo, GitHub, document cloud,
//!    PhotoFlash, hotel chains, GitHub's permission levels, the expressions, numbers,
//!    namespaces and pure groups apps):
//!    each is imported into Warden, and every request of its `requests.json` is decided by
//!    `cedar-policy` and by Warden, and checked against the answer written there.
//! 2. Random applications in the subset Warden can say: a schema with an action hierarchy of
//!    its own (actions in actions and in pure groups), policies (scopes of every kind, `when`/
//!    `unless`, `has`, `like`, `in`, `is`, `action in`/`==`/`!=` (with pure groups too),
//!    attribute chains, sets, arithmetic and multiplication that overflow, decimals and their
//!    comparisons, entities missing from the store), entities and requests, from a seed. Every
//!    request is decided by both; every disagreement is printed. The allow, deny and error
//!    shares are asserted, so that a generator that only ever denies fails.
//!
//!   cargo run --manifest-path benches/cedar-oracle/Cargo.toml -- [--rounds N] [--seed S]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, Policy, PolicyId, PolicySet, Request,
    Schema, SlotId, ValidationMode, Validator,
};
use serde_json::{Value, json};
use warden::engine::Engine;
use warden::eval::{self, request};
use warden::import::cedar::{Input, import};
use warden::source::SourceFile;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// splitmix64: seeded, so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A Cedar application in text, as a user has it.
struct App {
    schema: String,
    policies: String,
    entities: String,
    links: Option<String>,
}

struct Cedar {
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
}

fn cedar_schema(text: &str) -> Schema {
    if text.trim_start().starts_with('{') {
        Schema::from_json_str(text).expect("the Cedar JSON schema parses")
    } else {
        Schema::from_cedarschema_str(text)
            .expect("the Cedar schema parses")
            .0
    }
}

/// Names policies and templates by `@id` (as the importer does), links the templates.
fn cedar_policies(text: &str, links: Option<&str>) -> PolicySet {
    let parsed = PolicySet::from_str(text).unwrap_or_else(|e| panic!("Cedar policies: {e:?}"));
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
    if let Some(links) = links {
        let links: Value = serde_json::from_str(links).expect("links JSON");
        for (i, link) in links.as_array().expect("links array").iter().enumerate() {
            let template = link["template_id"].as_str().expect("template_id");
            let id = link["link_id"]
                .as_str()
                .map_or_else(|| format!("{template}#{i}"), str::to_string);
            let mut vals = HashMap::new();
            for (slot, key) in [
                (SlotId::principal(), "?principal"),
                (SlotId::resource(), "?resource"),
            ] {
                if let Some(v) = link["args"].get(key) {
                    let uid = match v {
                        Value::String(s) => EntityUid::from_str(s).expect("an entity uid"),
                        other => EntityUid::from_json(other.clone()).expect("an entity uid"),
                    };
                    vals.insert(slot, uid);
                }
            }
            named
                .link(PolicyId::new(template), PolicyId::new(id), vals)
                .expect("the template links");
        }
    }
    named
}

fn load_cedar(app: &App) -> Cedar {
    let schema = cedar_schema(&app.schema);
    let policies = cedar_policies(&app.policies, app.links.as_deref());
    let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
    if !result.validation_passed() {
        for e in result.validation_errors() {
            eprintln!("cedar validation: {e}");
        }
        panic!("the Cedar policies do not validate");
    }
    let entities = Entities::from_json_str(&app.entities, Some(&schema))
        .unwrap_or_else(|e| panic!("Cedar entities: {e:?}"));
    Cedar {
        schema,
        policies,
        entities,
    }
}

/// Imports into a scratch directory and loads it; `Err` carries the diagnostics.
fn load_warden(app: &App, scratch: &Path) -> Result<Engine, String> {
    let input = Input {
        schema: Some(SourceFile::new("app.cedarschema", app.schema.clone())),
        policies: SourceFile::new("app.cedar", app.policies.clone()),
        entities: Some(SourceFile::new("entities.json", app.entities.clone())),
        links: app
            .links
            .as_ref()
            .map(|l| SourceFile::new("links.json", l.clone())),
    };
    let imported = import(&input).map_err(|ds| {
        ds.iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).expect("scratch dir");
    for (name, text) in &imported.files {
        std::fs::write(scratch.join(name), text).expect("write");
    }
    Engine::load(scratch).map_err(|f| {
        f.diagnostics
            .iter()
            .map(|d| d.render(false))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// A request: principal and resource `[type, id]`, action, context (Warden's JSON form: IP
/// addresses as strings).
struct Req {
    principal: (String, String),
    action: String,
    resource: (String, String),
    context: Value,
}

/// An action as a request names it: `read`, or in a namespaced application Cedar's
/// `App::Action::"read"`: Cedar's action type and id.
fn action_parts(action: &str) -> (String, &str) {
    match action.split_once("::Action::") {
        Some((namespace, quoted)) => (format!("{namespace}::Action"), quoted.trim_matches('"')),
        None => ("Action".to_string(), action),
    }
}

/// The action as Warden's request names it: `App::read` for Cedar's `App::Action::"read"`.
fn warden_action(action: &str) -> String {
    match action.split_once("::Action::") {
        Some((namespace, quoted)) => format!("{namespace}::{}", quoted.trim_matches('"')),
        None => action.to_string(),
    }
}

/// Cedar's decision, whether any policy errored, and whether a `forbid` overflowed (the one
/// documented difference the importer cannot guard: Cedar skips it, Warden denies).
fn cedar_decide(c: &Cedar, r: &Req, ip_fields: &[&str]) -> (bool, bool, bool) {
    let uid =
        |(t, i): &(String, String)| EntityUid::from_json(json!({"type": t, "id": i})).expect("uid");
    let (action_type, action_id) = action_parts(&r.action);
    let action = EntityUid::from_json(json!({"type": action_type, "id": action_id})).expect("uid");
    let mut ctx = r.context.clone();
    for f in ip_fields {
        if let Some(v) = ctx.get(*f).cloned() {
            ctx[*f] = json!({"__extn": {"fn": "ip", "arg": v}});
        }
    }
    let context =
        Context::from_json_value(ctx, Some((&c.schema, &action))).expect("the context is valid");
    let request = Request::new(
        uid(&r.principal),
        action,
        uid(&r.resource),
        context,
        Some(&c.schema),
    )
    .expect("the request is valid");
    let response = Authorizer::new().is_authorized(&request, &c.policies, &c.entities);
    let forbid_overflowed = response.diagnostics().errors().any(|e| {
        let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
        e.to_string().contains("overflow")
            && c.policies
                .policy(e.policy_id())
                .is_some_and(|p| p.effect() == cedar_policy::Effect::Forbid)
    });
    (
        response.decision() == Decision::Allow,
        response.diagnostics().errors().next().is_some(),
        forbid_overflowed,
    )
}

fn warden_decide(engine: &Engine, r: &Req) -> bool {
    let body = json!({
        "subject": {"type": r.principal.0, "id": r.principal.1},
        "action": {"name": warden_action(&r.action)},
        "resource": {"type": r.resource.0, "id": r.resource.1},
        "context": r.context,
    });
    let now: jiff::Timestamp = "2026-03-03T09:00:00Z".parse().expect("time");
    match request::read(&engine.program, body.to_string().as_bytes(), now) {
        Ok(request) => eval::decide(&engine.program, &request).allowed,
        Err(_) => false,
    }
}

#[derive(Default)]
struct Tally {
    compared: usize,
    allows: usize,
    errors: usize,
    disagreements: usize,
    /// Disagreements the importer documents (and warns about): a `forbid` that overflowed.
    documented: usize,
}

fn examples(tally: &mut Tally, scratch: &Path) {
    let root = repo().join("tests/data/cedar");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/data/cedar")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mut schema = None;
        let mut policies = None;
        for entry in std::fs::read_dir(&dir).expect("app dir") {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if name.ends_with(".cedarschema") || name == "schema.json" {
                schema = Some(path);
            } else if name.ends_with(".cedar") {
                policies = Some(path);
            }
        }
        let read = |p: &Path| std::fs::read_to_string(p).expect("read");
        let app = App {
            schema: read(&schema.expect("a schema")),
            policies: read(&policies.expect("policies")),
            entities: read(&dir.join("entities.json")),
            links: dir
                .join("links.json")
                .exists()
                .then(|| read(&dir.join("links.json"))),
        };
        let cedar = load_cedar(&app);
        let engine = load_warden(&app, scratch)
            .unwrap_or_else(|e| panic!("{} does not import:\n{e}", dir.display()));
        let requests: Vec<Value> =
            serde_json::from_str(&read(&dir.join("requests.json"))).expect("requests");
        let mut wrong = 0;
        for q in &requests {
            let pair = |v: &Value| {
                (
                    v[0].as_str().unwrap_or("").to_string(),
                    v[1].as_str().unwrap_or("").to_string(),
                )
            };
            let r = Req {
                principal: pair(&q["principal"]),
                action: q["action"].as_str().unwrap_or("").to_string(),
                resource: pair(&q["resource"]),
                context: q.get("context").cloned().unwrap_or_else(|| json!({})),
            };
            let expected = q["decision"] == "allow";
            let (cedar_allow, errored, _) = cedar_decide(&cedar, &r, &[]);
            let warden_allow = warden_decide(&engine, &r);
            tally.compared += 1;
            tally.allows += usize::from(cedar_allow);
            tally.errors += usize::from(errored);
            if cedar_allow != expected || warden_allow != cedar_allow {
                wrong += 1;
                tally.disagreements += 1;
                println!(
                    "DISAGREE {}: {q} cedar={cedar_allow} warden={warden_allow}",
                    dir.file_name().and_then(|n| n.to_str()).unwrap_or("")
                );
            }
        }
        println!(
            "example {:<16} {:>3} requests, {wrong} disagreements",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            requests.len()
        );
    }
}

// ---- The random generator -----------------------------------------------------------------

const SCHEMA: &str = r#"
entity Group in [Group];
entity User in [Group] = {
  level: Long, dept: String, tags: Set<String>, active: Bool, manager?: User,
};
entity Folder in [Folder] = { owner: User, public: Bool };
entity Doc in [Folder] = {
  owner: User, folder: Folder, level: Long, name: String, readers?: Group, price: decimal,
};
type Ctx = { mfa: Bool, n: Long, ip?: ipaddr, rate: decimal };
"#;

/// The actions a request names, and the resource types each applies to.
const ACTIONS: [(&str, &str); 4] = [
    ("read", "[Doc, Folder]"),
    ("write", "[Doc, Folder]"),
    ("share", "Doc"),
    ("delete", "Doc"),
];
/// Actions no request names: Cedar's pure groups.
const GROUPS_OF_ACTIONS: [&str; 2] = ["all", "edit"];

/// A random action hierarchy, as the schema's action declarations: the requestable actions in
/// a random order, each `in` some of the ones before it and some pure groups (`edit` itself
/// maybe `in` `all`).
fn gen_actions(rng: &mut Rng) -> String {
    let mut order: Vec<usize> = (0..ACTIONS.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let mut text = String::from("action all;\n");
    text.push_str(if rng.chance(50) { "action edit in [all];\n" } else { "action edit;\n" });
    for (place, &a) in order.iter().enumerate() {
        let (name, resources) = ACTIONS[a];
        let mut mine: Vec<String> = Vec::new();
        for &earlier in &order[..place] {
            if rng.chance(35) {
                mine.push(ACTIONS[earlier].0.to_string());
            }
        }
        for group in GROUPS_OF_ACTIONS {
            if rng.chance(40) {
                mine.push(group.to_string());
            }
        }
        let listed: Vec<String> = mine.iter().map(|p| format!("Action::\"{p}\"")).collect();
        let within = if listed.is_empty() {
            String::new()
        } else {
            format!(" in [{}]", listed.join(", "))
        };
        text.push_str(&format!(
            "action {name}{within} appliesTo {{ principal: User, resource: {resources}, context: Ctx }};\n"
        ));
    }
    text
}

/// Any action or group name of the hierarchy.
fn any_action(rng: &mut Rng) -> &'static str {
    match rng.below(6) {
        4 => "all",
        5 => "edit",
        i => ACTIONS[i].0,
    }
}

/// A test of `action` in a condition: `in` a name or a list, `==`, `!=` (a pure group too, which
/// no request's action equals).
fn gen_action_cond(rng: &mut Rng) -> String {
    let a = any_action(rng);
    let r = any_action(rng);
    match rng.below(4) {
        0 => format!("action in Action::\"{a}\""),
        1 => format!(
            "action in [Action::\"{a}\", Action::\"{}\"]",
            any_action(rng)
        ),
        2 => format!("action == Action::\"{r}\""),
        _ => format!("action != Action::\"{r}\""),
    }
}

const USERS: usize = 10;
const GROUPS: usize = 5;
const FOLDERS: usize = 5;
const DOCS: usize = 10;
/// Ids past the store's: entities a request or an attribute names but no data defines.
const MISSING: usize = 2;

/// What the resource can be in a policy: Doc-only attributes need `Doc`.
#[derive(Clone, Copy, PartialEq)]
enum Res {
    Doc,
    Folder,
    Either,
}

fn gen_scope(rng: &mut Rng) -> (String, Res) {
    let principal = match rng.below(5) {
        0 => format!("principal == User::\"u{}\"", rng.below(USERS + MISSING)),
        1 => format!("principal in Group::\"g{}\"", rng.below(GROUPS)),
        2 => "principal is User".to_string(),
        3 => format!("principal is User in Group::\"g{}\"", rng.below(GROUPS)),
        _ => "principal".to_string(),
    };
    // A scope naming only `share` or `delete` keeps to `Doc`; one naming a group may cover
    // either (Cedar's validator drops what cannot apply).
    let (action, doc_only) = match rng.below(6) {
        0 => {
            let a = ACTIONS[rng.below(ACTIONS.len())].0;
            (
                format!("action == Action::\"{a}\""),
                a == "share" || a == "delete",
            )
        }
        1 | 2 => {
            let (a, b) = (any_action(rng), any_action(rng));
            (format!("action in [Action::\"{a}\", Action::\"{b}\"]"), false)
        }
        3 | 4 => {
            let a = any_action(rng);
            (format!("action in Action::\"{a}\""), false)
        }
        _ => ("action".to_string(), false),
    };
    let (resource, mut res) = match rng.below(6) {
        0 => ("resource is Doc".to_string(), Res::Doc),
        1 if !doc_only => ("resource is Folder".to_string(), Res::Folder),
        2 => (
            format!("resource in Folder::\"f{}\"", rng.below(FOLDERS)),
            Res::Either,
        ),
        3 => (
            format!("resource == Doc::\"d{}\"", rng.below(DOCS + MISSING)),
            Res::Doc,
        ),
        4 => (
            format!("resource is Doc in Folder::\"f{}\"", rng.below(FOLDERS)),
            Res::Doc,
        ),
        _ => ("resource".to_string(), Res::Either),
    };
    if doc_only {
        res = Res::Doc;
    }
    (format!("{principal}, {action}, {resource}"), res)
}

/// Decimals as Cedar writes them: equal values written two ways, the extremes of the range.
const DECIMALS: [&str; 7] = [
    "0.0",
    "1.5",
    "1.5000",
    "-2.25",
    "0.0001",
    "922337203685477.5807",
    "-922337203685477.5808",
];
const DECIMAL_METHODS: [&str; 4] = [
    "lessThan",
    "lessThanOrEqual",
    "greaterThan",
    "greaterThanOrEqual",
];

fn decimal_json(rng: &mut Rng) -> Value {
    json!({"__extn": {"fn": "decimal", "arg": *rng.pick(&DECIMALS)}})
}

/// Multiplication (which overflows with the request's largest `n`) and decimal comparisons.
fn gen_number_cond(rng: &mut Rng, doc: bool) -> String {
    let n = rng.below(6);
    let d = *rng.pick(&DECIMALS);
    let method = *rng.pick(&DECIMAL_METHODS);
    match rng.below(if doc { 8 } else { 5 }) {
        0 => format!("principal.level * {n} >= {}", rng.below(12)),
        1 => format!("context.n * principal.level > {n}"),
        2 => format!("context.rate.{method}(decimal(\"{d}\"))"),
        3 => format!("decimal(\"{d}\").{method}(context.rate)"),
        4 => format!("context.rate == decimal(\"{d}\")"),
        5 => format!("resource.price.{method}(context.rate)"),
        6 => format!("resource.level * -{n} * principal.level < {n}"),
        _ => format!("resource.price == decimal(\"{d}\")"),
    }
}

fn gen_cond(rng: &mut Rng, res: Res, depth: usize) -> String {
    if depth > 0 && rng.chance(45) {
        let a = gen_cond(rng, res, depth - 1);
        let b = gen_cond(rng, res, depth - 1);
        return match rng.below(3) {
            0 => format!("({a} && {b})"),
            1 => format!("({a} || {b})"),
            _ => format!("!({a})"),
        };
    }
    let doc = res == Res::Doc;
    if rng.chance(20) {
        return gen_number_cond(rng, doc);
    }
    if rng.chance(12) {
        return gen_action_cond(rng);
    }
    let n = rng.below(6);
    let g = rng.below(GROUPS);
    match rng.below(if doc { 22 } else { 17 }) {
        0 => format!("principal.level >= {n}"),
        1 => "resource.owner == principal".to_string(),
        2 => format!("principal in Group::\"g{g}\""),
        3 => format!(
            "principal.dept == \"{}\"",
            rng.pick(&["eng", "ops", "sales"])
        ),
        4 => format!(
            "principal.dept like \"{}\"",
            rng.pick(&["e*", "*s", "o*s", "*"])
        ),
        5 => format!(
            "principal.tags.contains(\"{}\")",
            rng.pick(&["a", "b", "c"])
        ),
        6 => "context.mfa".to_string(),
        7 => format!("context.n + principal.level > {n}"),
        8 => "principal.active".to_string(),
        9 => "principal has manager && principal.manager == resource.owner".to_string(),
        10 => "principal has manager".to_string(),
        11 => format!("resource.owner.level > {n}"),
        12 => "context has ip && context.ip.isInRange(ip(\"10.0.0.0/8\"))".to_string(),
        13 => format!(
            "principal in [Group::\"g{g}\", Group::\"g{}\"]",
            rng.below(GROUPS)
        ),
        14 => format!("resource in Folder::\"f{}\"", rng.below(FOLDERS)),
        15 => format!("resource.owner in Group::\"g{g}\""),
        16 => format!("context.n - {n} < principal.level"),
        17 => "resource has readers && principal in resource.readers".to_string(),
        18 => "resource.folder.public".to_string(),
        19 => format!("resource.level <= principal.level + {n}"),
        20 => format!(
            "resource.name like \"{}\"",
            rng.pick(&["*.md", "notes*", "*"])
        ),
        _ => "resource.folder.owner == principal".to_string(),
    }
}

fn gen_policy(rng: &mut Rng, i: usize) -> String {
    let effect = if rng.chance(30) { "forbid" } else { "permit" };
    let (scope, res) = gen_scope(rng);
    let mut text = format!("@id(\"p{i}\")\n{effect} ({scope})");
    for _ in 0..rng.below(3) {
        let kind = if rng.chance(75) { "when" } else { "unless" };
        text.push_str(&format!(" {kind} {{ {} }}", gen_cond(rng, res, 2)));
    }
    text.push_str(";\n");
    text
}

fn gen_entities(rng: &mut Rng) -> String {
    let uid = |t: &str, i: String| json!({"type": t, "id": i});
    let mut out = Vec::new();
    for g in 0..GROUPS {
        let parents: Vec<Value> = (0..g)
            .filter(|_| rng.chance(30))
            .map(|p| uid("Group", format!("g{p}")))
            .collect();
        out.push(json!({"uid": uid("Group", format!("g{g}")), "attrs": {}, "parents": parents}));
    }
    for u in 0..USERS {
        let parents: Vec<Value> = (0..GROUPS)
            .filter(|_| rng.chance(30))
            .map(|g| uid("Group", format!("g{g}")))
            .collect();
        let tags: Vec<&str> = ["a", "b", "c"]
            .into_iter()
            .filter(|_| rng.chance(40))
            .collect();
        let mut attrs = json!({
            "level": rng.below(6),
            "dept": *rng.pick(&["eng", "ops", "sales"]),
            "tags": tags,
            "active": rng.chance(70),
        });
        if rng.chance(40) {
            attrs["manager"] = uid("User", format!("u{}", rng.below(USERS + MISSING)));
        }
        out.push(json!({"uid": uid("User", format!("u{u}")), "attrs": attrs, "parents": parents}));
    }
    for f in 0..FOLDERS {
        let parents: Vec<Value> = if f > 0 && rng.chance(60) {
            vec![uid("Folder", format!("f{}", rng.below(f)))]
        } else {
            vec![]
        };
        out.push(
            json!({"uid": uid("Folder", format!("f{f}")), "parents": parents, "attrs": {
                "owner": uid("User", format!("u{}", rng.below(USERS + MISSING))),
                "public": rng.chance(40),
            }}),
        );
    }
    for d in 0..DOCS {
        let folder = format!("f{}", rng.below(FOLDERS));
        let mut attrs = json!({
            "owner": uid("User", format!("u{}", rng.below(USERS + MISSING))),
            "folder": uid("Folder", folder.clone()),
            "level": rng.below(6),
            "name": *rng.pick(&["notes.md", "plan.txt", "notes-2026.md"]),
            "price": decimal_json(rng),
        });
        if rng.chance(50) {
            attrs["readers"] = uid("Group", format!("g{}", rng.below(GROUPS)));
        }
        out.push(json!({"uid": uid("Doc", format!("d{d}")), "attrs": attrs,
            "parents": [uid("Folder", folder)]}));
    }
    Value::Array(out).to_string()
}

fn gen_request(rng: &mut Rng) -> Req {
    let action = rng.pick(&["read", "write", "share", "delete"]).to_string();
    let resource = if (action == "read" || action == "write") && rng.chance(35) {
        ("Folder".to_string(), format!("f{}", rng.below(FOLDERS + 1)))
    } else {
        ("Doc".to_string(), format!("d{}", rng.below(DOCS + MISSING)))
    };
    let n: i64 = match rng.below(5) {
        0 => i64::MAX - 2,
        1 => -3,
        _ => rng.below(6) as i64,
    };
    // Cedar's `__extn` form, which Warden reads where the context declares a `Decimal`.
    let mut context = json!({"mfa": rng.chance(50), "n": n, "rate": decimal_json(rng)});
    if rng.chance(50) {
        context["ip"] = json!(*rng.pick(&["10.1.2.3", "192.168.0.1"]));
    }
    Req {
        principal: (
            "User".to_string(),
            format!("u{}", rng.below(USERS + MISSING)),
        ),
        action,
        resource,
        context,
    }
}

fn random(tally: &mut Tally, rounds: usize, seed: u64, scratch: &Path) -> (usize, usize) {
    let mut rng = Rng(seed);
    let (mut kept, mut dropped) = (0, 0);
    for round in 0..rounds {
        // A hierarchy of actions of its own in each round.
        let actions = gen_actions(&mut rng);
        let schema_text = format!("{SCHEMA}{actions}");
        let validator = Validator::new(cedar_schema(&schema_text));
        // Only policies Cedar's strict validator accepts: the importer's promise is for those.
        let mut policies = String::new();
        for i in 0..(2 + rng.below(6)) {
            let text = gen_policy(&mut rng, i);
            let ok = Policy::parse(Some(PolicyId::new(format!("p{i}"))), &text)
                .ok()
                .and_then(|p| {
                    let mut set = PolicySet::new();
                    set.add(p).ok()?;
                    Some(
                        validator
                            .validate(&set, ValidationMode::Strict)
                            .validation_passed(),
                    )
                })
                .unwrap_or(false);
            if ok {
                policies.push_str(&text);
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        let app = App {
            schema: schema_text,
            policies,
            entities: gen_entities(&mut rng),
            links: None,
        };
        let cedar = load_cedar(&app);
        let engine = match load_warden(&app, scratch) {
            Ok(engine) => engine,
            Err(e) => {
                println!(
                    "DISAGREE round {round}: the import is refused\n{}\n{e}",
                    app.policies
                );
                tally.disagreements += 1;
                continue;
            }
        };
        for _ in 0..50 {
            let r = gen_request(&mut rng);
            let (cedar_allow, errored, forbid_overflowed) = cedar_decide(&cedar, &r, &["ip"]);
            let warden_allow = warden_decide(&engine, &r);
            tally.compared += 1;
            tally.allows += usize::from(cedar_allow);
            tally.errors += usize::from(errored);
            if cedar_allow && !warden_allow && forbid_overflowed {
                tally.documented += 1;
            } else if cedar_allow != warden_allow {
                tally.disagreements += 1;
                println!(
                    "DISAGREE round {round}: {:?} {} {:?} {} cedar={cedar_allow} warden={warden_allow}\n{}",
                    r.principal, r.action, r.resource, r.context, app.policies
                );
            }
        }
    }
    (kept, dropped)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = flag("--rounds", 200) as usize;
    let seed = flag("--seed", 0xCEDA);
    let scratch = std::env::temp_dir().join(format!("warden-cedar-oracle-{}", std::process::id()));
    let start = Instant::now();

    let mut ex = Tally::default();
    examples(&mut ex, &scratch);
    let mut rand = Tally::default();
    let (kept, dropped) = random(&mut rand, rounds, seed, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let secs = start.elapsed().as_secs_f64();

    let share = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    println!(
        "examples: {} requests compared, {} disagreements",
        ex.compared, ex.disagreements
    );
    println!(
        "random (seed {seed:#x}, {rounds} rounds, {kept} policies kept, {dropped} refused by \
         Cedar's validator): {} requests compared, {} disagreements, {} documented (a forbid \
         that overflowed); Cedar allowed {:.1}%, denied {:.1}%, a policy errored in {:.1}%",
        rand.compared,
        rand.disagreements,
        rand.documented,
        share(rand.allows, rand.compared),
        share(rand.compared - rand.allows, rand.compared),
        share(rand.errors, rand.compared),
    );
    println!("{secs:.1} s");
    // A generator that only denies, or never errors, proves little.
    let shares_ok = share(rand.allows, rand.compared) >= 10.0
        && share(rand.compared - rand.allows, rand.compared) >= 10.0
        && share(rand.errors, rand.compared) >= 2.0;
    if !shares_ok {
        println!("FAIL: the generator's allow/deny/error shares are too lopsided");
    }
    if ex.disagreements + rand.disagreements > 0 || !shares_ok {
        std::process::exit(1);
    }
}
