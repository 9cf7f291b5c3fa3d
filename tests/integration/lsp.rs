//! `warden lsp`: the real binary, spoken to over stdio in LSP's JSON-RPC, on a copy of the
//! bundled policies.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// A generous bound on one answer, so a server that never answers fails the test instead of
/// hanging it (not a speed requirement).
const PATIENCE: Duration = Duration::from_secs(60);

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Notifications read while waiting for something else.
    queued: VecDeque<Value>,
    next_id: i64,
}

impl Client {
    fn start(workspace: &Path) -> Client {
        Client::start_with(workspace, "utf-16")
    }

    /// A server whose client offers only `encoding` for positions.
    fn start_with(workspace: &Path, encoding: &str) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("warden lsp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, messages) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(value) = line.strip_prefix("Content-Length: ") {
                        length = Some(value.parse::<usize>().unwrap());
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                reader.read_exact(&mut body).unwrap();
                if sender.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages,
            queued: VecDeque::new(),
            next_id: 1,
        };
        let init = client.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri(workspace),
                "capabilities": { "general": { "positionEncodings": [encoding] } },
            }),
        );
        assert_eq!(init["capabilities"]["positionEncoding"], encoding);
        assert_eq!(init["capabilities"]["hoverProvider"], true);
        client.notify("initialized", json!({}));
        client
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn receive(&mut self) -> Value {
        self.messages
            .recv_timeout(PATIENCE)
            .expect("the server sends a message")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.receive();
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{message}");
                return message["result"].clone();
            }
            self.queued.push_back(message);
        }
    }

    /// The next diagnostics published for `file` (queued ones first).
    fn diagnostics(&mut self, file: &Path) -> Vec<Value> {
        let wanted = uri(file);
        loop {
            let message = match self.queued.pop_front() {
                Some(message) => message,
                None => self.receive(),
            };
            if message["method"] == "textDocument/publishDiagnostics"
                && message["params"]["uri"] == wanted
            {
                return message["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
        }
    }

    fn open(&mut self, file: &Path, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": {
                "uri": uri(file), "languageId": "warden", "version": 1, "text": text,
            }}),
        );
    }

    fn change(&mut self, file: &Path, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri(file), "version": version },
                "contentChanges": [{ "text": text }],
            }),
        );
    }

    fn at(&mut self, method: &str, file: &Path, position: Value) -> Value {
        let mut params = json!({ "textDocument": { "uri": uri(file) }, "position": position });
        match method {
            "textDocument/references" => params["context"] = json!({ "includeDeclaration": true }),
            "textDocument/completion" => params["context"] = json!({ "triggerKind": 1 }),
            _ => {}
        }
        self.request(method, params)
    }

    /// The code actions for one diagnostic, sent back as an editor does.
    fn quick_fixes(&mut self, file: &Path, diagnostic: &Value) -> Value {
        self.request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": uri(file) },
                "range": diagnostic["range"],
                "context": { "diagnostics": [diagnostic] },
            }),
        )
    }

    /// The hover text at a position.
    fn hover(&mut self, file: &Path, position: Value) -> String {
        let hover = self.at("textDocument/hover", file, position);
        hover["contents"]["value"].as_str().unwrap().to_string()
    }

    fn shut_down(mut self) {
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "warden lsp exited with {status}");
    }
}

fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The LSP position (line, UTF-16 column) of the `nth` occurrence of `needle` in `text`, plus
/// `shift` bytes.
fn position(text: &str, needle: &str, nth: usize, shift: usize) -> Value {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` occurs {} times", nth + 1))
        .0
        + shift;
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column: usize = before
        .rsplit('\n')
        .next()
        .unwrap()
        .chars()
        .map(char::len_utf16)
        .sum();
    json!({ "line": line, "character": column })
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A fresh copy of the bundled policies under `<tmp>/lsp-<name>/policies`.
fn workspace(name: &str) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lsp-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    copy_dir(Path::new("policies"), &root.join("policies"));
    let policies = root.join("policies");
    (root, policies)
}

fn messages(diagnostics: &[Value]) -> Vec<String> {
    diagnostics
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn diagnostics_follow_edits_and_quick_fixes_apply() {
    let (root, policies) = workspace("diagnostics");
    let rules_path = policies.join("rules.warden");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let broken = rules.replace("resource.owner == subject", "resource.onwer == subject");
    let mut client = Client::start(&root);

    client.open(&rules_path, &broken);
    let diagnostics = client.diagnostics(&rules_path);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    let diagnostic = &diagnostics[0];
    let start = position(&broken, "onwer", 0, 0);
    let end = position(&broken, "onwer", 0, "onwer".len());
    assert_eq!(diagnostic["range"], json!({ "start": start, "end": end }));
    assert_eq!(diagnostic["severity"], 1);
    assert_eq!(diagnostic["source"], "warden");
    let message = diagnostic["message"].as_str().unwrap();
    assert!(message.contains("`onwer`"), "{message}");
    assert!(message.contains("help: did you mean `owner`?"), "{message}");

    // The quick fix: the editor sends the diagnostic back and gets the replacement.
    let actions = client.quick_fixes(&rules_path, diagnostic);
    let edit = &actions[0]["edit"]["changes"][uri(&rules_path)][0];
    assert_eq!(edit["newText"], "owner");
    assert_eq!(edit["range"], diagnostic["range"]);
    assert_eq!(actions[0]["kind"], "quickfix");

    // The fix applied as an incremental change: only the range is sent.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": uri(&rules_path), "version": 2 },
            "contentChanges": [{ "range": edit["range"], "text": "owner" }],
        }),
    );
    assert_eq!(client.diagnostics(&rules_path), Vec::<Value>::new());

    // A syntax error is reported as `warden check` reports it.
    client.change(&rules_path, 3, &format!("{rules}\nallow view if x = 1\n"));
    let diagnostics = client.diagnostics(&rules_path);
    assert!(
        messages(&diagnostics)
            .iter()
            .any(|m| m.contains("did you mean `==`?")),
        "{diagnostics:#?}"
    );
    client.shut_down();
}

#[test]
fn a_schema_change_rechecks_the_rules_that_use_it() {
    let (root, policies) = workspace("directory");
    let schema_path = policies.join("schema.warden");
    let rules_path = policies.join("rules.warden");
    let schema = std::fs::read_to_string(&schema_path).unwrap();
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let mut client = Client::start(&root);
    client.open(&rules_path, &rules);
    assert_eq!(client.diagnostics(&rules_path), Vec::<Value>::new());
    client.open(&schema_path, &schema);
    assert_eq!(client.diagnostics(&rules_path), Vec::<Value>::new());

    // Album's `public` renamed in the open (unsaved) schema: the rule reading it breaks.
    let renamed = schema.replace("  public: Bool,", "  open: Bool,");
    assert_ne!(renamed, schema);
    client.change(&schema_path, 2, &renamed);
    let diagnostics = client.diagnostics(&rules_path);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
    assert_eq!(
        diagnostics[0]["range"]["start"],
        position(&rules, "public\n", 0, 0)
    );

    client.change(&schema_path, 3, &schema);
    assert_eq!(client.diagnostics(&rules_path), Vec::<Value>::new());

    // A data file beside the policies is checked too, from the editor's text.
    let data_path = policies.join("data/albums.json");
    let data = std::fs::read_to_string(&data_path).unwrap();
    let wrong = data.replacen("\"Album\"", "\"Albm\"", 1);
    assert_ne!(wrong, data);
    client.open(&data_path, &wrong);
    let diagnostics = client.diagnostics(&data_path);
    let typo = diagnostics
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .contains("did you mean `Album`?")
        })
        .unwrap_or_else(|| panic!("{diagnostics:#?}"));
    assert!(typo["message"].as_str().unwrap().contains("`Albm`"));
    // Its quick fix, applied, gives the file back as it was.
    let actions = client.quick_fixes(&data_path, typo);
    let edit = &actions[0]["edit"]["changes"][uri(&data_path)][0];
    assert_eq!(apply(&wrong, edit), data);

    // Every mistake in one entity is shown, not only the first.
    let archive = r#"{ "owner": "dave", "public": false }"#;
    assert!(data.contains(archive));
    let two = data.replacen(archive, r#"{ "owner": 7, "public": "no" }"#, 1);
    client.change(&data_path, 2, &two);
    let messages: Vec<String> = client
        .diagnostics(&data_path)
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].contains("found the number `7`"),
        "{messages:#?}"
    );
    assert!(
        messages[1].contains("found the string `\"no\"`"),
        "{messages:#?}"
    );
    client.shut_down();
}

