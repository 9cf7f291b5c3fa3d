use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn specs_parse_and_print() {
    let spec: KeySpec = "k1:/etc/warden/k1.key".parse().unwrap();
    assert_eq!(
        spec,
        KeySpec {
            id: "k1".into(),
            path: "/etc/warden/k1.key".into(),
            retired: None
        }
    );
    assert_eq!(spec.to_string(), "k1:/etc/warden/k1.key");
    let text = "old.2025-v1:/keys/a:b.key:retired=2026-06-01T00:00:00Z";
    let spec: KeySpec = text.parse().unwrap();
    assert_eq!(spec.id, "old.2025-v1");
    assert_eq!(spec.path, PathBuf::from("/keys/a:b.key"));
    assert_eq!(spec.retired, Some(at("2026-06-01T00:00:00Z")));
    assert_eq!(spec.to_string(), text);
    for (bad, expected) in [
        ("k1", "is not a key: write `ID:PATH`"),
        ("k1:", "is not a key"),
        ("k 1:/a", "`k 1` is not a key id"),
        (":/a", "`` is not a key id"),
        ("k1:/a:retired=yesterday", "`yesterday` in the key"),
    ] {
        let error = bad.parse::<KeySpec>().unwrap_err().to_string();
        assert!(error.contains(expected), "{bad}: {error}");
    }
    let long = format!("{}:/a", "k".repeat(65));
    assert!(matches!(long.parse::<KeySpec>(), Err(KeyError::BadId(_))));
}

#[test]
fn load_reads_trimmed_secrets_and_refuses_short_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("k2.key");
    std::fs::write(&good, format!("  {}\n", "ab".repeat(32))).unwrap();
    let short = dir.path().join("short.key");
    std::fs::write(&short, "0123456789abcdef0123456789abcde\n").unwrap();
    let specs = [
        format!("k2:{}", good.display()),
        format!("k1:{}:retired=2026-06-01T00:00:00Z", good.display()),
    ];
    let keyring = Keyring::load_specs(&specs, SignedDuration::from_hours(1)).unwrap();
    assert_eq!(keyring.keys().len(), 2);
    assert_eq!(keyring.keys()[0].secret(), "ab".repeat(32).as_bytes());
    assert_eq!(keyring.signing_key().unwrap().id(), "k2");
    assert_eq!(
        keyring.keys()[1].retired(),
        Some(at("2026-06-01T00:00:00Z"))
    );
    assert_eq!(keyring.grace(), SignedDuration::from_hours(1));

    let error = Keyring::load_specs(&[format!("k1:{}", short.display())], SignedDuration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(error.contains(&short.display().to_string()), "{error}");
    assert!(
        error.contains("holds 31 bytes; a key is at least 32"),
        "{error}"
    );
    assert!(
        error.contains(&format!("openssl rand -hex 32 > {}", short.display())),
        "{error}"
    );
    let missing = dir.path().join("missing.key");
    let error = Keyring::load_specs(&[format!("k1:{}", missing.display())], SignedDuration::ZERO)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("cannot read the key file"), "{error}");
    assert!(error.contains("missing.key"), "{error}");

    let twice = [
        format!("k1:{}", good.display()),
        format!("k1:{}", good.display()),
    ];
    assert!(matches!(
        Keyring::load_specs(&twice, SignedDuration::ZERO),
        Err(KeyError::Duplicate(id)) if id == "k1"
    ));
}

#[test]
fn keyrings_refuse_duplicates_short_secrets_and_negative_grace() {
    let key = |id: &str| Key::new(id, vec![1; 32], None).unwrap();
    assert!(matches!(
        Keyring::new(vec![key("a"), key("b"), key("a")], SignedDuration::ZERO),
        Err(KeyError::Duplicate(id)) if id == "a"
    ));
    assert!(matches!(
        Keyring::new(vec![key("a")], SignedDuration::from_secs(-1)),
        Err(KeyError::NegativeGrace(_))
    ));
    assert!(matches!(
        Key::new("a", vec![1; 31], None),
        Err(KeyError::SecretTooShort { id, len: 31 }) if id == "a"
    ));
    assert!(matches!(
        Key::new("a/b", vec![1; 32], None),
        Err(KeyError::BadId(_))
    ));
}

#[test]
fn verifying_keys_follow_the_grace_period() {
    let retired = at("2026-06-01T00:00:00Z");
    let keyring = Keyring::new(
        vec![
            Key::new("new", vec![1; 32], None).unwrap(),
            Key::new("old", vec![2; 32], Some(retired)).unwrap(),
        ],
        SignedDuration::from_hours(2),
    )
    .unwrap();
    assert!(keyring.verifying_key("new", Timestamp::MAX).is_ok());
    assert!(
        keyring
            .verifying_key("old", at("2026-01-01T00:00:00Z"))
            .is_ok()
    );
    assert!(
        keyring
            .verifying_key("old", at("2026-06-01T01:59:59Z"))
            .is_ok()
    );
    assert!(matches!(
        keyring.verifying_key("old", at("2026-06-01T02:00:00Z")),
        Err(KeyUnusable::KeyRetired { .. })
    ));
    assert_eq!(
        keyring.verifying_key("gone", retired).unwrap_err(),
        KeyUnusable::UnknownKey("gone".into())
    );
    // A grace that reaches past the end of time never ends.
    let forever = Keyring::new(
        vec![Key::new("old", vec![2; 32], Some(retired)).unwrap()],
        SignedDuration::MAX,
    )
    .unwrap();
    assert!(forever.verifying_key("old", Timestamp::MAX).is_err());
    assert!(
        forever
            .verifying_key("old", at("9000-01-01T00:00:00Z"))
            .is_ok()
    );
}

#[test]
fn secrets_never_show() {
    let key = Key::new(
        "k1",
        b"super-secret-super-secret-super-secret".to_vec(),
        None,
    )
    .unwrap();
    let keyring = Keyring::new(vec![key], SignedDuration::ZERO).unwrap();
    let shown = format!("{keyring:?} {:?}", keyring.keys()[0]);
    assert!(!shown.contains("super-secret"), "{shown}");
    assert!(!shown.contains("115, 117, 112"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}
