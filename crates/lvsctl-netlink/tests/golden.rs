//! Byte-level fixtures: every IPVS command and attribute, written out by hand from
//! `include/uapi/linux/ip_vs.h` and `ip_vs_ctl.c` (what the kernel sends: `ip_vs_genl_fill_*`),
//! one comment per field. Requests are checked byte for byte against what lvsctl emits; kernel
//! messages are parsed, checked field by field, and re-emitted to the same bytes.
//!
//! Host-order fields are little-endian here (x86_64), so the file only runs on little-endian.
#![cfg(target_endian = "little")]
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use lvsctl_netlink::constants::*;
use lvsctl_netlink::*;

/// The IPVS family id used in the fixtures (dynamic in reality).
const FAMILY: u16 = 0x24;

/// Hex bytes with `//` comments, whitespace ignored.
fn hex(s: &str) -> Vec<u8> {
    let digits: String = s
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

const REQ_ACK: u16 = 0x0005; // NLM_F_REQUEST | NLM_F_ACK
const REQ_DUMP: u16 = 0x0301; // NLM_F_REQUEST | NLM_F_DUMP (ROOT|MATCH)

fn encode(flags: u16, seq: u32, msg: IpvsMessage) -> Vec<u8> {
    let mut buf = Vec::new();
    let n = encode_ipvs(&mut buf, FAMILY, flags, seq, msg);
    assert_eq!(n, buf.len());
    buf
}

/// Like [`encode`], with the sender's port id the kernel puts into its messages.
fn encode_from(flags: u16, seq: u32, pid: u32, msg: IpvsMessage) -> Vec<u8> {
    let mut buf = encode(flags, seq, msg);
    buf[12..16].copy_from_slice(&pid.to_ne_bytes());
    buf
}

/// Decodes one IPVS message and checks header fields.
fn decode(bytes: &[u8], want_seq: u32, want_flags: u16) -> IpvsMessage {
    let mut it = decode_datagram(bytes, FAMILY);
    let first = it.next().unwrap().unwrap();
    assert!(it.next().is_none(), "one message expected");
    match first {
        Incoming::Ipvs { seq, flags, msg } => {
            assert_eq!(seq, want_seq);
            assert_eq!(flags, want_flags);
            msg
        }
        other => panic!("not an IPVS message: {other:?}"),
    }
}

/// Emits `req`, compares with the fixture, and parses the fixture back into the same message.
fn check_request(req: &IpvsRequest, flags: u16, seq: u32, fixture: &str) {
    let want = hex(fixture);
    let got = encode(flags, seq, req.to_message());
    assert_eq!(
        got, want,
        "emitted bytes differ from the fixture for {req:?}"
    );
    assert_eq!(decode(&want, seq, flags), req.to_message());
}

/// Parses a kernel message fixture and checks that re-emitting it gives the same bytes.
fn check_kernel(fixture: &str, seq: u32, flags: u16) -> IpvsMessage {
    let bytes = hex(fixture);
    let msg = decode(&bytes, seq, flags);
    let pid = u32::from_ne_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    assert_eq!(
        encode_from(flags, seq, pid, msg.clone()),
        bytes,
        "re-emitted bytes differ"
    );
    msg
}

fn tcp_service() -> ServiceRaw {
    ServiceRaw {
        af: AF_INET,
        protocol: 6,
        addr: addr_to_raw(Ipv4Addr::new(10, 0, 0, 100).into()),
        port: 80,
        sched_name: "wlc".into(),
        flags: 0,
        mask: IP_VS_SVC_F_CONFIG_MASK,
        timeout: 0,
        netmask: Netmask::from_v4_prefix(32),
        ..ServiceRaw::default()
    }
}

// NEW_SERVICE tcp/10.0.0.100:80, scheduler wlc, not persistent.
const NEW_SERVICE: &str = "
    68 00 00 00             // nlmsg_len = 104
    24 00                   // nlmsg_type = 0x24 (the resolved IPVS family id)
    05 00                   // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK
    01 00 00 00             // nlmsg_seq = 1
    00 00 00 00             // nlmsg_pid = 0 (the kernel fills in the sender)
    01 01 00 00             // genl: cmd = IPVS_CMD_NEW_SERVICE (1), version = 1, reserved
    54 00 01 00             // IPVS_CMD_ATTR_SERVICE len=84 type=1 (nest, no NLA_F_NESTED)
      06 00 01 00 02 00 00 00   // IPVS_SVC_ATTR_AF len=6 type=1 value=2 (AF_INET, host order) + pad
      06 00 02 00 06 00 00 00   // IPVS_SVC_ATTR_PROTOCOL len=6 type=2 value=6 (TCP, host order) + pad
      14 00 03 00               // IPVS_SVC_ATTR_ADDR len=20 type=3
        0a 00 00 64 00 00 00 00 00 00 00 00 00 00 00 00  // 10.0.0.100 in a zeroed 16-byte nf_inet_addr
      06 00 04 00 00 50 00 00   // IPVS_SVC_ATTR_PORT len=6 type=4 value=0x0050 (80, network order) + pad
      08 00 06 00 77 6c 63 00   // IPVS_SVC_ATTR_SCHED_NAME len=8 type=6 \"wlc\\0\"
      0c 00 07 00               // IPVS_SVC_ATTR_FLAGS len=12 type=7
        00 00 00 00             //   flags = 0 (host order)
        3d 00 00 00             //   mask = PERSISTENT|ONEPACKET|SCHED1|SCHED2|SCHED3 (HASHED left alone)
      08 00 08 00 00 00 00 00   // IPVS_SVC_ATTR_TIMEOUT len=8 type=8 value=0 s
      08 00 09 00 ff ff ff ff   // IPVS_SVC_ATTR_NETMASK len=8 type=9 255.255.255.255 (network order)
";

#[test]
fn new_service() {
    check_request(
        &IpvsRequest::NewService(tcp_service()),
        REQ_ACK,
        1,
        NEW_SERVICE,
    );
}

// SET_SERVICE udp/[2001:db8::1]:53: rr, persistent 300 s with /64, one-packet, PE "sip".
const SET_SERVICE_V6: &str = "
    70 00 00 00             // nlmsg_len = 112
    24 00 05 00             // type = IPVS family, flags = REQUEST|ACK
    02 00 00 00 00 00 00 00 // seq = 2, pid = 0
    02 01 00 00             // genl: cmd = IPVS_CMD_SET_SERVICE (2), version 1
    5c 00 01 00             // IPVS_CMD_ATTR_SERVICE len=92
      06 00 01 00 0a 00 00 00   // IPVS_SVC_ATTR_AF = 10 (AF_INET6)
      06 00 02 00 11 00 00 00   // IPVS_SVC_ATTR_PROTOCOL = 17 (UDP)
      14 00 03 00               // IPVS_SVC_ATTR_ADDR len=20
        20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01  // 2001:db8::1
      06 00 04 00 00 35 00 00   // IPVS_SVC_ATTR_PORT = 0x0035 (53, network order)
      07 00 06 00 72 72 00 00   // IPVS_SVC_ATTR_SCHED_NAME len=7 \"rr\\0\" + 1 pad byte
      08 00 0b 00 73 69 70 00   // IPVS_SVC_ATTR_PE_NAME len=8 type=11 \"sip\\0\"
      0c 00 07 00               // IPVS_SVC_ATTR_FLAGS len=12
        05 00 00 00             //   flags = PERSISTENT (0x1) | ONEPACKET (0x4)
        3d 00 00 00             //   mask = the config bits
      08 00 08 00 2c 01 00 00   // IPVS_SVC_ATTR_TIMEOUT = 300 s (host order)
      08 00 09 00 40 00 00 00   // IPVS_SVC_ATTR_NETMASK = prefix length 64 as a host-order u32 (IPv6)
";

#[test]
fn set_service_ipv6_persistent_with_pe() {
    let svc = ServiceRaw {
        af: AF_INET6,
        protocol: 17,
        addr: addr_to_raw("2001:db8::1".parse::<Ipv6Addr>().unwrap().into()),
        port: 53,
        sched_name: "rr".into(),
        pe_name: Some("sip".into()),
        flags: IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_ONEPACKET,
        mask: IP_VS_SVC_F_CONFIG_MASK,
        timeout: 300,
        netmask: Netmask::from_v6_prefix(64),
        ..ServiceRaw::default()
    };
    check_request(&IpvsRequest::SetService(svc), REQ_ACK, 2, SET_SERVICE_V6);
}

// DEL_SERVICE fwmark 10 (IPv4): identity only.
const DEL_SERVICE_FWMARK: &str = "
    28 00 00 00 24 00 05 00 03 00 00 00 00 00 00 00   // nlmsghdr: len=40, IPVS, REQUEST|ACK, seq=3
    03 01 00 00                 // genl: cmd = IPVS_CMD_DEL_SERVICE (3)
    14 00 01 00                 // IPVS_CMD_ATTR_SERVICE len=20
      06 00 01 00 02 00 00 00   // IPVS_SVC_ATTR_AF = 2
      08 00 05 00 0a 00 00 00   // IPVS_SVC_ATTR_FWMARK len=8 type=5 value=10 (host order)
";

fn fwmark_service() -> ServiceRaw {
    ServiceRaw {
        af: AF_INET,
        fwmark: 10,
        sched_name: "rr".into(),
        ..ServiceRaw::default()
    }
}

#[test]
fn del_service_fwmark() {
    check_request(
        &IpvsRequest::DelService(fwmark_service()),
        REQ_ACK,
        3,
        DEL_SERVICE_FWMARK,
    );
}

// GET_SERVICE dump request: no attributes.
const GET_SERVICE_DUMP: &str = "
    14 00 00 00             // nlmsg_len = 20
    24 00                   // type = IPVS family
    01 03                   // flags = NLM_F_REQUEST | NLM_F_DUMP (0x300)
    04 00 00 00 00 00 00 00 // seq = 4, pid = 0
    04 01 00 00             // genl: cmd = IPVS_CMD_GET_SERVICE (4), version 1
";

#[test]
fn get_service_dump() {
    let want = hex(GET_SERVICE_DUMP);
    assert_eq!(encode(REQ_DUMP, 4, IpvsMessage::dump_services()), want);
    assert_eq!(decode(&want, 4, REQ_DUMP), IpvsMessage::dump_services());
}

// GET_SERVICE as a doit: one service by identity (port 0 catch-all).
const GET_SERVICE_ONE: &str = "
    44 00 00 00 24 00 01 00 05 00 00 00 00 00 00 00   // len=68, IPVS, NLM_F_REQUEST, seq=5
    04 01 00 00                 // genl: IPVS_CMD_GET_SERVICE
    30 00 01 00                 // IPVS_CMD_ATTR_SERVICE len=48
      06 00 01 00 02 00 00 00   // AF = 2
      06 00 02 00 06 00 00 00   // PROTOCOL = 6
      14 00 03 00 c0 a8 06 65 00 00 00 00 00 00 00 00 00 00 00 00  // ADDR 192.168.6.101
      06 00 04 00 00 00 00 00   // PORT = 0 (every port; persistent services only)
";

#[test]
fn get_service_one() {
    let svc = ServiceRaw {
        af: AF_INET,
        protocol: 6,
        addr: addr_to_raw(Ipv4Addr::new(192, 168, 6, 101).into()),
        port: 0,
        ..ServiceRaw::default()
    };
    let want = hex(GET_SERVICE_ONE);
    assert_eq!(encode(0x0001, 5, IpvsMessage::get_service(&svc)), want);
    assert_eq!(decode(&want, 5, 0x0001), IpvsMessage::get_service(&svc));
}

const SERVICE_DUMP_ITEM: &str = "
    68 01 00 00  // nlmsg_len = 360
    24 00 02 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_MULTI
    07 00 00 00 39 30 00 00  // nlmsg_seq = 7, nlmsg_pid = 12345
    01 01 00 00  // genl: cmd = IPVS_CMD_NEW_SERVICE, as for every dump item (1), version = 1, reserved
      54 01 01 00  // IPVS_CMD_ATTR_SERVICE len=340 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 02 00 00 00  // IPVS_SVC_ATTR_AF = 2 (AF_INET) len=6 type=1
        06 00 02 00 06 00 00 00  // IPVS_SVC_ATTR_PROTOCOL = 6 (TCP) len=6 type=2
        14 00 03 00 0a 00 00 64 00 00 00 00 00 00 00 00 00 00 00 00  // IPVS_SVC_ATTR_ADDR = 10.0.0.100, always 16 bytes out len=20 type=3
        06 00 04 00 00 50 00 00  // IPVS_SVC_ATTR_PORT = 0x0050 (80, network order) len=6 type=4
        08 00 06 00 77 6c 63 00  // IPVS_SVC_ATTR_SCHED_NAME = \"wlc\" len=8 type=6
        0c 00 07 00 03 00 00 00 ff ff ff ff  // IPVS_SVC_ATTR_FLAGS = {flags PERSISTENT|HASHED (0x3), mask ~0} len=12 type=7
        08 00 08 00 68 01 00 00  // IPVS_SVC_ATTR_TIMEOUT = 360 s len=8 type=8
        08 00 09 00 ff ff ff 00  // IPVS_SVC_ATTR_NETMASK = 255.255.255.0 (network order) len=8 type=9
        60 00 0a 00  // IPVS_SVC_ATTR_STATS (u32 counters, u64 bytes) len=96 type=10 (nest without NLA_F_NESTED)
          08 00 01 00 65 00 00 00  // IPVS_STATS_ATTR_CONNS = 101 (u32) len=8 type=1
          08 00 02 00 66 00 00 00  // IPVS_STATS_ATTR_INPKTS = 102 (u32) len=8 type=2
          08 00 03 00 67 00 00 00  // IPVS_STATS_ATTR_OUTPKTS = 103 (u32) len=8 type=3
          0c 00 04 00 68 00 00 00 01 00 00 00  // IPVS_STATS_ATTR_INBYTES = 2^32+104 len=12 type=4 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 05 00 69 00 00 00 02 00 00 00  // IPVS_STATS_ATTR_OUTBYTES = 2^33+105 len=12 type=5 u64
          08 00 06 00 6a 00 00 00  // IPVS_STATS_ATTR_CPS = 106 (u32) len=8 type=6
          08 00 07 00 6b 00 00 00  // IPVS_STATS_ATTR_INPPS = 107 (u32) len=8 type=7
          08 00 08 00 6c 00 00 00  // IPVS_STATS_ATTR_OUTPPS = 108 (u32) len=8 type=8
          08 00 09 00 6d 00 00 00  // IPVS_STATS_ATTR_INBPS = 109 (u32) len=8 type=9
          08 00 0a 00 6e 00 00 00  // IPVS_STATS_ATTR_OUTBPS = 110 (u32) len=8 type=10
        a0 00 0c 00  // IPVS_SVC_ATTR_STATS64 (all u64) len=160 type=12 (nest without NLA_F_NESTED)
          0c 00 01 00 e9 03 00 00 00 01 00 00  // IPVS_STATS_ATTR_CONNS = 1099511628777 len=12 type=1 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 02 00 ea 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_INPKTS = 1002 len=12 type=2 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 03 00 eb 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTPKTS = 1003 len=12 type=3 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 04 00 ec 03 00 00 00 01 00 00  // IPVS_STATS_ATTR_INBYTES = 1099511628780 len=12 type=4 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 05 00 ed 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTBYTES = 1005 len=12 type=5 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 06 00 ee 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_CPS = 1006 len=12 type=6 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 07 00 ef 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_INPPS = 1007 len=12 type=7 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 08 00 f0 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTPPS = 1008 len=12 type=8 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 09 00 f1 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_INBPS = 1009 len=12 type=9 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 0a 00 f2 03 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTBPS = 1010 len=12 type=10 u64
";

const SERVICE_DUMP_FWMARK6: &str = "
    58 01 00 00  // nlmsg_len = 344
    24 00 02 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_MULTI
    07 00 00 00 39 30 00 00  // nlmsg_seq = 7, nlmsg_pid = 12345
    01 01 00 00  // genl: cmd = IPVS_CMD_NEW_SERVICE (1), version = 1, reserved
      44 01 01 00  // IPVS_CMD_ATTR_SERVICE len=324 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 0a 00 00 00  // IPVS_SVC_ATTR_AF = 10 (AF_INET6) len=6 type=1
        08 00 05 00 0a 00 00 00  // IPVS_SVC_ATTR_FWMARK = 10 (no PROTOCOL/ADDR/PORT for fwmark services) len=8 type=5
        09 00 06 00 6e 6f 6e 65 00 00 00 00  // IPVS_SVC_ATTR_SCHED_NAME = \"none\" (no scheduler bound) len=9 type=6
        08 00 0b 00 73 69 70 00  // IPVS_SVC_ATTR_PE_NAME = \"sip\" len=8 type=11
        0c 00 07 00 1b 00 00 00 ff ff ff ff  // IPVS_SVC_ATTR_FLAGS = {PERSISTENT|HASHED|SCHED1|SCHED2 (0x1b), ~0} len=12 type=7
        08 00 08 00 80 51 01 00  // IPVS_SVC_ATTR_TIMEOUT = 86400 s len=8 type=8
        08 00 09 00 30 00 00 00  // IPVS_SVC_ATTR_NETMASK = 48 (IPv6 prefix length, host order) len=8 type=9
        60 00 0a 00  // IPVS_SVC_ATTR_STATS len=96 type=10 (nest without NLA_F_NESTED)
          08 00 01 00 01 00 00 00  // IPVS_STATS_ATTR_CONNS = 1 (u32) len=8 type=1
          08 00 02 00 02 00 00 00  // IPVS_STATS_ATTR_INPKTS = 2 (u32) len=8 type=2
          08 00 03 00 03 00 00 00  // IPVS_STATS_ATTR_OUTPKTS = 3 (u32) len=8 type=3
          0c 00 04 00 04 00 00 00 01 00 00 00  // IPVS_STATS_ATTR_INBYTES = 2^32+4 len=12 type=4 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 05 00 05 00 00 00 02 00 00 00  // IPVS_STATS_ATTR_OUTBYTES = 2^33+5 len=12 type=5 u64
          08 00 06 00 06 00 00 00  // IPVS_STATS_ATTR_CPS = 6 (u32) len=8 type=6
          08 00 07 00 07 00 00 00  // IPVS_STATS_ATTR_INPPS = 7 (u32) len=8 type=7
          08 00 08 00 08 00 00 00  // IPVS_STATS_ATTR_OUTPPS = 8 (u32) len=8 type=8
          08 00 09 00 09 00 00 00  // IPVS_STATS_ATTR_INBPS = 9 (u32) len=8 type=9
          08 00 0a 00 0a 00 00 00  // IPVS_STATS_ATTR_OUTBPS = 10 (u32) len=8 type=10
        a0 00 0c 00  // IPVS_SVC_ATTR_STATS64 len=160 type=12 (nest without NLA_F_NESTED)
          0c 00 01 00 01 00 00 00 00 01 00 00  // IPVS_STATS_ATTR_CONNS = 1099511627777 len=12 type=1 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 02 00 02 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_INPKTS = 2 len=12 type=2 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 03 00 03 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTPKTS = 3 len=12 type=3 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 04 00 04 00 00 00 00 01 00 00  // IPVS_STATS_ATTR_INBYTES = 1099511627780 len=12 type=4 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 05 00 05 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTBYTES = 5 len=12 type=5 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 06 00 06 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_CPS = 6 len=12 type=6 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 07 00 07 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_INPPS = 7 len=12 type=7 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 08 00 08 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTPPS = 8 len=12 type=8 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 09 00 09 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_INBPS = 9 len=12 type=9 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 0a 00 0a 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTBPS = 10 len=12 type=10 u64
";

const DEST_DUMP_ITEM: &str = "
    90 01 00 00  // nlmsg_len = 400
    24 00 02 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_MULTI
    08 00 00 00 39 30 00 00  // nlmsg_seq = 8, nlmsg_pid = 12345
    05 01 00 00  // genl: cmd = IPVS_CMD_NEW_DEST, as for every dest dump item (5), version = 1, reserved
      7c 01 02 00  // IPVS_CMD_ATTR_DEST len=380 type=2 (nest without NLA_F_NESTED)
        14 00 01 00 0a 00 00 0b 00 00 00 00 00 00 00 00 00 00 00 00  // IPVS_DEST_ATTR_ADDR = 10.0.0.11 len=20 type=1
        06 00 02 00 1f 90 00 00  // IPVS_DEST_ATTR_PORT = 0x1f90 (8080, network order) len=6 type=2
        08 00 03 00 02 00 00 00  // IPVS_DEST_ATTR_FWD_METHOD = 2 (IP_VS_CONN_F_TUNNEL) len=8 type=3
        08 00 04 00 64 00 00 00  // IPVS_DEST_ATTR_WEIGHT = 100 len=8 type=4
        05 00 0d 00 01 00 00 00  // IPVS_DEST_ATTR_TUN_TYPE = 1 (GUE) u8 len=5 type=13
        06 00 0e 00 17 c0 00 00  // IPVS_DEST_ATTR_TUN_PORT = 0x17c0 (6080, network order) len=6 type=14
        06 00 0f 00 03 00 00 00  // IPVS_DEST_ATTR_TUN_FLAGS = CSUM|REMCSUM (3, host order) len=6 type=15
        08 00 05 00 e8 03 00 00  // IPVS_DEST_ATTR_U_THRESH = 1000 len=8 type=5
        08 00 06 00 ee 02 00 00  // IPVS_DEST_ATTR_L_THRESH = 750 len=8 type=6
        08 00 07 00 07 00 00 00  // IPVS_DEST_ATTR_ACTIVE_CONNS = 7 len=8 type=7
        08 00 08 00 08 00 00 00  // IPVS_DEST_ATTR_INACT_CONNS = 8 len=8 type=8
        08 00 09 00 09 00 00 00  // IPVS_DEST_ATTR_PERSIST_CONNS = 9 len=8 type=9
        06 00 0b 00 02 00 00 00  // IPVS_DEST_ATTR_ADDR_FAMILY = 2 (AF_INET) len=6 type=11
        64 00 0a 00  // IPVS_DEST_ATTR_STATS len=100 type=10 (nest without NLA_F_NESTED)
          08 00 01 00 0b 00 00 00  // IPVS_STATS_ATTR_CONNS = 11 (u32) len=8 type=1
          08 00 02 00 0c 00 00 00  // IPVS_STATS_ATTR_INPKTS = 12 (u32) len=8 type=2
          08 00 03 00 0d 00 00 00  // IPVS_STATS_ATTR_OUTPKTS = 13 (u32) len=8 type=3
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 04 00 0e 00 00 00 01 00 00 00  // IPVS_STATS_ATTR_INBYTES = 2^32+14 len=12 type=4 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 05 00 0f 00 00 00 02 00 00 00  // IPVS_STATS_ATTR_OUTBYTES = 2^33+15 len=12 type=5 u64
          08 00 06 00 10 00 00 00  // IPVS_STATS_ATTR_CPS = 16 (u32) len=8 type=6
          08 00 07 00 11 00 00 00  // IPVS_STATS_ATTR_INPPS = 17 (u32) len=8 type=7
          08 00 08 00 12 00 00 00  // IPVS_STATS_ATTR_OUTPPS = 18 (u32) len=8 type=8
          08 00 09 00 13 00 00 00  // IPVS_STATS_ATTR_INBPS = 19 (u32) len=8 type=9
          08 00 0a 00 14 00 00 00  // IPVS_STATS_ATTR_OUTBPS = 20 (u32) len=8 type=10
        a0 00 0c 00  // IPVS_DEST_ATTR_STATS64 len=160 type=12 (nest without NLA_F_NESTED)
          0c 00 01 00 15 00 00 00 00 01 00 00  // IPVS_STATS_ATTR_CONNS = 1099511627797 len=12 type=1 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 02 00 16 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_INPKTS = 22 len=12 type=2 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 03 00 17 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTPKTS = 23 len=12 type=3 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 04 00 18 00 00 00 00 01 00 00  // IPVS_STATS_ATTR_INBYTES = 1099511627800 len=12 type=4 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 05 00 19 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTBYTES = 25 len=12 type=5 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 06 00 1a 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_CPS = 26 len=12 type=6 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 07 00 1b 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_INPPS = 27 len=12 type=7 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 08 00 1c 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTPPS = 28 len=12 type=8 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 09 00 1d 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_INBPS = 29 len=12 type=9 u64
          04 00 0b 00  // IPVS_STATS_ATTR_PAD len=4 type=11 (aligns the next u64 value)
          0c 00 0a 00 1e 00 00 00 00 00 00 00  // IPVS_STATS_ATTR_OUTBPS = 30 len=12 type=10 u64
";

const NEW_DEST: &str = "
    8c 00 00 00  // nlmsg_len = 140
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    09 00 00 00 00 00 00 00  // nlmsg_seq = 9, nlmsg_pid = 0
    05 01 00 00  // genl: cmd = IPVS_CMD_NEW_DEST (5), version = 1, reserved
      30 00 01 00  // IPVS_CMD_ATTR_SERVICE (identity only) len=48 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 02 00 00 00  // IPVS_SVC_ATTR_AF = 2 len=6 type=1
        06 00 02 00 06 00 00 00  // IPVS_SVC_ATTR_PROTOCOL = 6 len=6 type=2
        14 00 03 00 0a 00 00 64 00 00 00 00 00 00 00 00 00 00 00 00  // IPVS_SVC_ATTR_ADDR = 10.0.0.100 len=20 type=3
        06 00 04 00 00 50 00 00  // IPVS_SVC_ATTR_PORT = 80 (network order) len=6 type=4
      48 00 02 00  // IPVS_CMD_ATTR_DEST len=72 type=2 (nest without NLA_F_NESTED)
        06 00 0b 00 02 00 00 00  // IPVS_DEST_ATTR_ADDR_FAMILY = 2 (sent first, keepalived style) len=6 type=11
        14 00 01 00 0a 00 00 0b 00 00 00 00 00 00 00 00 00 00 00 00  // IPVS_DEST_ATTR_ADDR = 10.0.0.11 len=20 type=1
        06 00 02 00 00 50 00 00  // IPVS_DEST_ATTR_PORT = 80 (network order) len=6 type=2
        08 00 03 00 03 00 00 00  // IPVS_DEST_ATTR_FWD_METHOD = 3 (IP_VS_CONN_F_DROUTE) len=8 type=3
        08 00 04 00 01 00 00 00  // IPVS_DEST_ATTR_WEIGHT = 1 len=8 type=4
        08 00 05 00 00 00 00 00  // IPVS_DEST_ATTR_U_THRESH = 0 (no limit) len=8 type=5
        08 00 06 00 00 00 00 00  // IPVS_DEST_ATTR_L_THRESH = 0 len=8 type=6
";

const SET_DEST_GUE: &str = "
    88 00 00 00  // nlmsg_len = 136
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    0a 00 00 00 00 00 00 00  // nlmsg_seq = 10, nlmsg_pid = 0
    06 01 00 00  // genl: cmd = IPVS_CMD_SET_DEST (6), version = 1, reserved
      14 00 01 00  // IPVS_CMD_ATTR_SERVICE (identity only) len=20 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 02 00 00 00  // IPVS_SVC_ATTR_AF = 2 len=6 type=1
        08 00 05 00 0a 00 00 00  // IPVS_SVC_ATTR_FWMARK = 10 len=8 type=5
      60 00 02 00  // IPVS_CMD_ATTR_DEST len=96 type=2 (nest without NLA_F_NESTED)
        06 00 0b 00 0a 00 00 00  // IPVS_DEST_ATTR_ADDR_FAMILY = 10 (IPv6 real server in an IPv4 service: tunnel only) len=6 type=11
        14 00 01 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 10  // IPVS_DEST_ATTR_ADDR = 2001:db8::10 len=20 type=1
        06 00 02 00 00 00 00 00  // IPVS_DEST_ATTR_PORT = 0 len=6 type=2
        08 00 03 00 02 00 00 00  // IPVS_DEST_ATTR_FWD_METHOD = 2 (IP_VS_CONN_F_TUNNEL) len=8 type=3
        08 00 04 00 ff ff 00 00  // IPVS_DEST_ATTR_WEIGHT = 65535 len=8 type=4
        05 00 0d 00 01 00 00 00  // IPVS_DEST_ATTR_TUN_TYPE = 1 (GUE) len=5 type=13
        06 00 0e 00 17 c0 00 00  // IPVS_DEST_ATTR_TUN_PORT = 6080 (network order) len=6 type=14
        06 00 0f 00 01 00 00 00  // IPVS_DEST_ATTR_TUN_FLAGS = CSUM (host order) len=6 type=15
        08 00 05 00 ff ff ff 7f  // IPVS_DEST_ATTR_U_THRESH = INT_MAX len=8 type=5
        08 00 06 00 0a 00 00 00  // IPVS_DEST_ATTR_L_THRESH = 10 len=8 type=6
";

const DEL_DEST_V6: &str = "
    6c 00 00 00  // nlmsg_len = 108
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    0b 00 00 00 00 00 00 00  // nlmsg_seq = 11, nlmsg_pid = 0
    07 01 00 00  // genl: cmd = IPVS_CMD_DEL_DEST (7), version = 1, reserved
      30 00 01 00  // IPVS_CMD_ATTR_SERVICE len=48 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 0a 00 00 00  // IPVS_SVC_ATTR_AF = 10 len=6 type=1
        06 00 02 00 84 00 00 00  // IPVS_SVC_ATTR_PROTOCOL = 132 (SCTP) len=6 type=2
        14 00 03 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01  // IPVS_SVC_ATTR_ADDR = 2001:db8::1 len=20 type=3
        06 00 04 00 01 bb 00 00  // IPVS_SVC_ATTR_PORT = 0x01bb (443, network order) len=6 type=4
      28 00 02 00  // IPVS_CMD_ATTR_DEST (identity only) len=40 type=2 (nest without NLA_F_NESTED)
        06 00 0b 00 0a 00 00 00  // IPVS_DEST_ATTR_ADDR_FAMILY = 10 len=6 type=11
        14 00 01 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 11  // IPVS_DEST_ATTR_ADDR = 2001:db8::11 len=20 type=1
        06 00 02 00 01 bb 00 00  // IPVS_DEST_ATTR_PORT = 443 (network order) len=6 type=2
";

const GET_DEST_DUMP: &str = "
    44 00 00 00  // nlmsg_len = 68
    24 00 01 03  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_DUMP
    0c 00 00 00 00 00 00 00  // nlmsg_seq = 12, nlmsg_pid = 0
    08 01 00 00  // genl: cmd = IPVS_CMD_GET_DEST (dump only) (8), version = 1, reserved
      30 00 01 00  // IPVS_CMD_ATTR_SERVICE: which service's real servers len=48 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 02 00 00 00  // IPVS_SVC_ATTR_AF = 2 len=6 type=1
        06 00 02 00 06 00 00 00  // IPVS_SVC_ATTR_PROTOCOL = 6 len=6 type=2
        14 00 03 00 0a 00 00 64 00 00 00 00 00 00 00 00 00 00 00 00  // IPVS_SVC_ATTR_ADDR = 10.0.0.100 len=20 type=3
        06 00 04 00 00 50 00 00  // IPVS_SVC_ATTR_PORT = 80 (network order) len=6 type=4
";

const NEW_DAEMON: &str = "
    54 00 00 00  // nlmsg_len = 84
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    0d 00 00 00 00 00 00 00  // nlmsg_seq = 13, nlmsg_pid = 0
    09 01 00 00  // genl: cmd = IPVS_CMD_NEW_DAEMON (9), version = 1, reserved
      40 00 03 00  // IPVS_CMD_ATTR_DAEMON len=64 type=3 (nest without NLA_F_NESTED)
        08 00 01 00 01 00 00 00  // IPVS_DAEMON_ATTR_STATE = 1 (master) len=8 type=1
        09 00 02 00 65 74 68 30 00 00 00 00  // IPVS_DAEMON_ATTR_MCAST_IFN = \"eth0\" len=9 type=2
        08 00 03 00 07 00 00 00  // IPVS_DAEMON_ATTR_SYNC_ID = 7 len=8 type=3
        06 00 04 00 c0 05 00 00  // IPVS_DAEMON_ATTR_SYNC_MAXLEN = 1472 (host order) len=6 type=4
        08 00 05 00 e0 00 00 51  // IPVS_DAEMON_ATTR_MCAST_GROUP = 224.0.0.81 (network order) len=8 type=5
        06 00 07 00 90 22 00 00  // IPVS_DAEMON_ATTR_MCAST_PORT = 8848 (host order!) len=6 type=7
        05 00 08 00 01 00 00 00  // IPVS_DAEMON_ATTR_MCAST_TTL = 1 len=5 type=8
";

const NEW_DAEMON_V6: &str = "
    44 00 00 00  // nlmsg_len = 68
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    0e 00 00 00 00 00 00 00  // nlmsg_seq = 14, nlmsg_pid = 0
    09 01 00 00  // genl: cmd = IPVS_CMD_NEW_DAEMON (9), version = 1, reserved
      30 00 03 00  // IPVS_CMD_ATTR_DAEMON len=48 type=3 (nest without NLA_F_NESTED)
        08 00 01 00 02 00 00 00  // IPVS_DAEMON_ATTR_STATE = 2 (backup) len=8 type=1
        07 00 02 00 6c 6f 00 00  // IPVS_DAEMON_ATTR_MCAST_IFN = \"lo\" len=7 type=2
        08 00 03 00 00 00 00 00  // IPVS_DAEMON_ATTR_SYNC_ID = 0 len=8 type=3
        14 00 06 00 ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 81  // IPVS_DAEMON_ATTR_MCAST_GROUP6 = ff02::81 len=20 type=6
";

const DEL_DAEMON: &str = "
    20 00 00 00  // nlmsg_len = 32
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    0f 00 00 00 00 00 00 00  // nlmsg_seq = 15, nlmsg_pid = 0
    0a 01 00 00  // genl: cmd = IPVS_CMD_DEL_DAEMON (10), version = 1, reserved
      0c 00 03 00  // IPVS_CMD_ATTR_DAEMON len=12 type=3 (nest without NLA_F_NESTED)
        08 00 01 00 01 00 00 00  // IPVS_DAEMON_ATTR_STATE = 1 (master) len=8 type=1
";

const DAEMON_DUMP_ITEM: &str = "
    50 00 00 00  // nlmsg_len = 80
    24 00 02 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_MULTI
    10 00 00 00 39 30 00 00  // nlmsg_seq = 16, nlmsg_pid = 12345
    09 01 00 00  // genl: cmd = IPVS_CMD_NEW_DAEMON, as for every daemon dump item (9), version = 1, reserved
      3c 00 03 00  // IPVS_CMD_ATTR_DAEMON len=60 type=3 (nest without NLA_F_NESTED)
        08 00 01 00 01 00 00 00  // IPVS_DAEMON_ATTR_STATE = 1 (master) len=8 type=1
        07 00 02 00 6c 6f 00 00  // IPVS_DAEMON_ATTR_MCAST_IFN = \"lo\" len=7 type=2
        08 00 03 00 09 00 00 00  // IPVS_DAEMON_ATTR_SYNC_ID = 9 len=8 type=3
        06 00 04 00 dc 05 00 00  // IPVS_DAEMON_ATTR_SYNC_MAXLEN = 1500 len=6 type=4
        06 00 07 00 90 22 00 00  // IPVS_DAEMON_ATTR_MCAST_PORT = 8848 (host order) len=6 type=7
        05 00 08 00 01 00 00 00  // IPVS_DAEMON_ATTR_MCAST_TTL = 1 len=5 type=8
        08 00 05 00 e0 00 00 51  // IPVS_DAEMON_ATTR_MCAST_GROUP = 224.0.0.81 len=8 type=5
";

const SET_CONFIG: &str = "
    2c 00 00 00  // nlmsg_len = 44
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    11 00 00 00 00 00 00 00  // nlmsg_seq = 17, nlmsg_pid = 0
    0c 01 00 00  // genl: cmd = IPVS_CMD_SET_CONFIG (12), version = 1, reserved
      08 00 04 00 84 03 00 00  // IPVS_CMD_ATTR_TIMEOUT_TCP = 900 s len=8 type=4
      08 00 05 00 78 00 00 00  // IPVS_CMD_ATTR_TIMEOUT_TCP_FIN = 120 s len=8 type=5
      08 00 06 00 00 00 00 00  // IPVS_CMD_ATTR_TIMEOUT_UDP = 0 (leave unchanged) len=8 type=6
";

const GET_CONFIG_REPLY: &str = "
    2c 00 00 00  // nlmsg_len = 44
    24 00 00 00  // nlmsg_type = 0x24, nlmsg_flags = 0
    12 00 00 00 39 30 00 00  // nlmsg_seq = 18, nlmsg_pid = 12345
    0c 01 00 00  // genl: cmd = IPVS_CMD_SET_CONFIG (the GET_CONFIG reply) (12), version = 1, reserved
      08 00 04 00 84 03 00 00  // IPVS_CMD_ATTR_TIMEOUT_TCP = 900 s len=8 type=4
      08 00 05 00 78 00 00 00  // IPVS_CMD_ATTR_TIMEOUT_TCP_FIN = 120 s len=8 type=5
      08 00 06 00 2c 01 00 00  // IPVS_CMD_ATTR_TIMEOUT_UDP = 300 s len=8 type=6
";

const GET_INFO_REPLY: &str = "
    24 00 00 00  // nlmsg_len = 36
    24 00 00 00  // nlmsg_type = 0x24, nlmsg_flags = 0
    13 00 00 00 39 30 00 00  // nlmsg_seq = 19, nlmsg_pid = 12345
    0e 01 00 00  // genl: cmd = IPVS_CMD_SET_INFO (the GET_INFO reply) (14), version = 1, reserved
      08 00 01 00 01 02 01 00  // IPVS_INFO_ATTR_VERSION = 0x010201 (1.2.1); id 1 like SERVICE, read by command len=8 type=1
      08 00 02 00 00 10 00 00  // IPVS_INFO_ATTR_CONN_TAB_SIZE = 4096 len=8 type=2
";

const ZERO_SERVICE: &str = "
    28 00 00 00  // nlmsg_len = 40
    24 00 05 00  // nlmsg_type = 0x24, nlmsg_flags = NLM_F_REQUEST|NLM_F_ACK
    14 00 00 00 00 00 00 00  // nlmsg_seq = 20, nlmsg_pid = 0
    10 01 00 00  // genl: cmd = IPVS_CMD_ZERO (16), version = 1, reserved
      14 00 01 00  // IPVS_CMD_ATTR_SERVICE len=20 type=1 (nest without NLA_F_NESTED)
        06 00 01 00 02 00 00 00  // IPVS_SVC_ATTR_AF = 2 len=6 type=1
        08 00 05 00 ff ff ff ff  // IPVS_SVC_ATTR_FWMARK = 4294967295 (largest mark) len=8 type=5
";

#[test]
fn service_dump_item_ipv4_with_stats_and_pads() {
    let msg = check_kernel(SERVICE_DUMP_ITEM, 7, 0x2);
    assert_eq!(msg.cmd, IpvsCmd::NewService);
    let svc = ServiceRaw::from_attrs(msg.service().unwrap()).unwrap();
    assert_eq!(svc.af, AF_INET);
    assert_eq!(svc.protocol, 6);
    assert_eq!(svc.ip(), Some(Ipv4Addr::new(10, 0, 0, 100).into()));
    assert_eq!(svc.port, 80);
    assert_eq!(svc.fwmark, 0);
    assert_eq!(svc.sched_name, "wlc");
    assert_eq!(svc.flags, IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_HASHED);
    assert_eq!(svc.mask, u32::MAX);
    assert_eq!(svc.timeout, 360);
    assert_eq!(svc.netmask.prefix(AF_INET), Some(24));
    assert_eq!(svc.pe_name, None);
    let s32 = svc.stats.unwrap();
    assert_eq!((s32.conns, s32.inpkts, s32.outpkts), (101, 102, 103));
    assert_eq!(
        (s32.inbytes, s32.outbytes),
        ((1 << 32) + 104, (1 << 33) + 105)
    );
    assert_eq!(
        (s32.cps, s32.inpps, s32.outpps, s32.inbps, s32.outbps),
        (106, 107, 108, 109, 110)
    );
    let s64 = svc.best_stats().unwrap();
    assert_eq!(s64.conns, (1 << 40) + 1001);
    assert_eq!(s64.inbytes, (1 << 40) + 1004);
    assert_eq!(s64.outbps, 1010);
    // The PADs survive as Other(DefaultNla) so the bytes re-emit unchanged.
    let pads = msg
        .service()
        .unwrap()
        .iter()
        .filter_map(|a| match a {
            ServiceAttr::Stats(s) | ServiceAttr::Stats64(s) => Some(s),
            _ => None,
        })
        .flatten()
        .filter(|a| matches!(a, StatsAttr::Other(_)))
        .count();
    assert_eq!(pads, 1 + 9);
}

#[test]
fn service_dump_item_fwmark_ipv6() {
    let msg = check_kernel(SERVICE_DUMP_FWMARK6, 7, 0x2);
    let svc = ServiceRaw::from_attrs(msg.service().unwrap()).unwrap();
    assert_eq!(svc.af, AF_INET6);
    assert_eq!(svc.fwmark, 10);
    assert_eq!(svc.ip(), None);
    assert_eq!((svc.protocol, svc.port), (0, 0));
    assert_eq!(svc.sched_name, "none");
    assert_eq!(svc.pe_name.as_deref(), Some("sip"));
    assert_eq!(svc.flags, 0x1b);
    assert_eq!(svc.timeout, 86400);
    assert_eq!(svc.netmask.prefix(AF_INET6), Some(48));
}

#[test]
fn dest_dump_item_with_tunnel_and_counters() {
    let msg = check_kernel(DEST_DUMP_ITEM, 8, 0x2);
    assert_eq!(msg.cmd, IpvsCmd::NewDest);
    let d = DestRaw::from_attrs(msg.dest().unwrap()).unwrap();
    assert_eq!(
        d.ip(AF_INET6),
        Some(Ipv4Addr::new(10, 0, 0, 11).into()),
        "ADDR_FAMILY wins"
    );
    assert_eq!(d.port, 8080);
    assert_eq!(d.fwd_method, IP_VS_CONN_F_TUNNEL);
    assert_eq!(d.weight, 100);
    assert_eq!((d.u_threshold, d.l_threshold), (1000, 750));
    assert_eq!(d.tun_type, Some(IP_VS_CONN_F_TUNNEL_TYPE_GUE));
    assert_eq!(d.tun_port, Some(6080));
    assert_eq!(
        d.tun_flags,
        Some(IP_VS_TUNNEL_ENCAP_FLAG_CSUM | IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM)
    );
    assert_eq!(
        (d.active_conns, d.inact_conns, d.persist_conns),
        (Some(7), Some(8), Some(9))
    );
    assert_eq!(d.addr_family, Some(AF_INET));
    assert_eq!(d.stats.unwrap().conns, 11);
    assert_eq!(d.best_stats().unwrap().conns, (1 << 40) + 21);
}

fn dest_10_0_0_11() -> DestRaw {
    DestRaw {
        addr: addr_to_raw(Ipv4Addr::new(10, 0, 0, 11).into()),
        port: 80,
        fwd_method: IP_VS_CONN_F_DROUTE,
        weight: 1,
        addr_family: Some(AF_INET),
        ..DestRaw::default()
    }
}

#[test]
fn new_dest() {
    let req = IpvsRequest::NewDest {
        service: tcp_service(),
        dest: dest_10_0_0_11(),
    };
    check_request(&req, REQ_ACK, 9, NEW_DEST);
}

#[test]
fn set_dest_gue_tunnel() {
    let req = IpvsRequest::SetDest {
        service: fwmark_service(),
        dest: DestRaw {
            addr: addr_to_raw("2001:db8::10".parse::<Ipv6Addr>().unwrap().into()),
            port: 0,
            fwd_method: IP_VS_CONN_F_TUNNEL,
            weight: 65535,
            u_threshold: i32::MAX as u32,
            l_threshold: 10,
            addr_family: Some(AF_INET6),
            tun_type: Some(IP_VS_CONN_F_TUNNEL_TYPE_GUE),
            tun_port: Some(6080),
            tun_flags: Some(IP_VS_TUNNEL_ENCAP_FLAG_CSUM),
            ..DestRaw::default()
        },
    };
    check_request(&req, REQ_ACK, 10, SET_DEST_GUE);
}

#[test]
fn del_dest_ipv6_sctp() {
    let service = ServiceRaw {
        af: AF_INET6,
        protocol: 132,
        addr: addr_to_raw("2001:db8::1".parse::<Ipv6Addr>().unwrap().into()),
        port: 443,
        // Non-identity fields are not sent on DEL_DEST.
        sched_name: "wrr".into(),
        timeout: 99,
        ..ServiceRaw::default()
    };
    let dest = DestRaw {
        addr: addr_to_raw("2001:db8::11".parse::<Ipv6Addr>().unwrap().into()),
        port: 443,
        addr_family: Some(AF_INET6),
        weight: 5,
        ..DestRaw::default()
    };
    check_request(
        &IpvsRequest::DelDest { service, dest },
        REQ_ACK,
        11,
        DEL_DEST_V6,
    );
}

#[test]
fn get_dest_dump() {
    let want = hex(GET_DEST_DUMP);
    let msg = IpvsMessage::dump_dests(&tcp_service());
    assert_eq!(encode(REQ_DUMP, 12, msg.clone()), want);
    assert_eq!(decode(&want, 12, REQ_DUMP), msg);
}

#[test]
fn new_daemon_ipv4_group() {
    let d = DaemonRaw {
        state: IP_VS_STATE_MASTER,
        mcast_ifn: "eth0".into(),
        sync_id: 7,
        sync_maxlen: Some(1472),
        mcast_group: Some(Ipv4Addr::new(224, 0, 0, 81)),
        mcast_group6: None,
        mcast_port: Some(8848),
        mcast_ttl: Some(1),
    };
    check_request(&IpvsRequest::NewDaemon(d), REQ_ACK, 13, NEW_DAEMON);
}

#[test]
fn new_daemon_ipv6_group() {
    let d = DaemonRaw {
        state: IP_VS_STATE_BACKUP,
        mcast_ifn: "lo".into(),
        sync_id: 0,
        mcast_group6: Some("ff02::81".parse().unwrap()),
        ..DaemonRaw::default()
    };
    check_request(&IpvsRequest::NewDaemon(d), REQ_ACK, 14, NEW_DAEMON_V6);
}

#[test]
fn del_daemon() {
    let req = IpvsRequest::DelDaemon {
        state: IP_VS_STATE_MASTER,
    };
    check_request(&req, REQ_ACK, 15, DEL_DAEMON);
}

const GET_DAEMON_DUMP: &str = "
    14 00 00 00 24 00 01 03 10 00 00 00 00 00 00 00   // len=20, IPVS, REQUEST|DUMP, seq=16
    0b 01 00 00                                       // genl: cmd = IPVS_CMD_GET_DAEMON (11, dump only)
";

#[test]
fn get_daemon_dump_and_item() {
    let want = hex(GET_DAEMON_DUMP);
    assert_eq!(encode(REQ_DUMP, 16, IpvsMessage::dump_daemons()), want);
    let msg = check_kernel(DAEMON_DUMP_ITEM, 16, 0x2);
    let d = DaemonRaw::from_attrs(msg.daemon().unwrap()).unwrap();
    assert_eq!(d.state, IP_VS_STATE_MASTER);
    assert_eq!(d.mcast_ifn, "lo");
    assert_eq!(d.sync_id, 9);
    assert_eq!(d.sync_maxlen, Some(1500));
    assert_eq!(d.mcast_port, Some(8848));
    assert_eq!(d.mcast_ttl, Some(1));
    assert_eq!(d.mcast_group, Some(Ipv4Addr::new(224, 0, 0, 81)));
    assert_eq!(daemon_state_name(d.state), "master");
}

#[test]
fn set_config() {
    let t = TimeoutsRaw {
        tcp: 900,
        tcp_fin: 120,
        udp: 0,
    };
    check_request(&IpvsRequest::SetTimeouts(t), REQ_ACK, 17, SET_CONFIG);
}

const GET_CONFIG: &str = "
    14 00 00 00 24 00 01 00 12 00 00 00 00 00 00 00   // len=20, IPVS, NLM_F_REQUEST, seq=18
    0d 01 00 00                                       // genl: cmd = IPVS_CMD_GET_CONFIG (13)
";

#[test]
fn get_config_and_reply() {
    let want = hex(GET_CONFIG);
    assert_eq!(encode(0x1, 18, IpvsMessage::get_config()), want);
    let msg = check_kernel(GET_CONFIG_REPLY, 18, 0);
    assert_eq!(msg.cmd, IpvsCmd::SetConfig);
    assert_eq!(
        TimeoutsRaw::from_attrs(&msg.attrs),
        TimeoutsRaw {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );
}

const GET_INFO: &str = "
    14 00 00 00 24 00 01 00 13 00 00 00 00 00 00 00   // len=20, IPVS, NLM_F_REQUEST, seq=19
    0f 01 00 00                                       // genl: cmd = IPVS_CMD_GET_INFO (15)
";

#[test]
fn get_info_and_reply() {
    let want = hex(GET_INFO);
    assert_eq!(encode(0x1, 19, IpvsMessage::get_info()), want);
    let msg = check_kernel(GET_INFO_REPLY, 19, 0);
    assert_eq!(msg.cmd, IpvsCmd::SetInfo);
    let info = InfoRaw::from_attrs(&msg.attrs).unwrap();
    assert_eq!(info.version, IP_VS_VERSION_CODE);
    assert_eq!(info.conn_tab_size, 4096);
    assert_eq!(info.version_string(), "1.2.1");
    // The same ids under any other command are SERVICE/DEST nests, not info.
    assert!(matches!(
        msg.attrs[0],
        IpvsAttr::Info(InfoAttr::Version(IP_VS_VERSION_CODE))
    ));
}

#[test]
fn zero_one_service() {
    let svc = ServiceRaw {
        af: AF_INET,
        fwmark: u32::MAX,
        ..ServiceRaw::default()
    };
    check_request(&IpvsRequest::Zero(Some(svc)), REQ_ACK, 20, ZERO_SERVICE);
}

const ZERO_ALL: &str = "
    14 00 00 00 24 00 05 00 15 00 00 00 00 00 00 00   // len=20, IPVS, REQUEST|ACK, seq=21
    10 01 00 00                                       // genl: cmd = IPVS_CMD_ZERO (16), no service = all
";

const FLUSH: &str = "
    14 00 00 00 24 00 05 00 16 00 00 00 00 00 00 00   // len=20, IPVS, REQUEST|ACK, seq=22
    11 01 00 00                                       // genl: cmd = IPVS_CMD_FLUSH (17), no attributes
";

#[test]
fn zero_all_and_flush() {
    check_request(&IpvsRequest::Zero(None), REQ_ACK, 21, ZERO_ALL);
    check_request(&IpvsRequest::Flush, REQ_ACK, 22, FLUSH);
}

#[test]
fn every_command_has_a_fixture() {
    // Each command byte appears as the genl cmd of at least one fixture above.
    let fixtures = [
        NEW_SERVICE,
        SET_SERVICE_V6,
        DEL_SERVICE_FWMARK,
        GET_SERVICE_DUMP,
        NEW_DEST,
        SET_DEST_GUE,
        DEL_DEST_V6,
        GET_DEST_DUMP,
        NEW_DAEMON,
        DEL_DAEMON,
        GET_DAEMON_DUMP,
        SET_CONFIG,
        GET_CONFIG,
        GET_INFO_REPLY,
        GET_INFO,
        ZERO_ALL,
        FLUSH,
    ];
    let mut seen: Vec<u8> = fixtures.iter().map(|f| hex(f)[16]).collect();
    seen.sort_unstable();
    let all: Vec<u8> = IpvsCmd::ALL.iter().map(|c| c.as_u8()).collect();
    assert_eq!(seen, all);
    for c in IpvsCmd::ALL {
        assert_eq!(IpvsCmd::try_from(c.as_u8()).unwrap(), c);
    }
    assert!(IpvsCmd::try_from(0).is_err());
    assert!(IpvsCmd::try_from(18).is_err());
}

// --- control messages ---------------------------------------------------------------------

const ACK: &str = "
    24 00 00 00             // nlmsg_len = 36
    02 00                   // nlmsg_type = NLMSG_ERROR (2)
    00 01                   // flags = NLM_F_CAPPED (NETLINK_CAP_ACK: only the request header echoed)
    01 00 00 00 39 30 00 00 // seq = 1, pid = 12345
    00 00 00 00             // error = 0: ACK
    68 00 00 00 24 00 05 00 01 00 00 00 00 00 00 00   // the request's nlmsghdr, echoed
";

const ERROR_EXT_ACK: &str = "
    38 00 00 00             // nlmsg_len = 56
    02 00                   // NLMSG_ERROR
    00 03                   // flags = NLM_F_CAPPED | NLM_F_ACK_TLVS
    05 00 00 00 39 30 00 00 // seq = 5, pid = 12345
    fe ff ff ff             // error = -2 (ENOENT)
    68 00 00 00 24 00 05 00 05 00 00 00 00 00 00 00   // the request's nlmsghdr, echoed
    13 00 01 00 6e 6f 20 73 75 63 68 20 74 68 69 6e 67 00 00 00 // NLMSGERR_ATTR_MSG \"no such thing\"
";

const DONE: &str = "
    14 00 00 00             // nlmsg_len = 20
    03 00                   // NLMSG_DONE
    02 00                   // NLM_F_MULTI
    07 00 00 00 39 30 00 00 // seq = 7, pid = 12345
    00 00 00 00             // dump status = 0
";

#[test]
fn ack_error_done() {
    let all = [hex(ACK), hex(ERROR_EXT_ACK), hex(DONE)].concat();
    let got: Vec<Incoming> = decode_datagram(&all, FAMILY).map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![
            Incoming::Ack { seq: 1 },
            Incoming::Error {
                seq: 5,
                errno: 2,
                message: Some("no such thing".into())
            },
            Incoming::Done { seq: 7, errno: 0 },
        ]
    );
}

#[test]
fn one_datagram_with_dump_items_and_done() {
    let all = [hex(SERVICE_DUMP_ITEM), hex(SERVICE_DUMP_FWMARK6), hex(DONE)].concat();
    let got: Vec<Incoming> = decode_datagram(&all, FAMILY).map(Result::unwrap).collect();
    assert_eq!(got.len(), 3);
    assert!(
        matches!(&got[0], Incoming::Ipvs { seq: 7, flags: 2, msg } if msg.cmd == IpvsCmd::NewService)
    );
    assert!(matches!(&got[1], Incoming::Ipvs { seq: 7, .. }));
    assert_eq!(got[2], Incoming::Done { seq: 7, errno: 0 });
}

// nlctrl CTRL_CMD_GETFAMILY for "IPVS".
const GET_FAMILY: &str = "
    20 00 00 00             // nlmsg_len = 32
    10 00                   // nlmsg_type = GENL_ID_CTRL (16)
    05 00                   // NLM_F_REQUEST | NLM_F_ACK
    01 00 00 00 00 00 00 00 // seq = 1, pid = 0
    03 02 00 00             // genl: cmd = CTRL_CMD_GETFAMILY (3), version 2
    09 00 02 00 49 50 56 53 00 00 00 00   // CTRL_ATTR_FAMILY_NAME len=9 \"IPVS\\0\" + pad
";

const FAMILY_REPLY: &str = "
    28 00 00 00 10 00 00 00 01 00 00 00 39 30 00 00   // len=40, GENL_ID_CTRL, seq=1
    01 02 00 00             // genl: cmd = CTRL_CMD_NEWFAMILY (1), version 2
    06 00 01 00 24 00 00 00 // CTRL_ATTR_FAMILY_ID = 0x24 (u16) + pad
    09 00 02 00 49 50 56 53 00 00 00 00   // CTRL_ATTR_FAMILY_NAME \"IPVS\"
";

#[test]
fn resolve_family_messages() {
    let mut buf = Vec::new();
    encode_get_family(&mut buf, 0x5, 1, IPVS_GENL_NAME);
    assert_eq!(buf, hex(GET_FAMILY));
    let reply = hex(FAMILY_REPLY);
    let got: Vec<Incoming> = decode_datagram(&reply, 0).map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![Incoming::Ctrl {
            seq: 1,
            cmd: 1, // CTRL_CMD_NEWFAMILY
            family_id: Some(0x24),
            family_name: Some("IPVS".into()),
        }]
    );
}

