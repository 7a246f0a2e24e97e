//! Health checking of real servers: `http`, `tcp` and `exec` probes, each bounded by one total
//! deadline, and a [`Monitor`] that runs every check on its own timer and turns results into
//! up/down with rise/fall counting.
//!
//! This crate never touches the kernel and never reads manifests: the daemon tells the monitor
//! which checks to run and reads health back. Exec probes never go through a shell.

mod exec;
mod http;
pub mod monitor;
pub mod probe;
mod tcp;

pub use monitor::{
    CheckConfig, HealthReader, HealthState, Monitor, SameChecks, Status, Target, Transition,
};
pub use probe::{
    CheckError, ExecProbe, HttpProbe, IdleConnection, KeepingFuture, NetProber, Probe, ProbeFuture,
    Prober, TcpProbe, run_probe, run_probe_keeping,
};
