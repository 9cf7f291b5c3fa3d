//! Signed policy bundles: the `warden bundle` commands, the reader's refusals of hostile
//! archives, and `serve --bundle` polling a real nginx that serves bundle files (with ETags).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use warden::bundle::{self, BundleError, Limits, PublicKey, SigningKey};
use warden::server::config::BundleConfig;

use crate::gateway::nginx::{Nginx, nginx_or_skip, start_nginx_site};
use crate::server::{
    EVALUATION, POLICY, PolicyDir, STORE, TestServer, config, request, version_of,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn private_key() -> PathBuf {
    data("audit/ed25519-private.pem")
}

pub(crate) fn public_key() -> PathBuf {
    data("audit/ed25519-public.pem")
}

/// A second Ed25519 key pair, made for the test: one the servers do not know.
pub(crate) fn stranger(dir: &Path) -> SigningKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let pem = key
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap();
    let path = dir.join("stranger.pem");
    std::fs::write(&path, pem.as_bytes()).unwrap();
    SigningKey::from_file(&path).unwrap()
}

/// The test policy without its `readers` rule, through which bob reads d1.
fn without_readers() -> String {
    let rule = "@id(\"readers\")\nallow read on Doc if subject in Group::\"readers\"\n";
    assert!(POLICY.contains(rule));
    POLICY.replace(rule, "")
}

/// A test that the policy fails: carol may not read d1.
const FAILING_TEST: &str = "test \"carol reads\" {\n  allow User::\"carol\" read Doc::\"d1\"\n}\n";

fn files(policy: &str) -> Vec<(&'static str, String)> {
    vec![
        ("docs.warden", policy.to_string()),
        ("data/store.json", STORE.to_string()),
    ]
}

/// The version of [`files`] with `policy`.
fn version(policy: &str) -> String {
    version_of(&[("docs.warden", policy), ("data/store.json", STORE)])
}

/// A bundle of `files` with `revision`, signed by `key` (unsigned when `None`).
pub(crate) fn make_bundle(
    files: &[(&str, String)],
    revision: &str,
    key: Option<&SigningKey>,
) -> Vec<u8> {
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let version = version_of(&borrowed);
    let map: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
        .collect();
    let bytes = bundle::pack(&map, &version, revision, jiff::Timestamp::UNIX_EPOCH).unwrap();
    match key {
        Some(key) => bundle::read(&bytes, &Limits::default())
            .unwrap()
            .sign(key)
            .unwrap(),
        None => bytes,
    }
}

pub(crate) fn signing_key() -> SigningKey {
    SigningKey::from_file(&private_key()).unwrap()
}

