//! The decision service: the one place where a decoded request, with what the call proved
//! (a verified subject, a capability), becomes a verdict: decided by policy, counted against
//! the limits, recorded for the audit log. Every front door hands its request to a
//! [`Decider`]: the AuthZEN endpoints and search, forward-auth (nginx, Traefik, Envoy
//! over HTTP and gRPC), `warden eval`, `warden test` and `audit replay`. What each door
//! answers (a status, headers, an explanation in its own format) it builds from the
//! [`Verdict`].
//!
//! Counting against limits kept in Redis waits for a round trip. So that no thread waits on
//! it, a decision is made in two steps: [`Decider::begin`] decides by policy and, when the
//! request must still be counted in Redis, leaves a [`Pending`] step that the server's doors
//! complete with [`Decider::settle`], awaited in the request's own task.
//! [`Decider::decide`] takes both steps at once, for synchronous callers (the CLI, whose
//! limits are counted in the process). Either way the outcome is recorded once, in one
//! place.
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
use crate::limit::{Checks, Limiter, Refusal, Store, Usages};
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
    /// A presented token: attached to the request, or why it was not honoured (boxed: rare,
    /// and a verdict is moved on every decision).
    pub capability: Option<Result<(), Box<Rejected>>>,
    /// How the limits stood after counting an allowed request (none counted: empty), or why
    /// a limit refused it.
    pub limits: Result<Usages, Refusal>,
}

/// A decision the policy allowed that is still to be counted against limits kept in Redis:
/// [`Decider::settle`] counts it and records the outcome.
pub(crate) struct Pending {
    decision: Decision,
    capability: Option<Result<(), Box<Rejected>>>,
    checks: Checks<'static>,
    /// When the request was made, in nanoseconds since the epoch.
    now: i128,
    /// The frame the decision was made in, when it was this thread's audit frame: the record
    /// reads it once the request is counted, maybe on another thread.
    frame: Option<Frame>,
}

/// The first step of a decision: finished, or still to be counted (boxed: rare, and large).
#[allow(
    clippy::large_enum_variant,
    reason = "a finished verdict is the common case: boxing it would allocate on every decision"
)]
pub(crate) enum Step {
    Done(Verdict),
    Pending(Box<Pending>),
}

