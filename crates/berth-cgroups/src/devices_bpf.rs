//! cgroup v2 device control: the rule list compiled to a BPF_PROG_TYPE_CGROUP_DEVICE program and
//! attached to the container's cgroup (v2 has no devices.allow/deny files).
//!
//! The instruction sequence follows runc's libcontainer/cgroups/devices devicefilter: load the
//! context into registers once, then one block per rule that returns on a match. Blocks are
//! emitted for the rules in reverse order, so the last matching rule wins; the default is deny,
//! or the action of a final "match everything" rule.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::common;
use crate::fs::{invalid, io_err};
use crate::Result;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcode parts from linux/bpf_common.h and linux/bpf.h.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

// struct bpf_cgroup_dev_ctx access_type bits.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn ldx_w(dst: u8, src: u8, off: i16) -> Insn {
    ins(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
}
fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    ins(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
}
fn mov32_reg(dst: u8, src: u8) -> Insn {
    ins(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
}
fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    ins(BPF_JMP | op | BPF_K, dst, 0, off, imm)
}
fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    ins(BPF_JMP | op | BPF_X, dst, src, off, 0)
}
fn exit() -> Insn {
    ins(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// A rule reduced to what the program compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rule {
    allow: bool,
    /// None for 'a' (any type).
    typ: Option<i32>,
    major: Option<u32>,
    minor: Option<u32>,
    access: i32,
}

impl Rule {
    fn matches_everything(&self) -> bool {
        self.typ.is_none() && self.major.is_none() && self.minor.is_none() && self.access == ACC_ALL
    }
}

fn convert(r: &LinuxDeviceCgroup) -> Result<Rule> {
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        LinuxDeviceType::P => return Err(invalid("devices.type", "p", "the devices cgroup cannot filter FIFOs")),
    };
    let access = common::device_access(r)?.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => ACC_MKNOD,
        }
    });
    Ok(Rule {
        allow: r.allow(),
        typ,
        major: common::device_number("devices.major", r.major())?,
        minor: common::device_number("devices.minor", r.minor())?,
        access,
    })
}

/// The block for one rule: every test jumps past the block's end when it fails.
fn rule_block(r: &Rule) -> Vec<Insn> {
    // Offsets are patched once the block length is known (-1 marks a jump to patch).
    let mut b = Vec::new();
    if let Some(t) = r.typ {
        b.push(jmp_imm(BPF_JNE, R2, t, -1));
    }
    if r.access != ACC_ALL {
        b.push(mov32_reg(R1, R3));
        b.push(alu32_imm(BPF_AND, R1, r.access));
        if r.allow {
            // Allow only if every requested access is granted: (access & rule) == access.
            b.push(jmp_reg(BPF_JNE, R1, R3, -1));
        } else {
            // Deny if any requested access is denied: (access & rule) != 0.
            b.push(jmp_imm(BPF_JEQ, R1, 0, -1));
        }
    }
    if let Some(m) = r.major {
        b.push(jmp_imm(BPF_JNE, R4, m as i32, -1));
    }
    if let Some(m) = r.minor {
        b.push(jmp_imm(BPF_JNE, R5, m as i32, -1));
    }
    b.push(alu32_imm(BPF_MOV, R0, i32::from(r.allow)));
    b.push(exit());
    let len = b.len();
    for (i, insn) in b.iter_mut().enumerate() {
        if insn.off == -1 {
            // A jump lands at pc + 1 + off; the next block starts at index `len`.
            insn.off = (len - i - 1) as i16;
        }
    }
    b
}

/// Compiles the rule list (in spec order; the last matching rule wins, default deny).
pub(crate) fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>> {
    let rules = rules.iter().map(convert).collect::<Result<Vec<_>>>()?;
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    let mut p = vec![
        // r2 = device type (low 16 bits of access_type)
        ldx_w(R2, R1, 0),
        alu32_imm(BPF_AND, R2, 0xFFFF),
        // r3 = access (high 16 bits)
        ldx_w(R3, R1, 0),
        alu32_imm(BPF_RSH, R3, 16),
        // r4 = major, r5 = minor
        ldx_w(R4, R1, 4),
        ldx_w(R5, R1, 8),
    ];
    let mut default_allow = false;
    for r in rules.iter().rev() {
        if r.matches_everything() {
            // Rules before it can never be reached.
            default_allow = r.allow;
            break;
        }
        p.extend(rule_block(r));
    }
    p.push(alu32_imm(BPF_MOV, R0, i32::from(default_allow)));
    p.push(exit());
    Ok(p)
}

// bpf(2) commands, program and attach types, flags (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The program calls no GPL-only helper, so any license string loads.
const LICENSE: &CStr = c"Apache-2.0";

/// Name the programs carry, so a later apply replaces ours and leaves others' alone.
const PROG_NAME: &[u8] = b"berth_devices";

