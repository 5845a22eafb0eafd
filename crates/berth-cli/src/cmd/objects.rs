//! What the `network` and `volume` groups share: the group's usage, docker's argument
//! counts, its prompt, labels and maps as its flags parse them, inspect output, list
//! formats, and the natural name order its lists are sorted in.

use std::cmp::Ordering;
use std::io::{BufRead, Write};

use clap::CommandFactory;
use serde_json::{Map, Value};

use crate::error::{flag_err, Error, Result};
use crate::format::{indent_json, print, println, Format};
use crate::template::Template;

/// `berth network` / `berth volume` alone: the group's commands, as docker lists them
/// (on stderr; on stdout for `--help`). A word naming no command is an error (exit 1).
pub fn group_usage(group: &str, help: bool, unknown: &[String]) -> Result<()> {
    if let Some(w) = unknown.first() {
        return Err(Error::msg(format!(
            "berth: unknown command: berth {group} {w}\n\nUsage:  berth {group}\n\nRun 'berth {group} --help' for more information"
        )));
    }
    let cli = crate::cli::Cli::command();
    let Some(g) = cli.find_subcommand(group) else {
        return Err(Error::msg(format!("no command group {group}")));
    };
    let mut subs: Vec<(String, String)> = g
        .get_subcommands()
        .map(|s| {
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            (s.get_name().to_string(), about)
        })
        .collect();
    subs.sort();
    let width = subs.iter().map(|s| s.0.len()).max().unwrap_or(0).max(11);
    let about = g.get_about().map(|a| a.to_string()).unwrap_or_default();
    let mut text = format!("Usage:  berth {group} COMMAND\n\n{about}\n\nCommands:\n");
    for (name, about) in subs {
        text.push_str(&format!("  {name:<width$} {about}\n"));
    }
    text.push_str(&format!(
        "\nRun 'berth {group} COMMAND --help' for more information on a command.\n"
    ));
    if help {
        print(&text)
    } else {
        eprint!("{text}");
        Ok(())
    }
}

/// How many arguments a command takes (cobra's checks, as docker words them).
pub enum Count {
    Exact(usize),
    AtLeast(usize),
    AtMost(usize),
    NoArgs,
}

/// docker's error for a wrong number of arguments: exit 1, usage shown.
pub fn check_args(cmd: &str, usage: &str, args: &[String], want: Count) -> Result<()> {
    let n = args.len();
    let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
    let (what, verb) = match want {
        Count::Exact(k) if n != k => (format!("requires {k} {}", plural(k)), "Run"),
        Count::AtLeast(k) if n < k => (format!("requires at least {k} {}", plural(k)), "See"),
        Count::AtMost(k) if n > k => (format!("requires at most {k} {}", plural(k)), "Run"),
        Count::NoArgs if n > 0 => ("accepts no arguments".to_string(), "Run"),
        _ => return Ok(()),
    };
    Err(Error::msg(format!(
        "berth: 'berth {cmd}' {what}\n\nUsage:  berth {cmd} {usage}\n\n{verb} 'berth {cmd} --help' for more information"
    )))
}

/// docker's `[y/N]` prompt, written to stdout as docker writes it; only y or Y agrees.
pub fn confirm(warning: &str) -> Result<bool> {
    print(&format!("{warning}\nAre you sure you want to continue? [y/N] "))?;
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::msg(format!("read the answer to the prompt: {e}")))?;
    Ok(n > 0 && line.trim().eq_ignore_ascii_case("y"))
}

/// `--label` values as docker's `ValidateLabel` takes them (a usage error otherwise),
/// then as a map (`key` alone is `key=""`).
pub fn labels(list: &[String]) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    for l in list {
        let key = l.trim_start().split('=').next().unwrap_or("");
        if key.trim().is_empty() {
            return Err(flag_err("--label", l, format!("invalid label '{l}': empty name")));
        }
        if key.contains([' ', '\t']) {
            return Err(flag_err("--label", l, format!("label '{key}' contains whitespaces")));
        }
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(m)
}

