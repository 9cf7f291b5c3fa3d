//! The decision service: the one place where a decoded request, with what the call proved
//! (a verified subject, a capability), becomes a verdict: decided by policy, counted against
//! the limits, recorded for the audit log. Every front door hands its request to
//! [`Decider::decide`]: the AuthZEN endpoints and search, forward-auth (nginx, Traefik, Envoy
//! over HTTP and gRPC), `warden eval`, `warden test` and `audit replay`. What each door
//! answers (a status, headers, an explanation in its own format) it builds from the
//! [`Verdict`].
//!
//! The service sits below the audit log: it records through [`Recorder`], which the audit
//! log's callers implement, so that replay (part of the audit log) decides through it too.

use std::cell::RefCell;
use std::sync::Arc;

use serde_json::{Map, Value as JsonValue};

use crate::capability::present::{Rejected, Verifier};
use crate::eval::capability::Presented;
use crate::eval::request::{self, Request, RequestError};
use crate::eval::{self, Decision, Frame};
use crate::limit::{Limiter, Refusal, Usage};
use crate::program::Program;

/// What became of one decision, for its audit record: the decision with the frame it was
/// decided in, or why the request was not decidable (a deny).
pub type Decided<'a> = Result<(&'a Decision, &'a Frame), &'a str>;

/// Where a decision's audit record is written (the audit log's callers implement it). Only
/// requests that could be read are recorded: a malformed one is the caller's error.
pub trait Recorder {
    /// Records an outcome; `limited`: the limit that refused what the policy allowed (the
    /// decision is then a deny).
    fn record(&mut self, program: &Program, outcome: Decided<'_>, limited: Option<&Refusal>);
}

/// A subject the call proved (a verified token, or a trusted gateway's header), with its
/// verified attributes: lent to a request that names that subject.
#[derive(Clone, Copy, Debug)]
pub struct Proved<'a> {
    pub subject_type: &'a str,
    pub subject_id: &'a str,
    pub attributes: &'a Map<String, JsonValue>,
}

/// A capability a request comes with.
pub enum Presenting<'a> {
    /// A token's text, to verify (and read against the program) before deciding.
    Token(&'a str),
    /// Caveats already resolved against the program (a policy test's `with capability`).
    Resolved(Arc<Presented>),
}

/// Everything a call decides with besides the request: one program, what the call proved,
/// and where capabilities are verified and limits counted (`None`: no such thing here).
#[derive(Clone, Copy)]
pub struct Decider<'a> {
    pub program: &'a Program,
    pub identity: Option<Proved<'a>>,
    pub capabilities: Option<&'a Verifier>,
    pub limits: Option<&'a Limiter>,
}

/// What one request came to.
#[derive(Debug)]
pub struct Verdict {
    /// Allowed by policy, and counted against every limit that applies.
    pub allowed: bool,
    /// The policy's decision, or why the request could not be decided (a malformed request
    /// is the caller's error; an invalid one is a deny).
    pub decision: Result<Decision, RequestError>,
    /// A presented token: attached to the request, or why it was not honoured.
    pub capability: Option<Result<(), Rejected>>,
    /// How the limits stood after counting an allowed request (none counted: empty), or why
    /// a limit refused it.
    pub limits: Result<Vec<Usage>, Refusal>,
}

impl Verdict {
    /// A limit's refusal of a request the policy allowed.
    pub fn limited(&self) -> Option<&Refusal> {
        self.limits.as_ref().err()
    }
}

thread_local! {
    /// The frame audited decisions are made in (its reads go into the record).
    static AUDIT_FRAME: RefCell<Frame> = RefCell::new(Frame::new());
}

/// Runs `f` with this thread's frame for audited decisions.
fn with_audit_frame<T>(f: impl FnOnce(&mut Frame) -> T) -> T {
    AUDIT_FRAME.with(|cell| {
        let mut own = None;
        let mut borrowed = cell.try_borrow_mut();
        let frame = match &mut borrowed {
            Ok(frame) => &mut **frame,
            // Only if deciding re-entered itself; a fresh frame keeps it correct.
            Err(_) => own.insert(Frame::new()),
        };
        f(frame)
    })
}