/// union bpf_attr, as one zeroed buffer the commands fill at their offsets. 128 bytes covers
/// every field used here; the kernel accepts a larger-than-needed attr if the tail is zero.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn bytes(&mut self, off: usize, v: &[u8]) -> &mut Self {
        self.0[off..off + v.len()].copy_from_slice(v);
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, writable, zero-initialised buffer of the size passed; every
    // pointer stored in it (instructions, license, id and info buffers, log) is kept alive by the
    // caller for the duration of this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned_fd(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) as a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn load(insns: &[Insn], log: Option<&mut Vec<u8>>) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32(4, insns.len() as u32)
        .u64(8, insns.as_ptr() as u64)
        .u64(16, LICENSE.as_ptr() as u64)
        .bytes(48, PROG_NAME);
    if let Some(log) = log {
        a.u32(24, 1).u32(28, log.len() as u32).u64(32, log.as_mut_ptr() as u64);
        return bpf(BPF_PROG_LOAD, &mut a).map(owned_fd);
    }
    bpf(BPF_PROG_LOAD, &mut a).map(owned_fd)
}

/// Loads the program; the verifier's log is put in the error when it refuses it.
fn load_with_diagnostics(insns: &[Insn], dir: &Path) -> Result<OwnedFd> {
    let first = match load(insns, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let err = if first.raw_os_error() == Some(libc::EPERM) {
        // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; runc raises it the same way.
        let unlimited = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads the struct we pass by reference and nothing else.
        let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
        match load(insns, None) {
            Ok(fd) => return Ok(fd),
            Err(e) => e,
        }
    } else {
        let mut log = vec![0u8; 64 * 1024];
        match load(insns, Some(&mut log)) {
            Ok(fd) => return Ok(fd),
            Err(e) => {
                let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                if text.is_empty() {
                    e
                } else {
                    io::Error::new(e.kind(), format!("{e}; verifier: {text}"))
                }
            }
        }
    };
    Err(io_err("bpf(BPF_PROG_LOAD) device filter for", dir, err))
}

/// Programs attached directly to the cgroup (not inherited) that carry our name.
fn our_programs(cg: &OwnedFd, dir: &Path) -> Result<Vec<OwnedFd>> {
    let mut ids = vec![0u32; 64];
    let mut a = Attr::new();
    a.u32(0, cg.as_raw_fd() as u32)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut a).map_err(|e| io_err("bpf(BPF_PROG_QUERY)", dir, e))?;
    let count = (a.get_u32(24) as usize).min(ids.len());
    let mut out = Vec::new();
    for id in &ids[..count] {
        let mut a = Attr::new();
        a.u32(0, *id);
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut a) {
            Ok(fd) => owned_fd(fd),
            // Detached meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(io_err("bpf(BPF_PROG_GET_FD_BY_ID)", dir, e)),
        };
        // struct bpf_prog_info: char name[16] at offset 64.
        let mut info = [0u8; 80];
        let mut a = Attr::new();
        a.u32(0, fd.as_raw_fd() as u32)
            .u32(4, info.len() as u32)
            .u64(8, info.as_mut_ptr() as u64);
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut a).map_err(|e| io_err("bpf(BPF_OBJ_GET_INFO_BY_FD)", dir, e))?;
        let name = &info[64..80];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        if name == PROG_NAME {
            out.push(fd);
        }
    }
    Ok(out)
}

fn attach_cmd(cmd: libc::c_long, cg: &OwnedFd, prog: &OwnedFd, flags: u32) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, cg.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, flags);
    bpf(cmd, &mut a).map(|_| ())
}

