//! `--print-config`, the precedence of file, environment and flags, every message for an
//! invalid configuration (exit 3, naming the key), and readiness at start-up.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::*;

fn print_config(file: Option<&Path>, env: &[(&str, &str)], flags: &[&str]) -> String {
    let mut command = warden();
    command.args(["serve", "--print-config"]);
    if let Some(file) = file {
        command.arg("--config").arg(file);
    }
    command.args(flags);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn print_config_shows_every_key_with_file_then_environment_then_flags() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("warden.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"unix:/run/warden/warden.sock\"\nadmin_listen = \"127.0.0.1:9001\"\n\
             body_limit = 1000\nexplain = true\nlog_level = \"debug\"\n\
             api_key_sha256 = [\"{}\"]\ntls_cert = \"/etc/warden/tls.crt\"\n\
             tls_key = \"/etc/warden/tls.key\"\n",
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let text = print_config(
        Some(&file),
        &[
            ("WARDEN_BODY_LIMIT", "2000"),
            ("WARDEN_EXPLAIN", "false"),
            ("WARDEN_LOG_LEVEL", "warn"),
        ],
        &["--log-level", "error", "--unix-socket-mode", "600"],
    );
    let value: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    // From the file.
    assert_eq!(
        value["listen"].as_str(),
        Some("unix:/run/warden/warden.sock")
    );
    assert_eq!(value["admin_listen"].as_str(), Some("127.0.0.1:9001"));
    assert_eq!(value["tls_key"].as_str(), Some("/etc/warden/tls.key"));
    // The environment over the file.
    assert_eq!(value["body_limit"].as_integer(), Some(2000));
    assert_eq!(value["explain"].as_bool(), Some(false));
    // Flags over both.
    assert_eq!(value["log_level"].as_str(), Some("error"));
    assert_eq!(value["unix_socket_mode"].as_str(), Some("0600"));
    // Defaults for the rest; the API key as its digest.
    assert_eq!(value["request_timeout_ms"].as_integer(), Some(10000));
    assert_eq!(value["policies"].as_str(), Some("./policies"));
    assert_eq!(
        value["api_key_sha256"][0].as_str(),
        Some("ab".repeat(32).as_str())
    );
    assert!(text.contains("# tls_client_ca = (not set)"), "{text}");
    // Every key the file may hold is shown, set or not.
    for key in [
        "policies",
        "listen",
        "admin_listen",
        "watch",
        "debounce_ms",
        "body_limit",
        "request_timeout_ms",
        "shutdown_timeout_ms",
        "explain",
        "require_tests",
        "trust_forwarded",
        "public_url",
        "api_key_sha256",
        "search_page_limit",
        "log_format",
        "log_level",
        "tls_cert",
        "tls_key",
        "tls_client_ca",
        "tls_client_allow",
        "unix_socket_mode",
    ] {
        assert!(
            text.contains(&format!("{key} = ")),
            "{key} missing:\n{text}"
        );
    }
}

/// Runs `warden serve` expecting exit 3; returns standard error.
fn refused(file_text: Option<&str>, env: &[(&str, &str)], flags: &[&str]) -> String {
    let root = tempfile::tempdir().unwrap();
    let mut command = warden();
    command.arg("serve");
    if let Some(text) = file_text {
        let file = root.path().join("warden.toml");
        std::fs::write(&file, text).unwrap();
        command.arg("--config").arg(&file);
    }
    command.args(flags).arg("-p").arg(bundled_policies());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    stderr
}

#[test]
fn every_invalid_configuration_exits_3_naming_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        // (configuration file, what the message must contain, and the key it names)
        ("listne = \"x\"", "unknown field `listne`", "listne"),
        (
            "body_limit = \"big\"",
            "line 1, key `body_limit`: invalid type",
            "body_limit",
        ),
        (
            "log_format = \"xml\"",
            "unknown variant `xml`",
            "log_format",
        ),
        ("explain = 1", "invalid type", "explain"),
        ("listen = \"x\"\nlisten = \"y\"", "line 2", "listen"),
        ("listen = \"localhost\"", "is not an address", "`listen`"),
        ("listen = \"unix:\"", "names no socket file", "`listen`"),
        (
            "admin_listen = \"8181\"",
            "is not an address",
            "`admin_listen`",
        ),
        ("body_limit = 0", "must be greater than 0", "`body_limit`"),
        (
            "request_timeout_ms = 0",
            "must be greater than 0",
            "`request_timeout_ms`",
        ),
        (
            "shutdown_timeout_ms = 0",
            "must be greater than 0",
            "`shutdown_timeout_ms`",
        ),
        (
            "search_page_limit = 0",
            "must be greater than 0",
            "`search_page_limit`",
        ),
        (
            "public_url = \"ftp://x\"",
            "must be an http:// or https:// URL",
            "`public_url`",
        ),
        (
            "api_key_sha256 = [\"abc\"]",
            "64 hexadecimal digits",
            "`api_key_sha256`",
        ),
        ("log_level = \"[\"", "is not a log filter", "`log_level`"),
        (
            "tls_cert = \"c.pem\"",
            "needs the certificate's private key",
            "`tls_key`",
        ),
        (
            "tls_key = \"k.pem\"",
            "needs the certificate it belongs to",
            "`tls_cert`",
        ),
        (
            "tls_client_ca = \"ca.pem\"",
            "needs `tls_cert` and `tls_key`",
            "`tls_client_ca`",
        ),
        (
            "tls_client_allow = [\"orders.internal\"]",
            "does not say which name it is: write `dns:NAME`, `uri:URI` or `cn:NAME`",
            "`tls_client_allow`",
        ),
        (
            "tls_client_allow = [\"dns:\"]",
            "has nothing after `dns:`",
            "`tls_client_allow`",
        ),
        (
            "tls_client_allow = [\"cn:orders\"]",
            "needs `tls_cert`, `tls_key` and `tls_client_ca`",
            "`tls_client_allow`",
        ),
        (
            "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_client_allow = [\"cn:orders\"]",
            "needs `tls_client_ca`: client identities are read only from certificates verified",
            "`tls_client_allow`",
        ),
        (
            "unix_socket_mode = \"rw\"",
            "is not a file mode",
            "`unix_socket_mode`",
        ),
        (
            "unix_socket_mode = \"1777\"",
            "is not a file mode",
            "`unix_socket_mode`",
        ),
        (
            "tls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"",
            "cannot read",
            "`tls_cert`",
        ),
    ];
    for (file, message, key) in cases {
        let stderr = refused(Some(file), &[], &[]);
        assert!(stderr.contains(message), "{file}: {stderr}");
        assert!(stderr.contains(key), "{file}: {stderr}");
        assert!(stderr.starts_with("error: "), "{file}: {stderr}");
    }
    // The same checks apply to the environment and the flags.
    let stderr = refused(None, &[("WARDEN_UNIX_SOCKET_MODE", "9")], &[]);
    assert!(stderr.contains("`unix_socket_mode`"), "{stderr}");
    let stderr = refused(None, &[], &["--tls-client-ca", "ca.pem"]);
    assert!(stderr.contains("`tls_client_ca`"), "{stderr}");
    let stderr = refused(None, &[("WARDEN_LISTEN", "unix:")], &[]);
    assert!(stderr.contains("`listen`"), "{stderr}");
    // An unreadable configuration file.
    let output = warden()
        .args(["serve", "--config", "/nonexistent/warden.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read configuration file"));
}

