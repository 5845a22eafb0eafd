//! Docker's flag value syntaxes: sizes (`64m`), CPUs (`1.5`), durations, port specs,
//! ulimits, and env/label files.

use serde_json::{json, Map, Value};

use crate::error::{flag_err, Error, Result};

/// docker's `units.RAMInBytes`: `512`, `64m`, `1.5g`, `10MiB` (binary multiples).
pub fn parse_bytes(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let unit = unit.trim().to_lowercase();
    let unit = unit.trim_end_matches('b').trim_end_matches('i');
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid suffix: '{unit}'")),
    };
    Ok((n * mult) as i64)
}

/// A duration flag (Go syntax) in nanoseconds.
pub fn parse_duration_flag(s: &str) -> std::result::Result<i64, String> {
    crate::format::parse_duration(s)
}

/// `--cpus 1.5` → NanoCpus, exactly (no float rounding), at most 9 decimals.
pub fn cpus_to_nano(s: &str) -> std::result::Result<i64, String> {
    let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if frac.len() > 9 {
        return Err("value is too precise".into());
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("invalid number {s:?}"))?
    };
    let frac_n: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| format!("invalid number {s:?}"))?
    };
    if int < 0 {
        return Err("cpus must not be negative".into());
    }
    Ok(int * 1_000_000_000 + frac_n)
}

fn port_range(s: &str) -> std::result::Result<(u32, u32), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u32 = a.parse().map_err(|_| format!("invalid port {s:?}"))?;
    let b: u32 = b.parse().map_err(|_| format!("invalid port {s:?}"))?;
    if a > 65535 || b > 65535 || b < a {
        return Err(format!("invalid port range {s:?}"));
    }
    Ok((a, b))
}

/// `-p [ip:][hostPort:]containerPort[/proto]` and `--expose port[-port][/proto]` →
/// (ExposedPorts, PortBindings).
pub fn parse_ports(publish: &[String], expose: &[String]) -> Result<(Map<String, Value>, Map<String, Value>)> {
    let mut exposed = Map::new();
    let mut bindings = Map::new();
    for e in expose {
        let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        let (a, b) =
            port_range(p).map_err(|m| Error::usage(format!("invalid argument {e:?} for \"--expose\" flag: {m}")))?;
        for port in a..=b {
            exposed.insert(format!("{port}/{proto}"), json!({}));
        }
    }
    for spec in publish {
        let bad = |m: &str| Error::usage(format!("invalid argument {spec:?} for \"-p, --publish\" flag: {m}"));
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, p)) => (r, p.to_lowercase()),
            None => (spec.as_str(), "tcp".to_string()),
        };
        let (ip, rest) = if let Some(v6) = rest.strip_prefix('[') {
            let (ip, after) = v6.split_once("]:").ok_or_else(|| bad("bad IPv6 address"))?;
            (ip.to_string(), after)
        } else {
            let n = rest.matches(':').count();
            if n == 2 {
                let (ip, after) = rest.split_once(':').unwrap_or(("", rest));
                (ip.to_string(), after)
            } else if n > 2 {
                return Err(bad("too many colons"));
            } else {
                (String::new(), rest)
            }
        };
        let (host, ctr) = rest.rsplit_once(':').unwrap_or(("", rest));
        let (c0, c1) = port_range(ctr).map_err(|m| bad(&m))?;
        let hosts: Option<(u32, u32)> = if host.is_empty() {
            None
        } else {
            Some(port_range(host).map_err(|m| bad(&m))?)
        };
        if let Some((h0, h1)) = hosts {
            if h1 - h0 != c1 - c0 && h0 != h1 {
                return Err(bad("the host and container port ranges differ in size"));
            }
        }
        for (i, port) in (c0..=c1).enumerate() {
            let key = format!("{port}/{proto}");
            exposed.insert(key.clone(), json!({}));
            let host_port = match hosts {
                None => String::new(),
                Some((h0, h1)) if h0 == h1 && c0 != c1 => h0.to_string(),
                Some((h0, _)) => (h0 + i as u32).to_string(),
            };
            let entry = bindings.entry(key).or_insert_with(|| json!([]));
            if let Value::Array(a) = entry {
                a.push(json!({"HostIp": ip, "HostPort": host_port}));
            }
        }
    }
    Ok((exposed, bindings))
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `name=soft[:hard]`.
pub fn parse_ulimit(s: &str) -> std::result::Result<Value, String> {
    let (name, vals) = s.split_once('=').ok_or("expected name=soft[:hard]")?;
    if !ULIMITS.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let num = |v: &str| -> std::result::Result<i64, String> {
        if v == "unlimited" {
            return Ok(-1);
        }
        v.parse().map_err(|_| format!("invalid ulimit value {v:?}"))
    };
    let (soft, hard) = match vals.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(vals)?, num(vals)?),
    };
    if hard != -1 && soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(json!({"Name": name, "Hard": hard, "Soft": soft}))
}

