//! `warden eval`: one decision, from an AuthZEN request or from flags, optionally explained.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::{Value as JsonValue, json};

use crate::cli::output::print_failure;
use crate::cli::{Exit, Format, PolicyDir};
use crate::decide::{CapabilityUse, Decider, Presenting, capability_use};
use crate::engine::Engine;
use crate::eval::explain;
use crate::eval::{Frame, RequestError, request};
use crate::source::Diagnostic;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub dir: PolicyDir,
    /// The request as AuthZEN JSON (`{"subject": …, "action": …, "resource": …}`); `-` reads
    /// standard input.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["subject", "action", "resource"])]
    pub request: Option<PathBuf>,
    /// The subject, as `Type::"id"` (or `Type::id`).
    #[arg(long, value_name = "ENTITY", requires_all = ["action", "resource"])]
    pub subject: Option<String>,
    /// The action name; an action declared in a namespace in full (`acme::read`).
    #[arg(long, value_name = "NAME")]
    pub action: Option<String>,
    /// The resource, as `Type::"id"` (or `Type::id`).
    #[arg(long, value_name = "ENTITY")]
    pub resource: Option<String>,
    /// The context, as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// What the caller sends as `subject.properties`, as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub subject_properties: Option<String>,
    /// What the caller sends as `resource.properties`, as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub resource_properties: Option<String>,
    /// What the caller sends as `action.properties`, as a JSON object.
    #[arg(long, value_name = "JSON")]
    pub action_properties: Option<String>,
    /// Fix `now()` (RFC 3339 with an offset); default: the system clock.
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// A capability token to present (as `context.capability` would); needs `--keys`.
    #[arg(long, value_name = "TOKEN")]
    pub capability: Option<String>,
    #[command(flatten)]
    pub keys: crate::cli::capability::KeyArgs,
    /// The revocation file the token (or a parent) must not be in.
    #[arg(long, value_name = "FILE", env = "WARDEN_CAPABILITY_REVOCATIONS")]
    pub revocations: Option<PathBuf>,
    /// This Warden's audience, for tokens that name one.
    #[arg(long, value_name = "NAME", env = "WARDEN_CAPABILITY_AUDIENCE")]
    pub audience: Option<String>,
    /// Say which rules decided, and for every candidate rule why it held or not.
    #[arg(long)]
    pub explain: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Fails with a message for the user and the exit code to use.
struct Failure {
    message: String,
    exit: Exit,
}

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        exit: Exit::InvalidInput,
    }
}

pub fn run(args: &EvalArgs) -> Exit {
    let engine = match Engine::load(&args.dir.policies) {
        Ok(engine) => engine,
        Err(failure) => {
            print_failure(&failure.diagnostics, args.format);
            return Exit::InvalidInput;
        }
    };
    let answered = evaluate(args, &engine);
    // The process ends after this answer: freeing a large program piece by piece would only
    // delay the exit.
    std::mem::forget(engine);
    match answered {
        Ok(exit) => exit,
        Err(failure) => {
            match args.format {
                Format::Human => {
                    let _ = writeln!(std::io::stderr(), "error: {}", failure.message);
                }
                Format::Json => print_failure(
                    &[Diagnostic::new(EvalError {
                        message: failure.message,
                    })],
                    Format::Json,
                ),
            }
            failure.exit
        }
    }
}

/// A request or flag `eval` cannot use, as a diagnostic for `--format json`.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(warden::eval::input))]
struct EvalError {
    message: String,
}

fn evaluate(args: &EvalArgs, engine: &Engine) -> Result<Exit, Failure> {
    let body = request_body(args)?;
    let now = match &args.time {
        Some(text) => {
            crate::data::decode::parse_time(text).map_err(|m| invalid(format!("--time: {m}")))?
        }
        None => jiff::Timestamp::now(),
    };
    let program = &engine.program;
    let token = match (
        &args.capability,
        body["context"].get(crate::check::schema::CAPABILITY_KEY),
    ) {
        (Some(token), _) => Some(token.as_str()),
        (None, None | Some(JsonValue::Null)) => None,
        (None, Some(JsonValue::String(token))) => Some(token.as_str()),
        (None, Some(_)) => {
            return Err(invalid(
                "`context.capability` must be a capability token (a string)",
            ));
        }
    };
    let decoded = request::read(program, body.to_string().as_bytes(), now);
    let verifier = match (&decoded, token) {
        (Ok(_), Some(_)) => {
            let revocations = match &args.revocations {
                Some(path) => crate::capability::Revocations::open(path)
                    .map_err(|e| invalid(format!("--revocations: {e}")))?,
                None => crate::capability::Revocations::in_memory(),
            };
            Some(crate::capability::present::Verifier::new(
                args.keys.keyring().map_err(|f| invalid(f.message))?,
                std::sync::Arc::new(revocations),
                args.audience.clone(),
            ))
        }
        _ => None,
    };
    let decider = Decider {
        program,
        identity: None,
        capabilities: verifier.as_ref(),
        limits: None,
    };
    let mut frame = Frame::new();
    let token = token.map(Presenting::Token);
    let (verdict, request) = match decoded {
        Ok(mut request) => (
            decider.decide(
                Ok(&mut request),
                (None, None),
                token,
                Some(&mut frame),
                None,
            ),
            Some(request),
        ),
        Err(error) => (
            decider.decide(Err(error), (None, None), None, None, None),
            None,
        ),
    };
    let decision = match &verdict.decision {
        Ok(decision) => decision,
        Err(RequestError::Malformed(message)) => {
            return Err(invalid(format!(
                "the request is not well-formed: {message}"
            )));
        }
        Err(RequestError::Invalid(reason)) => {
            // Well-formed but not decidable: a deny, explained.
            let message = reason.to_string();
            print_outcome(args, false, &[], std::slice::from_ref(&message), None);
            return Ok(Exit::Failure);
        }
    };
    let capability_note = request
        .as_ref()
        .and_then(|request| capability_use(program, request, &verdict))
        .and_then(|capability| match capability {
            CapabilityUse::Rejected(error) => Some(format!("capability: {error}")),
            CapabilityUse::Presented {
                grant: Err(refusal),
                ..
            } => Some(format!("capability: {refusal}")),
            CapabilityUse::Presented { grant: Ok(()), .. } => None,
        });
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .filter_map(|id| program.rule(*id))
        .map(|rule| rule.id.to_string())
        .collect();
    let mut errors = explain::error_lines(program, decision);
    errors.extend(capability_note);
    let explanation = args
        .explain
        .then(|| explain::explain(program, &frame, decision));
    print_outcome(
        args,
        verdict.allowed,
        &reasons,
        &errors,
        explanation.as_ref(),
    );
    Ok(if verdict.allowed {
        Exit::Success
    } else {
        Exit::Failure
    })
}

