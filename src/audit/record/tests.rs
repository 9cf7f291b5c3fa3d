use super::*;

proptest::proptest! {
    /// Whatever a string holds (quotes, backslashes, control characters, any Unicode),
    /// it is written as a JSON string that reads back as itself, with or without escapes.
    #[test]
    fn json_strings_read_back_as_written(text in ".*|[\"\\\\\\x00-\\x1f a-z]*") {
        let mut out = String::new();
        json_string(&mut out, &text);
        proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).ok(), Some(text));
    }

    /// Numbers are written in decimal, as the formatter would.
    #[test]
    fn numbers_are_written_in_decimal(n in proptest::num::u64::ANY) {
        let mut out = String::new();
        push_u64(&mut out, n);
        proptest::prop_assert_eq!(out, n.to_string());
    }
}

#[test]
fn tokens_are_recognised() {
    assert!(looks_like_token("Bearer abc"));
    assert!(looks_like_token("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"));
    assert!(!looks_like_token("alice"));
    assert_eq!(shortened("eyJhbGciOi"), "eyJhbG…[masked]");
    let keyring = crate::capability::Keyring::new(
        vec![crate::capability::Key::new("k1", vec![1; 32], None).unwrap()],
        jiff::SignedDuration::ZERO,
    )
    .unwrap();
    let (token, id) = crate::capability::mint(
        &keyring,
        &[crate::capability::Caveat::Capability("c".into())],
    )
    .unwrap();
    assert_eq!(shortened(&token), format!("wcap1.…[masked] id={id}"));
}

#[test]
fn strings_are_escaped_as_serde_does() {
    for text in ["plain", "a\"b\\c\nd\te\r\u{1}é✓", ""] {
        let mut out = String::new();
        json_string(&mut out, text);
        assert_eq!(out, serde_json::to_string(text).unwrap());
    }
}

#[test]
fn times_are_written_as_jiff_writes_them() {
    for text in [
        "2026-11-28T06:14:40.24253694Z",
        "2026-11-28T06:14:40Z",
        "2026-11-28T06:14:40.000000001Z",
        "2026-11-28T06:14:40.1Z",
        "1970-01-01T00:00:00Z",
        "1969-12-31T23:59:59.5Z",
    ] {
        let time: jiff::Timestamp = text.parse().unwrap();
        let mut out = String::new();
        push_time(&mut out, time);
        assert_eq!(out, time.to_string());
        // Twice in the same second: from the cache.
        out.clear();
        push_time(&mut out, time);
        assert_eq!(out, time.to_string());
    }
}

#[test]
fn request_ids_are_written_as_json_strings() {
    let masking = Masking::default();
    let time = jiff::Timestamp::from_second(0).unwrap();
    for (id, expected) in [
        (RequestId::Given("a\"b"), r#""request_id":"a\"b""#),
        (
            RequestId::Made {
                prefix: "w1f-",
                number: 42,
            },
            r#""request_id":"w1f-42""#,
        ),
    ] {
        let builder = Builder::new(
            Shape::Single,
            time,
            id,
            None,
            RequestText::Checked("{}"),
            &masking,
        );
        assert!(builder.out.contains(expected), "{}", builder.out);
    }
}

#[test]
fn clean_request_texts_are_told_from_those_that_need_masking() {
    let masking = Masking {
        names: vec!["password".to_string()],
    };
    for (text, spared) in [
        (
            r#"{"subject": {"type": "User", "id": "token"}, "n": 1e400}"#,
            true,
        ),
        (
            r#"{"context":{"note":"password","list":["bearer",true]}}"#,
            true,
        ),
        (r#"{"context":{"token":"x"}}"#, false),
        (r#"{"context":{"Password" :"x"}}"#, false),
        (r#"{"context":{"a":"Bearer abc"}}"#, false),
        (
            r#"{"context":{"a":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"}}"#,
            false,
        ),
        (r#"{"context":{"a":"x\"y"}}"#, false),
        ("{\"context\":\n{}}", false),
    ] {
        assert_eq!(masking.spares_text(text), spared, "{text}");
        // Whatever it spares, the masking writer would have copied unmasked.
        if spared {
            let mut masked = Vec::new();
            let mut out = String::new();
            write_request(
                &mut out,
                RequestText::Unchecked(text),
                &masking,
                &mut masked,
            );
            assert!(masked.is_empty(), "{text}: {masked:?}");
        }
    }
}

#[test]
fn plain_requests_are_copied_without_whitespace() {
    let masking = Masking {
        names: vec!["password".to_string()],
    };
    let mut out = String::from("x");
    let text =
        "{ \"subject\" : {\"type\":\"User\", \"id\":\"a b\"},\n\t\"n\": [1, 2.5e3, true, null] }";
    assert!(copy_plain(&mut out, text, &masking));
    assert_eq!(
        out,
        "x{\"subject\":{\"type\":\"User\",\"id\":\"a b\"},\"n\":[1,2.5e3,true,null]}"
    );
    // Names to mask, tokens, escapes: left to the masking writer, nothing written.
    for text in [
        r#"{"context":{"Password":"x"}}"#,
        r#"{"context":{"access_token":"x"}}"#,
        r#"{"context":{"x":"Bearer abc"}}"#,
        r#"{"context":{"x":"a\"b"}}"#,
        r#"{"context":{"x":"unterminated}}"#,
    ] {
        let mut out = String::from("x");
        assert!(!copy_plain(&mut out, text, &masking), "{text}");
        assert_eq!(out, "x");
    }
    // The masking writer then masks, from the root.
    let mut out = String::new();
    let mut masked = Vec::new();
    write_request(
        &mut out,
        RequestText::Unchecked(r#"{"context":{"Password":"x","ok":"Bearer abcdefgh"}}"#),
        &masking,
        &mut masked,
    );
    assert_eq!(
        out,
        r#"{"context":{"Password":"[masked]","ok":"Bearer…[masked]"}}"#
    );
    assert_eq!(masked, ["context.Password", "context.ok"]);
}

#[test]
fn masking_walks_the_request() {
    let masking = Masking {
        names: vec!["password".to_string()],
    };
    let value = serde_json::json!({"id": "a", "properties": {"password": "x", "token": "abcdefghij", "n": [1, "Bearer zz"]}});
    let mut out = String::new();
    let mut masked = Vec::new();
    json_masked(
        &mut out,
        &value,
        &mut "subject".to_string(),
        &masking,
        &mut masked,
    );
    assert!(!out.contains("\"x\""), "{out}");
    assert!(out.contains("abcdef…[masked]"), "{out}");
    assert!(!out.contains("zz"), "{out}");
    assert_eq!(
        masked,
        [
            "subject.properties.n[1]",
            "subject.properties.password",
            "subject.properties.token"
        ]
    );
    let reparsed: JsonValue = serde_json::from_str(&out).unwrap();
    assert_eq!(reparsed["id"], "a");
}
