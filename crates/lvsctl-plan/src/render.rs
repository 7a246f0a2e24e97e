//! Showing a plan: Terraform-like text for people, a versioned JSON document for programs, and a
//! one-line `Display` per op for logs and error messages. Kept apart from the diff, which never
//! formats anything for display beyond the [`FieldChange`] values.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use lvsctl_model::{DestSpec, Family, MarkRule, ServiceKey, ServiceSpec};
use serde::Serialize;

use crate::diff::{flag_names, netmask};
use crate::summary::{Summary, summary};
use crate::{FieldChange, Op, Plan, Reason};

/// How [`render_text`] decorates its output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOpts {
    /// ANSI colours for the symbols: green `+`, yellow `~`, red `-`. Only for a terminal.
    pub color: bool,
    /// Where each desired service is declared (`manifests/web.yaml:4`), shown as a comment.
    pub locations: BTreeMap<ServiceKey, String>,
}

/// The version of the JSON document [`render_json`] writes; bumped on incompatible changes.
pub const JSON_FORMAT_VERSION: &str = "1";

/// Comments start at this column when the line is shorter.
const COMMENT_COLUMN: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Symbol {
    Add,
    Change,
    Destroy,
    Replace,
}

impl Symbol {
    fn plain(self) -> &'static str {
        match self {
            Symbol::Add => "+",
            Symbol::Change => "~",
            Symbol::Destroy => "-",
            Symbol::Replace => "-/+",
        }
    }

    fn colored(self) -> &'static str {
        match self {
            Symbol::Add => "\x1b[32m+\x1b[0m",
            Symbol::Change => "\x1b[33m~\x1b[0m",
            Symbol::Destroy => "\x1b[31m-\x1b[0m",
            Symbol::Replace => "\x1b[31m-\x1b[0m/\x1b[32m+\x1b[0m",
        }
    }

    fn meaning(self) -> &'static str {
        match self {
            Symbol::Add => "add",
            Symbol::Change => "change in place",
            Symbol::Destroy => "destroy",
            Symbol::Replace => "replace (the new one is added before the old one goes)",
        }
    }
}

struct Writer<'a> {
    out: String,
    opts: &'a RenderOpts,
    /// Where `out` goes once it is [`SPILL`] bytes long; `None` keeps it all (`render_text`).
    sink: Option<&'a mut dyn std::io::Write>,
    /// The first write error; nothing more is written after it.
    error: Option<std::io::Error>,
}

/// Chunk size of a streamed render.
const SPILL: usize = 64 * 1024;

impl Writer<'_> {
    /// Writes `out` to the sink once it is long enough (each line ends whole in `out`).
    fn spill(&mut self, at_least: usize) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.out.len() < at_least {
            return;
        }
        if self.error.is_none()
            && let Err(e) = sink.write_all(self.out.as_bytes())
        {
            self.error = Some(e);
        }
        self.out.clear();
    }

    /// One operation line: the symbol right-aligned in three columns, the body, and an optional
    /// comment aligned at [`COMMENT_COLUMN`].
    fn line(&mut self, symbol: Symbol, body: &str, comment: Option<&str>) {
        let pad = 3usize.saturating_sub(symbol.plain().len());
        let sym = if self.opts.color {
            symbol.colored()
        } else {
            symbol.plain()
        };
        let mut text = format!("{:pad$}{sym} {body}", "");
        if let Some(comment) = comment {
            let width = pad + symbol.plain().len() + 1 + body.chars().count();
            let gap = COMMENT_COLUMN.saturating_sub(width).max(2);
            let _ = write!(text, "{:gap$}# {comment}", "");
        }
        self.out.push_str(&text);
        self.out.push('\n');
        self.spill(SPILL);
    }

    fn changes(&mut self, changes: &[FieldChange]) {
        let sym = if self.opts.color {
            Symbol::Change.colored()
        } else {
            Symbol::Change.plain()
        };
        for c in changes {
            let _ = writeln!(
                self.out,
                "      {sym} {}: {} -> {}",
                c.field, c.before, c.after
            );
        }
        self.spill(SPILL);
    }
}

/// Renders a plan for people, one line per operation:
///
/// ```text
///   + service tcp/192.168.6.101:80  scheduler=rr persistence=120s
///   ~ service tcp/192.168.6.101:22
///       ~ scheduler: wlc -> rr
///   - dest 192.168.60.103:80 -> tcp/192.168.6.101:80           # not in manifest
///
/// Plan: 1 to add, 1 to change, 1 to destroy.
/// ```
pub fn render_text(plan: &Plan, opts: &RenderOpts) -> String {
    let mut w = Writer {
        out: String::new(),
        opts,
        sink: None,
        error: None,
    };
    render_into(plan, &mut w);
    w.out
}