/// An env or label file: one entry a line, `#` comments and blank lines skipped. In an env
/// file a bare `KEY` takes KEY's value from here (and is dropped when unset).
pub fn read_kv_file(path: &str, env: bool) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::usage(format!("open {path}: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((k, _)) => {
                if k.is_empty() {
                    return Err(Error::usage(format!(
                        "{path}:{}: no variable name on line '{line}'",
                        i + 1
                    )));
                }
                if env && k.contains(char::is_whitespace) {
                    return Err(Error::usage(format!(
                        "{path}:{}: variable '{k}' contains whitespaces",
                        i + 1
                    )));
                }
                out.push(line.to_string());
            }
            None if env => {
                let k = line.trim_end();
                if let Ok(v) = std::env::var(k) {
                    out.push(format!("{k}={v}"));
                }
            }
            None => out.push(line.trim_end().to_string()),
        }
    }
    Ok(out)
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn parse_mount(spec: &str) -> Result<Value> {
    let err = |m: &str| flag_err("--mount", spec, m);
    let mut m = Map::new();
    let (mut kind, mut vol, mut bind, mut tmpfs) = ("volume".to_string(), Map::new(), Map::new(), Map::new());
    let mut driver = Map::new();
    let mut vol_labels = Map::new();
    let mut vol_opts = Map::new();
    for field in spec.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim().trim_matches('"'))),
            None => (field.trim().to_lowercase(), None),
        };
        let flag = |v: Option<&str>| match v.unwrap_or("true") {
            "1" | "true" | "True" | "TRUE" => Ok(true),
            "0" | "false" | "False" | "FALSE" => Ok(false),
            o => Err(err(&format!("invalid value for {k}: {o}"))),
        };
        let val = || {
            v.map(str::to_string)
                .ok_or_else(|| err(&format!("invalid field '{field}' must be a key=value pair")))
        };
        match k.as_str() {
            "type" => kind = val()?,
            "source" | "src" => {
                m.insert("Source".into(), json!(val()?));
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), json!(val()?));
            }
            "readonly" | "ro" => {
                m.insert("ReadOnly".into(), json!(flag(v)?));
            }
            "consistency" => {
                m.insert("Consistency".into(), json!(val()?));
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), json!(val()?));
            }
            "bind-nonrecursive" => {
                bind.insert("NonRecursive".into(), json!(flag(v)?));
            }
            "bind-recursive" => {
                let r = val()?;
                match r.as_str() {
                    "enabled" => {}
                    "disabled" => {
                        bind.insert("NonRecursive".into(), json!(true));
                    }
                    "writable" => {
                        bind.insert("ReadOnlyNonRecursive".into(), json!(true));
                    }
                    "readonly" => {
                        bind.insert("ReadOnlyForceRecursive".into(), json!(true));
                    }
                    _ => return Err(err(&format!("invalid value for bind-recursive: {r}"))),
                }
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), json!(flag(v)?));
            }
            "volume-label" => {
                let (lk, lv) = val()?
                    .split_once('=')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .unwrap_or((val()?, String::new()));
                vol_labels.insert(lk, json!(lv));
            }
            "volume-driver" => {
                driver.insert("Name".into(), json!(val()?));
            }
            "volume-opt" => {
                let o = val()?;
                let (ok, ov) = o
                    .split_once('=')
                    .ok_or_else(|| err("invalid volume-opt: expected key=value"))?;
                vol_opts.insert(ok.into(), json!(ov));
            }
            "volume-subpath" => {
                vol.insert("Subpath".into(), json!(val()?));
            }
            "tmpfs-size" => {
                let s = val()?;
                tmpfs.insert("SizeBytes".into(), json!(parse_bytes(&s).map_err(|e| err(&e))?));
            }
            "tmpfs-mode" => {
                let s = val()?;
                let mode = u32::from_str_radix(&s, 8).map_err(|_| err(&format!("invalid tmpfs-mode {s:?}")))?;
                tmpfs.insert("Mode".into(), json!(mode));
            }
            _ => return Err(err(&format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if !m.contains_key("Target") {
        return Err(err("target is required"));
    }
    let mut out = Map::new();
    out.insert("Type".into(), json!(kind));
    out.extend(m);
    if !vol_labels.is_empty() {
        vol.insert("Labels".into(), Value::Object(vol_labels));
    }
    if !vol_opts.is_empty() {
        driver.insert("Options".into(), Value::Object(vol_opts));
    }
    if !vol.is_empty() || !driver.is_empty() {
        vol.insert("DriverConfig".into(), Value::Object(driver));
        out.insert("VolumeOptions".into(), Value::Object(vol));
    }
    if !bind.is_empty() {
        out.insert("BindOptions".into(), Value::Object(bind));
    }
    if !tmpfs.is_empty() {
        out.insert("TmpfsOptions".into(), Value::Object(tmpfs));
    }
    Ok(Value::Object(out))
}

/// `-v`: a bind or named volume (`src:dst[:opts]`) goes to Binds, a lone path is an
/// anonymous volume. Relative host paths are made absolute, as docker does.
pub fn parse_volume(v: &str, binds: &mut Vec<String>, volumes: &mut Map<String, Value>) -> Result<()> {
    let parts: Vec<&str> = v.split(':').collect();
    match parts.as_slice() {
        [one] if one.starts_with('/') => {
            volumes.insert(one.to_string(), json!({}));
        }
        [src, rest @ ..] if !rest.is_empty() && rest.len() <= 2 => {
            let src = if *src == "." || src.starts_with("./") || src.starts_with("../") || *src == ".." {
                let cwd = std::env::current_dir().map_err(|e| Error::msg(format!("resolve volume {v:?}: {e}")))?;
                cwd.join(src).to_string_lossy().into_owned()
            } else {
                src.to_string()
            };
            if src.is_empty() || rest[0].is_empty() {
                return Err(Error::usage(format!("invalid spec: {v}: empty section between colons")));
            }
            binds.push(
                std::iter::once(src.as_str())
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
        _ => return Err(Error::usage(format!("invalid spec: {v}"))),
    }
    Ok(())
}

/// `/dev/a[:/dev/b][:rwm]`.
pub fn parse_device(d: &str) -> Result<Value> {
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let parts: Vec<&str> = d.split(':').collect();
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if perms_ok(p) => (*h, *c, *p),
        _ => return Err(flag_err("--device", d, "bad format")),
    };
    Ok(json!({"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}))
}

pub fn throttle(list: &[String], flag: &str, is_bytes: bool) -> Result<Value> {
    let mut out = Vec::new();
    for s in list {
        let (path, rate) = s
            .split_once(':')
            .ok_or_else(|| flag_err(flag, s, "expected <device-path>:<rate>"))?;
        let rate = if is_bytes {
            parse_bytes(rate).map_err(|e| flag_err(flag, s, e))?
        } else {
            rate.parse::<i64>().map_err(|e| flag_err(flag, s, e))?
        };
        out.push(json!({"Path": path, "Rate": rate}));
    }
    Ok(json!(out))
}

pub fn security_opts(list: &[String]) -> Result<(Vec<String>, bool)> {
    let mut out = Vec::new();
    let mut unmask = false;
    for o in list {
        let (k, v) = o.split_once('=').or_else(|| o.split_once(':')).unwrap_or((o, ""));
        if k == "systempaths" && v == "unconfined" {
            unmask = true;
            continue;
        }
        if k == "seccomp" && v != "unconfined" && v != "builtin" && !v.is_empty() {
            let text =
                std::fs::read(v).map_err(|e| Error::usage(format!("opening seccomp profile ({v}) failed: {e}")))?;
            let doc: Value = serde_json::from_slice(&text)
                .map_err(|e| Error::usage(format!("compacting json for seccomp profile ({v}) failed: {e}")))?;
            out.push(format!("seccomp={doc}"));
            continue;
        }
        out.push(o.clone());
    }
    Ok((out, unmask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_cpus_ulimits() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(parse_bytes("12x").is_err());
        assert_eq!(cpus_to_nano("1.5").unwrap(), 1_500_000_000);
        assert_eq!(cpus_to_nano("0.000000001").unwrap(), 1);
        assert!(cpus_to_nano("0.0000000001").is_err());
        assert_eq!(
            parse_ulimit("nofile=1024:2048").unwrap(),
            json!({"Name": "nofile", "Hard": 2048, "Soft": 1024})
        );
        assert!(parse_ulimit("bogus=1").is_err());
    }

    #[test]
    fn mounts_and_devices() {
        let m = parse_mount("type=bind,source=/tmp,target=/m2,readonly").unwrap();
        assert_eq!(
            m,
            json!({"Type": "bind", "Source": "/tmp", "Target": "/m2", "ReadOnly": true})
        );
        let m = parse_mount("type=tmpfs,target=/t2,tmpfs-size=1m").unwrap();
        assert_eq!(m["TmpfsOptions"]["SizeBytes"], 1 << 20);
        assert!(parse_mount("type=bind,source=/tmp").is_err());
        assert_eq!(parse_device("/dev/null:/dev/x:rw").unwrap()["CgroupPermissions"], "rw");
        assert_eq!(parse_device("/dev/null").unwrap()["PathInContainer"], "/dev/null");
    }

    #[test]
    fn ports() {
        let (e, b) = parse_ports(
            &[
                "8080:80".into(),
                "127.0.0.1:9090:90/udp".into(),
                "7000-7001:7000-7001".into(),
                "[::1]:1:2".into(),
            ],
            &["5000".into()],
        )
        .unwrap();
        assert!(e.contains_key("5000/tcp") && e.contains_key("90/udp"));
        assert_eq!(b["80/tcp"], json!([{"HostIp": "", "HostPort": "8080"}]));
        assert_eq!(b["90/udp"], json!([{"HostIp": "127.0.0.1", "HostPort": "9090"}]));
        assert_eq!(b["7001/tcp"], json!([{"HostIp": "", "HostPort": "7001"}]));
        assert_eq!(b["2/tcp"], json!([{"HostIp": "::1", "HostPort": "1"}]));
    }
}
