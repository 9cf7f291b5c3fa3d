//! Printing diagnostics for people (rustc-style) or tools (JSON).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::cli::Format;
use crate::source::Diagnostic;

/// When to color what is written for people: diagnostics and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// When writing to a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    Always,
    Never,
}

/// The `--color` of this run, set once by [`crate::cli::run`] before any output.
static COLOR_WHEN: AtomicU8 = AtomicU8::new(ColorWhen::Auto as u8);

pub(crate) fn set_color(when: ColorWhen) {
    COLOR_WHEN.store(when as u8, Ordering::Relaxed);
}

/// Whether to color text written to `stream`: the `--color` flag, else <https://no-color.org>.
pub fn color(stream: &impl IsTerminal) -> bool {
    match COLOR_WHEN.load(Ordering::Relaxed) {
        x if x == ColorWhen::Always as u8 => true,
        x if x == ColorWhen::Never as u8 => false,
        _ => stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Writes diagnostics to stderr (human) or stdout (JSON, one array).
pub(crate) fn print_diagnostics(diagnostics: &[Diagnostic], format: Format) {
    match format {
        Format::Human => {
            let color = color(&std::io::stderr());
            let mut stderr = std::io::stderr().lock();
            for diagnostic in diagnostics {
                let _ = writeln!(stderr, "{}", diagnostic.render(color));
            }
        }
        Format::Json => {
            let json: Vec<_> = diagnostics.iter().map(Diagnostic::to_json).collect();
            let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".to_string());
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}

/// Writes diagnostics that stopped a command: to stderr (human), or as one JSON object
/// `{"diagnostics": [...]}` on stdout, the shape a command's JSON report would have had.
pub(crate) fn print_failure(diagnostics: &[Diagnostic], format: Format) {
    match format {
        Format::Human => print_diagnostics(diagnostics, format),
        Format::Json => {
            let list: Vec<_> = diagnostics.iter().map(Diagnostic::to_json).collect();
            let text = serde_json::to_string_pretty(&serde_json::json!({ "diagnostics": list }))
                .unwrap_or_default();
            let _ = writeln!(std::io::stdout().lock(), "{text}");
        }
    }
}

/// `2 errors, 1 warning` — the closing line of a human report.
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}
