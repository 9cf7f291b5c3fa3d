use std::time::Instant;

use super::*;
use crate::capability::keys::{Key, Keyring};
use crate::capability::token::{Caveat, attenuate, mint, parse};

const A: &str = "mfrggzdfmztwq2lknnwg23tpoa";
const B: &str = "nbswy3dpeb3w64tmmqaaaaaaaa";
const C: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn line(id: &str, when: &str) -> String {
    format!("{{\"id\":\"{id}\",\"revoked_at\":\"{when}\"}}\n")
}

fn append_raw(path: &Path, text: &str) {
    let mut file = OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn open_creates_the_file_in_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let revocations = Revocations::open(&path).unwrap();
    assert!(path.is_file());
    assert!(revocations.is_empty());
    assert_eq!(revocations.path(), Some(path.as_path()));
    let nowhere = dir.path().join("missing").join("revoked.jsonl");
    let error = Revocations::open(&nowhere).unwrap_err().to_string();
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains("missing"), "{error}");
}

#[test]
fn a_revocation_in_one_process_is_seen_by_another_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let first = Revocations::open(&path).unwrap();
    let second = Revocations::open(&path).unwrap();
    assert!(first.revoke(A, at("2026-05-01T09:30:00Z")).unwrap());
    assert!(!first.revoke(A, at("2026-05-01T09:31:00Z")).unwrap());
    assert!(first.is_revoked(A));
    assert!(!second.is_revoked(A));
    assert_eq!(second.refresh().unwrap(), 1);
    assert!(second.is_revoked(A));
    assert_eq!(
        second.revoked.get(A).map(|entry| *entry.value()),
        Some(at("2026-05-01T09:30:00Z"))
    );
    assert_eq!(second.refresh().unwrap(), 0);
    // Both ways, and the file holds exactly one line per revocation.
    assert!(second.revoke(B, at("2026-05-01T10:00:00Z")).unwrap());
    assert_eq!(first.refresh().unwrap(), 1);
    assert!(first.is_revoked(B));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        line(A, "2026-05-01T09:30:00Z") + &line(B, "2026-05-01T10:00:00Z")
    );
    // A restart forgets nothing.
    let third = Revocations::open(&path).unwrap();
    assert_eq!(third.len(), 2);
    assert!(third.is_revoked(A) && third.is_revoked(B));
    assert!(!third.is_revoked(C));
}

#[test]
fn ids_are_checked_and_memory_works_without_a_file() {
    let revocations = Revocations::in_memory();
    assert!(matches!(
        revocations.revoke("not-an-id", Timestamp::UNIX_EPOCH),
        Err(RevocationError::BadId(_))
    ));
    assert!(revocations.revoke(A, Timestamp::UNIX_EPOCH).unwrap());
    assert!(revocations.is_revoked(A));
    assert_eq!(revocations.refresh().unwrap(), 0);
    assert_eq!(revocations.path(), None);
}

#[test]
fn a_token_is_revoked_by_its_id_or_a_parent() {
    let keyring = Keyring::new(
        vec![Key::new("k1", vec![3; 32], None).unwrap()],
        jiff::SignedDuration::ZERO,
    )
    .unwrap();
    let (text, id) = mint(&keyring, &[Caveat::Parent(A.into())]).unwrap();
    let token = parse(&text).unwrap();
    let revocations = Revocations::in_memory();
    assert_eq!(revocations.revoked_lineage(&token), None);
    revocations.revoke(A, Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(revocations.revoked_lineage(&token), Some(A));
    let (plain, plain_id) = mint(&keyring, &[]).unwrap();
    let plain = parse(&plain).unwrap();
    assert_eq!(revocations.revoked_lineage(&plain), None);
    revocations
        .revoke(&plain_id, Timestamp::UNIX_EPOCH)
        .unwrap();
    assert_eq!(revocations.revoked_lineage(&plain), Some(plain_id.as_str()));
    // An attenuated token keeps its id, so revoking the id revokes every narrowing of it.
    revocations.revoke(&id, Timestamp::UNIX_EPOCH).unwrap();
    let narrowed = parse(&attenuate(&text, &[Caveat::Actions(vec!["v".into()])]).unwrap());
    assert_eq!(
        revocations.revoked_lineage(&narrowed.unwrap()),
        Some(id.as_str())
    );
}

#[test]
fn a_partial_last_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let revocations = Revocations::open(&path).unwrap();
    let full = line(A, "2026-05-01T09:30:00Z");
    let (head, tail) = full.split_at(20);
    append_raw(&path, head);
    assert_eq!(revocations.refresh().unwrap(), 0);
    assert!(!revocations.is_revoked(A));
    // Opening a file whose last line is partial leaves it too.
    assert!(Revocations::open(&path).unwrap().is_empty());
    append_raw(&path, tail);
    assert_eq!(revocations.refresh().unwrap(), 1);
    assert!(revocations.is_revoked(A));
}

