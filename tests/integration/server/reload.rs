//! Hot reload of every kind, asserted by polling `/v1/status` (never by sleeping), one test
//! at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;

use super::*;

/// A rule that lets carol read every document, to switch on and off.
const CAROL_READS: &str = "@id(\"carol-reads\")\nallow read on Doc if subject == User::\"carol\"\n";

async fn carol_reads(server: &TestServer) -> bool {
    let reply = server
        .http
        .post_json(EVALUATION, &request("carol", "read", "d1"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["decision"].as_bool().unwrap()
}

async fn watched(dir: &Path) -> TestServer {
    TestServer::start(config(dir)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_in_place_reloads() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = watched(&dir.path()).await;
    assert!(!carol_reads(&server).await);
    dir.write("docs.warden", &format!("{POLICY}{CAROL_READS}"));
    let status = server.wait_for_version(&version_at(&dir.path())).await;
    assert!(carol_reads(&server).await);
    assert_eq!(status["reloads"]["success"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_then_rename_reloads() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = watched(&dir.path()).await;
    // What editors and atomic writers do: a temporary file beside, renamed over the original.
    let temporary = dir.path().join(".docs.warden.tmp");
    std::fs::write(&temporary, format!("{POLICY}{CAROL_READS}")).unwrap();
    std::fs::rename(&temporary, dir.path().join("docs.warden")).unwrap();
    server.wait_for_version(&version_at(&dir.path())).await;
    assert!(carol_reads(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_and_deleted_files_reload() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = watched(&dir.path()).await;
    dir.write("more/carol.warden", CAROL_READS);
    let status = server.wait_for_version(&version_at(&dir.path())).await;
    assert!(carol_reads(&server).await);
    assert_eq!(
        status["files"],
        json!(["data/store.json", "docs.warden", "more/carol.warden"])
    );
    std::fs::remove_file(dir.path().join("more/carol.warden")).unwrap();
    server.wait_for_version(&version_at(&dir.path())).await;
    assert!(!carol_reads(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_configmap_swap_reloads() {
    let _one = RELOAD_LOCK.lock().await;
    // The layout kubelet writes: `..<timestamp>/` holds the files, `..data` points at it, and
    // each visible name is a symlink through `..data`.
    let root = tempfile::tempdir().unwrap();
    let mount = root.path().join("policies");
    let generation = |name: &str, policy: &str| {
        let dir = mount.join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("docs.warden"), policy).unwrap();
        std::fs::write(dir.join("data/store.json"), STORE).unwrap();
    };
    generation("..2024_01_01_00_00_00.1", POLICY);
    std::os::unix::fs::symlink("..2024_01_01_00_00_00.1", mount.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/docs.warden", mount.join("docs.warden")).unwrap();
    std::os::unix::fs::symlink("..data/data", mount.join("data")).unwrap();
    let server = watched(&mount).await;
    assert_eq!(server.status().await["version"], version_at(&mount));
    assert!(!carol_reads(&server).await);

    generation("..2024_01_02_00_00_00.2", &format!("{POLICY}{CAROL_READS}"));
    std::os::unix::fs::symlink("..2024_01_02_00_00_00.2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    std::fs::remove_dir_all(mount.join("..2024_01_01_00_00_00.1")).unwrap();
    let expected = version_of(&[
        ("docs.warden", &format!("{POLICY}{CAROL_READS}")),
        ("data/store.json", STORE),
    ]);
    server.wait_for_version(&expected).await;
    assert!(carol_reads(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_directory_symlink_is_followed() {
    let _one = RELOAD_LOCK.lock().await;
    // The configured path is itself a symlink, repointed atomically at a new directory.
    let root = tempfile::tempdir().unwrap();
    let version = |name: &str, policy: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("docs.warden"), policy).unwrap();
        std::fs::write(dir.join("data/store.json"), STORE).unwrap();
        dir
    };
    version("v1", POLICY);
    let current = root.path().join("current");
    std::os::unix::fs::symlink("v1", &current).unwrap();
    let server = watched(&current).await;
    assert!(!carol_reads(&server).await);

    let v2 = version("v2", &format!("{POLICY}{CAROL_READS}"));
    std::os::unix::fs::symlink("v2", root.path().join("current.tmp")).unwrap();
    std::fs::rename(root.path().join("current.tmp"), &current).unwrap();
    server.wait_for_version(&version_at(&v2)).await;
    assert!(carol_reads(&server).await);

    // The new target is watched now: editing it in place reloads again.
    std::fs::write(v2.join("docs.warden"), POLICY).unwrap();
    server.wait_for_version(&version_at(&v2)).await;
    assert!(!carol_reads(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_change_keeps_the_old_decisions_and_shows_where() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = watched(&dir.path()).await;
    let good = version_at(&dir.path());
    dir.write(
        "docs.warden",
        &format!("{POLICY}{CAROL_READS}allow read on Doc if (\n"),
    );
    let status = server
        .wait_for("the reload error", |s| !s["last_reload_error"].is_null())
        .await;
    assert_eq!(status["version"], good);
    let error = &status["last_reload_error"]["errors"][0];
    let location = error["location"].as_str().unwrap();
    assert!(
        location.ends_with("docs.warden:22:1") || location.contains("docs.warden:2"),
        "{error:#}"
    );
    assert!(!error["message"].as_str().unwrap().is_empty());
    // Still deciding on the last good version.
    let reply = server
        .http
        .post_json(EVALUATION, &request("carol", "read", "d1"))
        .await;
    assert_eq!(reply.header("warden-policy-version"), Some(&*good));
    assert_eq!(reply.json(), json!({ "decision": false }));
    let metrics = server.http.get("/metrics").await.body;
    assert!(metrics.contains("warden_reload_failing 1"), "{metrics}");
    assert!(
        metrics.contains("warden_reload_failures_total 1"),
        "{metrics}"
    );

    // The fix serves, and the error is gone.
    dir.write("docs.warden", &format!("{POLICY}{CAROL_READS}"));
    let status = server.wait_for_version(&version_at(&dir.path())).await;
    assert!(status["last_reload_error"].is_null());
    assert!(carol_reads(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_writes_is_one_reload_or_a_few() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = TestServer::start(Config {
        debounce: Duration::from_millis(200),
        ..config(&dir.path())
    })
    .await;
    for n in 0..50 {
        dir.write("docs.warden", &format!("{POLICY}// save {n}\n"));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let status = server.wait_for_version(&version_at(&dir.path())).await;
    let reloads = ["success", "failure", "unchanged"]
        .iter()
        .map(|k| status["reloads"][k].as_u64().unwrap())
        .sum::<u64>();
    assert!((1..=5).contains(&reloads), "{reloads} reloads: {status:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_from_an_older_version_is_refused() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = watched(&dir.path()).await;
    let search = |token: &str| {
        json!({
            "subject": entity("User", "bob"),
            "action": { "name": "read" },
            "resource": { "type": "Doc" },
            "page": { "limit": 1, "token": token },
        })
    };
    let first = server
        .http
        .post_json("/access/v1/search/resource", &search(""))
        .await
        .json();
    let token = first["page"]["next_token"].as_str().unwrap().to_string();
    dir.write("docs.warden", &format!("{POLICY}{CAROL_READS}"));
    server.wait_for_version(&version_at(&dir.path())).await;
    let reply = server
        .http
        .post_json("/access/v1/search/resource", &search(&token))
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains("start the search again"),
        "{}",
        reply.body
    );
}

/// Several clients call without pause while the policy flips between two versions: no call
/// fails, and every answer is the one its `Warden-Policy-Version` header's version gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_or_mixes_versions_under_reload() {
    let _one = RELOAD_LOCK.lock().await;
    let reading = format!("{POLICY}{CAROL_READS}");
    let writing = format!(
        "{POLICY}@id(\"carol-writes\")\nallow write on Doc if subject == User::\"carol\"\n"
    );
    let version_reading = version_of(&[("docs.warden", &reading), ("data/store.json", STORE)]);
    let version_writing = version_of(&[("docs.warden", &writing), ("data/store.json", STORE)]);
    let dir = PolicyDir::new(&[("docs.warden", &reading), ("data/store.json", STORE)]);
    let server = TestServer::start(Config {
        debounce: Duration::from_millis(20),
        ..config(&dir.path())
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for client in 0..4 {
        let http = Http::new(&format!("http://{}", server.running.address));
        let (stop, answered) = (stop.clone(), answered.clone());
        let (version_reading, version_writing) = (version_reading.clone(), version_writing.clone());
        clients.push(tokio::spawn(async move {
            let batch = json!({
                "subject": entity("User", "carol"),
                "resource": entity("Doc", "d1"),
                "evaluations": [{ "action": { "name": "read" } }, { "action": { "name": "write" } }],
            });
            let single = request("carol", "read", "d1");
            let mut seen = std::collections::HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let use_batch = client % 2 == 0;
                let reply = if use_batch {
                    http.post_json(EVALUATIONS, &batch).await
                } else {
                    http.post_json(EVALUATION, &single).await
                };
                assert_eq!(reply.status, 200, "{}", reply.body);
                let version = reply.header("warden-policy-version").unwrap().to_string();
                let reads = version == version_reading;
                assert!(reads || version == version_writing, "unknown version {version}");
                let expected = if use_batch {
                    json!({ "evaluations": [{ "decision": reads }, { "decision": !reads }] })
                } else {
                    json!({ "decision": reads })
                };
                assert_eq!(reply.json(), expected, "under version {version}");
                seen.insert(version);
                answered.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    for flip in 0..10 {
        let (text, version) = if flip % 2 == 0 {
            (&writing, &version_writing)
        } else {
            (&reading, &version_reading)
        };
        dir.write("docs.warden", text);
        server.wait_for_version(version).await;
        // Let the clients answer under this version before flipping again (the status names
        // a version only once it serves, so these answers are all on it).
        let before = answered.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(30);
        while answered.load(Ordering::Relaxed) < before + 8 {
            assert!(Instant::now() < deadline, "the clients stopped answering");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = std::collections::HashSet::new();
    for client in clients {
        seen.extend(client.await.unwrap());
    }
    assert_eq!(
        seen.len(),
        2,
        "the clients did not see both versions: {seen:?}"
    );
    assert!(answered.load(Ordering::Relaxed) > 20);
    let status = server.status().await;
    assert!(
        status["reloads"]["success"].as_u64().unwrap() >= 10,
        "{status:#}"
    );
}

/// A policy test that holds for the standard directory: carol may not read d1.
const CAROL_TEST: &str = "test \"carol reads only what she owns\" {\n  deny User::\"carol\" read Doc::\"d1\"\n  allow User::\"carol\" read Doc::\"d2\" by \"owner\"\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_require_tests_a_change_whose_tests_fail_is_refused() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::new(&[
        ("docs.warden", POLICY),
        ("data/store.json", STORE),
        ("tests/carol.warden", CAROL_TEST),
    ]);
    let server = TestServer::start(Config {
        require_tests: true,
        ..config(&dir.path())
    })
    .await;
    let good = version_at(&dir.path());
    assert_eq!(server.status().await["version"], good);

    // The change loads, but its own test now fails: it must not be published.
    dir.write("docs.warden", &format!("{POLICY}{CAROL_READS}"));
    let status = server
        .wait_for("the failing test to be reported", |s| {
            !s["last_reload_error"].is_null()
        })
        .await;
    assert_eq!(status["version"], good);
    let error = &status["last_reload_error"]["errors"][0];
    let location = error["location"].as_str().unwrap();
    assert!(location.contains("tests/carol.warden:2:"), "{error:#}");
    assert!(!carol_reads(&server).await, "still the last good program");

    // Fix the test to match the new intent: now it is published.
    dir.write(
        "tests/carol.warden",
        "test \"carol reads everything\" {\n  allow User::\"carol\" read Doc::\"d1\" by \"carol-reads\"\n}\n",
    );
    let status = server.wait_for_version(&version_at(&dir.path())).await;
    assert!(status["last_reload_error"].is_null());
    assert!(carol_reads(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_require_tests_failing_policy_tests_do_not_block_a_reload() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::new(&[
        ("docs.warden", POLICY),
        ("data/store.json", STORE),
        ("tests/carol.warden", CAROL_TEST),
    ]);
    let server = watched(&dir.path()).await;
    dir.write("docs.warden", &format!("{POLICY}{CAROL_READS}"));
    server.wait_for_version(&version_at(&dir.path())).await;
    assert!(carol_reads(&server).await);
}

/// A file written a line at a time over longer than ten debounce times (a slow copy, a
/// generator writing as it goes) is loaded once whole, never half-written: here the half file
/// parses and lets carol read every document, which neither the old nor the final file allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_slowly_is_never_served_half_written() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    // Long enough that a loaded test machine does not pause the writer for that long.
    let debounce = Duration::from_millis(1000);
    let server = TestServer::start(Config {
        debounce,
        ..config(&dir.path())
    })
    .await;
    let mut lines = vec![
        "@id(\"carol-reads\")".to_string(),
        "allow read on Doc if subject == User::\"carol\"".to_string(),
    ];
    // Lines 100 ms apart: the file takes over 11 s to write (past the ten debounce times
    // the reloader used to wait at most), each line well within the debounce time of the
    // one before.
    lines.extend((0..110).map(|n| format!("// line {n} of a file written slowly")));
    lines.push("  and context has ok and context.ok == true".to_string());

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let http = server.http.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut asked = 0;
            while !stop.load(Ordering::Relaxed) {
                let reply = http
                    .post_json(EVALUATION, &request("carol", "read", "d1"))
                    .await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                assert_eq!(
                    reply.json()["decision"],
                    false,
                    "a half-written file was served (version {:?})",
                    reply.header("warden-policy-version")
                );
                asked += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            asked
        })
    };
    let path = dir.path().join("carol.warden");
    for line in &lines {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(file, "{line}").unwrap();
        drop(file);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = server.wait_for_version(&version_at(&dir.path())).await;
    stop.store(true, Ordering::Relaxed);
    assert!(watcher.await.unwrap() > 10);
    assert_eq!(status["reloads"]["success"], 1, "{status:#}");
    assert!(!carol_reads(&server).await);
    let with_ok = json!({
        "subject": entity("User", "carol"),
        "action": { "name": "read" },
        "resource": entity("Doc", "d1"),
        "context": { "ok": true },
    });
    let reply = server.http.post_json(EVALUATION, &with_ok).await;
    assert_eq!(reply.json(), json!({ "decision": true }), "{}", reply.body);
}

/// With `watch = false`, the set-up systemd's `ExecReload=kill -HUP` is for, SIGHUP reloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_when_not_watching() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = super::connections::Process::start(&[
        "--watch",
        "false",
        "--debounce-ms",
        "50",
        "-p",
        dir.path().to_str().unwrap(),
    ]);
    let http = Http::new(&format!("http://{}", server.address));
    let status = http.get("/v1/status").await.json();
    assert_eq!(status["watching"], false);
    dir.write("docs.warden", &format!("{POLICY}{CAROL_READS}"));
    let expected = version_at(&dir.path());
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = http.get("/v1/status").await.json();
        if status["version"] == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = http
        .post_json(EVALUATION, &request("carol", "read", "d1"))
        .await;
    assert_eq!(reply.json(), json!({ "decision": true }), "{}", reply.body);
    drop(http);
    server.signal("TERM");
    assert_eq!(server.exit_within(Duration::from_secs(30)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_file_with_ten_thousand_mistakes_gives_a_bounded_status() {
    let _one = RELOAD_LOCK.lock().await;
    let dir = PolicyDir::standard();
    let server = watched(&dir.path()).await;
    let good = version_at(&dir.path());
    // Every user lacks its required `department`.
    let users: Vec<JsonValue> = (0..10_000)
        .map(|i| json!({ "type": "User", "id": format!("u{i}") }))
        .collect();
    dir.write("data/more.json", &json!({ "entities": users }).to_string());
    let status = server
        .wait_for("the reload error", |s| !s["last_reload_error"].is_null())
        .await;
    assert_eq!(status["version"], good);
    let errors = status["last_reload_error"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), warden::engine::MAX_DIAGNOSTICS + 1);
    assert_eq!(
        errors.last().unwrap()["message"],
        format!(
            "{} more errors and 0 more warnings not shown",
            10_000 - warden::engine::MAX_DIAGNOSTICS
        )
    );
    let body = server.http.get("/v1/status").await.body;
    // Bounded by the number of problems shown and the context shown around each, whatever
    // the size of the file (here a single line of 350 KB).
    assert!(body.len() < 512 * 1024, "{} bytes", body.len());
}
