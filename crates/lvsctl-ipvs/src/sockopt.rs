//! The kernel's legacy IPVS `getsockopt` interface (`IP_VS_SO_GET_*`, `linux/ip_vs.h`), used
//! only to read real servers faster than one generic-netlink dump per service: one
//! `IP_VS_SO_GET_SERVICES` call lists every IPv4 service with its real-server count, and one
//! `IP_VS_SO_GET_DESTS` call per service copies its real servers straight into a buffer (no
//! skb, no dump machinery). What the interface cannot say is left to netlink by the caller:
//! IPv6 services, tunnel type/port/flags, real servers of the other address family (the kernel
//! skips them here), 64-bit counters.
//!
//! The reply structs are decoded by hand from bytes at the offsets of the C layout. The layout
//! is taken from `#[repr(C)]` mirrors of the structs (same target ABI as the kernel's
//! userspace interface), only ever used for `offset_of!`/`size_of`; the tests pin the x86-64
//! and 32-bit figures.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use lvsctl_netlink::constants::{AF_INET, IP_VS_CONN_F_FWD_MASK};
use lvsctl_netlink::{DestRaw, StatsRaw};

/// `IP_VS_BASE_CTL` (64+1024+64) and the `IP_VS_SO_GET_*` commands used here (`+2`, `+4`).
pub const IP_VS_BASE_CTL: libc::c_int = 64 + 1024 + 64;
pub const IP_VS_SO_GET_SERVICES: libc::c_int = IP_VS_BASE_CTL + 2;
pub const IP_VS_SO_GET_DESTS: libc::c_int = IP_VS_BASE_CTL + 4;

/// Largest reply buffer lvsctl offers (a service with ~170,000 real servers); beyond that the
/// caller reads with netlink, which streams.
const MAX_REPLY: usize = 16 << 20;

// C layout mirrors. Never instantiated: only their offsets and sizes are used.

/// `struct ip_vs_stats_user`.
#[allow(dead_code)]
#[repr(C)]
pub(crate) struct StatsUser {
    conns: u32,
    inpkts: u32,
    outpkts: u32,
    inbytes: u64,
    outbytes: u64,
    cps: u32,
    inpps: u32,
    outpps: u32,
    inbps: u32,
    outbps: u32,
}

/// `struct ip_vs_service_entry`.
#[allow(dead_code)]
#[repr(C)]
pub(crate) struct ServiceEntry {
    protocol: u16,
    addr: u32,
    port: u16,
    fwmark: u32,
    sched_name: [u8; 16],
    flags: u32,
    timeout: u32,
    netmask: u32,
    num_dests: u32,
    stats: StatsUser,
}

/// `struct ip_vs_dest_entry`.
#[allow(dead_code)]
#[repr(C)]
pub(crate) struct DestEntry {
    addr: u32,
    port: u16,
    conn_flags: u32,
    weight: i32,
    u_threshold: u32,
    l_threshold: u32,
    activeconns: u32,
    inactconns: u32,
    persistconns: u32,
    stats: StatsUser,
}

/// `struct ip_vs_get_services` (header; `entrytable[0]` sets its alignment and size).
#[allow(dead_code)]
#[repr(C)]
pub(crate) struct GetServices {
    num_services: u32,
    entrytable: [ServiceEntry; 0],
}

