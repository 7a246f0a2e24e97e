//! The IPVS generic-netlink payload: a command plus its top-level attributes.

use std::fmt;

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, Nla, NlaBuffer, NlasIterator, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

use crate::attr::*;
use crate::constants::*;
use crate::daemon::DaemonAttr;
use crate::dest::DestAttr;
use crate::service::ServiceAttr;

/// The 17 IPVS commands (`IPVS_CMD_*`, the `genlmsghdr.cmd` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum IpvsCmd {
    /// Add a service; also the command of GET_SERVICE replies and dump items.
    NewService = IPVS_CMD_NEW_SERVICE,
    SetService = IPVS_CMD_SET_SERVICE,
    DelService = IPVS_CMD_DEL_SERVICE,
    GetService = IPVS_CMD_GET_SERVICE,
    /// Add a real server; also the command of GET_DEST dump items.
    NewDest = IPVS_CMD_NEW_DEST,
    SetDest = IPVS_CMD_SET_DEST,
    DelDest = IPVS_CMD_DEL_DEST,
    /// Dump-only: needs NLM_F_DUMP and a SERVICE nest.
    GetDest = IPVS_CMD_GET_DEST,
    /// Start a sync daemon; also the command of GET_DAEMON dump items.
    NewDaemon = IPVS_CMD_NEW_DAEMON,
    DelDaemon = IPVS_CMD_DEL_DAEMON,
    /// Dump-only.
    GetDaemon = IPVS_CMD_GET_DAEMON,
    /// Set timeouts; also the command of the GET_CONFIG reply.
    SetConfig = IPVS_CMD_SET_CONFIG,
    GetConfig = IPVS_CMD_GET_CONFIG,
    /// Only the command of the GET_INFO reply.
    SetInfo = IPVS_CMD_SET_INFO,
    GetInfo = IPVS_CMD_GET_INFO,
    Zero = IPVS_CMD_ZERO,
    Flush = IPVS_CMD_FLUSH,
}

impl IpvsCmd {
    pub const ALL: [IpvsCmd; 17] = [
        IpvsCmd::NewService,
        IpvsCmd::SetService,
        IpvsCmd::DelService,
        IpvsCmd::GetService,
        IpvsCmd::NewDest,
        IpvsCmd::SetDest,
        IpvsCmd::DelDest,
        IpvsCmd::GetDest,
        IpvsCmd::NewDaemon,
        IpvsCmd::DelDaemon,
        IpvsCmd::GetDaemon,
        IpvsCmd::SetConfig,
        IpvsCmd::GetConfig,
        IpvsCmd::SetInfo,
        IpvsCmd::GetInfo,
        IpvsCmd::Zero,
        IpvsCmd::Flush,
    ];

    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The uapi name, e.g. `IPVS_CMD_NEW_SERVICE`.
    pub fn name(self) -> &'static str {
        match self {
            IpvsCmd::NewService => "IPVS_CMD_NEW_SERVICE",
            IpvsCmd::SetService => "IPVS_CMD_SET_SERVICE",
            IpvsCmd::DelService => "IPVS_CMD_DEL_SERVICE",
            IpvsCmd::GetService => "IPVS_CMD_GET_SERVICE",
            IpvsCmd::NewDest => "IPVS_CMD_NEW_DEST",
            IpvsCmd::SetDest => "IPVS_CMD_SET_DEST",
            IpvsCmd::DelDest => "IPVS_CMD_DEL_DEST",
            IpvsCmd::GetDest => "IPVS_CMD_GET_DEST",
            IpvsCmd::NewDaemon => "IPVS_CMD_NEW_DAEMON",
            IpvsCmd::DelDaemon => "IPVS_CMD_DEL_DAEMON",
            IpvsCmd::GetDaemon => "IPVS_CMD_GET_DAEMON",
            IpvsCmd::SetConfig => "IPVS_CMD_SET_CONFIG",
            IpvsCmd::GetConfig => "IPVS_CMD_GET_CONFIG",
            IpvsCmd::SetInfo => "IPVS_CMD_SET_INFO",
            IpvsCmd::GetInfo => "IPVS_CMD_GET_INFO",
            IpvsCmd::Zero => "IPVS_CMD_ZERO",
            IpvsCmd::Flush => "IPVS_CMD_FLUSH",
        }
    }
}

impl fmt::Display for IpvsCmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u8> for IpvsCmd {
    type Error = DecodeError;
    fn try_from(v: u8) -> Result<Self, DecodeError> {
        IpvsCmd::ALL
            .iter()
            .copied()
            .find(|c| c.as_u8() == v)
            .ok_or_else(|| DecodeError::from(format!("unknown IPVS command {v}")))
    }
}

