//! Cedar's fixed-point decimals: the text `decimal("…")` takes and data files hold, read into a
//! count of ten-thousandths, and written back. One reader for the checker (literals), the data
//! and request decoders and the compiler, so a literal that checks is one that evaluates.

use thiserror::Error;

/// Digits after the point a decimal keeps.
pub(crate) const DECIMAL_PLACES: u32 = 4;

/// Ten-thousandths in one.
const SCALE: i64 = 10_i64.pow(DECIMAL_PLACES);

/// Why a text is not a decimal.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub(crate) enum DecimalError {
    #[error("a decimal is digits, a point and digits, with an optional leading `-`")]
    Malformed,
    #[error("a decimal has at most 4 digits after the point")]
    TooPrecise,
    #[error("out of range: a decimal lies between -922337203685477.5808 and 922337203685477.5807")]
    OutOfRange,
}

/// Reads `1.5`, `-0.0001`, `42.0` as ten-thousandths, as Cedar does: one or more digits, a point,
/// one to four digits; nothing else (no exponent, no `+`, no bare `.5` or `5.`).
pub(crate) fn parse_decimal(text: &str) -> Result<i64, DecimalError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').ok_or(DecimalError::Malformed)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(DecimalError::Malformed);
    }
    if fraction.len() > DECIMAL_PLACES as usize {
        return Err(DecimalError::TooPrecise);
    }
    // Leading zeros are allowed, so the whole part is read as a number, not measured.
    let whole: i64 = whole.parse().map_err(|_| DecimalError::OutOfRange)?;
    let mut fraction_value: i64 = fraction.parse().map_err(|_| DecimalError::Malformed)?;
    for _ in fraction.len()..DECIMAL_PLACES as usize {
        fraction_value *= 10;
    }
    // Negative values are built downwards so that the smallest one, whose magnitude has no
    // positive counterpart, is reachable.
    let scaled = whole.checked_mul(SCALE).ok_or(DecimalError::OutOfRange)?;
    let value = if negative {
        0_i64
            .checked_sub(scaled)
            .and_then(|v| v.checked_sub(fraction_value))
    } else {
        scaled.checked_add(fraction_value)
    };
    value.ok_or(DecimalError::OutOfRange)
}

/// Writes ten-thousandths the shortest way [`parse_decimal`] reads back: `1.5`, `-0.0001`, `2.0`.
pub fn decimal_text(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let scale = SCALE.unsigned_abs();
    let fraction = format!("{:04}", magnitude % scale);
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() { "0" } else { fraction };
    format!("{sign}{}.{fraction}", magnitude / scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cedar_decimals_and_writes_them_back() {
        for (text, value) in [
            ("1.5", 15_000),
            ("-0.0001", -1),
            ("0.0", 0),
            ("007.25", 72_500),
            ("922337203685477.5807", i64::MAX),
            ("-922337203685477.5808", i64::MIN),
        ] {
            assert_eq!(parse_decimal(text), Ok(value), "{text}");
            assert_eq!(parse_decimal(&decimal_text(value)), Ok(value), "{text}");
        }
        assert_eq!(decimal_text(15_000), "1.5");
        assert_eq!(decimal_text(-1), "-0.0001");
        assert_eq!(decimal_text(20_000), "2.0");
        for bad in [
            "1", ".5", "5.", "1.2.3", "+1.0", "1e3", "", "-", "1,5", " 1.0", "-.1",
        ] {
            assert_eq!(parse_decimal(bad), Err(DecimalError::Malformed), "{bad}");
        }
        assert_eq!(parse_decimal("1.23456"), Err(DecimalError::TooPrecise));
        assert_eq!(
            parse_decimal("922337203685477.5808"),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(
            parse_decimal("99999999999999999999.0"),
            Err(DecimalError::OutOfRange)
        );
    }
}
