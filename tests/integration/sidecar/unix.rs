//! The decision API and the operations endpoints on Unix domain sockets.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use warden::server::{self, Listen, ServeError};

use super::*;

async fn connect(path: &Path) -> tokio::net::UnixStream {
    tokio::net::UnixStream::connect(path).await.unwrap()
}

#[tokio::test]
async fn decides_over_a_unix_socket_with_the_configured_mode_and_removes_it_at_shutdown() {
    let dir = PolicyDir::standard();
    let socket = dir.root.path().join("warden.sock");
    let config = server::Config {
        listen: Listen::Unix(socket.clone()),
        unix_socket_mode: 0o600,
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    assert_eq!(running.endpoint, Listen::Unix(socket.clone()));
    let metadata = std::fs::metadata(&socket).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);

    let reply = send_over(
        connect(&socket).await,
        "POST",
        EVALUATION,
        Some(&alice_reads_d1()),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["decision"], true);
    let ready = send_over(connect(&socket).await, "GET", "/readyz", None)
        .await
        .unwrap();
    assert_eq!(ready.status, 200);

    running.shutdown().await;
    assert!(!socket.exists(), "the socket file outlived the server");
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_but_a_live_one_or_another_file_is_not() {
    let dir = PolicyDir::standard();
    let socket = dir.root.path().join("warden.sock");

    // A socket nobody listens on any more: what a killed server leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let config = server::Config {
        listen: Listen::Unix(socket.clone()),
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    let reply = send_over(connect(&socket).await, "GET", "/healthz", None)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);

    // A second server on the same live socket is refused, and the first keeps serving.
    match server::start(&config).await {
        Err(ServeError::Bind { address, source }) => {
            assert_eq!(address, Listen::Unix(socket.clone()));
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{source}");
        }
        Err(other) => panic!("expected a bind error, got {other}"),
        Ok(_) => panic!("two servers on one socket"),
    }
    let reply = send_over(connect(&socket).await, "GET", "/healthz", None)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    running.shutdown().await;

    // A regular file at the path is never removed.
    std::fs::write(&socket, "not a socket").unwrap();
    let Err(ServeError::Bind { source, .. }) = server::start(&config).await else {
        panic!("served over a regular file");
    };
    assert!(source.to_string().contains("not a socket"), "{source}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not a socket");
    // No start, refused or not, left its temporary directory behind.
    let mut names: Vec<_> = std::fs::read_dir(dir.root.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["policies", "warden.sock"]);
}

#[tokio::test]
async fn the_operations_endpoints_can_have_their_own_socket() {
    let dir = PolicyDir::standard();
    let admin = dir.root.path().join("admin.sock");
    let config = server::Config {
        admin_listen: Some(Listen::Unix(admin.clone())),
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    assert_eq!(running.admin_address, None);
    assert_eq!(running.admin_endpoint, Some(Listen::Unix(admin.clone())));
    let metrics = send_over(connect(&admin).await, "GET", "/metrics", None)
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    // The decision API is on TCP only; the operations endpoints are not there.
    let http = crate::server::Http::new(&format!("http://{}", running.address));
    assert_eq!(http.get("/metrics").await.status, 404);
    assert_eq!(http.post(EVALUATION, &alice_reads_d1()).await.status, 200);
    running.shutdown().await;
    assert!(!admin.exists());
}

/// `warden serve --listen unix:PATH` from the command line, with the mode flag; SIGTERM
/// removes the socket.
#[tokio::test]
async fn the_binary_serves_on_a_socket_named_by_the_environment() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("w.sock");
    let mut child = warden()
        .args(["serve", "--watch=false", "--unix-socket-mode", "0666", "-p"])
        .arg(bundled_policies())
        .env("WARDEN_LISTEN", format!("unix:{}", socket.display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let reply = loop {
        if let Ok(stream) = tokio::net::UnixStream::connect(&socket).await
            && let Ok(reply) = send_over(stream, "GET", "/readyz", None).await
        {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer on the socket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(reply.status, 200);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!socket.exists());
}

/// The socket file has its configured mode from the moment it appears at its path: inotify on
/// its directory sees it created and never sees its permissions change (a chmod after bind
/// would show as an attribute change), and nothing else is left in the directory.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_socket_appears_at_its_path_with_its_final_mode() {
    use notify::event::{EventKind, ModifyKind};
    use notify::{RecursiveMode, Watcher};

    let dir = PolicyDir::standard();
    let run = dir.root.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let socket = run.join("warden.sock");
    let (events, received) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = events.send(event);
    })
    .unwrap();
    watcher.watch(&run, RecursiveMode::NonRecursive).unwrap();

    let config = server::Config {
        listen: Listen::Unix(socket.clone()),
        unix_socket_mode: 0o600,
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    let names: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["warden.sock"]);
    // Events arrive in order: once the marker's has come, every earlier one has.
    let marker = run.join("marker");
    std::fs::write(&marker, "").unwrap();
    let mut seen = Vec::new();
    loop {
        let event = received
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("no event for the marker within 60 s")
            .unwrap();
        if event.paths.contains(&marker) {
            break;
        }
        if event.paths.contains(&socket) {
            seen.push(event.kind);
        }
    }
    assert!(
        seen.iter().any(|kind| matches!(kind, EventKind::Create(_))),
        "{seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|kind| matches!(kind, EventKind::Modify(ModifyKind::Metadata(_)))),
        "the socket's mode changed after it appeared: {seen:?}"
    );
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let reply = send_over(connect(&socket).await, "GET", "/healthz", None)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    running.shutdown().await;
    assert!(!socket.exists());
}
