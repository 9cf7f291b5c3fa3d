use std::sync::Arc;

use jiff::SignedDuration;
use proptest::prelude::*;

use super::*;
use crate::capability::keys::Key;

fn keyring_with(id: &str, fill: u8) -> Keyring {
    let key = Key::new(id, vec![fill; 32], None).unwrap();
    Keyring::new(vec![key], SignedDuration::from_hours(24)).unwrap()
}

fn keyring() -> Keyring {
    keyring_with("k1", 7)
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn now() -> Timestamp {
    at("2026-06-01T12:00:00Z")
}

fn photo(id: &str) -> EntityText {
    EntityText::new("Photo", id)
}

fn minted() -> Vec<Caveat> {
    vec![
        Caveat::Capability("share".into()),
        Caveat::Within(EntityText::new("Album", "holidays")),
        Caveat::Actions(vec!["view".into(), "comment".into()]),
        Caveat::Expires(at("2026-12-12T10:00:00Z")),
        Caveat::MintedBy(EntityText::new("User", "alice")),
        Caveat::MintedAt(at("2026-05-01T09:00:00Z")),
    ]
}

/// The decoded body and tag of a token text.
fn decode(token: &str) -> (String, [u8; TAG_LEN]) {
    let raw = Raw::decode(token).unwrap();
    (raw.body, raw.tag)
}

fn encode_bytes(body: &[u8], tag: &[u8]) -> String {
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(body),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

#[test]
fn mint_then_verify_round_trips() {
    let keyring = keyring();
    let (text, id) = mint(&keyring, &minted()).unwrap();
    assert!(text.starts_with(PREFIX));
    assert!(is_token_id(&id), "{id}");
    let token = verify(&keyring, &text, now()).unwrap();
    assert_eq!(token.id(), id);
    assert_eq!(token.key_id(), "k1");
    assert_eq!(token.caveats(), minted().as_slice());
    assert_eq!(token.text(), text);
    assert_eq!(parse(&text).unwrap(), token);
    assert_eq!(token.expires(), Some(at("2026-12-12T10:00:00Z")));
    assert_eq!(
        token.header(),
        format!("warden-capability v1 key=k1 id={id}")
    );
    // The body is the lines, the tag the chain's last.
    let (body, tag) = decode(&text);
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines[0], token.header());
    assert_eq!(lines[3], "actions = view, comment");
    let mut expected = next_tag(&[7; 32], lines[0]);
    for line in &lines[1..] {
        expected = next_tag(&expected, line);
    }
    assert_eq!(tag, expected);
}

#[test]
fn ids_are_fresh() {
    let keyring = keyring();
    let (a, id_a) = mint(&keyring, &[]).unwrap();
    let (b, id_b) = mint(&keyring, &[]).unwrap();
    assert_ne!(id_a, id_b);
    assert_ne!(a, b);
    assert!(verify(&keyring, &a, now()).unwrap().caveats().is_empty());
}

#[test]
fn attenuated_tokens_verify_with_the_new_caveats_last() {
    let keyring = keyring();
    let (text, id) = mint(&keyring, &minted()).unwrap();
    let narrower = [
        Caveat::Actions(vec!["view".into()]),
        Caveat::Holder(EntityText::new("User", "bob")),
    ];
    let once = attenuate(&text, &narrower).unwrap();
    let twice = attenuate(&once, &[Caveat::Expires(at("2026-07-01T00:00:00Z"))]).unwrap();
    let token = verify(&keyring, &twice, now()).unwrap();
    assert_eq!(token.id(), id);
    let mut expected = minted();
    expected.extend(narrower);
    expected.push(Caveat::Expires(at("2026-07-01T00:00:00Z")));
    assert_eq!(token.caveats(), expected.as_slice());
    assert_eq!(token.expires(), Some(at("2026-07-01T00:00:00Z")));
    // Attenuating by nothing changes nothing.
    assert_eq!(attenuate(&text, &[]).unwrap(), text);
}

#[test]
fn every_flipped_byte_of_body_or_tag_fails() {
    let keyring = keyring();
    let (text, _) = mint(
        &keyring,
        &[
            Caveat::Resource(photo("p1")),
            Caveat::Actions(vec!["view".into()]),
        ],
    )
    .unwrap();
    let (body, tag) = decode(&text);
    let body = body.into_bytes();
    for i in 0..body.len() {
        for bit in [0x01u8, 0x20, 0x80] {
            let mut altered = body.clone();
            altered[i] ^= bit;
            let token = encode_bytes(&altered, &tag);
            assert!(
                verify(&keyring, &token, now()).is_err(),
                "body byte {i} ^ {bit:#x}"
            );
        }
    }
    for i in 0..tag.len() {
        let mut altered = tag;
        altered[i] ^= 0x01;
        let token = encode_bytes(&body, &altered);
        assert_eq!(
            verify(&keyring, &token, now()),
            Err(TokenError::SignatureMismatch),
            "tag byte {i}"
        );
    }
    // And every character of the text form.
    for i in 0..text.len() {
        let mut altered = text.clone().into_bytes();
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(verify(&keyring, &altered, now()).is_err(), "text byte {i}");
    }
}

#[test]
fn removed_swapped_or_unchained_caveats_fail() {
    let keyring = keyring();
    let (text, _) = mint(&keyring, &minted()).unwrap();
    let (body, tag) = decode(&text);
    let lines: Vec<&str> = body.split('\n').collect();
    for removed in 1..lines.len() {
        let mut kept = lines.clone();
        kept.remove(removed);
        let token = encode_bytes(kept.join("\n").as_bytes(), &tag);
        assert_eq!(
            verify(&keyring, &token, now()),
            Err(TokenError::SignatureMismatch),
            "line {removed} removed"
        );
    }
    let mut swapped = lines.clone();
    swapped.swap(2, 3);
    let token = encode_bytes(swapped.join("\n").as_bytes(), &tag);
    assert_eq!(
        verify(&keyring, &token, now()),
        Err(TokenError::SignatureMismatch)
    );

    let appended = format!("{body}\nactions = delete");
    let token = encode_bytes(appended.as_bytes(), &tag);
    assert_eq!(
        verify(&keyring, &token, now()),
        Err(TokenError::SignatureMismatch)
    );

    // Removing the last caveat of an attenuated token and keeping the earlier tag is the
    // one removal the holder can do: it yields the token they were given, no wider.
    let attenuated = attenuate(&text, &[Caveat::Actions(vec!["view".into()])]).unwrap();
    let (long_body, _) = decode(&attenuated);
    let cut = long_body.rsplit_once('\n').unwrap().0;
    let token = encode_bytes(cut.as_bytes(), &decode(&attenuated).1);
    assert_eq!(
        verify(&keyring, &token, now()),
        Err(TokenError::SignatureMismatch)
    );
}

#[test]
fn keys_unknown_other_or_retired_fail() {
    let (text, _) = mint(&keyring(), &minted()).unwrap();
    assert_eq!(
        verify(&keyring_with("k9", 7), &text, now()),
        Err(TokenError::Key(KeyUnusable::UnknownKey("k1".into())))
    );
    assert_eq!(
        verify(&keyring_with("k1", 8), &text, now()),
        Err(TokenError::SignatureMismatch)
    );
    let retired = at("2026-06-01T00:00:00Z");
    let rotated = Keyring::new(
        vec![
            Key::new("k2", vec![9; 32], None).unwrap(),
            Key::new("k1", vec![7; 32], Some(retired)).unwrap(),
        ],
        SignedDuration::from_hours(24),
    )
    .unwrap();
    // Within the grace period: still verifies; a new token is minted under k2.
    assert!(verify(&rotated, &text, at("2026-06-01T23:59:59Z")).is_ok());
    let (fresh, _) = mint(&rotated, &[]).unwrap();
    assert_eq!(parse(&fresh).unwrap().key_id(), "k2");
    // After it: a clear error.
    let error = verify(&rotated, &text, at("2026-06-02T00:00:00Z")).unwrap_err();
    assert_eq!(
        error,
        TokenError::Key(KeyUnusable::KeyRetired {
            key: "k1".into(),
            retired,
            grace_end: at("2026-06-02T00:00:00Z"),
        })
    );
    assert_eq!(
        error.to_string(),
        "key `k1` retired at 2026-06-01T00:00:00Z and its grace ended at 2026-06-02T00:00:00Z"
    );
    let all_retired = Keyring::new(
        vec![Key::new("k1", vec![7; 32], Some(retired)).unwrap()],
        SignedDuration::ZERO,
    )
    .unwrap();
    assert_eq!(
        mint(&all_retired, &[]),
        Err(TokenError::Key(KeyUnusable::NoSigningKey))
    );
}

#[test]
fn malformed_texts_fail_with_their_reason() {
    let keyring = keyring();
    let (text, _) = mint(&keyring, &minted()).unwrap();
    let (body, tag) = decode(&text);
    let malformed = |token: &str| match parse(token) {
        Err(TokenError::Malformed(reason)) => reason.to_string(),
        other => panic!("{token}: {other:?}"),
    };
    assert!(malformed("").contains("wcap1."));
    assert!(malformed(&text.replacen("wcap1.", "wcap2.", 1)).contains("wcap1."));
    assert!(malformed("wcap1.abc").contains("<body>.<tag>"));
    assert!(malformed(&format!("{text}.x")).contains("<body>.<tag>"));
    assert!(malformed("wcap1.a*b.c").contains("base64url"));
    assert!(malformed(&format!("{text}=")).contains("base64url"));
    assert!(malformed(&encode_bytes(body.as_bytes(), &tag[..31])).contains("32 bytes"));
    assert!(malformed(&encode_bytes(b"\xff\xfe", &tag)).contains("UTF-8"));
    // Surrounding whitespace (a pasted newline) is not part of the token.
    assert!(verify(&keyring, &format!(" {text}\n"), now()).is_ok());
}

#[test]
fn bad_lines_name_their_number_and_text() {
    let (text, _) = mint(&keyring(), &minted()).unwrap();
    let (body, tag) = decode(&text);
    let header = body.split('\n').next().unwrap().to_string();
    let bad = |body: &str| match parse(&encode_bytes(body.as_bytes(), &tag)) {
        Err(TokenError::BadLine { line, text, reason }) => (line, text, reason),
        other => panic!("{body}: {other:?}"),
    };
    let (line, text, reason) = bad(&format!("{header}\nresource = Photo::\"p1\"\ncolour = red"));
    assert_eq!((line, text.as_str()), (3, "colour = red"));
    assert!(
        reason.to_string().contains("unknown caveat kind `colour`"),
        "{reason}"
    );
    assert_eq!(bad(&format!("{header}\nactions view")).0, 2);
    assert!(
        bad(&format!("{header}\nactions view"))
            .2
            .to_string()
            .contains("` = `")
    );
    assert_eq!(bad(&format!("{header}\n{header}")).0, 2);
    assert_eq!(bad(&format!("resource = Photo::\"p1\"\n{header}")).0, 1);
    assert_eq!(bad("warden-capability v1 key=k 1 id=x").0, 1);
    assert_eq!(bad(&format!("{header}\n")).0, 2);
    assert_eq!(bad(&format!("{header}\nactions = view\r")).0, 2);
    let id = header.rsplit_once("id=").unwrap().1;
    assert_eq!(bad(&format!("warden-capability v1 key=k1 id={id}x")).0, 1);
    assert_eq!(bad(&format!("warden-capability v2 key=k1 id={id}")).0, 1);
    let error = parse(&encode_bytes(
        format!("{header}\ncolour = red").as_bytes(),
        &tag,
    ));
    assert!(
        error
            .unwrap_err()
            .to_string()
            .starts_with("bad line 2 `colour = red`: unknown caveat kind `colour`")
    );
}

#[test]
fn caveats_have_one_spelling() {
    for line in [
        "capability = share",
        "capability = \"share photos\"",
        "resource = Photo::\"p1\"",
        "resource = Photo::\"a \\\"quoted\\\" id\\n\"",
        "within = Album::\"\"",
        "actions = view, comment, \"rename album\", read-only",
        "expires = 2026-12-12T10:00:00Z",
        "expires = 2026-12-12T10:00:00.5Z",
        "holder = User::\"bob\"",
        "audience = https://photos.example.com warden",
        "minted-by = User::\"alice\"",
        "minted-at = 2026-05-01T09:00:00Z",
        "parent = mfrggzdfmztwq2lknnwg23tpoa",
        "resource = Photo::\"a = b\"",
        "resource = Photo::\"\\u{1}\"",
    ] {
        let caveat: Caveat = line.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(caveat.to_string(), line);
    }
    for (line, expected) in [
        ("actions = view,comment", "expected `, `"),
        ("actions = view , comment", "expected `, `"),
        (
            "actions = \"view\"",
            "canonical form: write `actions = view`",
        ),
        ("actions = ", "expected a name"),
        ("actions = \"\"", "not empty"),
        ("capability = share photos", "not one name"),
        ("expires = 2026-12-12T11:00:00+01:00", "canonical form"),
        ("expires = 2026-12-12T10:00:00.500Z", "canonical form"),
        ("expires = tomorrow", "not a time"),
        ("resource = Photo::p1", "not an entity"),
        ("resource = Photo::\"p1\" ", "not an entity"),
        ("resource = Photo:\"p1\"", "not an entity"),
        ("resource = 1Photo::\"p1\"", "not an entity type"),
        (
            "resource = Photo::\"\\u{41}\"",
            "canonical form: write `resource = Photo::",
        ),
        ("resource = Photo::\"\\q\"", "not an entity"),
        ("holder =  User::\"bob\"", "not an entity"),
        ("audience =  x", "surrounding spaces"),
        ("audience = ", "non-empty"),
        ("audience = a\u{7}b", "control"),
        ("parent = MFRGGZDFMZTWQ2LKNNWG23TPOA", "not a token id"),
        ("parent = mfrggzdfmztwq2lknnwg23tpob", "not a token id"),
        ("resource=Photo::\"p1\"", "no ` = `"),
        ("Resource = Photo::\"p1\"", "unknown caveat kind"),
        ("actions = view\nactions = delete", "line break"),
    ] {
        let error = line.parse::<Caveat>().unwrap_err().to_string();
        assert!(error.contains(expected), "{line:?}: {error}");
    }
    assert_eq!(
        "Photo::\"p\\\"1\"".parse::<EntityText>().unwrap(),
        EntityText::new("Photo", "p\"1")
    );
}

#[test]
fn entity_text_prints_as_entity_uids_do() {
    let uid = EntityUid {
        ty: Arc::from("Photo"),
        id: Arc::from("tab\there \"q\" \\ \u{1}"),
    };
    let text = EntityText::from(&uid);
    assert_eq!(text.to_string(), uid.to_string());
    assert_eq!(uid.to_string().parse::<EntityText>().unwrap(), text);
    assert!(text.is(&uid));
}

#[test]
fn caveats_that_have_no_line_are_refused() {
    let (text, _) = mint(&keyring(), &[]).unwrap();
    for caveat in [
        Caveat::Audience("photos\nactions = delete".into()),
        Caveat::Audience(" padded".into()),
        Caveat::Actions(vec![]),
        Caveat::Actions(vec![String::new()]),
        Caveat::Resource(EntityText::new("Photo\n", "p1")),
        Caveat::Holder(EntityText::new("", "bob")),
        Caveat::Parent("p1".into()),
    ] {
        match attenuate(
            &text,
            &[Caveat::Actions(vec!["view".into()]), caveat.clone()],
        ) {
            Err(TokenError::InvalidCaveat { .. }) => {}
            other => panic!("{caveat:?}: {other:?}"),
        }
        assert!(matches!(
            mint(&keyring(), std::slice::from_ref(&caveat)),
            Err(TokenError::InvalidCaveat { .. })
        ));
    }
    // A newline inside a quoted value is escaped, so it stays on its line.
    let quoted = attenuate(&text, &[Caveat::Capability("a\nb".into())]).unwrap();
    let token = verify(&keyring(), &quoted, now()).unwrap();
    assert_eq!(token.caveats(), [Caveat::Capability("a\nb".into())]);
    // Attenuating a malformed token is refused too.
    assert!(attenuate("wcap1.x", &[]).is_err());
}

#[test]
fn check_requires_every_caveat() {
    let alice = EntityUid {
        ty: Arc::from("User"),
        id: Arc::from("alice"),
    };
    let bob = EntityUid {
        ty: Arc::from("User"),
        id: Arc::from("bob"),
    };
    let p1 = EntityUid {
        ty: Arc::from("Photo"),
        id: Arc::from("p1"),
    };
    let p2 = EntityUid {
        ty: Arc::from("Photo"),
        id: Arc::from("p2"),
    };
    let keyring = keyring();
    let (text, _) = mint(&keyring, &minted()).unwrap();
    let text = attenuate(
        &text,
        &[
            Caveat::Holder(EntityText::new("User", "bob")),
            Caveat::Audience("photos".into()),
        ],
    )
    .unwrap();
    let token = verify(&keyring, &text, now()).unwrap();
    let request = Request {
        subject: Some(&bob),
        action: "view",
        resource: &p1,
        now: now(),
        audience: Some("photos"),
    };
    // p1 is in Album::"holidays"; p2 is not.
    let in_holidays = |resource: &EntityUid| {
        let is_p1 = &*resource.id == "p1";
        move |album: &EntityText| *album == EntityText::new("Album", "holidays") && is_p1
    };
    let share = |name: &str| name == "share";
    assert_eq!(token.check(&request, in_holidays(&p1), share), Ok(()));
    let unmet = |request: Request<'_>| {
        token
            .check(&request, in_holidays(request.resource), share)
            .unwrap_err()
            .caveat
            .kind()
    };
    assert_eq!(
        unmet(Request {
            resource: &p2,
            ..request
        }),
        "within"
    );
    assert_eq!(
        unmet(Request {
            action: "delete",
            ..request
        }),
        "actions"
    );
    assert_eq!(
        unmet(Request {
            now: at("2026-12-12T10:00:00Z"),
            ..request
        }),
        "expires"
    );
    assert_eq!(
        unmet(Request {
            subject: Some(&alice),
            ..request
        }),
        "holder"
    );
    assert_eq!(
        unmet(Request {
            subject: None,
            ..request
        }),
        "holder"
    );
    assert_eq!(
        unmet(Request {
            audience: Some("other"),
            ..request
        }),
        "audience"
    );
    assert_eq!(
        unmet(Request {
            audience: None,
            ..request
        }),
        "audience"
    );
    let error = token
        .check(&request, in_holidays(&p1), |_| false)
        .unwrap_err();
    assert_eq!(error.index, 0);
    assert_eq!(
        error.to_string(),
        "the caveat `capability = share` does not hold"
    );
    // `resource` is exact, and a resource is within itself.
    let exact = Token {
        caveats: vec![Caveat::Resource(photo("p1")), Caveat::Within(photo("p1"))],
        ..token.clone()
    };
    assert_eq!(exact.check(&request, |_| false, |_| false), Ok(()));
    assert!(
        exact
            .check(
                &Request {
                    resource: &p2,
                    ..request
                },
                |_| true,
                |_| true
            )
            .is_err()
    );
    // Lineage: the token's id, then its parents.
    let child = Token {
        caveats: vec![Caveat::Parent("mfrggzdfmztwq2lknnwg23tpoa".into())],
        ..token.clone()
    };
    assert_eq!(
        child.lineage().collect::<Vec<_>>(),
        [token.id(), "mfrggzdfmztwq2lknnwg23tpoa"]
    );
}

