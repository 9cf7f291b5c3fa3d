//! The fleet of #25: three `warden serve` replicas behind a real nginx `upstream` (round
//! robin), fed signed bundles by a real nginx serving static files, sharing revocations through
//! Redis, under steady load whose right answer is known for each policy version.
//!
//! Propagation times are printed (p50/p99) for the notes; the only bounds asserted are the
//! issue's: a new bundle everywhere within the poll interval plus [`ACTIVATION_BOUND`], a
//! revocation everywhere within a second.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{percentile, shared_redis_or_skip};
use crate::bundle::{
    make_bundle, public_key, publish, signing_key, static_nginx, stop_nginx, stranger,
};
use crate::capability::processes::{Server, mint_with_cli, warden};
use crate::capability::{GLASSHOUSE, KeyDir, decide, greenhouse};
use crate::fleet::revocations::refused_everywhere;
use crate::gateway::nginx::{nginx_or_skip, start_nginx_site};
use crate::server::{EVALUATION, Http, spawn_server};

/// How often replicas poll for a bundle (each poll ± a tenth at random).
const POLL: Duration = Duration::from_secs(1);

/// The most a replica takes, after the poll that sees a new bundle, to fetch, verify, test and
/// activate it, on a busy two-core machine.
const ACTIVATION_BOUND: Duration = Duration::from_secs(5);

/// The rule that the second version adds: kai may sell the house.
const KAI_SELLS: &str = "\n@id(\"kai-sells\")\nallow sell on House if subject == User::\"kai\"\n";

/// The greenhouse example's files, its policy followed by `extra`.
fn greenhouse_files(extra: &str) -> Vec<(&'static str, String)> {
    let read = |name: &str| std::fs::read_to_string(greenhouse().join(name)).unwrap();
    vec![
        ("policy.warden", read("policy.warden") + extra),
        ("data/entities.json", read("data/entities.json")),
        ("tests/greenhouse.warden", read("tests/greenhouse.warden")),
    ]
}

fn replica(url: &str, cache: &Path, keys_dir: &KeyDir, redis: &str) -> Server {
    let mut command = warden();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--watch=false"])
        .args(["--log-format", "json", "--bundle", url])
        .arg("--bundle-public-keys")
        .arg(public_key())
        .args(["--bundle-poll-interval-s", &POLL.as_secs().to_string()])
        .arg("--bundle-cache-dir")
        .arg(cache)
        .arg("--capability-keys")
        .arg(keys_dir.spec("k1"))
        .args(["--revocations-redis", redis]);
    spawn_server(command)
}

