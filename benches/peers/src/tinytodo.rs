//! (b) A shared todo-list app in the shape of Cedar's TinyTodo. The policies are files under
//! models/tinytodo/; the world (200 users, 40 nested teams plus `interns`, 500 lists) is
//! generated from a seed and written in each engine's data format.

use std::collections::HashSet;
use std::fmt::Write as _;

use casbin::{CoreApi, Enforcer};
use serde_json::{Value, json};

use crate::cedar::{self, CedarDecider};
use crate::common::{
    Contender, Decider, Model, Req, Rng, ScratchDir, read, timed, ts, warden_contender,
};
use crate::rego::RegoDecider;

const USERS: usize = 200;
const TEAMS: usize = 40;
const LISTS: usize = 500;
const REQUESTS: usize = 4_000;
const LIST_ACTIONS: [&str; 7] = [
    "get_list",
    "update_list",
    "create_task",
    "update_task",
    "delete_task",
    "edit_share",
    "delete_list",
];

struct World {
    /// Each team's parent (`None` for roots); `interns` is the last team.
    team_parent: Vec<Option<usize>>,
    team_names: Vec<String>,
    user_teams: Vec<Vec<usize>>,
    /// (owner, readers, editors)
    lists: Vec<(usize, usize, usize)>,
}

fn world() -> World {
    let mut rng = Rng::new(0x70D0);
    let mut team_parent: Vec<Option<usize>> = (0..TEAMS)
        .map(|t| if t == 0 { None } else { Some((t - 1) / 3) })
        .collect();
    team_parent.push(None);
    let mut team_names: Vec<String> = (0..TEAMS).map(|t| format!("t{t}")).collect();
    team_names.push("interns".to_string());
    let interns = TEAMS;
    let user_teams = (0..USERS)
        .map(|_| {
            let mut teams = vec![rng.below(TEAMS)];
            if rng.chance(40) {
                teams.push(rng.below(TEAMS));
            }
            if rng.chance(10) {
                teams.push(interns);
            }
            teams.sort_unstable();
            teams.dedup();
            teams
        })
        .collect();
    let lists = (0..LISTS)
        .map(|_| (rng.below(USERS), rng.below(TEAMS), rng.below(TEAMS)))
        .collect();
    World {
        team_parent,
        team_names,
        user_teams,
        lists,
    }
}

fn requests(w: &World) -> Vec<Req> {
    let mut rng = Rng::new(0x70D1);
    let now = ts("2026-03-03T09:00:00Z");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < REQUESTS {
        let (user, action, resource) = if rng.chance(10) {
            let action = if rng.chance(50) {
                "create_list"
            } else {
                "get_lists"
            };
            (
                rng.below(USERS),
                action,
                ("Application", "TinyTodo".to_string()),
            )
        } else {
            let list = rng.below(LISTS);
            let user = if rng.chance(20) {
                w.lists[list].0
            } else {
                rng.below(USERS)
            };
            (user, *rng.pick(&LIST_ACTIONS), ("List", format!("l{list}")))
        };
        if !seen.insert((user, action, resource.1.clone())) {
            continue;
        }
        let body = json!({
            "subject": {"type": "User", "id": format!("u{user}")},
            "action": {"name": action},
            "resource": {"type": resource.0, "id": resource.1},
        });
        out.push(Req::new(&body, now));
    }
    out
}

fn warden_data(w: &World) -> Value {
    let mut entities = vec![json!({"type": "Application", "id": "TinyTodo"})];
    for (t, name) in w.team_names.iter().enumerate() {
        let parents: Vec<&str> = w.team_parent[t]
            .map(|p| w.team_names[p].as_str())
            .into_iter()
            .collect();
        entities.push(json!({"type": "Team", "id": name, "parents": parents}));
    }
    for (u, teams) in w.user_teams.iter().enumerate() {
        let parents: Vec<&str> = teams.iter().map(|&t| w.team_names[t].as_str()).collect();
        entities.push(json!({"type": "User", "id": format!("u{u}"), "parents": parents}));
    }
    for (l, &(owner, readers, editors)) in w.lists.iter().enumerate() {
        entities.push(json!({"type": "List", "id": format!("l{l}"), "attributes": {
            "owner": format!("u{owner}"), "readers": w.team_names[readers], "editors": w.team_names[editors]}}));
    }
    json!({"entities": entities})
}

fn cedar_entities(w: &World) -> Value {
    let uid = |ty: &str, id: &str| json!({"type": ty, "id": id});
    let mut entities =
        vec![json!({"uid": uid("Application", "TinyTodo"), "attrs": {}, "parents": []})];
    for (t, name) in w.team_names.iter().enumerate() {
        let parents: Vec<Value> = w.team_parent[t]
            .map(|p| uid("Team", &w.team_names[p]))
            .into_iter()
            .collect();
        entities.push(json!({"uid": uid("Team", name), "attrs": {}, "parents": parents}));
    }
    for (u, teams) in w.user_teams.iter().enumerate() {
        let parents: Vec<Value> = teams
            .iter()
            .map(|&t| uid("Team", &w.team_names[t]))
            .collect();
        entities
            .push(json!({"uid": uid("User", &format!("u{u}")), "attrs": {}, "parents": parents}));
    }
    for (l, &(owner, readers, editors)) in w.lists.iter().enumerate() {
        entities.push(
            json!({"uid": uid("List", &format!("l{l}")), "parents": [], "attrs": {
            "owner": uid("User", &format!("u{owner}")),
            "readers": uid("Team", &w.team_names[readers]),
            "editors": uid("Team", &w.team_names[editors])}}),
        );
    }
    Value::Array(entities)
}

