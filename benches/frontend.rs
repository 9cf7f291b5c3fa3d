//! The front end's speed: lexing, and lexing + parsing, of generated policy files of 1,000 and
//! 10,000 rules. Target: 10,000 rules parsed in under 50 ms.
//!
//! Run with `cargo bench --bench frontend`.

use std::fmt::Write;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use warden::source::SourceFile;
use warden::syntax::{self, lexer};

/// A photo archive with `rules` grants, shaped like a real deployment's: mostly per-album
/// grants (the case the decision graph indexes), some with extra conditions, a few denies.
fn policy(rules: usize) -> String {
    let mut text = String::from(
        "// Generated for the front-end benchmark.\n\
         entity Group in [Group]\n\
         entity User in [Group] {\n  email: String,\n  department: String,\n  \
         suspended?: Bool,\n  roles: Set<String>,\n  properties: { mfa?: Bool },\n}\n\
         entity Album in [Album] { owner: User, public: Bool }\n\
         entity Photo in [Album] { owner: User, album: Album }\n\
         action view, comment on Photo\n\
         action upload, list on Album\n\
         action delete on Photo, Album context { mfa?: Bool }\n\
         action group write = [comment, upload]\n\
         role viewer { allow view, list }\n\
         role contributor : viewer { allow write }\n\
         let staff = subject in Group::\"staff\"\n\n",
    );
    for i in 0..rules {
        let _ = match i % 10 {
            0..=6 => writeln!(
                text,
                "@id(\"g{i}\")\nallow view on Photo if resource in Album::\"a{i}\""
            ),
            7 => writeln!(
                text,
                "@id(\"g{i}\")\nallow view, comment on Photo if resource in Album::\"a{i}\"\n  \
                 and subject in Group::\"team{}\"",
                i % 97
            ),
            8 => writeln!(
                text,
                "@id(\"g{i}\")\nallow upload, list on Album if resource == Album::\"a{i}\"\n  \
                 and subject.department == \"dept{}\" and now() < resource.expires + 24h",
                i % 13
            ),
            _ => writeln!(
                text,
                "// Deleting from album {i} needs MFA.\n@id(\"d{i}\")\n\
                 deny delete on Photo if resource in Album::\"a{i}\"\n  \
                 and not (context has mfa and context.mfa)"
            ),
        };
    }
    text
}

fn frontend(c: &mut Criterion) {
    let mut group = c.benchmark_group("frontend");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for rules in [1_000, 10_000] {
        let source = SourceFile::new("bench.warden", policy(rules));
        // A benchmark of a file that does not parse would time the error path instead.
        let (parsed, diagnostics) = syntax::parse(&source);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(parsed.ast.items.len(), rules + 11);

        group.throughput(Throughput::Bytes(source.text().len() as u64));
        group.bench_with_input(BenchmarkId::new("lex", rules), &source, |b, source| {
            b.iter(|| lexer::lex(black_box(source.text())))
        });
        group.bench_with_input(BenchmarkId::new("parse", rules), &source, |b, source| {
            b.iter(|| syntax::parse(black_box(source)))
        });
    }
    group.finish();
}

criterion_group!(benches, frontend);
criterion_main!(benches);