/// A text edit applied to an ASCII text (where UTF-16 columns are bytes).
fn apply(text: &str, edit: &Value) -> String {
    let offset = |at: &Value| {
        let line = at["line"].as_u64().unwrap() as usize;
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        start + at["character"].as_u64().unwrap() as usize
    };
    let (start, end) = (
        offset(&edit["range"]["start"]),
        offset(&edit["range"]["end"]),
    );
    format!(
        "{}{}{}",
        &text[..start],
        edit["newText"].as_str().unwrap(),
        &text[end..]
    )
}

#[test]
fn hover_definition_references_completion_and_formatting() {
    let (root, policies) = workspace("features");
    let rules_path = policies.join("rules.warden");
    let roles_path = policies.join("roles.warden");
    let schema_path = policies.join("schema.warden");
    let rules = std::fs::read_to_string(&rules_path).unwrap();
    let roles = std::fs::read_to_string(&roles_path).unwrap();
    let schema = std::fs::read_to_string(&schema_path).unwrap();
    let mut client = Client::start(&root);
    client.open(&rules_path, &rules);
    assert_eq!(client.diagnostics(&rules_path), Vec::<Value>::new());

    // Hover: an attribute read's type, a role's inherited permissions, an action's group.
    let text = client.hover(
        &rules_path,
        position(&rules, "resource.owner", 0, "resource.".len() + 1),
    );
    assert!(text.contains("`resource.owner`: `User`"), "{text}");
    client.open(&roles_path, &roles);
    let text = client.hover(
        &roles_path,
        position(&roles, "role curator", 0, "role ".len()),
    );
    assert!(text.contains("inherits `contributor`, `viewer`"), "{text}");
    assert!(
        text.contains("`allow view, list` (from `viewer`)"),
        "{text}"
    );
    assert!(text.contains("`allow delete on Photo`"), "{text}");
    let text = client.hover(
        &roles_path,
        position(&roles, "allow write", 0, "allow ".len()),
    );
    assert!(text.contains("stands for `comment`, `upload`"), "{text}");
    let text = client.hover(
        &rules_path,
        position(&rules, "allow view on Photo", 0, "allow view on ".len()),
    );
    assert!(text.contains("entity Photo in Album {"), "{text}");

    // Definition: a `let`, an entity type, an attribute of two types.
    let places = |file: &Path, text: &str, needles: &[(&str, usize, usize)]| -> Vec<Value> {
        needles
            .iter()
            .map(|&(needle, nth, shift)| {
                json!({ "uri": uri(file), "start": position(text, needle, nth, shift) })
            })
            .collect()
    };
    let cases = [
        (
            position(&rules, "if staff", 0, "if ".len()),
            places(&rules_path, &rules, &[("let staff", 0, "let ".len())]),
        ),
        (
            position(&rules, "on Photo", 0, "on ".len()),
            places(
                &schema_path,
                &schema,
                &[("entity Photo", 0, "entity ".len())],
            ),
        ),
        (
            position(&rules, "resource.owner", 0, "resource.".len()),
            places(
                &schema_path,
                &schema,
                &[("owner: User", 0, 0), ("owner: User", 1, 0)],
            ),
        ),
    ];
    for (at, expected) in cases {
        let definition = client.at("textDocument/definition", &rules_path, at);
        let found: Vec<Value> = definition
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!({ "uri": l["uri"], "start": l["range"]["start"] }))
            .collect();
        assert_eq!(found, expected);
    }

    // References: every use of a role, across files.
    let references = client.at(
        "textDocument/references",
        &roles_path,
        position(&roles, "role viewer", 0, "role ".len()),
    );
    let places: Vec<(&str, &Value)> = references
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["uri"].as_str().unwrap(), &l["range"]["start"]))
        .collect();
    assert!(places.len() >= 2, "{places:?}");
    assert!(places.contains(&(
        uri(&roles_path).as_str(),
        &position(&roles, ": viewer", 0, ": ".len())
    )));

    // Completion after `.`, on a line that does not parse yet.
    let typing = format!("{rules}\n@id(\"new\")\nallow view on Photo if resource.");
    client.change(&rules_path, 2, &typing);
    let last = typing.matches("resource.").count() - 1;
    let end = position(&typing, "resource.", last, "resource.".len());
    let completion = client.at("textDocument/completion", &rules_path, end);
    let labels: Vec<&str> = completion
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"owner"), "{labels:?}");
    assert!(labels.contains(&"properties"), "{labels:?}");
    // Completion in a rule head: actions and groups.
    let typing = format!("{rules}\nallow ");
    client.change(&rules_path, 3, &typing);
    let completion = client.at(
        "textDocument/completion",
        &rules_path,
        position(&typing, "\nallow ", 0, "\nallow ".len()),
    );
    let labels: Vec<&str> = completion
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"archive") && labels.contains(&"write"),
        "{labels:?}"
    );
    // Completion of an attribute's type in a declaration; of a role after `role name :`.
    for (typing, wanted) in [
        (
            format!("{rules}\nentity Tag {{\n  label: "),
            ["String", "Album"],
        ),
        (format!("{rules}\nrole editor : "), ["viewer", "curator"]),
    ] {
        client.change(&rules_path, 4, &typing);
        let line = typing.matches('\n').count();
        let end = json!({ "line": line, "character": typing.rsplit('\n').next().unwrap().len() });
        let completion = client.at("textDocument/completion", &rules_path, end);
        let labels: Vec<&str> = completion
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["label"].as_str().unwrap())
            .collect();
        for label in wanted {
            assert!(labels.contains(&label), "{label} not in {labels:?}");
        }
    }

    // A `let`'s type; a test's data file.
    let text = client.hover(&rules_path, position(&rules, "if staff", 0, "if ".len()));
    assert!(
        text.contains("let staff = subject in Group::\"staff\""),
        "{text}"
    );
    assert!(text.contains("type: `Bool`"), "{text}");
    let tests_path = policies.join("tests/photos.warden");
    let tests = std::fs::read_to_string(&tests_path).unwrap();
    client.open(&tests_path, &tests);
    let definition = client.at(
        "textDocument/definition",
        &tests_path,
        position(&tests, "data \"photos.json\"", 0, "data \"".len()),
    );
    assert_eq!(definition["uri"], uri(&policies.join("tests/photos.json")));

    // The outline: what a file declares.
    client.open(&schema_path, &schema);
    let outline = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri(&schema_path) } }),
    );
    let names: Vec<(&str, u64)> = outline
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["kind"].as_u64().unwrap()))
        .collect();
    for wanted in [("User", 23), ("email", 8), ("archive", 12), ("write", 12)] {
        assert!(names.contains(&wanted), "{wanted:?} not in {names:?}");
    }

    // Formatting: `warden fmt`'s layout, for a file the editor has not saved yet.
    let new_path = policies.join("extra.warden");
    client.open(&new_path, "let   _x=1\n");
    let edits = client.request(
        "textDocument/formatting",
        json!({
            "textDocument": { "uri": uri(&new_path) },
            "options": { "tabSize": 2, "insertSpaces": true },
        }),
    );
    assert_eq!(edits[0]["newText"], "let _x = 1\n");
    client.shut_down();
}

