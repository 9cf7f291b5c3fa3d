//! (d) Generated per-album grants: 10 / 100 / 1,000 / 10,000 rules on one resource type and
//! action (view on Photo), over 10,000 entities (2,000 users in 50 groups and 7 departments,
//! 2,000 albums, 5,950 photos), as in the in-repo bench benches/decide.rs. Rule i names album
//! `a{i}` (albums past the store are named only by their rule, as when grants outlive their
//! albums), so a request matches at most one per-album rule; even rules grant a group, odd rules
//! a department. One more rule lets owners do anything with their photos.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use casbin::{CoreApi, Enforcer};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cedar::{self, CedarDecider};
use crate::common::{Contender, Decider, Model, Req, Rng, ScratchDir, timed, ts, warden_contender};
use crate::rego::RegoDecider;

pub const RULE_COUNTS: [usize; 4] = [10, 100, 1_000, 10_000];
pub const LOAD_KEYS: [&str; 7] = [
    "none",
    "warden",
    "cedar",
    "cedar-sliced",
    "rego-rules",
    "rego-data",
    "casbin",
];

const USERS: usize = 2_000;
const GROUPS: usize = 50;
const DEPARTMENTS: usize = 7;
const ALBUMS: usize = 2_000;
const PHOTOS: usize = 5_950;
const REQUESTS: usize = 4_000;

pub fn model_name(rules: usize) -> String {
    format!("per-album grants, {rules} rules")
}

pub fn load_key_label(key: &str) -> &'static str {
    match key {
        "none" => "the bare process (loads nothing)",
        "warden" => "Warden",
        "cedar" => "Cedar",
        "cedar-sliced" => "Cedar (pre-sliced)",
        "rego-rules" => "Rego (grants as rules)",
        "rego-data" => "Rego (grants as data)",
        "casbin" => "Casbin",
        _ => "?",
    }
}

/// Rule i's album and who it grants: `Err(group)` for even rules, `Ok(department)` for odd.
fn grantee(i: usize) -> Result<usize, usize> {
    if i % 2 == 0 {
        Err(i % GROUPS)
    } else {
        Ok(i % DEPARTMENTS)
    }
}

fn photo_owner(p: usize) -> usize {
    (p * 7) % USERS
}

/// The model in every engine's own words.
pub struct Texts {
    rules: usize,
    warden_policy: String,
    warden_data: String,
    cedar_schema: &'static str,
    cedar_policies: String,
    cedar_entities: String,
    rego_rules: String,
    rego_rules_data: String,
    rego_data_policy: &'static str,
    rego_data: String,
    casbin_model: &'static str,
    casbin_policy: String,
}

const CEDAR_SCHEMA: &str = r#"
entity Group;
entity User in [Group] = { department: String };
entity Album = { owner: User };
entity Photo in [Album] = { owner: User };
action view, edit appliesTo { principal: User, resource: Photo };
"#;

const REGO_HEAD: &str = r#"package albums

import rego.v1

default allow := false

photo := data.photos[input.resource.id]

user := data.users[input.subject.id]

allow if photo.owner == input.subject.id
"#;

const REGO_DATA_POLICY: &str = r#"package albums

import rego.v1

default allow := false

photo := data.photos[input.resource.id]

user := data.users[input.subject.id]

allow if photo.owner == input.subject.id

allow if {
	input.action.name == "view"
	some album in photo.albums
	some grant in data.grants[album]
	grant.group in user.groups
}

allow if {
	input.action.name == "view"
	some album in photo.albums
	some grant in data.grants[album]
	grant.department == user.department
}
"#;

const CASBIN_MODEL: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.obj.owner == r.sub || (r.act == p.act && g2(r.obj.id, p.obj) && g(r.sub, p.sub))
"#;