/// [`render_text`], written to `sink` in chunks as it is rendered: a plan of 110,000 operations
/// (10,000 services x 10 real servers) is 15 MB of text that need not be held at once.
pub fn render_text_to(
    plan: &Plan,
    opts: &RenderOpts,
    sink: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut w = Writer {
        out: String::new(),
        opts,
        sink: Some(sink),
        error: None,
    };
    render_into(plan, &mut w);
    w.spill(0);
    match w.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn render_into(plan: &Plan, w: &mut Writer<'_>) {
    let opts = w.opts;
    if plan.is_empty() {
        w.out.push_str(
            "No changes. IPVS services, real servers, MARK rules and VIPs match the manifest.\n",
        );
        return;
    }

    let mut used = Vec::new();
    for op in &plan.ops {
        used.extend(symbols(op));
    }
    used.sort();
    used.dedup();
    let legend: Vec<String> = used
        .iter()
        .map(|s| format!("{} {}", s.plain(), s.meaning()))
        .collect();
    let _ = writeln!(w.out, "Symbols: {}\n", legend.join(", "));

    // The field that made each replaced service or real server go, for the `-/+` line.
    let mut replaced_field: BTreeMap<String, &str> = BTreeMap::new();
    for op in &plan.ops {
        match op {
            Op::DeleteService { key, reason, .. } => {
                if let Reason::Replaced { field, .. } = &**reason {
                    replaced_field.insert(key.to_string(), field);
                }
            }
            Op::DeleteDest {
                service,
                key,
                reason,
                ..
            } => {
                if let Reason::Replaced { field, .. } = &**reason {
                    replaced_field.insert(format!("{key} -> {service}"), field);
                }
            }
            _ => {}
        }
    }
    let changed = |old: String| {
        let field = replaced_field.get(&old).copied().unwrap_or("identity");
        format!("{field} changed")
    };

    for op in &plan.ops {
        match op {
            Op::AddVip { interface, addr } => {
                w.line(Symbol::Add, &vip_body(interface, addr), None);
            }
            Op::DeleteVip {
                interface,
                addr,
                reason,
            } => {
                w.line(
                    Symbol::Destroy,
                    &vip_body(interface, addr),
                    Some(&reason_text(reason)),
                );
            }
            Op::AddService {
                key,
                spec,
                replaces,
            } => {
                let body = format!("service {key}  {}", service_attrs(key.family(), spec));
                let location = opts.locations.get(key).map(String::as_str);
                match replaces {
                    None => w.line(Symbol::Add, &body, location),
                    Some(old) => {
                        let mut comment = format!("replaces {old} ({})", changed(old.to_string()));
                        if let Some(loc) = location {
                            let _ = write!(comment, "; {loc}");
                        }
                        w.line(Symbol::Replace, &body, Some(&comment));
                    }
                }
            }
            Op::UpdateService { key, changes, .. } => {
                let location = opts.locations.get(key).map(String::as_str);
                w.line(Symbol::Change, &format!("service {key}"), location);
                w.changes(changes);
            }
            Op::DeleteService { key, reason, .. } => {
                w.line(
                    Symbol::Destroy,
                    &format!("service {key}"),
                    Some(&reason_text(reason)),
                );
            }
            Op::AddDest {
                service,
                key,
                spec,
                replaces,
            } => {
                let body = format!("dest {key} -> {service}  {}", dest_attrs(spec));
                match replaces {
                    None => w.line(Symbol::Add, &body, None),
                    Some(old) => {
                        let comment = format!(
                            "replaces {old} ({})",
                            changed(format!("{old} -> {service}"))
                        );
                        w.line(Symbol::Replace, &body, Some(&comment));
                    }
                }
            }
            Op::UpdateDest {
                service,
                key,
                changes,
                ..
            } => {
                w.line(Symbol::Change, &format!("dest {key} -> {service}"), None);
                w.changes(changes);
            }
            Op::DrainDest {
                service,
                key,
                before,
                active_conns,
            } => {
                let conns = if *active_conns == 1 {
                    "connection"
                } else {
                    "connections"
                };
                // UDP flows are all inactive to IPVS; they count too (see `DrainDest`), for a
                // UDP service and for a fwmark service that may carry UDP.
                let active = match service {
                    ServiceKey::Inet { .. } if !service.is_udp() => "active ",
                    _ => "",
                };
                w.line(
                    Symbol::Change,
                    &format!(
                        "drain {key} -> {service} (weight {} -> 0, {active_conns} {active}{conns})",
                        before.weight
                    ),
                    Some("not in manifest; deleted once drained"),
                );
            }
            Op::DeleteDest {
                service,
                key,
                reason,
                ..
            } => {
                w.line(
                    Symbol::Destroy,
                    &format!("dest {key} -> {service}"),
                    Some(&reason_text(reason)),
                );
            }
            Op::WriteMarkChain {
                family,
                rules,
                added,
                removed,
            } => {
                for rule in removed {
                    w.line(
                        Symbol::Destroy,
                        &format!("mark {rule}"),
                        Some("not in manifest"),
                    );
                }
                for rule in added {
                    w.line(Symbol::Add, &format!("mark {rule}"), None);
                }
                if added.is_empty() && removed.is_empty() {
                    w.line(
                        Symbol::Change,
                        &format!("mark chain {family}"),
                        Some(&format!(
                            "rewrite {}: rule order and PREROUTING/OUTPUT jumps",
                            count_rules(rules)
                        )),
                    );
                }
            }
            Op::RemoveMarkChain { family, removed } => {
                for rule in removed {
                    w.line(
                        Symbol::Destroy,
                        &format!("mark {rule}"),
                        Some("not in manifest"),
                    );
                }
                if removed.is_empty() {
                    w.line(
                        Symbol::Destroy,
                        &format!("mark chain {family}"),
                        Some("no mark rules in manifest"),
                    );
                }
            }
        }
    }

    let s = summary(plan);
    let _ = writeln!(
        w.out,
        "\nPlan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    );
}

/// The symbols an op's lines use, for the legend.
fn symbols(op: &Op) -> Vec<Symbol> {
    match op {
        Op::AddVip { .. } => vec![Symbol::Add],
        Op::AddService {
            replaces: Some(_), ..
        }
        | Op::AddDest {
            replaces: Some(_), ..
        } => vec![Symbol::Replace],
        Op::AddService { .. } | Op::AddDest { .. } => vec![Symbol::Add],
        Op::UpdateService { .. } | Op::UpdateDest { .. } | Op::DrainDest { .. } => {
            vec![Symbol::Change]
        }
        Op::DeleteVip { .. } | Op::DeleteService { .. } | Op::DeleteDest { .. } => {
            vec![Symbol::Destroy]
        }
        Op::WriteMarkChain { added, removed, .. } => {
            let mut v = Vec::new();
            if !added.is_empty() {
                v.push(Symbol::Add);
            }
            if !removed.is_empty() {
                v.push(Symbol::Destroy);
            }
            if v.is_empty() {
                v.push(Symbol::Change);
            }
            v
        }
        Op::RemoveMarkChain { .. } => vec![Symbol::Destroy],
    }
}

fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::NotInManifest => "not in manifest".to_owned(),
        Reason::Replaced { by, field } => format!("replaced by {by} ({field} changed)"),
        Reason::NotOnVipInterface { interface } => format!("not on vip_interface {interface}"),
    }
}

