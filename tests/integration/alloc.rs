//! Deciding allocates nothing once the request is decoded: counted, not assumed.
//!
//! The integration binary's global allocator counts allocations per thread; a test switches
//! counting on around the code it measures.
#![allow(
    unsafe_code,
    reason = "a global allocator is an unsafe trait; this one only forwards to `System`"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use serde_json::json;
use warden::engine::Engine;
use warden::eval::{self, request};

pub struct Counting;

thread_local! {
    // `const` initialisation and a type without a destructor: reading it never allocates, so
    // the allocator can use it without re-entering itself.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    // Bytes allocated and not yet freed on this thread while counting, and the most there were.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn counting() -> bool {
    COUNTING.try_with(Cell::get).unwrap_or(false)
}

fn note_allocation() {
    if counting() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

/// Adds `bytes` (negative when freed) to the live bytes while counting.
fn note_bytes(bytes: i64) {
    if counting() {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + bytes;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }
}

fn size(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only
// thread-local cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        note_bytes(size(layout.size()));
        // SAFETY: the caller upholds `alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        note_bytes(size(layout.size()));
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        note_bytes(size(new_size) - size(layout.size()));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_bytes(-size(layout.size()));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Counts the allocations `f` makes on this thread.
pub fn allocations_in<T>(f: impl FnOnce() -> T) -> (T, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let result = f();
    COUNTING.with(|on| on.set(false));
    (result, ALLOCATIONS.with(Cell::get))
}

/// The most bytes `f` held allocated at once on this thread (what it freed before returning
/// included): a measure of peak memory that does not depend on the machine's speed or load.
pub fn peak_bytes_in<T>(f: impl FnOnce() -> T) -> (T, u64) {
    LIVE.with(|live| live.set(0));
    PEAK.with(|peak| peak.set(0));
    COUNTING.with(|on| on.set(true));
    let result = f();
    COUNTING.with(|on| on.set(false));
    let peak = PEAK.with(Cell::get);
    (result, u64::try_from(peak).unwrap_or(0))
}

#[test]
fn the_counter_counts() {
    let (_, count) = allocations_in(|| std::hint::black_box(vec![1u8; 64]));
    assert!(count >= 1);
    let (_, peak) = peak_bytes_in(|| {
        let held = std::hint::black_box(vec![1u8; 4096]);
        drop(std::hint::black_box(vec![1u8; 1024]));
        held
    });
    assert!((5120..8192).contains(&peak), "{peak}");
}

#[test]
fn deciding_the_examples_allocates_nothing_after_decoding() {
    let engine = Engine::load(Path::new("policies")).unwrap();
    let program = &engine.program;
    let now: jiff::Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
    let mut requests = Vec::new();
    for user in ["alice", "bob", "carol", "dave", "erin", "frank", "nobody"] {
        for (ty, id, action) in [
            ("Photo", "p1", "view"),
            ("Photo", "p3", "view"),
            ("Photo", "p6", "comment"),
            ("Photo", "p1", "delete"),
            ("Album", "trips", "list"),
            ("Album", "press", "upload"),
        ] {
            let body = json!({
                "subject": {"type": "User", "id": user, "properties": {"mfa": user.len() % 2 == 0}},
                "action": {"name": action},
                "resource": {"type": ty, "id": id},
            });
            requests.push(request::read(program, body.to_string().as_bytes(), now).unwrap());
        }
        let archive = json!({
            "subject": {"type": "User", "id": user},
            "action": {"name": "archive"},
            "resource": {"type": "Album", "id": "trips"},
            "context": {"reason": "tidy"},
        });
        requests.push(request::read(program, archive.to_string().as_bytes(), now).unwrap());
    }
    // The first pass sizes this thread's frame; from then on nothing may allocate.
    let first: Vec<bool> = requests
        .iter()
        .map(|r| eval::decide(program, r).allowed)
        .collect();
    assert!(
        first.iter().any(|a| *a) && first.iter().any(|a| !*a),
        "a real mix of verdicts"
    );
    let (second, count) = allocations_in(|| {
        requests
            .iter()
            .map(|r| eval::decide(program, r).allowed)
            .fold(0usize, |n, allowed| n + usize::from(allowed))
    });
    assert_eq!(second, first.iter().filter(|a| **a).count());
    assert_eq!(count, 0, "deciding allocated {count} times");
}

/// The greenhouse example, a verifier of capability tokens with one key, and a time.
fn greenhouse() -> (
    Engine,
    warden::capability::present::Verifier,
    jiff::Timestamp,
) {
    use warden::capability::{Key, Keyring, Revocations, present::Verifier};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/greenhouse");
    let engine = Engine::load(&dir).unwrap();
    let now: jiff::Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
    let keyring = Keyring::new(
        vec![Key::new("k1", vec![9; 32], None).unwrap()],
        jiff::SignedDuration::ZERO,
    )
    .unwrap();
    let verifier = Verifier::new(keyring, std::sync::Arc::new(Revocations::in_memory()), None);
    (engine, verifier, now)
}

/// A presented capability — granting, out of scope, for another holder, expired — adds no
/// allocation to deciding.
#[test]
fn deciding_with_a_capability_allocates_nothing_after_decoding() {
    use warden::capability::{Caveat, EntityText};
    let (engine, verifier, now) = greenhouse();
    let program = &engine.program;
    let caveats = |expires: &str| {
        vec![
            Caveat::Capability("greenhouse_key".into()),
            Caveat::Resource(EntityText::new("Greenhouse", "glasshouse")),
            Caveat::Actions(vec!["water".into()]),
            Caveat::Expires(expires.parse().unwrap()),
            Caveat::Holder(EntityText::new("User", "nadia")),
        ]
    };
    let (valid, _) =
        warden::capability::mint(&verifier.keyring, &caveats("2027-01-01T00:00:00Z")).unwrap();
    let (expired, _) =
        warden::capability::mint(&verifier.keyring, &caveats("2026-01-01T00:00:00Z")).unwrap();
    let mut requests = Vec::new();
    for (user, action, ty, id) in [
        ("nadia", "water", "Greenhouse", "glasshouse"),
        ("nadia", "enter", "Greenhouse", "glasshouse"),
        ("nadia", "enter", "House", "home"),
        ("kai", "water", "Greenhouse", "glasshouse"),
    ] {
        for token in [&valid, &expired] {
            let body = json!({
                "subject": {"type": "User", "id": user},
                "action": {"name": action},
                "resource": {"type": ty, "id": id},
            });
            let mut request = request::read(program, body.to_string().as_bytes(), now).unwrap();
            request.capability = Some(verifier.present(program, token, now).unwrap());
            requests.push(request);
        }
    }
    let first: Vec<bool> = requests
        .iter()
        .map(|r| eval::decide(program, r).allowed)
        .collect();
    assert_eq!(first.iter().filter(|a| **a).count(), 1, "{first:?}");
    let (allowed, count) = allocations_in(|| {
        requests
            .iter()
            .filter(|r| eval::decide(program, r).allowed)
            .count()
    });
    assert_eq!(allowed, 1);
    assert_eq!(count, 0, "deciding allocated {count} times");
}

/// The decision service adds no allocation to deciding: a request decided through it, with
/// a capability token it verified once before (then cached), allocates nothing more than the
/// evaluator does.
#[test]
fn the_decision_service_allocates_nothing_after_decoding() {
    use warden::capability::{Caveat, EntityText};
    use warden::decide::{Decider, Presenting};
    let (engine, verifier, now) = greenhouse();
    let program = &engine.program;
    let (token, _) = warden::capability::mint(
        &verifier.keyring,
        &[
            Caveat::Capability("greenhouse_key".into()),
            Caveat::Resource(EntityText::new("Greenhouse", "glasshouse")),
            Caveat::Actions(vec!["water".into()]),
            Caveat::Expires("2027-01-01T00:00:00Z".parse().unwrap()),
            Caveat::Holder(EntityText::new("User", "nadia")),
        ],
    )
    .unwrap();
    let decider = Decider {
        program,
        identity: None,
        capabilities: Some(&verifier),
        limits: None,
    };
    let mut requests = Vec::new();
    for (user, action, ty, id) in [
        ("nadia", "water", "Greenhouse", "glasshouse"),
        ("nadia", "enter", "Greenhouse", "glasshouse"),
        ("kai", "water", "Greenhouse", "glasshouse"),
    ] {
        let body = json!({
            "subject": {"type": "User", "id": user},
            "action": {"name": action},
            "resource": {"type": ty, "id": id},
        });
        requests.push(request::read(program, body.to_string().as_bytes(), now).unwrap());
    }
    let decide_all = |requests: &mut [request::Request]| {
        requests
            .iter_mut()
            .map(|request| {
                let token = Some(Presenting::Token(&token));
                let verdict = decider.decide(Ok(request), (None, None), token, None, None);
                verdict.allowed
            })
            .collect::<Vec<bool>>()
    };
    // The first pass verifies the token and sizes this thread's frame.
    let first = decide_all(&mut requests);
    assert_eq!(first, [true, false, false]);
    let mut allowed = [false; 3];
    let ((), count) = allocations_in(|| {
        for (request, allowed) in requests.iter_mut().zip(&mut allowed) {
            let token = Some(Presenting::Token(&token));
            *allowed = decider
                .decide(Ok(request), (None, None), token, None, None)
                .allowed;
        }
    });
    assert_eq!(allowed, [true, false, false]);
    assert_eq!(count, 0, "deciding allocated {count} times");
}
