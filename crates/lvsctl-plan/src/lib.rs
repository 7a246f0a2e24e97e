//! lvsctl's diff engine: turns (desired, observed) [`State`]s into an ordered, minimal [`Plan`].
//! It performs no I/O and depends on no I/O crate (no tokio, netlink, iptables, process or fs);
//! the kernel backend executes its plans through the [`Backend`] trait.

pub mod backend;
pub mod op;

pub use backend::{Backend, BackendError, Errno};
pub use op::*;

pub use lvsctl_model::State;
