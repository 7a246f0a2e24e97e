//! Whether lvsctl's chain can exist at all, asked without starting a process: `*-save` is a
//! process start (a quarter of a second under emulation, on the path of every `plan`), and most
//! directors have no chain in at least one family. Any doubt answers `None`, and the caller
//! runs `*-save` as before.

use std::io;

use lvsctl_model::Family;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use crate::CHAIN;
use crate::backend::IptablesBackend;

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN` and the `NEWCHAIN` answer.
const NFT_GETCHAIN: u16 = (10 << 8) | 4;
const NFT_NEWCHAIN: u16 = (10 << 8) | 3;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const HEADER_LEN: usize = 16;

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
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    // nfnetlink answers a GET while the request is being sent: everything is queued when send
    // returns, so reading never has to wait (and a missing answer is a doubt, not a hang).
    sock.set_non_blocking(true)?;
    let request = getchain_request(family, 1);
    sock.send(&request, 0)?;
    let mut found = false;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        buf.clear();
        let n = sock.recv(&mut buf, 0)?;
        let data = &buf[..n.min(buf.len())];
        let mut off = 0;
        while off + HEADER_LEN <= data.len() {
            let len = u32::from_ne_bytes(field(data, off)?) as usize;
            let kind = u16::from_ne_bytes(field(data, off + 4)?);
            if len < HEADER_LEN || off + len > data.len() {
                return Ok(None);
            }
            match kind {
                NFT_NEWCHAIN => found = true,
                NLMSG_ERROR => {
                    let errno = i32::from_ne_bytes(field(data, off + HEADER_LEN)?);
                    return Ok(match errno {
                        0 => Some(found),
                        e if e == -ENOENT => Some(false),
                        _ => None,
                    });
                }
                _ => return Ok(None),
            }
            off += (len + 3) & !3;
        }
    }
}

const ENOENT: i32 = 2;

fn field<const N: usize>(data: &[u8], at: usize) -> io::Result<[u8; N]> {
    data.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short netlink message"))
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
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&NFT_GETCHAIN.to_ne_bytes());
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
}
