//! lvsctl's domain model: typed director state (IPVS services, real servers, MARK rules, VIPs)
//! and the manifest that describes the desired state. Pure: no I/O, no kernel access.
//!
//! Everything that arrives as text (addresses, ports, schedulers, durations) is parsed once, at
//! the edge, into the types below; the planner and the kernel backend only see these types.

pub mod manifest;
pub mod state;

pub use state::*;
