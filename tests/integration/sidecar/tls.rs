//! TLS and mutual TLS on real connections, and certificates reloaded from disk.

use std::time::{Duration, Instant};

use warden::server;

use super::*;

async fn start_tls(pki: &Pki, mtls: bool) -> (PolicyDir, server::Running) {
    let dir = PolicyDir::standard();
    let config = server::Config {
        tls: Some(pki.files(mtls)),
        debounce: Duration::from_millis(50),
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    (dir, running)
}

#[tokio::test]
async fn decides_over_tls_and_plain_http_gets_no_answer() {
    let pki = Pki::new();
    let (_dir, running) = start_tls(&pki, false).await;
    let (reply, peer) = tls_request(
        &pki.connector(None),
        running.address,
        EVALUATION,
        Some(&alice_reads_d1()),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["decision"], true);
    assert_eq!(
        peer,
        der_of(&std::fs::read_to_string(pki.path("server.crt")).unwrap())
    );

    // Plain HTTP on the TLS port is not served.
    let plain = tokio::net::TcpStream::connect(running.address)
        .await
        .unwrap();
    assert!(send_over(plain, "GET", "/healthz", None).await.is_err());
    running.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_admits_only_current_certificates_from_the_configured_ca() {
    let pki = Pki::new();
    let (_dir, running) = start_tls(&pki, true).await;
    let body = alice_reads_d1();
    let ask = |identity: Option<Issued>| {
        let connector = pki.connector(identity.as_ref());
        let body = body.clone();
        let address = running.address;
        async move { tls_request(&connector, address, EVALUATION, Some(&body)).await }
    };

    let (reply, _) = ask(Some(pki.client())).await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["decision"], true);

    // Under TLS 1.3 the client may finish its side of the handshake before the server has
    // judged its certificate; either way no request is answered.
    for (what, identity) in [
        ("no certificate", None),
        ("an expired certificate", Some(pki.expired_client())),
        ("a certificate from another CA", Some(pki.foreign_client())),
    ] {
        let outcome = ask(identity).await;
        assert!(
            outcome.is_err(),
            "a client with {what} was answered: {:?}",
            outcome.map(|(reply, _)| reply.body)
        );
    }

    // The refused clients did not disturb the server.
    let (reply, _) = ask(Some(pki.client())).await.unwrap();
    assert_eq!(reply.status, 200);
    running.shutdown().await;
}

/// Polls until new connections are served `wanted` (a certificate's DER), for 30 s.
async fn wait_for_certificate(pki: &Pki, running: &server::Running, wanted: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (reply, peer) = tls_request(&pki.connector(None), running.address, "/healthz", None)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        if peer == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_refused() {
    let _serial = crate::server::RELOAD_LOCK.lock().await;
    let pki = Pki::new();
    let (_dir, running) = start_tls(&pki, false).await;
    let tls = running.tls.clone().unwrap();

    // Renewal as cert-manager or an editor does it: new files written beside, renamed over.
    let renewed = pki.server("server two");
    std::fs::write(pki.path("next.key"), &renewed.key).unwrap();
    std::fs::write(pki.path("next.crt"), &renewed.cert).unwrap();
    std::fs::rename(pki.path("next.key"), pki.path("server.key")).unwrap();
    std::fs::rename(pki.path("next.crt"), pki.path("server.crt")).unwrap();
    wait_for_certificate(&pki, &running, &der_of(&renewed.cert)).await;

    // A key that does not load: the renewed certificate keeps serving.
    let refused_before = tls.reloads().1;
    std::fs::write(pki.path("server.key"), "not a key").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tls.reloads().1 == refused_before {
        assert!(Instant::now() < deadline, "the broken key was never read");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (reply, peer) = tls_request(&pki.connector(None), running.address, "/healthz", None)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(peer, der_of(&renewed.cert));

    // An in-place overwrite (the key fixed again, then a third certificate) is seen too.
    let third = pki.server("server three");
    pki.write("server", &third);
    wait_for_certificate(&pki, &running, &der_of(&third.cert)).await;
    running.shutdown().await;
}

#[tokio::test]
async fn sighup_style_reload_works_without_watching() {
    let pki = Pki::new();
    let dir = PolicyDir::standard();
    let config = server::Config {
        tls: Some(pki.files(false)),
        watch: false,
        debounce: Duration::from_millis(10),
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    let renewed = pki.server("server two");
    pki.write("server", &renewed);
    running.tls.as_ref().unwrap().fire();
    wait_for_certificate(&pki, &running, &der_of(&renewed.cert)).await;
    running.shutdown().await;
}

#[tokio::test]
async fn tls_files_that_do_not_load_stop_the_start_naming_the_key() {
    let pki = Pki::new();
    let dir = PolicyDir::standard();
    let start = |files: warden::server::tls::TlsFiles| {
        let config = server::Config {
            tls: Some(files),
            ..server_config(&dir.path())
        };
        async move {
            match server::start(&config).await {
                Err(server::ServeError::Config(error)) => error.0,
                Err(other) => panic!("not a configuration error: {other}"),
                Ok(_) => panic!("started with broken TLS files"),
            }
        }
    };
    let files = pki.files(true);
    let missing = start(warden::server::tls::TlsFiles {
        cert: pki.path("missing.crt"),
        ..files.clone()
    })
    .await;
    assert!(
        missing.starts_with("`tls_cert`") && missing.contains("missing.crt"),
        "{missing}"
    );

    std::fs::write(pki.path("empty.pem"), "").unwrap();
    let no_key = start(warden::server::tls::TlsFiles {
        key: pki.path("empty.pem"),
        ..files.clone()
    })
    .await;
    assert!(
        no_key.starts_with("`tls_key`") && no_key.contains("no private key"),
        "{no_key}"
    );

    let no_ca = start(warden::server::tls::TlsFiles {
        client_ca: Some(pki.path("empty.pem")),
        ..files.clone()
    })
    .await;
    assert!(
        no_ca.starts_with("`tls_client_ca`") && no_ca.contains("no certificate"),
        "{no_ca}"
    );

    // A key that is not the certificate's.
    pki.write("other", &pki.server("other"));
    let mismatch = start(warden::server::tls::TlsFiles {
        key: pki.path("other.key"),
        ..files
    })
    .await;
    assert!(mismatch.starts_with("`tls_key`"), "{mismatch}");
}
