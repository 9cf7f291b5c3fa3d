//! Arbitrary text as a capability token: parsing, verifying and attenuating it may fail, never
//! panic; and whatever parses must print back to a token that parses to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::capability::{Caveat, Key, Keyring, attenuate, parse, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keyring = Keyring::new(
        vec![Key::new("k1", vec![7; 32], None).expect("a key")],
        jiff::SignedDuration::ZERO,
    )
    .expect("a keyring");
    let _ = verify(&keyring, text, jiff::Timestamp::UNIX_EPOCH);
    if let Ok(token) = parse(text) {
        let again = parse(&token.text()).expect("a parsed token prints as a token");
        assert_eq!(again, token);
        let narrowed = attenuate(text, &[Caveat::Actions(vec!["view".into()])])
            .expect("a parsed token can be attenuated");
        assert_eq!(
            parse(&narrowed).expect("parses").caveats().len(),
            token.caveats().len() + 1
        );
    }
    // Each line alone, as a caveat.
    for line in text.lines() {
        if let Ok(caveat) = line.parse::<Caveat>() {
            assert_eq!(caveat.to_string(), line, "a caveat has one spelling");
        }
    }
});
