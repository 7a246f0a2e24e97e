//! Netlink framing, still without sockets: encoding requests into a reusable byte buffer and
//! splitting a received datagram into typed messages.

use netlink_packet_core::{
    DecodeError, ErrorBuffer, ErrorMessage, NLA_HEADER_SIZE, NLM_F_ACK_TLVS, NLM_F_CAPPED,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{
    GenlHeader, GenlMessage,
    constants::{CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, GENL_HDRLEN, GENL_ID_CTRL},
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};

use crate::message::IpvsMessage;

/// A full IPVS netlink message (nlmsghdr + genlmsghdr + attributes).
pub type IpvsNetlinkMessage = NetlinkMessage<GenlMessage<IpvsMessage>>;

/// `NLMSGERR_ATTR_MSG`: the human-readable extended-ACK string.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends `msg` to `buf` as one netlink message and returns its length. `flags` are the
/// `NLM_F_*` header flags (e.g. `NLM_F_REQUEST | NLM_F_ACK`).
pub fn encode_ipvs(
    buf: &mut Vec<u8>,
    family_id: u16,
    flags: u16,
    seq: u32,
    msg: IpvsMessage,
) -> usize {
    let mut genl = GenlMessage::from_payload(msg);
    genl.set_resolved_family_id(family_id);
    let mut nl = NetlinkMessage::from(genl);
    nl.header.flags = flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let len = nl.buffer_len();
    let start = buf.len();
    buf.resize(start + align4(len), 0);
    nl.serialize(&mut buf[start..start + len]);
    len
}

/// Appends an nlctrl `CTRL_CMD_GETFAMILY` request for `name` to `buf`.
pub fn encode_get_family(buf: &mut Vec<u8>, flags: u16, seq: u32, name: &str) -> usize {
    let ctrl = GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
    };
    let mut nl = NetlinkMessage::from(GenlMessage::from_payload(ctrl));
    nl.header.flags = flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let len = nl.buffer_len();
    let start = buf.len();
    buf.resize(start + align4(len), 0);
    nl.serialize(&mut buf[start..start + len]);
    len
}

/// One message of a received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// `NLMSG_ERROR` with code 0.
    Ack { seq: u32 },
    /// `NLMSG_ERROR` with `-errno`; `message` is the extended-ACK text when the kernel sent one.
    Error {
        seq: u32,
        errno: i32,
        message: Option<String>,
    },
    /// `NLMSG_DONE`: the end of a dump; `errno` is non-zero when the dump failed.
    Done { seq: u32, errno: i32 },
    /// An IPVS message (a reply or a dump item; `flags` carries NLM_F_MULTI for dump items).
    Ipvs {
        seq: u32,
        flags: u16,
        msg: IpvsMessage,
    },
    /// An nlctrl message (the GETFAMILY reply): its command and the family it describes.
    /// Only these two attributes are read (netlink-packet-generic's full nlctrl parser panics
    /// on some malformed nests).
    Ctrl {
        seq: u32,
        cmd: u8,
        family_id: Option<u16>,
        family_name: Option<String>,
    },
    /// NOOP, OVERRUN or a message of another family: nothing lvsctl waits for.
    Other { seq: u32, message_type: u16 },
}

impl Incoming {
    pub fn seq(&self) -> u32 {
        match self {
            Incoming::Ack { seq }
            | Incoming::Error { seq, .. }
            | Incoming::Done { seq, .. }
            | Incoming::Ipvs { seq, .. }
            | Incoming::Ctrl { seq, .. }
            | Incoming::Other { seq, .. } => *seq,
        }
    }
}

/// Splits a datagram into messages and decodes each; `ipvs_family` is the resolved IPVS
/// family id (messages of that type decode as [`IpvsMessage`]). Never panics: malformed input
/// yields an error and ends the iteration.
pub fn decode_datagram(buf: &[u8], ipvs_family: u16) -> Datagram<'_> {
    Datagram {
        buf,
        pos: 0,
        ipvs_family,
    }
}

/// Iterator returned by [`decode_datagram`].
pub struct Datagram<'a> {
    buf: &'a [u8],
    pos: usize,
    ipvs_family: u16,
}

