//! `warden import cedar`: Cedar applications imported, checked, and deciding their own requests
//! as Cedar does (the expected answers are Cedar's, written beside each application and
//! confirmed with the `cedar-policy` engine by benches/cedar-oracle); and what is refused.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use warden::engine::Engine;
use warden::eval::{self, request};
use warden::import::cedar::{Imported, Input, import};
use warden::source::SourceFile;

fn warden(args: &[&str]) -> Output {
    crate::cli_eval::warden(args, None)
}

fn source(path: &Path) -> SourceFile {
    SourceFile::new(
        path.display().to_string(),
        std::fs::read_to_string(path).unwrap(),
    )
}

/// The application's files: `*.cedarschema` or `schema.json`, `*.cedar`, `entities.json`,
/// `links.json`.
fn app_files(dir: &Path) -> (Option<PathBuf>, PathBuf, Option<PathBuf>, Option<PathBuf>) {
    let mut schema = None;
    let mut policies = None;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".cedarschema") || name == "schema.json" {
            schema = Some(path);
        } else if name.ends_with(".cedar") {
            policies = Some(path);
        }
    }
    let optional = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
    (
        schema,
        policies.unwrap(),
        optional("entities.json"),
        optional("links.json"),
    )
}

fn app_input(dir: &Path) -> Input {
    let (schema, policies, entities, links) = app_files(dir);
    Input {
        schema: schema.as_deref().map(source),
        policies: source(&policies),
        entities: entities.as_deref().map(source),
        links: links.as_deref().map(source),
    }
}

/// The import, or a panic that shows every problem.
fn imported(input: &Input) -> Imported {
    import(input).unwrap_or_else(|problems| {
        for p in &problems {
            eprintln!("{}", p.render(false));
        }
        panic!("{} does not import", input.policies.name());
    })
}

/// The text of one imported file.
fn file_of(imported: &Imported, name: &str) -> String {
    imported
        .files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, text)| text.clone())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// The imported files, written to a directory of their own.
fn written(imported: &Imported) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    for (name, text) in &imported.files {
        std::fs::write(out.path().join(name), text).unwrap();
    }
    out
}

fn import_app(dir: &Path) -> tempfile::TempDir {
    written(&imported(&app_input(dir)))
}

/// `{"principal": [T, id], "action": name, "resource": [T, id], "context": {…}}` as AuthZEN.
/// An action of a namespaced application is written as Cedar names it (`App::Action::"buy"`),
/// and Warden's request names it `App::buy`.
fn authzen(req: &Value) -> Value {
    let entity = |v: &Value| json!({"type": v[0], "id": v[1]});
    let action = req["action"].as_str().unwrap();
    let action = match action.split_once("::Action::") {
        Some((namespace, quoted)) => format!("{namespace}::{}", quoted.trim_matches('"')),
        None => action.to_string(),
    };
    json!({
        "subject": entity(&req["principal"]),
        "action": {"name": action},
        "resource": entity(&req["resource"]),
        "context": req.get("context").cloned().unwrap_or_else(|| json!({})),
    })
}

fn decide(engine: &Engine, req: &Value) -> bool {
    let now: jiff::Timestamp = "2026-03-03T09:00:00Z".parse().unwrap();
    match request::read(&engine.program, authzen(req).to_string().as_bytes(), now) {
        Ok(request) => eval::decide(&engine.program, &request).allowed,
        Err(_) => false,
    }
}

/// Imports the application, checks the directory with `warden check`, and compares every
/// request's decision with Cedar's.
fn round_trip(app: &str) -> usize {
    let dir = Path::new("tests/data/cedar").join(app);
    let out = import_app(&dir);
    let check = warden(&["check", "-p", out.path().to_str().unwrap()]);
    assert!(
        check.status.success(),
        "`warden check` refuses the import of {app}:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let engine = Engine::load(out.path()).unwrap_or_else(|f| {
        for d in &f.diagnostics {
            eprintln!("{}", d.render(false));
        }
        panic!("{app} does not load");
    });
    let requests: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("requests.json")).unwrap()).unwrap();
    let mut wrong = Vec::new();
    for req in &requests {
        let expected = req["decision"] == "allow";
        if decide(&engine, req) != expected {
            wrong.push(req.to_string());
        }
    }
    assert!(
        wrong.is_empty(),
        "{app}: {} of {} requests decided unlike Cedar:\n{}",
        wrong.len(),
        requests.len(),
        wrong.join("\n")
    );
    requests.len()
}