fn vip_body(interface: &str, addr: &IpAddr) -> String {
    let prefix = Family::of(addr).max_prefix();
    format!("vip {addr}/{prefix} on {interface}")
}

/// `scheduler=rr flags=sh-port persistence=120s netmask=255.255.255.0 pe=sip`.
fn service_attrs(family: Family, spec: &ServiceSpec) -> String {
    let mut out = format!("scheduler={}", spec.scheduler);
    if spec.flags != Default::default() {
        let _ = write!(out, " flags={}", flag_names(spec));
    }
    if let Some(p) = spec.persistence {
        let _ = write!(out, " persistence={}s", p.timeout);
        if p.netmask != family.max_prefix() {
            let _ = write!(out, " netmask={}", netmask(family, p.netmask));
        }
    }
    if let Some(pe) = &spec.pe_name {
        let _ = write!(out, " pe={pe}");
    }
    out
}

/// `fwd=dr weight=1 upper=100 lower=50`.
fn dest_attrs(spec: &DestSpec) -> String {
    let mut out = format!("fwd={} weight={}", spec.forward, spec.weight);
    if spec.upper_threshold != 0 {
        let _ = write!(out, " upper={}", spec.upper_threshold);
    }
    if spec.lower_threshold != 0 {
        let _ = write!(out, " lower={}", spec.lower_threshold);
    }
    out
}

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: &'static str,
    ops: &'a [Op],
    summary: Summary,
}

