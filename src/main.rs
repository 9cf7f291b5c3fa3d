//! The `warden` binary: parse flags, run the subcommand, exit with its code.

use clap::Parser;

// Deciding a request allocates little, but parsing its JSON allocates much; mimalloc makes
// those small allocations markedly cheaper than the system allocator under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` (index 4 of `mi_option_t` in mimalloc v2 and v3).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Before anything allocates (Rust's runtime allocates before `main`), switch off mimalloc's
/// eager commit of its first arena: on Linux, with transparent huge pages, it makes megabytes
/// resident before anything is served; committed on demand, a sidecar stays small, at no
/// measurable cost in throughput (figures in docs/sidecar.md). Runs
/// from `.init_array`, like a C constructor; it must not allocate.
#[cfg(target_os = "linux")]
#[used]
#[allow(
    unsafe_code,
    reason = "a constructor entry, the only way to run before the runtime allocates"
)]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

#[cfg(target_os = "linux")]
extern "C" fn configure_allocator() {
    #[allow(unsafe_code, reason = "a plain C call setting an allocator option")]
    // SAFETY: mi_option_set only stores an integer option, and allocates nothing.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

fn main() -> std::process::ExitCode {
    let cli = warden::cli::Cli::parse();
    warden::cli::run(cli).into()
}
