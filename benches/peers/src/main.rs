//! Warden side by side with Cedar, Rego (regorus) and Casbin: the same models in every engine,
//! proven to decide every request of a seeded request set alike, then timed over the same span
//! (AuthZEN JSON bytes + the loaded store → decision).
//!
//! Run (from the repository root):
//!   cargo run --release --manifest-path benches/peers/Cargo.toml
//! Modes:
//!   (no argument)          equivalence, then timing, then peak RSS; prints a markdown report
//!   equiv                  equivalence only
//!   grants                 the photo-sharing grants only (every style at every size), then
//!                          their peak-RSS table
//!   rss                    peak RSS only
//!   entities               entity loading only: Warden and Cedar at 250,000 and 1,000,000 users
//!   load-only KEY DIR      load the 10,000-rule per-album model from DIR (written by the full
//!                          run) in one engine and exit, for `/usr/bin/time -v` (KEY: none,
//!                          warden, cedar, cedar-sliced, rego-rules, rego-data, casbin)
//!   load-only grants STYLE N KEY DIR
//!                          the same for the grants model (STYLE: role-scoped, bindings)
//!   load-only entities ENGINE DIR
//!                          the same for the entities (ENGINE: warden, cedar)
//! Options: --only SUBSTRING (models whose name contains it), --budget-ms N (per timed cell)

mod albums;
mod cedar;
mod common;
mod entities;
mod github;
mod grants;
mod photos;
mod rego;
mod tinytodo;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use casbin::{CoreApi, DefaultModel, Enforcer, StringAdapter};

use common::{Model, Req};

/// A Casbin enforcer from model text and policy CSV text (Casbin's loaders are async).
pub fn casbin_enforcer(model: &str, policy: &str) -> Enforcer {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let model = DefaultModel::from_str(model)
            .await
            .expect("the Casbin model parses");
        Enforcer::new(model, StringAdapter::new(policy))
            .await
            .expect("the Casbin enforcer loads")
    })
}

struct Options {
    only: Option<String>,
    budget: Duration,
}

/// The models wanted, each built only when its turn comes (the 100,000-grant models hold
/// gigabytes in the engines that scan, so they are never all loaded at once).
fn models(options: &Options) -> Vec<(String, Box<dyn FnOnce() -> Model>)> {
    let wanted = |name: &str| options.only.as_deref().is_none_or(|o| name.contains(o));
    let mut out: Vec<(String, Box<dyn FnOnce() -> Model>)> = Vec::new();
    let fixed: [(&str, fn() -> Model); 3] = [
        ("photo archive", photos::model),
        ("todo lists (TinyTodo)", tinytodo::model),
        ("code hosting (GitHub)", github::model),
    ];
    for (name, build) in fixed {
        if wanted(name) {
            out.push((name.to_string(), Box::new(build)));
        }
    }
    for rules in albums::RULE_COUNTS {
        let name = albums::model_name(rules);
        if wanted(&name) {
            out.push((name, Box::new(move || albums::model(rules))));
        }
    }
    for style in grants::STYLES {
        for n in grants::SIZES {
            let name = grants::model_name(style, n);
            if wanted(&name) {
                out.push((name, Box::new(move || grants::model(style, n))));
            }
        }
    }
    out
}