/// Renders a plan as a versioned JSON document:
/// `{"format_version": "1", "ops": [...], "summary": {"add": .., "change": .., "destroy": ..}}`.
/// Each op is tagged by `"op"` (`add_service`, `update_dest`, ...) and carries the fields of
/// [`Op`]. Field order is fixed, so the same plan always gives the same bytes.
pub fn render_json(plan: &Plan) -> String {
    let doc = JsonPlan {
        format_version: JSON_FORMAT_VERSION,
        ops: &plan.ops,
        summary: summary(plan),
    };
    match serde_json::to_string_pretty(&doc) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Every type in an Op serialises infallibly (no maps with non-string keys, no floats);
        // keep a valid document even so.
        Err(e) => format!(
            "{{\"format_version\": \"{JSON_FORMAT_VERSION}\", \"error\": {:?}}}\n",
            e.to_string()
        ),
    }
}

/// One line per op, for logs and error messages: `add real server 192.168.60.101:80 to
/// tcp/192.168.6.101:80`.
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddVip { interface, addr } => write!(f, "add {}", vip_body(interface, addr)),
            Op::DeleteVip {
                interface, addr, ..
            } => write!(f, "delete {}", vip_body(interface, addr)),
            Op::AddService { key, .. } => write!(f, "add service {key}"),
            Op::UpdateService { key, changes, .. } => {
                write!(f, "update service {key}")?;
                write_changes(f, changes)
            }
            Op::DeleteService { key, .. } => write!(f, "delete service {key}"),
            Op::AddDest { service, key, .. } => {
                write!(f, "add real server {key} to {service}")
            }
            Op::UpdateDest {
                service,
                key,
                changes,
                ..
            } => {
                write!(f, "update real server {key} of {service}")?;
                write_changes(f, changes)
            }
            Op::DrainDest {
                service,
                key,
                before,
                ..
            } => write!(
                f,
                "drain real server {key} of {service} (weight {} -> 0)",
                before.weight
            ),
            Op::DeleteDest { service, key, .. } => {
                write!(f, "delete real server {key} from {service}")
            }
            Op::WriteMarkChain { family, rules, .. } => {
                write!(f, "write {family} mark chain ({})", count_rules(rules))
            }
            Op::RemoveMarkChain { family, removed } => {
                write!(f, "remove {family} mark chain ({})", count_rules(removed))
            }
        }
    }
}

fn count_rules(rules: &[MarkRule]) -> String {
    match rules.len() {
        1 => "1 rule".to_owned(),
        n => format!("{n} rules"),
    }
}

fn write_changes(f: &mut fmt::Formatter<'_>, changes: &[FieldChange]) -> fmt::Result {
    let parts: Vec<String> = changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.field, c.before, c.after))
        .collect();
    if parts.is_empty() {
        Ok(())
    } else {
        write!(f, " ({})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::Ipv4Addr;

    use lvsctl_model::{DestKey, Protocol};

    use super::*;

    /// A plan whose text is several [`SPILL`] chunks long.
    fn big_plan() -> Plan {
        let service = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            vip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: 80,
        };
        let ops = (0..5_000u32)
            .map(|i| Op::AddDest {
                service,
                key: DestKey {
                    addr: IpAddr::V4(Ipv4Addr::from(0x0a80_0000 + i)),
                    port: 80,
                },
                spec: DestSpec::default(),
                replaces: None,
            })
            .collect();
        Plan { ops }
    }

    #[test]
    fn streamed_text_is_the_same_text_in_chunks() {
        let plan = big_plan();
        let opts = RenderOpts::default();
        let text = render_text(&plan, &opts);
        assert!(text.len() > 3 * SPILL, "{} bytes", text.len());
        let mut streamed = Vec::new();
        render_text_to(&plan, &opts, &mut streamed).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), text);
    }

    /// Accepts `room` bytes, then fails like a closed pipe.
    struct Closing {
        room: usize,
    }

    impl std::io::Write for Closing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_sink_is_reported() {
        let err = render_text_to(
            &big_plan(),
            &RenderOpts::default(),
            &mut Closing { room: SPILL },
        )
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}