#[test]
fn tinytodo_imports_and_decides_as_cedar() {
    assert!(round_trip("tinytodo") >= 20);
}

#[test]
fn github_from_the_json_schema_form_decides_as_cedar() {
    assert!(round_trip("github") >= 15);
}

/// `if … then … else …`, the set methods and the IP tests, in a `permit` and in `forbid`s whose
/// guarded form must read only the branch taken.
#[test]
fn conditionals_set_methods_and_ip_tests_decide_as_cedar() {
    assert!(round_trip("expressions") >= 9);
}

/// Multiplication (one that overflows among them) and decimals: literals, entity attributes and
/// context values written as Cedar's `__extn`, and the four comparison methods.
#[test]
fn multiplication_and_decimals_decide_as_cedar() {
    assert!(round_trip("numbers") >= 14);
}

/// Two namespaces, each with its own `User` and its own `view`: the schema becomes a file per
/// namespace, and the policies, entities and requests keep their qualified names
/// (`Audit::Action::"view"` is Warden's `Audit::view`).
#[test]
fn namespaced_applications_decide_as_cedar() {
    assert!(round_trip("namespaces") >= 14);
}

#[test]
fn document_cloud_decides_as_cedar() {
    assert!(round_trip("document_cloud") >= 15);
}

#[test]
fn photoflash_with_template_links_decides_as_cedar() {
    assert!(round_trip("photoflash") >= 15);
}

#[test]
fn hotel_chains_with_nested_action_groups_decides_as_cedar() {
    assert!(round_trip("hotel_chains") >= 15);
}

#[test]
fn github_permission_levels_nest_actions_beneath_actions_and_decide_as_cedar() {
    assert!(round_trip("github_levels") >= 29);
}

/// `action == Action::"g"` where `g` is a pure group is never true in Cedar (no request names
/// a group as its action): the import says `false` (`true` for `!=`), checks, and warns.
#[test]
fn comparing_action_with_a_pure_group_is_false_as_in_cedar() {
    assert!(round_trip("pure_groups") >= 8);
    let imported = imported(&app_input(Path::new("tests/data/cedar/pure_groups")));
    let warnings: Vec<String> = imported
        .warnings
        .iter()
        .map(|w| w.render(false).replace("tests/data/cedar/pure_groups/", ""))
        .collect();
    insta::assert_snapshot!(warnings.join("\n"));
}

