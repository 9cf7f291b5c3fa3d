//! `warden capability mint|attenuate|inspect|revoke`: capability tokens from the command line.
//!
//! `mint` is the operator's way to mint: the minter is named with `--as`, and minting is still
//! a decision under the policy directory (the minter must hold every action it hands out).
//! `attenuate` needs no key: it only appends caveats. `inspect` reads a token (and verifies it
//! when given the keys). `revoke` appends to the revocation file every Warden watches.

use std::io::{Read, Write};
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::capability::mint::{self, MintRequest};
use crate::capability::{
    Caveat, EntityText, Keyring, Revocations, Token, attenuate, parse, verify,
};
use crate::cli::output::print_diagnostics;
use crate::cli::{Exit, Format, PolicyDir};
use crate::engine::Engine;

#[derive(Debug, clap::Args)]
pub struct CapabilityArgs {
    #[command(subcommand)]
    pub command: CapabilityCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CapabilityCommand {
    /// Mint a token as `--as` (a decision: exit 1 when the policy refuses).
    Mint(Box<MintArgs>),
    /// Append caveats to a token (no key needed; a caveat only ever narrows).
    Attenuate(AttenuateArgs),
    /// Show what a token grants, to whom, until when, and its caveat chain.
    Inspect(InspectArgs),
    /// Revoke a token by id: every Warden watching the revocation file, or subscribed to the
    /// Redis named by --revocations-redis, refuses it within a second.
    Revoke(RevokeArgs),
}

/// The signing keys, as `warden serve` takes them.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Capability keys, comma-separated: `ID:PATH` or `ID:PATH:retired=TIME`.
    #[arg(
        long = "keys",
        value_name = "ID:PATH",
        env = "WARDEN_CAPABILITY_KEYS",
        value_delimiter = ','
    )]
    pub keys: Vec<String>,
    /// How long tokens under a retired key still verify, in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WARDEN_CAPABILITY_GRACE_S",
        default_value_t = 604_800
    )]
    pub grace_s: u64,
}

impl KeyArgs {
    pub(crate) fn keyring(&self) -> Result<Keyring, Failure> {
        if self.keys.is_empty() {
            return Err(invalid(
                "no capability keys: pass `--keys ID:PATH` (or set WARDEN_CAPABILITY_KEYS)",
            ));
        }
        let grace = SignedDuration::from_secs(i64::try_from(self.grace_s).unwrap_or(i64::MAX));
        Keyring::load_specs(&self.keys, grace).map_err(|e| invalid(format!("--keys: {e}")))
    }
}

