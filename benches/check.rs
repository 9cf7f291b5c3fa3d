//! Parse + check of generated policy sets with declarations: 1,000 and 10,000 rules.
//! Target: 10,000 rules in under 100 ms.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::source::SourceFile;

const DECLARATIONS: &str = r#"
entity Group in [Group]
entity User in [Group] {
  email: String, department: String, level: Int, suspended?: Bool, roles: Set<String>,
  ticket?: { album: Album, expires: Time },
  properties: { mfa?: Bool },
}
entity Album in [Album] { owner: User, public: Bool }
entity Photo in [Album] { owner: User, album: Album, tags: Set<String> }
action view, comment on Photo
action upload, list on Album
action delete on Photo, Album
action archive on Album context { reason: String }
action group write = [comment, upload]
role viewer { allow view, list }
role contributor : viewer { allow write }
role curator : contributor { allow delete if subject.properties has mfa and subject.properties.mfa }
let staff = subject in Group::"staff"
deny * if subject has suspended and subject.suspended
"#;

/// One generated rule; the shapes cycle so every part of the checker is exercised.
fn rule(i: usize) -> String {
    match i % 8 {
        0 => format!("@id(\"r{i}\") allow view on Photo if resource in Album::\"a{i}\""),
        1 => format!(
            "allow view, comment on Photo if resource.owner == subject and subject.level >= {}",
            i % 10
        ),
        2 => format!("allow list on Album if subject.department == \"dept-{i}\" or staff"),
        3 => "allow view on Photo if subject has ticket and subject.ticket.album == resource.album and now() < subject.ticket.expires".to_string(),
        4 => format!(
            "allow archive on Album if staff and hour(now(), \"Europe/Paris\") >= 9 and context.reason like \"case-{i}-*\""
        ),
        5 => format!(
            "allow delete on Photo, Album if subject in Group::\"g{i}\" and resource.owner.email like \"*@example.com\""
        ),
        6 => format!(
            "allow view on Photo if resource.tags contains \"t{i}\" and subject.roles contains \"r{i}\""
        ),
        _ => format!(
            "deny upload on Album if resource.public and not (subject in Group::\"uploaders-{i}\")"
        ),
    }
}

fn policy(rules: usize) -> String {
    let mut text = String::from(DECLARATIONS);
    for i in 0..rules {
        text.push_str(&rule(i));
        text.push('\n');
    }
    text
}

fn bench(c: &mut Criterion) {
    for rules in [1_000, 10_000] {
        let source = SourceFile::new("bench.warden", policy(rules));
        // A generated set must itself be clean, or the bench measures error reporting.
        let (parsed, problems) = warden::syntax::parse(&source);
        let checked = warden::check::check(std::slice::from_ref(&parsed));
        assert!(
            problems.is_empty() && checked.diagnostics.is_empty(),
            "{problems:?} {:?}",
            checked.diagnostics
        );

        c.bench_function(&format!("parse+check {rules} rules"), |b| {
            b.iter(|| {
                let (parsed, _) = warden::syntax::parse(black_box(&source));
                black_box(warden::check::check(std::slice::from_ref(&parsed)))
            })
        });
        c.bench_function(&format!("check {rules} rules"), |b| {
            b.iter(|| {
                black_box(warden::check::check(std::slice::from_ref(black_box(
                    &parsed,
                ))))
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