impl Decider<'_> {
    /// Decides a decoded request (or records why there is none): lends it the proved
    /// subject's attributes when it names that subject (`named`: its type and id, as the
    /// request wrote them), attaches the capability, decides by policy, counts an allowed
    /// request against the limits, and records the outcome. `frame`, when given, is where
    /// the decision is made (the caller then explains from it); otherwise a recorded decision
    /// uses this thread's audit frame and an unrecorded one the evaluator's.
    pub fn decide(
        &self,
        decoded: Result<&mut Request, RequestError>,
        named: (Option<&str>, Option<&str>),
        capability: Option<Presenting<'_>>,
        frame: Option<&mut Frame>,
        recorder: Option<&mut dyn Recorder>,
    ) -> Verdict {
        let request = match decoded {
            Ok(request) => request,
            Err(error) => return self.undecidable(error, recorder),
        };
        if let Err(error) = self.lend(named, request) {
            return self.undecidable(error, recorder);
        }
        let capability = capability.map(|capability| self.attach(capability, request));
        let program = self.program;
        let (decision, limits) = match (frame, recorder) {
            (None, None) => {
                let decision = eval::decide(program, request);
                let limits = self.count(&decision, request);
                (decision, limits)
            }
            (Some(frame), recorder) => {
                let decision = eval::decide_in(program, request, frame);
                let limits = self.count(&decision, request);
                if let Some(recorder) = recorder {
                    recorder.record(program, Ok((&decision, frame)), limits.as_ref().err());
                }
                (decision, limits)
            }
            (None, Some(recorder)) => with_audit_frame(|frame| {
                let decision = eval::decide_in(program, request, frame);
                let limits = self.count(&decision, request);
                recorder.record(program, Ok((&decision, frame)), limits.as_ref().err());
                (decision, limits)
            }),
        };
        Verdict {
            allowed: decision.allowed && limits.is_ok(),
            decision: Ok(decision),
            capability,
            limits,
        }
    }

    /// A request that cannot be decided: recorded as a deny when it is invalid.
    fn undecidable(&self, error: RequestError, recorder: Option<&mut dyn Recorder>) -> Verdict {
        if let (RequestError::Invalid(reason), Some(recorder)) = (&error, recorder) {
            recorder.record(self.program, Err(&reason.to_string()), None);
        }
        Verdict {
            allowed: false,
            decision: Err(error),
            capability: None,
            limits: Ok(Vec::new()),
        }
    }

    /// The proved subject's attributes, when the request names that subject.
    fn lend(
        &self,
        named: (Option<&str>, Option<&str>),
        request: &mut Request,
    ) -> Result<(), RequestError> {
        match &self.identity {
            Some(proved) => request::lend_attributes(
                self.program,
                named,
                (proved.subject_type, proved.subject_id),
                proved.attributes,
                request,
            ),
            None => Ok(()),
        }
    }

    /// Attaches a capability to the request; a token that does not verify grants nothing
    /// (the request is then decided without it).
    fn attach(&self, capability: Presenting<'_>, request: &mut Request) -> Result<(), Rejected> {
        let presented = match capability {
            Presenting::Resolved(presented) => presented,
            Presenting::Token(token) => crate::capability::present::present_to(
                self.capabilities,
                self.program,
                token,
                request.now,
            )?,
        };
        request.capability = Some(presented);
        Ok(())
    }

    /// Counts a request the policy allowed against the limits that apply to it.
    fn count(&self, decision: &Decision, request: &Request) -> Result<Vec<Usage>, Refusal> {
        match self.limits {
            Some(limits) if decision.allowed => {
                crate::limit::consume(self.program, request, limits)
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// What became of a presented capability, for an explanation.
#[derive(Debug)]
pub enum CapabilityUse<'a> {
    /// Not honoured: it did not verify, is revoked, or capabilities are not configured.
    Rejected(&'a Rejected),
    /// Verified: `Ok` when it grants this request, else why not.
    Presented {
        token_id: &'a str,
        grant: Result<(), crate::eval::capability::Refusal<'a>>,
    },
}

/// What became of the capability `request` was decided with (`verdict` is its verdict).
pub fn capability_use<'a>(
    program: &Program,
    request: &'a Request,
    verdict: &'a Verdict,
) -> Option<CapabilityUse<'a>> {
    if let Some(Err(rejected)) = &verdict.capability {
        return Some(CapabilityUse::Rejected(rejected));
    }
    let presented = request.capability.as_deref()?;
    Some(CapabilityUse::Presented {
        token_id: &presented.token_id,
        grant: crate::eval::capability::grants(program, request, presented).map(|_| ()),
    })
}