/// Replaces `path` whole (write, then rename), as a publisher should.
pub(crate) fn publish(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

fn bundle_config(source: &str, cache: &Path) -> warden::server::Config {
    let mut config = config(&cache.join("current"));
    config.watch = false;
    config.require_tests = true;
    config.bundle = Some(BundleConfig {
        source: bundle::fetch::Source::parse(source).unwrap(),
        public_keys: vec![public_key()],
        poll_interval: Duration::from_millis(300),
        cache_dir: cache.to_path_buf(),
        ca_file: PathBuf::from(BundleConfig::DEFAULT_CA_FILE),
    });
    config
}

async fn bob_reads(server: &TestServer) -> (bool, String) {
    let reply = server
        .http
        .post_json(EVALUATION, &request("bob", "read", "d1"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let version = reply.header("warden-policy-version").unwrap().to_string();
    (reply.json()["decision"].as_bool().unwrap(), version)
}

/// nginx serving `root` as static files (ETags on, as by default); `None` when nginx is not
/// installed, except under `CI=true`.
pub(crate) fn static_nginx(root: &Path, scratch: &Path) -> Option<(u16, Nginx)> {
    let binary = nginx_or_skip()?;
    let root = root.display().to_string();
    Some(start_nginx_site(&binary, scratch, |port| {
        format!("server {{\n  listen 127.0.0.1:{port};\n  root {root};\n  etag on;\n}}\n")
    }))
}

/// Stops nginx (its workers too) and waits until its port is closed.
pub(crate) fn stop_nginx(nginx: Nginx, port: u16) {
    drop(nginx);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "nginx did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------
// The commands.

/// `warden bundle build -p DIR -o FILE ...`.
fn build(dir: &Path, file: &Path, more: &[&str]) -> std::process::Output {
    let dir = dir.display().to_string();
    let file = file.display().to_string();
    let mut args = vec!["bundle", "build", "-p", &dir, "-o", &file];
    args.extend_from_slice(more);
    warden(&args)
}

/// `warden bundle verify --public-key KEY FILE`.
fn verify_with(key: &Path, file: &Path) -> std::process::Output {
    warden(&[
        "bundle",
        "verify",
        "--public-key",
        &key.display().to_string(),
        &file.display().to_string(),
    ])
}

fn warden(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

#[test]
fn build_sign_verify_and_inspect() {
    let dir = PolicyDir::standard();
    let out = tempfile::tempdir().unwrap();
    let one = out.path().join("one.tar.gz");
    let two = out.path().join("two.tar.gz");
    for file in [&one, &two] {
        let built = build(&dir.path(), file, &["--revision", "release-1"]);
        assert!(built.status.success(), "{built:?}");
    }
    // Deterministic: the same directory at the same SOURCE_DATE_EPOCH packs to the same bytes.
    assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());

    let unsigned = verify_with(&public_key(), &one);
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unsigned.stderr).contains("not signed"));

    let signed = warden(&[
        "bundle",
        "sign",
        "--key",
        &private_key().display().to_string(),
        &one.display().to_string(),
    ]);
    assert!(signed.status.success(), "{signed:?}");
    let verified = verify_with(&public_key(), &one);
    assert!(verified.status.success(), "{verified:?}");
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(text.contains("revision release-1"), "{text}");

    let other = verify_with(&data("audit/other-ed25519-public.pem"), &one);
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stderr).contains("not one of the configured"));

    let inspected = warden(&[
        "bundle",
        "inspect",
        "--format",
        "json",
        &one.display().to_string(),
    ]);
    assert!(inspected.status.success());
    let json: serde_json::Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(json["manifest"]["revision"], "release-1");
    assert_eq!(json["manifest"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        json["manifest"]["version"],
        crate::server::version_at(&dir.path())
    );
    assert!(json["manifest"]["files"]["docs.warden"]["sha256"].is_string());
    assert!(json["signature"]["key_id"].is_string());
}

#[test]
fn build_refuses_a_directory_whose_tests_fail() {
    let dir = PolicyDir::new(&[
        ("docs.warden", &format!("{POLICY}{FAILING_TEST}")),
        ("data/store.json", STORE),
    ]);
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("b.tar.gz");
    let built = build(&dir.path(), &file, &[]);
    assert_eq!(built.status.code(), Some(3), "{built:?}");
    assert!(String::from_utf8_lossy(&built.stderr).contains("no bundle written"));
    assert!(!file.exists());

    let broken = PolicyDir::new(&[("docs.warden", "allow read on Nothing if\n")]);
    let built = build(&broken.path(), &file, &[]);
    assert_eq!(built.status.code(), Some(3), "{built:?}");
    assert!(!file.exists());
}

// ---------------------------------------------------------------------------------------
// Hostile archives: refused before anything is written.

/// A tar.gz whose members are written raw: names and kinds a real bundle never has.
type Member<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);

