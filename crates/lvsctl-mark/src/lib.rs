//! lvsctl's own mangle chain `LVSCTL-MARK` (iptables for IPv4, ip6tables for IPv6): renders
//! [`MarkRule`]s, edits the chain in place by rule number or rewrites it, atomically with
//! `*-restore --noflush`, keeps exactly one jump to it from PREROUTING and from OUTPUT, and
//! reads it back from `*-save`. It must never touch a rule outside that chain other than its
//! own two jumps, and never pass manifest text to iptables unvalidated.
//!
//! ```text
//! -A PREROUTING -j LVSCTL-MARK
//! -A OUTPUT -j LVSCTL-MARK
//! -A LVSCTL-MARK -d 192.168.6.101/32 -p tcp -m multiport --dports 22,80
//!    -m comment --comment lvsctl:web-ssh -j MARK --set-mark 10
//! ```
//!
//! All calls run `iptables-*-save` / `iptables-*-restore` as subprocesses with an explicit
//! argv (no shell), in the caller's network namespace, and block; a read first asks the kernel
//! (nf_tables over netlink, or the x_tables table list) whether the chain can exist at all,
//! and with nf_tables reuses the last `*-save` output while the ruleset generation stands.

mod backend;
mod cache;
mod edit;
mod error;
mod probe;
mod rule;
mod save;
mod xtables;

pub use backend::{BACKEND_ENV, Detected, IptablesBackend, find_program};
pub use edit::{MAX_EDITS, edit_input};
pub use error::MarkError;
pub use rule::{
    MAX_SERVICE_NAME, parse_args, render_args, restore_line, split_save_line, validate,
};
pub use save::{HOOKS, ObservedChain, UnparsedRule, parse_save};
pub use xtables::{Config, Xtables, remove_input, write_input};

#[doc(no_inline)]
pub use lvsctl_model::{Family, MarkChain, MarkRule};

/// The chain lvsctl owns in the mangle table.
pub const CHAIN: &str = "LVSCTL-MARK";

/// Every rule's comment is this prefix followed by the owning service's name.
pub const COMMENT_PREFIX: &str = "lvsctl:";