#[test]
fn base32_ids_decode_to_sixteen_bytes() {
    assert_eq!(base32(&[0; 16]), "a".repeat(26));
    assert_eq!(base32(&[0xff; 16]), format!("{}4", "7".repeat(25)));
    assert_eq!(base32(b"foobar"), "mzxw6ytboi");
    assert!(is_token_id(&base32(&[0xff; 16])));
    assert!(!is_token_id(&"7".repeat(26)));
    assert!(!is_token_id(&"a".repeat(25)));
}

/// The test vector of docs/capabilities.md (computed by an independent implementation)
/// verifies here, and minting the same lines under the same key and id gives it back.
#[test]
fn the_documented_test_vector_verifies() {
    let docs = include_str!("../../../docs/capabilities.md");
    let vector = docs
        .lines()
        .find(|line| line.starts_with("wcap1.") && !line.contains('…'))
        .expect("a full token in docs/capabilities.md");
    let secret = b"0123456789abcdef0123456789abcdef".to_vec();
    let keyring = Keyring::new(
        vec![Key::new("k1", secret.clone(), None).unwrap()],
        SignedDuration::ZERO,
    )
    .unwrap();
    let token = verify(&keyring, vector, now()).unwrap();
    assert_eq!(token.id(), "mfrggzdfmztwq2lknnwg23tpoa");
    assert_eq!(
        token.caveats(),
        [
            Caveat::Capability("greenhouse".into()),
            Caveat::Within(EntityText::new("House", "12 Garden Lane")),
            Caveat::Actions(vec!["water".into()]),
            Caveat::Expires(at("2026-12-12T10:00:00Z")),
        ]
    );
    let hex: String = decode(vector)
        .1
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(docs.contains(&format!("`tag_4` = `{hex}`")), "{hex}");
    let mut body = token.header();
    let mut tag = next_tag(&secret, &body);
    extend(&mut body, &mut tag, token.caveats()).unwrap();
    assert_eq!(encode(&body, &tag), vector);
}