fn hostile(members: &[Member<'_>]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (name, kind, bytes, link) in members {
        let mut header = tar::Header::new_gnu();
        // Written into the header bytes: `set_path` itself refuses `..` and absolute names.
        let field = &mut header.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, *bytes).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn hostile_members_are_refused() {
    use tar::EntryType::{Block, Char, Link, Regular, Symlink};
    let manifest: Member<'_> = ("manifest.json", Regular, b"{}", None);
    let cases: Vec<(Vec<Member<'_>>, &str)> = vec![
        (
            vec![manifest, ("files/../../etc/x", Regular, b"x", None)],
            "BadName",
        ),
        (
            vec![manifest, ("/etc/passwd", Regular, b"x", None)],
            "BadName",
        ),
        (
            vec![manifest, ("files/a//b", Regular, b"x", None)],
            "BadName",
        ),
        (
            vec![
                manifest,
                ("files/link.warden", Symlink, b"", Some("/etc/passwd")),
            ],
            "NotAFile",
        ),
        (
            vec![
                manifest,
                ("files/hard.warden", Link, b"", Some("manifest.json")),
            ],
            "NotAFile",
        ),
        (vec![manifest, ("files/dev", Char, b"", None)], "NotAFile"),
        (vec![manifest, ("files/blk", Block, b"", None)], "NotAFile"),
        (
            vec![manifest, ("elsewhere.txt", Regular, b"x", None)],
            "Stray",
        ),
        (vec![manifest, manifest], "Duplicate"),
        (vec![("files/a.warden", Regular, b"x", None)], "NoManifest"),
    ];
    for (members, expected) in cases {
        let bytes = hostile(&members);
        let error = bundle::read(&bytes, &Limits::default()).unwrap_err();
        let name = format!("{error:?}");
        assert!(name.starts_with(expected), "{members:?}: {name}");
    }
}

#[test]
fn a_gzip_bomb_stops_at_the_total_cap() {
    // 64 MiB of zeros in one member compresses to about 64 KiB.
    let zeros = vec![0u8; 64 * 1024 * 1024];
    let bytes = hostile(&[("files/zeros.json", tar::EntryType::Regular, &zeros, None)]);
    assert!(bytes.len() < 1024 * 1024);
    let limits = Limits {
        member: u64::MAX,
        total: 8 * 1024 * 1024,
        members: 10,
    };
    let error = bundle::read(&bytes, &limits).unwrap_err();
    assert!(matches!(error, BundleError::TooLarge { .. }), "{error:?}");
    let limits = Limits {
        member: 1024,
        ..Limits::default()
    };
    let error = bundle::read(&bytes, &limits).unwrap_err();
    assert!(
        matches!(error, BundleError::MemberTooLarge { .. }),
        "{error:?}"
    );
}

#[test]
fn unpacking_writes_only_inside_a_fresh_directory() {
    let key = signing_key();
    let bytes = make_bundle(&files(POLICY), "r1", Some(&key));
    let archive = bundle::read(&bytes, &Limits::default()).unwrap();
    archive
        .verify(&[PublicKey::from_file(&public_key()).unwrap()])
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("unpacked");
    archive.unpack(&dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("docs.warden")).unwrap(),
        POLICY
    );
    // An existing directory is never written into.
    assert!(archive.unpack(&dir).is_err());
}

#[test]
fn the_fuzz_corpus_reads_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/bundle_read");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(archive) = bundle::read(&bytes, &Limits::default()) {
            read += 1;
            archive.check_files().unwrap();
            archive
                .verify(&[PublicKey::from_file(&public_key()).unwrap()])
                .unwrap();
        }
    }
    // The signed seed at least.
    assert!(read >= 1, "no bundle in {}", dir.display());
}

// ---------------------------------------------------------------------------------------
// serve --bundle

/// Waits until the bundle status satisfies `done`.
async fn wait_bundle(
    server: &TestServer,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    server.wait_for(what, |s| done(&s["bundle"])).await["bundle"].clone()
}

