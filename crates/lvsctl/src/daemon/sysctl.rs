//! The IPVS sysctls a manifest may set (`director.sysctl`): `expire_nodest_conn` and
//! `expire_quiescent_template`, so clients pinned (by persistence) to a failed real server move
//! on. Checked every pass like everything else, so a change behind lvsctl's back is repaired.

use std::path::{Path, PathBuf};

use lvsctl_model::manifest::DirectorSysctl;
use tracing::{info, warn};

/// Where the IPVS sysctls live.
pub const PROC_DIR: &str = "/proc/sys/net/ipv4/vs";

/// Writes the sysctls the manifest sets under `dir`; reports what it changed. A missing file
/// (ip_vs not loaded yet) is a warning, once per name, not an error.
pub struct Sysctls {
    dir: PathBuf,
    warned: std::collections::BTreeSet<&'static str>,
}

impl Sysctls {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Sysctls {
            dir: dir.into(),
            warned: Default::default(),
        }
    }

    /// Makes the kernel match `want`; returns the names changed.
    pub fn apply(&mut self, want: &DirectorSysctl) -> Vec<String> {
        let mut changed = Vec::new();
        for (name, value) in [
            ("expire_nodest_conn", want.expire_nodest_conn),
            ("expire_quiescent_template", want.expire_quiescent_template),
        ] {
            let Some(value) = value else { continue };
            let want = if value { "1" } else { "0" };
            match set(&self.dir.join(name), want) {
                Ok(true) => {
                    info!(sysctl = %format!("net.ipv4.vs.{name}"), value = want, "set sysctl");
                    changed.push(name.to_owned());
                    self.warned.remove(name);
                }
                Ok(false) => {
                    self.warned.remove(name);
                }
                Err(e) => {
                    if self.warned.insert(name) {
                        warn!(
                            sysctl = %format!("net.ipv4.vs.{name}"),
                            error = %e,
                            "cannot set sysctl (is the ip_vs module loaded?); will retry every pass"
                        );
                    }
                }
            }
        }
        changed
    }
}

/// Writes `value` unless the file already holds it; true when it wrote.
fn set(path: &Path, value: &str) -> std::io::Result<bool> {
    let current = std::fs::read_to_string(path)?;
    if current.trim() == value {
        return Ok(false);
    }
    std::fs::write(path, value)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_only_what_differs_and_tolerates_missing_files() {
        let dir = super::super::tests::tempdir("sysctl");
        std::fs::write(dir.join("expire_nodest_conn"), "0\n").unwrap();
        let mut s = Sysctls::new(&dir);
        let want = DirectorSysctl {
            expire_nodest_conn: Some(true),
            expire_quiescent_template: Some(true),
        };
        assert_eq!(s.apply(&want), ["expire_nodest_conn"]);
        assert_eq!(
            std::fs::read_to_string(dir.join("expire_nodest_conn")).unwrap(),
            "1"
        );
        assert!(!dir.join("expire_quiescent_template").exists());
        assert!(s.apply(&want).is_empty());
        assert!(s.apply(&DirectorSysctl::default()).is_empty());
    }
}
