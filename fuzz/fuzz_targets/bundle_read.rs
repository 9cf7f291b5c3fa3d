//! Arbitrary bytes as a policy bundle: the reader may refuse them but never panic, hang or
//! allocate past its caps; whatever it accepts and finds consistent with its manifest unpacks
//! to plain files inside the directory it is given, and nowhere else.
#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use warden::bundle::{self, Limits};

/// Small caps, so that a bomb is found quickly and memory stays low.
const LIMITS: Limits = Limits {
    member: 64 * 1024,
    total: 256 * 1024,
    members: 64,
};

fuzz_target!(|data: &[u8]| {
    // Raw bytes are rarely valid gzip: also try them as the tar stream inside one, so the
    // fuzzer reaches the archive reader.
    let mut inputs = vec![data.to_vec()];
    if !data.starts_with(&[0x1f, 0x8b]) {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = encoder.write_all(data);
        if let Ok(wrapped) = encoder.finish() {
            inputs.push(wrapped);
        }
    }
    for input in inputs {
        let Ok(archive) = bundle::read(&input, &LIMITS) else {
            continue;
        };
        // No key signed this input: verification must refuse it.
        assert!(archive.verify(&[]).is_err());
        if archive.check_files().is_err() {
            continue;
        }
        let root = tempfile::tempdir().expect("a temporary directory");
        let dir = root.path().join("bundle");
        if archive.unpack(&dir).is_ok() {
            assert_inside(&dir, &dir);
        }
    }
});

/// Every entry below `dir` is a plain file or a directory (no link), inside `root`.
fn assert_inside(root: &Path, dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("read the unpacked directory") {
        let entry = entry.expect("an entry");
        let kind = entry.file_type().expect("its type");
        let path = entry.path();
        assert!(path.starts_with(root), "{} escaped", path.display());
        assert!(!kind.is_symlink(), "{} is a link", path.display());
        if kind.is_dir() {
            assert_inside(root, &path);
        }
    }
}
