//! The DR real-server side: every VIP on `lo` as /32 (/128), owned by lvsctl, and the ARP
//! sysctls that keep the real server from answering ARP for them (`arp_ignore=1`: answer only
//! for addresses on the receiving interface; `arp_announce=2`: always use the best local source
//! address). Planned first, as data, then applied; applying a fresh plan twice changes nothing.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use lvsctl_model::Family;
use serde::{Deserialize, Serialize};

use crate::VipError;
use crate::sysctl::ConfKey;
use crate::vips::{Side, Vips};

/// What a DR real server should look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServerSpec {
    /// Where the VIPs go; `lo` for DR.
    pub interface: String,
    /// The VIPs this real server serves. Addresses lvsctl added earlier and not listed here are
    /// removed; addresses lvsctl did not add are never touched.
    pub vips: BTreeSet<IpAddr>,
    /// `net.ipv4.conf.<i>.arp_ignore` for every `<i>` in `arp_interfaces`.
    pub arp_ignore: u8,
    /// `net.ipv4.conf.<i>.arp_announce` for every `<i>` in `arp_interfaces`.
    pub arp_announce: u8,
    /// The kernel uses the larger of `all` and the receiving interface's value, so `all` alone
    /// is enough; `lo` is set too because that is what the LVS-DR recipes (and operators'
    /// scripts) do, and it makes the intent visible on the VIP's interface.
    pub arp_interfaces: Vec<String>,
}

impl RealServerSpec {
    pub const DEFAULT_ARP_IGNORE: u8 = 1;
    pub const DEFAULT_ARP_ANNOUNCE: u8 = 2;

    /// VIPs on `lo`, `arp_ignore=1` and `arp_announce=2` on `all` and `lo`.
    pub fn new(vips: impl IntoIterator<Item = IpAddr>) -> Self {
        RealServerSpec {
            interface: "lo".into(),
            vips: vips.into_iter().collect(),
            arp_ignore: Self::DEFAULT_ARP_IGNORE,
            arp_announce: Self::DEFAULT_ARP_ANNOUNCE,
            arp_interfaces: vec!["all".into(), "lo".into()],
        }
    }
}

/// One change on a real server, with before/after for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RealServerChange {
    /// The VIP interface is down.
    LinkUp {
        interface: String,
    },
    /// `net.ipv4.conf.<interface>.<name>`: `before` -> `after`.
    Sysctl {
        interface: String,
        name: String,
        before: String,
        after: String,
    },
    AddVip {
        interface: String,
        addr: IpAddr,
    },
    /// An address lvsctl added earlier that is no longer wanted.
    DeleteVip {
        interface: String,
        addr: IpAddr,
    },
}

/// Plan style: `+ vip 192.168.6.101/32 on lo`, `~ sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1`.
impl fmt::Display for RealServerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RealServerChange::LinkUp { interface } => write!(f, "~ link {interface}: down -> up"),
            RealServerChange::Sysctl {
                interface,
                name,
                before,
                after,
            } => {
                let key = ConfKey {
                    interface: interface.clone(),
                    name: name.clone(),
                };
                write!(f, "~ sysctl {}: {before} -> {after}", key.dotted())
            }
            RealServerChange::AddVip { interface, addr } => write!(
                f,
                "+ vip {addr}/{} on {interface}",
                Family::of(addr).max_prefix()
            ),
            RealServerChange::DeleteVip { interface, addr } => write!(
                f,
                "- vip {addr}/{} on {interface}  # not in manifest",
                Family::of(addr).max_prefix()
            ),
        }
    }
}

