//! The five capability sets of process.capabilities.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability};
use oci_spec::runtime::LinuxCapabilities;

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("process.capabilities: unknown capability {0:?}")]
    Unknown(String),
    #[error("set {set} capabilities: {msg}")]
    Apply { set: &'static str, msg: String },
}

pub type Result<T> = std::result::Result<T, CapsError>;

/// Capability names (e.g. "CAP_CHOWN") to the caps crate's type. Names this kernel does
/// not have are skipped, as runc does.
pub fn parse_names<I: IntoIterator<Item = String>>(names: I) -> Result<HashSet<Capability>> {
    let all = caps::runtime::thread_all_supported();
    let mut out = HashSet::new();
    for n in names {
        let c = Capability::from_str(&n).map_err(|_| CapsError::Unknown(n.clone()))?;
        if all.contains(&c) {
            out.insert(c);
        }
    }
    Ok(out)
}

fn set_of(caps: &Option<oci_spec::runtime::Capabilities>) -> Result<HashSet<Capability>> {
    // serde gives the spec's names ("CAP_KILL"); Display would drop the prefix.
    parse_names(caps.iter().flatten().map(|c| {
        serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }))
}

/// Sets parsed ahead of time, so nothing can fail for lack of a name later.
pub struct Sets {
    pub bounding: HashSet<Capability>,
    pub effective: HashSet<Capability>,
    pub inheritable: HashSet<Capability>,
    pub permitted: HashSet<Capability>,
    pub ambient: HashSet<Capability>,
}

impl Sets {
    pub fn from_spec(c: &LinuxCapabilities) -> Result<Sets> {
        Ok(Sets {
            bounding: set_of(c.bounding())?,
            effective: set_of(c.effective())?,
            inheritable: set_of(c.inheritable())?,
            permitted: set_of(c.permitted())?,
            ambient: set_of(c.ambient())?,
        })
    }

    /// Drop what is not in the bounding set (needs CAP_SETPCAP, so before changing user).
    pub fn drop_bounding(&self) -> Result<()> {
        for c in caps::runtime::thread_all_supported() {
            if !self.bounding.contains(&c) {
                caps::drop(None, CapSet::Bounding, c).map_err(|e| CapsError::Apply {
                    set: "bounding",
                    msg: format!("{c}: {e}"),
                })?;
            }
        }
        Ok(())
    }

    /// Inheritable, effective, permitted (each step keeps effective within permitted),
    /// then ambient (which needs the other two).
    pub fn apply(&self) -> Result<()> {
        let sets: [(CapSet, &HashSet<Capability>, &'static str); 3] = [
            (CapSet::Inheritable, &self.inheritable, "inheritable"),
            (CapSet::Effective, &self.effective, "effective"),
            (CapSet::Permitted, &self.permitted, "permitted"),
        ];
        for (set, v, name) in sets {
            caps::set(None, set, v).map_err(|e| CapsError::Apply {
                set: name,
                msg: e.to_string(),
            })?;
        }
        caps::clear(None, CapSet::Ambient).map_err(|e| CapsError::Apply {
            set: "ambient",
            msg: e.to_string(),
        })?;
        for c in &self.ambient {
            // Raising fails unless the cap is permitted and inheritable; runc ignores that too.
            let _ = caps::raise(None, CapSet::Ambient, *c);
        }
        Ok(())
    }
}

/// Every capability name this kernel knows (for `features`).
pub fn all_names() -> Vec<String> {
    let mut v: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_is_named() {
        let s = parse_names(["CAP_CHOWN".to_string(), "CAP_KILL".to_string()]).unwrap();
        assert_eq!(s.len(), 2);
        let e = parse_names(["CAP_BOGUS".to_string()]).unwrap_err();
        assert!(e.to_string().contains("CAP_BOGUS"));
    }
}