#[test]
fn unknown_attributes_are_kept_and_reemitted() {
    // A dest item from a future kernel with an unknown attribute 99 inside the nest and an
    // unknown top-level attribute 42.
    let bytes = hex("
        30 00 00 00 24 00 02 00 08 00 00 00 39 30 00 00   // len=48, IPVS, MULTI, seq=8
        05 01 00 00                 // genl: IPVS_CMD_NEW_DEST
        14 00 02 00                 // IPVS_CMD_ATTR_DEST len=20
          08 00 63 00 01 02 03 04   // unknown attribute 99 len=8
          06 00 02 00 00 16 00 00   // IPVS_DEST_ATTR_PORT = 22 (network order)
        05 00 2a 00 ff 00 00 00     // unknown top-level attribute 42 len=5 + pad
    ");
    let msg = decode(&bytes, 8, 2);
    assert!(matches!(msg.attrs[1], IpvsAttr::Other(_)));
    let dest = msg.dest().unwrap();
    assert!(matches!(dest[0], DestAttr::Other(_)));
    assert_eq!(dest[1], DestAttr::Port(22));
    assert_eq!(encode_from(2, 8, 12345, msg), bytes);
}

#[test]
fn nested_flag_is_accepted_on_input() {
    // The same SERVICE nest with NLA_F_NESTED (0x8000) set in its type, as libnl may send.
    let bytes = hex("
        20 00 00 00 24 00 05 00 03 00 00 00 00 00 00 00   // len=32
        03 01 00 00                 // IPVS_CMD_DEL_SERVICE
        0c 00 01 80                 // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, len=12
          08 00 05 00 0a 00 00 00   // IPVS_SVC_ATTR_FWMARK = 10
    ");
    let msg = decode(&bytes, 3, 5);
    assert_eq!(msg.service().unwrap(), &[ServiceAttr::Fwmark(10)][..]);
}
