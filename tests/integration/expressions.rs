//! Decisions on the expressions that came with Cedar parity: the set tests (`contains all`,
//! `contains any`, `is empty`) and `if … then … else`, each on typed and dynamic values, with
//! the errors a value of the wrong kind gives.

use serde_json::json;

use super::decide::{Outcome, WORKDAY, at, decide_at, denied, dynamic_request, held, inline};

#[test]
fn set_tests_decide_as_written() {
    let engine = inline(
        "@id(\"all\") allow read if context.have contains all context.need\n\
         @id(\"any\") allow write if context.have contains any context.need\n\
         @id(\"none\") allow list if context.have is empty\n",
        None,
    );
    let now = at(WORKDAY);
    let ask = |action: &str, have: serde_json::Value, need: serde_json::Value| {
        decide_at(
            &engine,
            dynamic_request(action, json!({}), json!({"have": have, "need": need})),
            now,
        )
    };
    // Every needed value is held (duplicates and order do not matter); the empty set is
    // contained in every set.
    assert_eq!(
        ask("read", json!(["a", "b", "c"]), json!(["c", "a", "a"])),
        held(&["all"])
    );
    assert_eq!(ask("read", json!(["a"]), json!([])), held(&["all"]));
    assert_eq!(ask("read", json!([]), json!([])), held(&["all"]));
    assert_eq!(
        ask("read", json!(["a", "b"]), json!(["a", "z"])),
        denied(&[])
    );
    // Values of another kind are never equal: no error, just not contained.
    assert_eq!(ask("read", json!(["1"]), json!([1])), denied(&[]));
    // One shared value is enough; none is not, and nothing is shared with the empty set.
    assert_eq!(
        ask("write", json!(["a", "b"]), json!(["z", "b"])),
        held(&["any"])
    );
    assert_eq!(ask("write", json!(["a", "b"]), json!(["z"])), denied(&[]));
    assert_eq!(ask("write", json!(["a", "b"]), json!([])), denied(&[]));
    assert_eq!(ask("list", json!([]), json!(null)), held(&["none"]));
    assert_eq!(ask("list", json!(["a"]), json!(null)), denied(&[]));
    // A value that is not a set is an error on either side (an allow that errors does not
    // apply, and says so).
    let error = |rule: &str| Outcome {
        allowed: false,
        reasons: vec![],
        errors: vec![rule.to_string()],
    };
    assert_eq!(ask("read", json!("a"), json!(["a"])), error("all"));
    assert_eq!(ask("read", json!(["a"]), json!("a")), error("all"));
    assert_eq!(ask("write", json!(["a"]), json!(1)), error("any"));
    assert_eq!(ask("list", json!("abc"), json!(null)), error("none"));
}

#[test]
fn set_tests_on_declared_entities_and_constants() {
    let engine = inline(
        "entity Group\n\
         entity User in Group { roles: Set<String>, teams: Set<Group> }\n\
         entity Doc { editors: Set<Group> }\n\
         action view, edit, audit on Doc\n\
         @id(\"view\") allow view if subject.roles contains any [\"viewer\", \"editor\"]\n\
         @id(\"edit\") allow edit if subject.teams contains all resource.editors \
             and not (resource.editors is empty)\n\
         @id(\"constant\") deny audit if [1, 2, 3] contains all [3, 1] and [] is empty\n",
        Some(json!({"entities": [
            {"type": "User", "id": "ann", "attributes": {
                "roles": ["editor"], "teams": ["red", "blue"]}},
            {"type": "User", "id": "bob", "attributes": {"roles": [], "teams": ["red"]}},
            {"type": "Doc", "id": "d1", "attributes": {"editors": ["red", "blue"]}},
            {"type": "Doc", "id": "d2", "attributes": {"editors": []}},
            {"type": "Group", "id": "red"},
            {"type": "Group", "id": "blue"},
        ]})),
    );
    let now = at(WORKDAY);
    let ask = |subject: &str, action: &str, doc: &str| {
        decide_at(
            &engine,
            json!({
                "subject": {"type": "User", "id": subject},
                "action": {"name": action},
                "resource": {"type": "Doc", "id": doc},
            }),
            now,
        )
    };
    assert_eq!(ask("ann", "view", "d1"), held(&["view"]));
    assert_eq!(ask("bob", "view", "d1"), denied(&[]));
    assert_eq!(ask("ann", "edit", "d1"), held(&["edit"]));
    assert_eq!(ask("bob", "edit", "d1"), denied(&[]));
    assert_eq!(ask("ann", "edit", "d2"), denied(&[]));
    assert_eq!(ask("ann", "audit", "d1"), denied(&["constant"]));
}

