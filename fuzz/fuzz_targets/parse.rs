//! Arbitrary bytes through the lexer and parser, and every diagnostic rendered both ways: none
//! of it may panic, hang or overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::source::SourceFile;

/// Smaller than any thread Warden runs on (Rust gives spawned threads 2 MiB; the sanitizer's
/// frames are larger than release frames), so a recursion that grows with the input overflows
/// here first.
const STACK: usize = 512 * 1024;

fuzz_target!(|data: &[u8]| {
    let texts = match std::str::from_utf8(data) {
        Ok(text) => vec![text.to_string()],
        // `source::read_source` keeps the valid prefix of a file that is not UTF-8 (to point at
        // the first bad byte); a lossy decoding also reaches whatever follows it.
        Err(error) => vec![
            String::from_utf8_lossy(&data[..error.valid_up_to()]).into_owned(),
            String::from_utf8_lossy(data).into_owned(),
        ],
    };
    let worker = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            for text in texts {
                let source = SourceFile::new("fuzz.warden", text);
                let (parsed, diagnostics) = warden::syntax::parse(&source);
                for diagnostic in &diagnostics {
                    let _ = diagnostic.to_json();
                    let _ = diagnostic.location();
                }
                // Rendering is slow (it lays out the source lines); a few per input exercise it.
                for diagnostic in diagnostics.iter().take(2) {
                    let _ = diagnostic.render(false);
                }
                drop(parsed);
            }
        })
        .expect("spawn the parser thread");
    // A panic in the worker is a finding: re-raise it where libFuzzer sees it.
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
});
