//! Which iptables implementation to drive: `iptables-nft` (Debian's default) or
//! `iptables-legacy`. Both can hold mangle rules at once and both reach IPVS, so the choice is
//! about consistency: lvsctl uses the one the system's `iptables` command is, so an operator
//! listing rules sees lvsctl's chain next to their own.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use lvsctl_model::Family;

use crate::MarkError;

/// Environment variable that forces the backend: `nft` or `legacy`.
pub const BACKEND_ENV: &str = "LVSCTL_IPTABLES";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IptablesBackend {
    /// `iptables-nft`: the iptables syntax on nf_tables.
    Nft,
    /// `iptables-legacy`: the x_tables kernel interface, serialised by `/run/xtables.lock`.
    Legacy,
}

/// A chosen backend and why it was chosen (for `lvsctl` to log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub backend: IptablesBackend,
    pub reason: String,
}

impl IptablesBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            IptablesBackend::Nft => "nft",
            IptablesBackend::Legacy => "legacy",
        }
    }

    /// `nft` (or `nf_tables`) and `legacy`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim() {
            "nft" | "nf_tables" => Some(IptablesBackend::Nft),
            "legacy" => Some(IptablesBackend::Legacy),
            _ => None,
        }
    }

    /// The program that dumps a family's tables, e.g. `ip6tables-legacy-save`.
    pub fn save_program(self, family: Family) -> &'static str {
        match (self, family) {
            (IptablesBackend::Nft, Family::Inet) => "iptables-nft-save",
            (IptablesBackend::Nft, Family::Inet6) => "ip6tables-nft-save",
            (IptablesBackend::Legacy, Family::Inet) => "iptables-legacy-save",
            (IptablesBackend::Legacy, Family::Inet6) => "ip6tables-legacy-save",
        }
    }

    /// The program that loads rules atomically, e.g. `iptables-nft-restore`.
    pub fn restore_program(self, family: Family) -> &'static str {
        match (self, family) {
            (IptablesBackend::Nft, Family::Inet) => "iptables-nft-restore",
            (IptablesBackend::Nft, Family::Inet6) => "ip6tables-nft-restore",
            (IptablesBackend::Legacy, Family::Inet) => "iptables-legacy-restore",
            (IptablesBackend::Legacy, Family::Inet6) => "ip6tables-legacy-restore",
        }
    }

    /// Picks the backend: `$LVSCTL_IPTABLES` if set, else what `iptables --version` reports
    /// (`(nf_tables)` or `(legacy)`; iptables before 1.8 printed neither and was legacy), else
    /// nft if only the nft programs are installed.
    pub fn detect() -> Result<Detected, MarkError> {
        if let Ok(v) = std::env::var(BACKEND_ENV) {
            let backend = IptablesBackend::from_name(&v).ok_or_else(|| {
                MarkError::Backend(format!(
                    "{BACKEND_ENV}={v:?} is not a backend (use nft or legacy)"
                ))
            })?;
            return Ok(Detected {
                backend,
                reason: format!("{BACKEND_ENV}={v}"),
            });
        }
        if let Some(iptables) = find_program("iptables") {
            // Reading the links costs nothing; `iptables --version` is a process start (a
            // quarter of a second under emulation), on the path of every `plan`.
            if let Some((backend, via)) = Self::from_links(&iptables) {
                return Ok(Detected {
                    backend,
                    reason: format!("`{}` is a link to {via}", iptables.display()),
                });
            }
            let out = Command::new(&iptables)
                .arg("--version")
                .output()
                .map_err(|e| MarkError::Spawn {
                    program: iptables.display().to_string(),
                    source: e,
                })?;
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(found) = Self::from_version(&text) {
                return Ok(Detected {
                    backend: found,
                    reason: format!("`iptables --version` says {:?}", text.trim()),
                });
            }
        }
        for backend in [IptablesBackend::Nft, IptablesBackend::Legacy] {
            if find_program(backend.restore_program(Family::Inet)).is_some() {
                return Ok(Detected {
                    backend,
                    reason: format!(
                        "no usable `iptables` command; {} is installed",
                        backend.restore_program(Family::Inet)
                    ),
                });
            }
        }
        Err(MarkError::Backend(
            "neither iptables-nft-restore nor iptables-legacy-restore is installed \
             (install Debian package iptables)"
                .into(),
        ))
    }

    /// What an `iptables` that is a chain of symbolic links runs, from the names along it:
    /// Debian's `iptables -> /etc/alternatives/iptables -> iptables-nft -> xtables-nft-multi`.
    /// The multi-call binaries pick their mode from which binary they are, so the first known
    /// name settles it. `None` (ask `iptables --version`) when no name is known.
    pub fn from_links(path: &Path) -> Option<(Self, String)> {
        const MAX_HOPS: usize = 16;
        let mut current = path.to_path_buf();
        for _ in 0..MAX_HOPS {
            let target = std::fs::read_link(&current).ok()?;
            let next = match current.parent() {
                Some(dir) if target.is_relative() => dir.join(&target),
                _ => target,
            };
            let name = next.file_name()?.to_str()?;
            let backend = match name {
                "iptables-nft" | "xtables-nft-multi" => Some(IptablesBackend::Nft),
                "iptables-legacy" | "xtables-legacy-multi" => Some(IptablesBackend::Legacy),
                _ => None,
            };
            if let Some(b) = backend {
                return Some((b, next.display().to_string()));
            }
            current = next;
        }
        None
    }

    /// Reads `iptables v1.8.9 (nf_tables)` / `(legacy)` / `iptables v1.6.1`.
    pub fn from_version(text: &str) -> Option<Self> {
        let text = text.trim();
        if !text.starts_with("iptables v") && !text.starts_with("ip6tables v") {
            return None;
        }
        if text.contains("(nf_tables)") {
            Some(IptablesBackend::Nft)
        } else {
            // "(legacy)", or an iptables older than 1.8, which only had x_tables.
            Some(IptablesBackend::Legacy)
        }
    }
}