/// In a directory with namespaces, a short action or role name goes to its own namespace's
/// declaration, and a qualified one to the namespace it names.
#[test]
fn definitions_follow_namespaces() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lsp-namespaces");
    let _ = std::fs::remove_dir_all(&root);
    let policies = root.join("policies");
    copy_dir(Path::new("tests/data/namespaces"), &policies);
    let read = |name: &str| std::fs::read_to_string(policies.join(name)).unwrap();
    let (acme, beta, shared) = (
        read("acme.warden"),
        read("beta.warden"),
        read("shared.warden"),
    );
    let mut client = Client::start(&root);
    let definition = |client: &mut Client, file: &str, at: Value| -> Vec<Value> {
        let found = client.at("textDocument/definition", &policies.join(file), at);
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|l| json!({ "uri": l["uri"], "start": l["range"]["start"] }))
            .collect()
    };
    let declared = |file: &str, text: &str, needle: &str, shift: usize| {
        vec![json!({ "uri": uri(&policies.join(file)), "start": position(text, needle, 0, shift) })]
    };
    client.open(&policies.join("beta.warden"), &beta);
    client.open(&policies.join("shared.warden"), &shared);
    // (file used in, its text, the use, where the name starts in it; file declared in, its
    // text, the declaration, where the name starts in it)
    let cases = [
        // beta's `publish` and `editor` are beta's own.
        (
            "beta.warden",
            &beta,
            "allow publish on Doc",
            "allow ",
            "beta.warden",
            &beta,
            "action publish",
            "action ",
        ),
        (
            "beta.warden",
            &beta,
            "given role editor",
            "given role ",
            "beta.warden",
            &beta,
            "role editor",
            "role ",
        ),
        // The shared file's `acme::publish` and `acme::auditor` are acme's.
        (
            "shared.warden",
            &shared,
            "allow acme::publish",
            "allow ",
            "acme.warden",
            &acme,
            "action publish",
            "action ",
        ),
        (
            "shared.warden",
            &shared,
            "if acme::auditor",
            "if ",
            "acme.warden",
            &acme,
            "let auditor",
            "let ",
        ),
    ];
    for (file, text, used, before, home, home_text, declaration, keyword) in cases {
        assert_eq!(
            definition(&mut client, file, position(text, used, 0, before.len())),
            declared(home, home_text, declaration, keyword.len()),
            "{used}"
        );
    }
}

