//! Entity loading at scale: N ordinary users in 1,000 groups, the `entities` shape
//! of `benches/gen_shapes.py`, loaded by Warden (a policy directory: parse, check, data,
//! compile) and by Cedar (`Entities::from_json_str` through the schema), each in its own
//! process under `/usr/bin/time`: wall-clock and CPU time, peak RSS.

use std::io::{BufWriter, Write as _};
use std::path::Path;

use serde_json::json;

pub const SIZES: [usize; 2] = [250_000, 1_000_000];

const GROUPS: usize = 1_000;

const WARDEN_POLICY: &str = r#"entity Group in Group
entity User in Group { department: String, clearance: Int, roles: Set<String> }
entity Album in Album { department: String }
entity Photo in Album { album: Album }
action view, edit, share, delete, admin on Photo
allow view if subject in Group::"g1"
"#;

const CEDAR_SCHEMA: &str = r#"
entity Group in [Group];
entity User in [Group] = { department: String, clearance: Long, roles: Set<String> };
entity Album in [Album] = { department: String };
entity Photo in [Album] = { album: Album };
action view, edit, share, delete, admin appliesTo { principal: User, resource: Photo };
"#;

fn department(id: &str) -> String {
    format!("d{}", id.bytes().map(u32::from).sum::<u32>() % 10)
}

/// Writes `dir/warden/` (policy and `data/entities.json`, one entity a line, as
/// `gen_shapes.py entities` writes it) and `dir/cedar.entities.json`, the same entities in
/// Cedar's format.
pub fn write(n: usize, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("warden/data"))?;
    std::fs::write(dir.join("warden/policy.warden"), WARDEN_POLICY)?;
    let mut warden = BufWriter::new(std::fs::File::create(
        dir.join("warden/data/entities.json"),
    )?);
    let mut cedar = BufWriter::new(std::fs::File::create(dir.join("cedar.entities.json"))?);
    writeln!(warden, "{{\"entities\": [")?;
    writeln!(cedar, "[")?;
    let mut first = true;
    let mut entity = |w: serde_json::Value, c: serde_json::Value| -> std::io::Result<()> {
        let sep = if first { "" } else { ",\n" };
        first = false;
        write!(warden, "{sep}  {w}")?;
        write!(cedar, "{sep}  {c}")
    };
    for g in 0..GROUPS {
        let id = format!("g{g}");
        entity(
            json!({"type": "Group", "id": id}),
            json!({"uid": {"type": "Group", "id": id}, "attrs": {}, "parents": []}),
        )?;
    }
    for u in 0..n {
        let (id, group) = (format!("u{u}"), format!("g{}", u % GROUPS));
        let dept = department(&id);
        entity(
            json!({"type": "User", "id": id, "attributes": {"department": dept, "clearance": 3, "roles": []}, "parents": [group]}),
            json!({"uid": {"type": "User", "id": id}, "attrs": {"department": dept, "clearance": 3, "roles": []},
                "parents": [{"type": "Group", "id": group}]}),
        )?;
    }
    entity(
        json!({"type": "Album", "id": "a0", "attributes": {"department": "d0"}}),
        json!({"uid": {"type": "Album", "id": "a0"}, "attrs": {"department": "d0"}, "parents": []}),
    )?;
    entity(
        json!({"type": "Photo", "id": "p0", "attributes": {"album": "a0"}, "parents": ["a0"]}),
        json!({"uid": {"type": "Photo", "id": "p0"}, "attrs": {"album": {"type": "Album", "id": "a0"}},
            "parents": [{"type": "Album", "id": "a0"}]}),
    )?;
    writeln!(warden, "\n]}}")?;
    writeln!(cedar, "\n]")?;
    warden.flush()?;
    cedar.flush()
}

/// For the measurement: load the entities of `dir` in one engine and hold them.
pub fn load_only(engine: &str, dir: &Path) -> Box<dyn std::any::Any> {
    match engine {
        "warden" => Box::new(crate::common::WardenDecider::load(&dir.join("warden")).engine),
        "cedar" => {
            let schema = crate::cedar::schema(CEDAR_SCHEMA);
            let text = std::fs::read_to_string(dir.join("cedar.entities.json"))
                .expect("read the Cedar entities");
            Box::new(crate::cedar::entities_from_str(&text, &schema))
        }
        other => panic!("unknown engine `{other}` (warden or cedar)"),
    }
}

/// (wall s, CPU s, peak RSS KiB) of a child process loading `dir` in `engine`.
fn time_child(engine: &str, dir: &Path) -> Option<(f64, f64, u64)> {
    let exe = std::env::current_exe().ok()?;
    let stats = dir.join(format!("time-{engine}"));
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&stats)
        .arg(exe)
        .args(["load-only", "entities", engine])
        .arg(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "load-only entities {engine} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let text = std::fs::read_to_string(&stats).ok()?;
    let fields: Vec<&str> = text.lines().last()?.split_whitespace().collect();
    let [wall, user, system, kib] = fields[..] else {
        return None;
    };
    Some((
        wall.parse().ok()?,
        user.parse::<f64>().ok()? + system.parse::<f64>().ok()?,
        kib.parse().ok()?,
    ))
}

/// Writes each size, loads it in each engine (one process each), prints the table.
pub fn report() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!(
            "entity loading skipped: /usr/bin/time is missing (Debian: apt-get install -y time)"
        );
        return;
    }
    let mut rows = Vec::new();
    for n in SIZES {
        let dir = crate::common::ScratchDir::new(&format!("entities-{n}"));
        eprintln!("writing {n} entities…");
        if let Err(e) = write(n, &dir.0) {
            eprintln!("cannot write the entities: {e}");
            return;
        }
        for engine in ["warden", "cedar"] {
            if let Some((wall, cpu, kib)) = time_child(engine, &dir.0) {
                eprintln!(
                    "entities {n}, {engine}: {wall:.2} s wall, {cpu:.2} s CPU, {} MiB",
                    kib / 1024
                );
                rows.push((n, engine, wall, cpu, kib));
            }
        }
    }
    println!();
    println!("| users in 1,000 groups | engine | wall s | CPU s (user + system) | peak RSS MiB |");
    println!("|---:|---|---:|---:|---:|");
    for (n, engine, wall, cpu, kib) in rows {
        let label = if engine == "warden" {
            "Warden (whole directory: parse, check, data, compile)"
        } else {
            "Cedar (`Entities::from_json_str` with the schema)"
        };
        println!(
            "| {n} | {label} | {wall:.2} | {cpu:.2} | {:.0} |",
            kib as f64 / 1024.0
        );
    }
}
