//! (e) The photo-sharing grants, in three styles of writing the same grants: five
//! nested roles (viewer < editor < sharer < deleter < admin), five nested actions (view < edit <
//! share < delete < admin; the role of level L may do the actions of levels 0..=L), N grants,
//! and one deny (a subject with a negative clearance is refused everything).
//!
//! - **top-level**: the role-scoped grants as top-level rules, each testing the subject's
//!   levels (`subject.levels contains any ["editor", …]`: the grant's level or higher); users
//!   hold their level and the ones below it in a `levels` attribute, and no role is declared.
//!   The peers read the same texts as for role-scoped.
//! - **role-scoped**: grant k says "role `LEVELS[k % 5]` or higher, in department `d{k % 10}`,
//!   with clearance at least `k % 4`, may do that role's actions on the photos of album
//!   `a{k / 10}`". Warden writes each grant inside its `role` block; users hold one stored role.
//! - **bindings**: grant k binds user `u{k % USERS}` to role `LEVELS[k % 5]` on album
//!   `a{k / 10}`. Warden keeps them as role bindings in a data file; the role blocks say which
//!   action each level adds.
//!
//! Ten grants per album at every N (N / 10 albums, two photos each), 500 users. A plain Rust
//! oracle decides every request too, and Warden must agree with it before the engines are
//! compared with Warden.

use std::collections::HashMap;
use std::fmt::Write as _;

use casbin::{CoreApi, Enforcer};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cedar::{self, CedarDecider};
use crate::common::{Contender, Decider, Model, Req, Rng, ScratchDir, timed, ts, warden_contender};
use crate::rego::RegoDecider;

pub const SIZES: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];
/// The size of the peak-RSS table: every engine loads it in seconds (plain Cedar takes about
/// half a minute for 100,000 grants; Warden's memory at 100,000 is in benches/load_shapes.sh).
pub const RSS_SIZE: usize = 10_000;
pub const STYLES: [Style; 3] = [Style::TopLevel, Style::RoleScoped, Style::Bindings];
/// The engines of the peak-RSS table, each loading one style at one size in its own process.
pub const LOAD_KEYS: [&str; 6] = ["none", "warden", "cedar", "cedar-sliced", "rego", "casbin"];

const LEVELS: [&str; 5] = ["viewer", "editor", "sharer", "deleter", "admin"];
const ACTIONS: [&str; 5] = ["view", "edit", "share", "delete", "admin"];
const USERS: usize = 500;
const PHOTOS_PER_ALBUM: usize = 2;
const REQUESTS: usize = 2_000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    RoleScoped,
    Bindings,
    /// Last, so that the others keep their request seeds.
    TopLevel,
}

impl Style {
    /// The role-scoped grants, whether in role blocks or top-level rules: every engine but
    /// Warden reads the same texts for both.
    fn scoped(self) -> bool {
        matches!(self, Style::RoleScoped | Style::TopLevel)
    }

    pub fn key(self) -> &'static str {
        match self {
            Style::RoleScoped => "role-scoped",
            Style::Bindings => "bindings",
            Style::TopLevel => "top-level",
        }
    }

    pub fn parse(key: &str) -> Option<Style> {
        STYLES.into_iter().find(|s| s.key() == key)
    }
}

pub fn model_name(style: Style, n: usize) -> String {
    match style {
        Style::RoleScoped => format!("grants in role blocks, {n} rules"),
        Style::Bindings => format!("grants as role bindings, {n} bindings"),
        Style::TopLevel => format!("grants as top-level rules, {n} rules"),
    }
}

pub fn load_key_label(key: &str) -> &'static str {
    match key {
        "none" => "the bare process (loads nothing)",
        "warden" => "Warden",
        "cedar" => "Cedar",
        "cedar-sliced" => "Cedar (pre-sliced)",
        "rego" => "Rego (grants as data)",
        "casbin" => "Casbin",
        _ => "?",
    }
}

