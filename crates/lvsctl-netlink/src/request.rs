//! Requests lvsctl sends, as data, and the messages they encode to.

use crate::message::{IpvsAttr, IpvsCmd, IpvsMessage};
use crate::raw::{DaemonRaw, DestRaw, ServiceRaw, TimeoutsRaw};
use crate::{DaemonAttr, constants::*};

/// One write to the kernel's IPVS tables. Each is answered by an ACK or an errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsRequest {
    /// NEW_SERVICE with the full service (the kernel requires SCHED_NAME, FLAGS, TIMEOUT and
    /// NETMASK).
    NewService(ServiceRaw),
    /// SET_SERVICE: a full replace of scheduler, PE, flags (through the mask), timeout, netmask.
    SetService(ServiceRaw),
    /// DEL_SERVICE: identity attributes only.
    DelService(ServiceRaw),
    NewDest {
        service: ServiceRaw,
        dest: DestRaw,
    },
    SetDest {
        service: ServiceRaw,
        dest: DestRaw,
    },
    /// DEL_DEST: identity attributes of both.
    DelDest {
        service: ServiceRaw,
        dest: DestRaw,
    },
    /// FLUSH: delete every service of the socket's network namespace.
    Flush,
    /// ZERO: reset the counters of one service, or of all of them.
    Zero(Option<ServiceRaw>),
    /// SET_CONFIG: 0 leaves a timeout unchanged.
    SetTimeouts(TimeoutsRaw),
    /// NEW_DAEMON: start a sync daemon.
    NewDaemon(DaemonRaw),
    /// DEL_DAEMON: stop the sync daemon in `state` (1 master, 2 backup).
    DelDaemon {
        state: u32,
    },
}

impl IpvsRequest {
    pub fn cmd(&self) -> IpvsCmd {
        match self {
            IpvsRequest::NewService(_) => IpvsCmd::NewService,
            IpvsRequest::SetService(_) => IpvsCmd::SetService,
            IpvsRequest::DelService(_) => IpvsCmd::DelService,
            IpvsRequest::NewDest { .. } => IpvsCmd::NewDest,
            IpvsRequest::SetDest { .. } => IpvsCmd::SetDest,
            IpvsRequest::DelDest { .. } => IpvsCmd::DelDest,
            IpvsRequest::Flush => IpvsCmd::Flush,
            IpvsRequest::Zero(_) => IpvsCmd::Zero,
            IpvsRequest::SetTimeouts(_) => IpvsCmd::SetConfig,
            IpvsRequest::NewDaemon(_) => IpvsCmd::NewDaemon,
            IpvsRequest::DelDaemon { .. } => IpvsCmd::DelDaemon,
        }
    }

    /// The message this request is sent as.
    pub fn to_message(&self) -> IpvsMessage {
        let attrs = match self {
            IpvsRequest::NewService(s) | IpvsRequest::SetService(s) => {
                vec![IpvsAttr::Service(s.to_attrs())]
            }
            IpvsRequest::DelService(s) => vec![IpvsAttr::Service(s.identity_attrs())],
            IpvsRequest::NewDest { service, dest } | IpvsRequest::SetDest { service, dest } => {
                vec![
                    IpvsAttr::Service(service.identity_attrs()),
                    IpvsAttr::Dest(dest.to_attrs()),
                ]
            }
            IpvsRequest::DelDest { service, dest } => vec![
                IpvsAttr::Service(service.identity_attrs()),
                IpvsAttr::Dest(dest.identity_attrs()),
            ],
            IpvsRequest::Flush => Vec::new(),
            IpvsRequest::Zero(None) => Vec::new(),
            IpvsRequest::Zero(Some(s)) => vec![IpvsAttr::Service(s.identity_attrs())],
            IpvsRequest::SetTimeouts(t) => t.to_attrs(),
            IpvsRequest::NewDaemon(d) => vec![IpvsAttr::Daemon(d.to_attrs())],
            IpvsRequest::DelDaemon { state } => {
                vec![IpvsAttr::Daemon(vec![DaemonAttr::State(*state)])]
            }
        };
        IpvsMessage::new(self.cmd(), attrs)
    }
}

/// Read requests: the messages to send for each query.
impl IpvsMessage {
    /// GET_SERVICE, to be sent with NLM_F_DUMP: lists every service.
    pub fn dump_services() -> IpvsMessage {
        IpvsMessage::new(IpvsCmd::GetService, Vec::new())
    }

    /// GET_SERVICE as a single request: one service by identity (ESRCH when missing).
    pub fn get_service(service: &ServiceRaw) -> IpvsMessage {
        IpvsMessage::new(
            IpvsCmd::GetService,
            vec![IpvsAttr::Service(service.identity_attrs())],
        )
    }

    /// GET_DEST (dump only): the real servers of one service. A missing service gives an
    /// empty dump, not an error.
    pub fn dump_dests(service: &ServiceRaw) -> IpvsMessage {
        IpvsMessage::new(
            IpvsCmd::GetDest,
            vec![IpvsAttr::Service(service.identity_attrs())],
        )
    }

    /// GET_DAEMON (dump only).
    pub fn dump_daemons() -> IpvsMessage {
        IpvsMessage::new(IpvsCmd::GetDaemon, Vec::new())
    }

    /// GET_CONFIG: the timeouts.
    pub fn get_config() -> IpvsMessage {
        IpvsMessage::new(IpvsCmd::GetConfig, Vec::new())
    }

    /// GET_INFO: version and connection table size.
    pub fn get_info() -> IpvsMessage {
        IpvsMessage::new(IpvsCmd::GetInfo, Vec::new())
    }
}

/// `IP_VS_STATE_MASTER` / `IP_VS_STATE_BACKUP` as a word.
pub fn daemon_state_name(state: u32) -> &'static str {
    match state {
        IP_VS_STATE_MASTER => "master",
        IP_VS_STATE_BACKUP => "backup",
        _ => "unknown",
    }
}
