//! The built-in functions: a fixed set, each with its signature, and literal arguments
//! (times, durations, addresses, time zones) validated when the policy is checked.
//!
//! | function | result | meaning |
//! |---|---|---|
//! | `now()` | `Time` | the service's clock, read once per request |
//! | `time("2026-03-02T10:00:00Z")` | `Time` | an RFC 3339 instant; the offset (`Z`, `+01:00`) is required |
//! | `duration("1h30m")` | `Duration` | units `d`, `h`, `m`, `s`, `ms`, as duration literals |
//! | `ip("10.0.0.1")`, `ip("10.0.0.0/8")` | `Ip` | an IPv4 or IPv6 address, or a CIDR range |
//! | `decimal("1.25")` | `Decimal` | up to four digits after the point, as Cedar's `decimal` |
//! | `hour(t, "Europe/Paris")` | `Int` | 0–23, in the named IANA time zone |
//! | `minute(t, zone)` | `Int` | 0–59 |
//! | `weekday(t, zone)` | `Int` | 1 = Monday … 7 = Sunday (ISO 8601) |
//! | `day(t, zone)` | `Int` | day of the month, 1–31 |
//! | `month(t, zone)` | `Int` | 1–12 |
//! | `year(t, zone)` | `Int` | e.g. 2026 |
//! | `in_range(x, lo, hi)` | `Bool` | `lo <= x and x <= hi`, on `Int`s |
//! | `is_ipv4(a)`, `is_ipv6(a)` | `Bool` | the address or range is of that version |
//! | `is_loopback(a)`, `is_multicast(a)` | `Bool` | every address of `a` is loopback / multicast |
//!
//! The literal arguments of `time`, `duration`, `ip` and `decimal`, and the zone of the calendar
//! functions, must be string literals: a mistake in them is a check error, never a run-time one.

use std::str::FromStr;

use crate::ast::{Expr, ExprKind, Ident};
use crate::check::error::CheckError;
use crate::check::suggest;
use crate::check::types::{Ty, Typer};
use crate::source::Span;

const CALENDAR: [&str; 6] = ["hour", "minute", "weekday", "day", "month", "year"];
const FUNCTIONS: [&str; 16] = [
    "now",
    "time",
    "duration",
    "ip",
    "decimal",
    "hour",
    "minute",
    "weekday",
    "day",
    "month",
    "year",
    "in_range",
    "is_ipv4",
    "is_ipv6",
    "is_loopback",
    "is_multicast",
];

pub(crate) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Where a literal argument must be a string literal.
fn literal(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Str(value) => Some(value),
        _ => None,
    }
}

impl Typer<'_, '_> {
    pub(super) fn call(&mut self, function: &Ident, args: &[Expr], span: Span) -> Ty {
        let name = function.name.as_str();
        if !is_function(name) {
            // Check the arguments anyway: their mistakes are worth reporting too.
            for arg in args {
                self.expr(arg);
            }
            let help = suggest::did_you_mean(name, FUNCTIONS, || {
                format!("the functions are {}", suggest::list(FUNCTIONS))
            });
            self.report_here(CheckError::UnknownFunction {
                name: name.to_string(),
                span: function.span,
                help,
            });
            return Ty::Dynamic;
        }
        let (params, result): (&[Ty], Ty) = match name {
            "now" => (&[], Ty::Time),
            "time" => (&[Ty::Str], Ty::Time),
            "duration" => (&[Ty::Str], Ty::Duration),
            "ip" => (&[Ty::Str], Ty::Ip),
            "decimal" => (&[Ty::Str], Ty::Decimal),
            "in_range" => (&[Ty::Int, Ty::Int, Ty::Int], Ty::Bool),
            "is_ipv4" | "is_ipv6" | "is_loopback" | "is_multicast" => (&[Ty::Ip], Ty::Bool),
            _ => (&[Ty::Time, Ty::Str], Ty::Int),
        };
        if args.len() != params.len() {
            for arg in args {
                self.expr(arg);
            }
            let signature = signature(name);
            self.report_here(CheckError::Arguments {
                message: format!(
                    "`{name}` takes {} argument{}, but {} {} given",
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    args.len(),
                    if args.len() == 1 { "is" } else { "are" }
                ),
                span,
                label: format!("expected `{signature}`"),
                help: format!("call it as `{signature}`"),
            });
            return result;
        }
        for (index, (arg, param)) in args.iter().zip(params).enumerate() {
            let ty = self.expr(arg);
            if ty != *param && ty != Ty::Dynamic {
                self.report_here(CheckError::Arguments {
                    message: format!(
                        "argument {} of `{name}` must be `{}`, but it is `{}`",
                        index + 1,
                        param.describe(),
                        ty.describe()
                    ),
                    span: arg.span,
                    label: format!("`{}`", ty.describe()),
                    help: format!("call it as `{}`", signature(name)),
                });
                continue;
            }
            let literal_arg = match name {
                "time" | "duration" | "ip" | "decimal" => true,
                _ => CALENDAR.contains(&name) && index == 1,
            };
            if !literal_arg || *param != Ty::Str {
                continue;
            }
            let Some(text) = literal(arg) else {
                let what = if CALENDAR.contains(&name) {
                    "the time zone"
                } else {
                    "the argument"
                };
                self.report_here(CheckError::Arguments {
                    message: format!("{what} of `{name}` must be a string literal"),
                    span: arg.span,
                    label: "not a literal".to_string(),
                    help: format!(
                        "write the value in the policy, as in `{}`, so that it is checked before it is served",
                        signature(name)
                    ),
                });
                continue;
            };
            self.validate_literal(name, text, arg.span);
        }
        result
    }

