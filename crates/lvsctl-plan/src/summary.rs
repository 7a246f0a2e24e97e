//! Counting a plan the way Terraform does, and the guard that refuses destructive plans unless
//! the operator asked for them.

use lvsctl_model::{ServiceKey, State};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{Op, Plan};

/// How many objects a plan adds, changes in place and destroys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Summary {
    /// Every object the plan touches.
    pub fn total(&self) -> usize {
        self.add + self.change + self.destroy
    }
}

/// Counts a plan: a replacement counts on both sides (its add and its delete), each MARK rule
/// added or removed counts as one add or destroy, a drain counts as a change. A mark-chain write
/// that adds and removes no rule (reorder, or restoring the jumps) counts as one change; removing
/// a chain that holds no rule counts as one destroy.
pub fn summary(plan: &Plan) -> Summary {
    let mut s = Summary::default();
    for op in &plan.ops {
        match op {
            Op::AddVip { .. } | Op::AddService { .. } | Op::AddDest { .. } => s.add += 1,
            Op::UpdateService { .. } | Op::UpdateDest { .. } | Op::DrainDest { .. } => {
                s.change += 1
            }
            Op::DeleteVip { .. } | Op::DeleteService { .. } | Op::DeleteDest { .. } => {
                s.destroy += 1
            }
            Op::WriteMarkChain { added, removed, .. } => {
                if added.is_empty() && removed.is_empty() {
                    s.change += 1;
                }
                s.add += added.len();
                s.destroy += removed.len();
            }
            Op::RemoveMarkChain { removed, .. } => s.destroy += removed.len().max(1),
        }
    }
    s
}

fn destroys_all_message(services: usize, examples: &str, added: usize, moved: usize) -> String {
    if added == 0 {
        format!(
            "refusing to delete all {services} IPVS services of the director ({examples}); \
             pass --allow-destroy if the manifest really is meant to empty the table"
        )
    } else if moved > 0 {
        format!(
            "refusing to delete all {services} IPVS services of the director ({examples}): \
             the manifest keeps none of them and adds {added} other service(s), {moved} with \
             the same port and real servers on another VIP. That is a VIP move, or the \
             manifest of another director fronting the same real servers; pass \
             --allow-destroy if it is a move"
        )
    } else {
        format!(
            "refusing to delete all {services} IPVS services of the director ({examples}): \
             the manifest keeps none of them and adds {added} other service(s); pass \
             --allow-destroy if it really replaces the whole table"
        )
    }
}

fn moved_vip(new: &ServiceKey, old: &ServiceKey) -> bool {
    matches!(
        (new, old),
        (ServiceKey::Inet { vip: a, .. }, ServiceKey::Inet { vip: b, .. }) if a != b
    )
}

/// Why [`destroy_guard`] refused a plan.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GuardError {
    /// The plan deletes every IPVS service the director has.
    #[error("{}", destroys_all_message(*.services, .examples, *.added, *.moved))]
    DestroysAll {
        services: usize,
        /// The first few deleted services, for the message.
        examples: String,
        /// Services the plan adds: an emptied manifest adds none; a manifest for another setup
        /// or another director shares no service with this one and adds its own.
        added: usize,
        /// Of those, services paired as the same one on another VIP.
        moved: usize,
    },
    /// The plan touches more objects than the operator allowed.
    #[error(
        "refusing a plan that changes {changes} objects ({add} to add, {change} to change, \
         {destroy} to destroy), more than --max-changes {max} allows; raise --max-changes \
         if that is intended"
    )]
    TooManyChanges {
        changes: usize,
        max: usize,
        add: usize,
        change: usize,
        destroy: usize,
    },
}

/// Refuses plans an operator is unlikely to want without saying so: one that deletes every
/// service of a non-empty IPVS table (an empty or wrong manifest), and one that touches more
/// than `max_changes` objects (counted as [`summary`] does).
///
/// The change limit is checked first, so a caller honouring `--allow-destroy` can simply ignore
/// [`GuardError::DestroysAll`] and still enforce `--max-changes`.
pub fn destroy_guard(
    plan: &Plan,
    observed: &State,
    max_changes: Option<usize>,
) -> Result<(), GuardError> {
    if let Some(max) = max_changes {
        let s = summary(plan);
        if s.total() > max {
            return Err(GuardError::TooManyChanges {
                changes: s.total(),
                max,
                add: s.add,
                change: s.change,
                destroy: s.destroy,
            });
        }
    }
    if !observed.services.is_empty() {
        // A service that only changed port, protocol or mark (the plan pairs it: `-/+`) goes
        // on under its new key: deleting it is not emptying the table. A VIP-only change does
        // not count: two directors of an active/active pair front the same real servers on
        // different VIPs, and the other one's manifest looks exactly like a VIP move.
        let replaced = plan
            .ops
            .iter()
            .filter(|op| match op {
                Op::AddService {
                    key,
                    replaces: Some(old),
                    ..
                } => !moved_vip(key, old),
                _ => false,
            })
            .count();
        let deleted: Vec<String> = plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::DeleteService { key, .. } if observed.services.contains_key(key) => {
                    Some(key.to_string())
                }
                _ => None,
            })
            .collect();
        if deleted.len() == observed.services.len() && replaced < deleted.len() {
            const SHOWN: usize = 3;
            let mut examples = deleted
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if deleted.len() > SHOWN {
                examples.push_str(&format!(" and {} more", deleted.len() - SHOWN));
            }
            let added = plan
                .ops
                .iter()
                .filter(|op| matches!(op, Op::AddService { .. }))
                .count();
            let moved = plan
                .ops
                .iter()
                .filter(|op| {
                    matches!(op, Op::AddService { key, replaces: Some(old), .. } if moved_vip(key, old))
                })
                .count();
            return Err(GuardError::DestroysAll {
                services: deleted.len(),
                examples,
                added,
                moved,
            });
        }
    }
    Ok(())
}