/// Narrowing caveats, shared by `mint` and `attenuate`.
#[derive(Debug, clap::Args)]
pub struct NarrowArgs {
    /// Only these actions, comma-separated.
    #[arg(long, value_name = "ACTIONS", value_delimiter = ',')]
    pub actions: Option<Vec<String>>,
    /// Bind the token to this subject (`Type::"id"`).
    #[arg(long, value_name = "ENTITY")]
    pub holder: Option<String>,
    /// Only for the Warden configured with this audience.
    #[arg(long, value_name = "NAME")]
    pub audience: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct MintArgs {
    #[command(flatten)]
    pub dir: PolicyDir,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The minter (`Type::"id"`): the subject of the mint decisions.
    #[arg(long = "as", value_name = "ENTITY")]
    pub minter: String,
    /// The capability declaration to mint under.
    #[arg(long, value_name = "NAME")]
    pub capability: String,
    /// The resource (`Type::"id"`).
    #[arg(long, value_name = "ENTITY")]
    pub resource: String,
    /// Grant on the resource and everything in it, not the resource alone.
    #[arg(long)]
    pub within: bool,
    /// How long the token lives (`14d`, `12h`); default: the declaration's longest.
    #[arg(long, value_name = "DURATION")]
    pub lifetime: Option<String>,
    /// The `context` of the mint decisions, as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// Fix the clock (RFC 3339); default: now.
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    #[command(flatten)]
    pub narrow: NarrowArgs,
}

#[derive(Debug, clap::Args)]
pub struct AttenuateArgs {
    /// The token (`-`: read it from standard input).
    #[arg(value_name = "TOKEN")]
    pub token: String,
    /// Only on this resource (`Type::"id"`).
    #[arg(long, value_name = "ENTITY")]
    pub resource: Option<String>,
    /// Only on this resource and what is in it (`Type::"id"`).
    #[arg(long, value_name = "ENTITY")]
    pub within: Option<String>,
    /// Expire after this long from now (`3d`, `12h`).
    #[arg(long, value_name = "DURATION", conflicts_with = "expires")]
    pub expires_in: Option<String>,
    /// Expire at this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub expires: Option<String>,
    #[command(flatten)]
    pub narrow: NarrowArgs,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The token (`-`: read it from standard input).
    #[arg(value_name = "TOKEN")]
    pub token: String,
    /// Verify the signature chain with these keys (`ID:PATH`); without, the token is only read.
    #[arg(
        long = "keys",
        value_name = "ID:PATH",
        env = "WARDEN_CAPABILITY_KEYS",
        value_delimiter = ','
    )]
    pub keys: Vec<String>,
    /// How long tokens under a retired key still verify, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 604_800)]
    pub grace_s: u64,
    /// Also say whether the token (or an ancestor) is revoked in this file.
    #[arg(long, value_name = "FILE", env = "WARDEN_CAPABILITY_REVOCATIONS")]
    pub revocations: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The token id (`warden capability inspect` shows it), or the token itself.
    #[arg(value_name = "ID")]
    pub id: String,
    /// The revocation file (created `0600` if missing).
    #[arg(
        long,
        value_name = "FILE",
        env = "WARDEN_CAPABILITY_REVOCATIONS",
        required_unless_present = "revocations_redis"
    )]
    pub revocations: Option<PathBuf>,
    /// The Redis the fleet shares revocations through (`redis://HOST:PORT`): the id is stored
    /// there and published to every Warden subscribed.
    #[arg(long, value_name = "URL", env = "WARDEN_REVOCATIONS_REDIS")]
    pub revocations_redis: Option<String>,
}

/// Why a command stopped, and with which exit code.
pub(crate) struct Failure {
    pub(crate) message: String,
    exit: Exit,
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        exit: Exit::InvalidInput,
    }
}

pub fn run(args: &CapabilityArgs) -> Exit {
    let result = match &args.command {
        CapabilityCommand::Mint(args) => run_mint(args),
        CapabilityCommand::Attenuate(args) => run_attenuate(args),
        CapabilityCommand::Inspect(args) => run_inspect(args),
        CapabilityCommand::Revoke(args) => run_revoke(args),
    };
    match result {
        Ok(exit) => exit,
        Err(failure) => {
            let _ = writeln!(std::io::stderr(), "error: {}", failure.message);
            failure.exit
        }
    }
}

fn entity(flag: &str, text: &str) -> Result<EntityText, Failure> {
    let (ty, id) = crate::cli::entity_flag(flag, text).map_err(invalid)?;
    Ok(EntityText::new(ty, id))
}

fn duration(flag: &str, text: &str) -> Result<SignedDuration, Failure> {
    crate::syntax::token::parse_duration_literal(text)
        .map(SignedDuration::from_millis)
        .ok_or_else(|| {
            invalid(format!(
                "{flag} `{text}` is not a duration such as `14d` or `12h`"
            ))
        })
}

fn time(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    crate::data::decode::parse_time(text).map_err(|m| invalid(format!("{flag}: {m}")))
}

/// The token argument, or standard input for `-`.
fn token_text(arg: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg.trim().to_string());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| invalid(format!("cannot read the token from standard input: {e}")))?;
    Ok(text.trim().to_string())
}

