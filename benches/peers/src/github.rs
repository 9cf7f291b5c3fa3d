//! (c) A code-hosting app in the shape of Cedar's GitHub benchmark. Policies are files under
//! models/github/; the world (5 organisations, 200 repositories, 1,000 issues, 300 users in 30
//! nested teams, role bindings, organisation owners) is generated from a seed.

use std::collections::HashSet;
use std::fmt::Write as _;

use casbin::{CoreApi, Enforcer};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cedar::{self, CedarDecider};
use crate::common::{
    Contender, Decider, Model, Req, Rng, ScratchDir, read, timed, ts, warden_contender,
};
use crate::rego::RegoDecider;

const ORGS: usize = 5;
const REPOS: usize = 200;
const ISSUES: usize = 1_000;
const USERS: usize = 300;
const TEAMS: usize = 30;
const REQUESTS: usize = 5_000;
const ROLES: [&str; 5] = ["reader", "triager", "writer", "maintainer", "admin"];
const REPO_ACTIONS: [&str; 8] = [
    "pull",
    "fork",
    "push",
    "add_reader",
    "add_triager",
    "add_writer",
    "add_maintainer",
    "add_admin",
];
const ISSUE_ACTIONS: [&str; 3] = ["edit_issue", "delete_issue", "assign_issue"];

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Principal {
    User(usize),
    Team(usize),
}

impl Principal {
    fn id(self) -> String {
        match self {
            Principal::User(u) => format!("u{u}"),
            Principal::Team(t) => format!("t{t}"),
        }
    }
    fn ty(self) -> &'static str {
        match self {
            Principal::User(_) => "User",
            Principal::Team(_) => "Team",
        }
    }
}

struct World {
    team_parent: Vec<Option<usize>>,
    user_teams: Vec<Vec<usize>>,
    org_owners: Vec<Vec<usize>>,
    /// Per repository: (principal, role index); one role per principal and repository.
    bindings: Vec<Vec<(Principal, usize)>>,
    /// (repository, reporter)
    issues: Vec<(usize, usize)>,
}

fn org_of(repo: usize) -> usize {
    repo % ORGS
}

fn world() -> World {
    let mut rng = Rng::new(0x617B);
    let team_parent = (0..TEAMS)
        .map(|t| if t == 0 { None } else { Some((t - 1) / 4) })
        .collect();
    let user_teams = (0..USERS)
        .map(|_| {
            let mut teams = Vec::new();
            if rng.chance(80) {
                teams.push(rng.below(TEAMS));
            }
            if rng.chance(30) {
                teams.push(rng.below(TEAMS));
            }
            teams.sort_unstable();
            teams.dedup();
            teams
        })
        .collect();
    let org_owners = (0..ORGS)
        .map(|_| vec![rng.below(USERS), rng.below(USERS)])
        .collect();
    let bindings = (0..REPOS)
        .map(|_| {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for k in 0..5 {
                let p = if k < 3 {
                    Principal::User(rng.below(USERS))
                } else {
                    Principal::Team(rng.below(TEAMS))
                };
                if seen.insert(p) {
                    out.push((p, rng.below(ROLES.len())));
                }
            }
            out
        })
        .collect();
    let issues = (0..ISSUES)
        .map(|_| (rng.below(REPOS), rng.below(USERS)))
        .collect();
    World {
        team_parent,
        user_teams,
        org_owners,
        bindings,
        issues,
    }
}

