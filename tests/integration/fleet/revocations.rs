//! Revocations shared through Redis: revoked through one of three replicas (each without a
//! revocation file) or by `warden capability revoke --revocations-redis`, a token is refused by
//! all three within a second; a replica started later reads the stored set.

use std::time::{Duration, Instant};

use super::{percentile, shared_redis_or_skip};
use crate::capability::processes::{Server, mint_with_cli, succeeded, warden};
use crate::capability::{GLASSHOUSE, KeyDir, decide, greenhouse};
use crate::server::spawn_server;

/// `warden serve` for the greenhouse with key `k1`, sharing revocations through `redis` only.
pub fn replica(keys_dir: &KeyDir, redis: &str) -> Server {
    let mut command = warden();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--watch=false"])
        .args(["--log-format", "json", "--revocations-redis", redis])
        .arg("--policies")
        .arg(greenhouse())
        .arg("--capability-keys")
        .arg(keys_dir.spec("k1"));
    spawn_server(command)
}

/// Each replica's time, from `since`, to refuse `token` (20 s at most).
pub async fn refused_everywhere(
    replicas: &[&Server],
    token: &str,
    since: Instant,
) -> Vec<Duration> {
    let mut took = Vec::new();
    for replica in replicas {
        while decide(&replica.http, "nadia", "water", GLASSHOUSE, Some(token)).await {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "the token still works 20 s after its revocation"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        took.push(since.elapsed());
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_is_refused_on_all_three_within_a_second() {
    let test = "a_revocation_on_one_replica_is_refused_on_all_three_within_a_second";
    let Some(url) = shared_redis_or_skip(test) else {
        return;
    };
    let keys_dir = KeyDir::new(&["k1"]);
    let replicas: Vec<Server> = (0..3).map(|_| replica(&keys_dir, &url)).collect();
    let all: Vec<&Server> = replicas.iter().collect();
    let one = mint_with_cli(&keys_dir);
    let two = mint_with_cli(&keys_dir);
    for server in &all {
        for token in [&one, &two] {
            assert!(decide(&server.http, "nadia", "water", GLASSHOUSE, Some(token)).await);
        }
    }

    // Through the first replica's API.
    let id = warden::capability::parse(&one).unwrap().id().to_string();
    let revoked = Instant::now();
    let reply = replicas[0]
        .http
        .post_json("/v1/capabilities/revoke", &serde_json::json!({ "id": id }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut took = refused_everywhere(&all, &one, revoked).await;

    // By the CLI, pointed at Redis alone (the time includes the CLI's start).
    let revoked = Instant::now();
    let output = warden()
        .args(["capability", "revoke", &two, "--revocations-redis", &url])
        .output()
        .unwrap();
    succeeded(&output);
    took.extend(refused_everywhere(&all, &two, revoked).await);
    eprintln!(
        "revocation through Redis: refused after p50 {:?}, p99 {:?}, max {:?} ({} replicas × 2)",
        percentile(&took, 50),
        percentile(&took, 99),
        took.iter().max().unwrap(),
        all.len()
    );
    for took in &took {
        assert!(*took < Duration::from_secs(1), "{took:?}");
    }

    // A replica that starts later reads the stored set.
    let later = replica(&keys_dir, &url);
    for token in [&one, &two] {
        assert!(!decide(&later.http, "nadia", "water", GLASSHOUSE, Some(token)).await);
    }
}
