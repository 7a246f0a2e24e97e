//! lvsctl's diff engine: turns (desired, observed) [`State`]s into an ordered, minimal [`Plan`],
//! counts and renders plans, and offers an in-memory kernel ([`fake::FakeKernel`]) for tests.
//! It performs no I/O and depends on no I/O crate (no tokio, netlink, iptables, process or fs);
//! the kernel backend executes its plans through the [`Backend`] trait.
//!
//! The order of a plan is the safety argument, step by step:
//! 1. `AddVip`: VIPs are present before services use them;
//! 2. `WriteMarkChain` removing only rules for traffic the manifest no longer marks at all;
//! 3. `AddService` / `UpdateService`, in service key order;
//! 4. `AddDest`, then `UpdateDest` and `DrainDest`: new real servers before old ones go;
//! 5. `DeleteDest` of surviving services;
//! 6. `WriteMarkChain` with the full desired rules (fwmark services and their real servers exist
//!    before the rules that feed them) or `RemoveMarkChain`;
//! 7. `DeleteService` (its real servers go with it), after the rules feeding it are gone;
//! 8. `DeleteVip`, only for addresses lvsctl added.

pub mod backend;
mod diff;
pub mod fake;
pub mod op;
pub mod render;
mod summary;

pub use backend::{Backend, BackendError, Errno};
pub use diff::{PlanOptions, plan, plan_with};
pub use op::*;
pub use render::{JSON_FORMAT_VERSION, RenderOpts, render_json, render_text, render_text_to};
pub use summary::{GuardError, Summary, destroy_guard, summary};

pub use lvsctl_model::State;