/// Every contender decides every request it takes; Warden's decision is the reference.
/// Returns the number of disagreements.
fn equivalence(model: &mut Model) -> usize {
    let started = Instant::now();
    let mut allows = 0usize;
    let mut disagreements = 0usize;
    let (reference, others) = model
        .contenders
        .split_first_mut()
        .expect("a reference engine");
    let mut counted = vec![0usize; others.len()];
    for req in &model.requests {
        let expected = reference.decider.decide(req);
        allows += usize::from(expected);
        for (i, other) in others.iter_mut().enumerate() {
            if !other.takes(req) {
                continue;
            }
            counted[i] += 1;
            let got = other.decider.decide(req);
            if got != expected {
                disagreements += 1;
                if disagreements <= 10 {
                    eprintln!(
                        "DISAGREEMENT [{}] {}: {} says {}, {} says {} — now {} — {}",
                        model.name,
                        other.label(),
                        reference.label(),
                        verdict(expected),
                        other.label(),
                        verdict(got),
                        req.now,
                        String::from_utf8_lossy(&req.body)
                    );
                }
            }
        }
    }
    let total = model.requests.len();
    let who: Vec<String> = others
        .iter()
        .zip(&counted)
        .map(|(c, n)| format!("{} {n}", c.label()))
        .collect();
    eprintln!(
        "equivalence [{}]: {total} distinct requests, {allows} allow / {} deny ({:.0}% allow); decided by {} {total}, {}; {} in {:.1}s",
        model.name,
        total - allows,
        100.0 * allows as f64 / total as f64,
        reference.label(),
        who.join(", "),
        if disagreements == 0 {
            "all agree".to_string()
        } else {
            format!("{disagreements} DISAGREEMENTS")
        },
        started.elapsed().as_secs_f64()
    );
    disagreements
}

fn verdict(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

struct Stats {
    median: f64,
    p99: f64,
    calls: usize,
}

/// The per-call runner: warm up, then time each call with `Instant`, cycling through the
/// request set, until the budget or 100,000 calls; report percentiles (in µs).
fn measure(decider: &mut dyn common::Decider, requests: &[&Req], budget: Duration) -> Stats {
    let warmup = Instant::now();
    let mut i = 0usize;
    while warmup.elapsed() < budget / 10 && i < requests.len().min(2_000) {
        std::hint::black_box(decider.decide(requests[i % requests.len()]));
        i += 1;
    }
    let mut samples: Vec<u64> = Vec::with_capacity(100_000);
    let start = Instant::now();
    let mut i = 0usize;
    while samples.len() < 100_000 && (start.elapsed() < budget || samples.len() < 20) {
        let req = requests[i % requests.len()];
        let t = Instant::now();
        std::hint::black_box(decider.decide(std::hint::black_box(req)));
        samples.push(t.elapsed().as_nanos() as u64);
        i += 1;
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize] as f64 / 1_000.0;
    Stats {
        median: at(0.5),
        p99: at(0.99),
        calls: samples.len(),
    }
}

struct Row {
    model: String,
    label: String,
    stats: Stats,
    warden_median: f64,
    load: Duration,
}

fn fmt_us(us: f64) -> String {
    if us >= 1_000.0 {
        format!("{:.0}", us)
    } else if us >= 100.0 {
        format!("{:.0}", us)
    } else if us >= 10.0 {
        format!("{:.1}", us)
    } else {
        format!("{:.2}", us)
    }
}

fn fmt_ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.1}×")
    }
}

fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1_000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

fn rss_kib(args: &[&str], dir: &std::path::Path) -> Option<u64> {
    let key = args.join(" ");
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(exe)
        .arg("load-only")
        .args(args)
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "load-only {key} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.trim().parse().ok())
}

/// Peak RSS (KiB) per engine key, each in its own process under `/usr/bin/time -v`.
fn peak_rss() -> Vec<(&'static str, u64)> {
    let mut rss = Vec::new();
    if !std::path::Path::new("/usr/bin/time").exists() {
        eprintln!("peak RSS skipped: /usr/bin/time is missing (Debian: apt-get install -y time)");
        return rss;
    }
    let dir = common::ScratchDir::new("rss");
    albums::texts(10_000).write(&dir.0);
    for key in albums::LOAD_KEYS {
        if let Some(kib) = rss_kib(&[key], &dir.0) {
            eprintln!("peak RSS, 10,000 rules, {key}: {} MiB", kib / 1024);
            rss.push((key, kib));
        }
    }
    rss
}