/// Compiles `rules`, attaches the program to the cgroup at `dir`, then detaches the one an
/// earlier call attached. The new one goes in first so the cgroup is never unfiltered.
pub(crate) fn apply(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let insns = program(rules)?;
    let cg = std::fs::File::open(dir).map_err(|e| io_err("open", dir, e))?;
    let cg = OwnedFd::from(cg);
    let old = our_programs(&cg, dir)?;
    let prog = load_with_diagnostics(&insns, dir)?;
    attach_cmd(BPF_PROG_ATTACH, &cg, &prog, BPF_F_ALLOW_MULTI)
        .map_err(|e| io_err("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)", dir, e))?;
    for p in old {
        attach_cmd(BPF_PROG_DETACH, &cg, &p, 0)
            .map_err(|e| io_err("bpf(BPF_PROG_DETACH) of the previous device filter", dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    fn rule(allow: bool, typ: LinuxDeviceType, major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .typ(typ)
            .major(major)
            .minor(minor)
            .access(access)
            .build()
            .unwrap()
    }

    fn prologue() -> Vec<Insn> {
        vec![
            ins(0x61, 2, 1, 0, 0),
            ins(0x54, 2, 0, 0, 0xFFFF),
            ins(0x61, 3, 1, 0, 0),
            ins(0x74, 3, 0, 0, 16),
            ins(0x61, 4, 1, 4, 0),
            ins(0x61, 5, 1, 8, 0),
        ]
    }

    #[test]
    fn empty_list_denies_everything() {
        let mut want = prologue();
        want.extend([ins(0xb4, 0, 0, 0, 0), ins(0x95, 0, 0, 0, 0)]);
        assert_eq!(program(&[]).unwrap(), want);
    }

    #[test]
    fn deny_all_then_allow_one_full_access() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        let rules = [deny_all, rule(true, LinuxDeviceType::C, 1, 3, "rwm")];
        let mut want = prologue();
        want.extend([
            // if type != char goto next (jumps land at pc + 1 + off)
            ins(0x55, 2, 0, 4, DEV_CHAR),
            // if major != 1 goto next
            ins(0x55, 4, 0, 3, 1),
            // if minor != 3 goto next
            ins(0x55, 5, 0, 2, 3),
            ins(0xb4, 0, 0, 0, 1),
            ins(0x95, 0, 0, 0, 0),
            // the leading "deny all" became the default
            ins(0xb4, 0, 0, 0, 0),
            ins(0x95, 0, 0, 0, 0),
        ]);
        assert_eq!(program(&rules).unwrap(), want);
    }

    #[test]
    fn last_rule_comes_first_with_access_and_wildcards() {
        let rules = [
            rule(true, LinuxDeviceType::C, -1, -1, "m"),
            rule(false, LinuxDeviceType::B, 8, -1, "w"),
        ];
        let mut want = prologue();
        want.extend([
            // deny b 8:* w — checked first because it comes last
            ins(0x55, 2, 0, 6, DEV_BLOCK),
            ins(0xbc, 1, 3, 0, 0),
            ins(0x54, 1, 0, 0, ACC_WRITE),
            ins(0x15, 1, 0, 3, 0),
            ins(0x55, 4, 0, 2, 8),
            ins(0xb4, 0, 0, 0, 0),
            ins(0x95, 0, 0, 0, 0),
            // allow c *:* m
            ins(0x55, 2, 0, 5, DEV_CHAR),
            ins(0xbc, 1, 3, 0, 0),
            ins(0x54, 1, 0, 0, ACC_MKNOD),
            ins(0x5d, 1, 3, 2, 0),
            ins(0xb4, 0, 0, 0, 1),
            ins(0x95, 0, 0, 0, 0),
            // default deny
            ins(0xb4, 0, 0, 0, 0),
            ins(0x95, 0, 0, 0, 0),
        ]);
        assert_eq!(program(&rules).unwrap(), want);
    }

    #[test]
    fn trailing_allow_all_hides_everything_before_it() {
        let allow_all = LinuxDeviceCgroupBuilder::default().allow(true).build().unwrap();
        let rules = [rule(false, LinuxDeviceType::C, 1, 3, "rwm"), allow_all];
        let mut want = prologue();
        want.extend([ins(0xb4, 0, 0, 0, 1), ins(0x95, 0, 0, 0, 0)]);
        assert_eq!(program(&rules).unwrap(), want);
    }

    #[test]
    fn bad_rules_are_named() {
        let e = program(&[rule(true, LinuxDeviceType::P, 1, 1, "r")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices.type=p"), "{e}");
        let e = program(&[rule(true, LinuxDeviceType::C, 1 << 40, 1, "r")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("devices.major"), "{e}");
    }

    /// Runs the generated program in a tiny interpreter over a device access, to check the
    /// semantics (not just the bytes): last match wins, default deny.
    fn run(p: &[Insn], typ: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16 | typ) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as i64 + i.off as i64) as usize;
                }
            };
            match i.code {
                0x61 => r[dst] = u64::from(ctx[(i.off / 4) as usize]),
                0x54 => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                0x74 => r[dst] = (r[dst] as u32 >> i.imm) as u64,
                0xbc => r[dst] = r[src] as u32 as u64,
                0xb4 => r[dst] = i.imm as u32 as u64,
                0x55 => jump(r[dst] != i.imm as i64 as u64, &mut pc),
                0x15 => jump(r[dst] == i.imm as i64 as u64, &mut pc),
                0x5d => jump(r[dst] != r[src], &mut pc),
                0x95 => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn program_semantics() {
        let deny_all = LinuxDeviceCgroupBuilder::default().allow(false).build().unwrap();
        let rules = [
            deny_all,
            rule(true, LinuxDeviceType::C, 1, -1, "rwm"),
            rule(false, LinuxDeviceType::C, 1, 3, "w"),
            rule(true, LinuxDeviceType::B, 8, 0, "r"),
        ];
        let p = program(&rules).unwrap();
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
        assert_eq!(run(&p, DEV_CHAR, rw, 1, 3), 0, "write to 1:3 denied by the later rule");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1, "read of 1:3 still allowed");
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(run(&p, DEV_BLOCK, rw, 8, 0), 0, "only read was granted on 8:0");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 4, 1), 0, "default deny");
    }
}
