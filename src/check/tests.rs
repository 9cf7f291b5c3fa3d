//! Unit tests of the checker on small in-memory directories; the annotated corpus under
//! `tests/data/check/` holds one case per diagnostic with its exact rendering.

use std::collections::BTreeSet;

use super::*;
use crate::source::SourceFile;
use crate::syntax;

pub fn check_files(files: &[(&str, &str)]) -> Checked {
    let parsed: Vec<ParsedFile> = files
        .iter()
        .map(|(name, text)| {
            let (parsed, problems) = syntax::parse(&SourceFile::new(*name, *text));
            assert!(problems.is_empty(), "{problems:?}");
            parsed
        })
        .collect();
    check(&parsed)
}

fn codes(checked: &Checked) -> Vec<String> {
    checked
        .diagnostics
        .iter()
        .filter_map(Diagnostic::code)
        .collect()
}

#[test]
fn photos_declarations_become_the_schema() {
    let read = |name: &str| {
        std::fs::read_to_string(format!("{}/policies/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let (schema_text, roles_text, rules_text) = (
        read("schema.warden"),
        read("roles.warden"),
        read("rules.warden"),
    );
    let checked = check_files(&[
        ("schema.warden", &schema_text),
        ("roles.warden", &roles_text),
        ("rules.warden", &rules_text),
    ]);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let schema = &checked.schema;
    let user = &schema.entity_types["User"];
    assert_eq!(user.parents, vec!["Group".to_string()]);
    assert!(user.attributes.fields["suspended"].optional);
    assert_eq!(
        user.attributes.fields["roles"].ty,
        schema::Type::Set(Box::new(schema::Type::String))
    );
    assert!(user.properties.as_ref().unwrap().fields.contains_key("mfa"));
    assert_eq!(
        schema.actions["delete"].resource_types,
        vec!["Photo", "Album"]
    );
    assert!(schema.actions["archive"].context.is_some());
    assert_eq!(
        schema.action_groups["write"],
        BTreeSet::from(["comment".to_string(), "upload".to_string()])
    );
    assert_eq!(
        schema.role_closure("curator"),
        BTreeSet::from([
            "contributor".to_string(),
            "curator".to_string(),
            "viewer".to_string()
        ])
    );
}

#[test]
fn names_resolve_across_files_and_duplicates_are_reported() {
    let checked = check_files(&[
        (
            "a.warden",
            "entity Photo { album: Album }\naction view on Photo",
        ),
        (
            "b.warden",
            "entity Album\nentity Photo\naction group all = [view, more]\naction group more = [view]",
        ),
    ]);
    assert_eq!(codes(&checked), vec!["warden::check::duplicate"]);
    assert_eq!(
        checked.diagnostics[0].help_text().unwrap(),
        "first declared at `a.warden:1:8`; rename or remove one of them; names must be unique across the policy directory"
    );
    assert_eq!(
        checked.schema.entity_types["Photo"].attributes.fields["album"].ty,
        schema::Type::Entity("Album".to_string())
    );
    assert_eq!(
        checked.schema.action_groups["all"],
        BTreeSet::from(["view".to_string()])
    );
}

#[test]
fn cycles_are_named() {
    let checked = check_files(&[(
        "roles.warden",
        "role a : c { allow x }\nrole b : a { allow x }\nrole c : b { allow x }\nrole d : a { allow x }",
    )]);
    assert_eq!(checked.diagnostics.len(), 1);
    assert_eq!(
        checked.diagnostics[0].message(),
        "role inheritance cycle: a → c → b → a"
    );
    assert_eq!(
        checked.schema.role_closure("d"),
        BTreeSet::from([
            "a".to_string(),
            "b".to_string(),
            "c".to_string(),
            "d".to_string()
        ])
    );
}

#[test]
fn without_declarations_every_name_is_accepted() {
    let checked = check_files(&[("dyn.warden", "action view on Anything")]);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let checked = check_files(&[("groups.warden", "action group g = [x, y]")]);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    assert_eq!(checked.schema.action_groups["g"].len(), 2);
    let checked = check_files(&[("typed.warden", "entity User\naction view on Usr")]);
    assert_eq!(codes(&checked), vec!["warden::check::unknown_type"]);
    assert_eq!(
        checked.diagnostics[0].help_text().unwrap(),
        "did you mean `User`?"
    );
}

/// The diagnostics' codes of one file, for tests that expect a clean or a specific result.
fn file_codes(text: &str) -> Vec<String> {
    codes(&check_files(&[("p.warden", text)]))
}

const DECLS: &str = r#"
entity Group in [Group]
entity User in [Group] { email: String, level: Int, suspended?: Bool,
  ticket?: { album: Album, note?: String }, properties: { mfa?: Bool } }
entity Album { owner: User }
entity Service { level: Int }
action view on Album context { ip: Ip, mfa?: Bool }
action edit on Album context { ip: Ip, reason: String }
action ping properties { soft: Bool }
"#;

fn with_decls(rules: &str) -> Vec<String> {
    file_codes(&format!("{DECLS}\n{rules}"))
}

#[test]
fn guards_hold_along_and_chains_only() {
    assert!(with_decls("deny * if subject has suspended and subject.suspended").is_empty());
    // Nested optional fields need a guard at each level, and the guard may sit deeper in the
    // left operand of the `and`.
    assert!(with_decls(
        "allow view if (subject has ticket and subject.ticket has note) and subject.ticket.note == \"x\""
    )
    .is_empty());
    assert_eq!(
        with_decls("allow view if subject has ticket and subject.ticket.note == \"x\""),
        vec!["warden::check::unguarded_optional"]
    );
    assert_eq!(
        with_decls("allow view if not (subject has suspended) or subject.suspended"),
        vec!["warden::check::unguarded_optional"]
    );
    // A guard on a different path does not count.
    assert_eq!(
        with_decls("allow view if resource.owner has suspended and subject.suspended"),
        vec!["warden::check::unguarded_optional"]
    );
    assert_eq!(
        with_decls("deny * if subject.suspended"),
        vec!["warden::check::unguarded_optional_in_deny"]
    );
    assert!(
        with_decls("allow view if subject.properties has mfa and subject.properties.mfa")
            .is_empty()
    );
}

#[test]
fn is_narrows_the_subject() {
    // `Service` and `User` both declare `level` as Int: no conflict; `email` only on User.
    assert!(
        with_decls("allow view if subject.level > 3 and subject.email like \"*@x\"").is_empty()
    );
    assert!(with_decls("allow view if subject is User and subject.properties has mfa").is_empty());
    // Without `is`, `subject.properties` is dynamic: not every subject type declares it.
    assert!(with_decls("allow view if subject.properties.anything").is_empty());
    assert_eq!(
        with_decls("allow view if subject is User and subject.properties.anything"),
        vec!["warden::check::unknown_attribute"]
    );
}

#[test]
fn context_is_typed_when_every_action_declares_it() {
    assert!(with_decls("allow view if context.ip in ip(\"10.0.0.0/8\")").is_empty());
    assert_eq!(
        with_decls("allow view if context.reason == \"x\""),
        vec!["warden::check::unknown_attribute"]
    );
    // Declared by one of the two actions only: optional for the rule.
    assert_eq!(
        with_decls("allow view, edit if context.reason == \"x\""),
        vec!["warden::check::unguarded_optional"]
    );
    assert!(
        with_decls("allow view, edit if context has reason and context.reason == \"x\"").is_empty()
    );
    // `*`, or an action without a context declaration, leaves context dynamic.
    assert!(with_decls("allow * if context.anything == 1").is_empty());
    assert!(with_decls("allow view, ping if context.anything == 1").is_empty());
    assert!(with_decls("allow ping if action.properties.soft").is_empty());
    assert_eq!(
        with_decls("allow ping if action.properties.sfot"),
        vec!["warden::check::unknown_attribute"]
    );
}

#[test]
fn resource_follows_on_or_the_actions() {
    assert!(with_decls("allow view if resource.owner == subject").is_empty());
    assert_eq!(
        with_decls("allow view if resource.level == 1"),
        vec!["warden::check::unknown_attribute"]
    );
    // `ping` applies to any type, so resource may be anything declared.
    assert!(with_decls("allow ping if resource.level == 1").is_empty());
}

#[test]
fn lets_may_come_later_and_carry_their_type() {
    assert!(with_decls("allow view if vip and late\nlet vip = subject.level > 3\nlet late = hour(now(), \"UTC\") > 17").is_empty());
    assert_eq!(
        with_decls("allow view if lvl\nlet lvl = subject.level"),
        vec!["warden::check::condition"]
    );
}

#[test]
fn dynamic_directories_defer_everything_to_run_time() {
    let text = r#"
        let staff = subject in Group::"staff"
        allow read on Document if resource.owner == subject or staff
        deny * if subject.suspended
        allow write if context.level > 3 and resource is Document
        test "t" { allow User::"a" read Document::"d" with context { x: 1 } }
    "#;
    assert!(file_codes(text).is_empty(), "{:?}", file_codes(text));
    // Known types are still compared.
    assert_eq!(
        file_codes("allow x if 1 == \"1\""),
        vec!["warden::check::compare"]
    );
}

#[test]
fn time_arithmetic_and_functions() {
    assert!(with_decls(
        "allow view if now() - time(\"2026-01-01T00:00:00+01:00\") < 24h and now() + duration(\"1h30m\") > now() and in_range(weekday(now(), \"Europe/Paris\"), 1, 5)"
    )
    .is_empty());
    assert_eq!(
        with_decls("allow view if now() + now() > now()"),
        vec!["warden::check::operand"]
    );
    assert_eq!(
        with_decls("allow view if -24h < 0"),
        vec!["warden::check::operand"]
    );
}

const ROUTE_SCHEMA: &str = "entity User\nentity Album { properties: { note?: String } }\n\
    entity Photo in [Album]\naction view, delete on Photo\naction list on Album\n\
    action group edit = [delete]\n";

fn route_codes(routes: &str) -> Vec<String> {
    codes(&check_files(&[
        ("schema.warden", ROUTE_SCHEMA),
        ("routes.warden", routes),
    ]))
}

#[test]
fn valid_routes_check_clean_and_compile_to_a_table() {
    let routes = "route GET \"/albums/{album}\" => list on Album::{album} with { note: \"x\" }\n\
        route GET \"/albums/new\" => list on Album::\"new\"\n\
        route * \"/albums/{album}\" => list on Album::{album}\n\
        route GET \"/albums/{album}/photos/{photo}\" => view on Photo::{photo}\n\
        route DELETE \"/albums/{album}/photos/{photo}\" => delete on Photo::{photo}\n\
        route GET \"/files/{*rest}\" => view on Photo::{rest}\n";
    let files: Vec<ParsedFile> = [("schema.warden", ROUTE_SCHEMA), ("routes.warden", routes)]
        .iter()
        .map(|(n, t)| syntax::parse(&SourceFile::new(*n, *t)).0)
        .collect();
    let checked = check(&files);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let table = routes::table(&files, &checked.schema, &mut |_, e| panic!("{e:?}"));
    assert_eq!(table.len(), 6);
}

#[test]
fn route_mistakes_are_errors() {
    let cases = [
        (
            "route get \"/a/{x}\" => view on Photo::{x}",
            "warden::check::route",
        ),
        (
            "route GET \"a/{x}\" => view on Photo::{x}",
            "warden::check::route",
        ),
        (
            "route GET \"/a/{x}/\" => view on Photo::{x}",
            "warden::check::route",
        ),
        (
            "route GET \"/a/b{x}\" => view on Photo::{x}",
            "warden::check::route",
        ),
        (
            "route GET \"/a/{x}\" => view on Photo::{y}",
            "warden::check::route",
        ),
        (
            "route GET \"/a/{x}\" => vew on Photo::{x}",
            "warden::check::unknown_action",
        ),
        (
            "route GET \"/a/{x}\" => edit on Photo::{x}",
            "warden::check::not_an_action",
        ),
        (
            "route GET \"/a/{x}\" => view on Foto::{x}",
            "warden::check::unknown_type",
        ),
        (
            "route GET \"/a/{x}\" => view on Album::{x}",
            "warden::check::route",
        ),
        (
            "route GET \"/a/{x}\" => list on Album::{x} with { nope: {x} }",
            "warden::check::route",
        ),
        (
            "route GET \"/a/{x}\" => view on Photo::{x}\nroute GET \"/a/{y}\" => view on Photo::{y}",
            "warden::check::route_conflict",
        ),
        (
            "route GET \"/a/{x}\" => view on Photo::{x}\nroute GET \"/a/{x}\" => delete on Photo::{x}",
            "warden::check::route_conflict",
        ),
    ];
    for (routes, code) in cases {
        let found = route_codes(routes);
        assert!(found.iter().any(|c| c == code), "{routes}: {found:?}");
    }
    // One method each, or a method and `*`: no conflict.
    assert!(route_codes(
        "route GET \"/a/{x}\" => view on Photo::{x}\nroute DELETE \"/a/{y}\" => delete on Photo::{y}\nroute * \"/a/{z}\" => view on Photo::{z}"
    )
    .is_empty());
}
