//! The plan as data: one [`Op`] per kernel write, each carrying everything needed to run it and
//! the before/after values to show.

use std::net::IpAddr;

use lvsctl_model::{DestKey, DestSpec, Family, MarkRule, ServiceKey, ServiceSpec};
use serde::{Deserialize, Serialize};

/// Why an object is deleted or replaced; for display only, never read by the applier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The object is not in the manifest.
    NotInManifest,
    /// The object is replaced by one whose identity differs (`field` names what changed).
    Replaced { by: String, field: String },
    /// An address lvsctl added on an interface other than `director.vip_interface` (which
    /// names `interface`): it was the VIP interface before.
    NotOnVipInterface { interface: String },
}

/// One changed field, for display: `scheduler: wlc -> rr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// One kernel write. The planner orders them; the applier walks them in order.
///
/// A plan of 10,000 services holds ~110,000 of these, nearly all `AddDest`, so the enum is kept
/// small (pinned by a test): what is large and rare (service specs, `UpdateDest`'s before/after,
/// delete reasons) is boxed, and `AddDest` stays inline. `Box` is transparent to serde, so the
/// JSON is the same as unboxed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Put an address lvsctl owns on the VIP interface (created as a dummy link if missing).
    AddVip { interface: String, addr: IpAddr },
    /// Remove an address lvsctl added earlier.
    DeleteVip {
        interface: String,
        addr: IpAddr,
        reason: Box<Reason>,
    },
    AddService {
        key: ServiceKey,
        spec: Box<ServiceSpec>,
        /// Set when this service replaces one whose identity changed (`-/+`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<ServiceKey>,
    },
    /// In-place edit (SET_SERVICE): connections and persistence templates survive.
    UpdateService {
        key: ServiceKey,
        before: Box<ServiceSpec>,
        after: Box<ServiceSpec>,
        changes: Vec<FieldChange>,
    },
    /// Deletes the service and, with it, its real servers.
    DeleteService {
        key: ServiceKey,
        spec: Box<ServiceSpec>,
        reason: Box<Reason>,
    },
    AddDest {
        service: ServiceKey,
        key: DestKey,
        spec: DestSpec,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<DestKey>,
    },
    /// In-place edit (SET_DEST).
    UpdateDest {
        service: ServiceKey,
        key: DestKey,
        before: Box<DestSpec>,
        after: Box<DestSpec>,
        changes: Vec<FieldChange>,
    },
    DeleteDest {
        service: ServiceKey,
        key: DestKey,
        spec: DestSpec,
        reason: Box<Reason>,
    },
    /// Quiesce a real server that is no longer desired but still has active connections: set
    /// its weight to 0 (SET_DEST with `before` and weight 0) and delete it on a later pass, once
    /// its connections are gone or its drain time is up.
    DrainDest {
        service: ServiceKey,
        key: DestKey,
        before: DestSpec,
        /// The connections holding the drain: active ones, and inactive ones too for a UDP
        /// service (IPVS counts every UDP flow as inactive).
        active_conns: u32,
    },
    /// Rewrite lvsctl's mangle chain for `family` atomically to exactly `rules`, and make sure
    /// PREROUTING and OUTPUT jump to it. `added`/`removed` are the delta, for display.
    WriteMarkChain {
        family: Family,
        rules: Vec<MarkRule>,
        added: Vec<MarkRule>,
        removed: Vec<MarkRule>,
    },
    /// Remove lvsctl's mangle chain for `family` and its jumps (nothing left to mark).
    RemoveMarkChain {
        family: Family,
        removed: Vec<MarkRule>,
    },
}

/// An ordered plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    pub ops: Vec<Op>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan of 10,000 services x 10 real servers is ~110,000 ops: every byte of `Op` is
    /// ~110 KB of apply's peak. A new large inline field in any variant grows all of them.
    #[test]
    fn op_stays_small() {
        assert!(
            std::mem::size_of::<Op>() <= 88,
            "size_of::<Op>() = {}; box the new large field",
            std::mem::size_of::<Op>()
        );
    }
}
