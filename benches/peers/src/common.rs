//! What every model and engine shares: the request, the decider interface, a seeded generator,
//! and the Warden adapter (the same for every model).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;
use warden::engine::Engine;
use warden::eval::{self, request};

/// One request as a client sends it: AuthZEN JSON bytes, plus the instant the service's clock
/// reads when it is decided (fixed by the harness, so that every engine sees the same `now`).
#[derive(Clone)]
pub struct Req {
    pub body: Vec<u8>,
    pub now: Timestamp,
}

impl Req {
    pub fn new(body: &Value, now: Timestamp) -> Req {
        Req {
            body: serde_json::to_vec(body).expect("a JSON value serialises"),
            now,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("requests are JSON")
    }
}

/// An engine, loaded with one model, deciding requests. The span timed is `decide`: from the
/// request's JSON bytes (and the loaded store) to the decision.
pub trait Decider {
    fn decide(&mut self, req: &Req) -> bool;
}

/// A loaded engine with its label and load time.
pub struct Contender {
    /// "Warden", "Cedar", "Rego", "Casbin".
    pub engine: &'static str,
    /// The setup: "" or e.g. "pre-sliced", "grants as data".
    pub setup: &'static str,
    pub decider: Box<dyn Decider>,
    /// From the model's text (policies, schema, data) to an engine ready to decide.
    pub load: Duration,
    /// Requests this contender does not take part in (with the reason, for the notes).
    pub excludes: Option<(fn(&Req) -> bool, &'static str)>,
}

impl Contender {
    pub fn label(&self) -> String {
        if self.setup.is_empty() {
            self.engine.to_string()
        } else {
            format!("{} ({})", self.engine, self.setup)
        }
    }

    pub fn takes(&self, req: &Req) -> bool {
        match self.excludes {
            Some((excluded, _)) => !excluded(req),
            None => true,
        }
    }
}

/// Times a loader.
pub fn timed<T>(load: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = load();
    (value, start.elapsed())
}

/// A model: its request set and its contenders (Warden first: the reference).
pub struct Model {
    pub name: String,
    pub requests: Vec<Req>,
    pub contenders: Vec<Contender>,
}

/// splitmix64: a small seeded generator, so every run builds the same worlds and requests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The directory of this crate (for the model files).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(path: impl AsRef<Path>) -> String {
    let path = crate_dir().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A scratch directory for the policy files and data Warden loads from disk.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("warden-peers-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        ScratchDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).expect("write scratch file");
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Warden: parse the JSON, decode it through the declarations, decide.
pub struct WardenDecider {
    pub engine: Engine,
}

impl WardenDecider {
    pub fn load(dir: &Path) -> WardenDecider {
        match Engine::load(dir) {
            Ok(engine) => WardenDecider { engine },
            Err(failure) => {
                for d in &failure.diagnostics {
                    eprintln!("{d:?}");
                }
                panic!("the Warden model in {} does not load", dir.display());
            }
        }
    }
}

impl Decider for WardenDecider {
    fn decide(&mut self, req: &Req) -> bool {
        // The server's path: the body's bytes decoded without a JSON tree.
        match request::read(&self.engine.program, &req.body, req.now) {
            Ok(request) => eval::decide(&self.engine.program, &request).allowed,
            Err(_) => false,
        }
    }
}

/// Warden, loaded from a directory of text, timed.
pub fn warden_contender(dir: &Path) -> Contender {
    let (decider, load) = timed(|| WardenDecider::load(dir));
    Contender {
        engine: "Warden",
        setup: "",
        decider: Box::new(decider),
        load,
        excludes: None,
    }
}

pub fn ts(text: &str) -> Timestamp {
    text.parse().expect("a valid timestamp")
}
