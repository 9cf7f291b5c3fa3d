//! The audit log: every decision recorded under load, tampering pinpointed by the built
//! binary's `warden audit verify`, rotation, back-pressure, drain on shutdown, and replay.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value as JsonValue, json};
use warden::audit::{AuditConfig, Fsync, Key, WhenFull, chain, verify};
use warden::server::Config;

use crate::server::{Http, PolicyDir, TestServer, config, request};

const KEY: &[u8] = b"the-audit-key-of-this-test";

/// A policy directory, a key file and where the log goes.
struct Setup {
    dir: PolicyDir,
    key_file: PathBuf,
    log: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = PolicyDir::standard();
        let key_file = dir.root.path().join("audit.key");
        std::fs::write(&key_file, KEY).unwrap();
        let log = dir.root.path().join("audit").join("audit.jsonl");
        Setup { dir, key_file, log }
    }

    /// The test policy with a route for forward-auth and `limits`.
    fn limited(limits: &str) -> Setup {
        let policy = format!(
            "{}\nroute GET \"/docs/{{doc}}\" => read on Doc::{{doc}}\n{limits}\n",
            crate::server::POLICY
        );
        let mut setup = Setup::new();
        setup.dir = PolicyDir::new(&[
            ("docs.warden", &policy),
            ("data/store.json", crate::server::STORE),
        ]);
        setup.key_file = setup.dir.root.path().join("audit.key");
        std::fs::write(&setup.key_file, KEY).unwrap();
        setup.log = setup.dir.root.path().join("audit").join("audit.jsonl");
        setup
    }

    fn audit(&self) -> AuditConfig {
        AuditConfig::new(self.log.clone(), Key::new(KEY).unwrap())
    }

    fn config(&self, audit: AuditConfig) -> Config {
        Config {
            watch: false,
            audit: Some(audit),
            ..config(&self.dir.path())
        }
    }

    /// Every audit file, active and rotated (as `audit.jsonl*` would match: not the lock).
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.log.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        files
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn records(files: &[PathBuf]) -> Vec<JsonValue> {
    files
        .iter()
        .flat_map(|f| lines(f))
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

/// Every decision in the log: decision records as they are, and each recorded item of a
/// batch record as a decision record of its own (the call's `request_id`, `time` and
/// `policy_version`, its `item`, its request with the call's defaults applied, its reads by
/// path).
fn decisions(files: &[PathBuf]) -> Vec<JsonValue> {
    let mut out = Vec::new();
    for record in records(files) {
        match record["kind"].as_str() {
            Some("decision") => out.push(record),
            Some("batch") => out.extend(batch_decisions(&record)),
            _ => {}
        }
    }
    out
}

fn batch_decisions(record: &JsonValue) -> Vec<JsonValue> {
    let request = &record["request"];
    let table = record["reads"].as_array().unwrap();
    let mut out = Vec::new();
    for (i, item) in record["items"].as_array().unwrap().iter().enumerate() {
        if item.is_null() {
            continue;
        }
        let item = &record["outcomes"][item.as_u64().unwrap() as usize];
        let entry = &request["evaluations"][i];
        let mut merged = serde_json::Map::new();
        for key in ["subject", "action", "resource", "context"] {
            let own = &entry[key];
            let value = if own.is_null() { &request[key] } else { own };
            if !value.is_null() {
                merged.insert(key.to_string(), value.clone());
            }
        }
        let mut read = serde_json::Map::new();
        for index in item["read"].as_array().unwrap() {
            let pair = &table[index.as_u64().unwrap() as usize];
            read.insert(pair[0].as_str().unwrap().to_string(), pair[1].clone());
        }
        let mut decision = item.clone();
        for key in ["request_id", "time", "policy_version", "latency_us"] {
            decision[key] = record[key].clone();
        }
        decision["item"] = json!(i);
        decision["request"] = JsonValue::Object(merged);
        decision["read"] = JsonValue::Object(read);
        out.push(decision);
    }
    out
}

fn verify_lib(files: &[PathBuf]) -> verify::Report {
    let key = Key::new(KEY).unwrap();
    verify::verify(
        &verify::order_files(files),
        &verify::Options {
            keys: std::slice::from_ref(&key),
            live: false,
            start: verify::Start::Genesis,
        },
    )
    .unwrap()
}

fn warden() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    for (key, _) in std::env::vars() {
        if key.starts_with("WARDEN_") {
            command.env_remove(key);
        }
    }
    command
}

/// Runs `warden audit verify` on `files`: (exit code, stdout).
fn verify_cli(files: &[PathBuf], key_file: &Path) -> (i32, String) {
    verify_cli_keys(files, &[key_file])
}

fn verify_cli_keys(files: &[PathBuf], key_files: &[&Path]) -> (i32, String) {
    let mut command = warden();
    command.args(["audit", "verify"]);
    for key_file in key_files {
        command.arg("--key-file").arg(key_file);
    }
    let output = command.args(files).output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

/// A closed log of `n` single evaluations (alternating allow and deny).
async fn closed_log(setup: &Setup, audit: AuditConfig, n: usize) {
    let server = TestServer::start(setup.config(audit)).await;
    for i in 0..n {
        let doc = if i % 2 == 0 { "d1" } else { "d2" };
        let reply = server
            .http
            .post_json("/access/v1/evaluation", &request("alice", "read", doc))
            .await;
        assert_eq!(reply.status, 200);
    }
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_decision_under_concurrent_load_is_recorded_once() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_records = 50;
    let server = TestServer::start(setup.config(audit)).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let http = server.http.clone();
        tasks.push(tokio::spawn(async move {
            let mut decided = 0;
            for i in 0..25 {
                let id = format!("t{task}-{i}");
                if i % 5 == 0 {
                    let body = json!({
                        "subject": {"type": "User", "id": "bob"},
                        "action": {"name": "read"},
                        "evaluations": [
                            {"resource": {"type": "Doc", "id": "d1"}},
                            {"resource": {"type": "Doc", "id": "d2"}, "action": {"name": "write"}},
                            {"resource": {"type": "Doc", "id": "d3"}}
                        ]
                    });
                    let reply = http
                        .send(
                            "POST",
                            "/access/v1/evaluations",
                            &[("content-type", "application/json"), ("x-request-id", &id)],
                            body.to_string(),
                        )
                        .await;
                    assert_eq!(reply.status, 200);
                    decided += 3;
                } else {
                    let reply = http
                        .send(
                            "POST",
                            "/access/v1/evaluation",
                            &[("content-type", "application/json"), ("x-request-id", &id)],
                            request("carol", "read", "d2").to_string(),
                        )
                        .await;
                    assert_eq!(reply.status, 200);
                    decided += 1;
                }
            }
            decided
        }));
    }
    let mut decided = 0;
    for task in tasks {
        decided += task.await.unwrap();
    }
    let metrics = server.http.get("/metrics").await.body;
    server.running.shutdown().await;

    let files = setup.files();
    let recorded = decisions(&files);
    assert_eq!(recorded.len(), decided, "count in = count out");
    // One record per call: 8 tasks × 5 batch calls, 8 × 20 single evaluations.
    let all = records(&files);
    assert_eq!(all.iter().filter(|r| r["kind"] == "batch").count(), 40);
    assert_eq!(all.iter().filter(|r| r["kind"] == "decision").count(), 160);
    // Each (request id, item) once.
    let mut keys: Vec<String> = recorded
        .iter()
        .map(|r| format!("{}#{}", r["request_id"], r["item"]))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), decided);
    let report = verify_lib(&files);
    assert!(report.intact, "{}", verify::render(&report));
    assert!(report.checkpoints >= 3, "{}", verify::render(&report));
    assert!(
        metrics.contains("warden_audit_dropped_total 0"),
        "{metrics}"
    );

    // A record holds what the issue asks for.
    let batch_item = recorded
        .iter()
        .find(|r| r["item"] == 1 && r["request_id"] == "t0-0")
        .unwrap();
    assert_eq!(batch_item["request"]["action"]["name"], "write");
    assert_eq!(batch_item["decision"], "deny");
    let single = recorded.iter().find(|r| r["request_id"] == "t3-1").unwrap();
    assert_eq!(single["decision"], "allow");
    assert_eq!(single["rules"], json!(["owner"]));
    assert_eq!(single["read"]["resource.owner"], "User::\"carol\"");
    assert!(single["time"].as_str().unwrap().ends_with('Z'));
    assert!(single["policy_version"].as_str().is_some());
    assert!(single["latency_us"].as_u64().is_some());
}

/// Reseals `lines` from `from` on, as whoever edits the file can: each line's `prev` is set to
/// the hash of the line before it and its hash recomputed; checkpoints are re-signed with
/// `key` when one is given (else their signatures stay as they were).
fn reseal(lines: &mut [String], from: usize, key: Option<&Key>) {
    let mut prev = from
        .checked_sub(1)
        .map(|i| chain::split(&lines[i]).unwrap().claimed.to_string());
    for line in &mut lines[from..] {
        let mut covered = chain::split(line).unwrap().covered.to_string();
        let at = covered.find(",\"prev\":\"").unwrap() + ",\"prev\":\"".len();
        if let Some(prev) = &prev {
            covered.replace_range(at..at + 64, prev);
        }
        if let Some(key) = key
            && covered.contains("\"kind\":\"checkpoint\"")
        {
            let (signed, _) = chain::signed(&covered).unwrap();
            let signed = signed.to_string();
            covered = format!("{signed},\"sig\":\"{}\"", key.sign(signed.as_bytes()));
        }
        let hash = chain::hash_of(&covered);
        *line = format!("{covered},\"hash\":\"{hash}\"}}");
        prev = Some(hash);
    }
}

/// Copies the log and applies `tamper` to its lines.
fn tampered(setup: &Setup, name: &str, tamper: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let mut lines = lines(&setup.log);
    tamper(&mut lines);
    let path = setup.dir.root.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[tokio::test]
async fn verify_passes_an_intact_log_and_pinpoints_each_tampering() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_records = 4;
    closed_log(&setup, audit, 12).await;

    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &setup.key_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact:"), "{out}");

    let all = lines(&setup.log);
    let seq_at = |i: usize| -> u64 {
        serde_json::from_str::<JsonValue>(&all[i]).unwrap()["seq"]
            .as_u64()
            .unwrap()
    };

    // Flip a byte inside record 5's request.
    let flipped = tampered(&setup, "flipped.jsonl", |lines| {
        lines[5] = lines[5].replacen("alice", "alicf", 1);
    });
    let (code, out) = verify_cli(&[flipped], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("broken: edited: record seq {} (", seq_at(5))),
        "{out}"
    );
    assert!(out.contains("flipped.jsonl:6)"), "{out}");

    // Delete a line.
    let deleted = tampered(&setup, "deleted.jsonl", |lines| {
        lines.remove(3);
    });
    let (code, out) = verify_cli(&[deleted], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "broken: missing: record seq {} is missing",
            seq_at(3)
        )),
        "{out}"
    );

    // Swap two lines.
    let swapped = tampered(&setup, "swapped.jsonl", |lines| lines.swap(7, 8));
    let (code, out) = verify_cli(&[swapped], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("broken: reordered: record seq {} (", seq_at(8))),
        "{out}"
    );

    // Truncate the tail: whole lines, then mid-line.
    let truncated = tampered(&setup, "truncated.jsonl", |lines| {
        lines.truncate(lines.len() - 2);
    });
    let (code, out) = verify_cli(&[truncated], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken: truncated:"), "{out}");
    assert!(out.contains("without the closing checkpoint"), "{out}");
    let cut = setup.dir.root.path().join("cut.jsonl");
    let text = std::fs::read_to_string(&setup.log).unwrap();
    std::fs::write(&cut, &text[..text.len() - 40]).unwrap();
    let (code, out) = verify_cli(&[cut], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken: truncated:"), "{out}");
    assert!(out.contains("cut short"), "{out}");

    // Edit a record, reseal the whole chain after it, re-sign the checkpoints with another key.
    let wrong = Key::new(b"not-the-server-key!").unwrap();
    let resigned = tampered(&setup, "resigned.jsonl", |lines| {
        lines[2] = lines[2].replacen("alice", "alicf", 1);
        reseal(lines, 2, Some(&wrong));
    });
    let (code, out) = verify_cli(&[resigned], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("broken: bad signature: checkpoint record seq 4"),
        "{out}"
    );

    // The wrong key on an intact log.
    let wrong_key = setup.dir.root.path().join("wrong.key");
    std::fs::write(&wrong_key, b"another key of 16+ bytes").unwrap();
    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &wrong_key);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad signature"), "{out}");
}