/// A docker `map` flag (`-o`, `--ipam-opt`, `--aux-address`): `k=v`, or `k` for `k=""`.
pub fn map_opts(list: &[String]) -> Map<String, Value> {
    list.iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect()
}

/// Labels as docker's list columns join them: `k=v,k2=v2` (sorted here; Go's map order
/// is random).
pub fn joined_labels(labels: &Value) -> String {
    let mut parts: Vec<String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    parts.sort();
    parts.join(",")
}

/// A name in a request path, escaped as Go's `url.URL` escapes paths.
pub fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => out.push(b as char),
            b'-' | b'_' | b'.' | b'~' | b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A list's `--format`: docker's `table` (or `-q`) and `raw` forms, `json`, or a template.
/// Templates that do not parse fail as docker's lists fail (exit 1).
pub fn list_format(
    given: Option<&str>,
    quiet: bool,
    table: &str,
    quiet_fmt: &str,
    raw: (&str, &str),
) -> Result<Format> {
    let given = given.unwrap_or("");
    let f = match given {
        "" | "table" if quiet => Format::new(quiet_fmt, table),
        "" | "table" => Format::new("", table),
        "raw" => Format::new(if quiet { raw.1 } else { raw.0 }, table),
        f => Format::new(f, table),
    };
    f.map_err(|e| match e {
        Error::Usage(m) => Error::Msg(m.replacen("failed to parse template", "template parsing error", 1)),
        e => e,
    })
}

/// JSON without the whitespace between tokens (Go's `json.Compact`).
fn compact_json(raw: &[u8]) -> String {
    let (mut in_str, mut esc) = (false, false);
    let mut out = String::with_capacity(raw.len());
    for c in String::from_utf8_lossy(raw).chars() {
        if in_str {
            in_str = esc || c != '"';
            esc = !esc && c == '\\';
        } else if c == '"' {
            in_str = true;
        } else if c.is_whitespace() {
            continue;
        }
        out.push(c);
    }
    out
}

/// `inspect` of networks or volumes: each object's document from `path(name)`, printed as
/// docker prints them (an indented JSON array, a compact one for `--format json`, or the
/// template once per object); the failures after the output, exit 1. A template that does
/// not parse exits 64, as docker's.
pub fn inspect(ctx: &super::Ctx, names: &[String], format: Option<&str>, path: impl Fn(&str) -> String) -> Result<()> {
    let json = format == Some("json");
    let tmpl = match format.filter(|f| !f.is_empty() && *f != "json") {
        None => None,
        Some(f) => match Template::parse(f) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("template parsing error: {e}");
                return Err(Error::Exit(64));
            }
        },
    };
    let mut docs = Vec::new();
    let mut errs = Vec::new();
    for n in names {
        let got = ctx
            .api
            .request("GET", &path(n), crate::http::Body::Empty, &[])
            .and_then(|mut r| {
                let b = r
                    .read_body()
                    .map_err(|e| Error::msg(format!("read the inspect document of {n}: {e}")))?;
                ctx.api.recycle(r);
                Ok(b)
            });
        match got {
            Ok(b) => docs.push(b),
            Err(e) => errs.push(e.to_string()),
        }
    }
    match &tmpl {
        None if docs.is_empty() => print("[]\n")?,
        None if json => {
            let parts: Vec<String> = docs.iter().map(|d| compact_json(d)).collect();
            println(&format!("[{}]", parts.join(",")))?;
        }
        None => {
            let parts: Vec<String> = docs.iter().map(|d| format!("    {}", indent_json(d, "    "))).collect();
            println(&format!("[\n{}\n]", parts.join(",\n")))?;
        }
        Some(t) => {
            let mut out = String::new();
            for d in &docs {
                let v: Value =
                    serde_json::from_slice(d).map_err(|e| Error::msg(format!("decode an inspect document: {e}")))?;
                let text = t
                    .execute(&v)
                    .map_err(|e| Error::msg(format!("template parsing error: {e}")))?;
                out.push_str(&text);
                out.push('\n');
            }
            print(&out)?;
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::msg(errs.join("\n")))
    }
}