/// The Python function of docs/capabilities.md attenuates a token minted here, and the
/// result verifies with the Python caveat last.
#[test]
fn python_attenuation_from_the_docs_verifies() {
    let docs = include_str!("../../../docs/capabilities.md");
    let script = docs
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block in docs/capabilities.md");
    let program = format!("{script}\nimport sys\nprint(attenuate(sys.argv[1], sys.argv[2]))\n");
    let keyring = keyring();
    let (text, _) = mint(&keyring, &minted()).unwrap();
    let run = |token: &str, line: &str| {
        let output = std::process::Command::new("python3")
            .arg("-c")
            .arg(&program)
            .arg(token)
            .arg(line)
            .output()
            .expect("python3 runs (it is on every development machine and in CI)");
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let (ok, out) = run(&text, "actions = view");
    assert!(ok);
    let once = out.trim();
    let (ok, out) = run(once, "holder = User::\"bob \\\"b\\\"\"");
    assert!(ok);
    let twice = out.trim();
    assert_eq!(
        twice,
        attenuate(
            &text,
            &[
                Caveat::Actions(vec!["view".into()]),
                Caveat::Holder(EntityText::new("User", "bob \"b\""))
            ]
        )
        .unwrap()
    );
    let token = verify(&keyring, twice, now()).unwrap();
    assert_eq!(token.caveats().len(), minted().len() + 2);
    assert_eq!(
        token.caveats().last(),
        Some(&Caveat::Holder(EntityText::new("User", "bob \"b\"")))
    );
    // The script refuses a line with a newline.
    assert!(!run(&text, "actions = view\nactions = delete").0);
}

fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_-]{0,8}",
        any_text(8).prop_filter("names are not empty", |name| !name.is_empty()),
    ]
}

