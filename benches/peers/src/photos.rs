//! (a) The bundled photo archive: Warden's real `policies/` directory, translated by hand into
//! Cedar (models/photos/cedar), Rego (models/photos/rego) and Casbin (models/photos/casbin).

use std::collections::HashMap;

use casbin::{CoreApi, Enforcer};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cedar::{self, CedarDecider};
use crate::common::{Contender, Decider, Model, Req, crate_dir, read, timed, ts, warden_contender};
use crate::rego::RegoDecider;

const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const PHOTOS: [&str; 8] = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"];
const ALBUMS: [&str; 4] = ["archive", "trips", "alps", "press"];

/// The fixed clocks, chosen to cut both ways: office hours in Paris in winter and in summer
/// time, a weekend, evenings that are office hours in UTC but not in Paris, the morning after
/// the end of summer time, and both sides of Frank's ticket expiry (2026-06-30).
const CLOCKS: [&str; 6] = [
    "2026-03-03T09:00:00Z", // Tuesday 10:00 Paris (CET): office hours; ticket valid
    "2026-03-07T10:00:00Z", // Saturday 11:00 Paris: closed
    "2026-07-01T08:30:00Z", // Wednesday 10:30 Paris (CEST): office hours; ticket expired
    "2026-03-02T17:30:00Z", // Monday 18:30 Paris: closed (17:30 UTC would be open)
    "2026-06-29T16:30:00Z", // Monday 18:30 Paris (CEST): closed (16:30 UTC would be open)
    "2026-10-26T07:30:00Z", // Monday 08:30 Paris (CET, the day after summer time ends): closed
];

/// Every user × resource × action that applies to it × MFA true / false / absent × clock.
/// Exports come from the office network or from outside, alternately.
pub fn requests() -> Vec<Req> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for clock in CLOCKS {
        let now = ts(clock);
        for user in USERS {
            let mut targets: Vec<(&str, &str, &str)> = Vec::new();
            for p in PHOTOS {
                for a in ["view", "comment", "delete"] {
                    targets.push(("Photo", p, a));
                }
            }
            for al in ALBUMS {
                for a in ["upload", "list", "delete", "archive", "export"] {
                    targets.push(("Album", al, a));
                }
            }
            for (ty, id, action) in targets {
                for mfa in [Some(true), Some(false), None] {
                    n += 1;
                    let mut subject = json!({"type": "User", "id": user});
                    if let Some(mfa) = mfa {
                        subject["properties"] = json!({"mfa": mfa});
                    }
                    let mut body = json!({
                        "subject": subject,
                        "action": {"name": action},
                        "resource": {"type": ty, "id": id},
                    });
                    match action {
                        "archive" => body["context"] = json!({"reason": "yearly clean-up"}),
                        "export" => {
                            let ip = if n % 2 == 0 { "10.1.2.3" } else { "192.0.2.7" };
                            body["context"] = json!({"ip": ip});
                        }
                        _ => {}
                    }
                    out.push(Req::new(&body, now));
                }
            }
        }
    }
    out
}

fn is_archive(req: &Req) -> bool {
    req.json()["action"]["name"] == "archive"
}

fn cedar_context(body: &Value, now: Timestamp) -> Value {
    let mut ctx = json!({"now": {"__extn": {"fn": "datetime", "arg": now.to_string()}}});
    if let Some(mfa) = body["subject"].get("properties").and_then(|p| p.get("mfa")) {
        ctx["mfa"] = mfa.clone();
    }
    match body["action"]["name"].as_str() {
        Some("archive") => {
            // Cedar has no time zones: the application derives Paris's weekday and hour.
            let paris = now.in_tz("Europe/Paris").expect("Europe/Paris");
            ctx["paris_weekday"] = json!(paris.weekday().to_monday_one_offset());
            ctx["paris_hour"] = json!(paris.hour());
            ctx["reason"] = body["context"]["reason"].clone();
        }
        Some("export") => {
            ctx["ip"] = json!({"__extn": {"fn": "ip", "arg": body["context"]["ip"].clone()}});
        }
        _ => {}
    }
    ctx
}

// --- Casbin: the application's attribute store, and the request it builds.

#[derive(Serialize, Hash)]
struct Sub {
    id: String,
    suspended: bool,
    ticket_album: String,
    ticket_expires: i64,
}

#[derive(Serialize, Hash)]
struct Obj {
    id: String,
    kind: &'static str,
    owner: String,
    album_public: bool,
}

#[derive(Serialize, Hash)]
struct Env {
    mfa: bool,
    ip: String,
    now: i64,
}

struct UserRow {
    suspended: bool,
    ticket: Option<(String, i64)>,
}

pub struct CasbinPhotos {
    enforcer: Enforcer,
    users: HashMap<String, UserRow>,
    albums: HashMap<String, (String, bool)>,
    photos: HashMap<String, (String, String)>,
}