#[test]
fn a_revocation_after_a_torn_line_starts_a_line_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    std::fs::write(&path, line(A, "2026-05-01T09:30:00Z") + "{\"id\":\"ab").unwrap();
    let reader = Revocations::open(&path).unwrap();
    let writer = Revocations::open(&path).unwrap();
    assert!(writer.revoke(B, at("2026-05-02T00:00:00Z")).unwrap());
    // The torn line is reported once, and the revocation after it is taken.
    let error = reader.refresh().unwrap_err().to_string();
    assert!(error.contains(&format!("{}:2`", path.display())), "{error}");
    assert!(reader.is_revoked(B));
    assert_eq!(reader.refresh().unwrap(), 0);
    // At start, a malformed line is an error naming the file and line.
    let error = Revocations::open(&path).unwrap_err().to_string();
    assert!(
        error.contains(&format!("`{}:2` is not a revocation", path.display())),
        "{error}"
    );
}

#[test]
fn malformed_lines_are_skipped_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let revocations = Revocations::open(&path).unwrap();
    append_raw(&path, &line(A, "2026-05-01T09:30:00Z"));
    append_raw(&path, "\n  \n{\"id\":\"x\",\"revoked_at\":\"yesterday\"}\n");
    append_raw(&path, &line(B, "2026-05-01T09:30:00Z"));
    let error = revocations.refresh().unwrap_err().to_string();
    assert!(error.contains(&format!("{}:4`", path.display())), "{error}");
    assert!(
        error.contains("`yesterday` is not an RFC 3339 time"),
        "{error}"
    );
    assert!(revocations.is_revoked(A) && revocations.is_revoked(B));
    for bad in [
        "[]",
        "{\"id\":\"\",\"revoked_at\":\"2026-05-01T09:30:00Z\"}",
        "{\"id\":1}",
    ] {
        std::fs::write(&path, format!("{bad}\n")).unwrap();
        assert!(
            matches!(
                Revocations::open(&path),
                Err(RevocationError::Malformed { line: 1, .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn a_replaced_or_shrunk_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let revocations = Revocations::open(&path).unwrap();
    append_raw(&path, &line(A, "2026-05-01T09:30:00Z"));
    append_raw(&path, &line(B, "2026-05-01T09:30:00Z"));
    assert_eq!(revocations.refresh().unwrap(), 2);
    // Replaced (a new inode, here shorter than what was read): read from the start.
    let replacement = dir.path().join("next.jsonl");
    std::fs::write(&replacement, line(C, "2026-05-03T00:00:00Z")).unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    assert_eq!(revocations.refresh().unwrap(), 1);
    assert!(revocations.is_revoked(C));
    // Ids read before stay revoked.
    assert!(revocations.is_revoked(A) && revocations.is_revoked(B));
    // Replaced by a longer file: read from the start all the same (reading on from the old
    // offset would start mid-line).
    let d = "baaaaaaaaaaaaaaaaaaaaaaaaa";
    let longer = line(d, "2026-05-04T00:00:00Z") + &line(C, "2026-05-03T00:00:00Z").repeat(3);
    std::fs::write(&replacement, &longer).unwrap();
    std::fs::rename(&replacement, &path).unwrap();
    assert_eq!(revocations.refresh().unwrap(), 1);
    assert!(revocations.is_revoked(d));
    // Shrunk in place (same inode): read from the start.
    let shrinking = Revocations::open(&path).unwrap();
    std::fs::write(&path, line(B, "2026-05-05T00:00:00Z")).unwrap();
    assert_eq!(shrinking.refresh().unwrap(), 1);
    assert!(shrinking.is_revoked(B));
}

#[test]
fn the_watcher_sees_another_process_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revoked.jsonl");
    let watched = Arc::new(Revocations::open(&path).unwrap());
    let watcher = watched.spawn_watcher(DEFAULT_WATCH_INTERVAL).unwrap();
    let other = Revocations::open(&path).unwrap();
    let started = Instant::now();
    other.revoke(A, at("2026-05-01T09:30:00Z")).unwrap();
    let deadline = started + Duration::from_secs(5);
    while !watched.is_revoked(A) {
        assert!(Instant::now() < deadline, "not seen within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("seen after {:?}", started.elapsed());
    // Stopping returns promptly, without waiting out the interval.
    let stopping = Instant::now();
    watcher.stop();
    assert!(stopping.elapsed() < Duration::from_secs(5));
    other.revoke(B, at("2026-05-01T09:30:00Z")).unwrap();
    // A watcher whose revocations are gone ends by itself; one without a file has no thread.
    let gone = Arc::new(Revocations::open(&path).unwrap());
    let orphan = gone.spawn_watcher(Duration::from_millis(5)).unwrap();
    drop(gone);
    drop(orphan);
    let memory = Arc::new(Revocations::in_memory());
    assert!(
        memory
            .spawn_watcher(DEFAULT_WATCH_INTERVAL)
            .unwrap()
            .threads
            .is_empty()
    );
    assert!(!watched.is_revoked(B));
}