/// How an allowed request is counted: at once (in the process), or later (in Redis).
enum Counting {
    Now(Result<Usages, Refusal>),
    Later(Checks<'static>),
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
    /// uses this thread's audit frame and an unrecorded one the evaluator's. Limits kept in
    /// Redis are counted with this thread waiting: the server's doors use
    /// [`Decider::begin`] and [`Decider::settle`] instead.
    pub fn decide(
        &self,
        decoded: Result<&mut Request, RequestError>,
        named: (Option<&str>, Option<&str>),
        capability: Option<Presenting<'_>>,
        mut frame: Option<&mut Frame>,
        mut recorder: Option<&mut dyn Recorder>,
    ) -> Verdict {
        let step = self.begin(
            decoded,
            named,
            capability,
            frame.as_deref_mut(),
            // A shorter borrow, for the recorder to be used again below.
            recorder
                .as_mut()
                .map(|recorder| &mut **recorder as &mut dyn Recorder),
        );
        match step {
            Step::Done(verdict) => verdict,
            Step::Pending(pending) => {
                let counted = match self.limits {
                    Some(limits) => limits.consume(self.program, &pending.checks, pending.now),
                    None => Ok(Usages::new()),
                };
                self.counted(*pending, counted, frame, recorder)
            }
        }
    }

    /// The first step of [`Decider::decide`]: everything but counting against limits kept in
    /// Redis, which is left pending when the policy allows the request and a limit applies.
    /// A finished step is recorded; a pending one is recorded by [`Decider::settle`], which
    /// then takes the same `frame` and `recorder`.
    pub(crate) fn begin(
        &self,
        decoded: Result<&mut Request, RequestError>,
        named: (Option<&str>, Option<&str>),
        capability: Option<Presenting<'_>>,
        frame: Option<&mut Frame>,
        recorder: Option<&mut dyn Recorder>,
    ) -> Step {
        let request = match decoded {
            Ok(request) => request,
            Err(error) => return Step::Done(self.undecidable(error, recorder)),
        };
        if let Err(error) = self.lend(named, request) {
            return Step::Done(self.undecidable(error, recorder));
        }
        let capability = capability.map(|capability| self.attach(capability, request));
        let program = self.program;
        let now = request.now.as_nanosecond();
        let step = |decision: Decision, frame: Option<&mut Frame>, recorder, own: bool| {
            match self.counting(&decision, request) {
                Counting::Now(limits) => {
                    let frame = frame.map(|frame| &*frame);
                    Step::Done(self.conclude(decision, capability, limits, frame, recorder))
                }
                Counting::Later(checks) => Step::Pending(Box::new(Pending {
                    decision,
                    capability,
                    checks,
                    now,
                    // This thread's frame is for its next decision: the record keeps its own.
                    frame: if own { frame.map(std::mem::take) } else { None },
                })),
            }
        };
        match (frame, recorder) {
            (None, None) => step(eval::decide(program, request), None, None, false),
            (Some(frame), recorder) => {
                let decision = eval::decide_in(program, request, frame);
                step(decision, Some(frame), recorder, false)
            }
            (None, Some(recorder)) => with_audit_frame(|frame| {
                let decision = eval::decide_in(program, request, frame);
                step(decision, Some(frame), Some(recorder), true)
            }),
        }
    }

    /// Completes a pending decision: counts it against the limits, awaiting Redis, and
    /// records the outcome. `frame` and `recorder` are those [`Decider::begin`] was given.
    pub(crate) async fn settle(
        &self,
        pending: Box<Pending>,
        frame: Option<&mut Frame>,
        recorder: Option<&mut (dyn Recorder + Send)>,
    ) -> Verdict {
        let counted = match self.limits {
            Some(limits) => {
                limits
                    .count(self.program, &pending.checks, pending.now)
                    .await
            }
            None => Ok(Usages::new()),
        };
        let recorder = recorder.map(|recorder| recorder as &mut dyn Recorder);
        self.counted(*pending, counted, frame, recorder)
    }

    /// The verdict on a pending decision, counted, recorded (`frame`: where it was decided,
    /// when the pending decision does not keep its own).
    fn counted(
        &self,
        pending: Pending,
        counted: Result<Usages, Refusal>,
        frame: Option<&mut Frame>,
        recorder: Option<&mut dyn Recorder>,
    ) -> Verdict {
        let Pending {
            decision,
            capability,
            frame: own,
            ..
        } = pending;
        let frame = frame.map(|frame| &*frame).or(own.as_ref());
        self.conclude(decision, capability, counted, frame, recorder)
    }

    /// The verdict on a decided request, recorded: the one place every decided outcome is
    /// recorded (`frame`: where it was decided).
    #[inline]
    fn conclude(
        &self,
        decision: Decision,
        capability: Option<Result<(), Box<Rejected>>>,
        limits: Result<Usages, Refusal>,
        frame: Option<&Frame>,
        recorder: Option<&mut dyn Recorder>,
    ) -> Verdict {
        if let Some(recorder) = recorder {
            let unread;
            let frame = match frame {
                Some(frame) => frame,
                None => {
                    unread = Frame::new();
                    &unread
                }
            };
            recorder.record(self.program, Ok((&decision, frame)), limits.as_ref().err());
        }
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
            limits: Ok(Usages::new()),
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
    fn attach(
        &self,
        capability: Presenting<'_>,
        request: &mut Request,
    ) -> Result<(), Box<Rejected>> {
        let presented = match capability {
            Presenting::Resolved(presented) => presented,
            Presenting::Token(token) => crate::capability::present::present_to(
                self.capabilities,
                self.program,
                token,
                request.now,
            )
            .map_err(Box::new)?,
        };
        request.capability = Some(presented);
        Ok(())
    }

    /// How a request the policy allowed is counted against the limits that apply to it: in
    /// the process at once, or later in Redis.
    #[inline]
    fn counting(&self, decision: &Decision, request: &Request) -> Counting {
        match self.limits {
            Some(limits) if decision.allowed && !self.program.limits.is_empty() => {
                if !limits.is_shared() {
                    return Counting::Now(crate::limit::consume(self.program, request, limits));
                }
                match crate::limit::checks(self.program, request) {
                    Ok(checks) if checks.is_empty() => Counting::Now(Ok(Usages::new())),
                    Ok(checks) => Counting::Later(checks),
                    Err(refusal) => Counting::Now(Err(refusal)),
                }
            }
            _ => Counting::Now(Ok(Usages::new())),
        }
    }
}

/// What became of a presented capability, for an explanation.
#[derive(Debug)]
pub(crate) enum CapabilityUse<'a> {
    /// Not honoured: it did not verify, is revoked, or capabilities are not configured.
    Rejected(&'a Rejected),
    /// Verified: `Ok` when it grants this request, else why not.
    Presented {
        token_id: &'a str,
        grant: Result<(), crate::eval::capability::Refusal<'a>>,
    },
}

/// What became of the capability `request` was decided with (`verdict` is its verdict).
pub(crate) fn capability_use<'a>(
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
