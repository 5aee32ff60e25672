//! Times and delays as users type them, for delayed runs (`enqueue --at`,
//! `--in`, the API's `runAt`): an instant with its zone said explicitly,
//! and a delay such as `90s` or `1h30m`.

use chrono::{DateTime, NaiveDateTime, TimeZone};

use super::Timestamp;
use crate::error::{Error, Result};

/// Local date-time forms accepted before a zone name.
const LOCAL_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Parses an instant: RFC 3339 with `Z` or an offset
/// (`2026-12-24T06:00:00Z`, `2026-12-24T07:00:00+01:00`), or a local time
/// followed by an IANA zone (`2026-12-24T07:00 Europe/Berlin`). A time
/// without a zone is refused: it would mean different instants on the
/// server and on the user's machine.
pub fn parse_instant(text: &str) -> Result<Timestamp> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Timestamp(t.timestamp_millis()));
    }
    let Some((local, zone)) = text.rsplit_once(' ') else {
        return Err(bad_instant(text));
    };
    let zone: chrono_tz::Tz = zone.parse().map_err(|_| {
        Error::Invalid(format!(
            "unknown time zone '{zone}' in '{text}'; use an IANA name such as Europe/Berlin"
        ))
    })?;
    let naive = LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(local.trim(), f).ok())
        .ok_or_else(|| bad_instant(text))?;
    // A local time in a daylight-saving gap does not exist; a repeated one
    // is taken at its first occurrence, as schedules do.
    let t = zone.from_local_datetime(&naive).earliest().ok_or_else(|| {
        Error::Invalid(format!(
            "'{local}' does not exist in {zone} (the clocks skip it for daylight saving time)"
        ))
    })?;
    Ok(Timestamp(t.timestamp_millis()))
}

fn bad_instant(text: &str) -> Error {
    Error::Invalid(format!(
        "cannot read '{text}' as a time: use 2026-12-24T06:00:00Z, an offset \
         (2026-12-24T07:00:00+01:00) or a zone name (2026-12-24T07:00 Europe/Berlin)"
    ))
}

/// Parses a delay: numbers with units `ms`, `s`, `m`, `h`, `d`, one or
/// more (`90s`, `2h`, `1h30m`); returns milliseconds.
pub fn parse_delay(text: &str) -> Result<i64> {
    let bad = || {
        Error::Invalid(format!(
            "cannot read '{text}' as a delay: use a number with a unit, e.g. 90s, 15m, 2h, 1d, 1h30m"
        ))
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_need_a_zone_and_honour_it() {
        let utc = parse_instant("2026-12-24T06:00:00Z").unwrap();
        assert_eq!(utc.to_text(), "2026-12-24T06:00:00.000Z");
        assert_eq!(parse_instant("2026-12-24T07:00:00+01:00").unwrap(), utc);
        assert_eq!(
            parse_instant("2026-12-24T07:00 Europe/Berlin").unwrap(),
            utc
        );
        assert_eq!(
            parse_instant("2026-12-24 01:00:00 America/New_York").unwrap(),
            utc
        );
        assert!(parse_instant("2026-12-24T06:00:00").is_err());
        assert!(parse_instant("2026-12-24T06:00 Mars/Olympus").is_err());
        assert!(parse_instant("tomorrow").is_err());
    }

    #[test]
    fn a_time_in_the_spring_gap_is_refused_and_a_repeated_one_is_the_first() {
        assert!(parse_instant("2027-03-28T02:30 Europe/Berlin").is_err());
        // 02:30 happens twice on 2027-10-31 in Berlin: first at +02:00.
        let t = parse_instant("2027-10-31T02:30 Europe/Berlin").unwrap();
        assert_eq!(t.to_text(), "2027-10-31T00:30:00.000Z");
    }

    #[test]
    fn delays_add_their_parts() {
        assert_eq!(parse_delay("90s").unwrap(), 90_000);
        assert_eq!(parse_delay("2h").unwrap(), 7_200_000);
        assert_eq!(parse_delay("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_delay("1d").unwrap(), 86_400_000);
        assert_eq!(parse_delay("250ms").unwrap(), 250);
        for bad in ["", "s", "10", "10x", "-5s", "1.5h", "99999999999999999999d"] {
            assert!(parse_delay(bad).is_err(), "{bad}");
        }
    }
}