fn any_entity() -> impl Strategy<Value = EntityText> {
    (
        "[A-Za-z_][A-Za-z0-9_]{0,8}",
        prop_oneof!["[a-z0-9]{0,6}", any_text(8)],
    )
        .prop_map(|(ty, id)| EntityText::new(ty, id))
}

fn any_time() -> impl Strategy<Value = Timestamp> {
    (
        0i64..4_102_444_800,
        prop_oneof![Just(0i32), 0i32..1_000_000_000],
    )
        .prop_map(|(seconds, nanos)| Timestamp::new(seconds, nanos).unwrap())
}

fn any_caveat() -> impl Strategy<Value = Caveat> {
    prop_oneof![
        any_name().prop_map(Caveat::Capability),
        any_entity().prop_map(Caveat::Resource),
        any_entity().prop_map(Caveat::Within),
        prop::collection::vec(any_name(), 1..4).prop_map(Caveat::Actions),
        any_time().prop_map(Caveat::Expires),
        any_entity().prop_map(Caveat::Holder),
        "[!-~]([ -~]{0,10}[!-~])?".prop_map(Caveat::Audience),
        any_entity().prop_map(Caveat::MintedBy),
        any_time().prop_map(Caveat::MintedAt),
        any::<[u8; 16]>().prop_map(|bytes| Caveat::Parent(base32(&bytes))),
    ]
}

