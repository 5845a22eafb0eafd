//! linux.seccomp compiled with libseccomp and loaded into the calling process.

use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("linux.seccomp.{field}: {msg}")]
    Invalid { field: String, msg: String },
    #[error("seccomp: {what}: {msg}")]
    Lib { what: String, msg: String },
}

pub type Result<T> = std::result::Result<T, SeccompError>;

fn lib(what: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError {
    let what = what.into();
    move |e| SeccompError::Lib {
        what,
        msg: e.to_string(),
    }
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> ScmpAction {
    match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => ScmpAction::KillThread,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.map_or(libc::EPERM, |e| e as i32)),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.map_or(libc::EPERM as u16, |e| e as u16)),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
    }
}

fn compare(op: LinuxSeccompOperator, value: u64, value_two: Option<u64>) -> (ScmpCompareOp, u64) {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // The spec's value is the mask and valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two.unwrap_or(0)),
    }
}

/// Whether the profile asks for SCMP_ACT_NOTIFY anywhere.
pub fn uses_notify(s: &LinuxSeccomp) -> bool {
    s.default_action() == LinuxSeccompAction::ScmpActNotify
        || s.syscalls()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
}

/// Build the filter. Syscall names this libseccomp does not know are skipped, as runc does.
pub fn compile(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::Invalid {
            field: "defaultAction".into(),
            msg: "SCMP_ACT_NOTIFY cannot be the default action".into(),
        });
    }
    if uses_notify(s) && s.listener_path().is_none() {
        return Err(SeccompError::Invalid {
            field: "listenerPath".into(),
            msg: "SCMP_ACT_NOTIFY is used but no listenerPath is given".into(),
        });
    }
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(lib("create filter"))?;
    // no_new_privs is the spec's process.noNewPrivileges, not libseccomp's business.
    ctx.set_ctl_nnp(false).map_err(lib("nnp attribute"))?;
    for a in s.architectures().as_deref().unwrap_or_default() {
        let name = serde_json::to_value(a)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let arch = ScmpArch::from_str(&name).map_err(|_| SeccompError::Invalid {
            field: "architectures".into(),
            msg: format!("unknown architecture {name:?}"),
        })?;
        ctx.add_arch(arch).map_err(lib(format!("add architecture {name}")))?;
    }
    for f in s.flags().as_deref().unwrap_or_default() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true).map_err(lib("flag LOG"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true).map_err(lib("flag TSYNC"))?,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true).map_err(lib("flag SPEC_ALLOW"))?
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                ctx.set_ctl_waitkill(true).map_err(lib("flag WAIT_KILLABLE_RECV"))?
            }
        };
    }
    for (i, rule) in s.syscalls().as_deref().unwrap_or_default().iter().enumerate() {
        let act = action(rule.action(), rule.errno_ret());
        if act == default {
            // libseccomp refuses rules equal to the default action; they change nothing.
            continue;
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| {
                let (op, datum) = compare(a.op(), a.value(), a.value_two());
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        if conds
            .iter()
            .enumerate()
            .any(|(k, _)| rule.args().as_deref().unwrap_or_default()[k].index() > 5)
        {
            return Err(SeccompError::Invalid {
                field: format!("syscalls[{i}].args"),
                msg: "argument index above 5".into(),
            });
        }
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let r = if conds.is_empty() {
                ctx.add_rule(act, sc)
            } else if distinct_args(&conds) {
                ctx.add_rule_conditional(act, sc, &conds)
            } else {
                // Several conditions on one argument: libseccomp wants one rule per condition (OR).
                conds
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(|_| ()))
                    .map(|_| &mut ctx)
            };
            r.map_err(lib(format!("rule for syscall {name}")))?;
        }
    }
    Ok(ctx)
}

fn distinct_args(conds: &[ScmpArgCompare]) -> bool {
    let mut seen = std::collections::HashSet::new();
    conds
        .iter()
        .all(|c| seen.insert(format!("{c:?}").split(',').next().map(String::from)))
}

/// A filter compiled to classic BPF by the parent, so the child only makes one syscall
/// to load it (compiling Docker's default profile costs milliseconds; once is enough).
#[derive(Clone)]
pub struct Program {
    filter: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Program({} instructions, flags {:#x})",
            self.filter.len(),
            self.flags
        )
    }
}

/// Compile `s` to a loadable program; None for notify profiles (their listener fd comes
/// from libseccomp's own load).
pub fn program(s: &LinuxSeccomp) -> Result<Option<Program>> {
    if uses_notify(s) {
        return Ok(None);
    }
    let ctx = compile(s)?;
    let io = |e: std::io::Error| SeccompError::Invalid {
        field: "seccomp".into(),
        msg: format!("export the compiled filter: {e}"),
    };
    let fd = nix::sys::memfd::memfd_create("berth-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|e| io(e.into()))?;
    let mut f = std::fs::File::from(fd);
    ctx.export_bpf(&f).map_err(lib("export filter"))?;
    use std::io::{Read, Seek};
    let mut raw = Vec::new();
    f.rewind().map_err(io)?;
    f.read_to_end(&mut raw).map_err(io)?;
    let filter: Vec<libc::sock_filter> = raw
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    if filter.is_empty() || filter.len() > u16::MAX as usize || raw.len() % 8 != 0 {
        return Err(io(std::io::Error::other(format!("{} bytes of BPF", raw.len()))));
    }
    let mut flags = 0;
    for f in s.flags().as_deref().unwrap_or_default() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
        };
    }
    Ok(Some(Program { filter, flags }))
}

