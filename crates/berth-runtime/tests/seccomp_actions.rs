//! Seccomp actions other than ERRNO and NOTIFY, the default errno, and filter flags.

mod common;

use common::Ct;
use serde_json::json;

fn with_profile(args: &[&str], profile: serde_json::Value) -> (i32, String, String) {
    let mut c = Ct::new(args);
    c.config["linux"]["seccomp"] = profile;
    c.save();
    c.run()
}

#[test]
fn kill_trap_log_and_default_errno() {
    // KILL_PROCESS: the shell dies of SIGSYS (31) when it calls getppid, before printing.
    let kill = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]});
    let (code, out, _) = with_profile(&["sh", "-c", "echo $PPID; echo after"], kill);
    assert_eq!(code, 128 + 31, "{out}");
    assert!(!out.contains("after"));

    // TRAP: SIGSYS delivered, default disposition kills as well.
    let trap = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_TRAP"}]});
    let (code, _, _) = with_profile(&["sh", "-c", "echo $PPID"], trap);
    assert_eq!(code, 128 + 31);

    // LOG (with the LOG flag): allowed, so the program runs normally.
    let log = json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_LOG"}]});
    let (code, out, err) = with_profile(&["sh", "-c", "echo $PPID"], log);
    assert_eq!((code, out.trim()), (0, "0"), "{err}");

    // Default action ERRNO with defaultErrnoRet, and an allow list (what Docker's profile does):
    // mkdir is not allowed, so it fails with the default errno (13, EACCES).
    let allow: Vec<&str> = vec![
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "execve",
        "exit",
        "exit_group",
        "arch_prctl",
        "set_tid_address",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "ioctl",
        "fcntl",
        "dup2",
        "dup3",
        "wait4",
        "clone",
        "fork",
        "vfork",
        "uname",
        "getcwd",
        "access",
        "faccessat",
        "faccessat2",
        "prlimit64",
        "set_robust_list",
        "rseq",
        "pipe",
        "pipe2",
        "getrandom",
        "close_range",
        "statx",
        "lseek",
        "readlink",
        "readlinkat",
        "chdir",
        "fchdir",
        "capget",
        "capset",
        "prctl",
        "setgroups",
        "setresuid",
        "setresgid",
        "setuid",
        "setgid",
        "futex",
        "getdents64",
        "sysinfo",
    ];
    let deny = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]});
    let (code, out, err) = with_profile(&["sh", "-c", "mkdir /tmp/x 2>&1; echo rc=$?"], deny);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Permission denied") && out.contains("rc=1"), "{out}");
}

#[test]
fn argument_conditions_and_unknown_arch() {
    // personality(0xffffffff) (a query) is allowed; personality(8) (PER_LINUX32) is refused.
    let p = json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]});
    let mut c = Ct::new(&["sh", "-c", "uname -m; linux32 uname -m 2>&1; echo rc=$?"]);
    c.config["linux"]["seccomp"] = p;
    c.save();
    let (code, out, err) = c.run();
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "x86_64");
    assert_ne!(lines[1], "i686", "the conditional rule did not apply: {out}");

    let bad = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_BOGUS"]});
    let mut c = Ct::new(&["true"]);
    c.config["linux"]["seccomp"] = bad;
    c.save();
    let (ok, err) = c.create();
    assert!(!ok);
    assert!(err.contains("SCMP_ARCH_BOGUS"), "{err}");
    common::assert_nothing_left(&c);
}