/// The client allow-list from the environment (comma-separated) and from the flag, which wins;
/// printed back as the configuration file writes it.
#[test]
fn the_client_allow_list_comes_from_the_environment_or_the_flag() {
    let tls = [
        "--tls-cert",
        "/etc/warden/tls.crt",
        "--tls-key",
        "/etc/warden/tls.key",
        "--tls-client-ca",
        "/etc/warden/clients.pem",
    ];
    let env = [(
        "WARDEN_TLS_CLIENT_ALLOW",
        "dns:Orders.Internal,uri:spiffe://example.org/ns/prod/sa/billing",
    )];
    let text = print_config(None, &env, &tls);
    let value: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        value["tls_client_allow"],
        toml::Value::Array(vec![
            "dns:orders.internal".into(),
            "uri:spiffe://example.org/ns/prod/sa/billing".into()
        ]),
        "{text}"
    );
    let mut flags = tls.to_vec();
    flags.extend(["--tls-client-allow", "cn:reporting"]);
    let text = print_config(None, &env, &flags);
    let value: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        value["tls_client_allow"],
        toml::Value::Array(vec!["cn:reporting".into()]),
        "{text}"
    );
}

/// A value the flag parser itself rejects (a number that is not one) is a usage error, exit 2,
/// naming the flag, whether it came as a flag or as its environment variable.
#[test]
fn malformed_flag_values_are_usage_errors_naming_the_flag() {
    let output = warden()
        .args(["serve", "--print-config"])
        .env("WARDEN_BODY_LIMIT", "lots")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--body-limit"));
}

/// Exec to the first answer on `/readyz`: the server binds only once the policies are loaded,
/// so its first answer is already 200, never 503. It listens on a Unix socket in the test's own
/// directory: a TCP port freed for it could be taken meanwhile by another test's server, whose
/// answer (a TLS server resets a plain request) would be mistaken for Warden's.
#[test]
fn the_first_answer_after_start_up_is_ready() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("warden.sock");
    let started = Instant::now();
    let mut child = warden()
        .args(["serve", "--watch=false", "--listen"])
        .arg(format!("unix:{}", socket.display()))
        .arg("-p")
        .arg(bundled_policies())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(60);
    let status_line = loop {
        if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&socket) {
            use std::io::Write;
            stream
                .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            break answer.lines().next().unwrap_or("").to_string();
        }
        assert!(Instant::now() < deadline, "not ready within 60 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    eprintln!("ready after {elapsed:?} (debug build)");
}

