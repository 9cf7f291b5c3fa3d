//! Data files are checked against the declarations: one case per mistake under
//! `tests/data/data_files/`, each with the located diagnostic it must produce (insta
//! snapshots), and one valid file that must load clean.

use std::path::Path;

use warden::data::{load_store, value::Value};
use warden::source::SourceFile;
use warden::syntax;

const DIR: &str = "tests/data/data_files";

fn schema() -> warden::check::Schema {
    let path = format!("{DIR}/schema.warden");
    let source = SourceFile::new(path.clone(), std::fs::read_to_string(&path).unwrap());
    let (parsed, diagnostics) = syntax::parse(&source);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let checked = warden::check::check(&[parsed]);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    checked.schema
}

fn load(name: &str) -> (warden::data::store::Store, Vec<warden::source::Diagnostic>) {
    let path = format!("{DIR}/{name}");
    let source = SourceFile::new(path.clone(), std::fs::read_to_string(&path).unwrap());
    load_store(&[source], &schema())
}

#[test]
fn every_mistake_is_located_and_explained() {
    let mut cases: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && n != "valid.json")
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "the corpus is missing");
    for case in cases {
        let (_, diagnostics) = load(&case);
        assert!(!diagnostics.is_empty(), "{case}: no diagnostic");
        for diagnostic in &diagnostics {
            assert!(diagnostic.is_error(), "{case}");
            assert!(
                diagnostic.code().unwrap().starts_with("warden::data::"),
                "{case}"
            );
            let location = diagnostic.location().unwrap();
            assert!(
                location.starts_with(&format!("{DIR}/{case}:")),
                "{case}: {location}"
            );
        }
        let rendered: Vec<String> = diagnostics.iter().map(|d| d.render(false)).collect();
        insta::assert_snapshot!(
            format!("data_{}", case.trim_end_matches(".json")),
            rendered.join("\n")
        );
    }
}

#[test]
fn a_valid_file_loads_with_typed_values_and_a_hierarchy() {
    let (store, diagnostics) = load("valid.json");
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let alice = store.lookup("User", "alice").unwrap();
    let staff = store.lookup("Group", "staff").unwrap();
    assert!(store.is_in(alice, staff));
    let field = |ty: &str, id: &str, name: &str| {
        let entity = store.lookup(ty, id).unwrap();
        let attributes = store.entity(entity).unwrap().attributes.clone().unwrap();
        attributes
            .iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("User", "alice", "age"), Some(Value::Int(40)));
    assert!(matches!(
        field("User", "alice", "manager"),
        Some(Value::Entity(_))
    ));
    // `null` means absent.
    let bob = store.lookup("User", "bob").unwrap();
    let bob_attributes = store.entity(bob).unwrap().attributes.clone().unwrap();
    assert!(!bob_attributes.iter().any(|(k, _)| k.as_ref() == "age"));
    assert_eq!(store.bindings().len(), 1);
    // Decimals, as strings or as Cedar writes them, in ten-thousandths; `1.5` and `1.50` are
    // one value, so the set holds two.
    assert_eq!(field("Album", "a1", "rating"), Some(Value::Decimal(42_500)));
    assert_eq!(
        field("Album", "a1", "scores"),
        Some(Value::set(vec![Value::Decimal(15_000), Value::Decimal(-1)]))
    );
    assert!(Path::new(DIR).join("valid.json").exists());
}