/// Go's `time.Time.String()` of an RFC 3339 time as the API gives it (UTC there):
/// `2026-11-22 15:13:08.282847392 +0000 UTC`.
pub fn go_time_string(rfc3339: &str) -> String {
    match crate::format::parse_rfc3339(rfc3339) {
        Some((s, n)) if rfc3339.ends_with('Z') || rfc3339.ends_with('z') => {
            let t = crate::format::rfc3339_nano(s, n);
            format!("{} +0000 UTC", t.trim_end_matches('Z').replacen('T', " ", 1))
        }
        Some(_) if rfc3339.len() > 25 => {
            // A numeric offset: the wall time as written, and the offset as Go names a
            // zone it does not know.
            let (wall, off) = rfc3339.split_at(rfc3339.len() - 6);
            let off = off.replace(':', "");
            format!("{} {off} {off}", wall.replacen('T', " ", 1))
        }
        _ => rfc3339.to_string(),
    }
}

/// The order docker sorts network and volume lists in (`sortorder.NaturalLess`): runs of
/// digits compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da { Ordering::Less } else { Ordering::Greater };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (nz_a, nz_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (na, nb) = (&a[nz_a..i], &b[nz_b..j]);
        let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)).then(nz_a.cmp(&nz_b));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec!["n10", "n2", "bridge", "n1", "a", "n02", "host", "none"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["a", "bridge", "host", "n1", "n2", "n02", "n10", "none"]);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
        assert_eq!(natural_cmp("x", "xy"), Ordering::Less);
        assert_eq!(natural_cmp("1a", "a"), Ordering::Less);
    }

    #[test]
    fn labels_maps_and_times() {
        let m = labels(&["a=b".into(), "c".into(), "d=e=f".into()]).unwrap();
        assert_eq!(Value::Object(m), serde_json::json!({"a": "b", "c": "", "d": "e=f"}));
        let e = labels(&["=x".into()]).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument \"=x\" for \"--label\" flag: invalid label '=x': empty name"
        );
        let e = labels(&[" sp = v ".into()]).unwrap_err().to_string();
        assert!(e.ends_with("label 'sp ' contains whitespaces"), "{e}");
        assert_eq!(
            Value::Object(map_opts(&["k".into(), "x=y=z".into()])),
            serde_json::json!({"k": "", "x": "y=z"})
        );
        assert_eq!(
            go_time_string("2026-11-22T15:13:08.282847392Z"),
            "2026-11-22 15:13:08.282847392 +0000 UTC"
        );
        assert_eq!(go_time_string("2026-11-22T15:13:08Z"), "2026-11-22 15:13:08 +0000 UTC");
        assert_eq!(path_escape("a b/c"), "a%20b/c");
        assert_eq!(joined_labels(&serde_json::json!({"z": "1", "a": ""})), "a=,z=1");
        assert_eq!(
            compact_json(b"{ \"a b\" : [1, \"x\\\" y\"] }\n"),
            r#"{"a b":[1,"x\" y"]}"#
        );
    }

    #[test]
    fn argument_counts() {
        let none: Vec<String> = vec![];
        let e = check_args("network create", "[OPTIONS] NETWORK", &none, Count::Exact(1)).unwrap_err();
        assert!(e.to_string().starts_with("berth: 'berth network create' requires 1 argument\n\nUsage:  berth network create [OPTIONS] NETWORK\n\nRun "));
        let e = check_args("network rm", "NETWORK [NETWORK...]", &none, Count::AtLeast(1)).unwrap_err();
        assert!(e.to_string().contains("requires at least 1 argument") && e.to_string().contains("\nSee "));
        assert!(check_args("x", "", &["a".into()], Count::NoArgs).is_err());
        assert!(check_args("x", "", &["a".into()], Count::AtMost(1)).is_ok());
        assert!(check_args("x", "", &["a".into(), "b".into()], Count::Exact(2)).is_ok());
    }
}
