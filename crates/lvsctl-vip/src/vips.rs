//! VIP addresses on an interface over rtnetlink: list, add (creating a dummy link if needed),
//! delete, and the ownership rule: an address is lvsctl's when its address protocol
//! (`IFA_PROTO`) is [`ADDR_PROTO`]. Everything else on the interface is foreign and left alone.

use std::collections::BTreeSet;
use std::net::IpAddr;

use lvsctl_model::{Family, VipState};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressProtocol, AddressScope,
};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::VipError;
use crate::netlink::{NlError, RtSocket};

/// The address protocol lvsctl stamps on every director VIP it adds (`ip addr ... proto 76`
/// in iproute2 releases newer than 6.1; 76 is 'L'). The kernel defines only 0-3 (unspec,
/// kernel_lo, kernel_ra, kernel_ll), so no kernel-made address carries it.
pub const ADDR_PROTO: u8 = 76;

/// The address protocol of the VIPs `lvsctl realserver` adds (77, 'M'): another stamp than
/// the director's, so a node that is both never takes one side's addresses for the other's
/// (the director removes its own addresses from every interface but its `vip_interface`).
pub const REALSERVER_ADDR_PROTO: u8 = 77;

/// Which of lvsctl's two jobs an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `director.vip_interface`: [`ADDR_PROTO`].
    Director,
    /// `lvsctl realserver`: [`REALSERVER_ADDR_PROTO`].
    RealServer,
}

impl Side {
    pub fn proto(self) -> u8 {
        match self {
            Side::Director => ADDR_PROTO,
            Side::RealServer => REALSERVER_ADDR_PROTO,
        }
    }
}

const ENODEV: i32 = 19;
const EOPNOTSUPP: i32 = 95;
const EPERM: i32 = 1;
const EEXIST: i32 = 17;

/// An interface as lvsctl needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

/// One address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// `IFA_PROTO`, 0 when the kernel sent none.
    pub proto: u8,
    /// IPv4 label (`lo:0`), if any.
    pub label: Option<String>,
}

impl IfAddr {
    /// Added by lvsctl as a director VIP.
    pub fn owned(&self) -> bool {
        self.owned_by(Side::Director)
    }

    /// Added by lvsctl for `side`.
    pub fn owned_by(&self, side: Side) -> bool {
        self.proto == side.proto()
    }
}

/// What [`Vips::add_vip`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddOutcome {
    /// The interface did not exist and was created as a dummy link.
    pub created_link: bool,
    /// The interface was down and was brought up.
    pub brought_up: bool,
    /// The address was added (false: lvsctl's address was already there).
    pub added: bool,
}

/// A NETLINK_ROUTE connection in the caller's network namespace (the namespace of the thread
/// that opened it).
pub struct Vips {
    sock: RtSocket,
}

impl Vips {
    pub fn open() -> Result<Self, VipError> {
        Ok(Vips {
            sock: RtSocket::open().map_err(VipError::Socket)?,
        })
    }

