//! Errors of the VIP code: each names the operation, the interface and the address.

use std::net::IpAddr;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum VipError {
    /// The netlink socket could not be opened.
    #[error("cannot open a NETLINK_ROUTE socket: {0}")]
    Socket(#[source] std::io::Error),

    /// The kernel refused an operation (`errno` is positive).
    #[error("{op}: {message}{hint}")]
    Kernel {
        /// The operation and its object, e.g. `add 10.0.0.1/32 to lvs0`.
        op: String,
        errno: i32,
        /// strerror text plus the kernel's extended-ACK message.
        message: String,
        /// What to do, prefixed with "; " when present.
        hint: String,
    },

    /// The kernel's reply could not be read.
    #[error("{op}: {detail}")]
    Protocol { op: String, detail: String },

    /// An interface name the kernel would refuse.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterface { name: String, reason: String },

    /// The interface does not exist (and lvsctl does not create it here).
    #[error("interface {0} does not exist")]
    NoInterface(String),

    /// The address is on the interface but lvsctl did not put it there.
    #[error(
        "{addr} is on {interface} but was not added by lvsctl; lvsctl never removes or takes over \
         an address it did not add (delete it by hand if lvsctl should manage it)"
    )]
    NotOwned { interface: String, addr: IpAddr },

    /// The kernel accepted the address but did not record lvsctl's ownership marker.
    #[error(
        "{interface}: the kernel did not record the address protocol (IFA_PROTO) of {addr}, so \
         lvsctl could not mark it as its own; it needs Linux 5.18 or later (the address was \
         removed again)"
    )]
    OwnershipUnsupported { interface: String, addr: IpAddr },

    /// A sysctl file could not be read or written.
    #[error("{action} {}: {source}{hint}", path.display())]
    Sysctl {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
        hint: String,
    },
}

impl VipError {
    /// The kernel's errno when the failure came from the kernel or the OS.
    pub fn errno(&self) -> Option<i32> {
        match self {
            VipError::Kernel { errno, .. } => Some(*errno),
            VipError::Socket(e) | VipError::Sysctl { source: e, .. } => e.raw_os_error(),
            _ => None,
        }
    }
}