    fn report_here(&mut self, error: CheckError) {
        self.ctx.report(self.file, error);
    }

    fn validate_literal(&mut self, function: &str, text: &str, span: Span) {
        let problem: Option<(&'static str, String, String)> = match function {
            "time" => jiff::Timestamp::from_str(text).err().map(|error| {
                (
                    "time",
                    error.to_string(),
                    "write an RFC 3339 time with its offset, such as `2026-03-02T10:00:00Z` or `2026-03-02T11:00:00+01:00`".to_string(),
                )
            }),
            "duration" => crate::syntax::token::parse_duration_literal(text)
                .is_none()
                .then(|| {
                    (
                        "duration",
                        "not a duration, or too long".to_string(),
                        "write a whole number and a unit (`d`, `h`, `m`, `s`, `ms`), repeated as needed: `1h30m`, `90s`, `7d`".to_string(),
                    )
                }),
            "ip" => {
                let valid = std::net::IpAddr::from_str(text).is_ok()
                    || ipnet::IpNet::from_str(text).is_ok();
                (!valid).then(|| {
                    (
                        "IP address",
                        "not an IP address or CIDR range".to_string(),
                        "write an IPv4 or IPv6 address (`10.0.0.1`, `::1`) or a range in CIDR notation (`10.0.0.0/8`)".to_string(),
                    )
                })
            }
            "decimal" => crate::syntax::decimal::parse_decimal(text).err().map(|error| {
                (
                    "decimal",
                    error.to_string(),
                    "write digits, a point and one to four digits: `1.5`, `-0.25`, `100.0`"
                        .to_string(),
                )
            }),
            _ => {
                if let Some(error) = unknown_zone(text, span) {
                    self.report_here(error);
                }
                None
            }
        };
        if let Some((what, reason, help)) = problem {
            self.report_here(CheckError::InvalidLiteral {
                what,
                text: text.to_string(),
                span,
                reason,
                help,
            });
        }
    }
}

fn signature(name: &str) -> &'static str {
    match name {
        "now" => "now()",
        "time" => "time(\"2026-03-02T10:00:00Z\")",
        "duration" => "duration(\"1h30m\")",
        "ip" => "ip(\"10.0.0.0/8\")",
        "decimal" => "decimal(\"1.25\")",
        "hour" => "hour(now(), \"Europe/Paris\")",
        "minute" => "minute(now(), \"Europe/Paris\")",
        "weekday" => "weekday(now(), \"Europe/Paris\")",
        "day" => "day(now(), \"Europe/Paris\")",
        "month" => "month(now(), \"Europe/Paris\")",
        "year" => "year(now(), \"Europe/Paris\")",
        "is_ipv4" => "is_ipv4(context.ip)",
        "is_ipv6" => "is_ipv6(context.ip)",
        "is_loopback" => "is_loopback(context.ip)",
        "is_multicast" => "is_multicast(context.ip)",
        _ => "in_range(x, 1, 10)",
    }
}

/// The error for a zone name the time zone database does not hold, with the nearest names.
pub(super) fn unknown_zone(text: &str, span: Span) -> Option<CheckError> {
    if jiff::tz::db().get(text).is_ok() {
        return None;
    }
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    let help = suggest::did_you_mean(text, names.iter().map(String::as_str), || {
        "use an IANA time zone name, such as `Europe/Paris`, `America/New_York` or `UTC`"
            .to_string()
    });
    Some(CheckError::UnknownZone {
        zone: text.to_string(),
        span,
        help,
    })
}