#[test]
fn the_command_writes_a_directory_that_checks() {
    let out = tempfile::tempdir().unwrap();
    let dir = "tests/data/cedar/tinytodo";
    let target = out.path().join("warden");
    let output = warden(&[
        "import",
        "cedar",
        "--schema",
        &format!("{dir}/tinytodo.cedarschema"),
        "--policies",
        &format!("{dir}/tinytodo.cedar"),
        "--entities",
        &format!("{dir}/entities.json"),
        "-o",
        target.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The `joblevel` forbid reads `principal.joblevel`: warned about, and guarded.
    assert!(stderr.contains("forbid `joblevel` errors"), "{stderr}");
    assert!(stderr.contains("ok: "), "{stderr}");
    let policies = std::fs::read_to_string(target.join("policies.warden")).unwrap();
    assert!(policies.contains("subject has joblevel"), "{policies}");
    let check = warden(&["check", "-p", target.to_str().unwrap()]);
    assert!(check.status.success());
}

/// What each refusal says, located in the Cedar text.
fn refusal(policies: &str, schema: Option<&str>) -> String {
    let input = Input {
        schema: schema.map(|s| SourceFile::new("app.cedarschema", s)),
        policies: SourceFile::new("app.cedar", policies),
        entities: None,
        links: None,
    };
    match import(&input) {
        Ok(_) => panic!("imported:\n{policies}"),
        Err(problems) => problems
            .iter()
            .map(|p| p.render(false))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

const SCHEMA: &str = "entity User = { tags: Set<String>, level: Long };\n\
    entity Doc = { owner: User };\n\
    action read appliesTo { principal: User, resource: Doc };\n";

#[test]
fn constructs_warden_cannot_say_are_refused_where_they_stand() {
    let cases = [
        (
            "action_test_form",
            "permit (principal, action, resource) when { action == principal };",
        ),
        (
            "tag",
            "permit (principal, action, resource) when { principal.hasTag(\"team\") };",
        ),
        ("syntax", "permit (principal, action resource);"),
    ];
    for (name, policy) in cases {
        insta::assert_snapshot!(
            format!("import_cedar_{name}"),
            refusal(policy, Some(SCHEMA))
        );
    }
}

/// Two Cedar namespaces may declare the same action id: each is its namespace's action
/// (`App::read`, `Other::read`), declared in its namespace's file.
#[test]
fn two_namespaces_may_declare_the_same_action_id() {
    let input = Input {
        schema: Some(SourceFile::new(
            "app.cedarschema",
            "namespace App { entity User; action read appliesTo { principal: User, resource: User }; }\n\
             namespace Other { entity User; action read appliesTo { principal: User, resource: User }; }",
        )),
        policies: SourceFile::new(
            "app.cedar",
            "permit (principal, action == Other::Action::\"read\", resource);",
        ),
        entities: None,
        links: None,
    };
    let imported = imported(&input);
    let file = |name: &str| file_of(&imported, name);
    assert!(file("schema.App.warden").contains("action read on App::User by App::User"));
    assert!(file("schema.Other.warden").contains("action read on Other::User by Other::User"));
    assert!(file("policies.warden").contains("allow Other::read"));
    let out = written(&imported);
    let engine = Engine::load(out.path()).unwrap_or_else(|f| panic!("{:#?}", f.diagnostics));
    let ask = |ns: &str| {
        let req = json!({
            "principal": [format!("{ns}::User"), "u"],
            "action": format!("{ns}::Action::\"read\""),
            "resource": [format!("{ns}::User"), "v"],
        });
        decide(&engine, &req)
    };
    assert!(ask("Other"));
    assert!(!ask("App"));
}

/// The Warden text of each kind of Cedar construct the import translates.
#[test]
fn each_construct_is_translated() {
    let schema = "entity Group in [Group];\n\
        entity User in [Group] = { level: Long, name: String, tags: Set<String>, \
        boss?: User, home?: { ip: ipaddr, since: datetime } };\n\
        entity Doc in [Group] = { owner: User, \"x-y\": Long };\n\
        type Ctx = { ip: ipaddr, now: datetime, ttl: duration, price: decimal };\n\
        action \"read-doc\", write appliesTo { principal: [User], resource: [Doc], context: Ctx };\n\
        action view in [\"read-doc\"] appliesTo { principal: User, resource: Doc, context: Ctx };";
    let policies = r#"
permit (principal is User in Group::"g", action in Action::"read-doc", resource is Doc in Group::"h")
when { principal has home.ip && principal.home.ip.isInRange(ip("10.0.0.0/8")) }
unless { principal.name like "adm\*n*" || -principal.level * 2 < -3 + principal.level * principal.level };

permit (principal == User::"a", action == Action::"write", resource == Doc::"d")
when { context.now.offset(duration("1h")) < datetime("2026-03-01T10:00:00+0100")
       && context.now.durationSince(datetime("2026-01-01")) > context.ttl
       && resource["x-y"] == 1 && principal.tags.contains("t") && [1, 2] == [2, 1] && {a: 1}["a"] == 1 };

forbid (principal, action, resource)
when { principal has boss && principal.boss.level > principal.level && resource.owner.level > 2 };

permit (principal, action == Action::"write", resource)
when { context.price.lessThan(decimal("9.99")) && context.price.lessThanOrEqual(decimal("-0.5"))
       || context.price.greaterThan(decimal("1.0")) && context.price.greaterThanOrEqual(decimal("1.0")) };

permit (principal, action == Action::"read-doc", resource);

permit (principal, action in [Action::"write", Action::"read-doc"], resource)
when { action != Action::"view" && (action in Action::"read-doc" || action == Action::"write")
       && action in [Action::"view"] };
"#;
    let input = Input {
        schema: Some(SourceFile::new("app.cedarschema", schema)),
        policies: SourceFile::new("app.cedar", policies),
        entities: None,
        links: None,
    };
    let imported = import(&input).unwrap_or_else(|ds| {
        panic!(
            "{}",
            ds.iter()
                .map(|d| d.render(false))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let text: Vec<String> = imported
        .files
        .iter()
        .map(|(name, text)| format!("// {name}\n{text}"))
        .collect();
    insta::assert_snapshot!("import_cedar_constructs", text.join("\n"));
    let out = tempfile::tempdir().unwrap();
    for (name, text) in &imported.files {
        std::fs::write(out.path().join(name), text).unwrap();
    }
    let check = warden(&["check", "-p", out.path().to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever the text, the reader answers with a translation or diagnostics, never a panic.
    #[test]
    fn any_text_is_read_without_panicking(
        policies in "(permit|forbid|\\(|\\)|principal|action|resource|when|unless|\\{|\\}|;|,|==|in|is|has|like|&&|\\|\\||!|-|\\*|\\.|\\[|\\]|\"a\\\\*\"|User::\"u\"|Action::\"a\"|\\?principal|if|then|else|1|9223372036854775808| )*",
        schema in "(entity|action|type|User|in|\\[|\\]|\\{|\\}|=|;|,|:|\\?|appliesTo|principal|resource|context|Set|<|>|Long|namespace| )*",
    ) {
        let input = Input {
            schema: Some(SourceFile::new("s.cedarschema", schema)),
            policies: SourceFile::new("p.cedar", policies),
            entities: None,
            links: None,
        };
        let _ = import(&input);
    }
}

/// A `forbid` that is false when a guarded part is: the guarded form keeps each `has` test on
/// the left of an `and`, where Warden's checker sees it (a `not has … or …` would not do).
#[test]
fn a_guarded_unless_passes_the_check() {
    let input = Input {
        schema: Some(SourceFile::new("app.cedarschema", SCHEMA_WITH_MANAGER)),
        policies: SourceFile::new(
            "app.cedar",
            "forbid (principal, action, resource)\n\
             unless { principal has manager && principal.manager == resource.owner };",
        ),
        entities: None,
        links: None,
    };
    let imported = import(&input).unwrap_or_else(|_| panic!("refused"));
    let out = tempfile::tempdir().unwrap();
    for (name, text) in &imported.files {
        std::fs::write(out.path().join(name), text).unwrap();
    }
    let check = warden(&["check", "-p", out.path().to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

const SCHEMA_WITH_MANAGER: &str = "entity User = { manager?: User };\n\
    entity Doc = { owner: User };\n\
    action read appliesTo { principal: User, resource: Doc };\n";

/// Deep input is refused with a located error, never a stack overflow: parentheses, `!`
/// chains, nested `if`s and nested schema types far past Warden's depth limit.
#[test]
fn deep_input_is_refused_not_overflowed() {
    let deep = 100_000;
    let policies = [
        format!(
            "permit (principal, action, resource) when {{ {}true{} }};",
            "(".repeat(deep),
            ")".repeat(deep)
        ),
        format!(
            "permit (principal, action, resource) when {{ {}true }};",
            "!".repeat(deep)
        ),
        format!(
            "permit (principal, action, resource) when {{ {}true{} }};",
            "if true then ".repeat(deep),
            " else false".repeat(deep)
        ),
    ];
    for policy in &policies {
        let refused = refusal(policy, None);
        assert!(
            refused.contains("nested more than 1024 levels deep"),
            "{refused}"
        );
    }
    let schema = format!(
        "entity User = {{ a: {}Long{} }};",
        "Set<".repeat(deep),
        ">".repeat(deep)
    );
    let refused = refusal("permit (principal, action, resource);", Some(&schema));
    assert!(
        refused.contains("nested more than 1024 levels deep"),
        "{refused}"
    );
}

/// A namespace in the JSON schema form: its types get their namespace's file, the names they
/// use resolve in their namespace first, and policies name them in full.
#[test]
fn a_namespace_in_the_json_schema_form_becomes_a_file() {
    let schema = r#"{"App": {
        "entityTypes": {"User": {"shape": {"type": "Record", "attributes": {
            "boss": {"type": "Entity", "name": "User", "required": false}}}}},
        "actions": {"read": {"appliesTo": {"principalTypes": ["User"], "resourceTypes": ["User"]}}}
    }}"#;
    let input = Input {
        schema: Some(SourceFile::new("schema.json", schema)),
        policies: SourceFile::new(
            "app.cedar",
            "permit (principal, action == App::Action::\"read\", resource is App::User)\n\
             when { principal has boss && principal.boss == resource };",
        ),
        entities: None,
        links: None,
    };
    let imported = imported(&input);
    let file = |name: &str| file_of(&imported, name);
    let app = file("schema.App.warden");
    assert!(app.starts_with("namespace App\n"), "{app}");
    assert!(app.contains("boss?: App::User"), "{app}");
    assert!(app.contains("action read on App::User"), "{app}");
    assert!(file("policies.warden").contains("allow App::read on App::User"));
    let out = written(&imported);
    let check = warden(&["check", "-p", out.path().to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
