//! Generates the parser from `grammar/warden.lalrpop` into `OUT_DIR`, and records the commit
//! for `--version`.
use std::process::Command;

fn main() {
    // The grammar lives outside `src/`, so tell lalrpop where to look.
    if let Err(error) = lalrpop::Configuration::new()
        .use_cargo_dir_conventions()
        .set_in_dir("grammar")
        .emit_rerun_directives(true)
        .process()
    {
        eprintln!("lalrpop failed: {error}");
        std::process::exit(1);
    }
    commit();
}

/// `WARDEN_COMMIT`: the short hash of `HEAD`, or `unknown` outside a git checkout (a source
/// tarball, a crate from a registry) or without git.
fn commit() {
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        let text = text.trim();
        (output.status.success() && !text.is_empty()).then(|| text.to_string())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=WARDEN_COMMIT={commit}");
    // Run again when HEAD moves: HEAD itself (a checkout), the branch it names (a commit).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
        watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    }
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
