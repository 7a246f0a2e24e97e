//! Errors of the mark-chain code: each names the command or rule and says what to do.

use std::time::Duration;

use lvsctl_model::Family;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MarkError {
    /// A rule cannot be rendered (bad service name, no ports, too many ports, wrong family).
    #[error("invalid mark rule {rule}: {reason}")]
    InvalidRule { rule: String, reason: String },

    /// The program could not be started at all.
    #[error(
        "could not run {program}: {source} (install Debian package iptables, or choose the other \
         backend with LVSCTL_IPTABLES=nft|legacy)"
    )]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// Another process held the xtables lock for longer than lvsctl waits.
    #[error(
        "{command}: another program held the xtables lock for more than {} s (stderr: {stderr}); \
         retry later, or find the holder (e.g. `fuser -v /run/xtables.lock`)",
        wait.as_secs()
    )]
    LockTimeout {
        command: String,
        wait: Duration,
        stderr: String,
    },

    /// The program did not end in time (stuck on the kernel or on another program) and was
    /// killed.
    #[error(
        "{command}: still running after {} s, killed (a restore commits all or nothing); look \
         for a hung iptables or nft process, or for kernel trouble in dmesg; the next run reads \
         the chain again",
        timeout.as_secs()
    )]
    Hung { command: String, timeout: Duration },

    /// The program ran and failed.
    #[error("{command} failed ({status}): {stderr}; {hint}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
        hint: String,
    },

    /// Something outside lvsctl's two jumps refers to the chain, so it cannot be deleted.
    #[error(
        "{family} mangle chain {chain} is still referenced by rules lvsctl did not add: {}; \
         remove them by hand (lvsctl never edits rules outside its chain)",
        rules.join("; ")
    )]
    ForeignReference {
        family: Family,
        chain: &'static str,
        rules: Vec<String>,
    },

    /// The chain was written but does not read back as written (e.g. a concurrent writer).
    #[error("{family} mangle chain {chain} does not read back as written: {detail}; run again")]
    ReadBack {
        family: Family,
        chain: &'static str,
        detail: String,
    },

    /// The iptables backend could not be chosen.
    #[error("cannot choose an iptables backend: {0}")]
    Backend(String),
}