fn requests(w: &World) -> Vec<Req> {
    let mut rng = Rng::new(0x617C);
    let now = ts("2026-03-03T09:00:00Z");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < REQUESTS {
        let (repo, action, resource) = if rng.chance(50) {
            let repo = rng.below(REPOS);
            (
                repo,
                *rng.pick(&REPO_ACTIONS),
                ("Repository", format!("r{repo}")),
            )
        } else {
            let issue = rng.below(ISSUES);
            (
                w.issues[issue].0,
                *rng.pick(&ISSUE_ACTIONS),
                ("Issue", format!("i{issue}")),
            )
        };
        let roll = rng.below(100);
        let user = if roll < 10 && resource.0 == "Issue" {
            let issue: usize = resource.1[1..].parse().expect("issue id");
            w.issues[issue].1
        } else if roll < 15 {
            *rng.pick(&w.org_owners[org_of(repo)])
        } else if roll < 60 {
            match rng.pick(&w.bindings[repo]).0 {
                Principal::User(u) => u,
                Principal::Team(t) => {
                    let members: Vec<usize> = (0..USERS)
                        .filter(|&u| w.user_teams[u].contains(&t))
                        .collect();
                    if members.is_empty() {
                        rng.below(USERS)
                    } else {
                        *rng.pick(&members)
                    }
                }
            }
        } else {
            rng.below(USERS)
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
    let mut entities = Vec::new();
    for (t, parent) in w.team_parent.iter().enumerate() {
        let parents: Vec<String> = parent.map(|p| format!("t{p}")).into_iter().collect();
        entities.push(json!({"type": "Team", "id": format!("t{t}"), "parents": parents}));
    }
    for (u, teams) in w.user_teams.iter().enumerate() {
        let parents: Vec<String> = teams.iter().map(|t| format!("t{t}")).collect();
        entities.push(json!({"type": "User", "id": format!("u{u}"), "parents": parents}));
    }
    for o in 0..ORGS {
        entities.push(json!({"type": "Org", "id": format!("o{o}")}));
    }
    for r in 0..REPOS {
        entities.push(json!({"type": "Repository", "id": format!("r{r}"), "parents": [format!("o{}", org_of(r))]}));
    }
    for (i, &(repo, reporter)) in w.issues.iter().enumerate() {
        entities.push(
            json!({"type": "Issue", "id": format!("i{i}"), "parents": [format!("r{repo}")],
            "attributes": {"reporter": format!("u{reporter}")}}),
        );
    }
    let mut roles = Vec::new();
    for (r, bindings) in w.bindings.iter().enumerate() {
        for &(p, role) in bindings {
            roles.push(
                json!({"role": ROLES[role], "subject": {"type": p.ty(), "id": p.id()},
                "on": {"type": "Repository", "id": format!("r{r}")}}),
            );
        }
    }
    for (o, owners) in w.org_owners.iter().enumerate() {
        for u in owners {
            roles.push(
                json!({"role": "admin", "subject": {"type": "User", "id": format!("u{u}")},
                "on": {"type": "Org", "id": format!("o{o}")}}),
            );
        }
    }
    json!({"entities": entities, "roles": roles})
}

fn cedar_entities(w: &World) -> Value {
    let uid = |ty: &str, id: String| json!({"type": ty, "id": id});
    let group = |r: usize, role: usize| uid("UserGroup", format!("r{r}-{}s", ROLES[role]));
    let mut entities = Vec::new();
    // Per repository, one group per role, nested: admins in maintainers in … in readers.
    for r in 0..REPOS {
        for role in 0..ROLES.len() {
            let parents: Vec<Value> = if role > 0 {
                vec![group(r, role - 1)]
            } else {
                vec![]
            };
            entities.push(json!({"uid": group(r, role), "attrs": {}, "parents": parents}));
        }
        let attrs: serde_json::Map<String, Value> = (0..ROLES.len())
            .map(|role| (format!("{}s", ROLES[role]), group(r, role)))
            .collect();
        entities.push(
            json!({"uid": uid("Repository", format!("r{r}")), "attrs": attrs, "parents": []}),
        );
    }
    // An organisation's owners group is in the admins group of each of its repositories.
    for o in 0..ORGS {
        entities.push(json!({"uid": uid("Org", format!("o{o}")), "attrs": {}, "parents": []}));
        let parents: Vec<Value> = (0..REPOS)
            .filter(|&r| org_of(r) == o)
            .map(|r| group(r, 4))
            .collect();
        entities.push(json!({"uid": uid("UserGroup", format!("o{o}-owners")), "attrs": {}, "parents": parents}));
    }
    let mut member_of: std::collections::HashMap<Principal, Vec<Value>> =
        std::collections::HashMap::new();
    for (r, bindings) in w.bindings.iter().enumerate() {
        for &(p, role) in bindings {
            member_of.entry(p).or_default().push(group(r, role));
        }
    }
    for (o, owners) in w.org_owners.iter().enumerate() {
        for &u in owners {
            member_of
                .entry(Principal::User(u))
                .or_default()
                .push(uid("UserGroup", format!("o{o}-owners")));
        }
    }
    for (t, parent) in w.team_parent.iter().enumerate() {
        let mut parents: Vec<Value> = parent
            .map(|p| uid("Team", format!("t{p}")))
            .into_iter()
            .collect();
        parents.extend(member_of.remove(&Principal::Team(t)).unwrap_or_default());
        entities
            .push(json!({"uid": uid("Team", format!("t{t}")), "attrs": {}, "parents": parents}));
    }
    for (u, teams) in w.user_teams.iter().enumerate() {
        let mut parents: Vec<Value> = teams.iter().map(|t| uid("Team", format!("t{t}"))).collect();
        parents.extend(member_of.remove(&Principal::User(u)).unwrap_or_default());
        entities
            .push(json!({"uid": uid("User", format!("u{u}")), "attrs": {}, "parents": parents}));
    }
    for (i, &(repo, reporter)) in w.issues.iter().enumerate() {
        entities.push(json!({"uid": uid("Issue", format!("i{i}")), "parents": [],
            "attrs": {"repo": uid("Repository", format!("r{repo}")), "reporter": uid("User", format!("u{reporter}"))}}));
    }
    Value::Array(entities)
}

fn rego_data(w: &World) -> String {
    let team_parents: serde_json::Map<String, Value> = w
        .team_parent
        .iter()
        .enumerate()
        .map(|(t, p)| {
            (
                format!("t{t}"),
                json!(p.map(|p| format!("t{p}")).into_iter().collect::<Vec<_>>()),
            )
        })
        .collect();
    let users: serde_json::Map<String, Value> = w
        .user_teams
        .iter()
        .enumerate()
        .map(|(u, teams)| {
            (
                format!("u{u}"),
                json!({"teams": teams.iter().map(|t| format!("t{t}")).collect::<Vec<_>>()}),
            )
        })
        .collect();
    let orgs: serde_json::Map<String, Value> = w
        .org_owners
        .iter()
        .enumerate()
        .map(|(o, owners)| {
            (
                format!("o{o}"),
                json!({"owners": owners.iter().map(|u| format!("u{u}")).collect::<Vec<_>>()}),
            )
        })
        .collect();
    let repos: serde_json::Map<String, Value> = w
        .bindings
        .iter()
        .enumerate()
        .map(|(r, bindings)| {
            let roles: serde_json::Map<String, Value> = bindings
                .iter()
                .map(|&(p, role)| (p.id(), json!([ROLES[role]])))
                .collect();
            (
                format!("r{r}"),
                json!({"org": format!("o{}", org_of(r)), "roles": roles}),
            )
        })
        .collect();
    let issues: serde_json::Map<String, Value> = w
        .issues
        .iter()
        .enumerate()
        .map(|(i, &(repo, reporter))| {
            (
                format!("i{i}"),
                json!({"repo": format!("r{repo}"), "reporter": format!("u{reporter}")}),
            )
        })
        .collect();
    json!({"team_parents": team_parents, "users": users, "orgs": orgs, "repos": repos, "issues": issues}).to_string()
}

fn casbin_policy(w: &World, head: &str) -> String {
    let mut csv = head.to_string();
    for r in 0..REPOS {
        for role in 1..ROLES.len() {
            let _ = writeln!(csv, "g, {}:r{r}, {}:r{r}", ROLES[role], ROLES[role - 1]);
        }
        let _ = writeln!(csv, "g, owner:o{}, admin:r{r}", org_of(r));
        for &(p, role) in &w.bindings[r] {
            let _ = writeln!(csv, "g, {}, {}:r{r}", p.id(), ROLES[role]);
        }
    }
    for (o, owners) in w.org_owners.iter().enumerate() {
        for u in owners {
            let _ = writeln!(csv, "g, u{u}, owner:o{o}");
        }
    }
    for (t, parent) in w.team_parent.iter().enumerate() {
        if let Some(p) = parent {
            let _ = writeln!(csv, "g, t{t}, t{p}");
        }
    }
    for (u, teams) in w.user_teams.iter().enumerate() {
        for t in teams {
            let _ = writeln!(csv, "g, u{u}, t{t}");
        }
    }
    csv
}

#[derive(Serialize, Hash)]
struct Obj<'a> {
    repo: &'a str,
    reporter: &'a str,
}

/// Casbin: for an issue, the application looks up its repository and reporter.
pub struct CasbinGithub {
    enforcer: Enforcer,
    issues: std::collections::HashMap<String, (String, String)>,
}

impl CasbinGithub {
    fn try_decide(&self, req: &Req) -> Option<bool> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        let sub = body["subject"]["id"].as_str()?;
        let id = body["resource"]["id"].as_str()?;
        let obj = match body["resource"]["type"].as_str()? {
            "Repository" => Obj {
                repo: id,
                reporter: "",
            },
            "Issue" => {
                let (repo, reporter) = self.issues.get(id)?;
                Obj { repo, reporter }
            }
            _ => return None,
        };
        let act = body["action"]["name"].as_str()?;
        self.enforcer.enforce((sub, obj, act)).ok()
    }
}

