//! A real nginx in front of a tiny upstream, asking Warden through `deploy/nginx/warden.conf`
//! (ports templated). Skipped when nginx is not installed, except under `CI=true`, where
//! `.ci/run` installs it and its absence is a failure.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;

use super::*;
use crate::server::{Http, TestServer};

/// The nginx binary; `None` (the test is skipped) when nginx is not installed, except under
/// `CI=true`, where that is a failure.
pub fn nginx_or_skip() -> Option<String> {
    let binary = nginx_binary();
    if binary.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nginx is not installed, and CI must run this test (.ci/run installs it)"
        );
        eprintln!("skipped: nginx is not installed (apt-get install nginx)");
    }
    binary
}

fn nginx_binary() -> Option<String> {
    for candidate in [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ] {
        if Path::new(candidate).exists() {
            return Some(candidate.to_string());
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v nginx"])
        .output()
        .ok()?;
    let path = String::from_utf8(found.stdout).ok()?.trim().to_string();
    (!path.is_empty()).then_some(path)
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Nginx(Child);

impl Drop for Nginx {
    /// A graceful stop of the master stops its workers too; killing the master alone would
    /// leave them serving, orphaned.
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Starts nginx with `deploy/nginx/warden.conf` on a free port. The port is free when chosen but
/// another test's server may take it before nginx binds it, so nginx is ready only once it has
/// written its pid file (it does so after binding its listeners), and a start that fails because
/// the address is in use is tried again on another port.
fn start_nginx(
    binary: &str,
    dir: &Path,
    warden: &std::net::SocketAddr,
    upstream: &std::net::SocketAddr,
) -> (u16, Nginx) {
    let template = std::fs::read_to_string(repo().join("deploy/nginx/warden.conf")).unwrap();
    start_nginx_site(binary, dir, |port| {
        template
            .replace("${LISTEN}", &format!("127.0.0.1:{port}"))
            .replace("${WARDEN}", &warden.to_string())
            .replace("${UPSTREAM}", &upstream.to_string())
    })
}

/// Starts nginx with the `http` block's site that `site` writes for a port (its `listen`).
pub fn start_nginx_site(binary: &str, dir: &Path, site: impl Fn(u16) -> String) -> (u16, Nginx) {
    let temp = dir.display();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let main = format!(
        "{user}worker_processes 1;\npid {temp}/nginx.pid;\nerror_log {temp}/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {temp}/access.log;\n  client_body_temp_path {temp}/body;\n  \
         proxy_temp_path {temp}/proxy;\n  fastcgi_temp_path {temp}/fastcgi;\n  \
         uwsgi_temp_path {temp}/uwsgi;\n  scgi_temp_path {temp}/scgi;\n  \
         include {temp}/warden.conf;\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    for _ in 0..5 {
        let port = free_port();
        std::fs::write(dir.join("warden.conf"), site(port)).unwrap();
        let _ = std::fs::remove_file(dir.join("nginx.pid"));
        let _ = std::fs::remove_file(dir.join("error.log"));
        let child = Command::new(binary)
            .args([
                "-p",
                &temp.to_string(),
                "-c",
                &format!("{temp}/nginx.conf"),
                "-g",
                "daemon off;",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut nginx = Nginx(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pid = std::fs::read_to_string(dir.join("nginx.pid")).unwrap_or_default();
            if !pid.trim().is_empty() {
                return (port, nginx);
            }
            if nginx.0.try_wait().unwrap().is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = nginx.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
        }
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        assert!(
            log.contains("Address already in use") || stderr.contains("Address already in use"),
            "nginx did not start: {stderr}{log}"
        );
    }
    panic!("nginx found no free port in five tries");
}

/// The upstream: echoes the path and the subject nginx passed on.
async fn upstream() -> std::net::SocketAddr {
    let app = Router::new().fallback(|uri: axum::http::Uri, headers: HeaderMap| async move {
        let subject = headers
            .get("x-warden-subject")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string();
        format!("upstream {} for {subject}", uri.path())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// Warden with `config`, behind a real nginx in front of [`upstream`].
struct Behind {
    warden: TestServer,
    port: u16,
    _nginx: Nginx,
    _dir: tempfile::TempDir,
}

/// Starts Warden and nginx; `None` (the test is skipped) when nginx is not installed, except
/// under `CI=true`.
async fn behind_nginx(config: warden::server::Config) -> Option<Behind> {
    let binary = nginx_or_skip()?;
    let warden = TestServer::start(config).await;
    let upstream = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (port, nginx) = start_nginx(&binary, dir.path(), &warden.running.address, &upstream);
    Some(Behind {
        warden,
        port,
        _nginx: nginx,
        _dir: dir,
    })
}

#[tokio::test]
async fn through_a_real_nginx() {
    let Some(Behind {
        warden,
        port,
        _nginx,
        _dir,
    }) = behind_nginx(gateway_config(&example_policies())).await
    else {
        return;
    };
    let http = Http::new(&format!("http://127.0.0.1:{port}"));
    let get = |path: &'static str, token: Option<String>| {
        let http = http.clone();
        async move {
            let auth = token.map(|t| bearer(&t));
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            http.send("GET", path, &headers, "").await
        }
    };

    let alice = sign(Algorithm::ES256, &claims("alice"));
    let allowed = get("/albums/a1/photos/p1", Some(alice.clone())).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.body, "upstream /albums/a1/photos/p1 for alice");

    let bob = sign(Algorithm::ES256, &claims("bob"));
    assert_eq!(get("/albums/a1/photos/p1", Some(bob)).await.status, 403);

    let missing = get("/albums/a1/photos/p1", None).await;
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"warden\"")
    );

    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 600);
    let expired = sign(Algorithm::ES256, &expired);
    let reply = get("/albums/a1/photos/p1", Some(expired)).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("invalid_token")
    );

    let mut tampered = alice.clone().into_bytes();
    let at = tampered.len() - 3;
    tampered[at] = if tampered[at] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        get("/albums/a1/photos/p1", Some(tampered)).await.status,
        401
    );

    // Signed with HS256 using the ES256 public key as the secret: the classic confusion.
    let public = std::fs::read(keys().join("ec.pem")).unwrap();
    let wrong_alg = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(
        get("/albums/a1/photos/p1", Some(wrong_alg)).await.status,
        401
    );
    // Signed with RS256 under a kid no RS256 key has.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("ec".to_string());
    let wrong_key = sign_with(header, &claims("alice"));
    assert_eq!(
        get("/albums/a1/photos/p1", Some(wrong_key)).await.status,
        401
    );

    // nginx passes the raw URI on: what is ambiguous is refused, not guessed.
    assert_eq!(
        get("/albums/a1/photos/%2e%2e/p1", Some(alice.clone()))
            .await
            .status,
        403
    );
    assert_eq!(get("/nothing/here", Some(alice.clone())).await.status, 403);

    warden.running.shutdown().await;
}

/// Sends `GET target` byte for byte as written (an HTTP client library would cut a `#` off,
/// or tidy the path), and returns the status and the body.
async fn raw_get(port: u16, target: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).to_string();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The paths that walked past a restricted route to a catch-all: a trailing slash, `/.`,
/// `//`, a `;` parameter, a `#`, a trailing dot, and (with `routes_ignore_case`, for upstreams
/// that ignore case) another case.
#[tokio::test]
async fn no_path_walks_past_a_route_through_a_real_nginx() {
    let policies = repo().join("tests/data/gateway/bypass");
    let mut config = gateway_config(&policies);
    config.gateway.routes_ignore_case = true;
    let Some(Behind {
        warden,
        port,
        _nginx,
        _dir,
    }) = behind_nginx(config).await
    else {
        return;
    };
    let bob = sign(Algorithm::ES256, &claims("bob"));
    let root = sign(Algorithm::ES256, &claims("root"));

    // The catch-all serves bob elsewhere; the admin area is root's.
    let (status, body) = raw_get(port, "/public/page", &bob).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "upstream /public/page for bob")
    );
    assert_eq!(raw_get(port, "/admin", &root).await.0, 200);
    assert_eq!(raw_get(port, "/admin/", &root).await.0, 200);
    let mut walked_past = Vec::new();
    for target in [
        "/admin",
        "/admin/",
        "/admin/.",
        "/admin//",
        "/admin/./",
        "/public/../admin/",
        "/admin;jsessionid=x",
        "/admin/;x",
        "/admin#x",
        "/public#/../admin",
        "/admin.",
        "/admin./users",
        "/admin%2e",
        "/Admin",
        "/ADMIN/",
        "/aDmIn/users",
    ] {
        let (status, body) = raw_get(port, target, &bob).await;
        if status != 403 {
            walked_past.push(format!("{target}: {status} {body}"));
        }
    }
    assert!(walked_past.is_empty(), "{walked_past:#?}");
    // Ignoring case, an upper-case path meets the same routes as its lower-case form.
    assert_eq!(raw_get(port, "/Public/Page/", &bob).await.0, 200);
    assert_eq!(raw_get(port, "/ADMIN/users", &root).await.0, 200);
    warden.running.shutdown().await;

    // Case-sensitive (the default), `/Admin` is another path, for upstreams that say so.
    let Some(Behind {
        warden,
        port,
        _nginx,
        _dir,
    }) = behind_nginx(gateway_config(&policies)).await
    else {
        return;
    };
    assert_eq!(raw_get(port, "/Admin", &bob).await.0, 200);
    for target in ["/admin/", "/admin;x", "/admin#x", "/admin."] {
        assert_eq!(raw_get(port, target, &bob).await.0, 403, "{target}");
    }
    warden.running.shutdown().await;
}
