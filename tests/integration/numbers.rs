//! Decisions on Cedar's numbers: multiplication of `Int`s and the fixed-point `Decimal`, on
//! typed and dynamic values, with the errors an overflow or a value of the wrong kind gives.

use serde_json::json;

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