fn albums(n: usize) -> usize {
    (n / 10).max(1)
}

struct User {
    level: usize,
    department: usize,
    clearance: i64,
}

fn user(u: usize) -> User {
    User {
        level: u % 5,
        department: (u / 5) % 10,
        // One user in fifty is suspended (negative clearance): the deny's share of requests.
        clearance: if u % 50 == 49 {
            -1
        } else {
            ((u / 50) % 5) as i64
        },
    }
}

/// Grant k of the role-scoped style: (level, album, department, minimum clearance).
fn scoped_grant(k: usize) -> (usize, usize, usize, i64) {
    (k % 5, k / 10, k % 10, (k % 4) as i64)
}

/// Grant k of the bindings style: (user, level, album).
fn binding(k: usize) -> (usize, usize, usize) {
    (k % USERS, k % 5, k / 10)
}

fn photo_album(p: usize) -> usize {
    p / PHOTOS_PER_ALBUM
}

/// The model's meaning, written plainly: what every engine must decide.
struct Oracle {
    style: Style,
    /// Per album, its grants' indices.
    by_album: HashMap<usize, Vec<usize>>,
}

impl Oracle {
    fn new(style: Style, n: usize) -> Oracle {
        let mut by_album: HashMap<usize, Vec<usize>> = HashMap::new();
        for k in 0..n {
            by_album.entry(k / 10).or_default().push(k);
        }
        Oracle { style, by_album }
    }

    fn decide(&self, u: usize, action: usize, photo: usize) -> bool {
        let who = user(u);
        if who.clearance < 0 {
            return false;
        }
        let grants = self
            .by_album
            .get(&photo_album(photo))
            .map_or(&[][..], Vec::as_slice);
        grants.iter().any(|&k| match self.style {
            Style::RoleScoped | Style::TopLevel => {
                let (level, _, department, clearance) = scoped_grant(k);
                level <= who.level
                    && action <= level
                    && department == who.department
                    && who.clearance >= clearance
            }
            Style::Bindings => {
                let (holder, level, _) = binding(k);
                holder == u && action <= level
            }
        })
    }
}

/// The model in every engine's own words.
pub struct Texts {
    warden_policy: String,
    warden_data: String,
    warden_roles: String,
    cedar_schema: &'static str,
    cedar_policies: String,
    /// Bindings: template links (`[{template, principal, resource}]`), for plain Cedar.
    cedar_links: String,
    /// Bindings: one static policy per binding, for the pre-sliced sets (Cedar adds only
    /// static policies to a set of its own).
    cedar_sliced_policies: String,
    cedar_entities: String,
    rego_policy: String,
    rego_data: String,
    casbin_model: &'static str,
    casbin_policy: String,
}

const CEDAR_SCHEMA: &str = r#"
entity Role in [Role];
entity User in [Role] = { department: String, clearance: Long };
entity Album;
entity Photo in [Album];
action view, edit, share, delete, admin appliesTo { principal: User, resource: Photo };
"#;

const REGO_HEAD: &str = r#"package grants

import rego.v1

default allow := false

user := data.users[input.subject.id]

photo := data.photos[input.resource.id]

level := data.action_levels[input.action.name]

"#;

const REGO_SCOPED: &str = r#"allow if {
	user.clearance >= 0
	some g in data.grants[photo.album]
	g.level <= user.level
	level <= g.level
	g.department == user.department
	user.clearance >= g.clearance
}
"#;

const REGO_BINDINGS: &str = r#"allow if {
	user.clearance >= 0
	some b in data.bindings[photo.album]
	b.user == input.subject.id
	level <= b.level
}
"#;

// g: a user's role (and the roles it inherits), department and clearances held; g2: a photo's
// album; g3: an action and the grant levels that cover it.
const CASBIN_SCOPED: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = role, dept, clr, album, act

[role_definition]
g = _, _
g2 = _, _
g3 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub.clearance >= 0 && g2(r.obj, p.album) && g3(r.act, p.act) && g(r.sub.id, p.role) && g(r.sub.id, p.dept) && g(r.sub.id, p.clr)
"#;

