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
        schema.roles["curator"].ancestors,
        BTreeSet::from(["contributor".to_string(), "viewer".to_string()])
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
        checked.schema.roles["d"].ancestors,
        BTreeSet::from(["a".to_string(), "b".to_string(), "c".to_string()])
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