    /// The interface called `name`, or `None`.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, VipError> {
        check_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.sock.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => {
                for r in replies {
                    if let RouteNetlinkMessage::NewLink(l) = r {
                        return Ok(Some(Link {
                            name: name.to_owned(),
                            index: l.header.index,
                            up: l.header.flags.contains(LinkFlags::Up),
                        }));
                    }
                }
                Err(VipError::Protocol {
                    op: format!("look up interface {name}"),
                    detail: "the kernel answered without the link".into(),
                })
            }
            Err(e) if e.errno() == Some(ENODEV) => Ok(None),
            Err(e) => Err(kernel(format!("look up interface {name}"), e)),
        }
    }

    /// Creates a dummy interface `name` (down) and returns it.
    pub fn create_dummy(&mut self, name: &str) -> Result<Link, VipError> {
        check_ifname(name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Dummy,
            )]));
        let op = format!("create dummy interface {name}");
        self.sock
            .request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|e| kernel(op.clone(), e))?;
        self.link(name)?.ok_or_else(|| VipError::Protocol {
            op,
            detail: "the interface is missing right after it was created".into(),
        })
    }

    /// Sets `IFF_UP` on the link.
    pub fn set_up(&mut self, link: &Link) -> Result<(), VipError> {
        let mut msg = LinkMessage::default();
        msg.header.index = link.index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.sock
            .request(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| kernel(format!("bring up interface {}", link.name), e))?;
        Ok(())
    }

    /// Every IPv4 and IPv6 address on the interface, or `None` when it does not exist.
    pub fn addresses(&mut self, interface: &str) -> Result<Option<Vec<IfAddr>>, VipError> {
        let Some(link) = self.link(interface)? else {
            return Ok(None);
        };
        self.addresses_of(&link).map(Some)
    }

    fn addresses_of(&mut self, link: &Link) -> Result<Vec<IfAddr>, VipError> {
        Ok(self
            .dump_addresses(Some(link))?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// Every address on every interface, with its interface index.
    fn all_addresses(&mut self) -> Result<Vec<(u32, IfAddr)>, VipError> {
        self.dump_addresses(None)
    }

    /// The addresses of `link`, or of all interfaces; each with its interface index.
    fn dump_addresses(&mut self, link: Option<&Link>) -> Result<Vec<(u32, IfAddr)>, VipError> {
        let mut req = AddressMessage::default();
        // With strict checking on, the kernel filters the dump by this index; older kernels
        // dump everything, so filter here too.
        req.header.index = link.map_or(0, |l| l.index);
        let what = link.map_or_else(
            || "list addresses".to_owned(),
            |l| format!("list addresses of {}", l.name),
        );
        let replies = self
            .sock
            .request(RouteNetlinkMessage::GetAddress(req), NLM_F_DUMP)
            .map_err(|e| kernel(what, e))?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewAddress(m) = r else {
                continue;
            };
            if link.is_some_and(|l| m.header.index != l.index) {
                continue;
            }
            let (mut local, mut address, mut proto, mut label) = (None, None, 0u8, None);
            for a in m.attributes {
                match a {
                    AddressAttribute::Local(ip) => local = Some(ip),
                    AddressAttribute::Address(ip) => address = Some(ip),
                    AddressAttribute::Protocol(p) => proto = u8::from(p),
                    AddressAttribute::Label(l) => label = Some(l),
                    _ => {}
                }
            }
            // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
            // point-to-point links); IPv6 usually sends only IFA_ADDRESS.
            if let Some(addr) = local.or(address) {
                out.push((
                    m.header.index,
                    IfAddr {
                        addr,
                        prefix_len: m.header.prefix_len,
                        proto,
                        label,
                    },
                ));
            }
        }
        Ok(out)
    }

    /// The VIP state of `interface`: addresses lvsctl added (`owned`) and all others
    /// (`foreign`). `None` when the interface does not exist.
    pub fn observe(&mut self, interface: &str) -> Result<Option<VipState>, VipError> {
        self.observe_as(Side::Director, interface)
    }

    /// [`Vips::observe`] with `side`'s addresses as the owned ones.
    pub fn observe_as(
        &mut self,
        side: Side,
        interface: &str,
    ) -> Result<Option<VipState>, VipError> {
        let Some(addrs) = self.addresses(interface)? else {
            return Ok(None);
        };
        let mut owned = BTreeSet::new();
        let mut foreign = BTreeSet::new();
        for a in addrs {
            if a.owned_by(side) {
                owned.insert(a.addr);
            } else {
                foreign.insert(a.addr);
            }
        }
        Ok(Some(VipState {
            interface: interface.to_owned(),
            owned,
            foreign,
            elsewhere: Default::default(),
        }))
    }

    /// Every interface: its name, index and whether it is a loopback one (`IFF_LOOPBACK`).
    fn links(&mut self) -> Result<Vec<(Link, bool)>, VipError> {
        let replies = self
            .sock
            .request(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                NLM_F_DUMP,
            )
            .map_err(|e| kernel("list interfaces".to_owned(), e))?;
        let mut out = Vec::new();
        for r in replies {
            let RouteNetlinkMessage::NewLink(l) = r else {
                continue;
            };
            let name = l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            });
            if let Some(name) = name {
                out.push((
                    Link {
                        name,
                        index: l.header.index,
                        up: l.header.flags.contains(LinkFlags::Up),
                    },
                    l.header.flags.contains(LinkFlags::Loopback),
                ));
            }
        }
        Ok(out)
    }

    /// Like [`Vips::observe`] (an interface that does not exist holds nothing), and also lists
    /// in [`VipState::elsewhere`] the director VIPs lvsctl added on every other interface,
    /// except loopback ones and those named in `spare` (the manifest's `realserver.interface`;
    /// `lvsctl realserver` stamps its own VIPs differently, but an older lvsctl stamped them
    /// as the director's). One dump of the interfaces and one of all their addresses.
    pub fn observe_all(&mut self, interface: &str, spare: &[&str]) -> Result<VipState, VipError> {
        check_ifname(interface)?;
        let links = self.links()?;
        let mut state = VipState {
            interface: interface.to_owned(),
            ..VipState::default()
        };
        let by_index: std::collections::BTreeMap<u32, (&str, bool)> = links
            .iter()
            .map(|(l, lo)| (l.index, (l.name.as_str(), *lo)))
            .collect();
        for (index, a) in self.all_addresses()? {
            let Some(&(name, loopback)) = by_index.get(&index) else {
                // Came up between the two dumps: the next observation sees it.
                continue;
            };
            if name == interface {
                if a.owned() {
                    state.owned.insert(a.addr);
                } else {
                    state.foreign.insert(a.addr);
                }
            } else if a.owned() && !loopback && !spare.contains(&name) {
                state
                    .elsewhere
                    .entry(name.to_owned())
                    .or_default()
                    .insert(a.addr);
            }
        }
        Ok(state)
    }

    /// Puts `addr` on `interface` as /32 or /128, marked as lvsctl's. Creates the interface as
    /// a dummy link if it does not exist, and brings it up if it is down. Idempotent for an
    /// address lvsctl already added; refuses ([`VipError::NotOwned`]) when the address is there
    /// but not lvsctl's.
    pub fn add_vip(&mut self, interface: &str, addr: IpAddr) -> Result<AddOutcome, VipError> {
        self.add_vip_as(Side::Director, interface, addr)
    }

    /// [`Vips::add_vip`], stamped as `side`'s.
    pub fn add_vip_as(
        &mut self,
        side: Side,
        interface: &str,
        addr: IpAddr,
    ) -> Result<AddOutcome, VipError> {
        let mut outcome = AddOutcome::default();
        let link = match self.link(interface)? {
            Some(l) => l,
            None => {
                outcome.created_link = true;
                self.create_dummy(interface)?
            }
        };
        if !link.up {
            self.set_up(&link)?;
            outcome.brought_up = true;
        }
        if let Some(found) = self
            .addresses_of(&link)?
            .into_iter()
            .find(|a| a.addr == addr)
        {
            return if found.owned_by(side) {
                Ok(outcome)
            } else {
                Err(VipError::NotOwned {
                    interface: interface.to_owned(),
                    addr,
                })
            };
        }
        let prefix = Family::of(&addr).max_prefix();
        let op = format!("add {addr}/{prefix} to {interface}");
        let mut msg = address_message(&link, addr);
        msg.attributes
            .push(AddressAttribute::Protocol(AddressProtocol::from(
                side.proto(),
            )));
        if addr.is_ipv6() {
            // A VIP must answer at once: skip duplicate address detection (tentative state).
            msg.header.flags = AddressHeaderFlags::Nodad;
        }
        self.sock
            .request(
                RouteNetlinkMessage::NewAddress(msg),
                NLM_F_CREATE | NLM_F_EXCL,
            )
            .map_err(|e| kernel(op.clone(), e))?;
        // Kernels before IFA_PROTO accept the request and drop the attribute: the address
        // would then look foreign and be stuck forever. Check, and undo if so.
        let stored = self
            .addresses_of(&link)?
            .into_iter()
            .find(|a| a.addr == addr);
        match stored {
            Some(a) if a.owned_by(side) => {
                outcome.added = true;
                Ok(outcome)
            }
            Some(_) => {
                self.sock
                    .request(
                        RouteNetlinkMessage::DelAddress(address_message(&link, addr)),
                        0,
                    )
                    .map_err(|e| kernel(format!("remove {addr} again from {interface}"), e))?;
                Err(VipError::OwnershipUnsupported {
                    interface: interface.to_owned(),
                    addr,
                })
            }
            None => Err(VipError::Protocol {
                op,
                detail: "the kernel acknowledged the address but does not list it".into(),
            }),
        }
    }

    /// Removes `addr` from `interface` if lvsctl added it. Returns whether it removed
    /// something (false: the address or the interface is not there). Refuses
    /// ([`VipError::NotOwned`]) for an address lvsctl did not add.
    pub fn delete_vip(&mut self, interface: &str, addr: IpAddr) -> Result<bool, VipError> {
        self.delete_vip_as(Side::Director, interface, addr)
    }

    /// [`Vips::delete_vip`] of an address `side` added.
    pub fn delete_vip_as(
        &mut self,
        side: Side,
        interface: &str,
        addr: IpAddr,
    ) -> Result<bool, VipError> {
        let Some(link) = self.link(interface)? else {
            return Ok(false);
        };
        let Some(found) = self
            .addresses_of(&link)?
            .into_iter()
            .find(|a| a.addr == addr)
        else {
            return Ok(false);
        };
        if !found.owned_by(side) {
            return Err(VipError::NotOwned {
                interface: interface.to_owned(),
                addr,
            });
        }
        let mut msg = address_message(&link, addr);
        msg.header.prefix_len = found.prefix_len;
        self.sock
            .request(RouteNetlinkMessage::DelAddress(msg), 0)
            .map_err(|e| {
                kernel(
                    format!("remove {addr}/{} from {interface}", found.prefix_len),
                    e,
                )
            })?;
        Ok(true)
    }
}