const CASBIN_BINDINGS: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, album, act

[role_definition]
g = _, _
g2 = _, _
g3 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub.clearance >= 0 && r.sub.id == p.sub && g2(r.obj, p.album) && g3(r.act, p.act)
"#;

fn rego_policy(style: Style) -> String {
    let rule = if style.scoped() {
        REGO_SCOPED
    } else {
        REGO_BINDINGS
    };
    format!("{REGO_HEAD}{rule}")
}

fn casbin_model(style: Style) -> &'static str {
    if style.scoped() {
        CASBIN_SCOPED
    } else {
        CASBIN_BINDINGS
    }
}

fn actions_upto(level: usize) -> String {
    ACTIONS[..=level].join(", ")
}

fn cedar_actions_upto(level: usize) -> String {
    let list: Vec<String> = ACTIONS[..=level]
        .iter()
        .map(|a| format!("Action::\"{a}\""))
        .collect();
    format!("[{}]", list.join(", "))
}

pub fn texts(style: Style, n: usize) -> Texts {
    let held = if style == Style::TopLevel {
        "levels"
    } else {
        "roles"
    };
    let mut warden_policy = format!(
        "entity User {{ department: String, clearance: Int, {held}: Set<String> }}\n\
         entity Album\nentity Photo in Album\naction view, edit, share, delete, admin on Photo\n\
         @id(\"suspended\") deny * if subject.clearance < 0\n",
    );
    let mut cedar_policies = String::from(
        "@id(\"suspended\")\nforbid (principal, action, resource) when { principal.clearance < 0 };\n",
    );
    let mut cedar_sliced_policies = cedar_policies.clone();
    let mut cedar_links = Vec::new();
    let mut casbin_policy = String::new();
    let mut rego_grants: HashMap<String, Vec<Value>> = HashMap::new();
    let mut roles = Vec::new();
    match style {
        Style::RoleScoped | Style::TopLevel => {
            let mut blocks = vec![String::new(); 5];
            for k in 0..n {
                let (level, album, department, clearance) = scoped_grant(k);
                if style == Style::TopLevel {
                    let levels: Vec<String> =
                        LEVELS[level..].iter().map(|l| format!("\"{l}\"")).collect();
                    let _ = writeln!(
                        warden_policy,
                        "allow {} if resource in Album::\"a{album}\" and subject.levels contains any [{}] and subject.department == \"d{department}\" and subject.clearance >= {clearance}",
                        actions_upto(level),
                        levels.join(", ")
                    );
                } else {
                    let _ = writeln!(
                        blocks[level],
                        "  allow {} if resource in Album::\"a{album}\" and subject.department == \"d{department}\" and subject.clearance >= {clearance}",
                        actions_upto(level)
                    );
                }
                let _ = writeln!(
                    cedar_policies,
                    "@id(\"g{k}\")\npermit (principal in Role::\"{}\", action in {}, resource in Album::\"a{album}\")\nwhen {{ principal.department == \"d{department}\" && principal.clearance >= {clearance} }};",
                    LEVELS[level],
                    cedar_actions_upto(level)
                );
                rego_grants.entry(format!("a{album}")).or_default().push(
                    json!({"level": level, "department": format!("d{department}"), "clearance": clearance}),
                );
                let _ = writeln!(
                    casbin_policy,
                    "p, {}, d{department}, clr{clearance}, a{album}, upto{level}",
                    LEVELS[level]
                );
            }
            for (level, block) in blocks.iter().enumerate() {
                if style == Style::TopLevel {
                    break;
                }
                let parent = if level > 0 {
                    format!(" : {}", LEVELS[level - 1])
                } else {
                    String::new()
                };
                let body = if block.is_empty() {
                    "  allow view if false\n"
                } else {
                    block
                };
                let _ = writeln!(warden_policy, "role {}{parent} {{\n{body}}}", LEVELS[level]);
            }
            cedar_sliced_policies = cedar_policies.clone();
        }
        Style::Bindings => {
            for (level, name) in LEVELS.iter().enumerate() {
                let parent = if level > 0 {
                    format!(" : {}", LEVELS[level - 1])
                } else {
                    String::new()
                };
                let _ = writeln!(
                    warden_policy,
                    "role {name}{parent} {{\n  allow {}\n}}",
                    ACTIONS[level]
                );
                let _ = writeln!(
                    cedar_policies,
                    "@id(\"{name}\")\npermit (principal == ?principal, action in {}, resource in ?resource);",
                    cedar_actions_upto(level)
                );
            }
            for k in 0..n {
                let (holder, level, album) = binding(k);
                roles.push(json!({"role": LEVELS[level], "subject": {"type": "User", "id": format!("u{holder}")},
                    "on": {"type": "Album", "id": format!("a{album}")}}));
                cedar_links.push(json!({"template": LEVELS[level],
                    "principal": {"type": "User", "id": format!("u{holder}")},
                    "resource": {"type": "Album", "id": format!("a{album}")}}));
                let _ = writeln!(
                    cedar_sliced_policies,
                    "@id(\"b{k}\")\npermit (principal == User::\"u{holder}\", action in {}, resource in Album::\"a{album}\");",
                    cedar_actions_upto(level)
                );
                rego_grants
                    .entry(format!("a{album}"))
                    .or_default()
                    .push(json!({"user": format!("u{holder}"), "level": level}));
                let _ = writeln!(casbin_policy, "p, u{holder}, a{album}, upto{level}");
            }
        }
    }

    let mut warden_entities = Vec::new();
    let mut cedar_entities = Vec::new();
    let mut rego_users = serde_json::Map::new();
    let mut rego_photos = serde_json::Map::new();
    for (level, name) in LEVELS.iter().enumerate() {
        let parents: Vec<Value> = (level > 0)
            .then(|| json!({"type": "Role", "id": LEVELS[level - 1]}))
            .into_iter()
            .collect();
        cedar_entities
            .push(json!({"uid": {"type": "Role", "id": name}, "attrs": {}, "parents": parents}));
        if level > 0 {
            let _ = writeln!(casbin_policy, "g, {name}, {}", LEVELS[level - 1]);
        }
        let _ = writeln!(casbin_policy, "g3, {}, upto{level}", ACTIONS[level]);
        if level > 0 {
            let _ = writeln!(casbin_policy, "g3, upto{}, upto{level}", level - 1);
        }
    }
    for u in 0..USERS {
        let who = user(u);
        let (id, department) = (format!("u{u}"), format!("d{}", who.department));
        // In the bindings style users hold no stored role: only their bindings.
        // In the top-level style they hold their level and those below it, and Cedar's users
        // are in their one role as in the role-scoped style.
        let stored: Vec<&str> = match style {
            Style::RoleScoped | Style::TopLevel => vec![LEVELS[who.level]],
            Style::Bindings => vec![],
        };
        let attributes = if style == Style::TopLevel {
            json!({"department": department, "clearance": who.clearance,
                "levels": LEVELS[..=who.level]})
        } else {
            json!({"department": department, "clearance": who.clearance, "roles": stored})
        };
        warden_entities.push(json!({"type": "User", "id": id, "attributes": attributes}));
        let parents: Vec<Value> = stored
            .iter()
            .map(|r| json!({"type": "Role", "id": r}))
            .collect();
        cedar_entities.push(json!({"uid": {"type": "User", "id": id},
            "attrs": {"department": department, "clearance": who.clearance}, "parents": parents}));
        rego_users.insert(
            id.clone(),
            json!({"level": who.level, "department": department, "clearance": who.clearance}),
        );
        if style.scoped() {
            let _ = writeln!(
                casbin_policy,
                "g, {id}, {}\ng, {id}, {department}",
                LEVELS[who.level]
            );
            for c in 0..=who.clearance {
                let _ = writeln!(casbin_policy, "g, {id}, clr{c}");
            }
        }
    }
    for a in 0..albums(n) {
        let album = format!("a{a}");
        warden_entities.push(json!({"type": "Album", "id": album}));
        cedar_entities
            .push(json!({"uid": {"type": "Album", "id": album}, "attrs": {}, "parents": []}));
        for p in a * PHOTOS_PER_ALBUM..(a + 1) * PHOTOS_PER_ALBUM {
            let id = format!("p{p}");
            warden_entities.push(json!({"type": "Photo", "id": id, "parents": [album]}));
            cedar_entities.push(json!({"uid": {"type": "Photo", "id": id}, "attrs": {},
                "parents": [{"type": "Album", "id": album}]}));
            rego_photos.insert(id.clone(), json!({"album": album}));
            let _ = writeln!(casbin_policy, "g2, {id}, {album}");
        }
    }
    let action_levels: serde_json::Map<String, Value> = ACTIONS
        .iter()
        .enumerate()
        .map(|(i, a)| (a.to_string(), json!(i)))
        .collect();
    let grants_key = if style.scoped() { "grants" } else { "bindings" };
    let rego_data = json!({"users": rego_users, "photos": rego_photos,
        "action_levels": action_levels, grants_key: rego_grants});
    Texts {
        warden_policy,
        warden_data: json!({"entities": warden_entities}).to_string(),
        warden_roles: json!({"roles": roles}).to_string(),
        cedar_schema: CEDAR_SCHEMA,
        cedar_policies,
        cedar_links: Value::Array(cedar_links).to_string(),
        cedar_sliced_policies,
        cedar_entities: Value::Array(cedar_entities).to_string(),
        rego_policy: rego_policy(style),
        rego_data: rego_data.to_string(),
        casbin_model: casbin_model(style),
        casbin_policy,
    }
}