fn print_line(text: &str) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn run_mint(args: &MintArgs) -> Result<Exit, Failure> {
    let keyring = args.keys.keyring()?;
    let engine = match Engine::load(&args.dir.policies) {
        Ok(engine) => engine,
        Err(failure) => {
            print_diagnostics(&failure.diagnostics, Format::Human);
            return Ok(Exit::InvalidInput);
        }
    };
    let now = match &args.time {
        Some(text) => time("--time", text)?,
        None => Timestamp::now(),
    };
    let context = match &args.context {
        None => None,
        Some(text) => Some(
            serde_json::from_str(text)
                .map_err(|e| invalid(format!("--context is not JSON: {e}")))?,
        ),
    };
    let ask = MintRequest {
        capability: args.capability.clone(),
        minter: entity("--as", &args.minter)?,
        verified: None,
        resource: entity("--resource", &args.resource)?,
        within: args.within,
        actions: args.narrow.actions.clone(),
        lifetime: args
            .lifetime
            .as_deref()
            .map(|text| duration("--lifetime", text))
            .transpose()?,
        holder: args
            .narrow
            .holder
            .as_deref()
            .map(|text| entity("--holder", text))
            .transpose()?,
        audience: args.narrow.audience.clone(),
        context,
    };
    let caveats = match mint::authorize(&engine.program, &ask, now) {
        Ok(caveats) => caveats,
        Err(error) => {
            return Err(Failure {
                exit: if error.forbidden() {
                    Exit::Failure
                } else {
                    Exit::InvalidInput
                },
                message: error.to_string(),
            });
        }
    };
    let (token, id) = crate::capability::mint(&keyring, &caveats).map_err(|e| Failure {
        // A holder or audience that no caveat can spell is the caller's mistake.
        exit: if matches!(e, crate::capability::TokenError::InvalidCaveat { .. }) {
            Exit::InvalidInput
        } else {
            Exit::Internal
        },
        message: e.to_string(),
    })?;
    let _ = writeln!(std::io::stderr(), "minted token {id}");
    print_line(&token);
    Ok(Exit::Success)
}

fn run_attenuate(args: &AttenuateArgs) -> Result<Exit, Failure> {
    let token = token_text(&args.token)?;
    let mut caveats = Vec::new();
    if let Some(text) = &args.resource {
        caveats.push(Caveat::Resource(entity("--resource", text)?));
    }
    if let Some(text) = &args.within {
        caveats.push(Caveat::Within(entity("--within", text)?));
    }
    if let Some(actions) = &args.narrow.actions {
        caveats.push(Caveat::Actions(actions.clone()));
    }
    if let Some(text) = &args.expires_in {
        let expires = Timestamp::now()
            .checked_add(duration("--expires-in", text)?)
            .map_err(|_| invalid("--expires-in is out of range"))?;
        caveats.push(Caveat::Expires(expires));
    }
    if let Some(text) = &args.expires {
        caveats.push(Caveat::Expires(time("--expires", text)?));
    }
    if let Some(text) = &args.narrow.holder {
        caveats.push(Caveat::Holder(entity("--holder", text)?));
    }
    if let Some(audience) = &args.narrow.audience {
        caveats.push(Caveat::Audience(audience.clone()));
    }
    if caveats.is_empty() {
        return Err(invalid(
            "no caveat to add: pass --actions, --resource, --within, --expires-in, --expires, --holder or --audience",
        ));
    }
    let narrowed = attenuate(&token, &caveats).map_err(|e| invalid(e.to_string()))?;
    print_line(&narrowed);
    Ok(Exit::Success)
}