/// `struct ip_vs_get_dests` (header).
#[allow(dead_code)]
#[repr(C)]
pub(crate) struct GetDests {
    protocol: u16,
    addr: u32,
    port: u16,
    fwmark: u32,
    num_dests: u32,
    entrytable: [DestEntry; 0],
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ne_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(v)
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn addr4(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

/// Decodes a `struct ip_vs_stats_user` at the start of `b`, widened to [`StatsRaw`].
pub(crate) fn decode_stats(b: &[u8]) -> StatsRaw {
    let f = |o: usize| u64::from(ne_u32(b, o));
    StatsRaw {
        conns: f(offset_of!(StatsUser, conns)),
        inpkts: f(offset_of!(StatsUser, inpkts)),
        outpkts: f(offset_of!(StatsUser, outpkts)),
        inbytes: ne_u64(b, offset_of!(StatsUser, inbytes)),
        outbytes: ne_u64(b, offset_of!(StatsUser, outbytes)),
        cps: f(offset_of!(StatsUser, cps)),
        inpps: f(offset_of!(StatsUser, inpps)),
        outpps: f(offset_of!(StatsUser, outpps)),
        inbps: f(offset_of!(StatsUser, inbps)),
        outbps: f(offset_of!(StatsUser, outbps)),
    }
}

/// Whether the 32-bit fields of sockopt stats are surely the kernel's full 64-bit values
/// (which the netlink path reports). The kernel truncates conns, packets and the rates to 32
/// bits here and keeps bytes whole. Every counted packet adds its length (at least 1) to the
/// byte counter, so packets <= bytes; a connection is counted while its first packet is being
/// handled, so conns <= packets in + out (up to a few dropped packets); the rate estimates are
/// averages of 2-second deltas of those same counters since the last zeroing, so each is at
/// most about half its counter. Hence bytes in + out below 2^31 leave every field below 2^32.
pub(crate) fn stats_exact(s: &StatsRaw) -> bool {
    s.inbytes.saturating_add(s.outbytes) < 1 << 31
}

/// A service of the `IP_VS_SO_GET_SERVICES` listing: its identity and real-server count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ListedService {
    pub ident: Ident,
    pub num_dests: u32,
}

/// How the sockopt interface names an IPv4 service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Ident {
    Fwmark(u32),
    /// Protocol, address (network order bytes), port.
    Inet(u16, [u8; 4], u16),
}

/// Decodes the filled entries of an `IP_VS_SO_GET_SERVICES` reply. The kernel writes entries
/// from the first on and leaves the rest of the (zeroed) table alone, so an entry is filled
/// when its scheduler name is not empty (the kernel always writes one, "none" included).
/// `None` when the reply looks off: a filled entry after an empty one, a name without NUL.
pub(crate) fn decode_services(buf: &[u8]) -> Option<Vec<ListedService>> {
    let start = offset_of!(GetServices, entrytable);
    let size = size_of::<ServiceEntry>();
    let table = buf.get(start..)?;
    let mut out = Vec::new();
    let mut ended = false;
    for e in table.chunks_exact(size) {
        let name = &e[offset_of!(ServiceEntry, sched_name)..][..16];
        if name[0] == 0 {
            ended = true;
            if e.iter().any(|&b| b != 0) {
                return None;
            }
            continue;
        }
        if ended || !name.contains(&0) {
            return None;
        }
        let fwmark = ne_u32(e, offset_of!(ServiceEntry, fwmark));
        let ident = if fwmark != 0 {
            Ident::Fwmark(fwmark)
        } else {
            Ident::Inet(
                ne_u16(e, offset_of!(ServiceEntry, protocol)),
                addr4(e, offset_of!(ServiceEntry, addr)),
                be_u16(e, offset_of!(ServiceEntry, port)),
            )
        };
        out.push(ListedService {
            ident,
            num_dests: ne_u32(e, offset_of!(ServiceEntry, num_dests)),
        });
    }
    Some(out)
}

/// An `IP_VS_SO_GET_DESTS` request for `ident` with room for `capacity` entries, zeroed.
pub(crate) fn dests_request(ident: Ident, capacity: usize) -> Option<Vec<u8>> {
    let len = size_of::<GetDests>().checked_add(size_of::<DestEntry>().checked_mul(capacity)?)?;
    if len > MAX_REPLY {
        return None;
    }
    let mut buf = vec![0u8; len];
    match ident {
        Ident::Fwmark(m) => {
            let o = offset_of!(GetDests, fwmark);
            buf[o..o + 4].copy_from_slice(&m.to_ne_bytes());
        }
        Ident::Inet(proto, addr, port) => {
            let o = offset_of!(GetDests, protocol);
            buf[o..o + 2].copy_from_slice(&proto.to_ne_bytes());
            let o = offset_of!(GetDests, addr);
            buf[o..o + 4].copy_from_slice(&addr);
            let o = offset_of!(GetDests, port);
            buf[o..o + 2].copy_from_slice(&port.to_be_bytes());
        }
    }
    let o = offset_of!(GetDests, num_dests);
    buf[o..o + 4].copy_from_slice(&u32::try_from(capacity).ok()?.to_ne_bytes());
    Some(buf)
}

/// An `IP_VS_SO_GET_SERVICES` request with room for `capacity` entries, zeroed.
pub(crate) fn services_request(capacity: usize) -> Option<Vec<u8>> {
    let len =
        size_of::<GetServices>().checked_add(size_of::<ServiceEntry>().checked_mul(capacity)?)?;
    if len > MAX_REPLY {
        return None;
    }
    let mut buf = vec![0u8; len];
    let o = offset_of!(GetServices, num_services);
    buf[o..o + 4].copy_from_slice(&u32::try_from(capacity).ok()?.to_ne_bytes());
    Some(buf)
}

