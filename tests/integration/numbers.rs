//! Decisions on Cedar's numbers: multiplication of `Int`s and the fixed-point `Decimal`, on
//! typed and dynamic values, with the errors an overflow or a value of the wrong kind gives.

use serde_json::json;
use warden::eval::request::{self, RequestError};

use super::decide::{Outcome, WORKDAY, at, decide_at, denied, dynamic_request, held, inline};

fn error(rule: &str) -> Outcome {
    Outcome {
        allowed: false,
        reasons: vec![],
        errors: vec![rule.to_string()],
    }
}

#[test]
fn multiplication_decides_as_written() {
    let engine = inline(
        "@id(\"double\") allow read if context.n * 2 > 10\n\
         @id(\"product\") allow write if context.n * context.m == 12\n\
         @id(\"precedence\") allow list if 1 + context.n * 3 == 7 and -context.n * 2 == -4\n\
         @id(\"guard\") deny write if context.n * context.n > 100\n",
        None,
    );
    let now = at(WORKDAY);
    let ask = |action: &str, context: serde_json::Value| {
        decide_at(&engine, dynamic_request(action, json!({}), context), now)
    };
    assert_eq!(ask("read", json!({"n": 6})), held(&["double"]));
    assert_eq!(ask("read", json!({"n": 5})), denied(&[]));
    assert_eq!(ask("read", json!({"n": -6})), denied(&[]));
    assert_eq!(ask("write", json!({"n": 3, "m": 4})), held(&["product"]));
    assert_eq!(ask("write", json!({"n": -3, "m": -4})), held(&["product"]));
    // `*` binds tighter than `+`, and a unary `-` tighter than `*`.
    assert_eq!(ask("list", json!({"n": 2})), held(&["precedence"]));
    assert_eq!(ask("list", json!({"n": 3})), denied(&[]));
    // An overflow is an error, never a wrapped product: an allow that overflows does not apply,
    // and a deny that overflows denies (fail closed).
    assert_eq!(ask("read", json!({"n": i64::MAX / 2 + 1})), error("double"));
    assert_eq!(ask("read", json!({"n": i64::MIN})), error("double"));
    assert_eq!(
        ask("write", json!({"n": 4_000_000_000i64, "m": 3})),
        Outcome {
            allowed: false,
            reasons: vec!["guard".to_string()],
            errors: vec!["guard".to_string()],
        }
    );
    // A factor that is not an `Int` is an error.
    assert_eq!(ask("read", json!({"n": "6"})), error("double"));
}

#[test]
fn constant_products_fold_and_overflowing_ones_stay_errors() {
    let engine = inline(
        "@id(\"folded\") allow read if 3 * 4 == 12\n\
         @id(\"overflow\") allow write if 9223372036854775807 * 2 > 0\n",
        None,
    );
    let now = at(WORKDAY);
    let ask = |action: &str| decide_at(&engine, dynamic_request(action, json!({}), json!({})), now);
    assert_eq!(ask("read"), held(&["folded"]));
    assert_eq!(ask("write"), error("overflow"));
}

const DECIMAL_POLICY: &str = "entity User { limit: Decimal }\n\
     entity Doc { rating: Decimal }\n\
     action read on Doc context { price: Decimal }\n\
     action rate on Doc\n\
     @id(\"affordable\") allow read on Doc if context.price <= subject.limit \
         and resource.rating > decimal(\"3.5\")\n\
     @id(\"exact\") allow rate on Doc if resource.rating == decimal(\"4.25\")\n\
     @id(\"negative\") deny read on Doc if context.price < decimal(\"0.0\")\n";

fn decimal_engine() -> warden::engine::Engine {
    inline(
        DECIMAL_POLICY,
        Some(json!({"entities": [
            {"type": "User", "id": "ann", "attributes": {"limit": "10.5"}},
            {"type": "User", "id": "bob", "attributes": {
                "limit": {"__extn": {"fn": "decimal", "arg": "-922337203685477.5808"}}}},
            {"type": "Doc", "id": "good", "attributes": {"rating": "4.2500"}},
            {"type": "Doc", "id": "poor", "attributes": {"rating": "3.5"}},
        ]})),
    )
}