fn rego_data(w: &World) -> String {
    let team_parents: serde_json::Map<String, Value> = w
        .team_names
        .iter()
        .enumerate()
        .map(|(t, name)| {
            (
                name.clone(),
                json!(
                    w.team_parent[t]
                        .map(|p| w.team_names[p].clone())
                        .into_iter()
                        .collect::<Vec<_>>()
                ),
            )
        })
        .collect();
    let users: serde_json::Map<String, Value> = w.user_teams.iter().enumerate()
        .map(|(u, teams)| (format!("u{u}"), json!({"teams": teams.iter().map(|&t| w.team_names[t].clone()).collect::<Vec<_>>()})))
        .collect();
    let lists: serde_json::Map<String, Value> = w.lists.iter().enumerate()
        .map(|(l, &(o, r, e))| (format!("l{l}"), json!({"owner": format!("u{o}"), "readers": w.team_names[r], "editors": w.team_names[e]})))
        .collect();
    json!({"team_parents": team_parents, "users": users, "lists": lists}).to_string()
}

fn casbin_policy(w: &World, head: &str) -> String {
    let mut csv = head.to_string();
    for (t, name) in w.team_names.iter().enumerate() {
        if let Some(p) = w.team_parent[t] {
            let _ = writeln!(csv, "g, {name}, {}", w.team_names[p]);
        }
    }
    for (u, teams) in w.user_teams.iter().enumerate() {
        for &t in teams {
            let _ = writeln!(csv, "g, u{u}, {}", w.team_names[t]);
        }
    }
    for (l, &(owner, readers, editors)) in w.lists.iter().enumerate() {
        let _ = writeln!(
            csv,
            "g, u{owner}, owner:l{l}\ng, owner:l{l}, editor:l{l}\ng, editor:l{l}, reader:l{l}"
        );
        let _ = writeln!(
            csv,
            "g, {}, reader:l{l}\ng, {}, editor:l{l}",
            w.team_names[readers], w.team_names[editors]
        );
    }
    csv
}

pub struct CasbinTodo {
    enforcer: Enforcer,
}

impl CasbinTodo {
    fn try_decide(&self, req: &Req) -> Option<bool> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        let sub = body["subject"]["id"].as_str()?;
        let obj = body["resource"]["id"].as_str()?;
        let act = body["action"]["name"].as_str()?;
        self.enforcer.enforce((sub, obj, act)).ok()
    }
}

impl Decider for CasbinTodo {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}

pub fn model() -> Model {
    let w = world();
    let dir = ScratchDir::new("tinytodo");
    dir.write("todo.warden", &read("models/tinytodo/warden/todo.warden"));
    dir.write("data.json", &warden_data(&w).to_string());
    let warden = warden_contender(&dir.0);

    let (schema_text, policy_text, entities) = (
        read("models/tinytodo/cedar/todo.cedarschema"),
        read("models/tinytodo/cedar/todo.cedar"),
        cedar_entities(&w),
    );
    let (cedar, cedar_load) = timed(|| {
        let schema = cedar::schema(&schema_text);
        let policies = cedar::policies(&policy_text);
        cedar::validate(&schema, &policies);
        let entities = cedar::entities_from_value(entities, &schema);
        CedarDecider::new(schema, policies, entities, cedar::context_as_sent, None)
    });

    let (rego_text, data) = (read("models/tinytodo/rego/todo.rego"), rego_data(&w));
    let (rego, rego_load) =
        timed(|| RegoDecider::new(&[("todo.rego", &rego_text)], &data, "data.tinytodo.allow"));

    let (casbin_model, policy) = (
        read("models/tinytodo/casbin/model.conf"),
        casbin_policy(&w, &read("models/tinytodo/casbin/policy.csv")),
    );
    let (casbin, casbin_load) = timed(|| CasbinTodo {
        enforcer: crate::casbin_enforcer(&casbin_model, &policy),
    });

    let contender = |engine, decider: Box<dyn Decider>, load| Contender {
        engine,
        setup: "",
        decider,
        load,
        excludes: None,
    };
    Model {
        name: "todo lists (TinyTodo)".to_string(),
        requests: requests(&w),
        contenders: vec![
            warden,
            contender("Cedar", Box::new(cedar), cedar_load),
            contender("Rego", Box::new(rego), rego_load),
            contender("Casbin", Box::new(casbin), casbin_load),
        ],
    }
}