impl Program {
    /// The program as bytes (flags, then the instructions): a caller that starts many
    /// containers with one profile compiles it once and hands the bytes on.
    // c_ulong is u32 on 32-bit targets: the conversion is not useless there.
    #[allow(clippy::useless_conversion)]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = u64::from(self.flags).to_le_bytes().to_vec();
        for i in &self.filter {
            out.extend_from_slice(&i.code.to_le_bytes());
            out.extend_from_slice(&[i.jt, i.jf]);
            out.extend_from_slice(&i.k.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Program> {
        let bad = |m: &str| SeccompError::Invalid {
            field: "seccomp program".into(),
            msg: m.into(),
        };
        if b.len() < 16 || !(b.len() - 8).is_multiple_of(8) || (b.len() - 8) / 8 > u16::MAX as usize {
            return Err(bad("not a compiled filter"));
        }
        let flags = u64::from_le_bytes(b[..8].try_into().map_err(|_| bad("flags"))?) as libc::c_ulong;
        let filter = b[8..]
            .chunks_exact(8)
            .map(|c| libc::sock_filter {
                code: u16::from_le_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Program { filter, flags })
    }

    /// Install the filter on the calling thread (one syscall; no allocation).
    pub fn load(&self) -> std::io::Result<()> {
        let prog = libc::sock_fprog {
            len: self.filter.len() as u16,
            filter: self.filter.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at our filter, which outlives the call; the kernel copies it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Load the filter into this process. Returns the notify fd if the profile uses SCMP_ACT_NOTIFY.
pub fn load(s: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    let ctx = compile(s)?;
    ctx.load().map_err(lib("load filter"))?;
    if uses_notify(s) {
        let fd = ctx.get_notify_fd().map_err(lib("notify fd"))?;
        // SAFETY: libseccomp hands us the listener fd it created; we own it from here on.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    Ok(None)
}

/// The actions, operators and architectures this runtime knows (for `features`).
pub fn known() -> (Vec<&'static str>, Vec<&'static str>, Vec<&'static str>) {
    (
        vec![
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP",
        ],
        vec![
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_LE",
            "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ",
            "SCMP_CMP_NE",
        ],
        vec![
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_MIPS64",
            "SCMP_ARCH_MIPS64N32",
            "SCMP_ARCH_MIPSEL",
            "SCMP_ARCH_MIPSEL64",
            "SCMP_ARCH_MIPSEL64N32",
            "SCMP_ARCH_PPC",
            "SCMP_ARCH_PPC64",
            "SCMP_ARCH_PPC64LE",
            "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_S390",
            "SCMP_ARCH_S390X",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X86_64",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn docker_default_profile_compiles() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/docker-default-seccomp.json"
        );
        let Ok(data) = std::fs::read(path) else {
            return;
        };
        // Docker's file is a superset (includes/excludes); the runtime sees the flattened form.
        let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert!(v.get("defaultAction").is_some());
    }

    #[test]
    fn refusals_name_the_field() {
        let e = compile(&profile(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}))).unwrap_err();
        assert!(e.to_string().contains("defaultAction"), "{e}");
        let e = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        })))
        .unwrap_err();
        assert!(e.to_string().contains("listenerPath"), "{e}");
    }

    /// A filter loaded in a child blocks exactly what it says (positive control: getpid still works).
    #[test]
    fn filter_blocks_in_child() {
        let p = profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdirat", "mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"}
            ]
        }));
        let ctx = compile(&p).unwrap();
        // Through its byte form, as berthd hands it to monitors.
        let prog = Program::from_bytes(&program(&p).unwrap().unwrap().to_bytes()).unwrap();
        assert!(Program::from_bytes(b"short").is_err());
        // The same checks with libseccomp's load and with the parent-compiled program.
        for via_program in [false, true] {
            // SAFETY: the child only makes raw syscalls and exits.
            match unsafe { nix::unistd::fork() }.unwrap() {
                nix::unistd::ForkResult::Child => {
                    let code = (|| {
                        // SAFETY: plain syscalls on a NUL-terminated literal path.
                        unsafe {
                            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                            let loaded = if via_program {
                                prog.load().is_ok()
                            } else {
                                ctx.load().is_ok()
                            };
                            if !loaded {
                                return 10;
                            }
                            if libc::mkdir(c"/nonexistent-berth-test/x".as_ptr(), 0o755) != -1
                                || *libc::__errno_location() != 38
                            {
                                return 11;
                            }
                            if libc::personality(8) != -1 {
                                return 12;
                            }
                            if libc::personality(0xffff_ffff) == -1 {
                                return 13;
                            }
                            if libc::getpid() <= 0 {
                                return 14;
                            }
                        }
                        0
                    })();
                    // SAFETY: leave the forked child without running the parent's destructors.
                    unsafe { libc::_exit(code) };
                }
                nix::unistd::ForkResult::Parent { child } => {
                    let st = nix::sys::wait::waitpid(child, None).unwrap();
                    assert_eq!(
                        st,
                        nix::sys::wait::WaitStatus::Exited(child, 0),
                        "via_program {via_program}"
                    );
                }
            }
        }
    }
}
