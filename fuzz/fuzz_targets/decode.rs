//! Arbitrary bytes as an evaluation (and an evaluations) body: every reader accepts and decides
//! exactly what the ordinary reader (`serde_json`'s tree, refusing a name given twice) does.
//! The server answers each body with all its readers and with the ordinary one alone: same
//! status, and on 200 the same answer, byte for byte. Each reader of the library that decodes
//! the body decodes the request the ordinary one decodes (or refuses it alike).
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use warden::engine::Engine;
use warden::eval::request::{Reader, read_with};
use warden::eval::{self, RequestError};
use warden::server::authzen::{Readers, answer_body};
use warden::server::{AppState, Config, Settings};

/// The policy and store `tests/integration/server/readers.rs` holds the readers to.
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/readers");

struct Fixture {
    engine: Engine,
    state: Arc<AppState>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = std::path::Path::new(DIR);
    let engine = Engine::load(dir).unwrap_or_else(|_| panic!("{DIR} loads"));
    let settings = Settings::from(&Config {
        policies: dir.to_path_buf(),
        ..Config::default()
    });
    let state = Arc::new(AppState::new(settings));
    state.publish(warden::server::reload::build(dir, false, &[]).expect("the policy builds"));
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
    let reference = read_with(program, data, now, Reader::Ordinary).map(outcome);
    for reader in [Reader::OnePass, Reader::Skeleton] {
        if let Some(decoded) = read_with(program, data, now, reader) {
            assert_eq!(Some(outcome(decoded)), reference, "{reader:?}");
        }
    }
});
