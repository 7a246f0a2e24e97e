//! A small blocking NETLINK_ROUTE socket: send one request, collect replies until the ACK or the
//! end of the dump. Kernel errors keep their errno and the kernel's extended-ACK text
//! (e.g. "Unknown device type"), which is what makes an rtnetlink error explainable.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Netlink header length (`struct nlmsghdr`).
const HEADER_LEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: a human-readable error string.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// Receive buffer: larger than any single datagram a dump sends (32 KiB at most).
const RECV_BUF: usize = 64 * 1024;

/// A failure on the socket.
#[derive(Debug)]
pub enum NlError {
    /// The kernel refused the request: positive errno and the extended-ACK message if any.
    Kernel { errno: i32, ext: Option<String> },
    /// Socket I/O failed.
    Io(io::Error),
    /// A reply could not be decoded.
    Decode(String),
}

impl NlError {
    /// `strerror` text plus the kernel's own message, e.g.
    /// `Operation not supported (os error 95): Unknown device type`.
    pub fn describe(&self) -> String {
        match self {
            NlError::Kernel { errno, ext } => {
                let base = io::Error::from_raw_os_error(*errno).to_string();
                match ext {
                    Some(m) if !m.is_empty() => format!("{base}: {m}"),
                    _ => base,
                }
            }
            NlError::Io(e) => e.to_string(),
            NlError::Decode(d) => format!("cannot decode the kernel's reply: {d}"),
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            NlError::Kernel { errno, .. } => Some(*errno),
            NlError::Io(e) => e.raw_os_error(),
            NlError::Decode(_) => None,
        }
    }
}

pub struct RtSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl RtSocket {
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // Best effort: older kernels lack these options and still work, only with plainer
        // errors and unfiltered dumps (the caller filters anyway).
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_netlink_get_strict_chk(true);
        Ok(RtSocket {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends `msg` with `NLM_F_REQUEST | NLM_F_ACK | flags` and returns the data messages of the
    /// reply (none for a plain ACK; every entry for a dump).
    pub fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0).map_err(NlError::Io)?;

        let mut replies = Vec::new();
        loop {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0).map_err(NlError::Io)?;
            if n > self.buf.len() {
                return Err(NlError::Decode(format!(
                    "datagram of {n} bytes exceeds the {RECV_BUF}-byte buffer"
                )));
            }
            let mut off = 0;
            while off + HEADER_LEN <= self.buf.len() {
                let data = &self.buf[off..];
                let len = u32_at(data, 0) as usize;
                if len < HEADER_LEN || len > data.len() {
                    return Err(NlError::Decode(format!(
                        "message length {len} at offset {off} is out of bounds"
                    )));
                }
                let msg = &data[..len];
                off += (len + 3) & !3;
                let kind = u16_at(msg, 4);
                let mflags = u16_at(msg, 6);
                // Stale replies (e.g. the rest of an earlier request that failed part way)
                // belong to another sequence number: skip them.
                if u32_at(msg, 8) != seq {
                    continue;
                }
                match kind {
                    NLMSG_NOOP => {}
                    NLMSG_DONE => return Ok(replies),
                    NLMSG_ERROR => {
                        return match parse_error(msg, mflags) {
                            None => Ok(replies),
                            Some(e) => Err(e),
                        };
                    }
                    _ => {
                        let mut h = NetlinkHeader::default();
                        h.message_type = kind;
                        h.flags = mflags;
                        h.length = len as u32;
                        h.sequence_number = seq;
                        let inner = RouteNetlinkMessage::deserialize(&h, &msg[HEADER_LEN..])
                            .map_err(|e| NlError::Decode(format!("message type {kind}: {e}")))?;
                        replies.push(inner);
                    }
                }
            }
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// `NLMSG_ERROR`: `None` for an ACK, else the errno and the extended-ACK message.
fn parse_error(msg: &[u8], flags: u16) -> Option<NlError> {
    let body = msg.get(HEADER_LEN..)?;
    let code = i32::from_ne_bytes(body.get(..4)?.try_into().ok()?);
    if code == 0 {
        return None;
    }
    let errno = code.checked_neg().unwrap_or(code);
    let mut ext = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // After the code: the request's header, plus its payload unless capped.
        let req = body.get(4..).unwrap_or_default();
        let echoed = if flags & NLM_F_CAPPED != 0 {
            HEADER_LEN
        } else {
            u32_at(req, 0) as usize
        };
        let mut tlvs = req.get(echoed..).unwrap_or_default();
        while tlvs.len() >= 4 {
            let len = u16_at(tlvs, 0) as usize;
            let kind = u16_at(tlvs, 2) & 0x3fff;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if kind == NLMSGERR_ATTR_MSG {
                let text = &tlvs[4..len];
                let text = text.split(|b| *b == 0).next().unwrap_or_default();
                ext = Some(String::from_utf8_lossy(text).into_owned());
            }
            tlvs = tlvs.get((len + 3) & !3..).unwrap_or_default();
        }
    }
    Some(NlError::Kernel { errno, ext })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ack_and_error_with_ext_ack() {
        // An ACK: code 0 after a 16-byte header.
        let mut ack = vec![0u8; 36];
        ack[0..4].copy_from_slice(&36u32.to_ne_bytes());
        assert!(parse_error(&ack, 0).is_none());

        // EOPNOTSUPP (95), capped, with NLMSGERR_ATTR_MSG "Unknown device type".
        let text = b"Unknown device type\0";
        let attr_len = 4 + text.len();
        let mut m = vec![0u8; HEADER_LEN];
        m.extend_from_slice(&(-95i32).to_ne_bytes());
        m.extend_from_slice(&[0u8; HEADER_LEN]); // the echoed request header
        m.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        m.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        m.extend_from_slice(text);
        let e = parse_error(&m, NLM_F_CAPPED | NLM_F_ACK_TLVS).unwrap();
        assert_eq!(e.errno(), Some(95));
        assert!(
            e.describe().ends_with(": Unknown device type"),
            "{}",
            e.describe()
        );

        // Truncated input never panics.
        assert!(parse_error(&m[..10], NLM_F_ACK_TLVS).is_none());
        let e = parse_error(&m[..HEADER_LEN + 6], NLM_F_ACK_TLVS).unwrap();
        assert_eq!(e.errno(), Some(95));
    }
}
