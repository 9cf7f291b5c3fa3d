//! Limit periods: a rolling period (`per hour`, `per 10m`) or a calendar one in a named time
//! zone (`per month in "Europe/Paris"`). The key and condition are typed with the rules (see
//! `types`); this pass checks what only limits have.

use super::Ctx;
use super::error::CheckError;
use crate::ast::{Item, LimitPeriod, PeriodUnit};

/// A calendar period: it starts at midnight of its first day in the limit's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarUnit {
    Day,
    /// Weeks start on Monday (ISO 8601).
    Week,
    Month,
}

/// A checked limit period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Period {
    /// A window that slides with each request, in milliseconds.
    Rolling(i64),
    /// A quota that starts afresh at each calendar day, week or month in a zone.
    Calendar(CalendarUnit, String),
}

const ROLLING: [(&str, i64); 5] = [
    ("second", 1_000),
    ("minute", 60_000),
    ("hour", 3_600_000),
    ("day", 86_400_000),
    ("week", 7 * 86_400_000),
];

/// The period a limit counts over; an error (message, help) when it is not one.
pub fn period(period: &LimitPeriod) -> Result<Period, (String, String)> {
    match (&period.unit, &period.zone) {
        (PeriodUnit::Duration(millis, _), None) if *millis > 0 => Ok(Period::Rolling(*millis)),
        (PeriodUnit::Duration(..), None) => Err((
            "a limit's period must be longer than zero".to_string(),
            "write e.g. `per 10m` or `per hour`".to_string(),
        )),
        (PeriodUnit::Duration(..), Some(_)) => Err((
            "a duration is a rolling period and takes no time zone".to_string(),
            "for a calendar period write `per day`, `per week` or `per month` with `in \"Zone\"`"
                .to_string(),
        )),
        (PeriodUnit::Word(word), None) => {
            match ROLLING.iter().find(|(name, _)| *name == word.name) {
                Some((_, millis)) => Ok(Period::Rolling(*millis)),
                None if word.name == "month" => Err((
                    "a month has no fixed length: `per month` needs a time zone".to_string(),
                    "write `per month in \"UTC\"` (or another IANA zone): the quota starts \
                     afresh on the first of each month there"
                        .to_string(),
                )),
                None => Err(unknown_unit(&word.name)),
            }
        }
        (PeriodUnit::Word(word), Some(zone)) => {
            let unit = match word.name.as_str() {
                "day" => CalendarUnit::Day,
                "week" => CalendarUnit::Week,
                "month" => CalendarUnit::Month,
                other => {
                    return Err((
                        format!("`{other}` is not a calendar period"),
                        "a time zone makes a calendar quota: `per day`, `per week` or `per month` \
                         in \"Zone\"; drop the zone for a rolling period"
                            .to_string(),
                    ));
                }
            };
            if jiff::tz::db().get(&zone.value).is_err() {
                return Err((
                    format!("unknown time zone `{}`", zone.value),
                    "use an IANA time zone name, such as `Europe/Paris` or `UTC`".to_string(),
                ));
            }
            Ok(Period::Calendar(unit, zone.value.clone()))
        }
    }
}

fn unknown_unit(word: &str) -> (String, String) {
    let known = ["second", "minute", "hour", "day", "week", "month"];
    let hint = match crate::source::suggest(word, known.iter().copied()) {
        Some(near) => format!("did you mean `{near}`? "),
        None => String::new(),
    };
    (
        format!("unknown period `{word}`"),
        format!(
            "{hint}a limit counts `per second`, `minute`, `hour`, `day`, `week`, a duration \
             (`per 10m`), or a calendar `day`, `week` or `month` in a time zone"
        ),
    )
}

/// Reports every limit whose period is not one.
pub(crate) fn check_limits(ctx: &mut Ctx<'_>) {
    let files = ctx.files;
    for (file, parsed) in files.iter().enumerate() {
        for item in &parsed.ast.items {
            let Item::Limit(limit) = item else {
                continue;
            };
            // An unknown zone is reported as anywhere else a zone is named.
            if let Some(zone) = &limit.period.zone
                && let Some(error) = super::functions::unknown_zone(&zone.value, zone.span)
            {
                ctx.report(file, error);
                continue;
            }
            match period(&limit.period) {
                Err((message, help)) => ctx.report(
                    file,
                    CheckError::Limit {
                        message,
                        span: limit.period.span,
                        help,
                    },
                ),
                // A rolling limit lets one request through per period / count: counted in
                // whole microseconds (as Redis counts), a shorter interval would be none.
                Ok(Period::Rolling(millis)) if limit.count > millis.saturating_mul(1_000) => ctx
                    .report(
                        file,
                        CheckError::Limit {
                            message: format!(
                                "limit `{}` counts more than one request a microsecond",
                                limit.name.name
                            ),
                            span: limit.count_span,
                            help: format!(
                                "a rolling limit lets one request through every period divided \
                                 by its count, and that must be at least a microsecond: count \
                                 at most {} per `{}`, or over a longer period",
                                millis.saturating_mul(1_000),
                                crate::syntax::fmt::duration_text(millis)
                            ),
                        },
                    ),
                Ok(_) => {}
            }
        }
    }
}
