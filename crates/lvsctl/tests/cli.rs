//! End-to-end tests of the `lvsctl` binary: every command runs as a real process against the
//! file-backed fake kernel (`LVSCTL_FAKE_KERNEL`), one private directory per test, and the
//! tests assert exact outputs, exit codes and the director state left behind.
//!
//! Golden files live in `tests/fixtures/`; after a deliberate output change, rewrite them with
//! `LVSCTL_BLESS=1 cargo test -p lvsctl --test cli` and review the diff.

#![allow(clippy::unwrap_used)]

#[path = "cli/support.rs"]
mod support;

#[path = "cli/apply.rs"]
mod apply;
#[path = "cli/docs.rs"]
mod docs;
#[path = "cli/export.rs"]
mod export;
#[path = "cli/import.rs"]
mod import;
#[path = "cli/plan.rs"]
mod plan;
#[path = "cli/status.rs"]
mod status;
#[path = "cli/validate.rs"]
mod validate;