/// A configuration file setting every key, with each value written as `--print-config` writes
/// it; `source` is either `policies` or the `bundle*` keys (they exclude each other).
fn every_key(pki: &Pki, source: &str) -> String {
    let dir = pki.dir.path();
    std::fs::write(
        dir.join("audit.key"),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
    )
    .unwrap();
    let client = pki.client();
    pki.write("client", &client);
    format!(
        r#"{source}
listen = "127.0.0.1:18181"
admin_listen = "127.0.0.1:18182"
grpc_listen = "unix:{dir}/grpc.sock"
watch = false
debounce_ms = 50
body_limit = 65536
request_timeout_ms = 5000
shutdown_timeout_ms = 3000
header_timeout_ms = 4000
idle_timeout_ms = 60000
max_connections = 1000
reload_max_wait_ms = 2000
explain = true
require_tests = true
trust_forwarded = true
public_url = "https://warden.example.com"
api_key_sha256 = ["{digest}"]
search_page_limit = 50
log_format = "json"
log_level = "debug"
tls_cert = "{dir}/server.crt"
tls_key = "{dir}/server.key"
tls_client_ca = "{dir}/ca.pem"
tls_client_allow = ["dns:client.example.com", "cn:client"]
unix_socket_mode = "0600"
gateway_subject_type = "Person"
jwt_keys = ["ES256:/etc/warden/jwt.pem", "jwks:/etc/warden/jwks.json"]
jwt_issuer = "https://issuer.example.com"
jwt_audience = "warden"
jwt_leeway_s = 30
jwt_max_lifetime_s = 3600
jwt_subject_claim = "uid"
jwt_roles_claim = "groups"
jwt_claims = ["dept=department"]
jwt_cache = 1000
identity_header = "X-User"
upstream_headers = ["X-Subject=subject", "X-Dept=attr:department"]
envoy_path_prefix = "/check"
routes_ignore_case = true
authzen_subject_token = true
grpc_strip_authorization = true
capability_keys = ["k1:/etc/warden/cap.key"]
capability_grace_s = 60
capability_revocations = "/etc/warden/revoked.json"
capability_audience = "photos"
capability_header = "X-Capability"
audit_path = "{dir}/audit.log"
audit_key_file = "{dir}/audit.key"
audit_mode = "denies"
audit_sample_allows = 0.5
audit_mask = ["password"]
audit_queue = 1024
audit_when_full = "drop"
audit_fsync = "batch"
audit_fsync_interval_ms = 500
audit_checkpoint_records = 100
audit_checkpoint_interval_ms = 1000
audit_rotate_bytes = 1048576
audit_rotate_interval_ms = 3600000
rate_limit_redis = "redis://127.0.0.1:6379"
rate_limit_redis_timeout_ms = 250
rate_limit_redis_failure = "closed"
revocations_redis = "redis://127.0.0.1:6379/1"
"#,
        digest = "c0".repeat(32),
        dir = dir.display(),
    )
}

#[test]
fn print_config_of_every_key_loads_back_to_the_same_text() {
    let pki = Pki::new();
    let bundle = "bundle = \"https://bundles.example.com/policies.tar.gz\"\n\
                  bundle_public_keys = [\"/etc/warden/bundle.pub\"]\n\
                  bundle_poll_interval_s = 60\n\
                  bundle_cache_dir = \"/var/cache/warden\"\n\
                  bundle_ca_file = \"/etc/ssl/certs/ca.pem\"";
    let policies = format!("policies = \"{}\"", bundled_policies().display());
    for source in [policies.as_str(), bundle] {
        let first = pki.dir.path().join("first.toml");
        let written = every_key(&pki, source);
        std::fs::write(&first, &written).unwrap();
        let printed = print_config(Some(&first), &[], &[]);
        // Every key as written (values in their printed form), and nothing left unset.
        let expected: toml::Table = written.parse().unwrap();
        let actual: toml::Table = printed.parse().unwrap_or_else(|e| panic!("{e}\n{printed}"));
        for (key, value) in &expected {
            assert_eq!(actual.get(key), Some(value), "{key}:\n{printed}");
        }
        assert!(!printed.contains("(not set)"), "{printed}");
        // Loaded back, the same text.
        let second = pki.dir.path().join("second.toml");
        std::fs::write(&second, &printed).unwrap();
        assert_eq!(print_config(Some(&second), &[], &[]), printed);
    }
}
