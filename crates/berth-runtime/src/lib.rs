//! berth-runtime: an OCI runtime (runtime-spec 1.2, Linux) usable as a runc-compatible
//! CLI and in-process by the engine.
//!
//! Module layers (each depends only on those listed before it):
//! `log`, `fsutil`, `state`/`spec`/`mountopts`/`namespaces`/`channel`/`hooks`/`caps`/`seccomp`,
//! `rootfs`, `idmap`, `process`, `console`, `init`, `container`, `selfexe`, `ops` (CLI-level helpers).

pub mod caps;
pub mod channel;
pub mod console;
pub mod container;
pub mod fsutil;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod log;
pub mod mountopts;
pub mod namespaces;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod selfexe;
pub mod spec;
pub mod state;
