//! lvsctl's IPVS client: a synchronous generic-netlink socket that reads and writes the
//! kernel's IPVS tables (services, real servers, timeouts, sync daemons) and the mapping
//! between those tables and lvsctl's model (`lvsctl-model` state, `lvsctl-plan` ops). It owns
//! only IPVS I/O: no MARK rules, no addresses, no policy about what to change.
//!
//! ```no_run
//! use lvsctl_ipvs::IpvsSocket;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let ops: Vec<lvsctl_plan::Op> = Vec::new();
//! // Fails with "IPVS is not available in this kernel (load the ip_vs module: ...)" when
//! // the family is missing.
//! let mut ipvs = IpvsSocket::open()?;
//! let (services, counters) = ipvs.observe_services()?;
//! // Pipelined; one result per op attempted, stopping after the first failure.
//! for r in ipvs.execute_ops(&ops, true) {
//!     r?;
//! }
//! # let _ = (services, counters);
//! # Ok(())
//! # }
//! ```
//!
//! - [`IpvsSocket`]: raw operations on [`codec`] records (`services`, `dests`, `info`,
//!   `timeouts`, `daemons`, `new_service`, ..., `flush`, `zero`) and
//!   [`IpvsSocket::execute_batch`], which sends many writes back to back and matches ACKs by
//!   sequence number.
//! - Model level: [`IpvsSocket::observe_services`] (normalised state plus counters; IPv4
//!   real servers through the legacy getsockopt interface where that is exact, netlink
//!   otherwise, see [`IpvsSocket::observe_services_reported`]),
//!   [`IpvsSocket::execute_ops`] (plan ops, with a read-back of tunnel settings), and the pure
//!   mappings ([`service_of`], [`service_raw`], [`dest_raw`], [`request_for_op`],
//!   [`op_error`]).
//!
//! The socket is blocking; async callers run it on a blocking thread. It acts on the IPVS
//! tables of the network namespace of the thread that opened it.

mod error;
mod model;
mod observe;
mod socket;
mod sockopt;

pub use error::{IpvsError, errno_description, errno_name};
pub use model::*;
pub use observe::{NetlinkReason, ObserveReport};
pub use socket::IpvsSocket;

/// The IPVS codec (`lvsctl-netlink`), re-exported for its records and constants.
pub use lvsctl_netlink as codec;