impl fmt::Display for IptablesBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Finds a program on `PATH`, then in `/usr/sbin` and `/sbin` (not on every user's `PATH`).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn version_strings() {
        assert_eq!(
            IptablesBackend::from_version("iptables v1.8.9 (nf_tables)\n"),
            Some(IptablesBackend::Nft)
        );
        assert_eq!(
            IptablesBackend::from_version("iptables v1.8.9 (legacy)"),
            Some(IptablesBackend::Legacy)
        );
        assert_eq!(
            IptablesBackend::from_version("iptables v1.6.1"),
            Some(IptablesBackend::Legacy)
        );
        assert_eq!(IptablesBackend::from_version("bash: not found"), None);
    }

    #[test]
    fn links_name_the_backend_without_running_anything() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("lvsctl-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("alternatives")).unwrap();
        // Debian's chain: relative and absolute links, the real binary last.
        std::fs::write(dir.join("xtables-nft-multi"), "").unwrap();
        symlink("xtables-nft-multi", dir.join("iptables-nft")).unwrap();
        symlink(dir.join("iptables-nft"), dir.join("alternatives/iptables")).unwrap();
        symlink("alternatives/iptables", dir.join("iptables")).unwrap();
        let (backend, via) = IptablesBackend::from_links(&dir.join("iptables")).unwrap();
        assert_eq!(backend, IptablesBackend::Nft);
        assert!(via.ends_with("iptables-nft"), "{via}");

        std::fs::write(dir.join("xtables-legacy-multi"), "").unwrap();
        symlink("xtables-legacy-multi", dir.join("iptables6")).unwrap();
        assert_eq!(
            IptablesBackend::from_links(&dir.join("iptables6")).map(|(b, _)| b),
            Some(IptablesBackend::Legacy)
        );
        // A plain file, an unknown target, or a loop: ask `iptables --version` instead.
        std::fs::write(dir.join("plain"), "").unwrap();
        assert_eq!(IptablesBackend::from_links(&dir.join("plain")), None);
        symlink("plain", dir.join("other")).unwrap();
        assert_eq!(IptablesBackend::from_links(&dir.join("other")), None);
        symlink("loop-b", dir.join("loop-a")).unwrap();
        symlink("loop-a", dir.join("loop-b")).unwrap();
        assert_eq!(IptablesBackend::from_links(&dir.join("loop-a")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names() {
        assert_eq!(
            IptablesBackend::from_name("nft"),
            Some(IptablesBackend::Nft)
        );
        assert_eq!(
            IptablesBackend::from_name("legacy"),
            Some(IptablesBackend::Legacy)
        );
        assert_eq!(IptablesBackend::from_name("iptables"), None);
        assert_eq!(
            IptablesBackend::Legacy.restore_program(Family::Inet6),
            "ip6tables-legacy-restore"
        );
    }
}
