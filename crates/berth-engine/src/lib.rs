//! berth-engine: containers from images, per-container monitors, logs, events, and
//! Docker's defaults. berthd serves it over the Docker Engine API.
//!
//! Module layers (each depends only on those before it):
//! `types`, `config`, `seccomp_profile`, `logs`, `events`, `record`, `volumes` →
//! `ocispec` (Docker config → OCI spec) → `monitor` (the per-container process) →
//! `error` → `engine` (lifecycle, exec, inspect, restore).

pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod logs;
pub mod monitor;
pub mod ocispec;
pub mod record;
pub mod seccomp_profile;
pub mod types;
pub mod volumes;

pub use config::DaemonConfig;
pub use engine::{Container, Engine};
pub use error::EngineError;
