//! iCalendar's syntax (RFC 5545 §3.1–3.3): unfolding, content lines with their parameters,
//! the component tree, value types (DATE, DATE-TIME, DURATION, PERIOD, UTC-OFFSET), text
//! escapes, and the writer's side (escaping and folding at 75 octets).
//!
//! Hand-written: the crates that parse iCalendar either bring chrono and their own time-zone
//! model (calcard, icalendar) or are strict enough to drop a whole feed for one bad line; here
//! one malformed event must be skipped and reported while the rest of the feed syncs.

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Span, Timestamp};

/// One unfolded content line: `NAME;PARAM=a,b:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Upper-cased.
    pub name: String,
    /// Names upper-cased; values unquoted, in order.
    pub params: Vec<(String, Vec<String>)>,
    pub value: String,
    /// 1-based line number where the property starts (for error reports).
    pub line: usize,
}

impl Property {
    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, values)| values.first())
            .map(String::as_str)
    }
}

/// A component (`BEGIN:VEVENT … END:VEVENT`) with its properties and sub-components.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    /// Upper-cased, e.g. `VEVENT`.
    pub name: String,
    pub properties: Vec<Property>,
    pub components: Vec<Component>,
    /// Where it begins (1-based line).
    pub line: usize,
}

impl Component {
    /// The first property called `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Every property called `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Property> + 'a {
        self.properties.iter().filter(move |p| p.name == name)
    }

    /// The unescaped text of property `name`.
    pub fn text(&self, name: &str) -> Option<String> {
        self.property(name).map(|p| unescape_text(&p.value))
    }
}

/// Why text is not iCalendar at all (a whole-feed failure, unlike one bad event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("no BEGIN:VCALENDAR found")]
    NotCalendar,
}

/// Unfolds lines (a CRLF or LF followed by a space or tab continues the previous line) and
/// yields `(first line number, logical line)`, skipping blank lines.
pub fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match raw.as_bytes().first() {
            Some(b' ' | b'\t') if !out.is_empty() => {
                if let Some((_, last)) = out.last_mut() {
                    last.push_str(&raw[1..]);
                }
            }
            _ if raw.trim().is_empty() => {}
            _ => out.push((i + 1, raw.to_string())),
        }
    }
    out
}

/// Parses one logical line. Delimiters are ASCII, so byte positions are character
/// boundaries.
pub fn parse_line(line: usize, text: &str) -> Result<Property, SyntaxError> {
    let err = |message: &str| SyntaxError::Line { line, message: message.to_string() };
    let b = text.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n && b[i] != b';' && b[i] != b':' {
        i += 1;
    }
    let name = text[..i].trim().to_ascii_uppercase();
    if i == n {
        return Err(err("a content line needs a ':' before its value"));
    }
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        return Err(err("a property name is letters, digits and '-'"));
    }
    let mut params = Vec::new();
    while i < n && b[i] == b';' {
        i += 1;
        let start = i;
        while i < n && b[i] != b'=' {
            if b[i] == b';' || b[i] == b':' {
                return Err(err("a parameter needs '='"));
            }
            i += 1;
        }
        if i == n {
            return Err(err("a parameter needs '='"));
        }
        let pname = text[start..i].trim().to_ascii_uppercase();
        i += 1;
        let mut values = Vec::new();
        loop {
            if i < n && b[i] == b'"' {
                let start = i + 1;
                i = start;
                while i < n && b[i] != b'"' {
                    i += 1;
                }
                if i == n {
                    return Err(err("a parameter value's quote is never closed"));
                }
                values.push(text[start..i].to_string());
                i += 1;
            } else {
                let start = i;
                while i < n && !matches!(b[i], b',' | b';' | b':') {
                    i += 1;
                }
                values.push(text[start..i].to_string());
            }
            if i < n && b[i] == b',' {
                i += 1;
                continue;
            }
            break;
        }
        params.push((pname, values));
    }
    if i >= n || b[i] != b':' {
        return Err(err("a content line needs a ':' before its value"));
    }
    Ok(Property { name, params, value: text[i + 1..].to_string(), line })
}

/// How deep components may nest (VCALENDAR › VEVENT › VALARM is 3): deeper is refused, so a
/// hostile feed cannot exhaust the stack that builds and drops the tree.
pub const MAX_DEPTH: usize = 8;

/// The longest DURATION accepted, in days (ten years): longer is a mistake or an attack, and
/// would overflow date arithmetic.
pub const MAX_DURATION_DAYS: i64 = 3660;