pub fn texts(rules: usize) -> Texts {
    let mut warden_policy = String::from(
        "entity Group\nentity User in [Group] { department: String }\nentity Album { owner: User }\n\
         entity Photo in [Album] { owner: User }\naction view, edit on Photo\n\
         @id(\"owner\") allow * on Photo if resource.owner == subject\n",
    );
    let mut cedar_policies = String::from(
        "@id(\"owner\")\npermit (principal, action, resource) when { resource.owner == principal };\n",
    );
    let mut rego_rules = String::from(REGO_HEAD);
    let mut grants: HashMap<String, Vec<Value>> = HashMap::new();
    let mut casbin_policy = String::new();
    for i in 0..rules {
        match grantee(i) {
            Err(g) => {
                let _ = writeln!(
                    warden_policy,
                    "@id(\"g{i}\") allow view on Photo if resource in Album::\"a{i}\" and subject in Group::\"g{g}\""
                );
                let _ = writeln!(
                    cedar_policies,
                    "@id(\"g{i}\")\npermit (principal in Group::\"g{g}\", action == Action::\"view\", resource in Album::\"a{i}\");"
                );
                let _ = write!(
                    rego_rules,
                    "\nallow if {{\n\tinput.action.name == \"view\"\n\t\"a{i}\" in photo.albums\n\t\"g{g}\" in user.groups\n}}\n"
                );
                grants
                    .entry(format!("a{i}"))
                    .or_default()
                    .push(json!({"group": format!("g{g}")}));
                let _ = writeln!(casbin_policy, "p, g{g}, a{i}, view");
            }
            Ok(d) => {
                let _ = writeln!(
                    warden_policy,
                    "@id(\"g{i}\") allow view on Photo if resource in Album::\"a{i}\" and subject.department == \"d{d}\""
                );
                let _ = writeln!(
                    cedar_policies,
                    "@id(\"g{i}\")\npermit (principal, action == Action::\"view\", resource in Album::\"a{i}\")\nwhen {{ principal.department == \"d{d}\" }};"
                );
                let _ = write!(
                    rego_rules,
                    "\nallow if {{\n\tinput.action.name == \"view\"\n\t\"a{i}\" in photo.albums\n\tuser.department == \"d{d}\"\n}}\n"
                );
                grants
                    .entry(format!("a{i}"))
                    .or_default()
                    .push(json!({"department": format!("d{d}")}));
                let _ = writeln!(casbin_policy, "p, d{d}, a{i}, view");
            }
        }
    }

    let mut warden_entities = Vec::new();
    let mut cedar_entities = Vec::new();
    let mut rego_users = serde_json::Map::new();
    let mut rego_photos = serde_json::Map::new();
    for g in 0..GROUPS {
        warden_entities.push(json!({"type": "Group", "id": format!("g{g}")}));
        cedar_entities.push(
            json!({"uid": {"type": "Group", "id": format!("g{g}")}, "attrs": {}, "parents": []}),
        );
    }
    for u in 0..USERS {
        let (id, group, dept) = (
            format!("u{u}"),
            format!("g{}", u % GROUPS),
            format!("d{}", u % DEPARTMENTS),
        );
        warden_entities.push(json!({"type": "User", "id": id, "attributes": {"department": dept}, "parents": [group]}));
        cedar_entities.push(
            json!({"uid": {"type": "User", "id": id}, "attrs": {"department": dept},
            "parents": [{"type": "Group", "id": group}]}),
        );
        rego_users.insert(id.clone(), json!({"department": dept, "groups": [group]}));
        let _ = writeln!(casbin_policy, "g, {id}, {group}\ng, {id}, {dept}");
    }
    for a in 0..ALBUMS {
        let (id, owner) = (format!("a{a}"), format!("u{}", a % USERS));
        warden_entities.push(json!({"type": "Album", "id": id, "attributes": {"owner": owner}}));
        cedar_entities.push(json!({"uid": {"type": "Album", "id": id}, "attrs": {"owner": {"type": "User", "id": owner}}, "parents": []}));
    }
    for p in 0..PHOTOS {
        let (id, owner, album) = (
            format!("p{p}"),
            format!("u{}", photo_owner(p)),
            format!("a{}", p % ALBUMS),
        );
        warden_entities.push(
            json!({"type": "Photo", "id": id, "attributes": {"owner": owner}, "parents": [album]}),
        );
        cedar_entities.push(json!({"uid": {"type": "Photo", "id": id}, "attrs": {"owner": {"type": "User", "id": owner}},
            "parents": [{"type": "Album", "id": album}]}));
        rego_photos.insert(id.clone(), json!({"owner": owner, "albums": [album]}));
        let _ = writeln!(casbin_policy, "g2, {id}, {album}");
    }
    let rego_store = json!({"users": rego_users, "photos": rego_photos});
    let mut rego_data = rego_store.clone();
    rego_data["grants"] = json!(grants);
    Texts {
        rules,
        warden_policy,
        warden_data: json!({"entities": warden_entities}).to_string(),
        cedar_schema: CEDAR_SCHEMA,
        cedar_policies,
        cedar_entities: Value::Array(cedar_entities).to_string(),
        rego_rules,
        rego_rules_data: rego_store.to_string(),
        rego_data_policy: REGO_DATA_POLICY,
        rego_data: rego_data.to_string(),
        casbin_model: CASBIN_MODEL,
        casbin_policy,
    }
}