/// A request's (user, action, photo), kept beside its JSON for the oracle.
fn request(u: usize, action: usize, photo: usize, now: jiff::Timestamp) -> Req {
    let body = json!({
        "subject": {"type": "User", "id": format!("u{u}")},
        "action": {"name": ACTIONS[action]},
        "resource": {"type": "Photo", "id": format!("p{photo}")},
    });
    Req::new(&body, now)
}

/// Seeded distinct requests: any photo; half the time a user one of its album's grants names
/// (its department, or its bound user), else anyone; any action.
fn requests(style: Style, n: usize) -> Vec<(usize, usize, usize)> {
    let mut rng = Rng::new(0x6A47 + n as u64 + 7 * style as u64);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let photos = albums(n) * PHOTOS_PER_ALBUM;
    while out.len() < REQUESTS {
        let photo = rng.below(photos);
        let album = photo_album(photo);
        let granted = album * 10 + rng.below(10);
        let u = if rng.chance(50) && granted < n {
            match style {
                Style::RoleScoped | Style::TopLevel => {
                    let (_, _, department, _) = scoped_grant(granted);
                    // Users of department d are 5 * (10 j + d) + r.
                    5 * (10 * rng.below(USERS / 50) + department) + rng.below(5)
                }
                Style::Bindings => binding(granted).0,
            }
        } else {
            rng.below(USERS)
        };
        let action = rng.below(5);
        if seen.insert((u, action, photo)) {
            out.push((u, action, photo));
        }
    }
    out
}

