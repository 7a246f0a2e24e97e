//! Whether lvsctl's chain can exist at all, asked without starting a process: `*-save` is a
//! process start (a quarter of a second under emulation, on the path of every `plan`), and most
//! directors have no chain in at least one family. Any doubt answers `None`, and the caller
//! runs `*-save` as before.

use std::io;
use std::os::fd::AsRawFd;

use lvsctl_model::Family;
use netlink_packet_core::{NLMSG_ERROR, NetlinkBuffer, NlasIterator};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::CHAIN;
use crate::backend::IptablesBackend;

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN` and the `NEWCHAIN` answer.
const NFT_GETCHAIN: u16 = (10 << 8) | 4;
const NFT_NEWCHAIN: u16 = (10 << 8) | 3;
/// `NFT_MSG_GETGEN` and its `NEWGEN` answer.
const NFT_GETGEN: u16 = (10 << 8) | 16;
const NFT_NEWGEN: u16 = (10 << 8) | 15;
const NFTA_GEN_ID: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const HEADER_LEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// `Some(false)` when the family's mangle table has no `LVSCTL-MARK` chain (so there is nothing
/// to read and no jump to it can exist), `Some(true)` when it has, `None` when that cannot be
/// told cheaply.
pub(crate) fn chain_exists(backend: IptablesBackend, family: Family) -> Option<bool> {
    match backend {
        IptablesBackend::Nft => nft_chain_exists(family).ok().flatten(),
        // Without the table no rule of it exists; with it, only `*-save` can tell.
        IptablesBackend::Legacy => match legacy_table_loaded(family) {
            Some(false) => Some(false),
            _ => None,
        },
    }
}

/// The x_tables tables of this network namespace are listed in ip{,6}_tables_names once
/// instantiated. `None` when the file is missing (the module is not loaded yet). thread-self,
/// not /proc/net: that shows the namespace of the process's first thread, and lvsctl's tests
/// (and any caller) may run this thread in another.
fn legacy_table_loaded(family: Family) -> Option<bool> {
    let file = match family {
        Family::Inet => "/proc/thread-self/net/ip_tables_names",
        Family::Inet6 => "/proc/thread-self/net/ip6_tables_names",
    };
    let names = std::fs::read_to_string(file).ok()?;
    Some(names.lines().any(|l| l.trim() == "mangle"))
}

/// Asks nf_tables for the chain (`NFT_MSG_GETCHAIN` in the family's `mangle` table, as
/// iptables-nft names it): the chain comes back, or ENOENT (no such table or chain).
fn nft_chain_exists(family: Family) -> io::Result<Option<bool>> {
    let sock = NfSocket::open()?;
    let mut found = false;
    let status = sock.ask(&getchain_request(family, 1), |kind, _| {
        found |= kind == NFT_NEWCHAIN;
        kind == NFT_NEWCHAIN
    })?;
    Ok(match status {
        Some(0) => Some(found),
        Some(e) if e == -ENOENT => Some(false),
        _ => None,
    })
}

/// Where this network namespace's nf_tables ruleset stands: the namespace's cookie (never
/// reused while the machine is up, unlike its inode number) and the ruleset generation, which
/// every committed change moves on (whoever makes it: iptables-nft, nft, firewalld...).
/// `None` when either cannot be read (kernels before 5.14 have no cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Generation {
    pub netns: u64,
    pub generation: u32,
}

pub(crate) fn nft_generation() -> Option<Generation> {
    let sock = NfSocket::open().ok()?;
    let netns = sock.netns_cookie().ok()?;
    let mut generation = None;
    let status = sock
        .ask(&getgen_request(1), |kind, payload| {
            if kind != NFT_NEWGEN {
                return false;
            }
            generation = gen_id(payload);
            true
        })
        .ok()?;
    match (status, generation) {
        (Some(0), Some(generation)) => Some(Generation { netns, generation }),
        _ => None,
    }
}

/// `NFTA_GEN_ID` (big-endian u32) from a `NEWGEN` payload (after `nfgenmsg`).
fn gen_id(payload: &[u8]) -> Option<u32> {
    NlasIterator::new(payload.get(NFGENMSG_LEN..)?)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NFTA_GEN_ID)
        .and_then(|nla| <[u8; 4]>::try_from(nla.value()).ok())
        .map(u32::from_be_bytes)
}

/// A netfilter netlink socket for one question at a time.
struct NfSocket(Socket);

impl NfSocket {
    fn open() -> io::Result<NfSocket> {
        let mut sock = Socket::new(NETLINK_NETFILTER)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // nfnetlink answers a GET while the request is being sent: everything is queued when
        // send returns, so reading never has to wait (and a missing answer is a doubt, not a
        // hang).
        sock.set_non_blocking(true)?;
        Ok(NfSocket(sock))
    }

    /// Sends `request` (which asks for an ACK) and hands each answer's type and payload to
    /// `answer`, which says whether it was expected. Returns the ACK's status (0 or -errno),
    /// or `None` on an unexpected or malformed answer.
    fn ask(
        &self,
        request: &[u8],
        mut answer: impl FnMut(u16, &[u8]) -> bool,
    ) -> io::Result<Option<i32>> {
        self.0.send(request, 0)?;
        let mut buf = Vec::with_capacity(16 * 1024);
        loop {
            buf.clear();
            let n = self.0.recv(&mut buf, 0)?;
            let mut rest = &buf[..n.min(buf.len())];
            while rest.len() >= HEADER_LEN {
                let Ok(msg) = NetlinkBuffer::new_checked(rest) else {
                    return Ok(None);
                };
                let payload = msg.payload();
                if msg.message_type() == NLMSG_ERROR {
                    return Ok(payload
                        .get(..4)
                        .and_then(|b| b.try_into().ok())
                        .map(i32::from_ne_bytes));
                }
                if !answer(msg.message_type(), payload) {
                    return Ok(None);
                }
                rest = rest
                    .get(align4(msg.length() as usize)..)
                    .unwrap_or_default();
            }
        }
    }

    /// `getsockopt(SOL_SOCKET, SO_NETNS_COOKIE)`: the socket's network namespace.
    #[allow(unsafe_code)]
    fn netns_cookie(&self) -> io::Result<u64> {
        let mut cookie: u64 = 0;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: `cookie` and `len` are live locals; the kernel writes at most `len` (8)
        // bytes into `cookie` and the length into `len`. Any bit pattern is a valid u64.
        let r = unsafe {
            libc::getsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NETNS_COOKIE,
                (&raw mut cookie).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != std::mem::size_of::<u64>() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "SO_NETNS_COOKIE: unexpected length",
            ));
        }
        Ok(cookie)
    }
}

const ENOENT: i32 = 2;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// `nlmsghdr` + `nfgenmsg` + the table and chain names.
fn getchain_request(family: Family, seq: u32) -> Vec<u8> {
    let nfproto: u8 = match family {
        Family::Inet => 2,
        Family::Inet6 => 10,
    };
    let mut msg = vec![0u8; HEADER_LEN];
    msg.extend_from_slice(&[nfproto, 0, 0, 0]);
    push_attr(&mut msg, NFTA_CHAIN_TABLE, b"mangle");
    push_attr(&mut msg, NFTA_CHAIN_NAME, CHAIN.as_bytes());
    finish_request(msg, NFT_GETCHAIN, seq)
}

/// `nlmsghdr` + `nfgenmsg` (AF_UNSPEC): the ruleset generation of the namespace.
fn getgen_request(seq: u32) -> Vec<u8> {
    let mut msg = vec![0u8; HEADER_LEN];
    msg.extend_from_slice(&[0, 0, 0, 0]);
    finish_request(msg, NFT_GETGEN, seq)
}

/// Fills in the `nlmsghdr` of a request that asks for an ACK.
fn finish_request(mut msg: Vec<u8>, kind: u16, seq: u32) -> Vec<u8> {
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&kind.to_ne_bytes());
    msg[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

/// A NUL-terminated string attribute, padded to 4 bytes.
fn push_attr(msg: &mut Vec<u8>, kind: u16, text: &[u8]) {
    let len = 4 + text.len() + 1;
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(text);
    msg.push(0);
    while !msg.len().is_multiple_of(4) {
        msg.push(0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_layout() {
        let m = getchain_request(Family::Inet6, 7);
        // header 16 + nfgenmsg 4 + "mangle\0" (4+7 -> 12) + "LVSCTL-MARK\0" (4+12 = 16)
        assert_eq!(m.len(), 48);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 48);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 0x0a04);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 7);
        assert_eq!(m[16], 10, "NFPROTO_IPV6");
        assert_eq!(u16::from_ne_bytes(m[20..22].try_into().unwrap()), 11);
        assert_eq!(&m[24..31], b"mangle\0");
        assert_eq!(u16::from_ne_bytes(m[32..34].try_into().unwrap()), 16);
        assert_eq!(&m[36..48], b"LVSCTL-MARK\0");
    }

    #[test]
    fn getgen_request_layout() {
        let m = getgen_request(3);
        assert_eq!(m.len(), 20);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 0x0a10);
        assert_eq!(u16::from_ne_bytes(m[6..8].try_into().unwrap()), 5);
        assert_eq!(&m[16..20], &[0, 0, 0, 0], "AF_UNSPEC, version 0");
    }

    #[test]
    fn generation_id_is_read_from_its_attribute_whatever_comes_before() {
        // nfgenmsg, then NFTA_GEN_PROC_PID (2), NFTA_GEN_ID (1), NFTA_GEN_PROC_NAME (3).
        let mut p = vec![0u8, 0, 0x12, 0x34];
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&2u16.to_ne_bytes());
        p.extend_from_slice(&77u32.to_be_bytes());
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&1u16.to_ne_bytes());
        p.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        push_attr(&mut p, 3, b"nft");
        assert_eq!(gen_id(&p), Some(0x0102_0304));
        assert_eq!(gen_id(&p[..12]), None, "no NFTA_GEN_ID");
        assert_eq!(gen_id(&p[..14]), None, "a truncated attribute");
    }
}
