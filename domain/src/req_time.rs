//! `ReqTime`: a request's time, as epoch ms or as text with a Java-style pattern and zone
//! (spec §2.5).

use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone};
use serde::{Deserialize, Serialize};

use crate::time::{self, parse_offset};

/// TasCreed's default pattern.
pub const DEFAULT_PATTERN: &str = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'";

/// A time given in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReqTime {
    /// Epoch ms; wins over the text form.
    #[serde(default, alias = "long", alias = "timeLong", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Text parsed with `timePattern` in `timeZone`.
    #[serde(default, alias = "string", alias = "timeStr", skip_serializing_if = "Option::is_none")]
    pub time_string: Option<String>,
    /// Java `SimpleDateFormat` pattern; default `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`.
    #[serde(
        default,
        alias = "pattern",
        alias = "format",
        alias = "timeFormat",
        skip_serializing_if = "Option::is_none"
    )]
    pub time_pattern: Option<String>,
    /// Zone id (IANA, `UTC`, `GMT+8`, `+08:00`, Java short ids like `CTT`); default UTC.
    #[serde(default, alias = "zone", skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A request time that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse time format fails: {0}")]
pub struct TimeError(pub String);

impl ReqTime {
    /// Epoch ms, or `None` when neither form is set.
    pub fn resolve(&self) -> Result<Option<i64>, TimeError> {
        if let Some(ts) = self.timestamp {
            return Ok(Some(ts));
        }
        let Some(text) = self.time_string.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let pattern = self.time_pattern.as_deref().filter(|s| !s.is_empty()).unwrap_or(DEFAULT_PATTERN);
        let zone = self.time_zone.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or("UTC");
        parse_with_pattern(text, pattern, zone).map(Some)
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Field(char, usize),
    Literal(String),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, TimeError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let push_lit = |out: &mut Vec<Token>, c: char| match out.last_mut() {
        Some(Token::Literal(s)) => s.push(c),
        _ => out.push(Token::Literal(c.to_string())),
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                push_lit(&mut out, '\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(TimeError(format!("unterminated quote in pattern {pattern}"))),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        push_lit(&mut out, '\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&q) => {
                        push_lit(&mut out, q);
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !"yMdHkKhamsSEZXz".contains(c) {
                return Err(TimeError(format!("unsupported pattern letter '{c}' in {pattern}")));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            out.push(Token::Field(c, n));
            i += n;
        } else {
            push_lit(&mut out, c);
            i += 1;
        }
    }
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

#[derive(Default)]
struct Fields {
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: i64,
    hour12: Option<i64>,
    pm: Option<bool>,
    minute: i64,
    second: i64,
    millis: i64,
    offset_ms: Option<i64>,
    zone: Option<String>,
}

fn is_numeric(t: &Token) -> bool {
    matches!(t, Token::Field(c, n) if "ydHkKhmsS".contains(*c) || (*c == 'M' && *n <= 2))
}

/// Parses `text` with a Java `SimpleDateFormat`-style `pattern`, local to `zone`.
/// Abutting numeric fields take exactly their pattern width, as Java does.
pub fn parse_with_pattern(text: &str, pattern: &str, zone: &str) -> Result<i64, TimeError> {
    let fail = |why: &str| TimeError(format!("{text} with pattern {pattern}: {why}"));
    let tokens = tokenize(pattern)?;
    let mut f = Fields::default();
    let mut rest = text;
    for (i, tok) in tokens.iter().enumerate() {
        match tok {
            Token::Literal(lit) => {
                rest = rest.strip_prefix(lit.as_str()).ok_or_else(|| fail(&format!("expected '{lit}'")))?;
            }
            Token::Field(c, n) if is_numeric(tok) => {
                let abutting = tokens.get(i + 1).is_some_and(is_numeric);
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                let take = if abutting { *n } else { digits.min(18) };
                if take == 0 || digits < take {
                    return Err(fail(&format!("expected digits for '{c}'")));
                }
                let v: i64 = rest[..take].parse().map_err(|_| fail("bad number"))?;
                rest = &rest[take..];
                match c {
                    'y' if *n == 2 && take == 2 => f.year = Some(if v < 50 { 2000 + v } else { 1900 + v }),
                    'y' => f.year = Some(v),
                    'M' => f.month = Some(v),
                    'd' => f.day = Some(v),
                    'H' => f.hour = v,
                    'k' => f.hour = if v == 24 { 0 } else { v },
                    'K' | 'h' => f.hour12 = Some(if v == 12 && *c == 'h' { 0 } else { v }),
                    'm' => f.minute = v,
                    's' => f.second = v,
                    _ => f.millis = v,
                }
            }
            Token::Field('M', _) => {
                let word: String = rest.chars().take_while(|c| c.is_alphabetic()).collect();
                let lower = word.to_lowercase();
                let idx = MONTHS
                    .iter()
                    .position(|m| *m == lower || (lower.len() == 3 && m.starts_with(&lower)))
                    .ok_or_else(|| fail("unknown month name"))?;
                f.month = Some(idx as i64 + 1);
                rest = &rest[word.len()..];
            }
            Token::Field('E', _) => {
                let len = rest.chars().take_while(|c| c.is_alphabetic()).map(char::len_utf8).sum();
                if len == 0 {
                    return Err(fail("expected a day name"));
                }
                rest = &rest[len..];
            }
            Token::Field('a', _) => {
                let up = rest.get(..2).map(str::to_ascii_uppercase);
                f.pm = Some(match up.as_deref() {
                    Some("AM") => false,
                    Some("PM") => true,
                    _ => return Err(fail("expected AM or PM")),
                });
                rest = &rest[2..];
            }
            Token::Field(_, _) => {
                // Z, X, z: an offset or a zone id written in the text overrides `zone`.
                if let Some(r) = rest.strip_prefix('Z') {
                    f.offset_ms = Some(0);
                    rest = r;
                } else {
                    let len = rest
                        .char_indices()
                        .find(|(i, c)| !(c.is_ascii_alphanumeric() || "+-:/_".contains(*c) || *i == 0))
                        .map_or(rest.len(), |(i, _)| i);
                    let word = &rest[..len];
                    match parse_offset(word) {
                        Some(off) => f.offset_ms = Some(off),
                        None => f.zone = Some(word.to_string()),
                    }
                    rest = &rest[len..];
                }
            }
        }
    }
    if !rest.is_empty() {
        return Err(fail(&format!("unparsed text '{rest}'")));
    }
    if let Some(h) = f.hour12 {
        f.hour = h + if f.pm == Some(true) { 12 } else { 0 };
    } else if f.pm == Some(true) && f.hour < 12 {
        f.hour += 12;
    }
    let (y, mo, d) = (f.year.unwrap_or(1970), f.month.unwrap_or(1), f.day.unwrap_or(1));
    // A year is up to 18 digits of request text; chrono's range is what we can compute with.
    if !(i64::from(NaiveDate::MIN.year())..=i64::from(NaiveDate::MAX.year())).contains(&y) {
        return Err(fail(&format!("year {y} out of range")));
    }
    let date = time::date(y, mo, d).ok_or_else(|| fail("date out of range"))?;
    let clock = time::time_of_day(f.hour, f.minute, f.second, f.millis).ok_or_else(|| fail("time out of range"))?;
    let local = date.and_time(clock);
    let offset = match (f.offset_ms, f.zone) {
        (Some(off), _) => off,
        (None, Some(z)) => zone_offset(&z, local)?,
        (None, None) => zone_offset(zone, local)?,
    };
    local.and_utc().timestamp_millis().checked_sub(offset).ok_or_else(|| fail("date out of range"))
}

/// Java's legacy three-letter ids (`ZoneId.SHORT_IDS`) that are not IANA names.
fn java_short_id(id: &str) -> Option<&'static str> {
    Some(match id {
        "ACT" => "Australia/Darwin",
        "AET" => "Australia/Sydney",
        "AGT" => "America/Argentina/Buenos_Aires",
        "ART" => "Africa/Cairo",
        "AST" => "America/Anchorage",
        "BET" => "America/Sao_Paulo",
        "BST" => "Asia/Dhaka",
        "CAT" => "Africa/Harare",
        "CNT" => "America/St_Johns",
        "CST" => "America/Chicago",
        "CTT" => "Asia/Shanghai",
        "EAT" => "Africa/Addis_Ababa",
        "ECT" => "Europe/Paris",
        "IET" => "America/Indiana/Indianapolis",
        "IST" => "Asia/Kolkata",
        "JST" => "Asia/Tokyo",
        "MIT" => "Pacific/Apia",
        "NET" => "Asia/Yerevan",
        "NST" => "Pacific/Auckland",
        "PLT" => "Asia/Karachi",
        "PNT" => "America/Phoenix",
        "PRT" => "America/Puerto_Rico",
        "PST" => "America/Los_Angeles",
        "SST" => "Pacific/Guadalcanal",
        "VST" => "Asia/Ho_Chi_Minh",
        _ => return None,
    })
}

/// Offset east of UTC, in ms, that `zone` has at the wall time `local`.
fn zone_offset(zone: &str, local: NaiveDateTime) -> Result<i64, TimeError> {
    let zone = zone.trim();
    if matches!(zone, "UTC" | "GMT" | "Z" | "UT") {
        return Ok(0);
    }
    for prefix in ["UTC", "GMT", "UT", ""] {
        if let Some(off) = zone.strip_prefix(prefix).and_then(parse_offset) {
            return Ok(off);
        }
    }
    let name = java_short_id(zone).unwrap_or(zone);
    let tz = chrono_tz::Tz::from_str(name).map_err(|_| TimeError(format!("unknown time zone {zone}")))?;
    // In a DST gap Java moves forward by the gap; taking the offset from before the gap does that.
    let offset = match tz.offset_from_local_datetime(&local) {
        chrono::LocalResult::Single(o) | chrono::LocalResult::Ambiguous(o, _) => o,
        chrono::LocalResult::None => {
            let before = local
                .checked_sub_signed(chrono::TimeDelta::hours(3))
                .ok_or_else(|| TimeError("date out of range".into()))?;
            tz.offset_from_utc_datetime(&before)
        }
    };
    Ok(i64::from(offset.fix().local_minus_utc()) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ts: Option<i64>, s: Option<&str>, p: Option<&str>, z: Option<&str>) -> ReqTime {
        ReqTime {
            timestamp: ts,
            time_string: s.map(String::from),
            time_pattern: p.map(String::from),
            time_zone: z.map(String::from),
        }
    }

    #[test]
    fn spec_example_and_precedence() {
        let r = t(None, Some("2021-10-12 00:53:20"), Some("yyyy-MM-dd HH:mm:ss"), None);
        assert_eq!(r.resolve(), Ok(Some(1_634_000_000_000)));
        assert_eq!(t(Some(5), Some("garbage"), None, None).resolve(), Ok(Some(5)));
        assert_eq!(t(None, None, None, None).resolve(), Ok(None));
        let d = t(None, Some("2021-10-12T00:53:20.000Z"), None, None);
        assert_eq!(d.resolve(), Ok(Some(1_634_000_000_000)));
    }

    #[test]
    fn zones_and_abutting_fields() {
        let sh = t(None, Some("20211012085320"), Some("yyyyMMddHHmmss"), Some("Asia/Shanghai"));
        assert_eq!(sh.resolve(), Ok(Some(1_634_000_000_000)));
        let ctt = t(None, Some("2021-10-12 08:53:20"), Some("yyyy-MM-dd HH:mm:ss"), Some("CTT"));
        assert_eq!(ctt.resolve(), Ok(Some(1_634_000_000_000)));
        let gmt8 = t(None, Some("2021-10-12 08:53:20"), Some("yyyy-MM-dd HH:mm:ss"), Some("GMT+8"));
        assert_eq!(gmt8.resolve(), Ok(Some(1_634_000_000_000)));
        let off = t(None, Some("2021-10-12T08:53:20+0800"), Some("yyyy-MM-dd'T'HH:mm:ssZ"), None);
        assert_eq!(off.resolve(), Ok(Some(1_634_000_000_000)));
    }

    #[test]
    fn failures_name_the_cause() {
        let bad = t(None, Some("12/10/2021"), Some("yyyy-MM-dd"), None).resolve().unwrap_err();
        assert!(bad.to_string().starts_with("parse time format fails: "), "{bad}");
        assert!(t(None, Some("2021-10-12"), Some("yyyy-MM-dd"), Some("Mars/Base")).resolve().is_err());
        assert!(t(None, Some("2021-13-12"), Some("yyyy-MM-dd"), None).resolve().is_err());
        assert!(t(None, Some("2021"), Some("yyyy QQ"), None).resolve().is_err());
    }

    /// Request text can hold any number of digits: absurd values are a 400, never a panic or
    /// a wrapped instant.
    #[test]
    fn absurd_values_are_rejected() {
        let at = |s: &str, p: &str, z: Option<&str>| t(None, Some(s), Some(p), z).resolve();
        let max = NaiveDate::MAX.year();
        for text in ["999999999999999999-01-01", &format!("{}-01-01", i64::from(max) + 1)] {
            for zone in [None, Some("Asia/Shanghai")] {
                let e = at(text, "yyyy-MM-dd", zone).unwrap_err();
                assert!(e.to_string().starts_with("parse time format fails: "), "{e}");
                assert!(e.to_string().contains("out of range"), "{e}");
            }
        }
        // chrono's last year still computes, in a named zone and with a fixed offset
        let last = NaiveDate::from_ymd_opt(max, 12, 31).and_then(|d| d.and_hms_opt(23, 59, 59)).unwrap();
        let last_ms = last.and_utc().timestamp_millis();
        let text = format!("{max}-12-31 23:59:59");
        assert_eq!(at(&text, "yyyy-MM-dd HH:mm:ss", None), Ok(Some(last_ms)));
        assert_eq!(at(&text, "yyyy-MM-dd HH:mm:ss", Some("GMT-8")), Ok(Some(last_ms + 8 * 3_600_000)));
        assert!(at(&text, "yyyy-MM-dd HH:mm:ss", Some("America/New_York")).is_ok());
        assert_eq!(at("0000-01-01", "yyyy-MM-dd", None), Ok(Some(-62_167_219_200_000)));
        for (text, pattern) in [
            ("2021-01-01 999999999999999999:00", "yyyy-MM-dd HH:mm"),
            ("2021-01-01 00:00:00.999999999999999999", "yyyy-MM-dd HH:mm:ss.SSS"),
            ("2021-01-01 00:00:00.1000", "yyyy-MM-dd HH:mm:ss.SSS"),
            ("2021-999999999999999999-01", "yyyy-MM-dd"),
            ("2021-01-999999999999999999", "yyyy-MM-dd"),
            ("999999999999999999 PM", "h a"),
            ("2021-01-01 9999999999999999999999", "yyyy-MM-dd HH"),
        ] {
            let e = at(text, pattern, None).unwrap_err();
            assert!(e.to_string().starts_with("parse time format fails: "), "{text}: {e}");
        }
    }
}
