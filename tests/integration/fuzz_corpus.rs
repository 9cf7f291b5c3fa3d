//! Replays the saved fuzz corpus (`fuzz/corpus/parse/`) through the parser on the stable
//! toolchain, so CI exercises every input the fuzzer kept, crash reproducers included, without
//! nightly or cargo-fuzz. Each input goes through the same steps as the fuzz target.

use std::path::Path;

use warden::source::SourceFile;

#[test]
fn the_fuzz_corpus_parses_without_panic_or_overflow() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    // The seeds alone are the policies and the syntax corpus; an empty directory would make
    // this test pass without testing anything.
    assert!(
        inputs.len() >= 20,
        "only {} inputs in {}",
        inputs.len(),
        dir.display()
    );

    let replayed = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for (name, bytes) in &inputs {
                // As in fuzz/fuzz_targets/parse.rs: the text as read_source keeps it, and a
                // lossy decoding of all of it.
                let texts = match std::str::from_utf8(bytes) {
                    Ok(text) => vec![text.to_string()],
                    Err(error) => vec![
                        String::from_utf8_lossy(&bytes[..error.valid_up_to()]).into_owned(),
                        String::from_utf8_lossy(bytes).into_owned(),
                    ],
                };
                for text in texts {
                    let source = SourceFile::new(name.as_str(), text);
                    let (_, diagnostics) = warden::syntax::parse(&source);
                    for diagnostic in &diagnostics {
                        assert!(diagnostic.location().is_some(), "{name}: {diagnostic:?}");
                        assert!(!diagnostic.render(false).is_empty());
                        let _ = diagnostic.to_json();
                    }
                }
            }
            inputs.len()
        })
        .unwrap()
        .join()
        .expect("an input of the fuzz corpus panicked the parser");
    assert!(replayed >= 20);
}

/// Beyond the fuzz target: every corpus input that parses cleanly is also checked, compiled
/// when it checks, and formatted, on a thread with the stack Rust gives a spawned thread (the
/// smallest Warden runs on). The deep shapes (`deep-*`: a chain of `let`s past the depth
/// limit, brackets and `and` chains at the size limit) are there for this.
#[test]
fn the_fuzz_corpus_checks_compiles_and_formats_on_a_small_thread() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    let checked = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let mut checked = Vec::new();
            for path in paths {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let (parsed, diagnostics) =
                    warden::syntax::parse(&SourceFile::new(name.as_str(), text));
                if !diagnostics.is_empty() {
                    continue;
                }
                let formatted = warden::syntax::format_file(&parsed);
                let (again, problems) =
                    warden::syntax::parse(&SourceFile::new(name.as_str(), formatted.clone()));
                assert!(
                    problems.is_empty(),
                    "{name}: the formatted text does not parse"
                );
                assert_eq!(warden::syntax::format_file(&again), formatted, "{name}");
                let files = [parsed];
                let result = warden::check::check(&files);
                let errors: Vec<String> = result
                    .diagnostics
                    .iter()
                    .filter(|d| d.is_error())
                    .filter_map(|d| d.code())
                    .collect();
                if errors.is_empty() {
                    let (store, _) = warden::data::load_store(&[], &result.schema);
                    let compiled =
                        warden::compile::compile(&files, &result.schema, store, "corpus".into());
                    assert!(compiled.is_ok(), "{name}: checks but does not compile");
                }
                checked.push((name, errors));
            }
            checked
        })
        .unwrap()
        .join()
        .expect("an input of the fuzz corpus panicked or overflowed a later stage");
    let errors_of = |wanted: &str| {
        checked
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, errors)| errors.clone())
            .unwrap_or_else(|| panic!("{wanted} is missing or does not parse"))
    };
    assert_eq!(
        errors_of("deep-let_chain.warden"),
        ["warden::check::too_deep"]
    );
    for shape in [
        "deep-parens.warden",
        "deep-and_chain.warden",
        "deep-not.warden",
    ] {
        assert_eq!(errors_of(shape), Vec::<String>::new(), "{shape}");
    }
}
