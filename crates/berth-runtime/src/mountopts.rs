//! The mount options of config.json (`fstab` words, propagation, recursive attributes)
//! turned into mount(2) flags, data and mount_setattr(2) attributes.

use nix::mount::MsFlags;

#[derive(Debug, thiserror::Error)]
#[error("mount option {option:?} of {dest}: {msg}")]
pub struct OptError {
    pub option: String,
    pub dest: String,
    pub msg: String,
}

/// mount_setattr(2) attribute bits (include/uapi/linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const IDMAP: u64 = 0x0010_0000;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub flags: MsFlags,
    /// Flags cleared explicitly ("rw", "suid", ...), needed for bind remounts.
    pub cleared: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub bind: bool,
    pub recursive_bind: bool,
    /// Recursive attributes to set / clear with mount_setattr(AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clear: u64,
    pub idmap: bool,
    pub recursive_idmap: bool,
}

impl Default for Parsed {
    fn default() -> Self {
        Parsed {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            recursive_bind: false,
            rec_set: 0,
            rec_clear: 0,
            idmap: false,
            recursive_idmap: false,
        }
    }
}

impl Parsed {
    pub fn needs_remount(&self) -> bool {
        let extra = self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        self.bind && !extra.is_empty()
    }
}

pub fn parse(options: &[String], dest: &str) -> Result<Parsed, OptError> {
    let mut p = Parsed::default();
    for o in options {
        let (set, clear): (MsFlags, MsFlags) = match o.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "nosymfollow" => (MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW), MsFlags::empty()),
            "symfollow" => (MsFlags::empty(), MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW)),
            "bind" => {
                p.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                p.bind = true;
                p.recursive_bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
                p.propagation.push(propagation(o).unwrap_or(MsFlags::MS_PRIVATE));
                continue;
            }
            "idmap" => {
                p.idmap = true;
                continue;
            }
            "ridmap" => {
                p.idmap = true;
                p.recursive_idmap = true;
                continue;
            }
            "tmpcopyup" => continue,
            r if r.starts_with('r') && rec_attr(&r[1..]).is_some() => {
                let (bit, set) = rec_attr(&r[1..]).unwrap_or((0, true));
                if set {
                    if bit & attr::ATIME_MASK != 0 || bit == attr::RELATIME {
                        p.rec_clear |= attr::ATIME_MASK;
                    }
                    p.rec_set |= bit;
                } else {
                    p.rec_clear |= bit;
                }
                continue;
            }
            other => {
                if other.is_empty() {
                    return Err(OptError {
                        option: o.clone(),
                        dest: dest.into(),
                        msg: "empty option".into(),
                    });
                }
                p.data.push(other.to_string());
                continue;
            }
        };
        p.flags |= set;
        p.flags -= clear;
        p.cleared |= clear;
    }
    Ok(p)
}

/// Recursive attribute for "r<word>" options: (bit, set?).
fn rec_attr(word: &str) -> Option<(u64, bool)> {
    Some(match word {
        "ro" => (attr::RDONLY, true),
        "rw" => (attr::RDONLY, false),
        "nosuid" => (attr::NOSUID, true),
        "suid" => (attr::NOSUID, false),
        "nodev" => (attr::NODEV, true),
        "dev" => (attr::NODEV, false),
        "noexec" => (attr::NOEXEC, true),
        "exec" => (attr::NOEXEC, false),
        "noatime" => (attr::NOATIME, true),
        "strictatime" => (attr::STRICTATIME, true),
        "relatime" => (attr::RELATIME, true),
        "atime" => (attr::NOATIME, false),
        "nodiratime" => (attr::NODIRATIME, true),
        "diratime" => (attr::NODIRATIME, false),
        "nosymfollow" => (attr::NOSYMFOLLOW, true),
        "symfollow" => (attr::NOSYMFOLLOW, false),
        _ => return None,
    })
}

pub fn propagation(word: &str) -> Option<MsFlags> {
    Some(match word {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Every option word this runtime understands (for `features`).
pub fn known_options() -> Vec<&'static str> {
    vec![
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "idmap",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "nosymfollow",
        "private",
        "ratime",
        "rbind",
        "rdev",
        "rdiratime",
        "relatime",
        "remount",
        "rexec",
        "ridmap",
        "rnoatime",
        "rnodev",
        "rnodiratime",
        "rnoexec",
        "rnosuid",
        "rnosymfollow",
        "ro",
        "rprivate",
        "rrelatime",
        "rro",
        "rrw",
        "rshared",
        "rslave",
        "rstrictatime",
        "rsuid",
        "rsymfollow",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "symfollow",
        "sync",
        "tmpcopyup",
        "unbindable",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Parsed {
        parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "/x").unwrap()
    }

    #[test]
    fn flags_and_data() {
        let r = p(&["nosuid", "noexec", "mode=755", "size=65536k", "ro"]);
        assert!(r
            .flags
            .contains(MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY));
        assert_eq!(r.data, vec!["mode=755", "size=65536k"]);
        assert!(!r.bind);
    }

    #[test]
    fn bind_with_propagation_and_recursive_ro() {
        let r = p(&["rbind", "rro", "rslave", "nosymfollow"]);
        assert!(r.bind && r.recursive_bind);
        assert_eq!(r.rec_set, attr::RDONLY);
        assert_eq!(r.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(r.needs_remount());
        assert!(!p(&["rbind"]).needs_remount());
    }

    #[test]
    fn later_option_wins() {
        let r = p(&["ro", "rw"]);
        assert!(!r.flags.contains(MsFlags::MS_RDONLY));
        assert!(r.cleared.contains(MsFlags::MS_RDONLY));
    }
}