/// Seeded requests: a photo in an album with a rule (60%) or any photo; its owner (10%), a
/// user the album's rule grants (35%), or anyone; view (80%) or edit.
pub fn requests(rules: usize) -> Vec<Req> {
    let mut rng = Rng::new(0xA1B0 + rules as u64);
    let now = ts("2026-03-03T09:00:00Z");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let ruled_albums = rules.min(ALBUMS);
    while out.len() < REQUESTS {
        let album = if rng.chance(60) {
            rng.below(ruled_albums)
        } else {
            rng.below(ALBUMS)
        };
        let in_album = (0..)
            .map(|k| album + k * ALBUMS)
            .take_while(|&p| p < PHOTOS)
            .count();
        let photo = album + rng.below(in_album) * ALBUMS;
        let roll = rng.below(100);
        let user = if roll < 10 {
            photo_owner(photo)
        } else if roll < 45 && album < rules {
            match grantee(album) {
                Err(g) => g + GROUPS * rng.below(USERS / GROUPS),
                Ok(d) => d + DEPARTMENTS * rng.below(USERS / DEPARTMENTS),
            }
        } else {
            rng.below(USERS)
        };
        let action = if rng.chance(20) { "edit" } else { "view" };
        if !seen.insert((user, photo, action)) {
            continue;
        }
        let body = json!({
            "subject": {"type": "User", "id": format!("u{user}")},
            "action": {"name": action},
            "resource": {"type": "Photo", "id": format!("p{photo}")},
        });
        out.push(Req::new(&body, now));
    }
    out
}

fn cedar_plain(t: &Texts) -> CedarDecider {
    let schema = cedar::schema(t.cedar_schema);
    let policies = cedar::policies(&t.cedar_policies);
    cedar::validate(&schema, &policies);
    let entities = cedar::entities_from_str(&t.cedar_entities, &schema);
    CedarDecider::new(schema, policies, entities, cedar::no_context, None)
}

/// Pre-sliced: one policy set per album (its grants plus the owner rule), and the
/// application's index of which album a photo is in.
fn cedar_sliced(t: &Texts) -> CedarDecider {
    let resource_albums = (0..PHOTOS)
        .map(|p| (format!("p{p}"), vec![format!("a{}", p % ALBUMS)]))
        .collect();
    cedar::sliced(
        t.cedar_schema,
        &t.cedar_policies,
        &t.cedar_entities,
        resource_albums,
    )
}

#[derive(Serialize, Hash)]
struct Obj<'a> {
    id: &'a str,
    owner: &'a str,
}

/// Casbin: the policy holds the grants, users' groups and departments (as roles) and the
/// photos' albums; the photo's owner comes from the application's store, for the owner rule.
pub struct CasbinAlbums {
    enforcer: Enforcer,
    owners: HashMap<String, String>,
}

impl CasbinAlbums {
    fn load(t: &Texts) -> CasbinAlbums {
        let enforcer = crate::casbin_enforcer(t.casbin_model, &t.casbin_policy);
        let owners = (0..PHOTOS)
            .map(|p| (format!("p{p}"), format!("u{}", photo_owner(p))))
            .collect();
        CasbinAlbums { enforcer, owners }
    }

    fn try_decide(&self, req: &Req) -> Option<bool> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        let sub = body["subject"]["id"].as_str()?;
        let id = body["resource"]["id"].as_str()?;
        let owner = self.owners.get(id)?;
        let act = body["action"]["name"].as_str()?;
        self.enforcer.enforce((sub, Obj { id, owner }, act)).ok()
    }
}

impl Decider for CasbinAlbums {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}

fn rego_rules(t: &Texts) -> RegoDecider {
    RegoDecider::new(
        &[("albums.rego", &t.rego_rules)],
        &t.rego_rules_data,
        "data.albums.allow",
    )
}