/// Top-level attributes of the GET_INFO reply (command SET_INFO). They share ids 1 and 2 with
/// SERVICE and DEST, so [`IpvsMessage`] parses them only under [`IpvsCmd::SetInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoAttr {
    /// `IPVS_INFO_ATTR_VERSION`: `IP_VS_VERSION_CODE` (0x010201 = 1.2.1).
    Version(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE`.
    ConnTabSize(u32),
}

/// A top-level IPVS attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpvsAttr {
    /// `IPVS_CMD_ATTR_SERVICE` nest (sent and received without NLA_F_NESTED, like the kernel).
    Service(Vec<ServiceAttr>),
    /// `IPVS_CMD_ATTR_DEST` nest.
    Dest(Vec<DestAttr>),
    /// `IPVS_CMD_ATTR_DAEMON` nest.
    Daemon(Vec<DaemonAttr>),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP`, seconds (0 = leave unchanged on SET_CONFIG).
    TimeoutTcp(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN`, seconds.
    TimeoutTcpFin(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_UDP`, seconds.
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_*`, only in SET_INFO messages.
    Info(InfoAttr),
    Other(DefaultNla),
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            IpvsAttr::Service(a) => nested_len(a),
            IpvsAttr::Dest(a) => nested_len(a),
            IpvsAttr::Daemon(a) => nested_len(a),
            IpvsAttr::TimeoutTcp(_) | IpvsAttr::TimeoutTcpFin(_) | IpvsAttr::TimeoutUdp(_) => 4,
            IpvsAttr::Info(_) => 4,
            IpvsAttr::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            IpvsAttr::Service(_) => IPVS_CMD_ATTR_SERVICE,
            IpvsAttr::Dest(_) => IPVS_CMD_ATTR_DEST,
            IpvsAttr::Daemon(_) => IPVS_CMD_ATTR_DAEMON,
            IpvsAttr::TimeoutTcp(_) => IPVS_CMD_ATTR_TIMEOUT_TCP,
            IpvsAttr::TimeoutTcpFin(_) => IPVS_CMD_ATTR_TIMEOUT_TCP_FIN,
            IpvsAttr::TimeoutUdp(_) => IPVS_CMD_ATTR_TIMEOUT_UDP,
            IpvsAttr::Info(InfoAttr::Version(_)) => IPVS_INFO_ATTR_VERSION,
            IpvsAttr::Info(InfoAttr::ConnTabSize(_)) => IPVS_INFO_ATTR_CONN_TAB_SIZE,
            IpvsAttr::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            IpvsAttr::Service(a) => emit_nested(a, buffer),
            IpvsAttr::Dest(a) => emit_nested(a, buffer),
            IpvsAttr::Daemon(a) => emit_nested(a, buffer),
            IpvsAttr::TimeoutTcp(v)
            | IpvsAttr::TimeoutTcpFin(v)
            | IpvsAttr::TimeoutUdp(v)
            | IpvsAttr::Info(InfoAttr::Version(v))
            | IpvsAttr::Info(InfoAttr::ConnTabSize(v)) => buffer.copy_from_slice(&v.to_ne_bytes()),
            IpvsAttr::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl IpvsAttr {
    /// Parses one top-level attribute of a message with command `cmd`.
    pub fn parse_for(buf: &NlaBuffer<&[u8]>, cmd: IpvsCmd) -> Result<Self, DecodeError> {
        let v = buf.value();
        if cmd == IpvsCmd::SetInfo {
            return Ok(match buf.kind() {
                IPVS_INFO_ATTR_VERSION => {
                    IpvsAttr::Info(InfoAttr::Version(u32_ne(v, "IPVS_INFO_ATTR_VERSION")?))
                }
                IPVS_INFO_ATTR_CONN_TAB_SIZE => IpvsAttr::Info(InfoAttr::ConnTabSize(u32_ne(
                    v,
                    "IPVS_INFO_ATTR_CONN_TAB_SIZE",
                )?)),
                _ => IpvsAttr::Other(other(buf)),
            });
        }
        Ok(match buf.kind() {
            IPVS_CMD_ATTR_SERVICE => IpvsAttr::Service(nested(v, "IPVS_CMD_ATTR_SERVICE")?),
            IPVS_CMD_ATTR_DEST => IpvsAttr::Dest(nested(v, "IPVS_CMD_ATTR_DEST")?),
            IPVS_CMD_ATTR_DAEMON => IpvsAttr::Daemon(nested(v, "IPVS_CMD_ATTR_DAEMON")?),
            IPVS_CMD_ATTR_TIMEOUT_TCP => {
                IpvsAttr::TimeoutTcp(u32_ne(v, "IPVS_CMD_ATTR_TIMEOUT_TCP")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => {
                IpvsAttr::TimeoutTcpFin(u32_ne(v, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN")?)
            }
            IPVS_CMD_ATTR_TIMEOUT_UDP => {
                IpvsAttr::TimeoutUdp(u32_ne(v, "IPVS_CMD_ATTR_TIMEOUT_UDP")?)
            }
            _ => IpvsAttr::Other(other(buf)),
        })
    }
}

/// One IPVS generic-netlink payload (everything after the 4-byte genl header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: IpvsCmd,
    pub attrs: Vec<IpvsAttr>,
}

impl IpvsMessage {
    pub fn new(cmd: IpvsCmd, attrs: Vec<IpvsAttr>) -> Self {
        IpvsMessage { cmd, attrs }
    }

    /// The first SERVICE nest, if any.
    pub fn service(&self) -> Option<&[ServiceAttr]> {
        self.attrs.iter().find_map(|a| match a {
            IpvsAttr::Service(s) => Some(s.as_slice()),
            _ => None,
        })
    }

    /// The first DEST nest, if any.
    pub fn dest(&self) -> Option<&[DestAttr]> {
        self.attrs.iter().find_map(|a| match a {
            IpvsAttr::Dest(d) => Some(d.as_slice()),
            _ => None,
        })
    }

    /// The first DAEMON nest, if any.
    pub fn daemon(&self) -> Option<&[DaemonAttr]> {
        self.attrs.iter().find_map(|a| match a {
            IpvsAttr::Daemon(d) => Some(d.as_slice()),
            _ => None,
        })
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        IPVS_GENL_NAME
    }

    fn command(&self) -> u8 {
        self.cmd.as_u8()
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        nested_len(&self.attrs)
    }

    fn emit(&self, buffer: &mut [u8]) {
        emit_nested(&self.attrs, buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = IpvsCmd::try_from(header.cmd)?;
        let attrs = NlasIterator::new(buf)
            .map(|nla| {
                nla.map_err(|e| DecodeError::from(format!("invalid {cmd} attribute: {e}")))
                    .and_then(|nla| IpvsAttr::parse_for(&nla, cmd))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpvsMessage { cmd, attrs })
    }
}