/// The request body naming one host address on `link` (used to add and delete).
fn address_message(link: &Link, addr: IpAddr) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = Family::of(&addr).max_prefix();
    msg.header.index = link.index;
    msg.header.scope = AddressScope::Universe;
    if addr.is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(addr));
    }
    msg.attributes.push(AddressAttribute::Address(addr));
    msg
}

fn kernel(op: String, e: NlError) -> VipError {
    match e {
        NlError::Decode(detail) => VipError::Protocol { op, detail },
        other => {
            let errno = other.errno().unwrap_or(0);
            let hint = match errno {
                EPERM => "; run as root (lvsctl needs CAP_NET_ADMIN)",
                EOPNOTSUPP if op.starts_with("create dummy") => {
                    "; the kernel has no dummy link type: load the dummy module or create the \
                     interface yourself (any type works)"
                }
                EEXIST => "; something else added it at the same moment, run again",
                _ => "",
            };
            VipError::Kernel {
                op,
                errno,
                message: other.describe(),
                hint: hint.to_owned(),
            }
        }
    }
}

/// The kernel's rules for interface names (`dev_valid_name`): 1-15 bytes, no '/', ':' or
/// whitespace, not "." or "..".
pub fn check_ifname(name: &str) -> Result<(), VipError> {
    let bad = |reason: &str| {
        Err(VipError::InvalidInterface {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if name.is_empty() || name.len() > 15 {
        return bad("must be 1 to 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return bad("contains '/', ':', whitespace or a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(check_ifname("lvs0").is_ok());
        assert!(check_ifname("eth0.100").is_ok());
        for bad in ["", ".", "..", "a/b", "lo:0", "a b", "sixteen-chars-xx"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn address_message_shape() {
        let link = Link {
            name: "lo".into(),
            index: 1,
            up: true,
        };
        let m4 = address_message(&link, "10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])));
        assert_eq!(m4.header.prefix_len, 32);
        assert_eq!(m4.header.family, AddressFamily::Inet);
        assert_eq!(m4.attributes.len(), 2);
        let m6 = address_message(
            &link,
            IpAddr::from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        );
        assert_eq!(m6.header.prefix_len, 128);
        assert_eq!(m6.header.family, AddressFamily::Inet6);
        assert_eq!(m6.attributes.len(), 1);
    }
}