/// A temporary directory with `site/` (nginx's root), `nginx/` (its files) and the path of
/// Warden's bundle cache.
fn places() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let site = root.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let scratch = root.path().join("nginx");
    std::fs::create_dir(&scratch).unwrap();
    let cache = root.path().join("cache");
    (root, site, scratch, cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_signed_bundle_serves_within_the_poll_interval_and_bad_ones_are_refused() {
    let (root, site, scratch, cache) = places();
    let key = signing_key();
    let file = site.join("policies.tar.gz");
    publish(&file, &make_bundle(&files(POLICY), "r1", Some(&key)));
    let Some((port, _nginx)) = static_nginx(&site, &scratch) else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/policies.tar.gz");
    let server = TestServer::start(bundle_config(&url, &cache)).await;
    let status = server.status().await;
    assert_eq!(status["bundle"]["revision"], "r1");
    let v1 = version(POLICY);
    assert_eq!(status["version"], v1.as_str());
    assert_eq!(bob_reads(&server).await, (true, v1.clone()));

    // Unchanged: nginx answers 304 to the ETag.
    wait_bundle(&server, "a 304", |b| {
        b["fetches"]["not_modified"].as_u64() >= Some(1)
    })
    .await;

    // A new revision: served within the poll interval (plus the test's polling).
    let v2 = version(&without_readers());
    let published = Instant::now();
    publish(
        &file,
        &make_bundle(&files(&without_readers()), "r2", Some(&key)),
    );
    server.wait_for_version(&v2).await;
    let took = published.elapsed();
    // The program is published first, then its bundle's record: wait for both.
    wait_bundle(&server, "r2 recorded", |b| b["revision"] == "r2").await;
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(bob_reads(&server).await, (false, v2.clone()));
    let metrics = server.http.get("/metrics").await.body;
    assert!(
        metrics.contains(&format!(
            "warden_bundle_info{{revision=\"r2\",version=\"{v2}\"}} 1"
        )),
        "{metrics}"
    );
    assert!(cache.join("current").join("docs.warden").exists());

    // Signed with a key the server does not know: refused, r2 keeps serving.
    let strange = stranger(root.path());
    publish(&file, &make_bundle(&files(POLICY), "r3", Some(&strange)));
    let bundle = wait_bundle(&server, "an unknown key refused", |b| b["refused"] == 1).await;
    let message = bundle["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not one of the configured public keys"),
        "{message}"
    );
    assert_eq!(bundle["revision"], "r2");
    assert_eq!(bob_reads(&server).await, (false, v2.clone()));
    let metrics = server.http.get("/metrics").await.body;
    assert!(metrics.contains("warden_bundle_failing 1"), "{metrics}");

    // Unsigned: refused.
    publish(&file, &make_bundle(&files(POLICY), "r4", None));
    wait_bundle(&server, "an unsigned bundle refused", |b| b["refused"] == 2).await;

    // Truncated (a download cut short, stored whole by a careless publisher): refused.
    let whole = make_bundle(&files(POLICY), "r5", Some(&key));
    publish(&file, &whole[..whole.len() / 2]);
    let bundle = wait_bundle(&server, "a truncated bundle refused", |b| b["refused"] == 3).await;
    let message = bundle["last_error"]["message"].as_str().unwrap();
    assert!(message.contains("truncated"), "{message}");

    // Signed, but its own tests fail: refused by the test gate.
    let failing = format!("{POLICY}{FAILING_TEST}");
    publish(&file, &make_bundle(&files(&failing), "r6", Some(&key)));
    let status = server
        .wait_for("a failing bundle refused", |s| s["bundle"]["refused"] == 4)
        .await;
    assert!(status["last_reload_error"].is_object(), "{status:#}");
    assert_eq!(status["bundle"]["revision"], "r2");
    assert_eq!(status["version"], v2.as_str());

    // A hostile archive with a symbolic link: refused before anything is written.
    publish(
        &file,
        &hostile(&[
            ("manifest.json", tar::EntryType::Regular, b"{}", None),
            (
                "files/x.warden",
                tar::EntryType::Symlink,
                b"",
                Some("/etc/passwd"),
            ),
        ]),
    );
    let bundle = wait_bundle(&server, "a symlink refused", |b| b["refused"] == 5).await;
    assert!(
        bundle["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{bundle:#}"
    );
    assert_eq!(bob_reads(&server).await, (false, v2.clone()));
    // Only the serving bundle's directory is left in the cache.
    assert_eq!(
        std::fs::read_dir(cache.join("unpacked")).unwrap().count(),
        1
    );

    // A good one again clears the error.
    let v1_again = make_bundle(&files(POLICY), "r7", Some(&key));
    publish(&file, &v1_again);
    server.wait_for_version(&v1).await;
    // The program is published first, then its bundle's record: wait for both.
    let bundle = wait_bundle(&server, "r7 recorded", |b| b["revision"] == "r7").await;
    assert!(bundle["last_error"].is_null(), "{bundle:#}");
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_the_bundle_server_down_serves_the_cached_bundle() {
    let (root, site, scratch, cache) = places();
    let key = signing_key();
    publish(
        &site.join("b.tar.gz"),
        &make_bundle(&files(&without_readers()), "r1", Some(&key)),
    );
    let Some((port, nginx)) = static_nginx(&site, &scratch) else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/b.tar.gz");
    let v1 = version(&without_readers());
    let server = TestServer::start(bundle_config(&url, &cache)).await;
    assert_eq!(server.status().await["version"], v1.as_str());
    server.running.shutdown().await;

    stop_nginx(nginx, port);
    let server = TestServer::start(bundle_config(&url, &cache)).await;
    let status = server.status().await;
    assert_eq!(status["version"], v1.as_str());
    assert_eq!(status["bundle"]["revision"], "r1");
    assert_eq!(status["bundle"]["from_cache"], true);
    assert!(
        status["bundle"]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{status:#}"
    );
    assert_eq!(bob_reads(&server).await, (false, v1));

    // No cache and no server: nothing to serve, and it says so.
    let empty = root.path().join("empty-cache");
    let error = warden::server::start(&bundle_config(&url, &empty))
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("no bundle to serve"), "{error}");

    // The bundle server comes back with the same file: 304 to the cached entity tag, and the
    // error clears.
    let binary = nginx_or_skip().unwrap();
    let served = site.display().to_string();
    let (_, _nginx) = start_nginx_site(&binary, &scratch, |_| {
        format!("server {{\n  listen 127.0.0.1:{port};\n  root {served};\n}}\n")
    });
    let bundle = wait_bundle(&server, "the source back", |b| {
        b["from_cache"] == false && b["last_error"].is_null()
    })
    .await;
    assert!(
        bundle["fetches"]["not_modified"].as_u64() >= Some(1),
        "{bundle:#}"
    );
    assert_eq!(bundle["revision"], "r1");
    server.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_bundle_file_is_polled() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let file = root.path().join("b.tar.gz");
    let key = signing_key();
    publish(&file, &make_bundle(&files(POLICY), "r1", Some(&key)));
    let server = TestServer::start(bundle_config(&file.display().to_string(), &cache)).await;
    assert!(bob_reads(&server).await.0);
    publish(
        &file,
        &make_bundle(&files(&without_readers()), "r2", Some(&key)),
    );
    let v2 = version(&without_readers());
    server.wait_for_version(&v2).await;
    wait_bundle(&server, "r2 recorded", |b| b["revision"] == "r2").await;
    assert!(!bob_reads(&server).await.0);
    server.running.shutdown().await;
}

#[test]
fn the_configuration_keys_resolve() {
    use warden::server::{Config, ConfigLayer};
    let layer = ConfigLayer {
        bundle: Some("https://bundles.example/p.tar.gz".to_string()),
        bundle_public_keys: Some(vec![public_key()]),
        bundle_poll_interval_s: Some(5),
        bundle_cache_dir: Some(PathBuf::from("/var/cache/warden")),
        ..ConfigLayer::default()
    };
    let config = Config::resolve(layer.clone()).unwrap();
    assert_eq!(config.policies, PathBuf::from("/var/cache/warden/current"));
    assert!(config.require_tests);
    let bundle = config.bundle.as_ref().unwrap();
    assert_eq!(bundle.poll_interval, Duration::from_secs(5));
    // The effective configuration reads back to the same.
    let text = config.effective_toml();
    let again: ConfigLayer = toml::from_str(&text).unwrap();
    assert_eq!(Config::resolve(again).unwrap().bundle, config.bundle);

    let no_keys = ConfigLayer {
        bundle_public_keys: None,
        ..layer.clone()
    };
    assert!(
        Config::resolve(no_keys)
            .unwrap_err()
            .to_string()
            .contains("bundle_public_keys")
    );
    let both = ConfigLayer {
        policies: Some(PathBuf::from("p")),
        ..layer
    };
    assert!(
        Config::resolve(both)
            .unwrap_err()
            .to_string()
            .contains("exclude each other")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_over_https_is_fetched_against_the_configured_cas() {
    let (_root, site, scratch, cache) = places();
    publish(
        &site.join("b.tar.gz"),
        &make_bundle(&files(POLICY), "tls-1", Some(&signing_key())),
    );
    let Some(binary) = nginx_or_skip() else {
        return;
    };
    let pki = crate::sidecar::Pki::new();
    let (cert, key) = (pki.path("server.crt"), pki.path("server.key"));
    let served = site.display().to_string();
    let (port, _nginx) = start_nginx_site(&binary, &scratch, |port| {
        format!(
            "server {{\n  listen 127.0.0.1:{port} ssl;\n  ssl_certificate {};\n  ssl_certificate_key {};\n  root {served};\n}}\n",
            cert.display(),
            key.display()
        )
    });
    let url = format!("https://localhost:{port}/b.tar.gz");

    let mut trusting = bundle_config(&url, &cache);
    if let Some(bundle) = &mut trusting.bundle {
        bundle.ca_file = pki.path("ca.pem");
    }
    let server = TestServer::start(trusting).await;
    assert_eq!(server.status().await["bundle"]["revision"], "tls-1");
    server.running.shutdown().await;

    // The system's CAs do not know the test CA: no bundle, and no cache to fall back on.
    let untrusting = bundle_config(&url, &cache.with_file_name("other-cache"));
    let error = warden::server::start(&untrusting).await.err().unwrap();
    assert!(error.to_string().contains("no bundle to serve"), "{error}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever a directory holds, its bundle reads back to the same files, verifies once
    /// signed, and unpacks to exactly those files.
    #[test]
    fn every_bundle_round_trips(
        files in proptest::collection::btree_map(
            "[a-z]{1,8}(/[a-z]{1,8}){0,2}\\.(warden|json)",
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            0..8,
        ),
        revision in "[A-Za-z0-9_.:+-]{1,40}",
    ) {
        let bytes = bundle::pack(&files, "v", &revision, jiff::Timestamp::UNIX_EPOCH).unwrap();
        let signed = bundle::read(&bytes, &Limits::default())
            .unwrap()
            .sign(&signing_key())
            .unwrap();
        let archive = bundle::read(&signed, &Limits::default()).unwrap();
        proptest::prop_assert_eq!(&archive.files, &files);
        proptest::prop_assert_eq!(&archive.manifest.revision, &revision);
        archive
            .verify(&[PublicKey::from_file(&public_key()).unwrap()])
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("b");
        archive.unpack(&dir).unwrap();
        for (name, contents) in &files {
            proptest::prop_assert_eq!(&std::fs::read(dir.join(name)).unwrap(), contents);
        }
    }
}