impl CasbinPhotos {
    fn load(model: &str, policy: &str, attributes: &str) -> CasbinPhotos {
        let enforcer = crate::casbin_enforcer(model, policy);
        let attrs: Value = serde_json::from_str(attributes).expect("attributes JSON");
        let users = attrs["users"]
            .as_object()
            .expect("users")
            .iter()
            .map(|(id, u)| {
                let ticket = u.get("ticket").map(|t| {
                    let expires: Timestamp = t["expires"]
                        .as_str()
                        .expect("expires")
                        .parse()
                        .expect("time");
                    (
                        t["album"].as_str().expect("album").to_string(),
                        expires.as_second(),
                    )
                });
                let row = UserRow {
                    suspended: u.get("suspended").and_then(Value::as_bool).unwrap_or(false),
                    ticket,
                };
                (id.clone(), row)
            })
            .collect();
        let albums = attrs["albums"]
            .as_object()
            .expect("albums")
            .iter()
            .map(|(id, a)| {
                let owner = a["owner"].as_str().expect("owner").to_string();
                (id.clone(), (owner, a["public"].as_bool().expect("public")))
            })
            .collect();
        let photos = attrs["photos"]
            .as_object()
            .expect("photos")
            .iter()
            .map(|(id, p)| {
                let owner = p["owner"].as_str().expect("owner").to_string();
                (
                    id.clone(),
                    (owner, p["album"].as_str().expect("album").to_string()),
                )
            })
            .collect();
        CasbinPhotos {
            enforcer,
            users,
            albums,
            photos,
        }
    }

    fn try_decide(&self, req: &Req) -> Option<bool> {
        let body: Value = serde_json::from_slice(&req.body).ok()?;
        let user_id = body["subject"]["id"].as_str()?;
        let user = self.users.get(user_id)?;
        let (ticket_album, ticket_expires) = match &user.ticket {
            Some((album, expires)) => (album.clone(), *expires),
            None => (String::new(), 0),
        };
        let sub = Sub {
            id: user_id.to_string(),
            suspended: user.suspended,
            ticket_album,
            ticket_expires,
        };
        let id = body["resource"]["id"].as_str()?;
        let obj = match body["resource"]["type"].as_str()? {
            "Photo" => {
                let (owner, album) = self.photos.get(id)?;
                let public = self.albums.get(album)?.1;
                Obj {
                    id: id.to_string(),
                    kind: "Photo",
                    owner: owner.clone(),
                    album_public: public,
                }
            }
            "Album" => {
                let (owner, _) = self.albums.get(id)?;
                Obj {
                    id: id.to_string(),
                    kind: "Album",
                    owner: owner.clone(),
                    album_public: false,
                }
            }
            _ => return None,
        };
        let env = Env {
            mfa: body["subject"]["properties"]["mfa"]
                .as_bool()
                .unwrap_or(false),
            ip: body["context"]["ip"].as_str().unwrap_or("").to_string(),
            now: req.now.as_second(),
        };
        let act = body["action"]["name"].as_str()?.to_string();
        self.enforcer.enforce((sub, obj, act, env)).ok()
    }
}

impl Decider for CasbinPhotos {
    fn decide(&mut self, req: &Req) -> bool {
        self.try_decide(req).unwrap_or(false)
    }
}

pub fn model() -> Model {
    let warden = warden_contender(&crate_dir().join("../../policies"));

    let (schema_text, policy_text, links_text, entities_text) = (
        read("models/photos/cedar/photos.cedarschema"),
        read("models/photos/cedar/photos.cedar"),
        read("models/photos/cedar/links.json"),
        read("models/photos/cedar/entities.json"),
    );
    let (cedar, cedar_load) = timed(|| {
        let schema = cedar::schema(&schema_text);
        let mut policies = cedar::policies(&policy_text);
        cedar::validate(&schema, &policies);
        cedar::link(
            &mut policies,
            &serde_json::from_str(&links_text).expect("links JSON"),
        );
        let entities = cedar::entities_from_str(&entities_text, &schema);
        CedarDecider::new(schema, policies, entities, cedar_context, None)
    });

    let (rego_text, rego_data) = (
        read("models/photos/rego/photos.rego"),
        read("models/photos/rego/data.json"),
    );
    let (rego, rego_load) = timed(|| {
        RegoDecider::new(
            &[("photos.rego", &rego_text)],
            &rego_data,
            "data.photos.allow",
        )
    });

    let (casbin_model, casbin_policy, casbin_attrs) = (
        read("models/photos/casbin/model.conf"),
        read("models/photos/casbin/policy.csv"),
        read("models/photos/casbin/attributes.json"),
    );
    let (casbin, casbin_load) =
        timed(|| CasbinPhotos::load(&casbin_model, &casbin_policy, &casbin_attrs));

    Model {
        name: "photo archive".to_string(),
        requests: requests(),
        contenders: vec![
            warden,
            Contender {
                engine: "Cedar",
                setup: "",
                decider: Box::new(cedar),
                load: cedar_load,
                excludes: None,
            },
            Contender {
                engine: "Rego",
                setup: "",
                decider: Box::new(rego),
                load: rego_load,
                excludes: None,
            },
            Contender {
                engine: "Casbin",
                setup: "",
                decider: Box::new(casbin),
                load: casbin_load,
                excludes: Some((
                    is_archive,
                    "photo archive: Casbin leaves out `archive` (office hours in Europe/Paris: its matchers have no time zones); its requests are not sent to Casbin",
                )),
            },
        ],
    }
}