/// Parses the component tree of every top-level component in `text`.
pub fn parse(text: &str) -> Result<Vec<Component>, SyntaxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut stack: Vec<Component> = Vec::new();
    let mut top = Vec::new();
    for (line, raw) in unfold(text) {
        let prop = match parse_line(line, &raw) {
            Ok(p) => p,
            // A broken line inside a component spoils that component only: keep it as an
            // unparseable property so the component's reader can report it.
            Err(e) if !stack.is_empty() => {
                Property { name: "X-KAIROS-UNPARSEABLE".into(), params: Vec::new(), value: e.to_string(), line }
            }
            Err(e) => return Err(e),
        };
        match prop.name.as_str() {
            "BEGIN" => {
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError::Line {
                        line,
                        message: format!("components nest deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push(Component { name: prop.value.trim().to_ascii_uppercase(), line, ..Component::default() })
            }
            "END" => {
                let name = prop.value.trim().to_ascii_uppercase();
                // An END that closes an enclosing component (its child was never closed):
                // the unclosed ones are dropped and the enclosing one marked broken, so one
                // bad event is skipped and reported while the rest of the feed still counts.
                let Some(depth) = stack.iter().rposition(|c| c.name == name) else {
                    if stack.len() <= 1 {
                        return Err(SyntaxError::Line { line, message: format!("END:{name} without BEGIN") });
                    }
                    if let Some(current) = stack.last_mut() {
                        current.properties.push(Property {
                            name: "X-KAIROS-UNPARSEABLE".into(),
                            params: Vec::new(),
                            value: format!("line {line}: END:{name} without BEGIN:{name}"),
                            line,
                        });
                    }
                    continue;
                };
                let unclosed: Vec<Component> = stack.drain(depth + 1..).collect();
                let Some(mut done) = stack.pop() else { continue };
                if let Some(first) = unclosed.first() {
                    done.properties.push(Property {
                        name: "X-KAIROS-UNPARSEABLE".into(),
                        params: Vec::new(),
                        value: format!("line {}: BEGIN:{} is never closed", first.line, first.name),
                        line,
                    });
                }
                match stack.last_mut() {
                    Some(parent) => parent.components.push(done),
                    None => top.push(done),
                }
            }
            _ => {
                if let Some(current) = stack.last_mut() {
                    current.properties.push(prop);
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(SyntaxError::Line { line: open.line, message: format!("BEGIN:{} is never closed", open.name) });
    }
    if !top.iter().any(|c| c.name == "VCALENDAR") {
        return Err(SyntaxError::NotCalendar);
    }
    Ok(top)
}

/// TEXT unescaping: `\\n`/`\\N` newline, `\\,` `\\;` `\\\\`.
pub fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// TEXT escaping for writing.
pub fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            other => out.push(other),
        }
    }
    out
}

/// Folds one content line at 75 octets (never inside a UTF-8 character) and ends it with
/// CRLF.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 74 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

/// A DATE or DATE-TIME value as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrTime {
    Date(Date),
    /// No `Z`: floating, or local to a TZID parameter.
    Local(DateTime),
    Utc(Timestamp),
}

/// Parses `19970902`, `19970902T090000` or `19970902T090000Z`.
pub fn parse_date_or_time(value: &str) -> Result<DateOrTime, String> {
    let v = value.trim();
    let bad = || format!("`{v}` is not an iCalendar DATE or DATE-TIME");
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let date = |s: &str| -> Result<Date, String> {
        if s.len() != 8 || !digits(s) {
            return Err(bad());
        }
        let n = |r: std::ops::Range<usize>| s[r].parse::<i16>().map_err(|_| bad());
        Date::new(n(0..4)?, n(4..6)? as i8, n(6..8)? as i8).map_err(|_| bad())
    };
    match v.split_once(['T', 't']) {
        None => date(v).map(DateOrTime::Date),
        Some((d, t)) => {
            let (t, utc) = match t.strip_suffix(['Z', 'z']) {
                Some(t) => (t, true),
                None => (t, false),
            };
            if t.len() != 6 || !digits(t) {
                return Err(bad());
            }
            let n = |r: std::ops::Range<usize>| t[r].parse::<i8>().map_err(|_| bad());
            // A leap second (60) is read as the last second of the minute.
            let time = Time::new(n(0..2)?, n(2..4)?, n(4..6)?.min(59), 0).map_err(|_| bad())?;
            let dt = date(d)?.to_datetime(time);
            if utc {
                dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| DateOrTime::Utc(z.timestamp())).map_err(|_| bad())
            } else {
                Ok(DateOrTime::Local(dt))
            }
        }
    }
}

/// An iCalendar DURATION: weeks and days are nominal (calendar days, DST-aware), the time
/// part is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcalDuration {
    pub negative: bool,
    pub days: i64,
    pub exact: SignedDuration,
}

impl IcalDuration {
    /// As a span to add to a zoned date-time (days nominal, time exact).
    pub fn span(&self) -> Span {
        let sign = if self.negative { -1 } else { 1 };
        let secs = self.exact.as_secs();
        Span::new().days(sign * self.days).seconds(sign * secs)
    }
}

