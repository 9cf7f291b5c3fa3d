//! Arbitrary bytes as an evaluation (and an evaluations) body: every reader accepts and decides
//! exactly what the ordinary reader (`serde_json`'s tree, refusing a name given twice) does.
//! The server answers each body with all its readers and with the ordinary one alone: same
//! status, and on 200 the same answer, byte for byte. Each reader of the library that decodes
//! the body decodes the request the ordinary one decodes (or refuses it alike).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use warden::engine::Engine;
use warden::eval::request::{Reader, decode_with};
use warden::eval::{self, RequestError};
use warden::server::authzen::{Readers, answer_body};
use warden::server::{AppState, Config, Settings};

/// The policy `tests/integration/server/readers.rs` holds the readers to, with its store.
const POLICY: &str = r#"
entity Group in [Group]
entity User in [Group] { department: String, properties: { mfa?: Bool, level?: Int } }
entity Folder
entity Doc in [Folder] { owner: User }
action read, write on Doc context { ok?: Bool, n?: Int }
action poke on Doc

allow * on Doc if resource.owner == subject
allow read on Doc if subject in Group::"readers"
allow write on Doc if context has ok and context.ok == true
allow poke on Doc if context has n and context.n == 0
"#;

const STORE: &str = r#"{"entities": [
  {"type": "Group", "id": "readers"},
  {"type": "User", "id": "alice", "attributes": {"department": "eng"}},
  {"type": "User", "id": "bob", "attributes": {"department": "ops"}, "parents": [{"type": "Group", "id": "readers"}]},
  {"type": "Doc", "id": "d1", "attributes": {"owner": "alice"}}
]}"#;

struct Fixture {
    engine: Engine,
    state: Arc<AppState>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("warden-fuzz-decode-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("a temporary directory");
    std::fs::write(dir.join("docs.warden"), POLICY).expect("the policy");
    std::fs::write(dir.join("data/store.json"), STORE).expect("the store");
    let engine = Engine::load(&dir).unwrap_or_else(|_| panic!("the policy loads"));
    let settings = Settings::from(&Config {
        policies: dir.clone(),
        ..Config::default()
    });
    let state = Arc::new(AppState::new(settings));
    state.publish(warden::server::reload::build(&dir, false).expect("the policy builds"));
    let _ = std::fs::remove_dir_all(&dir);
    Fixture { engine, state }
});

/// Malformed (400), or the decoded request and its decision (an invalid request is a deny
/// whose reason may spell a number as written or as `serde_json` prints it).
fn outcome(decoded: Result<eval::Request, RequestError>) -> Option<(String, bool)> {
    match decoded {
        Ok(request) => {
            let allowed = eval::decide(&FIXTURE.engine.program, &request).allowed;
            Some((format!("{request:?}"), allowed))
        }
        Err(RequestError::Invalid(_)) => Some(("invalid".to_string(), false)),
        Err(RequestError::Malformed(_)) => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    // The server refuses an empty body before any reader sees it.
    if data.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    for batch in [false, true] {
        let all = answer_body(&fixture.state, data, batch, Readers::All);
        let ordinary = answer_body(&fixture.state, data, batch, Readers::Ordinary);
        assert_eq!(all.0, ordinary.0, "batch {batch}");
        if all.0 == 200 {
            assert_eq!(all.1, ordinary.1, "batch {batch}");
        }
    }
    let program = &fixture.engine.program;
    let now = jiff::Timestamp::UNIX_EPOCH;
    let reference = decode_with(program, data, now, Reader::Ordinary).map(outcome);
    for reader in [Reader::OnePass, Reader::Skeleton] {
        if let Some(decoded) = decode_with(program, data, now, reader) {
            assert_eq!(Some(outcome(decoded)), reference, "{reader:?}");
        }
    }
});