fn decimal_request(
    subject: &str,
    action: &str,
    doc: &str,
    price: serde_json::Value,
) -> serde_json::Value {
    json!({
        "subject": {"type": "User", "id": subject},
        "action": {"name": action},
        "resource": {"type": "Doc", "id": doc},
        "context": {"price": price},
    })
}

#[test]
fn decimals_compare_by_value_from_data_context_and_literals() {
    let engine = decimal_engine();
    let now = at(WORKDAY);
    let ask = |subject: &str, action: &str, doc: &str, price: serde_json::Value| {
        decide_at(&engine, decimal_request(subject, action, doc, price), now)
    };
    // A string or Cedar's `__extn` object, with trailing zeros or without: the same value.
    assert_eq!(
        ask("ann", "read", "good", json!("10.5")),
        held(&["affordable"])
    );
    assert_eq!(
        ask("ann", "read", "good", json!("10.5000")),
        held(&["affordable"])
    );
    assert_eq!(
        ask(
            "ann",
            "read",
            "good",
            json!({"__extn": {"fn": "decimal", "arg": "9.9999"}})
        ),
        held(&["affordable"])
    );
    assert_eq!(ask("ann", "read", "good", json!("10.5001")), denied(&[]));
    // `>` is strict: 3.5 is not above 3.5.
    assert_eq!(ask("ann", "read", "poor", json!("1.0")), denied(&[]));
    assert_eq!(ask("ann", "rate", "good", json!("0.0")), held(&["exact"]));
    // The smallest decimal, from the data, is below every price.
    assert_eq!(
        ask("bob", "read", "good", json!("-0.0001")),
        denied(&["negative"])
    );
    assert_eq!(
        ask("ann", "read", "good", json!("-0.0001")),
        denied(&["negative"])
    );
}

#[test]
fn an_invalid_decimal_in_a_request_is_an_error_and_denies() {
    let engine = decimal_engine();
    let program = &engine.program;
    for price in [
        json!("1.23456"),
        json!("1"),
        json!("922337203685477.5808"),
        json!(1.5),
        json!({"__extn": {"fn": "decimal", "arg": "x"}}),
        json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}}),
    ] {
        // Both readers (the one-pass one and the ordinary one) come to the same answer.
        let body = decimal_request("ann", "read", "good", price.clone());
        match request::read(program, body.to_string().as_bytes(), at(WORKDAY)) {
            Err(RequestError::Invalid(message)) => {
                let message = message.to_string();
                assert!(
                    message.starts_with("context.price: ") && message.contains("decimal"),
                    "{price}: {message}"
                );
            }
            other => panic!("{price}: expected an invalid request, got {other:?}"),
        }
    }
}

#[test]
fn a_decimal_sent_where_none_is_declared_stays_a_string() {
    // Undeclared context is dynamically typed: `"1.5"` is a string, and comparing it with a
    // decimal is an explained error (the rule does not apply).
    let engine = inline(
        "@id(\"cheap\") allow read if context.price < decimal(\"2.0\")\n",
        None,
    );
    let outcome = decide_at(
        &engine,
        dynamic_request("read", json!({}), json!({"price": "1.5"})),
        at(WORKDAY),
    );
    assert_eq!(outcome, error("cheap"));
}

/// `warden test` takes decimals as they are written in a policy: `decimal("…")` in `given`
/// attributes and `with context`, decoded through the declared types as a caller's would be.
#[test]
fn policy_tests_write_decimals_and_products_as_literals() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.warden"),
        format!(
            "{DECIMAL_POLICY}\
             test \"prices\" {{\n\
               given User::\"ann\" {{ limit: decimal(\"10.5\") }}\n\
               given Doc::\"d\" {{ rating: decimal(\"4.25\") }}\n\
               allow User::\"ann\" read Doc::\"d\" with context {{ price: decimal(\"10.5000\") }} by \"affordable\"\n\
               deny User::\"ann\" read Doc::\"d\" with context {{ price: decimal(\"10.5001\") }}\n\
               allow User::\"ann\" rate Doc::\"d\" with context {{ price: decimal(\"0.0\") }}\n\
             }}\n"
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["test", "--policies"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().last(), Some("1 passed, 0 failed"));
}
