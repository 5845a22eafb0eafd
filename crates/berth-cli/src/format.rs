//! Output as docker prints it: `--format` templates and tables (Go's tabwriter with
//! docker's settings), human sizes and durations, times, colour on terminals only.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::template::Template;

/// Write to stdout. A reader that went away (`berth ps | head -1`) ends the program
/// quietly, as SIGPIPE ends docker.
pub fn print(s: &str) -> Result<()> {
    write_to(&mut std::io::stdout().lock(), s.as_bytes())
}

pub fn println(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    write_to(&mut o, s.as_bytes())?;
    write_to(&mut o, b"\n")
}

pub fn write_to<W: Write + ?Sized>(w: &mut W, b: &[u8]) -> Result<()> {
    match w.write_all(b).and_then(|_| w.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::Exit(141)),
        Err(e) => Err(Error::msg(format!("write output: {e}"))),
    }
}

/// Colour only on a terminal, and never with `NO_COLOR` or `TERM=dumb`.
pub fn colour_on_stdout() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true)
}

pub fn paint(on: bool, code: &str, s: &str) -> String {
    if on && !s.is_empty() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut esc = false;
    for c in s.chars() {
        if esc {
            esc = c != 'm';
        } else if c == '\x1b' {
            esc = true;
        } else {
            n += 1;
        }
    }
    n
}

/// Go's `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` as docker configures it: every
/// tab-terminated cell is padded to its column's widest cell plus 3 (at least 10); the
/// last cell of a line is left as it is.
pub fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            if widths.len() <= i {
                widths.push(10);
            }
            widths[i] = widths[i].max(visible_width(c) + 3);
        }
    }
    let mut out = String::with_capacity(text.len() * 2);
    for cells in &lines {
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - visible_width(c)));
            }
        }
        out.push('\n');
    }
    out
}

/// A `--format` value: a Go template, `table ...` (headers, aligned), `json`, or the
/// command's default table when empty.
pub struct Format {
    tmpl: Template,
    table: bool,
}

impl Format {
    pub fn new(given: &str, default_table: &str) -> Result<Format> {
        let given = given.trim();
        let (table, body) = if given.is_empty() || given == "table" {
            (true, default_table.trim_start_matches("table").trim().to_string())
        } else if given == "json" {
            (false, "{{json .}}".to_string())
        } else if let Some(rest) = given.strip_prefix("table") {
            (true, rest.trim().to_string())
        } else {
            (false, given.to_string())
        };
        // Docker turns the two-character escapes people type in quotes into the real ones.
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let tmpl = Template::parse(&body).map_err(|e| Error::usage(format!("failed to parse template: {e}")))?;
        Ok(Format { tmpl, table })
    }

    /// All rows, with the header line first for tables.
    pub fn render(&self, headers: &Value, rows: &[Value]) -> Result<String> {
        let fail = |e: String| Error::msg(format!("failed to execute template: {e}"));
        let mut text = String::new();
        if self.table {
            text.push_str(&self.tmpl.execute_header(headers).map_err(fail)?);
            text.push('\n');
        }
        for r in rows {
            text.push_str(&self.tmpl.execute(r).map_err(fail)?);
            text.push('\n');
        }
        Ok(if self.table { tabwrite(&text) } else { text })
    }

    pub fn print(&self, headers: &Value, rows: &[Value]) -> Result<()> {
        print(&self.render(headers, rows)?)
    }
}

/// Go's `%.<prec>g` for the magnitudes sizes take.
fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if exp < -4 || exp >= prec as i32 {
        let s = format!("{:.*e}", prec.saturating_sub(1), v);
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        let e: i32 = e.parse().unwrap_or(0);
        return format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn scaled(size: f64, base: f64, units: &[&str], prec: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", fmt_g(size, prec), units[i])
}

/// docker's `units.HumanSizeWithPrecision` (decimal units: kB, MB, GB).
pub fn human_size_prec(size: f64, prec: usize) -> String {
    scaled(
        size,
        1000.0,
        &["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"],
        prec,
    )
}

pub fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// docker's `units.BytesSize` (binary units: KiB, MiB).
pub fn bytes_size(size: f64) -> String {
    scaled(
        size,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
        4,
    )
}

/// docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs;
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = ((s as f64) / 3600.0 + 0.5) as i64;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", s / 3600 / 24 / 365)
}

pub fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos())
}