/// The engines that read every rule at every request decide one request in `SAMPLE` of the
/// 10,000- and 100,000-grant sets (by a hash of the body), or the run would take hours.
fn body_hash(req: &Req) -> u64 {
    req.body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn outside_sample(req: &Req) -> bool {
    body_hash(req) % 20 != 0
}

const SAMPLE_NOTE: &str = "grants as top-level rules, in role blocks and as role bindings, 10,000: plain Cedar and Casbin read every grant at every request, so they decide (and are timed on) the one request in 20 of the set picked by a hash of its body; the pre-sliced Cedar, Rego and Warden decide all of them";
const CAPPED_NOTE: &str = "grants at 100,000: plain Cedar and Casbin are not run (at 10,000 a decision takes them 10 to 130 ms, reading every grant; at 100,000 about ten times that, so even a sample of the requests takes many minutes)";

fn cedar_plain(t: &Texts) -> CedarDecider {
    let schema = cedar::schema(t.cedar_schema);
    let mut policies = cedar::policies(&t.cedar_policies);
    cedar::validate(&schema, &policies);
    if t.cedar_links != "[]" {
        cedar::link(
            &mut policies,
            &serde_json::from_str(&t.cedar_links).expect("links JSON"),
        );
    }
    let entities = cedar::entities_from_str(&t.cedar_entities, &schema);
    CedarDecider::new(schema, policies, entities, cedar::no_context, None)
}

/// Pre-sliced: one policy set per album (its grants plus the deny), and the application's
/// index of which album a photo is in.
fn cedar_sliced(t: &Texts, n: usize) -> CedarDecider {
    let resource_albums = (0..albums(n) * PHOTOS_PER_ALBUM)
        .map(|p| (format!("p{p}"), vec![format!("a{}", photo_album(p))]))
        .collect();
    cedar::sliced(
        t.cedar_schema,
        &t.cedar_sliced_policies,
        &t.cedar_entities,
        resource_albums,
    )
}

#[derive(Serialize, Hash)]
struct Sub<'a> {
    id: &'a str,
    clearance: i64,
}

