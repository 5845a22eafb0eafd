//! Docker's seccomp profiles (moby's `profiles/seccomp` format: `archMap`, rules with
//! `includes`/`excludes` on capabilities, arches and kernel version) → an OCI
//! `linux.seccomp` for one container's capabilities on this host.
//!
//! The default profile is moby's `default.json` (Apache-2.0), kept as data.

use serde::Deserialize;
use serde_json::{json, Value};

pub const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

#[derive(Debug, thiserror::Error)]
#[error("seccomp profile: {0}")]
pub struct ProfileError(String);

/// Profiles write `null` for empty lists.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn filter<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Filter, D::Error> {
    Ok(Option::<Filter>::deserialize(d)?.unwrap_or_default())
}

fn maps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ArchMap>, D::Error> {
    Ok(Option::<Vec<ArchMap>>::deserialize(d)?.unwrap_or_default())
}

fn rules<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Rule>, D::Error> {
    Ok(Option::<Vec<Rule>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "list")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "list")]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default, deserialize_with = "list")]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "filter")]
    includes: Filter,
    #[serde(default, deserialize_with = "filter")]
    excludes: Filter,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default, deserialize_with = "list")]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "maps")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "list")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "rules")]
    syscalls: Vec<Rule>,
    #[serde(default, deserialize_with = "list")]
    flags: Vec<String>,
    #[serde(default)]
    listener_path: Option<String>,
}

/// Go's name for this machine's architecture, as moby's rules use it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    }
}

fn seccomp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "s390x" => "SCMP_ARCH_S390X",
        _ => "SCMP_ARCH_NATIVE",
    }
}

fn kernel_version() -> (u32, u32) {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    parse_version(&release)
}

fn parse_version(s: &str) -> (u32, u32) {
    let mut it = s.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let major = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn has_cap(caps: &[String], cap: &str) -> bool {
    let want = cap.trim_start_matches("CAP_");
    caps.iter()
        .any(|c| c.trim_start_matches("CAP_").eq_ignore_ascii_case(want))
}

/// Build the OCI seccomp object for a container holding `caps` (bounding set names).
pub fn to_oci(profile_json: &str, caps: &[String]) -> Result<Value, ProfileError> {
    let p: Profile = serde_json::from_str(profile_json).map_err(|e| ProfileError(format!("invalid JSON: {e}")))?;
    let arch = go_arch();
    let kernel = kernel_version();
    let mut architectures = p.architectures.clone();
    for m in &p.arch_map {
        if m.architecture == seccomp_arch() {
            architectures.push(m.architecture.clone());
            architectures.extend(m.sub_architectures.iter().cloned());
        }
    }
    let mut syscalls = Vec::new();
    for r in &p.syscalls {
        let inc = &r.includes;
        if !inc.caps.iter().all(|c| has_cap(caps, c)) {
            continue;
        }
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if let Some(min) = &inc.min_kernel {
            if kernel < parse_version(min) {
                continue;
            }
        }
        let exc = &r.excludes;
        if exc.caps.iter().any(|c| has_cap(caps, c)) || exc.arches.iter().any(|a| a == arch) {
            continue;
        }
        let mut names = r.names.clone();
        if let Some(n) = &r.name {
            names.push(n.clone());
        }
        let mut rule = json!({"names": names, "action": r.action});
        if let Some(args) = &r.args {
            if !args.is_null() {
                rule["args"] = args.clone();
            }
        }
        if let Some(e) = r.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        syscalls.push(rule);
    }
    let mut out = json!({
        "defaultAction": p.default_action,
        "architectures": architectures,
        "syscalls": syscalls,
    });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    if let Some(l) = p.listener_path {
        out["listenerPath"] = json!(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(v: &Value, name: &str) -> bool {
        v["syscalls"].as_array().unwrap().iter().any(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r["args"].is_null()
                && r["names"].as_array().unwrap().iter().any(|n| n == name)
        })
    }

    #[test]
    fn default_profile_depends_on_caps() {
        let plain = to_oci(DEFAULT_PROFILE, &["CAP_CHOWN".into()]).unwrap();
        assert_eq!(plain["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(allowed(&plain, "read"));
        assert!(!allowed(&plain, "mount"), "mount needs CAP_SYS_ADMIN");
        assert!(!allowed(&plain, "ptrace") || kernel_version() >= (4, 8));
        let admin = to_oci(DEFAULT_PROFILE, &["CAP_SYS_ADMIN".into()]).unwrap();
        assert!(allowed(&admin, "mount"));
        assert!(!plain["architectures"].as_array().unwrap().is_empty());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.1.0-40-amd64"), (6, 1));
        assert_eq!(parse_version("4.8"), (4, 8));
    }
}