#[test]
fn if_then_else_evaluates_only_the_branch_it_takes() {
    let engine = inline(
        "@id(\"pick\") allow read if (if context.vip then context.level else 0) > 2\n\
         @id(\"guarded\") allow write if if context has level then context.level > 2 else true\n\
         @id(\"cond-error\") deny list if if context.level then true else false\n",
        None,
    );
    let now = at(WORKDAY);
    let ask = |action: &str, context: serde_json::Value| {
        decide_at(&engine, dynamic_request(action, json!({}), context), now)
    };
    assert_eq!(
        ask("read", json!({"vip": true, "level": 3})),
        held(&["pick"])
    );
    assert_eq!(ask("read", json!({"vip": true, "level": 1})), denied(&[]));
    // The `then` branch would fail (no `level`), but it is not taken.
    assert_eq!(ask("read", json!({"vip": false})), denied(&[]));
    // Taken, it fails: an allow that errors does not apply.
    let outcome = ask("read", json!({"vip": true}));
    assert_eq!(
        (outcome.allowed, outcome.errors),
        (false, vec!["pick".to_string()])
    );
    assert_eq!(ask("write", json!({})), held(&["guarded"]));
    assert_eq!(ask("write", json!({"level": 1})), denied(&[]));
    // A condition that is not a `Bool` is an error; a deny that errors denies.
    let outcome = ask("list", json!({"level": 3}));
    assert_eq!(
        outcome,
        Outcome {
            allowed: false,
            reasons: vec!["cond-error".into()],
            errors: vec!["cond-error".into()],
        }
    );
}

#[test]
fn if_then_else_guards_its_then_branch_in_typed_policies() {
    let engine = inline(
        "entity User { nick?: String, level: Int }\n\
         entity Doc\n\
         action view on Doc\n\
         @id(\"nick\") allow view if if subject has nick then subject.nick == \"bob\" \
             else subject.level > (if true then 5 else 0)\n",
        Some(json!({"entities": [
            {"type": "User", "id": "bob", "attributes": {"nick": "bob", "level": 0}},
            {"type": "User", "id": "al", "attributes": {"level": 9}},
            {"type": "User", "id": "cy", "attributes": {"level": 1}},
            {"type": "Doc", "id": "d"},
        ]})),
    );
    let now = at(WORKDAY);
    let ask = |subject: &str| {
        decide_at(
            &engine,
            json!({
                "subject": {"type": "User", "id": subject},
                "action": {"name": "view"},
                "resource": {"type": "Doc", "id": "d"},
            }),
            now,
        )
    };
    assert_eq!(ask("bob"), held(&["nick"]));
    assert_eq!(ask("al"), held(&["nick"]));
    assert_eq!(ask("cy"), denied(&[]));
}

#[test]
fn ip_tests_read_the_version_and_the_special_ranges() {
    let engine = inline(
        "entity User\n\
         action view context { ip: Ip }\n\
         @id(\"v4\") allow view if is_ipv4(context.ip) and not is_loopback(context.ip)\n\
         @id(\"loopback\") deny view if is_loopback(context.ip)\n\
         @id(\"v6-multicast\") deny view if is_ipv6(context.ip) and is_multicast(context.ip)\n\
         @id(\"constant\") deny view if is_multicast(ip(\"224.0.0.0/3\")) or is_loopback(ip(\"::1/127\"))\n",
        None,
    );
    let now = at(WORKDAY);
    let ask = |ip: &str| {
        decide_at(
            &engine,
            json!({
                "subject": {"type": "User", "id": "u"},
                "action": {"name": "view"},
                "resource": {"type": "User", "id": "u"},
                "context": {"ip": ip},
            }),
            now,
        )
    };
    assert_eq!(ask("10.1.2.3"), held(&["v4"]));
    assert_eq!(ask("127.0.0.1"), denied(&["loopback"]));
    // A range is loopback when all of it is.
    assert_eq!(ask("127.0.0.0/8"), denied(&["loopback"]));
    assert_eq!(ask("127.0.0.0/7"), held(&["v4"]));
    assert_eq!(ask("::1"), denied(&["loopback"]));
    assert_eq!(ask("ff02::1"), denied(&["v6-multicast"]));
    assert_eq!(ask("2001:db8::1"), denied(&[]));
}