fn print_outcome(
    args: &EvalArgs,
    allowed: bool,
    reasons: &[String],
    errors: &[String],
    explanation: Option<&explain::Explanation>,
) {
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let mut out = json!({
                "decision": allowed,
                "reasons": reasons,
                "errors": errors,
            });
            if let (Some(explanation), JsonValue::Object(map)) = (explanation, &mut out) {
                map.insert(
                    "explanation".to_string(),
                    serde_json::to_value(explanation).unwrap_or(JsonValue::Null),
                );
            }
            let _ = writeln!(
                stdout,
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_default()
            );
        }
        Format::Human => {
            match explanation {
                Some(explanation) => {
                    let _ = write!(stdout, "{}", explain::render_human(explanation));
                }
                None => {
                    let verdict = if allowed { "allow" } else { "deny" };
                    if reasons.is_empty() {
                        let _ = writeln!(stdout, "{verdict}");
                    } else {
                        let _ = writeln!(stdout, "{verdict} (by {})", reasons.join(", "));
                    }
                }
            }
            for error in errors {
                let _ = writeln!(stdout, "error: {error}");
            }
        }
    }
}

fn request_body(args: &EvalArgs) -> Result<JsonValue, Failure> {
    if let Some(path) = &args.request {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                invalid(format!("cannot read the request from standard input: {e}"))
            })?;
            text
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read `{}`: {e}", path.display())))?
        };
        return crate::eval::strict::parse(text.as_bytes())
            .map_err(|e| invalid(format!("the request is not valid JSON: {e}")));
    }
    let (Some(subject), Some(action), Some(resource)) =
        (&args.subject, &args.action, &args.resource)
    else {
        return Err(Failure {
            message: "give the request with `--request FILE` (or `-` for standard input), or with `--subject`, `--action` and `--resource`".to_string(),
            exit: Exit::Usage,
        });
    };
    let mut subject = entity_flag("--subject", subject)?;
    let mut resource = entity_flag("--resource", resource)?;
    let mut action = json!({ "name": action });
    let object = |flag: &str, text: &Option<String>| -> Result<Option<JsonValue>, Failure> {
        match text {
            None => Ok(None),
            Some(text) => match crate::eval::strict::parse(text.as_bytes()) {
                Ok(value @ JsonValue::Object(_)) => Ok(Some(value)),
                Ok(_) => Err(invalid(format!("{flag} must be a JSON object"))),
                Err(e) => Err(invalid(format!("{flag} is not valid JSON: {e}"))),
            },
        }
    };
    for (target, flag, text) in [
        (
            &mut subject,
            "--subject-properties",
            &args.subject_properties,
        ),
        (
            &mut resource,
            "--resource-properties",
            &args.resource_properties,
        ),
        (&mut action, "--action-properties", &args.action_properties),
    ] {
        if let (Some(props), JsonValue::Object(map)) = (object(flag, text)?, target) {
            map.insert("properties".to_string(), props);
        }
    }
    let mut body = json!({ "subject": subject, "action": action, "resource": resource });
    if let (Some(context), JsonValue::Object(map)) =
        (object("--context", &args.context)?, &mut body)
    {
        map.insert("context".to_string(), context);
    }
    Ok(body)
}

/// `User::"alice"` or `User::alice` → `{"type": "User", "id": "alice"}`.
fn entity_flag(flag: &str, text: &str) -> Result<JsonValue, Failure> {
    let (ty, id) = crate::cli::entity_flag(flag, text).map_err(invalid)?;
    Ok(json!({ "type": ty, "id": id }))
}
