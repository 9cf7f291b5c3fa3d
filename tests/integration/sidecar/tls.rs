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
    let probe = async || {
        let (reply, peer) = tls_request(&pki.connector(None), running.address, "/healthz", None)
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        crate::support::done(peer == wanted)
    };
    let what = "the new certificate to be served";
    crate::support::poll(
        what,
        Duration::from_secs(30),
        Duration::from_millis(25),
        probe,
    )
    .await;
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
                Err(server::ServeError::Config(error)) => error.to_string(),
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

/// `tls_client_allow`: a certificate from the client CA is not enough; it must name one of the
/// listed identities (a SAN DNS name, a SAN URI, or the subject's common name, each compared
/// with its own kind only), or the handshake fails and no request is read.
#[tokio::test]
async fn mutual_tls_admits_only_the_allowed_client_identities() {
    let pki = Pki::new();
    let dir = PolicyDir::standard();
    let allow = [
        "dns:orders.internal",
        "uri:spiffe://example.org/ns/prod/sa/billing",
        "cn:reporting",
    ];
    let config = server::Config {
        tls: Some(warden::server::tls::TlsFiles {
            client_allow: allow.iter().map(|entry| entry.parse().unwrap()).collect(),
            ..pki.files(true)
        }),
        ..server_config(&dir.path())
    };
    let running = server::start(&config).await.unwrap();
    let body = alice_reads_d1();
    let ask = |identity: Issued| {
        let connector = pki.connector(Some(&identity));
        let body = body.clone();
        let address = running.address;
        async move { tls_request(&connector, address, EVALUATION, Some(&body)).await }
    };

    for (what, identity) in [
        (
            "an allowed DNS name",
            pki.client_named("orders", &["dns:orders.internal"]),
        ),
        (
            "an allowed DNS name in capitals",
            pki.client_named("orders", &["dns:Orders.Internal"]),
        ),
        (
            "an allowed URI among others",
            pki.client_named(
                "billing",
                &[
                    "dns:billing.internal",
                    "uri:spiffe://example.org/ns/prod/sa/billing",
                ],
            ),
        ),
        ("an allowed common name", pki.client_named("reporting", &[])),
    ] {
        let (reply, _) = ask(identity)
            .await
            .unwrap_or_else(|e| panic!("a client with {what} was refused: {e}"));
        assert_eq!(reply.status, 200, "{what}: {}", reply.body);
        assert_eq!(reply.json()["decision"], true);
    }

    // Under TLS 1.3 the client may finish its side of the handshake before the server has
    // judged its certificate; either way no request is answered.
    for (what, identity) in [
        ("the default test client", pki.client()),
        (
            "other names only",
            pki.client_named("intruder", &["dns:intruder.internal"]),
        ),
        (
            "an allowed DNS name as its common name",
            pki.client_named("orders.internal", &["dns:shop.internal"]),
        ),
        (
            "an allowed common name as a DNS name",
            pki.client_named("someone", &["dns:reporting"]),
        ),
        (
            "a longer URI",
            pki.client_named("x", &["uri:spiffe://example.org/ns/prod/sa/billing/x"]),
        ),
        (
            "a wildcard DNS name",
            pki.client_named("x", &["dns:*.internal"]),
        ),
        (
            "an allowed name from another CA",
            pki.foreign_client_named("orders", &["dns:orders.internal"]),
        ),
    ] {
        let outcome = ask(identity).await;
        assert!(
            outcome.is_err(),
            "a client with {what} was answered: {:?}",
            outcome.map(|(reply, _)| reply.body)
        );
    }

    // Refusals did not disturb the server.
    let (reply, _) = ask(pki.client_named("reporting", &[])).await.unwrap();
    assert_eq!(reply.status, 200);
    running.shutdown().await;
}

/// The allow-list from the configuration keys applies to a reloaded certificate too.
#[tokio::test]
async fn the_allow_list_applies_after_the_certificate_is_reloaded() {
    let pki = Pki::new();
    let dir = PolicyDir::standard();
    let layer = warden::server::ConfigLayer {
        policies: Some(dir.path()),
        listen: Some("127.0.0.1:0".to_string()),
        tls_cert: Some(pki.path("server.crt")),
        tls_key: Some(pki.path("server.key")),
        tls_client_ca: Some(pki.path("ca.pem")),
        tls_client_allow: Some(vec!["CN:reporting".to_string()]),
        watch: Some(false),
        debounce_ms: Some(10),
        ..Default::default()
    };
    let config = server::Config::resolve(layer).unwrap();
    let running = server::start(&config).await.unwrap();
    let allowed = pki.connector(Some(&pki.client_named("reporting", &[])));
    let other = pki.connector(Some(&pki.client()));
    assert!(
        tls_request(&other, running.address, "/healthz", None)
            .await
            .is_err()
    );
    let renewed = pki.server("server two");
    pki.write("server", &renewed);
    let tls = running.tls.clone().unwrap();
    let reloaded = tls.reloads().0;
    tls.fire();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tls.reloads().0 == reloaded {
        assert!(Instant::now() < deadline, "the files were not reloaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (reply, peer) = tls_request(&allowed, running.address, "/healthz", None)
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(peer, der_of(&renewed.cert));
    assert!(
        tls_request(&other, running.address, "/healthz", None)
            .await
            .is_err()
    );
    running.shutdown().await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// What the allow-list compares is exactly what the certificate names: its common name,
    /// its DNS names (lower-cased) and its URIs; and every identity prints back as it parses.
    #[test]
    fn presented_identities_are_the_names_the_certificate_carries(
        cn in "[ -~]{1,40}",
        dns in proptest::collection::vec("[a-zA-Z]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-z]{1,6}){0,2}", 0..3),
        uris in proptest::collection::vec("spiffe://[a-z]{1,8}(/[a-z0-9]{1,6}){0,3}", 0..2),
    ) {
        use warden::server::tls::ClientIdentity;
        let pki = Pki::new();
        let sans: Vec<String> = dns
            .iter()
            .map(|name| format!("dns:{name}"))
            .chain(uris.iter().map(|uri| format!("uri:{uri}")))
            .collect();
        let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
        let issued = pki.client_named(&cn, &sans);
        let der = CertificateDer::from_pem_slice(issued.cert.as_bytes()).unwrap();
        let mut presented = ClientIdentity::presented(&der).unwrap();
        let mut expected: Vec<ClientIdentity> = dns
            .iter()
            .map(|name| ClientIdentity::Dns(name.to_ascii_lowercase()))
            .chain(uris.iter().cloned().map(ClientIdentity::Uri))
            .chain(std::iter::once(ClientIdentity::CommonName(cn.clone())))
            .collect();
        presented.sort_by_key(ToString::to_string);
        expected.sort_by_key(ToString::to_string);
        proptest::prop_assert_eq!(&presented, &expected);
        for identity in presented {
            let again: ClientIdentity = identity.to_string().parse().unwrap();
            proptest::prop_assert_eq!(again, identity);
        }
    }
}
