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