/// Parses `P15DT5H0M20S`, `P7W`, `-PT15M`…
pub fn parse_duration(value: &str) -> Result<IcalDuration, String> {
    let v = value.trim();
    let bad = || format!("`{v}` is not an iCalendar DURATION (e.g. PT1H30M, P1D, P2W)");
    let (negative, rest) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let rest = rest.strip_prefix(['P', 'p']).ok_or_else(bad)?;
    let (mut days, mut secs) = (0i64, 0i64);
    let mut number = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in rest.chars() {
        match c.to_ascii_uppercase() {
            d if d.is_ascii_digit() => number.push(d),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                number.clear();
                any = true;
                let (target, factor) = match (unit, in_time) {
                    ('W', false) => (&mut days, 7),
                    ('D', false) => (&mut days, 1),
                    ('H', true) => (&mut secs, 3600),
                    ('M', true) => (&mut secs, 60),
                    ('S', true) => (&mut secs, 1),
                    _ => return Err(bad()),
                };
                *target = n.checked_mul(factor).and_then(|v| target.checked_add(v)).ok_or_else(bad)?;
            }
        }
    }
    if !number.is_empty() || !any {
        return Err(bad());
    }
    if days.saturating_add(secs / 86_400) > MAX_DURATION_DAYS {
        return Err(format!("`{v}` is longer than {MAX_DURATION_DAYS} days"));
    }
    Ok(IcalDuration { negative, days, exact: SignedDuration::from_secs(secs) })
}

/// Parses a UTC-OFFSET such as `-0500` or `+053000`, in seconds.
pub fn parse_utc_offset(value: &str) -> Result<i32, String> {
    let v = value.trim();
    let bad = || format!("`{v}` is not a UTC offset such as -0500");
    let (sign, digits) = match v.as_bytes().first() {
        Some(b'-') => (-1, &v[1..]),
        Some(b'+') => (1, &v[1..]),
        _ => return Err(bad()),
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<i32>().map_err(|_| bad());
    let seconds = if digits.len() == 6 { n(4..6)? } else { 0 };
    Ok(sign * (n(0..2)? * 3600 + n(2..4)? * 60 + seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_lines_unfold_and_params_parse_with_quotes() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDESCRIPTION:This is a lo\r\n ng description\r\n\tthat exists\r\nATTENDEE;CN=\"Doe, Jane\";PARTSTAT=ACCEPTED;MEMBER=\"mailto:a@x\",\"mailto:b@x\":mailto:jane@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let cal = parse(text).unwrap();
        let event = &cal[0].components[0];
        assert_eq!(event.text("DESCRIPTION").unwrap(), "This is a long descriptionthat exists");
        let attendee = event.property("ATTENDEE").unwrap();
        assert_eq!(attendee.param("cn"), Some("Doe, Jane"));
        assert_eq!(attendee.param("PARTSTAT"), Some("ACCEPTED"));
        assert_eq!(attendee.params[2].1, ["mailto:a@x", "mailto:b@x"]);
        assert_eq!(attendee.value, "mailto:jane@example.com");
    }

    #[test]
    fn values_parse() {
        assert_eq!(parse_date_or_time("19970714").unwrap(), DateOrTime::Date(jiff::civil::date(1997, 7, 14)));
        assert_eq!(
            parse_date_or_time("19970714T133000").unwrap(),
            DateOrTime::Local(jiff::civil::date(1997, 7, 14).at(13, 30, 0, 0))
        );
        assert_eq!(
            parse_date_or_time("19970714T173000Z").unwrap(),
            DateOrTime::Utc("1997-07-14T17:30:00Z".parse().unwrap())
        );
        assert!(parse_date_or_time("1997-07-14").is_err());
        let d = parse_duration("P15DT5H0M20S").unwrap();
        assert_eq!((d.days, d.exact.as_secs()), (15, 5 * 3600 + 20));
        assert_eq!(parse_duration("P7W").unwrap().days, 49);
        assert!(parse_duration("-PT15M").unwrap().negative);
        assert!(parse_duration("PT").is_err() && parse_duration("P1H").is_err());
        assert_eq!(parse_utc_offset("-0500").unwrap(), -18000);
        assert_eq!(parse_utc_offset("+053000").unwrap(), 19800);
    }

    #[test]
    fn text_round_trips_and_lines_fold_at_75_octets() {
        let text = "Room 1; floor 2, left\\right\nnext";
        assert_eq!(unescape_text(&escape_text(text)), text);
        let long = format!("DESCRIPTION:{}", "é".repeat(60));
        let folded = fold(&long);
        assert!(folded.split("\r\n").all(|l| l.len() <= 75));
        assert_eq!(unfold(&folded)[0].1, long);
    }

    #[test]
    fn structure_errors_name_the_line() {
        // An event whose END never comes is closed by the calendar's END: dropped, and the
        // calendar marked so that it is reported.
        let cal = parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n").unwrap();
        assert!(cal[0].components.is_empty());
        assert!(cal[0].property("X-KAIROS-UNPARSEABLE").unwrap().value.contains("BEGIN:VEVENT is never closed"));
        assert!(matches!(parse("BEGIN:VCALENDAR\r\nEND:VEVENT\r\n"), Err(SyntaxError::Line { line: 2, .. })));
        assert_eq!(
            parse("hello"),
            Err(SyntaxError::Line { line: 1, message: "a content line needs a ':' before its value".into() })
        );
        assert_eq!(parse("BEGIN:VCARD\r\nEND:VCARD\r\n"), Err(SyntaxError::NotCalendar));
    }
}