async fn status(server: &Server) -> serde_json::Value {
    let reply = server.http.get("/v1/status").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// Polls every replica until `done` holds for its status; how long each took.
async fn until_all(
    replicas: &[&Server],
    what: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Vec<Duration> {
    let started = Instant::now();
    let mut took = Vec::new();
    for replica in replicas {
        let probe = async || {
            let status = status(replica).await;
            if done(&status) { Ok(()) } else { Err(status) }
        };
        let left = limit.saturating_sub(started.elapsed());
        crate::support::poll(what, left, Duration::from_millis(10), probe).await;
        took.push(started.elapsed());
    }
    took
}

/// Steady load through the balancer: kai sells the house, again and again; every answer's
/// (version, decision) is kept.
fn load(balancer: Http, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<(String, bool)>> {
    tokio::spawn(async move {
        let mut answers = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let reply = balancer
                .post_json(
                    EVALUATION,
                    &json!({
                        "subject": { "type": "User", "id": "kai" },
                        "action": { "name": "sell" },
                        "resource": { "type": "House", "id": "home" },
                    }),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            let version = reply.header("warden-policy-version").unwrap().to_string();
            answers.push((version, reply.json()["decision"].as_bool().unwrap()));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        answers
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behind_nginx_converge_refuse_strangers_share_revocations_and_restart_from_cache()
 {
    let test = "three_replicas_behind_nginx_converge_refuse_strangers_share_revocations_and_restart_from_cache";
    let Some(redis) = shared_redis_or_skip(test) else {
        return;
    };
    let Some(nginx) = nginx_or_skip() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| -> PathBuf {
        let path = root.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    };
    let (site, bundle_scratch, balancer_scratch) = (dir("site"), dir("bundles"), dir("balancer"));
    let key = signing_key();
    let file = site.join("greenhouse.tar.gz");
    publish(&file, &make_bundle(&greenhouse_files(""), "r1", Some(&key)));
    let (bundle_port, bundle_server) = static_nginx(&site, &bundle_scratch).unwrap();
    let url = format!("http://127.0.0.1:{bundle_port}/greenhouse.tar.gz");
    let keys_dir = KeyDir::new(&["k1"]);
    let caches: Vec<PathBuf> = (0..3)
        .map(|i| root.path().join(format!("cache{i}")))
        .collect();
    let mut replicas: Vec<Server> = caches
        .iter()
        .map(|cache| replica(&url, cache, &keys_dir, &redis))
        .collect();
    let upstream: String = replicas
        .iter()
        .map(|r| format!("    server {};\n", r.address))
        .collect();
    let (balancer_port, _balancer) = start_nginx_site(&nginx, &balancer_scratch, |port| {
        format!(
            "upstream wardens {{\n{upstream}    keepalive 8;\n}}\n\
             server {{\n  listen 127.0.0.1:{port};\n  location / {{\n    proxy_pass http://wardens;\n    \
             proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n  }}\n}}\n"
        )
    });
    let all: Vec<&Server> = replicas.iter().collect();
    let v1 = status(all[0]).await["version"]
        .as_str()
        .unwrap()
        .to_string();
    for replica in &all {
        let status = status(replica).await;
        assert_eq!(status["version"], v1.as_str(), "{status:#}");
        assert_eq!(status["bundle"]["revision"], "r1", "{status:#}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let balancer = Http::new(&format!("http://127.0.0.1:{balancer_port}"));
    let loads: Vec<_> = (0..3)
        .map(|_| load(balancer.clone(), stop.clone()))
        .collect();

    // A new signed bundle: every replica serves it within the poll interval plus the bound.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published = Instant::now();
    publish(
        &file,
        &make_bundle(&greenhouse_files(KAI_SELLS), "r2", Some(&key)),
    );
    let limit = POLL + POLL / 10 + ACTIVATION_BOUND;
    let took = until_all(&all, "r2 everywhere", limit, |s| {
        s["bundle"]["revision"] == "r2"
    })
    .await;
    eprintln!(
        "bundle r2: served everywhere after p50 {:?}, p99 {:?} (poll {POLL:?})",
        percentile(&took, 50),
        percentile(&took, 99)
    );
    assert!(published.elapsed() < limit + Duration::from_secs(1));
    let v2 = status(all[0]).await["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(v1, v2);

    // Signed with a key nobody configured: refused everywhere, r2 keeps serving.
    let strange = stranger(root.path());
    publish(
        &file,
        &make_bundle(&greenhouse_files(""), "r3", Some(&strange)),
    );
    until_all(
        &all,
        "the stranger refused everywhere",
        Duration::from_secs(30),
        |s| s["bundle"]["refused"].as_u64() >= Some(1),
    )
    .await;
    for replica in &all {
        let status = status(replica).await;
        assert_eq!(status["bundle"]["revision"], "r2", "{status:#}");
        assert_eq!(status["version"], v2.as_str(), "{status:#}");
        let message = status["bundle"]["last_error"]["message"].to_string();
        assert!(
            message.contains("not one of the configured public keys"),
            "{message}"
        );
    }

    // A revocation through one replica: refused by all three within a second.
    let token = mint_with_cli(&keys_dir);
    for replica in &all {
        assert!(decide(&replica.http, "nadia", "water", GLASSHOUSE, Some(&token)).await);
    }
    let id = warden::capability::parse(&token).unwrap().id().to_string();
    let revoked = Instant::now();
    let reply = all[1]
        .http
        .post_json("/v1/capabilities/revoke", &json!({ "id": id }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let took = refused_everywhere(&all, &token, revoked).await;
    eprintln!(
        "revocation: refused everywhere after p50 {:?}, p99 {:?}",
        percentile(&took, 50),
        percentile(&took, 99)
    );
    for took in &took {
        assert!(*took < Duration::from_secs(1), "{took:?}");
    }

    // Steady load stops: no answer disagreed with the version it named.
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for load in loads {
        answers.extend(load.await.unwrap());
    }
    let wrong: Vec<_> = answers
        .iter()
        .filter(|(version, decision)| {
            !((*version == v1 && !*decision) || (*version == v2 && *decision))
        })
        .collect();
    let on_v2 = answers.iter().filter(|(version, _)| *version == v2).count();
    eprintln!("{} answers under load, {on_v2} on r2", answers.len());
    assert!(
        wrong.is_empty(),
        "answers inconsistent with their version: {wrong:?}"
    );
    assert!(on_v2 > 0);

    // The bundle server stops; a replica restarts and serves the last good bundle.
    drop(all);
    stop_nginx(bundle_server, bundle_port);
    let restarted = replicas.pop().unwrap();
    drop(restarted);
    let restarted = replica(&url, &caches[2], &keys_dir, &redis);
    let status = status(&restarted).await;
    assert_eq!(status["version"], v2.as_str(), "{status:#}");
    assert_eq!(status["bundle"]["revision"], "r2", "{status:#}");
    assert_eq!(status["bundle"]["from_cache"], true, "{status:#}");
    // It kept the revocation too (read from Redis at start).
    assert!(!decide(&restarted.http, "nadia", "water", GLASSHOUSE, Some(&token)).await);
}