proptest! {
    #[test]
    fn caveat_lines_round_trip(caveat in any_caveat()) {
        let line = caveat.to_string();
        prop_assert!(!line.contains(['\n', '\r']), "{line:?}");
        prop_assert_eq!(line.parse::<Caveat>(), Ok(caveat));
    }

    #[test]
    fn entity_texts_round_trip(entity in any_entity()) {
        prop_assert_eq!(entity.to_string().parse::<EntityText>(), Ok(entity));
    }

    /// Any sequence of attenuations verifies, and its caveats are the minted ones followed
    /// by each attenuation's, in order: nothing is dropped or reordered.
    #[test]
    fn attenuations_extend_the_caveat_list(
        first in prop::collection::vec(any_caveat(), 0..4),
        steps in prop::collection::vec(prop::collection::vec(any_caveat(), 0..3), 0..4),
    ) {
        let keyring = keyring();
        let (mut text, id) = mint(&keyring, &first).unwrap();
        let mut expected = first.clone();
        for step in &steps {
            text = attenuate(&text, step).unwrap();
            expected.extend(step.iter().cloned());
            let token = verify(&keyring, &text, now()).unwrap();
            prop_assert_eq!(token.id(), id.as_str());
            prop_assert_eq!(token.caveats(), expected.as_slice());
            prop_assert!(token.caveats().starts_with(&first));
            prop_assert_eq!(token.text(), text.clone());
        }
    }
}
