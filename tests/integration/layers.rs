//! The layer order of docs/architecture.md, enforced: every `crate::` path in src/ names a
//! module in a lower layer than its own (or its own module). Modules of one layer are peers and
//! import neither each other: `compile` writes the program and `eval` reads it, and neither
//! knows the other.
//!
//! Test-only code is not part of the runtime's layering: a module declared under
//! `#[cfg(test)]` is skipped, and so is a file from its `#[cfg(test)] mod tests {` on.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import its own layer's module and any module of a
/// lower layer; nothing else.
const LAYERS: &[&[&str]] = &[
    &["source", "redis_client"],
    &["ast"],
    &["syntax"],
    &["check"],
    &["data"],
    &["program"],
    &["compile", "eval"],
    &["engine"],
    &["limit", "capability"],
    &["decide"],
    &["gateway"],
    &["audit"],
    &["policytest"],
    &["bundle"],
    &["server", "lsp", "import"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files of modules declared `#[cfg(test)] mod name;`: test-only, not layered.
fn test_only(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut skipped = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] != "#[cfg(test)]" {
                continue;
            }
            let Some(name) = pair[1]
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
            else {
                continue;
            };
            // `a.rs` declares `a/name.rs`; `a/mod.rs` and `lib.rs` declare their sibling.
            let stem = file.file_stem().unwrap().to_str().unwrap();
            let dir = match stem {
                "mod" | "lib" => file.parent().unwrap().to_path_buf(),
                _ => file.with_extension(""),
            };
            skipped.insert(dir.join(format!("{name}.rs")));
            skipped.insert(dir.join(name).join("mod.rs"));
        }
    }
    skipped
}

/// The modules a line of code names with `crate::`: `crate::a::b` and `crate::{a, b::c}`.
fn named(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        // `warden_crate::x` or `mycrate::x` are not paths of this crate.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Each top-level item of the group, up to its matching `}`.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            out.push(item);
        } else {
            out.push(rest.to_string());
        }
    }
    out.into_iter()
        .map(|path| {
            path.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The imports that point up (or sideways, between peers), as `file:line: from -> to`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let skipped = test_only(&files);
    let mut found = Vec::new();
    for file in &files {
        if skipped.contains(file) {
            continue;
        }
        let relative = file.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap();
        let module = Path::new(first.as_os_str())
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let own = layer(&module)
            .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            let code = line.trim();
            if code == "#[cfg(test)]"
                && lines
                    .get(number + 1)
                    .is_some_and(|next| next.trim().starts_with("mod tests {"))
            {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            for target in named(code) {
                let Some(theirs) = layer(&target) else {
                    panic!(
                        "{}:{}: `crate::{target}` is in no layer",
                        file.display(),
                        number + 1
                    );
                };
                if target != module && theirs >= own {
                    found.push(format!(
                        "{}:{}: {module} -> {target}",
                        relative.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn every_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "imports that point up or between peers (docs/architecture.md lists the layers):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_module_of_the_crate_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .and_then(|rest| rest.strip_suffix(';'))
        else {
            continue;
        };
        assert!(layer(name).is_some(), "module `{name}` is in no layer");
    }
    let mut seen = BTreeSet::new();
    for module in LAYERS.iter().flat_map(|layer| layer.iter()) {
        assert!(seen.insert(module), "module `{module}` is in two layers");
    }
}

#[test]
fn paths_are_read_from_uses_and_groups() {
    assert_eq!(named("use crate::eval::request::{self, Parts};"), ["eval"]);
    assert_eq!(
        named("use crate::{check::schema, data::{json, store}, eval};"),
        ["check", "data", "eval"]
    );
    assert_eq!(
        named("let x = crate::program::Program::default(); crate::source::Span::default()"),
        ["program", "source"]
    );
    assert!(named("use warden_core::x;").is_empty());
}

/// Inside `capability`, the token format stands on the keys: `keys.rs` names nothing of
/// `token.rs` (key ids and the errors of finding a key are the keys' own), so the two do not
/// import each other.
#[test]
fn capability_keys_stand_below_the_token_format() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/capability");
    let keys = std::fs::read_to_string(src.join("keys.rs")).unwrap();
    let runtime = keys.split("#[cfg(test)]").next().unwrap_or_default();
    let named: Vec<&str> = runtime
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter(|line| line.contains("token::"))
        .collect();
    assert!(named.is_empty(), "keys.rs names token.rs: {named:?}");
    let token = std::fs::read_to_string(src.join("token.rs")).unwrap();
    assert!(
        token.contains("use super::keys::"),
        "token.rs reads its keys from keys.rs"
    );
}