/// Decodes the filled entries of an `IP_VS_SO_GET_DESTS` reply as netlink-shaped records (an
/// IPv4 real server's address is never 0.0.0.0, which the kernel refuses, so a zero address
/// marks the end). `None` when the reply looks off (a filled entry after an empty one).
pub(crate) fn decode_dests(buf: &[u8]) -> Option<Vec<DestRaw>> {
    let start = size_of::<GetDests>();
    let size = size_of::<DestEntry>();
    let table = buf.get(start..)?;
    let mut out = Vec::new();
    let mut ended = false;
    for e in table.chunks_exact(size) {
        let a = addr4(e, offset_of!(DestEntry, addr));
        if a == [0; 4] {
            ended = true;
            if e.iter().any(|&b| b != 0) {
                return None;
            }
            continue;
        }
        if ended {
            return None;
        }
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&a);
        let stats = decode_stats(&e[offset_of!(DestEntry, stats)..]);
        out.push(DestRaw {
            addr,
            port: be_u16(e, offset_of!(DestEntry, port)),
            // What netlink's FWD_METHOD carries: conn_flags & IP_VS_CONN_F_FWD_MASK.
            fwd_method: ne_u32(e, offset_of!(DestEntry, conn_flags)) & IP_VS_CONN_F_FWD_MASK,
            weight: ne_u32(e, offset_of!(DestEntry, weight)),
            u_threshold: ne_u32(e, offset_of!(DestEntry, u_threshold)),
            l_threshold: ne_u32(e, offset_of!(DestEntry, l_threshold)),
            addr_family: Some(AF_INET),
            tun_type: None,
            tun_port: None,
            tun_flags: None,
            active_conns: Some(ne_u32(e, offset_of!(DestEntry, activeconns))),
            inact_conns: Some(ne_u32(e, offset_of!(DestEntry, inactconns))),
            persist_conns: Some(ne_u32(e, offset_of!(DestEntry, persistconns))),
            stats: None,
            stats64: Some(stats),
        });
    }
    Some(out)
}

/// A socket to issue `IP_VS_SO_GET_*` on. Any IPv4 socket reaches netfilter's sockopt
/// handlers (`ip_getsockopt` hands unknown options to `nf_getsockopt`), so a UDP socket does
/// and, unlike ipvsadm's raw socket, needs no CAP_NET_RAW. The kernel answers for the network
/// namespace the socket was created in.
#[derive(Debug)]
pub(crate) struct SockoptSocket {
    fd: OwnedFd,
}

impl SockoptSocket {
    pub(crate) fn open() -> io::Result<SockoptSocket> {
        Ok(SockoptSocket { fd: udp_socket()? })
    }

    /// Runs a GET_SERVICES / GET_DESTS request in place; the reply must keep the length.
    pub(crate) fn get(&self, optname: libc::c_int, buf: &mut [u8]) -> io::Result<()> {
        let n = getsockopt_bytes(&self.fd, optname, buf)?;
        if n != buf.len() {
            return Err(io::Error::other(format!(
                "IPVS sockopt {optname} answered {n} bytes, expected {}",
                buf.len()
            )));
        }
        Ok(())
    }
}

