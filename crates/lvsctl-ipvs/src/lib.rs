//! lvsctl's IPVS client: a synchronous generic-netlink socket that reads and writes the
//! kernel's IPVS tables (services, real servers, timeouts, sync daemons) and the mapping
//! between those tables and lvsctl's model (`lvsctl-model` state, `lvsctl-plan` ops). It owns
//! only IPVS I/O: no MARK rules, no addresses, no policy about what to change.

mod error;
mod model;
mod socket;

pub use error::{IpvsError, errno_description, errno_name};
pub use model::*;
pub use socket::IpvsSocket;

pub use lvsctl_netlink as codec;