/// Casbin: the policy holds the grants, the users' roles, departments and clearances (as
/// roles), the photos' albums and which grant levels cover an action; the subject's clearance
/// comes from the application's store, for the deny.
pub struct CasbinGrants {
    enforcer: Enforcer,
    clearances: HashMap<String, i64>,
}

impl CasbinGrants {
    fn load(t: &Texts) -> CasbinGrants {
        let enforcer = crate::casbin_enforcer(t.casbin_model, &t.casbin_policy);
        let clearances = (0..USERS)
            .map(|u| (format!("u{u}"), user(u).clearance))
            .collect();
        CasbinGrants {
            enforcer,
            clearances,
        }
    }

    fn try_decide(&self, req: &Req) -> Option<bool> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        let id = body["subject"]["id"].as_str()?;
        let clearance = *self.clearances.get(id)?;
        let obj = body["resource"]["id"].as_str()?;
        let act = body["action"]["name"].as_str()?;
        self.enforcer
            .enforce((Sub { id, clearance }, obj, act))
            .ok()
    }
}

impl Decider for CasbinGrants {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}

fn rego(t: &Texts) -> RegoDecider {
    RegoDecider::new(
        &[("grants.rego", &t.rego_policy)],
        &t.rego_data,
        "data.grants.allow",
    )
}

fn warden_dir(t: &Texts, name: &str) -> ScratchDir {
    let dir = ScratchDir::new(name);
    dir.write("grants.warden", &t.warden_policy);
    dir.write("entities.json", &t.warden_data);
    dir.write("roles.json", &t.warden_roles);
    dir
}

