//! Generates the parser from `grammar/warden.lalrpop` into `OUT_DIR`.
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
}
