//! Reading and writing `/proc/sys` values. `/proc/sys/net` belongs to the network namespace of
//! the calling thread, so this acts on the same namespace as the netlink socket.

use std::path::PathBuf;

use crate::VipError;
use crate::vips::check_ifname;

/// One per-interface IPv4 setting: `net.ipv4.conf.<interface>.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfKey {
    /// An interface name, or `all` / `default`.
    pub interface: String,
    /// e.g. `arp_ignore`.
    pub name: String,
}

impl ConfKey {
    pub fn new(interface: &str, name: &str) -> Result<Self, VipError> {
        if !matches!(interface, "all" | "default") {
            check_ifname(interface)?;
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(VipError::InvalidInterface {
                name: name.to_owned(),
                reason: "not a sysctl name".into(),
            });
        }
        Ok(ConfKey {
            interface: interface.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/proc/sys/net/ipv4/conf")
            .join(&self.interface)
            .join(&self.name)
    }

    /// The dotted name `sysctl` shows (a '.' in an interface name becomes '/').
    pub fn dotted(&self) -> String {
        format!(
            "net.ipv4.conf.{}.{}",
            self.interface.replace('.', "/"),
            self.name
        )
    }

    pub fn read(&self) -> Result<String, VipError> {
        let path = self.path();
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .map_err(|source| VipError::Sysctl {
                action: "read",
                hint: hint(&source, &self.interface),
                path,
                source,
            })
    }

    pub fn write(&self, value: &str) -> Result<(), VipError> {
        let path = self.path();
        std::fs::write(&path, format!("{value}\n")).map_err(|source| VipError::Sysctl {
            action: "write",
            hint: hint(&source, &self.interface),
            path,
            source,
        })
    }
}

fn hint(e: &std::io::Error, interface: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("; is there an interface {interface}?"),
        std::io::ErrorKind::PermissionDenied => "; run as root".to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys() {
        let k = ConfKey::new("all", "arp_ignore").unwrap();
        assert_eq!(
            k.path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/all/arp_ignore")
        );
        assert_eq!(k.dotted(), "net.ipv4.conf.all.arp_ignore");
        let k = ConfKey::new("eth0.100", "arp_announce").unwrap();
        assert_eq!(k.dotted(), "net.ipv4.conf.eth0/100.arp_announce");
        assert!(ConfKey::new("../../x", "arp_ignore").is_err());
        assert!(ConfKey::new("lo", "../x").is_err());
    }
}