pub fn model(style: Style, n: usize) -> Model {
    let t = texts(style, n);
    let dir = warden_dir(&t, &format!("{}-{n}", style.key()));
    let mut warden = warden_contender(&dir.0);
    let now = ts("2026-03-03T09:00:00Z");
    let oracle = Oracle::new(style, n);
    let mut requests = Vec::new();
    for (u, action, photo) in self::requests(style, n) {
        let req = request(u, action, photo, now);
        let expected = oracle.decide(u, action, photo);
        assert_eq!(
            warden.decider.decide(&req),
            expected,
            "[{}] Warden disagrees with the oracle on {}",
            model_name(style, n),
            String::from_utf8_lossy(&req.body)
        );
        requests.push(req);
    }
    let sampled = (n >= 10_000).then_some((outside_sample as fn(&Req) -> bool, SAMPLE_NOTE));
    let contender = |engine, setup, decider: Box<dyn Decider>, load, excludes| Contender {
        engine,
        setup,
        decider,
        load,
        excludes,
    };
    // Plain Cedar and Casbin read every grant at every request: capped at 100,000.
    let capped = n >= 100_000;
    if capped {
        eprintln!("note: {CAPPED_NOTE}");
    }
    let mut contenders = vec![warden];
    if !capped {
        let (c1, l1) = timed(|| cedar_plain(&t));
        contenders.push(contender("Cedar", "", Box::new(c1), l1, sampled));
    }
    let (c2, l2) = timed(|| cedar_sliced(&t, n));
    contenders.push(contender("Cedar", "pre-sliced", Box::new(c2), l2, None));
    let (r, l3) = timed(|| rego(&t));
    contenders.push(contender("Rego", "grants as data", Box::new(r), l3, None));
    if !capped {
        let (cb, l4) = timed(|| CasbinGrants::load(&t));
        contenders.push(contender("Casbin", "", Box::new(cb), l4, sampled));
    }
    Model {
        name: model_name(style, n),
        requests,
        contenders,
    }
}

const FILES: [&str; 9] = [
    "warden/grants.warden",
    "warden/entities.json",
    "warden/roles.json",
    "cedar.cedar",
    "cedar.links.json",
    "cedar.sliced.cedar",
    "cedar.entities.json",
    "rego-data.json",
    "casbin.csv",
];

impl Texts {
    pub fn write(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir.join("warden")).expect("create model directory");
        let texts = [
            &self.warden_policy,
            &self.warden_data,
            &self.warden_roles,
            &self.cedar_policies,
            &self.cedar_links,
            &self.cedar_sliced_policies,
            &self.cedar_entities,
            &self.rego_data,
            &self.casbin_policy,
        ];
        for (name, text) in FILES.iter().zip(texts) {
            std::fs::write(dir.join(name), text).expect("write model file");
        }
    }

    /// Reads back only the files engine `key` needs.
    fn read(dir: &std::path::Path, style: Style, key: &str) -> Texts {
        let read = |name: &str, wanted: &[&str]| {
            if wanted.contains(&key) {
                std::fs::read_to_string(dir.join(name)).expect("read model file")
            } else {
                String::new()
            }
        };
        let cedar = ["cedar", "cedar-sliced"];
        Texts {
            warden_policy: String::new(),
            warden_data: String::new(),
            warden_roles: String::new(),
            cedar_schema: CEDAR_SCHEMA,
            cedar_policies: read("cedar.cedar", &["cedar"]),
            cedar_links: read("cedar.links.json", &["cedar"]),
            cedar_sliced_policies: read("cedar.sliced.cedar", &["cedar-sliced"]),
            cedar_entities: read("cedar.entities.json", &cedar),
            rego_policy: rego_policy(style),
            rego_data: read("rego-data.json", &["rego"]),
            casbin_model: casbin_model(style),
            casbin_policy: read("casbin.csv", &["casbin"]),
        }
    }
}

/// For the peak-RSS measurement: load one engine from the files in `dir` (written by
/// `Texts::write`) and hold it. `none` loads nothing: the bare process.
pub fn load_only(
    style: Style,
    n: usize,
    key: &str,
    dir: &std::path::Path,
) -> Box<dyn std::any::Any> {
    let t = Texts::read(dir, style, key);
    match key {
        "none" => Box::new(t),
        "warden" => Box::new(crate::common::WardenDecider::load(&dir.join("warden")).engine),
        "cedar" => Box::new(cedar_plain(&t)),
        "cedar-sliced" => Box::new(cedar_sliced(&t, n)),
        "rego" => Box::new(rego(&t)),
        "casbin" => Box::new(CasbinGrants::load(&t)),
        other => panic!("unknown engine key `{other}`"),
    }
}