#[tokio::test]
async fn rotation_keeps_the_chain_across_files() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.rotate_bytes = 2_000;
    closed_log(&setup, audit, 30).await;
    let files = setup.files();
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(decisions(&files).len(), 30);
    // Each file after the first starts by linking to the previous file's last record.
    let ordered = verify::order_files(&files);
    for pair in ordered.windows(2) {
        let last: JsonValue = serde_json::from_str(lines(&pair[0]).last().unwrap()).unwrap();
        let first: JsonValue = serde_json::from_str(&lines(&pair[1])[0]).unwrap();
        assert_eq!(first["prev"], last["hash"]);
        assert_eq!(last["reason"], "rotate");
    }
    // Given in any order (the shell's `audit.jsonl*` puts the active file first).
    let mut shuffled = files.clone();
    shuffled.reverse();
    let (code, out) = verify_cli(&shuffled, &setup.key_file);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("in {} file(s)", files.len())),
        "{out}"
    );
    // A missing middle file is missing records.
    let without: Vec<PathBuf> = ordered
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, f)| f.clone())
        .collect();
    let (code, out) = verify_cli(&without, &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken: missing:"), "{out}");
    // Without the last file, the log ends at a rotation.
    let (code, out) = verify_cli(&ordered[..ordered.len() - 1], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ends at a rotation checkpoint"), "{out}");

    // A restart continues the chain in the same files.
    closed_log(&setup, setup.audit(), 2).await;
    let report = verify_lib(&setup.files());
    assert!(report.intact, "{}", verify::render(&report));
    assert_eq!(report.decisions, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_writer_holds_callers_back_and_loses_nothing() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.queue = 4;
    let server = TestServer::start(setup.config(audit)).await;
    let log = server.running.state.audit.as_ref().unwrap();
    let stall = log.stall();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let http: Http = server.http.clone();
        let doc = if i % 2 == 0 { "d1" } else { "d2" };
        tasks.push(tokio::spawn(async move {
            http.post_json("/access/v1/evaluation", &request("alice", "read", doc))
                .await
                .status
        }));
    }
    // The queue fills and callers wait: not all of them are answered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answered = tasks.iter().filter(|t| t.is_finished()).count();
    assert!(answered < 40, "{answered} answered with the writer stalled");
    assert!(log.queued() <= 4);
    assert!(
        log.counters
            .waited
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    drop(stall);
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    server.running.shutdown().await;
    let files = setup.files();
    assert_eq!(decisions(&files).len(), 40);
    assert!(verify_lib(&files).intact);
}

#[tokio::test]
async fn drop_mode_counts_what_it_drops() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.queue = 4;
    audit.when_full = WhenFull::Drop;
    let server = TestServer::start(setup.config(audit)).await;
    let stall = server.running.state.audit.as_ref().unwrap().stall();
    for _ in 0..20 {
        let reply = server
            .http
            .post_json("/access/v1/evaluation", &request("alice", "read", "d1"))
            .await;
        assert_eq!(reply.status, 200);
    }
    let metrics = server.http.get("/metrics").await.body;
    drop(stall);
    server.running.shutdown().await;
    let written = decisions(&setup.files()).len();
    let dropped: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("warden_audit_dropped_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(dropped >= 15, "{metrics}");
    assert_eq!(written + dropped, 20, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_the_queue() {
    let setup = Setup::new();
    let server = TestServer::start(setup.config(setup.audit())).await;
    let log = server.running.state.audit.as_ref().unwrap();
    let stall = log.stall();
    for _ in 0..30 {
        server
            .http
            .post_json("/access/v1/evaluation", &request("alice", "read", "d1"))
            .await;
    }
    assert!(log.queued() >= 29, "queued {}", log.queued());
    // Shut down with the writer still stalled; it resumes a moment later.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(stall);
    });
    server.running.shutdown().await;
    release.await.unwrap();
    let files = setup.files();
    assert_eq!(decisions(&files).len(), 30);
    let all = records(&files);
    assert_eq!(all.last().unwrap()["reason"], "close");
    assert!(verify_lib(&files).intact);
}

/// Times the server's log was synced.
fn syncs(server: &TestServer) -> u64 {
    let log = server.running.state.audit.as_ref().unwrap();
    log.counters
        .syncs
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Waits (10 s at most) until `done`.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The decision records whose whole line is in the log so far (the writer may be midway
/// through a line).
fn whole_decision_lines(setup: &Setup) -> usize {
    // Bytes, not text: a cut line may end inside a character.
    let bytes: Vec<u8> = setup
        .files()
        .iter()
        .flat_map(|file| std::fs::read(file).unwrap())
        .collect();
    let text = String::from_utf8_lossy(&bytes);
    let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    whole
        .lines()
        .filter(|line| line.contains("\"kind\":\"decision\""))
        .count()
}

/// Calls `n` single evaluations one at a time, each after the last one's record reached the
/// file (so that each is a batch of its own), and returns the syncs counted meanwhile.
async fn calls_in_batches_of_their_own(setup: &Setup, server: &TestServer, n: usize) -> u64 {
    let before = whole_decision_lines(setup);
    for i in 0..n {
        let reply = server
            .http
            .post_json("/access/v1/evaluation", &request("alice", "read", "d1"))
            .await;
        assert_eq!(reply.status, 200);
        eventually(&format!("written: record {i}"), || {
            whole_decision_lines(setup) > before + i
        })
        .await;
    }
    syncs(server)
}

#[tokio::test]
async fn the_fsync_policy_decides_when_the_log_is_synced() {
    use std::sync::atomic::Ordering::Relaxed;
    // The default: written to the OS at every batch, synced at most once a second.
    let defaults = AuditConfig::new(PathBuf::from("audit.jsonl"), Key::new(KEY).unwrap());
    assert_eq!(defaults.fsync, Fsync::Interval);
    assert_eq!(defaults.fsync_interval, Duration::from_secs(1));

    // `interval`: records reach the file at every batch but are not synced before the interval
    // is up; closing syncs.
    // (Checkpoints only when the server closes: none comes between, in any mode.)
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_interval = Duration::from_secs(3600);
    audit.fsync_interval = Duration::from_secs(3600);
    let server = TestServer::start(setup.config(audit)).await;
    let counters = server
        .running
        .state
        .audit
        .as_ref()
        .unwrap()
        .counters
        .clone();
    assert_eq!(calls_in_batches_of_their_own(&setup, &server, 5).await, 0);
    let status: JsonValue =
        serde_json::from_str(&server.http.get("/v1/status").await.body).unwrap();
    assert_eq!(status["audit"]["fsync"], "interval", "{status}");
    assert_eq!(status["audit"]["syncs"], 0, "{status}");
    server.running.shutdown().await;
    assert_eq!(counters.syncs.load(Relaxed), 1);

    // `interval`, short: an unsynced tail is synced once the interval is up, with no further
    // call. (How soon is not asserted: a slow machine may take longer than the interval.)
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_interval = Duration::from_secs(3600);
    audit.fsync_interval = Duration::from_millis(50);
    let server = TestServer::start(setup.config(audit)).await;
    calls_in_batches_of_their_own(&setup, &server, 1).await;
    eventually("synced", || syncs(&server) == 1).await;
    server.running.shutdown().await;

    // `batch`: every batch synced.
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_interval = Duration::from_secs(3600);
    audit.fsync = Fsync::Batch;
    let server = TestServer::start(setup.config(audit)).await;
    let after_each = calls_in_batches_of_their_own(&setup, &server, 5).await;
    // The last batch's sync may follow its write by a moment.
    eventually("synced 5 times", || syncs(&server) == 5).await;
    assert!(after_each >= 4, "{after_each} syncs after 5 batches");
    let metrics = server.http.get("/metrics").await.body;
    assert!(
        metrics.contains("warden_audit_syncs_total 5\n"),
        "{metrics}"
    );
    server.running.shutdown().await;
    assert!(verify_lib(&setup.files()).intact);
}

/// The writer reserves file space ahead of the log's end; a closed (or rotated) file keeps
/// none of it beyond its last byte.
#[cfg(unix)]
#[tokio::test]
async fn a_closed_log_holds_no_space_beyond_its_end() {
    use std::os::unix::fs::MetadataExt;
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.rotate_bytes = 8 * 1024 * 1024;
    closed_log(&setup, audit, 20).await;
    for file in setup.files() {
        let meta = std::fs::metadata(&file).unwrap();
        let whole_blocks = meta.len().div_ceil(4096) * 4096;
        assert!(
            meta.blocks() * 512 <= whole_blocks,
            "{}: {} bytes long, {} bytes allocated",
            file.display(),
            meta.len(),
            meta.blocks() * 512
        );
    }
    assert!(verify_lib(&setup.files()).intact);
}

#[tokio::test]
async fn modes_and_masking() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.mode = warden::audit::Mode::Sampled;
    audit.sample_allows = 0.25;
    audit.masking.names = vec!["secret".to_string()];
    let server = TestServer::start(setup.config(audit)).await;
    for i in 0..8 {
        let mut body = request("alice", "read", if i < 4 { "d1" } else { "d2" });
        body["context"] = json!({"secret": "s3", "auth": "Bearer abcdefgh", "ok": true});
        server.http.post_json("/access/v1/evaluation", &body).await;
    }
    server.running.shutdown().await;
    let recorded = decisions(&setup.files());
    let allows = recorded.iter().filter(|r| r["decision"] == "allow").count();
    let denies = recorded.iter().filter(|r| r["decision"] == "deny").count();
    assert_eq!((allows, denies), (1, 4));
    let text = std::fs::read_to_string(&setup.log).unwrap();
    assert!(!text.contains("s3"), "{text}");
    assert!(!text.contains("abcdefgh"), "{text}");
    assert_eq!(
        recorded[0]["masked"],
        json!(["context.auth", "context.secret"])
    );
}

/// `options` is copied into the record like the rest of the body, so what it holds is masked
/// the same way, whichever reader took the body (single or batch, plain or with escapes).
#[tokio::test]
async fn tokens_in_options_are_masked() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.masking.names = vec!["secret".to_string()];
    let server = TestServer::start(setup.config(audit)).await;
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9wdGlvbnM";
    let options = [
        json!({"x": jwt}),
        json!({"token": "tok-value-1"}),
        json!({"nested": [{"secret": "sec-value-2"}]}),
        json!({"x": "Bearer bearer-value-3", "y": "caf\u{e9}"}),
    ];
    for options in &options {
        let mut single = request("alice", "read", "d1");
        single["options"] = options.clone();
        server
            .http
            .post_json("/access/v1/evaluation", &single)
            .await;
        let batch = json!({
            "evaluations": [request("alice", "read", "d1")],
            "options": options,
        });
        server
            .http
            .post_json("/access/v1/evaluations", &batch)
            .await;
    }
    server.running.shutdown().await;
    let recorded = decisions(&setup.files());
    assert_eq!(recorded.len(), 2 * options.len());
    let text = std::fs::read_to_string(&setup.log).unwrap();
    for secret in [
        "c2lnbmF0dXJlLW9wdGlvbnM",
        "tok-value-1",
        "sec-value-2",
        "bearer-value-3",
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn replay_lists_the_flips_a_policy_change_causes() {
    let setup = Setup::new();
    let server = TestServer::start(setup.config(setup.audit())).await;
    let asks = [
        ("alice", "read", "d1"),  // allow: owner
        ("bob", "read", "d2"),    // allow: readers
        ("bob", "read", "d3"),    // allow: readers
        ("carol", "write", "d1"), // deny
        ("carol", "read", "d2"),  // allow: owner
    ];
    // Ten more of bob's reads: a group with more flips than replay lists by default.
    let more = std::iter::repeat_n(("bob", "read", "d2"), 10);
    for (subject, action, resource) in asks.into_iter().chain(more) {
        server
            .http
            .post_json("/access/v1/evaluation", &request(subject, action, resource))
            .await;
    }
    // A masked record is not replayable.
    let mut masked = request("alice", "read", "d1");
    masked["context"] = json!({"token": "abcdefghijkl"});
    server
        .http
        .post_json("/access/v1/evaluation", &masked)
        .await;
    server.running.shutdown().await;

    // The change: readers lose access, and carol may write anything.
    let new = PolicyDir::new(&[
        (
            "docs.warden",
            &crate::server::POLICY
                .replace(
                    "@id(\"readers\")\nallow read on Doc if subject in Group::\"readers\"\n",
                    "",
                )
                .replace(
                    "@id(\"context-write\")",
                    "@id(\"carol-writes\")\nallow write on Doc if subject == User::\"carol\"\n\n@id(\"context-write\")",
                ),
        ),
        ("data/store.json", crate::server::STORE),
    ]);
    let output = warden()
        .args(["audit", "replay", "--policies"])
        .arg(new.path())
        .arg(&setup.log)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("replayed 15 of 16 decision(s)"), "{out}");
    assert!(out.contains("not replayable: 1"), "{out}");
    assert!(
        out.contains("flips: 13 (allow → deny: 12, deny → allow: 1)"),
        "{out}"
    );
    assert!(
        out.contains("12 × no rule allows (was allowed by readers)"),
        "{out}"
    );
    assert!(out.contains("… and 2 more"), "{out}");
    assert!(out.contains("1 × allowed by carol-writes"), "{out}");
    assert!(out.contains("User::\"bob\" read Doc::\"d3\""), "{out}");

    // `warden audit replay OPTIONS -p NEW LOG`.
    let replay = |options: &[&str]| {
        warden()
            .args(["audit", "replay"])
            .args(options)
            .arg("-p")
            .arg(new.path())
            .arg(&setup.log)
            .output()
            .unwrap()
    };
    let json_report = |options: &[&str]| {
        let output = replay(&[&["--format", "json"], options].concat());
        assert_eq!(output.status.code(), Some(0));
        serde_json::from_slice::<JsonValue>(&output.stdout).unwrap()
    };
    let report = json_report(&[]);
    assert_eq!(report["allow_to_deny"], 12);
    assert_eq!(report["groups"][0]["flips"][0]["was"], json!(["readers"]));
    assert_eq!(report["groups"][0]["flips"].as_array().unwrap().len(), 10);

    // `--examples` bounds the flips each group keeps, not the count: a day's log with
    // millions of flips replays in bounded memory.
    let readers = |examples: &str| json_report(&["--examples", examples])["groups"][0].clone();
    assert_eq!(readers("1")["count"], 12);
    assert_eq!(readers("1")["flips"].as_array().unwrap().len(), 1);
    assert_eq!(readers("0")["flips"], json!([]));
    assert_eq!(readers("all")["flips"].as_array().unwrap().len(), 12);
    let shown = replay(&["--examples", "1"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("12 × no rule allows (was allowed by readers)"),
        "{shown}"
    );
    assert!(shown.contains("… and 11 more"), "{shown}");
    let refused = replay(&["--examples", "some"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("`some` is neither a count nor `all`")
    );
}

#[test]
fn the_audit_log_needs_a_key() {
    let setup = Setup::new();
    let output = warden()
        .args(["serve", "--listen", "127.0.0.1:0", "--audit-path"])
        .arg(&setup.log)
        .arg("-p")
        .arg(setup.dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("audit_key_file"));
}

fn audit_key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/audit")
        .join(name)
}

/// A server given an Ed25519 private key (made by OpenSSL) signs checkpoints that anyone with
/// the public key can check: the binary's verify says intact with the public key, names
/// another public key or the wrong kind of key as such, and still pinpoints an edit. A public
/// key cannot be the server's key.
#[tokio::test]
async fn ed25519_checkpoints_verify_with_the_public_key() {
    let setup = Setup::new();
    let private = Key::from_file(&audit_key("ed25519-private.pem")).unwrap();
    let mut audit = AuditConfig::new(setup.log.clone(), private);
    audit.checkpoint_records = 4;
    closed_log(&setup, audit, 10).await;
    let checkpoint = records(&setup.files())
        .into_iter()
        .find(|r| r["kind"] == "checkpoint")
        .unwrap();
    assert_eq!(checkpoint["alg"], "ed25519");

    let public = audit_key("ed25519-public.pem");
    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &public);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact:"), "{out}");

    let (code, out) = verify_cli(
        std::slice::from_ref(&setup.log),
        &audit_key("other-ed25519-public.pem"),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signed with another key"), "{out}");

    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is signed with `ed25519`"), "{out}");

    let edited = tampered(&setup, "edited.jsonl", |lines| {
        lines[2] = lines[2].replacen("alice", "alicf", 1);
    });
    let (code, out) = verify_cli(&[edited], &public);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("edited"), "{out}");

    let output = warden()
        .args(["serve", "--listen", "127.0.0.1:0", "--audit-path"])
        .arg(&setup.log)
        .arg("--audit-key-file")
        .arg(&public)
        .arg("-p")
        .arg(setup.dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("public key, which cannot sign"), "{stderr}");
}

/// The server's key changed during the log (a shared secret, then an Ed25519 key): verify is
/// given both and checks each checkpoint with the key it names; given only the old one, it
/// stops at the first checkpoint of the new one and says why.
#[tokio::test]
async fn a_log_whose_key_changed_verifies_with_both_keys() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_records = 3;
    closed_log(&setup, audit, 5).await;
    let private = Key::from_file(&audit_key("ed25519-private.pem")).unwrap();
    let mut audit = AuditConfig::new(setup.log.clone(), private);
    audit.checkpoint_records = 3;
    closed_log(&setup, audit, 5).await;
    let algorithms: Vec<String> = records(&setup.files())
        .iter()
        .filter(|r| r["kind"] == "checkpoint")
        .map(|r| r["alg"].as_str().unwrap().to_string())
        .collect();
    assert!(
        algorithms.contains(&"hmac-sha256".to_string()),
        "{algorithms:?}"
    );
    assert!(
        algorithms.contains(&"ed25519".to_string()),
        "{algorithms:?}"
    );

    let public = audit_key("ed25519-public.pem");
    let log = std::slice::from_ref(&setup.log);
    let (code, out) = verify_cli_keys(log, &[&setup.key_file, &public]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact:"), "{out}");

    let (code, out) = verify_cli_keys(log, &[&setup.key_file]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is signed with `ed25519`"), "{out}");

    let other = audit_key("other-ed25519-public.pem");
    let (code, out) = verify_cli_keys(log, &[&setup.key_file, &other]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("but the given keys are"), "{out}");
    assert!(out.contains("signed with another key"), "{out}");
}

/// The binary: audit keys from the file, the environment and flags; SIGTERM drains the queue
/// and closes the log, which then verifies.
#[tokio::test]
async fn the_binary_records_and_closes_the_log_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let setup = Setup::new();
    let file = setup.dir.root.path().join("warden.toml");
    std::fs::write(
        &file,
        format!(
            "audit_path = {:?}\naudit_mode = \"denies\"\naudit_checkpoint_records = 3\n",
            setup.log.display().to_string()
        ),
    )
    .unwrap();
    let mut child = warden()
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--watch=false", "--audit-mode", "all", "--config"])
        .arg(&file)
        .arg("-p")
        .arg(setup.dir.path())
        .env("WARDEN_AUDIT_KEY_FILE", &setup.key_file)
        .env("WARDEN_AUDIT_MASK", "department,ok")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });
    let address = loop {
        let line = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("the server said nothing");
        let log: JsonValue = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
        if log["fields"]["message"] == "serving" {
            break log["fields"]["address"].as_str().unwrap().to_string();
        }
    };
    let http = Http::new(&format!("http://{address}"));
    for i in 0..10 {
        let mut body = request("alice", if i % 2 == 0 { "read" } else { "write" }, "d1");
        body["context"] = json!({"ok": false});
        assert_eq!(
            http.post_json("/access/v1/evaluation", &body).await.status,
            200
        );
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // The flag (`all`) won over the file (`denies`); the environment's mask applied.
    let recorded = decisions(&setup.files());
    assert_eq!(recorded.len(), 10);
    assert_eq!(recorded[0]["masked"], json!(["context.ok"]));
    let (code, out) = verify_cli(&setup.files(), &setup.key_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("10 decision(s), 4 checkpoint(s)"), "{out}");
}

#[tokio::test]
async fn a_live_log_reports_its_unsigned_tail() {
    let setup = Setup::new();
    let server = TestServer::start(setup.config(setup.audit())).await;
    server
        .http
        .post_json("/access/v1/evaluation", &request("alice", "read", "d1"))
        .await;
    // Wait for the writer (batches are group-committed).
    for _ in 0..100 {
        if std::fs::metadata(&setup.log).map(|m| m.len()).unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `/v1/status` shows the log's state.
    let status: JsonValue =
        serde_json::from_str(&server.http.get("/v1/status").await.body).unwrap();
    let audit = &status["audit"];
    assert!(
        audit["path"].as_str().unwrap().ends_with("audit.jsonl"),
        "{status}"
    );
    assert_eq!(audit["records"], 1, "{status}");
    assert_eq!(audit["decisions"], 1, "{status}");
    assert_eq!(audit["dropped"], 0, "{status}");
    assert_eq!(audit["queue_depth"], 0, "{status}");
    assert!(audit["last_checkpoint"].is_null(), "{status}");
    let key = Key::new(KEY).unwrap();
    let files = setup.files();
    let live = verify::verify(
        &files,
        &verify::Options {
            keys: std::slice::from_ref(&key),
            live: true,
            start: verify::Start::Genesis,
        },
    )
    .unwrap();
    assert!(live.intact, "{}", verify::render(&live));
    assert_eq!(live.unsigned_tail, 1);
    assert!(verify::render(&live).contains("live log"));
    let closed = verify::verify(
        &files,
        &verify::Options {
            keys: std::slice::from_ref(&key),
            live: false,
            start: verify::Start::Genesis,
        },
    )
    .unwrap();
    assert_eq!(closed.broken.unwrap().kind, verify::BreakKind::Truncated);
    // The binary: `--live` exits 0 and counts the unsigned records; without it, truncated.
    let (code, out, _) = verify_with(&files, &setup.key_file, &["--live"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("live log: the last 1 record(s) follow the start (no checkpoint yet)"),
        "{out}"
    );
    let (code, out, _) = verify_with(&files, &setup.key_file, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken: truncated:"), "{out}");
    server.running.shutdown().await;
}

/// Callers that hang up while their records wait for room still get them written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_that_hang_up_while_waiting_lose_nothing() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.queue = 2;
    let server = TestServer::start(setup.config(audit)).await;
    let log = server.running.state.audit.as_ref().unwrap();
    let stall = log.stall();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let http = server.http.clone();
        tasks.push(tokio::spawn(async move {
            let body = request("alice", "read", "d1");
            let call = http.post_json("/access/v1/evaluation", &body);
            // Give up after a moment: the connection closes with the call still waiting.
            let _ = tokio::time::timeout(Duration::from_millis(1000), call).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stall);
    let metrics = server.http.get("/metrics").await.body;
    server.running.shutdown().await;
    let decided: u64 = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("warden_decisions_total"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    // Under a busy machine a call may give up before it is even decided: count what was.
    assert!(decided > 4, "{metrics}");
    assert_eq!(decisions(&setup.files()).len() as u64, decided);
}

#[tokio::test]
async fn two_servers_cannot_write_one_log() {
    let setup = Setup::new();
    let first = TestServer::start(setup.config(setup.audit())).await;
    let second = warden::server::start(&setup.config(setup.audit())).await;
    let Err(error) = second else {
        panic!("a second server started on the same audit log");
    };
    assert!(error.to_string().contains("another process"), "{error}");
    first.running.shutdown().await;
    // Once the first has stopped, the log is free again.
    let again = TestServer::start(setup.config(setup.audit())).await;
    again.running.shutdown().await;
    assert!(verify_lib(&setup.files()).intact);
}

/// A batch call is one record: its request as sent, its items' outcomes (an item not decided
/// or not recorded is `null`), the values read in a shared table. Verify counts its decisions,
/// replay re-decides each item and leaves out only the items a masked value touches.
#[tokio::test]
async fn a_batch_call_is_one_record_and_replays_item_by_item() {
    let setup = Setup::new();
    let server = TestServer::start(setup.config(setup.audit())).await;
    let body = json!({
        "subject": {"type": "User", "id": "bob"},
        "action": {"name": "read"},
        "evaluations": [
            {"resource": {"type": "Doc", "id": "d1"}},
            {"resource": {"type": "Doc", "id": "d2"}, "action": {"name": "write"}},
            5,
            {"resource": {"type": "Doc", "id": "d3"}, "subject": {"type": "User", "id": "carol"},
             "context": {"token": "abcdefghijkl"}},
            {"resource": {"type": "Doc", "id": "d2"}},
            {"resource": {"type": "Doc", "id": "d1"}}
        ]
    });
    let reply = server.http.post_json("/access/v1/evaluations", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // deny_on_first_deny stops after item 1: items 2 to 4 are not decided.
    let mut stopping = body.clone();
    stopping["options"] = json!({"evaluations_semantic": "deny_on_first_deny"});
    let reply = server
        .http
        .post_json("/access/v1/evaluations", &stopping)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.running.shutdown().await;

    let files = setup.files();
    let all = records(&files);
    let batches: Vec<&JsonValue> = all.iter().filter(|r| r["kind"] == "batch").collect();
    assert_eq!(batches.len(), 2, "{all:?}");
    let first = batches[0];
    // The request as sent, whitespace aside; the masked token only in its first characters.
    assert_eq!(first["request"]["evaluations"][2], 5);
    assert_eq!(
        first["request"]["evaluations"][3]["context"]["token"],
        "abcdef…[masked]"
    );
    assert_eq!(first["masked"], json!(["evaluations[3].context.token"]));
    let items: Vec<JsonValue> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item.as_u64() {
            Some(n) => first["outcomes"][n as usize].clone(),
            None => JsonValue::Null,
        })
        .collect();
    assert_eq!(items.len(), 6);
    assert!(items[2].is_null(), "{items:?}");
    // Items 0 and 5 end alike (allowed by `readers`, having read the same values): one
    // outcome, written once.
    assert_eq!(first["items"][0], first["items"][5], "{first}");
    assert_eq!(first["outcomes"].as_array().unwrap().len(), 4, "{first}");
    assert_eq!(items[0]["decision"], "allow");
    assert_eq!(items[0]["rules"], json!(["readers"]));
    assert_eq!(items[1]["decision"], "deny");
    assert_eq!(items[3]["rules"], json!(["owner"]));
    // Reads name entries of the record's table.
    let table = first["reads"].as_array().unwrap();
    let read_of = |item: &JsonValue| -> Vec<(String, String)> {
        item["read"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let pair = &table[i.as_u64().unwrap() as usize];
                (
                    pair[0].as_str().unwrap().to_string(),
                    pair[1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert!(
        read_of(&items[4]).contains(&("resource.owner".to_string(), "User::\"carol\"".to_string())),
        "{first}"
    );
    assert_eq!(batches[1]["items"].as_array().unwrap().len(), 2);

    let flattened = decisions(&files);
    assert_eq!(flattened.len(), 5 + 2);
    let report = verify_lib(&files);
    assert!(report.intact, "{}", verify::render(&report));
    assert_eq!(report.decisions, 7);
    assert_eq!(
        report.records, 3,
        "two batch records and the closing checkpoint"
    );

    // Replay under a policy where readers read nothing: items 0, 4 and 5 of the first call and
    // item 0 of the second flip; item 3 (its context masked) is not replayable.
    let new = PolicyDir::new(&[
        (
            "docs.warden",
            &crate::server::POLICY.replace(
                "@id(\"readers\")\nallow read on Doc if subject in Group::\"readers\"\n",
                "",
            ),
        ),
        ("data/store.json", crate::server::STORE),
    ]);
    let output = warden()
        .args(["audit", "replay", "--policies"])
        .arg(new.path())
        .arg(&setup.log)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("replayed 6 of 7 decision(s)"), "{out}");
    assert!(out.contains("not replayable: 1"), "{out}");
    assert!(
        out.contains("flips: 4 (allow → deny: 4, deny → allow: 0)"),
        "{out}"
    );
    assert!(out.contains("seq 0 item 4 at"), "{out}");
    assert!(out.contains("seq 1 item 0 at"), "{out}");
}

/// In `denies` mode a batch records only its denied items; a batch with none writes nothing.
/// Every item of a batch record says what the same request made alone records: its verdict,
/// rules, errors and the values it read (masked ones too). The items come in a scrambled order
/// with repeats and more distinct outcomes than the record's recent-outcome slots, so that
/// outcomes are found by comparison, found by key, and written anew, and an item that read a
/// masked value comes between items that ended alike.
#[tokio::test]
async fn each_batch_item_records_what_it_would_alone() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.masking.names = vec!["ok".to_string()];
    let server = TestServer::start(setup.config(audit)).await;
    let mut kinds = Vec::new();
    for subject in ["alice", "bob", "carol"] {
        for action in ["read", "write"] {
            for doc in ["d1", "d2", "d3"] {
                for context in [json!({}), json!({"ok": true}), json!({"ok": false})] {
                    kinds.push(json!({
                        "subject": {"type": "User", "id": subject},
                        "action": {"name": action},
                        "resource": {"type": "Doc", "id": doc},
                        "context": context,
                    }));
                }
            }
        }
    }
    let items: Vec<JsonValue> = (0..kinds.len() * 2)
        .map(|i| kinds[(i * 7 + i / kinds.len()) % kinds.len()].clone())
        .collect();
    let reply = server
        .http
        .post_json("/access/v1/evaluations", &json!({"evaluations": items}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for item in &items {
        let reply = server.http.post_json("/access/v1/evaluation", item).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    server.running.shutdown().await;

    let all = decisions(&setup.files());
    let (batch, alone): (Vec<&JsonValue>, Vec<&JsonValue>) =
        all.iter().partition(|d| d.get("item").is_some());
    assert_eq!(batch.len(), items.len());
    assert_eq!(alone.len(), items.len());
    let mut distinct = std::collections::HashSet::new();
    for (i, (in_batch, by_itself)) in batch.iter().zip(&alone).enumerate() {
        // The same request (masked alike), in the order sent.
        assert_eq!(in_batch["request"], by_itself["request"], "item {i}");
        for key in ["subject", "action", "resource"] {
            assert_eq!(in_batch["request"][key], items[i][key], "item {i}");
        }
        for key in ["decision", "rules", "read"] {
            assert_eq!(in_batch[key], by_itself[key], "item {i}: {key}");
        }
        let errors = |d: &JsonValue| d.get("errors").cloned().unwrap_or(json!([]));
        assert_eq!(errors(in_batch), errors(by_itself), "item {i}");
        distinct.insert(in_batch["read"].to_string() + &in_batch["rules"].to_string());
    }
    assert!(distinct.len() > 8, "{distinct:?}");
    assert!(
        batch
            .iter()
            .any(|d| d["read"].to_string().contains("[masked]")),
        "some items read the masked `ok`"
    );
}

#[tokio::test]
async fn denies_mode_records_only_the_denied_items_of_a_batch() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.mode = warden::audit::Mode::Denies;
    let server = TestServer::start(setup.config(audit)).await;
    let body = json!({
        "subject": {"type": "User", "id": "bob"},
        "action": {"name": "read"},
        "evaluations": [
            {"resource": {"type": "Doc", "id": "d1"}},
            {"resource": {"type": "Doc", "id": "d2"}, "action": {"name": "write"}},
            {"resource": {"type": "Doc", "id": "d3"}}
        ]
    });
    server.http.post_json("/access/v1/evaluations", &body).await;
    let allowed = json!({
        "subject": {"type": "User", "id": "bob"},
        "action": {"name": "read"},
        "evaluations": [{"resource": {"type": "Doc", "id": "d1"}}]
    });
    server
        .http
        .post_json("/access/v1/evaluations", &allowed)
        .await;
    server.running.shutdown().await;
    let all = records(&setup.files());
    let batches: Vec<&JsonValue> = all.iter().filter(|r| r["kind"] == "batch").collect();
    assert_eq!(batches.len(), 1, "{all:?}");
    let items = batches[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_null());
    assert_eq!(batches[0]["outcomes"][0]["decision"], "deny");
    assert_eq!(items[1], 0);
    assert_eq!(verify_lib(&setup.files()).decisions, 1);
}

/// Forward-auth calls (nginx, Traefik, Envoy) are recorded like any decision: the request
/// routing made, the original method and path (never the query), the subject the token
/// verified and its verified attributes — never the token. Replay routes them again.
#[tokio::test]
async fn forward_auth_decisions_are_recorded_without_their_tokens() {
    use crate::gateway::{bearer, claims, example_policies, gateway_config, sign};
    use jsonwebtoken::Algorithm;

    let policy = std::fs::read_to_string(example_policies().join("photos.warden")).unwrap();
    let store = std::fs::read_to_string(example_policies().join("data/store.json")).unwrap();
    let dir = PolicyDir::new(&[("photos.warden", &policy), ("data/store.json", &store)]);
    let key_file = dir.root.path().join("audit.key");
    std::fs::write(&key_file, KEY).unwrap();
    let log = dir.root.path().join("audit").join("audit.jsonl");
    let mut config = gateway_config(&dir.path());
    config.audit = Some(AuditConfig::new(log.clone(), Key::new(KEY).unwrap()));
    let server = TestServer::start(config).await;

    let alice = sign(Algorithm::ES256, &claims("alice"));
    let bob = sign(Algorithm::ES256, &claims("bob"));
    let mut staff_claims = claims("carol");
    staff_claims["email"] = json!("carol@staff.example");
    let carol = sign(Algorithm::HS256, &staff_claims);
    let nginx = |uri: &'static str, token: Option<String>, id: &'static str| {
        let http = server.http.clone();
        async move {
            let auth = token.map(|t| bearer(&t));
            let mut headers = vec![
                ("x-original-method", "GET"),
                ("x-original-uri", uri),
                ("x-forwarded-for", "192.0.2.7"),
                ("x-request-id", id),
            ];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            http.send("GET", "/forward-auth/nginx", &headers, "")
                .await
                .status
        }
    };
    assert_eq!(
        nginx("/albums/a1/photos/p1", Some(alice.clone()), "n1").await,
        200
    );
    assert_eq!(
        nginx("/albums/a1/photos/p1", Some(bob.clone()), "n2").await,
        403
    );
    assert_eq!(
        nginx("/albums/a1/photos/p2", Some(carol.clone()), "n3").await,
        200
    );
    assert_eq!(
        nginx("/nowhere?access_token=s3cr3t", Some(alice.clone()), "n4").await,
        403
    );
    // No identity: no decision, nothing recorded.
    assert_eq!(nginx("/albums/a1/photos/p1", None, "n5").await, 401);
    let traefik = server
        .http
        .send(
            "GET",
            "/forward-auth/traefik",
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-uri", "/albums/public/photos/p3?token=s3cr3t"),
                ("x-forwarded-host", "photos.example"),
                ("authorization", &bearer(&bob)),
            ],
            "",
        )
        .await;
    assert_eq!(traefik.status, 200);
    let envoy = server
        .http
        .send(
            "DELETE",
            "/ext-authz/albums/a1/photos/p1",
            &[("authorization", &bearer(&alice))],
            "",
        )
        .await;
    assert_eq!(envoy.status, 200);
    let metrics = server.http.get("/metrics").await.body;
    server.running.shutdown().await;

    let files = vec![log.clone()];
    let recorded = decisions(&files);
    let decided: usize = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("warden_decisions_total"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(recorded.len(), 6, "{recorded:#?}");
    assert_eq!(recorded.len(), decided, "{metrics}");
    let text = std::fs::read_to_string(&log).unwrap();
    for token in [&alice, &bob, &carol] {
        assert!(!text.contains(token.as_str()));
    }
    assert!(!text.contains("eyJ"), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");

    let by_id = |id: &str| recorded.iter().find(|r| r["request_id"] == id).unwrap();
    let first = by_id("n1");
    assert_eq!(first["gateway"], "nginx");
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["rules"], json!(["owner"]));
    assert_eq!(
        first["request"]["subject"],
        json!({"type": "User", "id": "alice"})
    );
    assert_eq!(first["request"]["action"]["name"], "view");
    assert_eq!(first["request"]["resource"]["id"], "p1");
    assert_eq!(first["http"]["method"], "GET");
    assert_eq!(first["http"]["path"], "/albums/a1/photos/p1");
    assert_eq!(first["http"]["ip"], "192.0.2.7");
    let staff = by_id("n3");
    assert_eq!(staff["verified"]["email"], "carol@staff.example");
    assert_eq!(staff["rules"], json!(["staff-view"]));
    let unrouted = by_id("n4");
    assert_eq!(unrouted["decision"], "deny");
    assert_eq!(unrouted["http"]["path"], "/nowhere");
    assert_eq!(unrouted["errors"], json!(["no route for GET /nowhere"]));
    assert!(recorded.iter().any(|r| r["gateway"] == "traefik"
        && r["http"]["path"] == "/albums/public/photos/p3"
        && r["decision"] == "allow"));
    assert!(recorded.iter().any(|r| r["gateway"] == "envoy"
        && r["request"]["action"]["name"] == "delete"
        && r["decision"] == "allow"));
    let report = verify_lib(&files);
    assert!(report.intact, "{}", verify::render(&report));
    assert_eq!(report.decisions, 6);

    // Replay routes again: a new route takes `/nowhere` (alice owns album a1: allowed), and
    // without `staff-view` carol's verified email no longer lets her view.
    let changed = policy
        .replace(
            "@id(\"staff-view\")\nallow view on Photo if subject has email and subject.email like \"*@staff.example\"\n",
            "",
        )
        .replace(
            "route GET \"/albums/{album}\" => list on Album::{album}",
            "route GET \"/albums/{album}\" => list on Album::{album}\nroute GET \"/nowhere\" => list on Album::\"a1\"",
        );
    assert_ne!(changed, policy);
    let new = PolicyDir::new(&[("photos.warden", &changed), ("data/store.json", &store)]);
    let output = warden()
        .args(["audit", "replay", "--format", "json", "-p"])
        .arg(new.path())
        .arg(&log)
        .output()
        .unwrap();
    let report: JsonValue = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(report["replayed"], 6, "{report:#}");
    assert_eq!(report["allow_to_deny"], 1, "{report:#}");
    assert_eq!(report["deny_to_allow"], 1, "{report:#}");
    let flips: Vec<&JsonValue> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["flips"].as_array().unwrap())
        .collect();
    assert!(
        flips
            .iter()
            .any(|f| f["request_id"] == "n3" && f["to"] == "deny")
    );
    assert!(
        flips
            .iter()
            .any(|f| f["request_id"] == "n4" && f["to"] == "allow")
    );
}

/// An AuthZEN call with a `Warden-Subject-Token` records what the token proved (never the
/// token), and replay decides with it: the same policy flips nothing, and a policy that no
/// longer honours the verified attribute flips exactly the decisions that named its subject.
#[tokio::test]
async fn subject_tokens_of_authzen_calls_are_recorded_as_what_they_proved() {
    use crate::gateway::{claims, example_policies, gateway_config, sign};
    use jsonwebtoken::Algorithm;

    let policy = std::fs::read_to_string(example_policies().join("photos.warden")).unwrap();
    let store = std::fs::read_to_string(example_policies().join("data/store.json")).unwrap();
    let dir = PolicyDir::new(&[("photos.warden", &policy), ("data/store.json", &store)]);
    let log = dir.root.path().join("audit").join("audit.jsonl");
    let mut config = gateway_config(&dir.path());
    config.gateway.authzen_subject_token = true;
    config.audit = Some(AuditConfig::new(log.clone(), Key::new(KEY).unwrap()));
    let server = TestServer::start(config).await;

    let mut staff = claims("bob");
    staff["email"] = json!("bob@staff.example");
    let token = sign(Algorithm::ES256, &staff);
    let headers = [
        ("content-type", "application/json"),
        ("warden-subject-token", token.as_str()),
        ("x-request-id", "t1"),
    ];
    let view = |subject: &str| {
        json!({
            "subject": {"type": "User", "id": subject},
            "action": {"name": "view"},
            "resource": {"type": "Photo", "id": "p1"},
        })
    };
    let single = server
        .http
        .send(
            "POST",
            "/access/v1/evaluation",
            &headers,
            view("bob").to_string(),
        )
        .await;
    assert_eq!(single.body, r#"{"decision":true}"#);
    // A batch: bob's item is decided with his verified email, carol's without it.
    let batch = json!({
        "action": {"name": "view"},
        "resource": {"type": "Photo", "id": "p1"},
        "evaluations": [
            {"subject": {"type": "User", "id": "bob"}},
            {"subject": {"type": "User", "id": "carol"}},
        ],
    });
    let headers = [
        ("content-type", "application/json"),
        ("warden-subject-token", token.as_str()),
        ("x-request-id", "t2"),
    ];
    let answer = server
        .http
        .send(
            "POST",
            "/access/v1/evaluations",
            &headers,
            batch.to_string(),
        )
        .await;
    assert_eq!(
        answer.body,
        r#"{"evaluations":[{"decision":true},{"decision":false}]}"#
    );
    server.running.shutdown().await;

    let files = vec![log.clone()];
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(token.as_str()), "{text}");
    assert!(!text.contains("eyJ"), "{text}");
    let records = records(&files);
    for id in ["t1", "t2"] {
        let record = records.iter().find(|r| r["request_id"] == id).unwrap();
        assert_eq!(
            record["verified_subject"],
            json!({"type": "User", "id": "bob", "attributes": {"email": "bob@staff.example"}}),
            "{record:#}"
        );
    }
    assert!(verify_lib(&files).intact);

    let replay = |policies: &Path| -> JsonValue {
        let output = warden()
            .args(["audit", "replay", "--format", "json", "-p"])
            .arg(policies)
            .arg(&log)
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    };
    // The same policy: every decision replays as it was made.
    let same = replay(&dir.path());
    assert_eq!(same["replayed"], 3, "{same:#}");
    assert_eq!(same["unchanged"], 3, "{same:#}");
    // Without the rule that honours a staff email, bob's two decisions flip; carol's stays.
    let changed = policy.replace(
        "@id(\"staff-view\")\nallow view on Photo if subject has email and subject.email like \"*@staff.example\"\n",
        "",
    );
    assert_ne!(changed, policy);
    let new = PolicyDir::new(&[("photos.warden", &changed), ("data/store.json", &store)]);
    let flipped = replay(&new.path());
    assert_eq!(flipped["replayed"], 3, "{flipped:#}");
    assert_eq!(flipped["allow_to_deny"], 2, "{flipped:#}");
    assert_eq!(flipped["deny_to_allow"], 0, "{flipped:#}");
}

/// A single evaluation's request is recorded exactly as sent when nothing in it needs masking
/// (its spaces kept, a value that merely names a token kept), and masked when something does.
/// A request holding a number no float can hold (`1e400`, in a member no policy reads) is
/// recorded as sent too, and the log still verifies.
#[tokio::test]
async fn single_requests_are_recorded_as_sent_and_the_log_stays_verifiable() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.masking.names = vec!["secret".to_string()];
    let server = TestServer::start(setup.config(audit)).await;
    let bodies = [
        r#"{"subject": {"type": "User", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "Doc", "id": "d1"}, "context": {"note": "token", "n": 7}}"#,
        r#"{"subject":{"id":"alice","type":"User"},"action":{"name":"read"},"resource":{"id":"d1","type":"Doc"},"junk":1e400}"#,
        r#"{"subject":{"type":"User","id":"alice"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"context":{"secret":"s3"}}"#,
        r#"{"subject":{"type":"User","id":"alice"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d1"},"context":{"auth":"Bearer abcdefgh"}}"#,
    ];
    for body in bodies {
        let reply = server.http.post("/access/v1/evaluation", body).await;
        assert_eq!(
            (reply.status, &*reply.body),
            (200, r#"{"decision":true}"#),
            "{body}"
        );
    }
    server.running.shutdown().await;
    let lines = lines(&setup.log);
    for (line, body) in lines.iter().zip(&bodies[..2]) {
        assert!(line.contains(&format!(r#""request":{body},"#)), "{line}");
    }
    assert!(!lines[2].contains("s3"), "{}", lines[2]);
    assert!(!lines[3].contains("abcdefgh"), "{}", lines[3]);
    let (code, out) = verify_cli(&setup.files(), &setup.key_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4 decision(s)"), "{out}");
}

/// Runs `warden audit verify` with `extra` arguments before the files: (exit code, stdout,
/// stderr).
fn verify_with(files: &[PathBuf], key_file: &Path, extra: &[&str]) -> (i32, String, String) {
    let output = warden()
        .args(["audit", "verify", "--key-file"])
        .arg(key_file)
        .args(extra)
        .args(files)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// A closed log of 12 single evaluations with a checkpoint every 4 records: decisions at
/// seq 0-3, 5-8 and 10-13, periodic checkpoints at 4, 9 and 14, the closing one at 15.
async fn sixteen_lines(setup: &Setup) -> Vec<String> {
    let mut audit = setup.audit();
    audit.checkpoint_records = 4;
    closed_log(setup, audit, 12).await;
    let lines = lines(&setup.log);
    let kinds: Vec<JsonValue> = lines
        .iter()
        .map(|l| {
            let r: JsonValue = serde_json::from_str(l).unwrap();
            json!([r["kind"], r["reason"]])
        })
        .collect();
    let cp = |reason: &str| json!(["checkpoint", reason]);
    let decision = json!(["decision", null]);
    let mut expected = vec![decision; 16];
    expected[4] = cp("count");
    expected[9] = cp("count");
    expected[14] = cp("count");
    expected[15] = cp("close");
    assert_eq!(kinds, expected);
    lines
}

fn log_id(lines: &[String]) -> String {
    let last: JsonValue = serde_json::from_str(lines.last().unwrap()).unwrap();
    last["log"].as_str().unwrap().to_string()
}

/// Each way of tampering with a closed log, by whoever can write the file but does not hold
/// the key, exits 1 and says what was done. `b` is another log signed with the same key.
#[tokio::test]
async fn every_tampering_exits_1_with_its_reason() {
    let setup = Setup::new();
    let other = Setup::new();
    let a = sixteen_lines(&setup).await;
    let b = sixteen_lines(&other).await;
    let (log_a, log_b) = (log_id(&a), log_id(&b));
    assert_ne!(log_a, log_b);
    let wrong = Key::new(b"not-the-server-key!").unwrap();
    type Tamper = Box<dyn Fn(&mut Vec<String>)>;
    let cases: Vec<(&str, Tamper, String)> = vec![
        (
            "edit a byte",
            Box::new(|l| l[5] = l[5].replacen("alice", "alicf", 1)),
            "broken: edited: record seq 5 (edit-a-byte.jsonl:6) was edited: its content does not match its hash".into(),
        ),
        (
            "edit a record and reseal it",
            Box::new(|l| {
                l[5] = l[5].replacen("alice", "alicf", 1);
                reseal(&mut l[..6], 5, None);
            }),
            "broken: edited: record seq 6 (edit-a-record-and-reseal-it.jsonl:7) does not link to record seq 5".into(),
        ),
        (
            "edit a record and reseal the chain",
            Box::new(|l| {
                l[5] = l[5].replacen("alice", "alicf", 1);
                reseal(l, 5, None);
            }),
            "broken: bad signature: checkpoint record seq 9 (edit-a-record-and-reseal-the-chain.jsonl:10) does not verify under the given key".into(),
        ),
        (
            "reseal the chain and sign with another key",
            Box::new(move |l| {
                l[5] = l[5].replacen("alice", "alicf", 1);
                reseal(l, 5, Some(&wrong));
            }),
            "broken: bad signature: checkpoint record seq 9".into(),
        ),
        (
            "delete a record",
            Box::new(|l| {
                l.remove(3);
            }),
            "broken: missing: record seq 3 is missing before record seq 4".into(),
        ),
        (
            "delete a checkpoint",
            Box::new(|l| {
                l.remove(9);
            }),
            "broken: missing: record seq 9 is missing before record seq 10".into(),
        ),
        (
            "delete the closing checkpoint",
            Box::new(|l| {
                l.pop();
            }),
            "broken: truncated: the log ends at record seq 14 (delete-the-closing-checkpoint.jsonl:15) without the closing checkpoint".into(),
        ),
        (
            "reorder",
            Box::new(|l| l.swap(7, 8)),
            "broken: reordered: record seq 8 (reorder.jsonl:8) comes before record seq 7".into(),
        ),
        (
            "repeat a record",
            Box::new(|l| {
                let copy = l[6].clone();
                l.insert(7, copy);
            }),
            "broken: reordered: record seq 6 (repeat-a-record.jsonl:8) comes after record seq 6".into(),
        ),
        (
            "cut after a periodic checkpoint",
            Box::new(|l| l.truncate(10)),
            "broken: truncated: the log ends at record seq 9 (cut-after-a-periodic-checkpoint.jsonl:10) without the closing checkpoint: it was truncated, or the server did not shut down cleanly; it ends at a periodic checkpoint".into(),
        ),
        (
            "cut after a periodic checkpoint relabelled close",
            Box::new(|l| {
                l.truncate(10);
                l[9] = l[9].replacen("\"reason\":\"count\"", "\"reason\":\"close\"", 1);
                reseal(l, 9, None);
            }),
            "broken: bad signature: checkpoint record seq 9 (cut-after-a-periodic-checkpoint-relabelled-close.jsonl:10) does not verify under the given key: it (its reason, time or place) or the records since the previous checkpoint (seq 4) were rewritten".into(),
        ),
        (
            "relabel a checkpoint in place",
            Box::new(|l| {
                l[4] = l[4].replacen("\"reason\":\"count\"", "\"reason\":\"interval\"", 1);
                reseal(l, 4, None);
            }),
            "broken: bad signature: checkpoint record seq 4 (".into(),
        ),
        (
            "change a checkpoint's time",
            Box::new(|l| {
                l[9] = l[9].replacen("\"time\":\"2", "\"time\":\"1", 1);
                reseal(l, 9, None);
            }),
            "broken: bad signature: checkpoint record seq 9 (".into(),
        ),
        (
            "change a checkpoint's file",
            Box::new(|l| {
                l[9] = l[9].replacen("\"file_seq\":0", "\"file_seq\":5", 1);
                reseal(l, 9, None);
            }),
            "broken: bad signature: checkpoint record seq 9 (".into(),
        ),
        (
            "cut the head",
            Box::new(|l| {
                l.drain(..5);
            }),
            "broken: missing: the log starts at record seq 5 (cut-the-head.jsonl:1): records seq 0 to 4 are missing".into(),
        ),
        (
            "append a record after the close",
            Box::new(|l| {
                let copy = l[13].clone();
                l.push(copy.replacen("\"seq\":13", "\"seq\":16", 1));
                reseal(l, 16, None);
            }),
            "broken: truncated: the log ends at record seq 16 (append-a-record-after-the-close.jsonl:17) without the closing checkpoint: it was truncated, or the server did not shut down cleanly; the last 1 record(s) follow the last signed checkpoint (seq 15)".into(),
        ),
        (
            "copy the closing checkpoint of another log",
            {
                let b = b.clone();
                Box::new(move |l| {
                    l.truncate(15);
                    l.push(b[15].clone());
                })
            },
            format!("broken: spliced: checkpoint record seq 15 (copy-the-closing-checkpoint-of-another-log.jsonl:16) does not link to the record before it: it is a signed checkpoint of log {log_b}, not of this log {log_a}: copied from another log"),
        ),
        (
            "copy the closing checkpoint of another log and link it",
            {
                let b = b.clone();
                Box::new(move |l| {
                    l.truncate(15);
                    l.push(b[15].clone());
                    reseal(l, 15, None);
                })
            },
            format!("does not verify under the given key: it (its reason, time or place) or the records since the previous checkpoint (seq 14) were rewritten; it names log {log_b}, not this log {log_a}: it was copied from another log, or two logs were spliced"),
        ),
        (
            "splice two logs",
            {
                let b = b.clone();
                Box::new(move |l| {
                    l.truncate(10);
                    l.extend(b[10..].iter().cloned());
                })
            },
            format!("broken: spliced: record seq 10 (splice-two-logs.jsonl:11) does not link to the record before it, and the records from it on belong to log {log_b} (by its checkpoint seq 14), not to this log {log_a}: two logs were spliced"),
        ),
        (
            "splice two logs and reseal",
            {
                let b = b.clone();
                Box::new(move |l| {
                    l.truncate(10);
                    l.extend(b[10..].iter().cloned());
                    reseal(l, 10, None);
                })
            },
            format!("broken: bad signature: checkpoint record seq 14 (splice-two-logs-and-reseal.jsonl:15) does not verify under the given key: it (its reason, time or place) or the records since the previous checkpoint (seq 9) were rewritten; it names log {log_b}, not this log {log_a}"),
        ),
        (
            "make a checkpoint look like format 1",
            Box::new(|l| {
                l[4] = l[4].replacen("\"format\":2,", "", 1);
                reseal(l, 4, None);
            }),
            "broken: unsupported format: checkpoint record seq 4 (make-a-checkpoint-look-like-format-1.jsonl:5) is of audit log format 1".into(),
        ),
    ];
    for (name, tamper, expected) in cases {
        let file = name.replace(' ', "-").replace('\'', "") + ".jsonl";
        let path = tampered(&setup, &file, tamper);
        let (code, out) = verify_cli(&[path], &setup.key_file);
        let out = out.replace(&format!("{}/", setup.dir.root.path().display()), "");
        assert_eq!(code, 1, "{name}: {out}");
        assert!(
            out.contains(&expected),
            "{name}: expected `{expected}` in\n{out}"
        );
    }
}

/// Whole lines cut off the tail at every position, or the head, or a line cut short at its
/// middle: each exits 1 and says so. `--live` takes each tail cut as a log still being
/// written, and reports the records after its last checkpoint; it does not take a head cut.
#[tokio::test]
async fn cutting_the_log_anywhere_is_reported() {
    let setup = Setup::new();
    let all = sixteen_lines(&setup).await;
    let dir = setup.dir.root.path();
    for keep in 0..all.len() {
        let path = dir.join(format!("tail-{keep}.jsonl"));
        let text: String = all[..keep].iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let files = std::slice::from_ref(&path);
        let (code, out) = verify_cli(files, &setup.key_file);
        assert_eq!(code, 1, "{keep} lines: {out}");
        if keep == 0 {
            assert!(
                out.contains("broken: truncated: the log holds no records"),
                "{out}"
            );
        } else {
            assert!(
                out.contains(&format!(
                    "broken: truncated: the log ends at record seq {} (",
                    keep - 1
                )),
                "{keep} lines: {out}"
            );
        }
        let (code, out, _) = verify_with(files, &setup.key_file, &["--live"]);
        assert_eq!(code, 0, "--live, {keep} lines: {out}");
        let last_checkpoint = [4, 9, 14].into_iter().rev().find(|&c| c < keep);
        let tail = keep - last_checkpoint.map_or(0, |c| c + 1);
        if tail > 0 {
            assert!(
                out.contains(&format!("live log: the last {tail} record(s) follow")),
                "--live, {keep} lines: {out}"
            );
        }

        // A line cut short in its middle.
        if keep < all.len() {
            let line = &all[keep];
            let cut = dir.join(format!("cut-{keep}.jsonl"));
            std::fs::write(&cut, format!("{text}{}", &line[..line.len() / 2])).unwrap();
            let (code, out) = verify_cli(std::slice::from_ref(&cut), &setup.key_file);
            assert_eq!(code, 1, "cut in line {keep}: {out}");
            assert!(
                out.contains(&format!("broken: truncated: record seq {keep} (")),
                "{out}"
            );
            assert!(out.contains("is cut short"), "{out}");
            // Live: the writer may be writing that line.
            let (code, out, _) =
                verify_with(std::slice::from_ref(&cut), &setup.key_file, &["--live"]);
            assert_eq!(code, 0, "--live, cut in line {keep}: {out}");
            assert!(out.contains("still being written"), "{out}");
        }

        // The head cut off.
        if keep > 0 {
            let head = dir.join(format!("head-{keep}.jsonl"));
            let text: String = all[keep..].iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&head, text).unwrap();
            for extra in [&[][..], &["--live"][..]] {
                let (code, out, _) =
                    verify_with(std::slice::from_ref(&head), &setup.key_file, extra);
                assert_eq!(code, 1, "head cut at {keep} {extra:?}: {out}");
                assert!(
                    out.contains(&format!(
                        "broken: missing: the log starts at record seq {keep} ("
                    )),
                    "{out}"
                );
            }
        }
    }
}

/// Rotated files: the checkpoints sign where their file starts, so files joined or split are
/// named; a log whose older files were removed verifies only from a start the caller names
/// (the previous file's last line, or a seq and a hash), and not from a wrong one.
#[tokio::test]
async fn rotated_files_verify_from_the_start_the_caller_names() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.rotate_bytes = 2_000;
    closed_log(&setup, audit, 30).await;
    let files = verify::order_files(&setup.files());
    assert!(files.len() >= 4, "{files:?}");
    let dir = setup.dir.root.path();
    let key = &setup.key_file;
    let (code, out, _) = verify_with(&files, key, &[]);
    assert_eq!(code, 0, "{out}");
    let log = log_id(&lines(&files[0]));
    assert!(out.contains(&format!(", log {log}")), "{out}");
    let first_of = |file: &Path| -> JsonValue { serde_json::from_str(&lines(file)[0]).unwrap() };
    let start = first_of(&files[1])["seq"].as_u64().unwrap();

    // The first file removed.
    let rest = &files[1..];
    let (code, out, _) = verify_with(rest, key, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "broken: missing: the log starts at record seq {start} ("
        )),
        "{out}"
    );
    assert!(out.contains("--from-checkpoint"), "{out}");
    // From its last line: the file itself, or a copy of that line.
    let from = files[0].to_str().unwrap();
    let (code, out, _) = verify_with(rest, key, &["--from-checkpoint", from]);
    assert_eq!(code, 0, "{out}");
    let kept = dir.join("kept-checkpoint");
    std::fs::write(&kept, lines(&files[0]).last().unwrap()).unwrap();
    let (code, out, _) = verify_with(rest, key, &["--from-checkpoint", kept.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // From a seq and a hash.
    let hash = first_of(&files[1])["prev"].as_str().unwrap().to_string();
    let seq_arg = start.to_string();
    let (code, out, _) = verify_with(rest, key, &["--start-seq", &seq_arg, "--start-hash", &hash]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = verify_with(
        rest,
        key,
        &["--start-seq", &seq_arg, "--start-hash", &"ab".repeat(32)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "broken: spliced: record seq {start} ({}:1) does not link to the given start",
            files[1].display()
        )),
        "{out}"
    );
    // Two files removed, the start of the first given.
    let (code, out, _) = verify_with(&files[2..], key, &["--from-checkpoint", from]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("broken: missing: records seq {start} to ")),
        "{out}"
    );
    // A start that is not a signed checkpoint.
    let relabelled = dir.join("relabelled-checkpoint");
    let mut last = vec![lines(&files[0]).last().unwrap().clone()];
    last[0] = last[0].replacen("\"reason\":\"rotate\"", "\"reason\":\"close\"", 1);
    reseal(&mut last, 0, None);
    std::fs::write(&relabelled, &last[0]).unwrap();
    let (code, out, err) = verify_with(
        rest,
        key,
        &["--from-checkpoint", relabelled.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("is not a signed checkpoint"), "{err}");
    assert!(err.contains("does not verify under the given key"), "{err}");
    let (code, _, err) = verify_with(rest, key, &["--start-seq", "3"]);
    assert_eq!(code, 2, "{err}");

    // Two files joined into one.
    let joined = dir.join("joined.jsonl");
    let text: String = lines(&files[1])
        .iter()
        .chain(lines(&files[2]).iter())
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&joined, text).unwrap();
    let mut given = vec![files[0].clone(), joined.clone()];
    given.extend(files[3..].iter().cloned());
    let (code, out, _) = verify_with(&given, key, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken: spliced: "), "{out}");
    assert!(
        out.contains(&format!(
            "{} starts at record seq {start}, but checkpoint record seq",
            joined.display()
        )),
        "{out}"
    );
    assert!(out.contains("files were joined"), "{out}");

    // A file split in two (at a record, not at a rotation).
    let second = lines(&files[1]);
    let (front, back) = second.split_at(2);
    let front_file = dir.join("front.jsonl");
    let back_file = dir.join("back.jsonl");
    std::fs::write(&front_file, front.join("\n") + "\n").unwrap();
    std::fs::write(&back_file, back.join("\n") + "\n").unwrap();
    let mut given = vec![files[0].clone(), front_file, back_file.clone()];
    given.extend(files[2..].iter().cloned());
    let (code, out, _) = verify_with(&given, key, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "broken: missing: {} starts at record seq {}, but checkpoint record seq",
            back_file.display(),
            start + 2
        )),
        "{out}"
    );
    assert!(
        out.contains("its head was cut off, or the file was split"),
        "{out}"
    );
}

/// The audit files hold request bodies: they are created readable by their owner only, the
/// rotated ones too.
#[cfg(unix)]
#[tokio::test]
async fn the_audit_files_are_created_0600() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.rotate_bytes = 2_000;
    closed_log(&setup, audit, 12).await;
    let files = setup.files();
    assert!(files.len() >= 2, "{files:?}");
    let lock = setup.log.with_file_name(".audit.jsonl.lock");
    for file in files.iter().chain([&lock]) {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
}

/// A log of format 1 (checkpoints that sign only their seq and the chain head) is refused by
/// its format; a server started on it rotates it away and goes on in format 2, which verifies
/// from the old log's last record.
#[tokio::test]
async fn a_log_of_format_1_is_refused_and_not_continued() {
    let setup = Setup::new();
    let fixture = audit_key("format-1.jsonl");
    let (code, out) = verify_cli(std::slice::from_ref(&fixture), &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("broken: unsupported format: checkpoint record seq 3 ("),
        "{out}"
    );
    assert!(out.contains("is of audit log format 1"), "{out}");

    std::fs::create_dir_all(setup.log.parent().unwrap()).unwrap();
    std::fs::copy(&fixture, &setup.log).unwrap();
    closed_log(&setup, setup.audit(), 3).await;
    let rotated = writer_rotated(&setup.log, 0);
    assert_eq!(
        std::fs::read(&rotated).unwrap(),
        std::fs::read(&fixture).unwrap(),
        "the old file is set aside untouched"
    );
    let old_last: JsonValue = serde_json::from_str(lines(&fixture).last().unwrap()).unwrap();
    let new = lines(&setup.log);
    let first: JsonValue = serde_json::from_str(&new[0]).unwrap();
    assert_eq!(first["seq"], 6);
    assert_eq!(first["prev"], old_last["hash"]);
    let hash = old_last["hash"].as_str().unwrap();
    let (code, out, _) = verify_with(
        std::slice::from_ref(&setup.log),
        &setup.key_file,
        &["--start-seq", "6", "--start-hash", hash],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 decision(s)"), "{out}");
}

fn writer_rotated(log: &Path, first: u64) -> PathBuf {
    warden::audit::writer::rotated_name(log, first)
}

/// A change to the bytes of a closed log.
#[derive(Clone, Debug)]
enum Change {
    /// XOR a byte with a non-zero mask.
    Flip(usize, u8),
    /// Remove `len` bytes from a position.
    Delete(usize, usize),
    /// Keep only the bytes before a position.
    Truncate(usize),
    /// Copy a line after another.
    Repeat(usize, usize),
    /// Swap two lines.
    Swap(usize, usize),
}

impl Change {
    fn apply(&self, log: &[u8]) -> Vec<u8> {
        let lines = || -> Vec<Vec<u8>> {
            log.split_inclusive(|b| *b == b'\n')
                .map(<[u8]>::to_vec)
                .collect()
        };
        match *self {
            Change::Flip(at, mask) => {
                let mut out = log.to_vec();
                let at = at % out.len();
                out[at] ^= mask;
                out
            }
            Change::Delete(at, len) => {
                let at = at % log.len();
                let end = (at + len).min(log.len());
                [&log[..at], &log[end..]].concat()
            }
            Change::Truncate(at) => log[..at % log.len()].to_vec(),
            Change::Repeat(from, after) => {
                let mut lines = lines();
                let copy = lines[from % lines.len()].clone();
                let at = after % lines.len() + 1;
                lines.insert(at, copy);
                lines.concat()
            }
            Change::Swap(a, b) => {
                let mut lines = lines();
                let n = lines.len();
                lines.swap(a % n, b % n);
                lines.concat()
            }
        }
    }
}

/// No change to a closed log's bytes (but dropping its final newline, which loses nothing)
/// leaves it intact.
#[tokio::test]
async fn no_change_to_a_closed_log_leaves_it_intact() {
    use proptest::prelude::*;
    let setup = Setup::new();
    let log = sixteen_lines(&setup).await.join("\n") + "\n";
    let log = log.into_bytes();
    let key = Key::new(KEY).unwrap();
    let path = setup.dir.root.path().join("changed.jsonl");
    let change = prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Change::Flip(at, mask)),
        (any::<usize>(), 1..200usize).prop_map(|(at, len)| Change::Delete(at, len)),
        any::<usize>().prop_map(Change::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Change::Repeat(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Change::Swap(a, b)),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&change, |change| {
            let changed = change.apply(&log);
            if changed == log || changed[..] == log[..log.len() - 1] {
                return Ok(());
            }
            std::fs::write(&path, &changed).unwrap();
            let report = verify::verify(
                std::slice::from_ref(&path),
                &verify::Options {
                    keys: std::slice::from_ref(&key),
                    live: false,
                    start: verify::Start::Genesis,
                },
            )
            .unwrap();
            prop_assert!(!report.intact, "{change:?} left the log intact");
            Ok(())
        })
        .unwrap();
}

/// A server that stopped without its closing checkpoint (a crash) is restarted on its log: the
/// chain and the log id go on, and the next closing checkpoint seals everything.
#[tokio::test]
async fn a_restart_after_a_crash_continues_the_log() {
    let setup = Setup::new();
    let mut audit = setup.audit();
    audit.checkpoint_records = 4;
    closed_log(&setup, audit.clone(), 6).await;
    let mut lines = lines(&setup.log);
    let close: JsonValue = serde_json::from_str(&lines.pop().unwrap()).unwrap();
    assert_eq!(close["reason"], "close");
    std::fs::write(&setup.log, lines.join("\n") + "\n").unwrap();
    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &setup.key_file);
    assert_eq!(code, 1, "{out}");
    closed_log(&setup, audit, 2).await;
    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &setup.key_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("8 decision(s)"), "{out}");
    assert!(
        out.contains(&format!("log {}", close["log"].as_str().unwrap())),
        "{out}"
    );
}

/// A server with a limit of two reads an hour per subject, and the calls that exhaust it: by
/// AuthZEN (single and batch) and by forward-auth. Returns the log's decisions.
async fn exhaust_a_limit(setup: &Setup, audit: AuditConfig) -> Vec<JsonValue> {
    let mut config = setup.config(audit);
    config.gateway.identity_header = Some("x-user".to_string());
    let server = TestServer::start(config).await;
    // alice reads her own d1 three times: the third is refused by the limit.
    for expected in [true, true, false] {
        let reply = server
            .http
            .post_json("/access/v1/evaluation", &request("alice", "read", "d1"))
            .await;
        assert_eq!(reply.json()["decision"], expected, "{}", reply.body);
    }
    // bob reads as one of the readers, three items in one batch: the third is refused.
    let item = |doc: &str| json!({"resource": {"type": "Doc", "id": doc}});
    let batch = json!({
        "subject": {"type": "User", "id": "bob"},
        "action": {"name": "read"},
        "evaluations": [item("d2"), item("d3"), item("d2")],
    });
    let reply = server
        .http
        .post_json("/access/v1/evaluations", &batch)
        .await;
    let answered: Vec<JsonValue> = reply.json()["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].clone())
        .collect();
    assert_eq!(answered, [true, true, false], "{}", reply.body);
    // carol reads her own d2 through Traefik: the third is a 429.
    for expected in [200, 200, 429] {
        let reply = server
            .http
            .send(
                "GET",
                "/forward-auth/traefik",
                &[
                    ("x-forwarded-method", "GET"),
                    ("x-forwarded-uri", "/docs/d2"),
                    ("x-user", "carol"),
                ],
                "",
            )
            .await;
        assert_eq!(reply.status, expected, "{}", reply.body);
    }
    // carol may not write d1: denied by policy, and never counted.
    let reply = server
        .http
        .post_json("/access/v1/evaluation", &request("carol", "write", "d1"))
        .await;
    assert_eq!(reply.json()["decision"], false);
    server.running.shutdown().await;
    decisions(&setup.files())
}

/// Runs `warden audit replay` on the log under `policies`: (exit code, stdout).
fn replay_cli(setup: &Setup, policies: &Path, json: bool) -> (i32, String) {
    let mut command = warden();
    command.args(["audit", "replay", "-p"]).arg(policies);
    if json {
        command.args(["--format", "json"]);
    }
    let output = command.arg(&setup.log).output().unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// A decision a limit refused is recorded as the deny the caller got, with what the policy
/// decided (`rules`) and the limit that refused (`limited`); the log verifies; replay under the
/// same policy counts such decisions apart, not as flips; and a policy change that denies them
/// is a flip like any other, saying the limit had refused.
#[tokio::test]
async fn limit_denied_decisions_are_recorded_and_replayed_apart() {
    let setup = Setup::limited("limit reads: 2 read on Doc per hour per subject");
    let all = exhaust_a_limit(&setup, setup.audit()).await;
    assert_eq!(all.len(), 10, "{all:#?}");
    let limited: Vec<&JsonValue> = all.iter().filter(|d| !d["limited"].is_null()).collect();
    assert_eq!(limited.len(), 3, "{all:#?}");
    // The AuthZEN single call, the batch item, the forward-auth call.
    assert_eq!(limited[0]["request"]["subject"]["id"], "alice");
    assert_eq!(limited[1]["item"], 2);
    assert_eq!(limited[2]["gateway"], "traefik");
    for (decision, rule) in limited.iter().zip(["owner", "readers", "owner"]) {
        assert_eq!(decision["decision"], "deny", "{decision}");
        assert_eq!(decision["rules"], json!([rule]), "{decision}");
        let refusal = &decision["limited"];
        assert_eq!(refusal["policy"], "allow", "{decision}");
        assert_eq!(refusal["name"], "reads", "{decision}");
        assert_eq!(refusal["refusal"], "reached", "{decision}");
        let retry = refusal["retry_after"].as_u64().unwrap();
        assert!((1..=1800).contains(&retry), "{decision}");
    }
    // The allowed reads before them, and the policy's deny, hold no `limited`.
    assert_eq!(
        all.iter()
            .filter(|d| d["decision"] == "allow" && d["limited"].is_null())
            .count(),
        6
    );

    let (code, out) = verify_cli(std::slice::from_ref(&setup.log), &setup.key_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact:"), "{out}");

    // Under the same policy: nothing flips, the limit-denied are counted apart.
    let (code, out) = replay_cli(&setup, &setup.dir.path(), false);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("replayed 10 of 10 decision(s)"), "{out}");
    assert!(
        out.contains("flips: 0 (allow → deny: 0, deny → allow: 0); unchanged: 7"),
        "{out}"
    );
    assert!(out.contains("limit-denied: 3 ("), "{out}");
    assert!(out.contains("`reads` 3"), "{out}");
    let (code, out) = replay_cli(&setup, &setup.dir.path(), true);
    assert_eq!(code, 0, "{out}");
    let report: JsonValue = serde_json::from_str(&out).unwrap();
    assert_eq!(report["limited"], 3);
    assert_eq!(report["limited_by"], json!({"reads": 3}));
    assert_eq!(report["unchanged"], 7);

    // Readers lose access: bob's three reads flip, the one the limit refused among them.
    let new = PolicyDir::new(&[
        (
            "docs.warden",
            &std::fs::read_to_string(setup.dir.path().join("docs.warden"))
                .unwrap()
                .replace(
                    "@id(\"readers\")\nallow read on Doc if subject in Group::\"readers\"\n",
                    "",
                ),
        ),
        ("data/store.json", crate::server::STORE),
    ]);
    let (code, out) = replay_cli(&setup, &new.path(), false);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("flips: 3 (allow → deny: 3, deny → allow: 0); unchanged: 5"),
        "{out}"
    );
    assert!(
        out.contains("3 × no rule allows (was allowed by readers)"),
        "{out}"
    );
    assert!(
        out.contains("item 2 at ")
            && out.contains("(was allow by readers, refused by limit `reads`)"),
        "{out}"
    );
    assert!(out.contains("limit-denied: 2 ("), "{out}");
}

/// `audit_mode = "denies"` records the decisions a limit refused: the caller was denied.
#[tokio::test]
async fn denies_mode_records_limit_denied_decisions() {
    let setup = Setup::limited("limit reads: 2 read on Doc per hour per subject");
    let mut audit = setup.audit();
    audit.mode = warden::audit::Mode::Denies;
    let all = exhaust_a_limit(&setup, audit).await;
    let names: Vec<&JsonValue> = all.iter().map(|d| &d["limited"]["name"]).collect();
    assert_eq!(
        names,
        [
            &json!("reads"),
            &json!("reads"),
            &json!("reads"),
            &JsonValue::Null
        ],
        "{all:#?}"
    );
    assert!(all.iter().all(|d| d["decision"] == "deny"), "{all:#?}");
}

/// A limit's refusal is covered by the chain like the rest of a record: hiding it (the
/// decision turned back into the policy's allow, `limited` removed) or renaming the limit is
/// an edit verify names, and resealing the chain after it breaks the next signed checkpoint.
#[tokio::test]
async fn an_edited_limit_refusal_fails_verification() {
    let setup = Setup::limited("limit reads: 2 read on Doc per hour per subject");
    exhaust_a_limit(&setup, setup.audit()).await;
    let all = lines(&setup.log);
    let at = all
        .iter()
        .position(|line| line.contains("\"limited\":{"))
        .unwrap();
    let seq = serde_json::from_str::<JsonValue>(&all[at]).unwrap()["seq"]
        .as_u64()
        .unwrap();
    let hide = |line: &mut String| {
        let start = line.find(",\"limited\":{").unwrap();
        let end = start + line[start..].find('}').unwrap() + 1;
        line.replace_range(start..end, "");
        *line = line.replacen("\"decision\":\"deny\"", "\"decision\":\"allow\"", 1);
    };
    let hidden = tampered(&setup, "hidden.jsonl", |lines| hide(&mut lines[at]));
    let (code, out) = verify_cli(&[hidden], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("broken: edited: record seq {seq} (")),
        "{out}"
    );
    let renamed = tampered(&setup, "renamed.jsonl", |lines| {
        lines[at] = lines[at].replacen("\"name\":\"reads\"", "\"name\":\"other\"", 1);
    });
    let (code, out) = verify_cli(&[renamed], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("broken: edited: record seq {seq} (")),
        "{out}"
    );
    // Resealed after the edit (hashes recomputed, without the key): the closing checkpoint's
    // signature no longer covers the chain.
    let resealed = tampered(&setup, "resealed.jsonl", |lines| {
        hide(&mut lines[at]);
        reseal(lines, at, None);
    });
    let (code, out) = verify_cli(&[resealed], &setup.key_file);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("broken: bad signature: checkpoint"), "{out}");
}