/// `socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)`.
#[allow(unsafe_code)]
fn udp_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and touches no memory of ours.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2), is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `getsockopt(fd, IPPROTO_IP, optname, buf, &len)` with `len = buf.len()`: the kernel reads
/// the request from `buf` and writes the reply into it. Returns the length it reports.
#[allow(unsafe_code)]
fn getsockopt_bytes(fd: &OwnedFd, optname: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| io::Error::other("IPVS sockopt buffer too large"))?;
    // SAFETY: `buf` is a live, exclusively borrowed byte slice of exactly `len` bytes and
    // `len` is a live local; the kernel reads and writes at most `len` bytes of `buf` during
    // the call and stores the reply length in `len`. Any byte pattern is a valid `u8`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            optname,
            buf.as_mut_ptr().cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(len as usize)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The C layout of `linux/ip_vs.h`, worked out by hand for LP64 targets (u64 aligned to
    /// 8): stats_user 4+4+4+pad4+8+8+4*5 = 52, padded to 56.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn layout_matches_c_on_64_bit() {
        assert_eq!(offset_of!(StatsUser, conns), 0);
        assert_eq!(offset_of!(StatsUser, inpkts), 4);
        assert_eq!(offset_of!(StatsUser, outpkts), 8);
        assert_eq!(offset_of!(StatsUser, inbytes), 16);
        assert_eq!(offset_of!(StatsUser, outbytes), 24);
        assert_eq!(offset_of!(StatsUser, cps), 32);
        assert_eq!(offset_of!(StatsUser, inpps), 36);
        assert_eq!(offset_of!(StatsUser, outpps), 40);
        assert_eq!(offset_of!(StatsUser, inbps), 44);
        assert_eq!(offset_of!(StatsUser, outbps), 48);
        assert_eq!(size_of::<StatsUser>(), 56);

        assert_eq!(offset_of!(ServiceEntry, protocol), 0);
        assert_eq!(offset_of!(ServiceEntry, addr), 4);
        assert_eq!(offset_of!(ServiceEntry, port), 8);
        assert_eq!(offset_of!(ServiceEntry, fwmark), 12);
        assert_eq!(offset_of!(ServiceEntry, sched_name), 16);
        assert_eq!(offset_of!(ServiceEntry, flags), 32);
        assert_eq!(offset_of!(ServiceEntry, timeout), 36);
        assert_eq!(offset_of!(ServiceEntry, netmask), 40);
        assert_eq!(offset_of!(ServiceEntry, num_dests), 44);
        assert_eq!(offset_of!(ServiceEntry, stats), 48);
        assert_eq!(size_of::<ServiceEntry>(), 104);

        assert_eq!(offset_of!(DestEntry, addr), 0);
        assert_eq!(offset_of!(DestEntry, port), 4);
        assert_eq!(offset_of!(DestEntry, conn_flags), 8);
        assert_eq!(offset_of!(DestEntry, weight), 12);
        assert_eq!(offset_of!(DestEntry, u_threshold), 16);
        assert_eq!(offset_of!(DestEntry, l_threshold), 20);
        assert_eq!(offset_of!(DestEntry, activeconns), 24);
        assert_eq!(offset_of!(DestEntry, inactconns), 28);
        assert_eq!(offset_of!(DestEntry, persistconns), 32);
        assert_eq!(offset_of!(DestEntry, stats), 40);
        assert_eq!(size_of::<DestEntry>(), 96);

        // The flexible tables start at the entries' alignment (8).
        assert_eq!(offset_of!(GetServices, entrytable), 8);
        assert_eq!(size_of::<GetServices>(), 8);
        assert_eq!(offset_of!(GetDests, protocol), 0);
        assert_eq!(offset_of!(GetDests, addr), 4);
        assert_eq!(offset_of!(GetDests, port), 8);
        assert_eq!(offset_of!(GetDests, fwmark), 12);
        assert_eq!(offset_of!(GetDests, num_dests), 16);
        assert_eq!(offset_of!(GetDests, entrytable), 24);
        assert_eq!(size_of::<GetDests>(), 24);
    }

    /// i386: u64 aligned to 4 inside structs, so no padding before the byte counters.
    #[cfg(all(target_pointer_width = "32", target_arch = "x86"))]
    #[test]
    fn layout_matches_c_on_i386() {
        assert_eq!(offset_of!(StatsUser, inbytes), 12);
        assert_eq!(size_of::<StatsUser>(), 48);
        assert_eq!(size_of::<ServiceEntry>(), 96);
        assert_eq!(size_of::<DestEntry>(), 84);
        assert_eq!(size_of::<GetDests>(), 20);
        assert_eq!(size_of::<GetServices>(), 4);
    }

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn stats_bytes(base: u32) -> Vec<u8> {
        let mut b = vec![0u8; size_of::<StatsUser>()];
        put(&mut b, offset_of!(StatsUser, conns), &base.to_ne_bytes());
        put(
            &mut b,
            offset_of!(StatsUser, inpkts),
            &(base + 1).to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(StatsUser, outpkts),
            &(base + 2).to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(StatsUser, inbytes),
            &(u64::from(base) + (5 << 32)).to_ne_bytes(),
        );
        put(&mut b, offset_of!(StatsUser, outbytes), &7u64.to_ne_bytes());
        put(
            &mut b,
            offset_of!(StatsUser, cps),
            &(base + 3).to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(StatsUser, inpps),
            &(base + 4).to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(StatsUser, outpps),
            &(base + 5).to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(StatsUser, inbps),
            &(base + 6).to_ne_bytes(),
        );
        put(
            &mut b,
            offset_of!(StatsUser, outbps),
            &(base + 7).to_ne_bytes(),
        );
        b
    }

    #[test]
    fn stats_decode_every_field() {
        let s = decode_stats(&stats_bytes(100));
        assert_eq!(
            s,
            StatsRaw {
                conns: 100,
                inpkts: 101,
                outpkts: 102,
                inbytes: 100 + (5 << 32),
                outbytes: 7,
                cps: 103,
                inpps: 104,
                outpps: 105,
                inbps: 106,
                outbps: 107,
            }
        );
        assert!(
            !stats_exact(&s),
            "bytes past 2^31: 32-bit fields may have wrapped"
        );
        assert!(stats_exact(&StatsRaw {
            inbytes: (1 << 30),
            outbytes: (1 << 30) - 1,
            ..s
        }));
        assert!(!stats_exact(&StatsRaw {
            inbytes: 1 << 30,
            outbytes: 1 << 30,
            ..s
        }));
        assert!(!stats_exact(&StatsRaw {
            inbytes: u64::MAX,
            outbytes: u64::MAX,
            ..s
        }));
    }

    fn dest_entry(addr: [u8; 4], port: u16, conn_flags: u32, weight: i32, n: u32) -> Vec<u8> {
        let mut e = vec![0u8; size_of::<DestEntry>()];
        put(&mut e, offset_of!(DestEntry, addr), &addr);
        put(&mut e, offset_of!(DestEntry, port), &port.to_be_bytes());
        put(
            &mut e,
            offset_of!(DestEntry, conn_flags),
            &conn_flags.to_ne_bytes(),
        );
        put(&mut e, offset_of!(DestEntry, weight), &weight.to_ne_bytes());
        put(
            &mut e,
            offset_of!(DestEntry, u_threshold),
            &(n * 10).to_ne_bytes(),
        );
        put(&mut e, offset_of!(DestEntry, l_threshold), &n.to_ne_bytes());
        put(
            &mut e,
            offset_of!(DestEntry, activeconns),
            &(n + 1).to_ne_bytes(),
        );
        put(
            &mut e,
            offset_of!(DestEntry, inactconns),
            &(n + 2).to_ne_bytes(),
        );
        put(
            &mut e,
            offset_of!(DestEntry, persistconns),
            &(n + 3).to_ne_bytes(),
        );
        put(&mut e, offset_of!(DestEntry, stats), &stats_bytes(n * 1000));
        e
    }

    #[test]
    fn dests_request_and_reply() {
        let ident = Ident::Inet(6, [10, 0, 0, 100], 80);
        let mut buf = dests_request(ident, 3).unwrap();
        assert_eq!(
            buf.len(),
            size_of::<GetDests>() + 3 * size_of::<DestEntry>()
        );
        // Header as ip_vs.h has it: host-order protocol, network-order addr and port.
        assert_eq!(
            &buf[offset_of!(GetDests, protocol)..][..2],
            &6u16.to_ne_bytes()
        );
        assert_eq!(&buf[offset_of!(GetDests, addr)..][..4], &[10, 0, 0, 100]);
        assert_eq!(&buf[offset_of!(GetDests, port)..][..2], &[0, 80]);
        assert_eq!(
            &buf[offset_of!(GetDests, num_dests)..][..4],
            &3u32.to_ne_bytes()
        );
        assert_eq!(decode_dests(&buf).unwrap(), vec![]);

        // The kernel fills two entries: NAT with the ONE_PACKET and INACTIVE bits, DR.
        let h = size_of::<GetDests>();
        let e1 = dest_entry([10, 0, 0, 11], 8080, 0x2000 | 0x0100, 5, 1);
        let e2 = dest_entry([10, 0, 0, 12], 0, 3, 0, 2);
        put(&mut buf, h, &e1);
        put(&mut buf, h + size_of::<DestEntry>(), &e2);
        let d = decode_dests(&buf).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].ip(AF_INET), Some("10.0.0.11".parse().unwrap()));
        assert_eq!(d[0].port, 8080);
        assert_eq!(d[0].fwd_method, 0, "masked to the forwarding method");
        assert_eq!(d[0].weight, 5);
        assert_eq!((d[0].u_threshold, d[0].l_threshold), (10, 1));
        assert_eq!(
            (d[0].active_conns, d[0].inact_conns, d[0].persist_conns),
            (Some(2), Some(3), Some(4))
        );
        assert_eq!(d[0].best_stats().unwrap().conns, 1000);
        assert_eq!(d[0].best_stats().unwrap().outbps, 1007);
        assert_eq!(d[1].port, 0);
        assert_eq!(d[1].fwd_method, 3);
        assert_eq!(d[1].weight, 0);
        assert_eq!(d[1].best_stats().unwrap().inpkts, 2001);

        // A filled entry after an empty one, or garbage in an empty one: not trusted.
        let mut gap = dests_request(ident, 3).unwrap();
        put(&mut gap, h + size_of::<DestEntry>(), &e1);
        assert_eq!(decode_dests(&gap), None);
        let mut junk = dests_request(ident, 2).unwrap();
        junk[h + 20] = 1;
        assert_eq!(decode_dests(&junk), None);

        let fw = dests_request(Ident::Fwmark(7), 1).unwrap();
        assert_eq!(
            &fw[offset_of!(GetDests, fwmark)..][..4],
            &7u32.to_ne_bytes()
        );
        assert_eq!(&fw[..4], &[0; 4]);
        assert_eq!(dests_request(ident, usize::MAX), None);
        assert_eq!(dests_request(ident, MAX_REPLY), None);
    }

    fn service_entry(proto: u16, addr: [u8; 4], port: u16, fwmark: u32, n: u32) -> Vec<u8> {
        let mut e = vec![0u8; size_of::<ServiceEntry>()];
        put(
            &mut e,
            offset_of!(ServiceEntry, protocol),
            &proto.to_ne_bytes(),
        );
        put(&mut e, offset_of!(ServiceEntry, addr), &addr);
        put(&mut e, offset_of!(ServiceEntry, port), &port.to_be_bytes());
        put(
            &mut e,
            offset_of!(ServiceEntry, fwmark),
            &fwmark.to_ne_bytes(),
        );
        put(&mut e, offset_of!(ServiceEntry, sched_name), b"wlc\0");
        put(&mut e, offset_of!(ServiceEntry, flags), &2u32.to_ne_bytes());
        put(
            &mut e,
            offset_of!(ServiceEntry, num_dests),
            &n.to_ne_bytes(),
        );
        put(&mut e, offset_of!(ServiceEntry, stats), &stats_bytes(9));
        e
    }

    #[test]
    fn services_request_and_reply() {
        let mut buf = services_request(3).unwrap();
        assert_eq!(buf.len(), 8 + 3 * size_of::<ServiceEntry>());
        assert_eq!(&buf[..4], &3u32.to_ne_bytes());
        assert_eq!(decode_services(&buf).unwrap(), vec![]);
        let h = size_of::<GetServices>();
        put(&mut buf, h, &service_entry(6, [10, 0, 0, 100], 443, 0, 10));
        put(
            &mut buf,
            h + size_of::<ServiceEntry>(),
            &service_entry(6, [0; 4], 0, 42, 0),
        );
        assert_eq!(
            decode_services(&buf).unwrap(),
            vec![
                ListedService {
                    ident: Ident::Inet(6, [10, 0, 0, 100], 443),
                    num_dests: 10
                },
                ListedService {
                    ident: Ident::Fwmark(42),
                    num_dests: 0
                },
            ]
        );
        // A scheduler name that fills all 16 bytes (no NUL) is not what the kernel writes.
        let mut odd = services_request(1).unwrap();
        let mut e = service_entry(17, [10, 0, 0, 1], 53, 0, 1);
        put(&mut e, offset_of!(ServiceEntry, sched_name), &[b'x'; 16]);
        put(&mut odd, h, &e);
        assert_eq!(decode_services(&odd), None);
        let mut gap = services_request(2).unwrap();
        put(
            &mut gap,
            h + size_of::<ServiceEntry>(),
            &service_entry(17, [10, 0, 0, 1], 53, 0, 1),
        );
        assert_eq!(decode_services(&gap), None);
    }

    #[test]
    fn commands_are_ip_vs_base_ctl_plus_n() {
        assert_eq!(IP_VS_BASE_CTL, 1152);
        assert_eq!(IP_VS_SO_GET_SERVICES, 1154);
        assert_eq!(IP_VS_SO_GET_DESTS, 1156);
    }
}