impl Decider for CasbinGithub {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}

pub fn model() -> Model {
    let w = world();
    let dir = ScratchDir::new("github");
    dir.write("github.warden", &read("models/github/warden/github.warden"));
    dir.write("data.json", &warden_data(&w).to_string());
    let warden = warden_contender(&dir.0);

    let (schema_text, policy_text, entities) = (
        read("models/github/cedar/github.cedarschema"),
        read("models/github/cedar/github.cedar"),
        cedar_entities(&w),
    );
    let (cedar, cedar_load) = timed(|| {
        let schema = cedar::schema(&schema_text);
        let policies = cedar::policies(&policy_text);
        cedar::validate(&schema, &policies);
        let entities = cedar::entities_from_value(entities, &schema);
        CedarDecider::new(schema, policies, entities, cedar::context_as_sent, None)
    });

    let (rego_text, data) = (read("models/github/rego/github.rego"), rego_data(&w));
    let (rego, rego_load) =
        timed(|| RegoDecider::new(&[("github.rego", &rego_text)], &data, "data.github.allow"));

    let (casbin_model, policy) = (
        read("models/github/casbin/model.conf"),
        casbin_policy(&w, &read("models/github/casbin/policy.csv")),
    );
    let issues = w
        .issues
        .iter()
        .enumerate()
        .map(|(i, &(repo, reporter))| {
            (
                format!("i{i}"),
                (format!("r{repo}"), format!("u{reporter}")),
            )
        })
        .collect();
    let (casbin, casbin_load) = timed(|| CasbinGithub {
        enforcer: crate::casbin_enforcer(&casbin_model, &policy),
        issues,
    });

    let contender = |engine, decider: Box<dyn Decider>, load| Contender {
        engine,
        setup: "",
        decider,
        load,
        excludes: None,
    };
    Model {
        name: "code hosting (GitHub)".to_string(),
        requests: requests(&w),
        contenders: vec![
            warden,
            contender("Cedar", Box::new(cedar), cedar_load),
            contender("Rego", Box::new(rego), rego_load),
            contender("Casbin", Box::new(casbin), casbin_load),
        ],
    }
}