fn rego_data(t: &Texts) -> RegoDecider {
    RegoDecider::new(
        &[("albums.rego", t.rego_data_policy)],
        &t.rego_data,
        "data.albums.allow",
    )
}

fn warden_dir(t: &Texts) -> ScratchDir {
    let dir = ScratchDir::new(&format!("albums-{}", t.rules));
    dir.write("rules.warden", &t.warden_policy);
    dir.write("data.json", &t.warden_data);
    dir
}

pub fn model(rules: usize) -> Model {
    let t = texts(rules);
    let dir = warden_dir(&t);
    let warden = warden_contender(&dir.0);
    let contender = |engine, setup, decider: Box<dyn Decider>, load| Contender {
        engine,
        setup,
        decider,
        load,
        excludes: None,
    };
    let (c1, l1) = timed(|| cedar_plain(&t));
    let (c2, l2) = timed(|| cedar_sliced(&t));
    let (r1, l3) = timed(|| rego_rules(&t));
    let (r2, l4) = timed(|| rego_data(&t));
    let (cb, l5) = timed(|| CasbinAlbums::load(&t));
    Model {
        name: model_name(rules),
        requests: requests(rules),
        contenders: vec![
            warden,
            contender("Cedar", "", Box::new(c1), l1),
            contender("Cedar", "pre-sliced", Box::new(c2), l2),
            contender("Rego", "grants as rules", Box::new(r1), l3),
            contender("Rego", "grants as data", Box::new(r2), l4),
            contender("Casbin", "", Box::new(cb), l5),
        ],
    }
}

/// The files of the 10,000-rule model, written once by the parent process for the peak-RSS
/// children (so that no child pays for generating them).
const FILES: [&str; 6] = [
    "warden/rules.warden",
    "warden/data.json",
    "cedar.cedar",
    "cedar.entities.json",
    "rego-rules.rego",
    "rego-store.json",
];

impl Texts {
    pub fn write(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir.join("warden")).expect("create model directory");
        let texts = [
            &self.warden_policy,
            &self.warden_data,
            &self.cedar_policies,
            &self.cedar_entities,
            &self.rego_rules,
            &self.rego_rules_data,
        ];
        for (name, text) in FILES.iter().zip(texts) {
            std::fs::write(dir.join(name), text).expect("write model file");
        }
        std::fs::write(dir.join("rego-data.json"), &self.rego_data).expect("write model file");
        std::fs::write(dir.join("casbin.csv"), &self.casbin_policy).expect("write model file");
    }

    /// Reads back only the files engine `key` needs.
    fn read(dir: &std::path::Path, rules: usize, key: &str) -> Texts {
        let read = |name: &str, wanted: &[&str]| {
            if wanted.contains(&key) {
                std::fs::read_to_string(dir.join(name)).expect("read model file")
            } else {
                String::new()
            }
        };
        Texts {
            rules,
            warden_policy: String::new(),
            warden_data: String::new(),
            cedar_schema: CEDAR_SCHEMA,
            cedar_policies: read("cedar.cedar", &["cedar", "cedar-sliced"]),
            cedar_entities: read("cedar.entities.json", &["cedar", "cedar-sliced"]),
            rego_rules: read("rego-rules.rego", &["rego-rules"]),
            rego_rules_data: read("rego-store.json", &["rego-rules"]),
            rego_data_policy: REGO_DATA_POLICY,
            rego_data: read("rego-data.json", &["rego-data"]),
            casbin_model: CASBIN_MODEL,
            casbin_policy: read("casbin.csv", &["casbin"]),
        }
    }
}

/// For the peak-RSS measurement: load one engine from the files in `dir` (written by
/// `Texts::write`; Warden loads the directory itself) and hold it. `none` loads nothing: the
/// bare process.
pub fn load_only(key: &str, dir: &std::path::Path) -> Box<dyn std::any::Any> {
    let t = Texts::read(dir, 10_000, key);
    match key {
        "none" => Box::new(t),
        "warden" => Box::new(crate::common::WardenDecider::load(&dir.join("warden")).engine),
        "cedar" => Box::new(cedar_plain(&t)),
        "cedar-sliced" => Box::new(cedar_sliced(&t)),
        "rego-rules" => Box::new(rego_rules(&t)),
        "rego-data" => Box::new(rego_data(&t)),
        "casbin" => Box::new(CasbinAlbums::load(&t)),
        other => panic!("unknown engine key `{other}`"),
    }
}
