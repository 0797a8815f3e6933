//! Epoch milliseconds in, ISO-8601 UTC strings out.
//!
//! The domain keeps every instant as `i64` epoch milliseconds and only renders the
//! `2021-10-12T00:53:20.000Z` form at the JSON boundary, so no clock or calendar type
//! leaks into the model.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveTime};

/// A date, or `None` if impossible or outside chrono's years. The fields come from request
/// text, so they are checked here instead of feeding calendar arithmetic a huge year overflows.
pub(crate) fn date(y: i64, mo: i64, d: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, u32::try_from(mo).ok()?, u32::try_from(d).ok()?)
}

/// A time of day, or `None` if impossible.
pub(crate) fn time_of_day(h: i64, mi: i64, se: i64, ms: i64) -> Option<NaiveTime> {
    // chrono reads 1000..=1999 ms as a leap second; no input format here has one.
    let ms = u32::try_from(ms).ok().filter(|ms| *ms < 1000)?;
    NaiveTime::from_hms_milli_opt(u32::try_from(h).ok()?, u32::try_from(mi).ok()?, u32::try_from(se).ok()?, ms)
}

/// Kept by hand rather than through chrono because it must render every `i64` (a request may
/// give any epoch ms), far beyond chrono's ±262,000 years; it cannot overflow, as `|z|` is at
/// most `i64::MAX / 86_400_000`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Renders epoch ms as `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`.
pub fn format_iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let mut s = String::with_capacity(24);
    let _ = write!(
        s,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        y,
        mo,
        d,
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    );
    s
}

/// Parses `yyyy-MM-ddTHH:mm:ss[.fff](Z|±hh:mm)` into epoch ms; `None` if malformed.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b' ')) {
        return None;
    }
    let (h, mi, se) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        millis = padded.parse::<i64>().ok()?;
    }
    let offset_ms = match &s[i..] {
        "Z" | "" => 0,
        rest => parse_offset(rest)?,
    };
    let local = date(y, mo, d)?.and_time(time_of_day(h, mi, se, millis)?);
    local.and_utc().timestamp_millis().checked_sub(offset_ms)
}

/// Parses `+hh:mm`, `+hhmm` or `+hh` into milliseconds east of UTC.
pub(crate) fn parse_offset(s: &str) -> Option<i64> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = if digits.len() <= 2 {
        (digits.parse::<i64>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (digits[..split].parse::<i64>().ok()?, digits[split..].parse::<i64>().ok()?)
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60) * 1000)
}

/// Serde adapter for `Option<i64>` epoch ms shown as ISO strings; also reads raw numbers.
pub(crate) mod opt_iso {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&super::format_iso(*ms)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<serde_json::Value>::deserialize(d)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => {
                n.as_i64().map(Some).ok_or_else(|| D::Error::custom("date-time out of range"))
            }
            Some(serde_json::Value::String(s)) => {
                super::parse_iso(&s).map(Some).ok_or_else(|| D::Error::custom(format!("invalid date-time: {s}")))
            }
            Some(other) => Err(D::Error::custom(format!("invalid date-time: {other}"))),
        }
    }
}

/// Serde adapter for a required `i64` epoch ms shown as an ISO string.
pub(crate) mod iso {
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_iso(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        super::opt_iso::deserialize(d)?.ok_or_else(|| D::Error::custom("missing date-time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        assert_eq!(format_iso(1_634_000_000_000), "2021-10-12T00:53:20.000Z");
        assert_eq!(parse_iso("2021-10-12T00:53:20.000Z"), Some(1_634_000_000_000));
        assert_eq!(parse_iso("2021-10-12T08:53:20.5+08:00"), Some(1_634_000_000_500));
        assert_eq!(format_iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_iso("2021-02-30T00:00:00Z"), None);
        assert_eq!(parse_iso("nope"), None);
        for ms in [0, 951_782_400_000, 4_102_444_800_123, -62_135_596_800_000] {
            assert_eq!(parse_iso(&format_iso(ms)), Some(ms));
        }
        assert_eq!(parse_iso("2021-10-12T00:53:20.000+18:00"), Some(1_634_000_000_000 - 18 * 3_600_000));
        assert_eq!(parse_iso("2021-10-12T24:00:00Z"), None);
        assert_eq!(parse_iso("2021-10-12T00:60:00Z"), None);
    }

    /// Any epoch ms a request gives renders; the extremes are far beyond chrono's years.
    #[test]
    fn renders_every_i64() {
        assert_eq!(format_iso(i64::MAX), "292278994-08-17T07:12:55.807Z");
        assert_eq!(format_iso(i64::MIN), "-292275055-05-16T16:47:04.192Z");
    }
}