/// Peak RSS (KiB) per style and engine key, at the largest size of the grants model.
fn peak_rss_grants() -> Vec<(grants::Style, &'static str, u64)> {
    let mut rss = Vec::new();
    if !std::path::Path::new("/usr/bin/time").exists() {
        return rss;
    }
    let n = grants::RSS_SIZE;
    for style in grants::STYLES {
        let dir = common::ScratchDir::new("rss-grants");
        grants::texts(style, n).write(&dir.0);
        let n_text = n.to_string();
        for key in grants::LOAD_KEYS {
            if let Some(kib) = rss_kib(&["grants", style.key(), &n_text, key], &dir.0) {
                eprintln!(
                    "peak RSS, {}: {key}: {} MiB",
                    grants::model_name(style, n),
                    kib / 1024
                );
                rss.push((style, key, kib));
            }
        }
    }
    rss
}

fn print_rss_grants(rss: &[(grants::Style, &'static str, u64)]) {
    let n = grants::RSS_SIZE;
    for style in grants::STYLES {
        let rows: Vec<_> = rss.iter().filter(|(s, _, _)| *s == style).collect();
        if rows.is_empty() {
            continue;
        }
        let base = rows
            .iter()
            .find(|(_, k, _)| *k == "none")
            .map_or(0, |(_, _, v)| *v);
        println!();
        println!(
            "| peak RSS of a process loading {} | MiB | MiB above the bare process |",
            grants::model_name(style, n)
        );
        println!("|---|---:|---:|");
        for (_, key, kib) in rows {
            println!(
                "| {} | {:.1} | {:.1} |",
                grants::load_key_label(key),
                *kib as f64 / 1024.0,
                kib.saturating_sub(base) as f64 / 1024.0
            );
        }
    }
}

fn print_rss(rss: &[(&'static str, u64)]) {
    if !rss.is_empty() {
        let base = rss
            .iter()
            .find(|(k, _)| *k == "none")
            .map(|(_, v)| *v)
            .unwrap_or(0);
        println!();
        println!(
            "| peak RSS of a process loading the per-album model, 10,000 rules + 10,000 entities | MiB | MiB above the bare process |"
        );
        println!("|---|---:|---:|");
        for (key, kib) in rss {
            println!(
                "| {} | {:.1} | {:.1} |",
                albums::load_key_label(key),
                *kib as f64 / 1024.0,
                kib.saturating_sub(base) as f64 / 1024.0
            );
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores (nproc), {cpu}")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn versions() -> String {
    let lock = std::fs::read_to_string(common::crate_dir().join("Cargo.lock")).unwrap_or_default();
    let mut out = Vec::new();
    for name in ["cedar-policy", "regorus", "casbin", "serde_json"] {
        let mut lines = lock.lines();
        while let Some(l) = lines.next() {
            if l == format!("name = \"{name}\"") {
                if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = ")) {
                    out.push(format!("{name} {}", v.trim_matches('"')));
                }
                break;
            }
        }
    }
    format!("warden (this repository), {}", out.join(", "))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("load-only") {
        let arg = |i: usize| args.get(i).map_or("", String::as_str);
        if arg(1) == "grants" {
            let (Some(style), Ok(n)) = (grants::Style::parse(arg(2)), arg(3).parse()) else {
                eprintln!("usage: load-only grants STYLE N KEY DIR");
                return ExitCode::from(2);
            };
            let held = grants::load_only(style, n, arg(4), std::path::Path::new(arg(5)));
            println!("loaded {}", arg(4));
            drop(std::hint::black_box(held));
            return ExitCode::SUCCESS;
        }
        if arg(1) == "entities" {
            let held = entities::load_only(arg(2), std::path::Path::new(arg(3)));
            println!("loaded {}", arg(2));
            drop(std::hint::black_box(held));
            return ExitCode::SUCCESS;
        }
        let key = args.get(1).map(String::as_str).unwrap_or("none");
        let Some(dir) = args.get(2) else {
            eprintln!("usage: load-only KEY DIR (DIR written by the full run)");
            return ExitCode::from(2);
        };
        let held = albums::load_only(key, std::path::Path::new(dir));
        println!("loaded {key}");
        drop(std::hint::black_box(held));
        return ExitCode::SUCCESS;
    }
    let mut options = Options {
        only: None,
        budget: Duration::from_millis(1_500),
    };
    if args.first().map(String::as_str) == Some("rss") {
        print_rss(&peak_rss());
        print_rss_grants(&peak_rss_grants());
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("entities") {
        entities::report();
        return ExitCode::SUCCESS;
    }
    let mut equiv_only = false;
    let mut grants_only = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "equiv" => equiv_only = true,
            // Every grants model's name, and no other's, holds "grants " (see grants::model_name).
            "grants" => {
                grants_only = true;
                options.only = Some("grants ".to_string());
            }
            "--only" => options.only = it.next().cloned(),
            "--budget-ms" => {
                options.budget =
                    Duration::from_millis(it.next().and_then(|v| v.parse().ok()).unwrap_or(1_500))
            }
            other => {
                eprintln!("unknown argument `{other}` (see the comment at the top of src/main.rs)");
                return ExitCode::from(2);
            }
        }
    }

    let load_before = loadavg();
    let models = models(&options);

    // Per model: equivalence first (nothing of a model is timed unless every engine agrees on
    // every request), then timing; then the model is dropped before the next one is built.
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (name, build) in models {
        eprintln!("loading {name}…");
        let mut model = build();
        let disagreements = equivalence(&mut model);
        if disagreements > 0 {
            eprintln!(
                "FAILED: {disagreements} disagreements (the first are listed above); {name} and what follows not timed"
            );
            return ExitCode::FAILURE;
        }
        if equiv_only {
            continue;
        }
        let mut warden_median = 0.0;
        for (i, c) in model.contenders.iter_mut().enumerate() {
            let taken: Vec<&Req> = model.requests.iter().filter(|r| c.takes(r)).collect();
            let stats = measure(c.decider.as_mut(), &taken, options.budget);
            if i == 0 {
                warden_median = stats.median;
            }
            if let Some((_, note)) = c.excludes {
                notes.push(note.to_string());
            }
            eprintln!(
                "timed [{}] {}: median {} µs, p99 {} µs ({} calls)",
                model.name,
                c.label(),
                fmt_us(stats.median),
                fmt_us(stats.p99),
                stats.calls
            );
            rows.push(Row {
                model: model.name.clone(),
                label: c.label(),
                stats,
                warden_median,
                load: c.load,
            });
        }
    }
    if equiv_only {
        return ExitCode::SUCCESS;
    }

    // 3. Peak RSS of a process holding the 10,000-rule set, per engine.
    let (rss, rss_grants) = if options.only.is_none() {
        (peak_rss(), peak_rss_grants())
    } else if grants_only {
        (Vec::new(), peak_rss_grants())
    } else {
        (Vec::new(), Vec::new())
    };

    // 4. The report.
    println!("| model | engine | median µs | p99 µs | median ÷ Warden's | load ms | calls timed |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.model,
            r.label,
            fmt_us(r.stats.median),
            fmt_us(r.stats.p99),
            fmt_ratio(r.stats.median / r.warden_median),
            fmt_ms(r.load),
            r.stats.calls
        );
    }
    print_rss(&rss);
    print_rss_grants(&rss_grants);
    if options.only.is_none() {
        entities::report();
    }
    notes.sort();
    notes.dedup();
    println!();
    for n in notes {
        println!("- {n}");
    }
    println!();
    println!(
        "- machine: {}; load average before {load_before}, after {}",
        machine(),
        loadavg()
    );
    println!("- versions: {}", versions());
    println!(
        "- per cell: warm-up, then up to 100,000 calls or {} ms, each call timed with std::time::Instant",
        options.budget.as_millis()
    );
    ExitCode::SUCCESS
}