impl Vips {
    /// What [`Vips::realserver_apply`] would change, in the order it would do it: the link,
    /// then the sysctls (so ARP is quiet before a VIP appears), then the addresses.
    pub fn realserver_plan(
        &mut self,
        spec: &RealServerSpec,
    ) -> Result<Vec<RealServerChange>, VipError> {
        let iface = &spec.interface;
        let link = self
            .link(iface)?
            .ok_or_else(|| VipError::NoInterface(iface.clone()))?;
        let mut plan = Vec::new();
        if !link.up {
            plan.push(RealServerChange::LinkUp {
                interface: iface.clone(),
            });
        }
        for arp_if in &spec.arp_interfaces {
            for (name, want) in [
                ("arp_ignore", spec.arp_ignore),
                ("arp_announce", spec.arp_announce),
            ] {
                let key = ConfKey::new(arp_if, name)?;
                let before = key.read()?;
                let after = want.to_string();
                if before != after {
                    plan.push(RealServerChange::Sysctl {
                        interface: arp_if.clone(),
                        name: name.to_owned(),
                        before,
                        after,
                    });
                }
            }
        }
        let state = self
            .observe_as(Side::RealServer, iface)?
            .ok_or_else(|| VipError::NoInterface(iface.clone()))?;
        for addr in &spec.vips {
            // An operator's own copy of the VIP (e.g. the seed's `lo:0`) already does the job.
            if !state.owned.contains(addr) && !state.foreign.contains(addr) {
                plan.push(RealServerChange::AddVip {
                    interface: iface.clone(),
                    addr: *addr,
                });
            }
        }
        for addr in state.owned.difference(&spec.vips) {
            plan.push(RealServerChange::DeleteVip {
                interface: iface.clone(),
                addr: *addr,
            });
        }
        Ok(plan)
    }

    /// Carries out one change.
    pub fn realserver_execute(&mut self, change: &RealServerChange) -> Result<(), VipError> {
        match change {
            RealServerChange::LinkUp { interface } => {
                let link = self
                    .link(interface)?
                    .ok_or_else(|| VipError::NoInterface(interface.clone()))?;
                self.set_up(&link)
            }
            RealServerChange::Sysctl {
                interface,
                name,
                after,
                ..
            } => ConfKey::new(interface, name)?.write(after),
            RealServerChange::AddVip { interface, addr } => {
                if self.link(interface)?.is_none() {
                    // Never create a dummy named like the real server's VIP interface by
                    // accident: the real-server side only uses interfaces that exist.
                    return Err(VipError::NoInterface(interface.clone()));
                }
                self.add_vip_as(Side::RealServer, interface, *addr)
                    .map(drop)
            }
            RealServerChange::DeleteVip { interface, addr } => self
                .delete_vip_as(Side::RealServer, interface, *addr)
                .map(drop),
        }
    }

    /// Plans and carries out the changes; returns what it changed (empty when nothing was
    /// needed). Stops at the first failure, leaving the earlier changes in place.
    pub fn realserver_apply(
        &mut self,
        spec: &RealServerSpec,
    ) -> Result<Vec<RealServerChange>, VipError> {
        let plan = self.realserver_plan(spec)?;
        for change in &plan {
            self.realserver_execute(change)?;
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn display_is_plan_style() {
        let a: IpAddr = "192.168.6.101".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let lines: Vec<String> = [
            RealServerChange::LinkUp {
                interface: "lo".into(),
            },
            RealServerChange::Sysctl {
                interface: "all".into(),
                name: "arp_ignore".into(),
                before: "0".into(),
                after: "1".into(),
            },
            RealServerChange::AddVip {
                interface: "lo".into(),
                addr: a,
            },
            RealServerChange::DeleteVip {
                interface: "lo".into(),
                addr: v6,
            },
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            lines,
            vec![
                "~ link lo: down -> up",
                "~ sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
                "+ vip 192.168.6.101/32 on lo",
                "- vip 2001:db8::1/128 on lo  # not in manifest",
            ]
        );
    }

    #[test]
    fn spec_defaults_match_the_seed() {
        let s = RealServerSpec::new(["192.168.6.101".parse().unwrap()]);
        assert_eq!(s.interface, "lo");
        assert_eq!((s.arp_ignore, s.arp_announce), (1, 2));
        assert_eq!(s.arp_interfaces, vec!["all", "lo"]);
        let json = serde_json::to_string(&RealServerChange::AddVip {
            interface: "lo".into(),
            addr: "10.0.0.1".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"change":"add_vip","interface":"lo","addr":"10.0.0.1"}"#
        );
    }
}