/// "5 seconds ago" for a unix time.
pub fn ago(secs: i64) -> String {
    format!("{} ago", human_duration(now().0 - secs))
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The local zone's offset (seconds east of UTC) and name at a unix time.
fn local_zone(secs: i64) -> (i64, String) {
    let t = secs as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r only writes the tm we own; tm_zone points at static storage.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return (0, "UTC".into());
    }
    let name = if tm.tm_zone.is_null() {
        "UTC".to_string()
    } else {
        // SAFETY: a NUL-terminated string in libc's static zone table.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    (tm.tm_gmtoff, name)
}

fn ymdhms(secs: i64) -> String {
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let r = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}", r / 3600, r / 60 % 60, r % 60)
}

/// Go's `time.Time.String()` in the local zone, as docker's CreatedAt columns print:
/// `2026-11-22 13:13:21 +0000 UTC`.
pub fn go_time(secs: i64) -> String {
    let (off, name) = local_zone(secs);
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{} {sign}{:02}{:02} {name}",
        ymdhms(secs + off),
        off.abs() / 3600,
        off.abs() / 60 % 60
    )
}

/// RFC 3339 with nanoseconds in UTC (`2026-11-22T13:13:21.123456789Z`).
pub fn rfc3339_nano(secs: i64, nanos: u32) -> String {
    let s = ymdhms(secs).replace(' ', "T");
    if nanos == 0 {
        format!("{s}Z")
    } else {
        let f = format!("{nanos:09}");
        format!("{s}.{}Z", f.trim_end_matches('0'))
    }
}

/// `2006-01-02T15:04:05[.frac](Z|±hh:mm)` → unix (secs, nanos).
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(f) = rest.strip_prefix('.') {
        let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
        let digits = &f[..end.min(9)];
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &f[end..];
    }
    let off = match rest {
        "" => local_zone(days_from_civil(y, mo as u32, d as u32) * 86_400).0,
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o.get(1..)?.split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - off;
    Some((secs, nanos))
}

/// Go's `time.ParseDuration` ("1h30m", "2.5s", "300ms") → nanoseconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("time: invalid duration {s:?}");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        total += n * mult;
        rest = &rest[u_end..];
    }
    Ok(if neg {
        -(total.round() as i64)
    } else {
        total.round() as i64
    })
}

/// docker's `timetypes.GetTimestamp`: a duration back from now, unix seconds, or a date
/// (RFC 3339, or `2006-01-02[T15:04[:05]]` in local time) → the API's `secs[.nanos]`.
pub fn api_timestamp(v: &str) -> Result<String> {
    if v.is_empty() {
        return Ok(String::new());
    }
    if let Ok(d) = parse_duration(v) {
        if v.chars().any(|c| c.is_ascii_alphabetic()) {
            return Ok((now().0 - d / 1_000_000_000).to_string());
        }
    }
    if v.chars().all(|c| c.is_ascii_digit() || c == '.') && v.chars().filter(|c| *c == '.').count() <= 1 {
        return Ok(v.to_string());
    }
    let padded = match v.len() {
        10 => format!("{v}T00:00:00"),
        16 => format!("{v}:00"),
        _ => v.to_string(),
    };
    let (s, n) = parse_rfc3339(&padded).ok_or_else(|| Error::usage(format!("invalid timestamp {v:?}")))?;
    Ok(if n == 0 { s.to_string() } else { format!("{s}.{n:09}") })
}

/// A full ID shortened as docker shows it (12 hex digits, no `sha256:`).
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// Re-indent raw JSON with 4 spaces, keeping the daemon's key order (Go's json.Indent).
pub fn indent_json(raw: &[u8], prefix: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let s = String::from_utf8_lossy(raw);
    let mut chars = s.chars().peekable();
    let nl = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(prefix);
        out.push_str(&"    ".repeat(d));
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('}') | Some(']')) {
                    out.push(chars.next().unwrap_or(']'));
                } else {
                    depth += 1;
                    nl(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                nl(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                nl(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1_063_000.0), "1.063MB");
        assert_eq!(human_size_prec(1_063_000.0, 3), "1.06MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2026-11-22T13:13:21.5Z"),
            Some((1_795_353_201, 500_000_000))
        );
        assert_eq!(parse_rfc3339("2026-11-22T14:13:21+01:00"), Some((1_795_353_201, 0)));
        assert_eq!(rfc3339_nano(1_795_353_201, 500_000_000), "2026-11-22T13:13:21.5Z");
    }

    #[test]
    fn tables() {
        let t = tabwrite("CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tx\n");
        assert_eq!(t, "CONTAINER ID   IMAGE     NAMES\nabc            busybox   x\n");
        assert_eq!(
            indent_json(br#"[{"a":[],"b":{"c":1}}]"#, ""),
            "[\n    {\n        \"a\": [],\n        \"b\": {\n            \"c\": 1\n        }\n    }\n]"
        );
    }
}