/// What a token grants, all caveats taken together.
fn summary(token: &Token, now: Timestamp) -> serde_json::Value {
    let mut actions: Option<Vec<String>> = None;
    let (mut resources, mut within, mut holders, mut audiences, mut parents) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut capability, mut minted_by, mut minted_at) = (vec![], vec![], None);
    for caveat in token.caveats() {
        match caveat {
            Caveat::Capability(name) => capability.push(name.clone()),
            Caveat::Resource(e) => resources.push(e.to_string()),
            Caveat::Within(e) => within.push(e.to_string()),
            Caveat::Actions(list) => {
                actions = Some(match actions {
                    None => list.clone(),
                    Some(held) => held.into_iter().filter(|a| list.contains(a)).collect(),
                });
            }
            Caveat::Holder(e) => holders.push(e.to_string()),
            Caveat::Audience(a) => audiences.push(a.clone()),
            Caveat::MintedBy(e) => minted_by.push(e.to_string()),
            Caveat::MintedAt(at) => minted_at = minted_at.or(Some(at.to_string())),
            Caveat::Parent(id) => parents.push(id.clone()),
            Caveat::Expires(_) => {}
        }
    }
    let expires = token.expires();
    json!({
        "id": token.id(),
        "key": token.key_id(),
        "capability": capability,
        "actions": actions.unwrap_or_default(),
        "resource": resources,
        "within": within,
        "holder": holders,
        "audience": audiences,
        "expires": expires.map(|t| t.to_string()),
        "expired": expires.is_none_or(|t| t <= now),
        "minted_by": minted_by,
        "minted_at": minted_at,
        "parents": parents,
        "caveats": token.caveats().iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn run_inspect(args: &InspectArgs) -> Result<Exit, Failure> {
    let text = token_text(&args.token)?;
    let token = parse(&text).map_err(|e| invalid(e.to_string()))?;
    let now = Timestamp::now();
    let mut report = summary(&token, now);
    let mut exit = Exit::Success;
    let signature = if args.keys.is_empty() {
        "not checked (pass --keys to verify)".to_string()
    } else {
        let keys = KeyArgs {
            keys: args.keys.clone(),
            grace_s: args.grace_s,
        };
        match verify(&keys.keyring()?, &text, now) {
            Ok(_) => "valid".to_string(),
            Err(error) => {
                exit = Exit::Failure;
                format!("invalid: {error}")
            }
        }
    };
    report["signature"] = json!(signature);
    if let Some(path) = &args.revocations {
        let revocations =
            Revocations::open(path).map_err(|e| invalid(format!("--revocations: {e}")))?;
        let revoked = revocations.revoked_lineage(&token).map(str::to_string);
        if revoked.is_some() {
            exit = Exit::Failure;
        }
        report["revoked"] = json!(revoked);
    }
    let out = match args.format {
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default(),
        Format::Human => render(&report, &token),
    };
    print_line(&out);
    Ok(exit)
}

fn render(report: &serde_json::Value, token: &Token) -> String {
    let list = |key: &str| -> String {
        report[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let text = |key: &str| report[key].as_str().unwrap_or("-").to_string();
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        if !value.is_empty() {
            out.push_str(&format!("{label:<12}{value}\n"));
        }
    };
    line(
        "token",
        format!("{} (key `{}`)", token.id(), token.key_id()),
    );
    line("capability", list("capability"));
    line("actions", list("actions"));
    line("resource", list("resource"));
    line("within", list("within"));
    line(
        "holder",
        match list("holder") {
            none if none.is_empty() => "anyone who has the token".to_string(),
            holders => holders,
        },
    );
    line("audience", list("audience"));
    let expired = report["expired"].as_bool().unwrap_or(true);
    line(
        "expires",
        format!(
            "{}{}",
            text("expires"),
            if expired { " (expired)" } else { "" }
        ),
    );
    let minters = report["minted_by"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(", handed on by ")
        })
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "-".to_string());
    line("minted", format!("by {minters} at {}", text("minted_at")));
    line("parents", list("parents"));
    line("signature", text("signature"));
    if let Some(revoked) = report.get("revoked") {
        line(
            "revoked",
            match revoked.as_str() {
                Some(id) => format!("yes (`{id}`)"),
                None => "no".to_string(),
            },
        );
    }
    out.push_str("chain\n");
    out.push_str(&format!("  1  {}\n", token.header()));
    for (index, caveat) in token.caveats().iter().enumerate() {
        out.push_str(&format!("  {}  {caveat}\n", index + 2));
    }
    out.trim_end().to_string()
}

fn run_revoke(args: &RevokeArgs) -> Result<Exit, Failure> {
    let id = if args.id.starts_with("wcap1.") {
        parse(&args.id)
            .map_err(|e| invalid(e.to_string()))?
            .id()
            .to_string()
    } else {
        args.id.clone()
    };
    if !crate::capability::token::is_token_id(&id) {
        return Err(invalid(format!(
            "`{id}` is not a token id (`warden capability inspect` shows a token's id)"
        )));
    }
    let revocations = match &args.revocations {
        Some(path) => {
            Revocations::open(path).map_err(|e| invalid(format!("--revocations: {e}")))?
        }
        None => Revocations::in_memory(),
    };
    let revocations = match &args.revocations_redis {
        Some(url) => revocations.with_shared(
            crate::capability::shared::SharedRevocations::new(url)
                .map_err(|e| invalid(format!("--revocations-redis: {e}")))?,
        ),
        None => revocations,
    };
    let newly = revocations
        .revoke(&id, Timestamp::now())
        .map_err(|e| Failure {
            message: format!("cannot record the revocation: {e}"),
            exit: Exit::Internal,
        })?;
    let _ = writeln!(
        std::io::stderr(),
        "{}",
        if newly {
            format!("revoked {id}")
        } else {
            format!("{id} was already revoked")
        }
    );
    Ok(Exit::Success)
}