#[test]
fn positions_count_utf16_units_or_utf8_bytes_as_agreed() {
    let text = "entity Photo { name: String }\naction view on Photo\n\
                allow view on Photo if \"é☕𝄞\" == resource.nme\n";
    for (encoding, column) in [("utf-16", 42), ("utf-8", 47)] {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("lsp-{encoding}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("p")).unwrap();
        let file = root.join("p/a.warden");
        std::fs::write(&file, text).unwrap();
        let mut client = Client::start_with(&root, encoding);
        client.open(&file, text);
        let diagnostics = client.diagnostics(&file);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:#?}");
        assert_eq!(
            diagnostics[0]["range"],
            json!({
                "start": { "line": 2, "character": column },
                "end": { "line": 2, "character": column + 3 },
            }),
            "{encoding}"
        );
        // A position past a multi-unit character lands on the right name.
        let hover = client.at(
            "textDocument/hover",
            &file,
            json!({ "line": 2, "character": column - 2 }),
        );
        let shown = hover["contents"]["value"].as_str().unwrap();
        assert!(shown.contains("`resource`: `Photo`"), "{encoding}: {shown}");
        client.shut_down();
    }
}

#[test]
fn diagnostics_carry_what_check_prints() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lsp-snapshot");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("p")).unwrap();
    let file = root.join("p/a.warden");
    let text = "entity Photo { owner: User, public: Bool }\n\
                entity User {}\n\
                entity Photo {}\n\
                action view on Photo\n\
                allow view on Photo if resource.onwer == subject\n\
                let unused = 1 == 1\n";
    std::fs::write(&file, text).unwrap();
    let mut client = Client::start(&root);
    client.open(&file, text);
    let diagnostics = client.diagnostics(&file);
    let shown = serde_json::to_string_pretty(&diagnostics)
        .unwrap()
        .replace(&uri(&file), "file:///p/a.warden");
    insta::assert_snapshot!(shown);
    client.shut_down();
}