impl Iterator for Datagram<'_> {
    type Item = Result<Incoming, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let nb = match NetlinkBuffer::new_checked(rest) {
            Ok(nb) => nb,
            Err(e) => {
                self.pos = self.buf.len();
                return Some(Err(e));
            }
        };
        let len = nb.length() as usize;
        self.pos = self.pos.saturating_add(align4(len));
        Some(decode_one(&nb, self.ipvs_family))
    }
}

fn decode_one(nb: &NetlinkBuffer<&[u8]>, ipvs_family: u16) -> Result<Incoming, DecodeError> {
    let header = NetlinkHeader::parse(nb)?;
    let seq = header.sequence_number;
    let payload = nb.payload();
    Ok(match header.message_type {
        NLMSG_ERROR => {
            let err = ErrorMessage::parse(&ErrorBuffer::new_checked(&payload)?)?;
            match err.code {
                None => Incoming::Ack { seq },
                Some(code) => Incoming::Error {
                    seq,
                    errno: code.get().saturating_neg(),
                    message: ext_ack_message(header.flags, &err.header),
                },
            }
        }
        NLMSG_DONE => {
            let errno = match payload.get(..4) {
                Some(b) => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]).saturating_neg(),
                None => 0,
            };
            Incoming::Done { seq, errno }
        }
        NLMSG_NOOP | NLMSG_OVERRUN => Incoming::Other {
            seq,
            message_type: header.message_type,
        },
        GENL_ID_CTRL => decode_ctrl(seq, payload)?,
        t if t == ipvs_family => {
            let msg = GenlMessage::<IpvsMessage>::parse_with_param(payload, t)?;
            Incoming::Ipvs {
                seq,
                flags: header.flags,
                msg: msg.payload,
            }
        }
        t => Incoming::Other {
            seq,
            message_type: t,
        },
    })
}

/// The `NLMSGERR_ATTR_MSG` text of an error message, if the kernel attached one.
/// `echoed` is the error payload after the code: the original request (only its header when
/// NLM_F_CAPPED) followed, with NLM_F_ACK_TLVS, by extended-ACK attributes.
fn ext_ack_message(flags: u16, echoed: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || echoed.len() < NLMSG_HDRLEN {
        return None;
    }
    let offset = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        let orig = u32::from_ne_bytes([echoed[0], echoed[1], echoed[2], echoed[3]]) as usize;
        align4(orig.max(NLMSG_HDRLEN))
    };
    let tlvs = echoed.get(offset..)?;
    NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG && nla.length() as usize >= NLA_HEADER_SIZE)
        .map(|nla| {
            let v = nla.value();
            let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
            String::from_utf8_lossy(&v[..end]).into_owned()
        })
        .filter(|s| !s.is_empty())
}

/// Reads CTRL_ATTR_FAMILY_ID and CTRL_ATTR_FAMILY_NAME of an nlctrl message.
fn decode_ctrl(seq: u32, payload: &[u8]) -> Result<Incoming, DecodeError> {
    let header = GenlHeader::parse(payload)?;
    let attrs = payload.get(GENL_HDRLEN..).unwrap_or(&[]);
    let (mut family_id, mut family_name) = (None, None);
    for nla in NlasIterator::new(attrs) {
        let nla = nla?;
        match nla.kind() {
            CTRL_ATTR_FAMILY_ID => {
                let v = nla.value();
                let b: [u8; 2] = v.try_into().map_err(|_| {
                    DecodeError::from(format!(
                        "invalid CTRL_ATTR_FAMILY_ID: expected 2 bytes, got {}",
                        v.len()
                    ))
                })?;
                family_id = Some(u16::from_ne_bytes(b));
            }
            CTRL_ATTR_FAMILY_NAME => {
                let v = nla.value();
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                family_name = Some(String::from_utf8_lossy(&v[..end]).into_owned());
            }
            _ => {}
        }
    }
    Ok(Incoming::Ctrl {
        seq,
        cmd: header.cmd,
        family_id,
        family_name,
    })
}
