//! A point in wall time, in milliseconds, and its text form in the database.
//!
//! Timestamps are stored as `2026-11-28T12:00:00.123Z`: fixed width, UTC, so
//! text order is time order and `sqlite3` users can read them.

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time, by the process clock ([`super::now`]): the
    /// system clock, or the one a test chose.
    #[inline]
    pub fn now() -> Timestamp {
        super::now()
    }

    /// This time moved by `ms` milliseconds (negative moves back).
    pub fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0 + ms)
    }

    /// The text form stored in the database.
    pub fn to_text(self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (sod / 3600, (sod / 60) % 60, sod % 60);
        if !(0..=9999).contains(&y) {
            return format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z");
        }
        // Every log line and every write carries one: digits written in
        // place cost a fraction of `format!`.
        let mut b = *b"0000-00-00T00:00:00.000Z";
        for (at, width, v) in [
            (0, 4, y),
            (5, 2, m as i64),
            (8, 2, d as i64),
            (11, 2, hh),
            (14, 2, mm),
            (17, 2, ss),
            (20, 3, ms),
        ] {
            let mut v = v;
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Parses the text form written by [`Timestamp::to_text`]; also accepts
    /// whole seconds and a date alone (`2026-11-28`), as users type them.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let t = text.trim().trim_end_matches('Z');
        let (date, time) = match t.split_once(['T', ' ']) {
            Some((d, t)) => (d, t),
            None => (t, "00:00:00"),
        };
        let mut dp = date.splitn(3, '-');
        let y: i64 = dp.next()?.parse().ok()?;
        let m: u32 = dp.next()?.parse().ok()?;
        let d: u32 = dp.next()?.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, b),
            None => (time, "0"),
        };
        let mut tp = hms.splitn(3, ':');
        let h: i64 = tp.next()?.parse().ok()?;
        let mi: i64 = tp.next().unwrap_or("0").parse().ok()?;
        let s: i64 = tp.next().unwrap_or("0").parse().ok()?;
        if h > 23 || mi > 59 || s > 60 {
            return None;
        }
        let frac3: String = frac.chars().chain("000".chars()).take(3).collect();
        let ms: i64 = frac3.parse().ok()?;
        let days = days_from_civil(y, m, d);
        Some(Timestamp(
            ((days * 86_400) + h * 3600 + mi * 60 + s) * 1000 + ms,
        ))
    }
}

/// Howard Hinnant's algorithm: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = Timestamp(1_795_867_200_123);
        assert_eq!(t.to_text(), "2026-11-28T12:00:00.123Z");
        assert_eq!(Timestamp::parse(&t.to_text()), Some(t));
        assert_eq!(Timestamp(0).to_text(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp::parse("2026-11-28"),
            Some(Timestamp(1_795_824_000_000))
        );
        assert_eq!(Timestamp::parse("2026-13-01"), None);
        assert_eq!(Timestamp::parse("yesterday"), None);
    }

    #[test]
    fn the_fast_format_writes_what_format_would() {
        let slow = |t: Timestamp| {
            let (secs, ms) = (t.0.div_euclid(1000), t.0.rem_euclid(1000));
            let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60
            )
        };
        // From before year 0 to past year 9999, in uneven steps.
        let mut t = -70_000_000_000_000i64;
        while t < 260_000_000_000_000 {
            assert_eq!(Timestamp(t).to_text(), slow(Timestamp(t)), "{t}");
            t += 9_876_543_210_987;
        }
        for t in [
            0,
            999,
            1_000,
            86_399_999,
            253_402_300_799_999,
            253_402_300_800_000,
        ] {
            assert_eq!(Timestamp(t).to_text(), slow(Timestamp(t)), "{t}");
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Timestamp(1_000_000_000_999).to_text();
        let b = Timestamp(1_000_000_001_000).to_text();
        assert!(a < b);
    }
}
